/*
 * bench_switch: the cost of one coroutine context switch (coro_switch), measured as a
 * ping-pong between the thread's own context and one coroutine: ns per switch is a round
 * trip divided by two. Prints the best of several runs, since this machine is shared.
 *
 *   bench_switch [round_trips]     (default 10,000,000)
 *
 * Uses only runtime/coro.h; the stack is mmap'd directly.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "../runtime/coro.h"

enum { STACK_SIZE = 64 * 1024, RUNS = 5 };

static coro thread_ctx, bench_ctx;

static void bounce(void *arg)
{
    (void)arg;
    for (;;) coro_switch(&bench_ctx, &thread_ctx);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long round_trips = argc > 1 ? atol(argv[1]) : 10000000;
    if (round_trips <= 0) {
        fprintf(stderr, "usage: %s [round_trips > 0]\n", argv[0]);
        return 2;
    }
    void *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    coro_init_thread(&thread_ctx);
    if (coro_init(&bench_ctx, stack, STACK_SIZE, bounce, NULL) != 0) {
        fprintf(stderr, "coro_init failed\n");
        return 1;
    }
    coro_switch(&thread_ctx, &bench_ctx); /* warm up: the first entry */

    double best = 0;
    for (int run = 0; run < RUNS; run++) {
        double start = now_ns();
        for (long i = 0; i < round_trips; i++) coro_switch(&thread_ctx, &bench_ctx);
        double per_switch = (now_ns() - start) / (2.0 * (double)round_trips);
        if (run == 0 || per_switch < best) best = per_switch;
    }
    printf("coro_switch: %.2f ns per switch (best of %d runs of %ld round trips)\n", best, RUNS,
           round_trips);

    coro_destroy(&bench_ctx); /* bounce never exits */
    coro_destroy_thread(&thread_ctx);
    munmap(stack, STACK_SIZE);
    return 0;
}
