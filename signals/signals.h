/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * signals/signals.h — internal interface of the signal layer: the module
 * table, the bounded unwinder, symbolization, handler chaining.
 */
#ifndef URG_SIGNALS_H
#define URG_SIGNALS_H

#include "runtime/sched.h"

#include <signal.h>

/* ---- modules.c ---- */

#define URG_MOD_SEGS 6

struct urg__module {
    uintptr_t lo, hi;                                     /* executable segments (union) */
    uintptr_t seg_lo[URG_MOD_SEGS], seg_hi[URG_MOD_SEGS]; /* readable PT_LOADs */
    int nseg;
    uint8_t seg_writable; /* bit s: segment s is PF_W */
    uintptr_t bias;       /* load bias (dlpi_addr) */
    uintptr_t eh_hdr;     /* .eh_frame_hdr, 0 if none */
    uintptr_t table;      /* its binary-search table */
    uint32_t fde_count;
    uint8_t forbidden;  /* libc, ld.so, vDSO, libunwind, libgcc, sanitizers */
    uint8_t is_runtime; /* liburgent.so itself */
    uint8_t opted_in;   /* the main program, or opted in (urg_preempt_module) */
    char name[160];     /* path ("" for the main program) */
};

/* Where a PC lies, for the safe-point check. */
enum urg__pc_class {
    PC_USER = 0,      /* preemptible code */
    PC_FORBIDDEN = 1, /* libc & co, or a user-registered unsafe range */
    PC_RUNTIME = 2,   /* urgent's own text */
    PC_UNKNOWN = 3,   /* no module: JIT, corrupt */
    PC_FOREIGN = 4,   /* a shared object the program has not opted in */
};

/* A consistent view of the table for one reader (Signal-safe). */
struct urg__modview {
    const struct urg__module *mods;
    uint32_t n;
    uint32_t seq;
    int tab;
};
/* Set (once) when no shared C library is loaded: libc code is then
 * indistinguishable from the program's, so no SIGURG is sent. */
URG_HIDDEN extern int urg__libc_static;
URG_HIDDEN void urg__modview_begin(struct urg__modview *v);
URG_HIDDEN bool urg__modview_valid(const struct urg__modview *v);
URG_HIDDEN const struct urg__module *urg__module_find(const struct urg__modview *v, uintptr_t pc);
URG_HIDDEN int urg__pc_classify(const struct urg__modview *v, uintptr_t pc);
/* Is [addr, addr+n) inside a loaded object's readable segment? If so,
 * the segment is stored in lo and hi, for callers that cache it, and
 * whether the program may write to it in *writable. */
URG_HIDDEN bool urg__mem_readable(const struct urg__modview *v, uintptr_t addr, size_t n,
                                  uintptr_t *lo, uintptr_t *hi, bool *writable);
/* How many ranges urg_preempt_unsafe_range has registered (only grows). */
URG_HIDDEN uint32_t urg__unsafe_range_count(void);
/* Why a frame at pc of class cls (urg__pc_classify) is refused, as an
 * enum urg__defer_reason; -1 (a failed walk) is DEFER_WALK. Signal-safe. */
URG_HIDDEN uint32_t urg__defer_reason_of(const struct urg__modview *v, int cls, uintptr_t pc);
URG_HIDDEN void urg__interpose_init(void); /* interpose.c */

/* ---- unwind.c ---- */

/* DWARF register numbers on x86-64, as libunwind numbers them. */
enum {
    UR_RAX,
    UR_RDX,
    UR_RCX,
    UR_RBX,
    UR_RSI,
    UR_RDI,
    UR_RBP,
    UR_RSP,
    UR_R8,
    UR_R9,
    UR_R10,
    UR_R11,
    UR_R12,
    UR_R13,
    UR_R14,
    UR_R15,
    UR_RIP,
    UR_NREGS
};

struct urg__walk;
/* The walk state lives in the caller's frame (it is large: ~1.2 KiB). */
#define URG_WALK_BYTES 1536
typedef struct {
    _Alignas(16) unsigned char opaque[URG_WALK_BYTES];
} urg__walk_t;

URG_HIDDEN int urg__unwind_init(void);
URG_HIDDEN void urg__unwind_fini(void);
/* Start a walk at the context in regs; memory reads are limited to
 * [stack_lo, stack_hi) and the modules' readable segments. cached_as is
 * the calling M's own address space (its handler only), or NULL for the
 * shared uncached one. Signal-safe. */
URG_HIDDEN int urg__walk_begin(urg__walk_t *w, void *cached_as, const uint64_t regs[UR_NREGS],
                               uintptr_t stack_lo, uintptr_t stack_hi,
                               const struct urg__modview *v);
/* Everything a walk read that can change between two walks: registers
 * and stack words (unwind tables cannot change while the module view's
 * sequence number stays the same). A walk whose inputs are all the same
 * again would take the same steps, which is what lets the SIGURG handler
 * remember the verdicts of earlier walks (preempt.c). */
#define URG_WALK_LOG 8
struct urg__walk_inputs {
    uint32_t regs_read; /* bit r: register UR_r was read */
    uint32_t nmem;      /* stack words read; URG_WALK_LOG + 1: too many, or
                           a read of memory that may change outside the stack */
    uintptr_t addr[URG_WALK_LOG];
    uint64_t val[URG_WALK_LOG];
};
URG_HIDDEN const struct urg__walk_inputs *urg__walk_inputs(urg__walk_t *w);
URG_HIDDEN void *urg__unwind_as_new(void);
URG_HIDDEN void urg__unwind_as_free(void *as);
URG_HIDDEN void urg__unwind_as_flush(void *as);
/* Step to the caller: 1 (a frame), 0 (end of stack), < 0 (failure). */
URG_HIDDEN int urg__walk_step(urg__walk_t *w);
URG_HIDDEN uintptr_t urg__walk_ip(urg__walk_t *w);

/* ---- symbolize.c ---- */

/* Appends "name+0xoff (module)" for pc to b. Signal-safe (open/mmap). */
URG_HIDDEN void urg__pb_symbol(urg__pbuf *b, const struct urg__modview *v, uintptr_t pc);

/* ---- signals.c ---- */

/* Forward a signal to the handler the program had before us, respecting
 * SIG_DFL and SIG_IGN. Signal-safe. */
URG_HIDDEN void urg__sig_forward(int sig, siginfo_t *info, void *uctx);
/* Registers of a ucontext, in DWARF order. Signal-safe. */
URG_HIDDEN void urg__ucontext_regs(const void *uctx, uint64_t regs[UR_NREGS]);
/* Registers of the calling frame's caller (arch asm). */
URG_HIDDEN void urg__capture_regs(uint64_t regs[UR_NREGS]);

/* ---- preempt.c ---- */
URG_HIDDEN void urg__sigurg_handler(int sig, siginfo_t *info, void *uctx);
/* This process's id, read at urg_run: the handler compares every SIGURG's
 * sender with it, and getpid() is a system call. */
URG_HIDDEN extern pid_t urg__self_pid;
/* Why urg__walk_to_entry said no: the first frame refused (depth 0 is
 * the interrupted PC itself) and its class, or cls -1 when the walk
 * failed, ended without reaching the entry, or ran too deep. */
struct urg__walk_why {
    int cls;
    int depth;
    uintptr_t ip;
};
/* unwind.c: Signal-safe. why may be NULL. */
#define URG_MAX_WALK 128
URG_HIDDEN bool urg__walk_to_entry(urg__walk_t *w, m_t *mp, g_t *gp, const uint64_t regs[UR_NREGS],
                                   const struct urg__modview *v, uint32_t ok,
                                   struct urg__walk_why *why);

/* ---- deferprof.c: URG_DEBUG=deferprof=1 ----
 * Why the SIGURG handler deferred a preemption (preempt.c, in the order
 * it checks). Also the third argument of the preempt_deferred probe. */
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
    DEFER__COUNT
};
/* Or'ed into a frame reason when the refused frame is a caller of the
 * interrupted PC (qsort above a comparator), not the PC itself. */
#define DEFER_CALLER 0x80u
URG_HIDDEN extern int urg__deferprof; /* URG_DEBUG=deferprof=1 */
URG_HIDDEN const char *urg__defer_reason_str(uint32_t reason);
/* Count a deferral at the interrupted context uc (reason as above;
 * refused: the refused frame's PC when it is a caller, else 0).
 * Context: the SIGURG handler on mp's thread. Signal-safe, lock-free. */
URG_HIDDEN void urg__deferprof_record(m_t *mp, g_t *gp, const void *uc, uint32_t reason,
                                      uintptr_t refused);
/* urg__deferprof_reset and urg__deferprof_report: sched.h. */
/* Deferrals counted for exactly this reason (DEFER_CALLER included), for
 * tests. Signal-safe. */
URG_HIDDEN uint64_t urg__deferprof_count(uint32_t reason);
/* detach.c: Signal-safe; the SIGURG handler, on the task's thread. */
URG_HIDDEN bool urg__detach_try(m_t *mp, g_t *gp, p_t *pp, void *uctx, bool deferred);
URG_HIDDEN extern const size_t urg__walk_memo_size; /* bytes of an M's walk_memo */

#endif /* URG_SIGNALS_H */
