package cli

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/runspaces/rsh/vm"
)

// The job log (--joblog) has one JSON line per finished item:
//
//	{"seq":7,"hash":"3f1c…","status":"Success","attempts":1,"durationMs":12.4,"startedAt":"…"}
//
// hash identifies the item by its input (a SHA-256 of the input as JSON,
// 128 bits in hex), so --resume matches items by what they are, not where
// they stand: reordered or extended input resumes correctly. Each line is
// written with a single write as the item finishes, so a crash (even
// kill -9) loses at most the items that were running.

// inputHash is the job log's identity of an input.
func inputHash(input json.RawMessage) string {
	sum := sha256.Sum256(input)
	return hex.EncodeToString(sum[:16])
}

type joblog struct {
	f   *os.File
	buf []byte
}

func openJoblog(path string) (*joblog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--joblog %s: %w", path, err)
	}
	return &joblog{f: f}, nil
}

// write appends r's line; it returns the write error, if any.
func (j *joblog) write(r *vm.Result) error {
	b := append(j.buf[:0], `{"seq":`...)
	b = strconv.AppendInt(b, r.Seq, 10)
	b = append(b, `,"hash":"`...)
	b = append(b, inputHash(r.Input)...)
	b = append(b, `","status":"`...)
	b = append(b, r.Status...)
	b = append(b, `","attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = append(b, `,"durationMs":`...)
	b = strconv.AppendFloat(b, float64(r.Duration.Microseconds())/1000, 'f', -1, 64)
	b = append(b, `,"startedAt":"`...)
	b = r.StartedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, "\"}\n"...)
	j.buf = b
	_, err := j.f.Write(b)
	return err
}

func (j *joblog) close() error { return j.f.Close() }

// joblogEntry is what resume needs from a line.
type joblogEntry struct {
	Hash   string    `json:"hash"`
	Status vm.Status `json:"status"`
}

// readJoblog returns the last status logged for each input hash. A missing
// file is an empty log; a line that does not parse (the last one, cut short
// by a crash) is skipped.
func readJoblog(path string) (map[string]vm.Status, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]vm.Status{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--joblog %s: %w", path, err)
	}
	defer f.Close()
	last := map[string]vm.Status{}
	br := bufio.NewReaderSize(f, readBufferSize)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			var e joblogEntry
			if json.Unmarshal(line, &e) == nil && e.Hash != "" {
				last[e.Hash] = e.Status
			}
		}
		if errors.Is(err, io.EOF) {
			return last, nil
		}
		if err != nil {
			return nil, fmt.Errorf("--joblog %s: %w", path, err)
		}
	}
}
