/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * soak — a mixed workload that checks every result, for running a long
 * time under URG_DEBUG=chaos (stress/soak.sh sets it up).
 *
 * usage: soak [--seconds S] [--round S] [--seed N]
 *
 * It runs rounds of --round seconds (default 10), each one urg_run with a
 * quantum drawn from 100 us to 1 ms, until --seconds have passed, and
 * prints one progress line per round. In every round these run side by
 * side and check what they compute:
 *   libc     malloc/free, snprintf/strtoull round trips, qsort, memcmp
 *   vector   SSE2 arithmetic kept in xmm registers over long loops,
 *            computed twice and compared bit for bit
 *   errno    a task's errno survives preemption and migration
 *   chan     producers and consumers: per-producer FIFO, exact sums
 *   select   one task selecting over two channels and a timeout
 *   echo     TCP echo over loopback through the netpoller
 *   timer    urg_sleep lasts at least what was asked
 *   resize   urg_set_maxprocs to a random 1..4 every few ms
 * The first wrong result prints "soak: WRONG: ..." and exits 1. A watchdog
 * thread that sees no check complete for 60 s prints "soak: HANG", dumps
 * the tasks and exits 3. A crash ends the process with its signal.
 */
#define _GNU_SOURCE
#include <urgent.h>

#include <arpa/inet.h>
#include <emmintrin.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MS 1000000ull

enum { K_LIBC, K_VECTOR, K_ERRNO, K_CHAN, K_SELECT, K_ECHO, K_TIMER, K_RESIZE, K__N };
static const char *const kind_name[K__N] = {"libc",   "vector", "errno", "chan",
                                            "select", "echo",   "timer", "resize"};
static uint64_t checks[K__N]; /* atomic */
static uint64_t last_check;   /* atomic: urg_now() of the latest check */
static int stop;              /* atomic: the round is over */
static urg_wg loops;          /* the tasks that loop until `stop` */

static void wrong(const char *what, uint64_t a, uint64_t b)
{
    fprintf(stderr, "soak: WRONG: %s (%" PRIu64 " vs %" PRIu64 ")\n", what, a, b);
    fflush(stderr);
    _exit(1);
}

/* Also a checkpoint: the cooperative build (the ctest smoke run) switches
 * only at runtime calls, and the libc, vector and errno loops make none. */
static void checked(int kind)
{
    __atomic_fetch_add(&checks[kind], 1, __ATOMIC_RELAXED);
    __atomic_store_n(&last_check, urg_now(), __ATOMIC_RELAXED);
    urg_checkpoint();
}

static int stopping(void) { return __atomic_load_n(&stop, __ATOMIC_ACQUIRE); }

/* xorshift64*: each task its own stream. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

static uint64_t base_seed;
static uint64_t task_seed(uint64_t salt) { return (base_seed ^ (salt * 0x9e3779b97f4a7c15ull)) | 1; }

/* ---- libc ---------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void libc_task(void *arg)
{
    uint64_t s = task_seed((uintptr_t)arg + 100);
    while (!stopping()) {
        size_t n = 1 + rnd(&s) % 4096;
        unsigned char *p = malloc(n);
        if (!p)
            wrong("libc: malloc failed", n, 0);
        unsigned char fill = (unsigned char)rnd(&s);
        memset(p, fill, n);
        uint64_t v = rnd(&s);
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        uint64_t back = strtoull(buf, NULL, 10);
        if (back != v)
            wrong("libc: snprintf/strtoull round trip", back, v);
        uint32_t a[64];
        for (int i = 0; i < 64; i++)
            a[i] = (uint32_t)rnd(&s);
        qsort(a, 64, sizeof(a[0]), cmp_u32);
        for (int i = 1; i < 64; i++)
            if (a[i - 1] > a[i])
                wrong("libc: qsort order", a[i - 1], a[i]);
        for (size_t i = 0; i < n; i++)
            if (p[i] != fill)
                wrong("libc: malloc'd bytes changed", p[i], fill);
        free(p);
        checked(K_LIBC);
    }    urg_wg_done(&loops);
}

/* ---- vector registers ------------------------------------------------- */

/* Long dependency chains in xmm registers: a preemption that lost or mixed
 * up one register makes the two passes disagree. */
__attribute__((noinline)) static void vector_pass(uint64_t seed, double out[8])
{
    __m128d a = _mm_set_pd((double)(seed & 0xffff), 1.0), b = _mm_set_pd(0.5, 0.25);
    __m128d c = _mm_set_pd(3.0, (double)(seed >> 48)), d = _mm_set1_pd(1e-3);
    const __m128d k1 = _mm_set1_pd(0.999), k2 = _mm_set1_pd(1.001);
    for (int i = 0; i < 200000; i++) {
        a = _mm_add_pd(_mm_mul_pd(a, k1), b);
        b = _mm_sub_pd(_mm_mul_pd(b, k2), d);
        c = _mm_add_pd(c, _mm_mul_pd(a, d));
        d = _mm_mul_pd(d, k1);
    }
    _mm_storeu_pd(&out[0], a);
    _mm_storeu_pd(&out[2], b);
    _mm_storeu_pd(&out[4], c);
    _mm_storeu_pd(&out[6], d);
}

static void vector_task(void *arg)
{
    uint64_t s = task_seed((uintptr_t)arg + 200);
    while (!stopping()) {
        uint64_t seed = rnd(&s);
        double x[8], y[8];
        vector_pass(seed, x);
        vector_pass(seed, y);
        if (memcmp(x, y, sizeof(x)) != 0)
            wrong("vector: two passes over the same input differ", seed, 0);
        checked(K_VECTOR);
    }    urg_wg_done(&loops);
}

/* ---- errno ---------------------------------------------------------------- */

/* errno's address, looked up afresh: glibc declares __errno_location
 * const, so the compiler may compute &errno once per function, and after
 * the task moved threads that is the old thread's (docs/preemption.md).
 * Even afresh, a preemption between the lookup and the access would use
 * the old thread's errno (this soak found that in 10 minutes under
 * chaos), so each access runs with preemption disabled: what this checks
 * is that the value is carried across the preemptions in between. */
__attribute__((noipa)) static int *errno_here(void) { return &errno; }

static void errno_set(int v)
{
    urg_preempt_disable();
    *errno_here() = v;
    urg_preempt_enable();
}

static int errno_get(void)
{
    urg_preempt_disable();
    int v = *errno_here();
    urg_preempt_enable();
    return v;
}

static void errno_task(void *arg)
{
    uint64_t s = task_seed((uintptr_t)arg + 300);
    volatile uint64_t sink = 0;
    while (!stopping()) {
        int mine = 1000 + (int)(rnd(&s) % 1000);
        errno_set(mine);
        for (int i = 0; i < 20000; i++) /* long enough to be preempted */
            sink += (uint64_t)i * (uint64_t)mine;
        int e = errno_get();
        if (e != mine)
            wrong("errno: changed under a preemption", (uint64_t)e, (uint64_t)mine);
        urg_preempt_disable(); /* close's errno, read before any preemption */
        int r = close(-1);
        e = *errno_here();
        urg_preempt_enable();
        if (r != -1 || e != EBADF)
            wrong("errno: close(-1) did not give EBADF", (uint64_t)e, EBADF);
        /* errno after an urgent call means nothing (docs/api.md), so no
         * check across this one: it is here to move the task around. */
        urg_yield();
        checked(K_ERRNO);
    }    urg_wg_done(&loops);
}

/* ---- channels ------------------------------------------------------------- */

#define CHAN_PRODUCERS 4
#define CHAN_CONSUMERS 3

struct chanwork {
    urg_chan *c;
    urg_wg producers, consumers;
    uint64_t sent_sum[CHAN_PRODUCERS], sent_n[CHAN_PRODUCERS];
    uint64_t got_sum, got_n; /* atomic */
};

static struct chanwork cw;

static void chan_producer(void *arg)
{
    int id = (int)(uintptr_t)arg;
    for (uint64_t seq = 0; !stopping(); seq++) {
        uint64_t msg = ((uint64_t)id << 56) | seq;
        if (urg_chan_send(cw.c, &msg) != 0)
            wrong("chan: send failed on an open channel", (uint64_t)id, seq);
        cw.sent_sum[id] += seq;
        cw.sent_n[id]++;
    }
    urg_wg_done(&cw.producers);
}

static void chan_consumer(void *arg)
{
    (void)arg;
    uint64_t msg, next[CHAN_PRODUCERS] = {0};
    while (urg_chan_recv(cw.c, &msg) == 0) {
        int id = (int)(msg >> 56);
        uint64_t seq = msg & ((1ull << 56) - 1);
        if (id >= CHAN_PRODUCERS)
            wrong("chan: received a value nobody sent", msg, 0);
        /* The channel is FIFO, so what one consumer receives from one
         * producer comes in the order it was sent. */
        if (seq < next[id])
            wrong("chan: a producer's values out of order", seq, next[id]);
        next[id] = seq + 1;
        __atomic_fetch_add(&cw.got_sum, seq, __ATOMIC_RELAXED);
        __atomic_fetch_add(&cw.got_n, 1, __ATOMIC_RELAXED);
        checked(K_CHAN);
    }
    urg_wg_done(&cw.consumers);
}

/* ---- select --------------------------------------------------------------- */

struct selwork {
    urg_chan *a, *b;
    urg_wg senders, selector;
    uint64_t sent[2]; /* sums, each by its sender */
    uint64_t got[2];
};

static struct selwork sw;

static void sel_sender(void *arg)
{
    int which = (int)(uintptr_t)arg;
    urg_chan *c = which ? sw.b : sw.a;
    for (uint64_t v = 1; !stopping(); v++) {
        if (urg_chan_send(c, &v) != 0)
            wrong("select: send failed on an open channel", (uint64_t)which, v);
        sw.sent[which] += v;
    }
    urg_chan_close(c);
    urg_wg_done(&sw.senders);
}

static void sel_selector(void *arg)
{
    (void)arg;
    uint64_t va = 0, vb = 0;
    int open = 2;
    urg_chan *a = sw.a, *b = sw.b;
    while (open > 0) {
        urg_select_case cs[2] = {{.chan = a, .op = URG_SELECT_RECV, .elem = &va},
                                 {.chan = b, .op = URG_SELECT_RECV, .elem = &vb}};
        int r = urg_select(cs, 2, 1 * MS);
        if (r == -ETIMEDOUT)
            continue;
        if (r != 0 && r != 1)
            wrong("select: unexpected return", (uint64_t)(int64_t)r, 0);
        if (cs[r].result == -EPIPE) {
            if (r == 0)
                a = NULL;
            else
                b = NULL;
            open--;
            continue;
        }
        sw.got[r] += r ? vb : va;
        checked(K_SELECT);
    }
    urg_wg_done(&sw.selector);
}

/* ---- echo over loopback ----------------------------------------------- */

#define ECHO_CLIENTS 4

struct echowork {
    int lfd;
    struct sockaddr_in addr;
    urg_wg done;
};

static struct echowork ew;

static void echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = urg_read(fd, buf, sizeof(buf));
        if (n == 0)
            break;
        if (n < 0)
            wrong("echo: server read failed", (uint64_t)-n, 0);
        if (urg_write(fd, buf, (size_t)n) != n)
            wrong("echo: server write failed", (uint64_t)n, 0);
    }
    close(fd);
    urg_wg_done(&ew.done);
}

static void echo_acceptor(void *arg)
{
    (void)arg;
    for (int i = 0; i < ECHO_CLIENTS; i++) {
        int fd = urg_accept(ew.lfd, NULL, NULL);
        if (fd < 0)
            wrong("echo: accept failed", (uint64_t)-fd, 0);
        urg_wg_add(&ew.done, 1);
        if (urg_go(echo_conn, (void *)(intptr_t)fd) != 0)
            wrong("echo: urg_go failed", 0, 0);
    }
    urg_wg_done(&ew.done);
}

static void echo_client(void *arg)
{
    uint64_t s = task_seed((uintptr_t)arg + 400);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        wrong("echo: socket failed", (uint64_t)errno, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int r = urg_connect(fd, (struct sockaddr *)&ew.addr, sizeof(ew.addr));
    if (r != 0)
        wrong("echo: connect failed", (uint64_t)-r, 0);
    unsigned char out[2048], in[2048];
    while (!stopping()) {
        size_t n = 1 + rnd(&s) % sizeof(out);
        for (size_t i = 0; i < n; i++)
            out[i] = (unsigned char)rnd(&s);
        if (urg_write(fd, out, n) != (ssize_t)n)
            wrong("echo: client write failed", n, 0);
        size_t got = 0;
        while (got < n) {
            ssize_t m = urg_read(fd, in + got, n - got);
            if (m <= 0)
                wrong("echo: client read failed", (uint64_t)-m, got);
            got += (size_t)m;
        }
        if (memcmp(in, out, n) != 0)
            wrong("echo: bytes came back different", n, 0);
        checked(K_ECHO);
    }
    close(fd);
    urg_wg_done(&ew.done);
}

/* ---- timers ------------------------------------------------------------- */

static void timer_task(void *arg)
{
    uint64_t s = task_seed((uintptr_t)arg + 500);
    while (!stopping()) {
        uint64_t d = rnd(&s) % (2 * MS);
        uint64_t t0 = urg_now();
        urg_sleep(d);
        uint64_t el = urg_now() - t0;
        if (el < d)
            wrong("timer: urg_sleep returned early (slept, asked ns)", el, d);
        checked(K_TIMER);
    }    urg_wg_done(&loops);
}

/* ---- maxprocs resizes ----------------------------------------------------- */

static void resize_task(void *arg)
{
    uint64_t s = task_seed((uintptr_t)arg + 600);
    while (!stopping()) {
        int n = 1 + (int)(rnd(&s) % 4);
        int r = urg_set_maxprocs(n);
        if (r < 0)
            wrong("resize: urg_set_maxprocs failed", (uint64_t)-r, (uint64_t)n);
        if (urg_maxprocs() != n)
            wrong("resize: urg_maxprocs after urg_set_maxprocs", (uint64_t)urg_maxprocs(),
                  (uint64_t)n);
        checked(K_RESIZE);
        urg_sleep(1 * MS + rnd(&s) % (10 * MS));
    }    urg_wg_done(&loops);
}

/* ---- a round ------------------------------------------------------------- */

#define NLIBC   3
#define NVECTOR 3
#define NERRNO  3
#define NTIMER  8

static uint64_t round_ns;

static void spawn(urg_fn fn, uintptr_t i)
{
    if (urg_go(fn, (void *)i) != 0)
        wrong("urg_go failed", i, 0);
}

static void round_main(void *arg)
{
    (void)arg;
    memset(&cw, 0, sizeof(cw));
    memset(&sw, 0, sizeof(sw));
    memset(&ew, 0, sizeof(ew));
    cw.c = urg_chan_new(sizeof(uint64_t), 8);
    sw.a = urg_chan_new(sizeof(uint64_t), 0);
    sw.b = urg_chan_new(sizeof(uint64_t), 2);
    if (!cw.c || !sw.a || !sw.b)
        wrong("urg_chan_new failed", 0, 0);

    ew.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ew.addr.sin_family = AF_INET;
    ew.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(ew.addr);
    if (ew.lfd < 0 || bind(ew.lfd, (struct sockaddr *)&ew.addr, sizeof(ew.addr)) != 0 ||
        listen(ew.lfd, 16) != 0 || getsockname(ew.lfd, (struct sockaddr *)&ew.addr, &alen) != 0)
        wrong("echo: listening socket", (uint64_t)errno, 0);

    /* Tasks that end by themselves once `stop` is set. */
    urg_wg_add(&loops, NLIBC + NVECTOR + NERRNO + NTIMER + 1);
    for (uintptr_t i = 0; i < NLIBC; i++)
        spawn(libc_task, i);
    for (uintptr_t i = 0; i < NVECTOR; i++)
        spawn(vector_task, i);
    for (uintptr_t i = 0; i < NERRNO; i++)
        spawn(errno_task, i);
    for (uintptr_t i = 0; i < NTIMER; i++)
        spawn(timer_task, i);
    spawn(resize_task, 0);

    urg_wg_add(&cw.producers, CHAN_PRODUCERS);
    urg_wg_add(&cw.consumers, CHAN_CONSUMERS);
    for (uintptr_t i = 0; i < CHAN_PRODUCERS; i++)
        spawn(chan_producer, i);
    for (uintptr_t i = 0; i < CHAN_CONSUMERS; i++)
        spawn(chan_consumer, i);

    urg_wg_add(&sw.senders, 2);
    urg_wg_add(&sw.selector, 1);
    spawn(sel_sender, 0);
    spawn(sel_sender, 1);
    spawn(sel_selector, 0);

    urg_wg_add(&ew.done, 1 + ECHO_CLIENTS);
    spawn(echo_acceptor, 0);
    for (uintptr_t i = 0; i < ECHO_CLIENTS; i++)
        spawn(echo_client, i);

    urg_sleep(round_ns);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);

    /* Channels: every value sent was received exactly once. */
    urg_wg_wait(&cw.producers);
    urg_chan_close(cw.c);
    urg_wg_wait(&cw.consumers);
    uint64_t sent_sum = 0, sent_n = 0;
    for (int i = 0; i < CHAN_PRODUCERS; i++) {
        sent_sum += cw.sent_sum[i];
        sent_n += cw.sent_n[i];
    }
    if (cw.got_n != sent_n || cw.got_sum != sent_sum)
        wrong("chan: received count vs sent", cw.got_n, sent_n);

    urg_wg_wait(&sw.senders);
    urg_wg_wait(&sw.selector);
    for (int i = 0; i < 2; i++)
        if (sw.got[i] != sw.sent[i])
            wrong("select: sum received vs sent", sw.got[i], sw.sent[i]);

    urg_wg_wait(&ew.done);
    close(ew.lfd);
    urg_chan_free(cw.c);
    urg_chan_free(sw.a);
    urg_chan_free(sw.b);
    urg_wg_wait(&loops);
}

/* ---- watchdog ---------------------------------------------------------- */

static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        sleep(5);
        uint64_t last = __atomic_load_n(&last_check, __ATOMIC_RELAXED);
        if (last && urg_now() - last > 60ull * 1000 * MS) {
            fprintf(stderr, "soak: HANG: no check completed for 60 s; the tasks:\n");
            urg_dump();
            fflush(stderr);
            _exit(3);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = 120, round_s = 10;
    base_seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--round") && i + 1 < argc)
            round_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            base_seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: soak [--seconds S] [--round S] [--seed N]\n");
            return 2;
        }
    }
    if (seconds <= 0 || round_s <= 0) {
        fprintf(stderr, "soak: --seconds and --round must be positive\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    pthread_t wd;
    if (pthread_create(&wd, NULL, watchdog, NULL) != 0)
        return 2;
    uint64_t s = task_seed(7);
    uint64_t t0 = urg_now(), end = t0 + (uint64_t)(seconds * 1e9);
    for (int round = 1; urg_now() < end; round++) {
        uint64_t left = end - urg_now();
        round_ns = (uint64_t)(round_s * 1e9);
        if (round_ns > left)
            round_ns = left;
        urg_config cfg = {.maxprocs = 2, .quantum_ns = 100000 + rnd(&s) % 900001};
        __atomic_store_n(&stop, 0, __ATOMIC_RELEASE);
        urg_wg_init(&loops);
        __atomic_store_n(&last_check, urg_now(), __ATOMIC_RELAXED);
        int r = urg_run(round_main, NULL, &cfg);
        if (r != 0)
            wrong("urg_run failed", (uint64_t)-r, 0);
        printf("soak: %5.0f s, round %d (quantum %" PRIu64 " us):", (double)(urg_now() - t0) / 1e9,
               round, cfg.quantum_ns / 1000);
        for (int k = 0; k < K__N; k++)
            printf(" %s %" PRIu64, kind_name[k], __atomic_load_n(&checks[k], __ATOMIC_RELAXED));
        printf("\n");
        fflush(stdout);
    }
    for (int k = 0; k < K__N; k++)
        if (checks[k] == 0)
            wrong("a kind of check never ran", (uint64_t)k, 0);
    printf("soak: passed, %.0f s, every result checked\n", (double)(urg_now() - t0) / 1e9);
    return 0;
}
