package fs_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dop251/goja"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/internal/testutil"
)

// hangGuard is how long a call that must return at once may take before
// the test gives up on it: opening a named pipe without the fix blocks
// for ever, and a test should fail rather than hang.
const hangGuard = 30 * time.Second

// throwsSoon is testutil.Throws run under hangGuard.
func throwsSoon(t *testing.T, rt *goja.Runtime, src string) (name, msg string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		v, err := rt.RunString(src)
		ex, ok := err.(*goja.Exception)
		if !ok {
			msg = "no exception: " + v.String()
			return
		}
		o := ex.Value().ToObject(rt)
		name, msg = o.Get("name").String(), o.Get("message").String()
	}()
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatalf("%s: still blocked after %s", src, hangGuard)
	}
	return name, msg
}

// Contents of named pipes and devices are refused at once with a clear
// error, for reading and for writing; the entries can still be described.
func TestNotRegular(t *testing.T) {
	_, a := dirs(t)
	fifo := filepath.Join(a, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	rt, _ := newRuntime(t, builtins.Permissions{
		Read:  builtins.PathPermission{Roots: []string{a, "/dev"}},
		Write: builtins.PathPermission{Roots: []string{a, "/dev"}},
	})
	_ = rt.Set("fifo", fifo)
	_ = rt.Set("dir", a)
	testutil.Run(t, rt, `const fs = require('fs')`)
	for _, tt := range []struct{ call, kind string }{
		{`fs.readFile(fifo)`, "fifo"},
		{`fs.readBytes(fifo)`, "fifo"},
		{`fs.writeFile(fifo, "x")`, "fifo"},
		{`fs.appendFile(fifo, "x")`, "fifo"},
		{`fs.readFile("/dev/zero")`, "char-device"},
		{`fs.readBytes("/dev/zero")`, "char-device"},
		{`fs.readFile("/dev/null")`, "char-device"},
		{`fs.writeFile("/dev/null", "x")`, "char-device"},
		{`fs.readFile(dir)`, "directory"},
	} {
		name, msg := throwsSoon(t, rt, tt.call)
		if name != "Error" || !strings.Contains(msg, "not a regular file (a "+tt.kind+")") {
			t.Errorf("%s threw %s: %s; want Error: ... not a regular file (a %s) ...", tt.call, name, msg, tt.kind)
		}
	}
	v := testutil.Run(t, rt, `[
		fs.stat(fifo).type, fs.stat(fifo).isFile, fs.stat("/dev/null").type, fs.stat(dir).type,
		fs.stat(dir + "/secret.txt").type, fs.exists(fifo),
		fs.readDir(dir).map(e => e.name + ":" + e.type).join(","),
		fs.walk(dir).map(e => e.path.slice(dir.length) + ":" + e.type).join(","),
	].join("|")`)
	want := "fifo|false|char-device|dir|file|true|pipe:fifo,secret.txt:file|:dir,/pipe:fifo,/secret.txt:file"
	if got := v.String(); got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// The type of a link found by readDir and walk is "symlink": they do not
// follow links.
func TestTypeOfLink(t *testing.T) {
	_, a := dirs(t)
	if err := os.Symlink("secret.txt", filepath.Join(a, "link")); err != nil {
		t.Fatal(err)
	}
	rt, _ := newRuntime(t, rw(a))
	_ = rt.Set("dir", a)
	v := testutil.Run(t, rt, `const fs = require('fs');
		[fs.readDir(dir)[0].type, fs.walk(dir)[1].type, fs.stat(dir + "/link").type].join(" ")`)
	if got, want := v.String(), "symlink symlink file"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// A failure names the path as the script gave it, never the path a link
// in it led to.
func TestErrorsNameThePathGiven(t *testing.T) {
	_, a := dirs(t)
	if err := os.Mkdir(filepath.Join(a, "hidden-target"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hidden-target/nope", filepath.Join(a, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hidden-target", filepath.Join(a, "dirlink")); err != nil {
		t.Fatal(err)
	}
	rt, _ := newRuntime(t, rw(a))
	_ = rt.Set("dir", a)
	testutil.Run(t, rt, `const fs = require('fs')`)
	for _, call := range []string{
		`fs.readFile(dir + "/link")`,
		`fs.stat(dir + "/link")`,
		`fs.readDir(dir + "/link")`,
		`fs.remove(dir + "/dirlink/nope")`,
		`fs.mkdir(dir + "/dirlink/x/y", {recursive: false})`,
	} {
		name, msg := testutil.Throws(t, rt, call)
		if name != "Error" || strings.Contains(msg, "hidden-target") || !strings.Contains(msg, "no such file or directory") {
			t.Errorf("%s threw %s: %s; want an Error that does not name the link's target", call, name, msg)
		}
	}
}

// readFile returns whole files: large ones, and those that report no
// size, as /proc files do.
func TestReadWholeFiles(t *testing.T) {
	_, a := dirs(t)
	big := strings.Repeat("0123456789", 100_000)
	if err := os.WriteFile(filepath.Join(a, "big"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, _ := newRuntime(t, builtins.Permissions{Read: builtins.PathPermission{All: true}})
	_ = rt.Set("dir", a)
	v := testutil.Run(t, rt, `const fs = require('fs');
		[fs.readFile(dir + "/big").length, fs.readBytes(dir + "/big").length, fs.stat("/proc/self/status").size,
		 /^Name:/.test(fs.readFile("/proc/self/status")), fs.readFile("/proc/self/status").includes("\nPid:")].join(" ")`)
	if got, want := v.String(), "1000000 1000000 0 true true"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}
