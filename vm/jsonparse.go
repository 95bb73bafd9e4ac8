package vm

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// decodeJSON builds a JavaScript value of rt straight from JSON text, about
// four times faster than goja's JSON.parse (which goes through
// encoding/json's token stream). It returns errJSONTooDeep for arrays and
// objects nested deeper than MaxJSONDepth, and errFallback for anything
// else it does not handle exactly like JSON.parse — invalid JSON (so the
// error message is JSON.parse's), lone surrogates — and the caller then
// uses JSON.parse, after checking the depth (JSONTooDeep): the fallback
// may be found before a too-deep part is. Property names are taken from
// names (nil: none kept) and added to it.
func decodeJSON(rt *goja.Runtime, names *jsonNames, data []byte) (goja.Value, error) {
	d := jsonDecoder[[]byte]{rt: rt, data: data, names: names}
	return d.decode()
}

// decodeJSONString is decodeJSON for a JavaScript string's text. The
// strings it makes are copies: substrings would keep the whole text alive
// as long as any of them.
func decodeJSONString(rt *goja.Runtime, names *jsonNames, data string) (goja.Value, error) {
	d := jsonDecoder[string]{rt: rt, data: data, clone: true, names: names}
	return d.decode()
}

func (d *jsonDecoder[T]) decode() (goja.Value, error) {
	d.skipSpace()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return nil, errFallback
	}
	return v, nil
}

// errFallback asks the caller to use JSON.parse instead.
var errFallback = errors.New("vm: json: use JSON.parse")

type jsonDecoder[T string | []byte] struct {
	rt    *goja.Runtime
	data  T
	clone bool // see decodeJSONString
	names *jsonNames
	pos   int
	buf   []byte // scratch for strings with escapes
	vals  []any  // scratch stack for array elements
}

func (d *jsonDecoder[T]) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// value decodes the value at d.pos, which depth arrays and objects enclose.
func (d *jsonDecoder[T]) value(depth int) (goja.Value, error) {
	if d.pos >= len(d.data) {
		return nil, errFallback
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		if depth >= MaxJSONDepth {
			return nil, errJSONTooDeep
		}
		return d.object(depth)
	case c == '[':
		if depth >= MaxJSONDepth {
			return nil, errJSONTooDeep
		}
		return d.array(depth)
	case c == '"':
		s, err := d.string()
		if err != nil {
			return nil, err
		}
		return d.rt.ToValue(s), nil
	case c == 't':
		return d.literal("true", goja.Value(d.rt.ToValue(true)))
	case c == 'f':
		return d.literal("false", goja.Value(d.rt.ToValue(false)))
	case c == 'n':
		return d.literal("null", goja.Null())
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return nil, errFallback
}

func (d *jsonDecoder[T]) literal(word string, v goja.Value) (goja.Value, error) {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		return nil, errFallback
	}
	d.pos += len(word)
	return v, nil
}

func (d *jsonDecoder[T]) object(depth int) (goja.Value, error) {
	d.pos++ // {
	obj := d.rt.NewObject()
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return obj, nil
	}
	for {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, errFallback
		}
		key, err := d.name()
		if err != nil {
			return nil, err
		}
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, errFallback
		}
		d.pos++
		d.skipSpace()
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		// JSON.parse makes own properties: Set would change the
		// prototype for "__proto__", and call a setter the script put
		// on Object.prototype.
		if err := obj.DefineDataProperty(key, v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE); err != nil {
			return nil, errFallback
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, errFallback
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.skipSpace()
		case '}':
			d.pos++
			return obj, nil
		default:
			return nil, errFallback
		}
	}
}

func (d *jsonDecoder[T]) array(depth int) (goja.Value, error) {
	d.pos++ // [
	base := len(d.vals)
	defer func() { d.vals = d.vals[:base] }()
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return d.rt.NewArray(), nil
	}
	for {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		d.vals = append(d.vals, v)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, errFallback
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.skipSpace()
		case ']':
			d.pos++
			// NewArray copies the elements: the scratch stack can be
			// passed as it is.
			return d.rt.NewArray(d.vals[base:]...), nil
		default:
			return nil, errFallback
		}
	}
}

// copyString returns data[start:end] as a string of its own.
func (d *jsonDecoder[T]) copyString(start, end int) string {
	s := string(d.data[start:end]) // a copy of a []byte, a substring of a string
	if d.clone {
		s = strings.Clone(s)
	}
	return s
}

// name decodes a property name at d.pos (which holds the opening quote),
// taken from d.names when it holds it.
func (d *jsonDecoder[T]) name() (string, error) {
	if d.names == nil {
		return d.string()
	}
	start := d.pos + 1
	for i := start; i < len(d.data); i++ {
		c := d.data[i]
		if c == '"' {
			if s, ok := d.names.m[string(d.data[start:i])]; ok {
				d.pos = i + 1
				return s, nil
			}
			break
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	s, err := d.string()
	if err == nil {
		d.names.add(s)
	}
	return s, err
}

// string decodes a JSON string at d.pos (which holds the opening quote).
func (d *jsonDecoder[T]) string() (string, error) {
	d.pos++
	start := d.pos
	// Fast path: no escapes.
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c == '"' {
			s := d.copyString(start, d.pos)
			d.pos++
			if !utf8.ValidString(s) {
				return "", errFallback
			}
			return s, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", errFallback
		}
		d.pos++
	}
	d.buf = append(d.buf[:0], d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			if !utf8.Valid(d.buf) {
				return "", errFallback
			}
			return string(d.buf), nil
		case c < 0x20:
			return "", errFallback
		case c != '\\':
			d.buf = append(d.buf, c)
			d.pos++
			continue
		}
		if d.pos+1 >= len(d.data) {
			return "", errFallback
		}
		e := d.data[d.pos+1]
		d.pos += 2
		switch e {
		case '"', '\\', '/':
			d.buf = append(d.buf, e)
		case 'b':
			d.buf = append(d.buf, '\b')
		case 'f':
			d.buf = append(d.buf, '\f')
		case 'n':
			d.buf = append(d.buf, '\n')
		case 'r':
			d.buf = append(d.buf, '\r')
		case 't':
			d.buf = append(d.buf, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", errFallback
			}
			if utf16.IsSurrogate(r) {
				// Only a valid pair maps to a Go string; a lone
				// surrogate needs JSON.parse's UTF-16 string.
				if d.pos+1 >= len(d.data) || d.data[d.pos] != '\\' || d.data[d.pos+1] != 'u' {
					return "", errFallback
				}
				d.pos += 2
				r2, ok := d.hex4()
				if !ok {
					return "", errFallback
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", errFallback
				}
			}
			d.buf = utf8.AppendRune(d.buf, r)
		default:
			return "", errFallback
		}
	}
	return "", errFallback
}

func (d *jsonDecoder[T]) hex4() (rune, bool) {
	if len(d.data)-d.pos < 4 {
		return 0, false
	}
	var r rune
	for i := d.pos; i < d.pos+4; i++ {
		c := d.data[i]
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	d.pos += 4
	return r, true
}

// number decodes a JSON number, checking the grammar strictly.
func (d *jsonDecoder[T]) number() (goja.Value, error) {
	start := d.pos
	if d.data[d.pos] == '-' {
		d.pos++
	}
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	intStart := d.pos
	n := digits()
	if n == 0 || n > 1 && d.data[intStart] == '0' {
		return nil, errFallback
	}
	isInt := true
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		isInt = false
		d.pos++
		if digits() == 0 {
			return nil, errFallback
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		isInt = false
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return nil, errFallback
		}
	}
	text := d.data[start:d.pos]
	// Integers that a float64 holds exactly stay integers, as JSON.parse
	// makes them; "-0" is a float so its sign survives.
	if isInt && n <= 15 && !(n == 1 && d.data[intStart] == '0' && text[0] == '-') {
		i, err := strconv.ParseInt(string(text), 10, 64)
		if err == nil {
			return d.rt.ToValue(i), nil
		}
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return nil, errFallback // out of range: JSON.parse decides
	}
	return d.rt.ToValue(f), nil
}
