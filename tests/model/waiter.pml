/*
 * waiter.pml: the wait protocol of runtime/waitq.c for a task: a waiter in a list (a
 * future's, a lock's...) with a deadline, raced by a waker that pops and signals it under
 * the list's lock, by the deadline's timer callback and by a cancellation from another
 * thread, while the task suspends and is resumed by its worker (task.h's run states).
 *
 * What is modelled. The waiter's `ws` and the task's run state `rs` are the two words
 * everyone races on; each CAS and each step done under the list's spinlock is atomic. The
 * task suspends the way worker.c does it: after switching away, RUNNING -> IDLE by CAS,
 * or, if a wake-up came meanwhile (NOTIFIED), straight back to the queue (SCHEDULED); the
 * worker resumes a SCHEDULED task (-> RUNNING). A wake-up (task_wake) moves IDLE ->
 * SCHEDULED or RUNNING -> NOTIFIED. timer_cancel waits out a callback that is running.
 * Spin interleaves whole statements (sequential consistency); in the C code the final
 * store is a release and the waiter's loads are acquires, which is what makes the task see
 * result and value written before it.
 *
 * Checked:
 *   - nobody who ended the wait touches the task or the waiter after the task has left
 *     its wait (`left`: from there on the task may finish and be freed, its stack reused);
 *   - no wake-up is lost: every run ends with every process done (a task left IDLE with
 *     its wait over would be an invalid end state);
 *   - a waiter ends exactly once, and a grant is never mistaken for a cancellation.
 * Three broken variants must fail: an ender that stores the outcome before it wakes the
 * task (no ENDING), which then touches a task that may be gone; one that wakes the task
 * before marking the waiter at all, which loses the wake-up; and a waiter that leaves
 * while it sees ENDING.
 * must-fail: -DOUTCOME_FIRST
 * must-fail: -DWAKE_FIRST
 * must-fail: -DNO_OUTCOME_WAIT
 */

mtype = { WAITING, ENDING, SIGNALED, CANCELLED, TIMEDOUT };
mtype = { RUNNING, NOTIFIED, IDLE, SCHEDULED };

mtype ws = WAITING;  /* waiter.state */
mtype rs = RUNNING;  /* task.sched, the run state */
bool locked;         /* the list's spinlock */
bool inlist;         /* the waiter is in the list */
bool must_cancel;
bool armed;          /* the deadline's timer is armed... */
bool firing;         /* ...and its callback is running */
bool left;           /* the task has left waiter_park */
byte ends;           /* how many times the wait was ended */
bool granted;        /* the waker popped and signalled it */
bool appended;       /* the task has appended its waiter once */

inline lock() { atomic { !locked -> locked = 1 } }
inline unlock() { locked = 0 }

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
#elif defined(WAKE_FIRST)
    wake();
    atomic { assert(!left); ws = outcome; ends++ }
#else
    atomic { assert(!left); ws = ENDING };
    wake();
    atomic { assert(!left); ws = outcome; ends++ }
#endif
}

/* waiter_signal, called by a waker that popped the waiter. It always comes (after the
 * append), while the cancellation and the deadline may not: so a wake-up of the waker's
 * that is lost leaves the task asleep for ever, an invalid end state. */
proctype waker()
{
    appended;
    lock();
    if
    :: inlist -> inlist = 0; granted = 1; end_and_wake(SIGNALED)
    :: else
    fi;
    unlock()
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
    must_cancel = 1;
    atomic {
        if
        :: rs == IDLE -> rs = SCHEDULED
        :: rs == RUNNING -> rs = NOTIFIED
        :: else
        fi
    };
done:
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
    /* the primitive appends the waiter under the lock; waiter_park arms the deadline */
    lock(); inlist = 1; appended = 1; unlock();
    armed = 1;
    /* park_task */
    do
    :: ws == WAITING ->
        if
        :: must_cancel ->
            must_cancel = 0;
            /* waiter_end_self */
            lock();
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
        /* the switch out (worker_switch_out); after_switch runs off the task's stack */
        atomic {
            if
            :: rs == RUNNING -> rs = IDLE
            :: else -> assert(rs == NOTIFIED); rs = SCHEDULED
            fi
        };
        /* switched out until the worker resumes it */
        (rs == RUNNING || rs == NOTIFIED)
    :: else -> break
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
        run worker()
    }
}
