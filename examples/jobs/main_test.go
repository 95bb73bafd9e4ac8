package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"testing"

	"github.com/runspaces/rsh/cli"
	"github.com/runspaces/rsh/worker"
)

func TestMain(m *testing.M) {
	worker.Main()
	cli.JobMain() // the jobs run in this test binary, started again
	os.Exit(m.Run())
}

func TestJobsExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, ".", 20000); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`(?m)^cpu finished first: Completed$`,
		`(?m)^sleeper +Completed +\S+ +slept 1500 ms$`,
		`(?m)^cpu +Completed +\S+ +2262 primes below 20000$`,
		`(?m)^files +Completed +\S+ +\d+ entries, \d+ bytes under /`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("output lacks %s:\n%s", want, out.String())
		}
	}
}
