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
 *   TSan: one fiber per task (created lazily on first run); switch with
 *         __tsan_switch_to_fiber; destroy from another fiber.
 * valgrind learns each task stack in stack.c (VALGRIND_STACK_REGISTER).
 * All of these compile to nothing in a plain build.
 */
#ifndef URG_SANITIZER_H
#define URG_SANITIZER_H

#include "sched.h"

#ifdef URG_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef URG_TSAN
#include <sanitizer/tsan_interface.h>
#endif

static inline void urg__san_start_switch(g_t *from, g_t *to, bool from_dead)
{
#ifdef URG_ASAN
    __sanitizer_start_switch_fiber(from_dead ? NULL : &from->st->asan_fake_stack, to->st->lo,
                                   (size_t)(to->st->hi - to->st->lo));
#else
    (void)from;
    (void)from_dead;
#endif
#ifdef URG_TSAN
    if (!to->st->tsan_fiber)
        to->st->tsan_fiber = __tsan_create_fiber(0);
    __tsan_switch_to_fiber(to->st->tsan_fiber, 0);
#else
    (void)to;
#endif
}

static inline void urg__san_finish_switch(g_t *self)
{
#ifdef URG_ASAN
    __sanitizer_finish_switch_fiber(self->st->asan_fake_stack, NULL, NULL);
#else
    (void)self;
#endif
}

/* A task is gone for good; its fiber may be destroyed (from g0). */
static inline void urg__san_fiber_destroy(g_t *gp)
{
#ifdef URG_TSAN
    if (gp->st->tsan_fiber) {
        __tsan_destroy_fiber(gp->st->tsan_fiber);
        gp->st->tsan_fiber = NULL;
    }
#endif
#ifdef URG_ASAN
    gp->st->asan_fake_stack = NULL;
#endif
    (void)gp;
}

/* g0 of a new M: its stack is the thread's own. */
static inline void urg__san_g0_init(g_t *g0)
{
#ifdef URG_TSAN
    g0->st->tsan_fiber = __tsan_get_current_fiber();
#endif
    (void)g0;
}

#endif /* URG_SANITIZER_H */
