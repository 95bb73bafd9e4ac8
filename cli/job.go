package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/runspaces/rsh/jobs"
	"github.com/runspaces/rsh/vm"
)

const jobUsageLine = `usage: rsh job start|ls|get|wait|receive|log|stop|rm [flags] [args]`

const jobIntro = `Talk to the job daemon ('rsh serve'): run scripts in the background, each
job in a process of its own, and come back to them. 'rsh job VERB -h' shows
a verb's flags.
`

// jobVerb is a verb of `rsh job`: how it is called and what it does.
type jobVerb struct {
	name, args, summary string
}

// jobVerbs are the verbs of `rsh job`, in the order help lists them.
var jobVerbs = []jobVerb{
	{"start", "[--name N] [-n] [run flags] SCRIPT [FILE...]", "submit a job and print its name. Items are read here, from the FILEs or piped stdin, and streamed to the daemon as they are read; the job starts at once and runs them as they arrive. With none (or -n/--no-input) the script runs once. The job runs in this directory: relative paths resolve here."},
	{"ls", "[--state S] [--json]", "list jobs: state, done/total, items running now, failures, rate, ETA, duration"},
	{"get", "NAME [--json]", "one job in detail"},
	{"wait", "NAME... | --all [--timeout D] [--json]", "wait for jobs to finish; the exit status says how: 0 Completed, 1 CompletedWithErrors, 3 Failed, 4 Stopped, 124 still running when --timeout ran out (with several jobs, the worst of them)"},
	{"receive", "NAME [-f] [--keep] [--out values|json|records]", "print the results not received before; they count as received once written here (--keep: not at all). Exit status 3 (and why, on stderr) if the job Failed, 1 if any item failed"},
	{"log", "NAME [-f]", "the job's messages: what its script wrote while it loaded, warnings, errors, and the daemon's notes"},
	{"stop", "NAME... | --all", "interrupt running jobs (waiting ones never start)"},
	{"rm", "NAME... | --all", "stop jobs if they run, then delete them and their files"},
}

// lookupJobVerb returns the verb called name.
func lookupJobVerb(name string) (jobVerb, bool) {
	for _, v := range jobVerbs {
		if v.name == name {
			return v, true
		}
	}
	return jobVerb{}, false
}

// jobConnSection is the heading of the flags that say where the daemon is.
var jobConnSection = flagSection{title: "Where the daemon is", flags: []string{"socket", "url", "token-file"}}

const jobTrailer = `Ctrl-C (or SIGTERM) ends any of these at once, with exit status 130;
the job itself goes on.

Environment:
  RSH_SOCKET  the daemon's socket when neither --socket nor --url is given
  RSH_STATE   the daemon's state directory, where STATE/token is
`

// jobHelp is `rsh job --help`: every verb, and where the daemon is.
func jobHelp() string {
	var b strings.Builder
	b.WriteString(jobUsageLine + "\n\n" + jobIntro + "\n")
	writeVerbList(&b, "job", jobVerbs)
	var conn jobConn
	fs := pflag.NewFlagSet("job", pflag.ContinueOnError)
	conn.add(fs)
	b.WriteString("\n" + formatFlags(fs, []flagSection{jobConnSection}) + "\n" + jobTrailer)
	return b.String()
}

// writeVerbList writes the verbs of `rsh CMD`, each with its summary
// under it, for the command's help.
func writeVerbList(b *strings.Builder, cmd string, verbs []jobVerb) {
	for _, v := range verbs {
		fmt.Fprintf(b, "  rsh %s %s %s\n", cmd, v.name, v.args)
		for _, l := range wrap(v.summary, helpWidth-helpColumn-1) {
			fmt.Fprintf(b, "%s%s\n", strings.Repeat(" ", helpColumn), l)
		}
	}
}

// writeVerbUsage writes the usage line and summary that open the help of
// `rsh CMD VERB`.
func writeVerbUsage(b *strings.Builder, cmd string, v jobVerb) {
	fmt.Fprintf(b, "usage: rsh %s %s %s\n\n", cmd, v.name, v.args)
	for _, l := range wrap(v.summary, helpWidth-1) {
		b.WriteString(l + "\n")
	}
}

// jobVerbHelp is `rsh job VERB --help`.
func jobVerbHelp(v jobVerb) string {
	var b strings.Builder
	writeVerbUsage(&b, "job", v)
	b.WriteString("\n")
	var sections []flagSection
	var fs *pflag.FlagSet
	if v.name == "start" {
		var name string
		var noInput bool
		var conn jobConn
		fs = newJobStartFlags(&runOptions{}, &name, &noInput, &conn)
		sections = append([]flagSection{{title: "Job", flags: []string{"name", "no-input"}}}, withoutFlags(runSections, jobRunOnly)...)
	} else {
		var a jobArgs
		fs = newJobFlags(v.name, &a)
		own := flagSection{title: "Flags"}
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !slices.Contains(jobConnSection.flags, f.Name) {
				own.flags = append(own.flags, f.Name)
			}
		})
		sections = []flagSection{own}
	}
	b.WriteString(formatFlags(fs, append(sections, jobConnSection)))
	if v.name == "start" {
		b.WriteString("\nThe daemon grants no more than it was started with, decided once when the\njob starts. --vars, --params, the script and the input are read here, by\nthis command.\n")
	}
	b.WriteString("\n" + jobTrailer)
	return b.String()
}

// Exit codes of `rsh job wait` and `receive`.
const (
	exitJobFailed   = 3
	exitJobStopped  = 4
	exitJobTimedOut = 124
)

// jobRunOnly are the `rsh run` flags a job does not take: the daemon keeps
// the job log and the output, and receive formats it; a job runs all of
// its input (no --shard), and is no worker of a shared queue.
var jobRunOnly = []string{"from", "to", "consumer", "pull", "max-deliver", "ack-wait", "idle-exit", "nats-creds", "nats-nkey", "nats-token-file", "nats-ca", "nats-cert", "nats-key", "joblog", "resume", "resume-failed", "progress", "summary", "summary-json", "grace", "keep-order", "min", "out", "total", "verbose", "quiet", "shard"}

// jobConn is where the daemon is, from the flags.
type jobConn struct{ socket, url, tokenFile string }

func (c *jobConn) add(fs *pflag.FlagSet) {
	fs.StringVar(&c.socket, "socket", "", "the daemon's Unix socket, `PATH` (default: $RSH_SOCKET, else as for 'rsh serve')")
	fs.StringVar(&c.url, "url", "", "the daemon's TCP address, `URL`, e.g. http://127.0.0.1:7070")
	fs.StringVar(&c.tokenFile, "token-file", "", "the token for --url, kept in `FILE` (default: STATE/token, where STATE is $RSH_STATE or as for 'rsh serve')")
}

// jobArgs are the flags of the verbs of `rsh job` but start.
type jobArgs struct {
	conn                                            jobConn
	help, asJSON, all, keep, follow, verbose, quiet bool
	timeout                                         time.Duration
	outMode, stateFilter                            string
}

// newJobFlags defines the flags of `rsh job VERB` (not start) on a; nil
// for a verb there is not.
func newJobFlags(verb string, a *jobArgs) *pflag.FlagSet {
	fs := pflag.NewFlagSet("job "+verb, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.BoolVarP(&a.help, "help", "h", false, "show this help")
	json := func() { fs.BoolVar(&a.asJSON, "json", false, "print JSON, for scripts") }
	follow := func(what string) {
		fs.BoolVarP(&a.follow, "follow", "f", false, "go on as "+what+" arrive until the job ends, like tail -f")
	}
	all := func() { fs.BoolVar(&a.all, "all", false, "every job") }
	switch verb {
	case "ls":
		fs.StringVar(&a.stateFilter, "state", "", "list only the jobs in state `S`: NotStarted, Running, Completed, CompletedWithErrors, Failed or Stopped")
		json()
	case "get":
		json()
	case "wait":
		all()
		fs.DurationVar(&a.timeout, "timeout", 0, "give up after `D` (exit status 124) (default: wait for ever)")
		json()
	case "receive":
		follow("results")
		fs.BoolVar(&a.keep, "keep", false, "leave the results to receive again")
		fs.StringVar(&a.outMode, "out", "values", "write each item's output as `FORMAT`, as for 'rsh run': values, json or records")
		fs.BoolVarP(&a.verbose, "verbose", "v", false, "also show verbose messages and exception stacks")
		fs.BoolVarP(&a.quiet, "quiet", "q", false, "hide information and warning messages")
	case "log":
		follow("messages")
	case "stop", "rm":
		all()
	default:
		return nil
	}
	a.conn.add(fs)
	return fs
}

// newJobStartFlags defines the flags of `rsh job start`: the run flags
// (those a job does not take are refused by name after parsing), and the
// job's own.
func newJobStartFlags(o *runOptions, name *string, noInput *bool, conn *jobConn) *pflag.FlagSet {
	fs := newRunFlags(o)
	addJobStartFlags(fs, name, noInput, conn)
	return fs
}

func addJobStartFlags(fs *pflag.FlagSet, name *string, noInput *bool, conn *jobConn) {
	fs.StringVar(name, "name", "", "the job's `NAME` (default: made up, unique)")
	fs.BoolVarP(noInput, "no-input", "n", false, "run the script once, with no items, even if stdin is a pipe")
	conn.add(fs)
}

func (c *jobConn) client() (*jobs.Client, error) {
	if c.url == "" {
		s := c.socket
		if s == "" {
			s = socketPath()
		}
		return jobs.UnixClient(s), nil
	}
	tf := c.tokenFile
	if tf == "" {
		tf = filepath.Join(stateDir(), "token")
	}
	token, err := readTokenFile(tf)
	if err != nil {
		return nil, err
	}
	return &jobs.Client{Base: strings.TrimSuffix(c.url, "/"), Token: token, Where: c.url}, nil
}

// interruptible returns a context that the first SIGINT or SIGTERM on
// env.Signals cancels, and a channel closed when that happened: the
// client commands of 'rsh job' and 'rsh queue' end at once on either,
// with exit status 130.
func interruptible(ctx context.Context, env Env) (context.Context, context.CancelFunc, <-chan struct{}) {
	ctx, cancel := context.WithCancel(ctx)
	interrupted := make(chan struct{})
	if env.Signals != nil {
		go func() {
			select {
			case <-env.Signals:
				close(interrupted)
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel, interrupted
}

func jobCommand(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		// The command alone teaches: its help, as with -h.
		args = []string{"--help"}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			if v, ok := lookupJobVerb(args[1]); ok {
				fmt.Fprint(env.Stdout, jobVerbHelp(v))
				return ExitOK
			}
		}
		fmt.Fprint(env.Stdout, jobHelp())
		return ExitOK
	}
	verb, args := args[0], args[1:]
	usage := func(err error) int {
		fmt.Fprintf(env.Stderr, "rsh job %s: %v\n%s\nRun 'rsh job %s -h' for details.\n", verb, err, jobUsageLine, verb)
		return ExitUsage
	}

	ctx, cancel, interrupted := interruptible(ctx, env)
	defer cancel()
	failed := func(err error) int {
		var api *jobs.APIError
		select {
		case <-interrupted:
			fmt.Fprintf(env.Stderr, "rsh job %s: interrupted\n", verb)
			return ExitInterrupted
		default:
		}
		switch {
		case errors.Is(err, jobs.ErrNoDaemon):
			fmt.Fprintf(env.Stderr, "rsh job %s: %v: start one with 'rsh serve &' (or say where it is with --socket or --url)\n", verb, err)
		case errors.Is(err, jobs.ErrDaemonDenied):
			fmt.Fprintf(env.Stderr, "rsh job %s: %v: use --socket to name your own daemon's socket, or run as the daemon's user\n", verb, err)
		case errors.As(err, &api) && api.Status == 401:
			fmt.Fprintf(env.Stderr, "rsh job %s: the daemon refused the token: check --token-file\n", verb)
		default:
			fmt.Fprintf(env.Stderr, "rsh job %s: %v\n", verb, err)
		}
		return ExitItemsFailed
	}

	if verb == "start" {
		return jobStart(ctx, args, env, usage, failed)
	}

	var a jobArgs
	fs := newJobFlags(verb, &a)
	if fs == nil {
		fmt.Fprintf(env.Stderr, "rsh job %s: unknown command\n%s\n", verb, jobUsageLine)
		return ExitUsage
	}
	if err := fs.Parse(args); err != nil {
		return usage(err)
	}
	if a.help {
		v, _ := lookupJobVerb(verb)
		fmt.Fprint(env.Stdout, jobVerbHelp(v))
		return ExitOK
	}
	conn, asJSON, all, keep, follow, verbose, quiet := a.conn, a.asJSON, a.all, a.keep, a.follow, a.verbose, a.quiet
	timeout, outMode, stateFilter := a.timeout, a.outMode, a.stateFilter
	names := fs.Args()
	switch verb {
	case "ls":
		if len(names) != 0 {
			return usage(fmt.Errorf("unexpected argument %q", names[0]))
		}
	case "wait", "stop", "rm":
		if all == (len(names) > 0) {
			return usage(errors.New("give job NAMEs or --all"))
		}
	default:
		if len(names) != 1 {
			return usage(errors.New("give one job NAME"))
		}
	}
	var state jobs.State
	if stateFilter != "" {
		st, err := jobs.ParseState(stateFilter)
		if err != nil {
			return usage(fmt.Errorf("--state: %w", err))
		}
		state = st
	}
	if verb == "receive" {
		switch outMode {
		case "values", "json", "records":
		default:
			return usage(fmt.Errorf("--out %q: want values, json or records", outMode))
		}
		if verbose && quiet {
			return usage(errors.New("--verbose and --quiet cannot be used together"))
		}
	}
	c, err := conn.client()
	if err != nil {
		return usage(err)
	}
	if all {
		list, err := c.List(ctx, "")
		if err != nil {
			return failed(err)
		}
		for _, i := range list {
			names = append(names, i.Name)
		}
	}

	switch verb {
	case "ls":
		list, err := c.List(ctx, state)
		if err != nil {
			return failed(err)
		}
		if asJSON {
			return printJSON(env, list)
		}
		printJobTable(env.Stdout, list)
	case "get":
		info, err := c.Get(ctx, names[0])
		if err != nil {
			return failed(err)
		}
		if asJSON {
			return printJSON(env, info)
		}
		printJobInfo(env.Stdout, info)
	case "wait":
		return jobWait(ctx, c, names, timeout, asJSON, env, failed)
	case "receive":
		return jobReceive(ctx, c, names[0], keep, follow, &runOptions{out: outMode, verbose: verbose, quiet: quiet}, env, failed)
	case "log":
		s, err := c.Log(ctx, names[0], follow)
		if err != nil {
			return failed(err)
		}
		defer s.Close()
		if _, err := io.Copy(env.Stdout, s); err != nil {
			return failed(err)
		}
	case "stop":
		for _, n := range names {
			info, err := c.Stop(ctx, n)
			if err != nil {
				return failed(err)
			}
			fmt.Fprintf(env.Stdout, "%s: %s\n", info.Name, info.State)
		}
	case "rm":
		for _, n := range names {
			if err := c.Remove(ctx, n); err != nil {
				return failed(err)
			}
		}
	}
	return ExitOK
}

func printJSON(env Env, v any) int {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(env.Stdout, string(b))
	return ExitOK
}

// printJobTable writes `rsh job ls`'s table.
func printJobTable(w io.Writer, list []jobs.Info) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tDONE\tRUNNING\tFAILED\tRATE\tETA\tDURATION")
	for _, i := range list {
		state := string(i.State)
		if i.QueuePosition > 0 {
			state += fmt.Sprintf(" (#%d)", i.QueuePosition)
		}
		if i.Resumed > 0 {
			state += " (resumed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", i.Name, state, doneOf(i), i.Running, i.Failed, rateOf(i), etaOf(i),
			msDuration(i.DurationMs).Round(time.Millisecond))
	}
	tw.Flush()
}

func doneOf(i jobs.Info) string {
	if i.Total < 0 {
		return fmt.Sprintf("%d/?", i.Done)
	}
	return fmt.Sprintf("%d/%d", i.Done, i.Total)
}

func rateOf(i jobs.Info) string {
	if i.Rate <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f/s", i.Rate)
}

func etaOf(i jobs.Info) string {
	if i.State != jobs.Running || i.EtaMs <= 0 {
		return "-"
	}
	return msDuration(i.EtaMs).Round(time.Second).String()
}

// printJobInfo writes `rsh job get`'s view of one job.
func printJobInfo(w io.Writer, i jobs.Info) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t"+format+"\n", append([]any{k}, args...)...)
	}
	row("name", "%s", i.Name)
	row("state", "%s", i.State)
	if i.Reason != "" {
		row("reason", "%s", i.Reason)
	}
	if i.QueuePosition > 0 {
		row("queue", "#%d to start", i.QueuePosition)
	}
	row("script", "%s", i.Script)
	row("directory", "%s", i.Dir)
	row("done", "%s (%d failed)", doneOf(i), i.Failed)
	row("received", "%d", i.Received)
	if i.InputOpen {
		row("input", "still arriving")
	}
	if i.State == jobs.Running {
		row("running", "%d items (%d read ahead, waiting)", i.Running, i.Queued)
	}
	if i.P50Ms > 0 {
		row("item time", "p50 %s, p99 %s (to a power of two)", msDuration(i.P50Ms), msDuration(i.P99Ms))
	}
	if i.Retried > 0 {
		row("retried", "%d", i.Retried)
	}
	row("rate", "%s", rateOf(i))
	row("eta", "%s", etaOf(i))
	row("created", "%s", i.CreatedAt.Format(time.RFC3339))
	if !i.StartedAt.IsZero() {
		row("started", "%s", i.StartedAt.Format(time.RFC3339))
	}
	if !i.EndedAt.IsZero() {
		row("ended", "%s", i.EndedAt.Format(time.RFC3339))
	}
	row("duration", "%s", msDuration(i.DurationMs).Round(time.Millisecond))
	if i.Resumed > 0 {
		row("resumed", "%d time(s), after its daemon stopped", i.Resumed)
	}
	tw.Flush()
}

func msDuration(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond))
}

// stateCode is the exit status for a finished job's state.
func stateCode(s jobs.State) int {
	switch s {
	case jobs.Completed:
		return ExitOK
	case jobs.Failed:
		return exitJobFailed
	case jobs.Stopped:
		return exitJobStopped
	}
	return ExitItemsFailed
}

// worse orders exit statuses of wait: the worst of several jobs wins.
func worse(a, b int) int {
	rank := func(c int) int {
		switch c {
		case ExitOK:
			return 0
		case ExitItemsFailed:
			return 1
		case exitJobStopped:
			return 2
		case exitJobFailed:
			return 3
		}
		return 4 // timed out
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

func jobWait(ctx context.Context, c *jobs.Client, names []string, timeout time.Duration, asJSON bool, env Env, failed func(error) int) int {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	code := ExitOK
	var infos []jobs.Info
	for _, n := range names {
		left := time.Duration(0)
		if !deadline.IsZero() {
			if left = time.Until(deadline); left <= 0 {
				left = time.Nanosecond
			}
		}
		info, timedOut, err := c.Wait(ctx, n, left)
		if err != nil {
			return failed(err)
		}
		infos = append(infos, info)
		switch {
		case timedOut:
			code = worse(code, exitJobTimedOut)
			if !asJSON {
				fmt.Fprintf(env.Stdout, "%s: %s (still running after %s)\n", info.Name, info.State, timeout)
			}
		default:
			code = worse(code, stateCode(info.State))
			if !asJSON {
				fmt.Fprintf(env.Stdout, "%s: %s\n", info.Name, info.State)
				if info.Reason != "" && info.State != jobs.Completed {
					fmt.Fprintf(env.Stderr, "rsh job wait: %s: %s\n", info.Name, info.Reason)
				}
			}
		}
	}
	if asJSON {
		printJSON(env, infos)
	}
	return code
}

// ackEvery bounds how much a receive writes before it confirms: a receive
// that is killed gives back at most this much again next time.
const (
	ackEveryBytes = 256 << 10
	ackEveryTime  = 200 * time.Millisecond
)

func jobReceive(ctx context.Context, c *jobs.Client, name string, keep, follow bool, o *runOptions, env Env, failed func(error) int) int {
	s, err := c.Results(ctx, name, follow)
	if err != nil {
		return failed(err)
	}
	defer s.Close()
	out := newOutput(env, o, nil, nil, nil)
	code := ExitOK
	from, at := s.From, s.From
	lastAck := time.Now()
	ack := func() error {
		if keep || at == from {
			return nil
		}
		// The results are the reader's once written: confirm them even
		// if this command was interrupted meanwhile.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := c.Ack(actx, name, from, at); err != nil {
			return fmt.Errorf("confirming what was received: %w", err)
		}
		from, lastAck = at, time.Now()
		return nil
	}
	br := bufio.NewReaderSize(s, readBufferSize)
	var readErr error
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			r := &vm.Result{}
			if jerr := json.Unmarshal(line, r); jerr != nil {
				readErr = fmt.Errorf("a record the daemon sent is not JSON: %w", jerr)
				break
			}
			out.result(r)
			if r.Status != vm.Success {
				code = ExitItemsFailed
			}
			at += int64(len(line))
		}
		// Write (and confirm) what was read whenever the stream has nothing
		// more at hand, or enough has gathered.
		if err != nil || br.Buffered() == 0 || at-from >= ackEveryBytes {
			out.flush()
			if werr := out.err(); werr != nil {
				if errors.Is(werr, syscall.EPIPE) {
					return ExitBrokenPipe
				}
				fmt.Fprintf(env.Stderr, "rsh job receive: %v; the results not written stay to receive\n", werr)
				return ExitItemsFailed
			}
			if err != nil || at-from >= ackEveryBytes || time.Since(lastAck) >= ackEveryTime {
				if aerr := ack(); aerr != nil {
					return failed(aerr)
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
	}
	if err := out.close(); err != nil {
		return failed(err)
	}
	if aerr := ack(); aerr != nil {
		return failed(aerr)
	}
	if readErr != nil {
		return failed(readErr)
	}
	info, err := c.Get(ctx, name)
	if err != nil {
		return failed(err)
	}
	switch info.State {
	case jobs.Failed:
		fmt.Fprintf(env.Stderr, "rsh job receive: %s failed: %s\n", name, info.Reason)
		return exitJobFailed
	case jobs.Stopped:
		if code == ExitOK {
			code = exitJobStopped
		}
	}
	return code
}

// jobStart is `rsh job start`.
func jobStart(ctx context.Context, args []string, env Env, usage func(error) int, failed func(error) int) int {
	var name string
	var noInput bool
	var conn jobConn
	o, fs, err := parseRunWith(args, func(fs *pflag.FlagSet) {
		addJobStartFlags(fs, &name, &noInput, &conn)
	})
	if err != nil {
		return usage(err)
	}
	if o.help {
		v, _ := lookupJobVerb("start")
		fmt.Fprint(env.Stdout, jobVerbHelp(v))
		return ExitOK
	}
	o.warn(env.Stderr)
	for _, f := range jobRunOnly {
		if fs.Changed(f) {
			return usage(fmt.Errorf("--%s is for 'rsh run', not for jobs", f))
		}
	}
	if o.halt.cond == "done" && o.halt.percent > 0 {
		return usage(errors.New("--halt done=P% is for 'rsh run': a job's items are streamed, their number unknown; use done=N"))
	}
	if noInput && len(o.files) > 0 {
		return usage(errors.New("--no-input and input FILEs: choose one"))
	}
	spec, err := jobSpec(o, fs, name)
	if err != nil {
		return usage(err)
	}
	spec.Input = !noInput && (len(o.files) > 0 || !env.StdinIsTerminal)
	c, err := conn.client()
	if err != nil {
		return usage(err)
	}
	got, notes, err := c.Start(ctx, spec)
	if err != nil {
		return failed(err)
	}
	fmt.Fprintln(env.Stdout, got)
	for _, n := range notes {
		fmt.Fprintf(env.Stderr, "rsh job start: %s: %s\n", got, n)
	}
	if !spec.Input {
		return ExitOK
	}
	// Stream the items as they are read: the job runs them as they come.
	in := newInput(env.Stdin, o.files, o.in)
	in.maxLine = o.maxLine
	in.validate = true // invalid lines travel as text, marked
	pr, pw := io.Pipe()
	sw := newSendWriter(pw)
	go func() {
		var line []byte
		for it := range in.items() {
			if it.Err != nil {
				line = jobs.AppendInvalidItemLine(line[:0], it.JSON(), it.Err.Error())
			} else {
				line = jobs.AppendItemLine(line[:0], it.JSON())
			}
			if _, err := sw.Write(line); err != nil {
				return // the upload failed; it says why
			}
		}
		if err := in.err(); err != nil {
			sw.close(fmt.Errorf("reading input: %w", err))
			return
		}
		sw.close(nil)
	}()
	err = c.Input(ctx, got, pr)
	pr.CloseWithError(errors.New("the upload ended"))
	sw.stop()
	if err != nil {
		code := failed(fmt.Errorf("%s: sending its input: %w", got, err))
		fmt.Fprintf(env.Stderr, "rsh job start: %s runs over the items that arrived, then fails; see 'rsh job get %s'\n", got, got)
		return code
	}
	return ExitOK
}

// inputSendBuffer is how much input a client gathers per write to the
// daemon.
const inputSendBuffer = 256 << 10

// sendFlush is how long read items may wait in the client before they are
// sent: a slow producer's items reach the job within it.
const sendFlush = 100 * time.Millisecond

// sendKeepAlive is how long a client whose input has nothing new waits
// before it sends an empty line, which the job skips: the daemon gives up
// on an upload that sends nothing for minutes (a vanished client), not on
// a producer that is merely slow.
const sendKeepAlive = time.Minute

// sendWriter gathers input lines for the daemon and sends them when
// inputSendBuffer fills, every sendFlush while any wait, and an empty line
// after sendKeepAlive without any.
type sendWriter struct {
	mu       sync.Mutex
	pw       *io.PipeWriter
	bw       *bufio.Writer
	lastSend time.Time
	err      error
	done     chan struct{}
	stopOnce sync.Once
}

func newSendWriter(pw *io.PipeWriter) *sendWriter {
	s := &sendWriter{pw: pw, bw: bufio.NewWriterSize(pw, inputSendBuffer), lastSend: time.Now(), done: make(chan struct{})}
	go s.flusher()
	return s
}

func (s *sendWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.bw.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

func (s *sendWriter) flusher() {
	t := time.NewTicker(sendFlush)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if s.err == nil {
			if s.bw.Buffered() == 0 && time.Since(s.lastSend) >= sendKeepAlive {
				_, s.err = s.bw.Write([]byte{'\n'})
			}
			if s.err == nil && s.bw.Buffered() > 0 {
				s.err = s.bw.Flush()
				s.lastSend = time.Now()
			}
		}
		s.mu.Unlock()
	}
}

// close sends what is left and ends the upload, with cause as its error
// if set.
func (s *sendWriter) close(cause error) {
	s.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if cause == nil && s.err == nil {
		cause = s.bw.Flush()
	}
	s.pw.CloseWithError(cause)
}

// stop ends the flusher.
func (s *sendWriter) stop() { s.stopOnce.Do(func() { close(s.done) }) }

// jobSpec builds the job from `rsh job start` flags: the script's source,
// the initial state with every path made absolute, the run options, and
// this directory, where the job runs. Files named by flags (--vars,
// --params) and the script are read here: the daemon and the job process
// never open a file on the client's behalf.
func jobSpec(o *runOptions, fs *pflag.FlagSet, name string) (jobs.Spec, error) {
	wd, err := os.Getwd()
	if err != nil {
		return jobs.Spec{}, err
	}
	spec := jobs.Spec{Name: name, Dir: wd, TimeoutMs: o.timeout.Milliseconds()}
	if fs.Changed("throttle") {
		spec.Throttle = o.throttle
	}
	spec.Retries = o.retries
	if fs.Changed("retry-delay") {
		spec.RetryDelayMs = o.retryDelay.Milliseconds()
	}
	spec.BatchSize = o.batchSize
	spec.Fresh = o.fresh
	if fs.Changed("halt") {
		spec.Halt = o.haltSpec
	}
	if fs.Changed("isolate") {
		spec.Isolate = o.isolate
	}
	spec.MaxMemory = o.maxMemory
	spec.Workers = o.workers
	noLimit := func(changed bool, n int64) int64 {
		switch {
		case !changed:
			return 0
		case n == 0:
			return -1
		}
		return n
	}
	spec.Limits = jobs.Limits{
		MaxOutputBytes:  noLimit(fs.Changed("max-output"), int64(o.maxOutput)),
		MaxOutputValues: int(noLimit(fs.Changed("max-output-values"), int64(o.maxOutputValues))),
		MaxMessages:     int(noLimit(fs.Changed("max-messages"), int64(o.maxMessages))),
		MaxTimers:       int(noLimit(fs.Changed("max-timers"), int64(o.maxTimers))),
	}
	if o.evalSet {
		spec.Script = o.eval
	} else {
		src, err := os.ReadFile(o.script)
		if err != nil {
			return spec, fmt.Errorf("script %s: %w", o.script, err)
		}
		abs, err := filepath.Abs(o.script)
		if err != nil {
			return spec, err
		}
		spec.Script, spec.ScriptPath = string(src), abs
	}
	asJSON := func(v any) (json.RawMessage, error) {
		if raw, ok := v.(json.RawMessage); ok {
			return raw, nil
		}
		return json.Marshal(v)
	}
	if len(o.state.Variables) > 0 {
		spec.Variables = map[string]json.RawMessage{}
		for _, v := range o.state.Variables {
			raw, err := asJSON(v.Value)
			if err != nil {
				return spec, err
			}
			spec.Variables[v.Name] = raw
		}
	}
	if len(o.state.Params) > 0 {
		spec.Params = map[string]json.RawMessage{}
		for k, v := range o.state.Params {
			raw, err := asJSON(v)
			if err != nil {
				return spec, err
			}
			spec.Params[k] = raw
		}
	}
	for _, imp := range o.state.Imports {
		alias, target, hasAlias := strings.Cut(imp, "=")
		if !hasAlias {
			alias, target = "", imp
		}
		if !vm.IsBuiltinModule(target) {
			abs, err := filepath.Abs(target)
			if err != nil {
				return spec, err
			}
			target = abs
		}
		if hasAlias {
			target = alias + "=" + target
		}
		spec.Imports = append(spec.Imports, target)
	}
	for _, d := range o.state.ModulePaths {
		abs, err := filepath.Abs(d)
		if err != nil {
			return spec, err
		}
		spec.ModulePaths = append(spec.ModulePaths, abs)
	}
	perms := o.state.Permissions
	for _, roots := range []*[]string{&perms.Read.Roots, &perms.Write.Roots} {
		for i, r := range *roots {
			abs, err := filepath.Abs(r)
			if err != nil {
				return spec, err
			}
			(*roots)[i] = abs
		}
	}
	spec.Permissions = perms
	return spec, nil
}
