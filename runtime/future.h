/*
 * future: a result that arrives later, completed once from any thread (weft_future).
 * A task is a future that runs a coroutine (task.h embeds this struct first).
 *
 * `lock` guards the waiters, the hooks, the callbacks and the move to DONE; `state` is DONE
 * only after error/result are written (release), so a reader that sees DONE (acquire) reads
 * them without the lock. `refs` counts handles; the last release frees the future.
 *
 * Sole ownership: waiting, hooking, adding callbacks, retaining and releasing all need a
 * reference, so a caller that finds `refs` equal to the references it holds itself
 * (future_refs_are, an acquire load that pairs with every release's decrement) is alone
 * with the future: it may complete it without the lock and drop its last reference without
 * a read-modify-write. (A task's own code may retain it through weft_current(); the task's
 * runner checks only at points where that code is not running.)
 *
 * Hooks are how one waiter waits for many futures (waitset.c): a caller-owned record that
 * completion runs under `lock`, right after signalling the waiters. Under `lock`, a hook
 * that was added is in the list exactly while the future is pending, so removing it with
 * the lock held either unlinks it or finds it has already run to its end.
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

typedef struct future_hook {
    struct future_hook *next, *prev;
    /* Runs on the completing thread with f->lock held: it must be short, must not take
     * f->lock, and may take only locks that are never held while taking a future's. */
    void (*fire)(struct future_hook *h, weft_future *f);
} future_hook;

struct weft_future {
    atomic_uint state;
    atomic_uint refs;
    uint32_t magic;
    uint8_t is_task;
    spinlock lock;
    int error;               /* a task's: also weft_fail()'s while it runs (task.c) */
    void *result;
    waitlist waiters;
    runnable *callbacks;     /* callback_items, newest first; run oldest first once done */
    future_hook *hooks;      /* run (and dropped) by completion */
    struct weft_rt *rt;      /* where done-callbacks run when completed off-runtime */
};

void future_init(weft_future *f, int is_task, struct weft_rt *rt);
/* Complete f: 0, or -EALREADY if it was done. Wakes every waiter, schedules callbacks.
 * The caller need not hold a reference: f is not touched after the lock is released,
 * and the last release waits for the lock (see weft_future_release). */
int future_complete(weft_future *f, int error, void *result);
/* Complete a pending f whose references are all the caller's (future_refs_are): nobody else
 * can wait for it, hook it or add callbacks meanwhile, so no lock is needed. */
void future_complete_alone(weft_future *f, int error, void *result);
/* 1 if f has exactly `held` references, which the caller says it holds: then nobody else
 * holds one, so nobody else can take one or use f in any way that needs one. */
static inline int future_refs_are(weft_future *f, unsigned held)
{
    return atomic_load_explicit(&f->refs, memory_order_acquire) == held;
}
/* Wait for f (task or thread) until deadline: 0 (f is done), -ECANCELED, -ETIMEDOUT, -EPERM. */
int future_wait(weft_future *f, uint64_t deadline, int cancellable);
static inline int future_valid(const weft_future *f)
{
    return f && f->magic == FUTURE_MAGIC;
}
/* 0: h will fire when f completes; -EALREADY: f is done and h was not added. */
int future_hook_add(weft_future *f, future_hook *h);
/* Take back a hook that was added: after this returns it is not running and never runs. */
void future_hook_remove(weft_future *f, future_hook *h);

static inline int future_is_done(const weft_future *f)
{
    return atomic_load_explicit(&f->state, memory_order_acquire) == FUTURE_DONE;
}

#endif
