/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * arch/arch.h — what every architecture provides, and the dispatcher.
 *
 * Each arch/<cpu>/ folder supplies:
 *   context.h   the suspended-context frame layout (offsets shared with asm)
 *   switch.S    urg__ctx_switch and urg__task_start
 *   preempt.S   urg__async_preempt, the injected-call trampoline (async build)
 *   sigctx.h    reading and rewriting a signal's ucontext (pc, sp, regs)
 * and the inline helpers declared below.
 */
#ifndef URG__ARCH_H
#define URG__ARCH_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#include "x86_64/context.h"
#else
#error "urgent: unsupported architecture (x86_64 only for now; aarch64 is planned)"
#endif

/* void urg__ctx_switch(void **save_sp, void *load_sp): suspend the current
 * context (saving its stack pointer in *save_sp) and resume the one whose
 * stack pointer is load_sp. Context: task or g0; never a signal handler. */
void urg__ctx_switch(void **save_sp, void *load_sp);

/* First instruction of every task (asm): urg__task_begin(g), fn(arg),
 * urg__goexit(g). urg__task_fn_return is the return address of fn. */
void urg__task_start(void);
extern const char urg__task_fn_return[];

/* Builds the initial frame of a fresh task below `hi` so that the first
 * switch to it enters urg__task_start, which runs fn(arg) as task g, the
 * three values carried in r12, r13, r14. Returns the stack
 * pointer to store in the task. */
static inline void *urg__arch_init_frame(void *hi, void *g, void *fn, void *arg)
{
    uintptr_t top = (uintptr_t)hi & ~(uintptr_t)15;
    /* rsp after the switch's `ret` is top - 16 (16-byte aligned); below it
     * the frame. The 16 bytes above hold nothing: they keep unwinders that
     * read one word past the last frame inside the stack. */
    struct urg__ctx_frame *f = (struct urg__ctx_frame *)(top - 16 - sizeof(*f));
    f->mxcsr = URG__MXCSR_DEFAULT;
    f->fpucw = URG__FPUCW_DEFAULT;
    f->pad = 0;
    f->r15 = 0;
    f->r14 = (uint64_t)(uintptr_t)arg;
    f->r13 = (uint64_t)(uintptr_t)fn;
    f->r12 = (uint64_t)(uintptr_t)g;
    f->rbx = 0;
    f->rbp = 0;
    f->rip = (uint64_t)(uintptr_t)urg__task_start;
    return f;
}

#endif /* URG__ARCH_H */
