/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * lock.c — runtime locks and notes on futexes (Go's lock_futex.go, in our
 * own words).
 *
 * A lock word is 0 (free), 1 (held) or 2 (held, and someone may sleep in
 * the kernel). Acquiring spins a little first: the critical sections these
 * locks guard are a few dozen instructions, shorter than a futex round trip.
 * Releasing swaps in 0 and issues FUTEX_WAKE only if the old value was 2.
 *
 * Runtime locks block the OS thread. They must never be held across a task
 * switch (a parked task holding one would deadlock its P), and they count
 * in m->locks so the SIGURG handler never preempts their holder.
 *
 * A note is a one-shot wakeup for one sleeper: wakeup sets the word to 1
 * and wakes; sleep waits until the word is 1.
 */
#include "lockrank.h"
#include "sched.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef URG_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* urg__futex_wait: sleep while *addr == val, for at most ns (< 0: forever).
 * Returns 0, or -errno (-EAGAIN, -ETIMEDOUT, -EINTR). Signal-safe. */
int urg__futex_wait(uint32_t *addr, uint32_t val, int64_t ns)
{
    struct timespec ts, *tsp = NULL;
    if (ns >= 0) {
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        tsp = &ts;
    }
    int e = errno; /* the caller's: a contended lock must not leave EAGAIN in it */
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
    int err = r < 0 ? errno : 0;
    errno = e;
    return -err;
}

/* urg__futex_wake: wake up to n sleepers on addr. Signal-safe. */
void urg__futex_wake(uint32_t *addr, int n)
{
    int e = errno;
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
    errno = e;
}

#ifdef URG_LOCKRANK
/* Per-thread stack of held ranks, checked on every acquisition. */
static __thread uint8_t held_ranks[16];
static __thread int nheld;

/* The rank bits of l's word (constant for the lock's life). */
static inline uint32_t rank_bits(const urg__lock_t *l) { return ld_relaxed(&l->key) & ~0xffu; }

static void rank_acquire(urg__lock_t *l)
{
    uint8_t rank = (uint8_t)(rank_bits(l) >> 8);
    if (rank == URG_RANK_NONE)
        return;
    if (nheld > 0 && held_ranks[nheld - 1] >= rank && rank != URG_RANK_CHAN) {
        urg__pbuf b = {.len = 0};
        urg__pb_str(&b, "lock rank violation: taking rank ");
        urg__pb_u64(&b, rank);
        urg__pb_str(&b, " while holding rank ");
        urg__pb_u64(&b, held_ranks[nheld - 1]);
        urg__pb_str(&b, "\n");
        urg__pb_flush(&b);
        urg__throw("lock ordering problem");
    }
    if (nheld < (int)sizeof(held_ranks))
        held_ranks[nheld++] = rank;
}

static void rank_release(urg__lock_t *l)
{
    uint8_t rank = (uint8_t)(rank_bits(l) >> 8);
    if (rank == URG_RANK_NONE)
        return;
    for (int i = nheld - 1; i >= 0; i--) {
        if (held_ranks[i] == rank) {
            for (int j = i; j < nheld - 1; j++)
                held_ranks[j] = held_ranks[j + 1];
            nheld--;
            return;
        }
    }
}
#else
#define rank_bits(l)    0u
#define rank_acquire(l) ((void)0)
#define rank_release(l) ((void)0)
#endif

void urg__lock_init(urg__lock_t *l, enum urg__lockrank rank)
{
#ifdef URG_LOCKRANK
    l->key = (uint32_t)rank << 8;
#else
    (void)rank;
    l->key = 0;
#endif
}

static inline void m_locks_add(int d)
{
    m_t *mp = urg__tls_m;
    if (mp)
        mp->locks += d;
}

bool urg__trylock(urg__lock_t *l)
{
    uint32_t r = rank_bits(l);
    if (cas(&l->key, r, r | 1u)) {
        m_locks_add(1);
        rank_acquire(l);
#ifdef URG_TSAN
        __tsan_acquire(l);
#endif
        return true;
    }
    return false;
}

/* urg__lock: Context: task or g0 or sysmon; never in a signal handler. */
URG_PREEMPT_PATH void urg__lock(urg__lock_t *l)
{
    m_locks_add(1);
    rank_acquire(l);
    uint32_t r = rank_bits(l);
    if (likely(cas(&l->key, r, r | 1u)))
        goto acquired;
    /* Spin a while: the holder is most likely running on another CPU. */
    for (int i = 0; i < 64; i++) {
        for (int k = 0; k < 8; k++)
            cpu_relax();
        if (ld_relaxed(&l->key) == r && cas(&l->key, r, r | 1u))
            goto acquired;
    }
    /* Sleep: mark the word contended; whoever releases it wakes one. */
    while (xchg(&l->key, r | 2u) != r)
        urg__futex_wait(&l->key, r | 2u, -1);
acquired:
#ifdef URG_TSAN
    __tsan_acquire(l);
#endif
    return;
}

URG_PREEMPT_PATH void urg__unlock(urg__lock_t *l)
{
#ifdef URG_TSAN
    __tsan_release(l);
#endif
    uint32_t r = rank_bits(l);
    uint32_t old = xchg(&l->key, r) & 0xffu;
    URG_CHECK(old != 0, "unlock of unlocked runtime lock");
    if (old == 2)
        urg__futex_wake(&l->key, 1);
    rank_release(l);
    m_locks_add(-1);
}

void urg__note_clear(urg__note *n) { st_release(&n->key, 0u); }

/* urg__note_wakeup: Signal-safe (atomic + futex). */
void urg__note_wakeup(urg__note *n)
{
    uint32_t old = xchg(&n->key, 1u);
    if (old == 0)
        urg__futex_wake(&n->key, 1);
}

void urg__note_sleep(urg__note *n)
{
    while (ld_acquire(&n->key) == 0)
        urg__futex_wait(&n->key, 0, -1);
}

bool urg__note_tsleep(urg__note *n, int64_t ns)
{
    if (ns < 0) {
        urg__note_sleep(n);
        return true;
    }
    uint64_t deadline = urg__nanotime() + (uint64_t)ns;
    while (ld_acquire(&n->key) == 0) {
        uint64_t now = urg__nanotime();
        if (now >= deadline)
            return false;
        urg__futex_wait(&n->key, 0, (int64_t)(deadline - now));
    }
    return true;
}
