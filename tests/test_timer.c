/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_timer.c — urg_sleep, urg_now and the per-P timer heaps behind them.
 *
 * Each P keeps its own heap; the owner runs due timers when it schedules,
 * other Ms run them when they steal, and the netpoller sleeps until the
 * earliest one. What a program relies on, and what these tests pin: a
 * sleep never ends early; sleepers wake in deadline order when their
 * deadlines are well apart; urg_sleep(0) lets another task run; a timer on
 * a P that is busy running a task still fires about on time; timers
 * survive their P going away (urg_set_maxprocs); outside a task urg_sleep
 * is a plain nanosleep; ten thousand sleeping tasks all wake; and urg_now
 * never goes backwards, even across threads.
 *
 * Upper bounds on lateness are only checked where lateness is the
 * behaviour under test, and then with margins of tens of times the
 * expected delay: CI runs on a loaded 2-core VM, often under ASan.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#define US 1000ull
#define MS 1000000ull

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- at least d --------------------------------------------------------- */

struct at_least {
    urg_wg wg;
};

static void at_least_task(void *arg)
{
    struct at_least *a = arg;
    static const uint64_t ds[] = {1, 1 * US, 50 * US, 1 * MS, 5 * MS, 20 * MS};
    for (size_t i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
        uint64_t t0 = urg_now();
        urg_sleep(ds[i]);
        uint64_t el = urg_now() - t0;
        CHECK(el >= ds[i]);
        CHECK(el < ds[i] + 5000 * MS); /* it does end */
    }
    urg_wg_done(&a->wg);
}

static void at_least_main(void *arg)
{
    (void)arg;
    struct at_least a = {0};
    urg_wg_add(&a.wg, 8);
    for (int i = 0; i < 8; i++)
        CHECK(urg_go(at_least_task, &a) == 0);
    urg_wg_wait(&a.wg);
}

static void test_timer_sleep_at_least_duration(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(at_least_main, NULL, tu_procs_list[i]);
}

/* ---- deadline order ----------------------------------------------------- */

#define ORD_N       40
#define ORD_HEAD_NS ((TU_SANITIZED ? 1000 : 200) * MS) /* TSan: a new stack's fiber costs ms */
#define ORD_STEP_NS (1 * MS)

/*
 * The timer heap fires in deadline order. Checked on the runtime's own
 * state, not on wake-up times (a loaded box delays a thread for tens of
 * milliseconds, and timers that come due together fire as one batch whose
 * tasks then run in runnext order): when a sleeper wakes, no sleeper with
 * an earlier deadline may still be parked in urg_sleep. At one proc there
 * is one heap and one pass fires every due timer before any woken task
 * runs, so this holds however late the pass comes. At more procs each P
 * has its own heap and a P whose thread the OS holds back fires late (as
 * in Go), so there the test checks only that every sleeper wakes, no
 * earlier than its deadline. A task that first ran after its deadline
 * armed no timer and is left out; the head start makes that rare.
 */
struct order {
    uint64_t deadline[ORD_N]; /* increasing with the index */
    uint64_t id[ORD_N];       /* atomic: each task's id */
    int armed[ORD_N];         /* atomic */
    int next_id;
    int perm[ORD_N];
    int strict;
    int inversions, narmed;
    uint64_t median_late;
    urg_wg wg;
};

static struct order order_state;

static void order_task(void *arg)
{
    struct order *o = arg;
    int me = o->perm[__atomic_fetch_add(&o->next_id, 1, __ATOMIC_RELAXED)];
    __atomic_store_n(&o->id[me], urg_task_id(), __ATOMIC_RELEASE);
    uint64_t now = urg_now();
    uint64_t d = o->deadline[me] > now ? o->deadline[me] - now : 0;
    __atomic_store_n(&o->armed[me], d > 0, __ATOMIC_RELEASE);
    urg_sleep(d);
    uint64_t woke = urg_now();
    CHECK(woke >= o->deadline[me]);
    if (o->strict && d > 0)
        for (int j = 0; j < me; j++)
            if (__atomic_load_n(&o->armed[j], __ATOMIC_ACQUIRE) &&
                tu_parked(__atomic_load_n(&o->id[j], __ATOMIC_ACQUIRE), WAIT_SLEEP))
                __atomic_fetch_add(&o->inversions, 1, __ATOMIC_RELAXED);
    o->deadline[me] = woke - o->deadline[me]; /* now the lateness */
    urg_wg_done(&o->wg);
}

static void order_main(void *arg)
{
    struct order *o = &order_state;
    memset(o, 0, sizeof(*o));
    o->strict = *(int *)arg;
    /* Spawn in a scrambled order so heap order, not spawn order, counts. */
    uint64_t rs = 88172645463325252ull;
    for (int i = 0; i < ORD_N; i++)
        o->perm[i] = i;
    for (int i = ORD_N - 1; i > 0; i--) {
        int j = (int)(xorshift(&rs) % (uint64_t)(i + 1));
        int t = o->perm[i];
        o->perm[i] = o->perm[j];
        o->perm[j] = t;
    }
    uint64_t start = urg_now();
    for (int i = 0; i < ORD_N; i++)
        o->deadline[i] = start + ORD_HEAD_NS + (uint64_t)i * ORD_STEP_NS;
    urg_wg_add(&o->wg, ORD_N);
    for (int i = 0; i < ORD_N; i++)
        CHECK(urg_go(order_task, o) == 0);
    urg_wg_wait(&o->wg);
    for (int i = 0; i < ORD_N; i++)
        o->narmed += o->armed[i];
    uint64_t *late = o->deadline;
    for (int i = 1; i < ORD_N; i++)
        for (int j = i; j > 0 && late[j - 1] > late[j]; j--) {
            uint64_t t = late[j];
            late[j] = late[j - 1];
            late[j - 1] = t;
        }
    o->median_late = late[ORD_N / 2];
}

static void test_timer_sleepers_wake_in_deadline_order(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++) {
        int strict = tu_procs_list[i] == 1;
        RUN_AT(order_main, &strict, tu_procs_list[i]);
        print_message("maxprocs %d: %d of %d sleepers armed in time, median lateness %llu us "
                      "(information only)\n",
                      tu_procs_list[i], order_state.narmed, ORD_N,
                      (unsigned long long)(order_state.median_late / US));
        if (strict && order_state.inversions)
            fail_msg("at 1 proc: %d times a sleeper woke while one with an earlier deadline "
                     "still slept",
                     order_state.inversions);
        if (strict && order_state.narmed < 2)
            fail_msg("at 1 proc: only %d sleepers armed a timer before their deadline (%llu ms "
                     "head start): the order check could not run",
                     order_state.narmed, (unsigned long long)(ORD_HEAD_NS / MS));
    }
}

/* ---- urg_sleep(0) ------------------------------------------------------- */

struct pingpong {
    int turn[2];
    int max_skew;
    int stop;
    urg_wg wg;
};

static void flag_task(void *arg) { __atomic_store_n((int *)arg, 1, __ATOMIC_SEQ_CST); }

/* Two tasks on one proc that only ever switch through urg_sleep(0) must
 * alternate: each sleep(0) lets the other run. */
static void pp_task(void *arg)
{
    struct pingpong *p = arg;
    static int ids;
    int me = __atomic_fetch_add(&ids, 1, __ATOMIC_RELAXED) % 2;
    for (int i = 0; i < 1000; i++) {
        p->turn[me]++;
        int skew = p->turn[me] - p->turn[1 - me];
        if (skew < 0)
            skew = -skew;
        if (skew > p->max_skew)
            p->max_skew = skew;
        urg_sleep(0);
    }
    urg_wg_done(&p->wg);
}

static void sleep0_main(void *arg)
{
    (void)arg;
    int ran = 0;
    CHECK(urg_go(flag_task, &ran) == 0);
    uint64_t t0 = urg_now();
    urg_sleep(0);
    CHECK(__atomic_load_n(&ran, __ATOMIC_SEQ_CST) == 1);
    CHECK(urg_now() - t0 < 1000 * MS); /* a yield, not a timed wait */

    static struct pingpong p;
    memset(&p, 0, sizeof(p));
    urg_wg_add(&p.wg, 2);
    CHECK(urg_go(pp_task, &p) == 0);
    CHECK(urg_go(pp_task, &p) == 0);
    urg_wg_wait(&p.wg);
    /* The first to start is one ahead; a sleep(0) that did not switch
     * would let one run many turns ahead. Preemption (async build) can
     * add a turn. */
    CHECK(p.max_skew <= 3);
}

static void test_timer_sleep_zero_yields(void **state)
{
    (void)state;
    RUN_AT(sleep0_main, NULL, 1);
}

/* ---- busy procs --------------------------------------------------------- */

struct busy {
    uint64_t deadline;
    uint64_t woke;
    urg_wg wg;
};

static void busy_sleeper(void *arg)
{
    struct busy *b = arg;
    uint64_t now = urg_now();
    urg_sleep(b->deadline > now ? b->deadline - now : 0);
    __atomic_store_n(&b->woke, urg_now(), __ATOMIC_SEQ_CST); /* main polls it */
    urg_wg_done(&b->wg);
}

/* The sleeper arms its timer on this task's P; then this task keeps that
 * P busy. The timer must still fire about on time: run by another P, or
 * when this task is preempted (async) or passes a checkpoint (cooperative
 * build, with its quantum). */
static struct busy busy_state;

static void busy_main(void *arg)
{
    (void)arg;
    struct busy b = {0};
    b.deadline = urg_now() + 10 * MS;
    urg_wg_add(&b.wg, 1);
    CHECK(urg_go(busy_sleeper, &b) == 0);
    urg_yield(); /* the sleeper runs here next and parks */
    /* Normally over after about 10 ms; a timer that waits for this task
     * to stop takes all of the limit. */
    uint64_t end = urg_now() + 3000 * MS;
    while (urg_now() < end && !__atomic_load_n(&b.woke, __ATOMIC_SEQ_CST))
        urg_checkpoint();
    urg_wg_wait(&b.wg);
    CHECK(b.woke >= b.deadline);
    busy_state = b;
}

static void test_timer_fires_while_proc_busy(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++) {
        struct tu_stall_meter meter;
        tu_stall_meter_start(&meter);
        RUN_AT(busy_main, NULL, tu_procs_list[i]);
        uint64_t stall = tu_stall_meter_stop(&meter);
        uint64_t late = busy_state.woke - busy_state.deadline;
        if (late >= 500 * MS + stall)
            fail_msg("at %d procs: the timer fired %llu ms late (VM stalls up to %llu ms)",
                     tu_procs_list[i], (unsigned long long)(late / MS),
                     (unsigned long long)(stall / MS));
    }
}

/* ---- spread over procs -------------------------------------------------- */

#define SPREAD_N 400

struct spread {
    uint64_t late_max;
    int bad;
    uint64_t rs;
    urg_wg wg;
};

/* Spawned from many tasks, with some CPU work in between, so the
 * sleepers end up on every P's heap (work stealing spreads them). */
static void spread_sleeper(void *arg)
{
    struct spread *s = arg;
    uint64_t rs = urg_now() ^ (uintptr_t)&rs;
    for (volatile int k = 0; k < (int)(xorshift(&rs) % 20000); k++) {
    }
    uint64_t d = xorshift(&rs) % (15 * MS);
    uint64_t t0 = urg_now();
    urg_sleep(d);
    uint64_t el = urg_now() - t0;
    if (el < d) {
        __atomic_fetch_add(&s->bad, 1, __ATOMIC_RELAXED);
        el = d;
    }
    uint64_t late = el - d, m = __atomic_load_n(&s->late_max, __ATOMIC_RELAXED);
    while (late > m && !__atomic_compare_exchange_n(&s->late_max, &m, late, false, __ATOMIC_RELAXED,
                                                    __ATOMIC_RELAXED)) {
    }
    urg_wg_done(&s->wg);
}

static void spawner(void *arg)
{
    struct spread *s = arg;
    for (int i = 0; i < SPREAD_N / 4; i++) {
        CHECK(urg_go(spread_sleeper, s) == 0);
        if (i % 8 == 0)
            urg_yield();
    }
    urg_wg_done(&s->wg);
}

static void spread_main(void *arg)
{
    (void)arg;
    struct spread s = {0};
    urg_wg_add(&s.wg, SPREAD_N + 4);
    for (int i = 0; i < 4; i++)
        CHECK(urg_go(spawner, &s) == 0);
    urg_wg_wait(&s.wg);
    CHECK(s.bad == 0);
    CHECK(s.late_max < 5000 * MS);
}

static void test_timer_sleepers_spread_over_procs(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(spread_main, NULL, tu_procs_list[i]);
}

/* Shrinking the procs moves the timers of the Ps that go away. */
static void resize_main(void *arg)
{
    (void)arg;
    struct spread s = {0};
    urg_wg_add(&s.wg, SPREAD_N + 4);
    for (int i = 0; i < 4; i++)
        CHECK(urg_go(spawner, &s) == 0);
    urg_sleep(2 * MS);
    CHECK(urg_set_maxprocs(1) == 0);
    urg_sleep(3 * MS);
    CHECK(urg_set_maxprocs(3) == 0);
    urg_wg_wait(&s.wg);
    CHECK(s.bad == 0);
}

static void test_timer_survives_maxprocs_change(void **state)
{
    (void)state;
    RUN_AT(resize_main, NULL, 4);
}

/* ---- outside a task ----------------------------------------------------- */

struct plain {
    int ok;
    urg_wg wg;
};

static void *plain_sleeper(void *arg)
{
    struct plain *p = arg;
    uint64_t t0 = urg_now();
    urg_sleep(20 * MS);
    uint64_t el = urg_now() - t0;
    urg_sleep(0);
    __atomic_store_n(&p->ok, el >= 20 * MS ? 1 : -1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void plain_main(void *arg)
{
    (void)arg;
    /* A plain thread sleeping while the runtime runs: it must not touch
     * the runtime's timers (it has no P), and tasks go on meanwhile. */
    struct plain p = {0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, plain_sleeper, &p) == 0);
    int n = 0;
    while (!__atomic_load_n(&p.ok, __ATOMIC_SEQ_CST) && n < 5000) {
        urg_sleep(MS);
        n++;
    }
    CHECK(__atomic_load_n(&p.ok, __ATOMIC_SEQ_CST) == 1);
    urg_syscall_enter();
    pthread_join(th, NULL);
    urg_syscall_exit();
}

static void test_timer_sleep_outside_task(void **state)
{
    (void)state;
    /* No runtime at all. */
    uint64_t t0 = urg_now();
    urg_sleep(15 * MS);
    assert_true(urg_now() - t0 >= 15 * MS);
    urg_sleep(0);
    assert_int_equal(urg_task_id(), 0);
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(plain_main, NULL, tu_procs_list[i]);
}

/* ---- ten thousand ------------------------------------------------------- */

#define MANY_N 10000

struct many {
    int woke;
    int early;
    urg_wg wg;
};

static void many_sleeper(void *arg)
{
    struct many *m = arg;
    uint64_t rs = urg_now() ^ ((uint64_t)(uintptr_t)&rs << 7);
    uint64_t d = xorshift(&rs) % (20 * MS);
    uint64_t t0 = urg_now();
    urg_sleep(d);
    if (urg_now() - t0 < d)
        __atomic_fetch_add(&m->early, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->woke, 1, __ATOMIC_RELAXED);
    urg_wg_done(&m->wg);
}

static void many_main(void *arg)
{
    (void)arg;
    struct many m = {0};
    urg_wg_add(&m.wg, MANY_N);
    for (int i = 0; i < MANY_N; i++)
        CHECK(urg_go(many_sleeper, &m) == 0);
    urg_wg_wait(&m.wg);
    CHECK(m.woke == MANY_N);
    CHECK(m.early == 0);
}

static void test_timer_ten_thousand_sleepers_all_wake(void **state)
{
    (void)state;
    /* 64 KiB stacks: 10k tasks must fit a small CI box under ASan too. */
    for (int i = 0; i < NPROCS_LIST; i++) {
        tu_reset();
        urg_config cfg = {.maxprocs = tu_procs_list[i], .stack_size = 64 * 1024};
        assert_int_equal(urg_run(many_main, NULL, &cfg), 0);
        assert_checks_ok();
    }
}

/* ---- abandoned sleepers ------------------------------------------------- */

static void forever_sleeper(void *arg)
{
    (void)arg;
    urg_sleep(UINT64_MAX); /* the deadline must saturate, not wrap */
    CHECK(0);
}

static void abandon_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        CHECK(urg_go(forever_sleeper, NULL) == 0);
    urg_sleep(5 * MS);
    /* Returning abandons them, their timers too. */
}

static void after_abandon_main(void *arg)
{
    (void)arg;
    uint64_t t0 = urg_now();
    urg_sleep(5 * MS);
    CHECK(urg_now() - t0 >= 5 * MS);
}

static void test_timer_abandoned_sleepers_do_not_leak_into_next_run(void **state)
{
    (void)state;
    RUN_AT(abandon_main, NULL, 2);
    RUN_AT(after_abandon_main, NULL, 2);
    RUN_AT(after_abandon_main, NULL, 1);
}

/* ---- urg_now ------------------------------------------------------------ */

struct mono {
    uint64_t latest;
    urg_wg wg;
};

/* A value another thread published before this read started cannot be
 * later than this read: CLOCK_MONOTONIC is one clock for the system. */
static void mono_task(void *arg)
{
    struct mono *m = arg;
    uint64_t last = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t seen = __atomic_load_n(&m->latest, __ATOMIC_ACQUIRE);
        uint64_t now = urg_now();
        CHECK(now >= last);
        CHECK(now >= seen);
        if (now < last || now < seen)
            break;
        last = now;
        uint64_t cur = seen;
        while (now > cur && !__atomic_compare_exchange_n(&m->latest, &cur, now, false,
                                                         __ATOMIC_RELEASE, __ATOMIC_ACQUIRE)) {
        }
        if (i % 1000 == 0)
            urg_yield();
    }
    urg_wg_done(&m->wg);
}

static void mono_main(void *arg)
{
    (void)arg;
    struct mono m = {0};
    urg_wg_add(&m.wg, 4);
    for (int i = 0; i < 4; i++)
        CHECK(urg_go(mono_task, &m) == 0);
    urg_wg_wait(&m.wg);
}

static void test_timer_now_is_monotonic(void **state)
{
    (void)state;
    /* The same clock as CLOCK_MONOTONIC, in nanoseconds. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mono = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    uint64_t now = urg_now();
    assert_true(now >= mono);
    assert_true(now - mono < 1000 * MS);
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(mono_main, NULL, tu_procs_list[i]);
}

/* ---- group -------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_sleep_at_least_duration),
        cmocka_unit_test(test_timer_sleepers_wake_in_deadline_order),
        cmocka_unit_test(test_timer_sleep_zero_yields),
        cmocka_unit_test(test_timer_fires_while_proc_busy),
        cmocka_unit_test(test_timer_sleepers_spread_over_procs),
        cmocka_unit_test(test_timer_survives_maxprocs_change),
        cmocka_unit_test(test_timer_sleep_outside_task),
        cmocka_unit_test(test_timer_ten_thousand_sleepers_all_wake),
        cmocka_unit_test(test_timer_abandoned_sleepers_do_not_leak_into_next_run),
        cmocka_unit_test(test_timer_now_is_monotonic),
    };
    return cmocka_run_group_tests(tests, tu_fd_group_setup, tu_fd_group_teardown);
}
