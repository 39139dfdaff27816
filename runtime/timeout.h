/*
 * timeout: asyncio.timeout() as a scope on the current task (weft_timeout_*), and the
 * scope weft_wait_for awaits in (compose.c), which keeps one on its stack.
 */
#ifndef WEFT_TIMEOUT_H
#define WEFT_TIMEOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include "task.h"
#include "timer.h"

enum { TIMEOUT_ACTIVE, TIMEOUT_EXPIRED };

struct weft_timeout {
    timer_node timer;
    task *task; /* the scope's task (a reference) */
    atomic_int state;
    int snapshot; /* the task's cancel_requests when the scope began */
    uint32_t magic;
};

/* Begin a scope on the current task with a deadline (CLOCK_MONOTONIC ns, UINT64_MAX: none):
 * 0, -EPERM outside a task, -ENOMEM. */
int timeout_scope_begin(weft_timeout *to, uint64_t deadline);
/* End it: 0 if the deadline did not fire; -ETIMEDOUT if it fired and its cancellation was
 * the last one outstanding; -ECANCELED if it fired but another is outstanding. */
int timeout_scope_end(weft_timeout *to);

#endif
