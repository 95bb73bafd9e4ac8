package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Tuning of the daemon checks.
const (
	// daemonReadyWait is how long a daemon may take to answer on its
	// socket after it was started: it loads its jobs and resumes those
	// that ran, which takes milliseconds; a busy machine gets room.
	daemonReadyWait = 15 * time.Second
	// daemonStopWait is how long a daemon may take to end after SIGTERM:
	// it stops its jobs, which have a grace of ten seconds.
	daemonStopWait = 15 * time.Second
	// jobGoneWait is how long a killed daemon's job processes (and their
	// workers) may outlive it: they get SIGKILL when it dies.
	jobGoneWait = 2 * time.Second
	// commandWait bounds every rsh client command but wait.
	commandWait = 30 * time.Second
	// jobWait bounds `rsh job wait`: the longest job of a round runs a
	// few seconds.
	jobWait = 2 * time.Minute
)

// daemon is one `rsh serve` process.
type daemon struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has ended
}

// daemonSet is how every daemon of one check is started: the same state
// directory and socket, the stderr of all of them appended to one file.
type daemonSet struct {
	rsh, state, socket, errPath string
	log                         io.Writer // commands.txt
}

// start starts a daemon and waits until it answers on its socket.
func (s daemonSet) start() (*daemon, error) {
	errFile, err := os.OpenFile(s.errPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	defer errFile.Close()
	args := []string{"serve", "--state", s.state, "--socket", s.socket}
	cmd := exec.Command(s.rsh, args...)
	cmd.Stderr = errFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	fmt.Fprintf(s.log, "daemon: %s 2>> %s: pid %d\n", shellQuote(append([]string{s.rsh}, args...)), filepath.Base(s.errPath), cmd.Process.Pid)
	deadline := time.Now().Add(daemonReadyWait)
	for {
		if c, err := net.DialTimeout("unix", s.socket, time.Second); err == nil {
			c.Close()
			return d, nil
		}
		select {
		case <-d.done:
			return nil, fmt.Errorf("the daemon did not start: exit %d (%s)", cmd.ProcessState.ExitCode(), lastLine(s.errPath))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.kill()
			return nil, fmt.Errorf("the daemon did not answer on %s within %s (%s)", s.socket, daemonReadyWait, lastLine(s.errPath))
		}
	}
}

// pid is the daemon's process id.
func (d *daemon) pid() int { return d.cmd.Process.Pid }

// kill SIGKILLs the daemon and waits for it to end.
func (d *daemon) kill() {
	// The process is ours until Wait returns: os.Process signals through
	// a pidfd, so this cannot reach a recycled pid.
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

// stop sends SIGTERM and waits for the daemon to end; one that does not
// within daemonStopWait is killed, and that is an error.
func (d *daemon) stop() error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("the daemon exited with status %d after SIGTERM", code)
		}
		return nil
	case <-time.After(daemonStopWait):
		d.kill()
		return fmt.Errorf("the daemon did not end within %s of SIGTERM (killed)", daemonStopWait)
	}
}

// client runs `rsh job` commands against a daemon's socket.
type client struct {
	rsh, socket string
	dir         string    // where commands run (and their jobs)
	log         io.Writer // commands.txt
}

// result is how a client command ended.
type result struct {
	stdout []byte
	stderr string
	code   int // -1: killed, or not run
}

// run runs `rsh job VERB ARGS --socket S` with stdin (nil: none), and
// returns what it printed; err says it could not run or did not end within
// d.
func (c client) run(d time.Duration, stdin io.Reader, args ...string) (result, error) {
	args = append(append([]string{"job"}, args...), "--socket", c.socket)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.rsh, args...)
	cmd.Dir = c.dir
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.Bytes(), stderr: errb.String(), code: -1}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	fmt.Fprintf(c.log, "  %s: exit %d after %s\n", shellQuote(append([]string{"rsh"}, args...)), r.code, time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		return r, fmt.Errorf("rsh %s did not end within %s", shellQuote(args[:2]), d)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return r, err
	}
	return r, nil
}

// jobInfo is what the checks read of `rsh job get --json`.
type jobInfo struct {
	Name          string `json:"name"`
	State         string `json:"state"`
	Reason        string `json:"reason"`
	Done          int    `json:"done"`
	Total         int    `json:"total"`
	Failed        int    `json:"failed"`
	Received      int    `json:"received"`
	ReceivedBytes int64  `json:"receivedBytes"`
	Committed     int64  `json:"committed"`
	Resumed       int    `json:"resumed"`
	InputOpen     bool   `json:"inputOpen"`
}

// get returns a job's info, from `rsh job get --json`.
func (c client) get(name string) (jobInfo, error) {
	r, err := c.run(commandWait, nil, "get", "--json", name)
	if err != nil {
		return jobInfo{}, err
	}
	if r.code != 0 {
		return jobInfo{}, fmt.Errorf("rsh job get: exit %d (%s)", r.code, lastOf([]byte(r.stderr)))
	}
	var info jobInfo
	if err := json.Unmarshal(r.stdout, &info); err != nil {
		return jobInfo{}, fmt.Errorf("rsh job get --json: %w", err)
	}
	return info, nil
}

// getClaimed returns a job's info, and a problem if the daemon hands out
// more of its results than its job log claims. The job log is read after
// the info, and only grows: what it claims then was claimable before.
func (c client) getClaimed(state, name string) (jobInfo, string, error) {
	info, err := c.get(name)
	if err != nil {
		return info, "", err
	}
	joblog, err := os.ReadFile(filepath.Join(state, "jobs", name, "joblog"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return info, "", err
	}
	if claimed := max(lastOutputEnd(joblog), 0); info.Committed > claimed {
		return info, fmt.Sprintf("the daemon hands out %d bytes of results (%s, %d done), but the job log claims %d", info.Committed, info.State, info.Done, claimed), nil
	}
	return info, "", nil
}

// stateOnFile reads the state a job's state.json records: what the next
// daemon starts from.
func stateOnFile(state, name string) string {
	var v struct {
		State string `json:"state"`
	}
	data, err := os.ReadFile(filepath.Join(state, "jobs", name, "state.json"))
	if err != nil {
		return "unreadable: " + err.Error()
	}
	if json.Unmarshal(data, &v) != nil {
		return "garbled"
	}
	return v.State
}

// checkGone waits up to jobGoneWait for the processes a killed daemon
// left (its descendants when it was killed, and any job process of its
// state directory) to end. It kills those that do not, and returns them.
func checkGone(before []proc, state string) []int {
	deadline := time.Now().Add(jobGoneWait)
	for {
		var left []int
		for _, p := range before {
			if p.alive() {
				left = append(left, p.pid)
			}
		}
		for _, p := range jobProcesses(state) {
			if !containsPid(left, p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsPid(ps []int, p int) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}
