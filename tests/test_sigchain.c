/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/test_sigchain.c — the program's own SIGURG handling survives the
 * runtime's use of SIGURG.
 *
 * The async build installs a SIGURG handler for preemption. A SIGURG it
 * did not send (here: from another process) must reach the handler the
 * program had installed before urg_run, SIG_IGN must still mean ignore,
 * the program's disposition must be back in place after urg_run returns,
 * and a flood of outside SIGURGs while tasks are being preempted must
 * not crash, deadlock or corrupt anything. The cooperative build installs
 * no SIGURG handler; the same assertions hold there trivially.
 */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

static int user_handled; /* atomics: the handler runs on any thread */

static void user_handler(int sig, siginfo_t *info, void *uctx)
{
    (void)sig;
    (void)uctx;
    if (info && info->si_code == SI_USER)
        __atomic_fetch_add(&user_handled, 1, __ATOMIC_RELAXED);
}

/* A child process sending SIGURG to us every `gap_us` for `ms`. */
static pid_t start_sender(int gap_us, int ms)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            kill(parent, SIGURG);
            if (gap_us) {
                struct timespec gap = {0, gap_us * 1000L};
                nanosleep(&gap, NULL);
            }
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > ms)
                _exit(0);
        }
    }
    return pid;
}

/* Tasks: hogs (so that the runtime's own SIGURGs flow) and checksummers. */
static volatile int stop;
static urg_wg wg;
static uint64_t sums_bad, sums_done;

static void hog(void *arg)
{
    (void)arg;
    volatile uint64_t n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
        n++;
    urg_wg_done(&wg);
}

static uint64_t checksum(uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 200000; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
}

static uint64_t expected_sum;

static void summer(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        if (checksum(42) != expected_sum)
            __atomic_fetch_add(&sums_bad, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&sums_done, 1, __ATOMIC_RELAXED);
    }
    urg_wg_done(&wg);
}

static urg_stats st;
static int run_ms;

static void busy_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, 4);
    CHECK(urg_go(hog, NULL) == 0);
    CHECK(urg_go(hog, NULL) == 0);
    CHECK(urg_go(summer, NULL) == 0);
    CHECK(urg_go(summer, NULL) == 0);
    urg_wg_wait(&wg);
    urg_stats_get(&st);
}

/* A plain thread ends the run: in the cooperative build the hogs keep
 * both procs, so nothing inside the runtime could. */
static void *stopper(void *arg)
{
    (void)arg;
    /* The outside SIGURGs land on this thread too, and nanosleep is never
     * restarted after a handler: sleep to an absolute deadline. */
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += run_ms / 1000;
    dl.tv_nsec += (run_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL) == EINTR) {
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void run_busy(int ms)
{
    stop = 0;
    sums_bad = sums_done = 0;
    run_ms = ms;
    tu_reset();
    pthread_t t;
    pthread_create(&t, NULL, stopper, NULL);
    urg_config cfg = {.maxprocs = 2, .quantum_ns = 1000000};
    int r = urg_run(busy_main, NULL, &cfg);
    pthread_join(t, NULL);
    assert_int_equal(r, 0);
    assert_checks_ok();
}

static void test_sigchain_program_handler_gets_outside_sigurg(void **state)
{
    (void)state;
    expected_sum = checksum(42);
    struct sigaction sa = {0}, old;
    sa.sa_sigaction = user_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGURG, &sa, &old), 0);
    __atomic_store_n(&user_handled, 0, __ATOMIC_RELAXED);
    pid_t sender = start_sender(2000, 600);
    run_busy(800);
    int status;
    waitpid(sender, &status, 0);
    int handled = __atomic_load_n(&user_handled, __ATOMIC_RELAXED);
    print_message("program handler saw %d outside SIGURGs; runtime: %llu signals, %llu async\n",
                  handled, (unsigned long long)st.preempt_signals,
                  (unsigned long long)st.preempt_async);
    /* ThreadSanitizer holds a signal until its thread next enters an
     * intercepted call, and a spinning hog never does: fewer get through. */
    assert_true(handled > (TU_TSAN ? 0 : 10));
    /* Never the runtime's own: those are SI_TKILL and never forwarded. */
    assert_true(handled <= 300 + 10);
    assert_int_equal(sums_bad, 0);
    if (tu_is_async() && !TU_TSAN)
        assert_true(st.preempt_async > 0);
    /* After urg_run, the program's handler is in place again. */
    struct sigaction cur;
    assert_int_equal(sigaction(SIGURG, NULL, &cur), 0);
    assert_ptr_equal(cur.sa_sigaction, user_handler);
    sigaction(SIGURG, &old, NULL);
}

static void test_sigchain_ignored_stays_ignored(void **state)
{
    (void)state;
    expected_sum = checksum(42);
    struct sigaction sa = {0}, old;
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGURG, &sa, &old), 0);
    pid_t sender = start_sender(1000, 300);
    run_busy(400);
    int status;
    waitpid(sender, &status, 0);
    assert_int_equal(sums_bad, 0);
    struct sigaction cur;
    assert_int_equal(sigaction(SIGURG, NULL, &cur), 0);
    assert_true(cur.sa_handler == SIG_IGN);
    sigaction(SIGURG, &old, NULL);
}

static void test_sigchain_flood_does_not_corrupt(void **state)
{
    (void)state;
    expected_sum = checksum(42);
    struct sigaction sa = {0}, old;
    sa.sa_handler = SIG_DFL; /* SIGURG's default is to ignore it */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, &old);
    /* Two processes, each pausing 50 us between signals: tens of
     * thousands of outside SIGURGs per second, without the senders
     * themselves taking every CPU of this 2-core machine. */
    pid_t senders[2] = {start_sender(50, 1500), start_sender(50, 1500)};
    run_busy(1500);
    for (int i = 0; i < 2; i++) {
        int status;
        waitpid(senders[i], &status, 0);
    }
    print_message("%llu checksums, %llu requests, %llu async preemptions under the flood\n",
                  (unsigned long long)sums_done, (unsigned long long)st.preempt_requests,
                  (unsigned long long)st.preempt_async);
    assert_int_equal(sums_bad, 0);
    if (tu_is_async() && !TU_TSAN)
        assert_true(sums_done > 0); /* the hogs are preempted, so summers run */
    sigaction(SIGURG, &old, NULL);
}

/* ---- a task that leaves SIGURG blocked on its thread ----
 * A task blocks SIGURG (pthread_sigmask) and returns, leaving its thread
 * with the signal blocked. The thread must be repaired at its next switch:
 * otherwise every preemption request sent there stays pending in the
 * kernel, and a hog that lands on the thread is never preempted (it took
 * the only proc for its whole run, 0 preemptions). 1 proc, two hogs of 40
 * quanta each: the second must get the proc before the first is done. */

static int blocker_done;
static uint64_t hog_first_done, hog_second_start;
static int hogs_started;

static void sigurg_blocker(void *arg)
{
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGURG);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    __atomic_store_n(&blocker_done, 1, __ATOMIC_RELEASE);
    urg_wg_done(&wg);
}

static uint64_t mono_ns(void) /* no runtime call: the hog must not yield */
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void blocked_hog(void *arg)
{
    (void)arg;
    if (__atomic_fetch_add(&hogs_started, 1, __ATOMIC_ACQ_REL) == 1)
        __atomic_store_n(&hog_second_start, mono_ns(), __ATOMIC_RELEASE);
    uint64_t end = mono_ns() + 40 * 1000000ull; /* 40 quanta of 1 ms */
    while (mono_ns() < end)
        for (volatile int i = 0; i < 1000; i++)
            ;
    uint64_t zero = 0;
    __atomic_compare_exchange_n(&hog_first_done, &zero, mono_ns(), false, __ATOMIC_ACQ_REL,
                                __ATOMIC_ACQUIRE);
    urg_wg_done(&wg);
}

static void blocked_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, 1);
    urg_go(sigurg_blocker, NULL);
    urg_wg_wait(&wg);
    urg_wg_add(&wg, 2);
    urg_go(blocked_hog, NULL);
    urg_go(blocked_hog, NULL);
    urg_wg_wait(&wg);
    urg_stats_get(&st);
}

static void test_sigchain_blocked_sigurg_is_repaired(void **state)
{
    (void)state;
    urg_config cfg = {.maxprocs = 1, .quantum_ns = 1000000};
    assert_int_equal(urg_run(blocked_main, NULL, &cfg), 0);
    assert_true(blocker_done);
    print_message("second hog started %+.1f ms after the first finished; %llu async preemptions\n",
                  ((double)hog_second_start - (double)hog_first_done) / 1e6,
                  (unsigned long long)st.preempt_async);
    if (tu_is_async() && !TU_TSAN) {
        assert_true(st.preempt_async > 0);
        assert_true(hog_second_start < hog_first_done); /* they shared the proc */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigchain_program_handler_gets_outside_sigurg),
        cmocka_unit_test(test_sigchain_ignored_stays_ignored),
        cmocka_unit_test(test_sigchain_flood_does_not_corrupt),
        cmocka_unit_test(test_sigchain_blocked_sigurg_is_repaired),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
