package vm_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/require"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/vm"
)

// runHost runs src over one item with the host modules and functions of
// st and returns the result.
func runHost(t *testing.T, src string, item any, st vm.InitialState) *vm.Result {
	t.Helper()
	script, err := vm.Compile("host.js", "", src)
	if err != nil {
		t.Fatal(err)
	}
	return scriptRunspace(t, script, st).Invoke(context.Background(), item)
}

// kv is a host module like a program would write: a key-value store the
// host owns, one instance per runspace over shared data.
func kv(data map[string]string) vm.HostModule {
	return vm.HostModule{Name: "kv", Require: func(env *builtins.Env) require.ModuleLoader {
		return func(rt *goja.Runtime, module *goja.Object) {
			exports := module.Get("exports").(*goja.Object)
			exports.Set("get", func(key string) goja.Value {
				if v, ok := data[key]; ok {
					return rt.ToValue(v)
				}
				return goja.Null()
			})
		}
	}}
}

func TestHostModule(t *testing.T) {
	st := vm.InitialState{Modules: []vm.HostModule{kv(map[string]string{"a": "apple"})}}
	res := runHost(t, `(k) => require("kv").get(k)`, "a", st)
	if res.Status != vm.Success || string(res.Output[0]) != `"apple"` {
		t.Fatalf("%s %s %+v", res.Status, res.Output, res.Error)
	}
	// Imports bind it as a global too.
	st.Imports = []string{"store=kv"}
	res = runHost(t, `(k) => store.get(k)`, "a", st)
	if res.Status != vm.Success || string(res.Output[0]) != `"apple"` {
		t.Fatalf("import: %s %s %+v", res.Status, res.Output, res.Error)
	}
}

func TestHostModuleNeeds(t *testing.T) {
	m := kv(nil)
	m.Needs = []string{"net"}
	st := vm.InitialState{Modules: []vm.HostModule{m}}
	res := runHost(t, `() => require("kv")`, nil, st)
	if res.Status != vm.Exception || !strings.Contains(res.Error.Message, "PermissionDenied") {
		t.Fatalf("without net: %s %+v", res.Status, res.Error)
	}
	st.Permissions.Net.Allow = []string{"127.0.0.1"}
	if res := runHost(t, `() => typeof require("kv").get`, nil, st); res.Status != vm.Success {
		t.Fatalf("with net: %s %+v", res.Status, res.Error)
	}
}

func TestHostValidation(t *testing.T) {
	script, _ := vm.Compile("x.js", "", `(x) => x`)
	f := func(ctx context.Context, args []any) (any, error) { return nil, nil }
	for _, st := range []vm.InitialState{
		{Modules: []vm.HostModule{{Name: "fs", Require: kv(nil).Require}}},
		{Modules: []vm.HostModule{kv(nil), kv(nil)}},
		{Modules: []vm.HostModule{{Name: "x"}}},
		{Modules: []vm.HostModule{{Name: "x", Require: kv(nil).Require, Needs: []string{"disk"}}}},
		{Functions: []vm.HostFunction{{Name: "require", Func: f}}},
		{Functions: []vm.HostFunction{{Name: "not ok", Func: f}}},
		{Functions: []vm.HostFunction{{Name: "x"}}},
		{Variables: []vm.Variable{{Name: "x", Value: 1}}, Functions: []vm.HostFunction{{Name: "x", Func: f}}},
	} {
		if _, err := vm.NewFactory(script, st); err == nil {
			t.Errorf("%+v: accepted", st)
		}
	}
}

func TestHostFunctionConversions(t *testing.T) {
	var got []any
	echo := func(ctx context.Context, args []any) (any, error) {
		got = args
		return args[0], nil
	}
	st := vm.InitialState{Functions: []vm.HostFunction{{Name: "echo", Func: echo}}}
	res := runHost(t, `() => { echo(null, undefined, true, "s", 3, 2.5, [1, "a"], {k: {n: 1}}, new Date(86400000), new Uint8Array([1, 2]).buffer); return 1 }`, nil, st)
	if res.Status != vm.Success {
		t.Fatalf("%s %+v", res.Status, res.Error)
	}
	want := []any{nil, nil, true, "s", int64(3), 2.5, []any{int64(1), "a"}, map[string]any{"k": map[string]any{"n": int64(1)}}}
	for i, w := range want {
		gj, _ := json.Marshal(got[i])
		wj, _ := json.Marshal(w)
		if string(gj) != string(wj) || (i == 4 && got[i] != int64(3)) {
			t.Errorf("argument %d: %#v, want %#v", i, got[i], w)
		}
	}
	if tm, ok := got[8].(time.Time); !ok || !tm.Equal(time.Unix(86400, 0)) {
		t.Errorf("Date: %#v", got[8])
	}
	if b, ok := got[9].([]byte); !ok || string(b) != "\x01\x02" {
		t.Errorf("ArrayBuffer: %#v", got[9])
	}

	type user struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
		skip int
	}
	for _, c := range []struct {
		ret  any
		expr string
		want string
	}{
		{nil, `r === null`, "true"},
		{true, `r === true`, "true"},
		{"hi", `r`, `"hi"`},
		{int64(7), `r + 1`, "8"},
		{uint8(7), `r`, "7"},
		{1.5, `r`, "1.5"},
		{[]int{1, 2}, `r.length`, "2"},
		{map[string]int{"a": 1}, `r.a`, "1"},
		{user{ID: 1, Name: "ann"}, `r.id + r.name + Object.keys(r).length`, `"1ann2"`},
		{[]byte("ab"), `new Uint8Array(r)[1]`, "98"},
		{time.Unix(86400, 0), `r.getTime()`, "86400000"},
	} {
		ret := c.ret
		st := vm.InitialState{Functions: []vm.HostFunction{{Name: "get", Func: func(context.Context, []any) (any, error) { return ret, nil }}}}
		res := runHost(t, `() => { const r = get(); return `+c.expr+` }`, nil, st)
		if res.Status != vm.Success || string(res.Output[0]) != c.want {
			t.Errorf("%#v: %s %s %+v, want %s", c.ret, res.Status, res.Output, res.Error, c.want)
		}
	}
}

func TestHostFunctionErrorsAndPanics(t *testing.T) {
	st := vm.InitialState{Functions: []vm.HostFunction{
		{Name: "fail", Func: func(context.Context, []any) (any, error) { return nil, errors.New("no such user") }},
		{Name: "boom", Func: func(context.Context, []any) (any, error) { panic("host bug") }},
	}}
	res := runHost(t, `() => { try { fail() } catch (e) { return "caught: " + e.message } }`, nil, st)
	if res.Status != vm.Success || !strings.Contains(string(res.Output[0]), "caught: no such user") {
		t.Fatalf("error: %s %s %+v", res.Status, res.Output, res.Error)
	}
	res = runHost(t, `() => boom()`, nil, st)
	if res.Status != vm.Exception || !strings.Contains(res.Error.Message, "host bug") {
		t.Fatalf("panic: %s %+v", res.Status, res.Error)
	}
}

// A host function that blocks honours the item's context: the item's
// timeout ends it.
func TestHostFunctionContext(t *testing.T) {
	st := vm.InitialState{Timeout: 100 * time.Millisecond, Functions: []vm.HostFunction{{Name: "wait", Func: func(ctx context.Context, _ []any) (any, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Minute):
			return "too late", nil
		}
	}}}}
	res := runHost(t, `() => wait()`, nil, st)
	if res.Status != vm.Timeout {
		t.Fatalf("%s %s %+v", res.Status, res.Output, res.Error)
	}
}
