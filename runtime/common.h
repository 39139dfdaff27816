/*
 * Small shared helpers for the runtime's files: branch hints, cache-line alignment,
 * container_of, CPU pause, and the internal error report. Nothing here owns state.
 */
#ifndef WEFT_COMMON_H
#define WEFT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define CACHE_LINE 64
#define cache_aligned __attribute__((aligned(CACHE_LINE)))
#define noinline __attribute__((noinline))
#define force_inline inline __attribute__((always_inline))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define array_size(a) (sizeof(a) / sizeof((a)[0]))

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

/* Print "weft: <message>" to stderr; used for diagnostics that have no caller to return to. */
void diag_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
