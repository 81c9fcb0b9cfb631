#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# docs/examples/metrics_http_test.sh — the urgent.example_metrics_http test:
# starts the example on an ephemeral port, serving two connections, fetches
# /metrics and a missing page through bash's /dev/tcp socket, and checks the
# answers. It waits on the server's "listening on" line, never on time.
#
# usage: metrics_http_test.sh PATH/TO/example_metrics_http
set -euo pipefail
server=$1

coproc SRV { exec "$server" --port 0 --requests 2; }
pid=$SRV_PID
trap 'kill "$pid" 2>/dev/null || true' EXIT
read -r line <&"${SRV[0]}"
[[ $line =~ ^listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]] || { echo "FAIL: first line: $line"; exit 1; }
port=${BASH_REMATCH[1]}

fetch() {
	exec 3<>"/dev/tcp/127.0.0.1/$port"
	printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$1" >&3
	cat <&3
	exec 3<&-
}

metrics=$(fetch /metrics)
missing=$(fetch /nothing)
wait "$pid"
trap - EXIT

fail=0
check() { grep -q -- "$2" <<<"$1" || { echo "FAIL: no '$2' in:"; echo "$1" | head -20; fail=1; }; }
check "$metrics" $'^HTTP/1.0 200 OK\r$'
check "$metrics" '^Content-Type: text/plain; version=0.0.4'
check "$metrics" '^# TYPE urgent_tasks_live gauge$'
check "$metrics" '^urgent_tasks_live [0-9][0-9]*$'
check "$metrics" '^# TYPE urgent_preempt_async_total counter$'
check "$metrics" '^urgent_preempt_cost_seconds_bucket{le="+Inf"} [0-9]*$'
check "$missing" '^HTTP/1.0 404 Not Found'
[[ $fail -eq 0 ]] || exit 1
echo "metrics_http: /metrics served $(grep -c '^urgent_' <<<"$metrics") samples on port $port"
