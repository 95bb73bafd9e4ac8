// Package vm runs rsh script blocks in runspaces: one isolated goja runtime
// each, seeded from an InitialState.
//
// A Script is compiled once and shared. A Factory binds a Script to an
// InitialState and makes Runspaces; each Runspace evaluates the script once
// (its init) to obtain the item function, then runs that function for one
// item at a time with Invoke.
//
// A Runspace is not safe for concurrent use: it is owned by one goroutine at
// a time, and the only call another goroutine makes on it is the interrupt
// that Invoke arranges when the item's context ends. A Factory is safe for
// concurrent use.
package vm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/require"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/builtins/fs"
	"github.com/runspaces/rsh/builtins/sleep"
	"github.com/runspaces/rsh/builtins/streams"
	"github.com/runspaces/rsh/builtins/tcp"
)

// builtinModules maps each builtin module name to its loader constructor.
var builtinModules = map[string]func(*builtins.Env) require.ModuleLoader{
	sleep.ModuleName:          sleep.Require,
	tcp.ModuleName:            tcp.Require,
	fs.ModuleName:             fs.Require,
	streams.ModuleName:        streams.Require,
	streams.ConsoleModuleName: streams.RequireConsole,
}

// IsBuiltinModule reports whether name is a builtin module (as opposed to
// a JS file) for require and InitialState.Imports.
func IsBuiltinModule(name string) bool {
	_, ok := builtinModules[name]
	return ok
}

// BuiltinModules returns the names of the builtin modules, for help texts.
func BuiltinModules() []string {
	return []string{fs.ModuleName, sleep.ModuleName, streams.ModuleName, tcp.ModuleName, streams.ConsoleModuleName}
}

// reservedGlobals are names a variable or import may not take.
var reservedGlobals = map[string]bool{
	"emit": true, "writeError": true, "writeWarning": true, "writeVerbose": true,
	"writeProgress": true, "console": true, "require": true, "sleep": true,
	"setTimeout": true, "setInterval": true, "setImmediate": true, "clearTimeout": true,
	"clearInterval": true, "clearImmediate": true, "module": true, "exports": true,
	"__filename": true, "__dirname": true, "globalThis": true,
}

// isIdentifier reports whether s is a plain JavaScript identifier (ASCII
// letters, digits, _ and $, not starting with a digit).
func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// import is one resolved InitialState.Imports entry.
type importSpec struct {
	global string // name of the global
	spec   string // builtin name or absolute file path
}

// Factory makes runspaces for one script and initial state.
type Factory struct {
	script      *Script
	state       InitialState
	variables   []variableJSON
	params      *frozenNode
	filename    string // __filename: the script's absolute path, or "-e"
	imports     []importSpec
	roots       []string // resolved module roots
	registry    *require.Registry
	maxStack    int
	nextID      atomic.Int64
	envs        sync.Map // *goja.Runtime -> *builtins.Env
	importFiles map[string]bool
}

type variableJSON struct {
	name string
	json string
}

// NewFactory checks state against script and prepares what every runspace
// shares: the module registry, the module roots and the serialised
// variables. It does not run the script; NewRunspace does.
func NewFactory(script *Script, state InitialState) (*Factory, error) {
	if script == nil {
		return nil, errors.New("vm: nil script")
	}
	f := &Factory{script: script, state: state, maxStack: state.MaxCallStackSize, importFiles: map[string]bool{}}
	f.filename = script.name
	if f.filename != "-e" {
		abs, err := filepath.Abs(f.filename)
		if err != nil {
			return nil, fmt.Errorf("script %s: %w", f.filename, err)
		}
		f.filename = abs
	}
	if f.maxStack <= 0 {
		f.maxStack = DefaultMaxCallStackSize
	}
	seen := map[string]bool{}
	for _, v := range state.Variables {
		if !isIdentifier(v.Name) {
			return nil, fmt.Errorf("variable %q: not a valid JavaScript identifier", v.Name)
		}
		if reservedGlobals[v.Name] {
			return nil, fmt.Errorf("variable %q: the name is taken by a builtin", v.Name)
		}
		if seen[v.Name] {
			return nil, fmt.Errorf("variable %q: set twice", v.Name)
		}
		seen[v.Name] = true
		raw, err := marshalData(v.Value)
		if err != nil {
			return nil, fmt.Errorf("variable %q: %w", v.Name, err)
		}
		f.variables = append(f.variables, variableJSON{v.Name, string(raw)})
	}
	params := state.Params
	if params == nil {
		params = map[string]any{}
	}
	raw, err := marshalData(params)
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	if f.params, err = decodeFrozen(raw); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}

	roots := state.ModulePaths
	if script.Dir() != "" { // a detached script has no directory
		roots = append([]string{script.Dir()}, roots...)
	}
	for _, root := range roots {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, fmt.Errorf("module path %s: %w", root, err)
		}
		resolved, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return nil, fmt.Errorf("module path %s: %w", root, err)
		}
		f.roots = append(f.roots, resolved)
	}

	if err := checkHost(&f.state, seen); err != nil {
		return nil, err
	}
	for _, imp := range state.Imports {
		spec, err := f.resolveImport(imp)
		if err != nil {
			return nil, err
		}
		if seen[spec.global] || reservedGlobals[spec.global] && spec.global != spec.spec {
			return nil, fmt.Errorf("import %s: the global %q is already taken", imp, spec.global)
		}
		seen[spec.global] = true
		f.imports = append(f.imports, spec)
	}

	f.registry = require.NewRegistry(require.WithLoader(moduleSourceWithoutMap(f.loadSource)), require.WithPathResolver(requirePath))
	for name, loader := range builtinModules {
		f.registry.RegisterNativeModule(name, f.nativeLoader(loader))
	}
	for _, m := range state.Modules {
		f.registry.RegisterNativeModule(m.Name, f.hostLoader(m))
	}
	return f, nil
}

// Script returns the factory's script.
func (f *Factory) Script() *Script { return f.script }

// State returns the factory's initial state.
func (f *Factory) State() InitialState { return f.state }

// isHostModule reports whether name is one of the factory's host modules.
func (f *Factory) isHostModule(name string) bool {
	for _, m := range f.state.Modules {
		if m.Name == name {
			return true
		}
	}
	return false
}

func (f *Factory) resolveImport(imp string) (importSpec, error) {
	name, spec, hasName := strings.Cut(imp, "=")
	if !hasName {
		spec, name = imp, ""
	}
	if spec == "" {
		return importSpec{}, fmt.Errorf("import %q: empty module name", imp)
	}
	if IsBuiltinModule(spec) || f.isHostModule(spec) {
		if name == "" {
			name = spec
		}
	} else {
		abs, err := filepath.Abs(spec)
		if err != nil {
			return importSpec{}, fmt.Errorf("import %s: %w", spec, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return importSpec{}, fmt.Errorf("import %s: not a builtin module (%s) and not a file: %w", spec, strings.Join(BuiltinModules(), ", "), err)
		}
		resolved, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return importSpec{}, fmt.Errorf("import %s: %w", spec, err)
		}
		if !requirable(abs) || !requirable(resolved) {
			return importSpec{}, fmt.Errorf("import %s: %w", spec, ErrNotRequirable)
		}
		spec = resolved
		// A file named on the command line is trusted, and so is its
		// directory, so that its own relative requires work.
		f.importFiles[resolved] = true
		f.roots = append(f.roots, filepath.Dir(resolved))
		if name == "" {
			base := filepath.Base(resolved)
			name = strings.TrimSuffix(base, filepath.Ext(base))
			name = regexp.MustCompile(`[^A-Za-z0-9_$]`).ReplaceAllString(name, "_")
		}
	}
	if !isIdentifier(name) {
		return importSpec{}, fmt.Errorf("import %s: %q is not a valid global name; use NAME=%s", imp, name, spec)
	}
	return importSpec{global: name, spec: spec}, nil
}

func (f *Factory) nativeLoader(mk func(*builtins.Env) require.ModuleLoader) require.ModuleLoader {
	return func(rt *goja.Runtime, module *goja.Object) {
		env, ok := f.envs.Load(rt)
		if !ok {
			panic(rt.NewGoError(errors.New("vm: runtime not made by this factory")))
		}
		mk(env.(*builtins.Env))(rt, module)
	}
}

// requirable reports whether require may load path, by its extension:
// JavaScript and JSON only. Anything else (.env, a key, a shell script) is
// refused, so that require cannot evaluate a file that is not code and
// echo its contents in a syntax error.
func requirable(path string) bool {
	switch filepath.Ext(path) {
	case ".js", ".cjs", ".json":
		return true
	}
	return false
}

// ErrNotRequirable is returned when require names a file whose extension
// is not one of .js, .cjs or .json.
var ErrNotRequirable = errors.New("only .js, .cjs and .json files can be loaded")

// requirePath joins a module name to the directory of the module that
// requires it, without resolving links: loadSource resolves them to check
// the roots, and messages then name the path as the script wrote it, not
// where a link leads.
func requirePath(base, name string) string {
	return filepath.Join(base, filepath.FromSlash(name))
}

// loadSource is the require source loader: it loads .js, .cjs and .json
// files only from the module roots, after resolving symlinks. A file that
// is missing, outside the roots, not a regular file or unreadable is
// reported the same way, as not existing (require then goes on to the next
// candidate, and ends with "cannot find module"), so require cannot tell a
// script what exists outside its roots. A file in the roots with another
// extension is an error naming the allowed ones.
func (f *Factory) loadSource(path string) ([]byte, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, require.ModuleFileDoesNotExistError
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, require.ModuleFileDoesNotExistError
	}
	if !f.importFiles[resolved] && !within(f.roots, resolved) {
		return nil, require.ModuleFileDoesNotExistError
	}
	fi, err := os.Stat(resolved)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, require.ModuleFileDoesNotExistError
	}
	if !requirable(abs) || !requirable(resolved) {
		return nil, fmt.Errorf("require %s: %w", path, ErrNotRequirable)
	}
	b, err := os.ReadFile(resolved)
	if err != nil {
		return nil, require.ModuleFileDoesNotExistError
	}
	return b, nil
}

func within(roots []string, path string) bool {
	for _, root := range roots {
		rel, err := filepath.Rel(root, path)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel) {
			return true
		}
	}
	return false
}

// marshalData serialises a variable or parameter value as JSON.
func marshalData(v any) ([]byte, error) {
	switch x := v.(type) {
	case json.RawMessage:
		if !json.Valid(x) {
			return nil, errors.New("invalid JSON")
		}
		return x, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("value is not JSON data: %w", err)
	}
	return raw, nil
}
