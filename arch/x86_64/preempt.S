/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * arch/x86_64/preempt.S — urg__async_preempt, the call the SIGURG handler
 * injects into a task interrupted at a safe point (Go's asyncPreempt).
 *
 * The handler rewrote the interrupted context so that, when the signal
 * returns, the task "calls" this function from the interrupted
 * instruction:
 *
 *     rsp = interrupted_rsp - URG__PREEMPT_SP_DROP (136)
 *     [rsp] = interrupted_rip
 *     rip = urg__async_preempt
 *
 * The 128 bytes between [rsp+8] and interrupted_rsp are the interrupted
 * function's red zone (SysV ABI): leaf functions keep live data below
 * their stack pointer, and nothing here touches it. `ret $128` at the end
 * pops the return address and skips the red zone, landing on exactly
 * interrupted_rsp — no scratch register or thread-local is needed for the
 * return, so every register can be restored first.
 *
 * What is saved, and why more than Go (which saves 14 GPRs, flags and
 * X0-X15 only, because Go code never keeps wider vector state live):
 *   - rflags (pushfq), every general register (rbp, then the other 14);
 *   - the whole extended state with xsave64: x87 and its control word,
 *     MXCSR, XMM, the upper halves of YMM, the AVX-512 ZMM/opmask state,
 *     and whatever else XCR0 enables but AMX tiles — C compilers
 *     vectorise freely, so any of it may be live. The component mask and
 *     the area's size come from XCR0 and CPUID leaf 0xD at startup
 *     (urg__xsave_mask_lo/hi, urg__xsave_size); CPUs without XSAVE use
 *     fxsave64;
 *   - errno, saved and restored in C by urg__async_preempt2.
 * The direction flag is cleared before calling C (the ABI requires it)
 * and restored with the rest of rflags.
 *
 * Frame, from the CFA (= interrupted rsp) down:
 *     CFA-128..CFA-1   the interrupted red zone, untouched
 *     CFA-136          return address (interrupted rip)
 *     CFA-144          rflags
 *     CFA-152          rbp           <- rbp points here
 *     CFA-160..-264    rax rbx rcx rdx rsi rdi r8 r9 r10 r11 r12 r13 r14 r15
 *     below            the xsave area, 64-byte aligned
 * The CFI describes it, and marks the frame as a signal frame so that
 * unwinders look up the interrupted PC itself, not PC-1: a dump of a
 * preempted task shows exactly where it was stopped.
 */
#include "context.h"

        /* With the preemption path's C code (internal.h, URG__PREEMPT_PATH). */
        .section urg_text_hot,"ax",@progbits

/* void urg__async_preempt(void) — never called directly. */
        .globl  urg__async_preempt
        .hidden urg__async_preempt
        .type   urg__async_preempt, @function
        .p2align 4
urg__async_preempt:
        .cfi_startproc
        .cfi_signal_frame
        .cfi_def_cfa rsp, URG__PREEMPT_SP_DROP
        .cfi_offset rip, -URG__PREEMPT_SP_DROP
        pushfq
        .cfi_adjust_cfa_offset 8
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rbp, 0
        movq    %rsp, %rbp
        .cfi_def_cfa_register rbp
        pushq   %rax
        .cfi_rel_offset rax, -8
        pushq   %rbx
        .cfi_rel_offset rbx, -16
        pushq   %rcx
        .cfi_rel_offset rcx, -24
        pushq   %rdx
        .cfi_rel_offset rdx, -32
        pushq   %rsi
        .cfi_rel_offset rsi, -40
        pushq   %rdi
        .cfi_rel_offset rdi, -48
        pushq   %r8
        .cfi_rel_offset r8, -56
        pushq   %r9
        .cfi_rel_offset r9, -64
        pushq   %r10
        .cfi_rel_offset r10, -72
        pushq   %r11
        .cfi_rel_offset r11, -80
        pushq   %r12
        .cfi_rel_offset r12, -88
        pushq   %r13
        .cfi_rel_offset r13, -96
        pushq   %r14
        .cfi_rel_offset r14, -104
        pushq   %r15
        .cfi_rel_offset r15, -112

        /* Extended state: size from CPUID, 64-byte aligned, header zeroed
         * (XRSTOR faults on a non-zero reserved header). */
        subq    urg__xsave_size(%rip), %rsp
        andq    $-64, %rsp
        cmpb    $0, urg__have_xsave(%rip)
        je      1f
        xorl    %eax, %eax
        movq    %rax, 512(%rsp)
        movq    %rax, 520(%rsp)
        movq    %rax, 528(%rsp)
        movq    %rax, 536(%rsp)
        movq    %rax, 544(%rsp)
        movq    %rax, 552(%rsp)
        movq    %rax, 560(%rsp)
        movq    %rax, 568(%rsp)
        movl    urg__xsave_mask_lo(%rip), %eax
        movl    urg__xsave_mask_hi(%rip), %edx
        xsave64 (%rsp)
        jmp     2f
1:      fxsave64 (%rsp)
2:
        cld
        call    urg__async_preempt2

        cmpb    $0, urg__have_xsave(%rip)
        je      3f
        movl    urg__xsave_mask_lo(%rip), %eax
        movl    urg__xsave_mask_hi(%rip), %edx
        xrstor64 (%rsp)
        jmp     4f
3:      fxrstor64 (%rsp)
4:
        leaq    -112(%rbp), %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %r11
        popq    %r10
        popq    %r9
        popq    %r8
        popq    %rdi
        popq    %rsi
        popq    %rdx
        popq    %rcx
        popq    %rbx
        popq    %rax
        popq    %rbp
        .cfi_def_cfa rsp, URG__PREEMPT_SP_DROP + 8
        .cfi_restore rbp
        popfq
        .cfi_def_cfa_offset URG__PREEMPT_SP_DROP
        ret     $URG__PREEMPT_REDZONE
        .cfi_endproc
        .size   urg__async_preempt, .-urg__async_preempt

        .text

/*
 * void urg__capture_regs(uint64_t regs[17]) — the caller's callee-saved
 * registers, stack pointer and return address, in DWARF order (rax=0,
 * rdx, rcx, rbx, rsi, rdi, rbp, rsp, r8..r15, rip=16), for a backtrace of
 * the running task. Other slots are left as they were.
 */
        .globl  urg__capture_regs
        .hidden urg__capture_regs
        .type   urg__capture_regs, @function
        .p2align 4
urg__capture_regs:
        .cfi_startproc
        movq    %rbx, 3*8(%rdi)
        movq    %rbp, 6*8(%rdi)
        leaq    8(%rsp), %rax
        movq    %rax, 7*8(%rdi)
        movq    %r12, 12*8(%rdi)
        movq    %r13, 13*8(%rdi)
        movq    %r14, 14*8(%rdi)
        movq    %r15, 15*8(%rdi)
        movq    (%rsp), %rax
        movq    %rax, 16*8(%rdi)
        ret
        .cfi_endproc
        .size   urg__capture_regs, .-urg__capture_regs

        .section .note.GNU-stack,"",%progbits
