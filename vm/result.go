package vm

import (
	"encoding/json"
	"time"
)

// Status is the outcome of one item.
type Status string

// The statuses of an item; see DESIGN.md.
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
	// InvalidInput: the input could not be decoded; the item was not run.
	InvalidInput Status = "InvalidInput"
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

	firstOutput [1]json.RawMessage // Output's storage for the common single value
}

// Values decodes the output values into Go values.
func (r *Result) Values() ([]any, error) {
	out := make([]any, 0, len(r.Output))
	for _, raw := range r.Output {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// MarshalJSON encodes the record in the documented field order, with empty
// streams as [] rather than null and the duration as durationMs.
func (r *Result) MarshalJSON() ([]byte, error) {
	input := r.Input
	if input == nil {
		input = json.RawMessage("null")
	}
	return json.Marshal(struct {
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
		DurationMs  float64           `json:"durationMs"`
		Runspace    int               `json:"runspace"`
		Attempts    int               `json:"attempts"`
	}{
		r.Seq, input, nonNil(r.Output), r.Status, nonNil(r.Errors), nonNil(r.Warnings),
		nonNil(r.Verbose), nonNil(r.Information), r.Progress, r.Error, r.StartedAt,
		float64(r.Duration.Microseconds()) / 1000, r.Runspace, r.Attempts,
	})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
