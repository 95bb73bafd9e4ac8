package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of /proc/stat: USER_HZ, 100 on every Linux that
// Go supports on x86 and arm.
const clockTick = 10 * time.Millisecond

// loadMark is a point in time from which the CPU used by other processes
// is measured: the machine's busy time, and this process's and its
// waited-for children's CPU time.
type loadMark struct {
	at   time.Time
	busy time.Duration // all CPUs, from /proc/stat
	ours time.Duration // this process and its children
	ok   bool
}

func markLoad() loadMark {
	m := loadMark{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	// cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return m
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return m
		}
		ticks += v
	}
	m.busy = time.Duration(ticks) * clockTick
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			return m
		}
		m.ours += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	m.ok = true
	return m
}

// otherLoad describes how busy the machine was with other processes since
// m: the CPU time not spent by the harness or the commands it ran, as a
// number of busy cores on average.
func otherLoad(m loadMark) string {
	now := markLoad()
	if !m.ok || !now.ok {
		return "CPU used by other processes: unknown (no /proc/stat)"
	}
	wall := now.at.Sub(m.at)
	others := (now.busy - m.busy) - (now.ours - m.ours)
	cores := max(0, others.Seconds()/wall.Seconds())
	return fmt.Sprintf("other processes kept %.2f cores busy on average during the timed runs (the machine's busy CPU time less that of the harness and its commands)", cores)
}
