// Command faults is the Go half of scripts/faults.sh, rsh's fault suite.
// It has these subcommands:
//
//	faults rounds -rsh BIN -script item.js -dir DIR [-n N] [-seed S]
//	faults records FILE
//	faults daemon -rsh BIN -script jobitem.js -dir DIR [-n N] [-seed S]
//	faults daemon-disk -rsh BIN -script jobitem.js -dir DIR -state MNT
//	faults daemon-devfull -rsh BIN -script jobitem.js -dir DIR
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
//
// daemon runs N kill/resume rounds of the job daemon (jobround.go). Each
// round starts `rsh serve` on its own state directory and socket, submits
// one job of 200 to 2000 items (-t 1..8, and at random --batch-size 7,
// --max-memory 256MiB, --retries 1 with items that fail at every attempt,
// or the input written by a slow generator while the daemon is killed),
// SIGKILLs the daemon one to three times at random moments, checks each
// time that its job processes and their workers end with it, and starts
// it again. Then it waits for the job, receives its results (killing the
// first receive part way in some rounds) and checks:
//
//   - every item that reached the job (all of them, unless the daemon died
//     while the input was sent: then a prefix, and the job is Failed for
//     its input) has exactly one record in the committed part of the job's
//     results.ndjson, under its seq, with the status jobitem.js gives it;
//   - the daemon never hands out more results than the job log claims;
//   - the state, wait's exit status, done and failed, and "resumed" equal
//     to the kills that found the job Running on file;
//   - the receives give every record at least once, exactly once unless
//     one was killed, and the job counts them all received.
//
// daemon-disk fills the daemon's state directory, a 2 MiB file system the
// caller mounted, with a job's results, in two ways (jobdisk.go): the job
// must end Failed for want of space and wait exit 3, the daemon must go
// on serving and start again on the full disk and once space is freed,
// and what the job then hands out must be claimed and whole.
// daemon-devfull receives a job's results to /dev/full: the receive exits
// non-zero, counts nothing received, and the next receive gets them all.
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
