// Command rsh runs JavaScript script blocks over streams of items, in
// parallel, in a pool of isolated JavaScript runtimes.
//
//	seq 1 100 | rsh run -e '(n) => n * n' --throttle 10
//
// Run `rsh help run` for the flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/runspaces/rsh/cli"
)

func main() {
	os.Exit(run())
}

func run() int {
	// The first SIGINT or SIGTERM cancels the run: running items are
	// interrupted and reported Stopped. After that the default action is
	// restored, so a second signal kills the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	defer stop()
	env := cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	env.StdinIsTerminal = term.IsTerminal(int(os.Stdin.Fd()))
	return cli.Main(ctx, os.Args[1:], env)
}
