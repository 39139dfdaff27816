/*
 * barrier.c: asyncio.Barrier over the one waiting mechanism (waitq.h), with asyncio's
 * state machine (asyncio-semantics.md 1.5):
 *
 *   FILLING    arrivals take index = count++ and wait; the one that makes count == parties
 *              moves to DRAINING and wakes everyone
 *   DRAINING   woken arrivals leave with their index; new arrivals wait for the next cycle
 *   RESETTING  (reset() while count > 0) waiting and woken arrivals leave with -EPIPE; new
 *              arrivals wait for the next cycle
 *   BROKEN     (abort()) everyone, waiting or new, gets -EPIPE until reset()
 *
 * `spin` guards all of it. `count` is the number of arrivals inside the barrier, from
 * their index to their exit; every exit (index, -EPIPE, -ECANCELED) decrements it, and the
 * exit that brings it to 0 in DRAINING or RESETTING returns the barrier to FILLING and
 * wakes the arrivals waiting for that. One waiter list holds both kinds of waiter; every
 * state change wakes it whole, and each woken arrival re-reads the state under `spin`.
 * So, as in asyncio, a woken arrival's outcome is decided when it resumes: it takes the
 * state it finds then (DRAINING: its index; RESETTING or BROKEN: -EPIPE). Its exit and
 * that decision are one critical section, so `count` tells exactly who has not decided.
 * Cancellation breaks nothing (asyncio, not API.md): a cancelled arrival just exits.
 * No grant is ever handed to one waiter alone, so there is nothing to compensate.
 * Freeing a barrier someone waits on is a usage error: free() refuses (and logs) while an
 * arrival is queued or still inside.
 */
#include <errno.h>

#include "alloc.h"
#include "waitq.h"
#include "weft.h"

#define BARRIER_MAGIC 0x62617272u /* "barr" */
#define BARRIER_FREED 0x66726565u /* "free" */

enum { BARRIER_FILLING, BARRIER_DRAINING, BARRIER_RESETTING, BARRIER_BROKEN };

struct weft_barrier {
    int parties;
    unsigned magic;
    spinlock spin;
    int state;
    int count;
    waitlist waiters;
};

static int barrier_valid(const weft_barrier *b)
{
    return b && b->magic == BARRIER_MAGIC;
}

static void barrier_wake_all(weft_barrier *b)
{
    waitlist_signal_all(&b->waiters, 0, NULL);
}

/* With `spin` held: an arrival leaves the barrier. */
static void barrier_exit(weft_barrier *b)
{
    if (--b->count == 0 && (b->state == BARRIER_DRAINING || b->state == BARRIER_RESETTING)) {
        b->state = BARRIER_FILLING;
        barrier_wake_all(b);
    }
}

weft_barrier *weft_barrier_new(int parties)
{
    if (parties < 1) {
        errno = EINVAL;
        return NULL;
    }
    weft_barrier *b = mem_alloc(sizeof *b);
    if (!b) {
        errno = ENOMEM;
        return NULL;
    }
    b->parties = parties;
    b->magic = BARRIER_MAGIC;
    spin_init(&b->spin);
    b->state = BARRIER_FILLING;
    b->count = 0;
    waitlist_init(&b->waiters);
    return b;
}

void weft_barrier_free(weft_barrier *b)
{
    if (!barrier_valid(b)) return;
    spin_lock(&b->spin);
    int busy = !waitlist_empty(&b->waiters) || b->count; /* queued, or inside and not yet left */
    spin_unlock(&b->spin);
    if (busy) {
        diag_log("weft_barrier_free: tasks still wait on the barrier; it is left allocated");
        return;
    }
    b->magic = BARRIER_FREED;
    mem_free(b, sizeof *b);
}

int weft_barrier_wait(weft_barrier *b)
{
    if (!barrier_valid(b)) return -EINVAL;
    waiter w;
    int can_wait = waiter_init(&w, &b->spin, &b->waiters, "barrier") == 0;
    int index = -1, r;
    spin_lock(&b->spin);
    for (;;) {
        if (index >= 0 && b->state != BARRIER_FILLING) { /* tripped, reset or aborted */
            r = b->state == BARRIER_DRAINING ? index : -EPIPE;
            break;
        }
        if (index < 0 && b->state == BARRIER_BROKEN) {
            r = -EPIPE;
            break;
        }
        if (index < 0 && b->state == BARRIER_FILLING && b->count + 1 == b->parties) {
            r = index = b->count++; /* the last arrival trips it */
            b->state = BARRIER_DRAINING;
            barrier_wake_all(b);
            break;
        }
        if (!can_wait) {
            r = -EPERM;
            break;
        }
        if (index < 0 && b->state == BARRIER_FILLING) index = b->count++;
        waitlist_append(&b->waiters, &w);
        r = waiter_park(&w, UINT64_MAX, 1);
        if (r == 0) waiter_init(&w, &b->spin, &b->waiters, "barrier"); /* as above: cannot fail */
        spin_lock(&b->spin);
        if (r) { /* -ECANCELED, or WAIT_SIGNALED_CANCELLED */
            r = -ECANCELED;
            can_wait = 0;
            break;
        }
    }
    if (index >= 0) barrier_exit(b);
    spin_unlock(&b->spin);
    return r;
}

int weft_barrier_reset(weft_barrier *b)
{
    if (!barrier_valid(b)) return -EINVAL;
    spin_lock(&b->spin);
    b->state = b->count > 0 ? BARRIER_RESETTING : BARRIER_FILLING;
    barrier_wake_all(b);
    spin_unlock(&b->spin);
    return 0;
}

int weft_barrier_abort(weft_barrier *b)
{
    if (!barrier_valid(b)) return -EINVAL;
    spin_lock(&b->spin);
    b->state = BARRIER_BROKEN;
    barrier_wake_all(b);
    spin_unlock(&b->spin);
    return 0;
}

int weft_barrier_parties(const weft_barrier *b)
{
    return barrier_valid(b) ? b->parties : -EINVAL;
}

static int barrier_read(const weft_barrier *b, int *state, int *count)
{
    if (!barrier_valid(b)) return -EINVAL;
    spinlock *spin = &((weft_barrier *)b)->spin;
    spin_lock(spin);
    *state = b->state;
    *count = b->count;
    spin_unlock(spin);
    return 0;
}

int weft_barrier_n_waiting(const weft_barrier *b)
{
    int state, count, r = barrier_read(b, &state, &count);
    return r ? r : state == BARRIER_FILLING ? count : 0;
}

int weft_barrier_broken(const weft_barrier *b)
{
    int state, count;
    return barrier_read(b, &state, &count) == 0 && state == BARRIER_BROKEN;
}
