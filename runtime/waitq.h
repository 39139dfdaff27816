/*
 * waitq: the one waiting mechanism. Every wait in weft (futures, sleep, locks, queues,
 * timeouts, I/O) parks its caller on a `waiter` record that lives on the caller's stack,
 * so waiting allocates nothing.
 *
 * A waiter ends exactly once, by one move out of WAITING:
 *   SIGNALED  a waker granted it (result and value are then valid),
 *   CANCELLED the waiting task's cancellation won,
 *   TIMEDOUT  its deadline won.
 * The loser of that race compensates (a cancelled waiter that was granted hands the grant
 * back): this is how no wake-up is ever lost.
 *
 * Lifetime: a waiter in a list is guarded by the list owner's spinlock (`lock`); all of
 * its transitions happen under that lock, so "in the list" == WAITING there, and a waker
 * that pops a waiter always wins it. Someone other than the waiter itself who ends a wait
 * (a waker, a deadline) marks it ENDING, wakes the task or thread, and only then stores
 * how it ended; the waiter does not leave its wait while it sees ENDING. So the ender may
 * touch the waiter, its task and its parker until that last store, and never after.
 *
 * Inside a task the waiter suspends the task; on a plain thread it blocks on a futex
 * (parker.c); on a worker thread outside any task it refuses (-EPERM).
 *
 * How a primitive uses it (a lock with direct hand-off, for example):
 *
 *     waiter w;                                   // on this stack; allocates nothing
 *     int r = waiter_init(&w, &l->lock, &l->waiters, "lock");   // before taking the lock
 *     if (r) return r;
 *     spin_lock(&l->lock);
 *     if (can take it now) { take; spin_unlock(&l->lock); return 0; }   // w is just dropped
 *     waitlist_append(&l->waiters, &w);
 *     r = waiter_park(&w, UINT64_MAX, 1);        // releases l->lock
 *     if (r == WAIT_SIGNALED_CANCELLED) { pass the grant on; return -ECANCELED; }
 *     return r;                                   // 0: granted; -ECANCELED; -ETIMEDOUT
 *
 *   and the waker, holding l->lock:
 *     waitlist_signal_first(&l->waiters, 0, grant);
 *
 * waiter_park() checks the task's pending cancellation (and runtime shutdown) itself before
 * every suspension, so a primitive needs no cancellation code beyond the two lines above.
 */
#ifndef WEFT_WAITQ_H
#define WEFT_WAITQ_H

#include <stdatomic.h>
#include <stdint.h>

#include "spinlock.h"
#include "timer.h"

struct task;
struct parker;

enum { WAITER_WAITING, WAITER_ENDING, WAITER_SIGNALED, WAITER_CANCELLED, WAITER_TIMEDOUT };

/* waiter_park() results besides 0 (signaled), -ECANCELED and -ETIMEDOUT: */
#define WAIT_SIGNALED_CANCELLED 1 /* signaled, but a cancellation arrived before the task
                                     resumed: undo the grant and return -ECANCELED */

typedef struct waiter {
    struct waiter *next, *prev;
    struct task *task;      /* the waiting task, or NULL */
    struct parker *parker;  /* the waiting thread, when task is NULL */
    spinlock *lock;         /* guards list membership; NULL when in no list */
    struct waitlist *list;
    atomic_int state;
    int result;             /* from the waker */
    void *value;            /* from the waker (a queue item, a lock grant...) */
    const char *what;       /* what is waited on, for task dumps */
} waiter;

/* A FIFO of waiters as a ring: `last` is the newest, and its `next` the oldest, so a list
 * is one pointer (NULL: empty) in every future, task and primitive. Every waiter's `prev`
 * is right except the oldest's, which nothing reads (removing the oldest goes through
 * `last`): so a pop writes nothing of the waiter after it, whose stack is usually cold
 * (a contended lock's convoy), and a store there would hold up the grant's locked
 * instructions. waitlist_signal_first prefetches it instead. */
typedef struct waitlist {
    waiter *last;
} waitlist;

static inline void waitlist_init(waitlist *l)
{
    l->last = NULL;
}

static inline waiter *waitlist_first(const waitlist *l) /* the oldest, or NULL */
{
    return l->last ? l->last->next : NULL;
}

static inline int waitlist_empty(const waitlist *l)
{
    return l->last == NULL;
}

struct task *task_current(void);
int waiter_init_thread(waiter *w);

/* Bind w to the caller (task or thread). 0, or -EPERM on a worker outside a task, or
 * -ENOMEM for a thread whose parker cannot be made. A waiter that turns out not to be
 * needed (never appended, never parked) is simply dropped. Its links are written when it
 * is appended, and result and value when it is signalled: they are read only then. */
static inline int waiter_init(waiter *w, spinlock *lock, waitlist *list, const char *what)
{
    w->lock = lock;
    w->list = list;
    w->what = what;
    atomic_store_explicit(&w->state, WAITER_WAITING, memory_order_relaxed);
    w->task = task_current();
    return w->task ? 0 : waiter_init_thread(w);
}

/* List operations; the caller holds the list's lock. */
static inline void waitlist_append(waitlist *l, waiter *w)
{
    waiter *last = l->last;
    if (last) {
        w->next = last->next;
        w->prev = last;
        last->next = w;
    } else {
        w->next = w;
    }
    l->last = w;
}

static inline void waitlist_remove(waitlist *l, waiter *w)
{
    waiter *last = l->last;
    if (w->next == w) {
        l->last = NULL;
    } else if (last->next == w) { /* the oldest: its successor becomes the oldest */
        last->next = w->next;
    } else { /* w->prev is right, and so must its successor's stay, unless that is the oldest */
        w->prev->next = w->next;
        if (w == last) l->last = w->prev;
        else w->next->prev = w->prev;
    }
}

static inline waiter *waitlist_pop(waitlist *l)
{
    waiter *w = waitlist_first(l);
    if (w) waitlist_remove(l, w);
    return w;
}

static inline size_t waitlist_count(const waitlist *l) /* for messages: walks the list */
{
    size_t n = 0;
    if (l->last)
        for (const waiter *w = l->last->next;; w = w->next) {
            n++;
            if (w == l->last) break;
        }
    return n;
}

/* Grant w, just popped from its list with the list's lock held (so it is WAITING): it
 * ends SIGNALED with result and value, and its task or thread is woken. */
void waiter_signal(waiter *w, int result, void *value);
/* The same for the first waiter of l (1, or 0 if l is empty) or for all of them; the
 * caller holds l's lock. */
int waitlist_signal_first(waitlist *l, int result, void *value);
void waitlist_signal_all(waitlist *l, int result, void *value);

/* Wait until w ends or `deadline` (CLOCK_MONOTONIC ns, UINT64_MAX = none) passes. Called
 * with w's list lock held, just after the append; it releases the lock. With `cancellable`
 * 0, cancellation requests stay pending for a later wait. */
int waiter_park(waiter *w, uint64_t deadline, int cancellable);

/* Pass a task's pending cancellation (or the runtime's shutdown) into a wait about to
 * start: -ECANCELED if the current task must stop waiting now, else 0. */
int wait_check_cancel(void);

#endif
