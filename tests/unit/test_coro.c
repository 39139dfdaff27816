/*
 * test_coro: the context switch on its own (runtime/coro.c + runtime/arch/<abi>.S).
 *
 * (a) a switch preserves every callee-saved register and the FP control state across a
 *     context that changes them all, and a new context starts with its creator's FP state;
 * (b) many ping-pong switches between two coroutines keep their values;
 * (c) a coroutine started on one thread resumes on a second and a third with its locals,
 *     registers and FP mode intact;
 * (d) stacks are reused after coro_exit_to and after a coroutine is abandoned.
 *
 * Stacks are mmap'd here (the stack module is not used) and registered with valgrind, so
 * the test runs clean under valgrind, ASan and TSan. probe_switch, written in assembly
 * below, loads known values into the callee-saved registers, calls coro_switch, and
 * stores what the registers hold when it returns.
 */
#define _GNU_SOURCE
#include "coro.h"

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"
#include "tap.h"

#ifdef WEFT_ASAN
#include <sanitizer/asan_interface.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_STACK_REGISTER(lo, hi) 0u
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

enum { STACK_SIZE = 256 * 1024 };

typedef struct test_stack {
    char *map; /* guard page, then the stack */
    size_t map_size;
    void *lo;
    size_t size;
    unsigned valgrind_id;
} test_stack;

static void stack_make(test_stack *s)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    s->map_size = STACK_SIZE + page;
    s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (s->map == MAP_FAILED || mprotect(s->map, page, PROT_NONE) != 0)
        BAIL_OUT("cannot map a stack: %s", strerror(errno));
    s->lo = s->map + page;
    s->size = STACK_SIZE;
    s->valgrind_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size);
}

static void stack_free(test_stack *s)
{
    VALGRIND_STACK_DEREGISTER(s->valgrind_id);
    munmap(s->map, s->map_size);
}

static pid_t current_tid(void)
{
    return (pid_t)syscall(SYS_gettid); /* not pthread_self(): that may be cached */
}

/* ---- architecture: probe_switch and the FP control state -------------------------------- */

/* Loads in[] into the callee-saved registers, switches, stores them to out[] on return. */
void probe_switch(const uint64_t *in, uint64_t *out, coro *from, coro *to);

#if defined(__x86_64__)
enum { NREGS = 6 }; /* rbx, rbp, r12, r13, r14, r15 */
static const char *const reg_names[NREGS] = {"rbx", "rbp", "r12", "r13", "r14", "r15"};

__asm__(".text\n"
        ".globl probe_switch\n"
        ".hidden probe_switch\n"
        ".type probe_switch, @function\n"
        "probe_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    pushq %rsi\n" /* out; rsp is now 16-byte aligned for the call */
        "    movq 0(%rdi), %rbx\n"
        "    movq 8(%rdi), %rbp\n"
        "    movq 16(%rdi), %r12\n"
        "    movq 24(%rdi), %r13\n"
        "    movq 32(%rdi), %r14\n"
        "    movq 40(%rdi), %r15\n"
        "    movq %rdx, %rdi\n"
        "    movq %rcx, %rsi\n"
        "    call coro_switch@PLT\n"
        "    popq %rax\n"
        "    movq %rbx, 0(%rax)\n"
        "    movq %rbp, 8(%rax)\n"
        "    movq %r12, 16(%rax)\n"
        "    movq %r13, 24(%rax)\n"
        "    movq %r14, 32(%rax)\n"
        "    movq %r15, 40(%rax)\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size probe_switch, . - probe_switch\n");

typedef struct fp_control {
    uint32_t mxcsr;
    uint16_t x87_cw;
} fp_control;

enum {
    MXCSR_CONTROL = 0xffc0, /* DAZ, exception masks, rounding, FTZ: not the sticky flags */
    X87_CW_CONTROL = 0x1f3f,
};

static fp_control fp_control_get(void)
{
    fp_control c;
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(c.mxcsr), "=m"(c.x87_cw)::"memory");
    return c;
}

static void fp_control_set(fp_control c)
{
    __asm__ volatile("ldmxcsr %0\n\tfldcw %1" ::"m"(c.mxcsr), "m"(c.x87_cw) : "memory");
}

static int fp_control_equal(fp_control a, fp_control b)
{
    return (a.mxcsr & MXCSR_CONTROL) == (b.mxcsr & MXCSR_CONTROL) &&
           (a.x87_cw & X87_CW_CONTROL) == (b.x87_cw & X87_CW_CONTROL);
}

/* Two modes unlike each other and the default. Valgrind emulates only the rounding
 * fields (it warns about FTZ, DAZ and x87 precision), so under it only those differ. */
static fp_control fp_mode_a(void)
{
    if (RUNNING_ON_VALGRIND) return (fp_control){0x7f80, 0x0f7f}; /* both round toward zero */
    return (fp_control){0x7f80, 0x0c7f}; /* toward zero; x87 single precision */
}

static fp_control fp_mode_b(void)
{
    if (RUNNING_ON_VALGRIND) return (fp_control){0x3f80, 0x0b7f}; /* SSE down, x87 up */
    return (fp_control){0xbfc0, 0x0a7f}; /* down + FTZ + DAZ; x87 up, double precision */
}

static const char *fp_describe(fp_control c, char *buf, size_t size)
{
    snprintf(buf, size, "MXCSR %#x, x87 CW %#x", c.mxcsr, c.x87_cw);
    return buf;
}

#elif defined(__aarch64__)
enum { NREGS = 18 }; /* x19-x28, then the bits of d8-d15 */
static const char *const reg_names[NREGS] = {"x19", "x20", "x21", "x22", "x23", "x24",
                                             "x25", "x26", "x27", "x28", "d8",  "d9",
                                             "d10", "d11", "d12", "d13", "d14", "d15"};

__asm__(".text\n"
        ".globl probe_switch\n"
        ".hidden probe_switch\n"
        ".type probe_switch, %function\n"
        "probe_switch:\n"
        "    stp x29, x30, [sp, #-176]!\n"
        "    mov x29, sp\n"
        "    stp x19, x20, [sp, #16]\n"
        "    stp x21, x22, [sp, #32]\n"
        "    stp x23, x24, [sp, #48]\n"
        "    stp x25, x26, [sp, #64]\n"
        "    stp x27, x28, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    str x1, [sp, #160]\n"
        "    ldp x19, x20, [x0, #0]\n"
        "    ldp x21, x22, [x0, #16]\n"
        "    ldp x23, x24, [x0, #32]\n"
        "    ldp x25, x26, [x0, #48]\n"
        "    ldp x27, x28, [x0, #64]\n"
        "    ldp d8, d9, [x0, #80]\n"
        "    ldp d10, d11, [x0, #96]\n"
        "    ldp d12, d13, [x0, #112]\n"
        "    ldp d14, d15, [x0, #128]\n"
        "    mov x0, x2\n"
        "    mov x1, x3\n"
        "    bl coro_switch\n"
        "    ldr x1, [sp, #160]\n"
        "    stp x19, x20, [x1, #0]\n"
        "    stp x21, x22, [x1, #16]\n"
        "    stp x23, x24, [x1, #32]\n"
        "    stp x25, x26, [x1, #48]\n"
        "    stp x27, x28, [x1, #64]\n"
        "    stp d8, d9, [x1, #80]\n"
        "    stp d10, d11, [x1, #96]\n"
        "    stp d12, d13, [x1, #112]\n"
        "    stp d14, d15, [x1, #128]\n"
        "    ldp x19, x20, [sp, #16]\n"
        "    ldp x21, x22, [sp, #32]\n"
        "    ldp x23, x24, [sp, #48]\n"
        "    ldp x25, x26, [sp, #64]\n"
        "    ldp x27, x28, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    ldp x29, x30, [sp], #176\n"
        "    ret\n"
        ".size probe_switch, . - probe_switch\n");

typedef struct fp_control {
    uint64_t fpcr;
} fp_control;

enum { FPCR_CONTROL = 0x07c00000 }; /* AHP, DN, FZ, RMode */

static fp_control fp_control_get(void)
{
    fp_control c;
    __asm__ volatile("mrs %0, fpcr" : "=r"(c.fpcr)::"memory");
    return c;
}

static void fp_control_set(fp_control c)
{
    __asm__ volatile("msr fpcr, %0" ::"r"(c.fpcr) : "memory");
}

static int fp_control_equal(fp_control a, fp_control b)
{
    return (a.fpcr & FPCR_CONTROL) == (b.fpcr & FPCR_CONTROL);
}

static fp_control fp_mode_a(void)
{
    return (fp_control){3u << 22}; /* round toward zero */
}

static fp_control fp_mode_b(void)
{
    return (fp_control){(2u << 22) | (1u << 24) | (1u << 25)}; /* toward -inf, FZ, DN */
}

static const char *fp_describe(fp_control c, char *buf, size_t size)
{
    snprintf(buf, size, "FPCR %#llx", (unsigned long long)c.fpcr);
    return buf;
}
#else
#error "test_coro: no probe for this architecture"
#endif

static void fill_regs(uint64_t *regs, uint64_t seed)
{
    for (int i = 0; i < NREGS; i++)
        regs[i] = seed * 0x9e3779b97f4a7c15ull + (uint64_t)i * 0x0101010101010101ull;
}

/* Number of registers that differ; names the first one. */
static int regs_differ(const uint64_t *want, const uint64_t *got, const char **first)
{
    int differ = 0;
    for (int i = 0; i < NREGS; i++) {
        if (want[i] != got[i] && differ++ == 0) *first = reg_names[i];
    }
    return differ;
}

/* ---- (a) callee-saved registers ---------------------------------------------------------- */

struct regs_test {
    coro main, a, b;
    uint64_t in_main[NREGS], out_main[NREGS];
    uint64_t in_a[NREGS], out_a_first[NREGS], out_a_second[NREGS];
    uint64_t in_b[NREGS], out_b[NREGS];
};

static void regs_entry_a(void *arg)
{
    struct regs_test *t = arg;
    probe_switch(t->in_a, t->out_a_first, &t->a, &t->b);  /* b switches back */
    probe_switch(t->in_a, t->out_a_second, &t->a, &t->b); /* b exits to us */
    coro_exit_to(&t->a, &t->main);
}

static void regs_entry_b(void *arg)
{
    struct regs_test *t = arg;
    probe_switch(t->in_b, t->out_b, &t->b, &t->a);
    coro_exit_to(&t->b, &t->a);
}

static void test_callee_saved(void)
{
    static struct regs_test t;
    test_stack sa, sb;
    stack_make(&sa);
    stack_make(&sb);
    fill_regs(t.in_main, 1);
    fill_regs(t.in_a, 2);
    fill_regs(t.in_b, 3);
    coro_init_thread(&t.main);
    cmp_ok(coro_init(&t.a, sa.lo, sa.size, regs_entry_a, &t), ==, 0, "coro_init a");
    cmp_ok(coro_init(&t.b, sb.lo, sb.size, regs_entry_b, &t), ==, 0, "coro_init b");
    probe_switch(t.in_main, t.out_main, &t.main, &t.a);

    const char *first = "";
    int differ = regs_differ(t.in_a, t.out_a_first, &first);
    ok(differ == 0, "a's callee-saved registers survive a switch to b, which sets all of them");
    if (differ) diag("%d differ, first %s", differ, first);
    differ = regs_differ(t.in_b, t.out_b, &first);
    ok(differ == 0, "b's callee-saved registers survive a switch to a, which sets all of them");
    if (differ) diag("%d differ, first %s", differ, first);
    differ = regs_differ(t.in_a, t.out_a_second, &first);
    ok(differ == 0, "a's registers survive being resumed by coro_exit_to");
    if (differ) diag("%d differ, first %s", differ, first);
    differ = regs_differ(t.in_main, t.out_main, &first);
    ok(differ == 0, "the thread's own registers survive its switch into coroutines");
    if (differ) diag("%d differ, first %s", differ, first);

    coro_destroy_thread(&t.main);
    stack_free(&sa);
    stack_free(&sb);
}

/* ---- (a) FP control state ---------------------------------------------------------------- */

struct fp_test {
    coro main, a, b;
    fp_control a_at_start, b_at_start, a_after_switch, b_after_switch, a_after_exit;
};

static void fp_entry_a(void *arg)
{
    struct fp_test *t = arg;
    t->a_at_start = fp_control_get();
    fp_control_set(fp_mode_a());
    coro_switch(&t->a, &t->b); /* b sets mode b and switches back */
    t->a_after_switch = fp_control_get();
    coro_switch(&t->a, &t->b); /* b exits to us */
    t->a_after_exit = fp_control_get();
    coro_exit_to(&t->a, &t->main);
}

static void fp_entry_b(void *arg)
{
    struct fp_test *t = arg;
    t->b_at_start = fp_control_get();
    fp_control_set(fp_mode_b());
    coro_switch(&t->b, &t->a);
    t->b_after_switch = fp_control_get();
    coro_exit_to(&t->b, &t->a);
}

static void check_fp(const char *what, fp_control got, fp_control want)
{
    char got_text[64], want_text[64];
    if (!ok(fp_control_equal(got, want), "%s", what)) {
        diag("got %s, want %s", fp_describe(got, got_text, sizeof got_text),
             fp_describe(want, want_text, sizeof want_text));
    }
}

static void test_fp_control(void)
{
    static struct fp_test t;
    test_stack sa, sb;
    stack_make(&sa);
    stack_make(&sb);
    fp_control thread_mode = fp_control_get();
    coro_init_thread(&t.main);

    /* a is created while this thread runs in mode b, then the thread goes back. */
    fp_control_set(fp_mode_b());
    int init_a = coro_init(&t.a, sa.lo, sa.size, fp_entry_a, &t);
    fp_control_set(thread_mode);
    int init_b = coro_init(&t.b, sb.lo, sb.size, fp_entry_b, &t);
    ok(init_a == 0 && init_b == 0, "coro_init a and b");
    coro_switch(&t.main, &t.a);
    fp_control after = fp_control_get();
    fp_control_set(thread_mode);

    check_fp("a new context starts with its creator's FP control state", t.a_at_start, fp_mode_b());
    check_fp("b, created in the thread's mode, starts in it", t.b_at_start, thread_mode);
    check_fp("a keeps its FP mode across a switch to b, which set another", t.a_after_switch,
             fp_mode_a());
    check_fp("b finds its own FP mode on its next resume", t.b_after_switch, fp_mode_b());
    check_fp("a keeps its FP mode when resumed by coro_exit_to", t.a_after_exit, fp_mode_a());
    check_fp("the thread keeps its own FP mode", after, thread_mode);

    coro_destroy_thread(&t.main);
    stack_free(&sa);
    stack_free(&sb);
}

/* ---- unwinding stops at a new context's first frame ---------------------------------------- */

struct unwind_test {
    coro main, c;
    const char *stack_lo, *stack_hi;
    int frames_in_stack, frames_outside, backtrace_depth;
};

static noinline void unwind_entry(void *arg)
{
    struct unwind_test *t = arg;
    for (void **fp = __builtin_frame_address(0); fp; fp = *fp) {
        if ((const char *)fp >= t->stack_lo && (const char *)fp < t->stack_hi) {
            t->frames_in_stack++;
        } else {
            t->frames_outside++;
            break;
        }
    }
    void *addresses[64];
    t->backtrace_depth = backtrace(addresses, 64);
    coro_exit_to(&t->c, &t->main);
}

static void test_unwind_stops(void)
{
    static struct unwind_test t;
    test_stack s;
    stack_make(&s);
    t.stack_lo = s.lo;
    t.stack_hi = (const char *)s.lo + s.size;
    coro_init_thread(&t.main);
    coro_init(&t.c, s.lo, s.size, unwind_entry, &t);
    coro_switch(&t.main, &t.c);
    ok(t.frames_in_stack >= 1 && t.frames_outside == 0,
       "the frame-pointer chain ends inside the coroutine's stack (%d frames)", t.frames_in_stack);
    ok(t.backtrace_depth >= 1 && t.backtrace_depth < 16,
       "backtrace() (CFI) stops at the coroutine's first frame (%d frames)", t.backtrace_depth);
    coro_destroy_thread(&t.main);
    stack_free(&s);
}

/* ---- (b) ping-pong ------------------------------------------------------------------------ */

enum { PINGPONG_ROUNDS = 100000 };

struct pingpong {
    coro main, a, b;
    uint64_t ball;
    long a_errors, b_errors, a_rounds, b_rounds;
    uint64_t a_sum, b_sum;
};

static void pingpong_a(void *arg)
{
    struct pingpong *p = arg;
    uint64_t sum = 0;
    long i;
    for (i = 0; i < PINGPONG_ROUNDS; i++) {
        p->ball = 2 * (uint64_t)i;
        coro_switch(&p->a, &p->b);
        if (p->ball != 2 * (uint64_t)i + 1) p->a_errors++;
        sum += p->ball;
    }
    coro_switch(&p->a, &p->b); /* b leaves its loop and exits to us */
    p->a_rounds = i;
    p->a_sum = sum;
    coro_exit_to(&p->a, &p->main);
}

static void pingpong_b(void *arg)
{
    struct pingpong *p = arg;
    uint64_t sum = 0;
    long i;
    for (i = 0; i < PINGPONG_ROUNDS; i++) {
        if (p->ball != 2 * (uint64_t)i) p->b_errors++;
        sum += p->ball;
        p->ball++;
        coro_switch(&p->b, &p->a);
    }
    p->b_rounds = i;
    p->b_sum = sum;
    coro_exit_to(&p->b, &p->a);
}

static void test_pingpong(void)
{
    static struct pingpong p;
    test_stack sa, sb;
    stack_make(&sa);
    stack_make(&sb);
    coro_init_thread(&p.main);
    coro_init(&p.a, sa.lo, sa.size, pingpong_a, &p);
    coro_init(&p.b, sb.lo, sb.size, pingpong_b, &p);
    coro_switch(&p.main, &p.a);

    uint64_t n = PINGPONG_ROUNDS;
    ok(p.a_errors == 0 && p.b_errors == 0, "%d ping-pong rounds: every value as sent (%ld, %ld)",
       PINGPONG_ROUNDS, p.a_errors, p.b_errors);
    ok(p.a_rounds == PINGPONG_ROUNDS && p.b_rounds == PINGPONG_ROUNDS,
       "both loop counters (locals) reach %d", PINGPONG_ROUNDS);
    ok(p.a_sum == n * n && p.b_sum == n * (n - 1), "both running sums (locals) are right");
    coro_destroy_thread(&p.main);
    stack_free(&sa);
    stack_free(&sb);
}

/* ---- (c) migration across threads -------------------------------------------------------- */

enum { HOPS = 3, MIGRATION_LOCALS = 64 };

struct migration {
    coro self;
    coro *home;        /* the thread coro of whoever resumes us next */
    pid_t resumer_tid; /* and its thread */
    pid_t seen_tid[HOPS];
    int regs_ok[HOPS], fp_ok[HOPS], locals_ok[HOPS];
    int home_fp_ok[HOPS];
    uint64_t in[NREGS], out[NREGS];
};

static void migration_entry(void *arg)
{
    struct migration *m = arg;
    volatile uint64_t locals[MIGRATION_LOCALS];
    for (int i = 0; i < MIGRATION_LOCALS; i++) locals[i] = (uint64_t)i * 0x5851f42d4c957f2dull;
    fill_regs(m->in, 42);
    fp_control_set(fp_mode_a());
    for (int hop = 0; hop < HOPS; hop++) {
        if (hop > 0) {
            const char *first;
            m->regs_ok[hop] = regs_differ(m->in, m->out, &first) == 0;
        } else {
            m->regs_ok[hop] = 1;
        }
        m->seen_tid[hop] = current_tid();
        m->fp_ok[hop] = fp_control_equal(fp_control_get(), fp_mode_a());
        int intact = 1;
        for (int i = 0; i < MIGRATION_LOCALS; i++)
            intact &= locals[i] == (uint64_t)i * 0x5851f42d4c957f2dull;
        m->locals_ok[hop] = intact;
        if (hop + 1 < HOPS) probe_switch(m->in, m->out, &m->self, m->home);
    }
    coro_exit_to(&m->self, m->home);
}

static void *resume_on_this_thread(void *arg)
{
    struct migration *m = arg;
    coro home;
    coro_init_thread(&home);
    fp_control thread_mode = fp_control_get();
    m->home = &home;
    m->resumer_tid = current_tid();
    coro_switch(&home, &m->self);
    for (int hop = 0; hop < HOPS; hop++) {
        if (m->seen_tid[hop] == m->resumer_tid)
            m->home_fp_ok[hop] = fp_control_equal(fp_control_get(), thread_mode);
    }
    coro_destroy_thread(&home);
    return NULL;
}

static void test_migration(void)
{
    static struct migration m;
    test_stack s;
    stack_make(&s);
    coro_init(&m.self, s.lo, s.size, migration_entry, &m);
    pid_t tids[HOPS];
    for (int hop = 0; hop < HOPS; hop++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, resume_on_this_thread, &m) != 0)
            BAIL_OUT("pthread_create failed");
        pthread_join(thread, NULL);
        tids[hop] = m.resumer_tid;
    }
    for (int hop = 0; hop < HOPS; hop++) {
        ok(m.seen_tid[hop] == tids[hop], "hop %d: the coroutine runs on thread %d", hop + 1,
           (int)tids[hop]);
        ok(m.regs_ok[hop] && m.locals_ok[hop] && m.fp_ok[hop],
           "hop %d: callee-saved registers, locals and FP mode survive", hop + 1);
        ok(m.home_fp_ok[hop], "hop %d: the thread gets its own FP mode back", hop + 1);
    }
    ok(tids[0] != tids[1] && tids[1] != tids[2] && tids[0] != tids[2],
       "three different threads took part");
    stack_free(&s);
}

/* ---- (d) stack reuse ----------------------------------------------------------------------- */

enum { REUSE_ROUNDS = 200, REUSE_DEPTH = 16, BIG_LOCAL = 32 * 1024 };

struct reuse {
    coro main, x, y, z;
    int bottoms_reached;
    long y_ok;
    uint64_t checksum;
};

/* Recurse with an escaping local per frame (ASan gives each redzones), then run at_bottom. */
static noinline void recurse_then(struct reuse *r, int depth, void (*at_bottom)(struct reuse *))
{
    volatile unsigned char frame[96];
    memset((void *)frame, depth, sizeof frame);
    if (depth == 0)
        at_bottom(r);
    else
        recurse_then(r, depth - 1, at_bottom);
    r->checksum += frame[depth % sizeof frame];
}

static void x_bottom(struct reuse *r)
{
    r->bottoms_reached++;
    coro_exit_to(&r->x, &r->y); /* y has never run: it starts here */
}

static void z_bottom(struct reuse *r)
{
    r->bottoms_reached++;
    coro_switch(&r->z, &r->main); /* never resumed: z is abandoned with its frames */
}

static void x_entry(void *arg)
{
    recurse_then(arg, REUSE_DEPTH, x_bottom);
}

static void z_entry(void *arg)
{
    recurse_then(arg, REUSE_DEPTH, z_bottom);
}

static void y_entry(void *arg)
{
    struct reuse *r = arg;
    volatile unsigned char big[BIG_LOCAL];
    for (int i = 0; i < BIG_LOCAL; i++) big[i] = (unsigned char)i;
    unsigned sum = 0;
    for (int i = 0; i < BIG_LOCAL; i++) sum += big[i];
    r->y_ok += sum == (BIG_LOCAL / 256) * (255 * 256 / 2);
    coro_exit_to(&r->y, &r->main);
}

static void test_stack_reuse(void)
{
    static struct reuse r;
    test_stack stacks[2];
    stack_make(&stacks[0]);
    stack_make(&stacks[1]);
    coro_init_thread(&r.main);
    int init_failures = 0, poisoned_after_init = 0;
    for (int round = 0; round < REUSE_ROUNDS; round++) {
        test_stack *here = &stacks[round % 2], *there = &stacks[(round + 1) % 2];
        init_failures += coro_init(&r.z, here->lo, here->size, z_entry, &r) != 0;
        coro_switch(&r.main, &r.z);
        coro_destroy(&r.z);
        /* y takes over z's abandoned stack; x the one y used last round. */
        init_failures += coro_init(&r.y, here->lo, here->size, y_entry, &r) != 0;
        init_failures += coro_init(&r.x, there->lo, there->size, x_entry, &r) != 0;
#ifdef WEFT_ASAN
        poisoned_after_init += __asan_region_is_poisoned(here->lo, here->size) != NULL;
#endif
        coro_switch(&r.main, &r.x);
    }
    ok(init_failures == 0, "coro_init succeeds on reused stacks");
    cmp_ok(r.bottoms_reached, ==, 2 * REUSE_ROUNDS, "every coroutine reached its deepest frame");
    cmp_ok(r.y_ok, ==, REUSE_ROUNDS,
           "a coroutine on a reused stack, started by coro_exit_to, computes right");
    ok(poisoned_after_init == 0, "coro_init leaves no ASan poison on a reused stack");
    ok(r.z.tsan_fiber == NULL && r.x.tsan_fiber == NULL && r.y.tsan_fiber == NULL,
       "no TSan fiber outlives its coro");
    coro_destroy_thread(&r.main);
    stack_free(&stacks[0]);
    stack_free(&stacks[1]);
}

/* ---- coro_init's contract ------------------------------------------------------------------ */

static void never_runs(void *arg)
{
    (void)arg;
}

static void test_init_contract(void)
{
    static _Alignas(16) unsigned char tiny[64];
    coro c;
    cmp_ok(coro_init(&c, tiny, sizeof tiny, never_runs, NULL), ==, -ENOMEM,
           "coro_init refuses a stack too small for the first frame");
    cmp_ok(coro_init(&c, NULL, STACK_SIZE, never_runs, NULL), ==, -ENOMEM,
           "coro_init refuses a NULL stack");
    test_stack s;
    stack_make(&s);
    cmp_ok(coro_init(&c, s.lo, s.size, never_runs, NULL), ==, 0, "coro_init on a real stack");
    coro_destroy(&c);
    coro_destroy(&c);
    ok(c.tsan_fiber == NULL, "coro_destroy of a never-started coro, twice");
    stack_free(&s);
}

int main(void)
{
    plan(NO_PLAN);
    test_callee_saved();
    test_fp_control();
    test_unwind_stops();
    test_pingpong();
    test_migration();
    test_stack_reuse();
    test_init_contract();
    done_testing();
}
