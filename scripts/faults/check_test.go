package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The input of the check tests: "7" twice, so that counting matters.
var testLines = []string{"7", "w3", "7", "2"}

// values is an --out values file with one line per input key.
func values(keys ...string) string {
	var b strings.Builder
	for _, k := range keys {
		n := len(strings.Trim(k, `"`))
		if !strings.HasPrefix(k, `"`) {
			fmt.Sscan(k, &n)
		}
		fmt.Fprintf(&b, `{"in":%s,"x":%d}`+"\n", k, n*n)
	}
	return b.String()
}

// logOf is a job log with one line per "seq hash status".
func logOf(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		var seq int
		var hash, status string
		fmt.Sscan(l, &seq, &hash, &status)
		fmt.Fprintf(&b, `{"seq":%d,"hash":"%s","status":"%s","attempts":1}`+"\n", seq, hash, status)
	}
	return b.String()
}

// The reference log of testLines: "7" has one hash at two positions.
var testRef = logOf("1 h7 Success", "2 hw3 Success", "3 h7 Success", "4 h2 Success")

func TestCheck(t *testing.T) {
	all := values("7", `"w3"`, "7", "2")
	tests := []struct {
		name    string
		out     string
		records bool
		log     string
		want    []string // substrings of the findings, in order; none: clean
	}{
		{name: "clean", out: all, log: testRef},
		{name: "clean, in another order and resumed", out: values("2", "7", `"w3"`, "7"),
			log: logOf("4 h2 Success", "1 h7 Success", "2 hw3 Exception", "2 hw3 Success", "3 h7 Success")},
		{name: "a repeated input lost, claimed by the log", out: values("7", `"w3"`, "2"), log: testRef,
			want: []string{"lost 1 outputs, 1 of them claimed as done by the job log (e.g. 7: 1 of 2)"}},
		{name: "lost and not claimed", out: values("7", "7", "2"),
			log:  logOf("1 h7 Success", "3 h7 Success", "4 h2 Success"),
			want: []string{"job log: 1 items (or batches) have no success line", `lost 1 outputs, 0 of them claimed`}},
		{name: "duplicated", out: all + values("2"), log: testRef,
			want: []string{"duplicated 1 outputs (e.g. 2: 2 of 1)"}},
		{name: "garbled and cut lines", out: all + "{\"in\":2,\"x\":5}\n{\"in\":", log: testRef,
			want: []string{`2 garbled output lines (e.g. "{\"in\":2,\"x\":5}"; "{\"in\": (no newline)")`}},
		{name: "claimed twice", out: all, log: testRef + logOf("4 h2 Success"),
			want: []string{"job log: 1 success lines too many", "job log: 1 success lines carry a seq that is not their input's position (or repeat one)"}},
		{name: "seq renumbered on resume", out: all,
			log:  logOf("1 h7 Success", "2 hw3 Success", "1 h7 Success", "2 h2 Success"),
			want: []string{"job log: 2 success lines carry a seq", "job log: 1 lines reuse a seq"}},
		{name: "garbled log line", out: all, log: testRef + "{\"seq\":9,\"ha",
			want: []string{"job log: 1 garbled lines"}},
		{name: "records, clean", records: true, log: testRef, out: `{"seq":3,"input":7,"output":[{"in":7,"x":49}],"status":"Success"}
{"seq":1,"input":7,"output":[{"in":7,"x":49}],"status":"Success"}
{"seq":2,"input":"w3","output":[],"status":"Exception"}
{"seq":2,"input":"w3","output":[{"in":"w3","x":4}],"status":"Success"}
{"seq":4,"input":2,"output":[{"in":2,"x":4}],"status":"Success"}
`},
		{name: "records, seq wrong and repeated", records: true, log: testRef, out: `{"seq":1,"input":7,"output":[{"in":7,"x":49}],"status":"Success"}
{"seq":1,"input":7,"output":[{"in":7,"x":49}],"status":"Success"}
{"seq":1,"input":"w3","output":[{"in":"w3","x":4}],"status":"Success"}
{"seq":4,"input":2,"output":[{"in":2,"x":4}],"status":"Success"}
`, want: []string{"1 successful records carry a seq", "1 input positions have two successful records"}},
		{name: "records, output of another input", records: true, log: testRef, out: `{"seq":1,"input":7,"output":[{"in":2,"x":4}],"status":"Success"}
`, want: []string{"1 garbled records", "lost 4 outputs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := check(expected{lines: testLines}, []byte(tt.out), tt.records, []byte(tt.log), []byte(testRef))
			if len(f) != len(tt.want) {
				t.Fatalf("findings %q, want %d like %q", f, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(f[i], w) {
					t.Errorf("finding %d: %q, want it to contain %q", i, f[i], w)
				}
			}
		})
	}
}

func TestCheckBatches(t *testing.T) {
	want := expected{lines: testLines, batch: 3}
	ref := logOf("1 hA Success", "4 hB Success")
	out := `{"seq":4,"input":[2],"output":[{"in":2,"x":4}],"status":"Success","batchSize":1}
{"seq":1,"input":[7,"w3",7],"output":[{"in":7,"x":49},{"in":"w3","x":4},{"in":7,"x":49}],"status":"Success","batchSize":3}
`
	if f := check(want, []byte(out), true, []byte(ref), []byte(ref)); len(f) != 0 {
		t.Errorf("clean batches: findings %q", f)
	}
	// The first batch's output is lost, but the log claims it: all three
	// of its items count as lost and claimed.
	f := check(want, []byte(values("2")), false, []byte(ref), []byte(ref))
	if len(f) != 1 || !strings.Contains(f[0], "lost 3 outputs, 3 of them claimed") {
		t.Errorf("lost batch: findings %q", f)
	}
}

func TestInputKey(t *testing.T) {
	for line, want := range map[string]string{
		"7":          "7",
		"w3":         `"w3"`,
		`{"a": 1}`:   `{"a":1}`,
		`"quoted"`:   `"quoted"`,
		"not { json": `"not { json"`,
	} {
		if got := inputKey(line); got != want {
			t.Errorf("inputKey(%q) = %s, want %s", line, got, want)
		}
	}
}

func TestChildrenAndRunning(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sleep, "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if kids := children(os.Getpid()); !slices.Contains(kids, cmd.Process.Pid) {
		t.Errorf("children of this test: %v, want %d among them", kids, cmd.Process.Pid)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if ps := running(exe); !slices.Contains(ps, cmd.Process.Pid) {
		t.Errorf("running(%s) = %v, want %d among them", exe, ps, cmd.Process.Pid)
	}
}
