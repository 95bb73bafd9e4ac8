package pool

import (
	"sync"
	"sync/atomic"
	"time"
)

// semaphore is a counting semaphore for one waiter (the feeder) that may
// take several slots at once, with any number of releasers.
type semaphore struct {
	size   int
	mu     sync.Mutex
	avail  int
	signal chan struct{}
}

func newSemaphore(n int) *semaphore {
	return &semaphore{size: n, avail: n, signal: make(chan struct{}, 1)}
}

// acquire takes n slots, waiting until they are free; it reports false if
// stop closed first.
func (s *semaphore) acquire(stop <-chan struct{}, n int) bool {
	for {
		s.mu.Lock()
		if s.avail >= n {
			s.avail -= n
			s.mu.Unlock()
			return true
		}
		s.mu.Unlock()
		select {
		case <-s.signal:
		case <-stop:
			return false
		}
	}
}

func (s *semaphore) release(n int) {
	s.mu.Lock()
	s.avail = min(s.avail+n, s.size)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// costMeter keeps a moving average of how long an item takes, to size
// batches.
type costMeter struct {
	ns     atomic.Int64
	target time.Duration // what a batch aims to take
	max    int           // the most items in a batch
}

func newCostMeter(target time.Duration, most int) *costMeter {
	c := &costMeter{target: target, max: most}
	c.ns.Store(int64(initialItemCost))
	return c
}

func (c *costMeter) observe(d time.Duration, n int) {
	if n == 0 {
		return
	}
	per := int64(d) / int64(n)
	old := c.ns.Load()
	// Weight the newest measurement by half: adapts within a few batches.
	c.ns.Store((old + per) / 2)
}

func (c *costMeter) batchSize() int {
	per := c.ns.Load()
	if per <= 0 {
		return c.max
	}
	return int(max(1, min(int64(c.max), int64(c.target)/per)))
}
