#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# scripts/spdx.sh — the SPDX licence header on every source file.
#
# usage: scripts/spdx.sh           add the header where it is missing
#        scripts/spdx.sh --check   list files without it; exit 1 if any (CI)
#
# Source files: C and headers (.c .h .S .s .h.in), linker scripts (.map),
# CMake (CMakeLists.txt, .cmake, .cmake.in), pkg-config templates (.pc.in),
# shell (.sh, or no extension and a sh/bash shebang), Go (.go) and Python
# (.py, or a python shebang): tracked files, and new ones git does not ignore.
# Third-party code (third_party/, third-party/, vendor/) keeps its own.
# The header is two lines, the first thing in the file (after a shebang):
#   SPDX-FileCopyrightText: the urgent authors
#   SPDX-License-Identifier: MIT
# in the file's comment syntax. A file counts as done when
# "SPDX-License-Identifier:" is in its first five lines.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
check=0
case ${1:-} in
--check) check=1 ;;
"") ;;
*) echo "usage: scripts/spdx.sh [--check]" >&2; exit 2 ;;
esac

owner="SPDX-FileCopyrightText: the urgent authors"
licence="SPDX-License-Identifier: MIT"

# style FILE: c, hash, slash or none (not a source file).
style() {
	local f=$1 first
	case $f in
	third_party/* | third-party/* | vendor/* | */third_party/* | */third-party/* | */vendor/*) echo none; return ;;
	*.c | *.h | *.S | *.s | *.h.in | *.map) echo c; return ;;
	CMakeLists.txt | */CMakeLists.txt | *.cmake | *.cmake.in | *.pc.in | *.sh | *.py) echo hash; return ;;
	*.go) echo slash; return ;;
	*/*.* | *.*) echo none; return ;;
	esac
	# No extension: a script if its shebang says so.
	IFS= read -r first <"$f" 2>/dev/null || first=
	case $first in
	'#!'*sh* | '#!'*python*) echo hash ;;
	*) echo none ;;
	esac
}

# (grep -c, not -q: an early exit would fail the pipeline under pipefail.)
has_header() { [[ $(head -n 5 "$1" | grep -c 'SPDX-License-Identifier:') -gt 0 ]]; }

add_header() { # FILE STYLE
	local f=$1 tmp
	tmp=$(mktemp "$f.spdx.XXXXXX")
	{
		local first
		IFS= read -r first <"$f" || true
		case $first in '#!'*) printf '%s\n' "$first" ;; esac
		case $2 in
		c) printf '/* %s */\n/* %s */\n' "$owner" "$licence" ;;
		hash) printf '# %s\n# %s\n' "$owner" "$licence" ;;
		slash) printf '// %s\n// %s\n\n' "$owner" "$licence" ;;
		esac
		case $first in '#!'*) tail -n +2 "$f" ;; *) cat "$f" ;; esac
	} >"$tmp"
	chmod --reference="$f" "$tmp"
	mv "$tmp" "$f"
}

missing=()
while IFS= read -r -d '' f; do
	[[ -f $f && ! -L $f ]] || continue
	s=$(style "$f")
	[[ $s == none ]] && continue
	has_header "$f" && continue
	if [[ $check -eq 1 ]]; then
		missing+=("$f")
	else
		add_header "$f" "$s"
		echo "spdx: added the header to $f"
	fi
done < <(git ls-files -z --cached --others --exclude-standard)

if [[ $check -eq 1 ]]; then
	if [[ ${#missing[@]} -gt 0 ]]; then
		echo "spdx: ${#missing[@]} source file(s) without an SPDX header (run scripts/spdx.sh to add it):" >&2
		printf '  %s\n' "${missing[@]}" >&2
		exit 1
	fi
	echo "spdx: every source file has its SPDX header"
fi
