/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * stats_format.c — urg_stats_format: the counters as text a monitoring
 * system scrapes.
 *
 * URG_STATS_PROMETHEUS writes the Prometheus text exposition format
 * (version 0.0.4): for each metric a "# HELP" and a "# TYPE" line, then its
 * samples. Monotonic counts are counters named *_total; values that go up
 * and down (tasks live, queue lengths, threads) are gauges. The cost of an
 * async preemption is a real histogram, urgent_preempt_cost_seconds with
 * cumulative _bucket{le=...} samples, _sum and _count, so that a server can
 * aggregate it across processes and compute any quantile (p50 and p99 of
 * urg_stats cannot be combined). The runtime keeps 256 buckets of 250 ns;
 * exposing them all would make every scrape 256 lines, so the buckets here
 * are powers of two from 250 ns to 32 us, each the sum of whole runtime
 * buckets (every edge is a multiple of 250 ns, so no count is split) and
 * exact. _count is the sum of the same histogram snapshot, so the +Inf
 * bucket always equals it; _sum is read beside it and may be a sample or
 * two ahead while preemptions happen (documented in docs/api.md).
 *
 * URG_STATS_TEXT writes "field value" lines, one per urg_stats field, for
 * logs and humans.
 *
 * Like snprintf: the whole text is measured even when buf is too small, so
 * a caller can ask for the size (buf NULL, len 0), allocate, and call
 * again (the counters may have grown a digit since: leave some slack).
 */
#include "sched.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* out: the caller's buffer and how much the text needs so far. */
typedef struct {
    char *buf;
    size_t len;
    size_t need;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* put appends to o like snprintf, keeping buf NUL-terminated. */
static void put(out_t *o, const char *fmt, ...)
{
    va_list ap;
    size_t room = o->need < o->len ? o->len - o->need : 0;
    va_start(ap, fmt);
    int n = vsnprintf(room ? o->buf + o->need : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->need += (size_t)n;
}

typedef enum { COUNTER, GAUGE } kind_t;

/* metric writes one HELP/TYPE/sample group. */
static void metric(out_t *o, kind_t k, const char *name, const char *help, uint64_t v)
{
    const char *suffix = k == COUNTER ? "_total" : "";
    put(o, "# HELP urgent_%s%s %s\n", name, suffix, help);
    put(o, "# TYPE urgent_%s%s %s\n", name, suffix, k == COUNTER ? "counter" : "gauge");
    put(o, "urgent_%s%s %llu\n", name, suffix, (unsigned long long)v);
}

/* seconds writes ns as a decimal number of seconds, exactly. */
static void seconds(out_t *o, uint64_t ns)
{
    put(o, "%llu.%09llu", (unsigned long long)(ns / 1000000000u),
        (unsigned long long)(ns % 1000000000u));
}

static void prometheus(out_t *o, const urg_stats *st, const uint64_t *h)
{
    metric(o, COUNTER, "tasks_created", "Tasks created in this run, main included.",
           st->tasks_created);
    metric(o, GAUGE, "tasks_live", "Tasks created and not finished (running, queued or blocked).",
           st->tasks_live);
    metric(o, COUNTER, "context_switches", "Times a task was given a thread to run on.",
           st->context_switches);
    metric(o, COUNTER, "steals", "Successful steals from another proc's run queue.", st->steals);
    metric(o, COUNTER, "preempt_requests",
           "Requests that a running task yield (sysmon or stop-the-world; retries count).",
           st->preempt_requests);
    metric(o, COUNTER, "preempt_signals", "SIGURGs sent to preempt a task.", st->preempt_signals);
    metric(o, COUNTER, "preempt_async", "Preemptions completed by the signal path.",
           st->preempt_async);
    metric(o, COUNTER, "preempt_deferred", "SIGURGs that landed at an unsafe point.",
           st->preempt_deferred);
    metric(o, COUNTER, "preempt_cooperative",
           "Preemption requests honoured at a checkpoint or runtime call.",
           st->preempt_cooperative);
    metric(o, COUNTER, "preempt_walks_memo",
           "Safe-point checks answered from a remembered stack walk.", st->preempt_walks_memo);
    metric(o, COUNTER, "preempt_wakeup",
           "Preemption requests made early for a woken task (wake-up preemption).",
           st->preempt_wakeup);
    metric(o, COUNTER, "syscall_handoffs", "Procs taken from threads blocked in syscalls.",
           st->syscall_handoffs);
    metric(o, GAUGE, "maxprocs", "Procs (GOMAXPROCS).", (uint64_t)st->maxprocs);
    metric(o, GAUGE, "idle_procs", "Procs idle now.", (uint64_t)st->idle_procs);
    metric(o, GAUGE, "threads", "Runtime threads (not the urg_run caller).", (uint64_t)st->threads);
    metric(o, GAUGE, "idle_threads", "Runtime threads idle now.", (uint64_t)st->idle_threads);
    metric(o, GAUGE, "spinning_threads", "Runtime threads looking for work now.",
           (uint64_t)st->spinning_threads);
    metric(o, GAUGE, "global_runq", "Tasks queued now on the global run queue.", st->global_runq);
    metric(o, GAUGE, "local_runq", "Tasks queued now on all procs' local run queues.",
           st->local_runq);

    const char *name = "urgent_preempt_cost_seconds";
    put(o,
        "# HELP %s Cost of an async preemption to the preempted thread, from the SIGURG "
        "handler's entry to the next task running there.\n",
        name);
    put(o, "# TYPE %s histogram\n", name);
    uint64_t cum = 0;
    int i = 0;
    for (unsigned edge = 1; edge <= URG__COST_BUCKETS / 2; edge *= 2) {
        /* Buckets [0, edge) hold costs below edge * 250 ns. */
        for (; i < (int)edge; i++)
            cum += h[i];
        put(o, "%s_bucket{le=\"", name);
        seconds(o, (uint64_t)edge * URG__COST_STEP_NS);
        put(o, "\"} %llu\n", (unsigned long long)cum);
    }
    for (; i < URG__COST_BUCKETS; i++)
        cum += h[i];
    put(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    put(o, "%s_sum ", name);
    seconds(o, st->preempt_cost_sum_ns);
    put(o, "\n%s_count %llu\n", name, (unsigned long long)cum);
}

static void text(out_t *o, const urg_stats *st)
{
#define F(f) put(o, "%s %llu\n", #f, (unsigned long long)st->f)
    F(tasks_created);
    F(tasks_live);
    F(context_switches);
    F(steals);
    F(preempt_requests);
    F(preempt_signals);
    F(preempt_async);
    F(preempt_deferred);
    F(preempt_cooperative);
    F(syscall_handoffs);
    F(maxprocs);
    F(idle_procs);
    F(threads);
    F(idle_threads);
    F(spinning_threads);
    F(global_runq);
    F(local_runq);
    F(preempt_cost_samples);
    F(preempt_cost_p50_ns);
    F(preempt_cost_p99_ns);
    F(preempt_walks_memo);
    F(preempt_wakeup);
    F(preempt_cost_sum_ns);
#undef F
}

/* urg_stats_format: see urgent.h. Context: any thread (a task too: it
 * takes no runtime lock and calls only vsnprintf). Returns the length the
 * whole text needs, or -EINVAL. */
int urg_stats_format(char *buf, size_t len, int format)
{
    if (format != URG_STATS_PROMETHEUS && format != URG_STATS_TEXT)
        return -EINVAL;
    if (!buf && len > 0)
        return -EINVAL;
    urg_stats st;
    uint64_t h[URG__COST_BUCKETS];
    urg__stats_snapshot(&st, h);
    out_t o = {.buf = buf, .len = len, .need = 0};
    if (len > 0)
        buf[0] = '\0';
    if (format == URG_STATS_PROMETHEUS)
        prometheus(&o, &st, h);
    else
        text(&o, &st);
    return o.need > INT_MAX ? INT_MAX : (int)o.need;
}
