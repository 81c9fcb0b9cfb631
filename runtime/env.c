/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * env.c — the URG_* environment variables.
 *
 *   URG_MAXPROCS  positive integer (at most URG_MAXPROCS_MAX)
 *   URG_QUANTUM   a duration with a unit: ns, us, ms, s ("2ms", "500us");
 *                 100 us to 10 s
 *   URG_STACK     bytes with an optional k/m/g suffix ("256k"); 16 KiB to
 *                 256 MiB
 *   URG_PREEMPT_MODULES  colon-separated base names (or prefixes) of
 *                 shared objects opted in to async preemption, like
 *                 urg_preempt_module ("libmycode.so:libsim")
 *   URG_DEBUG     comma-separated key=value:
 *                   schedtrace=MS       print a SCHED line every MS ms
 *                   scheddetail=1       add per-P, per-M, per-task lines
 *                   asyncpreemptoff=1   async build: no SIGURG preemption
 *                                       (Go's GODEBUG of the same name)
 *                   stackguard=MODE     madvise | mprotect | canary (tests)
 *                   chaos=SEED          random preemption, migration and
 *                                       run-queue order (chaos.c); 0: off
 *                   wakepreempt=US      wake-up preemption's minimum slice
 *                                       in microseconds (sysmon.c); 0: off
 *                   deferprof=1         where and why SIGURG preemptions were
 *                                       deferred (signals/deferprof.c)
 *                   trace=PATH          write a timeline trace of the run
 *                                       (Chrome JSON, trace.c)
 *
 * A malformed value is reported on stderr once per process and variable,
 * then ignored (the default applies), as API.md promises.
 */
#include "sched.h"
#include "signals/signals.h"
#include "unwind/unwind.h"

#include <stdlib.h>
#include <string.h>

static uint32_t warned;
enum { W_PROCS = 1, W_QUANTUM = 2, W_STACK = 4, W_DEBUG = 8 };

static void malformed(uint32_t bit, const char *var, const char *val, const char *why)
{
    if (fetch_add(&warned, 0u) & bit)
        return;
    __atomic_fetch_or(&warned, bit, __ATOMIC_RELAXED);
    urg__pbuf b = {.len = 0};
    urg__pb_str(&b, "urgent: ignoring ");
    urg__pb_str(&b, var);
    urg__pb_str(&b, "=\"");
    urg__pb_str(&b, val);
    urg__pb_str(&b, "\": ");
    urg__pb_str(&b, why);
    urg__pb_str(&b, "\n");
    urg__pb_flush(&b);
}

/* parse_u64: digits only, no sign, no overflow. Sets *end past them. */
static bool parse_u64(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    *end = p;
    return true;
}

/* urg__parse_duration: "10ms" -> 10000000. Returns false if malformed. */
URG__HIDDEN bool urg__parse_duration(const char *s, uint64_t *ns)
{
    uint64_t v;
    const char *u;
    if (!parse_u64(s, &v, &u))
        return false;
    uint64_t mul;
    if (!strcmp(u, "ns"))
        mul = 1;
    else if (!strcmp(u, "us"))
        mul = 1000;
    else if (!strcmp(u, "ms"))
        mul = 1000000;
    else if (!strcmp(u, "s"))
        mul = 1000000000;
    else
        return false;
    if (v > UINT64_MAX / mul)
        return false;
    *ns = v * mul;
    return true;
}

/* urg__parse_size: "256k" -> 262144. Returns false if malformed. */
URG__HIDDEN bool urg__parse_size(const char *s, uint64_t *bytes)
{
    uint64_t v;
    const char *u;
    if (!parse_u64(s, &v, &u))
        return false;
    uint64_t mul = 1;
    if (*u) {
        if ((u[0] == 'k' || u[0] == 'K') && !u[1])
            mul = 1024;
        else if ((u[0] == 'm' || u[0] == 'M') && !u[1])
            mul = 1024 * 1024;
        else if ((u[0] == 'g' || u[0] == 'G') && !u[1])
            mul = 1024 * 1024 * 1024;
        else
            return false;
    }
    if (v > UINT64_MAX / mul)
        return false;
    *bytes = v * mul;
    return true;
}

static void parse_debug(const char *val, struct urg__env *env)
{
    char buf[256];
    size_t n = strlen(val);
    if (n >= sizeof(buf)) {
        malformed(W_DEBUG, "URG_DEBUG", val, "too long");
        return;
    }
    memcpy(buf, val, n + 1);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            malformed(W_DEBUG, "URG_DEBUG", val, "expected key=value");
            continue;
        }
        *eq = 0;
        const char *k = tok, *v = eq + 1, *end;
        uint64_t num = 0;
        bool isnum = parse_u64(v, &num, &end) && !*end && num <= INT32_MAX;
        if (!strcmp(k, "schedtrace") && isnum)
            env->schedtrace_ms = (int)num;
        else if (!strcmp(k, "scheddetail") && isnum)
            env->scheddetail = (int)num;
        else if (!strcmp(k, "asyncpreemptoff") && isnum)
            urg__asyncpreemptoff = num != 0;
        else if (!strcmp(k, "wakepreempt") && isnum)
            env->wakepreempt_us = (int64_t)num;
        else if (!strcmp(k, "deferprof") && isnum)
            urg__deferprof = num != 0;
        else if (!strcmp(k, "chaos") && parse_u64(v, &num, &end) && !*end)
            env->chaos_seed = num;
        else if (!strcmp(k, "trace") && *v)
            urg__strlcpy(env->trace_path, v, sizeof(env->trace_path));
        else if (!strcmp(k, "stackguard") && !strcmp(v, "madvise"))
            urg__stackguard_force = 0;
        else if (!strcmp(k, "stackguard") && !strcmp(v, "mprotect"))
            urg__stackguard_force = 1;
        else if (!strcmp(k, "stackguard") && !strcmp(v, "canary"))
            urg__stackguard_force = 2;
        else
            malformed(W_DEBUG, "URG_DEBUG", val, "unknown key or bad value");
    }
}

/* urg__env_parse: read the variables. Context: urg_run, before any M. */
void urg__env_parse(struct urg__env *env)
{
    memset(env, 0, sizeof(*env));
    env->wakepreempt_us = -1;
    urg__stackguard_force = -1;
    urg__asyncpreemptoff = 0;
    urg__deferprof = 0;
    const char *v;
    uint64_t x;
    const char *end;
    if ((v = getenv("URG_MAXPROCS")) && *v) {
        if (parse_u64(v, &x, &end) && !*end && x >= 1 && x <= URG_MAXPROCS_MAX)
            env->maxprocs = (int)x;
        else
            malformed(W_PROCS, "URG_MAXPROCS", v, "want an integer from 1 to 1024");
    }
    if ((v = getenv("URG_QUANTUM")) && *v) {
        if (!urg__parse_duration(v, &x))
            malformed(W_QUANTUM, "URG_QUANTUM", v, "want a number with ns, us, ms or s");
        else if (x < URG_QUANTUM_MIN_NS || x > URG_QUANTUM_MAX_NS)
            malformed(W_QUANTUM, "URG_QUANTUM", v, "want 100us to 10s");
        else
            env->quantum_ns = x;
    }
    if ((v = getenv("URG_STACK")) && *v) {
        if (!urg__parse_size(v, &x))
            malformed(W_STACK, "URG_STACK", v, "want bytes with an optional k, m or g");
        else if (x < URG_STACK_MIN || x > URG_STACK_MAX)
            malformed(W_STACK, "URG_STACK", v, "want 16k to 256m");
        else
            env->stack_size = (size_t)x;
    }
    if ((v = getenv("URG_DEBUG")) && *v)
        parse_debug(v, env);
    urg__preempt_modules_env(getenv("URG_PREEMPT_MODULES"));
}
