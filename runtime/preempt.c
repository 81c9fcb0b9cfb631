/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * runtime/preempt.c — the scheduler's side of preemption: sending a
 * request's SIGURG, answering the handler's questions
 * (runtime/preempt_iface.h: Go's wantAsyncPreempt and canPreemptM), the
 * trampoline's C half (Go's asyncPreempt2), and the call-check hooks of
 * the cooperative mode compiled with -finstrument-functions.
 *
 * The handler itself, and the safe-point walk, are signals/preempt.c.
 */
#include "sched.h"
#include "signals/signals.h"
#include "trace.h"
#include "unwind/unwind.h"

URG__HIDDEN int urg__asyncpreemptoff; /* URG_DEBUG=asyncpreemptoff=1 */

const char *urg_preempt_mode(void)
{
#ifdef URG_PREEMPT_ASYNC
    return "async";
#else
    return "cooperative";
#endif
}

/* urg__preempt_signal: ask mp's thread to preempt gp, its task now; no
 * signal if the thread has already moved on to another task.
 * Context: sysmon or a stop-the-world caller. Signal-safe. */
bool urg__preempt_signal(m_t *mp, g_t *gp)
{
#ifdef URG_PREEMPT_ASYNC
    if (urg__asyncpreemptoff || urg__libc_static || !mp->tid || ld_relaxed(&mp->orphan))
        return false;
    if (urg__sig_send_to(&mp->sig, mp->tid, (void *const *)&mp->curg, gp) != 1)
        return false;
    fetch_add(&sched.preempt_signals, 1);
    return true;
#else
    (void)mp, (void)gp;
    return false;
#endif
}

/* urg__async_preempt2: the C half of the trampoline. The task is back in
 * ordinary context with every register saved; give up the P as a
 * preempted task (global queue, as in Go) and return when rescheduled.
 * errno is the interrupted code's: keep it across the switch, whatever
 * thread we wake up on. Context: task. */
URG__HIDDEN void urg__async_preempt2(void);
URG__PREEMPT_PATH void urg__async_preempt2(void)
{
    m_t *mp = urg__tls_m;
    int e = *mp->sig.errno_p;
    g_t *gp = mp->curg;
    gp->in_async_preempt = 1;
    fetch_add(&sched.preempt_async, 1);
    URG__PROBE(preempt_async, gp->id);
    if (unlikely(sched.chaos) && ld_relaxed(&sched.gomaxprocs) > 1) {
        /* Resume on another thread (chaos.c, runq.c). */
        gp->st->chaos_m = mp;
        gp->st->chaos_since = urg__nanotime();
    }
    urg__gosched(gp, true);
    gp->in_async_preempt = 0;
    *gp->m->sig.errno_p = e; /* gp->m: the M it resumed on */
}

/* ---- the handler's questions (preempt_iface.h): Signal-safe; each reads
 * only the calling thread's M, its task and its P, and atomics ---- */

URG__PREEMPT_PATH struct urg__sigthread *urg__sig_self(void)
{
    m_t *mp = urg__tls_m;
    return mp ? &mp->sig : NULL;
}

URG__PREEMPT_PATH bool urg__want_async_preempt(struct urg__preempt_task *t)
{
    m_t *mp = urg__tls_m;
    g_t *gp = ld_relaxed(&mp->curg);
    if (!gp || urg__asyncpreemptoff || ld_relaxed(&gp->status) != G_RUNNING ||
        !ld_relaxed(&gp->preempt) || gp->in_async_preempt)
        return false;
    t->id = gp->id;
    t->stack_lo = (uintptr_t)gp->st->lo;
    t->stack_hi = (uintptr_t)gp->st->hi;
    return true;
}

URG__PREEMPT_PATH uint32_t urg__can_preempt_task(void)
{
    m_t *mp = urg__tls_m;
    g_t *gp = mp->curg;
    p_t *pp = mp->p;
    if (gp->preempt_off != 0)
        return DEFER_PREEMPT_OFF;
    if (mp->locks != 0)
        return DEFER_RUNTIME_LOCK;
    if (gp->st->ulocks != 0)
        return DEFER_THREAD_LOCK;
    if (!pp || ld_relaxed(&pp->status) != P_RUNNING)
        return DEFER_NO_P;
    return DEFER_NONE;
}

URG__PREEMPT_PATH void urg__preempt_memo_hit(void) { fetch_add(&sched.preempt_walks_memo, 1); }

URG__PREEMPT_PATH void urg__preempt_deferred(void *uctx, uint32_t why, uint64_t t0)
{
    m_t *mp = urg__tls_m;
    g_t *gp = mp->curg;
    p_t *pp = mp->p;
    uint64_t pc = (uint64_t)urg__sigctx_pc(uctx);
    fetch_add(&sched.preempt_deferred, 1);
    URG__PROBE(preempt_deferred, gp->id, pc, why);
    urg__trace_deferred(pp ? pp->id : -1, gp->id, pc);
    /* Not at a safe point: if that has lasted, or the thread is blocked,
     * let the P go on without it (detach.c). Otherwise sysmon must retry
     * soon, not a quantum from now: tell it, and wake it if it sleeps
     * past that (once per slice). */
    if (!urg__detach_try(mp, gp, pp, uctx, true) && pp && !xchg(&pp->deferred, 1u) &&
        ld_relaxed(&sched.sysmon_until) > t0 + sched.quantum_ns / 8)
        urg__sysmon_wake();
}

/* ---- the call-checked cooperative mode (-finstrument-functions) ----
 * Code compiled with urg_enable_call_checks() calls these at every
 * function entry and exit: each entry is a checkpoint, exactly pre-1.14
 * Go's prologue check. They must be cheap and never instrumented. */

__attribute__((no_instrument_function)) URG_API void __cyg_profile_func_enter(void *fn, void *site);
__attribute__((no_instrument_function)) URG_API void __cyg_profile_func_exit(void *fn, void *site);

void __cyg_profile_func_enter(void *fn, void *site)
{
    (void)fn;
    (void)site;
    m_t *mp = urg__tls_m;
    if (!mp)
        return;
    g_t *gp = mp->curg;
    if (gp && urg__preempt_pending(gp) && ld_relaxed(&gp->status) == G_RUNNING)
        urg__gopreempt(gp);
}

void __cyg_profile_func_exit(void *fn, void *site)
{
    (void)fn;
    (void)site;
}
