#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# stress/compare/run.sh — the cooperative-vs-async comparison, side by side
# with Go, as one table.
#
# usage: run.sh --async BIN --coop BIN [--seconds S] [--no-go] [--out FILE]
#   --async BIN   the compare program built with -DURG_PREEMPT=async
#   --coop BIN    the same built with -DURG_PREEMPT=cooperative
#   --seconds S   length of each timed scenario (default 2)
#   --no-go       skip Go's columns (they need golang-go and ~30 s)
#   --out FILE    also keep every RESULT line there (docs/preemption.md's
#                 plot is drawn from such a file)
#
# scripts/demo.sh builds both variants and calls this.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
async_bin="" coop_bin="" seconds=2 with_go=1 out=""
while [[ $# -gt 0 ]]; do
	case $1 in
	--async) async_bin=$2; shift 2 ;;
	--coop) coop_bin=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--no-go) with_go=0; shift ;;
	--out) out=$2; shift 2 ;;
	-h | --help)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		exit 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ -x $async_bin && -x $coop_bin ]] || { echo "run.sh: need --async and --coop binaries" >&2; exit 2; }

results=$(mktemp "${TMPDIR:-/tmp}/urgent-compare.XXXXXX")
trap 'rm -f "$results"' EXIT

progress() { [[ -t 2 ]] && printf '  %-40s\r' "$1" >&2 || true; }
run() { # label binary args...
	local label=$1 bin=$2; shift 2
	progress "$label"
	"$bin" "$@" | sed -n 's/^RESULT //p' >>"$results" || true
}

echo "Running each scenario for ${seconds}s in both builds (about $((16 * ${seconds%.*} + 2))s)..." >&2
for b in async coop; do
	bin=$async_bin; [[ $b == coop ]] && bin=$coop_bin
	run "$b: fairness 4 hogs / 1 proc" "$bin" fair1 --seconds "$seconds"
	run "$b: fairness 8 hogs / 2 procs" "$bin" fair2 --seconds "$seconds"
	run "$b: fairness 3 hogs / 2 procs" "$bin" fair3 --seconds "$seconds"
	run "$b: ticker, default quantum" "$bin" ticker --seconds "$seconds"
	"$bin" ticker --seconds "$seconds" --quantum-us 1000 | sed -n 's/^RESULT \([a-z]*\) ticker/\1 ticker1ms/p' >>"$results" || true
	run "$b: set_maxprocs beside hogs" "$bin" stw --seconds "$seconds"
	run "$b: call-checked, loop with calls" "$bin" calls --seconds "$seconds"
	run "$b: call-checked, loop without" "$bin" nocalls --seconds "$seconds"
done

if [[ $with_go == 1 ]]; then
	if command -v go >/dev/null 2>&1; then
		progress "Go: both modes"
		secs_go=${seconds%.*}s
		"$here/go/run.sh" -- -d "$secs_go" 2>/dev/null | sed -n 's/^RESULT //p' |
			sed -e 's/ a_4hogs_1p / fair1 /; s/ a_8hogs_2p / fair2 /; s/ a_3hogs_2p / fair3 /; s/ b_4hogs_1p / ticker /' \
				-e 's/ c_4hogs_2p / stw /; s/ d_call_4hogs_1p / calls /' \
				-e 's/^async /go /; s/^asyncpreemptoff /gooff /' >>"$results" || true
		# Go's loop without calls under asyncpreemptoff is scenario a.
		awk '$1 == "go" && $2 == "fair1" { print "go nocalls", $3, $4 } $1 == "gooff" && $2 == "fair1" { print "gooff nocalls", $3, $4 }' \
			"$results" >>"$results.go" && cat "$results.go" >>"$results" && rm -f "$results.go"
	else
		echo "Go's columns need Go: apt-get install -y golang-go" >&2
	fi
fi
progress ""
[[ -n $out ]] && cp "$results" "$out"

awk -v seconds="$seconds" '
{ v[$1 SUBSEP $2 SUBSEP $3] = $4 }
function has(m, s, k) { return ((m, s, k) in v) }
function get(m, s, k) { return v[m, s, k] }
function fair(m, s,   j, st, n) {
	if (!has(m, s, "jain")) return "-"
	j = get(m, s, "jain"); st = get(m, s, "starved"); n = get(m, s, "hogs")
	if (st + 0 > 0) return sprintf("Jain %.3f, %d%s starved", j, st, n ? " of " n : "")
	return sprintf("Jain %.4f", j)
}
function ticker(m, s) {
	if (!has(m, s, "wakes")) return "-"
	if (get(m, s, "status") == "starved" || get(m, s, "wakes") + 0 < 10)
		return sprintf("starved (%d wakes)", get(m, s, "wakes"))
	return sprintf("%s / %s / %s ms", get(m, s, "p50_ms"), get(m, s, "p99_ms"), get(m, s, "max_ms"))
}
function stw(m, s) {
	if (!has(m, s, "completed")) return "-"
	if (get(m, s, "status") != "ok" && get(m, s, "status") != "completed") return "never completes"
	return sprintf("%s / %s us", get(m, s, "median_us"), get(m, s, "worst_us"))
}
function row(name, a, c, g, o) { printf "%-44s | %-26s | %-26s | %-27s | %-22s\n", name, a, c, g, o }
BEGIN { ORS = "\n" }
END {
	row("scenario (" seconds " s each)", "urgent async", "urgent cooperative", "Go 1.19", "Go asyncpreemptoff=1")
	row("--------------------------------------------", "--------------------------", "--------------------------", "---------------------------", "----------------------")
	row("(a) 4 call-free loops, 1 proc: fairness", fair("async","fair1"), fair("cooperative","fair1"), fair("go","fair1"), fair("gooff","fair1"))
	row("(a) 8 call-free loops, 2 procs: fairness", fair("async","fair2"), fair("cooperative","fair2"), fair("go","fair2"), fair("gooff","fair2"))
	row("(a) 3 call-free loops, 2 procs: fairness", fair("async","fair3"), fair("cooperative","fair3"), fair("go","fair3"), fair("gooff","fair3"))
	row("(b) 1 ms ticker beside 4 loops: p50/p99/max", ticker("async","ticker"), ticker("cooperative","ticker"), ticker("go","ticker"), ticker("gooff","ticker"))
	row("(b) the same, 1 ms quantum", ticker("async","ticker1ms"), ticker("cooperative","ticker1ms"), "(not configurable)", "(not configurable)")
	row("(c) set_maxprocs beside 4 loops: med/worst", stw("async","stw"), stw("cooperative","stw"), stw("go","stw"), stw("gooff","stw"))
	row("(d) call-checked: loop with calls", fair("async","calls"), fair("cooperative","calls"), fair("go","calls"), fair("gooff","calls"))
	row("(d) call-checked: loop without calls", fair("async","nocalls"), fair("cooperative","nocalls"), fair("go","nocalls"), fair("gooff","nocalls"))
	print ""
	print "Jain index: 1 = perfectly fair, 1/n = one task has everything. Starved: under 10% of a fair share."
	print "Cooperative = tasks yield only at runtime calls; (d) compiles the loops with urg_enable_call_checks,"
	print "so every function entry is a checkpoint (Go before 1.14). Go columns: stress/compare/go."
}' "$results"
