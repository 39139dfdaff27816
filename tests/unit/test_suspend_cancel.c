/*
 * test_suspend_cancel: a cancellation that is a wait's only way out (an event never set, a
 * lock never released, a queue never filled, a future never completed) ends the wait
 * wherever it lands, and in particular between the task's last look at its cancellation
 * and its publication as IDLE, which the task's worker makes with a plain store after the
 * switch (worker.c, publish_idle; tests/model/waiter.pml).
 *
 * The future is a fresh one each time, released as soon as its await ends, and it ends
 * cancelled however the cancellation lands: through it (task.c, cancel_awaited), or in the
 * wait itself while the await begins, after which the await cancels it, as asyncio does.
 * A canceller that borrowed it must be done with it before the await ends
 * (tests/model/await_lend.pml): in ASan and valgrind builds, where each future is its own
 * allocation, one still using it would be caught.
 *
 * Two tasks on two workers wait round after round; for each round a canceller (a foreign
 * thread for one, a task on a third worker for the other) waits until the round's wait has
 * begun or is about to, spins a random 0-300 turns and cancels. A lost cancellation hangs
 * its round (the watchdog fails the test). The race runs twice: with the fences this
 * machine gives (membarrier, whose cost alone mostly keeps the canceller out of that
 * window), and with the fallback for kernels without it (the light side an exchange, the
 * heavy side a plain fence), where the canceller is fast enough to land inside it: without
 * publish_idle's second look at the cancellation, that run hangs.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "os/fence.h"
#include "tap.h"
#include "testutil.h"
#include "weft.h"

typedef struct lone {
    weft_event *never_set;
    weft_lock *never_released;
    weft_queue *never_filled;
    long rounds;
    atomic_long begun[2], ended[2]; /* per waiter: rounds whose wait began, and ended */
    atomic_long bad;
    weft_future *waiters[2];
} lone;

typedef struct lone_part {
    lone *l;
    int which;
} lone_part;

static void *waiter_task(void *p)
{
    lone_part *part = p;
    lone *l = part->l;
    for (long i = 0; i < l->rounds; i++) {
        atomic_store(&l->begun[part->which], i + 1);
        void *item;
        weft_future *never_done = i % 4 == 3 ? weft_future_new() : NULL;
        int r = i % 4 == 0   ? weft_event_wait(l->never_set)
                : i % 4 == 1 ? weft_lock_acquire(l->never_released)
                : i % 4 == 2 ? weft_queue_get(l->never_filled, &item)
                             : weft_await(never_done, NULL);
        if (r != -ECANCELED) atomic_fetch_add(&l->bad, 1);
        /* the cancellation of an await goes through its future */
        if (i % 4 == 3 && !weft_cancelled(never_done)) atomic_fetch_add(&l->bad, 1);
        weft_future_release(never_done);
        weft_uncancel();
        atomic_store(&l->ended[part->which], i + 1);
    }
    return NULL;
}

/* Cancel each round of waiter `which` once its wait has begun; `pause` lets others run. */
static void cancel_rounds(lone *l, int which, void (*pause)(void))
{
    unsigned seed = 1000u + (unsigned)which;
    for (long i = 0; i < l->rounds; i++) {
        while (atomic_load(&l->begun[which]) <= i) pause();
        for (volatile unsigned spin = (unsigned)rand_r(&seed) % 300; spin; spin--) {
        }
        weft_cancel(l->waiters[which]);
        while (atomic_load(&l->ended[which]) <= i) pause();
    }
}

static void yield_thread(void)
{
    sched_yield();
}

static void yield_task(void)
{
    weft_yield();
}

static void *canceller_thread(void *p)
{
    cancel_rounds(p, 0, yield_thread);
    return NULL;
}

static void *canceller_task(void *p)
{
    cancel_rounds(p, 1, yield_task);
    return NULL;
}

static void *race(void *arg)
{
    lone *l = arg;
    l->never_set = weft_event_new();
    l->never_released = weft_lock_new();
    l->never_filled = weft_queue_new(0);
    weft_lock_acquire(l->never_released);
    lone_part parts[2] = {{l, 0}, {l, 1}};
    for (int i = 0; i < 2; i++) l->waiters[i] = spawn_at(waiter_task, &parts[i], i + 1, 1);
    pthread_t th;
    pthread_create(&th, NULL, canceller_thread, l);
    weft_future *c = spawn_at(canceller_task, l, 3, 1);
    weft_await(c, NULL);
    pthread_join(th, NULL);
    for (int i = 0; i < 2; i++) {
        cmp_ok(weft_await(l->waiters[i], NULL), "==", 0, "waiter %d ran every round", i);
        cmp_ok(atomic_load(&l->ended[i]), "==", l->rounds, "and ended %ld waits", l->rounds);
        weft_future_release(l->waiters[i]);
    }
    cmp_ok(atomic_load(&l->bad), "==", 0, "every one of them by its cancellation");
    weft_future_release(c);
    weft_lock_release(l->never_released);
    weft_lock_free(l->never_released);
    weft_event_free(l->never_set);
    weft_queue_free(l->never_filled);
    return NULL;
}

static void run_race(const char *fences)
{
    weft_config cfg = config_with(4);
    lone l = {.rounds = scaled(60000)};
    note("fences: %s", fences);
    cmp_ok(weft_run(race, &l, &cfg, NULL), "==", 0, "the race ran (%s)", fences);
}

int main(void)
{
    watchdog_arm("test_suspend_cancel", 240);
    fence_init();
    run_race(fence_light_is_full ? "the fallback (no membarrier here)" : "membarrier");
    fence_light_is_full = 1; /* no runtime is running: the next one uses the fallback */
    run_race("the fallback, forced");
    done_testing();
}
