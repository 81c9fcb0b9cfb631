/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * runtime/interpose.c — the lock calls of the threads library, counted per
 * task, so that async preemption never stops a task that holds one.
 *
 * Why: a task preempted while it holds a pthread mutex leaves its thread
 * to other tasks. The next one to take that mutex on the same thread gets
 * EDEADLK (an error-checking mutex, OpenSSL's rwlocks), or takes a
 * recursive mutex "again" and both believe they own it, or blocks the
 * thread — and with it the proc — on a lock whose owner waits in a run
 * queue behind it. None of that can happen in the cooperative build,
 * where a task is switched out only at runtime calls. So these wrappers
 * count, in the running task's stack block (st->ulocks), the locks it
 * holds; the SIGURG handler defers while the count is not zero (preempt.c)
 * and the task yields at its next runtime call, exactly as in the
 * cooperative build.
 *
 * The wrappers take the place of the C library's functions for every
 * caller outside libc: the program, libcrypto, libstdc++ (std::mutex,
 * std::shared_mutex), a statically linked allocator. liburgent.so exports
 * them unversioned (abi/liburgent.map says why that matters); linked
 * statically, urg_run references this file so that it is always part of
 * the program. Calls that libc makes to itself (stdio's own locking, a
 * condition variable re-taking its mutex) do not come here; they need not,
 * since libc's code is never preempted.
 *
 * Covered: mutexes (lock, trylock, timedlock, clocklock, unlock), rwlocks
 * (rd/wr lock, try, timed, clock, unlock), spin locks, stdio's
 * flockfile family, C11 mtx_*, and the C++ static-initialisation guard
 * (__cxa_guard_acquire holds the guard until release or abort: a second
 * caller would block its thread in the guard's futex while the first waits
 * in a run queue).
 *
 * The real function is found once, with dlsym: where a sanitizer is loaded,
 * its interceptor (__interceptor_NAME), so that ThreadSanitizer still sees
 * every lock; otherwise the next definition after ours (RTLD_NEXT).
 *
 * Cost: a call through a pointer and a thread-local read per lock call;
 * docs/preemption.md has the measured figure.
 *
 * Context: any thread, any time, including before a run and on threads
 * that are not Ms (the count is then not kept). Never in a signal handler
 * of ours. What they touch: the caller's M and its running task's stack
 * block, and dlsym on first use.
 */
#include "sched.h"
#include "unwind/unwind.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <threads.h>
#include <time.h>

/* The wrappers' own section: a thread blocked in a lock call, under a
 * wrapper, is in no runtime code that uses its P, so it may be detached
 * (detach.c); modules.c classifies the section as code never preempted. */
#define URG__INTERPOSER __attribute__((section("urg_interpose")))

/* adjust: add d to the running task's count. Never below zero: a lock
 * taken before the task started (or on a plain thread) may be released
 * by it. */
URG__RACY_READER static inline void adjust(int d) /* as note_sigurg */
{
    m_t *mp = urg__tls_m;
    if (!mp)
        return;
    g_t *gp = mp->curg;
    if (!gp || gp == &mp->g0)
        return;
    int32_t n = gp->st->ulocks + d;
    gp->st->ulocks = n < 0 ? 0 : n;
}

/* Defined when a sanitizer's runtime is in the process. */
extern void __asan_init(void) __attribute__((weak));
extern void __tsan_init(void) __attribute__((weak));
extern void __msan_init(void) __attribute__((weak));

/* resolve: the function an interposed NAME stands in front of. The
 * interceptor is looked for only where a sanitizer is loaded: a dlsym that
 * fails allocates its error message, and a malloc linked into the program
 * (static jemalloc) takes a pthread lock on its first call, which comes
 * back here — a recursion that ends in a stack overflow before main. */
static void *resolve(const char *name)
{
    void *f = NULL;
    if (__asan_init || __tsan_init || __msan_init) {
        char buf[64] = "__interceptor_";
        urg__strlcpy(buf + 14, name, sizeof(buf) - 14);
        f = dlsym(RTLD_DEFAULT, buf);
    }
    if (!f)
        f = dlsym(RTLD_NEXT, name);
    if (!f) {
        urg__write_str("fatal error: urgent: no C library function ");
        urg__write_str(name);
        urg__write_str(" to stand in front of\n");
        abort();
    }
    return f;
}

/* One pointer per function, found on first use (or by the constructor). */
#define REAL(ret, name, params)                                                                    \
    static ret(*real_##name) params;                                                               \
    static inline ret(*get_##name(void)) params                                                    \
    {                                                                                              \
        ret(*f) params = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE);                          \
        if (__builtin_expect(!f, 0)) {                                                             \
            f = (ret(*) params)resolve(#name);                                                     \
            __atomic_store_n(&real_##name, f, __ATOMIC_RELEASE);                                   \
        }                                                                                          \
        return f;                                                                                  \
    }

/* A lock call: count one more when it returns `ok`. */
#define LOCK(ret, name, ok, params, args)                                                          \
    REAL(ret, name, params)                                                                        \
    URG_API URG__INTERPOSER ret name params                                                        \
    {                                                                                              \
        ret r = get_##name() args;                                                                 \
        if (r == (ok))                                                                             \
            adjust(1);                                                                             \
        return r;                                                                                  \
    }

/* An unlock call: count one less. */
#define UNLOCK(ret, name, params, args)                                                            \
    REAL(ret, name, params)                                                                        \
    URG_API URG__INTERPOSER ret name params                                                        \
    {                                                                                              \
        ret r = get_##name() args;                                                                 \
        adjust(-1);                                                                                \
        return r;                                                                                  \
    }

LOCK(int, pthread_mutex_lock, 0, (pthread_mutex_t * m), (m))
LOCK(int, pthread_mutex_trylock, 0, (pthread_mutex_t * m), (m))
LOCK(int, pthread_mutex_timedlock, 0, (pthread_mutex_t * m, const struct timespec *t), (m, t))
LOCK(int, pthread_mutex_clocklock, 0, (pthread_mutex_t * m, clockid_t c, const struct timespec *t),
     (m, c, t))
UNLOCK(int, pthread_mutex_unlock, (pthread_mutex_t * m), (m))

LOCK(int, pthread_rwlock_rdlock, 0, (pthread_rwlock_t * l), (l))
LOCK(int, pthread_rwlock_wrlock, 0, (pthread_rwlock_t * l), (l))
LOCK(int, pthread_rwlock_tryrdlock, 0, (pthread_rwlock_t * l), (l))
LOCK(int, pthread_rwlock_trywrlock, 0, (pthread_rwlock_t * l), (l))
LOCK(int, pthread_rwlock_timedrdlock, 0, (pthread_rwlock_t * l, const struct timespec *t), (l, t))
LOCK(int, pthread_rwlock_timedwrlock, 0, (pthread_rwlock_t * l, const struct timespec *t), (l, t))
LOCK(int, pthread_rwlock_clockrdlock, 0,
     (pthread_rwlock_t * l, clockid_t c, const struct timespec *t), (l, c, t))
LOCK(int, pthread_rwlock_clockwrlock, 0,
     (pthread_rwlock_t * l, clockid_t c, const struct timespec *t), (l, c, t))
UNLOCK(int, pthread_rwlock_unlock, (pthread_rwlock_t * l), (l))

LOCK(int, pthread_spin_lock, 0, (pthread_spinlock_t * l), (l))
LOCK(int, pthread_spin_trylock, 0, (pthread_spinlock_t * l), (l))
UNLOCK(int, pthread_spin_unlock, (pthread_spinlock_t * l), (l))

LOCK(int, mtx_lock, thrd_success, (mtx_t * m), (m))
LOCK(int, mtx_trylock, thrd_success, (mtx_t * m), (m))
LOCK(int, mtx_timedlock, thrd_success, (mtx_t *restrict m, const struct timespec *restrict t),
     (m, t))
UNLOCK(int, mtx_unlock, (mtx_t * m), (m))

LOCK(int, ftrylockfile, 0, (FILE * f), (f))
REAL(void, funlockfile, (FILE * f))
URG__INTERPOSER URG_API void funlockfile(FILE *f)
{
    get_funlockfile()(f);
    adjust(-1);
}

REAL(void, flockfile, (FILE * f))
URG__INTERPOSER URG_API void flockfile(FILE *f)
{
    get_flockfile()(f);
    adjust(1);
}

/* The C++ ABI's guard for function-local statics: acquire returns 1 when
 * the caller must run the initialiser, holding the guard until release
 * (done) or abort (it threw). */
REAL(int, __cxa_guard_acquire, (int64_t * g))
REAL(void, __cxa_guard_release, (int64_t * g))
REAL(void, __cxa_guard_abort, (int64_t * g))
URG_API int __cxa_guard_acquire(int64_t *g);
URG_API void __cxa_guard_release(int64_t *g);
URG_API void __cxa_guard_abort(int64_t *g);
URG__INTERPOSER int __cxa_guard_acquire(int64_t *g)
{
    int r = get___cxa_guard_acquire()(g);
    if (r)
        adjust(1);
    return r;
}
URG__INTERPOSER void __cxa_guard_release(int64_t *g)
{
    get___cxa_guard_release()(g);
    adjust(-1);
}
URG__INTERPOSER void __cxa_guard_abort(int64_t *g)
{
    get___cxa_guard_abort()(g);
    adjust(-1);
}

/* ---- signal masks ----
 * A task that blocks SIGURG blocks it for its thread, and the task may
 * leave (park, return) with it blocked: every preemption request sent to
 * that thread would then stay pending in the kernel, and the next task
 * there could never be preempted. So the mask calls note, for the thread,
 * whether a task left SIGURG blocked (mp->sig.urg_blocked), and the
 * thread's next switch unblocks it (urg__sigmask_unblock_urg, from proc.c):
 * a mask is the thread's, not the task's, as everywhere in urgent (the
 * hazards of docs/preemption.md). Calls from the runtime's own handlers
 * (libunwind blocks every signal around its cache) run on the alternate
 * signal stack and are not noted. Signal-safe. */
/* Racy reader: urg__tls_m is the thread's, read from a task, which
 * ThreadSanitizer models as a thread of its own (the M writes it at exit,
 * on the same OS thread). */
URG__RACY_READER static void note_sigurg(int how, const sigset_t *set)
{
    m_t *mp = urg__tls_m;
    if (!mp || !set)
        return;
    g_t *gp = mp->curg;
    if (!gp || gp == &mp->g0)
        return;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0), alt = (uintptr_t)mp->sig.altstack;
    if (alt && sp - alt < mp->sig.altstack_size)
        return; /* in a handler of ours */
    bool urg = sigismember(set, SIGURG) == 1;
    if (how == SIG_SETMASK)
        mp->sig.urg_blocked = urg;
    else if (urg && how == SIG_BLOCK)
        mp->sig.urg_blocked = 1;
    else if (urg && how == SIG_UNBLOCK)
        mp->sig.urg_blocked = 0;
}

REAL(int, pthread_sigmask, (int how, const sigset_t *set, sigset_t *old))
REAL(int, sigprocmask, (int how, const sigset_t *set, sigset_t *old))
URG_API URG__INTERPOSER int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    int r = get_pthread_sigmask()(how, set, old);
    if (r == 0)
        note_sigurg(how, set);
    return r;
}
URG_API URG__INTERPOSER int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    int r = get_sigprocmask()(how, set, old);
    if (r == 0)
        note_sigurg(how, set);
    return r;
}

/* urg__sigmask_unblock_urg: unblock SIGURG on the calling thread, through
 * the C library's function (not the wrapper). Context: g0 or a task. */
void urg__sigmask_unblock_urg(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGURG);
    get_pthread_sigmask()(SIG_UNBLOCK, &s, NULL);
}

/* ---- unloading ----
 * The SIGURG handler walks stacks with a table of the loaded objects that
 * sysmon refreshes when it sees objects come or go (every 100 ms at
 * most), and libunwind reads an object's unwind tables through it with
 * every signal blocked, so a read of unmapped memory there kills the
 * process. A dlclose during a run therefore unloads only while no walk is
 * reading, and refreshes the table before any walk reads again
 * (urg__modules_unload). Not in the lock wrappers' section: the refresh
 * is runtime code. */
REAL(int, dlclose, (void *handle))
static int real_dlclose_call(void *handle) { return get_dlclose()(handle); }
URG_API int dlclose(void *handle)
{
    if (!urg__run_held())
        return get_dlclose()(handle);
    return urg__modules_unload(real_dlclose_call, handle);
}

/* urg__interpose_init: find the C library's functions now, before any
 * task runs (urg_run calls it, which also keeps this file in static
 * links). The C++ guard is left to first use: a C program has none. */
void urg__interpose_init(void)
{
    (void)get_pthread_mutex_lock();
    (void)get_pthread_mutex_trylock();
    (void)get_pthread_mutex_unlock();
    (void)get_pthread_rwlock_rdlock();
    (void)get_pthread_rwlock_wrlock();
    (void)get_pthread_rwlock_unlock();
    (void)get_pthread_spin_lock();
    (void)get_pthread_spin_unlock();
    (void)get_flockfile();
    (void)get_funlockfile();
    (void)get_pthread_sigmask();
    (void)get_sigprocmask();
    (void)get_dlclose();
}
