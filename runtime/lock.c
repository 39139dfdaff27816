/*
 * lock.c: asyncio.Lock over the one waiting mechanism (waitq.h), with direct hand-off.
 *
 * `state` is one atomic word: LOCK_HELD and LOCK_QUEUED. The fast paths are single CAS
 * operations on exact words (0 -> HELD acquires, HELD -> 0 releases), so neither ever
 * passes a queued waiter. LOCK_QUEUED is set and cleared only under `spin`, which also
 * guards `waiters`; while it is set nobody but the holder of `spin` changes the word, and
 * the word is never QUEUED without HELD: the lock is not free while anyone waits.
 * `contended` equals the QUEUED bit whenever `spin` is free (both change only under it);
 * the fast paths read it as a hint (see set_contended).
 *
 * Grant: a release that finds QUEUED pops the first waiter and signals it; the word stays
 * HELD and the waiter owns the lock when waiter_park returns (no barging, FIFO). QUEUED
 * goes when the list is empty at a release; a waiter cancelled while queued just leaves the
 * list (QUEUED may then outlive the last waiter until the next release).
 * Compensation: a waiter cancelled after its grant (WAIT_SIGNALED_CANCELLED) releases the
 * lock it was handed, which grants the next waiter: no wake-up is lost.
 * Orders: the acquiring CAS (acquire) pairs with the releasing CAS or store (release); a
 * hand-off is published by waiter_signal's release store, which the woken waiter reads
 * (acquire).
 * Freeing a lock that is held or waited on is a usage error; free() refuses (and logs)
 * while a waiter is queued.
 */
#include "lock.h"

#include <errno.h>

#include "alloc.h"
#include "waitq.h"

#define LOCK_MAGIC 0x6c6f636bu /* "lock" */
#define LOCK_FREED 0x66726565u /* "free" */

enum { LOCK_HELD = 1, LOCK_QUEUED = 2 };

struct weft_lock {
    atomic_int state;
    unsigned magic;
    atomic_int contended; /* QUEUED as `spin`'s last holder left it */
    spinlock spin;
    waitlist waiters;
};

/* The fast paths look at `contended`, never at `state`, before their CAS: a CAS right
 * after a load of the word it writes costs ~2 ns more on x86 (mutex_contention, 1 worker:
 * ~22 -> ~18 ns per acquire), while a CAS that fails costs a locked instruction on a
 * contended line. The hint only chooses between the two; correctness rests on `state`
 * alone, since the fast paths' CAS operations expect exact words. Written under `spin`. */
static void set_contended(weft_lock *l, int queued)
{
    if (atomic_load_explicit(&l->contended, memory_order_relaxed) != queued)
        atomic_store_explicit(&l->contended, queued, memory_order_relaxed);
}

int lock_valid(const weft_lock *l)
{
    return l && l->magic == LOCK_MAGIC;
}

static int lock_try(weft_lock *l)
{
    int expected = 0;
    return !atomic_load_explicit(&l->contended, memory_order_relaxed) &&
           atomic_compare_exchange_strong_explicit(&l->state, &expected, LOCK_HELD,
                                                   memory_order_acquire, memory_order_relaxed);
}

/* The wait for a lock found taken, kept out of the fast path's frame. */
static noinline int acquire_slow(weft_lock *l, int cancellable)
{
    waiter w;
    int r = waiter_init(&w, &l->spin, &l->waiters, "lock");
    if (r) return r;
    spin_lock(&l->spin);
    int s = atomic_load_explicit(&l->state, memory_order_relaxed);
    for (;;) {
        int next = s ? LOCK_HELD | LOCK_QUEUED : LOCK_HELD;
        if (s == next) break;
        if (atomic_compare_exchange_weak_explicit(&l->state, &s, next, memory_order_acquire,
                                                  memory_order_relaxed)) {
            if (next == LOCK_HELD) { /* released meanwhile, nobody queued: ours */
                spin_unlock(&l->spin);
                return 0;
            }
            break;
        }
    }
    set_contended(l, 1);
    waitlist_append(&l->waiters, &w);
    r = waiter_park(&w, UINT64_MAX, cancellable);
    if (r == WAIT_SIGNALED_CANCELLED) {
        weft_lock_release(l); /* pass the grant on */
        return -ECANCELED;
    }
    return r;
}

int lock_acquire(weft_lock *l, int cancellable)
{
    return lock_try(l) ? 0 : acquire_slow(l, cancellable);
}

/* ---- public API ---------------------------------------------------------------------- */

weft_lock *weft_lock_new(void)
{
    weft_lock *l = mem_alloc(sizeof *l);
    if (!l) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&l->state, 0);
    atomic_init(&l->contended, 0);
    l->magic = LOCK_MAGIC;
    spin_init(&l->spin);
    waitlist_init(&l->waiters);
    return l;
}

void weft_lock_free(weft_lock *l)
{
    if (!lock_valid(l)) return;
    spin_lock(&l->spin);
    size_t waiting = waitlist_count(&l->waiters);
    spin_unlock(&l->spin);
    if (waiting) {
        diag_log("weft_lock_free: %zu waiter(s) still queued; the lock is left allocated", waiting);
        return;
    }
    l->magic = LOCK_FREED;
    mem_free(l, sizeof *l);
}

int weft_lock_acquire(weft_lock *l)
{
    if (!lock_valid(l)) return -EINVAL;
    return lock_acquire(l, 1);
}

/* A release that found waiters queued (or the lock not held). */
static noinline int release_slow(weft_lock *l)
{
    for (;;) {
        int s = atomic_load_explicit(&l->state, memory_order_relaxed);
        while (s == LOCK_HELD) {
            if (atomic_compare_exchange_weak_explicit(&l->state, &s, 0, memory_order_release,
                                                      memory_order_relaxed))
                return 0;
        }
        if (!(s & LOCK_HELD)) return -EPERM;
        spin_lock(&l->spin);
        if (atomic_load_explicit(&l->state, memory_order_relaxed) & LOCK_QUEUED) break;
        spin_unlock(&l->spin); /* another release cleared QUEUED first: start over */
    }
    int granted = waitlist_signal_first(&l->waiters, 0, NULL);
    int next = !granted ? 0 : waitlist_empty(&l->waiters) ? LOCK_HELD : LOCK_HELD | LOCK_QUEUED;
    atomic_store_explicit(&l->state, next, memory_order_release);
    set_contended(l, next == (LOCK_HELD | LOCK_QUEUED));
    spin_unlock(&l->spin);
    return 0;
}

int weft_lock_release(weft_lock *l)
{
    if (!lock_valid(l)) return -EINVAL;
    int held = LOCK_HELD; /* see set_contended */
    if (!atomic_load_explicit(&l->contended, memory_order_relaxed) &&
        atomic_compare_exchange_strong_explicit(&l->state, &held, 0, memory_order_release,
                                                memory_order_relaxed))
        return 0;
    return release_slow(l);
}

int weft_lock_locked(const weft_lock *l)
{
    if (!lock_valid(l)) return 0;
    return atomic_load_explicit(&((weft_lock *)l)->state, memory_order_acquire) & LOCK_HELD;
}
