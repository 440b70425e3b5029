/*
 * executor.c: what every executor kind shares: argument checks, submit,
 * the bounded queue, shutdown, free and stats, which thread belongs to which
 * executor, and the hooks table through which future_cancel reaches a task.
 * A kind supplies only its struct cf_executor_ops (executor.h). Layer: above
 * the future; map.c and the pools sit above it.
 *
 * DESIGN
 * Counters (queued, running, completed, failed) are atomics in the common
 * part, moved by the kind through cf_executor_started/finished/dropped and
 * by future_cancel through the future's hooks table (work_cancelled). A
 * queued item leaves `queued` exactly once: whoever wins the future's
 * PENDING state (the worker's set_running or future_cancel) counts it out.
 *
 * They are striped (struct cf_counts): a thread only adds, to its own stripe
 * (queued is entered - left, running is started - done), so a task passes
 * no cache line between threads here (W1: one shared line took a third of
 * a worker's time). A reader sums `left` before `entered` and `done` before
 * `started`, all sequentially consistent: a task between submit and finish
 * always shows as queued or running, so neither reads 0 early; and it sums
 * `left` (`done`) again after, so neither reads more than was there
 * (cf_count_between, executor.h).
 *
 * With max_queue, submitters reserve a slot under `mu` and sleep on
 * `space_cv` while the queue is full; every decrement then signals it. With
 * no bound the fast path takes no lock here at all.
 *
 * Lifetime: the executor is reference counted (the owner's reference, one per
 * live map) so that a map outliving executor_free never touches freed memory.
 *
 * Locks: `mu` guards the bounded queue and the join state. No pool lock and
 * no future lock is ever taken while holding it.
 */
#include "config.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "util.h"

/* ---------------------------------------------------------- life cycle */

int cf_executor_init(executor_t *ex, const struct cf_executor_ops *ops,
                     const executor_options_t *o, int default_workers)
{
    executor_options_t def = {0};
    if (!o)
        o = &def;
    if (o->max_workers < 0 || o->max_tasks_per_child < 0 ||
        (o->initarg_len > 0 && !o->initarg) ||
        (o->on_worker_death != FUT_WORKER_RESPAWN &&
         o->on_worker_death != FUT_WORKER_BREAK_POOL))
        return FUT_EINVAL;
    ex->ops = ops;
    ex->opts = *o;
    if (ex->opts.max_workers == 0)
        ex->opts.max_workers = default_workers;
    memset(ex->name_prefix, 0, sizeof(ex->name_prefix));
    if (o->thread_name_prefix)
        strncpy(ex->name_prefix, o->thread_name_prefix, sizeof(ex->name_prefix) - 1);
    ex->opts.thread_name_prefix = ex->name_prefix;
    atomic_init(&ex->refs, 1);
    atomic_init(&ex->shut, false);
    atomic_init(&ex->broken, false);
    ex->counts = aligned_alloc(64, CF_STRIPES * sizeof(*ex->counts));
    if (!ex->counts)
        return FUT_ENOMEM;
    memset(ex->counts, 0, CF_STRIPES * sizeof(*ex->counts));
#ifdef CF_TEST_HOOKS
    atomic_init(&ex->test_pushed, 0);
    atomic_init(&ex->test_settled, 0);
    ex->test_managed = false;
#endif
    pthread_mutex_init(&ex->mu, NULL);
    pthread_cond_init(&ex->space_cv, NULL);
    pthread_cond_init(&ex->join_cv, NULL);
    ex->joining = ex->joined = false;
    ex->timed = NULL;
    ex->firing = 0;
    pthread_cond_init(&ex->fired_cv, NULL);
    cf_cond_init_monotonic(&ex->idle_cv);
    return 0;
}

void cf_executor_deinit(executor_t *ex)
{
    pthread_cond_destroy(&ex->fired_cv);
    pthread_cond_destroy(&ex->idle_cv);
    pthread_cond_destroy(&ex->join_cv);
    pthread_cond_destroy(&ex->space_cv);
    pthread_mutex_destroy(&ex->mu);
    free(ex->counts);
}

void cf_executor_ref(executor_t *ex)
{
    atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
}

void cf_executor_unref(executor_t *ex)
{
    if (atomic_fetch_sub_explicit(&ex->refs, 1, memory_order_acq_rel) == 1)
        ex->ops->destroy(ex);
}

/* ---------------------------------------------------------- counters */

/* This thread's stripe, handed out round-robin on first use. */
static struct cf_counts *mine(executor_t *ex)
{
    static _Atomic unsigned next;
    static _Thread_local unsigned stripe = UINT_MAX;
    if (stripe == UINT_MAX)
        stripe = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) % CF_STRIPES;
    return &ex->counts[stripe];
}

#define SUM(ex, field) cf_counts_sum((ex), offsetof(struct cf_counts, field))

/*
 * A counter fell to 0 after shutdown: wake cf_executor_wait_idle. The
 * counter's decrement and this load of `shut` are sequentially consistent,
 * as are the waiter's store of `shut` and its loads of the counters, so one
 * of the two sees the other.
 */
static void maybe_idle(executor_t *ex)
{
    if (!atomic_load(&ex->shut) || cf_count_queued(ex) > 0 || cf_count_running(ex) > 0)
        return;
    pthread_mutex_lock(&ex->mu);
    pthread_cond_broadcast(&ex->idle_cv);
    pthread_mutex_unlock(&ex->mu);
}

/* An item left the queue: wake a submitter waiting for room. */
static void queue_leave(executor_t *ex)
{
    if (ex->opts.max_queue == 0) {
        atomic_fetch_add(&mine(ex)->left, 1);
        maybe_idle(ex);
        return;
    }
    pthread_mutex_lock(&ex->mu);
    atomic_fetch_add(&mine(ex)->left, 1);
    pthread_cond_signal(&ex->space_cv);
    pthread_cond_broadcast(&ex->idle_cv);
    pthread_mutex_unlock(&ex->mu);
}

void cf_executor_started(executor_t *ex)
{
    atomic_fetch_add(&mine(ex)->started, 1);
    queue_leave(ex);
}

void cf_executor_finished(executor_t *ex, bool failed)
{
    struct cf_counts *c = mine(ex);
    atomic_fetch_add_explicit(failed ? &c->failed : &c->completed, 1,
                              memory_order_relaxed);
    atomic_fetch_add(&c->done, 1);
    maybe_idle(ex);
}

void cf_executor_dropped(executor_t *ex)
{
    atomic_fetch_add_explicit(&mine(ex)->failed, 1, memory_order_relaxed);
    queue_leave(ex);
}

/* ---------------------------------------------------------- future hooks */

/*
 * A cancel that the pool let through holds a reference to the executor
 * until its accounting is done: a waiter that saw the future cancelled may
 * free the executor meanwhile (executor_free, after its workers are done).
 */
static bool work_try_cancel(void *extra, bool stop)
{
    struct cf_work *w = extra;
    if (w->ex->ops->try_cancel && !w->ex->ops->try_cancel(w->ex, w, stop))
        return false;
    cf_executor_ref(w->ex);
    return true;
}

static void work_cancelled(void *extra, bool won)
{
    struct cf_work *w = extra;
    executor_t *ex = w->ex;
    if (won)
        queue_leave(ex);
    cf_executor_unref(ex); /* may free it: @w's executor is not touched again */
}

static void work_stop(void *extra)
{
    struct cf_work *w = extra;
    if (w->ex->ops->request_stop)
        w->ex->ops->request_stop(w->ex, w);
}

/* How future_cancel reaches the executor of a submitted task. */
static const struct cf_future_hooks work_hooks = {
    .try_cancel = work_try_cancel,
    .cancelled = work_cancelled,
    .stop = work_stop,
};

/*
 * Prepared work (cf_executor_prepare): a word after the kind's work item
 * says how far the submit got. future_cancel (under the future's lock) and
 * the submitter race on it by compare-and-swap:
 *   WAITING -> CANCELLED    future_cancel won: the task is never submitted
 *   WAITING -> SUBMITTING -> SUBMITTED (or FAILED)   the submitter won
 * A cancel that finds SUBMITTING waits the few instructions until the
 * submit returned (ops->submit takes no future's lock), then asks the pool
 * as for any queued task.
 */
enum { PREP_WAITING, PREP_SUBMITTING, PREP_SUBMITTED, PREP_FAILED, PREP_CANCELLED };

struct prep {
    _Atomic int phase; /* PREP_* */
};

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

static size_t work_bytes(const executor_t *ex)
{
    return ALIGN16(CF_MAX(sizeof(struct cf_work), ex->ops->work_size));
}

/* The caller keeps w->ex alive while the future is pending (executor.h). */
static struct prep *prep_of(struct cf_work *w)
{
    return (struct prep *)((char *)w + work_bytes(w->ex));
}

void *cf_work_tail(struct cf_work *w)
{
    return (char *)prep_of(w) + ALIGN16(sizeof(struct prep));
}

static bool prep_try_cancel(void *extra, bool stop)
{
    struct prep *p = prep_of(extra);
    for (;;) {
        int ph = atomic_load(&p->phase);
        switch (ph) {
        case PREP_WAITING:
            if (atomic_compare_exchange_strong(&p->phase, &ph, PREP_CANCELLED))
                return true;
            continue;
        case PREP_SUBMITTING:
            cf_cpu_relax();
            continue;
        case PREP_SUBMITTED:
            return work_try_cancel(extra, stop);
        default:
            return true;
        }
    }
}

static void prep_cancelled(void *extra, bool won)
{
    struct cf_work *w = extra;
    int ph = atomic_load(&prep_of(w)->phase);
    /* Only a submitted task went through work_try_cancel (its reference). */
    if (ph == PREP_SUBMITTED)
        work_cancelled(extra, won);
    /* Its submit may wait for room in max_queue (queue_enter): it is over. */
    if (ph == PREP_CANCELLED && w->ex->opts.max_queue) {
        pthread_mutex_lock(&w->ex->mu);
        pthread_cond_broadcast(&w->ex->space_cv);
        pthread_mutex_unlock(&w->ex->mu);
    }
}

/* Started while its submit returns (a worker claimed it): wait, or it is lost. */
static void prep_stop(void *extra)
{
    int ph;
    while ((ph = atomic_load(&prep_of(extra)->phase)) == PREP_SUBMITTING)
        cf_cpu_relax();
    if (ph == PREP_SUBMITTED)
        work_stop(extra);
}

static const struct cf_future_hooks prep_hooks = {
    .try_cancel = prep_try_cancel,
    .cancelled = prep_cancelled,
    .stop = prep_stop,
};

/* ---------------------------------------------------------- threads */

static _Thread_local const executor_t *own_executor;

void cf_executor_bind_thread(executor_t *ex)
{
    own_executor = ex;
}

bool cf_executor_on_own_thread(const executor_t *ex)
{
    return own_executor == ex;
}

bool cf_executor_free_later(const executor_t *ex)
{
    return atomic_load(&ex->free_later);
}

void cf_executor_self_free(executor_t *ex)
{
    pthread_detach(pthread_self());
    own_executor = NULL;
    cf_executor_unref(ex);
}

/* ---------------------------------------------------------- failing work */

void cf_executor_drain_fifo(executor_t *ex, struct cf_work_fifo *q, int status,
                            const char *why, void (*release)(struct cf_work *w))
{
    struct cf_work *w;
    while ((w = cf_fifo_pop(q))) {
        future_t *f = cf_work_future(w);
        if (status == FUT_ECANCELLED)
            future_cancel(f); /* counts itself out of `queued` */
        else if (cf_future_fail(f, status, 0, -1, 0, why) == 0)
            cf_executor_dropped(ex);
        if (release)
            release(w);
        else
            future_unref(f);
    }
}

int cf_work_expire(struct cf_work *w)
{
    return cf_future_expire(cf_work_future(w));
}

void cf_executor_mark_broken(executor_t *ex)
{
    atomic_store(&ex->broken, true);
    /* Submitters blocked on a full queue must see it. */
    pthread_mutex_lock(&ex->mu);
    pthread_cond_broadcast(&ex->space_cv);
    pthread_mutex_unlock(&ex->mu);
}

/* ---------------------------------------------------------- timed work */

_Thread_local const executor_t *cf_firing_for;

/* Shutdown: cancels every delayed task not yet due and every schedule; waits for fires.
 */
static void cancel_timed(executor_t *ex)
{
    for (;;) {
        pthread_mutex_lock(&ex->mu);
        struct cf_timed *n = ex->timed;
        future_t *f = n ? future_ref(n->f) : NULL;
        if (n)
            cf_untrack_locked(ex, n);
        pthread_mutex_unlock(&ex->mu);
        if (!f)
            break;
        future_cancel(f);
        future_unref(f);
    }
    pthread_mutex_lock(&ex->mu);
    while (ex->firing > (cf_firing_for == ex))
        pthread_cond_wait(&ex->fired_cv, &ex->mu);
    pthread_mutex_unlock(&ex->mu);
}

/* ---------------------------------------------------------- submit */

/*
 * Reserves a queue slot: 0, FUT_EFULL, FUT_ESHUTDOWN or FUT_EBROKEN; for a
 * prepared item (@phase, else NULL) FUT_ECANCELLED once it was cancelled
 * while this waited for room (prep_cancelled wakes it). A blocking call
 * on a kind's own room-making thread never waits (own_thread_makes_room).
 */
static int queue_enter(executor_t *ex, bool nonblocking, _Atomic int *phase)
{
    if (ex->opts.max_queue == 0) {
        atomic_fetch_add(&mine(ex)->entered, 1);
        return 0;
    }
    int rc = 0;
    pthread_mutex_lock(&ex->mu);
    for (;;) {
        if (atomic_load(&ex->shut)) {
            rc = FUT_ESHUTDOWN;
            break;
        }
        if (atomic_load(&ex->broken)) {
            rc = FUT_EBROKEN;
            break;
        }
        if (phase && atomic_load(phase) == PREP_CANCELLED) {
            rc = FUT_ECANCELLED;
            break;
        }
        if (cf_count_queued(ex) < ex->opts.max_queue ||
            (!nonblocking && ex->ops->own_thread_makes_room &&
             cf_executor_on_own_thread(ex))) {
            atomic_fetch_add(&mine(ex)->entered, 1);
            break;
        }
        if (nonblocking) {
            rc = FUT_EFULL;
            break;
        }
        pthread_cond_wait(&ex->space_cv, &ex->mu);
    }
    pthread_mutex_unlock(&ex->mu);
    return rc;
}

/* Seconds of a task's own limit as nanoseconds: 0 none, else at least 1. */
static int64_t limit_ns(double limit)
{
    if (limit <= 0)
        return 0;
    double ns = limit * (double)CF_NS_PER_S;
    int64_t v = ns >= (double)(INT64_MAX / 2) ? INT64_MAX / 2 : (int64_t)ns;
    return v ? v : 1;
}

/* A new work item and its future, with the caller's and the executor's references. */
static struct cf_work *work_new(executor_t *ex, task_fn fn, const void *arg,
                                size_t arg_len, int64_t limit)
{
    future_t *f =
        cf_future_alloc(CF_MAX(sizeof(struct cf_work), ex->ops->work_size), &work_hooks);
    if (!f)
        return NULL;
    struct cf_work *w = cf_future_extra(f);
    *w = (struct cf_work){
        .ex = ex, .fn = fn, .arg = arg, .arg_len = arg_len, .limit_ns = limit};
    future_ref(f); /* the executor's reference */
    return w;
}

#ifdef CF_TEST_HOOKS
void (*cf_test_stats_hook)(void); /* count_between (executor.h) */
#define TEST_PUSHED(ex) atomic_fetch_add(&(ex)->test_pushed, 1)
void (*cf_test_submitted_hook)(void); /* a submit went out, before its queue commit */

/* Tests: submits the executor has in priority order (executor.h). */
size_t cf_test_settled(executor_t *ex)
{
    return atomic_load(ex->test_managed ? &ex->test_settled : &ex->test_pushed);
}
#else
#define TEST_PUSHED(ex) ((void)0)
#endif

/* Hands @w to its kind: without a copy of its argument if @borrowed and the kind can. */
static int kind_submit(executor_t *ex, struct cf_work *w, bool borrowed)
{
    if (borrowed && ex->ops->submit_borrowed)
        return ex->ops->submit_borrowed(ex, w);
    return ex->ops->submit(ex, w);
}

/* The submit of @w returned @rc: its future, or NULL (errno) with the submit undone. */
static future_t *submitted(executor_t *ex, struct cf_work *w, int rc)
{
    future_t *f = cf_work_future(w);
    if (rc == 0) {
        TEST_PUSHED(ex);
        return f;
    }
    queue_leave(ex);
    future_unref(f);
    future_unref(f);
    return cf_fail_null(rc);
}

/* 0 if @ex takes work now, else FUT_ESHUTDOWN or FUT_EBROKEN. */
static int accepting(const executor_t *ex)
{
    if (atomic_load_explicit(&ex->shut, memory_order_relaxed))
        return FUT_ESHUTDOWN;
    if (atomic_load_explicit(&ex->broken, memory_order_relaxed))
        return FUT_EBROKEN;
    return 0;
}

/* The submit of @w returned @rc: joins the queue reserved in @res on success. */
static future_t *submitted_to(executor_t *ex, struct cf_work *w, int rc,
                              completion_queue_t *q, void *res)
{
    future_t *f = submitted(ex, w, rc);
    if (f)
        CF_TEST_HOOK(cf_test_submitted_hook);
    if (f && q)
        cf_queue_ops_of(q)->commit(q, f, res);
    else if (q)
        cf_queue_ops_of(q)->unreserve(res);
    return f;
}

future_t *cf_executor_submit_with(executor_t *ex, task_fn fn, const void *arg,
                                  size_t arg_len, const submit_options_t *so)
{
    double limit = so ? so->timeout : 0;
    completion_queue_t *q = so ? so->queue : NULL;
    void *res = NULL;
    int rc = accepting(ex);
    if (rc == 0)
        rc = queue_enter(ex, so && so->nonblocking, NULL);
    if (rc < 0)
        return cf_fail_null(rc);
    struct cf_work *w = q && cf_queue_ops_of(q)->reserve(q, &res) < 0
                            ? NULL
                            : work_new(ex, fn, arg, arg_len, limit_ns(limit));
    if (!w) {
        if (res)
            cf_queue_ops_of(q)->unreserve(res);
        queue_leave(ex);
        return cf_fail_null(FUT_ENOMEM);
    }
    cf_work_set_priority(w, so ? so->priority : 0);
    return submitted_to(ex, w, kind_submit(ex, w, so && so->borrow_arg), q, res);
}

future_t *cf_executor_submit_chunk(executor_t *ex, task_fn fn, const void *const *args,
                                   const size_t *lens, size_t n)
{
    assert(ex->ops->submit_chunk && n > 0);
    int rc = accepting(ex);
    if (rc == 0)
        rc = queue_enter(ex, false, NULL);
    if (rc < 0)
        return cf_fail_null(rc);
    struct cf_work *w = work_new(ex, fn, NULL, 0, 0);
    if (!w) {
        queue_leave(ex);
        return cf_fail_null(FUT_ENOMEM);
    }
    return submitted(ex, w, ex->ops->submit_chunk(ex, w, args, lens, n));
}

struct cf_work *cf_executor_prepare(executor_t *ex, task_fn fn, double limit, size_t tail)
{
    size_t extra = work_bytes(ex) + ALIGN16(sizeof(struct prep)) + tail;
    future_t *f = cf_future_alloc(extra, &prep_hooks);
    if (!f)
        return NULL;
    struct cf_work *w = cf_future_extra(f);
    *w = (struct cf_work){.ex = ex, .fn = fn, .limit_ns = limit_ns(limit)};
    atomic_init(&prep_of(w)->phase, PREP_WAITING);
    return w;
}

int cf_executor_submit_prepared(struct cf_work *w, const void *arg, size_t arg_len,
                                bool nonblocking, bool borrowed)
{
    executor_t *ex = w->ex;
    struct prep *p = prep_of(w);
    future_t *f = cf_work_future(w);
    int rc = accepting(ex);
    if (rc == 0)
        rc = queue_enter(ex, nonblocking, &p->phase);
    if (rc < 0)
        return rc;
    int ph = PREP_WAITING;
    if (!atomic_compare_exchange_strong(&p->phase, &ph, PREP_SUBMITTING)) {
        queue_leave(ex);
        return FUT_ECANCELLED;
    }
    w->arg = arg;
    w->arg_len = arg_len;
    future_ref(f); /* the executor's */
    rc = kind_submit(ex, w, borrowed);
    if (rc < 0) {
        atomic_store(&p->phase, PREP_FAILED);
        queue_leave(ex);
        future_unref(f);
        return rc;
    }
    atomic_store(&p->phase, PREP_SUBMITTED);
    TEST_PUSHED(ex);
    CF_TEST_HOOK(cf_test_submitted_hook);
    return 0;
}

future_t *executor_submit(executor_t *ex, task_fn fn, const void *arg, size_t arg_len)
{
    if (!ex || !fn || (arg_len && !arg) || !cf_executor_arg_fits(ex, arg_len))
        return cf_fail_null(FUT_EINVAL);
    return cf_executor_submit_with(ex, fn, arg, arg_len, NULL);
}

/* ---------------------------------------------------------- shutdown */

void cf_executor_join(executor_t *ex)
{
    pthread_mutex_lock(&ex->mu);
    if (ex->joining) {
        while (!ex->joined)
            pthread_cond_wait(&ex->join_cv, &ex->mu);
        pthread_mutex_unlock(&ex->mu);
        return;
    }
    ex->joining = true;
    pthread_mutex_unlock(&ex->mu);
    ex->ops->join(ex);
    pthread_mutex_lock(&ex->mu);
    ex->joined = true;
    pthread_cond_broadcast(&ex->join_cv);
    pthread_mutex_unlock(&ex->mu);
}

int cf_executor_wait_idle(executor_t *ex, int64_t deadline)
{
    struct timespec ts;
    cf_ns_to_timespec(deadline, &ts);
    int rc = 0;
    pthread_mutex_lock(&ex->mu);
    while (cf_count_queued(ex) > 0 || cf_count_running(ex) > 0) {
        if (cf_now_ns() >= deadline) {
            rc = FUT_ETIMEDOUT;
            break;
        }
        if (deadline == CF_NO_DEADLINE)
            pthread_cond_wait(&ex->idle_cv, &ex->mu);
        else
            pthread_cond_timedwait(&ex->idle_cv, &ex->mu, &ts);
    }
    pthread_mutex_unlock(&ex->mu);
    return rc;
}

int executor_shutdown(executor_t *ex, bool wait, bool cancel_futures)
{
    if (!ex)
        return FUT_EINVAL;
    atomic_store(&ex->shut, true);
    cancel_timed(ex);
    ex->ops->shutdown(ex, cancel_futures);
    pthread_mutex_lock(&ex->mu);
    pthread_cond_broadcast(&ex->space_cv);
    pthread_mutex_unlock(&ex->mu);
    if (wait && !cf_executor_on_own_thread(ex))
        cf_executor_join(ex);
    return 0;
}

void executor_free(executor_t *ex)
{
    if (!ex)
        return;
    if (cf_executor_on_own_thread(ex)) {
        executor_shutdown(ex, false, false);
        atomic_store(&ex->free_later, true);
        if (ex->ops->free_later)
            ex->ops->free_later(ex);
        return;
    }
    executor_shutdown(ex, true, false);
    cf_executor_unref(ex);
}

int executor_stats(executor_t *ex, executor_stats_t *out)
{
    if (!ex || !out)
        return FUT_EINVAL;
    memset(out, 0, sizeof(*out));
    ex->ops->stats(ex, out);
    out->queued = cf_count_queued(ex);
    out->running = cf_count_running(ex);
    out->completed = SUM(ex, completed);
    out->failed = SUM(ex, failed);
    out->shutdown = atomic_load(&ex->shut);
    out->broken = atomic_load(&ex->broken);
    return 0;
}
