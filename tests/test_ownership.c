/*
 * test_ownership: the sole-owner paths (future.h). A holder that finds a future's count
 * equal to the references it holds claims, completes and frees with plain moves; these
 * races check that nobody else could be using the future then:
 *
 *   - fire and forget: tasks whose handle is released at once, started by whichever worker
 *     takes them while the spawner's release races the claim; each runs exactly once;
 *   - a task hands itself out: it retains weft_current() and gives the handle to a plain
 *     thread, which awaits it, adds a done-callback or just releases it, while the task
 *     ends; every await sees the result and every callback runs once;
 *   - an inline child's parent is cancelled from a thread at a random moment: the child is
 *     claimed before the await is published, so the canceller can reach it only after the
 *     claim; it runs at most once, never once it is done (as it would if the claim came
 *     after the publication), and every outcome is one asyncio allows. A child that sleeps
 *     (and so publishes its parent's await only as it suspends) always gets the
 *     cancellation, wherever it landed.
 *
 * Leaks (a path that skips a release, or frees twice) show under ASan and valgrind.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tap.h"
#include "testutil.h"
#include "weft.h"

/* ---- fire and forget ------------------------------------------------------------------- */

static atomic_long runs;
static weft_event *all_ran;
static long fire_total;

static void *fire_body(void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&runs, 1) + 1 == fire_total) weft_event_set(all_ran);
    return NULL;
}

static void *fire_spawner(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        weft_future *f = weft_spawn(fire_body, NULL);
        if (!f) return weft_fail(-errno);
        weft_future_release(f);
        if (i % 97 == 0) weft_yield(); /* let the spawned ones start here too */
    }
    return NULL;
}

static void *fire_and_forget(void *arg)
{
    (void)arg;
    enum { SPAWNERS = 4 };
    long each = scaled(50000);
    fire_total = each * SPAWNERS;
    all_ran = weft_event_new();
    weft_future *s[SPAWNERS];
    for (int i = 0; i < SPAWNERS; i++) s[i] = weft_spawn(fire_spawner, (void *)(intptr_t)each);
    int errs = 0;
    for (int i = 0; i < SPAWNERS; i++) {
        errs += weft_await(s[i], NULL) != 0;
        weft_future_release(s[i]);
    }
    int r = weft_event_wait(all_ran);
    weft_event_free(all_ran);
    ok(errs == 0 && r == 0 && atomic_load(&runs) == fire_total,
       "fire and forget: %ld tasks from 4 spawners, each ran once (%ld runs)", fire_total,
       atomic_load(&runs));
    return NULL;
}

/* ---- a task hands itself out ----------------------------------------------------------- */

static weft_queue *handed; /* the handles the tasks hand out */
static atomic_long taken, awaited_ok, awaited_bad, callbacks_added, callbacks_run;

static void count_callback(weft_future *f, void *arg)
{
    (void)arg;
    if (weft_future_result(f) == (void *)(uintptr_t)42) atomic_fetch_add(&callbacks_run, 1);
}

static void *hands_itself_out(void *arg)
{
    uint64_t seed = (uintptr_t)arg;
    weft_future *me = weft_current();
    weft_future_retain(me);
    if (weft_queue_put_nowait(handed, me)) {
        weft_future_release(me);
        return weft_fail(-EIO);
    }
    if (rng_next(&seed) % 2) weft_yield(); /* end before or after the taker looks */
    return (void *)(uintptr_t)42;
}

static void *taker(void *arg)
{
    long n = (long)(intptr_t)arg;
    uint64_t seed = 12345;
    for (; atomic_load(&taken) < n; atomic_fetch_add(&taken, 1)) {
        void *item = NULL;
        if (weft_queue_get(handed, &item)) break;
        weft_future *f = item;
        switch (rng_next(&seed) % 3) {
        case 0: {
            void *r = NULL;
            if (weft_await(f, &r) == 0 && r == (void *)(uintptr_t)42)
                atomic_fetch_add(&awaited_ok, 1);
            else
                atomic_fetch_add(&awaited_bad, 1);
            break;
        }
        case 1:
            if (weft_future_add_done_callback(f, count_callback, NULL) == 0)
                atomic_fetch_add(&callbacks_added, 1);
            break;
        default: /* just let go */
            break;
        }
        weft_future_release(f);
    }
    return NULL;
}

static void *hand_out_spawner(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        weft_future *f = weft_spawn(hands_itself_out, (void *)(uintptr_t)(i * 7919 + 1));
        if (!f) return weft_fail(-errno);
        weft_future_release(f);
    }
    return NULL;
}

static void hand_out(weft_rt *rt)
{
    long n = scaled(20000);
    handed = weft_queue_new(0);
    pthread_t th;
    pthread_create(&th, NULL, taker, (void *)(intptr_t)n);
    int r = run_in(rt, hand_out_spawner, (void *)(intptr_t)n, NULL);
    pthread_join(th, NULL);
    weft_queue_free(handed);
    int settled = poll_until(atomic_load(&callbacks_run) == atomic_load(&callbacks_added), 30, mono,
                             nap, 0.001);
    ok(r == 0 && atomic_load(&taken) == n && awaited_bad == 0 && settled,
       "a task hands itself out to a thread: %ld handed out, %ld awaited (%ld wrong), %ld "
       "callbacks added and %ld run",
       atomic_load(&taken), atomic_load(&awaited_ok), atomic_load(&awaited_bad),
       atomic_load(&callbacks_added), atomic_load(&callbacks_run));
}

/* ---- a parent awaiting an inline child is cancelled ----------------------------------- */

struct trial {
    atomic_int child_runs;
    atomic_int go;
    int spins;        /* the canceller's delay */
    int child_spins;  /* the child's work before it returns */
    int child_yields; /* the child suspends once (then it is not inline to the end) */
    int child_sleeps; /* the child sleeps for 30 s: only the cancellation can end it */
    int sleep_err;
    int await_err;
    void *await_value;
    int child_err;
    void *child_value;
};

static void *child_body(void *arg)
{
    struct trial *t = arg;
    atomic_fetch_add(&t->child_runs, 1);
    if (weft_done(weft_current())) atomic_fetch_add(&t->child_runs, 100); /* ran though done */
    for (volatile int i = 0; i < t->child_spins; i++) {
    }
    if (t->child_yields) weft_yield();
    if (t->child_sleeps) t->sleep_err = weft_sleep(30.0); /* swallowed */
    return (void *)(uintptr_t)7;
}

static void *parent_body(void *arg)
{
    struct trial *t = arg;
    weft_future *c = weft_spawn(child_body, t);
    if (!c) return weft_fail(-errno);
    atomic_store(&t->go, 1);
    t->await_err = weft_await(c, &t->await_value);
    while (!weft_done(c))
        weft_yield(); /* its outcome, once it has one (not a wait: a
                       * pending cancellation would go into it) */
    t->child_err = weft_future_error(c);
    t->child_value = weft_future_result(c);
    weft_future_release(c);
    return NULL;
}

static atomic_long cancels_landed;

struct cancel_job {
    _Atomic(weft_future *) target;
    struct trial *t;
    atomic_int stop;
};

static void *canceller(void *arg)
{
    struct cancel_job *j = arg;
    for (;;) {
        weft_future *p;
        for (unsigned spins = 0; !(p = atomic_load(&j->target)); spins++) {
            if (atomic_load(&j->stop)) return NULL;
            if (spins % 1024 == 1023) sched_yield(); /* (valgrind runs one thread at a time) */
        }
        for (unsigned spins = 0; !atomic_load(&j->t->go); spins++)
            if (spins % 1024 == 1023) sched_yield();
        for (volatile int i = 0; i < j->t->spins; i++) {
        }
        if (weft_cancel(p) == 1) atomic_fetch_add(&cancels_landed, 1);
        atomic_store(&j->target, NULL);
        weft_future_release(p);
    }
}

static void *cancel_trials(void *arg)
{
    long n = (long)(intptr_t)arg, bad = 0, ran_twice = 0, cancelled = 0;
    uint64_t seed = 99;
    static struct cancel_job job;
    struct trial t;
    pthread_t th;
    pthread_create(&th, NULL, canceller, &job);
    for (long i = 0; i < n; i++) {
        uint64_t mode = rng_next(&seed) % 4;
        t = (struct trial){.spins = (int)(rng_next(&seed) % 2000),
                           .child_spins = (int)(rng_next(&seed) % 2000),
                           .child_yields = mode == 0,
                           .child_sleeps = mode == 1};
        job.t = &t;
        weft_future *p = weft_spawn(parent_body, &t);
        if (!p) return weft_fail(-errno);
        weft_future_retain(p); /* the canceller's */
        atomic_store(&job.target, p);
        int perr = weft_await(p, NULL);
        while (atomic_load(&job.target)) weft_yield(); /* the canceller is done with it */
        weft_future_release(p);
        if (atomic_load(&t.child_runs) > 1) ran_twice++;
        int consistent =
            (perr == 0 || perr == -ECANCELED) &&
            (t.await_err == -ECANCELED ||
             (t.await_err == 0 && t.await_value == (void *)(uintptr_t)7 && t.child_err == 0)) &&
            (t.child_err == -ECANCELED || t.child_value == (void *)(uintptr_t)7) &&
            (t.child_err != 0 || atomic_load(&t.child_runs) == 1) &&
            /* the parent's cancellation reached a sleeping child, wherever it landed */
            (!t.child_sleeps || atomic_load(&t.child_runs) == 0 || t.sleep_err == -ECANCELED);
        if (!consistent) bad++;
        if (t.await_err == -ECANCELED) cancelled++;
    }
    atomic_store(&job.stop, 1);
    pthread_join(th, NULL);
    ok(ran_twice == 0 && bad == 0,
       "a parent awaiting an inline child, cancelled from a thread at random moments: %ld "
       "trials, %ld cancels landed while the parent ran, %ld awaits cancelled; none ran the "
       "child twice or after it was done (%ld) or ended inconsistently (%ld)",
       n, atomic_load(&cancels_landed), cancelled, ran_twice, bad);
    return NULL;
}

int main(void)
{
    plan(4);
    watchdog_arm("test_ownership", 280);
    weft_rt *rt = rt_new_or_bail(2);
    cmp_ok(run_in(rt, fire_and_forget, NULL, NULL), "==", 0, "fire and forget ran");
    hand_out(rt);
    run_in(rt, cancel_trials, (void *)(intptr_t)scaled(20000), NULL);
    weft_rt_free(rt);
    done_testing();
}
