/*
 * testutil: what several tests share. WEFT_TEST_SCALE (set by tools/test.sh for the
 * sanitizer and valgrind runs) divides the sizes of the big loops, so slow tools run
 * the same checks on fewer items.
 */
#ifndef WEFT_TESTUTIL_H
#define WEFT_TESTUTIL_H

#include <stdlib.h>

static inline long scaled(long n)
{
    const char *s = getenv("WEFT_TEST_SCALE");
    long div = s ? atol(s) : 1;
    if (div < 1) div = 1;
    return n / div > 0 ? n / div : 1;
}

#endif
