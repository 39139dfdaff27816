/* linux_fence.c: the asymmetric fences over membarrier(2) (see fence.h). */
#include "fence.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

int fence_light_is_full;

static pthread_once_t fence_once = PTHREAD_ONCE_INIT;

static long membarrier(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0, 0);
}

static void fence_setup(void)
{
    long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    fence_light_is_full = cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) ||
                          membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0;
}

void fence_init(void)
{
    pthread_once(&fence_once, fence_setup);
}

void fence_heavy(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    /* registered, it cannot fail; if it did, light fences would order nothing */
    if (!fence_light_is_full && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
        diag_log("membarrier failed after registration: %s", strerror(errno));
        abort();
    }
}
