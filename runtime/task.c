/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * task.c — task descriptors and the task-level API (urg_go, urg_yield,
 * urg_checkpoint, urg_task_id, urg_preempt_disable/enable).
 *
 * Descriptors are carved from slabs (mmap'd chunks; pages are committed
 * when first written) and recycled through a per-P free stack of up to 64,
 * which overflows into a global array. Nothing per task comes from malloc:
 * a queued task that never ran costs one 64-byte descriptor (sched.h says
 * why it is one cache line) and a run-queue slot, and spawning takes no
 * lock in the common case. Slabs are kept until the run ends; dumps walk them to find every
 * task. Descriptors are type-stable for the whole run: a stale pointer to
 * a recycled descriptor (a cancelled timer, say) still points at a g_t,
 * which is what makes lazy timer deletion safe.
 *
 * Task ids come from a global counter in batches of 16 per P (Go's
 * goidcache), so ids are unique but not dense in creation order across Ps.
 */
#include "sched.h"
#include "trace.h"

#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#define GSLAB_BYTES (256u * 1024u)
#define GFREE_BATCH 32
#define GOID_BATCH  16

struct gslab {
    struct gslab *next;
    uint32_t used; /* descriptors carved so far */
    uint32_t cap;
    g_t gs[];
};

/* Free descriptors are kept as arrays of pointers, never as a list linked
 * through the descriptors: a list can only be walked one cache miss at a
 * time, while an array lets gfget prefetch a few descriptors ahead. Order
 * matters as much: tasks mostly die in the order they were made, so the
 * per-P stack sends its oldest half to the global array and both hand out
 * the newest first. A burst of spawns then walks memory in one direction,
 * which the hardware prefetcher follows, both here and when the scheduler
 * later walks the global run queue. */
static struct {
    urg__lock_t lock;
    struct gslab *slabs; /* newest first */
    g_t **gfree;         /* global free array (mmap'd), [ngfree-1] newest */
    size_t ngfree;
    size_t cap;    /* entries gfree has room for */
    size_t carved; /* descriptors carved in all: the array never needs more */
} gpool = {.lock = URG__LOCK_INIT(URG_RANK_GSLAB)};

_Static_assert(sizeof(g_t) == URG__CACHELINE, "a task descriptor is one cache line (see sched.h)");

/* How far ahead gfget prefetches: a spawn is ~100 ns, a miss on this VM
 * about as long, so a few descriptors of lead hide it. */
#define GFREE_PREFETCH 4

/* urg__ptrs_reserve: see sched.h. Context: any but signal. */
bool urg__ptrs_reserve(void ***arr, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 8192;
    while (n < need)
        n *= 2;
    void *mem;
    if (*arr)
        mem = mremap(*arr, *cap * sizeof(void *), n * sizeof(void *), MREMAP_MAYMOVE);
    else
        mem = mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        return false;
    *arr = mem;
    *cap = n;
    return true;
}

/* urg__ptrs_release: unmap an array from urg__ptrs_reserve. */
void urg__ptrs_release(void ***arr, size_t *cap)
{
    if (*arr)
        munmap(*arr, *cap * sizeof(void *));
    *arr = NULL;
    *cap = 0;
}

/* gpool_take: move up to n (at most GFREE_BATCH) free or fresh descriptors
 * into out[], the ones to hand out first last. Returns how many.
 * Locks: takes gpool.lock. */
static int gpool_take(g_t **out, int n)
{
    int got = 0;
    urg__lock(&gpool.lock);
    size_t k = gpool.ngfree < (size_t)n ? gpool.ngfree : (size_t)n;
    if (k) {
        gpool.ngfree -= k;
        memcpy(out, &gpool.gfree[gpool.ngfree], k * sizeof(g_t *));
        got = (int)k;
    }
    if (got < n) {
        /* Carve fresh ones, highest address first in out[] so that they
         * are handed out in address order. */
        int want = n - got;
        g_t *fresh[GFREE_BATCH];
        int nf = 0;
        while (nf < want) {
            struct gslab *s = gpool.slabs;
            if (!s || s->used == s->cap) {
                void *mem = mmap(NULL, GSLAB_BYTES, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (mem == MAP_FAILED)
                    break;
                s = mem;
                s->used = 0;
                s->cap = (uint32_t)((GSLAB_BYTES - sizeof(struct gslab)) / sizeof(g_t));
                s->next = gpool.slabs;
                st_release(&gpool.slabs, s);
            }
            /* Room for every descriptor carved, so freeing never fails. */
            if (!urg__ptrs_reserve((void ***)&gpool.gfree, &gpool.cap, gpool.carved + 1))
                break;
            g_t *gp = &s->gs[s->used];
            gp->status = G_DEAD;
            st_release(&s->used, s->used + 1);
            gpool.carved++;
            fresh[nf++] = gp;
        }
        /* out[] is popped from the top: put the fresh ones below the
         * recycled ones, lowest address on top. */
        memmove(&out[nf], out, (size_t)got * sizeof(g_t *));
        for (int i = 0; i < nf; i++)
            out[i] = fresh[nf - 1 - i];
        got += nf;
    }
    urg__unlock(&gpool.lock);
    return got;
}

/* gpool_put: give n descriptors to the global array, out[0] first (the
 * oldest: it is handed out last). Locks: takes gpool.lock. */
static void gpool_put(g_t *const *gs, int n)
{
    urg__lock(&gpool.lock);
    /* Room was made when they were carved. */
    if (unlikely(gpool.ngfree + (size_t)n > gpool.cap))
        urg__throw("free descriptor array overflow");
    memcpy(&gpool.gfree[gpool.ngfree], gs, (size_t)n * sizeof(g_t *));
    gpool.ngfree += (size_t)n;
    urg__unlock(&gpool.lock);
}

static g_t *gfget(p_t *pp)
{
    if (!pp) {
        g_t *gp;
        return gpool_take(&gp, 1) ? gp : NULL;
    }
    int32_t n = pp->ngfree;
    if (n == 0) {
        n = gpool_take(pp->gfree, GFREE_BATCH);
        if (n == 0)
            return NULL;
        for (int32_t i = n - 1; i >= 0 && i >= n - GFREE_PREFETCH; i--)
            __builtin_prefetch(pp->gfree[i], 1);
    }
    g_t *gp = pp->gfree[--n];
    pp->ngfree = n;
    /* Spawning in bulk walks descriptors that have left the cache. */
    if (n >= GFREE_PREFETCH)
        __builtin_prefetch(pp->gfree[n - GFREE_PREFETCH], 1);
    return gp;
}

/* urg__gfree: recycle a dead task's descriptor. Context: g0 or any thread
 * holding pp (pp may be NULL: straight to the global array). */
void urg__gfree(p_t *pp, g_t *gp)
{
    st_relaxed(&gp->status, (uint32_t)G_DEAD);
    if (!pp) {
        gpool_put(&gp, 1);
        return;
    }
    if (pp->ngfree == URG__GFREE_MAX) {
        /* Send the older half away; the newer half stays warm here. */
        const int32_t half = URG__GFREE_MAX / 2;
        gpool_put(pp->gfree, half);
        memmove(pp->gfree, &pp->gfree[half], (size_t)(URG__GFREE_MAX - half) * sizeof(g_t *));
        pp->ngfree = URG__GFREE_MAX - half;
    }
    pp->gfree[pp->ngfree++] = gp;
}

/* urg__gfree_flush: a P is going away: its free descriptors go global.
 * Context: stop-the-world. */
void urg__gfree_flush(p_t *pp)
{
    if (pp->ngfree)
        gpool_put(pp->gfree, pp->ngfree);
    pp->ngfree = 0;
}

/* urg__gfree_all: end of run: release every slab. Context: urg_run's
 * thread, all Ms stopped. */
void urg__gfree_all(void)
{
    struct gslab *s = gpool.slabs;
    while (s) {
        struct gslab *next = s->next;
        munmap(s, GSLAB_BYTES);
        s = next;
    }
    urg__ptrs_release((void ***)&gpool.gfree, &gpool.cap);
    gpool.slabs = NULL;
    gpool.ngfree = 0;
    gpool.carved = 0;
}

/* urg__gslab_foreach: call fn on every descriptor ever handed out in this
 * run (dead ones included). Takes no lock, so it can run in a signal
 * handler: slabs are only ever prepended, and a descriptor is g_t-shaped
 * from the moment it is carved. Signal-safe if fn is. */
void urg__gslab_foreach(void (*fn)(g_t *gp, void *arg), void *arg)
{
    for (struct gslab *s = ld_acquire(&gpool.slabs); s; s = s->next) {
        uint32_t used = ld_acquire(&s->used);
        for (uint32_t i = 0; i < used && i < s->cap; i++)
            fn(&s->gs[i], arg);
    }
}

static uint64_t new_goid(p_t *pp)
{
    if (!pp)
        return fetch_add(&sched.goidgen, 1) + 1;
    if (pp->goidcache == pp->goidcacheend) {
        uint64_t end = fetch_add(&sched.goidgen, GOID_BATCH) + GOID_BATCH;
        pp->goidcache = end - GOID_BATCH + 1;
        pp->goidcacheend = end + 1;
    }
    return pp->goidcache++;
}

/* urg__newproc: a descriptor for a new task, not yet queued. pp may be
 * NULL (threads without a P). Context: any but signal. */
g_t *urg__newproc(urg_fn fn, void *arg, uint32_t flags, p_t *pp, int *err)
{
    g_t *gp = gfget(pp);
    if (!gp) {
        *err = -ENOMEM;
        return NULL;
    }
    /* Every field a new task reads, set once (one cache line). timer_seq
     * survives reuse: a stale timer entry, which may read it at any time,
     * must never match again. */
    gp->fn = fn;
    gp->arg = arg;
    gp->m = NULL;
    gp->schedlink = NULL;
    gp->id = new_goid(pp);
    /* Other threads may still look at a recycled descriptor through a
     * stale pointer (sysmon through m->curg, a late waker through a
     * select's waiter): the fields they touch atomically are written
     * atomically here too. At worst a new task sees one spurious
     * preemption request, which costs it a yield. */
    st_relaxed(&gp->status, (uint32_t)G_RUNNABLE);
    gp->flags = (uint16_t)flags;
    st_relaxed(&gp->preempt, (uint8_t)0);
    st_relaxed(&gp->waitreason, (uint8_t)WAIT_NONE);
    gp->preempt_off = 0;
    st_relaxed(&gp->selectdone, 0u);
    gp->in_async_preempt = 0;
    gp->canary_stack = 0;
    gp->lastp = 0;
    if (pp)
        counter_inc(&pp->n_created);
    else
        fetch_add(&sched.exited_p_created, 1);
    URG__PROBE(spawn, gp->id, (uintptr_t)fn);
    urg__trace_instant(TR_EV_SPAWN, pp ? pp->id : -1, gp->id, 0);
    return gp;
}

/* ---- external threads --------------------------------------------------- */

/* The stand-in for a thread outside the runtime when it blocks on a
 * runtime object: it parks on a futex instead of giving up a P. */
static __thread struct {
    g_t g;
    struct urg__stack x;
} ext;

/* urg__getg_ext: the calling non-task thread's stand-in g. */
g_t *urg__getg_ext(void)
{
    g_t *gp = &ext.g;
    if (!(gp->flags & G_FLAG_EXTERNAL)) {
        gp->st = &ext.x;
        gp->flags = G_FLAG_EXTERNAL | G_FLAG_STARTED;
        gp->status = G_RUNNING;
    }
    st_relaxed(&sched.external_seen, 1u);
    return gp;
}

/* ---- the API ------------------------------------------------------------ */

int urg_go(urg_fn fn, void *arg)
{
    if (!fn)
        return -EINVAL;
    int err = 0;
    g_t *cur = urg__curg();
    if (cur) {
        URG__CLOSE_OPEN_SYSCALL(cur, "urg_go");
        m_t *mp = cur->m;
        if (unlikely(ld_relaxed(&sched.exiting)))
            return -EPERM;
        g_t *gp = urg__newproc(fn, arg, 0, mp->p, &err);
        if (!gp)
            return err;
        urg__runqput(mp->p, gp, true);
        urg__wakep();
        if (urg__preempt_pending(cur))
            urg__gopreempt(cur);
        return 0;
    }
    /* A thread outside the runtime. */
    if (!urg__ext_enter())
        return -EPERM;
    st_relaxed(&sched.external_seen, 1u);
    g_t *gp = urg__newproc(fn, arg, 0, NULL, &err);
    if (gp) {
        urg__lock(&sched.lock);
        urg__globrunqput(gp);
        urg__unlock(&sched.lock);
        urg__wakep();
    }
    urg__ext_exit();
    return gp ? 0 : err;
}

void urg_yield(void)
{
    g_t *gp = urg__curg();
    if (!gp) {
        sched_yield();
        return;
    }
    urg__gosched(gp, false);
}

void urg_checkpoint(void)
{
    g_t *gp = urg__curg();
    if (gp && urg__preempt_pending(gp))
        urg__gopreempt(gp);
}

uint64_t urg_task_id(void)
{
    m_t *mp = urg__tls_m;
    if (!mp)
        return 0;
    g_t *gp = ld_relaxed(&mp->curg);
    return gp ? gp->id : 0;
}

void urg_preempt_disable(void)
{
    g_t *gp = urg__curg();
    if (!gp)
        return;
    /* A plain store is enough: the only other reader is the SIGURG
     * handler on this same thread; the fence keeps the compiler from
     * sinking the store below the code it protects. */
    st_relaxed(&gp->preempt_off, gp->preempt_off + 1);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

void urg_preempt_enable(void)
{
    g_t *gp = urg__curg();
    if (!gp)
        return;
    if (gp->preempt_off <= 0) {
        urg__warn("urg_preempt_enable without urg_preempt_disable", "ignored");
        return;
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    st_relaxed(&gp->preempt_off, gp->preempt_off - 1);
    if (urg__preempt_pending(gp))
        urg__gopreempt(gp);
}

static const char *const waitreasons[WAIT__COUNT] = {
    [WAIT_NONE] = "",
    [WAIT_YIELD] = "yield",
    [WAIT_PREEMPTED] = "preempted",
    [WAIT_SLEEP] = "sleep",
    [WAIT_CHAN_SEND] = "chan send",
    [WAIT_CHAN_RECV] = "chan receive",
    [WAIT_SELECT] = "select",
    [WAIT_SELECT_FOREVER] = "select (no cases)",
    [WAIT_MUTEX] = "mutex",
    [WAIT_WG] = "wait group",
    [WAIT_IO] = "IO wait",
    [WAIT_STW] = "stop the world",
    [WAIT_SYSCALL_EXIT] = "syscall exit",
};

const char *urg__waitreason_str(int r)
{
    return r >= 0 && r < WAIT__COUNT && waitreasons[r] ? waitreasons[r] : "?";
}
