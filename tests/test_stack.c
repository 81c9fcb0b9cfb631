/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_stack.c — task stacks: overflow detection, size, scale, and giving
 * memory back.
 *
 * Why these tests: C stacks cannot grow or move, so each task gets a fixed
 * slot of reserved memory (256 KiB by default) committed on touch, with a
 * guard area below. The promises to check are:
 *   - running off the end is never silent: "fatal error: stack overflow in
 *     task N" with a backtrace naming the function that recursed, under
 *     each guard mechanism (madvise guard pages, mprotect'ed pages, and the
 *     canary word that catches an overflow only after the fact and says
 *     so). These run in a child, since they abort;
 *   - a task may use nearly all of its stack, and cfg.stack_size (or
 *     URG_STACK) really sets the size, both ways;
 *   - a hundred thousand parked tasks fit without one mapping per stack
 *     (vm.max_map_count is 65,530 by default);
 *   - deep stacks give their memory back: when recycled, and when the run
 *     ends.
 * Depth is measured with frame addresses, not call counts, so the tests
 * hold whatever a build's frame sizes are (ASan's are larger).
 */
#include "testutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

/* Child results are big (64 KiB of output): static, and never leaked when
 * an assertion jumps out of a test. */
static struct tu_child child_res;

/* ---- going deep ---- */

#define KiB       1024u
#define FRAME_BUF 1024

struct deep {
    uintptr_t top; /* frame address at the task's entry */
    size_t use;    /* bytes below top to reach */
    void (*at_bottom)(struct deep *);
    int levels;
    int corrupt; /* frames whose contents changed while we were below */
};

/* stack_recurse_deep: recurse with ~1 KiB frames until `use` bytes of
 * stack are in use, call at_bottom there, and on the way back up check
 * every frame still holds what it wrote (another task's stack, or the
 * runtime, must not have written into ours). Not static and never
 * inlined, so backtraces name it. */
__attribute__((noinline, noclone)) int stack_recurse_deep(struct deep *d, int level);

int stack_recurse_deep(struct deep *d, int level)
{
    volatile unsigned char buf[FRAME_BUF];
    unsigned char v = (unsigned char)(level * 7 + 1);
    for (int i = 0; i < FRAME_BUF; i++)
        buf[i] = v;
    int r = 0;
    if ((uintptr_t)__builtin_frame_address(0) > d->top - d->use) {
        r = stack_recurse_deep(d, level + 1);
    } else {
        d->levels = level;
        if (d->at_bottom)
            d->at_bottom(d);
    }
    for (int i = 0; i < FRAME_BUF; i++)
        if (buf[i] != v) {
            d->corrupt++;
            break;
        }
    return r + buf[level % FRAME_BUF];
}

static int go_deep(struct deep *d)
{
    d->top = (uintptr_t)__builtin_frame_address(0);
    return stack_recurse_deep(d, 0);
}

/* ---- overflow, in a child ---- */

struct ovf {
    const char *guard;     /* URG_DEBUG=stackguard=..., or NULL */
    const char *env_stack; /* URG_STACK, or NULL */
    size_t stack_size;     /* cfg.stack_size */
    size_t use;            /* how deep the task goes */
};

static struct ovf *ovf_cur;

static void ovf_yield_at_bottom(struct deep *d)
{
    (void)d;
    /* A switch away: where canary mode checks. */
    urg_yield();
}

static void ovf_task(void *arg)
{
    (void)arg;
    struct deep d;
    memset(&d, 0, sizeof(d));
    d.use = ovf_cur->use;
    d.at_bottom = ovf_yield_at_bottom;
    char line[64];
    int n =
        snprintf(line, sizeof(line), "recursing in task %llu\n", (unsigned long long)urg_task_id());
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
    go_deep(&d);
    urg_yield();
    n = snprintf(line, sizeof(line), "survived at depth %d\n", d.levels);
    w = write(2, line, (size_t)n);
    (void)w;
}

static void ovf_main(void *arg)
{
    (void)arg;
    CHECK(urg_go(ovf_task, NULL) == 0);
    urg_sleep(2000ull * 1000 * 1000);
}

static int ovf_child(void *arg)
{
    tu_child_default_signals();
    ovf_cur = arg;
    if (ovf_cur->guard) {
        char v[64];
        snprintf(v, sizeof(v), "stackguard=%s", ovf_cur->guard);
        setenv("URG_DEBUG", v, 1);
    }
    if (ovf_cur->env_stack)
        setenv("URG_STACK", ovf_cur->env_stack, 1);
    else
        unsetenv("URG_STACK");
    urg_config cfg = {.maxprocs = 2, .stack_size = ovf_cur->stack_size};
    urg_run(ovf_main, NULL, &cfg);
    return 0; /* not reached if the overflow is caught */
}

/* Run an overflowing task in a child; check it died with the report. */
static void expect_overflow(struct ovf *o, const char *must_say)
{
    struct tu_child *res = &child_res;
    tu_in_child(ovf_child, o, TU_SANITIZED ? 60 : 20, res);
    const char *out = res->out;
    if (!WIFSIGNALED(res->status) || WTERMSIG(res->status) != SIGABRT)
        fail_msg("child was not aborted (status 0x%x); output:\n%s", res->status, out);
    const char *rec = strstr(out, "recursing in task ");
    assert_non_null(rec);
    unsigned long long id = strtoull(rec + strlen("recursing in task "), NULL, 10);
    char want[96];
    snprintf(want, sizeof(want), "fatal error: stack overflow in task %llu", id);
    if (!strstr(out, want))
        fail_msg("no \"%s\" in:\n%s", want, out);
    if (must_say && !strstr(strstr(out, want), must_say))
        fail_msg("no \"%s\" in the report:\n%s", must_say, out);
    if (!strstr(out, "stack_recurse_deep"))
        fail_msg("the backtrace does not name stack_recurse_deep:\n%s", out);
    if (strstr(out, "survived"))
        fail_msg("the task went on after overflowing:\n%s", out);
}

static void test_stack_overflow_reported_madvise(void **state)
{
    (void)state;
    /* Far past the end: the fault in the guard area is the report. */
    struct ovf o = {.guard = "madvise", .use = 1024 * KiB};
    expect_overflow(&o, "stack size 262144");
}

static void test_stack_overflow_reported_mprotect(void **state)
{
    (void)state;
    struct ovf o = {.guard = "mprotect", .use = 1024 * KiB};
    expect_overflow(&o, "stack size 262144");
}

static void test_stack_overflow_reported_canary(void **state)
{
    (void)state;
    /* No guard pages here: go only a few KiB past the end (inside the
     * guard area, which canary mode leaves mapped), so the overflow
     * tramples the canary without reaching another stack, and is found
     * when the task switches away. */
    struct ovf o = {.guard = "canary", .use = 256 * KiB + 4 * KiB};
    expect_overflow(&o, "canary");
}

/* ---- using most of a stack is fine ---- */

#define DEEP_TASKS 16

struct deep_case {
    struct deep d[DEEP_TASKS];
    urg_wg at_bottom, done;
    urg_chan *gate;
};

static struct deep_case *deep_cur;

static void deep_wait_at_bottom(struct deep *d)
{
    (void)d;
    urg_wg_done(&deep_cur->at_bottom);
    /* All tasks are deep at once here, and get moved around meanwhile. */
    CHECK(urg_chan_recv(deep_cur->gate, NULL) == -EPIPE);
    urg_yield();
}

static void deep_task(void *arg)
{
    struct deep *d = arg;
    go_deep(d);
    urg_wg_done(&deep_cur->done);
}

static void deep_main(void *arg)
{
    struct deep_case *c = arg;
    c->gate = urg_chan_new(0, 0);
    CHECK(c->gate != NULL);
    urg_wg_add(&c->at_bottom, DEEP_TASKS);
    urg_wg_add(&c->done, DEEP_TASKS);
    for (int i = 0; i < DEEP_TASKS; i++)
        CHECK(urg_go(deep_task, &c->d[i]) == 0);
    urg_wg_wait(&c->at_bottom);
    /* Every task is parked deep at the gate before it opens. */
    tu_await_parked_n(WAIT_CHAN_RECV, DEEP_TASKS);
    CHECK(urg_chan_close(c->gate) == 0);
    urg_wg_wait(&c->done);
    urg_chan_free(c->gate);
}

static void run_deep(size_t use, size_t stack_size, int procs)
{
    struct deep_case *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    deep_cur = c;
    for (int i = 0; i < DEEP_TASKS; i++) {
        c->d[i].use = use;
        c->d[i].at_bottom = deep_wait_at_bottom;
    }
    tu_reset();
    tu_wd_start(20, "deep stacks");
    urg_config cfg = {.maxprocs = procs, .stack_size = stack_size};
    int r = urg_run(deep_main, c, &cfg);
    tu_wd_stop();
    assert_int_equal(r, 0);
    assert_checks_ok();
    for (int i = 0; i < DEEP_TASKS; i++) {
        assert_true(c->d[i].levels >= (int)(use / (2 * FRAME_BUF)));
        assert_int_equal(c->d[i].corrupt, 0);
    }
    free(c);
}

static void test_stack_200k_of_256k_is_fine(void **state)
{
    (void)state;
    run_deep(200 * KiB, 0, 1);
    run_deep(200 * KiB, 0, 4);
}

static void test_stack_near_full_use_in_every_guard_mode(void **state)
{
    (void)state;
    /* 240 of 256 KiB, parked and moved around at the bottom: no guard
     * mechanism may fire early (the canary sits at the very bottom). */
    static const char *const modes[] = {"stackguard=madvise", "stackguard=mprotect",
                                        "stackguard=canary"};
    for (int m = 0; m < 3; m++) {
        setenv("URG_DEBUG", modes[m], 1);
        run_deep(240 * KiB, 0, 2);
        unsetenv("URG_DEBUG");
    }
}

/* ---- the configured size is the size ---- */

static void test_stack_size_config_honoured(void **state)
{
    (void)state;
    /* 100 KiB fits in 128 KiB stacks ... */
    run_deep(100 * KiB, 128 * KiB, 2);
    /* ... and not in 64 KiB ones, set by cfg or by URG_STACK. */
    struct ovf o = {.guard = NULL, .stack_size = 64 * KiB, .use = 100 * KiB};
    expect_overflow(&o, "stack size 65536");
    struct ovf e = {.guard = NULL, .env_stack = "64k", .use = 100 * KiB};
    expect_overflow(&e, "stack size 65536");
    /* A size that is not a page multiple is rounded up, not down. */
    run_deep(90 * KiB, 100000, 1);
    /* And a larger size than the default really is larger. */
    run_deep(400 * KiB, 512 * KiB, 2);
}

static void trivial_main(void *arg) { *(int *)arg = 1; }

static void test_stack_size_limits(void **state)
{
    (void)state;
    int ran = 0;
    urg_config cfg = {.stack_size = URG_STACK_MIN - 1};
    assert_int_equal(urg_run(trivial_main, &ran, &cfg), -EINVAL);
    cfg.stack_size = (size_t)URG_STACK_MAX + 1;
    assert_int_equal(urg_run(trivial_main, &ran, &cfg), -EINVAL);
    assert_int_equal(ran, 0);
    /* The smallest allowed stack runs a task (and the runtime's own calls
     * from it: spawning, parking, sleeping). */
    cfg.stack_size = URG_STACK_MIN;
    cfg.maxprocs = 2;
    assert_int_equal(urg_run(trivial_main, &ran, &cfg), 0);
    assert_int_equal(ran, 1);
    run_deep(4 * KiB, URG_STACK_MIN, 2);
}

/* ---- a hundred thousand parked tasks ---- */

struct park_case {
    int n;
    urg_wg parked, done;
    urg_chan *gate;
    int maps_before, maps_during;
    long rss_before, rss_during;
    uint64_t live;
};

static struct park_case *park_cur;

static void parked_task(void *arg)
{
    (void)arg;
    urg_wg_done(&park_cur->parked);
    CHECK(urg_chan_recv(park_cur->gate, NULL) == -EPIPE);
    urg_wg_done(&park_cur->done);
}

static void park_main(void *arg)
{
    struct park_case *c = arg;
    c->gate = urg_chan_new(0, 0);
    CHECK(c->gate != NULL);
    urg_wg_add(&c->parked, c->n);
    urg_wg_add(&c->done, c->n);
    for (int i = 0; i < c->n; i++)
        if (urg_go(parked_task, NULL) != 0) {
            CHECK(!"urg_go failed");
            urg_wg_add(&c->parked, -(int64_t)(c->n - i));
            urg_wg_add(&c->done, -(int64_t)(c->n - i));
            break;
        }
    urg_wg_wait(&c->parked);
    c->maps_during = tu_mappings();
    c->rss_during = tu_rss_kib();
    urg_stats s;
    urg_stats_get(&s);
    c->live = s.tasks_live;
    CHECK(urg_chan_close(c->gate) == 0);
    urg_wg_wait(&c->done);
    urg_chan_free(c->gate);
}

static void run_parked(struct park_case *c, int procs)
{
    park_cur = c;
    c->maps_before = tu_mappings();
    c->rss_before = tu_rss_kib();
    tu_reset();
    tu_wd_start(60, "parked tasks");
    tu_run(park_main, c, procs);
    tu_wd_stop();
    assert_checks_ok();
}

static void test_stack_100k_parked_tasks_few_mappings(void **state)
{
    (void)state;
    struct park_case c;
    memset(&c, 0, sizeof(c));
    c.n = TU_LIVE_CAP(TU_SANITIZED ? 10000 : 100000);
    run_parked(&c, 2);
    print_message("%d parked tasks: %d mappings (%d before), RSS %ld KiB (%ld before)\n", c.n,
                  c.maps_during, c.maps_before, c.rss_during, c.rss_before);
    assert_true(c.live >= (uint64_t)c.n);
    /* One mapping per ~1 GiB arena, not one or two per stack (ThreadSanitizer
     * maps memory of its own for every task it tracks). */
    if (!TU_TSAN) {
        assert_true(c.maps_during < 2000);
        assert_true(c.maps_during - c.maps_before < 500);
    }
}

static long max_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long v = 65530;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

static void test_stack_mprotect_guards_within_map_limit(void **state)
{
    (void)state;
    /* mprotect'ed guards split mappings, so the runtime spends at most a
     * quarter of vm.max_map_count on them and protects the rest of the
     * stacks with canaries; more stacks than that budget must still work
     * and stay clear of the limit. */
    long limit = max_map_count();
    struct park_case c;
    memset(&c, 0, sizeof(c));
    /* Past the budget where vm.max_map_count is the default; capped, since
     * some systems raise the limit a hundredfold. */
    long n = limit / 4 + 10000;
    c.n = TU_LIVE_CAP(TU_SANITIZED ? 10000 : (int)(n < 40000 ? n : 40000));
    setenv("URG_DEBUG", "stackguard=mprotect", 1);
    run_parked(&c, 2);
    unsetenv("URG_DEBUG");
    print_message("%d parked tasks, mprotect guards: %d mappings (limit %ld)\n", c.n, c.maps_during,
                  limit);
    assert_true(c.live >= (uint64_t)c.n);
    assert_true(c.maps_during - c.maps_before <= limit / 2 + 500);
    /* The mode is real: guards did split the arena. */
    assert_true(c.maps_during - c.maps_before > 1000);
}

/* ---- memory goes back ---- */

#define RSS_TASKS (TU_SANITIZED ? 100 : 200)

struct rss_case {
    struct deep d[RSS_TASKS];
    urg_wg at_bottom, done;
    urg_chan *gate;
    long rss_before, rss_peak, rss_after_exit;
};

static struct rss_case *rss_cur;

static void rss_wait_at_bottom(struct deep *d)
{
    (void)d;
    urg_wg_done(&rss_cur->at_bottom);
    CHECK(urg_chan_recv(rss_cur->gate, NULL) == -EPIPE);
}

static void rss_task(void *arg)
{
    go_deep(arg);
    urg_wg_done(&rss_cur->done);
}

static void rss_main(void *arg)
{
    struct rss_case *c = arg;
    c->gate = urg_chan_new(0, 0);
    CHECK(c->gate != NULL);
    urg_wg_add(&c->at_bottom, RSS_TASKS);
    urg_wg_add(&c->done, RSS_TASKS);
    for (int i = 0; i < RSS_TASKS; i++)
        CHECK(urg_go(rss_task, &c->d[i]) == 0);
    urg_wg_wait(&c->at_bottom);
    c->rss_peak = tu_rss_kib();
    CHECK(urg_chan_close(c->gate) == 0);
    urg_wg_wait(&c->done);
    /* The exited tasks' stacks reach the pool, and sysmon trims the pool
     * in the background (every 100 ms): wait up to a second for it. */
    long grown = c->rss_peak - c->rss_before;
    for (int i = 0; i < 50; i++) {
        urg_sleep(20 * 1000 * 1000);
        c->rss_after_exit = tu_rss_kib();
        if (c->rss_after_exit - c->rss_before < grown / 2)
            break;
    }
    urg_chan_free(c->gate);
}

static void test_stack_memory_given_back(void **state)
{
    (void)state;
    struct rss_case *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    rss_cur = c;
    for (int i = 0; i < RSS_TASKS; i++) {
        c->d[i].use = 200 * KiB;
        c->d[i].at_bottom = rss_wait_at_bottom;
    }
    long before = tu_rss_kib();
    c->rss_before = before;
    tu_reset();
    tu_wd_start(30, "stack memory");
    /* One proc, so every stack is freed into the same per-P cache and the
     * overflow into the pool (where stacks are trimmed) is predictable. */
    tu_run(rss_main, c, 1);
    tu_wd_stop();
    long after = tu_rss_kib();
    assert_checks_ok();
    print_message("RSS KiB: before %ld, %d tasks 200 KiB deep %ld, after they exit %ld, after "
                  "the run %ld\n",
                  before, RSS_TASKS, c->rss_peak, c->rss_after_exit, after);
    long grown = c->rss_peak - before;
    /* The stacks really were committed ... */
    assert_true(grown >= (long)RSS_TASKS * 150);
    /* ... recycled stacks are trimmed: at most a per-P cache of 32 stays
     * deep ... */
    assert_true(c->rss_after_exit - before < grown / 2);
    /* ... and the end of the run gives everything back. */
    assert_true(after - before < grown / 4);
    for (int i = 0; i < RSS_TASKS; i++)
        assert_int_equal(c->d[i].corrupt, 0);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stack_overflow_reported_madvise),
        cmocka_unit_test(test_stack_overflow_reported_mprotect),
        cmocka_unit_test(test_stack_overflow_reported_canary),
        cmocka_unit_test(test_stack_200k_of_256k_is_fine),
        cmocka_unit_test(test_stack_near_full_use_in_every_guard_mode),
        cmocka_unit_test(test_stack_size_config_honoured),
        cmocka_unit_test(test_stack_size_limits),
        cmocka_unit_test(test_stack_100k_parked_tasks_few_mappings),
        cmocka_unit_test(test_stack_mprotect_guards_within_map_limit),
        cmocka_unit_test(test_stack_memory_given_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
