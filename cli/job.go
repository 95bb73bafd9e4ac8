package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/runspaces/rsh/jobs"
	"github.com/runspaces/rsh/vm"
)

const jobUsageLine = `usage: rsh job start|ls|get|wait|receive|stop|rm [flags] [args]`

const jobUsage = jobUsageLine + `

Talk to the job daemon ('rsh serve'): run scripts in the background and
come back to them.

  rsh job start [--name N] [-n] [run flags] SCRIPT [FILE...]
                      submit a job (items are read here, from the FILEs or
                      piped stdin, and sent along; with none the script runs
                      once; -n/--no-input: do not read stdin, run once);
                      prints the job's name
  rsh job ls          list jobs: name, state, progress, duration
  rsh job get NAME    one job's state, as JSON
  rsh job wait NAME [--timeout D]
                      wait for a job to finish; the exit status says how:
                      0 Completed, 1 CompletedWithErrors, 3 Failed,
                      4 Stopped, 124 still running when --timeout ran out
  rsh job receive NAME [--keep] [--out values|json|records]
                      print the results not received before, and mark them
                      received (--keep leaves them to receive again); works
                      while the job runs, and nothing is ever lost
  rsh job stop NAME   interrupt a running job
  rsh job rm NAME     stop a job if it runs, then forget it

run flags for start: -e, --var, --vars, -p/--param, -m/--import,
--module-path, -t/--throttle, --timeout, --in, and the --allow-* flags (the
daemon grants no more than it was started with).

Where the daemon is:
      --socket PATH       its Unix socket (default as for 'rsh serve')
      --url URL           its TCP address, e.g. http://127.0.0.1:7070
      --token-file FILE   the token for --url (default: STATE/token)
`

// Exit codes of `rsh job wait`.
const (
	exitJobFailed   = 3
	exitJobStopped  = 4
	exitJobTimedOut = 124
)

func jobCommand(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(env.Stdout, jobUsage)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	verb, args := args[0], args[1:]
	usage := func(err error) int {
		fmt.Fprintf(env.Stderr, "rsh job %s: %v\n%s\nRun 'rsh help job' for details.\n", verb, err, jobUsageLine)
		return ExitUsage
	}
	var conn struct{ socket, url, tokenFile string }
	addConn := func(fs *pflag.FlagSet) {
		fs.StringVar(&conn.socket, "socket", "", "")
		fs.StringVar(&conn.url, "url", "", "")
		fs.StringVar(&conn.tokenFile, "token-file", "", "")
	}
	client := func() (*jobs.Client, error) {
		if conn.url == "" {
			s := conn.socket
			if s == "" {
				s = socketPath()
			}
			return jobs.UnixClient(s), nil
		}
		tf := conn.tokenFile
		if tf == "" {
			tf = filepath.Join(stateDir(), "token")
		}
		tok, err := os.ReadFile(tf)
		if err != nil {
			return nil, fmt.Errorf("--token-file %s: %w", tf, err)
		}
		token := strings.TrimSpace(string(tok))
		if token == "" {
			return nil, fmt.Errorf("--token-file %s is empty", tf)
		}
		return &jobs.Client{Base: strings.TrimSuffix(conn.url, "/"), Token: token, Where: conn.url}, nil
	}
	failed := func(err error) int {
		var api *jobs.APIError
		switch {
		case errors.Is(err, jobs.ErrNoDaemon):
			fmt.Fprintf(env.Stderr, "rsh job %s: %v: start one with 'rsh serve &' (or say where it is with --socket or --url)\n", verb, err)
		case errors.As(err, &api) && api.Status == 401:
			fmt.Fprintf(env.Stderr, "rsh job %s: the daemon refused the token: check --token-file\n", verb)
		default:
			fmt.Fprintf(env.Stderr, "rsh job %s: %v\n", verb, err)
		}
		return ExitItemsFailed
	}

	if verb == "start" {
		var name string
		var noInput bool
		o, fs, err := parseRunWith(args, func(fs *pflag.FlagSet) {
			fs.StringVar(&name, "name", "", "")
			fs.BoolVarP(&noInput, "no-input", "n", false, "")
			addConn(fs)
		})
		if err != nil {
			return usage(err)
		}
		if o.help {
			fmt.Fprint(env.Stdout, jobUsage)
			return ExitOK
		}
		o.warn(env.Stderr)
		for _, f := range []string{"joblog", "resume", "resume-failed", "progress", "summary", "summary-json", "halt", "grace", "batch-size", "keep-order", "fresh", "min", "retries", "retry-delay", "out", "total", "isolate", "max-memory", "workers", "max-output", "max-output-values", "max-messages", "max-timers"} {
			if fs.Changed(f) {
				return usage(fmt.Errorf("--%s is for 'rsh run', not for jobs", f))
			}
		}
		if noInput && len(o.files) > 0 {
			return usage(errors.New("--no-input and input FILEs: choose one"))
		}
		if noInput {
			env.StdinIsTerminal = true // read nothing: the script runs once
		}
		spec, err := jobSpec(o, fs, name, env)
		if err != nil {
			return usage(err)
		}
		c, err := client()
		if err != nil {
			return usage(err)
		}
		got, err := c.Start(ctx, spec)
		if err != nil {
			return failed(err)
		}
		fmt.Fprintln(env.Stdout, got)
		return ExitOK
	}

	fs := pflag.NewFlagSet("job "+verb, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addConn(fs)
	var timeout time.Duration
	var keep bool
	var outMode string
	var verbose, quiet bool
	switch verb {
	case "wait":
		fs.DurationVar(&timeout, "timeout", 0, "")
	case "receive":
		fs.BoolVar(&keep, "keep", false, "")
		fs.StringVar(&outMode, "out", "values", "")
		fs.BoolVarP(&verbose, "verbose", "v", false, "")
		fs.BoolVarP(&quiet, "quiet", "q", false, "")
	case "ls", "get", "stop", "rm":
	default:
		fmt.Fprintf(env.Stderr, "rsh job %s: unknown command\n%s\n", verb, jobUsageLine)
		return ExitUsage
	}
	if err := fs.Parse(args); err != nil {
		return usage(err)
	}
	rest := fs.Args()
	if verb == "ls" {
		if len(rest) != 0 {
			return usage(fmt.Errorf("unexpected argument %q", rest[0]))
		}
	} else if len(rest) != 1 {
		return usage(errors.New("give one job NAME"))
	}
	c, err := client()
	if err != nil {
		return usage(err)
	}
	switch verb {
	case "ls":
		list, err := c.List(ctx)
		if err != nil {
			return failed(err)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tPROGRESS\tDURATION")
		for _, i := range list {
			fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\n", i.Name, i.State, i.Done, i.Total, msDuration(i.DurationMs).Round(time.Millisecond))
		}
		tw.Flush()
	case "get":
		info, err := c.Get(ctx, rest[0])
		if err != nil {
			return failed(err)
		}
		b, _ := json.MarshalIndent(info, "", "  ")
		fmt.Fprintln(env.Stdout, string(b))
	case "wait":
		info, timedOut, err := c.Wait(ctx, rest[0], timeout)
		if err != nil {
			return failed(err)
		}
		if timedOut {
			fmt.Fprintf(env.Stdout, "%s: %s (still running after %s)\n", info.Name, info.State, timeout)
			return exitJobTimedOut
		}
		fmt.Fprintf(env.Stdout, "%s: %s\n", info.Name, info.State)
		if info.Reason != "" && info.State != jobs.Completed {
			fmt.Fprintf(env.Stderr, "rsh job wait: %s: %s\n", info.Name, info.Reason)
		}
		switch info.State {
		case jobs.Completed:
			return ExitOK
		case jobs.Failed:
			return exitJobFailed
		case jobs.Stopped:
			return exitJobStopped
		}
		return ExitItemsFailed
	case "receive":
		switch outMode {
		case "values", "json", "records":
		default:
			return usage(fmt.Errorf("--out %q: want values, json or records", outMode))
		}
		rs, err := c.Receive(ctx, rest[0], keep)
		if err != nil {
			return failed(err)
		}
		out := newOutput(env, &runOptions{out: outMode, verbose: verbose, quiet: quiet}, nil, nil, nil)
		code := ExitOK
		for _, r := range rs {
			out.result(r)
			if r.Status != vm.Success {
				code = ExitItemsFailed
			}
		}
		if err := out.close(); err != nil {
			return failed(err)
		}
		return code
	case "stop":
		info, err := c.Stop(ctx, rest[0])
		if err != nil {
			return failed(err)
		}
		fmt.Fprintf(env.Stdout, "%s: %s\n", info.Name, info.State)
	case "rm":
		if err := c.Remove(ctx, rest[0]); err != nil {
			return failed(err)
		}
	}
	return ExitOK
}

func msDuration(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond))
}

// jobSpec builds the job from `rsh job start` flags: the script's source,
// the initial state with every path made absolute (the daemon's working
// directory is not the client's), and the items, read here.
func jobSpec(o *runOptions, fs *pflag.FlagSet, name string, env Env) (jobs.Spec, error) {
	spec := jobs.Spec{Name: name, TimeoutMs: o.timeout.Milliseconds()}
	if fs.Changed("throttle") {
		spec.Throttle = o.throttle
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

	// Items: from the FILEs, or from stdin when it is not a terminal. No
	// items means the script runs once.
	if len(o.files) == 0 && env.StdinIsTerminal {
		return spec, nil
	}
	in := newInput(env.Stdin, o.files, o.in)
	in.maxLine = o.maxLine
	in.validate = true // invalid lines travel as text, marked
	for it := range in.items() {
		ji := jobs.Item{Value: it.JSON()}
		if it.Err != nil {
			ji.Error = it.Err.Error()
		}
		spec.Items = append(spec.Items, ji)
	}
	if err := in.err(); err != nil {
		return spec, fmt.Errorf("reading input: %w", err)
	}
	return spec, nil
}
