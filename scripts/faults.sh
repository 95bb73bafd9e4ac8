#!/usr/bin/env bash
# faults.sh — rsh's fault suite: what a kill -9, a hostile script or a
# broken output must not do to a run. It builds rsh into a temporary folder,
# prints one PASS or FAIL line per check, then a summary, and exits 1 if
# anything failed (2 if it could not start).
#
#   scripts/faults.sh                    # 20 kill/resume rounds and the other checks
#   scripts/faults.sh -n 10              # the short run, for CI
#   scripts/faults.sh --long             # 500 rounds: the long run
#   scripts/faults.sh --seed 4242 -n 1   # one round again (each line gives its seed)
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
#
# It needs only Go and coreutils. Whatever could allocate without end runs
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

# as_limit_kib is the address-space limit (ulimit -v, in KiB) of every rsh
# that could allocate without end: far above what a Go program reserves to
# start (about 1.5 GiB with its threads' stacks), far below what would
# bring the machine's OOM killer. Worker processes lower their own.
as_limit_kib=$((4 << 20))

work=$(mktemp -d "${TMPDIR:-/tmp}/rsh-faults.XXXXXX") || exit 2
passed=0
failed=0
cleanup() {
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

# kill/resume: the rounds, run and checked by the Go half; it prints one
# PASS or FAIL line per round.
check_kill_resume() {
	local line n=0
	while IFS= read -r line; do
		echo "$line"
		case $line in
		PASS*) passed=$((passed + 1)) ;;
		FAIL*) failed=$((failed + 1)) ;;
		esac
		n=$((n + 1))
	done < <("$faults" rounds -rsh "$rsh" -script scripts/faults/item.js -dir "$work/rounds" \
		-n "$rounds" -seed "$seed" ${keep:+-keep})
	if ((n < rounds)); then
		fail "kill/resume: only $n of $rounds rounds reported"
	fi
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

echo "faults.sh: $rounds kill/resume rounds from seed $seed, then the other checks"
start=$(now_ms)
check_kill_resume
check_memory_bomb
check_stuck_regexp
check_source_maps
check_closed_pipe
check_full_disk
echo "faults.sh: $passed passed, $failed failed in $((($(now_ms) - start) / 1000))s (seed $seed)"
((failed == 0))
