/*
 * worker.c: the per-core loop. Each turn picks one runnable, in this order:
 *
 *   every 61st tick: timers, then the inbox and the inject queue first (fairness)
 *   LIFO slot (at most 3 runs in a row) -> local FIFO (pinned tasks, call_soon)
 *   -> own deque, oldest first -> inbox -> inject -> due timers -> steal -> park
 *
 * and runs it: a callback directly on the worker's own stack, a task by switching to
 * its stack. A task that suspends, yields or ends switches straight to the next task of
 * the local queues when there is one (else to the scheduler), and whichever context runs
 * next, now off the task's stack, finishes what the task asked for: publish it as IDLE
 * (and release the wait list's lock it suspended holding), requeue it, or recycle it.
 * Until then nothing done for the switch may complete a future, whose lock that may be
 * (task_start puts off settling the tasks it cannot start until the switch is done).
 * A task that ends before an unstarted one that fits on its stack hands that task its
 * stack instead, without a switch (worker_exit).
 * Parking is epoll_wait on the worker's own epoll fd, woken by its eventfd or by the
 * earliest timer of itself or of a busy peer (idle workers fire a busy peer's timers).
 *
 * Everything here runs on the worker's thread; other threads reach a worker only through
 * its deque (steal), inbox, timers, eventfd and the idle set.
 */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "os/fence.h"
#include "registry.h"
#include "rt.h"
#include "steal.h"
#include "topo.h"

#define FAIR_INTERVAL 61
#define LIFO_MAX_RUNS 3

static __thread worker *tls_worker;

/* The thread's worker, read behind a compiler barrier; only the two non-inlined accessors
 * below use it, so no caller can keep a thread-local address across a switch. */
static force_inline worker *tls_worker_read(void)
{
    worker *w = tls_worker;
    __asm__ __volatile__("" : "+r"(w)::"memory");
    return w;
}

noinline worker *worker_current(void)
{
    return tls_worker_read();
}

/* The task running on this thread, in one call (waits need only it). */
noinline task *task_current(void)
{
    worker *w = tls_worker_read();
    return w ? w->current : NULL;
}

void worker_set_current(worker *w)
{
    tls_worker = w;
}

/* ---- placing work -------------------------------------------------------------------- */

static worker *own_worker(weft_rt *rt)
{
    worker *w = worker_current();
    return w && w->rt == rt ? w : NULL;
}

static void push_local(worker *w, runnable *r)
{
    int64_t depth = deque_push(&w->dq, r);
    if (unlikely(depth < 0)) { /* out of memory: the inject queue has no limit */
        inject_push(&w->rt->injectq, r);
        return;
    }
    if ((uint64_t)depth > atomic_load_explicit(&w->stats.max_queue_depth, memory_order_relaxed))
        atomic_store_explicit(&w->stats.max_queue_depth, (uint64_t)depth, memory_order_relaxed);
}

/* Work this worker will not run next: queue it where thieves can take it, and wake a
 * parked peer if nobody is searching. */
static void push_stealable(worker *w, runnable *r)
{
    push_local(w, r);
    idle_notify(&w->rt->idle);
}

/* The newest spawned or woken task takes the LIFO slot (Tokio's rule). The slot cannot be
 * stolen, so only a displaced occupant, which goes to the stealable deque, is work worth
 * waking a peer for: a task that spawns or wakes one successor and ends hands it over on
 * its own core without a wake-up. */
static void put_lifo(worker *w, runnable *r)
{
    if (w->lifo) push_stealable(w, w->lifo);
    w->lifo = r;
}

/* Start loading the top of suspended t's stack, for a task about to run: resuming it reads
 * the switch frame, then the frames of its wait as it returns through them (six lines
 * cover a future's await or a lock's). With many tasks taking turns that stack has gone
 * cold, and these misses would otherwise come one after another on the critical path.
 * Only for a wake-up into the LIFO slot: the same for the next entry of the batch made
 * ping_pong with 1 worker ~7% faster, but yield_many with 2 workers ~5-10% slower, whose
 * tasks mostly stay warm. */
static inline void prefetch_stack(task *t)
{
    char *sp = t->stack_owner->stk->ctx.sp;
    for (int i = 0; i < 6; i++) __builtin_prefetch(sp + 64 * i, 0, 3);
}

/* Work for a worker other than the caller's own (or from outside the runtime). */
static void post_remote(weft_rt *rt, int target, runnable *r)
{
    if (target >= 0) {
        worker *to = &rt->workers[target];
        inject_push(&to->inbox, r);
        idle_wake_worker(rt, to);
    } else {
        inject_push(&rt->injectq, r);
        idle_notify_strict(&rt->idle);
    }
}

/* Queue r, an entry of a task of rt, for a caller on worker w (NULL: outside rt's workers).
 * `must`: the worker it has to run on, -1 for any. */
static void place(worker *w, weft_rt *rt, int must, runnable *r)
{
    if (!w || (must >= 0 && must != w->id)) {
        post_remote(rt, must, r);
    } else if (must >= 0) { /* it must run here: keep it out of thieves' reach */
        runnable_list_push(&w->local, r);
    } else {
        put_lifo(w, r);
    }
}

void sched_spawn(worker *w, task *t)
{
    place(w, t->fut.rt, t->home, &t->start_link); /* a start worker is asked for, not pinned */
}

static noinline void ready_slow(worker *w, task *t)
{
    place(w, t->fut.rt, t->pinned ? t->home : -1, &t->link);
}

void sched_ready(task *t)
{
    worker *w = own_worker(t->fut.rt);
    if (likely(w && !t->pinned && !w->lifo)) { /* the common wake-up */
        w->lifo = &t->link;
        prefetch_stack(t);
    } else {
        ready_slow(w, t);
    }
}

void sched_call_soon(worker *w, callback_item *cb)
{
    runnable_list_push(&w->local, &cb->link);
}

int sched_call_threadsafe(weft_rt *rt, int worker_id, callback_item *cb)
{
    if (!rt) return -EINVAL;
    worker *w = own_worker(rt);
    if (w && worker_id < 0) sched_call_soon(w, cb);
    else post_remote(rt, worker_id, &cb->link); /* one FIFO per worker: order is kept */
    return 0;
}

/* ---- running ------------------------------------------------------------------------- */

static void run_callback(callback_item *cb)
{
    if (runnable_kind(&cb->link) == RUNNABLE_DONE_CALLBACK) {
        cb->fn.done(cb->future, cb->arg);
        weft_future_release(cb->future);
    } else {
        cb->fn.plain(cb->arg);
    }
    mem_free(cb, sizeof *cb);
}

/* Publish t, which suspended holding its wait list's lock, as IDLE, and release the lock.
 * Every waker of that list takes the lock first, so none can have come in between: a plain
 * store will do. The only other wake-up, a cancellation's, may have found t RUNNING and
 * made it NOTIFIED, and the store just overwrote that: so after it, t's cancellation is
 * looked at again. A canceller that finds t RUNNING or NOTIFIED runs fence_heavy() between
 * its request and its wake-up (task_cancel): so either this load sees the request, or the
 * wake-up finds t IDLE. (tests/model/waiter.pml checks it with the store buffered.) The
 * load is seq_cst for the fallback, where the store is an exchange (os/fence.h); on x86 it
 * is a plain load either way. A wake-up from here goes before the release: after it, t
 * may be resumed and freed. */
static noinline void settle_failed_starts(worker *w)
{
    runnable *r;
    while ((r = runnable_list_pop(&w->failed_starts)))
        task_finish_failed_start(container_of(r, task, link));
}

static force_inline void publish_idle(worker *w, task *t, int wake)
{
    fence_light_store(&t->sched, T_IDLE);
    if (wake ||
        (w->switch_cancellable && atomic_load_explicit(&t->must_cancel, memory_order_seq_cst)))
        task_wake(t);
    spin_unlock(w->switch_lock);
    w->switch_lock = NULL;
    /* what task_start put off while the lock was held (the only time it does) */
    if (unlikely(w->failed_starts.head)) settle_failed_starts(w);
}

/* A task switched away: finish what it asked for, now that its stack is not in use. */
static force_inline void after_switch(worker *w)
{
    if (w->switch_reason == SWITCH_NONE) return;
    task *t = w->switch_task;
    stack *s = t->stack_owner->stk;
    if (unlikely(stack_check(s))) stack_overflow_abort(s); /* canary mode's guard */
    switch (w->switch_reason) {
    case SWITCH_SUSPEND: {
        /* Shutdown began as t first suspended, and its walk may have missed t: t is woken,
         * and its wait turns the closing runtime into a cancellation (task_check_cancel).
         * Not a cancellation from here: through t's await that may take the lock t holds. */
        int closing = t->reg_shard == REG_NONE && registry_add(&w->rt->reg, (unsigned)w->id, t);
        if (w->switch_lock) {
            publish_idle(w, t, closing);
            break;
        }
        if (closing) task_wake(t); /* RUNNING -> NOTIFIED: the CAS below fails, t is queued */
        /* a wait in no list (a sleep): its deadline and a cancellation race the store */
        unsigned running = T_RUNNING;
        if (atomic_compare_exchange_strong_explicit(&t->sched, &running, T_IDLE,
                                                    memory_order_acq_rel, memory_order_acquire))
            break;
        /* woken while still running (NOTIFIED, which a wake-up leaves alone): it goes
         * straight back to a queue */
        atomic_store_explicit(&t->sched, T_SCHEDULED, memory_order_relaxed);
        sched_ready(t);
        break;
    }
    case SWITCH_YIELD: {
        /* RUNNING or NOTIFIED -> SCHEDULED. The only other writer now is a wake-up
         * (RUNNING -> NOTIFIED), which a task on its way back to a queue does not need:
         * a plain store, which the queue's push publishes. */
        atomic_store_explicit(&t->sched, T_SCHEDULED, memory_order_relaxed);
        if (t->pinned) {
            runnable_list_push(&w->local, &t->link);
        } else { /* an idle peer may take it while we run the next */
            push_stealable(w, &t->link);
        }
        break;
    }
    case SWITCH_EXIT:
        stack_give(&w->stacks, t->stk);
        t->stk = NULL;
        weft_future_release(&t->fut);
        break;
    }
    w->switch_reason = SWITCH_NONE;
    w->switch_task = NULL;
}

void worker_after_switch(worker *w)
{
    after_switch(w);
}

static int is_task(const runnable *r)
{
    return runnable_kind(r) <= RUNNABLE_TASK_RESUME;
}

static task *task_of_entry(runnable *r)
{
    return runnable_kind(r) == RUNNABLE_TASK_START ? container_of(r, task, start_link)
                                                   : container_of(r, task, link);
}

/* Make the task of queue entry r w's running task, ready to be switched to: the task, or
 * NULL if there is nothing to run (see task_start, which may give a starting task `offer`,
 * the stack of a task that has just ended). */
static force_inline task *enter(worker *w, runnable *r, stack *offer)
{
    task *t = task_of_entry(r);
    if (runnable_kind(r) == RUNNABLE_TASK_START) {
        if (!task_start(w, t, offer)) return NULL;
    } else {
        task_resume_scheduled(t);
    }
    w->current = t;
    stat_add(&w->stats.tasks_run, 1);
    idle_watch_timers(&w->rt->idle, timer_next(&w->timers));
    return t;
}

static void run_runnable(worker *w, runnable *r)
{
    if (!is_task(r)) {
        run_callback((callback_item *)r);
        return;
    }
    task *t = enter(w, r, NULL);
    if (!t) return;
    coro_switch(&w->sched_ctx, &t->stack_owner->stk->ctx);
    after_switch(w);
    w->current = NULL;
}

static unsigned fire_timers(worker *w)
{
    uint64_t now = clock_ns();
    unsigned n = timer_fire_due(&w->timers, now);
    if (n) stat_add(&w->stats.timers_fired, n);
    return n;
}

static runnable *pop_shared(worker *w)
{
    runnable *r = inject_pop(&w->inbox);
    if (!r) r = inject_pop(&w->rt->injectq);
    return r;
}

/* The oldest entries of our deque, several at once when it holds many: one CAS (most of
 * what a pop costs) for up to LOCAL_BATCH, never more than half of them, so that thieves
 * still find the other half. The rest of the batch is ours alone until we run it. */
static runnable *pop_batch(worker *w)
{
    int64_t half = deque_size(&w->dq) / 2;
    int max = half >= LOCAL_BATCH ? LOCAL_BATCH : half > 1 ? (int)half : 1;
    int n = deque_pop_top_n(&w->dq, (void **)w->batch, max);
    if (!n) return NULL;
    w->batch_next = 1;
    w->batch_len = (unsigned)n;
    return w->batch[0];
}

/* LIFO slot (capped) -> local FIFO -> own deque, oldest first (through the batch). */
static runnable *next_local(worker *w)
{
    runnable *r;
    if ((r = w->lifo)) {
        w->lifo = NULL;
        if (w->lifo_runs < LIFO_MAX_RUNS) {
            w->lifo_runs++;
            return r;
        }
        push_local(w, r); /* to the back, for fairness: no wake-up, we run the next one */
    }
    w->lifo_runs = 0;
    if ((r = runnable_list_pop(&w->local))) return r;
    if (w->batch_next < w->batch_len) return w->batch[w->batch_next++];
    return pop_batch(w);
}

/* The next task of w's local queues, entered and ready to be switched to, or NULL when the
 * scheduler context should run next (nothing local, a callback first, or fairness duty).
 * `offer`: see enter. Inlined into both callers: out of line, its frame and call cost
 * yield_many ~10% more instructions. */
static force_inline task *next_direct(worker *w, stack *offer)
{
    for (;;) {
        if (w->tick + 1 == FAIR_INTERVAL) return NULL; /* the scheduler's turn */
        /* callbacks run on the scheduler's own stack, outside any task */
        if (w->local.head && !is_task(w->local.head)) return NULL;
        runnable *r = next_local(w);
        if (!r) return NULL;
        w->tick++;
        task *t = enter(w, r, offer);
        if (t) return t;
    }
}

/* Leave task t for `reason`. The next task of this worker's local queues, if there is one,
 * is switched to directly; otherwise the worker's scheduler context. Whichever context
 * runs next finishes what t asked for (worker_after_switch), now that t's stack is free.
 * errno belongs to the task: it is saved and restored through the errno address of the
 * thread doing each (glibc's __errno_location() is declared const, so a compiler would
 * reuse the address of the thread the task left). */
void worker_switch_out(worker *w, task *t, int reason)
{
    w->switch_reason = reason;
    w->switch_task = t;
    task *next = next_direct(w, NULL);
    coro *to = next ? &next->stack_owner->stk->ctx : &w->sched_ctx;
    int saved_errno = *w->errno_at;
    coro_switch(&t->stack_owner->stk->ctx, to);
    w = worker_current(); /* maybe another thread's */
    after_switch(w);
    *w->errno_at = saved_errno;
}

/* Task t's body has returned, on its own stack. The next task of w's local queues runs
 * next: right here, if it has not started yet and fits on t's stack (task_start gives it
 * the stack), so a burst of spawns or a chain of them costs neither a switch nor a trip of
 * the stack through the cache; else by a switch, after which t's stack goes back to the
 * cache (after_switch). Returns the task to run here; otherwise does not return. */
task *worker_exit(worker *w, task *t)
{
    stack *s = t->stk;
    if (unlikely(stack_check(s))) stack_overflow_abort(s); /* canary mode: t's, named for t */
    task *next = next_direct(w, s);
    if (next && next->stk == s) {
        t->stk = NULL;
        weft_future_release(&t->fut); /* the runner's reference */
        return next;
    }
    w->switch_reason = SWITCH_EXIT;
    w->switch_task = t;
    coro_exit_to(&s->ctx, next ? &next->stack_owner->stk->ctx : &w->sched_ctx);
}

static runnable *next_runnable(worker *w)
{
    runnable *r;
    if (++w->tick == FAIR_INTERVAL) {
        w->tick = 0;
        fire_timers(w);
        if ((r = pop_shared(w))) return r;
        if (deque_size(&w->dq) > 1 && idle_sleepers(&w->rt->idle)) idle_notify(&w->rt->idle);
    }
    if ((r = next_local(w))) return r;
    if ((r = pop_shared(w))) return r;
    if (fire_timers(w)) return next_runnable(w);
    return steal_work(w);
}

/* ---- parking ------------------------------------------------------------------------- */

static int has_work(worker *w)
{
    weft_rt *rt = w->rt;
    if (w->lifo || w->local.head || w->batch_next < w->batch_len || deque_size(&w->dq) > 0 ||
        inject_len(&w->inbox) || inject_len(&rt->injectq))
        return 1;
    for (unsigned i = 0; i < rt->nworkers; i++)
        if (deque_size(&rt->workers[i].dq) > 0) return 1;
    return timer_next(&w->timers) <= clock_ns();
}

/* The earliest deadline this worker must wake for: its own timers, and those of peers
 * that are busy (a parked peer wakes for its own). */
static uint64_t park_deadline(worker *w)
{
    weft_rt *rt = w->rt;
    uint64_t deadline = timer_next(&w->timers);
    for (unsigned i = 0; i < rt->nworkers; i++) {
        worker *peer = &rt->workers[i];
        if (peer != w && !atomic_load_explicit(&peer->sleeping, memory_order_acquire)) {
            uint64_t d = timer_next(&peer->timers);
            if (d < deadline) deadline = d;
        }
    }
    return deadline;
}

/* epoll_pwait2 (ns timeouts) needs Linux 5.11 and is unknown to valgrind 3.19: fall back to
 * epoll_wait, rounding the timeout up so timers are never served early. */
static atomic_int no_epoll_pwait2;

static int epoll_sleep(int epfd, struct epoll_event *events, int max, const struct timespec *ts)
{
    if (!atomic_load_explicit(&no_epoll_pwait2, memory_order_relaxed)) {
        int n = epoll_pwait2(epfd, events, max, ts, NULL);
        if (n >= 0 || errno != ENOSYS) return n;
        atomic_store_explicit(&no_epoll_pwait2, 1, memory_order_relaxed);
    }
    int ms = -1;
    if (ts) {
        uint64_t ns = (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
        uint64_t rounded = (ns + 999999u) / 1000000u;
        ms = rounded > INT32_MAX ? INT32_MAX : (int)rounded;
    }
    return epoll_wait(epfd, events, max, ms);
}

static void worker_sleep(worker *w, uint64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != UINT64_MAX) {
        uint64_t now = clock_ns();
        uint64_t wait = deadline > now ? deadline - now : 0;
        ts.tv_sec = (time_t)(wait / 1000000000u);
        ts.tv_nsec = (long)(wait % 1000000000u);
        tsp = &ts;
    }
    struct epoll_event events[16];
    int n = epoll_sleep(w->epfd, events, 16, tsp);
    for (int i = 0; i < n; i++) {
        if (events[i].data.ptr == NULL) { /* the wake-up eventfd */
            uint64_t count;
            if (read(w->wakefd, &count, sizeof count) < 0 && errno != EAGAIN) break;
        }
    }
}

static void worker_park(worker *w)
{
    weft_rt *rt = w->rt;
    uint64_t deadline = park_deadline(w);
    idle_enter(&rt->idle, w, deadline);
    if (has_work(w)) {
        idle_leave(&rt->idle, w);
        return;
    }
    if (atomic_load_explicit(&rt->closing, memory_order_acquire)) rt_note_quiet(rt);
    if (!atomic_load_explicit(&rt->stopping, memory_order_acquire)) {
        stat_add(&w->stats.parks, 1);
        worker_sleep(w, deadline);
    }
    idle_leave(&rt->idle, w);
    fire_timers(w);
    steal_timers(w);
}

void *worker_main(void *arg)
{
    worker *w = arg;
    weft_rt *rt = w->rt;
    worker_set_current(w);
    if (w->pinned_cpu >= 0) topo_pin_self((unsigned)w->pinned_cpu);
    stack_thread_init();
    coro_init_thread(&w->sched_ctx);
    w->errno_at = &errno;
    objpool_thread_cache(&w->objects);
    atomic_fetch_add_explicit(&rt->threads_started, 1, memory_order_release);
    for (;;) {
        runnable *r = next_runnable(w);
        if (r) {
            if (w->searching) idle_found_work(rt, w);
            run_runnable(w, r);
            continue;
        }
        if (atomic_load_explicit(&rt->stopping, memory_order_acquire)) break;
        worker_park(w);
    }
    objpool_thread_cache(NULL);
    coro_destroy_thread(&w->sched_ctx);
    stack_thread_exit();
    worker_set_current(NULL);
    return NULL;
}

/* ---- setup --------------------------------------------------------------------------- */

int worker_init(worker *w, weft_rt *rt, int id)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->rt = rt;
    w->pinned_cpu = -1;
    w->rng = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
    w->epfd = w->wakefd = -1;
    inject_init(&w->inbox);
    atomic_init(&w->sleeping, 0);
    stack_cache_init(&w->stacks, rt->stacks);
    if (deque_init(&w->dq, 8) || timer_heap_init(&w->timers)) return -ENOMEM;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epfd < 0 || w->wakefd < 0) return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev)) return -errno;
    return 0;
}

void worker_destroy(worker *w)
{
    stack_cache_flush(&w->stacks);
    deque_destroy(&w->dq);
    timer_heap_destroy(&w->timers);
    inject_destroy(&w->inbox);
    if (w->epfd >= 0) close(w->epfd);
    if (w->wakefd >= 0) close(w->wakefd);
    mem_free(w->victims, sizeof(int) * (w->rt->nworkers ? w->rt->nworkers : 1));
}

void worker_unpark(worker *w)
{
    uint64_t one = 1;
    if (write(w->wakefd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is saturated, so a wake-up is already pending */
    }
}
