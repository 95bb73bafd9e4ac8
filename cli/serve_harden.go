package cli

// Hardening of the job daemon and of its clients: who may own and read the
// token file, a warning when --listen is reachable from other hosts, the
// server's connection limits, and an idle limit on uploads.

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runspaces/rsh/jobs"
)

// maxTokenFileBytes bounds what is read from a token file. A generated
// token is 65 bytes (64 hex digits and a newline); 4 KiB leaves room for a
// token made by other tools while a wrong file (a log, a key store) is
// refused instead of read whole and sent in a header.
const maxTokenFileBytes = 4 << 10

// checkTokenFile reports whether the token file at path may be trusted:
// it must be a regular file owned by the user running rsh (os.Getuid())
// that neither group nor others can read or write (mode&0o077 == 0).
// Otherwise the error says what is wrong and the command that fixes it.
//
// A symbolic link is refused, not followed: the check is about who could
// read or replace the token, and a link adds a second name, in a directory
// and with an owner of its own, that would need checking as well. A link
// that someone else planted at the path could point at any file of ours
// (an SSH key, say), which the client would then send to the --url as its
// token. Refusing is simple to reason about, and the fix, naming the file
// itself, is easy; the error gives the link's target. Directories on the
// way to the file may be links.
func checkTokenFile(path string) error {
	f, err := openTokenFile(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// readTokenFile reads a token from the file at path, after the checks of
// checkTokenFile, and returns it without surrounding white space. An empty
// file is an error. When the file does not exist the error wraps
// fs.ErrNotExist, so that the daemon can create one.
//
// It serves both sides: the daemon reading its --token-file, and 'rsh job
// --url' reading the token it sends.
func readTokenFile(path string) (string, error) {
	f, err := openTokenFile(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("--token-file %s: %w", path, err)
	}
	if len(data) > maxTokenFileBytes {
		return "", fmt.Errorf("--token-file %s is larger than %d bytes: is it a token file?", path, maxTokenFileBytes)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("--token-file %s is empty", path)
	}
	return tok, nil
}

// openTokenFile opens the token file and checks the file it opened, so
// that what is checked is what is read, even if the path is replaced in
// between. O_NOFOLLOW refuses a link as the last part of the path;
// O_NONBLOCK keeps a FIFO planted there from blocking the open (it is then
// refused as not a regular file).
func openTokenFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		// Say what is wrong with the file, if something is, rather than
		// why it could not be opened (a link; another user's file).
		if fi, lerr := os.Lstat(path); lerr == nil {
			if fi.Mode()&fs.ModeSymlink != 0 {
				target, terr := filepath.EvalSymlinks(path)
				if terr != nil {
					target, _ = os.Readlink(path)
				}
				return nil, fmt.Errorf("--token-file %s is a symbolic link (to %s): name the file itself, --token-file %s", path, target, shellQuote(target))
			}
			if perr := tokenFileProblem(path, fi, os.Getuid()); perr != nil {
				return nil, perr
			}
		}
		return nil, fmt.Errorf("--token-file %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = tokenFileProblem(path, fi, os.Getuid())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// tokenFileProblem returns why the token file at path, described by fi,
// is not to be trusted by the user uid, or nil.
func tokenFileProblem(path string, fi fs.FileInfo, uid int) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("--token-file %s is not a regular file (it is a %s)", path, fileKind(fi.Mode()))
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("--token-file %s: cannot tell who owns it", path)
	}
	if int64(st.Uid) != int64(uid) {
		return fmt.Errorf("--token-file %s belongs to uid %d, not to uid %d that runs rsh: use a token file of your own (or, as root, run chown %d %s)",
			path, st.Uid, uid, uid, shellQuote(path))
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("--token-file %s is %s (mode %04o): run chmod 600 %s", path, accessDescription(perm), perm, shellQuote(path))
	}
	return nil
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// accessDescription says in words what group and others may do with a
// file of mode perm: "readable by others", "readable and writable by
// group and others", "writable by group, readable by others".
func accessDescription(perm fs.FileMode) string {
	verbs := func(bits fs.FileMode) string {
		var v []string
		if bits&4 != 0 {
			v = append(v, "readable")
		}
		if bits&2 != 0 {
			v = append(v, "writable")
		}
		if bits&1 != 0 {
			v = append(v, "executable")
		}
		switch len(v) {
		case 0:
			return ""
		case 1:
			return v[0]
		}
		return strings.Join(v[:len(v)-1], ", ") + " and " + v[len(v)-1]
	}
	group, others := verbs(perm>>3&7), verbs(perm&7)
	switch {
	case group == others:
		return group + " by group and others"
	case group == "":
		return others + " by others"
	case others == "":
		return group + " by group"
	}
	return group + " by group, " + others + " by others"
}

// shellQuote quotes s for a POSIX shell when it holds anything but the
// characters of an ordinary path, so a suggested command can be pasted.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,:@%=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// listenWarning returns the warning to print (after "rsh serve: ") when
// the daemon listens on addr, the listener's address for --listen, or ""
// when only this host can connect: a loopback address, or something other
// than TCP. Any other address, including 0.0.0.0 and [::] (every
// interface), can be reached from other hosts, while the API is plain
// HTTP: the bearer token and every job's script, input and results travel
// in clear text.
func listenWarning(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() {
		return ""
	}
	where := "is reachable from other hosts"
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		where = "listens on every interface"
	}
	port := strconv.Itoa(tcp.Port)
	return fmt.Sprintf("warning: %s %s, and the daemon speaks plain HTTP: the token and every job's script, input and results travel in clear text. "+
		"Listen on a loopback address (--listen 127.0.0.1:%s) and reach it from other machines through an SSH tunnel (ssh -L %s:127.0.0.1:%s HOST)",
		addr, where, port, port, port)
}

// The daemon's connection limits, set by hardenServer.
const (
	// serveReadHeaderTimeout bounds the wait for a request's line and
	// headers, which a client sends at once: 10 s covers a slow link, and a
	// connection that sends nothing, or a header a byte at a time, is
	// closed instead of held.
	serveReadHeaderTimeout = 10 * time.Second
	// serveIdleTimeout closes a keep-alive connection with no request in
	// flight. Clients make a few requests in a row and go; what stays idle
	// this long belongs to a client that went away without closing. It is
	// longer than the 90 s after which a net/http client drops an idle
	// connection by default, so such a client closes first and does not
	// send a request on a connection the daemon is closing.
	serveIdleTimeout = 2 * time.Minute
	// serveMaxHeaderBytes bounds a request's headers. The API's requests
	// carry a few short ones (the token is 71 bytes with its "Bearer "),
	// so 64 KiB is ample, and each connection can make the daemon buffer
	// that much instead of net/http's default of 1 MiB.
	serveMaxHeaderBytes = 64 << 10
)

// serverLimits are the limits hardenServer applies; tests use short ones.
type serverLimits struct {
	readHeader, idle time.Duration
	maxHeaderBytes   int
}

// apply sets the limits on srv.
func (l serverLimits) apply(srv *http.Server) {
	srv.ReadHeaderTimeout = l.readHeader
	srv.IdleTimeout = l.idle
	srv.MaxHeaderBytes = l.maxHeaderBytes
}

// hardenServer sets the daemon's connection limits on srv: a time limit
// on reading a request's headers, the time after which an idle keep-alive
// connection is closed, and a size limit on headers.
//
// It leaves ReadTimeout and WriteTimeout alone (none): a request body may
// be a long upload of a job's input, and a response may be a wait or a
// follow that is silent for minutes, so no fixed time fits a whole
// request. Uploads get an idle limit instead, through idleBody.
func hardenServer(srv *http.Server) {
	serverLimits{
		readHeader:     serveReadHeaderTimeout,
		idle:           serveIdleTimeout,
		maxHeaderBytes: serveMaxHeaderBytes,
	}.apply(srv)
}

// idleBody is jobs.IdleBody: the daemon's uploads go through it.
func idleBody(rc *http.ResponseController, r io.Reader, idle time.Duration) io.Reader {
	return jobs.IdleBody(rc, r, idle)
}
