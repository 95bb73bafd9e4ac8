package worker_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
	"github.com/runspaces/rsh/worker"
)

// BenchmarkTrivial runs (n) => n over JSON items, with the runspaces in
// this process and in worker processes, at a throttle of 2: the cost of
// containment per item. Compare the two sides of one run:
//
//	go test -run - -bench Trivial -benchtime 200000x ./worker
func BenchmarkTrivial(b *testing.B) {
	script, err := vm.Compile("trivial.js", b.TempDir(), "(n) => n")
	if err != nil {
		b.Fatal(err)
	}
	f, err := vm.NewFactory(script, vm.InitialState{})
	if err != nil {
		b.Fatal(err)
	}
	items := func(n int) func(func(pool.Item) bool) {
		return func(yield func(pool.Item) bool) {
			for i := range n {
				if !yield(pool.Item{Value: json.RawMessage(strconv.Itoa(i))}) {
					return
				}
			}
		}
	}
	bench := func(b *testing.B, opts pool.Options) {
		p, err := pool.New(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		b.ResetTimer()
		n := 0
		for r := range p.Run(context.Background(), items(b.N)) {
			if r.Status != vm.Success {
				b.Fatal(r.Status)
			}
			n++
		}
		if n != b.N {
			b.Fatalf("%d results for %d items", n, b.N)
		}
	}
	b.Run("in-process", func(b *testing.B) {
		bench(b, pool.Options{Factory: f, Throttle: 2})
	})
	b.Run("worker-processes", func(b *testing.B) {
		e, err := worker.New(worker.Options{Script: script, MaxMemory: 256 << 20})
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		bench(b, pool.Options{Engine: e, Throttle: 2})
	})
}
