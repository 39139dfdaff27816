/*
 * test_as_completed: asyncio.as_completed's rules on weft_as_completed_* (asyncio-semantics.md
 * §3.8, case 79), on one worker and on four: futures come back in completion order (plain
 * futures and tasks), those done before the iterator first; duplicates collapse; once the
 * overall timeout expired every future not yet delivered gives one -ETIMEDOUT (completions
 * after the deadline are not delivered), then -ENOENT; nothing is ever cancelled; a
 * cancelled next loses nothing; a foreign thread; many futures; bad arguments; a callback.
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

/* ---- scenarios --------------------------------------------------------------------------- */

/* 79: completion order, not argument order; done ones first; then -ENOENT. */
static void completion_order(void)
{
    weft_future *fs[4];
    new_futures(fs, 4);
    weft_future_set_result(fs[3], (void *)3); /* done before the iterator */
    weft_as_completed *it = weft_as_completed_new(fs, 4, -1);
    ok(it != NULL, "as_completed_new");
    weft_future_set_result(fs[2], (void *)2);
    weft_future_set_error(fs[0], -EIO);
    weft_future_set_result(fs[1], (void *)1);
    weft_future *got[4] = {0};
    int good = 1;
    for (int i = 0; i < 4; i++) good &= weft_as_completed_next(it, &got[i]) == 0;
    ok(good && got[0] == fs[3] && got[1] == fs[2] && got[2] == fs[0] && got[3] == fs[1],
       "79 the done future first, then completion order (c, a, b), the same handles");
    cmp_ok(weft_as_completed_next(it, &got[0]), "==", -ENOENT, "79 then -ENOENT");
    cmp_ok(weft_as_completed_next(it, &got[0]), "==", -ENOENT, "79 and again -ENOENT");
    weft_as_completed_free(it);
    release_all(fs, 4);

    /* tasks on other workers, completed one after another */
    weft_future *gates[3], *kids[3];
    spawn_gated(gate_child, gates, kids, 3, 1);
    it = weft_as_completed_new(kids, 3, -1);
    const int order[3] = {2, 0, 1};
    good = 1;
    for (int i = 0; i < 3; i++) {
        weft_future *f = NULL;
        weft_future_set_result(gates[order[i]], NULL);
        good &= weft_as_completed_next(it, &f) == 0 && f == kids[order[i]];
    }
    ok(good, "79 tasks come back in completion order");
    weft_future *f;
    cmp_ok(weft_as_completed_next(it, &f), "==", -ENOENT, "79 then -ENOENT");
    weft_as_completed_free(it);
    release_all(kids, 3);
    release_all(gates, 3);
}

/* 79: duplicates collapse; an empty iterator. */
static void duplicates_and_empty(void)
{
    weft_future *a = weft_future_new(), *b = weft_future_new();
    weft_future *fs[4] = {a, b, a, a};
    weft_as_completed *it = weft_as_completed_new(fs, 4, -1);
    weft_future_set_result(b, NULL);
    weft_future_set_result(a, NULL);
    weft_future *x = NULL, *y = NULL, *z = NULL;
    ok(weft_as_completed_next(it, &x) == 0 && weft_as_completed_next(it, &y) == 0 && x == b &&
           y == a,
       "79 duplicates collapse: b, a");
    cmp_ok(weft_as_completed_next(it, &z), "==", -ENOENT, "79 and no more");
    weft_as_completed_free(it);
    weft_future_release(a);
    weft_future_release(b);

    it = weft_as_completed_new(NULL, 0, -1);
    ok(it && weft_as_completed_next(it, &z) == -ENOENT, "no futures: -ENOENT at once");
    weft_as_completed_free(it);
}

/* 79: the overall timeout: one -ETIMEDOUT per future not delivered, late completions are not
 * delivered, then -ENOENT; nothing is cancelled. */
static void timeout(void)
{
    weft_future *fs[3];
    new_futures(fs, 3);
    weft_future_set_result(fs[1], NULL);
    double t0 = weft_now();
    weft_as_completed *it = weft_as_completed_new(fs, 3, 0.05);
    weft_future *f = NULL;
    ok(weft_as_completed_next(it, &f) == 0 && f == fs[1], "79 a done future comes first");
    cmp_ok(weft_as_completed_next(it, &f), "==", -ETIMEDOUT, "79 then -ETIMEDOUT at the deadline");
    double took = weft_now() - t0;
    ok(took >= 0.045 && took < 10, "79 ... after about the timeout (%.3f s)", took);
    ok(!weft_done(fs[0]) && !weft_done(fs[2]), "79 the timeout cancels nothing");
    weft_future_set_result(fs[0], NULL);
    cmp_ok(weft_as_completed_next(it, &f), "==", -ETIMEDOUT,
           "79 a completion after the deadline is not delivered: -ETIMEDOUT");
    cmp_ok(weft_as_completed_next(it, &f), "==", -ENOENT, "79 then -ENOENT");
    weft_as_completed_free(it);
    release_all(fs, 3);

    new_futures(fs, 1);
    it = weft_as_completed_new(fs, 1, 0);
    cmp_ok(weft_as_completed_next(it, &f), "==", -ETIMEDOUT, "timeout 0, pending: -ETIMEDOUT");
    weft_as_completed_free(it);
    release_all(fs, 1);
}

/* A cancelled next returns -ECANCELED and loses nothing; the futures are not cancelled. */
typedef struct iterating {
    weft_as_completed *it;
    int first, second;
    weft_future *got;
    atomic_int waiting_again;
} iterating;

static void *iterate(void *arg)
{
    iterating *s = arg;
    weft_future *f = NULL;
    s->first = weft_as_completed_next(s->it, &f);
    weft_uncancel();
    atomic_store(&s->waiting_again, 1);
    s->second = weft_as_completed_next(s->it, &s->got);
    return NULL;
}

static void cancelled_next(void)
{
    weft_future *fs[2];
    new_futures(fs, 2);
    iterating s = {.it = weft_as_completed_new(fs, 2, -1)};
    weft_future *t = spawn_settled(iterate, &s, 1);
    weft_cancel(t);
    ok(eventually(atomic_load(&s.waiting_again)), "the iterating task was cancelled in next");
    cmp_ok(s.first, "==", -ECANCELED, "a cancelled next returns -ECANCELED");
    ok(!weft_done(fs[0]) && !weft_done(fs[1]), "and cancels none of the futures");
    weft_future_set_result(fs[1], NULL);
    weft_await(t, NULL);
    ok(s.second == 0 && s.got == fs[1], "the next next gets the next completion");
    weft_future *f;
    weft_future_set_result(fs[0], NULL);
    ok(weft_as_completed_next(s.it, &f) == 0 && f == fs[0], "nothing was lost");
    weft_as_completed_free(s.it);
    weft_future_release(t);
    release_all(fs, 2);
}

/* Many futures completed by tasks everywhere: each comes back once. */
static void many(void)
{
    enum { N = 500 };
    static weft_future *fs[N], *setters[N];
    static char seen[N];
    new_futures(fs, N);
    weft_as_completed *it = weft_as_completed_new(fs, N, -1);
    for (int i = 0; i < N; i++) setters[i] = weft_spawn(complete_later, fs[i]);
    int count = 0, good = 1;
    weft_future *f;
    while (weft_as_completed_next(it, &f) == 0) {
        int k = -1;
        for (int i = 0; i < N; i++) {
            if (fs[i] == f) k = i;
        }
        good &= k >= 0 && !seen[k];
        if (k >= 0) seen[k] = 1;
        count++;
    }
    ok(good && count == N, "500 futures: each comes back once (%d)", count);
    weft_as_completed_free(it);
    join_all(setters, N);
    release_all(fs, N);
    memset(seen, 0, sizeof seen);
}

/* ---- a foreign thread, bad arguments, a callback ----------------------------------------- */

static weft_future *th_kids[3], *th_gates[3];
static atomic_int th_finished, th_ready;
static weft_future *th_got[3];
static int th_last;

static void *thread_iterates(void *arg)
{
    (void)arg;
    weft_as_completed *it = weft_as_completed_new(th_kids, 3, -1);
    atomic_store(&th_ready, 1);
    for (int i = 0; i < 3; i++) weft_as_completed_next(it, &th_got[i]);
    weft_future *f;
    th_last = weft_as_completed_next(it, &f);
    weft_as_completed_free(it);
    atomic_store(&th_finished, 1);
    return NULL;
}

static void foreign_thread(void)
{
    spawn_gated(gate_child, th_gates, th_kids, 3, 1);
    atomic_store(&th_finished, 0);
    atomic_store(&th_ready, 0);
    pthread_t th;
    pthread_create(&th, NULL, thread_iterates, NULL);
    ok(eventually(atomic_load(&th_ready)), "the thread made its iterator");
    const int order[3] = {1, 2, 0};
    for (int i = 0; i < 3; i++) {
        weft_future_set_result(th_gates[order[i]], NULL);
        weft_await(th_kids[order[i]], NULL);
        weft_sleep(0.002);
    }
    ok(eventually(atomic_load(&th_finished)), "a foreign thread iterates (blocking)");
    ok(th_got[0] == th_kids[1] && th_got[1] == th_kids[2] && th_got[2] == th_kids[0] &&
           th_last == -ENOENT,
       "... in completion order, then -ENOENT");
    pthread_join(th, NULL);
    release_all(th_kids, 3);
    release_all(th_gates, 3);
}

static atomic_int cb_ret;
static weft_as_completed *cb_it;

static void next_in_callback(void *arg)
{
    (void)arg;
    weft_future *f;
    atomic_store(&cb_ret, weft_as_completed_next(cb_it, &f));
}

static void bad_arguments(void)
{
    errno = 0;
    ok(weft_as_completed_new(NULL, 2, -1) == NULL && errno == EINVAL, "new(NULL, 2): EINVAL");
    weft_future *f = weft_future_new(), *bad[2] = {f, NULL};
    errno = 0;
    ok(weft_as_completed_new(bad, 2, -1) == NULL && errno == EINVAL, "a NULL future: EINVAL");
    cmp_ok(weft_as_completed_next(NULL, &f), "==", -EINVAL, "next(NULL): -EINVAL");
    cb_it = weft_as_completed_new(&f, 1, -1);
    cmp_ok(weft_as_completed_next(cb_it, NULL), "==", -EINVAL, "next(it, NULL): -EINVAL");
    run_callback(next_in_callback, NULL, "the callback ran");
    cmp_ok(atomic_load(&cb_ret), "==", -EPERM, "next in a callback that must wait: -EPERM");
    weft_as_completed_free(cb_it);
    weft_as_completed_free(NULL);
    weft_future_release(f);
}

static void *scenarios(void *arg)
{
    (void)arg;
    completion_order();
    duplicates_and_empty();
    timeout();
    cancelled_next();
    many();
    foreign_thread();
    bad_arguments();
    return NULL;
}

int main(void)
{
    run_scenarios("test_as_completed", scenarios, NULL);
    done_testing();
}
