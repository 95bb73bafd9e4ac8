package pool

// Backoff exposes backoff to the tests.
var Backoff = backoff

// BucketOf and StatusIndex expose the histogram's and the status counts'
// indexing to the tests.
var (
	BucketOf    = bucketOf
	StatusIndex = statusIndex
)
