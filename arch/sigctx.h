/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * arch/sigctx.h — a signal's interrupted context, per architecture.
 *
 * The signal layer (signals/), the unwinder (unwind/) and the runtime's
 * dumps see registers only through this header, as Go's runtime sees them
 * through sigctxt: everything that names a machine register lives in
 * arch/<cpu>/sigctx.h. Each architecture provides:
 *
 *   URG_NREGS, URG__REG_PC, URG__REG_SP
 *                the register file as the unwinder numbers it (DWARF
 *                order), its size, and where the PC and SP sit in it
 *   urg__sigctx_regs(uc, regs)       all of them, from a ucontext_t
 *   urg__sigctx_pc(uc), urg__sigctx_sp(uc)
 *   urg__sigctx_push_call(uc, target, resume)
 *                rewrite the context so that, once the handler returns,
 *                it calls target, which returns to resume with the
 *                interrupted stack and registers exactly as they were
 *   urg__sigctx_call_room()
 *                bytes below the interrupted SP that call needs (the
 *                trampoline's frame, its register and extended-state
 *                save areas), sized from the probed extended state
 *   urg__ctx_frame_regs(f, regs)     registers of a suspended context
 *   urg__capture_regs(regs)          registers of the caller's caller
 *   urg__syscall_insn_at(code)       is a stopped thread in a system
 *                call, from the code bytes around its PC
 *   urg__async_preempt               the trampoline (arch/<cpu>/preempt.S)
 * and expects the runtime to define urg__async_preempt2 (the C half the
 * trampoline calls, in task context, with every register saved).
 *
 * Everything here is signal-safe: loads and stores of the context, and
 * the probed values (written once, by a constructor, before main).
 */
#ifndef URG__ARCH_SIGCTX_H
#define URG__ARCH_SIGCTX_H

#if defined(__x86_64__)
#include "x86_64/sigctx.h"
#else
#error "urgent: unsupported architecture (x86_64 only for now; aarch64 is planned)"
#endif

/* The trampoline the SIGURG handler makes the interrupted task call
 * (preempt.S): it saves every register and the extended state, calls
 * urg__async_preempt2, restores, and returns to the interrupted PC. */
void urg__async_preempt(void);
/* Defined by the runtime (runtime/preempt.c). Context: the preempted
 * task, in ordinary (non-handler) context. */
void urg__async_preempt2(void);
/* Registers of the calling frame's caller (arch asm). */
void urg__capture_regs(uint64_t regs[URG_NREGS]);

#endif /* URG__ARCH_SIGCTX_H */
