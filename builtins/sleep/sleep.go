// Package sleep provides sleep(ms), which blocks the runspace for ms
// milliseconds and returns early, by throwing, when the item's context is
// cancelled or times out.
//
// require('sleep') returns the function itself; Enable binds it as the global
// sleep.
package sleep

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/require"

	"github.com/runspaces/rsh/builtins"
)

// ModuleName is the name scripts pass to require.
const ModuleName = "sleep"

// ErrInterrupted is the error thrown by sleep when the item's context ends
// before the time is up.
var ErrInterrupted = errors.New("sleep: interrupted")

// Require returns the loader of the sleep module for a runspace.
func Require(env *builtins.Env) require.ModuleLoader {
	return func(rt *goja.Runtime, module *goja.Object) {
		_ = module.Set("exports", function(rt, env))
	}
}

// Enable binds sleep as a global of rt.
func Enable(rt *goja.Runtime, env *builtins.Env) {
	_ = rt.Set("sleep", function(rt, env))
}

func function(rt *goja.Runtime, env *builtins.Env) func(goja.FunctionCall) goja.Value {
	return func(call goja.FunctionCall) goja.Value {
		ms := call.Argument(0).ToFloat()
		if math.IsNaN(ms) || ms < 0 {
			panic(rt.NewTypeError("sleep: want a number of milliseconds >= 0, got %s", call.Argument(0).String()))
		}
		if err := Sleep(env, time.Duration(ms*float64(time.Millisecond))); err != nil {
			builtins.Throw(rt, "Error", err)
		}
		return goja.Undefined()
	}
}

// Sleep waits for d or until env's item context is done, whichever is first.
func Sleep(env *builtins.Env, d time.Duration) error {
	ctx := env.Context()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
	}
}
