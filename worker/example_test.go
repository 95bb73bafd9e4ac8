package worker_test

import (
	"context"
	"fmt"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
	"github.com/runspaces/rsh/worker"
)

// A program that runs untrusted scripts hosts their runspaces in worker
// processes, each bounded to 64 MiB: a script that exhausts memory ends
// its item as MemoryLimit instead of taking the program down. The program
// must call worker.Main first thing in its main (here, the test binary's
// TestMain does).
func ExampleNew() {
	script, _ := vm.Compile("untrusted.js", "", `(n) => {
		if (n === 2) { const hog = []; for (;;) hog.push("x".repeat(1 << 20) + hog.length) }
		return n * 10
	}`)
	engine, err := worker.New(worker.Options{Script: script, MaxMemory: 64 << 20})
	if err != nil {
		panic(err)
	}
	defer engine.Close()
	p, err := pool.New(context.Background(), pool.Options{Engine: engine, Throttle: 2, KeepOrder: true})
	if err != nil {
		panic(err)
	}
	defer p.Close()
	for res := range p.Run(context.Background(), pool.Items([]int{1, 2, 3})) {
		vals, _ := res.Values()
		fmt.Println(res.Seq, res.Status, vals)
	}
	// Output:
	// 1 Success [10]
	// 2 MemoryLimit []
	// 3 Success [30]
}
