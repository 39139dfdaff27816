/*
 * test_deque: the Chase-Lev deque. Single-threaded semantics (LIFO take, FIFO pop_top and
 * steal, peek, growth across many resizes checked against a reference model), then
 * concurrency: one owner pushing, taking and popping the top while thieves steal millions
 * of items, each of which must be taken exactly once, and a hammer on the last-element
 * race (a deque of one to three elements emptied by the owner and thieves at once).
 *
 * Items carry a plain (non-atomic) payload written before the push and checked and
 * rewritten by whoever takes the item, so ThreadSanitizer also checks the hand-off.
 * WEFT_TEST_SCALE (testutil.h) divides the iteration counts; when it is unset, an ASan
 * build divides them by 2, a TSan build by 8 and a run under valgrind by 10.
 * WEFT_DEQUE_SEED fixes the random seed.
 */
#include "deque.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "common.h"
#include "tap.h"
#include "testutil.h"

enum { MAX_THIEVES = 4 };

static long slow_tool_divisor = 1;
static uint64_t seed;

static long iterations(long count)
{
    return scaled(getenv("WEFT_TEST_SCALE") ? count : count / slow_tool_divisor);
}

static void *item_of(long i)
{
    return (void *)(uintptr_t)(i + 1);
}

/* The owner's pop of the oldest element: deque_pop_top_n for one. */
static void *deque_pop_top(deque *d)
{
    void *x;
    return deque_pop_top_n(d, &x, 1) ? x : NULL;
}

/* Spin politely: this machine may have fewer cores than threads (and valgrind runs one
 * thread at a time), so yield now and then. */
static void backoff(unsigned *spins)
{
    if (++*spins % 64 == 0)
        sched_yield();
    else
        cpu_relax();
}

/* ---- single-threaded semantics ------------------------------------------------------------ */

static void test_empty(void)
{
    deque d;
    void *x = NULL;
    cmp_ok(deque_init(&d, 2), ==, 0, "init");
    ok(deque_take(&d) == NULL, "take on empty is NULL");
    ok(deque_take(&d) == NULL, "take on empty again is NULL (indices do not wrap)");
    ok(deque_pop_top(&d) == NULL, "pop_top on empty is NULL");
    ok(deque_peek_bottom(&d) == NULL, "peek_bottom on empty is NULL");
    cmp_ok(deque_steal(&d, &x), ==, 0, "steal on empty returns 0");
    cmp_ok(deque_size(&d), ==, 0, "size of empty is 0");
    cmp_ok(deque_push(&d, item_of(7)), ==, 1, "push after take on empty works, and says size 1");
    cmp_ok(deque_size(&d), ==, 1, "size 1");
    ok(deque_take(&d) == item_of(7), "take returns it");
    ok(deque_take(&d) == NULL, "then empty again");
    cmp_ok(deque_size(&d), ==, 0, "size 0");
    deque_destroy(&d);
    cmp_ok(deque_init(&d, 63), ==, -ENOMEM, "init with an impossible capacity is -ENOMEM");
}

static void test_order(void)
{
    enum { N = 100 };
    deque d;
    int good;
    deque_init(&d, 3);
    for (long i = 0; i < N; i++) deque_push(&d, item_of(i));
    cmp_ok(deque_size(&d), ==, N, "size after %d pushes (grown from 8)", N);
    ok(deque_peek_bottom(&d) == item_of(N - 1), "peek_bottom sees the newest");
    cmp_ok(deque_size(&d), ==, N, "peek does not remove");
    good = 1;
    for (long i = N - 1; i >= 0; i--) good &= deque_take(&d) == item_of(i);
    ok(good && deque_take(&d) == NULL, "take is LIFO");

    for (long i = 0; i < N; i++) deque_push(&d, item_of(i));
    good = 1;
    for (long i = 0; i < N; i++) good &= deque_pop_top(&d) == item_of(i);
    ok(good && deque_pop_top(&d) == NULL, "pop_top is FIFO");

    for (long i = 0; i < 10; i++) deque_push(&d, item_of(i));
    void *batch[8];
    good = deque_pop_top_n(&d, batch, 4) == 4;
    for (long i = 0; i < 4; i++) good &= batch[i] == item_of(i);
    ok(good && deque_size(&d) == 6, "pop_top_n takes the oldest 4, oldest first");
    good = deque_pop_top_n(&d, batch, 8) == 6;
    for (long i = 0; i < 6; i++) good &= batch[i] == item_of(4 + i);
    ok(good && deque_pop_top_n(&d, batch, 8) == 0, "pop_top_n takes no more than there are");

    for (long i = 0; i < N; i++) deque_push(&d, item_of(i));
    good = 1;
    for (long i = 0; i < N; i++) {
        void *x = NULL;
        good &= deque_steal(&d, &x) == 1 && x == item_of(i);
    }
    void *x = NULL;
    ok(good && deque_steal(&d, &x) == 0, "steal is FIFO");

    deque_push(&d, item_of(1));
    deque_push(&d, item_of(2));
    deque_push(&d, item_of(3));
    ok(deque_pop_top(&d) == item_of(1), "mixed: pop_top takes the oldest");
    ok(deque_take(&d) == item_of(3), "mixed: take takes the newest");
    ok(deque_peek_bottom(&d) == item_of(2), "mixed: peek sees the one left");
    ok(deque_take(&d) == item_of(2) && deque_size(&d) == 0, "mixed: take empties it");
    deque_destroy(&d);
}

static void test_growth(void)
{
    enum { LOG2_N = 20, N = 1 << LOG2_N, FROM_FRONT = 1000 };
    deque d;
    deque_init(&d, 1);
    /* Move the indices off zero first, so the copies wrap around the buffer. */
    for (long i = 0; i < 5; i++) {
        deque_push(&d, item_of(N + i));
        deque_pop_top(&d);
    }
    int pushed = 1;
    for (long i = 0; i < N; i++) pushed &= deque_push(&d, item_of(i)) == i + 1;
    ok(pushed, "%d pushes from a capacity of 2 (%d resizes), each saying the new size", N,
       LOG2_N - 1);
    cmp_ok(deque_size(&d), ==, N, "size");
    int good = 1;
    for (long i = 0; i < FROM_FRONT; i++) good &= deque_pop_top(&d) == item_of(i);
    ok(good, "the oldest %d come back first from pop_top", FROM_FRONT);
    good = 1;
    for (long i = N - 1; i >= FROM_FRONT; i--) good &= deque_take(&d) == item_of(i);
    ok(good && deque_take(&d) == NULL, "the rest come back newest first from take");
    deque_destroy(&d);
}

/* Random operations against a plain array model: the deque holds model[head, tail). */
static void test_against_model(void)
{
    long ops = iterations(2000000);
    long *model = malloc(sizeof(long) * (size_t)ops);
    long head = 0, tail = 0, next = 0, mismatches = 0, max_size = 0;
    uint64_t rng = seed;
    deque d;
    deque_init(&d, 1);
    for (long op = 0; op < ops; op++) {
        uint64_t r = rng_next(&rng);
        /* Drift between growing and shrinking phases so the size wanders over decades. */
        int grow_phase = (op >> 14) & 1;
        unsigned dice = (unsigned)(r % 100);
        void *got = NULL;
        if (dice < (grow_phase ? 60u : 40u)) {
            model[tail++] = next;
            if (deque_push(&d, item_of(next++)) != tail - head) mismatches++;
        } else if (dice < 75) {
            got = deque_take(&d);
            if (got != (head < tail ? item_of(model[--tail]) : NULL)) mismatches++;
        } else if (dice < 88) {
            void *batch[4];
            int max = 1 + (int)((r >> 8) % 4);
            int n = deque_pop_top_n(&d, batch, max);
            if (n != (tail - head < max ? (int)(tail - head) : max)) mismatches++;
            for (int k = 0; k < n; k++)
                if (batch[k] != item_of(model[head++])) mismatches++;
        } else if (dice < 96) {
            int rc = deque_steal(&d, &got);
            if (rc != (head < tail) || (rc == 1 && got != item_of(model[head++]))) mismatches++;
        } else {
            got = deque_peek_bottom(&d);
            if (got != (head < tail ? item_of(model[tail - 1]) : NULL)) mismatches++;
        }
        if (deque_size(&d) != tail - head) mismatches++;
        if (tail - head > max_size) max_size = tail - head;
    }
    cmp_ok(mismatches, ==, 0, "%ld random operations agree with the model (size up to %ld)", ops,
           max_size);
    deque_destroy(&d);
    free(model);
}

/* ---- concurrency ---------------------------------------------------------------------------- */

typedef struct item {
    long id;       /* written by the pusher, checked by the taker */
    long taken_by; /* written by the taker: a second taker would be a data race */
} item;

typedef struct tally {
    long taken, lost_races, bad_payload;
} tally;

typedef struct stress {
    deque dq;
    item *items;
    _Atomic unsigned char *times_taken;
    atomic_int done;
    tally thief[MAX_THIEVES];
} stress;

typedef struct thief_arg {
    stress *s;
    int id;
} thief_arg;

static void record(stress *s, item *it, long taker, tally *t)
{
    long idx = it - s->items;
    if (it->id != idx) t->bad_payload++;
    it->taken_by = taker;
    atomic_fetch_add_explicit(&s->times_taken[idx], 1, memory_order_relaxed);
    t->taken++;
}

static void *stress_thief(void *arg)
{
    thief_arg *a = arg;
    stress *s = a->s;
    tally *t = &s->thief[a->id];
    unsigned spins = 0;
    for (;;) {
        void *x;
        int rc = deque_steal(&s->dq, &x);
        if (rc == 1) {
            record(s, x, a->id + 1, t);
        } else if (rc < 0) {
            t->lost_races++;
        } else if (atomic_load_explicit(&s->done, memory_order_acquire)) {
            break;
        } else {
            backoff(&spins);
        }
    }
    return NULL;
}

/* The owner pushes bursts (now and then a long one, to force growth) and removes a random
 * number from either end; a fresh deque of capacity 2 per phase makes the buffer grow
 * again and again while thieves are reading it. */
static void test_stress(long n, int thieves)
{
    enum { PHASES = 16, OWNER = MAX_THIEVES + 1 };
    stress *s = calloc(1, sizeof *s);
    s->items = malloc(sizeof(item) * (size_t)n);
    s->times_taken = calloc((size_t)n, 1);
    tally owner = {0};
    long push_failures = 0;
    uint64_t rng = seed ^ 0x5eed;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    for (int phase = 0; phase < PHASES; phase++) {
        long next = n * phase / PHASES, end = n * (phase + 1) / PHASES;
        pthread_t tid[MAX_THIEVES];
        thief_arg args[MAX_THIEVES];
        deque_init(&s->dq, 1);
        atomic_store(&s->done, 0);
        for (int i = 0; i < thieves; i++) {
            args[i] = (thief_arg){s, i};
            pthread_create(&tid[i], NULL, stress_thief, &args[i]);
        }
        while (next < end) {
            uint64_t r = rng_next(&rng);
            long burst = 1 + (long)(r % 32);
            if ((r >> 8) % 256 == 0) burst = 1 + (long)((r >> 16) % 4096);
            for (long k = 0; k < burst && next < end; k++, next++) {
                s->items[next] = (item){.id = next, .taken_by = 0};
                if (deque_push(&s->dq, &s->items[next]) < 0) push_failures++;
            }
            if ((r >> 24) % 64 == 0) sched_yield(); /* let thieves in, even under valgrind */
            long removals = (long)((r >> 32) % (uint64_t)(burst + 8));
            for (long k = 0; k < removals; k++) {
                void *batch[4];
                int n = 1 + (int)((r >> (40 + k % 20)) % 4);
                if ((r >> (40 + k % 20)) & 1) {
                    batch[0] = deque_take(&s->dq);
                    n = batch[0] != NULL;
                } else {
                    n = deque_pop_top_n(&s->dq, batch, n);
                }
                if (!n) break;
                for (int j = 0; j < n; j++) record(s, batch[j], OWNER, &owner);
            }
        }
        for (item *it; (it = deque_take(&s->dq));) record(s, it, OWNER, &owner);
        atomic_store_explicit(&s->done, 1, memory_order_release);
        for (int i = 0; i < thieves; i++) pthread_join(tid[i], NULL);
        deque_destroy(&s->dq);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);

    long never = 0, twice = 0, bad_payload = owner.bad_payload, stolen = 0, lost_races = 0;
    for (long i = 0; i < n; i++) {
        never += s->times_taken[i] == 0;
        twice += s->times_taken[i] > 1;
    }
    for (int i = 0; i < thieves; i++) {
        stolen += s->thief[i].taken;
        lost_races += s->thief[i].lost_races;
        bad_payload += s->thief[i].bad_payload;
    }
    note("%ld items in %.2f s: owner took %ld, %d thieves stole %ld (lost %ld races)", n,
         (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9, owner.taken, thieves,
         stolen, lost_races);
    cmp_ok(push_failures, ==, 0, "stress (%d thieves): every push succeeded", thieves);
    cmp_ok(never, ==, 0, "stress: no item lost");
    cmp_ok(twice, ==, 0, "stress: no item taken twice");
    cmp_ok(owner.taken + stolen, ==, n, "stress: owner and thieves took %ld in all", n);
    cmp_ok(bad_payload, ==, 0, "stress: every taker saw the pusher's payload");
    ok(stolen > 0, "stress: thieves stole something");
    free(s->times_taken);
    free(s->items);
    free(s);
}

/* The last-element race, round by round: the owner pushes one to three items, lets the
 * waiting thieves loose, and empties the deque from its end while they steal from theirs.
 * The owner waits a little before it starts, longer after it won the first item pushed and
 * shorter after a thief did, which keeps the two sides arriving at about the same time. */
typedef struct hammer {
    deque dq;
    item items[3];
    atomic_long round; /* published by the owner once the round's items are pushed */
    atomic_int acks;   /* thieves done with the round */
    atomic_int done;
    long taken[3][MAX_THIEVES + 1]; /* [item][taker]: per round, cleared by the owner */
    long wins[MAX_THIEVES + 1];     /* the first item pushed in a round, by taker */
    long errors[MAX_THIEVES + 1];   /* payloads from another round, by taker */
    long lost_races[MAX_THIEVES];   /* steals that returned -1 */
} hammer;

typedef struct hammer_arg {
    hammer *h;
    int id;
} hammer_arg;

static void *hammer_thief(void *arg)
{
    hammer_arg *a = arg;
    hammer *h = a->h;
    long seen = 0;
    for (;;) {
        unsigned spins = 0;
        long round;
        while ((round = atomic_load_explicit(&h->round, memory_order_acquire)) == seen) {
            if (atomic_load_explicit(&h->done, memory_order_acquire)) return NULL;
            backoff(&spins);
        }
        seen = round;
        void *x;
        int rc;
        while ((rc = deque_steal(&h->dq, &x)) != 0) {
            if (rc < 0) {
                h->lost_races[a->id]++;
                continue;
            }
            item *it = x;
            if (it->id != round) h->errors[a->id + 1]++;
            h->taken[it - h->items][a->id + 1]++;
            it->taken_by = a->id + 1;
        }
        atomic_fetch_add_explicit(&h->acks, 1, memory_order_release);
    }
}

static void test_hammer(long rounds, int thieves, int max_items, int use_pop_top)
{
    hammer *h = calloc(1, sizeof *h);
    pthread_t tid[MAX_THIEVES];
    hammer_arg args[MAX_THIEVES];
    uint64_t rng = seed ^ 0x4a33e5;
    long errors = 0, lost = 0, twice = 0;
    enum { MAX_DELAY = 256 }; /* pauses; a thief that lost its core must not slow every round */
    unsigned delay = 0;       /* the owner's head start for the thieves, tuned to make them tie */
    deque_init(&h->dq, 1);
    for (int i = 0; i < thieves; i++) {
        args[i] = (hammer_arg){h, i};
        pthread_create(&tid[i], NULL, hammer_thief, &args[i]);
    }
    for (long round = 1; round <= rounds; round++) {
        uint64_t r = rng_next(&rng);
        int count = 1 + (int)(r % (uint64_t)max_items);
        for (int k = 0; k < count; k++) {
            h->items[k] = (item){.id = round, .taken_by = -1};
            deque_push(&h->dq, &h->items[k]);
        }
        atomic_store_explicit(&h->round, round, memory_order_release);
        unsigned spins = 0;
        for (unsigned pause = delay + (unsigned)(r >> 32) % 4; pause; pause--) backoff(&spins);
        for (int k = 0;; k++) {
            void *got[3];
            int n = 1;
            if (use_pop_top && (r >> (40 + k)) & 1) /* the oldest one to three at once */
                n = deque_pop_top_n(&h->dq, got, 1 + (int)((r >> (50 + k)) % 3));
            else
                n = (got[0] = deque_take(&h->dq)) != NULL;
            if (!n) break;
            for (int j = 0; j < n; j++) {
                item *it = got[j];
                if (it->id != round) h->errors[0]++;
                h->taken[it - h->items][0]++;
                it->taken_by = 0;
            }
        }
        while (atomic_load_explicit(&h->acks, memory_order_acquire) < thieves) backoff(&spins);
        atomic_store_explicit(&h->acks, 0, memory_order_relaxed);
        for (int k = 0; k < count; k++) {
            long times = 0;
            for (int t = 0; t <= thieves; t++) times += h->taken[k][t];
            lost += times == 0;
            twice += times > 1;
            if (times == 1 && h->taken[k][0] != (h->items[k].taken_by == 0)) errors++;
            if (k == 0 && times == 1) {
                long winner = h->items[0].taken_by;
                h->wins[winner]++;
                if (winner == 0 && delay < MAX_DELAY)
                    delay++;
                else if (delay > 0)
                    delay--;
            }
            for (int t = 0; t <= thieves; t++) h->taken[k][t] = 0;
        }
    }
    atomic_store_explicit(&h->done, 1, memory_order_release);
    for (int i = 0; i < thieves; i++) pthread_join(tid[i], NULL);
    long thief_wins = 0, lost_races = 0;
    for (int t = 0; t <= thieves; t++) errors += h->errors[t];
    for (int t = 0; t < thieves; t++) lost_races += h->lost_races[t];
    for (int t = 1; t <= thieves; t++) thief_wins += h->wins[t];
    note("hammer (%d thieves, 1-%d items, %s): the first item pushed went to the owner "
         "%ld times, to a thief %ld times; thieves lost %ld races",
         thieves, max_items, use_pop_top ? "take and pop_top_n" : "take", h->wins[0], thief_wins,
         lost_races);
    cmp_ok(lost, ==, 0, "hammer %d/%d: no item lost in %ld rounds", thieves, max_items, rounds);
    cmp_ok(twice, ==, 0, "hammer %d/%d: no item taken twice", thieves, max_items);
    cmp_ok(errors, ==, 0, "hammer %d/%d: payloads and records agree", thieves, max_items);
    deque_destroy(&h->dq);
    free(h);
}

int main(void)
{
#if defined(WEFT_ASAN)
    slow_tool_divisor = 2;
#elif defined(WEFT_TSAN)
    slow_tool_divisor = 8;
#endif
    if (ON_VALGRIND()) slow_tool_divisor = 10;
    const char *env = getenv("WEFT_DEQUE_SEED");
    seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    seed |= 1; /* xorshift needs a non-zero state */
    note("seed %llu (WEFT_DEQUE_SEED); 8M stress items become %ld", (unsigned long long)seed,
         iterations(8000000));

    test_empty();
    test_order();
    test_growth();
    test_against_model();
    test_stress(iterations(8000000), 3);
    test_stress(iterations(4000000), MAX_THIEVES);
    test_hammer(iterations(400000), 1, 1, 0);
    test_hammer(iterations(200000), 2, 3, 1);
    done_testing();
}
