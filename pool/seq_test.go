package pool_test

import (
	"context"
	"iter"
	"testing"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// An item with a Seq keeps it, whatever came before it; items after it
// without one are numbered on from there, by their record counts. A caller
// that leaves items out (a resumed run) keeps the others' positions.
func TestItemSeq(t *testing.T) {
	p := newPool(t, `(x) => x`, vm.InitialState{}, pool.Options{Throttle: 3, KeepOrder: true})
	items := []pool.Item{
		{Value: "a", Seq: 5},
		{Value: "b"},
		{Value: "[1,2,3]", Count: 3, Seq: 10},
		{Value: "c"},
		{Value: "d", Seq: 20},
	}
	want := map[string]int64{"a": 5, "b": 6, "[1,2,3]": 10, "c": 13, "d": 20}
	var seq iter.Seq[pool.Item] = func(yield func(pool.Item) bool) {
		for _, it := range items {
			if !yield(it) {
				return
			}
		}
	}
	got := collect(p.Run(context.Background(), seq))
	if len(got) != len(items) {
		t.Fatalf("%d results for %d items", len(got), len(items))
	}
	for _, r := range got {
		var name string
		if len(r.Output) == 1 {
			name = string(r.Output[0][1 : len(r.Output[0])-1])
		}
		if r.Seq != want[name] {
			t.Errorf("item %s: seq %d, want %d", name, r.Seq, want[name])
		}
	}
}
