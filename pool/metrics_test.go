package pool_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// After a run, the counts are exact: every item by status, each retry
// attempt, and a duration for every item that ran. A second run adds to
// them. Each result is counted by the time it is delivered.
func TestMetricsCounts(t *testing.T) {
	const n, retries = 20, 2
	p := newPool(t, `(x) => { if (x % 5 == 0) throw new Error("five"); return x }`,
		vm.InitialState{}, pool.Options{Throttle: 2, Retries: retries})
	if m := p.Metrics(); m != (pool.Metrics{}) {
		t.Fatalf("new pool: %+v, want zero metrics", m)
	}
	items := func(yield func(pool.Item) bool) {
		for _, x := range numbers(n) {
			if !yield(pool.Item{Value: x}) {
				return
			}
		}
		yield(pool.Item{Err: errors.New("bad line")})
	}
	for run := int64(1); run <= 2; run++ {
		var rs []*vm.Result
		for r := range p.Run(context.Background(), items) {
			rs = append(rs, r)
			// A result is counted before it is delivered.
			if got, least := p.Metrics().Completed.Total(), int64(n+1)*(run-1)+int64(len(rs)); got < least {
				t.Fatalf("run %d: %d completed after %d results delivered", run, got, least)
			}
		}
		if len(rs) != n+1 {
			t.Fatalf("run %d: %d results, want %d", run, len(rs), n+1)
		}
		m := p.Metrics()
		want := map[vm.Status]int64{vm.Success: 16 * run, vm.Exception: 4 * run, vm.InvalidInput: run}
		for _, s := range []vm.Status{vm.Success, vm.Exception, vm.InvalidInput, vm.Timeout, vm.Stopped, vm.Error} {
			if got := m.Completed.Of(s); got != want[s] {
				t.Errorf("run %d: %d %s, want %d", run, got, s, want[s])
			}
		}
		if got := m.Completed.Map(); len(got) != len(want) {
			t.Errorf("run %d: Completed.Map() = %v, want %v", run, got, want)
		}
		if got, want := m.Completed.Total(), int64(n+1)*run; got != want {
			t.Errorf("run %d: %d completed, want %d", run, got, want)
		}
		if got, want := m.Retried, 4*retries*run; got != want {
			t.Errorf("run %d: %d retries, want %d", run, got, want)
		}
		// The invalid item never ran, so it has no duration.
		if got, want := m.Durations.Count(), int64(n)*run; got != want {
			t.Errorf("run %d: %d durations, want %d", run, got, want)
		}
		if m.Running != 0 || m.Queued != 0 {
			t.Errorf("run %d over: running %d, queued %d, want 0", run, m.Running, m.Queued)
		}
	}
}

// While slow items run, Running counts the runspaces busy (never more than
// the throttle) and Queued the items read ahead and waiting.
func TestMetricsRunningAndQueued(t *testing.T) {
	const throttle = 2
	p := newPool(t, `(x) => { sleep(20); return x }`, vm.InitialState{Imports: []string{"sleep"}},
		pool.Options{Throttle: throttle})
	done := make(chan int)
	go func() {
		done <- len(collect(p.Run(context.Background(), pool.Items(numbers(30)))))
	}()
	var sawRunning, sawQueued bool
	deadline := time.After(10 * time.Second)
poll:
	for {
		select {
		case n := <-done:
			if n != 30 {
				t.Fatalf("%d results, want 30", n)
			}
			break poll
		case <-deadline:
			t.Fatal("run did not end")
		default:
		}
		m := p.Metrics()
		if m.Running > throttle {
			t.Fatalf("running %d, more than the throttle %d", m.Running, throttle)
		}
		if m.Queued > 30 {
			t.Fatalf("queued %d, more than the input", m.Queued)
		}
		sawRunning = sawRunning || m.Running == throttle
		sawQueued = sawQueued || m.Queued > 0
		time.Sleep(time.Millisecond)
	}
	if !sawRunning || !sawQueued {
		t.Errorf("during the run: saw %d running: %v, saw items queued: %v", throttle, sawRunning, sawQueued)
	}
	if m := p.Metrics(); m.Running != 0 || m.Queued != 0 || m.Completed.Of(vm.Success) != 30 {
		t.Errorf("after the run: %+v", m)
	}
}

// Metrics may be called from any goroutine while several runs go on; the
// counts it reads only grow.
func TestMetricsConcurrent(t *testing.T) {
	const items = 2000
	p := newPool(t, `(x) => x`, vm.InitialState{}, pool.Options{Throttle: 2})
	stop := make(chan struct{})
	var pollers sync.WaitGroup
	for range 3 {
		pollers.Add(1)
		go func() {
			defer pollers.Done()
			var last int64
			for {
				m := p.Metrics()
				if got := m.Completed.Total(); got < last {
					t.Errorf("completed went from %d down to %d", last, got)
				} else {
					last = got
				}
				_ = m.Durations.Percentile(99)
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	var runs sync.WaitGroup
	for range 2 {
		runs.Add(1)
		go func() {
			defer runs.Done()
			for range p.Run(context.Background(), pool.Items(numbers(items))) {
			}
		}()
	}
	runs.Wait()
	close(stop)
	pollers.Wait()
	if got := p.Metrics().Completed.Of(vm.Success); got != 2*items {
		t.Errorf("%d succeeded, want %d", got, 2*items)
	}
}

// Cancelling a run counts only the items that started, as Stopped.
func TestMetricsStopped(t *testing.T) {
	p := newPool(t, `(x) => { sleep(10000); return x }`, vm.InitialState{Imports: []string{"sleep"}},
		pool.Options{Throttle: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int)
	go func() {
		n := 0
		for range p.Run(ctx, pool.Items(numbers(10))) {
			n++
		}
		done <- n
	}()
	deadline := time.Now().Add(10 * time.Second)
	for p.Metrics().Running < 2 {
		if time.Now().After(deadline) {
			t.Fatal("items did not start")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	results := <-done
	m := p.Metrics()
	if got := m.Completed.Of(vm.Stopped); got != int64(results) || m.Completed.Total() != int64(results) {
		t.Errorf("%d results, %d counted Stopped of %d counted; want as many as results", results, got, m.Completed.Total())
	}
	if m.Running != 0 || m.Queued != 0 {
		t.Errorf("after the run: running %d, queued %d", m.Running, m.Queued)
	}
}

// durations builds a histogram of the given durations, count times each.
func durations(counts map[time.Duration]int) pool.Histogram {
	var h pool.Histogram
	for d, n := range counts {
		h.Buckets[pool.BucketOf(d)] += int64(n)
	}
	return h
}

// Each duration lands in its power-of-two bucket, from under 1µs to over
// an hour.
func TestHistogramBuckets(t *testing.T) {
	for d, want := range map[time.Duration]int{
		0: 0, -time.Second: 0, 999 * time.Nanosecond: 0,
		time.Microsecond: 1, 1999 * time.Nanosecond: 1, 2 * time.Microsecond: 2,
		3 * time.Microsecond: 2, 4 * time.Microsecond: 3, 100 * time.Microsecond: 7,
		time.Second: 20, time.Hour: 32, (1 << 32) * time.Microsecond: 33, 10 * time.Hour: 33,
		math.MaxInt64: 33,
	} {
		if got := pool.BucketOf(d); got != want {
			t.Errorf("%s in bucket %d, want %d", d, got, want)
		}
		if want > 0 && d < pool.BucketBound(want-1) {
			t.Errorf("%s under the lower bound %s of its bucket %d", d, pool.BucketBound(want-1), want)
		}
		if want < pool.HistogramBuckets-1 && d >= pool.BucketBound(want) {
			t.Errorf("%s not under the upper bound %s of its bucket %d", d, pool.BucketBound(want), want)
		}
	}
}

// Percentiles are the upper bound of the bucket they fall in.
func TestHistogramPercentile(t *testing.T) {
	h := durations(map[time.Duration]int{
		3 * time.Microsecond:   10, // bucket [2µs, 4µs)
		100 * time.Microsecond: 80, // bucket [64µs, 128µs)
		time.Second:            10, // bucket [2^19µs, 2^20µs)
	})
	if got := h.Count(); got != 100 {
		t.Fatalf("count %d, want 100", got)
	}
	for p, want := range map[float64]time.Duration{
		-5: 4 * time.Microsecond, 0: 4 * time.Microsecond, 10: 4 * time.Microsecond,
		11: 128 * time.Microsecond, 50: 128 * time.Microsecond, 90: 128 * time.Microsecond,
		91: (1 << 20) * time.Microsecond, 99: (1 << 20) * time.Microsecond,
		100: (1 << 20) * time.Microsecond, 150: (1 << 20) * time.Microsecond,
	} {
		if got := h.Percentile(p); got != want {
			t.Errorf("p%v = %s, want %s", p, got, want)
		}
	}
	if got := (pool.Histogram{}).Percentile(50); got != 0 {
		t.Errorf("p50 of nothing = %s, want 0", got)
	}
	// The open last bucket reports its lower bound.
	long := durations(map[time.Duration]int{10 * time.Hour: 1})
	if got, want := long.Percentile(50), (1<<32)*time.Microsecond; got != want {
		t.Errorf("p50 of 10h = %s, want %s", got, want)
	}
}

// A status unknown to the pool is still counted.
func TestStatusCountsUnknown(t *testing.T) {
	var c pool.StatusCounts
	c[pool.StatusIndex("Someday")]++
	if c.Of("Someday") != 1 || c.Of(vm.Success) != 0 || c.Total() != 1 || c.Map()[""] != 1 {
		t.Errorf("unknown status: %v", c)
	}
}
