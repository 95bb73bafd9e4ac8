package pool_test

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/internal/testutil"
	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newPool(t *testing.T, src string, state vm.InitialState, opts pool.Options) *pool.Pool {
	t.Helper()
	s, err := vm.Compile("test.js", t.TempDir(), src)
	return poolOf(t, s, err, state, opts)
}

// newFilePool is newPool for a script file.
func newFilePool(t *testing.T, file string, state vm.InitialState, opts pool.Options) *pool.Pool {
	t.Helper()
	s, err := vm.CompileFile(file)
	return poolOf(t, s, err, state, opts)
}

func poolOf(t *testing.T, s *vm.Script, err error, state vm.InitialState, opts pool.Options) *pool.Pool {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	f, err := vm.NewFactory(s, state)
	if err != nil {
		t.Fatal(err)
	}
	opts.Factory = f
	p, err := pool.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func numbers(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func collect(seq iter.Seq[*vm.Result]) []*vm.Result {
	var out []*vm.Result
	for r := range seq {
		out = append(out, r)
	}
	return out
}

func number(t *testing.T, r *vm.Result) float64 {
	t.Helper()
	if len(r.Output) != 1 {
		t.Fatalf("seq %d: %d outputs, want 1 (status %s, error %+v)", r.Seq, len(r.Output), r.Status, r.Error)
	}
	f, err := strconv.ParseFloat(string(r.Output[0]), 64)
	if err != nil {
		t.Fatalf("seq %d: output %s: %v", r.Seq, r.Output[0], err)
	}
	return f
}

func TestSumOfSquares(t *testing.T) {
	for _, throttle := range []int{1, 10} {
		for _, ordered := range []bool{false, true} {
			t.Run(strconv.Itoa(throttle)+"/ordered="+strconv.FormatBool(ordered), func(t *testing.T) {
				p := newPool(t, `(n) => n * n`, vm.InitialState{}, pool.Options{Throttle: throttle, KeepOrder: ordered})
				var sum float64
				results := collect(p.Run(context.Background(), pool.Items(numbers(100))))
				for i, r := range results {
					if r.Status != vm.Success {
						t.Fatalf("seq %d: %s", r.Seq, r.Status)
					}
					if ordered && r.Seq != int64(i+1) {
						t.Fatalf("result %d has seq %d", i, r.Seq)
					}
					sum += number(t, r)
				}
				if len(results) != 100 || sum != 338350 {
					t.Fatalf("%d results summing to %v, want 100 summing to 338350", len(results), sum)
				}
			})
		}
	}
}

// Items finish in reverse order; KeepOrder must still deliver them in input
// order, and without it they arrive as they finish.
func TestKeepOrder(t *testing.T) {
	src := `async (n) => { await new Promise(r => setTimeout(r, (11 - n) * 15)); return n }`
	for _, ordered := range []bool{true, false} {
		p := newPool(t, src, vm.InitialState{}, pool.Options{Throttle: 10, Min: 10, KeepOrder: ordered})
		var got []float64
		for r := range p.Run(context.Background(), pool.Items(numbers(10))) {
			got = append(got, number(t, r))
		}
		inOrder := true
		for i, v := range got {
			if v != float64(i+1) {
				inOrder = false
			}
		}
		if inOrder != ordered {
			t.Errorf("KeepOrder=%v: got %v", ordered, got)
		}
	}
}

// Every item yields exactly one result, whatever happens to it.
func TestExactlyOneResult(t *testing.T) {
	src := `(x) => {
		if (x === "throw") throw new Error("boom");
		if (x === "loop") while (true) {}
		if (x === "deep") { const f = (n) => f(n + 1) + 1; return f(0) }
		if (x === "err") writeError("bad");
		return x;
	}`
	p := newPool(t, src, vm.InitialState{Timeout: 300 * time.Millisecond, MaxCallStackSize: 500}, pool.Options{Throttle: 3})
	kinds := []string{"ok", "throw", "loop", "deep", "err", "invalid"}
	want := map[string]vm.Status{"ok": vm.Success, "throw": vm.Exception, "loop": vm.Timeout, "deep": vm.Exception, "err": vm.Error, "invalid": vm.InvalidInput}
	var items []pool.Item
	for i := 0; i < 60; i++ {
		k := kinds[i%len(kinds)]
		it := pool.Item{Value: k}
		if k == "invalid" {
			it = pool.Item{Input: json.RawMessage(`"{oops"`), Err: errors.New("invalid JSON")}
		}
		items = append(items, it)
	}
	seen := map[int64]bool{}
	for r := range p.Run(context.Background(), func(yield func(pool.Item) bool) {
		for _, it := range items {
			if !yield(it) {
				return
			}
		}
	}) {
		if seen[r.Seq] {
			t.Fatalf("seq %d reported twice", r.Seq)
		}
		seen[r.Seq] = true
		k := kinds[(r.Seq-1)%int64(len(kinds))]
		if r.Status != want[k] {
			t.Errorf("seq %d (%s): status %s, want %s (%+v)", r.Seq, k, r.Status, want[k], r.Error)
		}
	}
	if len(seen) != len(items) {
		t.Fatalf("%d results for %d items", len(seen), len(items))
	}
}

// Cancelling the context mid-run: the running items are interrupted and
// report Stopped, each exactly once; items that never started yield
// nothing; no goroutine is left behind (TestMain checks with goleak).
func TestCancelMidRun(t *testing.T) {
	const throttle = 4
	p := newPool(t, `(n) => { sleep(n === 1 ? 200 : 10000); return n }`, vm.InitialState{}, pool.Options{Throttle: throttle, Min: throttle})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := map[int64]vm.Status{}
	for r := range p.Run(ctx, pool.Items(numbers(1000))) {
		if _, dup := got[r.Seq]; dup {
			t.Fatalf("seq %d twice", r.Seq)
		}
		got[r.Seq] = r.Status
		if r.Status == vm.Success {
			cancel()
		}
	}
	if got[1] != vm.Success {
		t.Errorf("seq 1: %s, want Success", got[1])
	}
	// Items 2-4 were running when the run was cancelled; the worker that
	// finished item 1 may have started one more.
	for seq := int64(2); seq <= throttle; seq++ {
		if got[seq] != vm.Stopped {
			t.Errorf("seq %d: %q, want Stopped", seq, got[seq])
		}
	}
	if len(got) > throttle+1 {
		t.Errorf("%d results: items that never started must yield nothing (%v)", len(got), got)
	}
}

// Draining lets running items finish normally and starts nothing new.
func TestDrain(t *testing.T) {
	const throttle = 3
	p := newPool(t, `(n) => { sleep(n === 1 ? 100 : 300); return n }`, vm.InitialState{}, pool.Options{Throttle: throttle, Min: throttle})
	drain := make(chan struct{})
	var got []*vm.Result
	for r := range p.Run(context.Background(), pool.Items(numbers(1000)), pool.Drain(drain)) {
		got = append(got, r)
		if r.Seq == 1 {
			close(drain)
		}
	}
	if len(got) < throttle || len(got) > throttle+1 {
		t.Fatalf("%d results, want the %d running items (plus at most one)", len(got), throttle)
	}
	for _, r := range got {
		if r.Status != vm.Success {
			t.Errorf("seq %d: %s, want Success: draining must not interrupt", r.Seq, r.Status)
		}
	}
}

// Retries: an item that fails on its first two attempts succeeds on the
// third, and says so.
func TestRetries(t *testing.T) {
	src := `(x) => { globalThis.tries = (globalThis.tries || 0) + 1; if (tries < 3) throw new Error("try " + tries); return tries }`
	for _, tc := range []struct {
		retries  int
		status   vm.Status
		attempts int
	}{{2, vm.Success, 3}, {1, vm.Exception, 2}, {0, vm.Exception, 1}} {
		p := newPool(t, src, vm.InitialState{}, pool.Options{Throttle: 1, Retries: tc.retries, RetryDelay: time.Millisecond})
		rs := collect(p.Run(context.Background(), pool.Items([]int{1})))
		if len(rs) != 1 || rs[0].Status != tc.status || rs[0].Attempts != tc.attempts {
			t.Errorf("retries %d: %s after %d attempts, want %s after %d", tc.retries, rs[0].Status, rs[0].Attempts, tc.status, tc.attempts)
		}
	}
}

// A timed-out item is retried too, each attempt in a fresh runspace.
func TestRetryAfterTimeout(t *testing.T) {
	p := newPool(t, `(x) => { while (true) {} }`, vm.InitialState{Timeout: 30 * time.Millisecond}, pool.Options{Throttle: 1, Retries: 2})
	rs := collect(p.Run(context.Background(), pool.Items([]string{"slow"})))
	if rs[0].Status != vm.Timeout || rs[0].Attempts != 3 {
		t.Fatalf("%s after %d attempts, want Timeout after 3", rs[0].Status, rs[0].Attempts)
	}
	if rs[0].Duration < 90*time.Millisecond {
		t.Errorf("duration %s does not span the three attempts", rs[0].Duration)
	}
}

func TestBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 30: pool.MaxRetryDelay} {
		if got := pool.Backoff(100*time.Millisecond, attempt); got != want {
			t.Errorf("attempt %d: %s, want %s", attempt, got, want)
		}
	}
}

// Items that stand for several records (batches) advance seqs by their
// count, in order.
func TestCountedItems(t *testing.T) {
	p := newPool(t, `(xs) => xs.length`, vm.InitialState{}, pool.Options{Throttle: 2, KeepOrder: true})
	items := func(yield func(pool.Item) bool) {
		for _, n := range []int{3, 3, 1} {
			arr := make([]int, n)
			if !yield(pool.Item{Value: arr, Count: n}) {
				return
			}
		}
	}
	rs := collect(p.Run(context.Background(), items))
	if len(rs) != 3 || rs[0].Seq != 1 || rs[1].Seq != 4 || rs[2].Seq != 7 || rs[0].BatchSize != 3 || rs[2].BatchSize != 0 {
		t.Fatalf("seqs/batch sizes: %d/%d %d/%d %d/%d", rs[0].Seq, rs[0].BatchSize, rs[1].Seq, rs[1].BatchSize, rs[2].Seq, rs[2].BatchSize)
	}
}

// Breaking out of the result sequence stops the run and releases
// everything.
func TestBreakEarly(t *testing.T) {
	p := newPool(t, `(n) => { sleep(5); return n }`, vm.InitialState{}, pool.Options{Throttle: 2})
	n := 0
	for range p.Run(context.Background(), pool.Items(numbers(1000))) {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("got %d results", n)
	}
}

func holdState(port int) vm.InitialState {
	return vm.InitialState{
		Params:      map[string]any{"port": port},
		Permissions: builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"127.0.0.1"}}},
	}
}

// The throttle bounds items running at once, and is reached.
func TestThrottleHolds(t *testing.T) {
	c := testutil.NewConcurrency(t)
	p := newPool(t, testutil.HoldScript, holdState(c.Port()), pool.Options{Throttle: 3})
	for r := range p.Run(context.Background(), pool.Items(numbers(30))) {
		if r.Status != vm.Success {
			t.Fatalf("seq %d: %s %+v", r.Seq, r.Status, r.Error)
		}
	}
	if got := c.Peak(); got > 3 || got < 2 {
		t.Errorf("peak concurrency %d, want at most 3 (and more than 1)", got)
	}
}

// A Limiter shared by two pools running at once bounds their total.
func TestSharedLimiter(t *testing.T) {
	c := testutil.NewConcurrency(t)
	lim := pool.NewLimiter(3)
	var wg sync.WaitGroup
	for range 2 {
		p := newPool(t, testutil.HoldScript, holdState(c.Port()), pool.Options{Throttle: 3, Limiter: lim})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range p.Run(context.Background(), pool.Items(numbers(20))) {
				if r.Status != vm.Success {
					t.Errorf("seq %d: %s %+v", r.Seq, r.Status, r.Error)
				}
			}
		}()
	}
	wg.Wait()
	if got := c.Peak(); got > 3 || got < 2 {
		t.Errorf("peak concurrency across two pools %d, want at most 3 (and more than 1)", got)
	}
}

// With KeepOrder and a slow first item, the reader waits: no more than the
// window (plus the item in each hand-off) is taken before the first result.
func TestKeepOrderWindowBounded(t *testing.T) {
	const window = 8
	p := newPool(t, `(n) => { if (n === 1) sleep(300); return n }`, vm.InitialState{}, pool.Options{Throttle: 2, KeepOrder: true, Window: window})
	var taken atomic.Int64
	const total = 4 * pool.ReadAhead
	items := func(yield func(pool.Item) bool) {
		for i := 1; i <= total; i++ {
			taken.Add(1)
			if !yield(pool.Item{Value: i}) {
				return
			}
		}
	}
	first := true
	n := 0
	for r := range p.Run(context.Background(), items) {
		if first {
			first = false
			if got := taken.Load(); got > 2*window+pool.ReadAhead+1 { // in flight, one batch waiting for the window, read-ahead, one in hand
				t.Errorf("%d items taken before the first result, window is %d and read-ahead %d", got, window, pool.ReadAhead)
			}
		}
		n++
		if r.Seq != int64(n) {
			t.Fatalf("result %d has seq %d", n, r.Seq)
		}
	}
	if n != total {
		t.Fatalf("%d results", n)
	}
}

// A runspace that timed out is replaced; the next item runs in a new one.
func TestBrokenRunspaceReplaced(t *testing.T) {
	p := newPool(t, `(x) => { if (x === "loop") while (true) {} return x }`, vm.InitialState{Timeout: 50 * time.Millisecond}, pool.Options{Throttle: 1, KeepOrder: true})
	rs := collect(p.Run(context.Background(), pool.Items([]string{"a", "loop", "b"})))
	if rs[0].Status != vm.Success || rs[1].Status != vm.Timeout || rs[2].Status != vm.Success {
		t.Fatalf("statuses %s %s %s", rs[0].Status, rs[1].Status, rs[2].Status)
	}
	if rs[0].Runspace != rs[1].Runspace || rs[2].Runspace == rs[1].Runspace {
		t.Errorf("runspaces %d %d %d: want the timed-out one replaced", rs[0].Runspace, rs[1].Runspace, rs[2].Runspace)
	}
}

func TestFresh(t *testing.T) {
	src := `(x) => { const seen = globalThis.seen || 0; globalThis.seen = seen + 1; return seen }`
	for _, fresh := range []bool{false, true} {
		p := newPool(t, src, vm.InitialState{}, pool.Options{Throttle: 1, Fresh: fresh, KeepOrder: true})
		var sum float64
		for r := range p.Run(context.Background(), pool.Items(numbers(5))) {
			sum += number(t, r)
		}
		if want := map[bool]float64{false: 0 + 1 + 2 + 3 + 4, true: 0}[fresh]; sum != want {
			t.Errorf("fresh=%v: sum of seen %v, want %v", fresh, sum, want)
		}
	}
}

func TestInitError(t *testing.T) {
	s, err := vm.Compile("init.js", "", `throw new Error("no config")`)
	if err != nil {
		t.Fatal(err)
	}
	f, err := vm.NewFactory(s, vm.InitialState{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.New(context.Background(), pool.Options{Factory: f})
	var ie *vm.InitError
	if !errors.As(err, &ie) {
		t.Fatalf("New: %v, want an *vm.InitError", err)
	}
}

func TestClosed(t *testing.T) {
	p := newPool(t, `(x) => x`, vm.InitialState{}, pool.Options{Throttle: 1})
	p.Close()
	for r := range p.Run(context.Background(), pool.Items([]int{1})) {
		if r.Status != vm.Exception || r.Error.Message != pool.ErrClosed.Error() {
			t.Fatalf("run on a closed pool: %s %+v", r.Status, r.Error)
		}
	}
}

func TestChan(t *testing.T) {
	p := newPool(t, `(x) => x + 1`, vm.InitialState{}, pool.Options{Throttle: 2, KeepOrder: true})
	ch := make(chan int)
	go func() {
		for i := range 3 {
			ch <- i
		}
		close(ch)
	}()
	var got []float64
	for r := range p.Run(context.Background(), pool.Chan(ch)) {
		got = append(got, number(t, r))
	}
	if len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("got %v", got)
	}
}

// A run's context is cancelled when the run ends; the idle runspaces it
// used must come out of that clean and serve the next run.
func TestRunspacesSurviveTheEndOfARun(t *testing.T) {
	p := newPool(t, `(x) => x`, vm.InitialState{}, pool.Options{Throttle: 1, Min: 1})
	first := collect(p.Run(context.Background(), pool.Items([]int{1})))
	second := collect(p.Run(context.Background(), pool.Items([]int{2})))
	if first[0].Status != vm.Success || second[0].Status != vm.Success {
		t.Fatalf("statuses %s %s (%+v)", first[0].Status, second[0].Status, second[0].Error)
	}
	if first[0].Runspace != second[0].Runspace {
		t.Errorf("runspace %d was replaced by %d between runs", first[0].Runspace, second[0].Runspace)
	}
}

// settle makes the test wait, once it is over and its pool closed, for
// goroutines it abandoned to end (when their native call returns), then
// checks that nothing else was left behind.
func settle(t *testing.T) {
	// Registered before the pool's Close, so it runs after it.
	t.Cleanup(func() {
		var err error
		for i := 0; i < 600; i++ {
			if err = goleak.Find(); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Error(err)
	})
}

// An item stuck in native code past its timeout gets its Timeout result
// once the grace period is over, its runspace is never used again, and the
// items after it in the same batch still run.
func TestTimeoutWinsOverNativeCode(t *testing.T) {
	settle(t)
	p := newFilePool(t, "testdata/stuck.js", vm.InitialState{Timeout: 10 * time.Millisecond},
		pool.Options{Throttle: 1, KeepOrder: true, Grace: 10 * time.Millisecond})
	items := []pool.Item{{Value: "stuck"}, {Value: 2.0}, {Value: 3.0}}
	res := collect(p.Run(context.Background(), slices.Values(items)))
	if len(res) != 3 {
		t.Fatalf("got %d results, want 3", len(res))
	}
	if res[0].Status != vm.Timeout || !strings.Contains(res[0].Error.Message, "abandoned") {
		t.Fatalf("stuck item: %s %+v", res[0].Status, res[0].Error)
	}
	for _, r := range res[1:] {
		if r.Status != vm.Success {
			t.Fatalf("item %d: %s %+v", r.Seq, r.Status, r.Error)
		}
		if r.Runspace == res[0].Runspace {
			t.Fatalf("item %d ran on the abandoned runspace %d", r.Seq, r.Runspace)
		}
	}
}

// Cancelling a run whose item is stuck in native code ends the run after
// the grace period, with that item Stopped.
func TestCancelWinsOverNativeCode(t *testing.T) {
	settle(t)
	p := newFilePool(t, "testdata/stuck.js", vm.InitialState{},
		pool.Options{Throttle: 1, Grace: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Item 1 ends, the stuck item starts right after it on the same
	// runner, and the run is cancelled while it is stuck.
	items := slices.Values([]pool.Item{{Value: 1.0}, {Value: "stuck"}})
	got := collect(p.Run(ctx, items, pool.Observe(func(r *vm.Result) {
		if r.Seq == 1 {
			time.AfterFunc(20*time.Millisecond, cancel)
		}
	})))
	if len(got) != 2 || got[1].Status != vm.Stopped || !strings.Contains(got[1].Error.Message, "abandoned") {
		t.Fatalf("results: %+v", got)
	}

}
