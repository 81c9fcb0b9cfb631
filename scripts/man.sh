#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# scripts/man.sh — the section 3 man pages, made from docs/api.md.
#
# usage: man.sh [--version V] [--date D] API.md OUTDIR    (needs pandoc)
#        man.sh --check API.md SYMBOLS                     (bash and awk only)
#
# Each "## " section of api.md whose ```c blocks declare urg_* functions
# becomes one page, named after the first of them (urg_run.3, urg_go.3,
# urg_chan_new.3, ...), with a one-line page (".so man3/urg_go.3") for each
# of the others, so that `man urg_yield` works. The sections that declare
# none (conventions, environment, linking, ...) make urgent.3. Links become
# their text; the rest is pandoc's markdown-to-man.
#
# --check lists the urg_* functions of the symbol list (abi/liburgent.symbols)
# that no ```c block of api.md declares, and exits 1 if there are any: every
# exported function has a man page.
set -euo pipefail

version=
date=
check=0
while [[ $# -gt 0 ]]; do
	case $1 in
	--version) version=$2; shift 2 ;;
	--date) date=$2; shift 2 ;;
	--check) check=1; shift ;;
	-*) echo "man.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[[ $# -eq 2 ]] || { sed -n 's/^# usage: //p;s/^#        //p' "${BASH_SOURCE[0]}" >&2; exit 2; }
api=$1

# declared FILE: "section-number name" for each urg_* function a ```c block
# declares (a type, then the name and "("; calls and returns do not count).
declared() {
	awk '
	/^## / { sec++ }
	/^```c[ ]*$/ { inc = 1; next }
	/^```/ { inc = 0; next }
	inc {
		line = $0
		while (match(line, /[A-Za-z0-9_*]+[ *]+urg_[a-z0-9_]+[ ]*\(/)) {
			m = substr(line, RSTART, RLENGTH)
			line = substr(line, RSTART + RLENGTH)
			if (m ~ /^return[ ]/) continue
			sub(/^[A-Za-z0-9_*]+[ *]+/, "", m); sub(/[ ]*\($/, "", m)
			if (!(m in seen)) { seen[m] = 1; print sec, m }
		}
	}' "$1"
}

if [[ $check -eq 1 ]]; then
	syms=$2
	missing=$(LC_ALL=C comm -23 \
		<(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$syms" | grep '^urg_' | LC_ALL=C sort -u) \
		<(declared "$api" | awk '{print $2}' | LC_ALL=C sort -u))
	if [[ -n $missing ]]; then
		echo "man.sh: exported but declared in no \`\`\`c block of $api (so no man page):" $missing >&2
		exit 1
	fi
	echo "man.sh: every urg_* function of $(basename "$syms") has a man page"
	exit 0
fi

out=$2
pandoc=${PANDOC:-pandoc}
command -v "$pandoc" >/dev/null || { echo "man.sh: pandoc not found (Debian/Ubuntu: apt-get install pandoc)" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/*.3 # pages of functions since removed must not linger
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declared "$api" >"$tmp/decl"

# Split api.md: the text before the first "## " is the intro (its "# "
# title dropped); each section goes to $tmp/sec.N with its title in
# $tmp/title.N, and a ```c block that opens it to $tmp/syn.N (the
# synopsis). "### " becomes "## " (a subsection under DESCRIPTION).
awk -v dir="$tmp" '
	!code && /^## / { sec++; t = substr($0, 4); print t > (dir "/title." sec); close(dir "/title." sec); started = 0; next }
	!code && /^# / && sec == 0 { next }
	!code && /^### / { sub(/^### /, "## ") }
	!code && !started && /^[ \t]*$/ { next }
	!code && !started && sec > 0 && /^```c[ ]*$/ { code = 1; syn = 1; started = 1; next }
	/^```/ { code = !code; if (!code && syn) { syn = 0; next } }
	{ started = 1; print > (dir (syn ? "/syn." : "/sec.") sec + 0) }
' "$api"

# Links to their text: [text](target) -> text.
unlink() { sed -E 's/\[([^]]*)\]\([^)]*\)/\1/g'; }

pages=()
nsec=$(ls "$tmp"/title.* | wc -l)
for ((i = 1; i <= nsec; i++)); do
	names=$(awk -v s=$i '$1 == s {print $2}' "$tmp/decl")
	[[ -n $names ]] && pages+=("${names%%$'\n'*}")
done

render() { # NAME TITLE-FOR-HEADER < markdown
	"$pandoc" -f markdown -t man -s -M title="$1" -M section=3 -M date="$date" \
		-M footer="urgent $version" -M header="urgent manual" -o "$out/$1.3"
}

see_also() { # all pages but $1, as **name**(3)
	local p list="**urgent**(3)"
	[[ $1 == urgent ]] && list=
	for p in "${pages[@]}"; do
		[[ $p == "$1" ]] && continue
		list+="${list:+, }**$p**(3)"
	done
	printf '%s\n' "$list"
}

# One page per section that declares functions.
for ((i = 1; i <= nsec; i++)); do
	names=$(awk -v s=$i '$1 == s {print $2}' "$tmp/decl")
	[[ -z $names ]] && continue
	page=${names%%$'\n'*} # the first (no head: a pipe that closes early fails under pipefail)
	title=$(cat "$tmp/title.$i")
	{
		echo "# NAME"
		echo
		echo "$(echo "$names" | paste -sd, | sed 's/,/, /g') - $(echo "$title" | tr 'A-Z' 'a-z') (urgent)"
		echo
		echo "# SYNOPSIS"
		echo
		echo '```c'
		echo '#include <urgent.h>'
		echo
		cat "$tmp/syn.$i"
		echo '```'
		echo
		echo 'Link with **-lurgent** (**pkg-config \-\-libs urgent**).'
		echo
		echo "# DESCRIPTION"
		echo
		unlink <"$tmp/sec.$i"
		echo
		echo "# SEE ALSO"
		echo
		see_also "$page"
	} | render "$page"
	for n in $names; do
		[[ $n == "$page" ]] || printf '.so man3/%s.3\n' "$page" >"$out/$n.3"
	done
done

# urgent.3: the intro and every section without functions.
{
	echo "# NAME"
	echo
	echo "urgent - Go's goroutine scheduler and asynchronous preemption for C"
	echo
	echo "# SYNOPSIS"
	echo
	echo '**#include <urgent.h>**'
	echo
	echo 'Link with **-lurgent** (**pkg-config \-\-cflags \-\-libs urgent**, or CMake **find_package(urgent)**).'
	echo
	echo "# DESCRIPTION"
	echo
	unlink <"$tmp/sec.0"
	for ((i = 1; i <= nsec; i++)); do
		awk -v s=$i '$1 == s {f = 1} END {exit !f}' "$tmp/decl" && continue
		echo
		echo "# $(tr 'a-z' 'A-Z' <"$tmp/title.$i")"
		echo
		if [[ -f $tmp/syn.$i ]]; then
			echo '```c'
			cat "$tmp/syn.$i"
			echo '```'
			echo
		fi
		unlink <"$tmp/sec.$i"
	done
	echo
	echo "# SEE ALSO"
	echo
	see_also urgent
} | render urgent
echo "man.sh: $(ls "$out" | wc -l) pages in $out"
