/*
 * stack.c: coroutine stacks (see stack.h): slabs, guards, the cache/pool recycling, and the
 * overflow handler.
 *
 * Slab layout. A slab is one private anonymous mapping (MAP_NORESERVE, MADV_NOHUGEPAGE) of
 * stacks of one size class, about SLAB_BYTES of address space (at most SLAB_MAX_STACKS):
 *
 *   [ header: struct slab + one descriptor per slot ][ guard 0 | stack 0 | colour 0 ][ guard 1 ...
 *
 * The descriptors live in the header, not in the stacks, so a stack's own pages stay
 * untouched until the task that runs on it touches them; the header costs a few pages per
 * slab. Slots are carved in order, one per pool miss, and never go back to the kernel until
 * stack_pool_free unmaps the slab. A guard is installed when its slot is carved and stays.
 * Colour page i's top is guard i+1's bottom, so running off the top faults too.
 *
 * Colouring. Every switch to a task reads the top lines of its stack (the switch frame and
 * the frames of its wait). Were every stack's top at the same page offset, those lines of
 * all stacks would fall into the same few sets of the caches, which are indexed by the
 * address bits just above the line offset (the page offset, for the L1 and part of the L2):
 * with more than a few dozen tasks taking turns, they would keep evicting each other. So a
 * stack gets a page more (its colour page), and its `top` lies in that page at an offset
 * that steps COLOUR_STEP lines from one slot to the next, over COLOURS offsets (the top
 * 3 KiB of the page, so a shallow task's frames, ~1 KiB, still touch one page). With 1,000
 * pairs, ping_pong went from 123 to 106 ns with 2 workers, queue_ping_pong from 90 to 73.
 *
 * Guards. Once per process the first stack-using call probes MADV_GUARD_INSTALL and reads
 * WEFT_STACK_GUARD. madvise guards cost no VMA; mprotect guards cost two each, so they are
 * handed out while a process-wide budget of half vm.max_map_count lasts (less under
 * valgrind). After that, and in canary mode, the top CANARY_WORDS words of the guard region
 * (just below lo) hold a canary that stack_check verifies and take re-arms; it costs the
 * stack one resident page. MADV_DONTNEED of a stack and its colour page keeps all three
 * kinds intact.
 *
 * Who touches what
 *   stack_cache         its owner thread only; no locks.
 *   stack_pool          classes[] and slabs under pool->lock; a slab's header fields are
 *                       written once under the lock before the slab is published.
 *   descriptor          the holder of the stack (the task's worker); the pool while free.
 *   registry            written under registry_lock; read without locks by the signal
 *                       handler. An entry is published by storing slab and hi, then lo with
 *                       release; the handler loads lo with acquire, then hi and slab. Chunks
 *                       are never freed, so a handler never reads freed registry memory.
 *   mprotect_budget     atomic; taken with a CAS, given back when a slab is unmapped.
 *
 * Invariants
 *   - A stack in a pool's free list has no resident pages (it was purged on the way in or
 *     never touched). Stacks in a cache may have some.
 *   - A cache holds at most cache_limit(cls) stacks of class cls.
 *   - The handler dereferences only slabs found in the registry; a slab leaves the registry
 *     before it is unmapped, and is unmapped only when none of its stacks is in use.
 */
#include "stack.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "common.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT_HAVE_VALGRIND 1
#endif
#endif
#ifndef WEFT_HAVE_VALGRIND
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_STACK_REGISTER(lo, hi) 0u
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif

#if defined(__aarch64__)
#define ARCH_MIN_GUARD (64 * 1024) /* GCC's stack-clash probe interval on aarch64 */
#else
#define ARCH_MIN_GUARD 0
#endif

#define STACK_CLASSES array_size(((stack_cache *)0)->free)
#define STACK_DEFAULT_SIZE (256 * 1024)
#define SLAB_BYTES ((size_t)32 << 20)
#define SLAB_MAX_STACKS 256
#define CACHE_MAX_STACKS 32
#define CACHE_MAX_BYTES ((size_t)8 << 20)
#define CANARY_WORDS 4
#define CANARY_PATTERN ((uintptr_t)0x5745465453544b21ull) /* "WEFTSTK!" */
#define ALTSTACK_SIZE (64 * 1024)
#define ALTSTACK_KEEP_MIN (16 * 1024) /* a thread's existing alternate stack this big is kept */
#define LABEL_MAX 256                 /* bytes of a label the overflow message shows */
#define VALGRIND_MPROTECT_BUDGET 4096 /* valgrind's segment table is smaller than the kernel's */
#define REGISTRY_CHUNK 1024
#define REGISTRY_CHUNKS 1024
#define COLOURS 48    /* offsets of a stack's top into its colour page, one line apart */
#define COLOUR_STEP 7 /* lines from one slot's top to the next's: more than a wait's frames */

struct stack_slot {
    stack stack;
    unsigned valgrind_id;
} cache_aligned;

struct slab {
    struct slab *next;        /* the pool's slabs */
    size_t length;            /* of the whole mapping, which starts with this header */
    size_t header_size;       /* bytes before slot 0 */
    size_t slot_size;         /* guard + stack + colour page */
    unsigned capacity;        /* slots */
    unsigned carved;          /* slots [0, carved) have been handed out; under the pool lock */
    unsigned mprotect_guards; /* each holds 2 of mprotect_budget until the unmap */
    unsigned registry_index;
    struct stack_slot slots[];
};

struct stack_pool {
    pthread_mutex_t lock;
    struct slab *slabs;
    struct pool_class {
        stack *free;          /* purged stacks, LIFO */
        struct slab *carving; /* where the next new stack of this class comes from */
    } classes[STACK_CLASSES];
};

struct registry_entry {
    _Atomic uintptr_t lo; /* 0: free */
    _Atomic uintptr_t hi;
    _Atomic(struct slab *) slab;
};

static struct {
    size_t page_size;
    size_t guard_size;
    unsigned min_class; /* the smallest class that is a whole number of pages */
    int mode;           /* STACK_GUARD_*: what a new stack tries first */
    int madvise_works;
} globals;
static pthread_once_t globals_once = PTHREAD_ONCE_INIT;
static _Atomic long mprotect_budget; /* VMAs that mprotect guards may still split off */

static _Atomic(struct registry_entry *) registry[REGISTRY_CHUNKS];
static _Atomic size_t registry_used; /* entries [0, registry_used) may be in use */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t registry_hint; /* under registry_lock: no free entry below it */

static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static struct sigaction previous_segv, previous_bus;

static __thread char *altstack_mapping; /* ours, if stack_thread_init installed one */
static __thread size_t altstack_length;

static size_t class_bytes(unsigned cls)
{
    return (size_t)1 << (STACK_MIN_SHIFT + cls);
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* ---- process-wide setup -------------------------------------------------------------- */

static int madvise_guard_probe(void)
{
    void *page = mmap(NULL, globals.page_size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (page == MAP_FAILED) return 0;
    int works = madvise(page, globals.page_size, MADV_GUARD_INSTALL) == 0;
    munmap(page, globals.page_size);
    return works;
}

static long max_map_count(void)
{
    char text[32];
    long count = 65530; /* the kernel's default */
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return count;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n > 0) {
        text[n] = '\0';
        long parsed = strtol(text, NULL, 10);
        if (parsed > 0) count = parsed;
    }
    return count;
}

static void globals_init_once(void)
{
    long page = sysconf(_SC_PAGESIZE);
    globals.page_size = page > 0 ? (size_t)page : 4096;
    globals.guard_size =
        globals.page_size > ARCH_MIN_GUARD ? globals.page_size : (size_t)ARCH_MIN_GUARD;
    while (class_bytes(globals.min_class) < globals.page_size) globals.min_class++;
    globals.madvise_works = madvise_guard_probe();

    const char *forced = getenv("WEFT_STACK_GUARD");
    if (forced && strcmp(forced, "canary") == 0)
        globals.mode = STACK_GUARD_CANARY;
    else if ((forced && strcmp(forced, "mprotect") == 0) || !globals.madvise_works)
        globals.mode = STACK_GUARD_MPROTECT;
    else
        globals.mode = STACK_GUARD_MADVISE;
    long budget = max_map_count() / 2;
    if (RUNNING_ON_VALGRIND && budget > VALGRIND_MPROTECT_BUDGET) budget = VALGRIND_MPROTECT_BUDGET;
    atomic_store(&mprotect_budget, budget);
}

static void globals_init(void)
{
    pthread_once(&globals_once, globals_init_once);
}

/* ---- guards and canaries ------------------------------------------------------------- */

static int mprotect_budget_take(void)
{
    long left = atomic_load_explicit(&mprotect_budget, memory_order_relaxed);
    while (left >= 2)
        if (atomic_compare_exchange_weak_explicit(&mprotect_budget, &left, left - 2,
                                                  memory_order_relaxed, memory_order_relaxed))
            return 1;
    return 0;
}

/* Guard [guard, guard + guard_size) as well as this process still can; returns the kind. */
static int guard_install(struct slab *slab, char *guard)
{
    if (globals.mode == STACK_GUARD_MADVISE &&
        madvise(guard, globals.guard_size, MADV_GUARD_INSTALL) == 0)
        return STACK_GUARD_MADVISE;
    if (globals.mode != STACK_GUARD_CANARY && mprotect_budget_take()) {
        if (mprotect(guard, globals.guard_size, PROT_NONE) == 0) {
            slab->mprotect_guards++;
            return STACK_GUARD_MPROTECT;
        }
        atomic_fetch_add_explicit(&mprotect_budget, 2, memory_order_relaxed);
    }
    return STACK_GUARD_CANARY;
}

static uintptr_t *canary_words(const stack *s)
{
    return (uintptr_t *)s->lo - CANARY_WORDS;
}

static uintptr_t canary_value(const uintptr_t *word)
{
    return CANARY_PATTERN ^ (uintptr_t)word;
}

static void canary_arm(stack *s)
{
    uintptr_t *words = canary_words(s);
    for (int i = 0; i < CANARY_WORDS; i++) words[i] = canary_value(&words[i]);
}

int stack_check_canary(const stack *s)
{
    const uintptr_t *words = canary_words(s);
    for (int i = 0; i < CANARY_WORDS; i++)
        if (words[i] != canary_value(&words[i])) return -EFAULT;
    return 0;
}

const char *stack_guard_kind(void)
{
    globals_init();
    if (globals.mode == STACK_GUARD_MADVISE) return "madvise";
    if (globals.mode == STACK_GUARD_MPROTECT &&
        atomic_load_explicit(&mprotect_budget, memory_order_relaxed) >= 2)
        return "mprotect";
    return "canary";
}

/* ---- the slab registry the signal handler reads -------------------------------------- */

static struct registry_entry *registry_entry_at(size_t index)
{
    struct registry_entry *chunk =
        atomic_load_explicit(&registry[index / REGISTRY_CHUNK], memory_order_acquire);
    return &chunk[index % REGISTRY_CHUNK];
}

static int registry_add(struct slab *slab)
{
    int err = 0;
    pthread_mutex_lock(&registry_lock);
    size_t used = atomic_load_explicit(&registry_used, memory_order_relaxed);
    size_t index = registry_hint;
    while (index < used &&
           atomic_load_explicit(&registry_entry_at(index)->lo, memory_order_relaxed) != 0)
        index++;
    if (index == used) {
        if (index == (size_t)REGISTRY_CHUNK * REGISTRY_CHUNKS) {
            err = -ENOMEM;
            goto out;
        }
        _Atomic(struct registry_entry *) *chunk = &registry[index / REGISTRY_CHUNK];
        if (!atomic_load_explicit(chunk, memory_order_relaxed)) {
            /* mmap, not mem_alloc: zeroed, never freed, read by the handler. */
            void *fresh = mmap(NULL, REGISTRY_CHUNK * sizeof(struct registry_entry),
                               PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (fresh == MAP_FAILED) {
                err = -ENOMEM;
                goto out;
            }
            atomic_store_explicit(chunk, fresh, memory_order_release);
        }
    }
    struct registry_entry *entry = registry_entry_at(index);
    atomic_store_explicit(&entry->slab, slab, memory_order_relaxed);
    atomic_store_explicit(&entry->hi, (uintptr_t)slab + slab->length, memory_order_relaxed);
    atomic_store_explicit(&entry->lo, (uintptr_t)slab, memory_order_release);
    if (index == used) atomic_store_explicit(&registry_used, used + 1, memory_order_release);
    registry_hint = index + 1;
    slab->registry_index = (unsigned)index;
out:
    pthread_mutex_unlock(&registry_lock);
    return err;
}

static void registry_remove(struct slab *slab)
{
    pthread_mutex_lock(&registry_lock);
    atomic_store_explicit(&registry_entry_at(slab->registry_index)->lo, 0, memory_order_release);
    if (slab->registry_index < registry_hint) registry_hint = slab->registry_index;
    pthread_mutex_unlock(&registry_lock);
}

/* The stack whose guard region holds addr, or NULL. Async-signal-safe. */
static const stack *guard_owner(uintptr_t addr)
{
    size_t used = atomic_load_explicit(&registry_used, memory_order_acquire);
    for (size_t index = 0; index < used; index++) {
        struct registry_entry *entry = registry_entry_at(index);
        uintptr_t lo = atomic_load_explicit(&entry->lo, memory_order_acquire);
        if (lo == 0 || addr < lo || addr >= atomic_load_explicit(&entry->hi, memory_order_relaxed))
            continue;
        const struct slab *slab = atomic_load_explicit(&entry->slab, memory_order_relaxed);
        uintptr_t first_slot = (uintptr_t)slab + slab->header_size;
        if (addr < first_slot || addr >= (uintptr_t)slab + slab->length) return NULL;
        size_t offset = addr - first_slot;
        if (offset % slab->slot_size >= globals.guard_size) return NULL; /* in a stack */
        const stack *s = &slab->slots[offset / slab->slot_size].stack;
        return s->guard == STACK_GUARD_MADVISE || s->guard == STACK_GUARD_MPROTECT ? s : NULL;
    }
    return NULL;
}

/* ---- slabs and the pool -------------------------------------------------------------- */

static struct slab *slab_map(stack_pool *pool, unsigned cls)
{
    size_t slot_size = globals.guard_size + class_bytes(cls) + globals.page_size;
    size_t capacity = SLAB_BYTES / slot_size;
    if (capacity < 1) capacity = 1;
    if (capacity > SLAB_MAX_STACKS) capacity = SLAB_MAX_STACKS;
    size_t header_size = round_up(
        offsetof(struct slab, slots) + capacity * sizeof(struct stack_slot), globals.page_size);
    size_t length = header_size + capacity * slot_size;

    void *base = mmap(NULL, length, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) return NULL;
    madvise(base, length, MADV_NOHUGEPAGE); /* EINVAL without THP, which is as good */
    struct slab *slab = base;
    slab->length = length;
    slab->header_size = header_size;
    slab->slot_size = slot_size;
    slab->capacity = (unsigned)capacity;
    if (registry_add(slab)) {
        munmap(base, length);
        return NULL;
    }
    slab->next = pool->slabs;
    pool->slabs = slab;
    return slab;
}

/* A never-used stack of class cls; the caller holds pool->lock. */
static stack *slab_carve(stack_pool *pool, unsigned cls)
{
    struct pool_class *class = &pool->classes[cls];
    struct slab *slab = class->carving;
    if (!slab || slab->carved == slab->capacity) {
        slab = slab_map(pool, cls);
        if (!slab) return NULL;
        class->carving = slab;
    }
    struct stack_slot *slot = &slab->slots[slab->carved];
    char *guard = (char *)slab + slab->header_size + slab->carved * slab->slot_size;
    char *lo = guard + globals.guard_size, *end = lo + class_bytes(cls) + globals.page_size;
    slot->stack = (stack){
        .lo = lo,
        .top = end - (size_t)CACHE_LINE * (slab->carved * COLOUR_STEP % COLOURS),
        .size = class_bytes(cls),
        .pool = pool,
        .cls = cls,
        .guard = guard_install(slab, guard),
    };
    slot->valgrind_id = VALGRIND_STACK_REGISTER(lo, end);
    slab->carved++;
    return &slot->stack;
}

stack_pool *stack_pool_new(void)
{
    globals_init();
    stack_pool *pool = mem_zalloc(sizeof *pool);
    if (!pool) return NULL;
    if (pthread_mutex_init(&pool->lock, NULL)) {
        mem_free(pool, sizeof *pool);
        return NULL;
    }
    return pool;
}

void stack_pool_free(stack_pool *pool)
{
    if (!pool) return;
    for (struct slab *slab = pool->slabs, *next; slab; slab = next) {
        next = slab->next;
        registry_remove(slab);
        /* Newest first: the reverse of registration, which valgrind deregisters fastest. */
        for (unsigned i = slab->carved; i-- > 0;)
            VALGRIND_STACK_DEREGISTER(slab->slots[i].valgrind_id);
        atomic_fetch_add_explicit(&mprotect_budget, 2 * (long)slab->mprotect_guards,
                                  memory_order_relaxed);
        munmap(slab, slab->length);
    }
    pthread_mutex_destroy(&pool->lock);
    mem_free(pool, sizeof *pool);
}

static unsigned cache_limit(unsigned cls)
{
    size_t by_bytes = CACHE_MAX_BYTES / class_bytes(cls);
    if (by_bytes >= CACHE_MAX_STACKS) return CACHE_MAX_STACKS;
    return by_bytes >= 2 ? (unsigned)by_bytes : 2;
}

/* Purge the stacks of list (of class cls) and push them onto the pool's free list. */
static void pool_put_list(stack_pool *pool, unsigned cls, stack *list)
{
    stack *last = NULL;
    for (stack *s = list; s; s = s->next) {
        madvise(s->lo, s->size + globals.page_size, MADV_DONTNEED); /* and its colour page */
        last = s;
    }
    if (!last) return;
    pthread_mutex_lock(&pool->lock);
    last->next = pool->classes[cls].free;
    pool->classes[cls].free = list;
    pthread_mutex_unlock(&pool->lock);
}

/* On a cache miss: a stack for the caller plus up to half a cache's worth for the cache. */
static stack *pool_take(stack_cache *cache, unsigned cls)
{
    stack_pool *pool = cache->pool;
    struct pool_class *class = &pool->classes[cls];
    unsigned batch = cache_limit(cls) / 2, taken = 1;

    pthread_mutex_lock(&pool->lock);
    stack *first = class->free;
    if (first) {
        stack *last = first;
        while (taken < batch && last->next) {
            last = last->next;
            taken++;
        }
        class->free = last->next;
        last->next = NULL;
    } else {
        first = slab_carve(pool, cls);
    }
    pthread_mutex_unlock(&pool->lock);

    if (first) {
        cache->free[cls] = first->next;
        cache->count[cls] = taken - 1;
    }
    return first;
}

/* ---- the per-worker cache ------------------------------------------------------------ */

void stack_cache_init(stack_cache *cache, stack_pool *pool)
{
    memset(cache, 0, sizeof *cache);
    cache->pool = pool;
}

void stack_cache_flush(stack_cache *cache)
{
    for (unsigned cls = 0; cls < STACK_CLASSES; cls++) {
        pool_put_list(cache->pool, cls, cache->free[cls]);
        cache->free[cls] = NULL;
        cache->count[cls] = 0;
    }
}

stack *stack_take(stack_cache *cache, size_t size)
{
    unsigned cls = stack_shift(size) - STACK_MIN_SHIFT;
    if (cls < globals.min_class) cls = globals.min_class;
    if (cls >= STACK_CLASSES) return NULL;

    stack *s = cache->free[cls];
    if (s) {
        cache->free[cls] = s->next;
        cache->count[cls]--;
    } else {
        s = pool_take(cache, cls);
        if (!s) return NULL;
    }
    s->next = NULL;
    s->label = NULL;
    if (s->guard == STACK_GUARD_CANARY) canary_arm(s);
    return s;
}

void stack_give(stack_cache *cache, stack *s)
{
    unsigned cls = s->cls;
    assert(s->pool == cache->pool);
    if (cache->count[cls] >= cache_limit(cls)) {
        /* Keep the most recently given half (their pages are warm); purge the rest. */
        unsigned keep = cache->count[cls] / 2;
        stack *last_kept = cache->free[cls];
        for (unsigned i = 1; i < keep; i++) last_kept = last_kept->next;
        stack *spill = last_kept->next;
        last_kept->next = NULL;
        pool_put_list(cache->pool, cls, spill);
        cache->count[cls] = keep;
    }
    s->next = cache->free[cls];
    cache->free[cls] = s;
    cache->count[cls]++;
}

size_t stack_default_size(void)
{
    return STACK_DEFAULT_SIZE;
}

/* ---- overflow reports ---------------------------------------------------------------- */

static size_t append_text(char *buf, size_t n, const char *text, size_t max)
{
    for (size_t i = 0; i < max && text[i]; i++) buf[n++] = text[i];
    return n;
}

static size_t append_decimal(char *buf, size_t n, size_t value)
{
    char digits[24];
    size_t count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (count) buf[n++] = digits[--count];
    return n;
}

/* Async-signal-safe: formats by hand and writes once. */
static void overflow_report(const stack *s)
{
    static const char head[] = "weft: stack overflow in task '";
    static const char middle[] = "' (stack size ";
    static const char tail[] = " bytes)\n";
    char msg[sizeof head + LABEL_MAX + sizeof middle + 24 + sizeof tail];
    size_t n = append_text(msg, 0, head, sizeof head);
    n = append_text(msg, n, s->label ? s->label : "(unnamed)", LABEL_MAX);
    n = append_text(msg, n, middle, sizeof middle);
    n = append_decimal(msg, n, s->size);
    n = append_text(msg, n, tail, sizeof tail);
    for (size_t done = 0; done < n;) {
        ssize_t written = write(STDERR_FILENO, msg + done, n - done);
        if (written < 0 && errno != EINTR) break;
        if (written > 0) done += (size_t)written;
    }
}

void stack_overflow_abort(const stack *s)
{
    overflow_report(s);
    abort();
}

/* Pass a fault that is not ours on: to the previous handler, or back to the default action
 * (the faulting instruction runs again on return and the fault repeats). */
static void fault_chain(int sig, siginfo_t *info, void *context)
{
    const struct sigaction *previous = sig == SIGSEGV ? &previous_segv : &previous_bus;
    /* sa_handler and sa_sigaction share storage, so this test covers both. */
    if (previous->sa_handler != SIG_DFL && previous->sa_handler != SIG_IGN) {
        if (previous->sa_flags & SA_SIGINFO)
            previous->sa_sigaction(sig, info, context);
        else
            previous->sa_handler(sig);
        return;
    }
    struct sigaction fallback = {.sa_handler = SIG_DFL}; /* a fault cannot be ignored */
    sigemptyset(&fallback.sa_mask);
    sigaction(sig, &fallback, NULL);
    if (info->si_code <= 0) raise(sig); /* sent by kill(): returning would not repeat it */
}

static void fault_handler(int sig, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    if (info->si_code > 0) { /* raised by the kernel, so si_addr is the faulting address */
        const stack *s = guard_owner((uintptr_t)info->si_addr);
        if (s) stack_overflow_abort(s);
    }
    fault_chain(sig, info, context);
    errno = saved_errno;
}

static void handler_install_once(void)
{
    struct sigaction action = {.sa_sigaction = fault_handler,
                               .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART};
    sigemptyset(&action.sa_mask);
    /* Read the old dispositions first: the handler may run as soon as it is installed. */
    sigaction(SIGSEGV, NULL, &previous_segv);
    sigaction(SIGBUS, NULL, &previous_bus);
    sigaction(SIGSEGV, &action, NULL);
    sigaction(SIGBUS, &action, NULL);
}

void stack_overflow_handler_install(void)
{
    globals_init();
    pthread_once(&handler_once, handler_install_once);
}

int stack_thread_init(void)
{
    stack_t current;
    if (altstack_mapping) return 0;
    if (sigaltstack(NULL, &current)) return -errno;
    if (!(current.ss_flags & SS_DISABLE) && current.ss_size >= ALTSTACK_KEEP_MIN) return 0;

    globals_init();
    size_t size = ALTSTACK_SIZE;
#ifdef _SC_SIGSTKSZ
    long wanted = sysconf(_SC_SIGSTKSZ);
    if (wanted > 0 && (size_t)wanted > size) size = round_up((size_t)wanted, globals.page_size);
#endif
    size_t length = globals.guard_size + size;
    char *mapping = mmap(NULL, length, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (mapping == MAP_FAILED) return -ENOMEM;
    if (!globals.madvise_works || madvise(mapping, globals.guard_size, MADV_GUARD_INSTALL))
        mprotect(mapping, globals.guard_size, PROT_NONE); /* best effort */
    stack_t alternate = {.ss_sp = mapping + globals.guard_size, .ss_size = size};
    if (sigaltstack(&alternate, NULL)) {
        int err = errno;
        munmap(mapping, length);
        return -err;
    }
    altstack_mapping = mapping;
    altstack_length = length;
    return 0;
}

void stack_thread_exit(void)
{
    stack_t current;
    if (!altstack_mapping) return;
    if (sigaltstack(NULL, &current) == 0 &&
        current.ss_sp == altstack_mapping + globals.guard_size) {
        stack_t disabled = {.ss_flags = SS_DISABLE};
        sigaltstack(&disabled, NULL);
    }
    munmap(altstack_mapping, altstack_length);
    altstack_mapping = NULL;
    altstack_length = 0;
}
