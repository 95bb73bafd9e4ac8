package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bareAllowWarnings finds a bare --allow-* followed by an existing file
// the way pflag reads the arguments: a flag's value is not a positional
// word, short flags may be grouped, and "--" ends the flags.
func TestBareAllowWarnings(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, f := range []string{"in.txt", "s.js"} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string // In the warnings, one string each.
	}{
		{[]string{"-e", "x", "--allow-read", "in.txt"}, []string{`--allow-read without "=" allows reading every file, and "in.txt" after it is an input file; to allow only that path, write --allow-read=in.txt`}},
		{[]string{"s.js", "--allow-write", "in.txt"}, []string{`--allow-write without "=" allows writing every file, and "in.txt" after it is an input file`}},
		{[]string{"--allow-net", "in.txt", "s.js"}, []string{`--allow-net without "=" allows connecting to every host, and "in.txt" after it is the script; to allow only that host, write --allow-net=in.txt`}},
		{[]string{"-ke", "x", "--allow-read", "in.txt", "--allow-net", "s.js"}, []string{`"in.txt" after it is an input file`, `"s.js" after it is an input file`}},
		{[]string{"--allow-read=in.txt", "s.js"}, nil},
		{[]string{"-e", "--allow-read", "in.txt"}, nil},  // The flag is -e's value.
		{[]string{"-ke", "--allow-read", "in.txt"}, nil}, // Grouped: e takes the next word.
		{[]string{"--eval", "--allow-read", "in.txt"}, nil},
		{[]string{"-A", "in.txt", "s.js"}, nil}, // -A takes no value and no list.
		{[]string{"-e", "x", "--", "--allow-read", "in.txt"}, nil},
		{[]string{"-e", "x", "--allow-read", "--", "in.txt"}, nil},
		{[]string{"-e", "x", "--allow-read", "-"}, nil},
		{[]string{"-e", "x", "--allow-read"}, nil},
	} {
		o := &runOptions{}
		fs := newRunFlags(o)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		got, err := bareAllowWarnings(fs, tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: warnings %q; want %d", tc.args, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%q: warning %q; want it to say %q", tc.args, got[i], w)
			}
		}
	}
}

// A bare --allow-* followed by a word that cannot be the script or an
// input (no such file, a directory) is a usage error that shows the list
// written with "=".
func TestBareAllowErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("s.js", []byte("x => x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--allow-read", ".", "s.js"}, `--allow-read without "=" takes no list, so "." after it was read as the script, and it is a directory; to allow only that path, write --allow-read=.`},
		{[]string{"--allow-net", "example.com", "s.js"}, `"example.com" after it was read as the script, and there is no such file; to allow only that host, write --allow-net=example.com`},
		{[]string{"-e", "x", "--allow-write", "out"}, `"out" after it was read as an input file, and there is no such file; to allow only that path, write --allow-write=out`},
	} {
		_, err := parseRun(tc.args)
		if err == nil || err.Error() != tc.want && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.args, err, tc.want)
		}
	}
	if _, err := parseRun([]string{"--allow-read", ".", "s.js", "-h"}); err != nil {
		t.Errorf("with -h: %v; want the help", err)
	}
}

// parseRun keeps the warnings, and --max-line takes sizes.
func TestParseRunMaxLineAndWarnings(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := parseRun([]string{"-e", "x", "--allow-read", in, "--max-line", "64KiB"})
	if err != nil {
		t.Fatal(err)
	}
	if o.maxLine != 64<<10 || len(o.warnings) != 1 || len(o.files) != 1 {
		t.Errorf("maxLine %d, warnings %q, files %q; want 65536, one warning, one file", o.maxLine, o.warnings, o.files)
	}
	if o, err := parseRun([]string{"-e", "x"}); err != nil || o.maxLine != defaultMaxLine {
		t.Errorf("default maxLine %d, %v; want %d", o.maxLine, err, defaultMaxLine)
	}
	for _, bad := range []string{"0", "2GiB", "big", "1MB"} {
		if _, err := parseRun([]string{"-e", "x", "--max-line", bad}); err == nil || !strings.Contains(err.Error(), "--max-line "+bad) {
			t.Errorf("--max-line %s: err = %v; want a usage error naming it", bad, err)
		}
	}
}

// -j and --jobs are --throttle, as GNU parallel and make spell it, and
// count as giving --throttle (a job sends it to the daemon).
func TestThrottleAliases(t *testing.T) {
	for _, args := range [][]string{{"-j", "7"}, {"-j7"}, {"--jobs", "7"}, {"--jobs=7"}, {"-t", "7"}} {
		o, fs, err := parseRunWith(append([]string{"-e", "x"}, args...), nil)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if o.throttle != 7 || !fs.Changed("throttle") {
			t.Errorf("%q: throttle %d, changed %v; want 7, true", args, o.throttle, fs.Changed("throttle"))
		}
	}
	if _, err := parseRun([]string{"-e", "x", "-j", "0"}); err == nil || !strings.Contains(err.Error(), "--throttle 0") {
		t.Errorf("-j 0: %v; want the throttle's own error", err)
	}
}

// A flag that would do nothing for the run is a usage error.
func TestIgnoredFlagsAreErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--pull", "10"}, "--pull is for workers of a queue"},
		{[]string{"--consumer", "c"}, "--consumer is for workers of a queue"},
		{[]string{"--ack-wait", "5s"}, "--ack-wait is for workers of a queue"},
		{[]string{"--nats-creds", "f"}, "--nats-creds is for workers of a queue"},
		{[]string{"--retry-delay", "2s"}, "give --retries N too"},
	} {
		_, err := parseRun(append([]string{"-e", "x"}, tc.args...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.args, err, tc.want)
		}
	}
	if _, err := parseRun([]string{"-e", "x", "--retries", "1", "--retry-delay", "2s"}); err != nil {
		t.Errorf("--retries with --retry-delay: %v", err)
	}
}
