# stop.sh — sourced by the scripts that start long-lived processes
# (bench-jobs.sh, bench-queue.sh).
#
# stop PID ends one process the script started: SIGTERM, then SIGKILL if
# it is still there after 5 s; an empty PID or a process already gone is
# not an error.
stop() {
	local pid=$1
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
