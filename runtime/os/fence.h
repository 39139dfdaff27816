/*
 * fence: an asymmetric pair of fences. Two threads that each store one word and then load
 * the other's (Dekker's pattern) need a full fence between the two on both sides, or both
 * loads may miss both stores. When one side runs all the time and the other rarely, the
 * frequent side stores with fence_light_store(), a plain store and a compiler barrier,
 * and the rare side calls fence_heavy() between its store and its load: it makes every
 * running thread of the process execute a full fence before it returns (membarrier(2),
 * MEMBARRIER_CMD_PRIVATE_EXPEDITED). A light side that stored before that fence has its
 * store visible to the heavy side's load; one that loads after it sees the heavy store.
 *
 * Where the kernel refuses membarrier (older than 4.14, a seccomp filter, a tool that does
 * not know the call), fence_init() says so and the light store becomes an exchange, which
 * is a full fence.
 */
#ifndef WEFT_FENCE_H
#define WEFT_FENCE_H

#include <stdatomic.h>

extern int fence_light_is_full; /* written once, by fence_init */

/* Once per process, before either fence is used (weft_rt_new calls it). */
void fence_init(void);

/* *word = v (release), ordered before the caller's next loads against fence_heavy(). A
 * macro, for atomic words of any type. */
#define fence_light_store(word, v)                                                           \
    do {                                                                                     \
        if (__builtin_expect(fence_light_is_full, 0)) {                                      \
            atomic_exchange_explicit(word, v, memory_order_seq_cst);                         \
        } else {                                                                             \
            atomic_store_explicit(word, v, memory_order_release);                            \
            atomic_signal_fence(memory_order_seq_cst);                                       \
        }                                                                                    \
    } while (0)

void fence_heavy(void);

#endif
