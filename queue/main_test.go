package queue_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them, but
// one: nats.go's JetStream context ends its reconnect watcher when the
// connection's CLOSED status reaches it, which the connection sends from a
// goroutine of its own after Close returns; on a loaded machine that took
// longer than goleak waits. A connection left open would still show, by
// its reader and flusher goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"))
}
