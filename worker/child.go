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
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// envWorker marks a process started as a worker; its value is the
// protocol version.
const envWorker = "RSH_WORKER_PROTOCOL"

const protocolVersion = "1"

// Exit codes of a worker process, read by the parent to explain a death.
const (
	exitProtocol = 3 // the pipe broke or carried garbage
	exitMemory   = 4 // the watchdog saw the memory limit passed
)

// Tuning of the worker side.
const (
	// watchEvery is how often the watchdog samples the heap: often enough
	// that an allocation loop is caught within a few MiB of the limit,
	// rarely enough to cost nothing measurable (a sample is a few µs).
	watchEvery = 2 * time.Millisecond
	// gcShare is the part of the limit given to the collector as its soft
	// goal (GOMEMLIMIT), so that it works hard before the watchdog fires.
	gcShare = 0.85
	// flushEvery bounds how long a finished item's result may wait in
	// the worker's buffer while later items of its batch run.
	flushEvery = 2 * time.Millisecond
	// parentCheck is how often a worker checks that its parent lives: a
	// worker left behind by a killed rsh stops within this long.
	parentCheck = 100 * time.Millisecond
)

// Main makes this process a worker when it was started as one by an
// Engine, and then never returns; otherwise it returns at once. Call it at
// the top of main, before anything else (flag parsing included), in any
// program that uses an Engine: worker processes are that same program
// re-executed.
func Main(opts ...MainOption) {
	var cfg mainConfig
	for _, o := range opts {
		o(&cfg)
	}
	v, ok := os.LookupEnv(envWorker)
	if !ok {
		return
	}
	if v != protocolVersion {
		fmt.Fprintf(os.Stderr, "worker: protocol %q, want %q (parent and worker are different builds)\n", v, protocolVersion)
		os.Exit(exitProtocol)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	os.Exit(serve(os.Stdin, os.Stdout, cfg))
}

// MainOption configures Main.
type MainOption func(*mainConfig)

type mainConfig struct {
	modules   []vm.HostModule
	functions []vm.HostFunction
}

// WithHost gives a worker process the program's host modules and
// functions (vm.InitialState.Modules and Functions): they are Go code, so
// they do not travel to the worker with the initial state; only their
// names do, and the worker takes the implementations from here. A program
// passes the same ones it gives its pools.
func WithHost(modules []vm.HostModule, functions []vm.HostFunction) MainOption {
	return func(c *mainConfig) {
		c.modules, c.functions = modules, functions
	}
}

// attachHost fills in the Go side of the host modules and functions that
// st names, from what Main was given.
func (c *mainConfig) attachHost(st *vm.InitialState) error {
	mods := make([]vm.HostModule, len(st.Modules))
	for i, m := range st.Modules {
		j := slices.IndexFunc(c.modules, func(h vm.HostModule) bool { return h.Name == m.Name })
		if j < 0 {
			return fmt.Errorf("host module %q: this program's worker.Main was not given it (worker.WithHost)", m.Name)
		}
		mods[i] = c.modules[j]
	}
	fns := make([]vm.HostFunction, len(st.Functions))
	for i, fn := range st.Functions {
		j := slices.IndexFunc(c.functions, func(h vm.HostFunction) bool { return h.Name == fn.Name })
		if j < 0 {
			return fmt.Errorf("host function %q: this program's worker.Main was not given it (worker.WithHost)", fn.Name)
		}
		fns[i] = c.functions[j]
	}
	st.Modules, st.Functions = mods, fns
	return nil
}

// gcPercent is a worker's collector target unless GOGC is set: like the
// rsh command's, its live heap is small and steady while every item makes
// short-lived garbage. With a memory limit, GOMEMLIMIT makes the collector
// work harder as the limit nears, whatever this is.
const gcPercent = 400

// child is a worker process's state.
type child struct {
	host  mainConfig
	wmu   sync.Mutex
	w     *bufio.Writer
	slots []*childSlot
}

type childSlot struct {
	c        *child
	id       int
	runner   pool.Runner
	batches  chan []pool.Item
	mu       sync.Mutex
	cancel   context.CancelFunc // of the running batch
	draining atomic.Bool        // start no more of the batch's items

	bmu   sync.Mutex
	buf   []byte      // results not yet written
	timer *time.Timer // writes buf flushEvery after it stopped being empty
}

// serve runs the worker protocol until its input ends, and returns the
// exit code.
func serve(in io.Reader, out io.Writer, cfg mainConfig) int {
	r := bufio.NewReaderSize(in, 64<<10)
	c := &child{w: bufio.NewWriterSize(out, 64<<10), host: cfg}
	typ, payload, err := readFrame(r)
	if err != nil || typ != frameSpec {
		fmt.Fprintf(os.Stderr, "worker: no spec on stdin (this mode is for rsh's own worker processes): %v\n", err)
		return exitProtocol
	}
	var sp spec
	if err := json.Unmarshal(payload, &sp); err != nil {
		fmt.Fprintf(os.Stderr, "worker: bad spec: %v\n", err)
		return exitProtocol
	}
	go orphaned(os.Getppid())
	if sp.MaxMemory > 0 {
		limitMemory(sp.MaxMemory)
	}
	if err := c.start(&sp); err != nil {
		c.send(appendFrame(nil, frameInit, []byte(err.Error())))
		return 0
	}
	c.send(appendFrame(nil, frameReady))
	var wg sync.WaitGroup
	for _, s := range c.slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop()
		}()
	}
	code := c.read(r)
	for _, s := range c.slots {
		close(s.batches)
	}
	wg.Wait()
	return code
}

func (c *child) start(sp *spec) error {
	compile := vm.Compile
	if sp.Dir == "" {
		compile = func(name, _, src string) (*vm.Script, error) { return vm.CompileDetached(name, src) }
	}
	script, err := compile(sp.Name, sp.Dir, sp.Source)
	if err != nil {
		return err
	}
	sp.State.OnInit = nil
	if err := c.host.attachHost(&sp.State); err != nil {
		return err
	}
	f, err := vm.NewFactory(script, sp.State)
	if err != nil {
		return err
	}
	engine := pool.LocalEngine(f)
	cfg := sp.Runner
	cfg.OnAbandon = c.retire
	for i := range max(sp.Slots, 1) {
		r, err := engine.NewRunner(context.Background(), cfg)
		if err != nil {
			var ie *vm.InitError
			if errors.As(err, &ie) {
				return ie.Err
			}
			return err
		}
		c.slots = append(c.slots, &childSlot{c: c, id: i, runner: r, batches: make(chan []pool.Item, 1)})
	}
	return nil
}

// read dispatches the parent's frames until stdin ends.
func (c *child) read(r *bufio.Reader) int {
	for {
		// A fresh buffer per frame: the items alias it.
		typ, p, err := readFrame(r)
		if err == io.EOF {
			return 0
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "worker: reading: %v\n", err)
			return exitProtocol
		}
		slot, rest, err := readUvarint(p)
		if err != nil || slot >= uint64(len(c.slots)) {
			fmt.Fprintf(os.Stderr, "worker: bad frame %q\n", typ)
			return exitProtocol
		}
		s := c.slots[slot]
		switch typ {
		case frameBatch:
			items, err := readItems(rest)
			if err != nil {
				fmt.Fprintf(os.Stderr, "worker: %v\n", err)
				return exitProtocol
			}
			s.batches <- items
		case frameDrain:
			s.draining.Store(true)
		case frameCancel:
			s.mu.Lock()
			if s.cancel != nil {
				s.cancel()
			}
			s.mu.Unlock()
		default:
			fmt.Fprintf(os.Stderr, "worker: unknown frame %q\n", typ)
			return exitProtocol
		}
	}
}

func (c *child) send(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Write(b)
	if err := c.w.Flush(); err != nil {
		// The parent is gone: nothing to report to.
		os.Exit(exitProtocol)
	}
}

// retire tells the parent that a runspace was abandoned in native code:
// this process should take no more work and be ended.
func (c *child) retire() { c.send(appendFrame(nil, frameRetire)) }

func (s *childSlot) loop() {
	// One context serves the slot's batches until one is cancelled, so
	// that its runspace keeps a single interrupt watch.
	ctx, cancel := context.WithCancel(context.Background())
	for items := range s.batches {
		if ctx.Err() != nil {
			ctx, cancel = context.WithCancel(context.Background())
		}
		s.mu.Lock()
		s.cancel = cancel
		s.mu.Unlock()
		out := make([]*vm.Result, len(items))
		s.draining.Store(false)
		s.runner.Run(ctx, items, out, func(i int) { s.ended(i, out[i]) }, func() bool { return ctx.Err() != nil || s.draining.Load() })
		s.mu.Lock()
		s.cancel = nil
		s.mu.Unlock()
		s.bmu.Lock()
		s.buf = appendFrame(s.buf, frameDone, binary.AppendUvarint(nil, uint64(s.id)))
		s.flush()
		s.bmu.Unlock()
	}
	cancel()
	s.runner.Close()
}

// ended queues an item's result, to be written with the batch's end or
// flushEvery after the queue stopped being empty, whichever is first: fast
// items share writes, and a result never waits behind a slow item.
func (s *childSlot) ended(i int, res *vm.Result) {
	s.bmu.Lock()
	defer s.bmu.Unlock()
	if len(s.buf) == 0 {
		if s.timer == nil {
			s.timer = time.AfterFunc(flushEvery, func() {
				s.bmu.Lock()
				defer s.bmu.Unlock()
				s.flush()
			})
		} else {
			s.timer.Reset(flushEvery)
		}
	}
	b, at := beginFrame(s.buf, frameResult)
	b = binary.AppendUvarint(b, uint64(s.id))
	b = binary.AppendUvarint(b, uint64(i))
	b = res.AppendBinary(b)
	s.buf = endFrame(b, at)
}

// flush writes the queued results; s.bmu is held.
func (s *childSlot) flush() {
	if len(s.buf) == 0 {
		return
	}
	s.c.send(s.buf)
	s.buf = s.buf[:0]
}

// orphaned ends the worker once its parent is gone (killed with -9, say):
// the kernel gives the worker a new parent, and the work it holds will be
// run again by whoever resumes the run.
func orphaned(parent int) {
	for range time.Tick(parentCheck) {
		if os.Getppid() != parent {
			os.Exit(exitProtocol)
		}
	}
}

// limitMemory bounds this process: the collector's soft goal below limit,
// a watchdog that ends the process once what the Go runtime holds passes
// limit, and an address-space limit well above it as a backstop for one
// huge allocation made between two samples.
func limitMemory(limit int64) {
	debug.SetMemoryLimit(int64(float64(limit) * gcShare))
	if vsz := virtualSize(); vsz > 0 && !raceBuild {
		// A Go process reserves far more address space than it uses, so
		// the backstop is counted from what is reserved now.
		as := uint64(vsz) + 2*uint64(limit) + 256<<20
		_ = syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: as, Max: as})
	}
	go watch(limit)
}

// watch samples the memory the Go runtime has mapped and not returned,
// and ends the process when it passes limit.
func watch(limit int64) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	t := time.NewTicker(watchEvery)
	for range t.C {
		metrics.Read(samples)
		used := int64(samples[0].Value.Uint64() - samples[1].Value.Uint64())
		if used > limit {
			fmt.Fprintf(os.Stderr, "worker: memory limit passed: %d bytes in use, limit %d\n", used, limit)
			os.Exit(exitMemory)
		}
	}
}

// virtualSize reads this process's address-space size from /proc.
func virtualSize() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmSize:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
