package vm

import (
	"encoding/json"
	"fmt"
)

// Values decodes every output value of r into a Go value, as encoding/json
// decodes into an any: numbers become float64, strings string, booleans
// bool, null nil, arrays []any and objects map[string]any. An output that
// is not JSON (none made by this module is) fails with an error naming its
// index. Use Decode for another type, such as int64 for integers that a
// float64 cannot hold exactly, or json.Number.
func (r *Result) Values() ([]any, error) {
	return Decode[any](r)
}

// Decode decodes every output value of r into a T with encoding/json, in
// order: a struct's json tags apply, and a value that does not fit T fails
// with an error naming its index (counting from 0) and wrapping
// encoding/json's. Numbers decode into any numeric T that holds them
// (3 into an int, 3.5 only into a float); into an any they become float64
// (see Values). A result with no output gives an empty slice.
func Decode[T any](r *Result) ([]T, error) {
	out := make([]T, len(r.Output))
	for i, raw := range r.Output {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, fmt.Errorf("output value %d: %w", i, err)
		}
	}
	return out, nil
}
