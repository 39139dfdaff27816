/*
 * parker.c: see parker.h. The token is set with release by unpark and consumed with
 * acquire by park, so whatever the waker wrote before unparking is visible after park
 * returns. Each thread's parker is made lazily and kept through a pthread key until the
 * thread exits: a waker is done with it before the thread's wait can end (waitq.c).
 */
#include "parker.h"

#include <errno.h>
#include <pthread.h>

#include "alloc.h"
#include "os/futex.h"

static pthread_key_t parker_key;
static pthread_once_t parker_once = PTHREAD_ONCE_INIT;

static void parker_thread_exit(void *p)
{
    mem_free(p, sizeof(parker));
}

static void parker_key_init(void)
{
    pthread_key_create(&parker_key, parker_thread_exit);
}

parker *parker_current(void)
{
    pthread_once(&parker_once, parker_key_init);
    parker *p = pthread_getspecific(parker_key);
    if (!p) {
        p = mem_alloc(sizeof *p);
        if (!p) return NULL;
        atomic_init(&p->token, 0);
        pthread_setspecific(parker_key, p);
    }
    return p;
}

int parker_park(parker *p, uint64_t deadline)
{
    for (;;) {
        if (atomic_exchange_explicit(&p->token, 0, memory_order_acquire)) return 0;
        if (futex_wait(&p->token, 0, deadline) == -ETIMEDOUT)
            return atomic_exchange_explicit(&p->token, 0, memory_order_acquire) ? 0 : -ETIMEDOUT;
    }
}

void parker_unpark(parker *p)
{
    if (!atomic_exchange_explicit(&p->token, 1, memory_order_release)) futex_wake(&p->token, 1);
}
