/*
 * test_timer: loop.call_soon / call_soon_threadsafe / call_later / call_at, timer
 * cancellation, weft_sleep and weft_now through the public API.
 *
 * Shows: call_soon runs on the scheduling worker in FIFO order; call_soon_threadsafe from
 * many threads runs every callback exactly once on a worker; timers fire in deadline
 * order (equal deadlines in arming order) and never early; weft_timer_cancel is 1 before
 * firing (the callback never runs) and 0 after firing, on a second cancel, on a stale
 * handle, and it decides exactly-once against a racing fire; a timer on a busy worker is
 * fired by an idle peer; weft_sleep sleeps at least as long as asked (within generous
 * bounds) in tasks and on foreign threads, weft_sleep(0) yields; weft_now is monotonic;
 * 10,000 tasks sleeping at once on every worker all wake; calls outside a runtime
 * refuse with -EPERM / NULL + EPERM.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tap.h"
#include "testutil.h"
#include "weft.h"

static weft_rt *rt;
static unsigned nworkers;

#define EPS 1e-6 /* rounding slack between a double deadline and the ns clock */

/* ---- helpers ------------------------------------------------------------------------ */

/* Inside a task: sleep in small steps until *v >= target or `seconds` pass. */
static int task_wait_count(atomic_int *v, int target, double seconds)
{
    return poll_until(atomic_load(v) >= target, seconds, weft_now, weft_sleep, 0.001);
}

static uint64_t rng_state; /* used by one task or thread at a time */

static uint64_t rnd_from(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t rnd(void)
{
    return rnd_from(&rng_state);
}

/* ---- outside a runtime -------------------------------------------------------------- */

static atomic_int never_ran;

static void count_cb(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_outside(void)
{
    ok(weft_rt_current() == NULL && weft_worker_id() == -1 && weft_current() == NULL,
       "the main thread is outside any runtime");
    cmp_ok(weft_call_soon(count_cb, &never_ran), ==, -EPERM, "call_soon outside -> -EPERM");
    errno = 0;
    ok(weft_call_later(0.001, count_cb, &never_ran) == NULL && errno == EPERM,
       "call_later outside -> NULL, errno EPERM");
    errno = 0;
    ok(weft_call_at(weft_now(), count_cb, &never_ran) == NULL && errno == EPERM,
       "call_at outside -> NULL, errno EPERM");
    cmp_ok(weft_call_soon_threadsafe(NULL, count_cb, &never_ran), ==, -EINVAL,
           "call_soon_threadsafe(NULL runtime) -> -EINVAL");
    cmp_ok(weft_timer_cancel(NULL), ==, 0, "timer_cancel(NULL) -> 0");
    double t0 = mono();
    cmp_ok(weft_sleep(0), ==, 0, "sleep(0) on a plain thread");
    cmp_ok(weft_sleep(-1), ==, 0, "sleep(-1) on a plain thread");
    ok(mono() - t0 < 1.0, "... both return at once");
}

/* ---- call_soon ---------------------------------------------------------------------- */

enum { SOON_N = 1000 };

typedef struct soon_state {
    atomic_int pos;
    int worker;
    atomic_int wrong_order, wrong_worker, in_task;
    int follow_up_pos; /* position of the callback queued by callback 0 */
    int nested_rc;
} soon_state;

typedef struct soon_item {
    soon_state *st;
    int index;
} soon_item;

static void soon_follow_up(void *arg)
{
    soon_state *st = arg;
    st->follow_up_pos = atomic_fetch_add(&st->pos, 1);
}

static void soon_cb(void *arg)
{
    soon_item *it = arg;
    soon_state *st = it->st;
    int pos = atomic_fetch_add(&st->pos, 1);
    if (pos != it->index) atomic_fetch_add(&st->wrong_order, 1);
    if (weft_worker_id() != st->worker) atomic_fetch_add(&st->wrong_worker, 1);
    if (weft_current() != NULL) atomic_fetch_add(&st->in_task, 1);
    if (it->index == 0) st->nested_rc = weft_call_soon(soon_follow_up, st);
}

static void *soon_task(void *arg)
{
    soon_item *items = arg;
    soon_state *st = items[0].st;
    cmp_ok(weft_call_soon(NULL, NULL), ==, -EINVAL, "call_soon(NULL) in a task -> -EINVAL");
    st->worker = weft_worker_id();
    int failed = 0;
    for (int i = 0; i < SOON_N; i++)
        if (weft_call_soon(soon_cb, &items[i])) failed++;
    cmp_ok(failed, ==, 0, "%d call_soon calls from a task returned 0", SOON_N);
    cmp_ok(atomic_load(&st->pos), ==, 0, "none ran before the task suspended");
    ok(task_wait_count(&st->pos, SOON_N + 1, 20), "all ran, and the one queued by a callback");
    return NULL;
}

static void test_call_soon(void)
{
    soon_state st;
    memset(&st, 0, sizeof st);
    st.follow_up_pos = -1;
    soon_item *items = calloc(SOON_N, sizeof *items);
    for (int i = 0; i < SOON_N; i++) items[i] = (soon_item){&st, i};
    run_in(rt, soon_task, items, NULL);
    cmp_ok(atomic_load(&st.wrong_order), ==, 0, "call_soon callbacks ran in FIFO order");
    cmp_ok(atomic_load(&st.wrong_worker), ==, 0, "... on the worker that queued them");
    cmp_ok(atomic_load(&st.in_task), ==, 0, "... outside any task");
    cmp_ok(st.nested_rc, ==, 0, "call_soon inside a callback returned 0");
    cmp_ok(st.follow_up_pos, ==, SOON_N, "... and its callback ran after the ones queued before");
    free(items);
}

/* ---- call_soon_threadsafe ----------------------------------------------------------- */

enum { TS_THREADS = 6, TS_PER_THREAD = 2000 };

typedef struct ts_slot {
    atomic_int runs;
    atomic_int off_worker;
} ts_slot;

static ts_slot ts_slots[TS_THREADS + 1][TS_PER_THREAD];
static atomic_int ts_total, ts_bad_rt, ts_failed_calls;

static void ts_cb(void *arg)
{
    ts_slot *s = arg;
    if (weft_worker_id() < 0) atomic_fetch_add(&s->off_worker, 1);
    if (weft_rt_current() != rt) atomic_fetch_add(&ts_bad_rt, 1);
    atomic_fetch_add(&s->runs, 1);
    atomic_fetch_add(&ts_total, 1);
}

static void *ts_thread(void *arg)
{
    ts_slot *slots = arg;
    for (int i = 0; i < TS_PER_THREAD; i++)
        if (weft_call_soon_threadsafe(rt, ts_cb, &slots[i])) atomic_fetch_add(&ts_failed_calls, 1);
    return NULL;
}

static void *ts_task(void *arg)
{
    return ts_thread(arg);
}

static void test_call_soon_threadsafe(void)
{
    pthread_t th[TS_THREADS];
    for (int t = 0; t < TS_THREADS; t++) pthread_create(&th[t], NULL, ts_thread, ts_slots[t]);
    weft_future *task = weft_rt_submit(rt, ts_task, ts_slots[TS_THREADS]);
    for (int t = 0; t < TS_THREADS; t++) pthread_join(th[t], NULL);
    weft_await(task, NULL);
    weft_future_release(task);
    int total = (TS_THREADS + 1) * TS_PER_THREAD;
    cmp_ok(atomic_load(&ts_failed_calls), ==, 0, "%d threads and a task queued %d callbacks",
           TS_THREADS, total);
    ok(wait_count(&ts_total, total, 20), "all of them ran");
    nap(0.02);
    cmp_ok(atomic_load(&ts_total), ==, total, "no callback ran more than the calls made");
    int wrong = 0, off = 0;
    for (int t = 0; t <= TS_THREADS; t++)
        for (int i = 0; i < TS_PER_THREAD; i++) {
            wrong += atomic_load(&ts_slots[t][i].runs) != 1;
            off += atomic_load(&ts_slots[t][i].off_worker);
        }
    cmp_ok(wrong, ==, 0, "each callback ran exactly once");
    cmp_ok(off, ==, 0, "... on a worker");
    cmp_ok(atomic_load(&ts_bad_rt), ==, 0, "... of the runtime it was given to");
    cmp_ok(weft_call_soon_threadsafe(rt, NULL, NULL), ==, -EINVAL, "a NULL callback -> -EINVAL");
}

/* ---- call_later / call_at ordering -------------------------------------------------- */

enum { ORDER_N = 400 };

typedef struct order_timer {
    double when;
    int index;
    atomic_int seq; /* firing position + 1; 0: not fired */
    double fired_at;
    int worker;
    atomic_int *counter;
} order_timer;

static void order_cb(void *arg)
{
    order_timer *o = arg;
    o->fired_at = weft_now();
    o->worker = weft_worker_id();
    atomic_store(&o->seq, atomic_fetch_add(o->counter, 1) + 1);
}

static int by_deadline(const void *a, const void *b)
{
    const order_timer *x = *(order_timer *const *)a, *y = *(order_timer *const *)b;
    if (x->when != y->when) return x->when < y->when ? -1 : 1;
    return x->index - y->index;
}

typedef struct order_run {
    order_timer *timers;
    atomic_int fired;
    int use_at;
} order_run;

static void *order_task(void *arg)
{
    order_run *run = arg;
    double base = weft_now() + 0.02;
    int armed = 0;
    for (int i = 0; i < ORDER_N; i++) {
        order_timer *o = &run->timers[i];
        o->index = i;
        o->counter = &run->fired;
        o->worker = -2;
        /* 5 ms buckets over 0..60 ms: many timers share a deadline */
        o->when = base + 0.005 * (double)(rnd() % 13);
        weft_timer *t = run->use_at ? weft_call_at(o->when, order_cb, o)
                                    : weft_call_later(o->when - weft_now(), order_cb, o);
        if (t) armed++;
        if (!run->use_at) o->when = weft_now(); /* call_later: only "not before now" holds */
    }
    cmp_ok(armed, ==, ORDER_N, "%d timers armed with %s", ORDER_N,
           run->use_at ? "call_at" : "call_later");
    ok(task_wait_count(&run->fired, ORDER_N, 20), "all of them fired");
    return NULL;
}

static void test_timer_order(void)
{
    order_run run;
    memset(&run, 0, sizeof run);
    run.timers = calloc(ORDER_N, sizeof *run.timers);
    run.use_at = 1;
    run_in(rt, order_task, &run, NULL);
    order_timer **sorted = calloc(ORDER_N, sizeof *sorted);
    for (int i = 0; i < ORDER_N; i++) sorted[i] = &run.timers[i];
    qsort(sorted, ORDER_N, sizeof *sorted, by_deadline);
    int early = 0, misordered = 0, off_worker = 0;
    for (int i = 0; i < ORDER_N; i++) {
        order_timer *o = sorted[i];
        if (o->fired_at < o->when - EPS) early++;
        if (atomic_load(&o->seq) != i + 1 && misordered++ < 4)
            diag("deadline rank %d (armed #%d, +%.0f ms) fired as #%d on worker %d", i, o->index,
                 (o->when - sorted[0]->when) * 1e3, atomic_load(&o->seq) - 1, o->worker);
        if (o->worker < 0) off_worker++;
    }
    cmp_ok(early, ==, 0, "call_at: no timer fired before its time");
    cmp_ok(misordered, ==, 0, "call_at: fired in deadline order, equal deadlines in arming order");
    cmp_ok(off_worker, ==, 0, "call_at: callbacks ran on workers");

    memset(run.timers, 0, ORDER_N * sizeof *run.timers);
    atomic_store(&run.fired, 0);
    run.use_at = 0;
    run_in(rt, order_task, &run, NULL);
    early = 0;
    for (int i = 0; i < ORDER_N; i++)
        if (run.timers[i].fired_at < run.timers[i].when - EPS) early++;
    cmp_ok(early, ==, 0, "call_later: no timer fired before its delay passed");
    free(sorted);
    free(run.timers);
}

/* call_later with increasing delays, armed in reverse, from a callback (no task). */
typedef struct chain {
    atomic_int fired;
    atomic_int recorded; /* callbacks that finished writing order[] and fired_at[] */
    int order[5];
    double armed_at, fired_at[5];
    int arm_failed;
} chain;

typedef struct chain_item {
    chain *c;
    int k;
} chain_item;

static chain_item chain_items[5];

static void chain_fire(void *arg)
{
    chain_item *it = arg;
    it->c->fired_at[it->k] = weft_now();
    it->c->order[atomic_fetch_add(&it->c->fired, 1)] = it->k;
    atomic_fetch_add_explicit(&it->c->recorded, 1, memory_order_release);
}

static void chain_arm(void *arg)
{
    chain *c = arg;
    c->armed_at = weft_now();
    for (int k = 4; k >= 0; k--) {
        chain_items[k] = (chain_item){c, k};
        if (!weft_call_later(0.004 * (k + 1), chain_fire, &chain_items[k])) c->arm_failed++;
    }
}

static void test_timer_from_callback(void)
{
    chain c;
    memset(&c, 0, sizeof c);
    cmp_ok(weft_call_soon_threadsafe(rt, chain_arm, &c), ==, 0, "a callback arms 5 timers");
    ok(wait_count(&c.recorded, 5, 10), "all 5 fired");
    cmp_ok(c.arm_failed, ==, 0, "call_later works in a callback on a worker");
    int in_order = 1, early = 0;
    for (int k = 0; k < 5; k++) {
        if (c.order[k] != k) in_order = 0;
        if (c.fired_at[k] < c.armed_at + 0.004 * (k + 1) - EPS) early++;
    }
    ok(in_order, "armed in reverse, they fired by deadline");
    cmp_ok(early, ==, 0, "none fired early");
}

/* ---- weft_timer_cancel -------------------------------------------------------------- */

static void *cancel_basics(void *arg)
{
    (void)arg;
    atomic_int ran = 0;
    weft_timer *t = weft_call_later(0.05, count_cb, &ran);
    ok(t != NULL, "call_later(50 ms)");
    cmp_ok(weft_timer_cancel(t), ==, 1, "cancel before it fires -> 1");
    cmp_ok(weft_timer_cancel(t), ==, 0, "a second cancel -> 0");
    weft_sleep(0.1);
    cmp_ok(atomic_load(&ran), ==, 0, "a cancelled timer never runs");

    atomic_int ran2 = 0;
    t = weft_call_later(0.001, count_cb, &ran2);
    ok(task_wait_count(&ran2, 1, 10), "a 1 ms timer fired");
    cmp_ok(weft_timer_cancel(t), ==, 0, "cancel after it fired -> 0");
    cmp_ok(weft_timer_cancel(t), ==, 0, "... and again -> 0");

    /* the stale handle must not cancel timers armed later (they may reuse its record) */
    atomic_int ran3 = 0;
    enum { LATER = 64 };
    weft_timer *later[LATER];
    for (int i = 0; i < LATER; i++) later[i] = weft_call_later(0.002, count_cb, &ran3);
    cmp_ok(weft_timer_cancel(t), ==, 0, "the stale handle after %d new timers -> 0", LATER);
    ok(task_wait_count(&ran3, LATER, 10), "every new timer still fired");
    int stale = 0;
    for (int i = 0; i < LATER; i++) stale += weft_timer_cancel(later[i]) != 0;
    cmp_ok(stale, ==, 0, "cancelling fired timers -> 0 for all");

    atomic_int ran4 = 0;
    weft_timer *z = weft_call_at(0, count_cb, &ran4);
    ok(z != NULL, "call_at a time in the past");
    ok(task_wait_count(&ran4, 1, 10), "... fires at once");
    errno = 0;
    weft_timer *bad = weft_call_later(NAN, count_cb, &ran4);
    ok(bad == NULL && errno == EINVAL, "call_later(NaN) -> NULL + EINVAL");
    errno = 0;
    bad = weft_call_later(0.01, NULL, NULL);
    ok(bad == NULL && errno == EINVAL, "call_later with a NULL callback -> NULL + EINVAL");
    return NULL;
}

/* Cancels racing the fires: for every timer exactly one of "cancel returned 1" and "the
 * callback ran" happens. */
enum { RACE_N = 3000 };

typedef struct race_timer {
    atomic_int ran;
    int cancelled; /* weft_timer_cancel returned 1 */
    int cancel_rc;
} race_timer;

typedef struct race_state {
    race_timer timers[RACE_N];
    weft_timer *handles[RACE_N];
    atomic_int armed;
    uint64_t seed_arm, seed_cancel;
} race_state;

static void race_cb(void *arg)
{
    atomic_fetch_add(&((race_timer *)arg)->ran, 1);
}

static void *race_arm(void *arg)
{
    race_state *rs = arg;
    uint64_t seed = rs->seed_arm;
    for (int i = 0; i < RACE_N; i++) {
        double delay = 0.0001 * (double)(rnd_from(&seed) % 40);
        rs->handles[i] = weft_call_later(delay, race_cb, &rs->timers[i]);
        atomic_store(&rs->armed, i + 1);
        if (i % 64 == 0) weft_yield();
    }
    return NULL;
}

static void *race_cancel(void *arg)
{
    race_state *rs = arg;
    uint64_t seed = rs->seed_cancel;
    for (int i = 0; i < RACE_N; i++) {
        while (atomic_load(&rs->armed) <= i) weft_yield();
        if (rnd_from(&seed) % 3 == 0) weft_yield();
        int rc = weft_timer_cancel(rs->handles[i]);
        rs->timers[i].cancel_rc = rc;
        rs->timers[i].cancelled = rc == 1;
    }
    return NULL;
}

static void *race_driver(void *arg)
{
    race_state *rs = arg;
    int other = nworkers > 1 ? 1 : 0;
    run_pinned_pair(race_arm, race_cancel, rs, 0, other);
    return NULL;
}

static void test_cancel(void)
{
    run_in(rt, cancel_basics, NULL, NULL);

    race_state *rs = calloc(1, sizeof *rs);
    rs->seed_arm = rnd();
    rs->seed_cancel = rnd();
    run_in(rt, race_driver, rs, NULL);
    int n_cancelled = 0, n_ran = 0, bad_rc = 0;
    for (int i = 0; i < RACE_N; i++) {
        n_cancelled += rs->timers[i].cancelled;
        bad_rc += rs->timers[i].cancel_rc != 0 && rs->timers[i].cancel_rc != 1;
    }
    /* a timer whose cancel returned 0 has fired or is firing: wait for its callback */
    double end = mono() + 10;
    do {
        n_ran = 0;
        for (int i = 0; i < RACE_N; i++) n_ran += atomic_load(&rs->timers[i].ran) != 0;
        if (n_ran + n_cancelled >= RACE_N) break;
        nap(0.001);
    } while (mono() < end);
    nap(0.02);
    int broken = 0;
    for (int i = 0; i < RACE_N; i++)
        broken += atomic_load(&rs->timers[i].ran) + rs->timers[i].cancelled != 1;
    note("racing cancels: %d cancelled, %d fired", n_cancelled, RACE_N - n_cancelled);
    cmp_ok(bad_rc, ==, 0, "timer_cancel returned only 0 or 1");
    cmp_ok(broken, ==, 0,
           "%d timers cancelled while firing on another worker: each either "
           "cancelled (1) or ran exactly once",
           RACE_N);
    free(rs);
}

/* A timer on a worker busy in a long computation is fired by an idle peer. */
typedef struct busy_state {
    atomic_int spinning;
    atomic_int fired;
    int fired_while_spinning;
    double armed_at, fired_at, spin_end;
    int sleeper_home, sleeper_ok;
    double sleeper_woke;
} busy_state;

static void busy_cb(void *arg)
{
    busy_state *b = arg;
    b->fired_at = weft_now();
    b->fired_while_spinning = atomic_load(&b->spinning);
    atomic_store(&b->fired, 1);
}

static void *busy_sleeper(void *arg)
{
    busy_state *b = arg;
    b->sleeper_home = weft_worker_id();
    b->sleeper_ok = weft_sleep(0.01) == 0;
    b->sleeper_woke = weft_now();
    return NULL;
}

static void *busy_spinner(void *arg)
{
    busy_state *b = arg;
    atomic_store(&b->spinning, 1);
    b->armed_at = weft_now();
    weft_call_later(0.01, busy_cb, b);
    while (weft_now() < b->armed_at + 1.0) {
    }
    b->spin_end = weft_now();
    atomic_store(&b->spinning, 0);
    return NULL;
}

static void test_busy_worker(void)
{
    if (nworkers < 2) {
        tap_skip(4, "a busy worker needs an idle peer", NULL);
        return;
    }
    busy_state b;
    memset(&b, 0, sizeof b);
    weft_spawn_opts o0 = {.name = "sleeper", .stack_size = 0, .worker = 0, .pinned = 0};
    weft_spawn_opts o1 = {.name = "spinner", .stack_size = 0, .worker = 0, .pinned = 1};
    weft_future *s = weft_rt_submit_ex(rt, busy_sleeper, &b, &o0);
    weft_future *p = weft_rt_submit_ex(rt, busy_spinner, &b, &o1);
    weft_await(p, NULL);
    weft_await(s, NULL);
    weft_future_release(p);
    weft_future_release(s);
    ok(atomic_load(&b.fired) && b.fired_at >= b.armed_at + 0.01 - EPS,
       "a 10 ms timer on a busy worker fired, not early");
    ok(b.fired_while_spinning, "... while its worker was still busy for 1 s (after %.1f ms)",
       (b.fired_at - b.armed_at) * 1e3);
    cmp_ok(b.sleeper_home, ==, 0, "a task started on worker 0 and slept there");
    ok(b.sleeper_ok && b.sleeper_woke < b.spin_end,
       "... it woke while worker 0 was busy (after %.1f ms)", (b.sleeper_woke - b.armed_at) * 1e3);
}

/* ---- weft_sleep --------------------------------------------------------------------- */

static void *sleep_accuracy(void *arg)
{
    (void)arg;
    static const double delays[] = {0.001, 0.01, 0.05};
    for (int i = 0; i < 3; i++) {
        double d = delays[i];
        double t0 = weft_now(), m0 = mono();
        int r = weft_sleep(d);
        double el = weft_now() - t0, mel = mono() - m0;
        cmp_ok(r, ==, 0, "sleep(%g) in a task returns 0", d);
        ok(el >= d - EPS && mel >= d - EPS, "... took at least %g s (%.2f ms)", d, el * 1e3);
        ok(el < d + 1.0, "... and less than %g s", d + 1.0);
    }
    return NULL;
}

typedef struct yield_pair {
    atomic_int b_ran;
    long spins;
    int a_rc;
} yield_pair;

static void *yield_a(void *arg)
{
    yield_pair *p = arg;
    while (!atomic_load(&p->b_ran) && p->spins < 1000000) {
        int r = weft_sleep(0);
        if (r) p->a_rc = r;
        p->spins++;
    }
    return NULL;
}

static void *yield_b(void *arg)
{
    atomic_store(&((yield_pair *)arg)->b_ran, 1);
    return NULL;
}

static void *yield_driver(void *arg)
{
    int me = weft_worker_id();
    run_pinned_pair(yield_a, yield_b, arg, me, me);
    return NULL;
}

typedef struct outside_sleep {
    atomic_int done;
    int rc;
} outside_sleep;

static void sleep_in_callback(void *arg)
{
    outside_sleep *o = arg;
    o->rc = weft_sleep(0.01);
    atomic_store(&o->done, 1);
}

static void *thread_sleep(void *arg)
{
    double *el = arg;
    double t0 = mono();
    int r = weft_sleep(0.02);
    *el = r == 0 ? mono() - t0 : -1;
    return NULL;
}

static void test_sleep(void)
{
    run_in(rt, sleep_accuracy, NULL, NULL);

    yield_pair p;
    memset(&p, 0, sizeof p);
    run_in(rt, yield_driver, &p, NULL);
    ok(atomic_load(&p.b_ran), "sleep(0) let a task pinned to the same worker run");
    cmp_ok(p.a_rc, ==, 0, "... and returned 0");
    ok(p.spins < 1000000, "... within %ld sleep(0) calls", p.spins);

    double t0 = mono();
    int r = weft_sleep(0.02);
    double el = mono() - t0;
    cmp_ok(r, ==, 0, "sleep(0.02) on the main thread returns 0");
    ok(el >= 0.02 - EPS && el < 1.02, "... after blocking %.2f ms", el * 1e3);

    enum { SLEEP_THREADS = 4 };
    pthread_t th[SLEEP_THREADS];
    double els[SLEEP_THREADS];
    for (int i = 0; i < SLEEP_THREADS; i++) pthread_create(&th[i], NULL, thread_sleep, &els[i]);
    int good = 0;
    for (int i = 0; i < SLEEP_THREADS; i++) {
        pthread_join(th[i], NULL);
        good += els[i] >= 0.02 - EPS && els[i] < 1.02;
    }
    cmp_ok(good, ==, SLEEP_THREADS, "%d foreign threads each blocked >= 20 ms in sleep(0.02)",
           SLEEP_THREADS);

    outside_sleep o = {0};
    o.rc = 1;
    weft_call_soon_threadsafe(rt, sleep_in_callback, &o);
    ok(wait_count(&o.done, 1, 10), "sleep in a callback on a worker returned");
    cmp_ok(o.rc, ==, -EPERM, "... with -EPERM");
}

/* ---- weft_now ----------------------------------------------------------------------- */

static atomic_int now_backwards;

static void *now_thread(void *arg)
{
    (void)arg;
    double last = weft_now();
    for (int i = 0; i < 200000; i++) {
        double t = weft_now();
        if (t < last) atomic_fetch_add(&now_backwards, 1);
        last = t;
        if (weft_current() && i % 1000 == 0) weft_yield();
    }
    return NULL;
}

static void test_now(void)
{
    double a = weft_now();
    ok(a > 0 && isfinite(a), "weft_now on the main thread: %.3f", a);
    nap(0.01);
    double b = weft_now();
    ok(b - a >= 0.01 - EPS && b - a < 1.01, "it advanced %.2f ms over a 10 ms nanosleep",
       (b - a) * 1e3);
    pthread_t th[3];
    weft_future *t[4];
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, now_thread, NULL);
    for (int i = 0; i < 4; i++) t[i] = weft_rt_submit(rt, now_thread, NULL);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        weft_await(t[i], NULL);
        weft_future_release(t[i]);
    }
    cmp_ok(atomic_load(&now_backwards), ==, 0,
           "weft_now never went backwards on threads and in "
           "tasks that yield (and may move between workers)");
}

/* ---- 10,000 sleepers ---------------------------------------------------------------- */

enum { SLEEPERS = 10000 };

typedef struct sleeper {
    double delay;
    int home;
    int started_on;
    int rc;
    double slept;
} sleeper;

static atomic_int sleepers_done;

static void *sleeper_body(void *arg)
{
    sleeper *s = arg;
    s->started_on = weft_worker_id();
    double t0 = weft_now();
    s->rc = weft_sleep(s->delay);
    s->slept = weft_now() - t0;
    atomic_fetch_add(&sleepers_done, 1);
    return NULL;
}

static void *sleepers_driver(void *arg)
{
    sleeper *s = arg;
    weft_future **fs = calloc(SLEEPERS, sizeof *fs);
    int spawned = 0;
    for (int i = 0; i < SLEEPERS; i++) {
        s[i].home = i % (int)nworkers;
        s[i].delay = 0.020 * (double)(rnd() % 1001) / 1000.0;
        s[i].rc = 1;
        s[i].started_on = -2;
        fs[i] = spawn_at(sleeper_body, &s[i], s[i].home, 0);
        spawned += fs[i] != NULL;
    }
    cmp_ok(spawned, ==, SLEEPERS, "spawned %d sleepers over %u workers", SLEEPERS, nworkers);
    int failed = 0;
    for (int i = 0; i < SLEEPERS; i++) {
        if (!fs[i]) continue;
        failed += weft_await(fs[i], NULL) != 0;
        weft_future_release(fs[i]);
    }
    cmp_ok(failed, ==, 0, "every sleeper task finished without error");
    free(fs);
    return NULL;
}

static void test_many_sleepers(void)
{
    sleeper *s = calloc(SLEEPERS, sizeof *s);
    double t0 = mono();
    run_in(rt, sleepers_driver, s, NULL);
    double el = mono() - t0;
    int bad_rc = 0, early = 0, wrong_home = 0;
    for (int i = 0; i < SLEEPERS; i++) {
        bad_rc += s[i].rc != 0;
        early += s[i].slept < s[i].delay - EPS;
        wrong_home += s[i].started_on != s[i].home;
    }
    cmp_ok(atomic_load(&sleepers_done), ==, SLEEPERS, "all %d sleepers woke", SLEEPERS);
    cmp_ok(bad_rc, ==, 0, "every sleep returned 0");
    cmp_ok(early, ==, 0, "no sleep ended early");
    cmp_ok(wrong_home, ==, 0, "each started on the worker named in its spawn options");
    ok(el < 25.0, "in %.2f s", el);
    free(s);
}

/* A timer still armed when its runtime shuts down never fires and does not hold it up. */
typedef struct pending_timer {
    weft_timer *t;
    atomic_int ran;
} pending_timer;

static void *arm_far_timer(void *arg)
{
    pending_timer *p = arg;
    p->t = weft_call_later(1000, count_cb, &p->ran);
    return p->t;
}

static void test_timer_at_shutdown(void)
{
    weft_config cfg = config_with(2);
    weft_rt *rt2 = weft_rt_new(&cfg);
    pending_timer p = {0};
    weft_future *t = weft_rt_submit(rt2, arm_far_timer, &p);
    void *res = NULL;
    weft_await(t, &res);
    weft_future_release(t);
    ok(res != NULL, "a task armed a 1000 s timer and finished");
    double t0 = mono();
    cmp_ok(weft_rt_shutdown(rt2, 20), ==, 0, "shutdown with that timer pending");
    ok(mono() - t0 < 5, "... returned promptly");
    weft_rt_free(rt2);
    cmp_ok(atomic_load(&p.ran), ==, 0, "the timer never fired");
}

int main(void)
{
    watchdog_arm("test_timer", 240);
    const char *seed = getenv("WEFT_TEST_SEED");
    rng_state = seed ? strtoull(seed, NULL, 0) : (uint64_t)time(NULL);
    if (!rng_state) rng_state = 1;
    note("seed %llu (set WEFT_TEST_SEED to repeat)", (unsigned long long)rng_state);
    nworkers = default_workers();
    note("%u workers", nworkers);

    test_outside();
    rt = rt_new_or_bail(nworkers);
    test_call_soon();
    test_call_soon_threadsafe();
    test_timer_order();
    test_timer_from_callback();
    test_cancel();
    test_busy_worker();
    test_sleep();
    test_now();
    test_many_sleepers();
    test_timer_at_shutdown();
    cmp_ok(weft_rt_shutdown(rt, 30), ==, 0, "shutdown");
    weft_rt_free(rt);
    cmp_ok(atomic_load(&never_ran), ==, 0, "nothing refused outside a runtime ever ran");
    done_testing();
}
