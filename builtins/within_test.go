package builtins_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runspaces/rsh/builtins"
)

// allRoots stands for PathPermission{All: true} in the tables below.
const allRoots = "*"

// pathPerm builds a PathPermission from roots relative to base; a single
// allRoots is All.
func pathPerm(base string, roots ...string) builtins.PathPermission {
	if len(roots) == 1 && roots[0] == allRoots {
		return builtins.PathPermission{All: true}
	}
	pp := builtins.PathPermission{}
	for _, r := range roots {
		pp.Roots = append(pp.Roots, filepath.Join(base, filepath.FromSlash(r)))
	}
	return pp
}

func TestWithinPaths(t *testing.T) {
	base := tree(t)
	tests := []struct {
		name             string
		request, ceiling []string // Relative to base; allRoots is All.
		want             []string // Relative to base; allRoots is All.
	}{
		{name: "all under all", request: []string{allRoots}, ceiling: []string{allRoots}, want: []string{allRoots}},
		{name: "all under roots", request: []string{allRoots}, ceiling: []string{"a", "outside"}, want: []string{"a", "outside"}},
		{name: "roots under all", request: []string{"a/sub"}, ceiling: []string{allRoots}, want: []string{"a/sub"}},
		{name: "request inside ceiling", request: []string{"a/sub"}, ceiling: []string{"a"}, want: []string{"a/sub"}},
		{name: "ceiling inside request", request: []string{"a"}, ceiling: []string{"a/sub"}, want: []string{"a/sub"}},
		{name: "same root", request: []string{"a"}, ceiling: []string{"a"}, want: []string{"a"}},
		{name: "disjoint", request: []string{"outside"}, ceiling: []string{"a"}},
		{name: "prefix is not inside", request: []string{"ab"}, ceiling: []string{"a"}},
		{name: "file inside", request: []string{"a/file.txt"}, ceiling: []string{"a"}, want: []string{"a/file.txt"}},
		{name: "ceiling file inside", request: []string{"a"}, ceiling: []string{"a/file.txt"}, want: []string{"a/file.txt"}},
		{name: "several of each", request: []string{"a", "outside", "ab"}, ceiling: []string{"a/sub", "outside/secret.txt"}, want: []string{"a/sub", "outside/secret.txt"}},
		{name: "request root a link inside", request: []string{"rootlink"}, ceiling: []string{"a"}, want: []string{"a"}},
		{name: "ceiling root a link", request: []string{"a/sub"}, ceiling: []string{"rootlink"}, want: []string{"a/sub"}},
		{name: "all under a link root", request: []string{allRoots}, ceiling: []string{"rootlink"}, want: []string{"a"}},
		{name: "link in the ceiling to outside it", request: []string{"a/dirlink-out"}, ceiling: []string{"a"}},
		{name: "relative link to outside", request: []string{"a/rel-out"}, ceiling: []string{"a"}},
		{name: "file link to outside", request: []string{"a/link-out"}, ceiling: []string{"a"}},
		{name: "file link inside", request: []string{"a/link-in"}, ceiling: []string{"a"}, want: []string{"a/file.txt"}},
		{name: "link to outside, outside allowed", request: []string{"a/dirlink-out"}, ceiling: []string{"outside"}, want: []string{"outside"}},
		{name: "dangling link to outside", request: []string{"a/dangling"}, ceiling: []string{"a"}},
		{name: "new path inside", request: []string{"a/new/dir"}, ceiling: []string{"a"}, want: []string{"a/new/dir"}},
		{name: "loop", request: []string{"loop1"}, ceiling: []string{allRoots}},
		{name: "nothing in the ceiling", request: []string{"a"}},
		{name: "nothing requested", ceiling: []string{"a"}},
		{name: "repeats", request: []string{"a", "rootlink", "a/sub"}, ceiling: []string{"a", "a/sub"}, want: []string{"a", "a/sub"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := builtins.Permissions{Read: pathPerm(base, tt.request...), Write: pathPerm(base, tt.request...)}
			ceiling := builtins.Permissions{Read: pathPerm(base, tt.ceiling...), Write: pathPerm(base, tt.ceiling...)}
			got := req.Within(ceiling)
			want := pathPerm(base, tt.want...)
			for kind, pp := range map[string]builtins.PathPermission{"read": got.Read, "write": got.Write} {
				if pp.All != want.All || !slices.Equal(pp.Roots, want.Roots) {
					t.Errorf("%s = %+v; want %+v", kind, pp, want)
				}
			}
		})
	}
}

// Relative roots are resolved against the working directory of the
// process calling Within.
func TestWithinRelativeRoots(t *testing.T) {
	base := tree(t)
	t.Chdir(base)
	req := builtins.Permissions{Read: builtins.PathPermission{Roots: []string{"rootlink/sub"}}}
	got := req.Within(builtins.Permissions{Read: builtins.PathPermission{Roots: []string{"."}}})
	if want := []string{filepath.Join(base, "a", "sub")}; !slices.Equal(got.Read.Roots, want) {
		t.Errorf("read roots %q; want %q", got.Read.Roots, want)
	}
}

// The result's denials outside the ceiling say it was the ceiling; its
// net checks apply the ceiling to the one address dialled.
func TestWithinChecks(t *testing.T) {
	base := tree(t)
	j := func(p string) string { return filepath.Join(base, filepath.FromSlash(p)) }
	req := builtins.Permissions{
		Net:   builtins.NetPermission{All: true},
		Read:  builtins.PathPermission{All: true},
		Write: builtins.PathPermission{Roots: []string{j("a")}},
	}
	fake := &fakeLookup{hosts: map[string][]netip.Addr{"both.test": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}}}
	builtins.SetLookup(&req, fake.lookup)
	ceiling := builtins.Permissions{
		Net:   builtins.NetPermission{Allow: []string{"127.0.0.2/32"}},
		Read:  builtins.PathPermission{Roots: []string{j("a")}},
		Write: builtins.PathPermission{Roots: []string{j("a/sub")}},
	}
	got := req.Within(ceiling)
	if got.Ceiling == nil || !slices.Equal(got.Ceiling.Net.Allow, ceiling.Net.Allow) || !got.Net.All {
		t.Fatalf("Within = %+v; want the request's net and a ceiling with the ceiling's", got)
	}
	if h, err := got.CheckNet(context.Background(), "both.test", 80); err != nil || h != "127.0.0.2" {
		t.Errorf("CheckNet(both.test) = %q, %v; want 127.0.0.2", h, err)
	}
	var pe *builtins.PermissionError
	if _, err := got.CheckNet(context.Background(), "127.0.0.1", 80); !errors.As(err, &pe) || !pe.ByCeiling {
		t.Errorf("CheckNet(127.0.0.1) = %v; want a denial by the ceiling", err)
	}
	if r, err := got.CheckRead(j("rootlink/file.txt")); err != nil || r != j("a/file.txt") {
		t.Errorf("CheckRead inside = %q, %v", r, err)
	}
	for _, c := range []struct {
		check func(string) (string, error)
		path  string
	}{
		{got.CheckRead, "outside/secret.txt"},
		{got.CheckRead, "a/link-out"},
		{got.CheckWrite, "a/file.txt"},
	} {
		if _, err := c.check(j(c.path)); !errors.As(err, &pe) || !pe.ByCeiling {
			t.Errorf("check(%s) = %v; want a denial by the ceiling", c.path, err)
		}
	}
	if _, err := got.CheckWrite(j("a/sub/new.txt")); err != nil {
		t.Errorf("CheckWrite inside both: %v", err)
	}
	if d := got.Confine("write", j("a/sub/new.txt")); d != j("a/sub") {
		t.Errorf("Confine = %q; want %q", d, j("a/sub"))
	}
}

// Nothing restricted by the ceiling leaves no Ceiling; a ceiling with a
// ceiling of its own, or a request with one, bounds the result too.
func TestWithinCeilings(t *testing.T) {
	base := tree(t)
	j := func(p string) string { return filepath.Join(base, filepath.FromSlash(p)) }
	every := builtins.Permissions{Net: builtins.NetPermission{All: true}, Read: builtins.PathPermission{All: true}, Write: builtins.PathPermission{All: true}}
	if got := every.Within(every); got.Ceiling != nil || !got.Net.All || !got.Read.All || !got.Write.All {
		t.Errorf("all within all = %+v; want all, no ceiling", got)
	}
	inner := builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"127.0.0.1"}}, Read: builtins.PathPermission{Roots: []string{j("a/sub")}}}
	outer := builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"127.0.0.0/8"}}, Read: builtins.PathPermission{Roots: []string{j("a")}}, Ceiling: &inner}
	req := every
	req.Ceiling = &builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"127.0.0.2", "127.0.0.1"}}, Read: builtins.PathPermission{All: true}}
	got := req.Within(outer)
	if want := []string{j("a/sub")}; !slices.Equal(got.Read.Roots, want) {
		t.Errorf("read roots %q; want %q", got.Read.Roots, want)
	}
	if len(got.Write.Roots) != 0 || got.Write.All {
		t.Errorf("write %+v; want none", got.Write)
	}
	for host, allowed := range map[string]bool{"127.0.0.1": true, "127.0.0.2": false, "127.0.0.3": false} {
		if _, err := got.CheckNet(context.Background(), host, 80); (err == nil) != allowed {
			t.Errorf("CheckNet(%s) = %v; want allowed %v", host, err, allowed)
		}
	}
	// The result owns its slices.
	outer.Net.Allow[0] = "0.0.0.0/0"
	if _, err := got.CheckNet(context.Background(), "127.0.0.1", 80); err != nil {
		t.Errorf("after changing the ceiling's slice: %v", err)
	}
}

// The result survives JSON, as it would on its way to a job's process.
func TestWithinJSON(t *testing.T) {
	base := tree(t)
	j := func(p string) string { return filepath.Join(base, filepath.FromSlash(p)) }
	req := builtins.Permissions{Net: builtins.NetPermission{All: true}, Read: builtins.PathPermission{All: true}}
	got := req.Within(builtins.Permissions{Net: builtins.NetPermission{Allow: []string{"127.0.0.2"}}, Read: builtins.PathPermission{Roots: []string{j("a")}}})
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var back builtins.Permissions
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if _, err := back.CheckNet(context.Background(), "127.0.0.1", 80); !errors.Is(err, builtins.ErrPermission) {
		t.Errorf("CheckNet after JSON = %v; want denied", err)
	}
	if _, err := back.CheckRead(j("outside/secret.txt")); !errors.Is(err, builtins.ErrPermission) {
		t.Errorf("CheckRead after JSON = %v; want denied", err)
	}
	if _, err := back.CheckRead(j("a/file.txt")); err != nil {
		t.Errorf("CheckRead after JSON = %v; want allowed", err)
	}
}

// withinCases is how many random request and ceiling pairs the property
// test draws; each is checked on every path below. Forty cover the kinds of
// pair (all, nested, disjoint, through links) several times over, in
// seconds under the race detector.
const withinCases = 40

// For random requests and ceilings made of the tree's files, directories
// and links, the result allows a path exactly when both the request and
// the ceiling do (CheckRead and CheckWrite), and never allows what the
// ceiling does not (CheckWriteNoFollow, where a link root itself is lost).
// Both hold for the intersected roots alone too, without the Ceiling the
// result carries.
func TestWithinProperty(t *testing.T) {
	base := tree(t)
	nodes := []string{
		".", "a", "a/sub", "a/file.txt", "a/sub/deep.txt", "a/link-in", "a/link-out",
		"a/dirlink-out", "a/dangling", "a/danglingdir", "a/rel-out", "ab", "ab/secret.txt",
		"outside", "outside/secret.txt", "rootlink", "rootlink/sub", "loop1", "a/to-loop",
		"a/new", "a/dirlink-out/secret.txt", "a/rel-out/new",
	}
	rng := rand.New(rand.NewPCG(9, 9)) // Fixed: a failure can be run again.
	draw := func() []string {
		if rng.IntN(6) == 0 {
			return []string{allRoots}
		}
		roots := make([]string, rng.IntN(4))
		for i := range roots {
			roots[i] = nodes[rng.IntN(len(nodes))]
		}
		return roots
	}
	allowed := func(check func(string) (string, error), p string) bool {
		_, err := check(p)
		return err == nil
	}
	for range withinCases {
		rr, cr, rw, cw := draw(), draw(), draw(), draw()
		req := builtins.Permissions{Read: pathPerm(base, rr...), Write: pathPerm(base, rw...)}
		ceiling := builtins.Permissions{Read: pathPerm(base, cr...), Write: pathPerm(base, cw...)}
		got := req.Within(ceiling)
		own := got
		own.Ceiling = nil
		for _, rel := range nodes {
			p := filepath.Join(base, filepath.FromSlash(rel))
			for _, c := range []struct {
				name                   string
				got, own, req, ceiling func(string) (string, error)
				exact                  bool
				reqRoots, ceilRoots    []string
			}{
				{"read", got.CheckRead, own.CheckRead, req.CheckRead, ceiling.CheckRead, true, rr, cr},
				{"write", got.CheckWrite, own.CheckWrite, req.CheckWrite, ceiling.CheckWrite, true, rw, cw},
				{"write, no follow", got.CheckWriteNoFollow, own.CheckWriteNoFollow, req.CheckWriteNoFollow, ceiling.CheckWriteNoFollow, false, rw, cw},
			} {
				both := allowed(c.req, p) && allowed(c.ceiling, p)
				for name, check := range map[string]func(string) (string, error){"result": c.got, "its roots alone": c.own} {
					if g := allowed(check, p); g && !both || c.exact && !g && both {
						t.Fatalf("%s %s: request %q, ceiling %q: %s allows %v, request and ceiling %v (result %+v)",
							c.name, rel, c.reqRoots, c.ceilRoots, name, g, both, got)
					}
				}
			}
		}
	}
}
