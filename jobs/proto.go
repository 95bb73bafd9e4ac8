package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// A job lives in its directory, STATE/jobs/NAME/, in plain files:
//
//	spec.json      the job as submitted, its permissions decided; written once
//	state.json     its Info, replaced atomically at each change
//	input          its items, one line each (see AppendItemLine), appended
//	               as they arrive from the client
//	input.end      written once the input is complete (or was cut short):
//	               {"size":N,"error":"..."}
//	results.ndjson one record per finished item (the job process's stdout,
//	               as `rsh run --out records` writes it)
//	joblog         the job process's job log (`rsh run --joblog`), which
//	               makes the job resumable
//	log            the job's messages: what the job process wrote to
//	               stderr, and the daemon's notes about the job
//	lock           held (flock) by the job's process while it runs, so that
//	               two processes never run one job
//
// Plain files rather than an embedded database: the data is append-mostly,
// a job's documents are small, atomic rename gives crash safety for them,
// and an operator can read (or back up, or delete) a job with ordinary
// tools.
const (
	SpecFile     = "spec.json"
	StateFile    = "state.json"
	InputFile    = "input"
	InputEndFile = "input.end"
	ResultsFile  = "results.ndjson"
	JoblogFile   = "joblog"
	LogFile      = "log"
	JobLockFile  = "lock"
)

// ProcessArg is the first argument of a job process: the program named by
// Options.Command runs the job in the directory given after it. rsh
// handles it in cli.JobMain.
const ProcessArg = "__job"

// InputEnd is the content of input.end.
type InputEnd struct {
	// Size is how many bytes of input the job has; a job process reads no
	// further.
	Size int64 `json:"size"`
	// Error, when set, says why the input is incomplete: the job runs over
	// what arrived, and then fails with this reason.
	Error string `json:"error,omitempty"`
}

// Input lines. Each item of a job's input is one line: 'v' and the item's
// value as JSON, or 'e' and a JSON object {"input": TEXT, "error": MSG}
// for a line the client could not decode (the item reports
// vm.InvalidInput with MSG). A tag byte rather than a wrapping object: a
// job process takes the value as it is, without decoding it twice.

// AppendItemLine appends the input line of an item whose value is v (JSON).
func AppendItemLine(b []byte, v json.RawMessage) []byte {
	b = append(b, 'v')
	b = append(b, v...)
	return append(b, '\n')
}

// AppendInvalidItemLine appends the input line of an item that could not
// be decoded: input is its text as JSON, msg why.
func AppendInvalidItemLine(b []byte, input json.RawMessage, msg string) []byte {
	b = append(b, `e{"input":`...)
	b = append(b, input...)
	b = append(b, `,"error":`...)
	b = strconv.AppendQuote(b, msg)
	return append(b, "}\n"...)
}

// errBadItemLine is the error of an input line in no known form.
var errBadItemLine = errors.New("not an input line of a job")

// ParseItemLine reads an input line (without its newline). It returns the
// item's value, or, for an item the client could not decode, its input
// text and why. The returned slices point into line.
func ParseItemLine(line []byte) (value, input json.RawMessage, msg string, err error) {
	if len(line) == 0 {
		return nil, nil, "", errBadItemLine
	}
	switch line[0] {
	case 'v':
		return json.RawMessage(line[1:]), nil, "", nil
	case 'e':
		var v struct {
			Input json.RawMessage `json:"input"`
			Error string          `json:"error"`
		}
		if err := json.Unmarshal(line[1:], &v); err != nil || len(v.Input) == 0 {
			return nil, nil, "", errBadItemLine
		}
		return nil, v.Input, v.Error, nil
	}
	return nil, nil, "", errBadItemLine
}

// Report is what a job process tells its daemon, one JSON line at a time,
// on the pipe it gets as file descriptor 3: its progress as the job log
// records it, and at the end how it ended.
type Report struct {
	// Done items have a result on file, Failed of them did not succeed.
	Done   int `json:"done"`
	Failed int `json:"failed"`
	// Total is the number of items, once the input has been read through;
	// -1 before.
	Total int `json:"total"`
	// Committed is how much of results.ndjson the job log claims: the
	// daemon hands out no result past it, because a resumed run may
	// replace what lies beyond.
	Committed int64 `json:"committed"`
	// Running and Queued are the job's items running now and read ahead
	// waiting for a runspace; Retried the retry attempts made; P50Ms and
	// P99Ms the median and 99th percentile of the items' durations (to a
	// power-of-two bucket): the job process's pool.Metrics, as `rsh run
	// --progress` sees them.
	Running int     `json:"running,omitempty"`
	Queued  int     `json:"queued,omitempty"`
	Retried int64   `json:"retried,omitempty"`
	P50Ms   float64 `json:"p50Ms,omitempty"`
	P99Ms   float64 `json:"p99Ms,omitempty"`
	// Final marks the last report; Error then says why the job could not
	// finish (the script did not compile, results could not be stored),
	// if it could not.
	Final bool   `json:"final,omitempty"`
	Error string `json:"error,omitempty"`
}

// AppendReport appends r as one line.
func AppendReport(b []byte, r Report) []byte {
	data, _ := json.Marshal(r) // a Report always encodes
	b = append(b, data...)
	return append(b, '\n')
}

// countLines counts the newlines in b.
func countLines(b []byte) int { return bytes.Count(b, []byte{'\n'}) }
