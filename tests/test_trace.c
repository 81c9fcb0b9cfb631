/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/test_trace.c — the timeline trace (runtime/trace.c):
 * urg_trace_start/urg_trace_stop and URG_DEBUG=trace=PATH.
 *
 * The file must be well-formed JSON (a small validator below parses all
 * of it), hold the documented tracks (P0, P1, ..., sysmon) and end
 * reasons, and count exactly as many preempt-async slice ends as
 * urg_stats.preempt_async grew by over the traced window. The window is
 * opened and closed by the main task inside urg_preempt_disable, with no
 * other task alive at either end, so nothing can be preempted between a
 * counter snapshot and the trace's edge. In the cooperative build (and
 * under ThreadSanitizer, which delays signals) the loops call
 * urg_checkpoint and the test expects preempt-coop ends and no
 * preempt-async ones.
 *
 * Waits are on state: the loops run until a pthread sees the preemption
 * counter reach its target, never for a fixed time.
 */
#include "testutil.h"

#include <sys/stat.h>

/* ---- a JSON validator (RFC 8259 grammar, no semantics) ---- */

struct js {
    const char *p, *end;
    int depth;
};

static void js_ws(struct js *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

static bool js_value(struct js *j);

static bool js_lit(struct js *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return false;
    j->p += n;
    return true;
}

static bool js_string(struct js *j)
{
    if (j->p >= j->end || *j->p != '"')
        return false;
    for (j->p++; j->p < j->end; j->p++) {
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (++j->p >= j->end)
                return false;
            if (*j->p == 'u') {
                for (int i = 0; i < 4; i++)
                    if (++j->p >= j->end || !strchr("0123456789abcdefABCDEF", *j->p))
                        return false;
            } else if (!strchr("\"\\/bfnrt", *j->p)) {
                return false;
            }
        }
    }
    return false;
}

static bool js_digits(struct js *j)
{
    const char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > s;
}

static bool js_number(struct js *j)
{
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (!js_digits(j))
        return false;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!js_digits(j))
            return false;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (!js_digits(j))
            return false;
    }
    return true;
}

/* js_seq: the members of an object (obj) or the elements of an array,
 * after the opening bracket. */
static bool js_seq(struct js *j, bool obj)
{
    char close = obj ? '}' : ']';
    js_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return true;
    }
    for (;;) {
        js_ws(j);
        if (obj) {
            if (!js_string(j))
                return false;
            js_ws(j);
            if (j->p >= j->end || *j->p++ != ':')
                return false;
        }
        if (!js_value(j))
            return false;
        js_ws(j);
        if (j->p >= j->end)
            return false;
        char c = *j->p++;
        if (c == close)
            return true;
        if (c != ',')
            return false;
    }
}

static bool js_value(struct js *j)
{
    js_ws(j);
    if (j->p >= j->end || ++j->depth > 64)
        return false;
    bool ok;
    switch (*j->p) {
    case '{':
    case '[':
        ok = js_seq(j, *j->p++ == '{');
        break;
    case '"':
        ok = js_string(j);
        break;
    case 't':
        ok = js_lit(j, "true");
        break;
    case 'f':
        ok = js_lit(j, "false");
        break;
    case 'n':
        ok = js_lit(j, "null");
        break;
    default:
        ok = js_number(j);
    }
    j->depth--;
    return ok;
}

static bool json_valid(const char *s, size_t n)
{
    struct js j = {s, s + n, 0};
    if (!js_value(&j))
        return false;
    js_ws(&j);
    return j.p == j.end;
}

/* ---- reading a trace ---- */

static char dir[64];

static void path_in_dir(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

struct trace {
    char *text;
    int ends[9]; /* by reason: the order of reasons[] */
};

static const char *const reasons[] = {
    "preempt-async", "preempt-coop", "yield", "park:", "syscall", "exit", "stw", "running"};

/* load_trace: read and check a trace file: valid JSON, a traceEvents
 * array, the P0..P(procs-1) and sysmon tracks, every slice end one of the
 * documented reasons. Counts the ends by reason. */
static void load_trace(const char *path, int procs, struct trace *t)
{
    size_t len = 0;
    t->text = slurp(path, &len);
    assert_non_null(t->text);
    if (!json_valid(t->text, len))
        fail_msg("%s is not valid JSON", path);
    assert_non_null(strstr(t->text, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":["));
    for (int p = 0; p < procs; p++) {
        char want[96];
        snprintf(want, sizeof(want), "\"name\":\"thread_name\",\"args\":{\"name\":\"P%d\"}", p);
        if (!strstr(t->text, want))
            fail_msg("no track named P%d", p);
    }
    assert_non_null(strstr(t->text, "\"name\":\"thread_name\",\"args\":{\"name\":\"sysmon\"}"));
    memset(t->ends, 0, sizeof(t->ends));
    int total = 0;
    for (const char *p = t->text; (p = strstr(p, "\"end\":\"")) != NULL; total++) {
        p += strlen("\"end\":\"");
        size_t k = 0;
        while (k < URG__ARRAY_LEN(reasons) && strncmp(p, reasons[k], strlen(reasons[k])) != 0)
            k++;
        if (k == URG__ARRAY_LEN(reasons))
            fail_msg("undocumented slice end: %.20s", p);
        size_t rl = strlen(reasons[k]);
        if (reasons[k][rl - 1] != ':' && p[rl] != '"')
            fail_msg("undocumented slice end: %.20s", p);
        t->ends[k]++;
    }
    assert_int_equal(total, count(t->text, "\"ph\":\"X\""));
}

/* ---- the API's errors ---- */

static void test_trace_api_errors(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "errors.json");
    assert_int_equal(urg_trace_start(NULL), -EINVAL);
    assert_int_equal(urg_trace_start(""), -EINVAL);
    assert_int_equal(urg_trace_start("/nonexistent-urgent-dir/t.json"), -ENOENT);
    assert_int_equal(urg_trace_stop(), -ENOENT);
    assert_int_equal(urg_trace_start(path), 0);
    assert_int_equal(urg_trace_start(path), -EBUSY);
    assert_int_equal(urg_trace_stop(), 0);
    assert_int_equal(urg_trace_stop(), -ENOENT);
    /* With nothing run in between, it is still a whole, valid file. */
    struct trace t;
    load_trace(path, 0, &t);
    assert_int_equal(count(t.text, "\"ph\":\"X\""), 0);
    free(t.text);
}

/* ---- preempt-async ends against the counter ---- */

#define NHOGS  4
#define TARGET 12 /* preemptions to see in the window */

static int done;         /* atomic: the loops may stop */
static bool checkpoints; /* the loops call urg_checkpoint (cooperative) */
static urg_wg wg;
static urg_stats before, after;
static int start_ret = 1, stop_ret = 1;
static char window_path[128];

static void hog(void *arg)
{
    (void)arg;
    uint64_t n = 0;
    while (!__atomic_load_n(&done, __ATOMIC_RELAXED)) {
        TU_BUMP(&n);
        if (checkpoints)
            urg_checkpoint();
    }
    urg_wg_done(&wg);
}

static uint64_t preemptions(const urg_stats *s)
{
    return checkpoints ? s->preempt_cooperative : s->preempt_async;
}

/* The watcher: a plain thread, polling the counters (state, not time). */
static void *watcher(void *arg)
{
    (void)arg;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        urg_stats s;
        urg_stats_get(&s);
        if (preemptions(&s) >= preemptions(&before) + TARGET)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > TU_AWAIT_DEADLINE_S) {
            fprintf(stderr, "test_trace: %llu of %d preemptions after %d s\n",
                    (unsigned long long)(preemptions(&s) - preemptions(&before)), TARGET,
                    TU_AWAIT_DEADLINE_S);
            urg_dump();
            abort();
        }
        struct timespec ts = {0, 1000000}; /* a polling interval, not a wait */
        nanosleep(&ts, NULL);
    }
    __atomic_store_n(&done, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void window_main(void *arg)
{
    (void)arg;
    urg_preempt_disable();
    urg_stats_get(&before);
    start_ret = urg_trace_start(window_path);
    urg_preempt_enable();
    pthread_t w;
    pthread_create(&w, NULL, watcher, NULL);
    urg_wg_add(&wg, NHOGS);
    for (int i = 0; i < NHOGS; i++)
        CHECK(urg_go(hog, NULL) == 0);
    urg_wg_wait(&wg);
    /* Until every loop has exited, not only said so: one still on its way
     * out could be preempted after the trace stopped. */
    for (;;) {
        urg_stats s;
        urg_stats_get(&s);
        if (s.tasks_live == 1)
            break;
        urg_yield();
    }
    urg_preempt_disable();
    stop_ret = urg_trace_stop();
    urg_stats_get(&after);
    urg_preempt_enable();
    pthread_join(w, NULL);
}

static void window_at(int procs)
{
    checkpoints = !tu_is_async() || TU_TSAN;
    __atomic_store_n(&done, 0, __ATOMIC_RELAXED);
    char name[32];
    snprintf(name, sizeof(name), "window%d.json", procs);
    path_in_dir(window_path, sizeof(window_path), name);
    tu_wd_start(TU_AWAIT_DEADLINE_S, "trace window");
    RUN_AT(window_main, NULL, procs);
    tu_wd_stop();
    assert_int_equal(start_ret, 0);
    assert_int_equal(stop_ret, 0);
    struct trace t;
    load_trace(window_path, procs, &t);
    uint64_t async = after.preempt_async - before.preempt_async;
    print_message("procs=%d: preempt-async ends %d, urg_stats.preempt_async +%llu; "
                  "preempt-coop ends %d, exit ends %d\n",
                  procs, t.ends[0], (unsigned long long)async, t.ends[1], t.ends[5]);
    assert_int_equal((uint64_t)t.ends[0], async);
    if (checkpoints) {
        assert_int_equal(t.ends[0], 0);
        assert_true(t.ends[1] >= TARGET);
    } else {
        assert_true(t.ends[0] >= TARGET);
    }
    assert_true(t.ends[5] >= NHOGS); /* every loop's last slice */
    assert_true(count(t.text, "\"name\":\"spawn\"") >= NHOGS);
    if (!checkpoints)
        assert_true(count(t.text, "\"name\":\"SIGURG\"") >= TARGET);
    free(t.text);
}

static void test_trace_async_ends_match_stats_one_proc(void **state)
{
    (void)state;
    window_at(1);
}

static void test_trace_async_ends_match_stats_two_procs(void **state)
{
    (void)state;
    window_at(2);
}

/* ---- URG_DEBUG=trace=PATH: a whole run ---- */

static urg_chan *ch;

static void sleeper(void *arg)
{
    (void)arg;
    urg_sleep(1000000);
    urg_syscall_enter();
    urg_syscall_exit();
    urg_yield();
    CHECK(urg_chan_send(ch, &(int){1}) == 0);
    urg_wg_done(&wg);
}

static void env_main(void *arg)
{
    (void)arg;
    urg_wg_add(&wg, 3);
    for (int i = 0; i < 3; i++)
        CHECK(urg_go(sleeper, NULL) == 0);
    for (int i = 0; i < 3; i++) {
        int v = 0;
        CHECK(urg_chan_recv(ch, &v) == 0);
    }
    urg_wg_wait(&wg);
    /* The trace is on for the whole run: a second one is refused. */
    char other[160];
    path_in_dir(other, sizeof(other), "other.json");
    CHECK(urg_trace_start(other) == -EBUSY);
}

static void test_trace_env_whole_run(void **state)
{
    (void)state;
    char path[128], env[192];
    path_in_dir(path, sizeof(path), "env.json");
    snprintf(env, sizeof(env), "trace=%s", path);
    setenv("URG_DEBUG", env, 1);
    ch = urg_chan_new(sizeof(int), 0);
    assert_non_null(ch);
    RUN_AT(env_main, NULL, 2);
    unsetenv("URG_DEBUG");
    urg_chan_free(ch);
    /* The run's end finished the file. */
    assert_int_equal(urg_trace_stop(), -ENOENT);
    struct trace t;
    load_trace(path, 2, &t);
    assert_true(t.ends[2] >= 3); /* yield */
    assert_true(t.ends[3] >= 4); /* park: sleep, chan receive, wait group */
    assert_true(t.ends[4] >= 3); /* syscall */
    assert_true(t.ends[5] >= 4); /* exit (main's too) */
    assert_non_null(strstr(t.text, "\"end\":\"park:sleep\""));
    assert_non_null(strstr(t.text, "\"end\":\"park:chan receive\""));
    assert_int_equal(count(t.text, "\"name\":\"spawn\""), 4);
    free(t.text);
}

/* A trace started outside a run records the next run, which finishes it. */
static void test_trace_started_before_run_ends_with_it(void **state)
{
    (void)state;
    char path[128];
    path_in_dir(path, sizeof(path), "before.json");
    assert_int_equal(urg_trace_start(path), 0);
    ch = urg_chan_new(sizeof(int), 0);
    assert_non_null(ch);
    RUN_AT(env_main, NULL, 1);
    urg_chan_free(ch);
    assert_int_equal(urg_trace_stop(), -ENOENT);
    struct trace t;
    load_trace(path, 1, &t);
    assert_true(t.ends[5] >= 4);
    free(t.text);
}

/* A path that cannot be opened: one line, and the run goes on untraced. */
static void bad_env_main(void *arg) { (void)arg; }

static void test_trace_env_bad_path_runs_untraced(void **state)
{
    (void)state;
    setenv("URG_DEBUG", "trace=/nonexistent-urgent-dir/t.json", 1);
    RUN_AT(bad_env_main, NULL, 1);
    unsetenv("URG_DEBUG");
    assert_int_equal(urg_trace_stop(), -ENOENT);
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/urgent-trace.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"errors.json", "window1.json", "window2.json",
                           "env.json",    "before.json",  "other.json"};
    for (size_t i = 0; i < URG__ARRAY_LEN(names); i++) {
        char path[128];
        path_in_dir(path, sizeof(path), names[i]);
        unlink(path);
    }
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_api_errors),
        cmocka_unit_test(test_trace_async_ends_match_stats_one_proc),
        cmocka_unit_test(test_trace_async_ends_match_stats_two_procs),
        cmocka_unit_test(test_trace_env_whole_run),
        cmocka_unit_test(test_trace_started_before_run_ends_with_it),
        cmocka_unit_test(test_trace_env_bad_path_runs_untraced),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
