package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/runspaces/rsh/vm"
)

// durationSamples is how many item durations the summary keeps for its
// percentiles: every one up to this many, then a uniform random sample
// (reservoir sampling), so memory stays flat on a ten-million-item run.
const durationSamples = 10_000

// summary counts results by status and keeps item durations.
type summary struct {
	total, succeeded, errors, exceptions, timeouts, stopped, invalid int
	retried, skipped, records                                        int
	memoryLimit                                                      int
	wall                                                             time.Duration
	maxDuration                                                      time.Duration
	samples                                                          []time.Duration
	seen                                                             int
	rng                                                              *rand.Rand
}

func newSummary() *summary {
	return &summary{rng: rand.New(rand.NewPCG(1, 2))}
}

func (s *summary) add(r *vm.Result) {
	s.total++
	s.records += max(r.BatchSize, 1)
	switch r.Status {
	case vm.Success:
		s.succeeded++
	case vm.Error:
		s.errors++
	case vm.Exception:
		s.exceptions++
	case vm.Timeout:
		s.timeouts++
	case vm.Stopped:
		s.stopped++
	case vm.InvalidInput:
		s.invalid++
	case vm.MemoryLimit:
		s.memoryLimit++
	}
	if r.Attempts > 1 {
		s.retried++
	}
	if r.Status == vm.InvalidInput || r.StartedAt.IsZero() {
		return // never ran, or ran untimed: no duration
	}
	s.maxDuration = max(s.maxDuration, r.Duration)
	s.seen++
	if len(s.samples) < durationSamples {
		s.samples = append(s.samples, r.Duration)
	} else if i := s.rng.IntN(s.seen); i < durationSamples {
		s.samples[i] = r.Duration
	}
}

// addPlain counts n plain items (pool.Plain): successes at the first
// attempt, of one record each, run untimed.
func (s *summary) addPlain(n int) {
	s.total += n
	s.succeeded += n
	s.records += n
}

// failed is how many items did not succeed.
func (s *summary) failed() int { return s.total - s.succeeded }

// percentiles returns the p50 and p95 item durations from the samples,
// sorting them once.
func (s *summary) percentiles() (p50, p95 time.Duration) {
	if len(s.samples) == 0 {
		return 0, 0
	}
	sorted := slices.Clone(s.samples)
	slices.Sort(sorted)
	at := func(p float64) time.Duration { return sorted[int(p*float64(len(sorted)-1))] }
	return at(0.50), at(0.95)
}

// summaryJSON is the --summary-json document.
type summaryJSON struct {
	Total        int     `json:"total"`
	Succeeded    int     `json:"succeeded"`
	Errors       int     `json:"errors"`
	Exceptions   int     `json:"exceptions"`
	Timeouts     int     `json:"timeouts"`
	Stopped      int     `json:"stopped"`
	InvalidInput int     `json:"invalidInput"`
	MemoryLimit  int     `json:"memoryLimit"`
	Retried      int     `json:"retried"`
	Skipped      int     `json:"skipped"`
	Records      int     `json:"records"`
	SuccessRate  float64 `json:"successRate"`
	WallMs       float64 `json:"wallMs"`
	ItemsPerSec  float64 `json:"itemsPerSec"`
	P50Ms        float64 `json:"p50Ms"`
	P95Ms        float64 `json:"p95Ms"`
	MaxMs        float64 `json:"maxMs"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *summary) doc() summaryJSON {
	p50, p95 := s.percentiles()
	rate := 100.0
	if s.total > 0 {
		rate = 100 * float64(s.succeeded) / float64(s.total)
	}
	perSec := 0.0
	if s.wall > 0 {
		perSec = float64(s.total) / s.wall.Seconds()
	}
	return summaryJSON{
		Total: s.total, Succeeded: s.succeeded, Errors: s.errors, Exceptions: s.exceptions,
		Timeouts: s.timeouts, Stopped: s.stopped, InvalidInput: s.invalid, MemoryLimit: s.memoryLimit, Retried: s.retried,
		Skipped: s.skipped, Records: s.records, SuccessRate: rate, WallMs: ms(s.wall), ItemsPerSec: perSec,
		P50Ms: ms(p50), P95Ms: ms(p95), MaxMs: ms(s.maxDuration),
	}
}

func (s *summary) print(w io.Writer) {
	d := s.doc()
	fmt.Fprintf(w, `summary:
  total          %d
  succeeded      %d
  with errors    %d
  exceptions     %d
  timeouts       %d
  stopped        %d
  invalid input  %d
  retried        %d
`, d.Total, d.Succeeded, d.Errors, d.Exceptions, d.Timeouts, d.Stopped, d.InvalidInput, d.Retried)
	if d.MemoryLimit > 0 {
		fmt.Fprintf(w, "  memory limit   %d\n", d.MemoryLimit)
	}
	if d.Records != d.Total {
		fmt.Fprintf(w, "  records        %d (in batches)\n", d.Records)
	}
	if d.Skipped > 0 {
		fmt.Fprintf(w, "  skipped        %d (done in the job log)\n", d.Skipped)
	}
	fmt.Fprintf(w, `  success rate   %.1f%%
  wall time      %s
  items/s        %.1f
  item time      p50 %s, p95 %s, max %s
`, d.SuccessRate, s.wall.Round(time.Millisecond), d.ItemsPerSec,
		roundDuration(msDuration(d.P50Ms)), roundDuration(msDuration(d.P95Ms)), roundDuration(s.maxDuration))
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond / 10)
	}
}

func (s *summary) writeJSON(path string) error {
	b, err := json.MarshalIndent(s.doc(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--summary-json %s: %w", path, withoutPath(err))
	}
	return nil
}
