package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Results calls fn with each record of the results stream, in the order
// they were stored (an ordered consumer, which resumes by itself after a
// lost connection). Without follow it returns once it has read the records
// stored when it started; with follow it waits for more until ctx is done
// (and then returns nil), creating the results stream if no worker has
// yet. An error from fn stops it and is returned.
func (c *Conn) Results(ctx context.Context, stream string, follow bool, fn func(record []byte) error) error {
	if err := validName(stream); err != nil {
		return fmt.Errorf("queue: results: %w", err)
	}
	var s jetstream.Stream
	var err error
	if follow {
		s, err = c.perItemStream(ctx, stream, resultToken)
	} else if s, err = c.js.Stream(ctx, stream); err != nil {
		err = fmt.Errorf("queue: results stream %s: %w", stream, err)
	}
	if err != nil {
		return err
	}
	last := s.CachedInfo().State.LastSeq
	if !follow && s.CachedInfo().State.Msgs == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("queue: read %s: %w", stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("queue: read %s: %w", stream, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				if follow {
					return nil
				}
				return fmt.Errorf("queue: read %s: %w", stream, ctx.Err())
			}
			return fmt.Errorf("queue: read %s: %w", stream, err)
		}
		if err := fn(m.Data()); err != nil {
			return err
		}
		if follow {
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("queue: read %s: %w", stream, err)
		}
		if meta.Sequence.Stream >= last || meta.NumPending == 0 {
			return nil
		}
	}
}

// Stats describe a job's queue.
type Stats struct {
	// Queued is the number of items in the work stream: not done yet.
	Queued uint64
	// Pending is the number of items no worker has been given yet.
	Pending uint64
	// InFlight is the number of items given to workers and not yet
	// acknowledged, including those handed back and waiting to be given
	// again.
	InFlight int
	// Redelivered is how many of those were delivered more than once.
	Redelivered int
	// Waiting is the number of pulls waiting for items: roughly, the
	// workers with room for more.
	Waiting int
	// Done is the number of results stored (0 without a results stream).
	Done uint64
	// Dead is the number of items given up on, in the dead-letter stream.
	Dead uint64
}

// Stat describes the job from, its consumer ("" means DefaultConsumer)
// and, if to is not "", its results stream. Streams or a consumer that do
// not exist yet count as empty.
func (c *Conn) Stat(ctx context.Context, from, to, consumer string) (Stats, error) {
	var st Stats
	if consumer == "" {
		consumer = DefaultConsumer
	}
	for _, n := range []string{from, consumer} {
		if err := validName(n); err != nil {
			return st, fmt.Errorf("queue: stat: %w", err)
		}
	}
	msgs := func(name string) (uint64, error) {
		s, err := c.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("queue: stat %s: %w", name, err)
		}
		return s.CachedInfo().State.Msgs, nil
	}
	var err error
	if st.Queued, err = msgs(from); err != nil {
		return st, err
	}
	if st.Dead, err = msgs(from + deadSuffix); err != nil {
		return st, err
	}
	if to != "" {
		if err := validName(to); err != nil {
			return st, fmt.Errorf("queue: stat: %w", err)
		}
		if st.Done, err = msgs(to); err != nil {
			return st, err
		}
	}
	cons, err := c.js.Consumer(ctx, from, consumer)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound):
		st.Pending = st.Queued
		return st, nil
	case err != nil:
		return st, fmt.Errorf("queue: stat consumer %s of %s: %w", consumer, from, err)
	}
	ci := cons.CachedInfo()
	st.Pending, st.InFlight, st.Redelivered, st.Waiting = ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting
	return st, nil
}
