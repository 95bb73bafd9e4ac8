package vm

import (
	"context"
	"os"
	"testing"

	"github.com/dop251/goja"
)

// BenchmarkNativeJSON compares the runspace's bounded JSON.parse and
// JSON.stringify with the engine's on the json workload's object.
// stringify-tracked is the runspace's JSON.stringify through the engine's
// with rsh's depth-tracking replacer (what every call took before the
// plain form got its own stringifier): an empty indentation string selects
// it and writes the same text.
func BenchmarkNativeJSON(b *testing.B) {
	s, err := Compile("b.js", "", `(x) => x`)
	if err != nil {
		b.Fatal(err)
	}
	f, err := NewFactory(s, InitialState{})
	if err != nil {
		b.Fatal(err)
	}
	r, err := f.NewRunspace(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	json := r.rt.Get("JSON").ToObject(r.rt)
	parse, _ := goja.AssertFunction(json.Get("parse"))
	stringify, _ := goja.AssertFunction(json.Get("stringify"))
	text := r.rt.ToValue(benchObject)
	v, _ := parse(goja.Undefined(), text)
	for _, c := range []struct {
		name string
		f    goja.Callable
		args []goja.Value
	}{
		{"parse", parse, []goja.Value{text}}, {"engine-parse", r.nat.parse, []goja.Value{text}},
		{"stringify", stringify, []goja.Value{v}}, {"engine-stringify", r.nat.stringify, []goja.Value{v}},
		{"stringify-tracked", stringify, []goja.Value{v, goja.Undefined(), r.rt.ToValue("")}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.f(goja.Undefined(), c.args...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJSONHeavy runs a script that calls JSON.parse and
// JSON.stringify ten times each per item (testdata/json_heavy.js), with
// the runspace's JSON functions ("rsh"), with its JSON.stringify going
// through the engine's and rsh's depth-tracking replacer as every call did
// before the stringifier ("tracked"), and with the engine's own functions
// ("engine"), in one run.
func BenchmarkJSONHeavy(b *testing.B) {
	src, err := os.ReadFile("testdata/json_heavy.js")
	if err != nil {
		b.Fatal(err)
	}
	s, err := Compile("json_heavy.js", "", string(src))
	if err != nil {
		b.Fatal(err)
	}
	f, err := NewFactory(s, InitialState{})
	if err != nil {
		b.Fatal(err)
	}
	item := map[string]any{"payload": benchObject}
	for _, variant := range []string{"rsh", "tracked", "engine"} {
		b.Run(variant, func(b *testing.B) {
			r, err := f.NewRunspace(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			json := r.rt.Get("JSON").ToObject(r.rt)
			switch variant {
			case "tracked":
				r.defineNative(json, "stringify", 3, func(call goja.FunctionCall) goja.Value {
					return r.must(r.stringifyTracked(call.Argument(0), call.Argument(1), call.Argument(2), "JSON.stringify"))
				})
			case "engine":
				r.defineNative(json, "parse", 2, func(call goja.FunctionCall) goja.Value {
					return r.must(r.nat.parse(call.This, call.Arguments...))
				})
				r.defineNative(json, "stringify", 3, func(call goja.FunctionCall) goja.Value {
					return r.must(r.nat.stringify(call.This, call.Arguments...))
				})
			}
			ctx := context.Background()
			want := r.Invoke(ctx, item)
			if want.Status != Success {
				b.Fatalf("status %s: %+v", want.Status, want.Error)
			}
			b.ReportAllocs()
			for b.Loop() {
				r.Invoke(ctx, item)
			}
		})
	}
}
