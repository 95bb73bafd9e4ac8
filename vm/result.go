package vm

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// Status is the outcome of one item.
type Status string

// The statuses of an item; see docs/design.md#statuses.
const (
	// Success: the function returned and nothing was written to the error stream.
	Success Status = "Success"
	// Error: the function returned but writeError was called.
	Error Status = "Error"
	// Exception: the function threw or its promise rejected.
	Exception Status = "Exception"
	// Timeout: the per-item timeout fired and the item was interrupted.
	Timeout Status = "Timeout"
	// Stopped: the run was cancelled before the item finished.
	Stopped Status = "Stopped"
	// InvalidInput: the input could not be decoded (by the reader, or by
	// the runspace for a json.RawMessage that is not JSON); the item's
	// function was not called.
	InvalidInput Status = "InvalidInput"
	// MemoryLimit: the item's worker process passed its memory limit, and
	// run again alone in a new worker it passed it again.
	MemoryLimit Status = "MemoryLimit"
	// Abandoned: the item was delivered to workers of a shared queue as
	// often as the queue allows and never got a result (it killed its
	// worker each time); it was set aside, and this is its result.
	Abandoned Status = "Abandoned"
)

// ErrorInfo describes an exception: its message and JavaScript stack.
type ErrorInfo struct {
	Message string `json:"message"`
	Stack   string `json:"stack"`
}

// Progress is one writeProgress call.
type Progress struct {
	Percent float64 `json:"percent"`
	Status  string  `json:"status"`
}

// ElementError is an error that writeError attributed to one element of a
// batch (writeError(message, index)): the element at Index (from 0) in
// the array the function was given failed with Error.
type ElementError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// Result is the outcome of one item: its output values, its streams and its
// status. The JSON form is the record printed by `rsh run --out records`.
type Result struct {
	Seq         int64             `json:"seq"`
	Input       json.RawMessage   `json:"input"`
	Output      []json.RawMessage `json:"output"`
	Status      Status            `json:"status"`
	Errors      []string          `json:"errors"`
	Warnings    []string          `json:"warnings"`
	Verbose     []string          `json:"verbose"`
	Information []string          `json:"information"`
	Progress    []Progress        `json:"progress,omitempty"`
	Error       *ErrorInfo        `json:"error,omitempty"`
	StartedAt   time.Time         `json:"startedAt"`
	Duration    time.Duration     `json:"-"`
	Runspace    int               `json:"runspace"`
	Attempts    int               `json:"attempts"`
	// BatchSize is how many input records the item stood for when it was
	// a batch (Seq is then the first one's position); 0 otherwise.
	BatchSize int `json:"batchSize,omitempty"`
	// ElementErrors are the errors written with an element's index
	// (writeError(message, index)), in the order written; their messages
	// are in Errors too. See Elements for what they mean for each element.
	ElementErrors []ElementError `json:"elementErrors,omitempty"`

	firstOutput [1]json.RawMessage // Output's storage for the common single value
}

// MarshalJSON encodes the record; see AppendJSON.
func (r *Result) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(nil), nil
}

// AppendJSON appends the record to b as one line of JSON, in the documented
// field order, with empty streams as [] rather than null and the duration
// as durationMs. Input and Output are written as they are: they must hold
// valid JSON (they always do in results made by this module).
func (r *Result) AppendJSON(b []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, r.Seq, 10)
	b = append(b, `,"input":`...)
	if len(r.Input) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, r.Input...)
	}
	b = append(b, `,"output":[`...)
	for i, o := range r.Output {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, o...)
	}
	b = append(b, `],"status":`...)
	b = appendJSONString(b, string(r.Status))
	b = appendStrings(append(b, `,"errors":`...), r.Errors)
	b = appendStrings(append(b, `,"warnings":`...), r.Warnings)
	b = appendStrings(append(b, `,"verbose":`...), r.Verbose)
	b = appendStrings(append(b, `,"information":`...), r.Information)
	if len(r.Progress) > 0 {
		b = append(b, `,"progress":[`...)
		for i, p := range r.Progress {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"percent":`...)
			b = appendNumber(b, p.Percent)
			b = append(b, `,"status":`...)
			b = appendJSONString(b, p.Status)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if r.Error != nil {
		b = append(b, `,"error":{"message":`...)
		b = appendJSONString(b, r.Error.Message)
		b = append(b, `,"stack":`...)
		b = appendJSONString(b, r.Error.Stack)
		b = append(b, '}')
	}
	b = append(b, `,"startedAt":"`...)
	b = r.StartedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","durationMs":`...)
	b = appendNumber(b, float64(r.Duration.Microseconds())/1000)
	b = append(b, `,"runspace":`...)
	b = strconv.AppendInt(b, int64(r.Runspace), 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	if r.BatchSize > 0 {
		b = append(b, `,"batchSize":`...)
		b = strconv.AppendInt(b, int64(r.BatchSize), 10)
	}
	if len(r.ElementErrors) > 0 {
		b = append(b, `,"elementErrors":[`...)
		for i, e := range r.ElementErrors {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"index":`...)
			b = strconv.AppendInt(b, int64(e.Index), 10)
			b = append(b, `,"error":`...)
			b = appendJSONString(b, e.Error)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// UnmarshalJSON reads a record written by MarshalJSON.
func (r *Result) UnmarshalJSON(data []byte) error {
	var rec struct {
		Seq         int64             `json:"seq"`
		Input       json.RawMessage   `json:"input"`
		Output      []json.RawMessage `json:"output"`
		Status      Status            `json:"status"`
		Errors      []string          `json:"errors"`
		Warnings    []string          `json:"warnings"`
		Verbose     []string          `json:"verbose"`
		Information []string          `json:"information"`
		Progress    []Progress        `json:"progress"`
		Error       *ErrorInfo        `json:"error"`
		StartedAt   time.Time         `json:"startedAt"`
		DurationMs  float64           `json:"durationMs"`
		Runspace    int               `json:"runspace"`
		Attempts    int               `json:"attempts"`
		BatchSize   int               `json:"batchSize"`
		Elements    []ElementError    `json:"elementErrors"`
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return err
	}
	*r = Result{
		Seq: rec.Seq, Input: rec.Input, Status: rec.Status,
		Errors: rec.Errors, Warnings: rec.Warnings, Verbose: rec.Verbose, Information: rec.Information,
		Progress: rec.Progress, Error: rec.Error, StartedAt: rec.StartedAt,
		Duration: time.Duration(rec.DurationMs * float64(time.Millisecond)),
		Runspace: rec.Runspace, Attempts: rec.Attempts, BatchSize: rec.BatchSize,
	}
	if len(rec.Elements) > 0 {
		r.ElementErrors = rec.Elements
	}
	if len(rec.Output) > 0 {
		r.Output = rec.Output
	}
	if len(r.Errors) == 0 {
		r.Errors = nil
	}
	if len(r.Warnings) == 0 {
		r.Warnings = nil
	}
	if len(r.Verbose) == 0 {
		r.Verbose = nil
	}
	if len(r.Information) == 0 {
		r.Information = nil
	}
	return nil
}

// Elements returns how many input records r stands for and how many of
// them failed; see docs/design.md#the-result-record. An item that is not a
// batch (BatchSize 0) is one record, failed unless its status is Success.
// Of a batch whose function returned (Success or Error), the elements
// named by ElementErrors failed and the others succeeded, even if
// writeError was also called without an index; when it did not return
// (Exception, Timeout, Stopped, MemoryLimit...), every element failed.
func (r *Result) Elements() (total, failed int) {
	if r.BatchSize <= 0 {
		if r.Status == Success {
			return 1, 0
		}
		return 1, 1
	}
	if r.Status != Success && r.Status != Error {
		return r.BatchSize, r.BatchSize
	}
	return r.BatchSize, distinctIndexes(r.ElementErrors, r.BatchSize)
}

// distinctIndexes counts the different indexes in es from 0 to n-1: an
// element written to twice failed once. It sorts a copy of the indexes,
// so that its cost follows len(es), not n (a record read back may claim
// any batch size).
func distinctIndexes(es []ElementError, n int) int {
	if len(es) == 0 {
		return 0
	}
	idx := make([]int, 0, len(es))
	for _, e := range es {
		if e.Index >= 0 && e.Index < n {
			idx = append(idx, e.Index)
		}
	}
	slices.Sort(idx)
	return len(slices.Compact(idx))
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendNumber writes f as JSON does (NaN and infinities, which JSON
// lacks, as null).
func appendNumber(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(b, f, 'e', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}
