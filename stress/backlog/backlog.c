/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * stress/backlog/backlog.c — the backlog incident (docs/backlog.md), naive
 * and fixed.
 *
 * A producer (the main task) turns out messages on a schedule, one every
 * --interval-us, faster than the procs can handle them (each costs --work
 * iterations of a call-free loop).
 *
 *   naive: urg_go(handle, msg) per message, Go's "go handle(m)". Spawning
 *     costs far less than handling, so the tasks pile up in the run queues:
 *     every queued task holds a stack, and each message waits behind all
 *     the ones before it, so latency grows for as long as the burst lasts.
 *   fixed: a channel of --queue messages and --workers tasks that receive
 *     from it. When the channel is full the producer's send parks it
 *     (backpressure: in a server, the accept loop stops reading and the
 *     kernel's backlog, then the client, wait), so the run queues hold at
 *     most the workers and latency stays near queue * work / workers.
 *
 * The producer samples urg_stats after every 16 messages and keeps the
 * peak of global_runq + local_runq and of tasks_live: the runtime's own
 * counters, not timing. --check asserts them: naive must reach
 * --min-naive queued tasks, fixed must stay at or under workers + 2.
 *
 * One summary line:
 *   backlog: mode=naive messages=20000 peak_runq=17893 peak_live=17901
 *            p50_ms=.. p99_ms=.. max_ms=..
 * --latency FILE writes "produced_ms latency_ms" for (up to) 1000 messages,
 * evenly spread, for stress/backlog/plot.sh.
 *
 * usage: backlog --mode naive|fixed [--messages N] [--interval-us U]
 *                [--work N] [--procs P] [--workers W] [--queue Q]
 *                [--seconds S] [--latency FILE] [--check] [--min-naive N]
 * --seconds S sets messages so that producing takes about S seconds.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urgent.h>

typedef struct {
    uint64_t produced; /* urg_now() when made */
    uint64_t done;     /* urg_now() when handled; written by its handler only */
} msg_t;

static struct {
    bool naive;
    long messages, interval_us, work, workers, queue, min_naive;
    int procs;
    const char *latency;
    bool check;
} opt = {.messages = 20000,
         .interval_us = 10,
         .work = 20000,
         .workers = 2,
         .queue = 64,
         .min_naive = 200,
         .procs = 2};

static msg_t *msgs;
static urg_chan *queue;
static urg_wg pending;
static uint64_t peak_runq, peak_live, t_start;
static uint64_t sink; /* atomic: keeps the work from being optimised away */

/* handle: the work a message costs, then its latency recorded. */
static void handle(msg_t *m)
{
    uint64_t x = (uint64_t)(uintptr_t)m;
    for (long i = 0; i < opt.work; i++)
        x = x * 6364136223846793005u + 1442695040888963407u;
    __atomic_store_n(&sink, x, __ATOMIC_RELAXED);
    m->done = urg_now();
}

static void naive_task(void *arg)
{
    handle(arg);
    urg_wg_done(&pending);
}

static void worker(void *arg)
{
    (void)arg;
    for (msg_t *m; urg_chan_recv(queue, &m) == 0;)
        handle(m);
    urg_wg_done(&pending);
}

static void sample(void)
{
    urg_stats st;
    urg_stats_get(&st);
    uint64_t q = st.global_runq + st.local_runq;
    if (q > peak_runq)
        peak_runq = q;
    if (st.tasks_live > peak_live)
        peak_live = st.tasks_live;
}

static void producer(void *arg)
{
    (void)arg;
    urg_wg_init(&pending);
    if (!opt.naive) {
        queue = urg_chan_new(sizeof(msg_t *), (size_t)opt.queue);
        if (!queue) {
            fprintf(stderr, "backlog: urg_chan_new failed\n");
            exit(1);
        }
        urg_wg_add(&pending, opt.workers);
        for (long w = 0; w < opt.workers; w++)
            if (urg_go(worker, NULL) < 0) {
                fprintf(stderr, "backlog: urg_go failed\n");
                exit(1);
            }
    }
    t_start = urg_now();
    for (long i = 0; i < opt.messages; i++) {
        /* On schedule: a message every interval, produced at once when
         * behind (the clients do not wait for us). A spin, not urg_yield:
         * a yield would queue the producer behind the backlog it made. */
        uint64_t due = t_start + (uint64_t)i * (uint64_t)opt.interval_us * 1000u;
        while (urg_now() < due)
            ;
        msg_t *m = &msgs[i];
        m->produced = urg_now();
        if (opt.naive) {
            urg_wg_add(&pending, 1);
            int r = urg_go(naive_task, m);
            if (r < 0) {
                fprintf(stderr, "backlog: urg_go: %s at message %ld\n", strerror(-r), i);
                exit(1);
            }
        } else {
            urg_chan_send(queue, &m);
        }
        if (i % 16 == 0)
            sample();
    }
    if (!opt.naive)
        urg_chan_close(queue);
    urg_wg_wait(&pending);
    if (queue)
        urg_chan_free(queue);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: backlog --mode naive|fixed [--messages N] [--interval-us U] "
                    "[--work N] [--procs P] [--workers W] [--queue Q] [--seconds S] "
                    "[--latency FILE] [--check] [--min-naive N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *mode = NULL;
    double seconds = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--check") == 0) {
            opt.check = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--mode") == 0)
            mode = v;
        else if (strcmp(a, "--messages") == 0)
            opt.messages = atol(v);
        else if (strcmp(a, "--interval-us") == 0)
            opt.interval_us = atol(v);
        else if (strcmp(a, "--work") == 0)
            opt.work = atol(v);
        else if (strcmp(a, "--procs") == 0)
            opt.procs = atoi(v);
        else if (strcmp(a, "--workers") == 0)
            opt.workers = atol(v);
        else if (strcmp(a, "--queue") == 0)
            opt.queue = atol(v);
        else if (strcmp(a, "--min-naive") == 0)
            opt.min_naive = atol(v);
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--latency") == 0)
            opt.latency = v;
        else
            usage();
    }
    if (!mode || (strcmp(mode, "naive") && strcmp(mode, "fixed")))
        usage();
    opt.naive = strcmp(mode, "naive") == 0;
    if (seconds > 0 && opt.interval_us > 0)
        opt.messages = (long)(seconds * 1e6 / (double)opt.interval_us);
    if (opt.messages < 1 || opt.interval_us < 0 || opt.work < 0 || opt.procs < 1 ||
        opt.workers < 1 || opt.queue < 1)
        usage();
    msgs = calloc((size_t)opt.messages, sizeof(*msgs));
    if (!msgs)
        return 1;
    urg_config cfg = {.maxprocs = opt.procs};
    int r = urg_run(producer, NULL, &cfg);
    if (r < 0) {
        fprintf(stderr, "backlog: urg_run: %s\n", strerror(-r));
        return 1;
    }

    uint64_t *lat = malloc((size_t)opt.messages * sizeof(*lat));
    if (!lat)
        return 1;
    for (long i = 0; i < opt.messages; i++)
        lat[i] = msgs[i].done - msgs[i].produced;
    if (opt.latency) {
        FILE *f = fopen(opt.latency, "w");
        if (!f) {
            perror(opt.latency);
            return 1;
        }
        long step = opt.messages > 1000 ? opt.messages / 1000 : 1;
        for (long i = 0; i < opt.messages; i += step)
            fprintf(f, "%.3f %.3f\n", (double)(msgs[i].produced - t_start) / 1e6,
                    (double)lat[i] / 1e6);
        fclose(f);
    }
    qsort(lat, (size_t)opt.messages, sizeof(*lat), cmp_u64);
    printf("backlog: mode=%s messages=%ld peak_runq=%llu peak_live=%llu p50_ms=%.3f "
           "p99_ms=%.3f max_ms=%.3f\n",
           mode, opt.messages, (unsigned long long)peak_runq, (unsigned long long)peak_live,
           (double)lat[opt.messages / 2] / 1e6, (double)lat[opt.messages * 99 / 100] / 1e6,
           (double)lat[opt.messages - 1] / 1e6);
    free(lat);
    free(msgs);
    if (!opt.check)
        return 0;
    if (opt.naive && peak_runq < (uint64_t)opt.min_naive) {
        printf("backlog: FAIL: naive peak_runq %llu < %ld: the backlog did not form\n",
               (unsigned long long)peak_runq, opt.min_naive);
        return 1;
    }
    if (!opt.naive &&
        (peak_runq > (uint64_t)opt.workers + 2 || peak_live > (uint64_t)opt.workers + 1)) {
        printf("backlog: FAIL: fixed peak_runq %llu > %ld or peak_live %llu > %ld\n",
               (unsigned long long)peak_runq, opt.workers + 2, (unsigned long long)peak_live,
               opt.workers + 1);
        return 1;
    }
    return 0;
}
