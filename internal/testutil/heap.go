package testutil

import (
	"runtime/metrics"
	"time"
)

// PeakHeap samples the bytes of live and unswept heap objects every
// millisecond (runtime/metrics: no stop-the-world) until stop is closed,
// then sends the most it saw.
func PeakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}
