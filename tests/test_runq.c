/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_runq.c — the per-P run queue (runtime/runq.c), driven directly
 * through its internal API, without a running scheduler.
 *
 * The ring is the one lock-free structure every schedule goes through:
 * one producer (the P's owner) and many consumers (the owner and thieves)
 * that race on runqhead with CAS, plus a runnext slot that thieves may
 * CAS away and an overflow path that moves half the ring to the global
 * queue. A bug there loses or duplicates a task only under a rare
 * interleaving, which scheduler-level tests would see as a one-in-a-
 * thousand hang. So:
 *   - single-threaded checks pin the contract: FIFO order, runnext first
 *     with the inherit flag, a displaced runnext goes to the tail, overflow
 *     moves the oldest half plus the new task to the global queue in
 *     order, head/tail wrap around 2^32, steal takes half rounded up and
 *     keeps order, runnext is stolen only on request;
 *   - a concurrent test has one owner putting and getting while thieves,
 *     each on its own P, steal from the owner and from each other, for
 *     about 10^7 queue operations; every task must come out exactly once,
 *     with the payload the owner wrote before publishing it.
 *
 * The queue stores only pointers (and links overflowed tasks through
 * g->schedlink), so calloc'd g_t descriptors with an id stand in for
 * tasks. The global queue is the real one (urg__sched), drained under
 * sched.lock with urg__globrunqget(NULL, 1) as a P-less M would.
 *
 * sched.gomaxprocs matters to the ring: at 1 the owner knows there can be
 * no thief and takes runnext and the head with plain stores. No run is in
 * progress in this process, so the tests set it themselves: the
 * single-threaded checks run at 1 and at 2 (both code paths), the
 * concurrent ones at the number of Ps they create, as the scheduler would.
 */
#include "testutil.h"

#include "runtime/sched.h"

#include <pthread.h>

/* ---- fixtures ---- */

static p_t *new_p(int32_t id)
{
    void *mem = NULL;
    if (posix_memalign(&mem, 64, sizeof(p_t)) != 0)
        return NULL;
    memset(mem, 0, sizeof(p_t));
    p_t *pp = mem;
    pp->id = id;
    pp->status = P_RUNNING;
    return pp;
}

static g_t *new_gs(size_t n)
{
    g_t *gs = calloc(n, sizeof(g_t));
    if (gs)
        for (size_t i = 0; i < n; i++)
            gs[i].id = i + 1;
    return gs;
}

/* glob_get: one task from the global queue, as a P-less M would take it. */
static g_t *glob_get(void)
{
    urg__lock(&urg__sched.lock);
    g_t *gp = urg__globrunqget(NULL, 1);
    urg__unlock(&urg__sched.lock);
    return gp;
}

/* set_procs: what the queue believes about the number of Ps; resets the
 * global queue. */
static void set_procs(int32_t n)
{
    urg__sched.gomaxprocs = n;
    urg__sched.runqhead = urg__sched.runqtail = NULL;
    urg__sched.runqsize = 0;
}

static int teardown(void **state)
{
    (void)state;
    set_procs(0);
    return 0;
}

/* Run a single-threaded check with one P (the owner's lock-free fast
 * path) and with two (the CAS path thieves race with). */
#define BOTH_MODES(body)                                                                           \
    static void body##_at(int32_t procs);                                                          \
    static void body(void **state)                                                                 \
    {                                                                                              \
        (void)state;                                                                               \
        for (int32_t procs = 1; procs <= 2; procs++) {                                             \
            set_procs(procs);                                                                      \
            body##_at(procs);                                                                      \
        }                                                                                          \
    }                                                                                              \
    static void body##_at(int32_t procs)

/* ---- single-threaded contract ---- */

BOTH_MODES(test_runq_empty_p)
{
    (void)procs;
    p_t *pp = new_p(0);
    assert_non_null(pp);
    bool inherit = true;
    assert_true(urg__runqempty(pp));
    assert_int_equal(urg__runqlen(pp), 0);
    assert_null(urg__runqget(pp, &inherit));
    assert_false(inherit);
    free(pp);
}

BOTH_MODES(test_runq_fifo_order)
{
    (void)procs;
    p_t *pp = new_p(0);
    g_t *gs = new_gs(100);
    assert_non_null(pp);
    assert_non_null(gs);
    for (int i = 0; i < 100; i++) {
        urg__runqput(pp, &gs[i], false);
        assert_int_equal(urg__runqlen(pp), i + 1);
    }
    assert_false(urg__runqempty(pp));
    for (int i = 0; i < 100; i++) {
        bool inherit = true;
        g_t *gp = urg__runqget(pp, &inherit);
        assert_ptr_equal(gp, &gs[i]);
        assert_false(inherit);
    }
    assert_true(urg__runqempty(pp));
    assert_int_equal(urg__runqlen(pp), 0);
    assert_int_equal(urg__sched.runqsize, 0);
    free(gs);
    free(pp);
}

BOTH_MODES(test_runq_runnext_first_and_inherits)
{
    (void)procs;
    p_t *pp = new_p(0);
    g_t *gs = new_gs(3);
    urg__runqput(pp, &gs[0], false);
    urg__runqput(pp, &gs[1], false);
    urg__runqput(pp, &gs[2], true);
    assert_int_equal(urg__runqlen(pp), 3);
    assert_false(urg__runqempty(pp));

    bool inherit = false;
    assert_ptr_equal(urg__runqget(pp, &inherit), &gs[2]);
    assert_true(inherit);
    assert_ptr_equal(urg__runqget(pp, &inherit), &gs[0]);
    assert_false(inherit);
    assert_ptr_equal(urg__runqget(pp, &inherit), &gs[1]);
    assert_false(inherit);
    assert_null(urg__runqget(pp, &inherit));
    free(gs);
    free(pp);
}

/* A task readied into runnext displaces the previous one to the tail,
 * behind what was already queued (Go's runqput with next=true). */
BOTH_MODES(test_runq_runnext_displaced_to_tail)
{
    (void)procs;
    p_t *pp = new_p(0);
    g_t *gs = new_gs(3);
    urg__runqput(pp, &gs[0], true);
    urg__runqput(pp, &gs[1], false);
    urg__runqput(pp, &gs[2], true);
    assert_int_equal(urg__runqlen(pp), 3);

    bool inherit = false;
    assert_ptr_equal(urg__runqget(pp, &inherit), &gs[2]);
    assert_true(inherit);
    assert_ptr_equal(urg__runqget(pp, &inherit), &gs[1]);
    assert_false(inherit);
    assert_ptr_equal(urg__runqget(pp, &inherit), &gs[0]);
    assert_false(inherit);
    assert_true(urg__runqempty(pp));
    free(gs);
    free(pp);
}

/* Only runnext occupied: not empty, length 1. */
BOTH_MODES(test_runq_runnext_only_counts)
{
    (void)procs;
    p_t *pp = new_p(0);
    g_t *gs = new_gs(1);
    urg__runqput(pp, &gs[0], true);
    assert_false(urg__runqempty(pp));
    assert_int_equal(urg__runqlen(pp), 1);
    bool inherit = false;
    assert_ptr_equal(urg__runqget(pp, &inherit), &gs[0]);
    assert_true(inherit);
    assert_true(urg__runqempty(pp));
    free(gs);
    free(pp);
}

/* The 257th put finds the ring full: the oldest 128 and the new task go
 * to the global queue, in order, in one batch. */
BOTH_MODES(test_runq_overflow_moves_half_to_global)
{
    (void)procs;
    enum { N = URG__RUNQ_SIZE + 1, HALF = URG__RUNQ_SIZE / 2 };
    p_t *pp = new_p(0);
    g_t *gs = new_gs(N);
    for (int i = 0; i < URG__RUNQ_SIZE; i++)
        urg__runqput(pp, &gs[i], false);
    assert_int_equal(urg__runqlen(pp), URG__RUNQ_SIZE);
    assert_int_equal(urg__sched.runqsize, 0);

    urg__runqput(pp, &gs[N - 1], false);
    assert_int_equal(urg__runqlen(pp), URG__RUNQ_SIZE - HALF);
    assert_int_equal(urg__sched.runqsize, HALF + 1);

    for (int i = 0; i < HALF; i++)
        assert_ptr_equal(glob_get(), &gs[i]);
    assert_ptr_equal(glob_get(), &gs[N - 1]);
    assert_null(glob_get());
    assert_int_equal(urg__sched.runqsize, 0);

    bool inherit;
    for (int i = HALF; i < URG__RUNQ_SIZE; i++)
        assert_ptr_equal(urg__runqget(pp, &inherit), &gs[i]);
    assert_null(urg__runqget(pp, &inherit));
    free(gs);
    free(pp);
}

/* head and tail are free-running uint32 counters: the length and the
 * order must survive their wraparound at 2^32. */
BOTH_MODES(test_runq_counters_wrap)
{
    (void)procs;
    p_t *pp = new_p(0);
    g_t *gs = new_gs(URG__RUNQ_SIZE);
    pp->runqhead = pp->runqtail = UINT32_MAX - 10;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < URG__RUNQ_SIZE; i++)
            urg__runqput(pp, &gs[i], false);
        assert_int_equal(urg__runqlen(pp), URG__RUNQ_SIZE);
        assert_int_equal(urg__sched.runqsize, 0);
        bool inherit;
        for (int i = 0; i < URG__RUNQ_SIZE; i++)
            assert_ptr_equal(urg__runqget(pp, &inherit), &gs[i]);
        assert_true(urg__runqempty(pp));
        assert_int_equal(urg__runqlen(pp), 0);
    }
    assert_true(pp->runqhead < 1000); /* it did wrap */
    free(gs);
    free(pp);
}

/* Steal takes half the victim's ring, rounded up, from its head; the
 * last of the batch is returned to run, the others land in the thief's
 * ring in order. */
static void test_runq_steal_half_in_order(void **state)
{
    (void)state;
    set_procs(2); /* stealing needs a second P */
    p_t *victim = new_p(0), *thief = new_p(1);
    g_t *gs = new_gs(11);
    for (int i = 0; i < 11; i++)
        urg__runqput(victim, &gs[i], false);

    g_t *gp = urg__runqsteal(thief, victim, false);
    assert_ptr_equal(gp, &gs[5]); /* took 6: gs[0..5] */
    assert_int_equal(urg__runqlen(thief), 5);
    assert_int_equal(urg__runqlen(victim), 5);
    bool inherit;
    for (int i = 0; i < 5; i++)
        assert_ptr_equal(urg__runqget(thief, &inherit), &gs[i]);
    assert_null(urg__runqget(thief, &inherit));
    for (int i = 6; i < 11; i++)
        assert_ptr_equal(urg__runqget(victim, &inherit), &gs[i]);
    free(gs);
    free(thief);
    free(victim);
}

static void test_runq_steal_one(void **state)
{
    (void)state;
    set_procs(2); /* stealing needs a second P */
    p_t *victim = new_p(0), *thief = new_p(1);
    g_t *gs = new_gs(1);
    urg__runqput(victim, &gs[0], false);
    assert_ptr_equal(urg__runqsteal(thief, victim, false), &gs[0]);
    assert_true(urg__runqempty(victim));
    assert_true(urg__runqempty(thief));
    assert_null(urg__runqsteal(thief, victim, true));
    free(gs);
    free(thief);
    free(victim);
}

/* runnext is the victim's next task and shares its time slice: it is
 * stolen only when asked for (the scheduler's last pass) and only when
 * the ring is empty. */
static void test_runq_steal_runnext_only_on_request(void **state)
{
    (void)state;
    set_procs(2); /* stealing needs a second P */
    p_t *victim = new_p(0), *thief = new_p(1);
    g_t *gs = new_gs(2);
    urg__runqput(victim, &gs[0], true);
    assert_null(urg__runqsteal(thief, victim, false));
    assert_int_equal(urg__runqlen(victim), 1);

    victim->status = P_IDLE; /* skips the courtesy spin */
    assert_ptr_equal(urg__runqsteal(thief, victim, true), &gs[0]);
    assert_true(urg__runqempty(victim));
    assert_true(urg__runqempty(thief));

    /* With something in the ring, the ring is taken, not runnext. */
    urg__runqput(victim, &gs[0], true);
    urg__runqput(victim, &gs[1], false);
    assert_ptr_equal(urg__runqsteal(thief, victim, true), &gs[1]);
    bool inherit = false;
    assert_ptr_equal(urg__runqget(victim, &inherit), &gs[0]);
    assert_true(inherit);
    free(gs);
    free(thief);
    free(victim);
}

BOTH_MODES(test_runq_drain_takes_all)
{
    (void)procs;
    p_t *pp = new_p(0);
    g_t *gs = new_gs(10);
    for (int i = 0; i < 9; i++)
        urg__runqput(pp, &gs[i], false);
    urg__runqput(pp, &gs[9], true);
    g_t *out[16];
    assert_int_equal(urg__runqdrain(pp, out, 16), 10);
    assert_ptr_equal(out[0], &gs[9]);
    for (int i = 0; i < 9; i++)
        assert_ptr_equal(out[i + 1], &gs[i]);
    assert_true(urg__runqempty(pp));
    free(gs);
    free(pp);
}

/* ---- the global queue, one task at a time ---- */

static g_t *glob_get_p(p_t *pp)
{
    urg__lock(&urg__sched.lock);
    g_t *gp = urg__globrunqget(pp, 0);
    urg__unlock(&urg__sched.lock);
    return gp;
}

static void glob_put(g_t *gp, uint16_t lastp)
{
    gp->lastp = lastp;
    urg__lock(&urg__sched.lock);
    urg__globrunqput(gp);
    urg__unlock(&urg__sched.lock);
}

/* A P taking from a short global queue passes over a head whose last
 * slice ran on it, once, for a task whose did not; everything else is
 * FIFO, and the queue stays whole (its tail included). */
static void test_runq_global_passes_over_once(void **state)
{
    (void)state;
    set_procs(2);
    p_t *p0 = new_p(0), *p1 = new_p(1);
    g_t *gs = new_gs(8);
    glob_put(&gs[0], 1); /* last ran on p0 */
    glob_put(&gs[1], 2); /* on p1 */
    glob_put(&gs[2], 2);
    glob_put(&gs[3], 1);
    glob_put(&gs[4], 0);                      /* never preempted */
    assert_ptr_equal(glob_get_p(p0), &gs[1]); /* gs[0] passed over */
    assert_ptr_equal(glob_get_p(p0), &gs[0]); /* but only once */
    assert_ptr_equal(glob_get_p(p0), &gs[2]);
    assert_ptr_equal(glob_get_p(p0), &gs[4]);
    assert_ptr_equal(glob_get_p(p0), &gs[3]); /* nothing behind it */
    assert_null(glob_get_p(p0));

    /* Both last ran here (as on one proc): FIFO. */
    glob_put(&gs[4], 2);
    glob_put(&gs[5], 2);
    assert_ptr_equal(glob_get_p(p1), &gs[4]);
    assert_ptr_equal(glob_get_p(p1), &gs[5]);

    /* Passing over the last task moves the tail back to the head. */
    glob_put(&gs[6], 1);
    glob_put(&gs[7], 2);
    assert_ptr_equal(glob_get_p(p0), &gs[7]);
    glob_put(&gs[7], 0);
    assert_ptr_equal(glob_get_p(p1), &gs[6]);
    assert_ptr_equal(glob_get_p(p1), &gs[7]);
    assert_null(glob_get_p(p1));
    assert_int_equal(urg__sched.runqsize, 0);
    free(gs);
    free(p0);
    free(p1);
}

/* ---- concurrent: one owner, several thieves ----
 *
 * A pool of descriptors is recycled: inflight[i] is 1 from the moment the
 * owner puts g i until whoever takes it has looked at it. Taking a g whose
 * flag is already 0 is a duplicate; a g still in flight when everything is
 * drained is lost. The owner stores a sequence number in g->arg before the
 * put; takers check it against what the owner recorded, which catches a
 * slot read before the owner's release store (a stale pointer) and sums
 * it as a checksum. */

enum { POOL = 1 << 14, NTHIEVES = 3, MAXP = NTHIEVES + 1 };

struct stress {
    p_t *ps[MAXP]; /* ps[0]: the owner's P */
    int nthieves;
    g_t *gs;
    uint32_t *inflight;          /* atomic */
    uint64_t *expect;            /* owner writes before the put */
    uint64_t total;              /* atomic: puts to make (the owner lowers it on a timeout) */
    uint64_t taken;              /* atomic */
    uint64_t sum_put, sum_taken; /* sum_taken atomic */
    uint64_t ops;                /* atomic: queue operations, all threads */
    uint64_t steals;             /* atomic: successful steals */
    uint64_t global;             /* atomic: tasks taken from the global queue */
    uint64_t deadline;
    int timed_out; /* atomic */
};

static void take(struct stress *s, g_t *gp)
{
    uintptr_t idx = (uintptr_t)(gp - s->gs);
    if (gp < s->gs || idx >= POOL) {
        CHECK(!"taken pointer is not one of ours");
        return;
    }
    CHECK(gp->id == idx + 1);
    uint64_t seq = (uint64_t)(uintptr_t)gp->arg;
    CHECK(seq == __atomic_load_n(&s->expect[idx], __ATOMIC_RELAXED));
    __atomic_fetch_add(&s->sum_taken, seq, __ATOMIC_RELAXED);
    if (__atomic_exchange_n(&s->inflight[idx], 0u, __ATOMIC_ACQ_REL) != 1u)
        CHECK(!"task taken twice");
    __atomic_fetch_add(&s->taken, 1, __ATOMIC_RELEASE);
}

static bool all_taken(struct stress *s)
{
    uint64_t total = __atomic_load_n(&s->total, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&s->taken, __ATOMIC_ACQUIRE) >= total)
        return true;
    if (urg_now() > s->deadline) {
        __atomic_store_n(&s->timed_out, 1, __ATOMIC_RELAXED);
        return true;
    }
    return false;
}

/* drain_local: take everything from pp's ring (the caller owns pp). */
static uint64_t drain_local(struct stress *s, p_t *pp)
{
    uint64_t n = 0;
    bool inherit;
    g_t *gp;
    while ((gp = urg__runqget(pp, &inherit)) != NULL) {
        take(s, gp);
        n++;
    }
    return n + 1;
}

static uint64_t drain_global_one(struct stress *s)
{
    if (__atomic_load_n(&urg__sched.runqsize, __ATOMIC_RELAXED) == 0)
        return 0;
    g_t *gp = glob_get();
    if (gp) {
        __atomic_fetch_add(&s->global, 1, __ATOMIC_RELAXED);
        take(s, gp);
    }
    return 1;
}

struct thief_arg {
    struct stress *s;
    int self;
};

static void *thief_main(void *arg)
{
    struct thief_arg *ta = arg;
    struct stress *s = ta->s;
    p_t *pp = s->ps[ta->self];
    uint64_t rnd = (uint64_t)ta->self * 0x9e3779b97f4a7c15ull + 1;
    uint64_t ops = 0, steals = 0;
    while (!all_taken(s)) {
        rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
        /* Mostly the owner; sometimes a fellow thief that is still
         * draining a stolen batch. */
        int victim = (rnd >> 33) % 4 == 0 ? 1 + (int)((rnd >> 40) % (uint64_t)s->nthieves) : 0;
        if (victim == ta->self)
            victim = 0;
        bool runnext = (rnd >> 20) % 4 == 0;
        g_t *gp = urg__runqsteal(pp, s->ps[victim], runnext);
        ops++;
        if (gp) {
            steals++;
            take(s, gp);
            ops += drain_local(s, pp);
        } else {
            ops += drain_global_one(s);
        }
    }
    __atomic_fetch_add(&s->ops, ops, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->steals, steals, __ATOMIC_RELAXED);
    return NULL;
}

/* owner_put: put pool entry idx, publishing a new sequence number. */
static void owner_put(struct stress *s, uint32_t idx, uint64_t seq, bool next)
{
    p_t *pp = s->ps[0];
    g_t *gp = &s->gs[idx];
    gp->arg = (void *)(uintptr_t)seq;
    __atomic_store_n(&s->expect[idx], seq, __ATOMIC_RELAXED);
    __atomic_store_n(&s->inflight[idx], 1u, __ATOMIC_RELAXED);
    s->sum_put += seq;
    urg__runqput(pp, gp, next);
}

static void owner_run(struct stress *s)
{
    p_t *pp = s->ps[0];
    uint64_t rnd = 42, ops = 0, seq = 0;
    uint32_t cursor = 0;
    while (seq < s->total) {
        rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(rnd >> 33);
        /* Keep the ring between a quarter and three quarters full, so
         * thieves usually find something to race the owner for; now and
         * then a burst longer than the ring, so the overflow to the
         * global queue runs while thieves are active. */
        uint32_t len = urg__runqlen(pp);
        uint32_t burst = r % 512 == 0                   ? URG__RUNQ_SIZE + 64
                         : len < URG__RUNQ_SIZE / 4     ? 1
                         : len > 3 * URG__RUNQ_SIZE / 4 ? 0
                                                        : r % 2;
        for (uint32_t b = 0; b < burst && seq < s->total; b++) {
            /* Find a descriptor nobody holds (its taker has finished with
             * it); the pool is far larger than what is ever in flight. */
            uint32_t tries = 0;
            while (__atomic_load_n(&s->inflight[cursor], __ATOMIC_ACQUIRE) != 0 && tries < POOL) {
                cursor = (cursor + 1) % POOL;
                tries++;
            }
            if (tries == POOL)
                break;
            seq++;
            owner_put(s, cursor, seq, (r >> 8) % 8 == 0);
            cursor = (cursor + 1) % POOL;
            ops++;
        }
        if (burst != 1 || (r >> 12) % 2 == 0) {
            bool inherit;
            g_t *gp = urg__runqget(pp, &inherit);
            ops++;
            if (gp)
                take(s, gp);
            else
                ops += drain_global_one(s);
        }
        if (__atomic_load_n(&s->timed_out, __ATOMIC_RELAXED) || urg_now() > s->deadline) {
            __atomic_store_n(&s->timed_out, 1, __ATOMIC_RELAXED);
            break;
        }
    }
    /* Normally unchanged; smaller after a timeout, so everyone stops. */
    __atomic_store_n(&s->total, seq, __ATOMIC_RELEASE);
    while (!all_taken(s)) {
        ops += drain_local(s, pp);
        ops += drain_global_one(s);
    }
    __atomic_fetch_add(&s->ops, ops, __ATOMIC_RELAXED);
}

static void run_stress(int nthieves, uint64_t total)
{
    struct stress *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->nthieves = nthieves;
    s->total = total;
    s->gs = new_gs(POOL);
    s->inflight = calloc(POOL, sizeof(uint32_t));
    s->expect = calloc(POOL, sizeof(uint64_t));
    assert_non_null(s->gs);
    assert_non_null(s->inflight);
    assert_non_null(s->expect);
    for (int i = 0; i <= nthieves; i++)
        assert_non_null(s->ps[i] = new_p(i));
    s->deadline = urg_now() + 40ull * 1000000000ull;
    set_procs(nthieves + 1);
    tu_reset();

    pthread_t th[NTHIEVES];
    struct thief_arg ta[NTHIEVES];
    for (int i = 0; i < nthieves; i++) {
        ta[i] = (struct thief_arg){s, i + 1};
        assert_int_equal(pthread_create(&th[i], NULL, thief_main, &ta[i]), 0);
    }
    owner_run(s);
    for (int i = 0; i < nthieves; i++)
        pthread_join(th[i], NULL);

    assert_false(s->timed_out);
    assert_checks_ok();
    assert_int_equal(s->taken, s->total);
    assert_true(s->sum_taken == s->sum_put);
    for (uint32_t i = 0; i < POOL; i++)
        if (s->inflight[i])
            fail_msg("task %u was never taken (lost)", i + 1);
    for (int i = 0; i <= nthieves; i++)
        assert_true(urg__runqempty(s->ps[i]));
    assert_int_equal(urg__sched.runqsize, 0);
    assert_null(urg__sched.runqhead);
    /* The test exercised what it is about. */
    assert_true(s->steals > 0);
    assert_true(s->global > 0); /* only an overflowing ring feeds it */
    print_message("runq stress: %d thieves, %llu tasks, %llu queue ops, %llu steals, "
                  "%llu via the global queue\n",
                  nthieves, (unsigned long long)s->total, (unsigned long long)s->ops,
                  (unsigned long long)s->steals, (unsigned long long)s->global);

    for (int i = 0; i <= nthieves; i++)
        free(s->ps[i]);
    free(s->gs);
    free(s->inflight);
    free(s->expect);
    free(s);
}

/* Sanitizers slow every atomic access several times over. */
#define STRESS_TASKS (TU_SANITIZED ? 800000ull : 3000000ull)

static void test_runq_concurrent_one_thief(void **state)
{
    (void)state;
    run_stress(1, STRESS_TASKS / 2);
}

static void test_runq_concurrent_thieves_nothing_lost_or_duplicated(void **state)
{
    (void)state;
    run_stress(NTHIEVES, STRESS_TASKS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_runq_empty_p, teardown),
        cmocka_unit_test_teardown(test_runq_fifo_order, teardown),
        cmocka_unit_test_teardown(test_runq_runnext_first_and_inherits, teardown),
        cmocka_unit_test_teardown(test_runq_runnext_displaced_to_tail, teardown),
        cmocka_unit_test_teardown(test_runq_runnext_only_counts, teardown),
        cmocka_unit_test_teardown(test_runq_overflow_moves_half_to_global, teardown),
        cmocka_unit_test_teardown(test_runq_counters_wrap, teardown),
        cmocka_unit_test_teardown(test_runq_steal_half_in_order, teardown),
        cmocka_unit_test_teardown(test_runq_steal_one, teardown),
        cmocka_unit_test_teardown(test_runq_steal_runnext_only_on_request, teardown),
        cmocka_unit_test_teardown(test_runq_drain_takes_all, teardown),
        cmocka_unit_test_teardown(test_runq_global_passes_over_once, teardown),
        cmocka_unit_test_teardown(test_runq_concurrent_one_thief, teardown),
        cmocka_unit_test_teardown(test_runq_concurrent_thieves_nothing_lost_or_duplicated,
                                  teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
