package fs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/require"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/builtins/fs"
	"github.com/runspaces/rsh/internal/testutil"
)

// newRuntime returns a runtime where require('fs') is bound to an Env with
// perms.
func newRuntime(t *testing.T, perms builtins.Permissions) (*goja.Runtime, *builtins.Env) {
	t.Helper()
	env := &builtins.Env{Permissions: &perms}
	rt := goja.New()
	registry := require.NewRegistry()
	registry.RegisterNativeModule(fs.ModuleName, fs.Require(env))
	registry.Enable(rt)
	return rt, env
}

// dirs returns a fresh temporary directory with its links resolved (so
// resolved paths compare equal on macOS too) and, inside it, the directories
// "a" (the allowed root), "ab" (next to it, sharing its prefix) and
// "outside", each holding secret.txt.
func dirs(t *testing.T) (base, a string) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "ab", "outside"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, d, "secret.txt"), []byte("secret in "+d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return base, filepath.Join(base, "a")
}

func rw(roots ...string) builtins.Permissions {
	return builtins.Permissions{
		Read:  builtins.PathPermission{Roots: roots},
		Write: builtins.PathPermission{Roots: roots},
	}
}

// TestDenied calls every function without permission: each must throw
// PermissionDenied naming the flag, and leave the file system alone.
func TestDenied(t *testing.T) {
	base, a := dirs(t)
	target := filepath.Join(a, "secret.txt")
	newFile := filepath.Join(a, "new.txt")
	tests := []struct {
		call string
		flag string
	}{
		{`fs.readFile(p)`, "--allow-read=" + target},
		{`fs.readBytes(p)`, "--allow-read=" + target},
		{`fs.stat(p)`, "--allow-read=" + target},
		{`fs.readDir(dir)`, "--allow-read=" + a},
		{`fs.walk(dir)`, "--allow-read=" + a},
		{`fs.exists(p)`, "--allow-read=" + target},
		{`fs.exists(newFile)`, "--allow-read=" + newFile},
		{`fs.writeFile(p, "x")`, "--allow-write=" + target},
		{`fs.writeFile(newFile, "x")`, "--allow-write=" + newFile},
		{`fs.appendFile(p, "x")`, "--allow-write=" + target},
		{`fs.mkdir(dir + "/sub")`, "--allow-write=" + filepath.Join(a, "sub")},
		{`fs.remove(p)`, "--allow-write=" + target},
		{`fs.remove(dir, {recursive: true})`, "--allow-write=" + a},
	}
	for _, perms := range []struct {
		name string
		p    builtins.Permissions
	}{
		{"zero", builtins.Permissions{}},
		{"other root", rw(filepath.Join(base, "ab"))},
	} {
		for _, tt := range tests {
			t.Run(perms.name+"/"+tt.call, func(t *testing.T) {
				rt, _ := newRuntime(t, perms.p)
				_ = rt.Set("p", target)
				_ = rt.Set("dir", a)
				_ = rt.Set("newFile", newFile)
				name, msg := testutil.Throws(t, rt, "const fs = require('fs'); "+tt.call)
				if name != "PermissionDenied" || !strings.HasSuffix(msg, "run again with "+tt.flag) {
					t.Errorf("threw %s: %s; want PermissionDenied naming %s", name, msg, tt.flag)
				}
				checkFile(t, target, "secret in a")
				for _, p := range []string{newFile, filepath.Join(a, "sub")} {
					if _, err := os.Lstat(p); err == nil {
						t.Errorf("%s was created", p)
					}
				}
			})
		}
	}
}

func checkFile(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != want {
		t.Errorf("%s holds %q, %v; want %q", path, b, err, want)
	}
}

func TestReadWriteText(t *testing.T) {
	_, a := dirs(t)
	rt, _ := newRuntime(t, rw(a))
	_ = rt.Set("dir", a)
	v := testutil.Run(t, rt, `
		const fs = require('fs');
		fs.writeFile(dir + '/new.txt', 'héllo');
		fs.appendFile(dir + '/new.txt', ', wörld');
		fs.appendFile(dir + '/created-by-append.txt', 'x');
		fs.readFile(dir + '/new.txt');
	`)
	if got := v.Export(); got != "héllo, wörld" {
		t.Errorf("readFile = %q; want %q", got, "héllo, wörld")
	}
	checkFile(t, filepath.Join(a, "new.txt"), "héllo, wörld")
	checkFile(t, filepath.Join(a, "created-by-append.txt"), "x")
	fi, err := os.Stat(filepath.Join(a, "new.txt"))
	if err != nil || fi.Mode().Perm()&^0o644 != 0 {
		t.Errorf("new.txt mode = %v, %v; want at most 0644", fi.Mode(), err)
	}
	testutil.Run(t, rt, `fs.writeFile(dir + '/new.txt', 'short')`)
	checkFile(t, filepath.Join(a, "new.txt"), "short")
}

func TestBytesRoundTrip(t *testing.T) {
	_, a := dirs(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	tests := []struct {
		name string
		data string // A JS expression.
		want []byte
	}{
		{"Uint8Array", `Uint8Array.from({length: 256}, (_, i) => i)`, all},
		{"ArrayBuffer", `Uint8Array.from({length: 256}, (_, i) => i).buffer`, all},
		{"subarray window", `Uint8Array.from({length: 256}, (_, i) => i).subarray(10, 13)`, []byte{10, 11, 12}},
		{"DataView window", `new DataView(Uint8Array.from({length: 256}, (_, i) => i).buffer, 250, 3)`, []byte{250, 251, 252}},
		{"Int16Array", `new Int16Array([0x0201, 0x0403])`, []byte{1, 2, 3, 4}}, // Little-endian hosts.
		{"string as UTF-8", `'é'`, []byte{0xc3, 0xa9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, _ := newRuntime(t, rw(a))
			_ = rt.Set("p", filepath.Join(a, "bin"))
			testutil.Run(t, rt, `require('fs').writeFile(p, `+tt.data+`)`)
			got, err := os.ReadFile(filepath.Join(a, "bin"))
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("file holds %v, %v; want %v", got, err, tt.want)
			}
			v := testutil.Run(t, rt, `const b = require('fs').readBytes(p); [b instanceof Uint8Array, Array.from(b)]`)
			var res []any
			if err := rt.ExportTo(v, &res); err != nil {
				t.Fatal(err)
			}
			if res[0] != true {
				t.Errorf("readBytes did not return a Uint8Array")
			}
			back := res[1].([]any)
			if len(back) != len(tt.want) {
				t.Fatalf("readBytes returned %d bytes; want %d", len(back), len(tt.want))
			}
			for i, x := range back {
				if x.(int64) != int64(tt.want[i]) {
					t.Fatalf("readBytes()[%d] = %v; want %d", i, x, tt.want[i])
				}
			}
		})
	}
}

// TestEscapes checks that neither .. nor a link nor a shared name prefix
// lets a script out of its root, for reading or writing.
func TestEscapes(t *testing.T) {
	base, a := dirs(t)
	outside := filepath.Join(base, "outside")
	for link, target := range map[string]string{
		"link-out":    filepath.Join(outside, "secret.txt"),
		"dirlink-out": outside,
		"dangling":    filepath.Join(outside, "created.txt"),
	} {
		if err := os.Symlink(target, filepath.Join(a, link)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, call string
	}{
		{"dotdot read", `fs.readFile(dir + '/../outside/secret.txt')`},
		{"dotdot write", `fs.writeFile(dir + '/../outside/secret.txt', 'pwned')`},
		{"dotdot new file", `fs.writeFile(dir + '/../outside/created.txt', 'pwned')`},
		{"link read", `fs.readFile(dir + '/link-out')`},
		{"link write", `fs.writeFile(dir + '/link-out', 'pwned')`},
		{"link append", `fs.appendFile(dir + '/link-out', 'pwned')`},
		{"link stat", `fs.stat(dir + '/link-out')`},
		{"link exists", `fs.exists(dir + '/link-out')`},
		{"dir link read", `fs.readFile(dir + '/dirlink-out/secret.txt')`},
		{"dir link list", `fs.readDir(dir + '/dirlink-out')`},
		{"dir link walk", `fs.walk(dir + '/dirlink-out')`},
		{"dir link write", `fs.writeFile(dir + '/dirlink-out/secret.txt', 'pwned')`},
		{"dir link new file", `fs.writeFile(dir + '/dirlink-out/created.txt', 'pwned')`},
		{"dir link mkdir", `fs.mkdir(dir + '/dirlink-out/newdir')`},
		{"dir link remove", `fs.remove(dir + '/dirlink-out/secret.txt')`},
		{"dangling link write", `fs.writeFile(dir + '/dangling', 'pwned')`},
		{"prefix trap read", `fs.readFile(dir + 'b/secret.txt')`},
		{"prefix trap write", `fs.writeFile(dir + 'b/secret.txt', 'pwned')`},
		{"prefix trap new file", `fs.writeFile(dir + 'b/created.txt', 'pwned')`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, _ := newRuntime(t, rw(a))
			_ = rt.Set("dir", a)
			name, msg := testutil.Throws(t, rt, "const fs = require('fs'); "+tt.call)
			if name != "PermissionDenied" {
				t.Errorf("threw %s: %s; want PermissionDenied", name, msg)
			}
			checkFile(t, filepath.Join(outside, "secret.txt"), "secret in outside")
			checkFile(t, filepath.Join(base, "ab", "secret.txt"), "secret in ab")
			for _, p := range []string{filepath.Join(outside, "created.txt"), filepath.Join(base, "ab", "created.txt"), filepath.Join(outside, "newdir")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was created", p)
				}
			}
		})
	}
}

// TestAllowed checks that the operations work inside a root, including
// through .. and links that stay inside it.
func TestAllowed(t *testing.T) {
	_, a := dirs(t)
	if err := os.Symlink(filepath.Join(a, "secret.txt"), filepath.Join(a, "link-in")); err != nil {
		t.Fatal(err)
	}
	rt, _ := newRuntime(t, rw(a))
	_ = rt.Set("dir", a)
	v := testutil.Run(t, rt, `
		const fs = require('fs');
		fs.mkdir(dir + '/x/y/z');
		fs.writeFile(dir + '/x/y/z/new.txt', 'new');
		fs.writeFile(dir + '/x/../top.txt', 'top');
		[fs.readFile(dir + '/link-in'), fs.readFile(dir + '/x/y/z/new.txt'), fs.readFile(dir + '/top.txt'),
		 fs.exists(dir + '/x/y'), fs.exists(dir + '/nope'), fs.exists(dir + '/top.txt/nope')].join('|');
	`)
	if got, want := v.String(), "secret in a|new|top|true|false|false"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestStat(t *testing.T) {
	_, a := dirs(t)
	if err := os.Symlink(filepath.Join(a, "secret.txt"), filepath.Join(a, "link-in")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(a, "secret.txt"), 0o640); err != nil {
		t.Fatal(err)
	}
	rt, _ := newRuntime(t, rw(a))
	_ = rt.Set("dir", a)
	v := testutil.Run(t, rt, `
		const fs = require('fs');
		const s = (p) => {
			const st = fs.stat(p);
			return [st.path === p, st.name, st.isDir ? 'dir' : st.size, st.isDir, st.isFile, st.isSymlink, st.mode.toString(8),
				/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(st.modified), Object.getPrototypeOf(st) === Object.prototype].join(' ');
		};
		[s(dir + '/secret.txt'), s(dir + '/link-in'), s(dir)].join('|');
	`)
	want := "true secret.txt 11 false true false 640 true true|" +
		"true link-in 11 false true true 640 true true|" +
		"true a dir true false false 755 true true"
	if got := v.String(); got != want {
		t.Errorf("stat = %q; want %q", got, want)
	}
	name, msg := testutil.Throws(t, rt, `fs.stat(dir + '/nope')`)
	if name != "Error" || !strings.HasPrefix(msg, "fs.stat "+a+"/nope: ") {
		t.Errorf("stat of a missing file threw %s: %s; want Error starting fs.stat PATH:", name, msg)
	}
}

func TestReadDir(t *testing.T) {
	_, a := dirs(t)
	for _, f := range []struct{ name, data string }{{"b.txt", "bb"}, {"c.txt", "ccc"}, {"A.txt", "a"}} {
		if err := os.WriteFile(filepath.Join(a, f.name), []byte(f.data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(a, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	rt, _ := newRuntime(t, rw(a))
	_ = rt.Set("dir", a)
	v := testutil.Run(t, rt, `
		const l = require('fs').readDir(dir);
		Array.isArray(l) + ':' + l.map(e => [e.name, e.isDir ? 'dir' : e.size, e.path === dir + '/' + e.name, typeof e.modified].join(' ')).join('|');
	`)
	want := "true:A.txt 1 true string|b.txt 2 true string|c.txt 3 true string|d dir true string|secret.txt 11 true string"
	if got := v.String(); got != want {
		t.Errorf("readDir = %q; want %q", got, want)
	}
}

func TestWalk(t *testing.T) {
	base, a := dirs(t) // a/secret.txt is 11 bytes.
	files := map[string]int{
		"one.txt":        100,
		"sub/two.txt":    20,
		"sub/three.txt":  3,
		"sub/deep/4.txt": 4000,
		"empty/.keep":    0,
	}
	for name, size := range files {
		p := filepath.Join(a, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A link to a big directory outside: walk must not follow it.
	if err := os.WriteFile(filepath.Join(base, "outside", "big"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "outside"), filepath.Join(a, "zlink")); err != nil {
		t.Fatal(err)
	}
	rt, _ := newRuntime(t, rw(a))
	_ = rt.Set("dir", a)
	v := testutil.Run(t, rt, `
		const w = require('fs').walk(dir);
		Array.isArray(w) + '\n' + w.map(e => [e.path.slice(dir.length) || '.', e.isDir ? 'd' : 'f', e.size, e.isSymlink ? 'l' : '-'].join(' ')).join('\n');
	`)
	want := strings.Join([]string{
		"true",
		". d 4134 -", // 100 + 20 + 3 + 4000 + 0 + 11
		"/empty d 0 -",
		"/empty/.keep f 0 -",
		"/one.txt f 100 -",
		"/secret.txt f 11 -",
		"/sub d 4023 -",
		"/sub/deep d 4000 -",
		"/sub/deep/4.txt f 4000 -",
		"/sub/three.txt f 3 -",
		"/sub/two.txt f 20 -",
		fmt.Sprintf("/zlink f %d l", len(filepath.Join(base, "outside"))),
	}, "\n")
	if got := v.String(); got != want {
		t.Errorf("walk =\n%s\nwant\n%s", got, want)
	}
	// A file walks to itself.
	v = testutil.Run(t, rt, `JSON.stringify(require('fs').walk(dir + '/one.txt').map(e => [e.path, e.size, e.isDir]))`)
	if got, want := v.String(), fmt.Sprintf(`[[%q,100,false]]`, filepath.Join(a, "one.txt")); got != want {
		t.Errorf("walk(file) = %s; want %s", got, want)
	}
}

// TestWalkCancelled checks that a walk stops when the item's context is
// done, as when the item times out.
func TestWalkCancelled(t *testing.T) {
	_, a := dirs(t)
	rt, env := newRuntime(t, rw(a))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env.SetContext(ctx)
	_ = rt.Set("dir", a)
	name, msg := testutil.Throws(t, rt, `require('fs').walk(dir)`)
	if name != "Error" || msg != "fs.walk "+a+": context canceled" {
		t.Errorf("walk threw %s: %s; want Error: fs.walk %s: context canceled", name, msg, a)
	}
	env.SetContext(context.Background())
	testutil.Run(t, rt, `require('fs').walk(dir)`)
}

func TestMkdirRemove(t *testing.T) {
	base, a := dirs(t)
	if err := os.Symlink(filepath.Join(base, "outside", "secret.txt"), filepath.Join(a, "link-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "outside"), filepath.Join(a, "dirlink-out")); err != nil {
		t.Fatal(err)
	}
	rt, _ := newRuntime(t, rw(a))
	_ = rt.Set("dir", a)
	testutil.Run(t, rt, `
		const fs = require('fs');
		fs.mkdir(dir + '/p/q');            // recursive by default
		fs.mkdir(dir + '/p/q');            // and an existing directory is fine
		fs.mkdir(dir + '/p/r', {recursive: false});
		fs.writeFile(dir + '/p/q/f', 'x');
		fs.remove(dir + '/p/r');           // an empty directory
		fs.remove(dir + '/secret.txt');    // a file
		fs.remove(dir + '/link-out');      // a link, not its target outside the root
		fs.remove(dir + '/dirlink-out', {recursive: true});
	`)
	for _, p := range []string{"p/r", "secret.txt", "link-out", "dirlink-out"} {
		if _, err := os.Lstat(filepath.Join(a, p)); err == nil {
			t.Errorf("%s still exists", p)
		}
	}
	checkFile(t, filepath.Join(a, "p", "q", "f"), "x")
	checkFile(t, filepath.Join(base, "outside", "secret.txt"), "secret in outside")

	for _, tt := range []struct{ call, prefix string }{
		{`fs.mkdir(dir + '/m/n', {recursive: false})`, "fs.mkdir " + a + "/m/n: "},
		{`fs.remove(dir + '/p')`, "fs.remove " + a + "/p: "},
		{`fs.remove(dir + '/nope')`, "fs.remove " + a + "/nope: "},
		{`fs.remove(dir + '/nope', {recursive: true})`, "fs.remove " + a + "/nope: "},
		{`fs.readFile(dir + '/nope')`, "fs.readFile " + a + "/nope: "},
		{`fs.readDir(dir + '/p/q/f')`, "fs.readDir " + a + "/p/q/f: "},
	} {
		name, msg := testutil.Throws(t, rt, tt.call)
		if name != "Error" || !strings.HasPrefix(msg, tt.prefix) {
			t.Errorf("%s threw %s: %s; want Error starting %q", tt.call, name, msg, tt.prefix)
		}
	}
	testutil.Run(t, rt, `fs.remove(dir + '/p', {recursive: true})`)
	if _, err := os.Lstat(filepath.Join(a, "p")); err == nil {
		t.Error("p still exists after a recursive remove")
	}
}

func TestBadArguments(t *testing.T) {
	_, a := dirs(t)
	rt, _ := newRuntime(t, rw(a))
	_ = rt.Set("dir", a)
	testutil.Run(t, rt, `const fs = require('fs')`)
	for _, tt := range []struct{ call, msg string }{
		{`fs.readFile(42)`, "fs.readFile: path must be a string, not number"},
		{`fs.readFile()`, "fs.readFile: path must be a string, not undefined"},
		{`fs.writeFile(dir + '/x', 42)`, "data must be a string, ArrayBuffer, typed array or DataView, not number"},
		{`fs.writeFile(dir + '/x', {})`, "data must be a string, ArrayBuffer, typed array or DataView, not Object"},
		{`fs.writeFile(dir + '/x', [1, 2])`, "data must be a string, ArrayBuffer, typed array or DataView, not Array"},
	} {
		name, msg := testutil.Throws(t, rt, tt.call)
		if name != "TypeError" || !strings.HasSuffix(msg, tt.msg) {
			t.Errorf("%s threw %s: %s; want TypeError ending %q", tt.call, name, msg, tt.msg)
		}
	}
	if _, err := os.Lstat(filepath.Join(a, "x")); err == nil {
		t.Error("a bad writeFile created its file")
	}
}

func TestEnable(t *testing.T) {
	_, a := dirs(t)
	perms := rw(a)
	rt := goja.New()
	fs.Enable(rt, &builtins.Env{Permissions: &perms})
	_ = rt.Set("dir", a)
	if got := testutil.Run(t, rt, `fs.readFile(dir + '/secret.txt')`).String(); got != "secret in a" {
		t.Errorf("fs.readFile = %q; want %q", got, "secret in a")
	}
	rt = goja.New()
	fs.Enable(rt, nil) // A nil Env denies everything.
	_ = rt.Set("dir", a)
	if name, _ := testutil.Throws(t, rt, `fs.readFile(dir + '/secret.txt')`); name != "PermissionDenied" {
		t.Errorf("with a nil Env, readFile threw %s; want PermissionDenied", name)
	}
}

func ExampleRequire() {
	dir, err := os.MkdirTemp("", "rsh-fs-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	env := &builtins.Env{Permissions: &builtins.Permissions{
		Read:  builtins.PathPermission{Roots: []string{dir}},
		Write: builtins.PathPermission{Roots: []string{dir}},
	}}
	rt := goja.New()
	registry := require.NewRegistry()
	registry.RegisterNativeModule(fs.ModuleName, fs.Require(env))
	registry.Enable(rt)
	_ = rt.Set("dir", dir)

	v, err := rt.RunString(`
		const fs = require('fs');
		fs.writeFile(dir + '/hello.txt', 'hello');
		let msg;
		try { fs.readFile('/etc/hostname'); } catch (e) { msg = e.name; }
		fs.readFile(dir + '/hello.txt') + ' ' + fs.walk(dir)[0].size + ' ' + msg;
	`)
	if err != nil {
		panic(err)
	}
	fmt.Println(v)
	// Output: hello 5 PermissionDenied
}
