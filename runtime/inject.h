/*
 * inject: a multi-producer queue of runnables behind a mutex, with an atomic length so
 * consumers can skip the lock when it is empty. The runtime's global inject queue (work
 * from outside any worker) and each worker's inbox (work aimed at that worker: pinned
 * tasks, spawn_ex(worker=k), call_soon_threadsafe aimed at it) are both this type.
 */
#ifndef WEFT_INJECT_H
#define WEFT_INJECT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "runnable.h"

typedef struct inject {
    pthread_mutex_t mutex;
    runnable_list list;
    atomic_size_t len;
} inject;

void inject_init(inject *q);
void inject_destroy(inject *q);
void inject_push(inject *q, runnable *r);
runnable *inject_pop(inject *q);
size_t inject_pop_batch(inject *q, runnable_list *out, size_t max); /* returns how many */

static inline size_t inject_len(inject *q)
{
    return atomic_load_explicit(&q->len, memory_order_acquire);
}

#endif
