package fs_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dop251/goja"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/builtins/fs"
	"github.com/runspaces/rsh/internal/testutil"
)

// raceReads is how many reads race the link swapping. On a build that
// checked the ceiling on a second resolution of the path, a few hundred
// were enough to read outside the ceiling; 2,000 keep the test under a
// second.
const raceReads = 2000

// A job allowed to read everything, under a ceiling of one directory,
// reads a path whose middle directory another goroutine keeps swapping
// between a link inside the ceiling and a link outside it. Every read
// gets the inside file or fails: none reads the outside one.
func TestCeilingSwapRace(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(base, "allowed")
	inside := filepath.Join(allowed, "real")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{inside, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(inside, "data.txt"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "data.txt"), []byte("SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(allowed, "sub")
	if err := os.Symlink(inside, sub); err != nil {
		t.Fatal(err)
	}
	perms := builtins.Permissions{
		Read:    builtins.PathPermission{All: true},
		Ceiling: &builtins.Permissions{Read: builtins.PathPermission{Roots: []string{allowed}}},
	}
	rt, _ := newRuntime(t, perms)
	read, ok := goja.AssertFunction(testutil.Run(t, rt, `(p) => require("fs").readFile(p)`))
	if !ok {
		t.Fatal("not a function")
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Each rename replaces the link at sub in one step.
		tmp := filepath.Join(allowed, "tmp")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			target := inside
			if i%2 == 0 {
				target = outside
			}
			if err := os.Symlink(target, tmp); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, sub); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	path := rt.ToValue(filepath.Join(sub, "data.txt"))
	var leaks, got int
	for range raceReads {
		v, err := read(goja.Undefined(), path)
		if err != nil {
			if strings.Contains(err.Error(), "SECRET") {
				leaks++
			}
			continue
		}
		switch v.String() {
		case "SECRET":
			leaks++
		case "inside":
			got++
		}
	}
	close(stop)
	wg.Wait()
	if leaks > 0 {
		t.Fatalf("%d of %d reads got the file outside the ceiling", leaks, raceReads)
	}
	if got == 0 {
		t.Fatalf("no read of %d got the inside file: the test raced nothing", raceReads)
	}
}

// Reading an allowed directory itself (readDir, walk) is confined to that
// directory, not to its parent: the directory swapped for a link to a
// sibling after the check does not list the sibling.
func TestReadRootItselfConfined(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "root")
	sibling := filepath.Join(base, "sibling")
	for _, f := range []string{filepath.Join(root, "mine.txt"), filepath.Join(sibling, "SECRET.txt")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	swap := func() {
		if err := os.Rename(root, root+"-old"); err != nil {
			t.Fatal(err)
		}
		// Relative, so that it stays inside the root's parent.
		if err := os.Symlink(filepath.Base(sibling), root); err != nil {
			t.Fatal(err)
		}
	}
	unswap := func() {
		os.Remove(root)
		os.Rename(root+"-old", root)
	}
	perms := builtins.Permissions{Read: builtins.PathPermission{Roots: []string{root}}}
	for _, fn := range []string{"readDir", "walk"} {
		t.Run(fn, func(t *testing.T) {
			src := `JSON.stringify(require("fs").` + fn + `(` + jsString(root) + `))`
			rt, _ := newRuntime(t, perms)
			fs.SetAfterCheck(swap)
			defer fs.SetAfterCheck(nil)
			defer unswap()
			v, err := rt.RunString(src)
			if err == nil && strings.Contains(v.String(), "SECRET") || err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("listed the sibling of the root: %v, %v", v, err)
			}
			if err != nil || !strings.Contains(v.String(), "mine.txt") {
				t.Fatalf("= %v, %v; want the root's own entries", v, err)
			}
		})
	}
}
