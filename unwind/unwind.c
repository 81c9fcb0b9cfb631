/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * unwind/unwind.c — stack walks that are safe in a signal handler.
 *
 * libunwind's "local" unwinder finds unwind tables with dl_iterate_phdr
 * (the loader lock) and reads memory without bounds. Neither is allowed in
 * our SIGURG handler: the interrupted thread might hold the loader lock,
 * and a corrupt frame would fault inside the handler. So we use
 * libunwind's *remote* interface on our own process: an address space
 * whose accessors we write ourselves:
 *   find_proc_info  looks the PC up in our module table (modules.c, built
 *                   outside handlers) and lets libunwind binary-search that
 *                   module's .eh_frame_hdr (dwarf_search_unwind_table);
 *   access_mem      reads only inside the walk's stack bounds or a loaded
 *                   object's readable segments — anything else fails the
 *                   walk, it never faults;
 *   access_reg      returns the starting registers (from a ucontext, a
 *                   suspended task's switch frame, or the caller).
 *
 * Address spaces: one shared, uncached, for dumps (any thread); and one
 * per M for its SIGURG handler, with libunwind's cache of parsed unwind
 * rules turned on. That cache is what makes repeated walks of the same
 * frames cheap (a hog's loop is interrupted at the same few PCs over and
 * over): without it every walk re-parses each frame's FDE and CIE. This
 * libunwind (Debian's 1.6) is built without its thread-local cache, so
 * UNW_CACHE_PER_THREAD uses the address space's own cache, unlocked:
 * safe exactly because only its M's handler ever uses it. The tables come
 * from mmap on first use. When modules change, urg__unwind_flush_all
 * bumps a generation, and each owner flushes its space's cache at its
 * next walk (walk_as).
 *
 * Locks. A walk is not lock-free: on a rule-cache miss (always, in the
 * uncached space) libunwind takes a CIE record from its mmap-backed pool
 * and gives it back (src/mi/mempool.c: mempool_alloc, mempool_free), each
 * under the pool's pthread mutex: two lock/unlock pairs per frame parsed.
 * They cannot deadlock a handler, because libunwind blocks every signal
 * while it holds that mutex (lock_acquire: sigprocmask to a full mask
 * first; CONFIG_BLOCK_SIGNALS, on by default, and Debian's libunwind.so.8
 * imports sigprocmask for it): no signal handler ever runs on a thread
 * that holds it, so the holder is always another thread inside a few
 * dozen instructions of libunwind, which it leaves without waiting on
 * anything of ours. A handler can wait as long as the OS keeps that
 * thread off a CPU; that is the only wait. libunwind also calls our
 * find_proc_info, and makes the reads of unwind tables under it, with
 * every signal blocked (SigBlk, read under gdb at acc_find_proc_info):
 * a fault there is a kill, not a signal we could catch, so memory must
 * not go away under a walk: modules.c holds dlclose back until the walks
 * under way are done (urg__modules_unload). Nothing else in a walk locks:
 * our accessors read the module table lock-free (modules.c) and never
 * call the loader; libunwind's rule cache for UNW_CACHE_PER_THREAD is the
 * space's own, unlocked, in this build (--enable-per-thread-cache is off:
 * get_rs_cache locks only for UNW_CACHE_GLOBAL, which we never use). The
 * first walk of each M's space happens at thread start
 * (urg__safepoint_m_init), so the pool's first mmap is not in a handler.
 */
#include "unwind.h"

#include <libunwind.h>
#include <stdlib.h>
#include <string.h>

/* Exported by libunwind (used by its ptrace and coredump back ends) but
 * not declared in its public headers. */
extern int urg__unw_dwarf_search_unwind_table(unw_addr_space_t as, unw_word_t ip,
                                              unw_dyn_info_t *di, unw_proc_info_t *pi,
                                              int need_unwind_info, void *arg);

struct urg__walk {
    unw_cursor_t cursor;
    uint64_t regs[URG_NREGS];
    uintptr_t stack_lo, stack_hi;
    uintptr_t seg_lo, seg_hi; /* the last object segment a read was found in */
    bool seg_writable;
    const struct urg__modview *view;
    struct urg__walk_inputs in;
};
_Static_assert(sizeof(struct urg__walk) <= URG__WALK_BYTES, "urg__walk_t too small");

static unw_addr_space_t the_as;

static int acc_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
                              int need_unwind_info, void *arg)
{
    struct urg__walk *w = arg;
    const struct urg__module *m = urg__module_find(w->view, (uintptr_t)ip);
    if (!m || !m->eh_hdr || !m->fde_count)
        return -UNW_ENOINFO;
    unw_dyn_info_t di;
    memset(&di, 0, sizeof(di));
    di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
    di.start_ip = m->lo;
    di.end_ip = m->hi;
    di.u.rti.name_ptr = 0;
    di.u.rti.segbase = m->eh_hdr;
    di.u.rti.table_len = (unw_word_t)m->fde_count * 8 / sizeof(unw_word_t);
    di.u.rti.table_data = m->table;
    return urg__unw_dwarf_search_unwind_table(as, ip, &di, pi, need_unwind_info, arg);
}

static void acc_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
    /* libunwind frees what its DWARF parser allocated itself. */
    (void)as;
    (void)pi;
    (void)arg;
}

static int acc_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
    (void)as;
    (void)addr;
    (void)arg;
    return -UNW_ENOINFO;
}

/* Reads arbitrary words of a task's stack: under ASan that includes the
 * redzones between an instrumented frame's locals, so it is not checked
 * (it checks its own bounds). Nor by TSan: the dump (SIGQUIT, urg_dump)
 * walks other tasks' stacks without synchronizing with the threads that
 * last ran them, on purpose (dump.c's readers are racy in the same way). */
__attribute__((no_sanitize_address)) URG__RACY_READER static int
acc_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write, void *arg)
{
    (void)as;
    struct urg__walk *w = arg;
    if (write)
        return -UNW_EINVAL;
    uintptr_t a = (uintptr_t)addr, end = a + sizeof(unw_word_t);
    if (end <= a)
        return -UNW_EINVAL;
    if (a >= w->stack_lo && end <= w->stack_hi) {
        *val = *(const volatile unw_word_t *)a;
        if (w->in.nmem < URG__WALK_LOG) {
            w->in.addr[w->in.nmem] = a;
            w->in.val[w->in.nmem] = *val;
        }
        if (w->in.nmem <= URG__WALK_LOG)
            w->in.nmem++;
        return 0;
    }
    /* libunwind reads unwind tables a word at a time through here, so the
     * segment of the last read is remembered: most reads fall in it. */
    if (!(a >= w->seg_lo && end <= w->seg_hi) &&
        !urg__mem_readable(w->view, a, sizeof(unw_word_t), &w->seg_lo, &w->seg_hi,
                           &w->seg_writable))
        return -UNW_EINVAL;
    if (w->seg_writable)
        w->in.nmem = URG__WALK_LOG + 1; /* not repeatable */
    *val = *(const volatile unw_word_t *)a;
    return 0;
}

static int acc_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write, void *arg)
{
    (void)as;
    struct urg__walk *w = arg;
    if (write || reg < 0 || reg >= URG_NREGS)
        return -UNW_EBADREG;
    *val = w->regs[reg];
    w->in.regs_read |= 1u << reg;
    return 0;
}

static int acc_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write, void *arg)
{
    (void)as;
    (void)reg;
    (void)val;
    (void)write;
    (void)arg;
    return -UNW_EBADREG;
}

static int acc_resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
    (void)as;
    (void)c;
    (void)arg;
    return -UNW_EINVAL;
}

static int acc_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
                         unw_word_t *off, void *arg)
{
    (void)as;
    (void)addr;
    (void)buf;
    (void)len;
    (void)off;
    (void)arg;
    return -UNW_ENOINFO;
}

static unw_accessors_t accessors = {
    .find_proc_info = acc_find_proc_info,
    .put_unwind_info = acc_put_unwind_info,
    .get_dyn_info_list_addr = acc_get_dyn_info_list_addr,
    .access_mem = acc_mem,
    .access_reg = acc_reg,
    .access_fpreg = acc_fpreg,
    .resume = acc_resume,
    .get_proc_name = acc_proc_name,
};

/* urg__unwind_init: Context: urg_run (not a handler: allocates). */
int urg__unwind_init(void)
{
    if (ld_acquire(&the_as))
        return 0;
    unw_addr_space_t as = unw_create_addr_space(&accessors, 0);
    if (!as)
        return -ENOMEM;
    unw_set_caching_policy(as, UNW_CACHE_NONE);
    if (!cas(&the_as, (unw_addr_space_t)NULL, as))
        unw_destroy_addr_space(as);
    return 0;
}

void urg__unwind_fini(void)
{
    /* Kept for the process lifetime: dumps may run after urg_run returns,
     * and creating it is not signal-safe. */
}

/* A cached address space for one thread's handler, and the flush
 * generation its cache was last brought up to. */
struct cached_as {
    unw_addr_space_t as;
    uint32_t gen;
};
/* Bumped when modules change (urg__unwind_flush_all). */
static uint32_t flush_gen;

/* Context: the owner thread at start (allocates). */
void *urg__unwind_as_new(void)
{
    struct cached_as *c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    c->as = unw_create_addr_space(&accessors, 0);
    if (!c->as) {
        free(c);
        return NULL;
    }
    unw_set_caching_policy(c->as, UNW_CACHE_PER_THREAD);
    c->gen = ld_acquire(&flush_gen);
    return c;
}

void urg__unwind_as_free(void *as)
{
    struct cached_as *c = as;
    if (!c)
        return;
    unw_destroy_addr_space(c->as);
    free(c);
}

/* Any thread; lock-free: a space's owner notices at its next walk. */
void urg__unwind_flush_all(void) { fetch_add(&flush_gen, 1u); }

/* The space a walk uses: the owner's cache, flushed first if modules
 * changed since it last walked (unw_flush_cache only bumps libunwind's
 * own generation counter: signal-safe), or the shared uncached one. */
static unw_addr_space_t walk_as(void *cached)
{
    struct cached_as *c = cached;
    if (!c)
        return ld_acquire(&the_as);
    uint32_t gen = ld_acquire(&flush_gen);
    if (unlikely(c->gen != gen)) {
        unw_flush_cache(c->as, 0, 0);
        c->gen = gen;
    }
    return c->as;
}

/* Signal-safe. */
int urg__walk_begin(urg__walk_t *wt, void *cached_as, const uint64_t regs[URG_NREGS],
                    uintptr_t stack_lo, uintptr_t stack_hi, const struct urg__modview *v)
{
    struct urg__walk *w = (struct urg__walk *)wt;
    unw_addr_space_t as = walk_as(cached_as);
    if (!as || !urg__modules_walk_enter())
        return -1;
    memcpy(w->regs, regs, sizeof(w->regs));
    w->stack_lo = stack_lo;
    w->stack_hi = stack_hi;
    w->seg_lo = w->seg_hi = 0;
    w->seg_writable = false;
    w->view = v;
    w->in.regs_read = 0;
    w->in.nmem = 0;
    if (unw_init_remote(&w->cursor, as, w) == 0)
        return 0;
    urg__modules_walk_exit();
    return -1;
}

/* Signal-safe. */
void urg__walk_end(urg__walk_t *wt)
{
    (void)wt;
    urg__modules_walk_exit();
}

/* Signal-safe. */
int urg__walk_step(urg__walk_t *wt)
{
    struct urg__walk *w = (struct urg__walk *)wt;
    int r = unw_step(&w->cursor);
    return r > 0 ? 1 : r == 0 ? 0 : -1;
}

/* Signal-safe. */
const struct urg__walk_inputs *urg__walk_inputs(urg__walk_t *wt)
{
    return &((struct urg__walk *)wt)->in;
}

/* Signal-safe. */
uintptr_t urg__walk_ip(urg__walk_t *wt)
{
    struct urg__walk *w = (struct urg__walk *)wt;
    unw_word_t ip = 0;
    unw_get_reg(&w->cursor, UNW_REG_IP, &ip);
    return (uintptr_t)ip;
}

/* refuse: record in why (if any) which frame said no. */
static inline bool refuse(struct urg__walk_why *why, int cls, int depth, uintptr_t ip)
{
    if (why) {
        why->cls = cls;
        why->depth = depth;
        why->ip = ip;
    }
    return false;
}

/* urg__walk_to_entry: does every frame, from the context in regs up to
 * the entry of the task whose stack is [lo, hi), lie in code of the
 * classes in `ok` (bits 1 << PC_x)? False also when the walk fails, ends
 * elsewhere, or runs past URG__MAX_WALK frames; then *why (if why is not
 * NULL) says where. as: as for urg__walk_begin. Signal-safe. */
URG__PREEMPT_PATH bool urg__walk_to_entry(urg__walk_t *w, void *as, uintptr_t lo, uintptr_t hi,
                                          const uint64_t regs[URG_NREGS],
                                          const struct urg__modview *v, uint32_t ok,
                                          struct urg__walk_why *why)
{
    int cls = urg__pc_classify(v, regs[URG__REG_PC]);
    if (!((ok >> cls) & 1))
        return refuse(why, cls, 0, regs[URG__REG_PC]);
    if (urg__walk_begin(w, as, regs, lo, hi, v) != 0)
        return refuse(why, -1, 0, regs[URG__REG_PC]);
    bool reached = false;
    int depth;
    for (depth = 1; depth <= URG__MAX_WALK; depth++) {
        if (urg__walk_step(w) <= 0) {
            refuse(why, -1, depth, 0); /* a failure, or the end without the entry */
            break;
        }
        uintptr_t ip = urg__walk_ip(w);
        /* The task's entry (urg__task_start) called the frame below: the
         * only runtime frame allowed above the task's code. */
        if (ip == (uintptr_t)urg__task_fn_return) {
            reached = true;
            break;
        }
        cls = urg__pc_classify(v, ip);
        if (!((ok >> cls) & 1)) {
            refuse(why, cls, depth, ip);
            break;
        }
    }
    if (depth > URG__MAX_WALK)
        refuse(why, -1, URG__MAX_WALK, 0);
    urg__walk_end(w);
    return reached;
}
