package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// lockedBuffer is a buffer the bar's goroutine and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// However long the last writeProgress status, the bar's line fits the
// terminal, so that clearing it (at the end, after Ctrl-C) clears all of
// it: a line that wrapped would leave its first part on the screen.
func TestProgressLineFits(t *testing.T) {
	var w lockedBuffer
	p := newProgress(&w, 1000, nil)
	p.record(3, 1, strings.Repeat("a long status from writeProgress ", 10))
	p.draw()
	p.finish()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range strings.Split(w.b.String(), "\r") {
		if n := utf8.RuneCountInString(line); n >= defaultColumns {
			t.Errorf("a bar line of %d columns, wider than the terminal's %d: %q", n, defaultColumns, line)
		}
	}
	if !strings.Contains(w.b.String(), "…") {
		t.Errorf("the status was not cut: %q", w.b.String())
	}
}

// The notice of a Ctrl-C clears the progress bar's line before it is
// written: written over the bar, it would leave the bar on the screen.
func TestInterruptClearsBar(t *testing.T) {
	signals := make(chan os.Signal, 1)
	stderr := &lockedBuffer{}
	stdin, feed := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- Main(context.Background(), []string{"run", "--progress", "--total", "100", "-e", "(x) => x"}, Env{
			Stdin: stdin, Stdout: io.Discard, Stderr: stderr, Signals: signals, StderrIsTerminal: true,
		})
	}()
	fmt.Fprintln(feed, "1")
	// Wait for the bar to be drawn with the first item done, then interrupt.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stderr.String(), "1/100") {
		if time.Now().After(deadline) {
			t.Fatalf("no bar: %q", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	signals <- os.Interrupt
	for !strings.Contains(stderr.String(), "rsh: interrupted") {
		if time.Now().After(deadline) {
			t.Fatalf("no notice: %q", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	feed.Close()
	<-done
	out := stderr.String()
	i := strings.Index(out, "rsh: interrupted")
	if i == 0 || out[i-1] != '\r' {
		t.Errorf("the notice was written over the bar, not after clearing it: %q", out[max(0, i-80):i+16])
	}
}
