/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_api.c — the public API's answers to misuse, and the environment.
 *
 * urgent.h promises that bad arguments never crash: functions return the
 * negative errno named in the header, void functions print one
 * "urgent: ..." line and change nothing, and malformed URG_* variables
 * print one line and leave the default in force. Programs (and other
 * people's tests) branch on those exact values, so each one is pinned
 * here, in and out of a run where the two differ:
 *   - urg_run: NULL main, nested and concurrent calls, every cfg limit
 *     (just inside is accepted, just outside is -EINVAL), and a refused
 *     call leaves the runtime usable;
 *   - urg_go, urg_set_maxprocs/urg_maxprocs, channels, select, mutexes,
 *     wait groups, unsafe ranges, urg_read/urg_write/accept/connect;
 *   - refused misuse of a mutex or wait group leaves it working;
 *   - URG_MAXPROCS, URG_QUANTUM, URG_STACK, URG_DEBUG: malformed and
 *     out-of-range values warn once per process and are ignored, valid
 *     values take effect, urg_config overrides them;
 *   - versions and growing structs: urg_version() is the URG_VERSION_*
 *     macros and project(VERSION); urg_stats_get2 fills exactly the size
 *     it is given and zeroes a larger struct's tail; urg_run2 reads a
 *     shorter or longer urg_config and refuses a longer one it cannot
 *     honour.
 * Anything that prints or sets the environment runs in a child process
 * (tu_in_child), whose output is captured and whose environment and
 * once-per-process warning state die with it.
 *
 * The quantum and stack size in force are not observable through the
 * public API without timing, so the environment tests read them from the
 * scheduler's state (the test links the static library).
 */
#include "testutil.h"

#include "runtime/sched.h"

#include <pthread.h>
#include <sys/socket.h>

static int baseline_threads;

static void noop(void *arg) { (void)arg; }

static void assert_child_exit0(const struct tu_child *c)
{
    if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0)
        fail_msg("child status 0x%x; output:\n%s", c->status, c->out);
}

/* ---- urg_run ---- */

static void test_api_run_null_main(void **state)
{
    (void)state;
    assert_int_equal(urg_run(NULL, NULL, NULL), -EINVAL);
    urg_config cfg = {.maxprocs = -1};
    assert_int_equal(urg_run(NULL, NULL, &cfg), -EINVAL);
}

static void test_api_run_cfg_out_of_range(void **state)
{
    (void)state;
    const urg_config bad[] = {
        {.maxprocs = -1},
        {.maxprocs = URG_MAXPROCS_MAX + 1},
        {.maxprocs = 1, .quantum_ns = 1},
        {.maxprocs = 1, .quantum_ns = URG_QUANTUM_MIN_NS - 1},
        {.maxprocs = 1, .quantum_ns = 11ull * 1000 * 1000 * 1000},
        {.maxprocs = 1, .quantum_ns = URG_QUANTUM_MAX_NS + 1},
        {.maxprocs = 1, .stack_size = 1024},
        {.maxprocs = 1, .stack_size = URG_STACK_MIN - 1},
        {.maxprocs = 1, .stack_size = 1024u * 1024u * 1024u},
        {.maxprocs = 1, .stack_size = (size_t)URG_STACK_MAX + 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = urg_run(noop, NULL, &bad[i]);
        if (r != -EINVAL)
            fail_msg("cfg #%zu: urg_run returned %d, want -EINVAL", i, r);
    }
    assert_int_equal(tu_threads(), baseline_threads);
}

static uint64_t seen_quantum;
static size_t seen_stack;
static int seen_procs;

static void probe(void *arg)
{
    (void)arg;
    seen_procs = urg_maxprocs();
    seen_quantum = urg__sched.quantum_ns;
    seen_stack = urg__sched.stack_size;
}

/* The limits themselves are inside the range. */
static void test_api_run_cfg_limits_accepted(void **state)
{
    (void)state;
    const urg_config good[] = {
        {.maxprocs = 1, .quantum_ns = URG_QUANTUM_MIN_NS},
        {.maxprocs = 1, .quantum_ns = URG_QUANTUM_MAX_NS},
        {.maxprocs = 1, .stack_size = URG_STACK_MIN},
        {.maxprocs = 2, .stack_size = URG_STACK_MAX},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        seen_procs = 0;
        int r = urg_run(probe, NULL, &good[i]);
        if (r != 0)
            fail_msg("cfg #%zu: urg_run returned %d, want 0", i, r);
        assert_int_equal(seen_procs, good[i].maxprocs);
        if (good[i].quantum_ns)
            assert_true(seen_quantum == good[i].quantum_ns);
        if (good[i].stack_size)
            assert_true(seen_stack == good[i].stack_size);
    }
    /* NULL cfg: defaults. */
    seen_procs = 0;
    assert_int_equal(urg_run(probe, NULL, NULL), 0);
    assert_true(seen_procs >= 1);
    assert_int_equal(tu_threads(), baseline_threads);
}

static int nested_rc, concurrent_rc;

static void *concurrent_runner(void *arg)
{
    (void)arg;
    concurrent_rc = urg_run(noop, NULL, NULL);
    return NULL;
}

static void nesting_main(void *arg)
{
    (void)arg;
    nested_rc = urg_run(noop, NULL, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, concurrent_runner, NULL) != 0) {
        CHECK(!"pthread_create");
        return;
    }
    urg_syscall_enter();
    pthread_join(th, NULL);
    urg_syscall_exit();
    /* The refusals left this run alone. */
    CHECK(urg_maxprocs() == 2);
    CHECK(urg_task_id() != 0);
}

static void test_api_run_nested_and_concurrent_busy(void **state)
{
    (void)state;
    tu_reset();
    nested_rc = concurrent_rc = 1;
    tu_run(nesting_main, NULL, 2);
    assert_checks_ok();
    assert_int_equal(nested_rc, -EBUSY);
    assert_int_equal(concurrent_rc, -EBUSY);
    /* And the next run is accepted. */
    tu_run(noop, NULL, 1);
    assert_int_equal(tu_threads(), baseline_threads);
}

/* ---- urg_go, procs ---- */

static int go_null_in_task, setprocs_rc[4], procs_after;

static void go_procs_main(void *arg)
{
    (void)arg;
    go_null_in_task = urg_go(NULL, NULL);
    setprocs_rc[0] = urg_set_maxprocs(0);
    setprocs_rc[1] = urg_set_maxprocs(-1);
    setprocs_rc[2] = urg_set_maxprocs(URG_MAXPROCS_MAX + 1);
    setprocs_rc[3] = urg_set_maxprocs(3);
    procs_after = urg_maxprocs();
}

static void test_api_go_and_procs_misuse(void **state)
{
    (void)state;
    assert_int_equal(urg_go(NULL, NULL), -EINVAL);
    assert_int_equal(urg_go(noop, NULL), -EPERM);
    assert_int_equal(urg_maxprocs(), 0);
    assert_int_equal(urg_set_maxprocs(0), -EINVAL);
    assert_int_equal(urg_set_maxprocs(2), -EPERM);

    tu_reset();
    tu_run(go_procs_main, NULL, 2);
    assert_int_equal(go_null_in_task, -EINVAL);
    assert_int_equal(setprocs_rc[0], -EINVAL);
    assert_int_equal(setprocs_rc[1], -EINVAL);
    assert_int_equal(setprocs_rc[2], -EINVAL);
    assert_int_equal(setprocs_rc[3], 0);
    assert_int_equal(procs_after, 3);
    assert_int_equal(urg_maxprocs(), 0);
    assert_int_equal(tu_threads(), baseline_threads);
}

static void test_api_outside_a_task(void **state)
{
    (void)state;
    const char *mode = urg_preempt_mode();
    assert_non_null(mode);
    assert_true(!strcmp(mode, "async") || !strcmp(mode, "cooperative"));
    assert_int_equal(urg_task_id(), 0);
    urg_stats st;
    memset(&st, 0xff, sizeof(st));
    urg_stats_get(&st);
    assert_int_equal(st.tasks_created, 0);
    assert_int_equal(st.maxprocs, 0);
    assert_int_equal(st.threads, 0);
    /* Task-only calls degrade to their thread equivalents or nothing. */
    uint64_t t0 = urg_now();
    urg_sleep(2 * 1000 * 1000);
    assert_true(urg_now() - t0 >= 2 * 1000 * 1000);
    urg_yield();
    urg_checkpoint();
    urg_preempt_disable();
    urg_preempt_enable();
    urg_syscall_enter();
    urg_syscall_exit();
}

/* ---- channels and select ---- */

struct chan_results {
    int send, recv, try_send, try_recv, close, len, cap;
    int sel_badop, sel_badop2, sel_nullcases, sel_nullelem, len_after_bad_select;
    bool big_null, huge_cap_null, max_ok, zero_ok;
};

static void chan_misuse(struct chan_results *r)
{
    int v = 1;
    r->send = urg_chan_send(NULL, &v);
    r->recv = urg_chan_recv(NULL, &v);
    r->try_send = urg_chan_try_send(NULL, &v);
    r->try_recv = urg_chan_try_recv(NULL, &v);
    r->close = urg_chan_close(NULL);
    r->len = urg_chan_len(NULL);
    r->cap = urg_chan_cap(NULL);
    urg_chan_free(NULL);

    r->big_null = urg_chan_new(65537, 1) == NULL;
    r->huge_cap_null = urg_chan_new(8, SIZE_MAX) == NULL && urg_chan_new(SIZE_MAX, 2) == NULL;
    urg_chan *c = urg_chan_new(65536, 1);
    r->max_ok = c != NULL;
    urg_chan_free(c);
    c = urg_chan_new(0, 0);
    r->zero_ok = c != NULL;
    urg_chan_free(c);

    /* A select with one bad case does nothing, not even its good cases. */
    urg_chan *b = urg_chan_new(sizeof(int), 4);
    urg_select_case cs[2] = {
        {.chan = b, .op = URG_SELECT_SEND, .elem = &v},
        {.chan = b, .op = 0, .elem = &v},
    };
    r->sel_badop = urg_select(cs, 2, 0);
    cs[1].op = URG_SELECT_RECV | URG_SELECT_SEND;
    r->sel_badop2 = urg_select(cs, 2, URG_FOREVER);
    r->sel_nullcases = urg_select(NULL, 1, 0);
    urg_select_case ne = {.chan = b, .op = URG_SELECT_SEND, .elem = NULL};
    r->sel_nullelem = urg_select(&ne, 1, 0);
    r->len_after_bad_select = urg_chan_len(b);
    urg_chan_free(b);
}

static void check_chan_results(const struct chan_results *r)
{
    assert_int_equal(r->send, -EINVAL);
    assert_int_equal(r->recv, -EINVAL);
    assert_int_equal(r->try_send, -EINVAL);
    assert_int_equal(r->try_recv, -EINVAL);
    assert_int_equal(r->close, -EINVAL);
    assert_int_equal(r->len, -EINVAL);
    assert_int_equal(r->cap, -EINVAL);
    assert_true(r->big_null);
    assert_true(r->huge_cap_null);
    assert_true(r->max_ok);
    assert_true(r->zero_ok);
    assert_int_equal(r->sel_badop, -EINVAL);
    assert_int_equal(r->sel_badop2, -EINVAL);
    assert_int_equal(r->sel_nullcases, -EINVAL);
    assert_int_equal(r->sel_nullelem, -EINVAL);
    assert_int_equal(r->len_after_bad_select, 0);
}

static struct chan_results chan_in_task;

static void chan_main(void *arg)
{
    (void)arg;
    chan_misuse(&chan_in_task);
}

static void test_api_chan_misuse(void **state)
{
    (void)state;
    struct chan_results outside;
    memset(&outside, 0, sizeof(outside));
    chan_misuse(&outside);
    check_chan_results(&outside);

    memset(&chan_in_task, 0, sizeof(chan_in_task));
    tu_run(chan_main, NULL, 1);
    check_chan_results(&chan_in_task);
}

/* ---- mutex and wait group misuse: refused, and they keep working ---- */

static int mutex_wg_sequence(void)
{
    int bad = 0;
    if (urg_mutex_trylock(NULL) != -EINVAL)
        bad |= 1;
    urg_mutex m = URG_MUTEX_INITIALIZER;
    urg_mutex_unlock(&m); /* refused: line 1 */
    if (urg_mutex_trylock(&m) != 0)
        bad |= 2; /* the refused unlock must not have broken it */
    if (urg_mutex_trylock(&m) != -EBUSY)
        bad |= 4;
    urg_mutex_unlock(&m);
    urg_mutex_unlock(&m); /* refused: line 2 */
    urg_mutex_lock(&m);
    if (urg_mutex_trylock(&m) != -EBUSY)
        bad |= 8;
    urg_mutex_unlock(&m);
    if (urg_mutex_trylock(&m) != 0)
        bad |= 16;
    urg_mutex_unlock(&m);

    urg_wg wg = URG_WG_INITIALIZER;
    urg_wg_done(&wg);                  /* refused: line 3 (negative counter) */
    urg_wg_add(&wg, -5);               /* refused: line 4 */
    urg_wg_add(&wg, (int64_t)1 << 40); /* refused: line 5 (out of range) */
    urg_wg_wait(&wg);                  /* the counter is still 0: returns */
    urg_wg_add(&wg, 2);
    urg_wg_done(&wg);
    urg_wg_done(&wg);
    urg_wg_wait(&wg);
    return bad;
}

enum { SEQ_LINES = 5 };

/* Each void function given NULL prints one line and does nothing. */
static void void_nulls(void)
{
    urg_mutex_init(NULL);
    urg_mutex_lock(NULL);
    urg_mutex_unlock(NULL);
    urg_wg_init(NULL);
    urg_wg_add(NULL, 1);
    urg_wg_done(NULL);
    urg_wg_wait(NULL);
    urg_chan_free(NULL);
    urg_stats_get(NULL);
}

enum { NULL_LINES = 9 };

static int task_bad;

static void misuse_task_main(void *arg)
{
    (void)arg;
    task_bad = mutex_wg_sequence();
    void_nulls();
    /* Unbalanced brackets: refused (one line each), and the task carries on. */
    urg_syscall_exit();
    urg_syscall_enter();
    urg_syscall_enter();
    urg_syscall_exit();
    urg_preempt_enable();
    urg_yield();
}

enum { BRACKET_LINES = 3 };

static int misuse_child(void *arg)
{
    (void)arg;
    int bad = mutex_wg_sequence();
    void_nulls();
    fprintf(stderr, "-- in a task --\n");
    fflush(stderr);
    urg_config cfg = {.maxprocs = 2};
    if (urg_run(misuse_task_main, NULL, &cfg) != 0)
        return 3;
    return bad ? 10 + bad : task_bad ? 100 + task_bad : 0;
}

static void test_api_void_misuse_refused_and_harmless(void **state)
{
    (void)state;
    struct tu_child c;
    tu_in_child(misuse_child, NULL, 20, &c);
    assert_child_exit0(&c);
    const char *split = strstr(c.out, "-- in a task --\n");
    assert_non_null(split);
    int outside = tu_count_lines(c.out, "urgent: ") - tu_count_lines(split, "urgent: ");
    int inside = tu_count_lines(split, "urgent: ");
    if (outside != SEQ_LINES + NULL_LINES || inside != SEQ_LINES + NULL_LINES + BRACKET_LINES)
        fail_msg("want %d \"urgent:\" lines outside and %d in a task, got %d and %d:\n%s",
                 SEQ_LINES + NULL_LINES, SEQ_LINES + NULL_LINES + BRACKET_LINES, outside, inside,
                 c.out);
}

/* ---- unsafe ranges ---- */

static char ranges_area[128];
static int ranges_in_task_rc[2];

static void ranges_main(void *arg)
{
    (void)arg;
    int ok = 0;
    for (int i = 32; i < 64; i++)
        ok += urg_preempt_unsafe_range(&ranges_area[i], &ranges_area[i + 1]) == 0;
    ranges_in_task_rc[0] = ok;
    ranges_in_task_rc[1] = urg_preempt_unsafe_range(&ranges_area[64], &ranges_area[65]);
}

static int ranges_child(void *arg)
{
    (void)arg;
    char *a = ranges_area;
    if (urg_preempt_unsafe_range(NULL, a) != -EINVAL ||
        urg_preempt_unsafe_range(a, NULL) != -EINVAL || urg_preempt_unsafe_range(a, a) != -EINVAL ||
        urg_preempt_unsafe_range(a + 1, a) != -EINVAL)
        return 2;
    /* Ranges of data, not code: registering them changes no behaviour. */
    for (int i = 0; i < 32; i++)
        if (urg_preempt_unsafe_range(&a[i], &a[i + 1]) != 0)
            return 3;
    urg_config cfg = {.maxprocs = 1};
    if (urg_run(ranges_main, NULL, &cfg) != 0)
        return 4;
    if (ranges_in_task_rc[0] != 32)
        return 5;
    if (ranges_in_task_rc[1] != -ENOSPC)
        return 6;
    if (urg_preempt_unsafe_range(&a[100], &a[101]) != -ENOSPC)
        return 7;
    /* Bad arguments are still -EINVAL, not -ENOSPC. */
    if (urg_preempt_unsafe_range(a, a) != -EINVAL)
        return 8;
    return 0;
}

/* The table is process-wide and permanent: fill it in a child. */
static void test_api_unsafe_range_limits(void **state)
{
    (void)state;
    struct tu_child c;
    tu_in_child(ranges_child, NULL, 20, &c);
    assert_child_exit0(&c);
}

/* ---- I/O on bad descriptors ---- */

struct io_results {
    ssize_t rd, wr;
    int acc, con;
};

static void io_misuse(struct io_results *r)
{
    char buf[4] = "abc";
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    r->rd = urg_read(-1, buf, sizeof(buf));
    r->wr = urg_write(-1, buf, sizeof(buf));
    r->acc = urg_accept(-1, (struct sockaddr *)&sa, &len);
    r->con = urg_connect(-1, (struct sockaddr *)&sa, len);
}

static struct io_results io_in_task;

static void io_main(void *arg)
{
    (void)arg;
    io_misuse(&io_in_task);
}

static void test_api_io_bad_fd(void **state)
{
    (void)state;
    struct io_results out;
    io_misuse(&out);
    assert_int_equal(out.rd, -EBADF);
    assert_int_equal(out.wr, -EBADF);
    assert_int_equal(out.acc, -EBADF);
    assert_int_equal(out.con, -EBADF);
    memset(&io_in_task, 0, sizeof(io_in_task));
    tu_run(io_main, NULL, 1);
    assert_int_equal(io_in_task.rd, -EBADF);
    assert_int_equal(io_in_task.wr, -EBADF);
    assert_int_equal(io_in_task.acc, -EBADF);
    assert_int_equal(io_in_task.con, -EBADF);
}

/* ---- environment ---- */

struct envcase {
    const char *var, *val; /* NULL var: no variable */
    urg_config cfg;
};

/* env_child: run once without any URG_* variable (the defaults), then
 * twice with the case's variable (the warning must come once per
 * process), printing what was in force each time. */
static int env_child(void *arg)
{
    const struct envcase *ec = arg;
    unsetenv("URG_MAXPROCS");
    unsetenv("URG_QUANTUM");
    unsetenv("URG_STACK");
    unsetenv("URG_DEBUG");
    urg_config dflt = {0};
    if (urg_run(probe, NULL, &dflt) != 0)
        return 2;
    printf("DEFAULT procs=%d quantum=%llu stack=%zu\n", seen_procs,
           (unsigned long long)seen_quantum, seen_stack);
    if (ec->var)
        setenv(ec->var, ec->val, 1);
    for (int i = 0; i < 2; i++) {
        if (urg_run(probe, NULL, &ec->cfg) != 0)
            return 3;
        printf("RUN procs=%d quantum=%llu stack=%zu\n", seen_procs,
               (unsigned long long)seen_quantum, seen_stack);
    }
    return 0;
}

struct envseen {
    int procs;
    unsigned long long quantum;
    size_t stack;
};

static void parse_env_output(const char *out, struct envseen *dflt, struct envseen runs[2])
{
    const char *p = strstr(out, "DEFAULT ");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "DEFAULT procs=%d quantum=%llu stack=%zu", &dflt->procs,
                            &dflt->quantum, &dflt->stack),
                     3);
    for (int i = 0; i < 2; i++) {
        p = strstr(p + 1, "RUN ");
        assert_non_null(p);
        assert_int_equal(sscanf(p, "RUN procs=%d quantum=%llu stack=%zu", &runs[i].procs,
                                &runs[i].quantum, &runs[i].stack),
                         3);
    }
}

/* A malformed value: one "urgent: ignoring VAR=..." line in two runs, and
 * the defaults of the run without the variable. */
static void check_malformed(const char *var, const char *val)
{
    struct envcase ec = {.var = var, .val = val};
    struct tu_child c;
    tu_in_child(env_child, &ec, 30, &c);
    assert_child_exit0(&c);
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "urgent: ignoring %s=", var);
    if (tu_count_lines(c.out, prefix) != 1 || tu_count_lines(c.out, "urgent: ") != 1)
        fail_msg("%s=%s: want exactly one warning line, got:\n%s", var, val, c.out);
    struct envseen d, r[2];
    parse_env_output(c.out, &d, r);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r[i].procs, d.procs);
        assert_true(r[i].quantum == d.quantum);
        assert_true(r[i].stack == d.stack);
    }
}

static void test_api_env_malformed_ignored_once(void **state)
{
    (void)state;
    check_malformed("URG_MAXPROCS", "abc");
    check_malformed("URG_MAXPROCS", "0");
    check_malformed("URG_MAXPROCS", "-2");
    check_malformed("URG_MAXPROCS", "3x");
    check_malformed("URG_MAXPROCS", "1025");
    check_malformed("URG_QUANTUM", "5");
    check_malformed("URG_QUANTUM", "1ns");
    check_malformed("URG_QUANTUM", "11s");
    check_malformed("URG_QUANTUM", "2 ms");
    check_malformed("URG_STACK", "12q");
    check_malformed("URG_STACK", "1k");
    check_malformed("URG_STACK", "1g");
    check_malformed("URG_DEBUG", "bogus");
    check_malformed("URG_DEBUG", "schedtrace=abc");
}

/* The documented defaults, seen with no variable set (cfg.maxprocs
 * fixed, since the automatic count depends on the machine). */
static void test_api_env_defaults(void **state)
{
    (void)state;
    struct envcase ec = {.var = NULL, .cfg = {.maxprocs = 2}};
    struct tu_child c;
    tu_in_child(env_child, &ec, 30, &c);
    assert_child_exit0(&c);
    assert_int_equal(tu_count_lines(c.out, "urgent: "), 0);
    struct envseen d, r[2];
    parse_env_output(c.out, &d, r);
    assert_true(d.procs >= 1);
    assert_true(d.quantum == 10ull * 1000 * 1000);
    assert_true(d.stack == 256u * 1024u);
    assert_int_equal(r[0].procs, 2);
}

struct valid_case {
    const char *var, *val;
    urg_config cfg;
    int procs;                  /* 0: not checked */
    unsigned long long quantum; /* 0: not checked */
    size_t stack;               /* 0: not checked */
};

static void test_api_env_valid_values_and_cfg_override(void **state)
{
    (void)state;
    const struct valid_case cases[] = {
        {"URG_MAXPROCS", "3", {0}, 3, 0, 0},
        {"URG_MAXPROCS", "1", {0}, 1, 0, 0},
        {"URG_QUANTUM", "2ms", {.maxprocs = 1}, 0, 2000000ull, 0},
        {"URG_QUANTUM", "500us", {.maxprocs = 1}, 0, 500000ull, 0},
        {"URG_QUANTUM", "1s", {.maxprocs = 1}, 0, 1000000000ull, 0},
        {"URG_STACK", "128k", {.maxprocs = 1}, 0, 0, 128u * 1024u},
        {"URG_STACK", "1m", {.maxprocs = 1}, 0, 0, 1024u * 1024u},
        {"URG_STACK", "65536", {.maxprocs = 1}, 0, 0, 65536u},
        /* urg_config wins over the environment. */
        {"URG_MAXPROCS", "3", {.maxprocs = 2}, 2, 0, 0},
        {"URG_QUANTUM", "2ms", {.maxprocs = 1, .quantum_ns = 5000000}, 0, 5000000ull, 0},
        {"URG_STACK", "128k", {.maxprocs = 1, .stack_size = 64u * 1024u}, 0, 0, 64u * 1024u},
        /* Known URG_DEBUG keys are accepted silently. */
        {"URG_DEBUG", "asyncpreemptoff=1,scheddetail=0", {.maxprocs = 1}, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct valid_case *v = &cases[i];
        struct envcase ec = {.var = v->var, .val = v->val, .cfg = v->cfg};
        struct tu_child c;
        tu_in_child(env_child, &ec, 30, &c);
        assert_child_exit0(&c);
        if (tu_count_lines(c.out, "urgent: ") != 0)
            fail_msg("%s=%s: unexpected warning:\n%s", v->var, v->val, c.out);
        struct envseen d, r[2];
        parse_env_output(c.out, &d, r);
        for (int k = 0; k < 2; k++) {
            if (v->procs && r[k].procs != v->procs)
                fail_msg("%s=%s: procs %d, want %d", v->var, v->val, r[k].procs, v->procs);
            if (v->quantum && r[k].quantum != v->quantum)
                fail_msg("%s=%s: quantum %llu, want %llu", v->var, v->val, r[k].quantum,
                         v->quantum);
            if (v->stack && r[k].stack != v->stack)
                fail_msg("%s=%s: stack %zu, want %zu", v->var, v->val, r[k].stack, v->stack);
        }
    }
}

/* ---- versions and growing structs ---- */

static void test_api_version_matches_macros(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", URG_VERSION_MAJOR, URG_VERSION_MINOR,
             URG_VERSION_PATCH);
    assert_non_null(urg_version());
    assert_string_equal(urg_version(), want);
    assert_string_equal(URG_VERSION_STRING, want);
    assert_int_equal(URG_VERSION_NUMBER,
                     URG_VERSION_MAJOR * 10000 + URG_VERSION_MINOR * 100 + URG_VERSION_PATCH);
#ifdef URG_PROJECT_VERSION
    /* The header was made from project(VERSION), not copied by hand. */
    assert_string_equal(urg_version(), URG_PROJECT_VERSION);
#endif
}

/* A urg_stats as a program built with newer headers might have it. */
struct stats_newer {
    urg_stats st;
    uint64_t later_field[3];
};

static void test_api_stats_get2_sizes(void **state)
{
    (void)state;
    unsigned char buf[sizeof(struct stats_newer) + 8];
    /* Refused: nothing written. */
    memset(buf, 0xab, sizeof(buf));
    assert_int_equal(urg_stats_get2(NULL, sizeof(urg_stats)), -EINVAL);
    assert_int_equal(urg_stats_get2((urg_stats *)buf, 0), -EINVAL);
    assert_int_equal(urg_stats_get2((urg_stats *)buf, 4097), -EINVAL);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0xab);
    /* An older, shorter struct: exactly its bytes, not one more. */
    size_t older = offsetof(urg_stats, preempt_requests);
    assert_int_equal(urg_stats_get2((urg_stats *)buf, older), (int)older);
    for (size_t i = 0; i < sizeof(buf); i++)
        if (buf[i] != (i < older ? 0 : 0xab))
            fail_msg("byte %zu is 0x%x after a %zu-byte urg_stats_get2", i, buf[i], older);
    /* A newer, longer one: ours, then zeroes up to its size. */
    memset(buf, 0xab, sizeof(buf));
    assert_int_equal(urg_stats_get2((urg_stats *)buf, sizeof(struct stats_newer)),
                     (int)sizeof(urg_stats));
    for (size_t i = 0; i < sizeof(buf); i++)
        if (buf[i] != (i < sizeof(struct stats_newer) ? 0 : 0xab))
            fail_msg("byte %zu is 0x%x after a newer-struct urg_stats_get2", i, buf[i]);
}

static urg_stats get2_full, get2_old;
static int get2_full_rc, get2_old_rc;

static void stats_get2_main(void *arg)
{
    (void)arg;
    urg_go(noop, NULL);
    urg_yield();
    memset(&get2_old, 0xab, sizeof(get2_old));
    get2_full_rc = urg_stats_get2(&get2_full, sizeof(get2_full));
    get2_old_rc = urg_stats_get2(&get2_old, offsetof(urg_stats, steals));
}

/* During a run the sized call copies the live counters, as urg_stats_get. */
static void test_api_stats_get2_in_a_run(void **state)
{
    (void)state;
    urg_config cfg = {.maxprocs = 2};
    assert_int_equal(urg_run(stats_get2_main, NULL, &cfg), 0);
    assert_int_equal(get2_full_rc, (int)sizeof(urg_stats));
    assert_true(get2_full.tasks_created >= 2);
    assert_int_equal(get2_full.maxprocs, 2);
    assert_int_equal(get2_old_rc, (int)offsetof(urg_stats, steals));
    assert_true(get2_old.tasks_created >= 2);
    assert_true(get2_old.context_switches >= 1);
    assert_true(get2_old.steals == 0xababababababababull); /* not written */
}

/* A urg_config as a program built with newer headers might have it. */
struct config_newer {
    urg_config cfg;
    uint64_t later_field;
};

static int run2_nested_rc;

static void run2_nesting_main(void *arg)
{
    (void)arg;
    seen_procs = urg_maxprocs();
    /* -EBUSY comes before any verdict on the struct, as for urg_run. */
    run2_nested_rc = urg_run2(noop, NULL, (const urg_config *)&seen_procs, 1);
}

static void test_api_run2_config_sizes(void **state)
{
    (void)state;
    struct config_newer n;
    memset(&n, 0, sizeof(n));
    n.cfg.maxprocs = 2;
    n.cfg.stack_size = URG_STACK_MIN;
    /* Too short for any urg_config, or longer than any will be. */
    assert_int_equal(urg_run2(probe, NULL, &n.cfg, URG_CONFIG_SIZE_VER0 - 1), -EINVAL);
    assert_int_equal(urg_run2(probe, NULL, &n.cfg, 4097), -E2BIG);
    assert_int_equal(urg_run2(NULL, NULL, &n.cfg, sizeof(n.cfg)), -EINVAL);
    /* Exactly ours, and a newer one whose new field is 0: both honoured. */
    for (int i = 0; i < 2; i++) {
        seen_procs = 0;
        seen_stack = 0;
        assert_int_equal(urg_run2(probe, NULL, &n.cfg, i ? sizeof(n) : sizeof(n.cfg)), 0);
        assert_int_equal(seen_procs, 2);
        assert_true(seen_stack == URG_STACK_MIN);
    }
    /* A newer field set to what this library cannot know: refused. */
    n.later_field = 1;
    seen_procs = 0;
    assert_int_equal(urg_run2(probe, NULL, &n.cfg, sizeof(n)), -E2BIG);
    assert_int_equal(seen_procs, 0);
    /* The fields are still checked. */
    n.later_field = 0;
    n.cfg.maxprocs = -1;
    assert_int_equal(urg_run2(probe, NULL, &n.cfg, sizeof(n)), -EINVAL);
    /* NULL: the defaults, whatever the size. */
    seen_procs = 0;
    assert_int_equal(urg_run2(probe, NULL, NULL, 0), 0);
    assert_true(seen_procs >= 1);
    /* Nested: -EBUSY first. */
    run2_nested_rc = 0;
    n.cfg.maxprocs = 1;
    assert_int_equal(urg_run2(run2_nesting_main, NULL, &n.cfg, sizeof(n.cfg)), 0);
    assert_int_equal(run2_nested_rc, -EBUSY);
    assert_int_equal(tu_threads(), baseline_threads);
}

int main(void)
{
    tu_warm_up();
    baseline_threads = tu_threads();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_run_null_main),
        cmocka_unit_test(test_api_run_cfg_out_of_range),
        cmocka_unit_test(test_api_run_cfg_limits_accepted),
        cmocka_unit_test(test_api_run_nested_and_concurrent_busy),
        cmocka_unit_test(test_api_go_and_procs_misuse),
        cmocka_unit_test(test_api_outside_a_task),
        cmocka_unit_test(test_api_chan_misuse),
        cmocka_unit_test(test_api_void_misuse_refused_and_harmless),
        cmocka_unit_test(test_api_unsafe_range_limits),
        cmocka_unit_test(test_api_io_bad_fd),
        cmocka_unit_test(test_api_env_malformed_ignored_once),
        cmocka_unit_test(test_api_env_defaults),
        cmocka_unit_test(test_api_env_valid_values_and_cfg_override),
        cmocka_unit_test(test_api_version_matches_macros),
        cmocka_unit_test(test_api_stats_get2_sizes),
        cmocka_unit_test(test_api_stats_get2_in_a_run),
        cmocka_unit_test(test_api_run2_config_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
