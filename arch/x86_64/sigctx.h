/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * arch/x86_64/sigctx.h — x86-64's side of arch/sigctx.h: the register
 * file in DWARF order, reading it from a ucontext_t, and the rewrite that
 * makes an interrupted task call the preemption trampoline.
 */
#ifndef URG__ARCH_X86_64_SIGCTX_H
#define URG__ARCH_X86_64_SIGCTX_H

#include "context.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ucontext.h>

/* DWARF register numbers on x86-64, as libunwind numbers them. */
enum {
    URG_R_RAX,
    URG_R_RDX,
    URG_R_RCX,
    URG_R_RBX,
    URG_R_RSI,
    URG_R_RDI,
    URG_R_RBP,
    URG_R_RSP,
    URG_R_R8,
    URG_R_R9,
    URG_R_R10,
    URG_R_R11,
    URG_R_R12,
    URG_R_R13,
    URG_R_R14,
    URG_R_R15,
    URG_R_RIP,
    URG_NREGS
};
#define URG__REG_PC URG_R_RIP
#define URG__REG_SP URG_R_RSP

/* The thread pointer (%fs:0 points at itself), and the bytes from it that
 * hold the thread control block's header (glibc's tcbhead_t, whose first
 * word pthread_self() returns). x86-64 uses TLS variant II: the modules'
 * static TLS blocks lie just below the thread pointer, the control block
 * above it. Signal-safe. */
#define URG__ARCH_TCB_HEAD 0x300
static inline uintptr_t urg__arch_thread_pointer(void)
{
    uintptr_t tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    return tp;
}

/* libunwind exports its DWARF table search (for its ptrace and core-file
 * back ends) under a per-architecture name, and declares it nowhere. */
#define urg__unw_dwarf_search_unwind_table _Ux86_64_dwarf_search_unwind_table

/* Extended state the trampoline saves (sigctx.c probes it before main):
 * with XSAVE, the components in mask hi:lo, in urg__xsave_size bytes;
 * without, fxsave's 512. Read by preempt.S. */
extern uint64_t urg__xsave_size;
extern uint8_t urg__have_xsave;
extern uint32_t urg__xsave_mask_lo, urg__xsave_mask_hi;

/* Signal-safe. */
static inline void urg__sigctx_regs(const void *uctx, uint64_t regs[URG_NREGS])
{
    static const unsigned char from[URG_NREGS] = {
        REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI, REG_RBP, REG_RSP, REG_R8,
        REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15, REG_RIP,
    };
    const greg_t *g = ((const ucontext_t *)uctx)->uc_mcontext.gregs;
    for (int i = 0; i < URG_NREGS; i++)
        regs[i] = (uint64_t)g[from[i]];
}

static inline uintptr_t urg__sigctx_pc(const void *uctx)
{
    return (uintptr_t)((const ucontext_t *)uctx)->uc_mcontext.gregs[REG_RIP];
}

static inline uintptr_t urg__sigctx_sp(const void *uctx)
{
    return (uintptr_t)((const ucontext_t *)uctx)->uc_mcontext.gregs[REG_RSP];
}

/* The trampoline's frame below the interrupted rsp: the drop past the red
 * zone, its return slot and alignment, 14 saved general registers, the
 * extended state and its alignment. */
static inline size_t urg__sigctx_call_room(void)
{
    return URG__PREEMPT_SP_DROP + 16 + 14 * 8 + urg__xsave_size + 64;
}

/* Store the return address below the red zone. Not instrumented: under
 * ASan that slot may still be marked as belonging to a frame that
 * returned long ago. */
__attribute__((no_sanitize_address)) static inline void urg__sigctx_store_word(uintptr_t sp,
                                                                               uint64_t v)
{
    *(volatile uint64_t *)sp = v;
}

/* urg__sigctx_push_call: on return from the handler, the thread calls
 * target as if from resume, past the red zone; target ends with
 * `ret $URG__PREEMPT_REDZONE`, which restores the exact interrupted rsp.
 * The caller checked urg__sigctx_call_room. Signal-safe. */
static inline void urg__sigctx_push_call(void *uctx, void (*target)(void), uintptr_t resume)
{
    greg_t *g = ((ucontext_t *)uctx)->uc_mcontext.gregs;
    uintptr_t sp = (uintptr_t)g[REG_RSP] - URG__PREEMPT_SP_DROP;
    urg__sigctx_store_word(sp, (uint64_t)resume);
    g[REG_RSP] = (greg_t)sp;
    g[REG_RIP] = (greg_t)(uintptr_t)target;
}

/* The registers urg__ctx_switch saved in the suspended frame f (the
 * others are not known and read as 0). Dumps read other tasks' frames
 * without synchronizing with the threads that last ran them, on purpose:
 * not instrumented by ThreadSanitizer. */
__attribute__((no_sanitize("thread"))) static inline void
urg__ctx_frame_regs(const struct urg__ctx_frame *f, uint64_t regs[URG_NREGS])
{
    for (int i = 0; i < URG_NREGS; i++)
        regs[i] = 0;
    regs[URG_R_RBX] = f->rbx;
    regs[URG_R_RBP] = f->rbp;
    regs[URG_R_R12] = f->r12;
    regs[URG_R_R13] = f->r13;
    regs[URG_R_R14] = f->r14;
    regs[URG_R_R15] = f->r15;
    regs[URG_R_RSP] = (uint64_t)(uintptr_t)f + URG__CTX_FRAME_SIZE;
    regs[URG_R_RIP] = f->rip;
}

/* A thread stopped in a system call has its PC just past the 2-byte
 * `syscall` (0f 05), or at it when the kernel restarts the call. code
 * holds the 4 bytes from PC - URG__SYSCALL_PROBE_BEFORE. */
#define URG__SYSCALL_PROBE_BEFORE 2
#define URG__SYSCALL_PROBE_BYTES  4
static inline bool urg__syscall_insn_at(const volatile uint8_t *code)
{
    return (code[2] == 0x0f && code[3] == 0x05) || (code[0] == 0x0f && code[1] == 0x05);
}

#endif /* URG__ARCH_X86_64_SIGCTX_H */
