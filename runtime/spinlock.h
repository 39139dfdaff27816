/*
 * spinlock: a test-and-test-and-set lock for critical sections of a few dozen
 * instructions (wait lists, timer heaps, the suspended-task registry). Acquire pairs with
 * release; a holder never suspends or blocks inside one. After a short spin the waiter
 * yields the CPU, so a descheduled holder costs time, not a livelock.
 */
#ifndef WEFT_SPINLOCK_H
#define WEFT_SPINLOCK_H

#include <sched.h>
#include <stdatomic.h>

#include "common.h"

typedef struct spinlock {
    atomic_int locked;
} spinlock;

#define SPINLOCK_INIT {0}

static inline void spin_init(spinlock *l)
{
    atomic_init(&l->locked, 0);
}

/* One round of waiting for another thread, the spins-th (counting from 0 or 1). The rounds
 * back off exponentially, 1, 2, 4 ... 64 pauses, so a waiter looks at the holder's cache
 * line less and less often: under contention the holder then works on its lines without
 * losing them to every look, and the lock tends to stay a while on one core (a queue
 * hammered from two cores: ~150 -> ~45 ns per item). From round SPIN_ROUNDS on, the CPU is
 * given up instead (after ~700 pauses), so a descheduled peer costs time, not a livelock. */
#define SPIN_ROUNDS 16
static inline void spin_pause(unsigned spins)
{
    if (spins >= SPIN_ROUNDS) {
        sched_yield();
        return;
    }
    for (unsigned i = 1u << (spins < 6 ? spins : 6); i > 0; i--) cpu_relax();
}

static noinline void spin_lock_contended(spinlock *l)
{
    for (unsigned spins = 0;;) {
        while (atomic_load_explicit(&l->locked, memory_order_relaxed)) spin_pause(++spins);
        if (!atomic_exchange_explicit(&l->locked, 1, memory_order_acquire)) return;
    }
}

static inline void spin_lock(spinlock *l)
{
    if (unlikely(atomic_exchange_explicit(&l->locked, 1, memory_order_acquire)))
        spin_lock_contended(l);
}

static inline int spin_trylock(spinlock *l)
{
    return !atomic_load_explicit(&l->locked, memory_order_relaxed) &&
           !atomic_exchange_explicit(&l->locked, 1, memory_order_acquire);
}

/* Wait until whoever holds l has left, without taking it (acquire: what the holder did
 * inside happens before our return). */
static inline void spin_wait_unlocked(spinlock *l)
{
    for (unsigned spins = 0; atomic_load_explicit(&l->locked, memory_order_acquire);)
        spin_pause(++spins);
}

static inline void spin_unlock(spinlock *l)
{
    atomic_store_explicit(&l->locked, 0, memory_order_release);
}

#endif
