package pool_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// BenchmarkDispatch is the cost of one item through the pool — reading it
// from the sequence, batching, running (n) => n, delivering the result —
// without any command-line decoding or output.
func BenchmarkDispatch(b *testing.B) {
	for _, ordered := range []bool{false, true} {
		name := "unordered"
		if ordered {
			name = "ordered"
		}
		b.Run(name, func(b *testing.B) {
			s, _ := vm.Compile("b.js", "", `(n) => n`)
			f, _ := vm.NewFactory(s, vm.InitialState{})
			p, err := pool.New(context.Background(), pool.Options{Factory: f, KeepOrder: ordered})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			items := func(yield func(pool.Item) bool) {
				for i := 0; i < b.N; i++ {
					if !yield(pool.Item{Value: i}) {
						return
					}
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for r := range p.Run(context.Background(), items) {
				if r.Status != vm.Success {
					b.Fatal(r.Status)
				}
				n++
			}
			if n != b.N {
				b.Fatalf("%d results for %d items", n, b.N)
			}
		})
	}
}

// BenchmarkStream is BenchmarkDispatch's cost of one item through the
// pool when it is submitted to a Stream (from one goroutine, with Submit)
// instead of read from a sequence: the submission's slot and seq, and one
// more channel hand-off each way. The queue is the throttle (the default)
// or ReadAhead items: a short queue keeps the batches short.
func BenchmarkStream(b *testing.B) {
	for _, queue := range []int{0, pool.ReadAhead} {
		b.Run(fmt.Sprintf("queue=%d", queue), func(b *testing.B) {
			s, _ := vm.Compile("b.js", "", `(n) => n`)
			f, _ := vm.NewFactory(s, vm.InitialState{})
			p, err := pool.New(context.Background(), pool.Options{Factory: f})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			b.ReportAllocs()
			b.ResetTimer()
			st := p.Stream(context.Background(), queue)
			go func() {
				defer st.Close()
				for i := 0; i < b.N; i++ {
					if _, err := st.Submit(context.Background(), pool.Item{Value: i}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
			n := 0
			for r := range st.Results() {
				if r.Status != vm.Success {
					b.Fatal(r.Status)
				}
				n++
			}
			if n != b.N {
				b.Fatalf("%d results for %d items", n, b.N)
			}
		})
	}
}

// BenchmarkMetrics is the cost of one Metrics call, what a progress
// display pays per refresh.
func BenchmarkMetrics(b *testing.B) {
	s, _ := vm.Compile("b.js", "", `(n) => n`)
	f, _ := vm.NewFactory(s, vm.InitialState{})
	p, err := pool.New(context.Background(), pool.Options{Factory: f})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for range p.Run(context.Background(), pool.Items(make([]int, 1000))) {
	}
	b.ReportAllocs()
	b.ResetTimer()
	var m pool.Metrics
	for i := 0; i < b.N; i++ {
		m = p.Metrics()
	}
	if m.Completed.Total() != 1000 {
		b.Fatalf("%d completed, want 1000", m.Completed.Total())
	}
}

// BenchmarkCountBatch is what Metrics adds to each item a worker runs:
// counting a batch's results (by status, retries, duration bucket) and
// adding them to the pool's counters, per item, for a batch of one (slow
// items) and a full batch (trivial items), from one worker and from
// several at once (contended counters).
func BenchmarkCountBatch(b *testing.B) {
	s, _ := vm.Compile("b.js", "", `(n) => n`)
	f, _ := vm.NewFactory(s, vm.InitialState{})
	p, err := pool.New(context.Background(), pool.Options{Factory: f})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for _, size := range []int{1, 256} {
		out := make([]*vm.Result, size)
		for i := range out {
			out[i] = &vm.Result{Status: vm.Success, Duration: time.Duration(300+i) * time.Nanosecond, Attempts: 1}
		}
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i += size {
				pool.CountBatch(p, out)
			}
		})
		b.Run(fmt.Sprintf("batch=%d/parallel", size), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for n := 0; pb.Next(); n++ {
					if n%size == 0 {
						pool.CountBatch(p, out)
					}
				}
			})
		})
	}
}
