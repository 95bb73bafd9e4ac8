package queue

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/runspaces/rsh/pool"
)

// putWindow bounds the items a put has sent without the server's
// confirmation: enough to keep the server busy across a network round
// trip, few enough to bound the memory they hold.
const putWindow = 4096

// PutStats counts what a Put did.
type PutStats struct {
	// Items is the number of items sent.
	Items int
	// Duplicates is how many of them the work stream already had (the
	// same source put before, within DuplicateWindow) and did not enqueue
	// again. A publish sent again after a lost connection may count here
	// too, if its first copy was stored.
	Duplicates int
	// Invalid is how many could not be decoded (pool.Item.Err): they are
	// enqueued all the same, and their workers report vm.InvalidInput.
	Invalid int
}

// Put enqueues items on the job's work stream, creating the stream if
// needed. Each message is the item as JSON (pool.Item.JSON) and is
// identified by source (a name for where the items come from, such as
// the input file's path) and the item's position in it (its Seq, or its
// ordinal), so that putting the same source again does not enqueue its
// items twice. An item with Err set is enqueued with its error, and its
// worker reports vm.InvalidInput with the error's message.
//
// Put returns once the server has confirmed every item. On an error, the
// items confirmed so far stay enqueued; putting the source again adds the
// rest.
func (c *Conn) Put(ctx context.Context, job, source string, items iter.Seq[pool.Item]) (PutStats, error) {
	var st PutStats
	if err := validName(job); err != nil {
		return st, fmt.Errorf("queue: put: %w", err)
	}
	if _, err := c.workStream(ctx, job); err != nil {
		return st, err
	}
	p, err := newPublisher(c, putWindow)
	if err != nil {
		return st, fmt.Errorf("queue: put: %w", err)
	}
	defer p.close()
	var (
		mu       sync.Mutex
		dups     int
		firstErr error
	)
	failure := func() error {
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}
	subject := job + itemsToken
	next := int64(1)
	for it := range items {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("queue: put: %w", err)
		}
		if err := failure(); err != nil {
			return st, err
		}
		if it.Seq > 0 {
			next = it.Seq
		}
		pos := next
		next += int64(max(it.Count, 1))
		m := &nats.Msg{Subject: subject, Data: it.JSON(), Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, itemID(source, pos))
		if it.Err != nil {
			m.Header.Set(invalidHeader, headerValue(it.Err.Error()))
			st.Invalid++
		}
		err := p.publish(m, func(dup bool, err error) {
			mu.Lock()
			defer mu.Unlock()
			if dup {
				dups++
			}
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("queue: put item %d of %s: %w", pos, source, err)
			}
		})
		if err != nil {
			return st, fmt.Errorf("queue: put item %d of %s: %w", pos, source, err)
		}
		st.Items++
	}
	if err := p.wait(ctx); err != nil {
		return st, fmt.Errorf("queue: put: %w", err)
	}
	mu.Lock()
	st.Duplicates = dups
	mu.Unlock()
	return st, failure()
}

// headerValue makes s fit in a message header: one line.
func headerValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}
