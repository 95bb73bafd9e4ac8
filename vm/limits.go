package vm

import "fmt"

// Per-item limits keep one item from flooding memory through rsh's own
// channels: its output values, its stream messages and its timers are held
// in the runspace until the item ends. Crossing a limit ends the item at
// once (the runtime is interrupted, so the script cannot catch and go on)
// as an Exception whose message names the limit; the runspace is then
// replaced, as after any interrupt. Each check is a comparison with a count
// the item keeps anyway, so the limits cost nothing measurable per item.
//
// The defaults are far above what an honest item does and low enough that
// a runaway loop is stopped before it holds more than tens of megabytes.

// DefaultMaxOutputValues bounds the output values (emit plus the return
// value) of one item when InitialState.MaxOutputValues is zero: a million
// values is an item that returns a whole listing one entry at a time.
const DefaultMaxOutputValues = 1_000_000

// DefaultMaxOutputBytes bounds the size, as JSON, of one item's output
// values when InitialState.MaxOutputBytes is zero. 64 MiB is a large file
// read and returned whole, and what the pool can hold for each of many
// items in flight at once without exhausting a machine.
const DefaultMaxOutputBytes = 64 << 20

// DefaultMaxMessages bounds the messages one item writes to each stream
// (errors, warnings, verbose, information, progress) when
// InitialState.MaxMessages is zero. Ten thousand log lines is a chatty
// item; more from one item is a loop logging every step.
const DefaultMaxMessages = 10_000

// DefaultMaxTimers bounds the timers (setTimeout, setInterval,
// setImmediate) one item may have pending at once when
// InitialState.MaxTimers is zero: ten thousand concurrent waits is far
// more than a script awaiting its requests needs, while each pending timer
// holds its callback and arguments.
const DefaultMaxTimers = 10_000

// limits are a runspace's resolved per-item limits; a negative value in
// InitialState means no limit, kept here as the largest value.
type limits struct {
	values, messages, timers int
	bytes                    int64
}

func resolveLimits(st *InitialState) limits {
	pick := func(v, def int64) int64 {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 1<<63 - 1
		}
		return v
	}
	return limits{
		values:   int(pick(int64(st.MaxOutputValues), DefaultMaxOutputValues)),
		bytes:    pick(st.MaxOutputBytes, DefaultMaxOutputBytes),
		messages: int(pick(int64(st.MaxMessages), DefaultMaxMessages)),
		timers:   int(pick(int64(st.MaxTimers), DefaultMaxTimers)),
	}
}

// limitError is an item that crossed one of its limits.
type limitError struct {
	what  string // "output values", "bytes of output", "error messages"...
	limit int64
	field string // the InitialState field that sets it
}

func (e *limitError) Error() string {
	return fmt.Sprintf("item limit: more than %d %s (the limit is InitialState.%s)", e.limit, e.what, e.field)
}

// overLimit records that the item crossed a limit and interrupts the
// runtime, so that the item ends at the script's next instruction even if
// it catches the error that the caller throws now. The first limit
// crossed is the one reported.
func (r *Runspace) overLimit(e *limitError) error {
	if r.limitErr == nil {
		r.limitErr = e
		r.rt.Interrupt(e)
	}
	return r.limitErr
}

// throwOverLimit is overLimit for a native function: it throws.
func (r *Runspace) throwOverLimit(e *limitError) {
	panic(r.rt.NewGoError(r.overLimit(e)))
}

// messageLimit throws when an item that already wrote n messages to a
// stream writes another.
func (r *Runspace) messageLimit(n int, stream string) {
	if n >= r.limits.messages {
		r.throwOverLimit(&limitError{what: stream + " messages", limit: int64(r.limits.messages), field: "MaxMessages"})
	}
}

// endItemLimits clears what overLimit left once the item is over: the
// interrupt, if the script never ran another instruction to receive it.
func (r *Runspace) endItemLimits() {
	if r.limitErr != nil {
		r.limitErr = nil
		r.broken = true // interrupted: replaced, like any interrupted runspace
		r.rt.ClearInterrupt()
	}
	r.outBytes = 0
}
