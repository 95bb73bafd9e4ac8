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

// newRunFlags defines the flags of `rsh run` on o. Their usage strings are
// the help and the README's table (help.go): the value's name in
// backquotes, the default added from the definition.
func newRunFlags(o *runOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(true)
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")

	// Script.
	fs.StringVarP(&o.eval, "eval", "e", "", "run `CODE` instead of a SCRIPT file")
	fs.StringArrayVar(&o.vars, "var", nil, "set the global variable `NAME=VALUE` in every runspace; VALUE is JSON if it parses as JSON, else a string (repeatable)")
	fs.StringVar(&o.varsFile, "vars", "", "set globals from `FILE.json`, a JSON object of NAME: VALUE")
	fs.StringArrayVarP(&o.params, "param", "p", nil, "add `NAME=VALUE` to the params object passed to the function, VALUE JSON or a string as for --var (repeatable)")
	fs.StringVar(&o.paramsFile, "params", "", "params from `FILE.json`, a JSON object of NAME: VALUE (for values too big for a command line); --param wins")
	fs.StringArrayVarP(&o.imports, "import", "m", nil, "bind `NAME`, a builtin module (fs, tcp, sleep) or a JS file, as a global; NAME=SPEC picks the global's name")
	fs.StringArrayVar(&o.modPaths, "module-path", nil, "let require() load JS files from `DIR` too (by default only from the script's own directory tree)")

	// Pool.
	fs.IntVarP(&o.throttle, "throttle", "t", runtime.NumCPU(), "run at most `N` items at once (-j N and --jobs N say the same, as in GNU parallel and make)")
	showDefault(fs, "throttle", "one per CPU")
	fs.VarP(aliasValue{fs, "throttle"}, "jobs", "j", "")
	_ = fs.SetAnnotation("jobs", annAliasOf, []string{"throttle"})
	_ = fs.MarkHidden("jobs")
	fs.IntVar(&o.min, "min", 0, "create `N` runspaces before any input")
	fs.BoolVar(&o.fresh, "fresh", false, "a new runspace per item: nothing survives between items (slower); by default runspaces are reused")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop an item that runs longer than `DURATION` (e.g. 500ms, 5s); an item stuck in native code still gets its Timeout result 1s later, and its runtime is abandoned")
	fs.BoolVarP(&o.keepOrder, "keep-order", "k", false, "output in input order (bounded reorder window)")

	// Input and output.
	fs.StringVar(&o.in, "in", "auto", "read each line as `FORMAT`:\nauto: a JSON line is parsed, any other line is a string, empty lines are skipped\ntext: every line is a string\njson: every line must be JSON (else InvalidInput)\ncsv: the header row names the fields of objects (names must differ)\nA line that is not UTF-8 is InvalidInput, never changed.")
	fs.StringVar(&o.maxLineSpec, "max-line", formatSize(defaultMaxLine), "the longest input line, a `SIZE` such as 1MiB or 64KiB; a longer one is InvalidInput, skipped without being held in memory")
	fs.StringVar(&o.out, "out", "values", "write each item's output as `FORMAT`:\nvalues: one output value per line, strings as they are, other values as JSON\njson: every output value as JSON\nrecords: one JSON record per item with its input, output, status, streams and timing")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "also show verbose messages and exception stacks")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "hide information and warning messages")
	fs.IntVar(&o.batchSize, "batch-size", 0, "pass the function arrays of up to `N` consecutive items (one call per batch); records carry the batch's first seq and batchSize")

	// Long runs.
	fs.BoolVar(&o.progress, "progress", false, "a progress bar on stderr: done/total, rate, ETA, items running, failures, the last writeProgress status (default: on when stderr is a terminal; --progress=false)")
	fs.Int64Var(&o.total, "total", 0, "the number of items, `N`, for the bar, when it cannot be counted up front (stdin)")
	fs.BoolVar(&o.summary, "summary", false, "print counts, success rate, rate and item durations (p50/p95/max) to stderr")
	fs.StringVar(&o.summaryJSON, "summary-json", "", "write the same summary as JSON to `FILE`")
	fs.StringVar(&o.joblog, "joblog", "", "append one JSON line per finished item to `FILE`: seq, input hash, status, attempts, duration, start; written only after the item's output (resuming into the same >> file first removes output a killed run wrote but never logged)")
	fs.BoolVar(&o.resume, "resume", false, "with --joblog: skip items that already succeeded in the log (a success counts for the item at its seq if the input there is the same, else for the next occurrence of its input; an input that appears k times runs until it has k successes); run the rest under their seqs")
	fs.BoolVar(&o.resumeFailed, "resume-failed", false, "with --joblog: run only the items that are in the log without having succeeded")
	fs.IntVar(&o.retries, "retries", 0, "run an item that threw or timed out again, up to `N` more times")
	fs.DurationVar(&o.retryDelay, "retry-delay", defaultRetryDelay, "with --retries: wait `D` before the first retry, doubling after each")
	fs.StringVar(&o.haltSpec, "halt", "never", "stop the run early as `WHEN[,COND=N|P%]` says, like GNU parallel's --halt: soon starts no new items, now also interrupts running ones; COND is fail (the default, with N=1), success or done: stop once N items failed, succeeded or finished, or P% of them: for fail and success, P% of the items finished (after at least 3); for done, of all the items (--total, or counted in the input FILEs)")
	fs.DurationVar(&o.grace, "grace", defaultGrace, "after the first Ctrl-C, how long (`D`) running items may take to finish before they are stopped; a second Ctrl-C stops them at once")

	// Several machines.
	fs.StringVar(&o.shardSpec, "shard", "", "run only the items whose input hash falls in shard `I/N`, I of N (0 to N-1): N runs over the same input run every item once between them, in any input order; items keep their seqs in the whole input, so --joblog and --resume work per shard; --batch-size batches the shard's own items.\n--shard auto[/N] takes I (and N) from the environment: RSH_SHARD (I or I/N); JOB_COMPLETION_INDEX (a Kubernetes Indexed Job: give /N); SLURM_ARRAY_TASK_ID with _MIN, _MAX, _STEP and _COUNT (a Slurm array MIN-MAX[:STEP]: I and N); PARALLEL_SEQ (GNU parallel, from 1: give /N); all that are set must agree")

	// Containment.
	fs.StringVar(&o.isolate, "isolate", "none", "`MODE` says where runspaces live:\nnone: goroutines of this process (fastest)\nprocess: worker processes (rsh re-executed) that are killed and replaced when an item exhausts memory, crashes or is stuck, without losing any other item")
	fs.StringVar(&o.maxMemStr, "max-memory", "", "bound each worker process to `SIZE` (e.g. 512MiB, 2GiB; implies --isolate process); an item that passes it, again when run alone, ends as MemoryLimit")
	fs.IntVar(&o.workers, "workers", 0, "with --isolate process: `N` worker processes (default: min(throttle, CPUs)); the throttle's runspaces are spread over them")

	// Limits per item.
	o.maxOutput = vm.DefaultMaxOutputBytes
	fs.Var(&o.maxOutput, "max-output", "the most `SIZE` of an item's output values in all, as JSON (like 512KiB, 1GiB)")
	fs.IntVar(&o.maxOutputValues, "max-output-values", vm.DefaultMaxOutputValues, "most output values (emit and return) of an item: `N`")
	fs.IntVar(&o.maxMessages, "max-messages", vm.DefaultMaxMessages, "most messages (`N`) an item writes to each stream: errors, warnings, verbose, console, progress")
	fs.IntVar(&o.maxTimers, "max-timers", vm.DefaultMaxTimers, "most timers (`N`) an item has pending at once")

	// A shared queue.
	fs.StringVar(&o.from, "from", "", "take items from the queue at `URL` (nats://HOST:PORT/NAME), shared with any number of other workers, instead of FILEs or stdin")
	fs.StringVar(&o.to, "to", "", "with --from: store each result at `URL` (nats://HOST:PORT/NAME); an item is acknowledged only once its result is stored, and a result is stored once however often its item is delivered")
	fs.IntVar(&o.pull, "pull", 0, "with --from: items fetched per request, `N` (default: the throttle); a worker holds what it runs plus up to two pulls. For items far faster than a round trip to the server, --pull 300 runs ~15x faster")
	fs.StringVar(&o.consumer, "consumer", "rsh", "with --from: the queue's consumer the workers share, `NAME`")
	fs.IntVar(&o.maxDeliver, "max-deliver", defaultMaxDeliver, "with --from: deliveries (`N`) before an item that kills its workers is set aside with status Abandoned")
	fs.DurationVar(&o.ackWait, "ack-wait", defaultAckWait, "with --from: how long (`D`) the queue waits on a silent worker before it hands its items to another")
	fs.DurationVar(&o.idleExit, "idle-exit", 0, "with --from: end (exit 0) once no item has come for `D`: the queue ran dry (default: wait for items for ever)")
	o.nats.add(fs)

	// Permissions.
	addAllowFlags(fs, &o.allowNet, &o.allowRead, &o.allowWrit, &o.allowAll)
	return fs
}

// aliasValue is a flag that sets another flag of its set: -j and --jobs
// set --throttle, so that Changed("throttle") sees them too.
type aliasValue struct {
	fs   *pflag.FlagSet
	name string
}

func (a aliasValue) Set(s string) error { return a.fs.Set(a.name, s) }
func (a aliasValue) String() string     { return "" }
func (a aliasValue) Type() string       { return a.fs.Lookup(a.name).Value.Type() }

// queueWorkerFlags are the flags that only a worker of a shared queue
// (--from) uses.
var queueWorkerFlags = []string{"pull", "consumer", "max-deliver", "ack-wait", "idle-exit", "nats-creds", "nats-nkey", "nats-token-file", "nats-ca", "nats-cert", "nats-key"}

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
	var err error
	if o.warnings, err = bareAllowWarnings(fs, args); err != nil && !o.help {
		return nil, fs, err
	}
	return o, fs, o.finish(fs)
}

// finish takes the positional arguments and validates.
func (o *runOptions) finish(fs *pflag.FlagSet) error {
	if o.help {
		return nil
	}
	o.evalSet = fs.Changed("eval")
	o.progressSet = fs.Changed("progress")
	// A flag that would do nothing here is a mistake, said as one.
	if o.from == "" {
		for _, f := range queueWorkerFlags {
			if fs.Changed(f) {
				return usagef("--%s is for workers of a queue: give --from and --to", f)
			}
		}
	}
	if fs.Changed("retry-delay") && o.retries == 0 {
		return usagef("--retry-delay is the wait before a retry: give --retries N too")
	}
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
	if halt.cond == "done" && halt.percent > 0 {
		// done=P% is a share of all the items: they must be known.
		switch {
		case o.total > 0:
			halt.total = o.total
		case len(o.files) > 0 && o.shardSpec == "" && o.from == "":
			halt.total = newInput(nil, o.files, o.in).count()
		}
		if halt.total <= 0 {
			return usagef("--halt %s: done=P%% is a share of all the items; give their number with --total N (or input FILEs to count)", o.haltSpec)
		}
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
// what was meant. When the word is no file at all, or a directory, it
// cannot work as the script or an input: that is a usage error that says
// how to write the list. pflag does not say where it found a flag, so args
// are walked here the way it walks them: a flag's value is skipped, and
// "--" ends the flags.
func bareAllowWarnings(fs *pflag.FlagSet, args []string) ([]string, error) {
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
			return warnings, nil
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
			if fi, err := os.Stat(next); err != nil || fi.IsDir() {
				what := "there is no such file"
				if err == nil {
					what = "it is a directory"
				}
				return warnings, usagef("--%s without \"=\" takes no list, so %q after it was read as %s, and %s; to allow only that %s, write --%s=%s",
					name, next, role(), what, g.entry, name, next)
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
	return warnings, nil
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
