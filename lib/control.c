/*
 * control.c: stopping and resizing an executor (DESIGN.md "Controlling
 * work"): executor_shutdown_timed, executor_terminate_workers and
 * executor_set_max_workers. Layer: above executor, beside map; it reaches a
 * kind only through its ops table (kill_workers, which only a process pool
 * has; set_max_workers).
 *
 * DESIGN
 * executor_shutdown_timed is executor_shutdown(wait=false) followed by a
 * wait on the executor's idle condition (executor.c: nothing queued or
 * running, signalled when a counter falls to 0 after shutdown) with a
 * deadline, then for the workers to exit (ops->join_until: one may still run
 * its initializer when no task is left). In time, it joins the workers as
 * shutdown(wait) does. Too late,
 * it cancels every task not started, and a kind that can kill (the process
 * pool) kills its workers and is joined, so the killed tasks have failed
 * before it returns; a thread pool's threads are left to finish (a thread
 * cannot be killed) and executor_free joins them. Past the time (timed_out)
 * no wait is for user code: a done-callback on the process pool's manager
 * leaves the cancel and the kill to it for when the callback returns.
 */
#include "config.h"

#include <signal.h>

#include "executor.h"
#include "util.h"

int executor_shutdown_timed(executor_t *ex, double timeout, bool cancel_futures)
{
    if (!ex || !cf_timeout_valid(timeout) || cf_executor_on_own_thread(ex))
        return FUT_EINVAL;
    int64_t deadline = cf_deadline_after(timeout);
    executor_shutdown(ex, false, cancel_futures);
    if (cf_executor_wait_idle(ex, deadline) == 0 &&
        (!ex->ops->join_until || ex->ops->join_until(ex, deadline))) {
        cf_executor_join(ex);
        return 0;
    }
    atomic_store(&ex->timed_out, true);
    executor_shutdown(ex, false, true); /* nothing more starts */
    if (ex->ops->kill_workers) {
        ex->ops->kill_workers(ex, SIGTERM, false);
        /* Every killed task has failed then, unless a done-callback holds
           the pool's thread: executor_free joins it. */
        if (!ex->ops->join_until || ex->ops->join_until(ex, deadline))
            cf_executor_join(ex);
    }
    return FUT_ETIMEDOUT;
}

int executor_terminate_workers(executor_t *ex, int sig)
{
    if (!ex || sig <= 0 || sig >= NSIG || !ex->ops->kill_workers)
        return FUT_EINVAL;
    return ex->ops->kill_workers(ex, sig, true);
}

int executor_set_max_workers(executor_t *ex, int n)
{
    if (!ex || n < 1 || !ex->ops->set_max_workers)
        return FUT_EINVAL;
    return ex->ops->set_max_workers(ex, n);
}
