package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// Items run in a pool: a record per item, the script's exceptions and
// the put's undecodable items included.
func TestWorkWithPool(t *testing.T) {
	s := serve(t)
	c := connect(t, s.URL(), newLog(t))
	ctx := context.Background()
	items := func(yield func(pool.Item) bool) {
		for i := 1; i <= 4; i++ {
			if !yield(pool.Item{Value: json.RawMessage(strconv.Itoa(i))}) {
				return
			}
		}
		yield(pool.Item{Input: vm.JSONString("{oops"), Err: errors.New("invalid JSON: line 5")})
	}
	if _, err := c.Put(ctx, job, "items", items); err != nil {
		t.Fatal(err)
	}
	script, err := vm.Compile("double.js", t.TempDir(), `(n) => { if (n === 3) throw new Error("three"); return n * 2 }`)
	if err != nil {
		t.Fatal(err)
	}
	f, err := vm.NewFactory(script, vm.InitialState{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.New(ctx, pool.Options{Factory: f, Throttle: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := work(t, c, queue.WorkOptions{})
	n := 0
	for res := range p.Run(ctx, w.Items()) {
		if err := w.Done(res); err != nil {
			t.Fatal(err)
		}
		if n++; n == 5 {
			w.Stop()
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	recs := records(t, c)
	want := map[string]string{`1`: "Success [2]", `2`: "Success [4]", `3`: "Exception []", `4`: "Success [8]",
		`"{oops"`: "InvalidInput []"}
	for in, w := range want {
		rs := recs[in]
		if len(rs) != 1 {
			t.Errorf("%s: %d records, want 1", in, len(rs))
			continue
		}
		out, _ := json.Marshal(append([]json.RawMessage{}, rs[0].Output...))
		if got := string(rs[0].Status) + " " + string(out); got != w {
			t.Errorf("%s: %s, want %s", in, got, w)
		}
	}
	if e := recs[`"{oops"`]; len(e) == 1 && (e[0].Error == nil || e[0].Error.Message != "invalid JSON: line 5") {
		t.Errorf("the invalid item's error: %+v, want the put's message", e[0].Error)
	}
	if e := recs[`3`]; len(e) == 1 && (e[0].Error == nil || !strings.Contains(e[0].Error.Message, "three")) {
		t.Errorf("the exception: %+v", e[0].Error)
	}
	st, err := c.Stat(ctx, job, results, "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Queued != 0 {
		t.Errorf("%d items left in the work stream, want every one acknowledged", st.Queued)
	}
}

// A worker that dies holding items loses none: they go to another worker
// after AckWait, and every item ends with one record.
func TestWorkerDies(t *testing.T) {
	s := serve(t)
	log := newLog(t)
	c1 := connect(t, s.URL(), log)
	put(t, c1, 20)
	w1 := work(t, c1, queue.WorkOptions{Batch: 10, MaxInFlight: 10, AckWait: time.Second})
	next, stop := iter.Pull(w1.Items())
	for i := 1; i <= 10; i++ {
		it, ok := next()
		if !ok {
			t.Fatal("the first worker got fewer than 10 items")
		}
		if i <= 5 {
			if err := w1.Done(result(it, vm.Success, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	c1.Close() // dies holding five items without results
	stop()
	_ = w1.Close(context.Background())

	c2 := connect(t, s.URL(), log)
	w2 := work(t, c2, queue.WorkOptions{AckWait: time.Second})
	runUntilDone(t, c2, w2, 20, 2, success)
	recs := records(t, c2)
	oneEach(t, recs, 20)
	for i := 6; i <= 10; i++ {
		if rs := recs[strconv.Itoa(i)]; len(rs) == 1 && rs[0].Runspace != 2 {
			t.Errorf("item %d held by the worker that died: done by worker %d, want 2", i, rs[0].Runspace)
		}
	}
}

// An item whose result is already stored (its worker died between storing
// and acknowledging) gets its second result refused, and is acknowledged.
func TestStoredResultNotStoredTwice(t *testing.T) {
	s := serve(t)
	c := connect(t, s.URL(), newLog(t))
	ctx := context.Background()
	w := work(t, c, queue.WorkOptions{}) // makes the streams
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	id := queue.ItemID("numbers", 2)
	earlier := result(pool.Item{Input: json.RawMessage("2"), Seq: 2}, vm.Success, 9)
	if _, err := js.Publish(ctx, results+".r."+id, earlier.AppendJSON(nil), jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
	put(t, c, 3)
	runUntilDone(t, c, w, 3, 1, success)
	recs := records(t, c)
	oneEach(t, recs, 3)
	if rs := recs["2"]; len(rs) == 1 && rs[0].Runspace != 9 {
		t.Errorf("item 2's record is from worker %d, want the one stored before (9)", rs[0].Runspace)
	}
	// The per-item subject refuses a second record, whoever sends it.
	_, err = js.Publish(ctx, results+".r."+id, []byte(`{}`), jetstream.WithMsgID("other"))
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		t.Errorf("a second record on an item's subject: %v, want it refused", err)
	}
}

// An item that kills its worker every time is given up on after
// MaxDeliver deliveries: it gets an Abandoned record and a copy in the
// dead letters, and the other items are done.
func TestPoisonItem(t *testing.T) {
	s := serve(t)
	log := newLog(t)
	c := connect(t, s.URL(), log)
	put(t, c, 5)
	opts := queue.WorkOptions{AckWait: time.Second, MaxDeliver: 2}
	for round := 1; round <= 2; round++ {
		cr := connect(t, s.URL(), log)
		w := work(t, cr, opts)
		for it := range w.Items() {
			if string(it.Input) == "3" {
				cr.Close() // dies of it
				break
			}
			if err := w.Done(result(it, vm.Success, round)); err != nil {
				t.Fatal(err)
			}
		}
		_ = w.Close(context.Background())
	}
	// Two workers hear the advisory, and move the item once.
	other := work(t, connect(t, s.URL(), log), opts)
	otherDone := make(chan struct{})
	go func() {
		defer close(otherDone)
		for it := range other.Items() {
			if string(it.Input) == "3" {
				t.Error("item 3 delivered a third time")
			}
			_ = other.Done(result(it, vm.Success, 4))
		}
	}()
	w := work(t, c, opts)
	runUntilDone(t, c, w, 5, 3, func(it pool.Item) vm.Status {
		if string(it.Input) == "3" {
			t.Error("item 3 delivered a third time")
		}
		return vm.Success
	})
	other.Stop()
	<-otherDone
	if err := other.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := records(t, c)
	oneEach(t, recs, 5)
	for in, rs := range recs {
		r := rs[0]
		switch {
		case in != "3" && r.Status != vm.Success:
			t.Errorf("item %s: %s, want Success", in, r.Status)
		case in == "3" && (r.Status != vm.Abandoned || r.Seq != 3 || r.Error == nil ||
			r.Error.Message != "abandoned after 2 deliveries: its worker died each time"):
			t.Errorf("item 3: %+v %+v, want Abandoned at seq 3 after 2 deliveries", r, r.Error)
		}
	}
	checkDead(t, c, s, "3")
}

// checkDead checks that the dead letters hold exactly the item input.
func checkDead(t *testing.T, c *queue.Conn, s *queue.Server, input string) {
	t.Helper()
	ctx := context.Background()
	st, err := c.Stat(ctx, job, results, "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Dead != 1 || st.Queued != 0 {
		t.Errorf("stat %+v, want 1 dead, none queued", st)
	}
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := js.Stream(ctx, job+"_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	pos, _ := strconv.Atoi(input)
	m, err := dead.GetLastMsgForSubject(ctx, job+"_DEAD.i."+queue.ItemID("numbers", int64(pos)))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != input || m.Header.Get("Rsh-Seq") != input {
		t.Errorf("dead letter %q, headers %v; want item %s", m.Data, m.Header, input)
	}
}

// An item the server gave up on while no worker was listening for its
// advisory is moved by the next worker that starts.
func TestPoisonItemNoWorkerListening(t *testing.T) {
	s := serve(t)
	log := newLog(t)
	c := connect(t, s.URL(), log)
	put(t, c, 1)
	opts := queue.WorkOptions{AckWait: time.Second, MaxDeliver: 1}
	c1 := connect(t, s.URL(), log)
	w1 := work(t, c1, opts)
	for range w1.Items() {
		c1.Close() // dies of it
		break
	}
	_ = w1.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, ctx, func() bool { // the server gives up on it, and nobody hears
		st, err := c.Stat(ctx, job, results, "")
		return err == nil && st.InFlight == 0 && st.Pending == 0 && st.Queued == 1
	})
	w := work(t, c, opts)
	runUntilDone(t, c, w, 1, 2, func(pool.Item) vm.Status {
		t.Error("the item given up on was delivered again")
		return vm.Success
	})
	recs := records(t, c)
	if rs := recs["1"]; len(rs) != 1 || rs[0].Status != vm.Abandoned {
		t.Errorf("records %v, want one Abandoned", rs)
	}
	checkDead(t, c, s, "1")
}

// A suspect (an item delivered before) is yielded only when nothing else
// yielded is without a result, and nothing is yielded while it is.
func TestSuspectRunsAlone(t *testing.T) {
	s := serve(t)
	log := newLog(t)
	c := connect(t, s.URL(), log)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := queue.WorkOptions{AckWait: 2 * time.Second}
	put(t, c, 2)
	c1 := connect(t, s.URL(), log)
	w1 := work(t, c1, opts)
	next, stop := iter.Pull(w1.Items())
	for range 2 {
		if _, ok := next(); !ok { // fresh items are yielded without waiting for results
			t.Fatal("the first worker got fewer than 2 items")
		}
	}
	c1.Close() // dies holding items 1 and 2
	stop()
	_ = w1.Close(ctx)
	if _, err := c.Put(ctx, job, "more", func(yield func(pool.Item) bool) {
		_ = yield(pool.Item{Value: json.RawMessage("3")}) && yield(pool.Item{Value: json.RawMessage("4")})
	}); err != nil {
		t.Fatal(err)
	}

	w := work(t, c, opts)
	yielded := make(chan pool.Item)
	go func() {
		for it := range w.Items() {
			yielded <- it
		}
		close(yielded)
	}()
	receive := func(want string) pool.Item {
		t.Helper()
		select {
		case it := <-yielded:
			if string(it.Input) != want {
				t.Fatalf("yielded %s, want %s", it.Input, want)
			}
			return it
		case <-ctx.Done():
			t.Fatalf("%s was not yielded", want)
		}
		return pool.Item{}
	}
	nothing := func(while string) {
		t.Helper()
		select {
		case it := <-yielded:
			t.Fatalf("yielded %s while %s", it.Input, while)
		case <-time.After(300 * time.Millisecond):
		}
	}
	three, four := receive("3"), receive("4")
	waitFor(t, ctx, func() bool { // items 1 and 2 come back to w, as suspects
		st, err := c.Stat(ctx, job, results, "")
		return err == nil && st.InFlight == 4 && st.Redelivered == 2
	})
	nothing("items 3 and 4 are without results")
	done := func(it pool.Item) {
		t.Helper()
		if err := w.Done(result(it, vm.Success, 2)); err != nil {
			t.Fatal(err)
		}
	}
	done(three)
	nothing("item 4 is without a result")
	done(four)
	one := receive("1")
	nothing("suspect 1 is without a result")
	done(one)
	done(receive("2"))
	waitFor(t, ctx, func() bool {
		st, err := c.Stat(ctx, job, results, "")
		return err == nil && st.Done == 4 && st.Queued == 0
	})
	w.Stop()
	for range yielded {
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	oneEach(t, records(t, c), 4)
}

// Stop and Close hand back every item held without a result, so another
// worker gets them at once rather than after AckWait.
func TestStopHandsBack(t *testing.T) {
	s := serve(t)
	log := newLog(t)
	c := connect(t, s.URL(), log)
	put(t, c, 10)
	w1 := work(t, c, queue.WorkOptions{Batch: 10, MaxInFlight: 10}) // AckWait 30 s
	next, stop := iter.Pull(w1.Items())
	for i := 1; i <= 3; i++ {
		it, ok := next()
		if !ok {
			t.Fatal("fewer than 3 items")
		}
		if i == 1 {
			if err := w1.Done(result(it, vm.Success, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	w1.Stop()
	stop()
	if err := w1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	w2 := work(t, c, queue.WorkOptions{})
	runWithin(t, 10*time.Second, c, w2, 10, 2, success) // well within AckWait
	oneEach(t, records(t, c), 10)
}

// A worker whose server restarts reconnects and finishes: no item lost,
// none done twice.
func TestReconnect(t *testing.T) {
	dir := t.TempDir()
	s, err := queue.Serve(queue.ServeOptions{StoreDir: dir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	url := s.URL()
	port, _ := strconv.Atoi(url[strings.LastIndex(url, ":")+1:])
	c := connect(t, url, newLog(t))
	const n = 2000
	put(t, c, n)
	w := work(t, c, queue.WorkOptions{Batch: 100, AckWait: 2 * time.Second})
	restarted := make(chan *queue.Server, 1)
	worked := make(chan error, 1)
	go func() {
		count := 0
		for it := range w.Items() {
			if count++; count == n/4 {
				s.Shutdown()
				s2, err := queue.Serve(queue.ServeOptions{StoreDir: dir, Port: port})
				if err != nil {
					worked <- err
					return
				}
				restarted <- s2
			}
			if err := w.Done(result(it, vm.Success, 1)); err != nil {
				worked <- err
				return
			}
		}
		worked <- nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case s2 := <-restarted:
		t.Cleanup(s2.Shutdown)
	case err := <-worked:
		t.Fatalf("the worker ended before the restart: %v", err)
	case <-ctx.Done():
		t.Fatal("no restart")
	}
	waitFor(t, ctx, func() bool {
		st, err := c.Stat(ctx, job, results, "")
		return err == nil && st.Done == n && st.Queued == 0
	})
	w.Stop()
	if err := <-worked; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	oneEach(t, records(t, c), n)
}

// Results reads what is there, or follows the stream (from before any
// worker made it) until cancelled.
func TestResultsFollow(t *testing.T) {
	s := serve(t)
	c := connect(t, s.URL(), newLog(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Results(ctx, results, false, func([]byte) error { return nil }); err == nil {
		t.Error("reading a results stream that does not exist: no error")
	}
	got := make(chan string, 10)
	followed := make(chan error, 1)
	fctx, stopFollowing := context.WithCancel(ctx)
	go func() {
		followed <- c.Results(fctx, results, true, func(rec []byte) error {
			var r vm.Result
			if err := json.Unmarshal(rec, &r); err != nil {
				return err
			}
			got <- string(r.Input)
			return nil
		})
	}()
	put(t, c, 3)
	runUntilDone(t, c, work(t, c, queue.WorkOptions{}), 3, 1, success)
	for range 3 {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatal("the records were not followed")
		}
	}
	stopFollowing()
	if err := <-followed; err != nil {
		t.Errorf("following ended with %v, want nil on cancel", err)
	}
	oneEach(t, records(t, c), 3)
}

// A token on the URL or in the options authenticates; a wrong one fails
// with an error that does not show it, nor does any error show a password.
func TestCredentials(t *testing.T) {
	const token = "s3cret-t0ken"
	s, err := queue.Serve(queue.ServeOptions{StoreDir: t.TempDir(), Port: -1, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	hostport := strings.TrimPrefix(s.URL(), "nats://")
	ctx := context.Background()
	tryPut := func(url string, o queue.ConnOptions) error {
		target, err := queue.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		c, err := queue.Connect(ctx, target, o)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Put(ctx, job, "x", numbers(1))
		return err
	}
	if err := tryPut("nats://"+token+"@"+hostport+"/JOB", queue.ConnOptions{}); err != nil {
		t.Errorf("token in the URL: %v", err)
	}
	if err := tryPut("nats://"+hostport+"/JOB", queue.ConnOptions{Token: token}); err != nil {
		t.Errorf("token in the options: %v", err)
	}
	for _, tc := range []struct{ url, secret string }{
		{"nats://wr0ng-t0ken@" + hostport + "/JOB", "wr0ng-t0ken"},
		{"nats://alice:pa55w0rd@" + hostport + "/JOB", "pa55w0rd"},
		{"nats://" + hostport + "/JOB", ""},
	} {
		err := tryPut(tc.url, queue.ConnOptions{})
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("%s: %v, want an authorization error", queue.Target{}.String(), err)
		}
		if err != nil && tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in, servers, stream, shown string
	}{
		{"nats://127.0.0.1:4222/JOB", "nats://127.0.0.1:4222", "JOB", "nats://127.0.0.1:4222/JOB"},
		{"nats://host/JOB_RESULTS", "nats://host:4222", "JOB_RESULTS", "nats://host:4222/JOB_RESULTS"},
		{"nats://alice:p%40ss@a:1,b/J-1", "nats://a:1 nats://b:4222", "J-1", "nats://alice:xxxxx@a:1,b:4222/J-1"},
		{"tls://s3cret@h:4443/R", "tls://h:4443", "R", "tls://xxxxx@h:4443/R"},
		{"nats://[::1]:4222/J", "nats://[::1]:4222", "J", "nats://[::1]:4222/J"},
	} {
		got, err := queue.ParseURL(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.shown, err)
			continue
		}
		if s := strings.Join(got.Servers, " "); s != tc.servers || got.Stream != tc.stream || got.String() != tc.shown {
			t.Errorf("%s: servers %s, stream %s, shown %s", tc.shown, s, got.Stream, got.String())
		}
	}
	for _, in := range []string{
		"http://h/J", "nats://h", "nats://h/", "nats://h/a.b", "nats://h/a/b", "nats:///J",
		"nats://h/J?x=1", "nats://h:port/J", "nats://alice:topsecret@h/bad.name", "topsecret@h/J",
	} {
		_, err := queue.ParseURL(in)
		if err == nil {
			t.Errorf("%s: no error", strings.ReplaceAll(in, "topsecret", "..."))
		} else if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// An item that runs longer than AckWait is not given to another worker:
// its worker keeps sending progress for it.
func TestSlowItemKept(t *testing.T) {
	s := serve(t)
	log := newLog(t)
	c := connect(t, s.URL(), log)
	put(t, c, 1)
	opts := queue.WorkOptions{AckWait: time.Second}
	w1 := work(t, c, opts)
	next, stop := iter.Pull(w1.Items())
	defer stop()
	it, ok := next()
	if !ok {
		t.Fatal("no item")
	}
	w2 := work(t, connect(t, s.URL(), log), opts)
	stolen := make(chan pool.Item, 1)
	go func() {
		for it := range w2.Items() {
			stolen <- it
		}
		close(stolen)
	}()
	time.Sleep(3 * opts.AckWait) // the item runs for three AckWaits
	if err := w1.Done(result(it, vm.Success, 1)); err != nil {
		t.Fatal(err)
	}
	w1.Stop()
	if err := w1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	w2.Stop()
	for it := range stolen {
		t.Errorf("item %s was given to the second worker while the first ran it", it.Input)
	}
	if err := w2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := records(t, c)
	oneEach(t, recs, 1)
	if rs := recs["1"]; len(rs) == 1 && rs[0].Runspace != 1 {
		t.Errorf("the record is from worker %d, want 1", rs[0].Runspace)
	}
}
