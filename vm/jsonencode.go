package vm

import (
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// maxEncodeDepth bounds how deep the fast encoder goes before leaving the
// value to JSON.stringify (which also reports cycles properly).
const maxEncodeDepth = 64

// jsonEncoder writes plain data — primitives, arrays and objects made by
// literals or JSON — as JSON.stringify would, without its generic
// machinery. Anything else (a Date, a class instance, a toJSON method, a
// Map, a typed array...) makes it give up with errFallback, and the caller
// hands the whole value to JSON.stringify.
type jsonEncoder struct {
	rt                      *goja.Runtime
	objectProto, arrayProto *goja.Object // looked up on the first object
}

func (e *jsonEncoder) protos() {
	proto := func(name string) *goja.Object {
		return e.rt.Get(name).ToObject(e.rt).Get("prototype").ToObject(e.rt)
	}
	e.objectProto, e.arrayProto = proto("Object"), proto("Array")
}

func (e *jsonEncoder) append(b []byte, v goja.Value, depth int) ([]byte, error) {
	o, isObj := v.(*goja.Object)
	if !isObj {
		return appendPrimitive(b, v)
	}
	if depth > maxEncodeDepth {
		return nil, errFallback
	}
	if e.objectProto == nil {
		e.protos()
	}
	switch o.Prototype() {
	case e.objectProto:
		if o.ClassName() != "Object" || hasToJSON(o) {
			return nil, errFallback
		}
		b = append(b, '{')
		first := true
		for _, k := range o.Keys() {
			val := o.Get(k)
			if skipInObject(val) {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = e.append(b, val, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case e.arrayProto:
		if o.ClassName() != "Array" || hasToJSON(o) {
			return nil, errFallback
		}
		n := o.Get("length").ToInteger()
		b = append(b, '[')
		for i := int64(0); i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			val := o.Get(strconv.FormatInt(i, 10))
			if skipInObject(val) {
				b = append(b, "null"...)
				continue
			}
			var err error
			if b, err = e.append(b, val, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	return nil, errFallback
}

// hasToJSON reports whether o has a toJSON method (its own or inherited),
// which JSON.stringify would call.
func hasToJSON(o *goja.Object) bool {
	v := o.Get("toJSON")
	return v != nil && !goja.IsUndefined(v)
}

// skipInObject reports values JSON.stringify leaves out of objects (and
// writes as null in arrays): undefined, functions and symbols.
func skipInObject(v goja.Value) bool {
	if v == nil || goja.IsUndefined(v) {
		return true
	}
	if o, ok := v.(*goja.Object); ok {
		_, isFn := goja.AssertFunction(o)
		return isFn
	}
	_, isSym := v.(*goja.Symbol)
	return isSym
}

var (
	typeInt64   = reflect.TypeOf(int64(0))
	typeFloat64 = reflect.TypeOf(float64(0))
	typeString  = reflect.TypeOf("")
	typeBool    = reflect.TypeOf(false)
	typeBigInt  = reflect.TypeOf((*big.Int)(nil))
)

// appendPrimitive writes a non-object value: null, booleans, numbers
// (NaN and infinities as null) and strings.
func appendPrimitive(b []byte, v goja.Value) ([]byte, error) {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return append(b, "null"...), nil
	}
	// Switch on the export type rather than Export(), which boxes.
	switch v.ExportType() {
	case typeInt64:
		return strconv.AppendInt(b, v.ToInteger(), 10), nil
	case typeFloat64:
		x := v.ToFloat()
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(b, "null"...), nil
		}
		return append(b, v.String()...), nil
	case typeString:
		x := v.String()
		if strings.ContainsRune(x, utf8.RuneError) {
			// Maybe a lone surrogate, which the conversion replaced:
			// JSON.stringify writes it as an escape.
			return nil, errFallback
		}
		return appendJSONString(b, x), nil
	case typeBool:
		return strconv.AppendBool(b, v.ToBoolean()), nil
	case typeBigInt:
		return nil, errBigInt
	}
	return append(b, "null"...), nil
}
