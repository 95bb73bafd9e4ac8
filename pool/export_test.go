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
