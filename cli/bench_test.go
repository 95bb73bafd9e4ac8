package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/runspaces/rsh/cli"
	"github.com/runspaces/rsh/internal/testutil"
)

func benchInput(n int, line func(i int) string) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		b.WriteString(line(i))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// benchRun runs the command over input once per iteration and reports
// items per second.
func benchRun(b *testing.B, input []byte, items int, args ...string) {
	b.Helper()
	var stderr bytes.Buffer
	for b.Loop() {
		stderr.Reset()
		code := cli.Main(context.Background(), append([]string{"run"}, args...),
			cli.Env{Stdin: bytes.NewReader(input), Stdout: io.Discard, Stderr: &stderr})
		if code != cli.ExitOK {
			b.Fatalf("exit %d: %s", code, stderr.String())
		}
	}
	b.ReportMetric(float64(items)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkTrivial is the per-item overhead of the whole command:
// (n) => n * n over numbers, output discarded.
func BenchmarkTrivial(b *testing.B) {
	const n = 200_000
	input := benchInput(n, strconv.Itoa)
	benchRun(b, input, n, "-e", "(n) => n * n")
}

// BenchmarkTrivialOrdered is BenchmarkTrivial with --keep-order.
func BenchmarkTrivialOrdered(b *testing.B) {
	const n = 200_000
	input := benchInput(n, strconv.Itoa)
	benchRun(b, input, n, "-k", "-e", "(n) => n * n")
}

// BenchmarkJSON transforms ~200-byte NDJSON objects: add a field, drop one.
func BenchmarkJSON(b *testing.B) {
	const n = 50_000
	input := benchInput(n, func(i int) string {
		return fmt.Sprintf(`{"id":%d,"name":"user%d","email":"user%d@example.com","active":%v,"score":%d.5,"tags":["a","b","c"],"address":{"city":"Springfield","zip":"%05d"},"note":"%s"}`,
			i, i, i, i%2 == 0, i%100, i%100000, strings.Repeat("x", 20))
	})
	benchRun(b, input, n, "--in", "json", "-e", "(o) => { o.seen = true; delete o.note; return o }")
}

// BenchmarkRecords is BenchmarkTrivial with --out records.
func BenchmarkRecords(b *testing.B) {
	const n = 100_000
	input := benchInput(n, strconv.Itoa)
	benchRun(b, input, n, "--out", "records", "-e", "(n) => n * n")
}

// BenchmarkStartup is the in-process part of `rsh run -e 'x => x'` on empty
// input: flags, compile, the first runspace, output set-up and tear-down.
func BenchmarkStartup(b *testing.B) {
	benchRun(b, nil, 0, "-e", "x => x")
}

// BenchmarkStream pushes 10 million lines through the command and reports
// the peak heap: flat for an unordered run, and bounded by the reorder
// window for --keep-order even when the first item is slow.
func BenchmarkStream(b *testing.B) {
	const n = 10_000_000
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unordered", []string{"-e", "(n) => n"}},
		{"ordered-slow-first", []string{"-k", "-e", "(n) => { if (n === 1) sleep(2000); return n }"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				runtime.GC()
				resetPeakRSS()
				stop := make(chan struct{})
				peak := testutil.PeakHeap(stop)
				var stderr bytes.Buffer
				code := cli.Main(context.Background(), append([]string{"run"}, tc.args...),
					cli.Env{Stdin: &lineGen{n: n}, Stdout: io.Discard, Stderr: &stderr})
				close(stop)
				if code != cli.ExitOK {
					b.Fatalf("exit %d: %s", code, stderr.String())
				}
				b.ReportMetric(float64(<-peak)/(1<<20), "peak-heap-MB")
				if rss := peakRSS(); rss > 0 {
					b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB")
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

// resetPeakRSS resets the process's peak resident set (Linux: writing 5 to
// /proc/self/clear_refs), so that peakRSS measures from here.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns the process's peak resident set in bytes (VmHWM), or 0
// where /proc is not available.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkJoblog is the cost of --joblog: a million trivial items with and
// without it (the job log in a temporary directory, output discarded),
// in items per second and CPU time (user and system) per item. The target
// is at most 1.3 times the run without it.
func BenchmarkJoblog(b *testing.B) {
	const n = 1_000_000
	input := benchInput(n, strconv.Itoa)
	for _, joblog := range []bool{false, true} {
		b.Run(map[bool]string{false: "without", true: "with"}[joblog], func(b *testing.B) {
			dir := b.TempDir()
			cpu := testutil.CPUTime()
			for i := 0; b.Loop(); i++ {
				args := []string{"-e", "(n) => n * n"}
				if joblog {
					log := filepath.Join(dir, fmt.Sprintf("log%d.ndjson", i))
					args = append(args, "--joblog", log)
				}
				runOnce(b, input, args...)
				if joblog {
					// Removed at once, so that the next run writes to
					// page cache that was used before: on this VM,
					// memory touched for the first time costs several
					// times as much to write to as memory reused.
					os.Remove(args[len(args)-1])
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
			b.ReportMetric(float64(testutil.CPUTime()-cpu)/float64(n*b.N), "cpu-ns/item")
		})
	}
}

// runOnce runs the command over input once and fails b unless it succeeds.
func runOnce(b *testing.B, input []byte, args ...string) {
	b.Helper()
	var stderr bytes.Buffer
	code := cli.Main(context.Background(), append([]string{"run"}, args...),
		cli.Env{Stdin: bytes.NewReader(input), Stdout: io.Discard, Stderr: &stderr})
	if code != cli.ExitOK {
		b.Fatalf("exit %d: %s", code, stderr.String())
	}
}
