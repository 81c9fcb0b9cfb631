/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * sigcost.c — what a preemption signal costs this machine, without
 * urgent: two threads run a fixed call-free loop while SIGURG interrupts
 * them every PERIOD, delivered one of two ways:
 *
 *   none     no signals (the baseline)
 *   monitor  a third thread sleeps PERIOD and tgkills both (urgent's
 *            sysmon, reduced to its signalling)
 *   timer    a per-thread CLOCK_MONOTONIC timer with SIGEV_THREAD_ID, so
 *            the kernel signals each thread itself: no monitor wake-ups,
 *            no tgkill (the alternative issue 11 asks to measure)
 *
 * The handler only counts. Prints whole-process CPU (getrusage: user +
 * sys) and wall time; the difference to `none`, divided by the signals,
 * is the cost of one signal, kernel included.
 *
 * usage: sigcost none|monitor|timer [--period-us N] [--iters N]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NTHREADS 2

static volatile sig_atomic_t nsignals;
static int done; /* atomic */
static pid_t tids[NTHREADS];
static long period_ns = 100000;
static uint64_t iters = 1000000000ull;
static int mode; /* 0 none, 1 monitor, 2 timer */

static void on_sigurg(int sig)
{
    (void)sig;
    nsignals = nsignals + 1;
}

static void *worker(void *arg)
{
    long i = (long)arg;
    __atomic_store_n(&tids[i], (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    if (mode == 2) {
        struct sigevent se;
        memset(&se, 0, sizeof(se));
        se.sigev_notify = SIGEV_THREAD_ID;
        se.sigev_signo = SIGURG;
        se._sigev_un._tid = (pid_t)syscall(SYS_gettid);
        timer_t t;
        struct itimerspec it = {{0, period_ns}, {0, period_ns}};
        if (timer_create(CLOCK_MONOTONIC, &se, &t) != 0 || timer_settime(t, 0, &it, NULL) != 0) {
            perror("timer");
            exit(2);
        }
    }
    volatile uint64_t x = 0;
    for (uint64_t k = 0; k < iters; k++)
        x += k ^ (x >> 3);
    return NULL;
}

static void *monitor(void *arg)
{
    (void)arg;
    prctl(PR_SET_TIMERSLACK, 1UL);
    struct timespec ts = {0, period_ns};
    while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
        for (int i = 0; i < NTHREADS; i++) {
            pid_t tid = __atomic_load_n(&tids[i], __ATOMIC_ACQUIRE);
            if (tid)
                syscall(SYS_tgkill, getpid(), tid, SIGURG);
        }
    }
    return NULL;
}

static double ms(struct timeval tv) { return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3; }

int main(int argc, char **argv)
{
    if (argc < 2)
        goto usage;
    if (!strcmp(argv[1], "none"))
        mode = 0;
    else if (!strcmp(argv[1], "monitor"))
        mode = 1;
    else if (!strcmp(argv[1], "timer"))
        mode = 2;
    else
        goto usage;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--period-us"))
            period_ns = atol(argv[i + 1]) * 1000;
        else if (!strcmp(argv[i], "--iters"))
            iters = strtoull(argv[i + 1], NULL, 10);
        else
            goto usage;
    }
    if (period_ns < 1000 || period_ns >= 1000000000 || iters == 0)
        goto usage;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigurg;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGURG, &sa, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t w[NTHREADS], m;
    for (long i = 0; i < NTHREADS; i++)
        pthread_create(&w[i], NULL, worker, (void *)i);
    if (mode == 1)
        pthread_create(&m, NULL, monitor, NULL);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(w[i], NULL);
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    if (mode == 1)
        pthread_join(m, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double wall = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("RESULT %s cpu_ms %.1f user_ms %.1f sys_ms %.1f wall_ms %.1f signals %ld\n", argv[1],
           ms(ru.ru_utime) + ms(ru.ru_stime), ms(ru.ru_utime), ms(ru.ru_stime), wall,
           (long)nsignals);
    return 0;
usage:
    fprintf(stderr, "usage: sigcost none|monitor|timer [--period-us N] [--iters N]\n");
    return 2;
}
