// Package tcp is the builtin module require('tcp'): TCP connect scans and
// simple banner-grabbing connections, bounded by the runspace's net
// permission and the item's context.
//
// Functions:
//
//	connect(host, port, {timeout = 1000}) {host, port, status, rttMs, error}
//	dial(host, port, {timeout = 1000}) connection
//
// connect reports a port's state with nmap's -sT meanings: "open" (the
// connection was accepted, and is closed at once), "closed" (refused) or
// "filtered" (no answer before the timeout, or an ICMP unreachable). error is
// null when open, the error text otherwise; rttMs is the time the dial took
// in milliseconds, for open and closed ports, and null when filtered.
//
// A connection has remoteAddress and localAddress strings and the methods
//
//	write(data) number                  data: string (UTF-8), ArrayBuffer, typed array or DataView
//	read({timeout = 1000, max = 4096})  a string of up to max bytes; "" at EOF; null if nothing came in time
//	readBytes({timeout, max})           the same as a Uint8Array
//	close()
//
// A connection is closed when the item that opened it ends, and aborted when
// the item's context is done.
//
// Timeouts are in milliseconds. The host is checked with
// builtins.Permissions.CheckNet first; a denied host throws PermissionDenied.
// A name that does not resolve throws LookupError (a property of the
// target, which a scan may record and go on); a cancelled or timed-out item
// and bad arguments throw too.
//
// connect resolves a name once per item: the ports of a host scanned in
// one item cost one lookup, and a name that does not resolve fails every
// later connect of the item at once. Its addresses are tried in order, as
// a dialer does, within the one timeout. (A name allowed only through an
// IP or CIDR entry is resolved by the permission check, at every connect,
// so that what is checked is what is dialled.)
package tcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/require"

	"github.com/runspaces/rsh/builtins"
)

// ModuleName is the name scripts pass to require.
const ModuleName = "tcp"

// defaultTimeout bounds a dial and a read when the script gives no timeout:
// one second is nmap's order of magnitude for a connect scan on a LAN and
// keeps a scan of many filtered ports from stalling an item.
const defaultTimeout = time.Second

// defaultReadMax is read's default max: enough for any service banner.
const defaultReadMax = 4096

// maxReadMax bounds read's max so a script cannot make us allocate gigabytes
// for one read; a TCP read rarely returns more than 64 KiB anyway.
const maxReadMax = 1 << 20

// lookupError is the JavaScript name of the error thrown for a name that
// does not resolve, so a script can tell it from a denial or a bug.
const lookupError = "LookupError"

// Port states, as nmap names them.
const (
	open     = "open"
	closed   = "closed"
	filtered = "filtered"
)

// Require returns the loader for require('tcp'), bound to env. A nil env
// denies everything.
func Require(env *builtins.Env) require.ModuleLoader {
	return requireWith(env, net.DefaultResolver.LookupNetIP)
}

// requireWith is Require with the lookup connect resolves names with
// (tests count lookups with their own).
func requireWith(env *builtins.Env, lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)) require.ModuleLoader {
	if env == nil {
		env = &builtins.Env{}
	}
	return func(rt *goja.Runtime, module *goja.Object) {
		m := &tcpModule{rt: rt, env: env, lookup: lookup, statuses: map[string]goja.Value{
			open: rt.ToValue(open), closed: rt.ToValue(closed), filtered: rt.ToValue(filtered),
		}}
		exports := module.Get("exports").(*goja.Object)
		_ = exports.Set("connect", m.connect)
		_ = exports.Set("dial", m.dial)
	}
}

// Enable binds the module to the global tcp in rt, without a registry.
func Enable(rt *goja.Runtime, env *builtins.Env) {
	module := rt.NewObject()
	_ = module.Set("exports", rt.NewObject())
	Require(env)(rt, module)
	rt.Set("tcp", module.Get("exports"))
}

// classify maps a dial error to a port state with nmap's -sT meanings:
// closed for a refused connection; filtered for a timeout or an unreachable
// host or network (no answer, or an ICMP error). ok is false for any other
// error, which is not about the port (a failed DNS lookup, a cancelled
// context, a local resource limit).
func classify(err error) (status string, ok bool) {
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return open, true
	case errors.Is(err, syscall.ECONNREFUSED):
		// First: most ports of a scan are closed, and errors.As costs
		// more than errors.Is.
		return closed, true
	case errors.As(err, &dnsErr), errors.Is(err, context.Canceled):
		return "", false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return filtered, true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return filtered, true
	}
	return "", false
}

// tcpModule holds what the module's functions share. Its methods run on the
// runtime's goroutine only, like every goja callback.
type tcpModule struct {
	rt  *goja.Runtime
	env *builtins.Env
	// statuses holds each port state as a JS string, made once.
	statuses map[string]goja.Value
	lookup   func(ctx context.Context, network, host string) ([]netip.Addr, error)
	// names holds the lookups of the item being run, failed ones too, by
	// lower-case name; nil between items.
	names map[string]lookupResult
}

// lookupResult is one name's lookup.
type lookupResult struct {
	addrs []netip.Addr
	err   error
}

func (m *tcpModule) throw(name string, err error) {
	builtins.Throw(m.rt, name, err)
}

// target reads the host and port arguments and the options' timeout.
func (m *tcpModule) target(fn string, call goja.FunctionCall) (host string, port int, timeout time.Duration) {
	h, ok := call.Argument(0).Export().(string)
	if !ok || h == "" {
		m.throw("TypeError", fmt.Errorf("tcp.%s: host must be a non-empty string, not %s", fn, builtins.TypeName(call.Argument(0))))
	}
	pv := call.Argument(1)
	p := pv.ToFloat()
	if !builtins.IsNumber(pv) || p != math.Trunc(p) || p < 1 || p > 65535 {
		m.throw("RangeError", fmt.Errorf("tcp.%s %s: port must be an integer from 1 to 65535, not %s", fn, h, pv))
	}
	return h, int(p), m.duration(fn, call.Argument(2), "timeout", defaultTimeout)
}

// duration returns opts[name] in milliseconds as a positive duration, or def.
func (m *tcpModule) duration(fn string, opts goja.Value, name string, def time.Duration) time.Duration {
	v := m.option(opts, name)
	if v == nil {
		return def
	}
	ms := v.ToFloat()
	if !builtins.IsNumber(v) || !(ms > 0) || ms > math.MaxInt64/float64(time.Millisecond) {
		m.throw("RangeError", fmt.Errorf("tcp.%s: %s must be a positive number of milliseconds, not %s", fn, name, v))
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// option returns opts[name], or nil when opts or the property is undefined
// or null.
func (m *tcpModule) option(opts goja.Value, name string) goja.Value {
	if opts == nil || goja.IsUndefined(opts) || goja.IsNull(opts) {
		return nil
	}
	v := opts.ToObject(m.rt).Get(name)
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	return v
}

// check checks the net permission for host:port and returns the host to
// dial. It throws for a denied host and a failed lookup during the check.
func (m *tcpModule) check(fn, host string, port int) string {
	dialHost, err := m.env.Perms().CheckNet(m.env.Context(), host, port)
	if err != nil {
		var pe *builtins.PermissionError
		if errors.As(err, &pe) {
			m.throw("PermissionDenied", err)
		}
		m.stopped(fn, host, port)
		m.throw(errorName(err), fmt.Errorf("tcp.%s %s: %w", fn, net.JoinHostPort(host, strconv.Itoa(port)), err))
	}
	return dialHost
}

// errorName is the JavaScript name of a failed check or dial: LookupError
// for a failed lookup, Error for anything else.
func errorName(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return lookupError
	}
	return "Error"
}

// resolve returns the addresses of the name host, looked up once per item.
// A lookup cut short by the item's context is not kept.
func (m *tcpModule) resolve(host string) ([]netip.Addr, error) {
	key := strings.ToLower(host)
	if r, ok := m.names[key]; ok {
		return r.addrs, r.err
	}
	ctx := m.env.Context()
	addrs, err := m.lookup(ctx, "ip", host)
	if err == nil && len(addrs) == 0 {
		err = &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	if ctx.Err() == nil {
		if m.names == nil {
			m.names = make(map[string]lookupResult)
			m.env.OnItemEnd(func() { m.names = nil })
		}
		m.names[key] = lookupResult{addrs: addrs, err: err}
	}
	return addrs, err
}

// probeAddrs probes port on each of addrs in turn until one accepts, all
// within one timeout, as a dialer tries a name's addresses; it returns the
// time taken and the first address's error when none accepts.
func probeAddrs(ctx context.Context, addrs []netip.Addr, port int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	var first error
	for _, a := range addrs {
		_, err := probe(ctx, a.Unmap(), port, time.Until(deadline))
		if err == nil {
			return time.Since(start), nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			break
		}
	}
	return time.Since(start), first
}

// stopped throws when the item's context is done: a dial that failed
// then was cut short by the item, and says nothing about the port.
func (m *tcpModule) stopped(fn, host string, port int) {
	if ctx := m.env.Context(); ctx.Err() != nil {
		m.throw("Error", fmt.Errorf("tcp.%s %s: %w", fn, net.JoinHostPort(host, strconv.Itoa(port)), context.Cause(ctx)))
	}
}

// open checks the permission and dials, returning the dial error for the
// caller to classify. It throws for a denied host, a failed lookup during
// the check and a done item context.
func (m *tcpModule) open(fn, host string, port int, timeout time.Duration) (net.Conn, error) {
	dialHost := m.check(fn, host, port)
	dctx, cancel := context.WithTimeout(m.env.Context(), timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", net.JoinHostPort(dialHost, strconv.Itoa(port)))
	if err != nil {
		m.stopped(fn, host, port)
	}
	return conn, err
}

// dialProbe is probe by net.Dialer, for addresses with a zone and for
// systems without a faster probe.
func dialProbe(ctx context.Context, host string, port int, timeout time.Duration) (time.Duration, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	start := time.Now()
	conn, err := d.DialContext(dctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	rtt := time.Since(start)
	if conn != nil {
		_ = conn.Close()
	}
	return rtt, err
}

func (m *tcpModule) connect(call goja.FunctionCall) goja.Value {
	host, port, timeout := m.target("connect", call)
	dialHost := m.check("connect", host, port)
	var rtt time.Duration
	var err error
	if ip, perr := netip.ParseAddr(dialHost); perr == nil {
		rtt, err = probe(m.env.Context(), ip, port, timeout)
	} else {
		// A name allowed by name: any of its addresses may be dialled.
		addrs, lerr := m.resolve(dialHost)
		if lerr != nil {
			m.stopped("connect", host, port)
			m.throw(lookupError, fmt.Errorf("tcp.connect %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), lerr))
		}
		rtt, err = probeAddrs(m.env.Context(), addrs, port, timeout)
	}
	if err != nil {
		m.stopped("connect", host, port)
	}
	status, ok := classify(err)
	if !ok {
		m.throw("Error", fmt.Errorf("tcp.connect %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err))
	}
	o := m.rt.NewObject()
	_ = o.Set("host", host)
	_ = o.Set("port", port)
	_ = o.Set("status", m.statuses[status])
	if status == filtered {
		_ = o.Set("rttMs", goja.Null())
	} else {
		_ = o.Set("rttMs", float64(rtt)/float64(time.Millisecond))
	}
	if err != nil {
		_ = o.Set("error", err.Error())
	} else {
		_ = o.Set("error", goja.Null())
	}
	return o
}

func (m *tcpModule) dial(call goja.FunctionCall) goja.Value {
	host, port, timeout := m.target("dial", call)
	conn, err := m.open("dial", host, port, timeout)
	if err != nil {
		m.throw(errorName(err), fmt.Errorf("tcp.dial %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err))
	}
	c := &connection{m: m, conn: conn, ctx: m.env.Context()}
	// Abort blocked reads and writes when the item is stopped or times out,
	// and close what the script forgot when the item ends.
	stop := context.AfterFunc(c.ctx, c.closeConn)
	m.env.OnItemEnd(func() {
		stop()
		c.closeConn()
	})
	o := m.rt.NewObject()
	_ = o.Set("remoteAddress", conn.RemoteAddr().String())
	_ = o.Set("localAddress", conn.LocalAddr().String())
	_ = o.Set("write", c.write)
	_ = o.Set("read", func(call goja.FunctionCall) goja.Value {
		b := c.read("read", call.Argument(0))
		if b == nil {
			return goja.Null()
		}
		return m.rt.ToValue(string(b))
	})
	_ = o.Set("readBytes", func(call goja.FunctionCall) goja.Value {
		b := c.read("readBytes", call.Argument(0))
		if b == nil {
			return goja.Null()
		}
		return builtins.Uint8Array(m.rt, b)
	})
	_ = o.Set("close", func(goja.FunctionCall) goja.Value {
		c.closeConn()
		return goja.Undefined()
	})
	return o
}

// connection is a dialled connection as the script sees it. read, write and
// close run on the runtime's goroutine; closeConn may also run from the
// context's AfterFunc goroutine.
type connection struct {
	m    *tcpModule
	conn net.Conn
	ctx  context.Context // The context of the item that dialled.

	once sync.Once
}

// closeConn closes the connection once; later reads and writes fail.
func (c *connection) closeConn() {
	c.once.Do(func() { _ = c.conn.Close() })
}

// ioError throws for a failed read or write, naming the item's context
// error when that is why the connection was closed.
func (c *connection) ioError(fn string, err error) {
	if cerr := c.ctx.Err(); cerr != nil {
		err = context.Cause(c.ctx)
	}
	c.m.throw("Error", fmt.Errorf("tcp.%s %s: %w", fn, c.conn.RemoteAddr(), err))
}

func (c *connection) write(call goja.FunctionCall) goja.Value {
	data, err := builtins.Bytes(c.m.rt, call.Argument(0))
	if err != nil {
		c.m.throw("TypeError", fmt.Errorf("tcp.write: %w", err))
	}
	if err := c.ctx.Err(); err != nil {
		c.ioError("write", err) // The AfterFunc may not have closed it yet.
	}
	n, err := c.conn.Write(data)
	if err != nil {
		c.ioError("write", err)
	}
	return c.m.rt.ToValue(n)
}

// read returns what arrived, an empty non-nil slice at EOF, and nil when
// nothing arrived before the timeout.
func (c *connection) read(fn string, opts goja.Value) []byte {
	timeout := c.m.duration(fn, opts, "timeout", defaultTimeout)
	readMax := defaultReadMax
	if v := c.m.option(opts, "max"); v != nil {
		f := v.ToFloat()
		if !builtins.IsNumber(v) || f != math.Trunc(f) || f < 1 || f > maxReadMax {
			c.m.throw("RangeError", fmt.Errorf("tcp.%s: max must be an integer from 1 to %d, not %s", fn, maxReadMax, v))
		}
		readMax = int(f)
	}
	if err := c.ctx.Err(); err != nil {
		c.ioError(fn, err) // The AfterFunc may not have closed it yet.
	}
	if err := c.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		c.ioError(fn, err)
	}
	buf := make([]byte, readMax)
	n, err := c.conn.Read(buf)
	switch {
	case n > 0:
		return buf[:n] // Report the error, if any, at the next read.
	case errors.Is(err, io.EOF):
		return []byte{}
	case errors.Is(err, os.ErrDeadlineExceeded) && c.ctx.Err() == nil:
		return nil
	case err == nil:
		return []byte{} // A zero-byte read without error: treat like EOF.
	}
	c.ioError(fn, err)
	return nil
}
