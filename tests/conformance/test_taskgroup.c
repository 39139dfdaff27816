/*
 * test_taskgroup: asyncio.TaskGroup's rules on weft_taskgroup_* (asyncio-semantics.md §3.11,
 * cases 86-93), on one worker and on four: join waits for every child, including children
 * spawned by children during the join; cancelling one child cancels only that child; the
 * first failure cancels the other children and the parent's wait, and join returns it once
 * every child finished, with the parent's count back where it was; an outside cancellation
 * (in the body or during join) cancels the children, join waits for them and returns
 * -ECANCELED; errors take priority and keep the outside request pending; nested groups;
 * spawn refused once the group is finished or aborting; misuse; free without join.
 *
 * Every group lives in a body task of its own, so the cancellations a group sends its parent
 * never reach the scenario task; a body reports what it saw in a struct.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "tap.h"
#include "testutil.h"
#include "weft.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static atomic_int finished;  /* children that finished (any way) */
static atomic_int cancelled; /* children whose wait was cancelled */
static atomic_int started;   /* children that reached their wait */

/* Sleeps (arg: ms, or 0 for "until cancelled"); on cancellation ends cancelled. */
static void *sleeper(void *arg)
{
    atomic_fetch_add(&started, 1);
    intptr_t ms = (intptr_t)arg;
    int r = weft_sleep(ms ? (double)ms / 1000 : 60);
    if (r == -ECANCELED) atomic_fetch_add(&cancelled, 1);
    atomic_fetch_add(&finished, 1);
    return r ? weft_fail(r) : (void *)1;
}

/* Waits for its gate; ends with the gate's outcome (gate_child, counted). */
static void *counted_gate_child(void *gate)
{
    atomic_fetch_add(&started, 1);
    void *r = gate_child(gate);
    atomic_fetch_add(&finished, 1);
    return r;
}

/* Sleeps until cancelled, then fails with -EIO instead (a cleanup that raises). */
static void *fail_on_cancel(void *arg)
{
    (void)arg;
    atomic_fetch_add(&started, 1);
    weft_sleep(60);
    atomic_fetch_add(&finished, 1);
    return weft_fail(-EIO);
}

static void counters_reset(void)
{
    atomic_store(&finished, 0);
    atomic_store(&cancelled, 0);
    atomic_store(&started, 0);
}

typedef struct report {
    weft_future *gate;
    int body_wait, join, join2, count_after, next_wait, finished_at_join;
    weft_future *late_spawn;
    int late_errno;
    atomic_int joining;
} report;

/* In a body: join g and record the join's result, the children finished by then, the
 * parent's cancellation count and (then_wait) what its next wait returns; free g. */
static void join_and_report(weft_taskgroup *g, report *rep, int then_wait)
{
    rep->join = weft_taskgroup_join(g);
    rep->finished_at_join = atomic_load(&finished);
    rep->count_after = weft_cancelling();
    if (then_wait) rep->next_wait = weft_sleep(0.001);
    weft_taskgroup_free(g);
}

/* Start body(rep) as a task pinned to worker 1, with rep and the counters fresh and (with_gate)
 * a new plain future in rep->gate. */
static weft_future *start_body(weft_fn body, report *rep, int with_gate)
{
    memset(rep, 0, sizeof *rep);
    rep->body_wait = rep->join = rep->join2 = rep->next_wait = 12345;
    counters_reset();
    if (with_gate) rep->gate = weft_future_new();
    return spawn_on(body, rep, 1);
}

/* Once worker 1 has settled, fail the gate with err (0: cancel the body f instead), and wait
 * for the body. */
static void finish_body(weft_future *f, report *rep, int err)
{
    settle(1);
    if (err)
        weft_future_set_error(rep->gate, err);
    else
        weft_cancel(f);
    weft_await(f, NULL);
    weft_future_release(f);
}

/* Run body(rep) to its end. */
static void run_body(weft_fn body, report *rep)
{
    outcome(start_body(body, rep, 0));
}

/* ---- 86: join waits for all; children spawning children; one child cancelled ------------- */

typedef struct spawner_arg {
    weft_taskgroup *g;
    atomic_int spawned;
} spawner_arg;

static void *spawner(void *arg)
{
    spawner_arg *s = arg;
    weft_sleep(0.01); /* by then the parent is joining */
    weft_future *f = weft_taskgroup_spawn(s->g, sleeper, (void *)(intptr_t)10);
    atomic_store(&s->spawned, f != NULL);
    atomic_fetch_add(&finished, 1);
    return NULL;
}

static void *body_waits_all(void *arg)
{
    report *rep = arg;
    weft_taskgroup *g = weft_taskgroup_new();
    spawner_arg s = {g, 0};
    weft_taskgroup_spawn(g, sleeper, (void *)(intptr_t)5);
    weft_taskgroup_spawn(g, sleeper, (void *)(intptr_t)15);
    weft_taskgroup_spawn(g, spawner, &s);
    rep->join = weft_taskgroup_join(g);
    rep->finished_at_join = atomic_load(&finished);
    rep->late_spawn = weft_taskgroup_spawn(g, sleeper, (void *)(intptr_t)1);
    rep->late_errno = errno;
    rep->count_after = weft_cancelling() * 10 + atomic_load(&s.spawned);
    weft_taskgroup_free(g);
    return NULL;
}

static void *body_cancel_one(void *arg)
{
    report *rep = arg;
    weft_taskgroup *g = weft_taskgroup_new();
    weft_future *gate = weft_future_new();
    weft_future *a = weft_taskgroup_spawn(g, sleeper, NULL);
    weft_future *b = weft_taskgroup_spawn(g, counted_gate_child, gate);
    weft_sleep(0.005);
    weft_cancel(a);
    weft_future_set_result(gate, (void *)7);
    rep->join = weft_taskgroup_join(g);
    void *v = NULL;
    rep->body_wait = weft_cancelled(a) * 10 + (weft_await(b, &v) == 0 && v == (void *)7);
    weft_taskgroup_free(g);
    weft_future_release(gate);
    return NULL;
}

static void waits_for_all(void)
{
    report rep;
    run_body(body_waits_all, &rep);
    cmp_ok(rep.join, "==", 0, "86 join returns 0 when every child succeeds");
    cmp_ok(rep.finished_at_join, "==", 4,
           "86 join returned after every child, one spawned by a child during the join");
    cmp_ok(rep.count_after % 10, "==", 1, "86 a child may spawn into the group while it joins");
    ok(rep.late_spawn == NULL && rep.late_errno == EPERM,
       "92 spawn after the join: NULL, EPERM (\"is finished\")");
    settle(1);
    cmp_ok(atomic_load(&started), "==", 3, "92 ... and its body never runs");

    run_body(body_cancel_one, &rep);
    ok(rep.join == 0 && rep.body_wait == 11,
       "86 cancelling one child cancels only that child; join returns 0");
}

/* ---- 87: a failing child cancels the others and the parent's wait ------------------------- */

static void *body_failure_in_body(void *arg)
{
    report *rep = arg;
    weft_taskgroup *g = weft_taskgroup_new();
    weft_taskgroup_spawn(g, sleeper, NULL);
    weft_taskgroup_spawn(g, sleeper, NULL);
    weft_taskgroup_spawn(g, counted_gate_child, rep->gate);
    rep->body_wait = weft_sleep(60); /* the group cancels this wait */
    rep->late_spawn = weft_taskgroup_spawn(g, sleeper, NULL);
    rep->late_errno = errno;
    join_and_report(g, rep, 1);
    return NULL;
}

static void *body_failure_in_join(void *arg)
{
    report *rep = arg;
    weft_taskgroup *g = weft_taskgroup_new();
    weft_taskgroup_spawn(g, sleeper, NULL);
    weft_taskgroup_spawn(g, counted_gate_child, rep->gate);
    weft_taskgroup_spawn(g, sleeper, NULL);
    atomic_store(&rep->joining, 1);
    join_and_report(g, rep, 1);
    return NULL;
}

static void child_failure(void)
{
    report rep;
    weft_future *f = start_body(body_failure_in_body, &rep, 1);
    ok(eventually(atomic_load(&started) == 3), "children started");
    finish_body(f, &rep, -EIO);
    cmp_ok(rep.body_wait, "==", -ECANCELED,
           "87 a child fails: the body's pending wait is cancelled");
    ok(rep.late_spawn == NULL && rep.late_errno == EPERM, "92 spawn while aborting: NULL, EPERM");
    cmp_ok(rep.join, "==", -EIO, "87 join returns the child's error");
    ok(rep.finished_at_join == 3 && atomic_load(&cancelled) == 2,
       "87 ... after every other child was cancelled and finished");
    cmp_ok(rep.count_after, "==", 0, "93 the parent's count is back to 0");
    cmp_ok(rep.next_wait, "==", 0, "93 and its next wait runs normally");
    weft_future_release(rep.gate);

    f = start_body(body_failure_in_join, &rep, 1);
    ok(eventually(atomic_load(&started) == 3 && atomic_load(&rep.joining)), "joining");
    finish_body(f, &rep, -EPIPE);
    ok(rep.join == -EPIPE && rep.finished_at_join == 3 && atomic_load(&cancelled) == 2,
       "87 a failure during the join: the others cancelled, the error returned after them");
    ok(rep.count_after == 0 && rep.next_wait == 0, "93 the parent is not left cancelled");
    weft_future_release(rep.gate);
}

/* ---- 88, 89: an outside cancellation of the parent --------------------------------------- */

static void *body_join(void *arg)
{
    report *rep = arg;
    weft_taskgroup *g = weft_taskgroup_new();
    weft_taskgroup_spawn(g, sleeper, NULL);
    weft_taskgroup_spawn(g, sleeper, NULL);
    weft_taskgroup_spawn(g, sleeper, (void *)(intptr_t)1);
    atomic_store(&rep->joining, 1);
    join_and_report(g, rep, 0);
    return NULL;
}

static void *body_cancelled_before_join(void *arg)
{
    report *rep = arg;
    weft_taskgroup *g = weft_taskgroup_new();
    weft_taskgroup_spawn(g, sleeper, NULL);
    weft_taskgroup_spawn(g, sleeper, NULL);
    atomic_store(&rep->joining, 1);
    rep->body_wait = weft_sleep(60); /* cancelled from outside */
    join_and_report(g, rep, 0);
    return NULL;
}

static void *body_error_and_cancel(void *arg)
{
    report *rep = arg;
    weft_taskgroup *g = weft_taskgroup_new();
    weft_taskgroup_spawn(g, sleeper, NULL);
    weft_taskgroup_spawn(g, fail_on_cancel, NULL);
    atomic_store(&rep->joining, 1);
    join_and_report(g, rep, 1);
    return NULL;
}

static void outside_cancel(weft_fn body, report *rep, int nstarted, int nfinished)
{
    weft_future *f = start_body(body, rep, 0);
    ok(eventually(atomic_load(&started) == nstarted && atomic_load(&finished) == nfinished &&
                  atomic_load(&rep->joining)),
       "started");
    finish_body(f, rep, 0);
}

static void outside_cancellation(void)
{
    report rep;
    outside_cancel(body_join, &rep, 3, 1);
    cmp_ok(rep.join, "==", -ECANCELED, "88 the parent cancelled while joining: -ECANCELED");
    ok(rep.finished_at_join == 3 && atomic_load(&cancelled) == 2,
       "88 ... after the children were cancelled and finished");
    cmp_ok(rep.count_after, "==", 1, "88 the outside request stays counted");

    outside_cancel(body_cancelled_before_join, &rep, 2, 0);
    ok(rep.body_wait == -ECANCELED && rep.join == -ECANCELED,
       "88 the parent cancelled in the body: join cancels the children and returns -ECANCELED");
    ok(rep.finished_at_join == 2 && atomic_load(&cancelled) == 2, "88 ... after they finished");

    outside_cancel(body_error_and_cancel, &rep, 2, 0);
    cmp_ok(rep.join, "==", -EIO, "89 a child error during the cancellation takes priority");
    ok(rep.finished_at_join == 2, "89 ... after every child finished");
    cmp_ok(rep.count_after, "==", 1, "93 the outside request stays counted (3.13)");
    cmp_ok(rep.next_wait, "==", -ECANCELED, "93 and the parent's next wait is cancelled");
}

/* ---- 90: nested groups ----------------------------------------------------------------- */

/* An outer group and an inner one; the child waiting on the gate is in the inner group, or
 * (outer_fails) in the outer one. */
static void *nested_groups(report *rep, int outer_fails)
{
    weft_taskgroup *outer = weft_taskgroup_new(), *inner = weft_taskgroup_new();
    if (outer_fails) {
        weft_taskgroup_spawn(outer, counted_gate_child, rep->gate);
        weft_taskgroup_spawn(inner, sleeper, NULL);
    } else {
        weft_taskgroup_spawn(outer, sleeper, (void *)(intptr_t)20);
        weft_taskgroup_spawn(inner, counted_gate_child, rep->gate);
    }
    weft_taskgroup_spawn(inner, sleeper, NULL);
    atomic_store(&rep->joining, 1);
    rep->join = weft_taskgroup_join(inner);
    rep->join2 = weft_taskgroup_join(outer);
    rep->count_after = weft_cancelling();
    weft_taskgroup_free(inner);
    weft_taskgroup_free(outer);
    return NULL;
}

static void *body_inner_fails(void *arg)
{
    return nested_groups(arg, 0);
}

static void *body_outer_fails(void *arg)
{
    return nested_groups(arg, 1);
}

static void nested(void)
{
    report rep;
    weft_future *f = start_body(body_inner_fails, &rep, 1);
    ok(eventually(atomic_load(&started) == 3 && atomic_load(&rep.joining)), "started");
    finish_body(f, &rep, -EIO);
    ok(rep.join == -EIO && rep.join2 == 0 && rep.count_after == 0,
       "90 the inner group fails first: its join returns the error, the outer group is unharmed");
    weft_future_release(rep.gate);

    f = start_body(body_outer_fails, &rep, 1);
    ok(eventually(atomic_load(&started) == 3 && atomic_load(&rep.joining)), "started");
    finish_body(f, &rep, -EIO);
    cmp_ok(rep.join, "==", -ECANCELED,
           "90 the outer group fails first: the inner one is cancelled");
    cmp_ok(rep.join2, "==", -EIO, "90 and the outer join returns only the outer error");
    cmp_ok(rep.count_after, "==", 0, "93 the count is back to 0");
    weft_future_release(rep.gate);
}

/* ---- 92: misuse; free without join; many children ---------------------------------------- */

static void *join_other(void *arg)
{
    return (void *)(intptr_t)weft_taskgroup_join(arg);
}

static atomic_int th_done;
static weft_taskgroup *th_group;
static int th_errno;

static void *thread_new(void *arg)
{
    (void)arg;
    errno = 0;
    th_group = weft_taskgroup_new();
    th_errno = errno;
    atomic_store(&th_done, 1);
    return NULL;
}

static void misuse(void)
{
    weft_taskgroup *g = weft_taskgroup_new();
    errno = 0;
    ok(weft_taskgroup_spawn(g, NULL, NULL) == NULL && errno == EINVAL, "spawn(g, NULL): EINVAL");
    errno = 0;
    ok(weft_taskgroup_spawn(NULL, noop, NULL) == NULL && errno == EINVAL, "spawn(NULL): EINVAL");
    cmp_ok(outcome(spawn_on(join_other, g, 1)), "==", -EPERM,
           "92 join from a task that is not the parent: -EPERM");
    cmp_ok(weft_taskgroup_join(g), "==", 0, "join of an empty group: 0");
    cmp_ok(weft_taskgroup_join(g), "==", -EPERM, "92 join twice: -EPERM");
    cmp_ok(weft_taskgroup_join(NULL), "==", -EINVAL, "join(NULL): -EINVAL");
    weft_taskgroup_free(g);
    weft_taskgroup_free(NULL);

    pthread_t th;
    atomic_store(&th_done, 0);
    pthread_create(&th, NULL, thread_new, NULL);
    ok(eventually(atomic_load(&th_done)), "the thread ran");
    pthread_join(th, NULL);
    ok(th_group == NULL && th_errno == EPERM, "92 a group outside a task: NULL, EPERM");
}

static void free_without_join(void)
{
    counters_reset();
    weft_taskgroup *g = weft_taskgroup_new();
    weft_future *a = weft_taskgroup_spawn(g, sleeper, NULL);
    weft_future_retain(a);
    ok(eventually(atomic_load(&started) == 1), "started");
    weft_taskgroup_free(g);
    cmp_ok(weft_await(a, NULL), "==", -ECANCELED, "free without join cancels the children");
    weft_future_release(a);
}

static void *body_many(void *arg)
{
    report *rep = arg;
    weft_taskgroup *g = weft_taskgroup_new();
    for (int i = 0; i < 300; i++) weft_taskgroup_spawn(g, sleeper, (void *)(intptr_t)(i % 3 + 1));
    join_and_report(g, rep, 0);
    return NULL;
}

static void many(void)
{
    report rep;
    run_body(body_many, &rep);
    ok(rep.join == 0 && rep.finished_at_join == 300, "300 children: join after all of them");
}

static void *scenarios(void *arg)
{
    (void)arg;
    waits_for_all();
    child_failure();
    outside_cancellation();
    nested();
    misuse();
    free_without_join();
    many();
    return NULL;
}

int main(void)
{
    run_scenarios("test_taskgroup", scenarios, NULL);
    done_testing();
}
