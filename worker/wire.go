package worker

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// The pipe protocol. Both directions carry frames: a 4-byte big-endian
// length (of what follows), a type byte, then the payload. The parent
// writes to the worker's stdin, the worker to its stdout; its stderr is
// kept only to explain a death.
const (
	// parent → worker
	frameSpec   = 'S' // JSON spec, first and once
	frameBatch  = 'B' // slot, then items
	frameCancel = 'C' // slot: interrupt its batch
	frameDrain  = 'N' // slot: start no more of its batch's items
	// worker → parent
	frameReady  = 'R' // every slot's runspace initialised
	frameInit   = 'I' // the script failed to initialise: message
	frameResult = 'r' // slot, index, result (vm.Result's binary form)
	frameDone   = 'D' // slot: its batch is over
	frameRetire = 'A' // a runspace was abandoned: start no more work here
)

// maxFrame bounds a frame, so that a corrupt length cannot make the reader
// allocate without bound. A result's output is capped well below it by
// the runspace's own per-item limits.
const maxFrame = 1 << 30

// Item kinds in a batch frame.
const (
	itemJSON   = 'j'
	itemString = 's'
)

// spec is what a worker process needs to build its runspaces: the first
// frame it reads.
type spec struct {
	Name      string
	Dir       string
	Source    string
	State     vm.InitialState
	Runner    pool.RunnerConfig
	Slots     int
	MaxMemory int64
}

func appendFrame(b []byte, typ byte, payload ...[]byte) []byte {
	n := 1
	for _, p := range payload {
		n += len(p)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, typ)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

// beginFrame starts a frame whose payload the caller appends; endFrame
// fills in its length.
func beginFrame(b []byte, typ byte) ([]byte, int) {
	at := len(b)
	b = append(b, 0, 0, 0, 0, typ)
	return b, at
}

func endFrame(b []byte, at int) []byte {
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// readFrame reads one frame into memory of its own (what is decoded from
// it may alias it).
func readFrame(r *bufio.Reader) (typ byte, payload []byte, err error) {
	var hdr [4]byte
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxFrame {
		return 0, nil, fmt.Errorf("worker: bad frame length %d", n)
	}
	buf := make([]byte, n)
	if _, err = io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return buf[0], buf[1:], nil
}

// appendItem encodes an item's value: JSON, or a string as it is.
func appendItem(b []byte, it *pool.Item) []byte {
	switch v := it.Value.(type) {
	case string:
		b = append(b, itemString)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	case json.RawMessage:
		b = append(b, itemJSON)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	case int64:
		// An integer line (the reader passes it parsed): its digits are
		// its JSON, without a trip through encoding/json.
		var digits [20]byte
		n := strconv.AppendInt(digits[:0], v, 10)
		b = append(b, itemJSON)
		b = binary.AppendUvarint(b, uint64(len(n)))
		return append(b, n...)
	}
	raw, err := json.Marshal(it.Value)
	if err != nil {
		raw = []byte("null")
	}
	b = append(b, itemJSON)
	b = binary.AppendUvarint(b, uint64(len(raw)))
	return append(b, raw...)
}

var errShortFrame = errors.New("worker: short frame")

// readItems decodes the items of a batch frame; JSON values alias p.
func readItems(p []byte) ([]pool.Item, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)) {
		return nil, errShortFrame
	}
	p = p[k:]
	items := make([]pool.Item, n)
	for i := range items {
		if len(p) < 1 {
			return nil, errShortFrame
		}
		kind := p[0]
		l, k := binary.Uvarint(p[1:])
		if k <= 0 || uint64(len(p)-1-k) < l {
			return nil, errShortFrame
		}
		data := p[1+k : 1+k+int(l)]
		p = p[1+k+int(l):]
		switch kind {
		case itemString:
			items[i].Value = string(data)
		case itemJSON:
			items[i].Value = json.RawMessage(data[:len(data):len(data)])
		default:
			return nil, fmt.Errorf("worker: unknown item kind %q", kind)
		}
	}
	return items, nil
}

func readUvarint(p []byte) (uint64, []byte, error) {
	v, k := binary.Uvarint(p)
	if k <= 0 {
		return 0, nil, errShortFrame
	}
	return v, p[k:], nil
}
