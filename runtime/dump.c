/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * dump.c — printing every task with its state and a symbolic backtrace
 * (SIGQUIT, urg_dump, fatal errors), the way Go prints goroutines:
 *
 *   task 7 [chan receive, 2.4 s]:
 *     #0  0x55d0c2a41b2f urg__ctx_switch+0x3f (liburgent.so)
 *     #1  0x55d0c2a3e9a1 urg__switch+0x51 (liburgent.so)
 *     ...
 *     #6  0x55d0c2a2f310 consumer+0x40 (program)
 *
 * A suspended task is walked from the frame urg__ctx_switch left on its
 * stack (arch/x86_64/context.h); the task running on the calling thread
 * from the current registers; a task running on another thread, or in a
 * syscall, has a live stack that moves under us, so, like Go, we say so
 * instead of walking it. Every walk reads only inside the task's own
 * stack and loaded objects (unwind/unwind.c), so a dump of tasks that
 * change state while we print cannot fault. A parked task's state says
 * how long it has waited (st->waitsince, by the coarse clock): "N ms"
 * below a second, "N.N s" below a minute, "N min" above — readable at a
 * glance, and no finer than the clock (a few ms). No locks, no malloc:
 * everything here is Signal-safe.
 */
#include "sched.h"
#include "signals/signals.h"
#include "unwind/unwind.h"

#define MAX_FRAMES 64

/* Pulls runtime/gdb_scripts.S (the gdb commands, for auto-loading) into
 * programs linked with liburgent.a: every program with the runtime has
 * this file. */
URG__HIDDEN extern const char urg__gdb_scripts;
__attribute__((used)) static const char *const gdb_scripts_ref = &urg__gdb_scripts;

static void print_walk(const uint64_t regs[URG_NREGS], uintptr_t lo, uintptr_t hi)
{
    struct urg__modview v;
    urg__modview_begin(&v);
    urg__walk_t w;
    urg__pbuf b = {.len = 0};
    if (urg__walk_begin(&w, NULL, regs, lo, hi, &v) != 0) {
        urg__write_str("    (no backtrace: unwinder unavailable)\n");
        return;
    }
    for (int i = 0; i < MAX_FRAMES; i++) {
        uintptr_t ip = urg__walk_ip(&w);
        urg__pb_str(&b, "    #");
        urg__pb_u64(&b, (uint64_t)i);
        urg__pb_str(&b, i < 10 ? "  " : " ");
        urg__pb_symbol(&b, &v, ip);
        urg__pb_str(&b, "\n");
        urg__pb_flush(&b);
        if (urg__walk_step(&w) <= 0) {
            urg__walk_end(&w);
            return;
        }
    }
    urg__walk_end(&w);
    urg__write_str("    ...\n");
}

/* urg__print_backtrace_ctx: a backtrace from a signal's ucontext, reading
 * only [lo, hi) of the stack. Signal-safe. */
void urg__print_backtrace_ctx(void *uctx, uintptr_t lo, uintptr_t hi)
{
    uint64_t regs[URG_NREGS];
    urg__sigctx_regs(uctx, regs);
    print_walk(regs, lo, hi);
}

/* urg__print_backtrace_here: a backtrace from the caller, reading only
 * [lo, hi) of the stack. Signal-safe. */
void urg__print_backtrace_here(uintptr_t lo, uintptr_t hi)
{
    uint64_t regs[URG_NREGS] = {0};
    urg__capture_regs(regs);
    print_walk(regs, lo, hi);
}

static const char *state_str(uint32_t status, bool started, uint32_t waitreason)
{
    switch (status) {
    case G_RUNNABLE:
        return started ? "runnable" : "runnable, not started";
    case G_RUNNING:
        return "running";
    case G_SYSCALL:
        return "syscall";
    case G_WAITING:
        return urg__waitreason_str(waitreason);
    default:
        return "?";
    }
}

/* pb_wait: ", 2.4 s" — how long a parked task has waited. Signal-safe. */
static void pb_wait(urg__pbuf *b, uint64_t since)
{
    uint64_t now = urg__nanotime_coarse();
    if (since == 0 || now < since)
        return;
    uint64_t ms = (now - since) / 1000000u;
    urg__pb_str(b, ", ");
    if (ms < 1000) {
        urg__pb_u64(b, ms);
        urg__pb_str(b, " ms");
    } else if (ms < 60000) {
        urg__pb_u64(b, ms / 1000);
        urg__pb_str(b, ".");
        urg__pb_u64(b, ms / 100 % 10);
        urg__pb_str(b, " s");
    } else {
        urg__pb_u64(b, ms / 60000);
        urg__pb_str(b, " min");
    }
}

/* dump_one: one task. The task may change state while we look: every
 * field is read once, the stack block is checked to be one before it is
 * used, and a suspended task's state is read again after its registers
 * were taken, so that a task which ran meanwhile is reported as such
 * instead of walked from a stale frame (the walk itself only ever reads
 * inside [lo, hi), so even a stale one cannot fault). */
URG__RACY_READER static void dump_one(g_t *gp, void *arg)
{
    (void)arg;
    uint32_t status = ld_acquire(&gp->status);
    if (status == G_DEAD || status == G_IDLE)
        return;
    uint16_t flags = ld_relaxed(&gp->flags);
    bool started = flags & G_FLAG_STARTED;
    urg__pbuf b = {.len = 0};
    urg__pb_str(&b, "task ");
    urg__pb_u64(&b, ld_relaxed(&gp->id));
    urg__pb_str(&b, " [");
    urg__pb_str(&b, state_str(status, started, ld_relaxed(&gp->waitreason)));
    if (status == G_WAITING && started) {
        struct urg__stack *wst = ld_relaxed(&gp->st);
        if (urg__stack_block_valid(wst))
            pb_wait(&b, ld_relaxed(&wst->waitsince));
    }
    if (flags & G_FLAG_MAIN)
        urg__pb_str(&b, ", main");
    urg__pb_str(&b, "]:\n");
    urg__pb_flush(&b);

    if (!started) {
        urg_fn fn = ld_relaxed(&gp->fn);
        struct urg__modview v;
        urg__modview_begin(&v);
        urg__pb_str(&b, "    created to run ");
        urg__pb_symbol(&b, &v, (uintptr_t)fn);
        urg__pb_str(&b, "\n");
        urg__pb_flush(&b);
        urg__write_str("\n");
        return;
    }
    struct urg__stack *st = ld_relaxed(&gp->st);
    void *sp = ld_relaxed(&gp->sp);
    if (!urg__stack_block_valid(st)) {
        urg__write_str("    (stack changing; not shown)\n\n");
        return;
    }
    uintptr_t lo = (uintptr_t)ld_relaxed(&st->lo), hi = (uintptr_t)ld_relaxed(&st->hi);
    m_t *self = urg__tls_m;
    if (status == G_RUNNING || status == G_SYSCALL) {
        if (self && ld_relaxed(&self->curg) == gp) {
            uint64_t regs[URG_NREGS] = {0};
            urg__capture_regs(regs);
            print_walk(regs, lo, hi);
        } else {
            urg__write_str("    (running on another thread; stack unavailable)\n");
        }
    } else if ((uintptr_t)sp >= lo && (uintptr_t)sp + URG__CTX_FRAME_SIZE <= hi) {
        uint64_t regs[URG_NREGS];
        urg__ctx_frame_regs(sp, regs);
        if (ld_acquire(&gp->status) == status && ld_relaxed(&gp->sp) == sp)
            print_walk(regs, lo, hi);
        else
            urg__write_str("    (ran while being printed; stack not shown)\n");
    }
    urg__write_str("\n");
}

/* urg__dump_all: every task. Context: any, including signal handlers. */
void urg__dump_all(bool from_signal)
{
    (void)from_signal;
    if (!ld_acquire(&sched.running)) {
        urg__write_str("(urgent is not running: no tasks)\n");
        return;
    }
    urg__gslab_foreach(dump_one, NULL);
    urg__deferprof_report();
}

void urg_dump(void) { urg__dump_all(false); }

URG__RACY_READER static void brief_one(g_t *gp, void *arg)
{
    (void)arg;
    uint32_t status = ld_acquire(&gp->status);
    if (status == G_DEAD || status == G_IDLE)
        return;
    urg__pbuf b = {.len = 0};
    m_t *mp = status == G_RUNNING || status == G_SYSCALL ? ld_relaxed(&gp->m) : NULL;
    urg__pb_str(&b, "  G");
    urg__pb_u64(&b, gp->id);
    urg__pb_str(&b, ": status=");
    urg__pb_u64(&b, status);
    urg__pb_str(&b, "(");
    urg__pb_str(&b, status == G_WAITING ? urg__waitreason_str(gp->waitreason) : "");
    urg__pb_str(&b, ") m=");
    if (mp)
        urg__pb_i64(&b, mp->id);
    else
        urg__pb_str(&b, "nil");
    urg__pb_str(&b, "\n");
    urg__pb_flush(&b);
}

/* urg__dump_tasks_brief: scheddetail's per-task lines. Signal-safe. */
void urg__dump_tasks_brief(void) { urg__gslab_foreach(brief_one, NULL); }

/* urg__fault_stack_overflow: Context: the SIGSEGV/SIGBUS handler.
 * Signal-safe up to urg__throw, which dumps and aborts. */
void urg__fault_stack_overflow(uintptr_t addr, void *uctx)
{
    g_t *gp = NULL;
    if (!urg__stack_guard_hit(addr, &gp))
        return;
    urg__pbuf b = {.len = 0};
    urg__pb_str(&b, "fatal error: stack overflow in task ");
    if (gp)
        urg__pb_u64(&b, gp->id);
    else
        urg__pb_str(&b, "?");
    urg__pb_str(&b, " (fault at ");
    urg__pb_hex(&b, (uint64_t)addr);
    urg__pb_str(&b, ", stack size ");
    urg__pb_u64(&b, sched.stack_size);
    urg__pb_str(&b, " bytes; raise URG_STACK or urg_config.stack_size)\n\ntask ");
    if (gp)
        urg__pb_u64(&b, gp->id);
    urg__pb_str(&b, " [running]:\n");
    urg__pb_flush(&b);
    if (gp)
        urg__print_backtrace_ctx(uctx, (uintptr_t)gp->st->lo, (uintptr_t)gp->st->hi);
    urg__write_str("\n");
    urg__throw("stack overflow");
}
