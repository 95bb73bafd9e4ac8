package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/runspaces/rsh/vm"
)

// --halt reads fail=, success= and done=, each with a count or a
// percentage, and judges each as GNU parallel does.
func TestHaltPolicy(t *testing.T) {
	type counts struct{ failed, succeeded, results, items int }
	for _, tc := range []struct {
		spec   string
		total  int64
		met    []counts
		notMet []counts
	}{
		{spec: "soon", met: []counts{{1, 0, 1, 1}}, notMet: []counts{{0, 5, 5, 5}}},
		{spec: "now,fail=2", met: []counts{{2, 0, 2, 2}}, notMet: []counts{{1, 9, 10, 10}}},
		{spec: "soon,fail=50%", met: []counts{{2, 2, 4, 4}}, notMet: []counts{{1, 0, 1, 1}, {1, 3, 4, 4}}},
		{spec: "soon,success=3", met: []counts{{5, 3, 8, 8}}, notMet: []counts{{9, 2, 11, 11}}},
		{spec: "soon,success=60%", met: []counts{{2, 3, 5, 5}}, notMet: []counts{{0, 2, 2, 2}, {3, 2, 5, 5}}},
		{spec: "now,done=4", met: []counts{{2, 2, 4, 4}, {0, 1, 1, 4}}, notMet: []counts{{1, 2, 3, 3}}},
		{spec: "soon,done=25%", total: 20, met: []counts{{0, 5, 5, 5}}, notMet: []counts{{4, 0, 4, 4}}},
	} {
		h, err := parseHalt(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		h.total = tc.total
		for _, c := range tc.met {
			if !h.triggered(c.failed, c.succeeded, c.results, c.items) {
				t.Errorf("%s: %+v should halt", tc.spec, c)
			}
		}
		for _, c := range tc.notMet {
			if h.triggered(c.failed, c.succeeded, c.results, c.items) {
				t.Errorf("%s: %+v should not halt", tc.spec, c)
			}
		}
	}
	for spec, want := range map[string]string{
		"later":          "want never, soon or now",
		"soon,fail=0":    "want a count of at least 1",
		"soon,success=x": "success=x: want a count",
		"soon,done=120%": "done=120%: want a percentage above 0 and at most 100",
		"soon,twice=2":   `want fail=, success= or done=`,
		"never,done=1":   "never takes no threshold",
	} {
		if _, err := parseHalt(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseHalt(%q) = %v, want %q", spec, err, want)
		}
	}
}

// The halt is said after the line of the item that met it, once; a run
// halted on successes or finished items does not fail for it.
func TestHalterAnnounce(t *testing.T) {
	h := &halter{policy: haltPolicy{when: "soon", cond: "fail", count: 2}}
	var w bytes.Buffer
	results := []*vm.Result{{Seq: 1, Status: vm.Exception}, {Seq: 2, Status: vm.Success}, {Seq: 3, Status: vm.Exception}, {Seq: 4, Status: vm.Exception}}
	for _, r := range results {
		h.observe(r)
	}
	h.announce(&w, results[0])
	h.announce(&w, results[1])
	if w.Len() != 0 {
		t.Fatalf("announced before the item that met it: %q", w.String())
	}
	h.announce(&w, results[2])
	h.announce(&w, results[3])
	h.announce(&w, nil)
	if got := w.String(); got != "rsh: halting after 2 failed items (--halt soon,fail=2)\n" {
		t.Errorf("announced %q", got)
	}
	if !h.failure(true) {
		t.Error("a halt on failures must fail the run")
	}

	s := &halter{policy: haltPolicy{when: "now", cond: "success", count: 1}}
	s.observe(&vm.Result{Seq: 1, Status: vm.Exception})
	s.observe(&vm.Result{Seq: 2, Status: vm.Success})
	if s.failure(true) {
		t.Error("a halt on successes ends the run as asked: exit 0")
	}
	d := &halter{policy: haltPolicy{when: "now", cond: "done", count: 1}}
	d.observe(&vm.Result{Seq: 1, Status: vm.Success})
	d.observe(&vm.Result{Seq: 2, Status: vm.Stopped})
	if d.failure(true) {
		t.Error("items the halt stopped do not fail a halt on done")
	}
	d.observe(&vm.Result{Seq: 3, Status: vm.Exception})
	if !d.failure(true) {
		t.Error("an item that threw fails a halt on done")
	}
}
