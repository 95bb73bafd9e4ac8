package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/require"

	"github.com/runspaces/rsh/builtins"
)

// HostModule is a native module that a program embedding rsh gives its
// scripts, next to the builtin fs, tcp and sleep: `require(Name)` (or
// InitialState.Imports) loads it. It has the shape of rsh's own modules:
// Require is called once per runspace that loads the module, with that
// runspace's Env, and returns the loader that fills module.exports. So
// each runspace has its own instance; the module reads the item's
// context (Env.Context) at call time and the runspace's permissions
// (Env.Permissions), and registers per-item cleanups (Env.OnItemEnd).
//
// A panic in a module's Go code ends that item as an Exception, and the
// runspace is replaced; it does not reach the host.
//
// Host modules and functions are Go values: worker processes (the worker
// package) get them from the program itself, which passes them to
// worker.Main with worker.WithHost; only their names travel.
type HostModule struct {
	// Name is what scripts require; it must not be a builtin module's.
	Name string
	// Needs names the permission kinds the module uses: "net", "read",
	// "write". A runspace whose permissions grant none of a needed kind
	// cannot load the module: require throws a PermissionDenied error
	// naming it, instead of every call failing later.
	Needs []string
	// Require makes the module's loader for one runspace. (It does not
	// travel to worker processes: see worker.WithHost.)
	Require func(env *builtins.Env) require.ModuleLoader `json:"-"`
}

// HostFunc is the Go side of a HostFunction: it gets the item's context
// (cancelled when the item times out or the run is stopped: a function
// that blocks must watch it) and the call's arguments, converted as
// ExportArgs says, and returns a value for the script (converted as
// ToScript says) or an error, which the script sees thrown as an Error
// with the error's message.
type HostFunc func(ctx context.Context, args []any) (any, error)

// HostFunction is a Go function that a host program sets as a global of
// every runspace.
type HostFunction struct {
	// Name is the global's name: a JavaScript identifier that no builtin
	// or variable takes.
	Name string
	Func HostFunc `json:"-"`
}

// Conversion between Go and JavaScript values for host functions:
//
//   - Arguments: undefined and null become nil, booleans bool, strings
//     string, numbers int64 when they are whole and fit, else float64,
//     arrays []any, plain objects map[string]any (recursively), a Date
//     time.Time, an ArrayBuffer or typed array []byte; a function or
//     other object is passed as its goja value's Export.
//   - Results: nil becomes null; bool, string, all Go integer and float
//     kinds become booleans, strings and numbers; []byte becomes an
//     ArrayBuffer; time.Time a Date; an error is thrown; anything else
//     (structs, maps, slices) crosses as JSON, so `json` struct tags are
//     honoured, as encoding/json would marshal it.
//
// The rules are tested in host_test.go.

// permissionKinds are the values HostModule.Needs may hold.
var permissionKinds = map[string]func(*builtins.Permissions) bool{
	"net":   func(p *builtins.Permissions) bool { return p.Net.All || len(p.Net.Allow) > 0 },
	"read":  func(p *builtins.Permissions) bool { return p.Read.All || len(p.Read.Roots) > 0 },
	"write": func(p *builtins.Permissions) bool { return p.Write.All || len(p.Write.Roots) > 0 },
}

// checkHost validates the host modules and functions of state.
func checkHost(state *InitialState, seen map[string]bool) error {
	mods := map[string]bool{}
	for _, m := range state.Modules {
		switch {
		case m.Name == "":
			return errors.New("host module: empty name")
		case IsBuiltinModule(m.Name):
			return fmt.Errorf("host module %q: the name is a builtin module's", m.Name)
		case mods[m.Name]:
			return fmt.Errorf("host module %q: given twice", m.Name)
		case m.Require == nil:
			return fmt.Errorf("host module %q: no Require", m.Name)
		}
		for _, k := range m.Needs {
			if permissionKinds[k] == nil {
				return fmt.Errorf("host module %q: needs %q: want net, read or write", m.Name, k)
			}
		}
		mods[m.Name] = true
	}
	for _, fn := range state.Functions {
		switch {
		case !isIdentifier(fn.Name):
			return fmt.Errorf("host function %q: not a valid JavaScript identifier", fn.Name)
		case reservedGlobals[fn.Name] || seen[fn.Name]:
			return fmt.Errorf("host function %q: the name is taken", fn.Name)
		case fn.Func == nil:
			return fmt.Errorf("host function %q: no Func", fn.Name)
		}
		seen[fn.Name] = true
	}
	return nil
}

// hostLoader wraps a host module's loader: its needs are checked against
// the runspace's permissions before it loads.
func (f *Factory) hostLoader(m HostModule) require.ModuleLoader {
	return func(rt *goja.Runtime, module *goja.Object) {
		v, ok := f.envs.Load(rt)
		if !ok {
			panic(rt.NewGoError(errors.New("vm: runtime not made by this factory")))
		}
		env := v.(*builtins.Env)
		for _, k := range m.Needs {
			if !permissionKinds[k](env.Permissions) {
				builtins.Throw(rt, "", &builtins.PermissionError{Kind: k, Target: "module " + m.Name, Flag: "--allow-" + k})
			}
		}
		m.Require(env)(rt, module)
	}
}

// installHostFunctions sets the host functions as globals of r.
func (r *Runspace) installHostFunctions() {
	for _, hf := range r.f.state.Functions {
		fn := hf.Func
		r.rt.Set(hf.Name, func(call goja.FunctionCall) goja.Value {
			args := make([]any, len(call.Arguments))
			for i, a := range call.Arguments {
				args[i] = exportArg(a)
			}
			out, err := fn(r.env.Context(), args)
			if err != nil {
				builtins.Throw(r.rt, "", err)
			}
			return r.toScript(out)
		})
	}
}

// exportArg converts an argument of a host function to Go.
func exportArg(v goja.Value) any {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	return normalizeExport(v.Export())
}

// normalizeExport makes goja's exports follow the documented rules: whole
// numbers int64, ArrayBuffers []byte.
func normalizeExport(x any) any {
	switch v := x.(type) {
	case float64:
		if v == float64(int64(v)) && v >= -(1<<53) && v <= 1<<53 {
			return int64(v)
		}
		return v
	case goja.ArrayBuffer:
		return v.Bytes()
	case []any:
		for i := range v {
			v[i] = normalizeExport(v[i])
		}
		return v
	case map[string]any:
		for k := range v {
			v[k] = normalizeExport(v[k])
		}
		return v
	}
	return x
}

// toScript converts a host function's result to a JavaScript value.
func (r *Runspace) toScript(x any) goja.Value {
	rt := r.rt
	switch v := x.(type) {
	case nil:
		return goja.Null()
	case bool, string, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return rt.ToValue(v)
	case []byte:
		return rt.ToValue(rt.NewArrayBuffer(append([]byte(nil), v...)))
	case goja.Value:
		return v
	case time.Time:
		date, err := rt.New(rt.Get("Date"), rt.ToValue(v.UnixMilli()))
		if err != nil {
			panic(err)
		}
		return date
	case error:
		panic(rt.NewGoError(v))
	}
	data, err := json.Marshal(x)
	if err != nil {
		panic(rt.NewGoError(fmt.Errorf("host function result: %w", err)))
	}
	val, err := r.parseJSON(data)
	if err != nil {
		panic(rt.NewGoError(fmt.Errorf("host function result: %w", err)))
	}
	return val
}
