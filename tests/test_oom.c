/*
 * test_oom: running out of memory is an error, never a crash, and loses nothing. With
 * the address space capped (RLIMIT_AS) a task spawns tasks that each hold a stack (they
 * wait on an event) until memory runs out, either way it can: weft_spawn returns NULL
 * with ENOMEM (no memory for the task), or the task ends with -ENOMEM (no memory for its
 * stack). Then the cap goes, the event is set, and every task that was spawned has ended,
 * with its own result or -ENOMEM; the runtime spawns and runs tasks as before.
 *
 * The cap is lifted before anything is reported. Under ASan the sanitizer's allocator must
 * return NULL instead of aborting, which __asan_default_options asks for.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tap.h"
#include "testutil.h"
#include "weft.h"

const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

enum { MAX_TASKS = 1 << 20, HEADROOM_MIB = 64 };

static weft_future *held[MAX_TASKS];

static void *hold(void *arg)
{
    weft_event *ev = arg;
    int r = weft_event_wait(ev);
    return r ? weft_fail(r) : (void *)(uintptr_t)1;
}

static void *one(void *arg)
{
    (void)arg;
    return (void *)(uintptr_t)1;
}

static long address_space_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = -1;
    if (f) {
        if (fscanf(f, "%ld", &pages) != 1) pages = -1;
        fclose(f);
    }
    return pages < 0 ? -1 : pages * sysconf(_SC_PAGESIZE);
}

struct outcome {
    int let_run; /* yield every 32 spawns, so the tasks start and take stacks */
    long spawned, spawn_enomem, spawn_other, ran, failed_enomem, failed_other, after;
    int big; /* the await of a task that could not get its stack, nor run inline */
};

static void *exhaust(void *arg)
{
    struct outcome *o = arg;
    weft_event *ev = weft_event_new();
    if (!ev) return weft_fail(-ENOMEM);
    struct rlimit old, cap;
    getrlimit(RLIMIT_AS, &old);
    cap = old;
    cap.rlim_cur = (rlim_t)address_space_bytes() + ((rlim_t)HEADROOM_MIB << 20);
    if (setrlimit(RLIMIT_AS, &cap)) return weft_fail(-errno);
    long n = 0;
    int out = 0;
    while (n < MAX_TASKS && !out) {
        weft_future *f = weft_spawn(hold, ev);
        if (!f) {
            if (errno == ENOMEM)
                o->spawn_enomem++;
            else
                o->spawn_other++;
            break;
        }
        held[n++] = f;
        if (o->let_run && n % 32 == 0) { /* stop at the first task that failed */
            weft_yield();
            for (long i = n - 32; i < n; i++)
                if (weft_done(held[i])) out = 1;
        }
    }
    setrlimit(RLIMIT_AS, &old);
    o->spawned = n;
    weft_event_set(ev);
    for (long i = 0; i < n; i++) {
        void *r = NULL;
        int err = weft_await(held[i], &r);
        if (!err && r == (void *)(uintptr_t)1)
            o->ran++;
        else if (err == -ENOMEM)
            o->failed_enomem++;
        else
            o->failed_other++;
        weft_future_release(held[i]);
    }
    weft_event_free(ev);
    for (int i = 0; i < 100; i++) { /* and it goes on */
        weft_future *f = weft_spawn(one, NULL);
        void *r = NULL;
        if (f && !weft_await(f, &r) && r == (void *)(uintptr_t)1) o->after++;
        if (f) weft_future_release(f);
    }
    /* A task that cannot get its stack, awaited by a task that cannot run it inline (it
     * asks for more stack than ours): its start fails while we suspend on it. The cap now
     * leaves room for the task (freed ones are cached) but not for its stack. */
    cap.rlim_cur = (rlim_t)address_space_bytes() + (16u << 20);
    if (setrlimit(RLIMIT_AS, &cap)) return weft_fail(-errno);
    weft_spawn_opts big = {.name = "big", .stack_size = 64u << 20};
    weft_future *f = weft_spawn_ex(one, NULL, &big);
    o->big = f ? weft_await(f, NULL) : 1; /* 1: the spawn was refused */
    weft_future_release(f);
    setrlimit(RLIMIT_AS, &old);
    return NULL;
}

/* ASan's allocator serves from address space it reserved at start-up, which the cap does
 * not reach: there only stacks (fresh mappings) run out. TSan's and valgrind's own
 * allocators abort the process when the cap stops them, so under those nothing here runs. */
extern void __asan_init(void) __attribute__((weak));
extern void __tsan_init(void) __attribute__((weak));

static void run_case(const char *name, unsigned workers, int let_run)
{
    struct outcome o = {.let_run = let_run};
    weft_rt *rt = rt_new_or_bail(workers);
    int r = run_in(rt, exhaust, &o, NULL);
    weft_rt_free(rt);
    cmp_ok(r, "==", 0, "%s: the task that ran out of memory ended normally", name);
    if (let_run) {
        ok(o.failed_enomem > 0 && o.spawn_other == 0,
           "%s: tasks that got no stack ended with -ENOMEM (%ld of them; %ld spawns refused "
           "with ENOMEM, %ld with another error)",
           name, o.failed_enomem, o.spawn_enomem, o.spawn_other);
    } else {
        skip(__asan_init != NULL, 1, "%s: ASan's allocator is not bound by RLIMIT_AS", name);
        ok(o.spawn_enomem == 1 && o.spawn_other == 0,
           "%s: weft_spawn refused with ENOMEM after %ld tasks (%ld other errors)", name, o.spawned,
           o.spawn_other);
        end_skip;
    }
    ok(o.ran + o.failed_enomem == o.spawned && o.failed_other == 0 && o.ran > 0,
       "%s: every spawned task ended: %ld spawned, %ld ran to the end, %ld ended with "
       "-ENOMEM, %ld otherwise",
       name, o.spawned, o.ran, o.failed_enomem, o.failed_other);
    cmp_ok(o.after, "==", 100, "%s: with memory back, tasks spawn and run as before", name);
    cmp_ok(o.big, "==", -ENOMEM, "%s: a task awaited while it could get no stack: -ENOMEM",
           name);
}

int main(void)
{
    plan(10);
    if (__tsan_init || ON_VALGRIND()) {
        skip(1, 10, "%s aborts when its own allocator meets RLIMIT_AS",
             __tsan_init ? "ThreadSanitizer" : "valgrind");
        end_skip;
        done_testing();
    }
    watchdog_arm("test_oom", 240);
    run_case("stacks run out (2 workers, tasks start as they are spawned)", 2, 1);
    run_case("task memory runs out (1 worker, no task starts meanwhile)", 1, 0);
    done_testing();
}
