/*
 * map.c: executor_map over any executor (Python's Executor.map). Layer:
 * above executor.c, beside the pools; it reaches a pool only through the
 * ops table (executor.h).
 *
 * DESIGN
 * The items go out in units: one item per unit, or, with chunksize > 1 on a
 * kind that has ops->submit_chunk (the process pool), a chunk of items as ONE
 * task, whose result holds every item's answer (Python's
 * ProcessPoolExecutor.map(chunksize) does the same). A ring of units holds
 * what was submitted and not yet handed out; buffersize bounds the units in
 * flight (Python 3.14 counts its chunks the same way), otherwise every unit
 * is submitted at once.
 *
 * executor_map_next reads the ring's head unit: its future's result, then,
 * for a chunk, the next answer through ops->chunk_next. A unit whose future
 * failed (cancelled, broken pool, dead worker) gives its status for each of
 * its items. Once a unit is used up its reference moves to `last`, which
 * keeps the data handed out alive until the next call.
 *
 * A chunk that cannot be submitted (e.g. one item too large) goes out item
 * by item instead, so that each item reports its own error.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "executor.h"
#include "util.h"

/* What one ring entry holds: items [first, first + count) in one future. */
struct map_unit {
    future_t *f;  /* one reference; NULL: no memory for even a failed future */
    size_t first; /* the unit's first item */
    size_t count; /* items in it */
    bool chunk;   /* f's result holds count answers (ops->chunk_next) */
};

struct executor_map {
    executor_t *ex;          /* a reference: the executor outlives the map */
    task_fn fn;
    const void *const *args; /* borrowed until executor_map_free */
    const size_t *lens;      /* may be NULL */
    size_t n;                /* items */
    size_t chunk;            /* items per unit: chunksize, or 1 */
    struct map_unit *ring;   /* units [head, tail) live at ring[i % cap] */
    size_t cap;              /* units in flight at most */
    size_t head, tail;       /* units handed out / submitted */
    size_t next_item;        /* items [0, next_item) are in units */
    size_t yielded;          /* items handed out */
    size_t in_unit;          /* of the head unit's items, handed out */
    size_t cursor;           /* the head chunk's chunk_next cursor */
    const void *res;         /* the head chunk's result once read */
    size_t res_len;
    int res_rc;              /* the head unit's future_result code once read */
    bool res_known;          /* res and res_rc are set */
    future_t *last;          /* the unit used up last: keeps its data alive */
    int64_t deadline;
    bool finished;           /* timed out: only FUT_EOF from now on */
};

/* A future already failed with @code (a submit that did not happen). */
static future_t *failed_future(int code)
{
    future_t *f = cf_future_alloc(0, NULL);
    if (f)
        cf_future_fail(f, code, 0, -1, 0, future_strerror(code));
    return f; /* NULL: executor_map_next reports FUT_ENOMEM */
}

/* Submits item @i alone; a submit that fails becomes a failed future. */
static struct map_unit submit_item(executor_map_t *m, size_t i, int *code)
{
    future_t *f = executor_submit(m->ex, m->fn, m->args[i], m->lens ? m->lens[i] : 0);
    *code = f ? 0 : -errno;
    if (!f)
        f = failed_future(*code);
    return (struct map_unit){.f = f, .first = i, .count = 1};
}

/* Submits the next unit: a chunk where it can, else one item. */
static struct map_unit submit_unit(executor_map_t *m, int *code)
{
    size_t i = m->next_item;
    size_t k = CF_MIN(m->chunk, m->n - i);
    if (k >= 2) {
        future_t *f = cf_executor_submit_chunk(m->ex, m->fn, m->args + i,
                                               m->lens ? m->lens + i : NULL, k);
        if (f) {
            *code = 0;
            return (struct map_unit){.f = f, .first = i, .count = k, .chunk = true};
        }
        /* Item by item instead: each reports its own error. */
    }
    return submit_item(m, i, code);
}

/* Submits units while the ring has room; returns the first submit's code. */
static int map_fill(executor_map_t *m)
{
    int first = 0;
    while (m->next_item < m->n && m->tail - m->head < m->cap) {
        int code;
        struct map_unit u = submit_unit(m, &code);
        if (m->tail == 0)
            first = code;
        m->ring[m->tail % m->cap] = u;
        m->tail++;
        m->next_item += u.count;
    }
    return first;
}

/* Units needed for @n items in chunks of @chunk. */
static size_t units_for(size_t n, size_t chunk)
{
    return n / chunk + (n % chunk != 0);
}

static executor_map_t *map_alloc(executor_t *ex, size_t n, const map_options_t *mo)
{
    executor_map_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->chunk = mo->chunksize > 1 && ex->ops->submit_chunk ? mo->chunksize : 1;
    size_t units = units_for(n, m->chunk);
    m->cap = mo->buffersize && mo->buffersize < units ? mo->buffersize : units;
    m->ring = m->cap ? calloc(m->cap, sizeof(*m->ring)) : NULL;
    if (m->cap && !m->ring) {
        free(m);
        return NULL;
    }
    return m;
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
    executor_map_t *m = map_alloc(ex, n, mo);
    if (!m)
        return cf_fail_null(FUT_ENOMEM);
    cf_executor_ref(ex);
    m->ex = ex;
    m->fn = fn;
    m->args = args;
    m->lens = arg_lens;
    m->n = n;
    m->deadline = mo->timeout > 0 ? cf_deadline_after(mo->timeout) : CF_NO_DEADLINE;
    /* The first submit decides, as Python's eager submit would raise. */
    int code = map_fill(m);
    if (code == FUT_ESHUTDOWN || code == FUT_EBROKEN || code == FUT_ENOMEM ||
        code == FUT_ESYS) {
        executor_map_free(m);
        return cf_fail_null(code);
    }
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

/* Cancels every unit not yet handed out and drops the ring's references. */
static void map_cancel_rest(executor_map_t *m)
{
    /*
     * Last first: asking a running unit to stop (task_should_stop) could let
     * its worker start the next unit before that one's cancel came.
     */
    for (size_t i = m->tail; i-- > m->head;) {
        struct map_unit *u = &m->ring[i % m->cap];
        future_cancel(u->f);
        future_unref(u->f);
        u->f = NULL;
    }
    m->head = m->tail;
    m->yielded = m->n;
}

/* The head unit is used up: its reference becomes `last`; refill the ring. */
static void unit_done(executor_map_t *m)
{
    struct map_unit *u = &m->ring[m->head % m->cap];
    m->last = u->f;
    u->f = NULL;
    m->head++;
    m->in_unit = 0;
    m->cursor = 0;
    m->res_known = false;
    map_fill(m);
}

/* The next answer of the head unit, whose result is known. */
static int unit_answer(executor_map_t *m, const struct map_unit *u, const void **data,
                       size_t *len)
{
    *data = NULL;
    *len = 0;
    if (m->res_rc != 0 || !u->chunk) {
        if (m->res_rc == 0)
            *data = m->res, *len = m->res_len;
        return m->res_rc;
    }
    int rc = m->ex->ops->chunk_next(m->res, m->res_len, &m->cursor, data, len);
    /* The pool checked every answer when it came in: fewer is a pool bug. */
    assert(rc != FUT_EOF);
    return rc == FUT_EOF ? FUT_ESYS : rc;
}

int executor_map_next(executor_map_t *m, const void **data, size_t *len)
{
    if (!m)
        return FUT_EINVAL;
    future_unref(m->last);
    m->last = NULL;
    if (m->finished || m->yielded == m->n)
        return FUT_EOF;
    assert(m->head < m->tail);
    struct map_unit *u = &m->ring[m->head % m->cap];
    if (!u->f) {
        m->yielded++;
        if (++m->in_unit == u->count)
            unit_done(m);
        return FUT_ENOMEM;
    }
    if (!m->res_known) {
        int rc = future_result(u->f, map_time_left(m), &m->res, &m->res_len);
        if (rc == FUT_ETIMEDOUT) {
            /* Python: the remaining calls are cancelled; the iterator is over. */
            map_cancel_rest(m);
            m->finished = true;
            return FUT_ETIMEDOUT;
        }
        m->res_rc = rc;
        m->res_known = true;
    }
    const void *d;
    size_t dl;
    int rc = unit_answer(m, u, &d, &dl);
    if (data)
        *data = d;
    if (len)
        *len = dl;
    m->yielded++;
    if (++m->in_unit == u->count)
        unit_done(m);
    return rc;
}

void executor_map_free(executor_map_t *m)
{
    if (!m)
        return;
    future_unref(m->last);
    map_cancel_rest(m);
    free(m->ring);
    cf_executor_unref(m->ex);
    free(m);
}
