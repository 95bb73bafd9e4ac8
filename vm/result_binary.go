package vm

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"time"
)

// The binary form of a Result, for pipes between rsh's own processes
// (worker processes), where the JSON record's encoding and decoding would
// cost more than running a trivial item. It carries every field; Input and
// Seq too, though a worker leaves them to its parent.
//
// Layout: a version byte, then uvarints and length-prefixed bytes in the
// order of appendBinary. Strings are copied out of the buffer on decode;
// output values share one copy.

const binaryVersion = 2

var errBinaryResult = errors.New("vm: malformed binary result")

// AppendBinary appends the binary form of r to b.
func (r *Result) AppendBinary(b []byte) []byte {
	b = append(b, binaryVersion)
	b = binary.AppendVarint(b, r.Seq)
	b = appendBytes(b, r.Input)
	b = binary.AppendUvarint(b, uint64(len(r.Output)))
	for _, o := range r.Output {
		b = appendBytes(b, o)
	}
	b = appendBytes(b, []byte(r.Status))
	for _, ss := range [][]string{r.Errors, r.Warnings, r.Verbose, r.Information} {
		b = binary.AppendUvarint(b, uint64(len(ss)))
		for _, s := range ss {
			b = appendBytes(b, []byte(s))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(r.Progress)))
	for _, p := range r.Progress {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Percent))
		b = appendBytes(b, []byte(p.Status))
	}
	if r.Error != nil {
		b = append(b, 1)
		b = appendBytes(b, []byte(r.Error.Message))
		b = appendBytes(b, []byte(r.Error.Stack))
	} else {
		b = append(b, 0)
	}
	var started int64
	if !r.StartedAt.IsZero() {
		started = r.StartedAt.UnixNano()
	}
	b = binary.AppendVarint(b, started)
	b = binary.AppendVarint(b, int64(r.Duration))
	b = binary.AppendVarint(b, int64(r.Runspace))
	b = binary.AppendVarint(b, int64(r.Attempts))
	b = binary.AppendVarint(b, int64(r.BatchSize))
	b = binary.AppendUvarint(b, uint64(len(r.ElementErrors)))
	for _, e := range r.ElementErrors {
		b = binary.AppendVarint(b, int64(e.Index))
		b = appendBytes(b, []byte(e.Error))
	}
	return b
}

// UnmarshalBinary reads what AppendBinary wrote. The output values alias
// data: the caller must not change it afterwards.
func (r *Result) UnmarshalBinary(data []byte) error {
	d := binReader{b: data}
	if d.byte() != binaryVersion {
		return errBinaryResult
	}
	*r = Result{}
	r.Seq = d.varint()
	if in := d.bytes(); len(in) > 0 {
		r.Input = json.RawMessage(in[:len(in):len(in)])
	}
	if n := d.count(); n > 0 {
		// The values alias data, which the caller hands over.
		r.Output = make([]json.RawMessage, n)
		for i := range r.Output {
			raw := d.bytes()
			r.Output[i] = raw[:len(raw):len(raw)]
		}
	}
	r.Status = status(d.bytes())
	for _, ss := range []*[]string{&r.Errors, &r.Warnings, &r.Verbose, &r.Information} {
		if n := d.count(); n > 0 {
			*ss = make([]string, n)
			for i := range *ss {
				(*ss)[i] = d.string()
			}
		}
	}
	if n := d.count(); n > 0 {
		r.Progress = make([]Progress, n)
		for i := range r.Progress {
			r.Progress[i].Percent = math.Float64frombits(d.uint64())
			r.Progress[i].Status = d.string()
		}
	}
	if d.byte() == 1 {
		r.Error = &ErrorInfo{Message: d.string(), Stack: d.string()}
	}
	if started := d.varint(); started != 0 {
		r.StartedAt = time.Unix(0, started)
	}
	r.Duration = time.Duration(d.varint())
	r.Runspace = int(d.varint())
	r.Attempts = int(d.varint())
	r.BatchSize = int(d.varint())
	if n := d.count(); n > 0 {
		r.ElementErrors = make([]ElementError, n)
		for i := range r.ElementErrors {
			r.ElementErrors[i] = ElementError{Index: int(d.varint()), Error: d.string()}
		}
	}
	if d.err != nil || d.i != len(d.b) {
		return errBinaryResult
	}
	return nil
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// binReader reads the binary form, remembering the first error.
type binReader struct {
	b   []byte
	i   int
	err error
}

func (d *binReader) fail() { d.err, d.i = errBinaryResult, len(d.b) }

func (d *binReader) byte() byte {
	if d.i >= len(d.b) {
		d.fail()
		return 0
	}
	d.i++
	return d.b[d.i-1]
}

func (d *binReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.i += n
	return v
}

func (d *binReader) varint() int64 {
	v, n := binary.Varint(d.b[d.i:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.i += n
	return v
}

// count reads a length that must fit in what is left.
func (d *binReader) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)-d.i) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *binReader) bytes() []byte {
	n := d.count()
	p := d.b[d.i : d.i+n]
	d.i += n
	return p
}

func (d *binReader) string() string { return string(d.bytes()) }

func (d *binReader) uint64() uint64 {
	if len(d.b)-d.i < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.i:])
	d.i += 8
	return v
}

// status returns the Status named by b, without allocating for the known
// ones.
func status(b []byte) Status {
	for _, s := range [...]Status{Success, Error, Exception, Timeout, Stopped, InvalidInput, MemoryLimit, Abandoned} {
		if string(b) == string(s) {
			return s
		}
	}
	return Status(b)
}
