/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * runq.c — run queues: each P's lock-free ring and runnext slot, the global
 * queue, and the idle lists of Ps and Ms.
 *
 * The local ring (proc.go runqput/runqget/runqgrab, redone here):
 *   - 256 slots; runqhead and runqtail are free-running uint32 counters,
 *     so tail-head is the length even across wraparound;
 *   - one producer, the owner P, which appends at the tail and publishes
 *     with a store-release of runqtail;
 *   - many consumers, the owner and thieves, which take from the head by
 *     CAS-release on runqhead after reading the slots. A consumer that
 *     read slots the owner overwrote meanwhile fails its CAS: the owner can
 *     only reuse a slot after runqhead moved past it;
 *   - slots are read and written with relaxed atomics: the accesses do
 *     race by design, and the CAS decides which reads count.
 * runnext holds the task just readied by the running task; it inherits the
 * rest of the time slice (schedtick is not bumped), which gives the
 * producer/consumer locality of channel ping-pong. Only the owner puts a
 * task there; thieves may CAS it to NULL.
 *
 * A full ring moves half of itself plus the new task to the global queue
 * in one batch, so the global lock is paid once per 128 tasks.
 *
 * The global queue is an intrusive list through g->schedlink under
 * sched.lock; runqsize is also read without the lock as a hint.
 */
#include "sched.h"

static inline g_t *slot_load(p_t *pp, uint32_t i)
{
    return __atomic_load_n(&pp->runq[i % URG__RUNQ_SIZE], __ATOMIC_RELAXED);
}

static inline void slot_store(p_t *pp, uint32_t i, g_t *gp)
{
    __atomic_store_n(&pp->runq[i % URG__RUNQ_SIZE], gp, __ATOMIC_RELAXED);
}

/* runqputslow: the ring is full; move half of it and gp to the global
 * queue. Returns false if a consumer raced us (the caller retries).
 * Context: owner of pp. Locks: takes sched.lock. */
static bool runqputslow(p_t *pp, g_t *gp, uint32_t h, uint32_t t)
{
    enum { HALF = URG__RUNQ_SIZE / 2 };
    g_t *batch[HALF + 1];
    uint32_t n = (t - h) / 2;
    URG__CHECK(n == HALF, "runqputslow: queue is not full");
    for (uint32_t i = 0; i < n; i++)
        batch[i] = slot_load(pp, h + i);
    if (!__atomic_compare_exchange_n(&pp->runqhead, &h, h + n, false, __ATOMIC_RELEASE,
                                     __ATOMIC_RELAXED))
        return false;
    batch[n] = gp;
    for (uint32_t i = 0; i < n; i++)
        batch[i]->schedlink = batch[i + 1];
    batch[n]->schedlink = NULL;
    urg__lock(&sched.lock);
    urg__globrunqputbatch(batch[0], batch[n], (int32_t)n + 1);
    urg__unlock(&sched.lock);
    return true;
}

/* urg__runqput: make gp runnable on pp. With next, gp goes to runnext and
 * the task it displaces goes to the tail.
 * Context: the owner of pp (task or g0). */
void urg__runqput(p_t *pp, g_t *gp, bool next)
{
    if (next) {
        g_t *old;
        if (ld_relaxed(&sched.gomaxprocs) == 1) { /* no thieves: see runqget */
            old = ld_relaxed(&pp->runnext);
            st_release(&pp->runnext, gp);
        } else {
            old = xchg(&pp->runnext, gp);
        }
        if (!old)
            return;
        gp = old; /* kick the old runnext to the tail */
    }
    for (;;) {
        uint32_t h = ld_acquire(&pp->runqhead);
        uint32_t t = pp->runqtail;
        if (t - h < URG__RUNQ_SIZE) {
            slot_store(pp, t, gp);
            st_release(&pp->runqtail, t + 1);
            return;
        }
        if (runqputslow(pp, gp, h, t))
            return;
    }
}

/* urg__runqget: take the next task from pp's local queue: runnext first
 * (*inherit = true: it shares the current time slice), then the ring.
 * Context: the owner of pp. */
g_t *urg__runqget(p_t *pp, bool *inherit)
{
    if (unlikely(sched.chaos))
        urg__chaos_shuffle(pp);
    /* With a single P there is no thief (stealing needs another P, and the
     * set of Ps only changes with the world stopped), so the owner can
     * take runnext and advance the head with plain stores instead of
     * locked instructions. */
    bool alone = ld_relaxed(&sched.gomaxprocs) == 1;
    g_t *next = ld_relaxed(&pp->runnext);
    if (next) {
        /* A failed CAS means a thief took it; it cannot have been
         * replaced, since only we put tasks there. */
        bool taken = alone ? (st_relaxed(&pp->runnext, (g_t *)NULL), true)
                           : cas(&pp->runnext, next, (g_t *)NULL);
        if (taken) {
            *inherit = true;
            return next;
        }
    }
    *inherit = false;
    if (alone) {
        uint32_t h = pp->runqhead;
        if (pp->runqtail == h)
            return NULL;
        g_t *gp = slot_load(pp, h);
        st_release(&pp->runqhead, h + 1);
        /* The task after this one will run soon: start its miss now. */
        if (pp->runqtail != h + 1)
            __builtin_prefetch(slot_load(pp, h + 1), 1);
        return gp;
    }
    for (;;) {
        uint32_t h = ld_acquire(&pp->runqhead);
        uint32_t t = pp->runqtail;
        if (t == h)
            return NULL;
        g_t *gp = slot_load(pp, h);
        if (__atomic_compare_exchange_n(&pp->runqhead, &h, h + 1, false, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            return gp;
    }
}

/* urg__runqdrain: take everything (used when a P is destroyed or the run
 * ends). Context: owner, or any thread while the world is stopped. */
int urg__runqdrain(p_t *pp, g_t **out, int max)
{
    int n = 0;
    g_t *next = xchg(&pp->runnext, (g_t *)NULL);
    if (next && n < max)
        out[n++] = next;
    for (;;) {
        uint32_t h = ld_acquire(&pp->runqhead);
        uint32_t t = ld_acquire(&pp->runqtail);
        if (t == h || n >= max)
            return n;
        g_t *gp = slot_load(pp, h);
        if (__atomic_compare_exchange_n(&pp->runqhead, &h, h + 1, false, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            out[n++] = gp;
    }
}

/* runqgrab: copy half (rounded up) of pp's ring into batch, starting at
 * batch_head in the thief's ring. With steal_runnext and an empty ring,
 * take runnext. Returns the number grabbed. Context: any M holding a P. */
static uint32_t runqgrab(p_t *pp, p_t *thief, uint32_t batch_head, bool steal_runnext)
{
    for (;;) {
        uint32_t h = ld_acquire(&pp->runqhead);
        uint32_t t = ld_acquire(&pp->runqtail);
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0) {
            if (!steal_runnext)
                return 0;
            g_t *next = ld_relaxed(&pp->runnext);
            if (!next)
                return 0;
            /* The victim is probably about to run it (a task just readied
             * a partner and will block soon); give it a moment rather than
             * bouncing the pair between threads. */
            if (ld_relaxed(&pp->status) == P_RUNNING) {
                for (int i = 0; i < 300; i++)
                    cpu_relax();
            }
            if (!cas(&pp->runnext, next, (g_t *)NULL))
                continue;
            slot_store(thief, batch_head, next);
            return 1;
        }
        if (n > URG__RUNQ_SIZE / 2)
            continue; /* h and t were read at different times */
        for (uint32_t i = 0; i < n; i++)
            slot_store(thief, batch_head + i, slot_load(pp, h + i));
        if (__atomic_compare_exchange_n(&pp->runqhead, &h, h + n, false, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            return n;
    }
}

/* urg__runqsteal: steal half of p2's queue into pp's (which must be
 * empty), return one task to run now. Context: owner of pp. */
g_t *urg__runqsteal(p_t *pp, p_t *p2, bool steal_runnext)
{
    uint32_t t = pp->runqtail;
    uint32_t n = runqgrab(p2, pp, t, steal_runnext);
    if (n == 0)
        return NULL;
    n--;
    g_t *gp = slot_load(pp, t + n);
    if (n == 0)
        return gp;
    uint32_t h = ld_acquire(&pp->runqhead);
    URG__CHECK(t - h + n < URG__RUNQ_SIZE, "runqsteal: runq overflow");
    st_release(&pp->runqtail, t + n);
    return gp;
}

/* urg__runqempty: true if pp has nothing queued. Context: any. Reads tail
 * twice around runnext so that a task moving from runnext to the ring is
 * not missed. */
URG__PREEMPT_PATH bool urg__runqempty(p_t *pp)
{
    for (;;) {
        uint32_t h = ld_acquire(&pp->runqhead);
        uint32_t t = ld_acquire(&pp->runqtail);
        g_t *next = ld_acquire(&pp->runnext);
        if (t == ld_acquire(&pp->runqtail))
            return h == t && next == NULL;
    }
}

/* urg__runqlen: approximate length (ring + runnext). Context: any. */
uint32_t urg__runqlen(p_t *pp)
{
    uint32_t h = ld_acquire(&pp->runqhead);
    uint32_t t = ld_acquire(&pp->runqtail);
    uint32_t n = t - h;
    if (n > URG__RUNQ_SIZE)
        n = 0;
    return n + (ld_relaxed(&pp->runnext) != NULL);
}

/* ---- global queue (Locks: sched.lock for all) ---- */

URG__PREEMPT_PATH void urg__globrunqput(g_t *gp)
{
    gp->schedlink = NULL;
    if (sched.runqtail)
        sched.runqtail->schedlink = gp;
    else
        sched.runqhead = gp;
    sched.runqtail = gp;
    st_relaxed(&sched.runqsize, sched.runqsize + 1);
}

void urg__globrunqputbatch(g_t *head, g_t *tail, int32_t n)
{
    tail->schedlink = NULL;
    if (sched.runqtail)
        sched.runqtail->schedlink = head;
    else
        sched.runqhead = head;
    sched.runqtail = tail;
    st_relaxed(&sched.runqsize, sched.runqsize + (uint64_t)n);
}

URG__PREEMPT_PATH static g_t *globrunqpop(void)
{
    g_t *gp = sched.runqhead;
    if (!gp)
        return NULL;
    sched.runqhead = gp->schedlink;
    if (sched.runqhead)
        __builtin_prefetch(sched.runqhead, 1);
    if (!sched.runqhead)
        sched.runqtail = NULL;
    st_relaxed(&sched.runqsize, sched.runqsize - 1);
    return gp;
}

/* globrunq_pass_over: the task after the head, when the head's last slice
 * ran on pp and that task's did not, and the head has not been passed over
 * since it joined the queue; else NULL.
 *
 * Why: hogs preempted in turn go round the global queue in a fixed order,
 * and while the procs take from it in a fixed order too (with 8 hogs on 2
 * procs, each proc takes every other one), each hog lands on the same proc
 * every time. Procs are not all equally fast — SMT siblings, vCPUs whose
 * host core is shared, big and little cores — so equal time would become
 * unequal work: 8 hogs on the 2 vCPUs of this project's VM split into a
 * group of 4 that did 10% more than the other. Passing over a head that
 * last ran here, for one that did not, makes hogs alternate between procs.
 * A task is passed over at most once per trip through the queue, so it
 * waits at most one extra turn; on one proc nothing is passed over. */
URG__PREEMPT_PATH static g_t *globrunq_pass_over(p_t *pp)
{
    g_t *head = sched.runqhead, *gp = head ? head->schedlink : NULL;
    uint16_t me = (uint16_t)(pp->id + 1);
    if (!gp || head->lastp != me || (gp->lastp & ~G_LASTP_PASSED) == me)
        return NULL;
    head->lastp |= G_LASTP_PASSED;
    head->schedlink = gp->schedlink;
    if (sched.runqtail == gp)
        sched.runqtail = head;
    st_relaxed(&sched.runqsize, sched.runqsize - 1);
    return gp;
}

/* chaos_globrunqpop: under URG_DEBUG=chaos, the first of the first 8
 * queued tasks that pp's M did not just preempt asynchronously, or one it
 * did more than URG__CHAOS_AVOID_NS ago (chaos.c). NULL if there is none:
 * the caller looks elsewhere or comes back. One at a time, no batches: a
 * batch would carry tagged tasks to pp's local queue. */
URG__PREEMPT_PATH static g_t *chaos_globrunqpop(p_t *pp)
{
    m_t *me = pp->m;
    uint64_t now = 0;
    g_t *prev = NULL, *gp = sched.runqhead;
    for (int i = 0; gp && i < 8; i++, prev = gp, gp = gp->schedlink) {
        if ((gp->flags & G_FLAG_STARTED) && gp->st->chaos_m && gp->st->chaos_m == me) {
            if (!now)
                now = urg__nanotime();
            if (now - gp->st->chaos_since < URG__CHAOS_AVOID_NS)
                continue;
        }
        if (prev)
            prev->schedlink = gp->schedlink;
        else
            sched.runqhead = gp->schedlink;
        if (sched.runqtail == gp)
            sched.runqtail = prev;
        st_relaxed(&sched.runqsize, sched.runqsize - 1);
        return gp;
    }
    return NULL;
}

/* urg__globrunqget: take a fair share of the global queue: at most max,
 * at most size/gomaxprocs+1, at most half a ring, and only one while at
 * most 4 per proc wait. Returns one task to run; the others go to pp's
 * local ring. pp may be NULL (then one task). */
URG__PREEMPT_PATH g_t *urg__globrunqget(p_t *pp, int32_t max)
{
    int64_t size = (int64_t)sched.runqsize;
    int32_t procs = ld_relaxed(&sched.gomaxprocs);
    if (size == 0)
        return NULL;
    if (unlikely(sched.chaos))
        return pp ? chaos_globrunqpop(pp) : globrunqpop();
    int64_t n = size / (procs > 0 ? procs : 1) + 1;
    if (n > size)
        n = size;
    if (max > 0 && n > max)
        n = max;
    if (n > URG__RUNQ_SIZE / 2)
        n = URG__RUNQ_SIZE / 2;
    /* A short queue is served one task at a time. Batching saves lock
     * round trips, which only matter when many tasks wait; and when few
     * do, they are mostly preempted hogs, for which a batch is unfair: the
     * tasks it moves to one P's local queue skip ahead of the global order
     * while the others wait for the next batch. With 8 hogs on 2 procs,
     * batches gave them 40 to 51 slices each over 2 s; one at a time, 46
     * or 47, every one. */
    if (!pp || size <= 4 * (int64_t)procs) {
        g_t *gp = pp ? globrunq_pass_over(pp) : NULL;
        return gp ? gp : globrunqpop();
    }
    g_t *gp = globrunqpop();
    for (int64_t i = 1; i < n; i++)
        urg__runqput(pp, globrunqpop(), false);
    return gp;
}

/* ---- idle Ps and Ms (Locks: sched.lock) ---- */

void urg__pidle_push(p_t *pp)
{
    URG__CHECK(urg__runqempty(pp), "pidleput: P has non-empty run queue");
    st_relaxed(&pp->status, (uint32_t)P_IDLE);
    pp->link = sched.pidle;
    sched.pidle = pp;
    fetch_add(&sched.npidle, 1);
}

p_t *urg__pidleget(void)
{
    p_t *pp = sched.pidle;
    if (pp) {
        sched.pidle = pp->link;
        pp->link = NULL;
        fetch_sub(&sched.npidle, 1);
    }
    return pp;
}

/* urg__pidleremove: take a specific P off the idle list. */
void urg__pidleremove(p_t *pp)
{
    for (p_t **pl = &sched.pidle; *pl; pl = &(*pl)->link) {
        if (*pl == pp) {
            *pl = pp->link;
            pp->link = NULL;
            fetch_sub(&sched.npidle, 1);
            return;
        }
    }
}

void urg__mput(m_t *mp)
{
    mp->idle_listed = true;
    mp->schedlink = sched.midle;
    sched.midle = mp;
    st_relaxed(&sched.nmidle, sched.nmidle + 1);
}

m_t *urg__mget(void)
{
    m_t *mp = sched.midle;
    if (mp) {
        sched.midle = mp->schedlink;
        mp->schedlink = NULL;
        mp->idle_listed = false;
        st_relaxed(&sched.nmidle, sched.nmidle - 1);
    }
    return mp;
}
