package vm

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// newTestRunspace makes a runspace of a trivial script.
func newTestRunspace(t testing.TB, state InitialState) *Runspace {
	t.Helper()
	s, err := Compile("t.js", t.TempDir(), `(x) => x`)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFactory(s, state)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.NewRunspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runCase runs one natives_cases.js case in rt, which has the harness.
func runCase(t *testing.T, rt *goja.Runtime, harness, expr string) string {
	t.Helper()
	if _, err := rt.RunString(harness); err != nil {
		t.Fatalf("harness: %v", err)
	}
	v, err := rt.RunString("run(() => (" + expr + "))")
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v.String()
}

// TestNativesMatchEngine runs every case of testdata/natives_cases.js in a
// plain goja runtime and in a runspace, and wants the same results, the
// same errors and the same calls into the script.
func TestNativesMatchEngine(t *testing.T) {
	harness := readTestdata(t, "natives_harness.js")
	s, err := Compile("t.js", t.TempDir(), `(x) => x`)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFactory(s, InitialState{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, line := range strings.Split(readTestdata(t, "natives_cases.js"), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		n++
		t.Run(strconv.Itoa(i+1), func(t *testing.T) {
			want := runCase(t, goja.New(), harness, line)
			r, err := f.NewRunspace(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := runCase(t, r.rt, harness, line); got != want {
				t.Errorf("%s\n got: %s\nwant: %s", line, got, want)
			}
		})
	}
	if n < 100 {
		t.Fatalf("only %d cases", n)
	}
}

// depthCase is an expression run with D set to the depth limit, and the
// start of what it must give.
type depthCase struct{ name, expr, want string }

func runDepthCases(t *testing.T, r *Runspace, cases []depthCase) {
	t.Helper()
	if _, err := r.rt.RunString(readTestdata(t, "depth.js")); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := r.rt.RunString("var D = " + strconv.Itoa(r.nat.limit) + ";" + c.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.String(); !strings.HasPrefix(got, c.want) || c.want == "" && got != "" {
				t.Errorf("%s = %q, want %q", c.expr, got, c.want)
			}
		})
	}
}

// TestJSONDepthLimit: the runspace's JSON.parse, JSON.stringify and join
// accept values nested exactly MaxJSONDepth deep and throw a catchable
// error naming the limit one level deeper, or a hundred thousand or three
// million levels deeper, where the engine's own would overflow the Go
// stack or run for seconds.
func TestJSONDepthLimit(t *testing.T) {
	limit := strconv.Itoa(MaxJSONDepth)
	runDepthCases(t, newTestRunspace(t, InitialState{}), []depthCase{
		{"parse", `JSON.parse(nestedText(D)).length`, "1"},
		{"parse/deeper", `thrown(() => JSON.parse(nestedText(D + 1)))`, "SyntaxError: JSON.parse: arrays and objects nested more than " + limit + " levels deep"},
		{"parse/3M", `thrown(() => JSON.parse("[".repeat(3e6)))`, "SyntaxError: JSON.parse: arrays and objects nested more than " + limit},
		// A lone surrogate makes rsh's decoder hand the text to the
		// engine's parser, after the depth check.
		{"parse/engine", `JSON.parse('["\\ud800",' + nestedText(D - 1) + ']')[1].length`, "1"},
		{"parse/engine/deeper", `thrown(() => JSON.parse('["\\ud800",' + nestedText(D) + ']'))`, "SyntaxError: JSON.parse: arrays and objects"},
		{"parse/objects", `thrown(() => JSON.parse('{"a":'.repeat(D + 1)))`, "SyntaxError: JSON.parse: arrays and objects"},
		{"parse/reviver", `typeof JSON.parse(nestedText(D), (k, v) => v)`, "object"},
		{"stringify", `JSON.stringify(nestedArray(D)).length`, strconv.Itoa(2 * MaxJSONDepth)},
		{"stringify/deeper", `thrown(() => JSON.stringify(nestedArray(D + 1)))`, "RangeError: JSON.stringify: arrays and objects nested more than " + limit + " levels deep"},
		{"join", `String(nestedArray(D)) + nestedArray(D).join() + nestedArray(D).toLocaleString()`, ""},
		{"join/deeper", `thrown(() => String(nestedArray(D + 1)))`, "RangeError: Array.prototype.join: arrays nested more than " + limit + " levels deep"},
		{"join/100k", `thrown(() => nestedArray(1e5).join())`, "RangeError: Array.prototype.join"},
	})
}

// TestJSONDepthLimitPaths: every way into the engine's recursion is held
// to the limit, shown with a low limit so that the test stays quick.
func TestJSONDepthLimitPaths(t *testing.T) {
	r := newTestRunspace(t, InitialState{})
	r.nat.limit = 64
	runDepthCases(t, r, []depthCase{
		{"reviver/graft", `JSON.parse('{"a": 1, "b": 2}', function (k, v) { if (k === "a") this.b = nestedArray(D - 1); return v }).b.length`, "1"},
		{"reviver/graft/deeper", `thrown(() => JSON.parse('{"a": 1, "b": 2}', function (k, v) { if (k === "a") this.b = nestedArray(D); return v }))`, "RangeError: JSON.parse reviver: arrays and objects nested more than 64 levels deep"},
		{"objects", `JSON.stringify(nestedObject(D)).length`, strconv.Itoa(6*63 + 2)},
		{"objects/deeper", `thrown(() => JSON.stringify(nestedObject(D + 1)))`, "RangeError: JSON.stringify: arrays and objects nested more than 64"},
		{"space", `JSON.stringify(nestedArray(D), null, 1).length > 0`, "true"},
		{"space/deeper", `thrown(() => JSON.stringify(nestedArray(D + 1), null, 1))`, "RangeError: JSON.stringify"},
		{"replacer", `JSON.stringify(nestedArray(D), (k, v) => v).length`, strconv.Itoa(2 * 64)},
		{"replacer/deeper", `thrown(() => JSON.stringify(nestedArray(D + 1), (k, v) => v))`, "RangeError: JSON.stringify"},
		{"replacer/grows", `thrown(() => JSON.stringify([], (k, v) => k === "" ? nestedArray(D + 1) : v))`, "RangeError: JSON.stringify"},
		{"list", `JSON.stringify(nestedObject(D), ["a"]).length`, strconv.Itoa(6*63 + 2)},
		{"list/deeper", `thrown(() => JSON.stringify(nestedObject(D + 1), ["a"]))`, "RangeError: JSON.stringify"},
		{"toJSON", `JSON.stringify({a: {toJSON() { return nestedArray(D - 1) }}}).length`, strconv.Itoa(2*63 + 6)},
		{"toJSON/deeper", `thrown(() => JSON.stringify({a: {toJSON() { return nestedArray(D) }}}))`, "RangeError: JSON.stringify"},
		// Boxed primitives, functions and raw JSON are not containers.
		{"leaves", `JSON.stringify([nestedArray(D - 1).concat(new Number(1), () => 1, JSON.rawJSON("2"), Object(1n + 0n).toString())]).length > 0`, "true"},
		{"toLocaleString/deeper", `thrown(() => nestedArray(D + 1).toLocaleString())`, "RangeError: Array.prototype.toLocaleString"},
		{"template/deeper", "thrown(() => `${nestedArray(D + 1)}`)", "RangeError: Array.prototype.join"},
		{"nested calls", `thrown(() => JSON.stringify(nestedArray(D - 2), (k, v) => (JSON.stringify(nestedArray(D)), v)))`, "none"},
	})
}

// TestJSONTooDeep: the depth scan counts brackets outside strings only,
// and stops at a closing bracket with nothing open.
func TestJSONTooDeep(t *testing.T) {
	deep := strings.Repeat("[", MaxJSONDepth+1)
	for _, c := range []struct {
		text string
		want bool
	}{
		{strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth), false},
		{deep, true},
		{strings.Repeat(`{"a":`, MaxJSONDepth+1), true},
		{`"` + deep + `"`, false},
		{`["\"` + deep + `"]`, false},
		{`["\\"` + deep, true},
		{`[1]]` + deep, false},
		{`[1] ` + deep, true},
		{``, false},
	} {
		if got := JSONTooDeep([]byte(c.text)); got != c.want {
			t.Errorf("JSONTooDeep(%.20q...) = %v, want %v", c.text, got, c.want)
		}
	}
}

// TestStringifyStopsWhenInterrupted: rsh's replacer notices the item's
// interrupt, which the engine would only see after the whole value.
func TestStringifyStopsWhenInterrupted(t *testing.T) {
	r := newTestRunspace(t, InitialState{})
	v, err := r.rt.RunString(`[[1], {a: [2]}]`)
	if err != nil {
		t.Fatal(err)
	}
	r.fired.Store(true)
	defer r.fired.Store(false)
	if _, err := r.stringify(v, goja.Undefined(), goja.Undefined(), "output value"); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err = %v, want interrupted", err)
	}
}

// TestDeepOutput: an output value (returned or emitted) nested deeper than
// the limit makes its item an Exception naming the limit, and the runspace
// goes on; one nested exactly to the limit is written.
func TestDeepOutput(t *testing.T) {
	r := newTestRunspace(t, InitialState{})
	if _, err := r.rt.RunString(readTestdata(t, "depth.js")); err != nil {
		t.Fatal(err)
	}
	call := func(src string) *Result {
		t.Helper()
		v, err := r.rt.RunString(src)
		if err != nil {
			t.Fatal(err)
		}
		r.fn, _ = goja.AssertFunction(v)
		return r.Invoke(context.Background(), nil)
	}
	// The brief's case, at full size.
	res := call(`() => { let a = []; for (let i = 0; i < 1e5; i++) a = [a]; return a }`)
	if res.Status != Exception || !strings.Contains(res.Error.Message, "output value: arrays and objects nested more than "+strconv.Itoa(MaxJSONDepth)) {
		t.Fatalf("status %s, error %+v; want an Exception naming the limit", res.Status, res.Error)
	}
	if !r.Usable() {
		t.Fatal("the runspace is not usable after a too-deep output")
	}
	// A limit above the fast encoder's own depth (maxEncodeDepth), past
	// which values go to the engine's JSON.stringify.
	r.nat.limit = 100
	res = call(`() => nestedArray(100)`)
	if res.Status != Success || string(res.Output[0]) != strings.Repeat("[", 100)+strings.Repeat("]", 100) {
		t.Fatalf("status %s, output %s, error %+v; want the 100-deep array", res.Status, res.Output, res.Error)
	}
	for _, src := range []string{`() => nestedArray(101)`, `() => { emit(1, nestedObject(101)); return 2 }`, `async () => nestedArray(101)`} {
		res = call(src)
		if res.Status != Exception || !strings.HasPrefix(res.Error.Message, "RangeError: output value: arrays and objects nested more than 100") {
			t.Errorf("%s: status %s, error %+v; want an Exception naming the limit", src, res.Status, res.Error)
		}
	}
}

// TestDeepInput: an item, a variable or params nested deeper than the
// limit are refused, with a message naming it, before any recursive
// decoder sees them.
func TestDeepInput(t *testing.T) {
	r := newTestRunspace(t, InitialState{})
	deep := json.RawMessage(strings.Repeat("[", 3_000_000))
	limit := "nested more than " + strconv.Itoa(MaxJSONDepth) + " levels deep"
	for _, item := range []json.RawMessage{
		deep,
		// rsh's decoder gives up on the lone surrogate first, and the
		// depth is checked before the engine's parser is used.
		json.RawMessage(`["\ud800",` + string(deep)),
	} {
		res := r.Invoke(context.Background(), item)
		if res.Status != InvalidInput || !strings.Contains(res.Error.Message, limit) {
			t.Errorf("status %s, error %+v; want InvalidInput naming the limit", res.Status, res.Error)
		}
	}
	exact := json.RawMessage(strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth))
	if res := r.Invoke(context.Background(), exact); res.Status != Success {
		t.Errorf("an item nested exactly to the limit: status %s, error %+v", res.Status, res.Error)
	}

	s, err := Compile("t.js", t.TempDir(), `(x) => x`)
	if err != nil {
		t.Fatal(err)
	}
	// Go values, which json.Marshal writes at any depth.
	var nested any = []any{}
	for range MaxJSONDepth {
		nested = []any{nested}
	}
	f, err := NewFactory(s, InitialState{Variables: []Variable{{Name: "v", Value: nested}}})
	if err == nil {
		_, err = f.NewRunspace(context.Background())
	}
	if err == nil || !strings.Contains(err.Error(), limit) {
		t.Errorf("a too-deep variable: err = %v, want one naming the limit", err)
	}
	if _, err := NewFactory(s, InitialState{Params: map[string]any{"p": nested}}); err == nil || !strings.Contains(err.Error(), limit) {
		t.Errorf("too-deep params: err = %v, want one naming the limit", err)
	}
}

// FuzzNatives compares the runspace's JSON.parse and JSON.stringify (with
// and without a replacer, a property list, indentation and a reviver) with
// the engine's on any text.
func FuzzNatives(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c"}]}`, `"\u00e9"`, `-0.5e-3`, `[[[[]]]]`, `{"__proto__":1}`, `{"a":{"a":[{"b":1,"0":2}]},"é":3}`,
		`[1,2,3]`, `"\ud800"`, `1e400`, `{"a":1,"a":2}`, `[1,]`, ` 12 `, `nul`, `{"0":{"a":null},"b":[true,false]}`} {
		f.Add(s)
	}
	fuzz := readTestdata(f, "natives_fuzz.js")
	ref := goja.New()
	if _, err := ref.RunString(fuzz); err != nil {
		f.Fatal(err)
	}
	r := newTestRunspace(f, InitialState{})
	if _, err := r.rt.RunString(fuzz); err != nil {
		f.Fatal(err)
	}
	check := func(rt *goja.Runtime, s string) string {
		fn, _ := goja.AssertFunction(rt.Get("check"))
		v, err := fn(goja.Undefined(), rt.ToValue(s))
		if err != nil {
			f.Fatal(err)
		}
		return v.String()
	}
	f.Fuzz(func(t *testing.T, s string) {
		if jsonTooDeep(s) {
			return
		}
		if got, want := check(r.rt, s), check(ref, s); got != want {
			t.Fatalf("%q:\n got: %s\nwant: %s", s, got, want)
		}
	})
}
