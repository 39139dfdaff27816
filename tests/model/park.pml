/*
 * park.pml: the idle set of runtime/park.c and the park loop of runtime/worker.c: workers
 * that find no work register as sleepers, look at the queues once more, and sleep on their
 * eventfd; a thread outside the runtime publishes work and wakes one sleeper, and only when
 * nobody is searching. The question is the one every parking protocol must answer: can
 * work be left in a queue while every worker sleeps (a lost wake-up)?
 *
 * What is modelled. WORKERS workers and one producer that injects ITEMS items, one at a
 * time (weft_rt_submit from a foreign thread: inject_push, then idle_notify_strict).
 * Everything done under the idle set's mutex is one atomic step; the lock-free reads of
 * `state` by producers are separate steps. The eventfd is a token per worker that unpark
 * sets and a wake-up consumes (it keeps an early write). A searching worker that finds
 * nothing parks, dropping its searching mark (idle_enter); one that finds work stops
 * searching and, when it was the last searcher, notifies one more (idle_found_work).
 * Spin interleaves whole statements (sequential consistency): in the C code the two
 * seq_cst fences (the producer's in idle_notify_strict, the worker's after idle_enter) are what
 * make these accesses behave so.
 *
 * Checked: once the producer is done and no process can move, every item was taken
 * (a `timeout` monitor asserts it), and the searching/unparked counts stay in range.
 * Two broken variants must fail, showing the model sees the bug each would bring:
 * without the last look at the queues after registering as a sleeper, and with the
 * producer reading the idle state before it publishes its item.
 * With 3 workers (SPIN_FLAGS=-DWORKERS=3) it also verifies: 24.8M states, about 90 s.
 * must-fail: -DNO_RECHECK
 * must-fail: -DCHECK_BEFORE_PUBLISH
 */

#ifndef WORKERS
#define WORKERS 2
#endif
#ifndef ITEMS
#define ITEMS 3
#endif

byte work;            /* items in the inject queue */
byte taken;           /* items taken by workers */
byte searching;       /* low half of idle_set.state */
byte unparked = WORKERS;
bool sleeping[WORKERS];
bool token[WORKERS];  /* the eventfd */
bool w_searching[WORKERS];
bool producing = 1;

/* idle_notify_strict: wake one sleeper if nobody searches. */
inline notify()
{
    if
    :: searching == 0 && unparked < WORKERS ->
        atomic {
            if
            :: searching == 0 ->
                if
                :: sleeping[0] -> sleeper = 0
                :: WORKERS > 1 && sleeping[1] -> sleeper = 1
                :: WORKERS > 2 && sleeping[2] -> sleeper = 2
                :: else -> sleeper = 255
                fi;
                if
                :: sleeper != 255 ->
                    sleeping[sleeper] = 0;
                    unparked++;
                    searching++;
                    w_searching[sleeper] = 1
                :: else
                fi
            :: else -> sleeper = 255
            fi
        };
        if
        :: sleeper != 255 -> token[sleeper] = 1 /* worker_unpark, after the unlock */
        :: else
        fi
    :: else
    fi
}

proctype producer()
{
    byte i, sleeper, s, u;
    for (i : 1 .. ITEMS) {
#ifdef CHECK_BEFORE_PUBLISH
        s = searching;
        u = unparked;
        work++;
        if
        :: s == 0 && u < WORKERS -> notify()
        :: else
        fi
#else
        work++;
        notify()
#endif
    }
    producing = 0
}

proctype worker(byte me)
{
    byte sleeper;
    bool last;
loop:
    /* next_runnable: the inject queue */
    atomic {
        if
        :: work > 0 -> work--; taken++; last = 1
        :: else -> last = 0
        fi
    };
    if
    :: last ->
        if
        :: w_searching[me] ->
            atomic { searching--; w_searching[me] = 0; last = (searching == 0) };
            if
            :: last -> notify()
            :: else
            fi
        :: else
        fi;
        goto loop
    :: else
    fi;
    /* steal_work: become a searcher if fewer than half search (peers' deques: none here) */
    atomic {
        if
        :: !w_searching[me] && 2 * searching < WORKERS -> searching++; w_searching[me] = 1
        :: else
        fi
    };
    /* worker_park: idle_enter */
    atomic {
        unparked--;
        if
        :: w_searching[me] -> searching--; w_searching[me] = 0
        :: else
        fi;
        sleeping[me] = 1;
        assert(searching < WORKERS && unparked < WORKERS)
    };
#ifndef NO_RECHECK
    /* has_work: one more look */
    if
    :: work > 0 ->
        atomic {
            if
            :: sleeping[me] -> sleeping[me] = 0; unparked++
            :: else
            fi
        };
        goto loop
    :: else
    fi;
#endif
end_sleep:
    token[me] == 1;
    token[me] = 0;
    /* idle_leave */
    atomic {
        if
        :: sleeping[me] -> sleeping[me] = 0; unparked++
        :: else
        fi
    };
    goto loop
}

active proctype monitor()
{
    /* no process can move: the producer is done and every worker sleeps */
    timeout -> assert(!producing && work == 0 && taken == ITEMS)
}

init
{
    byte i;
    atomic {
        for (i : 0 .. WORKERS - 1) { run worker(i) }
        run producer()
    }
}
