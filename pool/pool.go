// Package pool runs a script over a stream of items in a pool of runspaces,
// like PowerShell's RunspacePool and ForEach-Object -Parallel.
//
// Guarantees, each tested:
//   - Exactly one result per item that was started, whatever happens to it:
//     success, exception, timeout, retries, a broken runspace, or
//     cancellation (a started item that is interrupted reports vm.Stopped).
//     Items that were never started when a run was stopped or drained
//     yield nothing, so a caller can tell exactly what remains to be done.
//     Items that could not be decoded (Item.Err) always yield InvalidInput.
//   - At most Throttle items run at once in a Pool, across all its concurrent
//     runs, and at most the Limiter's size across every Pool sharing it.
//     SetThrottle and Limiter.SetSize change these bounds while runs go
//     on: a raise starts more items at once in the runs going on; after a
//     lowering, no item starts until fewer than the new bound run.
//   - A Stream is full (TrySubmit reports false, Submit waits) exactly
//     when its queue's size of submitted items wait for a worker; each
//     submission's seq is the Seq of its result.
//   - Shutdown starts no further item and lets the running ones finish;
//     if its context ends first, they are interrupted (vm.Stopped) and it
//     returns once every run has given back its runspaces. Close does the
//     same at once, without waiting. Runs started after either report
//     ErrClosed for each item.
//   - A runspace is used by one goroutine at a time; one that was
//     interrupted or panicked is closed and replaced, never reused.
//   - An item stuck in native code (which never sees an interrupt) gets its
//     Timeout result Grace after its timeout, or Stopped Grace after its run
//     was cancelled; its runspace is abandoned to the stuck goroutine and
//     the run goes on without it.
//   - Items run on Runners made by an Engine: runspaces in this process by
//     default, or worker processes (package worker), with the same
//     guarantees.
//   - Metrics counts every result, once, before Run delivers it.
//   - With KeepOrder, results come in input order, and at most Window items
//     are taken from the input ahead of the next result to be delivered, so
//     memory stays bounded however slow an early item is.
package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runspaces/rsh/vm"
)

// DefaultWindowPerRunspace sizes the reorder window when Options.Window is
// zero: enough items per runspace that one slow item does not starve the
// others for long, while keeping the buffer small.
const DefaultWindowPerRunspace = 64

// ErrClosed is reported for items run on a closed pool, and by a Stream
// that takes no more items.
var ErrClosed = errors.New("pool: closed")

// Options configure a Pool.
type Options struct {
	// Factory makes the runspaces: the script and its initial state.
	Factory *vm.Factory
	// Engine, when set, makes the runners that run items instead of
	// runspaces of Factory in this process: package worker's engine runs
	// them in worker processes. Factory may then be nil.
	Engine Engine
	// Grace is how long an item may run on after its timeout fired, or
	// after its run was cancelled, before it is given its Timeout (or
	// Stopped) result and its runtime is abandoned; 0 means DefaultGrace.
	Grace time.Duration
	// Throttle is the most items running at once; 0 means runtime.NumCPU().
	// SetThrottle changes it later.
	Throttle int
	// Min runspaces are created by New, before any item; at least one is
	// always created so that a script that fails to initialise is reported
	// before any input is read.
	Min int
	// Fresh gives every item a new runspace (full isolation, slower).
	Fresh bool
	// KeepOrder delivers results in input order.
	KeepOrder bool
	// Window bounds, with KeepOrder, how many items may be taken ahead of
	// the next result to deliver; 0 means DefaultWindowPerRunspace*Throttle.
	Window int
	// Limiter, when set, is shared with other pools to bound their total.
	Limiter *Limiter
	// Retries is how many times an item that ends in vm.Exception or
	// vm.Timeout is run again. The result is the last attempt's, with
	// Attempts saying how many were made.
	Retries int
	// RetryDelay is the wait before the first retry; each further retry
	// waits twice as long as the one before (at most MaxRetryDelay).
	RetryDelay time.Duration
	// Untimed, for a caller that needs no item times, lets the runspaces
	// of this process run items without reading the clock (two reads are
	// a tenth of a trivial item): results then have a zero StartedAt and
	// Duration, and Metrics counts them in Completed without a duration
	// sample. Items still get their timeouts: with a vm.InitialState
	// Timeout, items are timed anyway. Other engines may ignore it.
	Untimed bool
}

// MaxRetryDelay caps the exponential backoff between retries.
const MaxRetryDelay = 5 * time.Minute

// Item is one input of a run.
type Item struct {
	// Value is the item passed to the script: JSON data (a json.RawMessage
	// is parsed in the runspace, and reports vm.InvalidInput if it is not
	// valid JSON) or a string.
	Value any
	// Input is the item as JSON for the result record; when nil it is
	// derived from Value.
	Input json.RawMessage
	// Err, when set, means the input could not be decoded: the item is not
	// run and its result has status vm.InvalidInput.
	Err error
	// Count is how many input records the item stands for (a batch of
	// lines passed to the script as one array); 0 means 1. Seqs advance
	// by Count, so a result's Seq is the position of its first record, and
	// its BatchSize is Count.
	Count int
	// Seq, when positive, is the item's seq (the position of its first
	// record) instead of the next number, for a caller that leaves items
	// out but keeps the others' positions (a resumed run); items after it
	// without a Seq are numbered on from there.
	Seq int64
}

// Pool runs items on runspaces. It is safe for concurrent use; several runs
// (and streams) may share it and its throttle, which SetThrottle changes
// while they go on. Shutdown drains it and Close stops it.
type Pool struct {
	opts   Options
	engine Engine
	rcfg   RunnerConfig
	own    *Limiter // the pool's throttle, across its runs
	// throttle is own's size, read by workers once per batch (an atomic,
	// not own's lock) to find out whether they are surplus.
	throttle atomic.Int64
	// tune serialises SetThrottle, so throttle and own's size end the same.
	tune sync.Mutex
	// draining is closed when the pool starts closing: its runs stop
	// taking items. halt is closed when they must stop at once: their
	// running items are interrupted. Neither is ever replaced.
	draining, halt chan struct{}

	mu     sync.Mutex
	idle   []Runner
	close  bool // draining is closed
	halted bool // halt is closed
	// runs are the runs whose workers are going, for SetThrottle,
	// Shutdown and Metrics' Queued.
	runs map[*run]struct{}
	// open counts the runs that started before the pool closed and still
	// have workers: Shutdown waits for them. drained, when made, is closed
	// as open drops to zero once the pool is closed.
	open    int
	drained chan struct{}
	counts  counters
}

// New makes a pool and its first runspaces. It returns a *vm.InitError if
// the script fails to initialise.
func New(ctx context.Context, opts Options) (*Pool, error) {
	if opts.Factory == nil && opts.Engine == nil {
		return nil, errors.New("pool: Options.Factory and Options.Engine are nil")
	}
	if opts.Throttle <= 0 {
		opts.Throttle = runtime.NumCPU()
	}
	if opts.Min < 0 || opts.Min > opts.Throttle {
		return nil, fmt.Errorf("pool: min %d must be between 0 and the throttle %d", opts.Min, opts.Throttle)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindowPerRunspace * opts.Throttle
	}
	if opts.Window < opts.Throttle {
		opts.Window = opts.Throttle
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	p := &Pool{opts: opts, engine: opts.Engine, own: NewLimiter(opts.Throttle),
		draining: make(chan struct{}), halt: make(chan struct{}),
		rcfg: RunnerConfig{Fresh: opts.Fresh, Retries: opts.Retries, RetryDelay: opts.RetryDelay, Grace: opts.Grace, Untimed: opts.Untimed}}
	p.throttle.Store(int64(opts.Throttle))
	if p.engine == nil {
		p.engine = LocalEngine(opts.Factory)
	}
	for i := 0; i < max(opts.Min, 1); i++ {
		r, err := p.engine.NewRunner(ctx, p.rcfg)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.idle = append(p.idle, r)
	}
	return p, nil
}

// Throttle returns the most items the pool runs at once.
func (p *Pool) Throttle() int { return int(p.throttle.Load()) }

// SetThrottle changes the most items the pool runs at once; n <= 0 means
// runtime.NumCPU(), as in Options. The runs going on follow at once:
// raising it starts more workers in each of them; lowering it lets the
// running items finish, and then the surplus workers give back their
// runspaces and end (idle runspaces above the new throttle are closed).
// Options.Window, the reorder window of KeepOrder, keeps its size. It is
// safe to call from any goroutine, at any time.
func (p *Pool) SetThrottle(n int) {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	p.tune.Lock()
	p.throttle.Store(int64(n))
	p.own.SetSize(n)
	p.tune.Unlock()

	p.mu.Lock()
	var surplus []Runner
	if len(p.idle) > n {
		surplus = slices.Clone(p.idle[n:])
		clear(p.idle[n:])
		p.idle = p.idle[:n]
	}
	runs := make([]*run, 0, len(p.runs))
	for r := range p.runs {
		runs = append(runs, r)
	}
	p.mu.Unlock()
	for _, r := range surplus {
		r.Close()
	}
	for _, r := range runs {
		r.grow()
	}
}

// Shutdown closes the pool gracefully, as http.Server.Shutdown does a
// server: runs and streams started from now on report ErrClosed for each
// of their items; the runs going on stop reading their input and starting
// items, and let the running ones finish and deliver their results. When
// they all have, the runspaces are closed and Shutdown returns nil. If ctx
// ends first, the running items are interrupted (they report vm.Stopped;
// one stuck in native code gets its result Grace later, as when a run is
// cancelled), and Shutdown returns ctx.Err() once every run has given back
// its runspaces. Every item that started yields exactly one result either
// way. Streams refuse submissions (ErrClosed) from the start.
//
// The runs' workers end once their last results are received, so call
// Shutdown from another goroutine than those receiving results. It may be
// called more than once, and with Close.
func (p *Pool) Shutdown(ctx context.Context) error {
	drained := p.closing(false)
	select {
	case <-drained:
		return nil
	default:
	}
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
	}
	p.closing(true)
	<-drained
	return ctx.Err()
}

// Close closes the pool now: it does what Shutdown does when its context
// has already ended (the running items are interrupted and report
// vm.Stopped, and items of runs started afterwards report ErrClosed), but
// returns without waiting for the runs to give back their runspaces; they
// close them as they end. Calling it after the runs are over (as a
// deferred Close does) just closes the idle runspaces.
func (p *Pool) Close() { p.closing(true) }

// closing closes the pool (and halts its runs if halt), closes the idle
// runspaces, and returns a channel closed once the runs that started
// before the pool closed have all ended.
func (p *Pool) closing(halt bool) <-chan struct{} {
	p.mu.Lock()
	if !p.close {
		p.close = true
		close(p.draining)
	}
	if halt && !p.halted {
		p.halted = true
		close(p.halt)
	}
	idle := p.idle
	p.idle = nil
	if p.drained == nil {
		p.drained = make(chan struct{})
		if p.open == 0 {
			close(p.drained)
		}
	}
	drained := p.drained
	p.mu.Unlock()
	for _, rs := range idle {
		rs.Close()
	}
	return drained
}

// track registers a run whose workers are about to start. It reports
// whether the pool was open: a run that starts on a closed pool does not
// watch the pool's closing (its items report ErrClosed).
func (p *Pool) track(r *run) (open bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runs == nil {
		p.runs = make(map[*run]struct{})
	}
	p.runs[r] = struct{}{}
	if !p.close {
		p.open++
		return true
	}
	return false
}

// untrack removes a run whose workers have all ended.
func (p *Pool) untrack(r *run) {
	p.mu.Lock()
	delete(p.runs, r)
	if r.open {
		p.open--
		if p.open == 0 && p.drained != nil {
			close(p.drained)
		}
	}
	p.mu.Unlock()
}

func (p *Pool) get(ctx context.Context) (Runner, error) {
	p.mu.Lock()
	if p.close {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if n := len(p.idle); n > 0 {
		r := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return r, nil
	}
	p.mu.Unlock()
	return p.engine.NewRunner(ctx, p.rcfg)
}

// put takes back a worker's runner: idle, or closed if it is broken, the
// pool is closed, or as many as the throttle are idle already.
func (p *Pool) put(rs Runner) {
	if rs == nil {
		return
	}
	if !rs.Usable() {
		rs.Close()
		return
	}
	p.mu.Lock()
	if p.close || len(p.idle) >= p.Throttle() {
		p.mu.Unlock()
		rs.Close()
		return
	}
	p.idle = append(p.idle, rs)
	p.mu.Unlock()
}

// Tuning of the dispatch path. Items travel from the input to the workers,
// and results back, in batches so that a fast item (a few hundred
// nanoseconds of JavaScript) does not pay a channel hand-off each way. A
// batch only takes items that are already waiting, and its size adapts to
// how long items take, so slow items still go out one at a time and spread
// over every runspace.
const (
	// maxBatch bounds a batch.
	maxBatch = 256
	// batchTarget is the run time a batch aims at: long enough to amortise
	// the hand-offs, short enough that work stays spread over runspaces.
	batchTarget = 100 * time.Microsecond
	// initialItemCost is what an item is assumed to cost before any has
	// been measured: high, so the first items go out one by one.
	initialItemCost = time.Millisecond
)

// ReadAhead is how many items Run may read from its input ahead of the
// ones it has numbered. Together with the window (KeepOrder) or the
// throttle's batches, it bounds the items held in memory.
const ReadAhead = 1024

// RunOption adjusts one run.
type RunOption func(*runConfig)

type runConfig struct {
	drain   <-chan struct{}
	observe func(*vm.Result)
	// taken, when set, is called with the number of items each time a
	// worker takes items off the run's queue (Stream's room).
	taken func(n int)
	// source, when set, is a buffer feeding the run's input, counted in
	// Metrics' Queued (Stream's submissions).
	source chan Item
	// encode and write: see Encode.
	encode func(dst []byte, res *vm.Result) []byte
	write  func(b []byte, n int) bool
}

// Encode makes the run hand the results of plain items (Plain) to encode
// instead of delivering them: encode appends what the caller would write
// for the result to dst, in the goroutine that ran the item, and Run
// passes those bytes to write, from its own goroutine, in place of the
// results (in input order with KeepOrder; write gets n, how many items
// the bytes stand for; b is only valid during the call, its storage is
// reused). Other results are delivered as usual. A plain
// item costs no result of its own: its storage is reused for the next
// item, so neither encode nor an Observe function may keep it. write
// returning false ends the run, as yield returning false does. Metrics
// counts plain items as it counts the others.
func Encode(encode func(dst []byte, res *vm.Result) []byte, write func(b []byte, n int) bool) RunOption {
	return func(c *runConfig) { c.encode, c.write = encode, write }
}

// Plain reports whether res is a plain result, which Encode hands to its
// encoder: Success at the first attempt, nothing on any stream, and one
// input record (not a batch).
func Plain(res *vm.Result) bool {
	return res.Status == vm.Success && res.Attempts <= 1 && res.BatchSize <= 1 && res.Error == nil &&
		res.Errors == nil && res.Warnings == nil && res.Verbose == nil && res.Information == nil && res.Progress == nil
}

// Observe calls f with each result as soon as its item ends, from the
// goroutine that ran it (so f must be safe for concurrent use), before the
// result is delivered. A caller that decides to stop the run from f (by
// draining or cancelling) stops it before any further item starts.
func Observe(f func(*vm.Result)) RunOption {
	return func(c *runConfig) { c.observe = f }
}

// Drain makes the run wind down when ch is closed: it stops reading input
// and starting items, lets the running ones finish and yields their
// results, then ends. (Cancelling the context instead interrupts the
// running items, which then report vm.Stopped.)
func Drain(ch <-chan struct{}) RunOption {
	return func(c *runConfig) { c.drain = ch }
}

// batch is a run of items; ordinal numbers batches' items consecutively
// for ordering, seq numbers input records (an item may stand for several).
type batch struct {
	ordinal int64
	items   []Item
	seqs    []int64
}

// delivery is a worker's results for a batch: nil for items it did not
// start (the run was stopped or drained first), or that were plain under
// Encode: their bytes are enc, plain counts them, and spans says which
// bytes are whose (with KeepOrder, where they must go out in order).
type delivery struct {
	ordinal int64
	results []*vm.Result
	enc     []byte
	plain   int
	spans   []span
}

// span is where a plain item's bytes lie in its delivery's enc; plain
// tells a plain item whose bytes are empty from an item that never ran.
type span struct {
	start, end int
	plain      bool
}

// Run runs the script over items and returns the results as they finish
// (or in input order with KeepOrder). Items are read as they are needed, so
// memory stays bounded for unbounded input.
//
// When ctx is cancelled, Run stops reading and starting items and
// interrupts the running ones, which report vm.Stopped; with Drain, it
// stops reading and starting items and lets the running ones finish. The
// pool's Shutdown drains the runs going on, and Close (or Shutdown's
// context ending) interrupts them. Either way every started item yields
// exactly one result and no other item yields one. Breaking out of the
// returned sequence cancels the rest of the run. Run returns once every
// runspace it used has been released; if items is blocked in a read at
// that moment, the goroutine reading it exits at its next yield.
//
// A run starts as many workers as the throttle, each taking batches of
// items and running them on its own runspace; SetThrottle adds or retires
// workers while it goes on.
func (p *Pool) Run(ctx context.Context, items iter.Seq[Item], opts ...RunOption) iter.Seq[*vm.Result] {
	var cfg runConfig
	for _, o := range opts {
		o(&cfg)
	}
	return func(yield func(*vm.Result) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		r := &run{p: p, ctx: ctx, cfg: cfg, in: make(chan Item, ReadAhead)}
		// Registered with no workers, which SetThrottle leaves alone,
		// until the run is ready for them.
		r.open = p.track(r)
		// A run that started on a closed pool ignores its closing: its
		// items report ErrClosed.
		var draining, halt <-chan struct{}
		if r.open {
			draining, halt = p.draining, p.halt
		}
		// stop is closed on drain or cancellation: nothing new starts.
		// stopping is set just before, for the checks made per item.
		stop := make(chan struct{})
		var stopping atomic.Bool
		go func() {
			select {
			case <-cfg.drain:
			case <-draining:
			case <-halt:
			case <-ctx.Done():
			}
			stopping.Store(true)
			close(stop)
			select {
			case <-halt:
				cancel()
			case <-ctx.Done():
			}
		}()
		// stopped is checked before every item, so it is made of the
		// cheapest checks there are. Without Observe it is two atomic
		// loads, ctx's error and the flag: cancelling stops the next
		// item at once (the items it interrupts must not hand their
		// workers another), while after a drain an item may start in
		// the moment before the flag is set, as it could a moment
		// before the drain. With Observe, a drain made from f must hold
		// before the next item, in the same goroutine, so the drains
		// are checked themselves: non-blocking receives on one channel
		// each (a select over several channels takes locks).
		r.stop = stop
		r.stopped = func() bool { return stopping.Load() || ctx.Err() != nil }
		if cfg.observe != nil {
			r.stopped = func() bool {
				return stopping.Load() || ctx.Err() != nil || closed(cfg.drain) || closed(draining)
			}
		}

		in := r.in
		go func() { // reader: the only goroutine that touches items
			defer close(in)
			for it := range items {
				if stopping.Load() {
					return // stop reading as soon as the run stops
				}
				if len(in) < cap(in) {
					// Room in the buffer, and this is the only sender:
					// the send cannot block, so skip the select.
					in <- it
					continue
				}
				select {
				case in <- it:
				case <-stop:
					return
				}
			}
		}()

		r.results = make(chan delivery, p.Throttle())
		target, most := batchTarget, maxBatch
		if bs, ok := p.engine.(BatchSizer); ok {
			target, most = bs.BatchSize()
			most = max(1, min(most, ReadAhead))
		}
		r.q = &queue{in: in, stop: stop, stopped: r.stopped, taken: cfg.taken, cost: newCostMeter(target, most)}
		if p.opts.KeepOrder {
			r.q.window = newSemaphore(p.opts.Window)
		}
		throttle := p.Throttle()
		r.workers.Store(int64(throttle))
		for range throttle {
			go r.worker()
		}
		r.grow() // in case the throttle was raised meanwhile

		var o *orderer
		if r.q.window != nil {
			o = newOrderer(yield, cfg.write, r.q.window)
		}
		done := false
		for d := range r.results {
			if done {
				continue // drain so workers can finish
			}
			if o != nil {
				done = !o.deliver(d)
			} else {
				if d.plain > 0 && !cfg.write(d.enc, d.plain) {
					done = true
				}
				if d.enc != nil {
					// Written: its storage serves another batch.
					enc := d.enc[:0]
					r.encBufs.Put(&enc)
				}
				for _, res := range d.results {
					if done {
						break
					}
					if res != nil && !yield(res) {
						done = true
						break
					}
				}
			}
			if done {
				cancel()
			}
		}
	}
}

// run is one Run going on: its queue and its workers.
type run struct {
	p       *Pool
	ctx     context.Context
	cfg     runConfig
	in      chan Item
	q       *queue
	stop    <-chan struct{}
	stopped func() bool
	results chan delivery
	// workers counts the run's workers. It only drops to zero once, when
	// the last one ends (which ends the run): a surplus worker never takes
	// it below the throttle, and grow never starts one from zero.
	workers atomic.Int64
	open    bool // started before the pool closed: Shutdown waits for it
	// encBufs holds buffers for Encode's bytes that were written, for
	// further batches (without KeepOrder: the orderer writes a batch's
	// bytes piece by piece, later).
	encBufs sync.Pool
}

// grow starts workers until the run has as many as the throttle, unless
// it is ending.
func (r *run) grow() {
	for {
		n := r.workers.Load()
		if n == 0 || n >= r.p.throttle.Load() {
			return
		}
		if r.workers.CompareAndSwap(n, n+1) {
			go r.worker()
		}
	}
}

// retire reports whether the calling worker is surplus (the run has more
// workers than the throttle) and, if so, counts it out. Workers ask once
// per batch: two atomic loads, unless they are surplus.
func (r *run) retire() bool {
	for {
		n := r.workers.Load()
		if n <= r.p.throttle.Load() {
			return false
		}
		if r.workers.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// closed reports whether ch is closed (nil never is), without blocking.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// queue hands numbered batches of input items to workers. Workers take
// from it directly, one at a time (the mutex keeps numbering in input
// order), so an item makes a single hand-off between the reader and the
// runspace that runs it.
type queue struct {
	mu      sync.Mutex
	in      <-chan Item
	stop    <-chan struct{}
	stopped func() bool
	taken   func(n int)
	ordinal int64
	seq     int64
	done    bool
	cost    *costMeter
	window  *semaphore // with KeepOrder
}

// take returns the next batch: at least one item (waiting for it), plus
// those already read ahead, up to the batch size. It reports false when the
// input is exhausted or the run is stopping. The batch's items and seqs
// are appended to buf's, the calling worker's, which it reuses from batch
// to batch (a Runner keeps no item past its Run).
func (q *queue) take(buf batch) (batch, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.done {
		return batch{}, false
	}
	var it Item
	var ok bool
	select {
	case it, ok = <-q.in:
	case <-q.stop:
	}
	if ok && q.taken != nil {
		q.taken(1)
	}
	if !ok || q.stopped() {
		q.done = true
		return batch{}, false
	}
	limit := q.cost.batchSize()
	if q.window != nil {
		limit = min(limit, q.window.size)
	}
	items := append(buf.items[:0], it)
	// Only this goroutine receives from q.in while it holds the mutex, so
	// len(q.in) > 0 means the receive cannot block.
	for len(items) < limit && len(q.in) > 0 {
		if it, ok = <-q.in; !ok {
			break
		}
		items = append(items, it)
	}
	if q.taken != nil && len(items) > 1 {
		q.taken(len(items) - 1)
	}
	if q.window != nil && !q.window.acquire(q.stop, len(items)) {
		// Stopping while waiting for room: these items were never
		// numbered, so they are simply not run.
		q.done = true
		return batch{}, false
	}
	seqs := buf.seqs[:0]
	if cap(seqs) < len(items) {
		seqs = make([]int64, len(items), max(len(items), 2*cap(seqs)))
	}
	b := batch{ordinal: q.ordinal + 1, items: items, seqs: seqs[:len(items)]}
	q.ordinal += int64(len(items))
	for i, it := range items {
		if it.Seq > 0 {
			q.seq = it.Seq - 1
		}
		b.seqs[i] = q.seq + 1
		q.seq += int64(max(it.Count, 1))
	}
	return b, true
}

// orderer passes results to yield in input order, releasing a window slot
// for each item (delivered, or skipped because it never started). Items in
// flight are always within one window of the next to deliver, so a ring of
// window slots holds them.
type orderer struct {
	yield   func(*vm.Result) bool
	write   func([]byte, int) bool // Encode's
	window  *semaphore
	pending []slot
	next    int64
}

type slot struct {
	ordinal int64
	res     *vm.Result // nil: the item did not start, or was plain
	enc     []byte     // a plain item's bytes
	plain   bool
}

func newOrderer(yield func(*vm.Result) bool, write func([]byte, int) bool, window *semaphore) *orderer {
	return &orderer{yield: yield, write: write, window: window, pending: make([]slot, window.size), next: 1}
}

func (o *orderer) deliver(d delivery) bool {
	n := int64(len(o.pending))
	for i, res := range d.results {
		ord := d.ordinal + int64(i)
		s := slot{ordinal: ord, res: res}
		if d.spans != nil && d.spans[i].plain {
			s.plain, s.enc = true, d.enc[d.spans[i].start:d.spans[i].end]
		}
		o.pending[ord%n] = s
	}
	// Free the window slots of the whole run that is now ready with one
	// release (one lock), then deliver it. Results only arrive through
	// this goroutine, so the slots cannot be overwritten meanwhile.
	ready := int64(0)
	for o.pending[(o.next+ready)%n].ordinal == o.next+ready {
		ready++
	}
	if ready == 0 {
		return true
	}
	o.window.release(int(ready))
	for ; ready > 0; ready-- {
		s := &o.pending[o.next%n]
		res, plain, enc := s.res, s.plain, s.enc
		*s = slot{}
		o.next++
		if plain && !o.write(enc, 1) {
			return false
		}
		if res != nil && !o.yield(res) {
			return false
		}
	}
	return true
}

// worker runs batches until the queue is done, or until it is surplus
// after a batch (the throttle was lowered), holding at most one runner,
// which it gives back as it ends. The last worker to end ends the run.
func (r *run) worker() {
	p := r.p
	var rn Runner
	surplus := false
	defer func() {
		p.put(rn)
		if !surplus && r.workers.Add(-1) == 0 {
			p.untrack(r)
			close(r.results)
		}
	}()
	var buf batch // the storage of the worker's batches, reused
	for {
		b, ok := r.q.take(buf)
		if !ok {
			return
		}
		buf = b
		d := delivery{ordinal: b.ordinal, results: make([]*vm.Result, len(b.items))}
		start := time.Now()
		p.counts.batchStarted(len(b.items))
		var plain tally // the plain items' counts, taken before their storage is reused
		if r.runBatch(b, &d, &plain, &rn) {
			buf = batch{} // a stuck goroutine still reads these items
		}
		r.q.cost.observe(time.Since(start), len(b.items))
		p.counts.flush(&plain)
		p.counts.batchEnded(d.results)
		r.results <- d
		if r.retire() {
			surplus = true
			return
		}
	}
}

// runBatch runs b on the worker's runner *rn. It reports kept when the
// runner still uses b's items after it (an item abandoned in native code),
// so that their storage must not be reused.
func (r *run) runBatch(b batch, d *delivery, plain *tally, rn *Runner) (kept bool) {
	p, ctx, stopped, observe, encode := r.p, r.ctx, r.stopped, r.cfg.observe, r.cfg.encode
	out := d.results
	if encode != nil && r.q.window != nil { // only the orderer needs them
		d.spans = make([]span, len(out))
	}
	if encode != nil && r.q.window == nil {
		if buf, ok := r.encBufs.Get().(*[]byte); ok {
			d.enc = *buf
		}
	}
	acquired := !stopped() && p.own.acquire(ctx, r.stop)
	if acquired {
		defer p.own.release(1)
		if acquired = p.opts.Limiter.acquire(ctx, r.stop); acquired {
			defer p.opts.Limiter.release(1)
		}
	}
	// ended completes a result as its item ends, in the goroutine that
	// ran it, so that observe sees it before anything else starts.
	ended := func(i int) {
		res, it := out[i], &b.items[i]
		res.Seq = b.seqs[i]
		if it.Count > 1 {
			res.BatchSize = it.Count
		}
		if it.Input != nil {
			res.Input = it.Input // what JSON returns, without copying the item
		} else {
			res.Input = it.JSON()
		}
		if res.Status == vm.InvalidInput && !json.Valid(res.Input) {
			// The runspace found the raw JSON invalid: the record
			// shows the text as a string.
			res.Input = vm.JSONString(string(res.Input))
		}
		if observe != nil {
			observe(res)
		}
		if encode != nil && Plain(res) {
			// Consumed here: the runner may reuse res (see Runner).
			plain.add(res)
			start := len(d.enc)
			d.enc = encode(d.enc, res)
			if d.spans != nil {
				d.spans[i] = span{start: start, end: len(d.enc), plain: true}
			}
			d.plain++
			out[i] = nil
		}
	}
	invalid := 0
	for i := range b.items {
		if b.items[i].Err != nil {
			invalid++
		}
	}
	if acquired && invalid < len(b.items) && !stopped() {
		if *rn == nil {
			nr, err := p.get(ctx)
			switch {
			case err == nil:
				*rn = nr
			case errors.Is(err, ErrClosed) && stopped():
				// The pool closed as this batch was about to start:
				// its items never started.
			default:
				p.failBatch(ctx, b, out, err, ended)
			}
		}
		if *rn != nil {
			(*rn).Run(ctx, b.items, out, ended, stopped)
			if k, ok := (*rn).(interface{ keptItems() bool }); ok && k.keptItems() {
				kept = true
			}
			if !(*rn).Usable() {
				(*rn).Close()
				*rn = nil
			}
		}
	}
	if invalid > 0 {
		now := time.Now()
		for i, it := range b.items {
			if it.Err != nil {
				out[i] = &vm.Result{StartedAt: now, Status: vm.InvalidInput, Error: &vm.ErrorInfo{Message: it.Err.Error()}}
				ended(i)
			}
		}
	}
	return kept
}

// failBatch gives every item of b the error of a runner that could not
// be made (a script that no longer initialises, say).
func (p *Pool) failBatch(ctx context.Context, b batch, out []*vm.Result, err error, ended func(int)) {
	for i, it := range b.items {
		if it.Err != nil {
			continue
		}
		res := StartFailed(ctx, err)
		out[i] = &res
		ended(i)
	}
}

// backoff is the wait before retry number attempt (1-based): base, then
// doubling, capped at MaxRetryDelay.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < MaxRetryDelay; i++ {
		d *= 2
	}
	return min(d, MaxRetryDelay)
}

// sleepCtx waits d, reporting false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// JSON returns the item as JSON, for records and job logs: Input when
// set, else Value encoded (strings quoted as JSON.stringify would).
func (it Item) JSON() json.RawMessage {
	if it.Input != nil {
		return it.Input
	}
	switch v := it.Value.(type) {
	case json.RawMessage:
		return v
	case string:
		return vm.JSONString(v)
	case nil:
		return json.RawMessage("null")
	}
	raw, err := json.Marshal(it.Value)
	if err != nil {
		return json.RawMessage("null")
	}
	return raw
}
