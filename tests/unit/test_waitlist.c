/*
 * test_waitlist: the FIFO of waiters (waitq.h), a ring whose oldest waiter's `prev` is left
 * stale on purpose. Random appends, pops and removals (of the oldest, the newest and from
 * the middle, as cancellations and timeouts do) are checked after every operation against
 * an array model: the same waiters, oldest first, by walking `next` from the oldest; and
 * every waiter but the oldest has the right `prev`.
 * WEFT_WAITLIST_SEED fixes the random seed.
 */
#include "waitq.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "tap.h"
#include "testutil.h"

enum { POOL = 64 };

static waiter pool[POOL];
static waiter *model[POOL]; /* oldest first */
static int model_len;
static int in_list[POOL];

static int agrees(const waitlist *l)
{
    if ((model_len == 0) != waitlist_empty(l)) return 0;
    if ((int)waitlist_count(l) != model_len) return 0;
    if (model_len == 0) return 1;
    if (waitlist_first(l) != model[0] || l->last != model[model_len - 1]) return 0;
    const waiter *w = model[0];
    for (int i = 0; i < model_len; i++, w = w->next) {
        if (w != model[i]) return 0;
        if (i > 0 && w->prev != model[i - 1]) return 0;
    }
    return w == model[0]; /* the newest links back to the oldest */
}

static void model_remove(int at)
{
    in_list[model[at] - pool] = 0;
    for (int i = at; i + 1 < model_len; i++) model[i] = model[i + 1];
    model_len--;
}

int main(void)
{
    const char *env = getenv("WEFT_WAITLIST_SEED");
    uint64_t rng = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    rng |= 1;
    note("seed %llu (WEFT_WAITLIST_SEED)", (unsigned long long)rng);

    waitlist l;
    waitlist_init(&l);
    ok(waitlist_empty(&l) && waitlist_pop(&l) == NULL, "a new list is empty and pops nothing");

    /* the plain FIFO, and each kind of removal once, by hand */
    for (int i = 0; i < 4; i++) {
        waitlist_append(&l, &pool[i]);
        model[model_len++] = &pool[i];
        in_list[i] = 1;
    }
    waitlist_remove(&l, &pool[1]); /* the middle */
    model_remove(1);
    ok(agrees(&l), "removing from the middle keeps the order");
    waitlist_remove(&l, &pool[3]); /* the newest */
    model_remove(2);
    ok(agrees(&l), "removing the newest keeps the order");
    waitlist_remove(&l, &pool[0]); /* the oldest */
    model_remove(0);
    ok(agrees(&l), "removing the oldest keeps the order");
    ok(waitlist_pop(&l) == &pool[2] && waitlist_empty(&l), "the last one pops, emptying the list");
    model_remove(0);

    /* appends as likely as both removals, so the length wanders over the whole pool */
    long ops = scaled(1000000), bad = 0, longest = 0;
    for (long n = 0; n < ops && !bad; n++) {
        unsigned r = (unsigned)(rng_next(&rng) % 16);
        if (model_len == 0 || (r < 8 && model_len < POOL)) { /* append a free one */
            int i = (int)(rng_next(&rng) % POOL);
            while (in_list[i]) i = (i + 1) % POOL;
            waitlist_append(&l, &pool[i]);
            model[model_len++] = &pool[i];
            in_list[i] = 1;
        } else if (r < 13) { /* pop the oldest, as a grant does */
            waiter *w = waitlist_pop(&l);
            if (w != model[0]) bad = n + 1;
            model_remove(0);
        } else { /* remove any one, as a cancellation does */
            int at = (int)(rng_next(&rng) % (uint64_t)model_len);
            waitlist_remove(&l, model[at]);
            model_remove(at);
        }
        if (!bad && !agrees(&l)) bad = n + 1;
        if (model_len > longest) longest = model_len;
    }
    cmp_ok(bad, ==, 0, "%ld random appends, pops and removals agree with the model", ops);
    cmp_ok(longest, ==, POOL, "the list grew to all %d waiters", POOL);
    done_testing();
}
