package pool_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// gate is a host function, gate(n), that scripts call to wait until the
// test lets them through (or their item's context ends); it returns n. It
// counts the calls waiting in it, so a test sees how many items run at
// once.
type gate struct {
	mu      sync.Mutex
	waiting int
	// entries records, for each call, its argument and how many calls
	// were waiting once it entered (itself included).
	entries map[int64]int
	pass    chan struct{} // a token lets one call through
	open    chan struct{} // closed: every call goes through
	once    sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{entries: map[int64]int{}, pass: make(chan struct{}), open: make(chan struct{})}
	t.Cleanup(g.openAll)
	return g
}

// state is the initial state that gives scripts the gate.
func (g *gate) state() vm.InitialState {
	return vm.InitialState{Functions: []vm.HostFunction{{Name: "gate", Func: g.call}}}
}

func (g *gate) call(ctx context.Context, args []any) (any, error) {
	n, _ := args[0].(int64)
	g.mu.Lock()
	g.waiting++
	g.entries[n] = g.waiting
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}()
	select {
	case <-g.pass:
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return n, nil
}

// let lets n waiting calls through, one by one.
func (g *gate) let(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case g.pass <- struct{}{}:
		case <-time.After(10 * time.Second):
			t.Fatal("no call waiting at the gate")
		}
	}
}

func (g *gate) openAll() { g.once.Do(func() { close(g.open) }) }

// Waiting returns how many calls wait at the gate now.
func (g *gate) Waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting
}

// entered returns how many calls were waiting when the call for n
// entered, and whether it did.
func (g *gate) entered(n int64) (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w, ok := g.entries[n]
	return w, ok
}

// waitFor waits until cond holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// runAsync runs items on p in a goroutine and returns a channel that
// gets the results once the run is over.
func runAsync(ctx context.Context, p *pool.Pool, n int, opts ...pool.RunOption) <-chan []*vm.Result {
	done := make(chan []*vm.Result, 1)
	go func() { done <- collect(p.Run(ctx, pool.Items(numbers(n)), opts...)) }()
	return done
}

// allSucceeded fails the test unless rs are n results with seqs 1..n, each
// once, all Success.
func allSucceeded(t *testing.T, rs []*vm.Result, n int) {
	t.Helper()
	seen := map[int64]bool{}
	for _, r := range rs {
		if r.Status != vm.Success {
			t.Errorf("seq %d: %s %+v", r.Seq, r.Status, r.Error)
		}
		if seen[r.Seq] {
			t.Errorf("seq %d twice", r.Seq)
		}
		seen[r.Seq] = true
	}
	if len(seen) != n {
		t.Errorf("%d results, want %d", len(seen), n)
	}
}

// Raising the throttle of a running pool starts more workers in the run
// going on: four items wait at the gate at once.
func TestSetThrottleRaise(t *testing.T) {
	g := newGate(t)
	p := newPool(t, `(n) => gate(n)`, g.state(), pool.Options{Throttle: 1})
	done := runAsync(context.Background(), p, 8)
	waitFor(t, "the first item", func() bool { return g.Waiting() == 1 })
	p.SetThrottle(4)
	if got := p.Throttle(); got != 4 {
		t.Fatalf("Throttle() = %d after SetThrottle(4)", got)
	}
	waitFor(t, "4 items at once", func() bool { return g.Waiting() == 4 })
	if m := p.Metrics(); m.Running != 4 {
		t.Errorf("Metrics().Running = %d, want 4", m.Running)
	}
	g.openAll()
	allSucceeded(t, <-done, 8)
}

// Lowering the throttle of a running pool: the running items finish, the
// surplus workers end and give back their runspaces (the idle ones above
// the throttle are closed), and the items after run one at a time.
func TestSetThrottleLower(t *testing.T) {
	const items = 12
	g := newGate(t)
	p := newPool(t, `(n) => gate(n)`, g.state(), pool.Options{Throttle: 4, Min: 4})
	done := runAsync(context.Background(), p, items)
	waitFor(t, "4 items at once", func() bool { return g.Waiting() == 4 })
	p.SetThrottle(1)
	if got := pool.Workers(p); len(got) != 1 || got[0] != 4 {
		t.Fatalf("workers before the running items end: %v, want [4]", got)
	}
	g.let(t, 4)
	waitFor(t, "one worker left", func() bool {
		w := pool.Workers(p)
		return len(w) == 1 && w[0] == 1
	})
	g.openAll()
	allSucceeded(t, <-done, items)
	// Items 1-4 were running when the throttle was lowered; each item
	// after them ran alone.
	for n := int64(5); n <= items; n++ {
		if w, ok := g.entered(n); !ok || w != 1 {
			t.Errorf("item %d entered with %d waiting, want 1 (ran: %v)", n, w, ok)
		}
	}
	if got := pool.IdleRunners(p); got > 1 {
		t.Errorf("%d idle runspaces after lowering the throttle to 1", got)
	}
}

// SetThrottle from several goroutines while runs go on: every item still
// yields exactly one result, and the pool ends with the last throttle set.
func TestSetThrottleConcurrent(t *testing.T) {
	const items = 3000
	p := newPool(t, `(n) => n`, vm.InitialState{}, pool.Options{Throttle: 2})
	ctx := context.Background()
	runs := []<-chan []*vm.Result{runAsync(ctx, p, items), runAsync(ctx, p, items)}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				p.SetThrottle(1 + (g+i)%5)
				_ = p.Throttle()
				_ = p.Metrics()
			}
		}()
	}
	wg.Wait()
	p.SetThrottle(3)
	for _, done := range runs {
		allSucceeded(t, <-done, items)
	}
	if got := p.Throttle(); got != 3 {
		t.Errorf("Throttle() = %d, want 3", got)
	}
	if got := pool.IdleRunners(p); got > 3 {
		t.Errorf("%d idle runspaces, more than the throttle 3", got)
	}
}

// A resized Limiter bounds the pools sharing it by its new size: raised,
// more items run at once; lowered, fewer.
func TestLimiterSetSize(t *testing.T) {
	g := newGate(t)
	lim := pool.NewLimiter(1)
	p := newPool(t, `(n) => gate(n)`, g.state(), pool.Options{Throttle: 4, Limiter: lim})
	done := runAsync(context.Background(), p, 10)
	waitFor(t, "the first item", func() bool { return g.Waiting() == 1 })
	lim.SetSize(3)
	if lim.Size() != 3 {
		t.Fatalf("Size() = %d after SetSize(3)", lim.Size())
	}
	waitFor(t, "3 items at once", func() bool { return g.Waiting() == 3 })
	lim.SetSize(1)
	g.let(t, 3)
	g.openAll()
	allSucceeded(t, <-done, 10)
	for n := int64(5); n <= 10; n++ {
		if w, ok := g.entered(n); !ok || w != 1 {
			t.Errorf("item %d entered with %d waiting, want 1 (ran: %v)", n, w, ok)
		}
	}
}

// Shutdown with time enough: the running items finish with Success, no
// other item starts, Shutdown returns nil once they have, and runs after
// it report ErrClosed.
func TestShutdownDrains(t *testing.T) {
	g := newGate(t)
	p := newPool(t, `(n) => gate(n)`, g.state(), pool.Options{Throttle: 2})
	done := runAsync(context.Background(), p, 100)
	waitFor(t, "2 items at once", func() bool { return g.Waiting() == 2 })
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	waitFor(t, "the pool to close", func() bool { return closedChan(pool.Draining(p)) })
	time.Sleep(20 * time.Millisecond) // time for Shutdown to return too early
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while items were running", err)
	default:
	}
	g.openAll()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	rs := <-done
	allSucceeded(t, rs, 2)
	for _, r := range rs {
		if r.Seq > 2 {
			t.Errorf("seq %d started after Shutdown", r.Seq)
		}
	}
	if got := pool.IdleRunners(p); got != 0 {
		t.Errorf("%d idle runspaces after Shutdown", got)
	}
	assertClosed(t, p)
}

// Shutdown whose context ends first: the running items are interrupted
// and report Stopped, and Shutdown returns the context's error once the
// run has given back its runspaces.
func TestShutdownDeadline(t *testing.T) {
	g := newGate(t)
	p := newPool(t, `(n) => gate(n)`, g.state(), pool.Options{Throttle: 2})
	done := runAsync(context.Background(), p, 100)
	waitFor(t, "2 items at once", func() bool { return g.Waiting() == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want context.DeadlineExceeded", err)
	}
	if m := p.Metrics(); m.Running != 0 || pool.IdleRunners(p) != 0 || len(pool.Workers(p)) != 0 {
		t.Errorf("after Shutdown: running %d, idle %d, runs %v", m.Running, pool.IdleRunners(p), pool.Workers(p))
	}
	rs := <-done
	if len(rs) != 2 {
		t.Fatalf("%d results, want the 2 running items'", len(rs))
	}
	for _, r := range rs {
		if r.Status != vm.Stopped {
			t.Errorf("seq %d: %s, want Stopped", r.Seq, r.Status)
		}
	}
	assertClosed(t, p)
}

// Close stops now: it interrupts the running items without waiting for
// them, and each still yields exactly one result, Stopped.
func TestCloseInterrupts(t *testing.T) {
	g := newGate(t)
	p := newPool(t, `(n) => gate(n)`, g.state(), pool.Options{Throttle: 2})
	done := runAsync(context.Background(), p, 100)
	waitFor(t, "2 items at once", func() bool { return g.Waiting() == 2 })
	p.Close()
	rs := <-done
	if len(rs) != 2 || rs[0].Status != vm.Stopped || rs[1].Status != vm.Stopped {
		t.Fatalf("results %+v, want the 2 running items Stopped", rs)
	}
	assertClosed(t, p)
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after Close: %v", err)
	}
}

// assertClosed checks that a run on p reports ErrClosed for every item.
func assertClosed(t *testing.T, p *pool.Pool) {
	t.Helper()
	rs := collect(p.Run(context.Background(), pool.Items(numbers(3))))
	if len(rs) != 3 {
		t.Fatalf("run on a closed pool: %d results, want 3", len(rs))
	}
	for _, r := range rs {
		if r.Status != vm.Exception || r.Error.Message != pool.ErrClosed.Error() {
			t.Errorf("run on a closed pool: seq %d %s %+v", r.Seq, r.Status, r.Error)
		}
	}
}

// closedChan reports whether ch is closed.
func closedChan(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
