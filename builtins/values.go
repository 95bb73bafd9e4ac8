package builtins

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/dop251/goja"
)

// Uint8Array returns a new JavaScript Uint8Array of rt holding b.
func Uint8Array(rt *goja.Runtime, b []byte) goja.Value {
	o, err := rt.New(rt.Get("Uint8Array"), rt.ToValue(rt.NewArrayBuffer(b)))
	if err != nil {
		panic(err)
	}
	return o
}

// IsNumber reports whether v is a JavaScript number.
func IsNumber(v goja.Value) bool {
	if v == nil {
		return false
	}
	k := v.ExportType()
	return k != nil && (k.Kind() == reflect.Int64 || k.Kind() == reflect.Float64)
}

// Bytes converts a string (as UTF-8), ArrayBuffer, typed array or
// DataView to bytes. Views yield only their own window of the buffer.
func Bytes(rt *goja.Runtime, v goja.Value) ([]byte, error) {
	switch x := v.Export().(type) {
	case string:
		return []byte(x), nil
	case goja.ArrayBuffer:
		return x.Bytes(), nil
	}
	if o, ok := v.(*goja.Object); ok && isView(rt, o) {
		buf, ok := o.Get("buffer").Export().(goja.ArrayBuffer)
		if !ok {
			return nil, errors.New("data: view without an ArrayBuffer")
		}
		off, n := o.Get("byteOffset").ToInteger(), o.Get("byteLength").ToInteger()
		b := buf.Bytes()
		if off < 0 || n < 0 || off+n > int64(len(b)) {
			return nil, errors.New("data: view out of its buffer's bounds")
		}
		return b[off : off+n], nil
	}
	return nil, fmt.Errorf("data must be a string, ArrayBuffer, typed array or DataView, not %s", TypeName(v))
}

// isView reports ArrayBuffer.isView(o): o is a typed array or a DataView.
func isView(rt *goja.Runtime, o *goja.Object) bool {
	ab := rt.Get("ArrayBuffer")
	if ab == nil {
		return false
	}
	f, ok := goja.AssertFunction(ab.ToObject(rt).Get("isView"))
	if !ok {
		return false
	}
	r, err := f(ab, o)
	return err == nil && r.ToBoolean()
}

// TypeName names v's JavaScript type for error messages.
func TypeName(v goja.Value) string {
	switch {
	case v == nil || goja.IsUndefined(v):
		return "undefined"
	case goja.IsNull(v):
		return "null"
	}
	if o, ok := v.(*goja.Object); ok {
		if c, ok := o.Get("constructor").(*goja.Object); ok {
			if n := c.Get("name"); n != nil && n.String() != "" {
				return n.String()
			}
		}
		return "object"
	}
	switch v.ExportType().Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int64, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	}
	return v.ExportType().String()
}
