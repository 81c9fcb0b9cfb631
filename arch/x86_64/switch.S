/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * arch/x86_64/switch.S — the context switch between tasks and g0 stacks,
 * and the first frame of every task.
 *
 * Model: a context is suspended by calling urg__ctx_switch, which pushes
 * the callee-saved registers and the FP control words (the frame in
 * context.h), stores the stack pointer through its first argument, loads
 * the other context's stack pointer and pops that context's frame. The
 * `ret` then returns into whatever call suspended the other context, or,
 * for a fresh task, into urg__task_start.
 *
 * The FP control words (MXCSR, x87 CW) are callee-saved in the SysV ABI:
 * a task that changes its rounding mode must not change its neighbours'.
 * Loading them (ldmxcsr, fldcw) is slow, so each is loaded only when the
 * incoming value differs from the current one — in practice never.
 *
 * CFI: after the pushes the CFA is rsp+64 on either stack, because both
 * contexts hold the same frame shape; the unwinder (gdb, libunwind, our
 * dumps) therefore walks through a suspended switch on any task's stack.
 */
#include "context.h"

        /* With the preemption path's C code (internal.h, URG__PREEMPT_PATH). */
        .section urg_text_hot,"ax",@progbits

/*
 * void urg__ctx_switch(void **save_sp, void *load_sp);
 *   rdi: where to store the current context's stack pointer
 *   rsi: the stack pointer of the context to resume (points at a frame)
 * Saves: rbp rbx r12-r15, MXCSR, x87 CW. Clobbers: rax, rcx (caller-saved).
 */
        .globl  urg__ctx_switch
        .hidden urg__ctx_switch
        .type   urg__ctx_switch, @function
        .p2align 4
urg__ctx_switch:
        .cfi_startproc
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rbp, 0
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rbx, 0
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset r12, 0
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset r13, 0
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset r14, 0
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset r15, 0
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr URG__CTX_OFF_MXCSR(%rsp)
        fnstcw  URG__CTX_OFF_FPUCW(%rsp)

        movq    %rsp, (%rdi)
        movq    %rsi, %rsp

        /* Reload the FP control words only if they differ. */
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movl    8+URG__CTX_OFF_MXCSR(%rsp), %eax
        cmpl    (%rsp), %eax
        jne     1f
2:      movzwl  8+URG__CTX_OFF_FPUCW(%rsp), %eax
        cmpw    4(%rsp), %ax
        jne     3f
4:      addq    $16, %rsp
        .cfi_adjust_cfa_offset -16
        popq    %r15
        .cfi_adjust_cfa_offset -8
        .cfi_restore r15
        popq    %r14
        .cfi_adjust_cfa_offset -8
        .cfi_restore r14
        popq    %r13
        .cfi_adjust_cfa_offset -8
        .cfi_restore r13
        popq    %r12
        .cfi_adjust_cfa_offset -8
        .cfi_restore r12
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        .cfi_restore rbx
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        .cfi_restore rbp
        ret
        /* Out-of-line reloads; the CFA here is rsp+72 (the scratch slot). */
        .cfi_adjust_cfa_offset 64
1:      ldmxcsr 8+URG__CTX_OFF_MXCSR(%rsp)
        jmp     2b
3:      fldcw   8+URG__CTX_OFF_FPUCW(%rsp)
        jmp     4b
        .cfi_endproc
        .size   urg__ctx_switch, .-urg__ctx_switch

        .text

/*
 * urg__task_start: where a fresh task's first switch returns to.
 * The initial frame (built by urg__arch_init_frame) holds the task
 * descriptor in r12, its function in r13, its argument in r14, and a zero
 * rbp; rsp is 16-byte aligned here. It finishes the switch in C, calls
 * fn(arg) itself, and then exits the task; r12-r14 are callee-saved, so
 * they survive both calls.
 *
 * Calling fn from here gives every task's outermost frame the same,
 * known return address, urg__task_fn_return: the SIGURG handler's
 * safe-point walk ends when it reaches it, without looking anything up.
 *
 * `.cfi_undefined rip` marks this as the outermost frame, so unwinders stop
 * here instead of walking into whatever lies above the stack.
 */
        .globl  urg__task_start
        .hidden urg__task_start
        .globl  urg__task_fn_return
        .hidden urg__task_fn_return
        .type   urg__task_start, @function
        .p2align 4
urg__task_start:
        .cfi_startproc
        .cfi_undefined rip
        movq    %r12, %rdi
        call    urg__task_begin
        movq    %r14, %rdi
        call    *%r13
urg__task_fn_return:
        movq    %r12, %rdi
        call    urg__goexit
        ud2
        .cfi_endproc
        .size   urg__task_start, .-urg__task_start

        .section .note.GNU-stack,"",%progbits
