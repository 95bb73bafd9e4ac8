package tcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/require"
	"go.uber.org/goleak"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/builtins/tcp"
	"github.com/runspaces/rsh/internal/testutil"
)

// Every test talks only to listeners it opens on 127.0.0.1.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newRuntime(t testing.TB, allow ...string) (*goja.Runtime, *builtins.Env) {
	t.Helper()
	env := &builtins.Env{Permissions: &builtins.Permissions{Net: builtins.NetPermission{Allow: allow}}}
	rt := goja.New()
	registry := require.NewRegistry()
	registry.RegisterNativeModule(tcp.ModuleName, tcp.Require(env))
	registry.Enable(rt)
	if _, err := rt.RunString(`const tcp = require('tcp')`); err != nil {
		t.Fatal(err)
	}
	return rt, env
}

// server is a loopback listener that counts accepted connections and hands
// each to handle (or closes it at once when handle is nil).
type server struct {
	ln       net.Listener
	port     int
	accepted atomic.Int32
	done     chan struct{}
}

func listen(t *testing.T, handle func(net.Conn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, port: ln.Addr().(*net.TCPAddr).Port, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		var handlers sync.WaitGroup
		defer handlers.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			if handle == nil {
				_ = c.Close()
				continue
			}
			handlers.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-s.done
	})
	return s
}

// waitAccepted waits until the server has accepted n connections, and
// fails the test if that takes more than a few seconds or more arrive.
func (s *server) waitAccepted(t *testing.T, n int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.accepted.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := s.accepted.Load(); got != n {
		t.Errorf("server accepted %d connections; want %d", got, n)
	}
}

// closedPort returns a loopback port that nothing listens on.
func closedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func TestConnectOpenClosed(t *testing.T) {
	srv := listen(t, nil)
	closed := closedPort(t)
	rt, _ := newRuntime(t, "127.0.0.1")
	tests := []struct {
		port   int
		status string
		errSub string // In error; "" means error is null.
	}{
		{srv.port, "open", ""},
		{closed, "closed", "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			v := testutil.Run(t, rt, fmt.Sprintf(`JSON.stringify(tcp.connect('127.0.0.1', %d))`, tt.port))
			var r struct {
				Host   string
				Port   int
				Status string
				RTTMs  *float64
				Error  *string
			}
			if err := json.Unmarshal([]byte(v.String()), &r); err != nil {
				t.Fatal(err)
			}
			if r.Host != "127.0.0.1" || r.Port != tt.port || r.Status != tt.status || r.RTTMs == nil || *r.RTTMs < 0 {
				t.Errorf("connect = %s; want host 127.0.0.1, port %d, status %s and an rttMs", v, tt.port, tt.status)
			}
			if tt.errSub == "" && r.Error != nil || tt.errSub != "" && (r.Error == nil || !strings.Contains(*r.Error, tt.errSub)) {
				t.Errorf("connect = %s; want error %q (empty: null)", v, tt.errSub)
			}
		})
	}
	// The open port's connection was accepted.
	srv.waitAccepted(t, 1)
}

// TestConnectClosesConnection checks that connect does not leave the
// connection open: the server reads EOF.
func TestConnectClosesConnection(t *testing.T) {
	gotEOF := make(chan error, 1)
	srv := listen(t, func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		gotEOF <- err
	})
	rt, _ := newRuntime(t, "127.0.0.1")
	testutil.Run(t, rt, fmt.Sprintf(`tcp.connect('127.0.0.1', %d)`, srv.port))
	if err := <-gotEOF; !errors.Is(err, io.EOF) {
		t.Errorf("server read %v; want EOF", err)
	}
}

func TestConnectPermissions(t *testing.T) {
	srv := listen(t, nil)
	p := strconv.Itoa(srv.port)
	other := strconv.Itoa(closedPort(t))
	tests := []struct {
		name  string
		allow []string
		host  string
		ok    bool
	}{
		{"ip", []string{"127.0.0.1"}, "127.0.0.1", true},
		{"ip:port", []string{"127.0.0.1:" + p}, "127.0.0.1", true},
		{"cidr", []string{"127.0.0.0/8"}, "127.0.0.1", true},
		{"host", []string{"localhost"}, "localhost", true},
		{"host any case", []string{"LocalHost"}, "localHOST", true},
		{"host:port", []string{"localhost:" + p}, "localhost", true},
		{"host resolved into cidr", []string{"127.0.0.0/8"}, "localhost", true},
		{"nothing", nil, "127.0.0.1", false},
		{"other port", []string{"127.0.0.1:" + other}, "127.0.0.1", false},
		{"host:other port", []string{"localhost:" + other}, "localhost", false},
		{"other cidr", []string{"10.0.0.0/8"}, "127.0.0.1", false},
		{"other host", []string{"example.com"}, "127.0.0.1", false},
		{"host entry does not allow its ip", []string{"localhost"}, "127.0.0.1", false},
		{"other cidr for host", []string{"10.0.0.0/8"}, "localhost", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.accepted.Load()
			rt, _ := newRuntime(t, tt.allow...)
			call := fmt.Sprintf(`tcp.connect(%q, %d).status`, tt.host, srv.port)
			if tt.ok {
				if got := testutil.Run(t, rt, call).String(); got != "open" {
					t.Errorf("status = %s; want open", got)
				}
				srv.waitAccepted(t, before+1)
				return
			}
			name, msg := testutil.Throws(t, rt, call)
			flag := "--allow-net=" + tt.host + ":" + p
			if name != "PermissionDenied" || !strings.HasSuffix(msg, flag) {
				t.Errorf("threw %s: %s; want PermissionDenied naming %s", name, msg, flag)
			}
			name, _ = testutil.Throws(t, rt, fmt.Sprintf(`tcp.dial(%q, %d)`, tt.host, srv.port))
			if name != "PermissionDenied" {
				t.Errorf("dial threw %s; want PermissionDenied", name)
			}
			time.Sleep(10 * time.Millisecond)
			if n := srv.accepted.Load(); n != before {
				t.Errorf("a denied host reached the server %d times", n-before)
			}
		})
	}
}

// TestConnectTimeoutIsFiltered checks that the per-connect timeout gives
// "filtered" rather than an exception: a timeout of a nanosecond expires
// before the dial starts, so no packet leaves.
func TestConnectTimeoutIsFiltered(t *testing.T) {
	srv := listen(t, nil)
	rt, _ := newRuntime(t, "127.0.0.1")
	v := testutil.Run(t, rt, fmt.Sprintf(`const r = tcp.connect('127.0.0.1', %d, {timeout: 1e-6}); [r.status, String(r.rttMs), typeof r.error].join(' ')`, srv.port))
	if got := v.String(); got != "filtered null string" {
		t.Errorf("connect = %q; want %q", got, "filtered null string")
	}
}

// TestCancelledContext checks that a done item context makes connect and
// dial throw instead of reporting a port state.
func TestCancelledContext(t *testing.T) {
	srv := listen(t, nil)
	for _, cause := range []struct {
		name string
		ctx  func() context.Context
		want string
	}{
		{"cancelled", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, "context canceled"},
		{"timed out", func() context.Context {
			ctx, cancel := context.WithTimeoutCause(context.Background(), 0, errors.New("item timed out"))
			t.Cleanup(cancel)
			return ctx
		}, "item timed out"},
	} {
		for _, fn := range []string{"connect", "dial"} {
			t.Run(cause.name+"/"+fn, func(t *testing.T) {
				rt, env := newRuntime(t, "127.0.0.1")
				env.SetContext(cause.ctx())
				name, msg := testutil.Throws(t, rt, fmt.Sprintf(`tcp.%s('127.0.0.1', %d)`, fn, srv.port))
				want := fmt.Sprintf("tcp.%s 127.0.0.1:%d: %s", fn, srv.port, cause.want)
				if name != "Error" || msg != want {
					t.Errorf("threw %s: %s; want Error: %s", name, msg, want)
				}
			})
		}
	}
}

func TestClassify(t *testing.T) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
	}
	tests := []struct {
		name   string
		err    error
		status string // "" means not a port state.
	}{
		{"nil", nil, "open"},
		{"refused", opErr(syscall.ECONNREFUSED), "closed"},
		{"timed out", opErr(syscall.ETIMEDOUT), "filtered"},
		{"host unreachable", opErr(syscall.EHOSTUNREACH), "filtered"},
		{"network unreachable", opErr(syscall.ENETUNREACH), "filtered"},
		{"deadline", &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}, "filtered"},
		{"i/o timeout", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, "filtered"},
		{"net.Error timeout", timeoutError{}, "filtered"},
		{"dns", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}, ""},
		{"dns timeout", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "timeout", Name: "x", IsTimeout: true}}, ""},
		{"cancelled", &net.OpError{Op: "dial", Net: "tcp", Err: context.Canceled}, ""},
		{"other", opErr(syscall.EMFILE), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ok := tcp.Classify(tt.err)
			if status != tt.status || ok != (tt.status != "") {
				t.Errorf("Classify(%v) = %q, %v; want %q, %v", tt.err, status, ok, tt.status, tt.status != "")
			}
		})
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// TestDNSFailureThrows checks that a failed lookup is a LookupError, not a
// port state, whether the name is allowed by name (looked up by connect)
// or through a CIDR (looked up by the permission check). "bad..name" is not
// a valid domain name, so the lookup fails without asking a DNS server.
func TestDNSFailureThrows(t *testing.T) {
	for _, perms := range []builtins.NetPermission{{All: true}, {Allow: []string{"127.0.0.0/8"}}} {
		env := &builtins.Env{Permissions: &builtins.Permissions{Net: perms}}
		rt := goja.New()
		tcp.Enable(rt, env)
		for _, fn := range []string{"connect", "dial"} {
			name, msg := testutil.Throws(t, rt, fmt.Sprintf(`tcp.%s('bad..name', 80)`, fn))
			if name != "LookupError" || !strings.Contains(msg, "no such host") {
				t.Errorf("%v: %s threw %s: %s; want LookupError about no such host", perms, fn, name, msg)
			}
		}
	}
}

// fakeNames is a lookup that answers from a table and counts the lookups
// of each name.
type fakeNames struct {
	mu      sync.Mutex
	addrs   map[string][]netip.Addr
	lookups map[string]int
}

func (f *fakeNames) lookup(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups[host]++
	if a, ok := f.addrs[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (f *fakeNames) count(host string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups[host]
}

// TestConnectResolvesOncePerItem checks that connect looks a name up once
// per item, a failed lookup too, tries its addresses in order, and looks
// it up again in the next item.
func TestConnectResolvesOncePerItem(t *testing.T) {
	srv := listen(t, nil)
	closed := closedPort(t)
	names := &fakeNames{lookups: map[string]int{}, addrs: map[string][]netip.Addr{
		// The first address refuses every port (nothing listens on
		// 127.0.0.2 at the server's port): the second one answers.
		"scan.test": {netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")},
	}}
	env := &builtins.Env{Permissions: &builtins.Permissions{Net: builtins.NetPermission{All: true}}}
	rt := goja.New()
	registry := require.NewRegistry()
	registry.RegisterNativeModule(tcp.ModuleName, tcp.RequireWith(env, names.lookup))
	registry.Enable(rt)
	testutil.Run(t, rt, `var tcp = require('tcp')`)

	got := testutil.Run(t, rt, fmt.Sprintf(`[tcp.connect('scan.test', %d).status, tcp.connect('SCAN.test', %d).status].join(' ')`, srv.port, closed)).String()
	if got != "open closed" {
		t.Errorf("statuses = %q; want %q", got, "open closed")
	}
	for range 3 {
		if name, msg := testutil.Throws(t, rt, `tcp.connect('gone.test', 22)`); name != "LookupError" || !strings.Contains(msg, "tcp.connect gone.test:22: lookup gone.test: no such host") {
			t.Errorf("threw %s: %s; want LookupError: tcp.connect gone.test:22: lookup gone.test: no such host", name, msg)
		}
	}
	if n, m := names.count("scan.test"), names.count("gone.test"); n != 1 || m != 1 {
		t.Errorf("lookups in one item: scan.test %d, gone.test %d; want 1 each", n, m)
	}
	env.EndItem()
	testutil.Run(t, rt, fmt.Sprintf(`tcp.connect('scan.test', %d)`, srv.port))
	if n := names.count("scan.test"); n != 2 {
		t.Errorf("lookups of scan.test after a second item: %d; want 2", n)
	}
}

func TestBadArguments(t *testing.T) {
	rt, _ := newRuntime(t, "127.0.0.1")
	for _, tt := range []struct{ call, name, msg string }{
		{`tcp.connect('127.0.0.1', 0)`, "RangeError", "port must be an integer from 1 to 65535, not 0"},
		{`tcp.connect('127.0.0.1', 65536)`, "RangeError", "port must be an integer from 1 to 65535, not 65536"},
		{`tcp.connect('127.0.0.1', 1.5)`, "RangeError", "port must be an integer from 1 to 65535, not 1.5"},
		{`tcp.connect('127.0.0.1', '80')`, "RangeError", "port must be an integer from 1 to 65535, not 80"},
		{`tcp.connect('127.0.0.1')`, "RangeError", "port must be an integer from 1 to 65535, not undefined"},
		{`tcp.dial('127.0.0.1', -1)`, "RangeError", "port must be an integer from 1 to 65535, not -1"},
		{`tcp.connect(42, 80)`, "TypeError", "host must be a non-empty string, not number"},
		{`tcp.connect('', 80)`, "TypeError", "host must be a non-empty string, not string"},
		{`tcp.connect('127.0.0.1', 80, {timeout: 0})`, "RangeError", "timeout must be a positive number of milliseconds, not 0"},
		{`tcp.connect('127.0.0.1', 80, {timeout: 'x'})`, "RangeError", "timeout must be a positive number of milliseconds, not x"},
	} {
		name, msg := testutil.Throws(t, rt, tt.call)
		if name != tt.name || !strings.HasSuffix(msg, tt.msg) {
			t.Errorf("%s threw %s: %s; want %s ending %q", tt.call, name, msg, tt.name, tt.msg)
		}
	}
}

// TestDial talks to a banner server: read the banner, write a line, read
// the echo, then EOF.
func TestDial(t *testing.T) {
	srv := listen(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "SSH-2.0-test\r\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, "got "+line)
		// Closing (deferred by listen) gives the client EOF.
	})
	rt, _ := newRuntime(t, "127.0.0.1")
	v := testutil.Run(t, rt, fmt.Sprintf(`
		const c = tcp.dial('127.0.0.1', %d, {timeout: 2000});
		const out = [];
		out.push(c.remoteAddress, /^127\.0\.0\.1:\d+$/.test(c.localAddress));
		out.push(JSON.stringify(c.read({timeout: 5000})));
		out.push(c.write('hi\n'));
		out.push(c.write(new Uint8Array([0x68, 0x6f, 0x0a]).subarray(0, 0)));
		out.push(JSON.stringify(c.read({timeout: 5000})));
		out.push(JSON.stringify(c.read({timeout: 5000})));
		c.close();
		c.close(); // Closing twice is harmless.
		out.join('|');
	`, srv.port))
	want := fmt.Sprintf(`127.0.0.1:%d|true|"SSH-2.0-test\r\n"|3|0|"got hi\n"|""`, srv.port)
	if got := v.String(); got != want {
		t.Errorf("got %s; want %s", got, want)
	}
	name, msg := testutil.Throws(t, rt, `c.read()`)
	if name != "Error" || !strings.Contains(msg, "closed") {
		t.Errorf("read after close threw %s: %s; want Error about a closed connection", name, msg)
	}
}

func TestDialReadBytesAndTimeout(t *testing.T) {
	send := make(chan struct{})
	srv := listen(t, func(c net.Conn) {
		<-send
		_, _ = c.Write([]byte{0, 1, 2, 250, 251})
		_, _ = io.Copy(io.Discard, c)
	})
	rt, _ := newRuntime(t, "127.0.0.1")
	testutil.Run(t, rt, fmt.Sprintf(`const c = tcp.dial('127.0.0.1', %d)`, srv.port))
	start := time.Now()
	if v := testutil.Run(t, rt, `c.read({timeout: 50})`); !goja.IsNull(v) {
		t.Errorf("read with nothing sent = %v; want null", v)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("read timed out after %v; want about 50ms", d)
	}
	if v := testutil.Run(t, rt, `c.readBytes({timeout: 20})`); !goja.IsNull(v) {
		t.Errorf("readBytes with nothing sent = %v; want null", v)
	}
	close(send)
	v := testutil.Run(t, rt, `
		const b = c.readBytes({timeout: 5000, max: 3});
		const rest = c.readBytes({timeout: 5000});
		c.close();
		JSON.stringify([b instanceof Uint8Array, Array.from(b), Array.from(rest)]);
	`)
	// The first read may see fewer than 3 bytes if they arrive separately;
	// on loopback one write arrives whole.
	if got, want := v.String(), `[true,[0,1,2],[250,251]]`; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
	for _, tt := range []struct{ call, msg string }{
		{`c.read({max: 0})`, "max must be an integer from 1 to 1048576, not 0"},
		{`c.read({timeout: -5})`, "timeout must be a positive number of milliseconds, not -5"},
	} {
		if name, msg := testutil.Throws(t, rt, tt.call); name != "RangeError" || !strings.HasSuffix(msg, tt.msg) {
			t.Errorf("%s threw %s: %s; want RangeError ending %q", tt.call, name, msg, tt.msg)
		}
	}
}

func TestDialRefused(t *testing.T) {
	port := closedPort(t)
	rt, _ := newRuntime(t, "127.0.0.1")
	name, msg := testutil.Throws(t, rt, fmt.Sprintf(`tcp.dial('127.0.0.1', %d)`, port))
	if name != "Error" || !strings.Contains(msg, "refused") {
		t.Errorf("threw %s: %s; want Error about a refused connection", name, msg)
	}
}

// TestDialClosedAtItemEnd checks that a connection the script forgot is
// closed when the item ends.
func TestDialClosedAtItemEnd(t *testing.T) {
	serverRead := make(chan error, 1)
	srv := listen(t, func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		serverRead <- err
	})
	rt, env := newRuntime(t, "127.0.0.1")
	testutil.Run(t, rt, fmt.Sprintf(`var forgotten = tcp.dial('127.0.0.1', %d)`, srv.port))
	env.EndItem()
	if err := <-serverRead; !errors.Is(err, io.EOF) {
		t.Errorf("server read %v; want EOF once the item ended", err)
	}
	if name, msg := testutil.Throws(t, rt, `forgotten.write('x')`); name != "Error" || !strings.Contains(msg, "closed") {
		t.Errorf("write after the item ended threw %s: %s; want Error about a closed connection", name, msg)
	}
}

// TestDialAbortedByContext checks that a read blocked on a silent server
// returns as soon as the item's context is cancelled, with an error rather
// than a read timeout.
func TestDialAbortedByContext(t *testing.T) {
	release := make(chan struct{})
	srv := listen(t, func(c net.Conn) { <-release })
	defer close(release)
	rt, env := newRuntime(t, "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env.SetContext(ctx)
	testutil.Run(t, rt, fmt.Sprintf(`var c = tcp.dial('127.0.0.1', %d)`, srv.port))
	timer := time.AfterFunc(50*time.Millisecond, cancel)
	defer timer.Stop()
	start := time.Now()
	name, msg := testutil.Throws(t, rt, `c.read({timeout: 20000})`)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("read returned after %v; want soon after the cancel", d)
	}
	want := fmt.Sprintf("tcp.read 127.0.0.1:%d: context canceled", srv.port)
	if name != "Error" || msg != want {
		t.Errorf("read threw %s: %s; want Error: %s", name, msg, want)
	}
	env.EndItem()
}

func ExampleRequire() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err == nil {
			_ = c.Close()
		}
	}()

	env := &builtins.Env{Permissions: &builtins.Permissions{
		Net: builtins.NetPermission{Allow: []string{"127.0.0.0/8"}},
	}}
	rt := goja.New()
	registry := require.NewRegistry()
	registry.RegisterNativeModule(tcp.ModuleName, tcp.Require(env))
	registry.Enable(rt)
	_ = rt.Set("port", ln.Addr().(*net.TCPAddr).Port)

	v, err := rt.RunString(`
		const tcp = require('tcp');
		let denied;
		try { tcp.connect('192.0.2.1', 22); } catch (e) { denied = e.name + ': ' + e.message; }
		tcp.connect('127.0.0.1', port).status + '\n' + denied;
	`)
	if err != nil {
		panic(err)
	}
	<-done
	fmt.Println(v)
	// Output:
	// open
	// PermissionDenied: net access to "192.0.2.1:22" denied: run again with --allow-net=192.0.2.1:22
}

// BenchmarkConnectClosed is one step of a loopback connect scan: a closed
// port, through each connect path and through the module as a script
// calls it. cpu-ns/op is the process's CPU time (user and system) per
// connect, which a busy machine disturbs less than ns/op.
func BenchmarkConnectClosed(b *testing.B) {
	port := closedPort(b)
	ip := netip.MustParseAddr("127.0.0.1")
	ctx := context.Background()
	loop := func(b *testing.B, connect func() error) {
		cpu := testutil.CPUTime()
		for b.Loop() {
			if err := connect(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(testutil.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
	}
	refused := func(_ time.Duration, err error) error {
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("got %v; want connection refused", err)
		}
		return nil
	}
	b.Run("probe", func(b *testing.B) {
		loop(b, func() error { return refused(tcp.Probe(ctx, ip, port, time.Second)) })
	})
	b.Run("dialer", func(b *testing.B) {
		loop(b, func() error { return refused(tcp.DialProbe(ctx, ip.String(), port, time.Second)) })
	})
	b.Run("module", func(b *testing.B) {
		rt, _ := newRuntime(b, "127.0.0.1")
		connect, ok := goja.AssertFunction(testutil.Run(b, rt, fmt.Sprintf(`(() => tcp.connect('127.0.0.1', %d).status)`, port)))
		if !ok {
			b.Fatal("not a function")
		}
		loop(b, func() error {
			if v, err := connect(goja.Undefined()); err != nil || v.String() != "closed" {
				return fmt.Errorf("got %v, %v; want closed", v, err)
			}
			return nil
		})
	})
}
