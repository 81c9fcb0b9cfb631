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

#include <cmocka.h>

#include "urgent.h"

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

/* ---- child processes ---- */

struct tu_child {
    int status;      /* waitpid status */
    char out[65536]; /* stderr and stdout, NUL-terminated, truncated */
};

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
        /* Crash handlers are cmocka's in the parent: in the child a crash
         * must end the child, not jump back into the test runner. */
        static const int crash[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
        for (size_t i = 0; i < sizeof(crash) / sizeof(crash[0]); i++)
            signal(crash[i], SIG_DFL);
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
static inline void tu_warm_up(void)
{
    urg_config cfg = {.maxprocs = 2};
    urg_run(tu_warm_up_main, NULL, &cfg);
}

static inline int tu_is_async(void) { return !strcmp(urg_preempt_mode(), "async"); }

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

#endif /* URG_TESTUTIL_H */
