/*
 * waitset: one waiter waiting for many futures (gather, wait, as_completed).
 *
 * Why this shape. A waiter record ends once, and waiter_park() watches that one record
 * (waitq.h), so a task cannot park on one waiter per future: the first completion would
 * wake it, and its park loop would go back to sleep on its own record. Instead the set has
 * ONE waiting point, a waitlist under the set's spinlock where the caller parks an ordinary
 * waiter (so deadlines, cancellation, runtime shutdown and the futex of a foreign thread are
 * all waiter_park()'s), and every future carries a small hook of the set (future.h) that
 * completion runs under the future's lock: the hook notes the completion in the set and,
 * once the set's condition holds, signals the parked waiter the usual way. A waiter that is
 * cancelled after it was signalled passes the wake-up on, as waitq.h asks.
 *
 * The hooks live in the set's entry array: WAITSET_INLINE entries inside the set (on the
 * caller's stack), a heap array only beyond that. Done-callbacks would cost an allocation
 * and a trip through a worker per future, could not be taken back when the wait ends early,
 * and need a runtime to run on, which a foreign thread's plain futures may not have.
 *
 * Locks: a hook takes set->lock while its future's lock is held; nothing takes a future's
 * lock while holding set->lock. set->lock guards every field but `entries`, `n` and
 * `late_after` (fixed by init) and each entry's hook links (its future's lock). A set stays
 * where it was made until waitset_destroy(), which takes back the hooks that have not run;
 * afterwards no hook touches it.
 */
#ifndef WEFT_WAITSET_H
#define WEFT_WAITSET_H

#include <stddef.h>
#include <stdint.h>

#include "future.h"
#include "spinlock.h"
#include "waitq.h"

#define WAITSET_INLINE 8

/* When the set's waiter is woken: */
enum {
    WAITSET_ALL,           /* every future is done */
    WAITSET_ANY,           /* one is done */
    WAITSET_FIRST_ERROR,   /* one failed or was cancelled, or all are done (gather) */
    WAITSET_FIRST_FAILURE, /* one failed other than by cancellation, or all are done */
    WAITSET_READY,         /* the ready list is not empty (as_completed) */
};

typedef struct waitset_entry {
    future_hook hook;
    struct waitset *set;
    weft_future *f;
    struct waitset_entry *next_ready;
    uint8_t hooked; /* the hook was added to f (f was pending) */
    uint8_t fired;  /* its completion was noted */
} waitset_entry;

typedef struct waitset {
    spinlock lock;
    waitlist waiters;
    int until;
    size_t n, ndone;
    int first_error;     /* of the first future to fail or be cancelled */
    int first_failure;   /* of the first future to fail other than by cancellation */
    uint64_t late_after; /* completions from this time on are counted but not listed */
    waitset_entry *ready_head, *ready_tail; /* completion order */
    waitset_entry *entries;
    waitset_entry inline_entries[WAITSET_INLINE];
} waitset;

/* Hook every fs[i]; futures already done are noted at once, in argument order. `late_after`
 * (CLOCK_MONOTONIC ns, UINT64_MAX: never) is as_completed's overall deadline. 0/-ENOMEM. */
int waitset_init(waitset *s, weft_future *const *fs, size_t n, int until, uint64_t late_after);
/* Wait until the condition holds: 0, -ECANCELED, -ETIMEDOUT (deadline in CLOCK_MONOTONIC
 * ns), -EPERM (on a worker outside a task, when it would have to wait). */
int waitset_wait(waitset *s, uint64_t deadline, int cancellable, const char *what);
int waitset_satisfied(waitset *s);
int waitset_first_error(waitset *s);
/* The next future of the ready list (completion order), or NULL. */
weft_future *waitset_pop_ready(waitset *s);
void waitset_destroy(waitset *s);

#endif
