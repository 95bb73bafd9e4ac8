#!/usr/bin/env bash
# Measures how far past --max-memory a worker process gets before it is
# ended, for several allocation patterns (scripts/membombs.js), and prints
# one line per pattern and size: the item's status and the worker's peak
# resident memory as the kernel counted it. The whole run is under an
# address-space limit, so a broken bound cannot reach the OOM killer.
#
#   scripts/membombs.sh [SIZE...]      (default: 128MiB 512MiB)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(128MiB 512MiB)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/rsh" .
for kind in small mib big array fill double; do
	for size in "${sizes[@]}"; do
		rec=$( (ulimit -v $((8 * 1024 * 1024)); echo "\"$kind\"" |
			"$tmp/rsh" run scripts/membombs.js --max-memory "$size" --out records 2>/dev/null) || true)
		status=$(grep -o '"status":"[A-Za-z]*"' <<<"$rec" | cut -d'"' -f4)
		peak=$(grep -o 'peak resident memory was [0-9.]*[KMG]*i*B' <<<"$rec" | tail -1 | awk '{print $NF}')
		printf '%-7s %-7s %-12s peak %s\n' "$kind" "$size" "$status" "${peak:-?}"
	done
done
