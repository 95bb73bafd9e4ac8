package vm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runspaces/rsh/vm"
)

// TestItemLimits: an item that crosses one of its limits ends as an
// Exception naming the limit, even if the script catches the error and
// goes on; an item that stays within them (other streams, cleared timers)
// is unaffected.
func TestItemLimits(t *testing.T) {
	state := vm.InitialState{
		MaxOutputValues: 3,
		MaxOutputBytes:  12,
		MaxMessages:     2,
		MaxTimers:       2,
		// Only for the test to fail rather than hang, if the item
		// could go on after the limit.
		Timeout: 10 * time.Second,
	}
	for _, c := range []struct {
		name, src string
		fail      string // the limit's field, or "" for Success
	}{
		{"values", `() => { for (let i = 0; i < 10; i++) emit(i) }`, "more than 3 output values (the limit is InitialState.MaxOutputValues)"},
		{"values/exact", `() => { emit(1, 2); return 3 }`, ""},
		{"values/return", `() => { emit(1, 2, 3); return 4 }`, "MaxOutputValues"},
		{"values/caught", `() => { for (;;) { try { emit(1) } catch (e) { writeWarning("caught") } } }`, "MaxOutputValues"},
		{"bytes", `() => "x".repeat(11)`, "more than 12 bytes of output (the limit is InitialState.MaxOutputBytes)"},
		{"bytes/exact", `() => { emit("1234"); return "1234" }`, ""},
		{"bytes/emit", `() => { emit("12345", "1234") }`, "MaxOutputBytes"},
		{"errors", `() => { writeError("a"); writeError("b"); writeError("c") }`, "more than 2 error messages (the limit is InitialState.MaxMessages)"},
		{"warnings", `() => { for (let i = 0; i < 3; i++) writeWarning("w") }`, "more than 2 warning messages"},
		{"verbose", `() => { writeVerbose("a"); console.debug("b"); console.debug("c") }`, "more than 2 verbose messages"},
		{"information", `() => { for (let i = 0; i < 3; i++) console.log(i) }`, "more than 2 information messages"},
		{"information/caught", `() => { for (;;) { try { console.log(1) } catch (e) { writeWarning("caught") } } }`, "more than 2 information messages"},
		{"progress", `() => { for (let i = 0; i < 3; i++) writeProgress(i, "p") }`, "more than 2 progress messages"},
		{"per stream", `() => { console.log(1); console.log(2); writeWarning(1); console.warn(2); writeVerbose(1); writeProgress(1); return 1 }`, ""},
		{"timers", `() => { for (let i = 0; i < 3; i++) setTimeout(() => {}, 1000) }`, "more than 2 pending timers (the limit is InitialState.MaxTimers)"},
		{"timers/interval", `() => { setInterval(() => {}, 1000); setImmediate(() => {}); setTimeout(() => {}) }`, "MaxTimers"},
		{"timers/cleared", `() => { for (let i = 0; i < 10; i++) clearTimeout(setTimeout(() => {}, 1000)) }`, ""},
		{"timers/fired", `async () => { for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 1)); return 1 }`, ""},
		{"timers/in a callback", `() => new Promise((resolve) => setTimeout(() => { setTimeout(resolve, 1); setTimeout(resolve, 1); setTimeout(resolve, 1) }, 1))`, "MaxTimers"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs := runspace(t, c.src, state)
			res := rs.Invoke(context.Background(), 1)
			if c.fail == "" {
				if res.Status != vm.Success {
					t.Fatalf("status %s, error %+v; want Success", res.Status, res.Error)
				}
				return
			}
			if res.Status != vm.Exception || !strings.Contains(res.Error.Message, c.fail) {
				t.Fatalf("status %s, error %+v; want an Exception with %q", res.Status, res.Error, c.fail)
			}
			for _, w := range res.Warnings {
				if w == "caught" {
					t.Fatalf("the script caught the limit's error and went on: %q", res.Warnings)
				}
			}
			if rs.Usable() {
				t.Error("the runspace is still used after an item was interrupted at a limit")
			}
		})
	}
}

// TestItemLimitsDefaults: zero means the documented default, which an
// item stays well within; a negative value means no limit.
func TestItemLimitsDefaults(t *testing.T) {
	rs := runspace(t, `(n) => { for (let i = 0; i < n; i++) console.log(i) }`, vm.InitialState{})
	if res := rs.Invoke(context.Background(), vm.DefaultMaxMessages); res.Status != vm.Success {
		t.Errorf("%d messages: status %s, error %+v", vm.DefaultMaxMessages, res.Status, res.Error)
	}
	if res := rs.Invoke(context.Background(), vm.DefaultMaxMessages+1); res.Status != vm.Exception || !strings.Contains(res.Error.Message, "MaxMessages") {
		t.Errorf("%d messages: status %s, error %+v; want the MaxMessages limit", vm.DefaultMaxMessages+1, res.Status, res.Error)
	}
	rs = runspace(t, `(n) => { for (let i = 0; i < n; i++) console.log(i) }`, vm.InitialState{MaxMessages: -1})
	if res := rs.Invoke(context.Background(), vm.DefaultMaxMessages+1); res.Status != vm.Success {
		t.Errorf("no limit: status %s, error %+v", res.Status, res.Error)
	}
}

// TestItemLimitsInInit: the script's init is held to the same limits.
func TestItemLimitsInInit(t *testing.T) {
	f := factory(t, "console.log(1); console.log(2); console.log(3); module.exports = (x) => x", vm.InitialState{MaxMessages: 2})
	_, err := f.NewRunspace(context.Background())
	var ie *vm.InitError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "more than 2 information messages") {
		t.Fatalf("err = %v, want an *InitError naming the limit", err)
	}
}
