/*
 * test_sync_races: the synchronisation primitives under load, across workers and foreign
 * threads, with cancellations fired at random moments by other tasks and by a foreign
 * thread:
 *
 *   lock       a non-atomic counter guarded by the lock reaches the exact total; never two
 *              holders at once; waiters cancelled before or after their grant never lose
 *              or duplicate it (everything finishes; the lock is free at the end)
 *   semaphore  never more than k holders at once; permits all come back
 *   condition  producers / consumers with cancelled consumers: no notification is lost
 *              (every item is consumed without any further notify)
 *   barrier    parties cancelled while waiting or after the trip leave without breaking
 *              it; cycles keep completing until abort() releases the last one
 *
 * A cancelled acquire is retried, so the totals are exact whatever was cancelled. About
 * 10^6 acquire attempts in a normal build (WEFT_TEST_SCALE divides them; a bare run under
 * a sanitizer divides them by 4, as tools/test.sh would); a watchdog turns a lost wake-up
 * (a hang) into a failure.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "tap.h"
#include "testutil.h"
#include "weft.h"

static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "Bail out! watchdog: a wait never ended (lost wake-up?)\n";
    ssize_t n = write(1, msg, sizeof msg - 1);
    (void)n;
    _exit(1);
}

enum { TASKS = 64, THREADS = 2, PERMITS = 3 };

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SLOW_TOOL 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SLOW_TOOL 1
#endif
#endif

static long work(long n)
{
#ifdef SLOW_TOOL
    if (!getenv("WEFT_TEST_SCALE")) return n / 4;
#endif
    return scaled(n);
}

/* ---- cancellers: other tasks and a foreign thread, at random moments ---------------------- */

typedef struct cancellers {
    weft_future **targets;
    int n;
    atomic_long *progress; /* if set, at most one cancellation per two steps of it */
    atomic_int stop;
    atomic_long fired;
    weft_future *tasks[2];
    pthread_t thread;
} cancellers;

static int ahead(cancellers *c)
{
    return c->progress && atomic_load(&c->fired) * 2 > atomic_load(c->progress);
}

static void *cancel_from_task(void *p)
{
    cancellers *c = p;
    unsigned seed = (unsigned)weft_worker_id() * 7919u + 1u;
    while (!atomic_load(&c->stop)) {
        if (ahead(c)) {
            weft_sleep(1e-5);
            continue;
        }
        weft_cancel(c->targets[rand_r(&seed) % (unsigned)c->n]);
        atomic_fetch_add(&c->fired, 1);
        if (rand_r(&seed) % 8 == 0)
            weft_sleep(1e-5);
        else
            weft_yield();
    }
    return NULL;
}

static void *cancel_from_thread(void *p)
{
    cancellers *c = p;
    unsigned seed = 12345;
    while (!atomic_load(&c->stop)) {
        if (ahead(c)) {
            usleep(20);
            continue;
        }
        weft_cancel(c->targets[rand_r(&seed) % (unsigned)c->n]);
        atomic_fetch_add(&c->fired, 1);
        if (rand_r(&seed) % 4 == 0)
            usleep(20);
        else
            sched_yield();
    }
    return NULL;
}

static void cancellers_start(cancellers *c, weft_future **targets, int n, atomic_long *progress)
{
    c->targets = targets;
    c->n = n;
    c->progress = progress;
    atomic_store(&c->stop, 0);
    atomic_store(&c->fired, 0);
    for (int i = 0; i < 2; i++) c->tasks[i] = weft_spawn(cancel_from_task, c);
    pthread_create(&c->thread, NULL, cancel_from_thread, c);
}

static void cancellers_stop(cancellers *c)
{
    atomic_store(&c->stop, 1);
    for (int i = 0; i < 2; i++) {
        weft_await(c->tasks[i], NULL);
        weft_future_release(c->tasks[i]);
    }
    pthread_join(c->thread, NULL);
}

/* ---- lock and semaphore ------------------------------------------------------------------ */

typedef struct race {
    weft_lock *l;
    weft_sem *s;
    long iters;
    long counter; /* not atomic: the lock guards it */
    atomic_int inside, max_inside;
    atomic_long attempts, cancelled, errors, completed;
    atomic_int started; /* cancellers start once every task has: an unstarted task never would */
} race;

static void note_inside(race *r)
{
    int now = atomic_fetch_add(&r->inside, 1) + 1;
    int max = atomic_load(&r->max_inside);
    while (now > max && !atomic_compare_exchange_weak(&r->max_inside, &max, now)) {
    }
}

/* One holder's turn; `task` says whether it may suspend inside. */
static void hold(race *r, unsigned *seed, int task)
{
    note_inside(r);
    if (r->l) {
        long v = r->counter;
        if (rand_r(seed) % 8 == 0) {
            if (task)
                weft_yield();
            else
                sched_yield();
        }
        r->counter = v + 1;
    } else if (rand_r(seed) % 4 == 0) {
        if (task)
            weft_yield();
        else
            sched_yield();
    }
    atomic_fetch_sub(&r->inside, 1);
}

static int take(race *r)
{
    return r->l ? weft_lock_acquire(r->l) : weft_sem_acquire(r->s);
}

static int give(race *r)
{
    return r->l ? weft_lock_release(r->l) : weft_sem_release(r->s);
}

static void contend(race *r, unsigned seed, int task)
{
    long done = 0;
    while (done < r->iters) {
        atomic_fetch_add(&r->attempts, 1);
        int e = take(r);
        if (e == -ECANCELED) {
            atomic_fetch_add(&r->cancelled, 1);
            continue;
        }
        if (e) {
            atomic_fetch_add(&r->errors, 1);
            break;
        }
        hold(r, &seed, task);
        if (give(r)) atomic_fetch_add(&r->errors, 1);
        done++;
        if (task && rand_r(&seed) % 16 == 0) weft_yield();
    }
    atomic_fetch_add(&r->completed, done);
}

static void *contend_task(void *p)
{
    race *r = p;
    atomic_fetch_add(&r->started, 1);
    contend(r, (unsigned)(uintptr_t)weft_current(), 1);
    return NULL;
}

static void *contend_thread(void *p)
{
    contend(p, (unsigned)(uintptr_t)&p, 0);
    return NULL;
}

static void run_race(race *r, const char *what, int max_holders)
{
    weft_future *t[TASKS];
    pthread_t th[THREADS];
    for (int i = 0; i < TASKS; i++) t[i] = weft_spawn(contend_task, r);
    for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, contend_thread, r);
    while (atomic_load(&r->started) < TASKS) weft_sleep(0.0002);
    cancellers c;
    cancellers_start(&c, t, TASKS, &r->attempts);
    int ended = 0;
    for (int i = 0; i < TASKS; i++) {
        int e = weft_await(t[i], NULL);
        ended += e == 0 || e == -ECANCELED; /* cancelled as it returned: still finished */
    }
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    cancellers_stop(&c);
    for (int i = 0; i < TASKS; i++) weft_future_release(t[i]);

    long want = r->iters * (TASKS + THREADS);
    cmp_ok(ended, "==", TASKS, "%s: every task finished (no lost wake-up)", what);
    cmp_ok(atomic_load(&r->errors), "==", 0, "%s: no errors", what);
    cmp_ok(atomic_load(&r->completed), "==", want, "%s: every holder completed its turns", what);
    cmp_ok(atomic_load(&r->max_inside), "<=", max_holders, "%s: at most %d holder(s) at once", what,
           max_holders);
    cmp_ok(atomic_load(&r->cancelled), ">", 0, "%s: some waits were cancelled", what);
    note("%s: %ld attempts, %ld cancelled, %ld cancellations fired", what,
         atomic_load(&r->attempts), atomic_load(&r->cancelled), atomic_load(&c.fired));
}

static void *lock_race(void *arg)
{
    race *r = arg;
    r->l = weft_lock_new();
    run_race(r, "lock", 1);
    cmp_ok(r->counter, "==", r->iters * (TASKS + THREADS), "lock: the guarded counter is exact");
    ok(!weft_lock_locked(r->l), "lock: free at the end (no leaked grant)");
    weft_lock_free(r->l);
    return NULL;
}

static void *sem_race(void *arg)
{
    race *r = arg;
    r->s = weft_sem_new(PERMITS);
    run_race(r, "semaphore", PERMITS);
    int permits = 0;
    while (!weft_sem_locked(r->s) && weft_sem_acquire(r->s) == 0) permits++;
    cmp_ok(permits, "==", PERMITS, "semaphore: every permit came back (no leaked grant)");
    weft_sem_free(r->s);
    return NULL;
}

/* ---- condition: producers and cancelled consumers ----------------------------------------- */

typedef struct pc {
    weft_cond *c;
    long items, consumed, total; /* guarded by the condition's lock */
    atomic_long cancelled, errors, reacquire_errors, progress;
    atomic_int started;
} pc;

static void *consumer(void *p)
{
    pc *s = p;
    atomic_fetch_add(&s->started, 1);
    for (;;) {
        int e = weft_cond_acquire(s->c);
        if (e == -ECANCELED) {
            atomic_fetch_add(&s->cancelled, 1);
            continue;
        }
        while (s->items == 0 && s->consumed < s->total) {
            e = weft_cond_wait(s->c);
            if (e == -ECANCELED)
                atomic_fetch_add(&s->cancelled, 1);
            else if (e)
                atomic_fetch_add(&s->errors, 1);
        }
        int finished = s->consumed == s->total;
        if (!finished) {
            s->items--;
            s->consumed++;
            atomic_fetch_add(&s->progress, 1);
            if (s->consumed == s->total) weft_cond_notify_all(s->c);
        }
        if (weft_cond_release(s->c)) atomic_fetch_add(&s->reacquire_errors, 1);
        if (finished) return NULL;
    }
}

typedef struct producer_arg {
    pc *s;
    long n;
} producer_arg;

static void *producer(void *p)
{
    producer_arg *a = p;
    for (long i = 0; i < a->n;) {
        if (weft_cond_acquire(a->s->c)) continue; /* cancelled: retry */
        a->s->items++;
        weft_cond_notify(a->s->c, 1); /* exactly one notification per item */
        weft_cond_release(a->s->c);
        i++;
        if (i % 4 == 0) weft_yield();
    }
    return NULL;
}

static void *cond_race(void *arg)
{
    (void)arg;
    enum { CONSUMERS = 32, PRODUCERS = 4 };
    pc s = {.c = weft_cond_new(NULL)};
    producer_arg pa = {&s, work(20000)};
    s.total = pa.n * PRODUCERS;
    weft_future *cons[CONSUMERS], *prod[PRODUCERS];
    for (int i = 0; i < CONSUMERS; i++) cons[i] = weft_spawn(consumer, &s);
    while (atomic_load(&s.started) < CONSUMERS) weft_sleep(0.0002);
    cancellers c;
    cancellers_start(&c, cons, CONSUMERS, &s.progress);
    for (int i = 0; i < PRODUCERS; i++) prod[i] = weft_spawn(producer, &pa);
    for (int i = 0; i < PRODUCERS; i++) {
        weft_await(prod[i], NULL);
        weft_future_release(prod[i]);
    }
    cancellers_stop(&c);
    /* no notify from here on: the consumers must drain what is left on their own */
    int drained = 0;
    for (double until = weft_now() + 20; weft_now() < until;) {
        weft_cond_acquire(s.c);
        drained = s.consumed == s.total;
        weft_cond_release(s.c);
        if (drained) break;
        weft_sleep(0.001);
    }
    ok(drained, "condition: every item consumed without further notifies (no lost notification)");
    if (!drained) { /* unstick the consumers so the test ends */
        weft_cond_acquire(s.c);
        diag("items %ld consumed %ld of %ld", s.items, s.consumed, s.total);
        s.consumed = s.total;
        weft_cond_notify_all(s.c);
        weft_cond_release(s.c);
    }
    for (int i = 0; i < CONSUMERS; i++) {
        weft_await(cons[i], NULL);
        weft_future_release(cons[i]);
    }
    cmp_ok(s.items, "==", 0, "condition: nothing left over");
    cmp_ok(atomic_load(&s.errors), "==", 0, "condition: wait() returned only 0 or -ECANCELED");
    cmp_ok(atomic_load(&s.reacquire_errors), "==", 0,
           "condition: wait() always returned holding the lock");
    note("condition: %ld items, %ld cancellations delivered, %ld fired", s.total,
         atomic_load(&s.cancelled), atomic_load(&c.fired));
    weft_cond_free(s.c);
    return NULL;
}

/* ---- barrier: cancelled arrivals leave without breaking it --------------------------------- */

enum { PARTIES = 8 };

typedef struct br {
    weft_barrier *b;
    atomic_int stop, started;
    atomic_long passed, cancelled, errors;
} br;

static void *arrive(void *p)
{
    br *s = p;
    atomic_fetch_add(&s->started, 1);
    while (!atomic_load(&s->stop)) {
        int r = weft_barrier_wait(s->b);
        if (r >= 0 && r < PARTIES)
            atomic_fetch_add(&s->passed, 1);
        else if (r == -ECANCELED)
            atomic_fetch_add(&s->cancelled, 1);
        else if (r == -EPIPE)
            break; /* abort() at the end */
        else
            atomic_fetch_add(&s->errors, 1);
    }
    return NULL;
}

static void *barrier_race(void *arg)
{
    (void)arg;
    br s = {.b = weft_barrier_new(PARTIES)};
    weft_future *t[PARTIES];
    for (int i = 0; i < PARTIES; i++) t[i] = weft_spawn(arrive, &s);
    while (atomic_load(&s.started) < PARTIES) weft_sleep(0.0002);
    cancellers c;
    cancellers_start(&c, t, PARTIES, &s.passed);
    long want = work(100000);
    int broken = 0, overfull = 0;
    for (double until = weft_now() + 20; atomic_load(&s.passed) < want && weft_now() < until;) {
        broken |= weft_barrier_broken(s.b);
        overfull |= weft_barrier_n_waiting(s.b) >= PARTIES;
        weft_sleep(0.0005);
    }
    cancellers_stop(&c);
    atomic_store(&s.stop, 1);
    broken |= weft_barrier_broken(s.b);
    weft_barrier_abort(s.b); /* releases the parties of the cycle that cannot fill now */
    int ended = 0;
    for (int i = 0; i < PARTIES; i++) {
        int e = weft_await(t[i], NULL);
        ended += e == 0 || e == -ECANCELED;
        weft_future_release(t[i]);
    }
    cmp_ok(atomic_load(&s.passed), ">=", want, "barrier: cycles kept completing");
    ok(!broken && !overfull, "barrier: never broken by cancellations, never over-full");
    cmp_ok(atomic_load(&s.errors), "==", 0, "barrier: indices in range, no other errors");
    cmp_ok(ended, "==", PARTIES, "barrier: abort() released every party");
    note("barrier: %ld passed, %ld cancelled, %ld cancellations fired", atomic_load(&s.passed),
         atomic_load(&s.cancelled), atomic_load(&c.fired));
    weft_barrier_free(s.b);
    return NULL;
}

int main(void)
{
    signal(SIGALRM, watchdog);
    alarm(240);
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 4;
    long iters = work(1000000) / (2 * (TASKS + THREADS)); /* 10^6 turns, plus the retries */
    race lock = {.iters = iters}, sem = {.iters = iters};
    cmp_ok(weft_run(lock_race, &lock, &cfg, NULL), "==", 0, "lock race ran");
    cmp_ok(weft_run(sem_race, &sem, &cfg, NULL), "==", 0, "semaphore race ran");
    cmp_ok(weft_run(cond_race, NULL, &cfg, NULL), "==", 0, "condition race ran");
    cmp_ok(weft_run(barrier_race, NULL, &cfg, NULL), "==", 0, "barrier race ran");
    done_testing();
}
