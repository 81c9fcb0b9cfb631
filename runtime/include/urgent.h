/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * urgent.h — the one public header of liburgent.
 *
 * urgent runs many cheap tasks on a few OS threads, the way Go's runtime runs
 * goroutines (G/M/P scheduler, work stealing, syscall handoff, an epoll
 * netpoller), and preempts tasks that run past their time slice with SIGURG,
 * the way Go 1.14+ does (async build), or only at runtime calls and
 * checkpoints (cooperative build).
 *
 * Conventions (docs/api.md has the long form):
 *   - every public symbol starts with urg_ (macros URG_);
 *   - functions return 0 or a count on success and a negative errno value on
 *     failure; errno is never the error channel, because a task may resume on
 *     another thread between a call and its read of errno;
 *   - bad arguments never crash: they return -EINVAL (or the error named at
 *     the function), or, for functions returning void, are ignored with one
 *     line on stderr;
 *   - durations and times are uint64_t nanoseconds.
 */
#ifndef URGENT_H
#define URGENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* URG_VERSION_MAJOR, _MINOR, _PATCH, _STRING, _NUMBER: the version these
 * headers belong to, generated from the build (installed beside urgent.h). */
#include "urgent_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(URG_BUILDING_LIBRARY)
#define URG_API __attribute__((visibility("default")))
#else
#define URG_API
#endif

/* The library's version, "MAJOR.MINOR.PATCH": the library the program
 * runs with, which URG_VERSION_STRING (the headers it was compiled with)
 * may predate. Any thread, any time; async-signal-safe. */
URG_API const char *urg_version(void);

/* A timeout that never expires (urg_select). */
#define URG_FOREVER UINT64_MAX

/* ------------------------------------------------------------------------ */
/* Running                                                                   */

typedef void (*urg_fn)(void *arg);

/* Zero-filled, or with only some fields named ({.maxprocs = 2}), is the
 * defaults for the rest. Fields are only ever appended (docs/api.md,
 * "Growing structs"). */
typedef struct urg_config {
    int maxprocs;        /* 0: automatic (affinity and cgroup quota); URG_MAXPROCS overrides 0 */
    uint64_t quantum_ns; /* 0: default 10 ms; URG_QUANTUM (e.g. "2ms", "500us") overrides 0 */
    size_t stack_size;   /* 0: default (256 KiB); URG_STACK (e.g. "256k") overrides 0 */
} urg_config;
/* The size of urg_config in 0.1, the smallest cfg_size urg_run2 accepts. */
#define URG_CONFIG_SIZE_VER0 24

/* Limits of the configuration (urg_run returns -EINVAL outside them). */
#define URG_MAXPROCS_MAX   1024
#define URG_QUANTUM_MIN_NS 100000ULL      /* 100 us */
#define URG_QUANTUM_MAX_NS 10000000000ULL /* 10 s */
#define URG_STACK_MIN      (16u * 1024u)
#define URG_STACK_MAX      (256u * 1024u * 1024u)

/* urg_run starts the runtime, runs main_fn(arg) as the first task and returns
 * 0 when main_fn returns. Tasks still alive then are not resumed and their
 * memory is released (docs/api.md, "when main returns"). The calling thread
 * serves as the runtime's monitor meanwhile; main_fn runs on another
 * thread. It may be called again afterwards.
 * Returns: 0; -EINVAL (main_fn NULL, cfg out of range); -EBUSY (nested or
 * concurrent call); -ENOMEM; or the error of the system call that failed
 * to set the runtime up (creating a thread, epoll, eventfd, sigaction). */
URG_API int urg_run(urg_fn main_fn, void *arg, const urg_config *cfg);

/* urg_run with the size of the caller's urg_config: urg_run2(f, a, &cfg,
 * sizeof cfg). Fields past cfg_size take their defaults (a program built
 * with older headers); bytes past this library's urg_config must be zero
 * (a program built with newer headers, using a field this library does not
 * have). Returns what urg_run returns, and -EINVAL for cfg_size below
 * URG_CONFIG_SIZE_VER0, -E2BIG for a nonzero byte past this library's
 * struct. cfg NULL: the defaults, whatever cfg_size. */
URG_API int urg_run2(urg_fn main_fn, void *arg, const urg_config *cfg, size_t cfg_size);

/* ------------------------------------------------------------------------ */
/* Tasks                                                                     */

/* Spawn a task running fn(arg). Returns 0; -EINVAL (fn NULL); -EPERM (the
 * runtime is not running); -ENOMEM (no memory for its descriptor; its stack
 * comes at its first run, and running out of memory then is fatal, as in
 * Go). May be called from any thread while the runtime runs. */
URG_API int urg_go(urg_fn fn, void *arg);
URG_API void urg_yield(void);           /* runtime.Gosched */
URG_API void urg_sleep(uint64_t ns);    /* outside a task: nanosleep */
URG_API uint64_t urg_now(void);         /* monotonic clock, ns */
URG_API uint64_t urg_task_id(void);     /* 0 when not called from a task */
URG_API void urg_checkpoint(void);      /* yield if a preemption was requested */
URG_API void urg_preempt_disable(void); /* nestable; no preemption inside, async or at
                                           checkpoints; a request waits for enable */
URG_API void urg_preempt_enable(void);
URG_API void urg_syscall_enter(void); /* bracket a blocking call (entersyscall) */
URG_API void urg_syscall_exit(void);  /* (exitsyscall) */

/* ------------------------------------------------------------------------ */
/* Procs and modes                                                           */

URG_API int urg_maxprocs(void);             /* 0 when the runtime is not running */
URG_API int urg_set_maxprocs(int n);        /* stop-the-world resize; -EINVAL for n < 1 or
                                              n > URG_MAXPROCS_MAX; -EPERM when not running
                                              or main returned before the world stopped;
                                              -ENOMEM (nothing changed) */
URG_API const char *urg_preempt_mode(void); /* "async" or "cooperative" (the build) */

/* Declare [start, end) as code that must never be interrupted by an async
 * preemption (for example code that holds a pthread lock or keeps a TLS
 * address in a register). Ranges are process-wide and permanent: up to 64
 * for the life of the process. Returns 0; -EINVAL (start >= end or NULL);
 * -ENOSPC (table full). Callable at any time. */
URG_API int urg_preempt_unsafe_range(const void *start, const void *end);

/* Opt the shared object that contains addr (any function or variable of
 * it) in to async preemption. Only the main program is preempted by
 * default: a task running in any other shared object yields at its next
 * runtime call instead (docs/preemption.md). The C library, the loader
 * and the unwinders can never be opted in. Returns 0; -EINVAL (NULL);
 * -ENOENT (no loaded object contains addr); -EPERM (never preemptible);
 * -ENOSPC (64 already). Process-wide and permanent; callable at any time.
 * URG_PREEMPT_MODULES=name:name does the same by file name. */
URG_API int urg_preempt_module(const void *addr);

/* ------------------------------------------------------------------------ */
/* Synchronisation (plain structs, pthread style; zero-filled = initialised) */

typedef struct urg_wg {
    uint64_t urg_opaque[4];
} urg_wg;
typedef struct urg_mutex {
    uint64_t urg_opaque[3];
} urg_mutex;
#define URG_WG_INITIALIZER                                                                         \
    {                                                                                              \
        {                                                                                          \
            0, 0, 0, 0                                                                             \
        }                                                                                          \
    }
#define URG_MUTEX_INITIALIZER                                                                      \
    {                                                                                              \
        {                                                                                          \
            0, 0, 0                                                                                \
        }                                                                                          \
    }

URG_API void urg_wg_init(urg_wg *wg);
URG_API void urg_wg_add(urg_wg *wg, int64_t delta); /* a negative total is refused */
URG_API void urg_wg_done(urg_wg *wg);
URG_API void urg_wg_wait(urg_wg *wg);
URG_API void urg_mutex_init(urg_mutex *m);
URG_API void urg_mutex_lock(urg_mutex *m);
URG_API int urg_mutex_trylock(urg_mutex *m); /* 0 or -EBUSY; -EINVAL for NULL */
URG_API void urg_mutex_unlock(urg_mutex *m); /* unlocking an unlocked mutex is refused;
                                                no owner is recorded (as pthread's default) */

/* ------------------------------------------------------------------------ */
/* Channels                                                                  */

typedef struct urg_chan urg_chan; /* opaque */

/* elem_size may be 0 (signal-only channels); capacity 0 is unbuffered.
 * NULL on bad arguments (elem_size > 65536, capacity > INT32_MAX, a buffer
 * size that overflows) or no memory. */
URG_API urg_chan *urg_chan_new(size_t elem_size, size_t capacity);
URG_API int urg_chan_send(urg_chan *c, const void *elem); /* blocks; -EPIPE if closed */
URG_API int urg_chan_recv(urg_chan *c, void *elem_out);   /* blocks; -EPIPE once closed and
                                                              drained; elem_out may be NULL */
URG_API int urg_chan_close(urg_chan *c);                  /* -EPIPE if already closed */
/* Frees the channel. Tasks still blocked on it are woken with -EPIPE first. */
URG_API void urg_chan_free(urg_chan *c);

/* Non-blocking forms: -EAGAIN when the operation would block. */
URG_API int urg_chan_try_send(urg_chan *c, const void *elem);
URG_API int urg_chan_try_recv(urg_chan *c, void *elem_out);
URG_API int urg_chan_len(const urg_chan *c); /* elements buffered now, or -EINVAL */
URG_API int urg_chan_cap(const urg_chan *c);

/* select over several channels (Go's select statement). */
enum { URG_SELECT_SEND = 1, URG_SELECT_RECV = 2 };
typedef struct urg_select_case {
    urg_chan *chan; /* NULL: the case is never chosen (like a nil channel in Go) */
    int op;         /* URG_SELECT_SEND or URG_SELECT_RECV */
    void *elem;     /* send: the value to send; recv: where to store it (may be NULL) */
    int result;     /* out, for the chosen case: 0, or -EPIPE (closed) */
} urg_select_case;

/* Waits until one case can proceed, completes it and returns its index.
 * Among several ready cases one is chosen at random. timeout_ns 0 never
 * blocks (-EAGAIN when none is ready); URG_FOREVER waits without limit (with
 * no usable case: forever, like Go's empty select); any other value returns
 * -ETIMEDOUT once it has elapsed. Every case's result is reset to 0 first.
 * A send case on a closed channel is chosen with -EPIPE (Go panics there).
 * -EINVAL for bad cases or n > 65536; -ENOMEM (over 8 cases, no memory). */
URG_API int urg_select(urg_select_case *cases, size_t n, uint64_t timeout_ns);

/* ------------------------------------------------------------------------ */
/* I/O through the netpoller                                                 */

/* They park the task, not the thread, while the descriptor is not ready,
 * whether or not the caller set O_NONBLOCK; EINTR is retried. Outside a task
 * they block the calling thread. A NULL buffer with n > 0 is -EFAULT. As with
 * read(2) and write(2): a broken pipe raises SIGPIPE (and gives -EPIPE), and
 * an error after part of a write returns the count written. Several tasks
 * may wait on one descriptor; all park. close(2) does not wake a task
 * parked on the descriptor (epoll forgets it): use urg_close. */
URG_API ssize_t urg_read(int fd, void *buf, size_t n); /* bytes, 0 at EOF, or -errno */
URG_API ssize_t urg_write(int fd, const void *buf,
                          size_t n); /* all bytes unless an error, or -errno */
URG_API int urg_accept(int fd, struct sockaddr *addr, socklen_t *len); /* the new fd, or -errno */
URG_API int urg_connect(int fd, const struct sockaddr *addr, socklen_t len); /* 0 or -errno */
URG_API int urg_close(int fd); /* wakes fd's waiters with -EBADF, then closes: 0 or -errno */

/* ------------------------------------------------------------------------ */
/* Counters and debugging                                                    */

typedef struct urg_stats {
    uint64_t tasks_created, tasks_live, context_switches, steals;
    /* Preemption. Invariants: requests >= signals >= async + deferred, and
     * requests >= async + cooperative (retries count as requests; a request
     * is honoured at most once). */
    uint64_t preempt_requests;    /* sysmon found a task past its quantum (or a
                                     stop-the-world asked it to yield) */
    uint64_t preempt_signals;     /* SIGURGs sent */
    uint64_t preempt_async;       /* preemptions completed by the signal path */
    uint64_t preempt_deferred;    /* signals that landed at an unsafe point */
    uint64_t preempt_cooperative; /* requests honoured at a checkpoint or runtime call */
    uint64_t syscall_handoffs;    /* Ps taken from threads blocked in syscalls */
    int maxprocs, idle_procs, threads, idle_threads, spinning_threads;
    uint64_t global_runq, local_runq; /* tasks queued now */
    /* What an async preemption costs the preempted thread: from the SIGURG
     * handler's entry to the next task running there (signal delivery not
     * included). Median and 99th percentile, to 250 ns, over this run; costs
     * over 64 us count as 64 us. */
    uint64_t preempt_cost_samples;
    uint64_t preempt_cost_p50_ns, preempt_cost_p99_ns;
    /* Safe-point checks that reused an earlier stack walk's verdict instead
     * of walking again (docs/preemption.md). */
    uint64_t preempt_walks_memo;
    /* Requests made early because a woken task waited for a P whose task
     * had run the wake-up granularity (URG_DEBUG=wakepreempt; counted in
     * preempt_requests too). */
    uint64_t preempt_wakeup;
    /* Sum of the timed preemptions' costs, in ns (each counted as measured,
     * not as its bucket's edge): the histogram's _sum in urg_stats_format. */
    uint64_t preempt_cost_sum_ns;
} urg_stats;

/* Fills *out (zeroes when the runtime is not running). Any thread. */
URG_API void urg_stats_get(urg_stats *out);

/* urg_stats_get with the size of the caller's struct, safe whichever
 * headers the caller was built with: urg_stats_get2(&st, sizeof st).
 * Fills min(size, sizeof(urg_stats)) bytes (fields are only appended, so a
 * smaller, older struct gets the fields it has) and zeroes the rest of a
 * larger, newer one. Returns the bytes filled with values, or -EINVAL
 * (out NULL, size 0 or over 4096). Any thread. */
URG_API int urg_stats_get2(urg_stats *out, size_t size);

/* Formats of urg_stats_format. */
#define URG_STATS_PROMETHEUS 1 /* Prometheus text exposition format 0.0.4 */
#define URG_STATS_TEXT       2 /* "name value" lines, the urg_stats fields */

/* Writes a snapshot of every counter into buf in the given format, always
 * NUL-terminated when len > 0 (cut short if buf is too small), like
 * snprintf. Returns the length the whole text needs (without the NUL), so
 * a return >= len means truncated; buf NULL with len 0 asks for the length
 * only. -EINVAL for an unknown format or buf NULL with len > 0. Any thread;
 * with no run in progress the counters are 0. */
URG_API int urg_stats_format(char *buf, size_t len, int format);

/* Prints every task with its state and a symbolic backtrace to stderr (what
 * SIGQUIT prints). Async-signal-safe. */
URG_API void urg_dump(void);

/* Timeline trace (Chrome Trace Event JSON, for ui.perfetto.dev): one track
 * per proc with a slice per task run and why it ended, one for sysmon.
 * urg_trace_start: 0, -EINVAL (path NULL or ""), -EBUSY (a trace is being
 * recorded), or -errno of opening path. urg_trace_stop: writes the rest and
 * closes the file: 0, -ENOENT (no trace), -EIO (a write failed). A trace
 * also ends when the run ends. Any thread but a signal handler. */
URG_API int urg_trace_start(const char *path);
URG_API int urg_trace_stop(void);

#ifdef __cplusplus
}
#endif

#endif /* URGENT_H */
