/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * stw.c — stopping and starting the world, and the preemption requests
 * that stopping needs. Resizing the set of Ps while the world is stopped
 * (procresize, urg_set_maxprocs) is in maxprocs.c.
 *
 * Stop-the-world (Go's stopTheWorldWithSema): under sched.lock, set
 * stw_waiting and count the Ps to stop; the caller's own P, Ps sitting in
 * syscalls (CAS P_SYSCALL -> P_STOP), idle Ps and Ps handed to threads
 * that have not started on them yet (P_HANDOFF; Go waits for those
 * threads to wake) stop at once; running Ps are asked to preempt their
 * task (the task's preempt flag, plus SIGURG in the async build) and stop
 * when their M next enters the scheduler (stw_stopm). The caller spins for
 * 50 us, then sleeps on stopnote and re-requests every 100 us, since a
 * request can land at an unsafe point.
 *
 * In the cooperative build a task in a loop without runtime calls never
 * stops, so neither does urg_set_maxprocs: that is Go's behaviour with
 * asyncpreemptoff=1, and the comparison in stress/compare shows it.
 *
 * Serialisation: one stop-the-world at a time, through sched.stw, an
 * urg_mutex — so a second caller parks its task (releasing its P) instead
 * of holding a P that the first caller waits for.
 */
#include "sched.h"
#include "trace.h"

#define STOP_SPIN_NS 50000ull /* how long a stop spins before it sleeps */

/* urg__preemptone: ask the task running on pp to give it up: set its
 * preempt flag (seen at runtime calls and checkpoints) and, in the async
 * build, signal its thread. Every request is counted, retries included, so
 * that requests >= signals >= async + deferred, and requests >= async +
 * cooperative (a request is honoured at most once). Returns whether a
 * request was made. Context: any (sysmon, STW caller). */
bool urg__preemptone(p_t *pp)
{
    m_t *mp = ld_acquire(&pp->m);
    if (!mp || mp == urg__tls_m)
        return false;
    g_t *gp = ld_acquire(&mp->curg);
    if (!gp || ld_relaxed(&gp->status) != G_RUNNING)
        return false;
    st_release(&gp->preempt, (uint8_t)1);
    fetch_add(&sched.preempt_requests, 1);
    if (urg__preempt_signal(mp, gp))
        urg__trace_instant(TR_EV_SIGURG, -1, (uint64_t)pp->id, 0);
    return true;
}

void urg__preemptall(void)
{
    int32_t n = ld_relaxed(&sched.gomaxprocs);
    for (int32_t i = 0; i < n; i++) {
        p_t *pp = sched.allp[i];
        if (ld_acquire(&pp->status) == P_RUNNING)
            urg__preemptone(pp);
    }
}

/* urg__stw_stopm: the world is stopping; give up our P and sleep until the
 * world restarts. Context: g0 holding a P. */
void urg__stw_stopm(m_t *mp)
{
    urg__drop_spinning(mp);
    p_t *pp = urg__releasep(mp);
    urg__lock(&sched.lock);
    /* Idle before the stopper can restart the world: the restart can hand
     * us a P again instead of making a thread while we are on our way to
     * sleep (stopm looks at nextp before sleeping). */
    if (ld_relaxed(&sched.stw_waiting))
        urg__mput(mp);
    urg__p_stop_or_idle_locked(pp); /* idle if the stop was given up meanwhile */
    urg__unlock(&sched.lock);
    urg__stopm(mp);
}

/* urg__p_stop_or_idle_locked: pp, which no M holds any more, joins the stop in
 * progress (waking the stopper if it was the last to stop), or goes to
 * the idle list if no stop is waiting. Locks: sched.lock. */
void urg__p_stop_or_idle_locked(p_t *pp)
{
    if (!ld_relaxed(&sched.stw_waiting)) {
        urg__p_drain_to_idle_locked(pp);
        return;
    }
    st_release(&pp->status, (uint32_t)P_STOP);
    if (--sched.stopwait == 0)
        urg__note_wakeup(&sched.stopnote);
}

/* urg__p_drain_to_idle_locked: pp, which no M holds, goes to the idle list; tasks
 * still queued on it move to the global queue first. Locks: sched.lock. */
void urg__p_drain_to_idle_locked(p_t *pp)
{
    g_t *batch[URG__RUNQ_SIZE + 1];
    int n = urg__runqdrain(pp, batch, URG__RUNQ_SIZE + 1);
    for (int k = 0; k < n; k++)
        urg__globrunqput(batch[k]);
    st_release(&pp->m, (m_t *)NULL);
    urg__pidle_push(pp);
}

/* stw_abandon: give up a stop that cannot finish because the run is
 * ending (a task that never reaches a runtime call holds its P, and
 * shutdown will orphan it). Every P already stopped goes back to the idle
 * list; those still running are left alone. Locks: sched.lock held. */
static void stw_abandon(m_t *mp)
{
    int32_t n = ld_relaxed(&sched.gomaxprocs);
    for (int32_t i = 0; i < n; i++) {
        p_t *pp = sched.allp[i];
        if (mp && mp->p == pp) {
            st_release(&pp->status, (uint32_t)P_RUNNING);
        } else if (ld_acquire(&pp->status) == P_STOP) {
            urg__p_drain_to_idle_locked(pp); /* it may have stopped with tasks queued */
        }
    }
    sched.stopwait = 0;
    st_release(&sched.stw_waiting, 0u);
}

/* stop_at_once: pp — the stopper's own, or one no thread is running —
 * counts as stopped now. Locks: sched.lock. */
static void stop_at_once(p_t *pp)
{
    st_release(&pp->status, (uint32_t)P_STOP);
    sched.stopwait--;
}

/* urg__stop_the_world: stop every P but the caller's. Returns false, with
 * nothing stopped, when the run started ending before every P stopped.
 * Context: task or an external thread. Locks: takes sched.stw (parks),
 * then sched.lock; on true the caller holds sched.stw until
 * urg__start_the_world. */
bool urg__stop_the_world(void)
{
    URG__PROBE(stw_start, ld_relaxed(&sched.gomaxprocs));
    urg__lockrank_may_acquire(URG_RANK_STW, &sched.stw); /* first: nothing ranked held */
    urg_mutex_lock(&sched.stw);
    urg__trace_instant(TR_EV_STW_START, -1, 0, 0);
    m_t *mp = urg__tls_m;
    urg__lock(&sched.lock);
    if (ld_acquire(&sched.exiting)) {
        urg__unlock(&sched.lock);
        urg_mutex_unlock(&sched.stw);
        return false;
    }
    int32_t n = ld_relaxed(&sched.gomaxprocs);
    sched.stopwait = n;
    /* Publish stw_waiting before reading statuses: syscall entry publishes
     * its status before reading stw_waiting (see urg_syscall_enter). */
    st_seq_cst(&sched.stw_waiting, 1u);
    urg__preemptall();
    if (mp && mp->p)
        stop_at_once(mp->p);
    for (int32_t i = 0; i < n; i++) {
        p_t *pp = sched.allp[i];
        if (cas(&pp->status, (uint32_t)P_SYSCALL, (uint32_t)P_STOP))
            sched.stopwait--;
    }
    p_t *pp;
    while ((pp = urg__pidleget()) != NULL)
        stop_at_once(pp);
    /* Ps handed to threads that have not started on them yet: take them
     * back rather than wait for a wake-up (on a VM that is the slowest
     * part of most stops). A thread that has run before goes back on the
     * idle list at once, so the restart can hand it a P again instead of
     * making a new thread; its pending wake-up then finds it listed and
     * it sleeps on (stopm). A new thread finds no P and parks itself. */
    for (m_t *m = sched.allm; m; m = m->alllink) {
        pp = m->nextp;
        if (!pp)
            continue;
        URG__CHECK(ld_relaxed(&pp->status) == P_HANDOFF, "stop the world: nextp not handed off");
        m->nextp = NULL;
        urg__drop_spinning(m);
        if (m->started)
            urg__mput(m);
        stop_at_once(pp);
    }
    bool wait = sched.stopwait > 0;
    urg__note_clear(&sched.stopnote);
    urg__unlock(&sched.lock);
    /* A blocked poller holds no P but must notice stw_waiting promptly. */
    urg__netpoll_break();
    if (wait) {
        /* The Ps stop within microseconds when their tasks take the
         * request at once: spin that long before paying for a futex sleep
         * and wake-up, which on a VM costs more than the stop itself. (A
         * spin that yields the CPU each time round was tried, for when a
         * thread we wait for is queued behind us on this CPU: on this VM
         * it made the worst stops several times slower, since a yield
         * can hand the CPU to any thread for a whole kernel time slice.) */
        uint64_t spin_until = urg__nanotime() + STOP_SPIN_NS;
        while (ld_acquire(&sched.stopnote.key) == 0 && urg__nanotime() < spin_until)
            cpu_relax();
        while (!urg__note_tsleep(&sched.stopnote, 100000)) {
            urg__lock(&sched.lock);
            if (ld_acquire(&sched.exiting) && sched.stopwait > 0) {
                stw_abandon(mp);
                urg__unlock(&sched.lock);
                urg__trace_instant(TR_EV_STW_END, -1, 0, 0);
                urg_mutex_unlock(&sched.stw);
                urg__wakep(); /* whatever was queued on the stopped Ps */
                return false;
            }
            urg__preemptall();
            urg__unlock(&sched.lock);
        }
    }
    URG__CHECK(sched.stopwait == 0, "stop the world: stopwait");
    return true;
}

/* urg__start_the_world: resize to newprocs (if > 0) and restart.
 * Returns 0, or -ENOMEM when the resize could not be made (the world
 * restarts as it was). Context: the stop_the_world caller. */
int urg__start_the_world(int32_t newprocs)
{
    /* Timers of the Ps that go away move to P0 first: their locks rank
     * below sched.lock, and nothing else touches a heap while the world
     * is stopped. Harmless should the resize fail: P0 fires them. */
    for (int32_t i = newprocs > 0 ? newprocs : sched.gomaxprocs; i < sched.gomaxprocs; i++)
        urg__timers_move(sched.allp[i], sched.allp[0]);
    urg__lock(&sched.lock);
    p_t *runnable = NULL;
    int32_t n = newprocs > 0 ? newprocs : sched.gomaxprocs;
    int ret = urg__procresize(n, &runnable);
    if (ret != 0)
        urg__procresize(sched.gomaxprocs, &runnable);
    st_release(&sched.stw_waiting, 0u);
    urg__unlock(&sched.lock);
    URG__PROBE(stw_end, ld_relaxed(&sched.gomaxprocs));
    urg__trace_stw_end(); /* before other Ms start on the Ps */
    while (runnable) {
        p_t *pp = runnable;
        runnable = pp->link;
        pp->link = NULL;
        urg__startm(pp, false);
    }
    urg__wakep();
    urg_mutex_unlock(&sched.stw);
    return ret;
}
