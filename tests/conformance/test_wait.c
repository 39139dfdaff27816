/*
 * test_wait: asyncio.wait's rules on weft_wait (asyncio-semantics.md §3.5, cases 71-73), on
 * one worker and on four: ALL_COMPLETED, FIRST_COMPLETED (the count of everything done at
 * return, possibly more than one), FIRST_EXCEPTION (a cancellation is not an exception; no
 * failure behaves as ALL_COMPLETED); a timeout returns the partial count and cancels
 * nothing; cancelling the waiter cancels nothing either; bad arguments; duplicates; a
 * foreign thread with its own deadline; a callback (-EPERM); many futures.
 *
 * Handshakes: the futures are plain futures (or tasks waiting on them) that the scenario
 * completes; a waiter task reports when its wait returned, and "not returned yet" is
 * checked once the worker it runs on has settled.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "harness.h"
#include "tap.h"
#include "testutil.h"
#include "weft.h"

/* ---- helpers ----------------------------------------------------------------------------- */

/* A waiter task: weft_wait on `fs` with its settings; records the result. */
typedef struct waiting {
    weft_future **fs;
    size_t n;
    int return_when;
    double timeout;
    int ret;
    atomic_int returned;
} waiting;

static void *waiter_task(void *arg)
{
    waiting *w = arg;
    w->ret = weft_wait(w->fs, w->n, w->return_when, w->timeout);
    atomic_store(&w->returned, 1);
    return NULL;
}

static weft_future *start_waiter(waiting *w, weft_future **fs, size_t n, int return_when,
                                 double timeout)
{
    w->fs = fs;
    w->n = n;
    w->return_when = return_when;
    w->timeout = timeout;
    w->ret = 12345;
    atomic_store(&w->returned, 0);
    weft_future *t = spawn_settled(waiter_task, w, 1);
    return t;
}

static void finish(weft_future *t)
{
    weft_await(t, NULL);
    weft_future_release(t);
}

/* ---- scenarios --------------------------------------------------------------------------- */

/* 71: ALL_COMPLETED waits for all. */
static void all_completed(void)
{
    weft_future *fs[3];
    new_futures(fs, 3);
    waiting w;
    weft_future *t = start_waiter(&w, fs, 3, WEFT_ALL_COMPLETED, -1);
    weft_future_set_result(fs[2], NULL);
    weft_future_set_error(fs[0], -EIO);
    settle(1);
    ok(!atomic_load(&w.returned), "71 ALL_COMPLETED: still waiting with one pending");
    weft_cancel(fs[1]);
    finish(t);
    cmp_ok(w.ret, "==", 3, "71 ALL_COMPLETED: returns 3 once all are done");
    release_all(fs, 3);
}

/* 71: FIRST_COMPLETED returns once one is done; the others stay pending, not cancelled; the
 * count is of everything done at return. */
static void first_completed(void)
{
    weft_future *fs[3];
    new_futures(fs, 3);
    waiting w;
    weft_future *t = start_waiter(&w, fs, 3, WEFT_FIRST_COMPLETED, -1);
    ok(!atomic_load(&w.returned), "71 FIRST_COMPLETED: waits while none is done");
    weft_future_set_result(fs[1], (void *)1);
    finish(t);
    cmp_ok(w.ret, "==", 1, "71 FIRST_COMPLETED: returns 1");
    ok(!weft_done(fs[0]) && !weft_done(fs[2]), "71 the others stay pending, not cancelled");

    weft_future_set_result(fs[2], NULL);
    cmp_ok(weft_wait(fs, 3, WEFT_FIRST_COMPLETED, -1), "==", 2,
           "71 the count includes every future done at return (2)");
    weft_future_set_result(fs[0], NULL);
    cmp_ok(weft_wait(fs, 3, WEFT_FIRST_COMPLETED, -1), "==", 3, "71 all done: 3 at once");
    release_all(fs, 3);
}

/* 71: FIRST_EXCEPTION: a failure ends the wait; a cancellation does not; without failures it
 * is ALL_COMPLETED. */
static void first_exception(void)
{
    weft_future *fs[3];
    new_futures(fs, 3);
    waiting w;
    weft_future *t = start_waiter(&w, fs, 3, WEFT_FIRST_EXCEPTION, -1);
    weft_cancel(fs[0]);
    weft_future_set_result(fs[1], NULL);
    settle(1);
    ok(!atomic_load(&w.returned), "71 FIRST_EXCEPTION: a cancellation and a result do not end it");
    weft_future_set_error(fs[2], -EIO);
    finish(t);
    cmp_ok(w.ret, "==", 3, "71 FIRST_EXCEPTION: the failure ends it (3 done)");
    release_all(fs, 3);

    new_futures(fs, 3);
    t = start_waiter(&w, fs, 3, WEFT_FIRST_EXCEPTION, -1);
    weft_future_set_error(fs[1], -EPIPE);
    finish(t);
    ok(w.ret == 1 && !weft_done(fs[0]) && !weft_done(fs[2]),
       "71 FIRST_EXCEPTION: returns at the first failure, the rest pending");
    release_all(fs, 3);

    new_futures(fs, 2);
    t = start_waiter(&w, fs, 2, WEFT_FIRST_EXCEPTION, -1);
    weft_future_set_result(fs[0], NULL);
    settle(1);
    ok(!atomic_load(&w.returned), "71 FIRST_EXCEPTION without failures waits for all");
    weft_cancel(fs[1]);
    finish(t);
    cmp_ok(w.ret, "==", 2, "71 ... and returns when all are done");
    release_all(fs, 2);

    weft_future *failed = weft_future_new(), *pending = weft_future_new();
    weft_future_set_error(failed, -EIO);
    weft_future *two[2] = {pending, failed};
    cmp_ok(weft_wait(two, 2, WEFT_FIRST_EXCEPTION, -1), "==", 1,
           "71 a failure already there: at once");
    weft_future_release(failed);
    weft_future_release(pending);
}

/* 72: a timeout returns the partial count and cancels nothing; timeout 0 polls. */
static void *sleeper(void *arg)
{
    (void)arg;
    weft_sleep(60);
    return NULL;
}

static void timeouts(void)
{
    weft_future *fs[3];
    new_futures(fs, 2);
    fs[2] = spawn_on(sleeper, NULL, 2);
    weft_future_set_result(fs[0], NULL);
    double t0 = weft_now();
    int r = weft_wait(fs, 3, WEFT_ALL_COMPLETED, 0.05);
    double took = weft_now() - t0;
    cmp_ok(r, "==", 1, "72 timeout: the partial count (1)");
    ok(took >= 0.045 && took < 10, "72 it waited about the timeout (%.3f s)", took);
    ok(!weft_done(fs[1]) && !weft_done(fs[2]), "72 a timeout cancels nothing");
    cmp_ok(weft_wait(fs, 3, WEFT_FIRST_EXCEPTION, 0), "==", 1, "72 timeout 0: the count now");
    cmp_ok(weft_cancelling(), "==", 0, "72 the waiter is not cancelled");
    weft_cancel(fs[2]);
    weft_future_set_result(fs[1], NULL);
    weft_await(fs[2], NULL);
    release_all(fs, 3);
}

/* 73: bad arguments; duplicates count per position; cancelling the waiter cancels nothing. */
static void arguments_and_cancel(void)
{
    weft_future *fs[2];
    new_futures(fs, 2);
    cmp_ok(weft_wait(fs, 0, WEFT_ALL_COMPLETED, -1), "==", -EINVAL, "73 no futures: -EINVAL");
    cmp_ok(weft_wait(NULL, 2, WEFT_ALL_COMPLETED, -1), "==", -EINVAL, "73 NULL: -EINVAL");
    cmp_ok(weft_wait(fs, 2, 7, -1), "==", -EINVAL, "73 bad return_when: -EINVAL");
    cmp_ok(weft_wait(fs, 2, -1, -1), "==", -EINVAL, "73 negative return_when: -EINVAL");
    weft_future *bad[2] = {fs[0], NULL};
    cmp_ok(weft_wait(bad, 2, WEFT_ALL_COMPLETED, -1), "==", -EINVAL, "73 a NULL future: -EINVAL");

    weft_future_set_result(fs[0], NULL);
    weft_future *dup[3] = {fs[0], fs[0], fs[1]};
    cmp_ok(weft_wait(dup, 3, WEFT_FIRST_COMPLETED, -1), "==", 2,
           "73 duplicates: the count is per position");

    weft_future *kid = spawn_on(sleeper, NULL, 2);
    weft_future *set[2] = {fs[1], kid};
    waiting w;
    weft_future *t = start_waiter(&w, set, 2, WEFT_ALL_COMPLETED, -1);
    weft_cancel(t);
    finish(t);
    cmp_ok(w.ret, "==", -ECANCELED, "73 cancelling the waiter: wait returns -ECANCELED");
    ok(!weft_done(fs[1]) && !weft_done(kid), "73 and the waited futures are not cancelled");
    weft_cancel(kid);
    weft_await(kid, NULL);
    weft_future_release(kid);
    release_all(fs, 2);
}

/* Many futures (a heap-allocated waitset) completed by tasks on every worker. */
static void many(void)
{
    enum { N = 600 };
    static weft_future *fs[N], *setters[N];
    new_futures(fs, N);
    for (int i = 0; i < N; i++) setters[i] = weft_spawn(complete_later, fs[i]);
    cmp_ok(weft_wait(fs, N, WEFT_ALL_COMPLETED, -1), "==", N, "600 futures: ALL_COMPLETED");
    join_all(setters, N);
    release_all(fs, N);
}

/* ---- a foreign thread and a callback --------------------------------------------------- */

static weft_future *th_fs[2];
static atomic_int th_finished;
static int th_ret_timeout, th_ret_first;
static double th_took;

static void *thread_waits(void *arg)
{
    (void)arg;
    double t0 = mono();
    th_ret_timeout = weft_wait(th_fs, 2, WEFT_ALL_COMPLETED, 0.05);
    th_took = mono() - t0;
    atomic_store(&th_finished, 1);
    th_ret_first = weft_wait(th_fs, 2, WEFT_FIRST_COMPLETED, -1);
    atomic_store(&th_finished, 2);
    return NULL;
}

static void foreign_thread(void)
{
    new_futures(th_fs, 2);
    atomic_store(&th_finished, 0);
    pthread_t th;
    pthread_create(&th, NULL, thread_waits, NULL);
    ok(eventually(atomic_load(&th_finished) == 1), "a foreign thread's wait times out");
    ok(th_ret_timeout == 0 && th_took >= 0.045, "... with count 0 after its own deadline (%.3f s)",
       th_took);
    weft_future_set_result(th_fs[1], NULL);
    ok(eventually(atomic_load(&th_finished) == 2), "a foreign thread's FIRST_COMPLETED returns");
    cmp_ok(th_ret_first, "==", 1, "... with 1");
    pthread_join(th, NULL);
    release_all(th_fs, 2);
}

static atomic_int cb_ret;
static weft_future *cb_fut;

static void wait_in_callback(void *arg)
{
    (void)arg;
    atomic_store(&cb_ret, weft_wait(&cb_fut, 1, WEFT_ALL_COMPLETED, 1.0));
}

static void in_callback(void)
{
    cb_fut = weft_future_new();
    run_callback(wait_in_callback, NULL, "the callback ran");
    cmp_ok(atomic_load(&cb_ret), "==", -EPERM, "a wait in a callback that must wait: -EPERM");
    weft_future_release(cb_fut);
}

static void *scenarios(void *arg)
{
    (void)arg;
    all_completed();
    first_completed();
    first_exception();
    timeouts();
    arguments_and_cancel();
    many();
    foreign_thread();
    in_callback();
    return NULL;
}

int main(void)
{
    run_scenarios("test_wait", scenarios, NULL);
    done_testing();
}
