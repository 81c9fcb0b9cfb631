/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * signals/handler.h — inside the signal layer: what its files share.
 * Not for the runtime (it uses signals.h).
 */
#ifndef URG__SIGNALS_HANDLER_H
#define URG__SIGNALS_HANDLER_H

#include "signals.h"
#include "unwind/unwind.h"

#include <signal.h>

/* signals.c: forward a signal to the handler the program had before us,
 * respecting SIG_DFL and SIG_IGN. Signal-safe. */
URG__HIDDEN void urg__sig_forward(int sig, siginfo_t *info, void *uctx);

/* preempt.c */
URG__HIDDEN void urg__sigurg_handler(int sig, siginfo_t *info, void *uctx);

/* walkmemo.c: the verdicts of earlier safe-point walks, per thread.
 * Signal-safe; each thread's handler uses only its own memo. */
URG__HIDDEN extern const size_t urg__walk_memo_size;
/* Would a walk from here (pc, the task's stack [lo, hi), module table
 * sequence seq, unsafe-range count nunsafe, registers regs) repeat a
 * remembered safe one? *slot: the slot that remembers pc, or -1. */
URG__HIDDEN bool urg__walk_memo_hit(void *memo, uintptr_t pc, uintptr_t lo, uintptr_t hi,
                                    uint32_t seq, uint32_t nunsafe, const uint64_t regs[URG_NREGS],
                                    int *slot);
/* Remember a safe walk whose inputs were `in` (in the slot from
 * urg__walk_memo_hit, or a new one). */
URG__HIDDEN void urg__walk_memo_store(void *memo, int slot, const struct urg__walk_inputs *in,
                                      const uint64_t regs[URG_NREGS], uintptr_t pc, uintptr_t lo,
                                      uintptr_t hi, uint32_t seq, uint32_t nunsafe);

/* deferprof.c: count a deferral of task t at the interrupted context uc
 * (reason as enum urg__defer_reason; refused: the refused frame's PC when
 * it is a caller, else 0). Context: the SIGURG handler on st's thread.
 * Signal-safe, lock-free. */
URG__HIDDEN void urg__deferprof_record(struct urg__sigthread *st, const struct urg__preempt_task *t,
                                       const void *uc, uint32_t reason, uintptr_t refused);

#endif /* URG__SIGNALS_HANDLER_H */
