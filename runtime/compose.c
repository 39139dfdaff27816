/*
 * compose.c: asyncio's combinators over futures: gather, wait, wait_for, shield and
 * as_completed.
 *
 * gather, wait and as_completed wait on a waitset (waitset.h): one waiter, one hook per
 * future. They never publish an `awaiting` future on the task, so cancelling the waiting
 * task reaches their waiter through waitq's own cancellation path. gather then cancels
 * every child that is not done and keeps waiting (asyncio's _GatheringFuture.cancel: a
 * further cancellation cancels them again); wait and as_completed only stop waiting.
 *
 * wait_for in a task with a positive timeout is asyncio 3.12's `async with timeout(t):
 * return await f`: a timeout scope on the stack (timeout.h) cancels the task at the
 * deadline, the cancellation travels into f through weft_await, and f is awaited until it
 * is done. Otherwise (a foreign thread, or a timeout <= 0) the deadline is the waiter's own
 * and f is cancelled directly (asyncio's _cancel_and_wait).
 *
 * shield mirrors f into a new plain future with a done-callback, as asyncio does.
 *
 * None of these keeps state beyond the call but as_completed's iterator, which holds a
 * reference on each of its futures; the others borrow the caller's references.
 */
#include <errno.h>
#include <stdlib.h>

#include "alloc.h"
#include "clock.h"
#include "future.h"
#include "task.h"
#include "timeout.h"
#include "waitset.h"
#include "worker.h"

static int futures_valid(weft_future *const *fs, size_t n)
{
    if (!fs) return n == 0;
    for (size_t i = 0; i < n; i++) {
        if (!future_valid(fs[i])) return 0;
    }
    return 1;
}

/* The outcome of a done future: 0 with *result, or its error. */
static int outcome(weft_future *f, void **result)
{
    if (!f->error && result) *result = f->result;
    return f->error;
}

/* ---- gather ---------------------------------------------------------------------------- */

static void cancel_pending(weft_future *const *fs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!future_is_done(fs[i])) weft_cancel(fs[i]);
    }
}

int weft_gather(weft_future *const *fs, size_t n, void **results, int *errors)
{
    if (!futures_valid(fs, n)) return -EINVAL;
    waitset s;
    int r = waitset_init(&s, fs, n, errors ? WAITSET_ALL : WAITSET_FIRST_ERROR, UINT64_MAX);
    if (r) return r;
    r = waitset_wait(&s, UINT64_MAX, 1, "gather");
    int cancelled = r == -ECANCELED;
    if (cancelled && !waitset_satisfied(&s)) {
        /* the gathering task was cancelled: so is every child, and we wait for them */
        cancel_pending(fs, n);
        while (waitset_wait(&s, UINT64_MAX, 1, "gather") == -ECANCELED) cancel_pending(fs, n);
    }
    int first_error = waitset_first_error(&s);
    waitset_destroy(&s);
    if (r && !cancelled) return r;
    for (size_t i = 0; i < n; i++) {
        int done = future_is_done(fs[i]);
        if (results) results[i] = done && !fs[i]->error ? fs[i]->result : NULL;
        if (errors) errors[i] = done ? fs[i]->error : -EAGAIN;
    }
    if (errors) return cancelled ? -ECANCELED : 0;
    if (first_error) return first_error;
    return cancelled ? -ECANCELED : 0;
}

/* ---- wait ------------------------------------------------------------------------------ */

int weft_wait(weft_future *const *fs, size_t n, int return_when, double timeout)
{
    static const int until[] = {
        [WEFT_ALL_COMPLETED] = WAITSET_ALL,
        [WEFT_FIRST_COMPLETED] = WAITSET_ANY,
        [WEFT_FIRST_EXCEPTION] = WAITSET_FIRST_FAILURE,
    };
    if (!n || !futures_valid(fs, n) || return_when < 0 || return_when > WEFT_FIRST_EXCEPTION)
        return -EINVAL;
    waitset s;
    int r = waitset_init(&s, fs, n, until[return_when], UINT64_MAX);
    if (r) return r;
    r = waitset_wait(&s, clock_deadline(timeout), 1, "wait");
    waitset_destroy(&s);
    if (r && r != -ETIMEDOUT) return r;
    int done = 0;
    for (size_t i = 0; i < n; i++) done += future_is_done(fs[i]);
    return done;
}

/* ---- wait_for -------------------------------------------------------------------------- */

/* In a task: await f inside a timeout scope; f is done when this returns. */
static int wait_for_scoped(weft_future *f, double timeout, void **result)
{
    weft_timeout scope;
    int r = timeout_scope_begin(&scope, clock_deadline(timeout));
    if (r) return r;
    r = weft_await(f, result);
    if (!future_is_done(f)) {
        /* a cancellation ended the await without reaching f (a second one, after the first
         * went into f): asyncio cancels the awaited future again and goes on awaiting it */
        weft_cancel(f);
        future_wait(f, UINT64_MAX, 0);
        r = outcome(f, result);
    }
    int expired = timeout_scope_end(&scope);
    return expired == -ETIMEDOUT && r == -ECANCELED ? -ETIMEDOUT : r;
}

int weft_wait_for(weft_future *f, double timeout, void **result)
{
    if (!future_valid(f)) return -EINVAL;
    if (!(timeout >= 0)) return weft_await(f, result); /* negative or NaN: no timeout */
    if (future_is_done(f)) return outcome(f, result);
    task *self = task_current();
    if (!self && worker_current()) return -EPERM;
    if (self && timeout > 0) return wait_for_scoped(f, timeout, result);
    int r = timeout > 0 ? future_wait(f, clock_deadline(timeout), 1) : -ETIMEDOUT;
    if (r == -ETIMEDOUT) {
        weft_cancel(f);
        r = future_wait(f, UINT64_MAX, 1); /* cancelling the waiter now leaves f to itself */
        if (r) return r;
        return f->error == -ECANCELED ? -ETIMEDOUT : outcome(f, result);
    }
    return r ? r : outcome(f, result);
}

/* ---- shield ---------------------------------------------------------------------------- */

static void shield_mirror(weft_future *inner, void *arg)
{
    weft_future *outer = arg;
    future_complete(outer, inner->error, inner->result); /* -EALREADY: outer was cancelled */
    weft_future_release(outer);
}

weft_future *weft_shield(weft_future *f)
{
    if (!future_valid(f)) {
        errno = EINVAL;
        return NULL;
    }
    if (future_is_done(f)) { /* asyncio returns f itself; the caller releases it as usual */
        weft_future_retain(f);
        return f;
    }
    weft_future *outer = weft_future_new();
    if (!outer) return NULL;
    if (!outer->rt) outer->rt = f->rt; /* made off-runtime: its callbacks run where f's do */
    weft_future_retain(outer);         /* the mirror's */
    int r = weft_future_add_done_callback(f, shield_mirror, outer);
    if (r) {
        weft_future_release(outer);
        weft_future_release(outer);
        errno = -r;
        return NULL;
    }
    return outer;
}

/* ---- as_completed ---------------------------------------------------------------------- */

#define AS_COMPLETED_MAGIC 0x61736370u /* "ascp" */

struct weft_as_completed {
    waitset set;      /* over the distinct futures */
    weft_future **fs; /* the distinct futures, one reference each */
    size_t cap, n;    /* fs holds cap slots, the first n distinct */
    size_t returned;  /* futures and timeouts handed out by next */
    uint64_t deadline;
    uint32_t magic;
};

static int pointer_order(const void *a, const void *b)
{
    weft_future *const *fa = a, *const *fb = b;
    uintptr_t x = (uintptr_t)*fa, y = (uintptr_t)*fb;
    return (x > y) - (x < y);
}

weft_as_completed *weft_as_completed_new(weft_future *const *fs, size_t n, double timeout)
{
    if (!futures_valid(fs, n)) {
        errno = EINVAL;
        return NULL;
    }
    weft_as_completed *it = mem_alloc(sizeof *it);
    if (!it) goto fail;
    it->fs = NULL;
    it->cap = n;
    if (n && !(it->fs = mem_alloc(n * sizeof *it->fs))) goto fail;
    it->n = 0;
    if (n) {
        for (size_t i = 0; i < n; i++) it->fs[i] = fs[i];
        qsort(it->fs, n, sizeof *it->fs, pointer_order); /* duplicates collapse, as in asyncio */
    }
    for (size_t i = 0; i < n; i++) {
        if (!it->n || it->fs[it->n - 1] != it->fs[i]) it->fs[it->n++] = it->fs[i];
    }
    it->returned = 0;
    it->deadline = clock_deadline(timeout);
    if (waitset_init(&it->set, it->fs, it->n, WAITSET_READY, it->deadline)) goto fail;
    for (size_t i = 0; i < it->n; i++) weft_future_retain(it->fs[i]);
    it->magic = AS_COMPLETED_MAGIC;
    return it;
fail:
    if (it) {
        mem_free(it->fs, it->cap * sizeof *it->fs);
        mem_free(it, sizeof *it);
    }
    errno = ENOMEM;
    return NULL;
}

int weft_as_completed_next(weft_as_completed *it, weft_future **f)
{
    if (!it || it->magic != AS_COMPLETED_MAGIC || !f) return -EINVAL;
    for (;;) {
        if (it->returned == it->n) return -ENOENT;
        weft_future *next = waitset_pop_ready(&it->set);
        if (next) {
            it->returned++;
            *f = next;
            return 0;
        }
        int r = waitset_wait(&it->set, it->deadline, 1, "as_completed");
        if (r == -ETIMEDOUT) it->returned++; /* one timeout per future not delivered */
        if (r) return r;
    }
}

void weft_as_completed_free(weft_as_completed *it)
{
    if (!it || it->magic != AS_COMPLETED_MAGIC) return;
    it->magic = 0;
    waitset_destroy(&it->set);
    for (size_t i = 0; i < it->n; i++) weft_future_release(it->fs[i]);
    mem_free(it->fs, it->cap * sizeof *it->fs);
    mem_free(it, sizeof *it);
}
