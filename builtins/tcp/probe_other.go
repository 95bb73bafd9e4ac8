//go:build !linux

package tcp

import (
	"context"
	"net/netip"
	"time"
)

// probe connects to ip:port once and closes the connection, returning how
// long the answer took and the dial error, for classify. Outside Linux it
// is net.Dialer's connect.
func probe(ctx context.Context, ip netip.Addr, port int, timeout time.Duration) (time.Duration, error) {
	return dialProbe(ctx, ip.String(), port, timeout)
}
