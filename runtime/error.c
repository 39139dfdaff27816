/* error.c: error names and the runtime's diagnostics on stderr. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "weft.h"

const char *weft_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case -ECANCELED:
        return "cancelled";
    case -ETIMEDOUT:
        return "timed out";
    case -ESHUTDOWN:
        return "queue shut down";
    case -EPIPE:
        return "broken barrier";
    case -EALREADY:
        return "already done";
    case -EPERM:
        return "not allowed here";
    default:
        break;
    }
    const char *s = err < 0 ? strerrordesc_np(-err) : NULL;
    return s ? s : "unknown error";
}

void diag_log(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    fprintf(stderr, "weft: %s\n", buf);
}
