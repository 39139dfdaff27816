/*
 * A TAP producer with libtap's API (Debian ships no C libtap): plan, ok, is, isnt, cmp_ok,
 * cmp_mem, pass, fail, diag, note, skip / end_skip, todo / end_todo, BAIL_OUT and
 * done_testing. Every call is thread-safe, so tests may report from workers and foreign
 * threads. Each test program is its own process; its exit status is non-zero when any
 * test failed or the plan was not met.
 */
#ifndef WEFT_TAP_H
#define WEFT_TAP_H

#include <stddef.h>

#define NO_PLAN -1
#define SKIP_ALL -2

void tap_plan(int tests, const char *fmt, ...);
int tap_ok(int pass, const char *file, int line, const char *expr, const char *fmt, ...);
int tap_is(const char *got, const char *expected, int negate, const char *file, int line,
           const char *fmt, ...);
int tap_cmp_ok(long long a, const char *op, long long b, const char *file, int line,
               const char *fmt, ...);
int tap_cmp_mem(const void *got, const void *expected, size_t n, const char *file, int line,
                const char *fmt, ...);
int tap_diag(const char *fmt, ...);
int tap_note(const char *fmt, ...);
void tap_skip(int n, const char *fmt, ...);
void tap_todo(const char *fmt, ...);
void tap_end_todo(void);
void tap_bail_out(const char *fmt, ...);
int tap_done_testing(void);
int tap_exit_status(void);

#define plan(...) tap_plan(__VA_ARGS__, NULL)
#define ok(test, ...) tap_ok(!!(test), __FILE__, __LINE__, #test, __VA_ARGS__, NULL)
#define pass(...) tap_ok(1, __FILE__, __LINE__, "pass", __VA_ARGS__, NULL)
#define fail(...) tap_ok(0, __FILE__, __LINE__, "fail", __VA_ARGS__, NULL)
#define is(got, expected, ...) tap_is(got, expected, 0, __FILE__, __LINE__, __VA_ARGS__, NULL)
#define isnt(got, expected, ...) tap_is(got, expected, 1, __FILE__, __LINE__, __VA_ARGS__, NULL)
#define cmp_ok(a, op, b, ...) \
    tap_cmp_ok((long long)(a), #op, (long long)(b), __FILE__, __LINE__, __VA_ARGS__, NULL)
#define cmp_mem(got, expected, n, ...) \
    tap_cmp_mem(got, expected, n, __FILE__, __LINE__, __VA_ARGS__, NULL)
#define diag(...) tap_diag(__VA_ARGS__, NULL)
#define note(...) tap_note(__VA_ARGS__, NULL)
/* skip(cond, n, reason) { ...n tests... } end_skip; */
#define skip(test, n, ...) \
    do {                   \
        if (test) {        \
            tap_skip(n, __VA_ARGS__, NULL); \
            break;         \
        }
#define end_skip \
    }            \
    while (0)
#define todo(...) tap_todo(__VA_ARGS__, NULL)
#define end_todo tap_end_todo()
#define BAIL_OUT(...) tap_bail_out(__VA_ARGS__, NULL)
#define done_testing() return tap_done_testing()
#define exit_status() tap_exit_status()

#endif
