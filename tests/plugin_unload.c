/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/plugin_unload.c — a shared object that test_native loads, opts in
 * to preemption, and unloads (test_native_dlclose_then_code_at_old_address).
 * Only its place in memory and its unwind tables matter.
 */
int urg_test_plugin_spin(volatile int *flag);

int urg_test_plugin_spin(volatile int *flag)
{
    int n = 0;
    while (!*flag)
        n++;
    return n;
}
