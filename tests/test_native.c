/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/test_native.c — native C that holds a lock of the threads library
 * behaves under async preemption as in the cooperative build
 * (docs/preemption.md, "The contract", line 1).
 *
 * Each case runs in a forked child with a deadline, because the failure
 * it guards against is a hang: two tasks on one proc take turns at a
 * lock, holding it across a call-free stretch three times the quantum
 * long. Preempted inside, the holder would leave its thread to the other
 * task, which then
 *   - blocks the thread on the lock (mutex, rwlock, C11 mtx): the holder
 *     waits in the run queue behind it, forever;
 *   - spins on it (spin lock): the same;
 *   - or takes it "again" (recursive mutex, flockfile: same thread, so the
 *     threads library lets it in): two tasks inside at once, which the
 *     owner check below catches.
 * The C++ guard of a function-local static is the same story: the second
 * caller blocks its thread in the guard's futex while the first is in the
 * initialiser. OpenSSL's RAND_bytes takes its DRBG lock inside libcrypto,
 * which is not opted in to preemption (the allowlist): without that rule
 * the next task on the thread gets EDEADLK from an error-checking lock.
 *
 * Both builds run every case; in the cooperative one they pass trivially
 * (nothing preempts), which is the point: the same program, the same
 * result.
 */
#include "testutil.h"

#include <dlfcn.h>
#include <errno.h>
#include <sys/mman.h>
#include <pthread.h>
#include <stdio.h>
#include <threads.h>

#define QUANTUM_NS 100000ull /* the shortest quantum */
#define HOLD_US    300       /* inside the lock: three quanta */
#define ROUNDS     60
#define NTASKS     2

/* ---- call-free busy work, calibrated ---- */

static uint64_t iters_per_us;

static __attribute__((noinline)) uint64_t busy(uint64_t n)
{
    volatile uint64_t x = 0;
    for (uint64_t i = 0; i < n; i++)
        x += i;
    return x;
}

static void calibrate(void)
{
    uint64_t n = 1000000, t0 = urg_now();
    busy(n);
    uint64_t dt = urg_now() - t0;
    iters_per_us = dt ? n * 1000 / dt : 1000;
    if (iters_per_us == 0)
        iters_per_us = 1;
}

static void busy_us(unsigned us) { busy(iters_per_us * us); }

/* ---- the lock kinds ---- */

enum kind { K_MUTEX, K_RECURSIVE, K_RWLOCK, K_SPIN, K_MTX, K_FLOCKFILE, K_NKINDS };
static const char *const kind_name[] = {"pthread mutex", "recursive mutex", "rwlock (write)",
                                        "spin lock",     "C11 mtx",         "flockfile"};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t rmu;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_spinlock_t spin;
static mtx_t cmtx;
static FILE *file;

static void take(enum kind k)
{
    switch (k) {
    case K_MUTEX:
        pthread_mutex_lock(&mu);
        break;
    case K_RECURSIVE:
        pthread_mutex_lock(&rmu);
        break;
    case K_RWLOCK:
        pthread_rwlock_wrlock(&rw);
        break;
    case K_SPIN:
        pthread_spin_lock(&spin);
        break;
    case K_MTX:
        mtx_lock(&cmtx);
        break;
    case K_FLOCKFILE:
        flockfile(file);
        break;
    default:
        break;
    }
}

static void give(enum kind k)
{
    switch (k) {
    case K_MUTEX:
        pthread_mutex_unlock(&mu);
        break;
    case K_RECURSIVE:
        pthread_mutex_unlock(&rmu);
        break;
    case K_RWLOCK:
        pthread_rwlock_unlock(&rw);
        break;
    case K_SPIN:
        pthread_spin_unlock(&spin);
        break;
    case K_MTX:
        mtx_unlock(&cmtx);
        break;
    case K_FLOCKFILE:
        funlockfile(file);
        break;
    default:
        break;
    }
}

static urg_stats stats; /* read at the end of the run */
static enum kind cur_kind;
static volatile int owner;
static int violations;
static urg_wg wg;

static void locker(void *arg)
{
    int me = (int)(intptr_t)arg + 1;
    for (int i = 0; i < ROUNDS; i++) {
        take(cur_kind);
        owner = me;
        busy_us(HOLD_US);
        if (owner != me)
            violations++; /* another task got in while we held it */
        give(cur_kind);
        busy_us(HOLD_US / 3); /* preemptible: no lock held */
    }
    urg_wg_done(&wg);
}

static void lock_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, NTASKS);
    for (int i = 0; i < NTASKS; i++)
        urg_go(locker, (void *)(intptr_t)i);
    urg_wg_wait(&wg);
    urg_stats_get(&stats);
}

static int lock_child(void *arg)
{
    cur_kind = (enum kind)(intptr_t)arg;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&rmu, &a);
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    mtx_init(&cmtx, mtx_plain);
    file = tmpfile();
    calibrate();
    urg_config cfg = {.maxprocs = 1, .quantum_ns = QUANTUM_NS};
    if (urg_run(lock_main, NULL, &cfg) != 0)
        return 2;
    printf("%s: %d violations; async %llu, deferred %llu\n", kind_name[cur_kind], violations,
           (unsigned long long)stats.preempt_async, (unsigned long long)stats.preempt_deferred);
    return violations ? 1 : 0;
}

/* run_case: run fn(arg) in a child; false (with a line) if it failed. */
static bool run_case(int (*fn)(void *), void *arg, const char *what)
{
    static struct tu_child res;
    tu_in_child(fn, arg, 60 * (TU_SANITIZED ? 3 : 1), &res);
    print_message("%s", res.out);
    if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0)
        return true;
    print_error("%s: child %s %d (a hang is killed by SIGALRM, 14)\n", what,
                WIFEXITED(res.status) ? "exited" : "died of signal",
                WIFEXITED(res.status) ? WEXITSTATUS(res.status) : WTERMSIG(res.status));
    return false;
}

static void test_native_lock_holder_is_not_preempted(void **state)
{
    (void)state;
    int failed = 0;
    for (int k = 0; k < K_NKINDS; k++)
        failed += !run_case(lock_child, (void *)(intptr_t)k, kind_name[k]);
    assert_int_equal(failed, 0);
}

/* ---- the C++ static guard ----
 * What g++ emits for `static T x = slow();` inside a function, written
 * out. The calls bind to urgent's definitions, which stand in front of
 * libstdc++'s (loaded here with dlopen, so that this C test needs no C++
 * compiler), as a C++ program's calls would. */

int __cxa_guard_acquire(int64_t *g); /* the C++ ABI; urgent's stand in front */
void __cxa_guard_release(int64_t *g);

static int64_t guard;
static volatile int initialised;

static void guarded_user(void *arg)
{
    (void)arg;
    if (!__atomic_load_n((char *)&guard, __ATOMIC_ACQUIRE) && __cxa_guard_acquire(&guard)) {
        busy_us(20 * HOLD_US); /* the slow constructor */
        initialised = 1;
        __cxa_guard_release(&guard);
    }
    if (!initialised)
        __atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED);
    urg_wg_done(&wg);
}

static void guard_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, 2);
    urg_go(guarded_user, NULL);
    urg_go(guarded_user, NULL);
    urg_wg_wait(&wg);
}

static int guard_child(void *arg)
{
    (void)arg;
    if (!dlopen("libstdc++.so.6", RTLD_NOW | RTLD_GLOBAL)) {
        printf("skipped: no libstdc++.so.6 (%s)\n", dlerror());
        return 0;
    }
    calibrate();
    urg_config cfg = {.maxprocs = 1, .quantum_ns = QUANTUM_NS};
    if (urg_run(guard_main, NULL, &cfg) != 0)
        return 2;
    printf("C++ static guard: %d callers saw it uninitialised\n", violations);
    return violations ? 1 : 0;
}

static void test_native_cxx_static_guard(void **state)
{
    (void)state;
    assert_true(run_case(guard_child, NULL, "C++ static guard"));
}

/* ---- OpenSSL ---- */

static int (*rand_bytes)(unsigned char *, int);
static int ssl_stop;   /* __atomic */
static int ssl_errors; /* __atomic */

static void ssl_user(void *arg)
{
    (void)arg;
    unsigned char buf[64];
    while (!__atomic_load_n(&ssl_stop, __ATOMIC_ACQUIRE)) {
        if (rand_bytes(buf, sizeof(buf)) != 1)
            __atomic_fetch_add(&ssl_errors, 1, __ATOMIC_RELAXED);
        busy_us(20);
        urg_checkpoint(); /* the cooperative build's way to let main run */
    }
    urg_wg_done(&wg);
}

static void ssl_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, 4);
    for (int i = 0; i < 4; i++)
        urg_go(ssl_user, NULL);
    urg_sleep(300 * 1000000ull);
    __atomic_store_n(&ssl_stop, 1, __ATOMIC_RELEASE);
    urg_wg_wait(&wg);
    urg_stats_get(&stats);
}

static int ssl_child(void *arg)
{
    int procs = (int)(intptr_t)arg;
    void *h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        printf("skipped: no libcrypto.so.3 (apt-get install libssl-dev): %s\n", dlerror());
        return 0;
    }
    rand_bytes = (int (*)(unsigned char *, int))dlsym(h, "RAND_bytes");
    if (!rand_bytes)
        return 3;
    calibrate();
    urg_config cfg = {.maxprocs = procs, .quantum_ns = QUANTUM_NS};
    if (urg_run(ssl_main, NULL, &cfg) != 0)
        return 2;
    printf("RAND_bytes, %d procs: %d failures; async %llu, deferred %llu\n", procs, ssl_errors,
           (unsigned long long)stats.preempt_async, (unsigned long long)stats.preempt_deferred);
    return ssl_errors ? 1 : 0;
}

static void test_native_openssl_rand_bytes(void **state)
{
    (void)state;
    bool one = run_case(ssl_child, (void *)(intptr_t)1, "OpenSSL, 1 proc");
    bool two = run_case(ssl_child, (void *)(intptr_t)2, "OpenSSL, 2 procs");
    assert_true(one && two);
}

/* ---- no proc is lost to a blocked thread (contract, line 2) ----
 * One proc. A task blocks its thread in a condition variable; the task
 * that would signal it can run only if the runtime takes the proc from
 * the blocked thread (runtime/detach.c). Both builds. */

static pthread_mutex_t cv_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cv_started, cv_flag; /* cv_mu; cv_started also read with __atomic */

static void cv_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cv_mu);
    __atomic_store_n(&cv_started, 1, __ATOMIC_RELEASE);
    while (!cv_flag)
        pthread_cond_wait(&cv, &cv_mu);
    pthread_mutex_unlock(&cv_mu);
    urg_wg_done(&wg);
}

static void cv_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, 1);
    urg_go(cv_waiter, NULL);
    while (!__atomic_load_n(&cv_started, __ATOMIC_ACQUIRE))
        urg_yield();
    pthread_mutex_lock(&cv_mu);
    cv_flag = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&cv_mu);
    urg_wg_wait(&wg);
}

static int cv_child(void *arg)
{
    (void)arg;
    urg_config cfg = {.maxprocs = 1};
    if (urg_run(cv_main, NULL, &cfg) != 0)
        return 2;
    printf("condition variable on 1 proc: done; detached %llu (blocked %llu)\n",
           (unsigned long long)sched.detaches, (unsigned long long)sched.detach_blocked);
    return 0;
}

/* ---- a thread-local's address held across a call-free stretch ----
 * The compiler computes a __thread variable's (or errno's) address once
 * and keeps it, in a register or a stack slot, for as long as it likes:
 * within a function, the thread cannot change. A task preempted while it
 * holds one must resume on the same thread, or it goes on writing the old
 * thread's copy. 8 tasks on 2 procs (under URG_DEBUG=chaos, every
 * preemption that may move a task does): each keeps its slot's address in
 * a register, or in a stack slot, across a call-free loop of 30 quanta,
 * and at the end compares it with the slot of the thread it is on. */

#define TLS_TASKS 8
#define TLS_US    3000 /* 30 quanta */

static __thread long tls_slot;
static int tls_moved;

static __attribute__((noinline)) long *tls_slot_here(void) { return &tls_slot; }

static void tls_user(void *arg)
{
    bool on_stack = (intptr_t)arg & 1;
    uint64_t n = iters_per_us * TLS_US;
    long *slot = &tls_slot;
    long *volatile stacked = slot; /* a stack slot, read back each round */
    for (uint64_t i = 0; i < n; i++) {
        long *p = on_stack ? stacked : slot;
        __asm__ volatile("" : "+r"(p)); /* opaque: keep it where it is */
        (*p)++;
    }
    if ((on_stack ? stacked : slot) != tls_slot_here())
        __atomic_fetch_add(&tls_moved, 1, __ATOMIC_RELAXED);
    urg_wg_done(&wg);
}

/* A task holding no such address is still preempted (and may move). */
static void tls_free_hog(void *arg)
{
    (void)arg;
    busy_us(10 * TLS_US); /* longer than sysmon's longest idle sleep (10 ms) */
    urg_wg_done(&wg);
}

static urg_stats tls_before;

static void tls_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, TLS_TASKS);
    for (int i = 0; i < TLS_TASKS; i++)
        urg_go(tls_user, (void *)(intptr_t)i);
    urg_wg_wait(&wg);
    /* Then 3 hogs that hold no such address, on the 2 procs: these must
     * still be preempted, or the scan refuses everything. */
    urg_stats_get(&tls_before);
    urg_wg_add(&wg, 3);
    for (int i = 0; i < 3; i++)
        urg_go(tls_free_hog, NULL);
    urg_wg_wait(&wg);
    urg_stats_get(&stats);
}

static int tls_child(void *arg)
{
    (void)arg;
    calibrate();
    urg_config cfg = {.maxprocs = 2, .quantum_ns = QUANTUM_NS};
    if (urg_run(tls_main, NULL, &cfg) != 0)
        return 2;
    printf("TLS address held: %d of %d tasks resumed on another thread; async %llu, deferred "
           "%llu, procs handed off %llu\n",
           tls_moved, TLS_TASKS, (unsigned long long)stats.preempt_async,
           (unsigned long long)stats.preempt_deferred, (unsigned long long)stats.syscall_handoffs);
    uint64_t free_async = stats.preempt_async - tls_before.preempt_async;
    printf("3 hogs holding none: async %llu, cooperative %llu, deferred %llu, requests %llu\n",
           (unsigned long long)free_async,
           (unsigned long long)(stats.preempt_cooperative - tls_before.preempt_cooperative),
           (unsigned long long)(stats.preempt_deferred - tls_before.preempt_deferred),
           (unsigned long long)(stats.preempt_requests - tls_before.preempt_requests));
    if (!strcmp(urg_preempt_mode(), "async") && !TU_TSAN && free_async == 0) {
        printf("hogs that hold no TLS address were not preempted: the scan refuses everything\n");
        return 1;
    }
    return tls_moved ? 1 : 0;
}

static void test_native_tls_address_stays_on_its_thread(void **state)
{
    (void)state;
    assert_true(run_case(tls_child, NULL, "TLS address, 8 tasks, 2 procs"));
}

/* ---- a task that lives in libc, beside a ticker ----
 * memset of 8 MB and qsort (with the program's comparator under libc's
 * frame) are code the handler never preempts. Before tasks could be
 * detached, such a hog kept the only proc for as long as it liked: a 1 ms
 * ticker beside it was late by up to 6.6 s. Now it loses the proc after
 * three deferred requests and runs on, on its own thread. The hog runs
 * until the ticker has ticked 50 times (or 30 s pass: the failure). The
 * async build only: in the cooperative one a hog keeps its proc, which is
 * what that build is for. */

#define LIBC_TICKS 50

static volatile int ticker_done;
static uint64_t libc_hog_rounds;

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void libc_hog(void *arg)
{
    (void)arg;
    size_t n = 8u << 20;
    unsigned char *buf = malloc(n);
    long *v = malloc(200000 * sizeof(long));
    uint64_t deadline = urg_now() + 30ull * 1000000000ull;
    for (uint64_t r = 0; !ticker_done && urg_now() < deadline; r++) {
        memset(buf, (int)r, n);
        for (long i = 0; i < 200000; i++)
            v[i] = (i * 7919 + (long)r) % 200000;
        qsort(v, 200000, sizeof(long), cmp_long);
        libc_hog_rounds++;
    }
    free(v);
    free(buf);
    urg_wg_done(&wg);
}

static void libc_ticker(void *arg)
{
    (void)arg;
    for (int i = 0; i < LIBC_TICKS; i++)
        urg_sleep(1000000);
    ticker_done = 1;
    urg_wg_done(&wg);
}

static void libc_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, 2);
    urg_go(libc_hog, NULL);
    urg_go(libc_ticker, NULL);
    urg_wg_wait(&wg);
    urg_stats_get(&stats);
}

static int libc_child(void *arg)
{
    (void)arg;
    urg_config cfg = {.maxprocs = 1};
    if (urg_run(libc_main, NULL, &cfg) != 0)
        return 2;
    printf("libc hog beside a ticker, 1 proc: ticker %s after %llu hog rounds; deferred %llu, "
           "procs handed off %llu\n",
           ticker_done ? "done" : "NOT done", (unsigned long long)libc_hog_rounds,
           (unsigned long long)stats.preempt_deferred, (unsigned long long)stats.syscall_handoffs);
    return ticker_done ? 0 : 1;
}

static void test_native_libc_hog_leaves_the_proc(void **state)
{
    (void)state;
    if (TU_TSAN || strcmp(urg_preempt_mode(), "async"))
        skip(); /* no requests to defer: ThreadSanitizer runs handlers late */
    assert_true(run_case(libc_child, NULL, "libc hog beside a 1 ms ticker, 1 proc"));
}

/* ---- code at the address of an unloaded object ----
 * The SIGURG handler walks stacks with a table of the loaded objects; an
 * object that is unloaded must leave it before the handler can walk code
 * placed at its old address, or the walk reads the object's unwind tables
 * where nothing is mapped any more (before: SIGSEGV in the handler, 5 of
 * 5 runs). Load a plugin, opt it in to preemption, unload it, map a loop
 * at its function's old address, and run that loop in a task while
 * another task waits for the proc: every request lands in the loop. A
 * plain thread ends the loop once the handler has run 20 times. */

#define UNLOAD_SIGNALS 20

static volatile int unload_flag;
static int (*unload_loop)(volatile int *);

static void *unload_releaser(void *arg)
{
    (void)arg;
    uint64_t deadline = urg_now() + 30ull * 1000000000ull;
    bool signalled = !strcmp(urg_preempt_mode(), "async") && !TU_TSAN; /* else none come */
    urg_stats s;
    do {
        usleep(1000);
        urg_stats_get(&s);
        /* A walk from the loop may also end in the task's entry, and then
         * the lasting deferral detaches it (runtime/detach.c): its proc is
         * handed to the waiter and requests stop. It did in 3 of 7 runs of
         * the parallel ctest on 2 cores (one printed: 4 signals, 3
         * deferred), which then timed out waiting for 20. */
    } while (signalled && s.preempt_signals < UNLOAD_SIGNALS && s.syscall_handoffs == 0 &&
             urg_now() < deadline);
    unload_flag = 1;
    return NULL;
}

static void unload_waiter(void *arg)
{
    (void)arg;
    urg_wg_done(&wg);
}

/* map_loop_at: the loop, at fn's address (its page must be free). */
static int (*map_loop_at(void *fn))(volatile int *)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t at = (uintptr_t)fn & ~(uintptr_t)(page - 1);
    unsigned char *code = mmap((void *)at, (size_t)page, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (code == MAP_FAILED || (uintptr_t)code != at)
        return NULL;
    /* 1: mov (%rdi),%eax; test %eax,%eax; je 1b; ret */
    static const unsigned char loop[] = {0x8b, 0x07, 0x85, 0xc0, 0x74, 0xfa, 0xc3};
    unsigned char *entry = code + ((uintptr_t)fn - at);
    memcpy(entry, loop, sizeof(loop));
    mprotect(code, (size_t)page, PROT_READ | PROT_EXEC);
    return (int (*)(volatile int *))(void *)entry;
}

static int unload_result; /* 0 ok, 2 setup failed, 3 skipped */

/* Everything during the run: the table the handler walks with was built
 * while the plugin was loaded (urg_preempt_module refreshes it). */
static void unload_main(void *arg)
{
    (void)arg;
    void *h = dlopen(URG_TEST_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    void *fn = h ? dlsym(h, "urg_test_plugin_spin") : NULL;
    if (!fn || urg_preempt_module(fn) != 0) {
        printf("cannot load and opt in %s: %s\n", URG_TEST_PLUGIN, h ? "" : dlerror());
        unload_result = 2;
        return;
    }
    dlclose(h);
    unload_loop = map_loop_at(fn);
    if (!unload_loop) {
        printf("skipped: the plugin's page is still mapped after dlclose\n");
        unload_result = 3;
        return;
    }
    urg_wg_add(&wg, 1);
    urg_go(unload_waiter, NULL); /* waits for the proc: requests come */
    pthread_t t;
    pthread_create(&t, NULL, unload_releaser, NULL);
    unload_loop(&unload_flag);
    pthread_join(t, NULL);
    urg_wg_wait(&wg);
    urg_stats_get(&stats);
}

static int unload_child(void *arg)
{
    (void)arg;
    urg_config cfg = {.maxprocs = 1, .quantum_ns = QUANTUM_NS};
    if (urg_run(unload_main, NULL, &cfg) != 0 || unload_result == 2)
        return 2;
    if (unload_result == 3)
        return 0;
    printf("code at an unloaded object's address: %llu signals, %llu deferred, %llu async, "
           "procs handed off %llu\n",
           (unsigned long long)stats.preempt_signals, (unsigned long long)stats.preempt_deferred,
           (unsigned long long)stats.preempt_async, (unsigned long long)stats.syscall_handoffs);
    /* The loop must have been interrupted: 20 times, or the 3 deferrals in
     * a row that detach a task and hand its proc off. */
    if (!strcmp(urg_preempt_mode(), "async") && !TU_TSAN &&
        stats.preempt_signals < (stats.syscall_handoffs ? 3u : UNLOAD_SIGNALS))
        return 1; /* the loop was not interrupted: nothing was tested */
    return 0;
}

static void test_native_dlclose_then_code_at_old_address(void **state)
{
    (void)state;
    assert_true(run_case(unload_child, NULL, "dlclose, then code at the old address"));
}

static void test_native_blocked_thread_loses_its_proc(void **state)
{
    (void)state;
    if (TU_TSAN)
        skip(); /* ThreadSanitizer runs handlers late: no detaching (detach.c) */
    assert_true(run_case(cv_child, NULL, "condition variable, 1 proc"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_native_lock_holder_is_not_preempted),
        cmocka_unit_test(test_native_cxx_static_guard),
        cmocka_unit_test(test_native_openssl_rand_bytes),
        cmocka_unit_test(test_native_blocked_thread_loses_its_proc),
        cmocka_unit_test(test_native_tls_address_stays_on_its_thread),
        cmocka_unit_test(test_native_dlclose_then_code_at_old_address),
        cmocka_unit_test(test_native_libc_hog_leaves_the_proc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
