package cli

const mainUsage = `usage: rsh <command> [arguments]

rsh runs a JavaScript function over a stream of items, in parallel, in a
pool of isolated JavaScript runtimes ("runspaces").

Commands:
  run        run a script over items from files or stdin
  serve      run the job daemon (background jobs)
  job        start, list, wait for, receive, stop and remove background jobs
  queue      a work queue on NATS JetStream shared by workers on many machines
  version    print the version
  help       show help for a command: rsh help run

Examples:
  seq 1 100 | rsh run -e '(n) => n * n' --throttle 10
  rsh run examples/portscan.js --allow-net=127.0.0.1 --param ports='[22,80]' < hosts.txt
`

const runUsageLine = `usage: rsh run [flags] SCRIPT [FILE...]
       rsh run [flags] -e CODE [FILE...]`

const runUsage = runUsageLine + `

Run a script over items, one per input line, read from the FILEs (or stdin,
or "-"). The script is evaluated once per runspace and must produce a
function, called once per item as f(item, params):

  module.exports = function (item, params) { return item * 2 }
  (n) => n * n                        (the last expression, as -e usually is)

Output of an item: the values passed to emit(v), then the return value if it
is not undefined. An async function (or a returned Promise) is awaited.
Scripts also have writeError, writeWarning, writeVerbose, writeProgress,
console, sleep(ms), setTimeout/setInterval, require('fs'|'tcp'|'sleep').

Script:
  -e, --eval CODE           run CODE instead of a SCRIPT file
      --var NAME=VALUE      set a global variable in every runspace; VALUE is
                            JSON if it parses as JSON, else a string (repeatable)
      --vars FILE.json      set globals from a JSON object of NAME: VALUE
  -p, --param NAME=VALUE    add NAME to the params object passed to the
                            function, JSON or string as for --var (repeatable)
      --params FILE.json    params from a JSON object of NAME: VALUE (for
                            values too big for a command line); --param wins
  -m, --import NAME         bind a builtin module (fs, tcp, sleep) or a JS file
                            as a global; NAME=SPEC picks the global's name
      --module-path DIR     let require() load JS files from DIR too (by default
                            only from the script's own directory tree)

Pool:
  -t, --throttle N          most items running at once (default: CPUs)
      --min N               runspaces created before any input (default 0)
      --fresh               a new runspace per item: nothing survives between
                            items (slower); by default runspaces are reused
      --timeout DURATION    stop an item that runs longer (e.g. 500ms, 5s); an
                            item stuck in native code still gets its Timeout
                            result 1s later, and its runtime is abandoned
  -k, --keep-order          output in input order (bounded reorder window)

Input and output:
      --in FORMAT           auto: a JSON line is parsed, any other line is a
                            string, empty lines are skipped (default)
                            text: every line is a string
                            json: every line must be JSON (else InvalidInput)
                            csv:  the header row names the fields of objects
                            (names must differ); a line that is not UTF-8
                            is InvalidInput, never changed
      --max-line SIZE       longest input line (default 64MiB; e.g. 1MiB,
                            64KiB); a longer one is InvalidInput, skipped
                            without being held in memory
      --out FORMAT          values: one output value per line, strings as
                            they are, other values as JSON (default)
                            json: every output value as JSON
                            records: one JSON record per item with its input,
                            output, status, streams and timing
  -v, --verbose             also show verbose messages and exception stacks
  -q, --quiet               hide information and warning messages
      --batch-size N        pass the function arrays of up to N consecutive
                            items (one call per batch); records carry the
                            batch's first seq and batchSize

Long runs:
      --progress            a progress bar on stderr: done/total, rate, ETA,
                            items running, failures, the last writeProgress
                            status (default:
                            on when stderr is a terminal; --progress=false)
      --total N             the number of items, for the bar, when it cannot
                            be counted up front (stdin)
      --summary             print counts, success rate, rate and item
                            durations (p50/p95/max) to stderr
      --summary-json FILE   write the same summary as JSON
      --joblog FILE         append one JSON line per finished item: seq,
                            input hash, status, attempts, duration, start;
                            written only after the item's output (resuming
                            into the same >> file first removes output a
                            killed run wrote but never logged)
      --resume              with --joblog: skip items that already
                            succeeded in the log (a success counts for the
                            item at its seq if the input there is the same,
                            else for the next occurrence of its input; an
                            input that appears k times runs until it has k
                            successes); run the rest under their seqs
      --resume-failed       with --joblog: run only the items that are in
                            the log without having succeeded
      --retries N           run an item that threw or timed out again, up
                            to N more times
      --retry-delay D       wait before the first retry, doubling after
                            each (default 1s)
      --halt WHEN[,fail=N|fail=P%]
                            stop after failures: soon starts no new items,
                            now also interrupts running ones (default never;
                            fail=1 when no threshold is given)
      --grace D             after the first Ctrl-C, how long running items
                            may take to finish before they are stopped
                            (default 5s); a second Ctrl-C stops them at once

Several machines (see "Spreading a run over machines" in the README):
      --shard I/N           run only the items whose input hash falls in
                            shard I of N (0 to N-1): N runs over the same
                            input run every item once between them, in any
                            input order; items keep their seqs in the whole
                            input, so --joblog and --resume work per shard;
                            --batch-size batches the shard's own items
      --shard auto[/N]      take I (and N) from the environment: RSH_SHARD
                            (I or I/N); JOB_COMPLETION_INDEX (a Kubernetes
                            Indexed Job: give /N); SLURM_ARRAY_TASK_ID with
                            _MIN, _MAX, _STEP and _COUNT (a Slurm array
                            MIN-MAX[:STEP]: I and N); PARALLEL_SEQ (GNU
                            parallel, from 1: give /N); all that are set
                            must agree

Containment (goja cannot bound a script's memory; processes can):
      --isolate MODE        none: runspaces are goroutines of this process
                            (default, fastest); process: they live in worker
                            processes (rsh re-executed) that are killed and
                            replaced when an item exhausts memory, crashes or
                            is stuck, without losing any other item
      --max-memory SIZE     bound each worker process (e.g. 512MiB, 2GiB;
                            implies --isolate process); an item that passes
                            it, again when run alone, ends as MemoryLimit
      --workers N           worker processes (default: min(throttle, CPUs));
                            the throttle's runspaces are spread over them

Limits per item (an item that crosses one ends as an Exception; 0: none):
      --max-output SIZE     total size of an item's output values, as JSON
                            (default 64MiB; SIZE like 512KiB, 1GiB)
      --max-output-values N most output values (emit and return) of an item
                            (default 1000000)
      --max-messages N      most messages an item writes to each stream:
                            errors, warnings, verbose, console, progress
                            (default 10000)
      --max-timers N        most timers an item has pending at once
                            (default 10000)

A shared queue on NATS JetStream (see 'rsh help queue'):
      --from URL            take items from the queue at URL
                            (nats://HOST:PORT/NAME), shared with any number
                            of other workers, instead of FILEs or stdin
      --to URL              store each result there (nats://HOST:PORT/NAME);
                            an item is acknowledged only once its result is
                            stored, and a result is stored once however often
                            its item is delivered
      --pull N              items fetched per request (default: the
                            throttle); a worker holds what it runs plus up
                            to two pulls. For items far faster than a round
                            trip to the server, --pull 300 runs ~15x faster
      --consumer NAME       the queue's consumer the workers share (default
                            rsh)
      --max-deliver N       deliveries before an item that kills its workers
                            is set aside with status Abandoned (default 5)
      --ack-wait D          how long the queue waits on a silent worker
                            before it hands its items to another (default 30s)
      --idle-exit D         end (exit 0) once no item has come for D: the
                            queue ran dry (default: wait for items for ever)
      --nats-creds, --nats-nkey, --nats-token-file, --nats-ca, --nats-cert,
      --nats-key FILE       credentials and TLS, as for 'rsh queue'
  The first Ctrl-C lets running items finish within --grace, stores their
  results and hands back the items fetched but not started.

Permissions (everything is denied unless allowed):
      --allow-net[=HOST,...]    network; HOST is a name, IP, CIDR or HOST:PORT
      --allow-read[=PATH,...]   reading files under PATHs
      --allow-write[=PATH,...]  writing files under PATHs
  -A, --allow-all               all of the above
  Paths are resolved, symlinks included, before they are checked. Give lists
  with "=": "--allow-read ." allows every file and reads "." as the script
  or an input FILE (rsh warns when the word after a bare flag is a file).
  IPv6 zones are strict: an entry without a zone allows no address with one.

Statuses of an item: Success, Error (writeError was called), Exception (it
threw), Timeout, Stopped (the run was interrupted), InvalidInput, MemoryLimit
(its worker passed --max-memory), Abandoned (a shared queue gave up on it
after --max-deliver deliveries that each ended in its worker's death).

Exit status: 0 every item succeeded, 1 some item did not (or --halt
stopped the run, or the output, job log or summary could not be written),
2 usage error or the script failed to compile or initialise, 130
interrupted by SIGINT or SIGTERM, 141 the reader of stdout went away.

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
