package cli

import (
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/runspaces/rsh/pool"
)

// longLine reads as head, then n bytes of 'a', then tail, made on the fly
// so that a long line costs the test no memory.
type longLine struct {
	head, tail string
	n          int
}

func (l *longLine) Read(p []byte) (int, error) {
	switch {
	case l.head != "":
		k := copy(p, l.head)
		l.head = l.head[k:]
		return k, nil
	case l.n > 0:
		k := min(len(p), l.n)
		for i := range p[:k] {
			p[i] = 'a'
		}
		l.n -= k
		return k, nil
	case l.tail != "":
		k := copy(p, l.tail)
		l.tail = l.tail[k:]
		return k, nil
	}
	return 0, io.EOF
}

// collect reads every item of in.
func collect(t *testing.T, in *input) []pool.Item {
	t.Helper()
	var items []pool.Item
	for it := range in.items() {
		items = append(items, it)
	}
	if err := in.err(); err != nil {
		t.Fatalf("reading: %v", err)
	}
	return items
}

// A line longer than --max-line is one InvalidInput item naming the limit
// and the flag, the lines after it are read as usual, and the long line is
// never held whole: what reading allocates stays near the limit, not the
// line's 200 MB.
func TestMaxLineSkipsWithoutHolding(t *testing.T) {
	const lineLen = 200 << 20
	for _, tc := range []struct {
		format    string
		maxLine   int
		allocated uint64 // the most reading may allocate
	}{
		// Twice the limit (the gathered line grows by doubling up to
		// the limit), plus the read buffer and the arena.
		{"auto", 1 << 20, 8 << 20},
		{"text", 1 << 20, 8 << 20},
		{"json", 1 << 20, 8 << 20},
		{"auto", defaultMaxLine, 3 * defaultMaxLine},
	} {
		t.Run(tc.format+"/"+formatSize(int64(tc.maxLine)), func(t *testing.T) {
			in := newInput(&longLine{head: "first\n", n: lineLen, tail: "\r\n7\n"}, nil, tc.format)
			in.maxLine = tc.maxLine
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			items := collect(t, in)
			runtime.ReadMemStats(&after)
			if len(items) != 3 {
				t.Fatalf("%d items; want 3", len(items))
			}
			bad := items[1]
			if bad.Err == nil || !strings.Contains(bad.Err.Error(), "longer than the --max-line limit of "+formatSize(int64(tc.maxLine))) {
				t.Errorf("long line: err = %v; want one naming --max-line and its limit", bad.Err)
			}
			if !strings.HasPrefix(string(bad.Input), `"aaaa`) || len(bad.Input) > 2*tooLongPrefix {
				t.Errorf("long line: input %.100q; want the start of the line", bad.Input)
			}
			if next := items[2]; next.Err != nil || strings.Trim(string(next.JSON()), `"`) != "7" {
				t.Errorf("line after the long one: %s, %v; want 7", next.JSON(), next.Err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > tc.allocated {
				t.Errorf("reading a %d MB line allocated %d MB; want at most %d MB", lineLen>>20, got>>20, tc.allocated>>20)
			}
		})
	}
}

// The limit counts the line without its ending; a line of exactly the
// limit is read, one byte more is not, in one buffer or across several.
func TestMaxLineBoundary(t *testing.T) {
	for _, n := range []int{10, readBufferSize + 10} {
		for _, ending := range []string{"\n", "\r\n"} {
			in := newInput(&longLine{n: n, tail: ending}, nil, "text")
			in.maxLine = n
			if items := collect(t, in); len(items) != 1 || items[0].Err != nil {
				t.Errorf("line of %d bytes + %q, limit %d: %+v; want it read", n, ending, n, items)
			}
			in = newInput(&longLine{n: n + 1, tail: ending}, nil, "text")
			in.maxLine = n
			if items := collect(t, in); len(items) != 1 || items[0].Err == nil {
				t.Errorf("line of %d bytes + %q, limit %d: %+v; want InvalidInput", n+1, ending, n, items)
			}
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "65536": 65536, "64KiB": 64 << 10, "1MiB": 1 << 20, "2 GiB": 2 << 30, "10B": 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
		if got, err := parseSize(formatSize(want)); err != nil || got != want {
			t.Errorf("parseSize(formatSize(%d)) = %d, %v", want, got, err)
		}
	}
	for _, in := range []string{"", "MiB", "1MB", "-1", "1.5MiB", "x", "99999999999GiB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d; want an error", in, got)
		}
	}
}

// A line that is not valid UTF-8 is an InvalidInput item giving the byte
// offset of the first bad byte, in every line format: the engine would
// otherwise replace the bytes with U+FFFD without a word.
func TestInvalidUTF8(t *testing.T) {
	for _, format := range []string{"auto", "text", "json"} {
		in := newInput(strings.NewReader("ok é\n\"ab\xffc\"\nnext\xc3\n\"fine\"\n"), nil, format)
		items := collect(t, in)
		if len(items) != 4 {
			t.Fatalf("%s: %d items; want 4", format, len(items))
		}
		for i, offset := range []string{"", "byte offset 3", "byte offset 4", ""} {
			err := items[i].Err
			switch {
			case offset == "" && err != nil:
				t.Errorf("%s: line %d: %v; want it read", format, i+1, err)
			case offset != "" && (err == nil || !strings.Contains(err.Error(), "not valid UTF-8 at "+offset)):
				t.Errorf("%s: line %d: err = %v; want not valid UTF-8 at %s", format, i+1, err, offset)
			}
		}
	}
}

// A UTF-8 byte-order mark at the start of a file is not part of its first
// line, in any format.
func TestByteOrderMark(t *testing.T) {
	for format, want := range map[string]string{"auto": `42`, "text": `"42"`, "json": `42`} {
		items := collect(t, newInput(strings.NewReader("\ufeff42\n"), nil, format))
		if len(items) != 1 || string(items[0].JSON()) != want {
			t.Errorf("%s: %+v; want one item %s", format, items, want)
		}
	}
	items := collect(t, newInput(strings.NewReader("\ufeffname,size\r\nx,1\n"), nil, "csv"))
	if len(items) != 1 || string(items[0].JSON()) != `{"name":"x","size":"1"}` {
		t.Errorf("csv: %+v; want {\"name\":\"x\",\"size\":\"1\"}", items)
	}
}

// Repeated CSV header names stop the reading of the file with an error
// naming each of them and their columns.
func TestCSVDuplicateHeader(t *testing.T) {
	in := newInput(strings.NewReader("a,b,a,c,b\n1,2,3,4,5\n"), nil, "csv")
	var n int
	for range in.items() {
		n++
	}
	err := in.err()
	if n != 0 || err == nil {
		t.Fatalf("%d items, err %v; want none and an error", n, err)
	}
	for _, want := range []string{`"a" (columns 1 and 3)`, `"b" (columns 2 and 5)`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v; want it to name %s", err, want)
		}
	}
}

// A CSV field that is not valid UTF-8 makes its row InvalidInput; a CSV
// line longer than --max-line stops the file, as a record may span lines.
func TestCSVLimits(t *testing.T) {
	items := collect(t, newInput(strings.NewReader("name\nok\nb\xffd\nlast\n"), nil, "csv"))
	if len(items) != 3 || items[0].Err != nil || items[2].Err != nil {
		t.Fatalf("%+v; want 3 items, the middle one invalid", items)
	}
	if err := items[1].Err; err == nil || !strings.Contains(err.Error(), "line 3, field 1: not valid UTF-8 at byte offset 1") {
		t.Errorf("bad row: %v", err)
	}

	in := newInput(&longLine{head: "name\nfirst\n", n: 10 << 20, tail: "\nlast\n"}, nil, "csv")
	in.maxLine = 1 << 20
	var got []string
	for it := range in.items() {
		var v map[string]string
		if err := json.Unmarshal(it.JSON(), &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v["name"])
	}
	if len(got) != 1 || got[0] != "first" {
		t.Errorf("items %q; want only first", got)
	}
	if err := in.err(); err == nil || !strings.Contains(err.Error(), "--max-line limit of 1MiB") {
		t.Errorf("err = %v; want one naming --max-line", err)
	}
}

// A slow producer's first line reaches the run when it is written, even
// one shorter than a byte-order mark: the input does not wait for more.
func TestShortFirstLineNotHeldBack(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("1\n")) }() // and nothing more, for now
	got := make(chan pool.Item, 1)
	go func() {
		for it := range newInput(pr, nil, "auto").items() {
			got <- it
			return
		}
	}()
	select {
	case it := <-got:
		if string(it.JSON()) != "1" {
			t.Errorf("first item %s, want 1", it.JSON())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the first line was held back waiting for more input")
	}
	pw.Close()
}

// Integer lines that a float64 holds exactly are parsed once, in the
// reader; -0, longer integers and anything else go on as JSON text.
func TestSmallJSONInt(t *testing.T) {
	for line, want := range map[string]any{
		"0": int64(0), "7": int64(7), "-7": int64(-7), "999999999999999": int64(999999999999999),
		"-999999999999999": int64(-999999999999999),
		"-0":               nil, "1000000000000000": nil, "01": nil, "-": nil, "": nil, "1.5": nil, "1e3": nil, "- 1": nil,
	} {
		n, ok := smallJSONInt([]byte(line))
		if want == nil {
			if ok {
				t.Errorf("%q: parsed as %d, want left as text", line, n)
			}
			continue
		}
		if !ok || n != want {
			t.Errorf("%q: %d, %v; want %d", line, n, ok, want)
		}
	}
	in := newInput(nil, nil, "auto")
	for line, want := range map[string]any{"42": int64(42), "-0": json.RawMessage("-0"), "12345678901234567": json.RawMessage("12345678901234567")} {
		it, _ := in.decodeLine([]byte(line))
		if string(it.Input) != line {
			t.Errorf("%q: input %s, want the line", line, it.Input)
		}
		switch w := want.(type) {
		case int64:
			if it.Value != w {
				t.Errorf("%q: value %#v, want %d", line, it.Value, w)
			}
		case json.RawMessage:
			if raw, ok := it.Value.(json.RawMessage); !ok || string(raw) != string(w) {
				t.Errorf("%q: value %#v, want the text", line, it.Value)
			}
		}
	}
}
