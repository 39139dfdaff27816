/*
 * inline_cancel.pml: the hand-over of a cancellation between an inline child that switches
 * out and a canceller of its awaiter (runtime/task.c: task_publish_inline, task_cancel,
 * cancel_awaited, task_cancel_take).
 *
 * What is modelled. A parent awaits its child inline, so its `awaiting` is empty while the
 * child runs. The child then switches out: it publishes `awaiting` with an exchange and
 * takes a cancellation the parent already had (must_cancel), passing it on to itself. A
 * canceller of the parent, meanwhile, borrows `awaiting` (await_lend.pml models how it
 * keeps the future alive meanwhile): finding the child it cancels that (the cancellation
 * is delivered through it); finding nothing it leaves the request in must_cancel, and looks
 * at `awaiting` again: if something is published now, it takes the request back and
 * borrows again. Every exchange, load and store is one atomic step, the seq_cst order the
 * C code asks for.
 *
 * Checked: once both are done, the cancellation was delivered to the child exactly once,
 * and nothing is left in must_cancel (a request left there is never seen: the parent's
 * stack is suspended in its child, and the child waits on something else).
 * Three broken variants must fail: a publisher that does not take the earlier request, a
 * canceller that does not look again, and a take that loads and then stores instead of
 * exchanging (both sides deliver).
 * must-fail: -DNO_PUBLISHER_TAKE
 * must-fail: -DNO_SECOND_LOOK
 * must-fail: -DPLAIN_TAKE
 */

mtype = { NONE, CHILD };

mtype awaiting = NONE;
bool must_cancel;
byte delivered;      /* cancellations that reached the child */
byte finished;       /* processes that have ended */

/* task_cancel_take: 1 in `took` if this caller took the request */
inline take(took)
{
#ifdef PLAIN_TAKE
    if
    :: must_cancel -> must_cancel = 0; took = 1
    :: else -> took = 0
    fi
#else
    if
    :: must_cancel -> atomic { took = must_cancel; must_cancel = 0 }
    :: else -> took = 0
    fi
#endif
}

/* cancel_awaited: 1 in `through` if the child was cancelled through `awaiting` */
inline cancel_awaited(through)
{
    f = awaiting;
    if
    :: f == NONE -> through = 0
    :: f == CHILD -> delivered++; through = 1
    fi
}

active proctype publisher()
{
    bool took;
    awaiting = CHILD;  /* an exchange; whatever it returned is not looked at */
#ifndef NO_PUBLISHER_TAKE
    take(took);
    if
    :: took -> delivered++
    :: else
    fi
#endif
    finished++
}

active proctype canceller()
{
    mtype f;
    bool through, took;
    cancel_awaited(through);
    if
    :: through -> goto done
    :: else
    fi;
    must_cancel = 1;
#ifndef NO_SECOND_LOOK
    if
    :: awaiting != NONE ->
        take(took);
        if
        :: took ->
            cancel_awaited(through);
            if
            :: !through -> must_cancel = 1
            :: else
            fi
        :: else
        fi
    :: else
    fi;
#endif
done:
    finished++
}

/* once both have ended */
active proctype check()
{
    (finished == 2) -> assert(delivered == 1 && !must_cancel)
}
