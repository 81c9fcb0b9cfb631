#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# scripts/check-abi.sh — does liburgent.so export exactly the checked-in list?
#
# usage: scripts/check-abi.sh LIBURGENT.SO [abi/liburgent.symbols]
# Compares the library's defined dynamic symbols (nm -D) with the names in the
# list ('#' comments and blank lines ignored). Exit 0 when they agree; else
# prints each name that is only on one side, says which file to change, and
# exits 1. The ctest test urgent.abi runs it on every build.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lib=${1:?usage: check-abi.sh LIBURGENT.SO [SYMBOL-LIST]}
list=${2:-$root/abi/liburgent.symbols}
[[ -f $lib ]] || { echo "check-abi: no library at $lib" >&2; exit 2; }
[[ -f $list ]] || { echo "check-abi: no symbol list at $list" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$list" | LC_ALL=C sort >"$tmp/expected"
dups=$(LC_ALL=C uniq -d "$tmp/expected")
if [[ -n $dups ]]; then
	echo "check-abi: listed twice in $list: $dups" >&2
	exit 1
fi
# Defined symbols only (U: imported); a versioned name (name@@VER) is shown
# with its version, which the list must then carry too.
nm -D --defined-only --format=posix "$lib" | awk '{print $1}' | LC_ALL=C sort -u >"$tmp/actual"

if cmp -s "$tmp/expected" "$tmp/actual"; then
	echo "check-abi: $(wc -l <"$tmp/actual") exported symbols, as listed in ${list#"$root"/}"
	exit 0
fi
echo "check-abi: the symbols exported by $lib differ from $list" >&2
LC_ALL=C comm -13 "$tmp/expected" "$tmp/actual" | sed 's/^/  exported, not listed: /' >&2
LC_ALL=C comm -23 "$tmp/expected" "$tmp/actual" | sed 's/^/  listed, not exported: /' >&2
cat >&2 <<'MSG'
An intended change: add or remove the name in abi/liburgent.symbols (and, for
a name that is not urg_*, in the matching section of abi/liburgent.map).
An unintended export: give the symbol internal linkage or an urg__ name
(the library builds with -fvisibility=hidden).
MSG
exit 1
