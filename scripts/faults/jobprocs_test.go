package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	line := "4242 (rsh (job) x) S 17 4242 17 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 5 0 987654 1000 200 18446744073709551615"
	st, ok := parseStat(line)
	if !ok || st.ppid != 17 || st.state != 'S' || st.start != 987654 {
		t.Errorf("parseStat = %+v, %v; want ppid 17, state S, start 987654", st, ok)
	}
	for _, bad := range []string{"", "4242 (rsh) S 17", "4242 rsh S 17 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"} {
		if _, ok := parseStat(bad); ok {
			t.Errorf("parseStat(%q) is ok, want not", bad)
		}
	}
}

func TestIsJobProcess(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"/tmp/x/rsh", "__job", "/s/state/jobs/j"}, true},
		{[]string{"/tmp/x/rsh", "__job", "/s/state/"}, true},
		{[]string{"/tmp/x/rsh", "__job", "/s/state2/jobs/j"}, false},
		{[]string{"/tmp/x/rsh", "__job"}, false},
		{[]string{"/tmp/x/rsh", "serve", "--state", "/s/state"}, false},
		{nil, false},
	} {
		if got := isJobProcess(tt.args, "/s/state"); got != tt.want {
			t.Errorf("isJobProcess(%q, /s/state) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

// TestProcesses starts a stand-in job process (a shell whose arguments
// look like one, running a sleep), and finds it and its child the ways
// the daemon checks do; then it is killed, and gone.
func TestProcesses(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	cmd := exec.Command("sh", "-c", "sleep 30; :", jobProcessArg, filepath.Join(state, "jobs", "j"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var below []proc
	for deadline := time.Now().Add(5 * time.Second); len(below) < 2 && time.Now().Before(deadline); {
		below = descendants(os.Getpid())
		time.Sleep(10 * time.Millisecond)
	}
	var sh *proc
	for i, p := range below {
		if p.pid == cmd.Process.Pid {
			sh = &below[i]
		}
	}
	if sh == nil || len(below) < 2 {
		t.Fatalf("descendants of this test: %v, want the shell %d and its sleep", below, cmd.Process.Pid)
	}
	if jp := jobProcesses(state); !slices.Equal(jp, []int{cmd.Process.Pid}) {
		t.Errorf("jobProcesses(%s) = %v, want [%d]", state, jp, cmd.Process.Pid)
	}
	if jp := jobProcesses(state + "2"); len(jp) != 0 {
		t.Errorf("jobProcesses of another state directory = %v, want none", jp)
	}
	if !sh.alive() {
		t.Error("the shell is not alive")
	}
	if (proc{pid: sh.pid, start: sh.start + 1}).alive() {
		t.Error("a process with the shell's pid but another start time is alive")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if sh.alive() {
		t.Error("the shell is alive after it was killed and reaped")
	}
	if jp := jobProcesses(state); len(jp) != 0 {
		t.Errorf("jobProcesses after the kill = %v, want none", jp)
	}
}
