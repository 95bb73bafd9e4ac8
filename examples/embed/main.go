// Command embed shows a Go program running a script over items with the rsh
// pool: variables seeded into every runspace, a builtin module imported as
// a global, a per-item timeout, and results in input order.
//
//	go run ./examples/embed
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

const script = `
module.exports = function (name, params) {
  if (name === "slow") {
    sleep(10000); // longer than the timeout: this item reports Timeout
  }
  return greeting.text + ", " + name + params.suffix;
};
`

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	s, err := vm.Compile("greet.js", "", script)
	if err != nil {
		return err
	}
	factory, err := vm.NewFactory(s, vm.InitialState{
		Variables: []vm.Variable{{Name: "greeting", Value: map[string]any{"text": "hello"}, Description: "what to say"}},
		Params:    map[string]any{"suffix": "!"},
		Imports:   []string{"sleep"},
		Timeout:   200 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	p, err := pool.New(ctx, pool.Options{Factory: factory, Throttle: 4, KeepOrder: true})
	if err != nil {
		return err
	}
	defer p.Close()

	names := []string{"ada", "slow", "grace", "linus"}
	for res := range p.Run(ctx, pool.Items(names)) {
		values, err := res.Values()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%d %s %v\n", res.Seq, res.Status, values)
	}
	return nil
}
