package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"slices"
)

// recordsCommand prints each record of an --out records file as
// "seq status input", in seq order, so that a shell script can compare a
// run's verdicts with a list it expects. A line that is not a record is
// printed as "garbled LINE".
func recordsCommand(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: faults records FILE")
		return 2
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults records: %v\n", err)
		return 1
	}
	lines, cut := splitLines(data)
	if cut != nil {
		lines = append(lines, cut)
	}
	var recs []record
	for _, l := range lines {
		var r record
		if json.Unmarshal(l, &r) != nil || r.Status == "" {
			fmt.Printf("garbled %s\n", l)
			continue
		}
		recs = append(recs, r)
	}
	slices.SortStableFunc(recs, func(a, b record) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, r := range recs {
		fmt.Printf("%d %s %s\n", r.Seq, r.Status, rawKey(r.Input))
	}
	return 0
}
