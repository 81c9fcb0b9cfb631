/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * signals/deferprof.c — URG_DEBUG=deferprof=1: where, and why, the SIGURG
 * handler deferred preemptions.
 *
 * preempt_deferred counts signals that landed where a task cannot be
 * preempted; this says which code, so a user can see that a hog sits in
 * memset (libc) or behind urg_preempt_disable, and fix it or accept it.
 * The handler (preempt.c) knows the reason (enum urg__defer_reason in
 * runtime/preempt_iface.h, in the order it checks) and, for a refused caller (a
 * comparator called from qsort), which frame said no; we add the nearest
 * frame in preemptible code above a PC that is not, so that a deferral in
 * libc names the program's function that called it.
 *
 * Recording runs in the handler, on any M at once, so the table is a
 * fixed array with open addressing, keyed by (interrupted PC, reason) in
 * one word: a key is claimed with a CAS from 0 and never released during
 * a run; counts are atomic adds. A full neighbourhood drops the sample
 * into `dropped` (reported). No locks, no allocation, no libc: the walk
 * that finds the calling frame is the handler's own bounded unwinder on
 * the M's address space.
 *
 * Reporting (the end of every run, and urg_dump) picks the top sites by
 * count and symbolizes them with unwind/symbolize.c, outside the handler.
 * Everything here is Signal-safe; the table is reset when a run starts.
 *
 * Rejected: per-M tables (merging them needs the list of Ms, which a
 * dump from a signal cannot lock, and an M may exit before the report);
 * a ring of raw samples (loses the old ones to a busy hog and makes the
 * report sort thousands of entries).
 */
#include "handler.h"

#define DP_SLOTS 1024 /* power of two */
#define DP_PROBE 32   /* slots looked at before a sample is dropped */
#define DP_TOP   10
#define DP_FROM  16 /* frames walked to find the calling frame */

struct dp_ent {
    uint64_t key;     /* atomic: 0 free, else pc << 8 | reason; set once per run */
    uint64_t count;   /* atomic */
    uintptr_t from;   /* atomic: nearest preemptible caller, 0 if none or the PC is */
    uintptr_t caller; /* atomic: the refused caller (DEFER_CALLER), else 0 */
};

URG__HIDDEN int urg__deferprof;
static struct dp_ent tab[DP_SLOTS];
static uint64_t dropped; /* atomic */

static const char *const reasons[DEFER__COUNT] = {
    [DEFER_NONE] = "not deferred",
    [DEFER_TSAN] = "ThreadSanitizer",
    [DEFER_PREEMPT_OFF] = "preempt disabled",
    [DEFER_RUNTIME_LOCK] = "runtime lock held",
    [DEFER_THREAD_LOCK] = "pthread lock held",
    [DEFER_NO_P] = "proc not running",
    [DEFER_OFF_STACK] = "sp off task stack",
    [DEFER_STACK_ROOM] = "no stack room",
    [DEFER_FORBIDDEN] = "libc/blocked module",
    [DEFER_UNSAFE_RANGE] = "unsafe range",
    [DEFER_LOCK_WRAPPER] = "lock wrapper",
    [DEFER_RUNTIME] = "urgent runtime",
    [DEFER_UNKNOWN] = "no module",
    [DEFER_FOREIGN] = "module not opted in",
    [DEFER_WALK] = "unwind failed",
    [DEFER_MODULES_CHANGED] = "modules changed",
    [DEFER_TLS_ADDR] = "holds a TLS address",
};

/* urg__defer_reason_str: Signal-safe. */
const char *urg__defer_reason_str(uint32_t reason)
{
    reason &= ~DEFER_CALLER;
    return reason < DEFER__COUNT ? reasons[reason] : "?";
}

/* nearest_user: the first frame, from the interrupted context up, in
 * preemptible code (a PC of the program or an opted-in object), or 0.
 * Reads only the task's stack and loaded objects. Context: the SIGURG
 * handler on st's thread (it uses that thread's unwinder address space). */
static uintptr_t nearest_user(struct urg__sigthread *st, const struct urg__preempt_task *t,
                              const uint64_t regs[URG_NREGS])
{
    struct urg__modview v;
    urg__modview_begin(&v);
    if (urg__pc_classify(&v, regs[URG__REG_PC]) == PC_USER)
        return 0; /* the PC itself names it */
    urg__walk_t w;
    if (urg__walk_begin(&w, st->unw_as, regs, t->stack_lo, t->stack_hi, &v) != 0)
        return 0;
    uintptr_t found = 0;
    for (int i = 0; i < DP_FROM && urg__walk_step(&w) > 0; i++) {
        uintptr_t ip = urg__walk_ip(&w);
        if (ip == (uintptr_t)urg__task_fn_return)
            break;
        if (urg__pc_classify(&v, ip) == PC_USER) {
            found = urg__modview_valid(&v) ? ip : 0;
            break;
        }
    }
    urg__walk_end(&w);
    return found;
}

/* slot_for: the entry of key, claimed if new, or NULL when its
 * neighbourhood is full. Signal-safe, lock-free. */
static struct dp_ent *slot_for(uint64_t key)
{
    uint32_t h = (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 54) & (DP_SLOTS - 1);
    for (uint32_t i = 0; i < DP_PROBE; i++) {
        struct dp_ent *e = &tab[(h + i) & (DP_SLOTS - 1)];
        uint64_t k = ld_acquire(&e->key);
        if (k == key)
            return e;
        if (k == 0 && (cas(&e->key, 0ull, key) || ld_acquire(&e->key) == key))
            return e;
    }
    return NULL;
}

/* urg__deferprof_record: Context: the SIGURG handler on st's thread
 * (running task t). Touches only tab and dropped (atomics), t's stack
 * (read), st's unwinder. Signal-safe. */
void urg__deferprof_record(struct urg__sigthread *st, const struct urg__preempt_task *t,
                           const void *uc, uint32_t reason, uintptr_t refused)
{
    uint64_t regs[URG_NREGS];
    urg__sigctx_regs(uc, regs);
    uint64_t key = (uint64_t)regs[URG__REG_PC] << 8 | (reason & 0xff);
    struct dp_ent *e = slot_for(key);
    if (!e) {
        fetch_add(&dropped, 1ull);
        return;
    }
    /* The first sample at a site fills in its frames; later ones only
     * count (the frames above one PC rarely differ, and walking again at
     * every signal would make a hog's deferrals cost more). */
    if (fetch_add(&e->count, 1ull) == 0) {
        if (refused)
            st_relaxed(&e->caller, refused);
        uintptr_t from = nearest_user(st, t, regs);
        if (from)
            st_relaxed(&e->from, from);
    }
}

/* urg__deferprof_reset: Context: urg_run, before any M starts. */
void urg__deferprof_reset(void)
{
    for (int i = 0; i < DP_SLOTS; i++) {
        st_relaxed(&tab[i].count, 0ull);
        st_relaxed(&tab[i].from, (uintptr_t)0);
        st_relaxed(&tab[i].caller, (uintptr_t)0);
        st_release(&tab[i].key, 0ull);
    }
    st_relaxed(&dropped, 0ull);
}

/* urg__deferprof_count: Signal-safe. */
uint64_t urg__deferprof_count(uint32_t reason)
{
    uint64_t n = 0;
    for (int i = 0; i < DP_SLOTS; i++) {
        uint64_t k = ld_acquire(&tab[i].key);
        if (k && (k & 0xff) == reason)
            n += ld_relaxed(&tab[i].count);
    }
    return n;
}

/* urg__deferprof_report: the DP_TOP busiest sites, one line each:
 *   deferprof: COUNT REASON at FRAME [caller FRAME] [from FRAME]
 * Signal-safe (symbolizing opens and maps files, as urg_dump does). */
void urg__deferprof_report(void)
{
    if (!urg__deferprof)
        return;
    int top[DP_TOP] = {0};
    uint64_t topn[DP_TOP] = {0};
    int ntop = 0, sites = 0;
    uint64_t total = 0;
    for (int i = 0; i < DP_SLOTS; i++) {
        if (!ld_acquire(&tab[i].key))
            continue;
        uint64_t c = ld_relaxed(&tab[i].count);
        if (c == 0)
            continue;
        sites++;
        total += c;
        int j = ntop < DP_TOP ? ntop++ : DP_TOP;
        if (j == DP_TOP && c <= topn[DP_TOP - 1])
            continue;
        if (j == DP_TOP)
            j = DP_TOP - 1;
        for (; j > 0 && topn[j - 1] < c; j--) {
            top[j] = top[j - 1];
            topn[j] = topn[j - 1];
        }
        top[j] = i;
        topn[j] = c;
    }
    urg__pbuf b = {.len = 0};
    urg__pb_str(&b, "deferprof: ");
    urg__pb_u64(&b, total);
    urg__pb_str(&b, " deferred preemptions at ");
    urg__pb_u64(&b, (uint64_t)sites);
    urg__pb_str(&b, " sites");
    uint64_t d = ld_relaxed(&dropped);
    if (d) {
        urg__pb_str(&b, " (and ");
        urg__pb_u64(&b, d);
        urg__pb_str(&b, " not recorded: table full)");
    }
    urg__pb_str(&b, ntop ? "; top sites:\n" : "\n");
    urg__pb_flush(&b);
    struct urg__modview v;
    urg__modview_begin(&v);
    for (int t = 0; t < ntop; t++) {
        const struct dp_ent *e = &tab[top[t]];
        uint64_t key = ld_relaxed(&e->key);
        uint32_t reason = (uint32_t)(key & 0xff);
        urg__pb_str(&b, "deferprof: ");
        urg__pb_u64(&b, topn[t]);
        urg__pb_str(&b, " ");
        urg__pb_str(&b, urg__defer_reason_str(reason));
        urg__pb_str(&b, reason & DEFER_CALLER ? " (a caller)" : "");
        urg__pb_str(&b, " at ");
        urg__pb_symbol(&b, &v, (uintptr_t)(key >> 8));
        uintptr_t caller = ld_relaxed(&e->caller), from = ld_relaxed(&e->from);
        if (caller) {
            urg__pb_str(&b, " caller ");
            urg__pb_symbol(&b, &v, caller);
        }
        if (from) {
            urg__pb_str(&b, " from ");
            urg__pb_symbol(&b, &v, from);
        }
        urg__pb_str(&b, "\n");
        urg__pb_flush(&b);
    }
}
