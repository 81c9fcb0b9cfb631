/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * stack.c — task stacks: reserved virtual memory, committed on touch,
 * pooled, trimmed, and guarded.
 *
 * C stacks cannot move (pointers into them are everywhere), so a stack
 * "grows" the only way left: each is a fixed slot of reserved address
 * space (URG_STACK, default 256 KiB) whose pages the kernel commits only
 * when touched. A task parked after shallow calls holds one page.
 *
 * Layout. Slots are carved from arenas of about 1 GiB, each a single
 * mmap(MAP_NORESERVE) with transparent huge pages turned off (a 2 MiB page
 * would commit eight stacks' worth of memory on first touch):
 *
 *   slot: [ guard 64 KiB ][ usable stack ........... ][ block 128 B ]
 *         ^ base                                        ^ hi
 *
 * The block (struct urg__stack, sched.h) is the stack's handle and holds
 * the state of the task using it.
 *
 * Protection, and why this layout: the default vm.max_map_count (65,530)
 * caps mappings per process, and an mprotect'ed guard page splits its
 * mapping, costing two entries per stack — a ceiling near 32,000 tasks.
 * Linux 6.13 added MADV_GUARD_INSTALL: guard pages kept in the page
 * tables, which do not split mappings. We use it when the kernel has it
 * (an arena stays one mapping however many stacks it holds, so a million
 * tasks take ~320 mappings), and make it 64 KiB, since it costs only
 * address space: a frame must be larger than that to jump over it. On
 * older kernels, guards are mprotect'ed while they use at most a quarter
 * of max_map_count (each costs two mappings); stacks beyond that get
 * a canary word at the bottom, checked at every switch away from the task
 * and when the stack is freed — detection after the fact rather than at
 * the faulting instruction, and said so in the fatal message.
 * docs/stacks.md has the whole story. URG_DEBUG=stackguard=mprotect|canary
 * forces the fallbacks (for tests).
 *
 * Pooling. Freed stacks go to a per-P cache of 32 (no lock); overflow
 * moves half to a global pool (arrays of pointers: a batch moves without
 * touching the stacks), and an empty cache takes half a cache's worth
 * back, the most recently pooled first. sysmon trims the pool in the
 * background: each stack that entered it since the last pass is checked
 * with mincore(2), and if more than 16 KiB of it is resident, everything
 * but its top 8 KiB is given back with MADV_DONTNEED. Neither spawning,
 * exiting nor moving stacks between caches and the pool makes a system
 * call (programs that keep thousands of tasks alive, like fork-join
 * recursion, move stacks back and forth all the time).
 */
#include "sched.h"
#include "sanitizer.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef URG__ASAN
#include <sanitizer/asan_interface.h>
/* A recycled stack still carries the poison of its last task's frames
 * (frames of a task that exits or is abandoned mid-call never return to
 * clear it), and a region unmapped and mapped again keeps its shadow. */
#define unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define unpoison(p, n) ((void)0)
#endif

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define URG__HAVE_VALGRIND 1
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define GUARD_BYTES        (64u * 1024u)
#define ARENA_TARGET       (1ull << 30)
#define MAX_ARENAS         4096
#define CARVE_BATCH        16
#define PIDFD_SELF_PROCESS (-10001) /* PIDFD_SELF_THREAD_GROUP, Linux 6.14 */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define TRIM_KEEP            (8u * 1024u)
#define TRIM_THRESHOLD_PAGES 4
#define CANARY               0x5552474e54535441ull /* "URGNTSTA" */

enum { GUARD_MADVISE = 0, GUARD_MPROTECT = 1, GUARD_CANARY = 2 };

struct arena {
    char *base;
    size_t bytes;
    uint32_t nslots;
    uint32_t carved; /* stackpool.lock */
};

static struct {
    urg__lock_t lock;
    size_t slot_bytes; /* guard + usable + meta, page multiple */
    struct arena arenas[MAX_ARENAS];
    uint32_t narenas; /* atomic (read by the SIGSEGV handler) */
    /* Free stacks, as arrays of pointers (never lists linked through the
     * stacks: moving a batch would touch one cold page per stack, one
     * cache miss after another, under the lock). Both have room for every
     * stack carved, so returning one never fails. */
    struct urg__stack **dirty; /* pooled since the last trim pass (warm) */
    struct urg__stack **clean; /* trimmed */
    size_t dirty_cap, clean_cap;
    int64_t ndirty; /* atomic reads */
    int64_t nclean;
    size_t ncarved;
    int guard_mode; /* best mode available */
    int64_t mprotect_budget;
    size_t page;
    bool batch; /* carve's process_madvise works here */
} pool = {.lock = URG__LOCK_INIT(URG_RANK_STACKPOOL)};

URG__HIDDEN int urg__stackguard_force = -1; /* set by env.c for tests */

static long read_max_map_count(void)
{
    long v = 65530;
    int fd = open("/proc/sys/vm/max_map_count", 0);
    if (fd >= 0) {
        char buf[32];
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n > 0) {
            buf[n] = 0;
            v = 0;
            for (char *p = buf; *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (*p - '0');
        }
        close(fd);
    }
    return v;
}

/* urg__stack_init: per-run setup. Context: urg_run, before any M. */
int urg__stack_init(size_t stack_size)
{
    pool.page = (size_t)sysconf(_SC_PAGESIZE);
    size_t usable = (stack_size + pool.page - 1) & ~(pool.page - 1);
    pool.slot_bytes = GUARD_BYTES + usable;
    pool.narenas = 0;
    pool.ndirty = pool.nclean = 0;
    pool.ncarved = 0;
    pool.guard_mode = GUARD_MADVISE;
    pool.batch = true;
    /* Each mprotect'ed guard splits its arena's mapping: two entries. */
    pool.mprotect_budget = read_max_map_count() / 4 / 2;
    if (urg__stackguard_force >= 0)
        pool.guard_mode = urg__stackguard_force;
    return 0;
}

static struct arena *new_arena(void)
{
    if (pool.narenas == MAX_ARENAS)
        return NULL;
    uint32_t nslots = (uint32_t)(ARENA_TARGET / pool.slot_bytes);
    if (nslots == 0)
        nslots = 1;
    size_t bytes = (size_t)nslots * pool.slot_bytes;
    char *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    madvise(base, bytes, MADV_NOHUGEPAGE);
    struct arena *a = &pool.arenas[pool.narenas];
    a->base = base;
    a->bytes = bytes;
    a->nslots = nslots;
    a->carved = 0;
    st_release(&pool.narenas, pool.narenas + 1);
    return a;
}

static void set_canary(struct urg__stack *st) { *(uint64_t *)st->lo = CANARY; }

/* madvise_many: one advice over n ranges in one system call
 * (process_madvise on this process, Linux 6.14's PIDFD_SELF). Returns
 * whether every byte was advised. Locks: stackpool.lock (for pool.batch). */
static bool madvise_many(struct iovec *iov, int n, int advice)
{
    size_t want = 0;
    for (int i = 0; i < n; i++)
        want += iov[i].iov_len;
    long r = syscall(SYS_process_madvise, PIDFD_SELF_PROCESS, iov, (size_t)n, advice, 0u);
    return r == (long)want;
}

/* reserve_slot: the base of a fresh slot, NULL when out of arenas or
 * memory. Locks: stackpool.lock. */
static char *reserve_slot(void)
{
    struct arena *a = pool.narenas ? &pool.arenas[pool.narenas - 1] : NULL;
    if (!a || a->carved == a->nslots) {
        a = new_arena();
        if (!a)
            return NULL;
    }
    if (!urg__ptrs_reserve((void ***)&pool.dirty, &pool.dirty_cap, pool.ncarved + 1) ||
        !urg__ptrs_reserve((void ***)&pool.clean, &pool.clean_cap, pool.ncarved + 1))
        return NULL;
    pool.ncarved++;
    return a->base + (size_t)a->carved++ * pool.slot_bytes;
}

/* init_slot: set up the slot at base: its guard (unless `guarded`: already
 * installed with MADV_GUARD_INSTALL) and its block. Locks: stackpool.lock. */
static struct urg__stack *init_slot(char *base, bool guarded)
{
    char *hi = base + pool.slot_bytes;
    struct urg__stack *st = (struct urg__stack *)(hi - sizeof(*st));
    int mode = pool.guard_mode;
    if (!guarded && mode == GUARD_MADVISE && madvise(base, GUARD_BYTES, MADV_GUARD_INSTALL) != 0) {
        /* Kernel before 6.13: fall back for this and every later slot. */
        mode = pool.guard_mode = GUARD_MPROTECT;
    }
    if (mode == GUARD_MPROTECT) {
        if (pool.mprotect_budget > 0 && mprotect(base, GUARD_BYTES, PROT_NONE) == 0)
            pool.mprotect_budget--;
        else
            mode = GUARD_CANARY;
    }
    st->mode = (uint8_t)mode;
    st->owner = NULL;
    st->lo = base + GUARD_BYTES;
    st->hi = (char *)st;
#ifdef URG__HAVE_VALGRIND
    st->valgrind_id = VALGRIND_STACK_REGISTER(base + GUARD_BYTES, (char *)st);
#endif
    if (mode == GUARD_CANARY)
        set_canary(st);
    return st;
}

/* carve: up to `want` (at most CARVE_BATCH) fresh slots into out[], their
 * guards installed; returns how many. A slot's first touch is its top
 * page (the block, then the task's first frames), and a first-touch fault
 * costs 20-30 us on the VMs this was measured on, where populating the
 * same pages with one system call for the batch costs ~2 us a page
 * (docs/stacks.md): so a batch's guards are installed, and its top pages
 * populated, with one process_madvise each. Where the kernel lacks it
 * (before 6.14), each slot is set up alone and faults in on first touch.
 * Locks: stackpool.lock. */
static int carve(struct urg__stack **out, int want)
{
    char *bases[CARVE_BATCH];
    int n = 0;
    while (n < want && n < CARVE_BATCH && (bases[n] = reserve_slot()) != NULL)
        n++;
    bool guarded = false;
    if (pool.batch && n > 1) {
        struct iovec iov[CARVE_BATCH];
        if (pool.guard_mode == GUARD_MADVISE) {
            for (int i = 0; i < n; i++)
                iov[i] = (struct iovec){bases[i], GUARD_BYTES};
            guarded = madvise_many(iov, n, MADV_GUARD_INSTALL);
        }
        for (int i = 0; i < n; i++)
            iov[i] = (struct iovec){bases[i] + pool.slot_bytes - pool.page, pool.page};
        if (!madvise_many(iov, n, MADV_POPULATE_WRITE))
            pool.batch = false; /* not worth a failing call per batch */
    }
    for (int i = 0; i < n; i++)
        out[i] = init_slot(bases[i], guarded);
    return n;
}

/* trim: give back the pages of a stack that grew deep. Context: any. */
static void trim(struct urg__stack *st)
{
    char *lo = st->lo, *hi = st->hi;
    char *keep = (char *)(((uintptr_t)hi - TRIM_KEEP) & ~(uintptr_t)(pool.page - 1));
    size_t len = (size_t)(keep - lo);
    size_t npages = len / pool.page;
    unsigned char vec[1024];
    size_t resident = 0;
    for (size_t off = 0; off < npages; off += sizeof(vec)) {
        size_t n = npages - off < sizeof(vec) ? npages - off : sizeof(vec);
        if (mincore(lo + off * pool.page, n * pool.page, vec) != 0)
            return;
        for (size_t i = 0; i < n; i++)
            resident += vec[i] & 1;
        if (resident > TRIM_THRESHOLD_PAGES)
            break;
    }
    if (resident > TRIM_THRESHOLD_PAGES) {
        madvise(lo, len, MADV_DONTNEED);
        if (st->mode == GUARD_CANARY)
            set_canary(st);
    }
}

/* urg__stack_alloc: give gp a stack. Context: g0 or task, holding pp.
 * Returns 0 or -ENOMEM. */
int urg__stack_alloc(p_t *pp, g_t *gp)
{
    struct urg__stack *st = NULL;
    if (pp->nstack > 0) {
        st = pp->stackcache[--pp->nstack];
    } else {
        urg__lock(&pool.lock);
        /* Refill half the cache from the pool, carving if it is empty. */
        while (pp->nstack < URG__STACK_CACHE_MAX / 2) {
            /* Warm stacks first: their pages are still there. */
            if (pool.ndirty > 0) {
                pp->stackcache[pp->nstack++] = pool.dirty[pool.ndirty - 1];
                st_relaxed(&pool.ndirty, pool.ndirty - 1);
            } else if (pool.nclean > 0) {
                pp->stackcache[pp->nstack++] = pool.clean[--pool.nclean];
            } else {
                int got = carve(pp->stackcache + pp->nstack, URG__STACK_CACHE_MAX / 2 - pp->nstack);
                if (got == 0)
                    break;
                pp->nstack += got;
            }
        }
        urg__unlock(&pool.lock);
        if (pp->nstack == 0)
            return -ENOMEM;
        st = pp->stackcache[--pp->nstack];
    }
    /* The next task to start here will write to the top of its stack:
     * bring that line (and its page's translation) in now. */
    if (pp->nstack > 0)
        __builtin_prefetch(pp->stackcache[pp->nstack - 1], 1);
    unpoison(st->lo, (size_t)(st->hi - st->lo));
    st->owner = gp;
    st->param = NULL;
    st->abandon = NULL;
    st->abandon_arg = NULL;
    st->timer_when = 0;
    st->timer_p = NULL;
    st->chaos_m = NULL;
    st->ulocks = 0;
#ifdef URG__ASAN
    st->asan_fake_stack = NULL;
#endif
    gp->st = st;
    gp->canary_stack = st->mode == GUARD_CANARY;
    return 0;
}

static void pool_put_batch(struct urg__stack **v, int n)
{
    urg__lock(&pool.lock);
    memcpy(&pool.dirty[pool.ndirty], v, (size_t)n * sizeof(*v));
    st_relaxed(&pool.ndirty, pool.ndirty + n);
    urg__unlock(&pool.lock);
}

#define TRIM_BATCH     64
#define TRIM_BUDGET_NS 1000000ull

/* urg__stack_trim_pool: trim the stacks that entered the pool since the
 * last pass, a batch at a time: each batch leaves the dirty list while it
 * is checked (no task can be given a stack being trimmed) and joins the
 * clean list after. Context: sysmon. Locks: takes stackpool.lock. */
void urg__stack_trim_pool(void)
{
    /* At most about a millisecond per pass: sysmon has preemption to do,
     * and after a million tasks exit there are a million to check. */
    uint64_t until = urg__nanotime() + TRIM_BUDGET_NS;
    while (ld_relaxed(&pool.ndirty) > 0 && urg__nanotime() < until) {
        struct urg__stack *batch[TRIM_BATCH];
        int n = 0;
        urg__lock(&pool.lock);
        n = pool.ndirty < TRIM_BATCH ? (int)pool.ndirty : TRIM_BATCH;
        memcpy(batch, &pool.dirty[pool.ndirty - n], (size_t)n * sizeof(*batch));
        st_relaxed(&pool.ndirty, pool.ndirty - n);
        urg__unlock(&pool.lock);
        if (n == 0)
            return;
        for (int i = 0; i < n; i++) {
            trim(batch[i]);
            urg__san_stack_gone(batch[i]);
        }
        urg__lock(&pool.lock);
        memcpy(&pool.clean[pool.nclean], batch, (size_t)n * sizeof(*batch));
        pool.nclean += n;
        urg__unlock(&pool.lock);
    }
}

/* urg__stack_free: gp exited; recycle its stack. Context: g0 holding pp. */
void urg__stack_free(p_t *pp, g_t *gp)
{
    if (!(gp->flags & G_FLAG_STARTED))
        return;
    struct urg__stack *st = gp->st;
    if (st->mode == GUARD_CANARY)
        urg__stack_check_canary(gp);
    st->owner = NULL;
    gp->st = NULL;
    if (pp->nstack == URG__STACK_CACHE_MAX) {
        int half = URG__STACK_CACHE_MAX / 2;
        pp->nstack -= half;
        pool_put_batch(&pp->stackcache[pp->nstack], half);
    }
    pp->stackcache[pp->nstack++] = st;
}

/* urg__stack_flush_cache: a P goes away; its cached stacks go to the
 * pool. Context: stop-the-world or teardown. */
void urg__stack_flush_cache(p_t *pp)
{
    if (pp->nstack > 0)
        pool_put_batch(pp->stackcache, pp->nstack);
    pp->nstack = 0;
}

/* urg__stack_check_canary: for canary-guarded stacks. Context: any. */
void urg__stack_check_canary(g_t *gp)
{
    if (!(gp->flags & G_FLAG_STARTED) || gp->st->mode != GUARD_CANARY)
        return;
    if (*(uint64_t *)gp->st->lo != CANARY) {
        urg__pbuf b = {.len = 0};
        urg__pb_str(&b, "fatal error: stack overflow in task ");
        urg__pb_u64(&b, gp->id);
        urg__pb_str(&b, " (canary overwritten: detected after the fact)\n\ntask ");
        urg__pb_u64(&b, gp->id);
        urg__pb_str(&b, " [running]:\n");
        urg__pb_flush(&b);
        /* We are still on its stack, probably well above the frames that
         * overflowed; the walk may read the unprotected guard area too. */
        urg__print_backtrace_here((uintptr_t)gp->st->lo - GUARD_BYTES, (uintptr_t)gp->st->hi);
        urg__write_str("\n");
        urg__throw("stack overflow");
    }
}

/* arena_base: the base of the arena addr lies in, or 0. Signal-safe:
 * reads only the arena table, which grows by release-stores. */
static uintptr_t arena_base(uintptr_t addr)
{
    uint32_t n = ld_acquire(&pool.narenas);
    for (uint32_t i = 0; i < n; i++) {
        uintptr_t base = (uintptr_t)pool.arenas[i].base;
        if (addr >= base && addr < base + pool.arenas[i].bytes)
            return base;
    }
    return 0;
}

/* urg__stack_guard_hit: does addr fall in (or just below) a stack's guard
 * area? Reports the task that owned the stack. Signal-safe. */
bool urg__stack_guard_hit(uintptr_t addr, g_t **gp_out)
{
    uintptr_t base = arena_base(addr);
    if (!base)
        return false;
    uintptr_t sbase = base + (addr - base) / pool.slot_bytes * pool.slot_bytes;
    if (addr - sbase >= GUARD_BYTES)
        return false;
    struct urg__stack *st =
        (struct urg__stack *)(sbase + pool.slot_bytes - sizeof(struct urg__stack));
    *gp_out = st->owner;
    return true;
}

/* urg__stack_block_valid: is st where a stack block of a carved slot
 * lives? Lets a dump trust a pointer read from a task that may be changing
 * state. Signal-safe. */
bool urg__stack_block_valid(const struct urg__stack *st)
{
    uintptr_t addr = (uintptr_t)st, base = arena_base(addr);
    return base && (addr + sizeof(struct urg__stack) - base) % pool.slot_bytes == 0;
}

/* stacks_need_goodbye: must teardown visit every stack's block before
 * unmapping it? Only for a TSan fiber or a valgrind registration. Otherwise
 * the visit is a read of one page per stack, which with a million stacks
 * took seconds at the program's exit on this VM: there, right after pages
 * are faulted in, a walk over a million of them 256 KiB apart costs
 * 2.7-5.7 us a page for a pass or two (stress/compare/touchcost,
 * docs/benchmarks.md). */
static inline bool stacks_need_goodbye(void)
{
#if defined(URG__TSAN)
    return true;
#elif defined(URG__HAVE_VALGRIND)
    return RUNNING_ON_VALGRIND;
#else
    return false;
#endif
}

/* urg__stack_teardown: end of run; unmap everything. Context: urg_run,
 * all Ms stopped. */
void urg__stack_teardown(void)
{
    bool goodbye = stacks_need_goodbye();
    for (uint32_t i = 0; i < pool.narenas; i++) {
        struct arena *a = &pool.arenas[i];
        for (uint32_t s = 0; goodbye && s < a->carved; s++) {
            struct urg__stack *st =
                (struct urg__stack *)(a->base + (size_t)(s + 1) * pool.slot_bytes -
                                      sizeof(struct urg__stack));
            urg__san_stack_gone(st);
#ifdef URG__HAVE_VALGRIND
            VALGRIND_STACK_DEREGISTER(st->valgrind_id);
#endif
        }
        unpoison(a->base, a->bytes);
        munmap(a->base, a->bytes);
    }
    st_release(&pool.narenas, 0u);
    urg__ptrs_release((void ***)&pool.dirty, &pool.dirty_cap);
    urg__ptrs_release((void ***)&pool.clean, &pool.clean_cap);
    pool.ndirty = pool.nclean = 0;
    pool.ncarved = 0;
}
