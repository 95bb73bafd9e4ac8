package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/runspaces/rsh/vm"
)

// With batches the summary counts items, each batch's elements as
// vm.Result.Elements says, and batches apart; the seed's fields in
// --summary-json are the item counts.
func TestSummaryBatches(t *testing.T) {
	s := newSummary(4)
	elementErrors := func(idx ...int) []vm.ElementError {
		var es []vm.ElementError
		for _, i := range idx {
			es = append(es, vm.ElementError{Index: i, Error: "x"})
		}
		return es
	}
	for _, r := range []*vm.Result{
		{Status: vm.Error, BatchSize: 4, ElementErrors: elementErrors(0, 3)},
		{Status: vm.Success, BatchSize: 4},
		{Status: vm.Exception, BatchSize: 4, Attempts: 2},
		{Status: vm.InvalidInput},                 // a line alone, not a batch
		{Status: vm.Error, Errors: []string{"x"}}, // a batch of one
	} {
		s.add(r)
	}
	s.addPlain(1) // a batch of one that succeeded
	s.wall = time.Second
	d := s.doc()
	want := summaryJSON{
		Total: 6, Succeeded: 2, Errors: 2, Exceptions: 1, InvalidInput: 1, Retried: 1, Records: 15,
		TotalItems: 15, SuccessfulItems: 7, ErrorItems: 8, Batches: 5, BatchSize: 4,
	}
	got := d
	got.SuccessRate, got.SuccessRateSeed, got.ItemsPerSec, got.WallMs, got.P50Ms, got.P95Ms, got.MaxMs = 0, 0, 0, 0, 0, 0, 0
	if got != want {
		t.Errorf("summary\n%+v\nwant\n%+v", got, want)
	}
	if rate := 100 * 7.0 / 15; d.SuccessRate != rate || d.SuccessRateSeed != rate || d.ItemsPerSec != 15 {
		t.Errorf("success rate %v and %v, items/s %v; want %v and 15", d.SuccessRate, d.SuccessRateSeed, d.ItemsPerSec, rate)
	}
	var w bytes.Buffer
	s.print(&w)
	for _, line := range []string{
		"  items          15\n", "  succeeded      7\n", "  failed         8\n",
		"  batches        5 of up to 4 items: 2 succeeded, 2 with errors, 1 exceptions\n",
		"  invalid input  1\n", "  retried        1 batches\n", "  success rate   46.7%\n", "  items/s        15.0\n", "  batch time     p50 ",
	} {
		if !strings.Contains(w.String(), line) {
			t.Errorf("summary lacks %q:\n%s", line, w.String())
		}
	}
}

// Without batches an item is one record: the seed's fields repeat the
// results' counts, with no batches.
func TestSummaryItems(t *testing.T) {
	s := newSummary(0)
	s.add(&vm.Result{Status: vm.Success})
	s.add(&vm.Result{Status: vm.Error, Errors: []string{"x"}})
	s.addPlain(2)
	d := s.doc()
	if d.TotalItems != 4 || d.SuccessfulItems != 3 || d.ErrorItems != 1 || d.Batches != 0 || d.BatchSize != 0 ||
		d.Total != 4 || d.Succeeded != 3 || d.SuccessRate != 75 || d.SuccessRateSeed != 75 {
		t.Errorf("summary %+v", d)
	}
	var w bytes.Buffer
	s.print(&w)
	if !strings.Contains(w.String(), "  total          4\n") || strings.Contains(w.String(), "batch") {
		t.Errorf("summary:\n%s", w.String())
	}
}
