package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Tuning of the daemon rounds.
const (
	// jobName is the name of every round's job.
	jobName = "j"
	// failMod: with --retries, items whose n is a multiple of it fail at
	// every attempt (see jobitem.js).
	failMod = 7
	// itemCost is what an item of jobitem.js costs on average (a sleep of
	// 0-3 ms), to guess how long a job runs.
	itemCost = 1500 * time.Microsecond
	// jobOverhead is what a job costs besides its items: its process
	// starts, and with --max-memory its workers.
	jobOverhead = 150 * time.Millisecond
	// padMin and padMax bound the padding of a slow round's items, so
	// that its input outgrows the client's send buffer (256 KiB) and
	// reaches the daemon in several parts while it is being sent.
	padMin, padMax = 100, 700
	// slowChunk is how many lines the slow generator writes at once.
	slowChunk = 20
	// receivePause is how long a receive that is to be killed is left
	// blocked on its output part way: longer than it waits between
	// confirmations (200 ms), so that it confirms some of what it wrote.
	receivePause = 300 * time.Millisecond
)

// daemonRoundsCommand runs the daemon kill/resume rounds and prints a
// line for each; it returns the exit code: 1 if a round failed, 2 for bad
// arguments.
func daemonRoundsCommand(args []string) int {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	var cfg config
	fs.StringVar(&cfg.rsh, "rsh", "", "the rsh binary")
	fs.StringVar(&cfg.script, "script", "", "the item function, scripts/faults/jobitem.js")
	fs.StringVar(&cfg.dir, "dir", "", "the folder rounds write under")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the files of rounds that pass too")
	n := fs.Int("n", 5, "how many rounds")
	seed := fs.Int64("seed", 0, "the seed of the first round; round i uses seed+i (0: from the clock)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := cfg.absolute(); err != nil {
		fmt.Fprintf(os.Stderr, "faults daemon: %v\n", err)
		return 2
	}
	if *seed == 0 {
		*seed = time.Now().UnixNano() % 1e6
	}
	return playRounds(*n, *seed, cfg.keep, "daemon kill/resume", func(s int64) roundReport {
		r := newJobRound(s, filepath.Join(cfg.dir, fmt.Sprintf("daemon-round-%d", s)))
		story, problems := r.play(cfg)
		return roundReport{variant: r.variant(), size: fmt.Sprintf("%d items", len(r.lines)), story: story, dir: r.dir, problems: problems}
	})
}

// absolute checks that rsh, script and dir are given, and makes them
// absolute paths.
func (cfg *config) absolute() error {
	if cfg.rsh == "" || cfg.script == "" || cfg.dir == "" {
		return errors.New("-rsh, -script and -dir are required")
	}
	for _, p := range []*string{&cfg.rsh, &cfg.script, &cfg.dir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	return nil
}

// jobRound is one daemon kill/resume round: its input, its variant and
// its plan.
type jobRound struct {
	seed  int64
	rng   *rand.Rand
	dir   string
	lines []string

	throttle    int
	batch       int  // 0: no --batch-size
	maxMemory   bool // --max-memory 256MiB: items in worker processes
	fail        bool // --retries 1, and items that fail by design
	slow        bool // the input comes from a slow generator; the first kill lands while it is sent
	slowFor     time.Duration
	kills       int  // SIGKILLs of the daemon
	midReceive  bool // a receive while the job runs
	killReceive bool // the first receive at the end is killed part way
}

func newJobRound(seed int64, dir string) *jobRound {
	rng := rand.New(rand.NewPCG(uint64(seed), 0xda3e))
	r := &jobRound{seed: seed, rng: rng, dir: dir}
	r.slow = rng.IntN(3) == 0
	r.lines = makeJobInput(rng, r.slow)
	r.throttle = 1 + rng.IntN(8)
	if rng.IntN(4) == 0 {
		r.batch = batchSize
	}
	r.maxMemory = rng.IntN(4) == 0
	r.fail = rng.IntN(3) == 0
	if r.slow {
		r.slowFor = time.Duration(500+rng.IntN(1500)) * time.Millisecond
	}
	r.kills = 1 + rng.IntN(3)
	r.midReceive = rng.IntN(3) == 0
	r.killReceive = rng.IntN(2) == 0
	return r
}

// makeJobInput makes a round's items: 200 to 2000 lines of small numbers
// (many repeat) and words, or, for a slow round, objects padded so that
// the input outgrows the client's send buffer.
func makeJobInput(rng *rand.Rand, slow bool) []string {
	n := 200 + rng.IntN(1801)
	lines := make([]string, 0, n)
	for len(lines) < n {
		switch k := rng.IntN(10); {
		case slow:
			lines = append(lines, fmt.Sprintf(`{"n":%d,"p":"%s"}`, 1+rng.IntN(100), strings.Repeat("p", padMin+rng.IntN(padMax-padMin))))
		case k < 2:
			lines = append(lines, fmt.Sprintf("w%d", 1+rng.IntN(12)))
		default:
			lines = append(lines, strconv.Itoa(1+rng.IntN(60)))
		}
	}
	return lines
}

// flags are the run flags of the round's job.
func (r *jobRound) flags() []string {
	f := []string{"-t", strconv.Itoa(r.throttle)}
	if r.batch > 0 {
		f = append(f, "--batch-size", strconv.Itoa(r.batch))
	}
	if r.maxMemory {
		f = append(f, "--max-memory", "256MiB")
	}
	if r.fail {
		f = append(f, "--retries", "1", "--retry-delay", "5ms", "-p", "fail="+strconv.Itoa(failMod))
	}
	return f
}

// variant names the round's variant in its report line.
func (r *jobRound) variant() string {
	v := strings.Join(r.flags(), " ")
	if r.slow {
		v += fmt.Sprintf(", input sent over %s", r.slowFor.Round(time.Millisecond))
	}
	return v
}

func (r *jobRound) path(name string) string { return filepath.Join(r.dir, name) }

// estimate guesses how long the job takes with left items to do, a
// little short, so that most kills land while it runs.
func (r *jobRound) estimate(left int) time.Duration {
	return (time.Duration(max(left, 0))*itemCost/time.Duration(r.throttle) + jobOverhead) * 4 / 5
}

// roundRun is the state of a round being played.
type roundRun struct {
	r        *jobRound
	cfg      config
	state    string
	daemons  daemonSet
	c        client
	log      *os.File
	d        *daemon
	problems findings
	resumes  int // kills after which the job was Running on file
	killed   int
	arrived  int       // items that reached the job, -1 until known
	slowCmd  *exec.Cmd // a slow round's rsh job start
	outs     []receiveOutput
}

// play runs the round: the daemon, the job, the kills and restarts, the
// receives; then the checks. It returns what happened, in a few words,
// and the problems found.
func (r *jobRound) play(cfg config) (story string, problems findings) {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		problems.addf("setting up: %v", err)
		return "not run", problems
	}
	input := []byte(strings.Join(r.lines, "\n") + "\n")
	if err := os.WriteFile(r.path("input.txt"), input, 0o644); err != nil {
		problems.addf("setting up: %v", err)
		return "not run", problems
	}
	log, err := os.Create(r.path("commands.txt"))
	if err != nil {
		problems.addf("setting up: %v", err)
		return "not run", problems
	}
	defer log.Close()
	state := r.path("state")
	rr := &roundRun{r: r, cfg: cfg, state: state, log: log,
		daemons: daemonSet{rsh: cfg.rsh, state: state, socket: r.path("sock"), errPath: r.path("serve.log"), log: log},
		c:       client{rsh: cfg.rsh, socket: r.path("sock"), dir: r.dir, log: log},
	}
	rr.arrived = -1
	rr.run(input)
	story = ""
	if r.slow && rr.arrived >= 0 {
		story = fmt.Sprintf("%d arrived, ", rr.arrived)
	}
	story += fmt.Sprintf("%d daemon kills (%d while the job ran), %d receives", rr.killed, rr.resumes, len(rr.outs))
	if n := countKilled(rr.outs); n > 0 {
		story += fmt.Sprintf(" (%d killed)", n)
	}
	return story, rr.problems
}

func countKilled(outs []receiveOutput) int {
	n := 0
	for _, o := range outs {
		if o.killed {
			n++
		}
	}
	return n
}

// run plays the round; what goes wrong is added to rr.problems.
func (rr *roundRun) run(input []byte) {
	r := rr.r
	var err error
	if rr.d, err = rr.daemons.start(); err != nil {
		rr.problems.addf("%v", err)
		return
	}
	defer func() {
		if rr.d == nil {
			return
		}
		if err := rr.d.stop(); err != nil {
			rr.problems.addf("at the end: %v", err)
		}
		if left := checkGone(nil, rr.state); len(left) > 0 {
			rr.problems.addf("job processes %v still running %s after the daemon stopped (killed now)", left, jobGoneWait)
		}
	}()

	// Submit the job.
	args := append([]string{"start", "--name", jobName}, r.flags()...)
	args = append(args, rr.cfg.script)
	var slowEnd <-chan result // how a slow round's client ended
	if r.slow {
		if slowEnd, err = rr.startSlow(args); err != nil {
			rr.problems.addf("rsh job start: %v", err)
			return
		}
	} else {
		res, err := rr.c.run(commandWait, bytes.NewReader(input), args...)
		if err == nil && res.code != 0 {
			err = fmt.Errorf("exit %d (%s)", res.code, lastOf([]byte(res.stderr)))
		}
		if err != nil {
			rr.problems.addf("rsh job start: %v", err)
			return
		}
	}

	// Kill the daemon, and start it again, kills times.
	for k := range r.kills {
		var at time.Duration
		if k == 0 && r.slow {
			at = time.Duration(r.rng.Int64N(int64(r.slowFor)))
		} else {
			info, claimed, err := rr.c.getClaimed(rr.state, jobName)
			if err != nil {
				rr.problems.addf("before kill %d: %v", k+1, err)
				return
			}
			if claimed != "" {
				rr.problems.addf("before kill %d: %s", k+1, claimed)
			}
			// Done counts batches with --batch-size.
			at = time.Duration(r.rng.Int64N(int64(r.estimate(len(r.lines) - info.Done*max(r.batch, 1)))))
		}
		if r.midReceive && k == r.kills-1 {
			// A receive while the job runs: what it gets is committed.
			if !rr.receive(false, "") {
				return
			}
		}
		time.Sleep(at)
		if !rr.killDaemon(k+1, at) {
			return
		}
	}

	if slowEnd != nil {
		select {
		case res := <-slowEnd:
			fmt.Fprintf(rr.log, "rsh job start (slow input) ended: exit %d: %s\n", res.code, lastOf([]byte(res.stderr)))
			rr.checkSlowStart(res)
		case <-time.After(r.slowFor + commandWait):
			_ = rr.slowCmd.Process.Kill()
			rr.problems.addf("rsh job start (slow input) still running %s after its input ended (killed)", commandWait)
		}
	}

	rr.finish()
}

// startSlow starts `rsh job start` with its input from a generator that
// writes the round's lines over r.slowFor. It returns once the job was
// named (the client goes on sending); the client's end arrives on the
// channel.
func (rr *roundRun) startSlow(args []string) (<-chan result, error) {
	r := rr.r
	ch := make(chan result, 1)
	args = append(append([]string{"job"}, args...), "--socket", rr.c.socket)
	cmd := exec.Command(rr.cfg.rsh, args...)
	cmd.Dir = rr.c.dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	fmt.Fprintf(rr.log, "%s < a generator writing input.txt over %s\n", shellQuote(append([]string{"rsh"}, args...)), r.slowFor)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	rr.slowCmd = cmd
	go func() { // the generator
		defer stdin.Close()
		pause := r.slowFor * slowChunk / time.Duration(len(r.lines))
		for i := 0; i < len(r.lines); i += slowChunk {
			chunk := strings.Join(r.lines[i:min(i+slowChunk, len(r.lines))], "\n") + "\n"
			if _, err := io.WriteString(stdin, chunk); err != nil {
				return // the client ended
			}
			time.Sleep(pause)
		}
	}()
	named := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		name := ""
		if sc.Scan() {
			name = sc.Text()
		}
		named <- name
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		ch <- result{stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
	}()
	select {
	case name := <-named:
		if name != jobName {
			res := <-ch
			return nil, fmt.Errorf("exit %d, and it printed %q, not the job's name (%s)", res.code, name, lastOf([]byte(res.stderr)))
		}
	case <-time.After(commandWait):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("no job name after %s", commandWait)
	}
	return ch, nil
}

// killDaemon SIGKILLs the daemon, checks that its job processes end with
// it, notes whether the job was running (on file), and starts a new
// daemon. It reports whether the round can go on.
func (rr *roundRun) killDaemon(n int, at time.Duration) bool {
	before := descendants(rr.d.pid())
	rr.d.kill()
	rr.killed++
	onFile := stateOnFile(rr.state, jobName)
	if onFile == "Running" {
		rr.resumes++
	}
	fmt.Fprintf(rr.log, "kill %d: kill -9 the daemon at %s; %d processes below it; the job on file: %s\n", n, at.Round(time.Millisecond), len(before), onFile)
	if left := checkGone(before, rr.state); len(left) > 0 {
		rr.problems.addf("kill %d: processes %v of the killed daemon still running after %s (killed now)", n, left, jobGoneWait)
	}
	var err error
	if rr.d, err = rr.daemons.start(); err != nil {
		rr.problems.addf("after kill %d: %v", n, err)
		return false
	}
	return true
}

// checkSlowStart checks how a slow round's `rsh job start` ended: an
// upload the daemon took whole is a success; one cut short by a kill
// exits non-zero and says so.
func (rr *roundRun) checkSlowStart(res result) {
	var end struct {
		Size  int64  `json:"size"`
		Error string `json:"error"`
	}
	if err := readJSONFile(filepath.Join(rr.state, "jobs", jobName, "input.end"), &end); err != nil {
		rr.problems.addf("the job's input.end: %v", err)
		return
	}
	if res.code == 0 && end.Error != "" {
		rr.problems.addf("rsh job start exited 0, but the daemon says its input was cut short: %s", end.Error)
	}
}

// receive runs `rsh job receive --out records`: to the end, or, with
// kill, reading part of its output slowly and killing it part way. Its
// exit status must be wantCode's for the job's state; "" accepts any
// status a receive gives. It reports whether the round can go on.
func (rr *roundRun) receive(kill bool, state string) bool {
	n := len(rr.outs) + 1
	if !kill {
		res, err := rr.c.run(commandWait, nil, "receive", "--out", "records", jobName)
		if err != nil {
			rr.problems.addf("receive %d: %v", n, err)
			return false
		}
		if want := receiveCode(state, res.stdout); state == "" && res.code != 0 && res.code != 1 && res.code != 3 ||
			state != "" && res.code != want {
			rr.problems.addf("receive %d: exit %d, want %d (%s)", n, res.code, want, lastOf([]byte(res.stderr)))
		}
		rr.outs = append(rr.outs, receiveOutput{data: res.stdout})
		return true
	}
	args := []string{"job", "receive", "--out", "records", jobName, "--socket", rr.c.socket}
	cmd := exec.Command(rr.cfg.rsh, args...)
	cmd.Dir = rr.c.dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		rr.problems.addf("receive %d: %v", n, err)
		return false
	}
	if err := cmd.Start(); err != nil {
		rr.problems.addf("receive %d: %v", n, err)
		return false
	}
	// Read a few records, leave it blocked a while, read a few more, kill
	// it, then read what it had written: nothing it confirmed is lost.
	br := bufio.NewReader(stdout)
	var got bytes.Buffer
	readLines := func(n int) {
		for range n {
			l, err := br.ReadBytes('\n')
			got.Write(l)
			if err != nil {
				return
			}
		}
	}
	readLines(1 + rr.r.rng.IntN(100))
	time.Sleep(receivePause)
	readLines(1 + rr.r.rng.IntN(400))
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_, _ = io.Copy(&got, br)
	_ = cmd.Wait()
	killed := cmd.ProcessState.Sys().(syscall.WaitStatus).Signaled()
	fmt.Fprintf(rr.log, "  %s: killed part way: %v (%d bytes read)\n", shellQuote(append([]string{"rsh"}, args...)), killed, got.Len())
	rr.outs = append(rr.outs, receiveOutput{data: got.Bytes(), killed: killed})
	return true
}

// receiveCode is the exit status of a receive that printed out from a
// job in state: 3 for a Failed job, else 1 if a record it printed is not
// a success, else 0.
func receiveCode(state string, out []byte) int {
	if state == "Failed" {
		return 3
	}
	lines, _ := splitLines(out)
	for _, l := range lines {
		var r jobRecord
		if json.Unmarshal(l, &r) == nil && r.Status != "Success" {
			return 1
		}
	}
	return 0
}

// finish waits for the job, receives its results and checks everything.
func (rr *roundRun) finish() {
	r := rr.r
	w, err := rr.c.run(jobWait, nil, "wait", jobName)
	if err != nil {
		rr.problems.addf("%v", err)
		return
	}
	info, claimed, err := rr.c.getClaimed(rr.state, jobName)
	if err != nil {
		rr.problems.addf("%v", err)
		return
	}
	if claimed != "" {
		rr.problems.addf("at the end: %s", claimed)
	}
	jobDir := filepath.Join(rr.state, "jobs", jobName)
	inputData, err1 := os.ReadFile(filepath.Join(jobDir, "input"))
	results, err2 := os.ReadFile(filepath.Join(jobDir, "results.ndjson"))
	var end struct {
		Error string `json:"error"`
	}
	err3 := readJSONFile(filepath.Join(jobDir, "input.end"), &end)
	if err := errors.Join(err1, err2, err3); err != nil {
		rr.problems.addf("reading the job's files: %v", err)
		return
	}
	arrived, f := inputItems(r.lines, inputData)
	rr.arrived = arrived
	rr.problems = append(rr.problems, f...)
	if !r.slow && arrived != len(r.lines) {
		rr.problems.addf("the job's input has %d of the %d items sent", arrived, len(r.lines))
	}
	want := jobExpect{lines: r.lines, arrived: arrived, batch: r.batch}
	if r.fail {
		want.failMod = failMod
	}

	// The state, and wait's exit status.
	expectFailed := 0
	for _, l := range r.lines[:min(arrived, len(r.lines))] {
		if failsByDesign(inputKey(l), want.failMod) {
			expectFailed++
		}
	}
	switch {
	case end.Error != "":
		if info.State != "Failed" || !strings.Contains(info.Reason, "input") {
			rr.problems.addf("the input was cut short (%s), but the job is %s (%s), not Failed for its input", end.Error, info.State, info.Reason)
		}
	case expectFailed > 0:
		if info.State != "CompletedWithErrors" {
			rr.problems.addf("the job is %s (%s), want CompletedWithErrors", info.State, info.Reason)
		}
	default:
		if info.State != "Completed" {
			rr.problems.addf("the job is %s (%s), want Completed", info.State, info.Reason)
		}
	}
	if wantCode := stateExit(info.State); w.code != wantCode {
		rr.problems.addf("rsh job wait exited %d for a %s job, want %d", w.code, info.State, wantCode)
	}
	if info.Resumed != rr.resumes {
		rr.problems.addf("the job says it was resumed %d times, but %d kills found it running", info.Resumed, rr.resumes)
	}

	// The results: the committed part, exactly once.
	if info.Committed > int64(len(results)) {
		rr.problems.addf("committed %d bytes, but the results file has %d", info.Committed, len(results))
		info.Committed = int64(len(results))
	}
	sum, f := checkJobResults(want, results[:info.Committed])
	rr.problems = append(rr.problems, f...)
	// Done and Failed count records: items, or with --batch-size batches.
	if info.Done != sum.records || info.Failed != sum.failed {
		rr.problems.addf("the job says %d done, %d failed; its committed results have %d records, %d failed", info.Done, info.Failed, sum.records, sum.failed)
	}

	// The receives: at least once, and exactly once unless one was killed.
	if r.killReceive && !rr.receive(true, "") {
		return
	}
	for range 2 { // the second gets nothing
		if !rr.receive(false, info.State) {
			return
		}
	}
	if last := rr.outs[len(rr.outs)-1]; len(last.data) > 0 {
		rr.problems.addf("a receive after everything was received printed %d bytes", len(last.data))
	}
	rr.problems = append(rr.problems, checkReceived(want, sum, rr.outs)...)
	after, err := rr.c.get(jobName)
	if err != nil {
		rr.problems.addf("%v", err)
		return
	}
	if after.Received != sum.records || after.ReceivedBytes != info.Committed {
		rr.problems.addf("received %d records (%d bytes), want all %d (%d bytes)", after.Received, after.ReceivedBytes, sum.records, info.Committed)
	}
}

// stateExit is the exit status of `rsh job wait` for a finished job.
func stateExit(state string) int {
	switch state {
	case "Completed":
		return 0
	case "CompletedWithErrors":
		return 1
	case "Failed":
		return 3
	case "Stopped":
		return 4
	}
	return -1
}

func readJSONFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
