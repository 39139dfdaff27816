/*
 * queue.c: asyncio.Queue, LifoQueue and PriorityQueue (Python 3.13, with shutdown) over the
 * one waiting mechanism (waitq.h).
 *
 * Ownership: every field but the immutable `magic`, `kind`, `maxsize` and `cmp` is guarded
 * by `lock`, which any thread may take (workers, tasks, foreign threads). Nothing waits
 * under it. What allocates under it: the item storage, which grows on put, and binding a
 * waiter (waiter_init), which makes a foreign thread's parker on its first wait. `cmp`
 * runs under it, so it must not call the queue.
 *
 * Storage: `count` slots in `slots[cap]` (cap a power of two), each an item and its `seq`,
 * the number of puts before it. FIFO and LIFO keep a ring from `head` (the oldest) that is
 * sorted by seq; a priority queue keeps a binary heap ordered by cmp and then seq. The
 * slots double when full and never shrink.
 *
 * Lifetime: weft_queue_free() needs every call on the queue to have returned (a woken
 * waiter still takes the lock on its way out); it refuses while callers are listed.
 *
 * Waiting: getters, putters and joiners are FIFO waitlists of waiter records on the
 * waiting callers' stacks. Invariants at every unlock:
 *   - a getter waits only while the queue is empty (so: getters listed => count == 0);
 *   - a putter waits only while the queue is full, or while a putter woken for the free
 *     room has yet to use it or pass it on;
 *   - a joiner waits only while `unfinished` > 0;
 *
 * Getters are handed their item. A put with a getter waiting gives the item to the first
 * one (waiter_signal's value; the seq goes into its queue_getter) instead of storing it:
 * the woken getter returns it without touching the queue again. A getter cancelled after
 * the hand-off (WAIT_SIGNALED_CANCELLED) takes the item back under the lock and puts it
 * where it would be had it never left (by seq: the front of a FIFO, its place in a LIFO or
 * priority order) or, when a getter waits, hands it on; so no item is lost or doubled and
 * the next get returns it (catalogue case 45). If even the memory to put it back is
 * missing, the get keeps the item and completes, and the cancellation stays pending for the
 * task's next wait. A handed item has left the queue, and that is the one difference from
 * CPython, where it stays in the queue until the woken getter runs. So in that window qsize
 * and full do not count it (a Queue(1) with a getter waiting takes one put, and has room for
 * one more), an immediate shutdown does not drop it, and a late cancellation can leave
 * qsize above maxsize until gets bring it down.
 *
 * Putters follow asyncio: "wake, then re-check". A get that frees a slot wakes the first
 * putter, which takes the lock again and inserts if there is still room, or waits again at
 * the back if a put_nowait took the room first. A woken putter that leaves the room free
 * passes the wake-up on to the next putter: when it is cancelled before it looks (it then
 * inserts nothing), and when its item goes straight to a getter that came meanwhile. (The
 * getter could not insert the putter's item for it: the put would then have happened
 * although a late-cancelled putter is told -ECANCELED.)
 *
 * Shutdown is permanent and wakes every getter and putter with -ESHUTDOWN (a listed getter
 * means the queue is empty). After it, puts fail and gets drain what is left; an immediate
 * shutdown drops the items and their unfinished counts (`shut` 2) and so do late-cancelled
 * getters that bring an item back after it.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "common.h"
#include "spinlock.h"
#include "task.h"
#include "waitq.h"
#include "weft.h"

#define QUEUE_MAGIC 0x71756575u /* "queu" */
#define QUEUE_FREED 0x64656164u
#define QUEUE_MIN_CAP 8

enum { QUEUE_FIFO, QUEUE_LIFO, QUEUE_PRIORITY };
enum { QUEUE_OPEN, QUEUE_SHUT, QUEUE_SHUT_IMMEDIATE };

typedef struct queue_slot {
    void *item;
    uint64_t seq;
} queue_slot;

/* A waiting getter: the putter that hands it an item writes the item's seq here. */
typedef struct queue_getter {
    waiter w;
    uint64_t seq;
} queue_getter;

typedef int (*queue_cmp)(const void *a, const void *b);

struct weft_queue {
    spinlock lock;
    uint32_t magic;
    uint8_t kind;
    uint8_t shut;   /* QUEUE_OPEN, QUEUE_SHUT, QUEUE_SHUT_IMMEDIATE */
    size_t maxsize; /* 0: unbounded */
    queue_cmp cmp;  /* priority queues */
    queue_slot *slots;
    size_t cap, head, count;
    uint64_t seq;      /* puts so far */
    size_t unfinished; /* puts not yet matched by task_done (or dropped by shutdown) */
    waitlist getters, putters, joiners;
};

static int queue_valid(const weft_queue *q)
{
    return q && q->magic == QUEUE_MAGIC;
}

/* ---- storage ------------------------------------------------------------------------- */

static queue_slot *ring_at(const weft_queue *q, size_t i)
{
    return &q->slots[(q->head + i) & (q->cap - 1)];
}

/* Double the slots, unrolling the ring so that head is 0 again. */
static int queue_grow(weft_queue *q)
{
    size_t cap = q->cap * 2;
    if (cap > SIZE_MAX / sizeof(queue_slot)) return -ENOMEM;
    queue_slot *s = mem_alloc(cap * sizeof *s);
    if (!s) return -ENOMEM;
    size_t first = q->cap - q->head < q->count ? q->cap - q->head : q->count;
    memcpy(s, q->slots + q->head, first * sizeof *s);
    memcpy(s + first, q->slots, (q->count - first) * sizeof *s);
    mem_free(q->slots, q->cap * sizeof *s);
    q->slots = s;
    q->cap = cap;
    q->head = 0;
    return 0;
}

static int heap_less(const weft_queue *q, const queue_slot *a, const queue_slot *b)
{
    int c = q->cmp(a->item, b->item);
    return c < 0 || (c == 0 && a->seq < b->seq);
}

static void heap_push(weft_queue *q, queue_slot s)
{
    queue_slot *h = q->slots;
    size_t i = q->count;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(q, &s, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = s;
}

static void heap_pop(weft_queue *q)
{
    queue_slot *h = q->slots, last = h[q->count - 1];
    size_t n = q->count - 1, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(q, &h[c + 1], &h[c])) c++;
        if (!heap_less(q, &h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
}

/* Store an item in its place: a new one (seq larger than any stored) or one brought back. */
static int queue_store(weft_queue *q, void *item, uint64_t seq)
{
    if (unlikely(q->count == q->cap) && queue_grow(q)) return -ENOMEM;
    queue_slot s = {item, seq};
    if (q->kind == QUEUE_PRIORITY) {
        heap_push(q, s);
    } else {
        size_t at = q->count; /* the ring stays sorted by seq: shift the older ones down */
        if (unlikely(at && ring_at(q, at - 1)->seq > seq)) {
            for (at = 0; ring_at(q, at)->seq < seq; at++) {
            }
            q->head = (q->head - 1) & (q->cap - 1);
            for (size_t i = 0; i < at; i++) *ring_at(q, i) = *ring_at(q, i + 1);
        }
        *ring_at(q, at) = s;
    }
    q->count++;
    return 0;
}

static void *queue_take(weft_queue *q)
{
    void *item;
    if (q->kind == QUEUE_FIFO) {
        item = q->slots[q->head].item;
        q->head = (q->head + 1) & (q->cap - 1);
    } else if (q->kind == QUEUE_LIFO) {
        item = ring_at(q, q->count - 1)->item;
    } else {
        item = q->slots[0].item;
        heap_pop(q);
    }
    q->count--;
    return item;
}

/* ---- waiting --------------------------------------------------------------------------- */

static int queue_has_room(const weft_queue *q)
{
    return !q->maxsize || q->count < q->maxsize;
}

/* Hand item to the first waiting getter. Lock held; 1, or 0 if no getter waits. */
static int queue_hand(weft_queue *q, void *item, uint64_t seq)
{
    waiter *w = waitlist_pop(&q->getters);
    if (!w) return 0;
    container_of(w, queue_getter, w)->seq = seq;
    waiter_signal(w, 0, item);
    return 1;
}

/* Wake the first putter that is still waiting (asyncio's _wakeup_next). Lock held. */
static void queue_wake_putter(weft_queue *q)
{
    waitlist_signal_first(&q->putters, 0, NULL);
}

static void queue_drop_unfinished(weft_queue *q, size_t n)
{
    q->unfinished -= n < q->unfinished ? n : q->unfinished;
    if (!q->unfinished) waitlist_signal_all(&q->joiners, 0, NULL);
}

/* Wait at the back of l. Called with the lock held (the waiter is bound under it, so the
 * path that does not wait pays nothing for it); returns with it released: waiter_park's
 * result, or -EPERM / -ENOMEM from binding the waiter. */
static int queue_park(weft_queue *q, waiter *w, waitlist *l, const char *what)
{
    int r = waiter_init(w, &q->lock, l, what);
    if (r) {
        spin_unlock(&q->lock);
        return r;
    }
    waitlist_append(l, w);
    return waiter_park(w, UINT64_MAX, 1);
}

/* A getter that was handed `item` but cancelled before it returned: bring the item back.
 * 0, or -ENOMEM if there is no memory to store it (the caller then keeps it). */
static int queue_bring_back(weft_queue *q, void *item, uint64_t seq)
{
    int r = 0;
    spin_lock(&q->lock);
    if (q->shut == QUEUE_SHUT_IMMEDIATE)
        queue_drop_unfinished(q, 1);
    else if (!queue_hand(q, item, seq))
        r = queue_store(q, item, seq);
    spin_unlock(&q->lock);
    return r;
}

/* put_nowait and get_nowait with the lock held. */
static inline int queue_put_locked(weft_queue *q, void *item)
{
    if (q->shut) return -ESHUTDOWN;
    if (waitlist_empty(&q->getters) || !queue_hand(q, item, q->seq)) {
        if (!queue_has_room(q)) return -EAGAIN;
        if (queue_store(q, item, q->seq)) return -ENOMEM;
    }
    q->seq++;
    q->unfinished++;
    return 0;
}

static inline int queue_get_locked(weft_queue *q, void **item)
{
    if (!q->count) return q->shut ? -ESHUTDOWN : -EAGAIN;
    *item = queue_take(q);
    if (!waitlist_empty(&q->putters)) queue_wake_putter(q);
    return 0;
}

/* put on a full queue, lock held: wait until there is room, then put. */
static noinline int queue_put_wait(weft_queue *q, void *item)
{
    for (;;) {
        waiter w;
        int r = queue_park(q, &w, &q->putters, "queue put");
        if (r == WAIT_SIGNALED_CANCELLED) { /* woken for room it will not use: pass it on */
            spin_lock(&q->lock);
            if (!waitlist_empty(&q->putters) && queue_has_room(q)) queue_wake_putter(q);
            spin_unlock(&q->lock);
            return -ECANCELED;
        }
        if (r) return r;
        spin_lock(&q->lock);
        size_t stored = q->count;
        r = queue_put_locked(q, item);
        if (r == -EAGAIN) continue; /* a put_nowait took the room first */
        /* the item went to a getter that came meanwhile (or nowhere): the room we were
         * woken for is still free, and it is the next putter's */
        if (q->count == stored && !waitlist_empty(&q->putters) && queue_has_room(q))
            queue_wake_putter(q);
        spin_unlock(&q->lock);
        return r;
    }
}

/* get on an empty queue, lock held: wait to be handed an item. */
static noinline int queue_get_wait(weft_queue *q, void **item)
{
    queue_getter g;
    int r = queue_park(q, &g.w, &q->getters, "queue get");
    if (r != 0 && r != WAIT_SIGNALED_CANCELLED) return r;
    if (g.w.result) return r ? -ECANCELED : g.w.result; /* woken by shutdown */
    if (r) {
        if (!queue_bring_back(q, g.w.value, g.seq)) return -ECANCELED;
        /* no memory to bring it back: the get stands, and the cancellation waits */
        task_cancel_keep(task_current());
    }
    *item = g.w.value;
    return 0;
}

/* ---- public API ---------------------------------------------------------------------- */

static weft_queue *queue_new(int kind, size_t maxsize, queue_cmp cmp)
{
    weft_queue *q = mem_zalloc(sizeof *q);
    if (!q) goto fail;
    q->cap = QUEUE_MIN_CAP;
    q->slots = mem_alloc(q->cap * sizeof *q->slots);
    if (!q->slots) {
        mem_free(q, sizeof *q);
        goto fail;
    }
    spin_init(&q->lock);
    q->kind = (uint8_t)kind;
    q->maxsize = maxsize;
    q->cmp = cmp;
    q->magic = QUEUE_MAGIC;
    return q;
fail:
    errno = ENOMEM;
    return NULL;
}

weft_queue *weft_queue_new(size_t maxsize)
{
    return queue_new(QUEUE_FIFO, maxsize, NULL);
}

weft_queue *weft_lifo_queue_new(size_t maxsize)
{
    return queue_new(QUEUE_LIFO, maxsize, NULL);
}

weft_queue *weft_priority_queue_new(size_t maxsize, int (*cmp)(const void *a, const void *b))
{
    if (!cmp) {
        errno = EINVAL;
        return NULL;
    }
    return queue_new(QUEUE_PRIORITY, maxsize, cmp);
}

void weft_queue_free(weft_queue *q)
{
    if (!queue_valid(q)) return;
    spin_lock(&q->lock);
    int busy = !waitlist_empty(&q->getters) || !waitlist_empty(&q->putters) ||
               !waitlist_empty(&q->joiners);
    spin_unlock(&q->lock);
    if (busy) { /* freeing it would pull the lists from under their waiters */
        diag_log("weft_queue_free: callers still wait on queue %p; it is not freed", (void *)q);
        return;
    }
    q->magic = QUEUE_FREED;
    mem_free(q->slots, q->cap * sizeof *q->slots);
    mem_free(q, sizeof *q);
}

int weft_queue_put_nowait(weft_queue *q, void *item)
{
    if (!queue_valid(q)) return -EINVAL;
    spin_lock(&q->lock);
    int r = queue_put_locked(q, item);
    spin_unlock(&q->lock);
    return r;
}

int weft_queue_get_nowait(weft_queue *q, void **item)
{
    if (!queue_valid(q) || !item) return -EINVAL;
    spin_lock(&q->lock);
    int r = queue_get_locked(q, item);
    spin_unlock(&q->lock);
    return r;
}

int weft_queue_put(weft_queue *q, void *item)
{
    if (!queue_valid(q)) return -EINVAL;
    spin_lock(&q->lock);
    int r = queue_put_locked(q, item);
    if (unlikely(r == -EAGAIN)) return queue_put_wait(q, item);
    spin_unlock(&q->lock);
    return r;
}

int weft_queue_get(weft_queue *q, void **item)
{
    if (!queue_valid(q) || !item) return -EINVAL;
    spin_lock(&q->lock);
    int r = queue_get_locked(q, item);
    if (unlikely(r == -EAGAIN)) return queue_get_wait(q, item);
    spin_unlock(&q->lock);
    return r;
}

int weft_queue_task_done(weft_queue *q)
{
    if (!queue_valid(q)) return -EINVAL;
    int r = 0;
    spin_lock(&q->lock);
    if (!q->unfinished)
        r = -EINVAL;
    else
        queue_drop_unfinished(q, 1);
    spin_unlock(&q->lock);
    return r;
}

int weft_queue_join(weft_queue *q)
{
    if (!queue_valid(q)) return -EINVAL;
    spin_lock(&q->lock);
    if (!q->unfinished) {
        spin_unlock(&q->lock);
        return 0;
    }
    waiter w;
    int r = queue_park(q, &w, &q->joiners, "queue join");
    return r == WAIT_SIGNALED_CANCELLED ? -ECANCELED : r; /* like Event.wait: no re-check */
}

int weft_queue_shutdown(weft_queue *q, int immediate)
{
    if (!queue_valid(q)) return -EINVAL;
    spin_lock(&q->lock);
    if (immediate) {
        q->shut = QUEUE_SHUT_IMMEDIATE;
        size_t dropped = q->count;
        q->count = q->head = 0;
        queue_drop_unfinished(q, dropped);
    } else if (!q->shut) {
        q->shut = QUEUE_SHUT;
    }
    waitlist_signal_all(&q->getters, -ESHUTDOWN, NULL);
    waitlist_signal_all(&q->putters, -ESHUTDOWN, NULL);
    spin_unlock(&q->lock);
    return 0;
}

size_t weft_queue_qsize(const weft_queue *q)
{
    if (!queue_valid(q)) return 0;
    weft_queue *m = (weft_queue *)q; /* the lock is the only thing written */
    spin_lock(&m->lock);
    size_t n = m->count;
    spin_unlock(&m->lock);
    return n;
}

size_t weft_queue_maxsize(const weft_queue *q)
{
    return queue_valid(q) ? q->maxsize : 0;
}

int weft_queue_empty(const weft_queue *q)
{
    if (!queue_valid(q)) return -EINVAL;
    return weft_queue_qsize(q) == 0;
}

int weft_queue_full(const weft_queue *q)
{
    if (!queue_valid(q)) return -EINVAL;
    return q->maxsize && weft_queue_qsize(q) >= q->maxsize;
}
