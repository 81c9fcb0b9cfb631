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

#include "handler.h"

#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ucontext.h>
#include <unistd.h>

#ifdef URG__ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define ALTSTACK_BYTES (64u * 1024u)
/* The top of the signal stack that every SIGURG uses: the kernel's signal
 * frame (which holds the vector registers, AVX-512 ones on this machine)
 * and the handler's frames touch its top two pages. They are faulted in
 * when the thread starts, not by its first preemption: a thread's first
 * SIGURG took both faults (perf record -e page-faults of compare stw), at
 * 15-25 us each on this VM (stress/compare/touchcost's first touch), and
 * the first stop-the-world of a run waited for them. */
#define ALTSTACK_PREFAULT (16u * 1024u)

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

/* urg__signals_install: Context: urg_run, before any M, after the
 * unwinder and the module table are set up (urg__unwind_init,
 * urg__modules_refresh). */
int urg__signals_install(void)
{
    int r;
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

/* ---- alternate stacks ---- */

int urg__altstack_init(struct urg__sigthread *st)
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
    st->altstack = mem;
    st->altstack_size = bytes;
    char *hot = mem + bytes - ALTSTACK_PREFAULT;
    if (madvise(hot, ALTSTACK_PREFAULT, MADV_POPULATE_WRITE) != 0) /* before Linux 5.14 */
        for (size_t off = 0; off < ALTSTACK_PREFAULT; off += page)
            ((volatile char *)hot)[off] = 0;
    return 0;
}

void urg__altstack_free(struct urg__sigthread *st, bool on_thread)
{
    if (!st->altstack)
        return;
    if (on_thread) {
        stack_t ss = {.ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
    }
#ifdef URG__ASAN
    /* The next run may map its own stacks here: leave no stale shadow. */
    ASAN_UNPOISON_MEMORY_REGION(st->altstack, st->altstack_size);
#endif
    munmap(st->altstack, st->altstack_size);
    st->altstack = NULL;
}

#ifdef URG_PREEMPT_ASYNC
/* tls_add: one range of TLS to look for (tls_ranges). */
static void tls_add(struct urg__sigthread *st, uintptr_t lo, uintptr_t hi)
{
    if (st->ntls == URG__TLS_RANGES) { /* merge into the last: more, never less */
        uintptr_t *r = st->tls[URG__TLS_RANGES - 1];
        r[0] = lo < r[0] ? lo : r[0];
        r[1] = hi > r[1] ? hi : r[1];
    } else {
        st->tls[st->ntls][0] = lo;
        st->tls[st->ntls][1] = hi;
        st->ntls++;
    }
    st->tls_lo = lo < st->tls_lo ? lo : st->tls_lo;
    st->tls_hi = hi > st->tls_hi ? hi : st->tls_hi;
}

/* tls_ranges: a loaded object's static TLS block on this thread
 * (dl_iterate_phdr gives this thread's address of it), if preemptible code
 * can hold an address in it: the C library's (errno), and those of the
 * program and the opted-in objects. The blocks of everything else (a
 * sanitizer runtime, libstdc++, liburgent) are left out: code that is
 * never preempted reaches them, through __tls_get_addr, and leaves their
 * addresses in scratch registers that a hog's loop never overwrites,
 * which would keep it from ever being preempted. */
static int tls_ranges(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct urg__sigthread *st = arg;
    if (!info->dlpi_tls_data)
        return 0; /* no TLS, or a dynamic block this thread has not made */
    uintptr_t lo = 0, hi = 0, text = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_TLS) {
            lo = (uintptr_t)info->dlpi_tls_data;
            hi = lo + ph->p_memsz;
        } else if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && !text) {
            text = info->dlpi_addr + ph->p_vaddr;
        }
    }
    if (hi <= lo)
        return 0;
    struct urg__modview v;
    urg__modview_begin(&v);
    bool libc = info->dlpi_name && strstr(info->dlpi_name, "/libc.so");
    if (libc || (text && urg__pc_classify(&v, text) == PC_USER))
        tls_add(st, lo, hi);
    return 0;
}
#endif

/* urg__safepoint_m_init: the thread's own unwinder for its SIGURG
 * handler, and the bounds of its TLS. Context: the new thread, before it
 * runs anything. */
int urg__safepoint_m_init(struct urg__sigthread *st, uintptr_t lo, uintptr_t hi)
{
#ifdef URG_PREEMPT_ASYNC
    /* This thread's TLS that preemptible code can point into: the control
     * block's header at the thread pointer (pthread_self()), and the
     * static blocks of the objects loaded now that tls_ranges keeps. Not
     * the blocks of objects dlopen'ed later, which live in memory the
     * loader allocates, nor of objects opted in after this thread started
     * (docs/preemption.md). */
    uintptr_t tp = urg__arch_thread_pointer();
    st->ntls = 0;
    st->tls_lo = UINTPTR_MAX;
    st->tls_hi = 0;
    tls_add(st, tp, tp + URG__ARCH_TCB_HEAD);
    dl_iterate_phdr(tls_ranges, st);
    st->unw_as = urg__unwind_as_new();
    st->walk_memo = aligned_alloc(URG__CACHELINE, urg__walk_memo_size);
    if (!st->unw_as || !st->walk_memo)
        return -ENOMEM;
    memset(st->walk_memo, 0, urg__walk_memo_size);
    /* One walk now, of this thread's own stack: libunwind maps its rule
     * cache on a space's first walk, and that mmap would otherwise land
     * in the first preemption's handler (tens of microseconds). */
    uint64_t regs[URG_NREGS] = {0};
    urg__capture_regs(regs);
    struct urg__modview v;
    urg__modview_begin(&v);
    urg__walk_t w;
    if (urg__walk_begin(&w, st->unw_as, regs, lo, hi, &v) == 0) {
        for (int i = 0; i < 4 && urg__walk_step(&w) > 0; i++)
            ;
        urg__walk_end(&w);
    }
    return 0;
#else
    (void)st, (void)lo, (void)hi;
    return 0;
#endif
}

/* Context: the thread, exiting, with every signal blocked. */
void urg__safepoint_m_fini(struct urg__sigthread *st)
{
    urg__unwind_as_free(st->unw_as);
    st->unw_as = NULL;
    free(st->walk_memo);
    st->walk_memo = NULL;
    /* Its alternate stack goes with the thread. */
    stack_t ss = {.ss_flags = SS_DISABLE};
    if (st->altstack)
        sigaltstack(&ss, NULL);
}

/* ---- crash handlers ---- */

static void segv_handler(int sig, siginfo_t *info, void *uctx)
{
    int saved_errno = errno;
    if (info)
        urg__fault_stack_overflow((uintptr_t)info->si_addr, uctx); /* returns if not one */
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
