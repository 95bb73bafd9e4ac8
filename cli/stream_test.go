package cli_test

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"strconv"
	"testing"

	"github.com/runspaces/rsh/cli"
	"github.com/runspaces/rsh/internal/testutil"
)

// lineGen generates the lines 1..n on the fly, so a long input costs no
// memory of its own.
type lineGen struct {
	i, n int
	buf  []byte
}

func (g *lineGen) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.i < g.n {
		g.i++
		g.buf = strconv.AppendInt(g.buf, int64(g.i), 10)
		g.buf = append(g.buf, '\n')
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// lineCounter counts the lines written to it.
type lineCounter struct{ n int }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

// streamLimit is the heap a streaming run may use. Holding every item of
// the test's input would take several times this: 300,000 results of a
// few hundred bytes each, plus their inputs.
const streamLimit = 48 << 20

// Input is streamed: every line comes out, and the heap stays far below
// what holding the whole input would need — unordered, and with
// --keep-order while the first item is slow (the reorder window holds the
// reader back instead of buffering everything behind item 1).
func TestStreamingBoundedMemory(t *testing.T) {
	const n = 300_000
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unordered", []string{"-e", "(n) => n"}},
		{"ordered-slow-first", []string{"-k", "-e", "(n) => { if (n === 1) sleep(500); return n }"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GC()
			stop := make(chan struct{})
			peak := testutil.PeakHeap(stop)
			out := &lineCounter{}
			var stderr bytes.Buffer
			code := cli.Main(context.Background(), append([]string{"run"}, tc.args...),
				cli.Env{Stdin: &lineGen{n: n}, Stdout: out, Stderr: &stderr})
			close(stop)
			if code != cli.ExitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if out.n != n {
				t.Fatalf("%d lines out for %d in", out.n, n)
			}
			if p := <-peak; p > streamLimit {
				t.Errorf("peak heap %d MB, want under %d MB", p>>20, streamLimit>>20)
			}
		})
	}
}
