/*
 * test_gather: asyncio.gather's rules on weft_gather (asyncio-semantics.md §3.4, cases
 * 66-70), on one worker and on four: results in argument order; the first error returned
 * at once while the other children run on; errors mode waiting for every child; a
 * cancelled child as -ECANCELED; cancelling the gathering task cancels every unfinished
 * child and gives -ECANCELED in both modes, even when children swallow it; done children
 * and duplicates; bad arguments; a foreign thread; a callback (-EPERM); many children.
 *
 * Handshakes, not timing: children wait on plain futures ("gates") that the scenario
 * completes in the order it wants; a gatherer runs as its own task and reports when its
 * gather returned, so "has not returned yet" is checked after the worker it runs on has
 * settled (a pinned probe behind it on that worker's FIFO has run).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "tap.h"
#include "testutil.h"
#include "weft.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static atomic_int started;

/* gate_child, counted in `started`. */
static void *counted_gate_child(void *gate)
{
    atomic_fetch_add(&started, 1);
    return gate_child(gate);
}

/* A child that sleeps until cancelled, then swallows it and returns 7. */
static void *swallow_child(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    int r = weft_sleep(60.0);
    return r == -ECANCELED ? (void *)7 : NULL;
}

/* A child that sleeps until cancelled and ends cancelled. */
static void *sleep_child(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    int r = weft_sleep(60.0);
    return r ? weft_fail(r) : NULL;
}

static void set_gates(weft_future **g, int n, const int *order, const intptr_t *values)
{
    for (int i = 0; i < n; i++) weft_future_set_result(g[order[i]], (void *)values[order[i]]);
}

/* A gatherer task: gathers `fs` and records when and how it returned. */
typedef struct gathering {
    weft_future **fs;
    size_t n;
    int errors_mode;
    void *results[16];
    int errors[16];
    int ret;
    atomic_int returned;
    int cancelling_after; /* weft_cancelling() after the gather */
} gathering;

static void *gatherer(void *arg)
{
    gathering *g = arg;
    g->ret = weft_gather(g->fs, g->n, g->results, g->errors_mode ? g->errors : NULL);
    g->cancelling_after = weft_cancelling();
    atomic_store(&g->returned, 1);
    return NULL;
}

/* Start a gatherer of fs[0..n-1] pinned to worker 1, recording into g. */
static weft_future *start_gatherer(gathering *g, weft_future **fs, size_t n, int errors_mode)
{
    memset(g, 0, sizeof *g);
    g->fs = fs;
    g->n = n;
    g->errors_mode = errors_mode;
    for (int i = 0; i < 16; i++) g->errors[i] = 12345;
    return spawn_on(gatherer, g, 1);
}

/* ---- scenarios --------------------------------------------------------------------------- */

/* 66: results in argument order, whatever the completion order; tasks and plain futures. */
static void argument_order(void)
{
    weft_future *gates[3], *kids[3];
    const intptr_t values[3] = {1, 2, 3};
    const int order[3] = {1, 0, 2}; /* b, a, c */
    spawn_gated(counted_gate_child, gates, kids, 3, -1);
    gathering g;
    weft_future *t = start_gatherer(&g, kids, 3, 0);
    set_gates(gates, 3, order, values);
    weft_await(t, NULL);
    cmp_ok(g.ret, "==", 0, "66 tasks completed b, a, c: gather returns 0");
    ok(g.results[0] == (void *)1 && g.results[1] == (void *)2 && g.results[2] == (void *)3,
       "66 results in argument order [1, 2, 3]");
    weft_future_release(t);
    release_all(kids, 3);
    release_all(gates, 3);

    /* plain futures, completed by the scenario while a gatherer waits */
    new_futures(gates, 3);
    t = start_gatherer(&g, gates, 3, 1);
    settle(1);
    set_gates(gates, 3, order, values);
    weft_await(t, NULL);
    ok(g.ret == 0 && g.results[0] == (void *)1 && g.results[1] == (void *)2 &&
           g.results[2] == (void *)3 && !g.errors[0] && !g.errors[1] && !g.errors[2],
       "66 plain futures: results in argument order, errors all 0");
    weft_future_release(t);
    release_all(gates, 3);
}

/* 66, 68: errors mode places errors in order and returns only when all children are done. */
static void errors_mode(void)
{
    weft_future *gates[3], *kids[3];
    spawn_gated(counted_gate_child, gates, kids, 3, 2);
    gathering g;
    weft_future *t = start_gatherer(&g, kids, 3, 1);
    weft_future_set_error(gates[1], -EIO);
    weft_cancel(kids[2]); /* cancellation travels into its gate: the child ends cancelled */
    ok(eventually(weft_done(kids[1]) && weft_done(kids[2])), "two children ended");
    settle(1);
    ok(!atomic_load(&g.returned), "66 errors mode: no return while a child is pending");
    weft_future_set_result(gates[0], (void *)42);
    weft_await(t, NULL);
    cmp_ok(g.ret, "==", 0, "66 errors mode returns 0");
    ok(g.results[0] == (void *)42 && !g.errors[0], "66 errors[0] = 0, results[0] = 42");
    ok(g.errors[1] == -EIO && g.results[1] == NULL, "66 errors[1] = -EIO, results[1] = NULL");
    cmp_ok(g.errors[2], "==", -ECANCELED, "68 a cancelled child appears as -ECANCELED");
    weft_future_release(t);
    release_all(kids, 3);
    release_all(gates, 3);
}

/* 67: the first error (or cancellation) returns at once; the others run on, not cancelled. */
static void first_error(void)
{
    weft_future *gates[3], *kids[3];
    spawn_gated(counted_gate_child, gates, kids, 3, 2);
    gathering g;
    weft_future *t = start_gatherer(&g, kids, 3, 0);
    weft_future_set_result(gates[2], (void *)3);
    weft_future_set_error(gates[1], -EIO);
    weft_await(t, NULL);
    cmp_ok(g.ret, "==", -EIO, "67 the first error is returned");
    ok(!weft_done(kids[0]) && !weft_cancelled(gates[0]), "67 the pending child is not cancelled");
    cmp_ok(g.cancelling_after, "==", 0, "67 and the gatherer is not cancelled");
    weft_future_set_result(gates[0], (void *)1);
    void *r = NULL;
    ok(weft_await(kids[0], &r) == 0 && r == (void *)1, "67 it runs on to its own result");
    weft_await(kids[2], NULL); /* it may not have run yet: its gate must outlive it */
    weft_future_release(t);
    release_all(kids, 3);
    release_all(gates, 3);

    /* a cancelled child is the first error: -ECANCELED, and the gatherer is not cancelled */
    spawn_gated(counted_gate_child, gates, kids, 2, 2);
    t = start_gatherer(&g, kids, 2, 0);
    weft_cancel(kids[1]);
    weft_await(t, NULL);
    cmp_ok(g.ret, "==", -ECANCELED, "67 a cancelled child: gather returns -ECANCELED");
    ok(g.cancelling_after == 0 && !weft_cancelled(t), "67 the gathering task is not cancelled");
    ok(!weft_done(kids[0]), "67 the other child is not cancelled");
    weft_future_set_result(gates[0], NULL);
    weft_await(kids[0], NULL);
    weft_future_release(t);
    release_all(kids, 2);
    release_all(gates, 2);

    /* an error that is already there when gather starts */
    weft_future *failed = weft_future_new(), *pending = weft_future_new();
    weft_future_set_error(failed, -ENOSPC);
    weft_future *fs[2] = {pending, failed};
    cmp_ok(weft_gather(fs, 2, NULL, NULL), "==", -ENOSPC, "67 an error already there: at once");
    weft_future_release(failed);
    weft_future_release(pending);
}

/* 69: cancelling the gathering task cancels every unfinished child; -ECANCELED in both modes,
 * even when children swallow the cancellation; done children keep their results. */
static void cancel_gatherer(int errors_mode)
{
    const char *mode = errors_mode ? "errors mode" : "first-error mode";
    weft_future *done_fut = weft_future_new(), *plain = weft_future_new();
    weft_future_set_result(done_fut, (void *)5);
    int base = atomic_load(&started);
    weft_future *kids[4] = {spawn_on(swallow_child, NULL, 2), spawn_on(sleep_child, NULL, 3), plain,
                            done_fut};
    ok(eventually(atomic_load(&started) == base + 2), "69 children started");
    gathering g;
    weft_future *t = start_gatherer(&g, kids, 4, errors_mode);
    settle(1);
    cmp_ok(weft_cancel(t), "==", 1, "69 %s: the gatherer accepts the cancel", mode);
    void *r = NULL;
    weft_await(t, NULL);
    cmp_ok(g.ret, "==", -ECANCELED, "69 %s: gather returns -ECANCELED", mode);
    /* errors mode waits for every child; first-error mode returns with the first child that
     * ends cancelled, as asyncio's outer future does, and the others finish their cancel */
    if (errors_mode)
        ok(weft_done(kids[0]) && weft_done(kids[1]) && weft_done(plain),
           "69 %s: every child is done when gather returns", mode);
    else
        ok(eventually(weft_done(kids[0]) && weft_done(kids[1])) && weft_done(plain),
           "69 %s: every child ends", mode);
    ok(weft_await(kids[0], &r) == 0 && r == (void *)7, "69 %s: the swallowing child returned 7",
       mode);
    ok(weft_cancelled(kids[1]) && weft_cancelled(plain), "69 %s: the others were cancelled", mode);
    ok(weft_future_result(done_fut) == (void *)5 && !weft_cancelled(done_fut),
       "69 %s: a done child keeps its result", mode);
    cmp_ok(g.cancelling_after, "==", 1, "69 %s: the gatherer has one cancel request", mode);
    weft_future_release(t);
    release_all(kids, 4);
}

/* 69: all children swallow: still -ECANCELED. */
static void cancel_gatherer_all_swallow(void)
{
    int base = atomic_load(&started);
    weft_future *kids[2] = {spawn_on(swallow_child, NULL, 2), spawn_on(swallow_child, NULL, 3)};
    ok(eventually(atomic_load(&started) == base + 2), "children started");
    gathering g;
    weft_future *t = start_gatherer(&g, kids, 2, 0);
    settle(1);
    weft_cancel(t);
    weft_await(t, NULL);
    ok(g.ret == -ECANCELED && g.results[0] == (void *)7 && g.results[1] == (void *)7,
       "69 every child swallowed: gather still -ECANCELED (results filled)");
    weft_future_release(t);
    release_all(kids, 2);
}

/* 70: children all done: no wait, a pending cancellation is not consumed; duplicates repeat
 * their result; no children; bad arguments. */
static void done_and_duplicates(void)
{
    weft_future *a = weft_future_new(), *b = weft_future_new();
    weft_future_set_result(a, (void *)"abc");
    weft_future_set_result(b, (void *)"def");
    weft_future *fs[4] = {a, a, b, a};
    void *res[4];
    cmp_ok(weft_gather(fs, 4, res, NULL), "==", 0, "70 duplicates: gather returns 0");
    ok(!strcmp(res[0], "abc") && !strcmp(res[1], "abc") && !strcmp(res[2], "def") &&
           !strcmp(res[3], "abc"),
       "70 duplicates repeat their result ['abc', 'abc', 'def', 'abc']");

    weft_cancel(weft_current()); /* pending: gathering done futures does not wait */
    int errs[4];
    cmp_ok(weft_gather(fs, 4, res, errs), "==", 0,
           "70 done children: results despite a pending cancel");
    cmp_ok(weft_sleep(0), "==", -ECANCELED, "70 the cancellation reaches the next wait");
    weft_uncancel();

    cmp_ok(weft_gather(NULL, 0, NULL, NULL), "==", 0, "70 no children: 0");
    cmp_ok(weft_gather(NULL, 2, NULL, NULL), "==", -EINVAL, "NULL array: -EINVAL");
    weft_future *bad[2] = {a, NULL};
    cmp_ok(weft_gather(bad, 2, NULL, NULL), "==", -EINVAL, "a NULL future: -EINVAL");
    weft_future_release(a);
    weft_future_release(b);
}

/* Many children: more than fit on the stack, completed from several workers. */
static void *value_child(void *arg)
{
    if ((intptr_t)arg % 3 == 0) weft_yield();
    return arg;
}

static void many_children(void)
{
    enum { N = 1000 };
    static weft_future *kids[N];
    static void *res[N];
    static int errs[N];
    for (int i = 0; i < N; i++) kids[i] = weft_spawn(value_child, (void *)(intptr_t)i);
    int r = weft_gather(kids, N, res, errs);
    int good = r == 0;
    for (int i = 0; i < N; i++) good &= res[i] == (void *)(intptr_t)i && errs[i] == 0;
    ok(good, "1000 children: every result in place");
    r = weft_gather(kids, N, res, NULL);
    ok(r == 0 && res[N - 1] == (void *)(intptr_t)(N - 1), "gathered again when all are done");
    release_all(kids, N);
}

/* ---- a foreign thread and a callback --------------------------------------------------- */

static weft_future *thread_kids[3], *thread_gates[3];
static int thread_ret_all, thread_ret_first;
static void *thread_res[3];
static atomic_int thread_finished;

static void *thread_gatherer(void *arg)
{
    (void)arg;
    int errs[3];
    thread_ret_all = weft_gather(thread_kids, 3, thread_res, errs);
    atomic_store(&thread_finished, 1);
    return NULL;
}

static void *thread_first(void *arg)
{
    (void)arg;
    thread_ret_first = weft_gather(thread_kids, 3, NULL, NULL);
    atomic_store(&thread_finished, 1);
    return NULL;
}

/* Join a thread without blocking this worker, which the thread's futures may need. */
static void join_thread(pthread_t th)
{
    ok(eventually(atomic_load(&thread_finished)), "the thread finished");
    atomic_store(&thread_finished, 0);
    pthread_join(th, NULL);
}

static void foreign_thread(void)
{
    spawn_gated(counted_gate_child, thread_gates, thread_kids, 3, -1);
    pthread_t th;
    pthread_create(&th, NULL, thread_gatherer, NULL);
    const int order[3] = {2, 0, 1};
    const intptr_t values[3] = {10, 20, 30};
    weft_sleep(0.01);
    set_gates(thread_gates, 3, order, values);
    join_thread(th);
    ok(thread_ret_all == 0 && thread_res[0] == (void *)10 && thread_res[2] == (void *)30,
       "a foreign thread gathers tasks (blocking), results in order");
    release_all(thread_kids, 3);
    release_all(thread_gates, 3);

    spawn_gated(counted_gate_child, thread_gates, thread_kids, 3, -1);
    pthread_create(&th, NULL, thread_first, NULL);
    weft_sleep(0.01);
    weft_future_set_error(thread_gates[1], -EPIPE);
    join_thread(th);
    cmp_ok(thread_ret_first, "==", -EPIPE, "a foreign thread gets the first error at once");
    weft_future_set_result(thread_gates[0], NULL);
    weft_future_set_result(thread_gates[2], NULL);
    join_all(thread_kids, 3);
    release_all(thread_gates, 3);
}

static atomic_int cb_pending_ret, cb_done_ret;
static weft_future *cb_pending, *cb_done;

static void gather_in_callback(void *arg)
{
    (void)arg;
    atomic_store(&cb_pending_ret, weft_gather(&cb_pending, 1, NULL, NULL));
    atomic_store(&cb_done_ret, weft_gather(&cb_done, 1, NULL, NULL));
}

static void in_callback(void)
{
    cb_pending = weft_future_new();
    cb_done = weft_future_new();
    weft_future_set_result(cb_done, NULL);
    run_callback(gather_in_callback, NULL, "the callback ran");
    cmp_ok(atomic_load(&cb_pending_ret), "==", -EPERM,
           "on a worker outside a task, a gather that must wait: -EPERM");
    cmp_ok(atomic_load(&cb_done_ret), "==", 0, "one that need not wait: 0");
    weft_future_release(cb_pending);
    weft_future_release(cb_done);
}

static void *scenarios(void *arg)
{
    (void)arg;
    argument_order();
    errors_mode();
    first_error();
    cancel_gatherer(0);
    cancel_gatherer(1);
    cancel_gatherer_all_swallow();
    done_and_duplicates();
    many_children();
    foreign_thread();
    in_callback();
    return NULL;
}

int main(void)
{
    run_scenarios("test_gather", scenarios, NULL);
    done_testing();
}
