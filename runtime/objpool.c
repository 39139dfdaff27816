/*
 * objpool.c: tasks and plain futures from per-thread magazines (Bonwick's magazine
 * allocator) carved out of 2 MiB chunks.
 *
 * Why: a fork-join spawn allocates and frees one task; jemalloc's malloc + sdallocx cost
 * ~60 instructions of it, a magazine pop and push ~10. And a burst of a million live tasks
 * first-touches ~200 MiB, ~50,000 page faults in 4 KiB pages: a new chunk is faulted in with
 * one MADV_POPULATE_WRITE, outside the lock (spawn_many, 1 worker: ~166 -> ~147 ns).
 * Not MADV_HUGEPAGE: with Debian's THP defrag setting ("madvise") the kernel then compacts
 * memory on the fault, and here a burst that followed another process's stalled in the
 * kernel for 0.6 s (spawn_many ~650 ns instead of ~120, most runs after a peer's).
 *
 * Layout. A free object's first words are links: [0] the next object of its magazine,
 * and, in a magazine's first object, [1] the next magazine and [2] the magazine's count.
 * A magazine holds at most MAG objects. Objects never handed out are not linked: a cache
 * carves a range of up to MAG of them and hands them out in address order without
 * touching them first (a burst of spawns into fresh memory then writes each line once, in
 * order, instead of first linking 64 scattered lines under the lock).
 *
 * Who touches what
 *   objpool_cache      its thread only (a worker: worker_main installs it); reached through
 *                      a thread-local pointer read inside these leaf functions, which never
 *                      suspend, so a migrating task cannot use another thread's cache.
 *   shared[c]          under shared[c].lock: the stack of magazines (`stocked`, each with its
 *                      count), the magazine being filled by threads without a cache
 *                      (`loose`), and the chunk being carved (`next`, `end`).
 *
 * Invariants
 *   - An object is in at most one place: handed out, in one cache's cur or spare or fresh
 *     range, in one shared magazine, or not yet carved.
 *   - A cache's spare, when set, holds exactly MAG objects; its cur holds n <= MAG.
 *   - Chunks are never unmapped: the pool keeps its high-water mark (as Go keeps its
 *     goroutine descriptors), and a handle released after its runtime was freed still
 *     returns its object to a live pool.
 *
 * In ASan and valgrind builds (the libc allocator, no TSan) objects come straight from
 * mem_alloc, so the tools check each one; TSan builds keep the pool, so its races are seen.
 */
#include "objpool.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include "alloc.h"
#include "common.h"
#include "future.h"
#include "task.h"

static const size_t obj_size[OBJ_CLASSES] = {
    [OBJ_TASK] = sizeof(task),
    [OBJ_FUTURE] = sizeof(weft_future),
};

#if !defined(WEFT_USE_JEMALLOC) && !defined(WEFT_TSAN)

void *objpool_alloc(obj_class c)
{
    return mem_alloc(obj_size[c]);
}

void objpool_free(obj_class c, void *p)
{
    mem_free(p, obj_size[c]);
}

void objpool_thread_cache(objpool_cache *cache)
{
    (void)cache;
}

#else

#define MAG 64
#define CHUNK_BYTES ((size_t)2 << 20)

typedef struct free_obj {
    struct free_obj *next;     /* within the magazine */
    struct free_obj *next_mag; /* first object only */
    size_t count;              /* first object only */
} free_obj;

_Static_assert(sizeof(task) >= sizeof(free_obj) && sizeof(weft_future) >= sizeof(free_obj),
               "a free object holds its links");

static struct shared {
    pthread_mutex_t lock;
    free_obj *stocked; /* magazines of 1..MAG objects, each with its count */
    free_obj *loose;   /* filled one object at a time by threads without a cache */
    char *next, *end;
} shared[OBJ_CLASSES] = {
    [OBJ_TASK] = {.lock = PTHREAD_MUTEX_INITIALIZER},
    [OBJ_FUTURE] = {.lock = PTHREAD_MUTEX_INITIALIZER},
};

static __thread objpool_cache *thread_cache;

static size_t stride(obj_class c)
{
    return (obj_size[c] + OBJPOOL_ALIGN - 1) & ~(size_t)(OBJPOOL_ALIGN - 1);
}

/* A fresh chunk for class c; the caller holds s->lock. */
static int chunk_new(struct shared *s)
{
    char *lo = mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (lo == MAP_FAILED) return -1;
    s->next = lo;
    s->end = lo + CHUNK_BYTES;
    return 0;
}

/* Carve up to `want` objects of class c, untouched, from the chunk: they are [*lo, the
 * returned end); NULL when out of memory. *fresh_chunk: a chunk this carve had to map, for
 * the caller to fault in once it has released the lock (chunk_populate), else NULL. The
 * caller holds the lock. */
static char *carve(obj_class c, size_t want, char **lo, char **fresh_chunk)
{
    struct shared *s = &shared[c];
    size_t size = stride(c), avail;
    *fresh_chunk = NULL;
    if ((size_t)(s->end - s->next) < size) {
        if (chunk_new(s)) return NULL;
        *fresh_chunk = s->next;
    }
    avail = (size_t)(s->end - s->next) / size;
    *lo = s->next;
    s->next += (avail < want ? avail : want) * size;
    return s->next;
}

/* Fault a whole new chunk in with one call instead of 512 page faults (its objects will all
 * be touched: chunks are carved in order). Outside the lock, so other threads keep carving
 * meanwhile (they fault what they touch first themselves). A no-op before Linux 5.14. */
static void chunk_populate(char *chunk)
{
#ifdef MADV_POPULATE_WRITE
    if (chunk) madvise(chunk, CHUNK_BYTES, MADV_POPULATE_WRITE);
#else
    (void)chunk;
#endif
}

static void push_magazine(struct shared *s, free_obj *mag, size_t count)
{
    mag->count = count;
    mag->next_mag = s->stocked;
    s->stocked = mag;
}

/* A magazine (of at least one object) from the shared pool, or NULL if it has none; the
 * caller holds the lock. */
static free_obj *take_magazine(struct shared *s)
{
    free_obj *mag = s->stocked;
    if (mag)
        s->stocked = mag->next_mag;
    else if ((mag = s->loose))
        s->loose = NULL;
    return mag;
}

static noinline void *alloc_slow(obj_class c)
{
    objpool_cache *cache = thread_cache;
    objpool_bin *b = cache ? &cache->bins[c] : NULL;
    free_obj *mag = b ? b->spare : NULL;
    size_t count = MAG;
    if (mag) {
        b->spare = NULL;
    } else {
        struct shared *s = &shared[c];
        char *lo = NULL, *hi = NULL, *fresh_chunk = NULL;
        pthread_mutex_lock(&s->lock);
        mag = take_magazine(s);
        if (!mag) /* a cache takes a range, a thread without one a single object */
            hi = carve(c, b ? MAG : 1, &lo, &fresh_chunk);
        else if (!b && mag->next) /* a thread without a cache leaves the rest */
            push_magazine(s, mag->next, mag->count - 1);
        pthread_mutex_unlock(&s->lock);
        chunk_populate(fresh_chunk);
        if (!mag) { /* carved: the first object now, and a cache keeps the rest */
            if (hi && b) {
                b->fresh = lo + stride(c);
                b->fresh_end = hi;
            }
            return hi ? lo : NULL;
        }
        if (!b) return mag;
        count = mag->count;
    }
    b->n = (unsigned)count - 1;
    b->cur = mag->next;
    return mag;
}

void *objpool_alloc(obj_class c)
{
    objpool_cache *cache = thread_cache;
    if (likely(cache)) {
        objpool_bin *b = &cache->bins[c];
        free_obj *o = b->cur;
        if (likely(o)) {
            b->cur = o->next;
            b->n--;
            return o;
        }
        if (b->fresh < b->fresh_end) { /* never handed out: nothing to read */
            char *fresh = b->fresh;
            b->fresh = fresh + stride(c);
            return fresh;
        }
    }
    return alloc_slow(c);
}

static noinline void free_slow(obj_class c, free_obj *o)
{
    objpool_cache *cache = thread_cache;
    struct shared *s = &shared[c];
    if (!cache) { /* add o to the loose magazine, which goes to `stocked` once it is full */
        pthread_mutex_lock(&s->lock);
        o->next = s->loose;
        o->count = s->loose ? s->loose->count + 1 : 1;
        s->loose = o;
        if (o->count == MAG) {
            s->loose = NULL;
            push_magazine(s, o, MAG);
        }
        pthread_mutex_unlock(&s->lock);
        return;
    }
    objpool_bin *b = &cache->bins[c]; /* cur is full */
    free_obj *spare = b->spare;
    b->spare = b->cur; /* MAG objects */
    if (spare) {
        pthread_mutex_lock(&s->lock);
        push_magazine(s, spare, MAG);
        pthread_mutex_unlock(&s->lock);
    }
    o->next = NULL;
    b->cur = o;
    b->n = 1;
}

void objpool_free(obj_class c, void *p)
{
    if (!p) return;
    objpool_cache *cache = thread_cache;
    if (likely(cache && cache->bins[c].n < MAG)) {
        free_obj *o = p;
        o->next = cache->bins[c].cur;
        cache->bins[c].cur = o;
        cache->bins[c].n++;
        return;
    }
    free_slow(c, p);
}

void objpool_thread_cache(objpool_cache *cache)
{
    objpool_cache *old = thread_cache;
    thread_cache = cache;
    if (!old) return;
    for (int c = 0; c < OBJ_CLASSES; c++) {
        objpool_bin *b = &old->bins[c];
        struct shared *s = &shared[c];
        free_obj *fresh = NULL; /* at most MAG objects: one magazine */
        size_t nfresh = 0;
        for (; b->fresh < b->fresh_end; b->fresh += stride(c), nfresh++) {
            free_obj *o = (free_obj *)b->fresh;
            o->next = fresh;
            fresh = o;
        }
        pthread_mutex_lock(&s->lock);
        if (b->cur) push_magazine(s, b->cur, b->n);
        if (b->spare) push_magazine(s, b->spare, MAG);
        if (fresh) push_magazine(s, fresh, nfresh);
        pthread_mutex_unlock(&s->lock);
        b->cur = b->spare = NULL;
        b->n = 0;
        b->fresh = b->fresh_end = NULL;
    }
}

#endif
