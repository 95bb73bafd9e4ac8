package vm

import (
	"testing"

	"github.com/dop251/goja"
)

// sameAsJSONParse checks that decodeJSON either falls back or builds a
// value that JSON.stringify renders exactly as it renders JSON.parse's.
func sameAsJSONParse(t *testing.T, rt *goja.Runtime, input string) {
	t.Helper()
	parse, _ := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("parse"))
	stringify, _ := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("stringify"))
	got, err := decodeJSON(rt, []byte(input))
	want, werr := parse(goja.Undefined(), rt.ToValue(input))
	if err != nil {
		if err != errFallback {
			t.Fatalf("%q: error %v, want errFallback", input, err)
		}
		return
	}
	if werr != nil {
		t.Fatalf("%q: decoded, but JSON.parse fails: %v", input, werr)
	}
	gs, _ := stringify(goja.Undefined(), got)
	ws, _ := stringify(goja.Undefined(), want)
	if gs.String() != ws.String() {
		t.Fatalf("%q: got %s, JSON.parse gives %s", input, gs, ws)
	}
	// Own keys, including __proto__, must match too.
	if o, ok := got.(*goja.Object); ok {
		wo := want.(*goja.Object)
		if len(o.Keys()) != len(wo.Keys()) {
			t.Fatalf("%q: keys %v, want %v", input, o.Keys(), wo.Keys())
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	rt := goja.New()
	for _, in := range []string{
		`0`, `-0`, `1`, `-12`, `123456789012345`, `1234567890123456789`, `1.5`, `-1.5e3`, `1E+2`, `1e400`, `-1e400`,
		`"x"`, `""`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\u4e2d"`, `"\ud83d\ude00"`, `"é中😀"`, `"\ud800"`, `"\udc00x"`,
		`true`, `false`, `null`, `[]`, `{}`, ` [1, "a", {"b": [null]}] `, `{"a":1,"a":2}`, `{"__proto__": {"x": 1}}`,
		`{"b":1,"a":2,"10":3,"2":4}`, `[1,]`, `{"a":1,}`, `01`, `1.`, `.5`, `-`, `+1`, `tru`, `nul`, `"\x"`, "\"\x01\"",
		`{"a" 1}`, `[1 2]`, `1 2`, `"unterminated`, `{`, `[`, "\"\xff\"",
	} {
		sameAsJSONParse(t, rt, in)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c"}]}`, `"\u00e9"`, `-0.5e-3`, `[[[[]]]]`} {
		f.Add(s)
	}
	rt := goja.New()
	f.Fuzz(func(t *testing.T, s string) {
		sameAsJSONParse(t, rt, s)
	})
}
