/*
 * testutil: what several tests share. WEFT_TEST_SCALE (set by tools/test.sh for the
 * sanitizer and valgrind runs) divides the sizes of the big loops, so slow tools run
 * the same checks on fewer items. rng_next: the tests' pseudo-random numbers; ON_VALGRIND():
 * whether the test runs under valgrind.
 *
 * Also: a watchdog that turns a hang into a failure; the monotonic clock and a sleep that
 * need no runtime (mono, nap), so a foreign thread waits without depending on weft;
 * polling for a condition (poll_until, wait_count); configurations and runtimes
 * (config_with, default_workers, rt_new_or_bail); tasks run from a foreign thread
 * (run_in) or spawned on a given worker (spawn_at, run_pinned_pair). Everything is static
 * inline or a macro, so a test compiles only what it uses.
 */
#ifndef WEFT_TESTUTIL_H
#define WEFT_TESTUTIL_H

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "weft.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ON_VALGRIND() RUNNING_ON_VALGRIND
#else
#define ON_VALGRIND() 0
#endif

static inline long scaled(long n)
{
    const char *s = getenv("WEFT_TEST_SCALE");
    long div = s ? atol(s) : 1;
    if (div < 1) div = 1;
    return n / div > 0 ? n / div : 1;
}

/* A pseudo-random number (xorshift64*) from *state, which must start non-zero. */
static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- a watchdog ------------------------------------------------------------------------ */

enum { WATCHDOG_MSG_MAX = 128 };

static inline char *watchdog_msg_(void)
{
    static char msg[WATCHDOG_MSG_MAX];
    return msg;
}

static inline void watchdog_fire_(int sig)
{
    (void)sig;
    const char *msg = watchdog_msg_();
    ssize_t n = write(STDOUT_FILENO, msg, strlen(msg));
    (void)n;
    _exit(3);
}

/* After `seconds`, print a Bail out! line naming `test` and exit 3: a wait that never ends
 * fails the test instead of hanging it. */
static inline void watchdog_arm(const char *test, unsigned seconds)
{
    snprintf(watchdog_msg_(), WATCHDOG_MSG_MAX,
             "Bail out! %s: watchdog expired (a wait never ended)\n", test);
    signal(SIGALRM, watchdog_fire_);
    alarm(seconds);
}

/* ---- time and polling ------------------------------------------------------------------ */

static inline double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void nap(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Poll until `cond` holds or `seconds` pass by the clock now_fn(), sleeping sleep_fn(step)
 * between looks; 1 if it held. In a task: weft_now and weft_sleep; on a plain thread: mono
 * and nap. */
#define poll_until(cond, seconds, now_fn, sleep_fn, step)                                          \
    ({                                                                                             \
        double until_ = now_fn() + (seconds);                                                      \
        int held_;                                                                                 \
        while (!(held_ = !!(cond)) && now_fn() < until_) sleep_fn(step);                           \
        held_;                                                                                     \
    })

/* From a plain thread: poll until *v >= target or `seconds` pass; 1 if reached. */
static inline int wait_count(atomic_int *v, int target, double seconds)
{
    return poll_until(atomic_load(v) >= target, seconds, mono, nap, 0.0005);
}

/* ---- runtimes and tasks ---------------------------------------------------------------- */

/* The default configuration with `workers` workers. */
static inline weft_config config_with(unsigned workers)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = workers;
    return cfg;
}

/* The workers WEFT_WORKERS asks for; 4 where it is unset (rather than one per core). */
static inline unsigned default_workers(void)
{
    weft_config cfg;
    weft_config_default(&cfg);
    return cfg.workers ? cfg.workers : 4;
}

/* A runtime of `workers` workers, or a Bail out! where none can be made. */
static inline weft_rt *rt_new_or_bail(unsigned workers)
{
    weft_config cfg = config_with(workers);
    weft_rt *rt = weft_rt_new(&cfg);
    if (!rt) BAIL_OUT("weft_rt_new: %s", strerror(errno));
    return rt;
}

/* Run fn as a task of rt and wait for it from this (foreign) thread; its error. */
static inline int run_in(weft_rt *rt, weft_fn fn, void *arg, void **result)
{
    weft_future *t = weft_rt_submit(rt, fn, arg);
    if (!t) return -errno;
    int r = weft_await(t, result);
    weft_future_release(t);
    return r;
}

/* From a task: spawn fn on `worker`, pinned there or free to move. */
static inline weft_future *spawn_at(weft_fn fn, void *arg, int worker, int pinned)
{
    weft_spawn_opts o = {.name = NULL, .stack_size = 0, .worker = worker, .pinned = pinned};
    return weft_spawn_ex(fn, arg, &o);
}

/* From a task: run fa(arg) pinned to worker wa and fb(arg) pinned to wb, and wait for both. */
static inline void run_pinned_pair(weft_fn fa, weft_fn fb, void *arg, int wa, int wb)
{
    weft_future *a = spawn_at(fa, arg, wa, 1);
    weft_future *b = spawn_at(fb, arg, wb, 1);
    weft_await(a, NULL);
    weft_await(b, NULL);
    weft_future_release(a);
    weft_future_release(b);
}

/* A task body that makes a plain future in the task's runtime and returns it. */
static inline void *make_future(void *arg)
{
    (void)arg;
    return weft_future_new();
}

#endif
