package pool

import "github.com/runspaces/rsh/vm"

// Backoff exposes backoff to the tests.
var Backoff = backoff

// BucketOf and StatusIndex expose the histogram's and the status counts'
// indexing to the tests.
var (
	BucketOf    = bucketOf
	StatusIndex = statusIndex
)

// CountBatch does a worker's counting for one batch of results, for the
// benchmark of its cost.
func CountBatch(p *Pool, out []*vm.Result) {
	p.counts.batchStarted(len(out))
	p.counts.batchEnded(out)
}

// Workers returns the number of workers of each run going on.
func Workers(p *Pool) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for r := range p.runs {
		out = append(out, int(r.workers.Load()))
	}
	return out
}

// IdleRunners returns the number of idle runners the pool keeps.
func IdleRunners(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// Draining returns the channel closed when the pool starts closing.
func Draining(p *Pool) <-chan struct{} { return p.draining }
