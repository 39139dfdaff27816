/*
 * waitq.c: the one waiting mechanism (see waitq.h for the protocol).
 *
 * A wait's state is the waiter's `state`, on the waiter's own stack. It leaves WAITING
 * once: the waiter itself moves it straight to CANCELLED (a task's cancellation) or
 * TIMEDOUT (a thread's deadline); anyone else (a waker, a task's deadline timer) moves it
 * to ENDING, wakes the task or thread, and then stores SIGNALED or TIMEDOUT (release, so
 * result and value travel with it). A waiter that finds ENDING waits for the end: until
 * then the ender may still be touching the task (a wake-up is a CAS on its scheduling word)
 * or the thread's parker, which must not go away meanwhile. A wake-up therefore needs no
 * reference on the task, and starting a wait touches nothing shared.
 *
 * Moves out of WAITING for a waiter in a list are made under the list's lock, which is
 * what keeps "in the list" == WAITING: a waker pops and signals with a plain store, and a
 * waiter that ends itself unlinks itself. A waiter in no list (a sleep) has only itself
 * and its deadline to race with: those moves are CAS operations. A task's deadline is a
 * timer in the frame of the wait that has one (a waiter is on every suspended waiter's
 * stack, so it stays small); the wait always disarms it (timer_cancel waits out a firing
 * callback) before returning, so both records can die with the stack frame.
 *
 * A task parks holding its list's lock, and the switch lets it go only after the task is
 * off its stack and published IDLE (worker_suspend): so a waker, which takes that lock,
 * always finds the task IDLE, and the publication is a plain store, not a CAS. The one
 * wake-up that comes without the lock, a cancellation (task_cancel), may hit the task
 * between its last look at its cancellation and that store, and be overwritten by it: the
 * switch looks again after the store, and the canceller, when it finds the task running,
 * makes every thread fence first (fence_heavy), so one of the two sees the other.
 *
 * tests/model/waiter.pml model-checks this protocol for a task (waker, deadline and
 * cancellation racing a suspend and resume, the publication's store held in a store
 * buffer as x86 may), and five broken variants of it.
 */
#include "waitq.h"

#include <errno.h>

#include "clock.h"
#include "parker.h"
#include "rt.h"
#include "task.h"
#include "worker.h"

/* waiter_init's second half, for a caller outside any task. */
int waiter_init_thread(waiter *w)
{
    if (worker_current()) return -EPERM;
    w->parker = parker_current();
    return w->parker ? 0 : -ENOMEM;
}

/* The second half of an end by someone other than the waiter, which found w WAITING and
 * marked it ENDING: wake the task or thread, then publish how the wait ended. After
 * that store the waiter may return at any moment: nothing of it is touched again. */
static void end_and_wake(waiter *w, int end)
{
    if (w->task) task_wake(w->task);
    else parker_unpark(w->parker);
    atomic_store_explicit(&w->state, end, memory_order_release);
}

void waiter_signal(waiter *w, int result, void *value)
{
    w->result = result;
    w->value = value;
    atomic_store_explicit(&w->state, WAITER_ENDING, memory_order_relaxed);
    end_and_wake(w, WAITER_SIGNALED);
}

/* A FIFO grant's software pipeline. In a convoy (a contended lock: every acquire queues,
 * every release grants the oldest) the next waiters are tasks suspended long ago, cold in
 * the cache, and a grant's locked instructions wait for every load and store before them
 * (though not for prefetches). So each grant warms what the next ones will touch: the
 * task of the new oldest waiter n (whose waiter this prefetched one grant ago), and the
 * waiter after n. mutex_contention, 2 workers: ~65 -> ~62 ns. */
static inline void warm_next(const waiter *n)
{
    __builtin_prefetch(n->next, 1, 3);
    __builtin_prefetch((const char *)n->next + sizeof(waiter) - 1, 1, 3); /* its second line */
    if (n->task) __builtin_prefetch(&n->task->sched, 1, 3);
}

int waitlist_signal_first(waitlist *l, int result, void *value)
{
    waiter *w = waitlist_pop(l);
    if (!w) return 0;
    if (l->last) warm_next(l->last->next);
    waiter_signal(w, result, value);
    return 1;
}

void waitlist_signal_all(waitlist *l, int result, void *value)
{
    waiter *w;
    while ((w = waitlist_pop(l))) waiter_signal(w, result, value);
}

/* WAITING -> `to` by CAS: 1 if won. Under a list's lock nothing races it; a waiter in no
 * list (a sleep) races its deadline against its cancellation. */
static int waiter_claim(waiter *w, int to)
{
    int expected = WAITER_WAITING;
    return atomic_compare_exchange_strong_explicit(&w->state, &expected, to, memory_order_acq_rel,
                                                   memory_order_acquire);
}

/* End w from its own side: the waiting task (cancelled) or thread (timed out), with w's
 * lock held. 1 if this ended it; 0 if it was ending or ended already (a grant won). */
static int waiter_end_self_locked(waiter *w, int end)
{
    int won = waiter_claim(w, end);
    if (won && w->list) waitlist_remove(w->list, w);
    return won;
}

static int waiter_end_self(waiter *w, int end)
{
    if (w->lock) spin_lock(w->lock);
    int won = waiter_end_self_locked(w, end);
    if (w->lock) spin_unlock(w->lock);
    return won;
}

typedef struct deadline_timer {
    timer_node node;
    waiter *w;
} deadline_timer;

static void deadline_fire(timer_node *node)
{
    waiter *w = container_of(node, deadline_timer, node)->w;
    if (w->lock) spin_lock(w->lock);
    /* the waiter outlives this callback: it disarms the timer before it returns */
    if (waiter_claim(w, WAITER_ENDING)) {
        if (w->list) waitlist_remove(w->list, w);
        end_and_wake(w, WAITER_TIMEDOUT);
    }
    if (w->lock) spin_unlock(w->lock);
}

/* wait_check_cancel for a task the caller already knows (no thread-local lookup). */
static force_inline int task_check_cancel(task *t)
{
    if (unlikely(atomic_load_explicit(&t->fut.rt->closing, memory_order_acquire)) &&
        !atomic_exchange_explicit(&t->shutdown_cancelled, 1, memory_order_acq_rel)) {
        atomic_fetch_add_explicit(&t->cancel_requests, 1, memory_order_relaxed);
        atomic_store_explicit(&t->must_cancel, 1, memory_order_release);
    }
    return task_cancel_take(t) ? -ECANCELED : 0;
}

int wait_check_cancel(void)
{
    task *t = task_current();
    return t ? task_check_cancel(t) : 0;
}

/* How w ended, once the ender (if any) is done with it. */
static int waiter_outcome(waiter *w)
{
    int end;
    for (unsigned spins = 0;
         (end = atomic_load_explicit(&w->state, memory_order_acquire)) == WAITER_ENDING; spins++)
        spin_pause(spins);
    return end == WAITER_TIMEDOUT ? -ETIMEDOUT : end == WAITER_CANCELLED ? -ECANCELED : 0;
}

/* The task's side of a wait; entered with w's list lock held, if it has one. Each suspension
 * hands that lock to the switch, which releases it once t is off its stack and published
 * IDLE (worker.c, after_switch): every waker takes the lock first, so it finds t IDLE, and
 * t publishes itself with a plain store instead of a CAS. */
static force_inline int park_task(waiter *w, int cancellable)
{
    task *t = w->task;
    /* for dumps, which show it while t is suspended; nobody reads it after the wait */
    atomic_store_explicit(&t->waiting_on, w->what, memory_order_relaxed);
    for (;;) { /* w->lock held */
        if (atomic_load_explicit(&w->state, memory_order_acquire) != WAITER_WAITING) {
            if (w->lock) spin_unlock(w->lock);
            break;
        }
        if (cancellable && task_check_cancel(t)) {
            /* a grant that won first delivers the cancellation with it, below */
            if (!waiter_end_self_locked(w, WAITER_CANCELLED)) task_cancel_keep(t);
            if (w->lock) spin_unlock(w->lock);
            break;
        }
        if (unlikely(task_inline_unpublished(t))) {
            /* an inline child: what its awaiters await is published before it switches
             * out, which may cancel a future, so not under the lock (task.c) */
            if (w->lock) spin_unlock(w->lock);
            task_publish_inline(t);
            if (w->lock) spin_lock(w->lock);
            continue;
        }
        /* until task_wake(); it returns on whichever worker resumed t */
        worker_suspend(worker_current(), t, w->lock, cancellable);
        if (atomic_load_explicit(&w->state, memory_order_acquire) != WAITER_WAITING) break;
        if (w->lock) spin_lock(w->lock); /* woken by a cancellation or shutdown: look again */
    }
    return waiter_outcome(w);
}

static int park_thread(waiter *w, uint64_t deadline)
{
    while (atomic_load_explicit(&w->state, memory_order_acquire) == WAITER_WAITING)
        if (parker_park(w->parker, deadline) == -ETIMEDOUT && waiter_end_self(w, WAITER_TIMEDOUT))
            break;
    return waiter_outcome(w);
}

/* The timer's callback takes w's lock: it is let go while the timer is armed. */
static noinline int park_task_until(waiter *w, uint64_t deadline, int cancellable)
{
    deadline_timer d = {.w = w};
    timer_node_init(&d.node, deadline_fire);
    if (w->lock) spin_unlock(w->lock);
    if (timer_arm(&worker_current()->timers, &d.node, deadline)) deadline_fire(&d.node);
    if (w->lock) spin_lock(w->lock);
    int r = park_task(w, cancellable);
    timer_cancel(&d.node);
    return r;
}

int waiter_park(waiter *w, uint64_t deadline, int cancellable)
{
    if (!w->task) {
        if (w->lock) spin_unlock(w->lock);
        return park_thread(w, deadline);
    }
    int r = deadline == UINT64_MAX ? park_task(w, cancellable)
                                   : park_task_until(w, deadline, cancellable);
    if (r) return r;
    if (cancellable && task_check_cancel(w->task)) return WAIT_SIGNALED_CANCELLED;
    return 0;
}
