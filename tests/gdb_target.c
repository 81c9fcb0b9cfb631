/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * gdb_target.c — the program tests/test_gdb.sh debugs: tasks in known
 * states, then a SIGTRAP so that gdb stops it there.
 *
 *   gdbt_receiver   parked on a channel receive nobody sends to
 *   gdbt_sleeper    parked in urg_sleep for an hour
 *   gdbt_spinner    running a loop on the second proc
 *   gdbt_late       spawned last, runnable, not started
 *   gdbt_main       the main task, running (it raises the SIGTRAP)
 *
 * Readiness is read from the runtime's own task table (testutil.h), never
 * from a sleep. After the trap (gdb continues or kills it) the spinner is
 * told to stop and the program exits 0 by itself: run without gdb it
 * would die of the SIGTRAP, so test_gdb.sh always runs it under gdb.
 */
#include "testutil.h"

#include <signal.h>

static urg_chan *never;
static uint64_t recv_id, sleep_id;
static int spinning, stop; /* atomic */

static __attribute__((noinline)) void gdbt_receiver(void *arg)
{
    (void)arg;
    int v;
    __atomic_store_n(&recv_id, urg_task_id(), __ATOMIC_RELEASE);
    urg_chan_recv(never, &v);
}

static __attribute__((noinline)) void gdbt_sleeper(void *arg)
{
    (void)arg;
    __atomic_store_n(&sleep_id, urg_task_id(), __ATOMIC_RELEASE);
    urg_sleep(3600ull * 1000000000ull);
    /* Not a tail call, so that the backtrace keeps this frame. */
    __atomic_store_n(&sleep_id, 0, __ATOMIC_RELEASE);
}

static __attribute__((noinline)) void gdbt_spinner(void *arg)
{
    (void)arg;
    /* Not preemptible, so that it stays "running" and keeps its proc. */
    urg_preempt_disable();
    __atomic_store_n(&spinning, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE))
        ;
    urg_preempt_enable();
}

static __attribute__((noinline)) void gdbt_late(void *arg) { (void)arg; }

static __attribute__((noinline)) void gdbt_main(void *arg)
{
    (void)arg;
    never = urg_chan_new(sizeof(int), 0);
    urg_go(gdbt_receiver, NULL);
    urg_go(gdbt_sleeper, NULL);
    urg_go(gdbt_spinner, NULL);
    while (!__atomic_load_n(&recv_id, __ATOMIC_ACQUIRE) ||
           !__atomic_load_n(&sleep_id, __ATOMIC_ACQUIRE))
        urg_yield();
    tu_await_parked(recv_id, WAIT_CHAN_RECV);
    tu_await_parked(sleep_id, WAIT_SLEEP);
    tu_await_flag(&spinning, "spinner running");
    /* The spinner holds the other proc and main keeps this one (no
     * preemption from here to the trap), so gdbt_late cannot start. */
    urg_preempt_disable();
    urg_go(gdbt_late, NULL);
    raise(SIGTRAP);
    urg_preempt_enable();
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    urg_chan_close(never);
    /* The sleeper sleeps on; urg_run returns when main does. */
}

int main(void)
{
    urg_config cfg = {.maxprocs = 2};
    return urg_run(gdbt_main, NULL, &cfg) == 0 ? 0 : 1;
}
