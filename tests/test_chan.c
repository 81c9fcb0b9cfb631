/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_chan.c — channels: the hand-off, the buffer, close and free, and
 * channels shared with threads the runtime does not manage.
 *
 * Channels are the main way tasks talk, so every property a Go programmer
 * leans on is pinned here: an unbuffered send does not return before a
 * receiver took the value; each channel is FIFO (values and blocked
 * senders alike); close lets receivers drain the buffer and then answers
 * -EPIPE with a zeroed element, and wakes every blocked receiver and
 * sender; nothing is lost or duplicated under contention. The lifetime
 * cases (urg_chan_free with tasks blocked on the channel, a channel that
 * outlives urg_run while a task was abandoned on it) matter because the
 * runtime counts references instead of collecting garbage, and a mistake
 * there is a use-after-free that only ASan makes loud.
 *
 * Scheduling-dependent tests run at 1, 2 and 4 procs: at 1 proc every
 * hand-off goes through park/ready on one P; at several, wakeups cross
 * threads and the channel lock is really contended.
 */
#include "testutil.h"

#include <pthread.h>

/* Tests that mean to exercise a blocking path wait until the blocked
 * task is parked on the channel (tu_await_parked*, which fail loudly
 * after a deadline), never for a time that stands for "blocked by now":
 * on a loaded machine, or under a sanitizer, no time is long enough. */

/* ---- unbuffered --------------------------------------------------------- */

struct handoff {
    urg_chan *c;
    uint64_t sender;
    int flag;
    urg_wg wg;
};

static void late_receiver(void *arg)
{
    struct handoff *h = arg;
    tu_await_parked(h->sender, WAIT_CHAN_SEND); /* the sender blocked first */
    __atomic_store_n(&h->flag, 1, __ATOMIC_SEQ_CST);
    uint64_t v = 0;
    CHECK(urg_chan_recv(h->c, &v) == 0);
    CHECK(v == 77);
    urg_wg_done(&h->wg);
}

static void send_blocks_main(void *arg)
{
    (void)arg;
    struct handoff h = {.c = urg_chan_new(sizeof(uint64_t), 0), .sender = urg_task_id()};
    CHECK(h.c != NULL);
    urg_wg_add(&h.wg, 1);
    CHECK(urg_go(late_receiver, &h) == 0);
    uint64_t v = 77;
    CHECK(urg_chan_send(h.c, &v) == 0);
    /* The send may only return once the receiver is in urg_chan_recv. */
    CHECK(__atomic_load_n(&h.flag, __ATOMIC_SEQ_CST) == 1);
    urg_wg_wait(&h.wg);
    urg_chan_free(h.c);
}

static void test_chan_unbuffered_send_blocks_until_recv(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(send_blocks_main, NULL, tu_procs_list[i]);
}

#define FIFO_N 5000

struct fifo {
    urg_chan *c;
    urg_wg wg;
};

static void fifo_consumer(void *arg)
{
    struct fifo *f = arg;
    for (uint64_t i = 0; i < FIFO_N; i++) {
        uint64_t v = ~0ull;
        CHECK(urg_chan_recv(f->c, &v) == 0);
        if (v != i) {
            CHECK(v == i);
            break;
        }
    }
    uint64_t v = 1;
    CHECK(urg_chan_recv(f->c, &v) == -EPIPE);
    CHECK(v == 0);
    urg_wg_done(&f->wg);
}

static void fifo_main(void *arg)
{
    size_t cap = *(size_t *)arg;
    struct fifo f = {.c = urg_chan_new(sizeof(uint64_t), cap)};
    CHECK(f.c != NULL);
    urg_wg_add(&f.wg, 1);
    CHECK(urg_go(fifo_consumer, &f) == 0);
    for (uint64_t i = 0; i < FIFO_N; i++)
        CHECK(urg_chan_send(f.c, &i) == 0);
    CHECK(urg_chan_close(f.c) == 0);
    urg_wg_wait(&f.wg);
    urg_chan_free(f.c);
}

/* One producer, one consumer: the order of values is the order of sends,
 * through the direct hand-off (cap 0) and through a ring that wraps many
 * times (cap 7, not a power of two). */
static void test_chan_fifo_one_producer(void **state)
{
    (void)state;
    static size_t caps[] = {0, 1, 7};
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < NPROCS_LIST; i++)
            RUN_AT(fifo_main, &caps[c], tu_procs_list[i]);
}

/* ---- buffered ----------------------------------------------------------- */

static void buffered_main(void *arg)
{
    (void)arg;
    urg_chan *c = urg_chan_new(sizeof(uint32_t), 5);
    CHECK(c != NULL);
    CHECK(urg_chan_cap(c) == 5);
    CHECK(urg_chan_len(c) == 0);
    uint32_t next_in = 0, next_out = 0, v;
    /* Interleave so sendx/recvx wrap around the ring several times. */
    for (int round = 0; round < 40; round++) {
        int fill = 1 + round % 2; /* at most 3 left over: never blocks */
        for (int k = 0; k < fill; k++) {
            CHECK(urg_chan_send(c, &next_in) == 0);
            next_in++;
        }
        CHECK(urg_chan_len(c) == (int)(next_in - next_out));
        int drain = 1 + (round * 3) % fill;
        for (int k = 0; k < drain; k++) {
            CHECK(urg_chan_recv(c, &v) == 0);
            CHECK(v == next_out);
            next_out++;
        }
        while (next_in - next_out > 3) {
            CHECK(urg_chan_try_recv(c, &v) == 0);
            CHECK(v == next_out);
            next_out++;
        }
    }
    while (urg_chan_try_send(c, &next_in) == 0)
        next_in++;
    CHECK(urg_chan_len(c) == 5);
    CHECK(urg_chan_try_send(c, &next_in) == -EAGAIN);
    CHECK(urg_chan_len(c) == 5);
    while (urg_chan_try_recv(c, &v) == 0) {
        CHECK(v == next_out);
        next_out++;
    }
    CHECK(next_out == next_in);
    CHECK(urg_chan_len(c) == 0);
    CHECK(urg_chan_try_recv(c, &v) == -EAGAIN);
    CHECK(urg_chan_cap(c) == 5);
    urg_chan_free(c);

    urg_chan *u = urg_chan_new(sizeof(uint32_t), 0);
    CHECK(urg_chan_cap(u) == 0);
    CHECK(urg_chan_len(u) == 0);
    CHECK(urg_chan_try_send(u, &v) == -EAGAIN);
    CHECK(urg_chan_len(u) == 0);
    urg_chan_free(u);
}

static void test_chan_buffered_fifo_len_cap(void **state)
{
    (void)state;
    RUN_AT(buffered_main, NULL, 1);
}

struct blocked_sender {
    urg_chan *c;
    uint32_t value;
    int rc;
    urg_wg *wg;
};

static void sender_task(void *arg)
{
    struct blocked_sender *s = arg;
    s->rc = urg_chan_send(s->c, &s->value);
    urg_wg_done(s->wg);
}

/* A full buffer blocks senders; they queue FIFO, and each receive takes
 * the head of the buffer and moves the first blocked sender's value in
 * at the tail, so the receive order is still the send order. */
static void full_main(void *arg)
{
    (void)arg;
    urg_chan *c = urg_chan_new(sizeof(uint32_t), 2);
    urg_wg wg = URG_WG_INITIALIZER;
    struct blocked_sender s[4];
    for (uint32_t i = 0; i < 2; i++)
        CHECK(urg_chan_send(c, &i) == 0);
    for (int i = 0; i < 4; i++) {
        s[i] = (struct blocked_sender){.c = c, .value = 2u + (uint32_t)i, .rc = 1, .wg = &wg};
        urg_wg_add(&wg, 1);
        CHECK(urg_go(sender_task, &s[i]) == 0);
        /* Sender i blocks before sender i+1 starts. */
        tu_await_parked_n(WAIT_CHAN_SEND, i + 1);
    }
    CHECK(urg_chan_len(c) == 2);
    for (int i = 0; i < 4; i++)
        CHECK(__atomic_load_n(&s[i].rc, __ATOMIC_SEQ_CST) == 1); /* all still blocked */
    for (uint32_t i = 0; i < 6; i++) {
        uint32_t v = 99;
        CHECK(urg_chan_recv(c, &v) == 0);
        CHECK(v == i);
    }
    urg_wg_wait(&wg);
    for (int i = 0; i < 4; i++)
        CHECK(s[i].rc == 0);
    CHECK(urg_chan_len(c) == 0);
    urg_chan_free(c);
}

static void test_chan_full_buffer_blocks_senders_fifo(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(full_main, NULL, tu_procs_list[i]);
}

/* ---- close -------------------------------------------------------------- */

static void close_main(void *arg)
{
    (void)arg;
    urg_chan *c = urg_chan_new(sizeof(uint64_t), 4);
    for (uint64_t i = 1; i <= 3; i++)
        CHECK(urg_chan_send(c, &i) == 0);
    CHECK(urg_chan_close(c) == 0);
    CHECK(urg_chan_close(c) == -EPIPE);
    uint64_t v = 5;
    CHECK(urg_chan_send(c, &v) == -EPIPE);
    CHECK(urg_chan_try_send(c, &v) == -EPIPE);
    CHECK(urg_chan_len(c) == 3); /* refused sends added nothing */
    CHECK(urg_chan_recv(c, &v) == 0 && v == 1);
    CHECK(urg_chan_try_recv(c, &v) == 0 && v == 2);
    CHECK(urg_chan_recv(c, &v) == 0 && v == 3);
    v = 0xabababababababab;
    CHECK(urg_chan_recv(c, &v) == -EPIPE);
    CHECK(v == 0);
    v = 0xabababababababab;
    CHECK(urg_chan_try_recv(c, &v) == -EPIPE);
    CHECK(v == 0);
    CHECK(urg_chan_recv(c, NULL) == -EPIPE);
    CHECK(urg_chan_len(c) == 0);
    CHECK(urg_chan_close(c) == -EPIPE);
    urg_chan_free(c); /* freeing a closed channel is fine */

    urg_chan *u = urg_chan_new(sizeof(uint64_t), 0);
    CHECK(urg_chan_close(u) == 0);
    v = 7;
    CHECK(urg_chan_recv(u, &v) == -EPIPE && v == 0);
    CHECK(urg_chan_send(u, &v) == -EPIPE);
    urg_chan_free(u);
}

static void test_chan_close_drains_then_epipe(void **state)
{
    (void)state;
    RUN_AT(close_main, NULL, 1);
}

struct blocked_op {
    urg_chan *c;
    int send;
    int null_elem; /* recv into NULL */
    uint64_t value;
    int rc;
    urg_wg *wg;
};

static void blocked_op_task(void *arg)
{
    struct blocked_op *o = arg;
    int r = o->send ? urg_chan_send(o->c, &o->value)
                    : urg_chan_recv(o->c, o->null_elem ? NULL : &o->value);
    __atomic_store_n(&o->rc, r, __ATOMIC_SEQ_CST);
    urg_wg_done(o->wg);
}

#define NBLOCKED 4

static void spawn_blocked(struct blocked_op *ops, urg_chan *c, int send, urg_wg *wg)
{
    for (int i = 0; i < NBLOCKED; i++) {
        ops[i] = (struct blocked_op){
            .c = c, .send = send, .value = 0x5555555555555555, .rc = 1, .wg = wg};
        urg_wg_add(wg, 1);
        CHECK(urg_go(blocked_op_task, &ops[i]) == 0);
    }
}

/* Close wakes every receiver blocked on an empty channel and every sender
 * blocked on a full or unbuffered one, each with -EPIPE; receivers get a
 * zeroed element. The buffered value stays for receivers to drain. */
static void close_wakes_main(void *arg)
{
    int use_free = *(int *)arg;
    urg_chan *empty = urg_chan_new(sizeof(uint64_t), 0);
    urg_chan *full = urg_chan_new(sizeof(uint64_t), 1);
    urg_chan *unbuf = urg_chan_new(sizeof(uint64_t), 0);
    uint64_t one = 1;
    CHECK(urg_chan_send(full, &one) == 0);
    urg_wg wg = URG_WG_INITIALIZER;
    struct blocked_op recvs[NBLOCKED], sends_full[NBLOCKED], sends_unbuf[NBLOCKED];
    spawn_blocked(recvs, empty, 0, &wg);
    spawn_blocked(sends_full, full, 1, &wg);
    spawn_blocked(sends_unbuf, unbuf, 1, &wg);
    tu_await_parked_n(WAIT_CHAN_RECV, NBLOCKED);
    tu_await_parked_n(WAIT_CHAN_SEND, 2 * NBLOCKED);
    for (int i = 0; i < NBLOCKED; i++) {
        CHECK(__atomic_load_n(&recvs[i].rc, __ATOMIC_SEQ_CST) == 1);
        CHECK(__atomic_load_n(&sends_full[i].rc, __ATOMIC_SEQ_CST) == 1);
        CHECK(__atomic_load_n(&sends_unbuf[i].rc, __ATOMIC_SEQ_CST) == 1);
    }
    if (use_free) {
        /* urg_chan_free must wake them too; the memory must outlive the
         * woken tasks' last look at it (ASan checks that). */
        urg_chan_free(empty);
        urg_chan_free(unbuf);
        CHECK(urg_chan_close(full) == 0);
    } else {
        CHECK(urg_chan_close(empty) == 0);
        CHECK(urg_chan_close(full) == 0);
        CHECK(urg_chan_close(unbuf) == 0);
    }
    urg_wg_wait(&wg);
    for (int i = 0; i < NBLOCKED; i++) {
        CHECK(recvs[i].rc == -EPIPE);
        CHECK(recvs[i].value == 0);
        CHECK(sends_full[i].rc == -EPIPE);
        CHECK(sends_unbuf[i].rc == -EPIPE);
    }
    uint64_t v = 0;
    CHECK(urg_chan_recv(full, &v) == 0 && v == 1);
    CHECK(urg_chan_recv(full, &v) == -EPIPE);
    if (!use_free) {
        urg_chan_free(empty);
        urg_chan_free(unbuf);
    }
    urg_chan_free(full);
}

static void test_chan_close_wakes_blocked_receivers_and_senders(void **state)
{
    (void)state;
    static int no = 0;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(close_wakes_main, &no, tu_procs_list[i]);
}

static void test_chan_free_wakes_blocked_tasks(void **state)
{
    (void)state;
    static int yes = 1;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(close_wakes_main, &yes, tu_procs_list[i]);
}

/* ---- zero-size and large elements, bad arguments ------------------------ */

static void zero_size_main(void *arg)
{
    (void)arg;
    urg_chan *b = urg_chan_new(0, 3);
    CHECK(b != NULL);
    CHECK(urg_chan_cap(b) == 3);
    for (int i = 0; i < 3; i++)
        CHECK(urg_chan_send(b, NULL) == 0);
    CHECK(urg_chan_len(b) == 3);
    CHECK(urg_chan_try_send(b, NULL) == -EAGAIN);
    char junk = 'x';
    CHECK(urg_chan_recv(b, &junk) == 0);
    CHECK(junk == 'x'); /* nothing is copied for a zero-size element */
    CHECK(urg_chan_recv(b, NULL) == 0);
    CHECK(urg_chan_try_recv(b, NULL) == 0);
    CHECK(urg_chan_try_recv(b, NULL) == -EAGAIN);
    CHECK(urg_chan_len(b) == 0);
    CHECK(urg_chan_close(b) == 0);
    CHECK(urg_chan_recv(b, NULL) == -EPIPE);
    urg_chan_free(b);

    /* Unbuffered signal channel: a send is a rendezvous. */
    urg_chan *u = urg_chan_new(0, 0);
    CHECK(u != NULL);
    urg_wg wg = URG_WG_INITIALIZER;
    struct blocked_op r = {.c = u, .send = 0, .value = 0x5555555555555555, .rc = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(blocked_op_task, &r) == 0);
    tu_await_parked_n(WAIT_CHAN_RECV, 1);
    CHECK(__atomic_load_n(&r.rc, __ATOMIC_SEQ_CST) == 1);
    CHECK(urg_chan_send(u, NULL) == 0);
    urg_wg_wait(&wg);
    CHECK(r.rc == 0);
    CHECK(r.value == 0x5555555555555555); /* nothing copied into it */
    urg_chan_free(u);
}

static void test_chan_zero_size_elements(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(zero_size_main, NULL, tu_procs_list[i]);
}

#define BIG 65536

struct big_pair {
    urg_chan *c;
    urg_wg wg;
};

static void big_receiver(void *arg)
{
    struct big_pair *p = arg;
    unsigned char *buf = malloc(BIG);
    CHECK(buf != NULL);
    for (int k = 0; k < 6 && buf; k++) {
        memset(buf, 0, BIG);
        CHECK(urg_chan_recv(p->c, buf) == 0);
        int bad = 0;
        for (size_t i = 0; i < BIG; i++)
            bad |= buf[i] != (unsigned char)(i * 7 + (size_t)k);
        CHECK(!bad);
    }
    free(buf);
    urg_wg_done(&p->wg);
}

/* The largest element size (65536) is copied whole, both through the
 * buffer and sender-to-receiver directly. */
static void big_main(void *arg)
{
    size_t cap = *(size_t *)arg;
    struct big_pair p = {.c = urg_chan_new(BIG, cap)};
    CHECK(p.c != NULL);
    if (!p.c)
        return;
    unsigned char *buf = malloc(BIG);
    urg_wg_add(&p.wg, 1);
    CHECK(urg_go(big_receiver, &p) == 0);
    for (int k = 0; k < 6; k++) {
        for (size_t i = 0; i < BIG; i++)
            buf[i] = (unsigned char)(i * 7 + (size_t)k);
        CHECK(urg_chan_send(p.c, buf) == 0);
    }
    urg_wg_wait(&p.wg);
    free(buf);
    urg_chan_free(p.c);
}

static void test_chan_largest_elements(void **state)
{
    (void)state;
    static size_t caps[] = {0, 2};
    for (int c = 0; c < 2; c++) {
        RUN_AT(big_main, &caps[c], 1);
        RUN_AT(big_main, &caps[c], 2);
    }
}

static void test_chan_bad_arguments(void **state)
{
    (void)state;
    assert_null(urg_chan_new(BIG + 1, 0));
    assert_null(urg_chan_new(BIG + 1, 4));
    assert_null(urg_chan_new(BIG, SIZE_MAX / 2)); /* size overflow */
    uint64_t v = 0;
    assert_int_equal(urg_chan_send(NULL, &v), -EINVAL);
    assert_int_equal(urg_chan_recv(NULL, &v), -EINVAL);
    assert_int_equal(urg_chan_try_send(NULL, &v), -EINVAL);
    assert_int_equal(urg_chan_try_recv(NULL, &v), -EINVAL);
    assert_int_equal(urg_chan_close(NULL), -EINVAL);
    assert_int_equal(urg_chan_len(NULL), -EINVAL);
    assert_int_equal(urg_chan_cap(NULL), -EINVAL);
    urg_chan_free(NULL);
    urg_chan *c = urg_chan_new(sizeof(v), 1);
    assert_non_null(c);
    /* A NULL source for a non-empty element is refused, not dereferenced. */
    assert_int_equal(urg_chan_send(c, NULL), -EINVAL);
    assert_int_equal(urg_chan_try_send(c, NULL), -EINVAL);
    assert_int_equal(urg_chan_len(c), 0);
    urg_chan_free(c);
}

/* ---- try forms ---------------------------------------------------------- */

static void try_main(void *arg)
{
    (void)arg;
    urg_chan *u = urg_chan_new(sizeof(uint64_t), 0);
    uint64_t v = 3;
    /* Unbuffered and nobody waiting: both would block. */
    CHECK(urg_chan_try_send(u, &v) == -EAGAIN);
    CHECK(urg_chan_try_recv(u, &v) == -EAGAIN);
    CHECK(v == 3);

    /* A blocked receiver makes try_send succeed, and it gets the value. */
    urg_wg wg = URG_WG_INITIALIZER;
    struct blocked_op r = {.c = u, .send = 0, .rc = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(blocked_op_task, &r) == 0);
    tu_await_parked_n(WAIT_CHAN_RECV, 1);
    v = 11;
    CHECK(urg_chan_try_send(u, &v) == 0);
    urg_wg_wait(&wg);
    CHECK(r.rc == 0 && r.value == 11);

    /* A blocked sender makes try_recv succeed. */
    struct blocked_op s = {.c = u, .send = 1, .value = 12, .rc = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(blocked_op_task, &s) == 0);
    tu_await_parked_n(WAIT_CHAN_SEND, 1);
    v = 0;
    CHECK(urg_chan_try_recv(u, &v) == 0);
    CHECK(v == 12);
    urg_wg_wait(&wg);
    CHECK(s.rc == 0);
    CHECK(urg_chan_try_recv(u, &v) == -EAGAIN);
    urg_chan_free(u);
}

static void test_chan_try_ops_eagain(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(try_main, NULL, tu_procs_list[i]);
}

/* ---- contention --------------------------------------------------------- */

#define MPMC_PRODUCERS 8
#define MPMC_CONSUMERS 6
#define MPMC_PER       2000
#define MPMC_TOTAL     (MPMC_PRODUCERS * MPMC_PER)

struct mpmc {
    urg_chan *c;
    urg_wg producers, consumers;
    uint8_t seen[MPMC_TOTAL];
    uint64_t sum;
    int producer_ids;
};

static void mpmc_producer(void *arg)
{
    struct mpmc *m = arg;
    uint32_t id = (uint32_t)__atomic_fetch_add(&m->producer_ids, 1, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < MPMC_PER; i++) {
        uint32_t v = id * MPMC_PER + i;
        if (i % 3 == 0) {
            int r;
            while ((r = urg_chan_try_send(m->c, &v)) == -EAGAIN)
                urg_yield();
            CHECK(r == 0);
        } else {
            CHECK(urg_chan_send(m->c, &v) == 0);
        }
    }
    urg_wg_done(&m->producers);
}

static void mpmc_consumer(void *arg)
{
    struct mpmc *m = arg;
    /* A consumer sees a subsequence of each producer's sends, so per
     * producer its values must increase (per-channel FIFO). */
    int64_t last[MPMC_PRODUCERS];
    for (int i = 0; i < MPMC_PRODUCERS; i++)
        last[i] = -1;
    uint64_t sum = 0;
    uint32_t v;
    for (unsigned n = 0;; n++) {
        int r = (n % 4 == 0) ? urg_chan_try_recv(m->c, &v) : urg_chan_recv(m->c, &v);
        if (r == -EAGAIN) {
            urg_yield();
            continue;
        }
        if (r == -EPIPE)
            break;
        CHECK(r == 0);
        CHECK(v < MPMC_TOTAL);
        if (v >= MPMC_TOTAL)
            continue;
        __atomic_fetch_add(&m->seen[v], 1, __ATOMIC_RELAXED);
        uint32_t p = v / MPMC_PER;
        CHECK((int64_t)(v % MPMC_PER) > last[p]);
        last[p] = v % MPMC_PER;
        sum += v;
    }
    __atomic_fetch_add(&m->sum, sum, __ATOMIC_RELAXED);
    urg_wg_done(&m->consumers);
}

static void mpmc_main(void *arg)
{
    size_t cap = *(size_t *)arg;
    struct mpmc *m = calloc(1, sizeof(*m));
    m->c = urg_chan_new(sizeof(uint32_t), cap);
    urg_wg_add(&m->consumers, MPMC_CONSUMERS);
    urg_wg_add(&m->producers, MPMC_PRODUCERS);
    for (int i = 0; i < MPMC_CONSUMERS; i++)
        CHECK(urg_go(mpmc_consumer, m) == 0);
    for (int i = 0; i < MPMC_PRODUCERS; i++)
        CHECK(urg_go(mpmc_producer, m) == 0);
    urg_wg_wait(&m->producers);
    CHECK(urg_chan_close(m->c) == 0);
    urg_wg_wait(&m->consumers);
    int missing = 0, dup = 0;
    for (int i = 0; i < MPMC_TOTAL; i++) {
        missing += m->seen[i] == 0;
        dup += m->seen[i] > 1;
    }
    CHECK(missing == 0);
    CHECK(dup == 0);
    CHECK(m->sum == (uint64_t)MPMC_TOTAL * (MPMC_TOTAL - 1) / 2);
    CHECK(urg_chan_len(m->c) == 0);
    urg_chan_free(m->c);
    free(m);
}

static void test_chan_many_producers_consumers(void **state)
{
    (void)state;
    static size_t caps[] = {0, 16};
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < NPROCS_LIST; i++)
            RUN_AT(mpmc_main, &caps[c], tu_procs_list[i]);
}

/* ---- plain threads ------------------------------------------------------ */

#define PINGS 2000

struct threaded {
    uint64_t main_task;
    g_t *thread_g; /* the thread's stand-in, for tu_await_thread_parked */
    urg_chan *to_task, *to_thread, *stream, *closed_by_task, *closed_by_thread;
    urg_wg wg;
};

static void *plain_thread(void *arg)
{
    struct threaded *t = arg;
    __atomic_store_n(&t->thread_g, tu_thread_g(), __ATOMIC_RELEASE);
    /* Ping-pong: the thread blocks in send and in recv alternately. */
    for (uint64_t i = 0; i < PINGS; i++) {
        CHECK(urg_chan_send(t->to_task, &i) == 0);
        uint64_t v = 0;
        CHECK(urg_chan_recv(t->to_thread, &v) == 0);
        CHECK(v == 2 * i + 1);
    }
    for (uint64_t i = 0; i < PINGS; i++) {
        uint64_t v = ~0ull;
        CHECK(urg_chan_recv(t->stream, &v) == 0);
        CHECK(v == i);
    }
    /* Blocked in recv until a task closes the channel. */
    uint64_t v = 9;
    CHECK(urg_chan_recv(t->closed_by_task, &v) == -EPIPE);
    CHECK(v == 0);
    /* Wake a task blocked on a channel from this thread. */
    tu_await_parked(t->main_task, WAIT_CHAN_RECV);
    CHECK(urg_chan_close(t->closed_by_thread) == 0);
    urg_wg_done(&t->wg);
    return NULL;
}

static void threaded_main(void *arg)
{
    (void)arg;
    struct threaded t = {
        .to_task = urg_chan_new(sizeof(uint64_t), 0),
        .to_thread = urg_chan_new(sizeof(uint64_t), 0),
        .stream = urg_chan_new(sizeof(uint64_t), 3),
        .closed_by_task = urg_chan_new(sizeof(uint64_t), 0),
        .closed_by_thread = urg_chan_new(sizeof(uint64_t), 0),
    };
    t.main_task = urg_task_id();
    urg_wg_add(&t.wg, 1);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, plain_thread, &t) == 0);
    for (uint64_t i = 0; i < PINGS; i++) {
        uint64_t v = ~0ull;
        CHECK(urg_chan_recv(t.to_task, &v) == 0);
        CHECK(v == i);
        v = 2 * v + 1;
        CHECK(urg_chan_send(t.to_thread, &v) == 0);
    }
    for (uint64_t i = 0; i < PINGS; i++)
        CHECK(urg_chan_send(t.stream, &i) == 0);
    tu_await_thread_parked(&t.thread_g, WAIT_CHAN_RECV); /* on closed_by_task */
    CHECK(urg_chan_close(t.closed_by_task) == 0);
    uint64_t v = 4;
    CHECK(urg_chan_recv(t.closed_by_thread, &v) == -EPIPE);
    CHECK(v == 0);
    urg_wg_wait(&t.wg);
    urg_syscall_enter();
    pthread_join(th, NULL);
    urg_syscall_exit();
    urg_chan_free(t.to_task);
    urg_chan_free(t.to_thread);
    urg_chan_free(t.stream);
    urg_chan_free(t.closed_by_task);
    urg_chan_free(t.closed_by_thread);
}

static void test_chan_task_and_plain_thread_both_directions(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(threaded_main, NULL, tu_procs_list[i]);
}

/*
 * A task that blocks on a channel which only a plain thread will complete,
 * before that thread has made any runtime call, is not a deadlock: the
 * deadlock check (urg__checkdead_locked) stays silent while the process
 * has threads the runtime does not own. The thread waits until the task
 * is parked before its first channel call, so every task is asleep and
 * the runtime has not yet heard of the thread. Runs in a child process
 * because the failure would be a fatal abort.
 */
struct late {
    urg_chan *c;
    uint64_t main_task;
};

static void *late_thread(void *arg)
{
    struct late *l = arg;
    tu_await_parked(l->main_task, WAIT_CHAN_RECV);
    uint64_t v = 1;
    CHECK(urg_chan_send(l->c, &v) == 0);
    return NULL;
}

static void late_main(void *arg)
{
    (void)arg;
    struct late l = {.c = urg_chan_new(sizeof(uint64_t), 0), .main_task = urg_task_id()};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, late_thread, &l) == 0);
    uint64_t v = 0;
    CHECK(urg_chan_recv(l.c, &v) == 0);
    CHECK(v == 1);
    urg_syscall_enter();
    pthread_join(th, NULL);
    urg_syscall_exit();
    urg_chan_free(l.c);
}

static int late_child(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2; i++) {
        tu_reset();
        urg_config cfg = {.maxprocs = tu_procs_list[i]};
        if (urg_run(late_main, NULL, &cfg) != 0 || tu_failures != 0) {
            fprintf(stderr, "%s\n", tu_first_failure);
            return 1;
        }
    }
    return 0;
}

static void test_chan_plain_thread_that_starts_late(void **state)
{
    (void)state;
    static struct tu_child res;
    tu_in_child(late_child, NULL, 20, &res);
    if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
        fail_msg("child failed (wait status 0x%x):\n%s", res.status, res.out);
}

/* ---- lifetime across runs ---------------------------------------------- */

struct across {
    urg_chan *buf, *unbuf;
    struct blocked_op stuck_recv, stuck_send;
    urg_wg never;
};

static void across_run1(void *arg)
{
    struct across *a = arg;
    for (uint64_t i = 1; i <= 2; i++)
        CHECK(urg_chan_send(a->buf, &i) == 0);
    /* A task left blocked on the unbuffered channel when main returns: it
     * is abandoned, and its waiter (on its freed stack) must leave the
     * channel. */
    a->stuck_recv = (struct blocked_op){.c = a->unbuf, .send = 0, .rc = 1, .wg = &a->never};
    urg_wg_add(&a->never, 1);
    CHECK(urg_go(blocked_op_task, &a->stuck_recv) == 0);
    tu_await_parked_n(WAIT_CHAN_RECV, 1);
    CHECK(__atomic_load_n(&a->stuck_recv.rc, __ATOMIC_SEQ_CST) == 1);
}

struct recv_into {
    urg_chan *c;
    uint64_t v;
    int rc;
    urg_wg wg;
};

static void recv_into_task(void *arg)
{
    struct recv_into *r = arg;
    r->rc = urg_chan_recv(r->c, &r->v);
    urg_wg_done(&r->wg);
}

static void across_run2(void *arg)
{
    struct across *a = arg;
    struct recv_into r = {.c = a->unbuf, .rc = 1};
    urg_wg_add(&r.wg, 1);
    CHECK(urg_go(recv_into_task, &r) == 0);
    uint64_t v = 42;
    CHECK(urg_chan_send(a->unbuf, &v) == 0);
    urg_wg_wait(&r.wg);
    CHECK(r.rc == 0 && r.v == 42);
    v = 3;
    CHECK(urg_chan_send(a->buf, &v) == 0);
}

static void test_chan_outlives_run(void **state)
{
    (void)state;
    struct across a = {0};
    /* Created before the runtime exists. */
    a.buf = urg_chan_new(sizeof(uint64_t), 4);
    a.unbuf = urg_chan_new(sizeof(uint64_t), 0);
    assert_non_null(a.buf);
    assert_non_null(a.unbuf);
    uint64_t v = 0;
    assert_int_equal(urg_chan_try_recv(a.buf, &v), -EAGAIN);

    RUN_AT(across_run1, &a, 2);

    /* Used from this (plain) thread with no runtime running. */
    assert_int_equal(urg_chan_len(a.buf), 2);
    assert_int_equal(urg_chan_try_recv(a.buf, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(urg_chan_recv(a.buf, &v), 0);
    assert_int_equal(v, 2);
    /* The abandoned receiver is gone: nobody to hand a value to. */
    v = 5;
    assert_int_equal(urg_chan_try_send(a.unbuf, &v), -EAGAIN);
    assert_int_equal(urg_chan_try_recv(a.unbuf, &v), -EAGAIN);

    RUN_AT(across_run2, &a, 1);
    assert_int_equal(urg_chan_recv(a.buf, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(urg_chan_close(a.buf), 0);
    assert_int_equal(urg_chan_recv(a.buf, &v), -EPIPE);
    urg_chan_free(a.buf);
    urg_chan_free(a.unbuf);
}

/* An abandoned blocked sender must not be matched after the run: its
 * value lived on a stack that is gone. */
static void abandon_sender_run(void *arg)
{
    struct across *a = arg;
    a->stuck_send =
        (struct blocked_op){.c = a->unbuf, .send = 1, .value = 66, .rc = 1, .wg = &a->never};
    urg_wg_add(&a->never, 1);
    CHECK(urg_go(blocked_op_task, &a->stuck_send) == 0);
    tu_await_parked_n(WAIT_CHAN_SEND, 1);
    CHECK(__atomic_load_n(&a->stuck_send.rc, __ATOMIC_SEQ_CST) == 1);
}

static void test_chan_abandoned_sender_leaves_channel(void **state)
{
    (void)state;
    struct across a = {0};
    a.unbuf = urg_chan_new(sizeof(uint64_t), 0);
    RUN_AT(abandon_sender_run, &a, 1);
    uint64_t v = 0;
    assert_int_equal(urg_chan_try_recv(a.unbuf, &v), -EAGAIN);
    assert_int_equal(urg_chan_close(a.unbuf), 0);
    urg_chan_free(a.unbuf);
}

/* ---- recv into NULL ----------------------------------------------------- */

static void recv_null_main(void *arg)
{
    (void)arg;
    urg_chan *b = urg_chan_new(sizeof(uint64_t), 3);
    for (uint64_t i = 1; i <= 3; i++)
        CHECK(urg_chan_send(b, &i) == 0);
    CHECK(urg_chan_recv(b, NULL) == 0);     /* drops 1 */
    CHECK(urg_chan_try_recv(b, NULL) == 0); /* drops 2 */
    uint64_t v = 0;
    CHECK(urg_chan_recv(b, &v) == 0 && v == 3);
    urg_chan_free(b);

    /* A blocked sender is released by a receive that discards. */
    urg_chan *u = urg_chan_new(sizeof(uint64_t), 0);
    urg_wg wg = URG_WG_INITIALIZER;
    struct blocked_op s = {.c = u, .send = 1, .value = 8, .rc = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(blocked_op_task, &s) == 0);
    tu_await_parked_n(WAIT_CHAN_SEND, 1);
    CHECK(urg_chan_recv(u, NULL) == 0);
    urg_wg_wait(&wg);
    CHECK(s.rc == 0);
    /* A receive into NULL that blocks first, then gets a value. */
    struct blocked_op r = {.c = u, .send = 0, .null_elem = 1, .value = 1, .rc = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(blocked_op_task, &r) == 0);
    tu_await_parked_n(WAIT_CHAN_RECV, 1);
    CHECK(__atomic_load_n(&r.rc, __ATOMIC_SEQ_CST) == 1);
    v = 21;
    CHECK(urg_chan_send(u, &v) == 0);
    urg_wg_wait(&wg);
    CHECK(r.rc == 0 && r.value == 1);
    urg_chan_free(u);
}

static void test_chan_recv_null_elem(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(recv_null_main, NULL, tu_procs_list[i]);
}

/* ---- group -------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chan_unbuffered_send_blocks_until_recv),
        cmocka_unit_test(test_chan_fifo_one_producer),
        cmocka_unit_test(test_chan_buffered_fifo_len_cap),
        cmocka_unit_test(test_chan_full_buffer_blocks_senders_fifo),
        cmocka_unit_test(test_chan_close_drains_then_epipe),
        cmocka_unit_test(test_chan_close_wakes_blocked_receivers_and_senders),
        cmocka_unit_test(test_chan_free_wakes_blocked_tasks),
        cmocka_unit_test(test_chan_zero_size_elements),
        cmocka_unit_test(test_chan_largest_elements),
        cmocka_unit_test(test_chan_bad_arguments),
        cmocka_unit_test(test_chan_try_ops_eagain),
        cmocka_unit_test(test_chan_many_producers_consumers),
        cmocka_unit_test(test_chan_task_and_plain_thread_both_directions),
        cmocka_unit_test(test_chan_plain_thread_that_starts_late),
        cmocka_unit_test(test_chan_outlives_run),
        cmocka_unit_test(test_chan_abandoned_sender_leaves_channel),
        cmocka_unit_test(test_chan_recv_null_elem),
    };
    return cmocka_run_group_tests(tests, tu_fd_group_setup, tu_fd_group_teardown);
}
