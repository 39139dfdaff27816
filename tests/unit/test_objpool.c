/*
 * test_objpool: the task and future pool. Every object handed out is distinct from every
 * other live one (a set of live addresses checks each allocation) and keeps what its owner
 * wrote (each object is stamped over its whole size and checked before it is freed): on one
 * thread across many magazines, on a thread without a cache, and with threads that have
 * caches and threads that have none allocating, trading objects through a shared box and
 * freeing what others allocated, then handing their caches back; and a cache handed back
 * part-way through the fresh range it was carving from gives the rest of it back.
 *
 * In ASan and valgrind builds the pool passes straight to the allocator (objpool.c), so
 * this checks the same contract against malloc; normal and TSan builds check the pool.
 */
#include "objpool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "future.h"
#include "tap.h"
#include "task.h"
#include "testutil.h"

static const size_t sizes[OBJ_CLASSES] = {
    [OBJ_TASK] = sizeof(task), [OBJ_FUTURE] = sizeof(weft_future)};

/* ---- the set of live objects: linear probing with backward-shift deletion -------------- */

#define SET_SLOTS (1u << 16)
static void *live[SET_SLOTS];
static size_t live_count;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic long duplicates, corrupted, unaligned;

static size_t slot_of(void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 48) & (SET_SLOTS - 1);
}

static void live_add(void *p)
{
    pthread_mutex_lock(&live_lock);
    size_t i = slot_of(p);
    while (live[i] && live[i] != p) i = (i + 1) & (SET_SLOTS - 1);
    if (live[i])
        duplicates++;
    else {
        live[i] = p;
        live_count++;
    }
    pthread_mutex_unlock(&live_lock);
}

static void live_remove(void *p)
{
    pthread_mutex_lock(&live_lock);
    size_t i = slot_of(p);
    while (live[i] != p) i = (i + 1) & (SET_SLOTS - 1); /* present: it was added */
    live[i] = NULL;
    live_count--;
    for (size_t j = (i + 1) & (SET_SLOTS - 1); live[j]; j = (j + 1) & (SET_SLOTS - 1)) {
        size_t home = slot_of(live[j]); /* move j back to i if its home is not in (i, j] */
        if (((j - home) & (SET_SLOTS - 1)) >= ((j - i) & (SET_SLOTS - 1))) {
            live[i] = live[j];
            live[j] = NULL;
            i = j;
        }
    }
    pthread_mutex_unlock(&live_lock);
}

/* ---- objects: allocated, stamped, checked, freed --------------------------------------- */

typedef struct held {
    void *p;
    obj_class c;
    unsigned char stamp;
} held;

static int take(held *h, obj_class c, unsigned char stamp)
{
    h->p = objpool_alloc(c);
    if (!h->p) return 0;
    h->c = c;
    h->stamp = stamp;
    if ((uintptr_t)h->p % 16) unaligned++;
    live_add(h->p);
    memset(h->p, stamp, sizes[c]);
    return 1;
}

static void give_back(held *h)
{
    const unsigned char *b = h->p;
    for (size_t i = 0; i < sizes[h->c]; i++)
        if (b[i] != h->stamp) {
            corrupted++;
            break;
        }
    live_remove(h->p);
    objpool_free(h->c, h->p);
}

static void check_clean(const char *what)
{
    ok(duplicates == 0 && corrupted == 0 && unaligned == 0 && live_count == 0,
       "%s: no object handed out twice or changed while held (%ld duplicates, %ld corrupted, "
       "%ld unaligned, %zu still live)",
       what, (long)duplicates, (long)corrupted, (long)unaligned, live_count);
}

/* ---- one thread ------------------------------------------------------------------------ */

static void one_thread(int with_cache)
{
    objpool_cache cache = {0};
    if (with_cache) objpool_thread_cache(&cache);
    enum { N = 5 * 64 + 7 };
    static held h[N];
    int got = 1;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++)
            got &= take(&h[i], i % 3 ? OBJ_TASK : OBJ_FUTURE, (unsigned char)(i + round));
        for (int i = round % 2 ? 0 : N - 1; round % 2 ? i < N : i >= 0; i += round % 2 ? 1 : -1)
            give_back(&h[i]);
    }
    if (with_cache) objpool_thread_cache(NULL);
    ok(got, "%s: every allocation succeeded", with_cache ? "with a cache" : "without a cache");
    check_clean(with_cache ? "one thread with a cache, 3 rounds of 327 objects"
                           : "one thread without a cache, 3 rounds of 327 objects");
}

/* ---- threads trading objects ----------------------------------------------------------- */

#define BOX_SIZE 4096
static held box[BOX_SIZE];
static size_t box_len;
static pthread_mutex_t box_lock = PTHREAD_MUTEX_INITIALIZER;
static long rounds;
static _Atomic long allocated, freed, failed;

static void *trader(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    int cached = id % 4 != 3; /* every fourth thread has no cache, like a foreign thread */
    objpool_cache cache = {0};
    if (cached) objpool_thread_cache(&cache);
    uint64_t rng = 0x1234567 + id;
    held mine[160];
    for (long r = 0; r < rounds; r++) {
        size_t n = 1 + rng_next(&rng) % 160, kept = 0;
        for (size_t i = 0; i < n; i++) {
            obj_class c = rng_next(&rng) % 2 ? OBJ_TASK : OBJ_FUTURE;
            if (take(&mine[kept], c, (unsigned char)rng_next(&rng))) {
                kept++;
                allocated++;
            } else {
                failed++;
            }
        }
        size_t i = 0;
        pthread_mutex_lock(&box_lock); /* half goes to others */
        for (; i < kept / 2 && box_len < BOX_SIZE; i++) box[box_len++] = mine[i];
        size_t theirs = rng_next(&rng) % 100;
        held taken[100];
        size_t ntaken = 0;
        while (ntaken < theirs && box_len) taken[ntaken++] = box[--box_len];
        pthread_mutex_unlock(&box_lock);
        for (; i < kept; i++, freed++) give_back(&mine[i]);
        for (size_t j = 0; j < ntaken; j++, freed++) give_back(&taken[j]);
    }
    if (cached) objpool_thread_cache(NULL);
    return NULL;
}

static void threads(int n)
{
    pthread_t t[8];
    for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, trader, (void *)(uintptr_t)i);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    for (; box_len; freed++) give_back(&box[--box_len]);
    ok(failed == 0 && allocated == freed && allocated > rounds,
       "%d threads (%d without a cache): %ld objects allocated, %ld freed, %ld failures", n, n / 4,
       (long)allocated, (long)freed, (long)failed);
    check_clean("threads trading objects");
}

/* ---- a cache handed back in the middle of a fresh range -------------------------------- */

/* A cache carves fresh objects as a range it hands out untouched; handed back part-way, it
 * must give the rest of the range back, not lose it: those objects are the next ones a
 * thread without a cache gets (the shared pool hands out the magazine pushed last first). */
static void fresh_range_handed_back(void)
{
    enum { MAX = 1 << 21 };
    void **got = malloc(MAX * sizeof *got);
    objpool_cache cache = {0};
    objpool_bin *b = &cache.bins[OBJ_FUTURE];
    size_t n = 0;
    int pooled = 0;
    objpool_thread_cache(&cache);
    /* use up what the pool has stocked until a fresh range is being handed out */
    while (got && n < MAX && !(b->fresh && b->fresh < b->fresh_end)) {
        got[n++] = objpool_alloc(OBJ_FUTURE);
        pooled |= b->cur || b->spare || b->fresh;
    }
    skip(!pooled, 2, "objects come straight from the allocator in this build (objpool.c)") {
        char *lo = b->fresh, *hi = b->fresh_end;
        size_t stride = (sizeof(weft_future) + OBJPOOL_ALIGN - 1) & ~(size_t)(OBJPOOL_ALIGN - 1);
        size_t rest = (size_t)(hi - lo) / stride;
        objpool_thread_cache(NULL);
        ok(!b->fresh && !b->fresh_end, "a handed-back cache keeps no fresh range");
        size_t inside = 0;
        for (size_t i = 0; i < rest && n < MAX; i++) {
            char *o = objpool_alloc(OBJ_FUTURE);
            got[n++] = o;
            inside += o >= lo && o < hi && (size_t)(o - lo) % stride == 0;
        }
        ok(rest > 0 && inside == rest,
           "the %zu objects left of its fresh range are the next a thread without a cache gets "
           "(%zu were)", rest, inside);
    }
    end_skip;
    if (!pooled) objpool_thread_cache(NULL);
    for (size_t i = 0; i < n; i++) objpool_free(OBJ_FUTURE, got[i]);
    free(got);
}

int main(void)
{
    plan(9);
    rounds = scaled(20000);
    one_thread(1);
    one_thread(0);
    threads(8);
    /* a thread that arrives later is served from what the others handed back */
    held h;
    ok(take(&h, OBJ_TASK, 7), "an allocation after every cache was handed back");
    give_back(&h);
    fresh_range_handed_back();
    done_testing();
}
