/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * internal.h — what every runtime file shares: build switches, atomics, the
 * async-signal-safe printing and fatal-error helpers, and small utilities.
 *
 * Naming: public symbols are urg_*, internal symbols with linkage urg__* and
 * are hidden (-fvisibility=hidden); only URG_API symbols leave the library.
 *
 * Markers used in comments across the runtime (grep for them):
 *   Context:     which stack the function runs on: task, g0, signal, any.
 *   Locks:       runtime locks the caller must hold / the function takes.
 *   Signal-safe: may run in a signal handler; calls only other Signal-safe
 *                functions, atomics and what signal-safety(7) lists.
 */
#ifndef URG__INTERNAL_H
#define URG__INTERNAL_H

#define URG_BUILDING_LIBRARY 1
#include "urgent.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Build configuration (set by CMake). */
#if defined(URG_PREEMPT_ASYNC) && defined(URG_PREEMPT_COOPERATIVE)
#error "choose one of URG_PREEMPT_ASYNC and URG_PREEMPT_COOPERATIVE"
#endif
#if !defined(URG_PREEMPT_ASYNC) && !defined(URG_PREEMPT_COOPERATIVE)
#define URG_PREEMPT_ASYNC 1
#endif

#if defined(__SANITIZE_ADDRESS__)
#define URG__ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define URG__TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(URG__ASAN)
#define URG__ASAN 1
#endif
#if __has_feature(thread_sanitizer) && !defined(URG__TSAN)
#define URG__TSAN 1
#endif
#endif

#define URG__HIDDEN   __attribute__((visibility("hidden")))
#define URG__NOINLINE __attribute__((noinline))
#define URG__NORETURN __attribute__((noreturn))
#define URG__COLD     __attribute__((cold))
/* Code on the async-preemption path (the SIGURG handler, the trampoline's
 * C half, the switch to the next task) lives in its own section, so that
 * what runs after a slice, with cold TLBs, spans two pages instead of
 * eight: in a virtual machine each TLB miss is a two-level page walk.
 * unwind/modules.c counts the section as urgent's text (urg_text_hot). */
#define URG__PREEMPT_PATH __attribute__((section("urg_text_hot")))
#define likely(x)         __builtin_expect(!!(x), 1)
#define unlikely(x)       __builtin_expect(!!(x), 0)
#define URG__CACHELINE    64
#define URG__ALIGNED_CL   __attribute__((aligned(URG__CACHELINE)))
#define URG__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Atomics: thin names over the GCC builtins, so that the memory order of
 * every access is spelled out where it happens. */
#define ld_relaxed(p)    __atomic_load_n((p), __ATOMIC_RELAXED)
#define ld_acquire(p)    __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define st_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define st_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
/* A store that a later load of another variable cannot pass (the Dekker
 * pattern: "publish my state, then look at yours"). */
#define st_seq_cst(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ld_seq_cst(p)    __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define xchg(p, v)       __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
#define cas(p, oldv, newv)                                                                         \
    ({                                                                                             \
        __typeof__(*(p)) cas_old_ = (oldv);                                                        \
        __atomic_compare_exchange_n((p), &cas_old_, (newv), false, __ATOMIC_ACQ_REL,               \
                                    __ATOMIC_ACQUIRE);                                             \
    })
#define fetch_add(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
#define fetch_sub(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_ACQ_REL)
/* Owner-only counters that other threads read: a relaxed increment keeps
 * readers free of torn values without a locked instruction. */
#define counter_inc(p)    st_relaxed((p), ld_relaxed(p) + 1)
#define counter_add(p, v) st_relaxed((p), ld_relaxed(p) + (v))

/* Code that reads state other threads change, on purpose and without
 * synchronisation, and validates what it read (task dumps): the races are
 * by design, so ThreadSanitizer is told not to watch its accesses. */
#define URG__RACY_READER __attribute__((no_sanitize("thread")))

/* errno of the thread the caller runs on now. glibc declares
 * __errno_location() const, so a compiler may take errno's address once
 * and reuse it after a call that switched tasks; a task that resumes on
 * another thread would then read and write the first thread's errno.
 * Task code that touches errno across a possible switch reads it through
 * this out-of-line call, which looks the address up afresh every time
 * (netpoll.c redefines errno to it). Signal-safe. */
URG__HIDDEN int *urg__errno_here(void);

static inline void cpu_relax(void) { __builtin_ia32_pause(); }

/* ---- printing (print.c) ------------------------------------------------
 * All of these write straight to fd 2 with write(2): Signal-safe, no malloc,
 * no stdio, usable with any lock held. A line is assembled in a stack buffer
 * so concurrent writers interleave by line, not by fragment. */
typedef struct urg__pbuf {
    char buf[512];
    size_t len;
} urg__pbuf;
URG__HIDDEN void urg__pb_str(urg__pbuf *b, const char *s);
URG__HIDDEN void urg__pb_u64(urg__pbuf *b, uint64_t v);
URG__HIDDEN void urg__pb_i64(urg__pbuf *b, int64_t v);
URG__HIDDEN void urg__pb_hex(urg__pbuf *b, uint64_t v);
URG__HIDDEN void urg__pb_flush(urg__pbuf *b);
URG__HIDDEN void urg__write_str(const char *s);

/* urg__throw prints "fatal error: <msg>", the task dump, and aborts.
 * Context: any. Signal-safe. */
URG__HIDDEN URG__NORETURN URG__COLD void urg__throw(const char *msg);

/* urg__warn prints one line "urgent: <what>: <detail>". Used for refused
 * misuse of void API functions (each call says so). Signal-safe. */
URG__HIDDEN URG__COLD void urg__warn(const char *what, const char *detail);

/* Invariant checks that stay on in release builds. */
#define URG__CHECK(cond, msg)                                                                      \
    do {                                                                                           \
        if (unlikely(!(cond)))                                                                     \
            urg__throw(msg);                                                                       \
    } while (0)

/* Monotonic clock in ns (vDSO). Signal-safe. */
URG__HIDDEN uint64_t urg__nanotime(void);
/* CLOCK_MONOTONIC_COARSE: a few ns, one tick (1-4 ms) of resolution;
 * for wait durations in dumps. Signal-safe. */
URG__HIDDEN uint64_t urg__nanotime_coarse(void);

/* Copy a string, truncating, always terminated. Signal-safe. */
static inline void urg__strlcpy(char *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; i + 1 < n && src[i]; i++)
        dst[i] = src[i];
    if (n)
        dst[i] = 0;
}

/* Cheap per-thread random numbers (wyrand). */
static inline uint64_t urg__rand_next(uint64_t *state)
{
    *state += 0xa0761d6478bd642fULL;
    __uint128_t t = (__uint128_t)*state * (*state ^ 0xe7037ed1a0b428dbULL);
    return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

#endif /* URG__INTERNAL_H */
