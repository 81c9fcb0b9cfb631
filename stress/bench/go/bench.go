// SPDX-FileCopyrightText: the urgent authors
// SPDX-License-Identifier: MIT

// bench.go — the Go twins of urgent's benchmark workloads.
//
// urgent promises Go's scheduler in C, so Go itself is the yardstick: every
// workload here has the same name, the same shape and the same N as in
// bench_urgent.c, and prints the same "RESULT <key> <value>" lines, so that
// stress/bench/run.sh can set the figures side by side. Only the standard
// library is used, so that a bare "go build" of this one file is enough.
//
// Each workload runs in a fresh child process (this binary re-executed with
// -child NAME): memory figures must not see Gs and stacks left over by an
// earlier workload (Go never frees G structs), and timings must not depend on
// which workload happened to warm the heap before them.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	quick   = flag.Bool("quick", false, "about 10x smaller N (CI smoke runs)")
	only    = flag.String("only", "", "run only workloads with a key starting with this prefix")
	reps    = flag.Int("reps", 0, "timed repetitions per workload (0: 5, or 3 with -quick)")
	child   = flag.String("child", "", "internal: run one workload in this process")
	timeout = flag.Int("timeout", 180, "limit in seconds for one workload's child process")
)

// scale shrinks N for -quick; the shapes stay the same so that a smoke run
// still exercises every path.
func scale(n int) int {
	if *quick {
		return n / 10
	}
	return n
}

func nreps() int {
	if *reps > 0 {
		return *reps
	}
	if *quick {
		return 3
	}
	return 5
}

func result(key string, v float64) {
	fmt.Printf("RESULT %s %s\n", key, strconv.FormatFloat(v, 'f', 2, 64))
}

func comment(format string, a ...interface{}) {
	fmt.Printf("# "+format+"\n", a...)
}

// median of a small sample; the VM is noisy, so a single run (or a mean,
// which a single preempted run drags) would say more about the neighbours
// than about the scheduler.
func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// timed runs one warm-up round (page faults and free lists are not what is
// being measured) and then nreps() rounds, and returns their median.
func timed(name string, round func() float64) float64 {
	round()
	xs := make([]float64, 0, nreps())
	for i := 0; i < nreps(); i++ {
		xs = append(xs, round())
	}
	comment("%s rounds %s", name, fmtList(xs))
	return median(xs)
}

func fmtList(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strings.Join(parts, " ")
}

// rssBytes reads VmRSS through /proc/self/statm, the same source the C
// programs use, so that all three columns count pages the same way.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}

// ---------------------------------------------------------------------------
// yield_ns: two goroutines on one P handing the P back and forth.

func benchYield() {
	runtime.GOMAXPROCS(1)
	k := scale(1000000)
	v := timed("yield_ns", func() float64 {
		var wg sync.WaitGroup
		wg.Add(2)
		t0 := time.Now()
		for g := 0; g < 2; g++ {
			go func() {
				for i := 0; i < k; i++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		return float64(time.Since(t0).Nanoseconds()) / float64(2*k)
	})
	result("yield_ns", v)
}

// ---------------------------------------------------------------------------
// spawn_ns: the whole life of a trivial goroutine, amortised over 10^6.

func benchSpawn() {
	runtime.GOMAXPROCS(1)
	n := scale(1000000)
	v := timed("spawn_ns", func() float64 {
		var wg sync.WaitGroup
		wg.Add(n)
		t0 := time.Now()
		for i := 0; i < n; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
		return float64(time.Since(t0).Nanoseconds()) / float64(n)
	})
	result("spawn_ns", v)
}

// ---------------------------------------------------------------------------
// chan_rt_ns: ping-pong over unbuffered channels on one P; one round trip is
// two rendezvous and two switches.

func benchChan() {
	runtime.GOMAXPROCS(1)
	k := scale(500000)
	v := timed("chan_rt_ns", func() float64 {
		ping := make(chan int)
		pong := make(chan int)
		go func() {
			for x := range ping {
				pong <- x + 1
			}
			close(pong)
		}()
		t0 := time.Now()
		for i := 0; i < k; i++ {
			ping <- i
			if <-pong != i+1 {
				panic("chan_rt: wrong value")
			}
		}
		el := time.Since(t0)
		close(ping)
		<-pong
		return float64(el.Nanoseconds()) / float64(k)
	})
	result("chan_rt_ns", v)
}

// ---------------------------------------------------------------------------
// parked_bytes: what one goroutine blocked in a channel receive costs.

func benchParked() {
	runtime.GOMAXPROCS(1)
	n := scale(100000)
	ch := make(chan int)
	var ready, exit sync.WaitGroup
	ready.Add(n)
	exit.Add(n)
	// GC at both points so that the delta is live memory, not garbage that
	// happens not to have been collected yet.
	runtime.GC()
	r0 := rssBytes()
	for i := 0; i < n; i++ {
		go func() {
			ready.Done()
			<-ch
			exit.Done()
		}()
	}
	ready.Wait()
	runtime.GC()
	r1 := rssBytes()
	close(ch)
	exit.Wait()
	comment("parked_bytes N=%d rss_before=%d rss_after=%d", n, r0, r1)
	result("parked_bytes", float64(r1-r0)/float64(n))
}

// ---------------------------------------------------------------------------
// queued_bytes: what a spawned goroutine costs before it first runs.

func benchQueued() {
	runtime.GOMAXPROCS(1)
	n := scale(1000000)
	// No collection may run between the two readings: a GC cycle would
	// both free memory and hand the P to the queued goroutines.
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	gate := make(chan struct{})
	var measured, ran int32
	var exit sync.WaitGroup
	exit.Add(n)
	runtime.GC()
	r0 := rssBytes()
	for i := 0; i < n; i++ {
		// sysmon preempts main after 10 ms, which lets queued goroutines
		// run before the reading; those must not exit (their G would be
		// recycled for the next spawn and hide its cost), so they park on
		// the gate. A parked goroutine differs from a queued one only by a
		// sudog: its 2 KiB stack was allocated when it was spawned.
		go func() {
			atomic.AddInt32(&ran, 1)
			if atomic.LoadInt32(&measured) == 0 {
				<-gate
			}
			exit.Done()
		}()
	}
	r1 := rssBytes()
	atomic.StoreInt32(&measured, 1)
	comment("queued_bytes N=%d ran_before_reading=%d rss_before=%d rss_after=%d",
		n, atomic.LoadInt32(&ran), r0, r1)
	close(gate)
	exit.Wait()
	result("queued_bytes", float64(r1-r0)/float64(n))
}

// ---------------------------------------------------------------------------
// million_ms / million_parked_ms: 10^6 goroutines alive at once, on every P.

func benchMillion() {
	n := scale(1000000)
	comment("million N=%d procs=%d", n, runtime.GOMAXPROCS(0))
	var created, parked []float64
	// No warm-up round: the first round (cold heap) is a legitimate part of
	// the picture and is shown in the comment; the median is over all.
	for r := 0; r < 3; r++ {
		gate := make(chan struct{})
		var ready, exit sync.WaitGroup
		ready.Add(n)
		exit.Add(n)
		t0 := time.Now()
		for i := 0; i < n; i++ {
			go func() {
				ready.Done()
				<-gate
				exit.Done()
			}()
		}
		t1 := time.Since(t0)
		ready.Wait()
		t2 := time.Since(t0)
		close(gate)
		exit.Wait()
		created = append(created, float64(t1.Microseconds())/1000)
		parked = append(parked, float64(t2.Microseconds())/1000)
	}
	comment("million_ms rounds %s", fmtList(created))
	comment("million_parked_ms rounds %s", fmtList(parked))
	result("million_ms", median(created))
	result("million_parked_ms", median(parked))
	result("million_cold_ms", created[0])
	result("million_parked_cold_ms", parked[0])
}

// ---------------------------------------------------------------------------
// fib: fork-join with a goroutine and a WaitGroup per call down to n = 10,
// so that the figure is dominated by spawn/join, not by arithmetic.

const fibCut = 10

// fibArg is fib's N: 32, or 27 with -quick (about 10x less work); fibWant
// holds the answers, so that a wrong sum fails loudly instead of timing fast.
func fibArg() int {
	if *quick {
		return 27
	}
	return 32
}

var fibWant = map[int]int{27: 196418, 32: 2178309}

func fibSeq(n int) int {
	if n < 2 {
		return n
	}
	return fibSeq(n-1) + fibSeq(n-2)
}

func fibPar(n int) int {
	if n < fibCut {
		return fibSeq(n)
	}
	var wg sync.WaitGroup
	var a, b int
	sub := func(k int, out *int) {
		if k < fibCut {
			*out = fibSeq(k)
			return
		}
		wg.Add(1)
		go func() {
			*out = fibPar(k)
			wg.Done()
		}()
	}
	sub(n-1, &a)
	sub(n-2, &b)
	wg.Wait()
	return a + b
}

func fibRound() float64 {
	t0 := time.Now()
	if r := fibPar(fibArg()); r != fibWant[fibArg()] {
		panic("fib: wrong result")
	}
	return float64(time.Since(t0).Microseconds()) / 1000
}

func benchFib() {
	comment("fib(%d), a goroutine per call for n >= %d", fibArg(), fibCut)
	runtime.GOMAXPROCS(1)
	f1 := timed("fib1_ms", fibRound)
	if runtime.NumCPU() < 2 {
		comment("fib2: only one CPU here, the 2-proc figure is meaningless")
	}
	runtime.GOMAXPROCS(2)
	f2 := timed("fib2_ms", fibRound)
	result("fib1_ms", f1)
	result("fib2_ms", f2)
	result("fib_speedup", f1/f2)
}

// ---------------------------------------------------------------------------

type workload struct {
	name string
	keys []string
	run  func()
}

var workloads = []workload{
	{"yield", []string{"yield_ns"}, benchYield},
	{"spawn", []string{"spawn_ns"}, benchSpawn},
	{"chan_rt", []string{"chan_rt_ns"}, benchChan},
	{"parked", []string{"parked_bytes"}, benchParked},
	{"queued", []string{"queued_bytes"}, benchQueued},
	{"million", []string{"million_ms", "million_parked_ms", "million_cold_ms", "million_parked_cold_ms"}, benchMillion},
	{"fib", []string{"fib1_ms", "fib2_ms", "fib_speedup"}, benchFib},
}

func (w workload) selected() bool {
	for _, k := range w.keys {
		if strings.HasPrefix(k, *only) {
			return true
		}
	}
	return false
}

// runChild runs one workload in a fresh copy of this binary, forwards its
// output, and fills in "n/a" for every key it did not deliver, so that a
// crash or a hang costs one row, not the whole table.
func runChild(self string, w workload) {
	args := []string{"-child", w.name}
	if *quick {
		args = append(args, "-quick")
	}
	if *reps > 0 {
		args = append(args, "-reps", strconv.Itoa(*reps))
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		comment("%s: cannot start child: %v", w.name, err)
		for _, k := range w.keys {
			fmt.Printf("RESULT %s n/a\n", k)
		}
		return
	}
	timer := time.AfterFunc(time.Duration(*timeout)*time.Second, func() { cmd.Process.Kill() })
	seen := map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		fmt.Println(line)
		if f := strings.Fields(line); len(f) == 3 && f[0] == "RESULT" {
			seen[f[1]] = true
		}
	}
	err = cmd.Wait()
	if !timer.Stop() {
		comment("%s: killed after %d s", w.name, *timeout)
	} else if err != nil {
		comment("%s: child failed: %v", w.name, err)
	}
	for _, k := range w.keys {
		if !seen[k] {
			fmt.Printf("RESULT %s n/a\n", k)
		}
	}
}

func main() {
	flag.Parse()
	if *child != "" {
		for _, w := range workloads {
			if w.name == *child {
				w.run()
				return
			}
		}
		fmt.Fprintf(os.Stderr, "bench: unknown workload %q\n", *child)
		os.Exit(2)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: cannot find own executable: %v\n", err)
		os.Exit(1)
	}
	any := false
	for _, w := range workloads {
		any = any || w.selected()
	}
	if !any {
		fmt.Fprintf(os.Stderr, "bench: no workload has a key starting with %q\n", *only)
		os.Exit(2)
	}
	comment("go %s %s/%s NumCPU=%d quick=%v", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), *quick)
	for _, w := range workloads {
		if w.selected() {
			runChild(self, w)
		}
	}
}
