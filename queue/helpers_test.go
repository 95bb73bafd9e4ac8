package queue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/queue"
	"github.com/runspaces/rsh/vm"
)

// Names of the streams the tests use.
const (
	job     = "JOB"
	results = "RES"
)

// testLog collects what the package logs, and shows it if the test fails.
// Connections log from their own goroutines, possibly after the test has
// ended, so they never call t.Logf themselves.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newLog(t testing.TB) *testLog {
	l := &testLog{}
	t.Cleanup(func() {
		if t.Failed() {
			l.mu.Lock()
			t.Logf("queue log:\n%s", l.buf.String())
			l.mu.Unlock()
		}
	})
	return l
}

func (l *testLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, format+"\n", args...)
}

// serve starts an embedded server for one test.
func serve(t testing.TB) *queue.Server {
	t.Helper()
	s, err := queue.Serve(queue.ServeOptions{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// connect connects to url/JOB.
func connect(t testing.TB, url string, log *testLog) *queue.Conn {
	t.Helper()
	target, err := queue.ParseURL(url + "/" + job)
	if err != nil {
		t.Fatal(err)
	}
	c, err := queue.Connect(context.Background(), target, queue.ConnOptions{Logf: log.logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// numbers yields the items 1..n.
func numbers(n int) iter.Seq[pool.Item] {
	return func(yield func(pool.Item) bool) {
		for i := 1; i <= n; i++ {
			if !yield(pool.Item{Value: json.RawMessage(strconv.Itoa(i))}) {
				return
			}
		}
	}
}

func put(t testing.TB, c *queue.Conn, n int) {
	t.Helper()
	st, err := c.Put(context.Background(), job, "numbers", numbers(n))
	if err != nil {
		t.Fatal(err)
	}
	if st.Items != n {
		t.Fatalf("put %d items, want %d", st.Items, n)
	}
}

// result is what a script would make of an item: the item itself as
// output, with the status given; worker tags the record.
func result(it pool.Item, status vm.Status, worker int) *vm.Result {
	return &vm.Result{Seq: it.Seq, Input: it.JSON(), Output: []json.RawMessage{it.JSON()},
		Status: status, StartedAt: time.Now(), Runspace: worker, Attempts: 1}
}

// work starts a worker with the tests' defaults under o.
func work(t testing.TB, c *queue.Conn, o queue.WorkOptions) *queue.Work {
	t.Helper()
	o.From, o.To = job, results
	w, err := c.Work(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// runUntilDone answers every item w yields with the status status(item)
// until the results stream holds want records and the work stream is
// empty, then closes w.
func runUntilDone(t testing.TB, c *queue.Conn, w *queue.Work, want uint64, worker int, status func(pool.Item) vm.Status) {
	t.Helper()
	runWithin(t, time.Minute, c, w, want, worker, status)
}

// runWithin is runUntilDone, failing if it takes longer than d.
func runWithin(t testing.TB, d time.Duration, c *queue.Conn, w *queue.Work, want uint64, worker int, status func(pool.Item) vm.Status) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		for it := range w.Items() {
			if err := w.Done(result(it, status(it), worker)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	waitFor(t, ctx, func() bool {
		st, err := c.Stat(ctx, job, results, "")
		return err == nil && st.Done == want && st.Queued == 0
	})
	w.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func success(pool.Item) vm.Status { return vm.Success }

// waitFor polls cond until it holds, failing the test when ctx ends.
func waitFor(t testing.TB, ctx context.Context, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("gave up waiting")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// records reads the results stream: its records by their input.
func records(t testing.TB, c *queue.Conn) map[string][]*vm.Result {
	t.Helper()
	out := map[string][]*vm.Result{}
	err := c.Results(context.Background(), results, false, func(rec []byte) error {
		var r vm.Result
		if err := json.Unmarshal(rec, &r); err != nil {
			return fmt.Errorf("record %s: %w", rec, err)
		}
		out[string(r.Input)] = append(out[string(r.Input)], &r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// oneEach checks that the items 1..n have exactly one record each, and
// that there are no others.
func oneEach(t testing.TB, recs map[string][]*vm.Result, n int) {
	t.Helper()
	if len(recs) != n {
		t.Errorf("%d items have records, want %d", len(recs), n)
	}
	for i := 1; i <= n; i++ {
		if got := len(recs[strconv.Itoa(i)]); got != 1 {
			t.Errorf("item %d has %d records, want 1", i, got)
		}
	}
}
