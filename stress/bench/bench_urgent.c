/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * bench_urgent.c — urgent's own figures for the benchmark table.
 *
 * Every workload mirrors its twin in go/bench.go (same key, same shape, same
 * N) so that run.sh's ratios compare schedulers, not programs; the pthreads
 * twins show what the work costs without any user-space scheduler. Written
 * against urgent.h alone, so it measures what a user of the library gets.
 *
 * Each workload runs in a fresh child process (bench_common.h): memory
 * figures must not see stacks cached by an earlier workload, and a crash in
 * a young runtime should cost one row of the table, not all of it. Inside
 * the child one urg_run covers one workload (fib needs two: one per
 * maxprocs), and its first task does all the measuring.
 *
 * Nothing inside a task blocks its thread on a pthread primitive, and tasks
 * do not even print: stdio takes a lock, so output is gathered in a buffer
 * by the measuring task and written once urg_run has returned.
 */
#define _GNU_SOURCE

#include <math.h>
#include <stdatomic.h>

#include "bench_common.h"
#include "urgent.h"

/* ------------------------------------------------------------------------ */
/* Output gathered while the runtime runs. */

static char out_buf[16384];
static size_t out_len;

static void out(const char *fmt, ...)
{
    va_list ap;
    if (out_len >= sizeof out_buf - 1)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(out_buf + out_len, sizeof out_buf - out_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        out_len += (size_t)n < sizeof out_buf - out_len ? (size_t)n : sizeof out_buf - 1 - out_len;
}

static void out_flush(void)
{
    fwrite(out_buf, 1, out_len, stdout);
    fflush(stdout);
    out_len = 0;
}

/* NAN marks a figure that must not be trusted (a spawn failed, a check did
 * not hold): it is printed as n/a rather than as a flattering number. */
static void out_result(const char *key, double v)
{
    if (isnan(v))
        out("RESULT %s n/a\n", key);
    else
        out("RESULT %s %.2f\n", key, v);
}

static void out_rounds(const char *key, const double *xs, int n)
{
    out("# %s rounds", key);
    for (int i = 0; i < n; i++)
        out(" %.1f", xs[i]);
    out("\n");
}

/* Failures of the runtime: the first is reported (later ones are usually
 * its echo), and any failure voids the figures of the workload. */
static long fail_count;

static void failed(const char *what, int err)
{
    if (fail_count++ == 0)
        out("# %s failed: %s\n", what, strerror(err < 0 ? -err : err));
}

/* Summary of what the scheduler did, so that an odd figure can be traced to
 * steals, preemptions or extra threads without rerunning. */
static void out_stats(const char *key)
{
    urg_stats s;
    urg_stats_get(&s);
    out("# %s stats: created=%llu switches=%llu steals=%llu preempt_async=%llu "
        "preempt_coop=%llu threads=%d procs=%d\n",
        key, (unsigned long long)s.tasks_created, (unsigned long long)s.context_switches,
        (unsigned long long)s.steals, (unsigned long long)s.preempt_async,
        (unsigned long long)s.preempt_cooperative, s.threads, s.maxprocs);
}

/* One urg_run; the first task is the measuring one. An error here leaves
 * the workload's keys unreported, and the dispatcher prints them as n/a. */
static void run_main(urg_fn fn, int maxprocs)
{
    urg_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.maxprocs = maxprocs;
    int rc = urg_run(fn, NULL, &cfg);
    if (rc != 0)
        out("# urg_run(maxprocs=%d) failed: %s\n", maxprocs, strerror(-rc));
    out_flush();
}

/* Warm-up round, then bench_reps() rounds, median kept. The warm-up is
 * dropped because first-touch page faults on fresh stacks are the kernel's
 * cost, not the scheduler's; million_* shows the cold case separately. */
static double timed(const char *key, double (*round)(void))
{
    double xs[BENCH_MAX_REPS];
    int n = bench_reps();
    if (isnan(round()))
        return NAN;
    for (int i = 0; i < n; i++) {
        xs[i] = round();
        if (isnan(xs[i]))
            return NAN;
    }
    out_rounds(key, xs, n);
    return bench_median(xs, n);
}

/* Spawns n copies of fn(arg), n being what the caller already added to the
 * wait groups in wgs; on failure it takes the unspawned remainder back out
 * of them so that the caller's wait still returns. Returns how many ran. */
static long spawn_many(long n, urg_fn fn, void *arg, urg_wg **wgs, int nwgs)
{
    for (long i = 0; i < n; i++) {
        int rc = urg_go(fn, arg);
        if (rc != 0) {
            failed("urg_go", rc);
            for (int w = 0; w < nwgs; w++)
                urg_wg_add(wgs[w], -(int64_t)(n - i));
            return i;
        }
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* yield_ns: two tasks on one proc handing it to each other; with the main
 * task parked in urg_wg_wait, every urg_yield is one task switch. */

static long yield_k;
static urg_wg yield_wg;

static void yield_task(void *arg)
{
    (void)arg;
    for (long i = 0; i < yield_k; i++)
        urg_yield();
    urg_wg_done(&yield_wg);
}

static double yield_round(void)
{
    urg_wg *wgs[] = {&yield_wg};
    urg_wg_add(&yield_wg, 2);
    uint64_t t0 = bench_now_ns();
    long n = spawn_many(2, yield_task, NULL, wgs, 1);
    urg_wg_wait(&yield_wg);
    if (n != 2)
        return NAN;
    return (double)(bench_now_ns() - t0) / (double)(2 * yield_k);
}

static void yield_main(void *arg)
{
    (void)arg;
    out_result("yield_ns", timed("yield_ns", yield_round));
    out_stats("yield_ns");
}

static void bench_yield(void)
{
    yield_k = bench_scale(1000000);
    run_main(yield_main, 1);
}

/* ------------------------------------------------------------------------ */
/* spawn_ns: a trivial task's whole life (create, queue, run, exit), with all
 * 10^6 spawned before the first runs, as in the Go twin; so this also pays
 * for a deep run queue and 10^6 stacks in flight. */

static long spawn_n;
static urg_wg spawn_wg;

static void spawn_task(void *arg)
{
    urg_wg_done(arg);
}

static double spawn_round(void)
{
    urg_wg *wgs[] = {&spawn_wg};
    urg_wg_add(&spawn_wg, spawn_n);
    uint64_t t0 = bench_now_ns();
    long n = spawn_many(spawn_n, spawn_task, &spawn_wg, wgs, 1);
    urg_wg_wait(&spawn_wg);
    if (n != spawn_n)
        return NAN;
    return (double)(bench_now_ns() - t0) / (double)spawn_n;
}

static void spawn_main(void *arg)
{
    (void)arg;
    out_result("spawn_ns", timed("spawn_ns", spawn_round));
    out_stats("spawn_ns");
}

static void bench_spawn(void)
{
    spawn_n = bench_scale(1000000);
    run_main(spawn_main, 1);
}

/* ------------------------------------------------------------------------ */
/* chan_rt_ns: ping-pong over two unbuffered int channels on one proc. The
 * values are checked: a fast channel that loses messages is not fast. */

static long chan_k;
static urg_chan *chan_ping, *chan_pong;
static urg_wg chan_wg;
static atomic_int chan_bad;

static void chan_peer(void *arg)
{
    (void)arg;
    int v;
    while (urg_chan_recv(chan_ping, &v) == 0) {
        v++;
        if (urg_chan_send(chan_pong, &v) != 0)
            break;
    }
    urg_wg_done(&chan_wg);
}

static double chan_round(void)
{
    urg_wg *wgs[] = {&chan_wg};
    chan_ping = urg_chan_new(sizeof(int), 0);
    chan_pong = urg_chan_new(sizeof(int), 0);
    if (!chan_ping || !chan_pong) {
        failed("urg_chan_new", -ENOMEM);
        if (chan_ping)
            urg_chan_free(chan_ping);
        if (chan_pong)
            urg_chan_free(chan_pong);
        return NAN;
    }
    urg_wg_add(&chan_wg, 1);
    if (spawn_many(1, chan_peer, NULL, wgs, 1) != 1) {
        urg_chan_free(chan_ping);
        urg_chan_free(chan_pong);
        return NAN;
    }
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < chan_k; i++) {
        int v = (int)i, w = -1;
        if (urg_chan_send(chan_ping, &v) != 0 || urg_chan_recv(chan_pong, &w) != 0 ||
            w != v + 1) {
            atomic_store(&chan_bad, 1);
            break;
        }
    }
    uint64_t el = bench_now_ns() - t0;
    /* Closing both frees the peer wherever a failed check left it (blocked
     * in its send as well as in its receive); free only once it is gone. */
    urg_chan_close(chan_ping);
    urg_chan_close(chan_pong);
    urg_wg_wait(&chan_wg);
    urg_chan_free(chan_ping);
    urg_chan_free(chan_pong);
    if (atomic_load(&chan_bad)) {
        failed("chan_rt value check", EPROTO);
        return NAN;
    }
    return (double)el / (double)chan_k;
}

static void chan_main(void *arg)
{
    (void)arg;
    out_result("chan_rt_ns", timed("chan_rt_ns", chan_round));
    out_stats("chan_rt_ns");
}

static void bench_chan(void)
{
    chan_k = bench_scale(500000);
    run_main(chan_main, 1);
}

/* ------------------------------------------------------------------------ */
/* parked_bytes: what one task blocked in a channel receive costs in RSS.
 * The reading is taken inside the runtime, so its fixed costs (procs,
 * threads, sysmon) are in both points and cancel out. */

static urg_chan *park_chan;
static urg_wg park_ready, park_exit;

static void park_task(void *arg)
{
    (void)arg;
    int v;
    urg_wg_done(&park_ready);
    urg_chan_recv(park_chan, &v);
    urg_wg_done(&park_exit);
}

static void parked_main(void *arg)
{
    (void)arg;
    long n = bench_scale(100000);
    urg_wg *wgs[] = {&park_ready, &park_exit};
    park_chan = urg_chan_new(sizeof(int), 0);
    if (!park_chan) {
        failed("urg_chan_new", -ENOMEM);
        return;
    }
    urg_wg_add(&park_ready, n);
    urg_wg_add(&park_exit, n);
    long long r0 = bench_rss_bytes();
    long got = spawn_many(n, park_task, NULL, wgs, 2);
    urg_wg_wait(&park_ready);
    long long r1 = bench_rss_bytes();
    urg_chan_close(park_chan);
    urg_wg_wait(&park_exit);
    urg_chan_free(park_chan);
    out("# parked_bytes N=%ld spawned=%ld rss_before=%lld rss_after=%lld\n", n, got, r0, r1);
    out_result("parked_bytes", got == n && r0 >= 0 && r1 >= 0 ? (double)(r1 - r0) / (double)n : NAN);
    out_stats("parked_bytes");
}

static void bench_parked(void)
{
    run_main(parked_main, 1);
}

/* ------------------------------------------------------------------------ */
/* queued_bytes: what a spawned task costs before it first runs (a lazily
 * built stack should show here). Async preemption is held off while the
 * main task spawns and reads, or sysmon would hand the proc to the queue
 * half-way. Should some task run anyway (a cooperative preemption at a
 * runtime call), it parks on a gate instead of exiting, so that its memory
 * is still counted and not recycled for the next spawn; the comment says how
 * many did. */

static urg_chan *queued_gate;
static urg_wg queued_exit;
static atomic_long queued_ran;
static atomic_int queued_measured;

static void queued_task(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&queued_ran, 1, memory_order_relaxed);
    if (!atomic_load_explicit(&queued_measured, memory_order_acquire))
        urg_chan_recv(queued_gate, NULL);
    urg_wg_done(&queued_exit);
}

static void queued_main(void *arg)
{
    (void)arg;
    long n = bench_scale(1000000);
    urg_wg *wgs[] = {&queued_exit};
    queued_gate = urg_chan_new(0, 0);
    if (!queued_gate) {
        failed("urg_chan_new", -ENOMEM);
        return;
    }
    urg_wg_add(&queued_exit, n);
    long long r0 = bench_rss_bytes();
    urg_preempt_disable();
    long got = spawn_many(n, queued_task, NULL, wgs, 1);
    long long r1 = bench_rss_bytes();
    long ran = atomic_load(&queued_ran);
    urg_preempt_enable();
    atomic_store_explicit(&queued_measured, 1, memory_order_release);
    urg_chan_close(queued_gate);
    urg_wg_wait(&queued_exit);
    urg_chan_free(queued_gate);
    out("# queued_bytes N=%ld spawned=%ld ran_before_reading=%ld rss_before=%lld rss_after=%lld\n",
        n, got, ran, r0, r1);
    out_result("queued_bytes", got == n && r0 >= 0 && r1 >= 0 ? (double)(r1 - r0) / (double)n : NAN);
    out_stats("queued_bytes");
}

static void bench_queued(void)
{
    run_main(queued_main, 1);
}

/* ------------------------------------------------------------------------ */
/* million_ms / million_parked_ms: 10^6 tasks alive at once on every proc
 * (maxprocs 0, as Go's default GOMAXPROCS): time to spawn them all, and time
 * until every one has run and parked on one shared channel. Three rounds
 * and no warm-up: the median is over all three; the first round, with
 * cold memory, is also reported alone (million_cold_ms,
 * million_parked_cold_ms). */

static urg_chan *million_gate;
static urg_wg million_ready, million_exit;

static void million_task(void *arg)
{
    (void)arg;
    urg_wg_done(&million_ready);
    urg_chan_recv(million_gate, NULL);
    urg_wg_done(&million_exit);
}

static void million_main(void *arg)
{
    (void)arg;
    enum { ROUNDS = 3 };
    long n = bench_scale(1000000);
    double created[ROUNDS], parked[ROUNDS];
    urg_wg *wgs[] = {&million_ready, &million_exit};
    out("# million N=%ld procs=%d\n", n, urg_maxprocs());
    for (int r = 0; r < ROUNDS; r++) {
        million_gate = urg_chan_new(0, 0);
        if (!million_gate) {
            failed("urg_chan_new", -ENOMEM);
            return;
        }
        urg_wg_add(&million_ready, n);
        urg_wg_add(&million_exit, n);
        uint64_t t0 = bench_now_ns();
        long got = spawn_many(n, million_task, NULL, wgs, 2);
        uint64_t t1 = bench_now_ns();
        urg_wg_wait(&million_ready);
        uint64_t t2 = bench_now_ns();
        urg_chan_close(million_gate);
        urg_wg_wait(&million_exit);
        urg_chan_free(million_gate);
        if (got != n) {
            out("# million: only %ld of %ld tasks could be spawned\n", got, n);
            return;
        }
        created[r] = (double)(t1 - t0) / 1e6;
        parked[r] = (double)(t2 - t0) / 1e6;
    }
    out_rounds("million_ms", created, ROUNDS);
    out_rounds("million_parked_ms", parked, ROUNDS);
    out_result("million_ms", bench_median(created, ROUNDS));
    out_result("million_parked_ms", bench_median(parked, ROUNDS));
    /* What a user's program meets: the first round, memory untouched. */
    out_result("million_cold_ms", created[0]);
    out_result("million_parked_cold_ms", parked[0]);
    out_stats("million");
}

static void bench_million(void)
{
    run_main(million_main, 0);
}

/* ------------------------------------------------------------------------ */
/* fib: fork-join fib(32) with a task and a wait group per call down to
 * n = 10 (75023 tasks per fib(32)), so spawn/join dominates and the
 * 2-proc run shows whether work stealing spreads a tree of short tasks. */

enum { FIB_CUT = 10 };

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
    urg_wg *wg;
};

static long fib_par(int n);

static void fib_task(void *p)
{
    struct fib_job *j = p;
    j->r = fib_par(j->n);
    urg_wg_done(j->wg);
}

/* The jobs live on the parent's stack: the parent waits for them before
 * returning, so they outlive every task that writes to them. */
static void fib_sub(struct fib_job *j)
{
    if (j->n < FIB_CUT) {
        j->r = fib_seq(j->n);
        return;
    }
    urg_wg_add(j->wg, 1);
    int rc = urg_go(fib_task, j);
    if (rc != 0) {
        /* Keep the answer right, but the figure is void. */
        failed("urg_go", rc);
        j->r = fib_par(j->n);
        urg_wg_done(j->wg);
    }
}

static long fib_par(int n)
{
    if (n < FIB_CUT)
        return fib_seq(n);
    urg_wg wg;
    urg_wg_init(&wg);
    struct fib_job a = {n - 1, 0, &wg}, b = {n - 2, 0, &wg};
    fib_sub(&a);
    fib_sub(&b);
    urg_wg_wait(&wg);
    return a.r + b.r;
}

static double fib_round(void)
{
    uint64_t t0 = bench_now_ns();
    long r = fib_par(fib_arg());
    double ms = (double)(bench_now_ns() - t0) / 1e6;
    if (r != fib_want(fib_arg())) {
        failed("fib value check", EPROTO);
        return NAN;
    }
    return fail_count ? NAN : ms;
}

static double fib_ms[2];

static void fib_main(void *arg)
{
    int which = (int)(intptr_t)arg;
    const char *key = which == 0 ? "fib1_ms" : "fib2_ms";
    fib_ms[which] = timed(key, fib_round);
    out_stats(key);
}

static void bench_fib(void)
{
    out("# fib(%d), a task per call for n >= %d\n", fib_arg(), FIB_CUT);
    urg_config cfg;
    memset(&cfg, 0, sizeof cfg);
    fib_ms[0] = fib_ms[1] = NAN;
    for (int which = 0; which < 2; which++) {
        cfg.maxprocs = which + 1;
        int rc = urg_run(fib_main, (void *)(intptr_t)which, &cfg);
        if (rc != 0)
            out("# urg_run(maxprocs=%d) failed: %s\n", which + 1, strerror(-rc));
        out_flush();
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 2)
        out("# fib2: only %ld CPU online, the 2-proc figure is meaningless\n", ncpu);
    out_result("fib1_ms", fib_ms[0]);
    out_result("fib2_ms", fib_ms[1]);
    out_result("fib_speedup", fib_ms[0] / fib_ms[1]);
    out_flush();
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
    char banner[160];
    const char *stack = getenv("URG_STACK");
    snprintf(banner, sizeof banner, "urgent %d.%d.%d, preempt=%s, URG_STACK=%s",
             URG_VERSION_MAJOR, URG_VERSION_MINOR, URG_VERSION_PATCH, urg_preempt_mode(),
             stack ? stack : "(default)");
    return bench_main(argc, argv, workloads, sizeof workloads / sizeof workloads[0], banner);
}
