/*
 * bench_core: the weft side of the core-runtime benchmarks. perf/run.sh runs it beside the
 * Go, Tokio and asyncio/uvloop peers in perf/peers/, which do the same work at the same sizes.
 *
 *   usage: bench_core BENCH [--workers N] [--div D]
 *     BENCH      spawn_many yield_many ping_pong chained_spawn skynet fib
 *     --workers  worker threads (default: weft_config_default, i.e. WEFT_WORKERS or one per core)
 *     --div      divide the sizes by D (perf/run.sh --quick passes 10)
 *
 * One line out, the same fields as every peer:
 *   bench=NAME impl=weft workers=N ns_per_op=X ops=N total_ms=X peak_rss_kib=N answer=N
 *
 * Timing starts and stops inside the main task, so runtime start-up and shutdown are not
 * counted. Ownership: every pointer a task keeps to a future is backed by its own reference,
 * released when that task is done with it; every spawned task's handle is released.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "bench.h"

#include <stdatomic.h>

_Static_assert(sizeof(uintptr_t) >= 8, "skynet and fib pass 64-bit values as task results");

struct sizes {
    size_t spawn_many;
    size_t yield_tasks, yield_count;
    size_t pp_pairs, pp_trips;
    size_t chained;
    uint64_t skynet_leaves;
    uint64_t fib_n;
};

static weft_future *future_new_or_die(void)
{
    weft_future *f = weft_future_new();
    if (!f) fatal("weft_future_new", errno);
    return f;
}

static void set_result_or_die(weft_future *f, void *result)
{
    int err = weft_future_set_result(f, result);
    if (err) fatal("weft_future_set_result", err);
}

/* ---- spawn_many: one task spawns n tasks; each bumps a counter; the last one says done */

struct spawn_many {
    atomic_size_t count;
    size_t n;
    weft_future *done; /* the last task's reference */
};

static void *spawn_many_task(void *arg)
{
    struct spawn_many *s = arg;
    size_t n = s->n; /* *s may be gone once the last task has set done */
    weft_future *done = s->done;
    if (atomic_fetch_add_explicit(&s->count, 1, memory_order_acq_rel) + 1 == n) {
        set_result_or_die(done, NULL);
        weft_future_release(done);
    }
    return NULL;
}

static struct outcome bench_spawn_many(const struct sizes *sz)
{
    struct spawn_many s = {.n = sz->spawn_many, .done = future_new_or_die()};
    atomic_init(&s.count, 0);
    weft_future *done = s.done;
    weft_future_retain(done);
    for (size_t i = 0; i < s.n; i++) weft_future_release(spawn_or_die(spawn_many_task, &s));
    await_or_die(done);
    weft_future_release(done);
    return (struct outcome){s.n, atomic_load(&s.count), s.n};
}

/* ---- yield_many: tasks x count weft_yield calls ---------------------------------------- */

static void *yield_task(void *arg)
{
    size_t count = (size_t)(uintptr_t)arg;
    for (size_t i = 0; i < count; i++) weft_yield();
    return NULL;
}

static struct outcome bench_yield_many(const struct sizes *sz)
{
    weft_future **tasks = malloc(sz->yield_tasks * sizeof *tasks);
    if (!tasks) fatal("malloc", -ENOMEM);
    for (size_t i = 0; i < sz->yield_tasks; i++)
        tasks[i] = spawn_or_die(yield_task, (void *)(uintptr_t)sz->yield_count);
    for (size_t i = 0; i < sz->yield_tasks; i++) {
        await_or_die(tasks[i]);
        weft_future_release(tasks[i]);
    }
    free(tasks);
    return (struct outcome){sz->yield_tasks * sz->yield_count, 0, 0};
}

/*
 * ---- ping_pong: pairs x trips round trips over plain futures --------------------------------
 * A one-slot handoff: each message is the result of a fresh future, and carries the future
 * the receiver will await next. A round trip: the pinger completes `out` (which the ponger
 * awaits) with a fresh `back`; the ponger completes `back` with the next `out` (or NULL after
 * the last trip). Each future has two references, one per side of the pair.
 */

struct pair {
    weft_future *first;
    size_t trips;
};

static weft_future *future_for_two(void)
{
    weft_future *f = future_new_or_die();
    weft_future_retain(f);
    return f;
}

static void *pinger_task(void *arg)
{
    struct pair *p = arg;
    weft_future *out = p->first;
    for (size_t i = 0; i < p->trips; i++) {
        weft_future *back = future_for_two();
        set_result_or_die(out, back);
        weft_future_release(out);
        out = await_or_die(back);
        weft_future_release(back);
    }
    return NULL;
}

static void *ponger_task(void *arg)
{
    struct pair *p = arg;
    weft_future *in = p->first;
    for (size_t i = 0; i < p->trips; i++) {
        weft_future *back = await_or_die(in);
        weft_future_release(in);
        in = i + 1 < p->trips ? future_for_two() : NULL;
        set_result_or_die(back, in);
        weft_future_release(back);
    }
    return NULL;
}

static struct outcome bench_ping_pong(const struct sizes *sz)
{
    size_t n = sz->pp_pairs;
    struct pair *pairs = malloc(n * sizeof *pairs);
    weft_future **tasks = malloc(2 * n * sizeof *tasks);
    if (!pairs || !tasks) fatal("malloc", -ENOMEM);
    for (size_t i = 0; i < n; i++) {
        pairs[i] = (struct pair){.first = future_for_two(), .trips = sz->pp_trips};
        tasks[2 * i] = spawn_or_die(pinger_task, &pairs[i]);
        tasks[2 * i + 1] = spawn_or_die(ponger_task, &pairs[i]);
    }
    for (size_t i = 0; i < 2 * n; i++) {
        await_or_die(tasks[i]);
        weft_future_release(tasks[i]);
    }
    free(tasks);
    free(pairs);
    return (struct outcome){n * sz->pp_trips, 0, 0};
}

/* ---- chained_spawn: each task spawns the next; the last one says done ------------------- */

static weft_future *chain_done; /* the last task's reference */

static void *chain_task(void *arg)
{
    uintptr_t left = (uintptr_t)arg;
    if (left == 0) {
        set_result_or_die(chain_done, NULL);
        weft_future_release(chain_done);
        return NULL;
    }
    weft_future_release(spawn_or_die(chain_task, (void *)(left - 1)));
    return NULL;
}

static struct outcome bench_chained_spawn(const struct sizes *sz)
{
    weft_future *done = future_new_or_die();
    weft_future_retain(done);
    chain_done = done;
    chain_task((void *)(uintptr_t)sz->chained); /* spawns sz->chained tasks, like the peers */
    await_or_die(done);
    weft_future_release(done);
    return (struct outcome){sz->chained, 0, 0};
}

/* ---- skynet: a 10-ary tree of tasks over the leaves; parents await and sum their children */

static void *skynet_task(void *arg)
{
    uint64_t packed = (uintptr_t)arg;
    uint64_t num = packed >> 32, size = packed & 0xffffffffu;
    if (size == 1) return (void *)(uintptr_t)num;

    weft_future *children[10];
    uint64_t child = size / 10, sum = 0;
    for (uint64_t i = 0; i < 10; i++)
        children[i] =
            spawn_or_die(skynet_task, (void *)(uintptr_t)((num + i * child) << 32 | child));
    for (int i = 0; i < 10; i++) {
        sum += (uintptr_t)await_or_die(children[i]);
        weft_future_release(children[i]);
    }
    return (void *)(uintptr_t)sum;
}

static struct outcome bench_skynet(const struct sizes *sz)
{
    uint64_t tasks = 0;
    for (uint64_t level = sz->skynet_leaves; level >= 1; level /= 10) tasks += level;
    uint64_t leaves = sz->skynet_leaves;
    uint64_t sum = (uintptr_t)skynet_task((void *)(uintptr_t)leaves);
    return (struct outcome){tasks, sum, leaves * (leaves - 1) / 2};
}

/* ---- fib: fork-join; spawn fib(n-1), compute fib(n-2) inline, await the child ------------ */

static uint64_t fib(uint64_t n);

static void *fib_task(void *arg)
{
    return (void *)(uintptr_t)fib((uintptr_t)arg);
}

static uint64_t fib(uint64_t n)
{
    if (n < 2) return n;
    weft_future *child = spawn_or_die(fib_task, (void *)(uintptr_t)(n - 1));
    uint64_t b = fib(n - 2);
    uint64_t a = (uintptr_t)await_or_die(child);
    weft_future_release(child);
    return a + b;
}

static struct outcome bench_fib(const struct sizes *sz)
{
    uint64_t a = 0, b = 1; /* spawns = calls with n >= 2 = fib(n + 1) - 1 */
    for (uint64_t i = 0; i < sz->fib_n + 1; i++) {
        uint64_t t = a + b;
        a = b;
        b = t;
    }
    return (struct outcome){a - 1, fib(sz->fib_n), b - a};
}

/* ---- driver ---------------------------------------------------------------------------- */

static const struct bench benches[] = {
    {"spawn_many", bench_spawn_many}, {"yield_many", bench_yield_many},
    {"ping_pong", bench_ping_pong},   {"chained_spawn", bench_chained_spawn},
    {"skynet", bench_skynet},         {"fib", bench_fib},
};

static const struct sizes *sizes_for(size_t div)
{
    static struct sizes sizes;
    uint64_t leaves = 1000000;
    for (size_t d = div; d >= 10 && leaves > 10; d /= 10) leaves /= 10;
    sizes = (struct sizes){
        .spawn_many = 1000000 / div,
        .yield_tasks = 1000,
        .yield_count = 10000 / div,
        .pp_pairs = 1000,
        .pp_trips = 5000 / div,
        .chained = 4000000 / div,
        .skynet_leaves = leaves,
        .fib_n = div > 1 ? 25 : 30,
    };
    return &sizes;
}

int main(int argc, char **argv)
{
    bench_prog = "bench_core";
    return bench_main(argc, argv, benches, sizeof benches / sizeof benches[0], 1000000, sizes_for);
}
