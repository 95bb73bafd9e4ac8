package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeToken writes data to a new file in a temporary directory with
// exactly the mode perm (whatever the umask) and returns its path.
func writeToken(t *testing.T, data string, perm fs.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTokenFileGoodModes(t *testing.T) {
	for _, perm := range []fs.FileMode{0o600, 0o400, 0o700} {
		path := writeToken(t, "  s3cret\n", perm)
		if err := checkTokenFile(path); err != nil {
			t.Errorf("mode %04o: %v", perm, err)
		}
		tok, err := readTokenFile(path)
		if err != nil || tok != "s3cret" {
			t.Errorf("mode %04o: readTokenFile = %q, %v; want s3cret", perm, tok, err)
		}
	}
}

// Every mode that lets group or others at the file is refused, with what
// they can do, the mode, and the command that fixes it; running that
// command makes the file acceptable.
func TestTokenFileBadModes(t *testing.T) {
	for _, tc := range []struct {
		perm fs.FileMode
		want string
	}{
		{0o644, "is readable by group and others (mode 0644)"},
		{0o640, "is readable by group (mode 0640)"},
		{0o604, "is readable by others (mode 0604)"},
		{0o620, "is writable by group (mode 0620)"},
		{0o602, "is writable by others (mode 0602)"},
		{0o660, "is readable and writable by group (mode 0660)"},
		{0o606, "is readable and writable by others (mode 0606)"},
		{0o664, "is readable and writable by group, readable by others (mode 0664)"},
		{0o610, "is executable by group (mode 0610)"},
		{0o601, "is executable by others (mode 0601)"},
		{0o777, "is readable, writable and executable by group and others (mode 0777)"},
		{0o044, "is readable by group and others (mode 0044)"}, // and, but for root, unreadable by its owner
	} {
		t.Run(fmt.Sprintf("%04o", tc.perm), func(t *testing.T) {
			path := writeToken(t, "s3cret\n", tc.perm)
			want := "--token-file " + path + " " + tc.want + ": run chmod 600 " + path
			err := checkTokenFile(path)
			if err == nil || err.Error() != want {
				t.Errorf("checkTokenFile = %v\nwant %s", err, want)
			}
			tok, err := readTokenFile(path)
			if err == nil || err.Error() != want || tok != "" {
				t.Errorf("readTokenFile = %q, %v\nwant %s", tok, err, want)
			}
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := checkTokenFile(path); err != nil {
				t.Errorf("after chmod 600: %v", err)
			}
		})
	}
}

func TestTokenFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		sub:  "it is a directory",
		fifo: "it is a named pipe", // and opening it did not block
	} {
		for _, err := range []error{checkTokenFile(path), func() error { _, err := readTokenFile(path); return err }()} {
			if err == nil || !strings.Contains(err.Error(), "--token-file "+path+" is not a regular file ("+want+")") {
				t.Errorf("%s: %v, want %q", path, err, want)
			}
		}
	}
}

// A link is refused even when the file it leads to would pass, and the
// error names that file.
func TestTokenFileSymlink(t *testing.T) {
	target := writeToken(t, "s3cret\n", 0o600)
	dir := t.TempDir()
	link := filepath.Join(dir, "token")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nothing"), dangling); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{link: target, dangling: filepath.Join(dir, "nothing")} {
		want := "--token-file " + link + " is a symbolic link (to " + target + "): name the file itself, --token-file " + target
		if err := checkTokenFile(link); err == nil || err.Error() != want {
			t.Errorf("checkTokenFile = %v\nwant %s", err, want)
		}
		if tok, err := readTokenFile(link); err == nil || err.Error() != want {
			t.Errorf("readTokenFile = %q, %v\nwant %s", tok, err, want)
		}
	}
}

// A file that belongs to another user is refused, with both uids. Running
// as root, the test gives a file of its own to another uid; otherwise it
// uses a file that root owns.
func TestTokenFileOwner(t *testing.T) {
	uid := os.Getuid()
	var path string
	other := 0
	if uid == 0 {
		other = 65534
		path = writeToken(t, "s3cret\n", 0o600)
		if err := os.Chown(path, other, -1); err != nil {
			t.Fatal(err)
		}
	} else {
		path = "/etc/passwd" // root's, whatever its mode: the owner is checked first
	}
	want := fmt.Sprintf("--token-file %s belongs to uid %d, not to uid %d that runs rsh: use a token file of your own (or, as root, run chown %d %s)",
		path, other, uid, uid, path)
	if err := checkTokenFile(path); err == nil || err.Error() != want {
		t.Errorf("checkTokenFile = %v\nwant %s", err, want)
	}
	if tok, err := readTokenFile(path); err == nil || err.Error() != want {
		t.Errorf("readTokenFile = %q, %v\nwant %s", tok, err, want)
	}

	// The same check on this user's own file, as seen by another uid.
	own := writeToken(t, "s3cret\n", 0o600)
	fi, err := os.Stat(own)
	if err != nil {
		t.Fatal(err)
	}
	err = tokenFileProblem(own, fi, uid+1)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("belongs to uid %d, not to uid %d", uid, uid+1)) {
		t.Errorf("tokenFileProblem for uid %d = %v", uid+1, err)
	}
}

func TestReadTokenFileContent(t *testing.T) {
	for _, tc := range []struct{ data, want, err string }{
		{"", "", "is empty"},
		{" \n\t\n", "", "is empty"},
		{"abc", "abc", ""},
		{"\n  abc  \n\n", "abc", ""},
		{strings.Repeat("a", maxTokenFileBytes), strings.Repeat("a", maxTokenFileBytes), ""},
		{strings.Repeat("a", maxTokenFileBytes+1), "", "is larger than 4096 bytes"},
	} {
		path := writeToken(t, tc.data, 0o600)
		tok, err := readTokenFile(path)
		switch {
		case tc.err == "" && (err != nil || tok != tc.want):
			t.Errorf("%.20q: %q, %v; want %.20q", tc.data, tok, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), "--token-file "+path+" "+tc.err) || tok != ""):
			t.Errorf("%.20q: %q, %v; want an error with %q", tc.data, tok, err, tc.err)
		}
	}
	// A missing file wraps fs.ErrNotExist, so the daemon can make one.
	missing := filepath.Join(t.TempDir(), "token")
	if _, err := readTokenFile(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "--token-file "+missing) {
		t.Errorf("missing file: %v; want fs.ErrNotExist with the path", err)
	}
	if err := checkTokenFile(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("checkTokenFile of a missing file: %v; want fs.ErrNotExist", err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/home/a/.local/state/rsh/token": "/home/a/.local/state/rsh/token",
		"/tmp/my token":                  "'/tmp/my token'",
		"/tmp/it's":                      `'/tmp/it'\''s'`,
		"/tmp/$HOME":                     "'/tmp/$HOME'",
		"":                               "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestListenWarning(t *testing.T) {
	quiet := []net.Addr{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7070},
		&net.TCPAddr{IP: net.IPv4(127, 8, 9, 10), Port: 7070},
		&net.TCPAddr{IP: net.IPv6loopback, Port: 7070},
		&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 7070},
		&net.UnixAddr{Name: "/run/rsh.sock", Net: "unix"},
	}
	for _, a := range quiet {
		if w := listenWarning(a); w != "" {
			t.Errorf("%s: warning %q, want none", a, w)
		}
	}
	for _, tc := range []struct {
		addr  net.Addr
		where string
	}{
		{&net.TCPAddr{IP: net.IPv4zero, Port: 7070}, "0.0.0.0:7070 listens on every interface"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 7070}, "[::]:7070 listens on every interface"},
		{&net.TCPAddr{Port: 7070}, ":7070 listens on every interface"},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 7070}, "192.0.2.1:7070 is reachable from other hosts"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 7070}, "[2001:db8::1]:7070 is reachable from other hosts"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 7070, Zone: "eth0"}, "[fe80::1%eth0]:7070 is reachable from other hosts"},
	} {
		w := listenWarning(tc.addr)
		for _, part := range []string{
			"warning: " + tc.where,
			"the token and every job's script, input and results travel in clear text",
			"--listen 127.0.0.1:7070",
			"ssh -L 7070:127.0.0.1:7070 HOST",
		} {
			if !strings.Contains(w, part) {
				t.Errorf("%s: warning %q lacks %q", tc.addr, w, part)
			}
		}
	}
}

func TestHardenServerSetsLimits(t *testing.T) {
	srv := &http.Server{}
	hardenServer(srv)
	if srv.ReadHeaderTimeout != serveReadHeaderTimeout || srv.IdleTimeout != serveIdleTimeout || srv.MaxHeaderBytes != serveMaxHeaderBytes {
		t.Errorf("limits: header %v, idle %v, header bytes %d", srv.ReadHeaderTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	if srv.ReadTimeout != 0 || srv.WriteTimeout != 0 {
		t.Errorf("ReadTimeout %v, WriteTimeout %v: long uploads and follows need none", srv.ReadTimeout, srv.WriteTimeout)
	}
}

// safetyWait bounds the wait for something that should happen within a
// fraction of a second: generous, so that a loaded machine does not fail
// the test, while a missing limit (which makes it wait for ever) does.
const safetyWait = 30 * time.Second

// startServer starts a test server for h with limits applied (or, with a
// nil apply, hardenServer's).
func startServer(t *testing.T, h http.Handler, apply func(*http.Server)) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	apply(ts.Config)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// waitClosed reads c until the server closes it, and fails if it does not
// within safetyWait.
func waitClosed(t *testing.T, r io.Reader, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(safetyWait))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not close the connection within %v", safetyWait)
	}
}

// A keep-alive connection with no request in flight is closed after the
// idle timeout.
func TestIdleConnectionClosed(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	ts := startServer(t, ok, serverLimits{readHeader: time.Hour, idle: 200 * time.Millisecond, maxHeaderBytes: 4096}.apply)
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for range 2 { // the connection is kept alive between requests
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: rsh\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" || resp.Close {
			t.Fatalf("response %s %q, close %v", resp.Status, body, resp.Close)
		}
	}
	waitClosed(t, br, c)
}

// A client that sends part of its headers and stops is cut off.
func TestSlowHeadersClosed(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	ts := startServer(t, ok, serverLimits{readHeader: 200 * time.Millisecond, idle: time.Hour, maxHeaderBytes: 4096}.apply)
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: rsh\r\n"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c, c)
}

// hardenServer's header limit: headers well past it get 431, which
// net/http's default limit would have let through.
func TestHeaderTooLarge(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	big := strings.Repeat("a", 2*serveMaxHeaderBytes)
	for _, tc := range []struct {
		name  string
		apply func(*http.Server)
		want  int
	}{
		{"hardened", hardenServer, http.StatusRequestHeaderFieldsTooLarge},
		{"default", func(*http.Server) {}, http.StatusOK},
	} {
		ts := startServer(t, ok, tc.apply)
		req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
		req.Header.Set("X-Big", big)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %s, want %d", tc.name, resp.Status, tc.want)
		}
	}
}

// uploadResult is what the upload handler saw.
type uploadResult struct {
	n   int64
	err error
	// ctxErr is the request context's error a while after the body was
	// read whole.
	ctxErr error
}

// uploadHandler reads each request's body through idleBody and reports.
// After the body's end it reads once more, as a decoder checking for
// trailing data would, and works on for longer than idle.
func uploadHandler(idle time.Duration, results chan<- uploadResult) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := idleBody(http.NewResponseController(w), r.Body, idle)
		n, err := io.Copy(io.Discard, body)
		res := uploadResult{n: n, err: err}
		if err == nil {
			if m, err := body.Read(make([]byte, 1)); m != 0 || err != io.EOF {
				res.err = fmt.Errorf("read after the end: %d, %v", m, err)
			}
			select {
			case <-time.After(2 * idle):
			case <-r.Context().Done():
			}
			res.ctxErr = r.Context().Err()
		}
		results <- res
	})
}

// upload posts what write writes, as a stream, to ts in the background.
func upload(ts *httptest.Server, write func(w *io.PipeWriter)) {
	pr, pw := io.Pipe()
	go write(pw)
	go func() {
		resp, err := ts.Client().Post(ts.URL, "application/octet-stream", pr)
		if err == nil {
			resp.Body.Close()
		}
		pr.CloseWithError(errors.New("request done"))
	}()
}

// An upload that stalls for the idle time fails with a timeout.
func TestIdleBodyStalled(t *testing.T) {
	const idle = 200 * time.Millisecond
	results := make(chan uploadResult, 1)
	ts := startServer(t, uploadHandler(idle, results), hardenServer)
	stalled := make(chan struct{})
	defer close(stalled)
	upload(ts, func(pw *io.PipeWriter) {
		pw.Write([]byte("the first chunk"))
		<-stalled // then nothing, until the test ends
		pw.CloseWithError(errors.New("test over"))
	})
	select {
	case res := <-results:
		var ne net.Error
		if !errors.Is(res.err, os.ErrDeadlineExceeded) || !errors.As(res.err, &ne) || !ne.Timeout() {
			t.Fatalf("stalled upload: %d bytes, %v; want a timeout", res.n, res.err)
		}
		if !strings.Contains(res.err.Error(), "upload stalled: nothing received for 200ms") {
			t.Errorf("error %q does not say the upload stalled", res.err)
		}
		if res.n != int64(len("the first chunk")) {
			t.Errorf("read %d bytes before the stall, want %d", res.n, len("the first chunk"))
		}
	case <-time.After(safetyWait):
		t.Fatalf("the stalled upload was still being read after %v", safetyWait)
	}
}

// An upload that never pauses for the idle time goes on, however long it
// takes in all, and the request's context outlives the upload.
func TestIdleBodyFlowing(t *testing.T) {
	// Chunks every 10 ms, against an idle limit 50 times longer, for 3
	// idle times in all.
	const (
		idle   = 500 * time.Millisecond
		every  = 10 * time.Millisecond
		chunks = 150
		size   = 1 << 10
	)
	results := make(chan uploadResult, 1)
	ts := startServer(t, uploadHandler(idle, results), hardenServer)
	start := time.Now()
	upload(ts, func(pw *io.PipeWriter) {
		chunk := make([]byte, size)
		for range chunks {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
			time.Sleep(every)
		}
		pw.Close()
	})
	select {
	case res := <-results:
		if res.err != nil || res.n != chunks*size {
			t.Fatalf("flowing upload: %d bytes, %v; want %d bytes", res.n, res.err, chunks*size)
		}
		if took := time.Since(start); took < 2*idle {
			t.Errorf("the upload took %v, less than twice the idle limit: the test proves nothing", took)
		}
		if res.ctxErr != nil {
			t.Errorf("after the upload, the request's context ended: %v", res.ctxErr)
		}
	case <-time.After(safetyWait):
		t.Fatalf("the upload did not end within %v", safetyWait)
	}
}

// Without a connection that takes deadlines (a ResponseRecorder), the body
// is read without a limit.
func TestIdleBodyNoDeadlines(t *testing.T) {
	rc := http.NewResponseController(httptest.NewRecorder())
	got, err := io.ReadAll(idleBody(rc, strings.NewReader("all of it"), time.Millisecond))
	if err != nil || string(got) != "all of it" {
		t.Errorf("read %q, %v", got, err)
	}
}
