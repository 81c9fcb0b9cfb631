/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * netpoll.c — the netpoller and the I/O calls built on it (urg_read,
 * urg_write, urg_accept, urg_connect, urg_close). The kernel side (epoll,
 * in netpoll_epoll.c) sits behind netpoll_backend.h, as Go's netpoll.go
 * sits on netpoll_epoll.go.
 *
 * Model (Go's netpoll, adapted to descriptors we do not own):
 *   - one poller and a way to wake it (netpoll_break);
 *   - a poll descriptor (pd) per fd number, created on first wait and kept
 *     for the run, holding a list of parked readers and one of writers;
 *   - a task that would block arms interest ONE-SHOT and LEVEL-triggered
 *     and parks. Level-triggered arming reports a descriptor that became
 *     ready between our EAGAIN and the arming, so no wakeup is lost;
 *     one-shot means an event is delivered once, and the poller re-arms
 *     for the other direction if someone still waits. Edge-triggered
 *     registration (Go's choice) needs the runtime to own every
 *     descriptor from creation, which a C library cannot;
 *   - the scheduler polls without blocking when it looks for work, and one
 *     idle M blocks in the poller until the next timer.
 *
 * Several waiters per direction. Go allows one goroutine per direction per
 * pollDesc (its fdMutex queues the rest); we cannot make callers take a
 * lock per descriptor, so each direction of a pd keeps a list of wait
 * records (on the waiters' stacks) and an event wakes the whole list. Each
 * waiter then retries its I/O; those that find EAGAIN park again, and the
 * level-triggered one-shot arming reports any data still there, so no
 * wakeup is lost whoever consumes it. Waking one in turn would do fewer
 * futile retries on a busy descriptor, but every path out of the retry
 * (success, error, a task that stops calling) would have to pass the turn
 * on, or the others sleep with data waiting. Several waiters on one
 * descriptor are rare; correctness without that bookkeeping wins.
 *
 * Closing. close(2) removes a descriptor from epoll without an event, so a
 * task parked on it is never woken (until the run ends, when it is
 * abandoned). urg_close wakes every waiter with -EBADF first, then
 * disarms the fd in the poller and closes it. While it does, the pd is marked
 * closing and a newcomer fails at once with -EBADF rather than parking on
 * a descriptor about to disappear. A waiter woken by urg_close touches the
 * fd no more: its number may already belong to a new descriptor.
 *
 * Blocking descriptors: the calls work whether or not O_NONBLOCK is set.
 * Sockets use MSG_DONTWAIT; other descriptors without O_NONBLOCK are
 * waited for first and then read or written (writes in chunks of at most
 * PIPE_BUF so a ready pipe never blocks). We never flip O_NONBLOCK on a
 * descriptor we did not create, since that changes it for every process
 * sharing it — except for the duration of a connect on the socket being
 * connected.
 */
#include "netpoll_backend.h"
#include "sched.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Task code here parks and resumes, possibly on another thread, between
 * a call and the test of its errno: every errno in this file is looked
 * up afresh (internal.h, urg__errno_here). */
#undef errno
#define errno (*urg__errno_here())

#define PD_CHUNK  1024
#define PD_CHUNKS 1024 /* fds up to 1M */

/* A parked task's wait record, on its stack; linked while it waits. */
struct io_waiter {
    g_t *gp;
    struct io_waiter *next; /* pd.lock */
    int result;             /* set by the waker before urg__ready: 0 or -EBADF */
};

struct pd {
    urg__lock_t lock;
    struct io_waiter *rq, *wq; /* parked readers / writers, newest first; pd.lock */
    uint8_t armed;             /* registered with the poller at least once, pd.lock */
    uint8_t closing;           /* urg_close calls under way, pd.lock */
    int fd;
};

static struct {
    bool open;                    /* the poller is up; set before any M */
    uint32_t wakesig;             /* atomic: a wakeup is pending */
    int32_t waiters;              /* atomic: tasks parked on I/O */
    struct pd *chunks[PD_CHUNKS]; /* atomic publication */
    urg__lock_t chunklock;
} np = {.open = false, .chunklock = URG__LOCK_INIT(URG_RANK_NETPOLL)};

int urg__netpoll_init(void)
{
    int e = urg__poller_init();
    if (e != 0)
        return e;
    np.open = true;
    st_relaxed(&np.wakesig, 0u);
    st_relaxed(&np.waiters, 0);
    return 0;
}

void urg__netpoll_close(void)
{
    urg__poller_close();
    np.open = false;
    for (int i = 0; i < PD_CHUNKS; i++) {
        free(np.chunks[i]);
        np.chunks[i] = NULL;
    }
}

bool urg__netpoll_waiters(void) { return ld_relaxed(&np.waiters) > 0; }

/* urg__netpoll_break: interrupt a blocking netpoll (a new earlier timer,
 * shutdown). Coalesced: one write per wakeup. Signal-safe. */
void urg__netpoll_break(void)
{
    if (!np.open || !cas(&np.wakesig, 0u, 1u))
        return;
    urg__poller_wake();
}

/* pd_peek: fd's pd if its chunk exists (no allocation), else NULL. */
static struct pd *pd_peek(int fd)
{
    if (fd < 0 || fd >= PD_CHUNK * PD_CHUNKS)
        return NULL;
    struct pd *chunk = ld_acquire(&np.chunks[fd / PD_CHUNK]);
    return chunk ? &chunk[fd % PD_CHUNK] : NULL;
}

static struct pd *pd_get(int fd)
{
    if (fd < 0 || fd >= PD_CHUNK * PD_CHUNKS)
        return NULL;
    struct pd *chunk = ld_acquire(&np.chunks[fd / PD_CHUNK]);
    if (!chunk) {
        urg__lock(&np.chunklock);
        chunk = np.chunks[fd / PD_CHUNK];
        if (!chunk) {
            chunk = calloc(PD_CHUNK, sizeof(*chunk));
            if (chunk) {
                for (int i = 0; i < PD_CHUNK; i++) {
                    urg__lock_init(&chunk[i].lock, URG_RANK_NETPOLL);
                    chunk[i].fd = fd / PD_CHUNK * PD_CHUNK + i;
                }
                st_release(&np.chunks[fd / PD_CHUNK], chunk);
            }
        }
        urg__unlock(&np.chunklock);
        if (!chunk)
            return NULL;
    }
    return &chunk[fd % PD_CHUNK];
}

/* arm: (re)arm pd's interest: the directions someone waits in. Locks:
 * pd.lock. Returns 0, or -EPERM for descriptors the poller cannot watch
 * (regular files: always ready). */
static int arm(struct pd *pd)
{
    uint32_t interest = 0;
    if (pd->rq)
        interest |= URG__POLLER_READ;
    if (pd->wq)
        interest |= URG__POLLER_WRITE;
    int r = urg__poller_arm(pd->fd, pd, interest, pd->armed);
    if (r != 0)
        return r;
    pd->armed = 1;
    return 0;
}

/* Context: g0 after the task switched out. Releases pd.lock. */
static bool io_unlock(m_t *mp, g_t *gp, void *arg)
{
    (void)mp;
    (void)gp;
    urg__unlock(&((struct pd *)arg)->lock);
    return true;
}

/* take: unlink every waiter of list *q, give each `result`, and prepend
 * its task to the schedlink list *out (oldest waiter first). The records
 * stay valid until the tasks are readied. Locks: pd.lock. Returns how
 * many. */
static int32_t take(struct io_waiter **q, int result, g_t **out)
{
    int32_t n = 0;
    for (struct io_waiter *w = *q; w; w = w->next, n++) {
        w->result = result;
        w->gp->schedlink = *out;
        *out = w->gp;
    }
    *q = NULL;
    return n;
}

/* wait_io: park the calling task until fd is ready for `write` (or read).
 * Returns 0 when woken (spuriously possible: callers retry the I/O), or a
 * negative errno: -EBADF when urg_close closed fd meanwhile (then fd must
 * not be touched again). Never spins: every waiter parks, however many
 * wait in the same direction. Context: task. */
static int wait_io(g_t *gp, int fd, bool write)
{
    struct pd *pd = pd_get(fd);
    if (!pd)
        return -ENOMEM;
    urg__lock(&pd->lock);
    if (pd->closing) {
        urg__unlock(&pd->lock);
        return -EBADF;
    }
    struct io_waiter w = {.gp = gp, .next = NULL, .result = 0};
    struct io_waiter **q = write ? &pd->wq : &pd->rq;
    w.next = *q;
    *q = &w;
    int r = arm(pd);
    if (r != 0) {
        *q = w.next; /* the failed call left the others' registration as it was */
        urg__unlock(&pd->lock);
        return r == -EPERM ? 0 : r;
    }
    fetch_add(&np.waiters, 1);
    urg__park_g(gp, io_unlock, pd, WAIT_IO);
    return w.result;
}

/* urg__netpoll: collect tasks whose descriptors are ready, waiting up to
 * delay_ns (< 0: without limit, 0: not at all). Returns a schedlink list.
 * Context: g0 (any M). */
g_t *urg__netpoll(int64_t delay_ns, int32_t *count)
{
    if (!np.open)
        return NULL;
    struct urg__poller_event evs[URG__POLLER_BATCH];
    int n = urg__poller_wait(delay_ns, evs, URG__POLLER_BATCH);
    if (n < 0)
        return NULL; /* interrupted: the caller recomputes the timeout */
    g_t *list = NULL;
    *count = 0;
    for (int i = 0; i < n; i++) {
        struct pd *pd = evs[i].key;
        if (!pd) {
            /* A break. Only a poll that could have blocked consumes it: a
             * non-blocking one leaves it for the poller it was meant for
             * (level-triggered, it stays ready). Go does the same. */
            if (delay_ns != 0) {
                urg__poller_wake_drain();
                st_release(&np.wakesig, 0u);
            }
            continue;
        }
        uint32_t ready = evs[i].ready;
        int32_t n_ready = 0;
        urg__lock(&pd->lock);
        /* Every waiter of a ready direction: see the top of the file. A
         * hang-up or an error readies both (netpoll_backend.h). */
        if (ready & URG__POLLER_READ)
            n_ready += take(&pd->rq, 0, &list);
        if (ready & URG__POLLER_WRITE)
            n_ready += take(&pd->wq, 0, &list);
        if (pd->rq || pd->wq)
            arm(pd);
        urg__unlock(&pd->lock);
        if (n_ready) {
            fetch_sub(&np.waiters, n_ready);
            *count += n_ready;
        }
    }
    return list;
}

/* urg_close: wake every task parked on fd with -EBADF, disarm fd in the
 * poller, close it. From a thread outside the runtime, or with no run, it
 * wakes what there is to wake and closes. Locks: takes pd.lock (never
 * across close(2), which may linger on a socket). Context: any but
 * signal. Returns 0 or -errno (close(2)'s; EINTR counts as closed, as on
 * Linux the descriptor is gone either way). */
int urg_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    /* The pd table lives as long as the run: a task is inside it (a task
     * of a run that ended does not come back from urg__curg), and an
     * outside thread holds the run open while it uses the table. */
    bool guarded = false, inrun = urg__curg() != NULL;
    if (!inrun)
        inrun = guarded = urg__ext_enter();
    struct pd *pd = inrun && np.open ? pd_peek(fd) : NULL;
    g_t *list = NULL;
    if (pd) {
        urg__lock(&pd->lock);
        pd->closing++;
        int32_t n = take(&pd->rq, -EBADF, &list);
        n += take(&pd->wq, -EBADF, &list);
        if (pd->armed) {
            /* Before close: a dup of fd would keep the registration (and
             * its pd pointer) alive otherwise. A failure (never added, or
             * closed and its number reused) leaves nothing of ours. */
            urg__poller_disarm(fd);
            pd->armed = 0;
        }
        urg__unlock(&pd->lock);
        if (n)
            fetch_sub(&np.waiters, n);
    }
    int r = close(fd);
    int ret = r == 0 || errno == EINTR ? 0 : -errno;
    if (pd) {
        urg__lock(&pd->lock);
        pd->closing--;
        urg__unlock(&pd->lock);
    }
    /* Wake after close, so that a waiter's -EBADF means fd is closed
     * (its caller may act on that at once); the waiter touches fd no
     * more either way. */
    urg__ready_list(list);
    if (guarded)
        urg__ext_exit();
    return ret;
}

/* ---- the I/O calls ------------------------------------------------------ */

/* The file status flags of fd (O_ACCMODE, O_NONBLOCK), or -errno. */
static int fd_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -errno : fl;
}

/* fd_wait_ready: wait (parking the task) until fd is ready. */
static int fd_wait_ready(g_t *gp, int fd, bool write)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = (short)(write ? POLLOUT : POLLIN)};
        int r = poll(&p, 1, 0);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r == 0) {
            int e = wait_io(gp, fd, write);
            if (e)
                return e;
        }
    }
}

/* thread_wait: a thread outside the runtime waits for fd in poll(2). */
static int thread_wait(int fd, bool write)
{
    struct pollfd p = {.fd = fd, .events = (short)(write ? POLLOUT : POLLIN)};
    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

/* io_once: one read or write attempt by a task, parking while fd is not
 * ready. Sockets take MSG_DONTWAIT and never block. Other descriptors with
 * O_NONBLOCK are tried, then waited for. Other descriptors without it
 * (pipes, ttys, regular files) are waited for and then read or written
 * inside a syscall bracket: the call can still block (another reader took
 * the data first; disk I/O), and then sysmon hands our P to another
 * thread instead of letting the whole P stall. Returns bytes, or -errno;
 * never -EINTR or -EAGAIN. Context: task. */
static ssize_t io_once(g_t *gp, int fd, void *buf, size_t n, bool out, int *kind)
{
    enum { UNKNOWN, SOCKET, NONBLOCK, BLOCKING };
    for (;;) {
        ssize_t r;
        if (*kind == UNKNOWN || *kind == SOCKET) {
            r = out ? send(fd, buf, n, MSG_DONTWAIT) : recv(fd, buf, n, MSG_DONTWAIT);
            if (r < 0 && errno == ENOTSOCK) {
                int fl = fd_flags(fd);
                if (fl < 0)
                    return fl;
                int mode = fl & O_ACCMODE;
                if ((out && mode == O_RDONLY) || (!out && mode == O_WRONLY))
                    return -EBADF; /* would never become ready */
                *kind = (fl & O_NONBLOCK) ? NONBLOCK : BLOCKING;
                continue;
            }
            *kind = SOCKET;
        } else if (*kind == NONBLOCK) {
            r = out ? write(fd, buf, n) : read(fd, buf, n);
        } else {
            int e = fd_wait_ready(gp, fd, out);
            if (e)
                return e;
            if (out && n > PIPE_BUF)
                n = PIPE_BUF; /* a ready pipe takes at least this much at once */
            urg_syscall_enter();
            r = out ? write(fd, buf, n) : read(fd, buf, n);
            int saved = errno;
            urg_syscall_exit();
            errno = saved;
        }
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int e = wait_io(gp, fd, out);
            if (e)
                return e;
            continue;
        }
        return -errno;
    }
}

/* io_entry: what urg_read and urg_write check first. Returns 0 with *gpp
 * the calling task (NULL for a plain thread), or -errno. Honours a
 * pending preemption request, as every runtime call does. */
static int io_entry(int fd, const void *buf, size_t n, g_t **gpp)
{
    if (fd < 0)
        return -EBADF;
    if (!buf && n > 0)
        return -EFAULT;
    g_t *gp = urg__curg();
    if (gp) {
        URG__CLOSE_OPEN_SYSCALL(gp, "urg_read or urg_write");
        if (urg__preempt_pending(gp))
            urg__gopreempt(gp);
    }
    *gpp = gp;
    return 0;
}

ssize_t urg_read(int fd, void *buf, size_t n)
{
    g_t *gp;
    int err = io_entry(fd, buf, n, &gp);
    if (err)
        return err;
    for (;;) {
        if (!gp || n == 0) {
            /* A thread outside the runtime blocks; so does nothing: a
             * zero-length read answers at once. */
            ssize_t r = read(fd, buf, n);
            if (r >= 0)
                return r;
            if (errno == EINTR)
                continue;
            if (n > 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                int e = thread_wait(fd, false);
                if (e)
                    return e;
                continue;
            }
            return -errno;
        }
        int kind = 0;
        return io_once(gp, fd, buf, n, false, &kind);
    }
}

ssize_t urg_write(int fd, const void *buf, size_t n)
{
    g_t *gp;
    int err = io_entry(fd, buf, n, &gp);
    if (err)
        return err;
    const char *p = buf;
    size_t done = 0;
    int kind = 0;
    do {
        ssize_t r;
        if (!gp || n == 0) {
            r = write(fd, p + done, n - done);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                if (n > 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    int e = thread_wait(fd, true);
                    if (e)
                        return done ? (ssize_t)done : e;
                    continue;
                }
                r = -errno;
            }
        } else {
            r = io_once(gp, fd, (void *)(p + done), n - done, true, &kind);
        }
        if (r < 0)
            return done ? (ssize_t)done : r;
        done += (size_t)r;
    } while (done < n);
    return (ssize_t)done;
}

int urg_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    if (fd < 0)
        return -EBADF;
    if (addr && !len)
        return -EINVAL;
    g_t *gp = urg__curg();
    if (gp)
        URG__CLOSE_OPEN_SYSCALL(gp, "urg_accept");
    for (;;) {
        int fl = fd_flags(fd);
        if (fl < 0)
            return fl;
        bool blocking = !(fl & O_NONBLOCK);
        if (gp && blocking) {
            int e = fd_wait_ready(gp, fd, false);
            if (e)
                return e;
            /* Another task may take the connection first: bracket it. */
            urg_syscall_enter();
        }
        int r = accept(fd, addr, len);
        int saved = errno;
        if (gp && blocking)
            urg_syscall_exit();
        if (r >= 0)
            return r;
        errno = saved;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int e = gp ? wait_io(gp, fd, false) : thread_wait(fd, false);
            if (e)
                return e;
            continue;
        }
        return -errno;
    }
}

int urg_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (fd < 0)
        return -EBADF;
    if (!addr)
        return -EINVAL;
    g_t *gp = urg__curg();
    if (gp)
        URG__CLOSE_OPEN_SYSCALL(gp, "urg_connect");
    if (!gp) {
        /* A plain thread blocks until the connection is made, whether or
         * not the socket is non-blocking. After EINTR the connection goes
         * on in the background (calling connect again says EALREADY):
         * wait for it and read its outcome instead. */
        if (connect(fd, addr, len) == 0)
            return 0;
        if (errno != EINPROGRESS && errno != EINTR)
            return -errno;
        int e = thread_wait(fd, true);
        if (e)
            return e;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            return -errno;
        return -soerr;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    bool flipped = !(fl & O_NONBLOCK);
    if (flipped && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -errno;
    int ret = 0;
    if (connect(fd, addr, len) != 0) {
        if (errno == EINPROGRESS || errno == EINTR || errno == EALREADY) {
            for (;;) {
                int e = wait_io(gp, fd, true);
                if (e) {
                    ret = e;
                    if (e == -EBADF)
                        flipped = false; /* urg_close: fd is not ours now */
                    break;
                }
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                if (poll(&p, 1, 0) <= 0)
                    continue;
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                    soerr = errno;
                ret = -soerr;
                break;
            }
        } else {
            ret = -errno;
        }
    }
    if (flipped)
        fcntl(fd, F_SETFL, fl);
    return ret;
}
