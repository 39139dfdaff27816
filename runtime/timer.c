/*
 * timer.c: per-worker timer heaps (see timer.h for the ownership rules).
 *
 * Invariants, all under h->lock: nodes[0..len) is a min-heap by (deadline, seq);
 * nodes[i]->index == i and state == ARMED for every node in it; next_deadline mirrors
 * nodes[0]->deadline (release store, so a lock-free reader that sees a deadline also sees
 * the node it belongs to armed). A popped node is FIRING until its callback returns, then
 * IDLE (release store, paired with timer_cancel's acquire spin).
 */
#include "timer.h"

#include <errno.h>

#include "alloc.h"

static int node_before(const timer_node *a, const timer_node *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_place(timer_heap *h, timer_node *n, uint32_t i)
{
    h->nodes[i] = n;
    n->index = i;
}

static void sift_up(timer_heap *h, uint32_t i)
{
    timer_node *n = h->nodes[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!node_before(n, h->nodes[parent])) break;
        heap_place(h, h->nodes[parent], i);
        i = parent;
    }
    heap_place(h, n, i);
}

static void sift_down(timer_heap *h, uint32_t i)
{
    timer_node *n = h->nodes[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->len) break;
        if (child + 1 < h->len && node_before(h->nodes[child + 1], h->nodes[child])) child++;
        if (!node_before(h->nodes[child], n)) break;
        heap_place(h, h->nodes[child], i);
        i = child;
    }
    heap_place(h, n, i);
}

static void publish_next(timer_heap *h)
{
    atomic_store_explicit(&h->next_deadline, h->len ? h->nodes[0]->deadline : UINT64_MAX,
                          memory_order_release);
}

static void heap_remove_at(timer_heap *h, uint32_t i)
{
    timer_node *last = h->nodes[--h->len];
    if (i < h->len) {
        heap_place(h, last, i);
        sift_down(h, i);
        sift_up(h, last->index);
    }
}

int timer_heap_init(timer_heap *h)
{
    spin_init(&h->lock);
    h->cap = 64;
    h->len = 0;
    h->seq = 0;
    h->nodes = mem_alloc(h->cap * sizeof *h->nodes);
    atomic_init(&h->next_deadline, UINT64_MAX);
    atomic_init(&h->firing, 0);
    return h->nodes ? 0 : -ENOMEM;
}

void timer_heap_destroy(timer_heap *h)
{
    for (uint32_t i = 0; i < h->len; i++) { /* detach what was never fired */
        h->nodes[i]->heap = NULL;
        atomic_store_explicit(&h->nodes[i]->state, TIMER_IDLE, memory_order_relaxed);
    }
    mem_free(h->nodes, h->cap * sizeof *h->nodes);
    h->nodes = NULL;
}

int timer_arm(timer_heap *h, timer_node *n, uint64_t deadline)
{
    spin_lock(&h->lock);
    if (h->len == h->cap) {
        timer_node **grown = mem_alloc(2 * h->cap * sizeof *grown);
        if (!grown) {
            spin_unlock(&h->lock);
            return -ENOMEM;
        }
        for (uint32_t i = 0; i < h->len; i++) grown[i] = h->nodes[i];
        mem_free(h->nodes, h->cap * sizeof *h->nodes);
        h->nodes = grown;
        h->cap *= 2;
    }
    n->deadline = deadline;
    n->seq = h->seq++;
    n->heap = h;
    atomic_store_explicit(&n->state, TIMER_ARMED, memory_order_relaxed);
    heap_place(h, n, h->len++);
    sift_up(h, n->index);
    publish_next(h);
    spin_unlock(&h->lock);
    return 0;
}

int timer_cancel(timer_node *n)
{
    timer_heap *h = n->heap;
    if (!h) return 0;
    spin_lock(&h->lock);
    int state = atomic_load_explicit(&n->state, memory_order_relaxed);
    if (state == TIMER_ARMED) {
        heap_remove_at(h, n->index);
        atomic_store_explicit(&n->state, TIMER_IDLE, memory_order_relaxed);
        publish_next(h);
        spin_unlock(&h->lock);
        return 1;
    }
    spin_unlock(&h->lock);
    for (unsigned spins = 0; atomic_load_explicit(&n->state, memory_order_acquire) == TIMER_FIRING;)
        spin_pause(++spins);
    return 0;
}

unsigned timer_fire_due(timer_heap *h, uint64_t now)
{
    unsigned fired = 0;
    if (timer_next(h) > now) return 0;
    /* Callbacks run outside the lock; two firers would run them concurrently, out of order. */
    if (atomic_exchange_explicit(&h->firing, 1, memory_order_acquire)) return 0;
    while (timer_next(h) <= now) {
        spin_lock(&h->lock);
        if (!h->len || h->nodes[0]->deadline > now) {
            spin_unlock(&h->lock);
            break;
        }
        timer_node *n = h->nodes[0];
        heap_remove_at(h, 0);
        atomic_store_explicit(&n->state, TIMER_FIRING, memory_order_relaxed);
        publish_next(h);
        spin_unlock(&h->lock);
        n->fire(n);
        atomic_store_explicit(&n->state, TIMER_IDLE, memory_order_release);
        fired++;
    }
    atomic_store_explicit(&h->firing, 0, memory_order_release);
    return fired;
}
