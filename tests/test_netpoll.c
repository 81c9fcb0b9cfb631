/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_netpoll.c — urg_read, urg_write, urg_accept and urg_connect: the
 * I/O calls that park a task (not its thread) until a descriptor is ready.
 *
 * Why these tests: the whole point of the netpoller is that a task waiting
 * for I/O costs no thread. The sharpest way to see that is at one proc: a
 * task blocked on a pipe while another task keeps running and eventually
 * writes the data the first one waits for. If the read blocked the thread,
 * the writer would never run and the test would hang; a watchdog thread
 * turns such a hang into a failure with a message instead of a ctest
 * timeout.
 *
 * The calls must work whether or not the caller set O_NONBLOCK (the
 * runtime must not flip the flag for good on a descriptor it does not
 * own), so most tests run on both kinds, on pipes (read/write) and on
 * socketpairs (recv/send), at one proc and at several. Also: EOF, large
 * writes that need many wakeups, TCP accept/connect over loopback, many
 * descriptors at once, bad descriptors, and plain threads (which simply
 * block), several tasks parked on one descriptor (all park, none spins,
 * none is lost), and urg_close waking them. Descriptor leaks are checked
 * at the end of each test.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

/* Child results are big (64 KiB of output): static, and never leaked when
 * an assertion jumps out of a test. */
static struct tu_child child_res;

/* ---- descriptor helpers ---- */

enum kind { K_PIPE, K_SOCKETPAIR };

/* make_pair: fds[0] reads, fds[1] writes. */
static void make_pair(enum kind k, bool nonblock, int fds[2])
{
    if (k == K_PIPE)
        assert_int_equal(pipe2(fds, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0)), 0);
    else
        assert_int_equal(socketpair(AF_UNIX,
                                    SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0,
                                    fds),
                         0);
}

static int fl(int fd) { return fcntl(fd, F_GETFL); }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- a reader parks, a writer on the same proc runs and wakes it ---- */

struct park_case {
    int fds[2];
    int flags_before[2];
    int reader_waiting; /* atomic */
    int reader_done;    /* atomic */
    uint64_t reader_id; /* atomic: set before reader_waiting */
    int writer_spins;
    ssize_t nread;
    char got[16];
    urg_wg wg;
};

static void park_reader(void *arg)
{
    struct park_case *c = arg;
    __atomic_store_n(&c->reader_id, urg_task_id(), __ATOMIC_RELEASE);
    __atomic_store_n(&c->reader_waiting, 1, __ATOMIC_SEQ_CST);
    c->nread = urg_read(c->fds[0], c->got, sizeof(c->got));
    __atomic_store_n(&c->reader_done, 1, __ATOMIC_SEQ_CST);
    urg_wg_done(&c->wg);
}

static void park_writer(void *arg)
{
    struct park_case *c = arg;
    while (!__atomic_load_n(&c->reader_waiting, __ATOMIC_SEQ_CST))
        urg_yield();
    /* The reader's read took the blocking path: its task is parked in the
     * netpoller (at one proc, we could not even run otherwise). */
    tu_await_parked(__atomic_load_n(&c->reader_id, __ATOMIC_ACQUIRE), WAIT_IO);
    /* Run a while with the reader blocked: at one proc this is only
     * possible if its read parked the task rather than the thread. */
    uint64_t until = urg_now() + 20 * 1000 * 1000;
    while (urg_now() < until) {
        c->writer_spins++;
        urg_yield();
    }
    CHECK(!__atomic_load_n(&c->reader_done, __ATOMIC_SEQ_CST));
    CHECK(urg_write(c->fds[1], "hello", 5) == 5);
    urg_wg_done(&c->wg);
}

static void park_main(void *arg)
{
    struct park_case *c = arg;
    urg_wg_add(&c->wg, 2);
    CHECK(urg_go(park_reader, c) == 0);
    CHECK(urg_go(park_writer, c) == 0);
    urg_wg_wait(&c->wg);
}

static void run_park_case(enum kind k, bool nonblock)
{
    for (int i = 0; i < NPROCS_LIST; i++) {
        int fds0 = tu_open_fds();
        struct park_case c;
        memset(&c, 0, sizeof(c));
        make_pair(k, nonblock, c.fds);
        c.flags_before[0] = fl(c.fds[0]);
        c.flags_before[1] = fl(c.fds[1]);
        tu_reset();
        tu_wd_start(10, "park case");
        tu_run(park_main, &c, tu_procs_list[i]);
        tu_wd_stop();
        assert_checks_ok();
        assert_int_equal(c.nread, 5);
        assert_memory_equal(c.got, "hello", 5);
        assert_true(c.writer_spins > 0);
        /* The runtime must not leave O_NONBLOCK changed on our fds. */
        assert_int_equal(fl(c.fds[0]), c.flags_before[0]);
        assert_int_equal(fl(c.fds[1]), c.flags_before[1]);
        close(c.fds[0]);
        close(c.fds[1]);
        assert_int_equal(tu_open_fds(), fds0);
    }
}

static void test_netpoll_pipe_read_parks_task_blocking_fd(void **state)
{
    (void)state;
    run_park_case(K_PIPE, false);
}

static void test_netpoll_pipe_read_parks_task_nonblocking_fd(void **state)
{
    (void)state;
    run_park_case(K_PIPE, true);
}

static void test_netpoll_socket_read_parks_task_blocking_fd(void **state)
{
    (void)state;
    run_park_case(K_SOCKETPAIR, false);
}

static void test_netpoll_socket_read_parks_task_nonblocking_fd(void **state)
{
    (void)state;
    run_park_case(K_SOCKETPAIR, true);
}

/* ---- EOF ---- */

struct eof_case {
    int fds[2];
    int reader_waiting; /* atomic */
    uint64_t reader_id; /* atomic: set before reader_waiting */
    ssize_t first, second;
    urg_wg wg;
    enum kind kind;
};

static void eof_reader(void *arg)
{
    struct eof_case *c = arg;
    char b[8];
    __atomic_store_n(&c->reader_id, urg_task_id(), __ATOMIC_RELEASE);
    __atomic_store_n(&c->reader_waiting, 1, __ATOMIC_SEQ_CST);
    c->first = urg_read(c->fds[0], b, sizeof(b));  /* parked when the writer closes */
    c->second = urg_read(c->fds[0], b, sizeof(b)); /* already at EOF */
    urg_wg_done(&c->wg);
}

static void eof_closer(void *arg)
{
    struct eof_case *c = arg;
    while (!__atomic_load_n(&c->reader_waiting, __ATOMIC_SEQ_CST))
        urg_yield();
    /* The EOF must wake a parked reader, not meet one about to read. */
    tu_await_parked(__atomic_load_n(&c->reader_id, __ATOMIC_ACQUIRE), WAIT_IO);
    if (c->kind == K_SOCKETPAIR)
        CHECK(shutdown(c->fds[1], SHUT_WR) == 0);
    else
        CHECK(close(c->fds[1]) == 0);
    urg_wg_done(&c->wg);
}

static void eof_main(void *arg)
{
    struct eof_case *c = arg;
    urg_wg_add(&c->wg, 2);
    CHECK(urg_go(eof_reader, c) == 0);
    CHECK(urg_go(eof_closer, c) == 0);
    urg_wg_wait(&c->wg);
}

static void test_netpoll_eof_returns_zero(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        for (int nb = 0; nb < 2; nb++) {
            for (int i = 0; i < 2; i++) {
                struct eof_case c;
                memset(&c, 0, sizeof(c));
                c.kind = (enum kind)k;
                make_pair(c.kind, nb, c.fds);
                tu_reset();
                tu_wd_start(10, "eof");
                tu_run(eof_main, &c, i == 0 ? 1 : 4);
                tu_wd_stop();
                assert_checks_ok();
                assert_int_equal(c.first, 0);
                assert_int_equal(c.second, 0);
                close(c.fds[0]);
                if (c.kind == K_SOCKETPAIR)
                    close(c.fds[1]);
            }
        }
    }
}

/* ---- a large write completes in full through a small pipe buffer ---- */

#define BIG (1u << 20)

struct big_case {
    int fds[2];
    unsigned char *src, *dst;
    ssize_t written;
    size_t got;
    ssize_t eof;
    int reads;
    urg_wg wg;
};

static void big_writer(void *arg)
{
    struct big_case *c = arg;
    c->written = urg_write(c->fds[1], c->src, BIG);
    close(c->fds[1]);
    urg_wg_done(&c->wg);
}

static void big_reader(void *arg)
{
    struct big_case *c = arg;
    while (c->got < BIG) {
        /* Odd sizes, so reads and writes do not line up. */
        size_t want = BIG - c->got < 12345 ? BIG - c->got : 12345;
        ssize_t r = urg_read(c->fds[0], c->dst + c->got, want);
        CHECK(r > 0);
        if (r <= 0)
            break;
        c->got += (size_t)r;
        c->reads++;
    }
    char b;
    c->eof = urg_read(c->fds[0], &b, 1);
    urg_wg_done(&c->wg);
}

static void big_main(void *arg)
{
    struct big_case *c = arg;
    urg_wg_add(&c->wg, 2);
    /* The writer first: at one proc it fills the buffer and must park
     * for the reader to run at all. */
    CHECK(urg_go(big_writer, c) == 0);
    CHECK(urg_go(big_reader, c) == 0);
    urg_wg_wait(&c->wg);
}

static void run_big(enum kind k, bool nonblock)
{
    unsigned char *src = malloc(BIG), *dst = malloc(BIG);
    assert_non_null(src);
    assert_non_null(dst);
    for (size_t i = 0; i < BIG; i++)
        src[i] = (unsigned char)(i * 31 + i / 251);
    for (int i = 0; i < NPROCS_LIST; i++) {
        struct big_case c;
        memset(&c, 0, sizeof(c));
        memset(dst, 0, BIG);
        c.src = src;
        c.dst = dst;
        make_pair(k, nonblock, c.fds);
        int before = fl(c.fds[1]);
        tu_reset();
        tu_wd_start(20, "1 MiB write");
        tu_run(big_main, &c, tu_procs_list[i]);
        tu_wd_stop();
        assert_checks_ok();
        assert_int_equal(c.written, BIG);
        assert_int_equal(c.got, BIG);
        assert_int_equal(c.eof, 0);
        assert_true(memcmp(src, dst, BIG) == 0);
        assert_true(c.reads > 1);
        assert_int_equal(fl(c.fds[0]) & O_NONBLOCK, before & O_NONBLOCK);
        close(c.fds[0]);
    }
    free(src);
    free(dst);
}

static void test_netpoll_write_1mib_pipe_blocking(void **state)
{
    (void)state;
    run_big(K_PIPE, false);
}

static void test_netpoll_write_1mib_pipe_nonblocking(void **state)
{
    (void)state;
    run_big(K_PIPE, true);
}

static void test_netpoll_write_1mib_socketpair(void **state)
{
    (void)state;
    run_big(K_SOCKETPAIR, false);
    run_big(K_SOCKETPAIR, true);
}

/* ---- TCP over loopback: accept and connect park too ---- */

struct tcp_case {
    int listener;
    struct sockaddr_in addr;
    bool client_nonblock;
    int server_waiting;
    uint64_t server_id; /* atomic: set before server_waiting */
    int accepted;
    int connect_ret;
    int client_flags_before, client_flags_after;
    char server_got[8], client_got[8];
    ssize_t client_eof;
    urg_wg wg;
};

static ssize_t read_full(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = urg_read(fd, buf + got, n - got);
        if (r <= 0)
            return r;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static void tcp_server(void *arg)
{
    struct tcp_case *c = arg;
    struct sockaddr_in peer;
    socklen_t plen = sizeof(peer);
    __atomic_store_n(&c->server_id, urg_task_id(), __ATOMIC_RELEASE);
    __atomic_store_n(&c->server_waiting, 1, __ATOMIC_SEQ_CST);
    int fd = urg_accept(c->listener, (struct sockaddr *)&peer, &plen);
    CHECK(fd >= 0);
    if (fd >= 0) {
        c->accepted = 1;
        CHECK(plen == sizeof(peer) && peer.sin_family == AF_INET);
        CHECK(read_full(fd, c->server_got, 4) == 4);
        CHECK(urg_write(fd, "pong", 4) == 4);
        close(fd);
    }
    urg_wg_done(&c->wg);
}

static void tcp_client(void *arg)
{
    struct tcp_case *c = arg;
    /* Connect only once the server is parked in accept: the connection
     * must wake it through the netpoller. */
    while (!__atomic_load_n(&c->server_waiting, __ATOMIC_SEQ_CST))
        urg_yield();
    tu_await_parked(__atomic_load_n(&c->server_id, __ATOMIC_ACQUIRE), WAIT_IO);
    int fd =
        socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (c->client_nonblock ? SOCK_NONBLOCK : 0), 0);
    CHECK(fd >= 0);
    c->client_flags_before = fl(fd);
    c->connect_ret = urg_connect(fd, (struct sockaddr *)&c->addr, sizeof(c->addr));
    c->client_flags_after = fl(fd);
    if (c->connect_ret == 0) {
        CHECK(urg_write(fd, "ping", 4) == 4);
        CHECK(read_full(fd, c->client_got, 4) == 4);
        char b;
        c->client_eof = urg_read(fd, &b, 1);
    }
    close(fd);
    urg_wg_done(&c->wg);
}

static void tcp_main(void *arg)
{
    struct tcp_case *c = arg;
    urg_wg_add(&c->wg, 2);
    CHECK(urg_go(tcp_server, c) == 0);
    CHECK(urg_go(tcp_client, c) == 0);
    urg_wg_wait(&c->wg);
}

static int tcp_listener(struct sockaddr_in *addr)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)addr, sizeof(*addr)), 0);
    socklen_t len = sizeof(*addr);
    assert_int_equal(getsockname(l, (struct sockaddr *)addr, &len), 0);
    assert_int_equal(listen(l, 16), 0);
    return l;
}

static void test_netpoll_tcp_accept_connect_loopback(void **state)
{
    (void)state;
    for (int nb = 0; nb < 2; nb++) {
        for (int i = 0; i < NPROCS_LIST; i++) {
            int fds0 = tu_open_fds();
            struct tcp_case c;
            memset(&c, 0, sizeof(c));
            c.listener = tcp_listener(&c.addr);
            int lflags = fl(c.listener);
            c.client_nonblock = nb;
            tu_reset();
            tu_wd_start(10, "tcp accept/connect");
            tu_run(tcp_main, &c, tu_procs_list[i]);
            tu_wd_stop();
            assert_checks_ok();
            assert_int_equal(c.connect_ret, 0);
            assert_true(c.accepted);
            assert_memory_equal(c.server_got, "ping", 4);
            assert_memory_equal(c.client_got, "pong", 4);
            assert_int_equal(c.client_eof, 0);
            /* connect may flip O_NONBLOCK for its duration only. */
            assert_int_equal(c.client_flags_after, c.client_flags_before);
            assert_int_equal(fl(c.listener), lflags);
            close(c.listener);
            assert_int_equal(tu_open_fds(), fds0);
        }
    }
}

struct refused_case {
    struct sockaddr_in addr;
    int ret;
};

static void refused_main(void *arg)
{
    struct refused_case *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    c->ret = urg_connect(fd, (struct sockaddr *)&c->addr, sizeof(c->addr));
    close(fd);
}

static void test_netpoll_connect_refused(void **state)
{
    (void)state;
    struct refused_case c;
    /* A port that was just bound and released: nobody listens there. */
    int l = tcp_listener(&c.addr);
    close(l);
    tu_reset();
    tu_wd_start(10, "connect refused");
    tu_run(refused_main, &c, 1);
    tu_wd_stop();
    assert_checks_ok();
    assert_int_equal(c.ret, -ECONNREFUSED);
}

/* ---- many descriptors at once ---- */

#define NPAIRS 100
#define ROUNDS 50

struct pp_pair {
    int fds[2];
    int rounds_done;
    uint32_t last;
};

struct pp_case {
    struct pp_pair pairs[NPAIRS];
    urg_wg wg;
};

static void pp_ping(void *arg)
{
    struct pp_pair *p = arg;
    uint32_t v = 0;
    for (int r = 0; r < ROUNDS; r++) {
        CHECK(urg_write(p->fds[0], &v, sizeof(v)) == sizeof(v));
        uint32_t back = 0;
        CHECK(read_full(p->fds[0], (char *)&back, sizeof(back)) == sizeof(back));
        CHECK(back == v + 1);
        v = back + 1;
        p->rounds_done++;
    }
    p->last = v;
}

static void pp_pong(void *arg)
{
    struct pp_pair *p = arg;
    for (int r = 0; r < ROUNDS; r++) {
        uint32_t v = 0;
        CHECK(read_full(p->fds[1], (char *)&v, sizeof(v)) == sizeof(v));
        v++;
        CHECK(urg_write(p->fds[1], &v, sizeof(v)) == sizeof(v));
    }
}

static struct pp_case *pp_cur;

static void pp_task(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    if (i & 1)
        pp_pong(&pp_cur->pairs[i / 2]);
    else
        pp_ping(&pp_cur->pairs[i / 2]);
    urg_wg_done(&pp_cur->wg);
}

static void pp_main(void *arg)
{
    struct pp_case *c = arg;
    urg_wg_add(&c->wg, 2 * NPAIRS);
    /* Pong tasks first, so at one proc every one of them is parked in a
     * read before any ping starts. */
    for (uintptr_t i = 0; i < NPAIRS; i++)
        CHECK(urg_go(pp_task, (void *)(2 * i + 1)) == 0);
    for (uintptr_t i = 0; i < NPAIRS; i++)
        CHECK(urg_go(pp_task, (void *)(2 * i)) == 0);
    urg_wg_wait(&c->wg);
}

static void test_netpoll_many_socketpairs_ping_pong(void **state)
{
    (void)state;
    struct pp_case *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    pp_cur = c;
    for (int i = 0; i < NPROCS_LIST; i++) {
        int fds0 = tu_open_fds();
        memset(c, 0, sizeof(*c));
        for (int k = 0; k < NPAIRS; k++)
            make_pair(K_SOCKETPAIR, k & 1, c->pairs[k].fds);
        tu_reset();
        tu_wd_start(30, "100 socketpairs");
        tu_run(pp_main, c, tu_procs_list[i]);
        tu_wd_stop();
        assert_checks_ok();
        for (int k = 0; k < NPAIRS; k++) {
            assert_int_equal(c->pairs[k].rounds_done, ROUNDS);
            assert_int_equal(c->pairs[k].last, 2 * ROUNDS);
            close(c->pairs[k].fds[0]);
            close(c->pairs[k].fds[1]);
        }
        assert_int_equal(tu_open_fds(), fds0);
    }
    free(c);
}

/* ---- bad descriptors ---- */

struct badfd_case {
    int closed_fd;
    int reg_fd;
};

static void badfd_check(struct badfd_case *c)
{
    char b[4] = {0};
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    CHECK(urg_read(-1, b, 1) == -EBADF);
    CHECK(urg_write(-1, b, 1) == -EBADF);
    CHECK(urg_accept(-1, NULL, NULL) == -EBADF);
    CHECK(urg_connect(-1, (struct sockaddr *)&a, sizeof(a)) == -EBADF);
    CHECK(urg_read(c->closed_fd, b, 1) == -EBADF);
    CHECK(urg_write(c->closed_fd, b, 1) == -EBADF);
    CHECK(urg_accept(c->closed_fd, (struct sockaddr *)&a, &alen) == -EBADF);
    CHECK(urg_connect(c->closed_fd, (struct sockaddr *)&a, sizeof(a)) == -EBADF);
    /* A descriptor that is open but not a socket. */
    CHECK(urg_accept(c->reg_fd, NULL, NULL) == -ENOTSOCK);
    CHECK(urg_connect(c->reg_fd, (struct sockaddr *)&a, sizeof(a)) == -ENOTSOCK);
}

static void badfd_main(void *arg) { badfd_check(arg); }

static void test_netpoll_bad_fd_ebadf(void **state)
{
    (void)state;
    struct badfd_case c;
    /* A high number known to be free (a freshly closed low one would be
     * reused by the runtime's own epoll descriptor). */
    c.closed_fd = 1000;
    while (fcntl(c.closed_fd, F_GETFD) >= 0)
        c.closed_fd++;
    c.reg_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    assert_true(c.reg_fd >= 0);
    for (int i = 0; i < 2; i++) {
        tu_reset();
        tu_run(badfd_main, &c, i == 0 ? 1 : 2);
        assert_checks_ok();
    }
    /* Outside the runtime the same answers. */
    tu_reset();
    badfd_check(&c);
    assert_checks_ok();
    close(c.reg_fd);
}

/* ---- other errors ---- */

struct err_case {
    int broken_w; /* write end of a pipe whose read end is closed */
    int live[2];  /* an open pipe */
    int file_fd;
};

static void err_check(struct err_case *c)
{
    char b[16];
    struct sockaddr_in a;
    /* SIGPIPE is ignored in this process, so the error is returned. */
    CHECK(urg_write(c->broken_w, "x", 1) == -EPIPE);
    CHECK(urg_read(c->live[0], NULL, 1) == -EFAULT);
    CHECK(urg_write(c->live[1], NULL, 1) == -EFAULT);
    CHECK(urg_accept(c->file_fd, (struct sockaddr *)&a, NULL) == -EINVAL);
    CHECK(urg_connect(c->file_fd, NULL, sizeof(a)) == -EINVAL);
    CHECK(urg_write(c->live[1], b, 0) == 0);
    /* Regular files are always ready; epoll cannot watch them. */
    CHECK(lseek(c->file_fd, 0, SEEK_SET) == 0);
    CHECK(urg_read(c->file_fd, b, 5) == 5 && memcmp(b, "Name:", 5) == 0);
}

static void err_main(void *arg) { err_check(arg); }

static void test_netpoll_other_errors(void **state)
{
    (void)state;
    struct err_case c;
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    c.broken_w = p[1];
    assert_int_equal(pipe(c.live), 0);
    c.file_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    assert_true(c.file_fd >= 0);
    tu_reset();
    tu_wd_start(10, "errors");
    tu_run(err_main, &c, 1);
    tu_wd_stop();
    assert_checks_ok();
    /* Outside a task, the same answers. */
    err_check(&c);
    assert_checks_ok();
    close(c.broken_w);
    close(c.live[0]);
    close(c.live[1]);
    close(c.file_fd);
}

/* ---- calls that read(2) or write(2) would answer at once ----
 *
 * read(2) with a count of 0 returns 0 without waiting for data, and
 * reading the write end of a pipe (or writing its read end) fails with
 * EBADF at once; urg_read/urg_write must not park the task instead. A
 * plain thread unblocks a wrong wait after a while (writes a byte, or
 * closes the other end), so such a wait fails the test instead of hanging
 * it. */

enum quick_op { Q_READ0, Q_READ_WRITE_END, Q_WRITE_READ_END };

struct quick_case {
    enum quick_op op;
    int fds[2];
    int acted;     /* atomic: the unblocker had to step in */
    int call_done; /* atomic */
    ssize_t r;
    int acted_before_return;
};

static void *quick_unblocker(void *arg)
{
    struct quick_case *c = arg;
    for (int i = 0; i < 100 && !__atomic_load_n(&c->call_done, __ATOMIC_SEQ_CST); i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (__atomic_load_n(&c->call_done, __ATOMIC_SEQ_CST))
        return NULL;
    __atomic_store_n(&c->acted, 1, __ATOMIC_SEQ_CST);
    if (c->op == Q_READ0) {
        ssize_t w = write(c->fds[1], "z", 1);
        (void)w;
    } else if (c->op == Q_READ_WRITE_END) {
        close(c->fds[0]); /* POLLERR on the write end */
        c->fds[0] = -1;
    } else {
        close(c->fds[1]); /* POLLHUP on the read end */
        c->fds[1] = -1;
    }
    return NULL;
}

static void quick_main(void *arg)
{
    struct quick_case *c = arg;
    char b[4] = {0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, quick_unblocker, c) == 0);
    switch (c->op) {
    case Q_READ0:
        c->r = urg_read(c->fds[0], b, 0);
        break;
    case Q_READ_WRITE_END:
        c->r = urg_read(c->fds[1], b, 1);
        break;
    case Q_WRITE_READ_END:
        c->r = urg_write(c->fds[0], b, 1);
        break;
    }
    c->acted_before_return = __atomic_load_n(&c->acted, __ATOMIC_SEQ_CST);
    __atomic_store_n(&c->call_done, 1, __ATOMIC_SEQ_CST);
    pthread_join(t, NULL);
}

static void run_quick(enum quick_op op, enum kind k, bool nonblock, ssize_t want, const char *what)
{
    struct quick_case c;
    memset(&c, 0, sizeof(c));
    c.op = op;
    make_pair(k, nonblock, c.fds);
    tu_reset();
    tu_wd_start(10, what);
    tu_run(quick_main, &c, 1);
    tu_wd_stop();
    if (c.fds[0] >= 0)
        close(c.fds[0]);
    if (c.fds[1] >= 0)
        close(c.fds[1]);
    assert_checks_ok();
    if (c.acted_before_return)
        fail_msg("%s on a %sblocking %s waited instead of returning at once (then got %zd)", what,
                 nonblock ? "non-" : "", k == K_PIPE ? "pipe" : "socketpair", c.r);
    assert_int_equal(c.r, want);
}

static void test_netpoll_zero_length_read_does_not_wait(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++)
        for (int nb = 0; nb < 2; nb++)
            run_quick(Q_READ0, (enum kind)k, nb, 0, "urg_read(fd, buf, 0)");
}

static void test_netpoll_wrong_direction_fails_at_once(void **state)
{
    (void)state;
    for (int nb = 0; nb < 2; nb++) {
        run_quick(Q_READ_WRITE_END, K_PIPE, nb, -EBADF, "urg_read on a pipe's write end");
        run_quick(Q_WRITE_READ_END, K_PIPE, nb, -EBADF, "urg_write on a pipe's read end");
    }
}

/* ---- plain threads simply block ---- */

struct plain_case {
    int fds[2];
    ssize_t n;
    char got[8];
    uint64_t elapsed;
    int started; /* atomic: the reader is about to read */
    int done;    /* atomic */
};

static void *plain_reader(void *arg)
{
    struct plain_case *c = arg;
    uint64_t t0 = now_ns();
    __atomic_store_n(&c->started, 1, __ATOMIC_SEQ_CST);
    c->n = urg_read(c->fds[0], c->got, sizeof(c->got));
    c->elapsed = now_ns() - t0;
    __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void *plain_writer_later(void *arg)
{
    struct plain_case *c = arg;
    /* Write 50 ms after the reader started, so its wait is at least that
     * long however late either thread was scheduled. */
    while (!__atomic_load_n(&c->started, __ATOMIC_SEQ_CST)) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    ssize_t w = urg_write(c->fds[1], "abc", 3);
    (void)w;
    return NULL;
}

static void test_netpoll_plain_thread_blocks_without_runtime(void **state)
{
    (void)state;
    for (int nb = 0; nb < 2; nb++) {
        struct plain_case c;
        memset(&c, 0, sizeof(c));
        make_pair(K_PIPE, nb, c.fds);
        pthread_t r, w;
        assert_int_equal(pthread_create(&r, NULL, plain_reader, &c), 0);
        assert_int_equal(pthread_create(&w, NULL, plain_writer_later, &c), 0);
        pthread_join(r, NULL);
        pthread_join(w, NULL);
        if (nb) {
            /* Open question: urgent.h says plain threads "block", but
             * not whether that holds for an O_NONBLOCK descriptor. Today
             * the call is read(2)'s (EAGAIN); waiting for the data would
             * be the other consistent answer. Both are accepted. */
            assert_true(c.n == -EAGAIN || c.n == 3);
        } else {
            assert_int_equal(c.n, 3);
            assert_memory_equal(c.got, "abc", 3);
            assert_true(c.elapsed >= 50 * 1000 * 1000ull);
        }
        close(c.fds[0]);
        close(c.fds[1]);
    }
}

/* A plain thread reading while the runtime runs blocks only itself: the
 * one proc keeps running tasks meanwhile. */
static void plain_during_main(void *arg)
{
    struct plain_case *c = arg;
    pthread_t r;
    CHECK(pthread_create(&r, NULL, plain_reader, c) == 0);
    /* Sleep in small steps: the timers keep firing on the one proc while
     * the plain thread sits in read(2), which it has not left. */
    for (int i = 0; i < 20; i++)
        urg_sleep(2 * 1000 * 1000);
    CHECK(!__atomic_load_n(&c->done, __ATOMIC_SEQ_CST));
    CHECK(urg_write(c->fds[1], "xyz", 3) == 3);
    while (!__atomic_load_n(&c->done, __ATOMIC_SEQ_CST))
        urg_sleep(1000 * 1000);
    pthread_join(r, NULL);
}

static void test_netpoll_plain_thread_blocks_while_runtime_runs(void **state)
{
    (void)state;
    struct plain_case c;
    memset(&c, 0, sizeof(c));
    make_pair(K_PIPE, false, c.fds);
    tu_reset();
    tu_wd_start(10, "plain thread read");
    tu_run(plain_during_main, &c, 1);
    tu_wd_stop();
    assert_checks_ok();
    assert_int_equal(c.n, 3);
    assert_memory_equal(c.got, "xyz", 3);
    close(c.fds[0]);
    close(c.fds[1]);
}

struct plain_tcp {
    int listener;
    struct sockaddr_in addr;
    int accepted;
};

static void *plain_acceptor(void *arg)
{
    struct plain_tcp *t = arg;
    t->accepted = urg_accept(t->listener, NULL, NULL);
    return NULL;
}

static void test_netpoll_plain_thread_accept_connect(void **state)
{
    (void)state;
    struct plain_tcp t;
    t.listener = tcp_listener(&t.addr);
    pthread_t a;
    assert_int_equal(pthread_create(&a, NULL, plain_acceptor, &t), 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(urg_connect(fd, (struct sockaddr *)&t.addr, sizeof(t.addr)), 0);
    pthread_join(a, NULL);
    assert_true(t.accepted >= 0);
    assert_int_equal(urg_write(fd, "hi", 2), 2);
    char b[2];
    assert_int_equal(urg_read(t.accepted, b, 2), 2);
    assert_memory_equal(b, "hi", 2);
    close(t.accepted);
    assert_int_equal(urg_read(fd, b, 1), 0);
    close(fd);
    close(t.listener);
}

/* ---- two readers on one descriptor both get their byte ---- */

struct two_case {
    int fds[2];
    int got[2];
    int waiting; /* atomic: readers about to read */
    int done;    /* atomic: readers that got their byte */
    urg_wg wg;
};

static struct two_case *two_cur;

static void two_reader(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    char b;
    __atomic_fetch_add(&two_cur->waiting, 1, __ATOMIC_SEQ_CST);
    CHECK(urg_read(two_cur->fds[0], &b, 1) == 1);
    two_cur->got[i] = b;
    __atomic_fetch_add(&two_cur->done, 1, __ATOMIC_SEQ_CST);
    urg_wg_done(&two_cur->wg);
}

static void two_main(void *arg)
{
    struct two_case *c = arg;
    urg_wg_add(&c->wg, 2);
    CHECK(urg_go(two_reader, (void *)0) == 0);
    CHECK(urg_go(two_reader, (void *)1) == 0);
    /* Both readers are in urg_read, and both park (at least one by now;
     * test_netpoll_waiters_on_one_fd_all_park checks for all). */
    while (__atomic_load_n(&c->waiting, __ATOMIC_SEQ_CST) < 2)
        urg_yield();
    tu_await_parked_n(WAIT_IO, 1);
    CHECK(urg_write(c->fds[1], "a", 1) == 1);
    /* One reader got "a"; the other is parked again, waiting for "b". */
    while (__atomic_load_n(&c->done, __ATOMIC_SEQ_CST) < 1)
        urg_yield();
    tu_await_parked_n(WAIT_IO, 1);
    CHECK(urg_write(c->fds[1], "b", 1) == 1);
    urg_wg_wait(&c->wg);
}

static void test_netpoll_two_readers_one_fd(void **state)
{
    (void)state;
    for (int nb = 0; nb < 2; nb++) {
        for (int i = 0; i < NPROCS_LIST; i++) {
            struct two_case c;
            memset(&c, 0, sizeof(c));
            two_cur = &c;
            make_pair(K_SOCKETPAIR, nb, c.fds);
            tu_reset();
            tu_wd_start(10, "two readers");
            tu_run(two_main, &c, tu_procs_list[i]);
            tu_wd_stop();
            assert_checks_ok();
            assert_int_equal(c.got[0] + c.got[1], 'a' + 'b');
            close(c.fds[0]);
            close(c.fds[1]);
        }
    }
}

/* ---- several waiters on one descriptor all park, and all complete ----
 *
 * WP_N tasks wait on one descriptor in the same direction: readers of an
 * empty pipe or socket, or writers of a full one. Every one must park in
 * the netpoller (the runtime's state says so), the process must stay idle
 * meanwhile (a waiter that retried by yielding would burn a CPU: measured
 * 0.96 s in 1 s before), and when the descriptor becomes ready every
 * waiter must complete: none may be left parked with its data waiting.
 * The CPU bound is a behaviour bound (spinning vs parked), not a speed
 * bound: waiting cost 0.2 to 3 ms here (beside a CPU hog, under chaos),
 * the old yielding waiter 125 ms. */

#define WP_N       3
#define WP_IDLE_NS (200ull * 1000 * 1000)
#define WP_CPU_MAX (50ull * 1000 * 1000)

struct wp_case {
    int fds[2];
    bool writers; /* wait to write fds[1] (full) rather than read fds[0] */
    size_t fill;  /* bytes put in before the writers start */
    int entered;  /* atomic: waiters about to make their call */
    ssize_t res[WP_N];
    uint64_t cpu_ns; /* process CPU time over WP_IDLE_NS while they wait */
    int parked;      /* tasks parked on I/O once all had parked (0: not awaited) */
    urg_wg wg;
};

static struct wp_case *wp_cur;

static uint64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

static void wp_waiter(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    struct wp_case *c = wp_cur;
    char b = 'x';
    __atomic_fetch_add(&c->entered, 1, __ATOMIC_SEQ_CST);
    c->res[i] = c->writers ? urg_write(c->fds[1], &b, 1) : urg_read(c->fds[0], &b, 1);
    urg_wg_done(&c->wg);
}

static void wp_main(void *arg)
{
    struct wp_case *c = arg;
    urg_wg_add(&c->wg, WP_N);
    for (uintptr_t i = 0; i < WP_N; i++)
        CHECK(urg_go(wp_waiter, (void *)i) == 0);
    while (__atomic_load_n(&c->entered, __ATOMIC_SEQ_CST) < WP_N)
        urg_yield();
    tu_await_parked_n(WAIT_IO, 1);
    uint64_t t0 = cpu_ns();
    urg_sleep(WP_IDLE_NS);
    c->cpu_ns = cpu_ns() - t0;
    /* A spinning waiter never parks: only wait for all if none spun (the
     * old code failed here at once instead of after the await deadline). */
    if (c->cpu_ns < WP_CPU_MAX) {
        tu_await_parked_n(WAIT_IO, WP_N);
        c->parked = tu_parked(0, WAIT_IO);
    }
    if (c->writers) {
        /* Drain what was put in and what the writers add. */
        static char buf[65536];
        size_t want = c->fill + WP_N, got = 0;
        while (got < want) {
            ssize_t r = urg_read(c->fds[0], buf, sizeof(buf));
            CHECK(r > 0);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        CHECK(got == want);
    } else {
        char b[WP_N];
        memset(b, 'y', sizeof(b));
        CHECK(urg_write(c->fds[1], b, WP_N) == WP_N);
    }
    urg_wg_wait(&c->wg);
}

/* fill: write into fds[1] until it would block; returns the bytes put in. */
static size_t fill(int fd)
{
    static char buf[4096];
    int f = fcntl(fd, F_GETFL);
    assert_int_equal(fcntl(fd, F_SETFL, f | O_NONBLOCK), 0);
    size_t n = 0;
    for (size_t chunk = sizeof(buf); chunk > 0; chunk = chunk > 1 ? 1 : 0) {
        ssize_t r;
        while ((r = write(fd, buf, chunk)) > 0)
            n += (size_t)r;
        assert_true(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
    assert_int_equal(fcntl(fd, F_SETFL, f), 0);
    return n;
}

static void test_netpoll_waiters_on_one_fd_all_park(void **state)
{
    (void)state;
    static const struct {
        enum kind k;
        bool nonblock;
    } kinds[] = {{K_PIPE, false}, {K_PIPE, true}, {K_SOCKETPAIR, false}};
    uint64_t worst = 0;
    for (size_t ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++) {
        for (int writers = 0; writers < 2; writers++) {
            for (int i = 0; i < NPROCS_LIST; i++) {
                int fds0 = tu_open_fds();
                struct wp_case c;
                memset(&c, 0, sizeof(c));
                wp_cur = &c;
                c.writers = writers;
                make_pair(kinds[ki].k, kinds[ki].nonblock, c.fds);
                if (writers)
                    c.fill = fill(c.fds[1]);
                tu_reset();
                tu_wd_start(10, "waiters on one fd");
                tu_run(wp_main, &c, tu_procs_list[i]);
                tu_wd_stop();
                printf("%s%s, %d %s, %d procs: %.2f ms CPU in %llu ms while they wait\n",
                       kinds[ki].k == K_PIPE ? "pipe" : "socketpair",
                       kinds[ki].nonblock ? " (O_NONBLOCK)" : "", WP_N,
                       writers ? "writers" : "readers", tu_procs_list[i], c.cpu_ns / 1e6,
                       (unsigned long long)(WP_IDLE_NS / 1000000));
                if (c.cpu_ns > worst)
                    worst = c.cpu_ns;
                assert_checks_ok();
                assert_true(c.cpu_ns < WP_CPU_MAX);
                assert_int_equal(c.parked, WP_N);
                for (int j = 0; j < WP_N; j++)
                    assert_int_equal(c.res[j], 1);
                close(c.fds[0]);
                close(c.fds[1]);
                assert_int_equal(tu_open_fds(), fds0);
            }
        }
    }
    printf("worst: %.2f ms CPU in %llu ms idle (bound %llu ms)\n", worst / 1e6,
           (unsigned long long)(WP_IDLE_NS / 1000000), (unsigned long long)(WP_CPU_MAX / 1000000));
}

/* ---- urg_close wakes every task parked on the descriptor ----
 *
 * Readers (and, on a socket, a writer: a socket waits both ways) park on
 * one descriptor; urg_close from another task, or from a plain thread,
 * must wake each with -EBADF, close the descriptor, and leave its pd
 * usable for the next descriptor to get the number. */

#define CW_READERS 2

struct cw_case {
    int fds[2];
    bool socket;      /* also a writer on fds[0], its send buffer full */
    bool from_thread; /* close from a plain thread, not a task */
    int entered;      /* atomic */
    int closed;       /* atomic: urg_close returned */
    int close_ret;
    ssize_t res[CW_READERS + 1];
    int reuse_nread; /* a reader on the next descriptor: bytes read */
    urg_wg wg;
};

static struct cw_case *cw_cur;

static void cw_waiter(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    struct cw_case *c = cw_cur;
    char b[8] = "x";
    __atomic_fetch_add(&c->entered, 1, __ATOMIC_SEQ_CST);
    if (i < CW_READERS)
        c->res[i] = urg_read(c->fds[0], b, sizeof(b));
    else
        c->res[i] = urg_write(c->fds[0], b, 1);
    urg_wg_done(&c->wg);
}

static void cw_close(struct cw_case *c)
{
    c->close_ret = urg_close(c->fds[0]);
    __atomic_store_n(&c->closed, 1, __ATOMIC_RELEASE);
}

static void cw_closer_task(void *arg) { cw_close(arg); }

static void *cw_closer_thread(void *arg)
{
    cw_close(arg);
    return NULL;
}

static void cw_main(void *arg)
{
    struct cw_case *c = arg;
    int n = CW_READERS + (c->socket ? 1 : 0);
    urg_wg_add(&c->wg, n);
    for (uintptr_t i = 0; i < (uintptr_t)n; i++)
        CHECK(urg_go(cw_waiter, (void *)i) == 0);
    while (__atomic_load_n(&c->entered, __ATOMIC_SEQ_CST) < n)
        urg_yield();
    tu_await_parked_n(WAIT_IO, n);
    if (c->from_thread) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, cw_closer_thread, c) == 0);
        urg_wg_wait(&c->wg);
        urg_syscall_enter();
        pthread_join(t, NULL);
        urg_syscall_exit();
    } else {
        CHECK(urg_go(cw_closer_task, c) == 0);
        urg_wg_wait(&c->wg);
        while (!__atomic_load_n(&c->closed, __ATOMIC_ACQUIRE))
            urg_yield();
    }
    /* The next descriptor likely gets the same number (and pd): a reader
     * of it must park and be woken as usual. */
    struct park_case p;
    memset(&p, 0, sizeof(p));
    CHECK(pipe2(p.fds, O_CLOEXEC) == 0);
    park_main(&p);
    c->reuse_nread = (int)p.nread;
    close(p.fds[0]);
    close(p.fds[1]);
}

static void test_netpoll_urg_close_wakes_parked_tasks(void **state)
{
    (void)state;
    for (int sock = 0; sock < 2; sock++) {
        for (int thr = 0; thr < 2; thr++) {
            for (int i = 0; i < NPROCS_LIST; i++) {
                int fds0 = tu_open_fds();
                struct cw_case c;
                memset(&c, 0, sizeof(c));
                cw_cur = &c;
                c.socket = sock;
                c.from_thread = thr;
                make_pair(sock ? K_SOCKETPAIR : K_PIPE, false, c.fds);
                if (sock)
                    fill(c.fds[0]);
                tu_reset();
                tu_wd_start(10, "urg_close wakes parked tasks");
                tu_run(cw_main, &c, tu_procs_list[i]);
                tu_wd_stop();
                assert_checks_ok();
                assert_int_equal(c.close_ret, 0);
                for (int j = 0; j < CW_READERS + sock; j++)
                    assert_int_equal(c.res[j], -EBADF);
                assert_int_equal(c.reuse_nread, 5);
                close(c.fds[1]);
                /* fds[0] was closed by urg_close. */
                assert_int_equal(tu_open_fds(), fds0);
            }
        }
    }
}

/* ---- urg_close's answers: bad numbers, no run, a plain thread ---- */

struct cv_case {
    int free_fd; /* a number known not to be open */
    int thread_ret;
    int thread_fd;
};

static void *cv_thread(void *arg)
{
    struct cv_case *c = arg;
    c->thread_ret = urg_close(c->thread_fd);
    return NULL;
}

static void cv_check(struct cv_case *c)
{
    CHECK(urg_close(-1) == -EBADF);
    CHECK(urg_close(INT_MIN) == -EBADF);
    CHECK(urg_close(c->free_fd) == -EBADF);
    CHECK(urg_close(1 << 24) == -EBADF); /* past the poller's table */
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    CHECK(urg_close(p[0]) == 0);
    CHECK(fcntl(p[0], F_GETFD) < 0 && errno == EBADF);
    CHECK(urg_close(p[1]) == 0);
}

static void cv_main(void *arg)
{
    struct cv_case *c = arg;
    cv_check(c);
    /* A descriptor whose pd exists (a task waited on it) and one closed
     * from a plain thread while the run goes on. */
    struct park_case pc;
    memset(&pc, 0, sizeof(pc));
    CHECK(pipe2(pc.fds, O_CLOEXEC) == 0);
    park_main(&pc);
    CHECK(pc.nread == 5);
    CHECK(urg_close(pc.fds[0]) == 0);
    c->thread_fd = pc.fds[1];
    pthread_t t;
    CHECK(pthread_create(&t, NULL, cv_thread, c) == 0);
    urg_syscall_enter();
    pthread_join(t, NULL);
    urg_syscall_exit();
    CHECK(c->thread_ret == 0);
}

static void test_netpoll_urg_close_validates(void **state)
{
    (void)state;
    int fds0 = tu_open_fds();
    struct cv_case c;
    memset(&c, 0, sizeof(c));
    c.free_fd = 1000;
    while (fcntl(c.free_fd, F_GETFD) >= 0)
        c.free_fd++;
    /* No run: it just closes. */
    tu_reset();
    cv_check(&c);
    assert_checks_ok();
    for (int i = 0; i < NPROCS_LIST; i++) {
        tu_reset();
        tu_run(cv_main, &c, tu_procs_list[i]);
        assert_checks_ok();
    }
    assert_int_equal(tu_open_fds(), fds0);
}

/* ---- many readers on one descriptor ----
 *
 * Several tasks reading one byte at a time from the same descriptor while
 * one task writes. On a socket the runtime reads with MSG_DONTWAIT; on a
 * pipe without O_NONBLOCK it polls and then read(2)s, and another reader
 * may take the byte in between: then read(2) blocks the thread and its P
 * with it. At two procs that can stall every proc (the writer is queued
 * behind a blocked thread). Run in a child so a stall fails the test
 * instead of hanging the whole binary. */

#define MR_READERS 8
#define MR_PER     200
#define MR_ROUNDS  5

static struct {
    int fds[2];
    urg_wg wg;
    long got;
} mr;

static void mr_reader(void *arg)
{
    (void)arg;
    char b;
    for (int i = 0; i < MR_PER; i++) {
        ssize_t r = urg_read(mr.fds[0], &b, 1);
        CHECK(r == 1);
        if (r != 1)
            break;
        __atomic_fetch_add(&mr.got, 1, __ATOMIC_SEQ_CST);
    }
    urg_wg_done(&mr.wg);
}

static void mr_writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < MR_READERS * MR_PER; i++) {
        CHECK(urg_write(mr.fds[1], "x", 1) == 1);
        if (i % 4 == 0)
            urg_yield();
    }
    urg_wg_done(&mr.wg);
}

static void mr_main(void *arg)
{
    (void)arg;
    urg_wg_add(&mr.wg, MR_READERS + 1);
    for (int i = 0; i < MR_READERS; i++)
        CHECK(urg_go(mr_reader, NULL) == 0);
    CHECK(urg_go(mr_writer, NULL) == 0);
    urg_wg_wait(&mr.wg);
}

/* A stall (no byte read for a few seconds) ends the child at once, with
 * a diagnosis, rather than at the alarm. */
static void *mr_stall_watch(void *arg)
{
    (void)arg;
    long last = -1;
    for (;;) {
        sleep(TU_SANITIZED ? 6 : 2);
        long now = __atomic_load_n(&mr.got, __ATOMIC_SEQ_CST);
        if (now == last) {
            fprintf(stderr,
                    "stalled after %ld of %d bytes: a reader blocked its thread in "
                    "read(2)?\n",
                    now, MR_READERS * MR_PER);
            _exit(3);
        }
        last = now;
    }
    return NULL;
}

static int mr_child(void *arg)
{
    tu_child_default_signals();
    enum kind k = (enum kind)(intptr_t)arg;
    pthread_t w;
    if (pthread_create(&w, NULL, mr_stall_watch, NULL) != 0)
        return 4;
    for (int round = 0; round < MR_ROUNDS; round++) {
        for (int procs = 1; procs <= 4; procs *= 2) {
            memset(&mr.wg, 0, sizeof(mr.wg));
            __atomic_store_n(&mr.got, 0, __ATOMIC_SEQ_CST);
            make_pair(k, false, mr.fds);
            tu_reset();
            urg_config cfg = {.maxprocs = procs};
            if (urg_run(mr_main, NULL, &cfg) != 0)
                return 2;
            if (tu_failures || mr.got != MR_READERS * MR_PER) {
                fprintf(stderr, "round %d procs %d: %ld bytes read; %s\n", round, procs, mr.got,
                        tu_first_failure);
                return 1;
            }
            close(mr.fds[0]);
            close(mr.fds[1]);
        }
    }
    return 0;
}

static void run_many_readers(enum kind k)
{
    struct tu_child *res = &child_res;
    tu_in_child(mr_child, (void *)(intptr_t)k, TU_SANITIZED ? 60 : 20, res);
    if (!WIFEXITED(res->status) || WEXITSTATUS(res->status) != 0)
        fail_msg("many readers on one %s: child %s %d; output:\n%s",
                 k == K_PIPE ? "blocking pipe" : "blocking socket",
                 WIFEXITED(res->status) ? "exited" : "killed by signal",
                 WIFEXITED(res->status) ? WEXITSTATUS(res->status) : WTERMSIG(res->status),
                 res->out);
}

static void test_netpoll_many_readers_one_blocking_socket(void **state)
{
    (void)state;
    run_many_readers(K_SOCKETPAIR);
}

static void test_netpoll_many_readers_one_blocking_pipe(void **state)
{
    (void)state;
    run_many_readers(K_PIPE);
}

/* ---- a task abandoned in a read does not poison the next run ---- */

static int abandon_fds[2];
static uint64_t abandon_id; /* atomic */

static void abandon_reader(void *arg)
{
    (void)arg;
    char b;
    __atomic_store_n(&abandon_id, urg_task_id(), __ATOMIC_RELEASE);
    ssize_t r = urg_read(abandon_fds[0], &b, 1);
    (void)r; /* never returns: the run ends first */
}

static void abandon_main(void *arg)
{
    (void)arg;
    CHECK(urg_go(abandon_reader, NULL) == 0);
    /* The run ends with the reader parked in the netpoller. */
    while (!__atomic_load_n(&abandon_id, __ATOMIC_ACQUIRE))
        urg_yield();
    tu_await_parked(__atomic_load_n(&abandon_id, __ATOMIC_ACQUIRE), WAIT_IO);
}

static void again_main(void *arg)
{
    (void)arg;
    struct park_case c;
    memset(&c, 0, sizeof(c));
    c.fds[0] = abandon_fds[0];
    c.fds[1] = abandon_fds[1];
    park_main(&c);
    CHECK(c.nread == 5);
}

static void test_netpoll_abandoned_reader_then_rerun(void **state)
{
    (void)state;
    int fds0 = tu_open_fds();
    make_pair(K_PIPE, false, abandon_fds);
    __atomic_store_n(&abandon_id, 0, __ATOMIC_RELAXED);
    tu_reset();
    tu_wd_start(10, "abandoned reader");
    tu_run(abandon_main, NULL, 1);
    /* Same descriptor, new run: the old registration must not swallow
     * the wakeup of the new reader. */
    tu_run(again_main, NULL, 1);
    tu_wd_stop();
    assert_checks_ok();
    close(abandon_fds[0]);
    close(abandon_fds[1]);
    assert_int_equal(tu_open_fds(), fds0);
}

static void empty_main(void *arg) { (void)arg; }

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* One run first: libunwind opens a validation pipe on first use and
     * keeps it, which the descriptor-leak checks must not count. */
    urg_run(empty_main, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netpoll_pipe_read_parks_task_blocking_fd),
        cmocka_unit_test(test_netpoll_pipe_read_parks_task_nonblocking_fd),
        cmocka_unit_test(test_netpoll_socket_read_parks_task_blocking_fd),
        cmocka_unit_test(test_netpoll_socket_read_parks_task_nonblocking_fd),
        cmocka_unit_test(test_netpoll_eof_returns_zero),
        cmocka_unit_test(test_netpoll_write_1mib_pipe_blocking),
        cmocka_unit_test(test_netpoll_write_1mib_pipe_nonblocking),
        cmocka_unit_test(test_netpoll_write_1mib_socketpair),
        cmocka_unit_test(test_netpoll_tcp_accept_connect_loopback),
        cmocka_unit_test(test_netpoll_connect_refused),
        cmocka_unit_test(test_netpoll_many_socketpairs_ping_pong),
        cmocka_unit_test(test_netpoll_bad_fd_ebadf),
        cmocka_unit_test(test_netpoll_other_errors),
        cmocka_unit_test(test_netpoll_zero_length_read_does_not_wait),
        cmocka_unit_test(test_netpoll_wrong_direction_fails_at_once),
        cmocka_unit_test(test_netpoll_plain_thread_blocks_without_runtime),
        cmocka_unit_test(test_netpoll_plain_thread_blocks_while_runtime_runs),
        cmocka_unit_test(test_netpoll_plain_thread_accept_connect),
        cmocka_unit_test(test_netpoll_two_readers_one_fd),
        cmocka_unit_test(test_netpoll_waiters_on_one_fd_all_park),
        cmocka_unit_test(test_netpoll_urg_close_wakes_parked_tasks),
        cmocka_unit_test(test_netpoll_urg_close_validates),
        cmocka_unit_test(test_netpoll_abandoned_reader_then_rerun),
        cmocka_unit_test(test_netpoll_many_readers_one_blocking_socket),
        cmocka_unit_test(test_netpoll_many_readers_one_blocking_pipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
