/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * print.c — printing that is safe anywhere: in signal handlers, with
 * runtime locks held, on a nearly full stack, while the heap is corrupt.
 * Everything goes through write(2) from a small stack buffer. Also the
 * fatal-error path (urg__throw). The clock is in time.c.
 */
#include "sched.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Out of line on purpose (see internal.h): each call fetches the address
 * for the calling thread. noipa keeps GCC from proving it pure. */
#if defined(__clang__)
URG__NOINLINE int *urg__errno_here(void) { return &errno; }
#else
__attribute__((noipa)) int *urg__errno_here(void) { return &errno; }
#endif

static void write_all(const char *s, size_t n)
{
    int e = errno;
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        s += w;
        n -= (size_t)w;
    }
    errno = e;
}

void urg__write_str(const char *s) { write_all(s, strlen(s)); }

/* Signal-safe. */
void urg__pb_flush(urg__pbuf *b)
{
    write_all(b->buf, b->len);
    b->len = 0;
}

static void pb_putc(urg__pbuf *b, char c)
{
    if (b->len == sizeof(b->buf))
        urg__pb_flush(b);
    b->buf[b->len++] = c;
}

/* Signal-safe. */
void urg__pb_str(urg__pbuf *b, const char *s)
{
    if (!s)
        s = "(null)";
    while (*s)
        pb_putc(b, *s++);
}

/* Signal-safe. */
void urg__pb_u64(urg__pbuf *b, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        pb_putc(b, tmp[--n]);
}

/* Signal-safe. */
void urg__pb_i64(urg__pbuf *b, int64_t v)
{
    if (v < 0) {
        pb_putc(b, '-');
        urg__pb_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        urg__pb_u64(b, (uint64_t)v);
    }
}

/* Signal-safe. */
void urg__pb_hex(urg__pbuf *b, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    pb_putc(b, '0');
    pb_putc(b, 'x');
    while (n)
        pb_putc(b, tmp[--n]);
}

static uint32_t throwing;

/* urg__throw: the one way the runtime dies. Prints the message, the task
 * dump (once, even if the dump itself throws), and aborts.
 * Context: any. Signal-safe. */
void urg__throw(const char *msg)
{
    urg__pbuf b = {.len = 0};
    urg__pb_str(&b, "fatal error: ");
    urg__pb_str(&b, msg);
    urg__pb_str(&b, "\n\n");
    urg__pb_flush(&b);
    if (xchg(&throwing, 1u) == 0)
        urg__dump_all(true);
    abort();
}

/* urg__warn: a refused misuse of a void API function, or a malformed
 * environment value. One line. Signal-safe. */
void urg__warn(const char *what, const char *detail)
{
    urg__pbuf b = {.len = 0};
    urg__pb_str(&b, "urgent: ");
    urg__pb_str(&b, what);
    if (detail) {
        urg__pb_str(&b, ": ");
        urg__pb_str(&b, detail);
    }
    urg__pb_str(&b, "\n");
    urg__pb_flush(&b);
}
