#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# scripts/check-probes.sh — does liburgent.so carry every USDT probe?
#
# usage: scripts/check-probes.sh LIBURGENT.SO [HAVE_SDT [PREEMPT]]
# Reads the library's .note.stapsdt notes (readelf -n) and checks that each
# probe of runtime/probes.h is there, with provider "urgent"; PREEMPT is the
# build's URG_PREEMPT (default async): the cooperative build has no SIGURG
# preemption handler, so no preempt_deferred probe. HAVE_SDT is 1
# when the build found <sys/sdt.h> (the ctest urgent.probes passes it); with
# 0 the probes compile to nothing, and the check says so and exits 77
# (ctest's skip). Exit 0 when every probe is present; else names the missing
# ones and exits 1.
set -euo pipefail
lib=${1:?usage: check-probes.sh LIBURGENT.SO [HAVE_SDT]}
have=${2:-1}
mode=${3:-async}
probes=(spawn run park ready preempt_async preempt_coop preempt_deferred syscall_handoff
	stw_start stw_end)
if [[ $mode == cooperative ]]; then
	probes=("${probes[@]/preempt_deferred/}")
	read -ra probes <<<"${probes[*]}"
fi

if [[ $have != 1 ]]; then
	echo "check-probes: skipped: built without <sys/sdt.h> (apt-get install systemtap-sdt-dev, reconfigure)"
	exit 77
fi
[[ -f $lib ]] || { echo "check-probes: no library at $lib" >&2; exit 2; }
command -v readelf >/dev/null || { echo "check-probes: readelf not found (binutils)" >&2; exit 2; }

# readelf -n prints, per probe:  stapsdt  0x...  NT_STAPSDT (SystemTap probe descriptors)
#                                  Provider: urgent
#                                  Name: run
notes=$(readelf -n "$lib" | awk '/Provider:/ {prov = $2} /Name:/ && prov != "" {print prov ":" $2; prov = ""}')
missing=()
for p in "${probes[@]}"; do
	grep -qx "urgent:$p" <<<"$notes" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
	echo "check-probes: $lib lacks the USDT probes: ${missing[*]}" >&2
	echo "check-probes: (the notes it has: $(tr '\n' ' ' <<<"$notes"))" >&2
	exit 1
fi
echo "check-probes: all ${#probes[@]} probes of the $mode build present in $(basename "$lib"): ${probes[*]}"
