package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DuplicateWindow is how long the work stream remembers the ids of the
// items put on it: putting the same source again within it enqueues
// nothing twice. An hour covers a put that is retried or run again by
// hand; past it, an item enqueued twice still gets one result (the
// results stream keeps one per item), at the cost of running it twice.
// The server keeps every id of the window in memory (some 100 bytes
// each), which bounds how many items a put may enqueue per hour.
const DuplicateWindow = time.Hour

// Subjects of the streams, after the stream's name.
const (
	itemsToken  = ".items" // the work stream's one subject
	resultToken = ".r."    // a results stream's per-item subjects
	deadToken   = ".i."    // the dead-letter stream's per-item subjects
	deadSuffix  = "_DEAD"  // the dead-letter stream's name, after the job's
)

// Headers rsh adds to a message.
const (
	// invalidHeader carries the decoding error of an item that could not
	// be read: its worker reports vm.InvalidInput with this message.
	invalidHeader = "Rsh-Invalid-Input"
	// seqHeader and deliveriesHeader tell, on a dead letter, where the
	// item stood in the work stream and how often it was delivered.
	seqHeader        = "Rsh-Seq"
	deliveriesHeader = "Rsh-Deliveries"
)

// itemID names the item at position pos of the source named source: hex
// of a hash, so it is a valid subject token and message id, and the same
// however often the source is put.
func itemID(source string, pos int64) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, pos, 10))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// msgItemID is a message's item id: its Nats-Msg-Id when it is usable as
// a subject token (messages put by rsh), else one derived from the
// stream's name and the message's sequence (messages published by other
// tools without an id).
func msgItemID(h nats.Header, stream string, seq uint64) string {
	if id := h.Get(jetstream.MsgIDHeader); id != "" && validToken(id) {
		return id
	}
	return itemID("stream "+stream, int64(seq))
}

func validToken(s string) bool {
	return len(s) <= 128 && !strings.ContainsAny(s, ". *>\t\r\n")
}

// ensureStream returns the stream cfg describes, creating it if it does
// not exist. An existing stream is used only if check accepts it.
func (c *Conn) ensureStream(ctx context.Context, cfg jetstream.StreamConfig, check func(*jetstream.StreamConfig) bool) (jetstream.Stream, error) {
	s, err := c.js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = c.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = c.js.Stream(ctx, cfg.Name) // made by another worker meanwhile
		}
	}
	if err != nil {
		return nil, fmt.Errorf("queue: stream %s: %w", cfg.Name, err)
	}
	got := &s.CachedInfo().Config
	if !slices.Contains(got.Subjects, cfg.Subjects[0]) || !check(got) {
		return nil, fmt.Errorf("queue: stream %s exists but was not made for this use (subjects %v): use another name", cfg.Name, got.Subjects)
	}
	return s, nil
}

// workStream is a job's stream of items to do.
func (c *Conn) workStream(ctx context.Context, job string) (jetstream.Stream, error) {
	return c.ensureStream(ctx, jetstream.StreamConfig{
		Name:       job,
		Subjects:   []string{job + itemsToken},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Duplicates: DuplicateWindow,
	}, func(got *jetstream.StreamConfig) bool { return got.Retention == jetstream.WorkQueuePolicy })
}

// perItemDuplicates is the duplicate window of the per-item streams. The
// subject rule already keeps one message per item for good, so the
// message ids only need to catch a publish sent again at once; the server
// keeps every id of the window in memory, which at tens of thousands of
// results a second would be millions with JetStream's default of two
// minutes.
const perItemDuplicates = 10 * time.Second

// perItemStream is a stream with one message per item subject, which
// refuses a second one: the results stream and the dead-letter stream.
func (c *Conn) perItemStream(ctx context.Context, name, token string) (jetstream.Stream, error) {
	return c.ensureStream(ctx, jetstream.StreamConfig{
		Name:                 name,
		Subjects:             []string{name + token + "*"},
		Retention:            jetstream.LimitsPolicy,
		Storage:              jetstream.FileStorage,
		MaxMsgsPerSubject:    1,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		Duplicates:           perItemDuplicates,
	}, func(got *jetstream.StreamConfig) bool {
		return got.MaxMsgsPerSubject == 1 && got.Discard == jetstream.DiscardNew && got.DiscardNewPerSubject
	})
}

// refused reports whether a publish was refused because its subject
// already holds a message: a per-item stream saying the item's result (or
// dead letter) is already stored. The server reports it as a failed store
// with its own ErrMaxMsgsPerSubject text; no error code tells it apart
// from other failed stores.
func refused(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jsErrCodeStoreFailed &&
		strings.Contains(api.Description, server.ErrMaxMsgsPerSubject.Error())
}

// jsErrCodeStoreFailed is JetStream's error code for a message the stream
// did not store.
const jsErrCodeStoreFailed = jetstream.ErrorCode(server.JSStreamStoreFailedF)

// transient reports whether a publish failed for a reason that passes:
// a lost connection, a server restarting, a reply that got lost. Publishing
// again is safe: every message rsh publishes has an id, and the streams
// refuse a second copy.
func transient(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		// 503 is also the code of a failed store (a full stream, say),
		// which does not pass by itself.
		return (api.Code == 503 || api.Code == 408) && api.ErrorCode != jsErrCodeStoreFailed
	}
	return errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, jetstream.ErrTooManyStalledMsgs)
}
