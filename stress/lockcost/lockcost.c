/* SPDX-FileCopyrightText: the urgent authors */
/* SPDX-License-Identifier: MIT */
/*
 * stress/lockcost/lockcost.c — what counting pthread locks per task costs
 * (runtime/interpose.c): an uncontended lock+unlock pair through urgent's
 * wrappers against the same pair called straight into libc, in one task.
 *
 *   cmake --build build/test-async
 *   gcc -O2 -Iruntime/include -Ibuild/test-async/include stress/lockcost/lockcost.c \
 *       build/test-async/liburgent.a -lunwind -lunwind-x86_64 -ldl -lpthread -o /tmp/lockcost
 *   for i in 1 2 3 4 5; do /tmp/lockcost; done
 */
#define _GNU_SOURCE
#include <urgent.h>
#include <pthread.h>
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static double ns_wrapped, ns_direct;
#define N 20000000
static void main_task(void *a) {
  (void)a;
  int (*lk)(pthread_mutex_t*) = dlsym(RTLD_NEXT, "pthread_mutex_lock");
  int (*ul)(pthread_mutex_t*) = dlsym(RTLD_NEXT, "pthread_mutex_unlock");
  uint64_t t0 = urg_now();
  for (int i = 0; i < N; i++) { pthread_mutex_lock(&m); pthread_mutex_unlock(&m); }
  uint64_t t1 = urg_now();
  for (int i = 0; i < N; i++) { lk(&m); ul(&m); }
  uint64_t t2 = urg_now();
  ns_wrapped = (double)(t1 - t0) / N; ns_direct = (double)(t2 - t1) / N;
}
int main(void) { urg_config c = {.maxprocs = 1}; urg_run(main_task, NULL, &c);
  printf("lock+unlock pair: through urgent %.2f ns, libc direct %.2f ns\n", ns_wrapped, ns_direct); }
