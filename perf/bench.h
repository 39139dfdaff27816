/*
 * bench.h: what the weft benchmark programs share: the outcome a benchmark returns, the
 * die-on-error wrappers, the clock, and the command line and result line, so that every
 * program reads `PROG BENCH [--workers N] [--div D]` and prints the same fields as the
 * peers: bench=NAME impl=weft workers=N ns_per_op=X ops=N total_ms=X peak_rss_kib=N answer=N
 */
#ifndef WEFT_PERF_BENCH_H
#define WEFT_PERF_BENCH_H

#include <weft.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct outcome {
    uint64_t ops;      /* the operations ns_per_op divides by */
    uint64_t answer;   /* a checkable result (a count or a sum), 0 where there is none */
    uint64_t expected; /* what answer must be */
};

static const char *bench_prog = "bench"; /* the program's name, for messages */

static void fatal(const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", bench_prog, what, weft_strerror(err < 0 ? err : -err));
    fflush(stderr);
    _Exit(1);
}

static inline weft_future *spawn_or_die(weft_fn fn, void *arg)
{
    weft_future *f = weft_spawn(fn, arg);
    if (!f) fatal("weft_spawn", errno);
    return f;
}

static inline void *await_or_die(weft_future *f)
{
    void *result = NULL;
    int err = weft_await(f, &result);
    if (err) fatal("weft_await", err);
    return result;
}

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

struct sizes; /* each program's own sizes, made by its sizes_for(div) */

struct bench {
    const char *name;
    struct outcome (*run)(const struct sizes *sz);
};

static void bench_usage(const struct bench *benches, size_t n)
{
    fprintf(stderr, "usage: %s BENCH [--workers N] [--div D]\n  BENCH:", bench_prog);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %s", benches[i].name);
    fprintf(stderr, "\n");
    exit(2);
}

static unsigned long bench_positive(const char *s, unsigned long max, const struct bench *benches,
                                    size_t n)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v == 0 || v > max) bench_usage(benches, n);
    return v;
}

struct bench_run {
    const struct bench *bench;
    const struct sizes *sizes;
    struct outcome outcome;
    double ns;
    unsigned workers;
};

/* The main task: time one benchmark from inside the runtime (start-up and shutdown are not
 * counted). */
static void *bench_task(void *arg)
{
    struct bench_run *r = arg;
    r->workers = weft_workers();
    double t0 = now_ns();
    r->outcome = r->bench->run(r->sizes);
    r->ns = now_ns() - t0;
    return NULL;
}

/* Check the answer and print the result line: the program's exit status. */
static int bench_report(const char *name, unsigned workers, double ns, struct outcome o)
{
    if (o.answer != o.expected) {
        fprintf(stderr, "%s: %s: wrong answer %" PRIu64 ", expected %" PRIu64 "\n", bench_prog,
                name, o.answer, o.expected);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("bench=%s impl=weft workers=%u ns_per_op=%.1f ops=%" PRIu64 " total_ms=%.1f "
           "peak_rss_kib=%ld answer=%" PRIu64 "\n",
           name, workers, ns / (double)o.ops, o.ops, ns / 1e6, ru.ru_maxrss, o.answer);
    return 0;
}

/* A benchmark program's main: `PROG BENCH [--workers N] [--div D]` (div at most max_div). */
static int bench_main(int argc, char **argv, const struct bench *benches, size_t n,
                      unsigned long max_div, const struct sizes *(*sizes_for)(size_t div))
{
    weft_config cfg;
    weft_config_default(&cfg);
    size_t div = 1, which = n;
    if (argc >= 2)
        for (size_t i = 0; i < n; i++)
            if (strcmp(argv[1], benches[i].name) == 0) which = i;
    if (which == n) bench_usage(benches, n);
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) bench_usage(benches, n);
        if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)bench_positive(argv[i + 1], 1000000, benches, n);
        else if (strcmp(argv[i], "--div") == 0)
            div = bench_positive(argv[i + 1], max_div, benches, n);
        else
            bench_usage(benches, n);
    }
    struct bench_run r = {.bench = &benches[which], .sizes = sizes_for(div)};
    int err = weft_run(bench_task, &r, &cfg, NULL);
    if (err) fatal("weft_run", err);
    return bench_report(r.bench->name, r.workers, r.ns, r.outcome);
}

#endif
