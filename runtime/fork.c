/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * fork.c — fork(2) during a run: the parent goes on untouched, the child
 * gets the runtime detached.
 *
 * A child of fork() has one thread, the one that called fork, and a copy of
 * everything else: the scheduler's state, every task's stack, the Ps'
 * queues, the descriptors of the parent's epoll instance and eventfd. Left
 * alone, the child's first runtime call ran the scheduler on that copy:
 * it waited in the *parent's* epoll instance (a descriptor copied by fork
 * names the same instance), took a one-shot event meant for a parent task,
 * ran its own copy of that task, and the parent's task never woke.
 *
 * The model: the child is a process in which no run is in progress, on a
 * plain thread. A child handler (pthread_atfork), run by fork() in the
 * child before fork returns there, when a run held run_lock at the fork:
 *   - clears the thread's M pointer (urg__tls_m): every urg_* call then
 *     takes its plain-thread path (urg_task_id 0, urg_yield sched_yield,
 *     urg_sleep nanosleep, urg_read a blocking read(2)/poll(2), ...);
 *   - clears sched.running and sets sched.exiting: calls that would reach
 *     the run's state from a plain thread (urg_go, urg_set_maxprocs, the
 *     stats, the dump, waking a parked task) find no run (urg__ext_enter);
 *   - puts back the program's own signal handlers (urg__signals_restore),
 *     as urg_run does when it returns: no SIGURG handler, no preemption;
 *   - marks the forking thread's M orphaned, in the child's copy only, so
 *     that a task function that returns in the child ends that thread the
 *     way an abandoned M's does (proc.c, urg__orphan_exit): the child's
 *     only thread returns from its start routine, and the process exits
 *     with status 0, as after pthread_exit in the last thread.
 * run_lock stays held in the child, so urg_run there returns -EBUSY: the
 * copied runtime was caught mid-run (locks possibly held by threads the
 * child does not have, Ps and timers naming the parent's tasks, the pool
 * of stacks shared with those tasks) and cannot be restarted.
 *
 * The child touches nothing the parent shares with it: it does not close,
 * poll or EPOLL_CTL_DEL in the epoll instance (registrations are keyed by
 * open file description and fd and belong to the shared instance), and
 * does not write the eventfd. The copies of those descriptors are
 * close-on-exec, and otherwise unused: nothing in a detached child reaches
 * the netpoller.
 *
 * Locks: the child takes no runtime lock on any of the paths above, and
 * the handlers take none at all: a lock another parent thread held at the
 * fork stays held forever in the child. Objects created before the fork
 * (channels, mutexes, wait groups) are copies that may be locked or list
 * the parent's tasks as waiters: the child must not use them (POSIX's own
 * rule for a child of a threaded process, until exec).
 *
 * The prepare handler blocks SIGURG in the forking thread until fork
 * returns (parent handler) or the child is detached (child handler): a
 * preemption cannot land in between, the forking task stays on its thread
 * (so the mask saved in a thread-local is the right one to put back), and
 * in the child no SIGURG handler can run against the copied M before it is
 * cleared. A request sysmon sends meanwhile stays pending and is delivered
 * when the parent handler unblocks it, in runtime code, where it is
 * deferred and asked again, as for any unsafe point.
 *
 * Alternatives rejected: a fresh runtime in the child (reset every global,
 * re-create the poller, the stack pool and the descriptor slabs): it would
 * have to forget state guarded by locks that may be held for good, and
 * most children exec at once; Go, which owns its processes, does not
 * support fork without exec at all. Taking every runtime lock in the
 * prepare handler (what glibc does for malloc): the forking task would
 * take ranked locks from user code, and a fork would wait for sysmon and
 * every M; the child needs none of that state.
 *
 * The handlers are registered once per process, when the library is loaded
 * (a constructor, so that they run before handlers the program registers
 * later) and, for the static library, from urg_run's first call, which
 * also makes sure this file is linked in.
 */
#include "sched.h"
#include "unwind/unwind.h"
#include "signals/signals.h"

#include <pthread.h>
#include <signal.h>

/* The forking thread's signal mask before prepare blocked SIGURG; owner
 * (the thread that called fork). initial-exec: no lazy TLS allocation. */
static __thread sigset_t fork_mask __attribute__((tls_model("initial-exec")));
static __thread bool fork_masked __attribute__((tls_model("initial-exec")));

/* Context: the thread calling fork, in the parent. Signal-safe. */
static void fork_prepare(void)
{
    sigset_t urg;
    sigemptyset(&urg);
    sigaddset(&urg, SIGURG);
    fork_masked = pthread_sigmask(SIG_BLOCK, &urg, &fork_mask) == 0;
}

/* Context: the thread that called fork, in the parent. Signal-safe. */
static void fork_parent(void)
{
    if (fork_masked) {
        fork_masked = false;
        pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
    }
}

/* fork_child: detach the runtime (see the top of the file). Context: the
 * child's only thread, before fork returns. Locks: none. Signal-safe. */
static void fork_child(void)
{
    urg__modules_fork_child(); /* walks of other threads are gone */
    if (urg__run_held()) {
        m_t *mp = urg__tls_m;
        urg__tls_m = NULL;
        if (mp)
            st_relaxed(&mp->orphan, 1u);
        st_release(&sched.exiting, 1u);
        st_release(&sched.running, 0u);
        urg__signals_restore();
    }
    fork_parent();
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_register(void)
{
    /* Fails only without memory; the runtime works without it, and a
     * fork during a run is then what it was before this file. */
    if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
        urg__warn("pthread_atfork", "failed: fork during a run is not supported");
}

/* urg__fork_init: register the handlers, once. Context: any thread. */
void urg__fork_init(void) { pthread_once(&fork_once, fork_register); }

__attribute__((constructor)) static void fork_ctor(void) { urg__fork_init(); }
