/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * stats.c — urg_stats_get(2) and the schedtrace line.
 *
 * Counters are kept where they are cheapest to bump: per P, written by the
 * P's owner with relaxed stores (no locked instruction on the hot path),
 * and summed here; the rare ones are global atomics. A reader gets a
 * snapshot in which every field was read atomically but fields were not
 * read at the same instant — consistent enough for monitoring, as API.md
 * says. Any thread may call urg_stats_get while the runtime runs.
 *
 * schedtrace prints Go's line (proc.go schedtrace), then our preemption
 * counters:
 *   SCHED 1001ms: gomaxprocs=2 idleprocs=0 threads=3 spinningthreads=0
 *   needspinning=0 idlethreads=0 runqueue=4 [1 0] schedticks=[ 41 17 ]
 *   preempt: requests=.. signals=.. async=.. deferred=.. memo=.. cooperative=..
 */
#include "sched.h"
#include "signals/signals.h"

#include <string.h>

/* urg__preempt_cost_record: the next task is about to run on mp after an
 * async preemption that began at mp->sig.t0. Context: g0, or the
 * preempted task handing its P on (proc.c, run_next). */
URG_PREEMPT_PATH void urg__preempt_cost_record(m_t *mp)
{
    uint64_t d = urg__nanotime() - mp->sig.t0;
    mp->sig.t0 = 0;
    uint64_t b = d / URG__COST_STEP_NS;
    if (b >= URG__COST_BUCKETS)
        b = URG__COST_BUCKETS - 1;
    __atomic_fetch_add(&sched.preempt_cost[b], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&sched.preempt_cost_sum, d, __ATOMIC_RELAXED);
}

/* Percentile q (0..100) of the cost histogram, as the upper edge of the
 * bucket it falls in. */
static uint64_t cost_percentile(const uint64_t *h, uint64_t total, unsigned q)
{
    uint64_t want = (total * q + 99) / 100, seen = 0;
    for (int i = 0; i < URG__COST_BUCKETS; i++) {
        seen += h[i];
        if (seen >= want && want > 0)
            return (uint64_t)(i + 1) * URG__COST_STEP_NS;
    }
    return 0;
}

/* urg__stats_snapshot fills the whole of this library's urg_stats and, if
 * hist is not NULL, copies the cost histogram (URG__COST_BUCKETS counts)
 * read in the same pass, so that preempt_cost_samples is exactly the sum
 * of hist. Context: any thread. */
void urg__stats_snapshot(urg_stats *out, uint64_t *hist)
{
    memset(out, 0, sizeof(*out));
    if (hist)
        memset(hist, 0, URG__COST_BUCKETS * sizeof(*hist));
    bool guarded = !urg__tls_m;
    if (guarded && !urg__ext_enter())
        return;
    if (!ld_acquire(&sched.running))
        goto done;
    uint64_t created = ld_relaxed(&sched.exited_p_created);
    uint64_t exited = ld_relaxed(&sched.exited_p_exited);
    uint64_t switches = ld_relaxed(&sched.exited_p_switches);
    uint64_t steals = ld_relaxed(&sched.exited_p_steals);
    uint64_t coop = ld_relaxed(&sched.exited_p_coop);
    uint64_t local = 0;
    int32_t n = ld_acquire(&sched.gomaxprocs);
    for (int32_t i = 0; i < n; i++) {
        p_t *pp = sched.allp[i];
        created += ld_relaxed(&pp->n_created);
        exited += ld_relaxed(&pp->n_exited);
        switches += ld_relaxed(&pp->n_switches);
        steals += ld_relaxed(&pp->n_steals);
        coop += ld_relaxed(&pp->n_preempt_coop);
        local += urg__runqlen(pp);
    }
    out->tasks_created = created;
    out->tasks_live = created > exited ? created - exited : 0;
    out->context_switches = switches;
    out->steals = steals;
    out->preempt_requests = ld_relaxed(&sched.preempt_requests);
    out->preempt_signals = ld_relaxed(&sched.preempt_signals);
    out->preempt_async = ld_relaxed(&sched.preempt_async);
    out->preempt_deferred = ld_relaxed(&sched.preempt_deferred);
    out->preempt_walks_memo = ld_relaxed(&sched.preempt_walks_memo);
    out->preempt_wakeup = ld_relaxed(&sched.preempt_wakeup);
    out->preempt_cooperative = coop;
    out->syscall_handoffs = ld_relaxed(&sched.syscall_handoffs);
    out->maxprocs = n;
    out->idle_procs = ld_relaxed(&sched.npidle);
    out->threads = ld_relaxed(&sched.mcount);
    out->idle_threads = ld_relaxed(&sched.nmidle);
    out->spinning_threads = ld_relaxed(&sched.nmspinning);
    out->global_runq = ld_relaxed(&sched.runqsize);
    out->local_runq = local;
    uint64_t h[URG__COST_BUCKETS], total = 0;
    for (int i = 0; i < URG__COST_BUCKETS; i++)
        total += h[i] = ld_relaxed(&sched.preempt_cost[i]);
    if (hist)
        memcpy(hist, h, sizeof(h));
    out->preempt_cost_sum_ns = ld_relaxed(&sched.preempt_cost_sum);
    out->preempt_cost_samples = total;
    out->preempt_cost_p50_ns = cost_percentile(h, total, 50);
    out->preempt_cost_p99_ns = cost_percentile(h, total, 99);
done:
    if (guarded)
        urg__ext_exit();
}

/* urg_stats_get fills the urg_stats of the headers the library was built
 * with: the struct grows only with the soname (docs/api.md, "Growing
 * structs"), so a program that loads this library was built with the same
 * one. Context: any thread. */
void urg_stats_get(urg_stats *out)
{
    if (!out) {
        urg__warn("urg_stats_get(NULL)", "ignored");
        return;
    }
    urg__stats_snapshot(out, NULL);
}

/* urg_stats_get2 fills the caller's struct, whatever its size: the fields it
 * shares with this library's, then zeroes (fields this library lacks). A
 * size over 4096 is taken for a mistake: no urg_stats will be that large.
 * Context: any thread. */
int urg_stats_get2(urg_stats *out, size_t size)
{
    if (!out || size == 0 || size > 4096)
        return -EINVAL;
    urg_stats st;
    urg__stats_snapshot(&st, NULL);
    size_t n = size < sizeof(st) ? size : sizeof(st);
    memcpy(out, &st, n);
    if (size > n)
        memset((char *)out + n, 0, size - n);
    return (int)n;
}

static const char *pstatus_str(uint32_t s)
{
    switch (s) {
    case P_IDLE:
        return "idle";
    case P_RUNNING:
        return "running";
    case P_SYSCALL:
        return "syscall";
    case P_STOP:
        return "stop";
    case P_HANDOFF:
        return "handoff";
    default:
        return "dead";
    }
}

/* urg__schedtrace: Context: sysmon (or any thread; reads without locks,
 * so the numbers are a racy but harmless snapshot). Signal-safe. */
URG_RACY_READER void urg__schedtrace(bool detailed)
{
    urg__pbuf b = {.len = 0};
    uint64_t now = urg__nanotime();
    int32_t n = ld_acquire(&sched.gomaxprocs);
    urg__pb_str(&b, "SCHED ");
    urg__pb_u64(&b, (now - sched.starttime) / 1000000);
    urg__pb_str(&b, "ms: gomaxprocs=");
    urg__pb_i64(&b, n);
    urg__pb_str(&b, " idleprocs=");
    urg__pb_i64(&b, ld_relaxed(&sched.npidle));
    urg__pb_str(&b, " threads=");
    urg__pb_i64(&b, ld_relaxed(&sched.mcount) + 1); /* + sysmon */
    urg__pb_str(&b, " spinningthreads=");
    urg__pb_i64(&b, ld_relaxed(&sched.nmspinning));
    urg__pb_str(&b, " needspinning=");
    urg__pb_u64(&b, ld_relaxed(&sched.needspinning));
    urg__pb_str(&b, " idlethreads=");
    urg__pb_i64(&b, ld_relaxed(&sched.nmidle));
    urg__pb_str(&b, " runqueue=");
    urg__pb_u64(&b, ld_relaxed(&sched.runqsize));
    if (!detailed) {
        urg__pb_str(&b, " [");
        for (int32_t i = 0; i < n; i++) {
            urg__pb_str(&b, i ? " " : "");
            urg__pb_u64(&b, urg__runqlen(sched.allp[i]));
        }
        urg__pb_str(&b, "] schedticks=[ ");
        for (int32_t i = 0; i < n; i++) {
            urg__pb_u64(&b, ld_relaxed(&sched.allp[i]->schedtick));
            urg__pb_str(&b, " ");
        }
        urg__pb_str(&b, "]");
    } else {
        urg__pb_str(&b, " gcwaiting=");
        urg__pb_str(&b, ld_relaxed(&sched.gcwaiting) ? "true" : "false");
        urg__pb_str(&b, " stopwait=");
        urg__pb_i64(&b, sched.stopwait);
        urg__pb_str(&b, " sysmonwait=");
        urg__pb_str(&b, ld_relaxed(&sched.sysmonwait) ? "true" : "false");
    }
    urg__pb_str(&b, "\n  preempt: requests=");
    urg__pb_u64(&b, ld_relaxed(&sched.preempt_requests));
    urg__pb_str(&b, " signals=");
    urg__pb_u64(&b, ld_relaxed(&sched.preempt_signals));
    urg__pb_str(&b, " async=");
    urg__pb_u64(&b, ld_relaxed(&sched.preempt_async));
    urg__pb_str(&b, " deferred=");
    urg__pb_u64(&b, ld_relaxed(&sched.preempt_deferred));
    urg__pb_str(&b, " memo=");
    urg__pb_u64(&b, ld_relaxed(&sched.preempt_walks_memo));
    urg__pb_str(&b, " wakeup=");
    urg__pb_u64(&b, ld_relaxed(&sched.preempt_wakeup));
    uint64_t coop = ld_relaxed(&sched.exited_p_coop);
    for (int32_t i = 0; i < n; i++)
        coop += ld_relaxed(&sched.allp[i]->n_preempt_coop);
    urg__pb_str(&b, " cooperative=");
    urg__pb_u64(&b, coop);
    urg__pb_str(&b, " handoffs=");
    urg__pb_u64(&b, ld_relaxed(&sched.syscall_handoffs));
    urg__pb_str(&b, " detached=");
    urg__pb_u64(&b, ld_relaxed(&sched.detaches));
    urg__pb_str(&b, " blocked=");
    urg__pb_u64(&b, ld_relaxed(&sched.detach_blocked));
    urg__pb_str(&b, "\n");
    urg__pb_flush(&b);
    if (!detailed)
        return;
    for (int32_t i = 0; i < n; i++) {
        p_t *pp = sched.allp[i];
        m_t *mp = ld_relaxed(&pp->m);
        urg__pb_str(&b, "  P");
        urg__pb_i64(&b, i);
        urg__pb_str(&b, ": status=");
        urg__pb_str(&b, pstatus_str(ld_relaxed(&pp->status)));
        urg__pb_str(&b, " schedtick=");
        urg__pb_u64(&b, ld_relaxed(&pp->schedtick));
        urg__pb_str(&b, " syscalltick=");
        urg__pb_u64(&b, ld_relaxed(&pp->syscalltick));
        urg__pb_str(&b, " m=");
        if (mp)
            urg__pb_i64(&b, mp->id);
        else
            urg__pb_str(&b, "nil");
        urg__pb_str(&b, " runqsize=");
        urg__pb_u64(&b, urg__runqlen(pp));
        urg__pb_str(&b, " gfreecnt=");
        urg__pb_i64(&b, pp->ngfree);
        urg__pb_str(&b, " timerslen=");
        urg__pb_u64(&b, ld_relaxed(&pp->ntimers));
        urg__pb_str(&b, "\n");
        urg__pb_flush(&b);
    }
    for (m_t *mp = ld_acquire(&sched.allm); mp; mp = mp->alllink) {
        p_t *pp = ld_relaxed(&mp->p);
        g_t *gp = ld_relaxed(&mp->curg);
        urg__pb_str(&b, "  M");
        urg__pb_i64(&b, mp->id);
        urg__pb_str(&b, ": p=");
        if (pp)
            urg__pb_i64(&b, pp->id);
        else
            urg__pb_str(&b, "nil");
        urg__pb_str(&b, " curg=");
        if (gp)
            urg__pb_u64(&b, gp->id);
        else
            urg__pb_str(&b, "nil");
        urg__pb_str(&b, " locks=");
        urg__pb_i64(&b, mp->locks);
        urg__pb_str(&b, " spinning=");
        urg__pb_str(&b, mp->spinning ? "true" : "false");
        urg__pb_str(&b, " blocked=");
        urg__pb_str(&b, ld_relaxed(&mp->park.key) == 0 && !gp && !pp ? "true" : "false");
        urg__pb_str(&b, "\n");
        urg__pb_flush(&b);
    }
    urg__dump_tasks_brief();
}
