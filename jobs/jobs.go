// Package jobs runs named background jobs, like PowerShell's thread jobs
// (Start-Job, Get-Job, Wait-Job, Receive-Job, Stop-Job, Remove-Job), each in
// a process of its own.
//
// A Manager owns the jobs of one state directory. Each job is a script run
// over a stream of items (or once, with no items) by a job process: rsh
// itself (Options.Command), running the job the way `rsh run` runs a
// script, with the job's effective permissions, in the working directory
// of the client that started it. A job that crashes, hangs in native code
// or exhausts its memory fails alone; the Manager and the other jobs go
// on. At most Options.MaxJobs jobs run at once; the others wait, in order,
// as NotStarted.
//
// Everything about a job is in files under its directory (see the
// constants in proto.go): its input is appended as it arrives, its results
// and job log are appended by its process, and its state is replaced
// atomically as it changes. Memory does not grow with a job's size. A
// Manager opened on the directory again (after a crash, even kill -9)
// finds every job, and resumes each job that was running from its job
// log: every item ends with exactly one result.
//
// One Manager at a time holds a directory (an exclusive lock); a second
// one is refused with the holder's process id.
//
// A Manager is safe for concurrent use.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/vm"
)

// State is where a job is in its life.
type State string

// The states of a job.
const (
	NotStarted          State = "NotStarted"          // waiting for a free slot (Options.MaxJobs)
	Running             State = "Running"             //
	Completed           State = "Completed"           // every item succeeded
	CompletedWithErrors State = "CompletedWithErrors" // it ran to the end, some items did not succeed
	Failed              State = "Failed"              // it could not run to the end: see the reason
	Stopped             State = "Stopped"             // Stop was called
)

// Finished reports whether s is a final state.
func (s State) Finished() bool {
	switch s {
	case Completed, CompletedWithErrors, Failed, Stopped:
		return true
	}
	return false
}

// allStates lists the states in the order a job goes through them.
func allStates() [6]State {
	return [...]State{NotStarted, Running, Completed, CompletedWithErrors, Failed, Stopped}
}

// ParseState returns the state named s (in any case).
func ParseState(s string) (State, error) {
	for _, st := range allStates() {
		if strings.EqualFold(s, string(st)) {
			return st, nil
		}
	}
	return "", fmt.Errorf("state %q: want NotStarted, Running, Completed, CompletedWithErrors, Failed or Stopped", s)
}

// Errors returned by a Manager (and by a Client, from the daemon's reply).
var (
	ErrNotFound    = errors.New("no such job")
	ErrNameTaken   = errors.New("job name taken")
	ErrTimeout     = errors.New("wait timed out; the job is still running")
	ErrClosed      = errors.New("the job manager is closed")
	ErrInvalid     = errors.New("invalid job")
	ErrConflict    = errors.New("conflict")
	ErrInputClosed = errors.New("the job takes no more input")
)

// Item is one input of a job given in its Spec: its value as JSON, or,
// with Error set, a line that could not be decoded (Value then holds its
// text as a JSON string, and the item reports vm.InvalidInput).
type Item struct {
	Value json.RawMessage `json:"value"`
	Error string          `json:"error,omitempty"`
}

// Limits are the per-item limits of vm.InitialState: zero means the
// default, a negative value no limit.
type Limits struct {
	MaxOutputBytes  int64 `json:"maxOutputBytes,omitempty"`
	MaxOutputValues int   `json:"maxOutputValues,omitempty"`
	MaxMessages     int   `json:"maxMessages,omitempty"`
	MaxTimers       int   `json:"maxTimers,omitempty"`
}

// Spec describes a job: what `rsh job start` sends. Everything in it is
// JSON, so a client can send it and a daemon can keep it.
type Spec struct {
	// Name is the job's unique name; empty means one is generated.
	Name string `json:"name"`
	// Script is the source. ScriptPath (absolute) names it in messages
	// and is where require loads relative modules from, if the daemon may
	// read it; empty means inline code (-e), which loads modules only from
	// ModulePaths.
	Script     string `json:"script"`
	ScriptPath string `json:"scriptPath,omitempty"`
	// Dir is the working directory of the job (the client's): relative
	// paths the script uses resolve there. Empty means the Manager's.
	Dir string `json:"dir,omitempty"`
	// Variables and Params are as in vm.InitialState.
	Variables map[string]json.RawMessage `json:"variables,omitempty"`
	Params    map[string]json.RawMessage `json:"params,omitempty"`
	// Imports and ModulePaths are as in vm.InitialState, with absolute
	// paths.
	Imports     []string `json:"imports,omitempty"`
	ModulePaths []string `json:"modulePaths,omitempty"`
	// Permissions the job asks for; the Manager bounds them by its
	// ceiling once, at the start, and the job process gets only that.
	Permissions builtins.Permissions `json:"permissions"`
	// How the items run, as `rsh run`'s flags of the same names:
	// --timeout, --throttle (0: the number of CPUs), --retries,
	// --retry-delay, --batch-size, --fresh, --halt, --isolate,
	// --max-memory, --workers and the per-item limits.
	TimeoutMs    int64  `json:"timeoutMs,omitempty"`
	Throttle     int    `json:"throttle,omitempty"`
	Retries      int    `json:"retries,omitempty"`
	RetryDelayMs int64  `json:"retryDelayMs,omitempty"`
	BatchSize    int    `json:"batchSize,omitempty"`
	Fresh        bool   `json:"fresh,omitempty"`
	Halt         string `json:"halt,omitempty"`
	Isolate      string `json:"isolate,omitempty"`
	MaxMemory    int64  `json:"maxMemory,omitempty"`
	Workers      int    `json:"workers,omitempty"`
	Limits       Limits `json:"limits,omitzero"`
	// Input says that the items will be streamed to the job (Manager.Input,
	// or PUT .../input): the job starts at once and reads them as they
	// arrive. Items gives them with the spec instead. With neither, the
	// script runs once, with a null item.
	Input bool   `json:"input,omitempty"`
	Items []Item `json:"items,omitempty"`

	// ScriptDir is set by the Manager: the directory require loads from,
	// empty when the daemon may not read the script's directory.
	ScriptDir string `json:"scriptDir,omitempty"`
}

// VariableList returns the spec's variables as vm.Variables, by name.
func (s *Spec) VariableList() []vm.Variable {
	names := make([]string, 0, len(s.Variables))
	for n := range s.Variables {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]vm.Variable, 0, len(names))
	for _, n := range names {
		out = append(out, vm.Variable{Name: n, Value: s.Variables[n]})
	}
	return out
}

// Info is a job's state at one moment.
type Info struct {
	Name   string `json:"name"`
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"` // why it failed or stopped
	Script string `json:"script"`
	// Dir is where the job runs.
	Dir       string    `json:"dir,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	// DurationMs is from start to end, or to now while it runs.
	DurationMs float64 `json:"durationMs"`
	// Done of Total items have a result; Failed of them did not succeed.
	// Total is -1 until the whole input has been read. With a batch size
	// (Spec.BatchSize) these count batches, as the job log does.
	Done      int `json:"done"`
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// Running and Queued are its items running now and waiting for a
	// runspace; Retried the retries made; P50Ms and P99Ms the median and
	// 99th percentile of its items' durations (approximate to a
	// power-of-two bucket), since its process (last) started.
	Running int     `json:"running,omitempty"`
	Queued  int     `json:"queued,omitempty"`
	Retried int64   `json:"retried,omitempty"`
	P50Ms   float64 `json:"p50Ms,omitempty"`
	P99Ms   float64 `json:"p99Ms,omitempty"`
	// Rate is items per second since the job (last) started; EtaMs how
	// long the rest may take at that rate (0: unknown).
	Rate  float64 `json:"rate,omitempty"`
	EtaMs float64 `json:"etaMs,omitempty"`
	// Received is how many results receiving has handed out (and the
	// client confirmed); ReceivedBytes where they end in the results.
	Received      int   `json:"received"`
	ReceivedBytes int64 `json:"receivedBytes"`
	// Committed is how much of the results file the job log claims: the
	// results that can be received.
	Committed int64 `json:"committed"`
	// Resumed counts the times the job was resumed after its daemon
	// stopped while it ran.
	Resumed int `json:"resumed,omitempty"`
	// InputOpen is true while the job's input is still arriving.
	InputOpen bool `json:"inputOpen,omitempty"`
	// QueuePosition is the job's place among the jobs waiting to start (1:
	// next), for a NotStarted job.
	QueuePosition int `json:"queuePosition,omitempty"`
}

// Options configure a Manager.
type Options struct {
	// Dir is where the jobs are kept (required).
	Dir string
	// MaxJobs bounds the jobs running at once; 0 means runtime.NumCPU().
	MaxJobs int
	// MaxThrottle, when positive, bounds each job's throttle.
	MaxThrottle int
	// Ceiling bounds every job's permissions (a daemon's own flags); nil
	// leaves each job with what it asked for.
	Ceiling *builtins.Permissions
	// Command starts a job process: the program and its first arguments,
	// to which ProcessArg and the job's directory are added. The default
	// is this program, which must then call cli.JobMain first thing.
	Command []string
	// StopGrace is how long a job process may take to stop after being
	// told to before it is killed; 0 means DefaultStopGrace.
	StopGrace time.Duration
	// InputWait is how long a job whose input is to be streamed waits for
	// it to begin; 0 means DefaultInputWait.
	InputWait time.Duration
}

// DefaultStopGrace is Options.StopGrace's default: a job process stops its
// items at once when told, and needs only to write what it has.
const DefaultStopGrace = 10 * time.Second

// DefaultInputWait is Options.InputWait's default: a client sends the input
// right after the spec; a minute covers a slow network.
const DefaultInputWait = time.Minute

// Manager runs and keeps the jobs of a directory.
type Manager struct {
	opts  Options
	store *store

	mu      sync.Mutex
	jobs    map[string]*job
	queue   []*job // NotStarted jobs, in order
	running int
	next    int
	closed  bool
	wg      sync.WaitGroup // job supervisors
}

// New returns a Manager for opts.Dir: it takes the directory's lock, loads
// its jobs, and resumes those that were running.
func New(opts Options) (*Manager, error) {
	if opts.Dir == "" {
		return nil, errors.New("jobs: Options.Dir is required")
	}
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = runtime.NumCPU()
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = DefaultStopGrace
	}
	if opts.InputWait <= 0 {
		opts.InputWait = DefaultInputWait
	}
	if len(opts.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("jobs: finding this program to run jobs with: %w", err)
		}
		opts.Command = []string{exe}
	}
	st, err := openStore(opts.Dir)
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, store: st, jobs: map[string]*job{}}
	var resume, waiting []*job
	for _, j := range st.load() {
		m.jobs[j.name] = j
		m.bumpNext(j.name)
		switch j.info.State {
		case Running:
			j.info.Resumed++
			j.note("the daemon stopped while the job ran; resuming it from its job log")
			resume = append(resume, j)
		case NotStarted:
			waiting = append(waiting, j)
		}
	}
	byCreation := func(js []*job) {
		sort.SliceStable(js, func(a, b int) bool { return js[a].info.CreatedAt.Before(js[b].info.CreatedAt) })
	}
	byCreation(resume)
	byCreation(waiting)
	for _, j := range append(resume, waiting...) {
		j.recoverInput()
		j.save()
		m.queue = append(m.queue, j)
	}
	m.mu.Lock()
	m.schedule()
	m.mu.Unlock()
	return m, nil
}

// validName reports whether name can name a job (and its directory): 1 to
// 64 letters, digits, '.', '_' or '-', starting with a letter or digit.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// bumpNext keeps generated names ahead of loaded ones.
func (m *Manager) bumpNext(name string) {
	if rest, ok := strings.CutPrefix(name, "job-"); ok {
		if n, err := strconv.Atoi(rest); err == nil {
			m.next = max(m.next, n)
		}
	}
}

// Bounds of a Spec's numbers: far beyond any sensible job, they keep a
// hostile or mistaken spec from asking for absurd resources.
const (
	maxSpecThrottle = 10000
	maxSpecRetries  = 1000
	maxSpecBatch    = 1 << 20
	maxSpecWorkers  = 1024
	minMaxMemory    = 32 << 20 // as `rsh run --max-memory`
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// check validates spec's fields that do not depend on the file system.
func (spec *Spec) check() error {
	switch {
	case spec.Name != "" && !validName(spec.Name):
		return invalidf("name %q: use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", spec.Name)
	case strings.TrimSpace(spec.Script) == "":
		return invalidf("the script is empty")
	case spec.Throttle < 0 || spec.Throttle > maxSpecThrottle:
		return invalidf("throttle %d: want 0 to %d", spec.Throttle, maxSpecThrottle)
	case spec.TimeoutMs < 0 || spec.RetryDelayMs < 0:
		return invalidf("timeout and retry delay must not be negative")
	case spec.Retries < 0 || spec.Retries > maxSpecRetries:
		return invalidf("retries %d: want 0 to %d", spec.Retries, maxSpecRetries)
	case spec.BatchSize < 0 || spec.BatchSize > maxSpecBatch:
		return invalidf("batch size %d: want 0 to %d", spec.BatchSize, maxSpecBatch)
	case spec.Workers < 0 || spec.Workers > maxSpecWorkers:
		return invalidf("workers %d: want 0 to %d", spec.Workers, maxSpecWorkers)
	case spec.MaxMemory != 0 && spec.MaxMemory < minMaxMemory:
		return invalidf("max memory %d: must be at least 32MiB", spec.MaxMemory)
	case spec.Isolate != "" && spec.Isolate != "none" && spec.Isolate != "process":
		return invalidf("isolate %q: want none or process", spec.Isolate)
	case spec.Input && len(spec.Items) > 0:
		return invalidf("items are given both in the spec and as a stream")
	case spec.ScriptPath != "" && !filepath.IsAbs(spec.ScriptPath):
		return invalidf("script path %q is not absolute", spec.ScriptPath)
	case spec.Dir != "" && !filepath.IsAbs(spec.Dir):
		return invalidf("directory %q is not absolute", spec.Dir)
	}
	for _, p := range spec.ModulePaths {
		if !filepath.IsAbs(p) {
			return invalidf("module path %q is not absolute", p)
		}
	}
	for _, imp := range spec.Imports {
		if _, target := importTarget(imp); !vm.IsBuiltinModule(target) && !filepath.IsAbs(target) {
			return invalidf("import %q is not an absolute path or a builtin module", imp)
		}
	}
	return nil
}

// importTarget splits an import NAME=SPEC (or SPEC).
func importTarget(imp string) (alias, target string) {
	if a, t, ok := strings.Cut(imp, "="); ok {
		return a, t
	}
	return "", imp
}

// decide fixes the job's effective permissions and module roots: the
// request bounded by the ceiling, on resolved paths, and the files it may
// load code from inside the ceiling's read roots. It returns notes for the
// client (what the job will not get).
func (m *Manager) decide(spec *Spec) ([]string, error) {
	req := spec.Permissions
	req.Ceiling = nil
	if err := req.Validate(); err != nil {
		return nil, invalidf("%v", err)
	}
	var notes []string
	spec.ScriptDir = ""
	if spec.ScriptPath != "" {
		spec.ScriptDir = filepath.Dir(spec.ScriptPath)
	}
	c := m.opts.Ceiling
	if c == nil {
		spec.Permissions = req
		return nil, nil
	}
	mayRead := func(path string) bool {
		_, err := c.CheckRead(path)
		return err == nil
	}
	if spec.ScriptDir != "" && !mayRead(spec.ScriptDir) {
		notes = append(notes, fmt.Sprintf("the daemon may not read %s (its --allow-read), so the script cannot require files from it", spec.ScriptDir))
		spec.ScriptDir = ""
	}
	for _, p := range spec.ModulePaths {
		if !mayRead(p) {
			return nil, invalidf("module path %s is outside what the daemon may read (rsh serve --allow-read)", p)
		}
	}
	for _, imp := range spec.Imports {
		if _, t := importTarget(imp); !vm.IsBuiltinModule(t) && !mayRead(t) {
			return nil, invalidf("import %s is outside what the daemon may read (rsh serve --allow-read)", t)
		}
	}
	spec.Permissions = req.Within(*c)
	return notes, nil
}

// Start starts a job and returns its name (and notes on what the job will
// not get). The job waits as NotStarted while Options.MaxJobs others run.
// A job whose spec says Input reads items given to Input.
func (m *Manager) Start(ctx context.Context, spec Spec) (string, []string, error) {
	if err := spec.check(); err != nil {
		return "", nil, err
	}
	if spec.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", nil, err
		}
		spec.Dir = wd
	}
	if fi, err := os.Stat(spec.Dir); err != nil || !fi.IsDir() {
		return "", nil, invalidf("the job's directory %s is not there for the daemon (the job runs where it was started from; the daemon must see the same files)", spec.Dir)
	}
	notes, err := m.decide(&spec)
	if err != nil {
		return "", nil, err
	}
	if mt := m.opts.MaxThrottle; mt > 0 {
		if spec.Throttle == 0 {
			spec.Throttle = runtime.NumCPU() // the job process's default
		}
		spec.Throttle = min(spec.Throttle, mt)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return "", nil, ErrClosed
	}
	if spec.Name == "" {
		for {
			m.next++
			spec.Name = "job-" + strconv.Itoa(m.next)
			if _, taken := m.jobs[spec.Name]; !taken && !m.store.exists(spec.Name) {
				break
			}
		}
	}
	if _, taken := m.jobs[spec.Name]; taken || m.store.exists(spec.Name) {
		m.mu.Unlock()
		return "", nil, fmt.Errorf("%w: %q (remove it first, or pick another name)", ErrNameTaken, spec.Name)
	}
	script := spec.ScriptPath
	if script == "" {
		script = "-e"
	}
	j := newJob(m.store, spec.Name, Info{
		Name: spec.Name, State: NotStarted, Script: script, Dir: spec.Dir,
		CreatedAt: time.Now(), Total: -1, InputOpen: spec.Input,
	})
	// Reserve the name while the files are written.
	m.jobs[spec.Name] = j
	m.bumpNext(spec.Name)
	m.mu.Unlock()

	if err := m.store.create(spec, j.info); err != nil {
		m.mu.Lock()
		delete(m.jobs, spec.Name)
		m.mu.Unlock()
		_ = m.store.remove(spec.Name)
		return "", nil, err
	}
	if spec.Input {
		time.AfterFunc(m.opts.InputWait, func() {
			j.endInput(0, fmt.Errorf("no input arrived within %s of the start", m.opts.InputWait), true)
		})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return spec.Name, notes, nil // it starts with the next daemon
	}
	m.queue = append(m.queue, j)
	m.schedule()
	return spec.Name, notes, nil
}

// schedule starts queued jobs while slots are free. m.mu is held.
func (m *Manager) schedule() {
	for !m.closed && m.running < m.opts.MaxJobs && len(m.queue) > 0 {
		j := m.queue[0]
		m.queue = m.queue[1:]
		if _, ok := m.jobs[j.name]; !ok {
			continue // removed while it waited
		}
		m.running++
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			j.supervise(m)
			m.mu.Lock()
			m.running--
			m.schedule()
			m.mu.Unlock()
		}()
	}
}

func (m *Manager) get(name string) (*job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return j, nil
}

// Get returns a job's info.
func (m *Manager) Get(name string) (Info, error) {
	j, err := m.get(name)
	if err != nil {
		return Info{}, err
	}
	info := j.snapshot()
	info.QueuePosition = m.queuePosition(j)
	return info, nil
}

func (m *Manager) queuePosition(j *job) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, q := range m.queue {
		if q == j {
			return i + 1
		}
	}
	return 0
}

// List returns every job's info, oldest first.
func (m *Manager) List() []Info {
	m.mu.Lock()
	js := make([]*job, 0, len(m.jobs))
	for _, j := range m.jobs {
		js = append(js, j)
	}
	pos := map[*job]int{}
	for i, q := range m.queue {
		pos[q] = i + 1
	}
	m.mu.Unlock()
	out := make([]Info, len(js))
	for i, j := range js {
		out[i] = j.snapshot()
		out[i].QueuePosition = pos[j]
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].CreatedAt.Equal(out[b].CreatedAt) {
			return out[a].CreatedAt.Before(out[b].CreatedAt)
		}
		return out[a].Name < out[b].Name
	})
	return out
}

// Wait waits until the job has finished, timeout has passed (0: no
// limit), or ctx is done. On a timeout it returns the job's info with
// ErrTimeout and leaves the job running, like Wait-Job.
func (m *Manager) Wait(ctx context.Context, name string, timeout time.Duration) (Info, error) {
	j, err := m.get(name)
	if err != nil {
		return Info{}, err
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	return j.awaitEnd(ctx, expired)
}

// Stop stops a job: a waiting one never starts, a running one has its
// items interrupted (they report vm.Stopped). It returns once the job has
// stopped. Stopping a finished job does nothing.
func (m *Manager) Stop(ctx context.Context, name string) (Info, error) {
	j, err := m.get(name)
	if err != nil {
		return Info{}, err
	}
	// A waiting job leaves the queue; job.stop then ends it as never
	// started.
	m.mu.Lock()
	m.queue = slices.DeleteFunc(m.queue, func(q *job) bool { return q == j })
	m.mu.Unlock()
	j.stop(m, false)
	return j.awaitEnd(ctx, nil)
}

// Remove stops the job if it runs, then forgets it and deletes its files.
func (m *Manager) Remove(ctx context.Context, name string) error {
	if _, err := m.Stop(ctx, name); err != nil {
		return err
	}
	m.mu.Lock()
	j := m.jobs[name]
	delete(m.jobs, name)
	m.mu.Unlock()
	if j == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err := j.remove(); err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	return nil
}

// Close stops every running job without finishing it: each stays Running
// on file and is resumed by the next Manager opened on the directory. It
// waits for the job processes to end, then releases the directory.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	js := make([]*job, 0, len(m.jobs))
	for _, j := range m.jobs {
		js = append(js, j)
	}
	m.mu.Unlock()
	for _, j := range js {
		j.stop(m, true)
	}
	m.wg.Wait()
	return m.store.close()
}
