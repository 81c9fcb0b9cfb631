/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * docs/examples/hello.c — the README's first example, verbatim in spirit:
 * a producer task sends three numbers over an unbuffered channel and the
 * main task prints them until the channel is closed.
 */
#include <stdio.h>
#include <urgent.h>

static urg_chan *ch;

static void producer(void *arg)
{
    (void)arg;
    for (long i = 1; i <= 3; i++)
        urg_chan_send(ch, &i);
    urg_chan_close(ch);
}

static void main_task(void *arg)
{
    (void)arg;
    ch = urg_chan_new(sizeof(long), 0);       /* unbuffered, like make(chan int) */
    urg_go(producer, NULL);                   /* go producer() */
    for (long v; urg_chan_recv(ch, &v) == 0;) /* -EPIPE once closed and drained */
        printf("got %ld in task %llu\n", v, (unsigned long long)urg_task_id());
    urg_chan_free(ch);
}

int main(void) { return urg_run(main_task, NULL, NULL); } /* returns when main_task does */
