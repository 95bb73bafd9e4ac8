#!/usr/bin/env bash
# bench-jobs.sh — how much memory and time one big background job takes:
# submitted with `rsh job start`, run by `rsh serve`, received with
# `rsh job receive`. The goal it reports against: each process (client,
# daemon, job process) under 100 MB RSS for a 1M-item job. It reports;
# it does not assert (exit 0 whatever the numbers, non-zero only if the
# benchmark itself could not run).
#
#   scripts/bench-jobs.sh            # N = 1000000 items
#   scripts/bench-jobs.sh 200000     # a smaller job
#
# It builds rsh and scripts/benchjobs (the Go half: runs a command and
# reports its wall time, CPU time and ru_maxrss; reads /proc) into a
# temporary folder, starts `rsh serve` there with its own --state and
# --socket (XDG_STATE_HOME and XDG_RUNTIME_DIR point there too, so the
# user's default state directory is never touched), and runs, one after
# the other:
#
#   submit    seq 1 N | rsh job start --name big -e '(n) => n * 2'
#   wait      rsh job wait big
#   receive   rsh job receive big | awk (counts the results and sums them)
#
# For each phase: wall time, the client's CPU time (user + sys) and peak
# RSS (ru_maxrss), the CPU time the daemon and its reaped children used
# meanwhile, and the daemon's VmHWM so far. Every sampleEvery (100 ms) the
# descendants of the daemon (job processes) are sampled for VmHWM/VmRSS.
# Progress goes to stderr, the report to stdout. BENCH_KEEP=1 keeps the
# temporary folder and says where.
set -euo pipefail

n=${1:-1000000}
if ! [[ $n =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: scripts/bench-jobs.sh [N]   (N: items, default 1000000)" >&2
	exit 2
fi

cd "$(dirname "$0")/.."

log() { echo "bench-jobs.sh: $*" >&2; }

tmp=$(mktemp -d -t rsh-bench-jobs.XXXXXX)
daemon_pid=""
watch_pid=""

# shellcheck source=scripts/stop.sh
source scripts/stop.sh # (the current directory is the repository) stop PID: SIGTERM, then SIGKILL after 5 s

cleanup() {
	local rc=$?
	trap - EXIT
	stop "$watch_pid"
	stop "$daemon_pid"
	if ((rc != 0)) && [[ -s $tmp/serve.log ]]; then
		log "the daemon's log ends:"
		tail -n 20 "$tmp/serve.log" >&2
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

export XDG_STATE_HOME="$tmp/xdg-state" XDG_RUNTIME_DIR="$tmp/xdg-run"
mkdir -p "$XDG_STATE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"

log "building rsh and scripts/benchjobs into $tmp"
go build -o "$tmp/rsh" .
go build -o "$tmp/benchjobs" ./scripts/benchjobs
rsh=$tmp/rsh
bj=$tmp/benchjobs
sock=$tmp/s.sock

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
	commit="$commit (with uncommitted changes)"
fi
goversion=$(go version)
cpus=$(nproc)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# The floor of a client's reported peak RSS: what `benchjobs run` itself
# contributes (see runCommand in scripts/benchjobs/main.go).
"$bj" run "$tmp/floor.res" true

log "starting rsh serve"
"$rsh" serve --state "$tmp/state" --socket "$sock" >"$tmp/serve.log" 2>&1 &
daemon_pid=$!
for i in $(seq 100); do
	if "$rsh" job ls --socket "$sock" >/dev/null 2>&1; then
		break
	fi
	if ! kill -0 "$daemon_pid" 2>/dev/null || ((i == 100)); then
		log "rsh serve did not answer within 10 s"
		exit 1
	fi
	sleep 0.1
done

"$bj" watch "$daemon_pid" >"$tmp/watch.out" &
watch_pid=$!

# daemon_now prints "VMHWM_KIB VMRSS_KIB CPU_S" of the daemon.
daemon_now() { "$bj" proc "$daemon_pid"; }

d=$(daemon_now)
read -r _ _ dcpu0 <<<"$d"

log "submit: seq 1 $n | rsh job start --name big"
seq 1 "$n" | "$bj" run "$tmp/submit.res" "$rsh" job start --socket "$sock" --name big -e '(n) => n * 2' >/dev/null
d=$(daemon_now)
read -r dhwm1 _ dcpu1 <<<"$d"

log "wait: rsh job wait big"
wait_rc=0
"$bj" run "$tmp/wait.res" "$rsh" job wait --socket "$sock" big >"$tmp/wait.out" || wait_rc=$?
d=$(daemon_now)
read -r dhwm2 _ dcpu2 <<<"$d"

log "receive: rsh job receive big"
"$bj" run "$tmp/receive.res" "$rsh" job receive --socket "$sock" big |
	awk '{ c++; s += $1 } END { printf "%d %.0f\n", c, s }' >"$tmp/received"
d=$(daemon_now)
read -r dhwm3 drss3 dcpu3 <<<"$d"

stop "$watch_pid"
watch_pid=""
read -r kids khwm krss <"$tmp/watch.out"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -----------------------------------------------------------

# mb prints KiB as MB (10^6 bytes), to one decimal.
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }'; }
# over prints "OVER 100 MB" if KiB is more than 100 MB.
over() { awk -v k="$1" 'BEGIN { if (k * 1024 > 100e6) printf " OVER 100 MB" }'; }
# sub prints a - b to two decimals.
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

read -r _ _ floor <"$tmp/floor.res"
echo "## rsh job benchmark: N = $n"
echo
echo "commit $commit; $goversion; nproc $cpus"
echo "load average (1, 5, 15 min) at start: $load_start; at end: $load_end"
echo "client peak RSS is ru_maxrss of the rsh command alone; its floor (the measuring process) is $(mb "$floor") MB"
echo
echo "| phase | wall s | client CPU s | client peak RSS MB | daemon+jobs CPU s | daemon VmHWM MB so far | |"
echo "|---|---:|---:|---:|---:|---:|---|"
prev_cpu=$dcpu0
total_wall=0
total_cpu=0
for phase in submit wait receive; do
	read -r wall cpu rss <"$tmp/$phase.res"
	case $phase in
	submit) dcpu=$dcpu1 dhwm=$dhwm1 ;;
	wait) dcpu=$dcpu2 dhwm=$dhwm2 ;;
	receive) dcpu=$dcpu3 dhwm=$dhwm3 ;;
	esac
	echo "| $phase | $wall | $cpu | $(mb "$rss") | $(sub "$dcpu" "$prev_cpu") | $(mb "$dhwm") |$(over "$rss") |"
	prev_cpu=$dcpu
	total_wall=$(awk -v a="$total_wall" -v b="$wall" 'BEGIN { printf "%.3f", a + b }')
	total_cpu=$(awk -v a="$total_cpu" -v b="$cpu" 'BEGIN { printf "%.3f", a + b }')
done
echo "| total | $total_wall | $total_cpu | | $(sub "$dcpu3" "$dcpu0") | | |"
echo
echo "daemon: peak RSS (VmHWM) $(mb "$dhwm3") MB, RSS at end $(mb "$drss3") MB$(over "$dhwm3")"
if ((kids == 0)); then
	echo "job processes (descendants of the daemon, sampled every 100 ms): none seen"
else
	echo "job processes (descendants of the daemon, sampled every 100 ms): $kids seen, largest peak RSS (VmHWM) $(mb "$khwm") MB, largest RSS $(mb "$krss") MB$(over "$khwm")"
fi
read -r got sum <"$tmp/received"
want_sum=$(awk -v n="$n" 'BEGIN { printf "%.0f", n * (n + 1) }')
if [[ $got == "$n" && $sum == "$want_sum" ]]; then
	check="ok"
else
	check="MISMATCH: want $n results summing to $want_sum"
fi
echo "job: wait exit $wait_rc ($(tr -d '\n' <"$tmp/wait.out")); received $got results summing to $sum: $check"
