package main

import (
	"os"
	"slices"
	"testing"
)

func TestParseStat(t *testing.T) {
	// comm with a space and a ')' inside, as the kernel prints it.
	line := "4242 (rsh (job) x) S 17 4242 17 0 -1 4194560 100 0 0 0 250 30 7 5 20 0 9 0 12345 1000000 500 18446744073709551615\n"
	got, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := stat{ppid: 17, cpuTicks: 280, childTicks: 12}
	if got != want {
		t.Fatalf("parseStat = %+v, want %+v", got, want)
	}
	if _, err := parseStat("4242 (rsh) S 17 1 2"); err == nil {
		t.Fatal("parseStat of a short line: no error")
	}
}

func TestParseStatus(t *testing.T) {
	text := "Name:\trsh\nVmPeak:\t  900000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   40000 kB\nThreads:\t9\n"
	hwm, rss, err := parseStatus(text)
	if err != nil {
		t.Fatal(err)
	}
	if hwm != 81234 || rss != 40000 {
		t.Fatalf("parseStatus = %d, %d; want 81234, 40000", hwm, rss)
	}
	// A zombie's status has no Vm lines: it must not count as 0 KiB.
	if _, _, err := parseStatus("Name:\trsh\nState:\tZ (zombie)\n"); err == nil {
		t.Fatal("parseStatus of a zombie: no error")
	}
}

func TestDescendants(t *testing.T) {
	// 1 ─ 10 (daemon) ─ 11 (job) ─ 12 (its worker)
	//   │             └ 13 (job)
	//   └ 20 (unrelated) ─ 21
	parents := map[int]int{10: 1, 11: 10, 12: 11, 13: 10, 20: 1, 21: 20}
	got := descendants(parents, 10)
	slices.Sort(got)
	if want := []int{11, 12, 13}; !slices.Equal(got, want) {
		t.Fatalf("descendants = %v, want %v", got, want)
	}
	if got := descendants(parents, 13); len(got) != 0 {
		t.Fatalf("descendants of a leaf = %v, want none", got)
	}
}

// TestWatcherSeesOwnChild runs a real child and checks that a sample of
// this process's descendants finds it with its memory.
func TestWatcherSeesOwnChild(t *testing.T) {
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "5"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Kill(); _, _ = p.Wait() }()
	w := watcher{seen: map[int]bool{}}
	w.sample(os.Getpid())
	if !w.seen[p.Pid] || w.maxHWM == 0 || w.maxRSS == 0 {
		t.Fatalf("watcher saw %v, max VmHWM %d KiB, VmRSS %d KiB; want child %d with memory", w.seen, w.maxHWM, w.maxRSS, p.Pid)
	}
}
