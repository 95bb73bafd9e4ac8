package jobs

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// connectErr is the error a failed connect of a dial on network gives.
func connectErr(network string, errno syscall.Errno) *net.OpError {
	return &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", errno)}
}

// checkDialError checks that err, from dialError(where, ...), wraps want
// (ErrNoDaemon, ErrDaemonDenied, or nil for neither) and reads as it
// should.
func checkDialError(t *testing.T, name, where string, err, want error) {
	t.Helper()
	for _, sentinel := range []error{ErrNoDaemon, ErrDaemonDenied} {
		if got := errors.Is(err, sentinel); got != (sentinel == want) {
			t.Errorf("%s: errors.Is(%v, %q) = %v", name, err, sentinel, got)
		}
	}
	switch {
	case err == nil:
		t.Errorf("%s: no error", name)
	case want != nil && err.Error() != where+": "+want.Error():
		t.Errorf("%s: %q, want %q", name, err, where+": "+want.Error())
	case want == nil && !strings.HasPrefix(err.Error(), where+": "):
		t.Errorf("%s: %q does not start with %q", name, err, where+": ")
	}
}

// Errors made in memory, for every case, whoever runs the test.
func TestDialErrorClassifies(t *testing.T) {
	const where = "/run/rsh/rsh.sock"
	for _, tc := range []struct {
		name  string
		err   error
		want  error
		errno syscall.Errno // still found in the result, if not 0
	}{
		{"no socket file", connectErr("unix", syscall.ENOENT), ErrNoDaemon, syscall.ENOENT},
		{"socket not listened on", connectErr("unix", syscall.ECONNREFUSED), ErrNoDaemon, syscall.ECONNREFUSED},
		{"tcp refused", connectErr("tcp", syscall.ECONNREFUSED), ErrNoDaemon, syscall.ECONNREFUSED},
		{"tcp4 refused", connectErr("tcp4", syscall.ECONNREFUSED), ErrNoDaemon, syscall.ECONNREFUSED},
		{"socket denied", connectErr("unix", syscall.EACCES), ErrDaemonDenied, syscall.EACCES},
		{"socket not permitted", connectErr("unix", syscall.EPERM), ErrDaemonDenied, syscall.EPERM},
		{"denied, network unnamed", &net.OpError{Err: os.NewSyscallError("connect", syscall.EACCES)}, ErrDaemonDenied, syscall.EACCES},
		{"denied, inside a request error", &url.Error{Op: "Get", URL: "http://unix/v1/jobs", Err: connectErr("unix", syscall.EACCES)}, ErrDaemonDenied, syscall.EACCES},
		{"refused, inside a request error", &url.Error{Op: "Get", URL: "http://unix/v1/jobs", Err: connectErr("unix", syscall.ECONNREFUSED)}, ErrNoDaemon, syscall.ECONNREFUSED},
		{"tcp denied by a firewall", connectErr("tcp", syscall.EPERM), nil, syscall.EPERM},
		{"tcp6 denied", connectErr("tcp6", syscall.EACCES), nil, syscall.EACCES},
		{"not a directory", connectErr("unix", syscall.ENOTDIR), nil, syscall.ENOTDIR},
		{"unreachable", connectErr("tcp", syscall.EHOSTUNREACH), nil, syscall.EHOSTUNREACH},
		{"not a dial error", errors.New("boom"), nil, 0},
	} {
		err := dialError(where, tc.err)
		checkDialError(t, tc.name, where, err, tc.want)
		if tc.errno != 0 && !errors.Is(err, tc.errno) {
			t.Errorf("%s: %v does not wrap %v", tc.name, err, tc.errno)
		}
	}
	if err := dialError(where, errors.New("boom")); err.Error() != where+": boom" {
		t.Errorf("other error: %q", err)
	}
	if err := dialError(where, nil); err != nil {
		t.Errorf("dialError of nil = %v", err)
	}
}

// getErr makes a request with c, which must fail to connect, and returns
// dialError's classification of the failure.
func getErr(t *testing.T, c *Client) error {
	t.Helper()
	resp, err := c.HTTP.Get(c.Base + "/v1/jobs")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("%s: connected", c.Where)
	}
	return dialError(c.Where, err)
}

// Real failed dials: no socket file, a socket nobody listens on, a closed
// TCP port, and a socket path through a regular file.
func TestDialErrorReal(t *testing.T) {
	dir := t.TempDir()

	missing := filepath.Join(dir, "missing.sock")
	checkDialError(t, "no socket file", missing, getErr(t, UnixClient(missing)), ErrNoDaemon)

	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false) // as a daemon killed with -9 leaves it
	l.Close()
	checkDialError(t, "stale socket", stale, getErr(t, UnixClient(stale)), ErrNoDaemon)

	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := tl.Addr().String()
	tl.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	tc := &Client{Base: "http://" + addr, HTTP: &http.Client{Transport: tr}, Where: addr}
	checkDialError(t, "closed port", addr, getErr(t, tc), ErrNoDaemon)

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	through := filepath.Join(file, "rsh.sock")
	err = getErr(t, UnixClient(through))
	checkDialError(t, "path through a file", through, err, nil)
	if !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("path through a file: %v, want ENOTDIR", err)
	}
}

// deniedSocketsEnv hands the child of TestDialErrorDenied the sockets it
// must be refused.
const deniedSocketsEnv = "RSH_TEST_DENIED_SOCKETS"

// otherUID is who the test runs its check as when it runs as root (for
// whom permissions do not apply): nobody.
const otherUID = 65534

// A socket that this user may not open, because of its directory or of
// its own mode, is reported as denied, not as no daemon. Permissions do
// not apply to root, so running as root the test checks that root does
// connect, then runs itself again as another user to check the refusal.
func TestDialErrorDenied(t *testing.T) {
	if socks := os.Getenv(deniedSocketsEnv); socks != "" {
		// The child, started below as another user.
		if os.Getuid() == 0 {
			t.Fatal("the child runs as root")
		}
		for _, s := range strings.Split(socks, string(os.PathListSeparator)) {
			checkDialError(t, "as uid "+strconv.Itoa(os.Getuid()), s, getErr(t, UnixClient(s)), ErrDaemonDenied)
		}
		return
	}

	// A base directory others may enter, so that the child reaches the
	// sockets' directories and its own binary.
	base, err := os.MkdirTemp("", "rsh-dial-")
	if err != nil {
		t.Fatal(err)
	}
	var restore []string
	t.Cleanup(func() {
		for _, p := range restore {
			os.Chmod(p, 0o700)
		}
		os.RemoveAll(base)
	})
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	listen := func(path string) {
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
	}
	// A daemon listening in a directory closed to everyone...
	closedDir := filepath.Join(base, "closed")
	if err := os.Mkdir(closedDir, 0o700); err != nil {
		t.Fatal(err)
	}
	inClosed := filepath.Join(closedDir, "rsh.sock")
	listen(inClosed)
	// ...and one whose socket is closed to everyone, in an open directory.
	openDir := filepath.Join(base, "open")
	if err := os.Mkdir(openDir, 0o755); err != nil {
		t.Fatal(err)
	}
	closedSock := filepath.Join(openDir, "rsh.sock")
	listen(closedSock)
	for _, p := range []string{closedDir, closedSock} {
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
		restore = append(restore, p)
	}
	socks := []string{inClosed, closedSock}

	if os.Getuid() != 0 {
		for _, s := range socks {
			checkDialError(t, "socket "+s, s, getErr(t, UnixClient(s)), ErrDaemonDenied)
		}
		return
	}

	// Root connects whatever the modes: the refusal has to be seen by
	// another user.
	for _, s := range socks {
		c, err := net.DialTimeout("unix", s, 10*time.Second)
		if err != nil {
			t.Fatalf("as root, dialing %s: %v", s, err)
		}
		c.Close()
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "jobs.test")
	if err := copyFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestDialErrorDenied$", "-test.v", "-test.count=1")
	cmd.Dir = base
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOCOVERDIR=") { // root's, not writable by the child
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, deniedSocketsEnv+"="+strings.Join(socks, string(os.PathListSeparator)))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL)) {
		// Root without the right to change user (a user namespace that
		// does not map otherUID): the classification is still tested
		// in memory by TestDialErrorClassifies, and root's access above.
		t.Logf("cannot run as uid %d (%v): the refusal is checked in memory only", otherUID, err)
		return
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestDialErrorDenied") {
		t.Fatalf("as uid %d: %v\n%s", otherUID, err, out)
	}
}

// copyFile copies src to a new file dst with mode perm.
func copyFile(dst, src string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
