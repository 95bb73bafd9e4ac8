//go:build linux

package tcp

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// probe connects to ip:port once and closes the connection, returning how
// long the answer took and the dial error (nil when the port accepted),
// for classify. A done ctx is returned as ctx's error; the caller checks
// ctx first.
//
// A connect scan is mostly closed ports, each answered before connect(2)
// returns when the target is near, so probe makes the cheapest syscall
// sequence for that case: a non-blocking socket, connect, and one
// getsockopt(SO_ERROR) that finds the answer already there, then close.
// Only a connect still in progress after that (a distant or silent host)
// is handed to the runtime's poller, which waits for the answer with the
// deadline and ctx. net.Dialer would resolve the address, register every
// socket with the poller and park the goroutine until the poller reported
// it writable — an epoll_ctl pair, a park and a wake per port, measured as
// half of rsh's CPU in a loopback scan of 65,535 ports.
//
// connect, getsockopt and close are made with syscall.RawSyscall (socket
// already is), which skips the scheduler's bookkeeping for a call that
// may block: on a non-blocking socket without SO_LINGER none of them
// blocks, and the bookkeeping was measured at 12-15% of a closed-port
// probe's CPU.
//
// Addresses with a zone go through net.Dialer, which knows how to name
// the interface.
func probe(ctx context.Context, ip netip.Addr, port int, timeout time.Duration) (time.Duration, error) {
	if ip.Zone() != "" {
		return dialProbe(ctx, ip.String(), port, timeout)
	}
	start := time.Now()
	deadline := start.Add(timeout)
	opErr := func(err error) error {
		return &dialError{addr: netip.AddrPortFrom(ip, uint16(port)), err: err}
	}
	if err := ctx.Err(); err != nil {
		return 0, opErr(err)
	}
	if !start.Before(deadline) {
		return 0, opErr(os.ErrDeadlineExceeded) // No packet leaves.
	}
	var sa rawSockaddr
	family := sa.set(ip, port)
	for tries := 0; ; tries++ {
		fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, opErr(os.NewSyscallError("socket", err))
		}
		var self func(fd int) bool
		if tries < selfConnectRetries {
			self = func(fd int) bool { return selfConnected(fd, ip, port) }
		}
		answer, again := attempt(ctx, fd, &sa, deadline, self)
		if again {
			continue
		}
		rtt := time.Since(start)
		if rtt > timeout && ctx.Err() == nil {
			// The answer came, but later than the script would wait.
			return rtt, opErr(os.ErrDeadlineExceeded)
		}
		if answer != nil {
			return rtt, opErr(answer)
		}
		return rtt, nil
	}
}

// selfConnectRetries is how many times probe connects again after
// reaching its own socket, as net.Dialer does: a connect to a local port
// that nothing listens on succeeds when the kernel happens to pick that
// very port as the socket's own (TCP's simultaneous open), about once in
// a scan of every loopback port, and would read as "open".
const selfConnectRetries = 2

// attempt connects the non-blocking socket fd to sa and closes it,
// returning the answer: nil for an accepted connection, the error that
// the connection failed with, or ctx's error or os.ErrDeadlineExceeded
// when it stopped waiting. When self is set and reports that an accepted
// connection reached fd itself, again is true and answer means nothing.
func attempt(ctx context.Context, fd int, sa *rawSockaddr, deadline time.Time, self func(fd int) bool) (answer error, again bool) {
	answer, done := connectStep(fd, sa)
	if done {
		again = answer == nil && self != nil && self(fd)
		syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0) // Fails only for a bad fd.
		return answer, again
	}
	// Wait with the poller. The file owns fd from here on.
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err, false
	}
	if err := f.SetWriteDeadline(deadline); err != nil {
		return err, false
	}
	// Cancelling ctx ends the wait at once, like net.Dialer.
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	werr := rc.Write(func(fd uintptr) bool {
		answer, done = answerStep(int(fd))
		again = done && answer == nil && self != nil && self(int(fd))
		return done
	})
	if werr != nil {
		if err := ctx.Err(); err != nil {
			return err, false
		}
		return werr, false // os.ErrDeadlineExceeded: no answer in time.
	}
	return answer, again
}

// selfConnected reports whether the connected socket fd has ip:port as
// its own address, that is, whether it is connected to itself.
func selfConnected(fd int, ip netip.Addr, port int) bool {
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return false
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return a.Port == port && netip.AddrFrom4(a.Addr) == ip
	case *syscall.SockaddrInet6:
		return a.Port == port && netip.AddrFrom16(a.Addr) == ip
	}
	return false
}

// dialError is a failed probe. Its text is net.Dialer's ("dial tcp
// 127.0.0.1:22: connect: connection refused"), made in one allocation:
// a scan makes one for every closed port.
type dialError struct {
	addr netip.AddrPort
	err  error
}

func (e *dialError) Error() string {
	var buf [96]byte
	b := append(buf[:0], "dial tcp "...)
	b = e.addr.AppendTo(b)
	b = append(b, ": "...)
	if se, ok := e.err.(*os.SyscallError); ok {
		b = append(append(append(b, se.Syscall...), ": "...), se.Err.Error()...)
	} else {
		b = append(b, e.err.Error()...)
	}
	return string(b)
}

func (e *dialError) Unwrap() error { return e.err }

// rawSockaddr is a socket address as connect(2) takes it.
type rawSockaddr struct {
	raw syscall.RawSockaddrAny
	len uintptr
}

// set makes sa the address of ip:port and returns its address family.
func (sa *rawSockaddr) set(ip netip.Addr, port int) int {
	if ip.Is4() {
		r := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		r.Family = syscall.AF_INET
		putPort(&r.Port, port)
		r.Addr = ip.As4()
		sa.len = syscall.SizeofSockaddrInet4
		return syscall.AF_INET
	}
	r := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&sa.raw))
	r.Family = syscall.AF_INET6
	putPort(&r.Port, port)
	r.Addr = ip.As16()
	sa.len = syscall.SizeofSockaddrInet6
	return syscall.AF_INET6
}

// putPort stores port in network byte order.
func putPort(dst *uint16, port int) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// connectStep starts a connect on the non-blocking socket fd and looks
// once for the answer. done is false while the connect is in progress;
// otherwise answer is nil for an accepted connection or the error, as a
// *os.SyscallError, that the connection failed with.
func connectStep(fd int, sa *rawSockaddr) (answer error, done bool) {
	_, _, errno := syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), sa.len)
	switch errno {
	case 0, syscall.EISCONN:
		return nil, true
	case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
		return answerStep(fd)
	default:
		return os.NewSyscallError("connect", errno), true
	}
}

// answerStep looks once for the answer to a connect in progress on fd:
// the pending socket error if there is one (a refusal, an unreachable
// host), or a connection if fd has a peer. Like net's own dialer it reads
// SO_ERROR rather than calling connect again, which on some systems does
// not report an earlier failure.
func answerStep(fd int) (answer error, done bool) {
	var soErr int32
	size := uint32(unsafe.Sizeof(soErr))
	_, _, errno := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, syscall.SO_ERROR,
		uintptr(unsafe.Pointer(&soErr)), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return os.NewSyscallError("getsockopt", errno), true
	}
	switch errno := syscall.Errno(soErr); errno {
	case 0:
		// No error: connected, or not answered yet.
		if _, err := syscall.Getpeername(fd); err == nil {
			return nil, true
		} else if !errors.Is(err, syscall.ENOTCONN) {
			return os.NewSyscallError("getpeername", err), true
		}
		return nil, false
	case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
		return nil, false
	default:
		return os.NewSyscallError("connect", errno), true
	}
}
