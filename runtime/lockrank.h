/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * lockrank.h — the runtime's locks, their acquisition order, and the lock
 * primitives.
 *
 * Runtime locks are short critical sections on a futex word (spin briefly,
 * then sleep in the kernel). They block the OS thread, never park a task,
 * so they must never be held across a task switch. While an M holds one,
 * m->locks > 0 and the SIGURG handler will not preempt it.
 *
 * A lock may only be taken while holding locks of LOWER rank. Build with
 * -DURG_LOCKRANK=ON to have every acquisition checked at run time (a
 * violation is a fatal error naming both locks).
 *
 *   rank  lock                      protects
 *   ----  ------------------------  ------------------------------------------
 *    1    sched.stw (task mutex)    one stop-the-world at a time (parks tasks)
 *    2    chan.lock (select: in     channel buffer and wait queues; select
 *         address order)            takes several, always by address
 *    3    sync.qlock                urg_mutex / urg_wg waiter queues (not
 *                                   checked: user memory, zeroed by programs)
 *    4    netpoll pd.lock           a descriptor's reader/writer waiters
 *    5    p.timerlock               a P's timer heap
 *    6    sched.lock                global run queue, idle M/P lists, allm,
 *                                   stop-the-world counters
 *    7    stackpool.lock            the global stack pool and arenas
 *    8    gslab.lock                the task-descriptor slabs
 *    9    unsafe_ranges.lock        user-registered unsafe ranges (writers)
 */
#ifndef URG_LOCKRANK_H
#define URG_LOCKRANK_H

#include "internal.h"

enum urg__lockrank {
    URG_RANK_NONE = 0,
    URG_RANK_STW = 1,
    URG_RANK_CHAN = 2,
    URG_RANK_SYNCQ = 3,
    URG_RANK_NETPOLL = 4,
    URG_RANK_TIMERS = 5,
    URG_RANK_SCHED = 6,
    URG_RANK_STACKPOOL = 7,
    URG_RANK_GSLAB = 8,
    URG_RANK_RANGES = 9,
};

/* A futex lock: 0 unlocked, 1 locked, 2 locked with sleepers. With
 * URG_LOCKRANK the rank rides in bits 8-15 of the same word (so the lock
 * stays four bytes inside urg_mutex and urg_wg) and the state is the low
 * byte; rank 0 is unranked and not checked — the queue locks of urg_mutex
 * and urg_wg, which programs zero-initialise. */
typedef struct urg__lock {
    uint32_t key;
} urg__lock_t;

#ifdef URG_LOCKRANK
#define URG_LOCK_INIT(r)                                                                           \
    {                                                                                              \
        (uint32_t)(r) << 8                                                                         \
    }
#else
#define URG_LOCK_INIT(r)                                                                           \
    {                                                                                              \
        0                                                                                          \
    }
#endif

URG_HIDDEN void urg__lock_init(urg__lock_t *l, enum urg__lockrank rank);
/* Context: task or g0 (never signal). Increments m->locks. */
URG_HIDDEN void urg__lock(urg__lock_t *l);
URG_HIDDEN void urg__unlock(urg__lock_t *l);
URG_HIDDEN bool urg__trylock(urg__lock_t *l);

/* A one-shot event a thread sleeps on (Go's note). */
typedef struct urg__note {
    uint32_t key;
} urg__note;
URG_HIDDEN void urg__note_clear(urg__note *n);
URG_HIDDEN void urg__note_wakeup(urg__note *n);
URG_HIDDEN void urg__note_sleep(urg__note *n);
/* Returns true if woken, false on timeout. ns < 0 sleeps without limit. */
URG_HIDDEN bool urg__note_tsleep(urg__note *n, int64_t ns);

/* Raw futex helpers (Signal-safe). */
URG_HIDDEN int urg__futex_wait(uint32_t *addr, uint32_t val, int64_t ns);
URG_HIDDEN void urg__futex_wake(uint32_t *addr, int n);

#endif /* URG_LOCKRANK_H */
