// Command faults is the Go half of scripts/faults.sh, rsh's fault suite.
// It has two subcommands:
//
//	faults rounds -rsh BIN -script item.js -dir DIR [-n N] [-seed S]
//	faults records FILE
//
// rounds runs N kill/resume rounds. Each round writes an input of a few
// hundred lines (repeated lines among them), picks a variant (-t 1..8, and
// at random -k, --batch-size 7, --retries 2 with a script that fails first
// attempts, --max-memory 256MiB, --out records), then runs rsh over it with
// --joblog and its stdout appended to one file, SIGKILLs it at a random
// moment of the run (in --max-memory rounds sometimes one of its worker
// processes instead), and runs it again with --resume until a run ends by
// itself with success. Then it checks what a user would rely on:
//
//   - every input line has exactly one output: none lost, none duplicated,
//     none garbled (an input that appears k times has k outputs);
//   - with --out records, each record's seq is the position of its input;
//   - the job log claims success exactly once for every input (compared
//     with the log of an uninterrupted reference run), under the seq of
//     the input's position, and has no garbled lines;
//   - no worker process outlives the rsh that started it.
//
// It prints one PASS or FAIL line per round and exits 1 if a round failed.
// A round's files (input, output, job log, stderr, and commands.txt with
// every command run, when it was killed and how it ended) stay in
// DIR/round-SEED when it fails.
//
// records prints the records of an --out records file, one per line as
// "seq status input", in seq order, for the shell half to compare.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: faults rounds|records|daemon|daemon-disk|daemon-devfull ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "rounds":
		os.Exit(roundsCommand(os.Args[2:]))
	case "records":
		os.Exit(recordsCommand(os.Args[2:]))
	case "daemon":
		os.Exit(daemonRoundsCommand(os.Args[2:]))
	case "daemon-disk":
		os.Exit(daemonDiskCommand(os.Args[2:]))
	case "daemon-devfull":
		os.Exit(devFullCommand(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "faults: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
