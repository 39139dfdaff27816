/* clock: the runtime's monotonic clock in nanoseconds (CLOCK_MONOTONIC through the vDSO). */
#ifndef WEFT_CLOCK_H
#define WEFT_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Seconds from now (negative: never) to an absolute deadline in ns; UINT64_MAX = none. */
static inline uint64_t clock_deadline(double seconds)
{
    if (!(seconds >= 0)) return UINT64_MAX; /* negative or NaN: no deadline */
    if (seconds > 1e9) return UINT64_MAX;
    return clock_ns() + (uint64_t)(seconds * 1e9);
}

#endif
