/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * signals/preempt.c — asynchronous preemption: sending SIGURG, deciding in
 * the handler whether the interrupted task is at a safe point, and
 * injecting the call to urg__async_preempt (arch/x86_64/preempt.S).
 *
 * Sending (sysmon, stop-the-world): at most one SIGURG in flight per
 * thread — m->signal_pending is CAS'd 0 -> 1 before tgkill and cleared by
 * the handler — so a flood of requests never turns into a flood of
 * signals (Go's fix for golang/go#37741).
 *
 * The handler (on the M's alternate stack, every signal masked):
 *   1. Was it ours? We clear signal_pending and check that the signal came
 *      from tgkill in this process. Anything else — a SIGURG from another
 *      process, or one landing on a thread that is not an M — goes to the
 *      handler the program had before (signals.c). A pending request is
 *      acted on either way: ours may have merged with an outside one.
 *   2. Is the thread running a task that should yield? The task must be
 *      curg, G_RUNNING, with the request still set, not inside
 *      urg_preempt_disable (preempt_off), holding no lock of the threads
 *      library (st->ulocks, interpose.c), and the M must hold no runtime
 *      lock (locks) and a running P.
 *   3. Is it at an async safe point? The interrupted PC and every frame
 *      above it, up to the task's entry, must be in code that can be
 *      interrupted and resumed on another thread: the main program or a
 *      shared object opted in with urg_preempt_module (modules.c), and
 *      not libc, the loader, the vDSO, libunwind, libgcc, the sanitizer
 *      runtimes, urgent's own text, or a range registered with
 *      urg_preempt_unsafe_range. The
 *      frames come from a libunwind walk bounded to the task's stack
 *      (unwind.c), which must reach the task's entry (the return address
 *      urg__task_fn_return); a walk that fails, ends elsewhere, or runs
 *      past 128 frames, is unsafe.
 *      Go checks only the PC, because the Go compiler marks every unsafe
 *      instruction; C code carries no such marks, and the frames above
 *      matter: user code called back from qsort or dl_iterate_phdr runs
 *      while libc holds state or a lock on this thread.
 *   4. Is there room on the task stack for the trampoline's frame (the
 *      red zone, its register and xsave areas, and the call into the
 *      scheduler)?
 * If all hold, it rewrites the context (push the PC below the red zone,
 * point the PC at the trampoline) and returns; the switch happens after
 * sigreturn, in ordinary task context. If not, the request stays set: the
 * task yields at its next runtime call or checkpoint, sysmon signals again
 * on a later tick, and the signal counts as preempt_deferred. The handler
 * keeps which check said no (enum urg__defer_reason, signals.h: steps 2-4,
 * the class of the refused frame, whether that frame is a caller) for the
 * preempt_deferred USDT probe and URG_DEBUG=deferprof (deferprof.c).
 */

#include "signals.h"
#include "runtime/trace.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

/* Scheduler call depth under the trampoline (urg__async_preempt2 ->
 * gosched -> mcall -> switch), measured with margin. */
#define SCHED_CALL_BYTES 2048

URG_HIDDEN int urg__asyncpreemptoff; /* URG_DEBUG=asyncpreemptoff=1 */
URG_HIDDEN int urg__libc_static;     /* modules.c found no shared libc */
URG_HIDDEN uint64_t urg__xsave_size = 512;
URG_HIDDEN uint8_t urg__have_xsave;

void urg__async_preempt(void);

const char *urg_preempt_mode(void)
{
#ifdef URG_PREEMPT_ASYNC
    return "async";
#else
    return "cooperative";
#endif
}

/* Which extended state the trampoline saves, and how much room it takes.
 * With XSAVE usable (CPUID 1 ECX.OSXSAVE): every component the OS enabled
 * in XCR0 except AMX tile state (bits 17 and 18: 8 KiB more on every
 * preempted stack, and Linux keeps it off per thread until a thread asks
 * for it; code that uses tiles must run with preemption disabled, see
 * docs/preemption.md), laid out in the standard format, so the size is
 * the end of the highest saved component (CPUID 0xD, sub-leaf i: EAX
 * size, EBX offset). Without XSAVE: fxsave's
 * 512 bytes. */
URG_HIDDEN uint32_t urg__xsave_mask_lo, urg__xsave_mask_hi;

static void __attribute__((constructor)) xsave_probe(void)
{
    unsigned a, b, c, d;
    urg__have_xsave = 0;
    urg__xsave_size = 512;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))
        return;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    uint64_t mask = ((uint64_t)hi << 32 | lo) & ~((1ull << 17) | (1ull << 18));
    uint64_t end = 576; /* legacy area and header */
    for (unsigned i = 2; i < 63; i++) {
        if (!(mask & (1ull << i)))
            continue;
        if (!__get_cpuid_count(0xd, i, &a, &b, &c, &d) || a == 0)
            continue;
        if ((uint64_t)b + a > end)
            end = (uint64_t)b + a;
    }
    urg__xsave_mask_lo = (uint32_t)mask;
    urg__xsave_mask_hi = (uint32_t)(mask >> 32);
    urg__xsave_size = (end + 63) & ~63ull;
    urg__have_xsave = 1;
}

pid_t urg__self_pid;

/* urg__preempt_signal: ask mp's thread to preempt its task now.
 * Context: sysmon or a stop-the-world caller. Signal-safe. */
bool urg__preempt_signal(m_t *mp)
{
#ifdef URG_PREEMPT_ASYNC
    if (urg__asyncpreemptoff || urg__libc_static || !mp->tid || ld_relaxed(&mp->orphan))
        return false;
    if (!cas(&mp->signal_pending, 0u, 1u))
        return false;
    if (syscall(SYS_tgkill, urg__self_pid, mp->tid, SIGURG) != 0) {
        st_release(&mp->signal_pending, 0u);
        return false;
    }
    fetch_add(&sched.preempt_signals, 1);
    return true;
#else
    (void)mp;
    return false;
#endif
}

/* urg__async_preempt2: the C half of the trampoline. The task is back in
 * ordinary context with every register saved; give up the P as a
 * preempted task (global queue, as in Go) and return when rescheduled.
 * errno is the interrupted code's: keep it across the switch, whatever
 * thread we wake up on. Context: task. */

URG_HIDDEN void urg__async_preempt2(void);
URG_PREEMPT_PATH void urg__async_preempt2(void)
{
    m_t *mp = urg__tls_m;
    int e = *mp->errno_p;
    g_t *gp = mp->curg;
    gp->in_async_preempt = 1;
    fetch_add(&sched.preempt_async, 1);
    URG_PROBE(preempt_async, gp->id);
    if (unlikely(sched.chaos) && ld_relaxed(&sched.gomaxprocs) > 1) {
        /* Resume on another thread (chaos.c, runq.c). */
        gp->st->chaos_m = mp;
        gp->st->chaos_since = urg__nanotime();
    }
    urg__gosched(gp, true);
    gp->in_async_preempt = 0;
    *gp->m->errno_p = e; /* gp->m: the M it resumed on */
}

#ifdef URG_PREEMPT_ASYNC

/* push_return: store the interrupted PC below the red zone, as the
 * trampoline's return address. Not instrumented: under ASan that slot may
 * still be marked as belonging to a frame that returned long ago. */
__attribute__((no_sanitize_address)) static void push_return(uintptr_t sp, uint64_t pc)
{
    *(volatile uint64_t *)sp = pc;
}

/* The walk memo. A hog is interrupted at the same few instructions of
 * its loop, quantum after quantum, with the same frames above it, and a
 * walk whose inputs (urg__walk_inputs: registers and stack words it read)
 * are all unchanged would take the same steps to the same verdict. So
 * each M remembers its last safe walks at up to MEMO_SLOTS PCs, and a
 * later interrupt at one of those PCs only compares those few words
 * instead of walking again. That matters more than its instruction count
 * suggests: after a 10 ms quantum the unwinder's code and tables have usually left
 * the cache (or the vCPU has moved), and a cold walk costs microseconds.
 *
 * Many tasks run the same loop, each on its own stack, so "unchanged" is
 * taken relative to the stack: an input that pointed into the remembered
 * walk's stack must point at the same offset of the current one (the
 * stack pointer always does), and every other input must be equal. Stack
 * slots have one size per run, so the current walk would be the
 * remembered one moved by the distance between the stacks: it computes
 * the same offsets, reads the same code addresses, reaches the same
 * verdict. The entry also pins what the verdict depended on beyond its
 * inputs: the module table's sequence number and the count of registered
 * unsafe ranges (which also fix how the PC itself classifies, so a hit
 * skips that lookup too). Only safe verdicts are kept.
 *
 * Any MEMO_SLOTS PCs can be remembered at once; a new one replaces the
 * oldest. (A slot chosen by PC modulo the slot count thrashed: a loop
 * whose instrumented body (UBSan) is interrupted at two PCs congruent
 * modulo 8 evicted itself at every interrupt and never hit.)
 *
 * Layout: a hit is checked with cold caches, so the keys share one cache
 * line and an entry keeps what a typical check reads (the two or three
 * registers a walk asks for, the first stack word) in its first two. */
#define MEMO_SLOTS 8
#define MEMO_REGS  4 /* walks that read more registers are not kept */
struct walk_memo_entry {
    uintptr_t pc; /* 0: empty */
    uintptr_t lo, hi;
    uint32_t seq, nunsafe;
    uint32_t regs_read, nmem; /* as in urg__walk_inputs */
    uint64_t reg[MEMO_REGS];  /* the registers read, in register order */
    struct {
        uintptr_t addr;
        uint64_t val;
    } mem[URG_WALK_LOG];
} URG_ALIGNED_CL;
struct walk_memo {
    uintptr_t pc[MEMO_SLOTS]; /* the key of each entry; 0: empty */
    uint32_t next;            /* the slot the next new PC replaces */
    struct walk_memo_entry e[MEMO_SLOTS];
};

/* memo_slot: the slot remembering pc, or -1. Signal-safe. */
static inline int memo_slot(const struct walk_memo *memo, uintptr_t pc)
{
    for (int i = 0; i < MEMO_SLOTS; i++)
        if (memo->pc[i] == pc)
            return i;
    return -1;
}
const size_t urg__walk_memo_size = sizeof(struct walk_memo);

/* memo_word: is `now` (from the stack [lo, hi)) what `then` (from e's
 * stack) becomes when that stack is moved onto this one? */
static inline bool memo_word(const struct walk_memo_entry *e, uint64_t now, uint64_t then,
                             uintptr_t hi)
{
    if (then >= e->lo && then < e->hi)
        return now == then - e->hi + hi;
    return now == then;
}

/* memo_hit: would a walk from here repeat e's? Reads only words of the
 * current task's stack [lo, hi). Signal-safe. */
__attribute__((no_sanitize_address)) static bool memo_hit(const struct walk_memo_entry *e,
                                                          uintptr_t pc, uintptr_t lo, uintptr_t hi,
                                                          uint32_t seq, uint32_t nunsafe,
                                                          const uint64_t regs[UR_NREGS])
{
    if (e->pc != pc || e->hi - e->lo != hi - lo || e->seq != seq || e->nunsafe != nunsafe)
        return false;
    uint32_t k = 0;
    for (uint32_t r = 0; r < UR_NREGS; r++)
        if (((e->regs_read >> r) & 1) && !memo_word(e, regs[r], e->reg[k++], hi))
            return false;
    for (uint32_t i = 0; i < e->nmem; i++) {
        uintptr_t a = e->mem[i].addr - e->hi + hi; /* logged reads lie in e's stack */
        if (!memo_word(e, *(const volatile uint64_t *)a, e->mem[i].val, hi))
            return false;
    }
    return true;
}

/* memo_store: remember a safe walk from regs whose inputs were `in`,
 * unless it read more than an entry holds. Signal-safe. */
static void memo_store(struct walk_memo *memo, int slot, const struct urg__walk_inputs *in,
                       const uint64_t regs[UR_NREGS], uintptr_t pc, uintptr_t lo, uintptr_t hi,
                       uint32_t seq, uint32_t nunsafe)
{
    if (in->nmem > URG_WALK_LOG || __builtin_popcount(in->regs_read) > MEMO_REGS)
        return;
    if (slot < 0) {
        slot = (int)(memo->next++ % MEMO_SLOTS);
        memo->pc[slot] = 0; /* while the entry is rewritten */
    }
    struct walk_memo_entry *e = &memo->e[slot];
    uint32_t k = 0;
    for (uint32_t r = 0; r < UR_NREGS; r++)
        if ((in->regs_read >> r) & 1)
            e->reg[k++] = regs[r];
    for (uint32_t i = 0; i < in->nmem; i++) {
        e->mem[i].addr = in->addr[i];
        e->mem[i].val = in->val[i];
    }
    e->regs_read = in->regs_read;
    e->nmem = in->nmem;
    e->lo = lo;
    e->hi = hi;
    e->seq = seq;
    e->nunsafe = nunsafe;
    e->pc = pc;
    memo->pc[slot] = pc;
}

/* at_safe_point: steps 3 and 4. Returns DEFER_NONE at a safe point, or
 * why not (enum urg__defer_reason), with the refused caller's PC in
 * *refused when the interrupted PC itself was fine. Signal-safe. */
URG_PREEMPT_PATH static uint32_t at_safe_point(m_t *mp, g_t *gp, ucontext_t *uc, uintptr_t *refused)
{
    uint64_t regs[UR_NREGS];
    urg__ucontext_regs(uc, regs);
    uintptr_t pc = regs[UR_RIP], sp = regs[UR_RSP];
    uintptr_t lo = (uintptr_t)gp->st->lo, hi = (uintptr_t)gp->st->hi;
    size_t need = URG_PREEMPT_SP_DROP + 16 + 14 * 8 + urg__xsave_size + 64 + SCHED_CALL_BYTES;
    if (sp > hi || sp < lo)
        return DEFER_OFF_STACK;
    if (sp < lo + need)
        return DEFER_STACK_ROOM;

    struct urg__modview v;
    urg__modview_begin(&v);
    uint32_t nunsafe = urg__unsafe_range_count();
    struct walk_memo *memo = mp->walk_memo;
    int slot = memo_slot(memo, pc);
    if (slot >= 0 && memo_hit(&memo->e[slot], pc, lo, hi, v.seq, nunsafe, regs)) {
        fetch_add(&sched.preempt_walks_memo, 1);
        return urg__modview_valid(&v) ? DEFER_NONE : DEFER_MODULES_CHANGED;
    }
    urg__walk_t w;
    struct urg__walk_why why;
    if (!urg__walk_to_entry(&w, mp, gp, regs, &v, 1u << PC_USER, &why)) {
        uint32_t r = urg__defer_reason_of(&v, why.cls, why.ip);
        if (why.depth > 0 && why.cls >= 0) {
            *refused = why.ip;
            r |= DEFER_CALLER;
        }
        return r;
    }
    memo_store(memo, slot, urg__walk_inputs(&w), regs, pc, lo, hi, v.seq, nunsafe);
    return urg__modview_valid(&v) ? DEFER_NONE : DEFER_MODULES_CHANGED;
}

URG_PREEMPT_PATH void urg__sigurg_handler(int sig, siginfo_t *info, void *uctx)
{
    m_t *mp = urg__tls_m;
    int *ep = mp ? mp->errno_p : urg__errno_here();
    int saved_errno = *ep;
    uint32_t pending = mp ? xchg(&mp->signal_pending, 0u) : 0;
    uint64_t t0 = pending ? urg__nanotime() : 0;
    /* Anything we did not send goes to the program's handler. A SIGURG of
     * ours that arrived while another was pending merged with it (standard
     * signals do not queue), so `pending` — not the sender — says whether
     * sysmon is waiting for an answer: under a flood of outside SIGURGs
     * every one of ours merges, and preemption must still happen. */
    bool ours = pending && info && info->si_code == SI_TKILL && info->si_pid == urg__self_pid;
    if (!ours)
        urg__sig_forward(sig, info, uctx);
    if (!pending) {
        *ep = saved_errno;
        return;
    }
    fetch_add(&mp->preempt_gen, 1u);
    g_t *gp = ld_relaxed(&mp->curg);
    p_t *pp = mp->p;
    bool want = gp && !urg__asyncpreemptoff && ld_relaxed(&gp->status) == G_RUNNING &&
                ld_relaxed(&gp->preempt) && !gp->in_async_preempt;
    if (ld_relaxed(&mp->detach_req)) {
        /* sysmon asks only for a detach (the thread looked blocked): a
         * preemption request this signal merged with is retried by
         * sysmon's next signal, so that every preemption has its own. */
        urg__detach_try(mp, gp, pp, uctx, false);
        *ep = saved_errno;
        return;
    }
    if (!want) {
        *ep = saved_errno;
        return; /* the task already yielded: nothing to do */
    }
    ucontext_t *uc = uctx;
#ifdef URG_TSAN
    /* ThreadSanitizer delays asynchronous signals to safe points of its
     * own and runs the handler on a saved copy of the context: rewriting
     * it, and the stack it named, would corrupt a task that has moved on.
     * Requests stay cooperative (Go does the same under -race). */
    bool tsan_delayed = true;
#else
    bool tsan_delayed = false;
#endif
    /* Why not, in order (enum urg__defer_reason; deferprof and the
     * preempt_deferred probe report it). */
    uint32_t why;
    uintptr_t refused = 0;
    if (tsan_delayed)
        why = DEFER_TSAN;
    else if (gp->preempt_off != 0)
        why = DEFER_PREEMPT_OFF;
    else if (mp->locks != 0)
        why = DEFER_RUNTIME_LOCK;
    else if (gp->st->ulocks != 0)
        why = DEFER_THREAD_LOCK;
    else if (!pp || ld_relaxed(&pp->status) != P_RUNNING)
        why = DEFER_NO_P;
    else
        why = at_safe_point(mp, gp, uc, &refused);
    if (why == DEFER_NONE) {
        greg_t *g = uc->uc_mcontext.gregs;
        uintptr_t sp = (uintptr_t)g[REG_RSP] - URG_PREEMPT_SP_DROP;
        push_return(sp, (uint64_t)g[REG_RIP]);
        g[REG_RSP] = (greg_t)sp;
        g[REG_RIP] = (greg_t)(uintptr_t)urg__async_preempt;
        mp->preempt_t0 = t0; /* closed when the next task starts here */
    } else {
        fetch_add(&sched.preempt_deferred, 1);
        URG_PROBE(preempt_deferred, gp->id, uc->uc_mcontext.gregs[REG_RIP], why);
        if (unlikely(urg__deferprof))
            urg__deferprof_record(mp, gp, uc, why, refused);
        urg__trace_deferred(pp ? pp->id : -1, gp->id, (uint64_t)uc->uc_mcontext.gregs[REG_RIP]);
        /* Not at a safe point: if that has lasted, or the thread is
         * blocked, let the P go on without it (detach.c). Otherwise
         * sysmon must retry soon, not a quantum from now: tell it, and
         * wake it if it sleeps past that (once per slice). */
        if (!urg__detach_try(mp, gp, pp, uctx, true) && pp && !xchg(&pp->deferred, 1u) &&
            ld_relaxed(&sched.sysmon_until) > t0 + sched.quantum_ns / 8)
            urg__sysmon_wake();
    }
    *ep = saved_errno;
}

#else /* URG_PREEMPT_COOPERATIVE */

/* The cooperative build preempts nothing, but a thread that blocks in
 * native code still loses its P (detach.c): sysmon's SIGURG asks. */
void urg__sigurg_handler(int sig, siginfo_t *info, void *uctx)
{
    m_t *mp = urg__tls_m;
    int *ep = mp ? mp->errno_p : urg__errno_here();
    int saved_errno = *ep;
    uint32_t pending = mp ? xchg(&mp->signal_pending, 0u) : 0;
    bool ours = pending && info && info->si_code == SI_TKILL && info->si_pid == urg__self_pid;
    if (!ours)
        urg__sig_forward(sig, info, uctx);
    if (pending && ld_relaxed(&mp->detach_req)) {
        g_t *gp = ld_relaxed(&mp->curg);
        if (gp && ld_relaxed(&gp->status) == G_RUNNING)
            urg__detach_try(mp, gp, mp->p, uctx, false);
        else
            st_relaxed(&mp->detach_req, 0u);
    }
    *ep = saved_errno;
}

#endif

/* ---- the call-checked cooperative mode (-finstrument-functions) ----
 * Code compiled with urg_enable_call_checks() calls these at every
 * function entry and exit: each entry is a checkpoint, exactly pre-1.14
 * Go's prologue check. They must be cheap and never instrumented. */

__attribute__((no_instrument_function)) URG_API void __cyg_profile_func_enter(void *fn, void *site);
__attribute__((no_instrument_function)) URG_API void __cyg_profile_func_exit(void *fn, void *site);

void __cyg_profile_func_enter(void *fn, void *site)
{
    (void)fn;
    (void)site;
    m_t *mp = urg__tls_m;
    if (!mp)
        return;
    g_t *gp = mp->curg;
    if (gp && unlikely(ld_relaxed(&gp->preempt)) && gp->preempt_off == 0 &&
        ld_relaxed(&gp->status) == G_RUNNING)
        urg__gopreempt(gp);
}

void __cyg_profile_func_exit(void *fn, void *site)
{
    (void)fn;
    (void)site;
}
