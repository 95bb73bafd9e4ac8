package jobs_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/runspaces/rsh/jobs"
	"github.com/runspaces/rsh/vm"
)

// daemon is the test binary run as a daemon (see runDaemon), in a process
// of its own: one that can be killed.
type daemon struct {
	cmd    *exec.Cmd
	c      *jobs.Client
	stderr *syncBuffer
	ended  chan error
}

// startDaemon starts a daemon on state, listening on socket, and waits
// until it answers. wrapper, if set, is the shell command its job
// processes are started through (see daemonWrapEnv). The test's end stops
// it.
func startDaemon(t *testing.T, state, socket, wrapper string) *daemon {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), daemonEnv+"="+state+string(os.PathListSeparator)+socket)
	if wrapper != "" {
		cmd.Env = append(cmd.Env, daemonWrapEnv+"="+wrapper)
	}
	d := &daemon{cmd: cmd, c: jobs.UnixClient(socket), stderr: &syncBuffer{}, ended: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.ended <- cmd.Wait() }()
	t.Cleanup(func() {
		d.c.HTTP.CloseIdleConnections()
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Signal(syscall.SIGTERM)
			<-d.ended
		}
	})
	waitFor(t, "the daemon answering", func() bool {
		select {
		case err := <-d.ended:
			d.ended <- err
			t.Fatalf("the daemon ended: %v\n%s", err, d.stderr.Bytes())
		default:
		}
		_, err := d.c.List(context.Background(), "")
		return err == nil
	})
	return d
}

// kill kills the daemon with SIGKILL and waits for it to end.
func (d *daemon) kill(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.ended
	d.c.HTTP.CloseIdleConnections()
}

func (d *daemon) waitInfo(t *testing.T, name, what string, cond func(jobs.Info) bool) jobs.Info {
	t.Helper()
	var info jobs.Info
	waitFor(t, name+": "+what, func() bool {
		var err error
		info, err = d.c.Get(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		return cond(info)
	})
	return info
}

// receive reads every result not received yet over the client, and
// confirms them.
func (d *daemon) receive(t *testing.T, name string) []vm.Result {
	t.Helper()
	s, err := d.c.Results(context.Background(), name, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("results: %v", err)
	}
	if _, err := d.c.Ack(context.Background(), name, s.From, s.From+int64(len(data))); err != nil {
		t.Fatalf("ack: %v", err)
	}
	return parseRecords(t, data)
}

// The daemon killed with SIGKILL while a job runs: the job's process ends
// with it, and the next daemon on the directory resumes the job, which
// ends with exactly one result per item. With its job processes started
// through a shell that does not pass on the daemon's death, the job
// process sees its parent gone and ends at once, claiming nothing more.
func TestDaemonKilled(t *testing.T) {
	for _, tc := range []struct{ name, wrapper string }{
		{"direct", ""},
		{"through a shell", `"$0" "$@"; exit $?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			socket := filepath.Join(t.TempDir(), "d.sock")
			d := startDaemon(t, state, socket, tc.wrapper)
			const n = 6
			name, _, err := d.c.Start(context.Background(), jobs.Spec{Name: "long", Script: `(n) => { sleep(150); return n }`, Items: numbers(n), Throttle: 1})
			if err != nil {
				t.Fatal(err)
			}
			d.waitInfo(t, name, "two items done", func(i jobs.Info) bool { return i.Done >= 2 })
			procs := jobProcesses(t, jobDir(state, name))
			if len(procs) != 1 {
				t.Fatalf("job processes %v, want one", procs)
			}
			d.kill(t)
			waitFor(t, "the job process ending with its daemon", func() bool { return !alive(procs[0]) })

			d2 := startDaemon(t, state, socket, tc.wrapper)
			info, timedOut, err := d2.c.Wait(context.Background(), name, deadline)
			if err != nil || timedOut {
				t.Fatalf("wait: %v, timed out %v", err, timedOut)
			}
			if info.State != jobs.Completed || info.Resumed != 1 || info.Done != n || info.Total != n {
				t.Fatalf("resumed: %+v", info)
			}
			checkOnce(t, d2.receive(t, name), n)
			if info, _ := d2.c.Get(context.Background(), name); info.Received != n {
				t.Errorf("received %d, want %d", info.Received, n)
			}
		})
	}
}

// A job process killed from outside fails its job alone, saying it died;
// a job running beside it goes on to the end. The results of the items
// it finished are kept.
func TestJobProcessKilled(t *testing.T) {
	state := t.TempDir()
	m := newManager(t, jobs.Options{Dir: state, MaxJobs: 2})
	victim := start(t, m, jobs.Spec{Name: "victim", Script: `(n) => { sleep(100); return n }`, Items: numbers(50), Throttle: 1})
	// The other job runs until its input ends.
	other := start(t, m, jobs.Spec{Name: "other", Script: `(n) => n`, Input: true})
	waitInfo(t, m, victim, "an item done", func(i jobs.Info) bool { return i.Done >= 1 })
	waitInfo(t, m, other, "running", func(i jobs.Info) bool { return i.State == jobs.Running })
	procs := jobProcesses(t, jobDir(state, victim))
	if len(procs) != 1 {
		t.Fatalf("job processes %v, want one", procs)
	}
	if err := syscall.Kill(procs[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	info := waitJob(t, m, victim)
	if info.State != jobs.Failed || !strings.Contains(info.Reason, "died") {
		t.Fatalf("the killed job: %+v, want Failed, died", info)
	}
	if rs, _ := results(t, m, victim, 0); len(rs) != info.Done || len(rs) == 0 {
		t.Errorf("%d results kept of the %d items done", len(rs), info.Done)
	}
	if _, err := m.Input(context.Background(), other, bytes.NewReader(inputLines(1, 3))); err != nil {
		t.Fatal(err)
	}
	if info := waitJob(t, m, other); info.State != jobs.Completed {
		t.Fatalf("the other job: %+v", info)
	}
	rs, _ := results(t, m, other, 0)
	checkOnce(t, rs, 3)
}

// plainRsh builds rsh without the race detector: only such a worker runs
// under the address-space limit that, with the memory cgroup where one
// can be made, keeps a runaway allocation from reaching the machine (a
// race build's shadow memory needs more address space than any limit).
func plainRsh(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rsh")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/runspaces/rsh").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// A job whose item exhausts its memory limit: that item alone ends
// MemoryLimit, the job CompletedWithErrors; the Manager goes on.
func TestMemoryLimit(t *testing.T) {
	m := newManager(t, jobs.Options{Command: []string{plainRsh(t)}})
	name := start(t, m, jobs.Spec{Name: "hog", MaxMemory: 64 << 20, Items: numbers(3), Throttle: 1,
		Script: `(x) => { if (x === 2) { let a = []; for (;;) a.push(new Array(1e6).fill(1)) } return x }`})
	info := waitJob(t, m, name)
	if info.State != jobs.CompletedWithErrors || info.Done != 3 || info.Failed != 1 {
		t.Fatalf("%+v", info)
	}
	rs, _ := results(t, m, name, 0)
	if len(rs) != 3 {
		t.Fatalf("%d results", len(rs))
	}
	for i, r := range rs {
		want := vm.Success
		if i == 1 {
			want = vm.MemoryLimit
		}
		if r.Status != want {
			t.Errorf("item %s: %s %+v, want %s", r.Input, r.Status, r.Error, want)
		}
	}
	if rs[1].Error == nil || !strings.Contains(rs[1].Error.Message, "64MiB") {
		t.Errorf("the message does not name the limit: %+v", rs[1].Error)
	}
	after := start(t, m, jobs.Spec{Script: `(n) => n`, Items: numbers(2)})
	if info := waitJob(t, m, after); info.State != jobs.Completed {
		t.Fatalf("a job after it: %+v", info)
	}
}
