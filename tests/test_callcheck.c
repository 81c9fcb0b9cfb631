/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/test_callcheck.c — the call-checked cooperative mode
 * (urg_enable_call_checks: this file is compiled with
 * -finstrument-functions).
 *
 * Every function entry in this file is a preemption checkpoint, as in Go
 * before 1.14. So, on one proc: loops that call a function each iteration
 * share the proc in both builds; loops that call nothing share it only in
 * the async build, and starve in the cooperative build — exactly pre-1.14
 * Go's behaviour.
 */
#include "testutil.h"

#include <pthread.h>
#include <time.h>

#define NHOGS 4

static struct {
    uint64_t n;
    char pad[56];
} hogs[NHOGS];
static int stop;
static urg_wg wg;

__attribute__((noinline)) static void step(uint64_t *n)
{
    TU_BUMP(n);
    __asm__ volatile("" ::: "memory");
}

static void hog_with_calls(void *arg)
{
    uint64_t *n = arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
        step(n);
    urg_wg_done(&wg);
}

static void hog_without_calls(void *arg)
{
    uint64_t *n = arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
        TU_BUMP(n);
    urg_wg_done(&wg);
}

static urg_fn which;
static uint64_t snap[NHOGS];

static void *monitor(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 500000000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < NHOGS; i++)
        snap[i] = TU_LOAD(&hogs[i].n);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void hogs_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, NHOGS);
    for (int i = 0; i < NHOGS; i++)
        CHECK(urg_go(which, (void *)&hogs[i].n) == 0);
    urg_wg_wait(&wg);
}

static int run(urg_fn fn)
{
    which = fn;
    memset(hogs, 0, sizeof(hogs));
    stop = 0;
    tu_reset();
    pthread_t t;
    pthread_create(&t, NULL, monitor, NULL);
    urg_config cfg = {.maxprocs = 1, .quantum_ns = 2000000};
    int r = urg_run(hogs_main, NULL, &cfg);
    pthread_join(t, NULL);
    assert_int_equal(r, 0);
    assert_checks_ok();
    uint64_t total = 0;
    for (int i = 0; i < NHOGS; i++)
        total += snap[i];
    int progressed = 0;
    for (int i = 0; i < NHOGS; i++)
        progressed += snap[i] * NHOGS * 10 >= total;
    return progressed;
}

static void test_callcheck_loops_with_calls_share_the_proc(void **state)
{
    (void)state;
    assert_int_equal(run(hog_with_calls), NHOGS);
}

static void test_callcheck_loops_without_calls(void **state)
{
    (void)state;
    int n = run(hog_without_calls);
    if (tu_is_async() && !TU_TSAN)
        assert_int_equal(n, NHOGS);
    else if (!tu_is_async())
        assert_int_equal(n, 1); /* pre-1.14 Go: the loop never reaches a checkpoint */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callcheck_loops_with_calls_share_the_proc),
        cmocka_unit_test(test_callcheck_loops_without_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
