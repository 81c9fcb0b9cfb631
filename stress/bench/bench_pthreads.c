/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * bench_pthreads.c — the pthreads twins of urgent's benchmark workloads.
 *
 * This is the column urgent exists to beat: what the same work costs when
 * every task is a kernel thread. Each workload keeps the name and, where an
 * OS thread can do it at all, the shape of its urgent and Go twins, so that
 * run.sh can print the three side by side. Where 10^5..10^6 threads would
 * only measure the kernel's limits (queued_bytes, million_*), the figure is
 * "n/a" on purpose; where N had to shrink it is said in a "#" line.
 *
 * "One proc" is emulated by pinning the process to one CPU with
 * sched_setaffinity: that is the only way to make two threads take turns on
 * one core the way two tasks take turns on one P.
 */
#define _GNU_SOURCE

#include <gnu/libc-version.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "bench_common.h"

/* The CPUs this process may use at start, so that pinning picks CPUs the
 * cgroup/affinity actually grants rather than assuming 0 and 1. */
static cpu_set_t cpus_allowed;
static int cpu_first = -1, cpu_second = -1;

static void cpus_init(void)
{
    CPU_ZERO(&cpus_allowed);
    if (sched_getaffinity(0, sizeof cpus_allowed, &cpus_allowed) != 0)
        return;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &cpus_allowed))
            continue;
        if (cpu_first < 0)
            cpu_first = c;
        else if (cpu_second < 0)
            cpu_second = c;
    }
}

/* Pins the calling thread (and so every thread it creates afterwards) to
 * ncpu of the granted CPUs. Returns how many it really got. */
static int pin(int ncpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    int got = 0;
    if (cpu_first >= 0 && ncpu >= 1) {
        CPU_SET(cpu_first, &s);
        got++;
    }
    if (cpu_second >= 0 && ncpu >= 2) {
        CPU_SET(cpu_second, &s);
        got++;
    }
    if (got == 0 || sched_setaffinity(0, sizeof s, &s) != 0)
        return 0;
    return got;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "bench_pthreads: %s: %s\n", what, strerror(err));
    exit(1);
}

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int e = pthread_create(&t, NULL, fn, arg);
    if (e)
        die("pthread_create", e);
    return t;
}

/* ------------------------------------------------------------------------ */
/* yield_ns: the cheapest honest thread-to-thread switch. sched_yield would
 * not do: with nothing else runnable CFS may just return to the caller, and
 * then nothing is being switched. A futex hand-off forces one real switch per
 * turn, which is what urg_yield between two tasks amounts to. */

static atomic_int yield_turn;
static long yield_k;

static long futex(atomic_int *addr, int op, int val)
{
    return syscall(SYS_futex, (int *)addr, op, val, NULL, NULL, 0);
}

static void *yield_thread(void *arg)
{
    int me = (int)(intptr_t)arg, other = 1 - me;
    for (long i = 0; i < yield_k; i++) {
        while (atomic_load_explicit(&yield_turn, memory_order_acquire) != me)
            futex(&yield_turn, FUTEX_WAIT_PRIVATE, other);
        atomic_store_explicit(&yield_turn, other, memory_order_release);
        futex(&yield_turn, FUTEX_WAKE_PRIVATE, 1);
    }
    return NULL;
}

static double yield_round(void)
{
    atomic_store(&yield_turn, 0);
    uint64_t t0 = bench_now_ns();
    pthread_t a = spawn(yield_thread, (void *)(intptr_t)0);
    pthread_t b = spawn(yield_thread, (void *)(intptr_t)1);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return (double)(bench_now_ns() - t0) / (double)(2 * yield_k);
}

static double timed(const char *key, double (*round)(void))
{
    double xs[BENCH_MAX_REPS];
    int n = bench_reps();
    round(); /* warm-up: first-touch page faults are not the subject */
    for (int i = 0; i < n; i++)
        xs[i] = round();
    bench_rounds_comment(key, xs, n);
    return bench_median(xs, n);
}

static void bench_yield(void)
{
    if (pin(1) != 1)
        bench_comment("yield_ns: could not pin to one CPU, figure is not a switch cost");
    yield_k = bench_scale(200000);
    bench_comment("yield_ns: two threads pinned to CPU %d, futex ping-pong, %ld turns each",
                  cpu_first, yield_k);
    bench_result("yield_ns", timed("yield_ns", yield_round));
}

/* ------------------------------------------------------------------------ */
/* spawn_ns: a thread's whole life. 10^4 threads, not 10^6: a thread costs
 * tens of microseconds, and the figure is per thread anyway. Batches of 100
 * keep the live count (and so the kernel's bookkeeping) small, as a trivial
 * task's would be. */

static atomic_long spawn_counter;

static void *spawn_thread(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&spawn_counter, 1, memory_order_relaxed);
    return NULL;
}

static long spawn_n;

static double spawn_round(void)
{
    enum { BATCH = 100 };
    pthread_t ts[BATCH];
    uint64_t t0 = bench_now_ns();
    for (long done = 0; done < spawn_n; done += BATCH) {
        int b = spawn_n - done < BATCH ? (int)(spawn_n - done) : BATCH;
        for (int i = 0; i < b; i++)
            ts[i] = spawn(spawn_thread, NULL);
        for (int i = 0; i < b; i++)
            pthread_join(ts[i], NULL);
    }
    return (double)(bench_now_ns() - t0) / (double)spawn_n;
}

static void bench_spawn(void)
{
    pin(1); /* the urgent and Go twins run on one proc */
    spawn_n = bench_scale(10000);
    bench_comment("spawn_ns: pthread_create+join of %ld threads in batches of 100, one CPU",
                  spawn_n);
    bench_result("spawn_ns", timed("spawn_ns", spawn_round));
}

/* ------------------------------------------------------------------------ */
/* chan_rt_ns: an unbuffered channel's rendezvous is, for threads, a mutex and
 * a condition variable; a round trip is a hand-off there and one back. */

static pthread_mutex_t chan_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t chan_to_b = PTHREAD_COND_INITIALIZER;
static pthread_cond_t chan_to_a = PTHREAD_COND_INITIALIZER;
static int chan_state; /* 0: A's turn, 1: B's turn, 2: B must quit */
static long chan_k;

static void *chan_peer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&chan_mu);
    for (;;) {
        while (chan_state == 0)
            pthread_cond_wait(&chan_to_b, &chan_mu);
        if (chan_state == 2)
            break;
        chan_state = 0;
        pthread_cond_signal(&chan_to_a);
    }
    pthread_mutex_unlock(&chan_mu);
    return NULL;
}

static double chan_round(void)
{
    chan_state = 0;
    pthread_t b = spawn(chan_peer, NULL);
    uint64_t t0 = bench_now_ns();
    pthread_mutex_lock(&chan_mu);
    for (long i = 0; i < chan_k; i++) {
        chan_state = 1;
        pthread_cond_signal(&chan_to_b);
        while (chan_state != 0)
            pthread_cond_wait(&chan_to_a, &chan_mu);
    }
    uint64_t el = bench_now_ns() - t0;
    chan_state = 2;
    pthread_cond_signal(&chan_to_b);
    pthread_mutex_unlock(&chan_mu);
    pthread_join(b, NULL);
    return (double)el / (double)chan_k;
}

static void bench_chan(void)
{
    if (pin(1) != 1)
        bench_comment("chan_rt_ns: could not pin to one CPU");
    chan_k = bench_scale(100000);
    bench_comment("chan_rt_ns: two threads pinned to CPU %d, mutex+condvar, %ld round trips",
                  cpu_first, chan_k);
    bench_result("chan_rt_ns", timed("chan_rt_ns", chan_round));
}

/* ------------------------------------------------------------------------ */
/* parked_bytes: a thread blocked on a condition variable, default attributes
 * (8 MiB stack reserved, a few pages touched), because that is what a naive
 * thread-per-connection server pays. Only 2000: the figure is per thread.
 * Kernel-side costs are NOT in VmRSS: each thread also holds a kernel stack
 * (16 KiB on x86_64), a task_struct and its page-table pages, none of which a
 * task or goroutine needs; so this column flatters threads. */

static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t park_ready_cv = PTHREAD_COND_INITIALIZER;
static long park_ready;
static int park_release;

static void *park_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&park_mu);
    park_ready++;
    pthread_cond_signal(&park_ready_cv);
    while (!park_release)
        pthread_cond_wait(&park_cv, &park_mu);
    pthread_mutex_unlock(&park_mu);
    return NULL;
}

static void bench_parked(void)
{
    long n = bench_scale(2000);
    pthread_t *ts = calloc((size_t)n, sizeof *ts);
    if (!ts)
        die("calloc", ENOMEM);
    long long r0 = bench_rss_bytes();
    for (long i = 0; i < n; i++)
        ts[i] = spawn(park_thread, NULL);
    pthread_mutex_lock(&park_mu);
    while (park_ready < n)
        pthread_cond_wait(&park_ready_cv, &park_mu);
    pthread_mutex_unlock(&park_mu);
    long long r1 = bench_rss_bytes();
    pthread_mutex_lock(&park_mu);
    park_release = 1;
    pthread_cond_broadcast(&park_cv);
    pthread_mutex_unlock(&park_mu);
    for (long i = 0; i < n; i++)
        pthread_join(ts[i], NULL);
    free(ts);
    bench_comment("parked_bytes: N=%ld threads on a condvar, rss_before=%lld rss_after=%lld "
                  "(kernel stacks, 16 KiB each, are not in RSS)",
                  n, r0, r1);
    if (r0 < 0 || r1 < 0)
        bench_result_na("parked_bytes");
    else
        bench_result("parked_bytes", (double)(r1 - r0) / (double)n);
}

/* ------------------------------------------------------------------------ */
/* queued_bytes and million_*: a thread cannot be "spawned but not run", and
 * 10^6 threads exceed the default pid and map-count limits; these rows
 * exist for the table's shape. */

static void bench_queued(void)
{
    bench_comment("queued_bytes: no pthreads equivalent (a created thread is runnable at once)");
    bench_result_na("queued_bytes");
}

static void bench_million(void)
{
    bench_comment("million: 10^6 threads exceed kernel.pid_max/threads-max and vm.max_map_count");
    bench_result_na("million_ms");
    bench_result_na("million_parked_ms");
    bench_result_na("million_cold_ms");
    bench_result_na("million_parked_cold_ms");
}

/* ------------------------------------------------------------------------ */
/* fib: the fork-join shape of the task twins, but with a thread per call
 * only for n >= 20 (608 threads per fib(32)): at the tasks' cutoff of 10 it
 * would be 75023 threads per run and would measure clone() alone. */

enum { FIB_CUT = 20 };

/* fib(32), or fib(27) with --quick (about 10x less work); the sums are
 * checked so that a wrong answer cannot pass for a fast one. */
static int fib_arg(void)
{
    return bench_opt.quick ? 27 : 32;
}

static long fib_want(int n)
{
    return n == 27 ? 196418 : 2178309;
}

static long fib_seq(int n)
{
    return n < 2 ? n : fib_seq(n - 1) + fib_seq(n - 2);
}

struct fib_job {
    int n;
    long r;
    pthread_t t;
};

static long fib_par(int n);

static void *fib_thread(void *p)
{
    struct fib_job *j = p;
    j->r = fib_par(j->n);
    return NULL;
}

static void fib_sub(struct fib_job *j)
{
    if (j->n < FIB_CUT)
        j->r = fib_seq(j->n);
    else
        j->t = spawn(fib_thread, j);
}

static void fib_join(struct fib_job *j)
{
    if (j->n >= FIB_CUT)
        pthread_join(j->t, NULL);
}

static long fib_par(int n)
{
    if (n < FIB_CUT)
        return fib_seq(n);
    struct fib_job a = {n - 1, 0, 0}, b = {n - 2, 0, 0};
    fib_sub(&a);
    fib_sub(&b);
    fib_join(&a);
    fib_join(&b);
    return a.r + b.r;
}

static double fib_round(void)
{
    uint64_t t0 = bench_now_ns();
    if (fib_par(fib_arg()) != fib_want(fib_arg()))
        die("fib", EDOM);
    return (double)(bench_now_ns() - t0) / 1e6;
}

static void bench_fib(void)
{
    bench_comment("fib(%d): a thread per call for n >= %d (cutoff 20, not the tasks' 10)",
                  fib_arg(), FIB_CUT);
    pin(1);
    double f1 = timed("fib1_ms", fib_round);
    if (pin(2) != 2)
        bench_comment("fib2: fewer than two CPUs granted, the 2-CPU figure is meaningless");
    double f2 = timed("fib2_ms", fib_round);
    bench_result("fib1_ms", f1);
    bench_result("fib2_ms", f2);
    bench_result("fib_speedup", f1 / f2);
}

/* ------------------------------------------------------------------------ */

static const bench_workload workloads[] = {
    {"yield", {"yield_ns", NULL}, bench_yield},
    {"spawn", {"spawn_ns", NULL}, bench_spawn},
    {"chan_rt", {"chan_rt_ns", NULL}, bench_chan},
    {"parked", {"parked_bytes", NULL}, bench_parked},
    {"queued", {"queued_bytes", NULL}, bench_queued},
    {"million", {"million_ms", "million_parked_ms", "million_cold_ms", "million_parked_cold_ms", NULL}, bench_million},
    {"fib", {"fib1_ms", "fib2_ms", "fib_speedup", NULL}, bench_fib},
};

int main(int argc, char **argv)
{
    char banner[128];
    cpus_init();
    snprintf(banner, sizeof banner, "pthreads (glibc %s), %d CPUs granted", gnu_get_libc_version(),
             CPU_COUNT(&cpus_allowed));
    return bench_main(argc, argv, workloads, sizeof workloads / sizeof workloads[0], banner);
}
