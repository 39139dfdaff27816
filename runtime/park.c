/*
 * park.c: the idle set (see park.h for the rules and the no-lost-wake-up argument).
 *
 * `state` = searching | unparked << 16, changed only under `mutex`. A worker in the
 * sleepers stack has w->sleeping == 1 (written under the mutex; read without it as a
 * hint by timer planning). A notifier that pops a sleeper counts it as unparked and
 * searching on its behalf and sets w->searching, so the woken worker starts searching.
 */
#include "park.h"

#include <errno.h>

#include "alloc.h"
#include "rt.h"
#include "worker.h"

#define ONE_UNPARKED (1u << 16)

int idle_init(idle_set *s, unsigned nworkers)
{
    pthread_mutex_init(&s->mutex, NULL);
    atomic_init(&s->state, nworkers << 16);
    atomic_init(&s->wake_at, 0);
    s->nsleepers = 0;
    s->nworkers = nworkers;
    s->sleepers = mem_alloc(sizeof(worker *) * nworkers);
    return s->sleepers ? 0 : -ENOMEM;
}

void idle_destroy(idle_set *s)
{
    mem_free(s->sleepers, sizeof(worker *) * s->nworkers);
    pthread_mutex_destroy(&s->mutex);
}

unsigned idle_sleepers(idle_set *s)
{
    unsigned st = atomic_load_explicit(&s->state, memory_order_relaxed);
    return s->nworkers - IDLE_UNPARKED(st);
}

int idle_try_search(idle_set *s, worker *w)
{
    unsigned st = atomic_load_explicit(&s->state, memory_order_relaxed);
    if (2 * IDLE_SEARCHING(st) >= s->nworkers) return 0;
    pthread_mutex_lock(&s->mutex);
    st = atomic_load_explicit(&s->state, memory_order_relaxed);
    int ok = 2 * IDLE_SEARCHING(st) < s->nworkers;
    if (ok) {
        atomic_store_explicit(&s->state, st + 1, memory_order_seq_cst);
        w->searching = 1;
    }
    pthread_mutex_unlock(&s->mutex);
    return ok;
}

/* Recompute wake_at from the sleepers' deadlines; the caller holds the mutex. */
static void update_wake_at(idle_set *s)
{
    uint64_t at = s->nsleepers ? UINT64_MAX : 0;
    for (unsigned i = 0; i < s->nsleepers; i++)
        if (s->sleepers[i]->park_until < at) at = s->sleepers[i]->park_until;
    atomic_store_explicit(&s->wake_at, at, memory_order_release);
}

/* Pop a sleeper and count it as unparked and searching; the caller holds the mutex. */
static worker *pop_sleeper(idle_set *s, worker *prefer)
{
    if (!s->nsleepers) return NULL;
    unsigned i = s->nsleepers - 1;
    if (prefer) {
        for (i = 0; i < s->nsleepers && s->sleepers[i] != prefer; i++) {
        }
        if (i == s->nsleepers) return NULL;
    }
    worker *w = s->sleepers[i];
    s->sleepers[i] = s->sleepers[--s->nsleepers];
    unsigned st = atomic_load_explicit(&s->state, memory_order_relaxed);
    atomic_store_explicit(&s->state, st + ONE_UNPARKED + 1, memory_order_seq_cst);
    w->searching = 1;
    atomic_store_explicit(&w->sleeping, 0, memory_order_release);
    update_wake_at(s);
    return w;
}

noinline void idle_notify_strict(idle_set *s)
{
    atomic_thread_fence(memory_order_seq_cst);
    idle_notify(s);
}

void idle_notify_slow(idle_set *s)
{
    pthread_mutex_lock(&s->mutex);
    unsigned st = atomic_load_explicit(&s->state, memory_order_relaxed);
    worker *w = IDLE_SEARCHING(st) ? NULL : pop_sleeper(s, NULL);
    pthread_mutex_unlock(&s->mutex);
    if (w) worker_unpark(w);
}

void idle_wake_worker(weft_rt *rt, worker *target)
{
    idle_set *s = &rt->idle;
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&target->sleeping, memory_order_relaxed)) return;
    pthread_mutex_lock(&s->mutex);
    worker *w = pop_sleeper(s, target);
    pthread_mutex_unlock(&s->mutex);
    if (w) worker_unpark(w);
}

void idle_found_work(weft_rt *rt, worker *w)
{
    idle_set *s = &rt->idle;
    pthread_mutex_lock(&s->mutex);
    unsigned st = atomic_load_explicit(&s->state, memory_order_relaxed);
    atomic_store_explicit(&s->state, st - 1, memory_order_seq_cst);
    w->searching = 0;
    int last = IDLE_SEARCHING(st) == 1;
    pthread_mutex_unlock(&s->mutex);
    /* ramp up: the last searcher to find work wakes one more */
    if (last) idle_notify_strict(&rt->idle);
}

void idle_enter(idle_set *s, worker *w, uint64_t deadline)
{
    pthread_mutex_lock(&s->mutex);
    unsigned st = atomic_load_explicit(&s->state, memory_order_relaxed);
    st -= ONE_UNPARKED;
    if (w->searching) st -= 1;
    w->searching = 0;
    atomic_store_explicit(&s->state, st, memory_order_seq_cst);
    s->sleepers[s->nsleepers++] = w;
    w->park_until = deadline;
    atomic_store_explicit(&w->sleeping, 1, memory_order_release);
    update_wake_at(s);
    pthread_mutex_unlock(&s->mutex);
    atomic_thread_fence(memory_order_seq_cst); /* pairs with the producers' fence */
}

void idle_leave(idle_set *s, worker *w)
{
    pthread_mutex_lock(&s->mutex);
    if (atomic_load_explicit(&w->sleeping, memory_order_relaxed)) {
        /* woke by itself (timeout, or it found work before sleeping) */
        for (unsigned i = 0; i < s->nsleepers; i++)
            if (s->sleepers[i] == w) {
                s->sleepers[i] = s->sleepers[--s->nsleepers];
                break;
            }
        unsigned st = atomic_load_explicit(&s->state, memory_order_relaxed);
        atomic_store_explicit(&s->state, st + ONE_UNPARKED, memory_order_seq_cst);
        atomic_store_explicit(&w->sleeping, 0, memory_order_release);
        update_wake_at(s);
    }
    pthread_mutex_unlock(&s->mutex);
}

void idle_wake_all(weft_rt *rt)
{
    for (unsigned i = 0; i < rt->nworkers; i++) worker_unpark(&rt->workers[i]);
}

void idle_wake_for_timer(idle_set *s, uint64_t due)
{
    pthread_mutex_lock(&s->mutex);
    worker *helper = NULL;
    if (due < atomic_load_explicit(&s->wake_at, memory_order_relaxed)) helper = pop_sleeper(s, NULL);
    pthread_mutex_unlock(&s->mutex);
    if (helper) worker_unpark(helper);
}
