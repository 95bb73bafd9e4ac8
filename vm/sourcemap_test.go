//go:build unix

package vm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runspaces/rsh/vm"
)

// copyTestdata copies testdata/DIR's files into a new temporary directory
// and returns it.
func copyTestdata(t *testing.T, dir string) string {
	t.Helper()
	tmp := t.TempDir()
	entries, err := os.ReadDir(filepath.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("testdata", dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return tmp
}

// watchFIFO makes a FIFO at path and reports, once stop is called, whether
// anything opened it for reading meanwhile. A reader blocks until a writer
// comes, so the watcher keeps trying to open the write end: if it ever
// succeeds, someone was reading (and gets an empty file, so the test ends
// either way).
func watchFIFO(t *testing.T, path string) (stop func() (opened bool)) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var opened atomic.Bool
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err == nil {
				opened.Store(true)
				f.Close()
			} else if !errors.Is(err, syscall.ENXIO) {
				t.Errorf("open %s: %v", path, err)
				return
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() bool {
		close(done)
		<-finished
		return opened.Load()
	}
}

// TestSourceMapsAreNotRead: a source-map comment naming a FIFO, in the
// script, in eval'd code, in new Function's body and in a required module,
// never makes rsh open the FIFO (which would hang the parse for ever).
func TestSourceMapsAreNotRead(t *testing.T) {
	dir := copyTestdata(t, "sourcemap")
	fifo := filepath.Join(dir, "fifo")
	stop := watchFIFO(t, fifo)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// Code made at run time is named "<eval>", so its source-map path is
	// taken relative to the working directory.
	rel, err := filepath.Rel(wd, fifo)
	if err != nil {
		t.Fatal(err)
	}
	rs := pathRunspace(t, filepath.Join(dir, "main.js"), vm.InitialState{Params: map[string]any{"fifo": rel}})
	res := rs.Invoke(context.Background(), nil)
	if opened := stop(); opened {
		t.Error("the FIFO named by a sourceMappingURL comment was opened")
	}
	if res.Status != vm.Success || outputs(res) != "[1,2,3]" {
		t.Fatalf("status %s, output %s, error %+v; want Success [1,2,3]", res.Status, outputs(res), res.Error)
	}
}

// TestSourceMapIsNotApplied: a valid source map next to the script, which
// would move the error to original.ts:100, is not used: the stack names the
// script's own line.
func TestSourceMapIsNotApplied(t *testing.T) {
	dir := copyTestdata(t, "sourcemap")
	rs := pathRunspace(t, filepath.Join(dir, "mapped.js"), vm.InitialState{})
	res := rs.Invoke(context.Background(), nil)
	if res.Status != vm.Exception {
		t.Fatalf("status %s, want Exception", res.Status)
	}
	if strings.Contains(res.Error.Stack, "original.ts") || !strings.Contains(res.Error.Stack, "mapped.js:1:") {
		t.Errorf("stack %q: want mapped.js:1, not the source map's original.ts", res.Error.Stack)
	}
}
