/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * trace.h — the timeline trace's hooks (trace.c): URG_DEBUG=trace=PATH and
 * urg_trace_start/urg_trace_stop.
 *
 * Every hook is a macro that tests one global flag and, only when it is
 * set, evaluates its arguments and calls the recorder. With tracing off a
 * hook costs a load and a predictable branch, and its arguments (a P's id,
 * a task's id) are never computed. Call sites are one line each.
 */
#ifndef URG__TRACE_H
#define URG__TRACE_H

#include "internal.h"

/* Why a slice ended (the "end" arg of its event). */
enum urg__trace_end {
    TR_END_PREEMPT_ASYNC = 1, /* SIGURG, at an async safe point */
    TR_END_PREEMPT_COOP,      /* a request honoured at a runtime call or checkpoint */
    TR_END_YIELD,             /* urg_yield, urg_sleep(0) */
    TR_END_PARK,              /* blocked; the wait reason travels beside it */
    TR_END_SYSCALL,           /* urg_syscall_enter */
    TR_END_EXIT,              /* the task returned */
    TR_END_STW,               /* a stop-the-world moved the caller to another P, or a
                                 request it made was honoured cooperatively */
    TR_END_RUNNING,           /* still running when the trace stopped */
};

/* Instant events. */
enum urg__trace_kind {
    TR_EV_SLICE = 1,
    TR_EV_SIGURG,   /* sysmon (or a stopper) signalled a P's thread */
    TR_EV_DEFERRED, /* the SIGURG handler found no safe point */
    TR_EV_HANDOFF,  /* sysmon took a P from a syscall */
    TR_EV_STEAL,    /* a P took tasks from another P's queue */
    TR_EV_STW_START,
    TR_EV_STW_END,
    TR_EV_SPAWN,
};

URG__HIDDEN extern uint32_t urg__trace_on; /* atomic: a trace is being recorded */
#define URG__TRACING() unlikely(ld_relaxed(&urg__trace_on))

/* The recorders. p: the P's id (-1: none, the sysmon track).
 * Context: any but signal, except urg__trace_deferred_ (Signal-safe). */
URG__HIDDEN void urg__trace_slice_begin_(int32_t p, uint64_t gid);
URG__HIDDEN void urg__trace_slice_end_(int32_t p, uint64_t gid, int why, int wait);
URG__HIDDEN void urg__trace_instant_(int kind, int32_t p, uint64_t a, uint64_t b);
URG__HIDDEN void urg__trace_deferred_(int32_t p, uint64_t gid, uint64_t pc);
URG__HIDDEN void urg__trace_stw_end_(void);
URG__HIDDEN void urg__trace_drain_(void);
URG__HIDDEN void urg__trace_thread_exit(void);
URG__HIDDEN void urg__trace_env_start(const char *path);
URG__HIDDEN void urg__trace_run_end(void);

#define urg__trace_slice_begin(p, gid)                                                             \
    do {                                                                                           \
        if (URG__TRACING())                                                                        \
            urg__trace_slice_begin_((p), (gid));                                                   \
    } while (0)
#define urg__trace_slice_end(p, gid, why, wait)                                                    \
    do {                                                                                           \
        if (URG__TRACING())                                                                        \
            urg__trace_slice_end_((p), (gid), (why), (wait));                                      \
    } while (0)
#define urg__trace_instant(kind, p, a, b)                                                          \
    do {                                                                                           \
        if (URG__TRACING())                                                                        \
            urg__trace_instant_((kind), (p), (a), (b));                                            \
    } while (0)
/* Signal-safe. */
#define urg__trace_deferred(p, gid, pc)                                                            \
    do {                                                                                           \
        if (URG__TRACING())                                                                        \
            urg__trace_deferred_((p), (gid), (pc));                                                \
    } while (0)
#define urg__trace_stw_end()                                                                       \
    do {                                                                                           \
        if (URG__TRACING())                                                                        \
            urg__trace_stw_end_();                                                                 \
    } while (0)
/* sysmon: format buffers that filled up, off the tasks' path. */
#define urg__trace_sysmon()                                                                        \
    do {                                                                                           \
        if (URG__TRACING())                                                                        \
            urg__trace_drain_();                                                                   \
    } while (0)

#endif /* URG__TRACE_H */
