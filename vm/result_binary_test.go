package vm_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/runspaces/rsh/vm"
)

// The binary form carries every field of a result.
func TestResultBinaryRoundTrip(t *testing.T) {
	full := vm.Result{
		Seq: 42, Input: json.RawMessage(`{"a":1}`),
		Output: []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`"two"`), json.RawMessage(`[3]`)},
		Status: vm.Exception,
		Errors: []string{"e1", ""}, Warnings: []string{"w"}, Verbose: []string{"v1", "v2"}, Information: []string{"i"},
		Progress:  []vm.Progress{{Percent: 12.5, Status: "half"}},
		Error:     &vm.ErrorInfo{Message: "boom", Stack: "at x (f.js:1:2)"},
		StartedAt: time.Unix(1700000000, 123456789), Duration: 1500 * time.Microsecond,
		Runspace: 3, Attempts: 2, BatchSize: 7,
		ElementErrors: []vm.ElementError{{Index: 0, Error: "first"}, {Index: 6, Error: ""}},
	}
	for _, r := range []vm.Result{full, {Status: vm.Success}, {Status: vm.MemoryLimit, Output: []json.RawMessage{json.RawMessage(`null`)}}} {
		var got vm.Result
		if err := got.UnmarshalBinary(r.AppendBinary(nil)); err != nil {
			t.Fatal(err)
		}
		if !got.StartedAt.Equal(r.StartedAt) {
			t.Fatalf("startedAt %v, want %v", got.StartedAt, r.StartedAt)
		}
		got.StartedAt, r.StartedAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got.AppendJSON(nil), r.AppendJSON(nil)) || got.Duration != r.Duration {
			t.Fatalf("got  %s\nwant %s", got.AppendJSON(nil), r.AppendJSON(nil))
		}
	}
}

// Truncated or corrupt input is an error, never a panic.
func TestResultBinaryMalformed(t *testing.T) {
	r := vm.Result{Output: []json.RawMessage{json.RawMessage(`"x"`)}, Status: vm.Success, Errors: []string{"e"}}
	data := r.AppendBinary(nil)
	for i := range data {
		var got vm.Result
		if err := got.UnmarshalBinary(data[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", i)
		}
	}
	bad := append([]byte(nil), data...)
	bad[0] = 99
	var got vm.Result
	if err := got.UnmarshalBinary(bad); err == nil {
		t.Fatal("unknown version: no error")
	}
	if err := got.UnmarshalBinary(append(data, 0)); err == nil {
		t.Fatal("trailing byte: no error")
	}
}

func FuzzResultBinary(f *testing.F) {
	f.Add((&vm.Result{Status: vm.Success, Output: []json.RawMessage{json.RawMessage(`1`)}}).AppendBinary(nil))
	f.Add((&vm.Result{Status: vm.Error, Errors: []string{"e"}, BatchSize: 3, ElementErrors: []vm.ElementError{{Index: 2, Error: "e"}}}).AppendBinary(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r vm.Result
		if r.UnmarshalBinary(data) != nil {
			return
		}
		var again vm.Result
		if err := again.UnmarshalBinary(r.AppendBinary(nil)); err != nil {
			t.Fatalf("re-encoded result does not decode: %v", err)
		}
	})
}
