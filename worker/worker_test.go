package worker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
	"github.com/runspaces/rsh/worker"
)

// The test binary is also the worker program.
func TestMain(m *testing.M) {
	worker.Main()
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if !plainBuilt.Load() {
			os.Exit(code)
		}
		if bin, err := plainWorker(); err == nil {
			os.RemoveAll(filepath.Dir(bin))
		}
		os.Exit(code)
	}))
}

// plainBuilt says whether a test asked for plainWorker.
var plainBuilt atomic.Bool

// plainWorker builds rsh without the race detector, once, for the tests
// that exhaust memory: only such a worker can run under the address-space
// limit that keeps a runaway allocation from reaching the machine.
var plainWorker = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "rsh-worker")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "rsh")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/runspaces/rsh").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

type setup struct {
	plain      bool // workers are a build of rsh without the race detector
	file       string
	src        string
	state      vm.InitialState
	perProcess int
	maxMemory  int64
	pool       pool.Options
}

func newPool(t *testing.T, s setup) *pool.Pool {
	t.Helper()
	var script *vm.Script
	var err error
	if s.file != "" {
		script, err = vm.CompileFile(s.file)
	} else {
		script, err = vm.Compile("test.js", t.TempDir(), s.src)
	}
	if err != nil {
		t.Fatal(err)
	}
	opts := worker.Options{Script: script, State: s.state, PerProcess: s.perProcess, MaxMemory: s.maxMemory}
	if s.plain {
		bin, err := plainWorkerFor(t)
		if err != nil {
			t.Fatal(err)
		}
		opts.Command = []string{bin}
	}
	e, err := worker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	s.pool.Engine = e
	p, err := pool.New(context.Background(), s.pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func values(vs ...any) []pool.Item {
	items := make([]pool.Item, len(vs))
	for i, v := range vs {
		items[i] = pool.Item{Value: v}
	}
	return items
}

func run(p *pool.Pool, items []pool.Item) map[int64]*vm.Result {
	got := map[int64]*vm.Result{}
	for r := range p.Run(context.Background(), slices.Values(items)) {
		if got[r.Seq] != nil {
			panic("two results for one item")
		}
		got[r.Seq] = r
	}
	return got
}

func TestSquares(t *testing.T) {
	p := newPool(t, setup{src: "(n) => n * n", perProcess: 2, pool: pool.Options{Throttle: 3, KeepOrder: true}})
	var items []pool.Item
	for i := 1; i <= 1000; i++ {
		items = append(items, pool.Item{Value: float64(i)})
	}
	sum, n := 0.0, 0
	for r := range p.Run(context.Background(), slices.Values(items)) {
		n++
		if r.Seq != int64(n) || r.Status != vm.Success {
			t.Fatalf("result %d: seq %d %s %+v", n, r.Seq, r.Status, r.Error)
		}
		v, err := r.Values()
		if err != nil {
			t.Fatal(err)
		}
		sum += v[0].(float64)
	}
	if n != 1000 || sum != 333833500 {
		t.Fatalf("%d results, sum %v", n, sum)
	}
}

func TestStringsAndStreams(t *testing.T) {
	p := newPool(t, setup{src: `(s) => { writeWarning("w " + s); console.log("i"); return s.toUpperCase() }`, pool: pool.Options{Throttle: 1}})
	got := run(p, values("héllo"))
	r := got[1]
	if r.Status != vm.Success || string(r.Output[0]) != `"HÉLLO"` || len(r.Warnings) != 1 || r.Warnings[0] != "w héllo" || len(r.Information) != 1 {
		t.Fatalf("%+v", r)
	}
}

func TestInitError(t *testing.T) {
	script, err := vm.Compile("bad.js", t.TempDir(), `throw new Error("no init")`)
	if err != nil {
		t.Fatal(err)
	}
	e, err := worker.New(worker.Options{Script: script})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = pool.New(context.Background(), pool.Options{Engine: e})
	var ie *vm.InitError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "no init") {
		t.Fatalf("got %v, want an InitError", err)
	}
}

// A host module a worker process was not given (worker.WithHost) is a
// clear start error, not a script that fails on require.
func TestHostNotGivenToMain(t *testing.T) {
	script, err := vm.Compile("x.js", t.TempDir(), `(x) => x`)
	if err != nil {
		t.Fatal(err)
	}
	st := vm.InitialState{Functions: []vm.HostFunction{{Name: "lookup", Func: func(context.Context, []any) (any, error) { return 1, nil }}}}
	e, err := worker.New(worker.Options{Script: script, State: st})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = pool.New(context.Background(), pool.Options{Engine: e})
	if err == nil || !strings.Contains(err.Error(), `host function "lookup": this program's worker.Main was not given it`) {
		t.Fatalf("got %v", err)
	}
}

// A script that allocates without end kills its worker; it alone gets
// MemoryLimit, and the items that shared the worker succeed.
func TestMemoryLimit(t *testing.T) {
	p := newPool(t, setup{plain: true, file: "testdata/hostile.js", perProcess: 2, maxMemory: 256 << 20,
		pool: pool.Options{Throttle: 2}})
	got := run(p, values(1.0, "slow", "grow", "slow", 2.0, "huge", 3.0, "slow"))
	if len(got) != 8 {
		t.Fatalf("%d results, want 8", len(got))
	}
	for seq, r := range got {
		want := vm.Success
		if seq == 3 || seq == 6 {
			want = vm.MemoryLimit
		}
		if r.Status != want {
			t.Errorf("item %d: %s %+v, want %s", seq, r.Status, r.Error, want)
		}
		if want == vm.MemoryLimit && !strings.Contains(r.Error.Message, "256MiB") {
			t.Errorf("item %d: message %q does not name the limit", seq, r.Error.Message)
		}
	}
}

// children returns the pids of this process's children.
func children(t *testing.T) []int { return childrenOf(t, os.Getpid()) }

// plainWorkerFor is plainWorker for one test.
func plainWorkerFor(t *testing.T) (string, error) {
	t.Helper()
	plainBuilt.Store(true)
	return plainWorker()
}

// childrenOf returns the pids of parent's children.
func childrenOf(t *testing.T, parent int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ")".
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(parent) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// A worker killed from outside loses nothing: the item it was running
// runs again, alone, and succeeds; the items after it run on a new worker.
func TestWorkerKilled(t *testing.T) {
	p := newPool(t, setup{file: "testdata/hostile.js", pool: pool.Options{Throttle: 1, KeepOrder: true}})
	items := values(1.0, "slow", 3.0, 4.0)
	var got []*vm.Result
	for r := range p.Run(context.Background(), slices.Values(items), pool.Observe(func(r *vm.Result) {
		if r.Seq == 1 {
			// Item 2 sleeps for 300 ms from now on: kill its worker.
			time.AfterFunc(100*time.Millisecond, func() {
				for _, pid := range children(t) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
		}
	})) {
		got = append(got, r)
	}
	if len(got) != 4 {
		t.Fatalf("%d results, want 4", len(got))
	}
	want := []string{"2", `"slow"`, "6", "8"}
	for i, r := range got {
		if r.Status != vm.Success || string(r.Output[0]) != want[i] {
			t.Errorf("item %d: %s %s %+v", r.Seq, r.Status, r.Output, r.Error)
		}
	}
}

// An item stuck in native code past its timeout gets Timeout; its worker
// is retired and the next items run in a new one.
func TestStuckNativeCode(t *testing.T) {
	p := newPool(t, setup{file: "testdata/hostile.js", state: vm.InitialState{Timeout: 100 * time.Millisecond},
		pool: pool.Options{Throttle: 1, KeepOrder: true, Grace: 100 * time.Millisecond}})
	got := run(p, values("stuck", 2.0, 3.0))
	if r := got[1]; r.Status != vm.Timeout || !strings.Contains(r.Error.Message, "abandoned") {
		t.Fatalf("stuck item: %s %+v", r.Status, r.Error)
	}
	for seq := int64(2); seq <= 3; seq++ {
		if got[seq].Status != vm.Success {
			t.Fatalf("item %d: %s %+v", seq, got[seq].Status, got[seq].Error)
		}
	}
	// The retired worker is ended: only the one running item 3 is left.
	deadline := time.Now().Add(30 * time.Second)
	for len(children(t)) > 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(children(t)); n != 1 {
		t.Fatalf("%d worker processes, want 1", n)
	}
}

// Cancelling a run interrupts the items running in workers: Stopped.
func TestCancel(t *testing.T) {
	p := newPool(t, setup{file: "testdata/hostile.js", pool: pool.Options{Throttle: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []*vm.Result
	for r := range p.Run(ctx, slices.Values(values(1.0, "slow", 3.0)), pool.Observe(func(r *vm.Result) {
		if r.Seq == 1 {
			time.AfterFunc(100*time.Millisecond, cancel)
		}
	})) {
		got = append(got, r)
	}
	if len(got) != 2 || got[0].Status != vm.Success || got[1].Status != vm.Stopped {
		t.Fatalf("results: %+v", got)
	}
}

// Workers end soon after their parent is killed, even in the middle of a
// long item.
func TestOrphanedWorkersEnd(t *testing.T) {
	bin, err := plainWorkerFor(t)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--isolate", "process", "-t", "2", "-e", "(n) => { sleep(60000); return n }")
	cmd.Stdin = strings.NewReader("1\n2\n")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for its worker, then kill it.
	var workers []int
	for i := 0; i < 600 && len(workers) == 0; i++ {
		time.Sleep(50 * time.Millisecond)
		workers = childrenOf(t, cmd.Process.Pid)
	}
	if len(workers) == 0 {
		t.Fatalf("workers: %v", workers)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	for i := 0; i < 600; i++ {
		alive := 0
		for _, pid := range workers {
			if syscall.Kill(pid, 0) == nil && !zombie(pid) {
				alive++
			}
		}
		if alive == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("workers %v still alive 30s after their parent was killed", workers)
}

func zombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// A drained run (the first Ctrl-C, --halt soon) lets running items finish
// and starts none of the rest, even those already sent to a worker.
func TestDrain(t *testing.T) {
	p := newPool(t, setup{src: `(n) => { sleep(20); return n }`, pool: pool.Options{Throttle: 1}})
	var items []pool.Item
	for i := range 200 {
		items = append(items, pool.Item{Value: float64(i)})
	}
	drain := make(chan struct{})
	var once sync.Once
	n := 0
	for range p.Run(context.Background(), slices.Values(items), pool.Drain(drain), pool.Observe(func(r *vm.Result) {
		if r.Seq == 3 {
			once.Do(func() { close(drain) })
		}
	})) {
		n++
	}
	// Item 4 may have started before the drain was seen; no more.
	if n < 3 || n > 4 {
		t.Fatalf("%d results after draining at the third", n)
	}
}

// A worker killed while it starts is started again: the run goes on.
func TestKilledWhileStarting(t *testing.T) {
	script, err := vm.Compile("slow-init.js", t.TempDir(), `sleep(300); (n) => n`)
	if err != nil {
		t.Fatal(err)
	}
	e, err := worker.New(worker.Options{Script: script})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for i := 0; i < 600; i++ {
			if pids := children(t); len(pids) > 0 {
				_ = syscall.Kill(pids[0], syscall.SIGKILL)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	p, err := pool.New(context.Background(), pool.Options{Engine: e, Throttle: 1})
	<-killed
	if err != nil {
		t.Fatalf("a worker killed while starting failed the pool: %v", err)
	}
	defer p.Close()
	got := run(p, values(7.0))
	if r := got[1]; r.Status != vm.Success {
		t.Fatalf("%s %+v", r.Status, r.Error)
	}
}
