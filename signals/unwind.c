/*
 * signals/unwind.c — stack walks that are safe in a signal handler.
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
 * Caching is off (UNW_CACHE_NONE), so walks share nothing and need no
 * locks of their own. libunwind allocates its parse records from its own
 * mmap-backed pool (mempool.c), never malloc.
 *
 * One address space serves every walk; it is created once, outside any
 * handler, when the runtime first starts.
 */
#define UNW_REMOTE_ONLY
#include "signals.h"

#include <libunwind.h>
#include <string.h>

/* Exported by libunwind (used by its ptrace and coredump back ends) but
 * not declared in its public headers. */
extern int _Ux86_64_dwarf_search_unwind_table(unw_addr_space_t as, unw_word_t ip,
                                              unw_dyn_info_t *di, unw_proc_info_t *pi,
                                              int need_unwind_info, void *arg);

struct urg__walk {
    unw_cursor_t cursor;
    uint64_t regs[UR_NREGS];
    uintptr_t stack_lo, stack_hi;
    const struct urg__modview *view;
};
_Static_assert(sizeof(struct urg__walk) <= URG_WALK_BYTES, "urg__walk_t too small");

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
    return _Ux86_64_dwarf_search_unwind_table(as, ip, &di, pi, need_unwind_info, arg);
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

static int acc_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write, void *arg)
{
    (void)as;
    struct urg__walk *w = arg;
    if (write)
        return -UNW_EINVAL;
    uintptr_t a = (uintptr_t)addr;
    bool ok = (a >= w->stack_lo && a + sizeof(unw_word_t) <= w->stack_hi && a + 8 > a) ||
              urg__mem_readable(w->view, a, sizeof(unw_word_t));
    if (!ok)
        return -UNW_EINVAL;
    memcpy(val, (const void *)a, sizeof(*val));
    return 0;
}

static int acc_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write, void *arg)
{
    (void)as;
    struct urg__walk *w = arg;
    if (write || reg < 0 || reg >= UR_NREGS)
        return -UNW_EBADREG;
    *val = w->regs[reg];
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

/* Signal-safe. */
int urg__walk_begin(urg__walk_t *wt, const uint64_t regs[UR_NREGS], uintptr_t stack_lo,
                    uintptr_t stack_hi, const struct urg__modview *v)
{
    struct urg__walk *w = (struct urg__walk *)wt;
    unw_addr_space_t as = ld_acquire(&the_as);
    if (!as)
        return -1;
    memcpy(w->regs, regs, sizeof(w->regs));
    w->stack_lo = stack_lo;
    w->stack_hi = stack_hi;
    w->view = v;
    return unw_init_remote(&w->cursor, as, w) == 0 ? 0 : -1;
}

/* Signal-safe. */
int urg__walk_step(urg__walk_t *wt)
{
    struct urg__walk *w = (struct urg__walk *)wt;
    int r = unw_step(&w->cursor);
    return r > 0 ? 1 : r == 0 ? 0 : -1;
}

/* Signal-safe. */
uintptr_t urg__walk_ip(urg__walk_t *wt)
{
    struct urg__walk *w = (struct urg__walk *)wt;
    unw_word_t ip = 0;
    unw_get_reg(&w->cursor, UNW_REG_IP, &ip);
    return (uintptr_t)ip;
}

/* Signal-safe. */
uintptr_t urg__walk_func(urg__walk_t *wt)
{
    struct urg__walk *w = (struct urg__walk *)wt;
    unw_proc_info_t pi;
    if (unw_get_proc_info(&w->cursor, &pi) != 0)
        return 0;
    return (uintptr_t)pi.start_ip;
}
