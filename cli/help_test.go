package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

var update = flag.Bool("update", false, "rewrite the README's flag tables from the flag definitions")

// helpedFlagSets are every flag set a command parses with and the
// sections its help lists them under.
func helpedFlagSets() map[string]struct {
	fs       *pflag.FlagSet
	sections []flagSection
} {
	type entry = struct {
		fs       *pflag.FlagSet
		sections []flagSection
	}
	m := map[string]entry{
		"run":   {newRunFlags(&runOptions{}), runSections},
		"serve": {newServeFlags(&serveOptions{}), serveSections},
	}
	var name string
	var noInput bool
	var conn jobConn
	start := newJobStartFlags(&runOptions{}, &name, &noInput, &conn)
	// Flags a job refuses are not listed for it; parsing refuses them by
	// name.
	for _, f := range jobRunOnly {
		start.Lookup(f).Hidden = true
	}
	m["job start"] = entry{start, append([]flagSection{{title: "Job", flags: []string{"name", "no-input"}}, jobConnSection}, withoutFlags(runSections, jobRunOnly)...)}
	return m
}

// Every flag a command parses is in its help, under a heading, and every
// flag its help lists exists.
func TestHelpListsEveryFlag(t *testing.T) {
	for name, e := range helpedFlagSets() {
		missing, unknown := unlisted(e.fs, e.sections)
		if len(missing) > 0 || len(unknown) > 0 {
			t.Errorf("%s: flags not in help: %v; in help but not flags: %v", name, missing, unknown)
		}
		e.fs.VisitAll(func(f *pflag.Flag) {
			if !f.Hidden && f.Name != "help" && f.Usage == "" {
				t.Errorf("%s --%s: no usage text", name, f.Name)
			}
		})
	}
}

// Every command and verb answers -h and --help on stdout with exit 0; a
// missing verb is a usage error that says so.
func TestEveryCommandHelps(t *testing.T) {
	var calls [][]string
	for _, c := range commands() {
		calls = append(calls, []string{c.name, "-h"}, []string{c.name, "--help"}, []string{"help", c.name})
	}
	for _, v := range jobVerbs {
		calls = append(calls, []string{"job", v.name, "-h"}, []string{"job", v.name, "--help"}, []string{"help", "job", v.name})
	}
	for _, v := range queueVerbs {
		calls = append(calls, []string{"queue", v.name, "-h"}, []string{"queue", v.name, "--help"}, []string{"help", "queue", v.name})
	}
	calls = append(calls, []string{"-h"}, []string{"--help"}, []string{"help"}, []string{"job"}, []string{"queue"})
	for _, args := range calls {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), args, Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
		if code != ExitOK || !strings.HasPrefix(stdout.String(), "usage: rsh") || stderr.Len() > 0 {
			t.Errorf("rsh %s: exit %d, stdout %.40q, stderr %q", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
	}
	for _, args := range [][]string{{"completion"}} {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), args, Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
		if code != ExitUsage || !strings.Contains(stderr.String(), "give ") {
			t.Errorf("rsh %s: exit %d, stderr %q: want 2 and what to give", args[0], code, stderr.String())
		}
	}
}

// A verb's help lists its own flags and where the daemon is, and job
// start's lists the run flags a job takes and not the others.
func TestVerbHelp(t *testing.T) {
	v, _ := lookupJobVerb("ls")
	ls := jobVerbHelp(v)
	for _, want := range []string{"usage: rsh job ls", "--state S", "--json", "--socket PATH", "RSH_SOCKET", "RSH_STATE"} {
		if !strings.Contains(ls, want) {
			t.Errorf("rsh job ls -h lacks %q:\n%s", want, ls)
		}
	}
	v, _ = lookupJobVerb("start")
	start := jobVerbHelp(v)
	for _, want := range []string{"--name NAME", "-n, --no-input", "-t, -j, --throttle N", "--halt"} {
		if !strings.Contains(start, want) {
			t.Errorf("rsh job start -h lacks %q", want)
		}
	}
	for _, f := range jobRunOnly {
		if strings.Contains(start, "--"+f+" ") || strings.Contains(start, "--"+f+"\n") {
			t.Errorf("rsh job start -h lists --%s, which a job refuses", f)
		}
	}
}

// The README's flag tables are what the flag definitions say. Run with
// -update to rewrite them.
func TestReadmeFlags(t *testing.T) {
	const path = "../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	sets := helpedFlagSets()
	for _, name := range []string{"run", "serve"} {
		e := sets[name]
		begin, end := "<!-- flags:"+name+" -->\n", "<!-- /flags:"+name+" -->"
		re := regexp.MustCompile("(?s)" + regexp.QuoteMeta(begin) + "(.*?)" + regexp.QuoteMeta(end))
		m := re.FindStringSubmatchIndex(readme)
		if m == nil {
			t.Errorf("README.md has no %s...%s", strings.TrimSpace(begin), end)
			continue
		}
		want := flagTable(e.fs, e.sections)
		if got := readme[m[2]:m[3]]; got != want {
			if *update {
				readme = readme[:m[2]] + want + readme[m[3]:]
				continue
			}
			t.Errorf("README.md's flags:%s table differs from the flags; run go test ./cli -run TestReadmeFlags -update", name)
		}
	}
	if *update && readme != string(data) {
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
