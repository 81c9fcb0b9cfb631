/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * arch/x86_64/sigctx.c — which extended state the preemption trampoline
 * (preempt.S) saves, and how much room it takes, probed once before main.
 *
 * With XSAVE usable (CPUID 1 ECX.OSXSAVE): every component the OS enabled
 * in XCR0 except AMX tile state (bits 17 and 18: 8 KiB more on every
 * preempted stack, and Linux keeps it off per thread until a thread asks
 * for it; code that uses tiles must run with preemption disabled, see
 * docs/preemption.md), laid out in the standard format, so the size is
 * the end of the highest saved component (CPUID 0xD, sub-leaf i: EAX
 * size, EBX offset). Without XSAVE: fxsave's 512 bytes.
 */
#include "sigctx.h"

#include <cpuid.h>

__attribute__((visibility("hidden"))) uint64_t urg__xsave_size = 512;
__attribute__((visibility("hidden"))) uint8_t urg__have_xsave;
__attribute__((visibility("hidden"))) uint32_t urg__xsave_mask_lo, urg__xsave_mask_hi;

static void __attribute__((constructor)) xsave_probe(void)
{
    unsigned a, b, c, d;
    urg__have_xsave = 0;
    urg__xsave_size = 512;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))
        return;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    uint64_t mask = ((uint64_t)hi << 32 | lo) & ~((1ull << 17) | (1ull << 18));
    uint64_t end = 576; /* legacy area and header */
    for (unsigned i = 2; i < 63; i++) {
        if (!(mask & (1ull << i)))
            continue;
        if (!__get_cpuid_count(0xd, i, &a, &b, &c, &d) || a == 0)
            continue;
        if ((uint64_t)b + a > end)
            end = (uint64_t)b + a;
    }
    urg__xsave_mask_lo = (uint32_t)mask;
    urg__xsave_mask_hi = (uint32_t)(mask >> 32);
    urg__xsave_size = (end + 63) & ~63ull;
    urg__have_xsave = 1;
}
