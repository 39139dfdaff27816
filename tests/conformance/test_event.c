/*
 * test_event: asyncio.Event's rules on weft_event (asyncio-semantics.md cases 9-11), on one
 * worker and on several: set() wakes every waiter, waiters woken stay woken through a
 * clear(), cancellation before and after the wake-up, waits from callbacks and threads.
 *
 * Handshakes, not timing: the scenarios run pinned to worker 0; a waiter is pinned to a
 * worker k, and settle(k) awaits a probe pinned behind it on k's FIFO, so the waiter has
 * run up to its suspension when settle returns. A waiter pinned to worker 0 cannot resume
 * while the scenario runs: that is CPython's window between wake-up and resumption.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "harness.h"
#include "tap.h"
#include "testutil.h"
#include "weft.h"

/* ---- bodies ------------------------------------------------------------------------------ */

typedef struct event_arg {
    weft_event *e;
    int id;
} event_arg;

static void *wait_log(void *p)
{
    event_arg *a = p;
    int r = weft_event_wait(a->e);
    if (!r) log_add(a->id);
    return (void *)(intptr_t)r;
}

/* ---- cases ------------------------------------------------------------------------------- */

/* 9 [ORD] test_wait: two blocked waiters and one not started yet all finish on set(). */
static void case_wait(void)
{
    weft_event *e = weft_event_new();
    log_reset();
    event_arg a1 = {e, 1}, a2 = {e, 2}, a3 = {e, 3};
    weft_future *t1 = spawn_settled(wait_log, &a1, 1);
    weft_future *t2 = spawn_settled(wait_log, &a2, 2);
    ok(!weft_done(t1) && !weft_done(t2), "9: t1 and t2 block");
    weft_future *t3 = spawn_on(wait_log, &a3, 0); /* starts after set() */
    cmp_ok(weft_event_set(e), "==", 0, "9: set");
    intptr_t r1 = outcome(t1), r2 = outcome(t2), r3 = outcome(t3);
    ok(r1 == 0 && r2 == 0 && r3 == 0, "9: every wait returns 0");
    ok(log_count() == 3 && logged(1) && logged(2) && logged(3),
       "9: all three finished (in any order)");
    weft_event_free(e);
}

/* 10 [SEM] test_wait_on_set, test_wait_cancel. */
static void case_wait_on_set_and_cancel(void)
{
    weft_event *e = weft_event_new();
    weft_event_set(e);
    cmp_ok(weft_event_wait(e), "==", 0, "10: wait on a set event returns 0 at once");
    weft_event_clear(e);

    log_reset();
    event_arg a = {e, 1};
    weft_future *t = spawn_settled(wait_log, &a, 1);
    weft_cancel(t);
    cmp_ok(outcome(t), "==", -ECANCELED, "10: a cancelled wait returns -ECANCELED");
    weft_event_set(e); /* would touch the dead waiter if it had stayed queued */
    cmp_ok(log_count(), "==", 0, "10: no waiter remains to be woken");

    /* a wait cancelled after set() woke it, before it resumed: asyncio raises */
    weft_event_clear(e);
    t = spawn_settled(wait_log, &a, 0);
    weft_event_set(e);
    weft_cancel(t);
    cmp_ok(outcome(t), "==", -ECANCELED, "10: cancelled between wake-up and resumption");
    weft_event_free(e);
}

/* 11 [SEM] test_clear, test_clear_with_waiters. */
static void case_clear(void)
{
    weft_event *e = weft_event_new();
    ok(!weft_event_is_set(e), "11: a new event is clear");
    weft_event_set(e);
    ok(weft_event_is_set(e), "11: set");
    weft_event_clear(e);
    ok(!weft_event_is_set(e), "11: clear");

    log_reset();
    event_arg a = {e, 1};
    weft_future *t = spawn_on(wait_log, &a, 0); /* cannot resume while we run */
    settle(0);
    ok(!weft_done(t), "11: the waiter blocks");
    weft_event_set(e);
    weft_event_clear(e);
    ok(!weft_event_is_set(e), "11: set then clear: clear");
    weft_event_set(e);
    weft_event_set(e);
    ok(weft_event_is_set(e), "11: set twice: set");
    weft_event_clear(e);
    cmp_ok(outcome(t), "==", 0, "11: the waiter woken before the clear returns 0");
    ok(log_is((int[]){1}, 1), "11: it woke exactly once");
    ok(!weft_event_is_set(e), "11: is_set reflects the last call");
    weft_event_free(e);
}

/* Many waiters on several workers and foreign threads: one set() wakes them all. */
static void case_many_waiters(void)
{
    enum { TASKS = 64, THREADS = 3 };
    weft_event *e = weft_event_new();
    log_reset();
    event_arg a = {e, 7};
    weft_future *t[TASKS];
    for (int i = 0; i < TASKS; i++) t[i] = spawn_on(wait_log, &a, i);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, wait_log, &a);
    for (int k = 0; k < 4; k++) settle(k);
    weft_sleep(0.005);
    cmp_ok(log_count(), "==", 0, "many: nobody passes before set()");
    weft_event_set(e);
    int bad = 0;
    for (int i = 0; i < TASKS; i++) bad |= outcome(t[i]) != 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad |= r != NULL;
    }
    ok(!bad, "many: every task and thread waiter returns 0");
    cmp_ok(log_count(), "==", TASKS + THREADS, "many: all were woken once");
    weft_event_free(e);
}

/* Misuse: NULL handles; waiting on a worker outside a task. */
typedef struct cb_arg {
    weft_event *set, *clear;
    int r_set, r_clear;
} cb_arg;

static void wait_from_callback(void *p)
{
    cb_arg *a = p;
    a->r_set = weft_event_wait(a->set);
    a->r_clear = weft_event_wait(a->clear);
}

static void case_misuse(void)
{
    cmp_ok(weft_event_set(NULL), "==", -EINVAL, "NULL: set -EINVAL");
    cmp_ok(weft_event_clear(NULL), "==", -EINVAL, "NULL: clear -EINVAL");
    cmp_ok(weft_event_wait(NULL), "==", -EINVAL, "NULL: wait -EINVAL");
    cmp_ok(weft_event_is_set(NULL), "==", 0, "NULL: is_set 0");
    weft_event_free(NULL);

    cb_arg a = {.set = weft_event_new(), .clear = weft_event_new()};
    weft_event_set(a.set);
    run_callback(wait_from_callback, &a, "callback ran");
    cmp_ok(a.r_set, "==", 0, "callback: wait on a set event: 0");
    cmp_ok(a.r_clear, "==", -EPERM, "callback: a wait that would block: -EPERM");
    weft_event_free(a.set);
    weft_event_free(a.clear);

    weft_event *e = weft_event_new();
    log_reset();
    event_arg w = {e, 1};
    weft_future *t = spawn_settled(wait_log, &w, 1);
    diag("expect a message about an event freed with a waiter:");
    weft_event_free(e); /* refused: the event stays usable */
    weft_event_set(e);
    cmp_ok(outcome(t), "==", 0, "free with a waiter is refused; the waiter still wakes");
    weft_event_free(e);
}

static void *scenarios(void *arg)
{
    (void)arg;
    case_wait();
    case_wait_on_set_and_cancel();
    case_clear();
    case_many_waiters();
    case_misuse();
    return NULL;
}

int main(void)
{
    run_scenarios("test_event", scenarios, NULL);
    done_testing();
}
