package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/runspaces/rsh/vm"
)

// outputBufferSize buffers stdout so that a million small results cost a
// few hundred writes, not a million.
const outputBufferSize = 64 << 10

// flushInterval bounds how long a result may sit in the stdout buffer, so
// output of a slow run still appears as it is produced.
const flushInterval = 100 * time.Millisecond

// shortInputLen is how much of an item's input stderr messages show.
const shortInputLen = 40

// output writes results: values or records to stdout, stream messages to
// stderr tagged with the item's seq and a short form of its input.
type output struct {
	mode           string
	verbose, quiet bool

	mu     sync.Mutex
	w      *bufio.Writer
	buf    []byte // scratch for records
	dirty  bool
	stderr interface{ Write([]byte) (int, error) }
	done   chan struct{}
	wg     sync.WaitGroup
}

func newOutput(env Env, o *runOptions) *output {
	out := &output{
		mode:    o.out,
		verbose: o.verbose,
		quiet:   o.quiet,
		w:       bufio.NewWriterSize(env.Stdout, outputBufferSize),
		stderr:  env.Stderr,
		done:    make(chan struct{}),
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
			o.mu.Lock()
			if o.dirty {
				o.w.Flush()
				o.dirty = false
			}
			o.mu.Unlock()
		}
	}
}

func (o *output) flush() {
	o.mu.Lock()
	o.w.Flush()
	o.dirty = false
	o.mu.Unlock()
}

func (o *output) close() {
	close(o.done)
	o.wg.Wait()
	o.flush()
}

func (o *output) result(r *vm.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.messages(r)
	switch o.mode {
	case "records":
		o.buf = r.AppendJSON(o.buf[:0])
		o.buf = append(o.buf, '\n')
		o.w.Write(o.buf)
	case "json":
		for _, v := range r.Output {
			o.w.Write(v)
			o.w.WriteByte('\n')
		}
	default:
		for _, v := range r.Output {
			if len(v) > 1 && v[0] == '"' {
				if bytes.IndexByte(v, '\\') < 0 {
					o.w.Write(v[1 : len(v)-1]) // nothing to unescape
					o.w.WriteByte('\n')
					continue
				}
				var s string
				if json.Unmarshal(v, &s) == nil {
					o.w.WriteString(s)
					o.w.WriteByte('\n')
					continue
				}
			}
			o.w.Write(v)
			o.w.WriteByte('\n')
		}
	}
	o.dirty = true
}

// messages writes the item's stream messages and failure to stderr. With
// records on stdout, the streams are in the records, so only failures are
// repeated on stderr.
func (o *output) messages(r *vm.Result) {
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
	if o.mode != "records" {
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
		line("exception", msg)
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
