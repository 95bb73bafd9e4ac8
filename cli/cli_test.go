package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runspaces/rsh/cli"
)

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  int
	}{
		{"all succeed", []string{"run", "-e", "(x) => x"}, "1\n2\n", cli.ExitOK},
		{"no input", []string{"run", "-e", "(x) => x"}, "", cli.ExitOK},
		{"one throws", []string{"run", "-e", "(x) => { if (x === 2) throw new Error('x'); return x }"}, "1\n2\n", cli.ExitItemsFailed},
		{"one writes an error", []string{"run", "-e", "(x) => { writeError('e') }"}, "1\n", cli.ExitItemsFailed},
		{"invalid input", []string{"run", "--in", "json", "-e", "(x) => x"}, "{\n", cli.ExitItemsFailed},
		{"bad flag", []string{"run", "--nope"}, "", cli.ExitUsage},
		{"syntax error", []string{"run", "-e", "(x) =>"}, "", cli.ExitUsage},
		{"init error", []string{"run", "-e", "throw 1"}, "1\n", cli.ExitUsage},
		{"help", []string{"run", "--help"}, "", cli.ExitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			got := cli.Main(context.Background(), tc.args, cli.Env{Stdin: strings.NewReader(tc.stdin), Stdout: &out, Stderr: &errOut})
			if got != tc.want {
				t.Errorf("exit code %d, want %d; stderr:\n%s", got, tc.want, errOut.String())
			}
		})
	}
}

// Cancelling the context (what a SIGINT does) stops the run with exit code
// 130 and a Stopped result for the running item.
func TestInterruptedExitCode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(200*time.Millisecond, cancel)
	var out, errOut bytes.Buffer
	got := cli.Main(ctx, []string{"run", "--out", "records", "-e", "(x) => sleep(60000)"},
		cli.Env{Stdin: strings.NewReader("1\n"), Stdout: &out, Stderr: &errOut})
	if got != cli.ExitInterrupted {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", got, cli.ExitInterrupted, errOut.String())
	}
	if !strings.Contains(out.String(), `"status":"Stopped"`) {
		t.Errorf("no Stopped record in %q", out.String())
	}
}

func TestTerminalHint(t *testing.T) {
	for _, tty := range []bool{false, true} {
		var out, errOut bytes.Buffer
		cli.Main(context.Background(), []string{"run", "-e", "(x) => x"},
			cli.Env{Stdin: strings.NewReader("1\n"), Stdout: &out, Stderr: &errOut, StdinIsTerminal: tty})
		if got := strings.Contains(errOut.String(), "reading items from the terminal"); got != tty {
			t.Errorf("terminal=%v: hint shown=%v", tty, got)
		}
	}
}

// A line longer than the read buffer arrives whole, and lines around it
// are not disturbed by the buffer reuse.
func TestLongLines(t *testing.T) {
	long := strings.Repeat("x", 700<<10)
	input := "short1\n\"" + long + "\"\nshort2\n"
	var out, errOut bytes.Buffer
	code := cli.Main(context.Background(), []string{"run", "-k", "-e", "(s) => s.length"},
		cli.Env{Stdin: strings.NewReader(input), Stdout: &out, Stderr: &errOut})
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if want := "6\n716800\n6\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

// The progress bar goes to stderr only, is on by default when stderr is a
// terminal, and off otherwise.
func TestProgressBar(t *testing.T) {
	input := strings.Repeat("1\n", 300)
	for _, tc := range []struct {
		name     string
		terminal bool
		flags    []string
		wantBar  bool
	}{
		{"terminal", true, nil, true},
		{"not a terminal", false, nil, false},
		{"forced on", false, []string{"--progress"}, true},
		{"forced off", true, []string{"--progress=false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"run", "-t", "2", "--total", "300", "-e", "(x) => { sleep(2); writeProgress(50, 'step'); return x }"}, tc.flags...)
			code := cli.Main(context.Background(), args, cli.Env{
				Stdin: strings.NewReader(input), Stdout: &out, Stderr: &errOut, StderrIsTerminal: tc.terminal,
			})
			if code != cli.ExitOK {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			if out.String() != strings.Repeat("1\n", 300) {
				t.Fatalf("stdout holds more than the output: %q", out.String())
			}
			gotBar := strings.Contains(errOut.String(), "items") && strings.Contains(errOut.String(), "%")
			if gotBar != tc.wantBar {
				t.Errorf("bar on stderr: %v, want %v; stderr:\n%s", gotBar, tc.wantBar, errOut.String())
			}
			if tc.wantBar && !strings.Contains(errOut.String(), "step") {
				t.Errorf("writeProgress status not shown: %s", errOut.String())
			}
			// The pool's live count (pool.Metrics) of items running.
			if tc.wantBar && !regexp.MustCompile(`items, [12] running`).MatchString(errOut.String()) {
				t.Errorf("items running not shown: %s", errOut.String())
			}
		})
	}
}

// The summary has the retried count, the item-time percentiles, and the
// same as JSON with --summary-json.
func TestSummaryJSON(t *testing.T) {
	path := t.TempDir() + "/summary.json"
	var out, errOut bytes.Buffer
	code := cli.Main(context.Background(), []string{"run", "--summary", "--summary-json", path, "--in", "json", "-e", "(x) => { if (x === 2) throw new Error('two'); return x }"},
		cli.Env{Stdin: strings.NewReader("1\n2\n3\nnope\n"), Stdout: &out, Stderr: &errOut})
	if code != cli.ExitItemsFailed {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"total          4", "succeeded      2", "exceptions     1", "invalid input  1", "retried        0", "success rate   50.0%", "item time      p50 "} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, errOut.String())
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	if doc["total"] != 4.0 || doc["succeeded"] != 2.0 || doc["invalidInput"] != 1.0 || doc["successRate"] != 50.0 {
		t.Errorf("summary JSON %s", data)
	}
	for _, k := range []string{"p50Ms", "p95Ms", "maxMs", "wallMs", "itemsPerSec", "retried"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("summary JSON lacks %s", k)
		}
	}
}
