/*
 * schedule.c: delayed and periodic work (DESIGN.md "Controlling work"):
 * executor_submit_with (whose .delay is here; the rest is executor.c's
 * cf_executor_submit_with) and executor_schedule. Layer: above executor,
 * beside compose; it reaches the timer only through timer.h.
 *
 * DESIGN
 * A delayed task is prepared work (cf_executor_prepare): its future exists
 * and can be cancelled at once; the timer submits it when due
 * (cf_executor_submit_prepared, never blocking).
 *
 * A schedule is a future (the one the caller gets) whose extra bytes hold a
 * struct sched. It never runs itself: at each due time the process's one
 * timer (timer.c) submits one run, an ordinary task of the executor made as
 * prepared work (its done-callback is set before the pool can finish it):
 * the run's done-callback decides whether the
 * schedule ends (max_runs, stop_on_error, a cancel during the run) or arms
 * the timer for the next run. So a run never overlaps the next one: the
 * next is armed only once the previous is done. At fixed rate the runs sit
 * on a grid (delay + k * period from the executor_schedule call, so no
 * drift); a run that ends after the next slot makes the schedule skip the
 * slots it overran (tokio's MissedTickBehavior::Skip). With fixed_delay the
 * next run is due period after the previous ended.
 *
 * `state` says where the schedule is; future_cancel reaches it through
 * try_cancel (under the future's lock: atomics only):
 *   IDLE (timer armed) -> DONE by future_cancel: true, the future cancelled
 *   IDLE -> RUNNING by the timer (a run submitted)
 *   RUNNING -> STOPPING by future_cancel: false; the run's outcome ends it
 *   RUNNING -> IDLE by the run's end (next run armed)
 *   RUNNING/STOPPING -> DONE or CANCELLING by the run's end: the schedule
 *   ends with the run's outcome (CANCELLING: a cancelled run; try_cancel
 *   then lets our own future_cancel through)
 * Two keys keep the schedule's own reference to its future and to the
 * executor: `life` (dropped by the future's done-callback) and `activity`
 * (held by the armed timer or by the run in flight). The last key out drops
 * both references.
 *
 * The executor keeps the schedule in its timed list (executor.h) so that
 * executor_shutdown cancels it, and waits for a fire in progress (so a run
 * it submits is queued before the workers are joined, or refused).
 *
 * Locks: none of its own; the timer's and the executor's list lock, never
 * held while user code runs.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "executor.h"
#include "timer.h"
#include "util.h"

/* ---------------------------------------------------------- delayed tasks */

/*
 * A delayed task (submit_options_t.delay) is prepared work whose tail is a
 * struct delayed: the timer submits it when due. Two keys keep the future
 * (one reference): the timer's and the done-callback's; the last drops it.
 */
struct delayed {
    struct cf_timer timer; /* first: the timer's fn gets this address */
    struct cf_timed node;
    struct cf_work *w;
    _Atomic int keys;
    bool borrow; /* submit_options_t.borrow_arg */
};

/* The last key drops the future and prepared work's executor reference. */
static void delayed_release(struct delayed *d, int n)
{
    if (atomic_fetch_sub(&d->keys, n) != n)
        return;
    executor_t *ex = d->w->ex;
    future_unref(cf_work_future(d->w));
    cf_executor_unref(ex);
}

static void delayed_fire(struct cf_timer *t)
{
    struct delayed *d = (struct delayed *)t;
    struct cf_work *w = d->w;
    executor_t *ex = w->ex;
    if (cf_executor_fire_begin(ex, &d->node, true)) {
        /* The timer thread never blocks: a full queue fails the task. */
        int rc = cf_executor_submit_prepared(w, w->arg, w->arg_len, true, d->borrow);
        if (rc < 0 && rc != FUT_ECANCELLED)
            cf_future_fail(cf_work_future(w), rc, 0, -1, 0, future_strerror(rc));
        cf_executor_fire_end(ex);
    }
    delayed_release(d, 1);
}

/* The delayed task is done (run, failed or cancelled): let go of it. */
static void delayed_done(future_t *f, void *ud)
{
    (void)f;
    struct delayed *d = ud;
    cf_executor_untrack(d->w->ex, &d->node);
    delayed_release(d, cf_timer_cancel(&d->timer) ? 2 : 1);
}

/* executor_submit_with with a delay: prepared now, submitted by the timer. */
static future_t *submit_delayed(executor_t *ex, task_fn fn, const void *arg,
                                size_t arg_len, const submit_options_t *so)
{
    struct cf_work *w = cf_executor_prepare(ex, fn, so->timeout, sizeof(struct delayed));
    if (!w)
        return cf_fail_null(FUT_ENOMEM);
    future_t *f = cf_work_future(w);
    w->arg = arg;
    w->arg_len = arg_len;
    cf_work_set_priority(w, so->priority);
    struct delayed *d = cf_work_tail(w);
    memset(d, 0, sizeof(*d));
    d->w = w;
    d->borrow = so->borrow_arg;
    d->node.f = f;
    /* The callback's and the timer's, from the start: a cancel racing the
     * arming below must never drop the last one (see delayed_arm). */
    atomic_init(&d->keys, 2);
    future_ref(f);
    cf_executor_ref(ex);
    if (future_add_done_callback(f, delayed_done, d) < 0) {
        cf_executor_unref(ex);
        future_unref(f);
        future_unref(f);
        return cf_fail_null(FUT_ENOMEM);
    }
    int rc = cf_executor_track(ex, &d->node);
    if (rc == 0)
        rc = cf_timer_add(&d->timer, cf_deadline_after(so->delay), delayed_fire);
    if (rc < 0)
        delayed_release(d, 1); /* the timer's key: never armed */
    else if (future_done(f) && cf_timer_cancel(&d->timer))
        delayed_release(d, 1); /* cancelled (shutdown) before it was armed */
    if (rc < 0) {
        future_cancel(f); /* runs delayed_done */
        future_unref(f);
        return cf_fail_null(rc);
    }
    return f;
}

future_t *executor_submit_with(executor_t *ex, task_fn fn, const void *arg,
                               size_t arg_len, const submit_options_t *so)
{
    if (!ex || !cf_submit_args_ok(fn, arg, arg_len, so) ||
        !cf_executor_arg_fits(ex, arg_len))
        return cf_fail_null(FUT_EINVAL);
    if (!so || so->delay == 0)
        return cf_executor_submit_with(ex, fn, arg, arg_len, so);
    int rc = atomic_load(&ex->shut)     ? FUT_ESHUTDOWN
             : atomic_load(&ex->broken) ? FUT_EBROKEN
                                        : 0;
    if (rc < 0)
        return cf_fail_null(rc);
    completion_queue_t *q = so->queue;
    void *res = NULL;
    if (q && cf_queue_ops_of(q)->reserve(q, &res) < 0)
        return cf_fail_null(FUT_ENOMEM);
    future_t *f = submit_delayed(ex, fn, arg, arg_len, so);
    if (f && q)
        cf_queue_ops_of(q)->commit(q, f, res);
    else if (q)
        cf_queue_ops_of(q)->unreserve(res);
    return f;
}

/* ---------------------------------------------------------- schedules */

enum { S_IDLE, S_RUNNING, S_STOPPING, S_CANCELLING, S_DONE };

struct sched {
    struct cf_timer timer; /* first: the timer's fn gets this address */
    struct cf_timed node;  /* in the executor's timed list */
    executor_t *ex;        /* immutable; a reference until the last key */
    task_fn fn;            /* immutable */
    const void *arg;       /* immutable; borrowed until the future is done */
    size_t arg_len;        /* immutable */
    int64_t period;        /* immutable: ns, 0: one run */
    size_t max_runs;       /* immutable: 0 for ever */
    bool fixed_delay;      /* immutable */
    bool stop_on_error;    /* immutable */
    bool refused;          /* the executor refused a run: the engine */
    int64_t due;           /* the next run's time: the engine (timer or run) */
    size_t runs;           /* runs finished: the engine */
    _Atomic int state;     /* S_* */
    _Atomic int keys;      /* life, activity */
};

static future_t *sched_future(struct sched *s)
{
    return cf_future_from_extra(s);
}

static void sched_release(struct sched *s, int n)
{
    if (atomic_fetch_sub(&s->keys, n) != n)
        return;
    executor_t *ex = s->ex;
    future_unref(sched_future(s));
    cf_executor_unref(ex);
}

static bool sched_try_cancel(void *extra, bool stop)
{
    struct sched *s = extra;
    for (;;) {
        int st = atomic_load(&s->state);
        switch (st) {
        case S_IDLE:
        case S_CANCELLING:
            if (atomic_compare_exchange_strong(&s->state, &st, S_DONE))
                return true;
            continue;
        case S_RUNNING:
            if (!stop || atomic_compare_exchange_strong(&s->state, &st, S_STOPPING))
                return false;
            continue;
        default:
            return false; /* stopping, or ending now with a run's outcome */
        }
    }
}

static const struct cf_future_hooks sched_hooks = {.try_cancel = sched_try_cancel};

/* The schedule's future is done: its own key, and the timer's if disarmed. */
static void sched_done(future_t *f, void *ud)
{
    (void)f;
    struct sched *s = ud;
    cf_executor_untrack(s->ex, &s->node);
    sched_release(s, cf_timer_cancel(&s->timer) ? 2 : 1);
}

/* Ends the schedule like @run: a copy of its result or error, or a cancel. */
static void sched_end_like(struct sched *s, future_t *run)
{
    future_t *f = sched_future(s);
    const future_error_t *e = NULL;
    const void *data = NULL;
    size_t len = 0;
    if (future_cancelled(run)) {
        atomic_store(&s->state, S_CANCELLING);
        future_cancel(f);
    } else if (future_exception(run, 0, &e) == 0 && e) {
        atomic_store(&s->state, S_DONE);
        cf_future_fail(f, e->status, e->code, e->exit_status, e->signal, e->message);
    } else {
        atomic_store(&s->state, S_DONE);
        future_result(run, 0, &data, &len);
        void *copy = len ? cf_block_dup(data, len) : NULL;
        if (len && !copy) {
            cf_future_fail(f, FUT_ENOMEM, ENOMEM, -1, 0, "no memory to copy the result");
            return;
        }
        cf_future_set_result(f, copy, len, len ? cf_block_free : NULL);
    }
}

/* Ends the schedule with @status (no run could be made or armed). */
static void sched_fail(struct sched *s, int status, const char *why)
{
    atomic_store(&s->state, S_DONE);
    cf_future_fail(sched_future(s), status, 0, -1, 0, why);
    sched_release(s, 1); /* the activity key */
}

static void sched_fire(struct cf_timer *t);

/* Arms the timer for s->due; the activity key goes with it. */
static void sched_arm(struct sched *s)
{
    /* Once armed, the schedule may run to its end on other threads: hold on. */
    future_t *f = future_ref(sched_future(s));
    int rc = cf_timer_add(&s->timer, s->due, sched_fire);
    if (rc == 0) {
        /* Cancelled before it was armed: sched_done found nothing to disarm. */
        if (future_done(f) && cf_timer_cancel(&s->timer))
            sched_release(s, 1);
        future_unref(f);
        return;
    }
    future_unref(f);
    int st = S_IDLE;
    if (atomic_compare_exchange_strong(&s->state, &st, S_RUNNING))
        sched_fail(s, rc, "the timer could not be armed");
    else
        sched_release(s, 1); /* cancelled in between */
}

/* The next run's time, after a run that ended at @now. */
static int64_t next_due(const struct sched *s, int64_t now)
{
    if (s->fixed_delay)
        return now + s->period;
    int64_t due = s->due + s->period;
    if (due < now) /* skip the slots the run overran */
        due += (now - due + s->period - 1) / s->period * s->period;
    return due;
}

static void sched_run_done(future_t *run, void *ud)
{
    struct sched *s = ud;
    s->runs++;
    bool bad = cf_future_failed(run) || future_cancelled(run);
    bool end = s->period == 0 || (s->max_runs && s->runs >= s->max_runs) ||
               future_cancelled(run) || (bad && s->stop_on_error) || s->refused;
    if (!end) {
        s->due = next_due(s, cf_now_ns());
        int st = S_RUNNING;
        if (atomic_compare_exchange_strong(&s->state, &st, S_IDLE)) {
            sched_arm(s);
            return;
        }
        /* Cancelled during the run (STOPPING): it ends with this run. */
    }
    sched_end_like(s, run);
    sched_release(s, 1); /* the activity key */
}

/*
 * Submits one run (state RUNNING). The run is prepared work, so its
 * done-callback is in place before the pool can finish it; a run the
 * executor refuses fails with the refusal and ends the schedule.
 */
static void sched_submit(struct sched *s)
{
    struct cf_work *w = cf_executor_prepare(s->ex, s->fn, 0, 0);
    void *node = w ? cf_future_cb_alloc() : NULL;
    if (!node) {
        if (w)
            future_unref(cf_work_future(w));
        sched_fail(s, FUT_ENOMEM, "no memory for the next run");
        return;
    }
    future_t *run = cf_work_future(w);
    cf_future_add_done_callback_node(run, sched_run_done, s, node);
    /* The timer thread never blocks: a full queue ends the schedule. */
    int rc = cf_executor_submit_prepared(w, s->arg, s->arg_len, true, false);
    if (rc < 0) {
        s->refused = true;
        cf_future_fail(run, rc, 0, -1, 0, future_strerror(rc));
    }
    future_unref(run);
}

static void sched_fire(struct cf_timer *t)
{
    struct sched *s = (struct sched *)t;
    executor_t *ex = s->ex;
    cf_executor_ref(ex); /* until the fire ends, whatever the schedule does */
    if (cf_executor_fire_begin(ex, &s->node, false)) {
        int st = S_IDLE;
        if (atomic_compare_exchange_strong(&s->state, &st, S_RUNNING))
            sched_submit(s);
        else
            sched_release(s, 1); /* cancelled between runs */
        cf_executor_fire_end(ex);
    } else {
        sched_release(s, 1); /* ended, or executor_shutdown cancels it */
    }
    cf_executor_unref(ex);
}

static bool schedule_options_ok(const schedule_options_t *o)
{
    return isfinite(o->delay) && o->delay >= 0 && isfinite(o->period) && o->period >= 0 &&
           (o->period > 0 || o->max_runs <= 1);
}

/* Seconds as nanoseconds, at least 1 for any positive value. */
static int64_t secs_ns(double s)
{
    double ns = s * (double)CF_NS_PER_S;
    int64_t v = ns >= (double)(INT64_MAX / 4) ? INT64_MAX / 4 : (int64_t)ns;
    return v || s == 0 ? v : 1;
}

/* A new schedule's future, its keys and callback set; NULL (errno) else. */
static struct sched *sched_new(executor_t *ex, task_fn fn, const void *arg, size_t len,
                               const schedule_options_t *o)
{
    future_t *f = cf_future_alloc(sizeof(struct sched), &sched_hooks);
    if (!f)
        return cf_fail_null(FUT_ENOMEM);
    struct sched *s = cf_future_extra(f);
    *s = (struct sched){.ex = ex,
                        .fn = fn,
                        .arg = arg,
                        .arg_len = len,
                        .period = secs_ns(o->period),
                        .max_runs = o->max_runs,
                        .fixed_delay = o->fixed_delay,
                        .stop_on_error = o->stop_on_error,
                        .node.f = f};
    atomic_init(&s->state, S_IDLE);
    atomic_init(&s->keys, 2); /* life, and activity (the timer's at first) */
    cf_executor_ref(ex);
    future_ref(f); /* the schedule's own */
    if (future_add_done_callback(f, sched_done, s) < 0) {
        cf_executor_unref(ex);
        future_unref(f);
        future_unref(f);
        return cf_fail_null(FUT_ENOMEM);
    }
    return s;
}

future_t *executor_schedule(executor_t *ex, task_fn fn, const void *arg, size_t len,
                            const schedule_options_t *o)
{
    if (!ex || !fn || (len && !arg) || !o || !schedule_options_ok(o) ||
        !cf_executor_arg_fits(ex, len))
        return cf_fail_null(FUT_EINVAL);
    if (atomic_load(&ex->shut))
        return cf_fail_null(FUT_ESHUTDOWN);
    if (atomic_load(&ex->broken))
        return cf_fail_null(FUT_EBROKEN);
    struct sched *s = sched_new(ex, fn, arg, len, o);
    if (!s)
        return NULL;
    future_t *f = sched_future(s);
    s->due = cf_now_ns() + secs_ns(o->delay);
    int rc = cf_executor_track(ex, &s->node);
    if (rc == 0)
        rc = cf_timer_add(&s->timer, s->due, sched_fire);
    if (rc < 0)
        sched_release(s, 1); /* the activity key: never armed */
    else if (future_done(f) && cf_timer_cancel(&s->timer))
        sched_release(s, 1); /* cancelled (shutdown) before it was armed */
    if (rc < 0) {
        future_cancel(f); /* IDLE: cancels; sched_done drops the life key */
        future_unref(f);
        return cf_fail_null(rc);
    }
    return f;
}
