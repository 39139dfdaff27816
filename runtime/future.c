/*
 * future.c: plain futures and the future half of tasks (see future.h).
 *
 * Completion takes the lock, publishes DONE, signals every waiter in FIFO order and runs
 * the hooks while still holding it (waitq.h requires it), then schedules the done-callbacks
 * outside it, in the order they were added, on one worker chosen by the future's address
 * (see schedule_callbacks). Callbacks never run inside set_result / set_error.
 */
#include "future.h"

#include <errno.h>

#include "alloc.h"
#include "objpool.h"
#include "rt.h"
#include "task.h"
#include "worker.h"

void future_init(weft_future *f, int is_task, weft_rt *rt)
{
    atomic_init(&f->state, FUTURE_PENDING);
    atomic_init(&f->refs, 1);
    f->magic = FUTURE_MAGIC;
    f->is_task = (uint8_t)is_task;
    spin_init(&f->lock);
    f->error = 0;
    f->result = NULL;
    waitlist_init(&f->waiters);
    f->callbacks = NULL;
    f->hooks = NULL;
    f->rt = rt;
}

/* All of a future's callbacks run on one worker, chosen by the future's address, through
 * that worker's FIFO queues: so they run one after another, in the order they were added,
 * whichever threads added them and completed the future. */
static void schedule_callbacks(weft_future *f, runnable *newest_first)
{
    int target = (int)(((uintptr_t)f >> 6) % f->rt->nworkers);
    runnable *r = NULL, *next;
    for (; newest_first; newest_first = next) { /* reverse: oldest first */
        next = runnable_next(newest_first);
        runnable_set_next(newest_first, r);
        r = newest_first;
    }
    for (; r; r = next) {
        next = runnable_next(r); /* queueing r reuses its link */
        weft_future_retain(f); /* dropped after the callback ran */
        sched_call_threadsafe(f->rt, target, (callback_item *)r);
    }
}

/* settle's part for a future somebody listens to: DONE, then the waiters and the hooks. */
static noinline runnable *settle_listened(weft_future *f, runnable *cbs)
{
    f->callbacks = NULL;
    if (cbs) weft_future_retain(f);
    atomic_store_explicit(&f->state, FUTURE_DONE, memory_order_release);
    waitlist_signal_all(&f->waiters, f->error, f->result);
    for (future_hook *h = f->hooks, *next; h; h = next) {
        next = h->next; /* h's owner may reuse it once f->lock is released */
        h->fire(h, f);
    }
    f->hooks = NULL;
    return cbs;
}

/* Publish the outcome, wake the waiters and run the hooks; returns the callbacks, for
 * finish_completion. The caller holds f->lock, or every reference to f (future_complete_alone).
 * The callbacks' reference is taken before DONE is published, so a holder that sees DONE
 * cannot mistake its reference for the last while the callbacks still need f. */
static inline runnable *settle(weft_future *f, int error, void *result)
{
    f->error = error;
    f->result = error ? NULL : result;
    runnable *cbs = f->callbacks;
    if (cbs || !waitlist_empty(&f->waiters) || f->hooks) return settle_listened(f, cbs);
    atomic_store_explicit(&f->state, FUTURE_DONE, memory_order_release); /* nobody listens */
    return NULL;
}

static void finish_completion(weft_future *f, runnable *cbs)
{
    if (cbs) {
        schedule_callbacks(f, cbs);
        weft_future_release(f);
    }
}

int future_complete(weft_future *f, int error, void *result)
{
    spin_lock(&f->lock);
    if (atomic_load_explicit(&f->state, memory_order_relaxed) == FUTURE_DONE) {
        spin_unlock(&f->lock);
        return -EALREADY;
    }
    runnable *cbs = settle(f, error, result);
    spin_unlock(&f->lock); /* an awaiter may free f from here on (see weft_future_release) */
    finish_completion(f, cbs);
    return 0;
}

void future_complete_alone(weft_future *f, int error, void *result)
{
    finish_completion(f, settle(f, error, result));
}

int future_wait(weft_future *f, uint64_t deadline, int cancellable)
{
    if (future_is_done(f)) return 0;
    waiter w; /* a pending cancellation: waiter_park looks before it suspends */
    int r = waiter_init(&w, &f->lock, &f->waiters, f->is_task ? "task" : "future");
    if (r) return r;
    spin_lock(&f->lock);
    if (future_is_done(f)) {
        spin_unlock(&f->lock);
        return 0;
    }
    waitlist_append(&f->waiters, &w);
    r = waiter_park(&w, deadline, cancellable);
    return r == WAIT_SIGNALED_CANCELLED ? -ECANCELED : r;
}

int future_hook_add(weft_future *f, future_hook *h)
{
    spin_lock(&f->lock);
    if (future_is_done(f)) {
        spin_unlock(&f->lock);
        return -EALREADY;
    }
    h->prev = NULL;
    h->next = f->hooks;
    if (f->hooks) f->hooks->prev = h;
    f->hooks = h;
    spin_unlock(&f->lock);
    return 0;
}

void future_hook_remove(weft_future *f, future_hook *h)
{
    spin_lock(&f->lock);
    if (!future_is_done(f)) {
        if (h->prev) h->prev->next = h->next;
        else f->hooks = h->next;
        if (h->next) h->next->prev = h->prev;
    }
    spin_unlock(&f->lock);
}

/* ---- public API ---------------------------------------------------------------------- */

weft_future *weft_future_new(void)
{
    weft_future *f = objpool_alloc(OBJ_FUTURE);
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    worker *w = worker_current();
    future_init(f, 0, w ? w->rt : NULL);
    return f;
}

int weft_future_set_result(weft_future *f, void *result)
{
    if (!future_valid(f)) return -EINVAL;
    if (f->is_task) return -EPERM; /* Task.set_result: RuntimeError */
    return future_complete(f, 0, result);
}

int weft_future_set_error(weft_future *f, int err)
{
    if (!future_valid(f) || err >= 0) return -EINVAL;
    if (f->is_task) return -EPERM;
    return future_complete(f, err, NULL);
}

int weft_future_add_done_callback(weft_future *f, void (*cb)(weft_future *, void *), void *arg)
{
    if (!future_valid(f) || !cb) return -EINVAL;
    callback_item *item = mem_alloc(sizeof *item);
    if (!item) return -ENOMEM;
    runnable_init(&item->link, RUNNABLE_DONE_CALLBACK);
    item->fn.done = cb;
    item->arg = arg;
    item->future = f;
    worker *w = worker_current();
    spin_lock(&f->lock);
    if (!f->rt && w) f->rt = w->rt;
    if (!f->rt) {
        spin_unlock(&f->lock);
        mem_free(item, sizeof *item);
        return -EPERM; /* no runtime to run it on */
    }
    if (!future_is_done(f)) {
        runnable_set_next(&item->link, f->callbacks);
        f->callbacks = &item->link;
        spin_unlock(&f->lock);
        return 0;
    }
    spin_unlock(&f->lock);
    schedule_callbacks(f, &item->link);
    return 0;
}

int weft_done(const weft_future *f)
{
    return future_valid(f) && future_is_done(f);
}

int weft_cancelled(const weft_future *f)
{
    return future_valid(f) && future_is_done(f) && f->error == -ECANCELED;
}

int weft_future_error(const weft_future *f)
{
    if (!future_valid(f)) return -EINVAL;
    return future_is_done(f) ? f->error : -EAGAIN;
}

void *weft_future_result(const weft_future *f)
{
    return future_valid(f) && future_is_done(f) ? f->result : NULL;
}

void weft_future_retain(weft_future *f)
{
    /* Always a read-modify-write, even at 1: retains through borrowed pointers (shutdown's
     * walk of the registry, a completer's callbacks, a task's own code via weft_current())
     * can meet, and a plain store would lose one of them. */
    if (future_valid(f)) atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void weft_future_release(weft_future *f)
{
    if (!future_valid(f)) return;
    unsigned refs = atomic_load_explicit(&f->refs, memory_order_acquire);
    /* a spawn's handle let go at once, its start entry still in our LIFO slot */
    if (refs == 2 && f->is_task && task_release_spawned(task_of(f))) return;
    /* The only reference left needs no read-modify-write: nobody else can take one now */
    if (refs != 1 && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1) return;
    /* A completer that holds no reference (set_result from any thread) may still be inside
     * its critical section after an awaiter saw the future done: let it leave first. Anyone
     * else who could take the lock holds a reference, so nobody takes it after that. */
    spin_wait_unlocked(&f->lock);
    for (runnable *r = f->callbacks, *next; r; r = next) {
        next = runnable_next(r);
        mem_free(r, sizeof(callback_item));
    }
    f->magic = FUTURE_FREED;
    if (f->is_task) task_free(task_of(f));
    else objpool_free(OBJ_FUTURE, f);
}
