package vm_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/runspaces/rsh/vm"
)

// BenchmarkNewRunspace measures creating a runspace and running the
// script's init with every builtin in place.
func BenchmarkNewRunspace(b *testing.B) {
	s, err := vm.Compile("b.js", "", `const fs = require("fs"); module.exports = (n) => n * n`)
	if err != nil {
		b.Fatal(err)
	}
	f, err := vm.NewFactory(s, vm.InitialState{Variables: []vm.Variable{{Name: "cfg", Value: map[string]any{"a": 1}}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rs, err := f.NewRunspace(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		rs.Close()
	}
}

// BenchmarkIdleRunspaceHeap reports the heap held by an idle runspace that
// has run one item.
func BenchmarkIdleRunspaceHeap(b *testing.B) {
	s, err := vm.Compile("b.js", "", `(n) => n * n`)
	if err != nil {
		b.Fatal(err)
	}
	f, err := vm.NewFactory(s, vm.InitialState{})
	if err != nil {
		b.Fatal(err)
	}
	const n = 200
	var before, after runtime.MemStats
	for b.Loop() {
		rss := make([]*vm.Runspace, 0, n)
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range n {
			rs, err := f.NewRunspace(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			rs.Invoke(context.Background(), 3)
			rss = append(rss, rs)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/runspace")
		for _, rs := range rss {
			rs.Close()
		}
	}
}

// BenchmarkInvoke measures one item through a warm runspace.
func BenchmarkInvoke(b *testing.B) {
	s, _ := vm.Compile("b.js", "", `(n) => n * n`)
	f, _ := vm.NewFactory(s, vm.InitialState{})
	rs, err := f.NewRunspace(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		rs.Invoke(ctx, 7)
	}
}
