package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// haltPolicy is a parsed --halt: when to stop a run because items fail,
// like GNU parallel's --halt.
type haltPolicy struct {
	when    string  // "never", "soon" or "now"
	count   int     // stop after this many failures, or
	percent float64 // after this share of finished items failed (0-100)
}

// minItemsForPercent is how many items must have finished before a
// percentage threshold is judged, so one early failure is not "100%".
const minItemsForPercent = 3

func parseHalt(spec string) (haltPolicy, error) {
	when, rest, _ := strings.Cut(spec, ",")
	h := haltPolicy{when: when, count: 1}
	switch when {
	case "never":
		if rest != "" {
			return h, errors.New("never takes no threshold")
		}
		return h, nil
	case "soon", "now":
	default:
		return h, errors.New("want never, soon or now, optionally with ,fail=N or ,fail=P%")
	}
	if rest == "" {
		return h, nil
	}
	v, ok := strings.CutPrefix(rest, "fail=")
	if !ok {
		return h, fmt.Errorf("%q: want fail=N or fail=P%%", rest)
	}
	if p, isPct := strings.CutSuffix(v, "%"); isPct {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 || f > 100 {
			return h, fmt.Errorf("fail=%s: want a percentage above 0 and at most 100", v)
		}
		h.count, h.percent = 0, f
		return h, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return h, fmt.Errorf("fail=%s: want a count of at least 1", v)
	}
	h.count = n
	return h, nil
}

// triggered reports whether failed failures out of done finished items
// meet the threshold.
func (h haltPolicy) triggered(failed, done int) bool {
	switch {
	case h.when == "never" || failed == 0:
		return false
	case h.percent > 0:
		return done >= minItemsForPercent && float64(failed)*100 >= h.percent*float64(done)
	default:
		return failed >= h.count
	}
}

func (h haltPolicy) String() string {
	switch {
	case h.when == "never":
		return "never"
	case h.percent > 0:
		return fmt.Sprintf("%s,fail=%g%%", h.when, h.percent)
	default:
		return fmt.Sprintf("%s,fail=%d", h.when, h.count)
	}
}
