#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# stress/soak.sh — run the soak (stress/soak/soak.c) under URG_DEBUG=chaos:
# libc-heavy, vector-register-heavy and errno-checking tasks, channels,
# select, a TCP echo over loopback, timers and urg_set_maxprocs resizes,
# side by side, every result checked, with a quantum drawn from 100 us to
# 1 ms for each 10-second round. One progress line per round.
#
# usage: stress/soak.sh [--minutes N] [--seed N]
#   --minutes N   how long (default 2; decimals allowed, e.g. 0.5)
#   --seed N      the chaos seed (and the workload's); default: random, printed
# Exits 0 when every check passed; 1 on a wrong result, 3 on a hang (no check
# completed for 60 s: the watchdog dumps the tasks), 128+signal on a crash.
# Builds the async variant in build/soak.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
minutes=2
seed=$((RANDOM * 32768 + RANDOM + 1))
while [[ $# -gt 0 ]]; do
	case $1 in
	--minutes) minutes=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	-h | --help)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		exit 0 ;;
	*) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ $seed =~ ^[1-9][0-9]*$ ]] || { echo "soak.sh: --seed wants a positive integer" >&2; exit 2; }
seconds=$(awk -v m="$minutes" 'BEGIN { if (m + 0 <= 0) exit 1; printf "%.0f", m * 60 }') ||
	{ echo "soak.sh: --minutes wants a positive number" >&2; exit 2; }

"$root/scripts/deps.sh"
dir="$root/build/soak"
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DURG_PREEMPT=async \
	-DURG_BUILD_TESTS=OFF -DURG_BUILD_BENCH=OFF -DURG_BUILD_EXAMPLES=OFF -DURG_BUILD_MAN=OFF >/dev/null
cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)" --target urgent_soak >/dev/null

echo "soak: $seconds s under URG_DEBUG=chaos=$seed (stress/soak.sh --seed $seed repeats it)"
rc=0
URG_DEBUG=chaos=$seed "$dir/stress/soak" --seconds "$seconds" --round 10 --seed "$seed" || rc=$?
if [[ $rc -ne 0 ]]; then
	if [[ $rc -gt 128 ]]; then
		echo "soak: FAILED: killed by signal $((rc - 128)) (seed $seed)" >&2
	else
		echo "soak: FAILED with status $rc (seed $seed)" >&2
	fi
	exit "$rc"
fi
