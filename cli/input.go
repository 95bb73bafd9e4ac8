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
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

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
	// maxLine is the longest line read (--max-line), without its line
	// ending; a longer one is an InvalidInput item, and is never held
	// whole.
	maxLine int

	mu     sync.Mutex // failed is set by the pool's reader goroutine
	failed error
}

func newInput(stdin io.Reader, files []string, format string) *input {
	if len(files) == 0 {
		files = []string{"-"}
	}
	return &input{stdin: stdin, files: files, format: format, maxLine: defaultMaxLine}
}

// defaultMaxLine is the longest input line read by default (--max-line).
// A line becomes one string in the engine, and a JSON line a tree of
// values several times its size, while up to a batch of lines per
// runspace wait to run: 64 MiB holds any record a line-per-item tool
// meets in practice (a large JSON document, a base64 file of tens of MB),
// and caps what one line can cost at a few hundred MB, where an unbounded
// 200 MB line took 1 GB.
const defaultMaxLine = 64 << 20

// sizeUnit is a suffix parseSize accepts and what it multiplies by.
type sizeUnit struct {
	suffix string
	mult   int64
}

// sizeUnits returns the units of sizes, largest first, binary as their
// names say.
func sizeUnits() [4]sizeUnit {
	return [...]sizeUnit{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
}

// parseSize parses a byte size: a whole number with an optional unit,
// B, KiB, MiB or GiB (1MiB, 64KiB, 4096).
func parseSize(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits() {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a size such as 65536, 64KiB or 1MiB", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return n * mult, nil
}

// formatSize writes n the way parseSize reads it, in the largest unit
// that divides it.
func formatSize(n int64) string {
	for _, u := range sizeUnits() {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// utf8BOM is the byte-order mark some tools put at the start of UTF-8
// text. It says how the file is encoded; it is not part of the first
// line, nor of the first CSV column's name.
const utf8BOM = "\xef\xbb\xbf"

// skipBOM drops a UTF-8 byte-order mark at the start of br. It waits for
// more than the first byte only when that byte can start a mark: a first
// line shorter than a mark ("1\n") from a slow producer is not held back
// until more input comes.
func skipBOM(br *bufio.Reader) {
	if b, err := br.Peek(1); err != nil || b[0] != utf8BOM[0] {
		return
	}
	if b, err := br.Peek(len(utf8BOM)); err == nil && string(b) == utf8BOM {
		_, _ = br.Discard(len(utf8BOM))
	}
}

// invalidUTF8 returns the offset of the first byte of b that is not valid
// UTF-8, or -1 if b is valid.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

// errInvalidUTF8 says where a line stops being UTF-8. Input that is not
// UTF-8 cannot become a JavaScript string without its bad bytes being
// replaced by U+FFFD, so rather than change it silently, the line is an
// InvalidInput item.
func errInvalidUTF8(offset int) error {
	return fmt.Errorf("not valid UTF-8 at byte offset %d", offset)
}

// tooLongPrefix is how much of an over-long line is kept, to show which
// line it was in messages and records.
const tooLongPrefix = 64

// tooLong is the item for a line longer than maxLine; head is its start.
func (in *input) tooLong(head []byte) pool.Item {
	head = head[:min(len(head), tooLongPrefix)]
	for len(head) > 0 && !utf8.Valid(head) {
		head = head[:len(head)-1] // Cut inside a character.
	}
	return pool.Item{
		Input: vm.JSONString(string(head) + "..."),
		Err:   fmt.Errorf("line longer than the --max-line limit of %s: skipped without being read whole", formatSize(int64(in.maxLine))),
	}
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
			br := bufio.NewReaderSize(r, readBufferSize)
			skipBOM(br)
			var ok bool
			if in.format == "csv" {
				ok = in.csvItems(name, br, yield)
			} else {
				ok = in.lineItems(name, br, yield)
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
	var long []byte   // a line longer than the buffer, gathered in pieces
	var head []byte   // the start of a line found too long, kept for messages
	skipping := false // the line is too long: its pieces are discarded
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// No line end yet. (+1: a "\r" before the "\n" would not
			// count as part of the line.)
			switch {
			case skipping:
			case len(long)+len(line) > in.maxLine+1:
				head = append(make([]byte, 0, tooLongPrefix), long[:min(len(long), tooLongPrefix)]...)
				head = append(head, line[:min(len(line), tooLongPrefix-len(head))]...)
				long, skipping = nil, true
			default:
				long = in.gather(long, line)
			}
			continue
		}
		if skipping {
			skipping = false
			if !yield(in.tooLong(head)) {
				return false
			}
		} else {
			if long != nil {
				line = append(long, line...)
				long = nil
			}
			if len(line) > 0 {
				line = bytes.TrimSuffix(line, []byte("\n"))
				line = bytes.TrimSuffix(line, []byte("\r"))
				if len(line) > in.maxLine {
					if !yield(in.tooLong(line)) {
						return false
					}
				} else if it, keep := in.decodeLine(line); keep && !yield(it) {
					return false
				}
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

// gather appends piece to long, the start of a line that did not fit the
// read buffer. It doubles long's capacity as it grows, but never beyond
// what a line of maxLine needs, so that gathering a line costs about twice
// its size in all, not the five times that append's gentler growth of
// large slices allocates.
func (in *input) gather(long, piece []byte) []byte {
	if need := len(long) + len(piece); need > cap(long) {
		grown := make([]byte, len(long), max(need, min(2*cap(long), in.maxLine+1)))
		copy(grown, long)
		long = grown
	}
	return append(long, piece...)
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
	if in.format == "auto" || in.format == "json" {
		// The commonest line first: an integer is ASCII, so valid
		// UTF-8, and not blank.
		if n, ok := smallJSONInt(line); ok {
			return pool.Item{Value: n, Input: json.RawMessage(in.keep(line))}, true
		}
	}
	if at := invalidUTF8(line); at >= 0 {
		return pool.Item{Input: vm.JSONString(string(line)), Err: errInvalidUTF8(at)}, true
	}
	switch in.format {
	case jobInputFormat:
		if len(line) == 0 {
			return it, false // a client's keep-alive
		}
		return decodeJobLine(in, line), true
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
		return in.jsonItem(line), true
	default: // auto
		if isBlank(line) {
			return it, false
		}
		if isJSONInt(line) || json.Valid(line) {
			return in.jsonItem(line), true
		}
		if vm.JSONTooDeep(line) {
			// JSON too deep to parse safely: passing it on as a string
			// would hide what it is.
			return pool.Item{Input: vm.JSONString(string(line)),
				Err: fmt.Errorf("invalid JSON: arrays and objects nested more than %d levels deep", vm.MaxJSONDepth)}, true
		}
		return pool.Item{Value: string(line)}, true
	}
}

// jsonItem is the item of a JSON line other than a small integer (see
// decodeLine): its text, parsed in the runspace.
func (in *input) jsonItem(line []byte) pool.Item {
	raw := json.RawMessage(in.keep(line))
	return pool.Item{Value: raw, Input: raw}
}

// maxExactDigits is the most decimal digits of an integer that a float64
// (what a JavaScript number is) always holds exactly: 15.
const maxExactDigits = 15

// smallJSONInt parses b if it is a JSON integer of at most maxExactDigits
// digits. Such a line is parsed by the reader, once, and goes to the
// runspace as an int64, which it turns into a number without parsing
// (Input keeps the line, for records and messages). "-0" is not one: as an int64 it would lose the sign JSON.parse
// keeps.
func smallJSONInt(b []byte) (int64, bool) {
	d, neg := b, false
	if len(d) > 0 && d[0] == '-' {
		d, neg = d[1:], true
	}
	if len(d) == 0 || len(d) > maxExactDigits || d[0] == '0' && (len(d) > 1 || neg) {
		return 0, false
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
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

// lineLimit passes a reader through, failing with errLineTooLong once a
// line passes max bytes (line ending included), so that a reader that
// gathers whole lines (csv.Reader) never gathers a longer one.
type lineLimit struct {
	r    io.Reader
	max  int
	line int // bytes since the last '\n'
}

// errLineTooLong is the error of a lineLimit.
var errLineTooLong = errors.New("line too long")

func (l *lineLimit) Read(p []byte) (int, error) {
	if l.line > l.max {
		return 0, errLineTooLong
	}
	n, err := l.r.Read(p)
	if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
		l.line = n - i - 1
	} else {
		l.line += n
	}
	return n, err
}

// csvHeader checks a CSV header row: every name valid UTF-8 and none
// twice, since a row becomes an object keyed by the names and a repeated
// one would silently keep only its last column.
func csvHeader(header []string) error {
	for i, h := range header {
		if at := invalidUTF8([]byte(h)); at >= 0 {
			return fmt.Errorf("column %d: %w", i+1, errInvalidUTF8(at))
		}
	}
	first := map[string]int{}
	var dups []string
	for i, h := range header {
		j, seen := first[h]
		if !seen {
			first[h] = i
			continue
		}
		dups = append(dups, fmt.Sprintf("%q (columns %d and %d)", h, j+1, i+1))
	}
	if len(dups) > 0 {
		return fmt.Errorf("duplicate column names: %s; each column needs its own name", strings.Join(dups, ", "))
	}
	return nil
}

func (in *input) csvItems(name string, r io.Reader, yield func(pool.Item) bool) bool {
	// +2: a line ending is counted, and may be "\r\n".
	cr := csv.NewReader(&lineLimit{r: bufio.NewReaderSize(r, readBufferSize), max: in.maxLine + 2})
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return true
	}
	if err == nil {
		err = csvHeader(header)
	}
	if err != nil {
		in.fail(fmt.Errorf("%s: csv header: %w", displayName(name), in.csvError(err)))
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
				in.fail(fmt.Errorf("%s: %w", displayName(name), in.csvError(err)))
				return false
			}
			it = pool.Item{Input: vm.JSONString(fmt.Sprintf("%s line %d", displayName(name), pe.Line)), Err: err}
		case len(rec) != len(header):
			line, _ := cr.FieldPos(0)
			it = pool.Item{Input: csvArray(rec), Err: fmt.Errorf("line %d: %d fields, but the header has %d", line, len(rec), len(header))}
		default:
			if i, at := csvInvalidUTF8(rec); at >= 0 {
				line, _ := cr.FieldPos(i)
				it = pool.Item{Input: csvArray(rec), Err: fmt.Errorf("line %d, field %d: %w", line, i+1, errInvalidUTF8(at))}
				break
			}
			raw := csvObject(header, rec)
			it = pool.Item{Value: raw, Input: raw}
		}
		if !yield(it) {
			return false
		}
	}
}

// csvError explains an error that stopped reading a CSV file.
func (in *input) csvError(err error) error {
	if errors.Is(err, errLineTooLong) {
		// A CSV record may span lines, so an over-long one cannot be
		// skipped to the next record as a line can.
		return fmt.Errorf("a line is longer than the --max-line limit of %s; raise it to read this file", formatSize(int64(in.maxLine)))
	}
	return err
}

// csvInvalidUTF8 returns the first field of rec that is not valid UTF-8
// and the offset of its first bad byte, or offset -1.
func csvInvalidUTF8(rec []string) (field, offset int) {
	for i, f := range rec {
		if !utf8.ValidString(f) {
			return i, invalidUTF8([]byte(f))
		}
	}
	return 0, -1
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
// goes on alone, as an InvalidInput result. A batch takes the seq of its
// first item, if it has one.
func batched(seq iter.Seq[pool.Item], size int) iter.Seq[pool.Item] {
	return func(yield func(pool.Item) bool) {
		var buf []byte
		n := 0
		var first int64 // the seq of the batch's first item, if it has one (a shard's)
		flush := func() bool {
			if n == 0 {
				return true
			}
			raw := json.RawMessage(append(buf, ']'))
			it := pool.Item{Value: raw, Input: raw, Count: n, Seq: first}
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
				first = it.Seq
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
