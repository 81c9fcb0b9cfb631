/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * time.c — the clock: urg_now, and the runtime's own readings of it.
 *
 * CLOCK_MONOTONIC through the vDSO for everything that times or schedules
 * (timers, quanta, sysmon, stop-the-world spins), and CLOCK_MONOTONIC_COARSE
 * where only a rough age is wanted and the read is frequent (when a task
 * parked, for dumps). clock_gettime is on the signal-safety(7) list, so
 * the SIGURG handler and task dumps may read either. Timers themselves
 * are in timer.c.
 */
#include "internal.h"

#include <time.h>

/* Signal-safe (clock_gettime is on the signal-safety(7) list). */
URG__PREEMPT_PATH uint64_t urg__nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Signal-safe. Cheap enough for every park (no syscall, no TSC read). */
uint64_t urg__nanotime_coarse(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t urg_now(void) { return urg__nanotime(); }
