/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_run.c — urg_run's lifecycle: starting, ending while tasks are
 * still alive, and starting again in the same process.
 *
 * A library cannot end the process when main returns, as Go does, so
 * urg_run has to take everything down itself: stop its threads, release
 * tasks that are still blocked (unlinking them from the user's channels,
 * mutexes and wait groups, which outlive the run), free stacks, close the
 * poller. Mistakes there do not fail the run that made them; they show up
 * runs later as a leaked thread or descriptor, growing memory, or a
 * use-after-free when the program touches a channel a dead task was
 * queued on. So:
 *   - 100 runs in a row with a mixed workload (and tasks left blocked at
 *     the end of each): threads and descriptors back to baseline, the
 *     number of mappings flat, RSS growth bounded;
 *   - tasks blocked at the end on every kind of object are released, and
 *     the objects work afterwards, from a plain thread and in a new run;
 *   - urg_run returns promptly when main returns while other tasks are
 *     runnable, looping on runtime calls, or sleeping (and, in the async
 *     build, when they spin without any runtime call: SIGURG stops them);
 *   - a task blocked in a bracketed read(2) when main returns: urg_run
 *     returns within about a second, and when the read later completes
 *     the abandoned thread ends quietly (in a child process, since the
 *     runtime deliberately leaks that task's stack).
 * Every scenario runs at 1 proc and at several.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

static int baseline_threads, baseline_fds;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define MS  (1000ull * 1000ull)
#define SEC (1000ull * MS)

/* ---- a workload that touches every subsystem once ---- */

enum { PINGS = 50, WORKERS = 16 };

struct workload {
    urg_chan *ping, *pong, *stuck;
    urg_mutex mu;
    urg_wg wg;
    int pipefd[2];
    long counter;
};

static void wl_ponger(void *arg)
{
    struct workload *w = arg;
    int v;
    while (urg_chan_recv(w->ping, &v) == 0)
        CHECK(urg_chan_send(w->pong, &v) == 0);
}

static void wl_worker(void *arg)
{
    struct workload *w = arg;
    for (int i = 0; i < 10; i++) {
        urg_mutex_lock(&w->mu);
        w->counter++;
        urg_mutex_unlock(&w->mu);
        if (i % 3 == 0)
            urg_yield();
    }
    urg_sleep(100 * 1000);
    urg_wg_done(&w->wg);
}

static void wl_reader(void *arg)
{
    struct workload *w = arg;
    char c = 0;
    CHECK(urg_read(w->pipefd[0], &c, 1) == 1);
    CHECK(c == 'x');
    urg_wg_done(&w->wg);
}

/* Left blocked when main returns: the run must clean them up. */
static void wl_stuck(void *arg)
{
    struct workload *w = arg;
    int v;
    urg_chan_recv(w->stuck, &v);
}

static void workload_main(void *arg)
{
    struct workload *w = arg;
    urg_wg_add(&w->wg, WORKERS + 1);
    CHECK(urg_go(wl_ponger, w) == 0);
    CHECK(urg_go(wl_reader, w) == 0);
    for (int i = 0; i < WORKERS; i++)
        CHECK(urg_go(wl_worker, w) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(urg_go(wl_stuck, w) == 0);
    for (int i = 0; i < PINGS; i++) {
        int v = i, back = -1;
        CHECK(urg_chan_send(w->ping, &v) == 0);
        CHECK(urg_chan_recv(w->pong, &back) == 0);
        CHECK(back == i);
    }
    CHECK(urg_write(w->pipefd[1], "x", 1) == 1);
    urg_wg_wait(&w->wg);
    CHECK(w->counter == WORKERS * 10);
    urg_chan_close(w->ping);
}

static void run_workload(int procs)
{
    struct workload w;
    memset(&w, 0, sizeof(w));
    w.ping = urg_chan_new(sizeof(int), 0);
    w.pong = urg_chan_new(sizeof(int), 0);
    w.stuck = urg_chan_new(sizeof(int), 0);
    assert_non_null(w.ping);
    assert_non_null(w.pong);
    assert_non_null(w.stuck);
    assert_int_equal(pipe(w.pipefd), 0);
    tu_run(workload_main, &w, procs);
    urg_chan_free(w.ping);
    urg_chan_free(w.pong);
    urg_chan_free(w.stuck);
    close(w.pipefd[0]);
    close(w.pipefd[1]);
}

static void test_run_repeated_runs_do_not_leak(void **state)
{
    (void)state;
    static const int procs[] = {1, 2, 4};
    tu_reset();
    /* Warm up: first-use allocations (libunwind, malloc arenas of new
     * threads, the sanitizer's own) are not leaks. */
    for (int i = 0; i < 6; i++)
        run_workload(procs[i % 3]);
    int threads0 = tu_threads(), fds0 = tu_open_fds(), maps0 = tu_mappings();
    long rss0 = tu_rss_kib();
    int maps_mid = 0;
    for (int i = 0; i < 100; i++) {
        run_workload(procs[i % 3]);
        if (i == 49)
            maps_mid = tu_mappings();
    }
    assert_checks_ok();
    int maps1 = tu_mappings();
    long rss1 = tu_rss_kib();
    print_message("after 100 runs: threads %d->%d fds %d->%d mappings %d->%d->%d "
                  "rss %ld->%ld KiB\n",
                  threads0, tu_threads(), fds0, tu_open_fds(), maps0, maps_mid, maps1, rss0, rss1);
    assert_int_equal(tu_threads(), baseline_threads);
    assert_int_equal(threads0, baseline_threads);
    assert_int_equal(tu_open_fds(), fds0);
    assert_int_equal(fds0, baseline_fds);
    /* A leak of one mapping per run would add 50 in each half. Under a
     * sanitizer freed blocks sit in a quarantine and new ones come from
     * fresh mappings, so neither mappings nor RSS mean anything there. */
    if (!TU_SANITIZED) {
        assert_true(maps1 <= maps0 + 4);
        assert_true(maps1 <= maps_mid + 2);
        assert_true(rss1 - rss0 < 16 * 1024);
    }
}

/* ---- tasks blocked at the end, and the objects they blocked on ---- */

struct leftovers {
    urg_chan *recv_on; /* unbuffered, nobody sends */
    urg_chan *send_on; /* unbuffered, nobody receives */
    urg_chan *full;    /* capacity 1, full */
    urg_chan *sel_a, *sel_b;
    urg_mutex mu; /* held by main when it returns */
    urg_wg wg;    /* count 1, never done during the run */
    int pipefd[2];
    int started;       /* atomic */
    uint64_t reuse_id; /* atomic: reuse_recv's task id */
};

enum { LEFTOVER_TASKS = 11 };

static void lo_started(struct leftovers *lo)
{
    __atomic_fetch_add(&lo->started, 1, __ATOMIC_SEQ_CST);
}

static void lo_recv(void *arg)
{
    struct leftovers *lo = arg;
    int v;
    lo_started(lo);
    urg_chan_recv(lo->recv_on, &v);
    CHECK(!"recv on an abandoned channel returned");
}

static void lo_send(void *arg)
{
    struct leftovers *lo = arg;
    int v = 7;
    lo_started(lo);
    urg_chan_send(lo->send_on, &v);
    CHECK(!"send on an abandoned channel returned");
}

static void lo_send_full(void *arg)
{
    struct leftovers *lo = arg;
    int v = 8;
    lo_started(lo);
    urg_chan_send(lo->full, &v);
    CHECK(!"send on a full channel returned");
}

static void lo_select(void *arg)
{
    struct leftovers *lo = arg;
    int in = 0, out = 9;
    urg_select_case cs[2] = {
        {.chan = lo->sel_a, .op = URG_SELECT_RECV, .elem = &in},
        {.chan = lo->sel_b, .op = URG_SELECT_SEND, .elem = &out},
    };
    lo_started(lo);
    urg_select(cs, 2, URG_FOREVER);
    CHECK(!"select returned");
}

static void lo_select_timeout(void *arg)
{
    struct leftovers *lo = arg;
    int in = 0;
    urg_select_case cs[1] = {{.chan = lo->sel_a, .op = URG_SELECT_RECV, .elem = &in}};
    lo_started(lo);
    urg_select(cs, 1, 3600 * SEC);
    CHECK(!"select with a timeout returned");
}

static void lo_mutex(void *arg)
{
    struct leftovers *lo = arg;
    lo_started(lo);
    urg_mutex_lock(&lo->mu);
    CHECK(!"lock of a held mutex returned");
}

static void lo_wg(void *arg)
{
    struct leftovers *lo = arg;
    lo_started(lo);
    urg_wg_wait(&lo->wg);
    CHECK(!"wait group wait returned");
}

static void lo_sleep(void *arg)
{
    struct leftovers *lo = arg;
    lo_started(lo);
    urg_sleep(3600 * SEC);
    CHECK(!"an hour went by");
}

static void lo_read(void *arg)
{
    struct leftovers *lo = arg;
    char c;
    lo_started(lo);
    urg_read(lo->pipefd[0], &c, 1);
    CHECK(!"read of an empty pipe returned");
}

static void lo_main(void *arg)
{
    struct leftovers *lo = arg;
    int one = 1;
    CHECK(urg_chan_send(lo->full, &one) == 0);
    urg_mutex_lock(&lo->mu);
    urg_wg_add(&lo->wg, 1);
    urg_fn fns[] = {lo_recv,  lo_send,  lo_send_full, lo_select, lo_select_timeout,
                    lo_mutex, lo_mutex, lo_mutex,     lo_wg,     lo_sleep,
                    lo_read};
    _Static_assert(sizeof(fns) / sizeof(fns[0]) == LEFTOVER_TASKS, "task count");
    for (size_t i = 0; i < LEFTOVER_TASKS; i++)
        CHECK(urg_go(fns[i], lo) == 0);
    uint64_t deadline = urg_now() + 5 * SEC;
    while (__atomic_load_n(&lo->started, __ATOMIC_SEQ_CST) < LEFTOVER_TASKS && urg_now() < deadline)
        urg_sleep(MS);
    CHECK(__atomic_load_n(&lo->started, __ATOMIC_SEQ_CST) == LEFTOVER_TASKS);
    /* From "started" to parked: the run ends with every one of them
     * blocked on its object. */
    tu_await_parked_n(WAIT_CHAN_RECV, 1);  /* lo_recv */
    tu_await_parked_n(WAIT_CHAN_SEND, 2);  /* lo_send, lo_send_full */
    tu_await_parked_n(WAIT_SELECT, 2);     /* lo_select, lo_select_timeout */
    tu_await_parked_n(WAIT_MUTEX, 3);      /* lo_mutex x3 */
    tu_await_parked_n(WAIT_WG, 1);         /* lo_wg */
    tu_await_parked_n(WAIT_SLEEP, 1);      /* lo_sleep */
    tu_await_parked_n(WAIT_IO, 1);         /* lo_read */
}

/* A second run that uses the same objects normally. */
static void reuse_recv(void *arg)
{
    struct leftovers *lo = arg;
    int v = 0;
    __atomic_store_n(&lo->reuse_id, urg_task_id(), __ATOMIC_RELEASE);
    CHECK(urg_chan_recv(lo->recv_on, &v) == 0);
    CHECK(v == 42);
    urg_mutex_lock(&lo->mu);
    urg_mutex_unlock(&lo->mu);
    urg_wg_done(&lo->wg);
}

static void reuse_main(void *arg)
{
    struct leftovers *lo = arg;
    urg_wg_add(&lo->wg, 1);
    urg_mutex_lock(&lo->mu);
    CHECK(urg_go(reuse_recv, lo) == 0);
    int v = 42;
    CHECK(urg_chan_send(lo->recv_on, &v) == 0);
    /* The unlock hands the mutex to a parked waiter. */
    tu_await_parked(__atomic_load_n(&lo->reuse_id, __ATOMIC_ACQUIRE), WAIT_MUTEX);
    urg_mutex_unlock(&lo->mu);
    urg_wg_wait(&lo->wg);
    char c = 0;
    CHECK(urg_write(lo->pipefd[1], "y", 1) == 1);
    CHECK(urg_read(lo->pipefd[0], &c, 1) == 1);
    CHECK(c == 'y');
}

static void run_leftovers(int procs)
{
    tu_reset();
    struct leftovers lo;
    memset(&lo, 0, sizeof(lo));
    lo.recv_on = urg_chan_new(sizeof(int), 0);
    lo.send_on = urg_chan_new(sizeof(int), 0);
    lo.full = urg_chan_new(sizeof(int), 1);
    lo.sel_a = urg_chan_new(sizeof(int), 0);
    lo.sel_b = urg_chan_new(sizeof(int), 0);
    assert_int_equal(pipe(lo.pipefd), 0);

    uint64_t t0 = now_ns();
    tu_run(lo_main, &lo, procs);
    uint64_t took = now_ns() - t0;
    assert_checks_ok();
    assert_true(took < 10 * SEC);
    assert_int_equal(tu_threads(), baseline_threads);

    /* No abandoned task is still queued on anything: a try on the other
     * side finds nobody (it would otherwise complete with a dead task). */
    int v = 5;
    assert_int_equal(urg_chan_try_send(lo.recv_on, &v), -EAGAIN);
    assert_int_equal(urg_chan_try_recv(lo.send_on, &v), -EAGAIN);
    assert_int_equal(urg_chan_len(lo.full), 1);
    v = 0;
    assert_int_equal(urg_chan_try_recv(lo.full, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(urg_chan_len(lo.full), 0); /* the dead sender's 8 did not move in */
    assert_int_equal(urg_chan_try_recv(lo.full, &v), -EAGAIN);
    assert_int_equal(urg_chan_try_send(lo.sel_a, &v), -EAGAIN);
    assert_int_equal(urg_chan_try_recv(lo.sel_b, &v), -EAGAIN);

    /* The mutex is still held (by main, which is gone): unlocking it
     * wakes nobody, and it works normally afterwards. */
    assert_int_equal(urg_mutex_trylock(&lo.mu), -EBUSY);
    urg_mutex_unlock(&lo.mu);
    assert_int_equal(urg_mutex_trylock(&lo.mu), 0);
    urg_mutex_unlock(&lo.mu);
    urg_mutex_lock(&lo.mu);
    urg_mutex_unlock(&lo.mu);

    /* The wait group's abandoned waiter no longer counts. */
    urg_wg_done(&lo.wg);
    urg_wg_wait(&lo.wg);
    urg_wg_add(&lo.wg, 1);
    urg_wg_done(&lo.wg);
    urg_wg_wait(&lo.wg);

    /* The pipe's reader is gone; data written now just sits there. */
    assert_int_equal(write(lo.pipefd[1], "z", 1), 1);
    char c = 0;
    assert_int_equal(read(lo.pipefd[0], &c, 1), 1);
    assert_int_equal(c, 'z');

    tu_run(reuse_main, &lo, procs);
    assert_checks_ok();

    /* Freeing channels that abandoned tasks were queued on. */
    urg_chan_free(lo.recv_on);
    urg_chan_free(lo.send_on);
    urg_chan_free(lo.full);
    urg_chan_free(lo.sel_a);
    urg_chan_free(lo.sel_b);
    close(lo.pipefd[0]);
    close(lo.pipefd[1]);
    assert_int_equal(tu_threads(), baseline_threads);
    assert_int_equal(tu_open_fds(), baseline_fds);
}

static void test_run_blocked_tasks_released_objects_usable_1proc(void **state)
{
    (void)state;
    run_leftovers(1);
}

static void test_run_blocked_tasks_released_objects_usable_4procs(void **state)
{
    (void)state;
    run_leftovers(4);
}

/* ---- main returns while others are busy ---- */

static uint64_t busy_spins; /* atomic */

static void busy_yield(void *arg)
{
    (void)arg;
    for (;;)
        urg_yield();
}

static void busy_checkpoint(void *arg)
{
    (void)arg;
    for (;;) {
        __atomic_fetch_add(&busy_spins, 1, __ATOMIC_RELAXED);
        urg_checkpoint();
    }
}

static void busy_sleep(void *arg)
{
    (void)arg;
    urg_sleep(30 * SEC);
}

static void busy_spawner(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        if (urg_go(busy_sleep, NULL) != 0)
            return;
        urg_yield();
    }
}

static void busy_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 4; i++) {
        CHECK(urg_go(busy_yield, NULL) == 0);
        CHECK(urg_go(busy_checkpoint, NULL) == 0);
        CHECK(urg_go(busy_sleep, NULL) == 0);
    }
    CHECK(urg_go(busy_spawner, NULL) == 0);
    urg_sleep(20 * MS);
}

static void run_busy(int procs)
{
    tu_reset();
    struct tu_stall_meter meter;
    tu_stall_meter_start(&meter);
    uint64_t t0 = now_ns();
    tu_run(busy_main, NULL, procs);
    uint64_t took = now_ns() - t0;
    uint64_t stall = tu_stall_meter_stop(&meter);
    assert_checks_ok();
    print_message("procs=%d: urg_run returned %.1f ms after it started (main ran ~20 ms; a "
                  "thread was kept off its CPU %.1f ms)\n",
                  procs, (double)took / 1e6, (double)stall / 1e6);
    /* The shutdown grace period is 200 ms; a second is generous, beyond
     * what the OS withheld. */
    assert_true(took < 1 * SEC + stall + (TU_SANITIZED ? 2 * SEC : 0));
    assert_int_equal(tu_threads(), baseline_threads);
}

static void test_run_returns_promptly_with_busy_tasks(void **state)
{
    (void)state;
    run_busy(1);
    run_busy(2);
    run_busy(4);
}

/* Async build only: tasks that never make a runtime call are stopped by
 * SIGURG at shutdown, so no thread is abandoned. In a child: if that
 * failed, the spinning threads would be left burning CPU. */
static void hog(void *arg)
{
    volatile uint64_t *n = arg;
    for (;;)
        (*n)++;
}

static volatile uint64_t hog_count;

static void hog_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        CHECK(urg_go(hog, (void *)&hog_count) == 0);
    urg_sleep(30 * MS);
}

static int hog_child(void *arg)
{
    int procs = (int)(intptr_t)arg;
    int threads0 = tu_threads();
    struct tu_stall_meter meter;
    tu_stall_meter_start(&meter);
    uint64_t t0 = now_ns();
    urg_config cfg = {.maxprocs = procs};
    if (urg_run(hog_main, NULL, &cfg) != 0)
        return 2;
    uint64_t took = now_ns() - t0;
    uint64_t stall = tu_stall_meter_stop(&meter);
    printf("procs=%d: urg_run returned %.1f ms after it started (a thread was kept off its CPU "
           "%.1f ms)\n",
           procs, (double)took / 1e6, (double)stall / 1e6);
    if (took > 1 * SEC + stall + (TU_SANITIZED ? 2 * SEC : 0))
        return 3;
    if (tu_threads() != threads0)
        return 4;
    if (tu_failures)
        return 5;
    return 0;
}

static void test_run_returns_promptly_with_hogs_async(void **state)
{
    (void)state;
    if (!tu_is_async())
        skip(); /* cooperative: a hog is abandoned by design (run.c) */
    static const int procs[] = {1, 2};
    for (int i = 0; i < 2; i++) {
        struct tu_child c;
        tu_in_child(hog_child, (void *)(intptr_t)procs[i], 20, &c);
        if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
            fail_msg("procs=%d: child status 0x%x (2: run failed, 3: slow, 4: threads left, "
                     "5: check failed); output:\n%s",
                     procs[i], c.status, c.out);
        assert_null(strstr(c.out, "abandoned"));
        print_message("%s", c.out);
    }
}

/* ---- a run after a run that abandoned tasks ----
 *
 * The stack memory of abandoned tasks is unmapped at the end of their run
 * and, typically, mapped again at the same addresses by the next one. The
 * next run must not notice (in an ASan build: their stale poison is
 * cleared when stacks are handed out and before arenas are unmapped). */

/* A frame with an array: ASan gives it redzones. */
static __attribute__((noinline)) int framed(int n)
{
    volatile int buf[32];
    for (int i = 0; i < 32; i++)
        buf[i] = n + i;
    return buf[n % 32];
}

static void framed_task(void *arg)
{
    urg_wg *wg = arg;
    CHECK(framed(3) == 6);
    urg_wg_done(wg);
}

static void reuse_hogs_main(void *arg)
{
    (void)arg;
    if (tu_is_async())
        for (int i = 0; i < 3; i++)
            CHECK(urg_go(hog, (void *)&hog_count) == 0);
    urg_wg wg = URG_WG_INITIALIZER;
    urg_wg_add(&wg, 20);
    for (int i = 0; i < 20; i++)
        CHECK(urg_go(framed_task, &wg) == 0);
    urg_wg_wait(&wg);
    urg_sleep(30 * MS); /* hogs: sysmon preempts them (SIGURG) */
}

static int stacks_reused_child(void *arg)
{
    (void)arg;
    struct leftovers lo;
    memset(&lo, 0, sizeof(lo));
    lo.recv_on = urg_chan_new(sizeof(int), 0);
    lo.send_on = urg_chan_new(sizeof(int), 0);
    lo.full = urg_chan_new(sizeof(int), 1);
    lo.sel_a = urg_chan_new(sizeof(int), 0);
    lo.sel_b = urg_chan_new(sizeof(int), 0);
    if (pipe(lo.pipefd) != 0)
        return 2;
    urg_config cfg = {.maxprocs = 1};
    if (urg_run(lo_main, &lo, &cfg) != 0) /* abandons eleven parked tasks */
        return 3;
    for (int i = 0; i < 5; i++)
        if (urg_run(reuse_hogs_main, NULL, &cfg) != 0)
            return 4;
    return tu_failures ? 5 : 0;
}

static void test_run_after_abandoning_run(void **state)
{
    (void)state;
    struct tu_child c;
    tu_in_child(stacks_reused_child, NULL, 30, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("child status 0x%x; output:\n%s", c.status, c.out);
}

/* ---- a task blocked in a bracketed read(2) when main returns ---- */

static int sys_pipe[2];
static int sys_entered; /* atomic */
static uint64_t sys_id; /* atomic: sys_reader's task id */

static void sys_reader(void *arg)
{
    (void)arg;
    char c;
    __atomic_store_n(&sys_id, urg_task_id(), __ATOMIC_RELEASE);
    urg_syscall_enter();
    __atomic_store_n(&sys_entered, 1, __ATOMIC_SEQ_CST);
    ssize_t n = read(sys_pipe[0], &c, 1);
    urg_syscall_exit(); /* an abandoned task stops here */
    (void)n;
    /* Reaching this line would mean the task ran on after its run ended. */
    static const char msg[] = "BUG: abandoned task resumed\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
}

static void sys_main(void *arg)
{
    (void)arg;
    CHECK(urg_go(sys_reader, NULL) == 0);
    /* Main returns with the reader blocked in its call: the task is in
     * the bracket (G_SYSCALL) and sysmon has judged the call blocking and
     * taken its P (at one proc main could not run otherwise). */
    tu_await_flag(&sys_entered, "sys_reader inside urg_syscall_enter");
    tu_await_status(__atomic_load_n(&sys_id, __ATOMIC_ACQUIRE), G_SYSCALL,
                 "sys_reader in a syscall (G_SYSCALL)");
    tu_await_syscall_handoffs(1);
}

static void after_main(void *arg)
{
    (void)arg;
    urg_chan *c = urg_chan_new(sizeof(int), 1);
    int v = 3;
    CHECK(urg_chan_send(c, &v) == 0);
    CHECK(urg_chan_recv(c, &v) == 0 && v == 3);
    urg_chan_free(c);
}

static int syscall_child(void *arg)
{
    int procs = (int)(intptr_t)arg;
    int threads0 = tu_threads();
    if (pipe(sys_pipe) != 0)
        return 2;
    urg_config cfg = {.maxprocs = procs};
    uint64_t t0 = now_ns();
    if (urg_run(sys_main, NULL, &cfg) != 0)
        return 3;
    uint64_t took = now_ns() - t0;
    if (!__atomic_load_n(&sys_entered, __ATOMIC_SEQ_CST))
        return 4;
    if (took > 1500 * MS + (TU_SANITIZED ? 2 * SEC : 0))
        return 5;
    /* The read completes now; its thread must end without touching the
     * finished run (or crashing this process). */
    if (write(sys_pipe[1], "x", 1) != 1)
        return 6;
    uint64_t deadline = now_ns() + 5 * SEC;
    while (tu_threads() != threads0 && now_ns() < deadline)
        usleep(1000);
    if (tu_threads() != threads0)
        return 7;
    /* And the runtime still works. */
    if (urg_run(after_main, NULL, &cfg) != 0)
        return 8;
    if (tu_threads() != threads0)
        return 9;
    if (tu_failures)
        return 10;
    return 0;
}

static void test_run_returns_with_task_blocked_in_syscall(void **state)
{
    (void)state;
    static const int procs[] = {1, 2};
    for (int i = 0; i < 2; i++) {
        struct tu_child c;
        tu_in_child(syscall_child, (void *)(intptr_t)procs[i], 30, &c);
        if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
            fail_msg("procs=%d: child status 0x%x; output:\n%s", procs[i], c.status, c.out);
        assert_null(strstr(c.out, "BUG:"));
    }
}

static void noop(void *arg) { (void)arg; }

int main(void)
{
    /* The first run opens descriptors that live as long as the process
     * (libunwind's memory-validation pipe): not a per-run leak, so the
     * baseline is taken after one. */
    urg_config cfg = {.maxprocs = 2};
    if (urg_run(noop, NULL, &cfg) != 0)
        return 1;
    baseline_threads = tu_threads();
    baseline_fds = tu_open_fds();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_blocked_tasks_released_objects_usable_1proc),
        cmocka_unit_test(test_run_blocked_tasks_released_objects_usable_4procs),
        cmocka_unit_test(test_run_returns_promptly_with_busy_tasks),
        cmocka_unit_test(test_run_returns_promptly_with_hogs_async),
        cmocka_unit_test(test_run_returns_with_task_blocked_in_syscall),
        cmocka_unit_test(test_run_repeated_runs_do_not_leak),
        cmocka_unit_test(test_run_after_abandoning_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
