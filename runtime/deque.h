/*
 * deque: the Chase-Lev work-stealing deque with the C11 memory orders of Le, Pop, Cohen
 * and Zappa Nardelli (PPoPP 2013), with the later fixes: the buffer pointer is published
 * with release and read by thieves with acquire, the element is read before the CAS, and
 * indices are signed 64-bit so an empty take cannot wrap.
 *
 * The owner pushes and takes at the bottom (LIFO) and may also pop at the top (FIFO, a
 * few at once, racing thieves with the same CAS). Any thread may steal at the top. The buffer grows
 * on demand; retired buffers are kept until deque_destroy (thieves may still read them).
 */
#ifndef WEFT_DEQUE_H
#define WEFT_DEQUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct deque_buf {
    int64_t mask;               /* capacity - 1; capacity is a power of two */
    struct deque_buf *retired;  /* older buffers, freed at destroy */
    _Atomic(void *) slot[];
} deque_buf;

typedef struct deque {
    _Atomic int64_t top __attribute__((aligned(64)));
    _Atomic int64_t bottom __attribute__((aligned(64)));
    _Atomic(deque_buf *) buf;
} deque;

int deque_init(deque *d, unsigned log2_capacity);  /* 0 or -ENOMEM */
void deque_destroy(deque *d);
int64_t deque_push(deque *d, void *x);             /* owner; the size after it, or -ENOMEM */
void *deque_take(deque *d);                        /* owner, bottom; NULL if empty */
int deque_pop_top_n(deque *d, void **out, int max); /* owner, top: the oldest <= max; how many */
void *deque_peek_bottom(deque *d);                 /* owner; NULL if empty */
int deque_steal(deque *d, void **out);             /* any thread: 1 taken, 0 empty, -1 lost a race */
static inline int64_t deque_size(deque *d)         /* a snapshot; exact only for the owner */
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
    return b > t ? b - t : 0;
}

#endif
