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

// summary counts results by status, and the input records (items) they
// stand for by outcome, and keeps item durations. With --batch-size a
// result is a batch, and the items are its elements (vm.Result.Elements).
type summary struct {
	total, succeeded, errors, exceptions, timeouts, stopped, invalid int
	retried, skipped, records                                        int
	memoryLimit                                                      int
	failedRecords                                                    int // of records, those that failed
	batchSize                                                        int // --batch-size, when above 1
	batches                                                          int // results that were batches
	wall                                                             time.Duration
	maxDuration                                                      time.Duration
	samples                                                          []time.Duration
	seen                                                             int
	rng                                                              *rand.Rand
}

// newSummary returns an empty summary of a run that passes the function
// arrays of up to batchSize items (batchSize above 1), or single items.
func newSummary(batchSize int) *summary {
	if batchSize <= 1 {
		batchSize = 0
	}
	return &summary{rng: rand.New(rand.NewPCG(1, 2)), batchSize: batchSize}
}

func (s *summary) add(r *vm.Result) {
	s.total++
	records, failed := r.Elements()
	s.records += records
	s.failedRecords += failed
	if s.batchSize > 0 && r.Status != vm.InvalidInput {
		// Every result of a batched run is a batch but a line that could
		// not be decoded, which is alone (a batch of one has no BatchSize).
		s.batches++
	}
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
	if s.batchSize > 0 {
		s.batches += n // batches of one
	}
}

// failed is how many results did not succeed (with batches, how many
// batches).
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

// summaryJSON is the --summary-json document. The fields in lower camel
// case count results (with --batch-size, batches) by status, but records,
// successRate and itemsPerSec, which count items (input records); the
// fields in upper camel case are the seed's processing summary, in items.
// The README's Long runs section says what each means.
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

	TotalItems      int     `json:"TotalItems"`
	SuccessfulItems int     `json:"SuccessfulItems"`
	ErrorItems      int     `json:"ErrorItems"`
	Batches         int     `json:"Batches"`
	BatchSize       int     `json:"BatchSize"`
	SuccessRateSeed float64 `json:"SuccessRate"` // the same as SuccessRate
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *summary) doc() summaryJSON {
	p50, p95 := s.percentiles()
	ok := s.records - s.failedRecords
	rate := 100.0
	if s.records > 0 {
		rate = 100 * float64(ok) / float64(s.records)
	}
	perSec := 0.0
	if s.wall > 0 {
		perSec = float64(s.records) / s.wall.Seconds()
	}
	return summaryJSON{
		Total: s.total, Succeeded: s.succeeded, Errors: s.errors, Exceptions: s.exceptions,
		Timeouts: s.timeouts, Stopped: s.stopped, InvalidInput: s.invalid, MemoryLimit: s.memoryLimit, Retried: s.retried,
		Skipped: s.skipped, Records: s.records, SuccessRate: rate, WallMs: ms(s.wall), ItemsPerSec: perSec,
		P50Ms: ms(p50), P95Ms: ms(p95), MaxMs: ms(s.maxDuration),
		TotalItems: s.records, SuccessfulItems: ok, ErrorItems: s.failedRecords,
		Batches: s.batches, BatchSize: s.batchSize, SuccessRateSeed: rate,
	}
}

func (s *summary) print(w io.Writer) {
	d := s.doc()
	if s.batchSize > 0 {
		s.printBatches(w, d)
		return
	}
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
		fmt.Fprintf(w, "  records        %d\n", d.Records)
	}
	s.printEnd(w, d, "item time")
}

// printBatches is the summary of a run with --batch-size: the seed's, in
// items (the batches' elements), then the batches by status.
func (s *summary) printBatches(w io.Writer, d summaryJSON) {
	fmt.Fprintf(w, `summary:
  items          %d
  succeeded      %d
  failed         %d
  batches        %d of up to %d items: %d succeeded, %d with errors`,
		d.TotalItems, d.SuccessfulItems, d.ErrorItems, d.Batches, d.BatchSize, d.Succeeded, d.Errors)
	for _, c := range []struct {
		n    int
		what string
	}{{d.Exceptions, "exceptions"}, {d.Timeouts, "timeouts"}, {d.Stopped, "stopped"}, {d.MemoryLimit, "memory limit"}} {
		if c.n > 0 {
			fmt.Fprintf(w, ", %d %s", c.n, c.what)
		}
	}
	fmt.Fprintf(w, `
  invalid input  %d
  retried        %d batches
`, d.InvalidInput, d.Retried)
	s.printEnd(w, d, "batch time")
}

// printEnd prints the lines that both summaries end with.
func (s *summary) printEnd(w io.Writer, d summaryJSON, timeLabel string) {
	if d.Skipped > 0 {
		fmt.Fprintf(w, "  skipped        %d (done in the job log)\n", d.Skipped)
	}
	fmt.Fprintf(w, `  success rate   %.1f%%
  wall time      %s
  items/s        %.1f
  %-15sp50 %s, p95 %s, max %s
`, d.SuccessRate, s.wall.Round(time.Millisecond), d.ItemsPerSec, timeLabel,
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
