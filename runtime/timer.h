/*
 * timer: one worker's timers, a binary min-heap of caller-owned nodes ordered by
 * (deadline, sequence), so equal deadlines fire in the order they were armed.
 *
 * Any thread may arm, cancel or fire (an idle worker fires a busy peer's due timers);
 * the heap's spinlock guards the array and every node's `index` and `state`. A node is
 * IDLE (not in a heap), ARMED (in this heap) or FIRING (popped; its callback is running
 * on some thread, outside the lock). timer_cancel() of a FIRING node waits until the
 * callback has returned, so after timer_cancel() the node's memory may be reused: nodes
 * can live on a task's stack.
 */
#ifndef WEFT_TIMER_H
#define WEFT_TIMER_H

#include <stdatomic.h>
#include <stdint.h>

#include "spinlock.h"

enum { TIMER_IDLE, TIMER_ARMED, TIMER_FIRING };

typedef struct timer_node {
    uint64_t deadline; /* CLOCK_MONOTONIC ns */
    uint64_t seq;
    void (*fire)(struct timer_node *node);
    struct timer_heap *heap;
    uint32_t index;
    atomic_int state;
} timer_node;

typedef struct timer_heap {
    spinlock lock;
    timer_node **nodes;
    uint32_t len, cap;
    uint64_t seq;
    _Atomic uint64_t next_deadline; /* UINT64_MAX when empty; read without the lock */
    atomic_int firing;              /* a thread is in timer_fire_due: one firer at a time */
} timer_heap;

int timer_heap_init(timer_heap *h);
void timer_heap_destroy(timer_heap *h);
static inline void timer_node_init(timer_node *n, void (*fire)(timer_node *))
{
    n->fire = fire;
    n->heap = NULL;
    n->index = 0;
    atomic_init(&n->state, TIMER_IDLE);
}
int timer_arm(timer_heap *h, timer_node *n, uint64_t deadline); /* 0 or -ENOMEM */
int timer_cancel(timer_node *n); /* 1 if it was armed and now will never fire, else 0 */
/* Fires due timers in (deadline, seq) order and returns how many; 0 at once if another
 * thread is firing this heap (it will fire them, or its owner's next look will). */
unsigned timer_fire_due(timer_heap *h, uint64_t now);

static inline uint64_t timer_next(timer_heap *h)
{
    return atomic_load_explicit(&h->next_deadline, memory_order_acquire);
}

#endif
