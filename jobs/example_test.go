package jobs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/runspaces/rsh/jobs"
	"github.com/runspaces/rsh/vm"
)

// Start a background job over a few items, wait for it, and read its
// results back. The job runs in a process of its own started from this
// program, whose main must call cli.JobMain first thing (this package's
// TestMain does).
func Example() {
	dir, err := os.MkdirTemp("", "rsh-jobs-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	m, err := jobs.New(jobs.Options{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	ctx := context.Background()
	name, _, err := m.Start(ctx, jobs.Spec{
		Name:   "squares",
		Script: `(n, params) => { if (n < 0) throw new RangeError("negative"); return n * n + params.plus }`,
		Params: map[string]json.RawMessage{"plus": json.RawMessage(`1`)},
		Items: []jobs.Item{
			{Value: json.RawMessage(`1`)},
			{Value: json.RawMessage(`2`)},
			{Value: json.RawMessage(`-3`)},
			{Value: json.RawMessage(`4`)},
		},
	})
	if err != nil {
		panic(err)
	}
	info, err := m.Wait(ctx, name, 0)
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Name, info.State, info.Done, "done,", info.Failed, "failed")

	// The results are records, one a line, in the order the items ended.
	var buf bytes.Buffer
	if _, err := m.Results(ctx, name, 0, false, &buf); err != nil {
		panic(err)
	}
	var results []*vm.Result
	for sc := bufio.NewScanner(&buf); sc.Scan(); {
		res := new(vm.Result)
		if err := json.Unmarshal(sc.Bytes(), res); err != nil {
			panic(err)
		}
		results = append(results, res)
	}
	slices.SortFunc(results, func(a, b *vm.Result) int { return int(a.Seq - b.Seq) })
	for _, res := range results {
		if res.Status != vm.Success {
			fmt.Println(res.Seq, string(res.Input), res.Status, res.Error.Message)
			continue
		}
		out, err := vm.Decode[int](res)
		if err != nil {
			panic(err)
		}
		fmt.Println(res.Seq, string(res.Input), res.Status, out)
	}
	// Output:
	// squares CompletedWithErrors 4 done, 1 failed
	// 1 1 Success [2]
	// 2 2 Success [5]
	// 3 -3 Exception RangeError: negative
	// 4 4 Success [17]
}
