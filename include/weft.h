/*
 * weft: a multi-threaded, work-stealing coroutine runtime with asyncio's vocabulary.
 *
 * Every worker thread is an event loop; tasks are stackful coroutines that any worker
 * may run; every primitive is safe across workers and from plain threads.
 *
 * Conventions: errors are negative errno values (0 = success); time is in seconds as
 * double; a negative timeout means "no timeout". A call that can wait suspends the
 * calling task inside a task, blocks the calling thread on a thread that is not a
 * runtime worker, and returns -EPERM on a worker thread outside any task.
 *
 * Tasks migrate between worker threads at their waiting calls. errno belongs to the task
 * (weft saves and restores it), but a compiler may keep the address of errno or of any
 * thread-local variable across a call within one function, so after a waiting call read
 * them only through a function that is not inlined; better, use the returned error codes.
 */
#ifndef WEFT_H
#define WEFT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

WEFT_API const char *weft_strerror(int err);

/* ---- Runtime ------------------------------------------------------------------------ */

typedef struct weft_rt weft_rt;
typedef void *(*weft_fn)(void *arg); /* a task body; its return value is the task's result */

typedef struct weft_config {
    unsigned workers;          /* 0: one per core, from the hardware topology (hwloc); env WEFT_WORKERS */
    size_t stack_size;         /* 0: default; env WEFT_STACK_SIZE */
    int pin_workers;           /* 1: pin each worker to its core; env WEFT_PIN */
    unsigned blocking_threads; /* 0: default cap of the default executor; env WEFT_BLOCKING_THREADS */
    double slow_task_warning;  /* seconds a task may run without suspending before a warning; <=0 off */
    const char *trace_path;    /* NULL: off; env WEFT_TRACE */
} weft_config;

WEFT_API void weft_config_default(weft_config *cfg);
WEFT_API int weft_run(weft_fn main, void *arg, const weft_config *cfg, void **result);
WEFT_API weft_rt *weft_rt_new(const weft_config *cfg);
WEFT_API int weft_rt_shutdown(weft_rt *rt, double timeout);
WEFT_API void weft_rt_free(weft_rt *rt);
WEFT_API weft_rt *weft_rt_current(void);
WEFT_API unsigned weft_workers(void);
WEFT_API int weft_worker_id(void);
WEFT_API double weft_now(void);

/* ---- Tasks and futures -------------------------------------------------------------- */

typedef struct weft_future weft_future;

typedef struct weft_spawn_opts {
    const char *name;  /* shown in traces, task dumps and slow-task warnings */
    size_t stack_size; /* 0: the runtime's default */
    int worker;        /* -1: anywhere; otherwise start on that worker */
    int pinned;        /* 1: never stolen from that worker */
} weft_spawn_opts;

/* A task spawned on a worker goes to that worker's LIFO slot and runs as soon as its
 * spawner suspends or ends (Tokio's rule: a hand-off stays on its core); the slot's
 * previous occupant moves to the worker's queue, where idle peers steal from. So a spawner
 * that computes for long after one spawn delays that child: weft_yield() lets it start. */
WEFT_API weft_future *weft_spawn(weft_fn fn, void *arg);
WEFT_API weft_future *weft_spawn_ex(weft_fn fn, void *arg, const weft_spawn_opts *opts);
WEFT_API weft_future *weft_rt_submit(weft_rt *rt, weft_fn fn, void *arg);
WEFT_API weft_future *weft_rt_submit_ex(weft_rt *rt, weft_fn fn, void *arg,
                                        const weft_spawn_opts *opts);
WEFT_API int weft_call_soon_threadsafe(weft_rt *rt, void (*cb)(void *), void *arg);

WEFT_API void *weft_fail(int err);
WEFT_API void weft_yield(void);
WEFT_API int weft_sleep(double seconds);
WEFT_API weft_future *weft_current(void);
WEFT_API int weft_cancelling(void);
WEFT_API int weft_uncancel(void);

WEFT_API int weft_await(weft_future *f, void **result);
WEFT_API int weft_cancel(weft_future *f);
WEFT_API int weft_done(const weft_future *f);
WEFT_API int weft_cancelled(const weft_future *f);
WEFT_API int weft_future_error(const weft_future *f);
WEFT_API void *weft_future_result(const weft_future *f);
WEFT_API void weft_future_retain(weft_future *f);
WEFT_API void weft_future_release(weft_future *f);

WEFT_API weft_future *weft_future_new(void);
WEFT_API int weft_future_set_result(weft_future *f, void *result);
WEFT_API int weft_future_set_error(weft_future *f, int err);
WEFT_API int weft_future_add_done_callback(weft_future *f,
                                           void (*cb)(weft_future *f, void *arg), void *arg);
WEFT_API const char *weft_task_name(const weft_future *f); /* NULL for plain futures */

/* ---- Composition -------------------------------------------------------------------- */

WEFT_API int weft_gather(weft_future *const *fs, size_t n, void **results, int *errors);
enum { WEFT_ALL_COMPLETED, WEFT_FIRST_COMPLETED, WEFT_FIRST_EXCEPTION };
WEFT_API int weft_wait(weft_future *const *fs, size_t n, int return_when, double timeout);
WEFT_API int weft_wait_for(weft_future *f, double timeout, void **result);
WEFT_API weft_future *weft_shield(weft_future *f);

typedef struct weft_as_completed weft_as_completed;
WEFT_API weft_as_completed *weft_as_completed_new(weft_future *const *fs, size_t n,
                                                  double timeout);
WEFT_API int weft_as_completed_next(weft_as_completed *it, weft_future **f);
WEFT_API void weft_as_completed_free(weft_as_completed *it);

typedef struct weft_timeout weft_timeout;
WEFT_API weft_timeout *weft_timeout_begin(double delay);
WEFT_API int weft_timeout_reschedule(weft_timeout *t, double delay);
WEFT_API int weft_timeout_end(weft_timeout *t);

typedef struct weft_taskgroup weft_taskgroup;
WEFT_API weft_taskgroup *weft_taskgroup_new(void);
WEFT_API weft_future *weft_taskgroup_spawn(weft_taskgroup *g, weft_fn fn, void *arg);
WEFT_API int weft_taskgroup_join(weft_taskgroup *g);
WEFT_API void weft_taskgroup_free(weft_taskgroup *g);

/* ---- Synchronisation ---------------------------------------------------------------- */

typedef struct weft_lock weft_lock;
WEFT_API weft_lock *weft_lock_new(void);
WEFT_API void weft_lock_free(weft_lock *l);
WEFT_API int weft_lock_acquire(weft_lock *l);
WEFT_API int weft_lock_release(weft_lock *l);
WEFT_API int weft_lock_locked(const weft_lock *l);

typedef struct weft_event weft_event;
WEFT_API weft_event *weft_event_new(void);
WEFT_API void weft_event_free(weft_event *e);
WEFT_API int weft_event_set(weft_event *e);
WEFT_API int weft_event_clear(weft_event *e);
WEFT_API int weft_event_is_set(const weft_event *e);
WEFT_API int weft_event_wait(weft_event *e);

typedef struct weft_cond weft_cond;
WEFT_API weft_cond *weft_cond_new(weft_lock *lock);
WEFT_API void weft_cond_free(weft_cond *c);
WEFT_API int weft_cond_acquire(weft_cond *c);
WEFT_API int weft_cond_release(weft_cond *c);
WEFT_API int weft_cond_wait(weft_cond *c);
WEFT_API int weft_cond_wait_for(weft_cond *c, int (*predicate)(void *arg), void *arg);
WEFT_API int weft_cond_notify(weft_cond *c, int n);
WEFT_API int weft_cond_notify_all(weft_cond *c);

typedef struct weft_sem weft_sem;
WEFT_API weft_sem *weft_sem_new(int value);
WEFT_API weft_sem *weft_bounded_sem_new(int value);
WEFT_API void weft_sem_free(weft_sem *s);
WEFT_API int weft_sem_acquire(weft_sem *s);
WEFT_API int weft_sem_release(weft_sem *s);
WEFT_API int weft_sem_locked(const weft_sem *s);

typedef struct weft_barrier weft_barrier;
WEFT_API weft_barrier *weft_barrier_new(int parties);
WEFT_API void weft_barrier_free(weft_barrier *b);
WEFT_API int weft_barrier_wait(weft_barrier *b);
WEFT_API int weft_barrier_reset(weft_barrier *b);
WEFT_API int weft_barrier_abort(weft_barrier *b);
WEFT_API int weft_barrier_parties(const weft_barrier *b);
WEFT_API int weft_barrier_n_waiting(const weft_barrier *b);
WEFT_API int weft_barrier_broken(const weft_barrier *b);

/* ---- Queues ------------------------------------------------------------------------- */

typedef struct weft_queue weft_queue;
WEFT_API weft_queue *weft_queue_new(size_t maxsize);
WEFT_API weft_queue *weft_lifo_queue_new(size_t maxsize);
WEFT_API weft_queue *weft_priority_queue_new(size_t maxsize,
                                             int (*cmp)(const void *a, const void *b));
WEFT_API void weft_queue_free(weft_queue *q);
WEFT_API int weft_queue_put(weft_queue *q, void *item);
WEFT_API int weft_queue_get(weft_queue *q, void **item);
WEFT_API int weft_queue_put_nowait(weft_queue *q, void *item);
WEFT_API int weft_queue_get_nowait(weft_queue *q, void **item);
WEFT_API int weft_queue_task_done(weft_queue *q);
WEFT_API int weft_queue_join(weft_queue *q);
WEFT_API int weft_queue_shutdown(weft_queue *q, int immediate);
WEFT_API size_t weft_queue_qsize(const weft_queue *q);
WEFT_API size_t weft_queue_maxsize(const weft_queue *q);
WEFT_API int weft_queue_empty(const weft_queue *q);
WEFT_API int weft_queue_full(const weft_queue *q);

/* ---- Blocking work: the executor bridge --------------------------------------------- */

typedef struct weft_executor weft_executor;
WEFT_API weft_executor *weft_executor_new(unsigned max_threads);
WEFT_API int weft_executor_free(weft_executor *ex, int wait);
WEFT_API weft_future *weft_run_in_executor(weft_executor *ex, weft_fn fn, void *arg);
WEFT_API weft_future *weft_to_thread(weft_fn fn, void *arg);

/* ---- Callbacks and timers ----------------------------------------------------------- */

typedef struct weft_timer weft_timer;
WEFT_API int weft_call_soon(void (*cb)(void *), void *arg);
WEFT_API weft_timer *weft_call_later(double delay, void (*cb)(void *), void *arg);
WEFT_API weft_timer *weft_call_at(double when, void (*cb)(void *), void *arg);
WEFT_API int weft_timer_cancel(weft_timer *t);

/* ---- I/O on the per-core event loops ------------------------------------------------ */

enum { WEFT_READABLE = 1, WEFT_WRITABLE = 2 };
enum { WEFT_REUSEPORT = 1 };
WEFT_API int weft_wait_fd(int fd, int events, double timeout);
WEFT_API ssize_t weft_read(int fd, void *buf, size_t len);
WEFT_API ssize_t weft_write(int fd, const void *buf, size_t len);
WEFT_API int weft_accept(int listen_fd, struct sockaddr *addr, socklen_t *addrlen);
WEFT_API int weft_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
WEFT_API int weft_tcp_listen(const char *host, int port, int backlog, int flags);
WEFT_API int weft_tcp_connect(const char *host, int port, double timeout);
WEFT_API int weft_close(int fd);

/* ---- Observability ------------------------------------------------------------------ */

typedef struct weft_worker_stats {
    uint64_t tasks_run, steals, stolen_from, parks, io_polls, timers_fired, max_queue_depth;
} weft_worker_stats;
WEFT_API int weft_stats(weft_rt *rt, weft_worker_stats *out, unsigned max_workers);
WEFT_API int weft_dump_tasks(weft_rt *rt, FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_H */
