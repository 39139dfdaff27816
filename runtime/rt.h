/*
 * rt: a runtime: its workers, the global inject queue, the idle set, the registry of
 * suspended tasks, the stack pool, and its lifetime (running -> closing -> stopped).
 */
#ifndef WEFT_RT_H
#define WEFT_RT_H

#include <pthread.h>
#include <stdatomic.h>

#include "inject.h"
#include "park.h"
#include "registry.h"
#include "stack.h"
#include "worker.h"
#include "weft.h"

struct weft_rt {
    weft_config cfg;
    unsigned nworkers;
    worker *workers;
    inject injectq;
    idle_set idle;
    registry reg;
    stack_pool *stacks;
    size_t stack_size;
    atomic_int closing;  /* shutdown began: tasks are being cancelled */
    atomic_int stopping; /* workers exit when idle */
    atomic_uint threads_started;
    pthread_mutex_t quiet_mutex; /* shutdown waits here for the last task */
    pthread_cond_t quiet_cond;
    int shut_down;
    int abandoned; /* shutdown timed out: tasks may still sit in wait lists */
};

/* Nothing left to run and no suspended task: tell a waiting shutdown. */
void rt_note_quiet(weft_rt *rt);

#endif
