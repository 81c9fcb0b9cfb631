// SPDX-FileCopyrightText: the urgent authors
// SPDX-License-Identifier: MIT

// Command gosched measures Go's own scheduler figures for the scenarios of
// urgent's cooperative-vs-async comparison (see README.md):
//
//	a  fairness of call-free loops (4 hogs on 1 P, 8 hogs on 2 Ps)
//	b  lateness of a 1 ms time.Sleep loop beside 4 call-free hogs on 1 P
//	c  stop-the-world latency (runtime.GOMAXPROCS) with 4 hogs on 2 Ps
//	d  loops whose body calls a //go:noinline function, 4 hogs on 1 P
//
// Run it once with the default GODEBUG and once with
// GODEBUG=asyncpreemptoff=1; it reports which mode it is in.
//
// # Design: a monitor that needs no P
//
// With asyncpreemptoff=1 a goroutine whose loop contains no function call
// never reaches a preemption point, so it keeps its P for ever. On such a P
// nothing else runs: not the main goroutine, not timers (which are run by
// the P that owns them), not a "stop after 2 s" goroutine. And a stop-the-
// world (scenario c) waits for every P, so it blocks the caller for ever and
// every other P with it. Anything written in Go that is meant to end the run
// needs a P, so it would be starved too.
//
// The monitor is therefore a plain pthread created by the C code in the cgo
// preamble below. The Go runtime does not know about it, it never calls into
// Go, so it needs neither an M nor a P and is scheduled by the kernel alone.
// The hog counters and the stop flag live in C memory (static arrays in the
// preamble), so both sides may touch them without breaking cgo's pointer
// rules. For each scenario the main goroutine
//
//  1. calls C.monitor_start(ms): clears the stop flag and the counters and
//     creates the pthread, which waits on a condition variable with an
//     absolute CLOCK_MONOTONIC deadline of now+ms;
//  2. starts the hogs; every hog loop polls the stop flag with
//     atomic.LoadUint32, which is a compiler intrinsic (a plain MOV), so the
//     loop stays call-free (run.sh checks the disassembly for CALLs);
//  3. waits for the hogs (sync.WaitGroup).
//
// At the deadline the monitor copies the counters into a snapshot and then
// sets the stop flag. Every hog sees the flag within a loop iteration and
// returns; that frees the Ps, so the main goroutine, timers and a pending
// stop-the-world all get to run again and the scenario ends on time in both
// modes. The figures are computed from the snapshot, i.e. from exactly the
// scenario duration. When the main goroutine finishes early (scenario c in
// async mode) it calls C.monitor_cancel, which signals the condition
// variable; the monitor wakes and sets the stop flag without taking a
// snapshot. C.monitor_join joins the pthread and reports whether the
// deadline expired or the monitor was cancelled.
//
// The garbage collector is disabled while measuring (nothing allocates in the
// hog loops anyway) so that no GC stop-the-world gets caught behind a hog.
package main

/*
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define MAX_HOGS 16

typedef struct {
	uint64_t n;
	char pad[56];
} counter_t;

static counter_t counters[MAX_HOGS] __attribute__((aligned(64)));
static uint64_t snapshot[MAX_HOGS];
static uint32_t stop_flag __attribute__((aligned(64)));

static pthread_t mon_thread;
static pthread_mutex_t mon_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mon_cv;
static int mon_cancelled;
static int mon_expired;
static struct timespec mon_deadline;

static counter_t *counters_ptr(void) { return counters; }
static uint32_t *stop_ptr(void) { return &stop_flag; }
static uint64_t snapshot_at(int i) { return snapshot[i]; }

static void *monitor_main(void *arg) {
	(void)arg;
	int rc = 0;
	pthread_mutex_lock(&mon_mu);
	while (!mon_cancelled && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&mon_cv, &mon_mu, &mon_deadline);
	if (!mon_cancelled) {
		mon_expired = 1;
		for (int i = 0; i < MAX_HOGS; i++)
			snapshot[i] = __atomic_load_n(&counters[i].n, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&stop_flag, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&mon_mu);
	return NULL;
}

// monitor_start resets the shared state and starts the monitor thread,
// which stops the scenario after ms milliseconds. Returns 0 or an errno.
static int monitor_start(int ms) {
	static int inited;
	if (!inited) {
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&mon_cv, &ca);
		pthread_condattr_destroy(&ca);
		inited = 1;
	}
	memset(counters, 0, sizeof counters);
	memset(snapshot, 0, sizeof snapshot);
	mon_cancelled = 0;
	mon_expired = 0;
	__atomic_store_n(&stop_flag, 0, __ATOMIC_SEQ_CST);
	clock_gettime(CLOCK_MONOTONIC, &mon_deadline);
	mon_deadline.tv_sec += ms / 1000;
	mon_deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (mon_deadline.tv_nsec >= 1000000000L) {
		mon_deadline.tv_sec++;
		mon_deadline.tv_nsec -= 1000000000L;
	}
	// Keep Go's signals (SIGURG in particular) off this thread.
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&mon_thread, NULL, monitor_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

// monitor_cancel ends the scenario early: no snapshot, stop flag set.
static void monitor_cancel(void) {
	pthread_mutex_lock(&mon_mu);
	mon_cancelled = 1;
	pthread_cond_signal(&mon_cv);
	pthread_mutex_unlock(&mon_mu);
}

// monitor_join waits for the monitor thread; returns 1 if the deadline
// expired (snapshot taken), 0 if it was cancelled first.
static int monitor_join(void) {
	pthread_join(mon_thread, NULL);
	return mon_expired;
}
*/
import "C"

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

const maxHogs = C.MAX_HOGS

// counter mirrors counter_t: one hog's iteration count on its own cache line.
type counter struct {
	n uint64
	_ [56]byte
}

var (
	counters = (*[maxHogs]counter)(unsafe.Pointer(C.counters_ptr()))
	stop     = (*uint32)(unsafe.Pointer(C.stop_ptr()))

	mode     = "async"
	duration = 2 * time.Second
)

// hogSpin is the call-free loop: an intrinsic atomic load, an increment and
// a branch. It has no preemption point except asynchronous preemption.
//
//go:noinline
func hogSpin(stop *uint32, c *counter) {
	for atomic.LoadUint32(stop) == 0 {
		c.n++
	}
}

// stepLeaf is a small leaf function. The compiler marks leaf functions with a
// small frame NOSPLIT, so it has no stack-check prologue and therefore no
// cooperative preemption point (see README.md).
//
//go:noinline
func stepLeaf(x uint64) uint64 { return x + 1 }

// step is a small non-leaf function: calling stepLeaf gives it a
// stack-check prologue, which is where cooperative preemption happens.
//
//go:noinline
func step(x uint64) uint64 { return stepLeaf(x) }

// hogCall is hogSpin with the increment done by a call to step.
//
//go:noinline
func hogCall(stop *uint32, c *counter) {
	for atomic.LoadUint32(stop) == 0 {
		c.n = step(c.n)
	}
}

// hogCallLeaf is hogSpin with the increment done by a call to stepLeaf.
//
//go:noinline
func hogCallLeaf(stop *uint32, c *counter) {
	for atomic.LoadUint32(stop) == 0 {
		c.n = stepLeaf(c.n)
	}
}

func result(scenario, key string, format string, args ...interface{}) {
	fmt.Printf("RESULT %s %s %s %s\n", mode, scenario, key, fmt.Sprintf(format, args...))
}

func comment(format string, args ...interface{}) {
	fmt.Printf("# "+format+"\n", args...)
}

func startMonitor() {
	if rc := C.monitor_start(C.int(duration / time.Millisecond)); rc != 0 {
		fmt.Fprintf(os.Stderr, "gosched: pthread_create: errno %d\n", int(rc))
		os.Exit(1)
	}
}

// startHogs starts n goroutines running hog on counters[0..n-1].
func startHogs(wg *sync.WaitGroup, n int, hog func(*uint32, *counter)) {
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(c *counter) {
			defer wg.Done()
			hog(stop, c)
		}(&counters[i])
	}
}

// fairness runs n hogs on procs Ps for the duration and reports the shares.
func fairness(scenario string, n, procs int, hog func(*uint32, *counter)) {
	runtime.GOMAXPROCS(procs)
	var wg sync.WaitGroup
	start := time.Now()
	startMonitor()
	startHogs(&wg, n, hog)
	wg.Wait()
	expired := C.monitor_join() != 0
	elapsed := time.Since(start)
	if !expired {
		panic("monitor cancelled in a fairness scenario")
	}

	x := make([]float64, n)
	var sum, sumsq float64
	for i := range x {
		x[i] = float64(C.snapshot_at(C.int(i)))
		sum += x[i]
		sumsq += x[i] * x[i]
	}
	comment("%s: %d hogs, GOMAXPROCS=%d, ended after %.3f s", scenario, n, procs, elapsed.Seconds())
	jain := 0.0
	if sumsq > 0 {
		jain = sum * sum / (float64(n) * sumsq)
	}
	starved := 0
	shares := make([]string, n)
	for i := range x {
		share := 0.0
		if sum > 0 {
			share = x[i] / sum
		}
		if share < 0.1/float64(n) {
			starved++
		}
		shares[i] = fmt.Sprintf("%.4f", share)
		result(scenario, fmt.Sprintf("share%d", i), "%.4f", share)
	}
	result(scenario, "jain", "%.4f", jain)
	result(scenario, "starved", "%d", starved)
	result(scenario, "total_iters", "%.0f", sum)
	result(scenario, "elapsed_ms", "%.0f", float64(elapsed)/1e6)
	comment("%s: shares %s", scenario, strings.Join(shares, " "))
}

// percentile returns the nearest-rank p-quantile of sorted.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

// ticker runs a time.Sleep(1ms) loop beside nhogs call-free hogs on 1 P.
func ticker(scenario string, nhogs int) {
	runtime.GOMAXPROCS(1)
	late := make([]float64, 0, 1<<16)
	var wg sync.WaitGroup
	ready := make(chan struct{})
	start := time.Now()
	startMonitor()
	wg.Add(1)
	go func() {
		defer wg.Done()
		close(ready)
		for atomic.LoadUint32(stop) == 0 && len(late) < cap(late) {
			t0 := time.Now()
			time.Sleep(time.Millisecond)
			l := time.Since(t0) - time.Millisecond
			late = append(late, float64(l)/1e6)
		}
	}()
	<-ready // the ticker is in its loop before the hogs exist
	startHogs(&wg, nhogs, hogSpin)
	wg.Wait()
	C.monitor_join()
	elapsed := time.Since(start)

	sorted := append([]float64(nil), late...)
	sort.Float64s(sorted)
	comment("%s: Sleep(1ms) loop + %d hogs, GOMAXPROCS=1, ended after %.3f s", scenario, nhogs, elapsed.Seconds())
	result(scenario, "wakes", "%d", len(late))
	if len(late) == 0 {
		comment("%s: no wake at all", scenario)
		return
	}
	result(scenario, "p50_ms", "%.3f", percentile(sorted, 0.50))
	result(scenario, "p99_ms", "%.3f", percentile(sorted, 0.99))
	result(scenario, "max_ms", "%.3f", sorted[len(sorted)-1])
	result(scenario, "elapsed_ms", "%.0f", float64(elapsed)/1e6)
	if sorted[len(sorted)-1] >= 0.9*float64(duration)/1e6 {
		comment("%s: ticker starved: a wake came only when the monitor stopped the hogs", scenario)
	}
}

// waitHogElsewhere spins, without calls, until some hog makes progress:
// with this goroutine on its own P, that hog runs on another one.
func waitHogElsewhere(nhogs int) {
	var before [maxHogs]uint64
	for i := 0; i < nhogs; i++ {
		before[i] = atomic.LoadUint64(&counters[i].n)
	}
	for atomic.LoadUint32(stop) == 0 {
		for i := 0; i < nhogs; i++ {
			if atomic.LoadUint64(&counters[i].n) != before[i] {
				return
			}
		}
	}
}

// stw times runtime.GOMAXPROCS calls (each a stop-the-world) beside 4 hogs
// on 2 Ps; each call down to 1 P first waits until a hog holds the other.
func stw(scenario string, nhogs, calls int) {
	runtime.GOMAXPROCS(2)
	var wg sync.WaitGroup
	start := time.Now()
	startMonitor()
	startHogs(&wg, nhogs, hogSpin)
	// Spin, without calls (so without cooperative preemption points), until
	// a hog runs on the other P. Otherwise the first calls could stop the
	// world before any hog holds a P, and would time nothing.
	spinStart := time.Now()
	for running := 0; running == 0 && atomic.LoadUint32(stop) == 0; {
		for i := 0; i < nhogs; i++ {
			if atomic.LoadUint64(&counters[i].n) != 0 {
				running++
			}
		}
	}
	spin := time.Since(spinStart)
	var us []float64
	var lateBegin, lateEnd time.Duration
	for i := 0; i < calls; i++ {
		n := 1 + i%2 // 1, 2, 1, 2, ...: never the current value, never more Ps than CPUs
		if n == 1 && i > 0 {
			// As before the first call: a hog must hold the other P, so
			// that the stop has a spinning hog to preempt.
			waitHogElsewhere(nhogs)
		}
		t0 := time.Now()
		runtime.GOMAXPROCS(n)
		t1 := time.Now()
		if atomic.LoadUint32(stop) != 0 {
			// The monitor stopped the hogs before this call returned:
			// the stop-the-world only got through because they quit.
			lateBegin, lateEnd = t0.Sub(start), t1.Sub(start)
			break
		}
		us = append(us, float64(t1.Sub(t0))/1e3)
	}
	C.monitor_cancel() // no-op if the deadline already expired
	wg.Wait()
	expired := C.monitor_join() != 0
	elapsed := time.Since(start)
	runtime.GOMAXPROCS(2)

	comment("%s: %d hogs, GOMAXPROCS alternating 1/2, %d calls wanted, ended after %.3f s",
		scenario, nhogs, calls, elapsed.Seconds())
	comment("%s: waited %.0f us for a hog to run on the other P", scenario, float64(spin)/1e3)
	result(scenario, "completed", "%d", len(us))
	if len(us) < calls {
		result(scenario, "status", "did-not-complete-within-%gs", duration.Seconds())
		comment("%s: did not complete within %g s", scenario, duration.Seconds())
		if lateEnd > 0 {
			comment("%s: call %d began at %.3f s and returned at %.3f s, only after the monitor stopped the hogs",
				scenario, len(us)+1, lateBegin.Seconds(), lateEnd.Seconds())
		}
	} else {
		result(scenario, "status", "completed")
	}
	if expired && len(us) == calls {
		comment("%s: all calls completed but the monitor also expired", scenario)
	}
	if len(us) > 0 {
		sorted := append([]float64(nil), us...)
		sort.Float64s(sorted)
		med := sorted[len(sorted)/2]
		if len(sorted)%2 == 0 {
			med = (sorted[len(sorted)/2-1] + med) / 2
		}
		result(scenario, "median_us", "%.1f", med)
		result(scenario, "worst_us", "%.1f", sorted[len(sorted)-1])
		parts := make([]string, len(us))
		for i, v := range us {
			parts[i] = fmt.Sprintf("%.0f", v)
		}
		comment("%s: per-call us: %s", scenario, strings.Join(parts, " "))
	}
	result(scenario, "elapsed_ms", "%.0f", float64(elapsed)/1e6)
}

func main() {
	only := flag.String("only", "", "comma-separated scenarios to run (a,b,c,d; default all)")
	flag.DurationVar(&duration, "d", duration, "duration of each scenario")
	flag.Parse()
	if strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff=1") {
		mode = "asyncpreemptoff"
	}
	want := func(s string) bool {
		if *only == "" {
			return true
		}
		for _, f := range strings.Split(*only, ",") {
			if f == s {
				return true
			}
		}
		return false
	}

	debug.SetGCPercent(-1)
	comment("%s, GODEBUG=%q, NumCPU=%d, duration %v", runtime.Version(), os.Getenv("GODEBUG"), runtime.NumCPU(), duration)
	if want("a") {
		fairness("a_4hogs_1p", 4, 1, hogSpin)
		fairness("a_8hogs_2p", 8, 2, hogSpin)
		fairness("a_3hogs_2p", 3, 2, hogSpin)
	}
	if want("b") {
		ticker("b0_nohogs_1p", 0)
		ticker("b_4hogs_1p", 4)
	}
	if want("c") {
		stw("c_4hogs_2p", 4, 20)
	}
	if want("d") {
		fairness("d_call_4hogs_1p", 4, 1, hogCall)
		fairness("d_leafcall_4hogs_1p", 4, 1, hogCallLeaf)
	}
}
