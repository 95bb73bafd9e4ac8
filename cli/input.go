package cli

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"sync"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// input reads items from files (or stdin) in one of the --in formats.
type input struct {
	stdin  io.Reader
	files  []string
	format string
	arena  []byte // see keep; used by the reading goroutine only
	// validate checks JSON lines as they are read (batches need it: one
	// bad line must not spoil its batch); otherwise the runspace does.
	validate bool

	mu     sync.Mutex // failed is set by the pool's reader goroutine
	failed error
}

func newInput(stdin io.Reader, files []string, format string) *input {
	if len(files) == 0 {
		files = []string{"-"}
	}
	return &input{stdin: stdin, files: files, format: format}
}

// count returns how many records the input holds, read up front, or -1 if
// that cannot be known without consuming it (stdin, a pipe). Blank lines
// are not counted where they are skipped, nor CSV header rows.
func (in *input) count() int64 {
	var total int64
	for _, name := range in.files {
		if name == "-" {
			return -1
		}
		f, err := os.Open(name)
		if err != nil {
			return -1
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return -1
		}
		n, files := int64(0), int64(0)
		br := bufio.NewReaderSize(f, readBufferSize)
		for {
			line, err := br.ReadSlice('\n')
			if len(line) > 0 && (in.format == "text" || !isBlank(line)) {
				n++
			}
			if err == bufio.ErrBufferFull {
				// The rest of a long line: it was counted already.
				for err == bufio.ErrBufferFull {
					_, err = br.ReadSlice('\n')
				}
			}
			if err != nil {
				break
			}
		}
		f.Close()
		if in.format == "csv" && n > 0 {
			files++
		}
		total += n - files
	}
	return total
}

// readsStdin reports whether any input comes from stdin.
func (in *input) readsStdin() bool {
	for _, f := range in.files {
		if f == "-" {
			return true
		}
	}
	return false
}

// err returns the error that stopped reading early, if any.
func (in *input) err() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.failed
}

func (in *input) fail(err error) {
	in.mu.Lock()
	in.failed = err
	in.mu.Unlock()
}

// items yields the decoded items of every file in turn.
func (in *input) items() iter.Seq[pool.Item] {
	return func(yield func(pool.Item) bool) {
		for _, name := range in.files {
			r, closeFn, err := in.open(name)
			if err != nil {
				in.fail(err)
				return
			}
			var ok bool
			if in.format == "csv" {
				ok = in.csvItems(name, r, yield)
			} else {
				ok = in.lineItems(name, r, yield)
			}
			closeFn()
			if !ok {
				return
			}
		}
	}
}

func (in *input) open(name string) (io.Reader, func(), error) {
	if name == "-" {
		return in.stdin, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// readBufferSize is the input buffer: large enough that reading is a small
// share of per-item cost; lines longer than it are still read whole.
const readBufferSize = 256 << 10

func (in *input) lineItems(name string, r io.Reader, yield func(pool.Item) bool) bool {
	br := bufio.NewReaderSize(r, readBufferSize)
	var long []byte // a line longer than the buffer, gathered in pieces
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			continue
		}
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			if it, keep := in.decodeLine(line); keep && !yield(it) {
				return false
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				in.fail(fmt.Errorf("%s: %w", displayName(name), err))
				return false
			}
			return true
		}
	}
}

// arenaChunk is the size of the blocks that input lines are copied into:
// one allocation serves hundreds of short lines.
const arenaChunk = 64 << 10

// keep copies b into the input arena. The returned slice's capacity ends
// with it, so appending to it can never overwrite a neighbour.
func (in *input) keep(b []byte) []byte {
	if len(b) > arenaChunk/8 {
		return bytes.Clone(b)
	}
	if cap(in.arena)-len(in.arena) < len(b) {
		in.arena = make([]byte, 0, arenaChunk)
	}
	start := len(in.arena)
	in.arena = append(in.arena, b...)
	return in.arena[start:len(in.arena):len(in.arena)]
}

// decodeLine turns one line into an item; keep is false for lines that are
// skipped (blank lines in auto and json formats). The line is only valid
// until the next read, so whatever is kept is copied.
func (in *input) decodeLine(line []byte) (it pool.Item, keep bool) {
	switch in.format {
	case "text":
		return pool.Item{Value: string(line)}, true
	case "json":
		if isBlank(line) {
			return it, false
		}
		// Not validated here unless asked: the runspace parses the line
		// anyway and reports InvalidInput if it is not JSON.
		if in.validate && !isJSONInt(line) && !json.Valid(line) {
			var v any
			err := json.Unmarshal(line, &v)
			return pool.Item{Input: vm.JSONString(string(line)), Err: fmt.Errorf("invalid JSON: %v", err)}, true
		}
		raw := json.RawMessage(in.keep(line))
		return pool.Item{Value: raw, Input: raw}, true
	default: // auto
		if isBlank(line) {
			return it, false
		}
		if isJSONInt(line) || json.Valid(line) {
			raw := json.RawMessage(in.keep(line))
			return pool.Item{Value: raw, Input: raw}, true
		}
		return pool.Item{Value: string(line)}, true
	}
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// isJSONInt reports whether b is a JSON integer such as 42 or -7: the most
// common line, and valid JSON without running the full validator.
func isJSONInt(b []byte) bool {
	d := b
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 1 && d[0] == '0' {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (in *input) csvItems(name string, r io.Reader, yield func(pool.Item) bool) bool {
	cr := csv.NewReader(bufio.NewReaderSize(r, readBufferSize))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return true
	}
	if err != nil {
		in.fail(fmt.Errorf("%s: csv header: %w", displayName(name), err))
		return false
	}
	header = append([]string(nil), header...)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return true
		}
		var it pool.Item
		switch {
		case err != nil:
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				in.fail(fmt.Errorf("%s: %w", displayName(name), err))
				return false
			}
			it = pool.Item{Input: vm.JSONString(fmt.Sprintf("%s line %d", displayName(name), pe.Line)), Err: err}
		case len(rec) != len(header):
			line, _ := cr.FieldPos(0)
			it = pool.Item{Input: csvArray(rec), Err: fmt.Errorf("line %d: %d fields, but the header has %d", line, len(rec), len(header))}
		default:
			raw := csvObject(header, rec)
			it = pool.Item{Value: raw, Input: raw}
		}
		if !yield(it) {
			return false
		}
	}
}

// csvObject encodes a row as a JSON object whose keys keep the header order.
func csvObject(header, rec []string) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, h := range header {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(vm.JSONString(h))
		b.WriteByte(':')
		b.Write(vm.JSONString(rec[i]))
	}
	b.WriteByte('}')
	return b.Bytes()
}

func csvArray(rec []string) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, f := range rec {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(vm.JSONString(f))
	}
	b.WriteByte(']')
	return b.Bytes()
}

func displayName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

// batched groups the items of seq into arrays of up to size consecutive
// items, each passed to the script as one JSON array. An item that could
// not be decoded is not put in a batch: it ends the batch before it and
// goes on alone, as an InvalidInput result.
func batched(seq iter.Seq[pool.Item], size int) iter.Seq[pool.Item] {
	return func(yield func(pool.Item) bool) {
		var buf []byte
		n := 0
		flush := func() bool {
			if n == 0 {
				return true
			}
			raw := json.RawMessage(append(buf, ']'))
			it := pool.Item{Value: raw, Input: raw, Count: n}
			buf, n = nil, 0
			return yield(it)
		}
		for it := range seq {
			if it.Err != nil {
				if !flush() || !yield(it) {
					return
				}
				continue
			}
			if n == 0 {
				buf = append(make([]byte, 0, 64*size), '[')
			} else {
				buf = append(buf, ',')
			}
			buf = append(buf, it.JSON()...)
			n++
			if n == size && !flush() {
				return
			}
		}
		flush()
	}
}
