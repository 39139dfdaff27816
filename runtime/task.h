/*
 * task: a future that runs a stackful coroutine.
 *
 * Scheduling state (`sched`, one atomic word, the only part of a task wakers touch):
 *   NEW        spawned, not started; whoever moves it NEW -> RUNNING runs the body
 *              (a worker that popped it, or an awaiter running it inline)
 *   SCHEDULED  in a run queue, will be resumed
 *   RUNNING    on a worker; a wake-up turns it into NOTIFIED
 *   NOTIFIED   running, and woken since it last checked: it must not sleep
 *   IDLE       suspended; a wake-up moves it to SCHEDULED and enqueues it
 *   DONE       finished
 * A task suspends by switching away (to the next task, or to its worker's scheduler
 * context), and whatever runs next publishes it as resumable, only once its stack is no
 * longer in use ("publish after leaving the stack"): for a wait in a list, with the list's
 * lock still held, by a plain store of IDLE (waitq.c says why that is enough); for a wait
 * in no list (a sleep), by a CAS RUNNING -> IDLE, or NOTIFIED -> SCHEDULED and a queue.
 *
 * Inline children: awaiting a task that has not started runs its body right there on
 * the awaiter's stack (Cilk/Lace-style); `stack_owner` names whose stack a task runs on,
 * and `inline_await` the await that runs it. Such an await publishes what it awaits (for
 * cancellation) only if the child switches out (task.c).
 *
 * The runtime holds one reference on a task from spawn until it is done. A wake-up needs
 * none: a waker touches the task only while the task cannot leave its wait (waitq.c).
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stdatomic.h>
#include <stdint.h>

#include "coro.h"
#include "future.h"
#include "runnable.h"
#include "spinlock.h"
#include "stack.h"

enum { T_NEW, T_SCHEDULED, T_RUNNING, T_NOTIFIED, T_IDLE, T_DONE };

typedef struct task {
    weft_future fut; /* first: a task is a future; fut.rt is the task's runtime */
    /* What every switch and wake-up touches, in 32 bytes: as the object pool places tasks
     * (160 bytes) on 32-byte boundaries, these share one cache line (not in the libc
     * allocator builds, whose malloc aligns to 16). */
    runnable link;                    /* the current wake-up's queue entry */
    stack *stk;                       /* its own stack, with its context, from start to end */
    struct task *stack_owner;         /* whose stack it runs on: itself, or an inline awaiter */
    atomic_uint sched;
    atomic_bool must_cancel;          /* a request not yet delivered to a wait */
    uint8_t stack_shift : 6;          /* stack_shift() of the size asked for; 0: the default */
    uint8_t pinned : 1;               /* never leaves `home` */
    uint16_t reg_shard;               /* registry shard, REG_NONE when not registered */
    /* the rest */
    runnable start_link; /* the spawn's queue entry */
    union {
        struct { /* until the body starts */
            weft_fn fn;
            void *arg;
        };
        struct { /* then: */
            _Atomic(const char *) waiting_on;  /* while IDLE: what it waits on, for dumps */
            struct inline_await *inline_await; /* the await running it inline, else NULL */
        };
    };
    _Atomic(weft_future *) awaiting;  /* the future this task awaits (cancellation follows it) */
    char *name;
    struct task *reg_next, *reg_prev; /* suspended-task registry, see registry.c */
    atomic_int cancel_requests;       /* Task.cancelling() */
    int16_t home;                     /* worker to start on, -1: anywhere */
    atomic_bool shutdown_cancelled;   /* shutdown's one cancellation was requested */
    atomic_bool awaiting_lent;        /* a canceller is using `awaiting` (task.c) */
} task;

_Static_assert(sizeof(weft_future) % 32 == 0 && sizeof(task) % 32 == 0,
               "a task's first 32 bytes after its future stay within one cache line");

#define REG_NONE UINT16_MAX

/* An await that runs its child inline, on the awaiter's stack (task.c): the awaiter's
 * `awaiting` is published only if the child switches out while it runs. */
struct inline_await {
    task *parent;  /* the awaiter */
    int published; /* parent->awaiting names the child */
};

struct worker;

/* t runs inline and has not published what its awaiter awaits (task_publish_inline). The
 * first test reads the line every switch reads; only an inline child reads further. */
static inline int task_inline_unpublished(const task *t)
{
    return t->stack_owner != t && t->inline_await && !t->inline_await->published;
}

static inline task *task_of(weft_future *f)
{
    return (task *)f;
}

task *task_current(void); /* the running task, NULL outside tasks (worker.c) */
/* Take t's pending cancellation, if it has one: 1 if taken. Exactly one taker gets it. */
static inline int task_cancel_take(task *t)
{
    return atomic_load_explicit(&t->must_cancel, memory_order_seq_cst) &&
           atomic_exchange_explicit(&t->must_cancel, 0, memory_order_seq_cst);
}
/* Put back a cancellation taken but not delivered: it stays pending, for t's next wait. */
static inline void task_cancel_keep(task *t)
{
    atomic_store_explicit(&t->must_cancel, 1, memory_order_release);
}
/* t, running inline, is about to switch out: publish what its inline awaiters await. */
void task_publish_inline(task *t);
/* Make t runnable if it is suspended (or note the wake-up if it is running). */
void task_wake(task *t);
/* Request cancellation; 1 if requested, 0 if t is done. */
int task_cancel(task *t);
/* Shutdown's cancellation: at most once per task. */
void task_shutdown_cancel(task *t);
/* Give t, taken from a queue through its start entry, a stack to start on, for w, the
 * current worker: 1, or 0 if there is nothing to run (the entry was stale, or the task was
 * cancelled before it started or got no stack, and has been settled, or will be once the
 * switch in progress is done: w->failed_starts). `offer`: the stack of a task that has
 * just ended on w, or NULL; t takes it over (t->stk == offer) if it is big enough for t. */
int task_start(struct worker *w, task *t, stack *offer);
/* Settle t, which task_start claimed but could not start (worker.c runs those it put off). */
void task_finish_failed_start(task *t);
/* SCHEDULED -> RUNNING for a task taken from a queue through its resume entry. Nobody
 * else writes a SCHEDULED (or NOTIFIED) task's word, since a wake-up has nothing to do
 * there: a plain store does, and the queue it came from ordered it after the waker's. */
static inline void task_resume_scheduled(task *t)
{
    atomic_store_explicit(&t->sched, T_RUNNING, memory_order_relaxed);
}
void task_free(task *t);
/* Drop the caller's handle to t, whose references are 2, without a read-modify-write when
 * the other is the start entry in the caller's own LIFO slot (a spawn whose handle is let
 * go at once): 1 if done, 0 if the caller must drop it the usual way. */
int task_release_spawned(task *t);

#endif
