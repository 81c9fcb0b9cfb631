/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * maxprocs.c — the set of procs: how many by default (the CPUs this
 * process may really use), and resizing it (urg_set_maxprocs).
 *
 * The rule (Go 1.25's, without its floor of 2, which exists for Go's
 * garbage collector): the number of CPUs in the affinity mask, cut down by
 * a cgroup CPU bandwidth limit if one applies, rounded up, at least 1.
 * The limit is the tightest quota/period found on the path from the
 * process's cgroup up to the root of the hierarchy — Go 1.25 reads only
 * the leaf and misses a tighter parent (golang/go#76390 and #81180).
 *
 *   cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us (quota -1: none), in
 *              the hierarchy whose controllers include "cpu";
 *   cgroup v2: cpu.max, "<quota> <period>" ("max": none).
 * v1 wins when both are mounted with a cpu controller, as in Go.
 *
 * Paths: /proc/self/cgroup gives the cgroup path; /proc/self/mountinfo
 * gives where the hierarchy is mounted and which part of it (the mount's
 * root, not "/" inside containers).
 *
 * Resizing: urg_set_maxprocs stops the world (stw.c) and restarts it with
 * the new count. procresize runs with the world stopped: new Ps are
 * allocated (and kept until the run ends), Ps beyond the new count hand
 * their queued tasks to the global queue, their timers to P0 and their
 * caches to the pools. It also builds the first set of Ps (run.c).
 *
 * Nothing here is in a hot path.
 */

#include "sched.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int affinity_cpus(void)
{
    for (int n = 1024; n <= 1 << 20; n *= 2) {
        cpu_set_t *set = CPU_ALLOC((size_t)n);
        if (!set)
            return 1;
        size_t sz = CPU_ALLOC_SIZE((size_t)n);
        if (sched_getaffinity(0, sz, set) == 0) {
            int c = CPU_COUNT_S(sz, set);
            CPU_FREE(set);
            return c > 0 ? c : 1;
        }
        CPU_FREE(set);
        if (errno != EINVAL)
            break;
    }
    return 1;
}

static bool read_line(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)n, f) != NULL;
    fclose(f);
    return ok;
}

/* find_cgroup: the cgroup path of this process in the v1 cpu hierarchy
 * (version 1) or in the v2 unified one (version 2). */
static bool find_cgroup(char *path, size_t n, int *version)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    char v2[4096] = "";
    while (fgets(line, sizeof(line), f)) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = *c2 = 0;
        char *ctrls = c1 + 1, *p = c2 + 1;
        p[strcspn(p, "\n")] = 0;
        if (!strcmp(line, "0") && !*ctrls) {
            snprintf(v2, sizeof(v2), "%s", p);
            continue;
        }
        char *save = NULL;
        for (char *t = strtok_r(ctrls, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (!strcmp(t, "cpu")) {
                snprintf(path, n, "%s", p);
                *version = 1;
                found = true;
            }
        }
    }
    fclose(f);
    if (!found && v2[0]) {
        snprintf(path, n, "%s", v2);
        *version = 2;
        found = true;
    }
    return found;
}

/* find_mount: the mount point and mount root of the hierarchy. */
static bool find_mount(int version, char *mnt, size_t mn, char *root, size_t rn)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        /* id parent maj:min root mountpoint opts... - fstype source superopts */
        char *fields[6] = {0};
        char *save = NULL, *t = strtok_r(line, " ", &save);
        for (int i = 0; i < 6 && t; i++, t = strtok_r(NULL, " ", &save))
            fields[i] = t;
        if (!fields[4])
            continue;
        char *dash = t;
        while (dash && strcmp(dash, "-"))
            dash = strtok_r(NULL, " ", &save);
        char *fstype = dash ? strtok_r(NULL, " ", &save) : NULL;
        char *source = fstype ? strtok_r(NULL, " ", &save) : NULL;
        char *super = source ? strtok_r(NULL, " \n", &save) : NULL;
        if (!fstype)
            continue;
        if (version == 2 && !strcmp(fstype, "cgroup2")) {
            found = true;
        } else if (version == 1 && !strcmp(fstype, "cgroup") && super) {
            char *s2 = NULL;
            for (char *o = strtok_r(super, ",", &s2); o; o = strtok_r(NULL, ",", &s2))
                if (!strcmp(o, "cpu"))
                    found = true;
        }
        if (found) {
            snprintf(root, rn, "%s", fields[3]);
            snprintf(mnt, mn, "%s", fields[4]);
        }
    }
    fclose(f);
    return found;
}

/* limit_at: the CPU limit set in one cgroup directory, or 0 for none. */
static double limit_at(const char *dir, int version)
{
    char path[8300], buf[128];
    if (version == 1) {
        snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir);
        if (!read_line(path, buf, sizeof(buf)))
            return 0;
        long long quota = strtoll(buf, NULL, 10);
        snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir);
        if (quota <= 0 || !read_line(path, buf, sizeof(buf)))
            return 0;
        long long period = strtoll(buf, NULL, 10);
        return period > 0 ? (double)quota / (double)period : 0;
    }
    snprintf(path, sizeof(path), "%s/cpu.max", dir);
    if (!read_line(path, buf, sizeof(buf)) || !strncmp(buf, "max", 3))
        return 0;
    long long quota = 0, period = 0;
    if (sscanf(buf, "%lld %lld", &quota, &period) != 2 || quota <= 0 || period <= 0)
        return 0;
    return (double)quota / (double)period;
}

/* urg__cgroup_cpu_limit: the tightest limit on the path to the root, or 0.
 * Exposed for tests through the maxprocs default only. */
static double cgroup_cpu_limit(void)
{
    char cg[4096], mnt[4096], root[4096];
    int version = 0;
    if (!find_cgroup(cg, sizeof(cg), &version) ||
        !find_mount(version, mnt, sizeof(mnt), root, sizeof(root)))
        return 0;
    /* Path of our cgroup inside the mount. */
    const char *rel = cg;
    size_t rl = strlen(root);
    if (strcmp(root, "/") && !strncmp(cg, root, rl))
        rel = cg + rl;
    char dir[8200];
    snprintf(dir, sizeof(dir), "%s%s", mnt, rel);
    size_t base = strlen(mnt);
    double best = 0;
    for (;;) {
        double l = limit_at(dir, version);
        if (l > 0 && (best == 0 || l < best))
            best = l;
        size_t len = strlen(dir);
        if (len <= base)
            break;
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < base)
            break;
        *slash = 0;
        if (strlen(dir) < base)
            break;
    }
    return best;
}

/* urg__default_maxprocs: Context: urg_run, before any M. */
int urg__default_maxprocs(void)
{
    int n = affinity_cpus();
    double limit = cgroup_cpu_limit();
    if (limit > 0) {
        int l = (int)limit;
        if ((double)l < limit)
            l++;
        if (l < 1)
            l = 1;
        if (l < n)
            n = l;
    }
    if (n > URG_MAXPROCS_MAX)
        n = URG_MAXPROCS_MAX;
    return n < 1 ? 1 : n;
}

/* ---- resizing the set of Ps ---------------------------------------------- */

static p_t *p_new(int32_t id)
{
    p_t *pp;
    if (posix_memalign((void **)&pp, URG__CACHELINE, sizeof(*pp)) != 0)
        return NULL;
    memset(pp, 0, sizeof(*pp));
    pp->id = id;
    pp->status = P_IDLE;
    urg__lock_init(&pp->timerlock, URG_RANK_TIMERS);
    return pp;
}

static uint32_t gcd(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Steal order: start anywhere, step by a stride coprime to nprocs, and
 * every P is visited exactly once. */
static void stealorder_reset(uint32_t n)
{
    sched.nstealorder = 0;
    for (uint32_t i = 1; i <= n; i++)
        if (gcd(i, n) == 1)
            sched.stealorder_coprimes[sched.nstealorder++] = i;
}

/* urg__procresize: make `nprocs` Ps. Returns 0 or -ENOMEM (nothing
 * changed). Ps with queued work are chained through link into
 * *runnable_out (the caller starts Ms for them).
 * Context: world stopped, or before the first M. Locks: sched.lock. */
int urg__procresize(int32_t nprocs, p_t **runnable_out)
{
    int32_t old = sched.gomaxprocs;
    for (int32_t i = old; i < nprocs; i++) {
        if (!sched.allp[i]) {
            sched.allp[i] = p_new(i);
            if (!sched.allp[i])
                return -ENOMEM;
        }
    }
    m_t *mp = urg__tls_m;
    /* Shrinking: drain the Ps that go away. */
    for (int32_t i = nprocs; i < old; i++) {
        p_t *pp = sched.allp[i];
        g_t *batch[URG__RUNQ_SIZE + 1];
        int n = urg__runqdrain(pp, batch, URG__RUNQ_SIZE + 1);
        for (int k = 0; k < n; k++)
            urg__globrunqput(batch[k]);
        urg__stack_flush_cache(pp);
        /* Keep the counters of what it did. */
        fetch_add(&sched.exited_p_created, pp->n_created);
        fetch_add(&sched.exited_p_exited, pp->n_exited);
        fetch_add(&sched.exited_p_switches, pp->n_switches);
        fetch_add(&sched.exited_p_steals, pp->n_steals);
        fetch_add(&sched.exited_p_coop, pp->n_preempt_coop);
        pp->n_created = pp->n_exited = pp->n_switches = pp->n_steals = pp->n_preempt_coop = 0;
        urg__gfree_flush(pp);
        if (mp && mp->p == pp) {
            st_release(&pp->m, (m_t *)NULL);
            mp->p = NULL;
        }
        st_release(&pp->status, (uint32_t)P_DEAD);
    }
    st_release(&sched.gomaxprocs, nprocs);
    stealorder_reset((uint32_t)nprocs);

    /* The caller keeps its P if it still exists; else it takes P0. */
    if (mp) {
        if (mp->p) {
            st_release(&mp->p->status, (uint32_t)P_RUNNING);
        } else if (mp->curg) {
            p_t *p0 = sched.allp[0];
            st_release(&p0->m, (m_t *)NULL);
            urg__acquirep(mp, p0);
        }
    }
    /* Everything else: idle, or runnable if it has work. */
    sched.pidle = NULL;
    st_relaxed(&sched.npidle, 0);
    p_t *runnable = NULL;
    for (int32_t i = nprocs; i-- > 0;) {
        p_t *pp = sched.allp[i];
        if (mp && mp->p == pp)
            continue;
        st_release(&pp->m, (m_t *)NULL);
        if (urg__runqempty(pp)) {
            urg__pidle_push(pp);
        } else {
            st_release(&pp->status, (uint32_t)P_IDLE);
            pp->link = runnable;
            runnable = pp;
        }
    }
    *runnable_out = runnable;
    return 0;
}

int urg_maxprocs(void)
{
    if (!ld_acquire(&sched.running))
        return 0;
    return ld_relaxed(&sched.gomaxprocs);
}

int urg_set_maxprocs(int n)
{
    if (n < 1 || n > URG_MAXPROCS_MAX)
        return -EINVAL;
    g_t *gp = urg__curg();
    if (gp)
        URG__CLOSE_OPEN_SYSCALL(gp, "urg_set_maxprocs");
    else if (!urg__ext_enter())
        return -EPERM;
    if (gp && ld_relaxed(&sched.exiting))
        return -EPERM;
    int ret = 0;
    if (n != ld_relaxed(&sched.gomaxprocs))
        ret = urg__stop_the_world() ? urg__start_the_world(n) : -EPERM;
    if (!gp)
        urg__ext_exit();
    return ret;
}
