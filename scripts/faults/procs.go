package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// children returns the processes whose parent is pid: an rsh's worker
// processes. It reads /proc (no /proc/PID/task/PID/children on every
// kernel), so a process that ends meanwhile may still be listed.
func children(pid int) []int {
	var kids []int
	for _, p := range procPIDs() {
		if parentOf(p) == pid {
			kids = append(kids, p)
		}
	}
	return kids
}

// parentOf returns the parent pid of pid, or 0 if it cannot be read.
func parentOf(pid int) int {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses,
	// so the fields are counted from the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// running returns the live processes running the program exe: with exe the
// rsh binary this suite built, its parents and their workers.
func running(exe string) []int {
	var ps []int
	for _, p := range procPIDs() {
		link, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(p), "exe"))
		if err == nil && link == exe { // a zombie's exe cannot be read
			ps = append(ps, p)
		}
	}
	return ps
}

// procPIDs lists the pids in /proc.
func procPIDs() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}
