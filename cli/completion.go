package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

const completionUsage = `usage: rsh completion bash|zsh|fish

Print a script that completes rsh's commands, verbs and flags in a shell,
written from the same flag definitions rsh parses with. To use it:

  bash:  source <(rsh completion bash)     (in ~/.bashrc)
  zsh:   source <(rsh completion zsh)      (in ~/.zshrc, after compinit)
  fish:  rsh completion fish > ~/.config/fish/completions/rsh.fish
`

func completionHelp() string { return completionUsage }

// completionCommand is `rsh completion SHELL`.
func completionCommand(_ context.Context, args []string, env Env) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(env.Stdout, completionUsage)
		return ExitOK
	}
	if len(args) != 1 {
		fmt.Fprintf(env.Stderr, "rsh completion: give one shell: bash, zsh or fish\nusage: rsh completion bash|zsh|fish\n")
		return ExitUsage
	}
	var script string
	switch args[0] {
	case "bash":
		script = bashCompletion(completionTree())
	case "zsh":
		script = zshCompletion(completionTree())
	case "fish":
		script = fishCompletion(completionTree())
	default:
		fmt.Fprintf(env.Stderr, "rsh completion %s: want bash, zsh or fish\n", args[0])
		return ExitUsage
	}
	fmt.Fprint(env.Stdout, script)
	return ExitOK
}

// compNode is a place in rsh's command line that completes: a command or
// a command's verb, the words that may follow it (its verbs), and its
// flags.
type compNode struct {
	cmd, verb string
	subs      []jobVerb // name and summary of each word that may follow
	flags     []*pflag.Flag
}

// visible returns the flags of fs a user may write, aliases included, in
// their definition order.
func visible(fs *pflag.FlagSet, drop []string) []*pflag.Flag {
	var out []*pflag.Flag
	fs.VisitAll(func(f *pflag.Flag) {
		if !slices.Contains(drop, f.Name) {
			out = append(out, f)
		}
	})
	return out
}

// completionTree is every place that completes, from the command table
// and the flag sets the commands parse with.
func completionTree() []compNode {
	var top compNode
	for _, c := range commands() {
		top.subs = append(top.subs, jobVerb{name: c.name, summary: c.summary})
	}
	fs := pflag.NewFlagSet("rsh", pflag.ContinueOnError)
	fs.BoolP("help", "h", false, "show help")
	fs.BoolP("version", "v", false, "print the version")
	top.flags = visible(fs, nil)
	nodes := []compNode{top}

	nodes = append(nodes, compNode{cmd: "run", flags: visible(newRunFlags(&runOptions{}), nil)})
	nodes = append(nodes, compNode{cmd: "serve", flags: visible(newServeFlags(&serveOptions{}), nil)})
	help := pflag.NewFlagSet("help", pflag.ContinueOnError)
	help.BoolP("help", "h", false, "show help")
	helpFlags := visible(help, nil)
	nodes = append(nodes, compNode{cmd: "job", subs: jobVerbs, flags: helpFlags})
	for _, v := range jobVerbs {
		var fs *pflag.FlagSet
		if v.name == "start" {
			var name string
			var noInput bool
			var conn jobConn
			fs = newJobStartFlags(&runOptions{}, &name, &noInput, &conn)
			nodes = append(nodes, compNode{cmd: "job", verb: v.name, flags: visible(fs, jobRunOnly)})
			continue
		}
		fs = newJobFlags(v.name, &jobArgs{})
		nodes = append(nodes, compNode{cmd: "job", verb: v.name, flags: visible(fs, nil)})
	}
	nodes = append(nodes, compNode{cmd: "queue", subs: queueVerbs, flags: helpFlags})
	for _, v := range queueVerbs {
		nodes = append(nodes, compNode{cmd: "queue", verb: v.name, flags: visible(newQueueFlags(v.name, &queueArgs{}), nil)})
	}
	shells := []jobVerb{{name: "bash"}, {name: "zsh"}, {name: "fish"}}
	nodes = append(nodes, compNode{cmd: "completion", subs: shells, flags: helpFlags})
	nodes = append(nodes, compNode{cmd: "version", flags: helpFlags})
	nodes = append(nodes, compNode{cmd: "help", subs: top.subs})
	return nodes
}

// flagWords are the spellings of flags: --name and -x.
func flagWords(flags []*pflag.Flag) []string {
	var w []string
	for _, f := range flags {
		w = append(w, "--"+f.Name)
		if f.Shorthand != "" {
			w = append(w, "-"+f.Shorthand)
		}
	}
	return w
}

func subNames(subs []jobVerb) []string {
	var w []string
	for _, s := range subs {
		w = append(w, s.name)
	}
	return w
}

// hasVerbs are the commands whose first word is a verb.
const hasVerbs = "job|queue|help|completion"

func bashCompletion(nodes []compNode) string {
	var b strings.Builder
	b.WriteString(`# bash completion for rsh, written by 'rsh completion bash'.
_rsh() {
    local cur=${COMP_WORDS[COMP_CWORD]} cmd= verb= w i
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        [[ $w == -* ]] && continue
        if [[ -z $cmd ]]; then
            cmd=$w
        elif [[ -z $verb ]]; then
            case $cmd in ` + hasVerbs + `) verb=$w ;; esac
        fi
    done
    local flags= subs=
    case "$cmd/$verb" in
`)
	for _, n := range nodes {
		fmt.Fprintf(&b, "    %q)\n        flags=%q\n        subs=%q ;;\n", n.cmd+"/"+n.verb, strings.Join(flagWords(n.flags), " "), strings.Join(subNames(n.subs), " "))
	}
	b.WriteString(`    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ -n $subs ]]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    fi
}
complete -o default -F _rsh rsh
`)
	return b.String()
}

func zshCompletion(nodes []compNode) string {
	var b strings.Builder
	b.WriteString(`#compdef rsh
# zsh completion for rsh, written by 'rsh completion zsh'.
_rsh() {
    local cmd= verb= w
    local -a flags subs
    for w in ${words[2,CURRENT-1]}; do
        [[ $w == -* ]] && continue
        if [[ -z $cmd ]]; then
            cmd=$w
        elif [[ -z $verb ]]; then
            case $cmd in ` + hasVerbs + `) verb=$w ;; esac
        fi
    done
    case "$cmd/$verb" in
`)
	quote := func(ws []string) string {
		q := make([]string, len(ws))
		for i, w := range ws {
			q[i] = "'" + w + "'"
		}
		return strings.Join(q, " ")
	}
	for _, n := range nodes {
		fmt.Fprintf(&b, "    %q)\n        flags=(%s)\n        subs=(%s) ;;\n", n.cmd+"/"+n.verb, quote(flagWords(n.flags)), quote(subNames(n.subs)))
	}
	b.WriteString(`    esac
    if [[ $PREFIX == -* ]]; then
        compadd -- $flags
    elif (( $#subs )); then
        compadd -- $subs
    else
        _files
    fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _rsh "$@"
else
    compdef _rsh rsh
fi
`)
	return b.String()
}

// fishDescription is the first clause of a flag's help, for fish's list.
func fishDescription(s string) string {
	_, s = "", strings.SplitN(s, "\n", 2)[0]
	if i := strings.IndexAny(s, ";:("); i > 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	return strings.ReplaceAll(s, "'", `\'`)
}

func fishCompletion(nodes []compNode) string {
	var b strings.Builder
	b.WriteString("# fish completion for rsh, written by 'rsh completion fish'.\n")
	// cond is the condition under which node n's words complete: its
	// command (not a verb of another command with the same name) and its
	// verb were given, and no verb yet when it has verbs.
	var parents []string
	for _, n := range nodes {
		if n.cmd != "" && n.verb == "" && len(n.subs) > 0 {
			parents = append(parents, n.cmd)
		}
	}
	cond := func(n compNode) string {
		if n.cmd == "" {
			return "__fish_use_subcommand"
		}
		c := "__fish_seen_subcommand_from " + n.cmd
		if n.verb != "" {
			return c + "; and __fish_seen_subcommand_from " + n.verb
		}
		for _, p := range parents {
			if p != n.cmd {
				c += "; and not __fish_seen_subcommand_from " + p
			}
		}
		if len(n.subs) > 0 {
			c += "; and not __fish_seen_subcommand_from " + strings.Join(subNames(n.subs), " ")
		}
		return c
	}
	for _, n := range nodes {
		c := cond(n)
		for _, s := range n.subs {
			fmt.Fprintf(&b, "complete -c rsh -f -n '%s' -a %s -d '%s'\n", c, s.name, fishDescription(s.summary))
		}
		for _, f := range n.flags {
			line := fmt.Sprintf("complete -c rsh -n '%s' -l %s", c, f.Name)
			if f.Shorthand != "" {
				line += " -s " + f.Shorthand
			}
			if name, _ := pflag.UnquoteUsage(f); name != "" && f.NoOptDefVal == "" {
				line += " -r"
			}
			fmt.Fprintf(&b, "%s -d '%s'\n", line, fishDescription(f.Usage))
		}
	}
	return b.String()
}
