package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// tool is one way of doing a workload: a bash command fed one input file.
type tool struct {
	name  string
	items int    // items one run processes
	cmd   string // a bash command, without redirections
	stdin string // the input file, as "$IN/..."; "" is /dev/null
	// warmCmd and warmStdin, when set, replace cmd and stdin in the
	// warm-up run: each run is a new process, so the warm-up only fills
	// caches and need not repeat a long computation.
	warmCmd, warmStdin string
	needs              []string // programs that must be on PATH
	needsPiscina       bool
	// check reads the run's stdout and returns a fingerprint of it (shown
	// when tools must agree, e.g. the open ports) or an error wrapping
	// errWrongOutput.
	check func(out []byte) (string, error)
	// selfTimed marks the limit program, whose own timing of its loop
	// ("N items in D") is reported as a second row.
	selfTimed bool
	note      string
}

// script is the bash text of one run of t, stdout sent to out.
func (t *tool) script(warm bool, out string) string {
	cmd, in := t.cmd, t.stdin
	if warm && t.warmCmd != "" {
		cmd, in = t.warmCmd, t.warmStdin
	}
	if in == "" {
		in = "/dev/null"
	}
	return cmd + " < " + in + " > " + out
}

// workload is one row-set of the report.
type workload struct {
	name  string
	title string
	notes []string
	tools []*tool
	// teardown, when set, ends what the workload's builder started
	// (listeners); it runs after the last run.
	teardown func()
	// after, when set, adds lines under the table and may mark tools
	// wrong once every run is in.
	after func(wr *workloadResult)
}

// toolResult is what the runs of one tool came to.
type toolResult struct {
	t            *tool
	walls        []time.Duration
	cpus         []time.Duration // user + system time of each run
	selfWalls    []time.Duration // limit's own loop timings
	maxRSSKiB    int64
	skipped      string // why it did not run at all
	failed       string // why a run failed
	wrong        string // why its output was wrong
	fingerprints []string
}

// ok reports whether r has times worth reporting.
func (r *toolResult) ok() bool {
	return r.skipped == "" && r.failed == "" && r.wrong == "" && len(r.walls) > 0
}

// rate is items/s from the median wall time.
func (r *toolResult) rate() float64 {
	if !r.ok() {
		return 0
	}
	return float64(r.t.items) / median(r.walls).Seconds()
}

// cpuPerItem is the median run's CPU time (user + system, every process
// of the command) per item: unlike wall time, it holds when other work
// shares the machine.
func (r *toolResult) cpuPerItem() time.Duration {
	if !r.ok() || r.t.items == 0 {
		return 0
	}
	return median(r.cpus) / time.Duration(r.t.items)
}

// selfRate is items/s from limit's own timing of its loop.
func (r *toolResult) selfRate() float64 {
	if !r.ok() || len(r.selfWalls) == 0 {
		return 0
	}
	return float64(r.t.items) / median(r.selfWalls).Seconds()
}

// workloadResult is a workload and what its tools came to.
type workloadResult struct {
	w       *workload
	threads int // nproc: the concurrency of the tools
	tools   []*toolResult
	extra   []string // lines under the table
	startup *startupResult
}

// tool returns the result of the tool called name, or nil.
func (wr *workloadResult) tool(name string) *toolResult {
	for _, r := range wr.tools {
		if r.t.name == name {
			return r
		}
	}
	return nil
}

// runWorkload builds the workload called name and runs it: one warm-up
// run per tool, then runs rounds in which every tool runs once, in turn.
func runWorkload(ctx context.Context, e *env, name string) (*workloadResult, error) {
	w, err := e.build(ctx, name)
	if err != nil {
		return nil, err
	}
	if w.teardown != nil {
		defer w.teardown()
	}
	if e.c.rshBase != "" {
		w.tools = withBase(w.tools)
	}
	wr := &workloadResult{w: w, threads: e.c.threads}
	for _, t := range w.tools {
		r := &toolResult{t: t}
		r.skipped = missing(t, e)
		wr.tools = append(wr.tools, r)
	}
	for _, r := range wr.tools {
		if r.skipped != "" {
			continue
		}
		e.logf("%s: warm-up %s", name, r.t.name)
		if _, err := e.execScript(ctx, r.t.script(true, e.outPath(name, r.t.name))); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.failed = "warm-up: " + err.Error()
		}
	}
	mark := markLoad()
	for i := 1; i <= e.c.runs; i++ {
		for _, r := range wr.tools {
			if r.skipped != "" || r.failed != "" {
				continue
			}
			if err := e.runOnce(ctx, name, r); err != nil {
				return nil, err
			}
			e.logf("%s: run %d/%d %s: %s", name, i, e.c.runs, r.t.name, describeLast(r))
		}
	}
	wr.extra = append(wr.extra, otherLoad(mark))
	if w.after != nil {
		w.after(wr)
	}
	return wr, nil
}

// baseSuffix names the rows of the older binary (-rsh-base).
const baseSuffix = " (base)"

// withBase adds after each rsh row the same command run by the older
// binary, so that before and after take turns in one run.
func withBase(tools []*tool) []*tool {
	var out []*tool
	for _, t := range tools {
		out = append(out, t)
		if !strings.Contains(t.cmd, `"$RSH"`) {
			continue
		}
		b := *t
		b.name += baseSuffix
		b.cmd = strings.ReplaceAll(t.cmd, `"$RSH"`, `"$RSH_BASE"`)
		b.warmCmd = strings.ReplaceAll(t.warmCmd, `"$RSH"`, `"$RSH_BASE"`)
		out = append(out, &b)
	}
	return out
}

// runOnce times one run of r's tool and checks its output. Only ctx's end
// is an error: a failed run or wrong output is recorded in r.
func (e *env) runOnce(ctx context.Context, workload string, r *toolResult) error {
	out := e.outPath(workload, r.t.name)
	s, err := e.execScript(ctx, r.t.script(false, out))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		r.failed = err.Error()
		return nil
	}
	r.walls = append(r.walls, s.wall)
	r.cpus = append(r.cpus, s.cpu)
	r.maxRSSKiB = max(r.maxRSSKiB, s.maxRSSKiB)
	data, err := os.ReadFile(out)
	if err != nil {
		r.failed = fmt.Sprintf("read output: %v", err)
		return nil
	}
	if r.t.selfTimed {
		d, err := parseLimit(data, r.t.items)
		if err != nil {
			r.wrong = err.Error()
			return nil
		}
		r.selfWalls = append(r.selfWalls, d)
	}
	if r.t.check != nil {
		fp, err := r.t.check(data)
		if err != nil {
			r.wrong = err.Error()
			return nil
		}
		r.fingerprints = append(r.fingerprints, fp)
	}
	return nil
}

func describeLast(r *toolResult) string {
	switch {
	case r.failed != "":
		return "FAILED: " + r.failed
	case r.wrong != "":
		return "WRONG OUTPUT: " + r.wrong
	}
	return r.walls[len(r.walls)-1].Round(time.Millisecond).String()
}

// missing says why t cannot run here, or "" if it can.
func missing(t *tool, e *env) string {
	for _, p := range t.needs {
		if _, err := exec.LookPath(p); err != nil {
			return p + " is not installed"
		}
	}
	if t.needsPiscina {
		if e.c.piscina == "" {
			return "no -piscina folder given"
		}
		if _, err := os.Stat(e.c.piscina + "/node_modules/piscina"); err != nil {
			return "piscina is not installed in " + e.c.piscina
		}
	}
	return ""
}

// parseLimit reads the limit program's "N items in D: X items/s" line and
// checks N.
func parseLimit(out []byte, items int) (time.Duration, error) {
	line := strings.TrimSpace(string(out))
	var n int
	var rest string
	if _, err := fmt.Sscanf(line, "%d items in %s", &n, &rest); err != nil {
		return 0, fmt.Errorf("%w: limit printed %q", errWrongOutput, line)
	}
	if n != items {
		return 0, fmt.Errorf("%w: limit ran %d items, want %d", errWrongOutput, n, items)
	}
	d, err := time.ParseDuration(strings.TrimSuffix(rest, ":"))
	if err != nil {
		return 0, fmt.Errorf("%w: limit's duration %q: %v", errWrongOutput, rest, err)
	}
	return d, nil
}

// build makes the workload called name, generating its inputs.
func (e *env) build(ctx context.Context, name string) (*workload, error) {
	switch name {
	case "trivial":
		return e.trivial()
	case "cpu":
		return e.cpu()
	case "io":
		return e.io()
	case "json":
		return e.json()
	case "scan":
		return e.scan(ctx)
	}
	return nil, errors.New("unknown workload " + name)
}
