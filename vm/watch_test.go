package vm_test

import (
	"context"
	"testing"

	"github.com/runspaces/rsh/vm"
)

// A context cancelled after its item ended must not interrupt the next
// item, run under a new context: the watch of the old one fires on its own
// goroutine, possibly just as the new item starts.
func TestCancelledContextDoesNotReachNextItem(t *testing.T) {
	rs := runspace(t, `(n) => { let s = 0; for (let i = 0; i < 200; i++) s += i; return n }`, vm.InitialState{})
	for i := range 1000 {
		ctx, cancel := context.WithCancel(context.Background())
		res := rs.Invoke(ctx, float64(i))
		cancel()
		if res.Status != vm.Success {
			t.Fatalf("item %d: %s %+v", i, res.Status, res.Error)
		}
	}
}
