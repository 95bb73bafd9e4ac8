package worker

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Where this process may make memory cgroups, a worker's gets the limit
// plus headroom and can take a process; where it may not, newMemCgroup
// says so with nil, and the parent directory indeed refuses a new cgroup.
func TestMemCgroup(t *testing.T) {
	const limit = 64 << 20
	c := newMemCgroup(1<<40, limit)
	if c == nil {
		parent, _ := cgroupParent()
		if parent == "" {
			return // no memory cgroup hierarchy at all: nothing to make
		}
		probe := filepath.Join(parent, cgroupPrefix+"probe")
		if err := os.Mkdir(probe, 0o755); err == nil {
			os.Remove(probe)
			t.Fatalf("newMemCgroup gave up, but %s can be made", probe)
		}
		return
	}
	defer c.remove()
	file := "memory.limit_in_bytes"
	if c.v2 {
		file = "memory.max"
	}
	got, err := os.ReadFile(filepath.Join(c.dir, file))
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.FormatInt(limit+cgroupHeadroom(limit), 10); strings.TrimSpace(string(got)) != want {
		t.Fatalf("%s = %s, want %s", file, got, want)
	}
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	procs, _ := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if strings.TrimSpace(string(procs)) != strconv.Itoa(cmd.Process.Pid) {
		t.Fatalf("cgroup.procs = %q, want the child's pid", procs)
	}
	c.remove()
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Fatalf("cgroup %s not removed: %v", c.dir, err)
	}
}

// Empty cgroups left by an rsh that no longer runs are removed; those of a
// live one are kept.
func TestRemoveStaleCgroups(t *testing.T) {
	parent, _ := cgroupParent()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(parent, cgroupPrefix+strconv.Itoa(dead.Process.Pid)+"-1")
	live := filepath.Join(parent, cgroupPrefix+"1-1") // pid 1 always runs
	if parent == "" || os.Mkdir(stale, 0o755) != nil {
		return // no cgroups to leave behind here
	}
	if err := os.Mkdir(live, 0o755); err != nil {
		os.Remove(stale)
		t.Fatal(err)
	}
	defer os.Remove(live)
	removeStaleCgroups()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		os.Remove(stale)
		t.Fatalf("stale cgroup kept: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("live rsh's cgroup removed: %v", err)
	}
}

// A worker the kernel killed at its cgroup's limit died of memory, and
// the reason says so.
func TestClassifyCgroupKill(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "memory.oom_control"), []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "kill -9 $$")
	err := cmd.Run()
	p := &proc{cmd: cmd, cgroup: &memCgroup{dir: dir, limit: 96 << 20}}
	d := p.classify(err)
	if !d.memory || !strings.Contains(d.reason, "the kernel ended it at its memory cgroup's limit of 96MiB") {
		t.Fatalf("%+v", d)
	}
	p.cgroup = nil
	if d := p.classify(err); d.memory || !strings.Contains(d.reason, "killed by signal killed") {
		t.Fatalf("without a cgroup: %+v", d)
	}
}
