package cli

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
)

// The job log (--joblog) has one JSON line per finished item:
//
//	{"seq":7,"hash":"3f1c…","status":"Success","attempts":1,"durationMs":12.4,"startedAt":"…"}
//
// seq is the item's position in the input (kept by --resume, so a seq
// always names the same input as long as the input is the same). hash
// identifies the item by its input (a SHA-256 of the input as JSON, 128
// bits in hex), so --resume matches items by what they are, not where they
// stand: reordered or extended input resumes correctly.
//
// Lines are written by output, never before the output of the items they
// name has been written to stdout, and a group of them at once, with one
// write: a crash (even kill -9) can lose output the log does not claim, but
// the log never claims output that was lost.

// hashLen is how many bytes of an input's SHA-256 the job log keeps: 128
// bits make an accidental collision between two inputs negligible even
// over billions of items, at half the width of the whole sum.
const hashLen = 16

// inputKey is an input's identity in the job log: the first hashLen bytes
// of the SHA-256 of its JSON.
type inputKey [hashLen]byte

func inputHash(input json.RawMessage) inputKey {
	sum := sha256.Sum256(input)
	return inputKey(sum[:hashLen])
}

// joblog is the job log file, open for appending.
type joblog struct {
	f    *os.File
	path string
}

// openJoblog opens (or creates) the job log for appending. A last line cut
// short by a crash is ended first, so that the next line written starts a
// line of its own instead of completing the broken one.
func openJoblog(path string) (*joblog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--joblog %s: %w", path, err)
	}
	if err := endLastLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--joblog %s: %w", path, err)
	}
	return &joblog{f: f, path: path}, nil
}

// endLastLine writes a newline to f if it is not empty and does not end
// with one.
func endLastLine(f *os.File) error {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, fi.Size()-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	_, err = f.Write([]byte{'\n'})
	return err
}

// fileID names a file across runs: its device and inode.
type fileID struct{ dev, ino uint64 }

// regularFileID returns f's identity if it is a regular file.
func regularFileID(f *os.File) (fileID, bool) {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return fileID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}, true
}

// outputEndPrefix starts the job log's output-end lines:
//
//	{"outputEnd":12345,"dev":64769,"ino":131}
//
// written after each group of item lines when stdout is a regular file:
// the size the output file had once the output of every item claimed so
// far was written. Anything past it was written by a run that was killed
// before it could claim it.
const outputEndPrefix = `{"outputEnd":`

func appendOutputEnd(b []byte, id fileID, end int64) []byte {
	b = append(b, outputEndPrefix...)
	b = strconv.AppendInt(b, end, 10)
	b = append(b, `,"dev":`...)
	b = strconv.AppendUint(b, id.dev, 10)
	b = append(b, `,"ino":`...)
	b = strconv.AppendUint(b, id.ino, 10)
	return append(b, "}\n"...)
}

// parseOutputEnd reads an output-end line.
func parseOutputEnd(line []byte) (fileID, int64, bool) {
	var v struct {
		End int64  `json:"outputEnd"`
		Dev uint64 `json:"dev"`
		Ino uint64 `json:"ino"`
	}
	if !bytes.HasPrefix(line, []byte(outputEndPrefix)) || json.Unmarshal(line, &v) != nil {
		return fileID{}, 0, false
	}
	return fileID{v.Dev, v.Ino}, v.End, true
}

// dropUnclaimed removes from f, the regular file a resumed run appends
// its output to, what a killed run wrote to it after the last output the
// job log claimed (ends, by file), so that no item's output is there twice.
// Without an output-end line for f it removes only an unfinished last line
// (dropTornLine). It returns how many bytes were removed.
func dropUnclaimed(f *os.File, ends map[fileID]int64) (int64, error) {
	id, ok := regularFileID(f)
	if !ok {
		return 0, nil
	}
	end, known := ends[id]
	if !known {
		return dropTornLine(f)
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() <= end {
		return 0, err // nothing unclaimed, or the file was cut since
	}
	return fi.Size() - end, f.Truncate(end)
}

// dropTornLine removes from f, a regular file that a resumed run appends
// its output to, a last line that a killed run left unfinished (a write
// of many lines can stop part way when the process is killed). That line
// is not an output anyone has: the job log never claimed its item, which
// runs again. It returns how many bytes were removed.
func dropTornLine(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return 0, err
	}
	// f is usually open for appending only (>>): read through a second,
	// read-only open of the same file.
	r, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return 0, err
	}
	defer r.Close()
	const block = 64 << 10
	buf := make([]byte, block)
	end := fi.Size()
	for at := end; at > 0; {
		n := min(int64(block), at)
		at -= n
		if _, err := r.ReadAt(buf[:n], at); err != nil {
			return 0, err
		}
		if at+n == end && buf[n-1] == '\n' {
			return 0, nil // the last line is whole
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			keep := at + int64(i) + 1
			return end - keep, f.Truncate(keep)
		}
	}
	return end, f.Truncate(0)
}

// write appends lines (whole lines, each ending in a newline) with a
// single write.
func (j *joblog) write(lines []byte) error {
	_, err := j.f.Write(lines)
	return err
}

// close closes the file; closing it again does nothing.
func (j *joblog) close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// appendJoblogLine appends r's job-log line to b; stamps formats the
// start times.
func appendJoblogLine(b []byte, r *vm.Result, stamps *timeStamps) []byte {
	key := inputHash(r.Input)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, r.Seq, 10)
	b = append(b, `,"hash":"`...)
	b = hex.AppendEncode(b, key[:])
	b = append(b, `","status":"`...)
	b = append(b, r.Status...)
	b = append(b, `","attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = append(b, `,"durationMs":`...)
	b = appendMillis(b, r.Duration.Microseconds())
	b = append(b, `,"startedAt":"`...)
	b = stamps.append(b, r.StartedAt)
	return append(b, "\"}\n"...)
}

// appendMillis appends us microseconds as milliseconds (12.4, 0.001, 3),
// the way strconv.AppendFloat(b, float64(us)/1000, 'f', -1, 64) does for
// anything under 70 years, without its cost.
func appendMillis(b []byte, us int64) []byte {
	if us < 0 {
		b, us = append(b, '-'), -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return b
	}
	digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}

// timeStamps formats times as time.RFC3339Nano does, reusing the date and
// time of day while the second and the location stay the same: items end
// thousands of times a second, and formatting the whole time was a third of
// what a job-log line cost. The zero value is ready to use.
type timeStamps struct {
	sec  int64
	loc  *time.Location
	head []byte // "2006-01-02T15:04:05" of sec in loc
	zone []byte // "Z" or "-07:00"
}

// stampHeadLen is the length of the date and time of day in RFC 3339.
const stampHeadLen = len("2006-01-02T15:04:05")

func (s *timeStamps) append(b []byte, t time.Time) []byte {
	if s.head == nil || t.Unix() != s.sec || t.Location() != s.loc {
		whole := t.Add(-time.Duration(t.Nanosecond()))
		f := whole.AppendFormat(nil, time.RFC3339)
		if len(f) <= stampHeadLen || f[4] != '-' || f[10] != 'T' || f[16] != ':' {
			// A year outside 0-9999: not worth a cache.
			s.head = nil
			return t.AppendFormat(b, time.RFC3339Nano)
		}
		s.sec, s.loc = t.Unix(), t.Location()
		s.head, s.zone = f[:stampHeadLen], f[stampHeadLen:]
	}
	b = append(b, s.head...)
	if ns := t.Nanosecond(); ns != 0 {
		var digits [9]byte
		for i := 8; i >= 0; i-- {
			digits[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 9
		for digits[n-1] == '0' {
			n--
		}
		b = append(b, '.')
		b = append(b, digits[:n]...)
	}
	return append(b, s.zone...)
}

// resumeLog is what --resume and --resume-failed need from a job log: for
// each input, the positions (seqs) where it succeeded, a bit per position
// that succeeded, and (for --resume-failed) how many of each input's
// occurrences failed without succeeding later. An input logged once
// costs one map entry; a repeated input, one more small record per run of
// consecutive positions.
//
// An input that appears k times in the input is k items. A success is
// matched with the occurrence at its own seq when the input still has that
// input there (the same input resumed: every item keeps its seq, and the
// log never names one position twice). A success whose position was passed
// without a match, or one further on when the log has a success at this
// occurrence's position for another input (the input was edited or
// reordered), stands for this occurrence instead. A position without a
// success in the log (failed, or not done) runs again. So a resumed run
// runs an input until it has k successes in all.
type resumeLog struct {
	// once holds the seq of each input that succeeded once (most
	// inputs), repeated the seqs of those that succeeded more often.
	once     map[inputKey]uint32
	repeated map[inputKey]*doneSeqs
	// succeeded has a bit for each seq logged as a success, to tell a
	// position whose input changed from one that was not done.
	succeeded []uint64
	lines     int // lines read
	// failedLines is how many of them are not successes.
	failedLines int
	failed      map[inputKey]uint32 // --resume-failed: failed occurrences to run again
	// outputEnds is the last output-end line of each output file.
	outputEnds map[fileID]int64
}

// doneSeqs are the seqs of a repeated input's logged successes, as
// sorted runs of consecutive positions (a whole file of one line, all
// done, is one run). A seq of 0 stands for a position not known (past
// what 32 bits hold).
type doneSeqs struct {
	raw   []uint32 // while the log is read
	runs  []seqRun // after settle
	i     int      // the run being matched
	from  uint32   // its first seq not yet matched or passed (0: its lo)
	float uint32   // successes whose position was passed without a match
}

type seqRun struct{ lo, hi uint32 }

func toSeq32(seq int64) uint32 {
	if seq > 0 && seq <= math.MaxUint32 {
		return uint32(seq)
	}
	return 0
}

// settle turns the seqs read into sorted runs; a position logged twice is
// one success.
func (d *doneSeqs) settle() {
	slices.Sort(d.raw)
	for _, s := range slices.Compact(d.raw) {
		if n := len(d.runs); n > 0 && d.runs[n-1].hi+1 == s && s != 0 {
			d.runs[n-1].hi = s
		} else {
			d.runs = append(d.runs, seqRun{s, s})
		}
	}
	d.raw = nil
	d.runs = slices.Clip(d.runs)
}

// take reports whether the occurrence of the input at position pos
// (visited in increasing order) is done, using up the success that says
// so: the one logged at pos, else one whose position was passed.
func (d *doneSeqs) take(pos int64, steal bool) bool {
	for d.i < len(d.runs) {
		run := d.runs[d.i]
		lo := max(run.lo, d.from)
		if int64(run.hi) < pos {
			d.float += run.hi - lo + 1 // all passed
			d.i, d.from = d.i+1, 0
			continue
		}
		if int64(lo) < pos {
			d.float += uint32(pos) - lo // partly passed
			lo = uint32(pos)
		}
		if int64(lo) == pos {
			if lo == run.hi {
				d.i, d.from = d.i+1, 0
			} else {
				d.from = lo + 1
			}
			return true
		}
		d.from = lo
		break
	}
	if d.float > 0 {
		d.float--
		return true
	}
	if steal && d.i < len(d.runs) {
		// The input changed here: a success logged further on stands
		// for this occurrence; the last one, least likely to match.
		last := &d.runs[len(d.runs)-1]
		if last.hi > last.lo && (len(d.runs)-1 != d.i || last.hi > d.from) {
			last.hi--
		} else {
			d.runs = d.runs[:len(d.runs)-1]
		}
		return true
	}
	return false
}

// failedAt names a failed item in the log by its input and its position;
// a later success at the same position means it is failed no longer.
type failedAt struct {
	key inputKey
	seq int64
}

// addSuccess records a success of the input key at seq.
func (l *resumeLog) addSuccess(key inputKey, seq int64) {
	if d := l.repeated[key]; d != nil {
		d.raw = append(d.raw, toSeq32(seq))
		return
	}
	if first, ok := l.once[key]; ok {
		delete(l.once, key)
		l.repeated[key] = &doneSeqs{raw: []uint32{first, toSeq32(seq)}}
		return
	}
	l.once[key] = toSeq32(seq)
}

func (l *resumeLog) has(key inputKey) bool {
	_, once := l.once[key]
	return once || l.repeated[key] != nil
}

// takeSuccess reports whether the occurrence of key at pos is done, and
// uses up the success that says so: the one logged at pos, else one whose
// position was passed without a match (the input was edited).
func (l *resumeLog) takeSuccess(key inputKey, pos int64) bool {
	if seq, ok := l.once[key]; ok {
		if int64(seq) <= pos || l.changedAt(pos) {
			delete(l.once, key)
			return true
		}
		return false
	}
	if d := l.repeated[key]; d != nil {
		return d.take(pos, l.changedAt(pos))
	}
	return false
}

// seqSlack bounds how far past the number of lines read a success's seq
// may be and still get its bit (a bit per position): batches put seqs
// ahead of lines, but a corrupt log's huge seq must not make rsh allocate
// without bound (64M positions are 8 MiB of bits). Past it, resume
// matches that success by input alone.
const seqSlack = 1 << 26

// noteSuccessAt remembers that the log has a success at seq.
func (l *resumeLog) noteSuccessAt(seq int64) {
	if seq <= 0 || seq > int64(l.lines)+seqSlack {
		return
	}
	if words := int(seq/64) + 1; words > len(l.succeeded) {
		l.succeeded = append(l.succeeded, make([]uint64, words-len(l.succeeded))...)
	}
	l.succeeded[seq/64] |= 1 << (seq % 64)
}

// changedAt reports whether the log has a success at pos. Asked for an
// occurrence of an input that did not succeed at pos itself, it means the
// input there has changed (edited or reordered) since: a success of this
// input logged further on may stand for this occurrence. (Without a
// success at pos, pos was not done, or failed: the occurrence runs.)
func (l *resumeLog) changedAt(pos int64) bool {
	if pos <= 0 || pos/64 >= int64(len(l.succeeded)) {
		return false
	}
	return l.succeeded[pos/64]&(1<<(pos%64)) != 0
}

// readJoblog reads the job log for a resumed run; withFailed also counts
// the failed occurrences (--resume-failed). A missing file is an empty
// log; a line that does not parse (the last one, cut short by a crash) is
// skipped.
func readJoblog(path string, withFailed bool) (*resumeLog, error) {
	return readJoblogWith(path, withFailed, false)
}

// readJoblogWith is readJoblog; with anyStatus every logged item counts as
// done, whatever its status, so that a resumed run gives each item exactly
// one result in all (a job resumed after its daemon died: its failures
// were results too, and are on file).
func readJoblogWith(path string, withFailed, anyStatus bool) (*resumeLog, error) {
	l := &resumeLog{once: map[inputKey]uint32{}, repeated: map[inputKey]*doneSeqs{}}
	if withFailed {
		l.failed = map[inputKey]uint32{}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--joblog %s: %w", path, err)
	}
	defer f.Close()
	var failing map[failedAt]struct{}
	if withFailed {
		failing = map[failedAt]struct{}{}
	}
	br := bufio.NewReaderSize(f, readBufferSize)
	var long []byte // a line longer than the buffer: not rsh's, but read whole
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			continue
		}
		if long != nil {
			line, long = append(long, line...), nil
		}
		if id, end, ok := parseOutputEnd(line); ok {
			if l.outputEnds == nil {
				l.outputEnds = map[fileID]int64{}
			}
			l.outputEnds[id] = end
		} else if e, ok := parseJoblogLine(line); ok {
			l.lines++
			if !e.success {
				l.failedLines++
			}
			switch {
			case e.success || anyStatus:
				l.noteSuccessAt(e.seq)
				l.addSuccess(e.key, e.seq)
				if failing != nil {
					delete(failing, failedAt{e.key, e.seq})
				}
			case failing != nil:
				failing[failedAt{e.key, e.seq}] = struct{}{}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("--joblog %s: %w", path, err)
		}
	}
	for _, d := range l.repeated {
		d.settle()
	}
	for at := range failing {
		l.failed[at.key]++
	}
	return l, nil
}

// joblogEntry is what resume needs from a line.
type joblogEntry struct {
	key     inputKey
	seq     int64
	success bool
}

// joblogPrefix, joblogHash and joblogStatus are the fixed parts of the
// lines rsh writes, in the order it writes them.
const (
	joblogPrefix = `{"seq":`
	joblogHash   = `,"hash":"`
	joblogStatus = `","status":"`
)

// cutPrefix is bytes.CutPrefix with a string prefix.
func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

// parseJoblogLine reads a job-log line. Lines as rsh writes them are read
// by position, without a JSON decoder (a resumed run may read millions);
// anything else (a line edited by hand) is decoded as JSON. A line must be
// whole, up to its closing brace.
func parseJoblogLine(line []byte) (joblogEntry, bool) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) == 0 || line[len(line)-1] != '}' {
		return joblogEntry{}, false
	}
	if e, ok := parseJoblogFast(line); ok {
		return e, true
	}
	var v struct {
		Seq    int64     `json:"seq"`
		Hash   string    `json:"hash"`
		Status vm.Status `json:"status"`
	}
	if json.Unmarshal(line, &v) != nil || hex.DecodedLen(len(v.Hash)) != hashLen {
		return joblogEntry{}, false
	}
	e := joblogEntry{seq: v.Seq, success: v.Status == vm.Success}
	if _, err := hex.Decode(e.key[:], []byte(v.Hash)); err != nil {
		return joblogEntry{}, false
	}
	return e, true
}

// maxSeqDigits is the longest seq parseJoblogFast reads: 18 digits cannot
// overflow an int64.
const maxSeqDigits = 18

func parseJoblogFast(line []byte) (joblogEntry, bool) {
	var e joblogEntry
	rest, ok := cutPrefix(line, joblogPrefix)
	if !ok {
		return e, false
	}
	i, seq := 0, int64(0)
	for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9'; i++ {
		seq = seq*10 + int64(rest[i]-'0')
	}
	if i == 0 || i > maxSeqDigits {
		return e, false
	}
	if rest, ok = cutPrefix(rest[i:], joblogHash); !ok || len(rest) < 2*hashLen {
		return e, false
	}
	if _, err := hex.Decode(e.key[:], rest[:2*hashLen]); err != nil {
		return e, false
	}
	if rest, ok = cutPrefix(rest[2*hashLen:], joblogStatus); !ok {
		return e, false
	}
	status, _, ok := bytes.Cut(rest, []byte{'"'})
	if !ok {
		return e, false
	}
	e.seq, e.success = seq, string(status) == string(vm.Success)
	return e, true
}

// filter drops the items the job log says are done and numbers the others
// with their position in the input (counting the dropped ones), so that a
// resumed run reports each item under the seq an uninterrupted run would
// have given it. An item that has a seq already (a shard's) keeps it, and
// the items after it are numbered on from there. With onlyFailed false (--resume) it drops the occurrences
// that succeeded; with onlyFailed true (--resume-failed) it keeps only the
// occurrences that failed and never succeeded. skipped counts the input
// records dropped.
func (l *resumeLog) filter(seq iter.Seq[pool.Item], onlyFailed bool, skipped *atomic.Int64) iter.Seq[pool.Item] {
	return func(yield func(pool.Item) bool) {
		var pos int64 // input records before the item
		for it := range seq {
			records := int64(max(it.Count, 1))
			if it.Seq > 0 {
				pos = it.Seq - 1 // numbered already (--shard): its place in the whole input
			}
			it.Seq = pos + 1
			pos += records
			if !l.take(it.JSON(), it.Seq, onlyFailed) {
				skipped.Add(records)
				continue
			}
			if !yield(it) {
				return
			}
		}
	}
}

// take reports whether an occurrence of the input raw is to run, and
// counts it against the log.
func (l *resumeLog) take(raw json.RawMessage, pos int64, onlyFailed bool) bool {
	key := inputHash(raw)
	if !l.has(key) && l.failed[key] == 0 && !json.Valid(raw) {
		// An input that is not JSON is logged as InvalidInput with its
		// text as a JSON string.
		key = inputHash(vm.JSONString(string(raw)))
	}
	if l.takeSuccess(key, pos) {
		return false
	}
	if !onlyFailed {
		return true
	}
	if n := l.failed[key]; n > 0 {
		l.failed[key] = n - 1
		return true
	}
	return false
}
