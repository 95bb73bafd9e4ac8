package queue

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publishing tuning.
const (
	// pubAckTimeout is how long a publish waits for the server's
	// confirmation before it is sent again (safe: every message has an
	// id). A lost connection fails the waiting publishes at once; this is
	// for a confirmation lost some other way.
	pubAckTimeout = 10 * time.Second
	// pubStallWait is how long a publish waits for room in a full window
	// before it looks again at whether it should give up.
	pubStallWait = 100 * time.Millisecond
	// retryPause spaces the rounds of publishes sent again, so that a
	// server that refuses them for a while (restarting) is not flooded.
	retryPause = 100 * time.Millisecond
	// logEvery rate-limits the log line of a failure that repeats.
	logEvery = 5 * time.Second
)

// errStopping is reported for a publish given up because its publisher
// was closed.
var errStopping = errors.New("queue: closed before the server confirmed a publish")

// published is told how a publish ended: stored (dup: the stream already
// had the message, by its id or its subject) or failed for good.
type published func(dup bool, err error)

// publisher publishes messages asynchronously with at most window of them
// waiting for the server's confirmation, and calls each one's published
// function when it is confirmed, refused as a second copy, or fails for
// good. Publishes that fail for a passing reason (a lost connection) are
// sent again until they succeed or the publisher is closed.
type publisher struct {
	js   jetstream.JetStream
	nc   *nats.Conn
	logf func(format string, args ...any)

	mu      sync.Mutex
	waiting map[*nats.Msg]published
	open    int           // publishes whose function has not returned
	empty   chan struct{} // closed when open drops to 0, if made
	retry   []*nats.Msg
	lastLog time.Time

	wake   chan struct{}    // a message was added to retry
	closed chan nats.Status // the connection was closed
	stop   chan struct{}    // closed by close
	done   chan struct{}    // closed when the retry goroutine has ended
}

func newPublisher(c *Conn, window int) (*publisher, error) {
	p := &publisher{nc: c.nc, logf: c.logf, waiting: map[*nats.Msg]published{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		closed: c.nc.StatusChanged(nats.CLOSED)}
	js, err := jetstream.New(c.nc,
		jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncTimeout(pubAckTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
			p.finish(m, ack.Duplicate, nil)
		}),
		jetstream.WithPublishAsyncErrHandler(p.failed))
	if err != nil {
		c.nc.RemoveStatusListener(p.closed)
		return nil, err
	}
	p.js = js
	go p.retrier()
	return p, nil
}

// publish sends m; done is called once when it is stored or fails. It
// blocks while the window is full. An error returned means done will not
// be called.
func (p *publisher) publish(m *nats.Msg, done published) error {
	p.mu.Lock()
	p.waiting[m] = done
	p.open++
	p.mu.Unlock()
	if err := p.send(m); err != nil {
		if p.take(m) != nil {
			p.ended()
		}
		return err
	}
	return nil
}

// send publishes m, waiting for room in the window and for a lost
// connection to come back.
func (p *publisher) send(m *nats.Msg) error {
	for {
		select {
		case <-p.stop:
			return errStopping
		default:
		}
		_, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(pubStallWait))
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
			// The window is full: look again.
		case errors.Is(err, nats.ErrConnectionClosed):
			return err
		case transient(err):
			p.log("queue: publish: %v; trying again", err)
			if !p.pause(retryPause) {
				return errStopping
			}
		default:
			return err
		}
	}
}

// failed is the publish error handler. It may run with the JetStream
// publisher's lock held, so it never publishes itself.
func (p *publisher) failed(_ jetstream.JetStream, m *nats.Msg, err error) {
	switch {
	case refused(err):
		p.finish(m, true, nil)
	case transient(err):
		p.mu.Lock()
		if _, ok := p.waiting[m]; ok {
			p.retry = append(p.retry, m)
		}
		p.mu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
	default:
		p.finish(m, false, err)
	}
}

// retrier sends again the publishes that failed for a passing reason,
// and fails them all when the connection is closed (JetStream's
// publisher would leave them waiting for ever).
func (p *publisher) retrier() {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-p.closed:
			p.mu.Lock()
			var all []*nats.Msg
			for m := range p.waiting {
				all = append(all, m)
			}
			p.mu.Unlock()
			for _, m := range all {
				p.finish(m, false, nats.ErrConnectionClosed)
			}
			continue
		case <-p.wake:
		}
		if !p.pause(retryPause) {
			return
		}
		p.mu.Lock()
		batch := p.retry
		p.retry = nil
		p.mu.Unlock()
		if len(batch) > 0 {
			p.log("queue: publishing %d messages again", len(batch))
		}
		for _, m := range batch {
			for !p.nc.IsConnected() && !p.nc.IsClosed() {
				if !p.pause(retryPause) {
					return
				}
			}
			if err := p.send(m); err != nil {
				p.finish(m, false, err)
			}
		}
	}
}

// pause waits d, reporting false if the publisher was closed meanwhile.
func (p *publisher) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stop:
		return false
	}
}

// finish ends m's publish and calls its function.
func (p *publisher) finish(m *nats.Msg, dup bool, err error) {
	if done := p.take(m); done != nil {
		done(dup, err)
		p.ended()
	}
}

// take removes m's function, which only its taker calls.
func (p *publisher) take(m *nats.Msg) published {
	p.mu.Lock()
	defer p.mu.Unlock()
	done, ok := p.waiting[m]
	if !ok {
		return nil
	}
	delete(p.waiting, m)
	return done
}

// ended counts a publish whose function has returned.
func (p *publisher) ended() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open > 0 {
		p.open--
	}
	if p.open == 0 && p.empty != nil {
		close(p.empty)
		p.empty = nil
	}
}

// wait waits until every publish has ended and its function returned,
// or ctx is done.
func (p *publisher) wait(ctx context.Context) error {
	p.mu.Lock()
	if p.open == 0 {
		p.mu.Unlock()
		return nil
	}
	if p.empty == nil {
		p.empty = make(chan struct{})
	}
	empty := p.empty
	p.mu.Unlock()
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close gives up the publishes not yet ended (their functions are not
// called) and stops sending again.
func (p *publisher) close() {
	p.mu.Lock()
	p.waiting = map[*nats.Msg]published{}
	p.retry = nil
	p.open = 0
	if p.empty != nil {
		close(p.empty)
		p.empty = nil
	}
	p.mu.Unlock()
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.nc.RemoveStatusListener(p.closed)
	p.js.CleanupPublisher()
}

// log logs a failure that may repeat, at most once every logEvery.
func (p *publisher) log(format string, args ...any) {
	p.mu.Lock()
	now := time.Now()
	if now.Sub(p.lastLog) < logEvery {
		p.mu.Unlock()
		return
	}
	p.lastLog = now
	p.mu.Unlock()
	p.logf(format, args...)
}
