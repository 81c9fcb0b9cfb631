/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * sysmon.c — the monitor: a thread that holds no P and watches the others
 * (Go's sysmon, proc.go). In urgent it is the thread that called urg_run,
 * which has nothing else to do until the main task returns.
 *
 * Each tick it:
 *   1. retakes Ps from tasks in long syscalls (more than one tick, and
 *      there is other work or it has been 10 ms) and hands them off;
 *   2. finds Ps that have run the same task longer than the quantum and
 *      requests preemption: the task's preempt flag (seen at runtime calls
 *      and checkpoints) and, in the async build, a SIGURG to its thread —
 *      at most one in flight per thread; while the request stands it is
 *      repeated on later ticks;
 *   3. polls the network if nobody has for 10 ms;
 *   4. prints the schedtrace line when URG_DEBUG=schedtrace=MS asks;
 *   5. notices newly loaded modules (async build: the safe-point check
 *      needs their address ranges);
 *   6. every 100 ms, gives back the pages of pooled stacks that grew deep
 *      (stack.c), so that no task pays for it;
 *   7. under URG_DEBUG=chaos, preempts running tasks at random every 20
 *      to 200 us (chaos.c);
 *   8. asks a thread that looks blocked in the kernel, while work waits
 *      for its P, to let the P go (runtime/detach.c), and takes the P of a
 *      detached task at once.
 *
 * How long a slice really lasts: a P bumps schedtick each time it starts a
 * new task; when sysmon first sees a new value, the slice began somewhere
 * since its previous look at that P. If sysmon asked that P's task to
 * yield since, the slice began when the task did, which for an async
 * preemption is microseconds after the request: sysmon takes the request's
 * time as the start (schedwhen). Otherwise (the task yielded, blocked or
 * ended by itself) it takes the middle of the interval. Then it requests
 * preemption once schedwhen + quantum has passed. Reading the clock at
 * every schedule would pin the slice start exactly but cost a clock read
 * on every yield; sampling costs nothing there. sysmon does not poll: it
 * sleeps until the earliest moment a look can matter (a slice's end; a
 * quantum after a request, when the slice an honoured request started
 * ends; quantum/8 after one the handler reports deferred; one short tick
 * after it first sees a P in a syscall), bounded by the back-off below. A
 * slice begun unasked is placed in the middle of the interval since the
 * previous look, at most quantum/2 back.
 * When no P has anything to do it backs off as Go's does (20 us, doubling
 * after 50 quiet ticks, up to 10 ms), and with every P idle it sleeps
 * until something wakes it (a P starting to run, a syscall, main
 * returning), checking modules every second.
 */

#include "sched.h"
#include "signals/signals.h"
#include "unwind/unwind.h"
#include "trace.h"

#include <signal.h>
#include <sys/prctl.h>

#define SYSMON_MIN_NS      20000ull
#define SYSMON_MAX_NS      10000000ull
#define SYSMON_DEEP_NS     1000000000ull
#define SYSCALL_RETAKE_NS  10000000ull
#define NETPOLL_STALE_NS   10000000ull
#define TRIM_PERIOD_NS     100000000ull
#define MODCHECK_PERIOD_NS 100000000ull /* dlopen and dlclose noticed within */

/* urg__sysmon_wake: Signal-safe. */
void urg__sysmon_wake(void) { urg__note_wakeup(&sched.sysmonnote); }

/* earlier: lower *next to t (0 in *next: none yet). */
static inline void earlier(uint64_t *next, uint64_t t)
{
    if (!*next || t < *next)
        *next = t;
}

/* slice_end: when the task running on pp (status s) is to be asked to
 * yield: a quantum after its slice began; or, with wake-up preemption
 * (sched.wakegran_ns, as CFS's wakeup granularity), as soon as it has run
 * that long while a woken task waits for this P (in runnext, or in a
 * timer that is due) and no P is idle and no M spins to take it. A timer
 * still to come counts from when it is due, so that sysmon wakes then.
 * Context: sysmon. Lock-free reads only. */
static uint64_t slice_end(p_t *pp, const struct urg__sysmontick *pd, uint32_t s, uint64_t quantum,
                          uint64_t now)
{
    uint64_t end = pd->schedwhen + quantum;
    uint64_t gran = sched.wakegran_ns;
    if (!gran || gran >= quantum || s != P_RUNNING || ld_relaxed(&sched.npidle) > 0 ||
        ld_relaxed(&sched.nmspinning) > 0)
        return end;
    uint64_t woken = ld_relaxed(&pp->runnext) ? now : ld_acquire(&pp->timer0);
    if (!woken)
        return end;
    uint64_t at = pd->schedwhen + gran;
    if (woken > at)
        at = woken;
    return at < end ? at : end;
}

/* slice_check: step 2 for a P running a task or in a syscall: note a new
 * slice, or ask the task to yield once its slice has ended. Returns when
 * this P next needs a look; *asked_now is set when the slice had ended (a P
 * in a syscall then gets no grace look before it is retaken). Context: sysmon. */
static inline uint64_t slice_check(p_t *pp, struct urg__sysmontick *pd, uint32_t s,
                                   uint64_t quantum, uint64_t now, uint64_t since, bool *asked_now)
{
    uint32_t t = ld_relaxed(&pp->schedtick);
    uint64_t end; /* when its task is to be asked to yield */
    if (pd->schedtick != t) {
        pd->schedtick = t;
        if (pd->asked) {
            pd->schedwhen = pd->asked; /* the yield we asked for */
        } else {
            /* Somewhere since the last look: take the middle. */
            uint64_t half = since / 2, cap = quantum / 2;
            pd->schedwhen = now - (half < cap ? half : cap);
        }
        pd->asked = 0;
        st_relaxed(&pp->deferred, 0u);
        return slice_end(pp, pd, s, quantum, now);
    }
    if ((end = slice_end(pp, pd, s, quantum, now)) <= now) {
        /* Expired. Ask, and look again in a quantum: by then an
         * honoured request has started a slice that ends then.
         * A request the handler deferred (not at a safe point)
         * is retried sooner; the handler says so (deferred). */
        uint64_t retry = ld_relaxed(&pp->deferred) ? quantum / 8 : quantum;
        *asked_now = true;
        if (pd->asked && now < pd->asked + retry)
            return pd->asked + retry;
        if (urg__preemptone(pp)) {
            if (!pd->asked && end < pd->schedwhen + quantum)
                fetch_add(&sched.preempt_wakeup, 1);
            pd->asked = now; /* refreshed by every retry */
        }
        return now + retry;
    }
    if (s == P_RUNNING) {
        /* The same task since the last look: blocked in the
         * kernel while work waits? (runtime/detach.c) */
        urg__detach_check_blocked(pp, since);
    }
    return end;
}

/* syscall_retake: step 1 for a P in a syscall: hand it off if it has been
 * there more than one look (or must go at once) and there is other work
 * or it has been long. asked_now: slice_check asked its task to yield on this
 * look. Returns whether it took the P. Context: sysmon. */
static inline bool syscall_retake(p_t *pp, struct urg__sysmontick *pd, uint64_t now, bool asked_now,
                                  uint64_t *next_expiry)
{
    uint32_t t = ld_relaxed(&pp->syscalltick);
    /* A detached task (runtime/detach.c) has been away from the
     * scheduler for a quantum, or its thread blocked: no grace
     * tick. Nor while a stop-the-world waits for the P. */
    bool now_please = ld_relaxed(&pp->detached) || ld_relaxed(&sched.stw_waiting);
    if (!asked_now && pd->syscalltick != t) {
        pd->syscalltick = t;
        pd->syscallwhen = now;
        if (!now_please) {
            /* Retaken at the next look if it is still there:
             * make that look soon (Go's one sysmon tick). */
            earlier(next_expiry, now + SYSMON_MIN_NS);
            return false;
        }
    }
    /* Leave it if there is no other work and it has not been long:
     * handing off costs a thread wakeup. */
    if (!ld_relaxed(&sched.stw_waiting) && urg__runqempty(pp) &&
        ld_relaxed(&sched.nmspinning) + ld_relaxed(&sched.npidle) > 0 &&
        pd->syscallwhen + SYSCALL_RETAKE_NS > now)
        return false;
    if (!cas(&pp->status, (uint32_t)P_SYSCALL, (uint32_t)P_IDLE))
        return false;
    st_relaxed(&pp->detached, 0u);
    st_relaxed(&pp->syscalltick, pp->syscalltick + 1);
    fetch_add(&sched.syscall_handoffs, 1);
    URG__PROBE(syscall_handoff, pp->id);
    urg__trace_instant(TR_EV_HANDOFF, pp->id, 0, 0);
    urg__handoffp(pp);
    return true;
}

/* urg__sysmon_retake: steps 1 and 2 for every P, as of `now`. Returns how
 * many Ps it took from syscalls; *next_expiry gets the earliest quantum
 * expiry still pending. Context: sysmon (and tests/test_sysmon.c, with
 * Ps of its own). */
int urg__sysmon_retake(uint64_t now, uint64_t *next_expiry, bool *any_running)
{
    int n = 0;
    /* Acquire: pairs with procresize, which sets up allp[i] first. */
    int32_t nprocs = ld_acquire(&sched.gomaxprocs);
    uint64_t quantum = sched.quantum_ns;
    for (int32_t i = 0; i < nprocs; i++) {
        p_t *pp = sched.allp[i];
        struct urg__sysmontick *pd = &pp->sysmontick;
        uint32_t s = ld_acquire(&pp->status);
        bool asked_now = false;
        uint64_t since = now - pd->sampled; /* the new slice began in there */
        pd->sampled = now;
        if (s == P_IDLE || s == P_HANDOFF) {
            /* Whatever runs next on it starts a slice no earlier than now. */
            pd->schedwhen = now;
            pd->asked = 0;
            continue;
        }
        if (s == P_RUNNING || s == P_SYSCALL) {
            *any_running = true;
            earlier(next_expiry, slice_check(pp, pd, s, quantum, now, since, &asked_now));
        }
        if (s == P_SYSCALL && syscall_retake(pp, pd, now, asked_now, next_expiry))
            n++;
    }
    return n;
}

static bool all_idle(void)
{
    /* seq_cst: read after sysmonwait is published (see acquirep). */
    return ld_seq_cst(&sched.npidle) == ld_relaxed(&sched.gomaxprocs) &&
           ld_seq_cst(&sched.nmsyscall) == 0 && !ld_relaxed(&sched.stw_waiting);
}

/* What sysmon carries from one tick to the next. */
struct sysmon_state {
    uint32_t idle;  /* looks in a row that retook nothing */
    uint64_t delay; /* the back-off */
    uint64_t lasttrace, lastmod, lasttrim;
    uint64_t next_expiry; /* the earliest moment a P needs a look (0: none) */
    bool any_running;     /* some P ran a task or was in a syscall */
};

/* sysmon_sleep_ns: how long to sleep before the next look. */
static uint64_t sysmon_sleep_ns(struct sysmon_state *st, uint64_t now)
{
    if (st->idle == 0)
        st->delay = SYSMON_MIN_NS;
    else if (st->idle > 50)
        st->delay *= 2;
    if (st->delay > SYSMON_MAX_NS)
        st->delay = SYSMON_MAX_NS;
    /* Sleep until the earliest moment something can be due (a slice
     * end, a retry, a syscall's retake), and no longer than the
     * back-off delay, which bounds how late sysmon notices a P that
     * entered a syscall (as Go's does). */
    uint64_t sleep = st->delay;
    uint64_t next = st->next_expiry;
    if (next)
        sleep = next > now ? (next - now < sleep ? next - now : sleep) : 0;
    if (sched.schedtrace_ms > 0) {
        uint64_t due = st->lasttrace + (uint64_t)sched.schedtrace_ms * 1000000u;
        uint64_t left = due > now ? due - now : 0;
        if (left < sleep)
            sleep = left;
    }
    if (sleep < SYSMON_MIN_NS && !next)
        sleep = SYSMON_MIN_NS;
    if (unlikely(sched.chaos) && st->any_running) {
        uint64_t c = urg__chaos_preempt(now);
        sleep = c > now ? (c - now < sleep ? c - now : sleep) : 0;
    }
    return sleep;
}

/* sysmon_sleep: sleep `sleep` ns, or, with every P idle, until woken. */
static void sysmon_sleep(struct sysmon_state *st, uint64_t now, uint64_t sleep)
{
    urg__note_clear(&sched.sysmonnote);
    if (ld_acquire(&sched.main_done))
        return;
    if (sched.schedtrace_ms <= 0 && all_idle()) {
        /* Deep sleep: nothing can need a preemption or a retake. */
        /* seq_cst: publish before re-reading the statuses; acquirep
         * publishes a status, fences, then reads sysmonwait. */
        st_seq_cst(&sched.sysmonwait, 1u);
        st_relaxed(&sched.sysmon_until, now + SYSMON_DEEP_NS);
        if (all_idle() && !ld_acquire(&sched.main_done))
            urg__note_tsleep(&sched.sysmonnote, (int64_t)SYSMON_DEEP_NS);
        st_release(&sched.sysmonwait, 0u);
        st->idle = 0;
    } else if (sleep > 0) {
        st_relaxed(&sched.sysmon_until, now + sleep);
        urg__note_tsleep(&sched.sysmonnote, (int64_t)sleep);
    }
}

/* sysmon_netpoll: step 3, poll the network if nobody has for a while. */
static void sysmon_netpoll(uint64_t now)
{
    uint64_t lp = ld_acquire(&sched.lastpoll);
    if (lp != 0 && lp + NETPOLL_STALE_NS < now && urg__netpoll_waiters() &&
        xchg(&sched.pollingnet, 1u) == 0) {
        int32_t cnt = 0;
        g_t *list = urg__netpoll(0, &cnt);
        st_release(&sched.pollingnet, 0u);
        if (list)
            urg__ready_list(list);
    }
}

/* sysmon_look: one look, as of `now`: steps 1 to 6 of the head comment
 * (7, chaos, is timed by sysmon_sleep_ns; 8, detach, is in
 * slice_check). */
static void sysmon_look(struct sysmon_state *st, uint64_t now)
{
    st->next_expiry = 0;
    st->any_running = false;
    if (urg__sysmon_retake(now, &st->next_expiry, &st->any_running) > 0)
        st->idle = 0;
    else
        st->idle++;
    sysmon_netpoll(now);
    if (sched.schedtrace_ms > 0 &&
        now - st->lasttrace >= (uint64_t)sched.schedtrace_ms * 1000000u) {
        st->lasttrace = now;
        urg__schedtrace(sched.scheddetail > 0);
    }
    urg__trace_sysmon();
    if (now - st->lasttrim >= TRIM_PERIOD_NS) {
        st->lasttrim = now;
        urg__stack_trim_pool();
    }
    if (now - st->lastmod >= MODCHECK_PERIOD_NS) {
        st->lastmod = now;
        if (urg__modules_changed())
            urg__modules_refresh();
    }
}

/* urg__sysmon: runs until the main task returns. Context: urg_run's
 * thread, holding no P. */
void urg__sysmon(void)
{
    /* sysmon has no use for SIGURG; blocking it here sends the program's
     * (process-directed) SIGURGs to other threads, so that a flood of them
     * cannot slow the thread that asks for preemptions. */
    sigset_t urg, old_mask;
    sigemptyset(&urg);
    sigaddset(&urg, SIGURG);
    pthread_sigmask(SIG_BLOCK, &urg, &old_mask);
    int old_slack = prctl(PR_GET_TIMERSLACK);
    /* Wake on time: the default 50 us of slack would stretch short quanta. */
    prctl(PR_SET_TIMERSLACK, 1UL);
    struct sysmon_state st = {.delay = SYSMON_MIN_NS, .any_running = true};
    st.lasttrace = st.lastmod = st.lasttrim = urg__nanotime();
    while (!ld_acquire(&sched.main_done)) {
        uint64_t now = urg__nanotime();
        sysmon_sleep(&st, now, sysmon_sleep_ns(&st, now));
        if (ld_acquire(&sched.main_done))
            break;
        sysmon_look(&st, urg__nanotime());
    }
    prctl(PR_SET_TIMERSLACK, (unsigned long)(old_slack > 0 ? old_slack : 50000));
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
}
