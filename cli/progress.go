package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/runspaces/rsh/pool"
	"github.com/schollz/progressbar/v3"
)

// progressInterval is how often the bar is redrawn. The bar reads counters
// the result loop bumps atomically, so a run of millions of items costs the
// same few redraws a second as a run of ten.
const progressInterval = 150 * time.Millisecond

// progress draws the --progress bar on stderr.
type progress struct {
	bar    *progressbar.ProgressBar
	done   atomic.Int64 // input records finished
	failed atomic.Int64
	status atomic.Pointer[string] // the last writeProgress status
	// metrics, when set, reads the pool's live counts (pool.Metrics, the
	// numbers `rsh job get` shows for a job): items running now.
	metrics func() pool.Metrics

	// descWidth is the most columns the description may take, so that
	// the bar's line never wraps: \r and a clear reach back only to the
	// start of the last line, and a bar that wrapped would stay on the
	// screen after the run (or its Ctrl-C) ends.
	descWidth int

	mu       sync.Mutex // serialises drawing and stderr lines
	finished bool       // after finish, writes go straight through
	stop     chan struct{}
	wg       sync.WaitGroup
}

// newProgress starts a bar on w for total records (-1 when unknown);
// metrics, when not nil, gives the pool's live counts.
func newProgress(w io.Writer, total int64, metrics func() pool.Metrics) *progress {
	p := &progress{stop: make(chan struct{}), descWidth: termColumns(w) - progressStatsWidth, metrics: metrics}
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("items"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("items"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(0), // we throttle: see progressInterval
		progressbar.OptionSetRenderBlankState(true),
		// No spinner goroutine of the bar's own for an unknown total
		// (stdin, --shard): it would draw outside mu, over other writes
		// to stderr; loop redraws it, turning the spinner each time.
		progressbar.OptionSetSpinnerChangeInterval(0),
	)
	p.wg.Add(1)
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer p.wg.Done()
	t := time.NewTicker(progressInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.draw()
		}
	}
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	desc := "items"
	if p.metrics != nil {
		if r := p.metrics().Running; r > 0 {
			desc += fmt.Sprintf(", %d running", r)
		}
	}
	if f := p.failed.Load(); f > 0 {
		desc += fmt.Sprintf(", %d failed", f)
	}
	if s := p.status.Load(); s != nil && *s != "" {
		desc += " · " + *s
	}
	desc = fitColumns(desc, p.descWidth)
	p.bar.Describe(desc)
	_ = p.bar.Set64(p.done.Load())
}

// record counts n finished records (items), failed of which failed (a
// batch's elements: see vm.Result.Elements), and the last writeProgress
// status, if not empty.
func (p *progress) record(n, failed int, status string) {
	p.done.Add(int64(n))
	p.failed.Add(int64(failed))
	if status != "" {
		p.status.Store(&status)
	}
}

// clearFor wraps a writer so that each write first clears the bar's line;
// the bar redraws itself on its next tick.
func (p *progress) clearFor(w io.Writer) io.Writer {
	return writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.finished {
			_ = p.bar.Clear()
		}
		return w.Write(b)
	})
}

// finish stops the bar and clears it from the terminal.
func (p *progress) finish() {
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Clear()
	_ = p.bar.Exit()
	p.finished = true
}

// progressStatsWidth is what the bar's line needs besides its
// description: the spinner or bar, "(12345/67890, 1234 items/s)", the
// elapsed and remaining time, and a margin for the "^C" a terminal echoes
// on Ctrl-C, which would otherwise wrap the line.
const progressStatsWidth = 50

// defaultColumns is the width assumed when w is no terminal.
const defaultColumns = 80

// termColumns is the width of the terminal w writes to.
func termColumns(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if c, _, err := term.GetSize(int(f.Fd())); err == nil && c > 0 {
			return c
		}
	}
	return defaultColumns
}

// fitColumns cuts s to at most n runes (at least a few), marking the cut.
func fitColumns(s string, n int) string {
	n = max(n, 8)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
