/*
 * callback.c: loop.call_soon / call_soon_threadsafe / call_later / call_at.
 *
 * call_soon callbacks run on the current worker in FIFO order; threadsafe ones go
 * through the runtime's inject queue. A timer handle must stay safe to cancel after its
 * callback ran, so handles are not pointers: a handle is (slot index + 1) << 32 | gen,
 * naming a slot of a process-wide table of timer records that are never freed, only
 * reused with a new generation. The table mutex guards every record's gen, armed flag
 * and the free list; a record is reused only once its heap node is IDLE again.
 */
#include <errno.h>
#include <pthread.h>

#include "alloc.h"
#include "clock.h"
#include "rt.h"
#include "worker.h"

typedef struct timer_record {
    timer_node node;
    void (*cb)(void *arg);
    void *arg;
    uint32_t gen;
    uint32_t index;
    int armed;
    struct timer_record *next_free;
} timer_record;

#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 4096

static pthread_mutex_t table_mutex = PTHREAD_MUTEX_INITIALIZER;
static timer_record *chunks[MAX_CHUNKS];
static uint32_t nrecords;
static timer_record *free_records;

static callback_item *callback_new(void (*cb)(void *), void *arg)
{
    callback_item *item = mem_alloc(sizeof *item);
    if (!item) return NULL;
    runnable_init(&item->link, RUNNABLE_CALLBACK);
    item->fn.plain = cb;
    item->arg = arg;
    item->future = NULL;
    return item;
}

int weft_call_soon(void (*cb)(void *), void *arg)
{
    worker *w = worker_current();
    if (!cb) return -EINVAL;
    if (!w) return -EPERM;
    callback_item *item = callback_new(cb, arg);
    if (!item) return -ENOMEM;
    sched_call_soon(w, item);
    return 0;
}

int weft_call_soon_threadsafe(weft_rt *rt, void (*cb)(void *), void *arg)
{
    if (!rt || !cb) return -EINVAL;
    if (atomic_load_explicit(&rt->stopping, memory_order_acquire)) return -EPERM;
    callback_item *item = callback_new(cb, arg);
    if (!item) return -ENOMEM;
    return sched_call_threadsafe(rt, -1, item);
}

static timer_record *record_at(uint32_t index)
{
    return index < nrecords ? &chunks[index >> CHUNK_BITS][index & (CHUNK_SIZE - 1)] : NULL;
}

/* Under table_mutex: a record whose node no firing thread still touches. */
static timer_record *record_take(void)
{
    for (timer_record **p = &free_records; *p; p = &(*p)->next_free) {
        timer_record *r = *p;
        if (atomic_load_explicit(&r->node.state, memory_order_acquire) == TIMER_IDLE) {
            *p = r->next_free;
            return r;
        }
    }
    if (nrecords == MAX_CHUNKS * CHUNK_SIZE) return NULL;
    if (!(nrecords & (CHUNK_SIZE - 1))) {
        timer_record *chunk = mem_zalloc(sizeof(timer_record) * CHUNK_SIZE);
        if (!chunk) return NULL;
        chunks[nrecords >> CHUNK_BITS] = chunk;
    }
    timer_record *r = &chunks[nrecords >> CHUNK_BITS][nrecords & (CHUNK_SIZE - 1)];
    r->index = nrecords++;
    r->gen = 0;
    return r;
}

static void record_put(timer_record *r)
{
    r->gen++;
    r->armed = 0;
    r->next_free = free_records;
    free_records = r;
}

static void record_fire(timer_node *node)
{
    timer_record *r = container_of(node, timer_record, node);
    pthread_mutex_lock(&table_mutex);
    int armed = r->armed;
    void (*cb)(void *) = r->cb;
    void *arg = r->arg;
    if (armed) record_put(r);
    pthread_mutex_unlock(&table_mutex);
    if (armed) cb(arg);
}

weft_timer *weft_call_at(double when, void (*cb)(void *), void *arg)
{
    worker *w = worker_current();
    if (!cb || when != when) {
        errno = EINVAL;
        return NULL;
    }
    if (!w) {
        errno = EPERM;
        return NULL;
    }
    uint64_t deadline = when <= 0 ? 0 : when >= 1.8e10 ? UINT64_MAX - 1 : (uint64_t)(when * 1e9);
    pthread_mutex_lock(&table_mutex);
    timer_record *r = record_take();
    if (r) {
        timer_node_init(&r->node, record_fire);
        r->cb = cb;
        r->arg = arg;
        r->armed = 1;
    }
    uint64_t handle = r ? ((uint64_t)(r->index + 1) << 32) | r->gen : 0;
    pthread_mutex_unlock(&table_mutex);
    if (!r || timer_arm(&w->timers, &r->node, deadline)) {
        if (r) {
            pthread_mutex_lock(&table_mutex);
            record_put(r);
            pthread_mutex_unlock(&table_mutex);
        }
        errno = ENOMEM;
        return NULL;
    }
    /* the caller may keep this worker busy past the deadline */
    idle_watch_timers(&w->rt->idle, timer_next(&w->timers));
    return (weft_timer *)(uintptr_t)handle;
}

weft_timer *weft_call_later(double delay, void (*cb)(void *), void *arg)
{
    if (delay != delay) {
        errno = EINVAL;
        return NULL;
    }
    return weft_call_at(weft_now() + (delay > 0 ? delay : 0), cb, arg);
}

int weft_timer_cancel(weft_timer *t)
{
    uint64_t handle = (uint64_t)(uintptr_t)t;
    if (!(handle >> 32)) return 0;
    uint32_t index = (uint32_t)(handle >> 32) - 1, gen = (uint32_t)handle;
    pthread_mutex_lock(&table_mutex);
    timer_record *r = record_at(index);
    int live = r && r->gen == gen && r->armed;
    if (live) r->armed = 0;
    pthread_mutex_unlock(&table_mutex);
    if (!live) return 0;
    timer_cancel(&r->node); /* removes it, or waits out record_fire, which now does nothing */
    pthread_mutex_lock(&table_mutex);
    record_put(r);
    pthread_mutex_unlock(&table_mutex);
    return 1;
}
