/*
 * test_task_semantics: asyncio's Future and Task rules that apply to C (asyncio-semantics.md
 * §3.1-3.3, cases 55-65), on one worker and on four: the future state machine; done-callbacks
 * never inline and in order; cancelling sleeping and yielding tasks; the awaited future is
 * cancelled at once; a cancellation caught and turned into a value or into another wait;
 * cancel at end; cancel the current task, then await; cancellation through nested calls;
 * cancelling() counts and uncancel(); uncancel withdrawing an undelivered request; a
 * cancellation turned into another error; set_result on a task; weft_current().
 * Not ported: cancel messages (59), contexts (65), wrap_future (57), SystemExit (64).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "harness.h"
#include "tap.h"
#include "testutil.h"
#include "weft.h"

/* ---- 55, 56: futures ---------------------------------------------------------------------- */

static void future_states(void)
{
    weft_future *f = weft_future_new();
    ok(!weft_done(f) && !weft_cancelled(f), "55 a new future: not done, not cancelled");
    ok(weft_future_error(f) == -EAGAIN && weft_future_result(f) == NULL,
       "55 its result while pending: -EAGAIN (InvalidStateError)");
    cmp_ok(weft_future_set_result(f, (void *)1), "==", 0, "55 set_result");
    ok(weft_done(f) && weft_future_error(f) == 0 && weft_future_result(f) == (void *)1,
       "55 done, no error, the result");
    ok(weft_future_set_result(f, NULL) == -EALREADY && weft_future_set_error(f, -EIO) == -EALREADY,
       "55 a second set_*: -EALREADY");
    cmp_ok(weft_cancel(f), "==", 0, "55 cancel of a done future: 0");
    weft_future_release(f);

    f = weft_future_new();
    cmp_ok(weft_cancel(f), "==", 1, "55 cancel of a pending future: 1");
    ok(weft_cancelled(f) && weft_done(f) && weft_future_error(f) == -ECANCELED,
       "55 cancelled, done, error -ECANCELED");
    cmp_ok(weft_future_set_result(f, NULL), "==", -EALREADY,
           "55 set_result after cancel: -EALREADY");
    cmp_ok(weft_await(f, NULL), "==", -ECANCELED, "55 awaiting it: -ECANCELED");
    weft_future_release(f);

    f = weft_future_new();
    cmp_ok(weft_future_set_error(f, -EIO), "==", 0, "55 set_error");
    ok(weft_future_error(f) == -EIO && !weft_cancelled(f), "55 the error, not cancelled");
    weft_future_release(f);
}

static atomic_int cb_log[8], cb_n, cb_inline;
static atomic_int setting; /* the scenario is inside set_result / add_done_callback */
static pthread_t setter;

static void log_cb(weft_future *f, void *arg)
{
    (void)f;
    if (atomic_load(&setting) && pthread_equal(pthread_self(), setter)) atomic_store(&cb_inline, 1);
    int n = atomic_fetch_add(&cb_n, 1);
    if (n < 8) atomic_store(&cb_log[n], (int)(intptr_t)arg);
}

static void callbacks(void)
{
    atomic_store(&cb_n, 0);
    atomic_store(&cb_inline, 0);
    weft_future *f = weft_future_new();
    for (int i = 1; i <= 3; i++) weft_future_add_done_callback(f, log_cb, (void *)(intptr_t)i);
    setter = pthread_self();
    atomic_store(&setting, 1);
    weft_future_set_result(f, NULL);
    atomic_store(&setting, 0);
    ok(eventually(atomic_load(&cb_n) == 3), "56 the callbacks run after set_result");
    ok(!atomic_load(&cb_inline), "56 not inside it");
    ok(cb_log[0] == 1 && cb_log[1] == 2 && cb_log[2] == 3, "56 in registration order");
    atomic_store(&setting, 1);
    weft_future_add_done_callback(f, log_cb, (void *)4);
    atomic_store(&setting, 0);
    ok(eventually(atomic_load(&cb_n) == 4), "56 one added to a done future is scheduled at once");
    ok(!atomic_load(&cb_inline), "56 not run inline");
    weft_future_release(f);
}

/* ---- 58: cancelling sleeping and yielding tasks ------------------------------------------- */

static atomic_int started;

static void *sleep_reraise(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    int r = weft_sleep(60);
    return r ? weft_fail(r) : NULL;
}

static void *yield_loop(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    for (;;) {
        int r = weft_sleep(0);
        if (r) return weft_fail(r);
    }
}

static void cancel_sleeping_and_yielding(void)
{
    weft_fn bodies[2] = {sleep_reraise, yield_loop};
    const char *what[2] = {"sleeping", "yielding"};
    for (int i = 0; i < 2; i++) {
        int base = atomic_load(&started);
        weft_future *t = spawn_on(bodies[i], NULL, 1);
        ok(eventually(atomic_load(&started) > base), "started");
        cmp_ok(weft_cancel(t), "==", 1, "58 cancel a %s task: 1", what[i]);
        cmp_ok(weft_await(t, NULL), "==", -ECANCELED, "58 awaiting it: -ECANCELED");
        ok(weft_done(t) && weft_cancelled(t), "58 done and cancelled");
        cmp_ok(weft_cancel(t), "==", 0, "58 a later cancel: 0");
        weft_future_release(t);
    }
}

/* ---- 60: the awaited future is cancelled at once; caught and turned into a value ---------- */

typedef struct awaiting {
    weft_future *inner, *second;
    int mode; /* 0: re-raise, 1: return 42, 2: await `second` */
} awaiting;

static void *await_inner(void *arg)
{
    awaiting *a = arg;
    atomic_fetch_add(&started, 1);
    int r = weft_await(a->inner, NULL);
    if (r != -ECANCELED) return (void *)(intptr_t)r;
    if (a->mode == 1) return (void *)42;
    if (a->mode == 2) {
        void *v = NULL;
        r = weft_await(a->second, &v);
        return r ? weft_fail(r) : v;
    }
    return weft_fail(r);
}

static void awaited_future(void)
{
    for (int mode = 0; mode < 3; mode++) {
        awaiting a = {weft_future_new(), weft_future_new(), mode};
        int base = atomic_load(&started);
        weft_future *t = spawn_on(await_inner, &a, 1);
        ok(eventually(atomic_load(&started) > base), "started");
        settle(1);
        weft_cancel(t);
        ok(weft_cancelled(a.inner), "60 the awaited future is cancelled at once (mode %d)", mode);
        if (mode == 2) weft_future_set_result(a.second, (void *)9);
        void *v = NULL;
        int r = weft_await(t, &v);
        if (mode == 0)
            ok(r == -ECANCELED && weft_cancelled(t), "61 re-raised: the task is cancelled");
        if (mode == 1)
            ok(r == 0 && v == (void *)42 && !weft_cancelled(t),
               "60 caught, returns 42: result 42, not cancelled");
        if (mode == 2) ok(r == 0 && v == (void *)9, "60 caught, awaits another future: its value");
        weft_future_release(t);
        weft_future_release(a.inner);
        weft_future_release(a.second);
    }

    /* cancelling the awaited future itself (not the task) */
    awaiting a = {weft_future_new(), NULL, 0};
    int base = atomic_load(&started);
    weft_future *t = spawn_on(await_inner, &a, 1);
    ok(eventually(atomic_load(&started) > base), "started");
    settle(1);
    weft_cancel(a.inner);
    ok(weft_await(t, NULL) == -ECANCELED && weft_cancelled(t),
       "61 cancelling the future a task awaits: the task (re-raising) ends cancelled");
    weft_future_release(t);
    weft_future_release(a.inner);
}

/* ---- 61: cancel at end; cancel the current task, then await; nested calls ------------------ */

static void *cancel_self_then_return(void *arg)
{
    weft_cancel(weft_current());
    return arg;
}

static void *cancel_self_then_await(void *arg)
{
    weft_cancel(weft_current());
    return (void *)(intptr_t)weft_await(arg, NULL);
}

static atomic_int inner_ran;

static void *mark_inner(void *arg)
{
    atomic_store(&inner_ran, 1);
    return arg;
}

/* Cancel ourselves, spawn a task and await it: 1 if it was cancelled before it ran. The task
 * stays on our worker, so it cannot start before we await it (as in asyncio). */
static void *cancel_self_then_await_new(void *arg)
{
    (void)arg;
    weft_cancel(weft_current());
    weft_future *inner = spawn_on(mark_inner, NULL, weft_worker_id());
    int r = weft_await(inner, NULL);
    int cancelled = weft_cancelled(inner);
    weft_await(inner, NULL);
    weft_future_release(inner);
    return (void *)(intptr_t)(r == -ECANCELED && cancelled);
}

static int nested_inner(void)
{
    int r = weft_sleep(60);
    if (r == -ECANCELED) return r; /* catches and re-raises */
    return 0;
}

static void *nested_outer(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    int proof = 1;
    if (nested_inner() == -ECANCELED) proof += 100; /* the outer catches */
    return (void *)(intptr_t)proof;
}

static void cancel_current(void)
{
    weft_future *t = spawn_on(cancel_self_then_return, (void *)5, 1);
    ok(weft_await(t, NULL) == -ECANCELED && weft_future_result(t) == NULL,
       "61 a task that cancels itself and returns ends cancelled; its value is dropped");
    weft_future_release(t);

    weft_future *plain = weft_future_new();
    t = spawn_on(cancel_self_then_await, plain, 1);
    void *r = NULL;
    weft_await(t, &r);
    cmp_ok((intptr_t)r, "==", -ECANCELED, "61 cancel self, then await: -ECANCELED");
    ok(weft_cancelled(plain), "61 ... and the awaited future is cancelled");
    weft_future_release(t);
    weft_future_release(plain);

    atomic_store(&inner_ran, 0);
    t = spawn_on(cancel_self_then_await_new, NULL, 2);
    weft_await(t, &r);
    ok(r == (void *)1 && !atomic_load(&inner_ran),
       "61 cancel self, then await a new task: it is cancelled before it runs");
    weft_future_release(t);

    int base = atomic_load(&started);
    t = spawn_on(nested_outer, NULL, 1);
    ok(eventually(atomic_load(&started) > base), "started");
    settle(1);
    weft_cancel(t);
    weft_await(t, &r);
    cmp_ok((intptr_t)r, "==", 101, "61 through nested calls: inner re-raises, outer catches (101)");
    weft_future_release(t);
}

/* ---- 62, 63: cancelling() and uncancel() -------------------------------------------------- */

typedef struct counting {
    int seen_after, uncancel_ret, next_wait;
} counting;

static void *count_requests(void *arg)
{
    counting *c = arg;
    atomic_fetch_add(&started, 1);
    weft_sleep(60);
    c->seen_after = weft_cancelling();
    c->uncancel_ret = weft_uncancel();
    weft_uncancel();
    weft_uncancel();
    c->next_wait = weft_sleep(0.001); /* back to 0: it keeps running */
    return (void *)1;
}

static void *uncancel_before_delivery(void *arg)
{
    (void)arg;
    weft_cancel(weft_current());
    int n = weft_uncancel();
    int r = weft_sleep(0.001);
    return (void *)(intptr_t)(n == 0 && r == 0 ? 42 : -1);
}

static void cancelling_counts(void)
{
    counting c = {0};
    int base = atomic_load(&started);
    weft_future *t = spawn_on(count_requests, &c, 0); /* our worker: it stays put meanwhile */
    ok(eventually(atomic_load(&started) > base), "started");
    int ones = weft_cancel(t) + weft_cancel(t) + weft_cancel(t);
    cmp_ok(ones, "==", 3, "62 repeated cancels of a pending task each return 1");
    void *r = NULL;
    weft_await(t, &r);
    cmp_ok(c.seen_after, "==", 3, "62 cancelling() counts the requests (3)");
    cmp_ok(c.uncancel_ret, "==", 2, "62 uncancel() returns the new count (2)");
    ok(c.next_wait == 0 && r == (void *)1 && !weft_cancelled(t),
       "62 a task uncancelled to 0 keeps running");
    weft_future_release(t);
    cmp_ok(weft_uncancel(), "==", 0, "62 uncancel never goes below 0");

    t = spawn_on(uncancel_before_delivery, NULL, 1);
    weft_await(t, &r);
    cmp_ok((intptr_t)r, "==", 42, "63 cancel then uncancel before delivery: no cancellation, 42");
    weft_future_release(t);
}

/* ---- 64: a cancellation turned into another error; set_result on a task ------------------- */

static void *convert_cancel(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    weft_sleep(60);
    return weft_fail(-EIO);
}

static void converted(void)
{
    int base = atomic_load(&started);
    weft_future *t = spawn_on(convert_cancel, NULL, 1);
    ok(eventually(atomic_load(&started) > base), "started");
    weft_cancel(t);
    ok(weft_await(t, NULL) == -EIO && weft_done(t) && !weft_cancelled(t),
       "64 a cancellation turned into -EIO: done, not cancelled, error -EIO");
    ok(weft_future_set_result(t, NULL) < 0 && weft_future_set_error(t, -EIO) < 0,
       "64 set_result / set_error on a task are refused");
    weft_future_release(t);
}

/* ---- 65: weft_current ---------------------------------------------------------------------- */

static atomic_int cur_ok, cur_cb_ran, cur_thread_ok;
static _Atomic(weft_future *) handles[4];

static void *check_current(void *arg)
{
    _Atomic(weft_future *) *slot = arg;
    weft_future *self;
    while (!(self = atomic_load(slot))) weft_yield(); /* the spawner publishes our handle */
    int good = 1;
    for (int i = 0; i < 50; i++) {
        good &= weft_current() == self;
        weft_yield();
    }
    atomic_fetch_add(&cur_ok, good);
    return NULL;
}

static void current_in_callback(void *arg)
{
    (void)arg;
    atomic_store(&cur_cb_ran, 1 + (weft_current() == NULL));
}

static void *current_in_thread(void *arg)
{
    (void)arg;
    atomic_store(&cur_thread_ok, 1 + (weft_current() == NULL));
    return NULL;
}

static void current(void)
{
    atomic_store(&cur_ok, 0);
    for (int i = 0; i < 4; i++) atomic_store(&handles[i], NULL);
    for (int i = 0; i < 4; i++) atomic_store(&handles[i], spawn_on(check_current, &handles[i], i));
    for (int i = 0; i < 4; i++) weft_await(handles[i], NULL);
    cmp_ok(atomic_load(&cur_ok), "==", 4,
           "65 weft_current() is the right task in interleaved tasks");
    for (int i = 0; i < 4; i++) weft_future_release(handles[i]);
    weft_call_soon(current_in_callback, NULL);
    ok(eventually(atomic_load(&cur_cb_ran)) && atomic_load(&cur_cb_ran) == 2,
       "65 weft_current() is NULL in a callback");
    pthread_t th;
    pthread_create(&th, NULL, current_in_thread, NULL);
    ok(eventually(atomic_load(&cur_thread_ok)), "the thread ran");
    pthread_join(th, NULL);
    cmp_ok(atomic_load(&cur_thread_ok), "==", 2, "65 and in a foreign thread");
}

static void *scenarios(void *arg)
{
    (void)arg;
    future_states();
    callbacks();
    cancel_sleeping_and_yielding();
    awaited_future();
    cancel_current();
    cancelling_counts();
    converted();
    current();
    return NULL;
}

/* What a run leaves behind, cleared before the next one. */
static void reset_state(void)
{
    atomic_store(&cur_cb_ran, 0);
    atomic_store(&cur_thread_ok, 0);
}

int main(void)
{
    run_scenarios("test_task_semantics", scenarios, reset_state);
    done_testing();
}
