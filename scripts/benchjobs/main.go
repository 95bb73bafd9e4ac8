// Command benchjobs is the Go half of scripts/bench-jobs.sh: it measures
// processes so that the script needs nothing installed. Subcommands:
//
//	benchjobs run RESULT CMD [ARG...]
//	benchjobs proc PID
//	benchjobs watch PID
//
// run runs CMD with this program's stdin, stdout and stderr, writes
// "WALL_S CPU_S MAXRSS_KIB" of it to the file RESULT (CPU is user +
// system; MAXRSS is the child's ru_maxrss) and exits with its status.
//
// proc prints "VMHWM_KIB VMRSS_KIB CPU_S" of a running process from
// /proc: its peak and current resident set, and the CPU time of it and of
// the children it has waited for (utime + stime + cutime + cstime).
//
// watch samples, every sampleEvery until SIGTERM or SIGINT, the
// descendants of PID (the daemon's job processes), and then prints
// "COUNT MAX_VMHWM_KIB MAX_VMRSS_KIB": how many distinct processes it
// saw, and the largest peak and current resident set any one of them
// showed.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sampleEvery is how often watch reads /proc: often enough that a job
// process living a second is seen several times, rarely enough that
// reading the ~100 entries of /proc costs nothing next to the job.
const sampleEvery = 100 * time.Millisecond

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, which
// Linux fixes at 100 for user space on every architecture.
const userHZ = 100

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: benchjobs run RESULT CMD [ARG...] | proc PID | watch PID")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "run":
		os.Exit(runCommand(os.Args[2:]))
	case "proc":
		os.Exit(procCommand(os.Args[2:]))
	case "watch":
		os.Exit(watchCommand(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "benchjobs: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// runCommand is `benchjobs run`. This program stays small (a few MiB), which
// matters: on exec Linux folds the peak RSS of the image being replaced
// into the new one's ru_maxrss, and a child of a Go program starts out
// sharing its parent's memory, so the parent's RSS is the floor of what is
// reported.
func runCommand(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchjobs run RESULT CMD [ARG...]")
		return 2
	}
	cmd := exec.Command(args[1], args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "benchjobs:", err)
		return 1
	}
	_ = cmd.Wait() // the exit status is passed on below
	wall := time.Since(start)
	var cpu time.Duration
	var maxRSS int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		maxRSS = ru.Maxrss
	}
	res := fmt.Sprintf("%.3f %.3f %d\n", wall.Seconds(), cpu.Seconds(), maxRSS)
	if err := os.WriteFile(args[0], []byte(res), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "benchjobs:", err)
		return 1
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		if code < 0 { // killed by a signal
			return 1
		}
		return code
	}
	return 0
}

// procCommand is `benchjobs proc`.
func procCommand(args []string) int {
	pid, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchjobs: proc:", err)
		return 2
	}
	hwm, rss, err := readStatus(pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchjobs: proc:", err)
		return 1
	}
	st, err := readStat(pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchjobs: proc:", err)
		return 1
	}
	fmt.Printf("%d %d %.2f\n", hwm, rss, float64(st.cpuTicks+st.childTicks)/userHZ)
	return 0
}

// watchCommand is `benchjobs watch`.
func watchCommand(args []string) int {
	root, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchjobs: watch:", err)
		return 2
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	w := watcher{seen: map[int]bool{}}
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		w.sample(root)
		select {
		case <-stop:
			w.sample(root)
			fmt.Printf("%d %d %d\n", len(w.seen), w.maxHWM, w.maxRSS)
			return 0
		case <-tick.C:
		}
	}
}

// watcher keeps what watch has seen of a process's descendants.
type watcher struct {
	seen           map[int]bool // pids seen (a pid reused meanwhile counts once)
	maxHWM, maxRSS int64        // KiB, the largest of any one process
}

// sample reads /proc once and folds in the descendants of root.
func (w *watcher) sample(root int) {
	parents := map[int]int{}
	for _, pid := range procPIDs() {
		if st, err := readStat(pid); err == nil {
			parents[pid] = st.ppid
		}
	}
	for _, pid := range descendants(parents, root) {
		hwm, rss, err := readStatus(pid)
		if err != nil {
			continue // ended meanwhile, or a zombie with no memory left
		}
		w.seen[pid] = true
		w.maxHWM = max(w.maxHWM, hwm)
		w.maxRSS = max(w.maxRSS, rss)
	}
}

// descendants returns the processes below root in the tree that parents
// (pid → parent pid) describes, root itself excluded.
func descendants(parents map[int]int, root int) []int {
	children := map[int][]int{}
	for pid, ppid := range parents {
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if c == root { // a cycle can only come from pids reused mid-scan
				continue
			}
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// procPIDs lists the numeric entries of /proc.
func procPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stat is what benchjobs uses of /proc/PID/stat.
type stat struct {
	ppid       int
	cpuTicks   int64 // utime + stime
	childTicks int64 // cutime + cstime: children waited for
}

func readStat(pid int) (stat, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return stat{}, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	return parseStat(string(data))
}

// parseStat parses a /proc/PID/stat line. "pid (comm) state ppid ...":
// comm may hold spaces and parentheses, so fields count from the last ')'.
func parseStat(s string) (stat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("parse stat %q: no ')'", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 of proc(5) (state): ppid is 4, utime..cstime 14..17.
	const ppid, utime, stime, cutime, cstime = 1, 11, 12, 13, 14
	if len(f) <= cstime {
		return stat{}, fmt.Errorf("parse stat %q: %d fields", s, len(f))
	}
	n := make([]int64, cstime+1)
	for _, k := range []int{ppid, utime, stime, cutime, cstime} {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return stat{}, fmt.Errorf("parse stat field %d: %w", k+3, err)
		}
		n[k] = v
	}
	return stat{ppid: int(n[ppid]), cpuTicks: n[utime] + n[stime], childTicks: n[cutime] + n[cstime]}, nil
}

func readStatus(pid int) (hwm, rss int64, err error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	return parseStatus(string(data))
}

// parseStatus returns VmHWM and VmRSS, in KiB, from /proc/PID/status text.
// A process with no memory (a zombie, a kernel thread) has neither line,
// which is an error.
func parseStatus(s string) (hwm, rss int64, err error) {
	var haveHWM, haveRSS bool
	for line := range strings.Lines(s) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmHWM" && key != "VmRSS") {
			continue
		}
		num, _ := strings.CutSuffix(strings.TrimSpace(val), " kB")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse status %s: %w", key, err)
		}
		if key == "VmHWM" {
			hwm, haveHWM = v, true
		} else {
			rss, haveRSS = v, true
		}
	}
	if !haveHWM || !haveRSS {
		return 0, 0, fmt.Errorf("parse status: no VmHWM/VmRSS (no memory of its own)")
	}
	return hwm, rss, nil
}
