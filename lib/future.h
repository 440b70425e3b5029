/*
 * future.h: the library's own view of a future. Only future.c touches
 * struct future; executors and waiters go through these functions.
 */
#ifndef CF_FUTURE_H
#define CF_FUTURE_H

#include <cfutures.h>

#include <stdarg.h>

#include "util.h"

struct cf_waiter;

/*
 * One waiter watching one future (waiters.c). The future links it into its
 * waiter list; completion unlinks it and calls cf_waiter_notify() while
 * holding the future's lock, so once cf_future_unwatch() returned no notify
 * for that node is in progress.
 */
struct cf_wnode {
    struct cf_wnode *next, *prev; /* the future's waiter list: future's lock */
    struct cf_waiter *waiter;     /* immutable once watched */
    future_t *f;                  /* immutable once watched */
    struct cf_wnode *ready_next;  /* the waiter's ready list: waiter's lock */
    bool linked;                  /* in the future's list: future's lock */
    bool yielded;                 /* as_completed: handed out; its owner only */
};

/* Largest result kept inside the future itself (no allocation). */
#define CF_INLINE_MAX 8

/*
 * A pending future with @extra bytes after it for the executor's work item
 * (aligned for pointers and doubles). One reference. A future with extra
 * calls cf_work_cancelled() when future_cancel cancels it while pending.
 */
future_t *cf_future_alloc(size_t extra);
void *cf_future_extra(future_t *f);
future_t *cf_future_from_extra(void *extra);

/* Completes @f with up to CF_INLINE_MAX bytes copied into the future. */
int cf_future_set_result_inline(future_t *f, const void *bytes, size_t len);

/*
 * Fails @f (pending or running) with @status; @msg is copied (NULL: "").
 * Returns 0, or FUT_ESTATE if @f was finished or cancelled already.
 */
int cf_future_fail(future_t *f, int status, int code, int exit_status, int sig,
                   const char *msg);
int cf_future_failv(future_t *f, int status, int code, const char *fmt, va_list ap)
    CF_PRINTF(4, 0);

/* Watches @f: true if linked (f not done), false if f is done already. */
bool cf_future_watch(future_t *f, struct cf_wnode *n);
/* Stops watching; a no-op if the node was notified already. */
void cf_future_unwatch(future_t *f, struct cf_wnode *n);

/* Finished with an error (not cancelled). Lock-free. */
bool cf_future_failed(const future_t *f);
/* future_cancel was called while it ran. Lock-free. */
bool cf_future_stop_requested(const future_t *f);

/* Provided by executor.c: a future with a work item was cancelled while pending. */
void cf_work_cancelled(void *extra);
/*
 * Provided by executor.c: future_cancel is about to cancel a pending future
 * with a work item (called under the future's lock). False: the work has
 * started already and the future is not cancelled.
 */
bool cf_work_try_cancel(void *extra);
/* Provided by executor.c: future_cancel was called on a running future with a work item. */
void cf_work_stop(void *extra);

#endif /* CF_FUTURE_H */
