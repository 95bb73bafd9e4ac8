// Command bench runs rsh side by side with the tools a user would pick
// instead (GNU parallel, xargs, node, piscina, nmap, and the limit program
// that is rsh's ceiling) on the same workloads, in one run, and prints a
// markdown report: machine facts, one table per workload with the median
// wall time, items/s, peak RSS and the ratio to rsh of every tool, and the
// project's targets marked met or missed.
//
// It is normally started by scripts/bench.sh, which installs the peers and
// builds rsh and limit first:
//
//	scripts/bench.sh                 # every workload, 5 timed runs each
//	scripts/bench.sh -quick          # smaller inputs, 1 run: a smoke test
//	scripts/bench.sh -only cpu,json -runs 7
//
// Within a workload every tool gets one warm-up run, then the tools take
// turns: run 1 of each, run 2 of each, and so on, so that a slow drift of
// the machine (heat, another job) spreads over all of them alike. Every
// run's output is checked (line counts, sums, the set of open ports), and
// a tool whose output is wrong is reported as WRONG OUTPUT, never with a
// time. Each command runs under `bash -c` in a process group of its own,
// started by a small launcher (see launch); peak RSS is ru_maxrss from its
// rusage, the largest single process among it and the descendants it
// waited for. Everything written goes under a
// temporary directory; processes and listeners it started are ended before
// it returns.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == launchArg {
		os.Exit(launch(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the flags asked for, validated.
type config struct {
	runs       int
	only       []string
	quick      bool
	rsh        string // the rsh binary
	rshBase    string // an older rsh binary to run beside it ("" for none)
	baseCommit string // what rshBase was built from, for the report
	limit      string // the limit binary
	piscina    string // a folder with driver.js, worker.js and node_modules/piscina
	benchDir   string // scripts/bench: cpu.js, scan.js
	repo       string // the rsh checkout, for examples/ and the commit
	tmp        string // where everything generated goes
	invocation string // the command line the user typed, for the report
	threads    int    // nproc: the concurrency every tool gets
	argv       []string
}

// workloadNames lists the workloads in the order they run.
func workloadNames() []string {
	return []string{"trivial", "cpu", "io", "json", "scan", "startup"}
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{argv: args, threads: runtime.NumCPU()}
	var only string
	fs.IntVar(&c.runs, "runs", 5, "timed runs per tool and workload, after one warm-up run (default 1 with -quick)")
	fs.StringVar(&only, "only", "", "comma-separated workloads to run: "+strings.Join(workloadNames(), ","))
	fs.BoolVar(&c.quick, "quick", false, "smaller inputs and one timed run: a smoke test of about a minute")
	fs.StringVar(&c.rsh, "rsh", "", "the rsh binary (required)")
	fs.StringVar(&c.rshBase, "rsh-base", "", "an older rsh binary: every rsh row is run with it too, as \"(base)\", for before/after in one run")
	fs.StringVar(&c.baseCommit, "rsh-base-commit", "", "the commit -rsh-base was built from, for the report")
	fs.StringVar(&c.limit, "limit", "", "the limit binary (required)")
	fs.StringVar(&c.piscina, "piscina", "", "folder holding driver.js, worker.js and node_modules/piscina (empty: skip piscina)")
	fs.StringVar(&c.benchDir, "bench-dir", "scripts/bench", "the folder of this program's JS files")
	fs.StringVar(&c.repo, "repo", ".", "the rsh checkout")
	fs.StringVar(&c.tmp, "tmp", "", "folder for inputs and outputs (default: a new temporary folder, removed at the end)")
	fs.StringVar(&c.invocation, "invocation", "", "the command line to print in the report (default: this program's)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	runsSet := false
	fs.Visit(func(f *flag.Flag) { runsSet = runsSet || f.Name == "runs" })
	if c.quick && !runsSet {
		c.runs = 1
	}
	if c.runs < 1 {
		return nil, fmt.Errorf("-runs must be at least 1, got %d", c.runs)
	}
	if only != "" {
		for _, w := range strings.Split(only, ",") {
			w = strings.TrimSpace(w)
			if !slices.Contains(workloadNames(), w) {
				return nil, fmt.Errorf("-only: unknown workload %q (want some of %s)", w, strings.Join(workloadNames(), ","))
			}
			c.only = append(c.only, w)
		}
	}
	if c.rsh == "" || c.limit == "" {
		return nil, errors.New("-rsh and -limit are required (scripts/bench.sh builds and passes them)")
	}
	for _, p := range []*string{&c.rsh, &c.rshBase, &c.limit, &c.piscina, &c.benchDir, &c.repo, &c.tmp} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", *p, err)
		}
		*p = abs
	}
	return c, nil
}

// selected reports whether workload name is to run.
func (c *config) selected(name string) bool {
	return len(c.only) == 0 || slices.Contains(c.only, name)
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if c.tmp == "" {
		dir, err := os.MkdirTemp("", "rsh-bench-")
		if err != nil {
			fmt.Fprintln(stderr, "bench: make temporary folder:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		c.tmp = dir
	}
	if err := bench(ctx, c, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	return 0
}

// bench runs the selected workloads and writes the report.
func bench(ctx context.Context, c *config, stdout, stderr io.Writer) error {
	env, err := newEnv(c, stderr)
	if err != nil {
		return err
	}
	m := gatherMachine(ctx, c)
	floor, err := env.execScript(ctx, "true")
	if err != nil {
		return fmt.Errorf("run an empty command: %w", err)
	}
	var report strings.Builder
	writeHeader(&report, c, m, floor)
	fmt.Fprint(stdout, report.String())
	report.Reset()

	var all []*workloadResult
	for _, name := range workloadNames() {
		if !c.selected(name) {
			continue
		}
		var res *workloadResult
		if name == "startup" {
			res, err = runStartup(ctx, env)
		} else {
			res, err = runWorkload(ctx, env, name)
		}
		if err != nil {
			return fmt.Errorf("workload %s: %w", name, err)
		}
		writeWorkload(&report, res)
		fmt.Fprint(stdout, report.String())
		report.Reset()
		all = append(all, res)
	}
	writeTargets(&report, all)
	fmt.Fprint(stdout, report.String())
	return nil
}

// env is what every workload shares: the configuration, the folders
// under tmp, and where progress goes.
type env struct {
	c        *config
	inDir    string // generated inputs, kept for the whole run
	outDir   string // each run's stdout, overwritten by the next run
	progress io.Writer
}

func newEnv(c *config, progress io.Writer) (*env, error) {
	e := &env{c: c, inDir: filepath.Join(c.tmp, "in"), outDir: filepath.Join(c.tmp, "out"), progress: progress}
	for _, d := range []string{e.inDir, e.outDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("make %s: %w", d, err)
		}
	}
	return e, nil
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.progress, "bench: "+format+"\n", args...)
}

// runTimeout bounds one run of one tool: a hung tool is killed and
// reported as failed instead of stopping the benchmark. The slowest
// expected run (cpu, rsh -t 1) takes well under a minute on two cores.
const runTimeout = 5 * time.Minute
