package cli

import (
	"context"
	"fmt"
	"strings"
)

// command is one of rsh's commands: its name, a line for `rsh help`, what
// it does, and its help.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, env Env) int
	help          func() string
}

// commands are rsh's commands, in the order `rsh help` lists them. A
// function, not a variable: help and completion read it, and a package
// variable that refers to them would make an initialisation cycle.
func commands() []command {
	return []command{
		{"run", "run a script over items from files or stdin", runCommand, runHelp},
		{"serve", "run the job daemon (background jobs)", serveCommand, serveHelp},
		{"job", "start, list, wait for, receive, stop and remove background jobs", jobCommand, jobHelp},
		{"queue", "a work queue on NATS JetStream shared by workers on many machines", queueCommand, queueHelp},
		{"completion", "print a completion script for bash, zsh or fish", completionCommand, completionHelp},
		{"version", "print the version (also rsh --version, rsh -v)", versionCommand, versionHelp},
		{"help", "show help for a command: rsh help run, rsh help job ls", helpCommand, mainHelp},
	}
}

// lookupCommand returns the command called name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

const mainIntro = `usage: rsh <command> [arguments]

rsh runs a JavaScript function over a stream of items, in parallel, in a
pool of isolated JavaScript runtimes ("runspaces").
`

const mainTrailer = `Every command answers -h or --help.

Examples:
  seq 1 100 | rsh run -e '(n) => n * n' --throttle 10
  rsh run examples/portscan.js --allow-net=127.0.0.1 --param ports='[22,80]' < hosts.txt
`

// mainHelp is `rsh --help`.
func mainHelp() string {
	var b strings.Builder
	b.WriteString(mainIntro + "\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-11s %s\n", c.name, c.summary)
	}
	b.WriteString("\n" + mainTrailer)
	return b.String()
}

// dispatch runs the command args name; see Main.
func dispatch(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, mainHelp())
		return ExitUsage
	}
	switch args[0] {
	case "-h", "--help":
		return helpCommand(ctx, args[1:], env)
	case "-v", "--version":
		// -v is --verbose only after a command (rsh run -v); alone it
		// can mean nothing but the version.
		return versionCommand(ctx, args[1:], env)
	}
	c, ok := lookupCommand(args[0])
	if !ok {
		fmt.Fprintf(env.Stderr, "rsh %s: unknown command\nRun 'rsh help' for usage.\n", args[0])
		return ExitUsage
	}
	return c.run(ctx, args[1:], env)
}

// helpCommand is `rsh help [COMMAND [VERB]]`.
func helpCommand(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.Stdout, mainHelp())
		return ExitOK
	}
	c, ok := lookupCommand(args[0])
	if !ok {
		fmt.Fprintf(env.Stderr, "rsh help %s: unknown command\nRun 'rsh help' for usage.\n", args[0])
		return ExitUsage
	}
	if len(args) > 1 {
		var v jobVerb
		switch c.name {
		case "job":
			v, ok = lookupJobVerb(args[1])
			if ok {
				fmt.Fprint(env.Stdout, jobVerbHelp(v))
				return ExitOK
			}
		case "queue":
			v, ok = lookupQueueVerb(args[1])
			if ok {
				fmt.Fprint(env.Stdout, queueVerbHelp(v))
				return ExitOK
			}
		}
		fmt.Fprintf(env.Stderr, "rsh help %s: unknown command\nRun 'rsh help %s' for usage.\n", strings.Join(args, " "), c.name)
		return ExitUsage
	}
	fmt.Fprint(env.Stdout, c.help())
	return ExitOK
}

const versionUsage = `usage: rsh version

Print rsh's version (the module version of 'go install ...@VERSION', else
one given to the linker with -ldflags "-X
github.com/runspaces/rsh/cli.linkVersion=V", else the VCS revision of the
checkout it was built from, -dirty when that had changes, else "devel"),
the Go that built it, and its platform. rsh --version and rsh -v say the
same.
`

func versionHelp() string { return versionUsage }

// versionCommand is `rsh version`.
func versionCommand(_ context.Context, args []string, env Env) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" {
			fmt.Fprint(env.Stdout, versionUsage)
			return ExitOK
		}
		fmt.Fprintf(env.Stderr, "rsh version: unexpected argument %q\nusage: rsh version\n", args[0])
		return ExitUsage
	}
	fmt.Fprintln(env.Stdout, versionLine())
	return ExitOK
}
