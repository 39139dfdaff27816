/*
 * test_timeout: asyncio.timeout's rules on weft_timeout_* (asyncio-semantics.md §3.10, cases
 * 81-85), on one worker and on four: expiry cancels the waits inside and converts to
 * -ETIMEDOUT at the end, the task is not left cancelled; an unexpired or disabled scope;
 * a zero delay fires even for weft_sleep(0); nested scopes (equal deadlines: the inner sees
 * -ECANCELED, the outer -ETIMEDOUT; an inner expiry handled inside does not disarm the
 * outer); an outside cancellation is not a timeout; a scope begun after an earlier
 * cancellation converts its own expiry (the snapshot); reschedule (extend, shorten,
 * disable, after expiry); a deadline that fires while the task computes; the cancellation
 * travelling into an awaited task; misuse (outside a task, another task's scope, NaN).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "harness.h"
#include "tap.h"
#include "testutil.h"
#include "weft.h"

/* ---- helpers ----------------------------------------------------------------------------- */

/* Sleep until `until` (weft_now() time) whatever cancellations arrive meanwhile. */
static void sleep_through(double until)
{
    while (weft_now() < until) weft_sleep(0.002);
}

/* ---- scenarios --------------------------------------------------------------------------- */

/* 81: expiry: the wait inside returns -ECANCELED, the end -ETIMEDOUT; the task is not left
 * cancelled. An unexpired scope and a disabled one end with 0. */
static void basic(void)
{
    double t0 = weft_now();
    weft_timeout *t = weft_timeout_begin(0.03);
    ok(t != NULL, "81 begin");
    cmp_ok(weft_sleep(10), "==", -ECANCELED, "81 a wait inside an expired scope: -ECANCELED");
    double took = weft_now() - t0;
    ok(took >= 0.025 && took < 10, "81 ... at the deadline (%.3f s)", took);
    cmp_ok(weft_timeout_end(t), "==", -ETIMEDOUT, "81 the end converts it: -ETIMEDOUT");
    cmp_ok(weft_cancelling(), "==", 0, "81 the task is not cancelled");
    cmp_ok(weft_sleep(0.001), "==", 0, "81 its next wait runs normally");

    t = weft_timeout_begin(10);
    cmp_ok(weft_sleep(0.005), "==", 0, "81 an unexpired scope: waits run normally");
    cmp_ok(weft_timeout_end(t), "==", 0, "81 and it ends with 0");

    t = weft_timeout_begin(-1);
    cmp_ok(weft_sleep(0.02), "==", 0, "81 a negative delay: no deadline");
    cmp_ok(weft_timeout_end(t), "==", 0, "81 ends with 0");
}

/* 81: a zero delay (a deadline in the past) fires on the next wait, even weft_sleep(0). */
static void zero_delay(void)
{
    weft_timeout *t = weft_timeout_begin(0);
    cmp_ok(weft_sleep(0), "==", -ECANCELED, "81 delay 0: even weft_sleep(0) is cancelled");
    cmp_ok(weft_timeout_end(t), "==", -ETIMEDOUT, "81 delay 0: -ETIMEDOUT");

    t = weft_timeout_begin(10);
    cmp_ok(weft_timeout_reschedule(t, 0), "==", 0, "85 reschedule into the past");
    cmp_ok(weft_sleep(0), "==", -ECANCELED, "85 ... fires at the next wait");
    cmp_ok(weft_timeout_end(t), "==", -ETIMEDOUT, "85 ... -ETIMEDOUT");
    cmp_ok(weft_cancelling(), "==", 0, "no cancellation left");
}

/* 82: nested scopes. */
static void nested(void)
{
    double t0 = weft_now();
    weft_timeout *outer = weft_timeout_begin(0.03), *inner = weft_timeout_begin(0.03);
    cmp_ok(weft_sleep(10), "==", -ECANCELED, "82 equal deadlines: the wait is cancelled");
    sleep_through(t0 + 0.06); /* both deadlines have fired */
    cmp_ok(weft_timeout_end(inner), "==", -ECANCELED,
           "82 equal deadlines: the inner scope lets the cancellation through (-ECANCELED)");
    cmp_ok(weft_timeout_end(outer), "==", -ETIMEDOUT, "82 the outer one converts (-ETIMEDOUT)");
    cmp_ok(weft_cancelling(), "==", 0, "82 no cancellation left");

    t0 = weft_now();
    outer = weft_timeout_begin(0.1);
    inner = weft_timeout_begin(0.01);
    cmp_ok(weft_sleep(10), "==", -ECANCELED, "82 the inner deadline cancels the wait");
    cmp_ok(weft_timeout_end(inner), "==", -ETIMEDOUT, "82 the inner scope times out");
    cmp_ok(weft_sleep(10), "==", -ECANCELED, "82 the outer scope is still armed");
    ok(weft_now() - t0 >= 0.09, "82 ... and fires at its own deadline");
    cmp_ok(weft_timeout_end(outer), "==", -ETIMEDOUT, "82 the outer scope times out");
    cmp_ok(weft_cancelling(), "==", 0, "82 no cancellation left");
}

/* 83: an outside cancellation inside an unexpired scope is not a timeout; a scope begun after
 * an earlier (swallowed) cancellation converts its own expiry. */
typedef struct report {
    int sleep1, end1, count1, sleep2, end2, count2;
} report;

static void *outside_cancel_body(void *arg)
{
    report *rep = arg;
    weft_timeout *t = weft_timeout_begin(10);
    rep->sleep1 = weft_sleep(30);
    rep->end1 = weft_timeout_end(t);
    rep->count1 = weft_cancelling();
    t = weft_timeout_begin(0.02); /* like a timeout in a `finally` after the cancellation */
    rep->sleep2 = weft_sleep(30);
    rep->end2 = weft_timeout_end(t);
    rep->count2 = weft_cancelling();
    return NULL;
}

static void outside_cancel(void)
{
    report rep;
    weft_future *f = spawn_settled(outside_cancel_body, &rep, 1);
    weft_cancel(f);
    weft_await(f, NULL);
    ok(rep.sleep1 == -ECANCELED && rep.end1 == 0,
       "83 an outside cancel in an unexpired scope: -ECANCELED inside, the end 0");
    cmp_ok(rep.count1, "==", 1, "83 the outside request stays counted");
    ok(rep.sleep2 == -ECANCELED && rep.end2 == -ETIMEDOUT,
       "83 a later scope still converts its own expiry (snapshot 1)");
    cmp_ok(rep.count2, "==", 1, "83 and leaves the count at 1");
    weft_future_release(f);
}

/* 85: reschedule: extend, shorten, disable; after expiry it is refused. */
static void reschedule(void)
{
    weft_timeout *t = weft_timeout_begin(0.02);
    cmp_ok(weft_timeout_reschedule(t, 10), "==", 0, "85 reschedule later");
    cmp_ok(weft_sleep(0.05), "==", 0, "85 the old deadline no longer fires");
    cmp_ok(weft_timeout_end(t), "==", 0, "85 end 0");

    t = weft_timeout_begin(10);
    cmp_ok(weft_timeout_reschedule(t, 0.02), "==", 0, "85 reschedule sooner");
    cmp_ok(weft_sleep(10), "==", -ECANCELED, "85 the new deadline fires");
    cmp_ok(weft_timeout_reschedule(t, 10), "==", -EPERM, "85 reschedule after expiry: -EPERM");
    cmp_ok(weft_timeout_end(t), "==", -ETIMEDOUT, "85 end -ETIMEDOUT");

    t = weft_timeout_begin(0.02);
    cmp_ok(weft_timeout_reschedule(t, -1), "==", 0, "85 reschedule to no deadline");
    cmp_ok(weft_sleep(0.05), "==", 0, "85 nothing fires");
    cmp_ok(weft_timeout_reschedule(t, NAN), "==", -EINVAL, "reschedule(NaN): -EINVAL");
    cmp_ok(weft_timeout_end(t), "==", 0, "85 end 0");
}

/* 85 (verified): a block that handles the cancellation itself: the end still reports the
 * expiry (a C caller decides), and the count is back to 0. */
static void handled_inside(void)
{
    weft_timeout *t = weft_timeout_begin(0.01);
    int r = weft_sleep(10);
    cmp_ok(weft_timeout_end(t), "==", -ETIMEDOUT, "85 handled inside: the end reports the expiry");
    ok(r == -ECANCELED && weft_cancelling() == 0, "85 and the count is back to 0");
}

/* A deadline that passes while the task computes: the next wait is cancelled. */
static void busy_task(void)
{
    weft_timeout *t = weft_timeout_begin(0.01);
    double until = weft_now() + 0.03;
    while (weft_now() < until) {
    }
    cmp_ok(weft_sleep(10), "==", -ECANCELED,
           "a deadline passed while computing: the next wait is cancelled");
    cmp_ok(weft_timeout_end(t), "==", -ETIMEDOUT, "and the end -ETIMEDOUT");
}

/* The cancellation travels into an awaited task (Task.cancel through the awaited future). */
static atomic_int child_started, child_cleaned;

static void *sleepy_child(void *arg)
{
    (void)arg;
    atomic_store(&child_started, 1);
    int r = weft_sleep(30);
    atomic_store(&child_cleaned, 1);
    return r ? weft_fail(r) : NULL;
}

static void awaits_a_task(void)
{
    weft_future *c = spawn_on(sleepy_child, NULL, 2);
    ok(eventually(atomic_load(&child_started)), "the child started");
    weft_timeout *t = weft_timeout_begin(0.1);
    cmp_ok(weft_await(c, NULL), "==", -ECANCELED, "awaiting a task: the deadline cancels it");
    ok(atomic_load(&child_cleaned) && weft_cancelled(c), "the awaited task ended cancelled");
    cmp_ok(weft_timeout_end(t), "==", -ETIMEDOUT, "and the end -ETIMEDOUT");
    weft_future_release(c);
}

/* ---- misuse ------------------------------------------------------------------------------ */

static atomic_int th_done;
static int th_errno;
static weft_timeout *th_scope;

static void *thread_begin(void *arg)
{
    (void)arg;
    errno = 0;
    th_scope = weft_timeout_begin(1);
    th_errno = errno;
    atomic_store(&th_done, 1);
    return NULL;
}

static atomic_int cb_errno;
static weft_timeout *cb_scope;

static void begin_in_callback(void *arg)
{
    (void)arg;
    errno = 0;
    cb_scope = weft_timeout_begin(1);
    atomic_store(&cb_errno, errno);
}

static void *end_other(void *arg)
{
    return (void *)(intptr_t)weft_timeout_end(arg);
}

static void misuse(void)
{
    pthread_t th;
    pthread_create(&th, NULL, thread_begin, NULL);
    ok(eventually(atomic_load(&th_done)), "the thread ran");
    pthread_join(th, NULL);
    ok(th_scope == NULL && th_errno == EPERM, "85 begin outside a task (a thread): NULL, EPERM");
    run_callback(begin_in_callback, NULL, "the callback ran");
    ok(cb_scope == NULL && atomic_load(&cb_errno) == EPERM, "85 begin in a callback: NULL, EPERM");
    errno = 0;
    ok(weft_timeout_begin(NAN) == NULL && errno == EINVAL, "begin(NaN): NULL, EINVAL");

    weft_timeout *t = weft_timeout_begin(10);
    cmp_ok(outcome(spawn_on(end_other, t, 1)), "==", -EPERM, "ending another task's scope: -EPERM");
    cmp_ok(weft_timeout_end(t), "==", 0, "the scope's own task ends it");
    cmp_ok(weft_timeout_end(NULL), "==", -EINVAL, "end(NULL): -EINVAL");
    cmp_ok(weft_timeout_reschedule(NULL, 1), "==", -EINVAL, "reschedule(NULL): -EINVAL");
}

static void *scenarios(void *arg)
{
    (void)arg;
    basic();
    zero_delay();
    nested();
    outside_cancel();
    reschedule();
    handled_inside();
    busy_task();
    awaits_a_task();
    misuse();
    return NULL;
}

/* What a run leaves behind, cleared before the next one. */
static void reset_state(void)
{
    atomic_store(&th_done, 0);
    atomic_store(&child_cleaned, 0);
    atomic_store(&child_started, 0);
}

int main(void)
{
    run_scenarios("test_timeout", scenarios, reset_state);
    done_testing();
}
