package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/runspaces/rsh/cli"
)

// numbersInput is the lines 1..n.
func numbersInput(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// logLine is what the tests read from a job-log line.
type logLine struct {
	Seq    int64  `json:"seq"`
	Hash   string `json:"hash"`
	Status string `json:"status"`
}

// hashOf is the job log's hash of an input given as JSON.
func hashOf(input string) string {
	sum := sha256.Sum256([]byte(input))
	return hex.EncodeToString(sum[:16])
}

// readLog returns the whole lines of the job log at path.
func readLog(t *testing.T, path string) []logLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var lines []logLine
	for line := range strings.Lines(string(data)) {
		if !strings.HasSuffix(line, "\n") {
			break // being written
		}
		var l logLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("job log line %q: %v", line, err)
		}
		lines = append(lines, l)
	}
	return lines
}

// claimedNumbers checks that each line of the job log at path names one of
// the numbers 1..n at its own position (seq) and returns the numbers the
// log says succeeded.
func claimedNumbers(t *testing.T, path string, n int) []int {
	t.Helper()
	byHash := map[string]int{}
	for i := 1; i <= n; i++ {
		byHash[hashOf(strconv.Itoa(i))] = i
	}
	var claimed []int
	for _, l := range readLog(t, path) {
		i, ok := byHash[l.Hash]
		if !ok || int64(i) != l.Seq {
			t.Fatalf("job log line seq %d hash %s: not the input at that position", l.Seq, l.Hash)
		}
		if l.Status == "Success" {
			claimed = append(claimed, i)
		}
	}
	return claimed
}

// wholeLines returns the complete lines written to an output.
func wholeLines(out []byte) map[string]int {
	lines := map[string]int{}
	for line := range strings.Lines(string(out)) {
		if strings.HasSuffix(line, "\n") {
			lines[strings.TrimSuffix(line, "\n")]++
		}
	}
	return lines
}

// claimChecker is a stdout that, at each write, checks that every item the
// job log claims already has its output in what was written before: the
// job log never gets ahead of the output.
type claimChecker struct {
	t      *testing.T
	log    string
	n      int
	mu     sync.Mutex
	out    []byte
	writes int
}

func (c *claimChecker) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.check()
	c.out = append(c.out, p...)
	c.writes++
	return len(p), nil
}

func (c *claimChecker) check() {
	have := wholeLines(c.out)
	for _, i := range claimedNumbers(c.t, c.log, c.n) {
		if have[strconv.Itoa(i)] == 0 {
			c.t.Fatalf("the job log claims %d before its output was written", i)
		}
	}
}

// A job-log line is written only after its item's output reached stdout:
// when the output buffer fills (fast items) and when it is written on time
// (slow items).
func TestJoblogFollowsOutput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		script string
	}{
		{"fast", 20_000, "(n) => n"},
		{"slow", 60, "(n) => { sleep(15); return n }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "log")
			out := &claimChecker{t: t, log: log, n: tc.n}
			var stderr bytes.Buffer
			code := cli.Main(context.Background(), []string{"run", "-t", "4", "--joblog", log, "-e", tc.script},
				cli.Env{Stdin: strings.NewReader(numbersInput(tc.n)), Stdout: out, Stderr: &stderr})
			if code != cli.ExitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			out.check()
			if got := len(claimedNumbers(t, log, tc.n)); got != tc.n {
				t.Errorf("the job log has %d successes, want %d", got, tc.n)
			}
			if out.writes < 2 {
				t.Errorf("%d writes: the output was not written in groups", out.writes)
			}
		})
	}
}

// failingWriter takes limit bytes, then fails every write with err (the
// write that crosses the limit is written in part).
type failingWriter struct {
	limit int
	err   error
	mu    sync.Mutex
	out   []byte
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	room := w.limit - len(w.out)
	if room >= len(p) {
		w.out = append(w.out, p...)
		return len(p), nil
	}
	room = max(room, 0)
	w.out = append(w.out, p[:room]...)
	return room, w.err
}

// A write to stdout that fails stops the run: it is reported once, the
// exit code is 1, and the job log claims no item whose output was not
// written whole.
func TestOutputWriteFails(t *testing.T) {
	const n = 200_000
	log := filepath.Join(t.TempDir(), "log")
	out := &failingWriter{limit: 100_003, err: &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}}
	var stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"run", "--joblog", log, "-e", "(n) => n"},
		cli.Env{Stdin: strings.NewReader(numbersInput(n)), Stdout: out, Stderr: &stderr})
	if code != cli.ExitItemsFailed {
		t.Errorf("exit %d, want %d", code, cli.ExitItemsFailed)
	}
	if got, want := stderr.String(), "rsh: writing output: no space left on device; stopping\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	have := wholeLines(out.out)
	claimed := claimedNumbers(t, log, n)
	for _, i := range claimed {
		if have[strconv.Itoa(i)] == 0 {
			t.Fatalf("the job log claims %d, whose output was not written", i)
		}
	}
	if len(claimed) >= n {
		t.Errorf("the job log claims all %d items", len(claimed))
	}
}

// /dev/full: the run stops at the first write, says so, and claims
// nothing.
func TestOutputDevFull(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	log := filepath.Join(t.TempDir(), "log")
	var stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"run", "--joblog", log, "--out", "records", "-e", "(n) => n"},
		cli.Env{Stdin: strings.NewReader(numbersInput(1000)), Stdout: full, Stderr: &stderr})
	if code != cli.ExitItemsFailed {
		t.Errorf("exit %d, want %d", code, cli.ExitItemsFailed)
	}
	if got := stderr.String(); got != "rsh: writing output: no space left on device; stopping\n" {
		t.Errorf("stderr %q", got)
	}
	if lines := readLog(t, log); len(lines) != 0 {
		t.Errorf("the job log claims %d items", len(lines))
	}
}

// A reader that goes away (| head -1) ends the run quietly with 141, and
// the job log claims only what was written before.
func TestBrokenPipe(t *testing.T) {
	const n = 200_000
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	first := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		first <- line
		r.Close()
	}()
	log := filepath.Join(t.TempDir(), "log")
	var stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"run", "-k", "--joblog", log, "-e", "(n) => n"},
		cli.Env{Stdin: strings.NewReader(numbersInput(n)), Stdout: w, Stderr: &stderr})
	if code != cli.ExitBrokenPipe {
		t.Errorf("exit %d, want %d", code, cli.ExitBrokenPipe)
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr %q, want nothing", stderr.String())
	}
	if line := <-first; line != "1\n" {
		t.Errorf("first line %q", line)
	}
	if claimed := claimedNumbers(t, log, n); len(claimed) >= n {
		t.Errorf("the job log claims all %d items", len(claimed))
	}
}

// A job log or summary that cannot be written stops the run (the job log)
// or fails it (the summary, written at the end), with exit code 1.
func TestSideFilesFail(t *testing.T) {
	for _, tc := range []struct {
		flag, want string
	}{
		{"--joblog", "rsh: writing the job log /dev/full: no space left on device; stopping\n"},
		{"--summary-json", "rsh: --summary-json /dev/full: no space left on device\n"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cli.Main(context.Background(), []string{"run", tc.flag, "/dev/full", "-e", "(n) => n"},
				cli.Env{Stdin: strings.NewReader(numbersInput(100)), Stdout: &stdout, Stderr: &stderr})
			if code != cli.ExitItemsFailed {
				t.Errorf("exit %d, want %d", code, cli.ExitItemsFailed)
			}
			if stderr.String() != tc.want {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.want)
			}
		})
	}
}

// runRecords runs the command over input with --out records and returns
// the records.
func runRecords(t *testing.T, input string, args ...string) []map[string]any {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cli.Main(context.Background(), append([]string{"run", "--out", "records"}, args...),
		cli.Env{Stdin: strings.NewReader(input), Stdout: &stdout, Stderr: &stderr})
	var recs []map[string]any
	for line := range strings.Lines(stdout.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// seqs lists the records' seqs.
func seqs(recs []map[string]any) string {
	var s []string
	for _, r := range recs {
		s = append(s, fmt.Sprint(r["seq"]))
	}
	return strings.Join(s, " ")
}

// A resumed run reports each item under its position in the input, as an
// uninterrupted run would, batches included, and the job log never gives
// one seq to two inputs.
func TestResumeKeepsSeqs(t *testing.T) {
	const n = 12
	input := numbersInput(n)
	for _, tc := range []struct {
		name    string
		args    []string
		failing string
		want    string
	}{
		{"items", nil, "(n) => { if (n % 3 == 0) throw new Error('no'); return n }", "3 6 9 12"},
		{"batches", []string{"--batch-size", "2"}, "(a) => { if (a[0] % 4 == 1) throw new Error('no'); return a }", "1 5 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "log")
			args := append([]string{"-k", "--joblog", log}, tc.args...)
			runRecords(t, input, append(args, "-e", tc.failing)...)
			recs := runRecords(t, input, append(args, "--resume", "-e", "(x) => x")...)
			if got := seqs(recs); got != tc.want {
				t.Errorf("resumed seqs %q, want %q", got, tc.want)
			}
			hashes := map[float64]string{}
			for _, l := range readLog(t, log) {
				if h, ok := hashes[float64(l.Seq)]; ok && h != l.Hash {
					t.Errorf("seq %d names two inputs in the job log", l.Seq)
				}
				hashes[float64(l.Seq)] = l.Hash
			}
		})
	}
}

// An input that appears 500 times runs until it has 500 successes: a
// resume after 76 of them runs the other 424, as items 77 to 500.
func TestResumeRepeatedInput(t *testing.T) {
	same := strings.Repeat("same\n", 500)
	log := filepath.Join(t.TempDir(), "log")
	runRecords(t, strings.Repeat("same\n", 76), "--joblog", log, "-e", "(x) => x")
	recs := runRecords(t, same, "-k", "--joblog", log, "--resume", "-e", "(x) => x")
	if len(recs) != 424 {
		t.Fatalf("resumed %d items, want 424", len(recs))
	}
	if recs[0]["seq"] != 77.0 || recs[423]["seq"] != 500.0 {
		t.Errorf("resumed seqs %v to %v, want 77 to 500", recs[0]["seq"], recs[423]["seq"])
	}
	if recs := runRecords(t, same, "--joblog", log, "--resume", "-e", "(x) => x"); len(recs) != 0 {
		t.Errorf("a second resume ran %d items", len(recs))
	}
}
