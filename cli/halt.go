package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/runspaces/rsh/vm"
)

// haltPolicy is a parsed --halt: when to stop a run because items failed,
// succeeded or finished, like GNU parallel's --halt.
type haltPolicy struct {
	when    string  // "never", "soon" or "now"
	cond    string  // "fail", "success" or "done": which items count
	count   int     // stop once this many items count, or
	percent float64 // once this share of finished items count (0-100)
	total   int64   // for done=P%: the number of items in the run
}

// minItemsForPercent is how many items must have finished before a
// percentage threshold is judged, so one early failure is not "100%".
const minItemsForPercent = 3

// haltConds are the conditions --halt takes after its comma.
var haltConds = []string{"fail", "success", "done"}

func parseHalt(spec string) (haltPolicy, error) {
	when, rest, _ := strings.Cut(spec, ",")
	h := haltPolicy{when: when, cond: "fail", count: 1}
	switch when {
	case "never":
		if rest != "" {
			return h, errors.New("never takes no threshold")
		}
		return h, nil
	case "soon", "now":
	default:
		return h, errors.New("want never, soon or now, optionally with ,fail=, ,success= or ,done= and N or P%")
	}
	if rest == "" {
		return h, nil
	}
	cond, v, ok := strings.Cut(rest, "=")
	if !ok || (cond != "fail" && cond != "success" && cond != "done") {
		return h, fmt.Errorf("%q: want fail=, success= or done=, with N or P%%", rest)
	}
	h.cond = cond
	if p, isPct := strings.CutSuffix(v, "%"); isPct {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 || f > 100 {
			return h, fmt.Errorf("%s=%s: want a percentage above 0 and at most 100", cond, v)
		}
		h.count, h.percent = 0, f
		return h, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return h, fmt.Errorf("%s=%s: want a count of at least 1", cond, v)
	}
	h.count = n
	return h, nil
}

// triggered reports whether failed failures and succeeded successes,
// of results finished results holding items items (a batch is one result
// of many items), meet the threshold.
func (h haltPolicy) triggered(failed, succeeded, results, items int) bool {
	n := failed
	switch h.cond {
	case "success":
		n = succeeded
	case "done":
		n = items
	}
	switch {
	case h.when == "never" || n == 0:
		return false
	case h.percent > 0 && h.cond == "done":
		return float64(n)*100 >= h.percent*float64(h.total)
	case h.percent > 0:
		return results >= minItemsForPercent && float64(n)*100 >= h.percent*float64(results)
	default:
		return n >= h.count
	}
}

func (h haltPolicy) String() string {
	switch {
	case h.when == "never":
		return "never"
	case h.percent > 0:
		return fmt.Sprintf("%s,%s=%g%%", h.when, h.cond, h.percent)
	default:
		return fmt.Sprintf("%s,%s=%d", h.when, h.cond, h.count)
	}
}

// what is what met the threshold, for the message: "2 failed items".
func (h haltPolicy) what(failed, succeeded, done int) string {
	switch h.cond {
	case "success":
		return fmt.Sprintf("%d succeeded items", succeeded)
	case "done":
		return fmt.Sprintf("%d finished items", done)
	}
	return fmt.Sprintf("%d failed items", failed)
}

// halter judges --halt as items end and says that the run halts after
// the line of the item that met the threshold. observe is safe for
// concurrent use (the pool calls it from the goroutine that ran each
// item); announce is called from the one goroutine that writes results.
type halter struct {
	policy                     haltPolicy
	failed, succeeded, done    atomic.Int64 // results, and done items
	results                    atomic.Int64
	met                        atomic.Bool
	metSeq                     atomic.Int64 // the seq of the result that met it
	metFailed, metSucc, metAll atomic.Int64 // the counts then, for the message
	failedOwn                  atomic.Int64 // failures but Stopped: not the halt's doing
	said                       bool
}

// observe counts res and reports true once: when the threshold is first
// met.
func (h *halter) observe(res *vm.Result) bool {
	f, s := h.failed.Load(), h.succeeded.Load()
	switch res.Status {
	case vm.Success:
		s = h.succeeded.Add(1)
	case vm.Stopped:
		f = h.failed.Add(1)
	default:
		f = h.failed.Add(1)
		h.failedOwn.Add(1)
	}
	// A batch is as many finished items as it holds.
	n := h.done.Add(int64(max(res.BatchSize, 1)))
	r := h.results.Add(1)
	if !h.policy.triggered(int(f), int(s), int(r), int(n)) || h.met.Load() {
		return false
	}
	h.metSeq.Store(int64(res.Seq))
	h.metFailed.Store(f)
	h.metSucc.Store(s)
	h.metAll.Store(n)
	return !h.met.Swap(true)
}

// halted reports whether the threshold was met.
func (h *halter) halted() bool { return h.met.Load() }

// failure reports whether the run fails, given whether any item did
// (anyFailed): a halt on failures fails it; one on successes ended it as
// asked (GNU parallel's exit status 0); one on finished items fails it
// only if an item failed other than by being stopped by the halt.
func (h *halter) failure(anyFailed bool) bool {
	if !h.halted() {
		return anyFailed
	}
	switch h.policy.cond {
	case "success":
		return false
	case "done":
		return h.failedOwn.Load() > 0
	}
	return true
}

// announce says on w that the run halts, once: after the result that met
// the threshold was written (res is each result as it is written), or at
// the end (res nil) if that result never was.
func (h *halter) announce(w io.Writer, res *vm.Result) {
	if h.said || !h.met.Load() || (res != nil && int64(res.Seq) != h.metSeq.Load()) {
		return
	}
	h.said = true
	fmt.Fprintf(w, "rsh: halting after %s (--halt %s)\n", h.policy.what(int(h.metFailed.Load()), int(h.metSucc.Load()), int(h.metAll.Load())), h.policy)
}
