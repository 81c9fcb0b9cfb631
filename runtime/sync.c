/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * sync.c — urg_mutex and urg_wg: task-parking locks and wait groups that
 * live in plain user structs (zero-filled = initialised).
 *
 * Mutex (Go's sync.Mutex in spirit): the state word has LOCKED and
 * WAITERS bits. Lock is one CAS when free. Otherwise the task queues on a
 * FIFO (under a small internal lock, qlock) and parks. Unlock is one CAS
 * when nobody waits; otherwise it wakes the first waiter, which competes
 * for the lock again with newcomers ("barging": a running task that can
 * take the lock now is cheaper than a wakeup, and it keeps throughput up
 * under contention). A waiter that has waited over 1 ms gets the lock
 * handed to it directly instead (Go's starvation mode), so no task starves.
 *
 * Wait group (Go's sync.WaitGroup): one 64-bit state word holds the
 * counter (high half) and the number of waiters (low half), so the Add
 * that brings the counter to zero sees atomically whether anyone waits.
 * If nobody does, it touches the wait group no further: a wait group on a
 * task's stack may go out of scope the moment urg_wg_wait returns, as in
 * Go. If some wait, it resets the state and releases that many permits
 * under qlock; each waiter takes one permit, parking if none is there yet.
 *
 * Lifetime rule for both (POSIX's for mutexes, Go's for both): the last
 * access an unlock or the final done makes to the object is the one that
 * lets other tasks proceed, so they may free it right away.
 *
 * Both work from threads outside the runtime too (they park on a futex).
 * Misuse of these void functions (unlocking an unlocked mutex, a negative
 * counter, NULL) is refused with one line on stderr; nothing is changed.
 */
#include "sched.h"

#include <string.h>

#define MUTEX_LOCKED  1u
#define MUTEX_WAITERS 2u
#define STARVATION_NS 1000000ull

struct waiter {
    g_t *gp;
    struct waiter *next, *prev;
    void *owner; /* the mutex or wait group (abandon) */
    uint64_t since;
    bool handoff; /* mutex: the lock was handed to us */
    bool queued;
};

struct mutex_impl {
    uint32_t state;
    urg__lock_t qlock;
    struct waiter *head, *tail;
};
_Static_assert(sizeof(struct mutex_impl) <= sizeof(urg_mutex), "urg_mutex too small");
_Static_assert(_Alignof(struct mutex_impl) <= _Alignof(urg_mutex), "urg_mutex alignment");

struct wg_impl {
    uint64_t state; /* counter << 32 | waiters, atomic */
    urg__lock_t qlock;
    uint32_t permits; /* released but not yet taken, qlock */
    struct waiter *head, *tail;
};
_Static_assert(sizeof(struct wg_impl) <= sizeof(urg_wg), "urg_wg too small");
_Static_assert(_Alignof(struct wg_impl) <= _Alignof(urg_wg), "urg_wg alignment");

static void q_push(struct waiter **head, struct waiter **tail, struct waiter *w, bool front)
{
    w->queued = true;
    if (front) {
        w->prev = NULL;
        w->next = *head;
        if (*head)
            (*head)->prev = w;
        else
            *tail = w;
        *head = w;
    } else {
        w->next = NULL;
        w->prev = *tail;
        if (*tail)
            (*tail)->next = w;
        else
            *head = w;
        *tail = w;
    }
}

static void q_unlink(struct waiter **head, struct waiter **tail, struct waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        *head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        *tail = w->prev;
    w->next = w->prev = NULL;
    w->queued = false;
}

static g_t *caller(void)
{
    g_t *gp = urg__curg();
    if (!gp)
        return urg__getg_ext();
    URG__CLOSE_OPEN_SYSCALL(gp, "urg_mutex_lock or urg_wg_wait"); /* before any lock */
    if (urg__preempt_pending(gp))
        urg__gopreempt(gp);
    return gp;
}

/* wake: ready a dequeued waiter. Locks: none. */
static void wake(struct waiter *w)
{
    bool guarded;
    g_t *gp = w->gp;
    if (!urg__waker_enter(gp, &guarded))
        return;
    urg__ready(gp, true);
    urg__waker_exit(guarded);
}

/* Context: g0 after the waiter switched out. */
static bool unlock_q(m_t *mp, g_t *gp, void *arg)
{
    (void)mp;
    (void)gp;
    urg__unlock((urg__lock_t *)arg);
    return true;
}

/* ---- mutex ---- */

static void mutex_abandon(g_t *gp, void *arg)
{
    (void)gp;
    struct waiter *w = arg;
    struct mutex_impl *m = w->owner;
    urg__lock(&m->qlock);
    bool handed = !w->queued && w->handoff;
    if (w->queued)
        q_unlink(&m->head, &m->tail, w);
    if (!m->head)
        __atomic_fetch_and(&m->state, ~MUTEX_WAITERS, __ATOMIC_RELEASE);
    urg__unlock(&m->qlock);
    /* An unlock handed the mutex to this task, which will never run to
     * take it: unlock it on the task's behalf, which also hands it on to
     * the next waiter (a plain thread still wakes, the run being over). */
    if (handed)
        urg_mutex_unlock((urg_mutex *)m);
}

void urg_mutex_init(urg_mutex *m)
{
    if (!m) {
        urg__warn("urg_mutex_init(NULL)", "ignored");
        return;
    }
    memset(m, 0, sizeof(*m));
}

int urg_mutex_trylock(urg_mutex *mu)
{
    if (!mu)
        return -EINVAL;
    struct mutex_impl *m = (struct mutex_impl *)mu;
    uint32_t s = ld_relaxed(&m->state);
    if (!(s & MUTEX_LOCKED) && cas(&m->state, s, s | MUTEX_LOCKED))
        return 0;
    return -EBUSY;
}

void urg_mutex_lock(urg_mutex *mu)
{
    if (!mu) {
        urg__warn("urg_mutex_lock(NULL)", "ignored");
        return;
    }
    struct mutex_impl *m = (struct mutex_impl *)mu;
    if (likely(cas(&m->state, 0u, MUTEX_LOCKED)))
        return;
    g_t *gp = caller();
    /* Spin briefly when other Ps run: the holder may be about to unlock. */
    if (ld_relaxed(&sched.gomaxprocs) > 1 && !(gp->flags & G_FLAG_EXTERNAL)) {
        for (int i = 0; i < 30; i++) {
            cpu_relax();
            uint32_t s = ld_relaxed(&m->state);
            if (!(s & MUTEX_LOCKED) && cas(&m->state, s, s | MUTEX_LOCKED))
                return;
        }
    }
    struct waiter w = {.gp = gp, .owner = m};
    bool requeue = false;
    for (;;) {
        urg__lock(&m->qlock);
        uint32_t s = ld_relaxed(&m->state);
        if (!(s & MUTEX_LOCKED)) {
            if (cas(&m->state, s, s | MUTEX_LOCKED)) {
                urg__unlock(&m->qlock);
                return;
            }
            urg__unlock(&m->qlock);
            continue;
        }
        if (!(s & MUTEX_WAITERS) && !cas(&m->state, s, s | MUTEX_WAITERS)) {
            urg__unlock(&m->qlock);
            continue;
        }
        if (!requeue)
            w.since = urg__nanotime();
        w.handoff = false;
        /* A waiter that lost the race after a wakeup goes back to the
         * front: it has waited longest. */
        q_push(&m->head, &m->tail, &w, requeue);
        gp->st->abandon = mutex_abandon;
        gp->st->abandon_arg = &w;
        urg__park_g(gp, unlock_q, &m->qlock, WAIT_MUTEX);
        gp->st->abandon = NULL;
        if (w.handoff)
            return;
        requeue = true;
    }
}

void urg_mutex_unlock(urg_mutex *mu)
{
    if (!mu) {
        urg__warn("urg_mutex_unlock(NULL)", "ignored");
        return;
    }
    struct mutex_impl *m = (struct mutex_impl *)mu;
    if (likely(cas(&m->state, MUTEX_LOCKED, 0u)))
        return;
    uint32_t s = ld_relaxed(&m->state);
    if (!(s & MUTEX_LOCKED)) {
        urg__warn("urg_mutex_unlock of an unlocked mutex", "ignored");
        return;
    }
    if (!urg__tls_m)
        st_relaxed(&sched.external_seen, 1u);
    urg__lock(&m->qlock);
    struct waiter *w = m->head;
    bool handoff = false;
    if (w) {
        q_unlink(&m->head, &m->tail, w);
        handoff = urg__nanotime() - w->since > STARVATION_NS;
        w->handoff = handoff;
    }
    if (!m->head)
        __atomic_fetch_and(&m->state, ~MUTEX_WAITERS, __ATOMIC_RELEASE);
    urg__unlock(&m->qlock);
    /* Still LOCKED up to here, so nobody could free the mutex under us.
     * With a handoff it stays LOCKED, now on the waiter's behalf. */
    if (!handoff)
        __atomic_fetch_and(&m->state, ~MUTEX_LOCKED, __ATOMIC_RELEASE);
    if (w)
        wake(w);
}

/* ---- wait group ---- */

#define WG_COUNTER(s) ((int32_t)((s) >> 32))
#define WG_WAITERS(s) ((uint32_t)(s))

static void wg_abandon(g_t *gp, void *arg)
{
    (void)gp;
    struct waiter *w = arg;
    struct wg_impl *wg = w->owner;
    urg__lock(&wg->qlock);
    if (w->queued) {
        q_unlink(&wg->head, &wg->tail, w);
        /* It no longer waits: take it out of the count too. */
        __atomic_fetch_sub(&wg->state, 1ull, __ATOMIC_ACQ_REL);
    }
    urg__unlock(&wg->qlock);
}

void urg_wg_init(urg_wg *wg)
{
    if (!wg) {
        urg__warn("urg_wg_init(NULL)", "ignored");
        return;
    }
    memset(wg, 0, sizeof(*wg));
}

void urg_wg_add(urg_wg *w, int64_t delta)
{
    if (!w) {
        urg__warn("urg_wg_add(NULL)", "ignored");
        return;
    }
    if (delta > INT32_MAX || delta < -(int64_t)INT32_MAX) {
        urg__warn("urg_wg_add: delta out of range", "ignored");
        return;
    }
    struct wg_impl *wg = (struct wg_impl *)w;
    uint64_t add = (uint64_t)delta << 32;
    uint64_t s = __atomic_add_fetch(&wg->state, add, __ATOMIC_ACQ_REL);
    int32_t v = WG_COUNTER(s);
    uint32_t waiters = WG_WAITERS(s);
    if (v < 0) {
        __atomic_sub_fetch(&wg->state, add, __ATOMIC_ACQ_REL);
        urg__warn("urg_wg_add: negative wait group counter", "ignored");
        return;
    }
    if (v > 0 || waiters == 0)
        return; /* the last access when nobody waits */
    if (!urg__tls_m)
        st_relaxed(&sched.external_seen, 1u);
    /* Counter zero with waiters: nobody may Add or Wait concurrently now
     * (Go's contract), so reset and release them. */
    st_release(&wg->state, (uint64_t)0);
    urg__lock(&wg->qlock);
    wg->permits += waiters;
    struct waiter *list = NULL, **tail = &list;
    while (wg->permits > 0 && wg->head) {
        struct waiter *x = wg->head;
        q_unlink(&wg->head, &wg->tail, x);
        wg->permits--;
        *tail = x;
        tail = &x->next;
    }
    *tail = NULL;
    urg__unlock(&wg->qlock);
    while (list) {
        struct waiter *next = list->next;
        wake(list);
        list = next;
    }
}

void urg_wg_done(urg_wg *wg) { urg_wg_add(wg, -1); }

void urg_wg_wait(urg_wg *w)
{
    if (!w) {
        urg__warn("urg_wg_wait(NULL)", "ignored");
        return;
    }
    struct wg_impl *wg = (struct wg_impl *)w;
    uint64_t s = ld_acquire(&wg->state);
    if (WG_COUNTER(s) == 0)
        return;
    g_t *gp = caller();
    for (;;) {
        s = ld_acquire(&wg->state);
        if (WG_COUNTER(s) == 0)
            return;
        if (cas(&wg->state, s, s + 1))
            break;
    }
    struct waiter x = {.gp = gp, .owner = wg};
    urg__lock(&wg->qlock);
    if (wg->permits > 0) {
        wg->permits--;
        urg__unlock(&wg->qlock);
        return;
    }
    q_push(&wg->head, &wg->tail, &x, false);
    gp->st->abandon = wg_abandon;
    gp->st->abandon_arg = &x;
    urg__park_g(gp, unlock_q, &wg->qlock, WAIT_WG);
    gp->st->abandon = NULL;
}
