package pool_test

import (
	"context"
	"testing"

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
