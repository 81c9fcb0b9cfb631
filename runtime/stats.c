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
URG__PREEMPT_PATH void urg__preempt_cost_record(m_t *mp)
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

/* ---- schedtrace: tables of fields ---------------------------------------
 *
 * Each line is a head ("SCHED 1001ms:", "  P0:", "  M3:") and then rows of
 * " label=value" read from a table: one getter per field, one loop to
 * print them (pb_fields). tests/test_dump.c and stress/backlog/plot.sh
 * parse the text: its bytes must not change. */

/* A field's value: a number, or a word ("true", "nil", "running"). */
struct tval {
    enum { TV_U64, TV_I64, TV_STR } kind;
    union {
        uint64_t u;
        int64_t i;
        const char *s;
    };
};
#define TV_U(x) ((struct tval){.kind = TV_U64, .u = (uint64_t)(x)})
#define TV_I(x) ((struct tval){.kind = TV_I64, .i = (int64_t)(x)})
#define TV_S(x) ((struct tval){.kind = TV_STR, .s = (x)})
#define TV_B(x) TV_S((x) ? "true" : "false")

/* What the getters of a line read: gomaxprocs as read once for the whole
 * trace; a P line's P and its M; an M line's M, its P and its task (each
 * read once for the line). */
struct tctx {
    int32_t n;
    p_t *pp;
    m_t *mp;
    g_t *gp;
};

struct tfield {
    const char *label;
    struct tval (*get)(const struct tctx *c);
};

static void pb_val(urg__pbuf *b, struct tval v)
{
    switch (v.kind) {
    case TV_U64:
        urg__pb_u64(b, v.u);
        break;
    case TV_I64:
        urg__pb_i64(b, v.i);
        break;
    case TV_STR:
        urg__pb_str(b, v.s);
        break;
    }
}

/* pb_fields: " label=value" for each row of f, in order. */
URG__RACY_READER static void pb_fields(urg__pbuf *b, const struct tfield *f, size_t nf,
                                       const struct tctx *c)
{
    for (size_t i = 0; i < nf; i++) {
        urg__pb_str(b, " ");
        urg__pb_str(b, f[i].label);
        urg__pb_str(b, "=");
        pb_val(b, f[i].get(c));
    }
}

/* A getter: static struct tval tf_NAME(const struct tctx *c). */
#define TFIELD(name, expr)                                                                         \
    URG__RACY_READER static struct tval tf_##name(const struct tctx *c)                            \
    {                                                                                              \
        (void)c;                                                                                   \
        return expr;                                                                               \
    }

/* The SCHED line: Go's fields. */
TFIELD(gomaxprocs, TV_I(c->n))
TFIELD(idleprocs, TV_I(ld_relaxed(&sched.npidle)))
TFIELD(threads, TV_I(ld_relaxed(&sched.mcount) + 1)) /* + sysmon */
TFIELD(spinningthreads, TV_I(ld_relaxed(&sched.nmspinning)))
TFIELD(needspinning, TV_U(ld_relaxed(&sched.needspinning)))
TFIELD(idlethreads, TV_I(ld_relaxed(&sched.nmidle)))
TFIELD(runqueue, TV_U(ld_relaxed(&sched.runqsize)))
static const struct tfield sched_fields[] = {
    {"gomaxprocs", tf_gomaxprocs},     {"idleprocs", tf_idleprocs},
    {"threads", tf_threads},           {"spinningthreads", tf_spinningthreads},
    {"needspinning", tf_needspinning}, {"idlethreads", tf_idlethreads},
    {"runqueue", tf_runqueue},
};

/* ... and with scheddetail, the stop-the-world state. */
TFIELD(stw_waiting, TV_B(ld_relaxed(&sched.stw_waiting)))
TFIELD(stopwait, TV_I(sched.stopwait))
TFIELD(sysmonwait, TV_B(ld_relaxed(&sched.sysmonwait)))
static const struct tfield detail_fields[] = {
    {"gcwaiting", tf_stw_waiting}, /* Go's name for the field, kept for its parsers */
    {"stopwait", tf_stopwait},
    {"sysmonwait", tf_sysmonwait},
};

/* The preempt line: our counters. */
URG__RACY_READER static uint64_t coop_count(int32_t n)
{
    uint64_t coop = ld_relaxed(&sched.exited_p_coop);
    for (int32_t i = 0; i < n; i++)
        coop += ld_relaxed(&sched.allp[i]->n_preempt_coop);
    return coop;
}
TFIELD(requests, TV_U(ld_relaxed(&sched.preempt_requests)))
TFIELD(signals, TV_U(ld_relaxed(&sched.preempt_signals)))
TFIELD(async, TV_U(ld_relaxed(&sched.preempt_async)))
TFIELD(deferred, TV_U(ld_relaxed(&sched.preempt_deferred)))
TFIELD(memo, TV_U(ld_relaxed(&sched.preempt_walks_memo)))
TFIELD(wakeup, TV_U(ld_relaxed(&sched.preempt_wakeup)))
TFIELD(cooperative, TV_U(coop_count(c->n)))
TFIELD(handoffs, TV_U(ld_relaxed(&sched.syscall_handoffs)))
TFIELD(detached, TV_U(ld_relaxed(&sched.detaches)))
TFIELD(blocked, TV_U(ld_relaxed(&sched.detach_blocked)))
static const struct tfield preempt_fields[] = {
    {"requests", tf_requests},       {"signals", tf_signals},   {"async", tf_async},
    {"deferred", tf_deferred},       {"memo", tf_memo},         {"wakeup", tf_wakeup},
    {"cooperative", tf_cooperative}, {"handoffs", tf_handoffs}, {"detached", tf_detached},
    {"blocked", tf_blocked},
};

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

/* A P line (scheddetail). */
TFIELD(p_status, TV_S(pstatus_str(ld_relaxed(&c->pp->status))))
TFIELD(p_schedtick, TV_U(ld_relaxed(&c->pp->schedtick)))
TFIELD(p_syscalltick, TV_U(ld_relaxed(&c->pp->syscalltick)))
TFIELD(p_m, c->mp ? TV_I(c->mp->id) : TV_S("nil"))
TFIELD(p_runqsize, TV_U(urg__runqlen(c->pp)))
TFIELD(p_gfreecnt, TV_I(c->pp->ngfree))
TFIELD(p_timerslen, TV_U(ld_relaxed(&c->pp->ntimers)))
static const struct tfield p_fields[] = {
    {"status", tf_p_status},           {"schedtick", tf_p_schedtick},
    {"syscalltick", tf_p_syscalltick}, {"m", tf_p_m},
    {"runqsize", tf_p_runqsize},       {"gfreecnt", tf_p_gfreecnt},
    {"timerslen", tf_p_timerslen},
};

/* An M line (scheddetail). */
TFIELD(m_p, c->pp ? TV_I(c->pp->id) : TV_S("nil"))
TFIELD(m_curg, c->gp ? TV_U(c->gp->id) : TV_S("nil"))
TFIELD(m_locks, TV_I(c->mp->locks))
TFIELD(m_spinning, TV_B(c->mp->spinning))
TFIELD(m_blocked, TV_B(ld_relaxed(&c->mp->park.key) == 0 && !c->gp && !c->pp))
static const struct tfield m_fields[] = {
    {"p", tf_m_p},
    {"curg", tf_m_curg},
    {"locks", tf_m_locks},
    {"spinning", tf_m_spinning},
    {"blocked", tf_m_blocked},
};

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

/* pb_runqs: " [1 0] schedticks=[ 41 17 ]": each P's queue length and
 * schedtick (the SCHED line without scheddetail, as Go's). */
URG__RACY_READER static void pb_runqs(urg__pbuf *b, int32_t n)
{
    urg__pb_str(b, " [");
    for (int32_t i = 0; i < n; i++) {
        urg__pb_str(b, i ? " " : "");
        urg__pb_u64(b, urg__runqlen(sched.allp[i]));
    }
    urg__pb_str(b, "] schedticks=[ ");
    for (int32_t i = 0; i < n; i++) {
        urg__pb_u64(b, ld_relaxed(&sched.allp[i]->schedtick));
        urg__pb_str(b, " ");
    }
    urg__pb_str(b, "]");
}

/* urg__schedtrace: Context: sysmon (or any thread; reads without locks,
 * so the numbers are a racy but harmless snapshot). Signal-safe. */
URG__RACY_READER void urg__schedtrace(bool detailed)
{
    urg__pbuf b = {.len = 0};
    uint64_t now = urg__nanotime();
    struct tctx c = {.n = ld_acquire(&sched.gomaxprocs)};
    urg__pb_str(&b, "SCHED ");
    urg__pb_u64(&b, (now - sched.starttime) / 1000000);
    urg__pb_str(&b, "ms:");
    pb_fields(&b, sched_fields, NFIELDS(sched_fields), &c);
    if (!detailed)
        pb_runqs(&b, c.n);
    else
        pb_fields(&b, detail_fields, NFIELDS(detail_fields), &c);
    urg__pb_str(&b, "\n  preempt:");
    pb_fields(&b, preempt_fields, NFIELDS(preempt_fields), &c);
    urg__pb_str(&b, "\n");
    urg__pb_flush(&b);
    if (!detailed)
        return;
    for (int32_t i = 0; i < c.n; i++) {
        struct tctx pc = {.n = c.n, .pp = sched.allp[i]};
        pc.mp = ld_relaxed(&pc.pp->m);
        urg__pb_str(&b, "  P");
        urg__pb_i64(&b, i);
        urg__pb_str(&b, ":");
        pb_fields(&b, p_fields, NFIELDS(p_fields), &pc);
        urg__pb_str(&b, "\n");
        urg__pb_flush(&b);
    }
    for (m_t *mp = ld_acquire(&sched.allm); mp; mp = mp->alllink) {
        struct tctx mc = {
            .n = c.n, .mp = mp, .pp = ld_relaxed(&mp->p), .gp = ld_relaxed(&mp->curg)};
        urg__pb_str(&b, "  M");
        urg__pb_i64(&b, mp->id);
        urg__pb_str(&b, ":");
        pb_fields(&b, m_fields, NFIELDS(m_fields), &mc);
        urg__pb_str(&b, "\n");
        urg__pb_flush(&b);
    }
    urg__dump_tasks_brief();
}
