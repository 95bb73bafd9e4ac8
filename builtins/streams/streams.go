// Package streams provides the stream functions of an rsh script: emit,
// writeError, writeWarning, writeVerbose, writeProgress and console.
//
// Enable binds them as globals; require('streams') returns the same functions
// as an object. console is goja_nodejs's console (so formatting matches
// Node's util.format) wired to the runspace's streams: log and info go to the
// information stream, debug to the verbose stream, warn and error to the
// warning stream.
package streams

import (
	"errors"
	"fmt"
	"math"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/console"
	"github.com/dop251/goja_nodejs/require"

	"github.com/runspaces/rsh/builtins"
)

// ModuleName is the name scripts pass to require.
const ModuleName = "streams"

// ConsoleModuleName is the name under which the stream-wired console is
// registered, replacing goja_nodejs's default console that prints to stdout.
const ConsoleModuleName = console.ModuleName

// Require returns the loader of the streams module for a runspace.
func Require(env *builtins.Env) require.ModuleLoader {
	return func(rt *goja.Runtime, module *goja.Object) {
		exports := module.Get("exports").(*goja.Object)
		for name, fn := range functions(rt, env) {
			_ = exports.Set(name, fn)
		}
	}
}

// RequireConsole returns the loader of the console module for a runspace.
func RequireConsole(env *builtins.Env) require.ModuleLoader {
	return func(rt *goja.Runtime, module *goja.Object) {
		console.RequireWithPrinter(printer{env: env})(rt, module)
		// goja_nodejs's console sends debug to the same printer as log;
		// rsh routes it to the verbose stream. Borrow a second console's
		// formatted log function for that.
		tmp := rt.NewObject()
		_ = tmp.Set("exports", rt.NewObject())
		console.RequireWithPrinter(verbosePrinter{env: env})(rt, tmp)
		exports := module.Get("exports").(*goja.Object)
		_ = exports.Set("debug", tmp.Get("exports").(*goja.Object).Get("log"))
	}
}

// Enable binds emit, writeError, writeWarning, writeVerbose and writeProgress
// as globals of rt. The console global is bound by the runspace through
// require, so that it uses the registry's util module.
func Enable(rt *goja.Runtime, env *builtins.Env) {
	for name, fn := range functions(rt, env) {
		_ = rt.Set(name, fn)
	}
}

func functions(rt *goja.Runtime, env *builtins.Env) map[string]func(goja.FunctionCall) goja.Value {
	text := func(call goja.FunctionCall) string {
		v := call.Argument(0)
		if goja.IsUndefined(v) {
			return ""
		}
		return v.String()
	}
	return map[string]func(goja.FunctionCall) goja.Value{
		"emit": func(call goja.FunctionCall) goja.Value {
			if env.Streams == nil {
				return goja.Undefined()
			}
			for _, v := range call.Arguments {
				if err := env.Streams.Output(v); err != nil {
					var exc *goja.Exception
					if errors.As(err, &exc) {
						panic(exc) // thrown by the script (a toJSON, a getter) or by JSON.stringify: as it is
					}
					panic(rt.NewTypeError("emit: %v", err))
				}
			}
			return goja.Undefined()
		},
		"writeError": func(call goja.FunctionCall) goja.Value {
			if env.Streams == nil {
				return goja.Undefined()
			}
			at := call.Argument(1)
			if goja.IsUndefined(at) {
				env.Streams.Error(text(call))
				return goja.Undefined()
			}
			// writeError(message, index): the error of one element of a batch.
			f := math.NaN()
			if goja.IsNumber(at) {
				f = at.ToFloat()
			}
			if f != math.Trunc(f) || f < 0 || f > math.MaxInt32 {
				panic(rt.NewTypeError("writeError: the index must be an element's position in the batch (0, 1, ...), not %s", at.String()))
			}
			if err := env.Streams.ElementError(text(call), int(f)); err != nil {
				builtins.Throw(rt, "RangeError", fmt.Errorf("writeError: %w", err))
			}
			return goja.Undefined()
		},
		"writeWarning": func(call goja.FunctionCall) goja.Value {
			if env.Streams != nil {
				env.Streams.Warning(text(call))
			}
			return goja.Undefined()
		},
		"writeVerbose": func(call goja.FunctionCall) goja.Value {
			if env.Streams != nil {
				env.Streams.Verbose(text(call))
			}
			return goja.Undefined()
		},
		"writeProgress": func(call goja.FunctionCall) goja.Value {
			if env.Streams != nil {
				pct := call.Argument(0).ToFloat()
				status := ""
				if s := call.Argument(1); !goja.IsUndefined(s) {
					status = s.String()
				}
				env.Streams.Progress(pct, status)
			}
			return goja.Undefined()
		},
	}
}

type printer struct{ env *builtins.Env }

func (p printer) Log(s string) {
	if p.env.Streams != nil {
		p.env.Streams.Information(s)
	}
}
func (p printer) Warn(s string) {
	if p.env.Streams != nil {
		p.env.Streams.Warning(s)
	}
}
func (p printer) Error(s string) { p.Warn(s) }

type verbosePrinter struct{ env *builtins.Env }

func (p verbosePrinter) Log(s string) {
	if p.env.Streams != nil {
		p.env.Streams.Verbose(s)
	}
}
func (p verbosePrinter) Warn(s string)  { p.Log(s) }
func (p verbosePrinter) Error(s string) { p.Log(s) }
