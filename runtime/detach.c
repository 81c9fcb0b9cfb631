/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * runtime/detach.c — no proc is lost to a thread that does not run
 * scheduler code.
 *
 * A task can keep its thread, and so its P, away from the scheduler in two
 * ways the runtime cannot preempt: it runs long in code that is not a safe
 * point (libc's memset or qsort, a library not opted in, a lock holder),
 * or its thread blocks in the kernel outside a urg_syscall_enter bracket
 * (a condition variable, a pthread mutex, a C++ static guard, a plain
 * read). Go meets both only for its own calls into C (cgo calls enter a
 * syscall state); urgent meets them for any native code, the same way:
 * the task is *detached*. Its P is marked P_SYSCALL as if the task had
 * called urg_syscall_enter at that instruction, sysmon hands the P to
 * another thread, and the task runs on — on its own thread, untouched —
 * until its next runtime call, where it gets a P back exactly as at
 * urg_syscall_exit (urg__reattach, from urg__curg and every scheduling
 * entry). Nothing moves the task between threads, so nothing a thread may
 * assume changes; the task just no longer counts against the procs.
 *
 * When (the SIGURG handler decides, on the task's own thread):
 *   - a preemption request was deferred DETACH_AFTER times in a row in the
 *     same slice (about one quantum plus two sysmon periods), or a
 *     stop-the-world waits for this P;
 *   - or sysmon asked (m->detach_req) because the thread looked blocked:
 *     its P has other work, the same task has run since sysmon's last
 *     look, and the thread's CPU clock did not move (urg__detach_check_
 *     blocked). This works in the cooperative build too.
 * Never inside urg_preempt_disable (getting a P back could move the task
 * to another thread at its next runtime call). Only if safe: a walk from the interrupted context must reach the task's
 * entry through frames none of which is urgent's runtime code (the lock
 * wrappers of interpose.c excepted: they use no runtime state). Runtime
 * code may be using the P; a task inside it keeps the P and is retried on
 * the next signal. The M must hold no runtime lock.
 *
 * The transition is urg_syscall_enter's without its stop-the-world branch
 * (which takes sched.lock, not for a handler): the P is published
 * P_SYSCALL and sysmon, woken, takes it — at once when a stop waits
 * (sysmon.c) — and hands it off (urg__handoffp parks it for the stop).
 *
 * Not under ThreadSanitizer: it runs handlers late, on a copy of the
 * context, at points of its own choosing.
 */
#include "sched.h"
#include "signals/signals.h"
#include "unwind/unwind.h"

#include <time.h>

#define DETACH_AFTER 3

#ifdef URG__TSAN

bool urg__detach_try(m_t *mp, g_t *gp, p_t *pp, void *uctx, bool deferred)
{
    (void)mp, (void)gp, (void)pp, (void)uctx, (void)deferred;
    return false;
}
void urg__detach_requested(void *uctx) { (void)uctx; }
bool urg__detach_signal(m_t *mp)
{
    (void)mp;
    return false;
}
void urg__detach_check_blocked(p_t *pp, uint64_t since) { (void)pp, (void)since; }

#else

/* at_syscall: was the thread stopped in a system call? The kernel leaves
 * the PC on the `syscall` instruction (0f 05) of a call it will restart,
 * or just after it for one that returns EINTR. Reads only code of a
 * loaded object's readable segment. Signal-safe. */
static bool at_syscall(uintptr_t pc)
{
    struct urg__modview v;
    urg__modview_begin(&v);
    uintptr_t lo, hi;
    bool w;
    uintptr_t code = pc - URG__SYSCALL_PROBE_BEFORE;
    if (!urg__mem_readable(&v, code, URG__SYSCALL_PROBE_BYTES, &lo, &hi, &w))
        return false;
    bool at = urg__syscall_insn_at((const volatile uint8_t *)code);
    return at && urg__modview_valid(&v);
}

/* detach: urg_syscall_enter's transition, from the handler. */
static void detach(m_t *mp, g_t *gp, p_t *pp)
{
    mp->syscalltick = pp->syscalltick;
    gp->flags |= G_FLAG_DETACHED;
    st_relaxed(&gp->status, (uint32_t)G_SYSCALL);
    fetch_add(&sched.nmsyscall, 1);
    st_release(&pp->m, (m_t *)NULL);
    mp->oldp = pp;
    mp->p = NULL;
    st_relaxed(&pp->detached, 1u);
    st_seq_cst(&pp->status, (uint32_t)P_SYSCALL);
    fetch_add(&sched.detaches, 1);
    urg__sysmon_wake();
}

/* urg__detach_try: the handler's part. `deferred`: a preemption request
 * was just deferred. Returns true if the task was detached.
 * Context: the SIGURG handler, on the task's thread. Signal-safe. */
bool urg__detach_try(m_t *mp, g_t *gp, p_t *pp, void *uctx, bool deferred)
{
    bool blocked = xchg(&mp->sig.detach_req, 0u) != 0;
    if (!pp || !gp || gp == &mp->g0)
        return false;
    if (deferred) {
        uint32_t tick = ld_relaxed(&pp->schedtick);
        if (mp->defer_tick != tick) {
            mp->defer_tick = tick;
            mp->defer_n = 0;
        }
        mp->defer_n++;
    }
    if (!blocked && mp->defer_n < DETACH_AFTER && !ld_relaxed(&sched.stw_waiting))
        return false;
    /* urg_preempt_disable: the task asked to stay put, and getting a P
     * back at its next runtime call could move it to another thread. */
    if (mp->locks != 0 || gp->preempt_off != 0 || ld_relaxed(&gp->status) != G_RUNNING ||
        ld_relaxed(&pp->status) != P_RUNNING || gp->in_async_preempt)
        return false;
    uint64_t regs[URG_NREGS];
    urg__sigctx_regs(uctx, regs);
    /* sysmon's "blocked" is a guess from a CPU clock that also stands
     * still for a thread the OS keeps waiting for a CPU: here, running,
     * the thread is blocked only if it was in a system call. */
    if (blocked && !deferred && !at_syscall(regs[URG__REG_PC]))
        return false;
    struct urg__modview v;
    urg__modview_begin(&v);
    urg__walk_t w;
    uint32_t outside_runtime = 1u << PC_USER | 1u << PC_FORBIDDEN | 1u << PC_FOREIGN;
    if (!urg__walk_to_entry(&w, mp->sig.unw_as, (uintptr_t)gp->st->lo, (uintptr_t)gp->st->hi, regs,
                            &v, outside_runtime, NULL) ||
        !urg__modview_valid(&v))
        return false;
    mp->defer_n = 0;
    if (blocked)
        fetch_add(&sched.detach_blocked, 1);
    detach(mp, gp, pp);
    return true;
}

/* urg__detach_requested: the handler's part of sysmon's request. */
void urg__detach_requested(void *uctx)
{
    m_t *mp = urg__tls_m;
    urg__detach_try(mp, ld_relaxed(&mp->curg), mp->p, uctx, false);
}

/* send: one SIGURG in flight per thread (preempt.c says why). */
bool urg__detach_signal(m_t *mp)
{
    if (!mp->tid || ld_relaxed(&mp->orphan))
        return false;
    st_relaxed(&mp->sig.detach_req, 1u);
    /* 0: one is on its way, and its handler reads detach_req. */
    return urg__sig_send(&mp->sig, mp->tid) >= 0;
}

/* thread_cpu_ns: CPU time of thread tid (its clock, as
 * pthread_getcpuclockid would name it). */
static uint64_t thread_cpu_ns(pid_t tid)
{
    struct timespec ts;
    clockid_t clk = (clockid_t)((~(unsigned)tid << 3) | 6u); /* per-thread, CPUCLOCK_SCHED */
    if (clock_gettime(clk, &ts) != 0)
        return UINT64_MAX;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* urg__detach_check_blocked: pp is P_RUNNING and runs the task it ran at
 * sysmon's last look, `since` ns ago. If work waits for it and its thread
 * used (almost) no CPU since that look, the thread is blocked in the
 * kernel: ask its handler to detach the task. Context: sysmon. */
void urg__detach_check_blocked(p_t *pp, uint64_t since)
{
    m_t *mp = ld_acquire(&pp->m);
    if (!mp || !mp->tid)
        return;
    uint32_t tick = ld_relaxed(&pp->schedtick);
    if (urg__runqempty(pp) && ld_relaxed(&sched.runqsize) == 0) {
        mp->cpu_tick = tick - 1; /* look again from scratch next time */
        return;
    }
    uint64_t cpu = thread_cpu_ns(mp->tid);
    bool same = mp->cpu_tick == tick;
    uint64_t used = cpu - mp->cpu_seen;
    mp->cpu_seen = cpu;
    mp->cpu_tick = tick;
    if (same && cpu != UINT64_MAX && used < since / 8)
        urg__detach_signal(mp);
}

#endif /* URG__TSAN */
