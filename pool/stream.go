package pool

import (
	"context"
	"fmt"
	"sync"

	"github.com/runspaces/rsh/vm"
)

// Stream is a run fed by submissions instead of an iterator, for a caller
// that receives work one item at a time (requests to a service, say) and
// wants to know when the pool is full rather than wait: TrySubmit never
// blocks, Submit waits for room.
//
// An item waits in the stream's queue from its submission until a worker
// of the pool takes it to run it; the queue holds at most its size of
// items, so memory is bounded and a full queue is the signal to back off.
// Each submission is given its seq at once, which its result carries.
//
// Every submitted item yields exactly one result on Results, in the order
// they end (in submission order with Options.KeepOrder), unless the run
// is stopped first: as with Run, when the stream's context is cancelled or
// the pool is closed, only the items that had started yield a result.
// Results must be received until it is closed, or the workers wait.
//
// A Stream is safe for concurrent use. It must be made with Pool.Stream.
type Stream struct {
	ctx     context.Context
	room    *Limiter // slots for the items waiting to be taken
	results chan *vm.Result
	closing chan struct{} // closed by Close
	over    chan struct{} // closed when the run has ended
	pool    <-chan struct{}

	mu     sync.Mutex // orders submissions: their seqs and their sends
	closed bool
	seq    int64
	feed   chan Item // the run's input; it never blocks a sender holding a slot
}

// Stream starts a run of the pool fed by Submit and TrySubmit, with the
// options of Run. queue is how many submitted items may wait for a worker
// before the stream is full; 0 (or less) means the pool's throttle at the
// time. The run goes on until Close (after which it ends once every
// submitted item has), until ctx is cancelled, or until the pool closes.
func (p *Pool) Stream(ctx context.Context, queue int, opts ...RunOption) *Stream {
	if queue <= 0 {
		queue = p.Throttle()
	}
	s := &Stream{
		ctx:  ctx,
		room: NewLimiter(queue),
		// As many results as items may wait: a burst of results does
		// not hold up the workers while the caller catches up.
		results: make(chan *vm.Result, queue),
		closing: make(chan struct{}),
		over:    make(chan struct{}),
		pool:    p.draining,
		feed:    make(chan Item, queue),
	}
	opts = append(opts[:len(opts):len(opts)], func(c *runConfig) {
		// An item stops waiting when a worker takes it off the run's
		// queue, not when the run reads it ahead.
		c.taken = s.room.release
		c.source = s.feed
	})
	results := p.Run(ctx, s.items, opts...)
	go func() {
		defer close(s.results)
		defer close(s.over)
		for res := range results {
			s.results <- res
		}
	}()
	return s
}

// Submit adds it to the stream, waiting while the queue is full, and
// returns its seq (it.Seq when that is set; see Item). It returns ctx's
// error if ctx ends first, and an error that is ErrClosed after Close,
// after the stream's context ended (wrapping that context's error too),
// or once the pool is closing.
func (s *Stream) Submit(ctx context.Context, it Item) (int64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := s.err(); err != nil {
			return 0, err
		}
		ok, wake := s.room.take(true)
		if ok {
			return s.send(it)
		}
		select {
		case <-wake:
		case <-ctx.Done():
		case <-s.ctx.Done():
		case <-s.closing:
		case <-s.over:
		case <-s.pool:
		}
	}
}

// TrySubmit adds it to the stream if the queue has room, and returns its
// seq; it reports false, without waiting, when the queue already holds as
// many items waiting for a worker as its size, or when Submit would
// report an error.
func (s *Stream) TrySubmit(it Item) (int64, bool) {
	if s.err() != nil {
		return 0, false
	}
	if ok, _ := s.room.take(false); !ok {
		return 0, false
	}
	seq, err := s.send(it)
	return seq, err == nil
}

// Results returns the channel of the results, closed after the last one.
func (s *Stream) Results() <-chan *vm.Result { return s.results }

// Close ends the submissions: Submit and TrySubmit fail from now on, and
// Results is closed once every item submitted has ended. It may be called
// more than once.
func (s *Stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.feed)
		close(s.closing)
	}
}

// err reports why the stream takes no more items, if it does not.
func (s *Stream) err() error {
	switch {
	case closed(s.closing), closed(s.over), closed(s.pool):
		return ErrClosed
	case s.ctx.Err() != nil:
		return fmt.Errorf("%w: %w", ErrClosed, s.ctx.Err())
	}
	return nil
}

// send numbers it and hands it to the run, holding a slot of the room.
func (s *Stream) send(it Item) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.room.release(1)
		return 0, ErrClosed
	}
	if it.Seq > 0 {
		s.seq = it.Seq - 1
	}
	it.Seq = s.seq + 1
	s.seq += int64(max(it.Count, 1))
	// The feed holds as many items as the room has slots, and every item
	// in it holds one: this send does not block.
	s.feed <- it
	return it.Seq, nil
}

// items is the run's input: the submissions until Close, or until the
// stream's context ends or the pool closes (which stop the run: the
// reader must not wait for a Close that may never come).
func (s *Stream) items(yield func(Item) bool) {
	for {
		var it Item
		var ok bool
		select {
		case it, ok = <-s.feed:
		default:
			select {
			case it, ok = <-s.feed:
			case <-s.ctx.Done():
				return
			case <-s.pool:
				return
			}
		}
		if !ok || !yield(it) {
			return
		}
	}
}
