// Package jobs runs named background jobs on a shared throttle, like
// PowerShell's thread jobs (Start-Job, Get-Job, Wait-Job, Receive-Job,
// Stop-Job, Remove-Job) over rsh's runspace pool.
//
// A Manager owns the jobs. Each job is a script run over a list of items
// (or once, with no items), in its own runspaces, and every job's items
// share one Limiter, so at most MaxConcurrent items run at once across all
// jobs. Results are kept as they are produced and can be received while
// the job runs; receiving moves a cursor and never loses a result.
//
// With Options.Dir set, a job's spec, state and results are persisted as
// they change, in plain files: the spec and state as small JSON documents
// replaced atomically (write to a temporary file, then rename), the
// results as an append-only NDJSON file. A Manager opened on the same
// directory later finds every job again; one that was running when the
// previous process died is marked Failed with the reason, never lost.
//
// A Manager is safe for concurrent use.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// State is where a job is in its life.
type State string

// The states of a job.
const (
	NotStarted          State = "NotStarted"
	Running             State = "Running"
	Completed           State = "Completed"           // every item succeeded
	CompletedWithErrors State = "CompletedWithErrors" // it ran to the end, some items did not succeed
	Failed              State = "Failed"              // it could not run: the script did not compile or initialise, or the daemon died
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

// Errors returned by a Manager.
var (
	ErrNotFound  = errors.New("jobs: no such job")
	ErrNameTaken = errors.New("jobs: job name taken")
	ErrTimeout   = errors.New("jobs: wait timed out; the job is still running")
	ErrClosed    = errors.New("jobs: manager closed")
)

// Item is one input of a job: its value as JSON, or, with Error set, a line
// that could not be decoded (Value then holds its text as a JSON string,
// and the item reports vm.InvalidInput).
type Item struct {
	Value json.RawMessage `json:"value"`
	Error string          `json:"error,omitempty"`
}

// Spec describes a job. Everything in it is JSON, so a client can send it
// and a daemon can persist it.
type Spec struct {
	// Name is the job's unique name; empty means one is generated.
	Name string `json:"name"`
	// Script is the source; ScriptPath names it in messages and is the
	// directory tree require may load from (empty: inline code).
	Script     string `json:"script"`
	ScriptPath string `json:"scriptPath,omitempty"`
	// Variables and Params are as in vm.InitialState.
	Variables map[string]json.RawMessage `json:"variables,omitempty"`
	Params    map[string]json.RawMessage `json:"params,omitempty"`
	// Imports and ModulePaths are as in vm.InitialState.
	Imports     []string `json:"imports,omitempty"`
	ModulePaths []string `json:"modulePaths,omitempty"`
	// Permissions the job asks for; a Manager bounds them by its ceiling.
	Permissions builtins.Permissions `json:"permissions"`
	// TimeoutMs bounds each item; 0 means none.
	TimeoutMs int64 `json:"timeoutMs,omitempty"`
	// Throttle bounds this job's items running at once (0: the manager's
	// limit); the manager's limit bounds all jobs together.
	Throttle int `json:"throttle,omitempty"`
	// Items to run the script over; none means one invocation with a
	// null item.
	Items []Item `json:"items,omitempty"`
}

// Info is a job's state at one moment.
type Info struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Reason    string    `json:"reason,omitempty"` // why it failed or stopped
	Script    string    `json:"script"`
	CreatedAt time.Time `json:"createdAt"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	// DurationMs is from start to end, or to now while it runs.
	DurationMs float64 `json:"durationMs"`
	// Done of Total items have a result; Succeeded of them succeeded.
	Done      int `json:"done"`
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	// Received is how many results Receive has handed out.
	Received int `json:"received"`
}

// Options configure a Manager.
type Options struct {
	// MaxConcurrent bounds the items running at once across all jobs;
	// 0 means runtime.NumCPU().
	MaxConcurrent int
	// Dir, when set, is where jobs are persisted (see the package doc).
	Dir string
	// Ceiling bounds every job's permissions (a daemon's own flags); nil
	// leaves each job with what it asked for.
	Ceiling *builtins.Permissions
}

// Manager runs and keeps jobs.
type Manager struct {
	opts    Options
	limiter *pool.Limiter
	store   *store // nil without Dir

	mu     sync.Mutex
	jobs   map[string]*job
	next   int
	closed bool
}

type job struct {
	spec   Spec
	cancel context.CancelFunc
	done   chan struct{} // closed when the job has finished

	mu       sync.Mutex
	info     Info
	results  []*vm.Result
	stopping bool
}

// New returns a Manager, loading the jobs persisted in opts.Dir.
func New(opts Options) (*Manager, error) {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = runtime.NumCPU()
	}
	m := &Manager{opts: opts, limiter: pool.NewLimiter(opts.MaxConcurrent), jobs: map[string]*job{}}
	if opts.Dir != "" {
		st, err := openStore(opts.Dir)
		if err != nil {
			return nil, err
		}
		m.store = st
		loaded, err := st.load()
		if err != nil {
			return nil, err
		}
		for _, l := range loaded {
			j := &job{spec: l.spec, info: l.info, results: l.results, done: make(chan struct{})}
			close(j.done)
			if !j.info.State.Finished() {
				// It was running (or about to) when the last process
				// ended without finishing it.
				j.info.State = Failed
				j.info.Reason = fmt.Sprintf("the daemon stopped while the job was running (it crashed or was killed); %d of %d items had finished", len(l.results), j.info.Total)
				if j.info.EndedAt.IsZero() {
					j.info.EndedAt = time.Now()
				}
				j.info.Done = len(l.results)
				if err := st.saveInfo(j.info); err != nil {
					return nil, err
				}
			}
			m.jobs[j.info.Name] = j
			m.bumpNext(j.info.Name)
		}
	}
	return m, nil
}

// validName reports whether name can name a job (and its directory): 1 to
// 64 letters, digits, '.', '_' or '-', starting with a letter or digit.
// (Hand-written rather than a regexp compiled at start-up: every rsh
// command pays for package initialisation.)
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

// Start starts a job and returns its name. The script is compiled and its
// first runspace initialised in the background: a failure there shows as
// the job's Failed state, with the reason.
func (m *Manager) Start(spec Spec) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", ErrClosed
	}
	if spec.Name == "" {
		for {
			m.next++
			spec.Name = "job-" + strconv.Itoa(m.next)
			if _, taken := m.jobs[spec.Name]; !taken {
				break
			}
		}
	}
	if !validName(spec.Name) {
		return "", fmt.Errorf("jobs: name %q: use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", spec.Name)
	}
	if _, taken := m.jobs[spec.Name]; taken {
		return "", fmt.Errorf("%w: %q (remove it first, or pick another name)", ErrNameTaken, spec.Name)
	}
	total := len(spec.Items)
	if total == 0 {
		total = 1
	}
	script := spec.ScriptPath
	if script == "" {
		script = "-e"
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{spec: spec, cancel: cancel, done: make(chan struct{}), info: Info{
		Name: spec.Name, State: NotStarted, Script: script, CreatedAt: time.Now(), Total: total,
	}}
	if m.store != nil {
		if err := m.store.create(spec, j.info); err != nil {
			cancel()
			return "", err
		}
	}
	m.jobs[spec.Name] = j
	m.bumpNext(spec.Name)
	go m.run(ctx, j)
	return spec.Name, nil
}

// run is a job's life.
func (m *Manager) run(ctx context.Context, j *job) {
	defer close(j.done)
	defer j.cancel()
	j.update(m, func(i *Info) { i.State, i.StartedAt = Running, time.Now() })

	factory, err := m.factory(j.spec)
	var p *pool.Pool
	if err == nil {
		throttle := j.spec.Throttle
		if throttle <= 0 || throttle > m.limiter.Size() {
			throttle = m.limiter.Size()
		}
		p, err = pool.New(ctx, pool.Options{Factory: factory, Throttle: throttle, Limiter: m.limiter, KeepOrder: true})
	}
	if err != nil {
		j.update(m, func(i *Info) { i.State, i.Reason, i.EndedAt = Failed, err.Error(), time.Now() })
		return
	}
	defer p.Close()

	items := func(yield func(pool.Item) bool) {
		if len(j.spec.Items) == 0 {
			yield(pool.Item{Value: json.RawMessage("null")})
			return
		}
		for _, it := range j.spec.Items {
			pi := pool.Item{Value: it.Value}
			if it.Error != "" {
				pi = pool.Item{Input: it.Value, Err: errors.New(it.Error)}
			}
			if !yield(pi) {
				return
			}
		}
	}
	var out *resultsFile
	if m.store != nil {
		if out, err = m.store.openResults(j.spec.Name); err != nil {
			j.update(m, func(i *Info) { i.Reason = "saving results: " + err.Error() })
		} else {
			defer out.close()
		}
	}
	for res := range p.Run(ctx, items) {
		if out != nil {
			if err := out.append(res); err != nil {
				j.update(m, func(i *Info) { i.Reason = "saving results: " + err.Error() })
			}
		}
		j.mu.Lock()
		j.results = append(j.results, res)
		j.info.Done++
		if res.Status == vm.Success {
			j.info.Succeeded++
		}
		j.mu.Unlock()
	}
	j.update(m, func(i *Info) {
		i.EndedAt = time.Now()
		switch {
		case j.stopping:
			i.State, i.Reason = Stopped, "stopped"
		case i.Succeeded == i.Total:
			i.State = Completed
		default:
			i.State = CompletedWithErrors
		}
	})
}

func (m *Manager) factory(spec Spec) (*vm.Factory, error) {
	name, dir := spec.ScriptPath, ""
	if name == "" {
		name = "-e"
	} else {
		dir = filepath.Dir(name)
	}
	script, err := vm.Compile(name, dir, spec.Script)
	if err != nil {
		return nil, err
	}
	state := vm.InitialState{
		Imports:     spec.Imports,
		ModulePaths: spec.ModulePaths,
		Permissions: spec.Permissions,
		Timeout:     time.Duration(spec.TimeoutMs) * time.Millisecond,
	}
	state.Permissions.Ceiling = m.opts.Ceiling
	names := make([]string, 0, len(spec.Variables))
	for n := range spec.Variables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		state.Variables = append(state.Variables, vm.Variable{Name: n, Value: spec.Variables[n]})
	}
	if len(spec.Params) > 0 {
		state.Params = map[string]any{}
		for n, v := range spec.Params {
			state.Params[n] = v
		}
	}
	return vm.NewFactory(script, state)
}

// update changes the job's info under its lock and persists it.
func (j *job) update(m *Manager, f func(*Info)) {
	j.mu.Lock()
	f(&j.info)
	info := j.info
	j.mu.Unlock()
	if m.store != nil {
		_ = m.store.saveInfo(info)
	}
}

func (j *job) snapshot() Info {
	j.mu.Lock()
	defer j.mu.Unlock()
	info := j.info
	switch {
	case !info.StartedAt.IsZero() && !info.EndedAt.IsZero():
		info.DurationMs = float64(info.EndedAt.Sub(info.StartedAt).Microseconds()) / 1000
	case !info.StartedAt.IsZero():
		info.DurationMs = float64(time.Since(info.StartedAt).Microseconds()) / 1000
	}
	return info
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
	return j.snapshot(), nil
}

// List returns every job's info, oldest first.
func (m *Manager) List() []Info {
	m.mu.Lock()
	js := make([]*job, 0, len(m.jobs))
	for _, j := range m.jobs {
		js = append(js, j)
	}
	m.mu.Unlock()
	out := make([]Info, len(js))
	for i, j := range js {
		out[i] = j.snapshot()
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
	select {
	case <-j.done:
		return j.snapshot(), nil
	case <-expired:
		return j.snapshot(), ErrTimeout
	case <-ctx.Done():
		return j.snapshot(), ctx.Err()
	}
}

// WaitAll waits for every job that exists now, within one timeout; on a
// timeout it returns every job's info with ErrTimeout.
func (m *Manager) WaitAll(ctx context.Context, timeout time.Duration) ([]Info, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for _, info := range m.List() {
		left := time.Duration(0)
		if !deadline.IsZero() {
			if left = time.Until(deadline); left <= 0 {
				return m.List(), ErrTimeout
			}
		}
		if _, err := m.Wait(ctx, info.Name, left); err != nil && !errors.Is(err, ErrNotFound) {
			return m.List(), err
		}
	}
	return m.List(), nil
}

// Receive returns the job's results not received before, in input order,
// and marks them received; with keep it leaves them unreceived. It works
// while the job runs (returning what is there so far); results are kept
// either way, so nothing is lost.
func (m *Manager) Receive(name string, keep bool) ([]*vm.Result, error) {
	j, err := m.get(name)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	from := j.info.Received
	out := append([]*vm.Result(nil), j.results[from:]...)
	if !keep {
		j.info.Received = len(j.results)
	}
	info := j.info
	j.mu.Unlock()
	if !keep && m.store != nil {
		if err := m.store.saveInfo(info); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Results returns all of a job's results so far, received or not.
func (m *Manager) Results(name string) ([]*vm.Result, error) {
	j, err := m.get(name)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]*vm.Result(nil), j.results...), nil
}

// Stop stops a running job: its running items are interrupted (they
// report vm.Stopped) and no more start. It returns once the job has
// stopped. Stopping a finished job does nothing.
func (m *Manager) Stop(name string) error {
	j, err := m.get(name)
	if err != nil {
		return err
	}
	j.mu.Lock()
	running := !j.info.State.Finished()
	if running {
		j.stopping = true
	}
	j.mu.Unlock()
	if running && j.cancel != nil {
		j.cancel()
	}
	<-j.done
	return nil
}

// Remove stops the job if it is running, then forgets it (and its files).
func (m *Manager) Remove(name string) error {
	if err := m.Stop(name); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.jobs, name)
	m.mu.Unlock()
	if m.store != nil {
		return m.store.remove(name)
	}
	return nil
}

// Close stops every running job and waits for them. The Manager accepts no
// new jobs afterwards; finished jobs stay persisted.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	names := make([]string, 0, len(m.jobs))
	for n := range m.jobs {
		names = append(names, n)
	}
	m.mu.Unlock()
	for _, n := range names {
		_ = m.Stop(n)
	}
	return nil
}
