/*
 * registry: the runtime's set of suspended tasks, sharded by worker. A task joins the
 * shard of the worker it first suspends on and leaves when it is done. Shutdown cancels
 * every task in it; task dumps list it. Tasks that never suspend never touch it.
 */
#ifndef WEFT_REGISTRY_H
#define WEFT_REGISTRY_H

#include <stddef.h>
#include <stdio.h>

#include "spinlock.h"

struct task;

typedef struct registry_shard {
    spinlock lock;
    struct task *head;
    size_t count;
} cache_aligned registry_shard;

typedef struct registry {
    registry_shard *shards;
    unsigned nshards;
} registry;

int registry_init(registry *r, unsigned nshards);
void registry_destroy(registry *r);
/* Register t, which is suspending for the first time. 1 if the runtime is closing: then
 * shutdown's walk may have missed t, and the caller must see that t wakes to look at it. */
int registry_add(registry *r, unsigned shard, struct task *t);
void registry_remove(struct task *t);
size_t registry_count(registry *r);
void registry_cancel_all(registry *r);          /* shutdown: a cancellation for each task */
void registry_abandon_all(registry *r);         /* shutdown timed out: complete them cancelled */
int registry_dump(registry *r, FILE *out);

#endif
