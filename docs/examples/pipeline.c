/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * docs/examples/pipeline.c — the README's example: a producer, a pool of
 * workers and a collector talking over channels, and a worker stuck in a
 * loop that calls nothing, which async preemption keeps from starving the
 * others on one proc.
 *
 *   cc pipeline.c $(pkg-config --cflags --libs urgent) -o pipeline
 */
#include <stdio.h>
#include <urgent.h>

static urg_chan *jobs, *results;
static urg_wg workers;

static void producer(void *arg)
{
    (void)arg;
    for (long i = 1; i <= 1000; i++)
        urg_chan_send(jobs, &i);
    urg_chan_close(jobs);
}

static void worker(void *arg)
{
    (void)arg;
    long n;
    while (urg_chan_recv(jobs, &n) == 0) { /* -EPIPE once closed and drained */
        long sq = n * n;
        urg_chan_send(results, &sq);
    }
    urg_wg_done(&workers);
}

static volatile int spinning = 1;
static void hog(void *arg)
{
    (void)arg;
    while (spinning) /* no calls: only a signal can take the proc away */
        ;
}

static void closer(void *arg)
{
    (void)arg;
    urg_wg_wait(&workers);
    urg_chan_close(results);
}

static void main_task(void *arg)
{
    (void)arg;
    jobs = urg_chan_new(sizeof(long), 16);
    results = urg_chan_new(sizeof(long), 16);
    urg_go(hog, NULL);
    urg_go(producer, NULL);
    urg_wg_add(&workers, 4);
    for (int i = 0; i < 4; i++)
        urg_go(worker, NULL);
    urg_go(closer, NULL);

    long sum = 0, sq;
    while (urg_chan_recv(results, &sq) == 0)
        sum += sq;
    spinning = 0;
    printf("sum of squares 1..1000 = %ld (%s preemption)\n", sum, urg_preempt_mode());
    urg_chan_free(jobs);
    urg_chan_free(results);
}

int main(void)
{
    urg_config cfg = {.maxprocs = 1}; /* one proc: the hog shares it */
    return urg_run(main_task, NULL, &cfg) == 0 ? 0 : 1;
}
