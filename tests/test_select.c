/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_select.c — urg_select, Go's select statement over channels.
 *
 * A select enqueues a waiter on every channel it names and the first party
 * to claim the task (a channel operation, a close, or the timeout timer)
 * wins; the others must find the waiter dead and skip it, and the select
 * must unlink what is left before it returns. Most bugs in that protocol
 * show up as a value completed twice or lost, a stale waiter that a later
 * operation hands a value to after the select returned, or a timeout that
 * fires early or into the wrong wait. So besides the contract (a ready case
 * is chosen, the choice among ready cases is random, timeout 0 never
 * blocks, -ETIMEDOUT no earlier than asked, URG_FOREVER, NULL channels,
 * closed channels give -EPIPE, send cases, one channel in two cases,
 * selects from plain threads), these tests count values end to end under
 * contention, race selects against close and against their own timeout,
 * and check after each timed-out select that no waiter stayed behind.
 */
#include "testutil.h"

#include <pthread.h>

#define MS 1000000ull

/* A test that means the blocking path waits until the task is parked
 * (tu_await_parked*), never for a time that stands for "blocked by now". */

static urg_select_case recv_case(urg_chan *c, void *elem)
{
    return (urg_select_case){.chan = c, .op = URG_SELECT_RECV, .elem = elem, .result = 1};
}

static urg_select_case send_case(urg_chan *c, void *elem)
{
    return (urg_select_case){.chan = c, .op = URG_SELECT_SEND, .elem = elem, .result = 1};
}

/* No waiter of an earlier select may remain on an unbuffered channel:
 * with nobody blocked on it, both try forms would block. */
static int chan_has_no_waiters(urg_chan *c)
{
    uint64_t v = 0;
    return urg_chan_try_send(c, &v) == -EAGAIN && urg_chan_try_recv(c, &v) == -EAGAIN;
}

/* Sends (or closes) at once, or with `after` once that task is parked in
 * a select: then the select under test has taken its blocking path. */
struct delayed {
    urg_chan *c;
    uint64_t after; /* a task id, or 0 */
    uint64_t value;
    int send; /* else close */
    int done;
    urg_wg *wg;
};

static void delayed_task(void *arg)
{
    struct delayed *d = arg;
    if (d->after)
        tu_await_parked(d->after, WAIT_SELECT);
    __atomic_store_n(&d->done, 1, __ATOMIC_SEQ_CST);
    if (d->send)
        CHECK(urg_chan_send(d->c, &d->value) == 0);
    else
        CHECK(urg_chan_close(d->c) == 0);
    if (d->wg)
        urg_wg_done(d->wg);
}

/* ---- basic choice ------------------------------------------------------- */

static void ready_main(void *arg)
{
    (void)arg;
    urg_chan *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = urg_chan_new(sizeof(uint64_t), 1);
    uint64_t v = 41;
    CHECK(urg_chan_send(c[1], &v) == 0);
    uint64_t e[3] = {7, 7, 7};
    urg_select_case k[3] = {recv_case(c[0], &e[0]), recv_case(c[1], &e[1]), recv_case(c[2], &e[2])};
    CHECK(urg_select(k, 3, URG_FOREVER) == 1);
    CHECK(k[1].result == 0);
    CHECK(e[1] == 41);
    CHECK(e[0] == 7 && e[2] == 7); /* cases not chosen are not touched */
    CHECK(urg_chan_len(c[1]) == 0);

    /* A send case with room in the buffer is ready; the recv case is not. */
    v = 5;
    urg_select_case m[2] = {recv_case(c[0], &e[0]), send_case(c[2], &v)};
    CHECK(urg_select(m, 2, 0) == 1);
    CHECK(m[1].result == 0);
    CHECK(urg_chan_len(c[2]) == 1);
    CHECK(urg_chan_recv(c[2], &e[2]) == 0 && e[2] == 5);

    /* A sender blocked on an unbuffered channel makes a recv case ready. */
    urg_chan *u = urg_chan_new(sizeof(uint64_t), 0);
    urg_wg wg = URG_WG_INITIALIZER;
    struct delayed d = {.c = u, .value = 99, .send = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(delayed_task, &d) == 0);
    tu_await_parked_n(WAIT_CHAN_SEND, 1);
    urg_select_case r[2] = {recv_case(c[0], &e[0]), recv_case(u, &e[1])};
    CHECK(urg_select(r, 2, 0) == 1);
    CHECK(e[1] == 99);
    urg_wg_wait(&wg);
    CHECK(chan_has_no_waiters(u));
    urg_chan_free(u);
    for (int i = 0; i < 3; i++)
        urg_chan_free(c[i]);
}

static void test_select_picks_ready_case(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(ready_main, NULL, tu_procs_list[i]);
}

/* Every ready case must be chosen about 1/n of the time. The bounds are
 * far (over 10 sigma) from the mean, so only a biased choice fails. */
static void random_round(int n, int trials, int with_sends)
{
    urg_chan **c = calloc((size_t)n, sizeof(*c));
    urg_select_case *k = calloc((size_t)n, sizeof(*k));
    uint64_t *e = calloc((size_t)n, sizeof(*e));
    int *hits = calloc((size_t)n, sizeof(*hits));
    for (int i = 0; i < n; i++) {
        c[i] = urg_chan_new(sizeof(uint64_t), 1);
        e[i] = (uint64_t)i;
    }
    for (int t = 0; t < trials; t++) {
        for (int i = 0; i < n; i++) {
            int send = with_sends && i % 2;
            /* recv cases need a value; send cases need room. */
            if (!send && urg_chan_len(c[i]) == 0)
                CHECK(urg_chan_send(c[i], &e[i]) == 0);
            if (send && urg_chan_len(c[i]) == 1)
                CHECK(urg_chan_recv(c[i], NULL) == 0);
            e[i] = (uint64_t)i;
            k[i] = send ? send_case(c[i], &e[i]) : recv_case(c[i], &e[i]);
        }
        int r = urg_select(k, (size_t)n, 0);
        CHECK(r >= 0 && r < n);
        if (r < 0 || r >= n)
            break;
        CHECK(k[r].result == 0);
        CHECK(e[r] == (uint64_t)r);
        hits[r]++;
    }
    int expect = trials / n;
    for (int i = 0; i < n; i++) {
        CHECK(hits[i] > expect * 6 / 10);
        CHECK(hits[i] < expect * 14 / 10);
    }
    for (int i = 0; i < n; i++)
        urg_chan_free(c[i]);
    free(c);
    free(k);
    free(e);
    free(hits);
}

static void random_main(void *arg)
{
    (void)arg;
    random_round(3, 3000, 0);
    random_round(4, 4000, 1);
    random_round(12, 12000, 1); /* more cases than fit the select's stack scratch */
}

static void test_select_random_among_ready(void **state)
{
    (void)state;
    RUN_AT(random_main, NULL, 1);
    RUN_AT(random_main, NULL, 4);
}

/* ---- timeouts ----------------------------------------------------------- */

static void timeout_one(uint64_t timeout)
{
    urg_chan *u = urg_chan_new(sizeof(uint64_t), 0);
    urg_chan *b = urg_chan_new(sizeof(uint64_t), 1);
    uint64_t full = 1;
    CHECK(urg_chan_send(b, &full) == 0);
    uint64_t e = 3, s = 4;
    urg_select_case k[2] = {recv_case(u, &e), send_case(b, &s)};
    uint64_t t0 = urg_now();
    int r = urg_select(k, 2, timeout);
    uint64_t el = urg_now() - t0;
    CHECK(r == -ETIMEDOUT);
    CHECK(el >= timeout);
    CHECK(el < timeout + 5000 * MS); /* it does end */
    CHECK(e == 3);
    CHECK(chan_has_no_waiters(u));
    /* The timed-out send case left nothing in b and is not queued: a
     * receive gets the old value, then nothing. */
    uint64_t v = 0;
    CHECK(urg_chan_try_recv(b, &v) == 0 && v == 1);
    CHECK(urg_chan_try_recv(b, &v) == -EAGAIN);
    urg_chan_free(u);
    urg_chan_free(b);
}

struct tmo_group {
    urg_wg wg;
};

static void timeout_task(void *arg)
{
    struct tmo_group *g = arg;
    static const uint64_t ts[] = {1 * MS, 3 * MS, 10 * MS, 25 * MS};
    for (int i = 0; i < 4; i++)
        timeout_one(ts[i]);
    urg_wg_done(&g->wg);
}

static void timeout_main(void *arg)
{
    (void)arg;
    timeout_one(100000); /* 100 us */
    timeout_one(20 * MS);
    /* Several timed selects at once, spread over the procs. */
    struct tmo_group g = {0};
    urg_wg_add(&g.wg, 8);
    for (int i = 0; i < 8; i++)
        CHECK(urg_go(timeout_task, &g) == 0);
    urg_wg_wait(&g.wg);
}

static void test_select_timeout_no_earlier_than_asked(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(timeout_main, NULL, tu_procs_list[i]);
}

static void zero_timeout_main(void *arg)
{
    (void)arg;
    urg_chan *u = urg_chan_new(sizeof(uint64_t), 0);
    urg_chan *b = urg_chan_new(sizeof(uint64_t), 2);
    uint64_t e = 0, one = 1;
    urg_select_case k[2] = {recv_case(u, &e), recv_case(b, &e)};
    for (int i = 0; i < 1000; i++)
        CHECK(urg_select(k, 2, 0) == -EAGAIN);
    CHECK(chan_has_no_waiters(u));
    CHECK(urg_chan_send(b, &one) == 0);
    CHECK(urg_select(k, 2, 0) == 1);
    CHECK(e == 1 && k[1].result == 0);
    CHECK(urg_select(k, 2, 0) == -EAGAIN);
    urg_chan_free(u);
    urg_chan_free(b);
}

static void test_select_zero_timeout_never_blocks(void **state)
{
    (void)state;
    RUN_AT(zero_timeout_main, NULL, 1);
    RUN_AT(zero_timeout_main, NULL, 2);
}

static void forever_main(void *arg)
{
    (void)arg;
    urg_chan *u = urg_chan_new(sizeof(uint64_t), 0);
    urg_chan *idle = urg_chan_new(sizeof(uint64_t), 0);
    urg_wg wg = URG_WG_INITIALIZER;
    struct delayed d = {.c = u, .after = urg_task_id(), .value = 123, .send = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(delayed_task, &d) == 0);
    uint64_t e = 0, junk = 0;
    urg_select_case k[2] = {recv_case(idle, &junk), recv_case(u, &e)};
    CHECK(urg_select(k, 2, URG_FOREVER) == 1);
    CHECK(__atomic_load_n(&d.done, __ATOMIC_SEQ_CST) == 1);
    CHECK(e == 123);
    urg_wg_wait(&wg);
    CHECK(chan_has_no_waiters(idle));
    CHECK(chan_has_no_waiters(u));
    urg_chan_free(u);
    urg_chan_free(idle);
}

static void test_select_forever_blocks_until_ready(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(forever_main, NULL, tu_procs_list[i]);
}

/* ---- NULL channels ------------------------------------------------------ */

struct nil_forever {
    int returned;
};

static void nil_forever_task(void *arg)
{
    struct nil_forever *n = arg;
    urg_select_case k[2] = {recv_case(NULL, NULL), send_case(NULL, NULL)};
    (void)urg_select(k, 2, URG_FOREVER);
    __atomic_store_n(&n->returned, 1, __ATOMIC_SEQ_CST);
}

static void nil_main(void *arg)
{
    (void)arg;
    urg_chan *b = urg_chan_new(sizeof(uint64_t), 1);
    uint64_t v = 8, e = 0;
    CHECK(urg_chan_send(b, &v) == 0);
    urg_select_case k[3] = {recv_case(NULL, &e), recv_case(b, &e), send_case(NULL, &v)};
    CHECK(urg_select(k, 3, URG_FOREVER) == 1);
    CHECK(e == 8);

    /* Only NULL channels: nothing can ever be ready. */
    urg_select_case n[2] = {recv_case(NULL, &e), send_case(NULL, &v)};
    CHECK(urg_select(n, 2, 0) == -EAGAIN);
    uint64_t t0 = urg_now();
    CHECK(urg_select(n, 2, 10 * MS) == -ETIMEDOUT);
    CHECK(urg_now() - t0 >= 10 * MS);
    CHECK(urg_select(NULL, 0, 0) == -EAGAIN);
    t0 = urg_now();
    CHECK(urg_select(NULL, 0, 5 * MS) == -ETIMEDOUT);
    CHECK(urg_now() - t0 >= 5 * MS);

    /* ... and with no timeout it blocks for good, like Go's select {}. */
    static struct nil_forever nf;
    nf.returned = 0;
    CHECK(urg_go(nil_forever_task, &nf) == 0);
    tu_await_parked_n(WAIT_SELECT_FOREVER, 1);
    CHECK(__atomic_load_n(&nf.returned, __ATOMIC_SEQ_CST) == 0);
    urg_chan_free(b);
    /* Returning abandons the blocked task. */
}

static void test_select_null_channels_ignored(void **state)
{
    (void)state;
    RUN_AT(nil_main, NULL, 1);
    RUN_AT(nil_main, NULL, 2);
}

/* ---- closed channels ---------------------------------------------------- */

struct blocked_select {
    urg_select_case k[2];
    uint64_t e[2];
    int r;
    urg_wg *wg;
};

static void blocked_select_task(void *arg)
{
    struct blocked_select *b = arg;
    int r = urg_select(b->k, 2, URG_FOREVER);
    __atomic_store_n(&b->r, r, __ATOMIC_SEQ_CST);
    urg_wg_done(b->wg);
}

static void closed_main(void *arg)
{
    int use_free = *(int *)arg;
    urg_chan *open_c = urg_chan_new(sizeof(uint64_t), 0);
    urg_chan *closed = urg_chan_new(sizeof(uint64_t), 2);
    uint64_t v = 17, e = 0xffff;
    CHECK(urg_chan_send(closed, &v) == 0);
    CHECK(urg_chan_close(closed) == 0);

    /* A closed channel with buffered data still delivers it first. */
    urg_select_case k[2] = {recv_case(open_c, &e), recv_case(closed, &e)};
    CHECK(urg_select(k, 2, URG_FOREVER) == 1);
    CHECK(k[1].result == 0 && e == 17);
    /* Then the case is chosen with -EPIPE and a zeroed element. */
    e = 0xffff;
    CHECK(urg_select(k, 2, URG_FOREVER) == 1);
    CHECK(k[1].result == -EPIPE);
    CHECK(e == 0);
    /* A send case on a closed channel is chosen too, with -EPIPE. */
    urg_select_case s[2] = {recv_case(open_c, &e), send_case(closed, &v)};
    CHECK(urg_select(s, 2, 0) == 1);
    CHECK(s[1].result == -EPIPE);
    CHECK(chan_has_no_waiters(open_c));

    /* Blocked selects are woken by close (or free) with -EPIPE. */
    urg_chan *a = urg_chan_new(sizeof(uint64_t), 0);
    urg_chan *full = urg_chan_new(sizeof(uint64_t), 1);
    CHECK(urg_chan_send(full, &v) == 0);
    urg_wg wg = URG_WG_INITIALIZER;
    struct blocked_select br = {.wg = &wg, .r = 100, .e = {5, 5}};
    br.k[0] = recv_case(open_c, &br.e[0]);
    br.k[1] = recv_case(a, &br.e[1]);
    struct blocked_select bs = {.wg = &wg, .r = 100, .e = {5, 5}};
    bs.k[0] = recv_case(open_c, &bs.e[0]);
    bs.k[1] = send_case(full, &bs.e[1]);
    urg_wg_add(&wg, 2);
    CHECK(urg_go(blocked_select_task, &br) == 0);
    CHECK(urg_go(blocked_select_task, &bs) == 0);
    tu_await_parked_n(WAIT_SELECT, 2);
    CHECK(__atomic_load_n(&br.r, __ATOMIC_SEQ_CST) == 100);
    CHECK(__atomic_load_n(&bs.r, __ATOMIC_SEQ_CST) == 100);
    if (use_free) {
        urg_chan_free(a);
    } else {
        CHECK(urg_chan_close(a) == 0);
    }
    CHECK(urg_chan_close(full) == 0);
    urg_wg_wait(&wg);
    CHECK(br.r == 1 && br.k[1].result == -EPIPE && br.e[1] == 0);
    CHECK(bs.r == 1 && bs.k[1].result == -EPIPE);
    CHECK(chan_has_no_waiters(open_c));
    /* The blocked send put nothing in: only the old value is there. */
    uint64_t x = 0;
    CHECK(urg_chan_recv(full, &x) == 0 && x == 17);
    CHECK(urg_chan_recv(full, &x) == -EPIPE);
    if (!use_free)
        urg_chan_free(a);
    urg_chan_free(full);
    urg_chan_free(open_c);
    urg_chan_free(closed);
}

static void test_select_closed_channel_chosen_with_epipe(void **state)
{
    (void)state;
    static int no = 0, yes = 1;
    for (int i = 0; i < NPROCS_LIST; i++) {
        RUN_AT(closed_main, &no, tu_procs_list[i]);
        RUN_AT(closed_main, &yes, tu_procs_list[i]);
    }
}

/* ---- send cases --------------------------------------------------------- */

struct receiver {
    urg_chan *c;
    uint64_t after; /* a task id: receive once it is parked in a select */
    uint64_t v;
    int rc;
    urg_wg *wg;
};

static void receiver_task(void *arg)
{
    struct receiver *r = arg;
    if (r->after)
        tu_await_parked(r->after, WAIT_SELECT);
    r->rc = urg_chan_recv(r->c, &r->v);
    urg_wg_done(r->wg);
}

static void send_main(void *arg)
{
    (void)arg;
    urg_chan *u = urg_chan_new(sizeof(uint64_t), 0);
    urg_chan *other = urg_chan_new(sizeof(uint64_t), 0);
    urg_wg wg = URG_WG_INITIALIZER;

    /* A receiver already blocked: the send case completes at once. */
    struct receiver r1 = {.c = u, .rc = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(receiver_task, &r1) == 0);
    tu_await_parked_n(WAIT_CHAN_RECV, 1);
    uint64_t v = 31, junk = 0;
    urg_select_case k[2] = {recv_case(other, &junk), send_case(u, &v)};
    CHECK(urg_select(k, 2, 0) == 1);
    CHECK(k[1].result == 0);
    urg_wg_wait(&wg);
    CHECK(r1.rc == 0 && r1.v == 31);

    /* The select blocks in the send case until a receiver comes. */
    struct receiver r2 = {.c = u, .after = urg_task_id(), .rc = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(receiver_task, &r2) == 0);
    v = 32;
    k[0] = recv_case(other, &junk);
    k[1] = send_case(u, &v);
    CHECK(urg_select(k, 2, URG_FOREVER) == 1);
    urg_wg_wait(&wg);
    CHECK(r2.rc == 0 && r2.v == 32);
    CHECK(chan_has_no_waiters(other));

    /* When the recv case wins, the send case's value goes nowhere. */
    urg_wg_add(&wg, 1);
    struct delayed d = {.c = other, .after = urg_task_id(), .value = 77, .send = 1, .wg = &wg};
    CHECK(urg_go(delayed_task, &d) == 0);
    v = 33;
    k[0] = recv_case(other, &junk);
    k[1] = send_case(u, &v);
    CHECK(urg_select(k, 2, URG_FOREVER) == 0);
    CHECK(junk == 77);
    urg_wg_wait(&wg);
    CHECK(chan_has_no_waiters(u));
    urg_chan_free(u);
    urg_chan_free(other);
}

static void test_select_send_cases(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(send_main, NULL, tu_procs_list[i]);
}

/* ---- one channel in two cases ------------------------------------------- */

static void same_chan_main(void *arg)
{
    (void)arg;
    urg_chan *b = urg_chan_new(sizeof(uint64_t), 1);
    uint64_t v = 5, e[2] = {0, 0};
    CHECK(urg_chan_send(b, &v) == 0);
    urg_select_case k[2] = {recv_case(b, &e[0]), recv_case(b, &e[1])};
    int r = urg_select(k, 2, 0);
    CHECK(r == 0 || r == 1);
    if (r == 0 || r == 1)
        CHECK(e[r] == 5 && e[1 - r] == 0);
    CHECK(urg_chan_len(b) == 0);

    /* Blocked on both: one sender completes exactly one of them, and the
     * other waiter is gone afterwards. */
    urg_chan *u = urg_chan_new(sizeof(uint64_t), 0);
    urg_wg wg = URG_WG_INITIALIZER;
    struct delayed d = {.c = u, .after = urg_task_id(), .value = 6, .send = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(delayed_task, &d) == 0);
    e[0] = e[1] = 0;
    k[0] = recv_case(u, &e[0]);
    k[1] = recv_case(u, &e[1]);
    r = urg_select(k, 2, URG_FOREVER);
    CHECK(r == 0 || r == 1);
    if (r == 0 || r == 1)
        CHECK(e[r] == 6 && e[1 - r] == 0);
    urg_wg_wait(&wg);
    CHECK(chan_has_no_waiters(u));

    /* Send and receive on one unbuffered channel: a select must never
     * complete with itself. */
    v = 9;
    urg_select_case sr[2] = {send_case(u, &v), recv_case(u, &e[0])};
    CHECK(urg_select(sr, 2, 10 * MS) == -ETIMEDOUT);
    CHECK(chan_has_no_waiters(u));

    /* With a partner, the matching case is chosen. */
    struct receiver rcv = {.c = u, .after = urg_task_id(), .rc = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(receiver_task, &rcv) == 0);
    sr[0] = send_case(u, &v);
    sr[1] = recv_case(u, &e[0]);
    CHECK(urg_select(sr, 2, URG_FOREVER) == 0);
    urg_wg_wait(&wg);
    CHECK(rcv.rc == 0 && rcv.v == 9);
    d = (struct delayed){.c = u, .after = urg_task_id(), .value = 10, .send = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(delayed_task, &d) == 0);
    e[0] = 0;
    sr[0] = send_case(u, &v);
    sr[1] = recv_case(u, &e[0]);
    CHECK(urg_select(sr, 2, URG_FOREVER) == 1);
    CHECK(e[0] == 10);
    urg_wg_wait(&wg);
    CHECK(chan_has_no_waiters(u));
    urg_chan_free(u);
    urg_chan_free(b);
}

static void test_select_same_channel_in_two_cases(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(same_chan_main, NULL, tu_procs_list[i]);
}

/* ---- many cases --------------------------------------------------------- */

#define MANY 20

static void many_main(void *arg)
{
    (void)arg;
    urg_chan *c[MANY];
    urg_select_case k[MANY];
    uint64_t e[MANY] = {0};
    for (int i = 0; i < MANY; i++) {
        c[i] = urg_chan_new(sizeof(uint64_t), 0);
        k[i] = recv_case(c[i], &e[i]);
    }
    urg_wg wg = URG_WG_INITIALIZER;
    struct delayed d = {.c = c[17], .after = urg_task_id(), .value = 1717, .send = 1, .wg = &wg};
    urg_wg_add(&wg, 1);
    CHECK(urg_go(delayed_task, &d) == 0);
    CHECK(urg_select(k, MANY, URG_FOREVER) == 17);
    CHECK(e[17] == 1717);
    urg_wg_wait(&wg);
    CHECK(urg_select(k, MANY, 2 * MS) == -ETIMEDOUT);
    for (int i = 0; i < MANY; i++) {
        CHECK(chan_has_no_waiters(c[i]));
        urg_chan_free(c[i]);
    }
}

static void test_select_many_cases_blocking(void **state)
{
    (void)state;
    RUN_AT(many_main, NULL, 1);
    RUN_AT(many_main, NULL, 4);
}

/* ---- bad arguments ------------------------------------------------------ */

static void bad_main(void *arg)
{
    (void)arg;
    urg_chan *b = urg_chan_new(sizeof(uint64_t), 1);
    uint64_t v = 1, e = 0;
    CHECK(urg_chan_send(b, &v) == 0);
    CHECK(urg_select(NULL, 1, 0) == -EINVAL);
    urg_select_case k[2] = {recv_case(b, &e), recv_case(b, &e)};
    k[1].op = 0;
    CHECK(urg_select(k, 2, 0) == -EINVAL);
    k[1].op = 3;
    CHECK(urg_select(k, 2, URG_FOREVER) == -EINVAL);
    /* A send case with no value on a channel with non-empty elements. */
    urg_chan *room = urg_chan_new(sizeof(uint64_t), 1);
    k[1] = send_case(room, NULL);
    CHECK(urg_select(k, 2, 0) == -EINVAL);
    /* A refused select did nothing: the value is still there. */
    CHECK(e == 0);
    CHECK(urg_chan_len(b) == 1);
    CHECK(urg_chan_len(room) == 0);
    /* The same send with no value is fine on a zero-size channel. */
    urg_chan *sig = urg_chan_new(0, 1);
    urg_select_case z[1] = {send_case(sig, NULL)};
    CHECK(urg_select(z, 1, 0) == 0);
    CHECK(urg_chan_len(sig) == 1);
    urg_chan_free(sig);
    urg_chan_free(room);
    urg_chan_free(b);
}

static void test_select_bad_cases_refused(void **state)
{
    (void)state;
    RUN_AT(bad_main, NULL, 1);
}

/* ---- plain threads ------------------------------------------------------ */

struct threaded {
    g_t *thread_g; /* the thread's stand-in, for tu_await_thread_parked */
    urg_chan *u, *idle, *closing, *ack;
    urg_wg wg;
};

static void *select_thread(void *arg)
{
    struct threaded *t = arg;
    __atomic_store_n(&t->thread_g, tu_thread_g(), __ATOMIC_RELEASE);
    uint64_t e = 0, junk = 0;
    urg_select_case k[2] = {recv_case(t->idle, &junk), recv_case(t->u, &e)};

    CHECK(urg_select(k, 2, 0) == -EAGAIN);

    uint64_t t0 = urg_now();
    CHECK(urg_select(k, 2, 20 * MS) == -ETIMEDOUT);
    CHECK(urg_now() - t0 >= 20 * MS);
    CHECK(chan_has_no_waiters(t->u));

    /* Forever: a task sends after a while. */
    uint64_t go = 1;
    CHECK(urg_chan_send(t->ack, &go) == 0);
    CHECK(urg_select(k, 2, URG_FOREVER) == 1);
    CHECK(e == 100);

    /* A long timeout that a task's send cuts short. */
    CHECK(urg_chan_send(t->ack, &go) == 0);
    t0 = urg_now();
    CHECK(urg_select(k, 2, 10000 * MS) == 1);
    CHECK(urg_now() - t0 < 5000 * MS);
    CHECK(e == 101);

    /* A send case completed by a task's receive. */
    CHECK(urg_chan_send(t->ack, &go) == 0);
    uint64_t out = 102;
    urg_select_case s[2] = {recv_case(t->idle, &junk), send_case(t->u, &out)};
    CHECK(urg_select(s, 2, URG_FOREVER) == 1);

    /* Woken by a task's close. */
    CHECK(urg_chan_send(t->ack, &go) == 0);
    urg_select_case c[2] = {recv_case(t->idle, &junk), recv_case(t->closing, &e)};
    e = 4;
    CHECK(urg_select(c, 2, 10000 * MS) == 1);
    CHECK(c[1].result == -EPIPE && e == 0);
    CHECK(chan_has_no_waiters(t->idle));
    urg_wg_done(&t->wg);
    return NULL;
}

static void threaded_main(void *arg)
{
    (void)arg;
    struct threaded t = {
        .u = urg_chan_new(sizeof(uint64_t), 0),
        .idle = urg_chan_new(sizeof(uint64_t), 0),
        .closing = urg_chan_new(sizeof(uint64_t), 0),
        .ack = urg_chan_new(sizeof(uint64_t), 0),
    };
    urg_wg_add(&t.wg, 1);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, select_thread, &t) == 0);
    uint64_t go = 0;
    CHECK(urg_chan_recv(t.ack, &go) == 0);
    tu_await_thread_parked(&t.thread_g, WAIT_SELECT);
    uint64_t v = 100;
    CHECK(urg_chan_send(t.u, &v) == 0);
    CHECK(urg_chan_recv(t.ack, &go) == 0);
    tu_await_thread_parked(&t.thread_g, WAIT_SELECT);
    v = 101;
    CHECK(urg_chan_send(t.u, &v) == 0);
    CHECK(urg_chan_recv(t.ack, &go) == 0);
    tu_await_thread_parked(&t.thread_g, WAIT_SELECT);
    CHECK(urg_chan_recv(t.u, &v) == 0 && v == 102);
    CHECK(urg_chan_recv(t.ack, &go) == 0);
    tu_await_thread_parked(&t.thread_g, WAIT_SELECT);
    CHECK(urg_chan_close(t.closing) == 0);
    urg_wg_wait(&t.wg);
    urg_syscall_enter();
    pthread_join(th, NULL);
    urg_syscall_exit();
    urg_chan_free(t.u);
    urg_chan_free(t.idle);
    urg_chan_free(t.closing);
    urg_chan_free(t.ack);
}

static void test_select_from_plain_thread(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(threaded_main, NULL, tu_procs_list[i]);
}

/* With no runtime at all: the test body is a plain thread. */
static void test_select_outside_runtime(void **state)
{
    (void)state;
    urg_chan *b = urg_chan_new(sizeof(uint64_t), 1);
    urg_chan *u = urg_chan_new(sizeof(uint64_t), 0);
    uint64_t v = 3, e = 0;
    assert_int_equal(urg_chan_send(b, &v), 0);
    urg_select_case k[2] = {recv_case(u, &e), recv_case(b, &e)};
    assert_int_equal(urg_select(k, 2, URG_FOREVER), 1);
    assert_int_equal(e, 3);
    assert_int_equal(urg_select(k, 2, 0), -EAGAIN);
    uint64_t t0 = urg_now();
    assert_int_equal(urg_select(k, 2, 15 * MS), -ETIMEDOUT);
    assert_true(urg_now() - t0 >= 15 * MS);
    assert_true(chan_has_no_waiters(u));
    assert_int_equal(urg_select(NULL, 0, 2 * MS), -ETIMEDOUT);
    urg_chan_free(b);
    urg_chan_free(u);
}

/* ---- races -------------------------------------------------------------- */

#define RACE_ITERS 400

struct race {
    urg_chan *a, *b;
    int go;
    urg_wg wg;
};

static void racing_closer(void *arg)
{
    struct race *r = arg;
    while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
        urg_yield();
    CHECK(urg_chan_close(r->a) == 0);
    urg_wg_done(&r->wg);
}

static void racing_sender(void *arg)
{
    struct race *r = arg;
    while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
        urg_yield();
    uint64_t v = 55;
    CHECK(urg_chan_send(r->b, &v) == 0);
    urg_wg_done(&r->wg);
}

/* A select on {a, b} while one task closes a and another sends into b
 * (buffered, so the sender never blocks): exactly one case is chosen,
 * and b's value is either received by the select or still in b. */
static void close_race_main(void *arg)
{
    (void)arg;
    int chose_close = 0, chose_value = 0;
    for (int it = 0; it < RACE_ITERS; it++) {
        struct race r = {.a = urg_chan_new(sizeof(uint64_t), 0),
                         .b = urg_chan_new(sizeof(uint64_t), 1)};
        urg_wg_add(&r.wg, 2);
        CHECK(urg_go(racing_closer, &r) == 0);
        CHECK(urg_go(racing_sender, &r) == 0);
        uint64_t e[2] = {9, 9};
        urg_select_case k[2] = {recv_case(r.a, &e[0]), recv_case(r.b, &e[1])};
        __atomic_store_n(&r.go, 1, __ATOMIC_RELEASE);
        if (it % 2)
            urg_yield(); /* sometimes let them go first */
        int x = urg_select(k, 2, URG_FOREVER);
        urg_wg_wait(&r.wg);
        if (x == 0) {
            chose_close++;
            CHECK(k[0].result == -EPIPE && e[0] == 0);
            CHECK(urg_chan_len(r.b) == 1);
        } else {
            chose_value++;
            CHECK(x == 1);
            CHECK(k[1].result == 0 && e[1] == 55);
            CHECK(urg_chan_len(r.b) == 0);
        }
        urg_chan_free(r.a);
        urg_chan_free(r.b);
    }
    CHECK(chose_close + chose_value == RACE_ITERS);
}

static void test_select_races_with_close(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(close_race_main, NULL, tu_procs_list[i]);
}

/* Selects with very short timeouts against senders, so completion by a
 * channel and by the timer collide often. Every value must be received
 * exactly once; a select that timed out must have waited its timeout; and
 * a later sleep must not be cut short (a timer that fired for an earlier,
 * already completed select must not wake a later wait). */
#define TR_SELECTORS 4
#define TR_SENDERS   4
#define TR_PER       1500
#define TR_TOTAL     (TR_SENDERS * TR_PER)

struct tmo_race {
    urg_chan *c;
    uint8_t seen[TR_TOTAL];
    int received;
    int sender_ids;
    urg_wg wg;
};

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void tr_sender(void *arg)
{
    struct tmo_race *t = arg;
    uint32_t id = (uint32_t)__atomic_fetch_add(&t->sender_ids, 1, __ATOMIC_RELAXED);
    uint64_t rs = 0x9e3779b97f4a7c15ull * (id + 1);
    for (uint32_t i = 0; i < TR_PER; i++) {
        uint32_t v = id * TR_PER + i;
        CHECK(urg_chan_send(t->c, &v) == 0);
        if (xorshift(&rs) % 4 == 0)
            urg_sleep(xorshift(&rs) % 50000);
    }
    urg_wg_done(&t->wg);
}

static void tr_selector(void *arg)
{
    struct tmo_race *t = arg;
    uint64_t rs = urg_now() | 1;
    while (__atomic_load_n(&t->received, __ATOMIC_ACQUIRE) < TR_TOTAL) {
        uint32_t v = UINT32_MAX;
        uint64_t tmo = 1000 + xorshift(&rs) % 100000;
        urg_select_case k[1] = {recv_case(t->c, &v)};
        uint64_t t0 = urg_now();
        int r = urg_select(k, 1, tmo);
        uint64_t el = urg_now() - t0;
        if (r == 0) {
            CHECK(k[0].result == 0);
            CHECK(v < TR_TOTAL);
            if (v < TR_TOTAL)
                __atomic_fetch_add(&t->seen[v], 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&t->received, 1, __ATOMIC_RELEASE);
        } else {
            CHECK(r == -ETIMEDOUT);
            CHECK(el >= tmo);
        }
        if (xorshift(&rs) % 8 == 0) {
            uint64_t d = xorshift(&rs) % 30000;
            t0 = urg_now();
            urg_sleep(d);
            CHECK(urg_now() - t0 >= d);
        }
    }
    urg_wg_done(&t->wg);
}

static void tmo_race_main(void *arg)
{
    (void)arg;
    struct tmo_race *t = calloc(1, sizeof(*t));
    t->c = urg_chan_new(sizeof(uint32_t), 0);
    urg_wg_add(&t->wg, TR_SELECTORS + TR_SENDERS);
    for (int i = 0; i < TR_SELECTORS; i++)
        CHECK(urg_go(tr_selector, t) == 0);
    for (int i = 0; i < TR_SENDERS; i++)
        CHECK(urg_go(tr_sender, t) == 0);
    urg_wg_wait(&t->wg);
    int bad = 0;
    for (int i = 0; i < TR_TOTAL; i++)
        bad += t->seen[i] != 1;
    CHECK(bad == 0);
    CHECK(chan_has_no_waiters(t->c));
    urg_chan_free(t->c);
    free(t);
}

/* Runs fn at each proc count, `rounds` times, in a child process: a race
 * that the runtime turns into a fatal error then fails this test instead
 * of killing the whole area. */
struct child_job {
    urg_fn fn;
    int rounds;
};

static int child_runner(void *arg)
{
    struct child_job *j = arg;
    for (int r = 0; r < j->rounds; r++) {
        for (int i = 0; i < NPROCS_LIST; i++) {
            tu_reset();
            urg_config cfg = {.maxprocs = tu_procs_list[i]};
            if (urg_run(j->fn, NULL, &cfg) != 0) {
                fprintf(stderr, "urg_run failed\n");
                return 1;
            }
            if (tu_failures) {
                fprintf(stderr, "round %d at %d procs: %s\n", r, tu_procs_list[i],
                        tu_first_failure);
                return 1;
            }
        }
    }
    return 0;
}

static void run_in_child(urg_fn fn, int rounds)
{
    static struct tu_child res;
    struct child_job job = {.fn = fn, .rounds = rounds};
    tu_in_child(child_runner, &job, 50, &res);
    if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0) {
        res.out[2000] = 0; /* the message, not the whole task dump */
        fail_msg("child failed (wait status 0x%x):\n%s", res.status, res.out);
    }
}

/*
 * A select whose timeout fires just as a channel completes it: exactly one
 * of them wins, and a fire that lost must not touch the task afterwards —
 * not while it runs, and not once it waits in its next select or sleep
 * (which a stale fire would cut short). timer.c settles it with one CAS on
 * the task's timer_seq, and a cancel waits for a fire in progress.
 */
static void test_select_timeout_races_with_send(void **state)
{
    (void)state;
    run_in_child(tmo_race_main, 6);
}

/* ---- contention --------------------------------------------------------- */

#define SC_PRODUCERS 6
#define SC_CONSUMERS 6
#define SC_PER       1500
#define SC_TOTAL     (SC_PRODUCERS * SC_PER)

struct contend {
    urg_chan *a, *b;
    uint8_t seen[SC_TOTAL];
    uint64_t sum;
    int ids;
    int chose[2];
    urg_wg producers, consumers;
};

/* Producers pick a channel by select; consumers select over both and drop
 * a channel from the set once it is closed (Go's nil-channel idiom). */
static void sc_producer(void *arg)
{
    struct contend *s = arg;
    uint32_t id = (uint32_t)__atomic_fetch_add(&s->ids, 1, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < SC_PER; i++) {
        uint32_t v = id * SC_PER + i;
        urg_select_case k[2] = {send_case(s->a, &v), send_case(s->b, &v)};
        int r = urg_select(k, 2, URG_FOREVER);
        CHECK(r == 0 || r == 1);
        if (r == 0 || r == 1) {
            CHECK(k[r].result == 0);
            __atomic_fetch_add(&s->chose[r], 1, __ATOMIC_RELAXED);
        }
    }
    urg_wg_done(&s->producers);
}

static void sc_consumer(void *arg)
{
    struct contend *s = arg;
    uint32_t v;
    urg_select_case k[2] = {recv_case(s->a, &v), recv_case(s->b, &v)};
    uint64_t sum = 0;
    while (k[0].chan || k[1].chan) {
        int r = urg_select(k, 2, URG_FOREVER);
        CHECK(r == 0 || r == 1);
        if (r != 0 && r != 1)
            break;
        if (k[r].result == -EPIPE) {
            k[r].chan = NULL;
            continue;
        }
        CHECK(k[r].result == 0);
        CHECK(v < SC_TOTAL);
        if (v < SC_TOTAL)
            __atomic_fetch_add(&s->seen[v], 1, __ATOMIC_RELAXED);
        sum += v;
    }
    __atomic_fetch_add(&s->sum, sum, __ATOMIC_RELAXED);
    urg_wg_done(&s->consumers);
}

static void contend_main(void *arg)
{
    size_t cap = *(size_t *)arg;
    struct contend *s = calloc(1, sizeof(*s));
    s->a = urg_chan_new(sizeof(uint32_t), cap);
    s->b = urg_chan_new(sizeof(uint32_t), cap);
    urg_wg_add(&s->producers, SC_PRODUCERS);
    urg_wg_add(&s->consumers, SC_CONSUMERS);
    for (int i = 0; i < SC_CONSUMERS; i++)
        CHECK(urg_go(sc_consumer, s) == 0);
    for (int i = 0; i < SC_PRODUCERS; i++)
        CHECK(urg_go(sc_producer, s) == 0);
    urg_wg_wait(&s->producers);
    CHECK(urg_chan_close(s->a) == 0);
    CHECK(urg_chan_close(s->b) == 0);
    urg_wg_wait(&s->consumers);
    int bad = 0;
    for (int i = 0; i < SC_TOTAL; i++)
        bad += s->seen[i] != 1;
    CHECK(bad == 0);
    CHECK(s->sum == (uint64_t)SC_TOTAL * (SC_TOTAL - 1) / 2);
    /* Both channels carried a real share. */
    CHECK(s->chose[0] > SC_TOTAL / 10 && s->chose[1] > SC_TOTAL / 10);
    urg_chan_free(s->a);
    urg_chan_free(s->b);
    free(s);
}

static void test_select_many_selectors_contend(void **state)
{
    (void)state;
    static size_t caps[] = {0, 4};
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < NPROCS_LIST; i++)
            RUN_AT(contend_main, &caps[c], tu_procs_list[i]);
}

/* ---- group -------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_picks_ready_case),
        cmocka_unit_test(test_select_random_among_ready),
        cmocka_unit_test(test_select_timeout_no_earlier_than_asked),
        cmocka_unit_test(test_select_zero_timeout_never_blocks),
        cmocka_unit_test(test_select_forever_blocks_until_ready),
        cmocka_unit_test(test_select_null_channels_ignored),
        cmocka_unit_test(test_select_closed_channel_chosen_with_epipe),
        cmocka_unit_test(test_select_send_cases),
        cmocka_unit_test(test_select_same_channel_in_two_cases),
        cmocka_unit_test(test_select_many_cases_blocking),
        cmocka_unit_test(test_select_bad_cases_refused),
        cmocka_unit_test(test_select_from_plain_thread),
        cmocka_unit_test(test_select_outside_runtime),
        cmocka_unit_test(test_select_races_with_close),
        cmocka_unit_test(test_select_timeout_races_with_send),
        cmocka_unit_test(test_select_many_selectors_contend),
    };
    return cmocka_run_group_tests(tests, tu_fd_group_setup, tu_fd_group_teardown);
}
