package builtins_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/runspaces/rsh/builtins"
)

// tree builds, under a fresh temporary directory (with its own links
// resolved, as on macOS where /tmp is a link), the layout the path tests use:
//
//	a/file.txt
//	a/sub/deep.txt
//	a/link-in        -> a/file.txt
//	a/link-out       -> outside/secret.txt
//	a/dirlink-out    -> outside
//	a/dangling       -> outside/new.txt (does not exist)
//	a/danglingdir    -> outside/nodir (does not exist)
//	a/rel-out        -> ../outside (relative)
//	ab/secret.txt    (the /tmp/ab vs /tmp/a prefix trap)
//	outside/secret.txt
//	a/to-loop        -> loop1
//	rootlink         -> a
//	loop1 <-> loop2  (a link loop)
func tree(t *testing.T) string {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	j := func(p string) string { return filepath.Join(base, filepath.FromSlash(p)) }
	for _, d := range []string{"a/sub", "ab", "outside"} {
		if err := os.MkdirAll(j(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a/file.txt", "a/sub/deep.txt", "ab/secret.txt", "outside/secret.txt"} {
		if err := os.WriteFile(j(f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"a/link-in":     j("a/file.txt"),
		"a/link-out":    j("outside/secret.txt"),
		"a/dirlink-out": j("outside"),
		"a/dangling":    j("outside/new.txt"),
		"a/danglingdir": j("outside/nodir"),
		"a/rel-out":     filepath.FromSlash("../outside"),
		"a/to-loop":     j("loop1"),
		"rootlink":      j("a"),
		"loop1":         j("loop2"),
		"loop2":         j("loop1"),
	} {
		if err := os.Symlink(target, j(link)); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

func TestCheckPath(t *testing.T) {
	base := tree(t)
	j := func(p string) string { return filepath.Join(base, filepath.FromSlash(p)) }
	tests := []struct {
		name     string
		roots    []string // Relative to base.
		path     string   // Relative to base, unless absolute after joining.
		raw      bool     // Use path as given, without joining to base.
		resolved string   // Want this resolved path (relative to base); "" means path.
		denied   bool
	}{
		{name: "file in root", roots: []string{"a"}, path: "a/file.txt"},
		{name: "root itself", roots: []string{"a"}, path: "a"},
		{name: "nested file", roots: []string{"a"}, path: "a/sub/deep.txt"},
		{name: "new file in root", roots: []string{"a"}, path: "a/new.txt"},
		{name: "new nested dirs in root", roots: []string{"a"}, path: "a/x/y/z.txt"},
		{name: "file root", roots: []string{"a/file.txt"}, path: "a/file.txt"},
		{name: "file root does not allow sibling", roots: []string{"a/file.txt"}, path: "a/sub/deep.txt", denied: true},
		{name: "dotdot escape", roots: []string{"a"}, path: "a/../outside/secret.txt", resolved: "outside/secret.txt", denied: true},
		{name: "dotdot staying inside", roots: []string{"a"}, path: "a/sub/../file.txt", resolved: "a/file.txt"},
		{name: "prefix trap file", roots: []string{"a"}, path: "ab/secret.txt", denied: true},
		{name: "prefix trap dir", roots: []string{"a"}, path: "ab", denied: true},
		{name: "parent of root", roots: []string{"a"}, path: ".", denied: true},
		{name: "link inside to inside", roots: []string{"a"}, path: "a/link-in", resolved: "a/file.txt"},
		{name: "link inside to outside file", roots: []string{"a"}, path: "a/link-out", resolved: "outside/secret.txt", denied: true},
		{name: "dir link to outside", roots: []string{"a"}, path: "a/dirlink-out/secret.txt", resolved: "outside/secret.txt", denied: true},
		{name: "new file through dir link to outside", roots: []string{"a"}, path: "a/dirlink-out/new.txt", resolved: "outside/new.txt", denied: true},
		{name: "relative link to outside", roots: []string{"a"}, path: "a/rel-out/secret.txt", resolved: "outside/secret.txt", denied: true},
		{name: "dangling link to outside", roots: []string{"a"}, path: "a/dangling", resolved: "outside/new.txt", denied: true},
		{name: "new file under dangling dir link", roots: []string{"a"}, path: "a/danglingdir/f.txt", resolved: "outside/nodir/f.txt", denied: true},
		{name: "root is a link", roots: []string{"rootlink"}, path: "a/file.txt"},
		{name: "path through root link", roots: []string{"rootlink"}, path: "rootlink/file.txt", resolved: "a/file.txt"},
		{name: "outside with root link", roots: []string{"rootlink"}, path: "outside/secret.txt", denied: true},
		{name: "allowed link target", roots: []string{"outside"}, path: "a/link-out", resolved: "outside/secret.txt"},
		{name: "several roots", roots: []string{"ab", "outside"}, path: "outside/secret.txt"},
		{name: "no roots", path: "a/file.txt", denied: true},
		{name: "empty root allows nothing", roots: []string{""}, path: "a/file.txt", denied: true},
	}
	for _, tt := range tests {
		for _, kind := range []string{"read", "write"} {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				var roots []string
				for _, r := range tt.roots {
					if r != "" {
						r = j(r)
					}
					roots = append(roots, r)
				}
				path, want := j(tt.path), j(tt.path)
				if tt.resolved != "" {
					want = j(tt.resolved)
				}
				// A joined path is cleaned; keep the ".." for the test.
				if strings.Contains(tt.path, "..") {
					path = base + string(filepath.Separator) + filepath.FromSlash(tt.path)
				}
				var p builtins.Permissions
				check := p.CheckRead
				if kind == "read" {
					p.Read.Roots = roots
				} else {
					p.Write.Roots = roots
					check = p.CheckWrite
				}
				got, err := check(path)
				if tt.denied {
					var pe *builtins.PermissionError
					if !errors.As(err, &pe) {
						t.Fatalf("check(%q) = %q, %v; want a *PermissionError", path, got, err)
					}
					if !errors.Is(err, builtins.ErrPermission) {
						t.Errorf("errors.Is(%v, ErrPermission) = false", err)
					}
					// The denial names the path as given, never where a
					// link in it leads.
					if pe.Kind != kind || pe.Target != path || pe.Flag != "--allow-"+kind+"="+path {
						t.Errorf("error = %+v; want kind %s, target and flag %s", pe, kind, path)
					}
					return
				}
				if err != nil || got != want {
					t.Fatalf("check(%q) = %q, %v; want %q, nil", path, got, err, want)
				}
			})
		}
	}
}

func TestCheckPathKindsAreSeparate(t *testing.T) {
	base := tree(t)
	f := filepath.Join(base, "a", "file.txt")
	p := builtins.Permissions{Read: builtins.PathPermission{Roots: []string{base}}}
	if _, err := p.CheckRead(f); err != nil {
		t.Fatalf("CheckRead: %v", err)
	}
	if _, err := p.CheckWrite(f); !errors.Is(err, builtins.ErrPermission) {
		t.Errorf("CheckWrite with only read roots: err = %v; want ErrPermission", err)
	}
	p = builtins.Permissions{Write: builtins.PathPermission{Roots: []string{base}}}
	if _, err := p.CheckRead(f); !errors.Is(err, builtins.ErrPermission) {
		t.Errorf("CheckRead with only write roots: err = %v; want ErrPermission", err)
	}
}

func TestCheckPathAll(t *testing.T) {
	base := tree(t)
	p := builtins.Permissions{Read: builtins.PathPermission{All: true}, Write: builtins.PathPermission{All: true}}
	for _, check := range []func(string) (string, error){p.CheckRead, p.CheckWrite} {
		got, err := check(filepath.Join(base, "a", "link-out"))
		if want := filepath.Join(base, "outside", "secret.txt"); err != nil || got != want {
			t.Errorf("check = %q, %v; want %q, nil", got, err, want)
		}
	}
}

func TestCheckPathRelative(t *testing.T) {
	base := tree(t)
	t.Chdir(base)
	p := builtins.Permissions{Read: builtins.PathPermission{Roots: []string{"a"}}}
	got, err := p.CheckRead(filepath.Join("a", "file.txt"))
	if want := filepath.Join(base, "a", "file.txt"); err != nil || got != want {
		t.Errorf("CheckRead(a/file.txt) = %q, %v; want %q, nil", got, err, want)
	}
	if _, err := p.CheckRead(filepath.Join("a", "..", "ab", "secret.txt")); !errors.Is(err, builtins.ErrPermission) {
		t.Errorf("CheckRead(a/../ab/secret.txt): err = %v; want ErrPermission", err)
	}
}

func TestCheckPathErrors(t *testing.T) {
	base := tree(t)
	p := builtins.Permissions{Read: builtins.PathPermission{All: true}}
	for _, path := range []string{"", filepath.Join(base, "loop1"), filepath.Join(base, "loop1", "x")} {
		_, err := p.CheckRead(path)
		if err == nil || errors.Is(err, builtins.ErrPermission) {
			t.Errorf("CheckRead(%q): err = %v; want a resolution error", path, err)
		}
	}
}

// A denial or a failure to resolve never says where a link leads: the
// message names the path as the script gave it, and outside the roots a
// path that cannot be resolved is denied like any other.
func TestCheckPathDoesNotLeakTargets(t *testing.T) {
	base := tree(t)
	j := func(p string) string { return filepath.Join(base, filepath.FromSlash(p)) }
	p := builtins.Permissions{Read: builtins.PathPermission{Roots: []string{j("a")}}}
	for _, tt := range []struct {
		path   string
		denied bool
	}{
		{path: j("a/link-out"), denied: true},
		{path: j("a/dirlink-out/secret.txt"), denied: true},
		{path: j("a/dangling"), denied: true},
		// /proc/self/root is a link to "/": the denial names the /proc path.
		{path: "/proc/self/root" + j("outside/secret.txt"), denied: true},
		{path: "/proc/self/cwd/x", denied: true},
		// A loop outside the roots is denied, not reported as a loop.
		{path: j("loop1"), denied: true},
		{path: j("loop2/x"), denied: true},
		// Inside a root the failure is reported, without the loop's names.
		{path: j("a/to-loop")},
	} {
		_, err := p.CheckRead(tt.path)
		if err == nil {
			t.Errorf("CheckRead(%q) = nil error; want one", tt.path)
			continue
		}
		if got := errors.Is(err, builtins.ErrPermission); got != tt.denied {
			t.Errorf("CheckRead(%q) = %v; denied = %v, want %v", tt.path, err, got, tt.denied)
		}
		msg := strings.ReplaceAll(err.Error(), tt.path, "PATH")
		for _, leak := range []string{"outside", "loop", base} {
			if strings.Contains(msg, leak) {
				t.Errorf("CheckRead(%q) = %q: says %q, which only the path's links lead to", tt.path, err, leak)
			}
		}
		if tt.denied && !strings.Contains(err.Error(), "--allow-read="+tt.path) {
			t.Errorf("CheckRead(%q) = %q; want the flag --allow-read=%s", tt.path, err, tt.path)
		}
	}
}

// The path a denial names, given to the flag, allows what it named.
func TestDenialFlagAllows(t *testing.T) {
	base := tree(t)
	t.Chdir(filepath.Join(base, "a"))
	var pe *builtins.PermissionError
	if _, err := (&builtins.Permissions{}).CheckRead("link-out"); !errors.As(err, &pe) {
		t.Fatalf("CheckRead(link-out) = %v; want a *PermissionError", err)
	}
	root := strings.TrimPrefix(pe.Flag, "--allow-read=")
	if root != "link-out" {
		t.Fatalf("flag %q; want --allow-read=link-out", pe.Flag)
	}
	p := builtins.Permissions{Read: builtins.PathPermission{Roots: []string{root}}}
	if _, err := p.CheckRead("link-out"); err != nil {
		t.Errorf("with %s: CheckRead(link-out) = %v", pe.Flag, err)
	}
}

func TestCheckWriteNoFollow(t *testing.T) {
	base := tree(t)
	j := func(p string) string { return filepath.Join(base, filepath.FromSlash(p)) }
	tests := []struct {
		roots    []string
		path     string
		resolved string
		denied   bool
	}{
		{roots: []string{"a"}, path: "a/link-out", resolved: "a/link-out"},
		{roots: []string{"a"}, path: "a/dangling", resolved: "a/dangling"},
		{roots: []string{"a"}, path: "a/file.txt", resolved: "a/file.txt"},
		{roots: []string{"a"}, path: "rootlink/link-in", resolved: "a/link-in"},
		{roots: []string{"a"}, path: "a/dirlink-out/secret.txt", resolved: "outside/secret.txt", denied: true},
		{roots: []string{"outside"}, path: "a/link-out", resolved: "a/link-out", denied: true},
		{roots: []string{"rootlink"}, path: "rootlink", resolved: "rootlink"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p := builtins.Permissions{Write: builtins.PathPermission{Roots: []string{j(tt.roots[0])}}}
			got, err := p.CheckWriteNoFollow(j(tt.path))
			if tt.denied {
				var pe *builtins.PermissionError
				if !errors.As(err, &pe) || pe.Target != j(tt.path) {
					t.Fatalf("CheckWriteNoFollow = %q, %v; want a *PermissionError for %s", got, err, j(tt.path))
				}
				return
			}
			if err != nil || got != j(tt.resolved) {
				t.Fatalf("CheckWriteNoFollow = %q, %v; want %q, nil", got, err, j(tt.resolved))
			}
		})
	}
}

func TestZeroValueDeniesAll(t *testing.T) {
	var p builtins.Permissions
	dir := t.TempDir()
	if _, err := p.CheckRead(dir); !errors.Is(err, builtins.ErrPermission) {
		t.Errorf("CheckRead: err = %v; want ErrPermission", err)
	}
	if _, err := p.CheckWrite(dir); !errors.Is(err, builtins.ErrPermission) {
		t.Errorf("CheckWrite: err = %v; want ErrPermission", err)
	}
	if _, err := p.CheckNet(context.Background(), "127.0.0.1", 80); !errors.Is(err, builtins.ErrPermission) {
		t.Errorf("CheckNet: err = %v; want ErrPermission", err)
	}
	var env builtins.Env
	if _, err := env.Perms().CheckRead(dir); !errors.Is(err, builtins.ErrPermission) {
		t.Errorf("Env{}.Perms().CheckRead: err = %v; want ErrPermission", err)
	}
}

func TestPermissionError(t *testing.T) {
	var err error = &builtins.PermissionError{Kind: "read", Target: "/etc/passwd", Flag: "--allow-read=/etc/passwd"}
	if got, want := err.Error(), `read access to "/etc/passwd" denied: run again with --allow-read=/etc/passwd`; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	wrapped := fmt.Errorf("fs.readFile /etc/passwd: %w", err)
	if !errors.Is(wrapped, builtins.ErrPermission) {
		t.Error("errors.Is(wrapped, ErrPermission) = false")
	}
	if errors.Is(errors.New("permission denied"), builtins.ErrPermission) {
		t.Error("an unrelated error matches ErrPermission")
	}
	if errors.Is(err, os.ErrPermission) {
		t.Error("a PermissionError matches os.ErrPermission; it should only match builtins.ErrPermission")
	}
}

func TestCheckNet(t *testing.T) {
	tests := []struct {
		name  string
		allow []string
		host  string
		port  int
		want  string // The dial host; "" means denied.
	}{
		{name: "name", allow: []string{"example.com"}, host: "example.com", port: 443, want: "example.com"},
		{name: "name any case", allow: []string{"Example.COM"}, host: "eXample.com.", port: 80, want: "eXample.com."},
		{name: "name other", allow: []string{"example.com"}, host: "example.org", port: 80},
		{name: "name is not a suffix", allow: []string{"example.com"}, host: "www.example.com", port: 80},
		{name: "name:port", allow: []string{"example.com:22"}, host: "example.com", port: 22, want: "example.com"},
		{name: "name:port other port", allow: []string{"example.com:22"}, host: "example.com", port: 23},
		{name: "ip", allow: []string{"127.0.0.1"}, host: "127.0.0.1", port: 9, want: "127.0.0.1"},
		{name: "ip other", allow: []string{"127.0.0.1"}, host: "127.0.0.2", port: 9},
		{name: "ip:port", allow: []string{"127.0.0.1:80"}, host: "127.0.0.1", port: 80, want: "127.0.0.1"},
		{name: "ip:port other port", allow: []string{"127.0.0.1:80"}, host: "127.0.0.1", port: 81},
		{name: "ipv6", allow: []string{"::1"}, host: "::1", port: 22, want: "::1"},
		{name: "ipv6 bracketed host", allow: []string{"[::1]"}, host: "[::1]", port: 22, want: "::1"},
		{name: "[ipv6]:port", allow: []string{"[::1]:22"}, host: "::1", port: 22, want: "::1"},
		{name: "[ipv6]:port other port", allow: []string{"[::1]:22"}, host: "::1", port: 23},
		{name: "cidr", allow: []string{"10.0.0.0/8"}, host: "10.200.3.4", port: 445, want: "10.200.3.4"},
		{name: "cidr outside", allow: []string{"10.0.0.0/8"}, host: "11.0.0.1", port: 445},
		{name: "cidr unmasked", allow: []string{"192.168.1.77/24"}, host: "192.168.1.5", port: 80, want: "192.168.1.5"},
		{name: "cidr v6", allow: []string{"fd00::/8"}, host: "fd12::1", port: 80, want: "fd12::1"},
		{name: "v4-mapped v6 literal", allow: []string{"10.0.0.0/8"}, host: "::ffff:10.0.0.1", port: 80, want: "10.0.0.1"},
		{name: "ip entry does not allow name", allow: []string{"93.184.215.14"}, host: "93.184.215.15", port: 80},
		{name: "name entry does not allow ip", allow: []string{"localhost"}, host: "127.0.0.1", port: 80},
		// Resolved through /etc/hosts, and returned as a literal so the
		// dial cannot be re-pointed by a second DNS answer.
		{name: "name resolved into cidr", allow: []string{"127.0.0.0/8"}, host: "localhost", port: 80, want: "127.0.0.1"},
		{name: "name resolved into cidr wrong port", allow: []string{"127.0.0.1:81"}, host: "localhost", port: 80},
		{name: "name resolved outside cidr", allow: []string{"10.0.0.0/8"}, host: "localhost", port: 80},
		{name: "several entries", allow: []string{"example.com", "10.0.0.0/8", "127.0.0.1:22"}, host: "127.0.0.1", port: 22, want: "127.0.0.1"},
		{name: "nothing allowed", host: "127.0.0.1", port: 22},
		// Zones are strict: an entry without one allows only the address
		// without one, and an entry with one only that zone.
		{name: "entry without zone, address with zone", allow: []string{"fe80::1"}, host: "fe80::1%eth0", port: 22},
		{name: "entry without zone, bracketed address with zone", allow: []string{"[fe80::1]:22"}, host: "[fe80::1%eth0]", port: 22},
		{name: "entry without zone, address without zone", allow: []string{"fe80::1"}, host: "fe80::1", port: 22, want: "fe80::1"},
		{name: "entry with zone, same zone", allow: []string{"fe80::1%eth0"}, host: "fe80::1%eth0", port: 22, want: "fe80::1%eth0"},
		{name: "entry with zone and port, same zone", allow: []string{"[fe80::1%eth0]:22"}, host: "fe80::1%eth0", port: 22, want: "fe80::1%eth0"},
		{name: "entry with zone, other zone", allow: []string{"fe80::1%eth0"}, host: "fe80::1%eth1", port: 22},
		{name: "entry with zone, no zone", allow: []string{"fe80::1%eth0"}, host: "fe80::1", port: 22},
		{name: "cidr, address with zone", allow: []string{"fe80::/10"}, host: "fe80::1%eth0", port: 22},
		{name: "cidr, address without zone", allow: []string{"fe80::/10"}, host: "fe80::1", port: 22, want: "fe80::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := builtins.Permissions{Net: builtins.NetPermission{Allow: tt.allow}}
			got, err := p.CheckNet(context.Background(), tt.host, tt.port)
			if tt.want == "" {
				var pe *builtins.PermissionError
				if !errors.As(err, &pe) || pe.Kind != "net" || !strings.HasPrefix(pe.Flag, "--allow-net=") {
					t.Fatalf("CheckNet(%s, %d) = %q, %v; want a net *PermissionError", tt.host, tt.port, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CheckNet(%s, %d) = %q, %v; want %q, nil", tt.host, tt.port, got, err, tt.want)
			}
		})
	}
}

func TestCheckNetError(t *testing.T) {
	p := builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"example.com"}}}
	_, err := p.CheckNet(context.Background(), "::1", 22)
	var pe *builtins.PermissionError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v; want *PermissionError", err)
	}
	if pe.Target != "[::1]:22" || pe.Flag != "--allow-net=[::1]:22" {
		t.Errorf("error = %+v; want target [::1]:22 and flag --allow-net=[::1]:22", pe)
	}
	if got, want := err.Error(), `net access to "[::1]:22" denied: run again with --allow-net=[::1]:22`; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

func TestCheckNetAll(t *testing.T) {
	p := builtins.Permissions{Net: builtins.NetPermission{All: true}}
	if got, err := p.CheckNet(context.Background(), "example.com", 80); err != nil || got != "example.com" {
		t.Errorf("CheckNet = %q, %v; want example.com, nil", got, err)
	}
}

func TestCheckNetFailures(t *testing.T) {
	cidr := builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"10.0.0.0/8"}}}
	tests := []struct {
		name string
		p    builtins.Permissions
		host string
		port int
	}{
		// "bad..name" is not a valid domain name, so the lookup fails
		// without asking a DNS server.
		{name: "lookup fails", p: cidr, host: "bad..name", port: 80},
		{name: "port 0", p: cidr, host: "10.0.0.1", port: 0},
		{name: "port too big", p: cidr, host: "10.0.0.1", port: 65536},
		{name: "empty host", p: cidr, host: "", port: 80},
		{name: "bad entry", p: builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"10.0.0.0/33"}}}, host: "10.0.0.1", port: 80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.CheckNet(context.Background(), tt.host, tt.port)
			if err == nil || errors.Is(err, builtins.ErrPermission) {
				t.Fatalf("CheckNet = %q, %v; want an error that is not a permission error", got, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := builtins.Permissions{
		Net:   builtins.NetPermission{Allow: []string{"example.com", "Example.com:443", "1.2.3.4", "1.2.3.4:80", "[::1]:22", "::1", "[::1]", "fe80::1%eth0", "[fe80::1%eth0]:22", "10.0.0.0/8", "fd00::/8", "my_host.local"}},
		Read:  builtins.PathPermission{Roots: []string{"/etc", "rel/dir"}},
		Write: builtins.PathPermission{Roots: []string{"/tmp"}},
	}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(good) = %v", err)
	}
	if err := (&builtins.Permissions{}).Validate(); err != nil {
		t.Errorf("Validate(zero) = %v", err)
	}
	for _, tt := range []struct {
		p    builtins.Permissions
		want string // In the error.
	}{
		{builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"10.0.0.0/33"}}}, `"10.0.0.0/33"`},
		{builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"10.0.0.0/8:22"}}}, `"10.0.0.0/8:22"`},
		{builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"host:0"}}}, `"host:0"`},
		{builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"host:65536"}}}, `"host:65536"`},
		{builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"host:http"}}}, `"host:http"`},
		{builtins.Permissions{Net: builtins.NetPermission{Allow: []string{""}}}, `""`},
		{builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"::1:22:"}}}, `"::1:22:"`},
		{builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"bad host"}}}, `"bad host"`},
		{builtins.Permissions{Net: builtins.NetPermission{Allow: []string{":80"}}}, `":80"`},
		{builtins.Permissions{Read: builtins.PathPermission{Roots: []string{"/etc", ""}}}, "--allow-read entry 2"},
		{builtins.Permissions{Write: builtins.PathPermission{Roots: []string{""}}}, "--allow-write entry 1"},
	} {
		err := tt.p.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v; want an error naming %s", tt.p, err, tt.want)
		}
	}
}

// A ceiling bounds what the permissions allow: both must agree, and a
// denial by the ceiling names the daemon's flag.
func TestCeiling(t *testing.T) {
	dir := t.TempDir()
	inside := filepath.Join(dir, "a")
	if err := os.MkdirAll(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	ceiling := &builtins.Permissions{Read: builtins.PathPermission{Roots: []string{inside}}, Net: builtins.NetPermission{Allow: []string{"127.0.0.1"}}}
	p := &builtins.Permissions{Read: builtins.PathPermission{All: true}, Write: builtins.PathPermission{All: true}, Net: builtins.NetPermission{All: true}, Ceiling: ceiling}
	if _, err := p.CheckRead(filepath.Join(inside, "f")); err != nil {
		t.Errorf("read inside both: %v", err)
	}
	_, err := p.CheckRead(filepath.Join(dir, "b"))
	var pe *builtins.PermissionError
	if !errors.As(err, &pe) || !pe.ByCeiling || !strings.HasPrefix(pe.Flag, "--allow-read=") || !strings.Contains(err.Error(), "start rsh serve with --allow-read=") {
		t.Errorf("read outside the ceiling: %v", err)
	}
	// The daemon runs elsewhere: its flag names the path made absolute
	// (lexically: the link is not followed), the denial the path as given.
	t.Chdir(dir)
	if err := os.Symlink(filepath.Join(dir, "b"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	_, err = p.CheckRead("link")
	if !errors.As(err, &pe) || pe.Target != "link" || pe.Flag != "--allow-read="+filepath.Join(dir, "link") {
		t.Errorf("relative read outside the ceiling: %v; want target link, flag --allow-read=%s", err, filepath.Join(dir, "link"))
	}
	if _, err := p.CheckWrite(filepath.Join(inside, "f")); !errors.Is(err, builtins.ErrPermission) {
		t.Errorf("write with no write ceiling: %v", err)
	}
	if _, err := p.CheckNet(context.Background(), "127.0.0.1", 80); err != nil {
		t.Errorf("net inside both: %v", err)
	}
	if _, err := p.CheckNet(context.Background(), "10.0.0.1", 80); !errors.Is(err, builtins.ErrPermission) {
		t.Errorf("net outside the ceiling: %v", err)
	}
	// The job's own permissions still apply under a generous ceiling.
	p2 := &builtins.Permissions{Ceiling: &builtins.Permissions{Read: builtins.PathPermission{All: true}}}
	if _, err := p2.CheckRead(inside); !errors.Is(err, builtins.ErrPermission) {
		t.Errorf("job without read permission: %v", err)
	}
}

// fakeLookup resolves every name it knows to its addresses, in order, and
// counts its calls; an unknown name fails. No test asks DNS.
type fakeLookup struct {
	hosts map[string][]netip.Addr
	calls int
}

func (f *fakeLookup) lookup(_ context.Context, host string) ([]netip.Addr, error) {
	f.calls++
	if as, ok := f.hosts[host]; ok {
		return as, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func netPerm(allow ...string) builtins.NetPermission {
	if len(allow) == 1 && allow[0] == "*" {
		return builtins.NetPermission{All: true}
	}
	return builtins.NetPermission{Allow: allow}
}

// The host CheckNet returns is one that the permissions and every Ceiling
// allow, from one resolution: a name resolving to an address the ceiling
// allows and one it does not is dialled at the allowed one, never by name.
func TestCheckNetCeiling(t *testing.T) {
	both := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")}
	tests := []struct {
		name      string
		request   []string   // "*" is All.
		ceilings  [][]string // Each the Ceiling of the one before.
		addrs     []netip.Addr
		host      string
		port      int
		want      string // The dial host; "" means denied.
		byCeiling bool
		lookups   int
	}{
		{name: "all under cidr", request: []string{"*"}, ceilings: [][]string{{"127.0.0.2/32"}}, addrs: both, host: "both.test", want: "127.0.0.2", lookups: 1},
		{name: "all under cidr, allowed address second", request: []string{"*"}, ceilings: [][]string{{"127.0.0.2/32"}}, addrs: []netip.Addr{both[1], both[0]}, host: "both.test", want: "127.0.0.2", lookups: 1},
		{name: "name under cidr", request: []string{"both.test"}, ceilings: [][]string{{"127.0.0.2/32"}}, addrs: both, host: "Both.Test", want: "127.0.0.2", lookups: 1},
		{name: "cidr under narrower cidr", request: []string{"127.0.0.0/8"}, ceilings: [][]string{{"127.0.0.2/32"}}, addrs: []netip.Addr{both[1], both[0]}, host: "both.test", want: "127.0.0.2", lookups: 1},
		{name: "name under name", request: []string{"both.test"}, ceilings: [][]string{{"both.test:80"}}, addrs: both, host: "both.test", want: "both.test"},
		{name: "name under all", request: []string{"both.test"}, ceilings: [][]string{{"*"}}, addrs: both, host: "both.test", want: "both.test"},
		{name: "cidr under name", request: []string{"127.0.0.1/32"}, ceilings: [][]string{{"both.test"}}, addrs: both, host: "both.test", want: "127.0.0.1", lookups: 1},
		{name: "ceilings of ceilings", request: []string{"*"}, ceilings: [][]string{{"127.0.0.0/8"}, {"127.0.0.1"}}, addrs: both, host: "both.test", want: "127.0.0.1", lookups: 1},
		{name: "ceiling allows no address", request: []string{"*"}, ceilings: [][]string{{"127.0.0.3/32"}}, addrs: both, host: "both.test", byCeiling: true, lookups: 1},
		{name: "no address allowed by both", request: []string{"127.0.0.1"}, ceilings: [][]string{{"127.0.0.2"}}, addrs: both, host: "both.test", byCeiling: true, lookups: 1},
		{name: "request allows no address", request: []string{"127.0.0.3"}, ceilings: [][]string{{"127.0.0.0/8"}}, addrs: both, host: "both.test", lookups: 1},
		{name: "request and ceiling allow no address", request: []string{"127.0.0.3"}, ceilings: [][]string{{"127.0.0.4"}}, addrs: both, host: "both.test", byCeiling: true, lookups: 1},
		{name: "request denies the name, no lookup", request: []string{"other.test"}, ceilings: [][]string{{"*"}}, addrs: both, host: "both.test"},
		{name: "ceiling denies the name, no lookup", request: []string{"*"}, ceilings: [][]string{{"other.test", "127.0.0.1:22"}}, addrs: both, host: "both.test", byCeiling: true},
		{name: "ceiling name other port", request: []string{"*"}, ceilings: [][]string{{"both.test:81"}}, addrs: both, host: "both.test", byCeiling: true},
		{name: "literal allowed by both", request: []string{"*"}, ceilings: [][]string{{"127.0.0.2/32"}}, host: "127.0.0.2", want: "127.0.0.2"},
		{name: "literal outside the ceiling", request: []string{"*"}, ceilings: [][]string{{"127.0.0.2/32"}}, host: "127.0.0.1", byCeiling: true},
		{name: "literal outside both", request: []string{"127.0.0.3"}, ceilings: [][]string{{"127.0.0.2/32"}}, host: "127.0.0.1", byCeiling: true},
		{name: "literal outside the request", request: []string{"127.0.0.3"}, ceilings: [][]string{{"*"}}, host: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeLookup{hosts: map[string][]netip.Addr{"both.test": tt.addrs, "Both.Test": tt.addrs}}
			p := builtins.Permissions{Net: netPerm(tt.request...)}
			builtins.SetLookup(&p, fake.lookup)
			at := &p
			for _, c := range tt.ceilings {
				at.Ceiling = &builtins.Permissions{Net: netPerm(c...)}
				at = at.Ceiling
			}
			port := tt.port
			if port == 0 {
				port = 80
			}
			got, err := p.CheckNet(context.Background(), tt.host, port)
			if fake.calls != tt.lookups {
				t.Errorf("%d lookups; want %d", fake.calls, tt.lookups)
			}
			if tt.want == "" {
				var pe *builtins.PermissionError
				if !errors.As(err, &pe) || pe.Kind != "net" || pe.ByCeiling != tt.byCeiling {
					t.Fatalf("CheckNet = %q, %v; want a net *PermissionError with ByCeiling %v", got, err, tt.byCeiling)
				}
				if want := net.JoinHostPort(tt.host, strconv.Itoa(port)); pe.Target != want {
					t.Errorf("target %q; want %q", pe.Target, want)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CheckNet = %q, %v; want %q, nil", got, err, tt.want)
			}
		})
	}
}

// A failed lookup is an error, not a denial, ceiling or not.
func TestCheckNetCeilingLookupFails(t *testing.T) {
	fake := &fakeLookup{}
	p := builtins.Permissions{Net: netPerm("*"), Ceiling: &builtins.Permissions{Net: netPerm("127.0.0.0/8")}}
	builtins.SetLookup(&p, fake.lookup)
	_, err := p.CheckNet(context.Background(), "gone.test", 80)
	var de *net.DNSError
	if !errors.As(err, &de) || errors.Is(err, builtins.ErrPermission) {
		t.Fatalf("CheckNet = %v; want the lookup's *net.DNSError", err)
	}
}

// The ceiling checks the path the permissions checked, resolved once: a
// link leading outside the ceiling is denied by it, and the denial names
// the path as given.
func TestCeilingOnResolvedPath(t *testing.T) {
	base := tree(t)
	j := func(p string) string { return filepath.Join(base, filepath.FromSlash(p)) }
	p := builtins.Permissions{
		Read:    builtins.PathPermission{All: true},
		Write:   builtins.PathPermission{Roots: []string{base}},
		Ceiling: &builtins.Permissions{Read: builtins.PathPermission{Roots: []string{j("a")}}, Write: builtins.PathPermission{Roots: []string{j("a")}}},
	}
	for _, tt := range []struct {
		check func(string) (string, error)
		path  string
		want  string // The resolved path; "" means denied by the ceiling.
	}{
		{p.CheckRead, "a/link-in", "a/file.txt"},
		{p.CheckRead, "rootlink/sub/deep.txt", "a/sub/deep.txt"},
		{p.CheckRead, "a/link-out", ""},
		{p.CheckRead, "a/dirlink-out/secret.txt", ""},
		{p.CheckRead, "a/rel-out/secret.txt", ""},
		{p.CheckWrite, "a/dangling", ""},
		{p.CheckWrite, "a/danglingdir/f.txt", ""},
		{p.CheckWrite, "a/new.txt", "a/new.txt"},
		{p.CheckWriteNoFollow, "a/link-out", "a/link-out"},
		{p.CheckWriteNoFollow, "a/dirlink-out/secret.txt", ""},
	} {
		got, err := tt.check(j(tt.path))
		if tt.want == "" {
			var pe *builtins.PermissionError
			if !errors.As(err, &pe) || !pe.ByCeiling || pe.Target != j(tt.path) {
				t.Errorf("check(%s) = %q, %v; want a denial by the ceiling naming the path", tt.path, got, err)
			}
			continue
		}
		if err != nil || got != j(tt.want) {
			t.Errorf("check(%s) = %q, %v; want %q", tt.path, got, err, j(tt.want))
		}
	}
}

// A denial the ceiling makes is reported as the ceiling's, even when the
// permissions deny too; a path that does not resolve outside the ceiling
// is denied, not reported as a resolution failure.
func TestCeilingDenialFirst(t *testing.T) {
	base := tree(t)
	j := func(p string) string { return filepath.Join(base, filepath.FromSlash(p)) }
	ceiling := &builtins.Permissions{Read: builtins.PathPermission{Roots: []string{j("a")}}}
	for _, tt := range []struct {
		name      string
		read      builtins.PathPermission
		path      string
		byCeiling bool
	}{
		{"both deny", builtins.PathPermission{Roots: []string{j("ab")}}, "outside/secret.txt", true},
		{"only the request denies", builtins.PathPermission{Roots: []string{j("ab")}}, "a/file.txt", false},
		{"loop outside the ceiling", builtins.PathPermission{All: true}, "loop1", true},
	} {
		p := builtins.Permissions{Read: tt.read, Ceiling: ceiling}
		_, err := p.CheckRead(j(tt.path))
		var pe *builtins.PermissionError
		if !errors.As(err, &pe) || pe.ByCeiling != tt.byCeiling {
			t.Errorf("%s: CheckRead = %v; want a denial with ByCeiling %v", tt.name, err, tt.byCeiling)
		}
	}
	// Inside every level, a loop is reported as a failure to resolve.
	p := builtins.Permissions{Read: builtins.PathPermission{All: true}, Ceiling: ceiling}
	if _, err := p.CheckRead(j("a/to-loop")); err == nil || errors.Is(err, builtins.ErrPermission) {
		t.Errorf("CheckRead(a/to-loop) = %v; want a resolution error", err)
	}
}

// Confine returns a directory inside the roots of the permissions and of
// every ceiling that hold the path: the deepest.
func TestConfine(t *testing.T) {
	base := tree(t)
	j := func(p string) string { return filepath.Join(base, filepath.FromSlash(p)) }
	all := builtins.PathPermission{All: true}
	roots := func(rs ...string) builtins.PathPermission {
		pp := builtins.PathPermission{}
		for _, r := range rs {
			pp.Roots = append(pp.Roots, j(r))
		}
		return pp
	}
	for _, tt := range []struct {
		name           string
		kind           string
		req            builtins.PathPermission
		ceiling        *builtins.PathPermission
		path, want     string
		wantFilesystem bool // want "/"
	}{
		{name: "ceiling narrower", kind: "read", req: roots("."), ceiling: &builtins.PathPermission{Roots: []string{j("a")}}, path: "a/sub/deep.txt", want: "a"},
		{name: "request narrower", kind: "read", req: roots("a/sub"), ceiling: &builtins.PathPermission{Roots: []string{base}}, path: "a/sub/deep.txt", want: "a/sub"},
		{name: "request all", kind: "write", req: all, ceiling: &builtins.PathPermission{Roots: []string{j("a")}}, path: "a/sub/deep.txt", want: "a"},
		{name: "ceiling all", kind: "write", req: roots("a/sub"), ceiling: &all, path: "a/sub/deep.txt", want: "a/sub"},
		{name: "root a link", kind: "read", req: roots("rootlink"), ceiling: &builtins.PathPermission{Roots: []string{base}}, path: "a/file.txt", want: "a"},
		{name: "everything", kind: "read", req: all, ceiling: &all, path: "a/file.txt", wantFilesystem: true},
		{name: "no ceiling", kind: "read", req: all, path: "a/file.txt", wantFilesystem: true},
		{name: "directory root read itself", kind: "read", req: roots("a"), path: "a", want: "a"},
		{name: "directory root written itself", kind: "write", req: roots("a"), path: "a", want: "."},
		{name: "file root", kind: "read", req: roots("a/file.txt"), path: "a/file.txt", want: "a"},
		{name: "link root removed", kind: "write", req: roots("a/link-out"), path: "a/link-out", want: "a"},
		{name: "not held", kind: "read", req: roots("ab"), path: "a/sub/deep.txt", want: "a/sub"},
	} {
		p := builtins.Permissions{Read: tt.req, Write: tt.req}
		if tt.ceiling != nil {
			p.Ceiling = &builtins.Permissions{Read: *tt.ceiling, Write: *tt.ceiling}
		}
		want := j(tt.want)
		if tt.wantFilesystem {
			want = string(filepath.Separator)
		}
		if got := p.Confine(tt.kind, j(tt.path)); got != want {
			t.Errorf("%s: Confine(%s, %s) = %q; want %q", tt.name, tt.kind, tt.path, got, want)
		}
	}
}
