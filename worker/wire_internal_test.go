package worker

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"

	"github.com/runspaces/rsh/pool"
)

// Every kind of item value crosses the pipe as the JSON (or string) the
// child decodes, integers included, which take a shortcut of their own.
func TestItemRoundTrip(t *testing.T) {
	values := []any{int64(0), int64(-42), int64(math.MaxInt64), int64(math.MinInt64), "a\nb", json.RawMessage(`{"x":1}`), 1.5, nil, []int{1, 2}}
	b := binary.AppendUvarint(nil, uint64(len(values))) // a batch frame starts with its count
	for i := range values {
		b = appendItem(b, &pool.Item{Value: values[i]})
	}
	got, err := readItems(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(values) {
		t.Fatalf("%d items back, want %d", len(got), len(values))
	}
	for i, v := range values {
		want, _ := json.Marshal(v)
		switch v := v.(type) {
		case string:
			if got[i].Value != v {
				t.Errorf("item %d: %#v, want %q", i, got[i].Value, v)
			}
			continue
		case json.RawMessage:
			want = v
		}
		raw, ok := got[i].Value.(json.RawMessage)
		if !ok || string(raw) != string(want) {
			t.Errorf("item %d: %#v, want %s", i, got[i].Value, want)
		}
	}
}
