// Command jobs reproduces the seed's Test-RunspaceJobManager with the rsh
// jobs library: a long sleeping job, a CPU job and a file-system job start
// together each in a process of its own, at most three at once; the CPU job is waited for by name with
// a timeout, then all of them; then a table of name, state and duration.
//
//	go run ./examples/jobs [DIR [LIMIT]]
//
// (DIR is the tree the file-system job sums, default the current
// directory; LIMIT is how far the CPU job counts primes, default 200000.) examples/jobs/jobs.sh does the same from the shell with
// rsh serve and rsh job.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/cli"
	"github.com/runspaces/rsh/jobs"
	"github.com/runspaces/rsh/vm"
	"github.com/runspaces/rsh/worker"
)

const (
	sleeper = `(x, p) => { sleep(p.ms); return "slept " + p.ms + " ms" }`
	cpu     = `(x, p) => {
		let count = 0;
		for (let n = 2; n < p.limit; n++) {
			let prime = true;
			for (let d = 2; d * d <= n; d++) if (n % d === 0) { prime = false; break; }
			if (prime) count++;
		}
		return count + " primes below " + p.limit;
	}`
	files = `(x, p) => {
		const entries = require("fs").walk(p.dir);
		return entries.length - 1 + " entries, " + entries[0].size + " bytes under " + p.dir;
	}`
)

func main() {
	// The jobs run in processes of their own: this program, started again.
	worker.Main()
	cli.JobMain()
	dir, limit := ".", 200000
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if len(os.Args) > 2 {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "jobs: LIMIT:", err)
			os.Exit(2)
		}
		limit = n
	}
	if err := run(context.Background(), os.Stdout, dir, limit); err != nil {
		fmt.Fprintln(os.Stderr, "jobs:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, dir string, limit int) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// Jobs are kept in files: a temporary directory here; `rsh serve`
	// keeps them in its state directory.
	state, err := os.MkdirTemp("", "rsh-jobs-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	m, err := jobs.New(jobs.Options{Dir: state, MaxJobs: 3})
	if err != nil {
		return err
	}
	defer m.Close()

	param := func(kv ...any) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		for i := 0; i < len(kv); i += 2 {
			raw, _ := json.Marshal(kv[i+1])
			out[kv[i].(string)] = raw
		}
		return out
	}
	specs := []jobs.Spec{
		{Name: "sleeper", Script: sleeper, Params: param("ms", 1500)},
		{Name: "cpu", Script: cpu, Params: param("limit", limit)},
		{Name: "files", Script: files, Params: param("dir", abs),
			Permissions: builtins.Permissions{Read: builtins.PathPermission{Roots: []string{abs}}}},
	}
	for _, s := range specs {
		if _, _, err := m.Start(ctx, s); err != nil {
			return err
		}
	}

	info, err := m.Wait(ctx, "cpu", 10*time.Second)
	switch {
	case err == jobs.ErrTimeout:
		fmt.Fprintf(w, "cpu is still running after 10s\n")
	case err != nil:
		return err
	default:
		fmt.Fprintf(w, "cpu finished first: %s\n", info.State)
	}
	var all []jobs.Info
	for _, s := range specs {
		i, err := m.Wait(ctx, s.Name, time.Minute)
		if err != nil {
			return err
		}
		all = append(all, i)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tDURATION\tRESULT")
	for _, i := range all {
		result := ""
		var records bytes.Buffer
		if _, err := m.Results(ctx, i.Name, 0, false, &records); err != nil {
			return err
		}
		var r vm.Result
		if json.Unmarshal(records.Bytes(), &r) == nil && len(r.Output) == 1 {
			_ = json.Unmarshal(r.Output[0], &result)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.Name, i.State, time.Duration(i.DurationMs*float64(time.Millisecond)).Round(time.Millisecond), result)
	}
	return tw.Flush()
}
