// Go peer of perf/bench_core.c and perf/bench_sync.c: the same benchmarks, the same sizes,
// one output line.
//
// usage: bench_go BENCH [--workers N] [--div D]
//
//	BENCH: spawn_many yield_many ping_pong chained_spawn skynet fib
//	       mutex_contention queue_ping_pong queue_throughput
//	--workers N: GOMAXPROCS (default 2)
//	--div D: divide the sizes by D (perf/run.sh --quick passes 10)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type sizes struct {
	spawnMany, yieldTasks, yieldCount, ppPairs, ppTrips, chained int
	skynetLeaves                                                 int64
	fibN                                                         int
	mutexTasks, mutexIters                                       int
	tpProducers, tpConsumers, tpItems, tpCapacity                int
}

func makeSizes(div int) sizes {
	leaves := int64(1000000)
	for d := div; d >= 10 && leaves > 10; d /= 10 {
		leaves /= 10
	}
	fibN := 30
	if div > 1 {
		fibN = 25
	}
	return sizes{
		spawnMany:    1000000 / div,
		yieldTasks:   1000,
		yieldCount:   10000 / div,
		ppPairs:      1000,
		ppTrips:      5000 / div,
		chained:      4000000 / div,
		skynetLeaves: leaves,
		fibN:         fibN,
		mutexTasks:   1000,
		mutexIters:   20000 / div,
		tpProducers:  4,
		tpConsumers:  4,
		tpItems:      1000000 / div,
		tpCapacity:   1024,
	}
}

func spawnMany(n int) (int64, int64) {
	var count int64
	done := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			if atomic.AddInt64(&count, 1) == int64(n) {
				close(done)
			}
		}()
	}
	<-done
	return int64(n), atomic.LoadInt64(&count)
}

func yieldMany(tasks, count int) (int64, int64) {
	var wg sync.WaitGroup
	wg.Add(tasks)
	for i := 0; i < tasks; i++ {
		go func() {
			for j := 0; j < count; j++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return int64(tasks * count), 0
}

// pingPong over channels of the given capacity: 0 (unbuffered) for ping_pong, 1 for
// queue_ping_pong (like weft_queue_new(1): a send does not wait for the receiver). The
// answer counts the numbers that came back unchanged.
func pingPong(pairs, trips, capacity int) (int64, int64) {
	var wg sync.WaitGroup
	var echoed int64
	wg.Add(2 * pairs)
	for p := 0; p < pairs; p++ {
		ping := make(chan int, capacity)
		pong := make(chan int, capacity)
		go func() {
			n := int64(0)
			for i := 1; i <= trips; i++ {
				ping <- i
				if <-pong == i {
					n++
				}
			}
			atomic.AddInt64(&echoed, n)
			wg.Done()
		}()
		go func() {
			for i := 0; i < trips; i++ {
				pong <- <-ping
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return int64(pairs * trips), echoed
}

// mutexContention: tasks x iters Lock / counter++ / Unlock on one sync.Mutex; the plain
// counter must end at tasks x iters.
func mutexContention(tasks, iters int) (int64, int64) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	counter := int64(0)
	wg.Add(tasks)
	for t := 0; t < tasks; t++ {
		go func() {
			for i := 0; i < iters; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return int64(tasks * iters), counter
}

// queueThroughput: producers put 1..items (producer p: p+1, p+1+P, ...) on one channel of
// the given capacity; consumers receive until it is closed (after the last send) and send
// their sums, which add up to items (items + 1) / 2.
func queueThroughput(producers, consumers, items, capacity int) (int64, int64) {
	ch := make(chan int64, capacity)
	sums := make(chan int64, consumers)
	var wg sync.WaitGroup
	wg.Add(producers)
	for c := 0; c < consumers; c++ {
		go func() {
			var sum int64
			for v := range ch {
				sum += v
			}
			sums <- sum
		}()
	}
	for p := 0; p < producers; p++ {
		go func(first int) {
			for v := first; v <= items; v += producers {
				ch <- int64(v)
			}
			wg.Done()
		}(p + 1)
	}
	wg.Wait()
	close(ch)
	var total int64
	for c := 0; c < consumers; c++ {
		total += <-sums
	}
	return int64(items), total
}

func chain(left int, done chan struct{}) {
	if left == 0 {
		close(done)
		return
	}
	go chain(left-1, done)
}

func chainedSpawn(n int) (int64, int64) {
	done := make(chan struct{})
	chain(n, done)
	<-done
	return int64(n), 0
}

func skynet(out chan<- int64, num, size int64) {
	if size == 1 {
		out <- num
		return
	}
	child := size / 10
	results := make(chan int64, 10)
	for i := int64(0); i < 10; i++ {
		go skynet(results, num+i*child, child)
	}
	var sum int64
	for i := 0; i < 10; i++ {
		sum += <-results
	}
	out <- sum
}

func skynetTasks(leaves int64) int64 {
	var total int64
	for level := leaves; level >= 1; level /= 10 {
		total += level
	}
	return total
}

func fib(n int) int64 {
	if n < 2 {
		return int64(n)
	}
	child := make(chan int64, 1)
	go func() { child <- fib(n - 1) }()
	b := fib(n - 2)
	return <-child + b
}

func fibSpawns(n int) int64 {
	a, b := int64(0), int64(1) // calls with n >= 2 = fib(n + 1) - 1
	for i := 0; i < n+1; i++ {
		a, b = b, a+b
	}
	return a - 1
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: bench_go BENCH [--workers N] [--div D]")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	bench := os.Args[1]
	workers, div := 2, 1
	for i := 2; i < len(os.Args); i += 2 {
		if i+1 >= len(os.Args) {
			usage()
		}
		v, err := strconv.Atoi(os.Args[i+1])
		if err != nil || v < 1 {
			usage()
		}
		switch os.Args[i] {
		case "--workers":
			workers = v
		case "--div":
			div = v
		default:
			usage()
		}
	}
	runtime.GOMAXPROCS(workers)
	sz := makeSizes(div)

	var ops, answer int64
	t0 := time.Now()
	switch bench {
	case "spawn_many":
		ops, answer = spawnMany(sz.spawnMany)
	case "yield_many":
		ops, answer = yieldMany(sz.yieldTasks, sz.yieldCount)
	case "ping_pong":
		ops, _ = pingPong(sz.ppPairs, sz.ppTrips, 0) // bench_core reports no answer here
	case "chained_spawn":
		ops, answer = chainedSpawn(sz.chained)
	case "skynet":
		out := make(chan int64, 1)
		go skynet(out, 0, sz.skynetLeaves)
		ops, answer = skynetTasks(sz.skynetLeaves), <-out
	case "fib":
		ops, answer = fibSpawns(sz.fibN), fib(sz.fibN)
	case "mutex_contention":
		ops, answer = mutexContention(sz.mutexTasks, sz.mutexIters)
	case "queue_ping_pong":
		ops, answer = pingPong(sz.ppPairs, sz.ppTrips, 1)
	case "queue_throughput":
		ops, answer = queueThroughput(sz.tpProducers, sz.tpConsumers, sz.tpItems, sz.tpCapacity)
	default:
		usage()
	}
	ns := float64(time.Since(t0).Nanoseconds())

	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("bench=%s impl=go workers=%d ns_per_op=%.1f ops=%d total_ms=%.1f peak_rss_kib=%d answer=%d\n",
		bench, workers, ns/float64(ops), ops, ns/1e6, ru.Maxrss, answer)
}
