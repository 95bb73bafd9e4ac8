package vm

import (
	"strconv"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// sameAsJSONParse checks that decodeJSON either falls back or builds a
// value that JSON.stringify renders exactly as it renders JSON.parse's,
// both without kept names and with names (which the calls share, so that
// names read before are taken from it).
func sameAsJSONParse(t *testing.T, rt *goja.Runtime, names *jsonNames, input string) {
	t.Helper()
	sameAsJSONParseWith(t, rt, nil, input)
	sameAsJSONParseWith(t, rt, names, input)
	sameAsJSONParseWith(t, rt, names, input)
}

func sameAsJSONParseWith(t *testing.T, rt *goja.Runtime, names *jsonNames, input string) {
	t.Helper()
	parse, _ := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("parse"))
	stringify, _ := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("stringify"))
	got, err := decodeJSON(rt, names, []byte(input))
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
	var names jsonNames
	for _, in := range []string{
		`0`, `-0`, `1`, `-12`, `123456789012345`, `1234567890123456789`, `1.5`, `-1.5e3`, `1E+2`, `1e400`, `-1e400`,
		`"x"`, `""`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\u4e2d"`, `"\ud83d\ude00"`, `"é中😀"`, `"\ud800"`, `"\udc00x"`,
		`true`, `false`, `null`, `[]`, `{}`, ` [1, "a", {"b": [null]}] `, `{"a":1,"a":2}`, `{"__proto__": {"x": 1}}`,
		`{"b":1,"a":2,"10":3,"2":4}`, `[1,]`, `{"a":1,}`, `01`, `1.`, `.5`, `-`, `+1`, `tru`, `nul`, `"\x"`, "\"\x01\"",
		`{"a" 1}`, `[1 2]`, `1 2`, `"unterminated`, `{`, `[`, "\"\xff\"",
	} {
		sameAsJSONParse(t, rt, &names, in)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c"}]}`, `"\u00e9"`, `-0.5e-3`, `[[[[]]]]`} {
		f.Add(s)
	}
	rt := goja.New()
	var names jsonNames
	f.Fuzz(func(t *testing.T, s string) {
		sameAsJSONParse(t, rt, &names, s)
	})
}

// TestJSONNamesKept checks that the decoder keeps the names it reads, up to
// the length and count bounds, and takes a kept name from the cache.
func TestJSONNamesKept(t *testing.T) {
	rt := goja.New()
	var names jsonNames
	long := strings.Repeat("k", maxJSONNameLen+1)
	if _, err := decodeJSON(rt, &names, []byte(`{"a":1,"b\"":{"c":2},"`+long+`":3}`)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", `b"`, "c"} {
		if _, ok := names.m[k]; !ok {
			t.Errorf("name %q not kept", k)
		}
	}
	if _, ok := names.m[long]; ok {
		t.Errorf("a name longer than %d bytes was kept", maxJSONNameLen)
	}
	// A kept name is the one returned: decoding again reads it from the
	// cache, not from the text.
	names.m["abcd"] = "abcd"
	v, err := decodeJSON(rt, &names, []byte(`{"abcd":1}`))
	if err != nil || v.(*goja.Object).Get("abcd").ToInteger() != 1 {
		t.Fatalf("decoded %v, %v", v, err)
	}
	if n := testing.AllocsPerRun(10, func() { _, _ = decodeJSON(rt, &names, []byte(`{"abcd":1}`)) }); n >= testAllocsUncached(rt) {
		t.Errorf("a kept name still costs an allocation: %v allocations, %v without the cache", n, testAllocsUncached(rt))
	}
	for i := 0; len(names.m) < maxJSONNames; i++ {
		names.add(strconv.Itoa(i))
	}
	names.add("one too many")
	if len(names.m) != maxJSONNames {
		t.Errorf("%d names kept, want at most %d", len(names.m), maxJSONNames)
	}
}

func testAllocsUncached(rt *goja.Runtime) float64 {
	return testing.AllocsPerRun(10, func() { _, _ = decodeJSON(rt, nil, []byte(`{"abcd":1}`)) })
}
