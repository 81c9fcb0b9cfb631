/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * signals/signals.h — the signal layer's entry points, for the runtime:
 * installing and restoring the handlers, a thread's alternate stack and
 * unwinder, sending SIGURG, and deferprof's reports.
 *
 * The layer itself sees the scheduler only through
 * runtime/preempt_iface.h (docs/design.md, "Layers").
 */
#ifndef URG__SIGNALS_H
#define URG__SIGNALS_H

#include "runtime/preempt_iface.h"

#include <sys/types.h>

/* signals.c: install SIGURG, SIGSEGV, SIGBUS, SIGQUIT handlers (urg_run),
 * and put the program's back (run end, fork child). */
URG__HIDDEN int urg__signals_install(void);
URG__HIDDEN void urg__signals_restore(void);

/* This process's id, read at urg_run: the handler compares every SIGURG's
 * sender with it, and getpid() is a system call. */
URG__HIDDEN extern pid_t urg__self_pid;

/* Send SIGURG to thread tid, whose state is st, unless one is already in
 * flight (at most one per thread: Go's fix for golang/go#37741). Returns
 * 1 when sent, 0 when one was in flight (its handler will see the
 * request), -1 when tgkill failed. Signal-safe. */
URG__HIDDEN int urg__sig_send(struct urg__sigthread *st, pid_t tid);
/* The same, for a request aimed at one task: not sent (0) if, once the
 * flag is claimed, *running no longer equals target (the thread has moved
 * on to another task, which the signal must not interrupt). Pairs with
 * urg__sig_drain. Signal-safe. */
URG__HIDDEN int urg__sig_send_to(struct urg__sigthread *st, pid_t tid, void *const *running,
                                 const void *target);
/* A SIGURG of ours is on its way to this thread (st->pending) while the
 * thread starts another task: wait (1 ms at most) until its handler has
 * run, so that it cannot land in what the next task does. Context: the
 * thread, between tasks. */
URG__HIDDEN void urg__sig_drain(struct urg__sigthread *st);

/* A thread's alternate signal stack. Context: the thread itself, at
 * start; free: the thread at exit (on_thread), or anyone once it is gone
 * or if it never started. */
URG__HIDDEN int urg__altstack_init(struct urg__sigthread *st);
URG__HIDDEN void urg__altstack_free(struct urg__sigthread *st, bool on_thread);
/* The thread's own unwinder and walk memo for its SIGURG handler, warmed
 * with one walk of its stack [lo, hi). Context: the new thread, before it
 * runs anything. fini: the thread, exiting, every signal blocked (its
 * alternate stack is switched off; the memory is freed by
 * urg__altstack_free). */
URG__HIDDEN int urg__safepoint_m_init(struct urg__sigthread *st, uintptr_t lo, uintptr_t hi);
URG__HIDDEN void urg__safepoint_m_fini(struct urg__sigthread *st);

/* deferprof.c (URG_DEBUG=deferprof=1): forget the last run's sites (run
 * start), print the table (run end, urg_dump; signal-safe; nothing unless
 * deferprof is on). */
URG__HIDDEN extern int urg__deferprof;
URG__HIDDEN void urg__deferprof_reset(void);
URG__HIDDEN void urg__deferprof_report(void);
URG__HIDDEN const char *urg__defer_reason_str(uint32_t reason);
/* Deferrals counted for exactly this reason (DEFER_CALLER included), for
 * tests. Signal-safe. */
URG__HIDDEN uint64_t urg__deferprof_count(uint32_t reason);

#endif /* URG__SIGNALS_H */
