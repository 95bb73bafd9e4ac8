package vm_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/runspaces/rsh/vm"
)

func newReducer(t *testing.T, src string, state vm.InitialState) *vm.Reducer {
	t.Helper()
	red, err := factory(t, src, state).NewReducer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if red != nil {
		t.Cleanup(red.Close)
	}
	return red
}

func result(seq int64, status vm.Status, output ...string) *vm.Result {
	r := &vm.Result{Seq: seq, Input: json.RawMessage("null"), Status: status}
	for _, o := range output {
		r.Output = append(r.Output, json.RawMessage(o))
	}
	if status != vm.Success && status != vm.Error {
		r.Error = &vm.ErrorInfo{Message: "boom"}
	}
	return r
}

// TestReducer checks that a reducer gets init's accumulator, every record
// in the order added (failed ones too), the params, and that its stream
// writes are passed on.
func TestReducer(t *testing.T) {
	src, err := os.ReadFile("testdata/reduce.js")
	if err != nil {
		t.Fatal(err)
	}
	red := newReducer(t, string(src), vm.InitialState{Params: map[string]any{"start": 100, "label": "x"}})
	if red == nil {
		t.Fatal("NewReducer = nil; want the script's reducer")
	}
	var said []string
	red.Messages = func(r *vm.Result) { said = append(said, r.Information...) }
	for _, r := range []*vm.Result{result(1, vm.Success, "2", "4"), result(2, vm.Exception), result(3, vm.Success, "6")} {
		if err := red.Add(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := red.Done(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"items":3,"failed":1,"sum":112,"label":"x"}`; string(got) != want {
		t.Errorf("Done = %s; want %s", got, want)
	}
	if len(said) != 1 || said[0] != "saw 2" {
		t.Errorf("messages = %q; want [saw 2]", said)
	}
}

// TestReducerDefaults checks that init and done may be left out (the
// accumulator starts undefined and is the value), that add returning
// undefined keeps the accumulator, and that an undefined value is nil.
func TestReducerDefaults(t *testing.T) {
	red := newReducer(t, `module.exports = (x) => x; module.exports.reduce = {add: (acc, r) => r.seq === 2 ? undefined : (acc || 0) + r.seq}`, vm.InitialState{})
	if got, err := red.Done(context.Background()); err != nil || got != nil {
		t.Errorf("Done with nothing added = %s, %v; want nil, nil", got, err)
	}
	for i := int64(1); i <= 3; i++ {
		if err := red.Add(context.Background(), result(i, vm.Success)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := red.Done(context.Background()); err != nil || string(got) != "4" {
		t.Errorf("Done = %s, %v; want 4", got, err)
	}
}

// TestReducerNone checks that a script without a reducer has none, the
// completion-value form included, and that one on a completion value is
// found.
func TestReducerNone(t *testing.T) {
	for _, src := range []string{`module.exports = (x) => x`, `(x) => x`} {
		if red := newReducer(t, src, vm.InitialState{}); red != nil {
			t.Errorf("%s: NewReducer = %v; want nil", src, red)
		}
	}
	if red := newReducer(t, `const f = (x) => x; f.reduce = {add() {}}; f`, vm.InitialState{}); red == nil {
		t.Error("a reducer on the completion value was not found")
	}
}

// TestReducerBad checks that a reduce property of the wrong shape is an
// init error naming what is wrong.
func TestReducerBad(t *testing.T) {
	for src, want := range map[string]string{
		`module.exports = (x) => x; module.exports.reduce = 3`:                   "reduce must be an object {init, add, done}, not number 3",
		`module.exports = (x) => x; module.exports.reduce = {}`:                  "reduce.add must be a function, but it is missing",
		`module.exports = (x) => x; module.exports.reduce = {add() {}, done: 1}`: "reduce.done must be a function, not number 1",
	} {
		_, err := factory(t, src, vm.InitialState{}).NewReducer(context.Background())
		var ie *vm.InitError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v; want an InitError containing %q", src, err, want)
		}
	}
}

// TestReducerThrows checks that what a reducer's function throws, and a
// call cut by the timeout, are errors naming the function.
func TestReducerThrows(t *testing.T) {
	red := newReducer(t, `module.exports = (x) => x; module.exports.reduce = {init() { return 0 }, add(acc, r) { if (r.seq === 2) throw new Error("bad seq"); return acc + 1 }}`, vm.InitialState{})
	if err := red.Add(context.Background(), result(1, vm.Success)); err != nil {
		t.Fatal(err)
	}
	err := red.Add(context.Background(), result(2, vm.Success))
	if err == nil || !strings.HasPrefix(err.Error(), "reduce.add: Error: bad seq (at test.js:1:") {
		t.Errorf("err = %v; want reduce.add: Error: bad seq (at test.js:1:...)", err)
	}
	red = newReducer(t, `module.exports = (x) => x; module.exports.reduce = {init() { for (;;); }, add() {}}`, vm.InitialState{Timeout: 50 * time.Millisecond})
	if err := red.Add(context.Background(), result(1, vm.Success)); err == nil || err.Error() != "reduce.init: timed out after 50ms" {
		t.Errorf("err = %v; want reduce.init: timed out after 50ms", err)
	}
	if err := red.Add(context.Background(), result(2, vm.Success)); err == nil || !strings.Contains(err.Error(), "not usable") {
		t.Errorf("after a timeout: err = %v; want the runspace not usable", err)
	}
}
