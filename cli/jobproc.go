package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/runspaces/rsh/jobs"
	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// A job process runs one job of the daemon (`rsh serve`): the daemon starts
// rsh again as `rsh __job DIR` in the directory of the client that started
// the job, with the job's results file as stdout, its log as stderr and a
// report pipe as file descriptor 3. The job runs the way `rsh run` runs a
// script, with its job log in DIR, resumed from it (every item it names is
// done, whatever its status), its input read from DIR/input as the daemon
// appends to it, and its results as records.

// JobMain runs this process as a job process, and exits, when its
// arguments say so (a daemon started it); otherwise it returns at once. A
// program that embeds the job daemon (jobs.Manager) and runs jobs with
// itself calls it first thing in main, next to worker.Main.
func JobMain() {
	if len(os.Args) < 3 || os.Args[1] != jobs.ProcessArg {
		return
	}
	os.Exit(jobProcess(os.Args[2]))
}

// jobInputFormat is the input format of a job process (see jobs.ParseItemLine);
// not one of --in's.
const jobInputFormat = "job"

// decodeJobLine turns a line of a job's input into an item.
func decodeJobLine(in *input, line []byte) pool.Item {
	value, text, msg, err := jobs.ParseItemLine(line)
	switch {
	case err != nil:
		return pool.Item{Input: vm.JSONString(string(line)), Err: err}
	case value == nil:
		return pool.Item{Input: json.RawMessage(in.keep(text)), Err: errors.New(msg)}
	}
	if in.validate && !isJSONInt(value) && !json.Valid(value) {
		return pool.Item{Input: vm.JSONString(string(value)), Err: errors.New("invalid JSON")}
	}
	raw := json.RawMessage(in.keep(value))
	return pool.Item{Value: raw, Input: raw}
}

// jobLockWait is how long a job process waits for the lock of its job: the
// process of an earlier daemon that died stops within a fraction of a
// second (it watches its parent), and the lock is released with it.
const jobLockWait = 30 * time.Second

// parentPoll is how often a job process checks that its daemon lives.
const parentPoll = 100 * time.Millisecond

// inputPoll is how often a job process looks for more input once it has
// read everything there is.
const inputPoll = 20 * time.Millisecond

func jobProcess(dir string) int {
	report := os.NewFile(3, "report")
	rep := &jobReporter{w: report, r: jobs.Report{Total: -1}}
	failNow := func(err error) int {
		fmt.Fprintf(os.Stderr, "rsh: %v\n", err)
		rep.final(err)
		return ExitUsage
	}
	lock, err := jobs.LockFileWait(filepath.Join(dir, jobs.JobLockFile), jobLockWait)
	if err != nil {
		return failNow(err)
	}
	defer lock.Close()
	var spec jobs.Spec
	data, err := os.ReadFile(filepath.Join(dir, jobs.SpecFile))
	if err == nil {
		err = json.Unmarshal(data, &spec)
	}
	if err != nil {
		return failNow(fmt.Errorf("reading the job: %w", err))
	}
	o, err := jobRunOptions(dir, &spec)
	if err != nil {
		return failNow(err)
	}

	// SIGTERM (the daemon stopping the job) stops the items at once: they
	// end Stopped. The daemon's death ends this process at once instead,
	// as the daemon closing does (SIGKILL): the next daemon resumes the
	// job from its job log, and items stopped now would be recorded as
	// Stopped, results it would keep.
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	parent := os.Getppid()
	go func() {
		for range time.Tick(parentPoll) {
			if os.Getppid() != parent {
				os.Exit(ExitInterrupted)
			}
		}
	}()

	in, err := os.Open(filepath.Join(dir, jobs.InputFile))
	var stdin io.Reader
	switch {
	case err == nil:
		defer in.Close()
		stdin = &followInput{ctx: ctx, f: in, endPath: filepath.Join(dir, jobs.InputEndFile), end: -1}
	case errors.Is(err, os.ErrNotExist) && !spec.Input && len(spec.Items) == 0:
		stdin = nil // no input: the script runs once (see items)
	default:
		return failNow(fmt.Errorf("the job's input: %w", err))
	}

	var total int
	follow, _ := stdin.(*followInput)
	hooks := &runHooks{
		resumeAll: true,
		resumed: func(done, failed int) {
			committed := int64(0)
			if fi, err := os.Stdout.Stat(); err == nil {
				committed = fi.Size()
			}
			rep.update(func(r *jobs.Report) { r.Done, r.Failed, r.Committed = done, failed, committed })
		},
		claimed: func(end int64, items, failed int) {
			rep.update(func(r *jobs.Report) { r.Done += items; r.Failed += failed; r.Committed = end })
		},
		items: func(seq iter.Seq[pool.Item]) iter.Seq[pool.Item] {
			return func(yield func(pool.Item) bool) {
				for it := range seq {
					total++
					if !yield(it) {
						return
					}
				}
				if total == 0 && (follow == nil || follow.endErr == "") {
					// No items: the script runs once, with null (not when
					// the input was cut short before any item arrived).
					total = 1
					rep.update(func(r *jobs.Report) { r.Total = total })
					yield(pool.Item{Value: json.RawMessage("null"), Input: json.RawMessage("null")})
					return
				}
				rep.update(func(r *jobs.Report) { r.Total = total })
			}
		},
		ended: func(setup, out, in error) {
			switch {
			case setup != nil:
				rep.fail(setup)
			case out != nil:
				rep.fail(fmt.Errorf("storing results: %w", withoutPath(out)))
			case in != nil:
				rep.fail(fmt.Errorf("reading the input: %w", in))
			}
		},
	}
	if stdin == nil {
		stdin = eofReader{}
	}
	env := Env{Stdin: stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	// The pool's metrics go to the daemon every metricsReport while the
	// job runs.
	stopMetrics := make(chan struct{})
	var metricsDone sync.WaitGroup
	hooks.pool = func(p *pool.Pool) {
		metricsDone.Add(1)
		go func() {
			defer metricsDone.Done()
			t := time.NewTicker(metricsReport)
			defer t.Stop()
			for {
				select {
				case <-stopMetrics:
					return
				case <-t.C:
				}
				m := p.Metrics()
				rep.update(func(r *jobs.Report) {
					r.Running, r.Queued, r.Retried = m.Running, m.Queued, m.Retried
					r.P50Ms = msOf(m.Durations.Percentile(50))
					r.P99Ms = msOf(m.Durations.Percentile(99))
				})
			}
		}()
	}
	code := runWith(ctx, o, env, hooks)
	close(stopMetrics)
	metricsDone.Wait()
	rep.update(func(r *jobs.Report) { r.Running, r.Queued = 0, 0 })
	rep.final(nil)
	return code
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// metricsReport is how often a job process sends its pool's metrics: as
// often as `rsh job ls` is worth refreshing, at one small write.
const metricsReport = 500 * time.Millisecond

// msOf is d in milliseconds.
func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// jobRunOptions makes the options of `rsh run` that run spec: the flags'
// defaults, what the spec says, and the job's files in dir.
func jobRunOptions(dir string, spec *jobs.Spec) (*runOptions, error) {
	o := &runOptions{}
	fs := newRunFlags(o)
	if err := fs.Parse(nil); err != nil {
		return nil, err
	}
	// Inline code loads modules only from --module-path; a script file
	// from its directory too, if the daemon may read it (ScriptDir).
	if spec.ScriptPath == "" {
		o.eval, o.evalSet, o.detached = spec.Script, true, true
	} else {
		src := spec.Script
		o.script, o.source, o.sourceDir = spec.ScriptPath, &src, spec.ScriptDir
	}
	if spec.Throttle > 0 {
		o.throttle = spec.Throttle
	}
	o.timeout = time.Duration(spec.TimeoutMs) * time.Millisecond
	o.retries = spec.Retries
	if spec.RetryDelayMs > 0 {
		o.retryDelay = time.Duration(spec.RetryDelayMs) * time.Millisecond
	}
	o.batchSize = spec.BatchSize
	o.fresh = spec.Fresh
	if spec.Halt != "" {
		o.haltSpec = spec.Halt
	}
	if spec.Isolate != "" {
		o.isolate = spec.Isolate
	}
	if spec.MaxMemory > 0 {
		o.maxMemStr = formatSize(spec.MaxMemory)
	}
	o.workers = spec.Workers
	lim := spec.Limits
	if lim.MaxOutputBytes != 0 {
		o.maxOutput = byteSize(max(lim.MaxOutputBytes, 0))
	}
	if lim.MaxOutputValues != 0 {
		o.maxOutputValues = max(lim.MaxOutputValues, 0)
	}
	if lim.MaxMessages != 0 {
		o.maxMessages = max(lim.MaxMessages, 0)
	}
	if lim.MaxTimers != 0 {
		o.maxTimers = max(lim.MaxTimers, 0)
	}
	o.out = "records"
	o.keepOrder = true
	// Messages (warnings, errors, what the script writes while it loads)
	// go to stderr: the job's log.
	o.echoStreams = true
	o.joblog, o.resume = filepath.Join(dir, jobs.JoblogFile), true
	o.progressSet = true
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("the job's options: %w", err)
	}
	o.in = jobInputFormat
	st := &o.state
	st.Imports = spec.Imports
	st.ModulePaths = spec.ModulePaths
	st.Permissions = spec.Permissions
	st.Variables = spec.VariableList()
	st.Params = nil
	if len(spec.Params) > 0 {
		st.Params = map[string]any{}
		for n, v := range spec.Params {
			st.Params[n] = v
		}
	}
	return o, nil
}

// jobReporter writes a job process's reports to its daemon.
type jobReporter struct {
	mu   sync.Mutex
	w    io.Writer
	r    jobs.Report
	err  error // the first reason the job could not finish
	done bool
	buf  []byte
}

func (j *jobReporter) update(f func(*jobs.Report)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f(&j.r)
	j.sendLocked()
}

func (j *jobReporter) fail(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		j.err = err
	}
}

func (j *jobReporter) final(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.done {
		return
	}
	if j.err == nil {
		j.err = err
	}
	j.r.Final = true
	if j.err != nil {
		j.r.Error = j.err.Error()
	}
	j.sendLocked()
	j.done = true
}

func (j *jobReporter) sendLocked() {
	if j.done || j.w == nil {
		return
	}
	j.buf = jobs.AppendReport(j.buf[:0], j.r)
	_, _ = j.w.Write(j.buf) // a daemon that went away learns nothing more
}

// followInput reads a job's input file while the daemon appends to it: at
// its end it waits for more until input.end says how long the input is.
type followInput struct {
	ctx     context.Context
	f       *os.File
	endPath string
	off     int64
	end     int64  // -1 until input.end is there
	endErr  string // why the input is incomplete, from input.end
}

func (r *followInput) Read(p []byte) (int, error) {
	for {
		if r.end >= 0 {
			if r.off >= r.end {
				return 0, io.EOF
			}
			p = p[:min(int64(len(p)), r.end-r.off)]
		}
		n, err := r.f.Read(p)
		r.off += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if r.end < 0 {
			var end jobs.InputEnd
			data, err := os.ReadFile(r.endPath)
			if err == nil && json.Unmarshal(data, &end) == nil {
				r.end, r.endErr = end.Size, end.Error
				continue
			}
		} else {
			return 0, fmt.Errorf("the input ends at %d bytes, short of the %d bytes recorded", r.off, r.end)
		}
		select {
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		case <-time.After(inputPoll):
		}
	}
}
