/*
 * steal.c: victim order and steal-half (see steal.h).
 *
 * Stealing is a sequence of ordinary Chase-Lev steals; the first stolen task is run at
 * once and the rest are pushed onto the thief's own deque, where they can be stolen
 * again. Pinned tasks never enter a deque, so they are never stolen. Victims at the same
 * distance are visited from a random starting point, so thieves spread out.
 */
#define _GNU_SOURCE
#include "steal.h"

#include <errno.h>
#include <stdlib.h>

#include "alloc.h"
#include "clock.h"
#include "park.h"
#include "rt.h"
#include "topo.h"

static int by_distance(const void *a, const void *b, void *self)
{
    const worker *w = self;
    const worker *x = &w->rt->workers[*(const int *)a], *y = &w->rt->workers[*(const int *)b];
    unsigned dx = topo_distance(w->cpu, x->cpu), dy = topo_distance(w->cpu, y->cpu);
    if (dx != dy) return dx < dy ? -1 : 1;
    return x->id - y->id;
}

int steal_plan(weft_rt *rt)
{
    for (unsigned i = 0; i < rt->nworkers; i++) {
        worker *w = &rt->workers[i];
        w->victims = mem_alloc(sizeof(int) * (rt->nworkers ? rt->nworkers : 1));
        if (!w->victims) return -ENOMEM;
        unsigned n = 0;
        for (unsigned j = 0; j < rt->nworkers; j++)
            if (j != i) w->victims[n++] = (int)j;
        qsort_r(w->victims, n, sizeof(int), by_distance, w);
    }
    return 0;
}

static uint64_t next_random(worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static runnable *steal_half(worker *thief, worker *victim)
{
    int64_t size = deque_size(&victim->dq);
    if (size <= 0) return NULL;
    int64_t want = size - size / 2;
    runnable *first = NULL;
    int64_t got = 0;
    for (int retries = 0; got < want && retries < 4;) {
        void *x;
        int r = deque_steal(&victim->dq, &x);
        if (r == 0) break;
        if (r < 0) {
            retries++;
            continue;
        }
        got++;
        if (!first) first = x;
        else if (deque_push(&thief->dq, x) < 0) inject_push(&thief->rt->injectq, x);
    }
    if (got) {
        stat_add(&thief->stats.steals, (uint64_t)got);
        atomic_fetch_add_explicit(&victim->stats.stolen_from, (uint64_t)got,
                                  memory_order_relaxed);
    }
    return first;
}

runnable *steal_work(worker *w)
{
    weft_rt *rt = w->rt;
    unsigned n = rt->nworkers - 1;
    if (!n || (!w->searching && !idle_try_search(&rt->idle, w))) return NULL;
    /* groups of equal distance start at a random member */
    for (unsigned i = 0; i < n;) {
        unsigned group_end = i + 1;
        unsigned d = topo_distance(w->cpu, rt->workers[w->victims[i]].cpu);
        while (group_end < n && topo_distance(w->cpu, rt->workers[w->victims[group_end]].cpu) == d)
            group_end++;
        unsigned len = group_end - i, start = (unsigned)(next_random(w) % len);
        for (unsigned k = 0; k < len; k++) {
            runnable *t = steal_half(w, &rt->workers[w->victims[i + (start + k) % len]]);
            if (t) return t;
        }
        i = group_end;
    }
    return NULL;
}

void steal_timers(worker *w)
{
    weft_rt *rt = w->rt;
    uint64_t now = clock_ns();
    for (unsigned i = 0; i + 1 < rt->nworkers; i++) {
        worker *peer = &rt->workers[w->victims[i]];
        if (timer_next(&peer->timers) > now) continue;
        unsigned fired = timer_fire_due(&peer->timers, now);
        if (fired) stat_add(&w->stats.timers_fired, fired);
    }
}
