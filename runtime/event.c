/*
 * event.c: asyncio.Event over the one waiting mechanism (waitq.h).
 *
 * `spin` guards `waiters` and every move of `flag` from 0 to 1: set() raises the flag and
 * signals every queued waiter in one critical section, and a waiter queues only after
 * seeing the flag down under the same lock, so no waiter misses a set(). clear() only
 * lowers the flag: waiters already signalled stay woken and return 0 (asyncio's rule).
 * Nothing is granted, so nothing is compensated: a waiter cancelled after the wake-up
 * returns -ECANCELED, and its wake-up belonged to it alone.
 * Orders: set() stores the flag with release, wait() loads it with acquire, so what the
 * setter wrote before set() is visible after wait() (a signal publishes it the same way).
 * Freeing an event someone waits on is a usage error; free() refuses (and logs) while a
 * waiter is queued (a woken waiter no longer touches the event).
 */
#include <errno.h>

#include "alloc.h"
#include "waitq.h"
#include "weft.h"

#define EVENT_MAGIC 0x65766e74u /* "evnt" */
#define EVENT_FREED 0x66726565u /* "free" */

struct weft_event {
    atomic_int flag;
    unsigned magic;
    spinlock spin;
    waitlist waiters;
};

static int event_valid(const weft_event *e)
{
    return e && e->magic == EVENT_MAGIC;
}

weft_event *weft_event_new(void)
{
    weft_event *e = mem_alloc(sizeof *e);
    if (!e) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&e->flag, 0);
    e->magic = EVENT_MAGIC;
    spin_init(&e->spin);
    waitlist_init(&e->waiters);
    return e;
}

void weft_event_free(weft_event *e)
{
    if (!event_valid(e)) return;
    spin_lock(&e->spin);
    size_t waiting = waitlist_count(&e->waiters);
    spin_unlock(&e->spin);
    if (waiting) {
        diag_log("weft_event_free: %zu waiter(s) still queued; the event is left allocated",
                 waiting);
        return;
    }
    e->magic = EVENT_FREED;
    mem_free(e, sizeof *e);
}

int weft_event_set(weft_event *e)
{
    if (!event_valid(e)) return -EINVAL;
    spin_lock(&e->spin);
    if (!atomic_load_explicit(&e->flag, memory_order_relaxed)) {
        atomic_store_explicit(&e->flag, 1, memory_order_release);
        waitlist_signal_all(&e->waiters, 0, NULL);
    }
    spin_unlock(&e->spin);
    return 0;
}

int weft_event_clear(weft_event *e)
{
    if (!event_valid(e)) return -EINVAL;
    atomic_store_explicit(&e->flag, 0, memory_order_relaxed);
    return 0;
}

int weft_event_is_set(const weft_event *e)
{
    return event_valid(e) && atomic_load_explicit(&((weft_event *)e)->flag, memory_order_acquire);
}

int weft_event_wait(weft_event *e)
{
    if (!event_valid(e)) return -EINVAL;
    if (atomic_load_explicit(&e->flag, memory_order_acquire)) return 0;
    waiter w;
    int r = waiter_init(&w, &e->spin, &e->waiters, "event");
    if (r) return r;
    spin_lock(&e->spin);
    if (atomic_load_explicit(&e->flag, memory_order_acquire)) {
        spin_unlock(&e->spin);
        return 0;
    }
    waitlist_append(&e->waiters, &w);
    r = waiter_park(&w, UINT64_MAX, 1);
    return r == WAIT_SIGNALED_CANCELLED ? -ECANCELED : r;
}
