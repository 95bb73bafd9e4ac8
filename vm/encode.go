package vm

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// errBigInt is returned for a BigInt, which JSON cannot represent.
var errBigInt = errors.New("a BigInt value cannot be serialised as JSON")

// outArenaChunk is the size of the blocks small output values are encoded
// into, so that a number or a short string does not cost an allocation.
const outArenaChunk = 16 << 10

// encodeOutput returns the JSON text of an output value, as JSON.stringify
// would write it, with undefined, functions and symbols as null. Plain data
// takes a fast path (jsonEncoder), written into the runspace's output arena
// when it fits; anything else goes to the engine's JSON.stringify, held to
// MaxJSONDepth (a deeper value is an error).
func (r *Runspace) encodeOutput(v goja.Value) (json.RawMessage, error) {
	if cap(r.outArena)-len(r.outArena) < 64 {
		r.outArena = make([]byte, 0, outArenaChunk)
	}
	free := r.outArena[len(r.outArena):]
	b, err := r.encoder.append(free, v, 0)
	switch {
	case err == errBigInt:
		return nil, err
	case err != nil:
		s, err := r.stringify(v, goja.Undefined(), goja.Undefined(), "output value")
		if err != nil {
			return nil, err
		}
		if goja.IsUndefined(s) {
			return json.RawMessage("null"), nil
		}
		return json.RawMessage(s.String()), nil
	case len(b) > 0 && &b[0] == &free[:1][0]:
		// Still in the arena: claim the bytes and cap the slice so an
		// append by the consumer cannot reach the next value.
		r.outArena = r.outArena[:len(r.outArena)+len(b)]
		return b[:len(b):len(b)], nil
	}
	return b, nil
}

// JSONString returns s as a JSON string, written the way JSON.stringify
// writes it (no HTML escaping).
func JSONString(s string) json.RawMessage {
	return appendJSONString(make([]byte, 0, len(s)+2), s)
}

// appendJSONString appends s as a JSON string the way JSON.stringify writes
// it: only quotes, backslashes and control characters are escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// toJS converts an item or variable value into a fresh JavaScript value of
// this runspace: strings and numbers directly, anything else through JSON so
// that the result is a deep copy made of native JavaScript objects (never a
// wrapped Go map or slice shared with another runspace).
func (r *Runspace) toJS(v any) (goja.Value, error) {
	switch x := v.(type) {
	case nil:
		return goja.Null(), nil
	case string:
		return r.rt.ToValue(x), nil
	case float64, int, int64, int32, bool:
		return r.rt.ToValue(x), nil
	case json.RawMessage:
		return r.parseJSON(x)
	case []byte:
		return r.parseJSON(x)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return r.parseJSON(raw)
}

// parseJSON decodes JSON text into a value of this runspace, refusing text
// nested deeper than MaxJSONDepth (errJSONTooDeep).
func (r *Runspace) parseJSON(raw []byte) (goja.Value, error) {
	if isSmallJSONInt(raw) {
		n, _ := strconv.ParseInt(string(raw), 10, 64)
		return r.rt.ToValue(n), nil
	}
	v, err := decodeJSON(r.rt, &r.nat.names, raw)
	switch {
	case err == nil:
		return v, nil
	case err == errJSONTooDeep || jsonTooDeep(raw):
		return nil, errJSONTooDeep
	}
	return r.nat.parse(goja.Undefined(), r.rt.ToValue(string(raw)))
}

// isSmallJSONInt reports whether raw is a JSON integer literal that fits in
// 15 digits (exact as a float64), so it can skip JSON.parse. "-0" is left to
// JSON.parse, which keeps its sign.
func isSmallJSONInt(raw []byte) bool {
	d := raw
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 15 || (d[0] == '0' && len(raw) > 1) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
