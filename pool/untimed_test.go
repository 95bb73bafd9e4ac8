package pool_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// Untimed runs read no clock: results carry no StartedAt or Duration,
// Metrics counts them (retries too) without a duration sample, and
// everything else (values, statuses, order) is as in a timed run.
func TestUntimed(t *testing.T) {
	const n = 200
	src := `(x) => { if (x % 10 == 0) throw new Error("ten"); return x * 2 }`
	items := func(yield func(pool.Item) bool) {
		for _, x := range numbers(n) {
			if !yield(pool.Item{Value: x}) {
				return
			}
		}
		yield(pool.Item{Err: errors.New("bad line")})
	}
	run := func(untimed bool) ([]*vm.Result, pool.Metrics) {
		p := newPool(t, src, vm.InitialState{}, pool.Options{Throttle: 2, KeepOrder: true, Retries: 1, Untimed: untimed})
		rs := collect(p.Run(context.Background(), items))
		return rs, p.Metrics()
	}
	timed, tm := run(false)
	untimed, um := run(true)
	if len(untimed) != len(timed) {
		t.Fatalf("%d results untimed, %d timed", len(untimed), len(timed))
	}
	for i, u := range untimed {
		tr := timed[i]
		if u.Seq != tr.Seq || u.Status != tr.Status || u.Attempts != tr.Attempts || len(u.Output) != len(tr.Output) ||
			(len(u.Output) == 1 && string(u.Output[0]) != string(tr.Output[0])) || (u.Error == nil) != (tr.Error == nil) {
			t.Fatalf("result %d untimed: %+v, timed: %+v", i, u, tr)
		}
		if u.Status == vm.InvalidInput {
			continue // never ran: stamped when it was rejected
		}
		if !u.StartedAt.IsZero() || u.Duration != 0 {
			t.Errorf("seq %d untimed: startedAt %v, duration %v, want zero", u.Seq, u.StartedAt, u.Duration)
		}
		if tr.StartedAt.IsZero() {
			t.Errorf("seq %d timed: zero startedAt", tr.Seq)
		}
	}
	if um.Completed != tm.Completed || um.Retried != tm.Retried || um.Retried != n/10 {
		t.Errorf("untimed counts %v (retried %d), timed %v (retried %d)", um.Completed, um.Retried, tm.Completed, tm.Retried)
	}
	if got := um.Durations.Count(); got != 0 {
		t.Errorf("untimed: %d duration samples, want none", got)
	}
	if got, want := tm.Durations.Count(), int64(n); got != want {
		t.Errorf("timed: %d duration samples, want %d", got, want)
	}
}

// An Untimed pool still enforces timeouts, and the items of a state with a
// timeout are timed.
func TestUntimedTimeout(t *testing.T) {
	p := newPool(t, `(x) => { if (x == 2) while (true) {} return x }`, vm.InitialState{Timeout: 30 * time.Millisecond},
		pool.Options{Throttle: 1, KeepOrder: true, Untimed: true})
	rs := collect(p.Run(context.Background(), pool.Items(numbers(3))))
	if len(rs) != 3 || rs[0].Status != vm.Success || rs[1].Status != vm.Timeout || rs[2].Status != vm.Success {
		t.Fatalf("got %d results: %v", len(rs), rs)
	}
	if rs[1].Duration < 30*time.Millisecond || rs[0].StartedAt.IsZero() {
		t.Errorf("timeout item: duration %v, first item startedAt %v: want them timed", rs[1].Duration, rs[0].StartedAt)
	}
}

// Cancelling an Untimed run still stops its running items (Stopped).
func TestUntimedCancel(t *testing.T) {
	p := newPool(t, `(x) => { while (true) {} }`, vm.InitialState{}, pool.Options{Throttle: 2, Untimed: true})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	rs := collect(p.Run(ctx, pool.Items(numbers(10))))
	if len(rs) == 0 {
		t.Fatal("no results")
	}
	for _, r := range rs {
		if r.Status != vm.Stopped || !r.StartedAt.IsZero() {
			t.Errorf("seq %d: %s startedAt %v, want Stopped untimed", r.Seq, r.Status, r.StartedAt)
		}
	}
}
