/*
 * test_runtime: a runtime's life through the public API.
 *
 * Shows: weft_config_default reads WEFT_WORKERS; weft_run returns main's result or error
 * and cancels what main left behind; weft_rt_new + weft_rt_submit from the main thread and
 * foreign threads, shutdown (idempotent, from any thread), free, and refusals afterwards;
 * several runtimes at once, each task seeing its own runtime, awaiting across them;
 * 16 workers on a small machine running a task tree, an await chain and a future relay
 * with exact totals; shutdown while tasks sleep for 1000 s cancels them promptly, waits
 * for what they do after, and never starts the tasks they spawn; weft_stats counters
 * (tasks run, timers fired, queue depth, steals, parks); weft_dump_tasks names sleeping
 * tasks; weft_worker_id is -1 off workers; shutdown and free from inside the runtime are
 * refused without harm.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "testutil.h"
#include "weft.h"

/* ---- helpers ------------------------------------------------------------------------ */

typedef struct where {
    weft_rt *rt;
    unsigned workers;
    int worker;
    int in_task;
} where;

static void *where_am_i(void *arg)
{
    where *w = arg;
    w->rt = weft_rt_current();
    w->workers = weft_workers();
    w->worker = weft_worker_id();
    w->in_task = weft_current() != NULL;
    return w;
}

/* ---- configuration ------------------------------------------------------------------ */

static void test_config(void)
{
    const char *saved = getenv("WEFT_WORKERS");
    char *saved_copy = saved ? strdup(saved) : NULL;

    unsetenv("WEFT_WORKERS");
    weft_config cfg;
    memset(&cfg, 0xff, sizeof cfg);
    weft_config_default(&cfg);
    cmp_ok(cfg.workers, ==, 0, "without WEFT_WORKERS the default is 0 (one per core)");
    weft_config_default(NULL);
    pass("weft_config_default(NULL) does not crash");
    weft_rt *rt = weft_rt_new(&cfg);
    where w = {0};
    ok(rt && run_in(rt, where_am_i, &w, NULL) == 0, "a runtime with one worker per core");
    ok(w.workers >= 1 && w.rt == rt, "... has %u worker(s)", w.workers);
    weft_rt_free(rt);

    setenv("WEFT_WORKERS", "3", 1);
    weft_config_default(&cfg);
    cmp_ok(cfg.workers, ==, 3, "WEFT_WORKERS=3 -> cfg.workers 3");
    rt = weft_rt_new(&cfg);
    memset(&w, 0, sizeof w);
    ok(rt && run_in(rt, where_am_i, &w, NULL) == 0, "a runtime from that config");
    cmp_ok(w.workers, ==, 3, "... has 3 workers");
    ok(w.worker >= 0 && w.worker < 3, "... a task runs on worker %d", w.worker);
    weft_rt_free(rt);
    rt = weft_rt_new(NULL);
    memset(&w, 0, sizeof w);
    ok(rt && run_in(rt, where_am_i, &w, NULL) == 0, "weft_rt_new(NULL) with WEFT_WORKERS=3");
    cmp_ok(w.workers, ==, 3, "... has 3 workers");
    weft_rt_free(rt);

    setenv("WEFT_WORKERS", "5", 1);
    cfg = config_with(2);
    rt = weft_rt_new(&cfg);
    memset(&w, 0, sizeof w);
    ok(rt && run_in(rt, where_am_i, &w, NULL) == 0, "explicit cfg.workers 2, WEFT_WORKERS=5");
    cmp_ok(w.workers, ==, 2, "... the explicit value wins");
    weft_rt_free(rt);

    if (saved_copy)
        setenv("WEFT_WORKERS", saved_copy, 1);
    else
        unsetenv("WEFT_WORKERS");
    free(saved_copy);
}

/* ---- weft_run ----------------------------------------------------------------------- */

static unsigned base_workers; /* from the environment, 4 if unset */

static void *main_returns(void *arg)
{
    where *w = arg;
    where_am_i(w);
    return arg;
}

static void *main_fails(void *arg)
{
    (void)arg;
    weft_yield();
    return weft_fail(-EIO);
}

static void *main_cancelled(void *arg)
{
    (void)arg;
    return weft_fail(-ECANCELED);
}

typedef struct leftover {
    atomic_int started, cancelled, other;
} leftover;

static void *leftover_child(void *arg)
{
    leftover *l = arg;
    atomic_fetch_add(&l->started, 1);
    int r = weft_sleep(1000);
    atomic_fetch_add(r == -ECANCELED ? &l->cancelled : &l->other, 1);
    return NULL;
}

enum { LEFTOVERS = 50 };

static void *main_leaves_children(void *arg)
{
    leftover *l = arg;
    for (int i = 0; i < LEFTOVERS; i++) {
        weft_future *c = weft_spawn(leftover_child, l);
        if (c) weft_future_release(c);
    }
    /* let them all start sleeping, then return without awaiting them */
    while (atomic_load(&l->started) < LEFTOVERS) weft_sleep(0.001);
    return (void *)(intptr_t)7;
}

static void test_weft_run(void)
{
    weft_config cfg = config_with(base_workers);
    where w = {0};
    void *res = NULL;
    cmp_ok(weft_run(main_returns, &w, &cfg, &res), ==, 0,
           "weft_run returns 0 for a main that returns");
    ok(res == &w, "... and hands back main's result");
    ok(w.rt != NULL && w.in_task, "main ran as a task in a runtime");
    cmp_ok(w.workers, ==, base_workers, "... with the configured %u workers", base_workers);
    ok(w.worker >= 0 && w.worker < (int)base_workers, "... on worker %d", w.worker);
    ok(weft_rt_current() == NULL, "outside weft_run there is no current runtime");

    cmp_ok(weft_run(main_fails, NULL, &cfg, NULL), ==, -EIO, "weft_fail(-EIO) in main -> -EIO");
    cmp_ok(weft_run(main_cancelled, NULL, &cfg, NULL), ==, -ECANCELED,
           "weft_fail(-ECANCELED) in main -> -ECANCELED");
    cmp_ok(weft_run(NULL, NULL, &cfg, NULL), ==, -EINVAL, "weft_run(NULL main) -> -EINVAL");
    cmp_ok(weft_run(main_fails, NULL, NULL, NULL), ==, -EIO, "weft_run with a NULL config");

    leftover l = {0};
    res = NULL;
    double t0 = mono();
    int r = weft_run(main_leaves_children, &l, &cfg, &res);
    double el = mono() - t0;
    cmp_ok(r, ==, 0, "main returned with %d children sleeping 1000 s", LEFTOVERS);
    cmp_ok((intptr_t)res, ==, 7, "... its result came back");
    ok(el < 10, "weft_run returned promptly (%.2f s)", el);
    cmp_ok(atomic_load(&l.cancelled), ==, LEFTOVERS, "every leftover sleep returned -ECANCELED");
    cmp_ok(atomic_load(&l.other), ==, 0, "none returned anything else");
}

/* ---- weft_rt_new / submit / shutdown / free ----------------------------------------- */

static void *twice(void *arg)
{
    weft_yield();
    return (void *)((intptr_t)arg * 2);
}

static void *twice_sleepy(void *arg)
{
    weft_sleep(0);
    if ((intptr_t)arg % 7 == 0) weft_sleep(0.001);
    return twice(arg);
}

enum { SUBMIT_THREADS = 4, SUBMIT_PER_THREAD = 500 };

typedef struct submitter {
    weft_rt *rt;
    int base;
    int wrong, failed;
} submitter;

static void *submit_thread(void *arg)
{
    submitter *s = arg;
    weft_future *fs[SUBMIT_PER_THREAD];
    for (int i = 0; i < SUBMIT_PER_THREAD; i++)
        fs[i] = weft_rt_submit(s->rt, twice_sleepy, (void *)(intptr_t)(s->base + i));
    for (int i = 0; i < SUBMIT_PER_THREAD; i++) {
        void *res = NULL;
        if (!fs[i]) {
            s->failed++;
            continue;
        }
        if (weft_await(fs[i], &res) != 0 || (intptr_t)res != 2 * (s->base + i)) s->wrong++;
        weft_future_release(fs[i]);
    }
    return NULL;
}

static void *shutdown_thread(void *arg)
{
    weft_rt *rt = arg;
    intptr_t r = weft_rt_shutdown(rt, 10);
    weft_rt_free(rt);
    return (void *)r;
}

static void never_cb(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void *never_body(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    return NULL;
}

static void test_rt_lifecycle(void)
{
    weft_config cfg = config_with(base_workers);
    weft_rt *rt = weft_rt_new(&cfg);
    ok(rt != NULL, "weft_rt_new");
    if (!rt) return;

    errno = 0;
    weft_future *none = weft_rt_submit(rt, NULL, NULL);
    ok(none == NULL && errno == EINVAL, "submit(NULL fn) -> NULL + EINVAL");
    errno = 0;
    none = weft_rt_submit(NULL, twice, NULL);
    ok(none == NULL && errno == EINVAL, "submit(NULL rt) -> NULL + EINVAL");
    weft_spawn_opts bad = {.name = NULL, .stack_size = 0, .worker = (int)base_workers, .pinned = 0};
    errno = 0;
    ok(weft_rt_submit_ex(rt, twice, NULL, &bad) == NULL && errno == EINVAL,
       "submit to worker %u of %u -> NULL + EINVAL", base_workers, base_workers);
    errno = 0;
    none = weft_spawn(twice, NULL);
    ok(none == NULL && errno == EPERM, "weft_spawn on the main thread -> NULL + EPERM");

    enum { MAIN_N = 1000 };
    weft_future **fs = calloc(MAIN_N, sizeof *fs);
    int wrong = 0, failed = 0;
    for (int i = 0; i < MAIN_N; i++) {
        fs[i] = weft_rt_submit(rt, twice, (void *)(intptr_t)i);
        failed += fs[i] == NULL;
    }
    for (int i = 0; i < MAIN_N; i++) {
        void *res = NULL;
        if (!fs[i]) continue;
        if (weft_await(fs[i], &res) != 0 || (intptr_t)res != 2 * i) wrong++;
        weft_future_release(fs[i]);
    }
    free(fs);
    cmp_ok(failed, ==, 0, "the main thread submitted %d tasks", MAIN_N);
    cmp_ok(wrong, ==, 0, "... each returned its own result");

    pthread_t th[SUBMIT_THREADS];
    submitter subs[SUBMIT_THREADS];
    for (int t = 0; t < SUBMIT_THREADS; t++) {
        subs[t] = (submitter){rt, 100000 * (t + 1), 0, 0};
        pthread_create(&th[t], NULL, submit_thread, &subs[t]);
    }
    failed = wrong = 0;
    for (int t = 0; t < SUBMIT_THREADS; t++) {
        pthread_join(th[t], NULL);
        failed += subs[t].failed;
        wrong += subs[t].wrong;
    }
    cmp_ok(failed, ==, 0, "%d foreign threads submitted %d tasks each", SUBMIT_THREADS,
           SUBMIT_PER_THREAD);
    cmp_ok(wrong, ==, 0, "... and each awaited its own results");

    cmp_ok(weft_rt_shutdown(rt, 10), ==, 0, "shutdown of an idle runtime -> 0");
    cmp_ok(weft_rt_shutdown(rt, 10), ==, 0, "a second shutdown -> 0");
    atomic_int never = 0;
    errno = 0;
    weft_future *late = weft_rt_submit(rt, never_body, &never);
    ok(late == NULL && errno != 0, "submit after shutdown -> NULL (errno %d)", errno);
    if (late) weft_future_release(late);
    int soon = weft_call_soon_threadsafe(rt, never_cb, &never);
    ok(soon < 0, "call_soon_threadsafe after shutdown is refused (%d)", soon);
    weft_rt_free(rt);
    nap(0.01);
    cmp_ok(atomic_load(&never), ==, 0, "nothing refused ever ran");
    weft_rt_free(NULL);
    pass("weft_rt_free(NULL) does not crash");
    cmp_ok(weft_rt_shutdown(NULL, 1), ==, -EINVAL, "weft_rt_shutdown(NULL) -> -EINVAL");

    /* created on this thread, used from another, shut down and freed from a third */
    rt = weft_rt_new(&cfg);
    submitter s = {rt, 7, 0, 0};
    pthread_create(&th[0], NULL, submit_thread, &s);
    pthread_join(th[0], NULL);
    ok(s.failed == 0 && s.wrong == 0, "a runtime used from a foreign thread");
    void *sr = (void *)1;
    pthread_create(&th[0], NULL, shutdown_thread, rt);
    pthread_join(th[0], &sr);
    cmp_ok((intptr_t)sr, ==, 0, "... shut down and freed from another thread");
}

/* ---- several runtimes --------------------------------------------------------------- */

typedef struct cross {
    weft_rt *a, *b;
    unsigned na, nb;
    atomic_int mismatches;
    weft_future *from_a; /* made in A, completed by a task of A, awaited in B */
    int b_awaited;
    void *b_result;
    int a_awaited_b;
    void *a_result;
} cross;

static void *check_runtime(void *arg)
{
    where *w = arg;
    for (int i = 0; i < 5; i++) {
        where_am_i(w);
        weft_sleep(0.0005);
    }
    return w;
}

static void *in_b_awaits_a(void *arg)
{
    cross *c = arg;
    if (weft_rt_current() != c->b) atomic_fetch_add(&c->mismatches, 1);
    c->b_awaited = weft_await(c->from_a, &c->b_result);
    if (weft_rt_current() != c->b) atomic_fetch_add(&c->mismatches, 1);
    return NULL;
}

static void *in_a_completes(void *arg)
{
    cross *c = arg;
    weft_sleep(0.01);
    weft_future_set_result(c->from_a, c);
    return NULL;
}

static void *in_b_answer(void *arg)
{
    cross *c = arg;
    if (weft_rt_current() != c->b) atomic_fetch_add(&c->mismatches, 1);
    weft_sleep(0.005);
    return (void *)(intptr_t)weft_workers();
}

static void *in_a_submits_to_b(void *arg)
{
    cross *c = arg;
    weft_future *t = weft_rt_submit(c->b, in_b_answer, c);
    c->a_awaited_b = t ? weft_await(t, &c->a_result) : -errno;
    if (weft_rt_current() != c->a) atomic_fetch_add(&c->mismatches, 1);
    if (t) weft_future_release(t);
    return NULL;
}

typedef struct perm_probe {
    weft_future *pending;
    atomic_int done;
    int rc;
} perm_probe;

static void await_on_worker(void *arg)
{
    perm_probe *p = arg;
    p->rc = weft_await(p->pending, NULL);
    atomic_store(&p->done, 1);
}

static void test_several_runtimes(void)
{
    cross c;
    memset(&c, 0, sizeof c);
    c.na = 2;
    c.nb = 3;
    weft_config ca = config_with(c.na), cb = config_with(c.nb);
    c.a = weft_rt_new(&ca);
    c.b = weft_rt_new(&cb);
    ok(c.a && c.b && c.a != c.b, "two runtimes alive at once");
    if (!c.a || !c.b) return;

    enum { PER_RT = 20 };
    where wa[PER_RT], wb[PER_RT];
    weft_future *fa[PER_RT], *fb[PER_RT];
    for (int i = 0; i < PER_RT; i++) {
        memset(&wa[i], 0, sizeof wa[i]);
        memset(&wb[i], 0, sizeof wb[i]);
        fa[i] = weft_rt_submit(c.a, check_runtime, &wa[i]);
        fb[i] = weft_rt_submit(c.b, check_runtime, &wb[i]);
    }
    int bad_a = 0, bad_b = 0;
    for (int i = 0; i < PER_RT; i++) {
        weft_await(fa[i], NULL);
        weft_await(fb[i], NULL);
        weft_future_release(fa[i]);
        weft_future_release(fb[i]);
        bad_a += wa[i].rt != c.a || wa[i].workers != c.na || wa[i].worker < 0 ||
                 wa[i].worker >= (int)c.na;
        bad_b += wb[i].rt != c.b || wb[i].workers != c.nb || wb[i].worker < 0 ||
                 wb[i].worker >= (int)c.nb;
    }
    cmp_ok(bad_a, ==, 0, "tasks of runtime A see A and its %u workers", c.na);
    cmp_ok(bad_b, ==, 0, "tasks of runtime B see B and its %u workers", c.nb);

    c.b_awaited = c.a_awaited_b = 1;
    run_in(c.a, make_future, NULL, (void **)&c.from_a);
    weft_future *tb = weft_rt_submit(c.b, in_b_awaits_a, &c);
    weft_future *ta = weft_rt_submit(c.a, in_a_completes, &c);
    weft_future *tx = weft_rt_submit(c.a, in_a_submits_to_b, &c);
    weft_await(tb, NULL);
    weft_await(ta, NULL);
    weft_await(tx, NULL);
    weft_future_release(tb);
    weft_future_release(ta);
    weft_future_release(tx);
    ok(c.b_awaited == 0 && c.b_result == &c, "a task of B awaited a future completed in A");
    ok(c.a_awaited_b == 0 && (intptr_t)c.a_result == (intptr_t)c.nb,
       "a task of A submitted to B and awaited the result (B has %u workers)", c.nb);
    cmp_ok(atomic_load(&c.mismatches), ==, 0, "every task stayed in its own runtime");

    perm_probe p = {0};
    p.pending = weft_future_new();
    p.rc = 1;
    weft_call_soon_threadsafe(c.b, await_on_worker, &p);
    ok(wait_count(&p.done, 1, 10), "a callback on a worker of B awaited a pending future");
    cmp_ok(p.rc, ==, -EPERM, "... and got -EPERM");
    weft_future_release(p.pending);

    cmp_ok(weft_rt_shutdown(c.a, 10), ==, 0, "shut A down while B lives");
    where wl = {0};
    ok(run_in(c.b, where_am_i, &wl, NULL) == 0 && wl.rt == c.b, "B still runs tasks");
    weft_rt_free(c.a);
    cmp_ok(weft_rt_shutdown(c.b, 10), ==, 0, "shut B down");
    weft_rt_free(c.b);
    weft_future_release(c.from_a);
}

/* ---- 16 workers on a small machine -------------------------------------------------- */

enum { TREE_DEPTH = 10, CHAIN_N = 300, RELAY_N = 1000, BIG_WORKERS = 16 };

static atomic_int tree_nodes, sleeps_done;

static void *tree_node(void *arg)
{
    intptr_t depth = (intptr_t)arg;
    atomic_fetch_add(&tree_nodes, 1);
    if (depth == 0) {
        weft_yield();
        if (atomic_load(&tree_nodes) % 5 == 0 && weft_sleep(0.0005) == 0)
            atomic_fetch_add(&sleeps_done, 1);
        return (void *)1;
    }
    weft_future *l = weft_spawn(tree_node, (void *)(depth - 1));
    weft_future *r = weft_spawn(tree_node, (void *)(depth - 1));
    weft_yield();
    void *a = NULL, *b = NULL;
    int e1 = l ? weft_await(l, &a) : -ENOMEM, e2 = r ? weft_await(r, &b) : -ENOMEM;
    if (l) weft_future_release(l);
    if (r) weft_future_release(r);
    if (e1 || e2) return weft_fail(e1 ? e1 : e2);
    return (void *)((intptr_t)a + (intptr_t)b + 1);
}

typedef struct chain {
    weft_future *go;
    weft_future *links[CHAIN_N];
} chain;

typedef struct chain_arg {
    chain *c;
    int i;
} chain_arg;

static void *chain_link(void *arg)
{
    chain_arg *ca = arg;
    if (weft_await(ca->c->go, NULL)) return weft_fail(-EPIPE);
    if (ca->i == 0) return (void *)1;
    void *prev = NULL;
    int r = weft_await(ca->c->links[ca->i - 1], &prev);
    if (r) return weft_fail(r);
    if (ca->i % 10 == 0 && weft_sleep(0.001) == 0) atomic_fetch_add(&sleeps_done, 1);
    return (void *)((intptr_t)prev + 1);
}

typedef struct relay {
    weft_future *f[RELAY_N + 1];
    atomic_int hops;
} relay;

typedef struct relay_arg {
    relay *r;
    int i;
} relay_arg;

static void *relay_hop(void *arg)
{
    relay_arg *ra = arg;
    void *v = NULL;
    int e = weft_await(ra->r->f[ra->i], &v);
    if (e) {
        weft_future_set_error(ra->r->f[ra->i + 1], e);
        return NULL;
    }
    atomic_fetch_add(&ra->r->hops, 1);
    weft_yield();
    weft_future_set_result(ra->r->f[ra->i + 1], (void *)((intptr_t)v + 1));
    return NULL;
}

static void *big_main(void *arg)
{
    int *total_tasks = arg;
    void *res = NULL;
    /* a binary tree of tasks that spawn, yield, sleep and await */
    weft_future *root = weft_spawn(tree_node, (void *)(intptr_t)TREE_DEPTH);
    int r = root ? weft_await(root, &res) : -ENOMEM;
    if (root) weft_future_release(root);
    cmp_ok(r, ==, 0, "task tree of depth %d finished", TREE_DEPTH);
    cmp_ok((intptr_t)res, ==, (1 << (TREE_DEPTH + 1)) - 1, "... its sum counts every node");
    cmp_ok(atomic_load(&tree_nodes), ==, (1 << (TREE_DEPTH + 1)) - 1, "... every node ran once");
    *total_tasks += (1 << (TREE_DEPTH + 1)) - 1 + 1;

    /* a chain: task i awaits task i-1 */
    chain *c = calloc(1, sizeof *c);
    chain_arg *cargs = calloc(CHAIN_N, sizeof *cargs);
    c->go = weft_future_new();
    int spawned = 0;
    for (int i = 0; i < CHAIN_N; i++) {
        cargs[i] = (chain_arg){c, i};
        weft_spawn_opts o = {
            .name = NULL, .stack_size = 0, .worker = i % BIG_WORKERS, .pinned = i % 3 == 0};
        c->links[i] = weft_spawn_ex(chain_link, &cargs[i], &o);
        spawned += c->links[i] != NULL;
    }
    cmp_ok(spawned, ==, CHAIN_N, "spawned a chain of %d tasks over %d workers", CHAIN_N,
           BIG_WORKERS);
    weft_sleep(0.005);
    weft_future_set_result(c->go, NULL);
    res = NULL;
    r = weft_await(c->links[CHAIN_N - 1], &res);
    cmp_ok(r, ==, 0, "the last link finished");
    cmp_ok((intptr_t)res, ==, CHAIN_N, "... after every link added one");
    for (int i = 0; i < CHAIN_N; i++)
        if (c->links[i]) {
            weft_await(c->links[i], NULL);
            weft_future_release(c->links[i]);
        }
    weft_future_release(c->go);
    free(cargs);
    free(c);
    *total_tasks += CHAIN_N;

    /* a relay of plain futures across every worker */
    relay *rl = calloc(1, sizeof *rl);
    relay_arg *rargs = calloc(RELAY_N, sizeof *rargs);
    weft_future **hops = calloc(RELAY_N, sizeof *hops);
    for (int i = 0; i <= RELAY_N; i++) rl->f[i] = weft_future_new();
    for (int i = RELAY_N - 1; i >= 0; i--) {
        rargs[i] = (relay_arg){rl, i};
        weft_spawn_opts o = {.name = NULL, .stack_size = 0, .worker = i % BIG_WORKERS, .pinned = 0};
        hops[i] = weft_spawn_ex(relay_hop, &rargs[i], &o);
    }
    weft_future_set_result(rl->f[0], (void *)0);
    res = NULL;
    r = weft_await(rl->f[RELAY_N], &res);
    cmp_ok(r, ==, 0, "a relay of %d futures through tasks on %d workers completed", RELAY_N,
           BIG_WORKERS);
    cmp_ok((intptr_t)res, ==, RELAY_N, "... with one increment per hop");
    cmp_ok(atomic_load(&rl->hops), ==, RELAY_N, "... each hop ran once");
    for (int i = 0; i < RELAY_N; i++) {
        if (!hops[i]) continue;
        weft_await(hops[i], NULL);
        weft_future_release(hops[i]);
    }
    for (int i = 0; i <= RELAY_N; i++) weft_future_release(rl->f[i]);
    free(hops);
    free(rargs);
    free(rl);
    *total_tasks += RELAY_N;
    return NULL;
}

static void test_sixteen_workers(void)
{
    weft_config cfg = config_with(BIG_WORKERS);
    weft_rt *rt = weft_rt_new(&cfg);
    ok(rt != NULL, "a runtime with %d workers on %ld CPUs", BIG_WORKERS,
       sysconf(_SC_NPROCESSORS_ONLN));
    if (!rt) return;
    int total = 0;
    double t0 = mono();
    ok(run_in(rt, big_main, &total, NULL) == 0, "the workload's main task finished");
    double el = mono() - t0;
    ok(el < 30, "in %.2f s", el);

    weft_worker_stats st[BIG_WORKERS + 4];
    memset(st, 0, sizeof st);
    cmp_ok(weft_stats(rt, st, BIG_WORKERS + 4), ==, BIG_WORKERS, "weft_stats fills %d workers",
           BIG_WORKERS);
    uint64_t run = 0, fired = 0, busy = 0;
    for (int i = 0; i < BIG_WORKERS; i++) {
        run += st[i].tasks_run;
        fired += st[i].timers_fired;
        busy += st[i].tasks_run > 0;
    }
    note("tasks_run %llu over %llu workers, timers_fired %llu, sleeps %d", (unsigned long long)run,
         (unsigned long long)busy, (unsigned long long)fired, atomic_load(&sleeps_done));
    cmp_ok(run, >=, total, "tasks_run sums to at least the %d tasks run", total);
    cmp_ok(fired, >=, atomic_load(&sleeps_done),
           "timers_fired sums to at least the sleeps that ended on their deadline");
    weft_worker_stats two[2];
    cmp_ok(weft_stats(rt, two, 2), ==, 2, "weft_stats with room for 2 fills 2");
    cmp_ok(weft_stats(NULL, two, 2), ==, -EINVAL, "weft_stats(NULL) -> -EINVAL");
    cmp_ok(weft_rt_shutdown(rt, 10), ==, 0, "shutdown");
    weft_rt_free(rt);
}

/* ---- weft_stats: queue depth, steals, parks ----------------------------------------- */

enum { STAT_TASKS = 200 };

static int stat_home;             /* the worker the burst is spawned on */
static atomic_int stat_elsewhere; /* a task of the burst ran on another worker */

/* With several workers, a task of the burst holds its worker (up to 10 s) until another
 * worker has run one: so the burst can end only through a theft, however the machine
 * schedules the threads. */
static void *stat_spin(void *arg)
{
    if (weft_worker_id() != stat_home) atomic_store(&stat_elsewhere, 1);
    double deadline = mono() + 10;
    while (weft_workers() > 1 && !atomic_load(&stat_elsewhere) && mono() < deadline) {
    }
    return arg;
}

/* Spawn STAT_TASKS without yielding (all but the newest wait in this worker's deque), await
 * them, then sleep, so this worker parks with nothing else to do. */
static void *stat_main(void *arg)
{
    weft_future *t[STAT_TASKS];
    stat_home = weft_worker_id();
    atomic_store(&stat_elsewhere, 0);
    for (int i = 0; i < STAT_TASKS; i++) t[i] = weft_spawn(stat_spin, arg);
    for (int i = 0; i < STAT_TASKS; i++) {
        weft_await(t[i], NULL);
        weft_future_release(t[i]);
    }
    weft_sleep(0.05);
    return NULL;
}

static void test_stats(void)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        weft_config cfg = config_with(workers);
        weft_rt *rt = weft_rt_new(&cfg);
        if (!rt) BAIL_OUT("weft_rt_new: %s", strerror(errno));
        ok(run_in(rt, stat_main, NULL, NULL) == 0,
           "%u worker(s): %d tasks spawned at once ran", workers, STAT_TASKS);
        weft_worker_stats st[2];
        memset(st, 0, sizeof st);
        weft_stats(rt, st, 2);
        uint64_t depth = 0, steals = 0, stolen = 0, parks = 0;
        for (unsigned i = 0; i < workers; i++) {
            depth = st[i].max_queue_depth > depth ? st[i].max_queue_depth : depth;
            steals += st[i].steals;
            stolen += st[i].stolen_from;
            parks += st[i].parks;
        }
        cmp_ok(parks, >=, 1, "%u worker(s): the sleep parked a worker", workers);
        cmp_ok(steals, ==, stolen, "%u worker(s): tasks stolen (%llu) == tasks stolen from",
               workers, (unsigned long long)steals);
        if (workers == 1) {
            cmp_ok(depth, >=, STAT_TASKS - 1, "1 worker: max_queue_depth saw the burst");
            cmp_ok(steals, ==, 0, "1 worker: nothing to steal from");
        } else {
            cmp_ok(steals, >, 0, "2 workers: the idle one stole part of the burst");
        }
        cmp_ok(weft_rt_shutdown(rt, 10), ==, 0, "%u worker(s): shutdown", workers);
        weft_rt_free(rt);
    }
}

/* ---- shutdown while tasks sleep ----------------------------------------------------- */

enum { SLEEPING = 200, FAILING = 50 };

typedef struct sleepy {
    atomic_int arrived, cancelled, other, second_ok, child_ran, child_spawned;
    weft_future *children[SLEEPING + FAILING];
    atomic_int nchildren;
} sleepy;

static sleepy sl;

static void *sleepy_child(void *arg)
{
    (void)arg;
    atomic_fetch_add(&sl.child_ran, 1);
    return NULL;
}

/* Sleeps 1000 s; once cancelled, spawns a child, sleeps 50 ms more and returns normally. */
static void *sleepy_task(void *arg)
{
    int fail = arg != NULL;
    atomic_fetch_add(&sl.arrived, 1);
    int r = weft_sleep(1000);
    atomic_fetch_add(r == -ECANCELED ? &sl.cancelled : &sl.other, 1);
    weft_future *child = weft_spawn(sleepy_child, NULL);
    if (child) {
        atomic_fetch_add(&sl.child_spawned, 1);
        sl.children[atomic_fetch_add(&sl.nchildren, 1)] = child;
    }
    if (fail) return weft_fail(-ECANCELED);
    if (weft_sleep(0.05) == 0) atomic_fetch_add(&sl.second_ok, 1);
    return (void *)1;
}

static void test_shutdown_sleeping(void)
{
    weft_config cfg = config_with(base_workers);
    weft_rt *rt = weft_rt_new(&cfg);
    weft_future *fs[SLEEPING + FAILING];
    for (int i = 0; i < SLEEPING + FAILING; i++)
        fs[i] = weft_rt_submit(rt, sleepy_task, i < SLEEPING ? NULL : (void *)1);
    ok(wait_count(&sl.arrived, SLEEPING + FAILING, 20), "%d tasks went to sleep for 1000 s",
       SLEEPING + FAILING);
    nap(0.02);
    double t0 = mono();
    int r = weft_rt_shutdown(rt, 20);
    double el = mono() - t0;
    cmp_ok(r, ==, 0, "shutdown returned 0");
    ok(el < 5, "... promptly (%.3f s)", el);
    ok(el >= 0.05 - 1e-6, "... but only after the cancelled tasks finished their 50 ms");
    cmp_ok(atomic_load(&sl.cancelled), ==, SLEEPING + FAILING, "every sleep returned -ECANCELED");
    cmp_ok(atomic_load(&sl.other), ==, 0, "no sleep returned anything else");
    cmp_ok(atomic_load(&sl.second_ok), ==, SLEEPING,
           "a second sleep after the cancellation slept normally (cancelled once)");
    cmp_ok(atomic_load(&sl.child_ran), ==, 0, "no task spawned during shutdown ran its body");
    int children_cancelled = 0, n = atomic_load(&sl.nchildren);
    for (int i = 0; i < n; i++) {
        children_cancelled += weft_cancelled(sl.children[i]);
        weft_future_release(sl.children[i]);
    }
    cmp_ok(children_cancelled, ==, n, "the %d spawned children are done and cancelled", n);
    int normal = 0, cancelled = 0;
    for (int i = 0; i < SLEEPING + FAILING; i++) {
        if (!fs[i]) continue;
        if (i < SLEEPING)
            normal += weft_done(fs[i]) && !weft_cancelled(fs[i]) &&
                      weft_future_result(fs[i]) == (void *)1;
        else
            cancelled += weft_cancelled(fs[i]) && weft_future_error(fs[i]) == -ECANCELED;
        weft_future_release(fs[i]);
    }
    cmp_ok(normal, ==, SLEEPING,
           "tasks that returned normally after the cancellation are not "
           "cancelled and keep their result");
    cmp_ok(cancelled, ==, FAILING, "tasks that returned weft_fail(-ECANCELED) are cancelled");
    weft_rt_free(rt);

    /* weft_rt_free without a shutdown first */
    leftover l = {0};
    rt = weft_rt_new(&cfg);
    for (int i = 0; i < 20; i++) {
        weft_future *f = weft_rt_submit(rt, leftover_child, &l);
        if (f) weft_future_release(f);
    }
    ok(wait_count(&l.started, 20, 20), "20 tasks sleep 1000 s");
    nap(0.01);
    t0 = mono();
    weft_rt_free(rt);
    el = mono() - t0;
    ok(el < 5, "weft_rt_free without a shutdown returned promptly (%.3f s)", el);
    cmp_ok(atomic_load(&l.cancelled), ==, 20, "... after cancelling every sleeper");
}

/* Tasks queued behind a busy worker when shutdown begins never start; tasks that only
 * yield with weft_sleep(0) see the cancellation there. */
typedef struct queued {
    atomic_int spinning, body_ran, yielders_in, yielders_out;
    double spin_for;
} queued;

static void *queued_spinner(void *arg)
{
    queued *q = arg;
    atomic_store(&q->spinning, 1);
    double end = weft_now() + q->spin_for;
    while (weft_now() < end) {
    }
    return NULL;
}

static void *queued_body(void *arg)
{
    atomic_fetch_add(&((queued *)arg)->body_ran, 1);
    return NULL;
}

static void *yielder(void *arg)
{
    queued *q = arg;
    atomic_fetch_add(&q->yielders_in, 1);
    long n = 0;
    while (weft_sleep(0) == 0) n++;
    atomic_fetch_add(&q->yielders_out, 1);
    return (void *)n;
}

enum { QUEUED = 500, YIELDERS = 8 };

static void test_shutdown_unstarted(void)
{
    queued q;
    memset(&q, 0, sizeof q);
    q.spin_for = 0.2;
    weft_config one = config_with(1);
    weft_rt *rt = weft_rt_new(&one);
    weft_future *spin = weft_rt_submit(rt, queued_spinner, &q);
    ok(wait_count(&q.spinning, 1, 10), "the only worker is busy for 200 ms");
    weft_future *fs[QUEUED];
    for (int i = 0; i < QUEUED; i++) fs[i] = weft_rt_submit(rt, queued_body, &q);
    cmp_ok(weft_rt_shutdown(rt, 20), ==, 0, "shutdown with %d tasks queued behind it", QUEUED);
    cmp_ok(atomic_load(&q.body_ran), ==, 0, "none of the queued tasks ran its body");
    int cancelled = 0;
    for (int i = 0; i < QUEUED; i++) {
        if (!fs[i]) continue;
        cancelled += weft_cancelled(fs[i]);
        weft_future_release(fs[i]);
    }
    cmp_ok(cancelled, ==, QUEUED, "... they are all cancelled");
    ok(weft_done(spin) && !weft_cancelled(spin), "the busy task finished normally");
    weft_future_release(spin);
    weft_rt_free(rt);

    weft_config cfg = config_with(base_workers);
    rt = weft_rt_new(&cfg);
    weft_future *ys[YIELDERS];
    for (int i = 0; i < YIELDERS; i++) ys[i] = weft_rt_submit(rt, yielder, &q);
    ok(wait_count(&q.yielders_in, YIELDERS, 10), "%d tasks loop on weft_sleep(0)", YIELDERS);
    double t0 = mono();
    cmp_ok(weft_rt_shutdown(rt, 20), ==, 0, "shutdown");
    ok(mono() - t0 < 5, "... returned promptly");
    cmp_ok(atomic_load(&q.yielders_out), ==, YIELDERS, "every sleep(0) loop saw the cancellation");
    for (int i = 0; i < YIELDERS; i++) weft_future_release(ys[i]);
    weft_rt_free(rt);
}

/* ---- weft_dump_tasks ---------------------------------------------------------------- */

enum { DUMP_SLEEPERS = 3 };

typedef struct dump_state {
    atomic_int arrived;
    weft_future *handles[DUMP_SLEEPERS + 1];
    weft_future *pending;
} dump_state;

static void *dump_sleeper(void *arg)
{
    dump_state *d = arg;
    atomic_fetch_add(&d->arrived, 1);
    weft_sleep(1000);
    return NULL;
}

static void *dump_awaiter(void *arg)
{
    dump_state *d = arg;
    atomic_fetch_add(&d->arrived, 1);
    weft_await(d->pending, NULL);
    return NULL;
}

static void *dump_spawner(void *arg)
{
    dump_state *d = arg;
    char name[32];
    for (int i = 0; i < DUMP_SLEEPERS; i++) {
        snprintf(name, sizeof name, "dump-sleeper-%d", i);
        weft_spawn_opts o = {.name = name, .stack_size = 0, .worker = -1, .pinned = 0};
        d->handles[i] = weft_spawn_ex(dump_sleeper, d, &o);
        memset(name, 'X', sizeof name - 1); /* the runtime must have copied the name */
    }
    weft_spawn_opts o = {.name = "dump-awaiter", .stack_size = 0, .worker = -1, .pinned = 0};
    d->handles[DUMP_SLEEPERS] = weft_spawn_ex(dump_awaiter, d, &o);
    return NULL;
}

static char *dump_to_string(weft_rt *rt, int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *rc = weft_dump_tasks(rt, f);
    fclose(f);
    return buf;
}

static const char *line_of(const char *dump, const char *name, char *line, size_t size)
{
    const char *p = strstr(dump, name);
    if (!p) return NULL;
    const char *start = p, *end = p;
    while (start > dump && start[-1] != '\n') start--;
    while (*end && *end != '\n') end++;
    size_t n = (size_t)(end - start) < size - 1 ? (size_t)(end - start) : size - 1;
    memcpy(line, start, n);
    line[n] = 0;
    return line;
}

static void test_dump_tasks(void)
{
    weft_config cfg = config_with(base_workers);
    weft_rt *rt = weft_rt_new(&cfg);
    dump_state d;
    memset(&d, 0, sizeof d);
    d.pending = weft_future_new();
    run_in(rt, dump_spawner, &d, NULL);
    ok(wait_count(&d.arrived, DUMP_SLEEPERS + 1, 10), "%d named tasks started", DUMP_SLEEPERS + 1);
    char *dump = NULL;
    int rc = 0, all = 0;
    double end = mono() + 10;
    while (!all && mono() < end) { /* they show up once they have suspended */
        free(dump);
        dump = dump_to_string(rt, &rc);
        all = 1;
        for (int i = 0; i < DUMP_SLEEPERS; i++) {
            char name[32];
            snprintf(name, sizeof name, "dump-sleeper-%d", i);
            all &= strstr(dump, name) != NULL;
        }
        all &= strstr(dump, "dump-awaiter") != NULL;
        if (!all) nap(0.002);
    }
    ok(all, "weft_dump_tasks lists every named task");
    cmp_ok(rc, >=, DUMP_SLEEPERS + 1, "... and returns how many it listed (%d)", rc);
    int with_sleep = 0;
    for (int i = 0; i < DUMP_SLEEPERS; i++) {
        char name[32], line[256];
        snprintf(name, sizeof name, "dump-sleeper-%d", i);
        with_sleep += line_of(dump, name, line, sizeof line) && strstr(line, "sleep");
    }
    cmp_ok(with_sleep, ==, DUMP_SLEEPERS, "each sleeper's line says it waits on a sleep");
    char line[256];
    ok(line_of(dump, "dump-awaiter", line, sizeof line) && !strstr(line, "sleep"),
       "the awaiter's line does not say sleep");
    if (!all || with_sleep != DUMP_SLEEPERS) diag("dump:\n%s", dump ? dump : "(none)");
    free(dump);
    ok(weft_task_name(d.handles[0]) && !strcmp(weft_task_name(d.handles[0]), "dump-sleeper-0"),
       "weft_task_name gives the name copied at spawn");
    ok(weft_task_name(d.pending) == NULL, "a plain future has no name");
    cmp_ok(weft_dump_tasks(NULL, stdout), ==, -EINVAL, "weft_dump_tasks(NULL, f) -> -EINVAL");
    cmp_ok(weft_dump_tasks(rt, NULL), ==, -EINVAL, "weft_dump_tasks(rt, NULL) -> -EINVAL");

    cmp_ok(weft_rt_shutdown(rt, 10), ==, 0, "shutdown cancels them");
    int cancelled_sleepers = 0;
    for (int i = 0; i <= DUMP_SLEEPERS; i++) {
        cancelled_sleepers += weft_done(d.handles[i]);
        weft_future_release(d.handles[i]);
    }
    cmp_ok(cancelled_sleepers, ==, DUMP_SLEEPERS + 1, "... and they are all done");
    rc = -1;
    char *after = dump_to_string(rt, &rc);
    cmp_ok(rc, ==, 0, "after shutdown the dump is empty");
    free(after);
    weft_rt_free(rt);
    weft_future_release(d.pending);
}

/* ---- worker ids, and shutdown / free from inside ----------------------------------------- */

static void *foreign_worker_id(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)weft_worker_id();
}

typedef struct inside {
    int shutdown_rc;
    int after_ok;
    atomic_int cb_done;
    int cb_shutdown_rc;
    int cb_worker;
} inside;

static void *inside_child(void *arg)
{
    weft_sleep(0.001);
    return arg;
}

static void *inside_task(void *arg)
{
    inside *in = arg;
    in->shutdown_rc = weft_rt_shutdown(weft_rt_current(), 1);
    weft_rt_free(weft_rt_current());
    weft_future *c = weft_spawn(inside_child, in);
    void *res = NULL;
    in->after_ok = c && weft_await(c, &res) == 0 && res == in;
    if (c) weft_future_release(c);
    return (void *)42;
}

static void inside_cb(void *arg)
{
    inside *in = arg;
    in->cb_worker = weft_worker_id();
    in->cb_shutdown_rc = weft_rt_shutdown(weft_rt_current(), 1);
    weft_rt_free(weft_rt_current());
    atomic_store(&in->cb_done, 1);
}

static void test_inside(void)
{
    cmp_ok(weft_worker_id(), ==, -1, "weft_worker_id on the main thread is -1");
    pthread_t th;
    void *id = NULL;
    pthread_create(&th, NULL, foreign_worker_id, NULL);
    pthread_join(th, &id);
    cmp_ok((intptr_t)id, ==, -1, "... and on a foreign thread");

    weft_config cfg = config_with(base_workers);
    weft_rt *rt = weft_rt_new(&cfg);
    inside in;
    memset(&in, 0, sizeof in);
    in.shutdown_rc = 1;
    void *res = NULL;
    cmp_ok(run_in(rt, inside_task, &in, &res), ==, 0,
           "a task called shutdown and free on its own runtime and went on");
    ok(in.shutdown_rc < 0, "shutdown from inside is refused (%d)", in.shutdown_rc);
    ok(in.after_ok, "the runtime still spawns and runs tasks afterwards");
    cmp_ok((intptr_t)res, ==, 42, "the task returned its result");
    in.cb_shutdown_rc = 1;
    weft_call_soon_threadsafe(rt, inside_cb, &in);
    ok(wait_count(&in.cb_done, 1, 10), "a callback called shutdown and free on its runtime");
    ok(in.cb_worker >= 0 && in.cb_worker < (int)base_workers, "... on worker %d", in.cb_worker);
    ok(in.cb_shutdown_rc < 0, "... refused (%d)", in.cb_shutdown_rc);
    where w = {0};
    ok(run_in(rt, where_am_i, &w, NULL) == 0 && w.rt == rt, "the runtime still works");
    cmp_ok(weft_rt_shutdown(rt, 10), ==, 0, "a real shutdown from outside succeeds");
    weft_rt_free(rt);
}

int main(void)
{
    watchdog_arm("test_runtime", 240);
    base_workers = default_workers();
    note("%u workers unless a test says otherwise", base_workers);

    test_config();
    test_weft_run();
    test_rt_lifecycle();
    test_several_runtimes();
    test_sixteen_workers();
    test_stats();
    test_shutdown_sleeping();
    test_shutdown_unstarted();
    test_dump_tasks();
    test_inside();
    done_testing();
}
