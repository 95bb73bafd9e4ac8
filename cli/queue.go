package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/queue"
	"github.com/runspaces/rsh/vm"
)

const queueUsageLine = `usage: rsh queue put|get|stat|serve [flags] URL [args]`

const queueIntro = `A shared work queue on NATS JetStream: enqueue items once, run them on any
number of machines with 'rsh run --from URL --to URL', and collect the
results. Every item gets exactly one result, however many workers die on
the way. URL is nats://[USER:PASS@|TOKEN@]HOST:PORT/NAME (or tls://...):
NAME names the queue (a JetStream stream) or the results. 'rsh queue VERB -h'
shows a verb's flags.
`

// queueVerbs are the verbs of `rsh queue`, in the order help lists them.
var queueVerbs = []jobVerb{
	{"put", "URL [FILE...] [--in FORMAT] [--source ID]", "enqueue the items of the FILEs (or stdin), one per line, read as 'rsh run' reads them. Each message is named by its source and position, so the same put run twice enqueues nothing twice."},
	{"get", "URL [-f] [--out values|json|records]", "print the results stored under URL (the --to of the workers)"},
	{"stat", "URL [--results NAME] [--consumer NAME] [--json]", "how the queue stands: items waiting, in flight (given to a worker and not acknowledged, including those a stopping worker handed back, until another takes them), redelivered, done, dead-lettered"},
	{"serve", "[--store DIR] [--listen HOST:PORT] [--token-file FILE]", "run a single-node NATS server with JetStream in this process, to try the queue on one machine. Production points at a NATS cluster instead."},
}

// natsSection is the heading of the NATS connection flags.
var natsSection = flagSection{title: "Credentials (for every verb but serve, and for rsh run --from/--to)",
	flags: []string{"nats-creds", "nats-nkey", "nats-token-file", "nats-ca", "nats-cert", "nats-key"},
	note:  "Nothing secret is ever printed: URLs are shown without their credentials."}

const queueTrailer = `A worker:
  rsh run job.js --from nats://HOST:4222/JOB --to nats://HOST:4222/JOB_RESULTS

Environment:
  RSH_NATS_TOKEN  the token for the NATS server, when --nats-token-file is
                  not given
`

// queueHelp is `rsh queue --help`.
func queueHelp() string {
	var b strings.Builder
	b.WriteString(queueUsageLine + "\n\n" + queueIntro + "\n")
	writeVerbList(&b, "queue", queueVerbs)
	var nf natsFlags
	fs := pflag.NewFlagSet("queue", pflag.ContinueOnError)
	nf.add(fs)
	b.WriteString("\n" + formatFlags(fs, []flagSection{natsSection}) + "\n" + queueTrailer)
	return b.String()
}

// queueVerbHelp is `rsh queue VERB --help`.
func queueVerbHelp(v jobVerb) string {
	var b strings.Builder
	writeVerbUsage(&b, "queue", v)
	var a queueArgs
	fs := newQueueFlags(v.name, &a)
	own := flagSection{title: "Flags"}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && !slices.Contains(natsSection.flags, f.Name) {
			own.flags = append(own.flags, f.Name)
		}
	})
	b.WriteString("\n" + formatFlags(fs, []flagSection{own, natsSection}) + "\n" + queueTrailer)
	return b.String()
}

// queueArgs are the flags of the verbs of `rsh queue`.
type queueArgs struct {
	help, follow, asJSON bool
	nf                   natsFlags
	in, source, outMode  string
	results, store       string
	consumer             string
	listen               string
	maxLineSpec          string
}

// newQueueFlags defines the flags of `rsh queue VERB` on a; nil for a verb
// there is not.
func newQueueFlags(verb string, a *queueArgs) *pflag.FlagSet {
	fs := pflag.NewFlagSet("queue "+verb, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.BoolVarP(&a.help, "help", "h", false, "show this help")
	switch verb {
	case "put":
		fs.StringVar(&a.in, "in", "auto", "read each line as `FORMAT`, as for 'rsh run': auto, text, json or csv")
		fs.StringVar(&a.source, "source", "", "name the messages by `ID` and position (default: the file's absolute path, or \"stdin\")")
		fs.StringVar(&a.maxLineSpec, "max-line", formatSize(defaultMaxLine), "the longest input line, a `SIZE`; a longer one is enqueued as InvalidInput")
	case "get":
		fs.BoolVarP(&a.follow, "follow", "f", false, "wait for more results, like tail -f")
		fs.StringVar(&a.outMode, "out", "values", "write each item's output as `FORMAT`, as for 'rsh run': values, json or records")
	case "stat":
		fs.StringVar(&a.results, "results", "", "the results' stream, `NAME` (default: the queue's NAME_RESULTS)")
		fs.StringVar(&a.consumer, "consumer", "", "the workers' consumer, `NAME` (default: rsh)")
		fs.BoolVar(&a.asJSON, "json", false, "print JSON, for scripts")
	case "serve":
		fs.StringVar(&a.store, "store", "rsh-queue", "keep the queue's messages in `DIR`")
		fs.StringVar(&a.listen, "listen", "127.0.0.1:4222", "serve NATS on `HOST:PORT`")
		fs.StringVar(&a.nf.tokenFile, "token-file", "", "clients must give the token kept in `FILE` (yours, mode 0600) with --nats-token-file")
	default:
		return nil
	}
	if verb != "serve" {
		a.nf.add(fs)
	}
	return fs
}

// lookupQueueVerb returns the verb of `rsh queue` called name.
func lookupQueueVerb(name string) (jobVerb, bool) {
	for _, v := range queueVerbs {
		if v.name == name {
			return v, true
		}
	}
	return jobVerb{}, false
}

// natsFlags are the connection flags shared by rsh run and rsh queue.
type natsFlags struct {
	creds, nkey, tokenFile, ca, cert, key string
}

func (n *natsFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&n.creds, "nats-creds", "", "a NATS credentials `FILE` (JWT and nkey seed)")
	fs.StringVar(&n.nkey, "nats-nkey", "", "a `FILE` holding an nkey seed")
	fs.StringVar(&n.tokenFile, "nats-token-file", "", "a `FILE` holding a token (default: $RSH_NATS_TOKEN); a token or password in the URL works too but shows in the process list")
	fs.StringVar(&n.ca, "nats-ca", "", "the CA certificate (`FILE`) that signed the server's")
	fs.StringVar(&n.cert, "nats-cert", "", "a client certificate `FILE` (mutual TLS), with --nats-key")
	fs.StringVar(&n.key, "nats-key", "", "the client certificate's key `FILE`")
}

// options makes the connection options, reading the token file.
func (n *natsFlags) options(logf func(string, ...any)) (queue.ConnOptions, error) {
	o := queue.ConnOptions{CredsFile: n.creds, NKeyFile: n.nkey, TLSCA: n.ca, TLSCert: n.cert, TLSKey: n.key, Name: "rsh", Logf: logf}
	switch {
	case n.tokenFile != "":
		data, err := os.ReadFile(n.tokenFile)
		if err != nil {
			return o, fmt.Errorf("--nats-token-file: %w", err)
		}
		o.Token = strings.TrimSpace(string(data))
		if o.Token == "" {
			return o, fmt.Errorf("--nats-token-file %s is empty", n.tokenFile)
		}
	case os.Getenv("RSH_NATS_TOKEN") != "":
		o.Token = os.Getenv("RSH_NATS_TOKEN")
	}
	if (n.cert == "") != (n.key == "") {
		return o, errors.New("--nats-cert and --nats-key go together")
	}
	return o, nil
}

// connect parses url and connects, with messages on stderr.
func (n *natsFlags) connect(ctx context.Context, url string, stderr io.Writer) (*queue.Conn, queue.Target, error) {
	t, err := queue.ParseURL(url)
	if err != nil {
		return nil, t, err
	}
	var mu sync.Mutex
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stderr, "rsh: "+format+"\n", args...)
	}
	o, err := n.options(logf)
	if err != nil {
		return nil, t, err
	}
	c, err := queue.Connect(ctx, t, o)
	return c, t, err
}

func queueCommand(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		// The command alone teaches: its help, as with -h.
		args = []string{"--help"}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			if v, ok := lookupQueueVerb(args[1]); ok {
				fmt.Fprint(env.Stdout, queueVerbHelp(v))
				return ExitOK
			}
		}
		fmt.Fprint(env.Stdout, queueHelp())
		return ExitOK
	}
	verb, args := args[0], args[1:]
	usage := func(err error) int {
		fmt.Fprintf(env.Stderr, "rsh queue %s: %v\n%s\nRun 'rsh queue %s -h' for details.\n", verb, err, queueUsageLine, verb)
		return ExitUsage
	}
	ctx, cancel, interrupted := interruptible(ctx, env)
	defer cancel()
	failed := func(err error) int {
		select {
		case <-interrupted:
			fmt.Fprintf(env.Stderr, "rsh queue %s: interrupted\n", verb)
			return ExitInterrupted
		default:
		}
		fmt.Fprintf(env.Stderr, "rsh queue %s: %v\n", verb, err)
		return ExitItemsFailed
	}

	var a queueArgs
	fs := newQueueFlags(verb, &a)
	if fs == nil {
		fmt.Fprintf(env.Stderr, "rsh queue %s: unknown command\n%s\n", verb, queueUsageLine)
		return ExitUsage
	}
	if err := fs.Parse(args); err != nil {
		return usage(err)
	}
	if a.help {
		v, _ := lookupQueueVerb(verb)
		fmt.Fprint(env.Stdout, queueVerbHelp(v))
		return ExitOK
	}
	follow, asJSON, nf := a.follow, a.asJSON, a.nf
	in, source, outMode, results, store, consumer, listen, maxLineSpec := a.in, a.source, a.outMode, a.results, a.store, a.consumer, a.listen, a.maxLineSpec
	rest := fs.Args()
	if verb == "serve" {
		if len(rest) != 0 {
			return usage(fmt.Errorf("unexpected argument %q", rest[0]))
		}
		token := ""
		if nf.tokenFile != "" {
			t, err := readTokenFile(nf.tokenFile)
			if err != nil {
				return usage(err)
			}
			token = t
		}
		return queueServe(ctx, store, listen, token, env, usage, failed)
	}
	if len(rest) == 0 {
		return usage(errors.New("give the queue's URL, nats://HOST:PORT/NAME"))
	}
	url, files := rest[0], rest[1:]
	if verb != "put" && len(files) > 0 {
		return usage(fmt.Errorf("unexpected argument %q", files[0]))
	}
	switch in {
	case "", "auto", "text", "json", "csv":
	default:
		return usage(fmt.Errorf("--in %q: want auto, text, json or csv", in))
	}
	switch outMode {
	case "", "values", "json", "records":
	default:
		return usage(fmt.Errorf("--out %q: want values, json or records", outMode))
	}
	if _, err := queue.ParseURL(url); err != nil {
		return usage(err)
	}
	c, t, err := nf.connect(ctx, url, env.Stderr)
	if err != nil {
		return failed(err)
	}
	defer c.Close()

	switch verb {
	case "put":
		maxLine, err := parseSize(maxLineSpec)
		if err != nil || maxLine < 1 || maxLine > maxMaxLine {
			return usage(fmt.Errorf("--max-line %s: want a size from 1B to %s", maxLineSpec, formatSize(maxMaxLine)))
		}
		if source == "" {
			source = putSource(files)
		}
		input := newInput(env.Stdin, files, in)
		input.maxLine = int(maxLine)
		input.validate = true
		st, err := c.Put(ctx, t.Stream, source, input.items())
		if rerr := input.err(); rerr != nil && err == nil {
			err = fmt.Errorf("reading input: %w", rerr)
		}
		fmt.Fprintf(env.Stderr, "rsh queue put: %s: %d items sent, %d of them already there\n", t, st.Items, st.Duplicates)
		if err != nil {
			return failed(err)
		}
	case "get":
		out := newOutput(env, &runOptions{out: outMode}, nil, nil, nil)
		code := ExitOK
		err := c.Results(ctx, t.Stream, follow, func(record []byte) error {
			r := &vm.Result{}
			if err := json.Unmarshal(record, r); err != nil {
				return fmt.Errorf("a record in %s is not JSON: %w", t, err)
			}
			out.result(r)
			if r.Status != vm.Success {
				code = ExitItemsFailed
			}
			out.flush()
			return out.err()
		})
		if cerr := out.close(); err == nil {
			err = cerr
		}
		if errors.Is(err, syscall.EPIPE) {
			return ExitBrokenPipe
		}
		if err != nil {
			return failed(err)
		}
		return code
	case "stat":
		if results == "" {
			results = t.Stream + "_RESULTS"
		}
		st, err := c.Stat(ctx, t.Stream, results, consumer)
		if err != nil {
			return failed(err)
		}
		if asJSON {
			return printJSON(env, st)
		}
		fmt.Fprintf(env.Stdout, "%s: %d waiting, %d in flight (%d redelivered), %d done, %d dead-lettered\n",
			t, st.Pending, st.InFlight, st.Redelivered, st.Done, st.Dead)
	}
	return ExitOK
}

// putSource names what a put reads, for its messages' ids: the files'
// absolute paths, or stdin.
func putSource(files []string) string {
	if len(files) == 0 {
		return "stdin"
	}
	names := make([]string, len(files))
	for i, f := range files {
		if abs, err := filepath.Abs(f); err == nil && f != "-" {
			f = abs
		}
		names[i] = f
	}
	return strings.Join(names, "\x00")
}

func queueServe(ctx context.Context, store, listen, token string, env Env, usage, failed func(error) int) int {
	host, port, err := splitHostPort(listen)
	if err != nil {
		return usage(fmt.Errorf("--listen %s: %w", listen, err))
	}
	srv, err := queue.Serve(queue.ServeOptions{StoreDir: store, Host: host, Port: port, Token: token})
	if err != nil {
		return failed(err)
	}
	defer srv.Shutdown()
	fmt.Fprintf(env.Stderr, "rsh queue serve: NATS with JetStream at %s, stored in %s; Ctrl-C stops it\n", srv.URL(), store)
	<-ctx.Done()
	fmt.Fprintln(env.Stderr, "rsh queue serve: stopping")
	return ExitOK
}

// runQueue is `rsh run --from URL --to URL`: items from the shared queue,
// results to the results stream, each input acknowledged once its result
// is stored.
func runQueue(ctx context.Context, o *runOptions, env Env) int {
	fail := func(err error) int {
		fmt.Fprintf(env.Stderr, "rsh: %v\n", err)
		return ExitItemsFailed
	}
	from, err := queue.ParseURL(o.from)
	if err != nil {
		return fail(fmt.Errorf("--from: %w", err))
	}
	to, err := queue.ParseURL(o.to)
	if err != nil {
		return fail(fmt.Errorf("--to: %w", err))
	}
	c, err := connectWorker(ctx, &o.nats, o.from, env.Stderr)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	if !slices.Equal(to.Servers, from.Servers) {
		return fail(errors.New("--from and --to must name the same NATS servers"))
	}
	// A pull is sized to the throttle unless --pull says, and a worker
	// holds what it runs plus up to two pulls, so that a new pull is under
	// way while items run (BENCHMARKS.md, "A shared work queue").
	pull := o.pull
	if pull == 0 {
		pull = o.throttle
	}
	work, err := c.Work(ctx, queue.WorkOptions{
		From:        from.Stream,
		To:          to.Stream,
		Consumer:    o.consumer,
		Batch:       pull,
		MaxInFlight: o.throttle + 2*pull,
		AckWait:     o.ackWait,
		MaxDeliver:  o.maxDeliver,
	})
	if err != nil {
		return fail(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sinkErr error
	var once sync.Once
	idle := newIdleWatch(o.idleExit, work.Stop)
	defer idle.stop()
	hooks := &runHooks{
		source:  idle.items(work.Items()),
		drained: work.Stop,
		sink: func(res *vm.Result) {
			idle.done()
			if err := work.Done(res); err != nil {
				once.Do(func() {
					sinkErr = err
					fmt.Fprintf(env.Stderr, "rsh: storing results in %s: %v; stopping\n", to, err)
					work.Stop()
					cancel()
				})
			}
		},
	}
	code := runWith(runCtx, o, env, hooks)
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), queueCloseGrace)
	defer ccancel()
	if err := work.Close(cctx); err != nil {
		fmt.Fprintf(env.Stderr, "rsh: %v\n", err)
		if code == ExitOK {
			code = ExitItemsFailed
		}
	}
	if sinkErr != nil && code == ExitOK {
		code = ExitItemsFailed
	}
	return code
}

// idleWatch ends a worker (--idle-exit) once it has held no item for a
// while: the queue has run dry.
type idleWatch struct {
	mu       sync.Mutex
	held     int       // items yielded without a result yet
	since    time.Time // when held last became 0
	quit     chan struct{}
	stopOnce sync.Once
}

// idlePoll is how often an idle worker checks whether it has waited long
// enough.
const idlePoll = 100 * time.Millisecond

func newIdleWatch(after time.Duration, stop func()) *idleWatch {
	w := &idleWatch{since: time.Now(), quit: make(chan struct{})}
	if after <= 0 {
		return w
	}
	go func() {
		t := time.NewTicker(idlePoll)
		defer t.Stop()
		for {
			select {
			case <-w.quit:
				return
			case <-t.C:
			}
			w.mu.Lock()
			idle := w.held == 0 && time.Since(w.since) >= after
			w.mu.Unlock()
			if idle {
				stop()
				return
			}
		}
	}()
	return w
}

func (w *idleWatch) items(seq iter.Seq[pool.Item]) iter.Seq[pool.Item] {
	return func(yield func(pool.Item) bool) {
		for it := range seq {
			w.mu.Lock()
			w.held++
			w.mu.Unlock()
			if !yield(it) {
				return
			}
		}
	}
}

func (w *idleWatch) done() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held--; w.held <= 0 {
		w.held, w.since = 0, time.Now()
	}
}

func (w *idleWatch) stop() { w.stopOnce.Do(func() { close(w.quit) }) }

// connectWorker connects a worker, waiting (with backoff) while no server
// answers: workers often start before their NATS server (a Kubernetes
// Job next to a NATS StatefulSet). A refused credential ends it at once.
func connectWorker(ctx context.Context, nf *natsFlags, url string, stderr io.Writer) (*queue.Conn, error) {
	wait := workerConnectFirst
	for said := false; ; said = true {
		c, t, err := nf.connect(ctx, url, stderr)
		if !errors.Is(err, queue.ErrUnreachable) {
			return c, err
		}
		if !said {
			fmt.Fprintf(stderr, "rsh: waiting for a NATS server at %s\n", t)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, workerConnectMax)
	}
}

// The backoff of a worker waiting for its server: first try again soon,
// then every few seconds.
const (
	workerConnectFirst = 250 * time.Millisecond
	workerConnectMax   = 5 * time.Second
)

// queueCloseGrace bounds how long a stopping worker takes to store its last
// results and hand back what it held.
const queueCloseGrace = 10 * time.Second

// splitHostPort splits HOST:PORT with a numeric port.
func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, errors.New("want HOST:PORT")
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, errors.New("want a port from 0 to 65535")
	}
	return host, port, nil
}
