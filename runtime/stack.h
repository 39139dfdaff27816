/*
 * stack: coroutine stacks. Stacks are carved from large private anonymous mappings
 * (MAP_NORESERVE, MADV_NOHUGEPAGE), so a stack costs only the pages it touches. Each has
 * a guard region below it: MADV_GUARD_INSTALL where the kernel has it (Linux >= 6.13; no
 * extra VMA), else mprotect(PROT_NONE) while the VMA budget lasts, else a canary word at
 * the floor that stack_check() verifies on every switch-out.
 *
 * Each stack has a colour page above its `size` bytes, and a context on it starts at `top`,
 * an offset into that page that differs from one stack to the next: so the top lines of
 * many stacks, which every switch touches, spread over the cache's sets (stack.c says why).
 *
 * Stacks are recycled through a per-worker cache (owner thread only, no locks) backed by
 * a pool shared by a runtime's workers (mutex). Stacks returned beyond the cache's limit
 * have their pages released (MADV_DONTNEED; guards survive it) before going to the pool.
 *
 * Overflow: stack_overflow_handler_install() sets a SIGSEGV/SIGBUS handler that runs on an
 * alternate signal stack (stack_thread_init() gives each worker one). A fault in a guard
 * region prints "weft: stack overflow in task '<label>' (stack size <n> bytes)" and
 * aborts; any other fault is passed on to the previous handler / default action.
 *
 * WEFT_STACK_GUARD=mprotect or =canary (read once, at the first stack-using call) forces
 * that fallback, so tests can run every mode on any kernel.
 */
#ifndef WEFT_STACK_H
#define WEFT_STACK_H

#include <stddef.h>

#include "coro.h"

typedef struct stack {
    /* The first cache line (stack.c aligns each descriptor to one) holds what every switch
     * touches (ctx, guard), and label and lo, which a task start touches with top. */
    coro ctx;          /* the context that runs on this stack (set up by its user) */
    int guard;         /* STACK_GUARD_*; private to stack.c, read by stack_check() */
    unsigned cls;      /* private to stack.c */
    const char *label; /* task name shown in the overflow message; set by the user of the stack */
    void *lo;          /* lowest usable byte (just above the guard) */
    void *top;         /* where a context on it starts, in the colour page at lo + size */
    size_t size;       /* usable bytes, not counting the colour page's below top */
    struct stack *next; /* free-list link while cached */
    struct stack_pool *pool; /* private to stack.c */
} stack;

enum { STACK_GUARD_MADVISE = 1, STACK_GUARD_MPROTECT = 2, STACK_GUARD_CANARY = 3 };

typedef struct stack_pool stack_pool; /* per runtime */
typedef struct stack_cache {          /* per worker: owner thread only */
    stack_pool *pool;
    stack *free[24]; /* by size class */
    unsigned count[24];
} stack_cache;

#define STACK_MIN_SHIFT 14 /* the smallest stack is 16 KiB */

/* log2 of the size stack_take(size) rounds up to (a power of two, at least 16 KiB). */
static inline unsigned stack_shift(size_t size)
{
    return size <= (size_t)1 << STACK_MIN_SHIFT
               ? STACK_MIN_SHIFT
               : (unsigned)(64 - __builtin_clzll((unsigned long long)size - 1));
}

/* The bytes a context on s may use: from lo up to its top. */
static inline size_t stack_extent(const stack *s)
{
    return (size_t)((char *)s->top - (char *)s->lo);
}

stack_pool *stack_pool_new(void);
void stack_pool_free(stack_pool *p); /* unmaps everything; no stack may be in use */
void stack_cache_init(stack_cache *c, stack_pool *p);
void stack_cache_flush(stack_cache *c); /* give every cached stack back to the pool */

/* size is rounded up to a power of two >= 16 KiB (s->size says what you got). NULL when out
 * of memory or address space. */
stack *stack_take(stack_cache *c, size_t size);
void stack_give(stack_cache *c, stack *s);
int stack_check_canary(const stack *s);
static inline int stack_check(const stack *s)   /* 0, or -EFAULT if the floor canary is gone */
{
    return s->guard == STACK_GUARD_CANARY ? stack_check_canary(s) : 0;
}
size_t stack_default_size(void);                 /* 256 KiB */
/* Print the overflow message for s and abort(): for a caller whose stack_check() failed. */
void stack_overflow_abort(const stack *s) __attribute__((noreturn));

void stack_overflow_handler_install(void); /* idempotent, process-wide */
int stack_thread_init(void);               /* alternate signal stack for this thread */
void stack_thread_exit(void);
const char *stack_guard_kind(void); /* "madvise", "mprotect" or "canary": what new stacks get */

#endif
