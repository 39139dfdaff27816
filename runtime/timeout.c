/*
 * timeout.c: asyncio.timeout() scopes (see timeout.h).
 *
 * A scope belongs to the task that began it, which it holds a reference on. Its deadline
 * is a timer node on the heap of the worker that armed it; any thread may fire it. Firing
 * moves the scope ACTIVE -> EXPIRED (one CAS, so a firing timer, an already-past deadline
 * and reschedule agree on who expired it) and requests the task's cancellation with
 * task_cancel(), like any other canceller: the task's current wait returns -ECANCELED, or
 * the cancellation travels into the future it awaits, or its next wait returns -ECANCELED.
 *
 * Ending disarms the timer first (timer_cancel waits out a firing callback, so afterwards
 * nothing touches the scope). If the deadline fired, the scope withdraws its own request
 * (weft_uncancel) and converts it to -ETIMEDOUT only if the count is back at the snapshot
 * taken when it began, i.e. no other request (an outer scope's, an outside canceller's) is
 * outstanding: so nested scopes, and a scope begun in a task that was cancelled before,
 * each convert only their own expiry (asyncio's Timeout.__aexit__).
 */
#include "timeout.h"

#include <errno.h>

#include "alloc.h"
#include "clock.h"
#include "park.h"
#include "rt.h"
#include "worker.h"

#define TIMEOUT_MAGIC 0x746d6f75u /* "tmou" */

static void timeout_expire(weft_timeout *to)
{
    int active = TIMEOUT_ACTIVE;
    if (atomic_compare_exchange_strong_explicit(&to->state, &active, TIMEOUT_EXPIRED,
                                                memory_order_acq_rel, memory_order_acquire))
        task_cancel(to->task);
}

static void timeout_fire(timer_node *node)
{
    timeout_expire(container_of(node, weft_timeout, timer));
}

/* Arm the deadline on the current worker; one already past expires the scope at once, so
 * the next wait, even a weft_sleep(0), sees it (asyncio: the next loop iteration). */
static int timeout_arm(weft_timeout *to, uint64_t deadline)
{
    if (deadline == UINT64_MAX) return 0;
    if (deadline <= clock_ns()) {
        timeout_expire(to);
        return 0;
    }
    worker *w = worker_current();
    if (timer_arm(&w->timers, &to->timer, deadline)) return -ENOMEM;
    idle_watch_timers(&w->rt->idle, deadline); /* the task may keep this worker busy */
    return 0;
}

int timeout_scope_begin(weft_timeout *to, uint64_t deadline)
{
    task *t = task_current();
    if (!t) return -EPERM;
    to->task = t;
    atomic_init(&to->state, TIMEOUT_ACTIVE);
    to->snapshot = atomic_load_explicit(&t->cancel_requests, memory_order_relaxed);
    to->magic = TIMEOUT_MAGIC;
    timer_node_init(&to->timer, timeout_fire);
    weft_future_retain(&t->fut);
    int r = timeout_arm(to, deadline);
    if (r) weft_future_release(&t->fut);
    return r;
}

int timeout_scope_end(weft_timeout *to)
{
    timer_cancel(&to->timer);
    int expired = atomic_load_explicit(&to->state, memory_order_acquire) == TIMEOUT_EXPIRED;
    to->magic = 0;
    weft_future_release(&to->task->fut);
    if (!expired) return 0;
    return weft_uncancel() <= to->snapshot ? -ETIMEDOUT : -ECANCELED;
}

/* ---- public API ---------------------------------------------------------------------- */

static int delay_valid(double delay)
{
    return delay == delay; /* not NaN; a negative delay means no deadline */
}

weft_timeout *weft_timeout_begin(double delay)
{
    if (!delay_valid(delay)) {
        errno = EINVAL;
        return NULL;
    }
    if (!task_current()) {
        errno = EPERM;
        return NULL;
    }
    weft_timeout *to = mem_alloc(sizeof *to);
    if (!to) {
        errno = ENOMEM;
        return NULL;
    }
    int r = timeout_scope_begin(to, clock_deadline(delay));
    if (r) {
        mem_free(to, sizeof *to);
        errno = -r;
        return NULL;
    }
    return to;
}

int weft_timeout_reschedule(weft_timeout *to, double delay)
{
    if (!to || to->magic != TIMEOUT_MAGIC || !delay_valid(delay)) return -EINVAL;
    if (!worker_current()) return -EPERM; /* the deadline goes on this worker's heap */
    timer_cancel(&to->timer);
    if (atomic_load_explicit(&to->state, memory_order_acquire) != TIMEOUT_ACTIVE)
        return -EPERM; /* expired: asyncio's "Cannot reschedule expiring timeout" */
    return timeout_arm(to, clock_deadline(delay));
}

int weft_timeout_end(weft_timeout *to)
{
    if (!to || to->magic != TIMEOUT_MAGIC) return -EINVAL;
    if (task_current() != to->task) return -EPERM;
    int r = timeout_scope_end(to);
    mem_free(to, sizeof *to);
    return r;
}
