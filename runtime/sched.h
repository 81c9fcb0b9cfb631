/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * sched.h — tasks (G), threads (M), procs (P) and the scheduler's shared
 * state. The vocabulary is Go's (runtime2.go) so that readers can
 * cross-check with proc.go: g/m/p, gp/mp/pp, runq, runnext, park/ready,
 * handoff, sysmon, retake.
 *
 *   G  a task: a function, its stack (allocated on first run) and the
 *      saved stack pointer while it is not running.
 *   M  an OS thread. Runs the scheduler on its own stack (g0) and tasks on
 *      theirs. Must hold a P to run a task.
 *   P  the right to run tasks; exactly `maxprocs` of them. Holds a local
 *      run queue (lock-free ring of 256 + runnext), caches and timers.
 *
 * Who may touch what is written at each field (as Go's runtime2.go does).
 * "owner" means the M that holds the P (for P fields), runs the G, or is
 * the M; "sched.lock" means under the global scheduler lock (the lock
 * order is in lockrank.h); "atomic" means any thread, with atomics;
 * "written once" means set before the object is shared, then only read.
 */
#ifndef URG__SCHED_H
#define URG__SCHED_H

#include "arch/arch.h"
#include "internal.h"
#include "lockrank.h"
#include "preempt_iface.h"
#include "probes.h"

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

struct urg__g;
struct urg__m;
struct urg__p;
struct urg__stack;
typedef struct urg__g g_t;
typedef struct urg__m m_t;
typedef struct urg__p p_t;

/* ---- G ------------------------------------------------------------------ */

enum urg__gstatus {
    G_IDLE = 0,     /* descriptor only: created, never run, owns no stack */
    G_RUNNABLE = 1, /* in a run queue */
    G_RUNNING = 2,  /* on an M */
    G_SYSCALL = 3,  /* inside urg_syscall_enter/exit, holds no P */
    G_WAITING = 4,  /* parked (channel, lock, timer, I/O) */
    G_DEAD = 6,     /* exited; descriptor in a free list */
    /* No 5: the values are Go's _G* values (Go's 5, _Gmoribund_unused, is
     * gone), so a dump reads the same as Go's, and tools/gdb/urgent-gdb.py
     * decodes them by number: keep the two in step. */
};

enum urg__waitreason {
    WAIT_NONE = 0,
    WAIT_YIELD,
    WAIT_PREEMPTED,
    WAIT_SLEEP,
    WAIT_CHAN_SEND,
    WAIT_CHAN_RECV,
    WAIT_SELECT,
    WAIT_SELECT_FOREVER,
    WAIT_MUTEX,
    WAIT_WG,
    WAIT_IO,
    WAIT_STW,
    WAIT_SYSCALL_EXIT,
    WAIT__COUNT
};
URG__HIDDEN const char *urg__waitreason_str(int r);

enum {
    G_FLAG_MAIN = 1u << 0,     /* the task running main_fn */
    G_FLAG_EXTERNAL = 1u << 1, /* a thread the runtime does not manage (parks on a futex) */
    G_FLAG_STARTED = 1u << 2,  /* has run: sp/st are valid, fn/arg are gone */
    G_FLAG_DETACHED = 1u << 3, /* G_SYSCALL because the runtime took its P while
                                   it ran native code (detach.c), not by
                                   urg_syscall_enter */
};

/*
 * A task descriptor is one cache line. A task spawned but never run needs
 * only its entry point, identity and queue link; everything a running or
 * waiting task needs besides lives in the block at the top of its stack
 * (struct urg__stack below), whose cache lines are hot while the task
 * runs. So a million queued tasks cost 64 MB, and spawning walks one line
 * per task. fn/arg and sp/st share storage: fn and arg travel to the task
 * in its first frame (arch.h), after which the slot holds the saved stack
 * pointer and the stack block.
 */
struct urg__g {
    union {
        struct {
            urg_fn fn; /* entry, until the first run; written at spawn */
            void *arg; /* likewise */
        };
        struct {
            void *sp;              /* saved SP while not running; owner (the switch) */
            struct urg__stack *st; /* the stack and its task state; owner */
        };
    };
    struct urg__m *m;         /* M running it; set by that M before every switch
                                  into it; others read racily */
    struct urg__g *schedlink; /* run queue / free list link: whoever holds the
                                  list (sched.lock for the global queue) */
    uint64_t id;              /* task id, > 0; written once at spawn */
    uint32_t status;          /* enum urg__gstatus, atomic */
    uint16_t flags;           /* G_FLAG_*, owner */
    uint8_t preempt;          /* atomic: preemption requested (sysmon, STW) */
    uint8_t waitreason;       /* enum urg__waitreason; owner writes, any reads (atomic) */
    int32_t preempt_off;      /* urg_preempt_disable depth; owner (read by the
                                  SIGURG handler on the same thread) */
    /* The task's one timer is named by (g, timer_seq) in heap entries;
     * cancelling bumps the seq, so a stale entry is ignored when it fires.
     * Kept here because descriptors are type-stable and stacks are not. */
    uint32_t timer_seq;       /* atomic */
    uint32_t selectdone;      /* atomic: a select wait was completed by someone */
    uint8_t in_async_preempt; /* owner: inside the injected trampoline */
    uint8_t canary_stack;     /* owner: stack has no guard page, only a canary */
    uint16_t lastp;           /* sched.lock: 1 + id of the P its last slice
                                  ran on when it was preempted (0: none), and
                                  G_LASTP_PASSED (runq.c, urg__globrunqget) */
};
#define G_LASTP_PASSED 0x8000u

/* urg__preempt_pending: someone asked gp to give up its P (sysmon past
 * the quantum, a stop-the-world) and gp has not disabled preemption, so a
 * safe point may honour the request now with urg__gopreempt (Go's
 * canPreemptM, for a voluntary check). Context: gp's own thread: a task
 * at a runtime call, or the -finstrument-functions hook (preempt.c); it
 * reads only gp's flags. Signal-safe. */
static inline bool urg__preempt_pending(const g_t *gp)
{
    return unlikely(ld_relaxed(&gp->preempt)) && gp->preempt_off == 0;
}

/*
 * The block at the top of every task stack (64-byte aligned, below the
 * stack's highest address): the pool's bookkeeping for the stack, and the
 * state of the task using it that a queued task does not need. g0 and the
 * stand-in g of an external thread have one too, outside any stack.
 */
struct urg__stack {
    struct urg__g *owner; /* task using it (guard-hit reports); set by the M
                              that hands the stack to a task */
    char *lo, *hi;        /* usable range [lo, hi); written once (stack.c) */
    void *param;          /* waker -> wakee: which waiter completed; atomic */
    /* While parked on a user-owned object (channel, mutex, wait group):
     * how to unlink the task's wait records from it if the run ends
     * first, so the object stays usable after urg_run returns. Owner. */
    void (*abandon)(struct urg__g *gp, void *arg);
    void *abandon_arg;
    /* For dumps and debuggers (dump.c, tools/gdb/urgent-gdb.py): the entry
     * point, copied from g.fn on the first run (fn's storage is reused for
     * sp), and when the task last parked, by the coarse monotonic clock
     * (urg__nanotime_coarse), 0 if it never has. Owner writes, any reads. */
    urg_fn start_fn;
    uint64_t waitsince;
    /* The task's timer (timer.c): owner, or the M whose fire of the timer
     * won gp->timer_seq; timer_p is also moved with the world stopped. */
    uint64_t timer_when;    /* deadline of the armed timer, 0 if none */
    uint32_t timer_armed;   /* gp->timer_seq when it was armed */
    struct urg__p *timer_p; /* the P whose heap holds it (zombie count) */
    int32_t ext_futex;      /* external threads: 0 parked, 1 woken; atomic (futex) */
    uint32_t valgrind_id;   /* written once when the stack is made */
    uint8_t mode;           /* guard mechanism (stack.c); written once when the stack is made */
#ifdef URG__ASAN
    void *asan_fake_stack;
#endif
    /* URG_DEBUG=chaos: the M that preempted the task asynchronously, and
     * when; cleared when it runs again (chaos.c). Owner, or sched.lock
     * while the task waits in the global queue. */
    struct urg__m *chaos_m;
    uint64_t chaos_since;
    /* Locks of the threads library the task holds (interpose.c):
     * while non-zero the SIGURG handler does not preempt it. Owner. */
    int32_t ulocks;
#ifdef URG__TSAN
    void *tsan_fiber;   /* one per stack, for the life of the run */
    uint8_t tsan_stale; /* the fiber holds a dead task's two frames */
#endif
} URG__ALIGNED_CL;

/* ---- P ------------------------------------------------------------------ */

enum urg__pstatus {
    P_IDLE = 0,
    P_RUNNING = 1,
    P_SYSCALL = 2, /* its M is in a syscall; sysmon may retake it */
    P_STOP = 3,    /* stopped by stop-the-world */
    P_DEAD = 4,    /* beyond maxprocs */
    /* Handed to an M (its nextp) that has not started on it yet: a woken
     * thread can take tens of microseconds to run, so a stop-the-world
     * claims such a P itself instead of waiting (stw.c). sched.lock. */
    P_HANDOFF = 5,
};

#define URG__RUNQ_SIZE       256
#define URG__COST_BUCKETS    256
#define URG__COST_STEP_NS    250
#define URG__GFREE_MAX       64
#define URG__STACK_CACHE_MAX 32

/* What an armed timer wakes: the firing side must not read the task's
 * current state, which may already belong to a later wait. */
enum urg__timer_kind { TIMER_SLEEP = 1, TIMER_SELECT = 2 };

struct urg__timer_ent {
    uint64_t when;
    struct urg__g *gp;
    uint32_t seq;  /* gp->timer_seq when armed */
    uint32_t kind; /* enum urg__timer_kind */
};

/* gp->timer_seq while a timer is firing: the armed value with this bit
 * set. Cancelling waits for it to clear. */
#define URG__TIMER_FIRING 0x80000000u
/* The sequence after s: 31 bits, so that it never looks like FIRING. */
#define URG__TIMER_SEQ_NEXT(s) (((s) + 1u) & ~URG__TIMER_FIRING)

struct urg__sysmontick {
    uint32_t schedtick;
    uint32_t syscalltick;
    uint64_t schedwhen; /* estimated start of the current slice */
    uint64_t syscallwhen;
    uint64_t sampled;    /* when sysmon last looked at this P */
    uint64_t asked;      /* when it last asked the P's task to yield, 0 if it
                         has not in the current slice */
    uint64_t chaos_next; /* URG_DEBUG=chaos: its next random preemption */
};

struct urg__p {
    int32_t id;                        /* written once (p_new) */
    uint32_t status;                   /* enum urg__pstatus, atomic */
    struct urg__p *link;               /* idle list, sched.lock */
    struct urg__m *m;                  /* back-link, atomic (sysmon reads) */
    uint32_t schedtick;                /* owner writes, sysmon reads: +1 per schedule */
    uint32_t syscalltick;              /* owner writes, sysmon reads: +1 per syscall */
    uint32_t detached;                 /* atomic: P_SYSCALL because its task was
                                          detached (detach.c), not bracketed */
    uint32_t deferred;                 /* atomic: the SIGURG handler deferred a request
                                          of sysmon's (retry soon); sysmon clears it */
    struct urg__sysmontick sysmontick; /* sysmon only */

    /* Local run queue: single producer (owner), many consumers (owner and
     * thieves). head/tail are free-running; t-h is the length. */
    URG__ALIGNED_CL uint32_t runqhead; /* atomic */
    URG__ALIGNED_CL uint32_t runqtail; /* atomic, written by owner only */
    struct urg__g *runq[URG__RUNQ_SIZE];
    struct urg__g *runnext; /* atomic: owner sets, thieves may CAS to NULL */

    /* Caches, owner only. */
    URG__ALIGNED_CL int32_t ngfree;
    int32_t nstack;
    struct urg__stack *stackcache[URG__STACK_CACHE_MAX];
    uint64_t goidcache, goidcacheend;
    struct urg__g *gfree[URG__GFREE_MAX]; /* a stack: [ngfree-1] is the newest */

    /* Timers: a 4-ary min-heap by `when`, under timerlock (the owner adds;
     * thieves and sysmon may run due timers). timer0 is the earliest, or 0. */
    URG__ALIGNED_CL urg__lock_t timerlock;
    uint64_t timer0; /* atomic */
    struct urg__timer_ent *timers;
    uint32_t ntimers, captimers;
    uint32_t nzombies; /* atomic: cancelled entries still in the heap */

    /* Counters: owner writes (relaxed), anyone reads. */
    URG__ALIGNED_CL uint64_t n_created, n_exited, n_switches, n_steals, n_preempt_coop;

    /* URG_DEBUG=chaos (chaos.c), owner only. */
    uint64_t chaos_rng;
    uint32_t chaos_seeded;
};

/* ---- M ------------------------------------------------------------------ */

struct urg__m {
    struct urg__g g0;         /* scheduler context on the thread's own stack; owner */
    struct urg__stack g0x;    /* g0's block: the thread stack's bounds; written
                                  once at thread start */
    struct urg__g *curg;      /* task running now, or NULL; owner writes,
                                  the SIGURG handler and sysmon read */
    struct urg__p *p;         /* attached P, owner */
    struct urg__p *nextp;     /* P handed over by startm (P_HANDOFF); sched.lock */
    struct urg__p *oldp;      /* P held before a syscall, owner */
    int64_t id;               /* written once, under sched.lock (allocm) */
    pid_t tid;                /* for tgkill; written once at thread start */
    pthread_t thread;         /* written once, by the creator */
    bool spinning;            /* owner; nmspinning counts them */
    bool honoured;            /* owner: its task just honoured a request at a
                                 runtime call, whose signal may be on its way
                                 (prepare_run, urg__sig_drain) */
    bool started;             /* its thread has run (took nextp or none); sched.lock */
    bool idle_listed;         /* on sched.midle; sched.lock */
    uint32_t orphan;          /* atomic: abandoned by a finished urg_run */
    uint32_t exited;          /* atomic: the thread returned from mstart */
    int32_t locks;            /* runtime locks held; owner (handler reads) */
    uint32_t syscalltick;     /* owner */
    urg__note park;           /* parked here when idle; atomic (note) */
    struct urg__m *schedlink; /* idle list, sched.lock */
    struct urg__m *alllink;   /* allm, sched.lock */
    uint64_t rand;            /* fastrand state, owner */

    /* Work to run right after the next switch lands, on whatever stack
     * resumes (g0 after a park, or the next task after a direct switch).
     * Go's mcall(fn) and gopark's unlockf, in one mechanism. Owner. */
    void (*after_fn)(struct urg__m *mp, struct urg__g *gp, void *arg);
    struct urg__g *after_g;
    void *after_arg;

    /* The signal layer's state for this thread (preempt_iface.h): SIGURG
     * in flight, errno's address, alternate stack, unwinder, walk memo. */
    struct urg__sigthread sig;

    /* Detaching (detach.c): the P leaves a thread that runs native code
     * it cannot be preempted in, or that blocked (the request itself is
     * sig.detach_req). */
    uint32_t defer_n;    /* handler: deferred requests in a row this slice */
    uint32_t defer_tick; /* handler: the P's schedtick they were counted in */
    uint64_t cpu_seen;   /* sysmon: the thread's CPU time at its last look */
    uint32_t cpu_tick;   /* sysmon: the P's schedtick at that look */
};

/* ---- the scheduler ------------------------------------------------------ */

struct urg__sched {
    urg__lock_t lock; /* rank SCHED (lockrank.h) */

    /* Global run queue, sched.lock; runqsize also read atomically. */
    struct urg__g *runqhead, *runqtail;
    uint64_t runqsize;

    struct urg__m *midle; /* idle Ms, sched.lock */
    int32_t nmidle;       /* sched.lock (atomic reads) */
    int32_t mcount;       /* Ms created this run, sched.lock */
    int32_t mlive;        /* Ms whose thread has not returned, atomic */
    struct urg__m *allm;  /* sched.lock */

    struct urg__p *pidle;  /* idle Ps, sched.lock */
    int32_t npidle;        /* atomic */
    int32_t nmspinning;    /* atomic */
    uint32_t needspinning; /* atomic */
    int32_t nmsyscall;     /* tasks inside urg_syscall_enter, atomic */

    int32_t gomaxprocs; /* atomic */
    /* Written by procresize with the world stopped, under sched.lock; Ps
     * are kept for the run, so any thread may read allp[i] for i below
     * gomaxprocs without a lock. The steal order is read without a lock by
     * Ms holding a P, which none does while the world is stopped. */
    struct urg__p *allp[URG_MAXPROCS_MAX];
    uint32_t stealorder_coprimes[URG_MAXPROCS_MAX];
    uint32_t nstealorder;

    /* Stop-the-world. */
    uint32_t stw_waiting; /* atomic */
    int32_t stopwait;     /* sched.lock */
    urg__note stopnote;   /* atomic (note): the last P to stop wakes the stopper */
    urg_mutex stw;        /* serialises STW; parks tasks; rank STW (lockrank.h) */

    /* Lifecycle. */
    uint32_t running;       /* atomic: urg_run in progress */
    uint32_t exiting;       /* atomic: main task returned; Ms wind down */
    uint32_t main_done;     /* atomic */
    uint32_t external_seen; /* atomic: a non-task thread touched the runtime */
    uint64_t goidgen;       /* atomic: task id allocator */
    uint64_t starttime;     /* written once by urg_run, before any M starts */

    /* Configuration of this run: written by urg_run before any M starts
     * (chaos_moved/stayed: atomic counters). */
    uint64_t quantum_ns;
    size_t stack_size;
    int32_t schedtrace_ms;
    int32_t scheddetail;
    uint32_t chaos; /* URG_DEBUG=chaos=SEED is on (chaos.c) */
    uint64_t chaos_seed;
    uint64_t wakegran_ns;               /* wake-up preemption's minimum slice; 0: off */
    uint64_t chaos_moved, chaos_stayed; /* atomic */

    /* Netpoller. */
    uint64_t lastpoll;   /* atomic: 0 while an M blocks in netpoll */
    uint64_t polluntil;  /* atomic: when that M's poll times out */
    uint32_t pollingnet; /* atomic: an M is doing a non-blocking poll */

    /* sysmon. */
    urg__note sysmonnote;  /* atomic (note) */
    uint32_t sysmonwait;   /* atomic: sysmon sleeps on sysmonnote */
    uint64_t sysmon_until; /* atomic: when sysmon's current sleep ends (ns) */

    /* Global counters (atomic). */
    uint64_t preempt_requests, preempt_signals, preempt_async, preempt_deferred;
    uint64_t detaches, detach_blocked;        /* detach.c: Ps taken from native code */
    uint64_t preempt_walks_memo;              /* safe-point checks answered by the walk memo */
    uint64_t preempt_cost[URG__COST_BUCKETS]; /* atomic: 250 ns buckets */
    uint64_t preempt_cost_sum;                /* atomic: ns, all buckets' costs */
    uint64_t syscall_handoffs;                /* atomic */
    uint64_t preempt_wakeup;                  /* atomic: sysmon's wake-up preemptions */
    uint64_t exited_p_created, exited_p_exited, exited_p_switches, exited_p_steals,
        exited_p_coop; /* atomic: counters of Ps removed by a resize */
};

URG__HIDDEN extern struct urg__sched urg__sched;
#define sched urg__sched

/* The current M, or NULL on threads the runtime does not manage.
 * initial-exec: safe to read in a signal handler, no lazy TLS allocation.
 * Never read it after a switch in the same C function: the task may have
 * moved to another thread; use gp->m instead. */
URG__HIDDEN extern __thread struct urg__m *urg__tls_m __attribute__((tls_model("initial-exec")));

/* ---- proc.c ------------------------------------------------------------- */

URG__HIDDEN void urg__mstart(m_t *mp);           /* Context: g0. Returns when the run ends. */
URG__HIDDEN void urg__ready(g_t *gp, bool next); /* Context: any but signal. */
URG__HIDDEN void urg__ready_list(g_t *head);     /* inject a schedlink list */
/* Threads outside the runtime take this guard before touching a task
 * (its wait record on its stack, its run-queue state); false means the
 * run is ending and the task is being abandoned: leave it alone. */
URG__HIDDEN bool urg__ext_enter(void);
URG__HIDDEN void urg__ext_exit(void);
/* urg__waker_enter: true if the caller may wake gp now (always, for
 * runtime threads and for external waiters); pairs with waker_exit. */
URG__HIDDEN bool urg__waker_enter(g_t *gp, bool *guarded);
URG__HIDDEN void urg__waker_exit(bool guarded);
/* Park gp (the calling task, or the calling external thread's g): run
 * unlockf(mp, gp, arg) once gp is switched out (mp NULL for an external
 * thread); if unlockf returns false gp does not sleep. Returns after
 * someone calls urg__ready(gp). Context: task or external thread. */
URG__HIDDEN void urg__park_g(g_t *gp, bool (*unlockf)(m_t *, g_t *, void *), void *arg, int reason);
URG__HIDDEN void urg__gosched(g_t *gp, bool global); /* yield; Context: task */
URG__HIDDEN void urg__gopreempt(g_t *gp);            /* honour a preemption request */
URG__HIDDEN URG__NORETURN void urg__goexit(g_t *gp);
URG__HIDDEN void urg__wakep(void);
URG__HIDDEN void urg__startm(p_t *pp, bool spinning);
URG__HIDDEN void urg__drop_spinning(m_t *mp);
URG__HIDDEN void urg__set_nextp(m_t *mp, p_t *pp); /* Locks: sched.lock held */
URG__HIDDEN void urg__take_nextp(m_t *mp);         /* Locks: takes sched.lock */
URG__HIDDEN bool urg__take_nextp_locked(m_t *mp);  /* Locks: sched.lock held */
URG__HIDDEN void urg__handoffp(p_t *pp);
URG__HIDDEN void urg__acquirep(m_t *mp, p_t *pp);
URG__HIDDEN p_t *urg__releasep(m_t *mp);
URG__HIDDEN void urg__switch(g_t *from, g_t *to); /* see proc.c */
/* proc.c: run fn on g0 for a task back from a syscall (syscall.c). */
URG__HIDDEN void urg__mcall_exitsyscall(g_t *gp, void (*fn)(m_t *, g_t *, void *));
URG__HIDDEN void urg__preempt_cost_record(m_t *mp);                   /* stats.c */
URG__HIDDEN void urg__stats_snapshot(urg_stats *out, uint64_t *hist); /* stats.c */
URG__HIDDEN void urg__syscall_close_open(g_t *gp, const char *what);  /* syscall.c */
URG__HIDDEN void urg__reattach(g_t *gp);                              /* syscall.c */
/* detach.c */
URG__HIDDEN bool urg__detach_signal(m_t *mp);
URG__HIDDEN void urg__detach_check_blocked(p_t *pp, uint64_t now);
/* The handler's part (Signal-safe; the task's thread). `deferred`: a
 * preemption request was just deferred. */
URG__HIDDEN bool urg__detach_try(m_t *mp, g_t *gp, p_t *pp, void *uctx, bool deferred);
/* A task inside a syscall bracket holds no P: scheduling calls close it. */
#define URG__CLOSE_OPEN_SYSCALL(gp, what)                                                          \
    do {                                                                                           \
        if (unlikely((gp)->status == G_SYSCALL))                                                   \
            urg__syscall_close_open((gp), (what));                                                 \
    } while (0)
URG__HIDDEN URG__NORETURN void urg__orphan_exit(m_t *mp);
URG__HIDDEN void urg__checkdead_locked(void); /* Locks: sched.lock */

/* runq.c */
URG__HIDDEN void urg__runqput(p_t *pp, g_t *gp, bool next);
URG__HIDDEN g_t *urg__runqget(p_t *pp, bool *inherit);
URG__HIDDEN g_t *urg__runqsteal(p_t *pp, p_t *p2, bool steal_runnext);
URG__HIDDEN bool urg__runqempty(p_t *pp);
URG__HIDDEN uint32_t urg__runqlen(p_t *pp);
URG__HIDDEN int urg__runqdrain(p_t *pp, g_t **out, int max);
URG__HIDDEN void urg__globrunqput(g_t *gp);                              /* Locks: sched.lock */
URG__HIDDEN void urg__globrunqputbatch(g_t *head, g_t *tail, int32_t n); /* Locks: sched.lock */
URG__HIDDEN g_t *urg__globrunqget(p_t *pp, int32_t max);                 /* Locks: sched.lock */
URG__HIDDEN void urg__pidle_push(p_t *pp);                               /* Locks: sched.lock */
URG__HIDDEN p_t *urg__pidleget(void);                                    /* Locks: sched.lock */
URG__HIDDEN void urg__pidleremove(p_t *pp);                              /* Locks: sched.lock */
URG__HIDDEN void urg__mput(m_t *mp);                                     /* Locks: sched.lock */
URG__HIDDEN m_t *urg__mget(void);                                        /* Locks: sched.lock */

/* task.c */
URG__HIDDEN g_t *urg__newproc(urg_fn fn, void *arg, uint32_t flags, p_t *pp, int *err);
URG__HIDDEN void urg__gfree(p_t *pp, g_t *gp);
URG__HIDDEN void urg__gfree_all(void); /* teardown */
URG__HIDDEN void urg__gfree_flush(p_t *pp);
/* Grow an mmap'd array of pointers to hold at least `need` (doubling).
 * Returns false, leaving it as it was, if memory runs out. */
URG__HIDDEN bool urg__ptrs_reserve(void ***arr, size_t *cap, size_t need);
URG__HIDDEN void urg__ptrs_release(void ***arr, size_t *cap);
URG__HIDDEN void urg__gslab_foreach(void (*fn)(g_t *gp, void *arg), void *arg);
URG__HIDDEN void urg__task_begin(g_t *gp);
URG__HIDDEN g_t *urg__getg_ext(void); /* the calling thread's external g */
/* The current task's g and M, or NULL outside a task. Honours orphaning. */
URG__HIDDEN g_t *urg__curg(void);

/* thread.c */
URG__HIDDEN m_t *urg__newm(p_t *pp, bool spinning, int *err);
/* The signal mask every M starts from: the urg_run caller's. */
URG__HIDDEN void urg__thread_set_base_mask(const sigset_t *mask);
URG__HIDDEN void urg__stopm(m_t *mp);
URG__HIDDEN void urg__m_signal_init(m_t *mp);

/* stack.c */
URG__HIDDEN int urg__stack_alloc(p_t *pp, g_t *gp);
URG__HIDDEN void urg__stack_free(p_t *pp, g_t *gp);
URG__HIDDEN void urg__stack_flush_cache(p_t *pp);
URG__HIDDEN void urg__stack_teardown(void);
URG__HIDDEN int urg__stack_init(size_t stack_size);
URG__HIDDEN extern int urg__stackguard_force; /* URG_DEBUG=stackguard=MODE */
/* If addr lies in a guard page of a task stack, returns that stack's task
 * id owner (via *gp_out) and true. Signal-safe. */
URG__HIDDEN bool urg__stack_guard_hit(uintptr_t addr, g_t **gp_out);
URG__HIDDEN bool urg__stack_block_valid(const struct urg__stack *st);
URG__HIDDEN void urg__stack_check_canary(g_t *gp);
/* Give back the pages of pooled stacks that grew deep. Context: sysmon. */
URG__HIDDEN void urg__stack_trim_pool(void);

/* timer.c */
URG__HIDDEN void urg__timer_add(p_t *pp, g_t *gp, uint64_t when, enum urg__timer_kind kind);
URG__HIDDEN void urg__timer_cancel(g_t *gp);
URG__HIDDEN uint64_t urg__timers_check(p_t *pp, uint64_t now, bool *ran);
URG__HIDDEN uint64_t urg__timers_earliest(void);
URG__HIDDEN void urg__timers_move(p_t *from, p_t *to);
URG__HIDDEN void urg__timers_free(p_t *pp);

/* netpoll.c */
URG__HIDDEN int urg__netpoll_init(void);
URG__HIDDEN void urg__netpoll_close(void);
URG__HIDDEN g_t *urg__netpoll(int64_t delay_ns, int32_t *n);
URG__HIDDEN void urg__netpoll_break(void);
URG__HIDDEN bool urg__netpoll_waiters(void);

/* stw.c */
URG__HIDDEN bool urg__stop_the_world(void);
URG__HIDDEN void urg__p_drain_to_idle_locked(p_t *pp); /* Locks: sched.lock */
URG__HIDDEN void urg__p_stop_or_idle_locked(p_t *pp);  /* Locks: sched.lock */
URG__HIDDEN int urg__start_the_world(int32_t newprocs);
URG__HIDDEN void urg__stw_stopm(m_t *mp);
URG__HIDDEN void urg__preemptall(void);
URG__HIDDEN bool urg__preemptone(p_t *pp);

/* maxprocs.c */
URG__HIDDEN int urg__procresize(int32_t nprocs, p_t **runnable_out); /* world stopped */

/* sysmon.c */
URG__HIDDEN void urg__sysmon(void);
URG__HIDDEN void urg__sysmon_wake(void);
URG__HIDDEN int urg__sysmon_retake(uint64_t now, uint64_t *next_expiry, bool *any_running);

/* stats.c / dump.c */
URG__HIDDEN void urg__schedtrace(bool detailed);
URG__HIDDEN void urg__print_backtrace_ctx(void *ucontext, uintptr_t stack_lo, uintptr_t stack_hi);
URG__HIDDEN void urg__dump_tasks_brief(void);
URG__HIDDEN void urg__print_backtrace_here(uintptr_t stack_lo, uintptr_t stack_hi);

/* env.c, maxprocs.c */
struct urg__env {
    int maxprocs;        /* 0 unset */
    uint64_t quantum_ns; /* 0 unset */
    size_t stack_size;   /* 0 unset */
    int schedtrace_ms;
    int scheddetail;
    uint64_t chaos_seed;    /* 0: off */
    int64_t wakepreempt_us; /* -1: unset (the build's default) */
    char trace_path[256];   /* URG_DEBUG=trace=PATH; "": off */
};
URG__HIDDEN void urg__env_parse(struct urg__env *env);

/* chaos.c: URG_DEBUG=chaos=SEED */
#define URG__CHAOS_AVOID_NS 1000000ull /* how long a preempted task's M passes it over */
URG__HIDDEN uint64_t urg__chaos_rand(struct urg__p *pp);
URG__HIDDEN void urg__chaos_start(void);
URG__HIDDEN void urg__chaos_end(void);
URG__HIDDEN uint64_t urg__chaos_preempt(uint64_t now);
URG__HIDDEN void urg__chaos_shuffle(struct urg__p *pp);
URG__HIDDEN int urg__default_maxprocs(void);

/* run.c: is a run in progress (for fork.c)? */
URG__HIDDEN bool urg__run_held(void);
/* fork.c: register the pthread_atfork handlers, once. Any thread. */
URG__HIDDEN void urg__fork_init(void);

/* interpose.c: resolve the C library's lock functions (urg_run). */
URG__HIDDEN void urg__interpose_init(void);
URG__HIDDEN void urg__sigmask_unblock_urg(void); /* a task left SIGURG blocked here */

/* preempt.c */
URG__HIDDEN extern int urg__asyncpreemptoff;            /* URG_DEBUG=asyncpreemptoff=1 */
URG__HIDDEN bool urg__preempt_signal(m_t *mp, g_t *gp); /* Context: sysmon */

#endif /* URG__SCHED_H */
