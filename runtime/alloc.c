/*
 * alloc.c: the runtime's allocator (see alloc.h). With jemalloc, every call goes to
 * jemalloc's own malloc/mallocx and sdallocx, which use its per-thread caches; the library
 * is linked with its symbols hidden, so it never replaces the host's malloc. Without it
 * (sanitizer builds), plain libc calls, so ASan, TSan and valgrind see and check every
 * object.
 */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#ifdef WEFT_USE_JEMALLOC
#include <jemalloc/jemalloc.h>

/* jemalloc's malloc (linked in, hidden like every jemalloc symbol) has a fast path that
 * mallocx lacks: ~20 instructions instead of ~95 per call. */
void *mem_alloc(size_t size) { return malloc(size ? size : 1); }
void *mem_zalloc(size_t size) { return mallocx(size ? size : 1, MALLOCX_ZERO); }
void *mem_aligned(size_t size, size_t align)
{
    return mallocx(size ? size : 1, MALLOCX_ALIGN(align));
}
void mem_free(void *p, size_t size)
{
    if (p) sdallocx(p, size ? size : 1, 0);
}
void mem_free_aligned(void *p, size_t size, size_t align)
{
    if (p) sdallocx(p, size ? size : 1, MALLOCX_ALIGN(align));
}
#else
void *mem_alloc(size_t size) { return malloc(size ? size : 1); }
void *mem_zalloc(size_t size) { return calloc(1, size ? size : 1); }
void *mem_aligned(size_t size, size_t align)
{
    void *p = NULL;
    return posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size ? size : 1)
               ? NULL
               : p;
}
void mem_free(void *p, size_t size)
{
    (void)size;
    free(p);
}
void mem_free_aligned(void *p, size_t size, size_t align)
{
    (void)size;
    (void)align;
    free(p);
}
#endif

char *mem_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = mem_alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
