/*
 * executor.c: what every executor kind shares: argument checks, submit,
 * the bounded queue, map, shutdown, free and stats. A kind supplies only
 * its struct cf_executor_ops (executor.h).
 *
 * DESIGN
 * Counters (queued, running, completed, failed) are atomics in the common
 * part, moved by the kind through cf_executor_started/finished/dropped and
 * by future_cancel through cf_work_cancelled. A queued item leaves `queued`
 * exactly once: whoever wins the future's PENDING state (the worker's
 * set_running or future_cancel) decrements it.
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

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "util.h"
#include "process/wire.h"

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
    atomic_init(&ex->queued, 0);
    atomic_init(&ex->running, 0);
    atomic_init(&ex->completed, 0);
    atomic_init(&ex->failed, 0);
    pthread_mutex_init(&ex->mu, NULL);
    pthread_cond_init(&ex->space_cv, NULL);
    pthread_cond_init(&ex->join_cv, NULL);
    ex->joining = ex->joined = false;
    return 0;
}

void cf_executor_deinit(executor_t *ex)
{
    pthread_cond_destroy(&ex->join_cv);
    pthread_cond_destroy(&ex->space_cv);
    pthread_mutex_destroy(&ex->mu);
}

void cf_executor_unref(executor_t *ex)
{
    if (atomic_fetch_sub_explicit(&ex->refs, 1, memory_order_acq_rel) == 1)
        ex->ops->destroy(ex);
}

/* ---------------------------------------------------------- counters */

/* @n items left the queue: wake submitters waiting for room. */
static void queue_leave_n(executor_t *ex, size_t n)
{
    if (ex->opts.max_queue == 0) {
        atomic_fetch_sub_explicit(&ex->queued, n, memory_order_relaxed);
        return;
    }
    pthread_mutex_lock(&ex->mu);
    atomic_fetch_sub_explicit(&ex->queued, n, memory_order_relaxed);
    if (n == 1)
        pthread_cond_signal(&ex->space_cv);
    else
        pthread_cond_broadcast(&ex->space_cv);
    pthread_mutex_unlock(&ex->mu);
}

static void queue_leave(executor_t *ex)
{
    queue_leave_n(ex, 1);
}

void cf_executor_started_n(executor_t *ex, size_t n)
{
    if (n == 0)
        return;
    atomic_fetch_add_explicit(&ex->running, n, memory_order_relaxed);
    queue_leave_n(ex, n);
}

void cf_executor_started(executor_t *ex)
{
    cf_executor_started_n(ex, 1);
}

void cf_executor_finished_n(executor_t *ex, size_t ok, size_t failed)
{
    if (ok)
        atomic_fetch_add_explicit(&ex->completed, ok, memory_order_relaxed);
    if (failed)
        atomic_fetch_add_explicit(&ex->failed, failed, memory_order_relaxed);
    atomic_fetch_sub_explicit(&ex->running, ok + failed, memory_order_relaxed);
}

void cf_executor_finished(executor_t *ex, bool failed)
{
    cf_executor_finished_n(ex, !failed, failed);
}

void cf_executor_dropped(executor_t *ex)
{
    atomic_fetch_add_explicit(&ex->failed, 1, memory_order_relaxed);
    queue_leave(ex);
}

void cf_work_cancelled(void *extra)
{
    struct cf_work *w = extra;
    queue_leave(w->ex);
}

bool cf_work_try_cancel(void *extra)
{
    struct cf_work *w = extra;
    return !w->ex->ops->try_cancel || w->ex->ops->try_cancel(w->ex, w);
}

void cf_work_stop(void *extra)
{
    struct cf_work *w = extra;
    if (w->ex->ops->request_stop)
        w->ex->ops->request_stop(w->ex, w);
}

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
    return cf_future_fail(cf_work_future(w), FUT_EDEADLINE, 0, -1, 0,
                          "the task's own time limit passed");
}

void cf_executor_mark_broken(executor_t *ex)
{
    atomic_store(&ex->broken, true);
    /* Submitters blocked on a full queue must see it. */
    pthread_mutex_lock(&ex->mu);
    pthread_cond_broadcast(&ex->space_cv);
    pthread_mutex_unlock(&ex->mu);
}

/* ---------------------------------------------------------- submit */

/* Reserves a queue slot: 0, FUT_EFULL, FUT_ESHUTDOWN or FUT_EBROKEN. */
static int queue_enter(executor_t *ex, bool nonblocking)
{
    if (ex->opts.max_queue == 0) {
        atomic_fetch_add_explicit(&ex->queued, 1, memory_order_relaxed);
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
        if (atomic_load_explicit(&ex->queued, memory_order_relaxed) < ex->opts.max_queue) {
            atomic_fetch_add_explicit(&ex->queued, 1, memory_order_relaxed);
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

future_t *executor_submit_with(executor_t *ex, task_fn fn, const void *arg,
                               size_t arg_len, const submit_options_t *so)
{
    if (!ex || !fn)
        return cf_fail_null(FUT_EINVAL);
    double limit = so ? so->timeout : 0;
    if (!isfinite(limit) || limit < 0)
        return cf_fail_null(FUT_EINVAL);
    if (atomic_load_explicit(&ex->shut, memory_order_relaxed))
        return cf_fail_null(FUT_ESHUTDOWN);
    if (atomic_load_explicit(&ex->broken, memory_order_relaxed))
        return cf_fail_null(FUT_EBROKEN);
    int rc = queue_enter(ex, so && so->nonblocking);
    if (rc < 0)
        return cf_fail_null(rc);
    future_t *f = cf_future_alloc(CF_MAX(sizeof(struct cf_work), ex->ops->work_size));
    if (!f) {
        queue_leave(ex);
        return cf_fail_null(FUT_ENOMEM);
    }
    struct cf_work *w = cf_future_extra(f);
    w->next = NULL;
    w->ex = ex;
    w->fn = fn;
    w->arg = arg;
    w->arg_len = arg_len;
    w->limit_ns = 0;
    if (limit > 0) {
        double ns = limit * (double)CF_NS_PER_S;
        w->limit_ns = ns >= (double)(INT64_MAX / 2) ? INT64_MAX / 2 : (int64_t)ns;
        if (w->limit_ns == 0)
            w->limit_ns = 1;
    }
    future_ref(f); /* the executor's reference */
    rc = ex->ops->submit(ex, w);
    if (rc < 0) {
        queue_leave(ex);
        future_unref(f);
        future_unref(f);
        return cf_fail_null(rc);
    }
    return f;
}

future_t *executor_submit(executor_t *ex, task_fn fn, const void *arg, size_t arg_len)
{
    return executor_submit_with(ex, fn, arg, arg_len, NULL);
}

/* ---------------------------------------------------------- shutdown */

static void join_once(executor_t *ex)
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

int executor_shutdown(executor_t *ex, bool wait, bool cancel_futures)
{
    if (!ex)
        return FUT_EINVAL;
    atomic_store(&ex->shut, true);
    ex->ops->shutdown(ex, cancel_futures);
    pthread_mutex_lock(&ex->mu);
    pthread_cond_broadcast(&ex->space_cv);
    pthread_mutex_unlock(&ex->mu);
    if (wait && !cf_executor_on_own_thread(ex))
        join_once(ex);
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
    out->queued = atomic_load_explicit(&ex->queued, memory_order_relaxed);
    out->running = atomic_load_explicit(&ex->running, memory_order_relaxed);
    out->completed = atomic_load_explicit(&ex->completed, memory_order_relaxed);
    out->failed = atomic_load_explicit(&ex->failed, memory_order_relaxed);
    out->shutdown = atomic_load(&ex->shut);
    out->broken = atomic_load(&ex->broken);
    return 0;
}

/* ---------------------------------------------------------- map */

struct executor_map {
    executor_t *ex;            /* a reference: the executor outlives the map */
    task_fn fn;
    const void *const *args;   /* borrowed until executor_map_free */
    const size_t *lens;        /* may be NULL */
    size_t n;
    size_t submitted;          /* items [0, submitted) have a future */
    size_t yielded;            /* items [0, yielded) were handed out */
    size_t cap;                /* ring size: buffersize, or n */
    size_t chunk;              /* items per submit_chunk unit; 1: one by one */
    future_t **ring;           /* item i lives at ring[i % cap] */
    future_t *last;            /* the item handed out last: keeps its data alive */
    bool blobs;                /* chunks go as one task each (ops->submit_blob) */
    future_t *cur;             /* blobs: the chunk being read, with a reference */
    const unsigned char *cur_p;  /* ... its RESULTS payload */
    size_t cur_len;
    uint64_t cur_off;          /* ... where its next answer starts */
    int64_t deadline;
    bool finished;             /* timed out: only FUT_EOF from now on */
};

/* Item i's future; a submit that fails becomes a future failed with its code. */
static future_t *map_submit_one(executor_map_t *m, size_t i)
{
    future_t *f = executor_submit(m->ex, m->fn, m->args[i], m->lens ? m->lens[i] : 0);
    if (f)
        return f;
    int code = -errno;
    f = cf_future_alloc(0);
    if (f)
        cf_future_fail(f, code, 0, -1, 0, future_strerror(code));
    return f; /* NULL: executor_map_next reports FUT_ENOMEM */
}

/*
 * Submits the next @k items as one unit (ops->submit_chunk). False if that
 * was not possible: the caller submits them one by one (which reports why).
 */
static bool map_submit_chunk(executor_map_t *m, size_t k)
{
    executor_t *ex = m->ex;
    if (atomic_load(&ex->shut) || atomic_load(&ex->broken))
        return false;
    struct cf_work **ws = malloc(k * sizeof(*ws));
    if (!ws)
        return false;
    size_t made = 0;
    for (; made < k; made++) {
        future_t *f = cf_future_alloc(CF_MAX(sizeof(struct cf_work), ex->ops->work_size));
        if (!f)
            break;
        size_t i = m->submitted + made;
        struct cf_work *w = cf_future_extra(f);
        *w = (struct cf_work){
            .ex = ex, .fn = m->fn, .arg = m->args[i], .arg_len = m->lens ? m->lens[i] : 0};
        future_ref(f); /* the executor's reference */
        ws[made] = w;
    }
    /* Queued as one: chunks need max_queue 0, so there is no bound to wait for. */
    atomic_fetch_add_explicit(&ex->queued, made, memory_order_relaxed);
    int rc = made == k ? ex->ops->submit_chunk(ex, ws, k) : FUT_ENOMEM;
    if (rc != 0)
        queue_leave_n(ex, made);
    for (size_t j = 0; j < made; j++) {
        future_t *f = cf_work_future(ws[j]);
        if (rc == 0) {
            m->ring[(m->submitted + j) % m->cap] = f;
        } else {
            future_unref(f);
            future_unref(f);
        }
    }
    free(ws);
    if (rc == 0)
        m->submitted += k;
    return rc == 0;
}

/*
 * A ring slot holds an item's own future, or (low bit set) the future of the
 * chunk it was sent in as one task, one reference per slot.
 */
#define BLOB_TAG ((uintptr_t)1)
static inline future_t *slot_future(future_t *f)
{
    return (future_t *)((uintptr_t)f & ~BLOB_TAG);
}

/*
 * Submits the next @k items as ONE task (ops->submit_blob): no future and no
 * allocation per item. Python's ProcessPoolExecutor.map(chunksize) does the
 * same. False if that was not possible: the caller submits them one by one
 * (which reports why, e.g. FUT_EINVAL for an item too large).
 */
static bool map_submit_blob(executor_map_t *m, size_t k)
{
    executor_t *ex = m->ex;
    if (atomic_load(&ex->shut) || atomic_load(&ex->broken))
        return false;
    future_t *f = cf_future_alloc(CF_MAX(sizeof(struct cf_work), ex->ops->work_size));
    if (!f)
        return false;
    struct cf_work *w = cf_future_extra(f);
    *w = (struct cf_work){.ex = ex, .fn = m->fn};
    future_ref(f); /* the executor's reference */
    queue_enter(ex, false); /* unbounded (chunks need max_queue 0): never fails */
    if (ex->ops->submit_blob(ex, w, m->args + m->submitted,
                             m->lens ? m->lens + m->submitted : NULL, k) != 0) {
        queue_leave(ex);
        future_unref(f);
        future_unref(f);
        return false;
    }
    for (size_t j = 0; j < k; j++) {
        if (j > 0)
            future_ref(f);
        m->ring[(m->submitted + j) % m->cap] = (future_t *)((uintptr_t)f | BLOB_TAG);
    }
    m->submitted += k;
    return true;
}

/* Submits items while the ring has room, in whole chunks where it can. */
static void map_fill(executor_map_t *m)
{
    while (m->submitted < m->n && m->submitted - m->yielded < m->cap) {
        size_t room = m->cap - (m->submitted - m->yielded);
        size_t want = CF_MIN(m->chunk, CF_MIN(m->n - m->submitted, m->cap));
        if (want > room && m->submitted > m->yielded)
            return; /* wait for room for a whole chunk */
        size_t k = CF_MIN(want, room);
        if (k >= 2 && m->blobs && map_submit_blob(m, k))
            continue;
        if (k >= 2 && map_submit_chunk(m, k))
            continue;
        m->ring[m->submitted % m->cap] = map_submit_one(m, m->submitted);
        m->submitted++;
    }
}

executor_map_t *executor_map(executor_t *ex, task_fn fn, const void *const *args,
                             const size_t *arg_lens, size_t n, const map_options_t *mo)
{
    map_options_t def = {0};
    if (!mo)
        mo = &def;
    if (!ex || !fn || (!args && n > 0) || !isfinite(mo->timeout) || mo->timeout < 0)
        return cf_fail_null(FUT_EINVAL);
    if (atomic_load(&ex->shut))
        return cf_fail_null(FUT_ESHUTDOWN);
    if (atomic_load(&ex->broken))
        return cf_fail_null(FUT_EBROKEN);
    size_t cap = mo->buffersize && mo->buffersize < n ? mo->buffersize : n;
    executor_map_t *m = calloc(1, sizeof(*m));
    future_t **ring = cap ? calloc(cap, sizeof(*ring)) : NULL;
    if (!m || (cap && !ring)) {
        free(m);
        free(ring);
        return cf_fail_null(FUT_ENOMEM);
    }
    atomic_fetch_add(&ex->refs, 1);
    m->ex = ex;
    m->fn = fn;
    m->args = args;
    m->lens = arg_lens;
    m->n = n;
    m->cap = cap;
    m->ring = ring;
    m->deadline = mo->timeout > 0 ? cf_deadline_after(mo->timeout) : CF_NO_DEADLINE;
    m->chunk = mo->chunksize > 1 && ex->ops->submit_chunk && ex->opts.max_queue == 0
                   ? mo->chunksize
                   : 1;
    /* Whole chunks as one task each, unless buffersize bounds the items out. */
    m->blobs = m->chunk > 1 && ex->ops->submit_blob && cap == n;
    for (size_t i = 0; i < CF_MIN(cap, 1); i++) {
        m->ring[i] = map_submit_one(m, i);
        m->submitted++;
        /* The first item decides, as Python's eager submit would raise. */
        if (i == 0 && (!m->ring[0] || cf_future_failed(m->ring[0]))) {
            future_t *f0 = m->ring[0];
            int code = FUT_ENOMEM;
            const future_error_t *err;
            if (f0 && future_exception(f0, 0, &err) == 0 && err &&
                (err->status == FUT_ESHUTDOWN || err->status == FUT_EBROKEN ||
                 err->status == FUT_ENOMEM || err->status == FUT_ESYS))
                code = err->status;
            else if (f0)
                continue; /* an ordinary task failure: the map goes on */
            executor_map_free(m);
            return cf_fail_null(code);
        }
    }
    map_fill(m);
    return m;
}

/* Seconds left until the map's deadline, as a future_result timeout. */
static double map_time_left(const executor_map_t *m)
{
    if (m->deadline == CF_NO_DEADLINE)
        return FUT_FOREVER;
    int64_t left = m->deadline - cf_now_ns();
    return left > 0 ? (double)left / (double)CF_NS_PER_S : 0;
}

/* Cancels every item handed to the executor and not yet handed out. */
static void map_cancel_rest(executor_map_t *m)
{
    /*
     * Last first: asking a running item to stop (task_should_stop) could let
     * its worker start the next item before that one's cancel came.
     */
    for (size_t i = m->submitted; i-- > m->yielded;) {
        future_t **slot = &m->ring[i % m->cap];
        future_cancel(slot_future(*slot));
        future_unref(slot_future(*slot));
        *slot = NULL;
    }
    m->yielded = m->submitted;
}

/* The next item from the chunk future in @slot (see map_submit_blob). */
static int map_next_blob(executor_map_t *m, future_t **slot, const void **data, size_t *len)
{
    future_t *f = slot_future(*slot);
    int rc = 0;
    if (m->cur != f) {
        const void *p;
        size_t plen;
        rc = future_result(f, map_time_left(m), &p, &plen);
        if (rc == FUT_ETIMEDOUT) {
            map_cancel_rest(m);
            m->finished = true;
            return FUT_ETIMEDOUT;
        }
        if (rc == 0) {
            future_unref(m->cur);
            m->cur = future_ref(f);
            m->cur_p = p;
            m->cur_len = plen;
            m->cur_off = CF_WIRE_RESULTS_FIXED;
        }
    }
    const void *d = NULL;
    size_t dlen = 0;
    if (rc == 0) {
        /* The pool checked every answer when the frame came in. */
        uint32_t kind;
        int32_t code;
        if (cf_wire_next_answer(m->cur_p, m->cur_len, &m->cur_off, &kind, &code, &d, &dlen) !=
            0)
            rc = FUT_ESYS;
        else if (kind != 0)
            rc = FUT_ETASK;
        if (rc != 0)
            d = NULL, dlen = 0;
        if (m->cur_off >= m->cur_len) {
            future_unref(m->cur); /* the slot's reference (m->last) keeps the data */
            m->cur = NULL;
        }
    }
    if (data)
        *data = d;
    if (len)
        *len = dlen;
    *slot = NULL;
    m->yielded++;
    m->last = f; /* the slot's reference */
    map_fill(m);
    return rc;
}

int executor_map_next(executor_map_t *m, const void **data, size_t *len)
{
    if (!m)
        return FUT_EINVAL;
    future_unref(m->last);
    m->last = NULL;
    if (m->finished || m->yielded == m->n)
        return FUT_EOF;
    future_t **slot = &m->ring[m->yielded % m->cap];
    future_t *f = *slot;
    if (!f) {
        *slot = NULL;
        m->yielded++;
        map_fill(m);
        return FUT_ENOMEM;
    }
    if ((uintptr_t)f & BLOB_TAG)
        return map_next_blob(m, slot, data, len);
    int rc = future_result(f, map_time_left(m), data, len);
    if (rc == FUT_ETIMEDOUT) {
        /* Python: the remaining calls are cancelled; the iterator is over. */
        map_cancel_rest(m);
        m->finished = true;
        return FUT_ETIMEDOUT;
    }
    *slot = NULL;
    m->yielded++;
    m->last = f;
    map_fill(m);
    return rc;
}

void executor_map_free(executor_map_t *m)
{
    if (!m)
        return;
    future_unref(m->last);
    future_unref(m->cur);
    if (m->cap)
        map_cancel_rest(m);
    free(m->ring);
    cf_executor_unref(m->ex);
    free(m);
}
