/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * proc.c — the scheduler: how an M finds a task, runs it, and gets it back.
 *
 * Model (Go's proc.go, split by concern; run queues are in runq.c, threads
 * in thread.c, stop-the-world in stw.c):
 *
 *   Each M runs urg__mstart on its own stack (g0): find a runnable task,
 *   switch to it, and when something switches back to g0, do what the task
 *   asked (park it, queue it, free it) and look again.
 *
 *   Every switch goes through urg__switch, which carries one piece of work
 *   across: m->after_fn runs right after the switch lands, on the stack
 *   that resumed. A task that parks sets after_fn = "mark me waiting and
 *   release my channel lock"; the lock is released only once the task's
 *   registers are saved, so no waker can resume it while it is still on
 *   its stack. The same mechanism lets a task that yields, parks or exits
 *   hand its P straight to the next local task — one switch instead of two
 *   through g0 — whenever the scheduler would pick that task anyway
 *   (switch_direct): the task it replaces is queued, parked or freed by
 *   the after_fn, on the new task's stack.
 *
 *   findrunnable looks, in order: the global queue every 61st schedule
 *   (fairness), runnext and the local ring, the global queue, ready network
 *   events, then steals half of another P's ring (random start, coprime
 *   stride, four passes, timers and runnext only on the last). Failing
 *   that, the M gives its P back, rechecks everything once more (a task
 *   readied between the last check and the release would otherwise be
 *   stranded), then either blocks in epoll until the next timer (one M at a
 *   time) or parks on its futex.
 *
 *   At most half of the busy Ps' worth of Ms spin looking for work; new
 *   work wakes a parked M only when no M is spinning (wakep). The last
 *   spinning M to find work starts another spinner, so bursts of work fan
 *   out one thread at a time.
 *
 * Alternatives rejected: switching through g0 on every yield (two switches
 * and two return mispredictions where one suffices); a global queue for
 * urg_yield as Go's Gosched does (a lock per yield; our yield goes to the
 * local tail — preempted tasks still go to the global queue, as in Go).
 */
#include "sched.h"
#include "signals/signals.h"
#include "sanitizer.h"
#include "trace.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct urg__sched urg__sched = {
    .lock = URG__LOCK_INIT(URG_RANK_SCHED),
};
__thread m_t *urg__tls_m __attribute__((tls_model("initial-exec")));

/* ---- the switch --------------------------------------------------------- */

/* finish_switch: runs on the stack that just resumed. self->m is the M
 * we are on now (set by whoever switched to us): nothing here may use a
 * thread-local, since the task may have moved threads across the switch.
 *
 * errno belongs to the task, not the thread: urg__switch carries its value
 * across every switch, so a task that moved threads reads the errno it
 * left, whatever the new thread's was (a yield or a preemption that ends
 * on another thread would otherwise hand it that thread's last EAGAIN).
 * Async preemption carries it too (preempt.c). */
static inline __attribute__((always_inline)) void finish_switch(g_t *self)
{
    m_t *mp = self->m;
    urg__san_finish_switch(self);
    if (mp->after_fn) {
        void (*fn)(m_t *, g_t *, void *) = mp->after_fn;
        mp->after_fn = NULL;
        fn(mp, mp->after_g, mp->after_arg);
    }
}

/* urg__switch: suspend `from`, resume `to`. Both are on the calling M now;
 * when `from` resumes it may be on another M. Every switch in the runtime
 * goes through this one call site, so the return from urg__ctx_switch
 * always lands where the return-stack predictor expects.
 * Context: task or g0. Locks: none may be held (but see urg__park_g). */
URG__PREEMPT_PATH URG__NOINLINE void urg__switch(g_t *from, g_t *to)
{
    int e = *from->m->sig.errno_p; /* first: sanitizer calls below may change it */
    if (unlikely(from->canary_stack))
        urg__stack_check_canary(from);
    urg__san_start_switch(from, to, from->status == G_DEAD);
    urg__ctx_switch(&from->sp, to->sp);
    finish_switch(from);
    *from->m->sig.errno_p = e; /* from->m: the M it resumed on */
}

/* mcall: switch from task gp to its M's g0 and run fn(mp, gp, arg) there.
 * Returns (on whatever M) when gp is resumed. Context: task. */
static inline __attribute__((always_inline)) void mcall(g_t *gp, void (*fn)(m_t *, g_t *, void *),
                                                        void *arg)
{
    m_t *mp = gp->m;
    mp->after_fn = fn;
    mp->after_g = gp;
    mp->after_arg = arg;
    st_relaxed(&mp->curg, (g_t *)NULL);
    urg__switch(gp, &mp->g0);
}

/* ---- running a task ----------------------------------------------------- */

/* signal_fixups: the thread's signal state, as a new task starts on it.
 * Context: mp's thread, between tasks (prepare_run), gp published as curg.
 *  - A task left SIGURG blocked here (interpose.c): unblock it, so that
 *    the new task is preemptible. A request pending meanwhile is
 *    delivered now and finds nothing to preempt.
 *  - A signal for the task this thread ran before may still be on its
 *    way: it must not land in the new one, whose blocking call would
 *    return EINTR (urg__sig_drain). After a request was honoured at a
 *    runtime call (the usual case: its signal is sent after the flag the
 *    task saw), a barrier pairs with the sender's look at curg
 *    (urg__preempt_signal), so one of the two always sees the other.
 *    Other switches only look: a request that races a voluntary switch can
 *    still reach the next task, inside a store buffer's latency. */
static URG__NOINLINE URG__COLD void signal_fixups(m_t *mp)
{
    if (mp->sig.urg_blocked) {
        mp->sig.urg_blocked = 0;
        urg__sigmask_unblock_urg();
    }
    /* A locked exchange: a full barrier between the store of curg and the
     * load of pending on x86-64 (and no bare fence, which ThreadSanitizer
     * cannot model). */
    if (mp->honoured)
        (void)__atomic_exchange_n(&mp->honoured, false, __ATOMIC_SEQ_CST);
    if (ld_seq_cst(&mp->sig.pending))
        urg__sig_drain(&mp->sig);
}

/* prepare_run: make gp the running task of mp. Gives a fresh task its
 * stack. Returns false (gp requeued) if no stack could be had.
 * Context: g0 or task of mp. */
static inline __attribute__((always_inline)) bool prepare_run(m_t *mp, p_t *pp, g_t *gp,
                                                              bool inherit)
{
    if (unlikely(!(gp->flags & G_FLAG_STARTED))) {
        /* fn and arg share storage with sp and st: move them to the frame. */
        urg_fn fn = gp->fn;
        void *arg = gp->arg;
        if (urg__stack_alloc(pp, gp) != 0)
            urg__throw("out of memory allocating a task stack");
        gp->sp = urg__arch_init_frame(gp->st->hi, gp, (void *)fn, arg);
        st_relaxed(&gp->st->start_fn, fn);
        st_relaxed(&gp->st->waitsince, (uint64_t)0);
        gp->flags |= G_FLAG_STARTED;
    }
    if (unlikely(sched.chaos) && gp->st->chaos_m) {
        fetch_add(gp->st->chaos_m == mp ? &sched.chaos_stayed : &sched.chaos_moved, 1);
        gp->st->chaos_m = NULL;
    }
    gp->m = mp;
    st_relaxed(&gp->preempt, (uint8_t)0);
    st_relaxed(&gp->status, (uint32_t)G_RUNNING);
    if (!inherit)
        st_relaxed(&pp->schedtick, pp->schedtick + 1);
    counter_inc(&pp->n_switches);
    urg__trace_slice_begin(pp->id, gp->id);
    if (unlikely(mp->sig.t0))
        urg__preempt_cost_record(mp);
    st_release(&mp->curg, gp);
    if (unlikely(mp->honoured | mp->sig.urg_blocked | ld_relaxed(&mp->sig.pending)))
        signal_fixups(mp);
    URG__PROBE(run, gp->id, pp->id, mp->id);
    return true;
}

/* execute: switch from g0 to gp. Returns when g0 is resumed.
 * Context: g0. */
static void execute(m_t *mp, g_t *gp, bool inherit)
{
    prepare_run(mp, mp->p, gp, inherit);
    urg__switch(&mp->g0, gp);
}

/* urg__task_begin: the first thing a fresh task does (called from
 * urg__task_start, which then calls the task's function). */
void urg__task_begin(g_t *gp)
{
    urg__san_task_begin(gp);
    finish_switch(gp);
}

/* ---- after-switch actions (run on the stack that resumes) ------------- */

/* Context: g0, or the next task's stack (direct switch). The task is
 * dead; give back its stack and descriptor. */
static void goexit_after(m_t *mp, g_t *gp, void *arg)
{
    (void)arg;
    p_t *pp = mp->p;
    bool is_main = gp->flags & G_FLAG_MAIN;
    urg__san_task_gone(gp);
    urg__stack_free(pp, gp);
    counter_inc(&pp->n_exited);
    urg__gfree(pp, gp);
    if (is_main) {
        st_release(&sched.main_done, 1u);
        urg__sysmon_wake();
    }
}

static inline __attribute__((always_inline)) bool
switch_direct(m_t *mp, g_t *gp, void (*after)(m_t *, g_t *, void *), void *arg, bool keep_slice);

URG__NORETURN void urg__goexit(g_t *gp)
{
    URG__CLOSE_OPEN_SYSCALL(gp, "a task returned");
    m_t *mp = gp->m;
    if (unlikely(ld_relaxed(&mp->orphan)))
        urg__orphan_exit(mp);
    urg__trace_slice_end(mp->p->id, gp->id, TR_END_EXIT, 0);
    st_relaxed(&gp->status, (uint32_t)G_DEAD);
    if (!switch_direct(mp, gp, goexit_after, NULL, true))
        mcall(gp, goexit_after, NULL);
    urg__throw("dead task resumed");
}

/* Context: g0 or the next task. gp yielded: queue it. */
static void yield_local_after(m_t *mp, g_t *gp, void *arg)
{
    (void)arg;
    st_relaxed(&gp->status, (uint32_t)G_RUNNABLE);
    urg__runqput(mp->p, gp, false);
}

URG__PREEMPT_PATH static void yield_global_after(m_t *mp, g_t *gp, void *arg)
{
    (void)arg;
    st_relaxed(&gp->status, (uint32_t)G_RUNNABLE);
    urg__lock(&sched.lock);
    gp->lastp = (uint16_t)(mp->p->id + 1);
    urg__globrunqput(gp);
    urg__unlock(&sched.lock);
    if (unlikely(sched.chaos) && gp->st->chaos_m)
        urg__wakep(); /* another M, to take it (chaos.c) */
}

/* sched_settled: nothing the scheduler must see to first — no
 * stop-the-world or shutdown pending, no timer due on pp. */
static inline bool sched_settled(p_t *pp)
{
    if (unlikely(ld_relaxed(&sched.stw_waiting) | ld_relaxed(&sched.exiting)))
        return false;
    uint64_t t0 = ld_relaxed(&pp->timer0);
    if (unlikely(t0 != 0) && t0 <= urg__nanotime())
        return false;
    return true;
}

/* can_switch_direct: may the running task hand its P straight to the next
 * local task, skipping the scheduler? Only when the scheduler would pick
 * the same task: sched_settled, and not the 61st tick (global-queue
 * fairness). */
static inline bool can_switch_direct(p_t *pp)
{
    if (unlikely(ld_relaxed(&sched.runqsize) != 0) && pp->schedtick % 61 == 0)
        return false;
    return sched_settled(pp);
}

/* run_next: make next mp's running task and switch gp out for it,
 * running after(mp, gp, arg) on next's stack once gp is off its own.
 * Context: task gp on mp. */
static inline __attribute__((always_inline)) void
run_next(m_t *mp, g_t *gp, g_t *next, bool inherit, void (*after)(m_t *, g_t *, void *), void *arg)
{
    prepare_run(mp, mp->p, next, inherit);
    mp->after_fn = after;
    mp->after_g = gp;
    mp->after_arg = arg;
    urg__switch(gp, next);
}

/* switch_direct: hand mp's P straight to the next local task, running
 * after(mp, gp, arg) on its stack once gp is switched out. Returns false
 * (doing nothing) when the scheduler must decide, and the caller then goes
 * through g0 instead. Context: task gp on mp. */
static inline __attribute__((always_inline)) bool
switch_direct(m_t *mp, g_t *gp, void (*after)(m_t *, g_t *, void *), void *arg, bool keep_slice)
{
    p_t *pp = mp->p;
    if (!can_switch_direct(pp))
        return false;
    bool inherit;
    g_t *next = urg__runqget(pp, &inherit);
    if (!next)
        return false;
    run_next(mp, gp, next, inherit && keep_slice, after, arg);
    return true;
}

/* switch_global: a preempted task, whose P has nothing queued locally,
 * hands the P straight to the head of the global queue — the task the
 * scheduler would pick once gp had joined the queue's tail — and joins
 * the tail from the next task's stack. The same order as Go's
 * gopreempt_m -> schedule, without the trip through g0 and the scheduler
 * loop, whose code and stack have gone cold by the end of a slice.
 * Returns false (doing nothing) when the scheduler must decide.
 * Context: task gp on mp. */
static inline bool switch_global(m_t *mp, g_t *gp)
{
    p_t *pp = mp->p;
    if (ld_relaxed(&sched.runqsize) == 0 || !urg__runqempty(pp) || !sched_settled(pp))
        return false;
    urg__lock(&sched.lock);
    g_t *next = urg__globrunqget(pp, 0);
    urg__unlock(&sched.lock);
    if (!next)
        return false;
    run_next(mp, gp, next, false, yield_global_after, NULL);
    return true;
}

/* trace_gosched_why: why gp's slice ends in urg__gosched (the trace). */
static inline int trace_gosched_why(g_t *gp, bool global)
{
    if (!global)
        return TR_END_YIELD;
    if (gp->in_async_preempt)
        return TR_END_PREEMPT_ASYNC;
    return ld_relaxed(&sched.stw_waiting) ? TR_END_STW : TR_END_PREEMPT_COOP;
}

/* urg__gosched: the running task gp gives up its P and stays runnable
 * (local tail, or the global queue when `global`, as a preempted task).
 * Context: task. */
URG__PREEMPT_PATH void urg__gosched(g_t *gp, bool global)
{
    URG__CLOSE_OPEN_SYSCALL(gp, "urg_yield (or a preemption)");
    m_t *mp = gp->m;
    if (unlikely(ld_relaxed(&mp->orphan)))
        urg__orphan_exit(mp);
    urg__trace_slice_end(mp->p->id, gp->id, trace_gosched_why(gp, global), 0);
    if (global ? switch_global(mp, gp) : switch_direct(mp, gp, yield_local_after, NULL, false))
        return;
    mcall(gp, global ? yield_global_after : yield_local_after, NULL);
}

/* urg__gopreempt: honour a preemption request at a runtime call or
 * checkpoint (Go's gopreempt_m): the task goes to the global queue.
 * Context: task. */
void urg__gopreempt(g_t *gp)
{
    gp->m->honoured = true; /* prepare_run: its signal may be on its way */
    counter_inc(&gp->m->p->n_preempt_coop);
    URG__PROBE(preempt_coop, gp->id);
    urg__gosched(gp, true);
}

/* urg__mcall_exitsyscall: run fn on g0 for a task back from a syscall
 * that found no P (syscall.c). Returns when the task is resumed. */
void urg__mcall_exitsyscall(g_t *gp, void (*fn)(m_t *, g_t *, void *)) { mcall(gp, fn, NULL); }

struct park_args {
    bool (*unlockf)(m_t *, g_t *, void *);
    void *arg;
};

/* Context: g0, or the next task's stack (direct switch). */
static void park_after(m_t *mp, g_t *gp, void *arg)
{
    struct park_args *pa = arg;
    st_release(&gp->status, (uint32_t)G_WAITING);
    if (pa->unlockf && !pa->unlockf(mp, gp, pa->arg)) {
        /* The wait was satisfied while we switched: run it again now. */
        st_relaxed(&gp->status, (uint32_t)G_RUNNABLE);
        urg__runqput(mp->p, gp, true);
    }
}

/* Shared by urg__park for external (non-task) threads. */
static void park_external(g_t *gp, bool (*unlockf)(m_t *, g_t *, void *), void *arg)
{
    int32_t *key = &gp->st->ext_futex;
    st_relaxed(key, 0);
    st_release(&gp->status, (uint32_t)G_WAITING);
    if (unlockf && !unlockf(NULL, gp, arg)) {
        st_relaxed(&gp->status, (uint32_t)G_RUNNING);
        return;
    }
    while (ld_acquire(key) == 0)
        urg__futex_wait((uint32_t *)key, 0, -1);
    st_relaxed(&gp->status, (uint32_t)G_RUNNING);
}

/* urg__park_g: park gp (the caller). unlockf(mp, gp, arg) runs once gp
 * is fully switched out (mp is NULL for external threads); if it returns
 * false, gp does not sleep. Returns after someone calls urg__ready(gp).
 * Context: task, or an external thread (gp from urg__getg_ext). */
void urg__park_g(g_t *gp, bool (*unlockf)(m_t *, g_t *, void *), void *arg, int reason)
{
    st_relaxed(&gp->waitreason, (uint8_t)reason); /* read by dumps from any thread */
    /* The coarse clock, not urg__nanotime: parks are frequent and dumps
     * need only tenths of a second. Yields and preemptions are not waits. */
    if (reason != WAIT_YIELD && reason != WAIT_PREEMPTED)
        st_relaxed(&gp->st->waitsince, urg__nanotime_coarse());
    URG__PROBE(park, gp->id, reason);
    if (gp->flags & G_FLAG_EXTERNAL) {
        park_external(gp, unlockf, arg);
        return;
    }
    URG__CLOSE_OPEN_SYSCALL(gp, "a blocking runtime call");
    m_t *mp = gp->m;
    if (unlikely(ld_relaxed(&mp->orphan)))
        urg__orphan_exit(mp);
    urg__trace_slice_end(mp->p->id, gp->id, TR_END_PARK, reason);
    struct park_args pa = {unlockf, arg};
    if (!switch_direct(mp, gp, park_after, &pa, true))
        mcall(gp, park_after, &pa);
    st_relaxed(&gp->waitreason, (uint8_t)WAIT_NONE);
}

/* urg__ready: gp becomes runnable. On a task's or g0's own P it goes to
 * runnext (it runs next and inherits the time slice, as in Go); from
 * threads without a P, to the global queue.
 * Context: task, g0, sysmon or external thread; not a signal handler. */
void urg__ready(g_t *gp, bool next)
{
    URG__PROBE(ready, gp->id);
    if (gp->flags & G_FLAG_EXTERNAL) {
        st_release(&gp->st->ext_futex, 1);
        urg__futex_wake((uint32_t *)&gp->st->ext_futex, 1);
        return;
    }
    URG__CHECK(ld_acquire(&gp->status) == G_WAITING, "bad task status in ready");
    st_relaxed(&gp->status, (uint32_t)G_RUNNABLE);
    m_t *mp = urg__tls_m;
    if (mp && mp->p && !ld_relaxed(&mp->orphan)) {
        urg__runqput(mp->p, gp, next);
    } else {
        urg__lock(&sched.lock);
        urg__globrunqput(gp);
        urg__unlock(&sched.lock);
    }
    urg__wakep();
}

/* urg__ready_list: make a schedlink-chained list of parked tasks runnable
 * (netpoll results). Context: any M, with or without a P. */
void urg__ready_list(g_t *head)
{
    while (head) {
        g_t *next = head->schedlink;
        urg__ready(head, false);
        head = next;
    }
}

/* ---- Ps and Ms ---------------------------------------------------------- */

void urg__acquirep(m_t *mp, p_t *pp)
{
    URG__CHECK(mp->p == NULL, "acquirep: M already has a P");
    URG__CHECK(ld_relaxed(&pp->m) == NULL, "acquirep: P already in use");
    mp->p = pp;
    st_release(&pp->m, mp);
    /* A P coming back from idle starts a new time slice, even if its first
     * task inherits one (runnext): sysmon's record of the last slice is
     * stale. */
    st_relaxed(&pp->schedtick, pp->schedtick + 1);
    /* Sysmon sleeps deeply while every P is idle. It publishes sysmonwait,
     * then looks at the statuses; we publish a status, then look at
     * sysmonwait: seq_cst on both sides, so one of us sees the other. */
    st_seq_cst(&pp->status, (uint32_t)P_RUNNING);
    if (unlikely(ld_seq_cst(&sched.sysmonwait)))
        urg__sysmon_wake();
}

p_t *urg__releasep(m_t *mp)
{
    p_t *pp = mp->p;
    URG__CHECK(pp != NULL, "releasep: M has no P");
    st_release(&pp->m, (m_t *)NULL);
    mp->p = NULL;
    st_release(&pp->status, (uint32_t)P_IDLE);
    return pp;
}

/* urg__startm: run pp on some M (an idle one, or a new thread). With
 * spinning, the M starts out looking for work (the caller already counted
 * it in nmspinning). If pp is NULL, take an idle P or give up.
 * Context: any but signal. Locks: takes sched.lock. */
void urg__startm(p_t *pp, bool spinning)
{
    urg__lock(&sched.lock);
    if (!pp) {
        pp = urg__pidleget();
        if (!pp) {
            urg__unlock(&sched.lock);
            if (spinning)
                fetch_sub(&sched.nmspinning, 1);
            return;
        }
    }
    m_t *nmp = urg__mget();
    if (!nmp) {
        urg__unlock(&sched.lock);
        int err = 0;
        if (!urg__newm(pp, spinning, &err)) {
            /* No thread: put the P back; the work stays queued for the
             * Ms we have. Loud once, since it means the system is out of
             * threads or memory. */
            urg__warn("cannot create a thread", "work continues on existing threads");
            urg__lock(&sched.lock);
            if (ld_relaxed(&pp->status) != P_STOP) /* not claimed by a stop */
                urg__p_stop_or_idle_locked(pp);
            urg__unlock(&sched.lock);
            if (spinning)
                fetch_sub(&sched.nmspinning, 1);
        }
        return;
    }
    URG__CHECK(!nmp->spinning, "startm: idle M is spinning");
    nmp->spinning = spinning;
    urg__set_nextp(nmp, pp);
    urg__unlock(&sched.lock);
    urg__note_wakeup(&nmp->park);
}

/* urg__set_nextp: pp (held by no M, on no list) is for mp to run once its
 * thread gets going. Locks: sched.lock held. */
void urg__set_nextp(m_t *mp, p_t *pp)
{
    mp->nextp = pp;
    st_release(&pp->status, (uint32_t)P_HANDOFF);
}

/* urg__take_nextp_locked: mp takes the P it was handed, if a stop-the-
 * world did not claim it meanwhile. Returns whether it had one.
 * Context: g0 of mp, holding no P. Locks: sched.lock. */
bool urg__take_nextp_locked(m_t *mp)
{
    p_t *pp = mp->nextp;
    if (!pp)
        return false;
    mp->nextp = NULL;
    urg__acquirep(mp, pp);
    return true;
}

/* urg__take_nextp: a new M's first step: take the P it was created for,
 * or none if it was claimed (findrunnable then parks the M).
 * Context: g0 holding no P. Locks: takes sched.lock. */
void urg__take_nextp(m_t *mp)
{
    urg__lock(&sched.lock);
    mp->started = true;
    urg__take_nextp_locked(mp);
    urg__unlock(&sched.lock);
}

/* urg__wakep: start a spinning M if there is an idle P and nobody spins.
 * Context: any but signal. */
void urg__wakep(void)
{
    if (ld_relaxed(&sched.npidle) == 0)
        return;
    if (ld_relaxed(&sched.nmspinning) != 0 || !cas(&sched.nmspinning, 0, 1))
        return;
    urg__startm(NULL, true);
}

/* urg__handoffp: pp lost its M (syscall retake, M blocking). Start an M
 * for it if there is work, else make it idle. Context: any but signal. */
void urg__handoffp(p_t *pp)
{
    if (!urg__runqempty(pp) || ld_relaxed(&sched.runqsize) != 0) {
        urg__startm(pp, false);
        return;
    }
    if (ld_relaxed(&sched.nmspinning) + ld_relaxed(&sched.npidle) == 0 &&
        cas(&sched.nmspinning, 0, 1)) {
        urg__startm(pp, true);
        return;
    }
    urg__lock(&sched.lock);
    if (ld_relaxed(&sched.stw_waiting)) {
        st_release(&pp->status, (uint32_t)P_STOP);
        if (--sched.stopwait == 0)
            urg__note_wakeup(&sched.stopnote);
        urg__unlock(&sched.lock);
        return;
    }
    if (sched.runqsize != 0) {
        urg__unlock(&sched.lock);
        urg__startm(pp, false);
        return;
    }
    /* If it has timers and nobody waits for them, wake someone to. */
    urg__pidle_push(pp);
    urg__unlock(&sched.lock);
    if (ld_relaxed(&pp->timer0) != 0)
        urg__netpoll_break();
}

static void become_spinning(m_t *mp)
{
    mp->spinning = true;
    fetch_add(&sched.nmspinning, 1);
    st_relaxed(&sched.needspinning, 0u);
}

/* urg__drop_spinning: mp no longer counts as spinning, and looks for no
 * successor (it is stopping, or its run is over). Context: mp's thread,
 * or a stopper holding sched.lock for an M that has not started on the P
 * it was handed. */
void urg__drop_spinning(m_t *mp)
{
    if (mp->spinning) {
        mp->spinning = false;
        fetch_sub(&sched.nmspinning, 1);
    }
}

/* reset_spinning: a spinning M found work. If it was the last spinner,
 * start another, so pending work keeps being discovered. */
static void reset_spinning(m_t *mp)
{
    mp->spinning = false;
    int32_t n = fetch_sub(&sched.nmspinning, 1) - 1;
    URG__CHECK(n >= 0, "negative nmspinning");
    urg__wakep();
}

/* ---- finding work ------------------------------------------------------- */

/* steal_work: try to steal from other Ps, running their due timers on the
 * last pass. Context: g0 holding a P, spinning. */
static g_t *steal_work(m_t *mp, uint64_t now, uint64_t *polluntil)
{
    p_t *pp = mp->p;
    uint32_t nprocs = (uint32_t)ld_relaxed(&sched.gomaxprocs);
    if (nprocs <= 1)
        return NULL;
    for (int try = 0; try < 4; try++) {
        bool last = try == 3;
        uint64_t r = urg__rand_next(&mp->rand);
        uint32_t pos = (uint32_t)r % nprocs;
        uint32_t inc = sched.stealorder_coprimes[(r >> 32) % sched.nstealorder];
        for (uint32_t i = 0; i < nprocs; i++, pos = (pos + inc) % nprocs) {
            if (ld_relaxed(&sched.stw_waiting) || ld_relaxed(&sched.exiting))
                return NULL;
            p_t *p2 = sched.allp[pos];
            if (p2 == pp)
                continue;
            if (last && ld_relaxed(&p2->timer0) != 0) {
                bool ran = false;
                uint64_t w = urg__timers_check(p2, now, &ran);
                if (w != 0 && (*polluntil == 0 || w < *polluntil))
                    *polluntil = w;
                if (ran) {
                    bool inherit;
                    g_t *gp = urg__runqget(pp, &inherit);
                    if (gp)
                        return gp;
                }
            }
            if (ld_relaxed(&p2->status) == P_IDLE)
                continue;
            g_t *gp = urg__runqsteal(pp, p2, last);
            if (gp) {
                urg__trace_instant(TR_EV_STEAL, pp->id, (uint64_t)p2->id, gp->id);
                counter_inc(&pp->n_steals);
                return gp;
            }
        }
    }
    return NULL;
}

/* check_runqs_nop: after releasing our P, is there a local queue with work?
 * Returns a P to take (and sets spinning) or NULL. */
static p_t *check_runqs_nop(void)
{
    int32_t n = ld_relaxed(&sched.gomaxprocs);
    for (int32_t i = 0; i < n; i++) {
        p_t *p2 = sched.allp[i];
        if (ld_relaxed(&p2->status) != P_IDLE && !urg__runqempty(p2)) {
            urg__lock(&sched.lock);
            p_t *pp = urg__pidleget();
            if (!pp)
                st_relaxed(&sched.needspinning, 1u);
            urg__unlock(&sched.lock);
            return pp;
        }
    }
    return NULL;
}

static void inject_list(m_t *mp, g_t *list)
{
    (void)mp;
    urg__ready_list(list);
}

/* ---- findrunnable, phase by phase ---------------------------------------
 *
 * findrunnable is a list of phases run in order (find_once), the order of
 * Go's findRunnable. Each phase says what the search does next: */
typedef enum {
    FIND_NEXT,  /* nothing here: on to the next phase */
    FIND_FOUND, /* f->gp is the task to run */
    FIND_EXIT,  /* the M must stop for good: findrunnable returns NULL */
    FIND_RETRY, /* start over from the top */
    FIND_STOPM, /* park the M (stopm), then start over */
} find_step;

/* What the phases of one pass share. */
typedef struct {
    m_t *mp;
    bool *inherit;      /* the task found inherits the current slice */
    g_t *gp;            /* the task found (FIND_FOUND) */
    uint64_t now;       /* 0 until a phase reads the clock */
    uint64_t polluntil; /* the earliest timer seen (0: none) */
    bool was_spinning;  /* the M was spinning when it gave its P up */
} find_t;

/* Run a phase; anything but FIND_NEXT ends the pass. */
#define FIND_PHASE(call)                                                                           \
    do {                                                                                           \
        find_step s_ = (call);                                                                     \
        if (s_ != FIND_NEXT)                                                                       \
            return s_;                                                                             \
    } while (0)

/* find_found: FIND_FOUND with gp, or FIND_NEXT when gp is NULL. */
static inline __attribute__((always_inline)) find_step find_found(find_t *f, g_t *gp)
{
    f->gp = gp;
    return gp ? FIND_FOUND : FIND_NEXT;
}

/* All the phases below run on g0. Until find_drop_p it holds a P, and
 * after that only if a phase got one back. Each takes sched.lock itself
 * where it needs it and holds no lock when it returns. */

/* Phase: may this M look for work at all? */
static inline __attribute__((always_inline)) find_step find_check_m(find_t *f)
{
    m_t *mp = f->mp;
    if (ld_relaxed(&mp->orphan))
        return FIND_EXIT;
    if (ld_acquire(&sched.exiting))
        return FIND_EXIT;
    if (!mp->p)
        return FIND_STOPM; /* Back from a syscall with no P to run on (exitsyscall0). */
    if (ld_acquire(&sched.stw_waiting)) {
        urg__stw_stopm(mp);
        return FIND_RETRY;
    }
    return FIND_NEXT;
}

/* Phase: run our P's due timers. */
static inline __attribute__((always_inline)) find_step find_local_timers(find_t *f)
{
    p_t *pp = f->mp->p;
    if (ld_relaxed(&pp->timer0) != 0) {
        bool ran;
        f->now = urg__nanotime();
        f->polluntil = urg__timers_check(pp, f->now, &ran);
        /* A task a timer just woke runs before anything else, even on the
         * 61st tick: it is what makes a ticker beside hogs run at the next
         * preemption rather than one slice later. It inherits the current
         * slice, so sysmon still bounds how long such tasks can keep the
         * global queue waiting. */
        if (ran)
            return find_found(f, urg__runqget(pp, f->inherit));
    }
    return FIND_NEXT;
}

/* Phase: fairness: now and then look at the global queue first, or two
 * tasks that keep readying each other could starve it. */
static inline __attribute__((always_inline)) find_step find_global_fair(find_t *f)
{
    p_t *pp = f->mp->p;
    if (pp->schedtick % 61 == 0 && ld_relaxed(&sched.runqsize) > 0) {
        urg__lock(&sched.lock);
        g_t *gp = urg__globrunqget(pp, 1);
        urg__unlock(&sched.lock);
        return find_found(f, gp);
    }
    return FIND_NEXT;
}

/* Phase: runnext, then the local ring. */
static inline __attribute__((always_inline)) find_step find_local_runq(find_t *f)
{
    return find_found(f, urg__runqget(f->mp->p, f->inherit));
}

/* Phase: the global queue. */
static inline find_step find_global_runq(find_t *f)
{
    if (ld_relaxed(&sched.runqsize) != 0) {
        urg__lock(&sched.lock);
        g_t *gp = urg__globrunqget(f->mp->p, 0);
        urg__unlock(&sched.lock);
        return find_found(f, gp);
    }
    return FIND_NEXT;
}

/* Phase: ready network events, without blocking (one M at a time). */
static inline find_step find_netpoll_ready(find_t *f)
{
    if (urg__netpoll_waiters() && ld_relaxed(&sched.lastpoll) != 0 &&
        xchg(&sched.pollingnet, 1u) == 0) {
        int32_t n = 0;
        g_t *list = urg__netpoll(0, &n);
        st_release(&sched.pollingnet, 0u);
        if (list) {
            g_t *gp = list;
            list = list->schedlink;
            inject_list(f->mp, list);
            URG__CHECK(ld_relaxed(&gp->status) == G_WAITING, "netpoll: task not waiting");
            st_relaxed(&gp->status, (uint32_t)G_RUNNABLE);
            return find_found(f, gp);
        }
    }
    return FIND_NEXT;
}

/* Phase: steal, unless enough Ms already spin: at most half the busy Ps. */
static inline find_step find_steal(find_t *f)
{
    m_t *mp = f->mp;
    int32_t procs = ld_relaxed(&sched.gomaxprocs);
    if (mp->spinning || 2 * ld_relaxed(&sched.nmspinning) < procs - ld_relaxed(&sched.npidle)) {
        if (!mp->spinning)
            become_spinning(mp);
        if (!f->now)
            f->now = urg__nanotime();
        return find_found(f, steal_work(mp, f->now, &f->polluntil));
    }
    return FIND_NEXT;
}

/* Phase: nothing. Give up the P (the next phase looks once more without
 * it), unless the global queue, a stop or a spinning request says not
 * to. */
static inline find_step find_drop_p(find_t *f)
{
    m_t *mp = f->mp;
    p_t *pp = mp->p;
    urg__lock(&sched.lock);
    if (ld_relaxed(&sched.stw_waiting) || ld_relaxed(&sched.exiting)) {
        urg__unlock(&sched.lock);
        return FIND_RETRY;
    }
    if (sched.runqsize != 0) {
        g_t *gp = urg__globrunqget(pp, 0);
        urg__unlock(&sched.lock);
        if (gp)
            return find_found(f, gp);
        /* Chaos: every queued task waits for another M (runq.c). */
        sched_yield();
        return FIND_RETRY;
    }
    if (!mp->spinning && ld_relaxed(&sched.needspinning) == 1) {
        /* Someone found work but no P; we have one: go spin. */
        st_relaxed(&sched.needspinning, 0u);
        become_spinning(mp);
        urg__unlock(&sched.lock);
        return FIND_RETRY;
    }
    urg__releasep(mp);
    urg__pidle_push(pp);
    urg__unlock(&sched.lock);
    return FIND_NEXT;
}

/* Phase: without a P, a spinning M looks once more, at the global queue
 * and at every local queue. */
static inline find_step find_recheck(find_t *f)
{
    m_t *mp = f->mp;
    f->was_spinning = mp->spinning;
    if (!mp->spinning)
        return FIND_NEXT;
    /* Drop the spinning count first, then recheck: whoever adds work
     * after our recheck sees nmspinning == 0 and wakes an M. */
    mp->spinning = false;
    int32_t n = fetch_sub(&sched.nmspinning, 1) - 1;
    URG__CHECK(n >= 0, "findrunnable: negative nmspinning");

    if (ld_acquire(&sched.runqsize) != 0) {
        urg__lock(&sched.lock);
        p_t *idlep = urg__pidleget();
        if (idlep) {
            urg__acquirep(mp, idlep);
            become_spinning(mp);
            g_t *gp = urg__globrunqget(idlep, 0);
            urg__unlock(&sched.lock);
            if (gp)
                return find_found(f, gp);
            return FIND_RETRY;
        }
        st_relaxed(&sched.needspinning, 1u);
        urg__unlock(&sched.lock);
    }
    p_t *idlep = check_runqs_nop();
    if (idlep) {
        urg__acquirep(mp, idlep);
        become_spinning(mp);
        return FIND_RETRY;
    }
    return FIND_NEXT;
}

/* run_due_timers: run the timers due by `now` on every P, idle ones
 * included. */
static void run_due_timers(uint64_t now)
{
    int32_t nprocs = ld_relaxed(&sched.gomaxprocs);
    for (int32_t i = 0; i < nprocs; i++) {
        p_t *p2 = sched.allp[i];
        if (ld_relaxed(&p2->timer0) != 0 && ld_relaxed(&p2->timer0) <= now) {
            bool ran;
            urg__timers_check(p2, now, &ran);
        }
    }
}

/* netpoll_block: this M is the poller (it took lastpoll): block in
 * netpoll until f->polluntil or an I/O event, then take a P to run what
 * came (or park the M if none is idle). */
static find_step netpoll_block(find_t *f)
{
    m_t *mp = f->mp;
    st_relaxed(&sched.polluntil, f->polluntil);
    if (ld_relaxed(&sched.stw_waiting) || ld_relaxed(&sched.exiting)) {
        st_release(&sched.lastpoll, urg__nanotime());
        st_relaxed(&sched.polluntil, (uint64_t)0);
        return FIND_STOPM;
    }
    int64_t delay = -1;
    if (f->polluntil != 0) {
        f->now = urg__nanotime();
        delay = f->polluntil > f->now ? (int64_t)(f->polluntil - f->now) : 0;
    }
    int32_t n = 0;
    g_t *list = urg__netpoll(delay, &n);
    f->now = urg__nanotime();
    st_relaxed(&sched.polluntil, (uint64_t)0);
    st_release(&sched.lastpoll, f->now);
    urg__lock(&sched.lock);
    p_t *idlep = urg__pidleget();
    urg__unlock(&sched.lock);
    if (!idlep) {
        inject_list(mp, list);
        return FIND_STOPM;
    }
    urg__acquirep(mp, idlep);
    /* Timers that came due while we slept may sit on idle Ps. */
    run_due_timers(f->now);
    if (list) {
        g_t *gp = list;
        inject_list(mp, list->schedlink);
        st_relaxed(&gp->status, (uint32_t)G_RUNNABLE);
        if (f->was_spinning)
            become_spinning(mp);
        return find_found(f, gp);
    }
    if (f->was_spinning)
        become_spinning(mp);
    return FIND_RETRY;
}

/* Phase: block in netpoll until the next timer or I/O event, if nobody
 * does. The earliest timer on any P decides how long the poller sleeps. */
static inline find_step find_block_netpoll(find_t *f)
{
    uint64_t t = urg__timers_earliest();
    if (t != 0 && (f->polluntil == 0 || t < f->polluntil))
        f->polluntil = t;
    if ((urg__netpoll_waiters() || f->polluntil != 0) && xchg(&sched.lastpoll, (uint64_t)0) != 0)
        return netpoll_block(f);
    if (f->polluntil != 0) {
        /* Another M polls: wake it if our timer is due before its own. */
        uint64_t pu = ld_relaxed(&sched.polluntil);
        if (pu == 0 || pu > f->polluntil)
            urg__netpoll_break();
    }
    return FIND_NEXT;
}

/* find_once: one pass of the search, as its list of phases. */
static inline __attribute__((always_inline)) find_step find_once(find_t *f)
{
    FIND_PHASE(find_check_m(f));       /* orphaned, exiting, no P, world stopping */
    FIND_PHASE(find_local_timers(f));  /* our due timers; a task they woke goes first */
    FIND_PHASE(find_global_fair(f));   /* every 61st tick, the global queue first */
    FIND_PHASE(find_local_runq(f));    /* runnext, then the local ring */
    FIND_PHASE(find_global_runq(f));   /* the global queue */
    FIND_PHASE(find_netpoll_ready(f)); /* ready I/O, without blocking */
    FIND_PHASE(find_steal(f));         /* spin: steal from other Ps */
    FIND_PHASE(find_drop_p(f));        /* nothing: give our P up */
    FIND_PHASE(find_recheck(f));       /* without it, look once more */
    FIND_PHASE(find_block_netpoll(f)); /* sleep in netpoll until a timer or I/O */
    return FIND_STOPM;                 /* or park the M until someone wakes it */
}

/* findrunnable: block until there is a task to run; return it.
 * Returns NULL when the M must stop (end of run, orphaned).
 * Context: g0 holding a P (it may give the P up and get another). */
static g_t *findrunnable(m_t *mp, bool *inherit)
{
    for (;;) {
        *inherit = false;
        find_t f = {.mp = mp, .inherit = inherit};
        switch (find_once(&f)) {
        case FIND_FOUND:
            return f.gp;
        case FIND_EXIT:
            return NULL;
        case FIND_STOPM:
            urg__stopm(mp);
            break;
        case FIND_RETRY:
        case FIND_NEXT: /* find_once never returns it */
            break;
        }
    }
}

/* urg__mstart: the scheduling loop of an M. Context: g0. */
void urg__mstart(m_t *mp)
{
    for (;;) {
        bool inherit;
        g_t *gp = findrunnable(mp, &inherit);
        if (!gp)
            break;
        if (mp->spinning)
            reset_spinning(mp);
        execute(mp, gp, inherit);
    }
    /* An abandoned M must not touch the scheduler again: its run is over
     * and the next one may have started. */
    if (!ld_acquire(&mp->orphan))
        urg__drop_spinning(mp);
}

/* urg__orphan_exit: this M was abandoned by a finished urg_run while it
 * ran a task (a cooperative hog, a long syscall). Leave the task where it
 * is, touching nothing shared, and let the thread end. Context: task. */
void urg__orphan_exit(m_t *mp)
{
    g_t *gp = mp->curg; /* also set while the task is in a syscall */
    mp->after_fn = NULL;
    st_relaxed(&mp->curg, (g_t *)NULL);
    urg__switch(gp, &mp->g0);
    urg__throw("orphaned task resumed");
}

/* urg__curg: the running task, or NULL outside a task. An orphaned M's
 * task stops here: it never returns into the runtime of a finished run. */
g_t *urg__curg(void)
{
    m_t *mp = urg__tls_m;
    if (!mp)
        return NULL;
    if (unlikely(ld_relaxed(&mp->orphan)) && mp->curg)
        urg__orphan_exit(mp);
    g_t *gp = mp->curg;
    /* A task the runtime detached from its P (runtime/detach.c) gets one
     * back at its first runtime call. */
    if (unlikely(gp && (gp->flags & G_FLAG_DETACHED)))
        urg__reattach(gp);
    return gp;
}

/* process_threads: the number of threads in this process, from
 * /proc/self/stat (field 20), or -1. No allocation. */
static int process_threads(void)
{
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    /* Field 2 is "(comm)", which may contain spaces: count from its end. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    int field = 2;
    for (p++; *p && field < 20; p++)
        if (*p == ' ')
            field++;
    return field == 20 ? atoi(p) : -1;
}

/* urg__checkdead_locked: an M is about to park. If every M is parked
 * idle (so none runs a task, sits in a syscall or waits in epoll for a
 * timer or I/O), no task can ever be woken by the runtime: the program is
 * deadlocked. Say so, as Go does (proc.go checkdead counts Ms the same
 * way). Unlike Go's, our tasks can also be woken by threads the runtime
 * does not know — any pthread may send on a channel, unlock a mutex, or
 * finish a wait group, and may not have touched the runtime yet. So the
 * verdict is only given when the process has no thread but the runtime's:
 * its Ms and the thread in urg_run. (Under ThreadSanitizer, whose own
 * background threads count too, it therefore stays silent.) A false
 * "deadlock" would kill a correct program; a missed one leaves it
 * hanging, as it would without us.
 * Context: g0 without a P. Locks: sched.lock. */
void urg__checkdead_locked(void)
{
    if (ld_acquire(&sched.main_done) || ld_acquire(&sched.exiting) ||
        ld_acquire(&sched.stw_waiting) || ld_acquire(&sched.external_seen))
        return;
    if (sched.mcount - sched.nmidle > 0)
        return;
    if (ld_acquire(&sched.nmsyscall) != 0 || sched.runqsize != 0)
        return;
    if (urg__netpoll_waiters() || urg__timers_earliest() != 0)
        return;
    int32_t n = ld_relaxed(&sched.gomaxprocs);
    for (int32_t i = 0; i < n; i++)
        if (!urg__runqempty(sched.allp[i]))
            return;
    if (process_threads() != sched.mcount + 1)
        return;
    urg__throw("all tasks are asleep - deadlock!");
}
