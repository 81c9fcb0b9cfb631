/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * signals/walkmemo.c — the SIGURG handler's memory of earlier safe-point
 * walks, one per thread (struct urg__sigthread's walk_memo).
 */
#include "handler.h"

/* The walk memo. A hog is interrupted at the same few instructions of
 * its loop, quantum after quantum, with the same frames above it, and a
 * walk whose inputs (urg__walk_inputs: registers and stack words it read)
 * are all unchanged would take the same steps to the same verdict. So
 * each M remembers its last safe walks at up to MEMO_SLOTS PCs, and a
 * later interrupt at one of those PCs only compares those few words
 * instead of walking again. That matters more than its instruction count
 * suggests: after a 10 ms quantum the unwinder's code and tables have usually left
 * the cache (or the vCPU has moved), and a cold walk costs microseconds.
 *
 * Many tasks run the same loop, each on its own stack, so "unchanged" is
 * taken relative to the stack: an input that pointed into the remembered
 * walk's stack must point at the same offset of the current one (the
 * stack pointer always does), and every other input must be equal. Stack
 * slots have one size per run, so the current walk would be the
 * remembered one moved by the distance between the stacks: it computes
 * the same offsets, reads the same code addresses, reaches the same
 * verdict. The entry also pins what the verdict depended on beyond its
 * inputs: the module table's sequence number and the count of registered
 * unsafe ranges (which also fix how the PC itself classifies, so a hit
 * skips that lookup too). Only safe verdicts are kept.
 *
 * Any MEMO_SLOTS PCs can be remembered at once; a new one replaces the
 * oldest. (A slot chosen by PC modulo the slot count thrashed: a loop
 * whose instrumented body (UBSan) is interrupted at two PCs congruent
 * modulo 8 evicted itself at every interrupt and never hit.)
 *
 * Layout: a hit is checked with cold caches, so the keys share one cache
 * line and an entry keeps what a typical check reads (the two or three
 * registers a walk asks for, the first stack word) in its first two. */
#define MEMO_SLOTS 8
#define MEMO_REGS  4 /* walks that read more registers are not kept */
struct walk_memo_entry {
    uintptr_t pc; /* 0: empty */
    uintptr_t lo, hi;
    uint32_t seq, nunsafe;
    uint32_t regs_read, nmem; /* as in urg__walk_inputs */
    uint64_t reg[MEMO_REGS];  /* the registers read, in register order */
    struct {
        uintptr_t addr;
        uint64_t val;
    } mem[URG__WALK_LOG];
} URG__ALIGNED_CL;
struct walk_memo {
    uintptr_t pc[MEMO_SLOTS]; /* the key of each entry; 0: empty */
    uint32_t next;            /* the slot the next new PC replaces */
    struct walk_memo_entry e[MEMO_SLOTS];
};

/* memo_slot: the slot remembering pc, or -1. Signal-safe. */
static inline int memo_slot(const struct walk_memo *memo, uintptr_t pc)
{
    for (int i = 0; i < MEMO_SLOTS; i++)
        if (memo->pc[i] == pc)
            return i;
    return -1;
}
const size_t urg__walk_memo_size = sizeof(struct walk_memo);

/* memo_word: is `now` (from the stack [lo, hi)) what `then` (from e's
 * stack) becomes when that stack is moved onto this one? */
static inline bool memo_word(const struct walk_memo_entry *e, uint64_t now, uint64_t then,
                             uintptr_t hi)
{
    if (then >= e->lo && then < e->hi)
        return now == then - e->hi + hi;
    return now == then;
}

/* memo_hit: would a walk from here repeat e's? Reads only words of the
 * current task's stack [lo, hi). Signal-safe. */
__attribute__((no_sanitize_address)) static bool memo_hit(const struct walk_memo_entry *e,
                                                          uintptr_t pc, uintptr_t lo, uintptr_t hi,
                                                          uint32_t seq, uint32_t nunsafe,
                                                          const uint64_t regs[URG_NREGS])
{
    if (e->pc != pc || e->hi - e->lo != hi - lo || e->seq != seq || e->nunsafe != nunsafe)
        return false;
    uint32_t k = 0;
    for (uint32_t r = 0; r < URG_NREGS; r++)
        if (((e->regs_read >> r) & 1) && !memo_word(e, regs[r], e->reg[k++], hi))
            return false;
    for (uint32_t i = 0; i < e->nmem; i++) {
        uintptr_t a = e->mem[i].addr - e->hi + hi; /* logged reads lie in e's stack */
        if (!memo_word(e, *(const volatile uint64_t *)a, e->mem[i].val, hi))
            return false;
    }
    return true;
}

/* urg__walk_memo_store: remember a safe walk from regs whose inputs
 * were `in`, unless it read more than an entry holds. Signal-safe. */
URG__PREEMPT_PATH void urg__walk_memo_store(void *memo_, int slot,
                                            const struct urg__walk_inputs *in,
                                            const uint64_t regs[URG_NREGS], uintptr_t pc,
                                            uintptr_t lo, uintptr_t hi, uint32_t seq,
                                            uint32_t nunsafe)
{
    struct walk_memo *memo = memo_;
    if (in->nmem > URG__WALK_LOG || __builtin_popcount(in->regs_read) > MEMO_REGS)
        return;
    if (slot < 0) {
        slot = (int)(memo->next++ % MEMO_SLOTS);
        memo->pc[slot] = 0; /* while the entry is rewritten */
    }
    struct walk_memo_entry *e = &memo->e[slot];
    uint32_t k = 0;
    for (uint32_t r = 0; r < URG_NREGS; r++)
        if ((in->regs_read >> r) & 1)
            e->reg[k++] = regs[r];
    for (uint32_t i = 0; i < in->nmem; i++) {
        e->mem[i].addr = in->addr[i];
        e->mem[i].val = in->val[i];
    }
    e->regs_read = in->regs_read;
    e->nmem = in->nmem;
    e->lo = lo;
    e->hi = hi;
    e->seq = seq;
    e->nunsafe = nunsafe;
    e->pc = pc;
    memo->pc[slot] = pc;
}

/* urg__walk_memo_hit: Signal-safe. */
URG__PREEMPT_PATH bool urg__walk_memo_hit(void *memo_, uintptr_t pc, uintptr_t lo, uintptr_t hi,
                                          uint32_t seq, uint32_t nunsafe,
                                          const uint64_t regs[URG_NREGS], int *slot)
{
    struct walk_memo *memo = memo_;
    *slot = memo_slot(memo, pc);
    return *slot >= 0 && memo_hit(&memo->e[*slot], pc, lo, hi, seq, nunsafe, regs);
}
