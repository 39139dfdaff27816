/*
 * coro: one execution context (a stack and the registers saved on it) and the switch
 * between two of them. The switch itself is assembly (runtime/arch/<abi>.S) and saves
 * only what the ABI makes callee-saved: x86-64 rbx, rbp, r12-r15, rsp, MXCSR and the
 * x87 control word; aarch64 x19-x30, sp, d8-d15 and FPCR. No signal mask, no syscall.
 *
 * Every switch is announced to AddressSanitizer (start/finish_switch_fiber), to
 * ThreadSanitizer (one fiber per coro) and, through the stack module, to valgrind.
 *
 * A coro is touched only by the thread that is switching into or out of it; which
 * thread that is may change from one switch to the next (coroutines migrate).
 */
#ifndef WEFT_CORO_H
#define WEFT_CORO_H

#include <stddef.h>

typedef struct coro {
    void *sp;         /* saved stack pointer while switched out */
    void *stack_lo;   /* usable stack [stack_lo, stack_lo + stack_size); NULL: a thread's own */
    size_t stack_size;
    void *asan_fake;  /* ASan's fake-stack handle while switched out */
    void *tsan_fiber; /* TSan's fiber for this context */
} coro;

/* Make `c` describe the calling thread's own stack, so other coros can switch back to it.
 * Only that thread may switch to it. */
void coro_init_thread(coro *c);
void coro_destroy_thread(coro *c);

/* Prepare `c` so that the first switch to it runs entry(arg) on the given stack.
 * entry must never return: it leaves with coro_exit_to(). Returns 0 or -ENOMEM.
 * Each coro_init is ended by coro_exit_to, or by coro_destroy if it never exits. */
int coro_init(coro *c, void *stack_lo, size_t stack_size, void (*entry)(void *), void *arg);

/* Release what an initialised coro that will never reach coro_exit_to still holds (its
 * TSan fiber): one never started, or suspended for good. Call it from another context.
 * A no-op after coro_exit_to. */
void coro_destroy(coro *c);

/* Save the current context into `from` and resume `to`. Returns when something switches
 * back to `from`, possibly on another thread. */
void coro_switch(coro *from, coro *to);

/* Leave `from` for good (its stack may be reused at once by coro_init) and resume `to`. */
void coro_exit_to(coro *from, coro *to) __attribute__((noreturn));

#endif
