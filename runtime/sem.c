/*
 * sem.c: asyncio.Semaphore and BoundedSemaphore over the one waiting mechanism (waitq.h).
 *
 * `spin` guards everything mutable: `value` counts free permits, `waiters` the queued
 * waiters, `pending` the waiters granted a permit that have not resumed yet. Permits are
 * reserved at wake-up, as in asyncio: a grant takes the permit out of `value` for its
 * waiter.
 *
 * locked() is asyncio's "value is 0 or a live waiter is queued", where a granted waiter
 * that has not resumed is still queued (CPython keeps its done future in the deque). The
 * fast path takes a permit only when locked() is false, so a newcomer never passes a
 * queued or granted-but-not-resumed waiter (FIFO, no barging). Every resumption runs
 * asyncio's `finally` step: it grants queued waiters while permits are free, which keeps
 * "pending == 0 and waiters queued => value == 0".
 * Compensation: a waiter cancelled after its grant (WAIT_SIGNALED_CANCELLED) gives the
 * permit back, which grants the next waiter; a waiter cancelled while queued held nothing.
 * A BoundedSemaphore checks its bound against the free permits, as asyncio does, so an
 * over-release made while a granted waiter has not resumed yet goes unnoticed.
 * Freeing a semaphore someone waits on is a usage error; free() refuses (and logs) while a
 * waiter is queued or granted but not resumed.
 */
#include <errno.h>
#include <limits.h>

#include "alloc.h"
#include "waitq.h"
#include "weft.h"

#define SEM_MAGIC 0x73656d61u /* "sema" */
#define SEM_FREED 0x66726565u /* "free" */

struct weft_sem {
    int value;
    int pending;
    int bound; /* the initial value of a BoundedSemaphore; -1: unbounded */
    unsigned magic;
    spinlock spin;
    waitlist waiters;
};

static int sem_valid(const weft_sem *s)
{
    return s && s->magic == SEM_MAGIC;
}

/* With `spin` held. */
static int sem_busy(const weft_sem *s)
{
    return s->value == 0 || !waitlist_empty(&s->waiters) || s->pending > 0;
}

/* With `spin` held: grant free permits to queued waiters, first come first served. */
static void sem_wake(weft_sem *s)
{
    while (s->value > 0 && waitlist_signal_first(&s->waiters, 0, NULL)) {
        s->value--;
        s->pending++;
    }
}

static weft_sem *sem_new(int value, int bound)
{
    if (value < 0) {
        errno = EINVAL;
        return NULL;
    }
    weft_sem *s = mem_alloc(sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    s->value = value;
    s->pending = 0;
    s->bound = bound;
    s->magic = SEM_MAGIC;
    spin_init(&s->spin);
    waitlist_init(&s->waiters);
    return s;
}

weft_sem *weft_sem_new(int value)
{
    return sem_new(value, -1);
}

weft_sem *weft_bounded_sem_new(int value)
{
    return sem_new(value, value);
}

void weft_sem_free(weft_sem *s)
{
    if (!sem_valid(s)) return;
    spin_lock(&s->spin);
    size_t waiting = waitlist_count(&s->waiters) + (size_t)s->pending;
    spin_unlock(&s->spin);
    if (waiting) {
        diag_log("weft_sem_free: %zu waiter(s) still queued; the semaphore is left allocated",
                 waiting);
        return;
    }
    s->magic = SEM_FREED;
    mem_free(s, sizeof *s);
}

int weft_sem_acquire(weft_sem *s)
{
    if (!sem_valid(s)) return -EINVAL;
    spin_lock(&s->spin);
    int busy = sem_busy(s);
    if (!busy) s->value--;
    spin_unlock(&s->spin);
    if (!busy) return 0;
    waiter w;
    int r = waiter_init(&w, &s->spin, &s->waiters, "semaphore");
    if (r) return r;
    spin_lock(&s->spin);
    if (!sem_busy(s)) {
        s->value--;
        spin_unlock(&s->spin);
        return 0;
    }
    waitlist_append(&s->waiters, &w);
    r = waiter_park(&w, UINT64_MAX, 1);
    if (r == -ECANCELED) return r; /* left the queue holding nothing */
    spin_lock(&s->spin);
    s->pending--;
    if (r == WAIT_SIGNALED_CANCELLED) s->value++; /* give the permit back */
    sem_wake(s);
    spin_unlock(&s->spin);
    return r == WAIT_SIGNALED_CANCELLED ? -ECANCELED : r;
}

int weft_sem_release(weft_sem *s)
{
    if (!sem_valid(s)) return -EINVAL;
    spin_lock(&s->spin);
    int r = s->bound >= 0 && s->value >= s->bound ? -EINVAL : s->value == INT_MAX ? -EOVERFLOW : 0;
    if (!r) {
        s->value++;
        sem_wake(s);
    }
    spin_unlock(&s->spin);
    return r;
}

int weft_sem_locked(const weft_sem *s)
{
    if (!sem_valid(s)) return 0;
    spinlock *spin = &((weft_sem *)s)->spin;
    spin_lock(spin);
    int busy = sem_busy(s);
    spin_unlock(spin);
    return busy;
}
