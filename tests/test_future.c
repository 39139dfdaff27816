/*
 * test_future: plain futures (weft_future_new) through the public API.
 *
 * Shows: the accessors before and after completion; a second completion is -EALREADY;
 * completion from tasks, the main thread and other pthreads, racing; awaiting suspends a
 * task (a peer on the same worker completes the future) and blocks a foreign thread;
 * many awaiters (tasks on every worker and several threads) all see one outcome;
 * done-callbacks run on a worker, never inline in set_*, one after another in the order
 * added, and at once when added to a done future; NULL and bogus handles give -EINVAL;
 * reference counting (a released task handle never stops its task); a wait on a worker
 * outside a task is -EPERM; cancelling a plain future.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tap.h"
#include "testutil.h"
#include "weft.h"

static weft_rt *rt;
static unsigned nworkers;

/* ---- helpers ------------------------------------------------------------------------ */

static pid_t tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static weft_future *submit_on(weft_fn fn, void *arg, int worker)
{
    weft_spawn_opts o = {.name = NULL, .stack_size = 0, .worker = worker, .pinned = 0};
    return weft_rt_submit_ex(rt, fn, arg, &o);
}

/* ---- accessors and double completion ------------------------------------------------ */

static void test_accessors(void)
{
    int x = 1, y = 2;
    void *res = &y;
    weft_future *f = weft_future_new();
    ok(f != NULL, "weft_future_new from the main thread");
    if (!f) return;
    ok(!weft_done(f), "a new future is not done");
    ok(!weft_cancelled(f), "a new future is not cancelled");
    cmp_ok(weft_future_error(f), ==, -EAGAIN, "error of a pending future is -EAGAIN");
    ok(weft_future_result(f) == NULL, "result of a pending future is NULL");
    cmp_ok(weft_future_set_error(f, 0), ==, -EINVAL, "set_error(0) is -EINVAL");
    ok(!weft_done(f), "... and leaves the future pending");
    cmp_ok(weft_future_set_result(f, &x), ==, 0, "set_result on a pending future");
    ok(weft_done(f), "done after set_result");
    ok(!weft_cancelled(f), "not cancelled after set_result");
    cmp_ok(weft_future_error(f), ==, 0, "error 0 after set_result");
    ok(weft_future_result(f) == &x, "result is the value set");
    cmp_ok(weft_future_set_result(f, &y), ==, -EALREADY, "second set_result is -EALREADY");
    cmp_ok(weft_future_set_error(f, -EIO), ==, -EALREADY, "set_error after set_result too");
    ok(weft_future_result(f) == &x && weft_future_error(f) == 0,
       "a refused completion changes nothing");
    cmp_ok(weft_cancel(f), ==, 0, "cancel of a done future returns 0");
    ok(!weft_cancelled(f) && weft_future_result(f) == &x, "... and does not cancel it");
    cmp_ok(weft_await(f, &res), ==, 0, "await of a done future from the main thread");
    ok(res == &x, "... gives its result");
    cmp_ok(weft_await(f, NULL), ==, 0, "await with a NULL result pointer");
    weft_future_release(f);

    f = weft_future_new();
    cmp_ok(weft_future_set_error(f, -EIO), ==, 0, "set_error(-EIO)");
    ok(weft_done(f) && !weft_cancelled(f), "done, not cancelled");
    cmp_ok(weft_future_error(f), ==, -EIO, "error is -EIO");
    ok(weft_future_result(f) == NULL, "result of a failed future is NULL");
    res = &y;
    cmp_ok(weft_await(f, &res), ==, -EIO, "await of a failed future returns its error");
    cmp_ok(weft_future_set_result(f, &x), ==, -EALREADY, "set_result after set_error");
    cmp_ok(weft_future_error(f), ==, -EIO, "... leaves the error");
    weft_future_release(f);

    f = weft_future_new();
    cmp_ok(weft_future_set_result(f, NULL), ==, 0, "a NULL result is a result");
    ok(weft_done(f) && weft_future_error(f) == 0, "done with error 0");
    weft_future_release(f);
}

/* ---- bad handles -------------------------------------------------------------------- */

static void bad_cb(weft_future *f, void *arg)
{
    (void)f;
    (void)arg;
}

static void *return_arg(void *arg)
{
    return arg;
}

static void test_bad_handles(void)
{
    static union {
        char bytes[1024];
        max_align_t align;
    } zeros, junk;
    memset(junk.bytes, 0xA5, sizeof junk.bytes);
    weft_future *fakes[] = {NULL, (weft_future *)zeros.bytes, (weft_future *)junk.bytes};
    const char *names[] = {"NULL", "a zeroed block", "a junk block"};
    for (int i = 0; i < 3; i++) {
        weft_future *f = fakes[i];
        void *res = NULL;
        cmp_ok(weft_await(f, &res), ==, -EINVAL, "await(%s) is -EINVAL", names[i]);
        cmp_ok(weft_cancel(f), ==, -EINVAL, "cancel(%s) is -EINVAL", names[i]);
        ok(!weft_done(f), "done(%s) is 0", names[i]);
        ok(!weft_cancelled(f), "cancelled(%s) is 0", names[i]);
        cmp_ok(weft_future_error(f), ==, -EINVAL, "future_error(%s) is -EINVAL", names[i]);
        ok(weft_future_result(f) == NULL, "future_result(%s) is NULL", names[i]);
        cmp_ok(weft_future_set_result(f, &res), ==, -EINVAL, "set_result(%s)", names[i]);
        cmp_ok(weft_future_set_error(f, -EIO), ==, -EINVAL, "set_error(%s)", names[i]);
        cmp_ok(weft_future_add_done_callback(f, bad_cb, NULL), ==, -EINVAL, "add_done_callback(%s)",
               names[i]);
        weft_future_retain(f);
        weft_future_release(f);
        pass("retain/release(%s) do not crash", names[i]);
    }
    weft_future *f = weft_future_new();
    cmp_ok(weft_future_add_done_callback(f, NULL, NULL), ==, -EINVAL,
           "add_done_callback with a NULL callback");
    weft_future_release(f);
    ok(zeros.bytes[0] == 0 && zeros.bytes[1023] == 0, "the zeroed block was not written");

    int v = 7;
    weft_future *t = weft_rt_submit(rt, return_arg, &v);
    cmp_ok(weft_future_set_result(t, NULL), ==, -EPERM, "set_result on a task handle: -EPERM");
    cmp_ok(weft_future_set_error(t, -EIO), ==, -EPERM, "set_error on a task handle: -EPERM");
    void *res = NULL;
    cmp_ok(weft_await(t, &res), ==, 0, "the task still completes normally");
    ok(res == &v, "... with its own result");
    weft_future_release(t);
}

/* ---- completion from tasks and threads; awaiting from both --------------------------- */

typedef struct handoff {
    weft_future *f;
    atomic_int arrived;  /* the awaiter is about to await */
    atomic_int set_done; /* the completer has completed (set before completion) */
    int awaited;         /* what the awaiter's await returned */
    void *result;
    int completed_first; /* the awaiter saw set_done when its await returned */
    int value;
} handoff;

static void *await_body(void *arg)
{
    handoff *h = arg;
    atomic_fetch_add(&h->arrived, 1);
    h->awaited = weft_await(h->f, &h->result);
    h->completed_first = atomic_load(&h->set_done);
    return h->result;
}

static void *await_thread(void *arg)
{
    return await_body(arg);
}

static void *set_after_arrival(void *arg)
{
    handoff *h = arg;
    while (!atomic_load(&h->arrived)) weft_yield();
    weft_sleep(0.01);
    atomic_store(&h->set_done, 1);
    weft_future_set_result(h->f, &h->value);
    return NULL;
}

static void *set_thread(void *arg)
{
    handoff *h = arg;
    while (!atomic_load(&h->arrived)) nap(0.0005);
    nap(0.01);
    atomic_store(&h->set_done, 1);
    weft_future_set_result(h->f, &h->value);
    return NULL;
}

/* Inside a task: an awaiter and a completer pinned to the same worker. If await blocked
 * the worker thread, the completer could never run (the watchdog would fire). */
static void *same_worker_pair(void *arg)
{
    int me = weft_worker_id();
    run_pinned_pair(await_body, set_after_arrival, arg, me, me);
    return NULL;
}

static void handoff_init(handoff *h, weft_future *f)
{
    memset(h, 0, sizeof *h);
    h->f = f;
    h->awaited = 1;
}

static void test_await_contexts(void)
{
    handoff h;

    /* a task awaits, a task pinned to the same worker completes */
    handoff_init(&h, weft_future_new());
    cmp_ok(run_in(rt, same_worker_pair, &h, NULL), ==, 0, "awaiter and completer on one worker");
    cmp_ok(h.awaited, ==, 0, "await in a task returns 0 once a peer task sets the result");
    ok(h.result == &h.value, "... with the result");
    ok(h.completed_first, "... and only after the completer set it");
    weft_future_release(h.f);

    /* a task awaits, the main thread completes */
    handoff_init(&h, weft_future_new());
    weft_future *t = weft_rt_submit(rt, await_body, &h);
    ok(wait_count(&h.arrived, 1, 10), "the awaiting task started");
    nap(0.01);
    ok(!weft_done(t), "the awaiting task is still waiting");
    atomic_store(&h.set_done, 1);
    cmp_ok(weft_future_set_result(h.f, &h.value), ==, 0, "main thread sets the result");
    void *res = NULL;
    cmp_ok(weft_await(t, &res), ==, 0, "the awaiting task finishes");
    ok(h.awaited == 0 && h.result == &h.value && res == &h.value,
       "the task saw the result set by the main thread");
    ok(h.completed_first, "... and not before it was set");
    weft_future_release(t);
    weft_future_release(h.f);

    /* a foreign thread awaits (blocks), a task completes */
    handoff_init(&h, weft_future_new());
    pthread_t th;
    pthread_create(&th, NULL, await_thread, &h);
    t = weft_rt_submit(rt, set_after_arrival, &h);
    pthread_join(th, NULL);
    cmp_ok(h.awaited, ==, 0, "a foreign thread's await returns 0 when a task sets the result");
    ok(h.result == &h.value, "... with the result");
    ok(h.completed_first, "... and only after it was set");
    weft_await(t, NULL);
    weft_future_release(t);
    weft_future_release(h.f);

    /* a foreign thread awaits, another foreign thread completes */
    handoff_init(&h, weft_future_new());
    pthread_t th2;
    pthread_create(&th, NULL, await_thread, &h);
    pthread_create(&th2, NULL, set_thread, &h);
    pthread_join(th, NULL);
    pthread_join(th2, NULL);
    ok(h.awaited == 0 && h.result == &h.value && h.completed_first,
       "thread awaits, another thread completes");
    weft_future_release(h.f);

    /* a task awaits, a foreign thread completes */
    handoff_init(&h, weft_future_new());
    t = weft_rt_submit(rt, await_body, &h);
    pthread_create(&th2, NULL, set_thread, &h);
    pthread_join(th2, NULL);
    res = NULL;
    cmp_ok(weft_await(t, &res), ==, 0, "task awaits, a foreign thread completes");
    ok(h.awaited == 0 && res == &h.value && h.completed_first, "... it saw the result");
    weft_future_release(t);
    weft_future_release(h.f);

    /* a future made inside a task, awaited by the main thread, set by that task */
    handoff_init(&h, NULL);
    h.arrived = 1;
    weft_future *made = NULL;
    t = weft_rt_submit(rt, make_future, NULL);
    cmp_ok(weft_await(t, (void **)&made), ==, 0, "a task made a future");
    weft_future_release(t);
    ok(made != NULL, "... and returned it");
    h.f = made;
    t = weft_rt_submit(rt, set_after_arrival, &h);
    res = NULL;
    cmp_ok(weft_await(made, &res), ==, 0, "the main thread awaits a future made in a task");
    ok(res == &h.value && atomic_load(&h.set_done), "... and sees the task's result");
    weft_await(t, NULL);
    weft_future_release(t);
    weft_future_release(made);
}

/* Many threads and tasks race to complete one future: exactly one wins. */
enum { RACE_THREADS = 6, RACE_TASKS = 6, RACE_ROUNDS = 100 };

typedef struct race {
    weft_future *f;
    atomic_int go;
    atomic_int wins, losses, others;
    atomic_intptr_t winner;
    int values[RACE_THREADS + RACE_TASKS];
} race;

typedef struct racer {
    race *r;
    int index;
} racer;

static void race_once(racer *me)
{
    race *r = me->r;
    int *value = &r->values[me->index];
    int res = me->index % 3 == 2 ? weft_future_set_error(r->f, -1000 - me->index)
                                 : weft_future_set_result(r->f, value);
    if (res == 0) {
        atomic_fetch_add(&r->wins, 1);
        atomic_store(&r->winner, (intptr_t)me->index);
    } else if (res == -EALREADY) {
        atomic_fetch_add(&r->losses, 1);
    } else {
        atomic_fetch_add(&r->others, 1);
    }
}

static void *race_thread(void *arg)
{
    racer *me = arg;
    while (!atomic_load(&me->r->go)) sched_yield(); /* a yield keeps valgrind moving */
    race_once(me);
    return NULL;
}

static void *race_task(void *arg)
{
    racer *me = arg;
    while (!atomic_load(&me->r->go)) weft_yield();
    race_once(me);
    return NULL;
}

static void test_completion_race(void)
{
    int bad_count = 0, bad_outcome = 0;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        race r;
        memset(&r, 0, sizeof r);
        r.f = weft_future_new();
        racer racers[RACE_THREADS + RACE_TASKS];
        pthread_t th[RACE_THREADS];
        weft_future *tasks[RACE_TASKS];
        for (int i = 0; i < RACE_THREADS + RACE_TASKS; i++) racers[i] = (racer){&r, i};
        for (int i = 0; i < RACE_THREADS; i++)
            pthread_create(&th[i], NULL, race_thread, &racers[i]);
        for (int i = 0; i < RACE_TASKS; i++)
            tasks[i] = submit_on(race_task, &racers[RACE_THREADS + i], i % (int)nworkers);
        atomic_store(&r.go, 1);
        for (int i = 0; i < RACE_THREADS; i++) pthread_join(th[i], NULL);
        for (int i = 0; i < RACE_TASKS; i++) {
            weft_await(tasks[i], NULL);
            weft_future_release(tasks[i]);
        }
        if (atomic_load(&r.wins) != 1 || atomic_load(&r.losses) != RACE_THREADS + RACE_TASKS - 1 ||
            atomic_load(&r.others) != 0)
            bad_count++;
        int w = (int)atomic_load(&r.winner);
        int expect_err = w % 3 == 2 ? -1000 - w : 0;
        void *expect_res = w % 3 == 2 ? NULL : &r.values[w];
        if (weft_future_error(r.f) != expect_err || weft_future_result(r.f) != expect_res)
            bad_outcome++;
        weft_future_release(r.f);
    }
    cmp_ok(bad_count, ==, 0,
           "%d rounds of %d threads + %d tasks racing to complete: one wins, "
           "the rest get -EALREADY",
           RACE_ROUNDS, RACE_THREADS, RACE_TASKS);
    cmp_ok(bad_outcome, ==, 0, "the future holds the winner's result or error");
}

/* ---- many awaiters ------------------------------------------------------------------ */

enum { AWAITERS_PER_WORKER = 16, AWAIT_THREADS = 6 };

typedef struct crowd {
    weft_future *f;
    atomic_int arrived, good, bad;
    int expect_err;
    void *expect_res;
} crowd;

static void *crowd_member(void *arg)
{
    crowd *c = arg;
    atomic_fetch_add(&c->arrived, 1);
    void *res = (void *)&res;
    int r = weft_await(c->f, &res);
    int fine = r == c->expect_err && (r != 0 || res == c->expect_res);
    atomic_fetch_add(fine ? &c->good : &c->bad, 1);
    return NULL;
}

static void crowd_round(const char *how)
{
    crowd c;
    memset(&c, 0, sizeof c);
    static int value;
    c.f = weft_future_new();
    int ntasks = (int)nworkers * AWAITERS_PER_WORKER, total = ntasks + AWAIT_THREADS;
    weft_future **tasks = calloc((size_t)ntasks, sizeof *tasks);
    pthread_t th[AWAIT_THREADS];
    if (!strcmp(how, "result"))
        c.expect_res = &value;
    else
        c.expect_err = !strcmp(how, "error") ? -EPIPE : -ECANCELED;
    for (int i = 0; i < ntasks; i++) tasks[i] = submit_on(crowd_member, &c, i % (int)nworkers);
    for (int i = 0; i < AWAIT_THREADS; i++) pthread_create(&th[i], NULL, crowd_member, &c);
    ok(wait_count(&c.arrived, total, 20), "%d tasks on %u workers and %d threads await one future",
       ntasks, nworkers, AWAIT_THREADS);
    nap(0.02);
    cmp_ok(atomic_load(&c.good) + atomic_load(&c.bad), ==, 0, "nobody returned early");
    if (!strcmp(how, "result"))
        cmp_ok(weft_future_set_result(c.f, &value), ==, 0, "set_result");
    else if (!strcmp(how, "error"))
        cmp_ok(weft_future_set_error(c.f, -EPIPE), ==, 0, "set_error");
    else
        cmp_ok(weft_cancel(c.f), ==, 1, "cancel returns 1 on a pending future");
    for (int i = 0; i < AWAIT_THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < ntasks; i++) {
        weft_await(tasks[i], NULL);
        weft_future_release(tasks[i]);
    }
    cmp_ok(atomic_load(&c.good), ==, total, "every awaiter saw the %s", how);
    cmp_ok(atomic_load(&c.bad), ==, 0, "no awaiter saw anything else");
    if (!strcmp(how, "cancellation")) {
        ok(weft_cancelled(c.f), "the future is cancelled");
        cmp_ok(weft_future_error(c.f), ==, -ECANCELED, "its error is -ECANCELED");
        cmp_ok(weft_cancel(c.f), ==, 0, "a second cancel returns 0");
        cmp_ok(weft_future_set_result(c.f, &value), ==, -EALREADY, "set_result after cancel");
    }
    free(tasks);
    weft_future_release(c.f);
}

static void test_many_awaiters(void)
{
    crowd_round("result");
    crowd_round("error");
    crowd_round("cancellation");
}

/* ---- done-callbacks ----------------------------------------------------------------- */

typedef struct cb_probe {
    atomic_int ran;
    atomic_int setter_tid;  /* thread completing the future (or adding the callback) */
    atomic_int setter_busy; /* 1 while that thread is inside set_* / add_done_callback */
    int worker;             /* weft_worker_id() inside the callback */
    weft_rt *cb_rt;
    int inline_run; /* ran on the setter's thread while it was inside the call */
    int cb_tid;
    weft_future *got_f;
    void *got_arg;
    int got_err;
    void *got_res;
    int got_cancelled;
    weft_future *signal; /* set when the callback ran (a task awaits it) */
} cb_probe;

static void probe_cb(weft_future *f, void *arg)
{
    cb_probe *p = arg;
    p->cb_tid = tid();
    p->inline_run = p->cb_tid == atomic_load(&p->setter_tid) && atomic_load(&p->setter_busy);
    p->worker = weft_worker_id();
    p->cb_rt = weft_rt_current();
    p->got_f = f;
    p->got_arg = arg;
    p->got_err = weft_future_error(f);
    p->got_res = weft_future_result(f);
    p->got_cancelled = weft_cancelled(f);
    if (p->signal) weft_future_set_result(p->signal, NULL);
    atomic_fetch_add(&p->ran, 1);
}

static void release_in_cb(weft_future *f, void *arg)
{
    cb_probe *p = arg;
    p->worker = weft_worker_id();
    p->got_res = weft_future_result(f);
    weft_future_release(f);
    atomic_fetch_add(&p->ran, 1);
}

static void probe_init(cb_probe *p)
{
    memset(p, 0, sizeof *p);
    p->worker = -2;
    p->inline_run = -1;
}

static void probe_set(cb_probe *p, weft_future *f, void *value)
{
    atomic_store(&p->setter_tid, tid());
    atomic_store(&p->setter_busy, 1);
    weft_future_set_result(f, value);
    atomic_store(&p->setter_busy, 0);
}

static void probe_add(cb_probe *p, weft_future *f)
{
    atomic_store(&p->setter_tid, tid());
    atomic_store(&p->setter_busy, 1);
    weft_future_add_done_callback(f, probe_cb, p);
    atomic_store(&p->setter_busy, 0);
}

/* In a task: add a callback, complete the future here, await the callback's signal. */
static void *cb_set_in_task(void *arg)
{
    cb_probe *p = arg;
    weft_future *f = weft_future_new();
    p->signal = weft_future_new();
    cmp_ok(weft_future_add_done_callback(f, probe_cb, p), ==, 0, "add_done_callback in a task");
    ok(!atomic_load(&p->ran), "a callback does not run while the future is pending");
    probe_set(p, f, p);
    int r = weft_await(p->signal, NULL);
    cmp_ok(r, ==, 0, "the callback ran while the task awaited");
    ok(p->got_f == f, "the callback got the future");
    weft_future_release(f);
    weft_future_release(p->signal);
    return NULL;
}

/* In a task: add a callback to a future that is already done. */
static void *cb_add_done_in_task(void *arg)
{
    cb_probe *p = arg;
    weft_future *f = weft_future_new();
    p->signal = weft_future_new();
    weft_future_set_error(f, -ENOENT);
    probe_add(p, f);
    ok(!atomic_load(&p->ran) || !p->inline_run, "added to a done future: not run inline");
    cmp_ok(weft_await(p->signal, NULL), ==, 0, "... but scheduled at once (the task's await ends)");
    cmp_ok(p->got_err, ==, -ENOENT, "the callback sees the future's error");
    weft_future_release(f);
    weft_future_release(p->signal);
    return NULL;
}

static void *add_probe_task(void *arg)
{
    void **pair = arg;
    return (void *)(intptr_t)weft_future_add_done_callback(pair[0], probe_cb, pair[1]);
}

typedef struct order_state {
    atomic_int started, finished;
    atomic_int busy; /* a callback is running */
    atomic_int out_of_order, overlapped, off_worker;
    int n;
} order_state;

typedef struct order_item {
    order_state *st;
    int index;
} order_item;

static void order_cb(weft_future *f, void *arg)
{
    (void)f;
    order_item *it = arg;
    order_state *st = it->st;
    if (atomic_exchange(&st->busy, 1)) atomic_fetch_add(&st->overlapped, 1);
    if (weft_worker_id() < 0) atomic_fetch_add(&st->off_worker, 1);
    int pos = atomic_fetch_add(&st->started, 1);
    for (volatile int spin = 0; spin < 200; spin++) {
    }
    if (pos != it->index) atomic_fetch_add(&st->out_of_order, 1);
    atomic_store(&st->busy, 0);
    atomic_fetch_add(&st->finished, 1);
}

enum { ORDER_N = 300 };

static void *order_add_all(void *arg)
{
    order_item *items = arg;
    weft_future *f = weft_future_new();
    for (int i = 0; i < ORDER_N; i++) weft_future_add_done_callback(f, order_cb, &items[i]);
    return f;
}

static void *order_set_in_task(void *arg)
{
    order_item *items = arg;
    weft_future *f = order_add_all(items);
    weft_future_set_result(f, NULL);
    while (atomic_load(&items[0].st->finished) < ORDER_N) weft_sleep(0.001);
    weft_future_release(f);
    return NULL;
}

static void order_check(order_state *st, int n, const char *how)
{
    ok(wait_count(&st->finished, n, 20), "%d callbacks all ran (%s)", n, how);
    cmp_ok(atomic_load(&st->out_of_order), ==, 0, "... in the order added (%s)", how);
    cmp_ok(atomic_load(&st->overlapped), ==, 0, "... one after another (%s)", how);
    cmp_ok(atomic_load(&st->off_worker), ==, 0, "... all on workers (%s)", how);
}

/* Adders on every worker, each busy (not yielding) until all have added: callbacks added
 * to a done future, one after another, by the main thread and then by tasks on each
 * worker must still run in that order. */
typedef struct mixed_adders {
    weft_future *f;
    order_item *items;
    atomic_int ready, turn;
    int n;
} mixed_adders;

typedef struct mixed_adder {
    mixed_adders *m;
    int index;
} mixed_adder;

static void *mixed_add(void *arg)
{
    mixed_adder *a = arg;
    mixed_adders *m = a->m;
    atomic_fetch_add(&m->ready, 1);
    while (atomic_load(&m->turn) != a->index) sched_yield(); /* the worker stays busy */
    weft_future_add_done_callback(m->f, order_cb, &m->items[a->index]);
    atomic_store(&m->turn, a->index + 1);
    while (atomic_load(&m->turn) <= m->n) sched_yield();
    return NULL;
}

static void mixed_round(order_item *items)
{
    mixed_adders m;
    memset(&m, 0, sizeof m);
    m.items = items;
    m.n = (int)nworkers;
    run_in(rt, make_future, NULL, (void **)&m.f);
    weft_future_set_result(m.f, NULL);
    mixed_adder adders[64];
    weft_future *tasks[64];
    for (int w = 0; w < m.n && w < 64; w++) {
        adders[w] = (mixed_adder){&m, w + 1};
        tasks[w] = submit_on(mixed_add, &adders[w], w);
    }
    ok(wait_count(&m.ready, m.n, 20), "a task busy on each of the %d workers", m.n);
    weft_future_add_done_callback(m.f, order_cb, &items[0]);
    atomic_store(&m.turn, 1);
    for (int w = 0; w < m.n; w++) {
        weft_await(tasks[w], NULL);
        weft_future_release(tasks[w]);
    }
    order_check(items[0].st, m.n + 1, "added by the main thread, then by a task on each worker");
    weft_future_release(m.f);
}

static void test_callback_order(void)
{
    order_state st;
    order_item items[ORDER_N];
    for (int round = 0; round < 3; round++) {
        memset(&st, 0, sizeof st);
        for (int i = 0; i < ORDER_N; i++) items[i] = (order_item){&st, i};
        if (round == 0) {
            run_in(rt, order_set_in_task, items, NULL);
            order_check(&st, ORDER_N, "completed in a task");
        } else if (round == 1) {
            weft_future *f = NULL;
            run_in(rt, order_add_all, items, (void **)&f);
            weft_future_set_result(f, NULL);
            order_check(&st, ORDER_N, "completed by the main thread");
            weft_future_release(f);
        } else {
            weft_future *f = NULL;
            run_in(rt, make_future, NULL, (void **)&f);
            weft_future_set_result(f, NULL);
            for (int i = 0; i < ORDER_N; i++) weft_future_add_done_callback(f, order_cb, &items[i]);
            order_check(&st, ORDER_N, "added one by one by the main thread to a done future");
            weft_future_release(f);
        }
    }
    memset(&st, 0, sizeof st);
    for (int i = 0; i < ORDER_N; i++) items[i] = (order_item){&st, i};
    mixed_round(items);
}

static void test_callbacks(void)
{
    cb_probe p;

    probe_init(&p);
    run_in(rt, cb_set_in_task, &p, NULL);
    cmp_ok(atomic_load(&p.ran), ==, 1, "completed in a task: the callback ran once");
    cmp_ok(p.inline_run, ==, 0, "... not inline inside set_result");
    ok(p.worker >= 0 && p.worker < (int)nworkers, "... on a worker (id %d)", p.worker);
    ok(p.cb_rt == rt, "... of the future's runtime");
    ok(p.got_arg == &p && p.got_res == &p && p.got_err == 0 && !p.got_cancelled,
       "... with its argument and the future's result");

    probe_init(&p);
    run_in(rt, cb_add_done_in_task, &p, NULL);
    cmp_ok(atomic_load(&p.ran), ==, 1, "added to a done future in a task: ran once");
    ok(p.worker >= 0, "... on a worker");

    /* a future made in a task, callback added there, completed by a foreign thread */
    probe_init(&p);
    weft_future *f = NULL;
    run_in(rt, make_future, NULL, (void **)&f);
    void *pair[2] = {f, &p};
    void *added = (void *)1;
    run_in(rt, add_probe_task, pair, &added);
    cmp_ok((intptr_t)added, ==, 0, "callback added in a task");
    nap(0.01);
    cmp_ok(atomic_load(&p.ran), ==, 0, "it has not run while the future is pending");
    probe_set(&p, f, &p);
    ok(wait_count(&p.ran, 1, 10), "completed by the main thread: the callback ran");
    cmp_ok(p.inline_run, ==, 0, "... not inline");
    ok(p.cb_tid != tid(), "... not on the completing thread");
    ok(p.worker >= 0 && p.cb_rt == rt, "... on a worker of the runtime");
    ok(p.got_f == f && p.got_res == &p, "... with the future and its result");
    nap(0.01);
    cmp_ok(atomic_load(&p.ran), ==, 1, "... exactly once");

    /* added from the main thread to that done future: scheduled at once, on a worker */
    probe_init(&p);
    probe_add(&p, f);
    ok(wait_count(&p.ran, 1, 10), "added from the main thread to a done future: it runs");
    ok(p.worker >= 0 && p.cb_tid != tid() && p.inline_run == 0, "... on a worker, not inline");
    weft_future_release(f);

    /* a future made on the main thread, callback added in a task, cancelled by main */
    probe_init(&p);
    f = weft_future_new();
    pair[0] = f;
    run_in(rt, add_probe_task, pair, &added);
    cmp_ok((intptr_t)added, ==, 0, "callback added in a task to a main-thread future");
    atomic_store(&p.setter_tid, tid());
    atomic_store(&p.setter_busy, 1);
    cmp_ok(weft_cancel(f), ==, 1, "main thread cancels it");
    atomic_store(&p.setter_busy, 0);
    weft_future_release(f); /* the callback must still get a live future */
    ok(wait_count(&p.ran, 1, 10), "the callback of a cancelled future runs");
    ok(p.got_cancelled && p.got_err == -ECANCELED && p.got_res == NULL,
       "... and sees it cancelled (-ECANCELED)");
    ok(p.worker >= 0 && p.inline_run == 0, "... on a worker, not inline in cancel");

    /* fire and forget: the callback drops the last handle of its own future */
    probe_init(&p);
    run_in(rt, make_future, NULL, (void **)&f);
    cmp_ok(weft_future_add_done_callback(f, release_in_cb, &p), ==, 0,
           "a callback that releases its future's last handle");
    weft_future_set_result(f, &p); /* f is not touched here again */
    ok(wait_count(&p.ran, 1, 10), "... ran");
    ok(p.got_res == &p && p.worker >= 0, "... and saw the result on a worker");

    test_callback_order();
}

/* ---- reference counting ------------------------------------------------------------- */

typedef struct late {
    atomic_int finished;
    weft_future *signal;
} late;

static void *late_body(void *arg)
{
    late *l = arg;
    weft_sleep(0.03);
    weft_yield();
    weft_sleep(0.01);
    atomic_fetch_add(&l->finished, 1);
    weft_future_set_result(l->signal, l);
    return l;
}

static void *spawn_and_drop(void *arg)
{
    late *l = arg;
    weft_future *t = weft_spawn(late_body, l);
    if (t) weft_future_release(t);
    return t;
}

static void test_refcounts(void)
{
    weft_future *f = weft_future_new();
    weft_future_retain(f);
    weft_future_retain(f);
    weft_future_release(f);
    weft_future_release(f);
    int v = 0;
    cmp_ok(weft_future_set_result(f, &v), ==, 0,
           "after two retains and two releases the future is still usable");
    ok(weft_future_result(f) == &v, "... and holds its result");
    weft_future_release(f);

    late l = {0};
    l.signal = weft_future_new();
    weft_future *t = weft_rt_submit(rt, late_body, &l);
    ok(t != NULL, "submitted a task that sleeps");
    weft_future_release(t);
    void *res = NULL;
    cmp_ok(weft_await(l.signal, &res), ==, 0, "its handle was released at once; it still runs");
    cmp_ok(atomic_load(&l.finished), ==, 1, "... to the end");
    weft_future_release(l.signal);

    late l2 = {0};
    l2.signal = weft_future_new();
    void *spawned = NULL;
    run_in(rt, spawn_and_drop, &l2, &spawned);
    ok(spawned != NULL, "a task spawned a child and released its handle");
    cmp_ok(weft_await(l2.signal, &res), ==, 0, "the child still runs");
    ok(res == &l2 && atomic_load(&l2.finished) == 1, "... to the end");
    weft_future_release(l2.signal);
}

/* ---- waiting on a worker outside a task ---------------------------------------------- */

typedef struct outside {
    weft_future *pending;
    atomic_int ran;
    int awaited;
    int worker;
} outside;

static void await_in_callback(void *arg)
{
    outside *o = arg;
    o->worker = weft_worker_id();
    o->awaited = weft_await(o->pending, NULL);
    atomic_store(&o->ran, 1);
}

static void await_in_done_callback(weft_future *f, void *arg)
{
    (void)f;
    await_in_callback(arg);
}

static void test_await_outside_task(void)
{
    outside o = {0};
    o.pending = weft_future_new();
    o.awaited = 1;
    cmp_ok(weft_call_soon_threadsafe(rt, await_in_callback, &o), ==, 0, "call_soon_threadsafe");
    ok(wait_count(&o.ran, 1, 10), "a callback awaiting a pending future returned");
    ok(o.worker >= 0, "... it ran on a worker");
    cmp_ok(o.awaited, ==, -EPERM, "... and its await was -EPERM");
    ok(!weft_done(o.pending), "the future is untouched");

    outside o2 = {0};
    o2.pending = o.pending;
    o2.awaited = 1;
    weft_future *f = NULL;
    run_in(rt, make_future, NULL, (void **)&f);
    weft_future_add_done_callback(f, await_in_done_callback, &o2);
    weft_future_set_result(f, NULL);
    ok(wait_count(&o2.ran, 1, 10), "a done-callback awaiting a pending future returned");
    cmp_ok(o2.awaited, ==, -EPERM, "... with -EPERM");
    weft_future_release(f);

    weft_future_set_result(o.pending, NULL);
    weft_future_release(o.pending);
}

/* ---- cancellation ------------------------------------------------------------------- */

typedef struct canceller {
    weft_future *f;
    atomic_int arrived;
    int r;
} canceller;

static void *await_and_report(void *arg)
{
    canceller *c = arg;
    atomic_fetch_add(&c->arrived, 1);
    c->r = weft_await(c->f, NULL);
    return NULL;
}

static void test_cancel(void)
{
    canceller c = {0};
    c.f = weft_future_new();
    c.r = 1;
    canceller c2 = {0};
    c2.f = c.f;
    c2.r = 1;
    weft_future *t = weft_rt_submit(rt, await_and_report, &c);
    pthread_t th;
    pthread_create(&th, NULL, await_and_report, &c2);
    int both = wait_count(&c.arrived, 1, 10) && wait_count(&c2.arrived, 1, 10);
    ok(both, "a task and a thread await a plain future");
    nap(0.01);
    cmp_ok(weft_cancel(c.f), ==, 1, "cancel of a pending plain future returns 1");
    pthread_join(th, NULL);
    cmp_ok(weft_await(t, NULL), ==, 0, "the awaiting task returns");
    cmp_ok(c.r, ==, -ECANCELED, "the task's await returned -ECANCELED");
    cmp_ok(c2.r, ==, -ECANCELED, "the thread's await returned -ECANCELED");
    ok(weft_cancelled(c.f) && weft_done(c.f), "the future is done and cancelled");
    cmp_ok(weft_cancel(c.f), ==, 0, "cancelling it again returns 0");
    cmp_ok(weft_await(c.f, NULL), ==, -ECANCELED, "a later await returns -ECANCELED at once");
    weft_future_release(t);
    weft_future_release(c.f);

    /* cancelling the awaiting task (not the future) ends its await with -ECANCELED */
    canceller c3 = {0};
    c3.f = weft_future_new();
    c3.r = 1;
    t = weft_rt_submit(rt, await_and_report, &c3);
    ok(wait_count(&c3.arrived, 1, 10), "a task awaits a plain future");
    nap(0.01);
    cmp_ok(weft_cancel(t), ==, 1, "cancel the awaiting task");
    weft_await(t, NULL);
    cmp_ok(c3.r, ==, -ECANCELED, "its await returned -ECANCELED");
    ok(weft_done(t) && !weft_cancelled(t),
       "it returned normally afterwards, so it is not cancelled (asyncio's rule)");
    weft_future_release(t);
    weft_future_release(c3.f);
}

int main(void)
{
    watchdog_arm("test_future", 240);
    nworkers = default_workers();
    note("%u workers", nworkers);

    test_accessors();
    rt = rt_new_or_bail(nworkers);
    test_bad_handles();
    test_await_contexts();
    test_completion_race();
    test_many_awaiters();
    test_callbacks();
    test_refcounts();
    test_await_outside_task();
    test_cancel();
    cmp_ok(weft_rt_shutdown(rt, 30), ==, 0, "shutdown");
    weft_rt_free(rt);
    done_testing();
}
