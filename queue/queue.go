// Package queue is rsh's shared work queue on NATS JetStream: items are
// put on a work stream, workers on many machines pull them through one
// durable consumer, and each result record is stored in a results stream.
//
// For a job named JOB and a results stream named RES:
//
//   - the work stream JOB (WorkQueue retention, subject JOB.items) holds
//     the items not yet done; a message leaves it when its result is stored;
//   - the durable pull consumer (default "rsh") is shared by every worker;
//   - the results stream RES holds one record per item, on the subject
//     RES.r.ITEMID, as `rsh run --out records` prints it;
//   - the dead-letter stream JOB_DEAD holds the items given up on, on
//     JOB_DEAD.i.ITEMID.
//
// ITEMID names an item for good: a hash of the put's source name and the
// item's position in it (hex, usable as a subject token), sent as the
// item's Nats-Msg-Id.
//
// Guarantees, each tested:
//   - Putting the same source twice within DuplicateWindow enqueues each
//     item once (the work stream drops messages whose id it has seen).
//   - Every item ends with exactly one result record. A result is
//     published to its item's own subject in a stream that keeps one
//     message per subject and refuses a second one (MaxMsgsPerSubject 1,
//     DiscardNew per subject), with the item's id as Nats-Msg-Id too (a
//     copy sent again at once is then dropped as a duplicate); a
//     redelivered item whose result was stored before gets its new result
//     refused, and the refusal counts as stored. This is the per-subject
//     choice the design allows, rather than a duplicate window longer
//     than AckWait × MaxDeliver: it holds for any delay, and it lets a
//     reader fetch the result of one item by its subject.
//   - An input is acknowledged only after the server confirmed its result
//     (or refused it as a second one): a worker that dies holding items
//     loses nothing, they are delivered again after AckWait.
//   - Exception, Timeout and every other status are results like any
//     other and are acknowledged; only Stopped (the run was cut short) hands
//     the item back.
//   - A worker sends progress for every item it holds, so slow items are
//     not delivered to a second worker while the first one still runs them.
//   - An item delivered before (a suspect: its last worker may have died
//     of it) runs alone, so that if it kills its worker again it does not
//     take the items beside it down too.
//   - After MaxDeliver deliveries without a result an item is moved to the
//     dead-letter stream and gets a final result with status vm.Abandoned;
//     several workers handling the same item do it once.
//   - A worker that loses its connection reconnects with backoff and goes
//     on; the items it holds are kept, and results not confirmed are
//     published again.
//   - Stopping a worker hands back (Nak) the items it holds without a
//     result, so that other workers get them at once.
//   - No password, token or seed is ever printed: Target.String and every
//     error and log line show URLs redacted.
package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultPort is the NATS client port used when a URL names none.
const DefaultPort = "4222"

// redacted replaces a secret wherever a URL is shown, as net/url does.
const redacted = "xxxxx"

// Target is a parsed queue URL: the servers to connect to and the stream
// the URL names. Its credentials are kept unexported, and String redacts
// them.
type Target struct {
	// Servers are the server URLs without credentials, as
	// nats://HOST:PORT or tls://HOST:PORT.
	Servers []string
	// Stream is the name in the URL's path: a job (its work stream) or a
	// results stream.
	Stream string

	scheme         string
	user, password string
	token          string
}

// ParseURL parses nats://[USER:PASSWORD@|TOKEN@]HOST[:PORT][,HOST[:PORT]...]/NAME
// (or tls://, which requires TLS). The user information may be
// percent-encoded. Errors never show the credentials.
func ParseURL(s string) (Target, error) {
	var t Target
	scheme, rest, ok := strings.Cut(s, "://")
	shown := redactRaw(s)
	if !ok || (scheme != "nats" && scheme != "tls") {
		return t, fmt.Errorf("queue: %q is not a nats:// or tls:// URL", shown)
	}
	t.scheme = scheme
	authority, path, _ := strings.Cut(rest, "/")
	if strings.ContainsAny(path, "?#") {
		return t, fmt.Errorf("queue: %q: a queue URL takes no query or fragment", shown)
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		info := authority[:at]
		authority = authority[at+1:]
		user, pass, hasPass := strings.Cut(info, ":")
		user, err1 := url.PathUnescape(user)
		pass, err2 := url.PathUnescape(pass)
		if err := errors.Join(err1, err2); err != nil || user == "" {
			return t, fmt.Errorf("queue: %q: bad user information", shown)
		}
		if hasPass {
			t.user, t.password = user, pass
		} else {
			t.token = user
		}
	}
	if authority == "" {
		return t, fmt.Errorf("queue: %q names no server", shown)
	}
	for _, h := range strings.Split(authority, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			host, port, err = net.SplitHostPort(net.JoinHostPort(strings.Trim(h, "[]"), DefaultPort))
		}
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || host == "" || p < 1 || p > 65535 {
			return t, fmt.Errorf("queue: %q: bad server address %q", shown, h)
		}
		t.Servers = append(t.Servers, scheme+"://"+net.JoinHostPort(host, port))
	}
	if err := validName(path); err != nil {
		return t, fmt.Errorf("queue: %q: %w", shown, err)
	}
	t.Stream = path
	return t, nil
}

// String returns the URL with its password or token replaced by xxxxx.
func (t Target) String() string {
	var b strings.Builder
	b.WriteString(t.scheme)
	b.WriteString("://")
	switch {
	case t.user != "":
		b.WriteString(url.PathEscape(t.user) + ":" + redacted + "@")
	case t.token != "":
		b.WriteString(redacted + "@")
	}
	for i, s := range t.Servers {
		if i > 0 {
			b.WriteByte(',')
		}
		_, hostport, _ := strings.Cut(s, "://")
		b.WriteString(hostport)
	}
	b.WriteByte('/')
	b.WriteString(t.Stream)
	return b.String()
}

// redactRaw hides the user information of a URL that may not parse.
func redactRaw(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		if at := strings.LastIndex(s, "@"); at >= 0 {
			return redacted + s[at:]
		}
		return s
	}
	authority, path, hasPath := strings.Cut(rest, "/")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		authority = redacted + authority[at:]
	}
	if hasPath {
		return scheme + "://" + authority + "/" + path
	}
	return scheme + "://" + authority
}

// validName checks a stream name: it is used as a subject token too, so
// only letters, digits, '-' and '_' are allowed.
func validName(name string) error {
	if name == "" {
		return errors.New("no stream name (the URL's path: nats://HOST/NAME)")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("stream name longer than %d bytes", maxNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("stream name %q: only letters, digits, '-' and '_' are allowed", name)
		}
	}
	return nil
}

// maxNameLen leaves room for the _DEAD suffix under JetStream's 255-byte
// limit on stream names.
const maxNameLen = 200

// ConnOptions are the credentials and settings of a connection. The
// URL's user and password, or token, are used too.
type ConnOptions struct {
	// CredsFile is a NATS credentials file (a user JWT and its nkey seed).
	CredsFile string
	// NKeyFile is a file holding an nkey seed.
	NKeyFile string
	// Token authenticates with a token (instead of one in the URL).
	Token string
	// TLSCA is a PEM file of the certificate authorities to trust; setting
	// it requires TLS.
	TLSCA string
	// TLSCert and TLSKey are a client certificate and its key, for servers
	// that verify clients.
	TLSCert, TLSKey string
	// Name is the connection's name, shown by the server's monitoring.
	Name string
	// Logf, when set, is told of disconnections, reconnections and errors
	// that do not stop the work (with URLs redacted).
	Logf func(format string, args ...any)
}

// Reconnection and liveness tuning.
const (
	// reconnectBase is the first wait before trying the servers again
	// after a connection is lost; it doubles after each round that fails.
	reconnectBase = 250 * time.Millisecond
	// reconnectMax caps that wait: a restarted server is found within
	// a few seconds, without hammering one that stays down.
	reconnectMax = 5 * time.Second
	// pingInterval is how often the client checks that the server still
	// answers; two unanswered pings count as a lost connection, so a
	// dead server (not just a closed socket) is noticed in about 15 s
	// rather than nats.go's default of minutes.
	pingInterval = 5 * time.Second
)

// ErrUnreachable is returned by Connect when no server of the URL
// answered: nothing listens there (yet). A wrong credential is another
// error.
var ErrUnreachable = errors.New("no NATS server answered")

// Conn is a connection to a NATS server with JetStream. It is safe for
// concurrent use.
type Conn struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	target Target
	logf   func(format string, args ...any)
}

// Connect connects to the target's servers. A first connection that fails
// is an error (a wrong password, say, which no retry would fix); once
// connected, the connection is restored forever after a loss, with
// exponential backoff and jitter.
func Connect(ctx context.Context, t Target, o ConnOptions) (*Conn, error) {
	if len(t.Servers) == 0 {
		return nil, errors.New("queue: connect: no server")
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	shown := t.String()
	opts := []nats.Option{
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			d := reconnectBase
			for i := 1; i < attempts && d < reconnectMax; i++ {
				d *= 2
			}
			d = min(d, reconnectMax)
			return d/2 + rand.N(d/2+1)
		}),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // closed on purpose
			}
			if err != nil {
				logf("queue: disconnected from %s: %v; reconnecting", shown, err)
			} else {
				logf("queue: disconnected from %s; reconnecting", shown)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logf("queue: reconnected to %s", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logf("queue: %s: %v", shown, err)
		}),
	}
	if o.Name != "" {
		opts = append(opts, nats.Name(o.Name))
	}
	if deadline, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(time.Until(deadline)))
	}
	token := t.token
	if o.Token != "" {
		if token != "" && token != o.Token {
			return nil, errors.New("queue: connect: two different tokens, one in the URL and one in the options")
		}
		token = o.Token
	}
	if token != "" && t.user != "" {
		return nil, errors.New("queue: connect: both a user and a token")
	}
	if token != "" {
		opts = append(opts, nats.Token(token))
	}
	if t.user != "" {
		opts = append(opts, nats.UserInfo(t.user, t.password))
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("queue: connect: nkey file: %w", err)
		}
		opts = append(opts, opt)
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("queue: connect: a TLS client certificate needs both its certificate and its key file")
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("queue: connect %s: %w", shown, err)
	}
	nc, err := nats.Connect(strings.Join(t.Servers, ","), opts...)
	if errors.Is(err, nats.ErrNoServers) {
		return nil, fmt.Errorf("queue: connect %s: %w (%w)", shown, ErrUnreachable, err)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: connect %s: %w", shown, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("queue: connect %s: %w", shown, err)
	}
	return &Conn{nc: nc, js: js, target: t, logf: logf}, nil
}

// Close closes the connection. Close the Works made on it first.
func (c *Conn) Close() { c.nc.Close() }
