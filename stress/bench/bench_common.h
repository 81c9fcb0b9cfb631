/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * bench_common.h — plumbing shared by bench_urgent.c and bench_pthreads.c.
 *
 * Both C benchmarks must count time and memory exactly as the Go twin does
 * (stress/bench/go/bench.go), or the ratios in run.sh's table would compare
 * clocks rather than schedulers; keeping the clock, the RSS reader, the
 * median, the option parser and the one-process-per-workload dispatcher here
 * guarantees the two C programs at least agree with each other.
 *
 * Header-only (static functions) so that CMake needs no extra library target
 * and bench_urgent still depends on nothing but urgent.h and libc.
 * The including file must define _GNU_SOURCE before any include.
 */
#ifndef URG_BENCH_COMMON_H
#define URG_BENCH_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_REPS 64
#define BENCH_MAX_KEYS 6

typedef struct bench_opts {
    int quick;
    int reps; /* 0: the default (5, or 3 with --quick) */
    const char *only;
    const char *child;
    int timeout_s;
} bench_opts;

static bench_opts bench_opt = {0, 0, "", NULL, 180};

typedef struct bench_workload {
    const char *name;
    const char *keys[BENCH_MAX_KEYS]; /* NULL-terminated */
    void (*run)(void);
} bench_workload;

/* CLOCK_MONOTONIC, the clock behind Go's time.Since, so both sides read the
 * same source with the same (vDSO) cost. */
static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline long bench_scale(long n)
{
    return bench_opt.quick ? n / 10 : n;
}

static inline int bench_reps(void)
{
    if (bench_opt.reps > 0)
        return bench_opt.reps;
    return bench_opt.quick ? 3 : 5;
}

/* Resident set from /proc/self/statm with raw syscalls: no stdio buffer and
 * no allocation, so reading it does not itself move the figure, and it is
 * safe from inside a task. -1 when /proc is unavailable. */
static inline long long bench_rss_bytes(void)
{
    char buf[256];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    long long size = 0, resident = 0;
    if (sscanf(buf, "%lld %lld", &size, &resident) != 2)
        return -1;
    return resident * (long long)sysconf(_SC_PAGESIZE);
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median, because on a shared VM one round that lost its CPU would drag a
 * mean far more than it moves the middle of the sample. */
static inline double bench_median(const double *xs, int n)
{
    double s[BENCH_MAX_REPS];
    if (n <= 0)
        return 0;
    if (n > BENCH_MAX_REPS)
        n = BENCH_MAX_REPS;
    memcpy(s, xs, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Every line goes out flushed: stdout is a pipe to the dispatcher, and a
 * workload that crashes must not take already-measured figures with it. */
static inline void bench_comment(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}

static inline void bench_result(const char *key, double v)
{
    printf("RESULT %s %.2f\n", key, v);
    fflush(stdout);
}

static inline void bench_result_na(const char *key)
{
    printf("RESULT %s n/a\n", key);
    fflush(stdout);
}

static inline void bench_rounds_comment(const char *key, const double *xs, int n)
{
    char line[64 * 16];
    size_t off = 0;
    line[0] = '\0';
    for (int i = 0; i < n && off < sizeof line - 16; i++)
        off += (size_t)snprintf(line + off, sizeof line - off, " %.1f", xs[i]);
    bench_comment("%s rounds%s", key, line);
}

static inline void bench_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--quick] [--only KEY_PREFIX] [--reps N] [--timeout SECONDS]\n"
            "  prints one 'RESULT <key> <value>' line per figure; each workload\n"
            "  runs in a fresh child process (--child NAME runs one in-process)\n",
            prog);
}

static inline void bench_parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-')
            a++; /* accept -x and --x alike, as Go's flag package does */
        if (!strcmp(a, "-quick")) {
            bench_opt.quick = 1;
        } else if (!strcmp(a, "-only") && i + 1 < argc) {
            bench_opt.only = argv[++i];
        } else if (!strcmp(a, "-reps") && i + 1 < argc) {
            bench_opt.reps = atoi(argv[++i]);
            if (bench_opt.reps < 1 || bench_opt.reps > BENCH_MAX_REPS) {
                fprintf(stderr, "--reps: 1..%d\n", BENCH_MAX_REPS);
                exit(2);
            }
        } else if (!strcmp(a, "-timeout") && i + 1 < argc) {
            bench_opt.timeout_s = atoi(argv[++i]);
        } else if (!strcmp(a, "-child") && i + 1 < argc) {
            bench_opt.child = argv[++i];
        } else {
            bench_usage(argv[0]);
            exit(2);
        }
    }
}

static inline int bench_selected(const bench_workload *w)
{
    for (int k = 0; k < BENCH_MAX_KEYS && w->keys[k]; k++)
        if (!strncmp(w->keys[k], bench_opt.only, strlen(bench_opt.only)))
            return 1;
    return 0;
}

/* Forward the child's complete lines and remember which keys it reported. */
static inline void bench_forward(char *buf, size_t *len, int seen[BENCH_MAX_KEYS],
                          const bench_workload *w, int flush_all)
{
    size_t start = 0;
    for (size_t i = 0; i < *len; i++) {
        if (buf[i] != '\n' && !(flush_all && i + 1 == *len))
            continue;
        size_t end = i + 1;
        fwrite(buf + start, 1, end - start, stdout);
        if (buf[i] != '\n')
            fputc('\n', stdout);
        if (!strncmp(buf + start, "RESULT ", 7)) {
            for (int k = 0; k < BENCH_MAX_KEYS && w->keys[k]; k++) {
                size_t kl = strlen(w->keys[k]);
                if (end - start > 7 + kl && !strncmp(buf + start + 7, w->keys[k], kl) &&
                    buf[start + 7 + kl] == ' ')
                    seen[k] = 1;
            }
        }
        start = end;
    }
    memmove(buf, buf + start, *len - start);
    *len -= start;
    fflush(stdout);
}

/* Runs one workload in a fresh copy of this program. A fresh process per
 * workload keeps memory figures free of stacks cached by an earlier
 * workload, and turns a crash or a hang (likely while the runtime is young)
 * into one row of n/a instead of a lost table. */
static inline void bench_run_child(const bench_workload *w)
{
    char reps[16];
    const char *argv[10];
    int argc = 0;
    argv[argc++] = "bench";
    argv[argc++] = "--child";
    argv[argc++] = w->name;
    if (bench_opt.quick)
        argv[argc++] = "--quick";
    if (bench_opt.reps > 0) {
        snprintf(reps, sizeof reps, "%d", bench_opt.reps);
        argv[argc++] = "--reps";
        argv[argc++] = reps;
    }
    argv[argc] = NULL;

    int seen[BENCH_MAX_KEYS] = {0};
    int p[2];
    fflush(stdout);
    if (pipe(p) != 0) {
        bench_comment("%s: pipe: %s", w->name, strerror(errno));
        goto missing;
    }
    pid_t pid = fork();
    if (pid < 0) {
        bench_comment("%s: fork: %s", w->name, strerror(errno));
        close(p[0]);
        close(p[1]);
        goto missing;
    }
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execv("/proc/self/exe", (char *const *)argv);
        fprintf(stderr, "bench: exec /proc/self/exe: %s\n", strerror(errno));
        _exit(127);
    }
    close(p[1]);

    char buf[8192];
    size_t len = 0;
    uint64_t deadline = bench_now_ns() + (uint64_t)bench_opt.timeout_s * UINT64_C(1000000000);
    int killed = 0;
    for (;;) {
        struct pollfd pfd = {p[0], POLLIN, 0};
        int r = poll(&pfd, 1, 200);
        if (r > 0) {
            ssize_t n = read(p[0], buf + len, sizeof buf - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            bench_forward(buf, &len, seen, w, len == sizeof buf - 1);
        } else if (r < 0 && errno != EINTR) {
            break;
        }
        if (!killed && bench_now_ns() > deadline) {
            kill(pid, SIGKILL);
            killed = 1;
        }
    }
    if (len > 0)
        bench_forward(buf, &len, seen, w, 1);
    close(p[0]);

    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (killed)
        bench_comment("%s: killed after %d s", w->name, bench_opt.timeout_s);
    else if (WIFSIGNALED(st))
        bench_comment("%s: child died of signal %d (%s)", w->name, WTERMSIG(st),
                      strsignal(WTERMSIG(st)));
    else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        bench_comment("%s: child exited with status %d", w->name, WEXITSTATUS(st));
missing:
    for (int k = 0; k < BENCH_MAX_KEYS && w->keys[k]; k++)
        if (!seen[k])
            bench_result_na(w->keys[k]);
}

/* main() of both C programs: parse, then either run the one workload named
 * by --child here, or dispatch every selected workload to a child. */
static inline int bench_main(int argc, char **argv, const bench_workload *ws, size_t nws,
                      const char *banner)
{
    bench_parse(argc, argv);
    if (bench_opt.child) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (size_t i = 0; i < nws; i++) {
            if (!strcmp(ws[i].name, bench_opt.child)) {
                ws[i].run();
                fflush(stdout);
                return 0;
            }
        }
        fprintf(stderr, "bench: unknown workload '%s'\n", bench_opt.child);
        return 2;
    }
    int any = 0;
    for (size_t i = 0; i < nws; i++)
        any |= bench_selected(&ws[i]);
    if (!any) {
        fprintf(stderr, "bench: no workload has a key starting with '%s'\n", bench_opt.only);
        return 2;
    }
    bench_comment("%s quick=%d", banner, bench_opt.quick);
    for (size_t i = 0; i < nws; i++)
        if (bench_selected(&ws[i]))
            bench_run_child(&ws[i]);
    return 0;
}

#endif /* URG_BENCH_COMMON_H */
