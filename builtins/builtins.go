// Package builtins holds the native modules that rsh scripts can require:
// sleep, tcp, fs and the stream functions (emit, writeError, console, ...).
//
// Every module has the same shape, modelled on goja_nodejs: a ModuleName
// constant, a Require(env) function returning a require.ModuleLoader, and an
// Enable(rt, env) function that binds the module as a global. The runspace
// hands each module an *Env: the context of the item being run, the
// permissions, and the sinks for the output streams. Nothing here reads flags,
// globals or the terminal.
package builtins

import (
	"context"

	"github.com/dop251/goja"
)

// Streams receives what a script writes to its streams while one item runs.
// Calls come from the runspace's goroutine only.
type Streams interface {
	// Output records an output value (emit). It returns an error when the
	// value cannot be recorded (for example, it cannot be serialised).
	Output(v goja.Value) error
	// Error records a non-terminating error (writeError).
	Error(msg string)
	// ElementError records a non-terminating error of one element of the
	// item, an array (writeError(msg, index) in a batch). It returns an
	// error, thrown to the script, when index names no element.
	ElementError(msg string, index int) error
	// Warning records a warning (writeWarning, console.warn, console.error).
	Warning(msg string)
	// Verbose records a verbose message (writeVerbose, console.debug).
	Verbose(msg string)
	// Information records an informational message (console.log, console.info).
	Information(msg string)
	// Progress records a progress report (writeProgress).
	Progress(percent float64, status string)
}

// Env is what a builtin module needs from the runspace that loads it.
// A runspace owns one Env for its whole life and sets the context before
// each item; modules must read Env.Context() at call time, never cache it.
// Env is used from the runspace's goroutine only, like the runtime itself.
type Env struct {
	// Permissions bounds what fs and tcp may touch. The zero value denies all.
	Permissions *Permissions
	// Streams receives stream writes; nil discards them.
	Streams Streams

	ctx     context.Context
	closers []func()
}

// Context returns the context of the item being run: it is cancelled when the
// item times out or the run is stopped. Blocking builtins must watch it.
func (e *Env) Context() context.Context {
	if e.ctx == nil {
		return context.Background()
	}
	return e.ctx
}

// SetContext sets the context of the item about to run. Called by the
// runspace before each item.
func (e *Env) SetContext(ctx context.Context) {
	e.ctx = ctx
}

// OnItemEnd registers f to run when the current item ends, whatever its
// outcome; modules use it to close connections and files opened by the item.
func (e *Env) OnItemEnd(f func()) {
	e.closers = append(e.closers, f)
}

// EndItem runs and forgets the functions registered with OnItemEnd, most
// recent first. Called by the runspace after each item.
func (e *Env) EndItem() {
	fs := e.closers
	e.closers = nil
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// Perms returns the permissions, or a deny-all value when none were set.
func (e *Env) Perms() *Permissions {
	if e.Permissions == nil {
		return &Permissions{}
	}
	return e.Permissions
}
