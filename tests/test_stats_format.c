/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * test_stats_format.c — urg_stats_format's text, read back by a small
 * parser of the Prometheus text exposition format.
 *
 * What a scraper relies on is pinned here, on text captured during a run
 * (from a task: recorded, then asserted in the test body):
 *   - every sample belongs to a family with exactly one # HELP and one
 *     # TYPE line before it; names are valid metric names; counters end in
 *     _total and gauges do not; every urg_stats counter is there;
 *   - the preemption-cost histogram's buckets are cumulative with rising
 *     le, the +Inf bucket equals _count, and _count is the snapshot's
 *     sample count (in the async build the run first waits, on the
 *     counters, for some async preemptions so the buckets are not empty);
 *   - snprintf semantics: the return is the full length, a short buffer
 *     gets a NUL-terminated prefix, NULL/0 measures;
 *   - bad format or NULL with a length is -EINVAL; outside a run all 0.
 */
#include "testutil.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define CAP 16384

static char captured[CAP];
static int captured_rc;
static char captured_text[CAP];
static int captured_text_rc;
static volatile int hog_stop;

/* A call-free loop: only the signal path can preempt it. */
static void hog(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&hog_stop, __ATOMIC_RELAXED))
        ;
}

static void capture_main(void *arg)
{
    (void)arg;
    bool async = strcmp(urg_preempt_mode(), "async") == 0;
    if (async) {
        __atomic_store_n(&hog_stop, 0, __ATOMIC_RELAXED);
        CHECK(urg_go(hog, NULL) == 0);
        /* One proc: main runs again only when the hog is preempted. */
        urg_stats st;
        do {
            urg_yield();
            urg_stats_get(&st);
        } while (st.preempt_cost_samples < 3);
        __atomic_store_n(&hog_stop, 1, __ATOMIC_RELAXED);
    }
    captured_rc = urg_stats_format(captured, sizeof(captured), URG_STATS_PROMETHEUS);
    captured_text_rc = urg_stats_format(captured_text, sizeof(captured_text), URG_STATS_TEXT);
}

/* ---- the parser ---- */

struct family {
    char name[128];
    char type[16];
    int help, typed, samples;
};

static struct family fams[64];
static int nfams;

static struct family *family(const char *name)
{
    for (int i = 0; i < nfams; i++)
        if (strcmp(fams[i].name, name) == 0)
            return &fams[i];
    assert_true(nfams < 64);
    struct family *f = &fams[nfams++];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    return f;
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return false;
    return true;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* The histogram's samples, gathered while parsing. */
static double le_seen[64];
static unsigned long long bucket_seen[64];
static int nbuckets;
static unsigned long long inf_bucket, hist_count;
static double hist_sum;
static bool have_inf, have_count, have_sum;

/* parse checks the exposition in text line by line; fail_msg on the first
 * violation. */
static void parse(char *text)
{
    nfams = nbuckets = 0;
    have_inf = have_count = have_sum = false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            char kw[8], name[128], rest[16];
            if (sscanf(line, "# %7s %127s %15[^\n]", kw, name, rest) != 3)
                fail_msg("bad comment line: %s", line);
            if (!valid_name(name, strlen(name)))
                fail_msg("bad metric name in: %s", line);
            struct family *f = family(name);
            if (f->samples)
                fail_msg("%s after samples of %s", kw, name);
            if (strcmp(kw, "HELP") == 0) {
                if (f->help++)
                    fail_msg("second HELP for %s", name);
            } else if (strcmp(kw, "TYPE") == 0) {
                if (f->typed++)
                    fail_msg("second TYPE for %s", name);
                if (strcmp(rest, "counter") && strcmp(rest, "gauge") && strcmp(rest, "histogram"))
                    fail_msg("bad type: %s", line);
                snprintf(f->type, sizeof(f->type), "%s", rest);
            } else {
                fail_msg("unknown comment: %s", line);
            }
            continue;
        }
        size_t n = strcspn(line, "{ ");
        if (!valid_name(line, n))
            fail_msg("bad sample name: %s", line);
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)n, line);
        const char *labels = line[n] == '{' ? line + n : NULL;
        const char *value = strchr(labels ? strchr(labels, '}') : line, ' ');
        if (!value)
            fail_msg("no value: %s", line);
        char *end;
        double v = strtod(value + 1, &end);
        if (end == value + 1 || *end != '\0')
            fail_msg("bad value: %s", line);
        /* The family: the name, or the name less a histogram suffix. */
        struct family *f = NULL;
        for (int i = 0; i < nfams && !f; i++)
            if (strcmp(fams[i].name, name) == 0)
                f = &fams[i];
        const char *suffix = "";
        for (int i = 0; i < nfams && !f; i++) {
            size_t fl = strlen(fams[i].name);
            if (strcmp(fams[i].type, "histogram") == 0 && strncmp(name, fams[i].name, fl) == 0 &&
                (!strcmp(name + fl, "_bucket") || !strcmp(name + fl, "_sum") ||
                 !strcmp(name + fl, "_count"))) {
                f = &fams[i];
                suffix = name + fl;
            }
        }
        if (!f || f->help != 1 || f->typed != 1)
            fail_msg("sample without HELP and TYPE: %s", line);
        f->samples++;
        if (strcmp(f->type, "counter") == 0 && !ends_with(name, "_total"))
            fail_msg("counter not named _total: %s", line);
        if (strcmp(f->type, "gauge") == 0 && ends_with(name, "_total"))
            fail_msg("gauge named _total: %s", line);
        if (strcmp(f->type, "histogram") != 0) {
            if (labels)
                fail_msg("unexpected labels: %s", line);
            continue;
        }
        if (strcmp(suffix, "_bucket") == 0) {
            if (!labels || strncmp(labels, "{le=\"", 5) != 0)
                fail_msg("bucket without le: %s", line);
            if (strncmp(labels + 5, "+Inf\"}", 6) == 0) {
                have_inf = true;
                inf_bucket = (unsigned long long)v;
            } else {
                if (have_inf || nbuckets >= 64)
                    fail_msg("bucket after +Inf: %s", line);
                le_seen[nbuckets] = strtod(labels + 5, &end);
                if (*end != '"')
                    fail_msg("bad le: %s", line);
                bucket_seen[nbuckets++] = (unsigned long long)v;
            }
        } else if (strcmp(suffix, "_sum") == 0) {
            have_sum = true;
            hist_sum = v;
        } else {
            have_count = true;
            hist_count = (unsigned long long)v;
        }
    }
    for (int i = 0; i < nfams; i++)
        if (fams[i].help != 1 || fams[i].typed != 1 || fams[i].samples == 0)
            fail_msg("family %s: %d HELP, %d TYPE, %d samples", fams[i].name, fams[i].help,
                     fams[i].typed, fams[i].samples);
}

static const struct family *find(const char *name)
{
    for (int i = 0; i < nfams; i++)
        if (strcmp(fams[i].name, name) == 0)
            return &fams[i];
    fail_msg("no family %s", name);
    return NULL;
}

/* ---- tests ---- */

static void test_stats_format_prometheus_parses(void **state)
{
    (void)state;
    tu_reset();
    tu_run(capture_main, NULL, 1);
    assert_checks_ok();
    assert_true(captured_rc > 0 && captured_rc < CAP);
    assert_int_equal((int)strlen(captured), captured_rc);
    static char copy[CAP];
    memcpy(copy, captured, sizeof(copy));
    parse(copy);

    static const char *const counters[] = {
        "urgent_tasks_created_total",
        "urgent_context_switches_total",
        "urgent_steals_total",
        "urgent_preempt_requests_total",
        "urgent_preempt_signals_total",
        "urgent_preempt_async_total",
        "urgent_preempt_deferred_total",
        "urgent_preempt_cooperative_total",
        "urgent_preempt_walks_memo_total",
        "urgent_preempt_wakeup_total",
        "urgent_syscall_handoffs_total",
    };
    static const char *const gauges[] = {
        "urgent_tasks_live",   "urgent_maxprocs",         "urgent_idle_procs",  "urgent_threads",
        "urgent_idle_threads", "urgent_spinning_threads", "urgent_global_runq", "urgent_local_runq",
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        assert_string_equal(find(counters[i])->type, "counter");
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
        assert_string_equal(find(gauges[i])->type, "gauge");
    assert_string_equal(find("urgent_preempt_cost_seconds")->type, "histogram");
    assert_non_null(strstr(captured, "\nurgent_maxprocs 1\n"));

    /* The histogram. */
    assert_true(have_inf && have_sum && have_count);
    assert_true(nbuckets >= 2);
    for (int i = 1; i < nbuckets; i++) {
        if (!(le_seen[i] > le_seen[i - 1]))
            fail_msg("le not rising at bucket %d", i);
        if (bucket_seen[i] < bucket_seen[i - 1])
            fail_msg("bucket %d not cumulative: %llu < %llu", i, bucket_seen[i],
                     bucket_seen[i - 1]);
    }
    assert_true(inf_bucket >= bucket_seen[nbuckets - 1]);
    assert_int_equal(inf_bucket, hist_count);
    assert_true(hist_sum >= 0);
    if (strcmp(urg_preempt_mode(), "async") == 0) {
        assert_true(hist_count >= 3);
        assert_true(hist_sum > 0);
    }

    /* The text format names every field once. */
    assert_true(captured_text_rc > 0 && captured_text_rc < CAP);
    assert_non_null(strstr(captured_text, "tasks_created "));
    assert_non_null(strstr(captured_text, "\npreempt_cost_sum_ns "));
    assert_non_null(strstr(captured_text, "\nmaxprocs 1\n"));
}

static void test_stats_format_truncates_like_snprintf(void **state)
{
    (void)state;
    int need = urg_stats_format(NULL, 0, URG_STATS_PROMETHEUS);
    assert_true(need > 0);
    char *full = malloc((size_t)need + 1);
    assert_non_null(full);
    assert_int_equal(urg_stats_format(full, (size_t)need + 1, URG_STATS_PROMETHEUS), need);
    assert_int_equal((int)strlen(full), need);
    /* Outside a run the values are constant (0), so every cut is a prefix. */
    const size_t cuts[] = {1, 2, 17, (size_t)need / 2, (size_t)need};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        char buf[CAP];
        memset(buf, 'x', sizeof(buf));
        assert_int_equal(urg_stats_format(buf, cuts[i], URG_STATS_PROMETHEUS), need);
        assert_int_equal(strlen(buf), cuts[i] - 1);
        assert_memory_equal(buf, full, cuts[i] - 1);
        assert_int_equal(buf[cuts[i]], 'x'); /* nothing past len */
    }
    free(full);
}

static void test_stats_format_bad_input(void **state)
{
    (void)state;
    char buf[64] = "untouched";
    assert_int_equal(urg_stats_format(buf, sizeof(buf), 0), -EINVAL);
    assert_int_equal(urg_stats_format(buf, sizeof(buf), 3), -EINVAL);
    assert_int_equal(urg_stats_format(buf, sizeof(buf), -1), -EINVAL);
    assert_string_equal(buf, "untouched");
    assert_int_equal(urg_stats_format(NULL, 10, URG_STATS_PROMETHEUS), -EINVAL);
    assert_int_equal(urg_stats_format(NULL, 10, URG_STATS_TEXT), -EINVAL);
    assert_true(urg_stats_format(NULL, 0, URG_STATS_TEXT) > 0);
}

static void test_stats_format_zero_outside_run(void **state)
{
    (void)state;
    char buf[CAP];
    assert_true(urg_stats_format(buf, sizeof(buf), URG_STATS_PROMETHEUS) > 0);
    assert_non_null(strstr(buf, "\nurgent_tasks_live 0\n"));
    assert_non_null(strstr(buf, "\nurgent_preempt_cost_seconds_count 0\n"));
    assert_non_null(strstr(buf, "urgent_preempt_cost_seconds_bucket{le=\"+Inf\"} 0\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_format_bad_input),
        cmocka_unit_test(test_stats_format_zero_outside_run),
        cmocka_unit_test(test_stats_format_truncates_like_snprintf),
        cmocka_unit_test(test_stats_format_prometheus_parses),
    };
    return cmocka_run_group_tests(tests, tu_fd_group_setup, tu_fd_group_teardown);
}
