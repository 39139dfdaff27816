/*
 * cond.c: asyncio.Condition over a weft_lock and the one waiting mechanism (waitq.h).
 *
 * `spin` guards `waiters`; the weft_lock is the user's lock (acquire, release and locked
 * are the lock's own, so a condition made over an existing lock shares its state). A lock
 * has no owner, so "held" means "locked", as in asyncio.
 *
 * wait() queues its waiter before it releases the lock, so a notify() made by whoever
 * takes the lock next finds it: no notification falls between the two. notify() signals
 * up to n queued waiters in FIFO order; a cancelled waiter has already left the list (its
 * cancellation and the signal are decided under `spin`), so it is never counted.
 * Re-acquire: after the wait, the lock is taken again with a wait that cancellation cannot
 * interrupt (it keeps its place in the lock's queue); a cancellation that arrives meanwhile
 * stays pending and is delivered as wait()'s -ECANCELED, once.
 * Compensation (gh-112202): a waiter that leaves by cancellation after it was notified,
 * whether before it resumed or while re-acquiring, notifies the next waiter in its place.
 * Freeing a condition someone waits on is a usage error: free() refuses (and logs) while a
 * caller is inside wait(), counted by `inside`.
 */
#include <errno.h>
#include <limits.h>

#include "alloc.h"
#include "lock.h"
#include "waitq.h"

#define COND_MAGIC 0x636f6e64u /* "cond" */
#define COND_FREED 0x66726565u /* "free" */

struct weft_cond {
    weft_lock *lock;
    unsigned magic;
    int own_lock;      /* made by weft_cond_new(NULL), freed with the condition */
    atomic_int inside; /* callers in wait(), queued or on their way out */
    spinlock spin;
    waitlist waiters;
};

static int cond_valid(const weft_cond *c)
{
    return c && c->magic == COND_MAGIC;
}

static void cond_wake(weft_cond *c, int n)
{
    spin_lock(&c->spin);
    for (; n > 0 && waitlist_signal_first(&c->waiters, 0, NULL); n--) {
    }
    spin_unlock(&c->spin);
}

weft_cond *weft_cond_new(weft_lock *lock)
{
    if (lock && !lock_valid(lock)) {
        errno = EINVAL;
        return NULL;
    }
    weft_cond *c = mem_alloc(sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    c->own_lock = !lock;
    c->lock = lock ? lock : weft_lock_new();
    if (!c->lock) {
        mem_free(c, sizeof *c);
        errno = ENOMEM;
        return NULL;
    }
    c->magic = COND_MAGIC;
    atomic_init(&c->inside, 0);
    spin_init(&c->spin);
    waitlist_init(&c->waiters);
    return c;
}

void weft_cond_free(weft_cond *c)
{
    if (!cond_valid(c)) return;
    int waiting = atomic_load_explicit(&c->inside, memory_order_acquire);
    if (waiting) {
        diag_log("weft_cond_free: %d task(s) still in wait(); the condition is left allocated",
                 waiting);
        return;
    }
    if (c->own_lock) weft_lock_free(c->lock);
    c->magic = COND_FREED;
    mem_free(c, sizeof *c);
}

int weft_cond_acquire(weft_cond *c)
{
    if (!cond_valid(c)) return -EINVAL;
    return lock_acquire(c->lock, 1);
}

int weft_cond_release(weft_cond *c)
{
    if (!cond_valid(c)) return -EINVAL;
    return weft_lock_release(c->lock);
}

int weft_cond_wait(weft_cond *c)
{
    if (!cond_valid(c)) return -EINVAL;
    if (!weft_lock_locked(c->lock)) return -EPERM;
    waiter w;
    int r = waiter_init(&w, &c->spin, &c->waiters, "condition");
    if (r) return r;
    atomic_fetch_add_explicit(&c->inside, 1, memory_order_relaxed);
    spin_lock(&c->spin);
    waitlist_append(&c->waiters, &w);
    /* Released with c->spin held, which waiter_park wants (a lock's release never takes a
     * condition's spin). -EPERM here means another task released our lock meanwhile (a
     * lock has no owner): the wait goes on as if this release had done it. */
    weft_lock_release(c->lock);
    r = waiter_park(&w, UINT64_MAX, 1);
    (void)lock_acquire(c->lock, 0); /* cannot fail: this caller could wait just above */
    /* requests that arrived while re-acquiring: all of them make one -ECANCELED */
    if (wait_check_cancel() && r == 0) r = WAIT_SIGNALED_CANCELLED;
    if (r == WAIT_SIGNALED_CANCELLED) {
        cond_wake(c, 1); /* pass the notification on */
        r = -ECANCELED;
    }
    atomic_fetch_sub_explicit(&c->inside, 1, memory_order_release);
    return r;
}

/* The predicate's first nonzero value (it should be positive: a negative one reads as an
 * error), checked before the first wait; or wait()'s error. */
int weft_cond_wait_for(weft_cond *c, int (*predicate)(void *arg), void *arg)
{
    if (!cond_valid(c) || !predicate) return -EINVAL;
    int v;
    while (!(v = predicate(arg))) {
        int r = weft_cond_wait(c);
        if (r) return r;
    }
    return v;
}

int weft_cond_notify(weft_cond *c, int n)
{
    if (!cond_valid(c)) return -EINVAL;
    if (!weft_lock_locked(c->lock)) return -EPERM;
    cond_wake(c, n);
    return 0;
}

int weft_cond_notify_all(weft_cond *c)
{
    return weft_cond_notify(c, INT_MAX);
}
