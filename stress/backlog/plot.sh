#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# stress/backlog/plot.sh — run the backlog incident naive and fixed under
# URG_DEBUG=schedtrace=100 and draw docs/backlog.svg: the global run queue
# from the SCHED lines (top) and each message's latency against when it was
# produced (bottom), for both. The SCHED lines and summaries are kept in
# OUTDIR for docs/backlog.md to quote.
#
# usage: plot.sh BUILD_DIR [OUT.svg] [OUTDIR]   (needs gnuplot: apt-get install -y gnuplot-nox)
#   BUILD_DIR: a build with stress/backlog; OUT.svg defaults to docs/backlog.svg.
#   BACKLOG_ARGS overrides the workload (default: --seconds 1 --interval-us 20).
set -euo pipefail
[[ $# -ge 1 && $# -le 3 ]] || { sed -n 's/^# usage: //p' "${BASH_SOURCE[0]}" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=$1/stress/backlog
out=${2:-$here/../../docs/backlog.svg}
command -v gnuplot >/dev/null || { echo "plot.sh: apt-get install -y gnuplot-nox" >&2; exit 1; }
[[ -x $bin ]] || { echo "plot.sh: no $bin (build the stress programs)" >&2; exit 1; }
if [[ $# -eq 3 ]]; then
	dir=$3
	mkdir -p "$dir"
else
	dir=$(mktemp -d "${TMPDIR:-/tmp}/urgent-backlog.XXXXXX")
	trap 'rm -rf "$dir"' EXIT
fi
read -r -a args <<<"${BACKLOG_ARGS:---seconds 1 --interval-us 20}"

for mode in naive fixed; do
	URG_DEBUG=schedtrace=100 "$bin" --mode "$mode" "${args[@]}" \
		--latency "$dir/$mode.lat" >"$dir/$mode.summary" 2>"$dir/$mode.sched"
	cat "$dir/$mode.summary"
	# "SCHED 205ms: ... runqueue=5030 [78 44] ..." -> "0.205 5030"
	sed -n 's/^SCHED \([0-9]*\)ms:.* runqueue=\([0-9]*\) .*/\1 \2/p' "$dir/$mode.sched" |
		awk '{ printf "%.3f %s\n", $1 / 1000, $2 }' >"$dir/$mode.runq"
done

gnuplot <<GP
set terminal svg size 900,700 dynamic font "sans,11" background rgb "white"
set output "$out"
set multiplot layout 2,1 title "The backlog incident: a task per message (naive) vs a bounded channel and 2 workers (fixed)"
set grid
set key top left
set xlabel "time since start (s)"
set ylabel "global run queue (tasks)"
set title "runqueue= from URG\\\\_DEBUG=schedtrace=100"
plot "$dir/naive.runq" using 1:2 with linespoints lw 2 pt 7 ps 0.5 title "naive", \
     "$dir/fixed.runq" using 1:2 with linespoints lw 2 pt 7 ps 0.5 title "fixed"
set xlabel "message produced at (s)"
set ylabel "latency, produced to handled (ms)"
set title "request latency"
set logscale y
plot "$dir/naive.lat" using (\$1/1000):(\$2 > 0.001 ? \$2 : 0.001) with lines lw 1.5 title "naive", \
     "$dir/fixed.lat" using (\$1/1000):(\$2 > 0.001 ? \$2 : 0.001) with lines lw 1.5 title "fixed"
unset multiplot
GP
echo "plot.sh: wrote $out"
