/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * signals/signals.c — installing the runtime's handlers, chaining to the
 * program's own, alternate signal stacks, and the crash handlers.
 *
 * Handlers installed by urg_run and restored when it returns:
 *   SIGURG   async build only: preemption (preempt.c). Signals we did not
 *            send, or that land on a thread not running a task, go to the
 *            handler the program had before, as Go forwards them.
 *   SIGSEGV, SIGBUS  a fault in a task stack's guard area is a stack
 *            overflow: "fatal error: stack overflow in task N", the
 *            backtrace, the dump, abort. Anything else goes to the previous
 *            handler (or, for SIG_DFL, the fault is re-raised with the
 *            default action: a core dump, as without us).
 *   SIGQUIT  only if it was SIG_DFL: print every task (Go's behaviour),
 *            then die of SIGQUIT as the default action would.
 * All with SA_SIGINFO | SA_ONSTACK | SA_RESTART and every signal masked
 * while they run. A handler the program installs during the run is left
 * in place at the end (we restore only if ours is still there).
 *
 * Each M gets an alternate signal stack (64 KiB, guard page below): the
 * handlers must run when the task stack is exhausted, and the SIGURG
 * handler must not grow a task's stack by a whole handler frame.
 */

#include "signals.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ucontext.h>
#include <unistd.h>

#ifdef URG_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define ALTSTACK_BYTES (64u * 1024u)

static struct sigaction saved[_NSIG];
static bool installed[_NSIG];

static void segv_handler(int sig, siginfo_t *info, void *uctx);
static void quit_handler(int sig, siginfo_t *info, void *uctx);

static int install(int sig, void (*fn)(int, siginfo_t *, void *))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(sig, &sa, &saved[sig]) != 0)
        return -errno;
    installed[sig] = true;
    return 0;
}

/* urg__signals_install: Context: urg_run, before any M. */
int urg__signals_install(void)
{
    int r;
    if ((r = urg__unwind_init()) != 0)
        return r;
    urg__modules_refresh();
    urg__interpose_init();
    urg__self_pid = getpid();
    /* Both builds: the cooperative one detaches blocked threads with it. */
    if ((r = install(SIGURG, urg__sigurg_handler)) != 0)
        return r;
    if ((r = install(SIGSEGV, segv_handler)) != 0 || (r = install(SIGBUS, segv_handler)) != 0)
        return r;
    struct sigaction cur;
    if (sigaction(SIGQUIT, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL &&
        !(cur.sa_flags & SA_SIGINFO))
        install(SIGQUIT, quit_handler);
    return 0;
}

/* urg__signals_restore: Context: urg_run, after every M stopped. */
void urg__signals_restore(void)
{
    for (int sig = 1; sig < _NSIG; sig++) {
        if (!installed[sig])
            continue;
        struct sigaction cur;
        if (sigaction(sig, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
            (cur.sa_sigaction == segv_handler || cur.sa_sigaction == quit_handler ||
             cur.sa_sigaction == urg__sigurg_handler))
            sigaction(sig, &saved[sig], NULL);
        installed[sig] = false;
    }
}

/* urg__sig_forward: hand a signal to the previous disposition.
 * Signal-safe. */
void urg__sig_forward(int sig, siginfo_t *info, void *uctx)
{
    struct sigaction *p = &saved[sig];
    if (p->sa_flags & SA_SIGINFO) {
        if (p->sa_sigaction) {
            p->sa_sigaction(sig, info, uctx);
            return;
        }
    } else if (p->sa_handler == SIG_IGN) {
        return;
    } else if (p->sa_handler != SIG_DFL) {
        p->sa_handler(sig);
        return;
    }
    /* SIG_DFL. SIGURG's default is to ignore it. */
    if (sig == SIGURG || sig == SIGCHLD || sig == SIGWINCH)
        return;
    /* Otherwise die as we would have without the runtime: restore the
     * default and let the fault happen again (or re-send it). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    if (!info || info->si_code <= 0 || sig == SIGQUIT) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, sig);
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
        raise(sig);
    }
}

/* Signal-safe. */
URG_PREEMPT_PATH void urg__ucontext_regs(const void *uctx, uint64_t regs[UR_NREGS])
{
    const greg_t *g = ((const ucontext_t *)uctx)->uc_mcontext.gregs;
    regs[UR_RAX] = (uint64_t)g[REG_RAX];
    regs[UR_RDX] = (uint64_t)g[REG_RDX];
    regs[UR_RCX] = (uint64_t)g[REG_RCX];
    regs[UR_RBX] = (uint64_t)g[REG_RBX];
    regs[UR_RSI] = (uint64_t)g[REG_RSI];
    regs[UR_RDI] = (uint64_t)g[REG_RDI];
    regs[UR_RBP] = (uint64_t)g[REG_RBP];
    regs[UR_RSP] = (uint64_t)g[REG_RSP];
    regs[UR_R8] = (uint64_t)g[REG_R8];
    regs[UR_R9] = (uint64_t)g[REG_R9];
    regs[UR_R10] = (uint64_t)g[REG_R10];
    regs[UR_R11] = (uint64_t)g[REG_R11];
    regs[UR_R12] = (uint64_t)g[REG_R12];
    regs[UR_R13] = (uint64_t)g[REG_R13];
    regs[UR_R14] = (uint64_t)g[REG_R14];
    regs[UR_R15] = (uint64_t)g[REG_R15];
    regs[UR_RIP] = (uint64_t)g[REG_RIP];
}

/* ---- alternate stacks ---- */

int urg__altstack_init(m_t *mp)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t bytes = ALTSTACK_BYTES + page;
    char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -ENOMEM;
    if (madvise(mem, page, MADV_GUARD_INSTALL) != 0)
        mprotect(mem, page, PROT_NONE);
    stack_t ss = {.ss_sp = mem + page, .ss_size = ALTSTACK_BYTES, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, bytes);
        return -errno;
    }
    mp->altstack = mem;
    mp->altstack_size = bytes;
    return 0;
}

void urg__altstack_free(m_t *mp)
{
    if (!mp->altstack)
        return;
    if (urg__tls_m == mp || mp->tid == 0) {
        stack_t ss = {.ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
    }
#ifdef URG_ASAN
    /* The next run may map its own stacks here: leave no stale shadow. */
    ASAN_UNPOISON_MEMORY_REGION(mp->altstack, mp->altstack_size);
#endif
    munmap(mp->altstack, mp->altstack_size);
    mp->altstack = NULL;
}

/* urg__safepoint_m_init: the M's own unwinder for its SIGURG handler.
 * Context: the new thread, before it runs anything. */
int urg__safepoint_m_init(m_t *mp)
{
#ifdef URG_PREEMPT_ASYNC
    mp->unw_as = urg__unwind_as_new();
    mp->walk_memo = aligned_alloc(URG_CACHELINE, urg__walk_memo_size);
    if (!mp->unw_as || !mp->walk_memo)
        return -ENOMEM;
    memset(mp->walk_memo, 0, urg__walk_memo_size);
    /* One walk now, of this thread's own stack: libunwind maps its rule
     * cache on a space's first walk, and that mmap would otherwise land
     * in the first preemption's handler (tens of microseconds). */
    uint64_t regs[UR_NREGS] = {0};
    urg__capture_regs(regs);
    struct urg__modview v;
    urg__modview_begin(&v);
    urg__walk_t w;
    if (urg__walk_begin(&w, mp->unw_as, regs, (uintptr_t)mp->g0x.lo, (uintptr_t)mp->g0x.hi, &v) ==
        0)
        for (int i = 0; i < 4 && urg__walk_step(&w) > 0; i++)
            ;
    return 0;
#else
    (void)mp;
    return 0;
#endif
}

/* Context: the M's thread, exiting, with every signal blocked. */
void urg__safepoint_m_fini(m_t *mp)
{
    urg__unwind_as_free(mp->unw_as);
    mp->unw_as = NULL;
    free(mp->walk_memo);
    mp->walk_memo = NULL;
    /* Its alternate stack goes with the thread. */
    stack_t ss = {.ss_flags = SS_DISABLE};
    if (urg__tls_m == NULL && mp->altstack)
        sigaltstack(&ss, NULL);
}

/* ---- crash handlers ---- */

static void segv_handler(int sig, siginfo_t *info, void *uctx)
{
    int saved_errno = errno;
    g_t *gp = NULL;
    if (info && urg__stack_guard_hit((uintptr_t)info->si_addr, &gp)) {
        urg__pbuf b = {.len = 0};
        urg__pb_str(&b, "fatal error: stack overflow in task ");
        if (gp)
            urg__pb_u64(&b, gp->id);
        else
            urg__pb_str(&b, "?");
        urg__pb_str(&b, " (fault at ");
        urg__pb_hex(&b, (uint64_t)(uintptr_t)info->si_addr);
        urg__pb_str(&b, ", stack size ");
        urg__pb_u64(&b, sched.stack_size);
        urg__pb_str(&b, " bytes; raise URG_STACK or urg_config.stack_size)\n\ntask ");
        if (gp)
            urg__pb_u64(&b, gp->id);
        urg__pb_str(&b, " [running]:\n");
        urg__pb_flush(&b);
        if (gp)
            urg__print_backtrace_ctx(uctx, (uintptr_t)gp->st->lo, (uintptr_t)gp->st->hi);
        urg__write_str("\n");
        urg__throw("stack overflow");
    }
    urg__sig_forward(sig, info, uctx);
    errno = saved_errno;
}

static void quit_handler(int sig, siginfo_t *info, void *uctx)
{
    (void)info;
    (void)uctx;
    urg__write_str("SIGQUIT: quit\n\n");
    urg__dump_all(true);
    urg__sig_forward(sig, NULL, NULL);
}
