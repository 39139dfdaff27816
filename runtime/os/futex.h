/* futex: the Linux futex calls that park and unpark plain threads (see parker.c). */
#ifndef WEFT_FUTEX_H
#define WEFT_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/* Sleep while *word == expected, until woken or until the absolute CLOCK_MONOTONIC
 * deadline (ns; UINT64_MAX = none). Returns 0, or -ETIMEDOUT. Spurious returns happen. */
int futex_wait(atomic_uint *word, unsigned expected, uint64_t deadline_ns);
void futex_wake(atomic_uint *word, int waiters);

#endif
