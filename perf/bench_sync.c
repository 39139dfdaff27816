/*
 * bench_sync: the weft side of the synchronisation and queue benchmarks (issue 3). perf/run.sh
 * runs it beside the Go, Tokio and asyncio/uvloop peers in perf/peers/, which do the same work
 * at the same sizes.
 *
 *   usage: bench_sync BENCH [--workers N] [--div D]
 *     BENCH      mutex_contention queue_ping_pong queue_throughput
 *     --workers  worker threads (default: weft_config_default, i.e. WEFT_WORKERS or one per core)
 *     --div      divide the sizes by D (perf/run.sh --quick passes 10)
 *
 * One line out, the same fields as bench_core and every peer:
 *   bench=NAME impl=weft workers=N ns_per_op=X ops=N total_ms=X peak_rss_kib=N answer=N
 *
 * Timing starts and stops inside the main task, so runtime start-up and shutdown are not
 * counted; spawning the benchmark's tasks and awaiting them is. Every spawned task's handle
 * is awaited and released. bench_sync exits 1 on a wrong answer or on any error.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "bench.h"


_Static_assert(sizeof(uintptr_t) >= 8, "queue items and task results carry 64-bit values");

struct sizes {
    size_t mutex_tasks, mutex_iters;
    size_t pp_pairs, pp_trips;
    size_t tp_producers, tp_consumers, tp_items, tp_capacity;
};

/* Await and release every task; the sum of their results (each a uint64_t). */
static uint64_t await_all(weft_future **tasks, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += (uintptr_t)await_or_die(tasks[i]);
        weft_future_release(tasks[i]);
    }
    return sum;
}

static weft_future **tasks_new(size_t n)
{
    weft_future **tasks = malloc(n * sizeof *tasks);
    if (!tasks) fatal("malloc", -ENOMEM);
    return tasks;
}

static weft_queue *queue_new_or_die(size_t maxsize)
{
    weft_queue *q = weft_queue_new(maxsize);
    if (!q) fatal("weft_queue_new", errno);
    return q;
}

static void put_or_die(weft_queue *q, uintptr_t item)
{
    int err = weft_queue_put(q, (void *)item);
    if (err) fatal("weft_queue_put", err);
}

static uintptr_t get_or_die(weft_queue *q)
{
    void *item = NULL;
    int err = weft_queue_get(q, &item);
    if (err) fatal("weft_queue_get", err);
    return (uintptr_t)item;
}

/*
 * ---- mutex_contention: tasks x iters lock / counter += 1 / unlock ----------------------------
 * The counter is a plain integer that only the lock protects; it must end at tasks x iters.
 */

struct mutex_shared {
    weft_lock *lock;
    uint64_t counter; /* guarded by lock */
    size_t iters;
};

static void *mutex_task(void *arg)
{
    struct mutex_shared *m = arg;
    for (size_t i = 0; i < m->iters; i++) {
        int err = weft_lock_acquire(m->lock);
        if (err) fatal("weft_lock_acquire", err);
        m->counter++;
        err = weft_lock_release(m->lock);
        if (err) fatal("weft_lock_release", err);
    }
    return NULL;
}

static struct outcome bench_mutex_contention(const struct sizes *sz)
{
    struct mutex_shared m = {.lock = weft_lock_new(), .iters = sz->mutex_iters};
    if (!m.lock) fatal("weft_lock_new", errno);
    weft_future **tasks = tasks_new(sz->mutex_tasks);
    for (size_t i = 0; i < sz->mutex_tasks; i++) tasks[i] = spawn_or_die(mutex_task, &m);
    await_all(tasks, sz->mutex_tasks);
    free(tasks);
    weft_lock_free(m.lock);
    uint64_t ops = (uint64_t)sz->mutex_tasks * sz->mutex_iters;
    return (struct outcome){ops, m.counter, ops};
}

/*
 * ---- queue_ping_pong: pairs x trips round trips over two capacity-1 queues per pair ----------
 * A round trip: the pinger puts a number on `ping` and gets it back from `pong`; the ponger
 * gets from `ping` and puts what it got on `pong`. Each pinger returns how many of its
 * numbers came back unchanged.
 */

struct pp_pair {
    weft_queue *ping, *pong;
    size_t trips;
};

static void *pp_pinger(void *arg)
{
    struct pp_pair *p = arg;
    uint64_t echoed = 0;
    for (size_t i = 1; i <= p->trips; i++) {
        put_or_die(p->ping, i);
        echoed += get_or_die(p->pong) == i;
    }
    return (void *)(uintptr_t)echoed;
}

static void *pp_ponger(void *arg)
{
    struct pp_pair *p = arg;
    for (size_t i = 0; i < p->trips; i++) put_or_die(p->pong, get_or_die(p->ping));
    return NULL;
}

static struct outcome bench_queue_ping_pong(const struct sizes *sz)
{
    size_t n = sz->pp_pairs;
    struct pp_pair *pairs = malloc(n * sizeof *pairs);
    if (!pairs) fatal("malloc", -ENOMEM);
    weft_future **tasks = tasks_new(2 * n);
    for (size_t i = 0; i < n; i++) {
        pairs[i] = (struct pp_pair){queue_new_or_die(1), queue_new_or_die(1), sz->pp_trips};
        tasks[2 * i] = spawn_or_die(pp_pinger, &pairs[i]);
        tasks[2 * i + 1] = spawn_or_die(pp_ponger, &pairs[i]);
    }
    uint64_t echoed = await_all(tasks, 2 * n);
    for (size_t i = 0; i < n; i++) {
        weft_queue_free(pairs[i].ping);
        weft_queue_free(pairs[i].pong);
    }
    free(tasks);
    free(pairs);
    uint64_t ops = (uint64_t)n * sz->pp_trips;
    return (struct outcome){ops, echoed, ops};
}

/*
 * ---- queue_throughput: producers and consumers share one bounded FIFO queue -----------------
 * Producer p puts the numbers p+1, p+1+P, p+1+2P, ... up to `items` (P producers), so all of
 * 1..items are put once. Consumers get until the queue is shut down (after the last put: gets
 * drain what is left, then fail with -ESHUTDOWN, like a closed Go channel) and return their
 * sums, which must add up to items (items + 1) / 2.
 */

struct tp_shared {
    weft_queue *q;
    size_t producers, items;
};

struct tp_producer {
    struct tp_shared *s;
    size_t first;
};

static void *tp_produce(void *arg)
{
    struct tp_producer *p = arg;
    for (size_t v = p->first; v <= p->s->items; v += p->s->producers) put_or_die(p->s->q, v);
    return NULL;
}

static void *tp_consume(void *arg)
{
    struct tp_shared *s = arg;
    uint64_t sum = 0;
    for (;;) {
        void *item = NULL;
        int err = weft_queue_get(s->q, &item);
        if (err == -ESHUTDOWN) break;
        if (err) fatal("weft_queue_get", err);
        sum += (uintptr_t)item;
    }
    return (void *)(uintptr_t)sum;
}

static struct outcome bench_queue_throughput(const struct sizes *sz)
{
    struct tp_shared s = {queue_new_or_die(sz->tp_capacity), sz->tp_producers, sz->tp_items};
    struct tp_producer *producers = malloc(sz->tp_producers * sizeof *producers);
    if (!producers) fatal("malloc", -ENOMEM);
    weft_future **consumers = tasks_new(sz->tp_consumers);
    weft_future **putters = tasks_new(sz->tp_producers);
    for (size_t i = 0; i < sz->tp_consumers; i++) consumers[i] = spawn_or_die(tp_consume, &s);
    for (size_t i = 0; i < sz->tp_producers; i++) {
        producers[i] = (struct tp_producer){&s, i + 1};
        putters[i] = spawn_or_die(tp_produce, &producers[i]);
    }
    await_all(putters, sz->tp_producers);
    int err = weft_queue_shutdown(s.q, 0);
    if (err) fatal("weft_queue_shutdown", err);
    uint64_t sum = await_all(consumers, sz->tp_consumers);
    weft_queue_free(s.q);
    free(putters);
    free(consumers);
    free(producers);
    uint64_t n = sz->tp_items;
    return (struct outcome){n, sum, n * (n + 1) / 2};
}

/* ---- driver ---------------------------------------------------------------------------- */

static const struct bench benches[] = {
    {"mutex_contention", bench_mutex_contention},
    {"queue_ping_pong", bench_queue_ping_pong},
    {"queue_throughput", bench_queue_throughput},
};

static const struct sizes *sizes_for(size_t div)
{
    static struct sizes sizes;
    sizes = (struct sizes){
        .mutex_tasks = 1000,
        .mutex_iters = 20000 / div,
        .pp_pairs = 1000,
        .pp_trips = 5000 / div,
        .tp_producers = 4,
        .tp_consumers = 4,
        .tp_items = 1000000 / div,
        .tp_capacity = 1024,
    };
    return &sizes;
}

int main(int argc, char **argv)
{
    bench_prog = "bench_sync";
    return bench_main(argc, argv, benches, sizeof benches / sizeof benches[0], 1000, sizes_for);
}
