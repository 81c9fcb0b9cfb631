/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/test_errno.c — errno survives asynchronous preemption and
 * migration to another thread.
 *
 * errno is thread-local. A task interrupted between setting it and reading
 * it may resume on another thread, whose errno is someone else's. The
 * trampoline saves the interrupted task's errno and restores it into
 * whichever thread resumes the task. Here many tasks set a value of their
 * own, spin without calls for longer than the quantum (so they are
 * preempted and, with two procs and a crowd, often moved), then read it
 * back. Setter and getter are out of line here; the inline case, where
 * the compiler keeps errno's address in a register across the whole loop
 * (__errno_location is a const function: computed once per function), is
 * test_errno_inline_address_stays_on_its_thread: such a task is never
 * moved by a preemption (docs/preemption.md, contract line 6).
 *
 * The value also survives runtime calls that switch tasks (yield, a
 * blocking channel operation, sleep), in both builds: errno is the task's.
 */
#include "testutil.h"

#define NTASKS 16
#define ROUNDS 20

__attribute__((noinline)) static void set_errno(int v) { errno = v; }
__attribute__((noinline)) static int get_errno(void) { return errno; }

static urg_wg wg;
static uint64_t mismatches, checks;

static void spin_ns(uint64_t ns)
{
    /* Call-free, apart from the clock every 4096 iterations, so that most
     * signals land in this loop rather than in the vDSO. */
    volatile int sink = 0; /* per task: tasks on other procs spin too */
    uint64_t t0 = urg_now();
    for (;;) {
        for (int i = 0; i < 4096; i++)
            sink++;
        if (urg_now() - t0 > ns)
            return;
    }
}

static void errno_task(void *arg)
{
    int mine = 1000 + (int)(intptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        set_errno(mine + r);
        spin_ns(3000000); /* three quanta of 1 ms */
        int got = get_errno();
        __atomic_fetch_add(&checks, 1, __ATOMIC_RELAXED);
        if (got != mine + r)
            __atomic_fetch_add(&mismatches, 1, __ATOMIC_RELAXED);
    }
    urg_wg_done(&wg);
}

static urg_stats st;
/* errno_main: NTASKS of *arg (a task function), then the counters. */
static void errno_main(void *arg)
{
    urg_fn task = *(const urg_fn *)arg;
    urg_wg_add(&wg, NTASKS);
    for (int i = 0; i < NTASKS; i++)
        CHECK(urg_go(task, (void *)(intptr_t)i) == 0);
    urg_wg_wait(&wg);
    urg_stats_get(&st);
}

static void run(int procs)
{
    mismatches = checks = 0;
    tu_reset();
    urg_config cfg = {.maxprocs = procs, .quantum_ns = 1000000};
    assert_int_equal(urg_run(errno_main, &(urg_fn){errno_task}, &cfg), 0);
    assert_checks_ok();
    print_message("%d procs: %llu checks, %llu async preemptions\n", procs,
                  (unsigned long long)checks, (unsigned long long)st.preempt_async);
    assert_int_equal(checks, NTASKS * ROUNDS);
    assert_int_equal(mismatches, 0);
    if (tu_is_async() && !TU_TSAN)
        assert_true(st.preempt_async > 0);
}

static void test_errno_survives_preemption_one_proc(void **state)
{
    (void)state;
    run(1);
}

static void test_errno_survives_preemption_and_migration(void **state)
{
    (void)state;
    run(2);
}

/* ---- errno used inline: its address held across the loop ---------------
 * `errno = v; ...; if (errno != v)` in one function, as strtol's callers
 * write it: gcc computes errno's address once and keeps it in a
 * callee-saved register across the spin (which calls urg_now, a runtime
 * call that never switches). Before the TLS scan, 792 of 2400 such checks
 * read another thread's errno. */

static void errno_inline_task(void *arg)
{
    int mine = 5000 + 100 * (int)(intptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        errno = mine + r;
        spin_ns(3000000);
        int got = errno;
        __atomic_fetch_add(&checks, 1, __ATOMIC_RELAXED);
        if (got != mine + r)
            __atomic_fetch_add(&mismatches, 1, __ATOMIC_RELAXED);
    }
    urg_wg_done(&wg);
}

static void test_errno_inline_address_stays_on_its_thread(void **state)
{
    (void)state;
    mismatches = checks = 0;
    tu_reset();
    urg_config cfg = {.maxprocs = 2, .quantum_ns = 1000000};
    assert_int_equal(urg_run(errno_main, &(urg_fn){errno_inline_task}, &cfg), 0);
    assert_checks_ok();
    print_message("inline errno, 2 procs: %llu of %llu checks read another thread's errno; %llu "
                  "deferred, %llu async\n",
                  (unsigned long long)mismatches, (unsigned long long)checks,
                  (unsigned long long)st.preempt_deferred, (unsigned long long)st.preempt_async);
    assert_int_equal(checks, NTASKS * ROUNDS);
    assert_int_equal(mismatches, 0);
}

/* ---- across runtime calls that switch ---------------------------------- */

#define SW_TASKS  8
#define SW_ROUNDS 300

static urg_chan *sw_chan;
static uint64_t sw_moved; /* rounds where the task came back on another thread */
static int sw_bad_op = -1, sw_bad_got, sw_bad_want; /* the first mismatch */

static void switch_task(void *arg)
{
    int mine = 2000 + 1000 * (int)(intptr_t)arg;
    for (int r = 0; r < SW_ROUNDS; r++) {
        set_errno(mine + r);
        pid_t before = gettid();
        uint64_t v = (uint64_t)r;
        switch (r % 3) {
        case 0:
            urg_yield();
            break;
        case 1: /* unbuffered, shared by all: sends and receives park and hand off */
            if ((intptr_t)arg % 2)
                CHECK(urg_chan_send(sw_chan, &v) == 0);
            else
                CHECK(urg_chan_recv(sw_chan, &v) == 0);
            break;
        default:
            urg_sleep(10000);
            break;
        }
        int got = get_errno();
        if (gettid() != before)
            __atomic_fetch_add(&sw_moved, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&checks, 1, __ATOMIC_RELAXED);
        if (got != mine + r && __atomic_fetch_add(&mismatches, 1, __ATOMIC_RELAXED) == 0) {
            sw_bad_op = r % 3;
            sw_bad_got = got;
            sw_bad_want = mine + r;
        }
    }
    urg_wg_done(&wg);
}

static void switch_main(void *arg)
{
    (void)arg;
    sw_chan = urg_chan_new(sizeof(uint64_t), 0);
    CHECK(sw_chan != NULL);
    urg_wg_add(&wg, SW_TASKS);
    for (int i = 0; i < SW_TASKS; i++)
        CHECK(urg_go(switch_task, (void *)(intptr_t)i) == 0);
    urg_wg_wait(&wg);
    urg_chan_free(sw_chan);
}

static void test_errno_survives_switching_calls(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++) {
        mismatches = checks = sw_moved = 0;
        RUN_AT(switch_main, NULL, tu_procs_list[i]);
        print_message("%d procs: %llu checks, %llu came back on another thread\n", tu_procs_list[i],
                      (unsigned long long)checks, (unsigned long long)sw_moved);
        assert_int_equal(checks, SW_TASKS * SW_ROUNDS);
        if (mismatches)
            fail_msg("%llu mismatches; the first after %s: errno %d, want %d",
                     (unsigned long long)mismatches,
                     sw_bad_op == 0   ? "urg_yield"
                     : sw_bad_op == 1 ? "a channel operation"
                                      : "urg_sleep",
                     sw_bad_got, sw_bad_want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errno_survives_preemption_one_proc),
        cmocka_unit_test(test_errno_survives_preemption_and_migration),
        cmocka_unit_test(test_errno_survives_switching_calls),
        cmocka_unit_test(test_errno_inline_address_stays_on_its_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
