#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# scripts/ci-consumer.sh — urgent as its users get it: a parent project that
# adds it with add_subdirectory (without cmocka), an installed tree found with
# find_package and pkg-config after being moved, and the Debian packages
# installed with apt-get. Each builds and runs the README's example.
#
# usage: scripts/ci-consumer.sh [--no-apt] [--keep-packages] [WORKDIR]
#   WORKDIR          default build/ci-consumer (emptied first)
#   --no-apt         make the .deb files and check their contents, but do not
#                    install them (for machines where apt-get must not run)
#   --keep-packages  leave liburgent-dev and the runtime package installed
# Needs what scripts/deps.sh installs, plus dpkg-dev (and root and apt-get
# for the package step). Exit status 0 when every check passed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
apt=1
keep=0
work=
while [[ $# -gt 0 ]]; do
	case $1 in
	--no-apt) apt=0; shift ;;
	--keep-packages) keep=1; shift ;;
	-*) echo "ci-consumer: unknown option $1" >&2; exit 2 ;;
	*) work=$1; shift ;;
	esac
done
work=${work:-$root/build/ci-consumer}
jobs=$(nproc 2>/dev/null || echo 2)
step() { printf '=== ci-consumer: %s\n' "$*" >&2; }
fail() { printf 'ci-consumer: FAILED: %s\n' "$*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"

# The README's first C block, exactly as a reader copies it.
awk '/^```c$/ && !done {on = 1; next} on && /^```$/ {on = 0; done = 1} on' "$root/README.md" >"$work/example.c"
grep -q 'urg_run' "$work/example.c" || fail "no C example found in README.md"
expect='^got 1 in task [0-9]+$'
check_run() { # PROGRAM...: runs it, wants the example's three lines
	local out
	out=$("$@") || fail "$* exited $?"
	[[ $(grep -cE '^got [123] in task [0-9]+$' <<<"$out") -eq 3 ]] || fail "$*: unexpected output: $out"
	grep -qE "$expect" <<<"$out" || fail "$*: unexpected output: $out"
}

# ---- 1. add_subdirectory, cmocka absent --------------------------------------
# CMAKE_DISABLE_FIND_PACKAGE_cmocka makes urgent's tests see no cmocka, as on
# a machine without libcmocka-dev, without taking it from this one.
step "subproject with its defaults"
sub=$work/subproject
cmake -S "$root/tests/consumer" -B "$sub" -DCONSUMER_MODE=subproject -DURGENT_SOURCE_DIR="$root" \
	-DEXAMPLE_SOURCE="$work/example.c" -DCMAKE_DISABLE_FIND_PACKAGE_cmocka=ON >"$work/sub.log" 2>&1 ||
	{ cat "$work/sub.log" >&2; fail "configuring the subproject consumer"; }
# (CMake's "not used by the project" warning for the variable is expected:
# with the tests off nothing looks for cmocka.)
# (No grep -q after a pipe: the writer's SIGPIPE would fail the pipeline.)
[[ $(grep -v CMAKE_DISABLE_FIND_PACKAGE_cmocka "$work/sub.log" | grep -ci cmocka) -eq 0 ]] ||
	{ cat "$work/sub.log" >&2; fail "a subproject with tests off mentions cmocka"; }
grep -q '^CMAKE_BUILD_TYPE:STRING=$' "$sub/CMakeCache.txt" || fail "urgent set the parent's CMAKE_BUILD_TYPE"
for o in URG_BUILD_TESTS URG_BUILD_STRESS URG_BUILD_BENCH URG_BUILD_EXAMPLES URG_BUILD_MAN URG_INSTALL; do
	grep -q "^$o:BOOL=OFF$" "$sub/CMakeCache.txt" || fail "$o is not OFF in a subproject"
done
cmake --build "$sub" -j "$jobs" >"$work/sub-build.log" 2>&1 || { cat "$work/sub-build.log" >&2; fail "building the subproject consumer"; }
cmake --build "$sub" --target bench test compare test_api >"$work/sub-targets.log" 2>&1 ||
	{ cat "$work/sub-targets.log" >&2; fail "the parent's own targets"; }
[[ $(grep -c '^consumer: its own' "$work/sub-targets.log") -eq 4 ]] || fail "the parent's targets did not run"
check_run "$sub/hello_shared"
check_run "$sub/hello_static"
cmake --install "$sub" --prefix "$work/sub-install" >/dev/null
if [[ $(find "$work/sub-install" | grep -cE 'urgent|liburgent') -gt 0 ]]; then
	find "$work/sub-install" >&2
	fail "a subproject installed urgent's files (URG_INSTALL should be OFF)"
fi

step "subproject with URG_BUILD_TESTS=ON and no cmocka"
subt=$work/subproject-tests
cmake -S "$root/tests/consumer" -B "$subt" -DCONSUMER_MODE=subproject -DURGENT_SOURCE_DIR="$root" \
	-DEXAMPLE_SOURCE="$work/example.c" -DCMAKE_DISABLE_FIND_PACKAGE_cmocka=ON -DURG_BUILD_TESTS=ON \
	>"$work/subt.log" 2>&1 || { cat "$work/subt.log" >&2; fail "configuring with tests on, no cmocka"; }
[[ $(grep -ci cmocka "$work/subt.log") -eq 1 ]] || { cat "$work/subt.log" >&2; fail "want exactly one line about cmocka"; }
grep -i cmocka "$work/subt.log" >&2
cmake --build "$subt" -j "$jobs" >"$work/subt-build.log" 2>&1 || { cat "$work/subt-build.log" >&2; fail "building with tests on, no cmocka"; }
# What runs without cmocka: the ABI and docs checks, named urgent.*.
ctest --test-dir "$subt/urgent" --output-on-failure >"$work/subt-ctest.log" 2>&1 ||
	{ cat "$work/subt-ctest.log" >&2; fail "urgent's tests without cmocka"; }
grep -q 'urgent.abi .*Passed' "$work/subt-ctest.log" || { cat "$work/subt-ctest.log" >&2; fail "urgent.abi did not run"; }
if ctest --test-dir "$subt/urgent" -N | grep -E 'Test +#' | grep -vE ': urgent\.'; then
	fail "a test of urgent's is not named urgent.*"
fi

# ---- 2. installed, moved, found with find_package and pkg-config ------------
step "install, move the tree, find_package and pkg-config"
lib=$work/lib
cmake -S "$root" -B "$lib" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DURG_BUILD_TESTS=OFF -DURG_BUILD_STRESS=OFF \
	-DURG_BUILD_BENCH=OFF -DURG_BUILD_EXAMPLES=OFF -DURG_BUILD_MAN=ON >"$work/lib.log" 2>&1 ||
	{ cat "$work/lib.log" >&2; fail "configuring urgent"; }
cmake --build "$lib" -j "$jobs" >"$work/lib-build.log" 2>&1 || { cat "$work/lib-build.log" >&2; fail "building urgent"; }
bash "$root/scripts/check-abi.sh" "$lib/liburgent.so" >&2
cmake --install "$lib" --prefix "$work/stage" >/dev/null
mv "$work/stage" "$work/moved" # the .pc and the CMake files must not name the old place
[[ -f $work/moved/share/man/man3/urg_run.3 ]] || fail "no man pages installed"
pkgcfg=$(PKG_CONFIG_PATH="$work/moved/lib/pkgconfig" pkg-config --cflags --libs urgent)
# shellcheck disable=SC2086 # pkg-config's words
cc -Wall -Wextra -Werror "$work/example.c" -o "$work/hello_pc" $pkgcfg
check_run env LD_LIBRARY_PATH="$work/moved/lib" "$work/hello_pc"
[[ $(PKG_CONFIG_PATH="$work/moved/lib/pkgconfig" pkg-config --variable=preempt urgent) == async ]] ||
	fail "urgent.pc: preempt= is not async"
pkgd=$work/package-moved
cmake -S "$root/tests/consumer" -B "$pkgd" -DCONSUMER_MODE=package -DCMAKE_PREFIX_PATH="$work/moved" \
	-DEXAMPLE_SOURCE="$work/example.c" >"$work/pkgd.log" 2>&1 || { cat "$work/pkgd.log" >&2; fail "find_package(urgent) in the moved tree"; }
grep 'consumer: urgent' "$work/pkgd.log" >&2
cmake --build "$pkgd" -j "$jobs" >"$work/pkgd-build.log" 2>&1 || { cat "$work/pkgd-build.log" >&2; fail "building against the moved tree"; }
check_run env LD_LIBRARY_PATH="$work/moved/lib" "$pkgd/hello_shared"
check_run "$pkgd/hello_static"

# ---- 3. Debian packages -----------------------------------------------------------
step "cpack -G DEB"
(cd "$lib" && cpack -G DEB) >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log" >&2; fail "cpack -G DEB"; }
soversion=$(readelf -d "$lib/liburgent.so" | sed -n 's/.*SONAME.*liburgent\.so\.\([0-9.]*\)\]/\1/p')
rt=$(ls "$lib"/liburgent"$soversion"_*.deb 2>/dev/null) || fail "no liburgent$soversion package"
dev=$(ls "$lib"/liburgent-dev_*.deb 2>/dev/null) || fail "no liburgent-dev package"
dpkg-deb -c "$rt" | awk '{print $6}' >"$work/rt.files"
dpkg-deb -c "$dev" | awk '{print $6}' >"$work/dev.files"
grep -q "lib/liburgent.so.$soversion\$" "$work/rt.files" || fail "runtime package lacks liburgent.so.$soversion"
grep -qE '\.(h|a|pc|cmake|3)$' "$work/rt.files" && fail "runtime package has development files"
for f in include/urgent.h include/urgent_version.h lib/liburgent.a lib/liburgent.so \
	lib/pkgconfig/urgent.pc lib/cmake/urgent/urgentConfig.cmake share/man/man3/urg_run.3; do
	grep -q "/usr/$f\$" "$work/dev.files" || fail "liburgent-dev lacks /usr/$f"
done
dpkg-deb -f "$rt" Package Version Depends >&2
dpkg-deb -f "$dev" Package Version Depends >&2
if [[ $apt -eq 0 ]]; then
	step "packages made and checked; not installed (--no-apt)"
	exit 0
fi

step "apt-get install the packages, build the example against them"
export DEBIAN_FRONTEND=noninteractive
if [[ $keep -eq 0 ]]; then
	trap 'apt-get purge -y -qq liburgent-dev "liburgent$soversion" >/dev/null 2>&1 || true' EXIT
fi
apt-get install -y -qq "$rt" "$dev" >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get install"; }
# shellcheck disable=SC2046 # pkg-config's words
cc -Wall -Wextra -Werror "$work/example.c" -o "$work/hello_deb" $(pkg-config --cflags --libs urgent)
check_run "$work/hello_deb"
pkgs=$work/package-system
cmake -S "$root/tests/consumer" -B "$pkgs" -DCONSUMER_MODE=package -DEXAMPLE_SOURCE="$work/example.c" \
	>"$work/pkgs.log" 2>&1 || { cat "$work/pkgs.log" >&2; fail "find_package(urgent) from the packages"; }
grep 'consumer: urgent' "$work/pkgs.log" >&2
cmake --build "$pkgs" -j "$jobs" >"$work/pkgs-build.log" 2>&1 || { cat "$work/pkgs-build.log" >&2; fail "building against the packages"; }
check_run "$pkgs/hello_shared"
check_run "$pkgs/hello_static"
step "all consumer checks passed"
