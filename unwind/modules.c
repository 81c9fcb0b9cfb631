/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * unwind/modules.c — the table of loaded objects that the SIGURG handler
 * and the dumps consult: where each one's code is, where its unwind
 * tables are, which memory of it may be read, and whether code there may
 * be preempted.
 *
 * Why a table: the handler must decide whether the interrupted PC and
 * every frame above it lie in code that is safe to interrupt, and walking
 * those frames needs each object's .eh_frame_hdr. Finding objects means
 * dl_iterate_phdr, which takes the loader's lock and may not run in a
 * signal handler. So the table is built outside any handler — at urg_run,
 * and again when sysmon sees that objects were loaded or unloaded (glibc
 * counts them in dlpi_adds/dlpi_subs) — and handlers only read it.
 *
 * Publication: two tables and a sequence counter. The builder bumps seq
 * (odd), fills the table not in use, flips `active`, bumps seq (even). A
 * reader never waits: it notes seq, reads the active table, and at the end
 * checks that no later build can have started on the table it read (the
 * one after the next flip). If one did, the caller treats its result as
 * unknown (for the safe-point check: unsafe). Refreshes are rare.
 *
 * Which code may be preempted — an allowlist, as Go's rule is "preempt
 * only code you know": the main program, and the shared objects the
 * program opts in with urg_preempt_module (or URG_PREEMPT_MODULES). Any
 * other object (libcrypto, libstdc++, a shared allocator, a plugin) is
 * "not opted in": a task interrupted there, or with such a frame above it,
 * is not at a safe point; it yields at its next runtime call, or loses its
 * proc if it stays there (docs/preemption.md). Never preempted even when
 * opted in: the C library and loader (they hold locks: malloc, stdio,
 * dlopen), the vDSO, libunwind and libgcc (the unwinders; our own walk
 * uses libunwind), the sanitizer runtimes, urgent's own text, and ranges
 * the program registers with urg_preempt_unsafe_range. docs/design.md
 * says why an allowlist rather than counting locks alone.
 *
 * Our own text: in liburgent.so it is the whole object. Linked
 * statically, the build renames the library's .text to `urg_text`, so the
 * linker brackets it with __start_urg_text/__stop_urg_text; the code of
 * the preemption path is in `urg_text_hot` (URG__PREEMPT_PATH), bracketed
 * the same way.
 */

#include "unwind.h"
#include "runtime/lockrank.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sched.h>
#include <string.h>

/* Pointer encodings of .eh_frame_hdr (LSB "DWARF Extensions"). */
#define DW_EH_PE_udata4  0x03
#define DW_EH_PE_sdata4  0x0b
#define DW_EH_PE_pcrel   0x10
#define DW_EH_PE_datarel 0x30

#define MAX_MODULES       512
#define MAX_UNSAFE_RANGES 64

struct modtab {
    uint32_t n;
    struct urg__module mods[MAX_MODULES];
};

static struct modtab tabs[2];
static uint32_t active; /* atomic: index of the published table */
static uint32_t seq;    /* atomic: bumped around every publication */
static uint64_t seen_adds, seen_subs;
URG__HIDDEN int urg__libc_static; /* no shared C library: see urg__modules_refresh */
static urg__lock_t build_lock = URG__LOCK_INIT(URG_RANK_RANGES);

static struct {
    uintptr_t lo[MAX_UNSAFE_RANGES], hi[MAX_UNSAFE_RANGES];
    uint32_t n; /* atomic: entries below n are complete */
    urg__lock_t lock;
} unsafe_ranges = {.lock = URG__LOCK_INIT(URG_RANK_RANGES)};

/* Objects opted in to preemption: by an address inside them
 * (urg_preempt_module), or by base-name prefix (URG_PREEMPT_MODULES,
 * env.c). Both written under build_lock, read by the builder. */
#define MAX_OPTED_IN 64
static uintptr_t opted_addr[MAX_OPTED_IN];
static uint32_t n_opted_addr;
static char opted_names[512]; /* "name:name:..." from the environment */

/* urgent's text when linked statically: urg_text and urg_text_hot. */
static struct {
    uintptr_t lo, hi;
} rt_text[2];

/* Hidden: in liburgent.so, where the section names bracket nothing or
 * part of the object, these stay out of its dynamic symbols. */
#define URG__SECTION_BOUND extern char __attribute__((weak, visibility("hidden")))
URG__SECTION_BOUND __start_urg_text[];
URG__SECTION_BOUND __stop_urg_text[];
URG__SECTION_BOUND __start_urg_text_hot[];
URG__SECTION_BOUND __stop_urg_text_hot[];
URG__SECTION_BOUND __start_urg_interpose[];
URG__SECTION_BOUND __stop_urg_interpose[];

static void rt_text_set(int i, const char *lo, const char *hi)
{
    if (lo && hi && lo < hi) {
        rt_text[i].lo = (uintptr_t)lo;
        rt_text[i].hi = (uintptr_t)hi;
    }
}

static const char *const forbidden_prefixes[] = {
    "libc.so",
    "libc-",
    "ld-linux",
    "ld-2.",
    "ld64.so",
    "linux-vdso",
    "linux-gate",
    "libunwind",
    "libgcc_s",
    "libpthread",
    "libdl.so",
    "libasan",
    "libtsan",
    "libubsan",
    "liblsan",
    "libclang_rt",
    "vgpreload",
    "libresolv",
    /* musl, and allocators that replace malloc: their locks are held
     * across instructions that a signal could interrupt. */
    "ld-musl",
    "libc.musl",
    "libjemalloc",
    "libtcmalloc",
    "libmimalloc",
};

/* The C library itself (not just any forbidden module): without one in the
 * table, libc was linked statically and its code looks like the program's. */
static const char *const libc_prefixes[] = {"libc.so", "libc-", "ld-musl", "libc.musl"};

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static bool has_prefix(const char *name, const char *const *prefixes, size_t n)
{
    const char *b = base_name(name);
    for (size_t i = 0; i < n; i++)
        if (!strncmp(b, prefixes[i], strlen(prefixes[i])))
            return true;
    return false;
}

static bool is_forbidden_name(const char *name)
{
    return has_prefix(name, forbidden_prefixes, URG__ARRAY_LEN(forbidden_prefixes));
}

/* name_listed: is `base` one of the colon-separated prefixes in list? */
static bool name_listed(const char *list, const char *base)
{
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n && !strncmp(base, p, n))
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

static bool libc_seen;

struct build_ctx {
    struct modtab *t;
    uintptr_t self; /* an address inside urgent */
};

static int add_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct build_ctx *ctx = arg;
    struct modtab *t = ctx->t;
    if (t->n == MAX_MODULES)
        return 1;
    struct urg__module *m = &t->mods[t->n];
    memset(m, 0, sizeof(*m));
    m->bias = info->dlpi_addr;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    urg__strlcpy(m->name, name, sizeof(m->name));
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = m->bias + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (ph->p_type == PT_LOAD) {
            if (ph->p_flags & PF_X) {
                if (!m->lo || lo < m->lo)
                    m->lo = lo;
                if (hi > m->hi)
                    m->hi = hi;
            }
            if ((ph->p_flags & PF_R) && m->nseg < URG__MOD_SEGS) {
                m->seg_lo[m->nseg] = lo;
                m->seg_hi[m->nseg] = hi;
                if (ph->p_flags & PF_W)
                    m->seg_writable |= (uint8_t)(1u << m->nseg);
                m->nseg++;
            }
        } else if (ph->p_type == PT_GNU_EH_FRAME) {
            m->eh_hdr = lo;
        }
    }
    if (!m->hi)
        return 0; /* no code */
    if (m->eh_hdr) {
        /* version, eh_frame_ptr_enc, fde_count_enc, table_enc, then the
         * eh_frame pointer and the count. libunwind's binary search wants
         * the standard datarel|sdata4 table of 4-byte pairs. */
        const uint8_t *h = (const uint8_t *)m->eh_hdr;
        if (h[0] == 1 && h[2] == (DW_EH_PE_udata4) &&
            h[3] == (DW_EH_PE_datarel | DW_EH_PE_sdata4) &&
            (h[1] == (DW_EH_PE_pcrel | DW_EH_PE_sdata4) || h[1] == DW_EH_PE_sdata4 ||
             h[1] == (DW_EH_PE_datarel | DW_EH_PE_sdata4))) {
            m->fde_count = *(const uint32_t *)(h + 8);
            m->table = m->eh_hdr + 12;
        } else {
            m->eh_hdr = 0;
        }
    }
    m->forbidden = is_forbidden_name(m->name);
    /* The main program is the first object and has no name. */
    m->opted_in = t->n == 0 && !name[0];
    for (uint32_t i = 0; i < n_opted_addr && !m->opted_in; i++)
        m->opted_in = opted_addr[i] >= m->lo && opted_addr[i] < m->hi;
    if (!m->opted_in && name[0] && opted_names[0])
        m->opted_in = name_listed(opted_names, base_name(name));
    if (has_prefix(m->name, libc_prefixes, URG__ARRAY_LEN(libc_prefixes)))
        libc_seen = true;
    m->is_runtime = !rt_text[0].lo && ctx->self >= m->lo && ctx->self < m->hi;
    t->n++;
    return 0;
}

static int count_loads(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uint64_t *v = arg;
    v[0] = info->dlpi_adds;
    v[1] = info->dlpi_subs;
    return 1;
}

/* ---- unloading ----
 * An object's unwind tables are read (by libunwind, through unwind.c's
 * accessors) with every signal blocked: a read of memory that a dlclose
 * has just unmapped would kill the process, not fail. So an unload waits
 * for the walks under way and refuses new ones until the table no longer
 * names the object: the walker counts itself, then looks for an unload;
 * the unloader flags itself, then waits for the count (both sequentially
 * consistent, so one of the two always sees the other). A refused walk
 * fails (the handler defers: DEFER_WALK). */
static uint32_t walkers;   /* atomic: walks between walk_enter and walk_exit */
static uint32_t unloading; /* atomic: urg__modules_unload calls in progress */

/* Signal-safe. */
URG__PREEMPT_PATH bool urg__modules_walk_enter(void)
{
    __atomic_fetch_add(&walkers, 1u, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&unloading, __ATOMIC_SEQ_CST) == 0)
        return true;
    __atomic_fetch_sub(&walkers, 1u, __ATOMIC_RELEASE);
    return false;
}

/* Signal-safe. */
URG__PREEMPT_PATH void urg__modules_walk_exit(void)
{
    __atomic_fetch_sub(&walkers, 1u, __ATOMIC_RELEASE);
}

/* urg__modules_unload: run unload(handle) (dlclose) while no walk reads an
 * object's memory, and publish the table without the object before any
 * walk starts again. Returns what unload returned. Context: any thread
 * but a handler; waits for the walks under way (microseconds each). */
int urg__modules_unload(int (*unload)(void *), void *handle)
{
    __atomic_fetch_add(&unloading, 1u, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&walkers, __ATOMIC_SEQ_CST) != 0)
        sched_yield();
    int r = unload(handle);
    if (r == 0 && urg__modules_changed())
        urg__modules_refresh();
    __atomic_fetch_sub(&unloading, 1u, __ATOMIC_RELEASE);
    return r;
}

/* urg__modules_fork_child: the child has one thread; the parent's other
 * threads' walks (and unloads) did not come with it. Signal-safe. */
void urg__modules_fork_child(void)
{
    __atomic_store_n(&walkers, 0u, __ATOMIC_RELAXED);
    __atomic_store_n(&unloading, 0u, __ATOMIC_RELAXED);
}

/* urg__modules_changed: have objects been loaded or unloaded since the
 * last refresh? Context: sysmon (not a handler: takes the loader lock). */
bool urg__modules_changed(void)
{
    uint64_t v[2] = {0, 0};
    dl_iterate_phdr(count_loads, v);
    return v[0] != seen_adds || v[1] != seen_subs;
}

/* urg__modules_refresh: rebuild and publish the table.
 * Context: urg_run or sysmon; never a signal handler. */
int urg__modules_refresh(void)
{
    urg__lock(&build_lock);
    rt_text_set(0, __start_urg_text, __stop_urg_text);
    rt_text_set(1, __start_urg_text_hot, __stop_urg_text_hot);
    uint32_t cur = ld_acquire(&active);
    struct build_ctx ctx = {.t = &tabs[cur ^ 1], .self = (uintptr_t)&urg__modules_refresh};
    ctx.t->n = 0;
    /* Writers bump seq to odd while the inactive table is being built:
     * readers of the *active* table are unaffected, but a reader that
     * started before the previous flip may still hold this one. */
    fetch_add(&seq, 1u);
    uint64_t v[2] = {0, 0};
    dl_iterate_phdr(count_loads, v);
    libc_seen = false;
    dl_iterate_phdr(add_module, &ctx);
    if (!libc_seen && !urg__libc_static) {
        /* A task preempted inside malloc, holding its lock, would
         * deadlock the next task on its thread to call malloc. */
        urg__libc_static = 1;
        urg__warn("no shared C library among the loaded modules (statically linked?)",
                  "async preemption is off: tasks yield at runtime calls only");
    }
    seen_adds = v[0];
    seen_subs = v[1];
    st_release(&active, cur ^ 1);
    fetch_add(&seq, 1u);
    urg__unlock(&build_lock);
    /* Unwind rules cached for code that may have been unloaded are stale. */
    urg__unwind_flush_all();
    return 0;
}

/* ---- readers (all Signal-safe) ---- */

URG__PREEMPT_PATH void urg__modview_begin(struct urg__modview *v)
{
    uint32_t s = ld_acquire(&seq);
    int t = (int)ld_acquire(&active);
    v->tab = t;
    v->seq = s;
    v->mods = tabs[t].mods;
    v->n = ld_acquire(&tabs[t].n);
}

/* Even start: our table is rewritten only from seq+3 on. Odd start (a
 * build was under way; we may have read the old table just before the
 * flip): from seq+2 on. */
URG__PREEMPT_PATH bool urg__modview_valid(const struct urg__modview *v)
{
    uint32_t d = ld_acquire(&seq) - v->seq;
    return d <= ((v->seq & 1) ? 1u : 2u);
}

const struct urg__module *urg__module_find(const struct urg__modview *v, uintptr_t pc)
{
    for (uint32_t i = 0; i < v->n; i++)
        if (pc >= v->mods[i].lo && pc < v->mods[i].hi)
            return &v->mods[i];
    return NULL;
}

static bool in_unsafe_range(uintptr_t pc)
{
    uint32_t n = ld_acquire(&unsafe_ranges.n);
    for (uint32_t i = 0; i < n; i++)
        if (pc >= unsafe_ranges.lo[i] && pc < unsafe_ranges.hi[i])
            return true;
    return false;
}

/* urg__pc_forbidden_why: Signal-safe (the SIGURG handler, after a walk
 * said no, only for URG_DEBUG=deferprof and the probe). */
enum urg__pc_forbidden urg__pc_forbidden_why(uintptr_t pc)
{
    if (pc >= (uintptr_t)__start_urg_interpose && pc < (uintptr_t)__stop_urg_interpose)
        return PCF_LOCK_WRAPPER;
    if (in_unsafe_range(pc))
        return PCF_UNSAFE_RANGE;
    return PCF_LIBRARY;
}

int urg__pc_classify(const struct urg__modview *v, uintptr_t pc)
{
    /* The lock wrappers (interpose.c): never preempted, but no runtime
     * state either, so a thread blocked under one may be detached. */
    if (pc >= (uintptr_t)__start_urg_interpose && pc < (uintptr_t)__stop_urg_interpose)
        return PC_FORBIDDEN;
    for (int i = 0; i < 2; i++)
        if (pc >= rt_text[i].lo && pc < rt_text[i].hi)
            return PC_RUNTIME;
    if (in_unsafe_range(pc))
        return PC_FORBIDDEN;
    const struct urg__module *m = urg__module_find(v, pc);
    if (!m)
        return PC_UNKNOWN;
    if (m->is_runtime)
        return PC_RUNTIME;
    if (m->forbidden)
        return PC_FORBIDDEN;
    return m->opted_in ? PC_USER : PC_FOREIGN;
}

bool urg__mem_readable(const struct urg__modview *v, uintptr_t addr, size_t n, uintptr_t *lo,
                       uintptr_t *hi, bool *writable)
{
    for (uint32_t i = 0; i < v->n; i++) {
        const struct urg__module *m = &v->mods[i];
        for (int s = 0; s < m->nseg; s++) {
            if (addr >= m->seg_lo[s] && addr + n <= m->seg_hi[s] && addr + n > addr) {
                *lo = m->seg_lo[s];
                *hi = m->seg_hi[s];
                *writable = (m->seg_writable >> s) & 1;
                return true;
            }
        }
    }
    return false;
}

/* Signal-safe. */
URG__PREEMPT_PATH uint32_t urg__unsafe_range_count(void) { return ld_acquire(&unsafe_ranges.n); }

int urg_preempt_unsafe_range(const void *start, const void *end)
{
    if (!start || !end || (uintptr_t)start >= (uintptr_t)end)
        return -EINVAL;
    urg__lock(&unsafe_ranges.lock);
    uint32_t n = unsafe_ranges.n;
    int ret = 0;
    if (n == MAX_UNSAFE_RANGES) {
        ret = -ENOSPC;
    } else {
        unsafe_ranges.lo[n] = (uintptr_t)start;
        unsafe_ranges.hi[n] = (uintptr_t)end;
        st_release(&unsafe_ranges.n, n + 1);
    }
    urg__unlock(&unsafe_ranges.lock);
    return ret;
}

/* urg__preempt_modules_env: the URG_PREEMPT_MODULES list (env.c, before
 * the first refresh). Context: urg_run's thread. */
void urg__preempt_modules_env(const char *list)
{
    urg__lock(&build_lock);
    urg__strlcpy(opted_names, list ? list : "", sizeof(opted_names));
    urg__unlock(&build_lock);
}

/* urg_preempt_module: opt the shared object containing addr in to async
 * preemption. Context: any thread; takes the loader's lock (dladdr) and,
 * while a run is active, rebuilds the table. */
int urg_preempt_module(const void *addr)
{
    if (!addr)
        return -EINVAL;
    Dl_info info;
    if (!dladdr(addr, &info) || !info.dli_fname)
        return -ENOENT;
    if (is_forbidden_name(info.dli_fname))
        return -EPERM;
    urg__lock(&build_lock);
    int ret = 0;
    if (n_opted_addr == MAX_OPTED_IN)
        ret = -ENOSPC;
    else
        opted_addr[n_opted_addr++] = (uintptr_t)addr;
    urg__unlock(&build_lock);
    if (ret == 0)
        urg__modules_refresh();
    return ret;
}
