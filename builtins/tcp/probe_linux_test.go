//go:build linux

package tcp_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runspaces/rsh/builtins/tcp"
	"github.com/runspaces/rsh/internal/testutil"
)

// silentPort returns a loopback port whose listener never answers a new
// connection: it listens with a backlog of 0, never accepts, and its one
// queue slot is taken, so Linux drops every SYN that comes next — what a
// filtering firewall does.
func silentPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	// Fill the queue: a backlog of 0 holds one connection.
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return port
}

// TestConnectNoAnswerIsFiltered checks a connect that is still in progress
// when connect(2) returns: no answer before the timeout is "filtered".
func TestConnectNoAnswerIsFiltered(t *testing.T) {
	port := silentPort(t)
	rt, _ := newRuntime(t, "127.0.0.1")
	v := testutil.Run(t, rt, fmt.Sprintf(`const r = tcp.connect('127.0.0.1', %d, {timeout: 100}); [r.status, String(r.rttMs), r.error].join(' ')`, port))
	want := fmt.Sprintf("filtered null dial tcp 127.0.0.1:%d: i/o timeout", port)
	if got := v.String(); got != want {
		t.Errorf("connect = %q; want %q", got, want)
	}
}

// TestConnectStoppedWhileWaiting checks that a connect waiting for an
// answer throws as soon as the item's context is done, naming the cause,
// rather than waiting for its timeout and reporting a port state.
func TestConnectStoppedWhileWaiting(t *testing.T) {
	port := silentPort(t)
	for _, tt := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want string
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			stop := time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, func() { stop.Stop(); cancel() }
		}, "context canceled"},
		{"timed out", func() (context.Context, context.CancelFunc) {
			return context.WithTimeoutCause(context.Background(), 50*time.Millisecond, errors.New("item timed out"))
		}, "item timed out"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rt, env := newRuntime(t, "127.0.0.1")
			ctx, cancel := tt.ctx()
			defer cancel()
			env.SetContext(ctx)
			start := time.Now()
			name, msg := testutil.Throws(t, rt, fmt.Sprintf(`tcp.connect('127.0.0.1', %d, {timeout: 60000})`, port))
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("connect returned after %v; want soon after the item was stopped, not at its timeout", d)
			}
			want := fmt.Sprintf("tcp.connect 127.0.0.1:%d: %s", port, tt.want)
			if name != "Error" || msg != want {
				t.Errorf("threw %s: %s; want Error: %s", name, msg, want)
			}
		})
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestConnectLeavesNoDescriptor scans many closed ports, an open one, a
// silent one and a stopped one, and checks that every socket was closed.
func TestConnectLeavesNoDescriptor(t *testing.T) {
	// A server of its own, to know when it has closed its side of each
	// connection it accepted.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverClosed := make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(serverClosed)
				return
			}
			_ = c.Close()
			serverClosed <- struct{}{}
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		for range serverClosed {
		}
	})
	open := ln.Addr().(*net.TCPAddr).Port
	silent := silentPort(t)
	closed := make([]string, 20)
	for i := range closed {
		closed[i] = fmt.Sprint(closedPort(t))
	}
	rt, env := newRuntime(t, "127.0.0.1")
	before := openFDs(t)
	v := testutil.Run(t, rt, fmt.Sprintf(`
		const seen = {};
		for (let i = 0; i < 25; i++) {
			for (const p of [%s]) seen[tcp.connect('127.0.0.1', p).status + ' ' + i] = true;
			seen[tcp.connect('127.0.0.1', %d).status] = true;
		}
		seen[tcp.connect('127.0.0.1', %d, {timeout: 20}).status] = true;
		['open', 'closed 0', 'closed 24', 'filtered'].map((k) => seen[k] === true).join(' ');
	`, strings.Join(closed, ","), open, silent))
	if got := v.String(); got != "true true true true" {
		t.Fatalf("statuses seen = %s; want open, closed in every round, filtered", got)
	}
	// Stopped while it waits for an answer.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := time.AfterFunc(20*time.Millisecond, cancel)
	defer stop.Stop()
	env.SetContext(ctx)
	if name, msg := testutil.Throws(t, rt, fmt.Sprintf(`tcp.connect('127.0.0.1', %d, {timeout: 60000})`, silent)); !strings.HasSuffix(msg, "context canceled") {
		t.Errorf("stopped connect threw %s: %s; want context canceled", name, msg)
	}
	for range 25 {
		<-serverClosed
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before the scan, %d after", before, after)
	}
}

// TestProbeErrorsReadLikeDialers checks that the probe's error text for a
// refused and for a timed-out connect is net.Dialer's.
func TestProbeErrorsReadLikeDialers(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	for _, tt := range []struct {
		name    string
		port    int
		timeout time.Duration
	}{
		{"refused", closedPort(t), time.Second},
		{"timed out", silentPort(t), 20 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, perr := tcp.Probe(context.Background(), ip, tt.port, tt.timeout)
			_, derr := tcp.DialProbe(context.Background(), ip.String(), tt.port, tt.timeout)
			if perr == nil || derr == nil || perr.Error() != derr.Error() {
				t.Errorf("probe error %v; want net.Dialer's %v", perr, derr)
			}
		})
	}
}
