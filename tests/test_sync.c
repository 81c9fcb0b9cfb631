/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_sync.c — urg_mutex, urg_wg and urg_preempt_disable/enable.
 *
 * The mutex parks tasks instead of threads, lets a running task barge in
 * ahead of a woken waiter, and hands the lock straight to a waiter that has
 * waited over 1 ms; the tests check what those choices must still
 * guarantee: mutual exclusion under real contention (several procs, and
 * async preemption inside critical sections), no waiter starving, trylock
 * and misuse answers, and a lock shared with a plain thread that blocks on
 * a futex.
 *
 * The wait group packs counter and waiter count in one word so the final
 * done can tell whether it must touch the wait group again. The lifetime
 * rule it exists for (a wait group on the waiter's stack may vanish the
 * moment urg_wg_wait returns, while the last done is still returning on
 * another proc) is stressed here: the stack is scribbled over right after
 * each wait, and a late write by the done side shows up as a changed
 * pattern.
 *
 * Misuse of void functions (unlocking an unlocked mutex, a negative wait
 * group counter, urg_preempt_enable without disable) must print one
 * "urgent: ..." line and change nothing; those tests run in a child
 * process so its stderr can be read.
 */
#include "testutil.h"

#include <pthread.h>

#define MS 1000000ull

/* A test that means the blocking path waits until the blocked task (or
 * plain thread) is parked (tu_await_parked*, tu_await_thread_parked),
 * never for a time that stands for "blocked by now". */

/* Busy for about ns without runtime calls, so without switch points in
 * the cooperative build and preemptible only by signal in the async one. */
static void spin_ns(uint64_t ns)
{
    uint64_t end = urg_now() + ns;
    while (urg_now() < end) {
    }
}

/* Wait until a task is parked for reason, or until *flag is set: the
 * task went past the point where it should have blocked, which the CHECK
 * after this then reports at once rather than at tu_await's deadline. */
static void await_parked_or_flag(int reason, const int *flag)
{
    uint64_t deadline = urg_now() + (uint64_t)TU_AWAIT_DEADLINE_S * 1000000000ull;
    for (unsigned polls = 0; !tu_parked(0, reason); polls++) {
        if (__atomic_load_n(flag, __ATOMIC_SEQ_CST))
            return;
        if (urg_now() > deadline)
            tu_await_fail(urg__waitreason_str(reason), 1, 0);
        tu_await_poll(polls, reason);
    }
}

/* Count the "urgent: " lines in a child's output. */
static int warning_lines(const char *out)
{
    int n = 0;
    for (const char *p = out; (p = strstr(p, "urgent: ")) != NULL; p++)
        if (p == out || p[-1] == '\n')
            n++;
    return n;
}

/* Runs fn at procs in a child; the child exits 0 when urg_run returned 0
 * and no CHECK failed, and prints the first failure otherwise. */
struct child_job {
    urg_fn fn;
    int procs;
};

static int child_runner(void *arg)
{
    struct child_job *j = arg;
    tu_reset();
    urg_config cfg = {.maxprocs = j->procs};
    if (urg_run(j->fn, NULL, &cfg) != 0) {
        fprintf(stderr, "urg_run failed\n");
        return 1;
    }
    if (tu_failures) {
        fprintf(stderr, "CHECK failed: %s\n", tu_first_failure);
        return 1;
    }
    return 0;
}

static struct tu_child child_res;

static void run_in_child(urg_fn fn, int procs)
{
    struct child_job job = {.fn = fn, .procs = procs};
    tu_in_child(child_runner, &job, 50, &child_res);
    if (!WIFEXITED(child_res.status) || WEXITSTATUS(child_res.status) != 0) {
        child_res.out[2000] = 0;
        fail_msg("child failed at %d procs (wait status 0x%x):\n%s", procs, child_res.status,
                 child_res.out);
    }
}

/* ---- mutex: exclusion --------------------------------------------------- */

#define MX_TASKS 8
#define MX_ITERS 4000

struct mx {
    urg_mutex mu;
    int inside;
    uint64_t counter; /* plain: only the mutex protects it */
    urg_wg wg;
};

static void mx_task(void *arg)
{
    struct mx *m = arg;
    for (int i = 0; i < MX_ITERS; i++) {
        urg_mutex_lock(&m->mu);
        CHECK(__atomic_fetch_add(&m->inside, 1, __ATOMIC_SEQ_CST) == 0);
        /* A slow read-modify-write, sometimes parked or yielded inside the
         * critical section, so overlaps would lose updates. */
        uint64_t c = *(volatile uint64_t *)&m->counter;
        if (i % 64 == 0)
            urg_yield();
        else if (i % 97 == 0)
            urg_sleep(10000);
        else
            for (volatile int k = 0; k < 50; k++) {
            }
        *(volatile uint64_t *)&m->counter = c + 1;
        __atomic_fetch_sub(&m->inside, 1, __ATOMIC_SEQ_CST);
        urg_mutex_unlock(&m->mu);
    }
    urg_wg_done(&m->wg);
}

static void mx_main(void *arg)
{
    (void)arg;
    static struct mx m;
    memset(&m, 0, sizeof(m));
    urg_mutex_init(&m.mu);
    urg_wg_add(&m.wg, MX_TASKS);
    for (int i = 0; i < MX_TASKS; i++)
        CHECK(urg_go(mx_task, &m) == 0);
    urg_wg_wait(&m.wg);
    CHECK(m.counter == (uint64_t)MX_TASKS * MX_ITERS);
    /* Unlocked again at the end. */
    CHECK(urg_mutex_trylock(&m.mu) == 0);
    urg_mutex_unlock(&m.mu);
}

static void test_sync_mutex_mutual_exclusion(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(mx_main, NULL, tu_procs_list[i]);
}

/* ---- mutex: trylock ----------------------------------------------------- */

struct holder {
    urg_mutex *mu;
    int holding;
    int release;
    urg_wg wg;
};

static void holder_task(void *arg)
{
    struct holder *h = arg;
    urg_mutex_lock(h->mu);
    __atomic_store_n(&h->holding, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&h->release, __ATOMIC_SEQ_CST))
        urg_sleep(MS);
    urg_mutex_unlock(h->mu);
    urg_wg_done(&h->wg);
}

static void trylock_main(void *arg)
{
    (void)arg;
    urg_mutex mu = URG_MUTEX_INITIALIZER;
    CHECK(urg_mutex_trylock(&mu) == 0);
    CHECK(urg_mutex_trylock(&mu) == -EBUSY); /* not recursive */
    urg_mutex_unlock(&mu);
    CHECK(urg_mutex_trylock(&mu) == 0);
    urg_mutex_unlock(&mu);

    /* Held by another task: -EBUSY until it lets go. */
    struct holder h = {.mu = &mu};
    urg_wg_add(&h.wg, 1);
    CHECK(urg_go(holder_task, &h) == 0);
    while (!__atomic_load_n(&h.holding, __ATOMIC_SEQ_CST))
        urg_sleep(MS);
    for (int i = 0; i < 100; i++)
        CHECK(urg_mutex_trylock(&mu) == -EBUSY);
    __atomic_store_n(&h.release, 1, __ATOMIC_SEQ_CST);
    urg_wg_wait(&h.wg);
    CHECK(urg_mutex_trylock(&mu) == 0);
    urg_mutex_unlock(&mu);
    CHECK(urg_mutex_trylock(NULL) == -EINVAL);
}

static void test_sync_mutex_trylock(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(trylock_main, NULL, tu_procs_list[i]);
}

/* ---- mutex: misuse ------------------------------------------------------ */

static void bad_unlock_main(void *arg)
{
    (void)arg;
    urg_mutex mu;
    urg_mutex_init(&mu);
    urg_mutex_unlock(&mu); /* refused: one warning */
    /* Still an ordinary, unlocked mutex. */
    CHECK(urg_mutex_trylock(&mu) == 0);
    CHECK(urg_mutex_trylock(&mu) == -EBUSY);
    urg_mutex_unlock(&mu);
    /* With a waiter parked on it, too. */
    struct holder h = {.mu = &mu};
    urg_mutex_lock(&mu);
    urg_wg_add(&h.wg, 1);
    h.release = 1;
    CHECK(urg_go(holder_task, &h) == 0);
    await_parked_or_flag(WAIT_MUTEX, &h.holding);
    CHECK(__atomic_load_n(&h.holding, __ATOMIC_SEQ_CST) == 0);
    urg_mutex_unlock(&mu);
    urg_wg_wait(&h.wg);
    CHECK(h.holding == 1);
    CHECK(urg_mutex_trylock(&mu) == 0);
    urg_mutex_unlock(&mu);
    urg_mutex_unlock(NULL); /* refused: a second warning */
}

static void test_sync_mutex_unlock_unlocked_refused(void **state)
{
    (void)state;
    run_in_child(bad_unlock_main, 2);
    assert_int_equal(warning_lines(child_res.out), 2);
}

/* ---- mutex: no starvation ----------------------------------------------- */

#define ST_TASKS  6
#define ST_RUN_NS (1000 * MS)
/* Far above the 1 ms starvation threshold and the usual scheduling noise
 * (plus whatever stall the stall meter saw), below the run: a starved
 * task waits for most of it. */
#define ST_MAX_WAIT_NS (300 * MS)

struct starve {
    urg_mutex mu;
    uint64_t end;
    uint64_t max_wait[ST_TASKS];
    int count[ST_TASKS];
    int ids;
    urg_wg wg;
};

/* Each task relocks right after unlocking, the pattern that starves
 * others when a lock only ever goes to whoever is running. */
static void st_task(void *arg)
{
    struct starve *s = arg;
    int id = __atomic_fetch_add(&s->ids, 1, __ATOMIC_RELAXED);
    while (urg_now() < s->end) {
        uint64_t t0 = urg_now();
        urg_mutex_lock(&s->mu);
        uint64_t w = urg_now() - t0;
        if (w > s->max_wait[id])
            s->max_wait[id] = w;
        s->count[id]++;
        spin_ns(50000);
        urg_mutex_unlock(&s->mu);
        /* The cooperative build switches only at runtime calls. */
        urg_checkpoint();
    }
    urg_wg_done(&s->wg);
}

static struct starve starve_state;

static void starve_main(void *arg)
{
    (void)arg;
    struct starve *s = &starve_state;
    memset(s, 0, sizeof(*s));
    s->end = urg_now() + ST_RUN_NS;
    urg_wg_add(&s->wg, ST_TASKS);
    for (int i = 0; i < ST_TASKS; i++)
        CHECK(urg_go(st_task, s) == 0);
    urg_wg_wait(&s->wg);
}

static void test_sync_mutex_no_waiter_starves(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++) {
        struct tu_stall_meter meter;
        tu_stall_meter_start(&meter);
        RUN_AT(starve_main, NULL, tu_procs_list[i]);
        uint64_t stall = tu_stall_meter_stop(&meter);
        uint64_t worst = 0;
        for (int t = 0; t < ST_TASKS; t++)
            worst = starve_state.max_wait[t] > worst ? starve_state.max_wait[t] : worst;
        print_message("at %d procs: longest wait for the mutex %llu ms; a thread kept off its CPU "
                      "%llu ms (information)\n",
                      tu_procs_list[i], (unsigned long long)(worst / MS),
                      (unsigned long long)(stall / MS));
        for (int t = 0; t < ST_TASKS; t++) {
            if (starve_state.count[t] < 3 || starve_state.max_wait[t] >= ST_MAX_WAIT_NS + stall)
                fail_msg("at %d procs: task %d got the lock %d times, waited up to %llu ms "
                         "(the VM stalled threads for up to %llu ms)",
                         tu_procs_list[i], t, starve_state.count[t],
                         (unsigned long long)(starve_state.max_wait[t] / MS),
                         (unsigned long long)(stall / MS));
        }
    }
}

/* ---- mutex and plain threads -------------------------------------------- */

#define TH_ITERS 20000

struct mx_thread {
    uint64_t main_task;
    g_t *thread_g; /* the thread's stand-in, for tu_await_thread_parked */
    struct mx m;
    int phase; /* the hand-shake below */
    urg_wg thread_done;
};

static void wait_phase(int *phase, int want)
{
    while (__atomic_load_n(phase, __ATOMIC_SEQ_CST) < want)
        usleep(1000);
}

static void *mx_plain_thread(void *arg)
{
    struct mx_thread *t = arg;
    __atomic_store_n(&t->thread_g, tu_thread_g(), __ATOMIC_RELEASE);
    for (int i = 0; i < TH_ITERS; i++) {
        urg_mutex_lock(&t->m.mu);
        CHECK(__atomic_fetch_add(&t->m.inside, 1, __ATOMIC_SEQ_CST) == 0);
        uint64_t c = *(volatile uint64_t *)&t->m.counter;
        *(volatile uint64_t *)&t->m.counter = c + 1;
        __atomic_fetch_sub(&t->m.inside, 1, __ATOMIC_SEQ_CST);
        urg_mutex_unlock(&t->m.mu);
    }
    /* Hold it while a task blocks on it. */
    wait_phase(&t->phase, 1);
    urg_mutex_lock(&t->m.mu);
    __atomic_store_n(&t->phase, 2, __ATOMIC_SEQ_CST);
    wait_phase(&t->phase, 3);
    tu_await_parked(t->main_task, WAIT_MUTEX); /* the task blocks on it */
    __atomic_store_n(&t->phase, 4, __ATOMIC_SEQ_CST);
    urg_mutex_unlock(&t->m.mu);
    /* Then block on it while a task holds it. */
    wait_phase(&t->phase, 5);
    urg_mutex_lock(&t->m.mu);
    CHECK(__atomic_load_n(&t->phase, __ATOMIC_SEQ_CST) == 6);
    __atomic_store_n(&t->phase, 7, __ATOMIC_SEQ_CST);
    urg_mutex_unlock(&t->m.mu);
    urg_wg_done(&t->thread_done);
    return NULL;
}

static void mx_thread_main(void *arg)
{
    (void)arg;
    static struct mx_thread t;
    memset(&t, 0, sizeof(t));
    t.main_task = urg_task_id();
    urg_wg_add(&t.m.wg, 4);
    urg_wg_add(&t.thread_done, 1);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, mx_plain_thread, &t) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(urg_go(mx_task, &t.m) == 0);
    urg_wg_wait(&t.m.wg);
    __atomic_store_n(&t.phase, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&t.phase, __ATOMIC_SEQ_CST) < 2)
        urg_sleep(MS);
    __atomic_store_n(&t.phase, 3, __ATOMIC_SEQ_CST);
    /* The thread holds it: this task parks until the thread unlocks. */
    urg_mutex_lock(&t.m.mu);
    CHECK(__atomic_load_n(&t.phase, __ATOMIC_SEQ_CST) == 4);
    __atomic_store_n(&t.phase, 5, __ATOMIC_SEQ_CST);
    tu_await_thread_parked(&t.thread_g, WAIT_MUTEX); /* the thread blocks on it */
    CHECK(__atomic_load_n(&t.phase, __ATOMIC_SEQ_CST) == 5);
    __atomic_store_n(&t.phase, 6, __ATOMIC_SEQ_CST);
    urg_mutex_unlock(&t.m.mu);
    urg_wg_wait(&t.thread_done);
    CHECK(t.phase == 7);
    CHECK(t.m.counter == 4ull * MX_ITERS + TH_ITERS);
    urg_syscall_enter();
    pthread_join(th, NULL);
    urg_syscall_exit();
}

static void test_sync_mutex_shared_with_plain_thread(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(mx_thread_main, NULL, tu_procs_list[i]);
}

/* ---- wait group --------------------------------------------------------- */

#define WG_TASKS 32

struct wgt {
    urg_wg wg;
    int flags[WG_TASKS];
    int ids;
};

static void wg_worker(void *arg)
{
    struct wgt *w = arg;
    int id = __atomic_fetch_add(&w->ids, 1, __ATOMIC_RELAXED);
    urg_sleep((uint64_t)(id % 7) * 300000);
    __atomic_store_n(&w->flags[id], 1, __ATOMIC_SEQ_CST);
    urg_wg_done(&w->wg);
}

static void wg_main(void *arg)
{
    (void)arg;
    struct wgt w = {0};
    urg_wg_init(&w.wg);
    urg_wg_add(&w.wg, WG_TASKS);
    for (int i = 0; i < WG_TASKS; i++)
        CHECK(urg_go(wg_worker, &w) == 0);
    urg_wg_wait(&w.wg);
    for (int i = 0; i < WG_TASKS; i++)
        CHECK(__atomic_load_n(&w.flags[i], __ATOMIC_SEQ_CST) == 1);
}

static void test_sync_wg_wait_returns_after_all_done(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(wg_main, NULL, tu_procs_list[i]);
}

static void wg_zero_main(void *arg)
{
    (void)arg;
    urg_wg a = URG_WG_INITIALIZER, b;
    urg_wg_init(&b);
    uint64_t t0 = urg_now();
    urg_wg_wait(&a);
    urg_wg_wait(&b);
    /* Back to zero by add(+n) then add(-n): also no wait. */
    urg_wg_add(&b, 5);
    urg_wg_add(&b, -5);
    urg_wg_wait(&b);
    CHECK(urg_now() - t0 < 1000 * MS); /* did not block (a hang would be forever) */
}

static void test_sync_wg_wait_zero_returns_at_once(void **state)
{
    (void)state;
    RUN_AT(wg_zero_main, NULL, 1);
    /* From a plain thread (no runtime) too. */
    urg_wg wg = URG_WG_INITIALIZER;
    urg_wg_wait(&wg);
}

struct reuse {
    urg_wg wg;
    int round_done;
};

static void reuse_worker(void *arg)
{
    struct reuse *r = arg;
    __atomic_fetch_add(&r->round_done, 1, __ATOMIC_SEQ_CST);
    urg_wg_done(&r->wg);
}

static void wg_reuse_main(void *arg)
{
    (void)arg;
    struct reuse r = {0};
    for (int round = 0; round < 200; round++) {
        __atomic_store_n(&r.round_done, 0, __ATOMIC_SEQ_CST);
        int n = 1 + round % 5;
        urg_wg_add(&r.wg, n);
        for (int i = 0; i < n; i++)
            CHECK(urg_go(reuse_worker, &r) == 0);
        urg_wg_wait(&r.wg);
        CHECK(__atomic_load_n(&r.round_done, __ATOMIC_SEQ_CST) == n);
    }
}

static void test_sync_wg_reuse_after_zero(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(wg_reuse_main, NULL, tu_procs_list[i]);
}

struct waiter_arg {
    g_t *thread_g; /* the thread's stand-in, for tu_await_thread_parked */
    urg_wg *gate;
    urg_wg *finished;
    int *released;
};

static void gate_waiter(void *arg)
{
    struct waiter_arg *w = arg;
    urg_wg_wait(w->gate);
    __atomic_fetch_add(w->released, 1, __ATOMIC_SEQ_CST);
    urg_wg_done(w->finished);
}

#define NWAITERS 6

static void *gate_thread_waiter(void *arg)
{
    struct waiter_arg *w = arg;
    __atomic_store_n(&w->thread_g, tu_thread_g(), __ATOMIC_RELEASE);
    gate_waiter(w);
    return NULL;
}

/* Several waiters, tasks and a plain thread, all released by one done. */
static void wg_waiters_main(void *arg)
{
    (void)arg;
    urg_wg gate = URG_WG_INITIALIZER, finished = URG_WG_INITIALIZER;
    int released = 0;
    struct waiter_arg wa = {.gate = &gate, .finished = &finished, .released = &released};
    urg_wg_add(&gate, 1);
    urg_wg_add(&finished, NWAITERS + 1);
    for (int i = 0; i < NWAITERS; i++)
        CHECK(urg_go(gate_waiter, &wa) == 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, gate_thread_waiter, &wa) == 0);
    /* Every waiter blocks before the done that releases them all. */
    tu_await_parked_n(WAIT_WG, NWAITERS);
    tu_await_thread_parked(&wa.thread_g, WAIT_WG);
    CHECK(__atomic_load_n(&released, __ATOMIC_SEQ_CST) == 0);
    urg_wg_done(&gate);
    urg_wg_wait(&finished);
    CHECK(released == NWAITERS + 1);
    urg_syscall_enter();
    pthread_join(th, NULL);
    urg_syscall_exit();
}

static void test_sync_wg_several_waiters(void **state)
{
    (void)state;
    for (int i = 0; i < NPROCS_LIST; i++)
        RUN_AT(wg_waiters_main, NULL, tu_procs_list[i]);
}

/* add(-2) on a counter of 1 is refused and leaves 1; done on zero is
 * refused and leaves 0. */
struct neg {
    urg_wg wg;
    int returned;
    urg_wg finished;
};

static void neg_waiter(void *arg)
{
    struct neg *n = arg;
    urg_wg_wait(&n->wg);
    __atomic_store_n(&n->returned, 1, __ATOMIC_SEQ_CST);
    urg_wg_done(&n->finished);
}

static void wg_negative_main(void *arg)
{
    (void)arg;
    struct neg n = {0};
    urg_wg_add(&n.wg, 1);
    urg_wg_add(&n.wg, -2); /* warning 1 */
    urg_wg_add(&n.finished, 1);
    CHECK(urg_go(neg_waiter, &n) == 0);
    await_parked_or_flag(WAIT_WG, &n.returned);
    CHECK(__atomic_load_n(&n.returned, __ATOMIC_SEQ_CST) == 0); /* still 1 */
    urg_wg_done(&n.wg);
    urg_wg_wait(&n.finished);
    CHECK(n.returned == 1);

    struct neg z = {0};
    urg_wg_done(&z.wg); /* warning 2 */
    urg_wg_wait(&z.wg); /* still zero: returns */
    /* Had the refused done left -1, this add would make 0 and the waiter
     * would return at once. */
    urg_wg_add(&z.wg, 1);
    urg_wg_add(&z.finished, 1);
    CHECK(urg_go(neg_waiter, &z) == 0);
    await_parked_or_flag(WAIT_WG, &z.returned);
    CHECK(__atomic_load_n(&z.returned, __ATOMIC_SEQ_CST) == 0);
    urg_wg_done(&z.wg);
    urg_wg_wait(&z.finished);
    CHECK(z.returned == 1);
    urg_wg_add(NULL, 1); /* warning 3 */
}

static void test_sync_wg_negative_counter_refused(void **state)
{
    (void)state;
    run_in_child(wg_negative_main, 2);
    assert_int_equal(warning_lines(child_res.out), 3);
}

/* ---- wait group lifetime ------------------------------------------------ */

#define LT_DOERS     3
#define LT_MAX_ITERS 20000
#define LT_BUDGET_NS (2000 * MS)
#define SCRIBBLE     2048

struct lifetime {
    urg_wg *slot[LT_DOERS]; /* a wait group to call done on, or NULL */
    int stop;
    urg_wg doers;
};

/* Doers sit on other procs and call done on whatever wait group they are
 * handed, after a short random delay, so the final done races with the
 * waiter's return. */
static void lt_doer(void *arg)
{
    struct lifetime *lt = arg;
    static int ids;
    int id = __atomic_fetch_add(&ids, 1, __ATOMIC_RELAXED) % LT_DOERS;
    uint64_t rs = 0x2545f4914f6cdd1dull * (uint64_t)(id + 1);
    while (!__atomic_load_n(&lt->stop, __ATOMIC_ACQUIRE)) {
        urg_wg *wg = __atomic_exchange_n(&lt->slot[id], NULL, __ATOMIC_ACQ_REL);
        if (!wg) {
            urg_yield();
            continue;
        }
        rs ^= rs << 13;
        rs ^= rs >> 7;
        rs ^= rs << 17;
        for (volatile unsigned k = 0; k < rs % 2000; k++) {
        }
        urg_wg_done(wg);
    }
    urg_wg_done(&lt->doers);
}

/* The wait group lives in this frame only. */
static __attribute__((noinline)) void lt_one(struct lifetime *lt, int id, int waiters)
{
    struct {
        char pad1[128];
        urg_wg wg;
        char pad2[128];
    } f;
    memset(&f, 0, sizeof(f));
    urg_wg_add(&f.wg, waiters == 1 ? 1 : 2);
    __atomic_store_n(&lt->slot[id], &f.wg, __ATOMIC_RELEASE);
    if (waiters > 1)
        __atomic_store_n(&lt->slot[(id + 1) % LT_DOERS], &f.wg, __ATOMIC_RELEASE);
    urg_wg_wait(&f.wg);
    /* Returning ends the wait group's life. */
}

/* Reuses the stack where lt_one's frame was and checks nobody writes
 * into it afterwards. */
static __attribute__((noinline)) int lt_scribble(unsigned char pattern)
{
    volatile unsigned char buf[SCRIBBLE];
    for (int i = 0; i < SCRIBBLE; i++)
        buf[i] = pattern;
    for (volatile int k = 0; k < 500; k++) {
    }
    int bad = 0;
    for (int i = 0; i < SCRIBBLE; i++)
        bad += buf[i] != pattern;
    return bad;
}

static void lt_main(void *arg)
{
    (void)arg;
    static struct lifetime lt;
    memset(&lt, 0, sizeof(lt));
    urg_wg_add(&lt.doers, LT_DOERS);
    for (int i = 0; i < LT_DOERS; i++)
        CHECK(urg_go(lt_doer, &lt) == 0);
    uint64_t end = urg_now() + LT_BUDGET_NS;
    int iters = 0, corrupted = 0;
    for (; iters < LT_MAX_ITERS && urg_now() < end; iters++) {
        /* The previous iteration's slots were taken (its wait returned). */
        lt_one(&lt, iters % LT_DOERS, iters % 4 == 3 ? 2 : 1);
        corrupted += lt_scribble((unsigned char)(0x5a ^ iters));
    }
    __atomic_store_n(&lt.stop, 1, __ATOMIC_RELEASE);
    urg_wg_wait(&lt.doers);
    CHECK(corrupted == 0);
    CHECK(iters >= 20); /* a loaded VM at 4 procs under ASan manages a few hundred */
}

static void test_sync_wg_on_stack_freed_after_wait(void **state)
{
    (void)state;
    RUN_AT(lt_main, NULL, 4);
    RUN_AT(lt_main, NULL, 2);
}

/*
 * A task waiting on a wait group that only a plain thread will bring to
 * zero, parked before that thread has made any runtime call, is not a
 * deadlock (as in test_chan_plain_thread_that_starts_late): the thread
 * waits until the task is parked, so every task is asleep and the runtime
 * has not yet heard of the thread. Runs in a child because the failure
 * would be a fatal abort.
 */
struct late_wg {
    urg_wg wg;
    uint64_t main_task;
};

static void *late_done_thread(void *arg)
{
    struct late_wg *l = arg;
    tu_await_parked(l->main_task, WAIT_WG);
    urg_wg_done(&l->wg);
    return NULL;
}

static void late_wg_main(void *arg)
{
    (void)arg;
    struct late_wg l = {.wg = URG_WG_INITIALIZER, .main_task = urg_task_id()};
    urg_wg_add(&l.wg, 1);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, late_done_thread, &l) == 0);
    urg_wg_wait(&l.wg);
    urg_syscall_enter();
    pthread_join(th, NULL);
    urg_syscall_exit();
}

static void test_sync_wg_done_from_late_thread(void **state)
{
    (void)state;
    run_in_child(late_wg_main, 1);
}

/*
 * The same with a mutex: the plain thread has locked it when the task
 * blocks on it, by the uncontended fast path, which does not tell the
 * runtime that a plain thread is about; the task's park must still not be
 * taken for a deadlock. The thread unlocks only once the task is parked
 * on the mutex.
 */
struct thread_holds {
    urg_mutex mu;
    int locked;
    uint64_t main_task;
};

static void *holding_thread(void *arg)
{
    struct thread_holds *h = arg;
    urg_mutex_lock(&h->mu);
    __atomic_store_n(&h->locked, 1, __ATOMIC_RELEASE);
    tu_await_parked(h->main_task, WAIT_MUTEX);
    urg_mutex_unlock(&h->mu);
    return NULL;
}

static void thread_holds_main(void *arg)
{
    (void)arg;
    static struct thread_holds h;
    memset(&h, 0, sizeof(h));
    h.main_task = urg_task_id();
    pthread_t th;
    CHECK(pthread_create(&th, NULL, holding_thread, &h) == 0);
    tu_await_flag(&h.locked, "the thread holds the mutex");
    urg_mutex_lock(&h.mu);
    urg_mutex_unlock(&h.mu);
    urg_syscall_enter();
    pthread_join(th, NULL);
    urg_syscall_exit();
}

static void test_sync_mutex_held_by_plain_thread_blocks_task(void **state)
{
    (void)state;
    run_in_child(thread_holds_main, 1);
}

/* ---- preempt_disable / enable ------------------------------------------- */

struct flag {
    int ran;
};

static void set_flag(void *arg)
{
    __atomic_store_n(&((struct flag *)arg)->ran, 1, __ATOMIC_SEQ_CST);
}

static uint64_t preempt_requests(void)
{
    urg_stats st;
    urg_stats_get(&st);
    return st.preempt_requests;
}

/* Spin without runtime calls until sysmon has asked this task to yield
 * (its quantum ran out), or until `limit` passes. */
static int spin_until_preempt_requested(uint64_t limit)
{
    uint64_t before = preempt_requests(), end = urg_now() + limit;
    while (urg_now() < end)
        if (preempt_requests() != before)
            return 1;
    return 0;
}

/* Spin, mostly in this loop's own instructions: a preemption signal that
 * lands in urg_now (runtime code, then the vDSO: no safe points) is
 * deferred, and a loop that did little else would be preempted by luck. */
static int spin_until_flag(struct flag *f, uint64_t limit)
{
    uint64_t end = urg_now() + limit;
    for (unsigned i = 1;; i++) {
        if (__atomic_load_n(&f->ran, __ATOMIC_SEQ_CST))
            return 1;
        if (i % 4096 == 0 && urg_now() >= end)
            return 0;
    }
}

/* One proc, a 1 ms quantum: another runnable task gets the CPU only when
 * this one is preempted (async build) or passes a switch point. */
static void nest_main(void *arg)
{
    (void)arg;
    struct flag f = {0};
    urg_preempt_disable();
    CHECK(urg_go(set_flag, &f) == 0); /* after: urg_go honours a pending request */
    urg_preempt_disable();
    urg_preempt_enable(); /* still disabled once */
    CHECK(spin_until_preempt_requested(3000 * MS));
    spin_ns(5 * MS); /* time for the SIGURG to land and be deferred */
    CHECK(__atomic_load_n(&f.ran, __ATOMIC_SEQ_CST) == 0);
    /* The request stands; the last enable honours it at once. */
    urg_preempt_enable();
    CHECK(__atomic_load_n(&f.ran, __ATOMIC_SEQ_CST) == 1);

    if (tu_is_async() && !TU_TSAN) { /* TSan delays signals: no async preemption */
        /* Control: with preemption enabled, the same spin is preempted. */
        struct flag g = {0};
        CHECK(urg_go(set_flag, &g) == 0);
        CHECK(spin_until_flag(&g, 3000 * MS));
    }
}

static void test_sync_preempt_disable_nests(void **state)
{
    (void)state;
    tu_reset();
    urg_config cfg = {.maxprocs = 1, .quantum_ns = 1 * MS};
    assert_int_equal(urg_run(nest_main, NULL, &cfg), 0);
    assert_checks_ok();
}

static void unbalanced_main(void *arg)
{
    (void)arg;
    struct flag f = {0};
    urg_preempt_enable(); /* refused: one warning, count stays 0 */
    /* Had that made the count -1, this disable would bring it to 0 and the
     * spin would be preempted in the async build. (The task is spawned
     * after it: urg_go honours a pending request, and a slow start, under
     * a sanitizer, can leave one pending.) */
    urg_preempt_disable();
    CHECK(urg_go(set_flag, &f) == 0);
    CHECK(spin_until_preempt_requested(3000 * MS));
    spin_ns(5 * MS);
    CHECK(__atomic_load_n(&f.ran, __ATOMIC_SEQ_CST) == 0);
    urg_preempt_enable();
    CHECK(__atomic_load_n(&f.ran, __ATOMIC_SEQ_CST) == 1);
}

static int unbalanced_child(void *arg)
{
    (void)arg;
    tu_reset();
    urg_config cfg = {.maxprocs = 1, .quantum_ns = 1 * MS};
    if (urg_run(unbalanced_main, NULL, &cfg) != 0 || tu_failures) {
        fprintf(stderr, "CHECK failed: %s\n", tu_first_failure);
        return 1;
    }
    urg_preempt_enable(); /* outside a task: nothing to do, no warning */
    urg_preempt_disable();
    return 0;
}

static void test_sync_preempt_enable_without_disable_refused(void **state)
{
    (void)state;
    tu_in_child(unbalanced_child, NULL, 50, &child_res);
    if (!WIFEXITED(child_res.status) || WEXITSTATUS(child_res.status) != 0) {
        child_res.out[2000] = 0;
        fail_msg("child failed (wait status 0x%x):\n%s", child_res.status, child_res.out);
    }
    assert_int_equal(warning_lines(child_res.out), 1);
}

/* ---- group -------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_mutex_mutual_exclusion),
        cmocka_unit_test(test_sync_mutex_trylock),
        cmocka_unit_test(test_sync_mutex_unlock_unlocked_refused),
        cmocka_unit_test(test_sync_mutex_no_waiter_starves),
        cmocka_unit_test(test_sync_mutex_shared_with_plain_thread),
        cmocka_unit_test(test_sync_mutex_held_by_plain_thread_blocks_task),
        cmocka_unit_test(test_sync_wg_wait_returns_after_all_done),
        cmocka_unit_test(test_sync_wg_wait_zero_returns_at_once),
        cmocka_unit_test(test_sync_wg_reuse_after_zero),
        cmocka_unit_test(test_sync_wg_several_waiters),
        cmocka_unit_test(test_sync_wg_negative_counter_refused),
        cmocka_unit_test(test_sync_wg_on_stack_freed_after_wait),
        cmocka_unit_test(test_sync_wg_done_from_late_thread),
        cmocka_unit_test(test_sync_preempt_disable_nests),
        cmocka_unit_test(test_sync_preempt_enable_without_disable_refused),
    };
    return cmocka_run_group_tests(tests, tu_fd_group_setup, tu_fd_group_teardown);
}
