package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/runspaces/rsh/vm"
)

// A script's reducer (vm.Reducer: module.exports.reduce = {init, add,
// done}) folds the run's result records into one value, written after the
// last result: the last line of --out values and json, a record marked
// "summary": true with --out records. It runs in one extra runspace in
// rsh's own process, on the goroutine that takes the results, so only a
// plain `rsh run` in that process has one: not --isolate process (whose
// scripts stay out of rsh's process), job processes nor queue workers.
// See docs/design.md#the-script-contract.

// runReducer is a run's reducer and what became of it.
type runReducer struct {
	red *vm.Reducer
	// ctx bounds its calls: the run's context without its cancellation,
	// so that --halt now and the drain still let it see every result
	// (each call is bounded by --timeout like an item).
	ctx context.Context
	err error // the first call that failed; the reducer is not called again
}

// startReducer makes the reducer of a run that may have one (see above),
// or returns nil when the script exports none. Its stream writes go to
// env's stderr (read at each write, so the progress bar's wrapper is
// used), marked "reduce:".
func startReducer(ctx context.Context, f *vm.Factory, o *runOptions, env *Env) (*runReducer, error) {
	red, err := f.NewReducer(ctx)
	if err != nil || red == nil {
		return nil, err
	}
	red.Messages = func(r *vm.Result) {
		streamLines(r, o.verbose, o.quiet, func(kind, msg string) {
			if kind != "" {
				kind += ": "
			}
			fmt.Fprintf(env.Stderr, "reduce: %s%s\n", kind, msg)
		})
	}
	return &runReducer{red: red, ctx: context.WithoutCancel(ctx)}, nil
}

// add folds res in; a failure is reported on env's stderr once.
func (rr *runReducer) add(res *vm.Result, env *Env) {
	if rr == nil || rr.err != nil {
		return
	}
	if rr.err = rr.red.Add(rr.ctx, res); rr.err != nil {
		fmt.Fprintf(env.Stderr, "rsh: %v\n", rr.err)
	}
}

// finish writes the reduced value to env's stdout as mode shows it, after
// everything else the run wrote (so a job log never claims it: a resumed
// run removes it and writes its own). It returns the error that fails the
// run, if any: a reducer that failed, or a write that did.
func (rr *runReducer) finish(env *Env, mode string) error {
	if rr == nil {
		return nil
	}
	if rr.err != nil {
		return rr.err
	}
	v, err := rr.red.Done(rr.ctx)
	if err != nil {
		fmt.Fprintf(env.Stderr, "rsh: %v\n", err)
		return err
	}
	if v == nil {
		return nil
	}
	if _, err := env.Stdout.Write(appendReduced(nil, mode, v)); err != nil {
		err = &writeError{what: "writing the reduced value", err: err}
		fmt.Fprintf(env.Stderr, "rsh: %v\n", err)
		return err
	}
	return nil
}

// close releases the reducer's runspace; safe on nil and more than once.
func (rr *runReducer) close() {
	if rr != nil {
		rr.red.Close()
	}
}

// appendReduced appends the line of the reduced value v for --out mode.
func appendReduced(b []byte, mode string, v json.RawMessage) []byte {
	switch mode {
	case "records":
		b = append(b, `{"summary":true,"output":[`...)
		b = append(b, v...)
		b = append(b, "]}"...)
	case "json":
		b = append(b, v...)
	default:
		b = appendValue(b, v)
	}
	return append(b, '\n')
}
