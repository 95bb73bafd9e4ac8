package vm_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/runspaces/rsh/vm"
)

// requireTree writes, under a fresh directory:
//
//	app/main.js       the script: (name) => require(name)
//	app/lib.js, app/data.json, app/mod.cjs
//	app/.env, app/notes.txt, app/noext   files that are not code
//	app/env.js        -> .env (a link with a JS name to a file that is not)
//	app/pipe          a named pipe
//	app/out.js        -> ../outside/secret.js
//	app/loop.js <-> app/loop2.js
//	outside/secret.js
func requireTree(t *testing.T) (dir string, rs *vm.Runspace) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, src string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("app/main.js", `module.exports = (name) => require(name)`)
	write("app/lib.js", `module.exports = "lib"`)
	write("app/data.json", `{"a": 1}`)
	write("app/mod.cjs", `module.exports = "cjs"`)
	write("app/.env", "SECRET=hunter2\n")
	write("app/notes.txt", "not code\n")
	write("app/noext", "module.exports = 'noext'\n")
	write("outside/secret.js", `module.exports = "secret"`)
	for link, target := range map[string]string{
		"app/env.js":   ".env",
		"app/out.js":   "../outside/secret.js",
		"app/loop.js":  "loop2.js",
		"app/loop2.js": "loop.js",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "app", "pipe"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := vm.CompileFile(filepath.Join(dir, "app", "main.js"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := vm.NewFactory(s, vm.InitialState{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err = f.NewRunspace(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	return dir, rs
}

// require loads .js, .cjs and .json files; any other file in the roots is
// refused with an error naming the allowed extensions, before it is read.
func TestRequireExtensions(t *testing.T) {
	_, rs := requireTree(t)
	for name, want := range map[string]string{
		"./lib.js": `"lib"`, "./lib": `"lib"`, "./data.json": `{"a":1}`, "./data": `{"a":1}`, "./mod.cjs": `"cjs"`,
	} {
		if r := rs.Invoke(context.Background(), name); r.Status != vm.Success || outputs(r) != want {
			t.Errorf("require(%q) = %s %s %+v; want %s", name, r.Status, outputs(r), r.Error, want)
		}
	}
	for _, name := range []string{"./.env", "./notes.txt", "./noext", "./env.js"} {
		r := rs.Invoke(context.Background(), name)
		if r.Status != vm.Exception || !strings.Contains(r.Error.Message, "only .js, .cjs and .json files can be loaded") {
			t.Errorf("require(%q) = %s %s %+v; want an exception naming the extensions", name, r.Status, outputs(r), r.Error)
			continue
		}
		if strings.Contains(r.Error.Message, "hunter2") || strings.Contains(r.Error.Message, ".env") && name == "./env.js" {
			t.Errorf("require(%q): %s: says what the file holds or where its link leads", name, r.Error.Message)
		}
	}
}

// A file outside the roots, whether it exists or not, a link out of them,
// a named pipe and a link loop all fail as a missing file does: require is
// no oracle for what exists outside the roots.
func TestRequireMissingAndDeniedAlike(t *testing.T) {
	dir, rs := requireTree(t)
	missing := rs.Invoke(context.Background(), "./nosuch.js")
	if missing.Status != vm.Exception || missing.Error == nil {
		t.Fatalf("require of a missing file: %s %+v", missing.Status, missing.Error)
	}
	want := missing.Error.Message
	for _, name := range []string{
		"../outside/secret.js", "../outside/nosuch.js", "./out.js", "./pipe", "./loop.js",
		filepath.Join(dir, "outside", "secret.js"), "/proc/self/root" + filepath.Join(dir, "outside", "secret.js"),
	} {
		r := rs.Invoke(context.Background(), name)
		if r.Status != vm.Exception || r.Error == nil || r.Error.Message != want {
			t.Errorf("require(%q) = %s %s %+v; want the missing file's %q", name, r.Status, outputs(r), r.Error, want)
		}
	}
}

// --import of a file takes the same extensions as require.
func TestImportExtensions(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "data.txt")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := vm.Compile("test.js", dir, "(x) => x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vm.NewFactory(s, vm.InitialState{Imports: []string{"d=" + p}}); err == nil || !strings.Contains(err.Error(), "only .js, .cjs and .json files") {
		t.Errorf("import of a .txt file: err = %v; want one naming the extensions", err)
	}
}
