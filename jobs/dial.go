package jobs

import (
	"errors"
	"net"
	"strings"
	"syscall"
)

// ErrDaemonDenied is returned when the client may not open the daemon's
// Unix socket: the socket, or a directory on its path, does not let this
// user in. A daemon keeps its socket 0600 in a 0700 directory, so this
// usually means the socket belongs to another user's daemon.
var ErrDaemonDenied = errors.New("permission denied: the socket or its directory is not accessible to this user, so the daemon may belong to another user")

// dialError classifies err, the error of a request whose connection to
// the daemon could not be made (a *net.OpError with Op "dial", possibly
// wrapped in a *url.Error), for a daemon at where (a socket path or an
// address):
//
//   - nothing there (ENOENT: no socket file) or nothing listening
//     (ECONNREFUSED, on a socket or TCP): an error wrapping ErrNoDaemon;
//   - EACCES or EPERM on a Unix socket: an error wrapping ErrDaemonDenied
//     (on TCP these come from a firewall, and are returned as they are);
//   - anything else: err, prefixed with where.
//
// The errors for ErrNoDaemon and ErrDaemonDenied read "WHERE: " and the
// sentinel's text, and wrap err too, so errors.Is still finds the system
// error (syscall.ECONNREFUSED, say). A nil err gives nil.
func dialError(where string, err error) error {
	if err == nil {
		return nil
	}
	var cause error = err
	var op *net.OpError
	if errors.As(err, &op) {
		cause = op // what the dial said, without the request around it
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT, syscall.ECONNREFUSED:
			return &daemonError{where: where, kind: ErrNoDaemon, cause: cause}
		case syscall.EACCES, syscall.EPERM:
			if op == nil || !strings.HasPrefix(op.Net, "tcp") {
				return &daemonError{where: where, kind: ErrDaemonDenied, cause: cause}
			}
		}
	}
	return &daemonError{where: where, kind: cause}
}

// daemonError is a failed dial of the daemon at where: kind is a sentinel
// (ErrNoDaemon, ErrDaemonDenied) and cause the error it stands for, or
// kind is the error itself and cause is nil.
type daemonError struct {
	where       string
	kind, cause error
}

func (e *daemonError) Error() string { return e.where + ": " + e.kind.Error() }

func (e *daemonError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}
