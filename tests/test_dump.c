/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_dump.c — what the runtime prints when asked what its tasks are
 * doing: urg_dump(), SIGQUIT, the deadlock fatal error, and schedtrace.
 *
 * These are the tools a user reaches for when a program hangs, so they
 * must work exactly then: every task listed with the reason it waits
 * ("task N [chan receive]:", Go's format), and a symbolic backtrace that
 * names the user's own functions (static ones too: the build has -g and
 * the symbolizer reads .symtab). Each scenario runs in a child process,
 * whose stderr is captured and whose death (SIGQUIT, the abort after a
 * fatal error) is the behaviour under test:
 *   - urg_dump() from a task: the caller [running, main], tasks blocked on
 *     a channel receive and send, a mutex, a wait group, a sleep and a
 *     select, and a task not started yet ("created to run <fn>"), each
 *     with frames in the function that blocked;
 *   - SIGQUIT with the default disposition: "SIGQUIT: quit", the tasks,
 *     then death by SIGQUIT; with a handler the program installed, the
 *     runtime stays out of the way;
 *   - every task blocked on channels or sync objects and no timer:
 *     "fatal error: all tasks are asleep - deadlock!" and an abort — and
 *     no such verdict while a timer can still wake someone;
 *   - URG_DEBUG=schedtrace=100: periodic "SCHED" lines with Go's fields
 *     (plus per-P and per-M lines with scheddetail=1), none without it.
 */
#include "testutil.h"

#include <stdbool.h>
#include <sys/resource.h>

#define MS  (1000ull * 1000ull)
#define SEC (1000ull * MS)

static void no_core_dumps(void)
{
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
}

/* section: the lines of a dump that belong to "task <id> [": from that
 * header to the next blank line, copied into buf (empty if absent). */
static void task_section(const char *out, uint64_t id, char *buf, size_t n)
{
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "task %llu [", (unsigned long long)id);
    buf[0] = 0;
    for (const char *p = out; (p = strstr(p, hdr)) != NULL; p++) {
        if (p != out && p[-1] != '\n')
            continue;
        const char *end = strstr(p, "\n\n");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= n)
            len = n - 1;
        memcpy(buf, p, len);
        buf[len] = 0;
        return;
    }
}

/* Asserts that task id is listed with exactly this state and that one of
 * its frames names fn. */
static void assert_task(const char *out, uint64_t id, const char *state, const char *fn)
{
    char sec[8192], want[128];
    task_section(out, id, sec, sizeof(sec));
    if (!sec[0])
        fail_msg("task %llu not in the dump:\n%s", (unsigned long long)id, out);
    /* A parked task's state ends with how long it has waited
     * ("[chan receive, 12 ms]"): the state must be followed by "]" or ", ". */
    snprintf(want, sizeof(want), "task %llu [%s", (unsigned long long)id, state);
    size_t n = strlen(want);
    if (strncmp(sec, want, n) != 0 || (sec[n] != ']' && strncmp(sec + n, ", ", 2) != 0))
        fail_msg("want \"%s]\", got:\n%s", want, sec);
    if (fn && !strstr(sec, fn))
        fail_msg("task %llu: no frame names %s:\n%s", (unsigned long long)id, fn, sec);
}

/* assert_waited: task id's state carries a wait duration in the dump's
 * format: ", N ms]", ", N.N s]" or ", N min]". */
static void assert_waited(const char *out, uint64_t id, const char *state)
{
    char sec[8192], want[128];
    task_section(out, id, sec, sizeof(sec));
    snprintf(want, sizeof(want), "task %llu [%s, ", (unsigned long long)id, state);
    size_t n = strlen(want);
    if (strncmp(sec, want, n) != 0)
        fail_msg("want \"%s<duration>]\", got:\n%s", want, sec);
    const char *p = sec + n;
    unsigned long a = 0, b = 0;
    char unit[4] = "";
    bool ok = sscanf(p, "%lu %3[a-z]]", &a, unit) == 2 ||
              sscanf(p, "%lu.%lu %3[a-z]]", &a, &b, unit) == 3;
    if (!ok || (strcmp(unit, "ms") != 0 && strcmp(unit, "s") != 0 && strcmp(unit, "min") != 0))
        fail_msg("task %llu: no wait duration:\n%s", (unsigned long long)id, sec);
}

/* ---- urg_dump from a task ---- */

enum { D_RECV, D_SEND, D_MUTEX, D_WG, D_SLEEP, D_SELECT, D_COUNT };

static struct {
    urg_chan *c, *c2; /* nobody sends on c, nobody receives on c2 */
    urg_mutex mu;
    urg_wg wg;
    uint64_t ids[D_COUNT];
    int up[D_COUNT]; /* atomic: ids[k] is set */
    int started;     /* atomic */
} dd;

/* What each dumpee is parked for, once blocked. */
static const int d_reason[D_COUNT] = {WAIT_CHAN_RECV, WAIT_CHAN_SEND, WAIT_MUTEX,
                                      WAIT_WG,        WAIT_SLEEP,     WAIT_SELECT};

static void d_started(int k)
{
    dd.ids[k] = urg_task_id();
    __atomic_store_n(&dd.up[k], 1, __ATOMIC_RELEASE);
    __atomic_fetch_add(&dd.started, 1, __ATOMIC_SEQ_CST);
}

/* Each blocks in its own, non-inlined function, and does something after
 * the blocking call so that the call is not a tail call (its frame stays
 * on the stack for the dump to find). */
static __attribute__((noinline)) void dumpee_chan_recv(void *arg)
{
    (void)arg;
    int v;
    d_started(D_RECV);
    int r = urg_chan_recv(dd.c, &v);
    CHECK(r == 0 || r == -EPIPE);
}

static __attribute__((noinline)) void dumpee_chan_send(void *arg)
{
    (void)arg;
    int v = 1;
    d_started(D_SEND);
    int r = urg_chan_send(dd.c2, &v);
    CHECK(r == 0 || r == -EPIPE);
}

static __attribute__((noinline)) void dumpee_mutex(void *arg)
{
    (void)arg;
    d_started(D_MUTEX);
    urg_mutex_lock(&dd.mu);
    urg_mutex_unlock(&dd.mu);
    CHECK(dd.started >= 0);
}

static __attribute__((noinline)) void dumpee_wg(void *arg)
{
    (void)arg;
    d_started(D_WG);
    urg_wg_wait(&dd.wg);
    CHECK(dd.started >= 0);
}

static __attribute__((noinline)) void dumpee_sleep(void *arg)
{
    (void)arg;
    d_started(D_SLEEP);
    urg_sleep(3600 * SEC);
    CHECK(dd.started >= 0);
}

static __attribute__((noinline)) void dumpee_select(void *arg)
{
    (void)arg;
    urg_chan *other = urg_chan_new(sizeof(int), 0);
    int v;
    urg_select_case cs[1] = {{.chan = other, .op = URG_SELECT_RECV, .elem = &v}};
    d_started(D_SELECT);
    int r = urg_select(cs, 1, URG_FOREVER);
    CHECK(r >= 0);
}

static __attribute__((noinline)) void dumpee_never_started(void *arg) { (void)arg; }

static __attribute__((noinline)) void dump_from_main_task(void *arg)
{
    int procs = (int)(intptr_t)arg;
    dd.c = urg_chan_new(sizeof(int), 0);
    dd.c2 = urg_chan_new(sizeof(int), 0);
    urg_mutex_lock(&dd.mu);
    urg_wg_add(&dd.wg, 1);
    urg_fn fns[D_COUNT] = {dumpee_chan_recv, dumpee_chan_send, dumpee_mutex,
                           dumpee_wg,        dumpee_sleep,     dumpee_select};
    /* One at a time, so each is parked (and its id known) before the
     * dump. */
    for (int k = 0; k < D_COUNT; k++) {
        CHECK(urg_go(fns[k], NULL) == 0);
        tu_await_flag(&dd.up[k], "dumpee started");
        tu_await_parked(dd.ids[k], d_reason[k]); /* from "started" to parked */
    }
    /* At 1 proc this one cannot start before the dump: main keeps the P
     * (with preemption off, since a pending preemption request would be
     * honoured inside urg_go and let it run). */
    urg_preempt_disable();
    CHECK(urg_go(dumpee_never_started, NULL) == 0);
    fprintf(stderr, "IDS main=%llu", (unsigned long long)urg_task_id());
    for (int k = 0; k < D_COUNT; k++)
        fprintf(stderr, " %llu", (unsigned long long)dd.ids[k]);
    fprintf(stderr, " procs=%d\n", procs);
    fflush(stderr);
    urg_dump();
    urg_preempt_enable();
    fprintf(stderr, "END-DUMP\n");
    fflush(stderr);
}

static int dump_child(void *arg)
{
    urg_config cfg = {.maxprocs = (int)(intptr_t)arg};
    if (urg_run(dump_from_main_task, arg, &cfg) != 0)
        return 2;
    return tu_failures ? 3 : 0;
}

static void check_dump(int procs)
{
    struct tu_child c;
    tu_in_child(dump_child, (void *)(intptr_t)procs, 30, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("child status 0x%x; output:\n%s", c.status, c.out);
    const char *ids = strstr(c.out, "IDS main=");
    assert_non_null(ids);
    unsigned long long mainid, id[D_COUNT];
    assert_int_equal(sscanf(ids, "IDS main=%llu %llu %llu %llu %llu %llu %llu", &mainid, &id[0],
                            &id[1], &id[2], &id[3], &id[4], &id[5]),
                     7);
    const char *dump = strchr(ids, '\n');
    assert_non_null(dump);
    assert_non_null(strstr(dump, "END-DUMP"));

    assert_task(dump, mainid, "running, main", "dump_from_main_task");
    assert_task(dump, id[D_RECV], "chan receive", "dumpee_chan_recv");
    assert_task(dump, id[D_SEND], "chan send", "dumpee_chan_send");
    assert_task(dump, id[D_MUTEX], "mutex", "dumpee_mutex");
    assert_task(dump, id[D_WG], "wait group", "dumpee_wg");
    assert_task(dump, id[D_SLEEP], "sleep", "dumpee_sleep");
    assert_task(dump, id[D_SELECT], "select", "dumpee_select");
    /* How long each has waited: parked before the dump, so at least 0 ms. */
    assert_waited(dump, id[D_RECV], "chan receive");
    assert_waited(dump, id[D_SLEEP], "sleep");
    if (procs == 1) {
        const char *p = strstr(dump, "[runnable, not started]:\n    created to run ");
        const char *eol = p ? strchr(p + 30, '\n') : NULL;
        const char *fn = p ? strstr(p + 30, "dumpee_never_started") : NULL;
        if (!p || !fn || (eol && fn > eol))
            fail_msg("no \"created to run ... dumpee_never_started\":\n%s", dump);
    }
    /* Every task once, and nothing else: the six, main, and the new one
     * unless another proc already ran it to completion (it may also be
     * running there, listed without a name). */
    int listed = tu_count_lines(dump, "task ");
    int want = D_COUNT + 2;
    if (procs == 1 ? listed != want : listed < want - 1 || listed > want)
        fail_msg("%d tasks listed, want %d:\n%s", listed, want, dump);
}

static void test_dump_urg_dump_lists_tasks_with_frames(void **state)
{
    (void)state;
    check_dump(1);
    check_dump(2);
}

/* Outside a run there is nothing to list, and asking is harmless. */
static int dump_outside_child(void *arg)
{
    (void)arg;
    urg_dump();
    return 0;
}

static void test_dump_outside_a_run(void **state)
{
    (void)state;
    struct tu_child c;
    tu_in_child(dump_outside_child, NULL, 10, &c);
    assert_true(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
    assert_int_equal(tu_count_lines(c.out, "task "), 0);
}

/* ---- SIGQUIT ---- */

static uint64_t quit_blocked_id;
static int own_handler_ran; /* atomic: set by a handler on another thread */

static __attribute__((noinline)) void quit_blocked(void *arg)
{
    urg_chan *c = arg;
    int v;
    __atomic_store_n(&quit_blocked_id, urg_task_id(), __ATOMIC_SEQ_CST);
    int r = urg_chan_recv(c, &v);
    CHECK(r == 0);
}

static void quit_main(void *arg)
{
    (void)arg;
    urg_chan *c = urg_chan_new(sizeof(int), 0);
    CHECK(urg_go(quit_blocked, c) == 0);
    while (!__atomic_load_n(&quit_blocked_id, __ATOMIC_SEQ_CST))
        urg_sleep(MS);
    tu_await_parked(__atomic_load_n(&quit_blocked_id, __ATOMIC_SEQ_CST), WAIT_CHAN_RECV);
    fprintf(stderr, "QUIT-ID %llu\n",
            (unsigned long long)__atomic_load_n(&quit_blocked_id, __ATOMIC_SEQ_CST));
    fflush(stderr);
    kill(getpid(), SIGQUIT);
    /* With the runtime's handler we never get past the wait (the process
     * dies of SIGQUIT in it); with the program's own, it ran. */
    tu_await_flag(&own_handler_ran, "the program's SIGQUIT handler");
}

static int quit_child(void *arg)
{
    (void)arg;
    no_core_dumps();
    signal(SIGQUIT, SIG_DFL);
    urg_config cfg = {.maxprocs = 2};
    urg_run(quit_main, NULL, &cfg);
    return 3; /* not reached: SIGQUIT kills the process */
}

static void test_dump_sigquit_prints_tasks_and_dies(void **state)
{
    (void)state;
    struct tu_child c;
    tu_in_child(quit_child, NULL, 30, &c);
    if (!WIFSIGNALED(c.status) || WTERMSIG(c.status) != SIGQUIT)
        fail_msg("child did not die of SIGQUIT: status 0x%x; output:\n%s", c.status, c.out);
    const char *p = strstr(c.out, "QUIT-ID ");
    assert_non_null(p);
    unsigned long long id = 0;
    assert_int_equal(sscanf(p, "QUIT-ID %llu", &id), 1);
    const char *quit = strstr(p, "SIGQUIT: quit\n");
    if (!quit)
        fail_msg("no \"SIGQUIT: quit\":\n%s", c.out);
    assert_task(quit, id, "chan receive", "quit_blocked");
    if (!strstr(quit, ", main]:\n"))
        fail_msg("main task not listed:\n%s", quit);
}

static void own_quit_handler(int sig)
{
    (void)sig;
    __atomic_store_n(&own_handler_ran, 1, __ATOMIC_RELAXED);
}

static int own_handler_child(void *arg)
{
    (void)arg;
    no_core_dumps();
    signal(SIGQUIT, own_quit_handler);
    urg_config cfg = {.maxprocs = 2};
    if (urg_run(quit_main, NULL, &cfg) != 0)
        return 2;
    return __atomic_load_n(&own_handler_ran, __ATOMIC_RELAXED) ? 0 : 4;
}

/* A program that handles SIGQUIT itself keeps its handler. */
static void test_dump_sigquit_program_handler_kept(void **state)
{
    (void)state;
    struct tu_child c;
    tu_in_child(own_handler_child, NULL, 30, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("child status 0x%x; output:\n%s", c.status, c.out);
    assert_null(strstr(c.out, "SIGQUIT: quit"));
}

/* ---- deadlock ---- */

static __attribute__((noinline)) void dl_recv_forever(void *arg)
{
    urg_chan *c = arg;
    int v;
    int r = urg_chan_recv(c, &v);
    CHECK(r == 0);
}

static __attribute__((noinline)) void dl_lock_forever(void *arg)
{
    urg_mutex *m = arg;
    urg_mutex_lock(m);
    urg_mutex_unlock(m);
}

static void dl_chan_main(void *arg)
{
    (void)arg;
    urg_chan *a = urg_chan_new(sizeof(int), 0), *b = urg_chan_new(0, 0);
    for (int i = 0; i < 3; i++)
        CHECK(urg_go(dl_recv_forever, a) == 0);
    int v;
    urg_chan_recv(b, &v);
    CHECK(!"main woke from a channel nobody sends on");
}

static urg_mutex dl_mu;

static void dl_sync_main(void *arg)
{
    (void)arg;
    urg_wg wg = URG_WG_INITIALIZER;
    urg_wg_add(&wg, 1);
    urg_mutex_lock(&dl_mu);
    for (int i = 0; i < 3; i++)
        CHECK(urg_go(dl_lock_forever, &dl_mu) == 0);
    urg_wg_wait(&wg);
    CHECK(!"main woke from a wait group nobody finishes");
}

struct dl_arg {
    urg_fn main_fn;
    int procs;
};

static int deadlock_child(void *arg)
{
    struct dl_arg *a = arg;
    no_core_dumps();
    urg_config cfg = {.maxprocs = a->procs};
    urg_run(a->main_fn, NULL, &cfg);
    return 3; /* not reached: the runtime aborts */
}

static void check_deadlock(urg_fn main_fn, int procs, const char *blocked_fn)
{
    struct dl_arg a = {main_fn, procs};
    struct tu_child c;
    tu_in_child(deadlock_child, &a, 20, &c);
    if (!WIFSIGNALED(c.status) || WTERMSIG(c.status) != SIGABRT)
        fail_msg("procs=%d: want death by SIGABRT, status 0x%x; output:\n%s", procs, c.status,
                 c.out);
    if (!strstr(c.out, "fatal error: all tasks are asleep - deadlock!\n"))
        fail_msg("procs=%d: no deadlock message:\n%s", procs, c.out);
    /* The fatal error comes with the dump: main and the three others. */
    const char *dump = strstr(c.out, "deadlock!");
    int listed = tu_count_lines(dump, "task ");
    if (listed != 4 || !strstr(dump, blocked_fn))
        fail_msg("procs=%d: want 4 tasks and %s in the dump:\n%s", procs, blocked_fn, dump);
}

static void test_dump_deadlock_is_fatal(void **state)
{
    (void)state;
    if (TU_TSAN) {
        /* The verdict needs the process to have no thread but the
         * runtime's; ThreadSanitizer runs background threads of its own. */
        print_message("skipped: ThreadSanitizer's own threads keep the deadlock verdict silent\n");
        skip();
    }
    check_deadlock(dl_chan_main, 1, "dl_recv_forever");
    check_deadlock(dl_chan_main, 4, "dl_recv_forever");
    check_deadlock(dl_sync_main, 1, "dl_lock_forever");
    check_deadlock(dl_sync_main, 2, "dl_lock_forever");
}

/* Everyone blocked, but a sleeping task will send: not a deadlock. */
static void late_sender(void *arg)
{
    urg_chan *c = arg;
    urg_sleep(50 * MS);
    int v = 1;
    CHECK(urg_chan_send(c, &v) == 0);
}

static void not_dead_main(void *arg)
{
    (void)arg;
    urg_chan *c = urg_chan_new(sizeof(int), 0);
    CHECK(urg_go(late_sender, c) == 0);
    int v = 0;
    CHECK(urg_chan_recv(c, &v) == 0 && v == 1);
    urg_chan_free(c);
}

static int not_dead_child(void *arg)
{
    urg_config cfg = {.maxprocs = (int)(intptr_t)arg};
    no_core_dumps();
    if (urg_run(not_dead_main, NULL, &cfg) != 0)
        return 2;
    return tu_failures ? 3 : 0;
}

static void test_dump_sleeping_task_is_not_deadlock(void **state)
{
    (void)state;
    for (int procs = 1; procs <= 2; procs++) {
        struct tu_child c;
        tu_in_child(not_dead_child, (void *)(intptr_t)procs, 20, &c);
        if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
            fail_msg("procs=%d: child status 0x%x; output:\n%s", procs, c.status, c.out);
        assert_null(strstr(c.out, "deadlock"));
    }
}

/* ---- schedtrace ---- */

static void st_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 40; i++) {
        urg_sleep(5 * MS);
        urg_yield();
    }
}

static void st_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 4; i++)
        CHECK(urg_go(st_worker, NULL) == 0);
    urg_sleep(450 * MS);
}

static int schedtrace_child(void *arg)
{
    const char *debug = arg;
    if (debug)
        setenv("URG_DEBUG", debug, 1);
    else
        unsetenv("URG_DEBUG");
    urg_config cfg = {.maxprocs = 2};
    if (urg_run(st_main, NULL, &cfg) != 0)
        return 2;
    return tu_failures ? 3 : 0;
}

static void test_dump_schedtrace_lines(void **state)
{
    (void)state;
    struct tu_child c;
    tu_in_child(schedtrace_child, "schedtrace=100", 30, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("child status 0x%x; output:\n%s", c.status, c.out);
    int lines = 0;
    unsigned long last_ms = 0;
    for (const char *p = c.out; (p = strstr(p, "SCHED ")) != NULL; p++) {
        if (p != c.out && p[-1] != '\n')
            continue;
        unsigned long ms;
        int gomaxprocs, idle, threads;
        if (sscanf(p, "SCHED %lums: gomaxprocs=%d idleprocs=%d threads=%d", &ms, &gomaxprocs, &idle,
                   &threads) != 4)
            fail_msg("malformed SCHED line in:\n%s", c.out);
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[512];
        snprintf(line, sizeof(line), "%.*s", (int)len, p);
        assert_non_null(strstr(line, " runqueue="));
        assert_int_equal(gomaxprocs, 2);
        assert_true(idle >= 0 && idle <= 2);
        assert_true(threads >= 1);
        assert_true(ms >= last_ms);
        last_ms = ms;
        lines++;
    }
    /* About four in 450 ms; two leave room for a slow machine. */
    if (lines < 2)
        fail_msg("%d SCHED lines in a 450 ms run:\n%s", lines, c.out);
    assert_null(strstr(c.out, "  P0: status="));
}

static void test_dump_scheddetail_lines(void **state)
{
    (void)state;
    struct tu_child c;
    tu_in_child(schedtrace_child, "schedtrace=100,scheddetail=1", 30, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("child status 0x%x; output:\n%s", c.status, c.out);
    assert_true(tu_count_lines(c.out, "SCHED ") >= 2);
    assert_true(tu_count_lines(c.out, "  P0: status=") >= 2);
    assert_true(tu_count_lines(c.out, "  P1: status=") >= 2);
    assert_true(tu_count_lines(c.out, "  M") >= 2);
    assert_true(tu_count_lines(c.out, "  G") >= 2);
}

static void test_dump_no_schedtrace_by_default(void **state)
{
    (void)state;
    struct tu_child c;
    tu_in_child(schedtrace_child, NULL, 30, &c);
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("child status 0x%x; output:\n%s", c.status, c.out);
    assert_int_equal(tu_count_lines(c.out, "SCHED "), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_urg_dump_lists_tasks_with_frames),
        cmocka_unit_test(test_dump_outside_a_run),
        cmocka_unit_test(test_dump_sigquit_prints_tasks_and_dies),
        cmocka_unit_test(test_dump_sigquit_program_handler_kept),
        cmocka_unit_test(test_dump_deadlock_is_fatal),
        cmocka_unit_test(test_dump_sleeping_task_is_not_deadlock),
        cmocka_unit_test(test_dump_schedtrace_lines),
        cmocka_unit_test(test_dump_scheddetail_lines),
        cmocka_unit_test(test_dump_no_schedtrace_by_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
