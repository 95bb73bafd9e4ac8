package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/cli"
	"github.com/runspaces/rsh/jobs"
	"github.com/runspaces/rsh/vm"
	"github.com/runspaces/rsh/worker"
)

// daemonEnv makes the test binary a daemon (see runDaemon): its value is
// the state directory and the socket, separated by os.PathListSeparator.
const daemonEnv = "RSH_TEST_DAEMON"

// The test binary is also the job process (Options.Command defaults to
// this program), its workers, and, for the tests that kill a daemon, the
// daemon.
func TestMain(m *testing.M) {
	worker.Main()
	cli.JobMain()
	if v := os.Getenv(daemonEnv); v != "" {
		os.Exit(runDaemon(v))
	}
	goleak.VerifyTestMain(m)
}

// daemonWrapEnv, with daemonEnv, is a shell command the daemon starts its
// job processes through: sh -c WRAPPER PROGRAM __job DIR.
const daemonWrapEnv = "RSH_TEST_DAEMON_WRAP"

// runDaemon serves a Manager on a Unix socket until SIGTERM.
func runDaemon(v string) int {
	dir, socket, ok := strings.Cut(v, string(os.PathListSeparator))
	if !ok {
		fmt.Fprintf(os.Stderr, "%s=%q: want DIR%cSOCKET\n", daemonEnv, v, os.PathListSeparator)
		return 2
	}
	opts := jobs.Options{Dir: dir}
	if w := os.Getenv(daemonWrapEnv); w != "" {
		opts.Command = []string{"/bin/sh", "-c", w, os.Args[0]}
	}
	m, err := jobs.New(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = os.Remove(socket) // left by a daemon that was killed
	l, err := net.Listen("unix", socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: jobs.Handler(m, "", 0)}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		<-sig
		srv.Close()
	}()
	_ = srv.Serve(l)
	m.Close()
	return 0
}

// deadline bounds every wait for something asynchronous: far beyond what
// any of it takes, so that only a bug reaches it.
const deadline = 60 * time.Second

// pollEvery is how often a test looks again at a state it waits for.
const pollEvery = 10 * time.Millisecond

// newManager returns a Manager closed when the test ends; opts.Dir
// defaults to a new directory.
func newManager(t *testing.T, opts jobs.Options) *jobs.Manager {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	m, err := jobs.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// values makes items of vals.
func values(vals ...any) []jobs.Item {
	var out []jobs.Item
	for _, v := range vals {
		raw, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		out = append(out, jobs.Item{Value: raw})
	}
	return out
}

// numbers makes the items 1 to n.
func numbers(n int) []jobs.Item {
	vals := make([]any, n)
	for i := range vals {
		vals[i] = i + 1
	}
	return values(vals...)
}

// inputLines makes the input lines of the items from to to (inclusive).
func inputLines(from, to int) []byte {
	var b []byte
	for i := from; i <= to; i++ {
		b = jobs.AppendItemLine(b, json.RawMessage(strconv.Itoa(i)))
	}
	return b
}

func start(t *testing.T, m *jobs.Manager, spec jobs.Spec) string {
	t.Helper()
	name, _, err := m.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return name
}

// waitJob waits for the job to finish.
func waitJob(t *testing.T, m *jobs.Manager, name string) jobs.Info {
	t.Helper()
	info, err := m.Wait(context.Background(), name, deadline)
	if err != nil {
		t.Fatalf("wait %s: %v (%+v)", name, err, info)
	}
	return info
}

// waitFor polls cond until it holds, and fails the test at the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s", what, deadline)
		}
		time.Sleep(pollEvery)
	}
}

// waitInfo polls the job until cond holds for its info, and returns it.
func waitInfo(t *testing.T, m *jobs.Manager, name, what string, cond func(jobs.Info) bool) jobs.Info {
	t.Helper()
	var info jobs.Info
	waitFor(t, name+": "+what, func() bool {
		var err error
		info, err = m.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		return cond(info)
	})
	return info
}

// parseRecords decodes results, one record a line.
func parseRecords(t *testing.T, data []byte) []vm.Result {
	t.Helper()
	var out []vm.Result
	for _, line := range bytes.SplitAfter(data, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		if line[len(line)-1] != '\n' {
			t.Fatalf("a record without its newline: %q", line)
		}
		var r vm.Result
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// results reads the job's results from byte from, without following.
func results(t *testing.T, m *jobs.Manager, name string, from int64) ([]vm.Result, int64) {
	t.Helper()
	var buf bytes.Buffer
	end, err := m.Results(context.Background(), name, from, false, &buf)
	if err != nil {
		t.Fatalf("results of %s: %v", name, err)
	}
	if end != from+int64(buf.Len()) {
		t.Fatalf("results of %s from %d: end %d after %d bytes", name, from, end, buf.Len())
	}
	return parseRecords(t, buf.Bytes()), end
}

// inputs returns each record's input, as JSON text.
func inputs(rs []vm.Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Input)
	}
	return out
}

// checkOnce checks that rs holds exactly one result for each of the items
// first (default 1) to n, each a Success.
func checkOnce(t *testing.T, rs []vm.Result, n int, first ...int) {
	t.Helper()
	from := 1
	if len(first) > 0 {
		from = first[0]
	}
	seen := map[string]int{}
	for _, r := range rs {
		seen[string(r.Input)]++
		if r.Status != vm.Success {
			t.Errorf("item %s: %s %+v", r.Input, r.Status, r.Error)
		}
	}
	for i := from; i <= n; i++ {
		if c := seen[strconv.Itoa(i)]; c != 1 {
			t.Errorf("item %d has %d results, want 1", i, c)
		}
	}
	if len(rs) != n-from+1 {
		t.Errorf("%d results, want %d: inputs %v", len(rs), n-from+1, inputs(rs))
	}
}

// jobDir is where a Manager on state keeps the job name.
func jobDir(state, name string) string { return filepath.Join(state, "jobs", name) }

// jobProcesses returns the pids of the live processes running the job in
// dir (whatever their parent).
func jobProcesses(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		if len(args) == 3 && args[1] == jobs.ProcessArg && args[2] == dir && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether pid runs: it exists and is not a zombie (a process
// whose parent died may wait for a reaper that never comes).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces, so look after ")".
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// syncBuffer is a bytes.Buffer safe for one writer and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// Items given in the spec run to Completed; the results come in input
// order; Ack moves the receive cursor, and the results past it are what
// is left: nothing. An Ack that does not start at the cursor is a
// conflict; one past what can be received, or not at a record's end, is
// invalid.
func TestItemsCompleteAndReceive(t *testing.T) {
	m := newManager(t, jobs.Options{})
	const n = 5
	name := start(t, m, jobs.Spec{Script: `(n, p) => n * p.k`, Params: map[string]json.RawMessage{"k": json.RawMessage("10")}, Items: numbers(n)})
	if !strings.HasPrefix(name, "job-") {
		t.Errorf("generated name %q", name)
	}
	info := waitJob(t, m, name)
	if info.State != jobs.Completed || info.Done != n || info.Total != n || info.Succeeded != n || info.Failed != 0 {
		t.Fatalf("%+v", info)
	}
	if info.Received != 0 || info.ReceivedBytes != 0 || info.Committed <= 0 {
		t.Fatalf("before any receive: %+v", info)
	}
	rs, end := results(t, m, name, info.ReceivedBytes)
	var got []string
	for _, r := range rs {
		if r.Status != vm.Success || len(r.Output) != 1 {
			t.Fatalf("record %+v", r)
		}
		got = append(got, string(r.Output[0]))
	}
	if strings.Join(got, ",") != "10,20,30,40,50" || strings.Join(inputs(rs), ",") != "1,2,3,4,5" {
		t.Fatalf("outputs %v of inputs %v, want them in input order", got, inputs(rs))
	}
	if end != info.Committed {
		t.Errorf("results end at %d, committed %d", end, info.Committed)
	}

	if _, err := m.Ack(name, 1, end); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("ack from 1, not the cursor: %v, want ErrConflict", err)
	}
	if _, err := m.Ack(name, 0, end+1); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("ack past the results: %v, want ErrInvalid", err)
	}
	if _, err := m.Ack(name, 0, 3); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("ack within a record: %v, want ErrInvalid", err)
	}
	if info, _ := m.Get(name); info.Received != 0 || info.ReceivedBytes != 0 {
		t.Fatalf("refused acks moved the cursor: %+v", info)
	}

	// Two records, then the rest.
	two := int64(bytes.IndexByte(mustResults(t, m, name, 0), '\n')) + 1
	two += int64(bytes.IndexByte(mustResults(t, m, name, two), '\n')) + 1
	info, err := m.Ack(name, 0, two)
	if err != nil || info.Received != 2 || info.ReceivedBytes != two {
		t.Fatalf("ack of two records: %+v %v", info, err)
	}
	if rest, _ := results(t, m, name, info.ReceivedBytes); strings.Join(inputs(rest), ",") != "3,4,5" {
		t.Fatalf("after two received: %v", inputs(rest))
	}
	info, err = m.Ack(name, two, end)
	if err != nil || info.Received != n || info.ReceivedBytes != end {
		t.Fatalf("ack of the rest: %+v %v", info, err)
	}
	if rest, after := results(t, m, name, info.ReceivedBytes); len(rest) != 0 || after != end {
		t.Fatalf("results after all were received: %d records, end %d", len(rest), after)
	}
	if got, _ := m.Get(name); got.Received != n || got.ReceivedBytes != end {
		t.Fatalf("get after receiving: %+v", got)
	}
}

func mustResults(t *testing.T, m *jobs.Manager, name string, from int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := m.Results(context.Background(), name, from, false, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A job with no items runs its script once, with null; names are unique
// and checked; an unknown job is ErrNotFound.
func TestOnceAndNames(t *testing.T) {
	m := newManager(t, jobs.Options{})
	name := start(t, m, jobs.Spec{Name: "once", Script: `(x, p) => x === null ? "hello " + p.who : "item"`, Params: map[string]json.RawMessage{"who": json.RawMessage(`"world"`)}})
	if info := waitJob(t, m, name); info.State != jobs.Completed || info.Total != 1 || info.Done != 1 {
		t.Fatalf("%+v", info)
	}
	rs, _ := results(t, m, name, 0)
	if len(rs) != 1 || string(rs[0].Output[0]) != `"hello world"` {
		t.Fatalf("%+v", rs)
	}
	if _, _, err := m.Start(context.Background(), jobs.Spec{Name: "once", Script: `(n) => n`}); !errors.Is(err, jobs.ErrNameTaken) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, _, err := m.Start(context.Background(), jobs.Spec{Name: "../evil", Script: `(n) => n`}); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("a name with a path in it: %v", err)
	}
	if _, err := m.Get("nope"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
	name = start(t, m, jobs.Spec{Name: "bad", Script: `(n) =>`})
	if info := waitJob(t, m, name); info.State != jobs.Failed || !strings.Contains(info.Reason, "syntax error") {
		t.Errorf("a script that does not compile: %+v", info)
	}
	name = start(t, m, jobs.Spec{Name: "mixed", Script: `(n) => { if (n === 2) throw new Error("two"); return n }`, Items: numbers(3)})
	if info := waitJob(t, m, name); info.State != jobs.CompletedWithErrors || info.Succeeded != 2 || info.Failed != 1 {
		t.Errorf("one item of three failing: %+v", info)
	}
}

// writePieces writes data to w in pieces of piece bytes, one write each.
func writePieces(t *testing.T, w io.Writer, data []byte, piece int) {
	t.Helper()
	for len(data) > 0 {
		k := min(piece, len(data))
		if _, err := w.Write(data[:k]); err != nil {
			t.Errorf("writing the input: %v", err)
			return
		}
		data = data[k:]
	}
}

// A job's input streamed while it runs: the job starts on the first items
// before the input ends (its total unknown meanwhile), and ends with one
// result per item, a line torn between two writes included.
func TestStreamedInput(t *testing.T) {
	m := newManager(t, jobs.Options{})
	name := start(t, m, jobs.Spec{Name: "stream", Script: `(n) => n * 2`, Input: true, Throttle: 2})
	pr, pw := io.Pipe()
	type inputDone struct {
		n   int64
		err error
	}
	done := make(chan inputDone, 1)
	go func() {
		n, err := m.Input(context.Background(), name, pr)
		done <- inputDone{n, err}
	}()
	const n = 12
	first := inputLines(1, 4)
	// The fifth line is torn: its start goes now, its end later.
	first = append(first, 'v', '5')
	writePieces(t, pw, first, 3)
	info := waitInfo(t, m, name, "running on the input so far", func(i jobs.Info) bool { return i.State == jobs.Running && i.Done > 0 })
	if !info.InputOpen || info.Total != -1 {
		t.Errorf("while the input is open: %+v, want InputOpen and Total -1", info)
	}
	select {
	case d := <-done:
		t.Fatalf("Input returned before the input ended: %+v", d)
	default:
	}
	rest := append([]byte("\n"), inputLines(6, n)...)
	writePieces(t, pw, rest, 5)
	pw.Close()
	d := <-done
	if d.err != nil || d.n != int64(len(first)+len(rest)) {
		t.Fatalf("Input: %d bytes, %v; want %d", d.n, d.err, len(first)+len(rest))
	}
	info = waitJob(t, m, name)
	if info.State != jobs.Completed || info.Done != n || info.Total != n || info.InputOpen {
		t.Fatalf("%+v", info)
	}
	rs, _ := results(t, m, name, 0)
	checkOnce(t, rs, n)
	for i, r := range rs {
		if want := strconv.Itoa(2 * (i + 1)); len(r.Output) != 1 || string(r.Output[0]) != want {
			t.Errorf("record %d: output %s, want %s", i, r.Output, want)
		}
	}
	// The input is closed now.
	if _, err := m.Input(context.Background(), name, strings.NewReader("v1\n")); !errors.Is(err, jobs.ErrInputClosed) {
		t.Errorf("input after the end: %v, want ErrInputClosed", err)
	}
}

// Input cut off by the client (its reader fails, after a torn line): the
// job runs over the whole items that arrived, then fails saying so, and
// their results are there.
func TestInputCutOff(t *testing.T) {
	m := newManager(t, jobs.Options{})
	name := start(t, m, jobs.Spec{Name: "cut", Script: `(n) => n`, Input: true})
	pr, pw := io.Pipe()
	go func() {
		writePieces(t, pw, append(inputLines(1, 3), "v4"...), 4)
		pw.CloseWithError(errors.New("the client went away"))
	}()
	if _, err := m.Input(context.Background(), name, pr); err == nil || !strings.Contains(err.Error(), "the client went away") {
		t.Errorf("Input of a failing reader: %v", err)
	}
	info := waitJob(t, m, name)
	if info.State != jobs.Failed || !strings.Contains(info.Reason, "input") || !strings.Contains(info.Reason, "the client went away") || !strings.Contains(info.Reason, "3 items") {
		t.Fatalf("%+v, want Failed naming the input and its 3 items", info)
	}
	rs, _ := results(t, m, name, 0)
	checkOnce(t, rs, 3)
}

// An input cut off before any item arrived runs nothing: not even the one
// run with null that a job with an empty input gets.
func TestInputCutBeforeAnyItem(t *testing.T) {
	m := newManager(t, jobs.Options{})
	name := start(t, m, jobs.Spec{Name: "cut0", Script: `(n) => "ran with " + n`, Input: true})
	if _, err := m.Input(context.Background(), name, iotest.ErrReader(errors.New("the client went away"))); err == nil {
		t.Error("Input of a failing reader succeeded")
	}
	info := waitJob(t, m, name)
	if info.State != jobs.Failed || !strings.Contains(info.Reason, "0 items") {
		t.Fatalf("%+v, want Failed naming its 0 items", info)
	}
	if rs, _ := results(t, m, name, 0); len(rs) != 0 {
		t.Errorf("%d results, want none: %+v", len(rs), rs)
	}
}

// A running job reports its process's pool metrics: items running now,
// and its items' durations; once it ends nothing runs.
func TestJobMetrics(t *testing.T) {
	m := newManager(t, jobs.Options{})
	items := make([]jobs.Item, 12)
	for i := range items {
		items[i] = jobs.Item{Value: json.RawMessage(fmt.Sprint(i + 1))}
	}
	name := start(t, m, jobs.Spec{Name: "metrics", Script: `(n) => { sleep(150); return n }`, Throttle: 2, Items: items})
	waitInfo(t, m, name, "two items running and durations known", func(i jobs.Info) bool {
		return i.Running == 2 && i.P50Ms >= 100
	})
	info := waitJob(t, m, name)
	if info.State != jobs.Completed || info.Running != 0 || info.Queued != 0 {
		t.Fatalf("%+v", info)
	}
}

// With MaxJobs 1 the jobs after the first wait as NotStarted, numbered in
// order, and start in that order — not in the order their input is ready.
func TestQueue(t *testing.T) {
	m := newManager(t, jobs.Options{MaxJobs: 1})
	// Each job runs until its input ends.
	var names []string
	for i := range 3 {
		names = append(names, start(t, m, jobs.Spec{Name: fmt.Sprintf("q%d", i+1), Script: `(n) => n`, Input: true}))
	}
	waitInfo(t, m, "q1", "running", func(i jobs.Info) bool { return i.State == jobs.Running })
	for i, name := range names[1:] {
		info, _ := m.Get(name)
		if info.State != jobs.NotStarted || info.QueuePosition != i+1 {
			t.Errorf("%s: %s at %d, want NotStarted at %d", name, info.State, info.QueuePosition, i+1)
		}
	}
	list := m.List()
	if len(list) != 3 || list[1].QueuePosition != 1 || list[2].QueuePosition != 2 || list[0].QueuePosition != 0 {
		t.Errorf("list: %+v", list)
	}
	feed := func(name string, n int) {
		t.Helper()
		if _, err := m.Input(context.Background(), name, bytes.NewReader(inputLines(1, n))); err != nil {
			t.Fatal(err)
		}
	}
	// The last job's input is complete first: it still waits its turn.
	feed("q3", 3)
	feed("q1", 2)
	if info := waitJob(t, m, "q1"); info.State != jobs.Completed {
		t.Fatalf("q1: %+v", info)
	}
	waitInfo(t, m, "q2", "running after q1", func(i jobs.Info) bool { return i.State == jobs.Running })
	if info, _ := m.Get("q3"); info.State != jobs.NotStarted || info.QueuePosition != 1 {
		t.Errorf("q3 while q2 runs: %s at %d, want NotStarted at 1", info.State, info.QueuePosition)
	}
	feed("q2", 1)
	var prev jobs.Info
	for i, name := range names {
		info := waitJob(t, m, name)
		if info.State != jobs.Completed {
			t.Fatalf("%s: %+v", name, info)
		}
		if i > 0 && info.StartedAt.Before(prev.EndedAt) {
			t.Errorf("%s started at %s, before %s ended at %s", name, info.StartedAt, prev.Name, prev.EndedAt)
		}
		prev = info
	}
}

// A second Manager on a directory is refused, and told which process
// holds it.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	newManager(t, jobs.Options{Dir: dir})
	_, err := jobs.New(jobs.Options{Dir: dir})
	if !errors.Is(err, jobs.ErrLocked) || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("a second Manager: %v, want ErrLocked naming process %d", err, os.Getpid())
	}
}

// Close leaves a running job Running on file, its process ended; the next
// Manager resumes it from its job log, and every item ends with exactly
// one result: the item that failed before the Close counts as failed,
// and the items interrupted by it run again.
func TestCloseAndResume(t *testing.T) {
	dir := t.TempDir()
	m, err := jobs.New(jobs.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	name := start(t, m, jobs.Spec{Name: "long", Script: `(n) => { if (n === 1) throw new Error("one"); sleep(100); return n }`, Items: numbers(n), Throttle: 1})
	waitInfo(t, m, name, "two items done", func(i jobs.Info) bool { return i.Done >= 2 })
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if pids := jobProcesses(t, jobDir(dir, name)); len(pids) != 0 {
		t.Errorf("job processes %v still run after Close", pids)
	}
	var onFile jobs.Info
	data, err := os.ReadFile(filepath.Join(jobDir(dir, name), jobs.StateFile))
	if err == nil {
		err = json.Unmarshal(data, &onFile)
	}
	if err != nil || onFile.State != jobs.Running || onFile.Done >= n {
		t.Fatalf("on file after Close: %+v %v, want Running, not done", onFile, err)
	}

	m2 := newManager(t, jobs.Options{Dir: dir})
	info := waitJob(t, m2, name)
	if info.State != jobs.CompletedWithErrors || info.Resumed != 1 || info.Done != n || info.Total != n || info.Failed != 1 {
		t.Fatalf("resumed: %+v, want CompletedWithErrors with 1 failed", info)
	}
	rs, _ := results(t, m2, name, 0)
	if len(rs) == 0 || rs[0].Status != vm.Exception {
		t.Fatalf("the first item's result: %+v", rs)
	}
	checkOnce(t, rs[1:], n, 2)
}

// Stop interrupts a running job (Stopped); a waiting one is Stopped
// before it starts, and never runs.
func TestStop(t *testing.T) {
	m := newManager(t, jobs.Options{MaxJobs: 1})
	spin := start(t, m, jobs.Spec{Name: "spin", Script: `() => { while (true) {} }`})
	queued := start(t, m, jobs.Spec{Name: "queued", Script: `(n) => n`, Items: numbers(2)})
	waitInfo(t, m, spin, "running", func(i jobs.Info) bool { return i.State == jobs.Running })
	info, err := m.Stop(context.Background(), queued)
	if err != nil || info.State != jobs.Stopped || !strings.Contains(info.Reason, "before it started") {
		t.Fatalf("stop of a waiting job: %+v %v", info, err)
	}
	info, err = m.Stop(context.Background(), spin)
	if err != nil || info.State != jobs.Stopped {
		t.Fatalf("stop of a running job: %+v %v", info, err)
	}
	// The next job runs only once the slot is free: by then the stopped
	// one would have started, if it were going to.
	after := start(t, m, jobs.Spec{Name: "after", Script: `(n) => n`})
	if info := waitJob(t, m, after); info.State != jobs.Completed {
		t.Fatalf("after: %+v", info)
	}
	info, _ = m.Get(queued)
	if info.State != jobs.Stopped || !info.StartedAt.IsZero() || info.Done != 0 {
		t.Errorf("the stopped waiting job ran: %+v", info)
	}
	if rs, _ := results(t, m, queued, 0); len(rs) != 0 {
		t.Errorf("the stopped waiting job has results: %+v", rs)
	}
	// Stopping a finished job changes nothing.
	if info, err := m.Stop(context.Background(), after); err != nil || info.State != jobs.Completed {
		t.Errorf("stop of a finished job: %+v %v", info, err)
	}
	if err := m.Remove(context.Background(), spin); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(spin); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("get after remove: %v", err)
	}
}

// The job's log has what its script wrote while it loaded; a followed log
// goes on while the job runs, and returns when it ends.
func TestLog(t *testing.T) {
	m := newManager(t, jobs.Options{})
	name := start(t, m, jobs.Spec{Name: "talk", Script: `console.log("loading the talker"); (n) => { console.error("item " + n); return n }`, Input: true})
	var log syncBuffer
	logDone := make(chan error, 1)
	go func() { logDone <- m.Log(context.Background(), name, true, &log) }()
	waitFor(t, "the load-time line in the followed log", func() bool { return bytes.Contains(log.Bytes(), []byte("loading the talker")) })
	if info, _ := m.Get(name); info.State != jobs.Running {
		t.Fatalf("the job is not running any more: %+v", info)
	}
	select {
	case err := <-logDone:
		t.Fatalf("the followed log returned while the job runs: %v", err)
	default:
	}
	if _, err := m.Input(context.Background(), name, bytes.NewReader(inputLines(1, 2))); err != nil {
		t.Fatal(err)
	}
	waitJob(t, m, name)
	select {
	case err := <-logDone:
		if err != nil {
			t.Fatalf("followed log: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("the followed log did not return when the job ended")
	}
	var plain bytes.Buffer
	if err := m.Log(context.Background(), name, false, &plain); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plain.String(), "loading the talker") {
		t.Errorf("log:\n%s", plain.String())
	}
	// The items' messages are in their records.
	rs, _ := results(t, m, name, 0)
	if len(rs) != 2 || len(rs[0].Warnings) != 1 || rs[0].Warnings[0] != "item 1" {
		t.Errorf("records: %+v", rs)
	}
}

// Results followed on a running job stream each result as it is stored,
// and return once the job has ended, with all of them.
func TestResultsFollow(t *testing.T) {
	m := newManager(t, jobs.Options{})
	name := start(t, m, jobs.Spec{Name: "follow", Script: `(n) => n`, Input: true})
	var out syncBuffer
	type followed struct {
		end int64
		err error
	}
	done := make(chan followed, 1)
	go func() {
		end, err := m.Results(context.Background(), name, 0, true, &out)
		done <- followed{end, err}
	}()
	pr, pw := io.Pipe()
	inputDone := make(chan error, 1)
	go func() {
		_, err := m.Input(context.Background(), name, pr)
		inputDone <- err
	}()
	writePieces(t, pw, inputLines(1, 2), 100)
	waitFor(t, "two results streamed while the input is open", func() bool { return bytes.Count(out.Bytes(), []byte{'\n'}) >= 2 })
	select {
	case f := <-done:
		t.Fatalf("follow returned while the job runs: %+v", f)
	default:
	}
	const n = 6
	writePieces(t, pw, inputLines(3, n), 100)
	pw.Close()
	if err := <-inputDone; err != nil {
		t.Fatal(err)
	}
	var f followed
	select {
	case f = <-done:
	case <-time.After(deadline):
		t.Fatal("follow did not return when the job ended")
	}
	info, _ := m.Get(name)
	if f.err != nil || f.end != info.Committed || info.State != jobs.Completed {
		t.Fatalf("follow: %+v; job %+v", f, info)
	}
	rs := parseRecords(t, out.Bytes())
	checkOnce(t, rs, n)
	if strings.Join(inputs(rs), ",") != "1,2,3,4,5,6" {
		t.Errorf("order: %v", inputs(rs))
	}
}

// A job runs in Spec.Dir: its relative paths resolve there. A Dir that is
// not there fails the start.
func TestDir(t *testing.T) {
	m := newManager(t, jobs.Options{})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte("from the job's directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := start(t, m, jobs.Spec{Script: `() => require("fs").readFile("data.txt")`, Dir: dir,
		Permissions: builtins.Permissions{Read: builtins.PathPermission{Roots: []string{dir}}}})
	info := waitJob(t, m, name)
	if info.State != jobs.Completed || info.Dir != dir {
		t.Fatalf("%+v", info)
	}
	rs, _ := results(t, m, name, 0)
	if len(rs) != 1 || len(rs[0].Output) != 1 || string(rs[0].Output[0]) != `"from the job's directory"` {
		t.Fatalf("%+v", rs)
	}

	gone := filepath.Join(dir, "gone")
	_, _, err := m.Start(context.Background(), jobs.Spec{Script: `(n) => n`, Dir: gone})
	if !errors.Is(err, jobs.ErrInvalid) || !strings.Contains(err.Error(), gone) || !strings.Contains(err.Error(), "not there") {
		t.Fatalf("start in a directory that is not there: %v", err)
	}
	if _, _, err := m.Start(context.Background(), jobs.Spec{Script: `(n) => n`, Dir: "relative"}); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("a relative Dir: %v", err)
	}
}
