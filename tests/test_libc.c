/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/test_libc.c — tasks that live in the C library keep working while
 * hogs beside them are preempted every millisecond.
 *
 * malloc, free, snprintf and qsort take locks or keep state that must not
 * be interrupted by a switch to another task on the same thread (which
 * might call them too): the safe-point check refuses to preempt inside
 * libc, or with a libc frame anywhere above (qsort calling our
 * comparator). So those signals are deferred, and the tasks yield at
 * their next runtime call. Here four such tasks run beside two call-free
 * hogs on two procs with a 1 ms quantum for three seconds: nothing may
 * deadlock, every result is checked (no corruption), and each task gets
 * at least a quarter of the mean share of rounds. A monitor thread also
 * counts stretches of WINDOW_ROUNDS rounds (about 0.1 s) in which one task
 * made no progress while the others did; that is printed, not asserted:
 * on a busy machine the OS alone can hold one of our threads, and the
 * task on it, off its CPU for that long.
 */
#include "testutil.h"

#include <pthread.h>
#include <time.h>

#define NLIBC         4
#define WINDOW_ROUNDS 4000 /* a fair share is 1000 each */
#define RUN_MS        3000

static volatile int stop;
static urg_wg wg;
static uint64_t progress[NLIBC]; /* TU_BUMP / TU_LOAD */
static int stalls;

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void libc_task(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        /* malloc/free with a pattern that must come back intact */
        size_t n = 64 + (seed >> 40) % 4000;
        unsigned char *p = malloc(n);
        CHECK(p != NULL);
        if (!p)
            break;
        memset(p, id + 1, n);
        char buf[128];
        int len = snprintf(buf, sizeof(buf), "task %d round %llu size %zu", id,
                           (unsigned long long)TU_LOAD(&progress[id]), n);
        CHECK(len > 0 && (size_t)len < sizeof(buf));
        unsigned got_id;
        unsigned long long got_round;
        size_t got_n;
        CHECK(sscanf(buf, "task %u round %llu size %zu", &got_id, &got_round, &got_n) == 3);
        CHECK(got_id == (unsigned)id && got_n == n);
        int v[256];
        for (int i = 0; i < 256; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            v[i] = (int)(seed >> 33);
        }
        qsort(v, 256, sizeof(int), cmp_int);
        for (int i = 1; i < 256; i++)
            CHECK(v[i - 1] <= v[i]);
        for (size_t i = 0; i < n; i++)
            if (p[i] != id + 1) {
                CHECK(!"malloc'd block was overwritten");
                break;
            }
        free(p);
        TU_BUMP(&progress[id]);
        urg_checkpoint(); /* a runtime call: where deferred requests are honoured */
    }
    urg_wg_done(&wg);
}

static void hog(void *arg)
{
    (void)arg;
    volatile uint64_t n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
        n++;
    urg_wg_done(&wg);
}

static void *watch(void *arg)
{
    (void)arg;
    uint64_t start[NLIBC] = {0}, start_total = 0;
    uint64_t end = urg_now() + (uint64_t)RUN_MS * 1000000;
    while (urg_now() < end) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
        uint64_t now[NLIBC], total = 0;
        for (int i = 0; i < NLIBC; i++)
            total += now[i] = TU_LOAD(&progress[i]);
        if (total - start_total < WINDOW_ROUNDS)
            continue;
        for (int i = 0; i < NLIBC; i++) {
            if (now[i] == start[i])
                stalls++;
            start[i] = now[i];
        }
        start_total = total;
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

static urg_stats st;

static void libc_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, NLIBC + 2);
    for (int i = 0; i < NLIBC; i++)
        CHECK(urg_go(libc_task, (void *)(intptr_t)i) == 0);
    CHECK(urg_go(hog, NULL) == 0);
    CHECK(urg_go(hog, NULL) == 0);
    urg_wg_wait(&wg);
    urg_stats_get(&st);
}

static void test_libc_tasks_progress_beside_hogs(void **state)
{
    (void)state;
    tu_reset();
    stop = 0;
    stalls = 0;
    pthread_t t;
    pthread_create(&t, NULL, watch, NULL);
    urg_config cfg = {.maxprocs = 2, .quantum_ns = 1000000};
    int r = urg_run(libc_main, NULL, &cfg);
    pthread_join(t, NULL);
    assert_int_equal(r, 0);
    assert_checks_ok();
    print_message(
        "progress %llu %llu %llu %llu; %d windows where one task stalled (information); async %llu, deferred %llu, cooperative %llu\n",
        (unsigned long long)TU_LOAD(&progress[0]), (unsigned long long)TU_LOAD(&progress[1]),
        (unsigned long long)TU_LOAD(&progress[2]), (unsigned long long)TU_LOAD(&progress[3]),
        stalls, (unsigned long long)st.preempt_async, (unsigned long long)st.preempt_deferred,
        (unsigned long long)st.preempt_cooperative);
    /* With hogs on both procs, libc tasks only run because hogs are
     * preempted: in the async build (TSan delays signals, so there the
     * build is cooperative too, where call-free hogs keep their procs). */
    if (tu_is_async() && !TU_TSAN) {
        assert_true(st.preempt_async > 0);
        uint64_t total = 0;
        for (int i = 0; i < NLIBC; i++)
            total += TU_LOAD(&progress[i]);
        for (int i = 0; i < NLIBC; i++)
            if (TU_LOAD(&progress[i]) * NLIBC * 4 < total)
                fail_msg("task %d did %llu rounds of %llu: less than a quarter of its share", i,
                         (unsigned long long)TU_LOAD(&progress[i]), (unsigned long long)total);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libc_tasks_progress_beside_hogs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
