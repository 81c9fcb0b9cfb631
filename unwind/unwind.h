/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * unwind/unwind.h — the unwinder and symbolizer: the table of loaded
 * objects (modules.c), bounded stack walks that are safe in a signal
 * handler (unwind.c), and PC-to-name lookup (symbolize.c).
 *
 * A leaf below the scheduler: it knows stacks, registers (arch/sigctx.h)
 * and loaded objects, never tasks, threads or procs. Its callers pass the
 * stack bounds and the unwinder address space to use. Besides arch/ it
 * includes only the base headers (runtime/internal.h: macros, atomics,
 * printing; runtime/lockrank.h: the lock type). scripts/check-layers.sh
 * holds it to that.
 */
#ifndef URG__UNWIND_H
#define URG__UNWIND_H

#include "arch/arch.h"
#include "arch/sigctx.h"
#include "runtime/internal.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- modules.c ---- */

#define URG__MOD_SEGS 6

struct urg__module {
    uintptr_t lo, hi;                                       /* executable segments (union) */
    uintptr_t seg_lo[URG__MOD_SEGS], seg_hi[URG__MOD_SEGS]; /* readable PT_LOADs */
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
/* Why a PC_FORBIDDEN PC is forbidden (urg__pc_forbidden_why). */
enum urg__pc_forbidden {
    PCF_LIBRARY = 0,      /* libc, the loader, vDSO, libunwind, libgcc, sanitizers */
    PCF_UNSAFE_RANGE = 1, /* a range registered with urg_preempt_unsafe_range */
    PCF_LOCK_WRAPPER = 2, /* urgent's lock wrappers (runtime/interpose.c) */
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
URG__HIDDEN extern int urg__libc_static;
URG__HIDDEN void urg__modview_begin(struct urg__modview *v);
URG__HIDDEN bool urg__modview_valid(const struct urg__modview *v);
URG__HIDDEN const struct urg__module *urg__module_find(const struct urg__modview *v, uintptr_t pc);
URG__HIDDEN int urg__pc_classify(const struct urg__modview *v, uintptr_t pc);
/* For a PC that classifies PC_FORBIDDEN: which rule. Signal-safe. */
URG__HIDDEN enum urg__pc_forbidden urg__pc_forbidden_why(uintptr_t pc);
/* Is [addr, addr+n) inside a loaded object's readable segment? If so,
 * the segment is stored in lo and hi, for callers that cache it, and
 * whether the program may write to it in *writable. */
URG__HIDDEN bool urg__mem_readable(const struct urg__modview *v, uintptr_t addr, size_t n,
                                   uintptr_t *lo, uintptr_t *hi, bool *writable);
/* How many ranges urg_preempt_unsafe_range has registered (only grows). */
URG__HIDDEN uint32_t urg__unsafe_range_count(void);
/* Rebuild the table (urg_run, and sysmon when objects come or go); the
 * per-thread unwinder caches are invalidated. Not in a handler. */
URG__HIDDEN int urg__modules_refresh(void);
URG__HIDDEN bool urg__modules_changed(void);
/* dlclose(handle) as unload, with no walk reading objects meanwhile, then
 * a refresh (runtime/interpose.c). Not in a handler. */
URG__HIDDEN int urg__modules_unload(int (*unload)(void *), void *handle);
URG__HIDDEN void urg__modules_fork_child(void);
/* A walk reads objects' memory between these (unwind.c); enter returns
 * false while an unload is in progress. Signal-safe. */
URG__HIDDEN bool urg__modules_walk_enter(void);
URG__HIDDEN void urg__modules_walk_exit(void);
/* URG_PREEMPT_MODULES=name:name (env.c). */
URG__HIDDEN void urg__preempt_modules_env(const char *list);

/* ---- unwind.c ---- */

struct urg__walk;
/* The walk state lives in the caller's frame (it is large: ~1.2 KiB). */
#define URG__WALK_BYTES 1536
typedef struct {
    _Alignas(16) unsigned char opaque[URG__WALK_BYTES];
} urg__walk_t;

URG__HIDDEN int urg__unwind_init(void);
URG__HIDDEN void urg__unwind_fini(void);
/* Start a walk at the context in regs; memory reads are limited to
 * [stack_lo, stack_hi) and the modules' readable segments. cached_as is
 * the calling thread's own address space (urg__unwind_as_new; its
 * handler only), or NULL for the shared uncached one. Signal-safe. */
URG__HIDDEN int urg__walk_begin(urg__walk_t *w, void *cached_as, const uint64_t regs[URG_NREGS],
                                uintptr_t stack_lo, uintptr_t stack_hi,
                                const struct urg__modview *v);
/* Everything a walk read that can change between two walks: registers
 * and stack words (unwind tables cannot change while the module view's
 * sequence number stays the same). A walk whose inputs are all the same
 * again would take the same steps, which is what lets the SIGURG handler
 * remember the verdicts of earlier walks (signals/walkmemo.c). */
#define URG__WALK_LOG 8
struct urg__walk_inputs {
    uint32_t regs_read; /* bit r: register r was read */
    uint32_t nmem;      /* stack words read; URG__WALK_LOG + 1: too many, or
                           a read of memory that may change outside the stack */
    uintptr_t addr[URG__WALK_LOG];
    uint64_t val[URG__WALK_LOG];
};
URG__HIDDEN const struct urg__walk_inputs *urg__walk_inputs(urg__walk_t *w);
/* A cached address space for one thread's handler. Context: that thread
 * at start (allocates). Freed by its thread, with signals blocked. */
URG__HIDDEN void *urg__unwind_as_new(void);
URG__HIDDEN void urg__unwind_as_free(void *as);
/* Invalidate every cached space (modules changed): each owner flushes
 * its cache at its next walk. Any thread; lock-free. */
URG__HIDDEN void urg__unwind_flush_all(void);
/* Step to the caller: 1 (a frame), 0 (end of stack), < 0 (failure). */
URG__HIDDEN int urg__walk_step(urg__walk_t *w);
/* Every walk begun (urg__walk_begin returned 0) ends here: an unload waits
 * for it (modules.c). Signal-safe. */
URG__HIDDEN void urg__walk_end(urg__walk_t *w);
URG__HIDDEN uintptr_t urg__walk_ip(urg__walk_t *w);

/* Why urg__walk_to_entry said no: the first frame refused (depth 0 is
 * the interrupted PC itself) and its class, or cls -1 when the walk
 * failed, ended without reaching the entry, or ran too deep. */
struct urg__walk_why {
    int cls;
    int depth;
    uintptr_t ip;
};
#define URG__MAX_WALK 128
/* urg__walk_to_entry: does every frame, from the context in regs up to
 * the entry of the task whose stack is [lo, hi), lie in code of the
 * classes in `ok` (bits 1 << PC_x)? as: as for urg__walk_begin.
 * Signal-safe. why may be NULL. */
URG__HIDDEN bool urg__walk_to_entry(urg__walk_t *w, void *as, uintptr_t lo, uintptr_t hi,
                                    const uint64_t regs[URG_NREGS], const struct urg__modview *v,
                                    uint32_t ok, struct urg__walk_why *why);

/* ---- symbolize.c ---- */

/* Appends "name+0xoff (module)" for pc to b. Signal-safe (open/mmap). */
URG__HIDDEN void urg__pb_symbol(urg__pbuf *b, const struct urg__modview *v, uintptr_t pc);

#endif /* URG__UNWIND_H */
