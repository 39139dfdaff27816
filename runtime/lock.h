/*
 * lock: asyncio.Lock (weft_lock), with the one entry point the condition variable needs
 * beyond the public API: an acquire whose wait cancellation cannot interrupt, so a
 * condition's re-acquire keeps its place in the queue.
 */
#ifndef WEFT_LOCK_H
#define WEFT_LOCK_H

#include "weft.h"

int lock_valid(const weft_lock *l);
/* 0 once the caller holds l; -ECANCELED (only if `cancellable`), -EPERM or -ENOMEM. */
int lock_acquire(weft_lock *l, int cancellable);

#endif
