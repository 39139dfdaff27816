/*
 * test_cancel: asyncio's cancellation rules on weft tasks. Cancelled before start (the
 * body never runs), during a sleep, while awaiting a future or a task (the cancellation
 * travels into the awaited future, as Task.cancel does), while running (delivered at the
 * next wait), swallowed or re-raised, counted by weft_cancelling and undone by
 * weft_uncancel; then cancellation races at random moments across workers and threads.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "testutil.h"
#include "weft.h"

static atomic_int body_ran;

static void *mark_ran(void *arg)
{
    atomic_store(&body_ran, 1);
    return arg;
}

static atomic_int started; /* bodies that reached their wait (or are about to) */

static void *sleep_then_report(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    int r = weft_sleep(30.0);
    return (void *)(intptr_t)r; /* returns normally: the cancellation is swallowed */
}

static void *sleep_then_reraise(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    int r = weft_sleep(30.0);
    return r ? weft_fail(r) : NULL;
}

static atomic_int second_sleep;

static void *swallow_twice(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    int a = weft_sleep(30.0);
    atomic_store(&second_sleep, 1);
    int b = weft_sleep(30.0);
    return (void *)(intptr_t)(a * 1000 + b);
}

static void *await_arg(void *arg)
{
    atomic_fetch_add(&started, 1);
    void *r = NULL;
    int e = weft_await(arg, &r);
    return e ? weft_fail(e) : r;
}

static void *busy_then_wait(void *arg)
{
    atomic_int *go = arg;
    while (!atomic_load(go)) { /* spin: a running task, not waiting */
    }
    int first = weft_sleep(0.001);  /* the pending cancellation is delivered here */
    int second = weft_sleep(0.001); /* and only once */
    return (void *)(intptr_t)(first * 1000 + second);
}

static void *busy_then_return(void *arg)
{
    atomic_int *go = arg;
    while (!atomic_load(go)) {
    }
    return (void *)1; /* never waited: asyncio cancels it as it returns */
}

static void *count_cancels(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    int seen[4];
    seen[0] = weft_cancelling();
    int r = weft_sleep(30.0);
    seen[1] = weft_cancelling();
    seen[2] = weft_uncancel();
    seen[3] = weft_sleep(0.001); /* uncancelled back to 0: later waits are not cancelled */
    return (void *)(intptr_t)(r == -ECANCELED && seen[0] == 0 && seen[1] == 1 && seen[2] == 0 &&
                              seen[3] == 0);
}

/* A chain of inline awaits: task 0 spawns and awaits task 1, which spawns and awaits task
 * 2...; each awaits a child that has not started, so each runs on task 0's stack. The last
 * either cancels task 0 itself, or sleeps, or yields (weft_sleep(0)) until somebody else
 * cancels task 0. Every level swallows what it got and returns it as its value. */
enum { CHAIN_MAX = 3 };
struct chain {
    int depth;
    int last_cancels; /* the last task cancels task 0 (else it sleeps, or yields) */
    int last_yields;
    weft_future *first;
    char *stack[CHAIN_MAX];      /* an address in each task's frame */
    int cancelling[CHAIN_MAX];   /* weft_cancelling() at the end of each */
    int wait_after[CHAIN_MAX];   /* a wait after the await: is a cancellation still pending? */
    int cancel_r;                /* the last task's weft_cancel(first) */
    atomic_int sleeping;
};
struct chain_link {
    struct chain *ch;
    int i;
};

static void *chain_task(void *arg)
{
    struct chain_link *l = arg;
    struct chain *ch = l->ch;
    char here;
    ch->stack[l->i] = &here;
    if (l->i == 0) ch->first = weft_current();
    intptr_t out;
    if (l->i + 1 < ch->depth) {
        struct chain_link next = {ch, l->i + 1};
        weft_future *c = weft_spawn(chain_task, &next);
        void *r = NULL;
        int e = c ? weft_await(c, &r) : -errno;
        weft_future_release(c);
        out = e ? e : (intptr_t)r;
        ch->wait_after[l->i] = weft_sleep(0.0005);
    } else if (ch->last_cancels) {
        ch->cancel_r = weft_cancel(ch->first);
        out = 7; /* returns with the cancellation pending: cancelled (asyncio) */
    } else if (ch->last_yields) { /* until the cancellation reaches it, or 5 s */
        atomic_store(&ch->sleeping, 1);
        double end = weft_now() + 5.0;
        int r;
        while ((r = weft_sleep(0)) == 0 && weft_now() < end) {
        }
        out = r;
    } else {
        atomic_store(&ch->sleeping, 1);
        out = weft_sleep(30.0);
    }
    ch->cancelling[l->i] = weft_cancelling();
    return (void *)out;
}

/* Run a chain of `depth`; with !last_cancels, cancel task 0 once the last task sleeps.
 * Checks that every task ran on task 0's stack and that each level counted one request. */
static intptr_t run_chain(struct chain *ch, const char *what)
{
    struct chain_link first = {ch, 0};
    weft_future *f = weft_spawn(chain_task, &first);
    if (!ch->last_cancels) {
        while (!atomic_load(&ch->sleeping)) weft_sleep(0.0005);
        weft_sleep(0.002); /* parked, most likely */
        weft_cancel(f);
    }
    void *r = NULL;
    cmp_ok(weft_await(f, &r), "==", 0, "%s: task 0 returns normally", what);
    weft_future_release(f);
    int inline_all = 1, once = 1;
    for (int i = 0; i < ch->depth; i++) {
        intptr_t d = ch->stack[i] - ch->stack[0];
        if (d < -65536 || d > 65536) inline_all = 0;
        if (ch->cancelling[i] != 1) once = 0;
        if (i + 1 < ch->depth && ch->wait_after[i] != 0) once = 0;
    }
    ok(inline_all, "%s: every child ran inline, on task 0's stack", what);
    ok(once, "%s: each level counted one request, and none is left pending", what);
    return (intptr_t)r;
}

/* Until `n` more bodies reached their wait; then a little longer, so most are parked. */
static void wait_until_suspended_n(int n)
{
    static int expected;
    expected += n;
    while (atomic_load(&started) < expected) weft_sleep(0.0005);
    weft_sleep(0.002);
}

static void wait_until_suspended(void)
{
    wait_until_suspended_n(1);
}

/* Until the task named `name` is parked in a wait on `what` (its line in weft_dump_tasks).
 * An await publishes what it awaits before it parks, so a cancellation of the awaiter now
 * goes into the awaited future; one that landed before the await began would not (the
 * awaiter's own wait would take it), however long the awaiter took to get there. */
static void wait_until_parked(const char *name, const char *what)
{
    char want[96];
    snprintf(want, sizeof want, "'%s' suspended waiting on %s\n", name, what);
    for (;;) {
        char *dump = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&dump, &len);
        if (!out) BAIL_OUT("open_memstream");
        weft_dump_tasks(weft_rt_current(), out);
        fclose(out);
        int found = strstr(dump, want) != NULL;
        free(dump);
        if (found) return;
        weft_sleep(0.0005);
    }
}

static void *scenarios(void *arg)
{
    (void)arg;
    void *r;

    /* this body is pinned to worker 0; "elsewhere" is worker 1, where busy tasks spin */
    weft_spawn_opts here = {.worker = 0, .pinned = 1}, elsewhere = {.worker = 1, .pinned = 1};
    weft_spawn_opts awaiter = {.name = "awaiter", .worker = -1};

    /* 1. before start: pinned to our own worker, it cannot start while we run */
    weft_future *f = weft_spawn_ex(mark_ran, NULL, &here);
    cmp_ok(weft_cancel(f), "==", 1, "cancel before start: requested");
    cmp_ok(weft_await(f, &r), "==", -ECANCELED, "cancel before start: await gives -ECANCELED");
    ok(weft_cancelled(f), "cancel before start: the task is cancelled");
    weft_sleep(0.01);
    ok(!atomic_load(&body_ran), "cancel before start: the body never ran");
    cmp_ok(weft_cancel(f), "==", 0, "cancel of a done task returns 0");
    weft_future_release(f);

    /* 2. during a sleep, swallowed: the task is not cancelled */
    f = weft_spawn(sleep_then_report, NULL);
    wait_until_suspended();
    cmp_ok(weft_cancel(f), "==", 1, "cancel during sleep: requested");
    cmp_ok(weft_await(f, &r), "==", 0, "a task that swallows the cancellation ends normally");
    cmp_ok((intptr_t)r, "==", -ECANCELED, "its sleep returned -ECANCELED");
    ok(!weft_cancelled(f), "and it is not cancelled");
    weft_future_release(f);

    /* 3. during a sleep, re-raised with weft_fail(-ECANCELED): cancelled */
    f = weft_spawn(sleep_then_reraise, NULL);
    wait_until_suspended();
    weft_cancel(f);
    cmp_ok(weft_await(f, &r), "==", -ECANCELED, "weft_fail(-ECANCELED): await -ECANCELED");
    ok(weft_cancelled(f), "weft_fail(-ECANCELED) makes a cancelled task");
    weft_future_release(f);

    /* 4. while awaiting a plain future: the future is cancelled too (Task.cancel) */
    weft_future *plain = weft_future_new();
    f = weft_spawn_ex(await_arg, plain, &awaiter);
    wait_until_suspended();
    wait_until_parked("awaiter", "future");
    weft_cancel(f);
    cmp_ok(weft_await(f, &r), "==", -ECANCELED, "cancel while awaiting a future: -ECANCELED");
    ok(weft_cancelled(plain), "the awaited future was cancelled with it");
    weft_future_release(f);
    weft_future_release(plain);

    /* 5. while awaiting a task that swallows: the awaiter gets its result, as in asyncio */
    weft_future *inner = weft_spawn_ex(sleep_then_report, NULL, &elsewhere);
    f = weft_spawn_ex(await_arg, inner, &awaiter);
    wait_until_suspended();
    wait_until_parked("awaiter", "task");
    weft_cancel(f);
    cmp_ok(weft_await(f, &r), "==", 0, "cancel travels into the awaited task, which swallows");
    cmp_ok((intptr_t)r, "==", -ECANCELED, "so the awaiter returns the inner result");
    weft_future_release(f);
    weft_future_release(inner);

    /* 6. while awaiting a task that re-raises: both cancelled */
    inner = weft_spawn_ex(sleep_then_reraise, NULL, &elsewhere);
    f = weft_spawn_ex(await_arg, inner, &awaiter);
    wait_until_suspended_n(2);
    wait_until_parked("awaiter", "task");
    weft_cancel(f);
    cmp_ok(weft_await(f, &r), "==", -ECANCELED, "awaiter of a re-raising task: -ECANCELED");
    ok(weft_cancelled(inner), "the inner task is cancelled");
    weft_future_release(f);
    weft_future_release(inner);

    /* 7. a running task: its next wait returns -ECANCELED, once */
    atomic_int go = 0;
    f = weft_spawn_ex(busy_then_wait, &go, &elsewhere);
    weft_sleep(0.005);
    weft_cancel(f);
    atomic_store(&go, 1);
    cmp_ok(weft_await(f, &r), "==", 0, "a running task keeps running after cancel");
    cmp_ok((intptr_t)r, "==", -ECANCELED * 1000, "its next wait returns -ECANCELED, the one after 0");
    weft_future_release(f);

    /* 8. a running task that returns without waiting: cancelled as it returns */
    atomic_store(&go, 0);
    f = weft_spawn_ex(busy_then_return, &go, &elsewhere);
    weft_sleep(0.005);
    weft_cancel(f);
    atomic_store(&go, 1);
    cmp_ok(weft_await(f, &r), "==", -ECANCELED, "returning with a pending cancellation: cancelled");
    weft_future_release(f);

    /* 9. cancelling() and uncancel() */
    f = weft_spawn(count_cancels, NULL);
    wait_until_suspended();
    weft_cancel(f);
    cmp_ok(weft_await(f, &r), "==", 0, "cancelling/uncancel task");
    ok((intptr_t)r, "cancelling counts requests; uncancel to 0 clears the pending cancellation");
    weft_future_release(f);
    ok(weft_cancelling() == 0 && weft_uncancel() == 0, "an uncancelled task reports 0");

    /* 10. several awaiters of one cancelled task */
    inner = weft_spawn_ex(sleep_then_reraise, NULL, &elsewhere);
    weft_future *awaiters[6];
    for (int i = 0; i < 6; i++) awaiters[i] = weft_spawn(await_arg, inner);
    wait_until_suspended_n(7);
    weft_cancel(inner);
    int all = 1;
    for (int i = 0; i < 6; i++) {
        if (weft_await(awaiters[i], &r) != -ECANCELED) all = 0;
        weft_future_release(awaiters[i]);
    }
    ok(all, "every awaiter of a cancelled task sees -ECANCELED");
    weft_future_release(inner);
    cmp_ok(weft_cancel(NULL), "==", -EINVAL, "cancel(NULL): -EINVAL");

    /* 11. every cancellation of the awaiter is forwarded to the awaited task */
    inner = weft_spawn_ex(swallow_twice, NULL, &elsewhere);
    f = weft_spawn_ex(await_arg, inner, &awaiter);
    wait_until_suspended_n(2);
    wait_until_parked("awaiter", "task");
    weft_cancel(f);
    while (!atomic_load(&second_sleep)) weft_sleep(0.0005);
    weft_sleep(0.002);
    weft_cancel(f);
    cmp_ok(weft_await(f, &r), "==", 0, "the awaiter returns the inner task's result");
    cmp_ok((intptr_t)r, "==", -ECANCELED * 1000 - ECANCELED,
           "both cancellations of the awaiter reached the awaited task");
    weft_future_release(f);
    weft_future_release(inner);
    cmp_ok(weft_sleep(0.0 / 0.0), "==", -EINVAL, "sleep(NaN): -EINVAL");

    /* 12. an inline child cancels the awaiter it runs for: the cancellation goes into the
     * child, as Task.cancel goes into the awaited task; it returns with it pending, so it
     * ends cancelled, and its awaiter gets -ECANCELED from the await, once */
    for (int depth = 2; depth <= 3; depth++) {
        struct chain ch = {.depth = depth, .last_cancels = 1};
        char what[64];
        snprintf(what, sizeof what, "inline depth %d, the last cancels task 0", depth);
        cmp_ok(run_chain(&ch, what), "==", -ECANCELED, "%s: the cancellation went down the chain",
               what);
        cmp_ok(ch.cancel_r, "==", 1, "%s: weft_cancel returned 1", what);
    }

    /* 13. an inline child sleeps; cancelling task 0 reaches it through every await */
    for (int depth = 2; depth <= 3; depth++) {
        struct chain ch = {.depth = depth};
        char what[64];
        snprintf(what, sizeof what, "inline depth %d, task 0 cancelled", depth);
        cmp_ok(run_chain(&ch, what), "==", -ECANCELED, "%s: the sleep was cancelled", what);
    }

    /* 14. the same with an inline child that yields: a yield switches out too, so it
     * publishes the awaits below it first */
    for (int depth = 2; depth <= 3; depth++) {
        struct chain ch = {.depth = depth, .last_yields = 1};
        char what[64];
        snprintf(what, sizeof what, "inline depth %d, yielding, task 0 cancelled", depth);
        cmp_ok(run_chain(&ch, what), "==", -ECANCELED, "%s: the yield loop was cancelled", what);
    }
    return NULL;
}

/* ---- races: cancellation at random moments ---------------------------------------------- */

enum { RACERS = 2000 };
static atomic_long sleeps_ok, sleeps_cancelled, sleeps_other;

static void *racer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < 3; i++) {
        int r = weft_sleep((rand_r(&seed) % 200) * 1e-6);
        if (r == 0) atomic_fetch_add(&sleeps_ok, 1);
        else if (r == -ECANCELED) atomic_fetch_add(&sleeps_cancelled, 1);
        else atomic_fetch_add(&sleeps_other, 1);
        if (rand_r(&seed) % 2) weft_yield();
    }
    return (void *)1;
}

static weft_future *targets[RACERS];

static void *canceller(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < RACERS / 2; i++) {
        weft_cancel(targets[rand_r(&seed) % RACERS]);
        if (i % 16 == 0) weft_sleep(1e-5);
    }
    return NULL;
}

static void *foreign_canceller(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < RACERS / 4; i++) weft_cancel(targets[rand_r(&seed) % RACERS]);
    return NULL;
}

static void *races(void *arg)
{
    (void)arg;
    for (int i = 0; i < RACERS; i++) targets[i] = weft_spawn(racer, (void *)(uintptr_t)(i + 1));
    pthread_t th;
    pthread_create(&th, NULL, foreign_canceller, (void *)7);
    weft_future *c1 = weft_spawn(canceller, (void *)3), *c2 = weft_spawn(canceller, (void *)5);
    long cancelled = 0, completed = 0, bad = 0;
    for (int i = 0; i < RACERS; i++) {
        void *r;
        int e = weft_await(targets[i], &r);
        if (e == -ECANCELED && weft_cancelled(targets[i])) cancelled++;
        else if (e == 0 && r == (void *)1) completed++;
        else bad++;
    }
    weft_await(c1, NULL);
    weft_await(c2, NULL);
    pthread_join(th, NULL);
    weft_future_release(c1);
    weft_future_release(c2);
    for (int i = 0; i < RACERS; i++) weft_future_release(targets[i]);
    cmp_ok(bad, "==", 0, "every racer ended cancelled or completed");
    cmp_ok(cancelled + completed, "==", RACERS, "and none was lost");
    cmp_ok(atomic_load(&sleeps_other), "==", 0, "every sleep returned 0 or -ECANCELED");
    note("%ld cancelled before start or at a wait, %ld swallowed or finished; sleeps %ld ok, %ld "
         "cancelled", cancelled, completed, atomic_load(&sleeps_ok), atomic_load(&sleeps_cancelled));
    return NULL;
}

static void *pinned_scenarios(void *arg)
{
    weft_spawn_opts on_zero = {.name = "scenarios", .worker = 0, .pinned = 1};
    weft_future *f = weft_spawn_ex(scenarios, arg, &on_zero);
    int r = weft_await(f, NULL);
    weft_future_release(f);
    return r ? weft_fail(r) : NULL;
}

int main(void)
{
    weft_config cfg;
    weft_config_default(&cfg);
    if (cfg.workers < 2) cfg.workers = 4;
    cmp_ok(weft_run(pinned_scenarios, NULL, &cfg, NULL), "==", 0, "scenarios");
    for (int round = 0; round < 3; round++)
        cmp_ok(weft_run(races, NULL, &cfg, NULL), "==", 0, "races, round %d", round);
    weft_config one = cfg;
    one.workers = 1;
    cmp_ok(weft_run(races, NULL, &one, NULL), "==", 0, "races on one worker");
    done_testing();
}
