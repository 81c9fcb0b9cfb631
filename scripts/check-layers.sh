#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# scripts/check-layers.sh — holds the source tree to its layers
# (docs/design.md, "Layers"): every #include "..." must point down, no
# machine register is named outside arch/, and no function in runtime/,
# signals/, unwind/ or arch/ runs past 80 lines unless the comment above
# it says why ("Long: ...").
#
#   arch/     the leaf: includes nothing outside arch/
#   unwind/   arch/, the base headers
#   signals/  arch/, unwind/, the base headers, runtime/preempt_iface.h
#   runtime/  anything but signals/handler.h (the signal layer's inside)
# The base headers (runtime/internal.h, runtime/lockrank.h) hold macros,
# atomics, printing and the lock type: no scheduler types.
#
# usage: scripts/check-layers.sh [ROOT]     exit 0 clean, 1 on a violation
set -u
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$root" || exit 2
base="runtime/internal.h runtime/lockrank.h"
bad=0

# resolve FILE INC: the repository path a quoted include names, as the
# compiler finds it (the including file's folder, the root, the public
# include folder, arch/<cpu>), or "public:INC" for the API and generated
# headers.
resolve() {
	local dir inc=$2
	dir=$(dirname "$1")
	if [ -f "$dir/$inc" ]; then
		realpath --relative-to=. "$dir/$inc"
	elif [ -f "$inc" ]; then
		echo "$inc"
	elif [ -f "arch/x86_64/$inc" ]; then
		echo "arch/x86_64/$inc"
	else
		echo "public:$inc"
	fi
}

# allowed LAYER TARGET: may a file of LAYER include TARGET?
allowed() {
	local layer=$1 t=$2
	case $t in public:*) return 0 ;; esac
	case $layer in
	arch) [[ $t == arch/* ]] ;;
	unwind) [[ $t == arch/* || $t == unwind/* || " $base " == *" $t "* ]] ;;
	signals) [[ $t == arch/* || $t == unwind/* || $t == signals/* || $t == runtime/preempt_iface.h ||
		" $base " == *" $t "* ]] ;;
	base) [[ " $base " == *" $t "* ]] ;;
	runtime) [[ $t != signals/handler.h ]] ;;
	*) return 0 ;;
	esac
}

for f in $(git ls-files --cached --others --exclude-standard 'arch/*' 'unwind/*' 'signals/*' 'runtime/*' | grep -E '\.(c|h|S)$'); do
	case $f in
	runtime/internal.h | runtime/lockrank.h | runtime/preempt_iface.h) layer=base ;;
	runtime/include/*) layer=public ;;
	*) layer=${f%%/*} ;;
	esac
	while IFS=: read -r n inc; do
		inc=${inc#*\"}
		inc=${inc%%\"*}
		t=$(resolve "$f" "$inc")
		if ! allowed "$layer" "$t"; then
			echo "check-layers: $f:$n: a $layer file includes $t" >&2
			bad=1
		fi
	done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
done

# Machine registers by name: only arch/ knows them.
if grep -nE '\b(REG_R[A-Z0-9]+|URG_R_[A-Z0-9]+|gregs|uc_mcontext)\b' \
	$(git ls-files --cached --others --exclude-standard 'runtime/*' 'signals/*' 'unwind/*' | grep -E '\.(c|h)$') >&2; then
	echo "check-layers: machine registers named outside arch/ (use arch/sigctx.h)" >&2
	bad=1
fi

# Names (docs/design.md, "Names"): a macro or typedef an internal header
# shares between files is URG__NAME or urg__name; the public header's are
# URG_NAME. The exceptions are the few every file uses, listed here: Go's
# g_t/m_t/p_t and sched, internal.h's atomic and branch shorthands, the
# build's configuration macros, flag bits of an enum's family, and a
# macro <sys/sdt.h> reads.
shorthand='likely|unlikely|ld_relaxed|ld_acquire|ld_seq_cst|st_relaxed|st_release|st_seq_cst|xchg|cas|fetch_add|fetch_sub|counter_inc|counter_add|sched|URG_BUILDING_LIBRARY|URG_PREEMPT_ASYNC|G_LASTP_PASSED|DEFER_CALLER|SDT_USE_VARIADIC'
names=$(git ls-files --cached --others --exclude-standard 'arch/*' 'unwind/*' 'signals/*' 'runtime/*' |
	grep -E '\.h$' | grep -v '^runtime/include/' |
	xargs grep -nE '^[[:space:]]*#[[:space:]]*define[[:space:]]+[A-Za-z_]' |
	grep -vE "#[[:space:]]*define[[:space:]]+(URG__[A-Z0-9_]*|urg__[a-z0-9_]*|($shorthand))\b" || true)
# typedef names: a one-line typedef's last word, or the "} name;" that
# closes a typedef'd struct.
names+=$(awk '
	/^typedef/ && /;[[:space:]]*$/ {
		t = $0; sub(/\).*$/, "", t); sub(/;[[:space:]]*$/, "", t); n = split(t, w, /[^A-Za-z0-9_]+/)
		if (w[n] == "") n--
		if (w[n] !~ /^(urg__[a-z0-9_]*|g_t|m_t|p_t)$/) print "\n" FILENAME ":" FNR ":" $0
		next
	}
	/^typedef/ && /\{/ { open = 1; next }
	open && /^\}/ {
		open = 0; t = $0; gsub(/[};[:space:]]/, "", t)
		if (t !~ /^urg__[a-z0-9_]*$/) print "\n" FILENAME ":" FNR ":" $0
	}
' $(git ls-files --cached --others --exclude-standard 'arch/*' 'unwind/*' 'signals/*' 'runtime/*' |
	grep -E '\.h$' | grep -v '^runtime/include/'))
names+=$(grep -nE '^[[:space:]]*#[[:space:]]*define[[:space:]]+' runtime/include/urgent.h |
	grep -vE '#[[:space:]]*define[[:space:]]+(URG_[A-Z0-9_]*|URGENT_H)\b' || true)
if [ -n "$(echo "$names" | tr -d "[:space:]")" ]; then
	echo "$names" | grep -v "^$" | sed 's/^/check-layers: an internal name without URG__\/urg__ (or a public one without URG_): /' >&2
	bad=1
fi

# Long functions: a body past 80 lines needs "Long:" in the comment
# right above it (a function starts at a column-0 line with "(" that is
# not a declaration, its body at a column-0 "{", and ends at "}").
long=$(awk '
	FNR == 1 { comment = "" }
	/^\/\*/ { comment = "" }
	/^\/\*/, /\*\/$/ { comment = comment $0 "\n"; next }
	/^[A-Za-z_].*\(/ && !/;[[:space:]]*$/ { name = $0; start = FNR; c = comment; next }
	/^\{/ && name != "" { body = FNR; next }
	/^\}/ && name != "" {
		if (FNR - start > 80 && c !~ /Long:/)
			printf "%s:%d: %d lines: %s\n", FILENAME, start, FNR - start, name
		name = ""; comment = ""; next
	}
	/^[^ \t{}#]/ && name == "" { comment = "" }
' $(git ls-files --cached --others --exclude-standard 'arch/*' 'unwind/*' 'signals/*' 'runtime/*' | grep -E '\.c$'))
if [ -n "$long" ]; then
	echo "$long" | sed 's/^/check-layers: over 80 lines without a "Long:" reason: /' >&2
	bad=1
fi

[ $bad = 0 ] && echo "check-layers: layers, registers, names and function lengths are clean"
exit $bad
