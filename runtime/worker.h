/*
 * worker: one per-core event loop. Each worker thread owns a Chase-Lev deque (spawned and
 * yielded tasks; the owner runs them oldest first and thieves take the oldest half), a
 * LIFO slot for the task it spawned or woke last, a FIFO of pinned tasks and call_soon
 * callbacks, a timer heap, an inbox other threads post to, and an epoll instance it parks in.
 *
 * Owner-only fields are marked so; the deque, inbox, timers and stats may be touched by
 * other threads as their own headers say. Worker-local state is reached only through
 * worker_current(), a non-inlined accessor behind a compiler barrier, because a task may
 * resume on another thread and compilers cache thread-local addresses.
 */
#ifndef WEFT_WORKER_H
#define WEFT_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "coro.h"
#include "deque.h"
#include "inject.h"
#include "objpool.h"
#include "runnable.h"
#include "stack.h"
#include "task.h"
#include "timer.h"

struct weft_rt;

/* Each counter but stolen_from is written only by its worker (stat_add: a relaxed load and
 * store, no read-modify-write on the hot path); weft_stats reads them from any thread. */
typedef struct worker_stats {
    _Atomic uint64_t tasks_run, steals, stolen_from, parks, io_polls, timers_fired,
        max_queue_depth;
} worker_stats;

static inline void stat_add(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

enum { SWITCH_NONE, SWITCH_SUSPEND, SWITCH_YIELD, SWITCH_EXIT };

/* Deque entries a worker pops at once (worker.c, pop_batch). yield_many: 4 -> 8 saved ~2.5%
 * with 1 worker and ~3% with 2; 16 saved ~4% with 1 but cost ~5% with 2. */
#define LOCAL_BATCH 8

typedef struct worker {
    /* owner-only */
    int id;
    struct weft_rt *rt;
    coro sched_ctx;            /* the worker thread's own stack */
    task *current;             /* the running task (innermost inline child) */
    runnable *lifo;            /* LIFO slot: the task this worker spawned or woke last */
    unsigned lifo_runs;        /* consecutive LIFO-slot runs (capped at 3) */
    uint32_t tick;             /* runnables taken since the last fairness turn */
    int switch_reason;         /* why the current task switched back to the scheduler */
    task *switch_task;
    spinlock *switch_lock;     /* a suspension's wait list lock, held until the switch is done */
    int switch_cancellable;    /* SWITCH_SUSPEND: a cancellation ends the wait */
    runnable_list failed_starts; /* tasks to settle once switch_lock is released (task_start) */
    runnable_list local;       /* pinned tasks and call_soon callbacks, FIFO */
    runnable *batch[LOCAL_BATCH]; /* the oldest deque entries, popped together (worker.c) */
    unsigned batch_next, batch_len;
    stack_cache stacks;
    objpool_cache objects;     /* tasks and futures (objpool.c) */
    uint64_t rng;
    int searching;
    int *victims;              /* peers, nearest in the topology first */
    unsigned cpu;              /* PU the worker is pinned to */
    int pinned_cpu;
    int *errno_at;             /* this thread's errno (task.c saves and restores it) */
    /* shared */
    deque dq;
    inject inbox;
    timer_heap timers;
    int epfd, wakefd;
    atomic_int sleeping; /* in the idle set (park.c) */
    uint64_t park_until; /* while sleeping: when it wakes by itself (under the idle mutex) */
    worker_stats stats;
    pthread_t thread;
} worker;

worker *worker_current(void);
void worker_set_current(worker *w);

/* Place a task that was spawned (w: the caller's worker if it is one of t's runtime, else
 * NULL) or became ready. From a worker of t's runtime it goes to that worker's LIFO slot
 * (the slot's previous occupant to the deque's bottom); otherwise to t's home inbox or the
 * runtime's inject queue; an idle worker is woken if needed. */
void sched_spawn(worker *w, task *t);
void sched_ready(task *t);
/* Queue a callback item on worker w (the current worker), or from any thread on the
 * runtime (worker_id -1: any worker) or on one worker's inbox (in order). */
void sched_call_soon(worker *w, callback_item *cb);
int sched_call_threadsafe(struct weft_rt *rt, int worker_id, callback_item *cb);

void *worker_main(void *arg); /* the worker thread */
int worker_init(worker *w, struct weft_rt *rt, int id);
void worker_destroy(worker *w);
void worker_unpark(worker *w); /* kick w out of epoll_wait */

/* Switch away from the current task t (SWITCH_SUSPEND or SWITCH_YIELD). An inline child
 * has published what its awaiters await first (task_publish_inline: its yield and its
 * wait do it, the wait not under its list's lock). */
void worker_switch_out(worker *w, task *t, int reason);
/* Suspend t until task_wake(). `held`: the lock of the wait list t's waiter is in, held by
 * the caller, or NULL; the switch releases it once t is published IDLE (see worker.c). */
static inline void worker_suspend(worker *w, task *t, spinlock *held, int cancellable)
{
    w->switch_lock = held;
    w->switch_cancellable = cancellable;
    worker_switch_out(w, t, SWITCH_SUSPEND);
}
/* After t's body returned: the next task to run on t's stack, or no return (see worker.c). */
task *worker_exit(worker *w, task *t);
/* Finish the switch-out a task asked for, if one is pending on w. */
void worker_after_switch(worker *w);

#endif
