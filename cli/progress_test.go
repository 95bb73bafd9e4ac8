package cli

import (
	"bytes"
	"strings"
	"sync"
	"testing"
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

// However long the last writeProgress status, the bar's line fits the
// terminal, so that clearing it (at the end, after Ctrl-C) clears all of
// it: a line that wrapped would leave its first part on the screen.
func TestProgressLineFits(t *testing.T) {
	var w lockedBuffer
	p := newProgress(&w, 1000)
	p.record(3, true, strings.Repeat("a long status from writeProgress ", 10))
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
