package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// jobExpect is what a daemon round's job promises: one record per item
// that reached the job, in the results file, with the item as its input
// and, when it succeeded, as its output.
type jobExpect struct {
	lines   []string // the items sent, in order: line i is the item with seq i+1
	arrived int      // how many of them reached the job (a prefix of lines)
	batch   int      // --batch-size, 0 or 1 for none
	failMod int      // items whose n is a multiple of it fail by design; 0: none
	repeat  int      // each success gives its item this many times (params.repeat); 0 or 1: once
	partial bool     // the job failed part way: items may have no record
}

// failsByDesign reports whether the item named by key (its JSON) fails at
// every attempt under jobitem.js with params.fail = mod.
func failsByDesign(key string, mod int) bool {
	if mod <= 0 {
		return false
	}
	var v any
	if json.Unmarshal([]byte(key), &v) != nil {
		return false
	}
	var n float64
	switch v := v.(type) {
	case float64:
		n = v
	case string:
		n = float64(len([]rune(v)))
	case map[string]any:
		f, ok := v["n"].(float64)
		if !ok {
			return false
		}
		n = f
	default:
		return false
	}
	return n == float64(int64(n)) && int64(n)%int64(mod) == 0
}

// jobRecord is what the checks read of a record of a job's results.
type jobRecord struct {
	Seq    int64             `json:"seq"`
	Input  json.RawMessage   `json:"input"`
	Output []json.RawMessage `json:"output"`
	Status string            `json:"status"`
}

// seen is one position's record, as the results file has it.
type seen struct {
	status string
	line   int // the record's line in its file, from 1
}

// resultsSummary is what checkJobResults found in a results file.
type resultsSummary struct {
	records int            // whole records (lines): items, or batches
	failed  int            // records whose status is not Success
	byPos   map[int64]seen // the record of each input position
}

// itemsOf returns the items a record holds: its input, or with batches
// the elements of it. A batch record whose input is no array is taken as
// one item (a job whose input is empty runs once, with null).
func itemsOf(r jobRecord, batch int) ([]json.RawMessage, bool) {
	if batch <= 1 || !bytes.HasPrefix(bytes.TrimSpace(r.Input), []byte("[")) {
		return []json.RawMessage{r.Input}, true
	}
	var items []json.RawMessage
	if json.Unmarshal(r.Input, &items) != nil || len(items) == 0 {
		return nil, false
	}
	return items, true
}

// checkJobResults checks the committed part of a job's results file:
// every item that reached the job has exactly one record, under the seq of
// its position, with its own input, the status jobitem.js gives it and,
// for a success, itself as output; nothing else is there.
func checkJobResults(want jobExpect, data []byte) (resultsSummary, findings) {
	var f findings
	sum := resultsSummary{byPos: map[int64]seen{}}
	lines, cut := splitLines(data)
	var garbled, wrongInput, wrongStatus, wrongOutput, beyond, twice []string
	for n, l := range lines {
		sum.records++
		var r jobRecord
		if json.Unmarshal(l, &r) != nil || r.Input == nil || r.Status == "" {
			garbled = append(garbled, string(l))
			continue
		}
		items, ok := itemsOf(r, want.batch)
		if !ok {
			garbled = append(garbled, string(l))
			continue
		}
		anyFails := false
		for i, it := range items {
			pos := r.Seq + int64(i)
			if pos < 1 || pos > int64(want.arrived) {
				beyond = append(beyond, fmt.Sprintf("seq %d: %s", pos, rawKey(it)))
				continue
			}
			key := inputKey(want.lines[pos-1])
			if rawKey(it) != key {
				wrongInput = append(wrongInput, fmt.Sprintf("seq %d: %s, want %s", pos, rawKey(it), key))
			}
			anyFails = anyFails || failsByDesign(key, want.failMod)
			if prev, dup := sum.byPos[pos]; dup {
				twice = append(twice, fmt.Sprintf("seq %d on lines %d and %d", pos, prev.line, n+1))
			}
			sum.byPos[pos] = seen{status: r.Status, line: n + 1}
		}
		wantStatus := "Success"
		if anyFails {
			wantStatus = "Exception"
		}
		if r.Status != "Success" {
			sum.failed++
		}
		if r.Status != wantStatus {
			wrongStatus = append(wrongStatus, fmt.Sprintf("seq %d: %s, want %s", r.Seq, r.Status, wantStatus))
			continue
		}
		if r.Status == "Success" && !sameValues(r.Output, repeated(items, want.repeat)) {
			wrongOutput = append(wrongOutput, string(l))
		}
	}
	if cut != nil {
		garbled = append(garbled, string(cut)+" (no newline)")
	}
	var missing []string
	for pos := int64(1); pos <= int64(want.arrived) && !want.partial; pos++ {
		if _, ok := sum.byPos[pos]; !ok {
			missing = append(missing, fmt.Sprint(pos))
		}
	}
	report := func(what string, ex []string, quote bool) {
		if len(ex) == 0 {
			return
		}
		if quote {
			ex = quoteAll(ex)
		}
		f.addf("results: %d %s (%s)", len(ex), what, examples(ex))
	}
	report("items have no record", missing, false)
	report("items have two records", twice, false)
	report("garbled records", garbled, true)
	report("records for items the job did not get", beyond, false)
	report("records carry another item than their seq's", wrongInput, false)
	report("records have the wrong status", wrongStatus, false)
	report("successful records do not give their input back", wrongOutput, true)
	return sum, f
}

// repeated returns the outputs of items under params.repeat = n: each
// item n times, in turn.
func repeated(items []json.RawMessage, n int) []json.RawMessage {
	if n <= 1 {
		return items
	}
	out := make([]json.RawMessage, 0, len(items)*n)
	for _, it := range items {
		for range n {
			out = append(out, it)
		}
	}
	return out
}

// sameValues reports whether two lists of JSON values are equal, value by
// value, ignoring how each is spaced.
func sameValues(a, b []json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if rawKey(a[i]) != rawKey(b[i]) {
			return false
		}
	}
	return true
}

// receiveOutput is what one `rsh job receive --out records` printed, and
// whether it was killed (its last line may then be cut short).
type receiveOutput struct {
	data   []byte
	killed bool
}

// checkReceived checks what the receives of a job printed against its
// results: each record printed is the job's record for its positions;
// together they give every record at least once, and exactly once unless
// a receive was killed (what it printed but did not confirm comes again).
func checkReceived(want jobExpect, results resultsSummary, outs []receiveOutput) findings {
	var f findings
	got := map[int64]int{}
	var garbled, unknown, differ []string
	anyKilled := false
	for k, o := range outs {
		lines, cut := splitLines(o.data)
		if cut != nil && !o.killed {
			garbled = append(garbled, fmt.Sprintf("receive %d: %s (no newline)", k+1, cut))
		}
		anyKilled = anyKilled || o.killed
		for _, l := range lines {
			var r jobRecord
			if json.Unmarshal(l, &r) != nil || r.Input == nil {
				garbled = append(garbled, fmt.Sprintf("receive %d: %s", k+1, l))
				continue
			}
			items, ok := itemsOf(r, want.batch)
			if !ok {
				garbled = append(garbled, fmt.Sprintf("receive %d: %s", k+1, l))
				continue
			}
			for i, it := range items {
				pos := r.Seq + int64(i)
				s, ok := results.byPos[pos]
				switch {
				case !ok:
					unknown = append(unknown, fmt.Sprintf("seq %d", pos))
				case s.status != r.Status || inputKey(want.lines[pos-1]) != rawKey(it):
					differ = append(differ, fmt.Sprintf("seq %d: %s %s, the results say %s %s", pos, r.Status, rawKey(it), s.status, inputKey(want.lines[pos-1])))
				default:
					got[pos]++
				}
			}
		}
	}
	var lost, again []string
	for _, pos := range sortedPositions(results.byPos) {
		switch n := got[pos]; {
		case n == 0:
			lost = append(lost, fmt.Sprint(pos))
		case n > 1 && !anyKilled:
			again = append(again, fmt.Sprintf("seq %d %d times", pos, n))
		}
	}
	if len(lost) > 0 {
		f.addf("receive: %d items in the results were never received (seq %s)", len(lost), examples(lost))
	}
	if len(again) > 0 {
		f.addf("receive: %d items received more than once, though no receive was killed (%s)", len(again), examples(again))
	}
	if len(unknown) > 0 {
		f.addf("receive: %d records not in the results (%s)", len(unknown), examples(unknown))
	}
	if len(differ) > 0 {
		f.addf("receive: %d records differ from the results (%s)", len(differ), examples(differ))
	}
	if len(garbled) > 0 {
		f.addf("receive: %d garbled records (%s)", len(garbled), examples(quoteAll(garbled)))
	}
	return f
}

// sortedPositions returns the positions of m in order.
func sortedPositions(m map[int64]seen) []int64 {
	ps := make([]int64, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// lastOutputEnd returns the end of the output that a job log's last
// output-end line claims, or -1 if it has none: the part of the results a
// daemon may hand out.
func lastOutputEnd(joblog []byte) int64 {
	end := int64(-1)
	lines, _ := splitLines(joblog)
	for _, l := range lines {
		if !bytes.HasPrefix(l, []byte(`{"outputEnd":`)) {
			continue
		}
		var v struct {
			End int64 `json:"outputEnd"`
		}
		if json.Unmarshal(l, &v) == nil {
			end = v.End
		}
	}
	return end
}

// inputItems reads a job's input file (one item a line: 'v' and its JSON,
// or 'e' and an object for a line that could not be decoded) and checks
// that it holds a prefix of the lines sent, whole lines only. It returns
// how many items it holds.
func inputItems(sent []string, input []byte) (int, findings) {
	var f findings
	lines, cut := splitLines(input)
	if cut != nil {
		f.addf("the job's input ends in a cut line %q", cut)
	}
	if len(lines) > len(sent) {
		f.addf("the job's input has %d items, more than the %d sent", len(lines), len(sent))
	}
	for i, l := range lines {
		if i >= len(sent) {
			break
		}
		if len(l) == 0 || l[0] != 'v' || rawKey(l[1:]) != inputKey(sent[i]) {
			f.addf("the job's input line %d is %q, want the item sent %s", i+1, l, inputKey(sent[i]))
			break
		}
	}
	return len(lines), f
}
