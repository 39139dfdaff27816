/* TAP producer; see tap.h. One mutex serialises every report. */
#include "tap.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t tap_mutex = PTHREAD_MUTEX_INITIALIZER;
static int planned = NO_PLAN;
static int run, failed;
static const char *todo_reason;

static void vprint_desc(const char *fmt, va_list ap)
{
    if (fmt && *fmt) {
        fputs(" - ", stdout);
        vprintf(fmt, ap);
    }
}

static void vcomment(FILE *out, const char *fmt, va_list ap)
{
    char buf[4096];
    vsnprintf(buf, sizeof buf, fmt, ap);
    for (char *line = buf, *nl; line && *line; line = nl) {
        nl = strchr(line, '\n');
        if (nl) *nl++ = '\0';
        fprintf(out, "# %s\n", line);
    }
    fflush(out);
}

void tap_plan(int tests, const char *fmt, ...)
{
    pthread_mutex_lock(&tap_mutex);
    planned = tests;
    if (tests == SKIP_ALL) {
        va_list ap;
        va_start(ap, fmt);
        printf("1..0 # SKIP ");
        vprintf(fmt ? fmt : "", ap);
        va_end(ap);
        printf("\n");
        exit(0);
    }
    if (tests > 0) printf("1..%d\n", tests);
    fflush(stdout);
    pthread_mutex_unlock(&tap_mutex);
}

static int vreport(int pass, const char *file, int line, const char *expr, const char *fmt,
                   va_list ap)
{
    pthread_mutex_lock(&tap_mutex);
    run++;
    if (!pass && !todo_reason) failed++;
    printf("%sok %d", pass ? "" : "not ", run);
    vprint_desc(fmt, ap);
    if (todo_reason) printf(" # TODO %s", todo_reason);
    printf("\n");
    if (!pass) {
        fprintf(stderr, "#   Failed %stest (%s at line %d)\n#     %s\n", todo_reason ? "(TODO) " : "",
                file, line, expr);
    }
    fflush(stdout);
    fflush(stderr);
    pthread_mutex_unlock(&tap_mutex);
    return pass;
}

int tap_ok(int pass, const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vreport(pass, file, line, expr, fmt, ap);
    va_end(ap);
    return r;
}

int tap_is(const char *got, const char *expected, int negate, const char *file, int line,
           const char *fmt, ...)
{
    int same = (!got && !expected) || (got && expected && strcmp(got, expected) == 0);
    va_list ap;
    va_start(ap, fmt);
    int r = vreport(negate ? !same : same, file, line, negate ? "isnt" : "is", fmt, ap);
    va_end(ap);
    if (!r) diag("         got: '%s'\n    expected: %s'%s'", got ? got : "(null)",
                 negate ? "anything else than " : "", expected ? expected : "(null)");
    return r;
}

int tap_cmp_ok(long long a, const char *op, long long b, const char *file, int line,
               const char *fmt, ...)
{
    /* cmp_ok(a, "==", b) as in libtap, or cmp_ok(a, ==, b): the macro stringizes either */
    char bare[8] = "";
    size_t len = strlen(op);
    if (len >= 2 && op[0] == '"' && op[len - 1] == '"' && len - 2 < sizeof bare) {
        memcpy(bare, op + 1, len - 2);
        op = bare;
    }
    int pass;
    if (!strcmp(op, "==")) pass = a == b;
    else if (!strcmp(op, "!=")) pass = a != b;
    else if (!strcmp(op, "<")) pass = a < b;
    else if (!strcmp(op, "<=")) pass = a <= b;
    else if (!strcmp(op, ">")) pass = a > b;
    else if (!strcmp(op, ">=")) pass = a >= b;
    else if (!strcmp(op, "&&")) pass = a && b;
    else if (!strcmp(op, "||")) pass = a || b;
    else if (!strcmp(op, "&")) pass = (a & b) != 0;
    else if (!strcmp(op, "|")) pass = (a | b) != 0;
    else {
        diag("unknown operator %s in cmp_ok", op);
        pass = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    int r = vreport(pass, file, line, op, fmt, ap);
    va_end(ap);
    if (!r) diag("    %lld\n        %s\n    %lld", a, op, b);
    return r;
}

int tap_cmp_mem(const void *got, const void *expected, size_t n, const char *file, int line,
                const char *fmt, ...)
{
    size_t at = 0;
    int pass = got && expected;
    if (pass)
        for (; at < n; at++)
            if (((const unsigned char *)got)[at] != ((const unsigned char *)expected)[at]) {
                pass = 0;
                break;
            }
    va_list ap;
    va_start(ap, fmt);
    int r = vreport(pass, file, line, "cmp_mem", fmt, ap);
    va_end(ap);
    if (!r) diag("    memory differs at byte %zu of %zu", at, n);
    return r;
}

int tap_diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&tap_mutex);
    vcomment(stderr, fmt, ap);
    pthread_mutex_unlock(&tap_mutex);
    va_end(ap);
    return 0;
}

int tap_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&tap_mutex);
    vcomment(stdout, fmt, ap);
    pthread_mutex_unlock(&tap_mutex);
    va_end(ap);
    return 0;
}

void tap_skip(int n, const char *fmt, ...)
{
    char reason[512] = "";
    va_list ap;
    va_start(ap, fmt);
    if (fmt) vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&tap_mutex);
    while (n-- > 0) printf("ok %d # SKIP %s\n", ++run, reason);
    fflush(stdout);
    pthread_mutex_unlock(&tap_mutex);
}

void tap_todo(const char *fmt, ...)
{
    static char reason[512];
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&tap_mutex);
    vsnprintf(reason, sizeof reason, fmt ? fmt : "", ap);
    todo_reason = reason;
    pthread_mutex_unlock(&tap_mutex);
    va_end(ap);
}

void tap_end_todo(void)
{
    pthread_mutex_lock(&tap_mutex);
    todo_reason = NULL;
    pthread_mutex_unlock(&tap_mutex);
}

void tap_bail_out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("Bail out! ");
    vprintf(fmt ? fmt : "", ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(255);
}

int tap_exit_status(void)
{
    pthread_mutex_lock(&tap_mutex);
    int status = failed;
    if (planned >= 0 && planned != run) status = status ? status : 255;
    pthread_mutex_unlock(&tap_mutex);
    return status > 254 ? 254 : status;
}

int tap_done_testing(void)
{
    pthread_mutex_lock(&tap_mutex);
    if (planned == NO_PLAN) {
        printf("1..%d\n", run);
        planned = run;
    } else if (planned != run) {
        fprintf(stderr, "# Looks like you planned %d tests but ran %d.\n", planned, run);
    }
    if (failed) fprintf(stderr, "# Looks like you failed %d test%s of %d run.\n", failed,
                        failed > 1 ? "s" : "", run);
    fflush(stdout);
    fflush(stderr);
    pthread_mutex_unlock(&tap_mutex);
    return tap_exit_status();
}
