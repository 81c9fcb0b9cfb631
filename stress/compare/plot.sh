#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# stress/compare/plot.sh — draw docs/preemption.png from the RESULT lines
# that run.sh --out (or scripts/demo.sh --out) kept.
#
# usage: plot.sh RESULTS OUT.png      (needs gnuplot: apt-get install -y gnuplot-nox)
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: plot.sh RESULTS OUT.png" >&2; exit 2; }
results=$1 out=$2
command -v gnuplot >/dev/null || { echo "plot.sh: apt-get install -y gnuplot-nox" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/urgent-plot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Left: Jain's index per scenario and mode (missing = 0), with the number of
# starved loops written over each bar that has any. Right: the 1 ms ticker's
# p50 and p99 lateness beside four loops, on a log axis (lateness spans
# tens of microseconds to a whole quantum); a starved ticker gets a marked
# empty slot instead of bars.
awk '
{ v[$1 " " $2 " " $3] = $4 }
function g(m, s) { return ((m " " s " jain") in v) ? v[m " " s " jain"] : 0 }
function st(m, s) { return ((m " " s " starved") in v) ? v[m " " s " starved"] : 0 }
END {
	n = split("fair1:4 loops\\n1 proc|fair2:8 loops\\n2 procs|calls:call-checked,\\nloop with calls|nocalls:call-checked,\\nloop without", rows, "|")
	for (i = 1; i <= n; i++) {
		split(rows[i], kv, ":")
		printf "\"%s\" %s %s %s %s %s %s %s %s\n", kv[2], g("async", kv[1]), g("cooperative", kv[1]), g("go", kv[1]), g("gooff", kv[1]),
			st("async", kv[1]), st("cooperative", kv[1]), st("go", kv[1]), st("gooff", kv[1])
	}
}' "$results" >"$tmp/jain.dat"
awk '
{ v[$1 " " $2 " " $3] = $4 }
function t(label, m, s) {
	if (!((m " " s " status") in v) && !((m " " s " p99_ms") in v)) return
	if (v[m " " s " status"] == "starved" || !((m " " s " p99_ms") in v)) {
		printf "\"%s\" NaN NaN 1\n", label
		return
	}
	printf "\"%s\" %s %s 0\n", label, v[m " " s " p50_ms"], v[m " " s " p99_ms"]
}
END {
	t("urgent async\\n10 ms quantum", "async", "ticker")
	t("urgent async\\n1 ms quantum", "async", "ticker1ms")
	t("urgent cooperative\\n10 ms quantum", "cooperative", "ticker")
	t("Go 1.19\\n10 ms", "go", "ticker")
	t("Go asyncpreemptoff=1\\n10 ms", "gooff", "ticker")
}' "$results" >"$tmp/ticker.dat"

gnuplot <<GP
set terminal pngcairo size 1300,520 font "sans,10"
set output "$out"
set multiplot layout 1,2
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set bmargin 4
set key top center horizontal
set grid ytics
set title "(a, d) Fairness of call-free loops: Jain's index (1 = fair, 1/n = one loop has it all)"
set yrange [0:1.25]
set xtics nomirror
# Four bars per cluster, gap 1: bar j sits at x + (j - 1.5) / 5.
starved(n) = n > 0 ? sprintf("%d\\nstarved", n) : ""
plot "$tmp/jain.dat" using 2:xtic(1) title "urgent async" lc rgb "#1f77b4", \
     '' using 3 title "urgent cooperative" lc rgb "#ff7f0e", \
     '' using 4 title "Go 1.19" lc rgb "#2ca02c", \
     '' using 5 title "Go asyncpreemptoff=1" lc rgb "#d62728", \
     '' using (\$0 - 0.3):(\$2 + 0.08):(starved(\$6)) with labels textcolor rgb "#b00000" notitle, \
     '' using (\$0 - 0.1):(\$3 + 0.08):(starved(\$7)) with labels textcolor rgb "#b00000" notitle, \
     '' using (\$0 + 0.1):(\$4 + 0.08):(starved(\$8)) with labels textcolor rgb "#b00000" notitle, \
     '' using (\$0 + 0.3):(\$5 + 0.08):(starved(\$9)) with labels textcolor rgb "#b00000" notitle
set title "(b) A 1 ms ticker beside 4 loops: lateness, log scale (starved: never woke)"
set logscale y
set yrange [0.001:100]
set format y "%g"
set ylabel "ms late"
plot "$tmp/ticker.dat" using 2:xtic(1) title "p50" lc rgb "#1f77b4", \
     '' using 3 title "p99" lc rgb "#9467bd", \
     '' using (\$0):(0.01):(\$4 > 0 ? "STARVED\\n(never woke)" : "") with labels textcolor rgb "#b00000" notitle
unset multiplot
GP
echo "wrote $out" >&2
