package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
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

	// Per-item limits (0: no limit).
	maxOutput       byteSize
	maxOutputValues int
	maxMessages     int
	maxTimers       int

	state vm.InitialState // built by validate
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
	addAllowFlags(fs, &o.allowNet, &o.allowRead, &o.allowWrit, &o.allowAll)
	o.maxOutput = vm.DefaultMaxOutputBytes
	fs.Var(&o.maxOutput, "max-output", "")
	fs.IntVar(&o.maxOutputValues, "max-output-values", vm.DefaultMaxOutputValues, "")
	fs.IntVar(&o.maxMessages, "max-messages", vm.DefaultMaxMessages, "")
	fs.IntVar(&o.maxTimers, "max-timers", vm.DefaultMaxTimers, "")
	return fs
}

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

// byteSize is a flag value of bytes written as a number with an optional
// unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024),
// in any case, such as 64MiB or 1.5GB.
type byteSize int64

var byteUnits = []struct {
	suffix string
	size   float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"b", 1},
}

func (b *byteSize) Set(s string) error {
	num, unit := strings.ToLower(strings.TrimSpace(s)), 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, unit = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.size
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f*unit, 0) || f*unit >= math.MaxInt64 {
		return fmt.Errorf("want a size such as 512KiB, 64MiB or 1GB")
	}
	*b = byteSize(math.Round(f * unit))
	return nil
}

func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

func (b *byteSize) Type() string { return "size" }
