/*
 * objpool: the runtime's fixed-size objects (tasks and plain futures), served from per-thread
 * magazines carved out of 2 MiB chunks. See objpool.c for the rules.
 */
#ifndef WEFT_OBJPOOL_H
#define WEFT_OBJPOOL_H

#include <stddef.h>

typedef enum { OBJ_TASK, OBJ_FUTURE, OBJ_CLASSES } obj_class;

/* Where the pool serves them (objpool.c), a class's objects are laid out at a stride that
 * is a multiple of OBJPOOL_ALIGN, from page-aligned chunks (task.h keeps a task's hot 32
 * bytes in one cache line by it). */
#define OBJPOOL_ALIGN 32

/* A thread's magazines: `cur` (objects linked through their first word, `n` of them) and
 * one full `spare`, and [fresh, fresh_end), objects carved for it and never handed out.
 * Owned by one thread (a worker) and touched by it alone. */
typedef struct objpool_bin {
    void *cur, *spare;
    unsigned n;
    char *fresh, *fresh_end;
} objpool_bin;

typedef struct objpool_cache {
    objpool_bin bins[OBJ_CLASSES];
} objpool_cache;

/* An object of class c (uninitialised), NULL when out of memory. */
void *objpool_alloc(obj_class c);
void objpool_free(obj_class c, void *p); /* p may be NULL */
/* Serve this thread from `cache` (a worker's), or from the shared pool (NULL); on NULL the
 * previous cache's objects go back to the shared pool. */
void objpool_thread_cache(objpool_cache *cache);

#endif
