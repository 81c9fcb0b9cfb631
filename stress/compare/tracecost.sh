#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# stress/compare/tracecost.sh — what the timeline trace costs: the same
# command with and without URG_DEBUG=trace=PATH, in interleaved pairs,
# whole-process CPU time (user + system, every thread: GNU time's %U + %S),
# median of the pairs.
#
# usage: tracecost.sh [--runs N] -- COMMAND [ARGS...]
#   --runs N   pairs (default 5)
# e.g. tracecost.sh -- build/rel-async/stress/compare work --iters 500000000 --quantum-us 1000
#      tracecost.sh -- build/rel-async/stress/bench/bench_urgent --child yield --quick
# Prints one line: median CPU without and with the trace, the median of the
# pairs' ratios (with/without - 1, in percent) and its range, and the
# trace's size.
set -euo pipefail

runs=5
while [[ $# -gt 0 ]]; do
	case $1 in
	--runs) runs=$2; shift 2 ;;
	--) shift; break ;;
	-h | --help)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		exit 0 ;;
	*) echo "tracecost.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ $# -gt 0 ]] || { echo "tracecost.sh: no command" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "tracecost.sh: needs GNU time (apt-get install -y time)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/urgent-tracecost.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cpu() { # env-assignment... -> CPU seconds of the command
	env "$@" /usr/bin/time -f "%U %S" -o "$tmp/t" "${cmd[@]}" >/dev/null 2>&1 || true
	awk '{ print $1 + $2 }' "$tmp/t"
}
cmd=("$@")
: >"$tmp/pairs"
for ((i = 0; i < runs; i++)); do
	off=$(cpu URG_DEBUG=)
	on=$(cpu "URG_DEBUG=trace=$tmp/trace.json")
	echo "$off $on" >>"$tmp/pairs"
done
size=$(stat -c %s "$tmp/trace.json" 2>/dev/null || echo 0)
sort -n -k1 "$tmp/pairs" | awk -v n="$runs" -v size="$size" '
{ off[NR] = $1; on[NR] = $2; r[NR] = $1 > 0 ? ($2 / $1 - 1) * 100 : 0 }
function median(a, n,   i, j, t, b) {
	for (i = 1; i <= n; i++) b[i] = a[i]
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t }
	return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
}
function lo(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
function hi(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
END {
	printf "cpu_s off %.3f on %.3f: %+.1f%% (pairs %+.1f%% .. %+.1f%%, n=%d), trace %.1f MB\n",
		median(off, n), median(on, n), median(r, n), lo(r, n), hi(r, n), n, size / 1e6
}'
