/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * tests/test_regs.c — every register survives asynchronous preemption,
 * bit for bit.
 *
 * Each kernel below is hand-written assembly that keeps every register of
 * one class live across a long loop (general registers and flags; SSE
 * XMM0-15; AVX YMM0-15; AVX-512 ZMM0-31 and the opmask registers; the x87
 * stack), so that a preemption can land between any two instructions with
 * all of them holding values that matter. `adc` chains make the carry flag
 * part of the result. The same kernel run before the runtime starts gives
 * the reference; inside tasks, beside a hog on one proc with the smallest
 * quantum, it must give the same answer after 10^4+ preemptions. The
 * kernels carry CFI: code the unwinder cannot walk out of is never
 * preempted (a failed walk is an unsafe point). The FP
 * control words are checked too: a task sets round-toward-zero and keeps
 * it, whatever its neighbours do.
 *
 * AVX-512 is skipped (with a message) where the CPU or the OS lacks it.
 * The preemption count is only asserted in the async build without TSan
 * (TSan defers signals to safe points of its own, so nothing is
 * preempted asynchronously); the results are checked in every build.
 */
#include "testutil.h"

#include <fenv.h>
#include <pthread.h>
#include <time.h>

uint64_t kern_gpr(uint64_t seed, uint64_t iters);
uint64_t kern_sse(uint64_t seed, uint64_t iters);
uint64_t kern_avx(uint64_t seed, uint64_t iters);
uint64_t kern_avx512(uint64_t seed, uint64_t iters);
uint64_t kern_x87(uint64_t seed, uint64_t iters);

__asm__(
    ".text\n"
    /* General registers and flags: 14 live GPRs plus CF through adc. */
    ".globl kern_gpr\n"
    "kern_gpr:\n"
    "  .cfi_startproc\n"
    "  push %rbp\n .cfi_adjust_cfa_offset 8\n .cfi_rel_offset %rbp, 0\n"
    "  push %rbx\n .cfi_adjust_cfa_offset 8\n .cfi_rel_offset %rbx, 0\n"
    "  push %r12\n .cfi_adjust_cfa_offset 8\n .cfi_rel_offset %r12, 0\n"
    "  push %r13\n .cfi_adjust_cfa_offset 8\n .cfi_rel_offset %r13, 0\n"
    "  push %r14\n .cfi_adjust_cfa_offset 8\n .cfi_rel_offset %r14, 0\n"
    "  push %r15\n .cfi_adjust_cfa_offset 8\n .cfi_rel_offset %r15, 0\n"
    "  mov %rdi,%rax; lea 1(%rdi),%rbx; lea 2(%rdi),%rcx; lea 3(%rdi),%rdx\n"
    "  lea 4(%rdi),%rbp; lea 5(%rdi),%r8; lea 6(%rdi),%r9; lea 7(%rdi),%r10\n"
    "  lea 8(%rdi),%r11; lea 9(%rdi),%r12; lea 10(%rdi),%r13; lea 11(%rdi),%r14\n"
    "  lea 12(%rdi),%r15; imul $0x5bd1e995,%rdi,%rdi\n"
    "1:\n"
    "  add %rax,%rbx; adc %rbx,%rcx; rol $13,%rax; xor %rcx,%rax\n"
    "  add %rcx,%rdx; adc %rdx,%rbp; rol $7,%rdx; xor %rbp,%rdx\n"
    "  add %rbp,%r8;  adc %r8,%r9;   rol $17,%rbp; xor %r9,%rbp\n"
    "  add %r9,%r10;  adc %r10,%r11; rol $5,%r10; xor %r11,%r10\n"
    "  add %r11,%r12; adc %r12,%r13; rol $29,%r12; xor %r13,%r12\n"
    "  add %r13,%r14; adc %r14,%r15; rol $11,%r14; xor %r15,%r14\n"
    "  add %r15,%rdi; adc %rdi,%rax; rol $3,%rdi; xor %rax,%rdi\n"
    "  dec %rsi; jnz 1b\n"
    "  xor %rbx,%rax; xor %rcx,%rax; xor %rdx,%rax; xor %rbp,%rax; xor %r8,%rax\n"
    "  xor %r9,%rax; xor %r10,%rax; xor %r11,%rax; xor %r12,%rax; xor %r13,%rax\n"
    "  xor %r14,%rax; xor %r15,%rax; xor %rdi,%rax\n"
    "  pop %r15; pop %r14; pop %r13; pop %r12; pop %rbx; pop %rbp\n"
    "  .cfi_adjust_cfa_offset -48\n"
    "  ret\n"
    "  .cfi_endproc\n"

    /* SSE: all sixteen XMM registers live. */
    ".globl kern_sse\n"
    "kern_sse:\n"
    "  .cfi_startproc\n"
    "  movq %rdi,%xmm0\n"
    "  pshufd $0x44,%xmm0,%xmm0\n"
    "  mov $0x0101010101010101,%rax; movq %rax,%xmm15; pshufd $0x44,%xmm15,%xmm15\n"
    "  movdqa %xmm0,%xmm1; paddq %xmm15,%xmm1; movdqa %xmm1,%xmm2; paddq %xmm15,%xmm2\n"
    "  movdqa %xmm2,%xmm3; paddq %xmm15,%xmm3; movdqa %xmm3,%xmm4; paddq %xmm15,%xmm4\n"
    "  movdqa %xmm4,%xmm5; paddq %xmm15,%xmm5; movdqa %xmm5,%xmm6; paddq %xmm15,%xmm6\n"
    "  movdqa %xmm6,%xmm7; paddq %xmm15,%xmm7; movdqa %xmm7,%xmm8; paddq %xmm15,%xmm8\n"
    "  movdqa %xmm8,%xmm9; paddq %xmm15,%xmm9; movdqa %xmm9,%xmm10; paddq %xmm15,%xmm10\n"
    "  movdqa %xmm10,%xmm11; paddq %xmm15,%xmm11; movdqa %xmm11,%xmm12; paddq %xmm15,%xmm12\n"
    "  movdqa %xmm12,%xmm13; paddq %xmm15,%xmm13; movdqa %xmm13,%xmm14; paddq %xmm15,%xmm14\n"
    "2:\n"
    "  paddq %xmm0,%xmm1; pxor %xmm1,%xmm2; pshufd $0x39,%xmm2,%xmm2; paddq %xmm2,%xmm3\n"
    "  pxor %xmm3,%xmm4; pshufd $0x4e,%xmm4,%xmm4; paddq %xmm4,%xmm5; pxor %xmm5,%xmm6\n"
    "  pshufd $0x93,%xmm6,%xmm6; paddq %xmm6,%xmm7; pxor %xmm7,%xmm8; paddq %xmm8,%xmm9\n"
    "  pshufd $0x1b,%xmm9,%xmm9; pxor %xmm9,%xmm10; paddq %xmm10,%xmm11; pxor %xmm11,%xmm12\n"
    "  pshufd $0x39,%xmm12,%xmm12; paddq %xmm12,%xmm13; pxor %xmm13,%xmm14; paddq %xmm14,%xmm15\n"
    "  pxor %xmm15,%xmm0; paddq %xmm15,%xmm0\n"
    "  dec %rsi; jnz 2b\n"
    "  pxor %xmm1,%xmm0; pxor %xmm2,%xmm0; pxor %xmm3,%xmm0; pxor %xmm4,%xmm0; pxor %xmm5,%xmm0\n"
    "  pxor %xmm6,%xmm0; pxor %xmm7,%xmm0; pxor %xmm8,%xmm0; pxor %xmm9,%xmm0; pxor %xmm10,%xmm0\n"
    "  pxor %xmm11,%xmm0; pxor %xmm12,%xmm0; pxor %xmm13,%xmm0; pxor %xmm14,%xmm0; pxor "
    "%xmm15,%xmm0\n"
    "  movq %xmm0,%rax; pshufd $0x4e,%xmm0,%xmm0; movq %xmm0,%rdx; xor %rdx,%rax\n"
    "  ret\n"
    "  .cfi_endproc\n"

    /* AVX: all sixteen YMM registers, upper halves included. */
    ".globl kern_avx\n"
    "kern_avx:\n"
    "  .cfi_startproc\n"
    "  vmovq %rdi,%xmm0; vpbroadcastq %xmm0,%ymm0\n"
    "  mov $0x0303030303030303,%rax; vmovq %rax,%xmm15; vpbroadcastq %xmm15,%ymm15\n"
    "  vpaddq %ymm15,%ymm0,%ymm1; vpaddq %ymm15,%ymm1,%ymm2; vpaddq %ymm15,%ymm2,%ymm3\n"
    "  vpaddq %ymm15,%ymm3,%ymm4; vpaddq %ymm15,%ymm4,%ymm5; vpaddq %ymm15,%ymm5,%ymm6\n"
    "  vpaddq %ymm15,%ymm6,%ymm7; vpaddq %ymm15,%ymm7,%ymm8; vpaddq %ymm15,%ymm8,%ymm9\n"
    "  vpaddq %ymm15,%ymm9,%ymm10; vpaddq %ymm15,%ymm10,%ymm11; vpaddq %ymm15,%ymm11,%ymm12\n"
    "  vpaddq %ymm15,%ymm12,%ymm13; vpaddq %ymm15,%ymm13,%ymm14\n"
    "3:\n"
    "  vpaddq %ymm0,%ymm1,%ymm1; vpxor %ymm1,%ymm2,%ymm2; vpermq $0x39,%ymm2,%ymm2\n"
    "  vpaddq %ymm2,%ymm3,%ymm3; vpxor %ymm3,%ymm4,%ymm4; vpermq $0x4e,%ymm4,%ymm4\n"
    "  vpaddq %ymm4,%ymm5,%ymm5; vpxor %ymm5,%ymm6,%ymm6; vpermq $0x93,%ymm6,%ymm6\n"
    "  vpaddq %ymm6,%ymm7,%ymm7; vpxor %ymm7,%ymm8,%ymm8; vpaddq %ymm8,%ymm9,%ymm9\n"
    "  vpermq $0x1b,%ymm9,%ymm9; vpxor %ymm9,%ymm10,%ymm10; vpaddq %ymm10,%ymm11,%ymm11\n"
    "  vpxor %ymm11,%ymm12,%ymm12; vpermq $0x39,%ymm12,%ymm12; vpaddq %ymm12,%ymm13,%ymm13\n"
    "  vpxor %ymm13,%ymm14,%ymm14; vpaddq %ymm14,%ymm15,%ymm15; vpxor %ymm15,%ymm0,%ymm0\n"
    "  vpaddq %ymm15,%ymm0,%ymm0\n"
    "  dec %rsi; jnz 3b\n"
    "  vpxor %ymm1,%ymm0,%ymm0; vpxor %ymm2,%ymm0,%ymm0; vpxor %ymm3,%ymm0,%ymm0\n"
    "  vpxor %ymm4,%ymm0,%ymm0; vpxor %ymm5,%ymm0,%ymm0; vpxor %ymm6,%ymm0,%ymm0\n"
    "  vpxor %ymm7,%ymm0,%ymm0; vpxor %ymm8,%ymm0,%ymm0; vpxor %ymm9,%ymm0,%ymm0\n"
    "  vpxor %ymm10,%ymm0,%ymm0; vpxor %ymm11,%ymm0,%ymm0; vpxor %ymm12,%ymm0,%ymm0\n"
    "  vpxor %ymm13,%ymm0,%ymm0; vpxor %ymm14,%ymm0,%ymm0; vpxor %ymm15,%ymm0,%ymm0\n"
    "  vextracti128 $1,%ymm0,%xmm1; vpxor %xmm1,%xmm0,%xmm0\n"
    "  vmovq %xmm0,%rax; vpextrq $1,%xmm0,%rdx; xor %rdx,%rax\n"
    "  vzeroupper\n"
    "  ret\n"
    "  .cfi_endproc\n"

    /* AVX-512: ZMM0-31 and opmasks k1-k7. */
    ".globl kern_avx512\n"
    "kern_avx512:\n"
    "  .cfi_startproc\n"
    "  vpbroadcastq %rdi,%zmm0\n"
    "  mov $0x0505050505050505,%rax; vpbroadcastq %rax,%zmm31\n"
    "  mov $0x55,%eax; kmovw %eax,%k1; mov $0xaa,%eax; kmovw %eax,%k2; mov $0x0f,%eax; kmovw "
    "%eax,%k3\n"
    "  mov $0xf0,%eax; kmovw %eax,%k4; mov $0x33,%eax; kmovw %eax,%k5; mov $0xcc,%eax; kmovw "
    "%eax,%k6\n"
    "  mov $0x3c,%eax; kmovw %eax,%k7\n"
    "  vpaddq %zmm31,%zmm0,%zmm1; vpaddq %zmm31,%zmm1,%zmm2; vpaddq %zmm31,%zmm2,%zmm3\n"
    "  vpaddq %zmm31,%zmm3,%zmm4; vpaddq %zmm31,%zmm4,%zmm5; vpaddq %zmm31,%zmm5,%zmm6\n"
    "  vpaddq %zmm31,%zmm6,%zmm7; vpaddq %zmm31,%zmm7,%zmm8; vpaddq %zmm31,%zmm8,%zmm9\n"
    "  vpaddq %zmm31,%zmm9,%zmm10; vpaddq %zmm31,%zmm10,%zmm11; vpaddq %zmm31,%zmm11,%zmm12\n"
    "  vpaddq %zmm31,%zmm12,%zmm13; vpaddq %zmm31,%zmm13,%zmm14; vpaddq %zmm31,%zmm14,%zmm15\n"
    "  vpaddq %zmm31,%zmm15,%zmm16; vpaddq %zmm31,%zmm16,%zmm17; vpaddq %zmm31,%zmm17,%zmm18\n"
    "  vpaddq %zmm31,%zmm18,%zmm19; vpaddq %zmm31,%zmm19,%zmm20; vpaddq %zmm31,%zmm20,%zmm21\n"
    "  vpaddq %zmm31,%zmm21,%zmm22; vpaddq %zmm31,%zmm22,%zmm23; vpaddq %zmm31,%zmm23,%zmm24\n"
    "  vpaddq %zmm31,%zmm24,%zmm25; vpaddq %zmm31,%zmm25,%zmm26; vpaddq %zmm31,%zmm26,%zmm27\n"
    "  vpaddq %zmm31,%zmm27,%zmm28; vpaddq %zmm31,%zmm28,%zmm29; vpaddq %zmm31,%zmm29,%zmm30\n"
    "4:\n"
    "  vpaddq %zmm0,%zmm1,%zmm1{%k1}; vpxorq %zmm1,%zmm2,%zmm2{%k2}; vpaddq "
    "%zmm2,%zmm3,%zmm3{%k3}\n"
    "  vpxorq %zmm3,%zmm4,%zmm4{%k4}; vpaddq %zmm4,%zmm5,%zmm5{%k5}; vpxorq "
    "%zmm5,%zmm6,%zmm6{%k6}\n"
    "  vpaddq %zmm6,%zmm7,%zmm7{%k7}; vpxorq %zmm7,%zmm8,%zmm8; vpaddq %zmm8,%zmm9,%zmm9\n"
    "  vpxorq %zmm9,%zmm10,%zmm10; vpaddq %zmm10,%zmm11,%zmm11; vpxorq %zmm11,%zmm12,%zmm12\n"
    "  vpaddq %zmm12,%zmm13,%zmm13; vpxorq %zmm13,%zmm14,%zmm14; vpaddq %zmm14,%zmm15,%zmm15\n"
    "  vpxorq %zmm15,%zmm16,%zmm16; vpaddq %zmm16,%zmm17,%zmm17; vpxorq %zmm17,%zmm18,%zmm18\n"
    "  vpaddq %zmm18,%zmm19,%zmm19; vpxorq %zmm19,%zmm20,%zmm20; vpaddq %zmm20,%zmm21,%zmm21\n"
    "  vpxorq %zmm21,%zmm22,%zmm22; vpaddq %zmm22,%zmm23,%zmm23; vpxorq %zmm23,%zmm24,%zmm24\n"
    "  vpaddq %zmm24,%zmm25,%zmm25; vpxorq %zmm25,%zmm26,%zmm26; vpaddq %zmm26,%zmm27,%zmm27\n"
    "  vpxorq %zmm27,%zmm28,%zmm28; vpaddq %zmm28,%zmm29,%zmm29; vpxorq %zmm29,%zmm30,%zmm30\n"
    "  vpaddq %zmm30,%zmm31,%zmm31; vpermq $0x39,%zmm31,%zmm31; vpxorq %zmm31,%zmm0,%zmm0\n"
    "  kxnorw %k2,%k1,%k1; kshiftlw $1,%k3,%k3; kxorw %k3,%k4,%k4\n"
    "  dec %rsi; jnz 4b\n"
    "  vpxorq %zmm1,%zmm0,%zmm0; vpxorq %zmm2,%zmm0,%zmm0; vpxorq %zmm3,%zmm0,%zmm0\n"
    "  vpxorq %zmm5,%zmm0,%zmm0; vpxorq %zmm7,%zmm0,%zmm0; vpxorq %zmm9,%zmm0,%zmm0\n"
    "  vpxorq %zmm11,%zmm0,%zmm0; vpxorq %zmm13,%zmm0,%zmm0; vpxorq %zmm15,%zmm0,%zmm0\n"
    "  vpxorq %zmm17,%zmm0,%zmm0; vpxorq %zmm19,%zmm0,%zmm0; vpxorq %zmm21,%zmm0,%zmm0\n"
    "  vpxorq %zmm23,%zmm0,%zmm0; vpxorq %zmm25,%zmm0,%zmm0; vpxorq %zmm27,%zmm0,%zmm0\n"
    "  vpxorq %zmm29,%zmm0,%zmm0; vpxorq %zmm30,%zmm0,%zmm0; vpxorq %zmm31,%zmm0,%zmm0\n"
    "  vextracti64x4 $1,%zmm0,%ymm1; vpxor %ymm1,%ymm0,%ymm0\n"
    "  vextracti128 $1,%ymm0,%xmm1; vpxor %xmm1,%xmm0,%xmm0\n"
    "  vmovq %xmm0,%rax; vpextrq $1,%xmm0,%rdx; xor %rdx,%rax\n"
    "  kmovw %k1,%edx; xor %rdx,%rax; kmovw %k3,%edx; shl $16,%rdx; xor %rdx,%rax\n"
    "  kmovw %k4,%edx; shl $32,%rdx; xor %rdx,%rax\n"
    "  vzeroupper\n"
    "  ret\n"
    "  .cfi_endproc\n"

    /* x87: four values live on the register stack. */
    ".globl kern_x87\n"
    "kern_x87:\n"
    "  .cfi_startproc\n"
    "  sub $24,%rsp\n .cfi_adjust_cfa_offset 24\n"
    "  mov %rdi,(%rsp); fildq (%rsp); fld1; faddp; fld %st(0); fld1\n"
    "  fadd %st(0),%st(0); fld %st(0)\n"
    "5:\n"
    "  fadd %st(1),%st(0); fxch %st(2); fmul %st(3),%st(0); fxch %st(1); fadd %st(2),%st(0)\n"
    "  fxch %st(3); fsqrt; fxch %st(3)\n"
    "  fld1; fadd %st(1),%st(0); fdivrp %st(0),%st(1)\n"
    "  dec %rsi; jnz 5b\n"
    "  faddp; faddp; faddp; fstpt (%rsp)\n"
    "  mov (%rsp),%rax; movzwl 8(%rsp),%edx; xor %rdx,%rax; add $24,%rsp\n"
    "  .cfi_adjust_cfa_offset -24\n"
    "  ret\n"
    "  .cfi_endproc\n"
    ".section .note.GNU-stack,\"\",%progbits\n"
    ".text\n");

enum { K_GPR, K_SSE, K_AVX, K_AVX512, K_X87, K_FPCTL, K_COUNT };
static const char *const knames[K_COUNT] = {"gpr", "sse", "avx", "avx512", "x87", "fpctl"};

#define ITERS 20000 /* per kernel call: a few hundred microseconds */

static uint64_t fpctl_kernel(uint64_t seed, uint64_t iters)
{
    /* Single-precision division with round-toward-zero: the result
     * depends on MXCSR. The caller set the rounding mode. */
    volatile float x = (float)(seed % 1000 + 1), acc = 0;
    for (uint64_t i = 0; i < iters; i++)
        acc = acc / 3.0f + x / 7.0f;
    uint32_t bits;
    float a = acc;
    memcpy(&bits, &a, sizeof(bits));
    return bits ^ ((uint64_t)fegetround() << 32);
}

static uint64_t run_kernel(int k, uint64_t seed)
{
    switch (k) {
    case K_GPR:
        return kern_gpr(seed, ITERS * 8);
    case K_SSE:
        return kern_sse(seed, ITERS * 4);
    case K_AVX:
        return kern_avx(seed, ITERS * 4);
    case K_AVX512:
        return kern_avx512(seed, ITERS * 2);
    case K_X87:
        return kern_x87(seed, ITERS);
    default:
        return fpctl_kernel(seed, ITERS);
    }
}

static bool have[K_COUNT];
static uint64_t expected[K_COUNT];
static volatile int stop;
static uint64_t calls[K_COUNT], mismatches[K_COUNT];
static urg_wg wg;

static void kernel_task(void *arg)
{
    int k = (int)(intptr_t)arg;
    if (k == K_FPCTL)
        fesetround(FE_TOWARDZERO);
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        uint64_t r = run_kernel(k, 0x1234567 + (uint64_t)k);
        calls[k]++;
        if (r != expected[k])
            mismatches[k]++;
    }
    if (k == K_FPCTL && fegetround() != FE_TOWARDZERO)
        mismatches[k]++;
    urg_wg_done(&wg);
}

static void default_rounding_hog(void *arg)
{
    (void)arg;
    /* A neighbour with the default rounding mode, to be switched with. */
    volatile uint64_t n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        n++;
        if (fegetround() != FE_TONEAREST)
            mismatches[K_FPCTL]++;
    }
    urg_wg_done(&wg);
}

static urg_stats st;

/* The monitor is a plain thread: in the cooperative build the kernels
 * never give up the proc, so only something outside the runtime can end
 * the run. It stops once 10^4 preemptions have happened (async) or after
 * a time limit. */
static void *monitor(void *arg)
{
    (void)arg;
    uint64_t t0 = urg_now();
    for (;;) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
        urg_stats now; /* its own copy: regs_main fills st */
        urg_stats_get(&now);
        uint64_t elapsed = urg_now() - t0;
        if ((now.preempt_async >= 12000 && elapsed > 500000000ull) || elapsed > 20000000000ull)
            break;
        if ((!tu_is_async() || TU_TSAN) && elapsed > 1000000000ull)
            break;
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void regs_main(void *arg)
{
    (void)arg;
    int n = 1;
    for (int k = 0; k < K_COUNT; k++)
        n += have[k];
    urg_wg_add(&wg, n);
    for (int k = 0; k < K_COUNT; k++)
        if (have[k])
            CHECK(urg_go(kernel_task, (void *)(intptr_t)k) == 0);
    CHECK(urg_go(default_rounding_hog, NULL) == 0);
    urg_wg_wait(&wg);
    urg_stats_get(&st);
}

static void test_regs_survive_preemption(void **state)
{
    (void)state;
    __builtin_cpu_init();
    have[K_GPR] = have[K_SSE] = have[K_X87] = have[K_FPCTL] = true;
    have[K_AVX] = __builtin_cpu_supports("avx2");
    have[K_AVX512] = __builtin_cpu_supports("avx512f");
    if (!have[K_AVX512])
        print_message("AVX-512 not available on this CPU: its kernel is skipped\n");
    for (int k = 0; k < K_COUNT; k++) {
        if (!have[k])
            continue;
        if (k == K_FPCTL)
            fesetround(FE_TOWARDZERO);
        expected[k] = run_kernel(k, 0x1234567 + (uint64_t)k);
        fesetround(FE_TONEAREST);
        /* Deterministic before the runtime exists. */
        if (k != K_FPCTL)
            assert_true(run_kernel(k, 0x1234567 + (uint64_t)k) == expected[k]);
    }
    stop = 0;
    tu_reset();
    /* One proc, the smallest quantum: preemptions come every ~100 us. */
    urg_config cfg = {.maxprocs = 1, .quantum_ns = URG_QUANTUM_MIN_NS};
    pthread_t mon;
    pthread_create(&mon, NULL, monitor, NULL);
    int r = urg_run(regs_main, NULL, &cfg);
    pthread_join(mon, NULL);
    assert_int_equal(r, 0);
    assert_checks_ok();
    for (int k = 0; k < K_COUNT; k++) {
        if (!have[k])
            continue;
        print_message("%-7s %8llu calls, %llu mismatches\n", knames[k],
                      (unsigned long long)calls[k], (unsigned long long)mismatches[k]);
        /* In the cooperative build the first kernel keeps the proc and the
         * others never run; whatever ran must still be exact. */
        if (tu_is_async() && !TU_TSAN)
            assert_true(calls[k] > 0);
        assert_int_equal(mismatches[k], 0);
    }
    print_message("%llu async preemptions, %llu deferred\n", (unsigned long long)st.preempt_async,
                  (unsigned long long)st.preempt_deferred);
    /* Sanitized builds run several times slower; what matters there is
     * that every preemption that did happen left the registers exact. */
    if (tu_is_async() && !TU_TSAN)
        assert_true(st.preempt_async >= (TU_SANITIZED ? 2000 : 10000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regs_survive_preemption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
