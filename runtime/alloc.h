/*
 * The runtime's own memory: jemalloc, hidden inside the library so a host program keeps
 * its own malloc, or libc malloc in sanitizer builds (where the tools must see every
 * allocation). Sizes are passed back on free (sized deallocation).
 */
#ifndef WEFT_ALLOC_H
#define WEFT_ALLOC_H

#include <stddef.h>

void *mem_alloc(size_t size);                 /* NULL when out of memory */
void *mem_zalloc(size_t size);                /* zeroed */
void *mem_aligned(size_t size, size_t align); /* align: a power of two <= 4096 */
void mem_free(void *p, size_t size);          /* p may be NULL */
void mem_free_aligned(void *p, size_t size, size_t align);
char *mem_strdup(const char *s);              /* freed with mem_free(s, strlen(s) + 1) */

#endif
