// Package worker runs a pool's runspaces in worker processes, so that the
// operating system can bound and end what the engine cannot: a script's
// memory, and native code that ignores interrupts. Worker processes are the
// program itself re-executed (see Main); items and results cross a pipe in
// batches.
//
// Guarantees, each tested:
//   - Every item given to a runner gets exactly one result, even when its
//     worker process dies under it (killed, out of memory, crashed).
//   - When a worker dies, the items it was running are run again alone, each
//     in a new worker of its own: one that kills that worker too gets a
//     MemoryLimit result (or Exception, for another death) naming the cause;
//     the others end as if nothing had happened. Items of a batch that had
//     not started yet run again normally. A new worker takes the dead one's
//     place.
//   - With MaxMemory, a worker whose Go runtime holds more than MaxMemory is
//     ended within a few milliseconds (a sampling watchdog); one huge
//     allocation between two samples is stopped by an address-space limit
//     set above MaxMemory, and, where rsh may make one, by the kernel's
//     memory cgroup limit a little above MaxMemory (see cgroup.go).
//   - An item stuck in native code past its timeout gets its Timeout result
//     after the pool's grace period; its worker then takes no more work and
//     is ended once its other items are done. A worker that stops answering
//     altogether is killed.
//   - A script that fails to initialise is reported by NewRunner as a
//     *vm.InitError, as for runspaces in this process.
package worker

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// Tuning of the parent side.
const (
	// stuckSlack is added to an item's timeout and the grace periods
	// before a worker that sends nothing at all is declared stuck and
	// killed: the worker's own watchdog normally answers long before.
	stuckSlack = 5 * time.Second
	// stopWait is how long a worker whose input was closed may take to
	// finish before it is killed.
	stopWait = 5 * time.Second
	// stderrKeep is how much of a worker's stderr is kept to explain its
	// death (the runtime's fatal message comes first).
	stderrKeep = 4 << 10
	// slotBuffer is the most results handed to a slot's runner at once,
	// and slotRuns how many such runs its channel holds, so the process's
	// reader rarely waits for the runner.
	slotBuffer = 256
	slotRuns   = 16
	// resultSlab is how many results are allocated together.
	resultSlab = 64
)

// Options configure an Engine.
type Options struct {
	// Script and State are what every runspace is made from; the script's
	// source is compiled again in each worker.
	Script *vm.Script
	State  vm.InitialState
	// PerProcess is how many runners share one worker process (a runspace
	// each there); 0 means 1.
	PerProcess int
	// MaxMemory bounds each worker process, in bytes; 0 means no bound.
	MaxMemory int64
	// Command is how a worker is started: a program and its arguments.
	// The default is this program (os.Executable) with no arguments; the
	// program must call Main first thing.
	Command []string
}

// Engine is a pool.Engine whose runners live in worker processes. It is
// safe for concurrent use.
type Engine struct {
	opts Options

	mu     sync.Mutex
	cur    *proc // takes new runners until it has PerProcess
	procs  map[*proc]struct{}
	closed bool

	qmu        sync.Mutex // one item runs alone at a time
	quarantine *proc

	cgroups atomic.Int64 // names the workers' memory cgroups
}

var _ pool.Engine = (*Engine)(nil)

// New makes an engine. No process starts until a runner is made.
func New(opts Options) (*Engine, error) {
	if opts.Script == nil {
		return nil, errors.New("worker: Options.Script is nil")
	}
	if opts.PerProcess <= 0 {
		opts.PerProcess = 1
	}
	if len(opts.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("worker: finding this program to re-execute: %w", err)
		}
		opts.Command = []string{exe}
	}
	if opts.MaxMemory > 0 {
		removeStaleCgroups()
	}
	return &Engine{opts: opts, procs: map[*proc]struct{}{}}, nil
}

// Batches sent to a worker aim at batchTarget of work, so that a pipe
// round trip (tens of µs) costs a few percent of it, with at most
// batchMost items.
const (
	batchTarget = 5 * time.Millisecond
	batchMost   = 1024
)

// BatchSize tells the pool to send bigger batches than it would to
// runspaces in its own process; see pool.BatchSizer.
func (e *Engine) BatchSize() (time.Duration, int) { return batchTarget, batchMost }

// NewRunner makes a runner in a worker process, starting one if every
// process has its PerProcess runners.
func (e *Engine) NewRunner(ctx context.Context, cfg pool.RunnerConfig) (pool.Runner, error) {
	if cfg.Grace <= 0 {
		cfg.Grace = pool.DefaultGrace
	}
	r := &runner{e: e, cfg: cfg}
	if err := r.attach(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Close ends every worker process: their input is closed, and those still
// running after a few seconds are killed. Runners must not be used after.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	procs := make([]*proc, 0, len(e.procs))
	for p := range e.procs {
		procs = append(procs, p)
	}
	e.mu.Unlock()
	e.qmu.Lock()
	if e.quarantine != nil {
		procs = append(procs, e.quarantine)
		e.quarantine = nil
	}
	e.qmu.Unlock()
	for _, p := range procs {
		p.stop()
	}
	for _, p := range procs {
		<-p.dead
	}
}

// death says why a worker process ended.
type death struct {
	memory bool   // it passed its memory limit
	stuck  bool   // it stopped answering and was killed
	reason string // for messages
}

// proc is one worker process.
type proc struct {
	e     *Engine
	cmd   *exec.Cmd
	stdin io.WriteCloser
	wmu   sync.Mutex
	chans []chan []msg // per slot
	used  []bool       // slots taken (under e.mu)
	users int          // (under e.mu)

	retiring atomic.Bool
	killed   atomic.Bool // by us, as stuck
	dead     chan struct{}
	death    death // set before dead is closed
	stderr   capBuffer
	cgroup   *memCgroup // nil where the kernel's bound is not available
}

// msg is a slot's result, or the end of its batch.
type msg struct {
	index int
	res   *vm.Result
	done  bool
}

// start starts a worker process with slots runners and waits for its
// runspaces to initialise.
func (e *Engine) start(ctx context.Context, slots int, cfg pool.RunnerConfig) (*proc, error) {
	// A worker killed while it starts (by the OOM killer, or a fault
	// test) is not the script's fault: try again, a few times.
	var err error
	for range startAttempts {
		var p *proc
		p, err = e.startOnce(ctx, slots, cfg)
		var ie *vm.InitError
		if err == nil || errors.As(err, &ie) || ctx.Err() != nil {
			return p, err
		}
	}
	return nil, err
}

// startAttempts is how many times a worker that dies while starting is
// started again before its runner gives up.
const startAttempts = 3

func (e *Engine) startOnce(ctx context.Context, slots int, cfg pool.RunnerConfig) (*proc, error) {
	sp := spec{
		Name: e.opts.Script.Name(), Dir: e.opts.Script.Dir(), Source: e.opts.Script.Source(),
		State: e.opts.State, Runner: cfg, Slots: slots, MaxMemory: e.opts.MaxMemory,
	}
	sp.State.OnInit = nil
	data, err := json.Marshal(&sp)
	if err != nil {
		return nil, fmt.Errorf("worker: encoding the spec: %w", err)
	}
	cmd := exec.Command(e.opts.Command[0], e.opts.Command[1:]...)
	cmd.Env = append(os.Environ(), envWorker+"="+protocolVersion, "GOTRACEBACK=none")
	p := &proc{e: e, cmd: cmd, dead: make(chan struct{}), chans: make([]chan []msg, slots), used: make([]bool, slots)}
	for i := range p.chans {
		p.chans[i] = make(chan []msg, slotRuns)
	}
	cmd.Stderr = &p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("worker: starting %s: %w", e.opts.Command[0], err)
	}
	if e.opts.MaxMemory > 0 {
		// The worker allocates little before it reads its spec, so
		// moving it in now bounds everything its scripts do.
		if p.cgroup = newMemCgroup(e.cgroups.Add(1), e.opts.MaxMemory); p.cgroup != nil && p.cgroup.add(cmd.Process.Pid) != nil {
			p.cgroup.remove()
			p.cgroup = nil
		}
	}
	r := bufio.NewReaderSize(stdout, 64<<10)
	p.write(appendFrame(nil, frameSpec, data))
	// Wait for the worker's first answer, or for ctx.
	first := make(chan error, 1)
	var initMsg string
	go func() {
		typ, payload, err := readFrame(r)
		switch {
		case err != nil:
			first <- err
		case typ == frameInit:
			initMsg = string(payload)
			first <- errInit
		case typ != frameReady:
			first <- fmt.Errorf("unexpected frame %q", typ)
		default:
			first <- nil
		}
	}()
	select {
	case err = <-first:
	case <-ctx.Done():
		err = ctx.Err()
		_ = cmd.Process.Kill()
		<-first
	}
	if err != nil {
		p.stdin.Close()
		_ = cmd.Process.Kill()
		waitErr := cmd.Wait()
		if p.cgroup != nil {
			p.cgroup.remove()
		}
		if errors.Is(err, errInit) {
			return nil, &vm.InitError{Script: e.opts.Script.Name(), Err: errors.New(initMsg)}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("worker: process did not start: %v (%s)", err, describeExit(waitErr, p.stderr.String()))
	}
	go p.read(r)
	return p, nil
}

var errInit = errors.New("init failed")

// read dispatches the worker's frames to its slots until its output ends,
// then records why it died.
func (p *proc) read(r *bufio.Reader) {
	// Messages go to the slots in runs, handed over when the pipe has
	// nothing more to read at once: one channel hand-off per run of
	// results, not per result. Results are made in slabs.
	pending := make([][]msg, len(p.chans))
	var slab []vm.Result
	handOver := func() {
		for slot, ms := range pending {
			if len(ms) > 0 {
				p.chans[slot] <- ms
				pending[slot] = nil
			}
		}
	}
	var err error
	for {
		if r.Buffered() == 0 {
			handOver()
		}
		var typ byte
		var payload []byte
		typ, payload, err = readFrame(r)
		if err != nil {
			break
		}
		if typ == frameRetire {
			p.retiring.Store(true)
			continue
		}
		var slot, index uint64
		slot, payload, err = readUvarint(payload)
		if err != nil || slot >= uint64(len(p.chans)) {
			err = fmt.Errorf("worker: bad frame %q", typ)
			break
		}
		switch typ {
		case frameDone:
			pending[slot] = append(pending[slot], msg{done: true})
			continue
		case frameResult:
			if index, payload, err = readUvarint(payload); err != nil {
				break
			}
			if len(slab) == 0 {
				slab = make([]vm.Result, resultSlab)
			}
			res := &slab[0]
			slab = slab[1:]
			if err = res.UnmarshalBinary(payload); err != nil {
				err = fmt.Errorf("worker: bad result: %w", err)
				break
			}
			pending[slot] = append(pending[slot], msg{index: int(index), res: res})
			if len(pending[slot]) >= slotBuffer {
				p.chans[slot] <- pending[slot]
				pending[slot] = nil
			}
			continue
		default:
			err = fmt.Errorf("worker: unknown frame %q", typ)
		}
		break
	}
	handOver()
	if err != io.EOF {
		// A broken protocol: the process cannot be trusted any more.
		_ = p.cmd.Process.Kill()
	}
	waitErr := p.cmd.Wait()
	p.death = p.classify(waitErr)
	if p.cgroup != nil {
		p.cgroup.remove()
	}
	close(p.dead)
}

func (p *proc) classify(waitErr error) death {
	stderr := p.stderr.String()
	d := death{reason: describeExit(waitErr, stderr)}
	var ee *exec.ExitError
	code := -1
	if errors.As(waitErr, &ee) {
		code = ee.ExitCode()
	}
	switch {
	case p.killed.Load():
		d.stuck = true
		d.reason = "it stopped answering and was killed"
	case p.cgroup != nil && p.cgroup.oomKills() > 0:
		d.memory = true
		d.reason = fmt.Sprintf("the kernel ended it at its memory cgroup's limit of %s", formatSize(p.cgroup.limit))
	case code == exitMemory, strings.Contains(stderr, "out of memory"), strings.Contains(stderr, "failed to allocate"):
		// The watchdog, or an allocation refused by the address-space
		// limit (the Go runtime's, or the race detector's own).
		d.memory = true
	}
	if ps := p.cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > 0 {
			d.reason += fmt.Sprintf("; its peak resident memory was %s", formatSize(ru.Maxrss<<10))
		}
	}
	return d
}

// describeExit says how a process ended, with the first line it wrote to
// stderr.
func describeExit(waitErr error, stderr string) string {
	s := "it exited"
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			s = "it was killed by signal " + st.Signal().String()
		} else {
			s = fmt.Sprintf("it exited with code %d", ee.ExitCode())
		}
	} else if waitErr != nil {
		s = waitErr.Error()
	}
	if line, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n"); line != "" {
		s += ": " + line
	}
	return s
}

func (p *proc) isDead() bool {
	select {
	case <-p.dead:
		return true
	default:
		return false
	}
}

// write sends a frame; a failure means the process is dying, which its
// reader will report.
func (p *proc) write(b []byte) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, _ = p.stdin.Write(b)
}

// stop closes the worker's input, so it ends once its batches are over,
// and kills it if it has not after stopWait.
func (p *proc) stop() {
	p.wmu.Lock()
	p.stdin.Close()
	p.wmu.Unlock()
	go func() {
		select {
		case <-p.dead:
		case <-time.After(stopWait):
			_ = p.cmd.Process.Kill()
		}
	}()
}

// kill ends a worker that stopped answering.
func (p *proc) kill() {
	p.killed.Store(true)
	_ = p.cmd.Process.Kill()
}

// capBuffer keeps the first stderrKeep bytes written to it.
type capBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := stderrKeep - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *capBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// runner is a pool.Runner whose runspace is a slot of a worker process.
type runner struct {
	e      *Engine
	cfg    pool.RunnerConfig
	p      *proc
	slot   int
	closed bool
	buf    []byte
}

func (r *runner) Usable() bool { return !r.closed }

func (r *runner) Close() {
	if !r.closed {
		r.closed = true
		r.detach()
	}
}

// attach gives the runner a slot in a live worker process.
func (r *runner) attach(ctx context.Context) error {
	if r.p != nil && !r.p.isDead() && !r.p.retiring.Load() {
		return nil
	}
	r.detach()
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return pool.ErrClosed
	}
	p := e.cur
	if p == nil || p.isDead() || p.retiring.Load() || p.users == len(p.used) {
		np, err := e.start(ctx, e.opts.PerProcess, r.cfg)
		if err != nil {
			return err
		}
		if p != nil && p.users == 0 {
			delete(e.procs, p)
			p.stop()
		}
		p, e.cur = np, np
		e.procs[p] = struct{}{}
	}
	for i, u := range p.used {
		if !u {
			p.used[i], r.slot = true, i
			break
		}
	}
	p.users++
	r.p = p
	return nil
}

// detach gives the runner's slot back; a process that is dead, retiring
// or replaced is stopped once its last runner leaves.
func (r *runner) detach() {
	p := r.p
	if p == nil {
		return
	}
	r.p = nil
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	p.used[r.slot] = false
	p.users--
	if p.users == 0 && (p != e.cur || p.isDead() || p.retiring.Load()) {
		delete(e.procs, p)
		if e.cur == p {
			e.cur = nil
		}
		p.stop()
	}
}

// Run runs items in the runner's worker process; see pool.Runner.
func (r *runner) Run(ctx context.Context, items []pool.Item, out []*vm.Result, ended func(int), stopped func() bool) {
	pending := make([]int, 0, len(items))
	for i := range items {
		if items[i].Err == nil {
			pending = append(pending, i)
		}
	}
	for len(pending) > 0 && !stopped() {
		if err := r.attach(ctx); err != nil {
			for _, i := range pending {
				out[i] = failed(ctx, err)
				ended(i)
			}
			return
		}
		unfinished, d := r.exchange(ctx, r.p, r.slot, items, pending, out, ended, stopped)
		if d == nil {
			return // the batch is over; what did not start stays nil
		}
		// The process died. The first unfinished item was running (or
		// about to): run it alone to learn whether it was the cause. The
		// rest had not started: they go to a new process.
		r.detach()
		if len(unfinished) == 0 {
			return
		}
		first := unfinished[0]
		out[first] = r.e.alone(ctx, r.cfg, &items[first])
		ended(first)
		pending = unfinished[1:]
	}
}

// failed is the result of an item whose runner could not get a process.
func failed(ctx context.Context, err error) *vm.Result {
	res := pool.StartFailed(ctx, err)
	return &res
}

// exchange sends the items idxs to slot of p and collects their results
// until the batch is over (nil death) or the process dies (with the items
// that got no result, in order).
func (r *runner) exchange(ctx context.Context, p *proc, slot int, items []pool.Item, idxs []int, out []*vm.Result, ended func(int), stopped func() bool) ([]int, *death) {
	b, at := beginFrame(r.buf[:0], frameBatch)
	b = binary.AppendUvarint(b, uint64(slot))
	b = binary.AppendUvarint(b, uint64(len(idxs)))
	for _, i := range idxs {
		b = appendItem(b, &items[i])
	}
	r.buf = endFrame(b, at)
	p.write(r.buf)

	// A worker that says nothing for longer than any item may take is
	// stuck (only knowable when items have a timeout).
	var quiet *time.Timer
	var quietC <-chan time.Time
	limit := time.Duration(0)
	if t := r.e.opts.State.Timeout; t > 0 {
		limit = t + 2*r.cfg.Grace + stuckSlack
		quiet = time.NewTimer(limit)
		defer quiet.Stop()
		quietC = quiet.C
	}
	ch := p.chans[slot]
	ctxDone := ctx.Done()
	var killAfter <-chan time.Time
	deliver := func(ms []msg) bool {
		for _, m := range ms {
			if m.done {
				return true
			}
			if m.index < len(idxs) {
				i := idxs[m.index]
				out[i] = m.res
				ended(i)
			}
		}
		return false
	}
	drained := false
	for {
		select {
		case m := <-ch:
			if deliver(m) {
				return nil, nil
			}
			if quiet != nil {
				quiet.Reset(limit)
			}
			if !drained && stopped() {
				// The run is winding down (drained, halted): the
				// worker starts nothing more of this batch.
				drained = true
				p.write(appendFrame(nil, frameDrain, binary.AppendUvarint(nil, uint64(slot))))
			}
		case <-p.dead:
			// Everything the process sent is in the channel by now.
			for empty := false; !empty; {
				select {
				case m := <-ch:
					if deliver(m) {
						return nil, nil
					}
				default:
					empty = true
				}
			}
			var unfinished []int
			for _, i := range idxs {
				if out[i] == nil {
					unfinished = append(unfinished, i)
				}
			}
			d := p.death
			return unfinished, &d
		case <-ctxDone:
			ctxDone = nil
			p.write(appendFrame(nil, frameCancel, binary.AppendUvarint(nil, uint64(slot))))
			killAfter = time.After(2*r.cfg.Grace + stuckSlack)
		case <-killAfter:
			p.kill()
		case <-quietC:
			p.kill()
		}
	}
}

// alone runs one item by itself in a worker process of its own, with a
// fresh runspace, to learn whether it is what killed a worker.
func (e *Engine) alone(ctx context.Context, cfg pool.RunnerConfig, it *pool.Item) *vm.Result {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	q := e.quarantine
	if q == nil || q.isDead() {
		qcfg := cfg
		qcfg.Fresh = true
		var err error
		if q, err = e.start(ctx, 1, qcfg); err != nil {
			return failed(ctx, err)
		}
		e.quarantine = q
	}
	out := make([]*vm.Result, 1)
	r := &runner{e: e, cfg: cfg}
	unfinished, d := r.exchange(ctx, q, 0, []pool.Item{*it}, []int{0}, out, func(int) {}, func() bool { return false })
	if d == nil {
		if out[0] == nil {
			return &vm.Result{StartedAt: time.Now(), Status: vm.Stopped, Error: &vm.ErrorInfo{Message: "interrupted before it could run again"}}
		}
		return out[0]
	}
	e.quarantine = nil
	if len(unfinished) == 0 {
		return out[0]
	}
	res := &vm.Result{StartedAt: time.Now(), Attempts: 1}
	switch {
	case d.memory && e.opts.MaxMemory > 0:
		res.Status = vm.MemoryLimit
		res.Error = &vm.ErrorInfo{Message: fmt.Sprintf("its worker process passed the memory limit of %s, also when the item ran alone (%s)",
			formatSize(e.opts.MaxMemory), d.reason)}
	case d.memory:
		res.Status = vm.MemoryLimit
		res.Error = &vm.ErrorInfo{Message: "its worker process ran out of memory, also when the item ran alone (" + d.reason + ")"}
	case d.stuck && e.opts.State.Timeout > 0:
		res.Status = vm.Timeout
		res.Error = &vm.ErrorInfo{Message: "timed out, and its worker process stopped answering and was killed"}
	default:
		res.Status = vm.Exception
		res.Error = &vm.ErrorInfo{Message: "its worker process died, also when the item ran alone: " + d.reason}
	}
	return res
}

// formatSize writes a byte count for messages: whole units where they
// fit, else MiB with one decimal.
func formatSize(n int64) string {
	switch {
	case n <= 0:
		return "0"
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
