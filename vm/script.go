package vm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
)

// Script is a compiled script block. It is compiled once and shared, read
// only, by every runspace that runs it.
type Script struct {
	name string // as given: a file path or "-e"
	dir  string // absolute directory that relative requires start from
	prog *goja.Program
	src  string // the source, for worker processes that compile it again
}

// Source returns the script's source text.
func (s *Script) Source() string { return s.src }

// Name returns the name the script was compiled under: its path, or "-e".
func (s *Script) Name() string { return s.name }

// Dir returns the absolute directory the script's relative requires resolve
// from and whose tree they may load modules from.
func (s *Script) Dir() string { return s.dir }

// CompileError is a script that did not compile. Its message carries
// file:line:column.
type CompileError struct {
	File         string
	Line, Column int
	Msg          string
	Hint         string // extra advice, e.g. for import/export
}

func (e *CompileError) Error() string {
	s := fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Compile compiles src. name is used in error messages and stacks; dir is
// the directory relative requires resolve from (the working directory when
// empty).
func Compile(name, dir, src string) (*Script, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("vm: compile %s: %w", name, err)
		}
		dir = wd
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("vm: compile %s: %w", name, err)
	}
	// A leading #! line is allowed so scripts can be executable.
	if strings.HasPrefix(src, "#!") {
		if i := strings.IndexByte(src, '\n'); i >= 0 {
			src = "//" + src[2:]
		} else {
			src = ""
		}
	}
	// Source maps off: see sourcemap.go.
	ast, err := goja.Parse(name, src, parser.WithDisableSourceMaps)
	if err != nil {
		return nil, compileError(name, src, err)
	}
	prog, err := goja.CompileAST(ast, false)
	if err != nil {
		return nil, compileError(name, src, err)
	}
	return &Script{name: name, dir: absDir, prog: prog, src: src}, nil
}

// CompileDetached compiles src as a script with no directory: require
// loads only builtin modules and files under InitialState.ModulePaths. A
// job's inline code (-e) is compiled so, and so is a script whose
// directory a daemon may not let it read.
func CompileDetached(name, src string) (*Script, error) {
	s, err := Compile(name, string(filepath.Separator), src)
	if err != nil {
		return nil, err
	}
	s.dir = ""
	return s, nil
}

// CompileFile reads and compiles the script at path.
func CompileFile(path string) (*Script, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("script %s: no such file", path)
		}
		return nil, fmt.Errorf("script %s: %w", path, err)
	}
	return Compile(path, filepath.Dir(path), string(src))
}

// The patterns are compiled on first use: only a failed compile needs
// them, and every command pays for what is done at start-up.
var (
	// goja reports "name: Line 3:7 message" for parse errors.
	parsePos = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`Line (\d+):(\d+) (.*)$`) })
	esmLine  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^\s*(import\s*[\w{*'"]|export\s)`) })
)

const esmHint = "rsh scripts are not ES modules: set module.exports = function (item, params) {...} and use require() instead of import/export"

func compileError(name, src string, err error) error {
	ce := &CompileError{File: name, Line: 1, Column: 1, Msg: err.Error()}
	var se *goja.CompilerSyntaxError
	if errors.As(err, &se) {
		ce.Msg = se.Message
		if se.File != nil {
			p := se.File.Position(se.Offset)
			ce.Line, ce.Column = p.Line, p.Column
		}
	}
	if m := parsePos().FindStringSubmatch(ce.Msg); m != nil {
		fmt.Sscan(m[1], &ce.Line)
		fmt.Sscan(m[2], &ce.Column)
		ce.Msg = m[3]
	}
	ce.Msg = "syntax error: " + strings.TrimPrefix(ce.Msg, "SyntaxError: ")
	if loc := esmLine().FindStringIndex(src); loc != nil {
		ce.Hint = esmHint
	}
	return ce
}
