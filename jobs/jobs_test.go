package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/internal/testutil"
	"github.com/runspaces/rsh/jobs"
	"github.com/runspaces/rsh/vm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func manager(t *testing.T, opts jobs.Options) *jobs.Manager {
	t.Helper()
	m, err := jobs.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func items(vals ...any) []jobs.Item {
	var out []jobs.Item
	for _, v := range vals {
		raw, _ := json.Marshal(v)
		out = append(out, jobs.Item{Value: raw})
	}
	return out
}

func numbers(n int) []jobs.Item {
	vals := make([]any, n)
	for i := range vals {
		vals[i] = i + 1
	}
	return items(vals...)
}

func wait(t *testing.T, m *jobs.Manager, name string) jobs.Info {
	t.Helper()
	info, err := m.Wait(context.Background(), name, 30*time.Second)
	if err != nil {
		t.Fatalf("wait %s: %v", name, err)
	}
	return info
}

func TestRunToCompletion(t *testing.T) {
	m := manager(t, jobs.Options{MaxConcurrent: 2})
	name, err := m.Start(jobs.Spec{Script: `(n, p) => n * p.k`, Params: map[string]json.RawMessage{"k": json.RawMessage("10")}, Items: numbers(5)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "job-") {
		t.Errorf("generated name %q", name)
	}
	info := wait(t, m, name)
	if info.State != jobs.Completed || info.Done != 5 || info.Total != 5 || info.Succeeded != 5 || info.DurationMs <= 0 {
		t.Fatalf("info %+v", info)
	}
	rs, _ := m.Receive(name, false)
	var got []string
	for _, r := range rs {
		got = append(got, string(r.Output[0]))
	}
	if strings.Join(got, ",") != "10,20,30,40,50" {
		t.Errorf("results %v, want them in input order", got)
	}
}

func TestOneInvocation(t *testing.T) {
	m := manager(t, jobs.Options{})
	name, _ := m.Start(jobs.Spec{Name: "once", Script: `(x, p) => "hello " + p.who`, Params: map[string]json.RawMessage{"who": json.RawMessage(`"world"`)}})
	if info := wait(t, m, name); info.State != jobs.Completed || info.Total != 1 {
		t.Fatalf("%+v", info)
	}
	rs, _ := m.Results(name)
	if len(rs) != 1 || string(rs[0].Output[0]) != `"hello world"` {
		t.Fatalf("%+v", rs)
	}
}

func TestStatesAndNames(t *testing.T) {
	m := manager(t, jobs.Options{})
	if _, err := m.Start(jobs.Spec{Name: "x", Script: `(n) => { if (n === 2) throw new Error("two"); return n }`, Items: numbers(3)}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(jobs.Spec{Name: "x", Script: `(n) => n`}); !errors.Is(err, jobs.ErrNameTaken) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := m.Start(jobs.Spec{Name: "../evil", Script: `(n) => n`}); err == nil {
		t.Error("a name with a path in it was accepted")
	}
	if info := wait(t, m, "x"); info.State != jobs.CompletedWithErrors || info.Succeeded != 2 {
		t.Errorf("%+v", info)
	}
	m.Start(jobs.Spec{Name: "bad", Script: `(n) =>`})
	if info := wait(t, m, "bad"); info.State != jobs.Failed || !strings.Contains(info.Reason, "syntax error") {
		t.Errorf("%+v", info)
	}
	m.Start(jobs.Spec{Name: "init", Script: `throw new Error("no config")`})
	if info := wait(t, m, "init"); info.State != jobs.Failed || !strings.Contains(info.Reason, "no config") {
		t.Errorf("%+v", info)
	}
	if _, err := m.Get("nope"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
	if n := len(m.List()); n != 3 {
		t.Errorf("list: %d jobs", n)
	}
}

// Wait with a timeout returns on time and leaves the job running.
func TestWaitTimeoutKeepsRunning(t *testing.T) {
	m := manager(t, jobs.Options{})
	name, _ := m.Start(jobs.Spec{Script: `(x) => { sleep(400); return "done" }`})
	info, err := m.Wait(context.Background(), name, 50*time.Millisecond)
	if !errors.Is(err, jobs.ErrTimeout) || info.State.Finished() {
		t.Fatalf("wait 50ms: %v, state %s", err, info.State)
	}
	if info := wait(t, m, name); info.State != jobs.Completed {
		t.Errorf("after the timeout the job went on to %s", info.State)
	}
}

// Stop interrupts a job stuck in while(true); Remove stops a running job.
func TestStopAndRemove(t *testing.T) {
	m := manager(t, jobs.Options{})
	name, _ := m.Start(jobs.Spec{Script: `(x) => { while (true) {} }`, Items: numbers(3)})
	time.Sleep(50 * time.Millisecond)
	if err := m.Stop(name); err != nil {
		t.Fatal(err)
	}
	info, _ := m.Get(name)
	if info.State != jobs.Stopped {
		t.Fatalf("state %s after Stop", info.State)
	}
	rs, _ := m.Results(name)
	if len(rs) == 0 || rs[0].Status != vm.Stopped {
		t.Errorf("the running item's result: %+v", rs)
	}

	name2, _ := m.Start(jobs.Spec{Script: `(x) => { while (true) {} }`})
	time.Sleep(50 * time.Millisecond)
	if err := m.Remove(name2); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(name2); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("get after remove: %v", err)
	}
	// goleak (TestMain) checks the removed job's goroutines ended.
}

// Results can be received while the job runs; receiving moves a cursor
// and loses nothing; keep leaves them to receive again.
func TestReceivePartial(t *testing.T) {
	m := manager(t, jobs.Options{})
	name, _ := m.Start(jobs.Spec{Script: `(n) => { sleep(40); return n }`, Items: numbers(10), Throttle: 1})
	time.Sleep(150 * time.Millisecond)
	first, _ := m.Receive(name, false)
	if len(first) == 0 || len(first) == 10 {
		t.Fatalf("partial receive got %d results", len(first))
	}
	kept, _ := m.Receive(name, true)
	again, _ := m.Receive(name, false)
	if len(kept) > len(again) {
		t.Errorf("keep: %d, then %d", len(kept), len(again))
	}
	wait(t, m, name)
	rest, _ := m.Receive(name, false)
	seen := map[int64]bool{}
	for _, r := range append(append(first, again...), rest...) {
		if seen[r.Seq] {
			t.Errorf("seq %d received twice", r.Seq)
		}
		seen[r.Seq] = true
	}
	if len(seen) != 10 {
		t.Errorf("received %d distinct results of 10", len(seen))
	}
}

// The manager's limit holds across jobs: never more than MaxConcurrent
// items busy at once, however many jobs run.
func TestConcurrencyLimitAcrossJobs(t *testing.T) {
	c := testutil.NewConcurrency(t)
	m := manager(t, jobs.Options{MaxConcurrent: 2})
	port, _ := json.Marshal(c.Port())
	var names []string
	for range 3 {
		name, err := m.Start(jobs.Spec{
			Script:      testutil.HoldScript,
			Params:      map[string]json.RawMessage{"port": port},
			Permissions: builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"127.0.0.1"}}},
			Items:       numbers(8),
			Throttle:    2,
		})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if _, err := m.WaitAll(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if info, _ := m.Get(n); info.State != jobs.Completed {
			t.Errorf("%s: %s %s", n, info.State, info.Reason)
		}
	}
	if peak := c.Peak(); peak > 2 || peak < 2 {
		t.Errorf("peak concurrency across 3 jobs %d, want 2", peak)
	}
}

// A job gets the permissions it asks for, bounded by the ceiling.
func TestCeiling(t *testing.T) {
	m := manager(t, jobs.Options{Ceiling: &builtins.Permissions{}})
	name, _ := m.Start(jobs.Spec{Script: `() => require("fs").readFile("/etc/hostname")`, Permissions: builtins.Permissions{Read: builtins.PathPermission{All: true}}})
	wait(t, m, name)
	rs, _ := m.Results(name)
	if rs[0].Status != vm.Exception || !strings.Contains(rs[0].Error.Message, "PermissionDenied") || !strings.Contains(rs[0].Error.Message, "start rsh serve with --allow-read") {
		t.Fatalf("%s %+v", rs[0].Status, rs[0].Error)
	}
}

// Finished jobs and their results survive a restart.
func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	m, _ := jobs.New(jobs.Options{Dir: dir})
	name, _ := m.Start(jobs.Spec{Name: "kept", Script: `(n) => n * 2`, Items: numbers(4)})
	wait(t, m, name)
	m.Receive(name, false)
	m.Close()

	m2 := manager(t, jobs.Options{Dir: dir})
	info, err := m2.Get("kept")
	if err != nil || info.State != jobs.Completed || info.Done != 4 || info.Received != 4 {
		t.Fatalf("after restart: %+v %v", info, err)
	}
	rs, _ := m2.Results("kept")
	if len(rs) != 4 || string(rs[3].Output[0]) != "8" {
		t.Fatalf("results after restart: %+v", rs)
	}
	if again, _ := m2.Receive("kept", false); len(again) != 0 {
		t.Errorf("received results came back after restart: %d", len(again))
	}
	if err := m2.Remove("kept"); err != nil {
		t.Fatal(err)
	}
	m3 := manager(t, jobs.Options{Dir: dir})
	if _, err := m3.Get("kept"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("a removed job came back: %v", err)
	}
	// New names continue after loaded ones.
	m4dir := t.TempDir()
	m4, _ := jobs.New(jobs.Options{Dir: m4dir})
	n1, _ := m4.Start(jobs.Spec{Script: `(x) => x`})
	wait(t, m4, n1)
	m4.Close()
	m5 := manager(t, jobs.Options{Dir: m4dir})
	if n2, _ := m5.Start(jobs.Spec{Script: `(x) => x`}); n2 == n1 {
		t.Errorf("generated name %s reused after restart", n2)
	}
}

// A job that was running when its process died is Failed, with the
// reason, when the state is opened again.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	crashed, _ := jobs.New(jobs.Options{Dir: dir})
	defer crashed.Close()
	name, _ := crashed.Start(jobs.Spec{Name: "long", Script: `(n) => { if (n > 1) sleep(60000); return n }`, Items: numbers(3), Throttle: 1})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if info, _ := crashed.Get(name); info.Done >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first item never finished")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A second manager on the same directory sees what a restarted
	// daemon would after kill -9: a job left Running.
	m := manager(t, jobs.Options{Dir: dir})
	info, err := m.Get("long")
	if err != nil || info.State != jobs.Failed || !strings.Contains(info.Reason, "crashed or was killed") || info.Done != 1 {
		t.Fatalf("%+v %v", info, err)
	}
	if rs, _ := m.Results("long"); len(rs) != 1 || rs[0].Status != vm.Success {
		t.Errorf("the finished item's result was not kept: %+v", rs)
	}
}
