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

#ifdef URG__TSAN
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
/*
 * Lock-rank checking (-DURG_LOCKRANK=ON). Each thread keeps the ranked
 * locks it holds as a stack of entries in increasing rank. A run of locks
 * of one MANY rank (select's channels) is one entry: how many, and the
 * highest address taken, so a select over any number of channels is
 * recorded exactly. Taking a lock checks it against the top entry only:
 * the stack stays sorted, releases in any order included. Rules:
 *   - its rank must be above the top entry's, or
 *   - equal, for a MANY rank, at a higher address than the run's highest.
 * Releasing the run's highest lock leaves the mark where it was (the
 * addresses below are not kept): until the run is empty, a lock of that
 * rank must lie above it — stricter than the rule, and select never
 * relocks part of its run. Releasing a lock this thread does not hold is
 * an error too. Every violation prints the lock and the held list, then
 * throws. Context: task, g0, sysmon or an external thread, never a signal
 * handler (which takes no lock); touches only this thread's list.
 */
#define MAX_HELD 16

struct held {
    uintptr_t last; /* the lock, or the highest of a MANY run */
    uint32_t n;     /* locks in the run (1 for a ONE rank) */
    uint8_t rank;
};
static __thread struct held held[MAX_HELD];
static __thread int nheld;

#define ONE  false
#define MANY true
static const struct {
    const char *name;
    bool many;
} rank_info[URG_RANK__COUNT] = {
#define URG__RANK_INFO(id, name, many, what) [URG_RANK_##id] = {name, many},
    URG__LOCKRANKS(URG__RANK_INFO)
#undef URG__RANK_INFO
};
#undef ONE
#undef MANY

/* The rank bits of l's word (constant for the lock's life). */
static inline uint32_t rank_bits(const urg__lock_t *l) { return ld_relaxed(&l->key) & ~0xffu; }

static void pb_lock(urg__pbuf *b, uint8_t rank, uintptr_t addr)
{
    urg__pb_str(b, rank < URG_RANK__COUNT ? rank_info[rank].name : "?");
    urg__pb_str(b, " (rank ");
    urg__pb_u64(b, rank);
    urg__pb_str(b, ") at ");
    urg__pb_hex(b, addr);
}

/* rank_fail: print what went wrong and every lock this thread holds,
 * then throw. Context: as for the checks. */
static URG__NORETURN URG__COLD void rank_fail(const char *what, uint8_t rank, uintptr_t addr)
{
    urg__pbuf b = {.len = 0};
    urg__pb_str(&b, "lock rank violation: ");
    urg__pb_str(&b, what);
    urg__pb_str(&b, " ");
    pb_lock(&b, rank, addr);
    urg__pb_str(&b, "; this thread holds");
    urg__pb_str(&b, nheld ? ":\n" : " no ranked lock\n");
    urg__pb_flush(&b);
    for (int i = 0; i < nheld; i++) {
        urg__pb_str(&b, "  ");
        pb_lock(&b, held[i].rank, held[i].last);
        if (held[i].n > 1) {
            urg__pb_str(&b, ", the highest of ");
            urg__pb_u64(&b, held[i].n);
        }
        urg__pb_str(&b, "\n");
        urg__pb_flush(&b);
    }
    urg__throw("lock ordering problem");
}

/* rank_check: may a lock of rank `rank` at addr be taken now? Returns the
 * top entry when it extends that entry's MANY run, else NULL. */
static struct held *rank_check(uint8_t rank, uintptr_t addr)
{
    if (rank >= URG_RANK__COUNT)
        rank_fail("a lock word with no such rank:", rank, addr);
    if (nheld == 0)
        return NULL;
    struct held *top = &held[nheld - 1];
    if (top->rank < rank)
        return NULL;
    if (top->rank == rank && rank_info[rank].many && addr > top->last)
        return top;
    rank_fail(top->rank == rank && rank_info[rank].many ? "taking, below an address already held,"
                                                        : "out of order: taking",
              rank, addr);
}

void urg__lockrank_may_acquire(enum urg__lockrank rank, const void *lock)
{
    (void)rank_check((uint8_t)rank, (uintptr_t)lock);
}

/* rank_acquire: record l, whose rank bits are r, as taken. */
static void rank_acquire(const urg__lock_t *l, uint32_t r)
{
    uint8_t rank = (uint8_t)(r >> 8);
    if (rank == URG_RANK_NONE)
        return;
    uintptr_t addr = (uintptr_t)l;
    struct held *run = rank_check(rank, addr);
    if (run) {
        run->last = addr;
        run->n++;
        return;
    }
    if (nheld == MAX_HELD)
        rank_fail("too many locks held: taking", rank, addr);
    held[nheld++] = (struct held){.last = addr, .n = 1, .rank = rank};
}

/* rank_release: l, whose rank bits were r, has been released. Only its
 * address is used: the word may already be freed memory (a channel freed
 * by the task the unlock let go on), so the rank is the one read before. */
static void rank_release(const urg__lock_t *l, uint32_t r)
{
    uint8_t rank = (uint8_t)(r >> 8);
    if (rank == URG_RANK_NONE)
        return;
    uintptr_t addr = (uintptr_t)l;
    if (rank >= URG_RANK__COUNT)
        rank_fail("a lock word with no such rank:", rank, addr);
    for (int i = nheld - 1; i >= 0; i--) {
        if (held[i].rank != rank)
            continue;
        /* One entry per rank: this is the lock's, if it is held. A MANY
         * run cannot tell which of its locks goes: it counts them. */
        if (rank_info[rank].many ? addr > held[i].last : addr != held[i].last)
            break;
        if (--held[i].n > 0)
            return;
        for (int j = i; j < nheld - 1; j++)
            held[j] = held[j + 1];
        nheld--;
        return;
    }
    rank_fail("releasing a lock it does not hold:", rank, addr);
}
#else
#define rank_bits(l)       0u
#define rank_acquire(l, r) ((void)0)
#define rank_release(l, r) ((void)0)
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
        rank_acquire(l, r);
#ifdef URG__TSAN
        __tsan_acquire(l);
#endif
        return true;
    }
    return false;
}

/* urg__lock: Context: task or g0 or sysmon; never in a signal handler. */
URG__PREEMPT_PATH void urg__lock(urg__lock_t *l)
{
    m_locks_add(1);
    uint32_t r = rank_bits(l);
    rank_acquire(l, r);
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
#ifdef URG__TSAN
    __tsan_acquire(l);
#endif
    return;
}

URG__PREEMPT_PATH void urg__unlock(urg__lock_t *l)
{
#ifdef URG__TSAN
    __tsan_release(l);
#endif
    uint32_t r = rank_bits(l);
    uint32_t old = xchg(&l->key, r) & 0xffu;
    URG__CHECK(old != 0, "unlock of unlocked runtime lock");
    if (old == 2)
        urg__futex_wake(&l->key, 1);
    rank_release(l, r);
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
