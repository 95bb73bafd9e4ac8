package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// diskCase is one way for a job to fill a 2 MiB file system: ballast
// bytes are taken from it before the job starts and given back to free
// space, items items each emitted repeat times make the job's results.
// What is left beside the ballast is too little for the job; what is
// freed is room for all of it.
type diskCase struct {
	name                   string
	ballast, items, repeat int
}

// diskCases: in the first the disk fills after the job log has claimed
// some results (records of about 500 bytes, 150 of job log each, 1.3 MB
// in all, 1 MiB left); in the second, with records of 5 KB and 150 KB
// left, it fills before the job log's first line.
var diskCases = []diskCase{
	{name: "filled part way", ballast: 1 << 20, items: 2000, repeat: 60},
	{name: "filled before the job log's first line", ballast: 1900 << 10, items: 200, repeat: 1000},
}

// devFullItems is the size of the job received to /dev/full.
const devFullItems = 500

// diskConfig is what the disk checks were asked for.
type diskConfig struct {
	config
	state string // the daemon's --state: a small file system of its own
}

// daemonDiskCommand runs the full-disk check of the daemon: a job that
// fills the file system of the daemon's state directory. It prints PASS
// or FAIL lines and returns the exit code.
func daemonDiskCommand(args []string) int {
	fs := flag.NewFlagSet("daemon-disk", flag.ContinueOnError)
	var cfg diskConfig
	fs.StringVar(&cfg.rsh, "rsh", "", "the rsh binary")
	fs.StringVar(&cfg.script, "script", "", "the item function, scripts/faults/jobitem.js")
	fs.StringVar(&cfg.dir, "dir", "", "the folder the check writes under (not on the small file system)")
	fs.StringVar(&cfg.state, "state", "", "the daemon's state directory: an empty, small (2 MiB) file system")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := cfg.absolute(); err != nil || cfg.state == "" {
		fmt.Fprintf(os.Stderr, "faults daemon-disk: -state and %v\n", err)
		return 2
	}
	failed := 0
	for i, dc := range diskCases {
		start := time.Now()
		dir := filepath.Join(cfg.dir, fmt.Sprintf("case-%d", i+1))
		verdicts := diskCheck(cfg, dc, dir)
		caseFailed := false
		for _, v := range verdicts {
			if len(v.problems) > 0 {
				caseFailed = true
				fmt.Printf("FAIL full disk for a job (%s): %s: %s; files in %s\n", dc.name, v.what, strings.Join(v.problems, "; "), dir)
			} else {
				fmt.Printf("PASS full disk for a job (%s): %s, %.1fs\n", dc.name, v.what, time.Since(start).Seconds())
			}
		}
		if caseFailed {
			failed++
			// Keep the job's files; the file system is needed empty.
			_ = exec.Command("cp", "-a", cfg.state, filepath.Join(dir, "state")).Run()
		}
		if err := emptyDir(cfg.state); err != nil {
			fmt.Printf("FAIL full disk for a job: emptying %s: %v\n", cfg.state, err)
			return 1
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// verdict is one PASS or FAIL line of a check.
type verdict struct {
	what     string
	problems findings
}

// diskCheck plays the full-disk check: the job fails for want of space,
// the daemon goes on serving; stopped, it starts again on the full file
// system and once space is freed, and what the job committed is whole.
func diskCheck(cfg diskConfig, dc diskCase, dir string) []verdict {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return []verdict{{what: "setting up", problems: findings{err.Error()}}}
	}
	log, err := os.Create(filepath.Join(dir, "commands.txt"))
	if err != nil {
		return []verdict{{what: "setting up", problems: findings{err.Error()}}}
	}
	defer log.Close()
	ds := daemonSet{rsh: cfg.rsh, state: cfg.state, socket: filepath.Join(dir, "sock"), errPath: filepath.Join(dir, "serve.log"), log: log}
	c := client{rsh: cfg.rsh, socket: ds.socket, dir: dir, log: log}
	lines := make([]string, dc.items)
	for i := range lines {
		lines[i] = strconv.Itoa(i + 1)
	}

	// 1. The job fills the disk.
	first := verdict{what: "the job fails with no space, wait exits 3, the daemon serves on"}
	ballast := filepath.Join(cfg.state, "ballast")
	if err := os.WriteFile(ballast, make([]byte, dc.ballast), 0o600); err != nil {
		first.problems.addf("writing the ballast: %v", err)
		return []verdict{first}
	}
	d, err := ds.start()
	if err != nil {
		first.problems.addf("%v", err)
		return []verdict{first}
	}
	stop := func(v *verdict, when string) {
		if err := d.stop(); err != nil {
			v.problems.addf("%s: %v", when, err)
		}
		if left := checkGone(nil, cfg.state); len(left) > 0 {
			v.problems.addf("%s: job processes %v still running after the daemon stopped (killed now)", when, left)
		}
	}
	input := strings.NewReader(strings.Join(lines, "\n") + "\n")
	res, err := c.run(commandWait, input, "start", "--name", jobName, "-t", "4", "-p", fmt.Sprintf("repeat=%d", dc.repeat), cfg.script)
	if err == nil && res.code != 0 {
		err = fmt.Errorf("exit %d (%s)", res.code, lastOf([]byte(res.stderr)))
	}
	if err != nil {
		first.problems.addf("rsh job start: %v", err)
		stop(&first, "stopping the daemon")
		return []verdict{first}
	}
	w, err := c.run(jobWait, nil, "wait", jobName)
	if err != nil {
		first.problems.addf("%v", err)
	} else if w.code != 3 {
		first.problems.addf("rsh job wait exited %d, want 3 (%s%s)", w.code, strings.TrimSpace(string(w.stdout)), lastOf([]byte(w.stderr)))
	}
	if info, err := c.get(jobName); err != nil {
		first.problems.addf("%v", err)
	} else if info.State != "Failed" || !strings.Contains(info.Reason, "no space") {
		first.problems.addf("the job is %s (%s), want Failed for no space", info.State, info.Reason)
	} else {
		first.what = fmt.Sprintf("the job fails (%s), wait exits 3, the daemon serves on", info.Reason)
	}
	if ls, err := c.run(commandWait, nil, "ls"); err != nil || ls.code != 0 {
		first.problems.addf("rsh job ls on the full disk: exit %d, %v (%s)", ls.code, err, lastOf([]byte(ls.stderr)))
	}
	stop(&first, "stopping the daemon on the full disk")

	// 2. The daemon starts again on the full disk, and once space is
	// freed; the job's committed results are whole.
	second := verdict{what: "the daemon starts on the full disk and after space is freed"}
	for _, when := range []string{"on the full disk", "after space was freed"} {
		if when == "after space was freed" {
			if err := os.Remove(ballast); err != nil {
				second.problems.addf("removing the ballast: %v", err)
				return []verdict{first, second}
			}
		}
		if d, err = ds.start(); err != nil {
			second.problems.addf("%s: %v", when, err)
			return []verdict{first, second}
		}
		if ls, err := c.run(commandWait, nil, "ls"); err != nil || ls.code != 0 {
			second.problems.addf("%s: rsh job ls: exit %d, %v (%s)", when, ls.code, err, lastOf([]byte(ls.stderr)))
		}
		if _, err := c.run(jobWait, nil, "wait", jobName); err != nil {
			second.problems.addf("%s: %v", when, err)
		}
		if _, claimed, err := c.getClaimed(cfg.state, jobName); err != nil {
			second.problems.addf("%s: %v", when, err)
		} else if claimed != "" {
			second.problems.addf("%s: %s", when, claimed)
		}
		if when == "after space was freed" {
			checkDiskJob(c, cfg.state, lines, dc.repeat, &second)
		}
		stop(&second, "stopping the daemon "+when)
	}
	return []verdict{first, second}
}

// checkDiskJob checks the full-disk job once space was freed: Failed for
// want of space (or, resumed, Completed), and the results the daemon
// hands out are claimed by the job log, each item at most once (exactly
// once if it completed), received whole.
func checkDiskJob(c client, state string, lines []string, repeat int, v *verdict) {
	info, err := c.get(jobName)
	if err != nil {
		v.problems.addf("%v", err)
		return
	}
	want := jobExpect{lines: lines, arrived: len(lines), repeat: repeat}
	switch {
	case info.State == "Failed" && strings.Contains(info.Reason, "no space"):
		want.partial = true
	case info.State == "Completed":
	default:
		v.problems.addf("after space was freed the job is %s (%s), want Failed for no space, or Completed", info.State, info.Reason)
		return
	}
	jobDir := filepath.Join(state, "jobs", jobName)
	results, err := os.ReadFile(filepath.Join(jobDir, "results.ndjson"))
	if err != nil {
		v.problems.addf("reading the job's results: %v", err)
		return
	}
	if info.Committed > int64(len(results)) {
		v.problems.addf("committed %d bytes, but the results file has %d", info.Committed, len(results))
		info.Committed = int64(len(results))
	}
	sum, f := checkJobResults(want, results[:info.Committed])
	v.problems = append(v.problems, f...)
	r, err := c.run(commandWait, nil, "receive", "--out", "records", jobName)
	if err != nil {
		v.problems.addf("%v", err)
		return
	}
	if wantCode := receiveCode(info.State, r.stdout); r.code != wantCode {
		v.problems.addf("receive: exit %d, want %d (%s)", r.code, wantCode, lastOf([]byte(r.stderr)))
	}
	v.problems = append(v.problems, checkReceived(want, sum, []receiveOutput{{data: r.stdout}})...)
	if len(v.problems) == 0 {
		v.what += fmt.Sprintf("; then the job is %s with %d of %d items committed, each once, received whole", info.State, len(sum.byPos), len(lines))
	}
}

// devFullCommand runs the check of a receive to a full disk: it exits
// non-zero, and a receive after it still gets every result.
// emptyDir removes everything in dir.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func devFullCommand(args []string) int {
	fs := flag.NewFlagSet("daemon-devfull", flag.ContinueOnError)
	var cfg config
	fs.StringVar(&cfg.rsh, "rsh", "", "the rsh binary")
	fs.StringVar(&cfg.script, "script", "", "the item function, scripts/faults/jobitem.js")
	fs.StringVar(&cfg.dir, "dir", "", "the folder the check writes under")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := cfg.absolute(); err != nil {
		fmt.Fprintf(os.Stderr, "faults daemon-devfull: %v\n", err)
		return 2
	}
	start := time.Now()
	v := devFullCheck(cfg)
	if len(v.problems) > 0 {
		fmt.Printf("FAIL receive to a full disk: %s; files in %s\n", strings.Join(v.problems, "; "), cfg.dir)
		return 1
	}
	fmt.Printf("PASS receive to a full disk: %s, %.1fs\n", v.what, time.Since(start).Seconds())
	return 0
}

func devFullCheck(cfg config) (v verdict) {
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		v.problems.addf("setting up: %v", err)
		return v
	}
	log, err := os.Create(filepath.Join(cfg.dir, "commands.txt"))
	if err != nil {
		v.problems.addf("setting up: %v", err)
		return v
	}
	defer log.Close()
	state := filepath.Join(cfg.dir, "state")
	ds := daemonSet{rsh: cfg.rsh, state: state, socket: filepath.Join(cfg.dir, "sock"), errPath: filepath.Join(cfg.dir, "serve.log"), log: log}
	c := client{rsh: cfg.rsh, socket: ds.socket, dir: cfg.dir, log: log}
	d, err := ds.start()
	if err != nil {
		v.problems.addf("%v", err)
		return v
	}
	defer func() {
		if err := d.stop(); err != nil {
			v.problems.addf("%v", err)
		}
	}()
	lines := make([]string, devFullItems)
	for i := range lines {
		lines[i] = strconv.Itoa(i + 1)
	}
	input := strings.NewReader(strings.Join(lines, "\n") + "\n")
	res, err := c.run(commandWait, input, "start", "--name", jobName, "-t", "8", cfg.script)
	if err == nil && res.code != 0 {
		err = fmt.Errorf("exit %d (%s)", res.code, lastOf([]byte(res.stderr)))
	}
	if err != nil {
		v.problems.addf("rsh job start: %v", err)
		return v
	}
	if w, err := c.run(jobWait, nil, "wait", jobName); err != nil || w.code != 0 {
		v.problems.addf("rsh job wait: exit %d, %v (%s)", w.code, err, lastOf([]byte(w.stderr)))
		return v
	}

	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		v.problems.addf("opening /dev/full: %v", err)
		return v
	}
	cmd := exec.Command(cfg.rsh, "job", "receive", jobName, "--socket", c.socket)
	cmd.Stdout = full
	errPath := filepath.Join(cfg.dir, "receive-devfull.err")
	if cmd.Stderr, err = os.Create(errPath); err != nil {
		full.Close()
		v.problems.addf("%v", err)
		return v
	}
	err = cmd.Run()
	full.Close()
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	fmt.Fprintf(log, "  rsh job receive %s > /dev/full: exit %d\n", jobName, code)
	var exit *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exit):
		v.problems.addf("receive > /dev/full: %v", err)
	case code == 0:
		v.problems.addf("receive > /dev/full exited 0")
	}
	info, err := c.get(jobName)
	if err != nil {
		v.problems.addf("%v", err)
		return v
	}
	if info.Received != 0 {
		v.problems.addf("after the receive to /dev/full the job counts %d results received, want 0", info.Received)
	}
	r, err := c.run(commandWait, nil, "receive", "--out", "records", jobName)
	if err != nil {
		v.problems.addf("%v", err)
		return v
	}
	if r.code != 0 {
		v.problems.addf("the receive after it: exit %d (%s)", r.code, lastOf([]byte(r.stderr)))
	}
	want := jobExpect{lines: lines, arrived: len(lines)}
	jobDir := filepath.Join(state, "jobs", jobName)
	results, err := os.ReadFile(filepath.Join(jobDir, "results.ndjson"))
	if err != nil {
		v.problems.addf("%v", err)
		return v
	}
	sum, f := checkJobResults(want, results[:min(info.Committed, int64(len(results)))])
	v.problems = append(v.problems, f...)
	v.problems = append(v.problems, checkReceived(want, sum, []receiveOutput{{data: r.stdout}})...)
	v.what = fmt.Sprintf("receive > /dev/full exits %d (%s), the next receive prints all %d results", code, lastLine(errPath), len(sum.byPos))
	return v
}
