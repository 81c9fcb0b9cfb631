/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_sysmon.c — sysmon's estimate of when a slice began, and so when it
 * asks a task to yield (runtime/sysmon.c), driven directly through
 * urg__sysmon_retake with a clock of the test's own, without a running
 * scheduler.
 *
 * A proc bumps schedtick at each new task; sysmon does not read the clock
 * there, it samples. When it sees a new schedtick it must place the
 * slice's start: at its own request to yield, if it made one since its
 * previous look (the task gave the proc up microseconds after it); else
 * in the middle of the interval since that look, at most quantum/2 back.
 * The first rule is what keeps hogs that take turns at slices of one
 * quantum, however rarely sysmon looks.
 *
 * sysmon sleeps until the earliest moment a look can matter: a slice's
 * end; after a request, a quantum later (when the slice an honoured
 * request started ends), or quantum/8 later if the handler deferred it;
 * one short tick after it first sees a proc in a syscall.
 *
 * Wake-up preemption (sched.wakegran_ns): with every proc busy, a task
 * woken onto a busy proc (runnext, or a timer due there) need not wait for
 * the slice to end: the running task is asked to yield once it has run
 * the granularity, or when the timer is due, whichever is later.
 *
 * One proc, running a stand-in task on a stand-in thread (no tid, so no
 * signal is sent); the test moves schedtick and the proc's status the way
 * a scheduler would between sysmon's looks.
 */
#include "testutil.h"

#include "runtime/sched.h"

#define MS      1000000ull
#define QUANTUM (10 * MS)

static p_t *pp;
static m_t *mp;
static g_t *gp;

/* zalloc64: zeroed, cache-line aligned (as the runtime's own are). */
static void *zalloc64(size_t size)
{
    void *mem = NULL;
    if (posix_memalign(&mem, 64, size) != 0)
        return NULL;
    return memset(mem, 0, size);
}

static int setup(void **state)
{
    (void)state;
    pp = zalloc64(sizeof(p_t));
    mp = zalloc64(sizeof(m_t));
    gp = zalloc64(sizeof(g_t));
    if (!pp || !mp || !gp)
        return -1;
    gp->status = G_RUNNING;
    mp->curg = gp;
    pp->m = mp;
    pp->status = P_RUNNING;
    urg__sched.quantum_ns = QUANTUM;
    urg__sched.allp[0] = pp;
    urg__sched.gomaxprocs = 1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    urg__sched.gomaxprocs = 0;
    urg__sched.allp[0] = NULL;
    urg__sched.quantum_ns = 0;
    urg__sched.wakegran_ns = 0;
    urg__sched.npidle = 0;
    free(pp);
    free(mp);
    free(gp);
    return 0;
}

/* look: one sysmon tick at `now`; the earliest pending expiry (0: none). */
static uint64_t look(uint64_t now)
{
    uint64_t next_expiry = 0;
    bool any_running = false;
    assert_int_equal(urg__sysmon_retake(now, &next_expiry, &any_running), 0);
    assert_true(any_running);
    return next_expiry;
}

/* The proc starts its next task (the scheduler's side of a switch). */
static void next_task(void)
{
    pp->schedtick++;
    gp->preempt = 0;
}

/* first_slice_asked: a task's first slice, which sysmon first sees 1 ms
 * after its look at 0 (and places in the middle) and asks to end a
 * quantum later. Returns the time of the request. */
static uint64_t first_slice_asked(void)
{
    next_task();
    assert_int_equal(look(1 * MS), MS / 2 + QUANTUM);
    uint64_t asked = MS / 2 + QUANTUM;
    /* Next look: when the slice the yield starts will end. */
    assert_int_equal(look(asked), asked + QUANTUM);
    assert_int_equal(gp->preempt, 1);
    return asked;
}

static void test_sysmon_slice_after_request_starts_at_request(void **state)
{
    (void)state;
    uint64_t asked = first_slice_asked();
    /* The task yielded at once; sysmon sees the next one some time
     * later: that slice began at the request, not in the middle. */
    next_task();
    assert_int_equal(look(asked + QUANTUM / 8), asked + QUANTUM);
    assert_int_equal(gp->preempt, 0);
    /* And it ends a quantum after the request, which sysmon makes. */
    uint64_t before = urg__sched.preempt_requests;
    assert_int_equal(look(asked + QUANTUM), asked + 2 * QUANTUM);
    assert_int_equal(gp->preempt, 1);
    assert_int_equal(urg__sched.preempt_requests, before + 1);
}

static void test_sysmon_slice_begun_unasked_starts_midway(void **state)
{
    (void)state;
    next_task();
    assert_int_equal(look(1 * MS), MS / 2 + QUANTUM);
    /* The task gives the proc up by itself: the middle of the interval. */
    next_task();
    assert_int_equal(look(2 * MS), 2 * MS - MS / 2 + QUANTUM);
    next_task();
    assert_int_equal(look(6 * MS), 6 * MS - 2 * MS + QUANTUM);
    /* A longer interval counts as quantum/2 back. */
    next_task();
    assert_int_equal(look(36 * MS), 36 * MS - QUANTUM / 2 + QUANTUM);
}

static void test_sysmon_request_retried_a_quantum_later(void **state)
{
    (void)state;
    uint64_t asked = first_slice_asked();
    uint64_t before = urg__sched.preempt_requests;
    /* Woken early (another proc, a wake-up): the request stands, no
     * second one. */
    assert_int_equal(look(asked + MS), asked + QUANTUM);
    assert_int_equal(urg__sched.preempt_requests, before);
    /* Not honoured in a quantum: asked again. */
    assert_int_equal(look(asked + QUANTUM), asked + 2 * QUANTUM);
    assert_int_equal(urg__sched.preempt_requests, before + 1);
}

static void test_sysmon_deferred_request_retried_soon(void **state)
{
    (void)state;
    uint64_t asked = first_slice_asked();
    /* The handler found the task outside a safe point and said so. */
    pp->deferred = 1;
    assert_int_equal(look(asked + MS / 4), asked + QUANTUM / 8);
    uint64_t before = urg__sched.preempt_requests;
    assert_int_equal(look(asked + QUANTUM / 8), asked + QUANTUM / 8 + QUANTUM / 8);
    assert_int_equal(urg__sched.preempt_requests, before + 1);
    /* The next task's slice forgets it. */
    next_task();
    look(asked + QUANTUM / 4);
    assert_int_equal(pp->deferred, 0);
}

static void test_sysmon_syscall_looked_at_soon(void **state)
{
    (void)state;
    next_task();
    assert_int_equal(look(1 * MS), MS / 2 + QUANTUM);
    /* The task enters a syscall: the next look is one short tick away,
     * not at the slice's end. */
    pp->status = P_SYSCALL;
    pp->syscalltick++;
    uint64_t next = look(2 * MS);
    assert_true(next > 2 * MS && next <= 2 * MS + MS / 10);
}

static void test_sysmon_request_forgotten_when_proc_idles(void **state)
{
    (void)state;
    uint64_t asked = first_slice_asked();
    /* The task yields, the proc runs dry and sysmon sees it idle... */
    pp->status = P_IDLE;
    uint64_t next = 0;
    bool any_running = false;
    urg__sysmon_retake(asked + MS, &next, &any_running);
    assert_false(any_running);
    /* ...so a task it starts later is not charged from the request. */
    pp->status = P_RUNNING;
    next_task();
    assert_int_equal(look(asked + 2 * MS), asked + 2 * MS - MS / 2 + QUANTUM);
}

#define GRAN MS

static void test_sysmon_wakeup_timer_due_preempts(void **state)
{
    (void)state;
    urg__sched.wakegran_ns = GRAN;
    /* A sleeper's timer on this proc is due at 4 ms: sysmon looks then,
     * not at the slice's end. */
    pp->timer0 = 4 * MS;
    next_task();
    assert_int_equal(look(1 * MS), 4 * MS);
    uint64_t before = urg__sched.preempt_wakeup;
    assert_int_equal(gp->preempt, 0);
    look(4 * MS);
    assert_int_equal(gp->preempt, 1);
    assert_int_equal(urg__sched.preempt_wakeup, before + 1);
}

static void test_sysmon_wakeup_waits_for_granularity(void **state)
{
    (void)state;
    urg__sched.wakegran_ns = GRAN;
    /* Sampled at 1 ms, the slice began at 0.5 ms: a timer due at 0.8 ms
     * waits until the task has run the granularity. */
    pp->timer0 = MS * 8 / 10;
    next_task();
    assert_int_equal(look(1 * MS), MS / 2 + GRAN);
    assert_int_equal(gp->preempt, 0);
    look(MS / 2 + GRAN);
    assert_int_equal(gp->preempt, 1);
}

static void test_sysmon_wakeup_runnext_preempts(void **state)
{
    (void)state;
    urg__sched.wakegran_ns = GRAN;
    next_task();
    assert_int_equal(look(1 * MS), MS / 2 + QUANTUM);
    /* The task readied another into runnext: it goes at the granularity. */
    g_t *woken = zalloc64(sizeof(g_t));
    assert_non_null(woken);
    pp->runnext = woken;
    assert_int_equal(look(1 * MS + MS / 4), MS / 2 + GRAN);
    look(MS / 2 + GRAN);
    assert_int_equal(gp->preempt, 1);
    pp->runnext = NULL;
    free(woken);
}

static void test_sysmon_wakeup_not_with_idle_proc(void **state)
{
    (void)state;
    urg__sched.wakegran_ns = GRAN;
    /* An idle proc will run the woken task: the slice runs its quantum. */
    urg__sched.npidle = 1;
    pp->timer0 = 2 * MS;
    next_task();
    assert_int_equal(look(1 * MS), MS / 2 + QUANTUM);
    /* Off (wakepreempt=0): the same. */
    urg__sched.npidle = 0;
    urg__sched.wakegran_ns = 0;
    assert_int_equal(look(3 * MS), MS / 2 + QUANTUM);
    assert_int_equal(gp->preempt, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sysmon_slice_after_request_starts_at_request, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sysmon_slice_begun_unasked_starts_midway, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sysmon_request_forgotten_when_proc_idles, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sysmon_request_retried_a_quantum_later, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sysmon_deferred_request_retried_soon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sysmon_syscall_looked_at_soon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sysmon_wakeup_timer_due_preempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sysmon_wakeup_waits_for_granularity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sysmon_wakeup_runnext_preempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sysmon_wakeup_not_with_idle_proc, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
