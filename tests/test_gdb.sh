#!/usr/bin/env bash
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
# tests/test_gdb.sh — ctest urgent.gdb: tools/gdb/urgent-gdb.py against the
# real gdb in batch mode, on a live process and on a core file of it.
#
# usage: test_gdb.sh GDB_TARGET SCRIPT
# gdb_target (tests/gdb_target.c) stops itself with SIGTRAP once its tasks
# are parked on a channel receive and a sleep, one spins, and one was just
# spawned. Under gdb we list the tasks, take backtraces of the parked ones,
# write a core, and let the program finish; then the same on the core.
# Exit 77 (ctest SKIP_RETURN_CODE) when gdb is missing or cannot trace.
set -uo pipefail
target=$1
script=$2
if ! command -v gdb >/dev/null 2>&1; then
	echo "urgent.gdb: SKIP: gdb not installed (apt-get install gdb)"
	exit 77
fi
case ${URG_TEST_SANITIZE:-} in
address | thread)
	# LeakSanitizer refuses to run under ptrace (the live process exits 1),
	# and the sanitizers' shadow mappings leave cores gdb cannot read.
	echo "urgent.gdb: SKIP: not under ${URG_TEST_SANITIZE} sanitizer (the plain and UBSan builds run it)"
	exit 77 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Backtraces of the two parked tasks, found by their start function.
bts='python
for g in live_tasks():
    if g["flags"] & G_FLAG_STARTED:
        name = symbolize(g["st"]["start_fn"])
        if name in ("gdbt_receiver", "gdbt_sleeper"):
            print("BT-OF %s" % name)
            gdb.execute("urg-task %d bt" % int(g["id"]))
end'
printf '%s\n' "$bts" >"$tmp/bts.gdb"

fail=0
check() { # check FILE WHAT REGEX
	if ! grep -Eq -- "$3" "$1"; then
		echo "urgent.gdb: FAIL ($2): no line matches /$3/ in $(basename "$1"):"
		cat "$1"
		fail=1
	fi
}
check_tasks() { # the listing's lines, on a live process or a core
	local f=$1
	check "$f" "receiver" '^ +[0-9]+  \[chan receive, (>=)?[0-9.]+ (ms|s|min)\] +- +gdbt_receiver$'
	check "$f" "sleeper" '^ +[0-9]+  \[sleep, (>=)?[0-9.]+ (ms|s|min)\] +- +gdbt_sleeper$'
	check "$f" "spinner" '^ +[0-9]+  \[running\] +M[0-9]+ P[0-9]+ thread [0-9]+ +gdbt_spinner$'
	check "$f" "main" '^ +[0-9]+  \[running, main\] +M[0-9]+ P[0-9]+ thread [0-9]+ +gdbt_main$'
	check "$f" "late" '^ +[0-9]+  \[runnable, not started\] +- +gdbt_late$'
	# Each parked task's backtrace reaches the function it parked in.
	check "$f" "receiver bt" "$(printf 'BT-OF gdbt_receiver')"
	awk '/^BT-OF gdbt_receiver/{on=1;next} /^BT-OF/{on=0} on' "$f" >"$f.recv"
	awk '/^BT-OF gdbt_sleeper/{on=1;next} /^BT-OF/{on=0} on' "$f" >"$f.sleep"
	check "$f.recv" "receiver bt" 'urg_chan_recv'
	check "$f.recv" "receiver bt" 'gdbt_receiver'
	check "$f.sleep" "sleeper bt" 'urg__park_g'
	check "$f.sleep" "sleeper bt" 'gdbt_sleeper'
}

gdb -nx -batch -ex 'set pagination off' -ex 'set confirm off' \
	-ex "source $script" -ex run -ex 'info urg-tasks' -x "$tmp/bts.gdb" \
	-ex 'bt 1' -ex 'signal 0' "$target" >"$tmp/live.out" 2>&1
rc=$?
if grep -q "ptrace: Operation not permitted\|Cannot create process\|personality" "$tmp/live.out" &&
	! grep -q "urg-tasks\|task" "$tmp/live.out"; then
	echo "urgent.gdb: SKIP: gdb cannot trace here:"
	cat "$tmp/live.out"
	exit 77
fi
echo "---- live process (gdb rc=$rc) ----"
cat "$tmp/live.out"
check "$tmp/live.out" "stopped at the trap" 'SIGTRAP'
check "$tmp/live.out" "program finished" 'exited normally'
check_tasks "$tmp/live.out"
# The registers are the thread's own again after urg-task: the thread's
# own frame 0 is still where the trap stopped it.
check "$tmp/live.out" "registers restored" '^#0 .*(raise|pthread_kill|__pthread_kill_implementation)'

# The core comes from a second run with mprotect'ed stack guards: gdb 13's
# gcore stops copying a mapping at its first unreadable page, and the
# default guards (MADV_GUARD_INSTALL, runtime/stack.c) are unreadable pages
# inside the stack arena's one mapping, so its stacks would read as zeros.
gdb -nx -batch -ex 'set pagination off' -ex 'set confirm off' \
	-ex 'set environment URG_DEBUG=stackguard=mprotect' -ex run \
	-ex "generate-core-file $tmp/core" -ex 'signal 0' "$target" >"$tmp/gcore.out" 2>&1
if [[ ! -s $tmp/core ]]; then
	cat "$tmp/gcore.out"
	echo "urgent.gdb: FAIL: no core written"
	exit 1
fi
gdb -nx -batch -ex 'set pagination off' -ex "source $script" \
	-ex 'info urg-tasks' -x "$tmp/bts.gdb" "$target" "$tmp/core" >"$tmp/core.out" 2>&1
echo "---- core file (gdb rc=$?) ----"
cat "$tmp/core.out"
check_tasks "$tmp/core.out"

# Auto-loading: no `source`, the script comes from the program's own
# .debug_gdb_scripts section (liburgent.a's runtime/gdb_scripts.S) once the
# safe path allows it.
gdb -nx -batch -ex 'set pagination off' -iex "add-auto-load-safe-path $(dirname "$target")" \
	-ex 'info auto-load python-scripts' -ex 'info urg-tasks' "$target" "$tmp/core" \
	>"$tmp/auto.out" 2>&1
echo "---- core file, script auto-loaded (gdb rc=$?) ----"
cat "$tmp/auto.out"
check "$tmp/auto.out" "auto-loaded" '^Yes +urgent-gdb.py'
check "$tmp/auto.out" "auto-loaded" '^ +[0-9]+  \[chan receive, (>=)?[0-9.]+ (ms|s|min)\] +- +gdbt_receiver$'
exit $fail
