/*
 * test_compose_races: gather, wait, wait_for, as_completed, timeout scopes and task groups
 * under cancellations fired at random moments, from a task and from a foreign thread, on
 * four workers and on one; a second foreign thread runs its own blocking gathers, waits
 * and wait_fors meanwhile.
 *
 * Each job spawns children: short ones that return or fail after a few microseconds, and
 * long ones that end only when cancelled (some swallow it). Checked per job:
 *   - every wait returns one of the values its contract allows;
 *   - a gather in errors mode or a task group returns only when every child is done; after
 *     a gather was cancelled, every child ends without any further help (nothing left
 *     running); wait_for returns only once its future is done;
 *   - wait and as_completed never end a long child;
 *   - at the end every child ends, and every reference is released (ASan and valgrind show
 *     a leaked or doubly released future).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "tap.h"
#include "testutil.h"
#include "weft.h"

static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "Bail out! watchdog: a wait never ended\n";
    ssize_t n = write(1, msg, sizeof msg - 1);
    (void)n;
    _exit(1);
}

enum { JOBS = 48, MAX_KIDS = 20 };
enum { K_RETURN, K_FAIL, K_LONG, K_LONG_SWALLOW };
enum {
    J_GATHER_ALL,
    J_GATHER_FIRST,
    J_WAIT,
    J_WAIT_FOR,
    J_AS_COMPLETED,
    J_TASKGROUP,
    J_SCOPED_GATHER,
    J_KINDS
};

static atomic_long violations, started_jobs, finished_jobs, outcomes[J_KINDS][4];

static void violation(const char *what, int job_kind, int r)
{
    if (atomic_fetch_add(&violations, 1) < 10)
        diag("violation: %s (job %d, r %d)", what, job_kind, r);
}

static void *kid_body(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    int kind = (int)(v & 3);
    unsigned us = (unsigned)(v >> 2) % 300;
    switch (kind) {
    case K_RETURN:
        if (us % 2) weft_yield();
        return weft_sleep(us * 1e-6) ? weft_fail(-ECANCELED) : (void *)1;
    case K_FAIL:
        weft_sleep(us * 1e-6);
        return weft_fail(-EIO);
    case K_LONG:
        return weft_fail(weft_sleep(60) ? -ECANCELED : -EPROTO);
    default:
        weft_sleep(60);
        return (void *)7;
    }
}

typedef struct job {
    int kind;
    unsigned seed;
    weft_future *kids[MAX_KIDS];
    int kid_kind[MAX_KIDS];
    int n;
} job;

static int long_kid_ended(job *j)
{
    for (int i = 0; i < j->n; i++) {
        if (j->kid_kind[i] >= K_LONG && weft_done(j->kids[i])) return 1;
    }
    return 0;
}

static int all_done(job *j)
{
    for (int i = 0; i < j->n; i++) {
        if (!weft_done(j->kids[i])) return 0;
    }
    return 1;
}

/* Wait (through further cancellations of this job) until every child is done, or 20 s. */
static int kids_end(job *j)
{
    double until = weft_now() + 20;
    while (!all_done(j) && weft_now() < until)
        weft_wait(j->kids, (size_t)j->n, WEFT_ALL_COMPLETED, 0.05);
    return all_done(j);
}

static void spawn_kids(job *j, weft_taskgroup *g)
{
    j->n = 1 + (int)(rand_r(&j->seed) % (rand_r(&j->seed) % 4 ? 6 : MAX_KIDS));
    for (int i = 0; i < j->n; i++) {
        int kind = (int)(rand_r(&j->seed) % 4);
        uintptr_t arg = (uintptr_t)kind | (uintptr_t)(rand_r(&j->seed) % 1000) << 2;
        j->kid_kind[i] = kind;
        j->kids[i] =
            g ? weft_taskgroup_spawn(g, kid_body, (void *)arg) : weft_spawn(kid_body, (void *)arg);
        if (g && j->kids[i]) weft_future_retain(j->kids[i]);
        if (!j->kids[i]) { /* the group was aborted already: a child failed */
            j->n = i;
            return;
        }
    }
}

static double random_timeout(job *j)
{
    unsigned r = rand_r(&j->seed) % 8;
    return r == 0 ? -1 : r == 1 ? 0 : (double)(rand_r(&j->seed) % 500) * 1e-6;
}

static void count(int kind, int r)
{
    int slot = r == 0 ? 0 : r == -ECANCELED ? 1 : r == -ETIMEDOUT ? 2 : 3;
    atomic_fetch_add(&outcomes[kind][slot], 1);
}

static void *job_body(void *arg)
{
    job *j = arg;
    atomic_fetch_add(&started_jobs, 1);
    void *res[MAX_KIDS];
    int errs[MAX_KIDS], r = 0;
    weft_taskgroup *g = j->kind == J_TASKGROUP ? weft_taskgroup_new() : NULL;
    spawn_kids(j, g);
    size_t n = (size_t)j->n;
    switch (j->kind) {
    case J_GATHER_ALL:
        r = weft_gather(j->kids, n, res, errs);
        if (r != 0 && r != -ECANCELED) violation("gather(errors) result", j->kind, r);
        if (!all_done(j)) violation("gather(errors) returned before its children", j->kind, r);
        break;
    case J_GATHER_FIRST:
        r = weft_gather(j->kids, n, res, NULL);
        if (r != 0 && r != -ECANCELED && r != -EIO) violation("gather result", j->kind, r);
        if (r == -ECANCELED && !kids_end(j)) violation("a child left running", j->kind, r);
        break;
    case J_WAIT: {
        int when = (int)(rand_r(&j->seed) % 3);
        r = weft_wait(j->kids, n, when, random_timeout(j));
        if (r != -ECANCELED && (r < 0 || r > (int)n)) violation("wait result", j->kind, r);
        if (long_kid_ended(j)) violation("wait ended a long child", j->kind, r);
        r = r > 0 ? 0 : r;
        break;
    }
    case J_WAIT_FOR: {
        void *v = NULL;
        double t = random_timeout(j);
        r = weft_wait_for(j->kids[0], t, &v);
        if (r != 0 && r != -ECANCELED && r != -ETIMEDOUT && r != -EIO)
            violation("wait_for result", j->kind, r);
        if (t > 0 && !weft_done(j->kids[0])) violation("wait_for returned early", j->kind, r);
        break;
    }
    case J_AS_COMPLETED: {
        weft_as_completed *it = weft_as_completed_new(j->kids, n, random_timeout(j));
        weft_future *f;
        while ((r = weft_as_completed_next(it, &f)) == 0) {
        }
        if (r != -ENOENT && r != -ECANCELED && r != -ETIMEDOUT)
            violation("as_completed result", j->kind, r);
        r = r == -ENOENT ? 0 : r;
        if (long_kid_ended(j)) violation("as_completed ended a long child", j->kind, r);
        weft_as_completed_free(it);
        break;
    }
    case J_TASKGROUP:
        r = weft_taskgroup_join(g);
        if (r != 0 && r != -ECANCELED && r != -EIO) violation("join result", j->kind, r);
        if (!all_done(j)) violation("join returned before its children", j->kind, r);
        break;
    default: {
        weft_timeout *t = weft_timeout_begin(random_timeout(j));
        r = weft_gather(j->kids, n, res, errs);
        if (r != 0 && r != -ECANCELED) violation("scoped gather result", j->kind, r);
        if (!all_done(j)) violation("scoped gather returned before its children", j->kind, r);
        int e = weft_timeout_end(t);
        if (e != 0 && e != -ETIMEDOUT && e != -ECANCELED) violation("scope end", j->kind, e);
        if (e == -ETIMEDOUT) r = -ETIMEDOUT;
        break;
    }
    }
    count(j->kind, r);
    for (int i = 0; i < j->n; i++) weft_cancel(j->kids[i]);
    if (!kids_end(j)) violation("a child never ended", j->kind, 0);
    for (int i = 0; i < j->n; i++) weft_future_release(j->kids[i]);
    if (g) weft_taskgroup_free(g);
    atomic_fetch_add(&finished_jobs, 1);
    return NULL;
}

/* ---- cancellers ------------------------------------------------------------------------- */

static _Atomic(weft_future *) job_tasks[JOBS];
static atomic_int round_over, threads_done;

static void *task_canceller(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&round_over)) {
        weft_future *t = atomic_load(&job_tasks[rand_r(&seed) % JOBS]);
        if (t) weft_cancel(t);
        weft_sleep((rand_r(&seed) % 200) * 1e-6);
    }
    return NULL;
}

/* The job handles stay valid until both threads said they are done with them. */
static void *thread_canceller(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&round_over)) {
        weft_future *t = atomic_load(&job_tasks[rand_r(&seed) % JOBS]);
        if (t) weft_cancel(t);
        usleep(rand_r(&seed) % 150);
    }
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

/* A foreign thread that waits on tasks itself (blocking), with deadlines of its own. */
static weft_rt *the_rt;

static void *thread_waiter(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&round_over)) {
        weft_future *t[3];
        for (int i = 0; i < 3; i++) {
            uintptr_t kind = rand_r(&seed) % 3 ? K_RETURN : K_LONG;
            uintptr_t arg = kind | (uintptr_t)(rand_r(&seed) % 400) << 2;
            t[i] = weft_rt_submit(the_rt, kid_body, (void *)arg);
        }
        int r, errs[3];
        switch (rand_r(&seed) % 3) {
        case 0:
            r = weft_wait(t, 3, WEFT_FIRST_COMPLETED, 0.0002);
            if (r < 0 || r > 3) violation("thread wait", -1, r);
            break;
        case 1:
            r = weft_wait_for(t[0], 0.0001, NULL);
            if ((r != 0 && r != -ETIMEDOUT) || !weft_done(t[0]))
                violation("thread wait_for", -1, r);
            break;
        default:
            for (int i = 0; i < 3; i++) weft_cancel(t[i]);
            r = weft_gather(t, 3, NULL, errs);
            if (r != 0) violation("thread gather", -1, r);
            break;
        }
        for (int i = 0; i < 3; i++) {
            weft_cancel(t[i]);
            weft_await(t[i], NULL);
            weft_future_release(t[i]);
        }
    }
    atomic_fetch_add(&threads_done, 1);
    return NULL;
}

/* ---- rounds ------------------------------------------------------------------------------ */

static void *rounds(void *arg)
{
    long nrounds = (long)(intptr_t)arg;
    static job jobs[JOBS];
    the_rt = weft_rt_current();
    for (long round = 0; round < nrounds; round++) {
        atomic_store(&round_over, 0);
        atomic_store(&threads_done, 0);
        for (int i = 0; i < JOBS; i++) {
            jobs[i].kind = (int)((i + round) % J_KINDS);
            jobs[i].seed = (unsigned)(round * JOBS + i + 1);
            jobs[i].n = 0;
            atomic_store(&job_tasks[i], weft_spawn(job_body, &jobs[i]));
        }
        pthread_t canceller, waiter;
        pthread_create(&canceller, NULL, thread_canceller, (void *)(uintptr_t)(round + 11));
        pthread_create(&waiter, NULL, thread_waiter, (void *)(uintptr_t)(round + 13));
        weft_future *c = weft_spawn(task_canceller, (void *)(uintptr_t)(round + 17));
        weft_sleep(0.003);
        /* sweep: cancel what still runs until every job has ended (long children only end
         * when their job is cancelled) */
        double until = weft_now() + 60;
        for (;;) {
            int running = 0;
            for (int i = 0; i < JOBS; i++) {
                weft_future *t = atomic_load(&job_tasks[i]);
                if (!weft_done(t)) {
                    running++;
                    weft_cancel(t);
                }
            }
            if (!running) break;
            if (weft_now() > until) {
                violation("jobs still running after 60 s", -1, running);
                break;
            }
            weft_sleep(0.002);
        }
        atomic_store(&round_over, 1);
        weft_await(c, NULL);
        weft_future_release(c);
        /* the threads may need this worker: poll for them rather than block it */
        while (atomic_load(&threads_done) < 2) weft_sleep(0.001);
        pthread_join(canceller, NULL);
        pthread_join(waiter, NULL);
        for (int i = 0; i < JOBS; i++) weft_future_release(atomic_exchange(&job_tasks[i], NULL));
    }
    return NULL;
}

int main(void)
{
    signal(SIGALRM, watchdog);
    alarm(280);
    weft_config cfg;
    weft_config_default(&cfg);
    long nrounds = scaled(400);
    unsigned counts[2] = {4, 1};
    for (int i = 0; i < 2; i++) {
        cfg.workers = counts[i];
        cmp_ok(weft_run(rounds, (void *)(intptr_t)nrounds, &cfg, NULL), "==", 0,
               "%ld rounds of %d jobs on %u worker(s)", nrounds, JOBS, counts[i]);
        cmp_ok(atomic_load(&finished_jobs), "==", atomic_load(&started_jobs),
               "every job that started finished (the others were cancelled before they ran)");
    }
    cmp_ok(atomic_load(&violations), "==", 0, "no violation");
    note("%ld jobs ran, the others were cancelled before they started", atomic_load(&started_jobs));
    static const char *names[J_KINDS] = {"gather(errors)", "gather",    "wait",         "wait_for",
                                         "as_completed",   "taskgroup", "scoped gather"};
    for (int k = 0; k < J_KINDS; k++)
        note("%-14s ok %ld, cancelled %ld, timed out %ld, other %ld", names[k],
             atomic_load(&outcomes[k][0]), atomic_load(&outcomes[k][1]),
             atomic_load(&outcomes[k][2]), atomic_load(&outcomes[k][3]));
    done_testing();
}
