/*
 * steal: what an idle worker takes from its peers. Victims are visited nearest first in
 * the hardware topology (same cache, then same package / NUMA node, then the rest); a
 * steal takes half of the victim's deque (n - n/2), the oldest tasks, one CAS each.
 */
#ifndef WEFT_STEAL_H
#define WEFT_STEAL_H

#include "task.h"
#include "worker.h"

int steal_plan(struct weft_rt *rt);    /* fill every worker's victim order */
runnable *steal_work(worker *w);       /* NULL when nothing could be taken or w may not search */
void steal_timers(worker *w);          /* fire the due timers of busy peers */

#endif
