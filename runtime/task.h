/*
 * task: a future that runs a stackful coroutine.
 *
 * Scheduling state (`sched`, one atomic word, the only thing wakers touch; its run part,
 * SCHED_RUN, is one of these, and its wait part, SCHED_WAIT, is the current wait's state):
 *   NEW        spawned, not started; whoever moves it NEW -> RUNNING runs the body
 *              (a worker that popped it, or an awaiter running it inline)
 *   SCHEDULED  in a run queue, will be resumed
 *   RUNNING    on a worker; a wake-up turns it into NOTIFIED
 *   NOTIFIED   running, and woken since it last checked: it must not sleep
 *   IDLE       suspended; a wake-up moves it to SCHEDULED and enqueues it
 *   DONE       finished
 * A task suspends by switching to its worker's scheduler context, which then moves it
 * RUNNING -> IDLE (or NOTIFIED -> SCHEDULED): the task is published as resumable only
 * after its stack is no longer in use ("publish after leaving the stack").
 *
 * Inline children: awaiting a task that has not started runs its body right there on
 * the awaiter's stack (Cilk/Lace-style); `stack_owner` names whose stack a task runs on.
 *
 * The runtime holds one reference on a task from spawn until it is done. A wake-up needs
 * none: ending a wait and scheduling the task is one CAS on `sched` (waitq.c's end_wait).
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

/* The state of the task's current wait (waitq.c), kept in the same word as the run state,
 * so that ending a wait and making the task runnable is one CAS. */
enum { W_NONE, W_WAITING, W_SIGNALED, W_CANCELLED, W_TIMEDOUT };

#define SCHED_RUN(s) ((s)&7u)
#define SCHED_WAIT(s) (((s) >> 3) & 7u)
#define SCHED(run, wait) ((unsigned)(run) | (unsigned)(wait) << 3)

typedef struct task {
    weft_future fut;      /* first: a task is a future; fut.rt is the task's runtime */
    runnable start_link;  /* the spawn's queue entry */
    runnable link;        /* the current wake-up's queue entry */
    stack *stk;           /* its own stack, with its context, from its start to its end */
    struct task *stack_owner;
    union {
        struct { /* until the body starts */
            weft_fn fn;
            void *arg;
        };
        const char *waiting_on; /* then: what it waits on, for task dumps (waitq.c) */
    };
    char *name;
    _Atomic(weft_future *) awaiting; /* the future this task awaits (cancellation follows it) */
    struct task *reg_next, *reg_prev; /* suspended-task registry, see registry.c */
    uint32_t stack_size;              /* 0: the runtime's default */
    atomic_uint sched;
    atomic_int cancel_requests;       /* Task.cancelling() */
    int fail_err;                     /* weft_fail()'s error, 0 if it was not called */
    int16_t home;                     /* worker to start on, -1: anywhere */
    uint16_t reg_shard;               /* registry shard, REG_NONE when not registered */
    uint8_t pinned;                   /* never leaves `home` */
    atomic_bool must_cancel;          /* a request not yet delivered to a wait */
    atomic_bool shutdown_cancelled;   /* shutdown's one cancellation was requested */
    atomic_bool awaiting_released;    /* a canceller that took `awaiting` is done with it */
} task;

#define REG_NONE UINT16_MAX

struct worker;

static inline task *task_of(weft_future *f)
{
    return (task *)f;
}

task *task_current(void); /* the running task, NULL outside tasks */
/* Make t runnable if it is suspended (or note the wake-up if it is running). */
void task_wake(task *t);
/* Move the run part of t->sched from `from` to `to`, keeping the wait part. */
static inline int task_sched_move(task *t, unsigned from, unsigned to)
{
    unsigned s = atomic_load_explicit(&t->sched, memory_order_acquire);
    while (SCHED_RUN(s) == from)
        if (atomic_compare_exchange_weak_explicit(&t->sched, &s, SCHED(to, SCHED_WAIT(s)),
                                                  memory_order_acq_rel, memory_order_acquire))
            return 1;
    return 0;
}
/* The run state a wake-up moves `run` to; `run` itself when there is nothing to do. */
static inline unsigned task_woken(unsigned run)
{
    return run == T_IDLE ? T_SCHEDULED : run == T_RUNNING ? T_NOTIFIED : run;
}
/* Suspend the current task until task_wake(); returns on whichever worker resumes it. */
void task_suspend(void);
/* Request cancellation; 1 if requested, 0 if t is done. */
int task_cancel(task *t);
/* Shutdown's cancellation: at most once per task. */
void task_shutdown_cancel(task *t);
/* Give t, taken from a queue through its start entry, a stack to start on, for w, the
 * current worker: 1, or 0 if there is nothing to run (the entry was stale, or the task was
 * cancelled before it started and has been settled). */
int task_start(struct worker *w, task *t);
/* SCHEDULED -> RUNNING for a task taken from a queue through its resume entry. Others
 * change a SCHEDULED task's word only to end a wait that is still W_WAITING (a
 * cancellation woke it mid-wait): otherwise a plain store does, and saves a locked
 * instruction per switch. */
static inline void task_resume_scheduled(task *t)
{
    unsigned s = atomic_load_explicit(&t->sched, memory_order_acquire);
    if (SCHED_WAIT(s) == W_WAITING) task_sched_move(t, T_SCHEDULED, T_RUNNING);
    else atomic_store_explicit(&t->sched, SCHED(T_RUNNING, SCHED_WAIT(s)), memory_order_relaxed);
}
void task_free(task *t);

#endif
