package vm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runspaces/rsh/vm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runspace(t *testing.T, src string, state vm.InitialState) *vm.Runspace {
	t.Helper()
	f := factory(t, src, state)
	rs, err := f.NewRunspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	return rs
}

func factory(t *testing.T, src string, state vm.InitialState) *vm.Factory {
	t.Helper()
	s, err := vm.Compile("test.js", t.TempDir(), src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := vm.NewFactory(s, state)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func fileRunspace(t *testing.T, name string, state vm.InitialState) *vm.Runspace {
	t.Helper()
	return pathRunspace(t, filepath.Join("testdata", name), state)
}

// pathRunspace is a runspace of the script file at path.
func pathRunspace(t *testing.T, path string, state vm.InitialState) *vm.Runspace {
	t.Helper()
	s, err := vm.CompileFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return scriptRunspace(t, s, state)
}

// scriptRunspace is a runspace of s, closed when the test ends.
func scriptRunspace(t *testing.T, s *vm.Script, state vm.InitialState) *vm.Runspace {
	t.Helper()
	f, err := vm.NewFactory(s, state)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := f.NewRunspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	return rs
}

func outputs(r *vm.Result) string {
	var s []string
	for _, o := range r.Output {
		s = append(s, string(o))
	}
	return strings.Join(s, " ")
}

func TestCompileErrorPosition(t *testing.T) {
	_, err := vm.Compile("bad.js", "", "module.exports = function () {\n  return 1 +;\n};\n")
	var ce *vm.CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *vm.CompileError", err)
	}
	if ce.File != "bad.js" || ce.Line != 2 || ce.Column != 13 {
		t.Errorf("position %s:%d:%d, want bad.js:2:13", ce.File, ce.Line, ce.Column)
	}
	if !strings.HasPrefix(err.Error(), "bad.js:2:13: syntax error: ") {
		t.Errorf("message %q", err)
	}
}

func TestCompileESMHint(t *testing.T) {
	for _, src := range []string{"import fs from 'fs';\n", "const a = 1;\nexport default (x) => x;\n", "import { a } from './a.js'"} {
		_, err := vm.Compile("esm.js", "", src)
		if err == nil || !strings.Contains(err.Error(), "module.exports") {
			t.Errorf("%q: error %v does not point to module.exports", src, err)
		}
	}
	// A script that merely mentions the words gets no hint.
	_, err := vm.Compile("x.js", "", "const important = 1 +;")
	if err == nil || strings.Contains(err.Error(), "module.exports") {
		t.Errorf("error %v", err)
	}
}

func TestCompileFileMissing(t *testing.T) {
	_, err := vm.CompileFile("testdata/nope.js")
	if err == nil || err.Error() != "script testdata/nope.js: no such file" {
		t.Fatalf("err = %v", err)
	}
}

func TestInitMustProduceFunction(t *testing.T) {
	for src, want := range map[string]string{
		"module.exports = {a: 1};":  "module.exports is an object",
		"42;":                       "the last expression is number 42",
		`"x"`:                       `the last expression is string "x"`,
		"throw new TypeError('no')": "TypeError: no",
	} {
		f := factory(t, src, vm.InitialState{})
		_, err := f.NewRunspace(context.Background())
		var ie *vm.InitError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want an InitError containing %q", src, err, want)
		}
	}
}

func TestBothFunctionForms(t *testing.T) {
	for _, src := range []string{"module.exports = (x) => x + 1", "(x) => x + 1", "function f(x) { return x + 1 }; f", "exports.ignored = 1; module.exports = function (x) { return x + 1 }"} {
		rs := runspace(t, src, vm.InitialState{})
		if r := rs.Invoke(context.Background(), 1); r.Status != vm.Success || outputs(r) != "2" {
			t.Errorf("%s: %s %s %+v", src, r.Status, outputs(r), r.Error)
		}
	}
}

func TestStreamsAndOutputOrder(t *testing.T) {
	rs := fileRunspace(t, "streams.js", vm.InitialState{Params: map[string]any{"tag": "t"}})
	r := rs.Invoke(context.Background(), 7)
	if r.Status != vm.Success {
		t.Fatalf("status %s %+v", r.Status, r.Error)
	}
	if got, want := outputs(r), `7 {"n":7,"tag":"t"} "done"`; got != want {
		t.Errorf("outputs %s, want %s", got, want)
	}
	check := func(name string, got, want []string) {
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("warnings", r.Warnings, []string{"warn 7", "cwarn 7"})
	check("verbose", r.Verbose, []string{"verbose 7", "debug 7"})
	check("information", r.Information, []string{"log 7", "info 7"})
	if len(r.Progress) != 1 || r.Progress[0].Percent != 50 || r.Progress[0].Status != "half" {
		t.Errorf("progress %+v", r.Progress)
	}
}

func TestWriteErrorIsError(t *testing.T) {
	rs := runspace(t, `(x) => { writeError("bad " + x); return x }`, vm.InitialState{})
	r := rs.Invoke(context.Background(), "a")
	if r.Status != vm.Error || len(r.Errors) != 1 || r.Errors[0] != "bad a" || outputs(r) != `"a"` {
		t.Fatalf("%s %q %s", r.Status, r.Errors, outputs(r))
	}
	if !rs.Usable() {
		t.Error("a runspace is still usable after a non-terminating error")
	}
}

// writeError(message, index) attributes the error to an element of a
// batch: it is on the error stream and, with its index, in ElementErrors.
func TestWriteErrorElement(t *testing.T) {
	rs := runspace(t, `(xs) => { xs.forEach((x, i) => x % 3 ? emit(x) : writeError("bad " + x, i)); writeError("whole batch") }`, vm.InitialState{})
	r := rs.Invoke(context.Background(), json.RawMessage(`[1,3,5,6]`))
	if r.Status != vm.Error || strings.Join(r.Errors, "|") != "bad 3|bad 6|whole batch" || outputs(r) != "1 5" {
		t.Fatalf("%s %q %s", r.Status, r.Errors, outputs(r))
	}
	if want := []vm.ElementError{{Index: 1, Error: "bad 3"}, {Index: 3, Error: "bad 6"}}; !reflect.DeepEqual(r.ElementErrors, want) {
		t.Errorf("element errors %+v, want %+v", r.ElementErrors, want)
	}
	// The next item starts with none.
	if r := rs.Invoke(context.Background(), json.RawMessage(`[1]`)); len(r.Errors) != 1 || r.ElementErrors != nil {
		t.Errorf("next item: %s %+v", r.Status, r.ElementErrors)
	}
}

// An index that names no element of the item throws, so that a wrong
// attribution is not recorded.
func TestWriteErrorBadIndex(t *testing.T) {
	for _, tc := range []struct{ item, index, want string }{
		{`[1,2]`, `2`, "RangeError: writeError: index 2 names no element of the item, an array of 2"},
		{`"x"`, `0`, "RangeError: writeError: index 0 names an element of a batch, and the item is not an array"},
		{`[1,2]`, `-1`, "TypeError: writeError: the index must be an element's position in the batch (0, 1, ...), not -1"},
		{`[1,2]`, `0.5`, "not 0.5"},
		{`[1,2]`, `"1"`, "not 1"},
		{`[1,2]`, `NaN`, "not NaN"},
	} {
		rs := runspace(t, `(x) => writeError("e", `+tc.index+`)`, vm.InitialState{})
		r := rs.Invoke(context.Background(), json.RawMessage(tc.item))
		if r.Status != vm.Exception || !strings.Contains(r.Error.Message, tc.want) || r.ElementErrors != nil {
			t.Errorf("writeError(e, %s) on %s: %s %+v %+v", tc.index, tc.item, r.Status, r.Error, r.ElementErrors)
		}
	}
}

func TestException(t *testing.T) {
	rs := runspace(t, "module.exports = function (x) {\n  emit('before');\n  throw new RangeError('too big: ' + x);\n};", vm.InitialState{})
	r := rs.Invoke(context.Background(), 5)
	if r.Status != vm.Exception || r.Error == nil {
		t.Fatalf("status %s", r.Status)
	}
	if r.Error.Message != "RangeError: too big: 5" {
		t.Errorf("message %q", r.Error.Message)
	}
	if !strings.Contains(r.Error.Stack, "test.js:3:") {
		t.Errorf("stack %q does not name test.js:3", r.Error.Stack)
	}
	if outputs(r) != `"before"` {
		t.Errorf("emitted values before the throw are kept: got %s", outputs(r))
	}
	if !rs.Usable() {
		t.Error("a thrown error should not break the runspace")
	}
	// Non-Error throws and rejections keep their value as the message.
	rs2 := runspace(t, `async (x) => { if (x) throw "plain"; return Promise.reject(new Error("rejected")) }`, vm.InitialState{})
	if r := rs2.Invoke(context.Background(), true); r.Status != vm.Exception || r.Error.Message != "plain" {
		t.Errorf("throw string: %s %+v", r.Status, r.Error)
	}
	if r := rs2.Invoke(context.Background(), false); r.Status != vm.Exception || r.Error.Message != "Error: rejected" {
		t.Errorf("rejection: %s %+v", r.Status, r.Error)
	}
}

func TestRunawayRecursion(t *testing.T) {
	rs := runspace(t, `function f(n) { return f(n + 1) + 1 }; (x) => f(0)`, vm.InitialState{MaxCallStackSize: 200})
	r := rs.Invoke(context.Background(), 1)
	if r.Status != vm.Exception || !strings.Contains(r.Error.Message, "Maximum call stack size exceeded") {
		t.Fatalf("%s %+v", r.Status, r.Error)
	}
	if rs.Usable() {
		t.Error("a runspace that overflowed its stack must not be reused")
	}
}

func TestTimeoutInterruptsLoop(t *testing.T) {
	rs := runspace(t, `(x) => { while (true) {} }`, vm.InitialState{Timeout: 50 * time.Millisecond})
	r := rs.Invoke(context.Background(), 1)
	if r.Status != vm.Timeout {
		t.Fatalf("status %s %+v", r.Status, r.Error)
	}
	if rs.Usable() {
		t.Error("an interrupted runspace must not be reused")
	}
	if r := rs.Invoke(context.Background(), 1); r.Status != vm.Exception {
		t.Errorf("invoking an unusable runspace: %s", r.Status)
	}
}

func TestTimeoutInterruptsSleepAndTimers(t *testing.T) {
	for _, src := range []string{
		`(x) => { sleep(60000) }`,
		`async (x) => { await new Promise(r => setTimeout(r, 60000)) }`,
	} {
		rs := runspace(t, src, vm.InitialState{Timeout: 50 * time.Millisecond})
		if r := rs.Invoke(context.Background(), 1); r.Status != vm.Timeout {
			t.Errorf("%s: status %s %+v", src, r.Status, r.Error)
		}
	}
}

func TestCancelIsStopped(t *testing.T) {
	rs := runspace(t, `(x) => { while (true) {} }`, vm.InitialState{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	if r := rs.Invoke(ctx, 1); r.Status != vm.Stopped {
		t.Fatalf("status %s", r.Status)
	}
}

func TestAsyncTimers(t *testing.T) {
	rs := fileRunspace(t, "timers.js", vm.InitialState{})
	r := rs.Invoke(context.Background(), "x")
	if r.Status != vm.Success || outputs(r) != `"timeout,interval,immediate:x"` {
		t.Fatalf("%s %s %+v", r.Status, outputs(r), r.Error)
	}
}

func TestPromiseThatNeverSettles(t *testing.T) {
	rs := runspace(t, `(x) => new Promise(() => {})`, vm.InitialState{})
	r := rs.Invoke(context.Background(), 1)
	if r.Status != vm.Exception || !strings.Contains(r.Error.Message, "never settles") {
		t.Fatalf("%s %+v", r.Status, r.Error)
	}
}

// Timers left by one item never fire during the next.
func TestTimersDoNotLeakBetweenItems(t *testing.T) {
	rs := runspace(t, `(x) => {
		if (x === 1) { setTimeout(() => emit("leaked"), 0); return "first" }
		return new Promise(r => setTimeout(() => r("second"), 20));
	}`, vm.InitialState{})
	rs.Invoke(context.Background(), 1)
	r := rs.Invoke(context.Background(), 2)
	if outputs(r) != `"second"` {
		t.Fatalf("outputs %s", outputs(r))
	}
}

// A Go panic below the engine becomes an Exception, not a crash, and the
// runspace is retired.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("boom in Go") }

func TestGoPanicIsException(t *testing.T) {
	rs := runspace(t, `(x) => x`, vm.InitialState{})
	r := rs.Invoke(context.Background(), panicky{})
	if r.Status != vm.Exception || !strings.Contains(r.Error.Message, "boom in Go") {
		t.Fatalf("%s %+v", r.Status, r.Error)
	}
	if rs.Usable() {
		t.Error("a runspace that panicked must not be reused")
	}
}

// Variables are deep-copied: what one runspace does to them, another does
// not see.
func TestVariablesAreCopiedPerRunspace(t *testing.T) {
	shared := map[string]any{"list": []any{"a"}}
	f := factory(t, `(x) => { cfg.list.push(x); return cfg.list.length }`, vm.InitialState{
		Variables: []vm.Variable{{Name: "cfg", Value: shared}},
	})
	a, err := f.NewRunspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := f.NewRunspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.Invoke(context.Background(), "x")
	a.Invoke(context.Background(), "y")
	if r := b.Invoke(context.Background(), "z"); outputs(r) != "2" {
		t.Errorf("second runspace saw list length %s, want 2", outputs(r))
	}
	if len(shared["list"].([]any)) != 1 {
		t.Errorf("the Go value was changed: %v", shared)
	}
}

func TestGlobalsDoNotCrossRunspaces(t *testing.T) {
	f := factory(t, `(x) => { const had = typeof leak; globalThis.leak = 1; return had }`, vm.InitialState{})
	a, _ := f.NewRunspace(context.Background())
	defer a.Close()
	b, _ := f.NewRunspace(context.Background())
	defer b.Close()
	if r := a.Invoke(context.Background(), 1); outputs(r) != `"undefined"` {
		t.Fatal(outputs(r))
	}
	if r := b.Invoke(context.Background(), 1); outputs(r) != `"undefined"` {
		t.Errorf("runspace b saw a's global: %s", outputs(r))
	}
	if r := a.Invoke(context.Background(), 1); outputs(r) != `"number"` {
		t.Errorf("a reused runspace keeps its globals: %s", outputs(r))
	}
}

func TestParamsFrozen(t *testing.T) {
	rs := runspace(t, `(x, p) => { "use strict"; p.deep.n = 5; return p.deep.n }`, vm.InitialState{Params: map[string]any{"deep": map[string]any{"n": 1}}})
	r := rs.Invoke(context.Background(), 1)
	if r.Status != vm.Exception || !strings.Contains(r.Error.Message, "TypeError") {
		t.Fatalf("writing a frozen param in strict mode: %s %s %+v", r.Status, outputs(r), r.Error)
	}
}

func TestStateValidation(t *testing.T) {
	s, _ := vm.Compile("x.js", "", "(x) => x")
	for _, tc := range []struct {
		state vm.InitialState
		want  string
	}{
		{vm.InitialState{Variables: []vm.Variable{{Name: "a-b"}}}, "not a valid JavaScript identifier"},
		{vm.InitialState{Variables: []vm.Variable{{Name: "require"}}}, "taken by a builtin"},
		{vm.InitialState{Variables: []vm.Variable{{Name: "a"}, {Name: "a"}}}, "set twice"},
		{vm.InitialState{Variables: []vm.Variable{{Name: "f", Value: func() {}}}}, "not JSON data"},
		{vm.InitialState{Imports: []string{"nosuch"}}, "not a builtin module"},
		{vm.InitialState{ModulePaths: []string{"/no/such/dir"}}, "module path"},
	} {
		if _, err := vm.NewFactory(s, tc.state); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.state, err, tc.want)
		}
	}
}

func TestImportsAndRequireRoots(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("outside/secret.js", `module.exports = "secret"`)
	write("lib/helper.js", `exports.twice = (x) => x * 2`)
	script := write("app/main.js", `const h = require("../lib/helper.js"); module.exports = (x) => h.twice(x) + fs2.x`)
	write("app/fs2.js", `exports.x = 100`)
	link := filepath.Join(dir, "app", "link.js")
	if err := os.Symlink(filepath.Join(dir, "outside", "secret.js"), link); err != nil {
		t.Fatal(err)
	}

	s, err := vm.CompileFile(script)
	if err != nil {
		t.Fatal(err)
	}
	state := vm.InitialState{Imports: []string{"fs2=" + filepath.Join(dir, "app", "fs2.js")}}
	f, err := vm.NewFactory(s, state)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.NewRunspace(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot find module") {
		t.Fatalf("require of ../lib without --module-path: %v", err)
	}
	state.ModulePaths = []string{filepath.Join(dir, "lib")}
	f, err = vm.NewFactory(s, state)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := f.NewRunspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if r := rs.Invoke(context.Background(), 1); outputs(r) != "102" {
		t.Fatalf("%s %+v", outputs(r), r.Error)
	}

	// A symlink inside the script's tree that points outside it is refused.
	s2, err := vm.Compile(filepath.Join(dir, "app", "x.js"), filepath.Join(dir, "app"), `module.exports = () => require("./link.js")`)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := vm.NewFactory(s2, vm.InitialState{})
	if err != nil {
		t.Fatal(err)
	}
	rs2, err := f2.NewRunspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rs2.Close()
	if r := rs2.Invoke(context.Background(), 1); r.Status != vm.Exception || !strings.Contains(r.Error.Message, "cannot find module") {
		t.Fatalf("require through a symlink out of the tree: %s %s %+v", r.Status, outputs(r), r.Error)
	}
}

func TestOutputEncoding(t *testing.T) {
	rs := runspace(t, `(x) => { emit(1.5, -0, 1e21, NaN, "q\"\n<>", null, undefined, true, [1, "a"], {b: 1, a: 2}); return x }`, vm.InitialState{})
	r := rs.Invoke(context.Background(), json.RawMessage(`{"z":1,"y":[true,null]}`))
	want := `1.5 0 1e+21 null "q\"\n<>" null null true [1,"a"] {"b":1,"a":2} {"z":1,"y":[true,null]}`
	if got := outputs(r); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	rs2 := runspace(t, `(x) => { const o = {}; o.self = o; return o }`, vm.InitialState{})
	if r := rs2.Invoke(context.Background(), 1); r.Status != vm.Exception {
		t.Errorf("a cyclic value: %s %s", r.Status, outputs(r))
	}
}

func TestResultRecord(t *testing.T) {
	r := &vm.Result{Seq: 3, Status: vm.Success, Duration: 1500 * time.Microsecond, Attempts: 1}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"seq":3`, `"input":null`, `"output":[]`, `"errors":[]`, `"warnings":[]`, `"verbose":[]`, `"information":[]`, `"durationMs":1.5`, `"attempts":1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("record %s lacks %s", b, want)
		}
	}
	if strings.Contains(string(b), `"error"`) {
		t.Errorf("record %s has an error field without an exception", b)
	}
}

// The hand-written record encoder writes what encoding/json would, field
// for field and in the documented order.
func TestRecordMatchesEncodingJSON(t *testing.T) {
	r := &vm.Result{
		Seq: 7, Input: json.RawMessage(`{"h":"host7"}`), Output: []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`"a\u0001<>"`)},
		Status: vm.Exception, Errors: []string{"e\n1"}, Warnings: []string{"w"}, Verbose: []string{"v"}, Information: []string{"i", "j"},
		Progress: []vm.Progress{{Percent: 12.5, Status: "half\"way"}}, Error: &vm.ErrorInfo{Message: "Error: x", Stack: "at f (a.js:1:2)"},
		StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC), Duration: 12345 * time.Microsecond, Runspace: 3, Attempts: 2,
		BatchSize: 4, ElementErrors: []vm.ElementError{{Index: 2, Error: "e\n1"}},
	}
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(map[string]any{
		"seq": 7, "input": r.Input, "output": r.Output, "status": "Exception", "errors": r.Errors, "warnings": r.Warnings,
		"verbose": r.Verbose, "information": r.Information, "progress": r.Progress, "error": r.Error,
		"startedAt": r.StartedAt, "durationMs": 12.345, "runspace": 3, "attempts": 2,
		"batchSize": 4, "elementErrors": []map[string]any{{"index": 2, "error": "e\n1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("record %s is not JSON: %v", got, err)
	}
	json.Unmarshal(want, &w)
	if gs, ws := fmt.Sprint(g), fmt.Sprint(w); gs != ws {
		t.Errorf("record\n%s\nwant the same fields as\n%s", got, want)
	}
	order := []string{`"seq"`, `"input"`, `"output"`, `"status"`, `"errors"`, `"warnings"`, `"verbose"`, `"information"`, `"progress"`, `"error"`, `"startedAt"`, `"durationMs"`, `"runspace"`, `"attempts"`, `"batchSize"`, `"elementErrors"`}
	last := -1
	for _, k := range order {
		i := strings.Index(string(got), k+":")
		if i < last {
			t.Errorf("%s out of order in %s", k, got)
		}
		last = i
	}
}

// A record read back is the record written, element errors included.
func TestRecordRoundTrip(t *testing.T) {
	r := &vm.Result{
		Seq: 11, Input: json.RawMessage(`[11,12,13]`), Output: []json.RawMessage{json.RawMessage(`121`)}, Status: vm.Error,
		Errors: []string{"12 failed", "13 failed"}, StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC),
		Duration: 2 * time.Millisecond, Runspace: 1, Attempts: 1, BatchSize: 3,
		ElementErrors: []vm.ElementError{{Index: 1, Error: "12 failed"}, {Index: 2, Error: "13 failed"}},
	}
	var back vm.Result
	if err := json.Unmarshal(r.AppendJSON(nil), &back); err != nil {
		t.Fatal(err)
	}
	if got, want := back.AppendJSON(nil), r.AppendJSON(nil); string(got) != string(want) {
		t.Errorf("read back\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(string(r.AppendJSON(nil)), `"batchSize":3,"elementErrors":[{"index":1,"error":"12 failed"},{"index":2,"error":"13 failed"}]}`) {
		t.Errorf("record %s", r.AppendJSON(nil))
	}
}

// Elements counts a result's input records and the failed ones: an item
// alone by its status; a batch that returned by the elements its errors
// name; a batch that did not, all failed.
func TestElements(t *testing.T) {
	errs := func(idx ...int) []vm.ElementError {
		var es []vm.ElementError
		for _, i := range idx {
			es = append(es, vm.ElementError{Index: i, Error: "x"})
		}
		return es
	}
	for _, tc := range []struct {
		name          string
		r             vm.Result
		total, failed int
	}{
		{"item success", vm.Result{Status: vm.Success}, 1, 0},
		{"item error", vm.Result{Status: vm.Error, Errors: []string{"x"}}, 1, 1},
		{"item exception", vm.Result{Status: vm.Exception}, 1, 1},
		{"batch success", vm.Result{Status: vm.Success, BatchSize: 100}, 100, 0},
		{"batch with element errors", vm.Result{Status: vm.Error, BatchSize: 100, ElementErrors: errs(6, 13, 20)}, 100, 3},
		{"an element written twice fails once", vm.Result{Status: vm.Error, BatchSize: 10, ElementErrors: errs(3, 3, 1)}, 10, 2},
		{"indexes outside the batch are not counted", vm.Result{Status: vm.Error, BatchSize: 10, ElementErrors: errs(-1, 10, 9)}, 10, 1},
		{"an error with no index fails no element", vm.Result{Status: vm.Error, BatchSize: 10, Errors: []string{"x"}}, 10, 0},
		{"batch exception", vm.Result{Status: vm.Exception, BatchSize: 10, ElementErrors: errs(1)}, 10, 10},
		{"batch timeout", vm.Result{Status: vm.Timeout, BatchSize: 10}, 10, 10},
		{"batch stopped", vm.Result{Status: vm.Stopped, BatchSize: 10}, 10, 10},
		{"batch memory limit", vm.Result{Status: vm.MemoryLimit, BatchSize: 10}, 10, 10},
	} {
		if total, failed := tc.r.Elements(); total != tc.total || failed != tc.failed {
			t.Errorf("%s: %d of %d failed, want %d of %d", tc.name, failed, total, tc.failed, tc.total)
		}
	}
}

// console is made on first use, and can be replaced like any global.
func TestLazyConsole(t *testing.T) {
	rs := runspace(t, `(x) => {
		const before = typeof console.log;
		console = {log: (m) => emit("mine " + m)};
		console.log(x);
		return before;
	}`, vm.InitialState{})
	r := rs.Invoke(context.Background(), "hi")
	if outputs(r) != `"mine hi" "function"` || len(r.Information) != 0 {
		t.Fatalf("%s %+v %q", outputs(r), r.Error, r.Information)
	}
}

// params read like plain data — order, nesting, identity, JSON — and
// cannot be changed: writes are ignored in sloppy mode and throw in strict
// mode (or from array methods), as on a frozen object.
func TestParamsReadOnlyView(t *testing.T) {
	state := vm.InitialState{Params: map[string]any{"ports": []any{22, 80.5}, "deep": map[string]any{"s": "x", "n": nil, "t": true}}}
	rs := runspace(t, `(x, p) => {
		let threw = 0;
		for (const f of [() => p.ports.push(1), () => { p.ports[0] = 99 }, () => { p.deep.s = "changed" },
				() => { delete p.deep.t }, () => { p.added = 1 }]) {
			try { f() } catch (e) { threw++ }
		}
		return [JSON.stringify(p), Object.keys(p).join(","), p.deep === p.deep, Array.isArray(p.ports), p.ports.length,
			p.ports.map((v) => v * 2).join(","), "added" in p, typeof p.deep.n, threw > 0];
	}`, state)
	r := rs.Invoke(context.Background(), 1)
	want := `["{\"deep\":{\"n\":null,\"s\":\"x\",\"t\":true},\"ports\":[22,80.5]}","deep,ports",true,true,2,"44,161",false,"object",true]`
	if outputs(r) != want {
		t.Fatalf("got  %s\nwant %s (%+v)", outputs(r), want, r.Error)
	}
}

// Raw JSON that does not parse is InvalidInput, and the function is not
// called.
func TestInvalidRawJSON(t *testing.T) {
	rs := runspace(t, `(x) => { emit("called"); return x }`, vm.InitialState{})
	r := rs.Invoke(context.Background(), json.RawMessage(`{"a": 1`))
	if r.Status != vm.InvalidInput || !strings.HasPrefix(r.Error.Message, "invalid JSON: ") || len(r.Output) != 0 {
		t.Fatalf("%s %+v %s", r.Status, r.Error, outputs(r))
	}
	if !rs.Usable() {
		t.Error("bad input must not retire the runspace")
	}
}
