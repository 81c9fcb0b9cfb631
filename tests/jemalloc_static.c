/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/jemalloc_static.c — a program with jemalloc linked in statically
 * (its malloc replaces libc's) and liburgent.so, as a user builds one:
 * 8 tasks allocate and free on 2 procs at the shortest quantum
 * (docs/preemption.md, "The contract", lines 2 and 6).
 *
 * A static allocator is part of the main program, so it is preempted like
 * the program's own code. It takes pthread mutexes (counted: a holder is
 * not preempted) and keeps a per-thread cache behind a __thread pointer
 * (held in registers: the task is not moved). Before those rules a run
 * died of SIGSEGV or hung with both threads in je_malloc_mutex_lock_slow;
 * and liburgent's lock wrappers, resolving libc's functions on first use,
 * recursed through jemalloc's first lock until the stack overflowed, before
 * main.
 *
 * Not a cmocka test: it links the shared library and the static jemalloc,
 * which the cmocka tests' static link cannot mix. Exit 0: passed; 1:
 * failed; 77: skipped. A hang is ended by alarm() (SIGALRM, a failure).
 */
#include "urgent.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

#define TASKS  8
#define ROUNDS 400000
#define SLOTS  64

static urg_wg wg;
static long done_rounds[TASKS];
static int bad;

static void worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    uint64_t x = (uint64_t)id * 2654435761u + 1;
    unsigned char *keep[SLOTS] = {0};
    for (long i = 0; i < ROUNDS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int k = (int)(x % SLOTS);
        if (keep[k] && keep[k][0] != (unsigned char)k)
            __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED); /* someone else's block */
        free(keep[k]);
        keep[k] = malloc(16 + x % 4000);
        if (!keep[k]) {
            __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
            break;
        }
        memset(keep[k], k, 16);
        done_rounds[id]++;
    }
    for (int k = 0; k < SLOTS; k++)
        free(keep[k]);
    urg_wg_done(&wg);
}

static void main_task(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, TASKS);
    for (long i = 0; i < TASKS; i++)
        urg_go(worker, (void *)(intptr_t)i);
    urg_wg_wait(&wg);
    urg_stats st;
    urg_stats_get(&st);
    printf("jemalloc_static: %d tasks x %d rounds; async %llu, deferred %llu, procs handed off "
           "%llu\n",
           TASKS, ROUNDS, (unsigned long long)st.preempt_async,
           (unsigned long long)st.preempt_deferred, (unsigned long long)st.syscall_handoffs);
}

int main(void)
{
    const char *version = NULL;
    size_t len = sizeof(version);
    if (mallctl("version", &version, &len, NULL, 0) != 0 || !version) {
        printf("jemalloc_static: skipped: jemalloc's mallctl does not answer\n");
        return 77;
    }
    printf("jemalloc_static: jemalloc %s, urgent %s (%s)\n", version, urg_version(),
           urg_preempt_mode());
    alarm(120);
    urg_config cfg = {.maxprocs = 2, .quantum_ns = 100000};
    int rc = urg_run(main_task, NULL, &cfg);
    long total = 0;
    for (int i = 0; i < TASKS; i++)
        total += done_rounds[i];
    if (rc != 0 || bad || total != (long)TASKS * ROUNDS) {
        printf("jemalloc_static: FAILED: urg_run %d, %d bad blocks, %ld of %ld rounds\n", rc, bad,
               total, (long)TASKS * ROUNDS);
        return 1;
    }
    printf("jemalloc_static: passed\n");
    return 0;
}
