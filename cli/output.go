package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/runspaces/rsh/vm"
)

// outputBufferSize is how much output is gathered before it is written, so
// that a million small results cost a few hundred writes, not a million.
const outputBufferSize = 64 << 10

// joblogBufferSize is how many bytes of job-log lines are gathered before
// they are written (a million trivial items make 135 MB of job log). On
// the ext4 of the machine rsh is measured on, dd writes 0.4-0.5 GB/s in
// 64 KiB writes and 0.8-2.3 GB/s in 1 MiB ones, and with smaller writes
// they were most of what --joblog cost.
const joblogBufferSize = 1 << 20

// keepBufferSize is the largest buffer kept for reuse after a write: one
// huge result should not pin its size for the rest of the run.
const keepBufferSize = 4 * joblogBufferSize

// flushInterval bounds how long a result may wait in the buffer, so the
// output (and job log) of a slow run still appear as items finish.
const flushInterval = 100 * time.Millisecond

// shortInputLen is how much of an item's input stderr messages show.
const shortInputLen = 40

// output writes results: values or records to stdout, stream messages to
// stderr tagged with the item's seq and a short form of its input, and the
// job log.
//
// Output is gathered and written in groups: when the buffer fills, every
// flushInterval while anything waits, and at the end. The job-log lines of a
// group's items are written only after the group's output has been written
// to stdout, so the job log never claims an item whose output could still
// be lost (the durability rule in docs/design.md); they are written with one
// write, gathered over several groups when they are many.
//
// The first write that fails, to stdout or to the job log, stops the
// output: the error is kept (see err), fail is called once, and nothing
// more is written or claimed; later results are dropped.
type output struct {
	mode           string
	verbose, quiet bool
	// echoStreams writes the items' messages to stderr even with records
	// (a job's log).
	echoStreams bool
	stdout      io.Writer
	stderr      io.Writer
	log         *joblog // nil without --joblog
	fail        func(error)
	// claimed, when set, is told after each job-log write where the
	// output file ended and how many items (and failed ones) it claimed.
	claimed func(end int64, items, failed int)
	// pending and pendingFailed count the items in logBuf (and the failed
	// ones among them); claimItems and claimFailed those of its claimable
	// part.
	pending, pendingFailed  int
	claimItems, claimFailed int

	mu     sync.Mutex
	buf    []byte // output not yet written
	logBuf []byte // job-log lines not yet written
	// claimable is how much of logBuf names items whose output has been
	// written: the lines after it wait for buf to be written.
	claimable int
	// With stdout a regular file: which file, and its size once the
	// claimable lines' output was written. The job log records it after
	// each group of lines (an output-end line), so that a resumed run can
	// remove output that a killed run wrote but never claimed.
	outFile *os.File
	outID   fileID
	outEnd  int64
	stamps  timeStamps
	failure error
	done    chan struct{}
	wg      sync.WaitGroup
}

// newOutput starts the output of a run; log, when not nil, receives the
// job-log lines, and fail is told of the first write that fails.
func newOutput(env Env, o *runOptions, log *joblog, claimed func(end int64, items, failed int), fail func(error)) *output {
	out := &output{
		mode:        o.out,
		echoStreams: o.echoStreams,
		verbose:     o.verbose,
		quiet:       o.quiet,
		stdout:      env.Stdout,
		stderr:      env.Stderr,
		log:         log,
		claimed:     claimed,
		fail:        fail,
		buf:         make([]byte, 0, outputBufferSize),
		done:        make(chan struct{}),
	}
	if f, ok := env.Stdout.(*os.File); ok && log != nil {
		if id, ok := regularFileID(f); ok {
			out.outFile, out.outID = f, id
		}
	}
	out.wg.Add(1)
	go out.flusher()
	return out
}

func (o *output) flusher() {
	defer o.wg.Done()
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-o.done:
			return
		case <-t.C:
			o.flush()
		}
	}
}

// flush writes what is buffered: the output, then the job-log lines.
func (o *output) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writeOutput()
	o.writeLog()
}

// writeOutput writes the buffered output; the job-log lines of its items
// become claimable.
func (o *output) writeOutput() {
	if o.failure != nil {
		return
	}
	if len(o.buf) > 0 {
		_, err := o.stdout.Write(o.buf)
		o.buf = o.buf[:0]
		if cap(o.buf) > keepBufferSize {
			o.buf = make([]byte, 0, outputBufferSize)
		}
		if err != nil {
			o.failLocked(&writeError{what: "writing output", err: err})
			return
		}
	}
	o.claimable = len(o.logBuf)
	o.claimItems, o.claimFailed = o.pending, o.pendingFailed
	if o.outFile != nil {
		if end, err := o.outFile.Seek(0, io.SeekCurrent); err == nil {
			o.outEnd = end
		}
	}
}

// writeLog writes the claimable job-log lines, with one write.
func (o *output) writeLog() {
	if o.failure != nil || o.claimable == 0 {
		return
	}
	if o.outFile != nil {
		// The lines and the output-end line go out in one write.
		marker := appendOutputEnd(nil, o.outID, o.outEnd)
		o.logBuf = slices.Insert(o.logBuf, o.claimable, marker...)
		o.claimable += len(marker)
	}
	err := o.log.write(o.logBuf[:o.claimable])
	n := copy(o.logBuf, o.logBuf[o.claimable:])
	o.logBuf, o.claimable = o.logBuf[:n], 0
	if cap(o.logBuf) > keepBufferSize {
		o.logBuf = append([]byte(nil), o.logBuf...)
	}
	if err != nil {
		o.failLocked(&writeError{what: "writing the job log " + o.log.path, err: err})
		return
	}
	o.pending -= o.claimItems
	o.pendingFailed -= o.claimFailed
	if o.claimed != nil {
		o.claimed(o.outEnd, o.claimItems, o.claimFailed)
	}
	o.claimItems, o.claimFailed = 0, 0
}

// failLocked keeps err as the output's failure and passes it to fail;
// what is still buffered is dropped, never claimed.
func (o *output) failLocked(err error) {
	o.failure = err
	o.buf, o.logBuf, o.claimable = nil, nil, 0
	if o.fail != nil {
		o.fail(err)
	}
}

// err returns the write error that stopped the output, if any.
func (o *output) err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failure
}

// close writes what is left and stops the flusher; it returns the output's
// failure, if any.
func (o *output) close() error {
	select {
	case <-o.done:
	default:
		close(o.done)
	}
	o.wg.Wait()
	o.flush()
	return o.err()
}

func (o *output) result(r *vm.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failure != nil {
		return
	}
	o.messages(r)
	if o.mode == "records" {
		o.buf = append(r.AppendJSON(o.buf), '\n')
	} else {
		o.buf = o.appendValues(o.buf, r)
	}
	if o.log != nil {
		o.logBuf = appendJoblogLine(o.logBuf, r, &o.stamps)
		o.pending++
		if r.Status != vm.Success {
			o.pendingFailed++
		}
	}
	if len(o.buf) >= outputBufferSize || len(o.logBuf) >= joblogBufferSize {
		o.writeOutput()
	}
	if o.claimable >= joblogBufferSize {
		o.writeLog()
	}
}

// appendValues appends r's output values as --out values or json shows
// them, one a line. It touches nothing of o but its mode, so the pool's
// goroutines may call it (pool.Encode).
func (o *output) appendValues(b []byte, r *vm.Result) []byte {
	if o.mode == "json" {
		for _, v := range r.Output {
			b = append(b, v...)
			b = append(b, '\n')
		}
		return b
	}
	for _, v := range r.Output {
		b = appendValue(b, v)
		b = append(b, '\n')
	}
	return b
}

// write adds output already encoded by appendValues (of plain results,
// which have no messages, nor job-log lines: see pool.Encode).
func (o *output) write(b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failure != nil {
		return
	}
	o.buf = append(o.buf, b...)
	if len(o.buf) >= outputBufferSize {
		o.writeOutput()
	}
}

// limitFlags names, in the library's per-item limit messages, the flag
// that sets each limit instead of its InitialState field.
var limitFlags = strings.NewReplacer(
	"(the limit is InitialState.MaxOutputValues)", "(raise --max-output-values)",
	"(the limit is InitialState.MaxOutputBytes)", "(raise --max-output)",
	"(the limit is InitialState.MaxMessages)", "(raise --max-messages)",
	"(the limit is InitialState.MaxTimers)", "(raise --max-timers)",
)

// appendValue appends an output value as --out values shows it: a string
// as it is, anything else as JSON.
func appendValue(b []byte, v json.RawMessage) []byte {
	if len(v) > 1 && v[0] == '"' {
		if bytes.IndexByte(v, '\\') < 0 {
			return append(b, v[1:len(v)-1]...) // nothing to unescape
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			return append(b, s...)
		}
	}
	return append(b, v...)
}

// writeError is a failed write of the run's output or job log.
type writeError struct {
	what string
	err  error
}

// Error says what was being written and why it failed, without the
// file name of stdout ("write /dev/stdout: ...") that says nothing more.
func (e *writeError) Error() string {
	return e.what + ": " + withoutPath(e.err).Error()
}

// withoutPath returns the cause of a *fs.PathError, for messages that name
// the file already, and any other error as it is.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (e *writeError) Unwrap() error { return e.err }

// messages writes the item's stream messages and failure to stderr. With
// records on stdout, the streams are in the records, so only failures are
// repeated on stderr.
func (o *output) messages(r *vm.Result) {
	if r.Status == vm.Success && r.Information == nil && r.Warnings == nil && r.Verbose == nil && r.Errors == nil {
		return // the commonest result: nothing to say
	}
	tag := "" // made on first use: most results have nothing to say
	line := func(kind, msg string) {
		if tag == "" {
			tag = fmt.Sprintf("#%d %s", r.Seq, short(r.Input))
		}
		if kind != "" {
			kind += ": "
		}
		fmt.Fprintf(o.stderr, "%s: %s%s\n", tag, kind, msg)
	}
	if o.mode != "records" || o.echoStreams {
		streamLines(r, o.verbose, o.quiet, line)
	}
	msg := ""
	if r.Error != nil {
		msg = r.Error.Message
	}
	switch r.Status {
	case vm.Exception:
		if o.verbose && r.Error != nil && r.Error.Stack != "" {
			msg = r.Error.Stack
		} else if loc := vm.FirstFrame(r.Error.Stack); loc != "" {
			msg += " (at " + loc + ")"
		}
		line("exception", limitFlags.Replace(msg))
	case vm.Timeout:
		line("timeout", msg)
	case vm.Stopped:
		line("stopped", msg)
	case vm.InvalidInput:
		line("invalid input", msg)
	case vm.MemoryLimit:
		line("memory limit", msg+" (raise --max-memory)")
	}
}

// short renders an input for a stderr message: strings without quotes,
// anything else as JSON, cut to shortInputLen runes.
func short(raw json.RawMessage) string {
	s := string(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			s = str
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > shortInputLen {
		rs := []rune(s)
		s = string(rs[:shortInputLen-1]) + "…"
	}
	return s
}

// streamLines passes line the stream messages of r that the flags show:
// information and warnings unless quiet, verbose messages if verbose,
// errors always.
func streamLines(r *vm.Result, verbose, quiet bool, line func(kind, msg string)) {
	if !quiet {
		for _, m := range r.Information {
			line("", m)
		}
		for _, m := range r.Warnings {
			line("warning", m)
		}
	}
	if verbose {
		for _, m := range r.Verbose {
			line("verbose", m)
		}
	}
	for _, m := range r.Errors {
		line("error", m)
	}
}
