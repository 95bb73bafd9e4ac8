// Package cli is the rsh command: it turns flags into a vm.InitialState and
// pool options, decodes input lines into items, and encodes results.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// Exit codes; see DESIGN.md.
const (
	ExitOK          = 0
	ExitItemsFailed = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// Env is what the command reads and writes: its standard streams. Tests
// hand it buffers.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// StdinIsTerminal makes rsh say that it is waiting for items when it
	// reads them from a terminal, so an empty prompt is not a mystery.
	StdinIsTerminal bool
}

// Main runs rsh with args (without the program name) and returns the exit
// code. Cancelling ctx (on a signal) stops the run: exit code 130.
func Main(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, mainUsage)
		return ExitUsage
	}
	switch args[0] {
	case "run":
		return runCommand(ctx, args[1:], env)
	case "version", "--version":
		fmt.Fprintf(env.Stdout, "rsh %s\n", version())
		return ExitOK
	case "help", "-h", "--help":
		if len(args) > 1 {
			switch args[1] {
			case "run":
				fmt.Fprint(env.Stdout, runUsage)
				return ExitOK
			case "version", "help":
				fmt.Fprint(env.Stdout, mainUsage)
				return ExitOK
			}
			fmt.Fprintf(env.Stderr, "rsh help %s: unknown command\n", args[1])
			return ExitUsage
		}
		fmt.Fprint(env.Stdout, mainUsage)
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "rsh %s: unknown command\nRun 'rsh help' for usage.\n", args[0])
	return ExitUsage
}

func version() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

func runCommand(ctx context.Context, args []string, env Env) int {
	o, err := parseRun(args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "rsh run: %v\n%s\nRun 'rsh help run' for details.\n", err, runUsageLine)
		return ExitUsage
	}
	if o.help {
		fmt.Fprint(env.Stdout, runUsage)
		return ExitOK
	}
	fail := func(err error) int {
		fmt.Fprintf(env.Stderr, "rsh: %v\n", err)
		return ExitUsage
	}

	var script *vm.Script
	if o.evalSet {
		script, err = vm.Compile("-e", "", o.eval)
	} else {
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
	factory, err := vm.NewFactory(script, o.state)
	if err != nil {
		return fail(err)
	}
	p, err := pool.New(ctx, pool.Options{
		Factory:   factory,
		Throttle:  o.throttle,
		Min:       o.min,
		Fresh:     o.fresh,
		KeepOrder: o.keepOrder,
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

	out := newOutput(env, o)
	defer out.close()
	in := newInput(env.Stdin, o.files, o.in)
	if env.StdinIsTerminal && in.readsStdin() {
		fmt.Fprintln(env.Stderr, "rsh: reading items from the terminal, one per line; end with Ctrl-D")
	}

	start := time.Now()
	var counts summary
	for res := range p.Run(ctx, in.items()) {
		counts.add(res)
		out.result(res)
	}
	counts.wall = time.Since(start)
	if err := in.err(); err != nil {
		out.flush()
		fmt.Fprintf(env.Stderr, "rsh: reading input: %v\n", err)
		if o.summary {
			counts.print(env.Stderr)
		}
		return ExitItemsFailed
	}
	out.flush()
	if o.summary {
		counts.print(env.Stderr)
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(env.Stderr, "rsh: interrupted")
		return ExitInterrupted
	case counts.total != counts.succeeded:
		return ExitItemsFailed
	}
	return ExitOK
}

// summary counts results by status.
type summary struct {
	total, succeeded, errors, exceptions, timeouts, stopped, invalid int
	wall                                                             time.Duration
}

func (s *summary) add(r *vm.Result) {
	s.total++
	switch r.Status {
	case vm.Success:
		s.succeeded++
	case vm.Error:
		s.errors++
	case vm.Exception:
		s.exceptions++
	case vm.Timeout:
		s.timeouts++
	case vm.Stopped:
		s.stopped++
	case vm.InvalidInput:
		s.invalid++
	}
}

func (s *summary) print(w io.Writer) {
	rate := 100.0
	if s.total > 0 {
		rate = 100 * float64(s.succeeded) / float64(s.total)
	}
	perSec := 0.0
	if s.wall > 0 {
		perSec = float64(s.total) / s.wall.Seconds()
	}
	fmt.Fprintf(w, `summary:
  total          %d
  succeeded      %d
  with errors    %d
  exceptions     %d
  timeouts       %d
  stopped        %d
  invalid input  %d
  success rate   %.1f%%
  wall time      %s
  items/s        %.1f
`, s.total, s.succeeded, s.errors, s.exceptions, s.timeouts, s.stopped, s.invalid,
		rate, s.wall.Round(time.Millisecond), perSec)
}
