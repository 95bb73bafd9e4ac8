package pool

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/runspaces/rsh/vm"
)

// DefaultGrace is how long an item may go on after its timeout fired (or
// after its run was cancelled) before it is abandoned. JavaScript code
// stops within microseconds of an interrupt and rsh's blocking builtins
// watch the item's context, so only native code that never checks (a huge
// JSON.stringify, a catastrophic regular expression, a giant fill) is still
// running after this long.
const DefaultGrace = time.Second

// A Runner runs items for one worker of a pool, one at a time, in order.
// The pool calls it from one goroutine at a time.
//
// The default runner hosts runspaces in this process; package worker
// provides one whose runspaces live in worker processes, which the
// operating system can bound and kill.
type Runner interface {
	// Run runs items in order. For each item it starts it sets out[i] to
	// the item's final result (after retries) and then calls ended(i).
	// Items whose Err is set are skipped (the pool reports them). Once
	// stopped reports true it starts no further item, leaving their out[i]
	// nil. Run returns when every item it started has a result, and keeps
	// nothing of items past it: the pool reuses their storage (a runner
	// that cannot help keeping some, like the local one that leaves a
	// goroutine stuck in native code holding its batch, says so with a
	// method keptItems() bool, and that batch's storage is not reused). If ended(i)
	// sets out[i] to nil, the pool has used the result up (Encode), and
	// the runner may reuse its storage for a later item.
	Run(ctx context.Context, items []Item, out []*vm.Result, ended func(i int), stopped func() bool)
	// Usable reports whether the runner may run more items.
	Usable() bool
	// Close releases the runner.
	Close()
}

// RunnerConfig is what a pool asks of each runner it makes.
type RunnerConfig struct {
	// Fresh gives every item a new runspace.
	Fresh bool
	// Retries and RetryDelay are as in Options.
	Retries    int
	RetryDelay time.Duration
	// Grace is how long an item may run past its timeout, or past the
	// cancellation of its run, before it is abandoned.
	Grace time.Duration
	// Untimed is as in Options: items may run without reading the clock,
	// their results with a zero StartedAt and Duration.
	Untimed bool
	// OnAbandon, when set, is called (from the runner's goroutine) each
	// time a runspace is abandoned in native code: its goroutine still
	// runs, so a worker process may want to be replaced.
	OnAbandon func() `json:"-"`
}

// An Engine makes the runners of a pool.
type Engine interface {
	NewRunner(ctx context.Context, cfg RunnerConfig) (Runner, error)
}

// BatchSizer may be implemented by an Engine whose runners pay a fixed
// cost per Run call (a round trip to another process): the pool then aims
// each batch at target run time, with at most most items (and never more
// than ReadAhead), instead of its in-process defaults.
type BatchSizer interface {
	BatchSize() (target time.Duration, most int)
}

// StartFailed is the result of an item that could not start because its
// runspace (or its worker) could not be made: an Exception with err, or
// Stopped when ctx ended first (which interrupted the making). Every
// engine reports this case with it.
func StartFailed(ctx context.Context, err error) vm.Result {
	if ctx.Err() != nil {
		return vm.Result{StartedAt: time.Now(), Status: vm.Stopped, Error: &vm.ErrorInfo{Message: "interrupted while starting"}}
	}
	return vm.Result{StartedAt: time.Now(), Status: vm.Exception, Attempts: 1, Error: &vm.ErrorInfo{Message: err.Error()}}
}

// LocalEngine returns the engine that runs items on runspaces of f in
// this process (what a pool uses when Options.Engine is nil).
func LocalEngine(f *vm.Factory) Engine { return localEngine{f} }

type localEngine struct{ f *vm.Factory }

// NewRunner makes a runner with one runspace, so that a script that fails
// to initialise is reported here (a *vm.InitError).
func (e localEngine) NewRunner(ctx context.Context, cfg RunnerConfig) (Runner, error) {
	rs, err := e.f.NewRunspace(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	return &localRunner{f: e.f, cfg: cfg, ex: newExecutor(e.f, cfg, rs)}, nil
}

// localRunner runs items on an executor goroutine and waits for them, so
// that an item stuck in native code past its timeout can be abandoned: it
// gets its result on time, its runtime is left to the stuck goroutine
// (which closes it if it ever returns), and the rest of the batch goes on
// with a new executor and runspace.
type localRunner struct {
	f      *vm.Factory
	cfg    RunnerConfig
	ex     *executor
	timer  *time.Timer
	closed bool
	// kept is set when an executor was abandoned since keptItems was
	// last asked: its stuck goroutine still reads the batch's items.
	kept bool
}

// keptItems reports whether the last Run left items in use by an
// abandoned executor (see Runner), and clears the flag.
func (r *localRunner) keptItems() bool {
	k := r.kept
	r.kept = false
	return k
}

func (r *localRunner) Usable() bool { return !r.closed }

func (r *localRunner) Close() {
	if r.closed {
		return
	}
	r.closed = true
	if r.ex != nil {
		close(r.ex.jobs)
		r.ex = nil
	}
}

// job is one Run call handed to an executor.
type job struct {
	ctx     context.Context
	items   []Item
	out     []*vm.Result
	ended   func(int)
	stopped func() bool
	from    int // first item to run
	done    chan struct{}
}

func (r *localRunner) Run(ctx context.Context, items []Item, out []*vm.Result, ended func(int), stopped func() bool) {
	j := &job{ctx: ctx, items: items, out: out, ended: ended, stopped: stopped, done: make(chan struct{})}
	for {
		if r.ex == nil {
			r.ex = newExecutor(r.f, r.cfg, nil)
		}
		r.ex.jobs <- j
		next, finished := r.wait(j)
		if finished {
			return
		}
		// The executor was abandoned with item next-1 stuck: go on with
		// the rest of the batch on a new one (and a job of its own: the
		// stuck goroutine still holds the old one, and the batch's items).
		r.ex, r.kept = nil, true
		rest := *j
		rest.from, rest.done = next, make(chan struct{})
		j = &rest
	}
}

// wait waits for j to finish, abandoning its executor if an item overstays
// its timeout (or the run's cancellation) by the grace period. It reports
// where to go on from when it abandoned one.
func (r *localRunner) wait(j *job) (next int, finished bool) {
	timeout := r.f.State().Timeout
	ctxDone := j.ctx.Done()
	var stopAt time.Time // when the run's cancellation was seen
	for {
		var tick <-chan time.Time
		if timeout > 0 || !stopAt.IsZero() {
			// Look again every quarter of the grace period: an item is
			// abandoned at most grace/4 after it overstayed.
			if r.timer == nil {
				r.timer = time.NewTimer(r.cfg.Grace / 4)
			} else {
				r.timer.Reset(r.cfg.Grace / 4)
			}
			tick = r.timer.C
		}
		select {
		case <-j.done:
			r.stopTimer()
			return 0, true
		case <-ctxDone:
			ctxDone, stopAt = nil, time.Now()
			continue
		case <-tick:
		}
		if i, res, ok := r.ex.abandonIfStuck(timeout, r.cfg.Grace, stopAt); ok {
			if r.cfg.OnAbandon != nil {
				r.cfg.OnAbandon()
			}
			j.out[i] = res
			j.ended(i)
			return i + 1, false
		}
	}
}

func (r *localRunner) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// executor is the goroutine that runs a local runner's items. Its state
// is shared with the waiting runner under mu.
type executor struct {
	f    *vm.Factory
	cfg  RunnerConfig
	jobs chan *job

	mu        sync.Mutex
	abandoned bool
	running   bool      // an attempt is under way
	started   time.Time // when it started
	index     int       // its item
	attempt   int
	rsID      int // its runspace, when it has one

	// timed is whether items read the clock: unless the config is
	// Untimed and there is no timeout (whose watch needs started).
	timed bool

	rs *vm.Runspace // used by the executor goroutine only
}

// newExecutor starts an executor; rs, when not nil, is its first runspace.
func newExecutor(f *vm.Factory, cfg RunnerConfig, rs *vm.Runspace) *executor {
	e := &executor{f: f, cfg: cfg, jobs: make(chan *job), rs: rs,
		timed: !cfg.Untimed || f.State().Timeout > 0}
	go e.loop()
	return e
}

func (e *executor) loop() {
	defer func() {
		if e.rs != nil {
			e.rs.Close()
		}
	}()
	for j := range e.jobs {
		if !e.runJob(j) {
			return // abandoned: the runner has moved on
		}
		close(j.done)
	}
}

// runJob runs j's items from j.from; it reports false if the executor was
// abandoned meanwhile.
func (e *executor) runJob(j *job) bool {
	// Results are allocated together: one for the first item, then one
	// for each item left once a result is kept. One that the pool used
	// up (a plain item under Encode) is reused for the next item, so a
	// run of plain items allocates a single result per batch.
	var slab []vm.Result
	first := true
	var now time.Time
	if e.timed {
		now = time.Now()
	}
	for i := j.from; i < len(j.items); i++ {
		it := &j.items[i]
		if it.Err != nil {
			continue
		}
		if j.stopped() {
			return true
		}
		if len(slab) == 0 {
			n := len(j.items) - i
			if first {
				n, first = 1, false
			}
			slab = make([]vm.Result, n)
		}
		res := &slab[0]
		if e.timed {
			res.StartedAt = now
		}
		if !e.runItem(j.ctx, it, res, i) {
			return false
		}
		if !e.attemptEnded(func() { j.out[i] = res }) {
			return false
		}
		j.ended(i)
		if e.timed {
			now = res.StartedAt.Add(res.Duration)
		}
		if j.out[i] == nil {
			*res = vm.Result{} // used up: reused for the next item
		} else {
			slab = slab[1:]
		}
	}
	return true
}

// runItem runs one item, retrying as the config says, and leaves the last
// attempt's result in res, its attempt still marked running (runJob ends
// it as it hands the result over). It reports false if abandoned.
func (e *executor) runItem(ctx context.Context, it *Item, res *vm.Result, index int) bool {
	started := res.StartedAt
	for attempt := 1; ; attempt++ {
		if !e.attemptOnce(ctx, it, res, index, attempt) {
			return false
		}
		retry := (res.Status == vm.Exception || res.Status == vm.Timeout) && attempt <= e.cfg.Retries
		if !retry {
			finish(res, attempt, started)
			return true
		}
		if !e.attemptEnded(nil) {
			return false
		}
		if !sleepCtx(ctx, backoff(e.cfg.RetryDelay, attempt)) {
			finish(res, attempt, started)
			return true
		}
		*res = vm.Result{}
	}
}

// finish records how many attempts res took, and makes it span them all.
func finish(res *vm.Result, attempt int, started time.Time) {
	res.Attempts = attempt
	if attempt > 1 {
		res.Duration = res.StartedAt.Add(res.Duration).Sub(started)
		res.StartedAt = started
	}
}

// attemptEnded marks the running attempt over and, unless the executor
// was abandoned meanwhile, calls then (if any) under the same lock; it
// reports whether the executor goes on.
func (e *executor) attemptEnded(then func()) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.running = false
	if e.abandoned {
		return false
	}
	if then != nil {
		then()
	}
	return true
}

// attemptOnce runs one attempt of an item, marked running for the
// runner's watch; the caller ends the mark (attemptEnded).
func (e *executor) attemptOnce(ctx context.Context, it *Item, res *vm.Result, index, attempt int) bool {
	// The attempt starts when the result says (the previous item's end,
	// saving a clock read), or now; untimed, it is not known (zero).
	started := res.StartedAt
	if started.IsZero() && e.timed {
		started = time.Now()
	}
	e.mu.Lock()
	if e.abandoned {
		e.mu.Unlock()
		return false
	}
	e.running, e.started, e.index, e.attempt, e.rsID = true, started, index, attempt, 0
	if e.rs != nil {
		e.rsID = e.rs.ID()
	}
	e.mu.Unlock()

	if e.rs == nil {
		rs, err := e.f.NewRunspace(ctx)
		if err != nil {
			*res = StartFailed(ctx, err)
		} else {
			e.rs = rs
			res.StartedAt = time.Time{} // creating the runspace is not the item's time
		}
	}
	if e.rs != nil {
		if e.timed {
			e.rs.InvokeInto(ctx, it.Value, res)
		} else {
			e.rs.InvokeUntimed(ctx, it.Value, res)
		}
		if e.cfg.Fresh || !e.rs.Usable() {
			e.rs.Close()
			e.rs = nil
		}
	}
	return true
}

// abandonIfStuck abandons the executor if its current attempt has run
// past timeout+grace, or past grace after the run was cancelled at
// stopAt. It then returns the item's index and the result it gets.
func (e *executor) abandonIfStuck(timeout, grace time.Duration, stopAt time.Time) (int, *vm.Result, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.running {
		return 0, nil, false
	}
	now := time.Now()
	res := &vm.Result{StartedAt: e.started, Attempts: e.attempt, Runspace: e.rsID}
	if !e.started.IsZero() { // untimed, it stays so
		res.Duration = now.Sub(e.started)
	}
	switch {
	case timeout > 0 && now.Sub(e.started) >= timeout+grace:
		res.Status = vm.Timeout
		res.Error = &vm.ErrorInfo{Message: fmt.Sprintf(
			"timed out after %v and did not stop within %v more (stuck in native code); its runtime was abandoned", timeout, grace)}
	case !stopAt.IsZero() && now.Sub(stopAt) >= grace:
		res.Status = vm.Stopped
		res.Error = &vm.ErrorInfo{Message: fmt.Sprintf(
			"interrupted, and did not stop within %v (stuck in native code); its runtime was abandoned", grace)}
	default:
		return 0, nil, false
	}
	// The stuck goroutine keeps its runspace and closes it if it ever
	// returns; it is never reused.
	e.abandoned = true
	return e.index, res, true
}
