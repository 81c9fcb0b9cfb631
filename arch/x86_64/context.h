/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * arch/x86_64/context.h — the layout of a suspended context on x86-64,
 * shared by switch.S, preempt.S and C (task start, dumps, debuggers).
 *
 * A suspended task keeps nothing in its descriptor but its stack pointer:
 * urg__ctx_switch pushes the callee-saved registers and the FP control
 * words on the task's own stack, so the saved SP points at this frame:
 *
 *   offset  size  content
 *   ------  ----  ------------------------------------------------------
 *      0      4   MXCSR (SSE control/status)
 *      4      2   x87 control word
 *      6      2   (padding)
 *      8      8   r15
 *     16      8   r14
 *     24      8   r13
 *     32      8   r12
 *     40      8   rbx
 *     48      8   rbp
 *     56      8   return address (where the context resumes)
 *     64          the caller's stack (16-byte aligned for a fresh task)
 *
 * Not saved: caller-saved registers (rax, rcx, rdx, rsi, rdi, r8-r11), the
 * flags, vector registers and the x87 stack — the SysV ABI lets a call
 * clobber them, and every switch is a call. The async preemption
 * trampoline (preempt.S), which interrupts code between calls, saves them.
 *
 * The offsets are used by assembly, so they are plain #defines here and
 * pinned against the C struct by static asserts below.
 */
#ifndef URG__ARCH_X86_64_CONTEXT_H
#define URG__ARCH_X86_64_CONTEXT_H

#define URG__CTX_OFF_MXCSR  0
#define URG__CTX_OFF_FPUCW  4
#define URG__CTX_OFF_R15    8
#define URG__CTX_OFF_R14    16
#define URG__CTX_OFF_R13    24
#define URG__CTX_OFF_R12    32
#define URG__CTX_OFF_RBX    40
#define URG__CTX_OFF_RBP    48
#define URG__CTX_OFF_RIP    56
#define URG__CTX_FRAME_SIZE 64

/* The trampoline frame of an async preemption (preempt.S): the handler
 * sets rsp = interrupted_rsp - URG__PREEMPT_SP_DROP and stores the
 * interrupted rip at the new rsp; the trampoline returns with
 * `ret $URG__PREEMPT_REDZONE`, which restores the exact interrupted rsp and
 * never touches the 128-byte red zone of the interrupted code. */
#define URG__PREEMPT_REDZONE 128
#define URG__PREEMPT_SP_DROP 136

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

struct urg__ctx_frame {
    uint32_t mxcsr;
    uint16_t fpucw;
    uint16_t pad;
    uint64_t r15, r14, r13, r12, rbx, rbp;
    uint64_t rip;
};

_Static_assert(offsetof(struct urg__ctx_frame, mxcsr) == URG__CTX_OFF_MXCSR, "ctx mxcsr");
_Static_assert(offsetof(struct urg__ctx_frame, fpucw) == URG__CTX_OFF_FPUCW, "ctx fpucw");
_Static_assert(offsetof(struct urg__ctx_frame, r15) == URG__CTX_OFF_R15, "ctx r15");
_Static_assert(offsetof(struct urg__ctx_frame, r14) == URG__CTX_OFF_R14, "ctx r14");
_Static_assert(offsetof(struct urg__ctx_frame, r13) == URG__CTX_OFF_R13, "ctx r13");
_Static_assert(offsetof(struct urg__ctx_frame, r12) == URG__CTX_OFF_R12, "ctx r12");
_Static_assert(offsetof(struct urg__ctx_frame, rbx) == URG__CTX_OFF_RBX, "ctx rbx");
_Static_assert(offsetof(struct urg__ctx_frame, rbp) == URG__CTX_OFF_RBP, "ctx rbp");
_Static_assert(offsetof(struct urg__ctx_frame, rip) == URG__CTX_OFF_RIP, "ctx rip");
_Static_assert(sizeof(struct urg__ctx_frame) == URG__CTX_FRAME_SIZE, "ctx size");

/* Default FP control values of the SysV ABI, given to fresh tasks. */
#define URG__MXCSR_DEFAULT 0x1f80u
#define URG__FPUCW_DEFAULT 0x037fu

#endif /* !__ASSEMBLER__ */
#endif /* URG__ARCH_X86_64_CONTEXT_H */
