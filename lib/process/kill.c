/*
 * kill.c: killing a process pool's workers on purpose:
 * executor_terminate_workers (Python 3.14 terminate_workers / kill_workers)
 * and the last step of executor_shutdown_timed. The rest of the pool is
 * described in internal.h.
 *
 * DESIGN
 * The caller (any thread) asks the manager through kill_req / kill_done,
 * as shutdown(cancel_futures) does through cancel_req / cancel_done, and
 * waits until the manager has acted. The manager sets `terminating` (a death
 * from now on is one we asked for: a started task fails FUT_EWORKER, never
 * FUT_EBROKEN, and no death breaks the pool on its own), takes back every
 * task sent and not started, signals every worker and arms a SIGKILL
 * KILL_GRACE_NS later for a worker that survives the signal. When asked to
 * break the pool it marks it broken and fails every task not started with
 * FUT_EBROKEN; otherwise (shutdown_timed, after cancelling the queue) the
 * tasks not started are cancelled. Started tasks fail when their worker's
 * death is reported (cf_pp_finalize), and the manager, with nothing left to
 * run, leaves once every worker is gone.
 *
 * Done-callbacks run on the manager: user code that may block for ever.
 * While one runs (`calling`), executor_shutdown_timed past its time gives
 * up waiting: pool.c's join_until says the pool did not end in time, and the
 * kill it then asks for is done when the callback returns (it does not wait
 * for the manager here, nor for its exit: executor_free joins it).
 */
#include "config.h"

#include <limits.h>
#include <signal.h>

#include "internal.h"
#include "pump.h"

static void callbacks_before(void *arg)
{
    atomic_store(&((struct process_pool *)arg)->calling, true);
}

static void callbacks_after(void *arg)
{
    atomic_store(&((struct process_pool *)arg)->calling, false);
}

void cf_pp_manager_bind(struct process_pool *p)
{
    cf_executor_bind_thread(&p->base);
    p->cb_guard = (struct cf_callback_guard){callbacks_before, callbacks_after, p};
    cf_future_guard_callbacks(&p->cb_guard);
}

bool cf_pp_await(struct process_pool *p, _Atomic uint32_t *word, uint32_t seen)
{
    if (!atomic_load(&p->base.timed_out)) {
        cf_futex_wait(word, seen);
        return true;
    }
    if (atomic_load(&p->calling))
        return false;
    cf_futex_wait_for(word, seen, CF_JOIN_SLICE_NS);
    return true;
}

int cf_pp_kill_workers(executor_t *ex, int sig, bool brk)
{
    struct process_pool *p = pp_of(ex);
    if (brk)
        cf_executor_mark_broken(ex);
    cf_lock(&p->lock);
    p->kill_sig = sig;
    p->kill_break |= brk;
    cf_unlock(&p->lock);
    uint32_t req = atomic_fetch_add(&p->kill_req, 1) + 1;
    cf_pp_kick(p);
    if (cf_executor_on_own_thread(ex))
        return 0; /* a callback on the manager: it acts when the callback returns */
    for (;;) {
        uint32_t done = atomic_load(&p->kill_done);
        if ((int32_t)(done - req) >= 0 || atomic_load(&p->manager_done))
            return 0;
        if (!cf_pp_await(p, &p->kill_done, done))
            return 0; /* a done-callback holds the manager: it acts after */
    }
}

#ifdef CF_TEST_HOOKS
/* Tests: a kill was asked for, and the manager has not acted on it yet. */
bool cf_test_kill_asked(executor_t *ex)
{
    struct process_pool *p = pp_of(ex);
    return atomic_load(&p->kill_req) != atomic_load(&p->kill_done);
}
#endif

/* Takes every task sent to @pr and not started back to the pending list. */
static void take_back(struct process_pool *p, struct pp_proc *pr)
{
    for (int i = 0; i < DEPTH; i++) {
        if (!pr->cell[i])
            continue;
        cf_pp_cell_revoke(p, pr, i); /* SENT -> CANCELLED: never claimed now */
        if (cf_pp_cell_claimed(p, pr, i)) {
            cf_pp_mark_started(p, pr, pr->cell[i]); /* fails with its worker */
            continue;
        }
        struct pp_work *w = cf_pp_cell_release(p, pr, i);
        cf_pp_refund(pr, w);
        cf_fifo_push(&p->pend, &w->base);
    }
}

void cf_pp_handle_kill(struct process_pool *p)
{
    uint32_t req = atomic_load(&p->kill_req);
    if (req == atomic_load(&p->kill_done))
        return;
    cf_lock(&p->lock);
    int sig = p->kill_sig;
    bool brk = p->kill_break;
    struct cf_work_fifo q = brk ? cf_fifo_take(&p->sub) : (struct cf_work_fifo){0};
    cf_unlock(&p->lock);
    cf_fifo_splice(&p->pend, &q);
    p->terminating = true;
    int64_t kill_at = cf_now_ns() + KILL_GRACE_NS;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (!pr)
            continue;
        take_back(p, pr);
        cf_pp_signal(pr, sig);
        if (sig != SIGKILL && !pr->kill_at)
            pr->kill_at = kill_at;
    }
    if (brk)
        cf_executor_drain_fifo(&p->base, &p->pend, FUT_EBROKEN,
                               "the process pool's workers were terminated",
                               cf_pp_work_drop);
    else
        cf_executor_drain_fifo(&p->base, &p->pend, FUT_ECANCELLED, NULL, cf_pp_work_drop);
    atomic_store(&p->kill_done, req);
    cf_futex_wake(&p->kill_done, INT_MAX);
}
