/*
 * deque.c: the Chase-Lev work-stealing deque (see deque.h), with the C11 orders of Le, Pop,
 * Cohen and Zappa Nardelli (PPoPP 2013) and the fixes found since.
 *
 * Indices are signed 64-bit and only grow; element i lives in buf->slot[i & mask]. The deque
 * holds [top, bottom). Pointers pushed must not be NULL (NULL means "empty").
 *
 * Who writes what
 *   bottom   the owner only (push, take). Thieves read it.
 *   top      only by a CAS from t to t + 1 (steal, take of the last element, pop_top);
 *            it never decreases.
 *   buf      the owner only (grow). A buffer, once retired, is never written again and is
 *            freed only by deque_destroy, so a thief holding a stale pointer still reads
 *            the elements it held when it was retired.
 *   slots    the owner only: push writes slot bottom & mask, grow fills a new buffer
 *            before publishing it. The owner reuses slot t & mask only after it has seen
 *            top > t. Slots are atomics because a thief may read one speculatively while
 *            the owner rewrites it; such a read is thrown away when the thief's CAS fails.
 *
 * Which orders pair with which
 *   push: release store of bottom  ->  steal: acquire load of bottom. The slot, and whatever
 *       the pushed pointer points to, is visible to a thief that sees the new bottom. take's
 *       relaxed stores of bottom are later stores by the same thread, so they continue that
 *       release sequence (C11 5.1.2.4p10 and 7.17.4p2).
 *   grow: release store of buf     ->  steal: acquire load of buf. The copied slots are
 *       visible through the new buffer (the paper's consume load was the CDSChecker bug).
 *   steal / take / pop_top: CAS on top (seq_cst, so a release)  ->  push: acquire load of
 *       top. A thief's read of slot t happens before the owner reuses the slot.
 *   take: seq_cst fence between its store of bottom and its load of top, and steal: seq_cst
 *       fence between its loads of top and bottom. In the fences' total order one comes
 *       first, so either the thief sees the lowered bottom or the owner sees the raised top;
 *       owner and thief can meet only on the last element, where the CAS on top decides.
 */
#include "deque.h"

#include <errno.h>

#include "alloc.h"
#include "common.h"

#define relaxed memory_order_relaxed
#define acquire memory_order_acquire
#define release memory_order_release
#define seq_cst memory_order_seq_cst

static size_t buf_bytes(int64_t capacity)
{
    return sizeof(deque_buf) + (size_t)capacity * sizeof(_Atomic(void *));
}

/* Every slot starts NULL, so a thief's speculative read of a slot grow did not copy (the
 * thief's top was already stale) reads a defined value; its CAS then fails. */
static deque_buf *buf_create(int64_t capacity)
{
    if ((uint64_t)capacity > (SIZE_MAX - sizeof(deque_buf)) / sizeof(_Atomic(void *))) return NULL;
    deque_buf *buf = mem_aligned(buf_bytes(capacity), CACHE_LINE);
    if (!buf) return NULL;
    buf->mask = capacity - 1;
    buf->retired = NULL;
    for (int64_t i = 0; i < capacity; i++) atomic_init(&buf->slot[i], NULL);
    return buf;
}

int deque_init(deque *d, unsigned log2_capacity)
{
    if (log2_capacity > 62) return -ENOMEM;
    deque_buf *buf = buf_create((int64_t)1 << log2_capacity);
    if (!buf) return -ENOMEM;
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    atomic_init(&d->buf, buf);
    return 0;
}

void deque_destroy(deque *d)
{
    deque_buf *buf = atomic_load_explicit(&d->buf, relaxed);
    while (buf) {
        deque_buf *older = buf->retired;
        mem_free_aligned(buf, buf_bytes(buf->mask + 1), CACHE_LINE);
        buf = older;
    }
    atomic_store_explicit(&d->buf, NULL, relaxed);
}

/* Owner: double the buffer, copying [top, bottom). The old buffer stays readable (and
 * unchanged) for thieves that loaded it before the release store of the new one. */
static deque_buf *grow(deque *d, deque_buf *old, int64_t top, int64_t bottom)
{
    if (old->mask + 1 > INT64_MAX / 2) return NULL;
    deque_buf *buf = buf_create(2 * (old->mask + 1));
    if (!buf) return NULL;
    for (int64_t i = top; i < bottom; i++) {
        void *x = atomic_load_explicit(&old->slot[i & old->mask], relaxed);
        atomic_store_explicit(&buf->slot[i & buf->mask], x, relaxed);
    }
    buf->retired = old;
    atomic_store_explicit(&d->buf, buf, release);
    return buf;
}

/*
 * The paper has a release fence and a relaxed store of bottom; a release store of bottom
 * gives thieves (who load bottom with acquire) the same happens-before edge, is what
 * ThreadSanitizer models (it ignores fences), and is a single stlr on AArch64.
 */
static inline void publish(deque *d, deque_buf *buf, int64_t b, void *x)
{
    atomic_store_explicit(&buf->slot[b & buf->mask], x, relaxed);
    atomic_store_explicit(&d->bottom, b + 1, release);
}

/* A push into a full buffer; out of line, so that the common push saves no registers. */
static noinline int64_t push_grown(deque *d, deque_buf *buf, int64_t t, int64_t b, void *x)
{
    buf = grow(d, buf, t, b); /* use the new buffer: the paper reused the old one */
    if (!buf) return -ENOMEM;
    publish(d, buf, b, x);
    return b + 1 - t;
}

int64_t deque_push(deque *d, void *x)
{
    int64_t b = atomic_load_explicit(&d->bottom, relaxed);
    int64_t t = atomic_load_explicit(&d->top, acquire);
    deque_buf *buf = atomic_load_explicit(&d->buf, relaxed);
    if (unlikely(b - t > buf->mask)) return push_grown(d, buf, t, b, x);
    publish(d, buf, b, x);
    return b + 1 - t;
}

void *deque_take(deque *d)
{
    int64_t b = atomic_load_explicit(&d->bottom, relaxed) - 1;
    deque_buf *buf = atomic_load_explicit(&d->buf, relaxed);
    atomic_store_explicit(&d->bottom, b, relaxed);
    atomic_thread_fence(seq_cst);
    int64_t t = atomic_load_explicit(&d->top, relaxed);
    if (t > b) { /* empty: b may be top - 1, hence signed indices */
        atomic_store_explicit(&d->bottom, b + 1, relaxed);
        return NULL;
    }
    void *x = atomic_load_explicit(&buf->slot[b & buf->mask], relaxed);
    if (t == b) { /* the last element: race the thieves for it */
        if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, seq_cst, relaxed))
            x = NULL;
        atomic_store_explicit(&d->bottom, b + 1, relaxed);
    }
    return x;
}

/*
 * Owner, the oldest n <= max elements, with one CAS of top from t to t + n. Why no seq_cst
 * fence, where steal has one between its loads
 * of top and bottom:
 *  - steal's fence is one half of the Dekker pair with take: a thief might otherwise act
 *    on a bottom that take has already lowered (take then returns element b without a
 *    CAS) while take acts on a top that does not yet show the thief's CAS. Here the reader
 *    of bottom is its only writer: by sequenced-before b is exactly what the owner's own
 *    push and take left, and no take runs during this call. So [t, b) holds no element the
 *    owner is taking, and no store of bottom needs ordering against the load of top.
 *    pop_top stores no bottom, so take's and steal's pairing is untouched.
 *  - The only rivals are thieves, and they take index t only by a CAS of top from t to
 *    t + 1, while we take [t, t + n) by one from t to t + n. A read-modify-write reads the
 *    last value in top's modification order, so exactly one of us succeeds for each index.
 *    A stale (too small) t just makes the CAS fail, and the failed CAS hands back the
 *    current top to retry with.
 *  - The slots are read before the CAS and are valid when the CAS succeeds: top was t at
 *    that moment, every top any push ever loaded is <= t, so no push has reused a slot of
 *    [t, b). If the CAS fails the values (possibly newer elements) are discarded.
 *  - No acquire is needed on top: the element was written by this thread. The CAS is
 *    seq_cst like every other write of top, keeping all of top's writes in the single
 *    total order the take/steal argument reasons about, and as a release it still lets a
 *    later push's acquire of top order the thieves' slot reads (an RMW continues their
 *    release sequence).
 */
int deque_pop_top_n(deque *d, void **out, int max)
{
    int64_t b = atomic_load_explicit(&d->bottom, relaxed);
    int64_t t = atomic_load_explicit(&d->top, relaxed);
    deque_buf *buf = atomic_load_explicit(&d->buf, relaxed);
    while (t < b) {
        int n = b - t < max ? (int)(b - t) : max;
        for (int i = 0; i < n; i++)
            out[i] = atomic_load_explicit(&buf->slot[(t + i) & buf->mask], relaxed);
        if (atomic_compare_exchange_strong_explicit(&d->top, &t, t + n, seq_cst, relaxed)) return n;
    }
    return 0;
}

/* Owner. Thieves may still steal the element before the owner takes it: a hint, not a
 * claim. */
void *deque_peek_bottom(deque *d)
{
    int64_t b = atomic_load_explicit(&d->bottom, relaxed);
    int64_t t = atomic_load_explicit(&d->top, relaxed);
    if (t >= b) return NULL;
    deque_buf *buf = atomic_load_explicit(&d->buf, relaxed);
    return atomic_load_explicit(&buf->slot[(b - 1) & buf->mask], relaxed);
}

int deque_steal(deque *d, void **out)
{
    int64_t t = atomic_load_explicit(&d->top, acquire);
    atomic_thread_fence(seq_cst);
    int64_t b = atomic_load_explicit(&d->bottom, acquire);
    if (t >= b) return 0;
    deque_buf *buf = atomic_load_explicit(&d->buf, acquire);
    void *x = atomic_load_explicit(&buf->slot[t & buf->mask], relaxed); /* before the CAS */
    if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, seq_cst, relaxed)) return -1;
    *out = x;
    return 1;
}

