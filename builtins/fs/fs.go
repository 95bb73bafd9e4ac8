// Package fs is the builtin module require('fs'): synchronous file system
// access for scripts, bounded by the runspace's read and write permissions.
//
// Every path is checked with builtins.Permissions.CheckRead or CheckWrite,
// and the operation is then done on the resolved path the check returns,
// through an os.Root opened at the allowed root that holds it
// (Permissions.Confine). The resolved path held no symbolic link when it was
// checked, and os.Root will not leave its directory, so a directory on that
// path replaced by a link between the check and the operation (by another
// process, or a script in another runspace) makes the operation fail rather
// than go outside. A denied path throws
// a PermissionDenied error; any other failure throws an Error whose message
// starts with the function name and the path as the script gave it, e.g.
// "fs.readFile notes.txt: no such file or directory". Messages never name
// the path a link led to.
//
// Reading and writing file contents (readFile, readBytes, writeFile,
// appendFile) work on regular files only: a named pipe or a device can
// block for ever or never end, beyond the reach of the item's timeout, so
// it throws "not a regular file" instead. stat, readDir and walk describe
// any kind of entry, with its type.
//
// Functions (all synchronous):
//
//	readFile(path) string                   the file's bytes as UTF-8 text
//	readBytes(path) Uint8Array
//	writeFile(path, data)                   data: string, ArrayBuffer, typed array or DataView
//	appendFile(path, data)
//	stat(path) {path, name, size, type, isDir, isFile, isSymlink, mode, modified}
//	readDir(path) [{name, path, size, type, isDir, isSymlink, modified}]
//	walk(path) [{path, size, type, isDir, isSymlink, modified}]
//	exists(path) boolean
//	mkdir(path, {recursive = true})
//	remove(path, {recursive = false})
//
// type is one of "file", "dir", "symlink", "fifo", "socket",
// "char-device", "block-device" or "other".
package fs

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/require"

	"github.com/runspaces/rsh/builtins"
)

// ModuleName is the name scripts pass to require.
const ModuleName = "fs"

// fileMode is the mode of files created by writeFile and appendFile, and
// dirMode that of directories created by mkdir, before the umask: the usual
// defaults of touch and mkdir.
const (
	fileMode = 0o644
	dirMode  = 0o755
)

// isoMillis formats times like JavaScript's Date.prototype.toISOString, so a
// script can pass them to new Date().
const isoMillis = "2006-01-02T15:04:05.000Z"

// Require returns the loader for require('fs'), bound to env. A nil env
// denies everything.
func Require(env *builtins.Env) require.ModuleLoader {
	if env == nil {
		env = &builtins.Env{}
	}
	return func(rt *goja.Runtime, module *goja.Object) {
		m := &fsModule{rt: rt, env: env}
		exports := module.Get("exports").(*goja.Object)
		for name, f := range map[string]func(goja.FunctionCall) goja.Value{
			"readFile":   m.readFile,
			"readBytes":  m.readBytes,
			"writeFile":  m.writeFile,
			"appendFile": m.appendFile,
			"stat":       m.stat,
			"readDir":    m.readDir,
			"walk":       m.walk,
			"exists":     m.exists,
			"mkdir":      m.mkdir,
			"remove":     m.remove,
		} {
			_ = exports.Set(name, f)
		}
	}
}

// Enable binds the module to the global fs in rt, without a registry.
func Enable(rt *goja.Runtime, env *builtins.Env) {
	module := rt.NewObject()
	_ = module.Set("exports", rt.NewObject())
	Require(env)(rt, module)
	rt.Set("fs", module.Get("exports"))
}

// fsModule holds what the module's functions share. Its methods run on the
// runtime's goroutine only, like every goja callback.
type fsModule struct {
	rt  *goja.Runtime
	env *builtins.Env
}

// fail throws err as a JavaScript Error (PermissionDenied for a permission
// error) whose message names fn and path, the path as the script gave it.
// The path inside an *fs.PathError or *os.LinkError is the resolved one,
// which may be where a link led, so only its cause is kept.
func (m *fsModule) fail(fn, path string, err error) {
	var pe *builtins.PermissionError
	if errors.As(err, &pe) {
		builtins.Throw(m.rt, "PermissionDenied", err)
	}
	var pathErr *iofs.PathError
	var linkErr *os.LinkError
	switch {
	case errors.As(err, &pathErr):
		err = pathErr.Err
	case errors.As(err, &linkErr):
		err = linkErr.Err
	}
	builtins.Throw(m.rt, "Error", fmt.Errorf("fs.%s %s: %w", fn, path, err))
}

// errNotRegular is thrown, wrapped, for contents read from or written to
// something that is not a regular file.
var errNotRegular = errors.New("not a regular file")

// typeName names the type of a file mode, as the type field reports it.
func typeName(mode iofs.FileMode) string {
	switch {
	case mode.IsRegular():
		return "file"
	case mode.IsDir():
		return "dir"
	case mode&iofs.ModeSymlink != 0:
		return "symlink"
	case mode&iofs.ModeNamedPipe != 0:
		return "fifo"
	case mode&iofs.ModeSocket != 0:
		return "socket"
	case mode&iofs.ModeCharDevice != 0:
		return "char-device"
	case mode&iofs.ModeDevice != 0:
		return "block-device"
	}
	return "other"
}

// notRegular is the error for contents of something that is not a
// regular file.
func notRegular(mode iofs.FileMode) error {
	what := typeName(mode)
	if what == "dir" {
		what = "directory"
	}
	return fmt.Errorf("%w (a %s): only regular files can be read or written", errNotRegular, what)
}

// openRegular opens c for its contents with flag and refuses anything
// but a regular file. It looks before opening, so that a named pipe is
// not even opened, and opens without blocking (O_NONBLOCK: opening a pipe
// otherwise waits for its other end), then checks what it opened, in case
// the entry was replaced in between. A failure throws.
func (m *fsModule) openRegular(fn, path string, c confined, flag int) *os.File {
	if fi, err := c.root.Stat(c.rel); err == nil && !fi.Mode().IsRegular() {
		m.fail(fn, path, notRegular(fi.Mode()))
	}
	f, err := c.root.OpenFile(c.rel, flag|syscall.O_NONBLOCK, fileMode)
	if err != nil {
		m.fail(fn, path, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = notRegular(fi.Mode())
	}
	if err != nil {
		f.Close()
		m.fail(fn, path, err)
	}
	return f
}

// pathArg returns argument i, which must be a string.
func (m *fsModule) pathArg(fn string, call goja.FunctionCall, i int) string {
	v := call.Argument(i)
	if s, ok := v.Export().(string); ok {
		return s
	}
	builtins.Throw(m.rt, "TypeError", fmt.Errorf("fs.%s: path must be a string, not %s", fn, builtins.TypeName(v)))
	return ""
}

// confined is a checked path, to be used through an os.Root opened at the
// allowed root that holds it (Permissions.Confine): os.Root will not leave
// that directory, by ".." or by a link, so a directory swapped for a link
// between the check and the operation cannot take it outside.
type confined struct {
	root *os.Root
	rel  string // the resolved path, relative to root
}

// afterCheck, when set (by tests only), runs between a permission check
// and the operation it allowed: the window a swapped link would use.
var afterCheck func()

// check checks path for kind ("read", "write" or "remove": write, not
// following a final link) and opens its confining root; the caller must
// close it. A failure throws.
func (m *fsModule) check(fn, path, kind string) confined {
	perms := m.env.Perms()
	var resolved string
	var err error
	switch kind {
	case "read":
		resolved, err = perms.CheckRead(path)
	case "write":
		resolved, err = perms.CheckWrite(path)
	default:
		resolved, err = perms.CheckWriteNoFollow(path)
		kind = "write"
	}
	if err != nil {
		m.fail(fn, path, err)
	}
	dir := perms.Confine(kind, resolved)
	rel, err := filepath.Rel(dir, resolved)
	if err != nil {
		m.fail(fn, path, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		m.fail(fn, path, err)
	}
	if afterCheck != nil {
		afterCheck()
	}
	return confined{root: root, rel: rel}
}

func (m *fsModule) read(fn string, call goja.FunctionCall) []byte {
	path := m.pathArg(fn, call, 0)
	c := m.check(fn, path, "read")
	defer c.root.Close()
	f := m.openRegular(fn, path, c, os.O_RDONLY)
	defer f.Close()
	b, err := readAll(f)
	if err != nil {
		m.fail(fn, path, err)
	}
	return b
}

// readAll reads f to its end into a buffer sized from its length, as
// os.ReadFile does, so that a file's bytes are held once, not in a buffer
// grown by doubling.
func readAll(f *os.File) ([]byte, error) {
	size := 0
	if fi, err := f.Stat(); err == nil && int64(int(fi.Size())) == fi.Size() {
		size = int(fi.Size())
	}
	b := make([]byte, 0, size+512) // +512: files that grew, or report no size (/proc).
	for {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

func (m *fsModule) readFile(call goja.FunctionCall) goja.Value {
	return m.rt.ToValue(string(m.read("readFile", call)))
}

func (m *fsModule) readBytes(call goja.FunctionCall) goja.Value {
	return builtins.Uint8Array(m.rt, m.read("readBytes", call))
}

func (m *fsModule) write(fn string, call goja.FunctionCall, flag int) goja.Value {
	path := m.pathArg(fn, call, 0)
	data, err := builtins.Bytes(m.rt, call.Argument(1))
	if err != nil {
		builtins.Throw(m.rt, "TypeError", fmt.Errorf("fs.%s %s: %w", fn, path, err))
	}
	c := m.check(fn, path, "write")
	defer c.root.Close()
	f := m.openRegular(fn, path, c, os.O_WRONLY|os.O_CREATE|flag)
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		m.fail(fn, path, err)
	}
	return goja.Undefined()
}

func (m *fsModule) writeFile(call goja.FunctionCall) goja.Value {
	return m.write("writeFile", call, os.O_TRUNC)
}

func (m *fsModule) appendFile(call goja.FunctionCall) goja.Value {
	return m.write("appendFile", call, os.O_APPEND)
}

// stat follows links, like Node's fs.statSync: the permission is checked on
// the resolved path and the resolved file is described. isSymlink tells
// whether the path as given was itself a link.
func (m *fsModule) stat(call goja.FunctionCall) goja.Value {
	path := m.pathArg("stat", call, 0)
	c := m.check("stat", path, "read")
	defer c.root.Close()
	fi, err := c.root.Stat(c.rel)
	if err != nil {
		m.fail("stat", path, err)
	}
	isLink := false
	if abs, err := filepath.Abs(path); err == nil {
		if li, err := os.Lstat(abs); err == nil {
			isLink = li.Mode()&os.ModeSymlink != 0
		}
	}
	o := m.rt.NewObject()
	_ = o.Set("path", path)
	_ = o.Set("name", filepath.Base(path))
	_ = o.Set("size", fi.Size())
	_ = o.Set("type", typeName(fi.Mode()))
	_ = o.Set("isDir", fi.IsDir())
	_ = o.Set("isFile", fi.Mode().IsRegular())
	_ = o.Set("isSymlink", isLink)
	_ = o.Set("mode", uint32(fi.Mode().Perm()))
	_ = o.Set("modified", fi.ModTime().UTC().Format(isoMillis))
	return o
}

// readDir lists a directory, sorted by name, without following the links in
// it: a link's entry describes the link.
func (m *fsModule) readDir(call goja.FunctionCall) goja.Value {
	path := m.pathArg("readDir", call, 0)
	c := m.check("readDir", path, "read")
	defer c.root.Close()
	des, err := iofs.ReadDir(c.root.FS(), filepath.ToSlash(c.rel)) // Sorted by file name.
	if err != nil {
		m.fail("readDir", path, err)
	}
	items := make([]any, 0, len(des))
	for _, de := range des {
		fi, err := de.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			continue // Removed since it was listed.
		}
		if err != nil {
			m.fail("readDir", path, err)
		}
		o := m.rt.NewObject()
		_ = o.Set("name", de.Name())
		_ = o.Set("path", filepath.Join(path, de.Name()))
		_ = o.Set("size", fi.Size())
		_ = o.Set("type", typeName(fi.Mode()))
		_ = o.Set("isDir", fi.IsDir())
		_ = o.Set("isSymlink", fi.Mode()&os.ModeSymlink != 0)
		_ = o.Set("modified", fi.ModTime().UTC().Format(isoMillis))
		items = append(items, o)
	}
	return m.rt.NewArray(items...)
}

// walkEntry is one entry found by walk.
type walkEntry struct {
	path     string // Relative to the resolved root.
	size     int64
	mode     iofs.FileMode
	isDir    bool
	isLink   bool
	modified time.Time
}

// walk lists path and everything under it, in lexical order, without
// following links. A file's size is its own; a directory's size is the total
// size of the regular files under it (like du --apparent-size, without the
// directories' and links' own sizes), so walk(p)[0].size is the size of the
// whole tree. The item's context is
// checked at every entry, so a timeout or stop interrupts a big walk.
func (m *fsModule) walk(call goja.FunctionCall) goja.Value {
	path := m.pathArg("walk", call, 0)
	c := m.check("walk", path, "read")
	defer c.root.Close()
	start := filepath.ToSlash(c.rel)
	ctx := m.env.Context()
	var entries []walkEntry
	dirs := map[string]int{} // Relative path of a directory → index in entries.
	err := iofs.WalkDir(c.root.FS(), start, func(p string, de iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(filepath.FromSlash(start), filepath.FromSlash(p))
		if err != nil {
			return err
		}
		e := walkEntry{path: rel, mode: fi.Mode(), isDir: de.IsDir(), isLink: fi.Mode()&os.ModeSymlink != 0, modified: fi.ModTime()}
		if e.isDir {
			dirs[rel] = len(entries)
		} else if e.size = fi.Size(); fi.Mode().IsRegular() {
			// Add the size to every enclosing directory up to the root.
			for d := rel; d != "."; {
				d = filepath.Dir(d)
				if i, ok := dirs[d]; ok {
					entries[i].size += e.size
				}
			}
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		m.fail("walk", path, err)
	}
	items := make([]any, len(entries))
	for i, e := range entries {
		o := m.rt.NewObject()
		_ = o.Set("path", filepath.Join(path, e.path))
		_ = o.Set("size", e.size)
		_ = o.Set("type", typeName(e.mode))
		_ = o.Set("isDir", e.isDir)
		_ = o.Set("isSymlink", e.isLink)
		_ = o.Set("modified", e.modified.UTC().Format(isoMillis))
		items[i] = o
	}
	return m.rt.NewArray(items...)
}

// exists reports whether path exists (following links). It needs read
// permission: a denied path throws rather than answering false, so a script
// cannot probe outside its roots.
func (m *fsModule) exists(call goja.FunctionCall) goja.Value {
	path := m.pathArg("exists", call, 0)
	c := m.check("exists", path, "read")
	defer c.root.Close()
	_, err := c.root.Stat(c.rel)
	switch {
	case err == nil:
		return m.rt.ToValue(true)
	case errors.Is(err, iofs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return m.rt.ToValue(false) // ENOTDIR: a parent is a file.
	default:
		m.fail("exists", path, err)
		return nil
	}
}

// mkdir creates a directory, with its parents unless {recursive: false}.
// Like mkdir -p, an existing directory is not an error when recursive.
func (m *fsModule) mkdir(call goja.FunctionCall) goja.Value {
	path := m.pathArg("mkdir", call, 0)
	recursive := m.boolOption(call.Argument(1), "recursive", true)
	c := m.check("mkdir", path, "write")
	defer c.root.Close()
	var err error
	if recursive {
		err = c.root.MkdirAll(c.rel, dirMode)
	} else {
		err = c.root.Mkdir(c.rel, dirMode)
	}
	if err != nil {
		m.fail("mkdir", path, err)
	}
	return goja.Undefined()
}

// remove removes a file, a link (not its target) or an empty directory, or a
// whole tree with {recursive: true}. The permission is checked on the entry
// itself (CheckWriteNoFollow), so removing a link inside a writable root
// works even when it points outside, and never touches the target.
func (m *fsModule) remove(call goja.FunctionCall) goja.Value {
	path := m.pathArg("remove", call, 0)
	recursive := m.boolOption(call.Argument(1), "recursive", false)
	c := m.check("remove", path, "remove")
	defer c.root.Close()
	var err error
	if recursive {
		// RemoveAll does not follow links and succeeds on a missing path;
		// keep the non-recursive behaviour of failing on a missing path.
		if _, err = c.root.Lstat(c.rel); err == nil {
			err = c.root.RemoveAll(c.rel)
		}
	} else {
		err = c.root.Remove(c.rel)
	}
	if err != nil {
		m.fail("remove", path, err)
	}
	return goja.Undefined()
}

// boolOption returns opts[name] as a boolean, or def when opts or the
// property is undefined or null.
func (m *fsModule) boolOption(opts goja.Value, name string, def bool) bool {
	if goja.IsUndefined(opts) || goja.IsNull(opts) {
		return def
	}
	v := opts.ToObject(m.rt).Get(name)
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return def
	}
	return v.ToBoolean()
}
