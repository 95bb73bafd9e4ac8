#!/usr/bin/env bash
# bench-queue.sh — items/s through the shared work queue (rsh queue, NATS
# JetStream), for 1, 2 and 3 worker processes, two workloads and several
# pull sizes, next to the same items run by one `rsh run` from a file. It
# reports; it does not assert (exit 0 whatever the numbers, non-zero only
# if the benchmark itself could not run, or a point lost or doubled items).
#
#   scripts/bench-queue.sh             # N = 200000 trivial items per point: ~2 min on 2 cores
#   scripts/bench-queue.sh --quick     # N = 20000: a ~40 s smoke run
#   scripts/bench-queue.sh 400000      # another N
#
# It builds rsh and scripts/benchqueue (the Go half: starts the workers
# of a point together, polls the results' count, reads their rusage and
# the server's /proc/PID/stat) into a temporary folder, starts
# `rsh queue serve --store TMP/store --listen 127.0.0.1:PORT` on a port
# that was free, and measures, one point after the other:
#
#   single   rsh run -e SCRIPT -t T FILE (no queue), median of 3 runs
#   queue    rsh queue put URL/Pi FILE, then K workers started together:
#            rsh run -e SCRIPT -t T [--pull P] --from URL/Pi --to URL/Pi_RESULTS --idle-exit 1s
#
# for the workloads
#
#   trivial  (n) => n * n over 1..N: single process at -t nproc and -t 1000;
#            1, 2 and 3 workers at -t 1000; --pull 100, 300 and 1000 at
#            the best of those worker counts; 1 worker at -t nproc (N/10)
#   1ms      async (n) => { await sleep(1); return n } over 1..N/4, -t 100:
#            single process; 1, 2 and 3 workers
#
# The CLI passes a worker's throttle to the queue as the most items it
# holds, and a pull never asks for more: at -t nproc a worker pulls nproc
# items at a time. -t 1000 is the smallest throttle under which every
# pull size of the sweep takes effect.
#
# A queue point's wall time runs from starting its workers until the
# results stream holds N records (polled every 20 ms: the count `rsh queue
# stat` reports as done), not until the workers exit, which they do about
# 2 s later (--idle-exit 1s, then the last pull's own wait). Worker CPU is
# the workers' user + system time from their rusage, server CPU the serve
# process's from /proc/PID/stat, both from the workers' start to their
# exit. Every point is checked with `rsh queue stat --json`: N done,
# nothing left in the queue, nothing dead-lettered. Each point's streams
# are deleted after it, so the store stays small.
#
# Every rsh process (server, workers, single runs) runs with rsh's own GC
# setting (GOGC=400, main.go): GOGC, GOMEMLIMIT, GOMAXPROCS and GODEBUG
# are unset. Progress goes to stderr, the report (markdown) to stdout.
# BENCH_KEEP=1 keeps the temporary folder and says where.
set -euo pipefail

usage() {
	echo "usage: scripts/bench-queue.sh [--quick] [N]   (N: trivial items per point, default 200000)" >&2
	exit 2
}

args="$*"
n=200000
repeat=3 # runs of each single-process point (the median is reported)
while (($#)); do
	case $1 in
	--quick | -quick) n=20000 repeat=1 ;;
	-h | --help) usage ;;
	*) [[ $1 =~ ^[1-9][0-9]*$ ]] || usage; n=$1 ;;
	esac
	shift
done
# The 1 ms workload gets a quarter of the items: at 1 ms each, through a
# throttle of 100, a point then lasts about as long as a trivial one.
n_slow=$((n / 4 > 0 ? n / 4 : 1))
# The default-throttle point gets a tenth: it runs an order of magnitude
# slower (see "t_default" below).
n_small=$((n / 10 > 0 ? n / 10 : 1))

cd "$(dirname "$0")/.."
unset GOGC GOMEMLIMIT GOMAXPROCS GODEBUG

log() { echo "bench-queue.sh: $*" >&2; }

tmp=$(mktemp -d -t rsh-bench-queue.XXXXXX)
serve_pid=""

# shellcheck source=scripts/stop.sh
source scripts/stop.sh # (the current directory is the repository) stop PID: SIGTERM, then SIGKILL after 5 s

cleanup() {
	local rc=$?
	trap - EXIT
	stop "$serve_pid"
	if ((rc != 0)); then
		for f in "$tmp"/serve.log "$tmp"/logs/*.err; do
			if [[ -s $f ]]; then
				log "$f ends:"
				tail -n 10 "$f" >&2
			fi
		done
	fi
	if [[ ${BENCH_KEEP:-} == 1 ]]; then
		log "kept $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building rsh and scripts/benchqueue into $tmp"
CGO_ENABLED=0 go build -o "$tmp/rsh" .
go build -o "$tmp/benchqueue" ./scripts/benchqueue
rsh=$tmp/rsh
bq=$tmp/benchqueue
mkdir -p "$tmp/logs"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
	commit="$commit (with uncommitted changes)"
fi
goversion=$(go version)
cpus=$(nproc)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
date_start=$(date -u '+%Y-%m-%d %H:%M UTC')
# The pull size a worker uses without --pull (queue.DefaultBatch), capped
# by its throttle: the CLI passes the throttle as the most items a worker
# holds (WorkOptions.MaxInFlight), and a pull never asks for more.
default_pull=$(sed -n 's/^[[:space:]]*DefaultBatch = \([0-9][0-9]*\).*/\1/p' queue/work.go)
[[ -n $default_pull ]] || default_pull="?"

# --- the server -------------------------------------------------------

port=$("$bq" port)
url=nats://127.0.0.1:$port
log "starting rsh queue serve on 127.0.0.1:$port"
"$rsh" queue serve --store "$tmp/store" --listen "127.0.0.1:$port" >"$tmp/serve.log" 2>&1 &
serve_pid=$!
# Wait for this server's own word that it listens: if another program
# took the port meanwhile, the word never comes (the server gives up
# after 30 s) and the points must not run against that program.
for i in $(seq 400); do
	if grep -q "JetStream at $url" "$tmp/serve.log"; then
		break
	fi
	if ! kill -0 "$serve_pid" 2>/dev/null || ((i == 400)); then
		log "rsh queue serve did not start on 127.0.0.1:$port"
		exit 1
	fi
	sleep 0.1
done

seq 1 "$n" >"$tmp/trivial.txt"
seq 1 "$n_slow" >"$tmp/slow.txt"
seq 1 "$n_small" >"$tmp/small.txt"

trivial='(n) => n * n'
slow='async (n) => { await sleep(1); return n }'
t_trivial=1000 # the largest pull of the sweep: a smaller throttle would cap it
t_slow=100     # 100 sleeps of 1 ms overlap in each worker
t_default=$cpus

rows=$tmp/rows.md
: >"$rows"
failures=0
idx=0

# fmt_rate N SECONDS prints N / SECONDS with thousands separators.
fmt_rate() {
	awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }' | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'
}
# per_item SECONDS N prints SECONDS / N in µs, to one decimal.
per_item() { awk -v s="$1" -v n="$2" 'BEGIN { printf "%.1f", s / n * 1e6 }'; }
# mb prints KiB as MB (10^6 bytes).
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k * 1024 / 1e6 }'; }
# json_field NAME prints the number under "NAME" in the JSON on stdin.
json_field() { tr -d ' \n' | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }

# single WORKLOAD SCRIPT THROTTLE FILE N: one process over the file, no queue.
single() {
	local workload=$1 script=$2 t=$3 file=$4 items=$5
	log "$workload, single process, -t $t: $items items, $repeat run(s)"
	local res wall cpu rss check got
	res=$("$bq" run -repeat "$repeat" -out "$tmp/single.out" -- "$rsh" run -e "$script" -t "$t" "$file")
	read -r wall cpu rss <<<"$res"
	got=$(wc -l <"$tmp/single.out")
	check="ok"
	if ((got != items)); then
		check="**$got results**"
		failures=$((failures + 1))
	fi
	printf '| %s | single process (no queue) | %s | — | %s | %s | — | %s | %s | — | %s | — | — | %s | %s |\n' \
		"$workload" "$t" "$(fmt_rate "$items" 1)" "$wall" "$(fmt_rate "$items" "$wall")" \
		"$(per_item "$cpu" "$items")" "$(mb "$rss")" "$(fmt_rate "$cpus" "$(awk -v c="$cpu" -v n="$items" 'BEGIN { printf "%.9f", c / n }')")" \
		"$check" >>"$rows"
	last_rate=$(awk -v n="$items" -v s="$wall" 'BEGIN { printf "%.0f", n / s }')
}

# queue_point WORKLOAD WORKERS THROTTLE PULL FILE N SCRIPT: put the file into
# a fresh job stream, run WORKERS workers together, check the results.
# PULL "" means no --pull (the default). Sets last_rate (items/s).
queue_point() {
	local workload=$1 k=$2 t=$3 pull=$4 file=$5 items=$6 script=$7
	idx=$((idx + 1))
	local job=P$idx
	local pull_args=() pull_label
	if [[ -n $pull ]]; then
		pull_args=(--pull "$pull")
		pull_label="$((pull < t ? pull : t))"
	else
		pull_label="default ($((default_pull < t ? default_pull : t)))"
	fi
	log "$workload, $k worker(s), -t $t, pull $pull_label: $items items ($job)"
	local p0 p1
	p0=$EPOCHREALTIME
	"$rsh" queue put "$url/$job" "$file" 2>"$tmp/logs/put.err"
	p1=$EPOCHREALTIME
	local res done_s exit_s wcpu scpu ocpu rss count failed
	res=$("$bq" point -url "$url" -results "${job}_RESULTS" -n "$items" -workers "$k" -server "$serve_pid" -logs "$tmp/logs" -- \
		"$rsh" run -e "$script" -t "$t" "${pull_args[@]}" --from "$url/$job" --to "$url/${job}_RESULTS" --idle-exit 1s)
	read -r done_s exit_s wcpu scpu ocpu rss count failed <<<"$res"
	local stat done queued dead check
	stat=$("$rsh" queue stat "$url/$job" --json)
	done=$(json_field Done <<<"$stat")
	queued=$(json_field Queued <<<"$stat")
	dead=$(json_field Dead <<<"$stat")
	check="ok"
	if [[ $done != "$items" || $queued != 0 || $dead != 0 || $failed != 0 ]]; then
		check="**done $done, left $queued, dead $dead, $failed worker(s) failed**"
		failures=$((failures + 1))
	fi
	"$bq" drop -url "$url" "$job" "${job}_RESULTS" "${job}_DEAD"
	local put_s
	put_s=$(awk -v a="$p0" -v b="$p1" 'BEGIN { printf "%.3f", b - a }')
	printf '| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
		"$workload" "$k" "$t" "$pull_label" "$(fmt_rate "$items" 1)" "$done_s" "$exit_s" \
		"$(fmt_rate "$items" "$done_s")" "$(per_item "$wcpu" "$items")" "$(per_item "$scpu" "$items")" \
		"$(mb "$rss")" "$(fmt_rate "$items" "$put_s")" "$(awk -v c="$ocpu" -v s="$exit_s" 'BEGIN { printf "%.2f", c / s }')" \
		"$(fmt_rate "$cpus" "$(awk -v w="$wcpu" -v s="$scpu" -v n="$items" 'BEGIN { printf "%.9f", (w + s) / n }')")" \
		"$check" >>"$rows"
	last_rate=$(awk -v n="$items" -v s="$done_s" 'BEGIN { printf "%.0f", n / s }')
}

last_rate=0

# --- the points -------------------------------------------------------

single trivial "$trivial" "$t_default" "$tmp/trivial.txt" "$n"
single trivial "$trivial" "$t_trivial" "$tmp/trivial.txt" "$n"

best_k=1 best_rate=0
for k in 1 2 3; do
	queue_point trivial "$k" "$t_trivial" "" "$tmp/trivial.txt" "$n" "$trivial"
	if ((last_rate > best_rate)); then
		best_k=$k best_rate=$last_rate
	fi
done

best_pull="default" best_pull_rate=$best_rate
for pull in 100 300 1000; do
	queue_point trivial "$best_k" "$t_trivial" "$pull" "$tmp/trivial.txt" "$n" "$trivial"
	if ((last_rate > best_pull_rate)); then
		best_pull=$pull best_pull_rate=$last_rate
	fi
done

# The default throttle (nproc) caps the pull at nproc items.
queue_point trivial 1 "$t_default" "" "$tmp/small.txt" "$n_small" "$trivial"

single 1ms "$slow" "$t_slow" "$tmp/slow.txt" "$n_slow"
for k in 1 2 3; do
	queue_point 1ms "$k" "$t_slow" "" "$tmp/slow.txt" "$n_slow" "$slow"
done

load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------

echo "## rsh queue benchmark: N = $n"
echo
echo "- command: \`scripts/bench-queue.sh${args:+ $args}\`; date $date_start"
echo "- commit $commit; $goversion; nproc $cpus"
echo "- load average (1, 5, 15 min) at start: $load_start; at end: $load_end"
echo "- server: \`rsh queue serve\` (embedded NATS with JetStream, file store) on 127.0.0.1, on the same $cpus cores as the workers"
echo "- every rsh process at rsh's own GC setting (GOGC=400); single-process rows: median of $repeat run(s), process start to exit"
echo "- queue rows: wall = the workers' start until the results stream held N records; exit = until the last worker exited (--idle-exit 1s)"
echo "- CPU per item: the workers' (or the single process's) user + system time ÷ N; the server's from /proc/PID/stat over the workers' life"
echo "- others' cores: CPU time the rest of the machine used over the workers' life (/proc/stat busy time less the workers', the server's and the harness's), ÷ exit s"
echo "- CPU-bound ceiling: nproc ÷ (worker + server CPU per item), the rate if the $cpus cores did nothing else"
echo
echo "| workload | workers | -t | pull | items | wall s | exit s | items/s | worker CPU µs/item | server CPU µs/item | worker peak RSS MB | put items/s | others' cores | CPU-bound ceiling items/s | check |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
cat "$rows"
echo
echo "- trivial: best worker count (default pull) $best_k at $(fmt_rate "$best_rate" 1) items/s; best pull at $best_k worker(s): $best_pull ($(fmt_rate "$best_pull_rate" 1) items/s)"
if ((failures > 0)); then
	echo "- **$failures point(s) did not end with exactly one result per item**"
	exit 1
fi
