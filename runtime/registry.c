/*
 * registry.c: suspended tasks, sharded by worker (see registry.h). A shard's spinlock
 * guards its list, its count and the reg_next/reg_prev fields of its tasks; t->reg_shard is
 * written once, under the lock, by the worker that first parks the task. Adding checks
 * the runtime's closing flag after linking, and shutdown sets the flag before walking the
 * shards, so a task that suspends while shutdown begins is cancelled by one of the two
 * (the adder's caller, worker.c, wakes the task when registry_add says the runtime is
 * closing, and the task's wait turns that into its cancellation).
 */
#include "registry.h"

#include <errno.h>

#include "alloc.h"
#include "rt.h"
#include "task.h"

int registry_init(registry *r, unsigned nshards)
{
    r->nshards = nshards ? nshards : 1;
    r->shards = mem_aligned(sizeof(registry_shard) * r->nshards, CACHE_LINE);
    if (!r->shards) return -ENOMEM;
    for (unsigned i = 0; i < r->nshards; i++) {
        spin_init(&r->shards[i].lock);
        r->shards[i].head = NULL;
        r->shards[i].count = 0;
    }
    return 0;
}

void registry_destroy(registry *r)
{
    mem_free_aligned(r->shards, sizeof(registry_shard) * r->nshards, CACHE_LINE);
}

int registry_add(registry *r, unsigned shard, task *t)
{
    registry_shard *s = &r->shards[shard % r->nshards];
    spin_lock(&s->lock);
    t->reg_shard = (uint16_t)(shard % r->nshards);
    t->reg_prev = NULL;
    t->reg_next = s->head;
    if (s->head) s->head->reg_prev = t;
    s->head = t;
    s->count++;
    spin_unlock(&s->lock);
    return atomic_load_explicit(&t->fut.rt->closing, memory_order_seq_cst);
}

void registry_remove(task *t)
{
    registry_shard *s = &t->fut.rt->reg.shards[t->reg_shard];
    spin_lock(&s->lock);
    if (t->reg_prev) t->reg_prev->reg_next = t->reg_next;
    else s->head = t->reg_next;
    if (t->reg_next) t->reg_next->reg_prev = t->reg_prev;
    s->count--;
    spin_unlock(&s->lock);
    t->reg_shard = REG_NONE;
}

size_t registry_count(registry *r)
{
    size_t n = 0;
    for (unsigned i = 0; i < r->nshards; i++) {
        spin_lock(&r->shards[i].lock);
        n += r->shards[i].count;
        spin_unlock(&r->shards[i].lock);
    }
    return n;
}

/* Call fn on every registered task, each held by a reference outside the shard lock. */
static void registry_each(registry *r, void (*fn)(task *t))
{
    for (unsigned i = 0; i < r->nshards; i++) {
        registry_shard *s = &r->shards[i];
        spin_lock(&s->lock);
        size_t n = s->count, k = 0;
        task **batch = n ? mem_alloc(sizeof(task *) * n) : NULL;
        for (task *t = s->head; batch && t; t = t->reg_next) {
            weft_future_retain(&t->fut);
            batch[k++] = t;
        }
        spin_unlock(&s->lock);
        for (size_t j = 0; j < k; j++) {
            fn(batch[j]);
            weft_future_release(&batch[j]->fut);
        }
        mem_free(batch, sizeof(task *) * n);
    }
}

void registry_cancel_all(registry *r)
{
    registry_each(r, task_shutdown_cancel);
}

static void abandon(task *t)
{
    future_complete(&t->fut, -ECANCELED, NULL);
}

void registry_abandon_all(registry *r)
{
    registry_each(r, abandon);
}

int registry_dump(registry *r, FILE *out)
{
    int n = 0;
    for (unsigned i = 0; i < r->nshards; i++) {
        registry_shard *s = &r->shards[i];
        spin_lock(&s->lock);
        for (task *t = s->head; t; t = t->reg_next, n++) {
            static const char *states[] = {"new", "scheduled", "running", "running", "suspended",
                                           "done"};
            unsigned st = atomic_load_explicit(&t->sched, memory_order_relaxed);
            /* what a task waits on is up to date while it is suspended (waitq.c) */
            const char *on =
                st == T_IDLE ? atomic_load_explicit(&t->waiting_on, memory_order_relaxed) : NULL;
            fprintf(out, "task %p '%s' %s%s%s\n", (void *)t, t->name ? t->name : "(unnamed)",
                    st < 6 ? states[st] : "?", on ? " waiting on " : "", on ? on : "");
        }
        spin_unlock(&s->lock);
    }
    return n;
}
