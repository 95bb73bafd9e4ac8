package builtins

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ErrPermission is matched by every *PermissionError:
// errors.Is(err, ErrPermission) reports whether an operation was denied.
var ErrPermission = errors.New("permission denied")

// Permissions bounds what the fs and tcp modules may touch, like Deno's
// --allow-net, --allow-read and --allow-write. The zero value denies
// everything. A Permissions is only read by the checks, so one value may be
// shared by every runspace of a pool as long as nobody modifies it while
// scripts run.
type Permissions struct {
	// Net bounds the hosts tcp may connect to.
	Net NetPermission
	// Read bounds the paths fs may read (and stat, list, walk).
	Read PathPermission
	// Write bounds the paths fs may create, write, append to and remove.
	Write PathPermission
	// Ceiling, when set, must allow an operation too: a job submitted to
	// `rsh serve` gets the permissions it asks for, but never more than
	// the daemon was started with. A Ceiling may have a Ceiling of its
	// own; every one must allow. See also Within.
	Ceiling *Permissions

	// lookup, when set (by tests only), resolves host names for CheckNet
	// instead of net.DefaultResolver, so that tests need no DNS.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// NetPermission bounds network access. All allows every host; otherwise Allow
// lists the allowed entries, each one of:
//
//	host          a name, any port        example.com
//	host:port     a name, one port        example.com:443
//	IP            an address, any port    10.0.0.1, ::1, [::1]
//	IP:port       an address, one port    10.0.0.1:22, [::1]:22
//	CIDR          a network, any port     10.0.0.0/8, fd00::/8
//
// Host names compare case-insensitively. A name entry only matches that
// name; an IP or CIDR entry matches a name whose resolved address it contains.
//
// An IPv6 address with a zone (fe80::1%eth0, the interface a link-local
// address is reached through) is a different destination on each
// interface, so zones are strict: an IP entry with a zone matches only
// that address on that zone, written the same way; an IP entry without a
// zone matches only the address without one; a CIDR never matches an
// address with a zone.
//
//	fe80::1%eth0  an address on one interface   [fe80::1%eth0]:22
type NetPermission struct {
	// All allows every host and port (--allow-net without a value).
	All bool
	// Allow lists the allowed entries (--allow-net=ENTRY,...).
	Allow []string
}

// PathPermission bounds file system access. All allows every path; otherwise
// Roots lists the allowed directories (with everything under them) and files.
// Relative roots are relative to the process working directory.
type PathPermission struct {
	// All allows every path (--allow-read or --allow-write without a value).
	All bool
	// Roots lists the allowed directories and files (--allow-read=PATH,...).
	Roots []string
}

// PermissionError reports a denied operation. It matches ErrPermission with
// errors.Is, and Throw gives it the JavaScript error name "PermissionDenied".
type PermissionError struct {
	// Kind is "net", "read" or "write".
	Kind string
	// Target is what was denied, as the script named it: the path it
	// gave (never what a symbolic link in it points to, so a denial
	// cannot be used to read links outside the allowed roots), or
	// host:port.
	Target string
	// Flag is the narrowest command-line flag that would allow it,
	// e.g. "--allow-read=/etc/passwd". Roots given to a flag are resolved
	// like the paths a script gives, so the path as given allows what it
	// names. A ceiling's flag (ByCeiling) has the path made absolute, for
	// the daemon, which runs in a directory of its own.
	Flag string
	// ByCeiling is set when a Ceiling (the daemon's own flags) denied the
	// operation. It is set whether or not the permissions allowed it too:
	// a denial by a Ceiling is the one reported, since no request can
	// lift it.
	ByCeiling bool
}

// Error returns a message naming the target and the flag to add.
func (e *PermissionError) Error() string {
	if e.ByCeiling {
		return fmt.Sprintf("%s access to %q denied by the daemon's limits: start rsh serve with %s", e.Kind, e.Target, e.Flag)
	}
	return fmt.Sprintf("%s access to %q denied: run again with %s", e.Kind, e.Target, e.Flag)
}

// Is reports whether target is ErrPermission.
func (e *PermissionError) Is(target error) bool {
	return target == ErrPermission
}

// asPermission is errors.As for *PermissionError.
func asPermission(err error, target **PermissionError) bool {
	return errors.As(err, target)
}

// maxSymlinks bounds how many symbolic links one path resolution follows, so
// a link loop ends with an error. 255 is Linux's limit for a whole path
// (MAXSYMLINKS is 40 per component, but 255 costs nothing and is never hit by
// a sane tree).
const maxSymlinks = 255

// CheckRead checks that path may be read. It returns the path made absolute,
// cleaned and with every symbolic link resolved; the caller must operate on
// that path, not on the one it was given, so that what was checked is what is
// touched. A path that does not exist yet resolves through its longest
// existing ancestor. Roots are resolved the same way, at every check.
//
// The path is resolved once, and that one resolved path is what the
// permissions and every Ceiling check, so a link that changes while the
// check runs cannot show one of them a different path. The check is of the
// file system as it is now; fs then operates through an os.Root opened
// where Confine says, so a directory swapped for a link before the use
// cannot lead outside.
func (p *Permissions) CheckRead(path string) (resolved string, err error) {
	return p.checkPath("read", path, resolvePath)
}

// CheckWrite checks that path may be written or created, and returns its
// resolved form like CheckRead.
func (p *Permissions) CheckWrite(path string) (resolved string, err error) {
	return p.checkPath("write", path, resolvePath)
}

// CheckWriteNoFollow is CheckWrite for operations on a directory entry
// itself, such as removing it: when the last element of path is a symbolic
// link, the link is checked and returned, not its target. Every other link
// in path is resolved.
func (p *Permissions) CheckWriteNoFollow(path string) (resolved string, err error) {
	return p.checkPath("write", path, resolveNoFollow)
}

// Confine returns the directory that an operation on resolved — a path
// returned by CheckRead (kind "read") or CheckWrite or CheckWriteNoFollow
// (kind "write") — must not leave. Each level (the permissions, and each
// Ceiling) that does not allow everything gives one directory, from the
// root that holds resolved: that root; or, when the root is resolved
// itself, the root if it is a directory being read and otherwise its
// parent (a write may create or remove the root itself); or, for a file
// root, its parent. A level none of whose roots holds resolved (it was not
// checked, or a root changed since) gives resolved's parent. Confine
// returns the deepest of these, which every level's root holds, or the
// file-system root when every level allows every path. Operating through
// an os.Root opened there closes the gap between the check and the use: a
// directory swapped for a link in between cannot lead outside.
func (p *Permissions) Confine(kind, resolved string) string {
	dir := string(filepath.Separator)
	for _, q := range p.levels() {
		pp := q.paths(kind)
		if pp.All {
			continue
		}
		// Every candidate holds resolved, so of two, one holds the other.
		if d := pp.confine(kind, resolved); within(dir, d) {
			dir = d
		}
	}
	return dir
}

// levels returns p and then each Ceiling above it, in order.
func (p *Permissions) levels() []*Permissions {
	var ls []*Permissions
	for q := p; q != nil; q = q.Ceiling {
		ls = append(ls, q)
	}
	return ls
}

// paths returns the bound of kind "read" or "write".
func (p *Permissions) paths(kind string) *PathPermission {
	if kind == "write" {
		return &p.Write
	}
	return &p.Read
}

// denial is the error for target denied by a level of the permissions:
// level 0 is the permissions themselves, any other a Ceiling.
func denial(kind, target string, level int) *PermissionError {
	pe := &PermissionError{Kind: kind, Target: target, Flag: "--allow-" + kind + "=" + target}
	if level > 0 {
		pe.ByCeiling = true
		if kind != "net" {
			// Made absolute lexically: no link is followed.
			if abs, err := filepath.Abs(target); err == nil {
				pe.Flag = "--allow-" + kind + "=" + abs
			}
		}
	}
	return pe
}

// denier returns the level of levels whose denial to report, or -1 when
// allowed(level) holds for every one: the first Ceiling that denies, since
// no request can lift it, or else 0 when the permissions themselves deny.
func denier(levels int, allowed func(level int) bool) int {
	d := -1
	for i := range levels {
		if allowed(i) {
			continue
		}
		if i > 0 {
			return i
		}
		d = 0
	}
	return d
}

// checkPath resolves path once and checks the resolved path against the
// permissions and every Ceiling.
func (p *Permissions) checkPath(kind, path string, resolve func(string) (string, error)) (string, error) {
	if path == "" {
		return "", errors.New("empty path")
	}
	levels := p.levels()
	resolved, err := resolve(path)
	if err != nil {
		// The error says where resolution failed, which may be the target
		// of a link: name only the path as given, and outside the roots
		// say no more than a denial would.
		var re *resolveError
		cause := err
		if errors.As(err, &re) {
			cause = re.cause
		}
		if d := denier(len(levels), func(i int) bool {
			pp := levels[i].paths(kind)
			return pp.All || pp.lexicallyAllowed(path)
		}); d >= 0 {
			return "", denial(kind, path, d)
		}
		return "", fmt.Errorf("resolve %s: %w", path, cause)
	}
	if d := denier(len(levels), func(i int) bool { return levels[i].paths(kind).allows(resolved) }); d >= 0 {
		return "", denial(kind, path, d)
	}
	return resolved, nil
}

// allows reports whether the resolved path lies under one of the roots.
func (pp *PathPermission) allows(resolved string) bool {
	if pp.All {
		return true
	}
	for _, root := range pp.Roots {
		if root == "" {
			continue // Validate reports it; an empty root allows nothing.
		}
		// An unresolvable root (a link loop) allows nothing.
		if r, err := resolvePath(root); err == nil && within(r, resolved) {
			return true
		}
		// A root that is itself a link also allows the link, for
		// CheckWriteNoFollow: --allow-write=dir/link permits removing it.
		if r, err := resolveNoFollow(root); err == nil && within(r, resolved) {
			return true
		}
	}
	return false
}

// confine returns the directory an operation of kind on resolved must not
// leave, for these roots alone (see Confine). When no root holds resolved
// (it was not checked, or a root changed since) it returns resolved's
// parent, which leaves the operation nothing but resolved itself.
func (pp *PathPermission) confine(kind, resolved string) string {
	for _, root := range pp.Roots {
		if root == "" {
			continue
		}
		for _, resolve := range []func(string) (string, error){resolvePath, resolveNoFollow} {
			r, err := resolve(root)
			if err != nil || !within(r, resolved) {
				continue
			}
			fi, err := os.Stat(r)
			if r == resolved {
				if kind == "read" && err == nil && fi.IsDir() {
					return r
				}
				return filepath.Dir(r)
			}
			if err == nil && !fi.IsDir() {
				return filepath.Dir(r) // A file root.
			}
			return r
		}
	}
	return filepath.Dir(resolved)
}

// lexicallyAllowed reports whether path, made absolute without following
// any link, is under one of the roots as given or as resolved. It decides
// only whether a path that cannot be resolved may be told why: a script
// learns nothing from it about what lies outside its roots.
func (pp *PathPermission) lexicallyAllowed(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	for _, root := range pp.Roots {
		if root == "" {
			continue
		}
		if a, err := filepath.Abs(root); err == nil && within(a, abs) {
			return true
		}
		if r, err := resolvePath(root); err == nil && within(r, abs) {
			return true
		}
	}
	return false
}

// resolveError is a failed path resolution. Its message names the path
// being resolved, which may be a link's target; cause is the failure
// alone, for messages that must not say where links lead.
type resolveError struct {
	path  string
	cause error
}

func (e *resolveError) Error() string { return "resolve " + e.path + ": " + e.cause.Error() }

func (e *resolveError) Unwrap() error { return e.cause }

// bareCause returns err without the paths that *fs.PathError and
// *os.LinkError carry.
func bareCause(err error) error {
	var pe *iofs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// within reports whether path is root or inside it. Both must be absolute
// and clean; the comparison is by whole path elements, so /tmp/ab is not
// inside /tmp/a.
func within(root, path string) bool {
	if root == path {
		return true
	}
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// resolvePath makes path absolute and clean and resolves every symbolic link
// in it. The longest prefix that exists is resolved with
// filepath.EvalSymlinks and the rest is appended; a dangling link in that
// prefix is followed by hand, so writing through a link to a file that does
// not exist yet resolves to where the file would be created.
func resolvePath(path string) (string, error) {
	if path == "" {
		return "", errors.New("empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", &resolveError{path, err}
	}
	return resolveAbs(abs, 0)
}

// resolveNoFollow is resolvePath except that the last element of path is
// kept as is, even if it is a symbolic link.
func resolveNoFollow(path string) (string, error) {
	if path == "" {
		return "", errors.New("empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", &resolveError{path, err}
	}
	dir, base := filepath.Split(abs)
	if base == "" {
		return abs, nil // The root of the file system has no parent.
	}
	d, err := resolveAbs(filepath.Clean(dir), 0)
	if err != nil {
		return "", err
	}
	return filepath.Join(d, base), nil
}

func resolveAbs(abs string, links int) (string, error) {
	// Find the longest prefix that exists (as a file, directory or link).
	// Any Lstat error counts as "does not exist": whatever follows it cannot
	// be looked up by us, nor by the operation that comes after the check.
	existing, rest := abs, ""
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			return abs, nil // Nothing exists, not even the root.
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = parent
	}
	r, err := filepath.EvalSymlinks(existing)
	if err == nil {
		return filepath.Join(r, rest), nil
	}
	// existing is there but does not resolve. If it is a dangling link,
	// follow it one step and start again; a loop or a directory we may not
	// search is an error.
	if !errors.Is(err, iofs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return "", &resolveError{abs, bareCause(err)}
	}
	target, lerr := os.Readlink(existing)
	if lerr != nil {
		return "", &resolveError{abs, bareCause(err)}
	}
	if links++; links > maxSymlinks {
		return "", &resolveError{abs, syscall.ELOOP}
	}
	if !filepath.IsAbs(target) {
		dir, err := filepath.EvalSymlinks(filepath.Dir(existing))
		if err != nil {
			return "", &resolveError{abs, bareCause(err)}
		}
		target = filepath.Join(dir, target)
	}
	return resolveAbs(filepath.Join(target, rest), links)
}

// netEntry is one parsed NetPermission.Allow entry: exactly one of name,
// addr and prefix is set; port 0 means any port.
type netEntry struct {
	name   string
	addr   netip.Addr
	prefix netip.Prefix
	port   int
}

func (e netEntry) portOK(port int) bool { return e.port == 0 || e.port == port }

// parseNetEntry parses one --allow-net entry.
func parseNetEntry(s string) (netEntry, error) {
	if s == "" {
		return netEntry{}, errors.New("empty entry")
	}
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netEntry{}, fmt.Errorf("bad CIDR: %w", err)
		}
		return netEntry{prefix: pfx.Masked()}, nil
	}
	inner := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		inner = s[1 : len(s)-1]
	}
	// Brackets left inside are a [host]:port (a zone would take them in).
	if a, err := netip.ParseAddr(inner); err == nil && !strings.ContainsAny(inner, "[]") {
		return netEntry{addr: a.Unmap()}, nil
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		if strings.ContainsAny(s, "[]:") {
			return netEntry{}, fmt.Errorf("bad host or host:port: %w", err)
		}
		host = s
	} else {
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 1 || port > 65535 {
			return netEntry{}, fmt.Errorf("bad port %q: want 1-65535", portStr)
		}
		e, err := parseNetHost(host)
		e.port = port
		return e, err
	}
	return parseNetHost(host)
}

func parseNetHost(host string) (netEntry, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return netEntry{addr: a.Unmap()}, nil
	}
	name := normalizeHost(host)
	if name == "" {
		return netEntry{}, errors.New("empty host")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return netEntry{}, fmt.Errorf("bad host name %q", host)
		}
	}
	return netEntry{name: name}, nil
}

// normalizeHost lower-cases a host name and drops the trailing dot of a
// fully qualified name, so "Example.COM." and "example.com" compare equal.
func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func (np *NetPermission) entries() ([]netEntry, error) {
	es := make([]netEntry, 0, len(np.Allow))
	for _, s := range np.Allow {
		e, err := parseNetEntry(s)
		if err != nil {
			return nil, fmt.Errorf("--allow-net entry %q: %w", s, err)
		}
		es = append(es, e)
	}
	return es, nil
}

// CheckNet checks that host:port may be connected to and returns the host to
// dial. The permissions and every Ceiling must allow the destination, and
// the host returned is one that all of them allow:
//
//   - A literal IP is matched against the IP and CIDR entries of each, and
//     returned.
//   - A name that each allows by name (All, or a name entry) is returned as
//     is.
//   - Otherwise the name is resolved once (with ctx), and the first address
//     that every level allows — by its IP and CIDR entries, or by the name
//     for a level that allows the name — is returned as an IP literal, so a
//     second DNS answer cannot point the dial somewhere else.
//
// No lookup is made when some level allows neither the name nor any address
// on that port. A failed lookup is returned as an ordinary error, not a
// PermissionError. A denial by a Ceiling is reported as such (ByCeiling)
// even when the permissions deny too, since no request can lift it.
func (p *Permissions) CheckNet(ctx context.Context, host string, port int) (dialHost string, err error) {
	if port < 1 || port > 65535 {
		return "", fmt.Errorf("check net %s: port %d out of range 1-65535", host, port)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return "", errors.New("check net: empty host")
	}
	levels := p.levels()
	entries := make([][]netEntry, len(levels)) // nil for a level that allows all
	for i, q := range levels {
		if q.Net.All {
			continue
		}
		if entries[i], err = q.Net.entries(); err != nil {
			return "", err
		}
	}
	all := func(i int) bool { return levels[i].Net.All }
	target := net.JoinHostPort(host, strconv.Itoa(port))
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if d := denier(len(levels), func(i int) bool { return all(i) || matchAddr(entries[i], a, port) }); d >= 0 {
			return "", denial("net", target, d)
		}
		return a.String(), nil
	}
	name := normalizeHost(host)
	byName := make([]bool, len(levels))
	byAddr := make([]bool, len(levels)) // has an IP or CIDR entry for port
	for i := range levels {
		byName[i] = all(i)
		for _, e := range entries[i] {
			if !e.portOK(port) {
				continue
			}
			if e.name != "" && e.name == name {
				byName[i] = true
			}
			if e.name == "" {
				byAddr[i] = true
			}
		}
	}
	if d := denier(len(levels), func(i int) bool { return byName[i] || byAddr[i] }); d >= 0 {
		return "", denial("net", target, d)
	}
	if !slices.Contains(byName, false) {
		return host, nil
	}
	addrs, err := p.lookupHost(ctx, host)
	if err != nil {
		return "", err // A *net.DNSError already reads "lookup HOST: ...".
	}
	allows := func(i int, a netip.Addr) bool { return byName[i] || matchAddr(entries[i], a, port) }
	for _, a := range addrs {
		a = a.Unmap()
		if d := denier(len(levels), func(i int) bool { return allows(i, a) }); d < 0 {
			return a.String(), nil
		}
	}
	// No address is allowed by every level: report a level that allows
	// none of them, or else the first Ceiling that needed an address (each
	// allows some, the Ceiling not those the others do).
	d := denier(len(levels), func(i int) bool {
		return slices.ContainsFunc(addrs, func(a netip.Addr) bool { return allows(i, a.Unmap()) })
	})
	if d < 0 {
		d = slices.Index(byName[1:], false) + 1
	}
	return "", denial("net", target, d)
}

// lookupHost resolves a host name with the lookup set for tests, or else
// with the default resolver.
func (p *Permissions) lookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if p.lookup != nil {
		return p.lookup(ctx, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// matchAddr reports whether an IP or CIDR entry allows a:port. Zones are
// strict (see NetPermission): netip.Addr equality compares them, and
// Prefix.Contains is false for an address with a zone.
func matchAddr(entries []netEntry, a netip.Addr, port int) bool {
	a = a.Unmap()
	for _, e := range entries {
		if !e.portOK(port) {
			continue
		}
		if e.addr.IsValid() && e.addr == a || e.prefix.IsValid() && e.prefix.Contains(a) {
			return true
		}
	}
	return false
}

// Validate reports every malformed entry: a bad CIDR, host or port in
// Net.Allow, or an empty root in Read or Write. The CLI calls it after
// parsing the --allow-* flags; checks treat a bad net entry as an error and
// an empty root as allowing nothing.
func (p *Permissions) Validate() error {
	var errs []error
	for _, s := range p.Net.Allow {
		if _, err := parseNetEntry(s); err != nil {
			errs = append(errs, fmt.Errorf("--allow-net entry %q: %w", s, err))
		}
	}
	for _, pp := range []struct {
		kind  string
		roots []string
	}{{"read", p.Read.Roots}, {"write", p.Write.Roots}} {
		for i, r := range pp.roots {
			if r == "" {
				errs = append(errs, fmt.Errorf("--allow-%s entry %d: empty path", pp.kind, i+1))
			}
		}
	}
	return errors.Join(errs...)
}
