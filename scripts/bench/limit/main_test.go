package main

import (
	"runtime/debug"
	"testing"
)

func TestSetGCFollowsRsh(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	if got := setGC(""); got != "400" {
		t.Errorf("setGC with GOGC unset = %s, want 400", got)
	}
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent with GOGC unset = %d, want %d (rsh's)", got, gcPercent)
	}
	if got := setGC("50"); got != "50" {
		t.Errorf("setGC with GOGC=50 = %s, want 50", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent with GOGC set = %d, want it left alone (100)", got)
	}
}
