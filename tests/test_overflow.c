/*
 * test_overflow: a task that overflows its stack ends the process with a message naming
 * the task and its stack size (printed from the SIGSEGV handler on the worker's alternate
 * signal stack), not with a silent crash. Each case runs in a child process: this
 * program re-executes itself with the case's name and checks how the child died and
 * what it printed. errno also belongs to a task across suspensions and migrations.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "weft.h"

static volatile int bottomless = 1; /* the compiler cannot see that the recursion never ends */

static int depth(volatile char *prev, int n)
{
    volatile char frame[512];
    frame[0] = (char)n;
    if (prev) frame[1] = prev[0];
    if (!bottomless) return frame[0];
    return depth(frame, n + 1) + frame[1]; /* not a tail call: every frame stays */
}

static void *recurse_forever(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)depth(NULL, 0);
}

static void *overflow_child_main(void *arg)
{
    /* pinned: it runs on a 64 KiB stack of its own, never inline on the awaiter's */
    weft_spawn_opts o = {.name = arg, .stack_size = 64 * 1024, .worker = 1, .pinned = 1};
    weft_future *f = weft_spawn_ex(recurse_forever, NULL, &o);
    weft_await(f, NULL);
    return NULL;
}

static void *returns(void *arg)
{
    return arg;
}

/* Named tasks spawned back to back, pinned beside their spawner and all 64 KiB: each that
 * ends hands its stack to the next, unstarted one (the spawner awaits the last, so no
 * completion wakes it in between), and the last overflows it. The message must name the
 * last, not the task the stack was made for. */
static void *handover_child_main(void *arg)
{
    static const char *names[] = {"first", "second", NULL};
    weft_future *f[3];
    for (int i = 0; i < 3; i++) {
        weft_spawn_opts o = {.name = names[i] ? names[i] : arg, .stack_size = 64 * 1024,
                             .worker = weft_worker_id(), .pinned = 1};
        f[i] = weft_spawn_ex(names[i] ? returns : recurse_forever, NULL, &o);
    }
    for (int i = 2; i >= 0; i--) weft_await(f[i], NULL);
    return NULL;
}

/* Run `self case` in a child; return its wait status and what it wrote to stderr. */
static int run_case(const char *self, const char *name, char *err, size_t errlen)
{
    int fds[2];
    if (pipe(fds)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        execl(self, self, name, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t used = 0;
    ssize_t n;
    while (used + 1 < errlen && (n = read(fds[0], err + used, errlen - 1 - used)) > 0)
        used += (size_t)n;
    err[used] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

/* ---- errno across suspensions --------------------------------------------------------- */

/* glibc declares __errno_location() const, so a compiler may compute errno's address once
 * per function and reuse it after a suspension that moved the task to another thread:
 * errno must be reached through calls it cannot merge (weft.h says so to users). */
static __attribute__((noinline)) void errno_set(int e)
{
    __asm__ __volatile__("" ::: "memory");
    errno = e;
}

static __attribute__((noinline)) int errno_get(void)
{
    __asm__ __volatile__("" ::: "memory");
    return errno;
}

static void *errno_keeper(void *arg)
{
    int mine = (int)(intptr_t)arg, kept = 1;
    for (int i = 0; i < 200; i++) {
        errno_set(mine + i);
        if (i % 2) weft_yield();
        else weft_sleep(0.0001);
        if (errno_get() != mine + i) kept = 0;
    }
    return (void *)(intptr_t)kept;
}

static void *check_errno(void *arg)
{
    (void)arg;
    enum { N = 64 };
    weft_future *fs[N];
    for (int i = 0; i < N; i++) fs[i] = weft_spawn(errno_keeper, (void *)(intptr_t)(1000 * (i + 1)));
    int all = 1;
    for (int i = 0; i < N; i++) {
        void *r;
        if (weft_await(fs[i], &r) || !r) all = 0;
        weft_future_release(fs[i]);
    }
    ok(all, "errno belongs to each task across yields, sleeps and migrations");
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 2) { /* a child: overflow inside a named task */
        weft_config cfg;
        weft_config_default(&cfg);
        cfg.workers = 2;
        weft_run(strcmp(argv[1], "handed-over") ? overflow_child_main : handover_child_main,
                 argv[1], &cfg, NULL);
        return 0; /* not reached: the overflow aborts */
    }
    char err[4096];
    int status = run_case(argv[0], "deep-recursion", err, sizeof err);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "the overflowing process aborted");
    ok(strstr(err, "weft: stack overflow in task 'deep-recursion' (stack size 65536 bytes)") != NULL,
       "the message names the task and its stack size");
    if (!strstr(err, "stack size 65536")) diag("child's stderr: %s", err);
    status = run_case(argv[0], "handed-over", err, sizeof err);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
           strstr(err, "weft: stack overflow in task 'handed-over' (stack size 65536 bytes)"),
       "an overflow on a stack handed over by an ended task names the task that overflowed");
    if (!strstr(err, "'handed-over'")) diag("child's stderr: %s", err);

    weft_config cfg;
    weft_config_default(&cfg);
    if (!cfg.workers) cfg.workers = 4;
    cmp_ok(weft_run(check_errno, NULL, &cfg, NULL), "==", 0, "errno run");
    done_testing();
}
