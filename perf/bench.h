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

static void bench_usage(const char *const *names, size_t n)
{
    fprintf(stderr, "usage: %s BENCH [--workers N] [--div D]\n  BENCH:", bench_prog);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "\n");
    exit(2);
}

static unsigned long bench_positive(const char *s, unsigned long max, const char *const *names,
                                    size_t n)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v == 0 || v > max) bench_usage(names, n);
    return v;
}

/* Parse the command line: the index of BENCH in names[]; --workers into cfg, --div (at most
 * max_div) into *div. Exits with the usage on anything else. */
static size_t bench_parse(int argc, char **argv, const char *const *names, size_t n,
                          weft_config *cfg, size_t *div, unsigned long max_div)
{
    size_t which = n;
    if (argc >= 2)
        for (size_t i = 0; i < n; i++)
            if (strcmp(argv[1], names[i]) == 0) which = i;
    if (which == n) bench_usage(names, n);
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) bench_usage(names, n);
        if (strcmp(argv[i], "--workers") == 0)
            cfg->workers = (unsigned)bench_positive(argv[i + 1], 1000000, names, n);
        else if (strcmp(argv[i], "--div") == 0)
            *div = bench_positive(argv[i + 1], max_div, names, n);
        else
            bench_usage(names, n);
    }
    return which;
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

#endif
