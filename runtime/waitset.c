/*
 * waitset.c: one waiter for many futures (see waitset.h for the design and the locks).
 *
 * A hook runs on whichever thread completes its future, with that future's lock held:
 * under set->lock it notes the completion (count, first errors, ready list) and, when the
 * condition holds, signals one parked waiter. The waiting side checks the condition under
 * the same lock before it appends its waiter, so no completion is missed between the check
 * and the park.
 */
#include "waitset.h"

#include <errno.h>

#include "alloc.h"
#include "clock.h"

static int satisfied_locked(const waitset *s)
{
    switch (s->until) {
    case WAITSET_ALL:
        return s->ndone == s->n;
    case WAITSET_ANY:
        return s->ndone > 0;
    case WAITSET_FIRST_ERROR:
        return s->ndone == s->n || s->first_error;
    case WAITSET_FIRST_FAILURE:
        return s->ndone == s->n || s->first_failure;
    default:
        return s->ready_head != NULL;
    }
}

/* Under s->lock: wake one waiter if the condition holds. */
static void wake_locked(waitset *s)
{
    if (!satisfied_locked(s)) return;
    waitlist_signal_first(&s->waiters, 0, NULL);
}

/* Under s->lock. A future done before the set was made is never late. */
static void note_locked(waitset *s, waitset_entry *e, int error, int may_be_late)
{
    e->fired = 1;
    s->ndone++;
    if (error && !s->first_error) s->first_error = error;
    if (error && error != -ECANCELED && !s->first_failure) s->first_failure = error;
    if (may_be_late && s->late_after != UINT64_MAX && clock_ns() >= s->late_after) return;
    e->next_ready = NULL;
    if (s->ready_tail)
        s->ready_tail->next_ready = e;
    else
        s->ready_head = e;
    s->ready_tail = e;
}

static void entry_fire(future_hook *h, weft_future *f)
{
    waitset_entry *e = container_of(h, waitset_entry, hook);
    waitset *s = e->set;
    spin_lock(&s->lock);
    note_locked(s, e, f->error, 1);
    wake_locked(s);
    spin_unlock(&s->lock); /* the last touch of s: waitset_destroy may follow at once */
}

int waitset_init(waitset *s, weft_future *const *fs, size_t n, int until, uint64_t late_after)
{
    spin_init(&s->lock);
    waitlist_init(&s->waiters);
    s->until = until;
    s->n = n;
    s->ndone = 0;
    s->first_error = s->first_failure = 0;
    s->late_after = late_after;
    s->ready_head = s->ready_tail = NULL;
    s->entries = s->inline_entries;
    if (n > WAITSET_INLINE && !(s->entries = mem_alloc(n * sizeof *s->entries))) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        waitset_entry *e = &s->entries[i];
        e->hook.fire = entry_fire;
        e->set = s;
        e->f = fs[i];
        e->fired = 0;
        e->hooked = future_hook_add(fs[i], &e->hook) == 0;
        if (!e->hooked) {
            spin_lock(&s->lock);
            note_locked(s, e, fs[i]->error, 0);
            spin_unlock(&s->lock);
        }
    }
    return 0;
}

int waitset_satisfied(waitset *s)
{
    spin_lock(&s->lock);
    int r = satisfied_locked(s);
    spin_unlock(&s->lock);
    return r;
}

int waitset_first_error(waitset *s)
{
    spin_lock(&s->lock);
    int r = s->first_error;
    spin_unlock(&s->lock);
    return r;
}

int waitset_wait(waitset *s, uint64_t deadline, int cancellable, const char *what)
{
    if (waitset_satisfied(s)) return 0;
    if (deadline != UINT64_MAX && clock_ns() >= deadline) return -ETIMEDOUT;
    waiter w;
    int r = waiter_init(&w, &s->lock, &s->waiters, what);
    if (r) return r;
    spin_lock(&s->lock);
    if (satisfied_locked(s)) {
        spin_unlock(&s->lock);
        return 0;
    }
    waitlist_append(&s->waiters, &w);
    r = waiter_park(&w, deadline, cancellable);
    if (r != WAIT_SIGNALED_CANCELLED) return r;
    spin_lock(&s->lock); /* woken, then cancelled: another waiter takes the wake-up */
    wake_locked(s);
    spin_unlock(&s->lock);
    return -ECANCELED;
}

weft_future *waitset_pop_ready(waitset *s)
{
    spin_lock(&s->lock);
    waitset_entry *e = s->ready_head;
    if (e && !(s->ready_head = e->next_ready)) s->ready_tail = NULL;
    spin_unlock(&s->lock);
    return e ? e->f : NULL;
}

void waitset_destroy(waitset *s)
{
    /* Under s->lock, a fired entry's hook has left the set for good; the others are taken
     * back under their future's lock, which also waits out a hook that is running now. */
    spin_lock(&s->lock);
    for (size_t i = 0; i < s->n; i++) s->entries[i].hooked &= !s->entries[i].fired;
    spin_unlock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        if (s->entries[i].hooked) future_hook_remove(s->entries[i].f, &s->entries[i].hook);
    }
    if (s->entries != s->inline_entries) mem_free(s->entries, s->n * sizeof *s->entries);
}
