#!/usr/bin/env bash
# faults.sh — rsh's fault suite: what a kill -9, a hostile script or a
# broken output must not do to a run. It builds rsh into a temporary folder,
# prints one PASS or FAIL line per check, then a summary, and exits 1 if
# anything failed (2 if it could not start).
#
#   scripts/faults.sh                    # 20 kill/resume rounds, 5 daemon rounds, the other checks
#   scripts/faults.sh -n 10              # the short run, for CI
#   scripts/faults.sh --long             # 500 rounds (125 daemon rounds): the long run
#   scripts/faults.sh --seed 4242 -n 1   # one round again (each line gives its seed;
#                                        # a daemon round's seed is the first daemon round)
#   scripts/faults.sh --keep             # keep every file, not only a failure's
#
# The checks:
#   kill/resume   N rounds; each runs rsh with --joblog and its stdout
#                 appended to a file, SIGKILLs it (or one of its worker
#                 processes) at random moments and resumes it until a run
#                 finishes, then checks that every input has exactly one
#                 output and that the job log claims each success once, under
#                 the input's position. Variants: -t 1..8, -k, --batch-size,
#                 --retries, --max-memory, --out records. The rounds are run
#                 and checked by scripts/faults/ (a Go program, see main.go).
#   memory bomb   --max-memory 128MiB: items that allocate without end get
#                 MemoryLimit, the others Success, exit code 1.
#   stuck regexp  --timeout 1s on a catastrophic regular expression gives a
#                 Timeout within seconds, in-process and --isolate process.
#   source maps   a sourceMappingURL naming /dev/zero, or a FIFO: rsh never
#                 reads it and finishes promptly.
#   closed pipe   rsh | head -1 ends promptly.
#   full disk     stdout on /dev/full: a non-zero exit, and the job log
#                 claims nothing.
#   daemon kill/resume
#                 max(3, N/4) rounds; each starts `rsh serve`, submits a job
#                 (200-2000 items, -t 1..8, at random --batch-size,
#                 --max-memory, --retries with items that always fail, or
#                 the input from a slow generator), SIGKILLs the daemon 1-3
#                 times (checking that its job processes end with it) and
#                 starts it again, then waits, receives (sometimes killing
#                 a receive part way) and checks: every item that reached
#                 the job has exactly one committed result, the state and
#                 wait's exit status, "resumed", and that receives give
#                 every result at least once (exactly once if none was
#                 killed). Played and checked by scripts/faults/ (daemon).
#   full disk for a job
#                 as root, the daemon's state on a 2 MiB tmpfs: a job that
#                 fills it ends Failed for no space, wait exits 3, the
#                 daemon serves on and starts again, full and once space is
#                 freed; then the job's committed results are each once.
#                 SKIP when not root or the mount fails.
#   receive to a full disk
#                 rsh job receive > /dev/full exits non-zero, and the next
#                 receive prints every result.
#
# It needs only Go and coreutils (and root for the tmpfs). Whatever could allocate without end runs
# under an address-space limit (ulimit -v), so that a failure ends rsh, not
# the machine's memory. Everything goes under one temporary folder, removed
# at the end unless something failed (or --keep).
set -uo pipefail

cd "$(dirname "$0")/.."

usage() {
	echo "usage: scripts/faults.sh [-n ROUNDS | --long] [--seed N] [--keep]" >&2
	exit 2
}
rounds=20
long_rounds=500
seed=""
keep=""
while (($# > 0)); do
	case $1 in
	-n) (($# >= 2)) || usage; rounds=$2; shift 2 ;;
	--long) rounds=$long_rounds; shift ;;
	--seed) (($# >= 2)) || usage; seed=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) usage ;;
	esac
done
[[ $rounds =~ ^[0-9]+$ ]] || usage
seed=${seed:-$((RANDOM * 32768 + RANDOM + 1))}
# daemon_rounds: the daemon rounds take longer than the others (a daemon
# started again after each kill), so a quarter as many, at least three.
daemon_rounds=$((rounds / 4))
((daemon_rounds >= 3)) || daemon_rounds=3

# as_limit_kib is the address-space limit (ulimit -v, in KiB) of every rsh
# that could allocate without end: far above what a Go program reserves to
# start (about 1.5 GiB with its threads' stacks), far below what would
# bring the machine's OOM killer. Worker processes lower their own.
as_limit_kib=$((4 << 20))

work=$(mktemp -d "${TMPDIR:-/tmp}/rsh-faults.XXXXXX") || exit 2
passed=0
failed=0
mounted=""
cleanup() {
	if [[ -n $mounted ]]; then
		umount "$mounted" 2>/dev/null || umount -l "$mounted"
	fi
	if ((failed > 0)) || [[ -n $keep ]]; then
		echo "faults.sh: files in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rsh=$work/rsh
faults=$work/faults
if ! go build -o "$rsh" . || ! go build -o "$faults" ./scripts/faults; then
	echo "faults.sh: build failed" >&2
	exit 2
fi

# Nothing a daemon or a client does may touch the user's own state
# directory or socket: every default points into the temporary folder (the
# checks name their --state and --socket too). Set after the build, which
# keeps the user's Go cache and settings.
mkdir -p "$work/home/state" "$work/home/run" "$work/home/config" "$work/home/cache" "$work/home/data"
chmod 700 "$work/home/run"
export RSH_STATE=$work/home/state/rsh RSH_SOCKET=$work/home/run/rsh.sock
export XDG_STATE_HOME=$work/home/state XDG_RUNTIME_DIR=$work/home/run XDG_CONFIG_HOME=$work/home/config
export XDG_CACHE_HOME=$work/home/cache XDG_DATA_HOME=$work/home/data

pass() {
	echo "PASS $*"
	passed=$((passed + 1))
}
fail() {
	echo "FAIL $*"
	failed=$((failed + 1))
}
now_ms() { date +%s%3N; }
# first_line FILE: its first line, short, for a report.
first_line() { head -n 1 "$1" 2>/dev/null | cut -c1-160; }
# limited CMD...: CMD under the address-space limit.
limited() { (ulimit -v "$as_limit_kib" && exec "$@"); }

# relay WHAT WANT CMD...: runs CMD, a check of the Go half, and passes on
# its PASS, FAIL and SKIP lines, counting them; fewer than WANT lines is a
# failure of WHAT.
relay() {
	local what=$1 want=$2 line n=0
	shift 2
	while IFS= read -r line; do
		echo "$line"
		case $line in
		PASS*) passed=$((passed + 1)) ;;
		FAIL*) failed=$((failed + 1)) ;;
		esac
		n=$((n + 1))
	done < <("$@")
	if ((n < want)); then
		fail "$what: only $n of $want checks reported"
	fi
}

# kill/resume: the rounds, run and checked by the Go half; it prints one
# PASS or FAIL line per round.
check_kill_resume() {
	relay kill/resume "$rounds" "$faults" rounds -rsh "$rsh" -script scripts/faults/item.js -dir "$work/rounds" \
		-n "$rounds" -seed "$seed" ${keep:+-keep}
}

# daemon kill/resume: rsh serve killed with jobs running, and started
# again; one PASS or FAIL line per round, from the Go half.
check_daemon_kill_resume() {
	relay "daemon kill/resume" "$daemon_rounds" "$faults" daemon -rsh "$rsh" -script scripts/faults/jobitem.js \
		-dir "$work/daemon" -n "$daemon_rounds" -seed "$seed" ${keep:+-keep}
}

# full disk for a job: the daemon's state directory on a 2 MiB tmpfs,
# filled by a job in two ways (two lines each, from the Go half).
check_job_full_disk() {
	local mnt=$work/tmpfs
	if ((EUID != 0)); then
		echo "SKIP full disk for a job: needs root to mount a tmpfs"
		return
	fi
	mkdir -p "$mnt"
	if ! mount -t tmpfs -o size=2m,mode=0700 rsh-faults "$mnt" 2>"$work/mount.err"; then
		echo "SKIP full disk for a job: mounting a tmpfs failed: $(first_line "$work/mount.err")"
		return
	fi
	mounted=$mnt
	relay "full disk for a job" 4 "$faults" daemon-disk -rsh "$rsh" -script scripts/faults/jobitem.js \
		-dir "$work/jobdisk" -state "$mnt"
	if umount "$mnt"; then
		mounted=""
	fi
}

# receive to a full disk: results written to /dev/full stay to receive.
check_receive_full_disk() {
	if [[ ! -w /dev/full ]]; then
		echo "SKIP receive to a full disk: this system has no writable /dev/full"
		return
	fi
	relay "receive to a full disk" 1 "$faults" daemon-devfull -rsh "$rsh" -script scripts/faults/jobitem.js \
		-dir "$work/devfull"
}

# memory bomb: the items that allocate without end are found and failed
# alone; those that shared their worker run again and succeed.
check_memory_bomb() {
	local d=$work/bomb rc=0 t0 ms
	mkdir -p "$d"
	printf '%s\n' 1 grow 2 3 fill 4 5 6 >"$d/items"
	cat >"$d/want" <<-'EOF'
		1 Success 1
		2 MemoryLimit "grow"
		3 Success 2
		4 Success 3
		5 MemoryLimit "fill"
		6 Success 4
		7 Success 5
		8 Success 6
	EOF
	t0=$(now_ms)
	limited timeout -k 5 120 "$rsh" run --max-memory 128MiB --out records -t 4 \
		scripts/faults/bomb.js "$d/items" >"$d/out" 2>"$d/err" || rc=$?
	ms=$(($(now_ms) - t0))
	"$faults" records "$d/out" >"$d/got"
	if ((rc == 1)) && cmp -s "$d/want" "$d/got"; then
		pass "memory bomb: 2 of 8 items MemoryLimit, 6 Success, exit 1, ${ms}ms"
	else
		fail "memory bomb: exit $rc (want 1) after ${ms}ms; records (seq status input) differ: $(diff "$d/want" "$d/got" | grep '^[<>]' | tr '\n' ' ')stderr: $(first_line "$d/err")"
	fi
}

# stuck regexp: goja's backtracking engine, stuck in native code, still
# gives way to --timeout (plus the documented grace).
check_stuck_regexp() {
	local d=$work/regexp iso rc t0 ms got
	# max_ms: --timeout 1s, the grace, and room for a busy machine.
	local max_ms=10000
	mkdir -p "$d"
	for iso in none process; do
		rc=0
		t0=$(now_ms)
		limited timeout -k 5 30 "$rsh" run --timeout 1s --isolate "$iso" --out records \
			-e '()=>/(a*)*(?=x)b/.test("a".repeat(32))' <<<1 >"$d/out-$iso" 2>"$d/err-$iso" || rc=$?
		ms=$(($(now_ms) - t0))
		got=$("$faults" records "$d/out-$iso")
		if ((rc == 1 && ms <= max_ms)) && [[ $got == '1 Timeout 1' ]]; then
			pass "stuck regexp (--isolate $iso): Timeout, exit 1, ${ms}ms"
		else
			fail "stuck regexp (--isolate $iso): exit $rc (want 1) after ${ms}ms (want at most ${max_ms}ms), records: ${got:-none}; stderr: $(first_line "$d/err-$iso")"
		fi
	done
}

# source maps: goja would read the file a sourceMappingURL comment names,
# from code made at run time too; rsh must never let it.
check_source_maps() {
	local d=$work/sourcemap
	mkdir -p "$d"
	mkfifo "$d/fifo"
	# The path is taken relative to the working directory, $d: enough ../
	# reach / from any temporary folder.
	source_map_case "$d" /dev/zero "$(printf '../%.0s' $(seq 1 30))dev/zero"
	source_map_case "$d" "a FIFO" fifo
}

# source_map_case DIR WHAT URL: one source-map check, run in DIR.
source_map_case() {
	local d=$1 what=$2 url=$3 rc=0 t0 ms
	t0=$(now_ms)
	(cd "$d" && limited timeout -k 5 20 "$rsh" run --timeout 2s \
		-e '()=>eval("1\n//# sourceMappingURL='"$url"'")' <<<1 >"$d/out" 2>"$d/err") || rc=$?
	ms=$(($(now_ms) - t0))
	if ((rc == 0)) && [[ $(cat "$d/out") == 1 ]]; then
		pass "source map naming $what: not read, output 1, exit 0, ${ms}ms"
	else
		fail "source map naming $what: exit $rc after ${ms}ms (want exit 0 and output 1 within 20s); stdout: $(first_line "$d/out"); stderr: $(first_line "$d/err")"
	fi
}

# closed pipe: a reader that goes away ends the run.
check_closed_pipe() {
	local d=$work/pipe rc=0 t0 ms
	mkdir -p "$d"
	t0=$(now_ms)
	timeout -k 5 20 bash -c 'seq 1 100000 | "$1" run -e "n=>n" | head -n 1' _ "$rsh" >"$d/out" 2>"$d/err" || rc=$?
	ms=$(($(now_ms) - t0))
	if ((rc == 0)) && [[ $(wc -l <"$d/out") -eq 1 ]]; then
		pass "closed pipe: seq 1 100000 | rsh run | head -1 ended after ${ms}ms"
	else
		fail "closed pipe: exit $rc after ${ms}ms (124: still running at 20s), $(wc -l <"$d/out") lines; stderr: $(first_line "$d/err")"
	fi
}

# full disk: a failed write stops the run, and the job log claims nothing
# that did not reach the output.
check_full_disk() {
	local d=$work/full rc=0 claimed
	mkdir -p "$d"
	if [[ ! -w /dev/full ]]; then
		echo "SKIP full disk: this system has no writable /dev/full"
		return
	fi
	seq 1 1000 | timeout -k 5 20 "$rsh" run -e 'n=>n' --joblog "$d/log" >/dev/full 2>"$d/err" || rc=$?
	claimed=$(grep -c '"status":"Success"' "$d/log" 2>/dev/null)
	claimed=${claimed:-0}
	if ((rc != 0 && rc != 124 && rc != 137 && claimed == 0)); then
		pass "full disk: exit $rc, the job log claims nothing; stderr: $(first_line "$d/err")"
	else
		fail "full disk: exit $rc (want non-zero, not a timeout), the job log claims $claimed of 1000 items written to /dev/full; stderr: $(first_line "$d/err")"
	fi
}

echo "faults.sh: $rounds kill/resume rounds and $daemon_rounds daemon rounds from seed $seed, then the other checks"
start=$(now_ms)
check_kill_resume
check_memory_bomb
check_stuck_regexp
check_source_maps
check_closed_pipe
check_full_disk
check_daemon_kill_resume
check_job_full_disk
check_receive_full_disk
echo "faults.sh: $passed passed, $failed failed in $((($(now_ms) - start) / 1000))s (seed $seed)"
((failed == 0))
