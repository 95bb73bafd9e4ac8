package main

import (
	"fmt"
	"strings"
	"testing"
)

// rec is one record of a job's results: seq, input (JSON), status, and
// for a success the input given back.
func rec(seq int, input, status string) string {
	out := "[]"
	if status == "Success" {
		out = "[" + input + "]"
		if strings.HasPrefix(input, "[") {
			out = input // a batch gives its items back, one output each
		}
	}
	return fmt.Sprintf(`{"seq":%d,"input":%s,"output":%s,"status":"%s","errors":[],"attempts":1}`+"\n", seq, input, out, status)
}

// The items of the job tests: 14 and "w345678" fail under failMod 7.
var jobLines = []string{"1", "w3", "14", "2", `{"n": 5, "p": "pp"}`, "w345678"}

// jobRecs are the clean results of jobLines under failMod 7, in the order
// a job with -t 2 might finish them.
var jobRecs = rec(2, `"w3"`, "Success") + rec(1, "1", "Success") + rec(3, "14", "Exception") +
	rec(4, "2", "Success") + rec(6, `"w345678"`, "Exception") + rec(5, `{"n":5,"p":"pp"}`, "Success")

func TestFailsByDesign(t *testing.T) {
	for key, want := range map[string]bool{
		"14": true, "15": false, `"w345678"`: true, `"w3"`: false,
		`{"n":21,"p":"x"}`: true, `{"n":5}`: false, `{"p":"x"}`: false, "null": false, "1.5": false,
	} {
		if got := failsByDesign(key, 7); got != want {
			t.Errorf("failsByDesign(%s, 7) = %v, want %v", key, got, want)
		}
	}
	if failsByDesign("14", 0) {
		t.Error("failsByDesign(14, 0): nothing fails without params.fail")
	}
}

func TestCheckJobResults(t *testing.T) {
	want := jobExpect{lines: jobLines, arrived: len(jobLines), failMod: 7}
	tests := []struct {
		name    string
		want    jobExpect
		results string
		finds   []string // substrings of the findings, in order; none: clean
	}{
		{name: "clean", want: want, results: jobRecs},
		{name: "an item lost", want: want, results: rec(1, "1", "Success") + rec(2, `"w3"`, "Success") + rec(3, "14", "Exception") +
			rec(4, "2", "Success") + rec(6, `"w345678"`, "Exception"),
			finds: []string{"results: 1 items have no record (e.g. 5)"}},
		{name: "an item twice", want: want, results: jobRecs + rec(4, "2", "Success"),
			finds: []string{"results: 1 items have two records (e.g. seq 4 on lines 4 and 7)"}},
		{name: "the wrong item at a seq", want: want, results: strings.Replace(jobRecs, rec(4, "2", "Success"), rec(4, "1", "Success"), 1),
			finds: []string{"results: 1 records carry another item than their seq's (e.g. seq 4: 1, want 2)"}},
		{name: "a failing item succeeds", want: want, results: strings.Replace(jobRecs, rec(3, "14", "Exception"), rec(3, "14", "Success"), 1),
			finds: []string{"results: 1 records have the wrong status (e.g. seq 3: Success, want Exception)"}},
		{name: "without failMod every item succeeds", want: jobExpect{lines: jobLines, arrived: len(jobLines)}, results: jobRecs,
			finds: []string{"results: 2 records have the wrong status"}},
		{name: "an output that is not the input", want: want,
			results: strings.Replace(jobRecs, `"output":[2]`, `"output":[3]`, 1),
			finds:   []string{`results: 1 successful records do not give their input back (e.g. "{\"seq\":4`}},
		{name: "garbled and cut records", want: want, results: jobRecs + "{\"seq\":7,\n{\"seq\":8",
			finds: []string{`results: 2 garbled records (e.g. "{\"seq\":7,"; "{\"seq\":8 (no newline)")`}},
		{name: "the null of an empty input", want: jobExpect{lines: jobLines, arrived: 0}, results: rec(1, "null", "Success"),
			finds: []string{"results: 1 records for items the job did not get (e.g. seq 1: null)"}},
		{name: "a prefix arrived", want: jobExpect{lines: jobLines, arrived: 2}, results: rec(2, `"w3"`, "Success") + rec(1, "1", "Success")},
		{name: "partial: missing items are no finding", want: jobExpect{lines: jobLines, arrived: 6, partial: true},
			results: rec(1, "1", "Success") + rec(4, "2", "Success")},
		{name: "partial: twice still is", want: jobExpect{lines: jobLines, arrived: 6, partial: true},
			results: rec(1, "1", "Success") + rec(1, "1", "Success"), finds: []string{"results: 1 items have two records"}},
		{name: "repeat", want: jobExpect{lines: []string{"1", "2"}, arrived: 2, repeat: 3},
			results: `{"seq":1,"input":1,"output":[1,1,1],"status":"Success"}` + "\n" + `{"seq":2,"input":2,"output":[2,2],"status":"Success"}` + "\n",
			finds:   []string{"results: 1 successful records do not give their input back"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f := checkJobResults(tt.want, []byte(tt.results))
			expectFindings(t, f, tt.finds)
		})
	}
}

func TestCheckJobResultsBatches(t *testing.T) {
	want := jobExpect{lines: jobLines, arrived: len(jobLines), batch: 4, failMod: 7}
	clean := rec(5, `[{"n":5,"p":"pp"},"w345678"]`, "Exception") + rec(1, `[1,"w3",14,2]`, "Exception")
	sum, f := checkJobResults(want, []byte(clean))
	expectFindings(t, f, nil)
	if sum.records != 2 || sum.failed != 2 || len(sum.byPos) != 6 {
		t.Errorf("summary: %d records, %d failed, %d positions; want 2, 2, 6", sum.records, sum.failed, len(sum.byPos))
	}
	want.failMod = 0
	ok := rec(1, `[1,"w3",14,2]`, "Success") + rec(5, `[{"n":5,"p":"pp"},"w345678"]`, "Success")
	_, f = checkJobResults(want, []byte(ok))
	expectFindings(t, f, nil)
	shifted := rec(1, `[1,"w3",14,2]`, "Success") + rec(4, `[{"n":5,"p":"pp"},"w345678"]`, "Success")
	_, f = checkJobResults(want, []byte(shifted))
	expectFindings(t, f, []string{"results: 1 items have no record (e.g. 6)", "results: 1 items have two records (e.g. seq 4 on lines 1 and 2)",
		"results: 2 records carry another item than their seq's"})
}

func TestCheckReceived(t *testing.T) {
	want := jobExpect{lines: jobLines, arrived: len(jobLines), failMod: 7}
	sum, f := checkJobResults(want, []byte(jobRecs))
	expectFindings(t, f, nil)
	first, rest := jobRecs[:strings.Index(jobRecs, `{"seq":4`)], jobRecs[strings.Index(jobRecs, `{"seq":4`):]
	tests := []struct {
		name  string
		outs  []receiveOutput
		finds []string
	}{
		{name: "all at once", outs: []receiveOutput{{data: []byte(jobRecs)}, {}}},
		{name: "in two parts", outs: []receiveOutput{{data: []byte(first)}, {data: []byte(rest)}}},
		{name: "again, no receive killed", outs: []receiveOutput{{data: []byte(first)}, {data: []byte(first + rest)}},
			finds: []string{"receive: 3 items received more than once, though no receive was killed (e.g. seq 1 2 times; seq 2 2 times; seq 3 2 times)"}},
		{name: "again after a killed receive, its last line cut", outs: []receiveOutput{{data: []byte(first + `{"seq":4,"inp`), killed: true}, {data: []byte(first + rest)}}},
		{name: "lost", outs: []receiveOutput{{data: []byte(first)}},
			finds: []string{"receive: 3 items in the results were never received (seq e.g. 4; 5; 6)"}},
		{name: "a cut line of a receive not killed", outs: []receiveOutput{{data: []byte(jobRecs + `{"seq":4,"inp`)}},
			finds: []string{`receive: 1 garbled records (e.g. "receive 1: {\"seq\":4,\"inp (no newline)")`}},
		{name: "a record the results do not have", outs: []receiveOutput{{data: []byte(jobRecs + rec(9, "1", "Success"))}},
			finds: []string{"receive: 1 records not in the results (e.g. seq 9)"}},
		{name: "a record that differs", outs: []receiveOutput{{data: []byte(strings.Replace(jobRecs, rec(3, "14", "Exception"), rec(3, "14", "Success"), 1))}},
			finds: []string{"receive: 1 items in the results were never received (seq e.g. 3)", "receive: 1 records differ from the results (e.g. seq 3: Success 14, the results say Exception 14)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectFindings(t, checkReceived(want, sum, tt.outs), tt.finds)
		})
	}
}

func TestLastOutputEnd(t *testing.T) {
	log := `{"seq":1,"hash":"a","status":"Success"}
{"outputEnd":120,"dev":1,"ino":2}
{"seq":2,"hash":"b","status":"Success"}
{"outputEnd":240,"dev":1,"ino":2}
{"seq":3,"hash":"c","status":"Success"}
{"outputEnd":3`
	if got := lastOutputEnd([]byte(log)); got != 240 {
		t.Errorf("lastOutputEnd = %d, want 240 (a cut last line claims nothing)", got)
	}
	if got := lastOutputEnd(nil); got != -1 {
		t.Errorf("lastOutputEnd of an empty job log = %d, want -1", got)
	}
}

func TestInputItems(t *testing.T) {
	sent := []string{"1", "w3", `{"n": 5}`}
	tests := []struct {
		input string
		n     int
		finds []string
	}{
		{input: "v1\nv\"w3\"\nv{\"n\":5}\n", n: 3},
		{input: "v1\n", n: 1},
		{input: "", n: 0},
		{input: "v1\nv\"w3", n: 1, finds: []string{`the job's input ends in a cut line "v\"w3"`}},
		{input: "v1\nv2\n", n: 2, finds: []string{`the job's input line 2 is "v2", want the item sent "w3"`}},
		{input: "v1\nv\"w3\"\nv{\"n\":5}\nv4\n", n: 4, finds: []string{"the job's input has 4 items, more than the 3 sent"}},
	}
	for _, tt := range tests {
		n, f := inputItems(sent, []byte(tt.input))
		if n != tt.n {
			t.Errorf("inputItems(%q) = %d items, want %d", tt.input, n, tt.n)
		}
		expectFindings(t, f, tt.finds)
	}
}

func TestReceiveCode(t *testing.T) {
	ok, failed := rec(1, "1", "Success"), rec(2, "14", "Exception")
	for _, tt := range []struct {
		state, out string
		want       int
	}{
		{"Completed", ok, 0}, {"Completed", "", 0}, {"CompletedWithErrors", ok + failed, 1},
		{"CompletedWithErrors", ok, 0}, {"Failed", ok, 3}, {"Failed", "", 3},
	} {
		if got := receiveCode(tt.state, []byte(tt.out)); got != tt.want {
			t.Errorf("receiveCode(%s, %q) = %d, want %d", tt.state, tt.out, got, tt.want)
		}
	}
}

// expectFindings checks that f has one finding per want, each containing it.
func expectFindings(t *testing.T, f findings, want []string) {
	t.Helper()
	if len(f) != len(want) {
		t.Fatalf("findings %q, want %d like %q", f, len(want), want)
	}
	for i, w := range want {
		if !strings.Contains(f[i], w) {
			t.Errorf("finding %d: %q, want it to contain %q", i, f[i], w)
		}
	}
}
