/*
 * coro: the C side of the context switch; the registers are saved by runtime/arch/<abi>.S.
 *
 * - A switched-out coro's `sp` points at a frame on its own stack, laid out by the .S
 *   file; a running coro's `sp` is stale. Only the thread switching into or out of a coro
 *   touches it, so nothing here is atomic: whoever hands a suspended coro to another
 *   thread (a run queue) provides the happens-before.
 * - A thread coro (stack_lo == NULL) runs only on its own thread, so ASan learns its
 *   bounds from that thread's record, filled by coro_init_thread.
 * - New contexts start with the FP control state (MXCSR + x87 CW, or FPCR) of whoever
 *   called coro_init, as a new C11 thread inherits its creator's.
 * - ASan: start_switch_fiber right before every switch, with the target's bounds and the
 *   leaver's fake-stack slot (`asan_fake`; NULL on exit, so ASan frees that fake stack);
 *   finish_switch_fiber first thing on arrival: when coro_switch_asm returns, or in
 *   coro_first_run. coro_init unpoisons the whole stack: a reused stack may still carry
 *   redzones of frames that never returned.
 * - TSan: one fiber per coro, created by coro_init (a thread coro uses its thread's).
 *   __tsan_switch_to_fiber runs right before the asm, in code inlined into the switching
 *   function, so no instrumented function exit runs between the two on the wrong fiber.
 *   A context cannot destroy the fiber it runs on, so coro_exit_to passes its fiber as
 *   the switch's message and the resumed side destroys it on arrival.
 */
#define _GNU_SOURCE
#include "coro.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

#ifdef WEFT_ASAN
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define hidden __attribute__((visibility("hidden")))

/* runtime/arch/<abi>.S */
hidden void *coro_switch_asm(void **save_sp, void *load_sp, void *message);
hidden void coro_jump_asm(void *load_sp, void *message) __attribute__((noreturn));
hidden void *coro_frame_asm(void *stack_top, void (*entry)(void *), void *arg);

/* A new context's first C code, called by the trampoline in the .S file. */
hidden void coro_first_run(void *dead_fiber, void (*entry)(void *), void *arg)
    __attribute__((noreturn));

enum { CORO_FRAME_MAX = 256 }; /* bytes coro_frame_asm may write below the top, any ABI */

#ifdef WEFT_ASAN
struct stack_bounds {
    const void *lo;
    size_t size;
};
static __thread struct stack_bounds thread_stack_bounds;

/* Thread-local state only through a non-inlined accessor (DESIGN.md, migration). */
static noinline const struct stack_bounds *thread_stack(void)
{
    const struct stack_bounds *bounds = &thread_stack_bounds;
    __asm__ volatile("" : "+r"(bounds)::"memory");
    return bounds;
}

static void asan_thread_init(void)
{
    pthread_attr_t attr;
    void *lo = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &lo, &size);
        pthread_attr_destroy(&attr);
    }
    thread_stack_bounds = (struct stack_bounds){lo, size};
}

static void asan_unpoison_stack(void *lo, size_t size)
{
    __asan_unpoison_memory_region(lo, size);
}

/* fake_save receives the leaver's fake stack; NULL makes ASan free it. */
static inline void asan_leave(void **fake_save, const coro *to)
{
    if (to->stack_lo) {
        __sanitizer_start_switch_fiber(fake_save, to->stack_lo, to->stack_size);
    } else {
        const struct stack_bounds *bounds = thread_stack();
        __sanitizer_start_switch_fiber(fake_save, bounds->lo, bounds->size);
    }
}

static inline void asan_arrive(void *fake)
{
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
}
#else
static inline void asan_thread_init(void) {}
static inline void asan_unpoison_stack(void *lo, size_t size)
{
    (void)lo;
    (void)size;
}
static inline void asan_leave(void **fake_save, const coro *to)
{
    (void)fake_save;
    (void)to;
}
static inline void asan_arrive(void *fake)
{
    (void)fake;
}
#endif

#ifdef WEFT_TSAN
static inline void *tsan_thread_fiber(void)
{
    return __tsan_get_current_fiber();
}

static inline void *tsan_new_fiber(void)
{
    return __tsan_create_fiber(0);
}

static inline void tsan_destroy(void *fiber)
{
    if (fiber) __tsan_destroy_fiber(fiber);
}

/* Always inlined into the switching function, right before the asm (see the top). */
static force_inline void tsan_switch(const coro *to)
{
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
}
#else
static inline void *tsan_thread_fiber(void)
{
    return NULL;
}
static inline void *tsan_new_fiber(void)
{
    return NULL;
}
static inline void tsan_destroy(void *fiber)
{
    (void)fiber;
}
static inline void tsan_switch(const coro *to)
{
    (void)to;
}
#endif

void coro_init_thread(coro *c)
{
    c->sp = NULL;
    c->stack_lo = NULL;
    c->stack_size = 0;
    c->asan_fake = NULL;
    c->tsan_fiber = tsan_thread_fiber();
    asan_thread_init();
}

void coro_destroy_thread(coro *c)
{
    c->tsan_fiber = NULL; /* the thread's own fiber: TSan ends it with the thread */
}

int coro_init(coro *c, void *stack_lo, size_t stack_size, void (*entry)(void *), void *arg)
{
    uintptr_t lo = (uintptr_t)stack_lo;
    uintptr_t top = (lo + stack_size) & ~(uintptr_t)15;
    if (stack_lo == NULL || top < lo + CORO_FRAME_MAX) return -ENOMEM;
    asan_unpoison_stack(stack_lo, stack_size);
    c->stack_lo = stack_lo;
    c->stack_size = stack_size;
    c->asan_fake = NULL;
    c->sp = coro_frame_asm((void *)top, entry, arg);
    c->tsan_fiber = tsan_new_fiber();
    return 0;
}

void coro_destroy(coro *c)
{
    tsan_destroy(c->tsan_fiber);
    c->tsan_fiber = NULL;
}

void coro_switch(coro *from, coro *to)
{
    void *to_sp = to->sp;
    asan_leave(&from->asan_fake, to);
    tsan_switch(to);
    void *dead_fiber = coro_switch_asm(&from->sp, to_sp, NULL);
    asan_arrive(from->asan_fake);
    tsan_destroy(dead_fiber);
}

void coro_exit_to(coro *from, coro *to)
{
    void *to_sp = to->sp;
    void *dying_fiber = from->tsan_fiber;
    from->tsan_fiber = NULL;
    asan_leave(NULL, to);
    tsan_switch(to);
    coro_jump_asm(to_sp, dying_fiber);
}

void coro_first_run(void *dead_fiber, void (*entry)(void *), void *arg)
{
    asan_arrive(NULL);
    tsan_destroy(dead_fiber);
    entry(arg);
    fputs("weft: a coroutine's entry function returned; it must leave with coro_exit_to\n", stderr);
    abort();
}
