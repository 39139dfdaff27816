/*
 * test_semaphore: asyncio.Semaphore and BoundedSemaphore rules on weft_sem
 * (asyncio-semantics.md cases 23-31), on one worker and on several: permits reserved at
 * wake-up, FIFO with no barging (a granted waiter that has not resumed still counts for
 * locked()), cancellation before and after the grant (the permit is passed on), the bound.
 *
 * Handshakes, not timing: the scenarios run pinned to worker 0; a waiter is pinned to a
 * worker k, and settle(k) awaits a probe pinned behind it on k's FIFO, so the waiter has
 * run up to its suspension when settle returns. A waiter pinned to worker 0 cannot resume
 * while the scenario runs: that is CPython's window between wake-up and resumption.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "harness.h"
#include "tap.h"
#include "testutil.h"
#include "weft.h"

/* ---- helpers ----------------------------------------------------------------------------- */

/* Free permits of a semaphore nobody waits on: take them all, then give them back. */
static int free_permits(weft_sem *s)
{
    int n = 0;
    while (!weft_sem_locked(s) && weft_sem_acquire(s) == 0) n++;
    for (int i = 0; i < n; i++) weft_sem_release(s);
    return n;
}

/* ---- bodies ------------------------------------------------------------------------------ */

typedef struct sem_arg {
    weft_sem *s;
    int id;
    int locked_seen;
} sem_arg;

static void *acquire_keep(void *p) /* `await sem.acquire(); result.append(id)` */
{
    sem_arg *a = p;
    int r = weft_sem_acquire(a->s);
    if (!r) log_add(a->id);
    return (void *)(intptr_t)r;
}

/* ---- cases ------------------------------------------------------------------------------- */

/* 23 [SEM] test_initial_value_zero, test_semaphore_value, test_semaphore,
 * test_release_not_acquired, test_release_no_waiters. */
static void case_values(void)
{
    weft_sem *s = weft_sem_new(0);
    ok(s && weft_sem_locked(s), "23: Semaphore(0) is locked");
    weft_sem_free(s);
    errno = 0;
    ok(weft_sem_new(-1) == NULL && errno == EINVAL, "23: Semaphore(-1): NULL, errno EINVAL");
    errno = 0;
    ok(weft_bounded_sem_new(-1) == NULL && errno == EINVAL,
       "23: BoundedSemaphore(-1): NULL, errno EINVAL");

    s = weft_sem_new(1);
    ok(!weft_sem_locked(s), "23: Semaphore(1) is not locked");
    cmp_ok(weft_sem_acquire(s), "==", 0, "23: acquire");
    ok(weft_sem_locked(s), "23: locked after it");
    cmp_ok(weft_sem_release(s), "==", 0, "23: release");
    ok(!weft_sem_locked(s), "23: unlocked after it");
    cmp_ok(weft_sem_release(s), "==", 0, "23: a plain semaphore may be released above its value");
    cmp_ok(free_permits(s), "==", 2, "23: and then has two permits");
    weft_sem_free(s);

    s = weft_bounded_sem_new(1);
    cmp_ok(weft_sem_release(s), "==", -EINVAL, "23: BoundedSemaphore released too many times");
    cmp_ok(weft_sem_acquire(s), "==", 0, "23: bounded: acquire");
    cmp_ok(weft_sem_release(s), "==", 0, "23: bounded: release");
    cmp_ok(weft_sem_release(s), "==", -EINVAL, "23: bounded: one more: -EINVAL");
    cmp_ok(free_permits(s), "==", 1, "23: bounded: the value is unchanged");
    weft_sem_free(s);
    s = weft_bounded_sem_new(0);
    cmp_ok(weft_sem_release(s), "==", -EINVAL, "23: BoundedSemaphore(0) cannot be released");
    weft_sem_free(s);
    note("23: awaiting a semaphore is a type error in C (weft_await takes a weft_future *)");
}

/* 24 [ORD-loose] test_acquire: Semaphore(3); permits are reserved for woken waiters, so a
 * task that starts after two releases queues behind the two it released. */
static void case_acquire(void)
{
    weft_sem *s = weft_sem_new(3);
    log_reset();
    weft_sem_acquire(s);
    weft_sem_acquire(s);
    ok(!weft_sem_locked(s), "24: two acquires of three: not locked");
    sem_arg a[4] = {{s, 1, 0}, {s, 2, 0}, {s, 3, 0}, {s, 4, 0}};
    weft_future *t[4];
    for (int i = 0; i < 3; i++) t[i] = spawn_settled(acquire_keep, &a[i], i + 1);
    ok(weft_done(t[0]) && !weft_done(t[1]) && !weft_done(t[2]) && weft_sem_locked(s),
       "24: of three contenders one gets through, two queue");
    t[3] = spawn_on(acquire_keep, &a[3], 0); /* starts after the releases */
    weft_sem_release(s);
    weft_sem_release(s);
    ok(weft_sem_locked(s), "24: two releases: both permits are reserved, still locked");
    ok(eventually(weft_done(t[1]) && weft_done(t[2])), "24: the two queued tasks acquire");
    for (int k = 0; k < 4; k++) settle(k);
    ok(!weft_done(t[3]), "24: the later one is the waiter that remains");
    weft_sem_release(s);
    int all = 1;
    for (int i = 0; i < 4; i++) all &= outcome(t[i]) == 0;
    ok(all && log_count() == 4, "24: every acquire returned 0");
    for (int i = 0; i < 3; i++) weft_sem_release(s);
    cmp_ok(free_permits(s), "==", 3, "24: the value is back at 3 after six releases");
    weft_sem_free(s);
}

/* 25 [SEM] test_acquire_cancel: a cancelled queued acquire leaves no live waiter. */
static void case_acquire_cancel(void)
{
    weft_sem *s = weft_sem_new(1);
    log_reset();
    weft_sem_acquire(s);
    sem_arg a = {s, 1, 0};
    weft_future *t = spawn_settled(acquire_keep, &a, 1);
    weft_cancel(t);
    cmp_ok(outcome(t), "==", -ECANCELED, "25: a cancelled acquire returns -ECANCELED");
    weft_sem_release(s);
    ok(!weft_sem_locked(s) && log_count() == 0, "25: no waiter took the release");
    weft_sem_free(s);
}

/* 26 [SEM] test_acquire_cancel_before_awoken: four waiters, the first two cancelled, one
 * release: the third acquires, the fourth keeps waiting. */
static void case_cancel_before_awoken(void)
{
    weft_sem *s = weft_sem_new(0);
    log_reset();
    sem_arg a[4] = {{s, 1, 0}, {s, 2, 0}, {s, 3, 0}, {s, 4, 0}};
    weft_future *t[4];
    for (int i = 0; i < 4; i++) t[i] = spawn_settled(acquire_keep, &a[i], i + 1);
    weft_cancel(t[0]);
    weft_cancel(t[1]);
    weft_sem_release(s);
    ok(eventually(weft_done(t[2])), "26: the third acquires");
    for (int k = 0; k < 4; k++) settle(k);
    ok(!weft_done(t[3]) && log_is((int[]){3}, 1), "26: the fourth keeps waiting");
    intptr_t r0 = outcome(t[0]), r1 = outcome(t[1]);
    ok(r0 == -ECANCELED && r1 == -ECANCELED, "26: the first two are cancelled");
    weft_sem_release(s);
    intptr_t r3 = outcome(t[3]), r2 = outcome(t[2]);
    ok(r3 == 0 && r2 == 0, "26: the next release goes to the fourth");
    weft_sem_free(s);
}

/* 27 [SEM] test_acquire_hang: cancel the first of two waiters, release: the second
 * acquires and the semaphore is locked. */
static void case_acquire_hang(void)
{
    weft_sem *s = weft_sem_new(0);
    log_reset();
    sem_arg a1 = {s, 1, 0}, a2 = {s, 2, 0};
    weft_future *t1 = spawn_settled(acquire_keep, &a1, 1);
    weft_future *t2 = spawn_settled(acquire_keep, &a2, 2);
    weft_cancel(t1);
    weft_sem_release(s);
    cmp_ok(outcome(t2), "==", 0, "27: the second waiter acquires");
    cmp_ok(outcome(t1), "==", -ECANCELED, "27: the first is cancelled");
    ok(weft_sem_locked(s), "27: and the semaphore is locked");
    weft_sem_release(s);
    weft_sem_free(s);
}

/* 28 [SEM] test_acquire_no_hang: release (granting W), then cancel W before it resumes:
 * the permit comes back and a fresh acquire does not wait. */
static void case_acquire_no_hang(void)
{
    weft_sem *s = weft_sem_new(1);
    log_reset();
    weft_sem_acquire(s);
    sem_arg a = {s, 1, 0};
    weft_future *t = spawn_settled(acquire_keep, &a, 0);
    weft_sem_release(s); /* reserved for W, which cannot resume yet */
    weft_cancel(t);
    cmp_ok(outcome(t), "==", -ECANCELED, "28: W is cancelled after its grant");
    ok(!weft_sem_locked(s) && log_count() == 0, "28: the permit came back");
    cmp_ok(weft_sem_acquire(s), "==", 0, "28: a fresh acquire succeeds at once");
    weft_sem_release(s);
    weft_sem_free(s);
}

/* 29 [SEM] test_acquire_fifo_order: Semaphore(1), three tasks acquire, sleep, release,
 * twice: c1_1, c2_1, c3_1, c1_2, c2_2, c3_2. */
static void *twice(void *p)
{
    sem_arg *a = p;
    for (int round = 1; round <= 2; round++) {
        if (weft_sem_acquire(a->s)) return (void *)1;
        log_add(a->id * 10 + round);
        weft_sleep(0.001);
        weft_sem_release(a->s);
    }
    return NULL;
}

static void case_fifo_order(void)
{
    weft_sem *s = weft_sem_new(1);
    log_reset();
    weft_sem_acquire(s);
    sem_arg a[3] = {{s, 1, 0}, {s, 2, 0}, {s, 3, 0}};
    weft_future *t[3];
    for (int i = 0; i < 3; i++) t[i] = spawn_settled(twice, &a[i], i + 1);
    weft_sem_release(s);
    int all = 1;
    for (int i = 0; i < 3; i++) all &= outcome(t[i]) == 0;
    ok(all, "29: every acquire succeeded");
    ok(log_is((int[]){11, 21, 31, 12, 22, 32}, 6), "29: order c1_1 c2_1 c3_1 c1_2 c2_2 c3_2");
    cmp_ok(free_permits(s), "==", 1, "29: the value ends at 1");
    weft_sem_free(s);
}

/* 30 [SEM] test_acquire_fifo_order_2: a task that releases and at once re-acquires goes
 * behind the woken tasks: [1, 2, 3, 4]. Also test_acquire_fifo_order_3: cancel the head
 * waiter of Semaphore(0), release twice: [2, 3]. */
static void *release_reacquire(void *p)
{
    sem_arg *a = p;
    if (weft_sem_acquire(a->s)) return (void *)1;
    log_add(2);
    weft_sem_release(a->s);
    if (weft_sem_acquire(a->s)) return (void *)1;
    log_add(4);
    return NULL;
}

static void case_fifo_order_2_3(void)
{
    weft_sem *s = weft_sem_new(1);
    log_reset();
    sem_arg a1 = {s, 1, 0}, a2 = {s, 2, 0}, a3 = {s, 3, 0};
    weft_future *t1 = spawn_settled(acquire_keep, &a1, 1);
    weft_future *t2 = spawn_on(release_reacquire, &a2, 2); /* t2 and t3 share a worker, so */
    settle(2);                                             /* they resume in wake-up order */
    weft_future *t3 = spawn_settled(acquire_keep, &a3, 2);
    weft_sem_release(s);
    weft_sem_release(s);
    intptr_t r1 = outcome(t1), r2 = outcome(t2), r3 = outcome(t3);
    ok(r1 == 0 && r2 == 0 && r3 == 0, "30: every acquire succeeded");
    ok(log_is((int[]){1, 2, 3, 4}, 4), "30: the re-acquirer went behind: 1, 2, 3, 4");
    ok(weft_sem_locked(s), "30: value 0 at the end");
    weft_sem_free(s);

    s = weft_sem_new(0);
    log_reset();
    sem_arg b[3] = {{s, 1, 0}, {s, 2, 0}, {s, 3, 0}};
    weft_future *w[3];
    for (int i = 0; i < 3; i++) w[i] = spawn_settled(acquire_keep, &b[i], i ? 1 : 2);
    weft_cancel(w[0]);
    cmp_ok(outcome(w[0]), "==", -ECANCELED, "30: fifo_order_3: the head waiter is cancelled");
    weft_sem_release(s);
    weft_sem_release(s);
    r2 = outcome(w[1]);
    r3 = outcome(w[2]);
    ok(r2 == 0 && r3 == 0 && log_is((int[]){2, 3}, 2), "30: fifo_order_3: two releases: 2, 3");
    weft_sem_free(s);
}

/* 31 [ORD] test_acquire_fifo_order_4: c2 releases three times while c1 is queued;
 * locked() stays true (c1 was granted but has not resumed) though two permits are free;
 * c1's resumption wakes c2 and c3; all four finish and the value ends at 0. */
static weft_sem *fifo4_sem;

static void *fifo4_c4(void *p)
{
    (void)p;
    log_add(4);
    return NULL;
}

static void *fifo4_c1(void *p)
{
    (void)p;
    if (weft_sem_acquire(fifo4_sem)) return (void *)1;
    weft_future *c4 = spawn_on(fifo4_c4, NULL, 0);
    log_add(1);
    return c4;
}

static void *fifo4_c2(void *p)
{
    sem_arg *a = p;
    weft_sem_release(fifo4_sem);
    weft_sem_release(fifo4_sem);
    weft_sem_release(fifo4_sem);
    a->locked_seen = weft_sem_locked(fifo4_sem);
    if (weft_sem_acquire(fifo4_sem)) return (void *)1;
    log_add(2);
    return NULL;
}

static void *fifo4_c3(void *p)
{
    sem_arg *a = p;
    if (weft_sem_acquire(fifo4_sem)) return (void *)1;
    a->locked_seen = weft_sem_locked(fifo4_sem);
    log_add(3);
    return NULL;
}

static void case_fifo_order_4(void)
{
    fifo4_sem = weft_sem_new(0);
    log_reset();
    sem_arg a2 = {fifo4_sem, 2, 0}, a3 = {fifo4_sem, 3, 0};
    /* all on our worker, started in this order when we wait, as create_task would */
    weft_future *c1 = spawn_on(fifo4_c1, NULL, 0);
    weft_future *c2 = spawn_on(fifo4_c2, &a2, 0);
    weft_future *c3 = spawn_on(fifo4_c3, &a3, 0);
    void *c4 = NULL;
    int e1 = weft_await(c1, &c4);
    intptr_t r2 = outcome(c2), r3 = outcome(c3);
    ok(e1 == 0 && c4 && r2 == 0 && r3 == 0, "31: c1, c2 and c3 acquire");
    ok(c4 && outcome(c4) == 0, "31: c4, spawned by c1, runs");
    weft_future_release(c1);
    ok(a2.locked_seen == 1, "31: after three releases locked() is true: c1 has not resumed");
    ok(a3.locked_seen == 1, "31: c3 sees it locked after its acquire");
    ok(log_count() == 4 && logged(1) && logged(2) && logged(3) && logged(4),
       "31: all four finished");
    ok(weft_sem_locked(fifo4_sem), "31: the value ends at 0");
    weft_sem_free(fifo4_sem);
}

/* Foreign threads block on a semaphore and get permits in turn with tasks. */
typedef struct thread_arg {
    weft_sem *s;
    atomic_int acquired;
    int err;
} thread_arg;

static void *thread_acquire(void *p)
{
    thread_arg *a = p;
    a->err = weft_sem_acquire(a->s);
    atomic_store(&a->acquired, 1);
    return NULL;
}

static void case_foreign_threads(void)
{
    weft_sem *s = weft_sem_new(0);
    thread_arg a[2] = {{.s = s}, {.s = s}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, thread_acquire, &a[i]);
    weft_sleep(0.01);
    ok(!atomic_load(&a[0].acquired) && !atomic_load(&a[1].acquired),
       "threads: block on Semaphore(0)");
    weft_sem_release(s);
    weft_sem_release(s);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    ok(a[0].err == 0 && a[1].err == 0, "threads: each got one of two releases");
    ok(weft_sem_locked(s), "threads: none left");
    weft_sem_free(s);
}

/* Misuse: NULL handles; waiting on a worker outside a task; freeing with waiters. */
typedef struct cb_arg {
    weft_sem *zero, *one;
    int r_zero, r_one;
} cb_arg;

static void acquire_from_callback(void *p)
{
    cb_arg *a = p;
    a->r_zero = weft_sem_acquire(a->zero);
    a->r_one = weft_sem_acquire(a->one);
}

static void case_misuse(void)
{
    cmp_ok(weft_sem_acquire(NULL), "==", -EINVAL, "NULL: acquire -EINVAL");
    cmp_ok(weft_sem_release(NULL), "==", -EINVAL, "NULL: release -EINVAL");
    cmp_ok(weft_sem_locked(NULL), "==", 0, "NULL: locked 0");
    weft_sem_free(NULL);

    cb_arg a = {.zero = weft_sem_new(0), .one = weft_sem_new(1)};
    run_callback(acquire_from_callback, &a, "callback ran");
    cmp_ok(a.r_zero, "==", -EPERM, "callback: an acquire that would wait: -EPERM");
    cmp_ok(a.r_one, "==", 0, "callback: a free permit is taken without waiting");
    weft_sem_free(a.zero);
    weft_sem_free(a.one);

    weft_sem *s = weft_sem_new(0);
    log_reset();
    sem_arg w = {s, 1, 0};
    weft_future *t = spawn_settled(acquire_keep, &w, 1);
    diag("expect a message about a semaphore freed with a waiter:");
    weft_sem_free(s); /* refused: the semaphore stays usable */
    weft_sem_release(s);
    cmp_ok(outcome(t), "==", 0, "free with a waiter is refused; the waiter still acquires");
    weft_sem_free(s);
}

static void *scenarios(void *arg)
{
    (void)arg;
    case_values();
    case_acquire();
    case_acquire_cancel();
    case_cancel_before_awoken();
    case_acquire_hang();
    case_acquire_no_hang();
    case_fifo_order();
    case_fifo_order_2_3();
    case_fifo_order_4();
    case_foreign_threads();
    case_misuse();
    return NULL;
}

int main(void)
{
    run_scenarios("test_semaphore", scenarios, NULL);
    done_testing();
}
