package vm_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/runspaces/rsh/vm"
)

// point is an output object decoded by its json tags.
type point struct {
	X    int    `json:"x"`
	Y    int    `json:"y"`
	Name string `json:"label"`
}

// resultOf is a result whose output values are vals, as JSON.
func resultOf(vals ...string) *vm.Result {
	r := &vm.Result{}
	for _, v := range vals {
		r.Output = append(r.Output, json.RawMessage(v))
	}
	return r
}

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  []string
		want []any
	}{
		{"none", nil, []any{}},
		{"numbers", []string{"3", "-1.5", "1e3"}, []any{3.0, -1.5, 1000.0}},
		{"strings", []string{`"a"`, `""`, `"é\n"`}, []any{"a", "", "é\n"}},
		{"bools and null", []string{"true", "false", "null"}, []any{true, false, nil}},
		{"object", []string{`{"x":1,"s":"t"}`}, []any{map[string]any{"x": 1.0, "s": "t"}}},
		{"array", []string{`[1,"two",[3]]`}, []any{[]any{1.0, "two", []any{3.0}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resultOf(tc.out...).Values()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Values() = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestValuesNotJSON(t *testing.T) {
	_, err := resultOf("1", "{").Values()
	if err == nil || !strings.Contains(err.Error(), "output value 1:") {
		t.Fatalf("err = %v, want one naming output value 1", err)
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  []string
		// decode decodes the outputs into the case's type; want is the
		// expected slice of that type.
		decode func(*vm.Result) (any, error)
		want   any
	}{
		{"ints", []string{"3", "-7", "9007199254740993"},
			func(r *vm.Result) (any, error) { return vm.Decode[int64](r) },
			[]int64{3, -7, 9007199254740993}},
		{"floats", []string{"0.5", "2"},
			func(r *vm.Result) (any, error) { return vm.Decode[float64](r) },
			[]float64{0.5, 2}},
		{"numbers", []string{"12345678901234567890", "1.25"},
			func(r *vm.Result) (any, error) { return vm.Decode[json.Number](r) },
			[]json.Number{"12345678901234567890", "1.25"}},
		{"strings", []string{`"a"`, `"b c"`},
			func(r *vm.Result) (any, error) { return vm.Decode[string](r) },
			[]string{"a", "b c"}},
		{"structs", []string{`{"x":1,"y":2,"label":"p"}`, `{"y":5,"extra":true}`},
			func(r *vm.Result) (any, error) { return vm.Decode[point](r) },
			[]point{{X: 1, Y: 2, Name: "p"}, {Y: 5}}},
		{"pointers to structs, null", []string{`{"x":4}`, "null"},
			func(r *vm.Result) (any, error) { return vm.Decode[*point](r) },
			[]*point{{X: 4}, nil}},
		{"arrays", []string{"[1,2]", "[]"},
			func(r *vm.Result) (any, error) { return vm.Decode[[]int](r) },
			[][]int{{1, 2}, {}}},
		{"maps", []string{`{"a":1}`},
			func(r *vm.Result) (any, error) { return vm.Decode[map[string]int](r) },
			[]map[string]int{{"a": 1}}},
		{"none", nil,
			func(r *vm.Result) (any, error) { return vm.Decode[int](r) },
			[]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.decode(resultOf(tc.out...))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Decode = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestDecodeMismatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		out    []string
		decode func(*vm.Result) error
		index  string
	}{
		{"string into int", []string{"1", "2", `"three"`},
			func(r *vm.Result) error { _, err := vm.Decode[int](r); return err }, "output value 2:"},
		{"fraction into int", []string{"1.5"},
			func(r *vm.Result) error { _, err := vm.Decode[int](r); return err }, "output value 0:"},
		{"array into struct", []string{`{"x":1}`, "[1]"},
			func(r *vm.Result) error { _, err := vm.Decode[point](r); return err }, "output value 1:"},
		{"wrong field type", []string{`{"x":"1"}`},
			func(r *vm.Result) error { _, err := vm.Decode[point](r); return err }, "output value 0:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.decode(resultOf(tc.out...))
			if err == nil || !strings.HasPrefix(err.Error(), tc.index) {
				t.Fatalf("err = %v, want one starting %q", err, tc.index)
			}
			var typeErr *json.UnmarshalTypeError
			if !errors.As(err, &typeErr) {
				t.Fatalf("err = %v (%T), want it to wrap a *json.UnmarshalTypeError", err, err)
			}
		})
	}
}

// TestDecodeRunspaceOutput decodes what a script emits and returns,
// through the runspace's own JSON encoding.
func TestDecodeRunspaceOutput(t *testing.T) {
	rs := runspace(t, `module.exports = (n) => { emit({x: n, y: n * 2, label: "p" + n}); return {x: -n} }`, vm.InitialState{})
	res := rs.Invoke(context.Background(), 3)
	if res.Status != vm.Success {
		t.Fatalf("status %s: %+v", res.Status, res.Error)
	}
	got, err := vm.Decode[point](res)
	if err != nil {
		t.Fatal(err)
	}
	want := []point{{X: 3, Y: 6, Name: "p3"}, {X: -3}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode = %+v, want %+v", got, want)
	}
}
