package vm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runspaces/rsh/vm"
)

// TestHostileThrownValues: whatever a script throws or returns, describing
// it cannot crash the process or hang past the timeout, even when reading
// its message runs code that throws or loops.
func TestHostileThrownValues(t *testing.T) {
	for _, c := range []struct {
		src    string
		status vm.Status
		msg    string
	}{
		{`() => { throw {get message() { throw 1 }} }`, vm.Exception, "uncaught exception (describing the thrown value threw as well)"},
		{`() => { throw {toString() { throw 1 }} }`, vm.Exception, "uncaught exception"},
		{`() => { throw new Proxy({}, {getPrototypeOf() { throw 1 }, get() { throw 2 }}) }`, vm.Exception, "uncaught exception"},
		{`() => Promise.reject({toString() { throw 1 }})`, vm.Exception, "uncaught exception"},
		{`() => { throw {message: "m", name: "N", get stack() { throw 3 }} }`, vm.Exception, "uncaught exception"},
		{`() => { throw {message: "m", name: "N"} }`, vm.Exception, "N: m"},
		{`() => ({get a() { throw new Error("boom") }})`, vm.Exception, "Error: boom"},
		{`() => ({toJSON() { throw new TypeError("nope") }})`, vm.Exception, "TypeError: nope"},
		{`() => { throw {toString() { for (;;); }} }`, vm.Timeout, "timed out"},
	} {
		rs := runspace(t, c.src, vm.InitialState{Timeout: 200 * time.Millisecond})
		res := rs.Invoke(context.Background(), 1)
		if res.Status != c.status || res.Error == nil || !strings.HasPrefix(res.Error.Message, c.msg) {
			t.Errorf("%s: status %s, error %+v; want %s %q", c.src, res.Status, res.Error, c.status, c.msg)
		}
	}
	// A value that could not be written is the item's exception; the
	// runspace itself is fine.
	rs := runspace(t, `(x) => x === 1 ? {get a() { throw new Error("boom") }} : x`, vm.InitialState{})
	rs.Invoke(context.Background(), 1)
	if !rs.Usable() {
		t.Error("the runspace is not usable after a getter threw while its value was written")
	}
	if res := rs.Invoke(context.Background(), 2); res.Status != vm.Success || outputs(res) != "2" {
		t.Errorf("next item: status %s, output %s", res.Status, outputs(res))
	}
}

// TestHostileInitThrow: the same holds for what a script's init throws.
func TestHostileInitThrow(t *testing.T) {
	f := factory(t, "throw {toString() { throw 1 }}", vm.InitialState{})
	_, err := f.NewRunspace(context.Background())
	var ie *vm.InitError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "uncaught exception") || !strings.Contains(err.Error(), "test.js:1:1") {
		t.Fatalf("err = %v, want an *InitError describing the exception at test.js:1:1", err)
	}
}
