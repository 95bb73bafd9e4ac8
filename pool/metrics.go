package pool

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/runspaces/rsh/vm"
)

// Metrics is a snapshot of a pool's counts, from Pool.Metrics. It is a
// plain value: its zero value is an empty snapshot, and copies share
// nothing.
type Metrics struct {
	// Running is the items handed to runspaces and not yet ended. Fast
	// items go to a runspace in small batches (about batchTarget of work),
	// so this includes those waiting their turn in a runspace's batch.
	Running int
	// Queued is the items read from the inputs of the pool's runs and
	// waiting for a runspace (the runs' read-ahead, at most ReadAhead per
	// run), and those submitted to its streams and not yet read.
	Queued int
	// Completed counts the items that ended, by status.
	Completed StatusCounts
	// Retried is how many retry attempts were made (Options.Retries):
	// an item that took 3 attempts counts 2.
	Retried int64
	// Durations is the histogram of the completed items' durations (all
	// attempts included), except InvalidInput items, which never ran, and
	// items run untimed (Options.Untimed), which have no duration: its
	// Count is then below Completed's Total.
	Durations Histogram
}

// numStatusSlots is one slot per status of package vm (eight) plus one for
// any other, so that a status added to vm later is counted somewhere.
const numStatusSlots = 9

// statusAt returns the status counted in slot i, "" for the last slot.
func statusAt(i int) vm.Status {
	order := [numStatusSlots - 1]vm.Status{vm.Success, vm.Error, vm.Exception, vm.Timeout,
		vm.Stopped, vm.InvalidInput, vm.MemoryLimit, vm.Abandoned}
	if i < len(order) {
		return order[i]
	}
	return ""
}

// StatusCounts counts items by status. Its zero value counts nothing.
type StatusCounts [numStatusSlots]int64

// statusIndex returns the slot of s in a StatusCounts.
func statusIndex(s vm.Status) int {
	switch s {
	case vm.Success:
		return 0
	case vm.Error:
		return 1
	case vm.Exception:
		return 2
	case vm.Timeout:
		return 3
	case vm.Stopped:
		return 4
	case vm.InvalidInput:
		return 5
	case vm.MemoryLimit:
		return 6
	case vm.Abandoned:
		return 7
	}
	return numStatusSlots - 1
}

// Of returns the count of items with status s (for a status the pool does
// not know, the count of all such unknown statuses).
func (c StatusCounts) Of(s vm.Status) int64 { return c[statusIndex(s)] }

// Total returns the count of items of every status.
func (c StatusCounts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// Map returns the non-zero counts by status; unknown statuses are under
// the empty status "".
func (c StatusCounts) Map() map[vm.Status]int64 {
	m := make(map[vm.Status]int64)
	for i, v := range c {
		if v == 0 {
			continue
		}
		m[statusAt(i)] = v
	}
	return m
}

// HistogramBuckets is the number of buckets of a Histogram: bucket 0 holds
// durations under 1µs, bucket i (1 <= i < HistogramBuckets-1) those from
// 2^(i-1)µs up to 2^iµs, and the last one everything from 2^32µs (about
// 1h12m) up. Powers of two make finding the bucket one bit-length
// instruction, and cover sub-microsecond items to hour-long ones in 34
// counters.
const HistogramBuckets = 34

// Histogram counts durations in fixed log-scale buckets (see
// HistogramBuckets). Its zero value is empty.
type Histogram struct {
	// Buckets holds the count of durations in each bucket.
	Buckets [HistogramBuckets]int64
}

// bucketOf returns the bucket of d.
func bucketOf(d time.Duration) int {
	us := d / time.Microsecond
	if us <= 0 {
		return 0
	}
	return min(bits.Len64(uint64(us)), HistogramBuckets-1)
}

// BucketBound returns the upper bound of bucket i (exclusive): 1µs for
// bucket 0, 2^iµs for the others, and math.MaxInt64 for the last.
func BucketBound(i int) time.Duration {
	if i >= HistogramBuckets-1 {
		return math.MaxInt64
	}
	return time.Microsecond << i
}

// Count returns the number of durations counted.
func (h Histogram) Count() int64 {
	var n int64
	for _, v := range h.Buckets {
		n += v
	}
	return n
}

// Percentile returns the p-th percentile (0 <= p <= 100; 50 is the median)
// of the durations counted, or 0 if there are none. It is approximate to a
// bucket: the result is the upper bound of the bucket the percentile falls
// in, so it is above the true value and at most twice it (under 1µs it is
// 1µs; in the last, open bucket, it is that bucket's lower bound, about
// 1h12m).
func (h Histogram) Percentile(p float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	p = max(0, min(p, 100))
	// rank is the 1-based position of the percentile among the sorted
	// durations.
	// Multiplying first keeps whole percentiles of whole counts exact.
	rank := max(1, int64(math.Ceil(p*float64(total)/100)))
	var seen int64
	for i, v := range h.Buckets {
		seen += v
		if seen >= rank {
			if i == HistogramBuckets-1 {
				return BucketBound(i - 1)
			}
			return BucketBound(i)
		}
	}
	return BucketBound(HistogramBuckets - 2)
}

// counters are a pool's live counts, updated with atomics by its workers
// once per batch, never per item.
type counters struct {
	running   atomic.Int64
	retried   atomic.Int64
	completed [numStatusSlots]atomic.Int64
	durations [HistogramBuckets]atomic.Int64
}

// tally is one batch's counts, kept on the worker's stack and added to the
// pool's counters at once.
type tally struct {
	retried   int64
	completed [numStatusSlots]int64
	durations [HistogramBuckets]int64
}

func (t *tally) add(res *vm.Result) {
	if res.Status == vm.Success {
		// The common case, without the comparisons of statusIndex.
		t.completed[0]++
	} else {
		i := statusIndex(res.Status)
		t.completed[i]++
		if i == statusIndex(vm.InvalidInput) {
			return // never ran: no duration, no retries
		}
	}
	if res.Attempts > 1 {
		t.retried += int64(res.Attempts - 1)
	}
	if res.StartedAt.IsZero() {
		return // run untimed: no duration to sample
	}
	t.durations[bucketOf(res.Duration)]++
}

// batchStarted counts a batch of n items handed to a runspace.
func (c *counters) batchStarted(n int) { c.running.Add(int64(n)) }

// batchEnded counts the results of a batch when it has run: nil for items
// that did not start.
func (c *counters) batchEnded(out []*vm.Result) {
	var t tally
	for _, res := range out {
		if res != nil {
			t.add(res)
		}
	}
	c.flush(&t)
	c.running.Add(-int64(len(out)))
}

func (c *counters) flush(t *tally) {
	if t.retried != 0 {
		c.retried.Add(t.retried)
	}
	for i, v := range t.completed {
		if v != 0 {
			c.completed[i].Add(v)
		}
	}
	for i, v := range t.durations {
		if v != 0 {
			c.durations[i].Add(v)
		}
	}
}

// Metrics returns the pool's counts now, across all its runs since New.
// It allocates nothing and takes only briefly the lock that workers take
// to get or return a runspace (never per item), so it may be polled often
// while runs go on. The counts are read one by one, not as
// one atomic snapshot: Completed and Durations are updated as each batch
// of items ends (a fast item may be counted a batch late), and Running may
// briefly overlap Completed.
func (p *Pool) Metrics() Metrics {
	var m Metrics
	m.Running = int(p.counts.running.Load())
	p.mu.Lock()
	for r := range p.runs {
		m.Queued += len(r.in) + len(r.cfg.source)
	}
	p.mu.Unlock()
	m.Retried = p.counts.retried.Load()
	for i := range m.Completed {
		m.Completed[i] = p.counts.completed[i].Load()
	}
	for i := range m.Durations.Buckets {
		m.Durations.Buckets[i] = p.counts.durations[i].Load()
	}
	return m
}
