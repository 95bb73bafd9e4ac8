package vm

import (
	"container/heap"
	"context"
	"errors"
	"time"

	"github.com/dop251/goja"
)

// The event loop is rsh's own and deliberately small: it runs on the
// runspace's goroutine, only while an item's promise is pending, and every
// timer left when the item ends is discarded. That keeps the common case (a
// plain function) free of any loop cost, and keeps items from leaking timers
// into each other when a runspace is reused.

// errNeverSettles is the exception of an item whose promise is pending with
// no timer left that could settle it.
var errNeverSettles = errors.New("the returned promise never settles: it is pending and no timer is left to settle it")

type timer struct {
	id       int64
	when     time.Time
	interval time.Duration // > 0 for setInterval
	repeat   bool
	fn       goja.Callable
	args     []goja.Value
	index    int // in the heap; -1 when not scheduled
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].id < h[j].id
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *timerHeap) Push(x any)   { t := x.(*timer); t.index = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
func (h *timerHeap) remove(t *timer) {
	if t.index >= 0 {
		heap.Remove(h, t.index)
	}
}

type loop struct {
	next   int64
	heap   timerHeap
	byID   map[int64]*timer
	wakeup *time.Timer
	max    int    // the most timers pending at once (InitialState.MaxTimers)
	full   func() // called, and expected to throw, when a timer would pass max
}

func (l *loop) add(fn goja.Callable, delay time.Duration, repeat bool, args []goja.Value) int64 {
	if delay < 0 {
		delay = 0
	}
	l.next++
	t := &timer{id: l.next, when: time.Now().Add(delay), repeat: repeat, interval: delay, fn: fn, args: args}
	if repeat && t.interval < time.Millisecond {
		t.interval = time.Millisecond // like browsers and Node: an interval never spins
	}
	if l.byID == nil {
		l.byID = make(map[int64]*timer)
	}
	l.byID[t.id] = t
	heap.Push(&l.heap, t)
	return t.id
}

func (l *loop) clear(id int64) {
	if t, ok := l.byID[id]; ok {
		l.heap.remove(t)
		delete(l.byID, id)
	}
}

// reset drops every timer.
func (l *loop) reset() {
	if len(l.heap) == 0 {
		return
	}
	l.heap = l.heap[:0]
	clear(l.byID)
}

// enable binds setTimeout, setInterval, setImmediate and their clear
// functions on rt.
func (l *loop) enable(rt *goja.Runtime) {
	schedule := func(repeat bool, immediate bool) func(goja.FunctionCall) goja.Value {
		return func(call goja.FunctionCall) goja.Value {
			fn, ok := goja.AssertFunction(call.Argument(0))
			if !ok {
				panic(rt.NewTypeError("callback must be a function"))
			}
			if len(l.heap) >= l.max {
				l.full()
			}
			var delay time.Duration
			var args []goja.Value
			if immediate {
				args = append(args, call.Arguments[min(1, len(call.Arguments)):]...)
			} else {
				ms := call.Argument(1).ToFloat()
				if ms == ms && ms > 0 { // NaN and negatives mean 0
					delay = time.Duration(ms * float64(time.Millisecond))
				}
				if len(call.Arguments) > 2 {
					args = append(args, call.Arguments[2:]...)
				}
			}
			return rt.ToValue(l.add(fn, delay, repeat, args))
		}
	}
	clearFn := func(call goja.FunctionCall) goja.Value {
		if v := call.Argument(0); !goja.IsUndefined(v) && !goja.IsNull(v) {
			l.clear(v.ToInteger())
		}
		return goja.Undefined()
	}
	_ = rt.Set("setTimeout", schedule(false, false))
	_ = rt.Set("setInterval", schedule(true, false))
	_ = rt.Set("setImmediate", schedule(false, true))
	_ = rt.Set("clearTimeout", clearFn)
	_ = rt.Set("clearInterval", clearFn)
	_ = rt.Set("clearImmediate", clearFn)
}

// await runs timers until p settles, ctx is done, or nothing is left that
// could settle p. It returns ctx's error when ctx ends first, a timer
// callback's exception, or errNeverSettles.
func (l *loop) await(ctx context.Context, p *goja.Promise) error {
	for p.State() == goja.PromiseStatePending {
		if len(l.heap) == 0 {
			return errNeverSettles
		}
		t := l.heap[0]
		if d := time.Until(t.when); d > 0 {
			if l.wakeup == nil {
				l.wakeup = time.NewTimer(d)
			} else {
				l.wakeup.Reset(d)
			}
			select {
			case <-ctx.Done():
				l.wakeup.Stop()
				return ctx.Err()
			case <-l.wakeup.C:
			}
		} else if err := ctx.Err(); err != nil {
			return err
		}
		heap.Pop(&l.heap)
		if t.repeat {
			t.when = time.Now().Add(t.interval)
			heap.Push(&l.heap, t)
		} else {
			delete(l.byID, t.id)
		}
		if _, err := t.fn(goja.Undefined(), t.args...); err != nil {
			return err
		}
	}
	return nil
}
