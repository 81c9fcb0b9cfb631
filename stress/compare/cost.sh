#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# stress/compare/cost.sh — what asynchronous preemption costs work that
# does not need it, measured as a user would: whole-process CPU time
# (getrusage RUSAGE_SELF: every thread, sysmon, the handler and the
# kernel's signal delivery) and wall time of the same fixed work (8
# call-free loops on 2 procs, `compare work`) in the async build against
# the cooperative build, in interleaved pairs, median of the pairs.
#
# usage: cost.sh --async BIN --coop BIN [--runs N] [--iters N] [--quanta "10000 1000 100"]
#   --runs N      pairs per quantum (default 5)
#   --iters N     iterations per loop (default 1000000000, ~2 s per run here)
#   --quanta L    quanta in microseconds (default "10000 1000 100")
#
# Prints one line per quantum: median CPU and wall ratio (async/coop - 1,
# in percent), the range over the pairs, and the median preemption count.
set -euo pipefail

async_bin="" coop_bin="" runs=5 iters=1000000000 quanta="10000 1000 100"
while [[ $# -gt 0 ]]; do
	case $1 in
	--async) async_bin=$2; shift 2 ;;
	--coop) coop_bin=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--iters) iters=$2; shift 2 ;;
	--quanta) quanta=$2; shift 2 ;;
	-h | --help)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		exit 0 ;;
	*) echo "cost.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ -x $async_bin && -x $coop_bin ]] || { echo "cost.sh: need --async and --coop binaries" >&2; exit 2; }

one() { # binary quantum_us -> "cpu_ms wall_ms preemptions"
	"$1" work --iters "$iters" --quantum-us "$2" |
		awk '$1 == "RESULT" && $4 == "cpu_ms" { c = $5 } $1 == "RESULT" && $4 == "work_ms" { w = $5 }
		     $1 == "RESULT" && $4 == "preemptions" { p = $5 } END { print c, w, p }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-9s %-28s %-28s %s\n' quantum "CPU async vs coop (range)" "wall async vs coop (range)" "preemptions"
for q in $quanta; do
	cpu=() wall=() pre=()
	for ((i = 0; i < runs; i++)); do
		# Alternate which build goes first, so that a drift in the
		# machine's load does not favour one.
		if ((i % 2)); then
			read -r ac aw ap < <(one "$async_bin" "$q")
			read -r cc cw _ < <(one "$coop_bin" "$q")
		else
			read -r cc cw _ < <(one "$coop_bin" "$q")
			read -r ac aw ap < <(one "$async_bin" "$q")
		fi
		cpu+=("$(awk -v a="$ac" -v c="$cc" 'BEGIN { printf "%.2f", 100 * (a / c - 1) }')")
		wall+=("$(awk -v a="$aw" -v c="$cw" 'BEGIN { printf "%.2f", 100 * (a / c - 1) }')")
		pre+=("$ap")
		echo "# q=${q}us pair $((i + 1)): cpu ${cc} -> ${ac} ms, wall ${cw} -> ${aw} ms, ${ap} preemptions" >&2
	done
	label=$(awk -v q="$q" 'BEGIN { print (q >= 1000) ? q / 1000 " ms" : q " us" }')
	range() { printf '%s\n' "$@" | sort -g | sed -n '1p;$p' | paste -sd' ' | awk '{ printf "%+.1f..%+.1f", $1, $2 }'; }
	printf '%-9s %-28s %-28s %s\n' "$label" \
		"$(printf '%+.1f%%' "$(printf '%s\n' "${cpu[@]}" | median)") ($(range "${cpu[@]}"))" \
		"$(printf '%+.1f%%' "$(printf '%s\n' "${wall[@]}" | median)") ($(range "${wall[@]}"))" \
		"$(printf '%s\n' "${pre[@]}" | median)"
done
