package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// proc names one process for as long as it lives: a pid and its start
// time, so that a pid used again by another process is not mistaken for
// it.
type proc struct {
	pid   int
	start uint64 // in clock ticks after boot, field 22 of /proc/PID/stat
}

// procStat is what the checks read of /proc/PID/stat.
type procStat struct {
	ppid  int
	state byte // R, S, D, Z...
	start uint64
}

// statOf reads /proc/PID/stat; ok is false if the process is gone.
func statOf(pid int) (st procStat, ok bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return st, false
	}
	return parseStat(string(data))
}

// parseStat parses the text of /proc/PID/stat: "pid (comm) state ppid
// ...". comm may hold spaces and parentheses, so the fields are counted
// from the last ')'.
func parseStat(s string) (st procStat, ok bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return st, false
	}
	f := strings.Fields(s[i+1:])
	// After comm: state is field 3 of the line, ppid 4, starttime 22.
	const fields = 20
	if len(f) < fields || len(f[0]) != 1 {
		return st, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return st, false
	}
	return procStat{ppid: ppid, state: f[0][0], start: start}, true
}

// alive reports whether p still runs: the same process (not a new one
// with its pid) and not a zombie, which has ended and waits only to be
// reaped by whoever inherited it.
func (p proc) alive() bool {
	st, ok := statOf(p.pid)
	return ok && st.start == p.start && st.state != 'Z'
}

// descendants returns the live processes below pid: its children, their
// children and so on (a daemon's job processes and their workers).
func descendants(pid int) []proc {
	kids := map[int][]proc{}
	for _, p := range procPIDs() {
		if st, ok := statOf(p); ok && st.state != 'Z' {
			kids[st.ppid] = append(kids[st.ppid], proc{pid: p, start: st.start})
		}
	}
	var out []proc
	next := []int{pid}
	for len(next) > 0 {
		p := next[0]
		next = next[1:]
		for _, k := range kids[p] {
			out = append(out, k)
			next = append(next, k.pid)
		}
	}
	return out
}

// cmdlineOf returns the arguments of pid, nil if it is gone.
func cmdlineOf(pid int) []string {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(string(bytes.TrimSuffix(data, []byte{0})), "\x00")
}

// isJobProcess reports whether args are those of a job process of the
// daemon whose state directory is state: "... __job STATE/jobs/NAME".
func isJobProcess(args []string, state string) bool {
	i := slices.Index(args, jobProcessArg)
	if i < 0 || i+1 >= len(args) {
		return false
	}
	return strings.HasPrefix(args[i+1], strings.TrimSuffix(state, "/")+"/")
}

// jobProcessArg is the argument that makes rsh a job process (jobs.ProcessArg;
// this program does not import rsh, so that it tests what it builds).
const jobProcessArg = "__job"

// jobProcesses returns the live job processes of the daemon whose state
// directory is state.
func jobProcesses(state string) []int {
	var out []int
	for _, p := range procPIDs() {
		if st, ok := statOf(p); !ok || st.state == 'Z' {
			continue
		}
		if isJobProcess(cmdlineOf(p), state) {
			out = append(out, p)
		}
	}
	return out
}
