/*
 * waiter.pml: the wait protocol of runtime/waitq.c for a task: a waiter in a list (a
 * future's, a lock's...) with a deadline, raced by a waker that pops and signals it under
 * the list's lock, by the deadline's timer callback and by a cancellation from another
 * thread, while the task suspends and is resumed by its worker (task.h's run states).
 *
 * What is modelled. The waiter's `ws` and the task's run state `rs` are the two words
 * everyone races on; each CAS and each step done under the list's spinlock is atomic. The
 * task suspends the way worker.c does it: it parks holding the list's lock, and after
 * switching away its worker stores IDLE (a plain store), looks at must_cancel again, wakes
 * the task itself if it is set, and releases the lock (publish_idle). Those two stores go
 * through the worker's store buffer, in order (x86-TSO), and the look may pass them: that
 * is the reordering fence_light allows. A locked instruction (task_wake's CAS) drains the
 * buffer, and so does fence_heavy, which a canceller that finds the task RUNNING or
 * NOTIFIED runs between its request and its wake-up: modelled as waiting until the
 * buffer is empty. The worker resumes a SCHEDULED task (-> RUNNING). A wake-up
 * (task_wake) moves IDLE -> SCHEDULED or RUNNING -> NOTIFIED. timer_cancel waits out a
 * callback that is running. With a deadline the task lets the lock go while it arms the
 * timer (park_task_until), which allows every interleaving of the wait without one too.
 * Spin interleaves whole statements (sequential consistency, but for the buffer); in the
 * C code the final store is a release and the waiter's loads are acquires, which is what
 * makes the task see result and value written before it.
 *
 * Checked:
 *   - nobody who ended the wait touches the task or the waiter after the task has left
 *     its wait (`left`: from there on the task may finish and be freed, its stack reused);
 *   - no wake-up is lost: every run ends with every process done (a task left IDLE with
 *     its wait over would be an invalid end state);
 *   - a waiter ends exactly once, and a grant is never mistaken for a cancellation.
 * Five broken variants must fail: an ender that stores the outcome before it wakes the
 * task (no ENDING), which then touches a task that may be gone; a waiter that leaves while
 * it sees ENDING; a switch that releases the lock before its IDLE store (a waker's
 * wake-up is overwritten); one that does not look at must_cancel after that store; and a
 * canceller that skips fence_heavy (both lose the cancellation's wake-up). (An ender that
 * woke the task before marking the waiter lost the wake-up while tasks published
 * themselves outside the lock; now the woken task waits for the lock, and the outcome.)
 * must-fail: -DOUTCOME_FIRST
 * must-fail: -DNO_OUTCOME_WAIT
 * must-fail: -DEARLY_UNLOCK
 * must-fail: -DNO_RECHECK
 * must-fail: -DNO_HEAVY_FENCE
 */

mtype = { WAITING, ENDING, SIGNALED, CANCELLED, TIMEDOUT };
mtype = { RUNNING, NOTIFIED, IDLE, SCHEDULED };

mtype ws = WAITING;  /* waiter.state */
mtype rs = RUNNING;  /* task.sched, the run state */
bool locked;         /* the list's spinlock */
bool inlist;         /* the waiter is in the list */
bool must_cancel;
bool cancel_sent;    /* the canceller has begun */
bool armed;          /* the deadline's timer is armed... */
bool firing;         /* ...and its callback is running */
bool left;           /* the task has left waiter_park */
byte ends;           /* how many times the wait was ended */
bool granted;        /* the waker popped and signalled it */
bool appended;       /* the task has appended its waiter once */
bool idle_buffered;  /* the worker's store buffer holds rs = IDLE... */
bool unlock_buffered; /* ...and, behind it, locked = 0 */

inline lock() { atomic { !locked -> locked = 1 } }
inline unlock() { locked = 0 }

/* a locked instruction on the worker: the buffered IDLE store lands first */
inline drain_idle()
{
    atomic {
        if
        :: idle_buffered -> rs = IDLE; idle_buffered = 0
        :: else
        fi
    }
}

/* task_wake: one CAS on the task's word */
inline wake()
{
    atomic {
        assert(!left);
        if
        :: rs == IDLE -> rs = SCHEDULED
        :: rs == RUNNING -> rs = NOTIFIED
        :: else
        fi
    }
}

/* An end by someone other than the waiter (waitq.c's end_and_wake), lock held, ws claimed. */
inline end_and_wake(outcome)
{
#if defined(OUTCOME_FIRST)
    atomic { ws = outcome; ends++ };
    wake()
#else
    atomic { assert(!left); ws = ENDING };
    wake();
    atomic { assert(!left); ws = outcome; ends++ }
#endif
}

/* waiter_signal, called by a waker that popped the waiter. It comes (after the append)
 * unless a cancellation was sent, which must then end the wait by itself; the deadline
 * may not come at all. So a lost wake-up, the waker's or the cancellation's, leaves the
 * task asleep for ever: an invalid end state. */
proctype waker()
{
    if
    :: skip
    :: cancel_sent -> goto done
    fi;
    appended;
    lock();
    if
    :: inlist -> inlist = 0; granted = 1; end_and_wake(SIGNALED)
    :: else
    fi;
    unlock();
done:
}

/* deadline_fire: the timer callback */
proctype deadline()
{
    if
    :: skip
    :: goto done /* it never fires */
    fi;
end_idle:
    atomic { armed -> firing = 1 };
    lock();
    if
    :: ws == WAITING -> inlist = 0; end_and_wake(TIMEDOUT) /* waiter_claim(ENDING) */
    :: else
    fi;
    unlock();
    firing = 0;
done:
}

/* task_cancel of a task that awaits nothing: the canceller holds a reference on the task
 * (so it may touch the task at any time), never on the waiter */
proctype canceller()
{
    if
    :: skip
    :: goto done /* nobody cancels */
    fi;
    cancel_sent = 1;
    must_cancel = 1;
#ifndef NO_HEAVY_FENCE
    if
    :: rs == RUNNING || rs == NOTIFIED -> !idle_buffered && !unlock_buffered /* fence_heavy */
    :: else
    fi;
#endif
    atomic {
        if
        :: rs == IDLE -> rs = SCHEDULED
        :: rs == RUNNING -> rs = NOTIFIED
        :: else
        fi
    };
done:
}

/* the task's worker's store buffer, draining in order */
proctype buffer()
{
end_drain:
    do
    :: atomic { idle_buffered -> rs = IDLE; idle_buffered = 0 }
    :: atomic { unlock_buffered && !idle_buffered -> locked = 0; unlock_buffered = 0 }
    od
}

/* the worker: resumes the task when it is queued (task_resume_scheduled) */
proctype worker()
{
end_loop:
    do
    :: atomic { rs == SCHEDULED -> rs = RUNNING }
    od
}

proctype task()
{
    bool won;
    /* the primitive appends the waiter under the lock; waiter_park lets the lock go while
     * it arms the deadline */
    lock(); inlist = 1; appended = 1; unlock();
    armed = 1;
    lock();
    /* park_task: the lock is held at the top of each turn */
    do
    :: ws != WAITING -> unlock(); break
    :: else ->
        if
        :: must_cancel ->
            must_cancel = 0;
            /* waiter_end_self_locked */
            atomic {
                if
                :: ws == WAITING -> ws = CANCELLED; ends++; inlist = 0; won = 1
                :: else -> won = 0
                fi
            };
            unlock();
            if
            :: !won -> must_cancel = 1 /* granted meanwhile: delivered with the grant */
            :: else
            fi;
            break
        :: else
        fi;
        /* the switch out; after_switch runs off the task's stack: publish_idle */
#ifdef EARLY_UNLOCK
        unlock();
#endif
        idle_buffered = 1;
#ifndef NO_RECHECK
        if
        :: must_cancel -> drain_idle(); wake()
        :: else
        fi;
#endif
#ifndef EARLY_UNLOCK
        unlock_buffered = 1;
#endif
        /* switched out until the worker resumes it */
        ((rs == RUNNING || rs == NOTIFIED) && !idle_buffered);
        if
        :: ws != WAITING -> break
        :: else -> lock() /* woken by the cancellation: look again */
        fi
    od;
    /* waiter_outcome: not while an ender is inside */
#ifndef NO_OUTCOME_WAIT
    ws != ENDING;
#endif
    /* timer_cancel: waits out a running callback, then disarms */
    atomic { !firing -> armed = 0 };
    left = 1;
    assert(ends == 1);
    assert(granted == (ws == SIGNALED))
}

init
{
    atomic {
        run task();
        run waker();
        run deadline();
        run canceller();
        run buffer();
        run worker()
    }
}
