/*
 * test_condition: asyncio.Condition's rules on weft_cond (asyncio-semantics.md cases
 * 12-22), on one worker and on several: notify wakes FIFO and nobody runs before the lock
 * is free; wait() re-acquires the lock on every way out, cancellation included; one
 * -ECANCELED for the requests made while waiting and re-acquiring; a notification taken
 * by a cancelled waiter is passed on (gh-112202); misuse returns -EPERM / -EINVAL.
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

typedef struct cond_arg {
    weft_cond *c;
    weft_lock *l;
    int id;
    int r;          /* what wait() returned */
    int held;       /* the lock was locked when wait() returned */
    int released;   /* the waiter's own release afterwards: 0 proves it held the lock */
    int cancelling; /* weft_cancelling() after the wait */
    int later;      /* a wait after the cancelled one */
} cond_arg;

/* Acquire, wait, note whether the lock is held, log the id; then release it or keep it. */
static void *wait_logged(cond_arg *a, int release)
{
    weft_cond_acquire(a->c);
    a->r = weft_cond_wait(a->c);
    a->held = weft_lock_locked(a->l);
    if (!a->r) log_add(a->id);
    if (release) a->released = weft_cond_release(a->c);
    return (void *)(intptr_t)a->r;
}

/* asyncio's `await cond.acquire(); await cond.wait(); result.append(id)`: keeps the lock. */
static void *wait_keep(void *p)
{
    return wait_logged(p, 0);
}

/* `async with cond: await cond.wait(); result.append(id)` */
static void *wait_release(void *p)
{
    return wait_logged(p, 1);
}

/* The same, re-raising a cancellation (the task ends cancelled). */
static void *wait_reraise(void *p)
{
    wait_release(p);
    cond_arg *a = p;
    return a->r ? weft_fail(a->r) : NULL;
}

static void *wait_then_check(void *p)
{
    cond_arg *a = p;
    weft_cond_acquire(a->c);
    a->r = weft_cond_wait(a->c);
    a->cancelling = weft_cancelling();
    a->later = weft_sleep(0.001);
    a->released = weft_cond_release(a->c);
    return (void *)(intptr_t)a->r;
}

static cond_arg arg_for(weft_cond *c, weft_lock *l, int id)
{
    return (cond_arg){.c = c, .l = l, .id = id, .r = 1, .held = -1, .released = 1};
}

/* Run a case on a new condition over a new lock; free both after it. */
static void with_cond(void (*run)(weft_cond *c, weft_lock *l))
{
    weft_lock *l = weft_lock_new();
    weft_cond *c = weft_cond_new(l);
    run(c, l);
    weft_cond_free(c);
    weft_lock_free(l);
}

/* ---- cases ------------------------------------------------------------------------------- */

/* 12 [ORD] test_wait: notify wakes nobody until the lock is free; each woken waiter holds
 * the lock when wait() returns; notify(2) lets two through one at a time. */
static void case_wait(weft_cond *c, weft_lock *l)
{
    log_reset();
    cond_arg a[3] = {arg_for(c, l, 1), arg_for(c, l, 2), arg_for(c, l, 3)};
    weft_future *t[3];
    for (int i = 0; i < 3; i++) t[i] = spawn_settled(wait_keep, &a[i], i + 1);
    ok(!weft_lock_locked(l), "12: three waiters; wait() released the lock");
    weft_cond_acquire(c);
    cmp_ok(weft_cond_notify(c, 1), "==", 0, "12: notify(1) under the lock");
    for (int k = 1; k <= 3; k++) settle(k);
    cmp_ok(log_count(), "==", 0, "12: nobody proceeds while the notifier holds the lock");
    weft_cond_release(c);
    ok(eventually(log_count() == 1), "12: the release lets the notified waiter through");
    ok(log_is((int[]){1}, 1) && a[0].held == 1 && weft_lock_locked(l),
       "12: the first waiter (FIFO) returned holding the lock");
    weft_cond_release(c);
    weft_cond_acquire(c);
    weft_cond_notify(c, 2);
    weft_cond_release(c);
    ok(eventually(log_count() == 2), "12: notify(2): one proceeds");
    for (int k = 1; k <= 3; k++) settle(k);
    ok(log_count() == 2 && weft_lock_locked(l), "12: the other waits for the lock");
    weft_cond_release(c);
    ok(eventually(log_count() == 3), "12: then the other proceeds");
    ok(weft_lock_locked(l) && a[1].held == 1 && a[2].held == 1, "12: each held the lock");
    weft_cond_release(c);
    int all = 1;
    for (int i = 0; i < 3; i++) all &= outcome(t[i]) == 0;
    ok(all && logged(2) && logged(3), "12: every wait() returned 0");
}

/* 13 [SEM] test_wait_cancel: the lock is held again when -ECANCELED comes out. */
static void case_wait_cancel(weft_cond *c, weft_lock *l)
{
    log_reset();
    cond_arg a = arg_for(c, l, 1);
    weft_future *t = spawn_settled(wait_release, &a, 1);
    weft_cancel(t);
    cmp_ok(outcome(t), "==", -ECANCELED, "13: a cancelled wait() returns -ECANCELED");
    ok(a.held == 1 && a.released == 0, "13: holding the lock again");
    weft_cond_acquire(c);
    weft_cond_notify_all(c); /* would touch the dead waiter if it had stayed queued */
    weft_cond_release(c);
    ok(!weft_lock_locked(l) && log_count() == 0, "13: no waiter remains");
}

/* 14 [SEM] test_wait_cancel_contested: notified, then cancelled while the notifier holds
 * the lock: the task ends holding the lock, whether wait() returned 0 or -ECANCELED. */
static void case_wait_cancel_contested(weft_cond *c, weft_lock *l)
{
    log_reset();
    cond_arg a = arg_for(c, l, 1);
    weft_future *t = spawn_settled(wait_release, &a, 1);
    weft_cond_acquire(c);
    weft_cond_notify(c, 1);
    weft_cancel(t);
    settle(1);
    weft_cond_release(c);
    intptr_t r = outcome(t);
    ok(r == 0 || r == -ECANCELED, "14: wait() returned 0 or -ECANCELED (%d)", (int)r);
    ok(a.held == 1 && a.released == 0, "14: holding the lock either way");
    ok(!weft_lock_locked(l), "14: free after its release");
}

/* 15 [SEM] test_wait_cancel_after_notify (bpo-32841): cancelled while blocked re-acquiring
 * after a notify: the task ends cancelled. */
static void case_wait_cancel_after_notify(weft_cond *c, weft_lock *l)
{
    cond_arg a = arg_for(c, l, 1);
    weft_future *t = spawn_settled(wait_reraise, &a, 0); /* waiting */
    weft_cond_acquire(c);
    weft_cond_notify(c, 1);
    settle(0); /* woken, now queued on the lock we hold */
    ok(!weft_done(t), "15: the notified waiter blocks re-acquiring");
    weft_cancel(t);
    settle(0); /* the cancellation reaches it; it still needs the lock */
    ok(!weft_done(t), "15: a cancellation does not end the re-acquire");
    weft_cond_release(c);
    cmp_ok(outcome(t), "==", -ECANCELED, "15: the task ends cancelled");
    ok(a.r == -ECANCELED && a.held == 1 && a.released == 0, "15: wait() re-acquired first");
}

/* 16 [SEM] test_wait_unacquired, test_notify_unacquired, test_notify_all_unacquired,
 * test_wait_for_unacquired. */
static int pred_false(void *arg)
{
    (void)arg;
    return 0;
}

static int pred_value(void *arg)
{
    return *(int *)arg;
}

static void case_unacquired(void)
{
    weft_cond *c = weft_cond_new(NULL);
    cmp_ok(weft_cond_wait(c), "==", -EPERM, "16: wait without the lock: -EPERM");
    cmp_ok(weft_cond_notify(c, 1), "==", -EPERM, "16: notify without the lock: -EPERM");
    cmp_ok(weft_cond_notify_all(c), "==", -EPERM, "16: notify_all without the lock: -EPERM");
    cmp_ok(weft_cond_wait_for(c, pred_false, NULL), "==", -EPERM,
           "16: wait_for with a false predicate without the lock: -EPERM");
    int v = 123;
    cmp_ok(weft_cond_wait_for(c, pred_value, &v), "==", 123,
           "16: wait_for with a true predicate returns its value without the lock");
    weft_cond_free(c);
}

/* 17 [SEM] test_wait_for: still false after the first notify, true after the second. */
static atomic_int wait_for_state;

static int pred_state(void *arg)
{
    (void)arg;
    return atomic_load(&wait_for_state);
}

static void *wait_for_body(void *p)
{
    cond_arg *a = p;
    weft_cond_acquire(a->c);
    a->r = weft_cond_wait_for(a->c, pred_state, NULL);
    a->held = weft_lock_locked(a->l);
    a->released = weft_cond_release(a->c);
    return (void *)(intptr_t)a->r;
}

static void case_wait_for(weft_cond *c, weft_lock *l)
{
    atomic_store(&wait_for_state, 0);
    cond_arg a = arg_for(c, l, 1);
    weft_future *t = spawn_settled(wait_for_body, &a, 1);
    weft_cond_acquire(c);
    weft_cond_notify(c, 1);
    weft_cond_release(c);
    settle(1);
    ok(!weft_done(t), "17: after the first notify the predicate is false: still waiting");
    weft_cond_acquire(c);
    atomic_store(&wait_for_state, 1);
    weft_cond_notify(c, 1);
    weft_cond_release(c);
    cmp_ok(outcome(t), "==", 1, "17: after the second, wait_for returns the predicate's value");
    ok(a.held == 1 && a.released == 0, "17: holding the lock");
}

/* 18 [ORD] test_notify, test_notify_all: notify(1) wakes the first; notify(1) then
 * notify(2048) wake the rest; notify_all wakes all; notify(0) and notify(-1) none. */
static void case_notify(weft_cond *c, weft_lock *l)
{
    for (int all = 0; all < 2; all++) {
        log_reset();
        cond_arg a[3] = {arg_for(c, l, 1), arg_for(c, l, 2), arg_for(c, l, 3)};
        weft_future *t[3];
        for (int i = 0; i < 3; i++) t[i] = spawn_settled(wait_release, &a[i], i + 1);
        weft_cond_acquire(c);
        weft_cond_notify(c, 0);
        weft_cond_notify(c, -1);
        weft_cond_release(c);
        for (int k = 1; k <= 3; k++) settle(k);
        cmp_ok(log_count(), "==", 0, "18: notify(0) and notify(-1) wake nobody");
        if (all) {
            weft_cond_acquire(c);
            cmp_ok(weft_cond_notify_all(c), "==", 0, "18: notify_all");
            weft_cond_release(c);
        } else {
            weft_cond_acquire(c);
            weft_cond_notify(c, 1);
            weft_cond_release(c);
            ok(eventually(log_count() == 1), "18: notify(1) wakes one");
            for (int k = 1; k <= 3; k++) settle(k);
            ok(log_is((int[]){1}, 1), "18: the first in FIFO order, and only it");
            weft_cond_acquire(c);
            weft_cond_notify(c, 1);
            weft_cond_notify(c, 2048);
            weft_cond_release(c);
        }
        int good = 1;
        for (int i = 0; i < 3; i++) good &= outcome(t[i]) == 0 && a[i].held && !a[i].released;
        ok(good && log_count() == 3 && logged(1) && logged(2) && logged(3),
           "18: %s: all three woke, each holding the lock", all ? "notify_all" : "the rest");
    }
}

/* 19 [SEM] test_explicit_lock: a condition over a lock shares the lock's state, both ways;
 * two conditions over one lock keep their own waiters. */
static void case_explicit_lock(void)
{
    weft_lock *l = weft_lock_new();
    weft_cond *c = weft_cond_new(l), *other = weft_cond_new(l);
    weft_lock_acquire(l);
    cmp_ok(weft_cond_notify(c, 1), "==", 0, "19: the lock's acquire counts for the condition");
    cmp_ok(weft_cond_release(c), "==", 0, "19: the condition's release...");
    ok(!weft_lock_locked(l), "19: ...releases the lock");
    weft_cond_acquire(c);
    ok(weft_lock_locked(l), "19: the condition's acquire takes the lock");
    weft_lock_release(l);
    cmp_ok(weft_cond_release(c), "==", -EPERM, "19: released through the lock: -EPERM");

    log_reset();
    cond_arg a = arg_for(c, l, 1), b = arg_for(other, l, 2);
    weft_future *ta = spawn_on(wait_release, &a, 1), *tb = spawn_on(wait_release, &b, 2);
    settle(1);
    settle(2);
    weft_lock_acquire(l);
    weft_cond_notify_all(other);
    weft_lock_release(l);
    cmp_ok(outcome(tb), "==", 0, "19: notify_all on one condition wakes its waiter");
    settle(1);
    ok(!weft_done(ta), "19: not the other condition's");
    weft_lock_acquire(l);
    weft_cond_notify(c, 1);
    weft_lock_release(l);
    cmp_ok(outcome(ta), "==", 0, "19: which its own notify wakes");
    note("19: test_ambiguous_loops has no counterpart: weft primitives are not bound to a loop");
    weft_cond_free(c);
    weft_cond_free(other);
    weft_lock_free(l);
}

/* 20 [SEM] test_timeout_in_block: a timeout (a timer that cancels the waiting task, as
 * wait_for does) ends wait() with the lock held, so the block exits cleanly. */
static void cancel_cb(void *f)
{
    weft_cancel(f);
}

static void *wait_with_timeout(void *p)
{
    cond_arg *a = p;
    weft_cond_acquire(a->c);
    weft_call_later(0.02, cancel_cb, weft_current());
    a->r = weft_cond_wait(a->c);
    a->held = weft_lock_locked(a->l);
    a->released = weft_cond_release(a->c);
    return (void *)(intptr_t)a->r;
}

/* the same inside a timeout scope (asyncio.timeout): the scope turns it into -ETIMEDOUT */
static void *wait_in_scope(void *p)
{
    cond_arg *a = p;
    weft_cond_acquire(a->c);
    weft_timeout *scope = weft_timeout_begin(0.02);
    a->r = weft_cond_wait(a->c);
    a->later = weft_timeout_end(scope);
    a->held = weft_lock_locked(a->l);
    a->released = weft_cond_release(a->c);
    return (void *)(intptr_t)a->r;
}

static void case_timeout_in_block(weft_cond *c, weft_lock *l)
{
    cond_arg a = arg_for(c, l, 1);
    cmp_ok(outcome(spawn_on(wait_with_timeout, &a, 1)), "==", -ECANCELED,
           "20: the timed-out wait() returns -ECANCELED");
    ok(a.held == 1 && a.released == 0, "20: with the lock re-acquired");
    a = arg_for(c, l, 2);
    cmp_ok(outcome(spawn_on(wait_in_scope, &a, 1)), "==", -ECANCELED,
           "20: in a timeout scope: wait() returns -ECANCELED at the deadline");
    cmp_ok(a.later, "==", -ETIMEDOUT, "20: the scope ends with -ETIMEDOUT");
    ok(a.held == 1 && a.released == 0, "20: with the lock re-acquired");
}

/* 21 [SEM] test_cancelled_error_wakeup, test_cancelled_error_re_aquire: C has no exception
 * objects; the counterpart is that one cancellation comes out for the requests made while
 * waiting and while re-acquiring, and the next wait is not cancelled. */
static void case_one_cancellation(weft_cond *c, weft_lock *l)
{
    cond_arg a = arg_for(c, l, 1);
    weft_future *t = spawn_settled(wait_then_check, &a, 0);
    weft_cond_acquire(c);
    weft_cancel(t);
    settle(0); /* out of the wait, re-acquiring the lock we hold */
    weft_cancel(t);
    settle(0);
    weft_cond_release(c);
    cmp_ok(outcome(t), "==", -ECANCELED, "21: wait() returns -ECANCELED");
    cmp_ok(a.cancelling, "==", 2, "21: both requests counted");
    cmp_ok(a.later, "==", 0, "21: delivered once: the next wait is not cancelled");
    cmp_ok(a.released, "==", 0, "21: the lock was held");
}

/* 22 [SEM] test_cancelled_wakeup, test_cancelled_wakeup_relock (gh-112202): the notified
 * consumer is cancelled before it runs, or while re-acquiring: the other one consumes. */
typedef struct consumer_arg {
    weft_cond *c;
    int *state;
} consumer_arg;

static void *consumer(void *p)
{
    consumer_arg *a = p;
    weft_cond_acquire(a->c);
    while (*a->state == 0) {
        int r = weft_cond_wait(a->c);
        if (r) {
            weft_cond_release(a->c);
            return (void *)(intptr_t)r;
        }
    }
    (*a->state)--;
    weft_cond_release(a->c);
    return NULL;
}

static void case_cancelled_wakeup(void)
{
    for (int relock = 0; relock < 2; relock++) {
        int state = 0;
        weft_cond *c = weft_cond_new(NULL);
        consumer_arg a = {c, &state};
        weft_future *c1 = spawn_settled(consumer, &a, 0);
        weft_future *c2 = spawn_settled(consumer, &a, 1);
        weft_cond_acquire(c);
        state++;
        weft_cond_notify(c, 1); /* c1, first in line */
        if (relock) settle(0);  /* c1 now blocks re-acquiring */
        weft_cancel(c1);
        weft_cond_release(c);
        const char *when = relock ? "while re-acquiring" : "before it runs";
        cmp_ok(outcome(c1), "==", -ECANCELED, "22: %s: the notified consumer is cancelled", when);
        cmp_ok(outcome(c2), "==", 0, "22: %s: the other consumer consumes", when);
        cmp_ok(state, "==", 0, "22: %s: the state ends at 0", when);
        weft_cond_free(c);
    }
}

/* A condition shared by tasks and foreign threads. */
typedef struct thread_consumer_arg {
    weft_cond *c;
    int *items;
    long want;
    long got;
    int err;
} thread_consumer_arg;

static void *thread_consumer(void *p)
{
    thread_consumer_arg *a = p;
    while (a->got < a->want && !a->err) {
        a->err = weft_cond_acquire(a->c);
        while (!a->err && *a->items == 0) a->err = weft_cond_wait(a->c);
        if (!a->err) {
            (*a->items)--;
            a->got++;
            a->err = weft_cond_release(a->c);
        }
    }
    return NULL;
}

typedef struct producer_arg {
    weft_cond *c;
    int *items;
    long n;
} producer_arg;

static void *producer(void *p)
{
    producer_arg *a = p;
    for (long i = 0; i < a->n; i++) {
        weft_cond_acquire(a->c);
        (*a->items)++;
        weft_cond_notify(a->c, 1);
        weft_cond_release(a->c);
        if (i % 8 == 0) weft_yield();
    }
    return NULL;
}

static void case_foreign_threads(void)
{
    enum { THREADS = 2, PRODUCERS = 4 };
    long per_producer = scaled(5000);
    int items = 0;
    weft_cond *c = weft_cond_new(NULL);
    thread_consumer_arg ta[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ta[i] = (thread_consumer_arg){c, &items, per_producer * PRODUCERS / THREADS, 0, 0};
        pthread_create(&th[i], NULL, thread_consumer, &ta[i]);
    }
    producer_arg pa = {c, &items, per_producer};
    weft_future *t[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) t[i] = spawn_on(producer, &pa, i);
    for (int i = 0; i < PRODUCERS; i++) outcome(t[i]);
    long got = 0;
    int err = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        got += ta[i].got;
        err |= ta[i].err;
    }
    ok(!err && got == per_producer * PRODUCERS && items == 0,
       "threads: consumers on foreign threads took every item (%ld)", got);
    weft_cond_free(c);
}

/* Misuse: NULL handles; waiting on a worker outside a task. */
typedef struct cb_arg {
    weft_cond *c;
    weft_lock *l;
    int r_wait, still_locked;
} cb_arg;

static void wait_from_callback(void *p)
{
    cb_arg *a = p;
    a->r_wait = weft_cond_wait(a->c);
    a->still_locked = weft_lock_locked(a->l);
}

static void case_misuse(void)
{
    cmp_ok(weft_cond_acquire(NULL), "==", -EINVAL, "NULL: acquire -EINVAL");
    cmp_ok(weft_cond_release(NULL), "==", -EINVAL, "NULL: release -EINVAL");
    cmp_ok(weft_cond_wait(NULL), "==", -EINVAL, "NULL: wait -EINVAL");
    cmp_ok(weft_cond_wait_for(NULL, pred_false, NULL), "==", -EINVAL, "NULL: wait_for -EINVAL");
    cmp_ok(weft_cond_notify(NULL, 1), "==", -EINVAL, "NULL: notify -EINVAL");
    cmp_ok(weft_cond_notify_all(NULL), "==", -EINVAL, "NULL: notify_all -EINVAL");
    weft_cond *c = weft_cond_new(NULL);
    weft_cond_acquire(c);
    cmp_ok(weft_cond_wait_for(c, NULL, NULL), "==", -EINVAL, "NULL predicate: -EINVAL");
    weft_cond_release(c);
    weft_cond_free(c);
    weft_cond_free(NULL);

    cb_arg a = {.l = weft_lock_new()};
    a.c = weft_cond_new(a.l);
    weft_lock_acquire(a.l);
    run_callback(wait_from_callback, &a, "callback ran");
    cmp_ok(a.r_wait, "==", -EPERM, "callback: wait() on a worker outside a task: -EPERM");
    ok(a.still_locked && weft_lock_release(a.l) == 0, "callback: the lock was not released");
    weft_cond_free(a.c);

    /* freeing a condition someone waits on is refused, also once it was notified */
    weft_cond *fc = weft_cond_new(a.l);
    cond_arg w = arg_for(fc, a.l, 1);
    weft_future *t = spawn_settled(wait_release, &w, 0);
    diag("expect two messages about a condition freed with a waiter:");
    weft_cond_free(fc);
    weft_lock_acquire(a.l);
    weft_cond_notify(fc, 1); /* notified, cannot resume while we run: still inside wait() */
    weft_cond_free(fc);
    weft_lock_release(a.l);
    cmp_ok(outcome(t), "==", 0, "free with a waiter is refused; the waiter still returns");
    weft_cond_free(fc);
    weft_lock_free(a.l);
}

static void *scenarios(void *arg)
{
    (void)arg;
    with_cond(case_wait);
    with_cond(case_wait_cancel);
    with_cond(case_wait_cancel_contested);
    with_cond(case_wait_cancel_after_notify);
    case_unacquired();
    with_cond(case_wait_for);
    with_cond(case_notify);
    case_explicit_lock();
    with_cond(case_timeout_in_block);
    with_cond(case_one_cancellation);
    case_cancelled_wakeup();
    case_foreign_threads();
    case_misuse();
    return NULL;
}

int main(void)
{
    run_scenarios("test_condition", scenarios, NULL);
    done_testing();
}
