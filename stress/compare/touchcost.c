/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * touchcost.c — what touching one resident page costs this machine when
 * the pages are spread the way task stacks are, urgent aside.
 *
 * It reserves N slots of STRIDE KiB (as stack.c's arenas do: one
 * MAP_NORESERVE mapping, no huge pages) and writes one byte near the top
 * of each slot, once to fault the pages in and then again, PASSES times,
 * with every page resident. The later passes are what a walk over a
 * million parked tasks pays per task (a channel close, a spawn from the
 * pool): on bare metal a TLB miss, tens of nanoseconds. A slot of 256 KiB
 * puts 8 touched pages under each page-table page, so a million slots need
 * 125,000 of them; on this VM the first passes after the pages were
 * faulted in cost microseconds a touch, and fewer passes do when the
 * slots are packed closer (docs/benchmarks.md has the figures).
 *
 * usage: touchcost [--slots N] [--stride-kib K] [--passes P]
 *        (defaults 1000000, 256, 3)
 * Prints one line per pass: ns per touch.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static long arg_long(const char *flag, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n <= 0) {
        fprintf(stderr, "touchcost: %s wants a positive integer, not '%s'\n", flag, v);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    long slots = 1000000, stride_kib = 256, passes = 3;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--slots"))
            slots = arg_long(argv[i], argv[i + 1]), i++;
        else if (i + 1 < argc && !strcmp(argv[i], "--stride-kib"))
            stride_kib = arg_long(argv[i], argv[i + 1]), i++;
        else if (i + 1 < argc && !strcmp(argv[i], "--passes"))
            passes = arg_long(argv[i], argv[i + 1]), i++;
        else {
            fprintf(stderr, "usage: touchcost [--slots N] [--stride-kib K] [--passes P]\n");
            return 2;
        }
    }
    size_t stride = (size_t)stride_kib * 1024, bytes = (size_t)slots * stride;
    char *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        perror("touchcost: mmap");
        return 1;
    }
    madvise(base, bytes, MADV_NOHUGEPAGE);
    printf("# touchcost slots=%ld stride_kib=%ld page_table_pages=%ld\n", slots, stride_kib,
           (long)((bytes + (2u << 20) - 1) / (2u << 20)));
    for (long pass = 0; pass <= passes; pass++) {
        double t0 = now_s();
        for (long i = 0; i < slots; i++)
            ((volatile char *)base)[(size_t)i * stride + stride - 64] += 1;
        printf("RESULT touchcost %s_ns_per_touch %.1f\n", pass ? "resident" : "first",
               (now_s() - t0) / (double)slots * 1e9);
    }
    munmap(base, bytes);
    return 0;
}
