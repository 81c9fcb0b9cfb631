#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# scripts/demo.sh — the flagship demo: build urgent twice (async and
# cooperative preemption) and run the comparison side by side with Go.
#
# usage: scripts/demo.sh [--seconds S] [--no-go]
# Builds in build/demo-async and build/demo-cooperative.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
args=("$@")
with_go=--with-go
for a in "$@"; do [[ $a == --no-go ]] && with_go=""; done
"$root/scripts/deps.sh" $with_go || {
	# Go only adds columns; carry on without it if that is all that failed.
	[[ -n $with_go ]] && "$root/scripts/deps.sh" && args+=(--no-go) || exit 1
}

jobs=$(nproc 2>/dev/null || echo 2)
for mode in async cooperative; do
	echo "Building the $mode variant..." >&2
	cmake -S "$root" -B "$root/build/demo-$mode" -DCMAKE_BUILD_TYPE=Release -DURG_PREEMPT=$mode \
		-DURG_BUILD_TESTS=OFF -DURG_BUILD_BENCH=OFF -DURG_BUILD_EXAMPLES=OFF >/dev/null
	cmake --build "$root/build/demo-$mode" --target urgent_compare -j "$jobs" >/dev/null
done
exec "$root/stress/compare/run.sh" --async "$root/build/demo-async/stress/compare" \
	--coop "$root/build/demo-cooperative/stress/compare" "${args[@]}"
