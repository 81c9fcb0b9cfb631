/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_fork.c — fork(2) during a run (runtime/fork.c): the parent goes on
 * untouched, and the child runs on its only thread with the runtime
 * detached, as a plain thread of a process with no run in progress.
 *
 * Why these tests: the child of a fork shares the parent's epoll instance
 * (a copied descriptor names the same one). Before fork.c, the child's
 * first runtime call ran the scheduler on its copy of the run, waited in
 * that shared instance, could take the one-shot event of a task parked in
 * the parent and run its own copy of that task: the parent's reader then
 * never woke. So the first test parks a reader on a pipe, forks, keeps the
 * child inside a runtime call (a blocking urg_read on another pipe) while
 * the parent writes to the reader's pipe, and requires the parent's reader
 * to wake with the bytes; the child meanwhile checks that every urg_* call
 * it makes behaves as docs/api.md's "no run in progress" column says, and
 * reports what it saw through a pipe (assertions are made here, in the
 * test body, never in a task or a child). The child then _exits, or execs
 * /bin/true (exec must work from a detached child).
 *
 * The second forks repeatedly from a task while hogs keep both procs busy
 * (async build: call-free loops preempted by SIGURG; cooperative build:
 * loops with urg_checkpoint), and lets each child yield, sleep, read the
 * clock and spin past a quantum: no scheduler, no preemption, exit 0. The
 * third lets the forking task simply return in the child, which must end
 * the child (status 0) instead of entering the copied scheduler.
 *
 * Waiting is on state (a parked task, a flag set by the reader, waitpid
 * inside a syscall bracket); a watchdog turns a hang into a failure with
 * a reason.
 */
#include "testutil.h"

#include <sys/wait.h>

#define WD_SECONDS 60

static void noop(void *arg) { (void)arg; }

/* waitpid for pid from a task, inside a syscall bracket so the proc is
 * not held while the child runs. Returns the status, or -1. */
static int reap(pid_t pid)
{
    int st = -1;
    urg_syscall_enter();
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    urg_syscall_exit();
    return st;
}

/* ---- what a detached child may call ---- */

enum {
    C_TASK_ID = 1u << 0,      /* urg_task_id: 0 outside a task */
    C_GO = 1u << 1,           /* urg_go: -EPERM, no run in progress */
    C_MAXPROCS = 1u << 2,     /* urg_maxprocs: 0 */
    C_SET_MAXPROCS = 1u << 3, /* urg_set_maxprocs: -EPERM */
    C_RUN = 1u << 4,          /* urg_run: -EBUSY (the copied run cannot restart) */
    C_STATS = 1u << 5,        /* urg_stats_get: zeroes */
    C_SLEEP = 1u << 6,        /* urg_yield, urg_sleep: sched_yield, nanosleep */
    C_READ = 1u << 7,         /* urg_read: a blocking read */
    C_CHAN = 1u << 8,         /* a channel made in the child works */
    C_MUTEX = 1u << 9,        /* so does a mutex */
    C_SIGURG = 1u << 10,      /* a SIGURG is harmless (no handler of ours) */
};

/* child_checks: in the child of a fork made during a run. go_fd is a pipe
 * the parent writes one byte to only after its own reader has woken:
 * until then the child sits in urg_read, which must be a plain blocking
 * read, not a park in the copied scheduler. Returns the failed C_* bits.
 * Context: the child's only thread. */
static uint32_t child_checks(int go_fd)
{
    uint32_t bad = 0;
    if (urg_task_id() != 0)
        bad |= C_TASK_ID;
    if (urg_go(noop, NULL) != -EPERM)
        bad |= C_GO;
    if (urg_maxprocs() != 0)
        bad |= C_MAXPROCS;
    if (urg_set_maxprocs(1) != -EPERM)
        bad |= C_SET_MAXPROCS;
    if (urg_run(noop, NULL, NULL) != -EBUSY)
        bad |= C_RUN;
    urg_stats st;
    memset(&st, 0xff, sizeof(st));
    urg_stats_get(&st);
    if (st.maxprocs != 0 || st.tasks_created != 0 || st.threads != 0)
        bad |= C_STATS;
    uint64_t t0 = urg_now();
    urg_yield();
    urg_checkpoint();
    urg_preempt_disable();
    urg_preempt_enable();
    urg_syscall_enter();
    urg_syscall_exit();
    urg_sleep(200000);
    if (urg_now() - t0 < 200000 || urg_task_id() != 0)
        bad |= C_SLEEP;
    char c = 0;
    if (urg_read(go_fd, &c, 1) != 1 || c != 'g')
        bad |= C_READ;
    urg_chan *ch = urg_chan_new(sizeof(int), 1);
    int v = 7, w = 0;
    if (!ch || urg_chan_send(ch, &v) != 0 || urg_chan_recv(ch, &w) != 0 || w != 7)
        bad |= C_CHAN;
    if (ch)
        urg_chan_free(ch);
    urg_mutex mu = URG_MUTEX_INITIALIZER;
    urg_mutex_lock(&mu);
    if (urg_mutex_trylock(&mu) != -EBUSY)
        bad |= C_MUTEX;
    urg_mutex_unlock(&mu);
    if (raise(SIGURG) != 0 || urg_task_id() != 0)
        bad |= C_SIGURG;
    return bad;
}

/* ---- a reader parked in the parent wakes; the child is detached ---- */

struct reader_case {
    bool exec;
    int data[2], go[2], res[2];
    int reader_started; /* atomic */
    int reader_done;    /* atomic */
    uint64_t reader_id; /* atomic, set before reader_started */
    ssize_t nread;
    char got[8];
    pid_t pid;
    ssize_t res_n;
    uint32_t child_bad;
    int child_status;
    urg_wg wg;
};

static void parked_reader(void *arg)
{
    struct reader_case *c = arg;
    __atomic_store_n(&c->reader_id, urg_task_id(), __ATOMIC_RELAXED);
    __atomic_store_n(&c->reader_started, 1, __ATOMIC_RELEASE);
    c->nread = urg_read(c->data[0], c->got, sizeof(c->got));
    __atomic_store_n(&c->reader_done, 1, __ATOMIC_RELEASE);
    urg_wg_done(&c->wg);
}

static void reader_fork_main(void *arg)
{
    struct reader_case *c = arg;
    urg_wg_add(&c->wg, 1);
    CHECK(urg_go(parked_reader, c) == 0);
    tu_await_flag(&c->reader_started, "reader started");
    tu_await_parked(__atomic_load_n(&c->reader_id, __ATOMIC_RELAXED), WAIT_IO);

    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        tu_child_default_signals();
        close(c->res[0]);
        uint32_t bad = child_checks(c->go[0]);
        if (write(c->res[1], &bad, sizeof(bad)) != (ssize_t)sizeof(bad))
            _exit(3);
        if (c->exec) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(4);
        }
        _exit(0);
    }
    c->pid = pid;
    CHECK(pid > 0);
    close(c->res[1]);
    c->res[1] = -1;
    if (pid < 0)
        return;

    /* The child sits in urg_read(go) now or soon: its runtime must not
     * be waiting in the epoll instance it shares with us. */
    CHECK(urg_write(c->data[1], "hello", 5) == 5);
    tu_await_flag(&c->reader_done, "the parent's parked reader woke");
    urg_wg_wait(&c->wg);
    CHECK(urg_write(c->go[1], "g", 1) == 1);
    c->res_n = urg_read(c->res[0], &c->child_bad, sizeof(c->child_bad));
    c->child_status = reap(pid);
}

static void reader_case_run(bool exec, int procs)
{
    static struct reader_case c;
    memset(&c, 0, sizeof(c));
    c.exec = exec;
    urg_wg_init(&c.wg);
    assert_int_equal(pipe2(c.data, O_CLOEXEC), 0);
    assert_int_equal(pipe2(c.go, O_CLOEXEC), 0);
    assert_int_equal(pipe2(c.res, O_CLOEXEC), 0);
    tu_wd_start(WD_SECONDS,
                exec ? "fork and exec beside a parked reader" : "fork beside a parked reader");
    RUN_AT(reader_fork_main, &c, procs);
    tu_wd_stop();
    for (int i = 0; i < 2; i++) {
        close(c.data[i]);
        close(c.go[i]);
        if (c.res[i] >= 0)
            close(c.res[i]);
    }
    assert_true(c.pid > 0);
    assert_int_equal(c.nread, 5);
    assert_memory_equal(c.got, "hello", 5);
    assert_int_equal(c.res_n, (ssize_t)sizeof(c.child_bad));
    assert_int_equal(c.child_bad, 0); /* the failed C_* bits */
    assert_true(WIFEXITED(c.child_status));
    assert_int_equal(WEXITSTATUS(c.child_status), 0);
}

static void test_fork_parked_reader_wakes_child_detached(void **state)
{
    (void)state;
    for (int procs = 1; procs <= 2; procs++)
        reader_case_run(false, procs);
}

static void test_fork_parked_reader_wakes_child_execs(void **state)
{
    (void)state;
    for (int procs = 1; procs <= 2; procs++)
        reader_case_run(true, procs);
}

/* ---- fork from a task while hogs keep every proc busy ---- */

#define NHOGS  3
#define NFORKS 4

struct hog_case {
    int stop;    /* atomic */
    int started; /* atomic */
    uint64_t spins[NHOGS];
    int status[NFORKS];
    urg_wg wg;
};

struct hog_arg {
    struct hog_case *c;
    int i;
};

static void hog(void *arg)
{
    struct hog_arg *h = arg;
    struct hog_case *c = h->c;
    __atomic_fetch_add(&c->started, 1, __ATOMIC_RELEASE);
    bool coop = !tu_is_async();
    while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
        TU_BUMP(&c->spins[h->i]);
        if (coop)
            urg_checkpoint(); /* cooperative build: sysmon's requests */
    }
    urg_wg_done(&c->wg);
}

/* child_work: a little work in a detached child; 0, or which check
 * failed. Context: the child's only thread. */
static int child_work(void)
{
    uint64_t last = urg_now();
    for (int i = 0; i < 100; i++) {
        urg_yield();
        if (urg_task_id() != 0)
            return 10;
        uint64_t now = urg_now();
        if (now < last)
            return 11;
        last = now;
    }
    urg_sleep(100000);
    /* Spin past a quantum (10 ms): nobody preempts a detached child, and
     * it would not survive a switch into the copied scheduler. */
    uint64_t t0 = urg_now();
    volatile uint64_t x = 0;
    while (urg_now() - t0 < 15000000)
        x = x + 1;
    if (urg_task_id() != 0 || urg_go(noop, NULL) != -EPERM)
        return 12;
    return 0;
}

static void hogs_fork_main(void *arg)
{
    struct hog_case *c = arg;
    static struct hog_arg args[NHOGS];
    urg_wg_add(&c->wg, NHOGS);
    for (int i = 0; i < NHOGS; i++) {
        args[i] = (struct hog_arg){.c = c, .i = i};
        CHECK(urg_go(hog, &args[i]) == 0);
    }
    while (__atomic_load_n(&c->started, __ATOMIC_ACQUIRE) < NHOGS)
        urg_yield();
    for (int k = 0; k < NFORKS; k++) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            tu_child_default_signals();
            _exit(child_work());
        }
        CHECK(pid > 0);
        c->status[k] = pid > 0 ? reap(pid) : -1;
        urg_yield();
    }
    __atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);
    urg_wg_wait(&c->wg);
}

static void test_fork_beside_hogs_child_exits_cleanly(void **state)
{
    (void)state;
    static struct hog_case c;
    memset(&c, 0, sizeof(c));
    urg_wg_init(&c.wg);
    tu_wd_start(WD_SECONDS, "fork beside hogs");
    RUN_AT(hogs_fork_main, &c, 2);
    tu_wd_stop();
    for (int k = 0; k < NFORKS; k++) {
        assert_true(WIFEXITED(c.status[k]));
        assert_int_equal(WEXITSTATUS(c.status[k]), 0);
    }
}

/* ---- the forking task returns in the child ---- */

struct return_case {
    pid_t pid;
    int status;
};

static void fork_and_return(void *arg)
{
    struct return_case *c = arg;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        tu_child_default_signals();
        return; /* the child's only thread ends: exit status 0 */
    }
    c->pid = pid;
    if (pid > 0)
        c->status = reap(pid);
}

static void test_fork_task_returns_in_child_ends_child(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    /* The child ends through exit(3), where LeakSanitizer would judge the
     * parent's memory, reachable only from threads the child lacks. */
    skip();
#endif
    static struct return_case c;
    for (int procs = 1; procs <= 2; procs++) {
        memset(&c, 0, sizeof(c));
        c.status = -1;
        tu_wd_start(WD_SECONDS, "a task returning in a forked child");
        RUN_AT(fork_and_return, &c, procs);
        tu_wd_stop();
        assert_true(c.pid > 0);
        assert_true(WIFEXITED(c.status));
        assert_int_equal(WEXITSTATUS(c.status), 0);
    }
}

/* ---- no run in progress: fork changes nothing ---- */

static void test_fork_without_run_child_can_run(void **state)
{
    (void)state;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        tu_child_default_signals();
        urg_config cfg = {.maxprocs = 1};
        _exit(urg_run(noop, NULL, &cfg) == 0 ? 0 : 1);
    }
    int st = -1;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* One test alone, e.g. to watch each fail without fork.c. */
    if (getenv("TEST_FORK_ONLY"))
        cmocka_set_test_filter(getenv("TEST_FORK_ONLY"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_parked_reader_wakes_child_detached),
        cmocka_unit_test(test_fork_parked_reader_wakes_child_execs),
        cmocka_unit_test(test_fork_beside_hogs_child_exits_cleanly),
        cmocka_unit_test(test_fork_task_returns_in_child_ends_child),
        cmocka_unit_test(test_fork_without_run_child_can_run),
    };
    return cmocka_run_group_tests(tests, tu_fd_group_setup, tu_fd_group_teardown);
}
