/*
 * waitq.c: the one waiting mechanism (see waitq.h for the protocol).
 *
 * Transitions out of WAITING are CAS operations; for a waiter in a list they are also
 * made under the list's lock, so a waker that popped a waiter and a cancelling waiter
 * that wants to unlink itself never disagree about membership. A deadline is a timer
 * node inside the waiter; the waiter always disarms it (timer_cancel waits out a firing
 * callback) before returning, so the record can die with the stack frame.
 */
#include "waitq.h"

#include <errno.h>

#include "clock.h"
#include "parker.h"
#include "rt.h"
#include "task.h"
#include "worker.h"

static void owner_retain(waiter *w)
{
    if (w->task) weft_future_retain(&w->task->fut);
    else parker_retain(w->parker);
}

static void owner_wake_release(task *t, parker *p)
{
    if (t) {
        task_wake(t);
        weft_future_release(&t->fut);
    } else {
        parker_unpark(p);
        parker_release(p);
    }
}

static void owner_release(waiter *w)
{
    if (w->task) weft_future_release(&w->task->fut);
    else parker_release(w->parker);
}

int waiter_init(waiter *w, spinlock *lock, waitlist *list, const char *what)
{
    w->next = w->prev = NULL;
    w->task = task_current();
    w->parker = NULL;
    if (!w->task) {
        if (worker_current()) return -EPERM;
        w->parker = parker_current();
        if (!w->parker) return -ENOMEM;
    }
    w->lock = lock;
    w->list = list;
    w->result = 0;
    w->value = NULL;
    w->what = what;
    atomic_init(&w->state, WAITER_WAITING);
    timer_node_init(&w->deadline, NULL);
    owner_retain(w);
    return 0;
}

void waiter_abandon(waiter *w)
{
    owner_release(w);
}

void waitlist_append(waitlist *l, waiter *w)
{
    w->next = NULL;
    w->prev = l->tail;
    if (l->tail) l->tail->next = w;
    else l->head = w;
    l->tail = w;
    l->len++;
}

void waitlist_prepend(waitlist *l, waiter *w)
{
    w->prev = NULL;
    w->next = l->head;
    if (l->head) l->head->prev = w;
    else l->tail = w;
    l->head = w;
    l->len++;
}

void waitlist_remove(waitlist *l, waiter *w)
{
    if (w->prev) w->prev->next = w->next;
    else l->head = w->next;
    if (w->next) w->next->prev = w->prev;
    else l->tail = w->prev;
    w->next = w->prev = NULL;
    l->len--;
}

waiter *waitlist_pop(waitlist *l)
{
    waiter *w = l->head;
    if (w) waitlist_remove(l, w);
    return w;
}

/* Move w from WAITING to `end`; the winner of a race owns the waiter's reference. */
static int waiter_end(waiter *w, int end)
{
    int expected = WAITER_WAITING;
    return atomic_compare_exchange_strong_explicit(&w->state, &expected, end,
                                                   memory_order_acq_rel, memory_order_acquire);
}

int waiter_signal(waiter *w, int result, void *value)
{
    task *t = w->task;
    parker *p = w->parker;
    w->result = result;
    w->value = value;
    if (!waiter_end(w, WAITER_SIGNALED)) return 0;
    owner_wake_release(t, p); /* w may be gone from here on */
    return 1;
}

/* End w as cancelled or timed out by its own side (or its deadline timer). */
static int waiter_end_locked(waiter *w, int end)
{
    if (w->lock) spin_lock(w->lock);
    int won = waiter_end(w, end);
    if (won && w->list) waitlist_remove(w->list, w);
    if (w->lock) spin_unlock(w->lock);
    return won;
}

static void deadline_fire(timer_node *node)
{
    waiter *w = container_of(node, waiter, deadline);
    task *t = w->task;
    parker *p = w->parker;
    if (waiter_end_locked(w, WAITER_TIMEDOUT)) owner_wake_release(t, p);
}

int wait_check_cancel(void)
{
    task *t = task_current();
    if (!t) return 0;
    if (unlikely(atomic_load_explicit(&t->fut.rt->closing, memory_order_acquire)) &&
        !atomic_exchange_explicit(&t->shutdown_cancelled, 1, memory_order_acq_rel)) {
        atomic_fetch_add_explicit(&t->cancel_requests, 1, memory_order_relaxed);
        atomic_store_explicit(&t->must_cancel, 1, memory_order_release);
    }
    if (atomic_load_explicit(&t->must_cancel, memory_order_acquire)) {
        atomic_store_explicit(&t->must_cancel, 0, memory_order_relaxed);
        return -ECANCELED;
    }
    return 0;
}

static int park_task(waiter *w, int cancellable)
{
    task *t = w->task;
    t->waiting_on = w->what;
    for (;;) {
        if (atomic_load_explicit(&w->state, memory_order_acquire) != WAITER_WAITING) break;
        if (cancellable && wait_check_cancel()) {
            if (waiter_end_locked(w, WAITER_CANCELLED)) {
                owner_release(w);
                t->waiting_on = NULL;
                return -ECANCELED;
            }
            /* granted meanwhile: deliver the cancellation with the grant below */
            atomic_store_explicit(&t->must_cancel, 1, memory_order_relaxed);
            break;
        }
        task_suspend();
    }
    t->waiting_on = NULL;
    return 0;
}

static int park_thread(waiter *w, uint64_t deadline)
{
    while (atomic_load_explicit(&w->state, memory_order_acquire) == WAITER_WAITING) {
        if (parker_park(w->parker, deadline) == -ETIMEDOUT &&
            waiter_end_locked(w, WAITER_TIMEDOUT)) {
            owner_release(w);
            break;
        }
    }
    return 0;
}

int waiter_park(waiter *w, uint64_t deadline, int cancellable)
{
    if (w->task) {
        if (deadline != UINT64_MAX) {
            worker *wk = worker_current();
            w->deadline.fire = deadline_fire;
            if (timer_arm(&wk->timers, &w->deadline, deadline)) {
                if (waiter_end_locked(w, WAITER_TIMEDOUT)) owner_release(w);
            }
        }
        int r = park_task(w, cancellable);
        if (deadline != UINT64_MAX) timer_cancel(&w->deadline);
        if (r) return r;
    } else {
        park_thread(w, deadline);
    }
    switch (atomic_load_explicit(&w->state, memory_order_acquire)) {
    case WAITER_TIMEDOUT:
        return -ETIMEDOUT;
    case WAITER_CANCELLED:
        return -ECANCELED;
    default:
        break;
    }
    if (w->task && cancellable && wait_check_cancel()) return WAIT_SIGNALED_CANCELLED;
    return 0;
}
