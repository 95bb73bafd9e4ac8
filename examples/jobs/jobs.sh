#!/usr/bin/env bash
# jobs.sh — the seed's Test-RunspaceJobManager from the shell: a daemon,
# three jobs started together (a long sleep, a CPU job, a file-system job),
# one waited for by name with a timeout, then all, then a table.
#
#   examples/jobs/jobs.sh [DIR [LIMIT]]      (rsh must be on PATH)
#
# DIR is the tree the file-system job sums (default .); LIMIT is how far
# the CPU job counts primes (default 200000).
set -euo pipefail
dir=$(cd "${1:-.}" && pwd)
limit=${2:-200000}
work=$(mktemp -d)
# RSH_SOCKET and RSH_STATE tell every rsh command where the daemon and
# its state are (the defaults of --socket and --state).
export RSH_SOCKET=$work/rsh.sock RSH_STATE=$work/state
trap 'kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; rm -rf "$work"' EXIT

rsh serve --max-jobs 3 --allow-read="$dir" 2>"$work/serve.log" &
daemon=$!
for _ in $(seq 100); do rsh job ls >/dev/null 2>&1 && break; sleep 0.05; done

rsh job start -n --name sleeper -p ms=1500 -e '(x, p) => { sleep(p.ms); return "slept " + p.ms + " ms" }'
rsh job start -n --name cpu -p limit="$limit" -e '(x, p) => {
  let count = 0;
  for (let n = 2; n < p.limit; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) if (n % d === 0) { prime = false; break; }
    if (prime) count++;
  }
  return count + " primes below " + p.limit;
}'
rsh job start -n --name files --allow-read="$dir" -p dir="\"$dir\"" -e '(x, p) => {
  const entries = require("fs").walk(p.dir);
  return entries.length - 1 + " entries, " + entries[0].size + " bytes under " + p.dir;
}'

if rsh job wait cpu --timeout 10s; then echo "cpu finished first"; fi
for job in sleeper cpu files; do rsh job wait "$job" --timeout 60s >/dev/null; done
rsh job ls
for job in sleeper cpu files; do echo "$job: $(rsh job receive "$job")"; done
