/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/* stress/compare/compare.h — shared by compare.c and callwork.c. */
#ifndef URG_COMPARE_H
#define URG_COMPARE_H

#include <stdint.h>

/* One hog: its iteration counter, on a cache line of its own so that hogs
 * on different procs do not slow each other down. */
struct hog {
    uint64_t n; /* written by its hog only; read by the monitor */
    int *stop;
    char pad[48];
};

/* Counting is a plain load and store (relaxed atomics compile to exactly
 * that on x86-64), so a hog's loop stays call-free; atomics keep the
 * monitor's reads well-defined, and ThreadSanitizer quiet. Never
 * instrumented: -finstrument-functions (callwork.c) would otherwise put a
 * checkpoint call in every iteration of the loop "without calls". */
__attribute__((no_instrument_function)) static inline void hog_bump(uint64_t *n)
{
    __atomic_store_n(n, __atomic_load_n(n, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

__attribute__((no_instrument_function)) static inline uint64_t hog_count(const struct hog *h)
{
    return __atomic_load_n(&h->n, __ATOMIC_RELAXED);
}

void cw_step(uint64_t *n);
void cw_loop_with_calls(struct hog *h);
void cw_loop_without_calls(struct hog *h);

#endif
