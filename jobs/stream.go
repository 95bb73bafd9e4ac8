package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Input appends r, the job's items as input lines (see AppendItemLine), to
// the input of a job started with Spec.Input, as it arrives: the job reads
// them as they come. When r ends the input is complete; when r fails (the
// client went away), the job runs over the whole lines that arrived and
// then fails, saying so. It returns the bytes taken.
func (m *Manager) Input(ctx context.Context, name string, r io.Reader) (int64, error) {
	j, err := m.get(name)
	if err != nil {
		return 0, err
	}
	return j.receiveInput(ctxReader{ctx, r})
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// streamChunk is how much of a job's results or log is read and written
// at a time.
const streamChunk = 64 << 10

// logPoll is how often a followed log is looked at for more: the job
// process appends to it without telling the daemon.
const logPoll = 200 * time.Millisecond

// Results writes the job's results (records, one per line, as `rsh run
// --out records` writes them) from byte offset from of its results file to
// the end of what the job log claims; with follow it goes on as results
// arrive until the job has finished and everything is written, or ctx is
// done. Receiving starts at Info.ReceivedBytes and confirms what the client
// got with Ack. It returns the offset it stopped at.
func (m *Manager) Results(ctx context.Context, name string, from int64, follow bool, w io.Writer) (int64, error) {
	j, err := m.get(name)
	if err != nil {
		return from, err
	}
	if from < 0 {
		return from, invalidf("results from byte %d", from)
	}
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, streamChunk)
	for {
		info, changed := j.watch()
		if from < info.Committed {
			if f == nil {
				if f, err = os.Open(filepath.Join(j.dir, ResultsFile)); err != nil {
					return from, err
				}
			}
			for from < info.Committed {
				n, err := f.ReadAt(buf[:min(int64(len(buf)), info.Committed-from)], from)
				if n > 0 {
					if _, werr := w.Write(buf[:n]); werr != nil {
						return from, werr
					}
					from += int64(n)
				}
				if err != nil && !errors.Is(err, io.EOF) {
					return from, err
				}
				if n == 0 {
					return from, fmt.Errorf("the results of %s end before the %d bytes recorded", name, info.Committed)
				}
			}
			if fl, ok := w.(interface{ Flush() }); ok {
				fl.Flush()
			}
			continue
		}
		if !follow || info.State.Finished() || j.isRemoved() {
			return from, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return from, ctx.Err()
		}
	}
}

// Ack records that the client got the job's results in [from, to): from
// must be where receiving stands (Info.ReceivedBytes), to the end of a
// whole record within what can be received. The cursor moves only once
// it is saved; a failed save leaves the results to receive again.
func (m *Manager) Ack(name string, from, to int64) (Info, error) {
	j, err := m.get(name)
	if err != nil {
		return Info{}, err
	}
	j.saveMu.Lock()
	defer j.saveMu.Unlock()
	j.mu.Lock()
	info := j.info
	j.mu.Unlock()
	switch {
	case from != info.ReceivedBytes:
		return j.snapshot(), fmt.Errorf("%w: results of %s from byte %d: receiving stands at byte %d (another receive took them meanwhile)", ErrConflict, name, from, info.ReceivedBytes)
	case to < from || to > info.Committed:
		return j.snapshot(), invalidf("results of %s up to byte %d: only %d bytes can be received", name, to, info.Committed)
	case to == from:
		return j.snapshot(), nil
	}
	path := filepath.Join(j.dir, ResultsFile)
	lines, err := countLinesIn(path, from, to)
	if err != nil {
		return j.snapshot(), err
	}
	if !endsLine(path, to) {
		return j.snapshot(), invalidf("results of %s up to byte %d: not the end of a record", name, to)
	}
	info.Received += lines
	info.ReceivedBytes = to
	if err := saveInfo(j.dir, info); err != nil {
		return j.snapshot(), err
	}
	j.mu.Lock()
	j.info.Received, j.info.ReceivedBytes = info.Received, info.ReceivedBytes
	j.notifyLocked()
	j.mu.Unlock()
	return j.snapshot(), nil
}

// endsLine reports whether the byte before offset at in path is a newline.
func endsLine(path string, at int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, at-1)
	return err == nil && b[0] == '\n'
}

func (j *job) isRemoved() bool {
	_, err := os.Stat(j.dir)
	return err != nil
}

// Log writes the job's messages: what its process wrote to stderr (init
// output, warnings, errors) and the daemon's notes about it. With follow it
// goes on as they are written until the job has finished, or ctx is done.
func (m *Manager) Log(ctx context.Context, name string, follow bool, w io.Writer) error {
	j, err := m.get(name)
	if err != nil {
		return err
	}
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, streamChunk)
	for {
		info, changed := j.watch()
		if f == nil {
			f, err = os.Open(filepath.Join(j.dir, LogFile))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		for f != nil {
			n, err := f.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if err != nil || n == 0 {
				break
			}
		}
		if fl, ok := w.(interface{ Flush() }); ok {
			fl.Flush()
		}
		if !follow || info.State.Finished() || j.isRemoved() {
			return nil
		}
		select {
		case <-changed:
		case <-time.After(logPoll):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
