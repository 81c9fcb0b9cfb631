/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * signals/preempt.c — the SIGURG handler: deciding whether the
 * interrupted task is at a safe point, and injecting the call to the
 * trampoline (urg__async_preempt, arch/<cpu>/preempt.S). The scheduler's
 * side — sending requests, the trampoline's C half, the call-check hooks
 * — is runtime/preempt.c; the walk memo is walkmemo.c.
 *
 * Sending (urg__sig_send, for sysmon and stop-the-world): at most one
 * SIGURG in flight per thread — st->pending is CAS'd 0 -> 1 before tgkill
 * and cleared by the handler — so a flood of requests never turns into a
 * flood of signals (Go's fix for golang/go#37741).
 *
 * The handler (on the M's alternate stack, every signal masked):
 *   1. Was it ours? We clear signal_pending and check that the signal came
 *      from tgkill in this process. Anything else — a SIGURG from another
 *      process, or one landing on a thread that is not an M — goes to the
 *      handler the program had before (signals.c). A pending request is
 *      acted on either way: ours may have merged with an outside one.
 *   2. Is the thread running a task that should yield? The scheduler
 *      answers (runtime/preempt_iface.h): the task must be curg,
 *      G_RUNNING, with the request still set (urg__want_async_preempt),
 *      not inside urg_preempt_disable, holding no lock of the threads
 *      library (runtime/interpose.c), and the M must hold no runtime lock
 *      and a running P (urg__can_preempt_task).
 *   3. Is it at an async safe point? The interrupted PC and every frame
 *      above it, up to the task's entry, must be in code that can be
 *      interrupted and resumed on another thread: the main program or a
 *      shared object opted in with urg_preempt_module (unwind/modules.c), and
 *      not libc, the loader, the vDSO, libunwind, libgcc, the sanitizer
 *      runtimes, urgent's own text, or a range registered with
 *      urg_preempt_unsafe_range. The
 *      frames come from a libunwind walk bounded to the task's stack
 *      (unwind/unwind.c), which must reach the task's entry (the return address
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
 * keeps which check said no (enum urg__defer_reason, preempt_iface.h: steps 2-4,
 * the class of the refused frame, whether that frame is a caller) for the
 * preempt_deferred USDT probe and URG_DEBUG=deferprof (deferprof.c).
 */

#include "handler.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Scheduler call depth under the trampoline (urg__async_preempt2 ->
 * gosched -> mcall -> switch), measured with margin. */
#define SCHED_CALL_BYTES 2048

pid_t urg__self_pid;

/* urg__sig_send: Context: sysmon or a stop-the-world caller. */
int urg__sig_send(struct urg__sigthread *st, pid_t tid)
{
    return urg__sig_send_to(st, tid, NULL, NULL);
}

/* The claim of the flag and the look at *running are sequentially
 * consistent, as the thread's publishing of its next task and its look at
 * the flag (urg__sig_drain's caller): either we see the thread has moved
 * on, or it sees the flag and waits for the signal. */
int urg__sig_send_to(struct urg__sigthread *st, pid_t tid, void *const *running, const void *target)
{
    if (!cas(&st->pending, 0u, 1u))
        return 0;
    if (running && ld_seq_cst(running) != target) {
        st_release(&st->pending, 0u);
        return 0;
    }
    if (syscall(SYS_tgkill, urg__self_pid, tid, SIGURG) != 0) {
        st_release(&st->pending, 0u);
        return -1;
    }
    return 1;
}

/* urg__sig_drain: a request can be honoured at a runtime call or checkpoint
 * before its signal arrives (delivery takes tens of microseconds across
 * CPUs here); the signal then lands in the next task on the thread, and a
 * blocking call there that Linux does not restart (nanosleep, poll,
 * epoll_wait) returns EINTR: a bracketed 300 ms sleep ended at once, 7 of
 * 20 times, beside a task spinning on urg_checkpoint. So the thread waits
 * for it between tasks. A system call is the way to wait: the kernel
 * delivers pending signals on the way back. The caller unblocks SIGURG
 * first if a task left it blocked (signal_fixups), so that it can come;
 * 1 ms at most (the sender claims the flag, then looks at which task
 * runs, then sends). */
void urg__sig_drain(struct urg__sigthread *st)
{
    uint64_t t0 = urg__nanotime();
    while (ld_acquire(&st->pending) && urg__nanotime() - t0 < 1000000)
        sched_yield();
}

/* handler_prologue: step 1 for both builds. Saves errno in *saved (the
 * handler must give the interrupted code its errno back), clears the
 * thread's pending flag (returned: was a request of the runtime's
 * outstanding?) and forwards anything not ours. Signal-safe. */
static inline uint32_t handler_prologue(struct urg__sigthread *st, int sig, siginfo_t *info,
                                        void *uctx, int **ep, int *saved)
{
    *ep = st ? st->errno_p : urg__errno_here();
    *saved = **ep;
    uint32_t pending = st ? xchg(&st->pending, 0u) : 0;
    /* Anything we did not send goes to the program's handler. A SIGURG of
     * ours that arrived while another was pending merged with it (standard
     * signals do not queue), so `pending` — not the sender — says whether
     * sysmon is waiting for an answer: under a flood of outside SIGURGs
     * every one of ours merges, and preemption must still happen. */
    bool ours = pending && info && info->si_code == SI_TKILL && info->si_pid == urg__self_pid;
    if (!ours)
        urg__sig_forward(sig, info, uctx);
    return pending;
}

#ifdef URG_PREEMPT_ASYNC

/* defer_reason_of: why a frame at pc of class cls (urg__pc_classify) is
 * refused, as an enum urg__defer_reason; -1 (a failed walk) is
 * DEFER_WALK. Signal-safe. */
static uint32_t defer_reason_of(int cls, uintptr_t pc)
{
    switch (cls) {
    case PC_FORBIDDEN:
        switch (urg__pc_forbidden_why(pc)) {
        case PCF_LOCK_WRAPPER:
            return DEFER_LOCK_WRAPPER;
        case PCF_UNSAFE_RANGE:
            return DEFER_UNSAFE_RANGE;
        default:
            return DEFER_FORBIDDEN;
        }
    case PC_RUNTIME:
        return DEFER_RUNTIME;
    case PC_UNKNOWN:
        return DEFER_UNKNOWN;
    case PC_FOREIGN:
        return DEFER_FOREIGN;
    default:
        return DEFER_WALK;
    }
}

/* in_tls: is a (inside [tls_lo, tls_hi)) in one of st's TLS ranges? */
static inline bool in_tls(const struct urg__sigthread *st, uintptr_t a)
{
    for (uint32_t i = 0; i < st->ntls; i++)
        if (a - st->tls[i][0] < st->tls[i][1] - st->tls[i][0])
            return true;
    return false;
}

/* holds_tls_address: does the interrupted context hold an address in
 * this thread's TLS block — in a register, in the task's live stack, or
 * in the 128 bytes below the stack pointer (the red zone, where a leaf
 * function may keep one)? "TLS" is the ranges signals.c keeps (errno's
 * block, the program's and opted-in objects', pthread_self()'s). Such an
 * address (&errno, cached by the compiler
 * once per function; a __thread variable's, cached across a call-free
 * loop) would point at the old thread's copy once the task moves, so the
 * task must not move until its next runtime call: the request is
 * deferred, and if that lasts the task is detached instead (detach.c),
 * which keeps it on this thread. A conservative scan: a word that only
 * looks like such an address (stale data in a frame) defers too.
 * Signal-safe: reads registers and the task's own stack. */
__attribute__((no_sanitize_address)) URG__PREEMPT_PATH static bool
holds_tls_address(const struct urg__sigthread *st, const uint64_t regs[URG_NREGS], uintptr_t sp,
                  uintptr_t lo, uintptr_t hi)
{
    uintptr_t tlo = st->tls_lo, span = st->tls_hi - st->tls_lo;
    for (int i = 0; i < URG_NREGS; i++)
        if ((uintptr_t)regs[i] - tlo < span && in_tls(st, (uintptr_t)regs[i]))
            return true;
    uintptr_t from = sp - URG__PREEMPT_REDZONE >= lo ? sp - URG__PREEMPT_REDZONE : lo;
    for (const uintptr_t *w = (const uintptr_t *)(from & ~(uintptr_t)7); (uintptr_t)w < hi; w++)
        if (*w - tlo < span && in_tls(st, *w))
            return true;
    return false;
}

/* at_safe_point: steps 3 and 4. Returns DEFER_NONE at a safe point, or
 * why not (enum urg__defer_reason), with the refused caller's PC in
 * *refused when the interrupted PC itself was fine. Signal-safe. */
URG__PREEMPT_PATH static uint32_t at_safe_point(struct urg__sigthread *st,
                                                const struct urg__preempt_task *t, void *uc,
                                                uintptr_t *refused)
{
    uint64_t regs[URG_NREGS];
    urg__sigctx_regs(uc, regs);
    uintptr_t pc = regs[URG__REG_PC], sp = regs[URG__REG_SP];
    uintptr_t lo = t->stack_lo, hi = t->stack_hi;
    size_t need = urg__sigctx_call_room() + SCHED_CALL_BYTES;
    if (sp > hi || sp < lo)
        return DEFER_OFF_STACK;
    if (sp < lo + need)
        return DEFER_STACK_ROOM;
    if (holds_tls_address(st, regs, sp, lo, hi))
        return DEFER_TLS_ADDR;

    struct urg__modview v;
    urg__modview_begin(&v);
    uint32_t nunsafe = urg__unsafe_range_count();
    int slot;
    if (urg__walk_memo_hit(st->walk_memo, pc, lo, hi, v.seq, nunsafe, regs, &slot)) {
        urg__preempt_memo_hit();
        return urg__modview_valid(&v) ? DEFER_NONE : DEFER_MODULES_CHANGED;
    }
    urg__walk_t w;
    struct urg__walk_why why;
    if (!urg__walk_to_entry(&w, st->unw_as, lo, hi, regs, &v, 1u << PC_USER, &why)) {
        uint32_t r = defer_reason_of(why.cls, why.ip);
        if (why.depth > 0 && why.cls >= 0) {
            *refused = why.ip;
            r |= DEFER_CALLER;
        }
        return r;
    }
    urg__walk_memo_store(st->walk_memo, slot, urg__walk_inputs(&w), regs, pc, lo, hi, v.seq,
                         nunsafe);
    return urg__modview_valid(&v) ? DEFER_NONE : DEFER_MODULES_CHANGED;
}

URG__PREEMPT_PATH void urg__sigurg_handler(int sig, siginfo_t *info, void *uctx)
{
    struct urg__sigthread *st = urg__sig_self();
    int *ep, saved_errno;
    uint32_t pending = handler_prologue(st, sig, info, uctx, &ep, &saved_errno);
    if (!pending) {
        *ep = saved_errno;
        return;
    }
    uint64_t t0 = urg__nanotime();
    fetch_add(&st->gen, 1u);
    struct urg__preempt_task t;
    bool want = urg__want_async_preempt(&t);
    if (ld_relaxed(&st->detach_req)) {
        /* sysmon asks only for a detach (the thread looked blocked): a
         * preemption request this signal merged with is retried by
         * sysmon's next signal, so that every preemption has its own. */
        urg__detach_requested(uctx);
        *ep = saved_errno;
        return;
    }
    if (!want) {
        *ep = saved_errno;
        return; /* the task already yielded: nothing to do */
    }
#ifdef URG__TSAN
    /* ThreadSanitizer delays asynchronous signals to safe points of its
     * own and runs the handler on a saved copy of the context: rewriting
     * it, and the stack it named, would corrupt a task that has moved on.
     * Requests stay cooperative (Go does the same under -race). */
    uint32_t why = DEFER_TSAN;
#else
    /* Why not, in order (enum urg__defer_reason; deferprof and the
     * preempt_deferred probe report it). */
    uint32_t why = urg__can_preempt_task();
#endif
    uintptr_t refused = 0;
    if (why == DEFER_NONE)
        why = at_safe_point(st, &t, uctx, &refused);
    if (why == DEFER_NONE) {
        urg__sigctx_push_call(uctx, urg__async_preempt, urg__sigctx_pc(uctx));
        st->t0 = t0; /* closed when the next task starts here */
    } else {
        if (unlikely(urg__deferprof))
            urg__deferprof_record(st, &t, uctx, why, refused);
        urg__preempt_deferred(uctx, why, t0);
    }
    *ep = saved_errno;
}

#else /* URG_PREEMPT_COOPERATIVE */

/* The cooperative build preempts nothing, but a thread that blocks in
 * native code still loses its P (runtime/detach.c): sysmon's SIGURG asks. */
void urg__sigurg_handler(int sig, siginfo_t *info, void *uctx)
{
    struct urg__sigthread *st = urg__sig_self();
    int *ep, saved_errno;
    uint32_t pending = handler_prologue(st, sig, info, uctx, &ep, &saved_errno);
    if (pending && ld_relaxed(&st->detach_req))
        urg__detach_requested(uctx);
    *ep = saved_errno;
}

#endif
