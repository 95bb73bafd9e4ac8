package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runspaces/rsh/jobs"
)

// finishedJob runs a job of n items to its end in a Manager on state, and
// closes the Manager.
func finishedJob(t *testing.T, state, name string, n int) {
	t.Helper()
	m, err := jobs.New(jobs.Options{Dir: state})
	if err != nil {
		t.Fatal(err)
	}
	start(t, m, jobs.Spec{Name: name, Script: `(n) => n`, Items: numbers(n)})
	if info := waitJob(t, m, name); info.State != jobs.Completed {
		t.Fatalf("%+v", info)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// editState changes fields of the job's state.json.
func editState(t *testing.T, state, name string, fields map[string]any) {
	t.Helper()
	path := filepath.Join(jobDir(state, name), jobs.StateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		doc[k] = v
	}
	if data, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// within runs f and fails the test if it does not return in time: a
// Manager call must never hang.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatalf("%s did not return", what)
	}
}

// Counters on file beyond the results (a state.json edited, or results
// cut short) are clamped when the job is loaded: nothing panics or hangs,
// and the job hands out what is there.
func TestCursorsClamped(t *testing.T) {
	const n = 3
	for _, tc := range []struct {
		name   string
		fields map[string]any
		// wantReceived is how many results count as received after the
		// load; -1: all of them, the cursor at the end.
		wantReceived int
	}{
		{"received past the end", map[string]any{"received": 1000, "receivedBytes": 1 << 30}, -1},
		{"committed past the end", map[string]any{"committed": 1 << 40, "received": 1000, "receivedBytes": 1 << 30}, -1},
		{"received count too large", map[string]any{"received": 1000}, 0},
		{"negative", map[string]any{"received": -5, "receivedBytes": -7}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			finishedJob(t, state, "done", n)
			results := filepath.Join(jobDir(state, "done"), jobs.ResultsFile)
			fi, err := os.Stat(results)
			if err != nil {
				t.Fatal(err)
			}
			editState(t, state, "done", tc.fields)

			m := newManager(t, jobs.Options{Dir: state})
			within(t, "the calls on a clamped job", func() {
				info, err := m.Get("done")
				if err != nil {
					t.Error(err)
					return
				}
				wantBytes, wantCount := int64(0), 0
				if tc.wantReceived < 0 {
					wantBytes, wantCount = fi.Size(), n
				}
				if info.Committed != fi.Size() || info.ReceivedBytes != wantBytes || info.Received != wantCount {
					t.Errorf("loaded %+v; want committed %d, received %d at byte %d", info, fi.Size(), wantCount, wantBytes)
				}
				if rs, end := resultsFrom(t, m, "done", 0); len(rs) != n || end != fi.Size() {
					t.Errorf("all results: %d records to byte %d", len(rs), end)
				}
				if rs, _ := resultsFrom(t, m, "done", info.ReceivedBytes); len(rs) != n-wantCount {
					t.Errorf("results from the cursor: %d records, want %d", len(rs), n-wantCount)
				}
				if _, err := m.Ack("done", info.ReceivedBytes, fi.Size()); err != nil {
					t.Errorf("ack of the rest: %v", err)
				}
				if list := m.List(); len(list) != 1 || list[0].Received != n {
					t.Errorf("list: %+v", list)
				}
			})
		})
	}
}

// resultsFrom is results for use inside within (no t.Fatal).
func resultsFrom(t *testing.T, m *jobs.Manager, name string, from int64) ([]string, int64) {
	var buf strings.Builder
	end, err := m.Results(context.Background(), name, from, false, &buf)
	if err != nil {
		t.Errorf("results of %s from %d: %v", name, from, err)
	}
	var lines []string
	for _, l := range strings.SplitAfter(buf.String(), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines, end
}

// A job whose state.json is damaged is listed as Failed with the reason,
// not hidden; its name stays taken until it is removed.
func TestDamagedJobListed(t *testing.T) {
	state := t.TempDir()
	finishedJob(t, state, "broken", 2)
	if err := os.WriteFile(filepath.Join(jobDir(state, "broken"), jobs.StateFile), []byte(`{"name": "bro`), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, jobs.Options{Dir: state})
	list := m.List()
	if len(list) != 1 || list[0].Name != "broken" || list[0].State != jobs.Failed || !strings.Contains(list[0].Reason, jobs.StateFile) {
		t.Fatalf("list: %+v, want broken Failed naming %s", list, jobs.StateFile)
	}
	within(t, "wait, results and log of the damaged job", func() {
		if info, err := m.Wait(context.Background(), "broken", 0); err != nil || info.State != jobs.Failed {
			t.Errorf("wait: %+v %v", info, err)
		}
		resultsFrom(t, m, "broken", 0)
		if err := m.Log(context.Background(), "broken", true, &strings.Builder{}); err != nil {
			t.Errorf("log: %v", err)
		}
	})
	if _, _, err := m.Start(context.Background(), jobs.Spec{Name: "broken", Script: `(n) => n`}); !errors.Is(err, jobs.ErrNameTaken) {
		t.Fatalf("start of the damaged job's name: %v, want ErrNameTaken", err)
	}
	if err := m.Remove(context.Background(), "broken"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(jobDir(state, "broken")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the damaged job's files after remove: %v", err)
	}
	name := start(t, m, jobs.Spec{Name: "broken", Script: `(n) => n`})
	if info := waitJob(t, m, name); info.State != jobs.Completed {
		t.Fatalf("the name after remove: %+v", info)
	}
}

// A full disk fails the job whose results it stops, saying why (never
// Completed); a Manager on the full directory still opens, and once space
// is freed, jobs run again.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs as a full disk needs root")
	}
	state := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", state).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs as a full disk: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", state).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", state, err, out)
		}
	})
	m, err := jobs.New(jobs.Options{Dir: state})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// 400 results of 10 kB each: twice the file system. The items take a
	// moment, so that some of them are stored before the disk is full.
	name := start(t, m, jobs.Spec{Name: "big", Script: `(n) => { sleep(5); return "x".repeat(10000) }`, Items: numbers(400), Throttle: 2})
	info := waitJob(t, m, name)
	if info.State != jobs.Failed || !strings.Contains(info.Reason, "no space left") {
		t.Fatalf("%+v, want Failed for want of space", info)
	}
	if info.Done >= 400 || info.Committed <= 0 {
		t.Errorf("done %d, committed %d", info.Done, info.Committed)
	}
	if rs, _ := results(t, m, name, 0); len(rs) != info.Done {
		t.Errorf("%d results to receive, %d done", len(rs), info.Done)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := newManager(t, jobs.Options{Dir: state})
	info, err = m2.Get(name)
	if err != nil || info.State != jobs.Failed || !strings.Contains(info.Reason, "no space left") {
		t.Fatalf("reopened on the full disk: %+v %v", info, err)
	}
	if err := m2.Remove(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	small := start(t, m2, jobs.Spec{Script: `(n) => n`, Items: numbers(3)})
	if info := waitJob(t, m2, small); info.State != jobs.Completed {
		t.Fatalf("a job once space was freed: %+v", info)
	}
}
