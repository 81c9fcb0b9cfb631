#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# scripts/deps.sh — make sure the build dependencies are installed.
#
# usage: deps.sh [--with-go]
# Installs what is missing with apt-get when run as root; otherwise prints
# the one command to run and exits 1. Debian/Ubuntu only.
set -euo pipefail

# libssl-dev, libjemalloc-dev, g++: tests of preempting native C (test_native).
# gdb: urgent.gdb (tools/gdb/urgent-gdb.py in batch mode; skipped without it).
# pandoc: the man pages (docs/api.md -> section 3); without it the build
# says so in one line and goes on.
# systemtap-sdt-dev: <sys/sdt.h>, for the USDT probes (docs/probes.md);
# without it they compile to nothing and urgent.probes is skipped.
pkgs=(cmake make gcc g++ pkg-config libunwind-dev libcmocka-dev pandoc libssl-dev libjemalloc-dev
	systemtap-sdt-dev gdb)
[[ ${1:-} == --with-go ]] && pkgs+=(golang-go)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "urgent needs: ${missing[*]} (Debian/Ubuntu package names); install them and retry." >&2
	exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "Missing packages. Run this once, then retry:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "Installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${missing[@]}" >/dev/null
