/*
 * test_stack: coroutine stacks (runtime/stack.c): size classes and reuse, layout, lazy
 * commit, the purge path, guards of each kind, the overflow handler, many stacks at once.
 *
 * The guard mode is chosen once per process, so with WEFT_STACK_GUARD unset the mprotect
 * and canary modes each run the whole suite in a forked child (shown as an indented
 * subtest), then the default mode runs here. Set WEFT_STACK_GUARD to run one mode only.
 * Death tests run in forked children; the parent checks how they died and their stderr.
 * The parent never installs the overflow handler, so children start without it.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "common.h"
#include "stack.h"
#include "tap.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define KIB ((size_t)1024)
#define MIB (1024 * KIB)
#define OVERFLOW_LABEL "deep-recursion-task"

static size_t page_size;
static const char *mode; /* the guard kind fresh stacks should get in this process */
static int faults;       /* does a write into the guard fault in this mode? */

/* ---- helpers ------------------------------------------------------------------------- */

static size_t resident_pages(const void *lo, size_t size)
{
    size_t pages = size / page_size, resident = 0;
    unsigned char *vector = malloc(pages);
    if (!vector || mincore((void *)lo, size, vector) != 0) {
        free(vector);
        return SIZE_MAX;
    }
    for (size_t i = 0; i < pages; i++) resident += vector[i] & 1;
    free(vector);
    return resident;
}

static int is_mapped(const void *addr)
{
    unsigned char vector;
    void *page = (void *)((uintptr_t)addr & ~(uintptr_t)(page_size - 1));
    return !(mincore(page, page_size, &vector) != 0 && errno == ENOMEM);
}

static int maps_lines(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    int lines = 0, c;
    if (!maps) return -1;
    while ((c = getc(maps)) != EOF) lines += c == '\n';
    fclose(maps);
    return lines;
}

static long max_map_count(void)
{
    long count = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &count) != 1) count = 65530;
        fclose(f);
    }
    return count;
}

static const char *expected_mode(void)
{
    const char *forced = getenv("WEFT_STACK_GUARD");
    if (forced && strcmp(forced, "canary") == 0) return "canary";
    if (forced && strcmp(forced, "mprotect") == 0) return "mprotect";
    void *page = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int works = page != MAP_FAILED && madvise(page, page_size, MADV_GUARD_INSTALL) == 0;
    if (page != MAP_FAILED) munmap(page, page_size);
    return works ? "madvise" : "mprotect";
}

static int guard_enum(const char *kind)
{
    if (strcmp(kind, "madvise") == 0) return STACK_GUARD_MADVISE;
    if (strcmp(kind, "mprotect") == 0) return STACK_GUARD_MPROTECT;
    return STACK_GUARD_CANARY;
}

/* ---- death tests --------------------------------------------------------------------- */

struct death {
    int status;
    char err[8192]; /* the child's stderr */
};

static void run_child(void (*body)(void *), void *arg, struct death *death)
{
    int fds[2];
    size_t got = 0;
    memset(death, 0, sizeof *death);
    if (pipe(fds)) BAIL_OUT("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) BAIL_OUT("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        body(arg);
        _exit(0);
    }
    close(fds[1]);
    for (ssize_t n; (n = read(fds[0], death->err + got, sizeof death->err - 1 - got)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || (got += (size_t)n) == sizeof death->err - 1) break;
    }
    close(fds[0]);
    while (waitpid(pid, &death->status, 0) < 0 && errno == EINTR) continue;
}

static int killed_by(const struct death *death, int sig)
{
    return WIFSIGNALED(death->status) && WTERMSIG(death->status) == sig;
}

/* A plain crash: the default action, or a sanitizer's report and a failing exit. */
static int crashed(const struct death *death)
{
    int crashed = killed_by(death, SIGSEGV) || killed_by(death, SIGBUS);
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
    crashed |= WIFEXITED(death->status) && WEXITSTATUS(death->status) != 0 &&
               strstr(death->err, "Sanitizer");
#endif
    if (!crashed) diag("the child's wait status: %#x; its stderr:\n%s", death->status, death->err);
    return crashed;
}

static void expect_overflow_report(const struct death *death, const stack *s, const char *label,
                                   const char *what)
{
    char message[256];
    snprintf(message, sizeof message, "weft: stack overflow in task '%s' (stack size %zu bytes)\n",
             label, s->size);
    ok(killed_by(death, SIGABRT), "%s: the child aborts", what);
    if (!ok(strstr(death->err, message) != NULL, "%s: stderr has the exact message", what))
        diag("stderr was:\n%s", death->err);
}

/* Ends the child by a signal of its own: an exit status could be valgrind's error code. */
static void previous_handler(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    (void)info;
    (void)context;
    signal(SIGUSR2, SIG_DFL);
    raise(SIGUSR2);
}

/* Optionally a user's SIGSEGV/SIGBUS handler, then optionally weft's. */
static void handlers_install(int previous, int weft)
{
    if (previous) {
        struct sigaction action = {.sa_sigaction = previous_handler, .sa_flags = SA_SIGINFO};
        sigemptyset(&action.sa_mask);
        sigaction(SIGSEGV, &action, NULL);
        sigaction(SIGBUS, &action, NULL);
    }
    if (weft) {
        stack_overflow_handler_install();
        if (stack_thread_init() != 0) _exit(3);
    }
}

struct fault_job {
    stack *s;
    const char *label;
    int install;  /* weft's handler and alternate stack first */
    int previous; /* a user's handler before weft's */
    int below;    /* how far below lo to write */
};

static void fault_body(void *arg)
{
    struct fault_job *job = arg;
    handlers_install(job->previous, job->install);
    job->s->label = job->label;
    ((volatile char *)job->s->lo)[-job->below] = 1;
}

static volatile unsigned recursion_limit = UINT_MAX;
static ucontext_t main_context, task_context;

static noinline unsigned recurse(unsigned depth)
{
    volatile char frame[256];
    frame[0] = (char)depth;
    if (depth == recursion_limit) return frame[0];
    return recurse(depth + 1) + frame[0];
}

static void task_entry(void)
{
    recurse(0);
}

/* Recurse without end on the weft stack itself, through ucontext. */
static void recursion_body(void *arg)
{
    stack *s = arg;
    handlers_install(0, 1);
    s->label = OVERFLOW_LABEL;
    getcontext(&task_context);
    task_context.uc_stack.ss_sp = s->lo;
    task_context.uc_stack.ss_size = s->size;
    task_context.uc_link = &main_context;
    makecontext(&task_context, task_entry, 0);
    swapcontext(&main_context, &task_context);
}

static void *recursion_thread(void *arg)
{
    recursion_body(arg);
    return NULL;
}

/* The same on a thread of its own, as a worker would run it. */
static void recursion_on_thread_body(void *arg)
{
    pthread_t thread;
    pthread_create(&thread, NULL, recursion_thread, arg);
    pthread_join(thread, NULL);
}

static void canary_body(void *arg)
{
    stack *s = arg;
    s->label = OVERFLOW_LABEL;
    ((volatile char *)s->lo)[-1] = 1;
    if (stack_check(s) != 0) stack_overflow_abort(s);
}

/* Faults that are not overflows. Memcheck flags none of them, so children stay quiet under
 * valgrind. */
enum { FAULT_READ_ONLY, FAULT_BEYOND_EOF, FAULT_RAISED, FAULT_KINDS };
static const char *const fault_names[] = {"write to a read-only page", "read beyond EOF",
                                          "raise(SIGSEGV)"};
struct other_fault {
    int kind;
    int previous;
};

static void other_fault_body(void *arg)
{
    struct other_fault *fault = arg;
    handlers_install(fault->previous, 1);
    if (fault->kind == FAULT_READ_ONLY) {
        char *page = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        *(volatile char *)page = 1;
    } else if (fault->kind == FAULT_BEYOND_EOF) {
        FILE *empty = tmpfile();
        char *page = mmap(NULL, page_size, PROT_READ, MAP_SHARED, fileno(empty), 0);
        if (page != MAP_FAILED) (void)*(volatile char *)page;
    } else {
        raise(SIGSEGV);
    }
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_guard_kind(void)
{
    stack_pool *pool = stack_pool_new();
    stack_cache cache;
    stack_cache_init(&cache, pool);
    is(stack_guard_kind(), mode, "stack_guard_kind() reports %s", mode);
    stack *s = stack_take(&cache, stack_default_size());
    ok(s != NULL, "take a default stack");
    cmp_ok(s->guard, ==, guard_enum(mode), "the stack got a %s guard", mode);
    cmp_ok(stack_default_size(), ==, 256 * KIB, "default size is 256 KiB");
    stack_give(&cache, s);
    stack_cache_flush(&cache);
    stack_pool_free(pool);
}

static void test_classes(void)
{
    static const struct {
        size_t asked, class_size;
    } cases[] = {{1, 16 * KIB},       {16 * KIB, 16 * KIB},   {16 * KIB + 1, 32 * KIB},
                 {100000, 128 * KIB}, {256 * KIB, 256 * KIB}, {MIB, MIB},
                 {5 * MIB, 8 * MIB},  {64 * MIB, 64 * MIB}};
    stack_pool *pool = stack_pool_new();
    stack_cache cache;
    stack_cache_init(&cache, pool);
    for (size_t i = 0; i < array_size(cases); i++) {
        size_t expected = cases[i].class_size > page_size ? cases[i].class_size : page_size;
        stack *s = stack_take(&cache, cases[i].asked);
        if (!ok(s != NULL, "take %zu bytes", cases[i].asked)) continue;
        cmp_ok(s->size, ==, expected, "%zu bytes round up to %zu", cases[i].asked, expected);
        ok((uintptr_t)s->lo % page_size == 0, "lo is page aligned");
        ok(s->label == NULL && s->pool == pool, "fresh descriptor: no label, right pool");
        s->label = "reused";
        stack_give(&cache, s);
        stack *again = stack_take(&cache, expected);
        ok(again == s, "the cache hands the same stack back");
        ok(again->label == NULL, "take clears the label");
        stack *other = stack_take(&cache, cases[i].asked);
        ok(other && other != s && other->size == s->size, "a second one is another stack");
        stack_give(&cache, other);
        stack_give(&cache, again);
    }
    ok(stack_take(&cache, (size_t)1 << 40) == NULL, "a size beyond the largest class: NULL");
    stack_cache_flush(&cache);
    stack_pool_free(pool);
}

static int by_lo(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)(*(stack *const *)a)->lo, y = (uintptr_t)(*(stack *const *)b)->lo;
    return x < y ? -1 : x > y;
}

static void test_no_overlap(void)
{
    enum { COUNT = 600 };
    static const size_t sizes[] = {16 * KIB, 32 * KIB, 256 * KIB, MIB};
    stack *all[COUNT];
    stack_pool *pool = stack_pool_new();
    stack_cache cache;
    stack_cache_init(&cache, pool);
    int taken = 0, disjoint = 1, descriptors_outside = 1;
    for (; taken < COUNT; taken++)
        if (!(all[taken] = stack_take(&cache, sizes[taken % array_size(sizes)]))) break;
    cmp_ok(taken, ==, COUNT, "take %d stacks of four classes", COUNT);
    qsort(all, (size_t)taken, sizeof all[0], by_lo);
    for (int i = 0; i + 1 < taken; i++) {
        /* Every stack has its colour page above it and at least a page of guard below. */
        if ((char *)all[i]->lo + all[i]->size + 2 * page_size > (char *)all[i + 1]->lo)
            disjoint = 0;
    }
    for (int i = 0; i < taken; i++) {
        for (int j = 0; j < taken; j++) {
            char *d = (char *)all[i];
            if (d + sizeof(stack) > (char *)all[j]->lo - page_size &&
                d < (char *)all[j]->lo + all[j]->size + page_size)
                descriptors_outside = 0;
        }
    }
    ok(disjoint, "stacks, their colour pages and their guards do not overlap");
    ok(descriptors_outside, "no descriptor lies in a stack or a guard");
    for (int i = 0; i < taken; i++) stack_give(&cache, all[i]);
    stack_cache_flush(&cache);
    stack_pool_free(pool);
}

static void check_guard(stack *s, const char *when)
{
    if (faults) {
        struct fault_job job = {.s = s, .below = 1};
        struct death death;
        run_child(fault_body, &job, &death);
        ok(crashed(&death), "%s: a write just below lo faults", when);
        job.below = (int)page_size;
        run_child(fault_body, &job, &death);
        ok(crashed(&death), "%s: a write a page below lo faults", when);
    } else {
        cmp_ok(stack_check(s), ==, 0, "%s: the canary is intact", when);
        ((volatile char *)s->lo)[-1] = 1;
        cmp_ok(stack_check(s), ==, -EFAULT, "%s: a write just below lo breaks it", when);
    }
}

/* A stack's top lies in the page above its size, at an offset that differs from one stack
 * to the next, so that the tops of many stacks do not all fall into the same cache sets. */
static void test_colour(void)
{
    enum { COUNT = 96, LINE = 64 };
    stack *all[COUNT];
    stack_pool *pool = stack_pool_new();
    stack_cache cache;
    stack_cache_init(&cache, pool);
    int in_page = 1, spread = 1, writable = 1, offsets = 0;
    unsigned char seen[4096 / LINE] = {0};
    for (int i = 0; i < COUNT; i++) {
        stack *s = all[i] = stack_take(&cache, 16 * KIB);
        char *page = (char *)s->lo + s->size;
        size_t off = (size_t)((char *)s->top - page);
        if (off == 0 || off > page_size || off % LINE || stack_extent(s) != s->size + off)
            in_page = 0;
        if (!seen[off % 4096 / LINE]++) offsets++;
        if (i > 0) { /* consecutive tops at least a wait's frames apart, in page offset */
            size_t prev = (size_t)((char *)all[i - 1]->top - (char *)all[i - 1]->lo) % 4096;
            size_t here = (size_t)((char *)s->top - (char *)s->lo) % 4096;
            size_t gap = prev > here ? prev - here : here - prev;
            if (gap < 7 * LINE || 4096 - gap < 7 * LINE) spread = 0;
        }
        ((volatile char *)s->top)[-1] = 1;
        ((volatile char *)s->lo)[0] = 1;
        writable &= stack_check(s) == 0;
    }
    ok(in_page, "every top lies in the page above lo + size, on a line boundary");
    cmp_ok(offsets, >=, 48, "%d stacks' tops sit at %d different page offsets", COUNT, offsets);
    ok(spread, "consecutive stacks' tops are at least 7 lines apart in their pages");
    ok(writable, "a stack takes writes from lo up to its top");
    stack *s = all[0];
    for (int i = 0; i < COUNT; i++) stack_give(&cache, all[i]);
    stack_cache_flush(&cache); /* to the pool, through MADV_DONTNEED */
    cmp_ok(resident_pages((char *)s->lo + s->size, page_size), ==, 0,
           "the pool purges the colour page too");
    stack_cache_flush(&cache);
    stack_pool_free(pool);
}

static void test_lazy_write_purge(void)
{
    stack_pool *pool = stack_pool_new();
    stack_cache cache;
    stack_cache_init(&cache, pool);
    stack *s = stack_take(&cache, stack_default_size());
    size_t pages = s->size / page_size;
    cmp_ok(resident_pages(s->lo, s->size), ==, 0, "a fresh stack has no resident page");
    check_guard(s, "fresh");

    int all_written = 1;
    for (size_t i = 0; i < pages; i++) ((volatile char *)s->lo)[i * page_size] = (char)(i | 1);
    for (size_t i = 0; i < pages; i++)
        if (((volatile char *)s->lo)[i * page_size] != (char)(i | 1)) all_written = 0;
    ok(all_written, "every page of the stack takes a write");
    cmp_ok(resident_pages(s->lo, s->size), ==, pages, "and is then resident");

    stack_give(&cache, s);
    stack_cache_flush(&cache); /* to the pool, through MADV_DONTNEED */
    stack *again = stack_take(&cache, stack_default_size());
    ok(again == s, "the flushed stack comes back from the pool");
    cmp_ok(resident_pages(s->lo, s->size), ==, 0, "the pool purged its pages");
    ok(((volatile char *)s->lo)[page_size] == 0, "and they read back as zero");
    cmp_ok(stack_check(again), ==, 0, "stack_check passes on a retaken stack");
    check_guard(again, "after MADV_DONTNEED");
    stack_give(&cache, again);
    again = stack_take(&cache, stack_default_size());
    cmp_ok(stack_check(again), ==, 0, "take re-arms the floor");
    stack_give(&cache, again);
    stack_cache_flush(&cache);
    stack_pool_free(pool);
}

static void test_cache_limit(void)
{
    enum { COUNT = 64 };
    stack *all[COUNT];
    stack_pool *pool = stack_pool_new();
    stack_cache cache;
    stack_cache_init(&cache, pool);
    for (int i = 0; i < COUNT; i++) {
        all[i] = stack_take(&cache, stack_default_size());
        ((volatile char *)all[i]->lo)[all[i]->size - 1] = 1; /* touch the top page */
    }
    for (int i = 0; i < COUNT; i++) stack_give(&cache, all[i]);
    int warm = 0;
    for (int i = 0; i < COUNT; i++)
        warm += resident_pages((char *)all[i]->lo + all[i]->size - page_size, page_size) == 1;
    cmp_ok(warm, >, 0, "the cache keeps some warm stacks");
    cmp_ok(warm, <=, 32, "stacks beyond the cache's limit were purged (%d warm)", warm);
    int known = 1;
    for (int i = 0; i < COUNT; i++) {
        stack *s = stack_take(&cache, stack_default_size());
        int found = 0;
        for (int j = 0; j < COUNT; j++) found |= all[j] == s;
        known &= found;
    }
    ok(known, "taking %d again reuses the same stacks", COUNT);
    for (int i = 0; i < COUNT; i++) stack_give(&cache, all[i]);
    stack_cache_flush(&cache);
    stack_pool_free(pool);
}

static void test_pool_free_unmaps(void)
{
    stack_pool *pool = stack_pool_new();
    stack_cache cache;
    stack_cache_init(&cache, pool);
    stack *s = stack_take(&cache, 64 * KIB);
    void *lo = s->lo;
    ok(is_mapped(lo), "a stack is mapped");
    stack_give(&cache, s);
    stack_pool_free(pool); /* with the cache still holding it */
    ok(!is_mapped(lo), "stack_pool_free unmaps it");
}

enum { THREADS = 4, ROUNDS = 20000, HELD = 8 };
static stack_pool *shared_pool;

static void *churn_thread(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    stack_cache cache;
    stack *held[HELD] = {0};
    unsigned seed = (unsigned)id * 7919u + 1;
    int intact = 1;
    stack_cache_init(&cache, shared_pool);
    for (int round = 0; round < ROUNDS; round++) {
        int slot = (int)(rand_r(&seed) % HELD);
        stack *s = held[slot];
        if (s) {
            uintptr_t *top = (uintptr_t *)((char *)s->lo + s->size) - 1;
            intact &= *top == id && *(uintptr_t *)s->lo == id && stack_check(s) == 0;
            stack_give(&cache, s);
            held[slot] = NULL;
        } else {
            s = stack_take(&cache, rand_r(&seed) % 2 ? 16 * KIB : stack_default_size());
            if (!s) {
                intact = 0;
                break;
            }
            *((uintptr_t *)((char *)s->lo + s->size) - 1) = id;
            *(uintptr_t *)s->lo = id;
            held[slot] = s;
        }
    }
    for (int i = 0; i < HELD; i++)
        if (held[i]) stack_give(&cache, held[i]);
    stack_cache_flush(&cache);
    ok(intact, "thread %lu: no stack was handed out twice", (unsigned long)id);
    return NULL;
}

static void test_threads(void)
{
    pthread_t threads[THREADS];
    shared_pool = stack_pool_new();
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, churn_thread, (void *)(i + 1));
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    stack_pool_free(shared_pool);
}

static void *altstack_thread(void *arg)
{
    (void)arg;
    stack_t before, during, after;
    sigaltstack(NULL, &before);
    cmp_ok(stack_thread_init(), ==, 0, "stack_thread_init");
    cmp_ok(stack_thread_init(), ==, 0, "a second call is harmless");
    sigaltstack(NULL, &during);
    ok(!(during.ss_flags & SS_DISABLE) && during.ss_size >= 16 * KIB,
       "the thread has an alternate signal stack of %zu bytes", during.ss_size);
    stack_thread_exit();
    sigaltstack(NULL, &after);
    ok((after.ss_flags & SS_DISABLE) == (before.ss_flags & SS_DISABLE) &&
           ((after.ss_flags & SS_DISABLE) || after.ss_sp == before.ss_sp),
       "stack_thread_exit leaves the thread as it found it");
    return NULL;
}

static void test_altstack(void)
{
    pthread_t thread;
    pthread_create(&thread, NULL, altstack_thread, NULL);
    pthread_join(thread, NULL);
}

static void test_overflow(void)
{
    stack_pool *pool = stack_pool_new();
    stack_cache cache;
    stack_cache_init(&cache, pool);
    stack *s = stack_take(&cache, stack_default_size());
    struct death death;

    if (!faults) {
        run_child(canary_body, s, &death);
        expect_overflow_report(&death, s, OVERFLOW_LABEL, "canary broken, stack_overflow_abort");
    } else {
        struct fault_job job = {.s = s, .label = OVERFLOW_LABEL, .install = 1, .below = 1};
        run_child(fault_body, &job, &death);
        expect_overflow_report(&death, s, OVERFLOW_LABEL, "write just below lo");

        run_child(recursion_body, s, &death);
        expect_overflow_report(&death, s, OVERFLOW_LABEL, "unbounded recursion on the stack");

        run_child(recursion_on_thread_body, s, &death);
        expect_overflow_report(&death, s, OVERFLOW_LABEL, "the same on another thread");

        stack *small = stack_take(&cache, 16 * KIB);
        job = (struct fault_job){.s = small, .install = 1, .below = (int)page_size};
        run_child(fault_body, &job, &death);
        expect_overflow_report(&death, small, "(unnamed)", "no label, bottom of the guard");
        stack_give(&cache, small);

        job = (struct fault_job){.s = s, .install = 1, .previous = 1, .below = 1};
        run_child(fault_body, &job, &death);
        expect_overflow_report(&death, s, "(unnamed)", "a user handler installed earlier");
    }

    for (int kind = 0; kind < FAULT_KINDS; kind++) {
        struct other_fault fault = {.kind = kind};
        run_child(other_fault_body, &fault, &death);
        ok(crashed(&death) && !strstr(death.err, "weft:"),
           "%s, weft's handler only: the default action, no report", fault_names[kind]);
        fault.previous = 1;
        run_child(other_fault_body, &fault, &death);
        ok(killed_by(&death, SIGUSR2), "%s: passed on to the handler installed before weft's",
           fault_names[kind]);
    }

    stack_give(&cache, s);
    stack_cache_flush(&cache);
    stack_pool_free(pool);
}

static void test_many_stacks(void)
{
    size_t want = strcmp(mode, "madvise") == 0 ? 100000 : 20000, taken = 0;
    size_t kinds[4] = {0};
    stack **all = calloc(want, sizeof *all);
    stack_pool *pool = stack_pool_new();
    stack_cache cache;
    stack_cache_init(&cache, pool);
    int maps_before = maps_lines();
    for (; taken < want; taken++) {
        if (!(all[taken] = stack_take(&cache, stack_default_size()))) break;
        kinds[all[taken]->guard]++;
    }
    int maps_after = maps_lines();
    cmp_ok(taken, ==, want, "%zu default stacks held at once", want);
    note("guards: %zu madvise, %zu mprotect, %zu canary; /proc/self/maps: %d -> %d lines",
         kinds[STACK_GUARD_MADVISE], kinds[STACK_GUARD_MPROTECT], kinds[STACK_GUARD_CANARY],
         maps_before, maps_after);
    if (strcmp(mode, "madvise") == 0) {
        cmp_ok(kinds[STACK_GUARD_MADVISE], ==, taken, "every one has a madvise guard");
        cmp_ok(maps_after - maps_before, <, max_map_count() / 20, "and the mappings stay few");
    } else if (strcmp(mode, "mprotect") == 0) {
        ok(kinds[STACK_GUARD_MPROTECT] > 1000 && kinds[STACK_GUARD_CANARY] > 0,
           "mprotect guards while the VMA budget lasts, then canaries");
        cmp_ok(maps_after, <, max_map_count(), "below vm.max_map_count");
        is(stack_guard_kind(), "canary", "stack_guard_kind() says what new stacks get");
    } else {
        cmp_ok(kinds[STACK_GUARD_CANARY], ==, taken, "every one has a canary");
        cmp_ok(maps_after - maps_before, <, max_map_count() / 20, "and the mappings stay few");
    }
    int sound = 1;
    for (size_t i = 0; i < taken; i += 97) {
        ((volatile char *)all[i]->lo)[all[i]->size - 1] = 1;
        sound &= stack_check(all[i]) == 0;
    }
    ok(sound, "a sample of them take writes and pass stack_check");
    for (size_t i = 0; i < taken; i++) stack_give(&cache, all[i]);
    stack_cache_flush(&cache);
    stack_pool_free(pool);
    free(all);
    is(stack_guard_kind(), mode, "freeing the pool gives back the VMA budget");
}

static void run_suite(void)
{
    mode = expected_mode();
    faults = strcmp(mode, "canary") != 0;
    note("guard mode: %s", mode);
    test_guard_kind();
    test_classes();
    test_no_overlap();
    test_colour();
    test_lazy_write_purge();
    test_cache_limit();
    test_pool_free_unmaps();
    test_threads();
    test_altstack();
    test_overflow();
    test_many_stacks();
}

/* The suite in a child with WEFT_STACK_GUARD=forced. Both children are forked before the
 * parent reports anything, so each numbers its tests from 1. */
struct mode_child {
    const char *forced;
    pid_t pid;
    FILE *output;
};

static void mode_child_start(struct mode_child *child)
{
    int fds[2];
    if (pipe(fds)) BAIL_OUT("pipe: %s", strerror(errno));
    fflush(stdout);
    child->pid = fork();
    if (child->pid < 0) BAIL_OUT("fork: %s", strerror(errno));
    if (child->pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[1]);
        setenv("WEFT_STACK_GUARD", child->forced, 1);
        run_suite();
        exit(tap_done_testing());
    }
    close(fds[1]);
    child->output = fdopen(fds[0], "r");
}

/* Its TAP, indented as a subtest, then one test for the whole child. */
static void mode_child_finish(struct mode_child *child)
{
    char line[1024];
    int status;
    printf("# Subtest: WEFT_STACK_GUARD=%s\n", child->forced);
    while (fgets(line, sizeof line, child->output)) printf("    %s", line);
    fclose(child->output);
    fflush(stdout);
    while (waitpid(child->pid, &status, 0) < 0 && errno == EINTR) continue;
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "WEFT_STACK_GUARD=%s", child->forced);
}

int main(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    if (!getenv("WEFT_STACK_GUARD")) {
        struct mode_child children[] = {{.forced = "mprotect"}, {.forced = "canary"}};
        for (size_t i = 0; i < array_size(children); i++) mode_child_start(&children[i]);
        for (size_t i = 0; i < array_size(children); i++) mode_child_finish(&children[i]);
    }
    run_suite();
    done_testing();
}
