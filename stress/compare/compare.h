/* stress/compare/compare.h — shared by compare.c and callwork.c. */
#ifndef URG_COMPARE_H
#define URG_COMPARE_H

#include <stdint.h>

/* One hog: its iteration counter, on a cache line of its own so that hogs
 * on different procs do not slow each other down. */
struct hog {
    volatile uint64_t n;
    volatile int *stop;
    char pad[48];
};

void cw_step(volatile uint64_t *n);
void cw_loop_with_calls(struct hog *h);
void cw_loop_without_calls(struct hog *h);

#endif
