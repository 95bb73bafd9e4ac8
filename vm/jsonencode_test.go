package vm

import (
	"testing"

	"github.com/dop251/goja"
)

// sameAsStringify checks that the fast encoder either gives up or writes
// exactly what JSON.stringify writes.
func sameAsStringify(t *testing.T, rt *goja.Runtime, v goja.Value, what string) {
	t.Helper()
	stringify, _ := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("stringify"))
	enc := jsonEncoder{rt: rt}
	got, err := enc.append(nil, v, 0)
	if err != nil {
		return
	}
	want, werr := stringify(goja.Undefined(), v)
	if werr != nil {
		t.Fatalf("%s: encoded %s, but JSON.stringify fails: %v", what, got, werr)
	}
	if goja.IsUndefined(want) {
		if string(got) != "null" {
			t.Fatalf("%s: got %s, JSON.stringify gives undefined", what, got)
		}
		return
	}
	if string(got) != want.String() {
		t.Fatalf("%s: got %s, want %s", what, got, want.String())
	}
}

func TestJSONEncoder(t *testing.T) {
	rt := goja.New()
	for _, src := range []string{
		`({b: 1, a: [1, "x", null, true, undefined, () => 1], c: undefined, d: () => 1, e: {f: NaN, g: -0, h: 1e21, i: 0.1}})`,
		`({"10": 1, "2": 2, x: 3})`, `[]`, `({})`, `"a\u2028\u0001\"\\"`, `[[[]], {}]`,
		`({s: Symbol("x"), arr: [Symbol("y")]})`, `({d: new Date(0)})`, `new Date(0)`, `({toJSON() { return 1 }})`,
		`({m: new Map([[1, 2]])})`, `(() => { const a = [1, 2]; a.extra = 3; return a })()`, `[ , 1]`,
		`(() => { class P { constructor() { this.x = 1 } } return new P() })()`, `Object.create(null)`,
		`({get g() { return 5 }})`, `(() => { const o = Object.defineProperty({}, "hidden", {value: 1}); o.v = 2; return o })()`,
		`new Uint8Array([1, 2])`, `({n: new Number(3), s: new String("s"), b: new Boolean(false)})`,
		`(() => { const o = {}; o.self = o; return o })()`, `({big: 10n})`, `"\ud800"`,
	} {
		v, err := rt.RunString(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		sameAsStringify(t, rt, v, src)
	}
}

func FuzzJSONEncoder(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c"}]}`, `"\u00e9"`, `-0.5e-3`, `[[[[]]]]`, `{"__proto__":1}`} {
		f.Add(s)
	}
	rt := goja.New()
	parse, _ := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("parse"))
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parse(goja.Undefined(), rt.ToValue(s))
		if err != nil {
			return
		}
		sameAsStringify(t, rt, v, s)
	})
}

// benchObject is the ~200-byte object of the json benchmark workload.
const benchObject = `{"id":12345,"name":"user12345","email":"user12345@example.com","active":false,"score":45.5,"tags":["a","b","c"],"address":{"city":"Springfield","zip":"12345"},"note":"xxxxxxxxxxxxxxxxxxxx"}`

// BenchmarkJSONRoundTrip is the engine-side floor of the json workload:
// build the object in goja from JSON and write it back, nothing else.
func BenchmarkJSONRoundTrip(b *testing.B) {
	rt := goja.New()
	enc := jsonEncoder{rt: rt}
	data := []byte(benchObject)
	var buf []byte
	var names jsonNames
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeJSON(rt, &names, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	v, _ := decodeJSON(rt, nil, data)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = enc.append(buf[:0], v, 0)
		}
	})
	parse, _ := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("parse"))
	stringify, _ := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("stringify"))
	b.Run("JSON.parse", func(b *testing.B) {
		s := rt.ToValue(benchObject)
		for b.Loop() {
			parse(goja.Undefined(), s)
		}
	})
	b.Run("JSON.stringify", func(b *testing.B) {
		for b.Loop() {
			stringify(goja.Undefined(), v)
		}
	})
}
