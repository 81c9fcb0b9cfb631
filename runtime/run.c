/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * run.c — urg_run: starting the runtime, and ending it cleanly so that it
 * can be started again in the same process.
 *
 * Shape of a run:
 *   1. validate the configuration (cfg, then URG_* variables, then
 *      defaults), build the Ps, the stack pool, the netpoller, the signal
 *      handlers;
 *   2. create the main task on P0 and start one M for it;
 *   3. the calling thread becomes sysmon (a thread without a P) until the
 *      main task returns;
 *   4. shutdown: set `exiting`; idle Ms are woken and end; running tasks
 *      are asked to stop (preempt flag, and SIGURG in the async build) and
 *      their Ms end at the next scheduling point; Ms blocked in a syscall
 *      end when it returns. After a grace period, Ms still busy (a
 *      cooperative-build hog, a syscall that never returns) are abandoned:
 *      marked orphan and detached; such an M's task stops at its next
 *      runtime call and its thread ends without touching the runtime;
 *   5. teardown: unlink every blocked task from the user-owned objects it
 *      waits on (channels, mutexes, wait groups stay usable), free Ps,
 *      stacks, descriptors, close the poller, restore signal handlers.
 *      If an orphan still runs on a task stack, stacks and descriptors are
 *      kept (leaked) instead, since its thread still uses them.
 *
 * Go ends the process when main returns; a library cannot, hence step 4.
 *
 * Threads outside the runtime (urg_go or channel sends from a plain
 * pthread) hold a reference, sched_ext_refs, while they touch runtime
 * state; teardown waits for it to drop to zero after setting `exiting`.
 */
#include "sanitizer.h"
#include "sched.h"
#include "signals/signals.h"
#include "unwind/unwind.h"
#include "trace.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHUTDOWN_GRACE_NS  (200ull * 1000 * 1000)
#define DEFAULT_QUANTUM_NS (10ull * 1000 * 1000)
#define DEFAULT_STACK      (256u * 1024u)
/* Wake-up preemption (sysmon.c): on in the async build, where a request
 * lands within microseconds; the cooperative build could only ask. */
#ifdef URG_PREEMPT_ASYNC
#define DEFAULT_WAKEGRAN_NS (1000ull * 1000)
#else
#define DEFAULT_WAKEGRAN_NS 0ull
#endif

static uint32_t ext_refs; /* atomic: external threads inside the runtime */

bool urg__ext_enter(void)
{
    fetch_add(&ext_refs, 1u);
    if (!ld_acquire(&sched.running) || ld_acquire(&sched.exiting)) {
        fetch_sub(&ext_refs, 1u);
        return false;
    }
    return true;
}

void urg__ext_exit(void) { fetch_sub(&ext_refs, 1u); }

bool urg__waker_enter(g_t *gp, bool *guarded)
{
    *guarded = false;
    if (gp->flags & G_FLAG_EXTERNAL)
        return true; /* waking a plain thread needs no runtime */
    m_t *mp = urg__tls_m;
    if (mp && !ld_relaxed(&mp->orphan))
        return true;
    if (!urg__ext_enter())
        return false;
    *guarded = true;
    return true;
}

void urg__waker_exit(bool guarded)
{
    if (guarded)
        urg__ext_exit();
}

static int resolve_config(const urg_config *cfg, struct urg__env *env)
{
    urg__env_parse(env);
    if (cfg) {
        if (cfg->maxprocs < 0 || cfg->maxprocs > URG_MAXPROCS_MAX)
            return -EINVAL;
        if (cfg->quantum_ns &&
            (cfg->quantum_ns < URG_QUANTUM_MIN_NS || cfg->quantum_ns > URG_QUANTUM_MAX_NS))
            return -EINVAL;
        if (cfg->stack_size && (cfg->stack_size < URG_STACK_MIN || cfg->stack_size > URG_STACK_MAX))
            return -EINVAL;
    }
    int procs = cfg && cfg->maxprocs ? cfg->maxprocs : env->maxprocs;
    if (!procs)
        procs = urg__default_maxprocs();
    if (procs > URG_MAXPROCS_MAX)
        procs = URG_MAXPROCS_MAX;
    sched.gomaxprocs = 0;
    sched.quantum_ns = cfg && cfg->quantum_ns ? cfg->quantum_ns
                       : env->quantum_ns      ? env->quantum_ns
                                              : DEFAULT_QUANTUM_NS;
    sched.stack_size = cfg && cfg->stack_size ? cfg->stack_size
                       : env->stack_size      ? env->stack_size
                                              : DEFAULT_STACK;
    sched.schedtrace_ms = env->schedtrace_ms;
    sched.scheddetail = env->scheddetail;
    sched.chaos = env->chaos_seed != 0;
    sched.chaos_seed = env->chaos_seed;
    sched.wakegran_ns =
        env->wakepreempt_us >= 0 ? (uint64_t)env->wakepreempt_us * 1000u : DEFAULT_WAKEGRAN_NS;
    return procs;
}

static void reset_sched(void)
{
    sched.runqhead = sched.runqtail = NULL;
    sched.runqsize = 0;
    sched.midle = NULL;
    sched.nmidle = sched.mcount = sched.mlive = 0;
    sched.allm = NULL;
    sched.pidle = NULL;
    sched.npidle = sched.nmspinning = 0;
    sched.needspinning = 0;
    sched.nmsyscall = 0;
    sched.gomaxprocs = 0;
    sched.stw_waiting = 0;
    sched.stopwait = 0;
    urg__note_clear(&sched.stopnote);
    memset(&sched.stw, 0, sizeof(sched.stw));
    sched.exiting = sched.main_done = sched.external_seen = 0;
    sched.goidgen = 0;
    sched.lastpoll = urg__nanotime();
    sched.polluntil = 0;
    sched.pollingnet = 0;
    urg__note_clear(&sched.sysmonnote);
    sched.sysmonwait = 0;
    sched.preempt_requests = sched.preempt_signals = sched.preempt_async = 0;
    sched.preempt_deferred = sched.syscall_handoffs = sched.preempt_walks_memo = 0;
    sched.preempt_wakeup = 0;
    sched.detaches = sched.detach_blocked = 0;
    memset(sched.preempt_cost, 0, sizeof(sched.preempt_cost));
    sched.preempt_cost_sum = 0;
    sched.exited_p_created = sched.exited_p_exited = sched.exited_p_switches = 0;
    sched.exited_p_steals = sched.exited_p_coop = 0;
    sched.starttime = urg__nanotime();
}

/* Context: urg_run's thread after every M has stopped or been orphaned:
 * tasks still running belong to orphans and are left alone. */
static void call_abandon(g_t *gp, void *arg)
{
    (void)arg;
    uint32_t status = ld_relaxed(&gp->status);
    /* A task that never started has no stack block (st is its arg). */
    if (status == G_DEAD || !(gp->flags & G_FLAG_STARTED))
        return;
    if (gp->st->abandon) {
        gp->st->abandon(gp, gp->st->abandon_arg);
        gp->st->abandon = NULL;
    }
}

/* shutdown: the main task returned. Stop every M; returns the number of
 * Ms that had to be abandoned. An M abandoned is one still running a task
 * (or inside a syscall bracket) after the grace period: its task may never
 * reach a runtime call. Ms without a task always end promptly (they only
 * look for work, and find `exiting`), so they are waited for without a
 * deadline — abandoning one of those would leave it inside the scheduler.
 * Context: urg_run's thread (sysmon). */
static int shutdown_ms(void)
{
    st_release(&sched.exiting, 1u);
    urg__netpoll_break();
    uint64_t deadline = urg__nanotime() + SHUTDOWN_GRACE_NS;
    int orphans = 0;
    for (;;) {
        /* Wake every idle M; ask running tasks to stop. */
        urg__lock(&sched.lock);
        m_t *mp;
        while ((mp = urg__mget()) != NULL)
            urg__note_wakeup(&mp->park);
        urg__preemptall();
        bool past = urg__nanotime() > deadline;
        int waiting = 0;
        for (mp = sched.allm; mp; mp = mp->alllink) {
            if (ld_acquire(&mp->exited) || ld_acquire(&mp->orphan))
                continue;
            if (past && ld_acquire(&mp->curg)) {
                st_release(&mp->orphan, 1u);
                orphans++;
                continue;
            }
            waiting++;
        }
        urg__unlock(&sched.lock);
        if (waiting == 0)
            break;
        urg__netpoll_break();
        urg__note_clear(&sched.sysmonnote);
        urg__note_tsleep(&sched.sysmonnote, 1000000);
    }
    /* Outside threads may still be finishing an operation. */
    while (ld_acquire(&ext_refs) != 0)
        sched_yield();
    return orphans;
}

/* Ms abandoned by earlier runs, kept (see mthread_main): a list, so that
 * they stay reachable rather than look leaked to a leak checker. */
static m_t *abandoned_ms;

static void free_ms(void)
{
    m_t *mp = sched.allm;
    while (mp) {
        m_t *next = mp->alllink;
        if (ld_acquire(&mp->orphan)) {
            pthread_detach(mp->thread);
            mp->alllink = abandoned_ms;
            abandoned_ms = mp;
        } else {
            pthread_join(mp->thread, NULL);
            urg__altstack_free(&mp->sig, urg__tls_m == mp || mp->tid == 0);
            free(mp);
        }
        mp = next;
    }
    sched.allm = NULL;
}

static void free_ps(bool keep_memory)
{
    for (int i = 0; i < URG_MAXPROCS_MAX; i++) {
        p_t *pp = sched.allp[i];
        if (!pp)
            continue;
        urg__timers_free(pp);
        if (!keep_memory)
            free(pp);
        sched.allp[i] = NULL;
    }
}

static uint32_t run_lock;

/* urg__run_held: a run holds run_lock (being set up, running, or being
 * torn down). fork.c's child handler reads it: a child forked then gets
 * the runtime detached. Context: any. Signal-safe. */
bool urg__run_held(void) { return ld_relaxed(&run_lock) != 0; }

/* The smallest urg_config any release had; fields are only appended. */
_Static_assert(offsetof(urg_config, stack_size) + sizeof(size_t) == URG_CONFIG_SIZE_VER0,
               "urg_config's 0.1 fields moved");
/* Larger than any urg_config will be: urg_run2 reads no further. */
#define URG__CONFIG_SIZE_MAX 4096

/* run_sysmon: this thread is sysmon until the main task returns. */
static void run_sysmon(void) { urg__sysmon(); }

/* teardown_run: the main task has returned (or never started): stop the
 * Ms, release what the run's tasks held, and free their memory unless
 * some Ms could not be stopped. Returns how many were abandoned (still
 * running a task). Context: urg_run's thread. */
static int teardown_run(void)
{
    int orphans = shutdown_ms();
    urg__trace_run_end();
    if (orphans > 0) {
        urg__pbuf b = {.len = 0};
        urg__pb_str(&b, "urgent: ");
        urg__pb_u64(&b, (uint64_t)orphans);
        urg__pb_str(&b, " thread(s) still running a task when main returned (a loop without "
                        "runtime calls, or a syscall); they are abandoned with their stacks\n");
        urg__pb_flush(&b);
    }
    st_release(&sched.running, 0u);
    urg__chaos_end();
    urg__deferprof_report();
    free_ms();
    /* Unlink blocked tasks from channels, mutexes and wait groups. */
    urg__gslab_foreach(call_abandon, NULL);
    if (orphans == 0) {
        for (int i = 0; i < URG_MAXPROCS_MAX; i++)
            if (sched.allp[i])
                urg__stack_flush_cache(sched.allp[i]);
        urg__stack_teardown();
        urg__gfree_all();
    }
    return orphans;
}

/* run: urg_run, after urg_run2 has checked the caller's struct (cfg_err is
 * its verdict, reported after -EBUSY as every cfg error is). */
static int run(urg_fn main_fn, void *arg, const urg_config *cfg, int cfg_err)
{
    if (!main_fn)
        return -EINVAL;
    if (urg__tls_m)
        return -EBUSY; /* called from a task (or an M) */
    urg__fork_init();  /* fork() during a run detaches the child's runtime */
    if (!cas(&run_lock, 0u, 1u))
        return -EBUSY; /* also in a child forked during a run (fork.c) */
    struct urg__env env;
    int ret = 0, orphans = 0;
    int procs = cfg_err ? cfg_err : resolve_config(cfg, &env);
    if (procs < 0) {
        ret = procs;
        goto out_unlock;
    }
    reset_sched();
    sigset_t caller_mask;
    pthread_sigmask(SIG_SETMASK, NULL, &caller_mask);
    urg__thread_set_base_mask(&caller_mask);

    if ((ret = urg__stack_init(sched.stack_size)) != 0)
        goto out_unlock;
    if ((ret = urg__netpoll_init()) != 0)
        goto out_unlock;
    urg__lock(&sched.lock);
    p_t *runnable;
    ret = urg__procresize(procs, &runnable);
    urg__unlock(&sched.lock);
    if (ret != 0)
        goto out_poll;
    if ((ret = urg__unwind_init()) != 0)
        goto out_ps;
    urg__modules_refresh();
    urg__interpose_init();
    if ((ret = urg__signals_install()) != 0)
        goto out_ps;
    urg__chaos_start();
    urg__deferprof_reset();
    if (env.trace_path[0])
        urg__trace_env_start(env.trace_path);

    p_t *p0 = sched.allp[0];
    int err = 0;
    g_t *maing = urg__newproc(main_fn, arg, G_FLAG_MAIN, p0, &err);
    if (!maing) {
        ret = err;
        goto out_signals;
    }
    st_release(&sched.running, 1u);

    /* Hand P0 (with the main task) to a first M. */
    urg__lock(&sched.lock);
    urg__pidleremove(p0);
    urg__unlock(&sched.lock);
    urg__runqput(p0, maing, false);
    if (!urg__newm(p0, false, &err)) {
        st_release(&sched.running, 0u);
        ret = err ? err : -EAGAIN;
        goto out_teardown;
    }

    run_sysmon(); /* until the main task returns */

out_teardown:
    orphans = teardown_run();
out_signals:
    urg__signals_restore();
out_ps:
    free_ps(orphans > 0);
out_poll:
    urg__netpoll_close();
out_unlock:
    st_release(&sched.running, 0u);
    st_release(&run_lock, 0u);
    return ret;
}

/* urg_run reads the urg_config of the headers the library was built with:
 * the struct grows only with the soname (docs/api.md, "Growing structs"),
 * so a program that loads this library was built with the same one. */
int urg_run(urg_fn main_fn, void *arg, const urg_config *cfg) { return run(main_fn, arg, cfg, 0); }

/* urg_run2 copies the caller's struct, however large, into this library's:
 * a shorter one leaves the fields it lacks 0 (defaults), a longer one may
 * only add zeroes (the rule of the kernel's extensible structs, clone3 and
 * openat2: a field this library cannot honour is refused, never ignored). */
int urg_run2(urg_fn main_fn, void *arg, const urg_config *cfg, size_t cfg_size)
{
    if (!cfg)
        return run(main_fn, arg, NULL, 0);
    if (cfg_size < URG_CONFIG_SIZE_VER0)
        return run(main_fn, arg, NULL, -EINVAL);
    if (cfg_size > URG__CONFIG_SIZE_MAX)
        return run(main_fn, arg, NULL, -E2BIG);
    urg_config c;
    memset(&c, 0, sizeof(c));
    const unsigned char *bytes = (const unsigned char *)cfg;
    for (size_t i = sizeof(c); i < cfg_size; i++)
        if (bytes[i])
            return run(main_fn, arg, NULL, -E2BIG);
    memcpy(&c, cfg, cfg_size < sizeof(c) ? cfg_size : sizeof(c));
    return run(main_fn, arg, &c, 0);
}
