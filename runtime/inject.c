/*
 * inject.c: see inject.h. The mutex guards the list; `len` is written only under the
 * mutex (release) and read without it (acquire) as a hint: a reader that sees 0 may miss
 * an entry pushed concurrently, which the pusher's wake-up (park.c) accounts for.
 */
#include "inject.h"

void inject_init(inject *q)
{
    pthread_mutex_init(&q->mutex, NULL);
    q->list.head = q->list.tail = NULL;
    atomic_init(&q->len, 0);
}

void inject_destroy(inject *q)
{
    pthread_mutex_destroy(&q->mutex);
}

void inject_push(inject *q, runnable *r)
{
    pthread_mutex_lock(&q->mutex);
    runnable_list_push(&q->list, r);
    atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + 1,
                          memory_order_release);
    pthread_mutex_unlock(&q->mutex);
}

runnable *inject_pop(inject *q)
{
    if (!inject_len(q)) return NULL;
    pthread_mutex_lock(&q->mutex);
    runnable *r = runnable_list_pop(&q->list);
    if (r)
        atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) - 1,
                              memory_order_release);
    pthread_mutex_unlock(&q->mutex);
    return r;
}

size_t inject_pop_batch(inject *q, runnable_list *out, size_t max)
{
    if (!inject_len(q)) return 0;
    size_t n = 0;
    pthread_mutex_lock(&q->mutex);
    runnable *r;
    while (n < max && (r = runnable_list_pop(&q->list))) {
        runnable_list_push(out, r);
        n++;
    }
    atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) - n,
                          memory_order_release);
    pthread_mutex_unlock(&q->mutex);
    return n;
}
