/*
 * test_wait_for: asyncio.wait_for's rules (3.12+) on weft_wait_for (asyncio-semantics.md
 * §3.6, cases 74-76), on one worker and on four: a result before the deadline is returned;
 * on timeout the inner task is cancelled and awaited until its cleanup has finished, then
 * -ETIMEDOUT; a cleanup that fails gives its error, one that swallows the cancellation
 * gives its value; timeout <= 0 (done: the result; not started: never runs; running:
 * cancelled and awaited); cancelling the waiting task cancels the inner one; an inner
 * future done in the same turn as the waiter's cancellation still gives -ECANCELED
 * (gh-86296); an outer timeout scope or an outside cancellation during the cleanup wins
 * over the timeout; a foreign thread; bad arguments and a callback.
 *
 * Handshakes: inner tasks report through counters when they reached their wait or their
 * cleanup; a task pinned to the scenario's own worker cannot run until the scenario waits.
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

/* How an inner task ends once cancelled. */
enum { END_CANCELLED, END_SWALLOW_42, END_FAIL_EIO };

typedef struct inner {
    int ending;
    double cleanup; /* seconds of cleanup after the cancellation */
    atomic_int started, in_cleanup, cleaned_up;
    atomic_int hold_cleanup; /* while set, the cleanup goes on (ignoring cancellations) */
} inner;

static void *inner_body(void *arg)
{
    inner *in = arg;
    atomic_store(&in->started, 1);
    int r = weft_sleep(60);
    atomic_store(&in->in_cleanup, 1);
    if (in->cleanup > 0) weft_sleep(in->cleanup); /* its own cancellation was delivered */
    while (atomic_load(&in->hold_cleanup)) weft_sleep(0.001);
    atomic_store(&in->cleaned_up, 1);
    if (r != -ECANCELED) return (void *)1;
    switch (in->ending) {
    case END_SWALLOW_42:
        return (void *)42;
    case END_FAIL_EIO:
        return weft_fail(-EIO);
    default:
        return weft_fail(-ECANCELED);
    }
}

static inner *inner_new(int ending, double cleanup)
{
    static inner pool[64];
    static int used;
    inner *in = &pool[used++ % 64];
    in->ending = ending;
    in->cleanup = cleanup;
    atomic_store(&in->started, 0);
    atomic_store(&in->in_cleanup, 0);
    atomic_store(&in->cleaned_up, 0);
    atomic_store(&in->hold_cleanup, 0);
    return in;
}

static void *quick(void *arg)
{
    weft_yield();
    return arg;
}

/* A task running weft_wait_for(f, timeout) and recording what it returned. */
typedef struct waiting {
    weft_future *f;
    double timeout;
    int ret;
    void *result;
    int cancelling_after;
    atomic_int returned;
} waiting;

static void *wait_for_task(void *arg)
{
    waiting *w = arg;
    w->ret = weft_wait_for(w->f, w->timeout, &w->result);
    w->cancelling_after = weft_cancelling();
    atomic_store(&w->returned, 1);
    return NULL;
}

static void waiting_init(waiting *w, weft_future *f, double timeout)
{
    w->f = f;
    w->timeout = timeout;
    w->ret = 12345;
    w->result = NULL;
    w->cancelling_after = -1;
    atomic_store(&w->returned, 0);
}

/* ---- scenarios --------------------------------------------------------------------------- */

/* 76: a result that arrives before the timeout is returned. */
static void result_in_time(void)
{
    void *r = NULL;
    weft_future *t = weft_spawn(quick, (void *)5);
    ok(weft_wait_for(t, 10, &r) == 0 && r == (void *)5, "76 a result in time is returned");
    weft_future_release(t);
    weft_future *plain = weft_future_new();
    weft_future *setter = spawn_on(quick, NULL, 1);
    weft_future_set_result(plain, (void *)6);
    ok(weft_wait_for(plain, 10, &r) == 0 && r == (void *)6, "76 a plain future's result");
    weft_await(setter, NULL);
    weft_future_release(setter);
    weft_future *failed = weft_future_new();
    weft_future_set_error(failed, -EPIPE);
    cmp_ok(weft_wait_for(failed, 10, &r), "==", -EPIPE, "its error");
    ok(weft_wait_for(plain, -1, &r) == 0 && r == (void *)6, "a negative timeout: no timeout");
    cmp_ok(weft_cancelling(), "==", 0, "no cancellation is left behind");
    weft_future_release(plain);
    weft_future_release(failed);
}

/* 74, 75: on timeout the inner task is cancelled and awaited: -ETIMEDOUT only after its
 * cleanup; a failing cleanup's error; a swallowed cancellation's value. */
static void timeout_cancels_and_waits(double timeout)
{
    const char *how = timeout > 0 ? "timeout 0.05" : "timeout 0";
    inner *in = inner_new(END_CANCELLED, 0.02);
    weft_future *t = spawn_on(inner_body, in, 2);
    ok(eventually(atomic_load(&in->started)), "inner started");
    double t0 = weft_now();
    int r = weft_wait_for(t, timeout, NULL);
    double took = weft_now() - t0;
    cmp_ok(r, "==", -ETIMEDOUT, "74 %s: -ETIMEDOUT", how);
    ok(atomic_load(&in->cleaned_up) && weft_cancelled(t),
       "74 %s: the inner task was cancelled and its cleanup finished first", how);
    ok(took >= timeout + 0.015, "74 %s: after deadline and cleanup (%.3f s)", how, took);
    cmp_ok(weft_cancelling(), "==", 0, "74 %s: the waiting task is not cancelled", how);
    cmp_ok(weft_sleep(0.001), "==", 0, "74 %s: and its next wait is not cancelled", how);
    weft_future_release(t);

    in = inner_new(END_FAIL_EIO, 0.005);
    t = spawn_on(inner_body, in, 2);
    ok(eventually(atomic_load(&in->started)), "inner started");
    cmp_ok(weft_wait_for(t, timeout, NULL), "==", -EIO, "75 %s: a cleanup that fails: its error",
           how);
    weft_future_release(t);

    in = inner_new(END_SWALLOW_42, 0.005);
    t = spawn_on(inner_body, in, 2);
    ok(eventually(atomic_load(&in->started)), "inner started");
    void *v = NULL;
    ok(weft_wait_for(t, timeout, &v) == 0 && v == (void *)42,
       "75 %s: a cleanup that swallows the cancellation: its value 42 (3.12)", how);
    cmp_ok(weft_cancelling(), "==", 0, "75 %s: no cancellation left on the waiter", how);
    weft_future_release(t);
}

/* 74: timeout <= 0 on a done future returns its result; on a task that has not started, it
 * never starts. */
static atomic_int body_ran;

static void *mark_ran(void *arg)
{
    atomic_store(&body_ran, 1);
    return arg;
}

static void timeout_zero(void)
{
    weft_future *done = weft_future_new();
    weft_future_set_result(done, (void *)9);
    void *v = NULL;
    ok(weft_wait_for(done, 0, &v) == 0 && v == (void *)9, "74 timeout 0 on a done future: result");
    weft_future_release(done);

    weft_future *t = spawn_on(mark_ran, NULL, 0); /* our worker: it cannot start before we wait */
    cmp_ok(weft_wait_for(t, 0, NULL), "==", -ETIMEDOUT, "74 timeout 0 on a task not started");
    settle(0);
    ok(!atomic_load(&body_ran) && weft_cancelled(t), "74 ... which never runs");
    weft_future_release(t);

    weft_future *plain = weft_future_new();
    cmp_ok(weft_wait_for(plain, 0, NULL), "==", -ETIMEDOUT, "74 timeout 0 on a pending future");
    ok(weft_cancelled(plain), "74 ... which is cancelled");
    weft_future_release(plain);
}

/* 76: cancelling the waiting task cancels the inner task; if that swallows, its value. */
static void cancel_waiter(int ending)
{
    inner *in = inner_new(ending, 0.005);
    weft_future *t = spawn_on(inner_body, in, 2);
    ok(eventually(atomic_load(&in->started)), "inner started");
    waiting w;
    waiting_init(&w, t, 10);
    weft_future *wt = spawn_settled(wait_for_task, &w, 1);
    weft_cancel(wt);
    weft_await(wt, NULL);
    ok(atomic_load(&in->cleaned_up), "76 cancelling the waiter cancels the inner task");
    if (ending == END_SWALLOW_42)
        ok(w.ret == 0 && w.result == (void *)42,
           "76 the inner task swallowed: the waiter gets its value");
    else
        cmp_ok(w.ret, "==", -ECANCELED, "76 the waiter's wait_for returns -ECANCELED");
    weft_future_release(wt);
    weft_future_release(t);
}

/* 76 (gh-86296): the inner future completes and the waiter is cancelled before it resumes:
 * the waiter still gets -ECANCELED. Both tasks are on our worker, which we do not leave in
 * between. */
static void done_and_cancelled_same_turn(void)
{
    weft_future *plain = weft_future_new();
    waiting w;
    waiting_init(&w, plain, 10);
    weft_future *wt = spawn_settled(wait_for_task, &w, 0);
    ok(!atomic_load(&w.returned), "the waiter waits");
    weft_future_set_result(plain, (void *)3);
    weft_cancel(wt);
    weft_await(wt, NULL);
    cmp_ok(w.ret, "==", -ECANCELED, "76 gh-86296: done and cancelled in one turn: -ECANCELED");
    weft_future_release(wt);
    weft_future_release(plain);
}

/* An outer timeout scope that fires first wins: wait_for gives -ECANCELED, the scope
 * -ETIMEDOUT. */
static void outer_scope_first(void)
{
    inner *in = inner_new(END_CANCELLED, 0);
    weft_future *t = spawn_on(inner_body, in, 2);
    ok(eventually(atomic_load(&in->started)), "inner started");
    weft_timeout *scope = weft_timeout_begin(0.03);
    int r = weft_wait_for(t, 10, NULL);
    cmp_ok(r, "==", -ECANCELED, "an outer scope fires first: wait_for returns -ECANCELED");
    cmp_ok(weft_timeout_end(scope), "==", -ETIMEDOUT, "and the outer scope -ETIMEDOUT");
    ok(weft_cancelled(t) && weft_cancelling() == 0, "the inner task was cancelled; we are not");
    weft_future_release(t);
}

/* An outside cancellation of the waiter during the inner task's cleanup after a timeout:
 * -ECANCELED, not -ETIMEDOUT (the count is above the snapshot). */
static void outside_cancel_during_cleanup(void)
{
    inner *in = inner_new(END_CANCELLED, 0);
    atomic_store(&in->hold_cleanup, 1);
    weft_future *t = spawn_on(inner_body, in, 2);
    ok(eventually(atomic_load(&in->started)), "inner started");
    waiting w;
    waiting_init(&w, t, 0.02);
    weft_future *wt = spawn_on(wait_for_task, &w, 1);
    ok(eventually(atomic_load(&in->in_cleanup)), "the timeout cancelled the inner task");
    weft_cancel(wt);
    settle(1);
    ok(!atomic_load(&w.returned), "the waiter still waits for the cleanup");
    atomic_store(&in->hold_cleanup, 0);
    weft_await(wt, NULL);
    cmp_ok(w.ret, "==", -ECANCELED, "an outside cancel during the cleanup: -ECANCELED");
    cmp_ok(w.cancelling_after, "==", 1, "the outside request stays counted");
    ok(weft_done(t), "the inner task is done when wait_for returns");
    weft_future_release(wt);
    weft_future_release(t);
}

/* ---- a foreign thread, bad arguments, a callback ----------------------------------------- */

static weft_future *th_task;
static inner *th_inner;
static atomic_int th_finished;
static int th_ret, th_cleaned;
static void *th_value;

static void *thread_wait_for(void *arg)
{
    (void)arg;
    th_ret = weft_wait_for(th_task, 0.03, NULL);
    th_cleaned = atomic_load(&th_inner->cleaned_up);
    atomic_store(&th_finished, 1);
    return NULL;
}

static void *thread_wait_for_value(void *arg)
{
    (void)arg;
    th_ret = weft_wait_for(th_task, 10, &th_value);
    atomic_store(&th_finished, 1);
    return NULL;
}

static void foreign_thread(void)
{
    atomic_store(&th_finished, 0);
    th_inner = inner_new(END_CANCELLED, 0.01);
    th_task = spawn_on(inner_body, th_inner, 2);
    pthread_t th;
    pthread_create(&th, NULL, thread_wait_for, NULL);
    ok(eventually(atomic_load(&th_finished)), "a foreign thread's wait_for returned");
    ok(th_ret == -ETIMEDOUT && th_cleaned, "... -ETIMEDOUT after the inner task's cleanup");
    pthread_join(th, NULL);
    weft_future_release(th_task);

    atomic_store(&th_finished, 0);
    th_task = spawn_on(quick, (void *)8, 2);
    pthread_create(&th, NULL, thread_wait_for_value, NULL);
    ok(eventually(atomic_load(&th_finished)), "a foreign thread's wait_for returned");
    ok(th_ret == 0 && th_value == (void *)8, "... with the value");
    pthread_join(th, NULL);
    weft_future_release(th_task);
}

static atomic_int cb_ret;
static weft_future *cb_fut;

static void wait_for_in_callback(void *arg)
{
    (void)arg;
    atomic_store(&cb_ret, weft_wait_for(cb_fut, 1.0, NULL));
}

static void bad_arguments(void)
{
    cmp_ok(weft_wait_for(NULL, 1, NULL), "==", -EINVAL, "wait_for(NULL): -EINVAL");
    cb_fut = weft_future_new();
    run_callback(wait_for_in_callback, NULL, "the callback ran");
    cmp_ok(atomic_load(&cb_ret), "==", -EPERM, "wait_for in a callback: -EPERM");
    ok(!weft_done(cb_fut), "and the future is left alone");
    weft_future_release(cb_fut);
}

static void *scenarios(void *arg)
{
    (void)arg;
    result_in_time();
    timeout_cancels_and_waits(0.05);
    timeout_cancels_and_waits(0);
    timeout_zero();
    cancel_waiter(END_CANCELLED);
    cancel_waiter(END_SWALLOW_42);
    done_and_cancelled_same_turn();
    outer_scope_first();
    outside_cancel_during_cleanup();
    foreign_thread();
    bad_arguments();
    return NULL;
}

int main(void)
{
    run_scenarios("test_wait_for", scenarios, NULL);
    done_testing();
}
