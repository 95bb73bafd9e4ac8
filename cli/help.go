package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// A command's help is its prose around its flags, and the flags are
// written from their pflag definitions (the usage string, with the value's
// name in backquotes as pflag's UnquoteUsage reads it, and the default),
// grouped under the headings of a flagSection table. The README's flag
// tables are written from the same definitions (TestReadmeFlags), so
// neither can drift from what the parser accepts.

// Flag annotations the help reads.
const (
	// annDefault is the default as help shows it, for a flag whose
	// DefValue depends on the machine (the CPUs) or says nothing useful;
	// an empty value shows none.
	annDefault = "rsh-default"
	// annAliasOf marks a hidden flag as another spelling of the named
	// flag: help lists its shorthand with that flag's names.
	annAliasOf = "rsh-alias-of"
)

// showDefault sets the default that help shows for flag name.
func showDefault(fs *pflag.FlagSet, name, text string) {
	_ = fs.SetAnnotation(name, annDefault, []string{text})
}

// flagSection is a heading of a command's help and the flags under it.
type flagSection struct {
	title string   // "Script", without the colon
	flags []string // long names, in the order listed
	note  string   // said after the flags, indented by two spaces
}

// Layout of the flag lines: descriptions start at helpColumn, and lines
// end before helpWidth, so help fits an 80-column terminal.
const (
	helpColumn = 28
	helpWidth  = 80
)

// flagNames is how a flag is written in help: "-t, -j, --throttle N",
// "    --allow-read[=PATH,...]".
func flagNames(fs *pflag.FlagSet, f *pflag.Flag) string {
	var b strings.Builder
	shorts := []string{}
	if f.Shorthand != "" {
		shorts = append(shorts, "-"+f.Shorthand)
	}
	fs.VisitAll(func(a *pflag.Flag) {
		if to := a.Annotations[annAliasOf]; len(to) == 1 && to[0] == f.Name && a.Shorthand != "" {
			shorts = append(shorts, "-"+a.Shorthand)
		}
	})
	if len(shorts) == 0 {
		b.WriteString("    ")
	}
	for _, s := range shorts {
		b.WriteString(s + ", ")
	}
	b.WriteString("--" + f.Name)
	name, _ := pflag.UnquoteUsage(f)
	switch {
	case name == "":
	case f.NoOptDefVal != "":
		b.WriteString("[=" + name + "]")
	default:
		b.WriteString(" " + name)
	}
	return b.String()
}

// flagDefault is the default help shows for f, "" for none: a zero value
// says nothing.
func flagDefault(f *pflag.Flag) string {
	if d, ok := f.Annotations[annDefault]; ok {
		return d[0]
	}
	switch f.DefValue {
	case "", "0", "false", "[]", "0s":
		return ""
	}
	return f.DefValue
}

// flagText is f's description: its usage without the backquotes, and its
// default. Lines of the usage stay lines.
func flagText(f *pflag.Flag) string {
	_, usage := pflag.UnquoteUsage(f)
	if d := flagDefault(f); d != "" {
		usage += " (default " + d + ")"
	}
	return usage
}

// wrap fills text's lines to width, each word kept whole.
func wrap(text string, width int) []string {
	var out []string
	for _, para := range strings.Split(text, "\n") {
		line := ""
		for _, w := range strings.Fields(para) {
			if line != "" && len(line)+1+len(w) > width {
				out = append(out, line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		out = append(out, line)
	}
	return out
}

// formatFlags writes the sections of fs's flags for --help. A flag that
// fs lacks is left out (job start lists the run flags it takes).
func formatFlags(fs *pflag.FlagSet, sections []flagSection) string {
	var b strings.Builder
	for i, s := range sections {
		var lines []string
		for _, name := range s.flags {
			f := fs.Lookup(name)
			if f == nil || f.Hidden {
				continue
			}
			names := "  " + flagNames(fs, f)
			text := wrap(flagText(f), helpWidth-helpColumn-1)
			pad := strings.Repeat(" ", helpColumn)
			if len(names) < helpColumn-1 {
				lines = append(lines, names+pad[len(names):]+text[0])
				text = text[1:]
			} else {
				lines = append(lines, names)
			}
			for _, t := range text {
				lines = append(lines, pad+t)
			}
		}
		if len(lines) == 0 {
			continue
		}
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(s.title + ":\n")
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		if s.note != "" {
			for _, l := range wrap(s.note, helpWidth-3) {
				b.WriteString("  " + l + "\n")
			}
		}
	}
	return b.String()
}

// unlisted returns the flags of fs that help does not list in sections
// (help itself and hidden aliases aside), and the names sections list
// that fs lacks: a test keeps both empty.
func unlisted(fs *pflag.FlagSet, sections []flagSection) (missing, unknown []string) {
	listed := map[string]bool{}
	for _, s := range sections {
		for _, n := range s.flags {
			listed[n] = true
			if fs.Lookup(n) == nil {
				unknown = append(unknown, n)
			}
		}
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if !listed[f.Name] && f.Name != "help" && !f.Hidden {
			missing = append(missing, f.Name)
		}
	})
	return missing, unknown
}

// flagTable is a Markdown table of the sections of fs's flags, for the
// README: one row a flag, its description on one line.
func flagTable(fs *pflag.FlagSet, sections []flagSection) string {
	var b strings.Builder
	b.WriteString("| flag | what it does |\n|---|---|\n")
	for _, s := range sections {
		fmt.Fprintf(&b, "| **%s** | |\n", s.title)
		for _, name := range s.flags {
			f := fs.Lookup(name)
			if f == nil || f.Hidden {
				continue
			}
			names := strings.TrimSpace(flagNames(fs, f))
			text := strings.Join(strings.Fields(flagText(f)), " ")
			text = strings.ReplaceAll(text, "|", `\|`)
			fmt.Fprintf(&b, "| `%s` | %s |\n", names, text)
		}
	}
	return b.String()
}

// withoutFlags returns sections without the named flags.
func withoutFlags(sections []flagSection, drop []string) []flagSection {
	out := make([]flagSection, 0, len(sections))
	for _, s := range sections {
		s.flags = slices.DeleteFunc(slices.Clone(s.flags), func(n string) bool { return slices.Contains(drop, n) })
		out = append(out, s)
	}
	return out
}

const runUsageLine = `usage: rsh run [flags] SCRIPT [FILE...]
       rsh run [flags] -e CODE [FILE...]`

const runIntro = `Run a script over items, one per input line, read from the FILEs (or stdin,
or "-"). The script is evaluated once per runspace and must produce a
function, called once per item as f(item, params):

  module.exports = function (item, params) { return item * 2 }
  (n) => n * n                        (the last expression, as -e usually is)

Output of an item: the values passed to emit(v), then the return value if it
is not undefined. An async function (or a returned Promise) is awaited.
Scripts also have writeError, writeWarning, writeVerbose, writeProgress,
console, sleep(ms), setTimeout/setInterval, require('fs'|'tcp'|'sleep').
`

// runSections are the headings of `rsh run --help` (and, less the flags a
// job does not take, of `rsh job start --help`).
var runSections = []flagSection{
	{title: "Script", flags: []string{"eval", "var", "vars", "param", "params", "import", "module-path"}},
	{title: "Pool", flags: []string{"throttle", "min", "fresh", "timeout", "keep-order"}},
	{title: "Input and output", flags: []string{"in", "max-line", "out", "verbose", "quiet", "batch-size"}},
	{title: "Long runs", flags: []string{"progress", "total", "summary", "summary-json", "joblog", "resume", "resume-failed", "retries", "retry-delay", "halt", "grace"}},
	{title: `Several machines (see "Spreading a run over machines" in the README)`, flags: []string{"shard"}},
	{title: "Containment (goja cannot bound a script's memory; processes can)", flags: []string{"isolate", "max-memory", "workers"}},
	{title: "Limits per item (an item that crosses one ends as an Exception; 0: none)", flags: []string{"max-output", "max-output-values", "max-messages", "max-timers"}},
	{title: "A shared queue on NATS JetStream (see 'rsh help queue')", flags: []string{"from", "to", "pull", "consumer", "max-deliver", "ack-wait", "idle-exit", "nats-creds", "nats-nkey", "nats-token-file", "nats-ca", "nats-cert", "nats-key"},
		note: "The first Ctrl-C lets running items finish within --grace, stores their results and hands back the items fetched but not started."},
	{title: "Permissions (everything is denied unless allowed)", flags: []string{"allow-net", "allow-read", "allow-write", "allow-all"},
		note: `Paths are resolved, symlinks included, before they are checked. Give lists with "=": "--allow-read ." allows every file and reads "." as the script or an input FILE (rsh warns when the word after a bare flag is a file, and says so when that word then fails as the script or an input). IPv6 zones are strict: an entry without a zone allows no address with one.`},
}

const runTrailer = `Statuses of an item: Success, Error (writeError was called), Exception (it
threw), Timeout, Stopped (the run was interrupted), InvalidInput, MemoryLimit
(its worker passed --max-memory), Abandoned (a shared queue gave up on it
after --max-deliver deliveries that each ended in its worker's death).

Exit status: 0 every item succeeded (or --halt success= or done= stopped
the run), 1 some item did not (or --halt fail= stopped the run, or the
output, job log or summary could not be written), 2 usage error or the
script failed to compile or initialise, 130 interrupted by SIGINT or
SIGTERM, 141 the reader of stdout went away.

Examples:
  seq 1 100 | rsh run -e '(n) => n * n' --throttle 10
  seq 1 10000 | rsh run examples/batch.js --batch-size 100 -t 4 --summary
  rsh run job.js big.txt --joblog job.log --retries 2   # ...and after a crash:
  rsh run job.js big.txt --joblog job.log --resume
  rsh run examples/filesizes.js --allow-read=. <<< '"."'
  rsh run -e 'async (u) => { await sleep(100); return u }' -t 100 urls.txt
  rsh run untrusted.js --max-memory 512MiB --timeout 10s items.txt
  rsh run job.js items.txt --shard 0/3 --joblog job-0.log   # and 1/3, 2/3 elsewhere
`

// runHelp is `rsh run --help`.
func runHelp() string {
	return runUsageLine + "\n\n" + runIntro + "\n" + formatFlags(newRunFlags(&runOptions{}), runSections) + "\n" + runTrailer
}
