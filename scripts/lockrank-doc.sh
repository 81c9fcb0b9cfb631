#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# scripts/lockrank-doc.sh — docs/design.md's table of lock ranks, made from
# runtime/lockrank.h, the one place the lock order is written.
#
# usage: scripts/lockrank-doc.sh           rewrite the table in docs/design.md
#        scripts/lockrank-doc.sh --check   exit 1, with a diff, if it is stale (CI)
#
# The header's URG__LOCKRANKS list has one entry a line, in rank order:
#   X(ID, "lock[, lock...]", ONE|MANY, "what it protects") \
# The table sits between the two marker lines below in docs/design.md;
# everything outside them is left alone.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
header=$root/runtime/lockrank.h
doc=$root/docs/design.md
check=0
case ${1:-} in
--check) check=1 ;;
"") ;;
*) echo "usage: scripts/lockrank-doc.sh [--check]" >&2; exit 2 ;;
esac

begin='<!-- lockrank table: generated from runtime/lockrank.h by scripts/lockrank-doc.sh; edit the header, not this -->'
end='<!-- end of lockrank table -->'

# table: the markdown rows, from the header's X(...) lines.
table() {
	local entries
	entries=$(sed -n '/^#define URG__LOCKRANKS(X)/,/^[^\\]*$/p' "$header" |
		sed -n -E 's/^ *X\(([A-Z_]+), *"([^"]*)", *(ONE|MANY), *"([^"]*)"\) *\\?$/\2|\3|\4/p')
	if [[ -z $entries ]]; then
		echo "lockrank-doc: no X(...) entries under URG__LOCKRANKS in $header" >&2
		exit 2
	fi
	echo "| rank | lock | protects |"
	echo "|---|---|---|"
	local rank=0 names kind what lock sep
	while IFS='|' read -r names kind what; do
		rank=$((rank + 1))
		lock="" sep=""
		IFS=',' read -r -a parts <<<"$names"
		for n in "${parts[@]}"; do
			n=${n# }
			lock+="$sep\`$n\`"
			sep=", "
		done
		[[ $kind == MANY ]] && lock+=" (several at once: in address order)"
		echo "| $rank | $lock | $what |"
	done <<<"$entries"
}

# render: the doc with the table between the markers replaced.
render() {
	local rows
	rows=$(table)
	if ! grep -qxF "$begin" "$doc" || ! grep -qxF "$end" "$doc"; then
		echo "lockrank-doc: the marker lines are missing from $doc:" >&2
		printf '  %s\n  %s\n' "$begin" "$end" >&2
		exit 2
	fi
	ROWS=$rows awk -v begin="$begin" -v end="$end" '
		$0 == begin { print; print ENVIRON["ROWS"]; skip = 1; next }
		$0 == end { skip = 0 }
		!skip { print }' "$doc"
}

new=$(render)
if [[ $check == 1 ]]; then
	if ! diff -u --label "docs/design.md" --label "docs/design.md (from runtime/lockrank.h)" \
		"$doc" <(printf '%s\n' "$new"); then
		echo "lockrank-doc: docs/design.md's lock table is stale: run scripts/lockrank-doc.sh" >&2
		exit 1
	fi
	exit 0
fi
printf '%s\n' "$new" >"$doc"
