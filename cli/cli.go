// Package cli is the rsh command: it turns flags into a vm.InitialState and
// pool options, decodes input lines into items, and encodes results.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
	"github.com/runspaces/rsh/worker"
)

// Exit codes; see docs/design.md#exit-codes.
const (
	ExitOK = 0
	// ExitItemsFailed is also the code of a run stopped because its
	// output, job log or summary could not be written.
	ExitItemsFailed = 1
	ExitUsage       = 2
	ExitInterrupted = 130
	// ExitBrokenPipe ends a run whose reader went away (rsh run ... |
	// head -1): 128+SIGPIPE, the status a shell reports for any other
	// command stopped that way, so pipelines (and set -o pipefail) treat
	// rsh like them; not 0, because items were left unrun.
	ExitBrokenPipe = 141
)

// Env is what the command reads and writes: its standard streams. Tests
// hand it buffers.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// StdinIsTerminal makes rsh say that it is waiting for items when it
	// reads them from a terminal, so an empty prompt is not a mystery.
	StdinIsTerminal bool
	// StderrIsTerminal turns the progress bar on unless --progress says.
	StderrIsTerminal bool
	// Signals delivers SIGINT and SIGTERM: the first drains the run, the
	// second stops it. Cancelling Main's context stops it at once.
	Signals <-chan os.Signal
}

// Main runs rsh with args (without the program name) and returns the exit
// code. Cancelling ctx (on a signal) stops the run: exit code 130.
func Main(ctx context.Context, args []string, env Env) int {
	return dispatch(ctx, args, env)
}

func runCommand(ctx context.Context, args []string, env Env) int {
	o, err := parseRun(args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "rsh run: %v\n%s\nRun 'rsh help run' for details.\n", err, runUsageLine)
		return ExitUsage
	}
	if o.help {
		fmt.Fprint(env.Stdout, runHelp())
		return ExitOK
	}
	o.warn(env.Stderr)
	if o.from != "" {
		return runQueue(ctx, o, env)
	}
	return runWith(ctx, o, env, nil)
}

// runHooks let a job process (jobproc.go) follow a run of its job; a
// plain `rsh run` has none.
type runHooks struct {
	// resumeAll makes every item in the job log done, whatever its
	// status: a resumed job gives each item exactly one result in all.
	resumeAll bool
	// items wraps the input's items (before --resume skips any).
	items func(iter.Seq[pool.Item]) iter.Seq[pool.Item]
	// resumed is told, before any item runs, how many items the job log
	// already has and how many of them failed.
	resumed func(done, failed int)
	// claimed is told, after each write to the job log, where the output
	// file ended and how many items (and failed ones) the write claimed.
	claimed func(outputEnd int64, items, failed int)
	// source, when set, gives the items instead of the input files (a
	// shared queue's); sink then takes every result instead of stdout.
	source iter.Seq[pool.Item]
	sink   func(*vm.Result)
	// drained is told when the run starts draining (a first signal,
	// --halt): a source stops taking new items.
	drained func()
	// pool is told of the run's pool once it is made (a job process
	// reports its metrics).
	pool func(*pool.Pool)
	// ended is told why the run stopped early, if it did: it could not
	// start (setup: the script did not compile or initialise), the output
	// or job log could not be written (out), or the input could not be
	// read (in).
	ended func(setup, out, in error)
}

// runWith runs o: the part of `rsh run` after its flags are parsed, shared
// with job processes.
func runWith(ctx context.Context, o *runOptions, env Env, hooks *runHooks) int {
	plain := hooks == nil // a plain rsh run, which no job process follows
	if hooks == nil {
		hooks = &runHooks{}
	}
	fail := func(err error) int {
		fmt.Fprintf(env.Stderr, "rsh: %v\n", err)
		if hooks.ended != nil {
			hooks.ended(err, nil, nil)
		}
		return ExitUsage
	}
	var err error

	var script *vm.Script
	switch {
	case o.evalSet && !o.detached:
		script, err = vm.Compile("-e", "", o.eval)
	case o.source != nil && o.sourceDir == "":
		script, err = vm.CompileDetached(o.script, *o.source)
	case o.source != nil:
		script, err = vm.Compile(o.script, o.sourceDir, *o.source)
	case o.evalSet && o.detached:
		script, err = vm.CompileDetached("-e", o.eval)
	default:
		script, err = vm.CompileFile(o.script)
	}
	if err != nil {
		return fail(err)
	}
	for _, f := range o.files {
		if f == "-" {
			continue
		}
		if fi, err := os.Stat(f); err != nil {
			return fail(fmt.Errorf("input %s: no such file", f))
		} else if fi.IsDir() {
			return fail(fmt.Errorf("input %s: is a directory", f))
		}
	}
	// What the script writes while it loads (a top-level console.log) is
	// shown once, from the first runspace, not once per runspace.
	var initOnce sync.Once
	o.state.OnInit = func(r *vm.Result) {
		initOnce.Do(func() { printInit(env, o, r) })
	}
	factory, err := vm.NewFactory(script, o.state)
	if err != nil {
		return fail(err)
	}
	var resume *resumeLog
	var jl *joblog
	if o.joblog != "" {
		if o.resume || o.resumeFailed {
			if resume, err = readJoblogWith(o.joblog, o.resumeFailed, hooks.resumeAll); err != nil {
				return fail(err)
			}
		}
		if jl, err = openJoblog(o.joblog); err != nil {
			return fail(err)
		}
		defer jl.close()
		if f, ok := env.Stdout.(*os.File); ok {
			if resume != nil {
				if n, err := dropUnclaimed(f, resume.outputEnds); err != nil {
					return fail(fmt.Errorf("resuming into the output file: %w", err))
				} else if n > 0 {
					fmt.Fprintf(env.Stderr, "rsh: removed the last %d bytes of the output: what an interrupted run wrote and the job log does not claim (it runs again)\n", n)
				}
			}
			// Where the output file starts for this run, claimed before
			// anything is written: a run killed before its first claim
			// leaves output that a resumed run then knows to remove.
			if id, ok := regularFileID(f); ok {
				if fi, err := f.Stat(); err == nil {
					if err := jl.write(appendOutputEnd(nil, id, fi.Size())); err != nil {
						return fail(&writeError{what: "writing the job log " + o.joblog, err: err})
					}
				}
			}
		}
		if resume != nil && hooks.resumed != nil {
			hooks.resumed(resume.lines, resume.failedLines)
		}
	}

	// Stopping: the first signal drains the run (no new items; running
	// ones get --grace to finish), a second one, the grace running out,
	// or --halt now interrupts the running items.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	drain := make(chan struct{})
	var drainOnce sync.Once
	startDrain := func() {
		drainOnce.Do(func() {
			close(drain)
			if hooks.drained != nil {
				hooks.drained()
			}
		})
	}
	var interrupted atomic.Bool
	// sigStderr is where the interrupt notice goes: stderr, and once the
	// progress bar is up, the writer that clears the bar first (a notice
	// written over the bar would leave the bar on the screen).
	var sigStderr atomic.Pointer[io.Writer]
	plainStderr := env.Stderr
	sigStderr.Store(&plainStderr)
	if env.Signals != nil {
		go func() {
			for n := 1; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-env.Signals:
				}
				interrupted.Store(true)
				if n > 1 {
					cancel()
					return
				}
				fmt.Fprintf(*sigStderr.Load(), "rsh: interrupted: letting running items finish (up to %s); interrupt again to stop them now\n", o.grace)
				startDrain()
				time.AfterFunc(o.grace, cancel)
			}
		}()
	}

	var engine pool.Engine // nil: runspaces in this process
	if o.isolate == "process" {
		we, err := o.workerEngine(factory)
		if err != nil {
			return fail(err)
		}
		defer we.Close()
		engine = we
	}
	showBar := o.progress || !o.progressSet && env.StderrIsTerminal
	var reducer *runReducer // see reduce.go
	if plain && engine == nil {
		if reducer, err = startReducer(ctx, factory, o, &env); err != nil && ctx.Err() == nil {
			return fail(err)
		}
		defer reducer.close()
	}
	// lean: nothing asks for item times, nor for the results of items
	// that succeed plainly (only their values are written): items run
	// untimed, and plain ones are encoded where they ran (pool.Encode).
	// A reducer takes every result.
	lean := plain && !o.timesShown(showBar) && reducer == nil
	p, err := pool.New(ctx, pool.Options{
		Untimed:    lean,
		Engine:     engine,
		Factory:    factory,
		Throttle:   o.throttle,
		Min:        o.min,
		Fresh:      o.fresh,
		KeepOrder:  o.keepOrder,
		Retries:    o.retries,
		RetryDelay: o.retryDelay,
	})
	if err != nil {
		var ie *vm.InitError
		if errors.As(err, &ie) && ctx.Err() != nil {
			fmt.Fprintln(env.Stderr, "rsh: interrupted")
			return ExitInterrupted
		}
		return fail(err)
	}
	defer p.Close()
	if hooks.pool != nil {
		hooks.pool(p)
	}

	in := newInput(env.Stdin, o.files, o.in)
	in.maxLine = o.maxLine
	in.validate = o.batchSize > 1
	if env.StdinIsTerminal && in.readsStdin() && hooks.source == nil {
		fmt.Fprintln(env.Stderr, "rsh: reading items from the terminal, one per line; end with Ctrl-D")
	}
	var bar *progress
	if showBar {
		total := o.total
		if total == 0 && o.shard.count > 0 {
			total = -1 // the shard's share of the input is not known until it is read
		} else if total == 0 {
			total = in.count()
		}
		bar = newProgress(env.Stderr, total, p.Metrics)
		barStderr := bar.clearFor(env.Stderr)
		sigStderr.Store(&barStderr)
		env.Stderr = barStderr
	}
	// A write that fails (stdout, the job log) stops the run at once: it
	// is reported (unless the reader just went away) and nothing more is
	// claimed. See output.
	out := newOutput(env, o, jl, hooks.claimed, func(err error) {
		if !errors.Is(err, syscall.EPIPE) {
			fmt.Fprintf(env.Stderr, "rsh: %v; stopping\n", err)
		}
		startDrain()
		cancel()
	})
	defer out.close()

	items := in.items()
	if hooks.source != nil {
		items = hooks.source
	}
	if o.shard.count > 0 {
		items = o.shard.filter(items) // before batches: see shard.go
	}
	if o.batchSize > 1 {
		items = batched(items, o.batchSize)
	}
	if hooks.items != nil {
		items = hooks.items(items)
	}
	var skipped atomic.Int64
	if resume != nil {
		items = resume.filter(items, o.resumeFailed, &skipped)
	}

	// --halt is judged as each item ends, in the goroutine that ran it, so
	// that nothing else starts once the threshold is met.
	hl := &halter{policy: o.halt}
	observe := func(res *vm.Result) {
		if hl.observe(res) {
			startDrain()
			if o.halt.when == "now" {
				cancel()
			}
		}
	}

	runOpts := []pool.RunOption{pool.Drain(drain)}
	if o.halt.when != "never" {
		runOpts = append(runOpts, pool.Observe(observe))
	}
	start := time.Now()
	counts := newSummary(o.batchSize)
	if lean {
		runOpts = append(runOpts, pool.Encode(out.appendValues, func(b []byte, n int) bool {
			counts.addPlain(n)
			out.write(b)
			return true
		}))
	}
	for res := range p.Run(ctx, items, runOpts...) {
		counts.add(res)
		reducer.add(res, &env)
		if hooks.sink != nil {
			hooks.sink(res)
		} else {
			out.result(res)
		}
		hl.announce(env.Stderr, res) // after the line of the item that met --halt
		if bar != nil {
			status := ""
			if n := len(res.Progress); n > 0 {
				status = res.Progress[n-1].Status
			}
			n, failed := res.Elements()
			bar.record(n, failed, status)
		}
	}
	hl.announce(env.Stderr, nil)
	counts.wall = time.Since(start)
	counts.skipped = int(skipped.Load())
	if bar != nil {
		bar.finish()
	}
	outErr := out.close()
	if jl != nil && outErr == nil {
		if err := jl.close(); err != nil {
			outErr = &writeError{what: "writing the job log " + o.joblog, err: err}
			fmt.Fprintf(env.Stderr, "rsh: %v\n", outErr)
		}
	}
	var reduceErr error
	if outErr == nil && !(interrupted.Load() && ctx.Err() != nil) {
		reduceErr = reducer.finish(&env, o.out)
	}
	readErr := in.err()
	if readErr != nil {
		fmt.Fprintf(env.Stderr, "rsh: reading input: %v\n", readErr)
	}
	if hooks.ended != nil {
		hooks.ended(nil, outErr, readErr)
	}
	if o.summary || bar != nil {
		counts.print(env.Stderr)
	}
	var summaryErr error
	if o.summaryJSON != "" {
		if summaryErr = counts.writeJSON(o.summaryJSON); summaryErr != nil {
			fmt.Fprintf(env.Stderr, "rsh: %v\n", summaryErr)
		}
	}
	switch {
	case interrupted.Load():
		fmt.Fprintln(env.Stderr, "rsh: interrupted")
		return ExitInterrupted
	case errors.Is(outErr, syscall.EPIPE), errors.Is(reduceErr, syscall.EPIPE):
		return ExitBrokenPipe
	case outErr != nil:
		return ExitItemsFailed
	case ctx.Err() != nil && !hl.halted():
		fmt.Fprintln(env.Stderr, "rsh: interrupted")
		return ExitInterrupted
	case readErr != nil || hl.failure(counts.failed() > 0) || summaryErr != nil || reduceErr != nil:
		return ExitItemsFailed
	}
	return ExitOK
}

// timesShown reports whether anything the run writes shows item times:
// records (startedAt, durationMs), the job log, the summary (item time
// percentiles) or the progress bar (which ends with the summary). When
// nothing does, the pool runs items untimed (pool.Options.Untimed), and
// plain results are written as values without being delivered
// (pool.Encode): nothing else shows them.
func (o *runOptions) timesShown(progress bool) bool {
	return o.out == "records" || o.joblog != "" || o.summary || o.summaryJSON != "" || progress
}

// printInit writes the stream messages of a script's init to stderr.
func printInit(env Env, o *runOptions, r *vm.Result) {
	line := func(kind, msg string) {
		if kind != "" {
			kind += ": "
		}
		fmt.Fprintf(env.Stderr, "init: %s%s\n", kind, msg)
	}
	streamLines(r, o.verbose, o.quiet, line)
	if len(r.Output) > 0 {
		line("warning", fmt.Sprintf("%d value(s) emitted while the script loaded were dropped: emit belongs in the item function", len(r.Output)))
	}
}

// workerEngine makes the engine of --isolate process (and --max-memory):
// runspaces in worker processes.
func (o *runOptions) workerEngine(f *vm.Factory) (*worker.Engine, error) {
	return worker.New(worker.Options{Script: f.Script(), State: f.State(), PerProcess: o.perProcess(), MaxMemory: o.maxMemory})
}
