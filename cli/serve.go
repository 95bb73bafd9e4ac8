package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/jobs"
)

const serveUsageLine = `usage: rsh serve [--socket PATH | --listen HOST:PORT] [flags]`

const serveUsage = serveUsageLine + `

Run the job daemon: a job manager behind an HTTP+JSON API, used by
'rsh job'. Each job runs in a process of its own (rsh, running the job as
'rsh run' would), in the directory it was started from, so a job that
crashes, hangs or runs out of memory fails alone. Everything about a job
is kept in files under the state directory as it happens: its input as it
arrives, its results and job log as they are produced. If the daemon
stops (even kill -9), its jobs stop with it, and the next daemon resumes
every job that was running from its job log: each item ends with exactly
one result. One daemon at a time holds a state directory.

By default the daemon listens on a Unix socket whose file permissions
(0600, in a 0700 directory) are the access control. --listen serves TCP
instead, and then every request needs the bearer token kept in
--token-file (generated, 0600, when the file does not exist; refused if
others may read or write it).

`

// serveSections are the headings of `rsh serve --help`.
var serveSections = []flagSection{
	{title: "Where", flags: []string{"socket", "listen", "token-file", "state"}},
	{title: "Jobs", flags: []string{"max-jobs", "throttle"}},
	{title: "Permissions (the most any job may be allowed)", flags: []string{"allow-net", "allow-read", "allow-write", "allow-all"},
		note: "A job asks for permissions with the same flags on 'rsh job start' and gets their intersection with these, decided once when it starts. Its script and modules (--module-path, --import) must be readable here."},
}

const serveTrailer = `SIGINT or SIGTERM stops the daemon: running jobs are interrupted and stay
Running on file, and the next daemon resumes them.

Environment:
  RSH_SOCKET       the socket when --socket is not given ('rsh job' reads
                   it too, to find the daemon)
  RSH_STATE        the state directory when --state is not given ('rsh
                   job' reads it too, for STATE/token)
  XDG_RUNTIME_DIR  where the socket is by default (XDG_RUNTIME_DIR/rsh)
  XDG_STATE_HOME   where the state directory is by default
`

// serveOptions are the flags of `rsh serve`.
type serveOptions struct {
	help                             bool
	socket, listen, tokenFile, state string
	maxJobs, maxThrottle             int
	allowNet, allowRead, allowWrite  []string
	allowAll                         bool
}

// newServeFlags defines the flags of `rsh serve` on o.
func newServeFlags(o *serveOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	fs.StringVar(&o.socket, "socket", "", "the Unix socket, `PATH` (default: $RSH_SOCKET, else $XDG_RUNTIME_DIR/rsh/rsh.sock, else rsh.sock in the state directory)")
	fs.StringVar(&o.listen, "listen", "", "serve TCP on `HOST:PORT` with a token instead of the socket (over plain HTTP: keep it on loopback, or tunnel it)")
	fs.StringVar(&o.tokenFile, "token-file", "", "the token for --listen, kept in `FILE` (default: STATE/token)")
	fs.StringVar(&o.state, "state", "", "where jobs are kept, `DIR` (default: $RSH_STATE, else $XDG_STATE_HOME/rsh, else ~/.local/state/rsh)")
	fs.IntVar(&o.maxJobs, "max-jobs", 0, "run at most `N` jobs at once; the others wait, in order, as NotStarted (default: CPUs)")
	fs.IntVarP(&o.maxThrottle, "throttle", "t", 0, "run at most `N` items of one job at once: a job's own --throttle is capped by it (default: no cap; a job without --throttle runs one per CPU). At most max-jobs x throttle items run at once.")
	addAllowFlags(fs, &o.allowNet, &o.allowRead, &o.allowWrite, &o.allowAll)
	return fs
}

// serveHelp is `rsh serve --help`.
func serveHelp() string {
	return serveUsage + formatFlags(newServeFlags(&serveOptions{}), serveSections) + "\n" + serveTrailer
}

func serveCommand(ctx context.Context, args []string, env Env) int {
	var o serveOptions
	fs := newServeFlags(&o)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(env.Stderr, "rsh serve: %v\n%s\nRun 'rsh help serve' for details.\n", err, serveUsageLine)
		return ExitUsage
	}
	if o.help {
		fmt.Fprint(env.Stdout, serveHelp())
		return ExitOK
	}
	socket, listen, tokenFile, state := o.socket, o.listen, o.tokenFile, o.state
	maxJobs, maxThrottle := o.maxJobs, o.maxThrottle
	allowNet, allowRead, allowWrite, allowAllFlag := o.allowNet, o.allowRead, o.allowWrite, o.allowAll
	fail := func(err error) int {
		fmt.Fprintf(env.Stderr, "rsh serve: %v\n", err)
		return ExitUsage
	}
	if len(fs.Args()) > 0 {
		return fail(fmt.Errorf("unexpected argument %q", fs.Args()[0]))
	}
	if socket != "" && listen != "" {
		return fail(errors.New("--socket and --listen: choose one"))
	}
	ceiling, err := permissionsFrom(allowNet, allowRead, allowWrite, allowAllFlag)
	if err != nil {
		return fail(err)
	}
	if state == "" {
		state = stateDir()
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return fail(fmt.Errorf("--state %s: %w", state, err))
	}

	if _, err := ceiling.CheckRead(filepath.Join(state, "jobs")); err == nil {
		fmt.Fprintf(env.Stderr, "rsh serve: warning: jobs may read the state directory %s (--allow-read): it holds every job's spec, parameters and results; allow narrower directories\n", state)
	}
	if maxJobs < 0 || maxThrottle < 0 {
		return fail(errors.New("--max-jobs and --throttle must not be negative"))
	}
	m, err := jobs.New(jobs.Options{MaxJobs: maxJobs, MaxThrottle: maxThrottle, Dir: state, Ceiling: &ceiling})
	if err != nil {
		return fail(err)
	}
	defer m.Close()

	var l net.Listener
	token, where := "", ""
	if listen != "" {
		if tokenFile == "" {
			tokenFile = filepath.Join(state, "token")
		}
		if l, err = net.Listen("tcp", listen); err != nil {
			return fail(err)
		}
		if w := listenWarning(l.Addr()); w != "" {
			fmt.Fprintf(env.Stderr, "rsh serve: %s\n", w)
		}
		if token, err = loadOrMakeToken(tokenFile); err != nil {
			l.Close()
			return fail(err)
		}
		where = fmt.Sprintf("%s (token in %s)", l.Addr(), tokenFile)
	} else {
		if socket == "" {
			socket = socketPath()
		}
		if l, err = listenUnix(socket); err != nil {
			return fail(err)
		}
		where = socket
	}
	srv := &http.Server{Handler: jobs.Handler(m, token, uploadIdle)}
	hardenServer(srv)
	fmt.Fprintf(env.Stderr, "rsh serve: listening on %s; state in %s\n", where, state)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return fail(err)
	case <-ctx.Done():
	case <-env.Signals:
	}
	fmt.Fprintln(env.Stderr, "rsh serve: stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if listen == "" {
		os.Remove(socket)
	}
	return ExitOK
}

// uploadIdle is how long an input upload may send nothing before the
// daemon gives up on it: a client reading a slow pipe still sends within
// minutes, a vanished one never does.
const uploadIdle = 10 * time.Minute

// listenUnix listens on a Unix socket that only this user can use: its
// directory is made 0700 and the socket itself 0600. A socket file left by
// a daemon that died is replaced; one that still answers is not.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("--socket %s: %w", path, err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("a daemon is already listening on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("--socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("--socket %s: %w", path, err)
	}
	return l, nil
}

// tokenBytes is the size of a generated token: 256 random bits.
const tokenBytes = 32

// loadOrMakeToken reads the token from path, or writes a new random one
// there (0600) if the file does not exist.
func loadOrMakeToken(path string) (string, error) {
	tok, err := readTokenFile(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return tok, err
	}
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok = hex.EncodeToString(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("--token-file %s: %w", path, err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", err
	}
	return tok, f.Close()
}

// addAllowFlags adds the permission flags shared by run, job start and serve.
func addAllowFlags(fs *pflag.FlagSet, netv, read, write *[]string, all *bool) {
	fs.StringSliceVar(netv, "allow-net", nil, "the network; with a list, only the `HOST,...` in it: names, IPs, CIDRs or HOST:PORTs")
	fs.Lookup("allow-net").NoOptDefVal = allowAll
	fs.StringSliceVar(read, "allow-read", nil, "reading files; with a list, only under the `PATH,...` in it")
	fs.Lookup("allow-read").NoOptDefVal = allowAll
	fs.StringSliceVar(write, "allow-write", nil, "writing files; with a list, only under the `PATH,...` in it")
	fs.Lookup("allow-write").NoOptDefVal = allowAll
	fs.BoolVarP(all, "allow-all", "A", false, "all of the above")
}

// permissionsFrom builds permissions from the --allow-* flag values.
func permissionsFrom(netv, read, write []string, all bool) (builtins.Permissions, error) {
	var p builtins.Permissions
	if all {
		p.Net.All, p.Read.All, p.Write.All = true, true, true
		return p, nil
	}
	list := func(vals []string) (bool, []string) {
		var rest []string
		allv := false
		for _, v := range vals {
			switch v = strings.TrimSpace(v); v {
			case allowAll:
				allv = true
			case "":
			default:
				rest = append(rest, v)
			}
		}
		return allv, rest
	}
	p.Net.All, p.Net.Allow = list(netv)
	p.Read.All, p.Read.Roots = list(read)
	p.Write.All, p.Write.Roots = list(write)
	if err := p.Validate(); err != nil {
		return p, usagef("%v", err)
	}
	return p, nil
}
