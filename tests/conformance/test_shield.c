/*
 * test_shield: asyncio.shield's rules on weft_shield (asyncio-semantics.md §3.7, cases 77 and
 * 78), on one worker and on four: cancelling the awaiter of a shield (or the shield itself)
 * leaves the inner task running to completion; an inner cancellation, error or result is
 * mirrored; a done future is returned itself, with a reference of its own; wait_for over a
 * shield times out while the inner task completes later; gather over shields and a shielded
 * gathering task; a foreign thread; bad arguments.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "harness.h"
#include "tap.h"
#include "testutil.h"
#include "weft.h"

/* ---- helpers ----------------------------------------------------------------------------- */

/* A task awaiting `arg` (a shield), reporting what the await returned. */
static void *awaiter(void *arg)
{
    void *v = NULL;
    int e = weft_await(arg, &v);
    return (void *)(intptr_t)(e ? e : (intptr_t)v);
}

/* ---- scenarios --------------------------------------------------------------------------- */

/* 77: x already done: x itself, with an extra reference. */
static void shortcut(void)
{
    weft_future *x = weft_future_new();
    weft_future_set_result(x, (void *)1);
    weft_future *s = weft_shield(x);
    ok(s == x, "77 shield of a done future returns the future itself");
    weft_future_release(x);
    ok(weft_done(s) && weft_future_result(s) == (void *)1,
       "77 ... holding its own reference: valid after the caller's release");
    weft_future_release(s);
}

/* 77: cancelling the awaiter of shield(x): the awaiter gets -ECANCELED, x runs to the end. */
static void cancel_awaiter(void)
{
    weft_future *gate = weft_future_new();
    weft_future *x = spawn_on(gate_child, gate, 2);
    weft_future *s = weft_shield(x);
    ok(s && s != x, "77 shield of a pending task is a new future");
    weft_future *a = spawn_settled(awaiter, s, 1);
    weft_cancel(a);
    cmp_ok(outcome(a), "==", -ECANCELED, "77 the awaiter of the shield gets -ECANCELED");
    ok(weft_cancelled(s), "77 the shield is cancelled");
    ok(!weft_done(x) && !weft_cancelled(gate), "77 the inner task goes on");
    weft_future_set_result(gate, (void *)5);
    void *v = NULL;
    ok(weft_await(x, &v) == 0 && v == (void *)5, "77 and completes with its result");
    weft_future_release(s);
    weft_future_release(x);
    weft_future_release(gate);
}

/* 77: the shield mirrors the inner future: cancellation, error, result; cancelling the
 * shield itself leaves the inner future alone. */
static void mirror(void)
{
    weft_future *x = weft_future_new();
    weft_future *s = weft_shield(x);
    weft_cancel(x);
    ok(eventually(weft_done(s)) && weft_cancelled(s), "77 inner cancelled: the shield too");
    weft_future_release(s);
    weft_future_release(x);

    x = weft_future_new();
    s = weft_shield(x);
    weft_future_set_error(x, -EIO);
    cmp_ok(weft_await(s, NULL), "==", -EIO, "77 inner error: the shield's");
    weft_future_release(s);
    weft_future_release(x);

    x = weft_future_new();
    s = weft_shield(x);
    weft_future *a = spawn_on(awaiter, s, 1);
    weft_future_set_result(x, (void *)17);
    cmp_ok(outcome(a), "==", 17, "77 inner result: the shield's");
    weft_future_release(s);
    weft_future_release(x);

    x = weft_future_new();
    s = weft_shield(x);
    cmp_ok(weft_cancel(s), "==", 1, "cancelling the shield itself");
    ok(weft_cancelled(s) && !weft_done(x), "77 leaves the inner future pending");
    weft_future_set_result(x, (void *)1);
    weft_sleep(0.005);
    ok(weft_cancelled(s), "the shield stays cancelled when the inner one completes");
    weft_future_release(s);
    weft_future_release(x);
}

/* 77: wait_for(shield(t), small) times out; t completes later with its result. */
static void wait_for_shield(void)
{
    weft_future *gate = weft_future_new();
    weft_future *t = spawn_on(gate_child, gate, 2);
    weft_future *s = weft_shield(t);
    cmp_ok(weft_wait_for(s, 0.02, NULL), "==", -ETIMEDOUT,
           "77 wait_for(shield(t), 0.02) times out");
    ok(!weft_done(t), "77 t goes on");
    weft_future_set_result(gate, (void *)3);
    void *v = NULL;
    ok(weft_await(t, &v) == 0 && v == (void *)3, "77 and completes later with its result");
    weft_future_release(s);
    weft_future_release(t);
    weft_future_release(gate);
}

/* 78: gather over shields, the gatherer cancelled: the shields are cancelled, the inner
 * tasks are not, gather's outcome is -ECANCELED. */
typedef struct gathering {
    weft_future **fs;
    int ret;
} gathering;

static void *gatherer(void *arg)
{
    gathering *g = arg;
    void *res[2];
    g->ret = weft_gather(g->fs, 2, res, NULL);
    return g->ret ? NULL : (void *)((intptr_t)res[0] * 10 + (intptr_t)res[1]);
}

static void gather_shields(void)
{
    weft_future *gates[2], *c[2];
    spawn_gated(gate_child, gates, c, 2, 2);
    weft_future *s[2] = {weft_shield(c[0]), weft_shield(c[1])};
    gathering g = {s, 0};
    weft_future *t = spawn_settled(gatherer, &g, 1);
    weft_cancel(t);
    weft_await(t, NULL);
    cmp_ok(g.ret, "==", -ECANCELED, "78 gather(shield(c1), shield(c2)) cancelled: -ECANCELED");
    ok(weft_cancelled(s[0]) && weft_cancelled(s[1]), "78 the shields are cancelled");
    ok(!weft_done(c[0]) && !weft_done(c[1]), "78 c1 and c2 are not");
    weft_future_set_result(gates[0], (void *)1);
    weft_future_set_result(gates[1], (void *)2);
    ok(weft_await(c[0], NULL) == 0 && weft_await(c[1], NULL) == 0, "78 and complete");
    weft_future_release(t);
    for (int i = 0; i < 2; i++) {
        weft_future_release(s[i]);
        weft_future_release(c[i]);
        weft_future_release(gates[i]);
    }

    /* shield over a gathering task: cancelling the shield leaves the gather to finish */
    spawn_gated(gate_child, gates, c, 2, 2);
    g.fs = c;
    t = spawn_on(gatherer, &g, 1);
    weft_future *st = weft_shield(t);
    weft_cancel(st);
    weft_future_set_result(gates[0], (void *)1);
    weft_future_set_result(gates[1], (void *)2);
    void *v = NULL;
    ok(weft_await(t, &v) == 0 && v == (void *)12 && weft_cancelled(st),
       "78 shield(gather) cancelled: the gather still completes with [1, 2]");
    weft_future_release(st);
    weft_future_release(t);
    for (int i = 0; i < 2; i++) {
        weft_future_release(c[i]);
        weft_future_release(gates[i]);
    }
}

/* ---- a foreign thread, bad arguments ------------------------------------------------------ */

static weft_future *th_task;
static atomic_int th_finished;
static int th_ret;
static void *th_value;

static void *thread_shields(void *arg)
{
    (void)arg;
    weft_future *s = weft_shield(th_task);
    th_ret = s ? weft_await(s, &th_value) : -errno;
    weft_future_release(s);
    atomic_store(&th_finished, 1);
    return NULL;
}

static void foreign_thread(void)
{
    weft_future *gate = weft_future_new();
    th_task = spawn_on(gate_child, gate, 2);
    atomic_store(&th_finished, 0);
    pthread_t th;
    pthread_create(&th, NULL, thread_shields, NULL);
    weft_sleep(0.005);
    weft_future_set_result(gate, (void *)4);
    ok(eventually(atomic_load(&th_finished)), "a foreign thread shields a task and awaits it");
    ok(th_ret == 0 && th_value == (void *)4, "... and gets its result");
    pthread_join(th, NULL);
    weft_future_release(th_task);
    weft_future_release(gate);
}

static void bad_arguments(void)
{
    errno = 0;
    ok(weft_shield(NULL) == NULL && errno == EINVAL, "shield(NULL): NULL, EINVAL");
}

static void *scenarios(void *arg)
{
    (void)arg;
    shortcut();
    cancel_awaiter();
    mirror();
    wait_for_shield();
    gather_shields();
    foreign_thread();
    bad_arguments();
    return NULL;
}

int main(void)
{
    run_scenarios("test_shield", scenarios, NULL);
    done_testing();
}
