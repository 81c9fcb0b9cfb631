/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/test_deferprof.c — URG_DEBUG=deferprof=1 names the code where
 * preemptions were deferred, and why.
 *
 * A forked child (stderr captured) makes three runs with a 1 ms quantum,
 * one hog each, so that each run's report holds only that hog's sites:
 *   1. a call-free loop inside urg_preempt_disable: "preempt disabled" at
 *      dp_spin_disabled; the run also calls urg_dump, which prints the
 *      report too;
 *   2. memset of a large buffer, over and over: "libc/blocked module" at
 *      a PC in the C library (or the sanitizer runtime that intercepts
 *      memset), "from 0x... dp_spin_memset+0x..";
 *   3. qsort with a slow comparator: the PC is the program's comparator,
 *      but qsort (libc) is a caller: "libc/blocked module (a caller) at
 *      dp_cmp_slow".
 * Each run waits, polling the profile's own counts with a generous
 * deadline, until its hog has been deferred for the reason it expects,
 * then stops the hog. The libc hogs make a runtime call (urg_checkpoint)
 * after each call into libc, which takes their proc back after a detach
 * (runtime/detach.c), so the deferrals go on.
 *
 * Cooperative build (and ThreadSanitizer, which delays signals): no
 * preemption is ever deferred; the test is skipped.
 */
#include "testutil.h"

#include "signals/signals.h"

#include <stdlib.h>

#define MEMSET_BYTES (4u << 20)
#define QSORT_N      64

static int stop;
static urg_wg wg;
static uint64_t spins;
static unsigned char *membuf;
static int reached[3];

static __attribute__((noinline)) void dp_spin_disabled(void *arg)
{
    (void)arg;
    urg_preempt_disable();
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
        TU_BUMP(&spins);
    urg_preempt_enable();
    urg_wg_done(&wg);
}

static __attribute__((noinline)) void dp_spin_memset(void *arg)
{
    (void)arg;
    for (int i = 0; !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++) {
        memset(membuf, i, MEMSET_BYTES);
        urg_checkpoint();
    }
    urg_wg_done(&wg);
}

/* Slow on purpose: most of qsort's time is spent here, in a few PCs. */
static __attribute__((noinline)) int dp_cmp_slow(const void *a, const void *b)
{
    for (volatile int k = 0; k < 200; k++) {
    }
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static __attribute__((noinline)) void dp_spin_qsort(void *arg)
{
    (void)arg;
    int v[QSORT_N];
    for (unsigned r = 1; !__atomic_load_n(&stop, __ATOMIC_RELAXED); r++) {
        for (int i = 0; i < QSORT_N; i++)
            v[i] = (int)((r * 2654435761u + (unsigned)i * 40503u) % 1000u);
        qsort(v, QSORT_N, sizeof(v[0]), dp_cmp_slow);
        urg_checkpoint();
    }
    urg_wg_done(&wg);
}

static const struct {
    urg_fn hog;
    uint32_t reason; /* what its deferrals must be counted as */
} cases[3] = {
    {dp_spin_disabled, DEFER_PREEMPT_OFF},
    {dp_spin_memset, DEFER_FORBIDDEN},
    {dp_spin_qsort, DEFER_FORBIDDEN | DEFER_CALLER},
};

static void case_main(void *arg)
{
    int c = (int)(intptr_t)arg;
    urg_wg_add(&wg, 1);
    CHECK(urg_go(cases[c].hog, NULL) == 0);
    uint64_t deadline = urg_now() + (uint64_t)TU_AWAIT_DEADLINE_S * 1000000000ull;
    while (urg__deferprof_count(cases[c].reason) < 3 && urg_now() < deadline)
        urg_sleep(1000000);
    reached[c] = urg__deferprof_count(cases[c].reason) >= 3;
    if (c == 0)
        urg_dump();
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    urg_wg_wait(&wg);
}

/* In the child: three runs, each ending with its report on stderr. */
static int child(void *arg)
{
    (void)arg;
    char dbg[300];
    const char *old = getenv("URG_DEBUG"); /* keep chaos=SEED when the suite runs under it */
    snprintf(dbg, sizeof(dbg), "%s%sdeferprof=1", old && *old ? old : "", old && *old ? "," : "");
    setenv("URG_DEBUG", dbg, 1);
    membuf = malloc(MEMSET_BYTES);
    if (!membuf)
        return 10;
    for (int c = 0; c < 3; c++) {
        __atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
        urg_config cfg = {.maxprocs = 2, .quantum_ns = 1000000};
        if (urg_run(case_main, (void *)(intptr_t)c, &cfg) != 0)
            return 20 + c;
        fprintf(stderr, "CASE %d reached=%d\n", c, reached[c]);
        fflush(stderr);
    }
    free(membuf);
    return tu_failures ? 30 : (reached[0] && reached[1] && reached[2]) ? 0 : 40;
}

/* Is there a report line (starting "deferprof: ") holding all of a, b, c? */
static bool has_line(const char *out, const char *a, const char *b, const char *c)
{
    for (const char *p = out; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char line[1024];
        if (len >= sizeof(line))
            len = sizeof(line) - 1;
        memcpy(line, p, len);
        line[len] = 0;
        if (!strncmp(line, "deferprof: ", 11) && strstr(line, a) && (!b || strstr(line, b)) &&
            (!c || strstr(line, c)))
            return true;
        if (!nl)
            break;
        p = nl + 1;
    }
    return false;
}

static struct tu_child res;

static void test_deferprof_names_reasons_and_functions(void **state)
{
    (void)state;
    if (!tu_is_async() || TU_TSAN)
        skip(); /* no deferred preemptions: nothing is preempted asynchronously */
    tu_in_child(child, NULL, 3 * TU_AWAIT_DEADLINE_S + 60, &res);
    fputs(res.out, stderr); /* print_message truncates long text */
    assert_true(WIFEXITED(res.status));
    assert_int_equal(WEXITSTATUS(res.status), 0);
    /* Three run ends and one urg_dump. */
    assert_true(tu_count_lines(res.out, "deferprof: ") >= 4);
    int headers = 0;
    for (const char *p = strstr(res.out, " deferred preemptions at "); p;
         p = strstr(p + 1, " deferred preemptions at "))
        headers++;
    assert_true(headers >= 4);
    assert_true(has_line(res.out, "preempt disabled at ", "dp_spin_disabled", NULL));
    assert_true(has_line(res.out, "libc/blocked module at ", " from 0x", "dp_spin_memset"));
    assert_true(has_line(res.out, "libc/blocked module (a caller) at ", "dp_cmp_slow", " caller "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deferprof_names_reasons_and_functions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
