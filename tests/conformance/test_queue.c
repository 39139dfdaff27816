/*
 * test_queue: asyncio's Queue, LifoQueue and PriorityQueue cases (asyncio-semantics.md,
 * cases 40 to 54, from CPython's test_queues) on weft_queue, on one worker and on four.
 * [ORD] cases assert what holds once the scheduler is quiet, not CPython's interleaving.
 *
 * Handshakes, never bare timing: a task that must be waiting inside a queue call runs
 * pinned on a worker and bumps `started` right before the call; the scenario then queues a
 * pinned no-op on that worker and awaits it, which can only run once the task has switched
 * out, i.e. is parked in the call. A task pinned on the scenario's own worker cannot run
 * between two of the scenario's calls, which makes the "woken but not yet resumed" window
 * of cases 45 to 47 deterministic.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tap.h"
#include "queue_kinds.h"
#include "testutil.h"
#include "weft.h"



static int here;  /* the worker the scenarios run on */
static int there; /* another worker (the same one when there is only one) */


/* ---- one queue call in its own task ------------------------------------------------------ */

typedef struct op {
    weft_queue *q;
    void *item; /* put: the item; get: what it got */
    int result;
    atomic_int started;
    weft_future *task;
} op;

static void *do_get(void *arg)
{
    op *o = arg;
    atomic_store(&o->started, 1);
    o->result = weft_queue_get(o->q, &o->item);
    return NULL;
}

static void *do_put(void *arg)
{
    op *o = arg;
    atomic_store(&o->started, 1);
    o->result = weft_queue_put(o->q, o->item);
    return NULL;
}

static void *do_join(void *arg)
{
    op *o = arg;
    atomic_store(&o->started, 1);
    o->result = weft_queue_join(o->q);
    return NULL;
}

static void *nop(void *arg)
{
    return arg;
}

/* Until every task queued on worker k so far has run or switched out. */
static void settle_on(int k)
{
    weft_spawn_opts opts = {.worker = k, .pinned = 1};
    weft_future *probe = weft_spawn_ex(nop, NULL, &opts);
    weft_await(probe, NULL);
    weft_future_release(probe);
}

/* Spawn fn(o) pinned on worker k, on queue q with `item`. */
static void launch(int k, weft_fn fn, op *o, weft_queue *q, void *item)
{
    o->q = q;
    o->item = item;
    o->result = 1;
    atomic_init(&o->started, 0);
    weft_spawn_opts opts = {.worker = k, .pinned = 1};
    o->task = weft_spawn_ex(fn, o, &opts);
}

/* Start fn(o) pinned on worker k; return once it is parked in its queue call (or done). */
static void start_on(int k, weft_fn fn, op *o, weft_queue *q, void *item)
{
    launch(k, fn, o, q, item);
    while (!atomic_load(&o->started)) weft_sleep(0.0002);
    settle_on(k);
}

static void *set_flag(void *arg)
{
    atomic_store((atomic_int *)arg, 1);
    return NULL;
}

/* start_on(), for another worker k, without letting this worker run anything meanwhile:
 * the tasks pinned here that are ready stay ready. */
static void start_elsewhere_busy(int k, weft_fn fn, op *o, weft_queue *q, void *item)
{
    launch(k, fn, o, q, item);
    while (!atomic_load(&o->started)) {
    }
    atomic_int probed = 0;
    weft_spawn_opts opts = {.worker = k, .pinned = 1};
    weft_future *probe = weft_spawn_ex(set_flag, &probed, &opts);
    while (!atomic_load(&probed)) {
    }
    weft_future_release(probe);
}

static void cancel_cb(void *arg)
{
    weft_cancel(arg);
    weft_future_release(arg);
}

/* Await o's task; a task still waiting after 5 s is cancelled, so a lost wake-up fails
 * the check that follows instead of hanging the test. */
static int finish(op *o)
{
    weft_future_retain(o->task);
    weft_timer *guard = weft_call_later(5.0, cancel_cb, o->task);
    weft_await(o->task, NULL);
    if (weft_timer_cancel(guard)) weft_future_release(o->task);
    weft_future_release(o->task);
    o->task = NULL;
    return o->result;
}

/* ---- 40: sizes, full, empty, the _nowait errors -------------------------------------------- */

static void case_40(void)
{
    weft_queue *q = weft_queue_new(0);
    int full_seen = 0;
    for (int i = 0; i < 1000; i++) {
        weft_queue_put_nowait(q, I2P(i));
        full_seen |= weft_queue_full(q);
    }
    ok(!full_seen, "40: full() is never true for maxsize 0 (1000 items)");
    cmp_ok(weft_queue_maxsize(q), "==", 0, "40: maxsize() is 0");
    cmp_ok(weft_queue_qsize(q), "==", 1000, "40: qsize() counts the items");
    weft_queue_free(q);

    q = weft_queue_new(1);
    ok(weft_queue_empty(q) == 1 && weft_queue_full(q) == 0, "40: Queue(1) starts empty, not full");
    cmp_ok(weft_queue_put_nowait(q, I2P(1)), "==", 0, "40: Queue(1) takes one item");
    ok(weft_queue_full(q) == 1 && weft_queue_empty(q) == 0, "40: Queue(1) is full after one put");
    cmp_ok(weft_queue_put_nowait(q, I2P(2)), "==", -EAGAIN,
           "40: put_nowait on a full queue: -EAGAIN");
    void *x = NULL;
    cmp_ok(weft_queue_get_nowait(q, &x), "==", 0, "40: get_nowait on a non-empty queue");
    cmp_ok(P2I(x), "==", 1, "40: gives the item");
    cmp_ok(weft_queue_get_nowait(q, &x), "==", -EAGAIN,
           "40: get_nowait on an empty queue: -EAGAIN");
    cmp_ok(weft_queue_maxsize(q), "==", 1, "40: maxsize() is 1");
    weft_queue_free(q);

    q = weft_queue_new(2); /* CPython's float maxsize 1.3 has no size_t analogue: 2 then full */
    ok(!weft_queue_put_nowait(q, I2P(1)) && !weft_queue_put_nowait(q, I2P(2)) &&
           weft_queue_put_nowait(q, I2P(3)) == -EAGAIN,
       "40: Queue(2) accepts 2 items, then put_nowait gives -EAGAIN");
    weft_queue_free(q);
}

/* ---- 41: order ------------------------------------------------------------------------ */

struct rec {
    int key, order;
};

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

static void case_41(void)
{
    static const int want[KINDS][3] = {{1, 3, 2}, {2, 3, 1}, {1, 2, 3}};
    for (int k = 0; k < KINDS; k++) {
        weft_queue *q = make_queue(k, 0);
        weft_queue_put_nowait(q, I2P(1));
        weft_queue_put_nowait(q, I2P(3));
        weft_queue_put_nowait(q, I2P(2));
        int got[3] = {0, 0, 0};
        for (int i = 0; i < 3; i++) {
            void *x = NULL;
            weft_queue_get(q, &x);
            got[i] = (int)P2I(x);
        }
        ok(got[0] == want[k][0] && got[1] == want[k][1] && got[2] == want[k][2],
           "41: %s: put 1, 3, 2 -> got %d, %d, %d", kind_name[k], got[0], got[1], got[2]);
        weft_queue_free(q);
    }

    /* equal items come out of a priority queue in put order, across storage growth */
    enum { N = 200 };
    static struct rec recs[N];
    weft_queue *q = weft_priority_queue_new(0, cmp_rec);
    unsigned seed = 7;
    for (int i = 0; i < N; i++) {
        recs[i] = (struct rec){(int)(rand_r(&seed) % 5), i};
        weft_queue_put_nowait(q, &recs[i]);
    }
    int sorted = 1;
    struct rec *prev = NULL;
    for (int i = 0; i < N; i++) {
        void *x = NULL;
        weft_queue_get_nowait(q, &x);
        struct rec *r = x;
        if (!r || (prev && (r->key < prev->key || (r->key == prev->key && r->order < prev->order))))
            sorted = 0;
        prev = r;
    }
    ok(sorted, "41: PriorityQueue: smallest first, equal items in put order (%d items)", N);
    weft_queue_free(q);
}

/* ---- 42 [ORD]: a producer blocks at maxsize and resumes after one get --------------------- */

struct producer {
    weft_queue *q;
    int n;
    atomic_int started; /* items it is about to put, +1 */
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (int i = 0; i < p->n; i++) {
        atomic_store(&p->started, i + 1);
        if (weft_queue_put(p->q, I2P(i))) return weft_fail(-EIO);
    }
    return NULL;
}

static void case_42(void)
{
    weft_queue *q = weft_queue_new(2);
    struct producer p = {.q = q, .n = 3};
    atomic_init(&p.started, 0);
    weft_spawn_opts opts = {.worker = there, .pinned = 1};
    weft_future *f = weft_spawn_ex(produce, &p, &opts);
    while (atomic_load(&p.started) < 3) weft_sleep(0.0002);
    settle_on(there);
    ok(!weft_done(f) && weft_queue_qsize(q) == 2 && weft_queue_full(q) == 1,
       "42: Queue(2): the producer of 3 blocks after 2 items");
    void *x = NULL;
    weft_queue_get(q, &x);
    cmp_ok(P2I(x), "==", 0, "42: the first get returns 0");
    cmp_ok(weft_await(f, NULL), "==", 0, "42: then the producer puts its last item and ends");
    weft_future_release(f);
    int a = -1, b = -1;
    weft_queue_get(q, &x);
    a = (int)P2I(x);
    weft_queue_get(q, &x);
    b = (int)P2I(x);
    ok(a == 1 && b == 2, "42: the next gets return 1 and 2");
    weft_queue_free(q);
}

/* ---- 43: blocking get and put, woken by the other side -------------------------------------- */

static void put_cb(void *arg)
{
    weft_queue_put_nowait(arg, I2P(42));
}

static void *taken_by_cb = NULL;
static int taken_by_cb_result = 1;
static weft_future *get_cb_done; /* set once get_cb has stored its result */

/* Its get_nowait wakes the putter, which may run on another worker before the return value
 * is stored: the putter reads the result only after get_cb_done. */
static void get_cb(void *arg)
{
    taken_by_cb_result = weft_queue_get_nowait(arg, &taken_by_cb);
    weft_future_set_result(get_cb_done, NULL);
}

static void case_43(void)
{
    weft_queue *q = weft_queue_new(0);
    double t0 = weft_now();
    weft_timer *t = weft_call_later(0.01, put_cb, q);
    void *x = NULL;
    int r = weft_queue_get(q, &x);
    ok(t && r == 0 && P2I(x) == 42, "43: get waits for a put_nowait made by call_later");
    cmp_ok((weft_now() - t0) * 1000, ">=", 9, "43: and returns only after it");
    weft_queue_free(q);

    q = weft_queue_new(1);
    weft_queue_put_nowait(q, I2P(1));
    t0 = weft_now();
    get_cb_done = weft_future_new();
    t = weft_call_later(0.01, get_cb, q);
    r = weft_queue_put(q, I2P(2));
    ok(t && r == 0, "43: put on a full queue waits for a get_nowait made by call_later");
    cmp_ok((weft_now() - t0) * 1000, ">=", 9, "43: and returns only after it");
    weft_await(get_cb_done, NULL);
    weft_future_release(get_cb_done);
    ok(taken_by_cb_result == 0 && P2I(taken_by_cb) == 1, "43: the callback got the old item");
    weft_queue_get_nowait(q, &x);
    cmp_ok(P2I(x), "==", 2, "43: the queue now holds the put item");

    /* test_get_with_putters: a get on a full queue wakes the waiting putter */
    weft_queue_put_nowait(q, I2P(1));
    op p;
    start_on(there, do_put, &p, q, I2P(7));
    ok(!weft_done(p.task), "43: a putter waits on the full Queue(1)");
    weft_queue_get(q, &x);
    cmp_ok(P2I(x), "==", 1, "43: get returns the stored item");
    cmp_ok(finish(&p), "==", 0, "43: and the putter's put returns 0");
    weft_queue_get_nowait(q, &x);
    cmp_ok(P2I(x), "==", 7, "43: its item is in the queue");

    /* test_get_with_waiting_putters: two putters deliver 'a' then 'b' */
    op a, b;
    start_on(there, do_put, &a, q, I2P('a'));
    start_on(there, do_put, &b, q, I2P('b'));
    int ga = 0, gb = 0;
    weft_queue_get(q, &x);
    ga = (int)P2I(x);
    weft_queue_get(q, &x);
    gb = (int)P2I(x);
    ok(ga == 'a' && gb == 'b', "43: two putters on Queue(1) deliver 'a' then 'b'");
    ok(finish(&a) == 0 && finish(&b) == 0, "43: both puts return 0");
    weft_queue_free(q);
}

/* ---- 44: a getter cancelled while waiting is skipped ---------------------------------------- */

static void case_44(void)
{
    weft_queue *q = weft_queue_new(0);
    op g1, g2;
    start_on(there, do_get, &g1, q, NULL);
    start_on(there, do_get, &g2, q, NULL);
    weft_cancel(g1.task);
    cmp_ok(finish(&g1), "==", -ECANCELED, "44: the cancelled getter returns -ECANCELED");
    weft_queue_put_nowait(q, I2P(5));
    ok(finish(&g2) == 0 && P2I(g2.item) == 5, "44: a later put goes to the second getter");
    cmp_ok(weft_queue_qsize(q), "==", 0, "44: nothing is left in the queue");
    weft_queue_free(q);
}

/* ---- 45, 46: a getter woken and then cancelled loses nothing -------------------------------- */

static void case_45(void)
{
    /* each queue type: where the item comes back is where it would be had it never left */
    static const int next[KINDS][2] = {{1, 2}, {2, 1}, {1, 2}};
    for (int k = 0; k < KINDS; k++) {
        weft_queue *q = make_queue(k, 0);
        op r;
        start_on(here, do_get, &r, q, NULL);
        weft_queue_put_nowait(q, I2P(1)); /* handed to the reader, which cannot run yet */
        weft_queue_put_nowait(q, I2P(2));
        weft_cancel(r.task);
        cmp_ok(finish(&r), "==", -ECANCELED, "45: %s: the woken reader is cancelled", kind_name[k]);
        void *x = NULL, *y = NULL;
        weft_queue_get(q, &x);
        weft_queue_get_nowait(q, &y);
        ok(P2I(x) == next[k][0] && P2I(y) == next[k][1],
           "45: %s: the retried gets return %d then %d (got %d, %d)", kind_name[k], next[k][0],
           next[k][1], (int)P2I(x), (int)P2I(y));
        weft_queue_free(q);
    }

    /* two woken readers cancelled: whichever brings its item back first, the items keep
     * their put order */
    for (int k = 0; k < KINDS; k++) {
        weft_queue *q = make_queue(k, 0);
        op r1, r2;
        start_on(here, do_get, &r1, q, NULL);
        start_on(here, do_get, &r2, q, NULL);
        weft_queue_put_nowait(q, I2P(1));
        weft_queue_put_nowait(q, I2P(2));
        weft_queue_put_nowait(q, I2P(3));
        weft_cancel(r2.task);
        weft_cancel(r1.task);
        int e2 = finish(&r2), e1 = finish(&r1);
        int got[3];
        for (int i = 0; i < 3; i++) {
            void *x = NULL;
            weft_queue_get_nowait(q, &x);
            got[i] = (int)P2I(x);
        }
        int lifo = k == LIFO;
        ok(e1 == -ECANCELED && e2 == -ECANCELED && got[0] == (lifo ? 3 : 1) && got[1] == 2 &&
               got[2] == (lifo ? 1 : 3),
           "45: %s: two woken readers cancelled: the queue gives %d, %d, %d", kind_name[k], got[0],
           got[1], got[2]);
        weft_queue_free(q);
    }
}

static void case_46(void)
{
    weft_queue *q = weft_queue_new(0);
    op r1, r2, r3;
    start_on(here, do_get, &r1, q, NULL);
    start_on(here, do_get, &r2, q, NULL);
    start_on(here, do_get, &r3, q, NULL);
    weft_queue_put_nowait(q, I2P(1));
    weft_queue_put_nowait(q, I2P(2));
    weft_cancel(r1.task);
    cmp_ok(finish(&r1), "==", -ECANCELED, "46: the first woken reader is cancelled");
    int e2 = finish(&r2), e3 = finish(&r3);
    intptr_t a = P2I(r2.item), b = P2I(r3.item);
    ok(e2 == 0 && e3 == 0 && ((a == 1 && b == 2) || (a == 2 && b == 1)),
       "46: the other two readers receive {1, 2} (got %d, %d)", (int)a, (int)b);
    cmp_ok(weft_queue_qsize(q), "==", 0, "46: nothing is left");
    weft_queue_free(q);
}

/* ---- 47, 48, 49: putters cancelled, timeouts ------------------------------------------------ */

static void case_47(void)
{
    weft_queue *q = weft_queue_new(1);
    weft_queue_put_nowait(q, I2P(1));
    op w;
    start_on(here, do_put, &w, q, I2P(2));
    void *x = NULL;
    weft_queue_get_nowait(q, &x); /* wakes the writer, which cannot run yet */
    cmp_ok(P2I(x), "==", 1, "47: get_nowait returns 1");
    weft_cancel(w.task);
    cmp_ok(finish(&w), "==", -ECANCELED,
           "47, 49: the woken writer, cancelled, returns exactly -ECANCELED");
    cmp_ok(weft_queue_qsize(q), "==", 0, "47: its item was not inserted");
    start_on(here, do_put, &w, q, I2P(2));
    cmp_ok(finish(&w), "==", 0, "47: the retried put inserts 2");
    weft_queue_get_nowait(q, &x);
    cmp_ok(P2I(x), "==", 2, "47: get_nowait returns 2");
    cmp_ok(weft_queue_qsize(q), "==", 0, "47: qsize is 0 after the final get");

    /* the woken writer, cancelled, passes the free slot on to the next writer */
    weft_queue_put_nowait(q, I2P(1));
    op w2;
    start_on(here, do_put, &w, q, I2P(2));
    start_on(here, do_put, &w2, q, I2P(3));
    weft_queue_get_nowait(q, &x); /* wakes w */
    weft_cancel(w.task);
    cmp_ok(finish(&w), "==", -ECANCELED, "47: a woken writer is cancelled");
    cmp_ok(finish(&w2), "==", 0, "47: the next writer is woken for the slot it left");
    ok(weft_queue_get_nowait(q, &x) == 0 && P2I(x) == 3 && weft_queue_qsize(q) == 0,
       "47: the queue holds only the next writer's item");
    weft_queue_free(q);
}

static void case_48(void)
{
    weft_queue *q = weft_queue_new(1);
    weft_queue_put_nowait(q, I2P('a'));
    op b, X;
    start_on(there, do_put, &b, q, I2P('b'));
    start_on(there, do_put, &X, q, I2P('X'));
    weft_cancel(X.task);
    cmp_ok(finish(&X), "==", -ECANCELED, "48: the cancelled putter returns -ECANCELED");
    void *x = NULL, *y = NULL;
    weft_queue_get(q, &x);
    weft_queue_get(q, &y);
    ok(P2I(x) == 'a' && P2I(y) == 'b', "48: get gives 'a', then 'b'");
    cmp_ok(finish(&b), "==", 0, "48: the other putter's put returns 0");
    cmp_ok(weft_queue_get_nowait(q, &x), "==", -EAGAIN, "48: 'X' was never inserted");
    weft_queue_free(q);
}

static void case_49(void)
{
    /* wait_for(q.get(), t): a timer cancels the getter; no stale waiter is left */
    weft_queue *q = weft_queue_new(0);
    op g;
    start_on(there, do_get, &g, q, NULL);
    weft_future_retain(g.task);
    weft_call_later(0.005, cancel_cb, g.task);
    cmp_ok(finish(&g), "==", -ECANCELED, "49: a getter cancelled by a timeout: -ECANCELED");
    start_on(there, do_get, &g, q, NULL);
    weft_queue_put_nowait(q, I2P(9));
    ok(finish(&g) == 0 && P2I(g.item) == 9, "49: the next put goes to the next getter");
    cmp_ok(weft_queue_qsize(q), "==", 0, "49: and the queue is empty");
    weft_queue_free(q);

    q = weft_queue_new(1);
    weft_queue_put_nowait(q, I2P(1));
    op p;
    start_on(there, do_put, &p, q, I2P(2));
    weft_future_retain(p.task);
    weft_call_later(0.005, cancel_cb, p.task);
    cmp_ok(finish(&p), "==", -ECANCELED, "49: a putter cancelled by a timeout: -ECANCELED");
    start_on(there, do_put, &p, q, I2P(3));
    void *x = NULL, *y = NULL;
    weft_queue_get(q, &x);
    ok(finish(&p) == 0, "49: a get wakes the next putter, not a stale one");
    weft_queue_get_nowait(q, &y);
    ok(P2I(x) == 1 && P2I(y) == 3, "49: the queue gave 1, then 3");
    weft_queue_free(q);
}

/* ---- 50: no stranded waiters ---------------------------------------------------------- */

struct consumer {
    weft_queue *q;
    int n;
    long sum;
};

static void *consume(void *arg)
{
    struct consumer *c = arg;
    for (int i = 0; i < c->n; i++) {
        void *x;
        if (weft_queue_get(c->q, &x)) return weft_fail(-EIO);
        c->sum += P2I(x);
    }
    return NULL;
}

static void case_50(void)
{
    enum { N = 2000 };
    weft_queue *q = weft_queue_new(1);
    struct producer p = {.q = q, .n = N};
    struct consumer c = {.q = q, .n = N};
    atomic_init(&p.started, 0);
    weft_spawn_opts on_there = {.worker = there, .pinned = 1};
    weft_future *pf = weft_spawn_ex(produce, &p, &on_there);
    weft_future *cf = weft_spawn(consume, &c);
    int e1 = weft_await(pf, NULL), e2 = weft_await(cf, NULL);
    ok(e1 == 0 && e2 == 0 && c.sum == (long)N * (N - 1) / 2,
       "50: a 1-slot producer/consumer pair moves %d items", N);
    weft_future_release(pf);
    weft_future_release(cf);
    weft_queue_free(q);

    /* test_why_are_putters_waiting: one get_nowait drain against four putters */
    q = weft_queue_new(2);
    op ps[4];
    for (int i = 0; i < 4; i++) start_on(there, do_put, &ps[i], q, I2P(i));
    size_t n = weft_queue_qsize(q);
    int drained = 0;
    for (size_t i = 0; i < n; i++) {
        void *x;
        drained += weft_queue_get_nowait(q, &x) == 0;
    }
    int all = 1;
    for (int i = 0; i < 4; i++) all &= finish(&ps[i]) == 0;
    ok(n == 2 && drained == 2 && all, "50: draining 2 items lets the 2 waiting putters in");
    cmp_ok(weft_queue_qsize(q), "==", 2, "50: which fill the queue again");
    weft_queue_free(q);
}

/* A putter woken for a free slot whose item goes straight to a getter that came meanwhile
 * has not used the slot: the next putter must get it. */
static void woken_putter_passes_room_on(void)
{
    if (here == there) {
        skip(1, 3, "needs two workers") {}
        end_skip;
        return;
    }
    weft_queue *q = weft_queue_new(1);
    weft_queue_put_nowait(q, I2P(1));
    op p1, p2, g;
    start_on(here, do_put, &p1, q, I2P(2));
    start_on(here, do_put, &p2, q, I2P(3));
    void *x = NULL;
    weft_queue_get_nowait(q, &x);                     /* wakes p1, which cannot run yet */
    start_elsewhere_busy(there, do_get, &g, q, NULL); /* a getter parks on the empty queue */
    int r1 = finish(&p1);                             /* its item goes straight to the getter */
    ok(r1 == 0 && finish(&g) == 0 && P2I(g.item) == 2,
       "50: the woken putter's item goes to the getter");
    cmp_ok(finish(&p2), "==", 0, "50: and the next putter gets the slot it left free");
    ok(weft_queue_get_nowait(q, &x) == 0 && P2I(x) == 3, "50: its item is in the queue");
    weft_queue_free(q);
}

/* ---- 51: task_done and join ------------------------------------------------------------ */

struct worker_arg {
    weft_queue *q;
    atomic_long sum, processed;
};

static void *queue_worker(void *arg)
{
    struct worker_arg *w = arg;
    for (;;) {
        void *x;
        int r = weft_queue_get(w->q, &x);
        if (r) return r == -ECANCELED ? weft_fail(r) : NULL;
        weft_sleep(0.00001 * (P2I(x) % 3));
        atomic_fetch_add(&w->sum, P2I(x));
        atomic_fetch_add(&w->processed, 1);
        weft_queue_task_done(w->q);
    }
}

static void case_51(void)
{
    weft_queue *q = weft_queue_new(0);
    cmp_ok(weft_queue_task_done(q), "==", -EINVAL, "51: task_done on a fresh queue: -EINVAL");
    ok(weft_queue_join(q) == 0 && weft_queue_join(q) == 0,
       "51: join on a fresh queue returns 0, twice");
    weft_queue_free(q);

    for (int k = 0; k < KINDS; k++) {
        q = make_queue(k, 0);
        struct worker_arg w = {.q = q};
        atomic_init(&w.sum, 0);
        atomic_init(&w.processed, 0);
        weft_spawn_opts on_there = {.worker = there, .pinned = 1};
        weft_future *w1 = weft_spawn(queue_worker, &w),
                    *w2 = weft_spawn_ex(queue_worker, &w, &on_there);
        for (int i = 0; i < 100; i++) weft_queue_put_nowait(q, I2P(i));
        int r = weft_queue_join(q);
        long done = atomic_load(&w.processed), sum = atomic_load(&w.sum);
        ok(r == 0 && done == 100 && sum == 4950,
           "51: %s: join returns after 100 items got their task_done (%ld, sum %ld)", kind_name[k],
           done, sum);
        weft_cancel(w1);
        weft_cancel(w2);
        ok(weft_await(w1, NULL) == -ECANCELED && weft_await(w2, NULL) == -ECANCELED,
           "51: %s: the idle workers are cancelled in get", kind_name[k]);
        weft_future_release(w1);
        weft_future_release(w2);
        cmp_ok(weft_queue_task_done(q), "==", -EINVAL, "51: %s: one task_done too many: -EINVAL",
               kind_name[k]);
        weft_queue_free(q);
    }
}

/* ---- 52, 53, 54: shutdown ------------------------------------------------------------- */

static int all_shut_down(weft_queue *q)
{
    void *x;
    op p, g;
    start_on(there, do_put, &p, q, I2P(1));
    start_on(there, do_get, &g, q, NULL);
    return finish(&p) == -ESHUTDOWN && weft_queue_put_nowait(q, I2P(1)) == -ESHUTDOWN &&
           finish(&g) == -ESHUTDOWN && weft_queue_get_nowait(q, &x) == -ESHUTDOWN;
}

static void case_52(int k)
{
    weft_queue *q = make_queue(k, 0);
    op g;
    start_on(there, do_get, &g, q, NULL);
    cmp_ok(weft_queue_shutdown(q, 0), "==", 0, "52: %s: shutdown", kind_name[k]);
    cmp_ok(weft_queue_qsize(q), "==", 0, "52: %s: qsize 0", kind_name[k]);
    cmp_ok(weft_queue_join(q), "==", 0, "52: %s: join returns", kind_name[k]);
    cmp_ok(finish(&g), "==", -ESHUTDOWN, "52: %s: the pending get: -ESHUTDOWN", kind_name[k]);
    ok(all_shut_down(q), "52: %s: put, put_nowait, get, get_nowait: -ESHUTDOWN", kind_name[k]);
    weft_queue_free(q);
}

static void case_53(int k)
{
    weft_queue *q = make_queue(k, 1);
    weft_queue_put_nowait(q, I2P(1));
    op j, p;
    start_on(there, do_join, &j, q, NULL);
    start_on(there, do_put, &p, q, I2P(2));
    ok(!weft_done(j.task) && !weft_done(p.task), "53: %s: a join and a put wait", kind_name[k]);
    weft_queue_shutdown(q, 0);
    cmp_ok(weft_queue_qsize(q), "==", 1, "53: %s: shutdown keeps the item", kind_name[k]);
    cmp_ok(finish(&p), "==", -ESHUTDOWN, "53: %s: the waiting putter: -ESHUTDOWN", kind_name[k]);
    void *x = NULL;
    ok(weft_queue_get(q, &x) == 0 && P2I(x) == 1, "53: %s: get still returns the item",
       kind_name[k]);
    settle_on(there);
    ok(!weft_done(j.task), "53: %s: join still waits for its task_done", kind_name[k]);
    ok(all_shut_down(q), "53: %s: then put, put_nowait, get, get_nowait: -ESHUTDOWN", kind_name[k]);
    cmp_ok(weft_queue_task_done(q), "==", 0, "53: %s: task_done", kind_name[k]);
    cmp_ok(finish(&j), "==", 0, "53: %s: lets join return", kind_name[k]);
    cmp_ok(weft_queue_task_done(q), "==", -EINVAL, "53: %s: an extra task_done: -EINVAL",
           kind_name[k]);
    weft_queue_free(q);
}

static void case_54(int k)
{
    weft_queue *q = make_queue(k, 0);
    weft_queue_put_nowait(q, I2P(1));
    op j;
    start_on(there, do_join, &j, q, NULL);
    weft_queue_shutdown(q, 1);
    cmp_ok(weft_queue_qsize(q), "==", 0, "54: %s: immediate shutdown empties the queue",
           kind_name[k]);
    cmp_ok(finish(&j), "==", 0, "54: %s: and lets join return", kind_name[k]);
    ok(all_shut_down(q), "54: %s: put, put_nowait, get, get_nowait: -ESHUTDOWN", kind_name[k]);
    cmp_ok(weft_queue_task_done(q), "==", -EINVAL, "54: %s: task_done: -EINVAL", kind_name[k]);
    weft_queue_free(q);

    /* test_shutdown_immediate_with_unfinished */
    q = make_queue(k, 0);
    weft_queue_put_nowait(q, I2P(1));
    weft_queue_put_nowait(q, I2P(1));
    start_on(there, do_join, &j, q, NULL);
    void *x;
    cmp_ok(weft_queue_get(q, &x), "==", 0, "54: %s: one of two items is got", kind_name[k]);
    weft_queue_shutdown(q, 1);
    cmp_ok(weft_queue_qsize(q), "==", 0, "54: %s: immediate shutdown drops the other",
           kind_name[k]);
    settle_on(there);
    ok(!weft_done(j.task), "54: %s: join waits for the item handed out", kind_name[k]);
    ok(all_shut_down(q), "54: %s: put, put_nowait, get, get_nowait: -ESHUTDOWN", kind_name[k]);
    cmp_ok(weft_queue_task_done(q), "==", 0, "54: %s: its task_done", kind_name[k]);
    cmp_ok(weft_queue_task_done(q), "==", -EINVAL, "54: %s: a second one: -EINVAL", kind_name[k]);
    cmp_ok(finish(&j), "==", 0, "54: %s: join returns", kind_name[k]);
    weft_queue_free(q);
}

static void shutdown_wakes(void)
{
    /* a getter woken by a put keeps its item across a (non-immediate) shutdown */
    weft_queue *q = weft_queue_new(0);
    op g;
    start_on(here, do_get, &g, q, NULL);
    weft_queue_put_nowait(q, I2P(3));
    weft_queue_shutdown(q, 0);
    ok(finish(&g) == 0 && P2I(g.item) == 3, "52: a getter woken before shutdown gets its item");
    weft_queue_free(q);

    /* weft hands the item to the woken getter: it has left the queue, so an immediate
     * shutdown does not drop it (CPython's getter would find the queue emptied), and join
     * waits for its task_done */
    q = weft_queue_new(0);
    start_on(here, do_get, &g, q, NULL);
    weft_queue_put_nowait(q, I2P(4));
    ok(weft_queue_qsize(q) == 0, "hand-off: the item handed to a waiting getter is not counted");
    weft_queue_shutdown(q, 1);
    ok(finish(&g) == 0 && P2I(g.item) == 4,
       "hand-off: a getter handed its item before an immediate shutdown keeps it");
    ok(weft_queue_task_done(q) == 0 && weft_queue_task_done(q) == -EINVAL,
       "hand-off: and the item still counts as unfinished until its task_done");
    weft_queue_free(q);

    /* shutdown wakes every waiting getter and putter; a second shutdown changes nothing */
    enum { N = 6 };
    weft_queue *empty = weft_queue_new(0), *full = weft_queue_new(1);
    weft_queue_put_nowait(full, I2P(1));
    op gs[N], ps[N];
    for (int i = 0; i < N; i++) {
        start_on(i % 2 ? there : here, do_get, &gs[i], empty, NULL);
        start_on(i % 2 ? there : here, do_put, &ps[i], full, I2P(i));
    }
    weft_queue_shutdown(empty, 0);
    weft_queue_shutdown(full, 0);
    ok(weft_queue_shutdown(full, 0) == 0, "52: shutdown twice is harmless");
    int all = 1;
    for (int i = 0; i < N; i++) all &= finish(&gs[i]) == -ESHUTDOWN && finish(&ps[i]) == -ESHUTDOWN;
    ok(all, "52: shutdown wakes %d getters and %d putters with -ESHUTDOWN", N, N);
    cmp_ok(weft_queue_qsize(full), "==", 1, "53: the full queue keeps its item");
    weft_queue_shutdown(full, 1);
    cmp_ok(weft_queue_qsize(full), "==", 0, "54: an immediate shutdown after a plain one drops it");
    weft_queue_free(empty);
    weft_queue_free(full);
}

/* ---- foreign threads, callbacks, bad input ------------------------------------------------- */

struct thread_op {
    weft_queue *empty, *full;
    void *item;
    int get_r, put_r, join_r;
    atomic_int step;
};

static void *thread_get_put_join(void *arg)
{
    struct thread_op *t = arg;
    t->get_r = weft_queue_get(t->empty, &t->item); /* waits for the task's put */
    atomic_store(&t->step, 1);
    t->put_r = weft_queue_put(t->full, I2P(11)); /* waits for the task's get */
    atomic_store(&t->step, 2);
    t->join_r = weft_queue_join(t->full); /* waits for the task's task_done calls */
    atomic_store(&t->step, 3);
    return NULL;
}

static void foreign_threads(void)
{
    /* the sleeps only make it likely that the thread really waits; nothing depends on them */
    struct thread_op t = {.empty = weft_queue_new(0), .full = weft_queue_new(1)};
    atomic_init(&t.step, 0);
    weft_queue_put_nowait(t.full, I2P(100));
    pthread_t th;
    pthread_create(&th, NULL, thread_get_put_join, &t);
    weft_sleep(0.005);
    weft_queue_put(t.empty, I2P(10));
    while (atomic_load(&t.step) < 1) weft_sleep(0.0002);
    ok(t.get_r == 0 && P2I(t.item) == 10, "foreign thread: a blocking get gets a task's item");
    weft_sleep(0.005);
    void *x = NULL, *y = NULL;
    weft_queue_get(t.full, &x); /* makes room for the thread's put */
    weft_queue_get(t.full, &y); /* waits for it */
    while (atomic_load(&t.step) < 2) weft_sleep(0.0002);
    ok(P2I(x) == 100 && P2I(y) == 11 && t.put_r == 0,
       "foreign thread: a blocking put waits for room a task makes");
    weft_sleep(0.005);
    ok(atomic_load(&t.step) == 2, "foreign thread: join waits while items are unfinished");
    weft_queue_task_done(t.full);
    weft_queue_task_done(t.full);
    pthread_join(th, NULL);
    cmp_ok(t.join_r, "==", 0, "foreign thread: join returns after the last task_done");
    weft_queue_free(t.empty);
    weft_queue_free(t.full);
}

struct cb_arg {
    weft_queue *q;
    int (*call)(weft_queue *q);
    int r;
    atomic_int done;
};

static void call_cb(void *arg)
{
    struct cb_arg *c = arg;
    c->r = c->call(c->q);
    atomic_store(&c->done, 1);
}

/* Run call(q) in a callback on this worker (a worker thread outside any task). */
static int in_callback(weft_queue *q, int (*call)(weft_queue *q))
{
    struct cb_arg c = {.q = q, .call = call};
    atomic_init(&c.done, 0);
    weft_call_soon(call_cb, &c);
    while (!atomic_load(&c.done)) weft_sleep(0.0002);
    return c.r;
}

static int cb_get(weft_queue *q)
{
    void *x;
    return weft_queue_get(q, &x);
}

static int cb_put(weft_queue *q)
{
    return weft_queue_put(q, I2P(1));
}

static int cb_join(weft_queue *q)
{
    return weft_queue_join(q);
}

static int cb_put_nowait(weft_queue *q)
{
    return weft_queue_put_nowait(q, I2P(1));
}

static void callbacks_and_bad_input(void)
{
    weft_queue *q = weft_queue_new(1);
    ok(in_callback(q, cb_get) == -EPERM && in_callback(q, cb_join) == 0,
       "callback: a get that would wait: -EPERM; a join that need not: 0");
    ok(in_callback(q, cb_put) == 0 && in_callback(q, cb_put_nowait) == -EAGAIN,
       "callback: a put that need not wait: 0; put_nowait on a full queue: -EAGAIN");
    ok(in_callback(q, cb_put) == -EPERM && in_callback(q, cb_join) == -EPERM,
       "callback: a put or join that would wait: -EPERM");
    ok(in_callback(q, cb_get) == 0 && weft_queue_qsize(q) == 0,
       "callback: a get that need not wait: 0");
    weft_queue_free(q);

    void *x = NULL;
    errno = 0;
    ok(weft_priority_queue_new(0, NULL) == NULL && errno == EINVAL,
       "priority queue without cmp: NULL, errno EINVAL");
    ok(weft_queue_put(NULL, x) == -EINVAL && weft_queue_get(NULL, &x) == -EINVAL &&
           weft_queue_put_nowait(NULL, x) == -EINVAL &&
           weft_queue_get_nowait(NULL, &x) == -EINVAL && weft_queue_task_done(NULL) == -EINVAL &&
           weft_queue_join(NULL) == -EINVAL && weft_queue_shutdown(NULL, 0) == -EINVAL &&
           weft_queue_empty(NULL) == -EINVAL && weft_queue_full(NULL) == -EINVAL,
       "NULL queue: -EINVAL everywhere");
    ok(weft_queue_qsize(NULL) == 0 && weft_queue_maxsize(NULL) == 0, "NULL queue: sizes 0");
    weft_queue_free(NULL);
    q = weft_queue_new(0);
    ok(weft_queue_get(q, NULL) == -EINVAL && weft_queue_get_nowait(q, NULL) == -EINVAL,
       "get with no place for the item: -EINVAL");
    weft_queue_free(q);
}

static void *scenarios(void *arg)
{
    (void)arg;
    case_40();
    case_41();
    case_42();
    case_43();
    case_44();
    case_45();
    case_46();
    case_47();
    case_48();
    case_49();
    case_50();
    woken_putter_passes_room_on();
    case_51();
    for (int k = 0; k < KINDS; k++) {
        case_52(k);
        case_53(k);
        case_54(k);
    }
    shutdown_wakes();
    foreign_threads();
    callbacks_and_bad_input();
    return NULL;
}

static void *pinned_scenarios(void *arg)
{
    weft_spawn_opts on_here = {.name = "scenarios", .worker = here, .pinned = 1};
    weft_future *f = weft_spawn_ex(scenarios, arg, &on_here);
    int r = weft_await(f, NULL);
    weft_future_release(f);
    return r ? weft_fail(r) : NULL;
}

int main(void)
{
    static const unsigned workers[] = {1, 4};
    for (size_t i = 0; i < sizeof workers / sizeof workers[0]; i++) {
        weft_config cfg;
        weft_config_default(&cfg);
        cfg.workers = workers[i];
        here = 0;
        there = (int)workers[i] - 1;
        note("---- on %u worker(s)", workers[i]);
        cmp_ok(weft_run(pinned_scenarios, NULL, &cfg, NULL), "==", 0, "scenarios on %u worker(s)",
               workers[i]);
    }
    done_testing();
}
