package vm

import (
	"errors"
	"strconv"
)

// MaxJSONDepth is how deeply arrays and objects may nest in any JSON that
// rsh reads or writes: items, variables, output values, and what scripts
// pass to JSON.parse and JSON.stringify. Deeper input is refused (an item
// is InvalidInput, JSON.parse throws a SyntaxError) and deeper values are
// not written (JSON.stringify throws a RangeError, an output value makes
// its item an Exception). The same bound applies to arrays nested inside
// arrays that Array.prototype.join and toLocaleString walk (String(array)
// and the like call join).
//
// Why a limit: goja's JSON.parse, JSON.stringify and join recurse once per
// level on the Go stack with no bound of their own, so a few million
// levels overflow it, which kills the whole process (Go cannot recover from
// that); and JSON.stringify's cycle check makes it quadratic in the depth,
// in native code that --timeout cannot interrupt. Why 10000: it is
// encoding/json's own limit, which the command's input reader uses to tell
// JSON lines, so the two agree; it is far deeper than real data, and at
// that depth the engine needs a few megabytes of stack and a fraction of a
// second.
const MaxJSONDepth = 10000

// errJSONTooDeep is JSON text, or a value to write as JSON, that nests
// deeper than MaxJSONDepth.
var errJSONTooDeep = errors.New(tooDeepMessage(MaxJSONDepth))

func tooDeepMessage(limit int) string {
	return "arrays and objects nested more than " + strconv.Itoa(limit) + " levels deep (rsh's JSON depth limit)"
}

// JSONTooDeep reports whether the JSON text data nests arrays and objects
// more than MaxJSONDepth levels deep. It takes linear time and no stack. It
// counts brackets outside strings only, so for valid JSON it is exact, and
// for invalid JSON it bounds the depth a parser reaches before it finds the
// error. The command uses it to class such lines as invalid input.
func JSONTooDeep(data []byte) bool { return jsonTooDeep(data) }

func jsonTooDeep[T string | []byte](data T) bool {
	depth := 0
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped character cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > MaxJSONDepth {
				return true
			}
		case ']', '}':
			// A closing bracket with nothing open is an error a
			// parser stops at, so what follows cannot be reached.
			if depth == 0 {
				return false
			}
			depth--
		}
	}
	return false
}
