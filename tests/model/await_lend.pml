/*
 * await_lend.pml: how a canceller borrows the future a task awaits, and how the task takes
 * its await back without a locked instruction (runtime/task.c: await_end, cancel_awaited,
 * task_wake).
 *
 * What is modelled. A task awaits future F: it publishes `awaiting`, suspends (IDLE) and is
 * woken by a CAS IDLE -> SCHEDULED, from the future's completer or from a canceller whose
 * cancellation went through F. Its worker then resumes it with a plain store of RUNNING,
 * and the task takes its await back: a plain store of `awaiting` = NONE, then a load of
 * `lent`; while it sees `lent` up it waits; then it drops its reference, and F may be freed.
 * Those two stores go through the worker's store buffer, in order (x86-TSO), and the load
 * may pass them: that is what fence_light_store allows. The canceller raises `lent` (an
 * exchange), loads the task's run state, runs fence_heavy unless it found IDLE (modelled
 * as draining the task's buffer: membarrier makes that CPU fence), loads `awaiting`,
 * cancels what it found (which may wake the task) and lowers `lent`. Spin interleaves whole
 * statements, sequentially consistent but for that buffer.
 *
 * Checked: the canceller never touches F once the task may have freed it, and every run
 * ends with both done. Three broken variants must fail: an awaiter that does not wait for
 * `lent`, a canceller that never fences, and one that fences only when it finds the task
 * RUNNING (a task found SCHEDULED may already run, its RUNNING store still buffered).
 * must-fail: -DNO_LENT_WAIT
 * must-fail: -DNO_HEAVY_FENCE
 * must-fail: -DFENCE_ONLY_RUNNING
 */

mtype = { NONE, F };
mtype = { RUNNING, IDLE, SCHEDULED };

mtype awaiting = NONE;
mtype rs = RUNNING;     /* task.sched */
bool lent;
bool freed;             /* the task has dropped its reference to F */
bool done_f;            /* F has completed */
bool run_buffered;      /* the worker's store buffer holds rs = RUNNING... */
bool none_buffered;     /* ...and, behind it, awaiting = NONE */
byte finished;

/* the oldest buffered store lands, if there is one */
inline drain_one()
{
    atomic {
        if
        :: run_buffered -> rs = RUNNING; run_buffered = 0
        :: !run_buffered && none_buffered -> awaiting = NONE; none_buffered = 0
        :: else
        fi
    }
}

/* fence_heavy: the task's CPU runs a full fence, which empties its buffer */
inline drain_all()
{
    atomic {
        if
        :: run_buffered -> rs = RUNNING; run_buffered = 0
        :: else
        fi;
        if
        :: none_buffered -> awaiting = NONE; none_buffered = 0
        :: else
        fi
    }
}

/* task_wake from a completer of F: a CAS, so IDLE -> SCHEDULED at most once */
inline wake()
{
    atomic {
        if
        :: rs == IDLE -> rs = SCHEDULED
        :: else
        fi
    }
}

active proctype task()
{
    awaiting = F;          /* await_begin */
    if                     /* under F's lock: suspend unless F is done (waiter.pml models how) */
    :: atomic { !done_f -> rs = IDLE };
        rs == SCHEDULED;   /* woken */
        run_buffered = 1   /* resumed by its worker: a plain store */
    :: atomic { done_f -> skip }
    fi;
    none_buffered = 1;     /* await_end: fence_light_store(&awaiting, NULL) */
#ifndef NO_LENT_WAIT
    do                     /* the load of `lent` may pass both buffered stores */
    :: !lent -> break
    :: lent && (run_buffered || none_buffered) -> drain_one()
    od;
#endif
    freed = 1;             /* its reference dropped: F may be freed (the buffer may not be empty) */
    do
    :: run_buffered || none_buffered -> drain_one()
    :: else -> break
    od;
    finished++
}

/* F's completer: it holds a reference, so it may touch F all along */
active proctype completer()
{
    atomic { if :: !done_f -> done_f = 1; wake() :: else fi };
    finished++
}

active proctype canceller()
{
    mtype f, s;
    atomic { !lent -> lent = 1 };
    s = rs;
#ifndef NO_HEAVY_FENCE
#ifdef FENCE_ONLY_RUNNING
    if
    :: s == RUNNING -> drain_all()
    :: else
    fi;
#else
    if
    :: s != IDLE -> drain_all()
    :: else
    fi;
#endif
#endif
    f = awaiting;
    if
    :: f == F ->
        assert(!freed);    /* weft_cancel(F) */
        atomic { if :: !done_f -> done_f = 1; wake() :: else fi };
        assert(!freed)
    :: else
    fi;
    lent = 0;
    finished++
}

/* the buffer may drain at any moment */
active proctype cpu()
{
    do
    :: finished == 3 -> break
    :: run_buffered || none_buffered -> drain_one()
    od
}
