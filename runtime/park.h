/*
 * park: the idle set, which decides when a worker may look for work and which parked
 * worker to wake (Tokio's and Go's rules):
 *  - at most half of the workers search (steal) at once;
 *  - new work wakes exactly one parked worker, and only when nobody is searching;
 *  - the last searcher to find work wakes one more, so wake-ups ramp up one at a time.
 * `state` packs the number of searching workers (low 16 bits) and of unparked workers
 * (high 16 bits); it changes only under `mutex`, and is read without it after a seq_cst
 * fence by work producers. A parking worker registers in the set *before* its last look
 * at the queues, and a producer publishes its work *before* reading the set, so one of
 * the two always sees the other (no lost wake-up; the eventfd keeps an early wake).
 */
#ifndef WEFT_PARK_H
#define WEFT_PARK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct worker;
struct weft_rt;

typedef struct idle_set {
    pthread_mutex_t mutex;
    atomic_uint state;
    /* The earliest time a parked worker will wake by itself (0: none is parked), so a busy
     * worker can tell whether its own due timers would wait for it (idle_watch_timers). */
    _Atomic uint64_t wake_at;
    struct worker **sleepers; /* a stack: the most recently parked is woken first */
    unsigned nsleepers, nworkers;
} idle_set;

int idle_init(idle_set *s, unsigned nworkers);
void idle_destroy(idle_set *s);
int idle_try_search(idle_set *s, struct worker *w); /* 1: w is now searching */
void idle_found_work(struct weft_rt *rt, struct worker *w); /* w stops searching */
#define IDLE_SEARCHING(s) ((s)&0xffffu)
#define IDLE_UNPARKED(s) ((s) >> 16)

/* Work was published on the caller's own worker, which runs it anyway if nobody else
 * does: wake a sleeper only if nobody searches. Inline: usually one load. */
void idle_notify_slow(idle_set *s);

static inline void idle_notify(idle_set *s)
{
    unsigned st = atomic_load_explicit(&s->state, memory_order_relaxed);
    if (!IDLE_SEARCHING(st) && IDLE_UNPARKED(st) < s->nworkers) idle_notify_slow(s);
}

/* Work was published where no running worker will see it unless woken (the inject queue,
 * an inbox): a seq_cst fence first, paired with the parking worker's (see the top). */
void idle_notify_strict(idle_set *s);
void idle_wake_worker(struct weft_rt *rt, struct worker *target); /* work aimed at target */
/* Park protocol: enter (saying until when w will sleep), look at the queues once more,
 * then sleep and leave. */
void idle_enter(idle_set *s, struct worker *w, uint64_t deadline);
void idle_leave(idle_set *s, struct worker *w);
unsigned idle_sleepers(idle_set *s);
void idle_wake_all(struct weft_rt *rt);
/* w is about to be busy: if its earliest timer (`due`) comes before any parked worker wakes,
 * wake one, which then sleeps no longer than that timer and fires it if w cannot. */
void idle_wake_for_timer(idle_set *s, uint64_t due);

static inline void idle_watch_timers(idle_set *s, uint64_t due)
{
    if (due < atomic_load_explicit(&s->wake_at, memory_order_acquire)) idle_wake_for_timer(s, due);
}

#endif
