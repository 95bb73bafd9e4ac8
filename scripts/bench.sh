#!/usr/bin/env bash
# bench.sh — run rsh side by side with GNU parallel, xargs, node, piscina,
# nmap and the limit program on the same workloads, and print a markdown
# report to stdout (progress goes to stderr). See BENCHMARKS.md.
#
#   scripts/bench.sh                      # every workload, 5 timed runs each (~15 min on 2 cores)
#   scripts/bench.sh -quick               # smaller inputs, 1 timed run: a smoke test (~1-2 min)
#   scripts/bench.sh -only trivial,cpu -runs 7 > results.md
#   BENCH_BASE=v0.3.0 scripts/bench.sh -only json   # before/after: also run rsh built from that commit
#
# Flags go to the harness (scripts/bench/main.go): -runs N, -only W,...,
# -quick. It installs what is missing: parallel, nmap and hyperfine with
# apt-get (as root), piscina with npm into a temporary folder. Everything
# it builds and writes goes under one temporary folder, removed at the end
# (BENCH_KEEP=1 keeps it and says where).
set -euo pipefail

cd "$(dirname "$0")/.."
invocation="scripts/bench.sh${*:+ $(printf '%q ' "$@")}"
invocation="${invocation% }"

log() { echo "bench.sh: $*" >&2; }

missing=()
for p in parallel nmap hyperfine; do
	command -v "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
	if [[ $(id -u) -eq 0 ]]; then
		log "installing ${missing[*]} (apt-get)"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq parallel nmap hyperfine; } >&2 ||
			log "apt-get failed: tools that are still missing are skipped"
	else
		log "${missing[*]} missing and not root: those tools are skipped"
	fi
fi

tmp=$(mktemp -d -t rsh-bench.XXXXXX)
cleanup() {
	if [[ ${BENCH_KEEP:-} == 1 ]]; then
		log "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

piscina=""
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
	mkdir "$tmp/piscina"
	cp scripts/bench/piscina/package.json scripts/bench/piscina/driver.js scripts/bench/piscina/worker.js "$tmp/piscina/"
	log "installing piscina (npm) into $tmp/piscina"
	if (cd "$tmp/piscina" && npm install --no-audit --no-fund --loglevel=error) >&2; then
		piscina="$tmp/piscina"
	else
		log "npm install failed: piscina is skipped"
	fi
else
	log "node or npm missing: piscina and node are skipped"
fi

log "building rsh, limit and the harness"
CGO_ENABLED=0 go build -o "$tmp/rsh" . # static: rsh needs no cgo, and starts faster
go build -o "$tmp/limit" ./scripts/bench/limit
go build -o "$tmp/bench" ./scripts/bench

base=()
if [[ -n ${BENCH_BASE:-} ]]; then
	commit=$(git rev-parse --short "$BENCH_BASE^{commit}")
	log "building rsh at $BENCH_BASE ($commit) for the (base) rows"
	git worktree add -q --detach "$tmp/base-src" "$commit" >&2
	(cd "$tmp/base-src" && CGO_ENABLED=0 go build -o "$tmp/rsh-base" .)
	git worktree remove --force "$tmp/base-src"
	base=(-rsh-base "$tmp/rsh-base" -rsh-base-commit "$commit")
	invocation="BENCH_BASE=$BENCH_BASE $invocation"
fi

"$tmp/bench" -rsh "$tmp/rsh" -limit "$tmp/limit" -piscina "$piscina" "${base[@]}" \
	-bench-dir scripts/bench -repo . -tmp "$tmp/work" -invocation "$invocation" "$@"
