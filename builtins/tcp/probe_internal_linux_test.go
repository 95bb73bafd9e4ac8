//go:build linux

package tcp

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestRawSockaddr checks the bytes connect(2) is given, against the
// layouts in <netinet/in.h>; no packet is sent.
func TestRawSockaddr(t *testing.T) {
	var sa rawSockaddr
	if f := sa.set(netip.MustParseAddr("127.0.0.1"), 0x1234); f != syscall.AF_INET || sa.len != syscall.SizeofSockaddrInet4 {
		t.Fatalf("IPv4: family %d, length %d; want %d, %d", f, sa.len, syscall.AF_INET, syscall.SizeofSockaddrInet4)
	}
	if got, want := (*[syscall.SizeofSockaddrInet4]byte)(unsafe.Pointer(&sa.raw))[2:8], []byte{0x12, 0x34, 127, 0, 0, 1}; string(got) != string(want) {
		t.Errorf("IPv4 port and address bytes %v; want %v", got, want)
	}
	sa = rawSockaddr{}
	if f := sa.set(netip.MustParseAddr("::1"), 0xfedc); f != syscall.AF_INET6 || sa.len != syscall.SizeofSockaddrInet6 {
		t.Fatalf("IPv6: family %d, length %d; want %d, %d", f, sa.len, syscall.AF_INET6, syscall.SizeofSockaddrInet6)
	}
	b := (*[syscall.SizeofSockaddrInet6]byte)(unsafe.Pointer(&sa.raw))
	want := make([]byte, syscall.SizeofSockaddrInet6-2)
	want[0], want[1] = 0xfe, 0xdc // Port; then flow info (4 bytes), address (16), scope (4).
	want[2+4+15] = 1
	if got := b[2:]; string(got) != string(want) {
		t.Errorf("IPv6 bytes after the family %v; want %v", got, want)
	}
	if fam := *(*uint16)(unsafe.Pointer(&sa.raw)); fam != syscall.AF_INET6 {
		t.Errorf("IPv6 family field %d; want %d", fam, syscall.AF_INET6)
	}
}

// TestAttemptSelfConnect makes a socket connect to itself — bound to a
// loopback port, then connected to that same port, which TCP's
// simultaneous open accepts — and checks that attempt reports it as a
// connection to try again, not as an open port, unless told not to check.
func TestAttemptSelfConnect(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	for _, check := range []bool{true, false} {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: ip.As4()}); err != nil {
			_ = syscall.Close(fd)
			t.Fatal(err)
		}
		local, err := syscall.Getsockname(fd)
		if err != nil {
			_ = syscall.Close(fd)
			t.Fatal(err)
		}
		port := local.(*syscall.SockaddrInet4).Port
		var sa rawSockaddr
		sa.set(ip, port)
		var self func(int) bool
		if check {
			self = func(fd int) bool { return selfConnected(fd, ip, port) }
		}
		answer, again := attempt(context.Background(), fd, &sa, time.Now().Add(5*time.Second), self)
		if answer != nil || again != check {
			t.Errorf("checking %v: attempt = %v, again %v; want a connection, again %v", check, answer, again, check)
		}
		// attempt closed fd.
		if _, err := syscall.Getsockname(fd); !errors.Is(err, syscall.EBADF) {
			t.Errorf("checking %v: the socket is still open after attempt (getsockname: %v)", check, err)
		}
	}
}
