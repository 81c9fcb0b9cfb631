/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_spawn.c — urg_go: every spawned task runs, exactly once, wherever
 * it was spawned from.
 *
 * Spawning is the one operation every program depends on, and its
 * failures are silent: a task lost between a run queue and a thief, or
 * run twice after a race on runnext, shows up as a hang or a corrupted
 * counter far away. So each test gives every task its own slot and checks
 * the count of every slot afterwards, at 1 proc (no thieves: the lock-free
 * fast paths) and at 2 and 4 (stealing, spinning Ms, the global queue):
 *   - a flat spawn of 100k tasks from main (overflows the local ring to
 *     the global queue many times over);
 *   - a fan-out tree, where every task spawns children (spawns from every
 *     P at once);
 *   - spawns from a plain pthread while the runtime runs (the external
 *     path: global queue, wakep from a thread without a P);
 *   - task ids: nonzero, unique, 0 outside tasks;
 *   - work stealing: when main spawns everything, the other procs must
 *     steal (urg_stats_get().steals > 0), and at 1 proc nobody does;
 *   - tasks_created / tasks_live add up, while tasks are blocked and after
 *     they exit.
 * Every run must leave the thread count where it was.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdbool.h>

static int baseline_threads;

static void check_threads_back(void) { assert_int_equal(tu_threads(), baseline_threads); }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Asserts that ids[0..n) are nonzero and pairwise distinct (sorts them). */
static void assert_ids_unique(uint64_t *ids, size_t n)
{
    qsort(ids, n, sizeof(*ids), cmp_u64);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == 0)
            fail_msg("a task saw urg_task_id() == 0");
        if (i > 0 && ids[i] == ids[i - 1])
            fail_msg("task id %llu given to two tasks", (unsigned long long)ids[i]);
    }
}

/* ---- flat: main spawns them all ---- */

/* Fewer under ThreadSanitizer, where each task's first run creates a
 * fiber: a hundred thousand take minutes. Still past a ring (256). */
enum { FLAT_N = TU_TSAN ? 10000 : 100000 };

static struct {
    uint32_t *slots;
    uint64_t *ids;
    uint64_t main_id;
    urg_wg wg;
} flat;

static void flat_task(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    __atomic_fetch_add(&flat.slots[i], 1u, __ATOMIC_RELAXED);
    flat.ids[i] = urg_task_id();
    urg_wg_done(&flat.wg);
}

static void flat_main(void *arg)
{
    (void)arg;
    flat.main_id = urg_task_id();
    urg_wg_add(&flat.wg, FLAT_N);
    for (size_t i = 0; i < FLAT_N; i++) {
        int r = urg_go(flat_task, (void *)(uintptr_t)i);
        CHECK(r == 0);
        if (r != 0)
            urg_wg_done(&flat.wg);
    }
    urg_wg_wait(&flat.wg);
}

static void run_flat(int procs)
{
    tu_reset();
    flat.slots = calloc(FLAT_N, sizeof(*flat.slots));
    flat.ids = calloc(FLAT_N + 1, sizeof(*flat.ids));
    assert_non_null(flat.slots);
    assert_non_null(flat.ids);
    urg_wg_init(&flat.wg);

    tu_run(flat_main, NULL, procs);
    assert_checks_ok();
    for (size_t i = 0; i < FLAT_N; i++)
        if (flat.slots[i] != 1)
            fail_msg("procs=%d: task %zu ran %u times", procs, i, flat.slots[i]);
    flat.ids[FLAT_N] = flat.main_id; /* distinct from the spawned ones too */
    assert_ids_unique(flat.ids, FLAT_N + 1);
    check_threads_back();
    free(flat.slots);
    free(flat.ids);
}

static void test_spawn_flat_each_runs_once_1proc(void **state)
{
    (void)state;
    run_flat(1);
}

static void test_spawn_flat_each_runs_once_2procs(void **state)
{
    (void)state;
    run_flat(2);
}

static void test_spawn_flat_each_runs_once_4procs(void **state)
{
    (void)state;
    run_flat(4);
}

/* ---- a fan-out tree: every task spawns ---- */

enum { TREE_FANOUT = 4, TREE_DEPTH = 7 };
/* Nodes numbered heap-style: the children of k are k*F+1 .. k*F+F. */
enum { TREE_NODES = (1 + 4 + 16 + 64 + 256 + 1024 + 4096 + 16384) };
_Static_assert(TREE_FANOUT == 4 && TREE_DEPTH == 7, "TREE_NODES assumes 4^0 + ... + 4^7");

static struct {
    uint32_t slots[TREE_NODES];
    uint64_t ids[TREE_NODES];
    urg_wg wg;
} tree;

static void tree_node(void *arg)
{
    size_t k = (size_t)(uintptr_t)arg;
    __atomic_fetch_add(&tree.slots[k], 1u, __ATOMIC_RELAXED);
    tree.ids[k] = urg_task_id();
    size_t first = k * TREE_FANOUT + 1;
    if (first < TREE_NODES) {
        /* Add before our own Done, so the count never touches zero early. */
        urg_wg_add(&tree.wg, TREE_FANOUT);
        for (size_t c = first; c < first + TREE_FANOUT; c++) {
            int r = urg_go(tree_node, (void *)(uintptr_t)c);
            CHECK(r == 0);
            if (r != 0)
                urg_wg_done(&tree.wg);
        }
    }
    urg_wg_done(&tree.wg);
}

static void tree_main(void *arg)
{
    (void)arg;
    urg_wg_add(&tree.wg, 1);
    CHECK(urg_go(tree_node, (void *)(uintptr_t)0) == 0);
    urg_wg_wait(&tree.wg);
}

static void run_tree(int procs)
{
    tu_reset();
    memset(&tree, 0, sizeof(tree));
    tu_run(tree_main, NULL, procs);
    assert_checks_ok();
    for (size_t k = 0; k < TREE_NODES; k++)
        if (tree.slots[k] != 1)
            fail_msg("procs=%d: tree node %zu ran %u times", procs, k, tree.slots[k]);
    assert_ids_unique(tree.ids, TREE_NODES);
    check_threads_back();
}

static void test_spawn_tree_each_runs_once(void **state)
{
    (void)state;
    run_tree(1);
    run_tree(2);
    run_tree(4);
}

/* ---- urg_task_id outside tasks ---- */

static void *id_thread(void *arg)
{
    *(uint64_t *)arg = urg_task_id() + 1; /* +1: prove the thread ran */
    return NULL;
}

static uint64_t idmain_self, idmain_ext;

static void idmain(void *arg)
{
    (void)arg;
    idmain_self = urg_task_id();
    pthread_t th;
    idmain_ext = 0;
    CHECK(pthread_create(&th, NULL, id_thread, &idmain_ext) == 0);
    urg_syscall_enter();
    pthread_join(th, NULL);
    urg_syscall_exit();
}

static void test_spawn_task_id_zero_outside_tasks(void **state)
{
    (void)state;
    tu_reset();
    assert_int_equal(urg_task_id(), 0);
    tu_run(idmain, NULL, 2);
    assert_checks_ok();
    assert_true(idmain_self != 0);
    assert_int_equal(idmain_ext, 1); /* a plain thread during the run: 0 */
    assert_int_equal(urg_task_id(), 0);
    check_threads_back();
}

/* ---- spawning from a plain pthread while the runtime runs ---- */

enum { EXT_N = 2000 };

static struct {
    uint32_t slots[EXT_N];
    int rc[EXT_N];
    uint64_t thread_id_seen;
    int stats_maxprocs;
    int procs;
    urg_wg wg;
} ext;

static void ext_task(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    __atomic_fetch_add(&ext.slots[i], 1u, __ATOMIC_RELAXED);
    CHECK(urg_task_id() != 0);
    urg_wg_done(&ext.wg);
}

static void *ext_spawner(void *arg)
{
    (void)arg;
    ext.thread_id_seen = urg_task_id();
    for (size_t i = 0; i < EXT_N; i++) {
        ext.rc[i] = urg_go(ext_task, (void *)(uintptr_t)i);
        if (ext.rc[i] != 0)
            urg_wg_done(&ext.wg);
        if (i % 256 == 0)
            sched_yield(); /* let the runtime run some while we spawn */
    }
    urg_stats st;
    urg_stats_get(&st);
    ext.stats_maxprocs = st.maxprocs;
    return NULL;
}

static void ext_main(void *arg)
{
    (void)arg;
    urg_wg_add(&ext.wg, EXT_N);
    pthread_t th;
    if (pthread_create(&th, NULL, ext_spawner, NULL) != 0) {
        CHECK(!"pthread_create");
        return;
    }
    /* Joining blocks this thread: say so, so the P keeps running tasks. */
    urg_syscall_enter();
    pthread_join(th, NULL);
    urg_syscall_exit();
    urg_wg_wait(&ext.wg);
}

static void run_ext(int procs)
{
    tu_reset();
    memset(&ext, 0, sizeof(ext));
    ext.procs = procs;
    tu_run(ext_main, NULL, procs);
    assert_checks_ok();
    for (size_t i = 0; i < EXT_N; i++) {
        assert_int_equal(ext.rc[i], 0);
        if (ext.slots[i] != 1)
            fail_msg("procs=%d: externally spawned task %zu ran %u times", procs, i, ext.slots[i]);
    }
    assert_int_equal(ext.thread_id_seen, 0);
    assert_int_equal(ext.stats_maxprocs, procs);
    check_threads_back();
}

static void test_spawn_from_external_thread(void **state)
{
    (void)state;
    run_ext(1);
    run_ext(2);
    run_ext(4);
}

/* Once urg_run has returned, an outside urg_go is refused and nothing
 * from a finished run leaks into the next one. */
static uint32_t after_ran;

static void after_task(void *arg)
{
    (void)arg;
    __atomic_fetch_add(&after_ran, 1u, __ATOMIC_RELAXED);
}

static void noop_main(void *arg) { (void)arg; }

static void test_spawn_outside_run_refused(void **state)
{
    (void)state;
    tu_run(noop_main, NULL, 2);
    assert_int_equal(urg_go(after_task, NULL), -EPERM);
    tu_run(noop_main, NULL, 2);
    assert_int_equal(after_ran, 0);
    check_threads_back();
}

/* ---- stealing ---- */

enum { STEAL_TASKS = 200 }; /* fewer than a ring: stays on main's P */

static struct {
    urg_wg wg;
    uint64_t steals;
    int attempts;
} steal;

static void steal_work_task(void *arg)
{
    (void)arg;
    /* A little work that does not yield: the other procs must take it. */
    uint64_t until = urg_now() + 200 * 1000;
    while (urg_now() < until) {
    }
    urg_wg_done(&steal.wg);
}

static void steal_main(void *arg)
{
    (void)arg;
    /* Scheduling noise on a busy machine can delay the other Ms past a
     * whole batch; three batches without a single steal is a bug. */
    for (steal.attempts = 1; steal.attempts <= 3; steal.attempts++) {
        urg_wg_add(&steal.wg, STEAL_TASKS);
        for (int i = 0; i < STEAL_TASKS; i++)
            CHECK(urg_go(steal_work_task, NULL) == 0);
        urg_wg_wait(&steal.wg);
        urg_stats st;
        urg_stats_get(&st);
        steal.steals = st.steals;
        if (st.steals > 0 && urg_maxprocs() > 1)
            break;
    }
}

static void run_steal(int procs)
{
    tu_reset();
    memset(&steal, 0, sizeof(steal));
    tu_run(steal_main, NULL, procs);
    assert_checks_ok();
    print_message("procs=%d: %llu steals (batch %d)\n", procs, (unsigned long long)steal.steals,
                  steal.attempts);
    if (procs == 1)
        assert_int_equal(steal.steals, 0); /* nobody to steal from */
    else if (steal.steals == 0)
        fail_msg("procs=%d: no steals in 3 batches of %d tasks spawned from one proc", procs,
                 STEAL_TASKS);
    check_threads_back();
}

static void test_spawn_other_procs_steal(void **state)
{
    (void)state;
    run_steal(1);
    run_steal(2);
    run_steal(4);
}

/* ---- tasks_created / tasks_live ---- */

enum { CNT_N = 500 };

static struct {
    urg_wg gate, done;
    urg_stats before, blocked, after;
    bool settled;
} cnt;

static void cnt_task(void *arg)
{
    (void)arg;
    urg_wg_wait(&cnt.gate);
    urg_wg_done(&cnt.done);
}

static void cnt_main(void *arg)
{
    (void)arg;
    urg_stats_get(&cnt.before);
    urg_wg_add(&cnt.gate, 1);
    urg_wg_add(&cnt.done, CNT_N);
    for (int i = 0; i < CNT_N; i++)
        CHECK(urg_go(cnt_task, NULL) == 0);
    urg_stats_get(&cnt.blocked);
    urg_wg_done(&cnt.gate);
    urg_wg_wait(&cnt.done);
    /* They still have to return after their Done. */
    uint64_t deadline = urg_now() + 5ull * 1000 * 1000 * 1000;
    do {
        urg_sleep(1000 * 1000);
        urg_stats_get(&cnt.after);
        cnt.settled = cnt.after.tasks_live == cnt.before.tasks_live;
    } while (!cnt.settled && urg_now() < deadline);
}

static void run_counters(int procs)
{
    tu_reset();
    memset(&cnt, 0, sizeof(cnt));
    tu_run(cnt_main, NULL, procs);
    assert_checks_ok();
    assert_true(cnt.before.tasks_created >= 1); /* main itself */
    assert_true(cnt.before.tasks_live >= 1);
    assert_int_equal(cnt.before.maxprocs, procs);
    assert_int_equal(cnt.blocked.tasks_created - cnt.before.tasks_created, CNT_N);
    assert_int_equal(cnt.blocked.tasks_live - cnt.before.tasks_live, CNT_N);
    assert_true(cnt.settled);
    assert_int_equal(cnt.after.tasks_created - cnt.before.tasks_created, CNT_N);
    assert_true(cnt.after.tasks_live <= cnt.after.tasks_created);
    /* Stopped runtime: zeros. */
    urg_stats st;
    memset(&st, 0xff, sizeof(st));
    urg_stats_get(&st);
    assert_int_equal(st.tasks_created, 0);
    assert_int_equal(st.tasks_live, 0);
    assert_int_equal(st.maxprocs, 0);
    check_threads_back();
}

static void test_spawn_counters_add_up(void **state)
{
    (void)state;
    run_counters(1);
    run_counters(4);
}

int main(void)
{
    tu_warm_up();
    baseline_threads = tu_threads();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_flat_each_runs_once_1proc),
        cmocka_unit_test(test_spawn_flat_each_runs_once_2procs),
        cmocka_unit_test(test_spawn_flat_each_runs_once_4procs),
        cmocka_unit_test(test_spawn_tree_each_runs_once),
        cmocka_unit_test(test_spawn_task_id_zero_outside_tasks),
        cmocka_unit_test(test_spawn_from_external_thread),
        cmocka_unit_test(test_spawn_outside_run_refused),
        cmocka_unit_test(test_spawn_other_procs_steal),
        cmocka_unit_test(test_spawn_counters_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
