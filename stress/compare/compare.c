/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * stress/compare/compare.c — what asynchronous preemption changes, one
 * scenario per run. Built twice from these sources: against the async
 * library (compare_async) and the cooperative one (compare_coop, whose
 * callwork.c is compiled with call checks). stress/compare/run.sh runs
 * both, and Go's twins, and prints one table.
 *
 *   fair1    4 call-free hogs on 1 proc, fixed time: share of each,
 *            Jain's fairness index, hogs starved (< 10% of a fair share)
 *   fair2    8 call-free hogs on 2 procs
 *   fair3    3 call-free hogs on 2 procs: the case where a hog that may
 *            not change threads (docs/preemption.md, contract line 6)
 *            would cost the most fairness
 *   ticker   a task sleeping 1 ms in a loop beside 4 hogs on 1 proc:
 *            lateness of each wake-up (p50, p99, max)
 *   stw      urg_set_maxprocs (stop-the-world) 20 times, alternating 1 and
 *            2, while 4 hogs spin on 2 procs: median and worst time. (Not
 *            3 and 2: three busy threads on this 2-CPU machine would make
 *            every stop wait for the kernel to reschedule a thread, which
 *            measures the kernel's time slice, not the runtime.) Each
 *            call down to 1 proc first waits until a hog runs on the
 *            other one, so that it has a spinning hog to stop.
 *   calls    4 hogs whose loop calls a function each iteration, 1 proc
 *   nocalls  4 hogs whose loop calls nothing (same file as calls)
 *   work     8 hogs on 2 procs doing a fixed amount of work: wall time,
 *            preemptions, and their direct cost as a share of the procs'
 *            time (run it with URG_QUANTUM=10ms and 1ms to price
 *            preemption; wall time alone is too noisy on a shared VM)
 *
 * The hogs' loops contain no calls, so in the cooperative build a hog
 * that gets a proc keeps it forever. Nothing inside the runtime can end
 * such a run, so a monitor — a plain pthread, not a task — sleeps until
 * the deadline, snapshots the counters and raises the flag the loops
 * poll. Every run therefore ends on time and reports starvation instead
 * of hanging.
 *
 * Output: RESULT <mode> <scenario> <key> <value> lines, plus # comments.
 * With --check (the CI stress tests) the exit status says whether the
 * build behaved as it must: async fair and never starving, cooperative
 * visibly starving call-free loops, which proves the comparison is real.
 */
#include "compare.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "urgent.h"

#define MAX_HOGS  64
#define MAX_WAKES 100000
#define STW_CALLS 20

static struct hog hogs[MAX_HOGS];
static uint64_t snapshot[MAX_HOGS];
static int stop; /* atomics only */
static int nhogs, procs;
static double seconds = 2.0;
static uint64_t quantum_us;
static const char *scenario;
static bool check;
static int check_failures;
static urg_wg wg;

/* ---- the monitor ---- */

static pthread_mutex_t mon_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mon_cv;
static int mon_done;  /* the run finished by itself */
static int mon_fired; /* the deadline passed first */

static void *monitor(void *arg)
{
    (void)arg;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    double whole = floor(seconds);
    dl.tv_sec += (time_t)whole;
    dl.tv_nsec += (long)((seconds - whole) * 1e9);
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&mon_mu);
    while (!mon_done) {
        if (pthread_cond_timedwait(&mon_cv, &mon_mu, &dl) == ETIMEDOUT)
            break;
    }
    if (!mon_done)
        mon_fired = 1;
    pthread_mutex_unlock(&mon_mu);
    for (int i = 0; i < nhogs; i++)
        snapshot[i] = hog_count(&hogs[i]);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

static pthread_t mon_thread;

static void monitor_start(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&mon_cv, &a);
    pthread_create(&mon_thread, NULL, monitor, NULL);
}

/* The workload finished before the deadline (stw in the async build). */
static void monitor_finish(void)
{
    pthread_mutex_lock(&mon_mu);
    mon_done = 1;
    pthread_cond_signal(&mon_cv);
    pthread_mutex_unlock(&mon_mu);
}

/* ---- --check ---- */

static bool is_async(void) { return !strcmp(urg_preempt_mode(), "async"); }

/* Loops that call nothing are fair only with async preemption; loops that
 * call functions are fair in both builds (call checks). */
static bool expect_fair(void) { return is_async() || !strcmp(scenario, "calls"); }
static bool expect_starved(void) { return !expect_fair() && strcmp(scenario, "work"); }

static void expect(bool ok, const char *what)
{
    if (check && !ok) {
        printf("# CHECK FAILED (%s build, %s): %s\n", urg_preempt_mode(), scenario, what);
        check_failures++;
    }
}

/* ---- output ---- */

static void result(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void result(const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("RESULT %s %s %s ", urg_preempt_mode(), scenario, key);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static void report_fairness(void)
{
    double sum = 0, sq = 0;
    for (int i = 0; i < nhogs; i++) {
        sum += (double)snapshot[i];
        sq += (double)snapshot[i] * (double)snapshot[i];
    }
    int starved = 0;
    printf("# shares:");
    for (int i = 0; i < nhogs; i++) {
        double share = sum > 0 ? (double)snapshot[i] / sum : 0;
        printf(" %.3f", share);
        if (share < 0.1 / nhogs)
            starved++;
    }
    printf("\n");
    double jain = sq > 0 ? sum * sum / (nhogs * sq) : 0;
    result("jain", "%.4f", jain);
    expect(!starved || !expect_fair(), "a hog starved");
    expect(starved || !expect_starved(), "no hog starved in the cooperative build");
    result("starved", "%d", starved);
    result("hogs", "%d", nhogs);
}

/* ---- tasks ---- */

/* --hold-tls: the hogs keep a thread-local's address in a register across
 * their loop, as code that caches &errno does; async preemption then never
 * moves them, and they are detached instead (docs/design.md, "Native C"). */
static bool hold_tls;
static __thread uint64_t tls_counter;

static void hog_task(void *arg)
{
    struct hog *h = arg;
    if (hold_tls) {
        uint64_t *t = &tls_counter;
        while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
            __asm__ volatile("" : "+r"(t)); /* kept in a register */
            (*t)++;
            hog_bump(&h->n);
        }
    } else {
        while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
            hog_bump(&h->n);
    }
    urg_wg_done(&wg);
}

static void calls_task(void *arg)
{
    cw_loop_with_calls(arg);
    urg_wg_done(&wg);
}

static void nocalls_task(void *arg)
{
    cw_loop_without_calls(arg);
    urg_wg_done(&wg);
}

static uint64_t work_iters;
static void work_task(void *arg)
{
    struct hog *h = arg;
    volatile uint64_t x = 0;
    for (uint64_t i = 0; i < work_iters; i++)
        x += i ^ (x >> 3);
    __atomic_store_n(&h->n, x, __ATOMIC_RELAXED);
    urg_wg_done(&wg);
}

static void spawn_hogs(urg_fn fn)
{
    urg_wg_add(&wg, nhogs);
    for (int i = 0; i < nhogs; i++) {
        hogs[i].stop = &stop;
        if (urg_go(fn, &hogs[i]) != 0) {
            fprintf(stderr, "urg_go failed\n");
            exit(2);
        }
    }
}

static double wakes[MAX_WAKES];
static int nwakes;

static void ticker_task(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        uint64_t t = urg_now();
        urg_sleep(1000000);
        uint64_t late = urg_now() - t - 1000000;
        if (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE) && nwakes < MAX_WAKES)
            wakes[nwakes++] = (double)late / 1e6;
    }
    urg_wg_done(&wg);
}

static double stw_us[STW_CALLS];
static int stw_done;

/* Spin, without runtime calls (so without yielding in the cooperative
 * build), until some hog makes progress: with this task on its own proc,
 * that hog runs on another one, so the stop that follows has a spinning
 * hog to preempt rather than a proc whose thread has not started yet. */
static void wait_hog_elsewhere(void)
{
    uint64_t before[MAX_HOGS];
    for (int i = 0; i < nhogs; i++)
        before[i] = hog_count(&hogs[i]);
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        for (int i = 0; i < nhogs; i++)
            if (hog_count(&hogs[i]) != before[i])
                return;
    }
}

static void main_task(void *arg)
{
    (void)arg;
    if (!strcmp(scenario, "fair1") || !strcmp(scenario, "fair2") || !strcmp(scenario, "fair3")) {
        spawn_hogs(hog_task);
    } else if (!strcmp(scenario, "calls")) {
        spawn_hogs(calls_task);
    } else if (!strcmp(scenario, "nocalls")) {
        spawn_hogs(nocalls_task);
    } else if (!strcmp(scenario, "ticker")) {
        urg_wg_add(&wg, 1);
        urg_go(ticker_task, NULL);
        spawn_hogs(hog_task);
    } else if (!strcmp(scenario, "work")) {
        uint64_t t0 = urg_now();
        spawn_hogs(work_task);
        urg_wg_wait(&wg);
        double ms = (double)(urg_now() - t0) / 1e6;
        result("work_ms", "%.1f", ms);
        /* What preemption took from the work: each completed preemption's
         * cost (signal to yield, measured inside the runtime) over the
         * CPU time the procs had. Wall-clock differences between builds
         * are noise on a shared machine; this is not. */
        urg_stats st;
        urg_stats_get(&st);
        result("preemptions", "%llu", (unsigned long long)st.preempt_async);
        result("cost_p50_ns", "%llu", (unsigned long long)st.preempt_cost_p50_ns);
        result("walks_memo", "%llu", (unsigned long long)st.preempt_walks_memo);
        /* A model, not a measurement: preemptions x the median cost
         * inside the handler, over the procs' time. It leaves out sysmon,
         * the kernel's signal delivery and cooled caches; cost.sh measures
         * the whole process against the cooperative build instead. */
        result("model_overhead_pct", "%.3f",
               100.0 * (double)st.preempt_async * (double)st.preempt_cost_p50_ns /
                   (ms * 1e6 * procs));
        monitor_finish();
        return;
    } else if (!strcmp(scenario, "stw")) {
        spawn_hogs(hog_task);
        for (int i = 0; i < STW_CALLS && !__atomic_load_n(&stop, __ATOMIC_ACQUIRE); i++) {
            /* Calls that shrink to 1 proc stop the other one: let a hog
             * take it first. (Back to back, they would find its thread
             * still waking up, and time only the hand-back.) */
            if (i % 2 == 0)
                wait_hog_elsewhere();
            uint64_t t0 = urg_now();
            urg_set_maxprocs(i % 2 ? 2 : 1);
            stw_us[i] = (double)(urg_now() - t0) / 1e3;
            if (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE))
                stw_done = i + 1;
        }
        monitor_finish();
    }
    urg_wg_wait(&wg);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: compare fair1|fair2|fair3|ticker|stw|calls|nocalls|work "
                    "[--seconds S] [--quantum-us Q] [--iters N] [--check] [--hold-tls]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    scenario = argv[1];
    work_iters = 200000000ull;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--quantum-us") && i + 1 < argc)
            quantum_us = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--check"))
            check = true;
        else if (!strcmp(argv[i], "--hold-tls"))
            hold_tls = true;
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            work_iters = strtoull(argv[++i], NULL, 10);
        else
            usage();
    }
    if (!strcmp(scenario, "work"))
        seconds = 600; /* fixed work, not fixed time: the monitor only guards */
    bool two = !strcmp(scenario, "fair2") || !strcmp(scenario, "fair3") ||
               !strcmp(scenario, "stw") || !strcmp(scenario, "work");
    procs = two ? 2 : 1;
    nhogs = !strcmp(scenario, "fair2") || !strcmp(scenario, "work") ? 8
            : !strcmp(scenario, "fair3")                            ? 3
                                                                    : 4;
    if (strcmp(scenario, "fair1") && strcmp(scenario, "fair2") && strcmp(scenario, "fair3") &&
        strcmp(scenario, "ticker") && strcmp(scenario, "stw") && strcmp(scenario, "calls") &&
        strcmp(scenario, "nocalls") && strcmp(scenario, "work"))
        usage();

    urg_config cfg = {0};
    cfg.maxprocs = procs;
    cfg.quantum_ns = quantum_us * 1000;
    monitor_start();
    uint64_t t0 = urg_now();
    int r = urg_run(main_task, NULL, &cfg);
    double elapsed = (double)(urg_now() - t0) / 1e6;
    monitor_finish();
    pthread_join(mon_thread, NULL);
    if (r != 0) {
        fprintf(stderr, "urg_run: %s\n", strerror(-r));
        return 1;
    }
    urg_stats s;
    urg_stats_get(&s); /* zeroes: the run is over; counters are printed by schedtrace */

    if (!strcmp(scenario, "ticker")) {
        qsort(wakes, (size_t)nwakes, sizeof(double), cmp_double);
        double expected = seconds * 1000.0 / 2.0; /* a wake per ~2 ms at worst */
        result("wakes", "%d", nwakes);
        expect((nwakes >= expected / 10) == expect_fair(),
               "ticker starvation does not match the build");
        if (nwakes < expected / 10) {
            result("status", "starved");
            printf("# the ticker woke %d times in %.1f s: starved by the hogs\n", nwakes, seconds);
        } else {
            result("status", "ok");
        }
        /* The hogs' throughput: what waking the ticker on time costs them
         * (URG_DEBUG=wakepreempt=0 against the default). */
        uint64_t iters = 0;
        for (int i = 0; i < nhogs; i++)
            iters += hog_count(&hogs[i]);
        result("hog_iters_per_ms", "%.0f", (double)iters / elapsed);
        if (nwakes > 0) {
            result("p50_ms", "%.2f", wakes[nwakes / 2]);
            result("p99_ms", "%.2f", wakes[nwakes * 99 / 100]);
            result("max_ms", "%.2f", wakes[nwakes - 1]);
        }
    } else if (!strcmp(scenario, "stw")) {
        result("completed", "%d", stw_done);
        expect((stw_done == STW_CALLS && !mon_fired) == is_async(),
               "stop-the-world completion does not match the build");
        if (stw_done < STW_CALLS || mon_fired) {
            result("status", "did-not-complete");
            printf("# urg_set_maxprocs did not complete while the hogs ran (%.1f s)\n", seconds);
        } else {
            double v[STW_CALLS];
            memcpy(v, stw_us, sizeof(v));
            printf("# calls (us, in order; odd ones grow to 2 procs):");
            for (int i = 0; i < STW_CALLS; i++)
                printf(" %.1f", stw_us[i]);
            printf("\n");
            qsort(v, STW_CALLS, sizeof(double), cmp_double);
            result("status", "ok");
            result("median_us", "%.1f", v[STW_CALLS / 2]);
            result("worst_us", "%.1f", v[STW_CALLS - 1]);
        }
    } else if (!strcmp(scenario, "work")) {
        /* Whole-process CPU time: every thread's, sysmon's, the signal
         * handler's and the kernel's (signal delivery, sigreturn). The
         * threads have exited; RUSAGE_SELF still counts them. */
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double user = (double)ru.ru_utime.tv_sec * 1e3 + (double)ru.ru_utime.tv_usec / 1e3;
        double sys = (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3;
        result("cpu_ms", "%.1f", user + sys);
        result("user_ms", "%.1f", user);
        result("sys_ms", "%.1f", sys);
    } else {
        report_fairness();
    }
    result("elapsed_ms", "%.0f", elapsed);
    return check_failures ? 1 : 0;
}
