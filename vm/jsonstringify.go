package vm

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// stringifier is JSON.stringify(value) with no replacer and no
// indentation, written step for step after the engine's (goja's
// builtin_json.go: str, ja, jo), with rsh's depth bound and interrupt
// check, without going through the engine's JavaScript call or rsh's
// depth-tracking replacer. It reads each property once, in the engine's
// order, looks up and calls toJSON, unwraps boxed primitives and walks
// proxies with the same calls into the script, and throws the same errors
// (a cycle's and a BigInt's TypeError, whatever a getter, toJSON or trap
// throws), so it never has to hand a value back to the engine half way
// through: a getter that has run must not run again.
//
// The engine's own steps that the public API cannot take directly are
// taken through small JavaScript functions of rsh's (stringifyHelpers):
// reading a property whose name holds a lone surrogate (which a Go string
// cannot hold) and looking up a BigInt's toJSON with the BigInt as the
// receiver.
//
// Where it still differs, a script would have to go out of its way to see
// it (documented, and not worth a slower path): for such a lone-surrogate
// name on a proxy, the name is read with a for-in loop, whose trap calls
// are not those of the engine's key list; and a Go value wrapped by the
// engine (which rsh never gives scripts) is written like a JavaScript
// object.
type stringifier struct {
	r     *Runspace
	buf   []byte
	stack []*goja.Object // the objects being written, outermost first
	limit int
	what  string // named in the depth error
}

// stringifyHelpers are JavaScript functions that take the steps of
// JSON.stringify the Go API cannot. They are made from source on first
// use, so they use no global a script could have replaced: only syntax.
type stringifyHelpers struct {
	keyAt, get, toJSONOf goja.Callable
}

// helpersSource makes the helpers: keyAt(o, i) is o's i-th own enumerable
// string key as for-in lists it (own keys come first, in the engine's
// order), get(o, k) is o[k], toJSONOf(v) is v.toJSON with v itself (a
// primitive) as the receiver.
const helpersSource = `({
	keyAt: function (o, i) { var n = 0; for (var k in o) { if (n === i) return k; n++ } },
	get: function (o, k) { return o[k] },
	toJSONOf: function (v) { return v.toJSON }
})`

func (r *Runspace) stringifyHelpers() *stringifyHelpers {
	if r.nat.helpers != nil {
		return r.nat.helpers
	}
	v, err := r.rt.RunString(helpersSource)
	if err != nil {
		panic(err)
	}
	o := v.(*goja.Object)
	fn := func(name string) goja.Callable {
		f, _ := goja.AssertFunction(o.Get(name))
		return f
	}
	r.nat.helpers = &stringifyHelpers{keyAt: fn("keyAt"), get: fn("get"), toJSONOf: fn("toJSONOf")}
	return r.nat.helpers
}

// plainStringify reports whether JSON.stringify(value, replacer, space)
// is the plain form the stringifier writes: no replacer (anything but an
// object is ignored) and no indentation.
func plainStringify(replacer, space goja.Value) bool {
	if _, ok := replacer.(*goja.Object); ok {
		return false
	}
	return space == nil || goja.IsUndefined(space) || goja.IsNull(space)
}

// stringifyPlain is JSON.stringify(v) for the runspace: the text, or
// undefined. It panics with the script's exceptions.
func (r *Runspace) stringifyPlain(v goja.Value, what string) goja.Value {
	s := stringifier{r: r, buf: r.nat.sbuf[:0], stack: r.nat.sstack[:0], limit: r.nat.limit, what: what}
	ok := s.str(v, "", nil)
	var out goja.Value = goja.Undefined()
	if ok {
		out = r.rt.ToValue(string(s.buf))
	}
	if cap(s.buf) <= maxKeptBuffer {
		r.nat.sbuf = s.buf
	}
	if cap(s.stack) <= maxKeptStack {
		clear(s.stack[:cap(s.stack)])
		r.nat.sstack = s.stack[:0]
	}
	return out
}

// maxKeptBuffer is the largest output buffer a runspace keeps between
// JSON.stringify calls: ordinary values reuse it, a huge one is let go.
const maxKeptBuffer = 64 << 10

// str writes value, read under the name key (its JavaScript string when
// key cannot hold it, else nil and made when toJSON needs it), and reports
// whether anything was written (undefined, functions and symbols are
// not).
func (s *stringifier) str(value goja.Value, key string, keyValue goja.Value) bool {
	r := s.r
	if r.fired.Load() {
		panic(r.rt.NewGoError(errInterrupted))
	}
	if value == nil {
		return false
	}
	// toJSON, for objects and BigInts.
	switch o := value.(type) {
	case *goja.Object:
		if f, ok := goja.AssertFunction(o.Get("toJSON")); ok {
			value = r.must(f(o, s.keyValue(key, keyValue)))
		}
	default:
		if value.ExportType() == typeBigInt {
			if f, ok := goja.AssertFunction(r.must(r.stringifyHelpers().toJSONOf(goja.Undefined(), value))); ok {
				value = r.must(f(value, s.keyValue(key, keyValue)))
			}
		}
	}
	o, isObj := value.(*goja.Object)
	if isObj {
		// rsh's depth bound, where its replacer would check it: after
		// toJSON, before anything else.
		if len(s.stack) >= s.limit && writtenAsContainer(o) {
			panic(r.tooDeep("RangeError", s.what, s.limit))
		}
		value = s.unbox(o)
		o, isObj = value.(*goja.Object)
	}
	if !isObj {
		return s.primitive(value)
	}
	if o.ClassName() == "RawJSON" {
		s.buf = append(s.buf, o.Get("rawJSON").String()...)
		return true
	}
	for _, x := range s.stack {
		if x == o {
			panic(r.rt.NewTypeError("Converting circular structure to JSON"))
		}
	}
	if _, ok := goja.AssertFunction(o); ok {
		return false
	}
	s.stack = append(s.stack, o)
	if r.isArray(o) {
		s.array(o)
	} else {
		s.object(o)
	}
	s.stack[len(s.stack)-1] = nil
	s.stack = s.stack[:len(s.stack)-1]
	return true
}

// keyValue returns the JavaScript string of a property name.
func (s *stringifier) keyValue(key string, v goja.Value) goja.Value {
	if v != nil {
		return v
	}
	return s.r.rt.ToValue(key)
}

// unbox returns the primitive a boxed number, string, boolean, BigInt or
// symbol is written as, and any other object as it is.
func (s *stringifier) unbox(o *goja.Object) goja.Value {
	t := o.ExportType()
	if t == proxyType {
		return o
	}
	switch o.ClassName() {
	case "Number":
		return o.ToNumber()
	case "String":
		return o.ToString()
	case "Boolean":
		b, _ := o.Export().(bool)
		return s.r.rt.ToValue(b)
	case "Object":
		switch t {
		case typeBigInt:
			panic(s.r.rt.NewTypeError("Do not know how to serialize a BigInt"))
		case typeString: // a boxed symbol
			return goja.Undefined()
		}
	}
	return o
}

// primitive writes a value that is not an object.
func (s *stringifier) primitive(v goja.Value) bool {
	if goja.IsUndefined(v) {
		return false
	}
	if goja.IsNull(v) {
		s.buf = append(s.buf, "null"...)
		return true
	}
	if str, ok := v.(goja.String); ok {
		s.buf = appendJSValueString(s.buf, str)
		return true
	}
	if _, ok := v.(*goja.Symbol); ok {
		return false
	}
	if v.ExportType() == typeBigInt {
		panic(s.r.rt.NewTypeError("Do not know how to serialize a BigInt"))
	}
	b, err := appendPrimitive(s.buf, v)
	if err != nil {
		panic(s.r.rt.NewTypeError("Do not know how to serialize a BigInt"))
	}
	s.buf = b
	return true
}

func (s *stringifier) array(a *goja.Object) {
	n := toLength(a.Get("length"))
	s.buf = append(s.buf, '[')
	for i := int64(0); i < n; i++ {
		if i > 0 {
			s.buf = append(s.buf, ',')
		}
		k := strconv.FormatInt(i, 10)
		if !s.str(a.Get(k), k, nil) {
			s.buf = append(s.buf, "null"...)
		}
	}
	s.buf = append(s.buf, ']')
}

func (s *stringifier) object(o *goja.Object) {
	keys := o.Keys()
	s.buf = append(s.buf, '{')
	mark := len(s.buf)
	first := true
	for i, k := range keys {
		var key, val goja.Value
		off := len(s.buf)
		if !first {
			s.buf = append(s.buf, ',')
		}
		if strings.ContainsRune(k, utf8.RuneError) && o.ExportType() != proxyType {
			// Maybe a lone surrogate that the Go string replaced: read
			// the real name.
			h := s.r.stringifyHelpers()
			key = s.r.must(h.keyAt(goja.Undefined(), o, s.r.rt.ToValue(i)))
			val = s.r.must(h.get(goja.Undefined(), o, key))
			s.buf = appendJSValueString(s.buf, key.(goja.String))
		} else {
			val = o.Get(k)
			s.buf = appendJSONString(s.buf, k)
		}
		s.buf = append(s.buf, ':')
		if s.str(val, k, key) {
			first = false
		} else {
			s.buf = s.buf[:off]
		}
	}
	if first {
		s.buf = s.buf[:mark]
	}
	s.buf = append(s.buf, '}')
}

// appendJSValueString writes a JavaScript string as JSON.stringify does,
// lone surrogates as escapes.
func appendJSValueString(b []byte, str goja.String) []byte {
	x := str.String()
	if !strings.ContainsRune(x, utf8.RuneError) {
		return appendJSONString(b, x)
	}
	// The conversion may have replaced lone surrogates: go through the
	// UTF-16 units.
	const hex = "0123456789abcdef"
	var u []uint16
	for i, n := 0, str.Length(); i < n; i++ {
		u = append(u, str.CharAt(i))
	}
	b = append(b, '"')
	for i := 0; i < len(u); i++ {
		c := rune(u[i])
		if utf16.IsSurrogate(c) {
			if c < 0xdc00 && i+1 < len(u) && u[i+1] >= 0xdc00 && u[i+1] <= 0xdfff {
				b = utf8.AppendRune(b, utf16.DecodeRune(c, rune(u[i+1])))
				i++
				continue
			}
			b = append(b, '\\', 'u', hex[c>>12], hex[c>>8&0xf], hex[c>>4&0xf], hex[c&0xf])
			continue
		}
		b = appendUnquoted(b, string(c))
	}
	return append(b, '"')
}

// appendUnquoted appends s as the inside of a JSON string.
func appendUnquoted(b []byte, s string) []byte {
	n := len(b)
	b = appendJSONString(b, s)
	copy(b[n:], b[n+1:len(b)-1])
	return b[:len(b)-2]
}
