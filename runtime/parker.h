/*
 * parker: what a plain (non-worker) thread blocks on while it waits: a futex word with
 * a one-shot wake-up token (park consumes it, unpark sets it), reference counted so a
 * waker may still unpark it after the thread has stopped waiting.
 */
#ifndef WEFT_PARKER_H
#define WEFT_PARKER_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct parker {
    atomic_uint token; /* 1: unparked since the last park */
    atomic_uint refs;
} parker;

parker *parker_current(void); /* this thread's parker, made on first use; NULL if out of memory */
int parker_park(parker *p, uint64_t deadline); /* 0, or -ETIMEDOUT */
void parker_unpark(parker *p);
void parker_retain(parker *p);
void parker_release(parker *p);

#endif
