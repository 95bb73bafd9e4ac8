package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
)

func TestJobsExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, ".", 20000); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`(?m)^cpu finished first: Completed$`,
		`(?m)^sleeper +Completed +1\.\d+s +slept 1500 ms$`,
		`(?m)^cpu +Completed +\S+ +2262 primes below 20000$`,
		`(?m)^files +Completed +\S+ +\d+ entries, \d+ bytes under /`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("output lacks %s:\n%s", want, out.String())
		}
	}
}
