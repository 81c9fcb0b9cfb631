#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# scripts/test.sh — build and run every test, in every variant CI covers:
# the async build, the cooperative build, the sanitizer builds, and the
# async build again under URG_DEBUG=chaos (random preemption every 20-200
# us, preempted tasks moved between threads, shuffled run queues).
#
# usage: scripts/test.sh [--variants "async cooperative asan ..."] [--werror]
#   variants: async cooperative asan tsan ubsan chaos (default: all of them)
# Each variant builds in build/test-<variant> (chaos reuses test-async).
# The chaos seed is random and printed; URG_CHAOS_SEED=N repeats one.
# Exit status 0 when all pass.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
variants="async cooperative asan tsan ubsan chaos"
werror=OFF
while [[ $# -gt 0 ]]; do
	case $1 in
	--variants) variants=$2; shift 2 ;;
	--werror) werror=ON; shift ;;
	*) echo "test.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
"$root/scripts/deps.sh"

jobs=$(nproc 2>/dev/null || echo 2)
failed=()
for v in $variants; do
	case $v in
	async) opts=(-DURG_PREEMPT=async) ;;
	cooperative) opts=(-DURG_PREEMPT=cooperative) ;;
	asan) opts=(-DURG_PREEMPT=async -DURG_SANITIZE=address) ;;
	tsan) opts=(-DURG_PREEMPT=cooperative -DURG_SANITIZE=thread) ;; # TSan delays signals: see docs/preemption.md
	ubsan) opts=(-DURG_PREEMPT=async -DURG_SANITIZE=undefined -DURG_LOCKRANK=ON) ;; # and lock ranks
	chaos) opts=(-DURG_PREEMPT=async) ;;
	*) echo "test.sh: unknown variant $v" >&2; exit 2 ;;
	esac
	dir="$root/build/test-$v"
	env=()
	if [[ $v == chaos ]]; then
		dir="$root/build/test-async"
		seed=${URG_CHAOS_SEED:-$((RANDOM * 32768 + RANDOM + 1))}
		env=(env "URG_DEBUG=chaos=$seed")
		echo "=== chaos: seed $seed (URG_CHAOS_SEED=$seed $0 --variants chaos repeats it)" >&2
	fi
	echo "=== $v: building in $dir" >&2
	cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DURG_WERROR=$werror \
		-DURG_BUILD_BENCH=OFF "${opts[@]}" >/dev/null
	cmake --build "$dir" -j "$jobs" >/dev/null
	echo "=== $v: running tests" >&2
	if ! "${env[@]}" ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 300; then
		failed+=("$v")
	fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "FAILED variants: ${failed[*]}" >&2
	exit 1
fi
echo "All tests passed in: $variants" >&2
