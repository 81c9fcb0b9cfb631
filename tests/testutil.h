/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/testutil.h — shared helpers for the cmocka tests.
 *
 * Rule: never call cmocka's assert_* inside a task or on another thread
 * (it longjmps back to the runner across stacks). Tasks record what they
 * saw with CHECK(), which counts failures and keeps the first message;
 * the test body asserts after urg_run returns with assert_checks_ok().
 *
 * Also: running a function in a child process and capturing its stderr
 * and exit status (for fatal errors and crashes), counting open file
 * descriptors and mappings (leak checks), reading RSS, and the build's
 * preemption mode.
 */
#ifndef URG_TESTUTIL_H
#define URG_TESTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "urgent.h"
#include "runtime/sched.h" /* the task table, for tu_await_parked */

/* Sanitizer builds: some checks (timing, memory) do not apply. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TU_SANITIZED 1
#else
#define TU_SANITIZED 0
#endif
#if defined(__SANITIZE_THREAD__)
#define TU_TSAN 1
#else
#define TU_TSAN 0
#endif

/* ThreadSanitizer tracks every started task as a thread of its own and
 * dies past 8128 alive at once: tests that keep many tasks alive cap
 * their count under it. */
#define TU_LIVE_CAP(n) (TU_TSAN && (n) > 4000 ? 4000 : (n))

/* ---- failures recorded inside tasks ---- */

static int tu_failures;
static char tu_first_failure[512];

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            tu_fail(__FILE__, __LINE__, #cond);                                                    \
    } while (0)

static inline void tu_fail(const char *file, int line, const char *what)
{
    if (__atomic_fetch_add(&tu_failures, 1, __ATOMIC_SEQ_CST) == 0)
        snprintf(tu_first_failure, sizeof(tu_first_failure), "%s:%d: CHECK(%s) failed", file, line,
                 what);
}

static inline void tu_reset(void)
{
    __atomic_store_n(&tu_failures, 0, __ATOMIC_SEQ_CST);
    tu_first_failure[0] = 0;
}

#define assert_checks_ok()                                                                         \
    do {                                                                                           \
        if (__atomic_load_n(&tu_failures, __ATOMIC_SEQ_CST) != 0)                                  \
            fail_msg("%d task-side check(s) failed; first: %s", tu_failures, tu_first_failure);    \
    } while (0)

/* Run fn as the main task at each count of procs in tu_procs_list; a
 * failed task-side check fails the test, naming the count. */
static const int tu_procs_list[] = {1, 2, 4};
#define NPROCS_LIST ((int)(sizeof(tu_procs_list) / sizeof(tu_procs_list[0])))
#define RUN_AT(fn, arg, procs)                                                                     \
    do {                                                                                           \
        tu_reset();                                                                                \
        tu_run((fn), (arg), (procs));                                                              \
        if (__atomic_load_n(&tu_failures, __ATOMIC_SEQ_CST) != 0)                                  \
            fail_msg("at %d procs: %d task-side check(s) failed; first: %s", (procs), tu_failures, \
                     tu_first_failure);                                                            \
    } while (0)

/* ---- counters shared with monitor threads ----
 * A relaxed load and store: plain moves on x86-64, so a loop that counts
 * stays call-free (what the preemption tests need), yet the monitor's
 * reads are well-defined and ThreadSanitizer sees no race. */
#define TU_BUMP(p)                                                                                 \
    __atomic_store_n((p), __atomic_load_n((p), __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED)
#define TU_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

/* Run fn as the main task with `procs` procs; assert urg_run returned 0. */
static inline void tu_run(urg_fn fn, void *arg, int procs)
{
    urg_config cfg = {0};
    cfg.maxprocs = procs;
    int r = urg_run(fn, arg, &cfg);
    assert_int_equal(r, 0);
}

/* ---- waiting on the runtime's own task state ----
 * "The others have blocked by now" is never a sleep: these poll the
 * runtime's task table (status and wait reason, read the way the dump
 * reads them) until the state holds, with a generous deadline. A deadline
 * that passes prints what was awaited and a task dump, then aborts: a
 * loud failure, never a silent pass down the non-blocking path.
 *
 * Callable from a task (it yields, then sleeps briefly, between polls, so
 * the awaited tasks get to run on any number of procs) or from a thread
 * outside the runtime (it sleeps). Wait reasons are enum urg__waitreason
 * (runtime/sched.h): WAIT_CHAN_SEND, WAIT_CHAN_RECV, WAIT_SELECT,
 * WAIT_SELECT_FOREVER, WAIT_MUTEX, WAIT_WG, WAIT_IO, WAIT_SLEEP, ... */
#define TU_AWAIT_DEADLINE_S (TU_SANITIZED ? 180 : 60)

struct tu_parked_count {
    uint64_t id; /* 0: any task */
    int reason;
    int n;
};

static inline void tu_parked_one(g_t *gp, void *arg)
{
    struct tu_parked_count *c = arg;
    /* Status first: a descriptor being reused for a new task gets its id
     * with a plain store, which only a parked task's has settled. */
    if (__atomic_load_n(&gp->status, __ATOMIC_ACQUIRE) != G_WAITING)
        return;
    if (c->id && __atomic_load_n(&gp->id, __ATOMIC_RELAXED) != c->id)
        return;
    if (__atomic_load_n(&gp->waitreason, __ATOMIC_RELAXED) == c->reason)
        c->n++;
}

/* How many tasks (or, with id, whether task `id`) are parked for reason. */
static inline int tu_parked(uint64_t id, int reason)
{
    struct tu_parked_count c = {.id = id, .reason = reason};
    urg__gslab_foreach(tu_parked_one, &c);
    return c.n;
}

static inline void tu_await_fail(const char *what, int want, int have)
{
    fprintf(stderr,
            "tu_await: %s: wanted %d task(s) parked, %d after %d s; the tasks now:\n", what,
            want, have, TU_AWAIT_DEADLINE_S);
    urg_dump();
    abort();
}

static inline void tu_await_poll(unsigned polls, int reason)
{
    if (urg_task_id() == 0) {
        usleep(200);
    } else if (polls < 100 || reason == WAIT_SLEEP) {
        urg_yield(); /* sleeping would count the poller among the sleepers */
    } else {
        urg_sleep(200000);
    }
}

/* Wait until at least n tasks are parked with wait reason `reason`. */
static inline void tu_await_parked_n(int reason, int n)
{
    uint64_t deadline = urg_now() + (uint64_t)TU_AWAIT_DEADLINE_S * 1000000000ull;
    for (unsigned polls = 0;; polls++) {
        int have = tu_parked(0, reason);
        if (have >= n)
            return;
        if (urg_now() > deadline)
            tu_await_fail(urg__waitreason_str(reason), n, have);
        tu_await_poll(polls, reason);
    }
}

/* Wait until task `id` (from urg_task_id() in it) is parked for reason. */
static inline void tu_await_parked(uint64_t id, int reason)
{
    uint64_t deadline = urg_now() + (uint64_t)TU_AWAIT_DEADLINE_S * 1000000000ull;
    for (unsigned polls = 0;; polls++) {
        if (tu_parked(id, reason))
            return;
        if (urg_now() > deadline)
            tu_await_fail(urg__waitreason_str(reason), 1, 0);
        tu_await_poll(polls, reason);
    }
}

/* Wait until *flag (set with a release store) is nonzero: for states the
 * task table cannot show, such as "has reached this line". */
static inline void tu_await_flag(const int *flag, const char *what)
{
    uint64_t deadline = urg_now() + (uint64_t)TU_AWAIT_DEADLINE_S * 1000000000ull;
    for (unsigned polls = 0; !__atomic_load_n(flag, __ATOMIC_ACQUIRE); polls++) {
        if (urg_now() > deadline)
            tu_await_fail(what, 1, 0);
        tu_await_poll(polls, WAIT_NONE);
    }
}

/* A task's status rather than a parked wait: G_SYSCALL inside
 * urg_syscall_enter/exit, G_DEAD once gone. The status is read first:
 * urg__newproc writes a recycled descriptor's id with a plain store while
 * its status is still G_DEAD, so the id is read only of descriptors in
 * the awaited status (which must not be G_DEAD while tasks are being
 * spawned). A dead task's descriptor keeps its id until it is reused. */
struct tu_status_find {
    uint64_t id;
    uint32_t status;
    int found;
};

static inline void tu_status_one(g_t *gp, void *arg)
{
    struct tu_status_find *f = arg;
    if (__atomic_load_n(&gp->status, __ATOMIC_ACQUIRE) == f->status &&
        __atomic_load_n(&gp->id, __ATOMIC_RELAXED) == f->id)
        f->found = 1;
}

/* Wait until task `id` has status `status` (enum urg__gstatus). */
static inline void tu_await_status(uint64_t id, uint32_t status, const char *what)
{
    uint64_t deadline = urg_now() + (uint64_t)TU_AWAIT_DEADLINE_S * 1000000000ull;
    for (unsigned polls = 0;; polls++) {
        struct tu_status_find f = {.id = id, .status = status};
        if (id)
            urg__gslab_foreach(tu_status_one, &f);
        if (f.found)
            return;
        if (urg_now() > deadline)
            tu_await_fail(what, 1, 0);
        tu_await_poll(polls, WAIT_NONE);
    }
}

/* Wait until sysmon has taken at least n Ps from threads blocked in
 * syscalls in this run: the runtime's own verdict that a call blocks. */
static inline void tu_await_syscall_handoffs(uint64_t n)
{
    uint64_t deadline = urg_now() + (uint64_t)TU_AWAIT_DEADLINE_S * 1000000000ull;
    for (unsigned polls = 0;; polls++) {
        urg_stats st;
        urg_stats_get(&st);
        if (st.syscall_handoffs >= n)
            return;
        if (urg_now() > deadline)
            tu_await_fail("syscall handoff", (int)n, (int)st.syscall_handoffs);
        tu_await_poll(polls, WAIT_NONE);
    }
}

/* A thread outside the runtime that blocks in a channel, mutex or wait
 * group parks a stand-in task of its own, which the task table does not
 * list. The thread publishes it (*slot = tu_thread_g(), a release store)
 * and others wait on that: tu_await_thread_parked(&slot, WAIT_CHAN_RECV). */
static inline g_t *tu_thread_g(void) { return urg__getg_ext(); }

static inline void tu_await_thread_parked(g_t *const *slot, int reason)
{
    uint64_t deadline = urg_now() + (uint64_t)TU_AWAIT_DEADLINE_S * 1000000000ull;
    for (unsigned polls = 0;; polls++) {
        g_t *gp = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
        if (gp && __atomic_load_n(&gp->status, __ATOMIC_ACQUIRE) == G_WAITING &&
            __atomic_load_n(&gp->waitreason, __ATOMIC_RELAXED) == reason)
            return;
        if (urg_now() > deadline)
            tu_await_fail(urg__waitreason_str(reason), 1, 0);
        tu_await_poll(polls, reason);
    }
}

/* ---- child processes ---- */

struct tu_child {
    int status;      /* waitpid status */
    char out[65536]; /* stderr and stdout, NUL-terminated, truncated */
};

/* ---- crashes in forked children ----
 * cmocka's crash handlers would catch a fault in a child and carry on
 * running the test list there; a crash must end the child instead. For
 * children forked by hand; tu_in_child does it itself. */
static inline void tu_child_default_signals(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], SIG_DFL);
}

/* Run fn(arg) in a forked child with stdout+stderr captured. The child
 * exits with fn's return value. Kills it after timeout_s. */
static inline void tu_in_child(int (*fn)(void *), void *arg, int timeout_s, struct tu_child *res)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        tu_child_default_signals();
        close(pipefd[0]);
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        close(pipefd[1]);
        alarm((unsigned)timeout_s);
        int r = fn(arg);
        fflush(stdout);
        fflush(stderr);
        _exit(r);
    }
    close(pipefd[1]);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(pipefd[0], res->out + len, sizeof(res->out) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof(res->out) - 1)
            break;
    }
    res->out[len] = 0;
    close(pipefd[0]);
    while (waitpid(pid, &res->status, 0) < 0 && errno == EINTR) {
    }
}

/* ---- watchdog: a hang becomes a failure with a reason ----
 * A plain thread that aborts the test program if tu_wd_stop() is not
 * called within `seconds` (three times that under a sanitizer). */
static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int armed;
    int seconds;
    const char *what;
} tu_wd = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static inline void *tu_wd_main(void *arg)
{
    (void)arg;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    pthread_mutex_lock(&tu_wd.mu);
    dl.tv_sec += tu_wd.seconds;
    while (tu_wd.armed) {
        if (pthread_cond_timedwait(&tu_wd.cv, &tu_wd.mu, &dl) == ETIMEDOUT && tu_wd.armed) {
            fprintf(stderr, "watchdog: %s did not finish in %d s (a task blocked its thread?)\n",
                    tu_wd.what, tu_wd.seconds);
            abort();
        }
    }
    pthread_mutex_unlock(&tu_wd.mu);
    return NULL;
}

static inline void tu_wd_start(int seconds, const char *what)
{
    tu_wd.armed = 1;
    tu_wd.seconds = seconds * (TU_SANITIZED ? 3 : 1);
    tu_wd.what = what;
    assert_int_equal(pthread_create(&tu_wd.thread, NULL, tu_wd_main, NULL), 0);
}

static inline void tu_wd_stop(void)
{
    pthread_mutex_lock(&tu_wd.mu);
    tu_wd.armed = 0;
    pthread_cond_signal(&tu_wd.cv);
    pthread_mutex_unlock(&tu_wd.mu);
    pthread_join(tu_wd.thread, NULL);
}

/* ---- VM stalls ----
 * A plain thread that measures how late its own 1 ms sleeps end (the
 * stalls the VM imposes on every thread at once: over a second has been
 * seen on a loaded CI box) and how long the OS kept the process's threads
 * waiting for a CPU: both are delays a bound on lateness must allow for. */
struct tu_stall_meter {
    pthread_t th;
    int stop;
    uint64_t worst; /* ns */
    int ntids;
    struct {
        int tid;
        uint64_t first; /* run_delay when first seen, ns */
        uint64_t last;  /* run_delay since then, at the latest look */
    } seen[128];
};

/* The time this thread has spent runnable but not running (the second
 * field of /proc/self/task/TID/schedstat), or 0 if unknown. */
static inline uint64_t tu_run_delay(int tid)
{
    char path[64], buf[128];
    snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    unsigned long long oncpu = 0, delay = 0;
    if (sscanf(buf, "%llu %llu", &oncpu, &delay) != 2)
        return 0;
    return delay;
}

/* The process's threads: how long has the OS kept each waiting for a CPU
 * since the meter first saw it? The longest counts as a stall:
 * beside CPU hogs a busy thread is kept off its CPU for most of each slice
 * it loses, which a sleeping probe barely notices (the kernel favours
 * threads waking from sleep). Measured while the run lasts, since the
 * runtime's threads end with it. */
static inline void tu_stall_meter_scan(struct tu_stall_meter *m)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        int tid = atoi(e->d_name);
        if (tid <= 0)
            continue;
        uint64_t now = tu_run_delay(tid);
        int i = 0;
        while (i < m->ntids && m->seen[i].tid != tid)
            i++;
        if (i == m->ntids) {
            if (m->ntids == (int)(sizeof(m->seen) / sizeof(m->seen[0])))
                continue;
            m->seen[m->ntids].tid = tid;
            m->seen[m->ntids].first = now;
            m->seen[m->ntids].last = 0;
            m->ntids++;
            continue;
        }
        m->seen[i].last = now > m->seen[i].first ? now - m->seen[i].first : 0;
    }
    closedir(d);
    for (int i = 0; i < m->ntids; i++) /* threads that ended keep theirs */
        if (m->seen[i].last > m->worst)
            m->worst = m->seen[i].last;
}

static inline void *tu_stall_meter_main(void *arg)
{
    struct tu_stall_meter *m = arg;
    for (unsigned k = 0; !__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE); k++) {
        uint64_t t0 = urg_now();
        usleep(1000);
        uint64_t late = urg_now() - t0;
        late = late > 1000000 ? late - 1000000 : 0;
        if (late > m->worst)
            m->worst = late;
        if (k % 10 == 0)
            tu_stall_meter_scan(m);
    }
    tu_stall_meter_scan(m);
    return NULL;
}

static inline void tu_stall_meter_start(struct tu_stall_meter *m)
{
    memset(m, 0, sizeof(*m));
    assert_int_equal(pthread_create(&m->th, NULL, tu_stall_meter_main, m), 0);
}

static inline uint64_t tu_stall_meter_stop(struct tu_stall_meter *m)
{
    __atomic_store_n(&m->stop, 1, __ATOMIC_RELEASE);
    pthread_join(m->th, NULL);
    return m->worst;
}

/* ---- output ---- */

/* How many lines of out start with prefix. */
static inline int tu_count_lines(const char *out, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = out; *p;) {
        if (!strncmp(p, prefix, len))
            n++;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

/* ---- resources ---- */

static inline int tu_count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static inline int tu_open_fds(void) { return tu_count_dir("/proc/self/fd"); }

/* ---- descriptor leaks across a whole test program ----
 * cmocka group setup and teardown: no run may leave descriptors behind
 * (epoll, eventfds, pipes). The first run opens a few that live as long as
 * the process (libunwind's address-validation pipe), so the count starts
 * after one. */
static int tu_fds_before;

static inline int tu_warm_up(void);

static inline int tu_fd_group_setup(void **state)
{
    (void)state;
    if (tu_warm_up() != 0)
        return -1;
    tu_fds_before = tu_open_fds();
    return 0;
}

static inline int tu_fd_group_teardown(void **state)
{
    (void)state;
    int after = tu_open_fds();
    if (after != tu_fds_before) {
        fprintf(stderr, "descriptor leak: %d open before, %d after\n", tu_fds_before, after);
        return -1;
    }
    return 0;
}

static inline int tu_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static inline long tu_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            v = strtol(line + 6, NULL, 10);
    fclose(f);
    return v;
}

static inline int tu_threads(void) { return tu_count_dir("/proc/self/task") - 2; }

/* One trivial run, so that whatever the first run leaves for the life of
 * the process (TSan's background thread, libunwind's validation pipe) is
 * there before a test takes its baseline of threads or descriptors. */
static void tu_warm_up_main(void *arg) { (void)arg; }
static inline int tu_warm_up(void)
{
    urg_config cfg = {.maxprocs = 2};
    return urg_run(tu_warm_up_main, NULL, &cfg);
}

static inline int tu_is_async(void) { return !strcmp(urg_preempt_mode(), "async"); }

#endif /* URG_TESTUTIL_H */
