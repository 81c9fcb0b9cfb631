#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# Build stress/compare/go/gosched.go and run it in both of Go's modes:
# default (async preemption) and GODEBUG=asyncpreemptoff=1 (cooperative only).
#
# usage: run.sh [-w WORKDIR] [-k] [-n RUNS] [-- GOSCHED_ARGS...]
#   -w WORKDIR  where the binary, GOCACHE and outputs go (default: a new
#               temporary directory, removed at exit unless -k)
#   -k          keep the temporary WORKDIR
#   -n RUNS     run the whole thing RUNS times (default 1); with RUNS > 1 a
#               per-figure median over the runs is printed as MEDIAN lines
#               (per-hog shares are left out: which hog wins varies)
#   GOSCHED_ARGS e.g. -only a,c or -d 1s
# Output: RESULT <mode> <scenario> <key> <value> lines and # comments.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workdir=""
keep=0
runs=1
while getopts "w:kn:h" opt; do
	case $opt in
	w) workdir=$OPTARG ;;
	k) keep=1 ;;
	n) runs=$OPTARG ;;
	h)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		exit 0
		;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))

if [[ -z $workdir ]]; then
	workdir=$(mktemp -d "${TMPDIR:-/tmp}/urgent-gosched.XXXXXX")
	if [[ $keep == 0 ]]; then
		trap 'rm -rf "$workdir"' EXIT
	fi
fi
mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)

export GOCACHE="$workdir/gocache"
export CGO_ENABLED=1
export GOFLAGS=
bin="$workdir/gosched"
(cd "$here" && go build -o "$bin" .)

# The hog loop must be call-free (its only preemption point is an async
# one), and the function called in scenario d must have the stack-check
# prologue that cooperative preemption uses (amd64 only).
if [[ $(go env GOARCH) == amd64 ]]; then
	hog=$(go tool objdump -s '^main\.hogSpin$' "$bin")
	if grep -q CALL <<<"$hog"; then
		echo "run.sh: main.hogSpin contains a CALL:" >&2
		echo "$hog" >&2
		exit 1
	fi
	echo "# check: main.hogSpin has no CALL ($(grep -c '^  ' <<<"$hog") instructions)"
	for f in step stepLeaf; do
		if go tool objdump -s "^main\.$f\$" "$bin" | grep -q 'CMPQ 0x10(R14), SP'; then
			echo "# check: main.$f has a stack-check prologue (cooperative preemption point)"
		else
			echo "# check: main.$f has no stack-check prologue (no cooperative preemption point)"
		fi
	done
fi

echo "# $(go version)"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) online"

# Each scenario ends itself on time; the timeout is only a safety net.
limit=120
for ((r = 1; r <= runs; r++)); do
	for mode in async asyncpreemptoff; do
		[[ $runs -gt 1 ]] && echo "# run $r, $mode"
		if [[ $mode == async ]]; then
			env -u GODEBUG timeout "$limit" "$bin" "$@" | tee "$workdir/run$r.$mode.txt"
		else
			GODEBUG=asyncpreemptoff=1 timeout "$limit" "$bin" "$@" | tee "$workdir/run$r.$mode.txt"
		fi
	done
done

if [[ $runs -gt 1 ]]; then
	echo "# median over $runs runs"
	cat "$workdir"/run*.txt | awk '
		$1 == "RESULT" && $4 !~ /^share/ && $5 ~ /^-?[0-9.]+$/ {
			k = $2 " " $3 " " $4
			if (!(k in n)) order[++nk] = k
			v[k, ++n[k]] = $5
		}
		END {
			for (i = 1; i <= nk; i++) {
				k = order[i]; m = n[k]
				for (a = 1; a <= m; a++) s[a] = v[k, a] + 0
				for (a = 2; a <= m; a++)
					for (b = a; b > 1 && s[b-1] > s[b]; b--) { t = s[b]; s[b] = s[b-1]; s[b-1] = t }
				med = (m % 2) ? s[(m+1)/2] : (s[m/2] + s[m/2+1]) / 2
				printf "MEDIAN %s %.10g\n", k, med
			}
		}'
fi
