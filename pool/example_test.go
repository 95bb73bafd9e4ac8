package pool_test

import (
	"context"
	"fmt"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// Run a script over a slice with variables, a parameter and a timeout,
// results in input order.
func Example() {
	script, err := vm.Compile("double.js", "", `
		module.exports = function (n, params) {
			if (n < 0) throw new RangeError("negative");
			return n * factor + params.offset;
		}`)
	if err != nil {
		panic(err)
	}
	factory, err := vm.NewFactory(script, vm.InitialState{
		Variables: []vm.Variable{{Name: "factor", Value: 2}},
		Params:    map[string]any{"offset": 1},
		Timeout:   time.Second,
	})
	if err != nil {
		panic(err)
	}
	p, err := pool.New(context.Background(), pool.Options{Factory: factory, Throttle: 4, KeepOrder: true})
	if err != nil {
		panic(err)
	}
	defer p.Close()
	for res := range p.Run(context.Background(), pool.Items([]int{1, 2, -3, 4})) {
		if res.Status != vm.Success {
			fmt.Println(res.Seq, res.Status, res.Error.Message)
			continue
		}
		fmt.Println(res.Seq, res.Status, string(res.Output[0]))
	}
	// Output:
	// 1 Success 3
	// 2 Success 5
	// 3 Exception RangeError: negative
	// 4 Success 9
}
