/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * chan.c — channels: buffered and unbuffered, close, zero-size elements,
 * and select with a timeout.
 *
 * Model (Go's chan.go and select.go, redone): a channel is a lock, a ring
 * buffer of `cap` elements and two FIFO queues of waiters (sudogs), one of
 * blocked senders, one of blocked receivers. A waiter lives on the waiting
 * task's stack and points at its data: a sender's value is copied
 * straight into a waiting receiver's destination (and the other way
 * round), so an unbuffered hand-off copies once and never touches the
 * buffer. The waiter is readied with runnext: it runs as soon as the
 * current task blocks, which is what makes ping-pong cheap.
 *
 * Waking protocol: whoever dequeues a waiter completes its operation, sets
 * sg->success and readies the task. A select enqueues a waiter on every
 * channel; the first party to CAS the task's selectdone from 0 to 1 (a
 * channel operation, a close, or the timer) wins, the others skip that
 * waiter. After waking, the select removes its remaining waiters.
 *
 * Lifetime: Go has a garbage collector; we count references. The creator
 * holds one; each enqueued waiter holds one until its task has finished
 * with the channel. urg_chan_free closes the channel (waking blocked tasks
 * with -EPIPE) and drops the creator's reference; memory goes when the
 * last waiter lets go. Using a channel after freeing it is still a bug, as
 * with free(3).
 *
 * Lock order: a select locks its channels in address order (each once).
 */
#include "sched.h"

#include <stdlib.h>
#include <string.h>

#define ELEM_MAX           65536
#define SELECT_STACK_CASES 8

struct waitq;

struct sudog {
    g_t *gp;
    struct sudog *next, *prev;
    struct waitq *q; /* the queue it is (or was last) linked in */
    void *elem;      /* send: source; recv: destination (may be NULL) */
    urg_chan *c;
    int case_index;
    bool is_select;
    bool queued;  /* still linked in c's queue (c.lock) */
    bool success; /* completed by an operation (false: by close) */
};

struct waitq {
    struct sudog *first, *last;
};

struct urg_chan {
    urg__lock_t lock;
    uint32_t closed; /* c.lock; also read atomically */
    uint32_t refs;   /* atomic */
    size_t elemsize;
    size_t cap;
    size_t count; /* c.lock */
    size_t sendx, recvx;
    struct waitq sendq, recvq;
    char *buf;
};

static void chan_unref(urg_chan *c)
{
    if (fetch_sub(&c->refs, 1u) == 1)
        free(c);
}

urg_chan *urg_chan_new(size_t elem_size, size_t capacity)
{
    if (elem_size > ELEM_MAX || capacity > INT32_MAX)
        return NULL;
    size_t bytes = elem_size * capacity;
    if (capacity && bytes / capacity != elem_size)
        return NULL;
    urg_chan *c = calloc(1, sizeof(*c) + bytes);
    if (!c)
        return NULL;
    urg__lock_init(&c->lock, URG_RANK_CHAN);
    c->elemsize = elem_size;
    c->cap = capacity;
    c->buf = (char *)(c + 1);
    c->refs = 1;
    return c;
}

static void enqueue(struct waitq *q, struct sudog *sg)
{
    sg->q = q;
    sg->next = NULL;
    sg->prev = q->last;
    if (q->last)
        q->last->next = sg;
    else
        q->first = sg;
    q->last = sg;
    sg->queued = true;
}

static void unlink_sg(struct sudog *sg)
{
    struct waitq *q = sg->q;
    if (sg->prev)
        sg->prev->next = sg->next;
    else
        q->first = sg->next;
    if (sg->next)
        sg->next->prev = sg->prev;
    else
        q->last = sg->prev;
    sg->next = sg->prev = NULL;
    sg->queued = false;
}

/* dequeue: the first waiter that can still be completed. A select waiter
 * whose task was already won by someone else is dropped.
 * Locks: c.lock. */
static struct sudog *dequeue(struct waitq *q)
{
    for (;;) {
        struct sudog *sg = q->first;
        if (!sg)
            return NULL;
        unlink_sg(sg);
        if (sg->is_select && !cas(&sg->gp->selectdone, 0u, 1u))
            continue;
        return sg;
    }
}

static inline void *slot(urg_chan *c, size_t i) { return c->buf + i * c->elemsize; }

static inline void copy_elem(void *dst, const void *src, size_t n)
{
    if (n && dst)
        memcpy(dst, src, n);
}

/* hand_result: tell sg's task how its wait ended (read when it wakes). */
static inline void hand_result(struct sudog *sg, bool success)
{
    sg->success = success;
    st_release(&sg->gp->st->param, (void *)sg);
}

/* complete: hand sg back to its task. Locks: none (after c.lock). */
static void complete(struct sudog *sg, bool success)
{
    g_t *gp = sg->gp;
    bool guarded;
    if (!urg__waker_enter(gp, &guarded))
        return; /* the run ended; the task is abandoned */
    hand_result(sg, success);
    urg__ready(gp, true);
    urg__waker_exit(guarded);
}

/* closed_out: close's half of complete, under c.lock: sg, dequeued, ends
 * unsuccessfully; its task joins *list (through schedlink, unused while it
 * is parked) to be readied after the lock is dropped. Locks: c.lock. */
static void closed_out(struct sudog *sg, g_t **list)
{
    hand_result(sg, false);
    sg->gp->schedlink = *list;
    *list = sg->gp;
}

/* enter: the caller's g (a task, or the external thread's stand-in),
 * after honouring a pending preemption request. */
static inline g_t *enter(void)
{
    g_t *gp = urg__curg();
    if (!gp)
        return urg__getg_ext();                         /* marks external_seen */
    URG__CLOSE_OPEN_SYSCALL(gp, "a channel operation"); /* before any lock */
    if (urg__preempt_pending(gp))
        urg__gopreempt(gp);
    return gp;
}

/* note_external: a thread outside the runtime touched a channel; it may
 * wake tasks, so an all-idle runtime is not necessarily deadlocked. */
static inline void note_external(void)
{
    if (!urg__tls_m)
        st_relaxed(&sched.external_seen, 1u);
}

/* The run ended while a task waited here: unlink its waiter. Context:
 * urg_run's teardown, all Ms stopped. */
static void chan_abandon(g_t *gp, void *arg)
{
    (void)gp;
    struct sudog *sg = arg;
    urg_chan *c = sg->c;
    urg__lock(&c->lock);
    if (sg->queued)
        unlink_sg(sg);
    urg__unlock(&c->lock);
    chan_unref(c);
}

struct select_waiters {
    struct sudog *sgs;
    int n;
};

static void select_abandon(g_t *gp, void *arg)
{
    struct select_waiters *w = arg;
    for (int i = 0; i < w->n; i++)
        chan_abandon(gp, &w->sgs[i]);
}

/* Context: g0 after the waiter switched out. */
static bool unlock_chan(m_t *mp, g_t *gp, void *arg)
{
    (void)mp;
    (void)gp;
    urg__unlock(&((urg_chan *)arg)->lock);
    return true;
}

/* chan_unlockf: how an operation drops the lock(s) its caller holds once
 * it has done its part under them, before it wakes anyone (Go's unlockf):
 * one channel's lock (unlock_one), or a select's locks on all its
 * channels (unlock_select). */
typedef void (*chan_unlockf)(void *arg);

static inline void unlock_one(void *arg) { urg__unlock(&((urg_chan *)arg)->lock); }

/* try_send: the non-blocking part of a send, shared by urg_chan_send,
 * urg_chan_try_send and select. Returns 1 (done), 0 (would block),
 * -EPIPE. Locks: c.lock held (and, from select, the other channels');
 * unlockf(ua) releases them unless 0 is returned. Inlined into each
 * caller, where unlockf is a known function: a direct call, and the
 * single-channel paths compile to what they were without the callback. */
static inline int try_send_locked(urg_chan *c, const void *elem, chan_unlockf unlockf, void *ua)
{
    if (c->closed) {
        unlockf(ua);
        return -EPIPE;
    }
    struct sudog *sg = dequeue(&c->recvq);
    if (sg) {
        copy_elem(sg->elem, elem, c->elemsize);
        unlockf(ua);
        complete(sg, true);
        return 1;
    }
    if (c->count < c->cap) {
        copy_elem(slot(c, c->sendx), elem, c->elemsize);
        if (++c->sendx == c->cap)
            c->sendx = 0;
        c->count++;
        unlockf(ua);
        return 1;
    }
    return 0;
}

/* try_recv: the non-blocking part of a receive; same contract. */
static inline int try_recv_locked(urg_chan *c, void *elem, chan_unlockf unlockf, void *ua)
{
    struct sudog *sg = dequeue(&c->sendq);
    if (sg) {
        if (c->cap == 0) {
            copy_elem(elem, sg->elem, c->elemsize);
        } else {
            /* Full buffer: take the head, put the sender's value at the
             * tail (which is the same slot). */
            copy_elem(elem, slot(c, c->recvx), c->elemsize);
            copy_elem(slot(c, c->recvx), sg->elem, c->elemsize);
            if (++c->recvx == c->cap)
                c->recvx = 0;
            c->sendx = c->recvx;
        }
        unlockf(ua);
        complete(sg, true);
        return 1;
    }
    if (c->count > 0) {
        copy_elem(elem, slot(c, c->recvx), c->elemsize);
        if (++c->recvx == c->cap)
            c->recvx = 0;
        c->count--;
        unlockf(ua);
        return 1;
    }
    if (c->closed) {
        unlockf(ua);
        if (elem && c->elemsize)
            memset(elem, 0, c->elemsize);
        return -EPIPE;
    }
    return 0;
}

/* block: wait on q of c until someone completes sg. Locks: c.lock held;
 * released by the park. */
static int block_on(urg_chan *c, struct waitq *q, g_t *gp, void *elem, int reason)
{
    struct sudog sg = {.gp = gp, .elem = elem, .c = c};
    fetch_add(&c->refs, 1u);
    enqueue(q, &sg);
    st_relaxed(&gp->st->param, (void *)NULL);
    gp->st->abandon = chan_abandon;
    gp->st->abandon_arg = &sg;
    urg__park_g(gp, unlock_chan, c, reason);
    gp->st->abandon = NULL;
    bool ok = sg.success; /* a receiver woken by close got a zeroed value */
    chan_unref(c);
    return ok ? 0 : -EPIPE;
}

int urg_chan_send(urg_chan *c, const void *elem)
{
    if (!c || (!elem && c->elemsize))
        return -EINVAL;
    g_t *gp = enter();
    urg__lock(&c->lock);
    int r = try_send_locked(c, elem, unlock_one, c);
    if (r != 0)
        return r < 0 ? r : 0;
    return block_on(c, &c->sendq, gp, (void *)elem, WAIT_CHAN_SEND);
}

int urg_chan_recv(urg_chan *c, void *elem_out)
{
    if (!c)
        return -EINVAL;
    g_t *gp = enter();
    urg__lock(&c->lock);
    int r = try_recv_locked(c, elem_out, unlock_one, c);
    if (r != 0)
        return r < 0 ? r : 0;
    return block_on(c, &c->recvq, gp, elem_out, WAIT_CHAN_RECV);
}

int urg_chan_try_send(urg_chan *c, const void *elem)
{
    if (!c || (!elem && c->elemsize))
        return -EINVAL;
    note_external();
    urg__lock(&c->lock);
    int r = try_send_locked(c, elem, unlock_one, c);
    if (r == 0) {
        urg__unlock(&c->lock);
        return -EAGAIN;
    }
    return r < 0 ? r : 0;
}

int urg_chan_try_recv(urg_chan *c, void *elem_out)
{
    if (!c)
        return -EINVAL;
    note_external();
    urg__lock(&c->lock);
    int r = try_recv_locked(c, elem_out, unlock_one, c);
    if (r == 0) {
        urg__unlock(&c->lock);
        return -EAGAIN;
    }
    return r < 0 ? r : 0;
}

int urg_chan_close(urg_chan *c)
{
    if (!c)
        return -EINVAL;
    note_external();
    urg__lock(&c->lock);
    if (c->closed) {
        urg__unlock(&c->lock);
        return -EPIPE;
    }
    st_release(&c->closed, 1u);
    /* Collect every waiter's task; wake them after dropping the lock.
     * A waiter's record lives on its task's stack, so with many waiters
     * each is a page of its own: visit each once, here, and chain the
     * tasks through their descriptors (dense) for the wake-ups. (Two
     * visits, one to collect and one to complete, cost a second walk over
     * every stack: seconds at a million waiters on a VM, docs/benchmarks.md.)
     * Writing the result before urg__waker_enter is safe: a record still
     * queued under c.lock belongs to a task that is parked and alive
     * (chan_abandon needs c.lock to unlink it before the run ends). */
    g_t *list = NULL;
    struct sudog *sg;
    while ((sg = dequeue(&c->recvq)) != NULL) {
        if (sg->elem && c->elemsize)
            memset(sg->elem, 0, c->elemsize);
        closed_out(sg, &list);
    }
    while ((sg = dequeue(&c->sendq)) != NULL)
        closed_out(sg, &list);
    urg__unlock(&c->lock);
    while (list) {
        g_t *gp = list;
        list = gp->schedlink;
        gp->schedlink = NULL;
        bool guarded;
        if (!urg__waker_enter(gp, &guarded))
            continue; /* the run ended; the task is abandoned */
        urg__ready(gp, true);
        urg__waker_exit(guarded);
    }
    return 0;
}

void urg_chan_free(urg_chan *c)
{
    if (!c) {
        urg__warn("urg_chan_free(NULL)", "ignored");
        return;
    }
    urg_chan_close(c);
    chan_unref(c);
}

int urg_chan_len(const urg_chan *c)
{
    if (!c)
        return -EINVAL;
    return (int)__atomic_load_n(&c->count, __ATOMIC_RELAXED);
}

int urg_chan_cap(const urg_chan *c)
{
    if (!c)
        return -EINVAL;
    return (int)c->cap;
}

/* ---- select ------------------------------------------------------------- */

struct select_park {
    urg_chan **locked; /* distinct channels, address order */
    int nlocked;
    uint64_t when; /* 0: no timer */
};

static void lock_all(urg_chan **v, int n)
{
    for (int i = 0; i < n; i++)
        urg__lock(&v[i]->lock);
}

static void unlock_all(urg_chan **v, int n)
{
    for (int i = n; i-- > 0;)
        urg__unlock(&v[i]->lock);
}

/* Context: g0 after the selecting task switched out. */
static bool select_unlock(m_t *mp, g_t *gp, void *arg)
{
    struct select_park *park = arg;
    /* Read park first: once the timer is in, it can fire and the task run
     * on, out of the block that holds park (it then waits for these locks
     * in select_dequeue, so the channels and s->locks stay valid). */
    urg_chan **locked = park->locked;
    int nlocked = park->nlocked;
    if (park->when && mp)
        urg__timer_add(mp->p, gp, park->when, TIMER_SELECT);
    unlock_all(locked, nlocked);
    return true;
}

static int cmp_chan(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (urg_chan *const *)a, y = (uintptr_t) * (urg_chan *const *)b;
    return x < y ? -1 : x > y;
}

/* select_forever: a select with no usable case and no timeout blocks for
 * good, as Go's empty select does. */
static bool never_unlock(m_t *mp, g_t *gp, void *arg)
{
    (void)mp;
    (void)gp;
    (void)arg;
    return true;
}

static int select_sleep(g_t *gp, uint64_t timeout_ns)
{
    if (timeout_ns == 0)
        return -EAGAIN;
    if (timeout_ns == URG_FOREVER) {
        urg__park_g(gp, never_unlock, NULL, WAIT_SELECT_FOREVER);
        return -ETIMEDOUT; /* not reached */
    }
    urg_sleep(timeout_ns);
    return -ETIMEDOUT;
}

/* select_check: -EINVAL for a malformed call, else how many cases have a
 * channel; clears every case's result. */
static inline int select_check(urg_select_case *cases, size_t n)
{
    if (n > 0 && !cases)
        return -EINVAL;
    if (n > 65536)
        return -EINVAL;
    int active = 0;
    for (size_t i = 0; i < n; i++) {
        urg_select_case *k = &cases[i];
        if (k->op != URG_SELECT_SEND && k->op != URG_SELECT_RECV)
            return -EINVAL;
        if (k->chan && k->op == URG_SELECT_SEND && !k->elem && k->chan->elemsize)
            return -EINVAL;
        k->result = 0;
        if (k->chan)
            active++;
    }
    return active;
}

/* The scratch of one select: the poll order (random), the lock order (by
 * address) and a waiter per case with a channel. The arrays sit on the
 * stack (struct select_small) up to SELECT_STACK_CASES such cases, else on
 * the heap; the struct itself never leaves urg_select and its inlined
 * helpers, so the compiler keeps its fields in registers. */
struct select_scratch {
    int *order; /* indexes in cases[], in poll order */
    urg_chan **locks;
    struct sudog *sgs;
    int na; /* the cases with a channel */
    int nl; /* distinct channels in locks[] */
    void *heap;
};

struct select_small {
    int order[SELECT_STACK_CASES];
    urg_chan *locks[SELECT_STACK_CASES];
    struct sudog sgs[SELECT_STACK_CASES];
};

/* unlock_select: the chan_unlockf of a select (arg: its scratch): all
 * its channels. */
static inline void unlock_select(void *arg)
{
    struct select_scratch *s = arg;
    unlock_all(s->locks, s->nl);
}

/* select_scratch_init: false when the heap has no room. */
static inline bool select_scratch_init(struct select_scratch *s, struct select_small *small,
                                       int active)
{
    s->order = small->order;
    s->locks = small->locks;
    s->sgs = small->sgs;
    s->heap = NULL;
    if (active > SELECT_STACK_CASES) {
        s->heap =
            malloc((size_t)active * (sizeof(int) + sizeof(urg_chan *) + sizeof(struct sudog)));
        if (!s->heap)
            return false;
        s->sgs = s->heap;
        s->locks = (urg_chan **)(s->sgs + active);
        s->order = (int *)(s->locks + active);
    }
    return true;
}

/* select_order: shuffle the cases with a channel into the poll order, and
 * list their channels once each in address order, the lock order. */
static inline void select_order(struct select_scratch *s, urg_select_case *cases, size_t n, g_t *gp)
{
    int *order = s->order;
    urg_chan **locks = s->locks;
    int na = 0;
    for (size_t i = 0; i < n; i++)
        if (cases[i].chan)
            order[na++] = (int)i;
    m_t *mp = gp->m;
    uint64_t rs = mp ? urg__rand_next(&mp->rand) : urg__nanotime() ^ (uintptr_t)gp;
    for (int i = na - 1; i > 0; i--) {
        int j = (int)(urg__rand_next(&rs) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < na; i++)
        locks[i] = cases[order[i]].chan;
    qsort(locks, (size_t)na, sizeof(*locks), cmp_chan);
    int nl = 0;
    for (int i = 0; i < na; i++)
        if (nl == 0 || locks[nl - 1] != locks[i])
            locks[nl++] = locks[i];
    s->na = na;
    s->nl = nl;
}

/* select_poll: pass 1: is any case ready now? Runs the first ready case
 * in poll order with the single-channel operations. Returns true with
 * *ret its index (its result set), every lock released; false with every
 * lock still held. Locks: all the select's channels. */
static inline bool select_poll(struct select_scratch *s, urg_select_case *cases, int *ret)
{
    for (int i = 0; i < s->na; i++) {
        urg_select_case *k = &cases[s->order[i]];
        int r = k->op == URG_SELECT_SEND ? try_send_locked(k->chan, k->elem, unlock_select, s)
                                         : try_recv_locked(k->chan, k->elem, unlock_select, s);
        if (r != 0) {
            if (r < 0)
                k->result = r;
            *ret = s->order[i];
            return true;
        }
    }
    return false;
}

/* select_enqueue: a waiter on every case. Locks: all the select's
 * channels. */
static inline void select_enqueue(struct select_scratch *s, urg_select_case *cases, g_t *gp)
{
    st_relaxed(&gp->selectdone, 0u);
    st_relaxed(&gp->st->param, (void *)NULL);
    for (int i = 0; i < s->na; i++) {
        urg_select_case *k = &cases[s->order[i]];
        struct sudog *sg = &s->sgs[i];
        *sg = (struct sudog){
            .gp = gp, .elem = k->elem, .c = k->chan, .case_index = s->order[i], .is_select = true};
        fetch_add(&k->chan->refs, 1u);
        enqueue(k->op == URG_SELECT_SEND ? &k->chan->sendq : &k->chan->recvq, sg);
    }
}

/* select_wait_external: a thread outside the runtime waits with a
 * deadline. No P to hold a timer: wait on the futex with the deadline,
 * showing the wait as urg__park_g would (dumps, tests). Locks: all the
 * select's channels; released here. */
static void select_wait_external(g_t *gp, struct select_park *park)
{
    st_relaxed(&gp->st->ext_futex, 0);
    st_relaxed(&gp->waitreason, (uint8_t)WAIT_SELECT);
    st_relaxed(&gp->st->waitsince, urg__nanotime_coarse());
    st_release(&gp->status, (uint32_t)G_WAITING);
    unlock_all(park->locked, park->nlocked);
    for (;;) {
        if (ld_acquire(&gp->st->ext_futex))
            break;
        uint64_t now = urg__nanotime();
        if (now >= park->when) {
            if (cas(&gp->selectdone, 0u, 1u)) {
                st_relaxed(&gp->st->param, (void *)NULL);
                break;
            }
            /* A channel won the race: its wakeup is on its way. */
            while (ld_acquire(&gp->st->ext_futex) == 0)
                urg__futex_wait((uint32_t *)&gp->st->ext_futex, 0, -1);
            break;
        }
        urg__futex_wait((uint32_t *)&gp->st->ext_futex, 0, (int64_t)(park->when - now));
    }
    st_relaxed(&gp->status, (uint32_t)G_RUNNING);
}

/* select_block: wait until a case or the timer wins. Locks: all the
 * select's channels; released by the park. */
static inline void select_block(struct select_scratch *s, g_t *gp, uint64_t timeout_ns)
{
    struct select_park park = {.locked = s->locks, .nlocked = s->nl, .when = 0};
    bool external = gp->flags & G_FLAG_EXTERNAL;
    if (timeout_ns != URG_FOREVER) {
        uint64_t now = urg__nanotime();
        park.when = now + timeout_ns < now ? UINT64_MAX : now + timeout_ns;
    }
    struct select_waiters sw = {.sgs = s->sgs, .n = s->na};
    if (external && park.when) {
        select_wait_external(gp, &park);
    } else {
        gp->st->abandon = select_abandon;
        gp->st->abandon_arg = &sw;
        urg__park_g(gp, select_unlock, &park, WAIT_SELECT);
        gp->st->abandon = NULL;
        if (park.when)
            urg__timer_cancel(gp);
    }
}

/* select_dequeue: remove the waiters nobody completed. Locks: takes all
 * the select's channels. */
static inline void select_dequeue(struct select_scratch *s)
{
    lock_all(s->locks, s->nl);
    for (int i = 0; i < s->na; i++) {
        struct sudog *sg = &s->sgs[i];
        if (sg->queued)
            unlink_sg(sg);
    }
    unlock_all(s->locks, s->nl);
    for (int i = 0; i < s->na; i++)
        chan_unref(s->sgs[i].c);
}

/* select_wait: pass 2: wait on every case; the index of the case that won
 * (its result set), or -ETIMEDOUT. Locks: all the select's channels;
 * released while it waits. */
static inline int select_wait(struct select_scratch *s, urg_select_case *cases, g_t *gp,
                              uint64_t timeout_ns)
{
    select_enqueue(s, cases, gp);
    select_block(s, gp, timeout_ns);
    struct sudog *won = ld_acquire(&gp->st->param);
    select_dequeue(s);
    if (!won)
        return -ETIMEDOUT;
    cases[won->case_index].result = won->success ? 0 : -EPIPE;
    return won->case_index;
}

int urg_select(urg_select_case *cases, size_t n, uint64_t timeout_ns)
{
    int active = select_check(cases, n);
    if (active < 0)
        return active;
    g_t *gp = enter();
    if (active == 0)
        return select_sleep(gp, timeout_ns);
    struct select_small small;
    struct select_scratch s;
    if (!select_scratch_init(&s, &small, active))
        return -ENOMEM;
    select_order(&s, cases, n, gp); /* random poll order, address lock order */
    int ret;
    lock_all(s.locks, s.nl);
    if (!select_poll(&s, cases, &ret)) { /* pass 1: is a case ready now? */
        if (timeout_ns == 0) {           /* no, and the caller only polls */
            unlock_all(s.locks, s.nl);
            ret = -EAGAIN;
        } else {
            ret = select_wait(&s, cases, gp, timeout_ns); /* pass 2: wait on every case */
        }
    }
    free(s.heap);
    return ret;
}
