package fs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/builtins/fs"
	"github.com/runspaces/rsh/internal/testutil"
)

// A directory swapped for a link to somewhere outside the allowed root,
// between the permission check and the operation, does not take the
// operation outside: reads fail instead of reading the outside file, and
// writes fail instead of creating one there.
func TestSwapBetweenCheckAndUse(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(base, "allowed")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(allowed, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(allowed, "sub", "data.txt"), "inside")
	write(filepath.Join(outside, "data.txt"), "SECRET")

	swap := func() {
		sub := filepath.Join(allowed, "sub")
		if err := os.Rename(sub, sub+"-old"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, sub); err != nil {
			t.Fatal(err)
		}
	}
	unswap := func() {
		sub := filepath.Join(allowed, "sub")
		os.Remove(sub)
		os.Rename(sub+"-old", sub)
	}
	perms := builtins.Permissions{
		Read:  builtins.PathPermission{Roots: []string{allowed}},
		Write: builtins.PathPermission{Roots: []string{allowed}},
	}
	for _, tc := range []struct {
		name, src string
	}{
		{"read", `require("fs").readFile(` + jsString(filepath.Join(allowed, "sub", "data.txt")) + `)`},
		{"write", `require("fs").writeFile(` + jsString(filepath.Join(allowed, "sub", "new.txt")) + `, "x")`},
		{"stat", `require("fs").stat(` + jsString(filepath.Join(allowed, "sub", "data.txt")) + `).size`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, _ := newRuntime(t, perms)
			fs.SetAfterCheck(swap)
			defer fs.SetAfterCheck(nil)
			defer unswap()
			v, err := rt.RunString(tc.src)
			if err == nil {
				t.Fatalf("%s went through the swapped link: %v", tc.name, v)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("read the outside file: %v", err)
			}
			if _, err := os.Stat(filepath.Join(outside, "new.txt")); err == nil {
				t.Fatal("a file was created outside the allowed root")
			}
		})
	}
	// Without a swap the same calls work.
	rt, _ := newRuntime(t, perms)
	if got := testutil.Run(t, rt, `require("fs").readFile(`+jsString(filepath.Join(allowed, "sub", "data.txt"))+`)`).String(); got != "inside" {
		t.Fatalf("read %q", got)
	}
}

func jsString(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}
