/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * chaos.c — URG_DEBUG=chaos=SEED: shake the scheduler so that code which
 * is only correct under lucky timing fails while it is being tested, not
 * in production. With it on:
 *
 *   - sysmon asks every running P's task to yield at pseudo-random
 *     intervals of 20 to 200 us (each P its own jittered schedule), far
 *     below the quantum: in the async build by SIGURG, so a tight loop is
 *     interrupted at a different instruction every time;
 *   - a task preempted asynchronously resumes on a different thread where
 *     another exists: it is tagged with its M, other Ms are woken to take
 *     it, and the tagging M passes it over in the global queue for up to
 *     CHAOS_AVOID_NS (runq.c; after that it may take it back, so nothing
 *     waits for a thread that never comes);
 *   - each P's local queue is shuffled: a quarter of the time runnext goes
 *     to the back, and a quarter of the time the head is rotated to the
 *     tail a random number of times.
 *
 * Every random choice comes from a generator seeded by SEED: sysmon's own,
 * and one per P (owner only). The threads' interleaving is up to the OS,
 * so a run is as reproducible as a multi-threaded program can be: the
 * same seed makes the same choices at the same decision points.
 *
 * urg_run prints the seed when it starts and, when the run ends, how many
 * preempted tasks moved to another thread: "CHAOS seed=N: ..." lines on
 * stderr, like schedtrace's SCHED lines (and, like them, without the
 * "urgent: " of warnings, so that programs and tests counting warnings
 * see the same ones as without chaos).
 */
#include "sched.h"

#define CHAOS_MIN_NS  20000ull
#define CHAOS_SPAN_NS 180000ull

/* splitmix64: a full-period generator whose state may start anywhere. */
static uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* urg__chaos_rand: the next number from pp's generator, seeded on first
 * use from the run's seed and the P's id. Context: owner of pp. */
uint64_t urg__chaos_rand(p_t *pp)
{
    if (!pp->chaos_seeded) {
        pp->chaos_rng = sched.chaos_seed * 0x100000001b3ull + (uint64_t)pp->id;
        pp->chaos_seeded = 1;
    }
    return next_rand(&pp->chaos_rng);
}

static uint64_t sysmon_rng;

/* urg__chaos_start: a run begins. Context: urg_run, before any M. */
void urg__chaos_start(void)
{
    for (int i = 0; i < URG_MAXPROCS_MAX; i++)
        if (sched.allp[i])
            sched.allp[i]->chaos_seeded = 0;
    sched.chaos_moved = sched.chaos_stayed = 0;
    if (!sched.chaos)
        return;
    sysmon_rng = sched.chaos_seed;
    urg__pbuf b = {.len = 0};
    urg__pb_str(&b, "CHAOS seed=");
    urg__pb_u64(&b, sched.chaos_seed);
    urg__pb_str(&b, ": preempting every 20-200 us at random, moving preempted tasks to other "
                    "threads, shuffling run queues (URG_DEBUG=chaos=SEED repeats a run)\n");
    urg__pb_flush(&b);
}

/* urg__chaos_end: a run ended; say what chaos did. Context: urg_run. */
void urg__chaos_end(void)
{
    if (!sched.chaos)
        return;
    urg__pbuf b = {.len = 0};
    urg__pb_str(&b, "CHAOS seed=");
    urg__pb_u64(&b, sched.chaos_seed);
    urg__pb_str(&b, ": ");
    urg__pb_u64(&b, ld_relaxed(&sched.preempt_requests));
    urg__pb_str(&b, " preemption requests, ");
    urg__pb_u64(&b, ld_relaxed(&sched.preempt_async));
    urg__pb_str(&b, " async preemptions; ");
    urg__pb_u64(&b, ld_relaxed(&sched.chaos_moved));
    urg__pb_str(&b, " resumed on another thread, ");
    urg__pb_u64(&b, ld_relaxed(&sched.chaos_stayed));
    urg__pb_str(&b, " on the same one (no other was free in time)\n");
    urg__pb_flush(&b);
}

/* urg__chaos_preempt: ask each running P's task to yield when its random
 * interval is up. Returns when sysmon must look again.
 * Context: sysmon. */
uint64_t urg__chaos_preempt(uint64_t now)
{
    uint64_t next = now + CHAOS_MIN_NS + CHAOS_SPAN_NS;
    int32_t nprocs = ld_acquire(&sched.gomaxprocs);
    for (int32_t i = 0; i < nprocs; i++) {
        p_t *pp = sched.allp[i];
        struct urg__sysmontick *pd = &pp->sysmontick;
        if (ld_acquire(&pp->status) != P_RUNNING) {
            pd->chaos_next = 0;
            continue;
        }
        if (pd->chaos_next == 0)
            pd->chaos_next = now + CHAOS_MIN_NS + next_rand(&sysmon_rng) % CHAOS_SPAN_NS;
        if (pd->chaos_next <= now) {
            urg__preemptone(pp);
            pd->chaos_next = now + CHAOS_MIN_NS + next_rand(&sysmon_rng) % CHAOS_SPAN_NS;
        }
        if (pd->chaos_next < next)
            next = pd->chaos_next;
    }
    return next;
}

/* urg__chaos_shuffle: reorder pp's local queue a little before the owner
 * takes from it. Context: owner of pp. */
void urg__chaos_shuffle(p_t *pp)
{
    uint64_t r = urg__chaos_rand(pp);
    if ((r & 3) == 0) {
        /* runnext loses its place: to the back of the ring. */
        g_t *next = ld_relaxed(&pp->runnext);
        if (next && cas(&pp->runnext, next, (g_t *)NULL))
            urg__runqput(pp, next, false);
    }
    if (((r >> 2) & 3) == 0) {
        /* Rotate: the head goes to the tail, up to 7 times. */
        uint32_t turns = (uint32_t)(r >> 4) % 8;
        for (uint32_t i = 0; i < turns; i++) {
            uint32_t h = ld_acquire(&pp->runqhead);
            uint32_t t = pp->runqtail;
            if (t - h < 2)
                break;
            g_t *gp = __atomic_load_n(&pp->runq[h % URG__RUNQ_SIZE], __ATOMIC_RELAXED);
            if (!__atomic_compare_exchange_n(&pp->runqhead, &h, h + 1, false, __ATOMIC_RELEASE,
                                             __ATOMIC_RELAXED))
                break; /* a thief took it: it is theirs */
            urg__runqput(pp, gp, false);
        }
    }
}
