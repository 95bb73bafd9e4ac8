package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// expected is what a round's input promises: one output per input line,
// and one success claim in the job log per item (or per batch).
type expected struct {
	lines []string // the input; line i is the item with seq i+1
	batch int      // --batch-size, 0 or 1 for none
}

// findings collects what a check found wrong, in words.
type findings []string

func (f *findings) addf(format string, args ...any) {
	*f = append(*f, fmt.Sprintf(format, args...))
}

// inputKey names an input the way `--in auto` reads it: a line that is
// JSON is that value, any other line a string. Outputs name their input by
// the same key.
func inputKey(line string) string {
	if json.Valid([]byte(line)) {
		var b bytes.Buffer
		if json.Compact(&b, []byte(line)) == nil {
			return b.String()
		}
	}
	b, _ := json.Marshal(line)
	return string(b)
}

// rawKey is inputKey for a value already in JSON.
func rawKey(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// itemOutput is one output of item.js: the item and n*n, where n is the
// item if it is a number, else its length.
type itemOutput struct {
	In json.RawMessage `json:"in"`
	X  *float64        `json:"x"`
}

// valid reports whether o is what item.js gives for its input.
func (o itemOutput) valid() bool {
	if o.In == nil || o.X == nil {
		return false
	}
	var v any
	if json.Unmarshal(o.In, &v) != nil {
		return false
	}
	var n float64
	switch v := v.(type) {
	case float64:
		n = v
	case string:
		n = float64(len(v))
	default:
		return false
	}
	return *o.X == n*n
}

// record is what the checks read of an --out records line.
type record struct {
	Seq    int64             `json:"seq"`
	Input  json.RawMessage   `json:"input"`
	Output []json.RawMessage `json:"output"`
	Status string            `json:"status"`
}

// logLine is what the checks read of a job-log line.
type logLine struct {
	Seq    int64  `json:"seq"`
	Hash   string `json:"hash"`
	Status string `json:"status"`
}

// splitLines splits data into lines; a last line without its newline (a
// write cut short) is returned apart.
func splitLines(data []byte) (lines [][]byte, cut []byte) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return lines, data
		}
		lines = append(lines, data[:i])
		data = data[i+1:]
	}
	return lines, nil
}

// tally counts something per input key.
type tally map[string]int

// check compares what a round left behind with what its input promises:
// out is everything the runs appended to stdout (values, or records when
// records is set), joblog the job log they appended to, and reflog the job
// log of one uninterrupted run over the same input, which says what the
// log should claim (its hashes are rsh's business, not this program's).
func check(want expected, out []byte, records bool, joblog, reflog []byte) findings {
	var f findings
	exp := tally{}
	for _, l := range want.lines {
		exp[inputKey(l)]++
	}
	var got tally
	if records {
		got = checkRecords(want, out, &f)
	} else {
		got = checkValues(out, &f)
	}
	claims := checkLog(want, joblog, reflog, &f)

	var lost, claimedLost, dup int
	var lostEx, dupEx []string
	for _, k := range sortedKeys(exp, got) {
		e, g := exp[k], got[k]
		switch {
		case g < e:
			lost += e - g
			claimedLost += min(e-g, max(0, claims[k]-g))
			lostEx = append(lostEx, fmt.Sprintf("%s: %d of %d", k, g, e))
		case g > e:
			dup += g - e
			dupEx = append(dupEx, fmt.Sprintf("%s: %d of %d", k, g, e))
		}
	}
	if lost > 0 {
		f.addf("lost %d outputs, %d of them claimed as done by the job log (%s)", lost, claimedLost, examples(lostEx))
	}
	if dup > 0 {
		f.addf("duplicated %d outputs (%s)", dup, examples(dupEx))
	}
	return f
}

// checkValues counts the outputs of a --out values file per input.
func checkValues(out []byte, f *findings) tally {
	got := tally{}
	lines, cut := splitLines(out)
	var garbled []string
	for _, l := range lines {
		var o itemOutput
		if json.Unmarshal(l, &o) != nil || !o.valid() {
			garbled = append(garbled, string(l))
			continue
		}
		got[rawKey(o.In)]++
	}
	if cut != nil {
		garbled = append(garbled, string(cut)+" (no newline)")
	}
	if len(garbled) > 0 {
		f.addf("%d garbled output lines (%s)", len(garbled), examples(quoteAll(garbled)))
	}
	return got
}

// checkRecords counts the outputs of Success records per input and checks
// that each names its input's position by its seq, once.
func checkRecords(want expected, out []byte, f *findings) tally {
	got := tally{}
	lines, cut := splitLines(out)
	var garbled []string
	var wrongSeq, reusedSeq int
	seen := map[int64]bool{}
	for _, l := range lines {
		var r record
		if json.Unmarshal(l, &r) != nil || r.Input == nil {
			garbled = append(garbled, string(l))
			continue
		}
		if r.Status != "Success" {
			continue // an attempt that failed before a resume: what counts is the one success
		}
		items := []json.RawMessage{r.Input}
		if want.batch > 1 && json.Unmarshal(r.Input, &items) != nil {
			garbled = append(garbled, string(l))
			continue
		}
		if len(r.Output) != len(items) {
			garbled = append(garbled, string(l))
			continue
		}
		for i, it := range items {
			var o itemOutput
			if json.Unmarshal(r.Output[i], &o) != nil || !o.valid() || rawKey(o.In) != rawKey(it) {
				garbled = append(garbled, string(l))
				break
			}
			got[rawKey(it)]++
			pos := r.Seq + int64(i)
			if pos < 1 || pos > int64(len(want.lines)) || inputKey(want.lines[pos-1]) != rawKey(it) {
				wrongSeq++
			} else if seen[pos] {
				reusedSeq++
			}
			seen[pos] = true
		}
	}
	if cut != nil {
		garbled = append(garbled, string(cut)+" (no newline)")
	}
	if len(garbled) > 0 {
		f.addf("%d garbled records (%s)", len(garbled), examples(quoteAll(garbled)))
	}
	if wrongSeq > 0 {
		f.addf("%d successful records carry a seq that is not their input's position", wrongSeq)
	}
	if reusedSeq > 0 {
		f.addf("%d input positions have two successful records", reusedSeq)
	}
	return got
}

// checkLog checks the job log's success claims against the reference log,
// and returns how many successes it claims per input key.
func checkLog(want expected, joblog, reflog []byte, f *findings) tally {
	// What each reference line stands for: the hash of an item, or of a
	// batch cut from the whole input (a resumed run cuts the same ones).
	keysOf := map[string][]string{} // hash → input keys
	refClaims := map[string]int{}   // hash → success lines
	refSeq := tally{}               // "seq hash" of each success line
	refLines, _ := splitLines(reflog)
	for _, l := range refLines {
		var e logLine
		if json.Unmarshal(l, &e) != nil || e.Status != "Success" {
			continue
		}
		n := max(want.batch, 1)
		first := int(e.Seq) - 1
		if first < 0 || first >= len(want.lines) {
			continue
		}
		var keys []string
		for _, line := range want.lines[first:min(first+n, len(want.lines))] {
			keys = append(keys, inputKey(line))
		}
		keysOf[e.Hash] = keys
		refClaims[e.Hash]++
		refSeq[fmt.Sprint(e.Seq, " ", e.Hash)]++
	}

	claims := tally{}
	gotClaims := map[string]int{}
	gotSeq := tally{}
	seqHash := map[int64]string{}
	var garbled []string
	var wrongSeq, reusedSeq, unknown int
	lines, cut := splitLines(joblog)
	for _, l := range lines {
		if bytes.HasPrefix(l, []byte(`{"outputEnd":`)) {
			continue // where the claimed output ends, not an item
		}
		var e logLine
		if json.Unmarshal(l, &e) != nil || e.Hash == "" {
			garbled = append(garbled, string(l))
			continue
		}
		if h, ok := seqHash[e.Seq]; ok && h != e.Hash {
			reusedSeq++
		}
		seqHash[e.Seq] = e.Hash
		if e.Status != "Success" {
			continue
		}
		keys, ok := keysOf[e.Hash]
		if !ok {
			unknown++
			continue
		}
		gotClaims[e.Hash]++
		for _, k := range keys {
			claims[k]++
		}
		gotSeq[fmt.Sprint(e.Seq, " ", e.Hash)]++
	}
	if cut != nil {
		garbled = append(garbled, string(cut)+" (no newline)")
	}

	for pair, n := range gotSeq {
		wrongSeq += max(0, n-refSeq[pair])
	}
	var missing, twice int
	for h, n := range refClaims {
		g := gotClaims[h]
		missing += max(0, n-g)
		twice += max(0, g-n)
	}
	if missing > 0 {
		f.addf("job log: %d items (or batches) have no success line", missing)
	}
	if twice > 0 {
		f.addf("job log: %d success lines too many (an item claimed twice)", twice)
	}
	if unknown > 0 {
		f.addf("job log: %d success lines for inputs the reference run does not know", unknown)
	}
	if wrongSeq > 0 {
		f.addf("job log: %d success lines carry a seq that is not their input's position (or repeat one)", wrongSeq)
	}
	if reusedSeq > 0 {
		f.addf("job log: %d lines reuse a seq logged before for another input", reusedSeq)
	}
	if len(garbled) > 0 {
		f.addf("job log: %d garbled lines (%s)", len(garbled), examples(quoteAll(garbled)))
	}
	return claims
}

// sortedKeys returns the keys of both tallies, sorted.
func sortedKeys(a, b tally) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// maxExamples is how many examples a finding quotes: enough to see a
// pattern, few enough to keep a round on one line.
const maxExamples = 3

// examples joins the first few of ex, saying how many more there are.
func examples(ex []string) string {
	if len(ex) <= maxExamples {
		return "e.g. " + strings.Join(ex, "; ")
	}
	return fmt.Sprintf("e.g. %s; and %d more", strings.Join(ex[:maxExamples], "; "), len(ex)-maxExamples)
}

// quoteAll quotes each string, cut to a readable length.
func quoteAll(ss []string) []string {
	const keep = 80
	q := make([]string, len(ss))
	for i, s := range ss {
		if len(s) > keep {
			s = s[:keep] + "…"
		}
		q[i] = fmt.Sprintf("%q", s)
	}
	return q
}
