package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// startupResult is the startup workload: one row per command.
type startupResult struct {
	how  string // "hyperfine ..." or "timed by the harness ..."
	rows []startupRow
}

type startupRow struct {
	name, cmd                   string
	runs                        int
	mean, median, min, max, std time.Duration
	failed                      string
}

// startupCommands are the commands compared, name and command, as
// hyperfine -N takes them (split into words, no shell) after bash has
// expanded $RSH.
func startupCommands() [][2]string {
	return [][2]string{
		{"rsh", `"$RSH" run -e 'x => x'`},
		{"node", `node -e ''`},
	}
}

// runStartup times starting rsh against starting node, stdin /dev/null:
// with hyperfine when it is installed, else by the harness itself, the
// commands taking turns.
func runStartup(ctx context.Context, e *env) (*workloadResult, error) {
	z := sizesFor(e.c.quick)
	w := &workload{
		name:  "startup",
		title: "startup: run a script over no input",
		notes: []string{"stdin is /dev/null; rsh compiles `x => x`, reads nothing and exits; node evaluates an empty script"},
	}
	wr := &workloadResult{w: w, threads: e.c.threads}
	sr := &startupResult{}
	wr.startup = sr
	mark := markLoad()
	if _, err := exec.LookPath("hyperfine"); err == nil {
		e.logf("startup: hyperfine, %d warm-up and %d runs each", z.startupWarm, z.startupRuns)
		if err := e.hyperfine(ctx, sr, z.startupWarm, z.startupRuns); err != nil {
			return nil, err
		}
		wr.extra = append(wr.extra, otherLoad(mark))
		return wr, nil
	}
	e.logf("startup: hyperfine is not installed; timing %d runs each", z.startupRuns)
	sr.how = fmt.Sprintf("hyperfine is not installed: timed by the harness under bash -c (bash's start included), %d warm-up and %d runs each, the commands taking turns", z.startupWarm, z.startupRuns)
	times := make([][]time.Duration, len(startupCommands()))
	for i := 0; i < z.startupWarm+z.startupRuns; i++ {
		for j, c := range startupCommands() {
			s, err := e.execScript(ctx, "exec "+c[1]+" < /dev/null > /dev/null")
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c[0], err)
			}
			if i >= z.startupWarm {
				times[j] = append(times[j], s.wall)
			}
		}
	}
	for j, c := range startupCommands() {
		sr.rows = append(sr.rows, summarize(c[0], c[1], times[j]))
	}
	wr.extra = append(wr.extra, otherLoad(mark))
	return wr, nil
}

func (e *env) hyperfine(ctx context.Context, sr *startupResult, warm, runs int) error {
	out := filepath.Join(e.outDir, "startup.json")
	script := fmt.Sprintf(`hyperfine -N --warmup %d --runs %d --export-json "$OUT/startup.json"`, warm, runs)
	for _, c := range startupCommands() {
		script += fmt.Sprintf(` -n %s "%s"`, c[0], escapeDouble(c[1]))
	}
	sr.how = "`" + script + "`"
	if _, err := e.execScript(ctx, script+" > /dev/null"); err != nil {
		return fmt.Errorf("hyperfine: %w", err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return fmt.Errorf("read hyperfine's results: %w", err)
	}
	var hf struct {
		Results []struct {
			Command string    `json:"command"`
			Times   []float64 `json:"times"`
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &hf); err != nil {
		return fmt.Errorf("parse hyperfine's results: %w", err)
	}
	if len(hf.Results) != len(startupCommands()) {
		return fmt.Errorf("hyperfine reported %d results, want %d", len(hf.Results), len(startupCommands()))
	}
	for i, r := range hf.Results {
		ds := make([]time.Duration, len(r.Times))
		for k, t := range r.Times {
			ds[k] = time.Duration(t * float64(time.Second))
		}
		sr.rows = append(sr.rows, summarize(startupCommands()[i][0], startupCommands()[i][1], ds))
	}
	return nil
}

// escapeDouble escapes s for the inside of a bash double-quoted string,
// leaving $ alone so that "$RSH" is expanded.
func escapeDouble(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' || s[i] == '`' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

func summarize(name, cmd string, ds []time.Duration) startupRow {
	r := startupRow{name: name, cmd: cmd, runs: len(ds)}
	if len(ds) == 0 {
		r.failed = "no runs"
		return r
	}
	var sum float64
	for _, d := range ds {
		sum += float64(d)
	}
	mean := sum / float64(len(ds))
	var sq float64
	for _, d := range ds {
		sq += (float64(d) - mean) * (float64(d) - mean)
	}
	r.mean = time.Duration(mean)
	r.median = median(ds)
	r.min, r.max = slices.Min(ds), slices.Max(ds)
	if len(ds) > 1 {
		r.std = time.Duration(math.Sqrt(sq / float64(len(ds)-1)))
	}
	return r
}
