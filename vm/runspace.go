package vm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja_nodejs/require"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/builtins/sleep"
	"github.com/runspaces/rsh/builtins/streams"
)

// promiseType is what (*goja.Object).ExportType reports for a Promise:
// checking it avoids exporting (copying) every returned object.
var promiseType = reflect.TypeOf((*goja.Promise)(nil))

// errItemTimeout is the cancellation cause of an item whose timeout fired.
var errItemTimeout = errors.New("item timed out")

// InitError is a runspace whose script failed to initialise: it threw, or
// did not produce a function.
type InitError struct {
	Script string
	Err    error
}

func (e *InitError) Error() string { return fmt.Sprintf("%s: init: %v", e.Script, e.Err) }
func (e *InitError) Unwrap() error { return e.Err }

// Runspace is one isolated JavaScript runtime that has evaluated the script
// and holds its item function. See the package comment for who may call it.
type Runspace struct {
	f    *Factory
	id   int
	rt   *goja.Runtime
	env  *builtins.Env
	loop loop
	fn   goja.Callable
	// fnValue is the item function as a value, for its properties
	// (see Reducer).
	fnValue goja.Value
	params  goja.Value
	broken  bool
	closed  bool

	// The context being watched for interrupts; see watch.
	watched   context.Context
	stopWatch func() bool
	fireMu    sync.Mutex
	watchGen  uint64 // under fireMu: bumped when a fired watch is removed
	fired     atomic.Bool
	cur       *Result // the item being run; streams append to it
	// curLen is the length of the item being run when it is an array (a
	// batch), for writeError's element index; -1 otherwise.
	curLen int

	nat      natives // bounded JSON.parse, JSON.stringify and friends; see natives.go
	limits   limits  // per-item limits; see limits.go
	limitErr *limitError
	outBytes int64 // bytes of output of the item being run
	encoder  jsonEncoder
	outArena []byte // see encodeOutput
	args     [2]goja.Value
}

// ID returns the runspace's number, unique within its factory, from 1.
func (r *Runspace) ID() int { return r.id }

// Usable reports whether the runspace may run another item. A runspace that
// was interrupted, overflowed its stack or panicked is not.
func (r *Runspace) Usable() bool { return !r.broken && !r.closed }

// Close releases the runspace. It is safe to call more than once.
func (r *Runspace) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.unwatch()
	r.loop.reset()
	r.env.EndItem()
	r.f.envs.Delete(r.rt)
}

// NewRunspace makes a runspace and runs the script's init in it. ctx and the
// state's Timeout bound the init. The error is an *InitError when the script
// itself failed.
func (f *Factory) NewRunspace(ctx context.Context) (rs *Runspace, err error) {
	r := &Runspace{f: f, id: int(f.nextID.Add(1)), rt: goja.New()}
	r.env = &builtins.Env{Permissions: &f.state.Permissions, Streams: (*streamSink)(r)}
	r.limits = resolveLimits(&f.state)
	r.loop.max = r.limits.timers
	r.loop.full = func() {
		r.throwOverLimit(&limitError{what: "pending timers", limit: int64(r.limits.timers), field: "MaxTimers"})
	}
	r.rt.SetMaxCallStackSize(f.maxStack)
	r.rt.SetParserOptions(parser.WithDisableSourceMaps) // for eval and new Function; see sourcemap.go
	f.envs.Store(r.rt, r.env)
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	// Stream writes made by the script's top level (a console.log at load
	// time) go to an init result, handed to InitialState.OnInit.
	initRes := &Result{}
	r.cur = initRes
	defer func() { r.cur = nil }()
	err = r.guard(ctx, func() error { return r.describeThrown(r.setup()) })
	if f.state.OnInit != nil && (len(initRes.Output) > 0 || len(initRes.Errors) > 0 || len(initRes.Warnings) > 0 ||
		len(initRes.Verbose) > 0 || len(initRes.Information) > 0) {
		f.state.OnInit(initRes)
	}
	if err != nil {
		var thrown *thrownError
		if errors.As(err, &thrown) {
			msg := thrown.info.Message
			if loc := FirstFrame(thrown.info.Stack); loc != "" {
				msg += " (at " + loc + ")"
			}
			if thrown != err {
				msg = err.Error() // what it was doing: "import x: ...", with the location
			}
			err = errors.New(msg)
		}
		return nil, &InitError{Script: f.script.name, Err: err}
	}
	return r, nil
}

// setup builds the globals and evaluates the script.
func (r *Runspace) setup() error {
	rt, f := r.rt, r.f
	r.installNatives()
	f.registry.Enable(rt)
	r.lazyGlobal("console", func() goja.Value { return require.Require(rt, streams.ConsoleModuleName) })
	streams.Enable(rt, r.env)
	sleep.Enable(rt, r.env)
	r.loop.enable(rt)

	r.encoder = jsonEncoder{rt: rt}
	r.installHostFunctions()

	for _, v := range f.variables {
		val, err := r.parseJSON([]byte(v.json))
		if err != nil {
			return fmt.Errorf("variable %s: %w", v.name, err)
		}
		rt.Set(v.name, val)
	}
	r.params = f.params.toValue(rt)
	for _, imp := range f.imports {
		mod, err := r.require(imp.spec)
		if err != nil {
			return fmt.Errorf("import %s: %w", imp.spec, r.describeThrown(err))
		}
		rt.Set(imp.global, mod)
	}

	module := rt.NewObject()
	exports := rt.NewObject()
	module.Set("exports", exports)
	rt.Set("module", module)
	rt.Set("exports", exports)
	rt.Set("__filename", f.filename)
	rt.Set("__dirname", f.script.dir)

	completion, err := rt.RunProgram(f.script.prog)
	if err != nil {
		return err
	}
	got := module.Get("exports")
	if fn, ok := goja.AssertFunction(got); ok {
		r.fn, r.fnValue = fn, got
		return nil
	}
	if fn, ok := goja.AssertFunction(completion); ok {
		r.fn, r.fnValue = fn, completion
		return nil
	}
	return fmt.Errorf("the script must produce a function (set module.exports = function (item, params) {...} or end with a function expression), but module.exports is %s and the last expression is %s",
		describe(got), describe(completion))
}

// lazyGlobal defines the global name with a value made on first use, so
// that a script that never touches it does not pay for building it (the
// console, with its formatting module, is a tenth of a runspace's setup).
// Assigning the global replaces it like any other.
func (r *Runspace) lazyGlobal(name string, make func() goja.Value) {
	global := r.rt.GlobalObject()
	settle := func(v goja.Value) {
		_ = global.DefineDataProperty(name, v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	}
	getter := r.rt.ToValue(func(goja.FunctionCall) goja.Value {
		v := make()
		settle(v)
		return v
	})
	setter := r.rt.ToValue(func(call goja.FunctionCall) goja.Value {
		settle(call.Argument(0))
		return goja.Undefined()
	})
	_ = global.DefineAccessorProperty(name, getter, setter, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

func (r *Runspace) require(spec string) (goja.Value, error) {
	req, ok := goja.AssertFunction(r.rt.Get("require"))
	if !ok {
		return nil, errors.New("require is not enabled")
	}
	return req(goja.Undefined(), r.rt.ToValue(spec))
}

func describe(v goja.Value) string {
	if o, ok := v.(*goja.Object); ok {
		if o.ClassName() == "Object" && len(o.Keys()) == 0 {
			return "an empty object"
		}
		name := builtins.TypeName(v)
		if name == "Object" {
			return "an object"
		}
		if strings.ContainsRune("AEIOU", rune(name[0])) {
			return "an " + name
		}
		return "a " + name
	}
	switch t := builtins.TypeName(v); t {
	case "undefined", "null":
		return t
	case "string":
		return fmt.Sprintf("string %q", v.String())
	default:
		return t + " " + v.String()
	}
}

// guard runs fn on the runtime under ctx and the state's timeout: when ctx
// ends, the runtime is interrupted. A Go panic from a builtin becomes an
// error. If the runtime was interrupted or panicked, the runspace is marked
// broken.
func (r *Runspace) guard(ctx context.Context, fn func() error) (err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if t := r.f.state.Timeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, t, errItemTimeout)
		defer cancel()
		// The item's own context dies with the item: stop watching it
		// before it is cancelled (defers run last-in first-out).
		defer r.unwatch()
	}
	r.watch(ctx)
	r.env.SetContext(ctx)
	defer func() {
		if r.fired.Load() {
			// The interrupt was (or is being) delivered: this runtime
			// can no longer be trusted to start clean.
			r.broken = true
		}
		r.loop.reset()
		r.endItemLimits()
		r.env.EndItem()
		r.env.SetContext(nil)
	}()
	defer func() {
		if p := recover(); p != nil {
			r.broken = true
			err = r.outcome(ctx, r.recovered(ctx, p))
		}
	}()
	// One return: with more, the compiler stops open-coding the defers,
	// which costs a tenth of a trivial item.
	return r.outcome(ctx, fn())
}

// recovered turns a panic recovered in guard into an error. The engine's
// uncatchable errors can arrive as panics when Go code of rsh's was
// running the script's (describing what it threw, say).
func (r *Runspace) recovered(ctx context.Context, p any) error {
	switch x := p.(type) {
	case *goja.InterruptedError:
		return x
	case *goja.StackOverflowError:
		return x
	}
	if ctx.Err() != nil || r.limitErr != nil {
		return &stopError{cause: context.Cause(ctx)} // outcome decides
	}
	return &panicError{value: p, stack: string(debug.Stack())}
}

// outcome is what guard returns for fn's error err.
func (r *Runspace) outcome(ctx context.Context, err error) error {
	if r.limitErr != nil {
		// The item crossed a limit: whatever ended it afterwards (the
		// interrupt that overLimit raised, an error the script threw
		// when its write failed) is the limit's doing.
		return r.limitErr
	}
	if err == nil {
		// If ctx ended while the item was finishing, the result stands.
		return nil
	}
	var interrupted *goja.InterruptedError
	var overflow *goja.StackOverflowError
	var stop *stopError
	switch {
	case errors.As(err, &interrupted), errors.As(err, &stop), ctx.Err() != nil:
		// An error raised once the context has ended (a blocking
		// builtin giving up, say) is the context's doing.
		r.broken = true
		return &stopError{cause: context.Cause(ctx)}
	case errors.As(err, &overflow):
		r.broken = true
	}
	return err
}

// watch arranges for the runtime to be interrupted when ctx ends. The
// watch stays in place across items that share a context (a pool's run),
// so the common case costs nothing per item; a new context replaces it.
func (r *Runspace) watch(ctx context.Context) {
	if ctx == r.watched {
		return
	}
	r.unwatch()
	r.watched = ctx
	if ctx.Done() == nil {
		return // never cancelled
	}
	r.fireMu.Lock()
	gen := r.watchGen
	r.fireMu.Unlock()
	r.stopWatch = context.AfterFunc(ctx, func() {
		r.fireMu.Lock()
		defer r.fireMu.Unlock()
		if r.watchGen != gen {
			// Unwatched after the callback started and before it got
			// here: the runtime has moved on to another context.
			return
		}
		r.fired.Store(true)
		r.rt.Interrupt(context.Cause(ctx))
	})
}

// unwatch removes the watch. If it fired after the last item ended (the
// runspace was idle, so nothing was interrupted), the pending interrupt is
// cleared so the next item starts clean; if it fired during an item, that
// item already marked the runspace broken.
func (r *Runspace) unwatch() {
	if r.stopWatch != nil && !r.stopWatch() {
		// The callback has started: wait for it to finish, or make it
		// do nothing if it has not taken the lock yet.
		r.fireMu.Lock()
		r.watchGen++
		r.fireMu.Unlock()
		if !r.broken {
			r.rt.ClearInterrupt()
		}
		r.fired.Store(false)
	}
	r.stopWatch, r.watched = nil, nil
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errItemTimeout) || errors.Is(err, sleep.ErrInterrupted)
}

// stopError is an item or init ended by its context.
type stopError struct{ cause error }

func (e *stopError) Error() string {
	if errors.Is(e.cause, errItemTimeout) {
		return "timed out"
	}
	return "stopped: " + e.cause.Error()
}

// panicError is a Go panic recovered from a builtin.
type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("internal error: %v", e.value) }

// Invoke runs the item function for one item and returns its result. The
// result's Seq, Input and Attempts are left for the caller. It never panics:
// whatever the script does, there is a result.
func (r *Runspace) Invoke(ctx context.Context, item any) *Result {
	res := &Result{}
	r.InvokeInto(ctx, item, res)
	return res
}

// InvokeInto is Invoke writing into res, so that a caller running many
// items can allocate their results together. res must be zero except
// StartedAt: when set, it is taken as the item's start time (a caller
// running items back to back passes the previous item's end, saving a
// clock read).
func (r *Runspace) InvokeInto(ctx context.Context, item any, res *Result) {
	r.invoke(ctx, item, res, true)
}

// InvokeUntimed is InvokeInto without reading the clock: res.StartedAt
// and res.Duration stay zero. It is for a caller that nothing has asked
// for item times (two clock reads are a tenth of a trivial item); the
// item's timeout (InitialState.Timeout) still applies.
func (r *Runspace) InvokeUntimed(ctx context.Context, item any, res *Result) {
	r.invoke(ctx, item, res, false)
}

func (r *Runspace) invoke(ctx context.Context, item any, res *Result, timed bool) {
	res.Runspace, res.Attempts = r.id, 1
	if timed && res.StartedAt.IsZero() {
		res.StartedAt = time.Now()
	}
	res.Output = res.firstOutput[:0:1]
	if r.closed || r.broken {
		res.Status = Exception
		res.Error = &ErrorInfo{Message: "vm: runspace is not usable"}
		return
	}
	r.cur = res
	err := r.guard(ctx, func() error {
		if err := r.call(ctx, item); err != nil {
			return r.describeThrown(err)
		}
		return nil
	})
	r.cur = nil
	if timed {
		res.Duration = time.Since(res.StartedAt)
	}
	r.finish(res, err)
	if len(res.Output) == 0 {
		res.Output = nil
	}
}

func (r *Runspace) call(ctx context.Context, item any) error {
	arg, err := r.toJS(item)
	if err != nil {
		what := "cannot convert the input to JavaScript"
		switch item.(type) {
		case json.RawMessage, []byte:
			what = "invalid JSON"
		}
		return &inputError{what: what, err: err}
	}
	// The arguments go through a slice kept in the runspace: a fresh
	// variadic slice per call would be an allocation per item. goja copies
	// arguments onto its own stack.
	r.curLen = -1
	if o, ok := arg.(*goja.Object); ok && o.ClassName() == "Array" {
		r.curLen = int(o.Get("length").ToInteger())
	}
	r.args[0], r.args[1] = arg, r.params
	ret, err := r.fn(goja.Undefined(), r.args[:]...)
	r.args[0] = nil
	if err != nil {
		return err
	}
	if o, ok := ret.(*goja.Object); ok && o.ExportType() == promiseType {
		if p, ok := o.Export().(*goja.Promise); ok {
			if err := r.loop.await(r.env.Context(), p); err != nil {
				if isCtxErr(err) {
					return &stopError{cause: context.Cause(r.env.Context())}
				}
				return err
			}
			if p.State() == goja.PromiseStateRejected {
				return &rejection{reason: p.Result()}
			}
			ret = p.Result()
		}
	}
	if ret == nil || goja.IsUndefined(ret) {
		return nil
	}
	if _, isObj := ret.(*goja.Object); !isObj {
		return r.sink().Output(ret) // a primitive: no script code runs
	}
	// Writing an object may run the script's code (a getter, a toJSON),
	// which may throw.
	if exc := r.rt.Try(func() { err = r.sink().Output(ret) }); exc != nil {
		return exc
	}
	return err
}

// inputError is an item that could not be turned into a JavaScript value,
// such as a json.RawMessage that is not valid JSON.
type inputError struct {
	what string
	err  error
}

func (e *inputError) Error() string {
	msg := e.err.Error()
	var exc *goja.Exception
	if errors.As(e.err, &exc) {
		if o, ok := exc.Value().(*goja.Object); ok {
			if m := o.Get("message"); m != nil {
				msg = m.String()
			}
		}
	}
	return e.what + ": " + msg
}

// rejection is a rejected promise returned by the item function.
type rejection struct{ reason goja.Value }

func (e *rejection) Error() string { return "promise rejected" } // the reason: see describeThrown

// thrownError is a JavaScript exception, or a rejected promise, described
// while the item was still guarded. Describing what a script threw may run
// the script's code (a getter for message, a toString, a proxy's trap),
// which may throw, loop until the timeout or crash the process if it ran
// unguarded; and a *goja.Exception runs such code even when asked whether
// it wraps another error (errors.As calls its Unwrap). So a thrown value is
// described as soon as it is caught, and only its description travels on.
type thrownError struct{ info *ErrorInfo }

func (e *thrownError) Error() string {
	if loc := FirstFrame(e.info.Stack); loc != "" {
		return e.info.Message + " (at " + loc + ")"
	}
	return e.info.Message
}

// describeThrown replaces a JavaScript exception or a rejection by its
// thrownError; other errors are returned as they are. It must be called
// under guard.
func (r *Runspace) describeThrown(err error) error {
	switch err.(type) { // not errors.As: see thrownError
	case *goja.Exception, *rejection:
	default:
		return err
	}
	var info *ErrorInfo
	if exc := r.rt.Try(func() { info = r.errorInfo(err) }); exc != nil {
		// The engine's own frames, built only in this rare case.
		var b bytes.Buffer
		if e, ok := err.(*goja.Exception); ok {
			for _, frame := range e.Stack() {
				b.WriteString("\tat ")
				frame.Write(&b)
				b.WriteByte('\n')
			}
		}
		info = &ErrorInfo{Message: "uncaught exception (describing the thrown value threw as well)", Stack: b.String()}
	}
	return &thrownError{info: info}
}

// finish sets the status and error of res from the call's outcome.
func (r *Runspace) finish(res *Result, err error) {
	if err == nil {
		res.Status = Success
		if len(res.Errors) > 0 {
			res.Status = Error
		}
		return
	}
	var stop *stopError
	var bad *inputError
	switch {
	case errors.As(err, &bad):
		res.Status, res.Attempts = InvalidInput, 0
		res.Error = &ErrorInfo{Message: bad.Error()}
	case errors.As(err, &stop):
		if errors.Is(stop.cause, errItemTimeout) {
			res.Status = Timeout
			res.Error = &ErrorInfo{Message: fmt.Sprintf("timed out after %s", r.f.state.Timeout)}
		} else {
			res.Status = Stopped
			res.Error = &ErrorInfo{Message: "interrupted while running"}
		}
	default:
		res.Status = Exception
		res.Error = r.errorInfo(err)
	}
}

// errorInfo extracts message and stack from a JavaScript exception, a
// rejected promise's reason, or a Go error.
func (r *Runspace) errorInfo(err error) *ErrorInfo {
	switch e := err.(type) {
	case *thrownError:
		return e.info
	case *rejection:
		return r.thrownInfo(e.reason, "")
	case *goja.Exception:
		return r.thrownInfo(e.Value(), e.String())
	}
	var overflow *goja.StackOverflowError
	var pe *panicError
	switch {
	case errors.As(err, &overflow):
		return &ErrorInfo{Message: "RangeError: Maximum call stack size exceeded", Stack: overflow.String()}
	case errors.As(err, &pe):
		return &ErrorInfo{Message: pe.Error(), Stack: pe.stack}
	}
	return &ErrorInfo{Message: err.Error()}
}

func (r *Runspace) thrownInfo(v goja.Value, fallbackStack string) *ErrorInfo {
	info := &ErrorInfo{Stack: fallbackStack}
	if o, ok := v.(*goja.Object); ok {
		if s := o.Get("stack"); s != nil && !goja.IsUndefined(s) {
			info.Stack = s.String()
		}
		if m := o.Get("message"); m != nil && !goja.IsUndefined(m) {
			name := "Error"
			if n := o.Get("name"); n != nil && !goja.IsUndefined(n) && n.String() != "GoError" {
				name = n.String()
			}
			info.Message = name + ": " + m.String()
			if info.Message == "Error: "+require.InvalidModuleError.Error() {
				info.Message = "Error: require: cannot find module (it is not a builtin and no such file is in the script's directory tree or a --module-path)"
			}
			return info
		}
	}
	if v == nil {
		info.Message = "undefined"
	} else {
		info.Message = v.String()
	}
	return info
}

// streamSink adapts a runspace to builtins.Streams: writes go to the result
// of the item being run.
type streamSink Runspace

func (r *Runspace) sink() *streamSink { return (*streamSink)(r) }

// Output adds an output value, within the item's limits (limits.go).
func (s *streamSink) Output(v goja.Value) error {
	r := (*Runspace)(s)
	if s.cur != nil && len(s.cur.Output) >= r.limits.values {
		return r.overLimit(&limitError{what: "output values", limit: int64(r.limits.values), field: "MaxOutputValues"})
	}
	raw, err := r.encodeOutput(v)
	if err != nil {
		return err
	}
	if s.cur != nil {
		if r.outBytes += int64(len(raw)); r.outBytes > r.limits.bytes {
			return r.overLimit(&limitError{what: "bytes of output", limit: r.limits.bytes, field: "MaxOutputBytes"})
		}
		s.cur.Output = append(s.cur.Output, raw)
	}
	return nil
}

// The stream methods are called from native functions (writeError,
// console.log...): past the item's limit they throw.

func (s *streamSink) Error(msg string) {
	if s.cur != nil {
		(*Runspace)(s).messageLimit(len(s.cur.Errors), "error")
		s.cur.Errors = append(s.cur.Errors, msg)
	}
}

// ElementError is Error for the element at index of the item, an array
// (a batch): the message goes to the error stream and, with its index, to
// the result's ElementErrors.
func (s *streamSink) ElementError(msg string, index int) error {
	if s.cur == nil {
		return nil
	}
	switch {
	case s.curLen < 0:
		return fmt.Errorf("index %d names an element of a batch, and the item is not an array", index)
	case index >= s.curLen:
		return fmt.Errorf("index %d names no element of the item, an array of %d", index, s.curLen)
	}
	s.Error(msg)
	s.cur.ElementErrors = append(s.cur.ElementErrors, ElementError{Index: index, Error: msg})
	return nil
}

func (s *streamSink) Warning(msg string) {
	if s.cur != nil {
		(*Runspace)(s).messageLimit(len(s.cur.Warnings), "warning")
		s.cur.Warnings = append(s.cur.Warnings, msg)
	}
}
func (s *streamSink) Verbose(msg string) {
	if s.cur != nil {
		(*Runspace)(s).messageLimit(len(s.cur.Verbose), "verbose")
		s.cur.Verbose = append(s.cur.Verbose, msg)
	}
}
func (s *streamSink) Information(msg string) {
	if s.cur != nil {
		(*Runspace)(s).messageLimit(len(s.cur.Information), "information")
		s.cur.Information = append(s.cur.Information, msg)
	}
}
func (s *streamSink) Progress(pct float64, status string) {
	if s.cur != nil {
		(*Runspace)(s).messageLimit(len(s.cur.Progress), "progress")
		s.cur.Progress = append(s.cur.Progress, Progress{Percent: pct, Status: status})
	}
}

// FirstFrame returns the location of the innermost frame of a JavaScript
// stack that has one, such as "script.js:3:9", or "".
func FirstFrame(stack string) string {
	for _, l := range strings.Split(stack, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "at ") || strings.HasSuffix(l, "(native)") {
			continue
		}
		l = strings.TrimPrefix(l, "at ")
		// goja frames read "f (file.js:3:9(12))" or "file.js:3:9(12)";
		// the trailing parenthesised number is a bytecode offset.
		if i := strings.LastIndex(l, "("); i >= 0 && strings.HasSuffix(l, ")") && isDigits(l[i+1:len(l)-1]) {
			l = l[:i]
		}
		if i := strings.LastIndex(l, " ("); i >= 0 && strings.HasSuffix(l, ")") {
			l = l[i+2 : len(l)-1]
		}
		if strings.Contains(l, ":") {
			return l
		}
	}
	return ""
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
