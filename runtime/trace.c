/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * trace.c — the timeline trace: URG_DEBUG=trace=PATH, urg_trace_start and
 * urg_trace_stop. Writes Chrome's Trace Event JSON ({"traceEvents":[...]}),
 * which ui.perfetto.dev and chrome://tracing open: one track per P ("P0",
 * "P1", ...) holding a complete event ("ph":"X") for every slice a task
 * ran there, with why it ended, and a "sysmon" track; instants ("ph":"i")
 * for SIGURGs sent, deferred preemptions, syscall hand-offs, steals,
 * spawns and stops of the world. docs/api.md lists the events and args.
 *
 * Model. Each thread that records (Ms, sysmon, plain threads that spawn)
 * owns a writer: a fixed binary buffer of 32-byte events, appended to
 * without a lock. A full buffer goes on a lock-free list and the writer
 * takes a fresh one; sysmon formats the full ones at its next tick, under
 * the output lock, off the tasks' path. urg_trace_stop (and the end of the
 * run) formats the rest.
 *
 * Appends and stopping. A writer announces an append by raising its busy
 * count (an atomic add, so the SIGURG handler on the same thread sees it
 * whole), then reads the global flag; the stopper clears the flag, then
 * waits for every busy count to be 0. Both sides are seq_cst, so either
 * the writer sees the flag clear and writes nothing, or the stopper waits
 * for its append (Dekker). The stopper then owns every buffer.
 *
 * The signal handler (deferred preemptions) records only when busy was 0
 * before its own increment: otherwise it interrupted an append of its own
 * thread, and the event is dropped and counted (the trace's last event,
 * "dropped", says how many). It never takes a fresh buffer (no malloc) and
 * drops when the buffer is full. Slice ends are never recorded in a
 * handler: the async preemption's end is recorded by the trampoline's C
 * half, in task context, so preempt-async ends match
 * urg_stats.preempt_async exactly.
 *
 * Slices. A slice begins when an M starts a task on a P (proc.c,
 * prepare_run) and ends where the task gives the P up: the writer of that
 * thread keeps the begin (task, P, time) until the end, which emits the
 * complete event. A slice that began before the trace did starts at the
 * trace's start; one still running when it stops is emitted as "running".
 *
 * Cost. Off: one load and branch per hook. On: a clock read and an atomic
 * add per event, and the formatting at sysmon ticks; docs/api.md gives
 * the measured figure.
 *
 * Alternatives rejected: a lock per event (a global lock on every switch
 * of every M); formatting JSON on the M at each event (string work and
 * stdio on the scheduler's path); recording in the handler with the plain
 * append (it can interrupt an append half done on its own thread).
 */
#include "sched.h"
#include "trace.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TR_CAP          4096   /* events per buffer (128 KiB) */
#define TR_TRACK_SYSMON 0xffff /* events of threads without a P */
#define TR_TID_SYSMON   100000 /* the sysmon track's tid in the JSON */

struct tev {
    uint64_t ts;    /* ns, monotonic; a slice's start */
    uint64_t a, b;  /* slice: duration, task; others: see emit */
    uint32_t c;     /* slice: wait reason */
    uint16_t track; /* P id, or TR_TRACK_SYSMON */
    uint8_t kind;   /* enum urg__trace_kind */
    uint8_t why;    /* slice: enum urg__trace_end */
};
_Static_assert(sizeof(struct tev) == 32, "trace event size");

struct tbuf {
    struct tbuf *next; /* on the full list; atomic push */
    uint32_t n;        /* events used; the owner, inside busy */
    struct tev ev[TR_CAP];
};

/* One per thread that records; never freed (a thread that ends gives its
 * writer back for the next thread to claim). */
struct writer {
    struct writer *all; /* the list of writers; set once before publication */
    uint32_t busy;      /* atomic: appends in progress on the owner thread */
    uint32_t owned;     /* atomic: a live thread uses it */
    uint64_t dropped;   /* atomic: the handler found an append in progress */
    /* The owner, inside busy; the stopper once every busy count is 0. */
    struct tbuf *buf;
    uint64_t slice_gen, slice_g, slice_t0; /* the open slice (slice_g 0: none) */
    int32_t slice_p;
};

uint32_t urg__trace_on;
static __thread struct writer *tls_w __attribute__((tls_model("initial-exec")));
static struct writer *writers; /* atomic push */
static struct tbuf *full;      /* atomic push; taken under out_mu */

/* Written by the starter before it sets urg__trace_on (seq_cst, so a
 * release), read by writers after they read it set. */
static uint64_t gen, t0;

/* ctl serialises start and stop; out_mu guards the file (sysmon's drain,
 * the stopper). Order: ctl, then out_mu. Neither is held while tracing
 * code runs on a task's path. */
static pthread_mutex_t ctl = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *out;        /* out_mu (ctl to open and close) */
static bool out_first;   /* out_mu: no event written yet */
static int32_t out_maxp; /* out_mu: the highest P id seen */
static bool atexit_set;  /* ctl */

/* ---- recording ----------------------------------------------------------- */

/* claim: a writer for this thread (a free one, or a new one). Context: any
 * but signal. */
static struct writer *claim(void)
{
    for (struct writer *w = ld_acquire(&writers); w; w = w->all) {
        if (!ld_relaxed(&w->owned) && cas(&w->owned, 0u, 1u)) {
            tls_w = w;
            return w;
        }
    }
    struct writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->owned = 1;
    struct writer *head = ld_relaxed(&writers);
    do
        w->all = head;
    while (!__atomic_compare_exchange_n(&writers, &head, w, false, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
    tls_w = w;
    return w;
}

/* enter: start an append; NULL if nothing must be recorded. In a handler
 * (sig) there is no claiming, and an interrupted append means a drop.
 * Signal-safe with sig. */
static inline struct writer *enter(bool sig)
{
    struct writer *w = tls_w;
    if (!w && (sig || !(w = claim())))
        return NULL;
    if (fetch_add(&w->busy, 1u) != 0) {
        fetch_add(&w->dropped, 1);
        fetch_sub(&w->busy, 1u);
        return NULL;
    }
    if (!ld_seq_cst(&urg__trace_on)) {
        fetch_sub(&w->busy, 1u);
        return NULL;
    }
    return w;
}

/* leave: end an append. Only this thread changes busy (a handler that
 * interrupts here puts back the value it found), so a plain release store
 * does, without a second locked instruction per event. */
static inline void leave(struct writer *w) { st_release(&w->busy, ld_relaxed(&w->busy) - 1u); }

/* slot: the next free event of w's buffer, or NULL. Outside a handler a
 * full buffer goes to the full list and a fresh one replaces it.
 * Signal-safe with sig. */
static struct tev *slot(struct writer *w, bool sig)
{
    struct tbuf *b = w->buf;
    if (b && b->n < TR_CAP)
        return &b->ev[b->n++];
    if (sig)
        return NULL;
    if (b) {
        struct tbuf *head = ld_relaxed(&full);
        do
            b->next = head;
        while (!__atomic_compare_exchange_n(&full, &head, b, false, __ATOMIC_RELEASE,
                                            __ATOMIC_RELAXED));
    }
    b = malloc(sizeof(*b));
    w->buf = b;
    if (!b)
        return NULL;
    b->n = 1;
    return &b->ev[0];
}

static inline uint16_t track(int32_t p) { return p < 0 ? TR_TRACK_SYSMON : (uint16_t)p; }

/* Context: g0 or a task, on the M about to run gid on P p. */
void urg__trace_slice_begin_(int32_t p, uint64_t gid)
{
    struct writer *w = enter(false);
    if (!w)
        return;
    w->slice_gen = gen;
    w->slice_g = gid;
    w->slice_p = p;
    w->slice_t0 = urg__nanotime();
    leave(w);
}

/* Context: the task gid, giving up P p. */
void urg__trace_slice_end_(int32_t p, uint64_t gid, int why, int wait)
{
    struct writer *w = enter(false);
    if (!w)
        return;
    uint64_t now = urg__nanotime(), start = t0;
    if (w->slice_g == gid && w->slice_gen == gen) {
        start = w->slice_t0;
        p = w->slice_p;
    }
    w->slice_g = 0;
    struct tev *e = slot(w, false);
    if (e)
        *e = (struct tev){.ts = start,
                          .a = now - start,
                          .b = gid,
                          .c = (uint32_t)wait,
                          .track = track(p),
                          .kind = TR_EV_SLICE,
                          .why = (uint8_t)why};
    leave(w);
}

void urg__trace_instant_(int kind, int32_t p, uint64_t a, uint64_t b)
{
    struct writer *w = enter(false);
    if (!w)
        return;
    struct tev *e = slot(w, false);
    if (e)
        *e = (struct tev){
            .ts = urg__nanotime(), .a = a, .b = b, .track = track(p), .kind = (uint8_t)kind};
    leave(w);
}

/* urg__trace_deferred_: the SIGURG handler found gid on P p at an unsafe
 * point pc. Only the raw PC is kept; it is symbolized when formatted.
 * Context: signal. Signal-safe. */
void urg__trace_deferred_(int32_t p, uint64_t gid, uint64_t pc)
{
    struct writer *w = enter(true);
    if (!w)
        return;
    struct tev *e = slot(w, true);
    if (e)
        *e = (struct tev){
            .ts = urg__nanotime(), .a = pc, .b = gid, .track = track(p), .kind = TR_EV_DEFERRED};
    else
        fetch_add(&w->dropped, 1);
    leave(w);
}

/* urg__trace_stw_end_: the world restarts. The stopper's task may now sit
 * on another P (procresize): its slice ends and another begins there.
 * Context: the stop_the_world caller. */
void urg__trace_stw_end_(void)
{
    urg__trace_instant_(TR_EV_STW_END, -1, 0, 0);
    m_t *mp = urg__tls_m;
    g_t *gp = mp ? mp->curg : NULL;
    struct writer *w = tls_w;
    if (!gp || !mp->p || !w)
        return;
    w = enter(false);
    if (!w)
        return;
    bool moved = w->slice_g == gp->id && w->slice_gen == gen && w->slice_p != mp->p->id;
    leave(w);
    if (moved) {
        urg__trace_slice_end_(mp->p->id, gp->id, TR_END_STW, 0);
        urg__trace_slice_begin_(mp->p->id, gp->id);
    }
}

/* urg__trace_thread_exit: the thread ends; its writer is free for another.
 * Context: the ending thread. */
void urg__trace_thread_exit(void)
{
    struct writer *w = tls_w;
    if (!w)
        return;
    /* Cleared only while tracing: otherwise the stopper may be reading it,
     * and the next trace's generation makes it stale anyway. */
    if (enter(false)) {
        w->slice_g = 0;
        leave(w);
    }
    tls_w = NULL;
    st_release(&w->owned, 0u);
}

/* ---- formatting ---------------------------------------------------------- */

static const char *why_str(int why)
{
    switch (why) {
    case TR_END_PREEMPT_ASYNC:
        return "preempt-async";
    case TR_END_PREEMPT_COOP:
        return "preempt-coop";
    case TR_END_YIELD:
        return "yield";
    case TR_END_PARK:
        return "park";
    case TR_END_SYSCALL:
        return "syscall";
    case TR_END_EXIT:
        return "exit";
    case TR_END_STW:
        return "stw";
    default:
        return "running";
    }
}

/* json_str: s as a JSON string's contents (quotes, backslashes and
 * control characters escaped). */
static void json_str(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
}

/* Locks: out_mu. */
static void sep(FILE *f)
{
    fputs(out_first ? "\n" : ",\n", f);
    out_first = false;
}

static int tid_of(uint16_t track)
{
    return track == TR_TRACK_SYSMON ? TR_TID_SYSMON : (int)track + 1;
}

/* ts: ns since the trace began, as JSON microseconds with 3 decimals. */
static void ts(FILE *f, const char *key, uint64_t ns)
{
    fprintf(f, "\"%s\":%" PRIu64 ".%03u", key, ns / 1000, (unsigned)(ns % 1000));
}

/* emit one event. Locks: out_mu. */
static void emit(FILE *f, const struct tev *e)
{
    if (e->track != TR_TRACK_SYSMON && e->track > out_maxp)
        out_maxp = e->track;
    uint64_t at = e->ts > t0 ? e->ts - t0 : 0;
    sep(f);
    if (e->kind == TR_EV_SLICE) {
        fprintf(f, "{\"ph\":\"X\",\"pid\":1,\"tid\":%d,", tid_of(e->track));
        ts(f, "ts", at);
        fputc(',', f);
        ts(f, "dur", e->a);
        fprintf(f, ",\"name\":\"task %" PRIu64 "\",\"args\":{\"task\":%" PRIu64 ",\"end\":\"%s",
                e->b, e->b, why_str(e->why));
        if (e->why == TR_END_PARK) {
            fputc(':', f);
            json_str(f, urg__waitreason_str((int)e->c));
        }
        fputs("\"}}", f);
        return;
    }
    static const char *const names[] = {
        [TR_EV_SIGURG] = "SIGURG",
        [TR_EV_DEFERRED] = "preempt deferred",
        [TR_EV_HANDOFF] = "syscall handoff",
        [TR_EV_STEAL] = "steal",
        [TR_EV_STW_START] = "stw start",
        [TR_EV_STW_END] = "stw end",
        [TR_EV_SPAWN] = "spawn",
    };
    const char *name = e->kind < URG__ARRAY_LEN(names) && names[e->kind] ? names[e->kind] : "?";
    fprintf(f, "{\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":%d,", tid_of(e->track));
    ts(f, "ts", at);
    fprintf(f, ",\"name\":\"%s\",\"args\":{", name);
    switch (e->kind) {
    case TR_EV_SIGURG:
        fprintf(f, "\"proc\":%" PRIu64, e->a);
        break;
    case TR_EV_DEFERRED: {
        fprintf(f, "\"task\":%" PRIu64 ",\"pc\":\"0x%" PRIx64 "\"", e->b, e->a);
        /* dladdr: cheap, and done here rather than in the handler. It sees
         * exported symbols only; the PC is there for the rest. */
        Dl_info di;
        if (dladdr((void *)(uintptr_t)e->a, &di) && di.dli_fname) {
            fputs(",\"where\":\"", f);
            if (di.dli_sname) {
                json_str(f, di.dli_sname);
                fprintf(f, "+0x%" PRIxPTR " ", (uintptr_t)e->a - (uintptr_t)di.dli_saddr);
            }
            const char *base = strrchr(di.dli_fname, '/');
            json_str(f, base ? base + 1 : di.dli_fname);
            fputc('"', f);
        }
        break;
    }
    case TR_EV_HANDOFF:
        fprintf(f, "\"proc\":%u", (unsigned)e->track);
        break;
    case TR_EV_STEAL:
        fprintf(f, "\"task\":%" PRIu64 ",\"from\":%" PRIu64, e->b, e->a);
        break;
    case TR_EV_SPAWN:
        fprintf(f, "\"task\":%" PRIu64, e->a);
        break;
    default:
        break;
    }
    fputs("}}", f);
}

/* emit_bufs: format and free a list of buffers. Locks: out_mu. */
static void emit_bufs(struct tbuf *b)
{
    while (b) {
        struct tbuf *next = b->next;
        if (out)
            for (uint32_t i = 0; i < b->n; i++)
                emit(out, &b->ev[i]);
        free(b);
        b = next;
    }
}

/* urg__trace_drain_: format the buffers that filled up. Context: sysmon
 * (any thread but a signal handler). */
void urg__trace_drain_(void)
{
    if (!ld_relaxed(&full))
        return;
    pthread_mutex_lock(&out_mu);
    emit_bufs(xchg(&full, (struct tbuf *)NULL));
    pthread_mutex_unlock(&out_mu);
}

/* ---- starting and stopping ----------------------------------------------- */

static void stop_at_exit(void) { urg_trace_stop(); }

/* Locks: ctl. */
static int start_locked(const char *path)
{
    if (out)
        return -EBUSY;
    FILE *f = fopen(path, "we");
    if (!f)
        return errno ? -errno : -EIO;
    pthread_mutex_lock(&out_mu);
    out = f;
    out_first = true;
    out_maxp = ld_relaxed(&sched.gomaxprocs) - 1;
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", f);
    pthread_mutex_unlock(&out_mu);
    if (!atexit_set)
        atexit_set = atexit(stop_at_exit) == 0;
    gen++;
    t0 = urg__nanotime();
    st_seq_cst(&urg__trace_on, 1u);
    return 0;
}

/* Locks: ctl. */
static int stop_locked(void)
{
    if (!out)
        return -ENOENT;
    uint64_t end = urg__nanotime();
    st_seq_cst(&urg__trace_on, 0u);
    /* Wait out the appends that saw the flag set (a few ns each, unless
     * the kernel preempted the thread inside one). */
    for (struct writer *w = ld_acquire(&writers); w; w = w->all)
        while (ld_seq_cst(&w->busy) != 0)
            sched_yield();
    pthread_mutex_lock(&out_mu);
    emit_bufs(xchg(&full, (struct tbuf *)NULL));
    uint64_t dropped = 0;
    for (struct writer *w = ld_acquire(&writers); w; w = w->all) {
        struct tbuf *b = w->buf;
        w->buf = NULL;
        if (b)
            b->next = NULL;
        emit_bufs(b);
        if (w->slice_g && w->slice_gen == gen) {
            struct tev e = {.ts = w->slice_t0,
                            .a = end - w->slice_t0,
                            .b = w->slice_g,
                            .track = track(w->slice_p),
                            .kind = TR_EV_SLICE,
                            .why = TR_END_RUNNING};
            emit(out, &e);
        }
        w->slice_g = 0;
        dropped += xchg(&w->dropped, (uint64_t)0);
    }
    FILE *f = out;
    sep(f);
    fputs("{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"urgent\"}}", f);
    for (int32_t p = 0; p <= out_maxp; p++) {
        fprintf(f,
                ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"name\":\"thread_name\",\"args\":"
                "{\"name\":\"P%d\"}}",
                p + 1, p);
        fprintf(f,
                ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"name\":\"thread_sort_index\",\"args\":"
                "{\"sort_index\":%d}}",
                p + 1, p);
    }
    fprintf(f,
            ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"name\":\"thread_name\",\"args\":{\"name\":"
            "\"sysmon\"}},\n{\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"name\":\"thread_sort_index\","
            "\"args\":{\"sort_index\":%d}}",
            TR_TID_SYSMON, TR_TID_SYSMON, TR_TID_SYSMON);
    fprintf(f, ",\n{\"ph\":\"i\",\"s\":\"g\",\"pid\":1,\"tid\":%d,", TR_TID_SYSMON);
    ts(f, "ts", end - t0);
    fprintf(f, ",\"name\":\"trace end\",\"args\":{\"dropped\":%" PRIu64 "}}\n]}\n", dropped);
    out = NULL;
    pthread_mutex_unlock(&out_mu);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad)
        return -EIO;
    return 0;
}

int urg_trace_start(const char *path)
{
    if (!path || !*path)
        return -EINVAL;
    pthread_mutex_lock(&ctl);
    int r = start_locked(path);
    pthread_mutex_unlock(&ctl);
    return r;
}

int urg_trace_stop(void)
{
    pthread_mutex_lock(&ctl);
    int r = stop_locked();
    pthread_mutex_unlock(&ctl);
    return r;
}

/* urg__trace_env_start: URG_DEBUG=trace=PATH. A trace already running (the
 * program's) is left alone; a path that cannot be opened gets one line.
 * Context: urg_run, before the first M. */
void urg__trace_env_start(const char *path)
{
    pthread_mutex_lock(&ctl);
    int r = start_locked(path);
    pthread_mutex_unlock(&ctl);
    if (r != 0 && r != -EBUSY) {
        urg__pbuf b = {.len = 0};
        urg__pb_str(&b, "urgent: URG_DEBUG trace=");
        urg__pb_str(&b, path);
        urg__pb_str(&b, ": cannot open the file (");
        urg__pb_str(&b, strerror(-r));
        urg__pb_str(&b, "); not tracing\n");
        urg__pb_flush(&b);
    }
}

/* urg__trace_run_end: the run's Ms have stopped: finish any trace, so
 * that the file is complete when urg_run returns. Context: urg_run. */
void urg__trace_run_end(void)
{
    pthread_mutex_lock(&ctl);
    stop_locked();
    pthread_mutex_unlock(&ctl);
}
