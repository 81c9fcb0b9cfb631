/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * netpoll_backend.h — the kernel readiness mechanism under the netpoller:
 * what netpoll.c (the I/O calls, the poll descriptors and their waiters)
 * needs from epoll, or from whatever replaces it on another system.
 * netpoll_epoll.c implements it; only netpoll.c calls it.
 *
 * The contract, which netpoll.c's reasoning about lost wakeups rests on:
 *   - one poller for the run, plus a way to wake a thread blocked in it;
 *   - interest is armed per descriptor, ONE-SHOT (reported once, then
 *     disarmed until armed again) and LEVEL-triggered (a descriptor that
 *     is already ready when armed is reported), so a descriptor that
 *     became ready between the caller's EAGAIN and the arming is not
 *     missed, and an event wakes one poller, once;
 *   - each armed descriptor carries a key (netpoll.c's poll descriptor),
 *     never NULL, that comes back with its event; the wakeup comes back as
 *     an event with key NULL and stays pending (level) until drained.
 *
 * There is no fork hook: a child of fork never reaches the netpoller and
 * touches neither descriptor (fork.c), and both are close-on-exec.
 *
 * Locks: the backend takes none. Its calls are made with or without
 * netpoll.c's pd.lock held, as each says.
 */
#ifndef URG__NETPOLL_BACKEND_H
#define URG__NETPOLL_BACKEND_H

#include "internal.h"

/* Directions, for armed interest and reported readiness. */
#define URG__POLLER_READ  1u
#define URG__POLLER_WRITE 2u

/* The most events one urg__poller_wait reports. */
#define URG__POLLER_BATCH 128

/* One reported event: the key the descriptor was armed with and the
 * directions now ready (a hang-up or error makes both ready, so that every
 * waiter retries and sees it). key NULL: the wakeup. */
struct urg__poller_event {
    void *key;
    uint32_t ready; /* URG__POLLER_READ | URG__POLLER_WRITE */
};

/* urg__poller_init: create the poller and its wakeup. Returns 0 or -errno,
 * having released whatever it created. Context: urg_run, before any M. */
URG__HIDDEN int urg__poller_init(void);

/* urg__poller_close: release both; harmless when closed or never opened.
 * Context: the end of a run, after every M. */
URG__HIDDEN void urg__poller_close(void);

/* urg__poller_arm: (re)arm fd, one-shot, for the directions in `interest`,
 * to report `key`. `registered`: fd was armed before (and not disarmed)
 * under this number; either way a registration that the kernel lost or
 * kept (the fd was closed and its number reused) is repaired. Returns 0
 * or -errno: -EPERM for a descriptor that cannot be watched (a regular
 * file, which is always ready). Locks: pd.lock held. Context: any thread
 * but a signal handler. */
URG__HIDDEN int urg__poller_arm(int fd, void *key, uint32_t interest, bool registered);

/* urg__poller_disarm: forget fd before it is closed (a dup of it would
 * otherwise keep the registration, and its key, alive). Errors are
 * ignored: fd may never have been registered, or been closed and its
 * number reused. Locks: pd.lock held. Context: any thread but a signal
 * handler. */
URG__HIDDEN void urg__poller_disarm(int fd);

/* urg__poller_wait: wait up to delay_ns (< 0: without limit, 0: not at
 * all; rounded up to the poller's resolution) for events, and store at
 * most `max` of them in evs. Returns how many, or -EINTR when a signal
 * cut a limited wait short (the caller recomputes its limit). Other
 * failures are fatal. Context: g0 or sysmon, no lock held. */
URG__HIDDEN int urg__poller_wait(int64_t delay_ns, struct urg__poller_event *evs, int max);

/* urg__poller_wake: make a blocked or the next urg__poller_wait return,
 * reporting the wakeup (key NULL) until urg__poller_wake_drain. The
 * caller coalesces: one wake per drain. Keeps errno. Signal-safe. */
URG__HIDDEN void urg__poller_wake(void);

/* urg__poller_wake_drain: consume the pending wakeup. Context: the
 * poller thread that was woken. */
URG__HIDDEN void urg__poller_wake_drain(void);

#endif
