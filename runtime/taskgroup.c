/*
 * taskgroup.c: asyncio.TaskGroup (weft_taskgroup_*).
 *
 * The group belongs to its parent, the task that made it; only the parent joins it.
 * Children are tasks the group spawned and keeps one reference on each of until the group
 * is gone. A done-callback per child (it runs on a worker, with no lock held, so it may
 * cancel tasks) settles the child: a failure other than cancellation records the first
 * error and, if the group is not aborting yet, aborts it (cancels every child) and cancels
 * the parent once, as asyncio's _on_task_done does. A child counts as settled only after
 * that, so a join that sees every child settled also sees the parent's cancellation it
 * must withdraw.
 *
 * join is __aexit__: a cancellation of the parent from outside (its count above the
 * snapshot taken at weft_taskgroup_new and the group's own request), found when join
 * begins or interrupting its wait, aborts the group, which still waits for every child.
 * Errors take priority over cancellation; the group's own cancellation of the parent is
 * withdrawn with weft_uncancel, and if an outside one is still outstanding while an error
 * is returned, it is re-armed so the parent's next wait is cancelled (Python 3.13).
 *
 * `lock` guards everything but `parent`, `snapshot` and `magic` (fixed) and `refs`
 * (atomic: the handle's reference, one per child whose callback has not run yet, and one
 * per spawn under way).
 */
#include <errno.h>

#include "alloc.h"
#include "task.h"
#include "waitq.h"

#define TASKGROUP_MAGIC 0x74677270u /* "tgrp" */

enum { GROUP_OPEN, GROUP_JOINING, GROUP_FINISHED };

struct weft_taskgroup {
    spinlock lock;
    atomic_uint refs;
    uint32_t magic;
    task *parent;             /* a reference */
    int snapshot;             /* the parent's cancel_requests when the group was made */
    int first_error;          /* of the first child that failed other than by cancellation */
    uint8_t state;            /* GROUP_* */
    uint8_t aborting;         /* the children are being cancelled; no new ones */
    uint8_t cancelled_parent; /* the group requested the parent's cancellation */
    uint8_t freed;            /* weft_taskgroup_free was called */
    weft_future **children;   /* NULL in a slot whose spawn is under way or failed */
    size_t nchildren, cap, nsettled;
    waitlist joiners;
};

static void group_release(weft_taskgroup *g)
{
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1) return;
    for (size_t i = 0; i < g->nchildren; i++) {
        if (g->children[i]) weft_future_release(g->children[i]);
    }
    mem_free(g->children, g->cap * sizeof *g->children);
    weft_future_release(&g->parent->fut);
    g->magic = 0;
    mem_free(g, sizeof *g);
}

/* Cancel every child that is not done. Children spawned meanwhile are cancelled by their
 * spawn, which sees `aborting`. */
static void group_cancel_children(weft_taskgroup *g)
{
    for (size_t i = 0;; i++) {
        spin_lock(&g->lock);
        int more = i < g->nchildren;
        weft_future *c = more ? g->children[i] : NULL;
        spin_unlock(&g->lock);
        if (!more) return;
        if (c && !future_is_done(c)) weft_cancel(c);
    }
}

/* Start aborting: 1 if this call did (and cancelled the children), 0 if it had begun. */
static int group_abort(weft_taskgroup *g)
{
    spin_lock(&g->lock);
    int first = !g->aborting;
    g->aborting = 1;
    spin_unlock(&g->lock);
    if (first) group_cancel_children(g);
    return first;
}

/* Under g->lock: one more child is settled; the joiner wakes when all are. */
static void group_settle_locked(weft_taskgroup *g)
{
    if (++g->nsettled != g->nchildren) return;
    waitlist_signal_first(&g->joiners, 0, NULL);
}

static void group_child_done(weft_future *child, void *arg)
{
    weft_taskgroup *g = arg;
    int err = child->error, cancel_parent = 0;
    if (err && err != -ECANCELED) {
        spin_lock(&g->lock);
        if (!g->first_error) g->first_error = err;
        if (!g->aborting && !g->cancelled_parent) cancel_parent = g->cancelled_parent = 1;
        spin_unlock(&g->lock);
    }
    if (cancel_parent) {
        group_abort(g);
        task_cancel(g->parent);
    }
    spin_lock(&g->lock);
    group_settle_locked(g);
    spin_unlock(&g->lock);
    group_release(g);
}

/* ---- public API ---------------------------------------------------------------------- */

static int group_valid(const weft_taskgroup *g)
{
    return g && g->magic == TASKGROUP_MAGIC;
}

weft_taskgroup *weft_taskgroup_new(void)
{
    task *parent = task_current();
    if (!parent) {
        errno = EPERM; /* asyncio: a TaskGroup needs a parent task */
        return NULL;
    }
    weft_taskgroup *g = mem_zalloc(sizeof *g);
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    spin_init(&g->lock);
    atomic_init(&g->refs, 1);
    g->magic = TASKGROUP_MAGIC;
    g->parent = parent;
    weft_future_retain(&parent->fut);
    g->snapshot = atomic_load_explicit(&parent->cancel_requests, memory_order_relaxed);
    g->state = GROUP_OPEN;
    return g;
}

/* Under g->lock: a slot for one more child, or -EPERM once the group takes no more. The
 * array grows with the lock dropped, so the state is checked again after. */
static int group_reserve_locked(weft_taskgroup *g, size_t *slot)
{
    for (;;) {
        if (g->state == GROUP_FINISHED || g->aborting || g->freed) return -EPERM;
        if (g->nchildren < g->cap) break;
        size_t cap = g->cap ? 2 * g->cap : 8;
        spin_unlock(&g->lock);
        weft_future **grown = mem_alloc(cap * sizeof *grown);
        spin_lock(&g->lock);
        if (!grown) return -ENOMEM;
        if (cap > g->cap) { /* nobody grew it meanwhile: install ours, free the old one */
            for (size_t i = 0; i < g->nchildren; i++) grown[i] = g->children[i];
            weft_future **old = g->children;
            size_t old_cap = g->cap;
            g->children = grown;
            g->cap = cap;
            grown = old;
            cap = old_cap;
        }
        mem_free(grown, cap * sizeof *grown);
    }
    *slot = g->nchildren++;
    g->children[*slot] = NULL;
    return 0;
}

weft_future *weft_taskgroup_spawn(weft_taskgroup *g, weft_fn fn, void *arg)
{
    if (!group_valid(g) || !fn) {
        errno = EINVAL;
        return NULL;
    }
    size_t slot;
    spin_lock(&g->lock);
    int r = group_reserve_locked(g, &slot);
    spin_unlock(&g->lock);
    if (r) {
        errno = -r; /* asyncio: "TaskGroup ... is finished" / "is shutting down" */
        return NULL;
    }
    /* ours until the slot is filled: the child may settle, and a join end, before that */
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    weft_future *child = weft_rt_submit(g->parent->fut.rt, fn, arg);
    if (child) {
        atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed); /* the callback's */
        r = weft_future_add_done_callback(child, group_child_done, g);
        if (r) {
            atomic_fetch_sub_explicit(&g->refs, 1, memory_order_relaxed);
            weft_cancel(child); /* untracked: out of memory, so stop it as far as we can */
        }
    } else {
        r = -errno;
    }
    spin_lock(&g->lock);
    g->children[slot] = child;
    int aborting = g->aborting;
    if (r) group_settle_locked(g);
    spin_unlock(&g->lock);
    if (!r && aborting) weft_cancel(child); /* the abort began while we were spawning */
    group_release(g);
    if (r) {
        errno = -r;
        return NULL;
    }
    return child;
}

int weft_taskgroup_join(weft_taskgroup *g)
{
    if (!group_valid(g)) return -EINVAL;
    task *self = task_current();
    if (self != g->parent) return -EPERM;
    spin_lock(&g->lock);
    int state = g->state;
    if (state == GROUP_OPEN) g->state = GROUP_JOINING;
    int outside = atomic_load_explicit(&self->cancel_requests, memory_order_relaxed) - g->snapshot -
                  g->cancelled_parent;
    spin_unlock(&g->lock);
    if (state != GROUP_OPEN) return -EPERM; /* asyncio: "has already been entered" */

    /* a cancellation from outside that the body saw (and did not withdraw) */
    int cancelled = outside > 0 && group_abort(g);
    for (;;) {
        waiter w;
        waiter_init(&w, &g->lock, &g->joiners, "taskgroup");
        spin_lock(&g->lock);
        if (g->nsettled == g->nchildren) {
            spin_unlock(&g->lock);
            break;
        }
        waitlist_append(&g->joiners, &w);
        int r = waiter_park(&w, UINT64_MAX, 1);
        /* a cancellation while the group is aborting anyway is absorbed */
        if ((r == -ECANCELED || r == WAIT_SIGNALED_CANCELLED) && group_abort(g)) cancelled = 1;
    }

    spin_lock(&g->lock);
    g->state = GROUP_FINISHED;
    int cancelled_parent = g->cancelled_parent, first_error = g->first_error;
    spin_unlock(&g->lock);
    if (cancelled_parent && weft_uncancel() == 0) cancelled = 0;
    if (first_error) {
        if (weft_cancelling() > 0) { /* keep an outside cancellation pending (3.13) */
            weft_uncancel();
            task_cancel(self);
        }
        return first_error;
    }
    return cancelled ? -ECANCELED : 0;
}

void weft_taskgroup_free(weft_taskgroup *g)
{
    if (!group_valid(g)) return;
    spin_lock(&g->lock);
    int freed = g->freed, running = g->nsettled < g->nchildren;
    g->freed = 1;
    spin_unlock(&g->lock);
    if (freed) return;
    if (running) group_abort(g); /* freed without a join: the children are cancelled */
    group_release(g);
}
