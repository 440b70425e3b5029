/*
 * course.h: the few helpers every course sample shares, kept tiny so each
 * sample still reads on its own beside its Python original.
 *
 *   time.time()          -> course_now()
 *   time.sleep(s)        -> course_sleep(s)
 *   Pool() / ThreadPool  -> course_executor("process" | "thread", workers, opts)
 */
#ifndef COURSE_H
#define COURSE_H

#include "config.h"

#include <cfutures.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Seconds on the monotonic clock: differences are elapsed times. */
static inline double course_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Python: time.sleep(s). Sleeps the whole time even across signals. */
static inline void course_sleep(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s};
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        continue;
}

/* True when this cfutures has a process pool (configure checked). */
static inline int course_have_process_pool(void)
{
#if HAVE_DECL_PROCESS_POOL_EXECUTOR_NEW
    return 1;
#else
    return 0;
#endif
}

/*
 * The executor a sample asked for: "thread" or "process" (a process pool
 * when this cfutures has one). Prints why on stderr and returns NULL when it
 * cannot make one. stdout is flushed first: a process pool forks, and a
 * child must not inherit (and later print again) what is still buffered.
 */
static inline executor_t *course_executor(const char *kind, int workers,
                                          const executor_options_t *base)
{
    executor_options_t o = {0};
    if (base)
        o = *base;
    if (workers > 0)
        o.max_workers = workers;
    fflush(stdout);
    fflush(stderr);
    executor_t *ex = NULL;
    if (strcmp(kind, "thread") == 0) {
        ex = thread_pool_executor_new(&o);
    } else if (strcmp(kind, "process") == 0) {
#if HAVE_DECL_PROCESS_POOL_EXECUTOR_NEW
        ex = process_pool_executor_new(&o);
#else
        fprintf(stderr, "this cfutures has no process pool yet: use the thread pool\n");
        return NULL;
#endif
    } else {
        fprintf(stderr, "unknown executor '%s': thread or process\n", kind);
        return NULL;
    }
    if (!ex)
        fprintf(stderr, "%s pool: %s\n", kind, future_strerror(-errno));
    return ex;
}

#endif /* COURSE_H */
