package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/vm"
)

// usageError is a mistake in how rsh was invoked: exit code 2, with a
// pointer to the help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// defaultRetryDelay is the wait before the first retry (--retry-delay):
// long enough for a flaky service to recover from a blip, short enough not
// to stall a run; later retries double it.
const defaultRetryDelay = time.Second

// defaultGrace is how long running items may take to finish after the
// first interrupt (--grace) before they are stopped.
const defaultGrace = 5 * time.Second

// maxMaxLine is the largest --max-line: a line is one JavaScript string,
// and beyond 1 GiB the engine's copies of it no longer fit most machines.
const maxMaxLine = 1 << 30

// allowAll is the value pflag gives an --allow-* flag written without "=".
const allowAll = "<all>"

// runOptions is everything `rsh run` was asked to do, validated.
type runOptions struct {
	help       bool
	eval       string
	evalSet    bool
	script     string
	files      []string
	throttle   int
	min        int
	vars       []string
	varsFile   string
	paramsFile string
	params     []string
	imports    []string
	modPaths   []string
	in         string
	out        string
	keepOrder  bool
	timeout    time.Duration
	fresh      bool
	verbose    bool
	quiet      bool
	summary    bool

	// Long runs.
	batchSize    int
	progress     bool
	progressSet  bool
	total        int64
	summaryJSON  string
	joblog       string
	resume       bool
	resumeFailed bool
	retries      int
	retryDelay   time.Duration
	haltSpec     string
	halt         haltPolicy
	grace        time.Duration
	allowNet     []string
	allowRead    []string
	allowWrit    []string
	allowAll     bool
	maxLineSpec  string
	maxLine      int // --max-line in bytes, set by validate

	// Several machines.
	shardSpec string
	shard     shard // --shard, set by validate (zero: every item)

	// warnings are said on stderr before the run: flags that parsed but
	// may not mean what was meant.
	warnings []string

	// Containment.
	isolate   string
	maxMemStr string
	maxMemory int64
	workers   int

	// Per-item limits (0: no limit).
	maxOutput       byteSize
	maxOutputValues int
	maxMessages     int
	maxTimers       int

	// A shared queue (--from, --to).
	from, to   string
	nats       natsFlags
	consumer   string
	pull       int
	maxDeliver int
	ackWait    time.Duration
	idleExit   time.Duration

	state vm.InitialState // built by validate

	// source, when set, is the script's text, read before (a job's, sent
	// by the client); script then only names it, and sourceDir is where
	// require loads from ("": nowhere but --module-path).
	source    *string
	sourceDir string
	// detached compiles -e code with no directory (a job's).
	detached bool
	// echoStreams writes items' messages to stderr with --out records too
	// (a job's log).
	echoStreams bool
}

func newRunFlags(o *runOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(true)
	fs.BoolVarP(&o.help, "help", "h", false, "")
	fs.StringVarP(&o.eval, "eval", "e", "", "")
	fs.IntVarP(&o.throttle, "throttle", "t", runtime.NumCPU(), "")
	fs.IntVar(&o.min, "min", 0, "")
	fs.StringArrayVar(&o.vars, "var", nil, "")
	fs.StringVar(&o.varsFile, "vars", "", "")
	fs.StringVar(&o.paramsFile, "params", "", "")
	fs.StringArrayVarP(&o.params, "param", "p", nil, "")
	fs.StringArrayVarP(&o.imports, "import", "m", nil, "")
	fs.StringArrayVar(&o.modPaths, "module-path", nil, "")
	fs.StringVar(&o.in, "in", "auto", "")
	fs.StringVar(&o.out, "out", "values", "")
	fs.BoolVarP(&o.keepOrder, "keep-order", "k", false, "")
	fs.DurationVar(&o.timeout, "timeout", 0, "")
	fs.BoolVar(&o.fresh, "fresh", false, "")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "")
	fs.BoolVar(&o.summary, "summary", false, "")
	fs.IntVar(&o.batchSize, "batch-size", 0, "")
	fs.BoolVar(&o.progress, "progress", false, "")
	fs.Int64Var(&o.total, "total", 0, "")
	fs.StringVar(&o.summaryJSON, "summary-json", "", "")
	fs.StringVar(&o.joblog, "joblog", "", "")
	fs.BoolVar(&o.resume, "resume", false, "")
	fs.BoolVar(&o.resumeFailed, "resume-failed", false, "")
	fs.IntVar(&o.retries, "retries", 0, "")
	fs.DurationVar(&o.retryDelay, "retry-delay", defaultRetryDelay, "")
	fs.StringVar(&o.haltSpec, "halt", "never", "")
	fs.DurationVar(&o.grace, "grace", defaultGrace, "")
	fs.StringVar(&o.shardSpec, "shard", "", "")
	addAllowFlags(fs, &o.allowNet, &o.allowRead, &o.allowWrit, &o.allowAll)
	fs.StringVar(&o.isolate, "isolate", "none", "")
	fs.StringVar(&o.maxMemStr, "max-memory", "", "")
	fs.IntVar(&o.workers, "workers", 0, "")
	fs.StringVar(&o.maxLineSpec, "max-line", formatSize(defaultMaxLine), "")
	o.maxOutput = vm.DefaultMaxOutputBytes
	fs.Var(&o.maxOutput, "max-output", "")
	fs.IntVar(&o.maxOutputValues, "max-output-values", vm.DefaultMaxOutputValues, "")
	fs.IntVar(&o.maxMessages, "max-messages", vm.DefaultMaxMessages, "")
	fs.IntVar(&o.maxTimers, "max-timers", vm.DefaultMaxTimers, "")
	fs.StringVar(&o.from, "from", "", "")
	fs.StringVar(&o.to, "to", "", "")
	o.nats.add(fs)
	fs.StringVar(&o.consumer, "consumer", "rsh", "")
	fs.IntVar(&o.pull, "pull", 0, "")
	fs.IntVar(&o.maxDeliver, "max-deliver", defaultMaxDeliver, "")
	fs.DurationVar(&o.ackWait, "ack-wait", defaultAckWait, "")
	fs.DurationVar(&o.idleExit, "idle-exit", 0, "")
	return fs
}

// defaultMaxDeliver is how often a shared queue hands out an item before
// it gives up on it (Abandoned): a worker's death costs an item one
// delivery, so five survive four crashes of other items' making.
const defaultMaxDeliver = 5

// defaultAckWait is how long a shared queue waits for a worker's word on
// an item before it gives the item to another: a worker that lives says
// "in progress" well within it, so only a dead one loses its items, and
// they come back within half a minute.
const defaultAckWait = 30 * time.Second

// parseRun parses the arguments of `rsh run` and validates them.
func parseRun(args []string) (*runOptions, error) {
	o, _, err := parseRunWith(args, nil)
	return o, err
}

// parseRunWith is parseRun with extra flags added by extra (for `rsh job
// start`); it also returns the flag set, to ask what was given.
func parseRunWith(args []string, extra func(*pflag.FlagSet)) (*runOptions, *pflag.FlagSet, error) {
	o := &runOptions{}
	fs := newRunFlags(o)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, fs, usagef("%v", err)
	}
	o.warnings = bareAllowWarnings(fs, args)
	return o, fs, o.finish(fs)
}

// finish takes the positional arguments and validates.
func (o *runOptions) finish(fs *pflag.FlagSet) error {
	if o.help {
		return nil
	}
	o.evalSet = fs.Changed("eval")
	o.progressSet = fs.Changed("progress")
	rest := fs.Args()
	if o.evalSet {
		o.files = rest
	} else {
		if len(rest) == 0 {
			return usagef("no script: give a SCRIPT file or -e CODE")
		}
		o.script, o.files = rest[0], rest[1:]
	}
	return o.validate()
}

// validate checks flag combinations in one place and builds the initial
// state.
func (o *runOptions) validate() error {
	if o.throttle < 1 {
		return usagef("--throttle %d: must be at least 1", o.throttle)
	}
	if o.min < 0 || o.min > o.throttle {
		return usagef("--min %d: must be between 0 and the throttle (%d)", o.min, o.throttle)
	}
	switch o.in {
	case "auto", "text", "json", "csv":
	default:
		return usagef("--in %q: want auto, text, json or csv", o.in)
	}
	switch o.out {
	case "values", "json", "records":
	default:
		return usagef("--out %q: want values, json or records", o.out)
	}
	if o.timeout < 0 {
		return usagef("--timeout %s: must not be negative", o.timeout)
	}
	if o.verbose && o.quiet {
		return usagef("--verbose and --quiet cannot be used together")
	}
	if o.evalSet && strings.TrimSpace(o.eval) == "" {
		return usagef("-e: the code is empty")
	}
	if o.batchSize < 0 {
		return usagef("--batch-size %d: must be at least 1", o.batchSize)
	}
	if o.total < 0 {
		return usagef("--total %d: must not be negative", o.total)
	}
	if o.retries < 0 {
		return usagef("--retries %d: must not be negative", o.retries)
	}
	if o.retryDelay < 0 || o.grace < 0 {
		return usagef("--retry-delay and --grace must not be negative")
	}
	if (o.resume || o.resumeFailed) && o.joblog == "" {
		return usagef("--resume and --resume-failed need --joblog FILE: the log says what is done")
	}
	if o.resume && o.resumeFailed {
		return usagef("--resume and --resume-failed cannot be used together")
	}
	if err := o.validateContainment(); err != nil {
		return err
	}
	if err := o.validateQueue(); err != nil {
		return err
	}
	sh, err := parseShard(o.shardSpec, os.LookupEnv)
	if err != nil {
		return err
	}
	o.shard = sh
	maxLine, err := parseSize(o.maxLineSpec)
	if err != nil || maxLine < 1 || maxLine > maxMaxLine {
		return usagef("--max-line %s: want a size from 1B to %s, such as 64KiB or 1MiB", o.maxLineSpec, formatSize(maxMaxLine))
	}
	o.maxLine = int(maxLine)
	halt, err := parseHalt(o.haltSpec)
	if err != nil {
		return usagef("--halt %q: %v", o.haltSpec, err)
	}
	o.halt = halt

	if o.maxOutput < 0 || o.maxOutputValues < 0 || o.maxMessages < 0 || o.maxTimers < 0 {
		return usagef("--max-output, --max-output-values, --max-messages and --max-timers must not be negative (0: no limit)")
	}

	st := &o.state
	st.Timeout = o.timeout
	// vm takes 0 as its default and a negative value as no limit.
	noLimit := func(n int64) int64 {
		if n == 0 {
			return -1
		}
		return n
	}
	st.MaxOutputBytes = noLimit(int64(o.maxOutput))
	st.MaxOutputValues = int(noLimit(int64(o.maxOutputValues)))
	st.MaxMessages = int(noLimit(int64(o.maxMessages)))
	st.MaxTimers = int(noLimit(int64(o.maxTimers)))
	st.Imports = o.imports
	st.ModulePaths = o.modPaths
	for _, dir := range o.modPaths {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return usagef("--module-path %s: not a directory", dir)
		}
	}
	if o.varsFile != "" {
		vars, err := readVarsFile(o.varsFile)
		if err != nil {
			return usagef("--vars %s: %v", o.varsFile, err)
		}
		st.Variables = vars
	}
	for _, kv := range o.vars {
		name, val, err := splitAssign(kv)
		if err != nil {
			return usagef("--var %s", err)
		}
		// A --var overrides the same name from --vars.
		replaced := false
		for i := range st.Variables {
			if st.Variables[i].Name == name {
				st.Variables[i].Value, replaced = val, true
			}
		}
		if !replaced {
			st.Variables = append(st.Variables, vm.Variable{Name: name, Value: val})
		}
	}
	if o.paramsFile != "" {
		vars, err := readVarsFile(o.paramsFile)
		if err != nil {
			return usagef("--params %s: %v", o.paramsFile, err)
		}
		st.Params = map[string]any{}
		for _, v := range vars {
			st.Params[v.Name] = v.Value
		}
	}
	if len(o.params) > 0 {
		if st.Params == nil {
			st.Params = map[string]any{}
		}
		for _, kv := range o.params {
			name, val, err := splitAssign(kv)
			if err != nil {
				return usagef("--param %s", err)
			}
			st.Params[name] = val
		}
	}

	perms, err := permissions(o)
	if err != nil {
		return err
	}
	st.Permissions = perms
	return nil
}

// splitAssign splits NAME=VALUE; VALUE is JSON when it parses as JSON,
// otherwise a string.
func splitAssign(kv string) (string, any, error) {
	name, val, ok := strings.Cut(kv, "=")
	if !ok || name == "" {
		return "", nil, fmt.Errorf("%q: want NAME=VALUE", kv)
	}
	return name, jsonOrString(val), nil
}

func jsonOrString(s string) any {
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return s
}

func readVarsFile(path string) ([]vm.Variable, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("no such file")
		}
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("want a JSON object of NAME: VALUE: %w", err)
	}
	vars := make([]vm.Variable, 0, len(obj))
	for name, raw := range obj {
		vars = append(vars, vm.Variable{Name: name, Value: raw})
	}
	sort.Slice(vars, func(i, j int) bool { return vars[i].Name < vars[j].Name })
	return vars, nil
}

func permissions(o *runOptions) (builtins.Permissions, error) {
	return permissionsFrom(o.allowNet, o.allowRead, o.allowWrit, o.allowAll)
}

// minMaxMemory is the smallest --max-memory accepted: a worker process
// holds about 10 MiB before any script runs.
const minMaxMemory = 32 << 20

// validateContainment checks --isolate, --max-memory and --workers.
func (o *runOptions) validateContainment() error {
	switch o.isolate {
	case "none", "process":
	default:
		return usagef("--isolate %q: want none or process", o.isolate)
	}
	if o.maxMemStr != "" {
		n, err := parseSize(o.maxMemStr)
		if err != nil {
			return usagef("--max-memory %v", err)
		}
		if n < minMaxMemory {
			return usagef("--max-memory %s: must be at least %s (a worker process needs about 10MiB before any script runs)", o.maxMemStr, formatSize(minMaxMemory))
		}
		o.maxMemory = n
		// A memory bound needs worker processes.
		o.isolate = "process"
	}
	if o.workers < 0 {
		return usagef("--workers %d: must not be negative", o.workers)
	}
	if o.workers > 0 && o.isolate != "process" {
		return usagef("--workers needs --isolate process (or --max-memory)")
	}
	return nil
}

// perProcess is how many runspaces each worker process hosts, so that
// --workers processes (by default one per CPU, at most the throttle)
// together host the throttle.
func (o *runOptions) perProcess() int {
	procs := o.workers
	if procs == 0 {
		procs = runtime.NumCPU()
	}
	procs = min(procs, o.throttle)
	return (o.throttle + procs - 1) / procs
}

// bareAllowWarnings warns about each --allow-net, --allow-read or
// --allow-write written without "=" and followed by a word that names an
// existing file: the flag took no value (it allows everything of its
// kind), and the word became the script or an input file, which is rarely
// what was meant. pflag does not say where it found a flag, so args are
// walked here the way it walks them: a flag's value is skipped, and "--"
// ends the flags.
func bareAllowWarnings(fs *pflag.FlagSet, args []string) []string {
	grants := map[string]struct{ grant, entry string }{
		"allow-net":   {"connecting to every host", "host"},
		"allow-read":  {"reading every file", "path"},
		"allow-write": {"writing every file", "path"},
	}
	var warnings []string
	positional := 0 // positional words seen so far
	role := func() string {
		if positional == 0 && !fs.Changed("eval") {
			return "the script"
		}
		return "an input file"
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return warnings
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a[2:], "=")
			f := fs.Lookup(name)
			if f == nil || hasValue {
				continue
			}
			if f.NoOptDefVal == "" {
				i++ // The next word is the flag's value.
				continue
			}
			g, ok := grants[name]
			if !ok || i+1 >= len(args) {
				continue
			}
			next := args[i+1]
			if next == "-" || strings.HasPrefix(next, "-") {
				continue
			}
			if _, err := os.Stat(next); err != nil {
				continue
			}
			warnings = append(warnings, fmt.Sprintf("--%s without \"=\" allows %s, and %q after it is %s; to allow only that %s, write --%s=%s",
				name, g.grant, next, role(), g.entry, name, next))
		case len(a) > 1 && a[0] == '-':
			// Short flags, perhaps several: the first that takes a value
			// takes the rest of the word, or the next word.
			for j := 1; j < len(a); j++ {
				f := fs.ShorthandLookup(a[j : j+1])
				if f == nil || f.NoOptDefVal != "" {
					continue
				}
				if j == len(a)-1 {
					i++
				}
				break
			}
		default:
			positional++
		}
	}
	return warnings
}

// warn writes the warnings on w, one line each.
func (o *runOptions) warn(w io.Writer) {
	for _, msg := range o.warnings {
		fmt.Fprintf(w, "rsh: warning: %s\n", msg)
	}
}

// byteSize is a flag value of bytes, written as parseSize reads them.
type byteSize int64

func (b *byteSize) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func (b *byteSize) String() string { return formatSize(int64(*b)) }

func (b *byteSize) Type() string { return "size" }

// validateQueue checks --from, --to and the queue's flags.
func (o *runOptions) validateQueue() error {
	if o.from == "" && o.to == "" {
		if o.idleExit != 0 {
			return usagef("--idle-exit is for workers of a queue (--from)")
		}
		return nil
	}
	switch {
	case o.from == "" || o.to == "":
		return usagef("--from and --to go together: items come from one queue and their results go to another")
	case len(o.files) > 0:
		return usagef("--from reads items from the queue: no input FILEs")
	case o.joblog != "":
		return usagef("--from and --joblog: the queue keeps track of what is done; drop --joblog")
	case o.batchSize > 1:
		return usagef("--from and --batch-size cannot be used together")
	case o.shardSpec != "":
		return usagef("--from and --shard: the queue spreads the items over its workers; drop --shard")
	case o.pull < 0:
		return usagef("--pull %d: must not be negative", o.pull)
	case o.maxDeliver < 1:
		return usagef("--max-deliver %d: must be at least 1", o.maxDeliver)
	case o.ackWait < time.Second:
		return usagef("--ack-wait %s: must be at least 1s", o.ackWait)
	case o.idleExit < 0:
		return usagef("--idle-exit %s: must not be negative", o.idleExit)
	}
	return nil
}
