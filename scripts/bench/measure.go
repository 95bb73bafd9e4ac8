package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// sample is one run of one tool.
type sample struct {
	wall      time.Duration
	maxRSSKiB int64         // ru_maxrss: the largest single process of the run
	cpu       time.Duration // user + system time of the run's processes
}

// stderrKeep is how much of a failing command's stderr goes into the
// error: its end, where the reason usually is.
const stderrKeep = 2048

// launchArg makes this program a launcher (see launch) instead of the
// harness.
const launchArg = "-launch-measured"

// execScript runs script under `bash -c` with pipefail and the tool paths
// in its environment, through a launcher (see launch) in a process group
// of its own, and returns its wall time, peak RSS and CPU time. Whatever
// is left of the group when the launcher exits, or when ctx ends, is
// killed.
func (e *env) execScript(ctx context.Context, script string) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		return sample{}, fmt.Errorf("find the harness binary: %w", err)
	}
	result := filepath.Join(e.outDir, ".launch-result")
	os.Remove(result)
	cmd := exec.CommandContext(ctx, self, launchArg, result, "set -o pipefail\n"+script)
	cmd.Dir = e.c.tmp
	cmd.Env = append(os.Environ(), e.toolEnv()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var errBuf tailBuffer
	cmd.Stderr = &errBuf

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, fmt.Errorf("start the launcher: %w", err)
	}
	err = cmd.Wait()
	wall := time.Since(start)
	// Descendants that outlived bash (a tool's stray children) go too.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if ctx.Err() != nil {
		return sample{}, fmt.Errorf("killed after %s: %w", wall.Round(time.Millisecond), ctx.Err())
	}
	if err != nil {
		return sample{}, fmt.Errorf("%w; stderr ends: %s", err, strings.TrimSpace(errBuf.String()))
	}
	b, err := os.ReadFile(result)
	if err != nil {
		return sample{}, fmt.Errorf("read the launcher's result: %w", err)
	}
	var s sample
	if _, err := fmt.Sscan(string(b), &s.wall, &s.maxRSSKiB, &s.cpu); err != nil {
		return sample{}, fmt.Errorf("parse the launcher's result %q: %w", b, err)
	}
	return s, nil
}

// launch is the launcher: it runs `bash -c script` with its own stdin,
// stdout and stderr, writes "WALL_NS MAXRSS_KIB CPU_NS" of it to the file
// result, and exits with bash's status.
//
// It exists because ru_maxrss is not only the child's own: on exec, Linux
// folds the peak RSS of the memory image being replaced into the process's
// maxrss, and a child of a Go program starts out sharing its parent's
// memory (clone with CLONE_VM). A command started by the harness directly
// would report at least the harness's peak RSS, which grows to hundreds of
// MiB while it checks outputs. Started from this small, fresh process,
// the floor is the launcher's few MiB (shown in the report's header).
func launch(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "bench: usage: bench "+launchArg+" RESULT SCRIPT")
		return 2
	}
	cmd := exec.Command("bash", "-c", args[1])
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintln(os.Stderr, "bench: launcher:", err)
		return 1
	}
	var rss int64
	var cpu time.Duration
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	res := fmt.Sprintf("%d %d %d\n", wall.Nanoseconds(), rss, cpu.Nanoseconds())
	if err := os.WriteFile(args[0], []byte(res), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench: launcher:", err)
		return 1
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		if code < 0 {
			return 1
		}
		return code
	}
	return 0
}

// toolEnv names the programs in the commands, so that the commands the
// report shows are the ones that ran.
func (e *env) toolEnv() []string {
	return []string{
		"RSH=" + e.c.rsh,
		"RSH_BASE=" + e.c.rshBase,
		"LIMIT=" + e.c.limit,
		"PISCINA=" + e.c.piscina,
		"BENCH=" + e.c.benchDir,
		"REPO=" + e.c.repo,
		"IN=" + e.inDir,
		"OUT=" + e.outDir,
	}
}

// tailBuffer keeps the last stderrKeep bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*stderrKeep {
		t.b = append(t.b[:0], t.b[len(t.b)-stderrKeep:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if len(t.b) > stderrKeep {
		return "..." + string(t.b[len(t.b)-stderrKeep:])
	}
	return string(t.b)
}

// median of ds; ds is not modified.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// outPath is where a tool's stdout goes in a workload; each run overwrites it.
func (e *env) outPath(workload, tool string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(tool))
	return filepath.Join(e.outDir, workload+"-"+clean+".out")
}

// errWrongOutput marks a check failure, as opposed to a tool that failed
// to run.
var errWrongOutput = errors.New("wrong output")
