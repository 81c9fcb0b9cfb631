/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * netpoll_epoll.c — the netpoller's backend on Linux (netpoll_backend.h):
 * one epoll instance, and one eventfd registered in it for wakeups.
 *
 * Interest is registered with EPOLLONESHOT in LEVEL-triggered mode (the
 * contract in netpoll_backend.h). Go registers every descriptor
 * edge-triggered once, at creation (netpoll_epoll.go); that needs the
 * runtime to own every descriptor from its creation, which a C library
 * cannot. A readable direction is EPOLLIN | EPOLLRDHUP (a peer's shutdown
 * wakes readers); EPOLLHUP and EPOLLERR, which epoll reports whatever was
 * asked, make both directions ready.
 *
 * The eventfd is non-blocking and registered level-triggered without
 * EPOLLONESHOT under key NULL, so a wakeup stays reported until drained.
 *
 * A child of fork touches neither descriptor: registrations are keyed by
 * open file description and fd, and belong to the instance the parent
 * still uses (fork.c).
 */
#include "netpoll_backend.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int epfd = -1; /* the epoll instance; set before any M, read by all */
static int evfd = -1; /* the eventfd that wakes it; likewise */

int urg__poller_init(void)
{
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -errno;
    evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (evfd < 0) {
        int e = -errno;
        close(epfd);
        epfd = -1;
        return e;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev) != 0) {
        int e = -errno;
        urg__poller_close();
        return e;
    }
    return 0;
}

void urg__poller_close(void)
{
    if (epfd >= 0)
        close(epfd);
    if (evfd >= 0)
        close(evfd);
    epfd = evfd = -1;
}

int urg__poller_arm(int fd, void *key, uint32_t interest, bool registered)
{
    uint32_t events = EPOLLONESHOT;
    if (interest & URG__POLLER_READ)
        events |= EPOLLIN | EPOLLRDHUP;
    if (interest & URG__POLLER_WRITE)
        events |= EPOLLOUT;
    struct epoll_event ev = {.events = events, .data.ptr = key};
    int op = registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(epfd, op, fd, &ev) != 0) {
        /* The fd may have been closed and its number reused since. */
        if (errno == ENOENT)
            op = EPOLL_CTL_ADD;
        else if (errno == EEXIST)
            op = EPOLL_CTL_MOD;
        else
            return -errno;
        if (epoll_ctl(epfd, op, fd, &ev) != 0)
            return -errno;
    }
    return 0;
}

void urg__poller_disarm(int fd)
{
    struct epoll_event ev = {0}; /* ignored, but kernels before 2.6.9 want one */
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev);
}

int urg__poller_wait(int64_t delay_ns, struct urg__poller_event *evs, int max)
{
    int waitms;
    if (delay_ns < 0)
        waitms = -1;
    else if (delay_ns == 0)
        waitms = 0;
    else if (delay_ns < 1000000)
        waitms = 1;
    else if (delay_ns < (int64_t)1e15)
        waitms = (int)(delay_ns / 1000000) > 0 ? (int)(delay_ns / 1000000) : 1;
    else
        waitms = 1000000000;
    struct epoll_event ee[URG__POLLER_BATCH];
    if (max > URG__POLLER_BATCH)
        max = URG__POLLER_BATCH;
    int n;
    for (;;) {
        n = epoll_wait(epfd, ee, max, waitms);
        if (n >= 0)
            break;
        if (errno != EINTR)
            urg__throw("epoll_wait failed");
        if (waitms > 0)
            return -EINTR;
    }
    for (int i = 0; i < n; i++) {
        uint32_t e = ee[i].events, ready = 0;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            ready |= URG__POLLER_READ;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            ready |= URG__POLLER_WRITE;
        evs[i].key = ee[i].data.ptr;
        evs[i].ready = ready;
    }
    return n;
}

void urg__poller_wake(void)
{
    if (evfd < 0)
        return;
    uint64_t one = 1;
    int e = errno;
    while (write(evfd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
    errno = e;
}

void urg__poller_wake_drain(void)
{
    uint64_t v;
    while (read(evfd, &v, sizeof(v)) < 0 && errno == EINTR) {
    }
}
