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

// newStream starts a stream on p, closed and drained when the test ends.
func newStream(t *testing.T, p *pool.Pool, queue int, opts ...pool.RunOption) *pool.Stream {
	s := p.Stream(context.Background(), queue, opts...)
	t.Cleanup(func() {
		s.Close()
		for range s.Results() {
		}
	})
	return s
}

// trySubmit submits n and fails the test if the stream is full.
func trySubmit(t *testing.T, s *pool.Stream, n int) int64 {
	t.Helper()
	seq, ok := s.TrySubmit(pool.Item{Value: n})
	if !ok {
		t.Fatalf("TrySubmit(%d): full", n)
	}
	return seq
}

// TrySubmit reports the stream full exactly when queue items wait for a
// worker: items that run, and items the run has read ahead of its
// workers, do not count.
func TestStreamTrySubmitFull(t *testing.T) {
	const throttle, queue = 2, 3
	g := newGate(t)
	p := newPool(t, `(n) => gate(n)`, g.state(), pool.Options{Throttle: throttle})
	s := newStream(t, p, queue)
	for n := 1; n <= throttle; n++ {
		trySubmit(t, s, n)
	}
	waitFor(t, "the first items to run", func() bool { return g.Waiting() == throttle })
	for n := throttle + 1; n <= throttle+queue; n++ {
		trySubmit(t, s, n)
	}
	if _, ok := s.TrySubmit(pool.Item{Value: 99}); ok {
		t.Fatalf("TrySubmit with %d items waiting: not full", queue)
	}
	// One item ends, a worker takes the next: room for one more.
	g.let(t, 1)
	waitFor(t, "room", func() bool {
		_, ok := s.TrySubmit(pool.Item{Value: throttle + queue + 1})
		return ok
	})
	if _, ok := s.TrySubmit(pool.Item{Value: 99}); ok {
		t.Fatal("TrySubmit: not full after one more item")
	}
	g.openAll()
	s.Close()
	var rs []*vm.Result
	for r := range s.Results() {
		rs = append(rs, r)
	}
	allSucceeded(t, rs, throttle+queue+1)
}

// Submit waits while the stream is full and goes on when there is room;
// it gives up when its context ends.
func TestStreamSubmitBlocks(t *testing.T) {
	g := newGate(t)
	p := newPool(t, `(n) => gate(n)`, g.state(), pool.Options{Throttle: 1})
	s := newStream(t, p, 1)
	ctx := context.Background()
	if _, err := s.Submit(ctx, pool.Item{Value: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first item to run", func() bool { return g.Waiting() == 1 })
	if _, err := s.Submit(ctx, pool.Item{Value: 2}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := s.Submit(short, pool.Item{Value: 3}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit to a full stream with a short context: %v, want DeadlineExceeded", err)
	}
	submitted := make(chan error, 1)
	go func() {
		_, err := s.Submit(ctx, pool.Item{Value: 3})
		submitted <- err
	}()
	time.Sleep(20 * time.Millisecond) // time for Submit to return too early
	select {
	case err := <-submitted:
		t.Fatalf("Submit to a full stream returned %v", err)
	default:
	}
	g.let(t, 1)
	if err := <-submitted; err != nil {
		t.Fatalf("Submit once there was room: %v", err)
	}
	g.openAll()
	s.Close()
	var rs []*vm.Result
	for r := range s.Results() {
		rs = append(rs, r)
	}
	allSucceeded(t, rs, 3)
}

// Each submission's seq is the one its result carries, from concurrent
// submitters; every item submitted yields exactly one result once the
// stream is closed, and Submit after Close reports ErrClosed.
func TestStreamSeqsAndExactlyOne(t *testing.T) {
	const submitters, each = 4, 300
	for _, ordered := range []bool{false, true} {
		p := newPool(t, `(n) => n * 2`, vm.InitialState{}, pool.Options{Throttle: 2, KeepOrder: ordered})
		s := newStream(t, p, 8)
		var mu sync.Mutex
		want := map[int64]int{} // seq -> value submitted
		var wg sync.WaitGroup
		for g := range submitters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					v := g*each + i
					var seq int64
					if i%2 == 0 {
						var err error
						if seq, err = s.Submit(context.Background(), pool.Item{Value: v}); err != nil {
							t.Error(err)
							return
						}
					} else {
						var ok bool
						for !ok {
							seq, ok = s.TrySubmit(pool.Item{Value: v})
						}
					}
					mu.Lock()
					if _, dup := want[seq]; dup {
						t.Errorf("seq %d given twice", seq)
					}
					want[seq] = v
					mu.Unlock()
				}
			}()
		}
		var rs []*vm.Result
		done := make(chan struct{})
		go func() {
			defer close(done)
			for r := range s.Results() {
				rs = append(rs, r)
			}
		}()
		wg.Wait()
		s.Close()
		if _, err := s.Submit(context.Background(), pool.Item{Value: 0}); !errors.Is(err, pool.ErrClosed) {
			t.Errorf("Submit after Close: %v, want ErrClosed", err)
		}
		if _, ok := s.TrySubmit(pool.Item{Value: 0}); ok {
			t.Error("TrySubmit after Close: ok")
		}
		<-done
		allSucceeded(t, rs, submitters*each)
		for i, r := range rs {
			if v, ok := want[r.Seq]; !ok || number(t, r) != float64(2*v) {
				t.Fatalf("seq %d: output %s, want %d", r.Seq, r.Output[0], 2*v)
			}
			if ordered && r.Seq != int64(i+1) {
				t.Fatalf("KeepOrder: result %d has seq %d", i, r.Seq)
			}
		}
	}
}

// Submit after the stream's context ended or while the pool shuts down
// reports ErrClosed; a stream started on a closed pool takes nothing and
// its results end.
func TestStreamClosedBy(t *testing.T) {
	p := newPool(t, `(n) => n`, vm.InitialState{}, pool.Options{Throttle: 1})
	ctx, cancel := context.WithCancel(context.Background())
	s := p.Stream(ctx, 0)
	cancel()
	if _, err := s.Submit(context.Background(), pool.Item{Value: 1}); !errors.Is(err, pool.ErrClosed) || !errors.Is(err, context.Canceled) {
		t.Errorf("Submit after the stream's context ended: %v, want ErrClosed and Canceled", err)
	}
	for range s.Results() {
	}

	g := newGate(t)
	p = newPool(t, `(n) => gate(n)`, g.state(), pool.Options{Throttle: 1})
	s = newStream(t, p, 1)
	trySubmit(t, s, 1)
	waitFor(t, "the item to run", func() bool { return g.Waiting() == 1 })
	trySubmit(t, s, 2)
	submitted := make(chan error, 1)
	go func() {
		_, err := s.Submit(context.Background(), pool.Item{Value: 3})
		submitted <- err
	}()
	shut := make(chan error, 1)
	go func() { shut <- p.Shutdown(context.Background()) }()
	if err := <-submitted; !errors.Is(err, pool.ErrClosed) {
		t.Errorf("Submit waiting as the pool shuts down: %v, want ErrClosed", err)
	}
	g.openAll()
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	var rs []*vm.Result
	for r := range s.Results() {
		rs = append(rs, r)
	}
	// Item 1 was running and finishes; item 2 waited and never starts.
	allSucceeded(t, rs, 1)

	after := p.Stream(context.Background(), 0)
	if _, err := after.Submit(context.Background(), pool.Item{Value: 1}); !errors.Is(err, pool.ErrClosed) {
		t.Errorf("Submit on a stream of a closed pool: %v, want ErrClosed", err)
	}
	for range after.Results() {
	}
	after.Close()
}
