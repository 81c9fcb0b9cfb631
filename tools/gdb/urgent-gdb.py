# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
"""urgent-gdb.py: gdb commands for urgent's tasks (docs/debugging.md).

  info urg-tasks     one line per live task: id, state, wait reason and
                     how long it has waited, the thread/proc it runs on,
                     its start function
  urg-task N bt      backtrace of parked task N

Tasks are found the way the runtime's own dump finds them (runtime/dump.c):
every descriptor ever carved lives in the slabs of task.c's `gpool`, which
are only ever prepended, so walking them needs no lock and works on a core
file as well as a live process. Needs liburgent's debug info (the default
RelWithDebInfo build has it).

A parked task's registers are on its own stack, in the frame
urg__ctx_switch pushed (arch/x86_64/context.h): gp->sp points at
mxcsr/fpucw, r15, r14, r13, r12, rbx, rbp, return address. On a live
process `urg-task N bt` loads them into the selected thread, runs `bt` and
puts the thread's own registers back. A core file's registers cannot be
written, so there a Python unwinder, active only for the command, makes
the task's saved registers the caller of the thread's innermost frame and
gdb's own (DWARF CFI) unwinder walks on from them (`frame view SP PC`
does not do it: gdb 13 unwinds such a frame with the thread's registers).
"""

import gdb
import gdb.unwinder
from gdb.unwinder import Unwinder

# enum urg__gstatus, runtime/sched.h
G_IDLE, G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING, G_DEAD = 0, 1, 2, 3, 4, 6
G_FLAG_MAIN, G_FLAG_STARTED = 1, 4
# arch/x86_64/context.h
CTX_REGS = (("r15", 8), ("r14", 16), ("r13", 24), ("r12", 32), ("rbx", 40), ("rbp", 48))
CTX_RIP, CTX_SIZE = 56, 64


def _gpool():
    """task.c's gpool; a program may have statics of that name too."""
    for sym in gdb.lookup_static_symbols("gpool"):
        v = sym.value()
        if v.type.code == gdb.TYPE_CODE_STRUCT and any(f.name == "slabs" for f in v.type.fields()):
            return v
    raise gdb.GdbError("urgent: no symbol 'gpool' (liburgent without debug info, "
                       "or not loaded yet)")


def all_tasks():
    """Every descriptor carved in this run, dead ones included."""
    gptr = gdb.lookup_type("struct urg__g").pointer()
    s = _gpool()["slabs"]
    while int(s) != 0:
        used = int(s["used"])
        cap = int(s["cap"])
        base = s["gs"].address.cast(gptr)
        for i in range(min(used, cap)):
            yield base + i
        s = s["next"]


def live_tasks():
    for gp in all_tasks():
        st = int(gp["status"])
        if st not in (G_IDLE, G_DEAD):
            yield gp


def waitreason_str(r):
    try:
        arr = gdb.lookup_static_symbol("waitreasons").value()
        return arr[r].string()
    except (gdb.error, AttributeError):
        return "wait %d" % r


def _now_coarse():
    """CLOCK_MONOTONIC_COARSE of the inferior, live only (None on a core)."""
    if not _is_live():
        return None
    try:
        v = gdb.parse_and_eval("(unsigned long)urg__nanotime_coarse()")
        return int(v)
    except gdb.error:
        return None


def _core_now():
    """For a core, where the clock cannot be read: the latest time the
    runtime wrote down (a task's park, a slice's start or sysmon's last look
    at a proc), a lower bound of when the core was taken."""
    best = 0
    for gp in live_tasks():
        if int(gp["flags"]) & G_FLAG_STARTED:
            best = max(best, int(gp["st"]["waitsince"]))
    try:
        sched = gdb.lookup_global_symbol("urg__sched")
        allp = sched.value()["allp"]
        for i in range(int(sched.value()["gomaxprocs"])):
            pp = allp[i]
            if int(pp) != 0:
                tick = pp["sysmontick"]
                best = max(best, int(tick["sampled"]), int(tick["schedwhen"]))
    except (gdb.error, AttributeError):
        pass
    return best or None


def fmt_wait(ns):
    """The same rule as the runtime's dump (runtime/dump.c, pb_wait)."""
    ms = ns // 1000000
    if ms < 1000:
        return "%d ms" % ms
    if ms < 60000:
        return "%d.%d s" % (ms // 1000, ms // 100 % 10)
    return "%d min" % (ms // 60000)


def _is_live():
    inf = gdb.selected_inferior()
    if inf.pid == 0:
        return False
    try:
        return gdb.selected_inferior().connection.type != "core"
    except AttributeError:
        return "core" not in gdb.execute("info target", to_string=True).split("\n")[1]


def symbolize(addr):
    addr = int(addr)
    if addr == 0:
        return "?"
    blk = gdb.block_for_pc(addr)
    while blk is not None and blk.function is None:
        blk = blk.superblock
    if blk is not None:
        return blk.function.print_name
    s = gdb.execute("info symbol 0x%x" % addr, to_string=True).strip()
    return s.split(" in section")[0] if "No symbol" not in s else "0x%x" % addr


_NO_STACK = ("the task stacks are not in this core: gdb's gcore stops copying a mapping at its "
             "first unreadable page, and urgent's default stack guards "
             "(MADV_GUARD_INSTALL) are such pages; take the core with "
             "URG_DEBUG=stackguard=mprotect, or let the kernel write it "
             "(docs/debugging.md)")


def stack_missing(gp):
    """A started task whose stack block reads as zeros: not in the core."""
    return bool(int(gp["flags"]) & G_FLAG_STARTED) and int(gp["st"]["hi"]) == 0


def task_state(gp):
    st = int(gp["status"])
    started = int(gp["flags"]) & G_FLAG_STARTED
    if st == G_RUNNABLE:
        return "runnable" if started else "runnable, not started"
    if st == G_RUNNING:
        return "running"
    if st == G_SYSCALL:
        return "syscall"
    if st == G_WAITING:
        return waitreason_str(int(gp["waitreason"]))
    return "?"


def find_task(tid):
    for gp in live_tasks():
        if int(gp["id"]) == tid:
            return gp
    raise gdb.GdbError("urgent: no live task %d" % tid)


class InfoUrgTasks(gdb.Command):
    """List urgent's tasks: id, state [, waited], where it runs, start function."""

    def __init__(self):
        super().__init__("info urg-tasks", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        now = _now_coarse()
        approx = ""
        if now is None:
            now = _core_now()
            approx = ">="
        missing = False
        lwps = {}
        for t in gdb.selected_inferior().threads():
            lwps[t.ptid[1]] = t.num
        print("%6s  %-36s %-22s %s" % ("task", "state", "on", "start function"))
        for gp in live_tasks():
            st = int(gp["status"])
            flags = int(gp["flags"])
            state = task_state(gp)
            if st == G_WAITING and (flags & G_FLAG_STARTED) and now:
                since = int(gp["st"]["waitsince"])
                if since and now >= since:
                    state += ", " + approx + fmt_wait(now - since)
            if flags & G_FLAG_MAIN:
                state += ", main"
            where = "-"
            if st in (G_RUNNING, G_SYSCALL) and int(gp["m"]) != 0:
                mp = gp["m"]
                where = "M%d" % int(mp["id"])
                if int(mp["p"]) != 0:
                    where += " P%d" % int(mp["p"]["id"])
                lwp = int(mp["tid"])
                where += " thread %s" % lwps.get(lwp, "lwp %d" % lwp)
            fn = gp["st"]["start_fn"] if flags & G_FLAG_STARTED else gp["fn"]
            name = symbolize(fn)
            if stack_missing(gp):
                name = "? (stack not in the core)"
                missing = True
            print("%6d  %-36s %-22s %s" % (int(gp["id"]), "[" + state + "]", where, name))
        if missing:
            print("note: " + _NO_STACK)


InfoUrgTasks()


class UrgTask(gdb.Command):
    """urg-task N bt: backtrace of parked task N (its saved context)."""

    def __init__(self):
        super().__init__("urg-task", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if len(argv) < 2 or argv[1] != "bt":
            raise gdb.GdbError("usage: urg-task N bt")
        gp = find_task(int(argv[0]))
        st = int(gp["status"])
        if not int(gp["flags"]) & G_FLAG_STARTED:
            print("task %d has not run yet: it will start in %s" %
                  (int(gp["id"]), symbolize(gp["fn"])))
            return
        if st in (G_RUNNING, G_SYSCALL):
            lwp = int(gp["m"]["tid"])
            for t in gdb.selected_inferior().threads():
                if t.ptid[1] == lwp:
                    print("task %d runs on thread %d: use `thread %d` and `bt`" %
                          (int(gp["id"]), t.num, t.num))
                    return
            raise gdb.GdbError("urgent: task is running on lwp %d, not found" % lwp)
        if stack_missing(gp):
            raise gdb.GdbError("urgent: task %d: %s" % (int(gp["id"]), _NO_STACK))
        u64 = gdb.lookup_type("unsigned long").pointer()
        sp = int(gp["sp"])

        def at(off):
            return int(gdb.Value(sp + off).cast(u64).dereference())

        regs = {name: at(off) for name, off in CTX_REGS}
        regs["rip"] = at(CTX_RIP)
        regs["rsp"] = sp + CTX_SIZE
        extra = " ".join(argv[2:])
        if _is_live():
            self._bt_live(regs, extra)
        else:
            self._bt_core(regs, extra)

    @staticmethod
    def _bt_live(regs, extra):
        gdb.execute("select-frame 0")
        frame = gdb.selected_frame()
        saved = {r: int(frame.read_register(r)) for r in regs}
        try:
            for r, v in regs.items():
                gdb.execute("set $%s = %d" % (r, v))
            gdb.execute("bt " + extra)
        finally:
            gdb.execute("select-frame 0")
            for r, v in saved.items():
                gdb.execute("set $%s = %d" % (r, v))

    @staticmethod
    def _bt_core(regs, extra):
        # A core's registers are read-only, and `frame view SP PC` does not
        # help: unwinding from such a frame takes the callee-saved registers
        # (and so the caller) from the thread, not from the task. Instead a
        # Python unwinder claims the thread's innermost frame and says its
        # caller's registers are the task's saved ones; gdb's own unwinder
        # (DWARF CFI) walks on from there, and frame 1 onwards is the task.
        _TASK_UNWINDER.regs = regs
        gdb.invalidate_cached_frames()
        try:
            frame = gdb.newest_frame().older()
            n = 0
            limit = int(extra) if extra.strip().isdigit() else 64
            while frame is not None and n < limit:
                pc = frame.pc()
                sal = frame.find_sal()
                loc = ""
                if sal.symtab is not None:
                    loc = " at %s:%d" % (sal.symtab.filename, sal.line)
                name = frame.name() or symbolize(pc)
                print("#%-2d 0x%016x in %s%s" % (n, pc, name, loc))
                n += 1
                try:
                    frame = frame.older()
                except gdb.error:
                    break
            if frame is not None:
                print("(more frames)")
        finally:
            _TASK_UNWINDER.regs = None
            gdb.invalidate_cached_frames()


class _FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class _TaskUnwinder(Unwinder):
    """Active only during `urg-task N bt` on a core: frame 0's caller is
    the task's saved context."""

    def __init__(self):
        super().__init__("urgent-task")
        self.regs = None

    def __call__(self, pending):
        if self.regs is None or pending.level() != 0:
            return None
        # Frame 0 is the thread's, frame 1 on the task's stack. gdb stops a
        # backtrace whose frames look inner to the ones they called (by
        # stack address), and a task's stack may lie above or below the
        # thread's: so frame 0 is identified just inside the task's stack.
        u64 = gdb.lookup_type("unsigned long")
        sp = self.regs.get("rsp")
        sp = gdb.Value(sp - 16).cast(u64) if sp is not None else pending.read_register("rsp")
        info = pending.create_unwind_info(_FrameId(sp, pending.read_register("rip")))
        for r, v in self.regs.items():
            info.add_saved_register(r, gdb.Value(v).cast(u64))
        return info


_TASK_UNWINDER = _TaskUnwinder()
gdb.unwinder.register_unwinder(None, _TASK_UNWINDER, replace=True)


UrgTask()
