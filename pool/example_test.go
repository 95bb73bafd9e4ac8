package pool_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// Run a script over a slice with variables, a parameter and a timeout,
// results in input order and decoded as ints.
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
		out, err := vm.Decode[int](res)
		if err != nil {
			panic(err)
		}
		fmt.Println(res.Seq, res.Status, out)
	}
	// Output:
	// 1 Success [3]
	// 2 Success [5]
	// 3 Exception RangeError: negative
	// 4 Success [9]
}

// The embedding snippet of README.md (TestReadmeEmbedding keeps the two
// the same): errors are ignored there for brevity.
func Example_embedding() {
	ctx := context.Background()
	script, _ := vm.Compile("double.js", "", `(n, params) => n * factor + params.offset`)
	factory, _ := vm.NewFactory(script, vm.InitialState{
		Variables: []vm.Variable{{Name: "factor", Value: 2}},
		Params:    map[string]any{"offset": 1},
		Imports:   []string{"sleep"},
		Timeout:   time.Second,
		// Permissions: builtins.Permissions{...}; the zero value denies all.
	})
	p, _ := pool.New(ctx, pool.Options{Factory: factory, Throttle: 4, KeepOrder: true})
	defer p.Close()
	for res := range p.Run(ctx, pool.Items([]int{1, 2, 3})) {
		out, _ := vm.Decode[int](res) // or res.Values() for []any
		fmt.Println(res.Seq, res.Status, out)
	}
	// Output:
	// 1 Success [3]
	// 2 Success [5]
	// 3 Success [7]
}

// TestReadmeEmbedding: the Embedding section of README.md shows
// Example_embedding's code (after its ctx line) and its output, as they are.
func TestReadmeEmbedding(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Embedding\n")
	if !ok {
		t.Fatal("README.md has no Embedding section")
	}
	blocks := fencedBlocks(section, 2)
	if len(blocks) < 2 {
		t.Fatalf("README.md's Embedding section has %d code blocks, want the code and its output", len(blocks))
	}

	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(src), "func Example_embedding() {\n\tctx := context.Background()\n")
	if !ok {
		t.Fatal("example_test.go: Example_embedding does not begin with its ctx line")
	}
	code, output, ok := strings.Cut(body, "\t// Output:\n")
	if !ok {
		t.Fatal("example_test.go: Example_embedding has no Output")
	}
	output, _, _ = strings.Cut(output, "}\n")
	if want := dedent(code, "\t"); blocks[0] != want {
		t.Errorf("README.md's embedding code:\n%s\nwant Example_embedding's:\n%s", blocks[0], want)
	}
	if want := dedent(output, "\t// "); blocks[1] != want {
		t.Errorf("README.md's embedding output:\n%s\nwant Example_embedding's:\n%s", blocks[1], want)
	}
}

// fencedBlocks returns the contents of the first n ``` blocks of s.
func fencedBlocks(s string, n int) []string {
	var blocks []string
	for len(blocks) < n {
		_, rest, ok := strings.Cut(s, "```")
		if !ok {
			break
		}
		_, rest, _ = strings.Cut(rest, "\n") // the language tag
		block, after, ok := strings.Cut(rest, "```")
		if !ok {
			break
		}
		blocks = append(blocks, block)
		s = after
	}
	return blocks
}

// dedent removes prefix from the start of every line of s.
func dedent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, prefix)
	}
	return strings.Join(lines, "")
}

// A stream takes items one at a time: TrySubmit says when the queue is
// full instead of waiting, Submit waits for room. Here the runspace is
// busy until the host says so, and two items may wait for it.
func ExamplePool_Stream() {
	ctx := context.Background()
	started, release := make(chan struct{}, 4), make(chan struct{})
	hold := vm.HostFunction{Name: "hold", Func: func(ctx context.Context, _ []any) (any, error) {
		started <- struct{}{}
		select {
		case <-release:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
	script, _ := vm.Compile("square.js", "", `(n) => { hold(); return n * n }`)
	factory, _ := vm.NewFactory(script, vm.InitialState{Functions: []vm.HostFunction{hold}})
	p, _ := pool.New(ctx, pool.Options{Factory: factory, Throttle: 1})
	defer p.Close()

	s := p.Stream(ctx, 2)
	s.TrySubmit(pool.Item{Value: 1})
	<-started // item 1 runs; items 2 and 3 fill the queue
	for n := 2; n <= 4; n++ {
		if seq, ok := s.TrySubmit(pool.Item{Value: n}); ok {
			fmt.Println("item", n, "is seq", seq)
		} else {
			fmt.Println("item", n, "refused: full")
		}
	}
	close(release)
	seq, err := s.Submit(ctx, pool.Item{Value: 4}) // waits for room
	fmt.Println("item 4 is seq", seq, err)
	s.Close()
	for res := range s.Results() {
		out, _ := vm.Decode[int](res)
		fmt.Println(res.Seq, res.Status, out)
	}
	// Output:
	// item 2 is seq 2
	// item 3 is seq 3
	// item 4 refused: full
	// item 4 is seq 4 <nil>
	// 1 Success [1]
	// 2 Success [4]
	// 3 Success [9]
	// 4 Success [16]
}

// Shutdown drains a pool: no item starts any more, the running ones may
// finish, and those still running when its context ends are stopped.
// Here item 2 finishes and item 1 never would.
func ExamplePool_Shutdown() {
	ctx := context.Background()
	started, release := make(chan struct{}, 2), make(chan struct{})
	wait := vm.HostFunction{Name: "wait", Func: func(ctx context.Context, args []any) (any, error) {
		started <- struct{}{}
		if args[0] == int64(2) {
			<-release
			return nil, nil
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	script, _ := vm.Compile("wait.js", "", `(n) => { wait(n); return n }`)
	factory, _ := vm.NewFactory(script, vm.InitialState{Functions: []vm.HostFunction{wait}})
	p, _ := pool.New(ctx, pool.Options{Factory: factory, Throttle: 2, KeepOrder: true})

	done := make(chan []*vm.Result)
	go func() {
		var rs []*vm.Result
		for res := range p.Run(ctx, pool.Items([]int{1, 2})) {
			rs = append(rs, res)
		}
		done <- rs
	}()
	<-started
	<-started
	close(release)
	deadline, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	fmt.Println("shutdown:", p.Shutdown(deadline))
	for _, res := range <-done {
		fmt.Println(res.Seq, res.Status)
	}
	for res := range p.Run(ctx, pool.Items([]int{3})) {
		fmt.Println(res.Seq, res.Status, res.Error.Message)
	}
	// Output:
	// shutdown: context deadline exceeded
	// 1 Stopped
	// 2 Success
	// 1 Exception pool: closed
}
