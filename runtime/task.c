/*
 * task.c: spawning, starting, cancelling and awaiting tasks (see task.h for the scheduling
 * states and the reference rules; the switch in and out of a task is worker.c's).
 *
 * References: spawn makes two, the caller's handle and the queue entry's. Whoever
 * removes the entry from a queue owns that reference: if it starts the task it keeps the
 * reference until the task is done (the worker drops it after the last switch out);
 * if the task was already started inline by an awaiter, it drops it at once.
 *
 * Sole ownership (future.h): a claimer that holds every reference there is (the entry's,
 * plus the awaiter's handle for an inline child) claims the task, drops the entry's
 * reference and, once the body returns, completes it with plain moves. An awaiter claims
 * its inline child before anything publishes `awaiting`, so a canceller that borrows
 * `awaiting` reaches the child only once it is claimed.
 */
#include "task.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "objpool.h"
#include "os/fence.h"
#include "registry.h"
#include "rt.h"
#include "waitq.h"
#include "worker.h"

static task *task_new(weft_rt *rt, weft_fn fn, void *arg, const weft_spawn_opts *o)
{
    task *t = objpool_alloc(OBJ_TASK);
    if (!t) return NULL;
    future_init(&t->fut, 1, rt);
    atomic_init(&t->fut.refs, 2); /* the handle and the queue entry */
    runnable_init(&t->start_link, RUNNABLE_TASK_START);
    runnable_init(&t->link, RUNNABLE_TASK_RESUME);
    atomic_init(&t->sched, T_NEW);
    t->stk = NULL;
    t->stack_owner = t;
    t->fn = fn;
    t->arg = arg;
    t->name = NULL;
    t->home = -1;
    t->pinned = 0;
    t->stack_shift = 0;
    atomic_init(&t->cancel_requests, 0);
    atomic_init(&t->must_cancel, 0);
    atomic_init(&t->shutdown_cancelled, 0);
    atomic_init(&t->awaiting, NULL);
    atomic_init(&t->awaiting_lent, 0);
    t->reg_shard = REG_NONE;
    t->reg_next = t->reg_prev = NULL;
    if (o) {
        t->home = (int16_t)o->worker;
        t->pinned = o->pinned && o->worker >= 0;
        if (o->stack_size) t->stack_shift = stack_shift(o->stack_size);
        if (o->name && !(t->name = mem_strdup(o->name))) {
            objpool_free(OBJ_TASK, t);
            return NULL;
        }
    }
    return t;
}

/* The size of the stack t asked for, as stack_take() rounds it, or the runtime's default. */
static size_t task_stack_size(const task *t)
{
    return t->stack_shift ? (size_t)1 << t->stack_shift : t->fut.rt->stack_size;
}

/* Whether t may run on s, a stack other than its own (an inline awaiter's, or one handed
 * over by a task that ended): s is at least the size t asked for. */
static int task_fits(const task *t, const stack *s)
{
    return task_stack_size(t) <= s->size;
}

void task_free(task *t)
{
    if (t->name) mem_free(t->name, strlen(t->name) + 1);
    objpool_free(OBJ_TASK, t);
}

int task_release_spawned(task *t)
{
    /* The slot is this worker's alone, so the entry in it cannot be taken meanwhile, and
     * nobody else holds a reference to take another one with: the two are all there are. */
    worker *w = worker_current();
    if (!w || w->lifo != &t->start_link) return 0;
    atomic_store_explicit(&t->fut.refs, 1, memory_order_relaxed);
    return 1;
}

/* The body has returned (or never ran): settle the future. `held`: the references to t the
 * caller holds (0: it cannot tell); when they are all there are, without the lock. */
static void task_finish(task *t, void *result, int never_ran, unsigned held)
{
    int err = never_ran ? -ECANCELED : t->fut.error; /* weft_fail()'s, if it was called */
    if (!err && atomic_load_explicit(&t->must_cancel, memory_order_acquire))
        err = -ECANCELED; /* cancelled right before it returned (asyncio's rule) */
    if (t->reg_shard != REG_NONE) registry_remove(t);
    atomic_store_explicit(&t->sched, T_DONE, memory_order_release);
    if (held && future_refs_are(&t->fut, held))
        future_complete_alone(&t->fut, err, err ? NULL : result);
    else
        future_complete(&t->fut, err, err ? NULL : result);
}

/* Run t's body for a caller that holds one reference to t (its runner's, or the inline
 * awaiter's handle); `a`: the await running it inline, else NULL. */
static void task_body(task *t, struct inline_await *a)
{
    weft_fn fn = t->fn;
    void *arg = t->arg;
    /* fn and arg are gone: their place is the running task's */
    atomic_store_explicit(&t->waiting_on, NULL, memory_order_relaxed);
    t->inline_await = a;
    task_finish(t, fn(arg), 0, 1);
}

/* A stack's entry: the body of the task it was made for, then of every unstarted task that
 * takes the stack over when the one before ends (worker_exit). */
static void task_entry(void *arg)
{
    task *t = arg;
    worker_after_switch(worker_current()); /* we may have been switched to by a task */
    for (;;) {
        task_body(t, NULL);
        t = worker_exit(worker_current(), t);
    }
}

/* Claim an unstarted task; the winner runs (or cancels) its body. */
static int task_claim(task *t)
{
    unsigned expected = T_NEW;
    return atomic_compare_exchange_strong_explicit(&t->sched, &expected, T_RUNNING,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

/* task_claim by a caller that holds every reference to t: nobody else can claim or cancel
 * it (both need a reference, and no awaiter lends it to a canceller: an awaiter holds a
 * reference), so plain moves do. */
static int task_claim_alone(task *t)
{
    if (atomic_load_explicit(&t->sched, memory_order_relaxed) != T_NEW) return 0;
    atomic_store_explicit(&t->sched, T_RUNNING, memory_order_relaxed);
    return 1;
}

static int must_not_start(task *t)
{
    return atomic_load_explicit(&t->must_cancel, memory_order_acquire) ||
           atomic_load_explicit(&t->fut.rt->closing, memory_order_acquire);
}

/* A claimed task that will not run: finish it (cancelled, or failed with t->fut.error set)
 * and drop its entry's reference. While a suspending task holds a wait list's lock (until
 * its switch is done, worker_suspend) that waits for the switch: finishing completes t's
 * future, and its lock may be that one. */
static void start_failed(worker *w, task *t)
{
    if (w->switch_lock) {
        runnable_list_push(&w->failed_starts, &t->link);
        return;
    }
    task_finish_failed_start(t);
}

void task_finish_failed_start(task *t)
{
    task_finish(t, NULL, t->fut.error == 0, 1);
    weft_future_release(&t->fut);
}

int task_start(worker *w, task *t, stack *offer)
{
    int alone = future_refs_are(&t->fut, 1); /* the entry's reference is the only one */
    if (!(alone ? task_claim_alone(t) : task_claim(t))) { /* started inline, or cancelled */
        weft_future_release(&t->fut);
        return 0;
    }
    if (must_not_start(t)) {
        start_failed(w, t);
        return 0;
    }
    size_t size = task_stack_size(t);
    if (offer && task_fits(t, offer)) {
        t->stk = offer; /* it runs on in task_entry's loop: nothing to set up */
    } else if (!(t->stk = stack_take(&w->stacks, size)) ||
               coro_init(&t->stk->ctx, t->stk->lo, stack_extent(t->stk), task_entry, t)) {
        diag_log("cannot get a %zu-byte stack for task '%s'", size,
                 t->name ? t->name : "(unnamed)");
        if (t->stk) stack_give(&w->stacks, t->stk);
        t->stk = NULL;
        t->fut.error = -ENOMEM;
        start_failed(w, t);
        return 0;
    }
    t->stk->label = t->name; /* inline children relabel it while they run */
    return 1;
}

void task_wake(task *t)
{
    unsigned s = atomic_load_explicit(&t->sched, memory_order_acquire);
    /* seq_cst: cancel_awaited, finding t IDLE, relies on t's wake-up coming after its look */
    for (;;) { /* IDLE -> SCHEDULED (and queued), RUNNING -> NOTIFIED */
        unsigned next = s == T_IDLE ? T_SCHEDULED : s == T_RUNNING ? T_NOTIFIED : s;
        if (next == s) return; /* NEW, SCHEDULED, NOTIFIED, DONE: it will look again anyway */
        if (atomic_compare_exchange_weak_explicit(&t->sched, &s, next, memory_order_seq_cst,
                                                  memory_order_acquire)) {
            if (next == T_SCHEDULED) sched_ready(t);
            return;
        }
    }
}

/* ---- inline children ----------------------------------------------------------------- */

static int inline_eligible(task *self, task *c, worker *w)
{
    return c->fut.rt == self->fut.rt && !c->pinned && (c->home < 0 || c->home == w->id) &&
           task_fits(c, self->stack_owner->stk) &&
           atomic_load_explicit(&c->sched, memory_order_relaxed) == T_NEW;
}

/* Run c's body here, on the current task's stack (self's, on worker w), for the await a.
 * The caller has claimed c and holds a handle to it. */
static void run_claimed_inline(worker *w, task *self, task *c, struct inline_await *a)
{
    if (must_not_start(c)) {
        task_finish(c, NULL, 1, 1);
        return;
    }
    c->stack_owner = self->stack_owner;
    c->stack_owner->stk->label = c->name;
    w->current = c;
    stat_add(&w->stats.tasks_run, 1);
    task_body(c, a);
    w = worker_current(); /* c may have suspended and moved us to another thread */
    w->current = self;
    self->stack_owner->stk->label = self->name;
}

/* Start entries of tasks that already ran inline, at the bottom of our deque: drop them
 * now, so a fork-join tree that awaits its children in spawn order does not pile up one
 * dead entry (and one unfreed task) per child until the worker next pops. */
static void drop_stale_entries(worker *w)
{
    /* An entry is looked at only once taken: until then a thief may steal it and drop the
     * last reference to its task. One that is not stale goes back where it was. */
    runnable *r;
    while ((r = deque_take(&w->dq))) {
        task *t =
            runnable_kind(r) == RUNNABLE_TASK_START ? container_of(r, task, start_link) : NULL;
        if (!t || atomic_load_explicit(&t->sched, memory_order_acquire) == T_NEW) {
            deque_push(&w->dq, r); /* into the slot it just left: cannot fail */
            return;
        }
        weft_future_release(&t->fut);
    }
}

/* How task_claim_inline claimed a child: with its start entry taken out of our queues, or
 * with the entry left in a queue, whose popper drops it. */
enum { INLINE_NO, INLINE_TAKEN, INLINE_LEFT };

/* c's start entry was taken out of our queues, with its reference, by an awaiter that
 * holds a handle: claim c, and drop the entry's reference, which is never the last. */
static int claim_taken(task *c)
{
    int claimed;
    if (future_refs_are(&c->fut, 2)) { /* the entry's and the awaiter's: alone */
        claimed = task_claim_alone(c);
        atomic_store_explicit(&c->fut.refs, 1, memory_order_relaxed);
    } else {
        claimed = task_claim(c);
        atomic_fetch_sub_explicit(&c->fut.refs, 1, memory_order_release);
    }
    return claimed ? INLINE_TAKEN : INLINE_NO;
}

/* Claim c, which self (the task running on worker w, the caller) awaits through a handle,
 * to run it on self's stack, if nobody started it yet. */
static int task_claim_inline(worker *w, task *self, task *c)
{
    if (!inline_eligible(self, c, w)) return INLINE_NO;
    if (w->lifo == &c->start_link) { /* the newest spawn: the slot is ours alone */
        w->lifo = NULL;
        return claim_taken(c);
    }
    if (deque_peek_bottom(&w->dq) == &c->start_link) {
        /* the common fork-join case: c is the newest entry of our own deque */
        void *x = deque_take(&w->dq);
        if (x == &c->start_link) return claim_taken(c);
        if (x) deque_push(&w->dq, x);
        return INLINE_NO;
    }
    return task_claim(c) ? INLINE_LEFT : INLINE_NO; /* its entry stays queued */
}

/* ---- cancellation -------------------------------------------------------------------- */

/* `awaiting` names the future a task awaits, so that cancelling the task cancels that
 * future (asyncio forwards every Task.cancel to it). An await that suspends publishes it with
 * a plain store and takes it back with another. A canceller borrows it: it raises
 * `awaiting_lent` (one borrower at a time), loads `awaiting`, cancels what it found and
 * lowers the flag; an awaiter that has taken its await back waits while the flag is up. The
 * awaiter holds a reference on f for the whole await, so f outlives every borrower's use of
 * it, without a lock, a locked instruction or reference traffic on the awaiter's side.
 * Taking back and borrowing are Dekker's pattern (each side stores, then loads the other's
 * word): the awaiter's store is fence_light_store, and a borrower that finds the task
 * anything but IDLE runs fence_heavy before its load. One that finds it IDLE needs no fence:
 * the task can take its await back only after it is woken, by a CAS on its scheduling word
 * that comes after that look, so by then the flag is up for it to see
 * (tests/model/await_lend.pml checks this, and three broken variants of it).
 *
 * An await that runs its child inline publishes nothing while the child runs: a child that
 * never switches out runs as one step, as it would in asyncio, and a cancellation of the
 * awaiter that arrives meanwhile is the awaiter's own, raised where the await ends. If the
 * child switches out, it first publishes what every awaiter below it on its stack awaits
 * (task_publish_inline), each with an exchange, and then takes a cancellation of that
 * awaiter that arrived before. A canceller that found nothing to borrow leaves its request
 * and then looks at `awaiting` again. Both sides store, then load, in the seq_cst order, so
 * at least one sees the other, and task_cancel_take lets only one of them deliver it
 * (tests/model/inline_cancel.pml checks this hand-over, and three broken variants of it).
 * The child's own code that cancels an awaiter on its stack finds the chain of inline
 * awaits itself (inline_child_of), and the cancellation goes down it at once. */
static void await_begin(task *t, weft_future *f)
{
    atomic_store_explicit(&t->awaiting, f, memory_order_release);
}

static void await_end(task *t)
{
    fence_light_store(&t->awaiting, NULL);
    for (unsigned spins = 0; atomic_load_explicit(&t->awaiting_lent, memory_order_seq_cst);
         spins++)
        spin_pause(spins); /* a borrower may be using what it found */
}

/* Cancel the future t awaits, if any (asyncio forwards every Task.cancel to it): 1 if that
 * cancellation was requested, so it reaches t through the future. 0 when t awaits nothing
 * yet: task_cancel looks again after leaving its request. */
static int cancel_awaited(task *t)
{
    if (!atomic_load_explicit(&t->awaiting, memory_order_seq_cst)) return 0;
    for (unsigned spins = 0;
         atomic_exchange_explicit(&t->awaiting_lent, 1, memory_order_seq_cst); spins++)
        spin_pause(spins); /* another canceller has it lent */
    if (atomic_load_explicit(&t->sched, memory_order_seq_cst) != T_IDLE && t != task_current())
        fence_heavy(); /* t may be taking its await back: its store is seen, or it sees ours */
    weft_future *f = atomic_load_explicit(&t->awaiting, memory_order_seq_cst);
    int through = f && weft_cancel(f) == 1;
    atomic_store_explicit(&t->awaiting_lent, 0, memory_order_release);
    return through;
}

/* The task t runs inline, if t awaits it on the current task's stack (the current task
 * or one between it and t), else NULL. */
static task *inline_child_of(task *t)
{
    for (task *c = task_current(); c && c->inline_await; c = c->inline_await->parent)
        if (c->inline_await->parent == t) return c;
    return NULL;
}

void task_publish_inline(task *t)
{
    for (task *c = t; task_inline_unpublished(c); c = c->inline_await->parent) {
        struct inline_await *a = c->inline_await;
        a->published = 1;
        atomic_exchange_explicit(&a->parent->awaiting, &c->fut, memory_order_seq_cst);
        if (task_cancel_take(a->parent)) task_cancel(c); /* it arrived first: pass it on */
    }
}

int task_cancel(task *t)
{
    if (future_is_done(&t->fut)) return 0;
    atomic_fetch_add_explicit(&t->cancel_requests, 1, memory_order_relaxed);
    if (task_claim(t)) { /* not started: its body never runs */
        task_finish(t, NULL, 1, 0);
        return 1;
    }
    /* asyncio: the cancellation travels through the awaited future when it can */
    task *child = inline_child_of(t);
    if (child ? task_cancel(child) : cancel_awaited(t)) return 1;
    atomic_store_explicit(&t->must_cancel, 1, memory_order_seq_cst);
    /* t running elsewhere may be suspending: its worker publishes it IDLE with a plain store
     * and then looks at must_cancel again (worker.c, publish_idle), so either that look sees
     * the request or task_wake below finds t IDLE */
    unsigned s = atomic_load_explicit(&t->sched, memory_order_seq_cst);
    if ((s == T_RUNNING || s == T_NOTIFIED) && t != task_current()) fence_heavy();
    /* an inline child of t may have switched out and published t's await meanwhile */
    if (atomic_load_explicit(&t->awaiting, memory_order_seq_cst) && task_cancel_take(t) &&
        !cancel_awaited(t))
        task_cancel_keep(t);
    task_wake(t);
    return 1;
}

void task_shutdown_cancel(task *t)
{
    if (!atomic_exchange_explicit(&t->shutdown_cancelled, 1, memory_order_acq_rel)) task_cancel(t);
}

/* ---- public API ---------------------------------------------------------------------- */

/* Spawn on rt for a caller on worker w of rt (NULL: a caller outside rt's workers). */
static weft_future *submit(weft_rt *rt, worker *w, weft_fn fn, void *arg,
                           const weft_spawn_opts *opts)
{
    if (!rt || !fn ||
        (opts && (opts->worker < -1 || (opts->worker >= 0 && (unsigned)opts->worker >= rt->nworkers) ||
                  opts->stack_size > UINT32_MAX))) {
        errno = EINVAL;
        return NULL;
    }
    if (atomic_load_explicit(&rt->stopping, memory_order_acquire)) {
        errno = EPERM;
        return NULL;
    }
    task *t = task_new(rt, fn, arg, opts);
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    sched_spawn(w, t);
    return &t->fut;
}

weft_future *weft_spawn_ex(weft_fn fn, void *arg, const weft_spawn_opts *opts)
{
    worker *w = worker_current();
    if (!w) {
        errno = EPERM;
        return NULL;
    }
    return submit(w->rt, w, fn, arg, opts);
}

weft_future *weft_spawn(weft_fn fn, void *arg)
{
    return weft_spawn_ex(fn, arg, NULL);
}

weft_future *weft_rt_submit_ex(weft_rt *rt, weft_fn fn, void *arg, const weft_spawn_opts *opts)
{
    worker *w = worker_current();
    return submit(rt, w && w->rt == rt ? w : NULL, fn, arg, opts);
}

weft_future *weft_rt_submit(weft_rt *rt, weft_fn fn, void *arg)
{
    return weft_rt_submit_ex(rt, fn, arg, NULL);
}

void *weft_fail(int err)
{
    task *t = task_current();
    if (t && err < 0) t->fut.error = err; /* nobody reads it before the task is done */
    return NULL;
}

/* weft_yield of an inline child, which publishes first (out of line: the common yield's
 * frame then saves nothing). */
static noinline void yield_inline_child(worker *w, task *t)
{
    task_publish_inline(t);
    worker_switch_out(w, t, SWITCH_YIELD);
}

void weft_yield(void)
{
    worker *w = worker_current();
    task *t = w ? w->current : NULL;
    if (!t) return;
    if (unlikely(task_inline_unpublished(t))) yield_inline_child(w, t);
    else worker_switch_out(w, t, SWITCH_YIELD);
}

int weft_sleep(double seconds)
{
    if (seconds != seconds) return -EINVAL; /* NaN: asyncio 3.13's ValueError */
    if (!(seconds > 0)) {
        if (!task_current()) return worker_current() ? -EPERM : 0;
        int r = wait_check_cancel();
        if (!r) weft_yield();
        return r;
    }
    int r = wait_check_cancel();
    if (r) return r;
    waiter w;
    r = waiter_init(&w, NULL, NULL, "sleep");
    if (r) return r;
    r = waiter_park(&w, clock_deadline(seconds), 1);
    return r == -ETIMEDOUT ? 0 : r;
}

weft_future *weft_current(void)
{
    task *t = task_current();
    return t ? &t->fut : NULL;
}

const char *weft_task_name(const weft_future *f)
{
    return future_valid(f) && f->is_task ? task_of((weft_future *)f)->name : NULL;
}

int weft_cancelling(void)
{
    task *t = task_current();
    return t ? atomic_load_explicit(&t->cancel_requests, memory_order_relaxed) : 0;
}

int weft_uncancel(void)
{
    task *t = task_current();
    if (!t) return 0;
    int n = atomic_load_explicit(&t->cancel_requests, memory_order_relaxed);
    while (n > 0 && !atomic_compare_exchange_weak_explicit(&t->cancel_requests, &n, n - 1,
                                                           memory_order_relaxed,
                                                           memory_order_relaxed)) {
    }
    if (n <= 0) return 0;
    if (n == 1) { /* 3.13: back to no request clears the pending one... */
        atomic_store_explicit(&t->must_cancel, 0, memory_order_relaxed);
        /* ...unless a new request arrived meanwhile; it must not be lost */
        if (atomic_load_explicit(&t->cancel_requests, memory_order_acquire) > 0)
            atomic_store_explicit(&t->must_cancel, 1, memory_order_release);
    }
    return n - 1;
}

int weft_cancel(weft_future *f)
{
    if (!future_valid(f)) return -EINVAL;
    if (f->is_task) return task_cancel(task_of(f));
    return future_complete(f, -ECANCELED, NULL) == 0;
}

/* weft_await of c, claimed (task_claim_inline) to run on self's stack, for self on w.
 * Not inlined: its record would grow weft_await's frame, which is on every suspended
 * awaiter's stack (ping_pong: +4% from the extra cache line). */
static noinline int await_inline(worker *w, task *self, task *c, int claimed, void **result)
{
    struct inline_await a = {.parent = self, .published = 0};
    run_claimed_inline(w, self, c, &a);
    if (claimed == INLINE_LEFT) drop_stale_entries(worker_current()); /* the popper drops it */
    if (a.published) await_end(self);
    if (task_cancel_take(self)) return -ECANCELED; /* it arrived while c ran */
    if (result) *result = c->fut.result;
    return c->fut.error;
}

int weft_await(weft_future *f, void **result)
{
    if (!future_valid(f)) return -EINVAL;
    if (!future_is_done(f)) {
        worker *w = worker_current();
        task *self = w ? w->current : NULL;
        /* asyncio: a cancellation pending when a task starts to await goes into the awaited
         * future (an unstarted task is then cancelled before it runs, never run inline) */
        if (self && task_cancel_take(self) && weft_cancel(f) != 1)
            task_cancel_keep(self); /* f is done */
        /* an unstarted child is claimed before anything is published, so that its claim
         * can see whether anybody else could cancel it (task_claim_alone) */
        int claimed = self && f->is_task ? task_claim_inline(w, self, task_of(f)) : INLINE_NO;
        if (claimed) return await_inline(w, self, task_of(f), claimed, result);
        if (self) await_begin(self, f);
        int r = future_wait(f, UINT64_MAX, 1);
        if (self) await_end(self);
        /* a cancellation that reached the wait itself (it came while this await began, so
         * not through f) goes into f, as asyncio's would: if f is not done, it is cancelled */
        if (r == -ECANCELED) weft_cancel(f);
        if (r) return r;
    }
    if (result) *result = f->result;
    return f->error;
}
