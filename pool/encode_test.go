package pool_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// encodeScript makes plain results (doubled numbers, or nothing for
// multiples of 7) and others: exceptions, writeError, console output.
const encodeScript = `(x) => {
	if (x % 10 == 0) throw new Error("ten");
	if (x % 9 == 0) writeError("nine");
	if (x % 8 == 0) console.log("eight");
	if (x % 7 == 0) return undefined;
	return x * 2
}`

// lines renders a result's values as Encode's encoder below does.
func lines(b []byte, res *vm.Result) []byte {
	for _, v := range res.Output {
		b = fmt.Appendf(b, "%d:%s\n", res.Seq, v)
	}
	return b
}

// An Encode run writes the same values, in the same order with KeepOrder,
// as a run that delivers every result; it delivers exactly the results
// that are not plain, intact although plain ones reuse their storage; and
// Metrics and Observe count every item.
func TestEncode(t *testing.T) {
	const n = 500
	items := func(yield func(pool.Item) bool) {
		for _, x := range numbers(n) {
			if !yield(pool.Item{Value: x}) {
				return
			}
		}
		yield(pool.Item{Err: errors.New("bad line")})
	}
	for _, ordered := range []bool{true, false} {
		t.Run(fmt.Sprint("ordered=", ordered), func(t *testing.T) {
			opts := pool.Options{Throttle: 3, KeepOrder: ordered}
			full := newPool(t, encodeScript, vm.InitialState{}, opts)
			var want []byte
			var wantOther []string
			for res := range full.Run(context.Background(), items) {
				want = lines(want, res)
				if !pool.Plain(res) {
					wantOther = append(wantOther, fmt.Sprintf("%d %s %q %v", res.Seq, res.Status, res.Output, res.Errors))
				}
			}

			lean := newPool(t, encodeScript, vm.InitialState{}, opts)
			var got []byte
			var other []*vm.Result
			written := 0
			var mu sync.Mutex
			observed := 0
			observe := pool.Observe(func(*vm.Result) { mu.Lock(); observed++; mu.Unlock() })
			enc := pool.Encode(lines, func(b []byte, k int) bool {
				got = append(got, b...)
				written += k
				return true
			})
			for res := range lean.Run(context.Background(), items, observe, enc) {
				if pool.Plain(res) {
					t.Fatalf("seq %d: a plain result was delivered", res.Seq)
				}
				got = lines(got, res)
				other = append(other, res)
			}
			var gotOther []string
			for _, res := range other { // checked after the run: none was overwritten
				gotOther = append(gotOther, fmt.Sprintf("%d %s %q %v", res.Seq, res.Status, res.Output, res.Errors))
			}
			if !ordered {
				sortLines := func(b []byte) string {
					ls := strings.Split(string(b), "\n")
					slices.Sort(ls)
					return strings.Join(ls, "\n")
				}
				want, got = []byte(sortLines(want)), []byte(sortLines(got))
				slices.Sort(wantOther)
				slices.Sort(gotOther)
			}
			if string(got) != string(want) {
				t.Errorf("values differ:\n got %.300q\nwant %.300q", got, want)
			}
			if !slices.Equal(gotOther, wantOther) {
				t.Errorf("other results differ:\n got %v\nwant %v", gotOther, wantOther)
			}
			if written+len(other) != n+1 || written == 0 {
				t.Errorf("%d plain written + %d delivered, want %d in all", written, len(other), n+1)
			}
			if observed != n+1 {
				t.Errorf("observed %d results, want %d", observed, n+1)
			}
			if fm, lm := full.Metrics(), lean.Metrics(); fm.Completed != lm.Completed {
				t.Errorf("Metrics: %v with Encode, %v without", lm.Completed, fm.Completed)
			}
		})
	}
}

// write returning false ends the run as yield returning false does: no
// more writes or results, and nothing left running.
func TestEncodeStop(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		p := newPool(t, `(x) => x`, vm.InitialState{}, pool.Options{Throttle: 2, KeepOrder: ordered})
		writes, results := 0, 0
		enc := pool.Encode(lines, func([]byte, int) bool { writes++; return false })
		for range p.Run(context.Background(), pool.Items(numbers(100_000)), enc) {
			results++
		}
		if writes != 1 || results != 0 {
			t.Errorf("ordered=%v: %d writes and %d results after write said stop, want 1 and 0", ordered, writes, results)
		}
		if m := p.Metrics(); m.Running != 0 {
			t.Errorf("ordered=%v: %d items still running", ordered, m.Running)
		}
	}
}

func TestPlain(t *testing.T) {
	if !pool.Plain(&vm.Result{Status: vm.Success, Attempts: 1}) {
		t.Error("a success is not plain")
	}
	for name, res := range map[string]*vm.Result{
		"exception":   {Status: vm.Exception, Attempts: 1},
		"error":       {Status: vm.Error, Attempts: 1, Errors: []string{"e"}},
		"retried":     {Status: vm.Success, Attempts: 2},
		"batch":       {Status: vm.Success, Attempts: 1, BatchSize: 3},
		"warning":     {Status: vm.Success, Attempts: 1, Warnings: []string{"w"}},
		"verbose":     {Status: vm.Success, Attempts: 1, Verbose: []string{"v"}},
		"information": {Status: vm.Success, Attempts: 1, Information: []string{"i"}},
		"progress":    {Status: vm.Success, Attempts: 1, Progress: []vm.Progress{{Percent: 5}}},
	} {
		if pool.Plain(res) {
			t.Errorf("%s: plain", name)
		}
	}
}
