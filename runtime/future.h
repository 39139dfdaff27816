/*
 * future: a result that arrives later, completed once from any thread (weft_future).
 * A task is a future that runs a coroutine (task.h embeds this struct first).
 *
 * `lock` guards the waiters, the callbacks and the move to DONE; `state` is DONE only
 * after error/result are written (release), so a reader that sees DONE (acquire) reads
 * them without the lock. `refs` counts handles; the last release frees the future.
 */
#ifndef WEFT_FUTURE_H
#define WEFT_FUTURE_H

#include <stdatomic.h>
#include <stdint.h>

#include "runnable.h"
#include "spinlock.h"
#include "waitq.h"

#define FUTURE_MAGIC 0x77656674u /* "weft" */
#define FUTURE_FREED 0x66726565u /* "free" */

enum { FUTURE_PENDING = 0, FUTURE_DONE = 1 };

struct weft_rt;

struct weft_future {
    atomic_uint state;
    atomic_uint refs;
    uint32_t magic;
    uint8_t is_task;
    spinlock lock;
    int error;
    void *result;
    waitlist waiters;
    runnable_list callbacks; /* callback_items, run in order once done */
    struct weft_rt *rt;      /* where done-callbacks run when completed off-runtime */
};

void future_init(weft_future *f, int is_task, struct weft_rt *rt);
/* Complete f: 0, or -EALREADY if it was done. Wakes every waiter, schedules callbacks.
 * The caller need not hold a reference: f is not touched after the lock is released,
 * and the last release waits for the lock (see weft_future_release). */
int future_complete(weft_future *f, int error, void *result);
/* Wait for f (task or thread) until deadline: 0 (f is done), -ECANCELED, -ETIMEDOUT, -EPERM. */
int future_wait(weft_future *f, uint64_t deadline, int cancellable);
int future_valid(const weft_future *f);

static inline int future_is_done(const weft_future *f)
{
    return atomic_load_explicit(&f->state, memory_order_acquire) == FUTURE_DONE;
}

#endif
