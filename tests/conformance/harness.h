/*
 * harness: what the conformance tests share. A test's scenarios run as one task pinned to
 * worker 0, on a runtime of one worker and then of four (run_scenarios), under a watchdog.
 *
 * Handshakes, not timing: spawn_on(fn, arg, k) pins a task to worker k (modulo the workers
 * there are), and settle(k) awaits a probe pinned behind it on k's FIFO, so every task
 * pinned to k that was spawned or woken has run up to its next suspension when settle
 * returns. eventually(cond) polls a condition for up to 20 s. Plain futures serve as gates
 * that a scenario completes in the order it wants (gate_child waits for one), and a log of
 * ids records the order in which bodies got through.
 */
#ifndef WEFT_CONFORMANCE_HARNESS_H
#define WEFT_CONFORMANCE_HARNESS_H

#include <stdatomic.h>
#include <stdint.h>

#include "tap.h"
#include "testutil.h"
#include "weft.h"

/* ---- pinned tasks and handshakes ------------------------------------------------------- */

static inline int on(int k)
{
    return k % (int)weft_workers();
}

static inline weft_future *spawn_on(weft_fn fn, void *arg, int k)
{
    return spawn_at(fn, arg, on(k), 1);
}

static inline void *noop(void *arg)
{
    return arg;
}

/* Every task pinned to worker k that we spawned or woke has run up to its next suspension. */
static inline void settle(int k)
{
    weft_future *f = spawn_on(noop, NULL, k);
    weft_await(f, NULL);
    weft_future_release(f);
}

/* spawn_on, then settle(k): the new task has run up to its first suspension. */
static inline weft_future *spawn_settled(weft_fn fn, void *arg, int k)
{
    weft_future *f = spawn_on(fn, arg, k);
    settle(k);
    return f;
}

/* Poll until `cond` holds; false after 20 s. */
#define eventually(cond) poll_until(cond, 20.0, weft_now, weft_sleep, 0.0005)

/* A body's int result (0 or -errno), or the task's own error; releases f. */
static inline intptr_t outcome(weft_future *f)
{
    void *r = NULL;
    int e = weft_await(f, &r);
    weft_future_release(f);
    return e ? e : (intptr_t)r;
}

/* ---- callbacks ------------------------------------------------------------------------- */

typedef struct callback_run_ {
    void (*cb)(void *);
    void *arg;
    atomic_int ran;
} callback_run_;

static inline void callback_run_body_(void *p)
{
    callback_run_ *c = p;
    c->cb(c->arg);
    atomic_store(&c->ran, 1);
}

/* From a task: run cb(arg) as a callback on this worker, outside any task (where a wait that
 * would block is -EPERM), and wait until it ran. One check, described by `what`. */
static inline void run_callback(void (*cb)(void *), void *arg, const char *what)
{
    static callback_run_ c; /* outlives us if the callback never runs */
    c.cb = cb;
    c.arg = arg;
    atomic_store(&c.ran, 0);
    weft_call_soon(callback_run_body_, &c);
    ok(eventually(atomic_load(&c.ran)), "%s", what);
}

/* ---- gates: plain futures a scenario completes ----------------------------------------- */

static inline void new_futures(weft_future **fs, int n)
{
    for (int i = 0; i < n; i++) fs[i] = weft_future_new();
}

static inline void release_all(weft_future **fs, int n)
{
    for (int i = 0; i < n; i++) weft_future_release(fs[i]);
}

/* A child that waits for its gate (a plain future) and ends with the gate's outcome. */
static inline void *gate_child(void *gate)
{
    void *v = NULL;
    int e = weft_await(gate, &v);
    return e ? weft_fail(e) : v;
}

/* n new gates, and n children running child(gate i): child i pinned to worker k + i, or
 * free to run anywhere when k < 0. */
static inline void spawn_gated(weft_fn child, weft_future **gates, weft_future **kids, int n, int k)
{
    for (int i = 0; i < n; i++) {
        gates[i] = weft_future_new();
        kids[i] = k < 0 ? weft_spawn(child, gates[i]) : spawn_on(child, gates[i], k + i);
    }
}

/* A task that yields once, then completes the plain future f with f itself. */
static inline void *complete_later(void *f)
{
    weft_yield();
    weft_future_set_result(f, f);
    return NULL;
}

/* Await each of fs[0..n-1], then release it. */
static inline void join_all(weft_future **fs, int n)
{
    for (int i = 0; i < n; i++) weft_await(fs[i], NULL);
    release_all(fs, n);
}

/* ---- a log of ids ---------------------------------------------------------------------- */

enum { LOG_MAX = 256 };

typedef struct id_log {
    atomic_int n, ids[LOG_MAX];
} id_log;

static inline id_log *the_log_(void)
{
    static id_log log;
    return &log;
}

static inline void log_reset(void)
{
    atomic_store(&the_log_()->n, 0);
}

static inline void log_add(int id)
{
    int i = atomic_fetch_add(&the_log_()->n, 1);
    if (i < LOG_MAX) atomic_store(&the_log_()->ids[i], id);
}

static inline int log_count(void)
{
    return atomic_load(&the_log_()->n);
}

static inline int log_id(int i)
{
    return atomic_load(&the_log_()->ids[i]);
}

/* The log holds exactly ids[0..n-1], in that order. */
static inline int log_is(const int *ids, int n)
{
    if (log_count() != n) return 0;
    for (int i = 0; i < n; i++)
        if (log_id(i) != ids[i]) return 0;
    return 1;
}

static inline int logged(int id)
{
    for (int i = 0; i < log_count(); i++)
        if (log_id(i) == id) return 1;
    return 0;
}

/* ---- the run on one worker and on four ------------------------------------------------- */

static inline void *scenarios_on_worker_0_(void *arg)
{
    const weft_fn *scenarios = arg;
    weft_spawn_opts on_zero = {.name = "scenarios", .worker = 0, .pinned = 1};
    weft_future *f = weft_spawn_ex(*scenarios, NULL, &on_zero);
    int r = weft_await(f, NULL);
    weft_future_release(f);
    return r ? weft_fail(r) : NULL;
}

/* Run `scenarios` pinned to worker 0 of a runtime of one worker, then of four: one check
 * each. before_each (or NULL) resets the test's own state before a run. A watchdog named
 * `test` ends a run that hangs. */
static inline void run_scenarios(const char *test, weft_fn scenarios, void (*before_each)(void))
{
    watchdog_arm(test, 240);
    unsigned counts[2] = {1, 4};
    for (int i = 0; i < 2; i++) {
        weft_config cfg = config_with(counts[i]);
        note("---- %u worker(s)", counts[i]);
        if (before_each) before_each();
        cmp_ok(weft_run(scenarios_on_worker_0_, &scenarios, &cfg, NULL), "==", 0,
               "scenarios on %u worker(s)", counts[i]);
    }
}

#endif
