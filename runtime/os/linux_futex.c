/* linux_futex.c: futex(2) wrappers (see futex.h). Private futexes: never shared across
 * processes. The absolute deadline uses FUTEX_WAIT_BITSET, whose timeout is absolute. */
#include "futex.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int futex_wait(atomic_uint *word, unsigned expected, uint64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;
    if (deadline_ns != UINT64_MAX) {
        ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
        ts.tv_nsec = (long)(deadline_ns % 1000000000u);
        tsp = &ts;
    }
    long r = syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
                     expected, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    return (r < 0 && errno == ETIMEDOUT) ? -ETIMEDOUT : 0;
}

void futex_wake(atomic_uint *word, int waiters)
{
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, waiters, NULL, NULL, 0);
}
