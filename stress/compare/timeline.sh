#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# stress/compare/timeline.sh — draw docs/timeline.svg: the timeline of four
# call-free loops on one proc, in the async build and in the cooperative
# one, from the traces the two builds write (URG_DEBUG=trace=PATH).
#
# usage: timeline.sh --async BIN --coop BIN [--seconds S] [--window-ms MS] [--out FILE]
#   --async BIN      the compare program built with -DURG_PREEMPT=async
#   --coop BIN       the same built with -DURG_PREEMPT=cooperative
#   --seconds S      how long the loops run (default 0.5)
#   --window-ms MS   how much of the run to draw, from its start (default 200)
#   --out FILE       the picture (default docs/timeline.svg)
#   --keep DIR       also keep the two traces there (open them in ui.perfetto.dev)
# Needs python3 (standard library only).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
async_bin="" coop_bin="" seconds=0.5 window=200 out="$here/../../docs/timeline.svg" keep=""
while [[ $# -gt 0 ]]; do
	case $1 in
	--async) async_bin=$2; shift 2 ;;
	--coop) coop_bin=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--window-ms) window=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--keep) keep=$2; shift 2 ;;
	-h | --help)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
		exit 0 ;;
	*) echo "timeline.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ -x $async_bin && -x $coop_bin ]] || { echo "timeline.sh: need --async and --coop binaries" >&2; exit 2; }
command -v python3 >/dev/null || { echo "timeline.sh: needs python3" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/urgent-timeline.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

for b in async coop; do
	bin=$async_bin; [[ $b == coop ]] && bin=$coop_bin
	URG_DEBUG="trace=$tmp/$b.json" "$bin" fair1 --seconds "$seconds" | sed -n 's/^RESULT //p' >&2
done
python3 "$here/timeline.py" --window-ms "$window" "$out" \
	"urgent async: SIGURG preempts each loop at the end of its quantum=$tmp/async.json" \
	"urgent cooperative: the first loop keeps the proc; the others starve=$tmp/coop.json"
if [[ -n $keep ]]; then
	mkdir -p "$keep"
	cp "$tmp/async.json" "$tmp/coop.json" "$keep/"
fi
