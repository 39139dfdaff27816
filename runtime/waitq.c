/*
 * waitq.c: the one waiting mechanism (see waitq.h for the protocol).
 *
 * A task's wait state lives in the task's scheduling word (task.h: SCHED_WAIT), next to
 * its run state: ending the wait and making the task runnable is one CAS (end_wait),
 * after which the ender never touches the task again, so no reference is needed to keep
 * the task alive across a wake-up. A task has one wait at a time: waiter_init starts it
 * (-> W_WAITING) and it ends by one move out of W_WAITING (to how it ended, which stays
 * until the next wait begins, since only W_WAITING means anything to others), or by
 * waiter_abandon (back to W_NONE).
 * A plain thread's wait state is the waiter's own `state`, and the waiter holds a reference
 * on the thread's parker, dropped by whoever ends the wait.
 *
 * Transitions out of WAITING are CAS operations; for a waiter in a list they are also made
 * under the list's lock, so a waker that popped a waiter and a waiter that unlinks itself
 * (cancelled, timed out) never disagree about membership. A deadline is a timer node
 * inside the waiter; the waiter always disarms it (timer_cancel waits out a firing
 * callback) before returning, so the record can die with the stack frame.
 */
#include "waitq.h"

#include <errno.h>

#include "clock.h"
#include "parker.h"
#include "rt.h"
#include "task.h"
#include "worker.h"

/* The task's wait part: keep the run part, set the wait part to `wait`. */
static void task_set_wait(task *t, unsigned wait)
{
    unsigned s = atomic_load_explicit(&t->sched, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&t->sched, &s, SCHED(SCHED_RUN(s), wait),
                                                  memory_order_acq_rel, memory_order_relaxed)) {
    }
}

static unsigned task_wait_state(task *t)
{
    return SCHED_WAIT(atomic_load_explicit(&t->sched, memory_order_acquire));
}

int waiter_init(waiter *w, spinlock *lock, waitlist *list, const char *what)
{
    worker *wk = worker_current();
    w->next = w->prev = NULL;
    w->task = wk ? wk->current : NULL;
    w->parker = NULL;
    if (!w->task) {
        if (wk) return -EPERM;
        w->parker = parker_current();
        if (!w->parker) return -ENOMEM;
        parker_retain(w->parker);
    } else {
        task_set_wait(w->task, W_WAITING);
    }
    w->lock = lock;
    w->list = list;
    w->result = 0;
    w->value = NULL;
    w->what = what;
    atomic_init(&w->state, WAITER_WAITING);
    return 0;
}

void waiter_abandon(waiter *w)
{
    if (w->task) task_set_wait(w->task, W_NONE);
    else parker_release(w->parker);
}

/* End t's wait with `end` (W_SIGNALED, W_TIMEDOUT) and make t runnable, in one CAS: 1 if
 * this call ended it, 0 if it had already ended. After a 1, t may run and finish at any
 * moment: the caller must not touch t, or anything t owns, again. */
static int end_wait(task *t, unsigned end)
{
    unsigned s = atomic_load_explicit(&t->sched, memory_order_acquire);
    for (;;) {
        if (SCHED_WAIT(s) != W_WAITING) return 0;
        unsigned run = SCHED_RUN(s), next = task_woken(run);
        if (atomic_compare_exchange_weak_explicit(&t->sched, &s, SCHED(next, end),
                                                  memory_order_acq_rel, memory_order_acquire)) {
            if (run == T_IDLE) sched_ready(t); /* queued: it cannot run before we are done */
            return 1;
        }
    }
}

/* Move a thread's waiter from WAITING to `end`; the winner owns its parker reference. */
static int thread_end(waiter *w, int end)
{
    int expected = WAITER_WAITING;
    return atomic_compare_exchange_strong_explicit(&w->state, &expected, end,
                                                   memory_order_acq_rel, memory_order_acquire);
}

static void thread_wake(parker *p)
{
    parker_unpark(p);
    parker_release(p);
}

int waiter_signal(waiter *w, int result, void *value)
{
    w->result = result;
    w->value = value;
    if (w->task) return end_wait(w->task, W_SIGNALED); /* w may be gone after a 1 */
    parker *p = w->parker;
    if (!thread_end(w, WAITER_SIGNALED)) return 0;
    thread_wake(p);
    return 1;
}

/* End w from its own side: the waiting task (cancelled) or thread (timed out). */
static int waiter_end_self(waiter *w, int end)
{
    if (w->lock) spin_lock(w->lock);
    int won;
    if (w->task) {
        unsigned s = atomic_load_explicit(&w->task->sched, memory_order_acquire);
        won = 0;
        while (SCHED_WAIT(s) == W_WAITING && !won)
            won = atomic_compare_exchange_weak_explicit(&w->task->sched, &s,
                                                        SCHED(SCHED_RUN(s), W_CANCELLED),
                                                        memory_order_acq_rel, memory_order_acquire);
    } else {
        won = thread_end(w, end);
    }
    if (won && w->list) waitlist_remove(w->list, w);
    if (w->lock) spin_unlock(w->lock);
    return won;
}

static void deadline_fire(timer_node *node)
{
    waiter *w = container_of(node, waiter, deadline);
    if (w->lock) spin_lock(w->lock);
    /* the waiter outlives this callback: it disarms the timer before it returns */
    if (end_wait(w->task, W_TIMEDOUT) && w->list) waitlist_remove(w->list, w);
    if (w->lock) spin_unlock(w->lock);
}

/* wait_check_cancel for a task the caller already knows (no thread-local lookup). */
static int task_check_cancel(task *t)
{
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

int wait_check_cancel(void)
{
    task *t = task_current();
    return t ? task_check_cancel(t) : 0;
}

static int park_task(waiter *w, int cancellable)
{
    task *t = w->task;
    t->waiting_on = w->what;
    for (;;) {
        if (task_wait_state(t) != W_WAITING) break;
        if (cancellable && task_check_cancel(t)) {
            if (waiter_end_self(w, WAITER_CANCELLED)) break;
            /* granted meanwhile: deliver the cancellation with the grant below */
            atomic_store_explicit(&t->must_cancel, 1, memory_order_relaxed);
            break;
        }
        task_suspend();
    }
    t->waiting_on = NULL;
    unsigned end = task_wait_state(t); /* stays until the next wait begins: nobody looks */
    return end == W_TIMEDOUT ? -ETIMEDOUT : end == W_CANCELLED ? -ECANCELED : 0;
}

static int park_thread(waiter *w, uint64_t deadline)
{
    while (atomic_load_explicit(&w->state, memory_order_acquire) == WAITER_WAITING) {
        if (parker_park(w->parker, deadline) == -ETIMEDOUT &&
            waiter_end_self(w, WAITER_TIMEDOUT)) {
            parker_release(w->parker);
            break;
        }
    }
    int end = atomic_load_explicit(&w->state, memory_order_acquire);
    return end == WAITER_TIMEDOUT ? -ETIMEDOUT : end == WAITER_CANCELLED ? -ECANCELED : 0;
}

int waiter_park(waiter *w, uint64_t deadline, int cancellable)
{
    if (!w->task) return park_thread(w, deadline);
    if (deadline != UINT64_MAX) {
        worker *wk = worker_current();
        timer_node_init(&w->deadline, deadline_fire);
        if (timer_arm(&wk->timers, &w->deadline, deadline)) deadline_fire(&w->deadline);
    }
    int r = park_task(w, cancellable);
    if (deadline != UINT64_MAX) timer_cancel(&w->deadline);
    if (r) return r;
    if (cancellable && task_check_cancel(w->task)) return WAIT_SIGNALED_CANCELLED;
    return 0;
}
