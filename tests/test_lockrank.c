/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_lockrank.c — the run-time check of the lock order (runtime/lock.c,
 * built with -DURG_LOCKRANK=ON; CI's UBSan variant).
 *
 * Why these tests: the checker is only useful if it fires, and only
 * bearable if it never fires on a legal program. So: locks of one MANY
 * rank (channels) taken in increasing address order pass, however many
 * (select may lock thousands of channels, past the held list's 16
 * entries); released in any order they leave the thread's record clean.
 * And each rule that can be broken is broken once, in a forked child that
 * must die with "fatal error: lock ordering problem" and the held list:
 * two channel locks taken downwards, a channel lock below a run of twenty,
 * a rank taken after a higher one, two locks of a ONE rank, a lock
 * released by a thread that does not hold it, and sched.stw (the
 * stop-the-world mutex) taken while a ranked lock is held.
 *
 * The locks are test-local urg__lock_t words given ranks with
 * urg__lock_init, so no runtime structure is disturbed. Without
 * URG_LOCKRANK the checks compile to nothing: the death tests skip and
 * the legal sequences still run (the locks still lock).
 */
#include "testutil.h"

#include "runtime/lockrank.h"

#define NLOCKS 40

/* Increasing addresses, as select's sorted channels. */
static urg__lock_t chans[NLOCKS];
static urg__lock_t timers[2];
static urg__lock_t schedlk;

static void init_locks(void)
{
    for (int i = 0; i < NLOCKS; i++)
        urg__lock_init(&chans[i], URG_RANK_CHAN);
    urg__lock_init(&timers[0], URG_RANK_TIMERS);
    urg__lock_init(&timers[1], URG_RANK_TIMERS);
    urg__lock_init(&schedlk, URG_RANK_SCHED);
}

static void skip_without_lockrank(void)
{
#ifndef URG_LOCKRANK
    skip();
#endif
}

/* ---- legal sequences ---------------------------------------------------- */

static void test_lockrank_address_order_run_past_16(void **state)
{
    (void)state;
    init_locks();
    /* Forty channel locks upwards, then higher ranks on top. */
    for (int i = 0; i < NLOCKS; i++)
        urg__lock(&chans[i]);
    urg__lock(&timers[0]);
    urg__lock(&schedlk);
    urg__unlock(&schedlk);
    urg__unlock(&timers[0]);
    /* Released out of order: lowest first, then the rest downwards. */
    urg__unlock(&chans[0]);
    for (int i = NLOCKS - 1; i > 0; i--)
        urg__unlock(&chans[i]);
    /* The record is empty again: any order may start afresh. */
    urg__lock(&chans[NLOCKS - 1]);
    urg__unlock(&chans[NLOCKS - 1]);
    urg__lock(&chans[0]);
    urg__lock(&chans[1]);
    urg__unlock(&chans[0]); /* a run releases its locks in any order */
    urg__unlock(&chans[1]);
    urg__lock(&timers[1]);
    urg__unlock(&timers[1]);
}

/* A select over more channels than the held list has entries, in a run,
 * under the checker: nothing fires, and the same thread goes on. */
static void select_many_main(void *arg)
{
    (void)arg;
    enum { N = 24 };
    urg_chan *c[N];
    urg_select_case k[N];
    uint64_t v[N];
    for (int i = 0; i < N; i++) {
        c[i] = urg_chan_new(sizeof(uint64_t), 1);
        CHECK(c[i] != NULL);
        k[i] = (urg_select_case){.chan = c[i], .op = URG_SELECT_RECV, .elem = &v[i]};
    }
    uint64_t one = 1;
    CHECK(urg_chan_send(c[N - 3], &one) == 0);
    CHECK(urg_select(k, N, URG_FOREVER) == N - 3);
    CHECK(urg_select(k, N, 0) == -EAGAIN);
    for (int i = 0; i < N; i++)
        urg_chan_free(c[i]);
}

static void test_lockrank_select_over_24_channels(void **state)
{
    (void)state;
    RUN_AT(select_many_main, NULL, 1);
    RUN_AT(select_many_main, NULL, 2);
}

/* ---- violations, each in a child ---------------------------------------- */

static void expect_fatal(int (*fn)(void *), void *arg, const char *const *needles)
{
    skip_without_lockrank();
    struct tu_child c;
    tu_in_child(fn, arg, 30, &c);
    if (!WIFSIGNALED(c.status) || WTERMSIG(c.status) != SIGABRT)
        fail_msg("child status 0x%x, not an abort; output:\n%s", c.status, c.out);
    if (!strstr(c.out, "fatal error: lock ordering problem"))
        fail_msg("no fatal error in the output:\n%s", c.out);
    for (; *needles; needles++)
        if (!strstr(c.out, *needles))
            fail_msg("no \"%s\" in the output:\n%s", *needles, c.out);
}

static int downwards_child(void *arg)
{
    (void)arg;
    init_locks();
    urg__lock(&chans[1]);
    urg__lock(&chans[0]);
    return 0;
}

static void test_lockrank_chan_locks_downwards_die(void **state)
{
    (void)state;
    const char *needles[] = {"taking, below an address already held, chan.lock (rank 2)",
                             "this thread holds:", NULL};
    expect_fatal(downwards_child, NULL, needles);
}

static int below_run_child(void *arg)
{
    (void)arg;
    init_locks();
    for (int i = 0; i < 20; i++)
        urg__lock(&chans[i]);
    urg__lock(&chans[3]); /* would also deadlock on itself */
    return 0;
}

static void test_lockrank_below_a_run_of_20_dies_with_the_run(void **state)
{
    (void)state;
    const char *needles[] = {"taking, below an address already held, chan.lock",
                             "the highest of 20", NULL};
    expect_fatal(below_run_child, NULL, needles);
}

static int out_of_order_child(void *arg)
{
    (void)arg;
    init_locks();
    urg__lock(&chans[0]);
    urg__lock(&schedlk);
    urg__lock(&timers[0]);
    return 0;
}

static void test_lockrank_lower_rank_after_higher_dies(void **state)
{
    (void)state;
    const char *needles[] = {"out of order: taking p.timerlock (rank 5)", "  chan.lock (rank 2)",
                             "  sched.lock (rank 6)", NULL};
    expect_fatal(out_of_order_child, NULL, needles);
}

static int two_of_one_child(void *arg)
{
    (void)arg;
    init_locks();
    urg__lock(&timers[0]);
    urg__lock(&timers[1]); /* increasing address, but TIMERS is ONE */
    return 0;
}

static void test_lockrank_two_locks_of_a_one_rank_die(void **state)
{
    (void)state;
    const char *needles[] = {"out of order: taking p.timerlock (rank 5)", NULL};
    expect_fatal(two_of_one_child, NULL, needles);
}

static void *unlock_thread(void *arg)
{
    urg__unlock(arg);
    return NULL;
}

static int foreign_unlock_child(void *arg)
{
    (void)arg;
    init_locks();
    urg__lock(&schedlk);
    pthread_t t;
    if (pthread_create(&t, NULL, unlock_thread, &schedlk) != 0)
        return 2;
    pthread_join(t, NULL);
    return 0;
}

static void test_lockrank_release_by_another_thread_dies(void **state)
{
    (void)state;
    const char *needles[] = {"releasing a lock it does not hold: sched.lock",
                             "this thread holds no ranked lock", NULL};
    expect_fatal(foreign_unlock_child, NULL, needles);
}

/* sched.stw is first in the order: stopping the world with any ranked
 * lock held must die before it parks or takes sched.lock. */
static void stw_main(void *arg)
{
    (void)arg;
    urg__lock(&chans[0]);
    urg_set_maxprocs(2);
    urg__unlock(&chans[0]);
}

static int stw_child(void *arg)
{
    (void)arg;
    init_locks();
    urg_config cfg = {.maxprocs = 1};
    urg_run(stw_main, NULL, &cfg);
    return 0;
}

static void test_lockrank_stw_under_a_lock_dies(void **state)
{
    (void)state;
    const char *needles[] = {"out of order: taking sched.stw (rank 1)", "  chan.lock (rank 2)",
                             NULL};
    expect_fatal(stw_child, NULL, needles);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lockrank_address_order_run_past_16),
        cmocka_unit_test(test_lockrank_select_over_24_channels),
        cmocka_unit_test(test_lockrank_chan_locks_downwards_die),
        cmocka_unit_test(test_lockrank_below_a_run_of_20_dies_with_the_run),
        cmocka_unit_test(test_lockrank_lower_rank_after_higher_dies),
        cmocka_unit_test(test_lockrank_two_locks_of_a_one_rank_die),
        cmocka_unit_test(test_lockrank_release_by_another_thread_dies),
        cmocka_unit_test(test_lockrank_stw_under_a_lock_dies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
