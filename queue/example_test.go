package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"slices"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/queue"
	"github.com/runspaces/rsh/vm"
)

// A job put on a queue and done by one worker, on an embedded server.
// Workers on other machines would run the same loop against the same
// server.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "queue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := queue.Serve(queue.ServeOptions{StoreDir: dir, Port: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Shutdown()
	target, err := queue.ParseURL(s.URL() + "/SQUARES")
	if err != nil {
		log.Fatal(err)
	}
	c, err := queue.Connect(ctx, target, queue.ConnOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// rsh queue put
	if _, err := c.Put(ctx, target.Stream, "example", pool.Items([]int{1, 2, 3})); err != nil {
		log.Fatal(err)
	}

	// rsh run --from .../SQUARES --to .../SQUARES_RESULTS
	script, err := vm.Compile("square.js", "", "(n) => n * n")
	if err != nil {
		log.Fatal(err)
	}
	f, err := vm.NewFactory(script, vm.InitialState{})
	if err != nil {
		log.Fatal(err)
	}
	p, err := pool.New(ctx, pool.Options{Factory: f, Throttle: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	w, err := c.Work(ctx, queue.WorkOptions{From: target.Stream, To: "SQUARES_RESULTS", MaxInFlight: 4})
	if err != nil {
		log.Fatal(err)
	}
	n := 0
	for res := range p.Run(ctx, w.Items()) {
		if err := w.Done(res); err != nil {
			log.Fatal(err)
		}
		if n++; n == 3 { // a real worker runs until it is told to stop
			w.Stop()
		}
	}
	if err := w.Close(ctx); err != nil {
		log.Fatal(err)
	}

	// rsh queue get
	var lines []string
	err = c.Results(ctx, "SQUARES_RESULTS", false, func(record []byte) error {
		var r vm.Result
		if err := json.Unmarshal(record, &r); err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("seq %d: %s %s", r.Seq, r.Status, r.Output[0]))
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	slices.Sort(lines) // stored in the order they finished
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// seq 1: Success 1
	// seq 2: Success 4
	// seq 3: Success 9
}
