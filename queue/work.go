package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// Defaults of WorkOptions.
const (
	// DefaultConsumer is the durable consumer shared by a job's workers.
	DefaultConsumer = "rsh"
	// DefaultBatch is the pull size: large enough that a pull's round
	// trip is paid by many items (BenchmarkWork measures the rate by
	// batch size), small enough that one worker does not take the whole
	// queue while others wait.
	DefaultBatch = 300
	// DefaultAckWait is how long the server waits for a word from a
	// worker about an item before it gives the item to another worker.
	// Workers send progress for every item they hold at a third of it,
	// so it only passes for a worker that died or lost its connection.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxDeliver is how often an item is delivered before it is
	// given up on: a worker that dies of an item runs it alone the next
	// time, so a few deliveries tell an item that kills its worker from
	// bad luck.
	DefaultMaxDeliver = 5
	// DefaultAckGrace is the time Close gives the results of finished
	// items to be confirmed and acknowledged: a few server round trips,
	// plus room for a reconnection.
	DefaultAckGrace = 5 * time.Second
)

// Worker tuning.
const (
	// fetchWait is how long a pull waits for items when the queue has
	// fewer than asked for. It also bounds how long Close waits for the
	// pull under way (whose items it then hands back), so it is short.
	fetchWait = time.Second
	// sweepEvery is how often a worker looks for items past their
	// delivery limit that no worker moved to the dead letters (every
	// worker was gone when the server gave up on them).
	sweepEvery = time.Minute
	// fetchBackoffMin and fetchBackoffMax bound the wait between failed
	// pulls: a blip is retried at once, a server that stays away is
	// asked every few seconds.
	fetchBackoffMin = 100 * time.Millisecond
	fetchBackoffMax = 5 * time.Second
	// abandonTries is how often a worker tries to move an item to the
	// dead letters before it leaves it to the next sweep.
	abandonTries = 3
)

// WorkOptions configure a worker.
type WorkOptions struct {
	// From is the job: the work stream the items come from.
	From string
	// To is the results stream the records go to.
	To string
	// Consumer is the durable consumer's name, shared by the job's
	// workers; "" means DefaultConsumer.
	Consumer string
	// Batch is how many items one pull asks for; 0 means DefaultBatch
	// (at most MaxInFlight).
	Batch int
	// MaxInFlight bounds the items the worker holds without having
	// acknowledged them: pulled, running, or waiting for their result to
	// be stored. Size it to the worker's throttle plus a batch or two, so
	// that it runs at full speed without taking items other workers could
	// run. 0 means twice Batch.
	MaxInFlight int
	// AckWait: see DefaultAckWait. 0 means DefaultAckWait. The consumer
	// is shared: the last worker to start sets it for all.
	AckWait time.Duration
	// MaxDeliver: see DefaultMaxDeliver. 0 means DefaultMaxDeliver. Shared
	// like AckWait.
	MaxDeliver int
	// AckGrace: see DefaultAckGrace. 0 means DefaultAckGrace.
	AckGrace time.Duration
}

// Work is one worker of a job: it pulls items (Items), stores their
// results and acknowledges them (Done), and hands back what it holds when
// it stops (Close). Items is used by one goroutine; Done, Stop and Close
// may be called from any.
//
// Items are yielded with Seq set to their position in the work stream, so
// results name the queue position; Done finds an item by its result's Seq.
type Work struct {
	c    *Conn
	opts WorkOptions
	cons jetstream.Consumer
	work jetstream.Stream // the job's items
	res  jetstream.Stream // the results
	pub  *publisher

	resultPrefix string // RES.r.
	deadPrefix   string // JOB_DEAD.i.

	mu          sync.Mutex
	held        map[uint64]*held // by stream sequence
	queue       []*held          // pulled, not yet yielded
	reserved    int              // items asked for by the pull under way
	outstanding int              // yielded, without a result yet
	alone       *held            // a suspect yielded, without a result yet
	suspects    int              // suspects queued or running
	stopping    bool
	closing     bool
	err         error // the first result that could not be stored

	itemsWake chan struct{} // something changed for next
	pullWake  chan struct{} // room was made for a pull
	sweepWake chan struct{} // reconnected: look for stuck items
	stop      chan struct{} // closed by Stop
	stopOnce  sync.Once
	pulled    chan struct{} // closed when the puller has ended
	gone      chan struct{} // closed when the connection is closed

	bg        context.Context // for dead-letter moves; cancelled by Close
	cancelBg  context.CancelFunc
	loopCtx   context.Context // for the background loops; cancelled by Close first
	stopLoops context.CancelFunc
	loops     sync.WaitGroup // heartbeat, sweeper, status watcher
	handlers  sync.WaitGroup // dead-letter moves under way
	adv       *nats.Subscription
	status    chan nats.Status
	unhook    func() bool // stops Stop on ctx's end

	closeOnce sync.Once
	closeErr  error
	itemsUsed bool
}

// The states of a held item.
const (
	queued  = iota // pulled, not yet yielded
	running        // yielded, no result yet
	storing        // result being stored
)

// held is an item the worker holds unacknowledged.
type held struct {
	msg       jetstream.Msg // its latest delivery
	seq       uint64
	id        string
	delivered uint64
	state     int
}

// Work starts a worker of the job o.From, creating the job's streams and
// its consumer if they do not exist. The worker pulls items in the
// background as Items yields them, and keeps up the progress of every item
// it holds, until Close. When ctx is done the worker stops (see Stop).
func (c *Conn) Work(ctx context.Context, o WorkOptions) (*Work, error) {
	if o.Consumer == "" {
		o.Consumer = DefaultConsumer
	}
	for _, n := range []string{o.From, o.To, o.Consumer} {
		if err := validName(n); err != nil {
			return nil, fmt.Errorf("queue: work: %w", err)
		}
	}
	if o.To == o.From || o.To == o.From+deadSuffix {
		return nil, fmt.Errorf("queue: work: the results stream %s is one of the job's own streams", o.To)
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 2 * o.Batch
	}
	o.Batch = min(o.Batch, o.MaxInFlight)
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = DefaultMaxDeliver
	}
	if o.AckGrace <= 0 {
		o.AckGrace = DefaultAckGrace
	}
	w := &Work{c: c, opts: o, held: map[uint64]*held{},
		resultPrefix: o.To + resultToken, deadPrefix: o.From + deadSuffix + deadToken,
		itemsWake: make(chan struct{}, 1), pullWake: make(chan struct{}, 1), sweepWake: make(chan struct{}, 1),
		stop: make(chan struct{}), pulled: make(chan struct{}), gone: make(chan struct{})}
	var err error
	if w.work, err = c.workStream(ctx, o.From); err != nil {
		return nil, err
	}
	if _, err = c.perItemStream(ctx, o.From+deadSuffix, deadToken); err != nil {
		return nil, err
	}
	if w.res, err = c.perItemStream(ctx, o.To, resultToken); err != nil {
		return nil, err
	}
	if err = w.ensureConsumer(ctx); err != nil {
		return nil, err
	}
	if w.pub, err = newPublisher(c, o.MaxInFlight+1); err != nil {
		return nil, fmt.Errorf("queue: work: %w", err)
	}
	advisory := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + o.From + "." + o.Consumer
	if w.adv, err = c.nc.Subscribe(advisory, w.onAdvisory); err != nil {
		w.pub.close()
		return nil, fmt.Errorf("queue: work: subscribe to %s: %w", advisory, err)
	}
	w.bg, w.cancelBg = context.WithCancel(context.Background())
	w.loopCtx, w.stopLoops = context.WithCancel(w.bg)
	w.status = c.nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	w.loops.Add(3)
	go w.watch()
	go w.beat()
	go w.sweeper()
	go w.pull()
	w.unhook = context.AfterFunc(ctx, w.Stop)
	return w, nil
}

func (w *Work) ensureConsumer(ctx context.Context) error {
	cons, err := w.c.js.CreateOrUpdateConsumer(ctx, w.opts.From, jetstream.ConsumerConfig{
		Durable:       w.opts.Consumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.opts.AckWait,
		MaxDeliver:    w.opts.MaxDeliver,
		FilterSubject: w.opts.From + itemsToken,
		// Each worker bounds what it holds itself (MaxInFlight); the
		// consumer's own bound would be shared by all of them.
		MaxAckPending: -1,
	})
	if err != nil {
		return fmt.Errorf("queue: consumer %s of %s: %w", w.opts.Consumer, w.opts.From, err)
	}
	w.cons = cons
	return nil
}

// Items returns the job's items as they are pulled, for pool.Pool.Run.
// It may be ranged over once. It ends when Stop is called or the context
// given to Work is done; a lost connection only makes it wait.
//
// An item delivered before (a suspect) is yielded only when every item
// yielded before it has its result, and nothing else is yielded until the
// suspect has its own: if it kills the worker, the others are not charged
// a delivery for it.
func (w *Work) Items() iter.Seq[pool.Item] {
	return func(yield func(pool.Item) bool) {
		w.mu.Lock()
		used := w.itemsUsed
		w.itemsUsed = true
		w.mu.Unlock()
		if used {
			panic("queue: Work.Items ranged over twice")
		}
		for {
			h, ok := w.next()
			if !ok {
				return
			}
			if !yield(w.item(h)) {
				w.Stop()
				return
			}
		}
	}
}

func (w *Work) item(h *held) pool.Item {
	data := h.msg.Data()
	it := pool.Item{Value: json.RawMessage(data), Input: data, Seq: int64(h.seq)}
	if msg := h.msg.Headers().Get(invalidHeader); msg != "" {
		it.Err = errors.New(msg)
	}
	return it
}

// next waits for the next item to yield.
func (w *Work) next() (*held, bool) {
	for {
		w.mu.Lock()
		if w.stopping {
			w.mu.Unlock()
			return nil, false
		}
		if w.alone == nil && len(w.queue) > 0 {
			h := w.queue[0]
			if h.delivered <= 1 || w.outstanding == 0 {
				w.queue[0] = nil
				w.queue = w.queue[1:]
				h.state = running
				w.outstanding++
				if h.delivered > 1 {
					w.alone = h
				}
				w.mu.Unlock()
				return h, true
			}
		}
		w.mu.Unlock()
		select {
		case <-w.itemsWake:
		case <-w.stop:
		}
	}
}

// Done takes the result of an item Items yielded. A Stopped result hands
// the item back (Nak: it is delivered again, to this worker or another);
// any other is published, as the record `rsh run --out records` prints, to
// the item's subject in the results stream, and the item is acknowledged
// once the server has confirmed the record or refused it as the item's
// second. Done does not wait for that: it returns once the record is sent,
// waiting only while MaxInFlight records are unconfirmed.
//
// The acknowledgement is a plain Ack, not a confirmed one: a lost Ack
// makes the item run again after AckWait, and its second result is then
// refused, so a confirmation would cost a round trip per item to save a
// rare rerun.
//
// Done returns an error for a result that matches no item waiting for
// one, and, once a result could not be stored (a full stream, a record
// too large), that error: the item was handed back, and the caller should
// stop.
func (w *Work) Done(res *vm.Result) error {
	seq := uint64(res.Seq)
	w.mu.Lock()
	h := w.held[seq]
	if res.Seq <= 0 || h == nil || h.state != running {
		w.mu.Unlock()
		return fmt.Errorf("queue: no item with seq %d is waiting for its result", res.Seq)
	}
	w.outstanding--
	if w.alone == h {
		w.alone = nil
	}
	if h.delivered > 1 {
		w.suspects--
		signal(w.pullWake)
	}
	if res.Status == vm.Stopped {
		delete(w.held, seq)
		msg, failed := h.msg, w.err
		w.mu.Unlock()
		signal(w.itemsWake)
		signal(w.pullWake)
		w.answer(msg.Nak(), seq)
		return failed
	}
	h.state = storing
	w.mu.Unlock()
	signal(w.itemsWake)
	m := &nats.Msg{
		Subject: w.resultPrefix + h.id,
		Data:    res.AppendJSON(make([]byte, 0, recordSize+len(res.Input))),
		Header:  nats.Header{jetstream.MsgIDHeader: []string{h.id}},
	}
	if err := w.pub.publish(m, func(_ bool, err error) { w.stored(h, err) }); err != nil {
		w.stored(h, err)
	}
	return w.failure()
}

// recordSize is a guess at a record's size without its input, to size
// its buffer once.
const recordSize = 256

// stored ends an item whose result was published: acknowledged if the
// record is stored, handed back if not.
func (w *Work) stored(h *held, err error) {
	w.mu.Lock()
	msg := h.msg
	if w.held[h.seq] == h {
		delete(w.held, h.seq)
	}
	if err != nil && w.err == nil && !errors.Is(err, errStopping) {
		w.err = fmt.Errorf("queue: store the result of item %d in %s: %w", h.seq, w.opts.To, err)
	}
	w.mu.Unlock()
	signal(w.pullWake)
	if err != nil {
		if !errors.Is(err, errStopping) {
			w.c.logf("queue: the result of item %d was not stored, the item is handed back: %v", h.seq, err)
		}
		w.answer(msg.Nak(), h.seq)
		return
	}
	w.answer(msg.Ack(), h.seq)
}

// answer logs an acknowledgement that could not be sent (the item will be
// delivered again after AckWait).
func (w *Work) answer(err error, seq uint64) {
	if err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) && !w.c.nc.IsClosed() {
		w.c.logf("queue: acknowledge item %d: %v", seq, err)
	}
}

func (w *Work) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stop makes the worker wind down: Items ends, nothing more is pulled, and
// the items pulled but not yielded are handed back. Results of the items
// yielded are still taken by Done.
func (w *Work) Stop() {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.stopping = true
		w.mu.Unlock()
		close(w.stop)
	})
}

// Close stops the worker (Stop), waits up to AckGrace (and while ctx
// lasts) for the results given to Done to be stored and their items
// acknowledged, hands back (Nak) every item still held without a stored
// result, and waits up to AckGrace again for those answers to reach the
// server. It returns the first result that could not be stored, or a
// failure to reach the server at the end. Calls after the first return
// the same.
func (w *Work) Close(ctx context.Context) error {
	w.closeOnce.Do(func() { w.closeErr = w.close(ctx) })
	return w.closeErr
}

func (w *Work) close(ctx context.Context) error {
	w.Stop()
	w.unhook()
	grace, cancel := context.WithTimeout(ctx, w.opts.AckGrace)
	defer cancel()
	select {
	case <-w.pulled:
	case <-grace.Done():
	}
	_ = w.pub.wait(grace) // what is not stored by now is handed back below

	w.mu.Lock()
	w.closing = true
	back := make([]*held, 0, len(w.held))
	for _, h := range w.held {
		back = append(back, h)
	}
	clear(w.held)
	w.queue = nil
	w.mu.Unlock()
	for _, h := range back {
		w.answer(h.msg.Nak(), h.seq)
	}
	w.pub.close()
	w.stopLoops()
	_ = w.adv.Unsubscribe()
	w.c.nc.RemoveStatusListener(w.status)
	w.loops.Wait()

	final, cancel2 := context.WithTimeout(ctx, w.opts.AckGrace)
	defer cancel2()
	moved := make(chan struct{})
	go func() { w.handlers.Wait(); close(moved) }()
	select {
	case <-moved:
	case <-final.Done():
	}
	w.cancelBg()
	<-moved

	err := w.failure()
	if ferr := w.c.nc.FlushWithContext(final); ferr != nil && err == nil {
		err = fmt.Errorf("queue: send the last acknowledgements to the server: %w", ferr)
	}
	return err
}

// pull pulls items while there is room, until Stop; then it hands back
// what it pulled and Items did not yield.
//
// It pulls carefully, one item at a time, when it starts and after a pull
// brought a suspect, until a pull brings an item delivered for the first
// time: the server delivers items again before new ones, so while there
// are suspects they come one by one, each runs alone, and a suspect that
// kills the worker takes no other item down with it. (Items pulled in one
// batch with a suspect are still exposed: at most once each, since they
// are then pulled carefully.)
func (w *Work) pull() {
	defer close(w.pulled)
	fails := 0
	careful := true
	for {
		n, ok := w.room(careful)
		if !ok {
			break
		}
		batch, err := w.cons.Fetch(n, jetstream.FetchMaxWait(fetchWait))
		if err == nil {
			fresh, suspect := false, false
			msgs := batch.Messages()
		take:
			for {
				select {
				case m, ok := <-msgs:
					if !ok {
						break take
					}
					if w.add(m) {
						suspect = true
					} else {
						fresh = true
					}
				case <-w.gone:
					break take // the pull would only end at its expiry
				}
			}
			careful = suspect || (careful && !fresh)
			err = batch.Error()
		}
		w.mu.Lock()
		w.reserved = 0
		w.mu.Unlock()
		if err == nil {
			fails = 0
			continue
		}
		if w.c.nc.IsClosed() {
			break
		}
		fails++
		w.pub.log("queue: pull from %s: %v; trying again", w.opts.From, err)
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			ctx, cancel := context.WithTimeout(w.bg, fetchBackoffMax)
			if err := w.ensureConsumer(ctx); err != nil {
				w.pub.log("%v", err)
			}
			cancel()
		}
		if !w.pause(backoff(fails)) {
			break
		}
	}
	w.Stop()
	w.mu.Lock()
	q := w.queue
	w.queue = nil
	for _, h := range q {
		delete(w.held, h.seq)
		if h.delivered > 1 {
			w.suspects--
		}
	}
	w.mu.Unlock()
	for _, h := range q {
		w.answer(h.msg.Nak(), h.seq)
	}
}

// room waits until a pull fits under MaxInFlight and reserves it: a
// batch of a worthwhile size, or, when careful, one item once no suspect
// is held.
func (w *Work) room(careful bool) (int, bool) {
	low := max(1, w.opts.Batch/2)
	for {
		w.mu.Lock()
		if w.stopping {
			w.mu.Unlock()
			return 0, false
		}
		free := w.opts.MaxInFlight - len(w.held) - w.reserved
		switch {
		case careful && free >= 1 && w.suspects == 0:
			w.reserved = 1
			w.mu.Unlock()
			return 1, true
		case !careful && free >= low:
			n := min(w.opts.Batch, free)
			w.reserved = n
			w.mu.Unlock()
			return n, true
		}
		w.mu.Unlock()
		select {
		case <-w.pullWake:
		case <-w.stop:
		}
	}
}

// add takes a pulled message, and reports whether it is a suspect.
func (w *Work) add(msg jetstream.Msg) bool {
	meta, err := msg.Metadata()
	if err != nil {
		w.c.logf("queue: a message from %s without metadata: %v", w.opts.From, err)
		return false
	}
	seq, suspect := meta.Sequence.Stream, meta.NumDelivered > 1
	w.mu.Lock()
	if w.reserved > 0 {
		w.reserved--
	}
	if w.stopping {
		w.mu.Unlock()
		w.answer(msg.Nak(), seq)
		return suspect
	}
	if h := w.held[seq]; h != nil {
		// Delivered again while held (progress did not reach the
		// server in time): answer the latest delivery.
		h.msg = msg
		w.mu.Unlock()
		return false
	}
	h := &held{msg: msg, seq: seq, delivered: meta.NumDelivered, id: msgItemID(msg.Headers(), w.opts.From, seq)}
	w.held[seq] = h
	w.queue = append(w.queue, h)
	if suspect {
		w.suspects++
	}
	w.mu.Unlock()
	signal(w.itemsWake)
	return suspect
}

// beat sends progress for every item held, at a third of AckWait, so that
// none is delivered to another worker while this one holds it.
func (w *Work) beat() {
	defer w.loops.Done()
	t := time.NewTicker(w.opts.AckWait / 3)
	defer t.Stop()
	var msgs []jetstream.Msg
	for {
		select {
		case <-w.loopCtx.Done():
			return
		case <-t.C:
		}
		msgs = msgs[:0]
		w.mu.Lock()
		for _, h := range w.held {
			msgs = append(msgs, h.msg)
		}
		w.mu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress() // fails only for an item answered meanwhile, or a closed connection
		}
	}
}

// watch follows the connection: after a reconnection it has the sweeper
// look for stuck items (an advisory may have been missed), and a closed
// connection stops the worker.
func (w *Work) watch() {
	defer w.loops.Done()
	for s := range w.status {
		switch s {
		case nats.CONNECTED:
			signal(w.sweepWake)
		case nats.CLOSED:
			w.Stop()
			if !closedChan(w.gone) {
				close(w.gone)
			}
		}
	}
}

// backoff is the wait after the n-th pull in a row that failed: doubling
// from fetchBackoffMin up to fetchBackoffMax.
func backoff(n int) time.Duration {
	d := fetchBackoffMin
	for i := 1; i < n && d < fetchBackoffMax; i++ {
		d *= 2
	}
	return min(d, fetchBackoffMax)
}

// pause waits d, reporting false if the worker stopped meanwhile.
func (w *Work) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.stop:
		return false
	}
}

func closedChan(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// signal wakes the goroutine waiting on ch, if any.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
