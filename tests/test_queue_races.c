/*
 * test_queue_races: weft_queue under concurrency, on four workers and on one.
 *
 *   mpmc      producers and consumers on every worker and on foreign threads, all blocking
 *             (where a lost wake-up hangs) and mixed with _nowait spinners, for each queue
 *             type: every item arrives exactly once (and a FIFO keeps each producer's order
 *             for each consumer); shutdown ends the consumers.
 *   getters   cancellation fired at random moments against getters while items arrive,
 *             also from a foreign thread: every item is got once or still queued.
 *   putters   the same against putters of a small bounded queue: an item is delivered
 *             exactly when its put returned 0.
 *   shutdown  plain and immediate shutdown at random moments while producers and consumers
 *             (tasks and threads) are blocked: nothing doubled, nothing lost unless dropped,
 *             and the unfinished count ends at 0.
 *   join      many tasks and a thread call join while tasks and a thread get and task_done.
 *
 * After every trial, a fresh getter (or putter) must be the one the next put (or get)
 * wakes: a waiter left behind in a list would be served instead (and sanitizers would see
 * its dead stack frame). A watchdog turns a lost wake-up (a hang) into a failure.
 *
 * Sizes: the getter and putter trials total 10^6 cancellation targets in a normal build.
 * WEFT_TEST_SCALE divides every size; a bare run under a sanitizer divides them by 4, as
 * tools/test.sh would; ThreadSanitizer runs an 8th of the trials on top (it makes a fiber
 * per task, about a millisecond each).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>
#include <unistd.h>

#include "tap.h"
#include "queue_kinds.h"
#include "testutil.h"
#include "weft.h"

#if defined(__SANITIZE_THREAD__)
#define TSAN_TOOL 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_TOOL 1
#endif
#endif
#if defined(TSAN_TOOL) || defined(__SANITIZE_ADDRESS__)
#define SLOW_TOOL 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLOW_TOOL 1
#endif
#endif

static long work(long n)
{
#ifdef SLOW_TOOL
    if (!getenv("WEFT_TEST_SCALE")) n /= 4;
#endif
    return scaled(n);
}

static long trial_count(long n)
{
#ifdef TSAN_TOOL
    n /= 8;
#endif
    return work(n);
}

static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "Bail out! watchdog: a phase took over 150 s (lost wake-up?)\n";
    ssize_t n = write(1, msg, sizeof msg - 1);
    (void)n;
    _exit(1);
}

static void phase(void)
{
    alarm(150);
}




static void *nop(void *arg)
{
    return arg;
}

static weft_future *spawn_on(int worker, int pinned, weft_fn fn, void *arg)
{
    weft_spawn_opts o = {.worker = worker, .pinned = pinned};
    weft_future *f = weft_spawn_ex(fn, arg, &o);
    if (!f) BAIL_OUT("spawn failed");
    return f;
}

static int await_release(weft_future *f)
{
    int r = weft_await(f, NULL);
    weft_future_release(f);
    return r;
}

/* ---- the leaked-waiter check -------------------------------------------------------------- */

struct probe_op {
    weft_queue *q;
    int get; /* 1: get, 0: put */
    void *item;
    int result;
    atomic_int started;
};

static void *probe_body(void *arg)
{
    struct probe_op *o = arg;
    atomic_store(&o->started, 1);
    o->result = o->get ? weft_queue_get(o->q, &o->item) : weft_queue_put(o->q, o->item);
    return NULL;
}

static void cancel_cb(void *arg)
{
    weft_cancel(arg);
    weft_future_release(arg);
}

/* q is empty (get) or full (put) and nobody else uses it: a fresh getter (putter) parks,
 * and the next put_nowait (get_nowait) must wake that one. A timer cancels it after 5 s, so
 * a lost wake-up fails the check instead of hanging the test. */
static int fresh_waiter_served(weft_queue *q, int get)
{
    int k = (int)weft_workers() - 1;
    struct probe_op o = {.q = q, .get = get, .item = I2P(-7), .result = 1};
    atomic_init(&o.started, 0);
    weft_future *f = spawn_on(k, 1, probe_body, &o);
    while (!atomic_load(&o.started)) weft_sleep(0.0001);
    await_release(spawn_on(k, 1, nop, NULL)); /* runs once the probe has parked */
    weft_future_retain(f);
    weft_timer *guard = weft_call_later(5.0, cancel_cb, f);
    void *x = NULL;
    int r = get ? weft_queue_put_nowait(q, I2P(-5)) : weft_queue_get_nowait(q, &x);
    await_release(f);
    if (weft_timer_cancel(guard)) weft_future_release(f);
    if (get) return r == 0 && o.result == 0 && P2I(o.item) == -5;
    return r == 0 && o.result == 0 && weft_queue_get_nowait(q, &x) == 0 && P2I(x) == -7;
}

/* ---- mpmc ------------------------------------------------------------------------------------ */

enum { PRODUCERS = 8, CONSUMERS = 8 }; /* of each: 6 tasks and 2 threads */

struct mpmc {
    weft_queue *q;
    int kind;
    long per; /* items per producer */
    atomic_int *seen;
    atomic_long sum, order_errors, put_errors;
};

struct mpmc_role {
    struct mpmc *m;
    int index;
    int nowait;
};

static intptr_t item_id(int producer, long i, long per)
{
    return (intptr_t)producer * per + i + 1;
}

static void *mpmc_produce(void *arg)
{
    struct mpmc_role *r = arg;
    struct mpmc *m = r->m;
    for (long i = 0; i < m->per; i++) {
        void *x = I2P(item_id(r->index, i, m->per));
        int e;
        if (r->nowait) {
            while ((e = weft_queue_put_nowait(m->q, x)) == -EAGAIN) {
                if (weft_current())
                    weft_yield();
                else
                    sched_yield();
            }
        } else {
            e = weft_queue_put(m->q, x);
        }
        if (e) atomic_fetch_add(&m->put_errors, 1);
    }
    return NULL;
}

static void *mpmc_consume(void *arg)
{
    struct mpmc_role *r = arg;
    struct mpmc *m = r->m;
    long last[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) last[p] = -1;
    for (;;) {
        void *x;
        int e;
        if (r->nowait) {
            while ((e = weft_queue_get_nowait(m->q, &x)) == -EAGAIN) {
                if (weft_current())
                    weft_yield();
                else
                    sched_yield();
            }
        } else {
            e = weft_queue_get(m->q, &x);
        }
        if (e) return NULL; /* -ESHUTDOWN: drained */
        intptr_t id = P2I(x) - 1;
        int p = (int)(id / m->per);
        long i = id % m->per;
        atomic_fetch_add(&m->seen[id], 1);
        atomic_fetch_add(&m->sum, P2I(x));
        if (m->kind == FIFO && i <= last[p]) atomic_fetch_add(&m->order_errors, 1);
        last[p] = i;
    }
}

static void mpmc(int kind, size_t maxsize, int mixed)
{
    /* spinners are slow on an oversubscribed machine: fewer items when they take part */
    struct mpmc m = {
        .q = make_queue(kind, maxsize), .kind = kind, .per = work(mixed ? 5000 : 20000)};
    long total = PRODUCERS * m.per;
    m.seen = calloc((size_t)total, sizeof *m.seen);
    atomic_init(&m.sum, 0);
    atomic_init(&m.order_errors, 0);
    atomic_init(&m.put_errors, 0);
    struct mpmc_role prod[PRODUCERS], cons[CONSUMERS];
    weft_future *ptasks[PRODUCERS - 2], *ctasks[CONSUMERS - 2];
    pthread_t pthreads[2], cthreads[2];
    unsigned nw = weft_workers();
    for (int i = 0; i < CONSUMERS; i++) {
        cons[i] = (struct mpmc_role){&m, i, mixed && i % 3 == 2};
        if (i < CONSUMERS - 2)
            ctasks[i] = spawn_on((int)(i % nw), 0, mpmc_consume, &cons[i]);
        else
            pthread_create(&cthreads[i - (CONSUMERS - 2)], NULL, mpmc_consume, &cons[i]);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        prod[i] = (struct mpmc_role){&m, i, mixed && i % 3 == 1};
        if (i < PRODUCERS - 2)
            ptasks[i] = spawn_on((int)(i % nw), 0, mpmc_produce, &prod[i]);
        else
            pthread_create(&pthreads[i - (PRODUCERS - 2)], NULL, mpmc_produce, &prod[i]);
    }
    for (int i = 0; i < PRODUCERS - 2; i++) await_release(ptasks[i]);
    for (int i = 0; i < 2; i++) pthread_join(pthreads[i], NULL);
    weft_queue_shutdown(m.q, 0); /* the consumers drain what is left, then stop */
    for (int i = 0; i < CONSUMERS - 2; i++) await_release(ctasks[i]);
    for (int i = 0; i < 2; i++) pthread_join(cthreads[i], NULL);
    long once = 0;
    for (long i = 0; i < total; i++) once += atomic_load(&m.seen[i]) == 1;
    ok(once == total && atomic_load(&m.put_errors) == 0,
       "mpmc %s(%zu), %s: %ld items from %d producers, each got exactly once by %d consumers",
       kind_name[kind], maxsize, mixed ? "blocking and _nowait" : "all blocking", total, PRODUCERS,
       CONSUMERS);
    cmp_ok(atomic_load(&m.sum), "==", total * (total + 1) / 2, "mpmc %s: the sum matches",
           kind_name[kind]);
    if (kind == FIFO)
        cmp_ok(atomic_load(&m.order_errors), "==", 0,
               "mpmc Queue: each consumer sees each producer's items in order");
    cmp_ok(weft_queue_qsize(m.q), "==", 0, "mpmc %s: the queue is empty", kind_name[kind]);
    free(m.seen);
    weft_queue_free(m.q);
}

/* ---- cancellation trials ---------------------------------------------------------------- */

struct cell {
    weft_queue *q;
    intptr_t id;  /* putters: the item */
    intptr_t got; /* getters: the item; 0: none */
    int result;   /* 1: the body never ran */
};

static void *trial_get(void *arg)
{
    struct cell *c = arg;
    void *x = NULL;
    c->result = weft_queue_get(c->q, &x);
    if (!c->result) c->got = P2I(x);
    return NULL;
}

static void *trial_put(void *arg)
{
    struct cell *c = arg;
    c->result = weft_queue_put(c->q, I2P(c->id));
    return NULL;
}

struct trial {
    weft_queue *q;
    weft_future **targets;
    int n;
    long items; /* getter trials: items the producer puts */
    unsigned seed;
    atomic_int *seen;
};

static void *trial_cancel(void *arg)
{
    struct trial *t = arg;
    unsigned seed = t->seed * 31 + 1;
    int *order = malloc(sizeof(int) * (size_t)t->n);
    for (int i = 0; i < t->n; i++) order[i] = i;
    for (int i = t->n - 1; i > 0; i--) {
        int j = (int)(rand_r(&seed) % (unsigned)(i + 1)), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    for (int i = 0; i < t->n; i++) {
        weft_cancel(t->targets[order[i]]);
        if (rand_r(&seed) % 4 == 0) weft_yield();
    }
    free(order);
    return NULL;
}

/* One time in three, let others run (a task yields, a thread gives up its CPU). */
static void pause_sometimes(unsigned *seed)
{
    if (rand_r(seed) % 3) return;
    if (weft_current())
        weft_yield();
    else
        sched_yield();
}

static void *trial_produce(void *arg)
{
    struct trial *t = arg;
    unsigned seed = t->seed * 17 + 3;
    for (long i = 1; i <= t->items; i++) {
        weft_queue_put_nowait(t->q, I2P(i));
        pause_sometimes(&seed);
    }
    return NULL;
}

static void *trial_consume(void *arg)
{
    struct trial *t = arg;
    unsigned seed = t->seed * 13 + 5;
    void *x;
    while (weft_queue_get(t->q, &x) == 0) {
        atomic_fetch_add(&t->seen[P2I(x)], 1);
        pause_sometimes(&seed);
    }
    return NULL;
}

/* Run a trial: the n targets, target(&cells[i]) spread over the workers; the peer that
 * feeds or drains them, a task or (every third trial) a thread; and the canceller. Wait
 * for the canceller and the targets, shut the queue down if `shut` (a draining peer then
 * stops), and wait for the peer. */
static void run_trial(struct trial *t, struct cell *cells, weft_fn target, weft_fn peer,
                      int shut)
{
    unsigned nw = weft_workers();
    for (int i = 0; i < t->n; i++) t->targets[i] = spawn_on((int)(i % nw), 0, target, &cells[i]);
    pthread_t th;
    weft_future *task = NULL;
    if (t->seed % 3 == 0)
        pthread_create(&th, NULL, peer, t);
    else
        task = spawn_on((int)(t->seed % nw), 0, peer, t);
    weft_future *canceller = spawn_on((int)((t->seed + 1) % nw), 0, trial_cancel, t);
    await_release(canceller); /* first: it uses the handles */
    for (int i = 0; i < t->n; i++) await_release(t->targets[i]);
    if (shut) weft_queue_shutdown(t->q, 0);
    if (task)
        await_release(task);
    else
        pthread_join(th, NULL);
}

struct tally {
    long trials, got, cancelled, never_ran, bad, leaked;
};

/* n getters on an empty queue; a producer (a task, or a thread every third trial) puts
 * `items` items while a canceller cancels every getter at a random moment. */
static void getter_trial(int kind, int n, unsigned seed, struct tally *tl)
{
    struct trial t = {.q = make_queue(kind, 0), .n = n, .seed = seed};
    t.items = n / 2 + (long)(rand_r(&seed) % (unsigned)n);
    t.targets = malloc(sizeof(weft_future *) * (size_t)n);
    t.seen = calloc((size_t)t.items + 1, sizeof *t.seen);
    struct cell *cells = calloc((size_t)n, sizeof *cells);
    for (int i = 0; i < n; i++) cells[i] = (struct cell){.q = t.q, .result = 1};
    run_trial(&t, cells, trial_get, trial_produce, 0);
    for (int i = 0; i < n; i++) {
        tl->trials++;
        if (cells[i].result == 0 && cells[i].got > 0 && cells[i].got <= t.items) {
            tl->got++;
            atomic_fetch_add(&t.seen[cells[i].got], 1);
        } else if (cells[i].result == -ECANCELED) {
            tl->cancelled++;
        } else if (cells[i].result == 1) {
            tl->never_ran++;
        } else {
            tl->bad++;
        }
    }
    void *x;
    while (weft_queue_get_nowait(t.q, &x) == 0) {
        if (P2I(x) > 0 && P2I(x) <= t.items)
            atomic_fetch_add(&t.seen[P2I(x)], 1);
        else
            tl->bad++;
    }
    for (long i = 1; i <= t.items; i++) tl->bad += atomic_load(&t.seen[i]) != 1;
    tl->leaked += !fresh_waiter_served(t.q, 1);
    free(cells);
    free(t.seen);
    free(t.targets);
    weft_queue_free(t.q);
}

/* n putters of distinct items on a small bounded queue; a consumer (a task, or a thread
 * every third trial) gets at random pace while a canceller cancels every putter. */
static void putter_trial(int kind, int n, unsigned seed, struct tally *tl)
{
    struct trial t = {.q = make_queue(kind, 1 + seed % 4), .n = n, .seed = seed};
    t.targets = malloc(sizeof(weft_future *) * (size_t)n);
    t.seen = calloc((size_t)n + 1, sizeof *t.seen);
    struct cell *cells = calloc((size_t)n, sizeof *cells);
    for (int i = 0; i < n; i++) cells[i] = (struct cell){.q = t.q, .id = i + 1, .result = 1};
    run_trial(&t, cells, trial_put, trial_consume, 1); /* the consumer drains, then stops */
    for (int i = 0; i < n; i++) {
        int seen = atomic_load(&t.seen[i + 1]);
        tl->trials++;
        if (cells[i].result == 0 && seen == 1)
            tl->got++;
        else if (cells[i].result == -ECANCELED && seen == 0)
            tl->cancelled++;
        else if (cells[i].result == 1 && seen == 0)
            tl->never_ran++;
        else
            tl->bad++;
    }
    tl->bad += weft_queue_qsize(t.q) != 0;
    free(cells);
    free(t.seen);
    free(t.targets);
    weft_queue_free(t.q);
    /* the leaked-putter check needs an open queue: run it on a fresh trial of its own */
}

static void putter_leak_trial(int kind, unsigned seed, struct tally *tl)
{
    unsigned nw = weft_workers();
    enum { N = 64 };
    weft_queue *q = make_queue(kind, 1);
    weft_queue_put_nowait(q, I2P(-1));
    struct cell cells[N];
    weft_future *targets[N];
    for (int i = 0; i < N; i++) {
        cells[i] = (struct cell){.q = q, .id = i + 1, .result = 1};
        targets[i] = spawn_on((int)(i % nw), 0, trial_put, &cells[i]);
    }
    struct trial t = {.q = q, .targets = targets, .n = N, .seed = seed};
    weft_future *canceller = spawn_on((int)(seed % nw), 0, trial_cancel, &t);
    int got = 0;
    void *x;
    for (int i = 0; i < 8; i++) { /* wake some putters while they are being cancelled */
        if (weft_queue_get_nowait(q, &x) == 0) got++;
        weft_yield();
    }
    await_release(canceller);
    for (int i = 0; i < N; i++) await_release(targets[i]);
    int inserted = 0;
    for (int i = 0; i < N; i++) inserted += cells[i].result == 0;
    while (weft_queue_get_nowait(q, &x) == 0) got++;
    tl->bad += got != inserted + 1;
    weft_queue_put_nowait(q, I2P(-1)); /* full again */
    tl->leaked += !fresh_waiter_served(q, 0);
    weft_queue_free(q);
}

static void cancellation_trials(long target_trials)
{
    struct tally g = {0}, p = {0};
    unsigned seed = 1;
    for (long done = 0; done < target_trials / 2; seed++) {
        int n = 200 + (int)(seed * 7919 % 800);
        getter_trial((int)(seed % KINDS), n, seed, &g);
        done += n;
    }
    ok(g.bad == 0, "getters: no item lost or doubled, every get 0 or -ECANCELED (%ld trials)",
       g.trials);
    cmp_ok(g.leaked, "==", 0, "getters: no waiter left behind");
    note("getters: %ld got an item, %ld cancelled, %ld cancelled before they ran", g.got,
         g.cancelled, g.never_ran);
    for (long done = 0; done < target_trials / 2; seed++) {
        int n = 200 + (int)(seed * 7919 % 800);
        putter_trial((int)(seed % KINDS), n, seed, &p);
        done += n;
        if (seed % 16 == 0) putter_leak_trial((int)(seed % KINDS), seed, &p);
    }
    ok(p.bad == 0, "putters: an item is delivered exactly when its put returned 0 (%ld trials)",
       p.trials);
    cmp_ok(p.leaked, "==", 0, "putters: no waiter left behind");
    note("putters: %ld put, %ld cancelled, %ld cancelled before they ran", p.got, p.cancelled,
         p.never_ran);
}

/* ---- shutdown at random moments ------------------------------------------------------------ */

enum { SD_PRODUCERS = 4, SD_CONSUMERS = 4, SD_MAX = 1 << 20 };

struct sd {
    weft_queue *q;
    atomic_int next;           /* the next item id */
    atomic_int *put_ok, *seen; /* per item id */
    atomic_long task_done_errors, other_errors;
};

static void *sd_produce(void *arg)
{
    struct sd *s = arg;
    for (;;) {
        int id = atomic_fetch_add(&s->next, 1);
        if (id >= SD_MAX) return NULL;
        int r = weft_queue_put(s->q, I2P(id));
        if (r == -ESHUTDOWN) return NULL;
        if (r)
            atomic_fetch_add(&s->other_errors, 1);
        else
            atomic_store(&s->put_ok[id], 1);
    }
}

static void *sd_consume(void *arg)
{
    struct sd *s = arg;
    void *x;
    int r;
    while ((r = weft_queue_get(s->q, &x)) == 0) {
        atomic_fetch_add(&s->seen[P2I(x)], 1);
        if (weft_queue_task_done(s->q)) atomic_fetch_add(&s->task_done_errors, 1);
    }
    if (r != -ESHUTDOWN) atomic_fetch_add(&s->other_errors, 1);
    return NULL;
}

static void shutdown_trials(int trials)
{
    unsigned nw = weft_workers();
    int bad = 0, stuck_join = 0;
    struct sd s;
    s.put_ok = calloc(SD_MAX, sizeof *s.put_ok);
    s.seen = calloc(SD_MAX, sizeof *s.seen);
    for (int trial = 0; trial < trials; trial++) {
        int immediate = trial % 2;
        s.q = make_queue(trial % KINDS, 1 + (size_t)(trial % 4));
        atomic_init(&s.next, 0);
        atomic_init(&s.task_done_errors, 0);
        atomic_init(&s.other_errors, 0);
        weft_future *tasks[SD_PRODUCERS + SD_CONSUMERS];
        pthread_t th[2];
        for (int i = 0; i < SD_PRODUCERS; i++)
            tasks[i] = spawn_on((int)(i % nw), 0, sd_produce, &s);
        for (int i = 0; i < SD_CONSUMERS; i++)
            tasks[SD_PRODUCERS + i] = spawn_on((int)(i % nw), 0, sd_consume, &s);
        pthread_create(&th[0], NULL, sd_produce, &s);
        pthread_create(&th[1], NULL, sd_consume, &s);
        weft_sleep(0.0002 * (trial % 7));
        weft_queue_shutdown(s.q, immediate);
        for (int i = 0; i < SD_PRODUCERS + SD_CONSUMERS; i++) await_release(tasks[i]);
        pthread_join(th[0], NULL);
        pthread_join(th[1], NULL);
        int n = atomic_load(&s.next);
        if (n > SD_MAX) n = SD_MAX;
        for (int id = 0; id < n; id++) {
            int p = atomic_load(&s.put_ok[id]), g = atomic_load(&s.seen[id]);
            /* got at most once, only if put; everything put was got unless dropped */
            if (g > p || (!immediate && g != p)) bad++;
            atomic_store(&s.put_ok[id], 0);
            atomic_store(&s.seen[id], 0);
        }
        bad += atomic_load(&s.task_done_errors) != 0 || atomic_load(&s.other_errors) != 0;
        bad += weft_queue_qsize(s.q) != 0;
        stuck_join += weft_queue_task_done(s.q) != -EINVAL; /* unfinished must be 0 */
        stuck_join += weft_queue_join(s.q) != 0;
        weft_queue_free(s.q);
    }
    free(s.put_ok);
    free(s.seen);
    cmp_ok(bad, "==", 0, "shutdown: %d trials at random moments, nothing doubled or lost", trials);
    cmp_ok(stuck_join, "==", 0, "shutdown: the unfinished count ends at 0, join returns");
}

/* ---- join with task_done from many tasks ------------------------------------------------- */

/* Item 1 holds the count up: its getter does not call task_done; the main task does, once
 * every item is put and item 1 was processed. So the count reaches 0 exactly once, when
 * every item has been processed, however puts and task_done calls interleave. */
struct jw {
    weft_queue *q;
    long items;
    atomic_long processed;
    atomic_long early; /* joins that returned before every item was processed */
    atomic_int joined, hold_seen;
};

static void *jw_work(void *arg)
{
    struct jw *j = arg;
    void *x;
    unsigned seed = (unsigned)(uintptr_t)&x;
    while (weft_queue_get(j->q, &x) == 0) {
        if (rand_r(&seed) % 2) {
            if (weft_current())
                weft_yield();
            else
                sched_yield();
        }
        atomic_fetch_add(&j->processed, 1);
        if (P2I(x) == 1)
            atomic_store(&j->hold_seen, 1);
        else
            weft_queue_task_done(j->q);
    }
    return NULL;
}

static void *jw_join(void *arg)
{
    struct jw *j = arg;
    int r = weft_queue_join(j->q);
    if (r || atomic_load(&j->processed) != j->items) atomic_fetch_add(&j->early, 1);
    atomic_fetch_add(&j->joined, 1);
    return NULL;
}

static void join_many(void)
{
    enum { WORKERS = 12, JOINERS = 8 };
    unsigned nw = weft_workers();
    struct jw j = {.q = weft_queue_new(64), .items = work(100000)};
    atomic_init(&j.processed, 0);
    atomic_init(&j.early, 0);
    atomic_init(&j.joined, 0);
    atomic_init(&j.hold_seen, 0);
    weft_queue_put_nowait(j.q, I2P(1));
    weft_future *joiners[JOINERS], *workers[WORKERS];
    for (int i = 0; i < JOINERS; i++) joiners[i] = spawn_on((int)(i % nw), 0, jw_join, &j);
    pthread_t jt, wt;
    pthread_create(&jt, NULL, jw_join, &j);
    for (int i = 0; i < WORKERS; i++) workers[i] = spawn_on((int)(i % nw), 0, jw_work, &j);
    pthread_create(&wt, NULL, jw_work, &j);
    for (long i = 2; i <= j.items; i++) weft_queue_put(j.q, I2P(i));
    while (!atomic_load(&j.hold_seen)) weft_sleep(0.0002);
    weft_queue_task_done(j.q); /* item 1's */
    for (int i = 0; i < JOINERS; i++) await_release(joiners[i]);
    pthread_join(jt, NULL);
    ok(atomic_load(&j.joined) == JOINERS + 1 && atomic_load(&j.early) == 0,
       "join: %d tasks and a thread return from join only after %ld task_done calls", JOINERS,
       j.items);
    weft_queue_shutdown(j.q, 0);
    for (int i = 0; i < WORKERS; i++) await_release(workers[i]);
    pthread_join(wt, NULL);
    cmp_ok(atomic_load(&j.processed), "==", j.items, "join: every item was processed once");
    cmp_ok(weft_queue_task_done(j.q), "==", -EINVAL, "join: the unfinished count is 0");
    weft_queue_free(j.q);
}

/* ---- main ---------------------------------------------------------------------------------- */

struct plan {
    long trials;
    int shutdowns;
};

static void *races(void *arg)
{
    const struct plan *p = arg;
    note("---- %u workers", weft_workers());
    phase();
    for (int mixed = 0; mixed < 2; mixed++) {
        mpmc(FIFO, 16, mixed);
        mpmc(LIFO, 0, mixed);
        mpmc(PRIO, 64, mixed);
        mpmc(FIFO, 1, mixed);
        mpmc(LIFO, 2, mixed);
    }
    phase();
    cancellation_trials(p->trials);
    phase();
    shutdown_trials(p->shutdowns);
    phase();
    join_many();
    alarm(0);
    return NULL;
}

int main(void)
{
    signal(SIGALRM, watchdog);
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 4;
    struct plan many = {trial_count(800000), (int)work(400)};
    cmp_ok(weft_run(races, &many, &cfg, NULL), "==", 0, "races on 4 workers");
    cfg.workers = 1;
    struct plan few = {trial_count(200000), (int)work(100)};
    cmp_ok(weft_run(races, &few, &cfg, NULL), "==", 0, "races on 1 worker");
    done_testing();
}
