/*
 * parker: what a plain (non-worker) thread blocks on while it waits: a futex word with
 * a one-shot wake-up token (park consumes it, unpark sets it).
 */
#ifndef WEFT_PARKER_H
#define WEFT_PARKER_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct parker {
    atomic_uint token; /* 1: unparked since the last park */
} parker;

parker *parker_current(void); /* this thread's parker, made on first use; NULL if out of memory */
int parker_park(parker *p, uint64_t deadline); /* 0, or -ETIMEDOUT */
void parker_unpark(parker *p);

#endif
