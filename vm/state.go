package vm

import (
	"time"

	"github.com/runspaces/rsh/builtins"
)

// DefaultMaxCallStackSize bounds JavaScript call depth when InitialState
// leaves it at zero. It is close to Node's default depth, deep enough for
// honest recursive code and small enough that a runaway recursion fails in
// milliseconds with a RangeError instead of exhausting memory.
const DefaultMaxCallStackSize = 10000

// Variable is a global variable seeded into every runspace, like a
// PowerShell SessionStateVariableEntry.
type Variable struct {
	Name        string
	Value       any // JSON data: nil, bool, numbers, string, []any, map[string]any, json.RawMessage, or anything json.Marshal accepts
	Description string
}

// InitialState is what every runspace starts from. Values are copied into
// each runspace, so runspaces never share mutable state through it.
type InitialState struct {
	// Variables become globals. Each runspace gets its own deep copy.
	Variables []Variable
	// Params is passed as the second argument of the item function, the
	// same read-only object for every item (writes are ignored, or throw
	// in strict mode, as on a frozen object).
	Params map[string]any
	// Imports binds modules as globals, like PowerShell's ImportPSModule:
	// a builtin name ("fs", "tcp", "sleep"), a JS file path, or
	// "NAME=SPEC" to choose the global's name.
	Imports []string
	// ModulePaths are extra directory roots that require may load JS files
	// from, besides the script's own directory tree.
	ModulePaths []string
	// Modules are the host program's own native modules, which scripts
	// require by name like the builtin ones (see HostModule).
	Modules []HostModule
	// Functions are Go functions set as globals of every runspace (see
	// HostFunction).
	Functions []HostFunction
	// Permissions bound what builtins may touch. The zero value denies all.
	Permissions builtins.Permissions
	// Timeout bounds each item (and each runspace's init); zero means none.
	Timeout time.Duration
	// MaxCallStackSize bounds call depth; zero means DefaultMaxCallStackSize.
	MaxCallStackSize int
	// Per-item limits (see limits.go). An item that crosses one ends as
	// an Exception naming it. Zero means the default; a negative value
	// means no limit.
	//
	// MaxOutputValues bounds the output values of one item: emit's plus
	// the return value (DefaultMaxOutputValues).
	MaxOutputValues int
	// MaxOutputBytes bounds the total size of those values, as JSON
	// (DefaultMaxOutputBytes).
	MaxOutputBytes int64
	// MaxMessages bounds the messages one item writes to each stream:
	// errors, warnings, verbose, information (console) and progress
	// (DefaultMaxMessages).
	MaxMessages int
	// MaxTimers bounds the timers one item has pending at once:
	// setTimeout, setInterval and setImmediate (DefaultMaxTimers).
	MaxTimers int
	// OnInit, when set, receives what a runspace's init wrote to its
	// streams (a top-level console.log, say), each time a runspace that
	// wrote something is created, from the goroutine creating it.
	OnInit func(*Result) `json:"-"`
}
