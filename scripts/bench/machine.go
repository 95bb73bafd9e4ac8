package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine is the facts the report's header gives.
type machine struct {
	nproc, cpu, ram, kernel, goVersion, nodeVersion, commit string
	peers                                                   []string
}

// factTimeout bounds each command run for a fact (go version, git).
const factTimeout = 10 * time.Second

func gatherMachine(ctx context.Context, c *config) machine {
	m := machine{
		nproc:       orUnknown(output(ctx, "", "nproc")),
		cpu:         cpuModel(),
		ram:         memTotal(),
		kernel:      orUnknown(output(ctx, "", "uname", "-srm")),
		goVersion:   orUnknown(output(ctx, "", "go", "version")),
		nodeVersion: orUnknown(output(ctx, "", "node", "--version")),
	}
	if m.nproc == "unknown" {
		m.nproc = strconv.Itoa(runtime.NumCPU())
	}
	m.commit = orUnknown(output(ctx, c.repo, "git", "rev-parse", "HEAD"))
	if st := output(ctx, c.repo, "git", "status", "--porcelain", "--untracked-files=no"); st != "" {
		m.commit += " with uncommitted changes to tracked files"
	}
	if v := output(ctx, "", "parallel", "--version"); v != "" {
		m.peers = append(m.peers, firstLine(v))
	}
	if v := output(ctx, "", "nmap", "--version"); v != "" {
		m.peers = append(m.peers, strings.TrimSuffix(firstLine(v), " ( https://nmap.org )"))
	}
	if v := output(ctx, "", "hyperfine", "--version"); v != "" {
		m.peers = append(m.peers, firstLine(v))
	}
	if c.piscina != "" {
		var pkg struct{ Version string }
		if b, err := os.ReadFile(filepath.Join(c.piscina, "node_modules", "piscina", "package.json")); err == nil && json.Unmarshal(b, &pkg) == nil {
			m.peers = append(m.peers, "piscina "+pkg.Version)
		}
	}
	if v := output(ctx, "", "xargs", "--version"); v != "" {
		m.peers = append(m.peers, firstLine(v))
	}
	return m
}

// output runs a command for a fact and returns its trimmed stdout, or ""
// if it failed.
func output(ctx context.Context, dir, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, factTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	return procField("/proc/cpuinfo", "model name")
}

// memTotal is MemTotal of /proc/meminfo, in GiB.
func memTotal() string {
	v := procField("/proc/meminfo", "MemTotal")
	kib, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64)
	if err != nil {
		return v
	}
	return fmt.Sprintf("%.1f GiB", kib/(1<<20))
}

// procField is the value of the first "key: value" line of a /proc file
// whose key is key.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
