/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * sanitizer.h — telling ASan, TSan and valgrind that we switch stacks.
 *
 * Without this, ASan reports false stack-buffer-overflows after a switch
 * (its fake-stack and shadow bookkeeping assume one stack per thread) and
 * TSan mixes up the happens-before state of unrelated tasks. The protocol:
 *   ASan: __sanitizer_start_switch_fiber(save, bottom, size) just before
 *         the switch, naming the destination stack; a context that will
 *         never run again passes save = NULL so its fake stack is freed.
 *         __sanitizer_finish_switch_fiber(save) first thing after landing.
 *   TSan: one fiber per stack, created when the stack first runs a task
 *         and kept for the life of the run (stack teardown destroys it);
 *         switch with __tsan_switch_to_fiber. A fiber per task cost a
 *         thread's worth of TSan state created and destroyed per spawn:
 *         about 6 ms of mostly kernel time, so a 10,000-task tree took
 *         minutes. A task that exits leaves two frames (urg__goexit and
 *         urg__switch: switch_direct, run_next and mcall are always
 *         inlined so that it is two on every path) on its fiber's shadow
 *         stack; the next task on that stack pops them first. Stacks
 *         that sysmon trims in the pool lose their fiber (stack.c).
 * valgrind learns each task stack in stack.c (VALGRIND_STACK_REGISTER).
 * All of these compile to nothing in a plain build.
 */
#ifndef URG__SANITIZER_H
#define URG__SANITIZER_H

#include "sched.h"

#ifdef URG__ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef URG__TSAN
#include <sanitizer/tsan_interface.h>
/* Pop one frame off the current fiber's shadow call stack. GCC knows
 * __tsan_func_exit as a builtin taking the (ignored) return address;
 * clang needs it declared. */
#if defined(__clang__)
void __tsan_func_exit(void);
#define urg__tsan_pop_frame() __tsan_func_exit()
#else
#define urg__tsan_pop_frame() __tsan_func_exit((void *)0)
#endif
#endif

static inline void urg__san_start_switch(g_t *from, g_t *to, bool from_dead)
{
#ifdef URG__ASAN
    __sanitizer_start_switch_fiber(from_dead ? NULL : &from->st->asan_fake_stack, to->st->lo,
                                   (size_t)(to->st->hi - to->st->lo));
#else
    (void)from;
    (void)from_dead;
#endif
#ifdef URG__TSAN
    if (from_dead)
        from->st->tsan_stale = 1;
    if (!to->st->tsan_fiber)
        to->st->tsan_fiber = __tsan_create_fiber(0);
    __tsan_switch_to_fiber(to->st->tsan_fiber, 0);
#else
    (void)to;
#endif
}

/* First thing a task does: drop what an exited task left on its stack's
 * fiber (see above). */
static inline __attribute__((always_inline)) void urg__san_task_begin(g_t *self)
{
#ifdef URG__TSAN
    if (self->st->tsan_stale) {
        self->st->tsan_stale = 0;
        urg__tsan_pop_frame();
        urg__tsan_pop_frame();
    }
#else
    (void)self;
#endif
}

static inline void urg__san_finish_switch(g_t *self)
{
#ifdef URG__ASAN
    __sanitizer_finish_switch_fiber(self->st->asan_fake_stack, NULL, NULL);
#else
    (void)self;
#endif
}

/* A task is gone for good (its stack goes back to the pool). */
static inline void urg__san_task_gone(g_t *gp)
{
#ifdef URG__ASAN
    gp->st->asan_fake_stack = NULL;
#endif
    (void)gp;
}

/* The stack's fiber goes: the run is over (urg_run's thread), or sysmon
 * moved the stack from the pool's dirty list to its clean one. A TSan
 * fiber keeps its event trace resident (megabytes once busy), so a stack
 * whose pages are given back gives its fiber back too; the per-P caches,
 * where spawn-and-exit churn recycles stacks, keep theirs. Context: no
 * task runs on st. */
static inline void urg__san_stack_gone(struct urg__stack *st)
{
#ifdef URG__TSAN
    if (st->tsan_fiber) {
        __tsan_destroy_fiber(st->tsan_fiber);
        st->tsan_fiber = NULL;
        st->tsan_stale = 0;
    }
#endif
    (void)st;
}

/* g0 of a new M: its stack is the thread's own. */
static inline void urg__san_g0_init(g_t *g0)
{
#ifdef URG__TSAN
    g0->st->tsan_fiber = __tsan_get_current_fiber();
#endif
    (void)g0;
}

#endif /* URG__SANITIZER_H */
