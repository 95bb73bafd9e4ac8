package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runspaces/rsh/internal/testutil"
	"github.com/runspaces/rsh/queue"
	"github.com/runspaces/rsh/vm"
)

// BenchmarkWork measures the items a worker takes through a co-located
// embedded server per second, with trivial work (each result is given to
// Done at once), for pull batch sizes of 100, 300 and 1000: pull, store
// the record, acknowledge. The put before it is not timed, but reported
// as put-items/s; cpu-µs/item is the CPU time of the whole process
// (server included) per item, steadier than the rate on a busy machine.
//
//	go test -run - -bench Work -benchtime 50000x ./queue
func BenchmarkWork(b *testing.B) {
	for _, batch := range []int{100, 300, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := serve(b)
			c := connect(b, s.URL(), newLog(b))
			start := time.Now()
			put(b, c, b.N)
			putRate := float64(b.N) / time.Since(start).Seconds()
			w := work(b, c, queue.WorkOptions{Batch: batch})
			b.ResetTimer()
			cpu := testutil.CPUTime()
			n := 0
			for it := range w.Items() {
				if err := w.Done(result(it, vm.Success, 1)); err != nil {
					b.Fatal(err)
				}
				if n++; n == b.N {
					w.Stop()
				}
			}
			if err := w.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
			b.ReportMetric(float64((testutil.CPUTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/item")
			b.ReportMetric(putRate, "put-items/s")
			st, err := c.Stat(context.Background(), job, results, "")
			if err != nil {
				b.Fatal(err)
			}
			if st.Done != uint64(b.N) {
				b.Fatalf("%d results for %d items", st.Done, b.N)
			}
		})
	}
}
