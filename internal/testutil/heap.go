package testutil

import (
	"runtime/metrics"
	"time"
)

// PeakHeap samples the heap in use (live and unswept objects plus the
// free space of their spans: MemStats.HeapInuse) every millisecond, with
// runtime/metrics (no stop-the-world), until stop is closed, then sends
// the most it saw.
func PeakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
		var peak uint64
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64()+s[1].Value.Uint64())
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
