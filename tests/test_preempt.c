/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/test_preempt.c — asynchronous preemption, and its absence in the
 * cooperative build.
 *
 * Call-free loops on one proc: in the async build every one of them makes
 * progress; in the cooperative build the first to get the proc keeps it,
 * and this test asserts that starvation too — it is what proves that the
 * comparison (stress/compare) measures something real. A monitor pthread
 * ends the loops, since in the cooperative build nothing inside the
 * runtime can.
 *
 * Also: urg_preempt_disable regions are never interrupted and yield
 * promptly once enabled again; the counters obey their invariants;
 * URG_DEBUG=asyncpreemptoff=1 turns the async build cooperative; the
 * handler's memory of earlier safe walks never lets a loop be preempted
 * under a caller that lies in an unsafe range; the safe-point check counts
 * both sections of urgent's own code (urg_text and the preemption path's
 * urg_text_hot) as the runtime's, never as the program's.
 */
#include "testutil.h"

#include "signals/signals.h"
#include "unwind/unwind.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>

#define NHOGS 4

struct hog {
    uint64_t n;
    char pad[56];
};

static struct hog hogs[NHOGS];
static volatile int stop;
static urg_wg wg;

static void hog(void *arg)
{
    struct hog *h = arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
        __atomic_store_n(&h->n, h->n + 1, __ATOMIC_RELAXED); /* read by the monitor */
    urg_wg_done(&wg);
}

struct monitor {
    pthread_t t;
    long ms;
    uint64_t snap[NHOGS];
};

static void *monitor_main(void *arg)
{
    struct monitor *m = arg;
    struct timespec ts = {m->ms / 1000, (m->ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    for (int i = 0; i < NHOGS; i++)
        m->snap[i] = __atomic_load_n(&hogs[i].n, __ATOMIC_RELAXED);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void monitor_start(struct monitor *m, long ms)
{
    m->ms = ms;
    pthread_create(&m->t, NULL, monitor_main, m);
}

static urg_stats end_stats;

static void hogs_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, NHOGS);
    for (int i = 0; i < NHOGS; i++)
        CHECK(urg_go(hog, &hogs[i]) == 0);
    urg_wg_wait(&wg);
    urg_stats_get(&end_stats);
}

static int run_hogs(int procs, uint64_t quantum_ns, struct monitor *m)
{
    memset(hogs, 0, sizeof(hogs));
    stop = 0;
    tu_reset();
    monitor_start(m, 600);
    urg_config cfg = {.maxprocs = procs, .quantum_ns = quantum_ns};
    int r = urg_run(hogs_main, NULL, &cfg);
    pthread_join(m->t, NULL);
    return r;
}

static int progressed(const struct monitor *m)
{
    uint64_t total = 0;
    for (int i = 0; i < NHOGS; i++)
        total += m->snap[i];
    int n = 0;
    for (int i = 0; i < NHOGS; i++)
        n += m->snap[i] * NHOGS * 10 >= total; /* at least 10% of a fair share */
    return n;
}

static void test_preempt_callfree_loops_one_proc(void **state)
{
    (void)state;
    struct monitor m;
    assert_int_equal(run_hogs(1, 2000000, &m), 0);
    assert_checks_ok();
    int n = progressed(&m);
    if (tu_is_async() && !TU_TSAN) {
        assert_int_equal(n, NHOGS);
        assert_true(end_stats.preempt_async > 0);
    } else if (!tu_is_async()) {
        /* The cooperative build: one loop keeps the only proc. */
        assert_int_equal(n, 1);
        assert_int_equal(end_stats.preempt_async, 0);
        assert_int_equal(end_stats.preempt_signals, 0);
    }
}

static void test_preempt_callfree_loops_two_procs(void **state)
{
    (void)state;
    struct monitor m;
    assert_int_equal(run_hogs(2, 2000000, &m), 0);
    assert_checks_ok();
    int n = progressed(&m);
    if (tu_is_async() && !TU_TSAN)
        assert_int_equal(n, NHOGS);
    else if (!tu_is_async())
        assert_int_equal(n, 2); /* one loop per proc, the other two starve */
}

static void test_preempt_asyncpreemptoff_is_cooperative(void **state)
{
    (void)state;
    setenv("URG_DEBUG", "asyncpreemptoff=1", 1);
    struct monitor m;
    int r = run_hogs(1, 2000000, &m);
    unsetenv("URG_DEBUG");
    assert_int_equal(r, 0);
    assert_int_equal(progressed(&m), 1);
    assert_int_equal(end_stats.preempt_async, 0);
    assert_true(end_stats.preempt_requests > 0); /* sysmon still asks */
}

/* ---- urg_preempt_disable ---- */

static volatile int region_active;
static volatile uint64_t ran_during_region;
static volatile uint64_t region_end_ns, other_after_ns;

/* The observer checks in at every iteration, so it yields when asked in
 * both builds; the region's task must not, while preemption is disabled. */
static void observer(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        if (region_active)
            ran_during_region++;
        if (region_end_ns && !other_after_ns)
            other_after_ns = urg_now();
        urg_checkpoint();
    }
    urg_wg_done(&wg);
}

static void region_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, 1);
    CHECK(urg_go(observer, NULL) == 0);
    urg_yield(); /* let the observer start */
    urg_preempt_disable();
    urg_preempt_disable(); /* nested */
    region_active = 1;
    uint64_t t0 = urg_now();
    while (urg_now() - t0 < 30000000) /* 30 ms: three quanta of 10 ms */
        urg_checkpoint();             /* checkpoints do not yield inside */
    urg_preempt_enable();
    region_active = 0; /* still disabled (depth 1) */
    uint64_t requested_before = 0;
    urg_stats s;
    urg_stats_get(&s);
    requested_before = s.preempt_requests;
    CHECK(requested_before > 0); /* sysmon asked, and we refused */
    region_end_ns = urg_now();
    urg_preempt_enable(); /* depth 0: the pending request is honoured here */
    uint64_t back = urg_now();
    CHECK(other_after_ns != 0 && other_after_ns >= region_end_ns && other_after_ns <= back);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    urg_wg_wait(&wg);
}

static void test_preempt_disable_region_not_interrupted(void **state)
{
    (void)state;
    stop = 0;
    region_active = 0;
    ran_during_region = 0;
    region_end_ns = other_after_ns = 0;
    tu_reset();
    tu_run(region_main, NULL, 1);
    assert_checks_ok();
    assert_int_equal(ran_during_region, 0);
}

/* ---- the walk memo (signals/preempt.c) ----
 * One loop, at the same instructions, under two callers: first one in
 * ordinary code, where it is preempted again and again (and the handler
 * learns to skip the walk there), then one inside a range registered with
 * urg_preempt_unsafe_range. Only the return address on the stack tells
 * the two apart; the second must never be preempted, so the other task on
 * the proc must not move while it runs. */

static volatile int memo_phase_done[2];
static volatile uint64_t memo_other_count;
static uint64_t memo_other_before, memo_other_after, memo_other_phase1;
static uint64_t memo_detaches[2]; /* sched.detaches around phase 2 */
static pid_t memo_tid[2];         /* the thread before and after each loop */

__attribute__((noinline)) static void memo_spin(volatile int *done)
{
    while (!*done)
        __asm__ volatile("" ::: "memory");
}

/* The two callers are the same code; noinline and the work after the
 * call keep each a real frame. */
#define MEMO_CALLER(name, attr)                                                                    \
    __attribute__((noinline, attr)) static void name(volatile int *done)                           \
    {                                                                                              \
        memo_other_before = memo_other_count;                                                      \
        memo_tid[0] = (pid_t)syscall(SYS_gettid);                                                  \
        memo_spin(done);                                                                           \
        memo_tid[1] = (pid_t)syscall(SYS_gettid);                                                  \
        memo_other_after = memo_other_count;                                                       \
    }
MEMO_CALLER(memo_via_safe, used)
MEMO_CALLER(memo_via_unsafe, section("urg_test_memo_unsafe"))
extern const char __start_urg_test_memo_unsafe[], __stop_urg_test_memo_unsafe[];

static void memo_other(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
        memo_other_count = memo_other_count + 1;
    urg_wg_done(&wg);
}

static void memo_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, 1);
    CHECK(urg_go(memo_other, NULL) == 0);
    memo_via_safe(&memo_phase_done[0]);
    memo_other_phase1 = memo_other_count;
    memo_detaches[0] = __atomic_load_n(&sched.detaches, __ATOMIC_RELAXED);
    memo_via_unsafe(&memo_phase_done[1]);
    memo_detaches[1] = __atomic_load_n(&sched.detaches, __ATOMIC_RELAXED);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    urg_wg_wait(&wg);
    urg_stats_get(&end_stats);
}

/* Ends each phase on the runtime's own evidence, not after a time (150 ms
 * a phase was too short for phase 2 once under a parallel ctest: no
 * signal had landed yet): phase 1 once a preemption reused a walk's
 * verdict and the other task ran, phase 2 once two more signals landed in
 * the unsafe loop and were refused. The deadline only keeps a broken
 * runtime from hanging the test; the assertions then fail. */
static void *memo_monitor(void *arg)
{
    (void)arg;
    uint64_t deadline = urg_now() + 30ull * 1000000000ull;
    urg_stats s;
    do {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
        urg_stats_get(&s);
    } while ((s.preempt_walks_memo == 0 || memo_other_count == 0) && urg_now() < deadline);
    uint64_t refused = s.preempt_deferred;
    memo_phase_done[0] = 1;
    do {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
        urg_stats_get(&s);
    } while (s.preempt_deferred < refused + 2 && urg_now() < deadline);
    memo_phase_done[1] = 1;
    return NULL;
}

static void test_preempt_memo_respects_call_chain(void **state)
{
    (void)state;
    if (!tu_is_async() || TU_TSAN)
        skip();
    static int registered;
    if (!registered++)
        assert_int_equal(
            urg_preempt_unsafe_range(__start_urg_test_memo_unsafe, __stop_urg_test_memo_unsafe), 0);
    stop = 0;
    memo_phase_done[0] = memo_phase_done[1] = 0;
    memo_other_count = 0;
    tu_reset();
    pthread_t t;
    pthread_create(&t, NULL, memo_monitor, NULL);
    urg_config cfg = {.maxprocs = 1, .quantum_ns = 1000000};
    assert_int_equal(urg_run(memo_main, NULL, &cfg), 0);
    pthread_join(t, NULL);
    assert_checks_ok();
    /* Phase 1 was preempted, from memory at least once. */
    assert_true(memo_other_phase1 > 0);
    assert_true(end_stats.preempt_walks_memo > 0);
    /* Phase 2 never was: the signals landed and were refused, and the
     * loop stayed on its thread. After a few refusals the runtime may let
     * the proc go on without it (runtime/detach.c): only then may the
     * other task run meanwhile, on another thread. */
    assert_true(end_stats.preempt_deferred > 0);
    assert_int_equal(memo_tid[0], memo_tid[1]);
    if (memo_detaches[1] == memo_detaches[0])
        assert_int_equal(memo_other_after, memo_other_before);
}

/* ---- urgent's own code ---- */

void urg__async_preempt(void);
void urg__ctx_switch(void **save_sp, void *load_sp);
void urg__task_start(void);

static int text_class[6];

static void classify_main(void *arg)
{
    (void)arg;
    struct urg__modview v;
    urg__modview_begin(&v);
    const uintptr_t pcs[] = {
        (uintptr_t)urg_go,             /* urg_text (or liburgent.so) */
        (uintptr_t)urg__task_start,    /* urg_text, assembly */
        (uintptr_t)urg__gosched,       /* urg_text_hot */
        (uintptr_t)urg__async_preempt, /* urg_text_hot, assembly */
        (uintptr_t)urg__ctx_switch,    /* urg_text_hot, assembly */
        (uintptr_t)hog,                /* the program's */
    };
    for (int i = 0; i < 6; i++)
        text_class[i] = urg__pc_classify(&v, pcs[i] + 1);
    CHECK(urg__modview_valid(&v));
}

static void test_preempt_runtime_text_is_runtime(void **state)
{
    (void)state;
    tu_reset();
    assert_int_equal(urg_run(classify_main, NULL, NULL), 0);
    assert_checks_ok();
    for (int i = 0; i < 5; i++)
        assert_int_equal(text_class[i], PC_RUNTIME);
    assert_int_equal(text_class[5], PC_USER);
}

/* ---- counters ---- */

static void test_preempt_counters_add_up(void **state)
{
    (void)state;
    struct monitor m;
    assert_int_equal(run_hogs(2, 1000000, &m), 0);
    urg_stats *s = &end_stats;
    assert_true(s->preempt_requests >= s->preempt_signals);
    assert_true(s->preempt_signals >= s->preempt_async + s->preempt_deferred);
    assert_true(s->preempt_requests >= s->preempt_async + s->preempt_cooperative);
    if (tu_is_async() && !TU_TSAN)
        assert_true(s->preempt_async > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preempt_callfree_loops_one_proc),
        cmocka_unit_test(test_preempt_callfree_loops_two_procs),
        cmocka_unit_test(test_preempt_asyncpreemptoff_is_cooperative),
        cmocka_unit_test(test_preempt_disable_region_not_interrupted),
        cmocka_unit_test(test_preempt_counters_add_up),
        cmocka_unit_test(test_preempt_memo_respects_call_chain),
        cmocka_unit_test(test_preempt_runtime_text_is_runtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
