package worker

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// The kernel's own bound on a worker: a memory cgroup of its own, where
// rsh may make one (cgroup v2's memory.max, or v1's
// memory.limit_in_bytes). Unlike the watchdog it also stops one huge
// allocation at once, and it counts everything the process holds. Where
// no cgroup can be made (no write access, no memory controller), the
// watchdog and the address-space limit remain.

// cgroupRoot is where cgroup file systems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupPrefix starts the names of rsh's worker cgroups, followed by the
// pid of the rsh that made them (to clean up after an rsh that was
// killed) and a number.
const cgroupPrefix = "rsh-worker-"

// cgroupHeadroom is how far above MaxMemory the kernel's limit is set, so
// that the watchdog, which names the limit clearly, normally acts first;
// the kernel's limit is for what the watchdog cannot see in time.
func cgroupHeadroom(limit int64) int64 { return max(limit/4, 32<<20) }

// memCgroup is a memory cgroup made for one worker process.
type memCgroup struct {
	dir   string
	v2    bool
	limit int64
}

// cgroupParent finds the directory under which this process may make
// memory cgroups, and whether it is cgroup v2; "" if there is none.
func cgroupParent() (string, bool) {
	var fs syscall.Statfs_t
	const cgroup2Magic = 0x63677270
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", false
	}
	if syscall.Statfs(cgroupRoot, &fs) == nil && fs.Type == cgroup2Magic {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok {
				return filepath.Join(cgroupRoot, filepath.Clean("/"+rest)), true
			}
		}
		return "", false
	}
	// cgroup v1: the memory hierarchy's own mount.
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), "memory") {
			return filepath.Join(cgroupRoot, "memory", filepath.Clean("/"+parts[2])), false
		}
	}
	return "", false
}

// newMemCgroup makes a cgroup limited to limit bytes plus headroom, named
// after this process and n. It returns nil where none can be made.
func newMemCgroup(n int64, limit int64) *memCgroup {
	parent, v2 := cgroupParent()
	if parent == "" {
		return nil
	}
	dir := filepath.Join(parent, fmt.Sprintf("%s%d-%d", cgroupPrefix, os.Getpid(), n))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil
	}
	c := &memCgroup{dir: dir, v2: v2, limit: limit + cgroupHeadroom(limit)}
	file, value := "memory.limit_in_bytes", strconv.FormatInt(c.limit, 10)
	if v2 {
		file = "memory.max"
	}
	if os.WriteFile(filepath.Join(dir, file), []byte(value), 0) != nil {
		c.remove()
		return nil
	}
	if !v2 {
		// Swap would let the worker pass the limit slowly instead of
		// being stopped; where swap is accounted, bound it too.
		_ = os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), []byte(value), 0)
	} else {
		_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0)
	}
	return c
}

// add moves the process pid into the cgroup.
func (c *memCgroup) add(pid int) error {
	return os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

// oomKills reports how many processes the kernel killed in the cgroup for
// passing its limit.
func (c *memCgroup) oomKills() int64 {
	file := "memory.oom_control"
	if c.v2 {
		file = "memory.events"
	}
	data, err := os.ReadFile(filepath.Join(c.dir, file))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			return n
		}
	}
	return 0
}

// remove deletes the cgroup; its process must have ended.
func (c *memCgroup) remove() { _ = os.Remove(c.dir) }

// removeStaleCgroups deletes the empty worker cgroups left by an rsh that
// was killed before it could delete them itself.
func removeStaleCgroups() {
	parent, _ := cgroupParent()
	if parent == "" {
		return
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), cgroupPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue // ours, or its rsh still runs
		}
		_ = os.Remove(filepath.Join(parent, e.Name())) // fails if not empty
	}
}
