package vm

import (
	"context"
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
