package vm

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dop251/goja"
)

// ReduceProperty is the property of a script's item function that holds
// its reducer: module.exports.reduce = {init, add, done}.
const ReduceProperty = "reduce"

// Reducer folds a run's results into one value, in a runspace of its own,
// like PowerShell's ForEach-Object -Begin/-Process/-End or Measure-Object
// over the items' output. A script exports it beside its item function:
//
//	module.exports = function (item, params) { ... };
//	module.exports.reduce = {
//	  init: (params) => ({n: 0}),          // optional: the first accumulator (default undefined)
//	  add: (acc, record, params) => acc,   // each result record, in delivery order; undefined keeps acc
//	  done: (acc, params) => acc,          // optional: the final value (default acc)
//	};
//
// record is the item's result record as Result.AppendJSON writes it
// (seq, input, output, status, error...), so a reducer sees failed items
// too. Each call is bounded by the state's Timeout and the per-item
// limits, like an item. A Reducer is used by one goroutine at a time.
type Reducer struct {
	rs        *Runspace
	init, add goja.Callable
	done      goja.Callable // nil: the accumulator is the value
	acc       goja.Value
	started   bool
	// Messages, when set, is told of what a call wrote to its streams.
	Messages func(*Result)
}

// NewReducer makes a runspace of the factory's script and returns the
// reducer its item function carries (see Reducer), or nil and no error when
// it carries none. ctx bounds the script's init. The error is an
// *InitError when the script failed to initialise, or when its reduce
// property is not an object with an add function.
func (f *Factory) NewReducer(ctx context.Context) (*Reducer, error) {
	rs, err := f.NewRunspace(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) (*Reducer, error) {
		rs.Close()
		return nil, &InitError{Script: f.script.name, Err: fmt.Errorf(format, args...)}
	}
	fn, ok := rs.fnValue.(*goja.Object)
	if !ok {
		rs.Close()
		return nil, nil
	}
	v := fn.Get(ReduceProperty)
	if v == nil || goja.IsUndefined(v) {
		rs.Close()
		return nil, nil
	}
	spec, ok := v.(*goja.Object)
	if !ok {
		return fail("the item function's reduce must be an object {init, add, done}, not %s", describe(v))
	}
	red := &Reducer{rs: rs}
	for _, m := range []struct {
		name     string
		dst      *goja.Callable
		required bool
	}{{"init", &red.init, false}, {"add", &red.add, true}, {"done", &red.done, false}} {
		p := spec.Get(m.name)
		if p == nil || goja.IsUndefined(p) {
			if m.required {
				return fail("reduce.%s must be a function, but it is missing", m.name)
			}
			continue
		}
		if *m.dst, ok = goja.AssertFunction(p); !ok {
			return fail("reduce.%s must be a function, not %s", m.name, describe(p))
		}
	}
	return red, nil
}

// Close releases the reducer's runspace. It is safe to call more than once.
func (red *Reducer) Close() { red.rs.Close() }

// Add folds res into the accumulator, calling init first if it has not
// run. The error says what the script threw, or why the call was stopped.
func (red *Reducer) Add(ctx context.Context, res *Result) error {
	record := res.AppendJSON(nil)
	_, err := red.call(ctx, "add", func(params goja.Value) (goja.Value, error) {
		rec, err := red.rs.parseJSON(record)
		if err != nil {
			return nil, fmt.Errorf("decoding the result record: %w", err)
		}
		v, err := red.add(goja.Undefined(), red.acc, rec, params)
		if err == nil && !goja.IsUndefined(v) {
			red.acc = v
		}
		return nil, err
	})
	return err
}

// Done returns the reduced value as JSON (calling init first if no result
// was added), or nil when it is undefined.
func (red *Reducer) Done(ctx context.Context) (json.RawMessage, error) {
	return red.call(ctx, "done", func(params goja.Value) (goja.Value, error) {
		if red.done == nil {
			return red.acc, nil
		}
		return red.done(goja.Undefined(), red.acc, params)
	})
}

// call runs fn (after init, the first time) in the runspace as an item
// runs: under guard, its stream writes gathered in a result of its own, its
// returned value encoded as an output value.
func (red *Reducer) call(ctx context.Context, what string, fn func(params goja.Value) (goja.Value, error)) (json.RawMessage, error) {
	r := red.rs
	if !r.Usable() {
		return nil, fmt.Errorf("reduce.%s: the reducer's runspace is not usable after an earlier failure", what)
	}
	res := &Result{}
	var out json.RawMessage
	r.cur = res
	err := r.guard(ctx, func() error {
		if !red.started && red.init != nil {
			v, err := red.init(goja.Undefined(), r.params)
			if err != nil {
				what = "init"
				return r.describeThrown(err)
			}
			red.acc = v
		}
		red.started = true
		v, err := fn(r.params)
		if err != nil {
			return r.describeThrown(err)
		}
		if v == nil || goja.IsUndefined(v) {
			return nil
		}
		if exc := r.rt.Try(func() { out, err = r.encodeOutput(v) }); exc != nil {
			return r.describeThrown(exc)
		}
		return err
	})
	r.cur = nil
	r.finish(res, err)
	if red.Messages != nil && (len(res.Errors) > 0 || len(res.Warnings) > 0 || len(res.Verbose) > 0 || len(res.Information) > 0) {
		red.Messages(res)
	}
	if res.Error != nil {
		msg := res.Error.Message
		if loc := FirstFrame(res.Error.Stack); loc != "" {
			msg += " (at " + loc + ")"
		}
		return nil, fmt.Errorf("reduce.%s: %s", what, msg)
	}
	if out != nil {
		out = append(json.RawMessage(nil), out...) // out of the runspace's arena
	}
	return out, nil
}
