/*
 * test_spawn: tasks as futures. Spawning from tasks, workers and foreign threads
 * (weft_rt_submit), results and errors (weft_fail), inline children, spawn options
 * (name, worker, pinned, stack size), 1M spawn/await, fork-join trees across workers,
 * yield fairness, and the calls that must refuse the wrong context.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"
#include "weft.h"

static void *identity(void *arg)
{
    return arg;
}

static void *fails_eio(void *arg)
{
    (void)arg;
    return weft_fail(-EIO);
}

static void *yields_then_returns(void *arg)
{
    for (int i = 0; i < 10; i++) weft_yield();
    return arg;
}

static void *check_basics(void *arg)
{
    (void)arg;
    weft_future *f = weft_spawn(identity, (void *)(intptr_t)7);
    ok(f != NULL, "weft_spawn inside a task");
    void *r = NULL;
    is(weft_strerror(weft_await(f, &r)), weft_strerror(0), "await returns 0");
    cmp_ok((intptr_t)r, "==", 7, "await gives the task's result");
    ok(weft_done(f) && !weft_cancelled(f), "a finished task is done, not cancelled");
    cmp_ok(weft_future_error(f), "==", 0, "weft_future_error of a successful task");
    cmp_ok((intptr_t)weft_future_result(f), "==", 7, "weft_future_result");
    weft_future_release(f);

    f = weft_spawn(fails_eio, NULL);
    r = (void *)1;
    cmp_ok(weft_await(f, &r), "==", -EIO, "weft_fail(-EIO) makes the task fail with -EIO");
    ok(weft_future_result(f) == NULL, "a failed task has no result");
    weft_future_release(f);

    f = weft_spawn(yields_then_returns, (void *)(intptr_t)9);
    cmp_ok(weft_await(f, &r), "==", 0, "await a task that yields");
    cmp_ok((intptr_t)r, "==", 9, "its result");
    cmp_ok(weft_await(f, &r), "==", 0, "awaiting a done task again");
    weft_future_release(f);

    ok(weft_current() != NULL, "weft_current inside a task");
    cmp_ok(weft_worker_id(), ">=", 0, "weft_worker_id on a worker");
    ok(weft_rt_current() != NULL, "weft_rt_current inside a task");
    cmp_ok(weft_spawn(NULL, NULL) == NULL && errno == EINVAL, "==", 1, "NULL body: EINVAL");
    cmp_ok(weft_await(NULL, NULL), "==", -EINVAL, "await NULL: -EINVAL");
    return NULL;
}

/* ---- options ------------------------------------------------------------------------- */

static void *report_worker(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)weft_worker_id();
}

static void *pinned_body(void *arg)
{
    int home = (int)(intptr_t)arg, moved = 0;
    for (int i = 0; i < 200; i++) {
        if (weft_worker_id() != home) moved++;
        if (i % 3) weft_yield();
        else weft_sleep(0.0001);
    }
    return (void *)(intptr_t)moved;
}

static void *deep_stack(void *arg)
{
    size_t n = (size_t)arg;
    volatile char buf[1 << 16];
    memset((char *)buf, 1, sizeof buf);
    return n ? deep_stack((void *)(n - 1)) : (void *)(uintptr_t)buf[100];
}

__attribute__((noinline)) static void *needs_64k(void *arg)
{
    volatile char buf[1 << 16];
    memset((char *)buf, 1, sizeof buf);
    return (void *)(uintptr_t)(buf[100] + (arg != NULL));
}

static atomic_int small_started;

/* Runs on its own 16 KiB stack (its awaiter waits until it has started, so it is not run
 * inline on a bigger one) and awaits a child of the default size that needs 64 KiB: the
 * child must get a stack of its own size, not run inline on this small one. */
static void *small_parent(void *arg)
{
    (void)arg;
    atomic_store(&small_started, 1);
    weft_future *child = weft_spawn(needs_64k, NULL);
    void *r = NULL;
    int err = child ? weft_await(child, &r) : -ENOMEM;
    weft_future_release(child);
    return err ? NULL : r;
}

/* Uses 48 KiB of its stack, then returns its argument. */
__attribute__((noinline)) static void *needs_48k(void *arg)
{
    volatile char buf[48 << 10];
    memset((char *)buf, 1, sizeof buf);
    return buf[100] == 1 ? arg : NULL;
}

/* A burst of unstarted tasks of two stack sizes, spawned in turn: a task whose body ends
 * hands its stack to the next one only if that stack is at least the size the next one
 * asked for (a 64 KiB task on a 16 KiB stack would overflow). Pinned here (so never run
 * inline by an awaiter), the whole burst runs on this worker, back to back, once this task
 * awaits the last one: no earlier completion wakes anybody in between. */
static void *check_stack_handover(void *arg)
{
    (void)arg;
    enum { N = 64 };
    weft_future *f[N];
    for (int i = 0; i < N; i++) {
        weft_spawn_opts o = {.worker = weft_worker_id(), .pinned = 1,
                             .stack_size = i % 2 ? 16u << 10 : 64u << 10};
        f[i] = weft_spawn_ex(i % 2 ? identity : needs_48k, (void *)(intptr_t)(i + 1), &o);
    }
    int all = 1;
    for (int i = N - 1; i >= 0; i--) {
        void *r = NULL;
        if (!f[i] || weft_await(f[i], &r) || (intptr_t)r != i + 1) all = 0;
        weft_future_release(f[i]);
    }
    ok(all, "a burst of 16 KiB and 64 KiB tasks in turn: each ran on a stack of its size");
    return NULL;
}

static void *check_options(void *arg)
{
    (void)arg;
    unsigned n = weft_workers();
    int on_target = 1;
    for (unsigned k = 0; k < n; k++) {
        weft_spawn_opts o = {.name = "placed", .worker = (int)k, .pinned = 0};
        weft_future *f = weft_spawn_ex(report_worker, NULL, &o);
        void *r;
        if (!f || weft_await(f, &r) || (intptr_t)r != (intptr_t)k) on_target = 0;
        if (f) is(weft_task_name(f), "placed", "the name is kept");
        weft_future_release(f);
    }
    ok(on_target, "spawn_ex(worker=k) starts the task on worker k");

    weft_future *pinned[8];
    for (int i = 0; i < 8; i++) {
        int home = i % (int)n;
        weft_spawn_opts o = {.name = "pinned", .worker = home, .pinned = 1};
        pinned[i] = weft_spawn_ex(pinned_body, (void *)(intptr_t)home, &o);
    }
    intptr_t moved = 0;
    for (int i = 0; i < 8; i++) {
        void *r;
        if (weft_await(pinned[i], &r) == 0) moved += (intptr_t)r;
        else moved += 1000;
        weft_future_release(pinned[i]);
    }
    cmp_ok(moved, "==", 0, "pinned tasks never leave their worker across yields and sleeps");

    weft_spawn_opts big = {.name = "big-stack", .stack_size = 4u << 20, .worker = -1};
    weft_future *f = weft_spawn_ex(deep_stack, (void *)(uintptr_t)40, &big);
    void *r;
    cmp_ok(weft_await(f, &r), "==", 0, "a 4 MiB stack holds 40 frames of 64 KiB");
    cmp_ok((intptr_t)r, "==", 1, "and computes the right thing");
    weft_future_release(f);

    weft_spawn_opts small = {.name = "small-stack", .stack_size = 16u << 10, .worker = -1};
    f = weft_spawn_ex(small_parent, NULL, &small);
    while (f && !atomic_load(&small_started)) weft_yield();
    cmp_ok(weft_await(f, &r), "==", 0, "a task on a 16 KiB stack awaits a default-size child");
    cmp_ok((intptr_t)r, "==", 1, "which ran on a stack of its own size, not inline on 16 KiB");
    weft_future_release(f);

    weft_spawn_opts bad = {.worker = (int)n};
    errno = 0;
    ok(weft_spawn_ex(identity, NULL, &bad) == NULL && errno == EINVAL,
       "spawn_ex on a worker that does not exist: EINVAL");
    return NULL;
}

/* ---- scale --------------------------------------------------------------------------- */

static atomic_long bumps;

static void *bump(void *arg)
{
    atomic_fetch_add_explicit(&bumps, (long)(intptr_t)arg, memory_order_relaxed);
    return arg;
}

static void *million(void *arg)
{
    (void)arg;
    enum { BATCH = 1000 };
    const long N = scaled(1000000) / BATCH * BATCH + BATCH;
    long sum = 0, errors = 0;
    weft_future *fs[BATCH];
    for (long done = 0; done < N; done += BATCH) {
        for (int i = 0; i < BATCH; i++) fs[i] = weft_spawn(bump, (void *)(intptr_t)(i + 1));
        for (int i = 0; i < BATCH; i++) {
            void *r;
            if (!fs[i] || weft_await(fs[i], &r)) errors++;
            else sum += (intptr_t)r;
            weft_future_release(fs[i]);
        }
    }
    cmp_ok(errors, "==", 0, "%ld spawn/await: no errors", N);
    cmp_ok(sum, "==", N / BATCH * BATCH * (BATCH + 1) / 2, "spawn/await: every result");
    cmp_ok(atomic_load(&bumps), "==", sum, "spawn/await: every body ran exactly once");
    return NULL;
}

static void *fib(void *arg)
{
    intptr_t n = (intptr_t)arg;
    if (n < 2) return arg;
    weft_future *f = weft_spawn(fib, (void *)(n - 1));
    intptr_t b = (intptr_t)fib((void *)(n - 2));
    void *a = NULL;
    if (!f || weft_await(f, &a)) abort();
    weft_future_release(f);
    return (void *)((intptr_t)a + b);
}

static void *sleepy_tree(void *arg)
{
    intptr_t depth = (intptr_t)arg;
    if (depth == 0) {
        weft_sleep(0.0001 * (rand() % 3));
        return (void *)1;
    }
    weft_future *kids[4];
    for (int i = 0; i < 4; i++) kids[i] = weft_spawn(sleepy_tree, (void *)(depth - 1));
    intptr_t total = 0;
    for (int i = 3; i >= 0; i--) { /* reverse order: some children are never inline */
        void *r;
        if (!kids[i] || weft_await(kids[i], &r)) abort();
        total += (intptr_t)r;
        weft_future_release(kids[i]);
    }
    return (void *)total;
}

static void *check_trees(void *arg)
{
    (void)arg;
    void *r;
    weft_future *f = weft_spawn(fib, (void *)(intptr_t)22);
    cmp_ok(weft_await(f, &r), "==", 0, "fib(22) fork-join");
    cmp_ok((intptr_t)r, "==", 17711, "fib(22) = 17711");
    weft_future_release(f);
    f = weft_spawn(sleepy_tree, (void *)(intptr_t)6);
    cmp_ok(weft_await(f, &r), "==", 0, "a 4-ary tree of depth 6 whose leaves sleep");
    cmp_ok((intptr_t)r, "==", 4096, "every leaf counted once");
    weft_future_release(f);
    return NULL;
}

/* ---- fairness: yield lets every other ready task run ---------------------------------- */

static atomic_int turns;

static void *taker(void *arg)
{
    int *seen = arg;
    for (int i = 0; i < 100; i++) {
        seen[i] = atomic_fetch_add(&turns, 1);
        weft_yield();
    }
    return NULL;
}

static void *check_yield(void *arg)
{
    (void)arg;
    static int seen[2][100];
    weft_future *a = weft_spawn(taker, seen[0]), *b = weft_spawn(taker, seen[1]);
    weft_await(a, NULL);
    weft_await(b, NULL);
    weft_future_release(a);
    weft_future_release(b);
    int interleaved = 0;
    for (int i = 1; i < 100; i++)
        if (seen[0][i] - seen[0][i - 1] < 50) interleaved++;
    cmp_ok(interleaved, ">", 90, "two yielding tasks take turns instead of one starving the other");
    return NULL;
}

/* ---- a yielder can be stolen: a spawned child takes the LIFO slot, and the parent that
 * yields to it waits in the worker's queue, where a parked peer must come for it -------- */

static atomic_int parent_resumed;

static void *spin_until_parent(void *arg)
{
    (void)arg; /* never suspends: nap blocks the worker, so only a peer can run the parent */
    return (void *)(intptr_t)poll_until(atomic_load(&parent_resumed), 5.0, mono, nap,
                                        0.0005);
}

static void *check_yield_stolen(void *arg)
{
    (void)arg;
    weft_sleep(0.05); /* time for the other worker to find nothing to do and park */
    weft_future *child = weft_spawn(spin_until_parent, NULL);
    weft_yield(); /* the child starts here; we resume only on the other worker */
    atomic_store(&parent_resumed, 1);
    void *seen = NULL;
    weft_await(child, &seen);
    weft_future_release(child);
    ok(seen == (void *)1, "a yielding task is stolen by an idle peer while its child runs");
    return NULL;
}

/* ---- outside the runtime ---------------------------------------------------------------- */

struct submitter {
    weft_rt *rt;
    long sum;
};

static void *submit_from_thread(void *arg)
{
    struct submitter *s = arg;
    for (int i = 1; i <= 200; i++) {
        weft_future *f = weft_rt_submit(s->rt, yields_then_returns, (void *)(intptr_t)i);
        void *r;
        if (f && weft_await(f, &r) == 0) s->sum += (intptr_t)r;
        weft_future_release(f);
    }
    return NULL;
}

int main(void)
{
    weft_config cfg;
    weft_config_default(&cfg);
    if (!cfg.workers) cfg.workers = 4;

    cmp_ok(weft_run(check_basics, NULL, &cfg, NULL), "==", 0, "weft_run(check_basics)");
    cmp_ok(weft_run(check_options, NULL, &cfg, NULL), "==", 0, "weft_run(check_options)");
    cmp_ok(weft_run(check_stack_handover, NULL, &cfg, NULL), "==", 0,
           "weft_run(check_stack_handover)");
    cmp_ok(weft_run(million, NULL, &cfg, NULL), "==", 0, "weft_run(million)");
    cmp_ok(weft_run(check_trees, NULL, &cfg, NULL), "==", 0, "weft_run(check_trees)");
    weft_config one = cfg;
    one.workers = 1;
    cmp_ok(weft_run(check_yield, NULL, &one, NULL), "==", 0, "weft_run(check_yield) on 1 worker");
    weft_config two = cfg;
    two.workers = 2;
    cmp_ok(weft_run(check_yield_stolen, NULL, &two, NULL), "==", 0,
           "weft_run(check_yield_stolen) on 2 workers");

    errno = 0;
    ok(weft_spawn(identity, NULL) == NULL && errno == EPERM,
       "weft_spawn outside a runtime: NULL, EPERM");
    ok(weft_current() == NULL && weft_worker_id() == -1, "no current task or worker outside");

    weft_rt *rt = weft_rt_new(&cfg);
    ok(rt != NULL, "weft_rt_new");
    struct submitter subs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        subs[i] = (struct submitter){rt, 0};
        pthread_create(&th[i], NULL, submit_from_thread, &subs[i]);
    }
    long total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += subs[i].sum;
    }
    cmp_ok(total, "==", 4 * 200 * 201 / 2, "weft_rt_submit + await from 4 foreign threads");
    cmp_ok(weft_rt_shutdown(rt, 5.0), "==", 0, "shutdown");
    weft_rt_free(rt);
    errno = 0;
    ok(weft_rt_submit(NULL, identity, NULL) == NULL && errno == EINVAL, "submit to NULL: EINVAL");
    done_testing();
}
