/*
 * future.h: the library's own view of a future. Only future.c touches
 * struct future; executors and waiters go through these functions. Layer:
 * above util and waiter; it knows executors only through the hooks table
 * its creator gives it.
 */
#ifndef CF_FUTURE_H
#define CF_FUTURE_H

#include <cfutures.h>

#include <stdarg.h>
#include <stdlib.h>

#include "util.h"
#include "waiter.h"

/* Largest result kept inside the future itself (no allocation). */
#define CF_INLINE_MAX 8

/*
 * How a future reaches whoever runs it, without knowing who that is: its
 * creator (executor.c) hands a const table to cf_future_alloc, and
 * future_cancel calls these with the future's extra bytes (the work item).
 * Each may be NULL. All but `cancelled` are called under the future's lock:
 * only atomics.
 */
struct cf_future_hooks {
    /*
     * future_cancel is about to cancel the pending future: false means the
     * work has started already (the future is then not cancelled). After
     * true, cancelled() always follows. @stop: a started task is asked to
     * stop (future_cancel); false leaves it alone (cf_future_revoke).
     */
    bool (*try_cancel)(void *extra, bool stop);
    /*
     * After try_cancel said true: @won is whether the future is now
     * cancelled (false: a worker started it in between). Called after the
     * waiters were told, without the lock, and before the done-callbacks
     * run (executor.c's prepared work relies on that order: a callback may
     * drop the last reference to what the hook reads). A waiter may already
     * have seen the future cancelled: whatever the hook touches must be kept
     * alive by try_cancel until it ran (executor.c holds a reference to the
     * executor).
     */
    void (*cancelled)(void *extra, bool won);
    /* future_cancel was called while the future ran: ask the task to stop. */
    void (*stop)(void *extra);
};

/*
 * A pending future with @extra bytes after it for a work item (aligned for
 * pointers and doubles) and @hooks (NULL, or a table that outlives it; only
 * with @extra). One reference.
 */
future_t *cf_future_alloc(size_t extra, const struct cf_future_hooks *hooks);
void *cf_future_extra(future_t *f);
future_t *cf_future_from_extra(void *extra);

/*
 * A 32-bit word of a future with extra bytes, 0 at first, that belongs to
 * its creator: the word just before the extra bytes (future.c asserts it),
 * so reached without a call. The executor keeps a task's priority there: in
 * its work item it would push a pending task past W5's 128-byte chunk.
 */
static inline int32_t *cf_future_word(void *extra)
{
    return (int32_t *)extra - 1;
}

/* future_set_result and future_set_running_or_notify_cancel for the
   executors: also on the futures they own (with hooks), which the public
   calls refuse. */
int cf_future_set_result(future_t *f, void *data, size_t len, void (*free_fn)(void *));
int cf_future_set_running(future_t *f);
/* Completes @f with up to CF_INLINE_MAX bytes copied into the future. */
int cf_future_set_result_inline(future_t *f, const void *bytes, size_t len);

/*
 * The message of a failure whose printf format vsnprintf could not render
 * (EILSEQ: a wide string with no multibyte form; EOVERFLOW: over INT_MAX
 * bytes): future_set_exception, task_raise.
 */
#define CF_BAD_FORMAT_MSG "(the error message could not be formatted)"

/*
 * Fails @f (pending or running) with @status; @msg is copied (NULL: "").
 * Returns 0, or FUT_ESTATE if @f was finished or cancelled already.
 */
int cf_future_fail(future_t *f, int status, int code, int exit_status, int sig,
                   const char *msg);
int cf_future_failv(future_t *f, int status, int code, const char *fmt, va_list ap)
    CF_PRINTF(4, 0);

/*
 * Fails @f FUT_EDEADLINE with the one message every executor kind uses
 * (its own time limit passed). As cf_future_fail: 0 or FUT_ESTATE.
 */
int cf_future_expire(future_t *f);

/* Watches @f: true if linked (f not done), false if f is done already. */
bool cf_future_watch(future_t *f, struct cf_wnode *n);
/* Stops watching; a no-op if the node was notified already. */
void cf_future_unwatch(future_t *f, struct cf_wnode *n);

/*
 * A done-callback node allocated ahead (NULL when out of memory), so that
 * adding the callback later cannot fail: cf_future_add_done_callback_node
 * takes it (future_add_done_callback's rules), cf_future_cb_free returns it.
 */
void *cf_future_cb_alloc(void);
static inline void cf_future_cb_free(void *node)
{
    free(node);
}
void cf_future_add_done_callback_node(future_t *f, future_callback_fn cb, void *ud,
                                      void *node);
/*
 * Takes back a callback added with @node that has not started: true if it
 * was still waiting (it will never run; free @node with cf_future_cb_free),
 * false if @f's completion already took it (it runs or ran). The caller
 * must know that @node was added to @f and that @f is alive (a reference).
 */
bool cf_future_take_callback_node(future_t *f, void *node);

/*
 * How executor.c and compose.c join a future to a completion_queue_t
 * (submit_options_t.queue) without knowing cqueue.c: every queue starts
 * with a struct cf_queue_head whose ops do it in two steps, so that nothing
 * can fail once the task went out. reserve gives memory for one entry
 * and counts it pending in @q (0, or FUT_ENOMEM), commit adds @f with it
 * (cannot fail), unreserve gives it back. Reserve before the submit, so
 * that the queue waits for a future whose task ends before commit.
 */
struct cf_queue_ops {
    int (*reserve)(completion_queue_t *q, void **res);
    void (*commit)(completion_queue_t *q, future_t *f, void *res);
    void (*unreserve)(void *res);
};

struct cf_queue_head {
    const struct cf_queue_ops *ops; /* immutable */
};

static inline const struct cf_queue_ops *cf_queue_ops_of(completion_queue_t *q)
{
    return ((struct cf_queue_head *)q)->ops;
}

/*
 * This thread has just woken an executor that slept (the process pool's
 * manager): its next blocking wait skips the sched_yield() turns and sleeps
 * at once. Yielding would keep the thread runnable on this CPU, so the
 * manager's own wake-up of a worker (a pipe write, which the kernel places
 * on the waker's CPU only when nothing else runs there) would go to the
 * other CPU, idle and halted, and cost tens of microseconds (bench W7).
 */
void cf_future_sleep_next_wait(void);

/*
 * Brackets the done-callbacks this thread runs from now on: @before is
 * called before the first of a run and @after after the last, once for the
 * outermost run (callbacks that complete other futures run theirs inside).
 * A pool's worker sets it around a task's completion: while user callbacks
 * run, the worker is not free for work (one may wait for a task it submits).
 * NULL: none. The guard must outlive its setting.
 */
struct cf_callback_guard {
    void (*before)(void *ctx);
    void (*after)(void *ctx);
    void *ctx;
};
void cf_future_guard_callbacks(const struct cf_callback_guard *g);

/*
 * Cancels @f only if its task has not started, as future_cancel, but a
 * started task is not asked to stop (task_should_stop stays false): an MPI
 * rank gives back a task it was sent and has not started (lib/mpi/).
 * True if @f is cancelled.
 */
bool cf_future_revoke(future_t *f);

/* Finished with an error (not cancelled). Lock-free. */
bool cf_future_failed(const future_t *f);
/*
 * @f is RUNNING, or finished after it was (its task started: a future
 * failed while still PENDING never ran). Lock-free. An MPI rank whose local
 * pool broke gives back only the tasks that never ran (lib/mpi/relay.c).
 */
bool cf_future_ran(const future_t *f);
/* future_cancel was called while it ran. Lock-free. */
bool cf_future_stop_requested(const future_t *f);

#endif /* CF_FUTURE_H */
