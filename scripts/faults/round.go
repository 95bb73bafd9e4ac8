package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Tuning of the rounds.
const (
	// maxRuns bounds the runs of one round: a few kills plus resumes after
	// runs that ended with failed items, which a killed worker can cause.
	maxRuns = 12
	// hangSlack is added to ten times a run's expected duration before a
	// run that has not ended is declared hung.
	hangSlack = 30 * time.Second
	// orphanWait is how long worker processes may outlive their killed
	// parent: long enough to notice the closed pipe and finish a sleep.
	orphanWait = 5 * time.Second
	// workerRetry and workerTries: a worker kill that finds no worker yet
	// (the run is starting) looks again this often, this many times.
	workerRetry = 5 * time.Millisecond
	workerTries = 40
	// maxWorkerKills is how many worker processes a round kills at most:
	// more than one, to kill a worker that took a dead one's place.
	maxWorkerKills = 3
	// batchSize is the --batch-size of batch rounds: prime, so that batches
	// straddle the blocks of repeated lines.
	batchSize = 7
)

// config is what the rounds command was asked for.
type config struct {
	rsh    string // the rsh binary, an absolute path
	script string // item.js
	dir    string // rounds write under it
	keep   bool   // keep the files of rounds that pass
}

// roundsCommand runs the kill/resume rounds and prints a line for each;
// it returns the exit code: 1 if a round failed, 2 for bad arguments.
func roundsCommand(args []string) int {
	fs := flag.NewFlagSet("rounds", flag.ContinueOnError)
	var cfg config
	fs.StringVar(&cfg.rsh, "rsh", "", "the rsh binary")
	fs.StringVar(&cfg.script, "script", "", "the item function, scripts/faults/item.js")
	fs.StringVar(&cfg.dir, "dir", "", "the folder rounds write under")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the files of rounds that pass too")
	n := fs.Int("n", 20, "how many rounds")
	seed := fs.Int64("seed", 0, "the seed of the first round; round i uses seed+i (0: from the clock)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.rsh == "" || cfg.script == "" || cfg.dir == "" {
		fmt.Fprintln(os.Stderr, "faults rounds: -rsh, -script and -dir are required")
		return 2
	}
	for _, p := range []*string{&cfg.rsh, &cfg.script, &cfg.dir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "faults rounds: %v\n", err)
			return 2
		}
		*p = abs
	}
	if *seed == 0 {
		*seed = time.Now().UnixNano() % 1e6
	}
	return playRounds(*n, *seed, cfg.keep, "kill/resume", func(s int64) roundReport {
		r := newRound(s, filepath.Join(cfg.dir, fmt.Sprintf("round-%d", s)))
		story, problems := r.play(cfg)
		return roundReport{variant: r.variant(), size: fmt.Sprintf("%d lines", len(r.lines)), story: story, dir: r.dir, problems: problems}
	})
}

// roundReport is what one round says of itself.
type roundReport struct {
	variant, size, story, dir string
	problems                  []string
}

// playRounds plays n rounds, the first with seed, each the next seed,
// printing a PASS or FAIL line for each; the files of a round that passed
// are removed unless keep. It returns the exit code: 1 if a round failed.
func playRounds(n int, seed int64, keep bool, what string, play func(seed int64) roundReport) int {
	failed := 0
	for i := range n {
		s := seed + int64(i)
		start := time.Now()
		r := play(s)
		verdict := "PASS"
		if len(r.problems) > 0 {
			verdict = "FAIL"
			failed++
		}
		fmt.Printf("%s %s round %d (seed %d) %s: %s, %s, %.1fs",
			verdict, what, i+1, s, r.variant, r.size, r.story, time.Since(start).Seconds())
		if len(r.problems) > 0 {
			fmt.Printf(": %s; files in %s\n", strings.Join(r.problems, "; "), r.dir)
			continue
		}
		fmt.Println()
		if !keep {
			os.RemoveAll(r.dir)
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// round is one kill/resume round: its input, its variant and its plan.
type round struct {
	seed  int64
	rng   *rand.Rand
	dir   string
	lines []string

	threads     int
	keepOrder   bool
	batch       int  // 0: no --batch-size
	retries     bool // --retries 2 and first attempts that throw
	maxMemory   bool // --max-memory: runspaces in worker processes
	records     bool // --out records
	killWorkers bool // some kills go to a worker process
	parentKills int  // how many runs are killed before one may finish
}

func newRound(seed int64, dir string) *round {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	r := &round{seed: seed, rng: rng, dir: dir, lines: makeInput(rng)}
	r.threads = 1 + rng.IntN(8)
	r.keepOrder = rng.IntN(2) == 0
	if rng.IntN(4) == 0 {
		r.batch = batchSize
	}
	r.retries = rng.IntN(3) == 0
	r.maxMemory = rng.IntN(3) == 0
	r.records = rng.IntN(2) == 0
	r.killWorkers = r.maxMemory && rng.IntN(3) > 0
	r.parentKills = 1 + rng.IntN(3)
	if r.killWorkers {
		r.parentKills-- // a round may kill only workers
	}
	return r
}

// makeInput makes a round's input: small numbers (so that many repeat),
// some words (strings, for --in auto), and now and then a block of one
// line repeated many times.
func makeInput(rng *rand.Rand) []string {
	n := 200 + rng.IntN(300)
	lines := make([]string, 0, n)
	for len(lines) < n {
		switch k := rng.IntN(20); {
		case k == 0:
			v := strconv.Itoa(1 + rng.IntN(40))
			for range 10 + rng.IntN(30) {
				lines = append(lines, v)
			}
		case k < 4:
			lines = append(lines, fmt.Sprintf("w%d", 1+rng.IntN(12)))
		default:
			lines = append(lines, strconv.Itoa(1+rng.IntN(60)))
		}
	}
	return lines
}

// flags are the variant's flags, as given to every run.
func (r *round) flags() []string {
	f := []string{"-t", strconv.Itoa(r.threads)}
	if r.keepOrder {
		f = append(f, "-k")
	}
	if r.batch > 0 {
		f = append(f, "--batch-size", strconv.Itoa(r.batch))
	}
	if r.retries {
		f = append(f, "--retries", "2")
	}
	if r.maxMemory {
		f = append(f, "--max-memory", "256MiB")
	}
	if r.records {
		f = append(f, "--out", "records")
	}
	return f
}

// variant names the round's variant in its report line.
func (r *round) variant() string {
	v := strings.Join(r.flags(), " ")
	if r.killWorkers {
		v += " (worker kills)"
	}
	return v
}

// path names a file of the round.
func (r *round) path(name string) string { return filepath.Join(r.dir, name) }

// args is the command line of one run.
func (r *round) args(cfg config, resume bool) []string {
	a := []string{"run", cfg.script, r.path("input.txt"), "--joblog", r.path("joblog")}
	a = append(a, r.flags()...)
	if r.retries {
		marks := r.path("marks")
		a = append(a, "--retry-delay", "5ms", "-p", "failDir="+marks, "--allow-read="+marks, "--allow-write="+marks)
	}
	if resume {
		a = append(a, "--resume")
	}
	return a
}

// expectedDuration guesses how long a run takes that has the given part
// of the input left to do (1: all of it), so that kills land within the
// run: item.js sleeps 2-6 ms per item.
func (r *round) expectedDuration(left float64) time.Duration {
	var sleep time.Duration
	for _, l := range r.lines {
		n := len(l)
		if v, err := strconv.Atoi(l); err == nil {
			n = v
		}
		sleep += time.Duration(2+n%5) * time.Millisecond
	}
	work := time.Duration(left * float64(sleep/time.Duration(r.threads)))
	if r.maxMemory {
		// Worker processes start first.
		return work + 100*time.Millisecond
	}
	return work + 30*time.Millisecond
}

// left tells what part of the input the job log does not yet claim as
// done, from the count of success lines in it and in the reference log.
func (r *round) left() float64 {
	success := func(name string) int {
		data, _ := os.ReadFile(r.path(name))
		return bytes.Count(data, []byte(`"status":"Success"`))
	}
	total := success("reference.joblog")
	if total == 0 {
		return 1
	}
	return max(0.1, 1-float64(success("joblog"))/float64(total))
}

// play runs the round: runs killed and resumed until one finishes, then
// the checks. It returns what happened, in a few words, and the problems
// found.
func (r *round) play(cfg config) (story string, problems findings) {
	if err := r.setUp(cfg); err != nil {
		problems.addf("setting up: %v", err)
		return "not run", problems
	}
	cmds, err := os.Create(r.path("commands.txt"))
	if err != nil {
		problems.addf("setting up: %v", err)
		return "not run", problems
	}
	defer cmds.Close()
	out, err := os.OpenFile(r.path("out"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		problems.addf("setting up: %v", err)
		return "not run", problems
	}
	defer out.Close()

	hang := 10*r.expectedDuration(1) + hangSlack
	var kills, workerKills, failedRuns, runs int
	finished, stuck := false, false
	for runs < maxRuns && !finished && !stuck {
		runs++
		p := r.plan(r.expectedDuration(r.left()), kills, workerKills)
		args := r.args(cfg, runs > 1)
		errPath := r.path(fmt.Sprintf("stderr-%d", runs))
		e, err := invoke(cfg.rsh, args, out, errPath, p, hang)
		fmt.Fprintf(cmds, "run %d: %s >> out 2> %s\n  %s; %s\n", runs, shellQuote(append([]string{cfg.rsh}, args...)), filepath.Base(errPath), p, e)
		if err != nil {
			problems.addf("run %d: %v", runs, err)
			break
		}
		workerKills += e.workerKills
		switch {
		case e.hung:
			problems.addf("run %d hung: no end after %s, killed (%s)", runs, hang, lastLine(errPath))
			stuck = true
		case e.killed && p.killAt < 0:
			problems.addf("run %d was killed by someone else (the OOM killer?)", runs)
			stuck = true
		case e.killed:
			kills++
		case e.code == 0:
			finished = true
		case e.code == 1:
			// Items whose worker dies run again alone, and one whose lone
			// worker dies too is failed: with two worker kills in a run
			// that is the contract. Otherwise every item succeeds in the
			// end (under --retries 2 only first attempts fail), and a
			// failed item is a finding. Either way resume, so that the
			// outputs are checked too.
			failedRuns++
			if e.workerKills < 2 {
				problems.addf("run %d ended with failed items (%s)", runs, lastLine(errPath))
			}
		default:
			problems.addf("run %d exited with code %d (%s)", runs, e.code, lastLine(errPath))
			stuck = true
		}
	}
	if !finished && !stuck {
		problems.addf("no run finished with success in %d runs", maxRuns)
	}
	story = fmt.Sprintf("%d runs (%d killed, %d worker kills, %d ended with failed items)", runs, kills, workerKills, failedRuns)
	if left := waitGone(cfg.rsh, orphanWait); len(left) > 0 {
		problems.addf("%d rsh processes still running %s after the last run ended: pids %v (killed now)", len(left), orphanWait, left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if !finished {
		return story, problems
	}
	outData, err1 := os.ReadFile(r.path("out"))
	logData, err2 := os.ReadFile(r.path("joblog"))
	refData, err3 := os.ReadFile(r.path("reference.joblog"))
	if err := errors.Join(err1, err2, err3); err != nil {
		problems.addf("reading the results: %v", err)
		return story, problems
	}
	return story, append(problems, check(expected{lines: r.lines, batch: r.batch}, outData, r.records, logData, refData)...)
}

// plan picks when the next run is disturbed: rsh is killed at a random
// moment of the run until it was killed parentKills times; in rounds with
// worker kills one or two workers die before, at most maxWorkerKills a
// round.
func (r *round) plan(est time.Duration, kills, workerKills int) plan {
	p := plan{killAt: -1}
	if kills < r.parentKills {
		p.killAt = time.Duration(r.rng.Int64N(int64(est)))
	}
	if r.killWorkers {
		for range min(1+r.rng.IntN(2), maxWorkerKills-workerKills) {
			p.workerAt = append(p.workerAt, time.Duration(r.rng.Int64N(int64(est))))
		}
		slices.Sort(p.workerAt)
		if n := len(p.workerAt); n > 0 && p.killAt >= 0 && p.killAt < p.workerAt[n-1] {
			// The last event is the parent's kill.
			p.killAt, p.workerAt[n-1] = p.workerAt[n-1], p.killAt
			slices.Sort(p.workerAt)
		}
	}
	return p
}

// setUp writes the round's input and the job log of one uninterrupted run
// of a trivial script over it: the reference for what the log must claim.
func (r *round) setUp(cfg config) error {
	if err := os.MkdirAll(r.path("marks"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(r.path("input.txt"), []byte(strings.Join(r.lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	args := []string{"run", "-e", "(x) => x", r.path("input.txt"), "--joblog", r.path("reference.joblog")}
	if r.batch > 0 {
		args = append(args, "--batch-size", strconv.Itoa(r.batch))
	}
	cmd := exec.Command(cfg.rsh, args...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("reference run: %w: %s", err, lastOf(msg))
	}
	return nil
}

// plan says when a run is disturbed, from its start; negative: never.
type plan struct {
	killAt   time.Duration   // SIGKILL to rsh
	workerAt []time.Duration // SIGKILL to one of its worker processes, in order
}

func (p plan) String() string {
	var s []string
	for _, at := range p.workerAt {
		s = append(s, fmt.Sprintf("kill -9 a worker at %s", at.Round(time.Millisecond)))
	}
	if p.killAt >= 0 {
		s = append(s, fmt.Sprintf("kill -9 rsh at %s", p.killAt.Round(time.Millisecond)))
	}
	if len(s) == 0 {
		return "not disturbed"
	}
	return strings.Join(s, ", ")
}

// ending is how a run ended.
type ending struct {
	elapsed     time.Duration
	killed      bool // by SIGKILL
	code        int  // the exit code, when not killed
	workerKills int
	hung        bool
}

func (e ending) String() string {
	var s string
	switch {
	case e.hung:
		s = "hung"
	case e.killed:
		s = "killed"
	default:
		s = fmt.Sprintf("exit %d", e.code)
	}
	if e.workerKills > 0 {
		s += fmt.Sprintf(", %d workers killed", e.workerKills)
	}
	return fmt.Sprintf("%s after %s", s, e.elapsed.Round(time.Millisecond))
}

// invoke runs rsh with args, stdout appended to out and stderr to errPath,
// disturbed as p says; a run still going after hang is killed.
func invoke(rsh string, args []string, out *os.File, errPath string, p plan, hang time.Duration) (ending, error) {
	errFile, err := os.Create(errPath)
	if err != nil {
		return ending{}, err
	}
	defer errFile.Close()
	cmd := exec.Command(rsh, args...)
	cmd.Stdout = out
	cmd.Stderr = errFile
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return ending{}, err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	var e ending
	wait := func(until time.Duration) bool { // reports whether the run ended
		select {
		case <-done:
			return true
		case <-time.After(until - time.Since(start)):
			return false
		}
	}
	for _, at := range p.workerAt {
		if !wait(at) && killWorker(cmd.Process.Pid, done) {
			e.workerKills++
		}
	}
	if p.killAt >= 0 && !wait(p.killAt) {
		// The process is ours until Wait returns: os.Process signals
		// through a pidfd, so this cannot reach a recycled pid.
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}
	if !wait(hang) {
		e.hung = true
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	e.elapsed = time.Since(start)
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	e.killed = ws.Signaled() && ws.Signal() == syscall.SIGKILL
	e.code = cmd.ProcessState.ExitCode()
	return e, nil
}

// killWorker kills one worker process of the rsh with pid parent, looking
// a little longer if it has none yet; it reports whether it killed one.
func killWorker(parent int, done <-chan struct{}) bool {
	for range workerTries {
		if kids := children(parent); len(kids) > 0 {
			// Between the scan and the kill a worker may end and its pid be
			// used again: with pids handed out in turn, a gap of
			// microseconds leaves that chance negligible.
			return syscall.Kill(kids[rand.IntN(len(kids))], syscall.SIGKILL) == nil
		}
		select {
		case <-done:
			return false
		case <-time.After(workerRetry):
		}
	}
	return false
}

// waitGone waits up to d for every process running exe to end, and
// returns those still running.
func waitGone(exe string, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		left := running(exe)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastLine returns the last line of a run's stderr, for a report.
func lastLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastOf(data)
}

// lastOf returns the last non-empty line of data, or "no message".
func lastOf(data []byte) string {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if l := lines[len(lines)-1]; l != "" {
		return fmt.Sprintf("stderr: %q", l)
	}
	return "no message"
}

// shellQuote writes args as a shell command line.
func shellQuote(args []string) string {
	var b bytes.Buffer
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./,:") == "" {
			b.WriteString(a)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}
