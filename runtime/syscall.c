/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * syscall.c — urg_syscall_enter / urg_syscall_exit (Go's entersyscall /
 * exitsyscall, the 1.25 design with a P_SYSCALL state).
 *
 * Entering does not hand the P away — most calls are short. It detaches
 * the P from the M and marks it P_SYSCALL; the M keeps it in oldp. Then:
 *   - if the call returns soon, exit CASes the P back P_SYSCALL ->
 *     P_RUNNING and the task carries on as if nothing happened;
 *   - if it lasts more than a sysmon tick (at least 20 us) and there is
 *     other work, sysmon CASes P_SYSCALL -> P_IDLE and hands the P to
 *     another M (a "syscall handoff"); a stop-the-world CASes it to
 *     P_STOP. Exit then takes any idle P, or else queues the task on the
 *     global queue and parks the M.
 * The CAS makes the three parties agree on who owns the P.
 *
 * While inside the bracket the task is G_SYSCALL: sysmon never signals
 * its thread, and the SIGURG handler never preempts it.
 */
#include "sched.h"
#include "trace.h"

void urg_syscall_enter(void)
{
    g_t *gp = urg__curg();
    if (!gp)
        return;
    if (gp->status != G_RUNNING) {
        urg__warn("urg_syscall_enter inside a syscall bracket", "ignored");
        return;
    }
    m_t *mp = gp->m;
    p_t *pp = mp->p;
    urg__trace_slice_end(pp->id, gp->id, TR_END_SYSCALL, 0);
    mp->syscalltick = pp->syscalltick;
    st_relaxed(&gp->status, (uint32_t)G_SYSCALL);
    fetch_add(&sched.nmsyscall, 1);
    st_release(&pp->m, (m_t *)NULL);
    mp->oldp = pp;
    mp->p = NULL;
    /* Publish P_SYSCALL before looking at stw_waiting: a stopper publishes
     * stw_waiting before looking at our status, so one of us sees the other. */
    st_seq_cst(&pp->status, (uint32_t)P_SYSCALL);
    if (ld_seq_cst(&sched.stw_waiting)) {
        urg__lock(&sched.lock);
        /* Again under the lock: the stop may have been given up. The CAS
         * decides against sysmon retaking the P meanwhile. */
        if (ld_relaxed(&sched.stw_waiting) &&
            cas(&pp->status, (uint32_t)P_SYSCALL, (uint32_t)P_STOP))
            urg__p_stop_or_idle_locked(pp);
        urg__unlock(&sched.lock);
    }
    if (ld_seq_cst(&sched.sysmonwait))
        urg__sysmon_wake();
}

/* Context: g0 of the M that returned from the syscall without a P. */
static void exitsyscall0(m_t *mp, g_t *gp, void *arg)
{
    (void)arg;
    st_relaxed(&gp->status, (uint32_t)G_RUNNABLE);
    urg__lock(&sched.lock);
    p_t *pp = ld_relaxed(&sched.stw_waiting) ? NULL : urg__pidleget();
    if (pp) {
        urg__unlock(&sched.lock);
        urg__acquirep(mp, pp);
        urg__runqput(pp, gp, true);
        return;
    }
    urg__globrunqput(gp);
    urg__unlock(&sched.lock);
    /* The M has no P: findrunnable parks it until one is handed over. */
}

/* urg__syscall_close_open: gp (the caller) reached the scheduler — it is
 * exiting, yielding, parking or spawning — inside a syscall bracket, where
 * it holds no P. That is a bug in the program; refuse it with a line and
 * close the bracket here, so the task carries on with a P. Context: task. */
void urg__syscall_close_open(g_t *gp, const char *what)
{
    if (gp->flags & G_FLAG_DETACHED) {
        urg__reattach(gp);
        return;
    }
    urg__warn(what, "inside urg_syscall_enter/urg_syscall_exit; the bracket is closed here");
    urg_syscall_exit();
}

/* urg__reattach: gp ran native code without its P (the runtime detached
 * it: runtime/detach.c) and now calls the runtime: get a P back, as at
 * the end of a syscall. Context: the task, holding no P. */
void urg__reattach(g_t *gp)
{
    gp->flags &= (uint16_t)~G_FLAG_DETACHED;
    urg_syscall_exit();
}

void urg_syscall_exit(void)
{
    g_t *gp = urg__curg(); /* an abandoned task stops here */
    if (!gp)
        return;
    if (gp->status != G_SYSCALL) {
        urg__warn("urg_syscall_exit without urg_syscall_enter", "ignored");
        return;
    }
    m_t *mp = gp->m;
    p_t *oldp = mp->oldp;
    mp->oldp = NULL;
    fetch_sub(&sched.nmsyscall, 1);
    /* Fast path: our P is still ours. */
    if (oldp && cas(&oldp->status, (uint32_t)P_SYSCALL, (uint32_t)P_RUNNING)) {
        st_relaxed(&oldp->detached, 0u);
        mp->p = oldp;
        st_release(&oldp->m, mp);
        st_relaxed(&oldp->syscalltick, oldp->syscalltick + 1);
        st_relaxed(&gp->status, (uint32_t)G_RUNNING);
        urg__trace_slice_begin(oldp->id, gp->id);
        if (urg__preempt_pending(gp))
            urg__gopreempt(gp);
        return;
    }
    /* It was taken; any idle P will do. */
    if (ld_relaxed(&sched.npidle) > 0 && !ld_relaxed(&sched.stw_waiting)) {
        urg__lock(&sched.lock);
        p_t *pp = urg__pidleget();
        urg__unlock(&sched.lock);
        if (pp) {
            urg__acquirep(mp, pp);
            st_relaxed(&pp->syscalltick, pp->syscalltick + 1);
            st_relaxed(&gp->status, (uint32_t)G_RUNNING);
            urg__trace_slice_begin(pp->id, gp->id);
            return;
        }
    }
    /* None: queue the task and let this M sleep. */
    urg__mcall_exitsyscall(gp, exitsyscall0);
}
