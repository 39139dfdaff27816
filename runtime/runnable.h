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
enum { RUNNABLE_TASK_START = 1, RUNNABLE_TASK_RESUME, RUNNABLE_CALLBACK, RUNNABLE_DONE_CALLBACK };

typedef struct runnable {
    struct runnable *next;
    uint8_t kind;
} runnable;

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
    r->next = NULL;
    if (l->tail) l->tail->next = r;
    else l->head = r;
    l->tail = r;
}

static inline runnable *runnable_list_pop(runnable_list *l)
{
    runnable *r = l->head;
    if (r) {
        l->head = r->next;
        if (!l->head) l->tail = NULL;
    }
    return r;
}

static inline void runnable_list_append(runnable_list *l, runnable_list *other)
{
    if (!other->head) return;
    if (l->tail) l->tail->next = other->head;
    else l->head = other->head;
    l->tail = other->tail;
    other->head = other->tail = NULL;
}

#endif
