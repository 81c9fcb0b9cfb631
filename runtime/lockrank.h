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
 * The order below is the only copy of the lock order: docs/design.md's
 * table is generated from it (scripts/lockrank-doc.sh; CI runs it with
 * --check, so a stale table fails). A lock may only be taken while every
 * lock the thread holds comes EARLIER in the list. Locks marked MANY may
 * be held several at once, taken in increasing address order (select
 * locks its channels sorted by address); ONE means never two at once.
 * Build with -DURG_LOCKRANK=ON to have every acquisition and release
 * checked at run time (lock.c): a violation prints the lock taken and the
 * locks held, then dies with "fatal error: lock ordering problem".
 *
 * sched.stw is an urg_mutex, not a runtime lock: it parks the task and is
 * held across switches, so a thread's held list cannot carry it. Its rank
 * is checked where it is taken (urg__lockrank_may_acquire): being first,
 * nothing ranked may be held then.
 *
 * X(ID, lock, ONE or MANY, what it protects) — one line each, in order;
 * the rank is the position (1 = taken first). Keep each entry on one line:
 * the doc generator reads them.
 */
#ifndef URG__LOCKRANK_H
#define URG__LOCKRANK_H

#include "internal.h"

/* clang-format off */
#define URG__LOCKRANKS(X) \
    X(STW,       "sched.stw",                       ONE,  "one stop-the-world at a time (an `urg_mutex`: parks the task)") \
    X(CHAN,      "chan.lock",                       MANY, "a channel's buffer and wait queues") \
    X(SYNCQ,     "sync.qlock",                      ONE,  "an `urg_mutex`'s or `urg_wg`'s waiter queue (not checked: zero-filled user memory)") \
    X(NETPOLL,   "pd.lock, np.chunklock",           ONE,  "a descriptor's reader and writer waiters; the descriptor table") \
    X(TIMERS,    "p.timerlock",                     ONE,  "a proc's timer heap") \
    X(SCHED,     "sched.lock",                      ONE,  "global run queue, idle threads and procs, thread list, stop counters") \
    X(STACKPOOL, "stackpool.lock",                  ONE,  "the global stack pool and arenas") \
    X(GSLAB,     "gslab.lock",                      ONE,  "the task-descriptor slabs") \
    X(RANGES,    "unsafe_ranges.lock, build_lock",  ONE,  "user-registered unsafe ranges; the module table's rebuilds")

enum urg__lockrank {
    URG_RANK_NONE = 0, /* unranked: not checked */
#define URG__RANK_ENUM(id, name, many, what) URG_RANK_##id,
    URG__LOCKRANKS(URG__RANK_ENUM)
#undef URG__RANK_ENUM
    URG_RANK__COUNT
};
/* clang-format on */
/* The rank rides in 8 bits of the lock word; lock.c's held list has one
 * entry per rank at most (a run of MANY locks is one entry). */
_Static_assert(URG_RANK__COUNT <= 16, "lock ranks: lock.c holds at most 16 entries");

/* A futex lock: 0 unlocked, 1 locked, 2 locked with sleepers. With
 * URG_LOCKRANK the rank rides in bits 8-15 of the same word (so the lock
 * stays four bytes inside urg_mutex and urg_wg) and the state is the low
 * byte; rank 0 is unranked and not checked — the queue locks of urg_mutex
 * and urg_wg, which programs zero-initialise. */
typedef struct urg__lock {
    uint32_t key;
} urg__lock_t;

#ifdef URG_LOCKRANK
#define URG__LOCK_INIT(r)                                                                          \
    {                                                                                              \
        (uint32_t)(r) << 8                                                                         \
    }
#else
#define URG__LOCK_INIT(r)                                                                          \
    {                                                                                              \
        0                                                                                          \
    }
#endif

URG__HIDDEN void urg__lock_init(urg__lock_t *l, enum urg__lockrank rank);
/* Context: task or g0 (never signal). Increments m->locks. */
URG__HIDDEN void urg__lock(urg__lock_t *l);
URG__HIDDEN void urg__unlock(urg__lock_t *l);
URG__HIDDEN bool urg__trylock(urg__lock_t *l);

/* urg__lockrank_may_acquire: with URG_LOCKRANK, die unless `lock`, of this
 * rank, could be taken now (for locks that are not urg__lock_t, such as
 * sched.stw); nothing is recorded. Without it, nothing. Context: as for
 * urg__lock. */
#ifdef URG_LOCKRANK
URG__HIDDEN void urg__lockrank_may_acquire(enum urg__lockrank rank, const void *lock);
#else
static inline void urg__lockrank_may_acquire(enum urg__lockrank rank, const void *lock)
{
    (void)rank;
    (void)lock;
}
#endif

/* A one-shot event a thread sleeps on (Go's note). */
typedef struct urg__note {
    uint32_t key;
} urg__note;
URG__HIDDEN void urg__note_clear(urg__note *n);
URG__HIDDEN void urg__note_wakeup(urg__note *n);
URG__HIDDEN void urg__note_sleep(urg__note *n);
/* Returns true if woken, false on timeout. ns < 0 sleeps without limit. */
URG__HIDDEN bool urg__note_tsleep(urg__note *n, int64_t ns);

/* Raw futex helpers (Signal-safe). */
URG__HIDDEN int urg__futex_wait(uint32_t *addr, uint32_t val, int64_t ns);
URG__HIDDEN void urg__futex_wake(uint32_t *addr, int n);

#endif /* URG__LOCKRANK_H */
