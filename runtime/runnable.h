/*
 * runnable: the one link type of the scheduler's queues (the runtime's inject queue,
 * each worker's inbox, its local FIFO, and the deques, which hold runnable pointers).
 * An entry is a task's start or resume link (embedded in struct task) or a callback item
 * (heap-allocated, freed after it runs).
 */
#ifndef WEFT_RUNNABLE_H
#define WEFT_RUNNABLE_H

#include <stddef.h>
#include <stdint.h>

#include "weft.h"

/* A task has two links: its start entry (made by spawn, at most one) and its resume
 * entry (made by each wake-up, at most one at a time), so a start entry left queued after
 * an awaiter ran the task inline never collides with a later resume. */
enum { RUNNABLE_TASK_START, RUNNABLE_TASK_RESUME, RUNNABLE_CALLBACK, RUNNABLE_DONE_CALLBACK };

/* One word: the address of the next entry of the list it is in, and in the low two bits
 * (entries are at least 4-byte aligned) the entry's own kind, which every write of the
 * link keeps. A task carries two links, so a byte of kind beside each would cost it 16. */
typedef struct runnable {
    uintptr_t word;
} runnable;

#define RUNNABLE_KIND_BITS ((uintptr_t)3)
_Static_assert(_Alignof(runnable) > RUNNABLE_KIND_BITS, "a link's low bits hold its kind");

static inline void runnable_init(runnable *r, unsigned kind)
{
    r->word = kind; /* in no list */
}

static inline unsigned runnable_kind(const runnable *r)
{
    return (unsigned)(r->word & RUNNABLE_KIND_BITS);
}

static inline runnable *runnable_next(const runnable *r)
{
    return (runnable *)(r->word & ~RUNNABLE_KIND_BITS);
}

static inline void runnable_set_next(runnable *r, runnable *next)
{
    r->word = (uintptr_t)next | (r->word & RUNNABLE_KIND_BITS);
}

typedef struct callback_item {
    runnable link;
    union {
        void (*plain)(void *arg);
        void (*done)(weft_future *f, void *arg);
    } fn;
    void *arg;
    weft_future *future; /* RUNNABLE_DONE_CALLBACK: holds a reference */
} callback_item;

typedef struct runnable_list {
    runnable *head, *tail;
} runnable_list;

static inline void runnable_list_push(runnable_list *l, runnable *r)
{
    runnable_set_next(r, NULL);
    if (l->tail) runnable_set_next(l->tail, r);
    else l->head = r;
    l->tail = r;
}

static inline runnable *runnable_list_pop(runnable_list *l)
{
    runnable *r = l->head;
    if (r) {
        l->head = runnable_next(r);
        if (!l->head) l->tail = NULL;
    }
    return r;
}

static inline void runnable_list_append(runnable_list *l, runnable_list *other)
{
    if (!other->head) return;
    if (l->tail) runnable_set_next(l->tail, other->head);
    else l->head = other->head;
    l->tail = other->tail;
    other->head = other->tail = NULL;
}

#endif
