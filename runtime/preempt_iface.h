/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * runtime/preempt_iface.h — the scheduler as the signal layer sees it.
 *
 * signals/ (the SIGURG handler, the safe-point check, chaining, alternate
 * stacks) includes this and nothing else of the runtime but the base
 * headers (internal.h, lockrank.h): it never sees tasks, threads or procs,
 * only the few questions below, which the runtime answers
 * (runtime/preempt.c, runtime/detach.c, runtime/dump.c). Go's runtime
 * asks the same ones: wantAsyncPreempt, canPreemptM, and "make the task
 * yield" (asyncPreempt2).
 *
 * Every function here runs in the SIGURG handler (or a crash handler) on
 * the thread it asks about, unless it says otherwise, so each is
 * async-signal-safe: atomics, the thread's own scheduler state, the
 * futex that wakes sysmon. None takes a lock.
 */
#ifndef URG__PREEMPT_IFACE_H
#define URG__PREEMPT_IFACE_H

#include "internal.h"

#include <stdbool.h>
#include <stdint.h>

#define URG__TLS_RANGES 6

/* The signal layer's state for one thread that runs tasks (an M), owned
 * by signals/ and kept in the M (mp->sig). "Thread" below means the M's
 * own thread, at its start or exit, or in its handler. */
struct urg__sigthread {
    uint32_t pending;     /* atomic: a SIGURG of the runtime's is in flight;
                            any sender CASes 0 -> 1, the handler clears it */
    uint32_t detach_req;  /* atomic: sysmon saw the thread blocked and sets
                            it; the handler or detach.c clears it */
    uint32_t gen;         /* atomic: SIGURGs of the runtime's handled; the
                            handler adds, sysmon reads */
    uint64_t t0;          /* handler entry of the preemption in progress, 0 if
                            none; the handler sets it, the thread's next
                            switch closes it (cost histogram) */
    int *errno_p;         /* this thread's errno, for the handler and the
                            trampoline: no call into libc (cold after a
                            slice) to find it. Thread, written once */
    void *altstack;       /* sigaltstack memory; thread */
    size_t altstack_size; /* thread */
    void *unw_as;         /* the unwinder's cached address space; thread (walks
                        run only in its handler or on its g0) */
    void *walk_memo;      /* verdicts of its earlier walks (signals/walkmemo.c);
                        thread, as unw_as */
    /* The TLS an address in preemptible code can point into
     * (signals/signals.c): the control block's header, and the static
     * blocks of libc (errno), the program and the opted-in objects.
     * tls_lo/tls_hi bound them all. Thread, written once. */
    uintptr_t tls_lo, tls_hi;
    uint32_t ntls;
    uintptr_t tls[URG__TLS_RANGES][2];
    uint8_t urg_blocked; /* a task blocked SIGURG on this thread
                                 (interpose.c); the thread's next switch
                                 unblocks it (proc.c). Thread */
};

/* Why the handler did not preempt (the order it checks in). Also the
 * third argument of the preempt_deferred probe, and deferprof's key. */
enum urg__defer_reason {
    DEFER_NONE = 0,        /* not deferred: at a safe point */
    DEFER_TSAN,            /* ThreadSanitizer runs handlers late: never async */
    DEFER_PREEMPT_OFF,     /* inside urg_preempt_disable */
    DEFER_RUNTIME_LOCK,    /* the M holds a runtime lock */
    DEFER_THREAD_LOCK,     /* the task holds a threads-library lock (interpose.c) */
    DEFER_NO_P,            /* the M's P is not running (stopping, syscall) */
    DEFER_OFF_STACK,       /* the stack pointer is not on the task's stack */
    DEFER_STACK_ROOM,      /* no room below it for the trampoline's frame */
    DEFER_FORBIDDEN,       /* libc, the loader, vDSO, libunwind, libgcc, sanitizers */
    DEFER_UNSAFE_RANGE,    /* a range registered with urg_preempt_unsafe_range */
    DEFER_LOCK_WRAPPER,    /* urgent's lock wrappers (interpose.c) */
    DEFER_RUNTIME,         /* urgent's own code */
    DEFER_UNKNOWN,         /* no loaded object: JIT code, or a corrupt PC */
    DEFER_FOREIGN,         /* a shared object not opted in (urg_preempt_module) */
    DEFER_WALK,            /* the unwind failed or did not reach the task's entry */
    DEFER_MODULES_CHANGED, /* objects were loaded or unloaded during the check */
    DEFER_TLS_ADDR,        /* registers or live stack hold an address in this
                              thread's TLS (&errno, a __thread's address):
                              moving the task would leave it using this
                              thread's copy (checked after DEFER_STACK_ROOM;
                              last here to keep the probe's numbers) */
    DEFER__COUNT
};
/* Or'ed into a frame reason when the refused frame is a caller of the
 * interrupted PC (qsort above a comparator), not the PC itself. */
#define DEFER_CALLER 0x80u

/* The task a preemption is for, as the handler needs it. */
struct urg__preempt_task {
    uint64_t id;                  /* task id (probes, deferprof) */
    uintptr_t stack_lo, stack_hi; /* its stack */
};

/* The calling thread's signal state, or NULL if it is not an M. */
URG__HIDDEN struct urg__sigthread *urg__sig_self(void);

/* Go's wantAsyncPreempt: is a preemption of the task running on this
 * thread requested and not yet honoured? If so, fills *t. */
URG__HIDDEN bool urg__want_async_preempt(struct urg__preempt_task *t);

/* Go's canPreemptM, the scheduler's half of the safe-point check: may
 * the running task be moved now, as far as the scheduler knows? Returns
 * DEFER_NONE, or DEFER_PREEMPT_OFF, DEFER_RUNTIME_LOCK,
 * DEFER_THREAD_LOCK or DEFER_NO_P. */
URG__HIDDEN uint32_t urg__can_preempt_task(void);

/* The handler found no safe point (why, at the interrupted context
 * uctx, at handler entry t0): count it, tell the probes and the trace,
 * let the P go on without the thread if this has lasted (detach.c), and
 * ask sysmon to retry soon. */
URG__HIDDEN void urg__preempt_deferred(void *uctx, uint32_t why, uint64_t t0);

/* A request that came only as a detach (sysmon saw the thread blocked,
 * st->detach_req): the runtime's part of the handler (detach.c). */
URG__HIDDEN void urg__detach_requested(void *uctx);

/* The handler answered a preemption from its walk memo. */
URG__HIDDEN void urg__preempt_memo_hit(void);

/* A fault at addr: if it hit a task stack's guard page, print the stack
 * overflow report (with a backtrace from uctx) and abort; else return.
 * Context: the SIGSEGV/SIGBUS handler. */
URG__HIDDEN void urg__fault_stack_overflow(uintptr_t addr, void *uctx);

/* Print every task (SIGQUIT, crashes). Signal-safe. */
URG__HIDDEN void urg__dump_all(bool from_signal);

#endif /* URG__PREEMPT_IFACE_H */
