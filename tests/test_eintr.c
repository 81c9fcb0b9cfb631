/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/test_eintr.c — calls the runtime wraps retry when a signal
 * interrupts them.
 *
 * The runtime's handlers use SA_RESTART, but a program's may not, and
 * Linux never restarts some calls (epoll_wait, nanosleep, futex waits with
 * a timeout): they fail with EINTR (golang/go#38033 was this bug in Go).
 * Here a program handler installed without SA_RESTART is hit thousands of
 * times per second while tasks and a plain thread move data through pipes
 * with urg_read/urg_write and sleep: no call may return -EINTR, and every
 * byte must arrive.
 */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#define BYTES (2 * 1024 * 1024)

static int usr1_seen; /* atomics: the handler runs on any thread */
static void on_usr1(int sig)
{
    (void)sig;
    __atomic_fetch_add(&usr1_seen, 1, __ATOMIC_RELAXED);
}

static int stop_sender;
static void *sender(void *arg)
{
    pid_t pid = getpid();
    (void)arg;
    while (!__atomic_load_n(&stop_sender, __ATOMIC_ACQUIRE)) {
        kill(pid, SIGUSR1);
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int eintrs, short_io;
static uint64_t received_sum, sent_sum;
static urg_wg wg;

static void writer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static unsigned char buf[65536];
    for (size_t off = 0; off < BYTES; off += sizeof(buf)) {
        for (size_t i = 0; i < sizeof(buf); i++) {
            buf[i] = (unsigned char)((off + i) * 7);
            sent_sum += buf[i];
        }
        ssize_t w = urg_write(fd, buf, sizeof(buf));
        if (w == -EINTR)
            eintrs++;
        else if (w != (ssize_t)sizeof(buf))
            short_io++;
        urg_sleep(200000);
    }
    close(fd);
    urg_wg_done(&wg);
}

static void reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    unsigned char buf[4096];
    for (;;) {
        ssize_t r = urg_read(fd, buf, sizeof(buf));
        if (r == -EINTR) {
            eintrs++;
            continue;
        }
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            received_sum += buf[i];
    }
    close(fd);
    urg_wg_done(&wg);
}

static void eintr_main(void *arg)
{
    (void)arg;
    int p[2];
    CHECK(pipe(p) == 0);
    urg_wg_add(&wg, 2);
    CHECK(urg_go(reader, (void *)(intptr_t)p[0]) == 0);
    CHECK(urg_go(writer, (void *)(intptr_t)p[1]) == 0);
    for (int i = 0; i < 50; i++)
        urg_sleep(1000000);
    urg_wg_wait(&wg);
}

static void test_eintr_retried_in_tasks(void **state)
{
    (void)state;
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_usr1;
    sa.sa_flags = 0; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &old);
    __atomic_store_n(&usr1_seen, 0, __ATOMIC_RELAXED);
    eintrs = short_io = 0;
    received_sum = sent_sum = 0;
    __atomic_store_n(&stop_sender, 0, __ATOMIC_RELAXED);
    pthread_t t;
    pthread_create(&t, NULL, sender, NULL);
    tu_reset();
    tu_run(eintr_main, NULL, 2);
    __atomic_store_n(&stop_sender, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    sigaction(SIGUSR1, &old, NULL);
    assert_checks_ok();
    print_message("%d SIGUSR1s delivered during the run\n",
                  __atomic_load_n(&usr1_seen, __ATOMIC_RELAXED));
    assert_true(__atomic_load_n(&usr1_seen, __ATOMIC_RELAXED) > 100);
    assert_int_equal(eintrs, 0);
    assert_int_equal(short_io, 0);
    assert_true(received_sum == sent_sum);
}

/* A plain thread blocks in urg_read and urg_sleep: both retry too. */
static int ext_result = 1;
static void *ext_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;
    urg_sleep(20000000); /* nanosleep, interrupted many times */
    ssize_t r = urg_read(fd, &c, 1);
    ext_result = r == 1 && c == 'x' ? 0 : (int)r;
    return NULL;
}

static void test_eintr_retried_on_plain_threads(void **state)
{
    (void)state;
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &old);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pthread_t r, s;
    __atomic_store_n(&stop_sender, 0, __ATOMIC_RELAXED);
    pthread_create(&r, NULL, ext_reader, (void *)(intptr_t)p[0]);
    pthread_create(&s, NULL, sender, NULL);
    struct timespec ts = {0, 80000000};
    nanosleep(&ts, NULL);
    assert_int_equal(write(p[1], "x", 1), 1);
    pthread_join(r, NULL);
    __atomic_store_n(&stop_sender, 1, __ATOMIC_RELEASE);
    pthread_join(s, NULL);
    sigaction(SIGUSR1, &old, NULL);
    close(p[0]);
    close(p[1]);
    assert_int_equal(ext_result, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eintr_retried_in_tasks),
        cmocka_unit_test(test_eintr_retried_on_plain_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
