package builtins

import "slices"

// Within returns the permissions that a request p gets under ceiling,
// computed once: what a job of `rsh serve` runs with. The result never
// allows anything that ceiling (or a Ceiling of p) does not.
//
// Read and Write are intersected on resolved paths. Every root, on both
// sides, is resolved as the checks resolve it (made absolute against the
// working directory of the process calling Within, links followed), so a
// request made elsewhere must have absolute roots. Then a requested root
// inside a ceiling root is kept; a ceiling root inside a requested root is
// kept instead; any other requested root is dropped, so a requested root
// that is a link to outside the ceiling allows nothing. All on one side
// gives the other side's roots, resolved; All on both gives All. A root
// that cannot be resolved (a link loop, an empty root) allows nothing. The
// roots kept are the resolved ones: a root that is itself a link allows
// what it points to, no longer the link itself (CheckWriteNoFollow).
//
// Net is not intersected: a name entry and a CIDR do not compare without a
// lookup, and a name resolves to other addresses over time. The result
// keeps the request's Net, and its Ceiling carries the ceiling's Net, which
// CheckNet applies to the one resolution it makes at each connection. That
// Ceiling also carries the ceiling's Read and Write roots, resolved. They
// allow everything the intersected roots do, so they restrict nothing
// while the file system stays as it was; they keep the ceiling's bound if
// a root is later re-pointed (roots are resolved again at each check), and
// make a denial outside the ceiling say so (ByCeiling). The result has no
// Ceiling when the ceiling allows everything.
//
// The result shares no slice with p or ceiling.
func (p Permissions) Within(ceiling Permissions) Permissions {
	// Every level above the request is a ceiling: p's own, then ceiling
	// and its own.
	ceilings := append(p.levels()[1:], ceiling.levels()...)
	bound := Permissions{Read: PathPermission{All: true}, Write: PathPermission{All: true}}
	var nets []NetPermission
	for _, c := range ceilings {
		bound.Read = bound.Read.intersect(c.Read)
		bound.Write = bound.Write.intersect(c.Write)
		if !c.Net.All {
			nets = append(nets, NetPermission{Allow: slices.Clone(c.Net.Allow)})
		}
	}
	r := Permissions{
		Net:    NetPermission{All: p.Net.All, Allow: slices.Clone(p.Net.Allow)},
		Read:   p.Read.intersect(bound.Read),
		Write:  p.Write.intersect(bound.Write),
		lookup: p.lookup,
	}
	if !bound.Read.All || !bound.Write.All || len(nets) > 0 {
		bound.Net.All = true
		if len(nets) > 0 {
			bound.Net = nets[0]
			nets = nets[1:]
		}
		r.Ceiling = &bound
		// Further nets, each a Ceiling of the one before; every one must
		// allow a connection.
		last := r.Ceiling
		for _, n := range nets {
			last.Ceiling = &Permissions{Net: n, Read: PathPermission{All: true}, Write: PathPermission{All: true}}
			last = last.Ceiling
		}
	}
	return r
}

// intersect returns the roots that pp and c both allow, resolved (see
// Within).
func (pp PathPermission) intersect(c PathPermission) PathPermission {
	switch {
	case pp.All && c.All:
		return PathPermission{All: true}
	case pp.All:
		return PathPermission{Roots: resolveRoots(c.Roots)}
	case c.All:
		return PathPermission{Roots: resolveRoots(pp.Roots)}
	}
	cr := resolveRoots(c.Roots)
	var roots []string
	for _, r := range resolveRoots(pp.Roots) {
		for _, b := range cr {
			keep := ""
			if within(b, r) {
				keep = r
			} else if within(r, b) {
				keep = b
			}
			if keep != "" && !slices.Contains(roots, keep) {
				roots = append(roots, keep)
			}
		}
	}
	return PathPermission{Roots: roots}
}

// resolveRoots resolves each root as the checks do, dropping those that do
// not resolve and repeats.
func resolveRoots(roots []string) []string {
	var out []string
	for _, root := range roots {
		if root == "" {
			continue
		}
		r, err := resolvePath(root)
		if err != nil || slices.Contains(out, r) {
			continue
		}
		out = append(out, r)
	}
	return out
}
