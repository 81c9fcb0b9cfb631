/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * thread.c — Ms: OS threads that run the scheduler.
 *
 * Threads are created on demand (startm finds no idle M), parked on a
 * futex when there is nothing to do, and reused; they end when the run
 * ends (urg_run joins them). A thread starts with every signal blocked,
 * sets up its thread-local M, its alternate signal stack and its unwinder,
 * then takes the signal mask urg_run's caller had, with SIGURG unblocked.
 *
 * Go caps threads at 10,000 (sched.maxmcount) and dies past it; so do we:
 * a program that blocks that many threads in syscalls is broken.
 */
#include "sched.h"
#include "signals/signals.h"
#include "trace.h"
#include "sanitizer.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define URG__MAX_THREADS 10000

static sigset_t run_sigmask; /* the mask of urg_run's caller */

URG__HIDDEN void urg__thread_set_base_mask(const sigset_t *mask) { run_sigmask = *mask; }

static void g0_bounds(m_t *mp)
{
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *addr;
        size_t size;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            mp->g0x.lo = addr;
            mp->g0x.hi = (char *)addr + size;
        }
        pthread_attr_destroy(&attr);
    }
}

/* urg__m_signal_init: per-thread setup shared by worker Ms.
 * Context: the new thread, before it runs anything. */
void urg__m_signal_init(m_t *mp)
{
    mp->sig.errno_p = urg__errno_here();
    urg__tls_m = mp;
    mp->tid = (pid_t)syscall(SYS_gettid);
    g0_bounds(mp);
    urg__san_g0_init(&mp->g0);
    if (urg__altstack_init(&mp->sig) != 0)
        urg__throw("cannot allocate a signal stack");
    if (urg__safepoint_m_init(&mp->sig, (uintptr_t)mp->g0x.lo, (uintptr_t)mp->g0x.hi) != 0)
        urg__throw("cannot initialise the unwinder");
    sigset_t mask = run_sigmask;
    sigdelset(&mask, SIGURG);
    sigdelset(&mask, SIGSEGV);
    sigdelset(&mask, SIGBUS);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
}

static void *mthread_main(void *arg)
{
    m_t *mp = arg;
    urg__m_signal_init(mp);
    urg__take_nextp(mp); /* none if claimed: mstart parks us */
    urg__mstart(mp);

    /* The run is over (or we were abandoned by it). */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    urg__tls_m = NULL;
    urg__trace_thread_exit();
    urg__safepoint_m_fini(&mp->sig);
    if (ld_acquire(&mp->orphan)) {
        /* Nobody joins us. mp (and its signal stack) stays allocated: the
         * finished run's teardown may still be reading it, and there is
         * no later point at which both sides know it is done. A few KiB
         * per abandoned thread, which is already a reported anomaly. */
        return NULL;
    }
    st_release(&mp->exited, 1u);
    fetch_sub(&sched.mlive, 1);
    urg__sysmon_wake();
    return NULL;
}

/* urg__newm: create a thread that will run pp (or look for work, when
 * spinning). Returns the M, or NULL with *err set.
 * Context: any but signal. Locks: takes sched.lock. */
m_t *urg__newm(p_t *pp, bool spinning, int *err)
{
    m_t *mp;
    if (posix_memalign((void **)&mp, URG__CACHELINE, sizeof(*mp)) != 0) {
        *err = -ENOMEM;
        return NULL;
    }
    memset(mp, 0, sizeof(*mp));
    mp->g0.m = mp;
    mp->g0.st = &mp->g0x;
    mp->g0.flags = G_FLAG_STARTED;
    mp->g0.status = G_RUNNING;
    mp->spinning = spinning;
    mp->rand = urg__nanotime() ^ (uintptr_t)mp;

    urg__lock(&sched.lock);
    if (pp)
        urg__set_nextp(mp, pp);
    if (sched.mcount >= URG__MAX_THREADS) {
        urg__unlock(&sched.lock);
        urg__throw("thread exhaustion (10000 threads)");
    }
    mp->id = sched.mcount;
    st_relaxed(&sched.mcount, sched.mcount + 1); /* urg_stats_get reads it */
    mp->alllink = sched.allm;
    sched.allm = mp;
    fetch_add(&sched.mlive, 1);
    urg__unlock(&sched.lock);

    /* Start with everything blocked; the thread sets its mask itself. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&mp->thread, NULL, mthread_main, mp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        urg__lock(&sched.lock);
        m_t **pm = &sched.allm;
        while (*pm != mp)
            pm = &(*pm)->alllink;
        *pm = mp->alllink;
        st_relaxed(&sched.mcount, sched.mcount - 1);
        fetch_sub(&sched.mlive, 1);
        urg__unlock(&sched.lock);
        free(mp);
        *err = -r;
        return NULL;
    }
    return mp;
}

/* urg__stopm: park this M until startm hands it a P (or the run ends).
 * The M may already be on the idle list (stw_stopm lists it before waking
 * the stopper, so that the restart can reuse it) and may even have been
 * handed a P already: nextp is checked before sleeping. A wake-up that
 * finds the M still listed and no P is stale (startm handed it a P that a
 * stop-the-world took back, stw.c, or a hand-off it took without
 * sleeping): it sleeps on. Context: g0, holding no P. */
void urg__stopm(m_t *mp)
{
    URG__CHECK(mp->p == NULL, "stopm: M holds a P");
    urg__lock(&sched.lock);
    /* Spinning only if startm already handed it a P to spin with. */
    URG__CHECK(!mp->spinning || mp->nextp, "stopm: M is spinning");
    for (bool woke = false;; woke = true) {
        if (urg__take_nextp_locked(mp))
            break;
        if (ld_acquire(&sched.exiting) || ld_acquire(&mp->orphan))
            break;
        URG__CHECK(!woke || mp->idle_listed, "stopm: woken without a P");
        if (!mp->idle_listed)
            urg__mput(mp);
        urg__checkdead_locked();
        urg__unlock(&sched.lock);
        urg__note_sleep(&mp->park);
        urg__note_clear(&mp->park);
        if (ld_acquire(&mp->orphan))
            return; /* its run is over: never touch the scheduler again */
        urg__lock(&sched.lock);
    }
    urg__unlock(&sched.lock);
}
