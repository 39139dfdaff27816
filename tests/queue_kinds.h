/*
 * queue_kinds: what the queue tests share: the three queue types by index, a constructor
 * for each, and integers carried as queue items.
 */
#ifndef WEFT_QUEUE_KINDS_H
#define WEFT_QUEUE_KINDS_H

#include <stdint.h>

#include "weft.h"

#define I2P(i) ((void *)(intptr_t)(i))
#define P2I(p) ((intptr_t)(p))

enum { FIFO, LIFO, PRIO, KINDS };
static const char *const kind_name[KINDS] = {"Queue", "LifoQueue", "PriorityQueue"};

static inline int cmp_int(const void *a, const void *b)
{
    intptr_t x = P2I(a), y = P2I(b);
    return (x > y) - (x < y);
}

static inline weft_queue *make_queue(int kind, size_t maxsize)
{
    if (kind == FIFO) return weft_queue_new(maxsize);
    if (kind == LIFO) return weft_lifo_queue_new(maxsize);
    return weft_priority_queue_new(maxsize, cmp_int);
}

#endif
