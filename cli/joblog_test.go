package cli

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runspaces/rsh/internal/testutil"
	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// A line parses back to what was written, whether rsh wrote it or it was
// edited by hand; a line cut short anywhere (a crash in mid-write) does not
// parse at all.
func TestParseJoblogLine(t *testing.T) {
	r := &vm.Result{Seq: 1234, Input: json.RawMessage(`"host7"`), Status: vm.Exception, Attempts: 2,
		Duration: 12400 * time.Microsecond, StartedAt: time.Date(2025, 3, 4, 5, 6, 7, 8000, time.UTC)}
	line := appendJoblogLine(nil, r, &timeStamps{})
	want := joblogEntry{key: inputHash(r.Input), seq: 1234, success: false}
	if e, ok := parseJoblogLine(line); !ok || e != want {
		t.Fatalf("%s: parsed %+v %v, want %+v", line, e, ok, want)
	}
	var doc map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if doc["durationMs"] != 12.4 || doc["startedAt"] != "2025-03-04T05:06:07.000008Z" || doc["attempts"] != 2.0 {
		t.Errorf("line %s", line)
	}
	for i := 1; i < len(line)-1; i++ {
		if e, ok := parseJoblogLine(line[:i]); ok {
			t.Errorf("%q (cut at %d) parsed as %+v", line[:i], i, e)
		}
	}
	h := hex.EncodeToString(want.key[:])
	edited := `{ "status": "Success", "hash": "` + h + `", "seq": 9 }`
	if e, ok := parseJoblogLine([]byte(edited)); !ok || e != (joblogEntry{key: want.key, seq: 9, success: true}) {
		t.Errorf("%s: parsed %+v %v", edited, e, ok)
	}
	for _, bad := range []string{`{"seq":1,"hash":"abc","status":"Success"}`, `{"seq":1,"hash":"` + h[:30] + `zz","status":"Success"}`, `not json}`} {
		if e, ok := parseJoblogLine([]byte(bad)); ok {
			t.Errorf("%s parsed as %+v", bad, e)
		}
	}
}

// timeStamps writes exactly what time.RFC3339Nano does, in any location,
// across seconds, and outside the years it caches.
func TestTimeStamps(t *testing.T) {
	kolkata := time.FixedZone("IST", 5*3600+1800)
	west := time.FixedZone("", -7*3600)
	var s timeStamps
	base := time.Date(2025, 12, 31, 23, 59, 58, 0, time.UTC)
	for _, loc := range []*time.Location{time.UTC, kolkata, west, time.Local, time.UTC} {
		for _, ns := range []int{0, 1, 10, 120, 999_999_999, 500_000_000, 1_000_000_000, 1_000_000_001, 2_345_600_000} {
			tm := base.Add(time.Duration(ns)).In(loc)
			if got, want := string(s.append(nil, tm)), tm.Format(time.RFC3339Nano); got != want {
				t.Errorf("%v: %s, want %s", tm, got, want)
			}
		}
	}
	for _, tm := range []time.Time{{}, time.Date(10000, 1, 1, 0, 0, 0, 5, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Now()} {
		if got, want := string(s.append([]byte("x"), tm)), "x"+tm.Format(time.RFC3339Nano); got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}

// appendMillis writes what strconv.AppendFloat does for microseconds over
// a thousand, for any duration under 70 years (2^41 ms, where a float64
// still tells 0.001 ms apart).
func TestAppendMillis(t *testing.T) {
	for _, us := range []int64{0, 1, 10, 100, 999, 1000, 1001, 12400, 123456789, -1500, 1<<41*1000 - 1} {
		got := string(appendMillis(nil, us))
		want := strconv.FormatFloat(float64(us)/1000, 'f', -1, 64)
		if got != want {
			t.Errorf("%d µs: %s, want %s", us, got, want)
		}
	}
}

// writeLog writes a job log with a line per result.
func writeLog(t testing.TB, path string, results []*vm.Result) {
	t.Helper()
	var b []byte
	var stamps timeStamps
	for _, r := range results {
		b = appendJoblogLine(b, r, &stamps)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// numbered turns values into items, as the input reader would.
func numbered(values ...string) []pool.Item {
	items := make([]pool.Item, len(values))
	for i, v := range values {
		items[i] = pool.Item{Value: v}
	}
	return items
}

// runResumed passes items through a resume filter on the log at path and
// returns the seq and value of each item that is to run.
func runResumed(t *testing.T, path string, onlyFailed bool, items []pool.Item) (run []string, skipped int64) {
	t.Helper()
	l, err := readJoblog(path, onlyFailed)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	seq := func(yield func(pool.Item) bool) {
		for _, it := range items {
			if !yield(it) {
				return
			}
		}
	}
	for it := range l.filter(seq, onlyFailed, &n) {
		v := it.Value
		if raw, ok := v.(json.RawMessage); ok {
			v = string(raw)
		}
		run = append(run, fmt.Sprintf("%d:%v", it.Seq, v))
	}
	return run, n.Load()
}

func result(seq int64, input string, status vm.Status) *vm.Result {
	return &vm.Result{Seq: seq, Input: vm.JSONString(input), Status: status, Attempts: 1}
}

// An input that appears k times is k items: the successes in the log are
// matched with its occurrences in input order, and what remains runs under
// its own position.
func TestResumeCountsOccurrences(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	writeLog(t, path, []*vm.Result{
		result(1, "same", vm.Success), result(2, "other", vm.Exception), result(3, "same", vm.Success),
	})
	items := numbered("same", "other", "same", "same", "new", "same")
	run, skipped := runResumed(t, path, false, items)
	if got := strings.Join(run, " "); got != "2:other 4:same 5:new 6:same" || skipped != 2 {
		t.Errorf("--resume ran %q, skipped %d", got, skipped)
	}
	// --resume-failed: only the occurrence that failed.
	run, skipped = runResumed(t, path, true, items)
	if got := strings.Join(run, " "); got != "2:other" || skipped != 5 {
		t.Errorf("--resume-failed ran %q, skipped %d", got, skipped)
	}
}

// --resume-failed runs each failed occurrence once, and not one that
// failed and then succeeded at the same position: the success at seq 2
// matches the occurrence at seq 2, so 1 and 3 are the ones still failed.
func TestResumeFailedOccurrences(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	writeLog(t, path, []*vm.Result{
		result(1, "x", vm.Exception), result(2, "x", vm.Timeout), result(3, "x", vm.Exception),
		result(1, "x", vm.Exception), // failed again on a first --resume-failed
		result(2, "x", vm.Success),
	})
	run, _ := runResumed(t, path, true, numbered("x", "x", "x", "x"))
	if got := strings.Join(run, " "); got != "1:x 3:x" {
		t.Errorf("--resume-failed ran %q, want the two occurrences still failed", got)
	}
}

// Batches keep the position of their first record, counting the records
// of the batches skipped before them.
func TestResumeBatchSeqs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	batch := func(vals ...string) pool.Item {
		raw := json.RawMessage(`["` + strings.Join(vals, `","`) + `"]`)
		return pool.Item{Value: raw, Input: raw, Count: len(vals)}
	}
	items := []pool.Item{batch("a", "b", "c"), batch("d", "e", "f"), batch("g")}
	writeLog(t, path, []*vm.Result{{Seq: 4, Input: items[1].Input, Status: vm.Success, BatchSize: 3}})
	run, skipped := runResumed(t, path, false, items)
	if got := strings.Join(run, " "); got != `1:["a","b","c"] 7:["g"]` || skipped != 3 {
		t.Errorf("ran %s, skipped %d", got, skipped)
	}
}

// A line that is not JSON was logged as a JSON string (InvalidInput), and
// is found as one.
func TestResumeInvalidInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	writeLog(t, path, []*vm.Result{result(1, "{nope", vm.InvalidInput)})
	raw := json.RawMessage("{nope")
	run, _ := runResumed(t, path, true, []pool.Item{{Value: raw, Input: raw}, {Value: "fine"}})
	if got := strings.Join(run, " "); got != "1:{nope" {
		t.Errorf("--resume-failed ran %q", got)
	}
}

// Opening a job log whose last line was cut short ends that line, so the
// next line is whole and the cut one is skipped.
func TestJoblogTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	writeLog(t, path, []*vm.Result{result(1, "a", vm.Success), result(2, "b", vm.Success)})
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, data[:len(data)-20], 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := openJoblog(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.write(appendJoblogLine(nil, result(3, "c", vm.Success), &timeStamps{})); err != nil {
		t.Fatal(err)
	}
	j.close()
	run, _ := runResumed(t, path, false, numbered("a", "b", "c"))
	if got := strings.Join(run, " "); got != "2:b" {
		t.Errorf("after a torn line, --resume ran %q, want only the torn one (2:b)", got)
	}
}

// bytesPerDistinctInput bounds the memory a loaded job log holds per
// distinct input: a 16-byte key and a count in a hash map, with the map's
// slack. A map of strings holding the whole lines, as resume used to,
// takes several times this.
const bytesPerDistinctInput = 64

// Loading a job log holds memory in proportion to its distinct inputs,
// not to its lines.
func TestReadJoblogMemory(t *testing.T) {
	const n = 100_000
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		distinct int
	}{{"distinct", n}, {"repeated", 1}} {
		path := filepath.Join(dir, tc.name)
		writeJoblogLines(t, path, n, tc.distinct)
		held := heldBy(func() any {
			l, err := readJoblog(path, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.once)+len(l.repeated) != tc.distinct {
				t.Fatalf("%d inputs, want %d", len(l.once)+len(l.repeated), tc.distinct)
			}
			return l
		})
		if limit := uint64(bytesPerDistinctInput*tc.distinct + 64<<10); held > limit {
			t.Errorf("%s: %d lines held %d bytes, want at most %d", tc.name, n, held, limit)
		}
	}
}

// writeJoblogLines writes a job log of n successful items with distinct
// different inputs among them.
func writeJoblogLines(t testing.TB, path string, n, distinct int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	var stamps timeStamps
	r := &vm.Result{Status: vm.Success, Attempts: 1, StartedAt: time.Now(), Duration: time.Millisecond}
	for i := range n {
		r.Seq = int64(i + 1)
		r.Input = strconv.AppendInt(r.Input[:0], int64(i%distinct), 10)
		b = appendJoblogLine(b, r, &stamps)
		if len(b) > 1<<20 || i == n-1 {
			if _, err := f.Write(b); err != nil {
				t.Fatal(err)
			}
			b = b[:0]
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// heldBy returns the heap that what f returns keeps alive.
func heldBy(f func() any) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// BenchmarkReadJoblog loads a job log of two million lines, of distinct
// inputs and of one input repeated, and reports the heap the loaded log
// holds, the peak heap while loading (sampled every millisecond) and all
// that loading allocated.
func BenchmarkReadJoblog(b *testing.B) {
	const n = 2_000_000
	dir := b.TempDir()
	for _, tc := range []struct {
		name     string
		distinct int
	}{{"distinct", n}, {"repeated", 1}} {
		path := filepath.Join(dir, tc.name)
		writeJoblogLines(b, path, n, tc.distinct)
		b.Run(tc.name, func(b *testing.B) {
			var held, peak, allocated uint64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				stop := make(chan struct{})
				peaks := testutil.PeakHeap(stop)
				l, err := readJoblog(path, false)
				if err != nil {
					b.Fatal(err)
				}
				close(stop)
				runtime.ReadMemStats(&after)
				allocated = after.TotalAlloc - before.TotalAlloc
				if p := <-peaks; p > before.HeapAlloc {
					peak = max(peak, p-before.HeapAlloc)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				held = after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
				runtime.KeepAlive(l)
			}
			b.ReportMetric(float64(held)/(1<<20), "held-MB")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(allocated)/(1<<20), "alloc-MB")
		})
	}
}

func TestDropTornLine(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"a\nb\n", "a\nb\n"},
		{"a\nb\n{\"se", "a\nb\n"},
		{"no newline at all", ""},
		{"a\n" + long, "a\n"},
		{long + "\n" + long, long + "\n"},
	} {
		path := filepath.Join(t.TempDir(), "out")
		if err := os.WriteFile(path, []byte(c.in), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		n, err := dropTornLine(f)
		f.Close()
		got, _ := os.ReadFile(path)
		if err != nil || string(got) != c.want || n != int64(len(c.in)-len(c.want)) {
			t.Errorf("%.20q: got %.20q (%d removed, %v), want %.20q", c.in, got, n, err, c.want)
		}
	}
}

// A success is matched with the occurrence at its own seq: an input that
// appears twice, done only at its second position, runs again at its
// first, so the log ends with one success per position, none twice. A
// success whose position holds something else now (the input was edited)
// stands for the next occurrence of its input after that position.
func TestResumeMatchesSeqs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	writeLog(t, path, []*vm.Result{result(2, "x", vm.Success), result(4, "y", vm.Success)})
	run, skipped := runResumed(t, path, false, numbered("x", "x", "z", "y"))
	if got := strings.Join(run, " "); got != "1:x 3:z" || skipped != 2 {
		t.Errorf("same input: --resume ran %q, skipped %d", got, skipped)
	}
	// Edited input: x's success at 2 (where w is now) stands for the x at
	// 3; y's at 4 still matches the y at 4.
	run, skipped = runResumed(t, path, false, numbered("x", "w", "x", "y", "y"))
	if got := strings.Join(run, " "); got != "1:x 2:w 5:y" || skipped != 2 {
		t.Errorf("edited input: --resume ran %q, skipped %d", got, skipped)
	}
}

// An occurrence that failed at its position runs again even when a later
// occurrence of the same input succeeded: its position has no success,
// so the input there has not changed. A success at a position that now
// holds another input stands for the next occurrence of its own input,
// even one that comes before its old position (reordered input).
func TestResumeFailedThenLaterSuccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	writeLog(t, path, []*vm.Result{result(1, "x", vm.Exception), result(2, "x", vm.Success)})
	run, _ := runResumed(t, path, false, numbered("x", "x"))
	if got := strings.Join(run, " "); got != "1:x" {
		t.Errorf("--resume ran %q, want the failed occurrence, 1:x", got)
	}
	// Reordered: a (done at 1) and c (done at 3) trade places.
	writeLog(t, path, []*vm.Result{result(1, "a", vm.Success), result(3, "c", vm.Success)})
	run, _ = runResumed(t, path, false, numbered("c", "b", "a"))
	if got := strings.Join(run, " "); got != "2:b" {
		t.Errorf("reordered: --resume ran %q, want only 2:b", got)
	}
}

// A resumed run removes from its output file what a killed run wrote past
// the output the job log claimed for that file (the log's last output-end
// line for it): those items run again, so their output would be there
// twice. Another file, or one cut shorter since, is left alone.
func TestDropUnclaimed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	if err := os.WriteFile(path, []byte("a\nb\nc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, ok := regularFileID(f)
	if !ok {
		t.Fatal("not a regular file")
	}
	// The log line round-trips.
	gotID, end, ok := parseOutputEnd(appendOutputEnd(nil, id, 2))
	if !ok || gotID != id || end != 2 {
		t.Fatalf("parseOutputEnd: %v %d %v", gotID, end, ok)
	}
	other := fileID{dev: id.dev, ino: id.ino + 1}
	if n, err := dropUnclaimed(f, map[fileID]int64{other: 2}); err != nil || n != 0 {
		t.Fatalf("another file's end: removed %d, %v", n, err)
	}
	if n, err := dropUnclaimed(f, map[fileID]int64{id: 10}); err != nil || n != 0 {
		t.Fatalf("an end past the file: removed %d, %v", n, err)
	}
	if n, err := dropUnclaimed(f, map[fileID]int64{id: 2}); err != nil || n != 4 {
		t.Fatalf("removed %d, %v; want 4", n, err)
	}
	if got, _ := os.ReadFile(path); string(got) != "a\n" {
		t.Fatalf("file %q, want %q", got, "a\n")
	}
}

// With stdout a regular file, each group of job-log lines is followed, in
// the same write, by an output-end line giving the file's size once the
// output they claim was written.
func TestOutputEndLines(t *testing.T) {
	dir := t.TempDir()
	outPath, logPath := filepath.Join(dir, "out"), filepath.Join(dir, "log")
	f, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	jl, err := openJoblog(logPath)
	if err != nil {
		t.Fatal(err)
	}
	o := newOutput(Env{Stdout: f, Stderr: io.Discard}, &runOptions{out: "values"}, jl, nil, nil)
	for i := 1; i <= 3; i++ {
		o.result(&vm.Result{Seq: int64(i), Status: vm.Success, Input: json.RawMessage(strconv.Itoa(i)), Output: []json.RawMessage{json.RawMessage(strconv.Itoa(i * 10))}})
	}
	o.close()
	jl.close()
	l, err := readJoblog(logPath, false)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := regularFileID(f)
	if end, ok := l.outputEnds[id]; !ok || end != int64(len("10\n20\n30\n")) {
		t.Fatalf("output end %d (%v), want %d", end, ok, len("10\n20\n30\n"))
	}
}
