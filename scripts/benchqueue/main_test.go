package main

import (
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseCPUTicks(t *testing.T) {
	// comm with a space and a ')' inside, as the kernel prints it.
	line := "4242 (rsh (queue) x) S 17 4242 17 0 -1 4194560 100 0 0 0 250 30 7 5 20 0 9 0 12345 1000000 500 18446744073709551615\n"
	got, err := parseCPUTicks(line)
	if err != nil {
		t.Fatal(err)
	}
	if got != 280 { // utime + stime, not the children's
		t.Fatalf("parseCPUTicks = %d, want 280", got)
	}
	if _, err := parseCPUTicks("4242 (rsh) S 17 1 2"); err == nil {
		t.Fatal("parseCPUTicks of a short line: no error")
	}
}

func TestParseBusyTicks(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseBusyTicks("cpu  100 2 30 5000 70 4 5 6 50 0")
	if err != nil {
		t.Fatal(err)
	}
	if got != 147 { // idle, iowait and guest (already in user) left out
		t.Fatalf("parseBusyTicks = %d, want 147", got)
	}
	if _, err := parseBusyTicks("intr 1 2 3 4 5 6 7 8 9"); err == nil {
		t.Fatal("parseBusyTicks of another line: no error")
	}
}

func pointFor(t *testing.T, workers int, cmd ...string) pointOptions {
	return pointOptions{n: 10, workers: workers, server: os.Getpid(), logs: t.TempDir(), timeout: time.Minute, cmd: cmd}
}

func TestMeasurePointDone(t *testing.T) {
	// The results reach N on the third poll, while the workers still run.
	var polls atomic.Int64
	count := func() (uint64, error) {
		if polls.Add(1) >= 3 {
			return 10, nil
		}
		return 4, nil
	}
	o := pointFor(t, 2, "sh", "-c", "echo started >&2; sleep 0.5")
	p, err := measurePoint(o, count)
	if err != nil {
		t.Fatal(err)
	}
	if p.count != 10 || p.failed != 0 {
		t.Fatalf("count %d, failed %d; want 10, 0", p.count, p.failed)
	}
	if p.done <= 0 || p.exit < p.done {
		t.Fatalf("done %v, exit %v: want 0 < done <= exit", p.done, p.exit)
	}
	if polls.Load() < 3 {
		t.Fatalf("%d polls: done before the count reached N", polls.Load())
	}
	for _, f := range []string{"worker-1.err", "worker-2.err"} {
		data, err := os.ReadFile(o.logs + "/" + f)
		if err != nil || strings.TrimSpace(string(data)) != "started" {
			t.Fatalf("%s: %q, %v; want the worker's stderr", f, data, err)
		}
	}
}

func TestMeasurePointWorkersFail(t *testing.T) {
	// Workers that exit before the count reaches N end the point, and
	// are counted as failed.
	o := pointFor(t, 2, "false")
	p, err := measurePoint(o, func() (uint64, error) { return 3, nil })
	if err != nil {
		t.Fatal(err)
	}
	if p.failed != 2 || p.count != 3 || p.done <= 0 {
		t.Fatalf("failed %d, count %d, done %v; want 2, 3, > 0", p.failed, p.count, p.done)
	}
}

func TestMeasurePointTimeout(t *testing.T) {
	o := pointFor(t, 1, "sleep", "30")
	o.timeout = 200 * time.Millisecond
	if _, err := measurePoint(o, func() (uint64, error) { return 0, nil }); err == nil {
		t.Fatal("a point past its timeout: no error")
	}
}

func TestParsePoint(t *testing.T) {
	o, err := parsePoint([]string{"-url", "nats://127.0.0.1:4222", "-results", "P1_RESULTS", "-n", "5", "-workers", "3", "-server", "1", "--", "rsh", "run", "-t", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if o.n != 5 || o.workers != 3 || strings.Join(o.cmd, " ") != "rsh run -t 2" {
		t.Fatalf("parsePoint = %+v", o)
	}
	if _, err := parsePoint([]string{"-url", "nats://x", "-results", "R", "-n", "5", "-server", "1"}); err == nil {
		t.Fatal("parsePoint without a command: no error")
	}
}
