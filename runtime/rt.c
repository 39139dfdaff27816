/*
 * rt.c: a runtime's life: configuration, start (workers pinned by the topology), the
 * asyncio.run entry point, shutdown (cancel everything, wait until quiet, stop the
 * workers) and the runtime-wide queries and statistics.
 *
 * Lifetime: running -> closing (tasks are cancelled; new tasks are cancelled before
 * they start) -> stopping (workers exit once idle) -> freed. `closing` and `stopping`
 * are set once, with seq_cst, by the thread that shuts the runtime down.
 */
#define _GNU_SOURCE
#include "rt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "os/fence.h"
#include "steal.h"
#include "topo.h"

#define MAX_WORKERS 4096

static unsigned long env_ulong(const char *name, unsigned long fallback)
{
    const char *s = getenv(name);
    if (!s || !*s) return fallback;
    char *end;
    unsigned long v = strtoul(s, &end, 0);
    if (*end == 'k' || *end == 'K') v <<= 10;
    else if (*end == 'm' || *end == 'M') v <<= 20;
    return v;
}

void weft_config_default(weft_config *cfg)
{
    if (!cfg) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->workers = (unsigned)env_ulong("WEFT_WORKERS", 0);
    cfg->stack_size = env_ulong("WEFT_STACK_SIZE", 0);
    cfg->pin_workers = (int)env_ulong("WEFT_PIN", 1);
    cfg->blocking_threads = (unsigned)env_ulong("WEFT_BLOCKING_THREADS", 0);
    const char *slow = getenv("WEFT_SLOW_TASK");
    cfg->slow_task_warning = slow ? strtod(slow, NULL) : 0;
    cfg->trace_path = getenv("WEFT_TRACE");
}

static void rt_destroy(weft_rt *rt)
{
    if (rt->workers) {
        for (unsigned i = 0; i < rt->nworkers; i++) worker_destroy(&rt->workers[i]);
        mem_free_aligned(rt->workers, sizeof(worker) * rt->nworkers, CACHE_LINE);
    }
    runnable *r;
    while ((r = inject_pop(&rt->injectq))) /* callbacks posted after the workers stopped */
        if (runnable_kind(r) >= RUNNABLE_CALLBACK) mem_free(r, sizeof(callback_item));
    inject_destroy(&rt->injectq);
    idle_destroy(&rt->idle);
    registry_destroy(&rt->reg);
    if (rt->stacks) stack_pool_free(rt->stacks);
    pthread_mutex_destroy(&rt->quiet_mutex);
    pthread_cond_destroy(&rt->quiet_cond);
    mem_free_aligned(rt, sizeof *rt, CACHE_LINE);
}

weft_rt *weft_rt_new(const weft_config *cfg)
{
    weft_config defaults;
    if (!cfg) {
        weft_config_default(&defaults);
        cfg = &defaults;
    }
    fence_init(); /* before any task can wait (see os/fence.h) */
    unsigned n = cfg->workers ? cfg->workers : (unsigned)env_ulong("WEFT_WORKERS", 0);
    if (!n) n = topo_pus();
    if (n > MAX_WORKERS) {
        errno = EINVAL;
        return NULL;
    }
    weft_rt *rt = mem_aligned(sizeof *rt, CACHE_LINE);
    if (!rt) goto nomem;
    memset(rt, 0, sizeof *rt);
    rt->cfg = *cfg;
    rt->nworkers = n;
    size_t stack = cfg->stack_size ? cfg->stack_size : env_ulong("WEFT_STACK_SIZE", 0);
    rt->stack_size = stack ? stack : stack_default_size();
    inject_init(&rt->injectq);
    pthread_mutex_init(&rt->quiet_mutex, NULL);
    pthread_cond_init(&rt->quiet_cond, NULL);
    atomic_init(&rt->closing, 0);
    atomic_init(&rt->stopping, 0);
    atomic_init(&rt->threads_started, 0);
    if (idle_init(&rt->idle, n) || registry_init(&rt->reg, n)) goto nomem_rt;
    if (!(rt->stacks = stack_pool_new())) goto nomem_rt;
    rt->workers = mem_aligned(sizeof(worker) * n, CACHE_LINE);
    if (!rt->workers) goto nomem_rt;
    int pin = cfg->pin_workers && topo_can_pin() && n <= topo_pus();
    for (unsigned i = 0; i < n; i++) {
        int r = worker_init(&rt->workers[i], rt, (int)i);
        rt->workers[i].cpu = i % topo_pus();
        rt->workers[i].pinned_cpu = pin ? (int)i : -1;
        if (r) {
            rt->nworkers = i + 1;
            errno = -r;
            rt_destroy(rt);
            return NULL;
        }
    }
    if (steal_plan(rt)) goto nomem_rt;
    stack_overflow_handler_install();
    for (unsigned i = 0; i < n; i++) {
        int r = pthread_create(&rt->workers[i].thread, NULL, worker_main, &rt->workers[i]);
        if (r) {
            diag_log("cannot start worker %u: %s", i, strerror(r));
            atomic_store(&rt->stopping, 1);
            idle_wake_all(rt);
            for (unsigned j = 0; j < i; j++) pthread_join(rt->workers[j].thread, NULL);
            rt_destroy(rt);
            errno = EAGAIN;
            return NULL;
        }
    }
    return rt;
nomem_rt:
    rt_destroy(rt);
nomem:
    errno = ENOMEM;
    return NULL;
}

void rt_note_quiet(weft_rt *rt)
{
    pthread_mutex_lock(&rt->quiet_mutex);
    pthread_cond_broadcast(&rt->quiet_cond);
    pthread_mutex_unlock(&rt->quiet_mutex);
}

static int rt_is_quiet(weft_rt *rt)
{
    if (registry_count(&rt->reg) || inject_len(&rt->injectq) ||
        idle_sleepers(&rt->idle) != rt->nworkers)
        return 0;
    for (unsigned i = 0; i < rt->nworkers; i++)
        if (deque_size(&rt->workers[i].dq) > 0 || inject_len(&rt->workers[i].inbox)) return 0;
    return 1;
}

int weft_rt_shutdown(weft_rt *rt, double timeout)
{
    if (!rt) return -EINVAL;
    worker *self = worker_current();
    if (self && self->rt == rt) return -EPERM; /* a runtime cannot wait for itself */
    if (rt->shut_down) return 0;
    int result = 0;
    atomic_store(&rt->closing, 1);
    registry_cancel_all(&rt->reg);
    idle_wake_all(rt);
    uint64_t deadline = clock_deadline(timeout);
    pthread_mutex_lock(&rt->quiet_mutex);
    while (!rt_is_quiet(rt)) {
        uint64_t now = clock_ns();
        if (now >= deadline) {
            result = -ETIMEDOUT;
            break;
        }
        uint64_t wait = deadline - now < 10000000u ? deadline - now : 10000000u;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)wait;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&rt->quiet_cond, &rt->quiet_mutex, &ts);
    }
    pthread_mutex_unlock(&rt->quiet_mutex);
    if (result) {
        diag_log("shutdown timed out with %zu task(s) still waiting; abandoning them",
                 registry_count(&rt->reg));
        registry_abandon_all(&rt->reg);
    }
    atomic_store(&rt->stopping, 1);
    idle_wake_all(rt);
    for (unsigned i = 0; i < rt->nworkers; i++) pthread_join(rt->workers[i].thread, NULL);
    rt->shut_down = 1;
    rt->abandoned = result != 0;
    return result;
}

void weft_rt_free(weft_rt *rt)
{
    if (!rt) return;
    worker *self = worker_current();
    if (self && self->rt == rt) {
        diag_log("weft_rt_free called from inside the runtime it frees; ignored");
        return;
    }
    if (!rt->shut_down) weft_rt_shutdown(rt, -1);
    if (rt->abandoned) { /* their stacks may still be in wait lists: keep the memory */
        diag_log("runtime freed with abandoned tasks; their memory is not reclaimed");
        return;
    }
    rt_destroy(rt);
}

int weft_run(weft_fn main, void *arg, const weft_config *cfg, void **result)
{
    if (!main) return -EINVAL;
    weft_rt *rt = weft_rt_new(cfg);
    if (!rt) return -errno;
    weft_future *f = weft_rt_submit(rt, main, arg);
    if (!f) {
        int err = -errno;
        weft_rt_free(rt);
        return err;
    }
    int err = future_wait(f, UINT64_MAX, 0);
    if (!err) {
        err = f->error;
        if (result) *result = f->result;
    }
    weft_future_release(f);
    weft_rt_shutdown(rt, -1);
    weft_rt_free(rt);
    return err;
}

weft_rt *weft_rt_current(void)
{
    worker *w = worker_current();
    return w ? w->rt : NULL;
}

unsigned weft_workers(void)
{
    worker *w = worker_current();
    return w ? w->rt->nworkers : 0;
}

int weft_worker_id(void)
{
    worker *w = worker_current();
    return w ? w->id : -1;
}

double weft_now(void)
{
    return (double)clock_ns() / 1e9;
}

int weft_stats(weft_rt *rt, weft_worker_stats *out, unsigned max_workers)
{
    if (!rt || (!out && max_workers)) return -EINVAL;
    unsigned n = rt->nworkers < max_workers ? rt->nworkers : max_workers;
    for (unsigned i = 0; i < n; i++) {
        worker_stats *s = &rt->workers[i].stats;
        out[i].tasks_run = atomic_load_explicit(&s->tasks_run, memory_order_relaxed);
        out[i].steals = atomic_load_explicit(&s->steals, memory_order_relaxed);
        out[i].stolen_from = atomic_load_explicit(&s->stolen_from, memory_order_relaxed);
        out[i].parks = atomic_load_explicit(&s->parks, memory_order_relaxed);
        out[i].io_polls = atomic_load_explicit(&s->io_polls, memory_order_relaxed);
        out[i].timers_fired = atomic_load_explicit(&s->timers_fired, memory_order_relaxed);
        out[i].max_queue_depth = atomic_load_explicit(&s->max_queue_depth, memory_order_relaxed);
    }
    return (int)n;
}

int weft_dump_tasks(weft_rt *rt, FILE *out)
{
    if (!rt || !out) return -EINVAL;
    return registry_dump(&rt->reg, out);
}
