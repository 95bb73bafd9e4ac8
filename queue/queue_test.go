package queue_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/queue"
	"github.com/runspaces/rsh/vm"
)

// Putting the same source twice enqueues each item once.
func TestPutTwice(t *testing.T) {
	s := serve(t)
	c := connect(t, s.URL(), newLog(t))
	ctx := context.Background()
	first, err := c.Put(ctx, job, "numbers.txt", numbers(100))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Put(ctx, job, "numbers.txt", numbers(100))
	if err != nil {
		t.Fatal(err)
	}
	if first != (queue.PutStats{Items: 100}) || second != (queue.PutStats{Items: 100, Duplicates: 100}) {
		t.Errorf("puts: %+v then %+v; want 100 new, then 100 duplicates", first, second)
	}
	other, err := c.Put(ctx, job, "other.txt", numbers(10))
	if err != nil {
		t.Fatal(err)
	}
	if other.Duplicates != 0 {
		t.Errorf("another source: %+v, want no duplicates", other)
	}
	st, err := c.Stat(ctx, job, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Queued != 110 || st.Pending != 110 {
		t.Errorf("stat %+v, want 110 queued and pending", st)
	}
}

// A worker stores exactly one result per item and acknowledges every
// input, whatever the status (Exception and Timeout included); the records
// are those of `rsh run --out records`, with the queue position as seq.
func TestWorkAllDone(t *testing.T) {
	s := serve(t)
	c := connect(t, s.URL(), newLog(t))
	const n = 500
	put(t, c, n)
	w := work(t, c, queue.WorkOptions{Batch: 50})
	status := func(it pool.Item) vm.Status {
		switch v, _ := strconv.Atoi(string(it.Input)); {
		case v%7 == 0:
			return vm.Exception
		case v%11 == 0:
			return vm.Timeout
		}
		return vm.Success
	}
	runUntilDone(t, c, w, n, 1, status)
	recs := records(t, c)
	oneEach(t, recs, n)
	for in, rs := range recs {
		r := rs[0]
		var it pool.Item
		it.Input = json.RawMessage(in)
		if r.Status != status(it) {
			t.Errorf("item %s: status %s, want %s", in, r.Status, status(it))
		}
		if v, _ := strconv.Atoi(in); r.Seq != int64(v) {
			t.Errorf("item %s: seq %d, want its queue position %d", in, r.Seq, v)
		}
	}
	st, err := c.Stat(context.Background(), job, results, "")
	if err != nil {
		t.Fatal(err)
	}
	if st != (queue.Stats{Done: n}) {
		t.Errorf("stat %+v, want only %d done", st, n)
	}
}
