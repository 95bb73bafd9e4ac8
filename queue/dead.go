package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/runspaces/rsh/vm"
)

// Dead letters. JetStream stops delivering an item after MaxDeliver
// deliveries but leaves it in the work stream, where it would stay for
// ever; it says so once, in a max-deliveries advisory. Every worker
// listens for it and moves the item: a final result with status
// vm.Abandoned, a copy in the dead-letter stream, and the item deleted
// from the work stream. Each step is safe to repeat and to run in several
// workers at once, and a worker also sweeps the work stream now and then
// for items an advisory was missed for (no worker was listening).

// advisory is the part of JetStream's max-deliveries advisory rsh reads.
type advisory struct {
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

func (w *Work) onAdvisory(m *nats.Msg) {
	var a advisory
	if err := json.Unmarshal(m.Data, &a); err != nil || a.StreamSeq == 0 {
		w.c.logf("queue: an advisory that does not parse on %s", m.Subject)
		return
	}
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return
	}
	w.handlers.Add(1)
	w.mu.Unlock()
	go func() {
		defer w.handlers.Done()
		for try := 1; ; try++ {
			err := w.abandon(w.bg, a.StreamSeq, a.Deliveries)
			if err == nil || w.bg.Err() != nil {
				return
			}
			if try == abandonTries {
				w.c.logf("queue: move item %d of %s to the dead letters: %v (left to a later sweep)", a.StreamSeq, w.opts.From, err)
				return
			}
			select {
			case <-time.After(backoff(try)):
			case <-w.bg.Done():
				return
			}
		}
	}()
}

// abandon gives up on the item at seq in the work stream, delivered
// deliveries times: unless it has a result already (its worker stored it
// but the acknowledgement was lost), it gets a result with status
// Abandoned and a copy in the dead letters; then it is deleted from the
// work stream.
func (w *Work) abandon(ctx context.Context, seq, deliveries uint64) error {
	raw, err := w.work.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // moved by another worker
	}
	if err != nil {
		return err
	}
	id := msgItemID(raw.Header, w.opts.From, seq)
	res := vm.Result{
		Seq:       int64(seq),
		Input:     inputJSON(raw.Data),
		Status:    vm.Abandoned,
		StartedAt: time.Now(),
		Attempts:  int(deliveries),
		Error:     &vm.ErrorInfo{Message: fmt.Sprintf("abandoned after %d deliveries: its worker died each time", deliveries)},
	}
	subject := w.resultPrefix + id
	ack, err := w.c.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: res.AppendJSON(nil),
		Header: nats.Header{jetstream.MsgIDHeader: []string{id}}})
	ours := true
	if err != nil && !refused(err) {
		return fmt.Errorf("store its result: %w", err)
	}
	if err != nil || ack.Duplicate {
		// The item has a result: its own, or an Abandoned one stored by
		// another worker moving it too (which may not have copied it to
		// the dead letters yet).
		last, err := w.res.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			return fmt.Errorf("read its result: %w", err)
		}
		var rec struct {
			Status vm.Status `json:"status"`
		}
		ours = json.Unmarshal(last.Data, &rec) == nil && rec.Status == vm.Abandoned
	}
	if ours {
		dead := &nats.Msg{Subject: w.deadPrefix + id, Data: raw.Data, Header: nats.Header{}}
		dead.Header.Set(jetstream.MsgIDHeader, id)
		dead.Header.Set(seqHeader, strconv.FormatUint(seq, 10))
		dead.Header.Set(deliveriesHeader, strconv.FormatUint(deliveries, 10))
		if v := raw.Header.Get(invalidHeader); v != "" {
			dead.Header.Set(invalidHeader, v)
		}
		if _, err := w.c.js.PublishMsg(ctx, dead); err != nil && !refused(err) {
			return fmt.Errorf("copy it to the dead letters: %w", err)
		}
		w.c.logf("queue: item %d of %s abandoned after %d deliveries, moved to %s", seq, w.opts.From, deliveries, w.opts.From+deadSuffix)
	}
	if err := w.work.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete it from the work stream: %w", err)
	}
	return nil
}

// sweep moves to the dead letters the items left in the work stream that
// no worker will be given again. The server does not say which those are,
// but two bounds are safe: every item at or below the consumer's
// acknowledgement floor, and, when no item is held by any worker (none
// waits for an acknowledgement, so none will be delivered again), every
// item already delivered. Every such item was either acknowledged (and is
// being removed: abandon leaves an item that has a result alone, so one
// caught between its acknowledgement and its removal comes to no harm) or
// given up on.
func (w *Work) sweep(ctx context.Context) error {
	ci, err := w.cons.Info(ctx)
	if err != nil {
		return err
	}
	floor := ci.AckFloor.Stream
	if ci.NumAckPending == 0 {
		floor = ci.Delivered.Stream
	}
	deliveries := uint64(max(ci.Config.MaxDeliver, 0))
	for seq := uint64(1); seq <= floor; {
		raw, err := w.work.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(w.opts.From+itemsToken))
		if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && raw.Sequence > floor) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := w.abandon(ctx, raw.Sequence, deliveries); err != nil {
			return fmt.Errorf("move item %d to the dead letters: %w", raw.Sequence, err)
		}
		seq = raw.Sequence + 1
	}
	return nil
}

// sweeper sweeps when the worker starts, after each reconnection, and
// every sweepEvery.
func (w *Work) sweeper() {
	defer w.loops.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		if err := w.sweep(w.loopCtx); err != nil && w.loopCtx.Err() == nil {
			w.pub.log("queue: look for items given up on in %s: %v", w.opts.From, err)
		}
		select {
		case <-w.loopCtx.Done():
			return
		case <-t.C:
		case <-w.sweepWake:
		}
	}
}

// inputJSON is a message's data as a record's input: the JSON it holds,
// or, if it is not JSON (published by another tool), the text as a string.
func inputJSON(data []byte) json.RawMessage {
	if json.Valid(data) {
		return data
	}
	return vm.JSONString(string(data))
}
