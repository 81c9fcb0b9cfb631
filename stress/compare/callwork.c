/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * stress/compare/callwork.c — the loops of scenario (d), compiled with
 * urg_enable_call_checks() (-finstrument-functions) in the cooperative
 * build: every function entry here is a preemption checkpoint, as in Go
 * before 1.14. A loop that calls a function each iteration can then be
 * preempted without signals; a loop that calls nothing cannot.
 */
#include "compare.h"

/* Out of line, so that each iteration really calls it and the
 * instrumentation puts a checkpoint at its entry. */
__attribute__((noinline)) void cw_step(uint64_t *n)
{
    hog_bump(n);
    __asm__ volatile("" ::: "memory");
}

void cw_loop_with_calls(struct hog *h)
{
    while (!__atomic_load_n(h->stop, __ATOMIC_RELAXED))
        cw_step(&h->n);
}

void cw_loop_without_calls(struct hog *h)
{
    while (!__atomic_load_n(h->stop, __ATOMIC_RELAXED))
        hog_bump(&h->n);
}
