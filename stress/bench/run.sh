#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# run.sh — runs urgent's benchmark suite and prints one comparison table.
#
# urgent's claim is "Go's scheduler, in C", so its figures only mean
# something next to Go's and next to plain threads', measured in the same
# run on the same machine. This driver builds the Go twin, runs the three
# programs (bench_urgent, bench_go, bench_pthreads), takes the median of
# each figure over --runs whole-program runs (each program already takes
# medians inside), and prints the table with the project's targets.
# bash + awk only, so that it runs on a bare CI image.
#
# usage: run.sh [--build DIR] [--quick] [--runs N]
#               [--urgent PATH] [--pthreads PATH]   (CMake's `urgent_bench` target
#                                                    passes the exact paths)
set -u

usage() {
    sed -n '/^# usage:/,/^[^#]/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

build=build
quick=0
runs=1
urgent_bin=
pthreads_bin=
while [ $# -gt 0 ]; do
    case "$1" in
    --build) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --runs) [ $# -ge 2 ] || usage; runs=$2; shift 2 ;;
    --urgent) [ $# -ge 2 ] || usage; urgent_bin=$2; shift 2 ;;
    --pthreads) [ $# -ge 2 ] || usage; pthreads_bin=$2; shift 2 ;;
    -h | --help) usage ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
    esac
done
case "$runs" in
'' | *[!0-9]* | 0) echo "run.sh: --runs wants a positive integer" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$build" || exit 1
build=$(cd "$build" && pwd)
# Everything this script makes goes under one folder of the build dir, so a
# fresh machine needs nothing else, and removing the build dir removes it.
work=$build/bench-out
mkdir -p "$work" || exit 1

say() { printf '%s\n' "$*" >&2; }

# The C programs are CMake targets; look where CMake usually puts them unless
# told exactly.
find_bin() {
    local name=$1 d
    for d in "$build/stress/bench" "$build" "$build/bin"; do
        if [ -x "$d/$name" ] && [ -f "$d/$name" ]; then
            printf '%s\n' "$d/$name"
            return 0
        fi
    done
    return 1
}
[ -n "$urgent_bin" ] || urgent_bin=$(find_bin bench_urgent) || urgent_bin=
[ -n "$pthreads_bin" ] || pthreads_bin=$(find_bin bench_pthreads) || pthreads_bin=

if [ -z "$urgent_bin" ]; then
    say "run.sh: no bench_urgent under $build (build the 'bench_urgent' target); urgent column is n/a"
fi

# The pthreads twin depends on nothing but libc, so build it here if the
# CMake build has not, rather than lose the column.
if [ -z "$pthreads_bin" ]; then
    cc=${CC:-cc}
    if command -v "$cc" >/dev/null 2>&1 &&
        "$cc" -std=c11 -O2 -pthread -o "$work/bench_pthreads" "$here/bench_pthreads.c"; then
        pthreads_bin=$work/bench_pthreads
    else
        say "run.sh: could not build bench_pthreads with '$cc'; pthreads column is n/a"
    fi
fi

# The Go twin: its cache, module path and toolchain are pinned inside the
# build dir and offline, so a fresh machine or a sandbox without network or
# HOME still builds it.
go_bin=
if command -v go >/dev/null 2>&1; then
    say "run.sh: building the Go twin"
    if (cd "$here/go" &&
        GOCACHE="$work/gocache" GOPATH="$work/gopath" GOFLAGS="" GO111MODULE=on \
            GOPROXY=off GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 \
            go build -o "$work/bench_go" bench.go); then
        go_bin=$work/bench_go
    else
        say "run.sh: 'go build' failed; Go column is n/a"
    fi
else
    say "run.sh: 'go' not found; Go column is n/a. To get it:"
    say "    apt-get install -y golang-go      (as root; Debian/Ubuntu)"
fi

args=()
[ "$quick" = 1 ] && args+=(--quick)
# A hung program must not hang CI; the programs also limit each workload.
limit=()
command -v timeout >/dev/null 2>&1 && limit=(timeout 1200)

# run_prog LABEL BIN: runs BIN --runs times, raw output in $work/LABEL.N.out
run_prog() {
    local label=$1 bin=$2 i
    rm -f "$work/$label".*.out
    [ -n "$bin" ] || return 0
    for ((i = 1; i <= runs; i++)); do
        say "run.sh: $label run $i/$runs"
        "${limit[@]}" "$bin" "${args[@]}" >"$work/$label.$i.out" ||
            say "run.sh: $label run $i exited with status $?"
    done
}
run_prog urgent "$urgent_bin"
run_prog go "$go_bin"
run_prog pthreads "$pthreads_bin"

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
[ -n "$cpu" ] || cpu=$(uname -m)
gov=$(go version 2>/dev/null) || gov="go: not installed"
echo
echo "machine: $cpu, nproc $(nproc 2>/dev/null || echo '?'), kernel $(uname -r), $gov, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "mode: $([ "$quick" = 1 ] && echo 'quick (N/10, smoke figures only)' || echo full), runs per program: $runs, raw output: $work/*.out"
echo

# Table. Each program file is tagged by its label through FILENAME; a figure
# is the median over runs of the numeric values, n/a when there are none.
shopt -s nullglob
files=("$work"/urgent.*.out "$work"/go.*.out "$work"/pthreads.*.out)
shopt -u nullglob
awk -v nfiles="${#files[@]}" '
function label(f,   b) { b = f; sub(/.*\//, "", b); sub(/\..*/, "", b); return b }
function median(list,   n, v, i, j, t) {
    n = split(list, v, " ")
    if (n == 0) return "n/a"
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return n % 2 ? v[(n + 1) / 2] + 0 : (v[n / 2] + v[n / 2 + 1]) / 2
}
function fmt(x) {
    if (x == "n/a") return x
    x += 0
    if (x >= 1000 || x <= -1000) return sprintf("%.0f", x)
    if (x >= 10 || x <= -10) return sprintf("%.1f", x)
    return sprintf("%.2f", x)
}
$1 == "RESULT" && NF == 3 && $3 != "n/a" && $3 ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ {
    vals[label(FILENAME), $2] = vals[label(FILENAME), $2] " " $3
}
END {
    nk = split("yield_ns spawn_ns chan_rt_ns parked_bytes queued_bytes million_ms million_parked_ms million_cold_ms million_parked_cold_ms fib1_ms fib2_ms fib_speedup", keys, " ")
    for (i = 1; i <= nk; i++) {
        k = keys[i]
        u[k] = median(vals["urgent", k]); g[k] = median(vals["go", k]); p[k] = median(vals["pthreads", k])
    }
    # target: text, and the bound the urgent figure must meet
    tt["yield_ns"] = "<= 20";        tb["yield_ns"] = 20
    tt["spawn_ns"] = "<= 100";       tb["spawn_ns"] = 100
    tt["chan_rt_ns"] = "<= 150";     tb["chan_rt_ns"] = 150
    tt["parked_bytes"] = "<= 4608";  tb["parked_bytes"] = 4608
    tt["queued_bytes"] = "<= 256";   tb["queued_bytes"] = 256
    tt["million_ms"] = "< 1000";     tb["million_ms"] = 1000
    tt["fib_speedup"] = ">= 1.8";    tb["fib_speedup"] = 1.8
    split("million_cold_ms million_parked_cold_ms", cold, " ")
    for (c in cold) {
        k = cold[c]
        if (g[k] != "n/a") { tb[k] = 0.8 * g[k]; tt[k] = sprintf("<= 0.8 x Go (%s)", fmt(tb[k])) }
        else tt[k] = "<= 0.8 x Go"
    }
    if (g["fib1_ms"] != "n/a") {
        tb["fib1_ms"] = 0.3 * g["fib1_ms"]; tt["fib1_ms"] = sprintf("<= 0.3 x Go (%s)", fmt(tb["fib1_ms"]))
    } else {
        tt["fib1_ms"] = "<= 0.3 x Go"
    }
    hdr = sprintf("%-22s %10s %10s %10s  %-24s %-20s %s", "workload", "urgent", "Go", "pthreads", "vs Go (>1: urgent ahead)", "target (urgent)", "met")
    print hdr
    gsub(/./, "-", hdr); print hdr
    for (i = 1; i <= nk; i++) {
        k = keys[i]
        ratio = "-"
        if (u[k] != "n/a" && g[k] != "n/a" && u[k] > 0 && g[k] > 0) {
            if (k == "fib_speedup") { r = u[k] / g[k]; word = r >= 1 ? "higher" : "(lower)" }
            else if (k ~ /_bytes$/) { r = g[k] / u[k]; word = r >= 1 ? "smaller" : "(larger)" }
            else { r = g[k] / u[k]; word = r >= 1 ? "faster" : "(slower)" }
            ratio = sprintf("%.2fx %s", r, word)
        }
        met = "-"
        if (k in tt && k in tb && u[k] != "n/a") {
            ok = (k == "fib_speedup") ? (u[k] >= tb[k]) : (k == "million_ms") ? (u[k] < tb[k]) : (u[k] <= tb[k])
            met = ok ? "yes" : "NO"
        }
        printf "%-22s %10s %10s %10s  %-24s %-20s %s\n", k, fmt(u[k]), fmt(g[k]), fmt(p[k]), ratio, (k in tt) ? tt[k] : "", met
    }
    print ""
    print "vs Go: Go/urgent for times and bytes (\"2.00x faster\" = half of Go'"'"'s time; below 1 urgent is behind),"
    print "       urgent/Go for fib_speedup (higher is better there)."
    print "pthreads: spawn_ns uses 10^4 threads, parked_bytes 2000 (a tenth with --quick; kernel stacks not in RSS),"
    print "fib uses a thread per call only for n >= 20; see docs/benchmarks.md."
}
' "${files[@]}" /dev/null
