/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * timer.c — per-P timer heaps (Go 1.14's design) and urg_sleep.
 *
 * Each P keeps a 4-ary min-heap of (when, task, seq) under its timerlock.
 * A task has one timer at a time (sleep, select timeout); arming it puts
 * an entry in the heap of the P the task runs on. Cancelling does not
 * search the heap: it bumps the task's timer_seq, so the entry no longer
 * matches and is dropped when it reaches the top (a "zombie"). When
 * zombies exceed a quarter of a heap, the next insertion sweeps them.
 * Firing and cancelling race through one CAS on timer_seq: exactly one of
 * them wins. The firing side marks the sequence number FIRING while it
 * works and cancelling waits for that to clear, so that once a task has
 * cancelled its timer no late fire can touch it (its next wait may already
 * have begun). The entry records what kind of wait it ends; the firing
 * side never reads the task's current state. A sleep is woken only by its
 * timer; a select also by its channels, and selectdone decides who.
 *
 * Who runs timers: the owning P in findrunnable (before anything else);
 * stealing Ms on their last pass (other Ps' due timers); the M that wakes
 * from the blocking netpoll. The poller sleeps until the earliest timer of
 * any P (p->timer0, read without locks). A task readied by a timer goes to
 * runnext, so it runs as soon as the current task gives up the P — at the
 * next preemption at the latest — instead of after every queued task.
 */
#include "sched.h"

#include <stdlib.h>
#include <time.h>

#define HEAP_ARITY 4
#define FIRE_BATCH 32

static void sift_up(struct urg__timer_ent *h, uint32_t i)
{
    struct urg__timer_ent e = h[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / HEAP_ARITY;
        if (h[parent].when <= e.when)
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static void sift_down(struct urg__timer_ent *h, uint32_t n, uint32_t i)
{
    struct urg__timer_ent e = h[i];
    for (;;) {
        uint32_t c = i * HEAP_ARITY + 1;
        if (c >= n)
            break;
        uint32_t best = c;
        for (uint32_t k = c + 1; k < c + HEAP_ARITY && k < n; k++)
            if (h[k].when < h[best].when)
                best = k;
        if (h[best].when >= e.when)
            break;
        h[i] = h[best];
        i = best;
    }
    h[i] = e;
}

static bool stale(const struct urg__timer_ent *e)
{
    return ld_acquire(&e->gp->timer_seq) != e->seq;
}

/* fire: e's timer went off. Returns whether it woke the task. The task is
 * readied only after timer_seq is released: once ready it may run at once
 * on another thread and arm its next timer, which must not see FIRING.
 * Context: g0 (or a task, via a direct switch) holding a P. */
static bool fire(const struct urg__timer_ent *e)
{
    g_t *gp = e->gp;
    uint32_t seq = e->seq;
    if (e->kind == TIMER_SLEEP) {
        /* Nothing else wakes a sleeper: winning the CAS is the decision. */
        if (!cas(&gp->timer_seq, seq, URG__TIMER_SEQ_NEXT(seq)))
            return false;
        gp->st->timer_when = 0;
        urg__ready(gp, true);
        return true;
    }
    if (!cas(&gp->timer_seq, seq, seq | URG__TIMER_FIRING))
        return false; /* cancelled */
    /* A select: its channels may have completed it first. */
    bool won = cas(&gp->selectdone, 0u, 1u);
    if (won) {
        gp->st->timer_when = 0;
        st_release(&gp->st->param, (void *)NULL);
    }
    st_release(&gp->timer_seq, URG__TIMER_SEQ_NEXT(seq));
    if (won)
        urg__ready(gp, true);
    return won;
}

/* Locks: pp->timerlock. */
static void sweep_zombies(p_t *pp)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < pp->ntimers; i++)
        if (!stale(&pp->timers[i]))
            pp->timers[n++] = pp->timers[i];
    st_relaxed(&pp->ntimers, n); /* schedtrace reads it */
    for (uint32_t i = n / HEAP_ARITY + 1; i-- > 0;)
        if (i < n)
            sift_down(pp->timers, n, i);
    st_relaxed(&pp->nzombies, 0u);
}

/* Locks: pp->timerlock. Returns false when out of memory. */
static bool heap_push(p_t *pp, struct urg__timer_ent e)
{
    if (pp->ntimers == pp->captimers) {
        uint32_t cap = pp->captimers ? pp->captimers * 2 : 64;
        struct urg__timer_ent *t = realloc(pp->timers, cap * sizeof(*t));
        if (!t)
            return false;
        pp->timers = t;
        pp->captimers = cap;
    }
    pp->timers[pp->ntimers] = e;
    sift_up(pp->timers, pp->ntimers);
    st_relaxed(&pp->ntimers, pp->ntimers + 1);
    st_release(&pp->timer0, pp->timers[0].when);
    return true;
}

static struct urg__timer_ent heap_pop(p_t *pp)
{
    struct urg__timer_ent top = pp->timers[0];
    st_relaxed(&pp->ntimers, pp->ntimers - 1);
    pp->timers[0] = pp->timers[pp->ntimers];
    if (pp->ntimers)
        sift_down(pp->timers, pp->ntimers, 0);
    return top;
}

/* wake_netpoller: a timer for `when` was added; make sure somebody will
 * be awake by then. */
static void wake_netpoller(uint64_t when)
{
    if (ld_acquire(&sched.lastpoll) == 0) {
        uint64_t pu = ld_relaxed(&sched.polluntil);
        if (pu == 0 || pu > when)
            urg__netpoll_break();
    } else {
        urg__wakep();
    }
}

/* urg__timer_add: arm gp's timer for `when` on pp (the P gp runs on).
 * Context: g0 of pp's M (inside a park's unlockf). Locks: pp->timerlock. */
void urg__timer_add(p_t *pp, g_t *gp, uint64_t when, enum urg__timer_kind kind)
{
    struct urg__timer_ent e = {.when = when ? when : 1,
                               .gp = gp,
                               .seq = ld_acquire(&gp->timer_seq),
                               .kind = (uint32_t)kind};
    gp->st->timer_when = e.when;
    gp->st->timer_armed = e.seq;
    gp->st->timer_p = pp;
    urg__lock(&pp->timerlock);
    if (pp->ntimers > 64 && ld_relaxed(&pp->nzombies) > pp->ntimers / 4)
        sweep_zombies(pp);
    bool ok = heap_push(pp, e);
    urg__unlock(&pp->timerlock);
    if (!ok)
        urg__throw("out of memory growing a timer heap");
    wake_netpoller(e.when);
    /* Wake-up preemption: with every P busy, the timer's task waits for
     * this P's slice to end, unless sysmon looks by then (sysmon.c). */
    if (sched.wakegran_ns && ld_relaxed(&sched.npidle) == 0 &&
        e.when < ld_relaxed(&sched.sysmon_until))
        urg__sysmon_wake();
}

/* urg__timer_cancel: disarm gp's timer. When it returns, the timer will
 * not fire: either it was still armed (and is now a zombie entry), or it
 * has fired completely. Context: the task itself, after its wait. */
void urg__timer_cancel(g_t *gp)
{
    uint32_t armed = gp->st->timer_armed;
    p_t *pp = gp->st->timer_p;
    gp->st->timer_p = NULL;
    for (;;) {
        uint32_t v = ld_acquire(&gp->timer_seq);
        if (v == armed) {
            if (cas(&gp->timer_seq, armed, URG__TIMER_SEQ_NEXT(armed))) {
                if (pp)
                    fetch_add(&pp->nzombies, 1u);
                break;
            }
            continue;
        }
        if (v != (armed | URG__TIMER_FIRING))
            break;   /* fired and done */
        cpu_relax(); /* a fire is finishing: a few hundred instructions */
    }
    gp->st->timer_when = 0;
}

/* urg__timers_check: run pp's due timers; tasks they wake go to the
 * current M's P. Returns the next pending deadline (0: none).
 * Context: g0 holding a P. Locks: takes pp->timerlock. */
uint64_t urg__timers_check(p_t *pp, uint64_t now, bool *ran)
{
    *ran = false;
    for (;;) {
        uint64_t t0 = ld_acquire(&pp->timer0);
        if (t0 == 0 || t0 > now)
            return t0;
        struct urg__timer_ent due[FIRE_BATCH];
        int n = 0;
        urg__lock(&pp->timerlock);
        while (pp->ntimers && pp->timers[0].when <= now && n < FIRE_BATCH) {
            struct urg__timer_ent e = heap_pop(pp);
            if (stale(&e)) {
                uint32_t z = ld_relaxed(&pp->nzombies);
                if (z)
                    st_relaxed(&pp->nzombies, z - 1);
                continue;
            }
            due[n++] = e;
        }
        st_release(&pp->timer0, pp->ntimers ? pp->timers[0].when : 0);
        urg__unlock(&pp->timerlock);
        for (int i = 0; i < n; i++)
            if (fire(&due[i]))
                *ran = true;
    }
}

/* urg__timers_earliest: the earliest pending deadline on any P, 0 if
 * none. Lock-free; Context: any. */
uint64_t urg__timers_earliest(void)
{
    uint64_t best = 0;
    int32_t n = ld_acquire(&sched.gomaxprocs);
    for (int32_t i = 0; i < n; i++) {
        uint64_t t = ld_acquire(&sched.allp[i]->timer0);
        if (t && (!best || t < best))
            best = t;
    }
    return best;
}

/* urg__timers_move: P `from` is going away; its timers move to `to`.
 * Context: stop-the-world. */
void urg__timers_move(p_t *from, p_t *to)
{
    urg__lock(&from->timerlock);
    struct urg__timer_ent *v = from->timers;
    uint32_t n = from->ntimers;
    from->timers = NULL;
    st_relaxed(&from->ntimers, 0u);
    from->captimers = 0;
    st_release(&from->timer0, (uint64_t)0);
    urg__unlock(&from->timerlock);
    urg__lock(&to->timerlock);
    for (uint32_t i = 0; i < n; i++) {
        if (stale(&v[i]))
            continue;
        v[i].gp->st->timer_p = to;
        if (!heap_push(to, v[i]))
            urg__throw("out of memory growing a timer heap");
    }
    urg__unlock(&to->timerlock);
    free(v);
}

void urg__timers_free(p_t *pp)
{
    free(pp->timers);
    pp->timers = NULL;
    st_relaxed(&pp->ntimers, 0u);
    pp->captimers = 0;
    st_relaxed(&pp->timer0, (uint64_t)0);
}

/* ---- urg_sleep ---------------------------------------------------------- */

/* Context: g0, after the sleeping task switched out. */
static bool sleep_unlock(m_t *mp, g_t *gp, void *arg)
{
    (void)arg;
    urg__timer_add(mp->p, gp, gp->st->timer_when, TIMER_SLEEP);
    return true;
}

void urg_sleep(uint64_t ns)
{
    g_t *gp = urg__curg();
    if (!gp) {
        struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                              .tv_nsec = (long)(ns % 1000000000u)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        return;
    }
    URG__CLOSE_OPEN_SYSCALL(gp, "urg_sleep");
    if (ns == 0) {
        urg__gosched(gp, false);
        return;
    }
    uint64_t now = urg__nanotime();
    uint64_t when = now + ns < now ? UINT64_MAX : now + ns;
    gp->st->timer_when = when;
    urg__park_g(gp, sleep_unlock, NULL, WAIT_SLEEP);
}
