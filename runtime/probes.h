/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * probes.h — USDT (user-level statically defined tracing) probes, provider
 * "urgent", for bpftrace, perf probe, SystemTap and gdb (docs/probes.md).
 *
 * URG__PROBE(name, args...) expands to <sys/sdt.h>'s STAP_PROBEV: one `nop`
 * instruction at the call site plus a note in .note.stapsdt that names the
 * probe and says where each argument lives (a register, a stack slot or a
 * constant). Nothing runs unless a tracer replaces the nop with a
 * breakpoint (uprobe). The compiler must keep the arguments live at that
 * point, which costs nothing when they are already in registers: keep them
 * to fields the surrounding code has loaded anyway. No semaphores
 * (_SDT_HAS_SEMAPHORES is not defined): a semaphore would turn each probe
 * into a load and a branch, and every argument here is cheap.
 *
 * The nop is async-signal-safe, so a probe may sit in the SIGURG handler
 * (preempt_deferred). Without <sys/sdt.h> at build time (CMake's URG_USDT
 * decides, defining URG_HAVE_SDT), every probe compiles to nothing and
 * its arguments are not evaluated.
 *
 * The probes (arguments in order; ids are task ids, p and m ids as in
 * schedtrace; a call site is a one-line URG__PROBE so that other hooks at
 * the same points merge easily):
 *   spawn            (task, fn)                      urg__newproc, task.c
 *   run              (task, p, m)                    a slice starts, proc.c
 *   park             (task, reason)                  urg__park_g, proc.c;
 *                                                    reason: enum urg__waitreason
 *   ready            (task)                          urg__ready, proc.c
 *   preempt_async    (task)                          the trampoline's C half
 *   preempt_coop     (task)                          urg__gopreempt, proc.c
 *   preempt_deferred (task, pc, reason)              SIGURG handler (preempt.c);
 *                                                    reason: enum urg__defer_reason
 *   syscall_handoff  (p)                             sysmon retakes a P (sysmon.c)
 *   stw_start        (procs)                         urg__stop_the_world, stw.c
 *   stw_end          (procs)                         urg__start_the_world, stw.c
 */
#ifndef URG__PROBES_H
#define URG__PROBES_H

#ifdef URG_HAVE_SDT
#ifndef SDT_USE_VARIADIC
#define SDT_USE_VARIADIC 1
#endif
#include <sys/sdt.h>
#define URG__PROBE(name, ...) STAP_PROBEV(urgent, name, ##__VA_ARGS__)
#else
#define URG__PROBE(name, ...) ((void)0)
#endif

#endif /* URG__PROBES_H */
