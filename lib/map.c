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
 * A chunk holds as many items as the pool can carry in one task
 * (ops->chunk_fit), so the units are known ahead and an eager map's ring
 * holds them all; a chunk whose submit fails (no memory, shut down) is one
 * failed unit, its code for each of its items. The first unit goes out
 * alone: if it fails for the whole executor, executor_map fails having
 * submitted nothing.
 *
 * Unordered maps (map_options_t.unordered) hand units out as they complete:
 * each unit's future is watched by the map's own waiter (waiter.h, one
 * cf_wnode in each ring entry), whose ready list says which unit is done
 * next; that unit's items then come in order. Units leave the ring out of
 * order, so its entries are reused through a stack of free slots rather than
 * head and tail.
 *
 * executor_map_error keeps a reference to the future of the last item that
 * failed, whose future_error_t it hands out.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "executor.h"
#include "util.h"
#include "waiter.h"

/* What one ring entry holds: items [first, first + count) in one future. */
struct map_unit {
    future_t *f;          /* one reference; NULL: no memory for even a failed future */
    size_t first;         /* the unit's first item */
    size_t count;         /* items in it */
    bool chunk;           /* f's result holds count answers (ops->chunk_next) */
    size_t no;            /* unordered: the unit's number (submit order) */
    struct cf_wnode node; /* unordered: watches f for the map's waiter */
};

struct executor_map {
    executor_t *ex; /* a reference: the executor outlives the map */
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
    int res_rc;     /* the head unit's future_result code once read */
    bool res_known; /* res and res_rc are set */
    future_t *last; /* the unit used up last: keeps its data alive */
    int64_t deadline;
    bool finished; /* timed out: only FUT_EOF from now on */
    /* Unordered maps. */
    bool unordered;
    struct cf_waiter w; /* the units' futures notify it */
    size_t *free_slots; /* ring entries not in use: a stack */
    size_t n_free;
    size_t cur; /* the ring entry being handed out, or NO_UNIT */
    /* executor_map_error */
    const future_error_t *err; /* the last failed item's error, or NULL */
    future_t *err_f;           /* a reference keeping *err alive, or NULL */
    void *owned;               /* executor_map_array's argument arrays */
};

#define NO_UNIT SIZE_MAX

/* Errors with no future of their own to live in. */
static const future_error_t cancelled_error = {FUT_ECANCELLED, 0,
                                               "the item was cancelled", -1, 0};
static const future_error_t nomem_error = {FUT_ENOMEM, ENOMEM,
                                           "no memory to submit the item", -1, 0};
static const future_error_t chunk_item_error = {
    FUT_ETASK, 0, "an item of a chunk raised (a chunk keeps no item's message)", -1, 0};

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
    assert(m->args && i < m->n); /* n > 0 items: executor_map checked args */
    future_t *f = executor_submit(m->ex, m->fn, m->args[i], m->lens ? m->lens[i] : 0);
    *code = f ? 0 : -errno;
    if (!f)
        f = failed_future(*code);
    return (struct map_unit){.f = f, .first = i, .count = 1};
}

/* Items in the unit that starts at item @i. */
static size_t unit_items(const executor_map_t *m, size_t i)
{
    size_t k = CF_MIN(m->chunk, m->n - i);
    return k >= 2 ? m->ex->ops->chunk_fit(m->lens ? m->lens + i : NULL, k) : k;
}

/* Submits the next unit: a chunk where it can, else one item. */
static struct map_unit submit_unit(executor_map_t *m, int *code)
{
    size_t i = m->next_item;
    size_t k = unit_items(m, i);
    if (k == 1)
        return submit_item(m, i, code);
    future_t *f = cf_executor_submit_chunk(m->ex, m->fn, m->args + i,
                                           m->lens ? m->lens + i : NULL, k);
    *code = f ? 0 : -errno;
    if (!f)
        f = failed_future(*code);
    return (struct map_unit){.f = f, .first = i, .count = k, .chunk = true};
}

/* Unordered: watches the unit in ring entry @slot (done ones are ready at once). */
static void watch_unit(executor_map_t *m, size_t slot)
{
    struct map_unit *u = &m->ring[slot];
    u->node.waiter = &m->w;
    u->node.ready_next = NULL;
    u->node.f = u->f;
    if (u->f && cf_future_watch(u->f, &u->node))
        return;
    u->node.linked = false;
    cf_waiter_notify(&u->node, false); /* done already (or no future): ready now */
}

/* Unordered: submits up to @limit units into free ring entries; returns the
   first unit's code. */
static int map_fill_unordered(executor_map_t *m, size_t limit)
{
    int first = 0;
    for (; limit && m->next_item < m->n && m->n_free > 0; limit--) {
        int code;
        bool is_first = m->next_item == 0;
        size_t slot = m->free_slots[--m->n_free];
        m->ring[slot] = submit_unit(m, &code);
        if (is_first)
            first = code;
        m->next_item += m->ring[slot].count;
        m->ring[slot].no = m->tail++;
        watch_unit(m, slot);
    }
    return first;
}

/* Submits up to @limit units while the ring has room; returns the first
   unit's code (0 if this call did not submit it). */
static int map_fill(executor_map_t *m, size_t limit)
{
    if (m->unordered)
        return map_fill_unordered(m, limit);
    int first = 0;
    for (; limit && m->next_item < m->n && m->tail - m->head < m->cap; limit--) {
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

/* Units needed for the map's items, counted up to @enough + 1 (0: all). */
static size_t units_for(const executor_map_t *m, size_t enough)
{
    if (m->chunk == 1)
        return m->n;
    size_t units = 0;
    for (size_t i = 0; i < m->n && (!enough || units <= enough); i += unit_items(m, i))
        units++;
    return units;
}

static executor_map_t *map_alloc(executor_t *ex, const size_t *lens, size_t n,
                                 const map_options_t *mo)
{
    executor_map_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->ex = ex;
    m->lens = lens;
    m->n = n;
    m->chunk = mo->chunksize > 1 && ex->ops->submit_chunk ? mo->chunksize : 1;
    size_t units = units_for(m, mo->buffersize);
    m->cap = mo->buffersize && mo->buffersize < units ? mo->buffersize : units;
    /* No memory holds that many (and sanitizers abort on calloc's overflow). */
    if (m->cap > SIZE_MAX / sizeof(*m->ring)) {
        free(m);
        return NULL;
    }
    m->ring = m->cap ? calloc(m->cap, sizeof(*m->ring)) : NULL;
    m->unordered = mo->unordered;
    m->cur = NO_UNIT;
    if (m->unordered && m->cap) {
        /* no fill for a failed ring */
        m->free_slots = m->ring ? calloc(m->cap, sizeof(*m->free_slots)) : NULL;
        for (size_t i = 0; m->free_slots && i < m->cap; i++)
            m->free_slots[i] = m->cap - 1 - i; /* slot 0 on top */
        m->n_free = m->cap;
    }
    if (m->cap && (!m->ring || (m->unordered && !m->free_slots))) {
        free(m->ring);
        free(m->free_slots);
        free(m);
        return NULL;
    }
    if (m->unordered)
        cf_waiter_init(&m->w);
    return m;
}

/* executor_map with @owned (freed with the map, on every path). */
static executor_map_t *map_new(executor_t *ex, task_fn fn, const void *const *args,
                               const size_t *arg_lens, size_t n, const map_options_t *mo,
                               void *owned)
{
    executor_map_t *m = map_alloc(ex, arg_lens, n, mo);
    if (!m) {
        free(owned);
        return cf_fail_null(FUT_ENOMEM);
    }
    cf_executor_ref(ex);
    m->fn = fn;
    m->args = args;
    m->owned = owned;
    m->deadline = mo->timeout > 0 ? cf_deadline_after(mo->timeout) : CF_NO_DEADLINE;
    /* The first unit, alone, decides, as Python's eager submit would raise. */
    int code = map_fill(m, 1);
    if (code == FUT_ESHUTDOWN || code == FUT_EBROKEN || code == FUT_ENOMEM ||
        code == FUT_ESYS) {
        executor_map_free(m);
        return cf_fail_null(code);
    }
    map_fill(m, SIZE_MAX);
    return m;
}

/* 0, or the code executor_map fails with before it allocates anything. */
static int map_args_check(executor_t *ex, task_fn fn, bool args_ok,
                          const map_options_t *mo)
{
    if (!ex || !fn || !args_ok || !isfinite(mo->timeout) || mo->timeout < 0)
        return FUT_EINVAL;
    if (atomic_load(&ex->shut))
        return FUT_ESHUTDOWN;
    if (atomic_load(&ex->broken))
        return FUT_EBROKEN;
    return 0;
}

/* False if an item has a length but no bytes (executor_submit's FUT_EINVAL). */
static bool items_ok(const void *const *args, const size_t *lens, size_t n)
{
    for (size_t i = 0; lens && i < n; i++)
        if (lens[i] && !args[i])
            return false;
    return true;
}

executor_map_t *executor_map(executor_t *ex, task_fn fn, const void *const *args,
                             const size_t *arg_lens, size_t n, const map_options_t *mo)
{
    map_options_t def = {0};
    if (!mo)
        mo = &def;
    bool args_ok = n == 0 || (args && items_ok(args, arg_lens, n));
    int rc = map_args_check(ex, fn, args_ok, mo);
    if (rc < 0)
        return cf_fail_null(rc);
    return map_new(ex, fn, args, arg_lens, n, mo, NULL);
}

executor_map_t *executor_map_array(executor_t *ex, task_fn fn, const void *base,
                                   size_t elem_size, size_t n, const map_options_t *mo)
{
    map_options_t def = {0};
    if (!mo)
        mo = &def;
    bool args_ok = n == 0 || (base && elem_size > 0 && n <= SIZE_MAX / elem_size &&
                              n <= SIZE_MAX / (sizeof(void *) + sizeof(size_t)));
    int rc = map_args_check(ex, fn, args_ok, mo);
    if (rc < 0)
        return cf_fail_null(rc);
    /* One block: the item pointers, then their lengths. */
    void *owned = n ? malloc(n * (sizeof(void *) + sizeof(size_t))) : NULL;
    if (n && !owned)
        return cf_fail_null(FUT_ENOMEM);
    const void **args = owned;
    size_t *lens = (size_t *)(args + n);
    for (size_t i = 0; i < n; i++) {
        args[i] = (const char *)base + i * elem_size;
        lens[i] = elem_size;
    }
    return map_new(ex, fn, args, lens, n, mo, owned);
}

/* Seconds left until the map's deadline, as a future_result timeout. */
static double map_time_left(const executor_map_t *m)
{
    if (m->deadline == CF_NO_DEADLINE)
        return FUT_FOREVER;
    int64_t left = m->deadline - cf_now_ns();
    return left > 0 ? (double)left / (double)CF_NS_PER_S : 0;
}

/* Unordered: stops watching the unit in ring entry @slot, cancels and drops it. */
static void drop_unit(executor_map_t *m, size_t slot)
{
    struct map_unit *u = &m->ring[slot];
    if (u->f) {
        cf_future_unwatch(u->f, &u->node);
        future_cancel(u->f);
        future_unref(u->f);
    }
    u->f = NULL;
    u->count = 0;
}

struct unit_no {
    size_t no, slot;
};

static int later_first(const void *a, const void *b)
{
    size_t x = ((const struct unit_no *)a)->no, y = ((const struct unit_no *)b)->no;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Unordered: stops watching every unit in flight, cancels and drops it. */
static void map_cancel_rest_unordered(executor_map_t *m)
{
    /*
     * The last submitted first, as the ordered path does. Units are done and
     * handed out in any order, so those in flight are sorted by number;
     * without memory for that, in ring order, all the same.
     */
    struct unit_no *order = m->cap ? calloc(m->cap, sizeof(*order)) : NULL;
    if (order) {
        size_t k = 0;
        for (size_t i = 0; i < m->cap; i++)
            if (m->ring[i].count)
                order[k++] = (struct unit_no){m->ring[i].no, i};
        qsort(order, k, sizeof(*order), later_first);
        for (size_t j = 0; j < k; j++)
            drop_unit(m, order[j].slot);
        free(order);
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->ring[i].count)
            drop_unit(m, i);
    m->n_free = 0; /* nothing is submitted any more */
    m->cur = NO_UNIT;
    m->head = m->tail;
    m->yielded = m->n;
}

/* Cancels every unit not yet handed out and drops the ring's references. */
static void map_cancel_rest(executor_map_t *m)
{
    if (m->unordered) {
        map_cancel_rest_unordered(m);
        return;
    }
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

/* The unit being handed out: the ring's head, or (unordered) the current one. */
static struct map_unit *cur_unit(executor_map_t *m)
{
    return m->unordered ? &m->ring[m->cur] : &m->ring[m->head % m->cap];
}

/* The current unit is used up: its reference becomes `last`; refill the ring. */
static void unit_done(executor_map_t *m)
{
    struct map_unit *u = cur_unit(m);
    m->last = u->f;
    u->f = NULL;
    u->count = 0;
    if (m->unordered) {
        m->free_slots[m->n_free++] = m->cur;
        m->cur = NO_UNIT;
    }
    m->head++;
    m->in_unit = 0;
    m->cursor = 0;
    m->res_known = false;
    map_fill(m, SIZE_MAX);
}

/* The next answer of the current unit, whose result is known. */
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

/* Remembers the error of the item that just failed with @rc (executor_map_error). */
static void note_error(executor_map_t *m, const struct map_unit *u, int rc)
{
    const future_error_t *e = NULL;
    future_unref(m->err_f);
    m->err_f = NULL;
    if (!u->f)
        e = &nomem_error;
    else if (rc == FUT_ECANCELLED)
        e = &cancelled_error;
    else if (m->res_rc == 0)
        e = &chunk_item_error; /* one item of a chunk that did run */
    else if (future_exception(u->f, 0, &e) == 0 && e)
        m->err_f = future_ref(u->f);
    m->err = e ? e : &chunk_item_error;
}

/*
 * Unordered: makes a done unit current, waiting until the deadline.
 * 0, or FUT_ETIMEDOUT.
 */
static int pick_unit(executor_map_t *m)
{
    pthread_mutex_lock(&m->w.mu);
    struct cf_wnode *nd;
    while (!(nd = cf_waiter_pop(&m->w))) {
        if (!cf_waiter_sleep(&m->w, m->deadline)) {
            pthread_mutex_unlock(&m->w.mu);
            return FUT_ETIMEDOUT;
        }
    }
    pthread_mutex_unlock(&m->w.mu);
    m->cur = (size_t)((struct map_unit *)((char *)nd - offsetof(struct map_unit, node)) -
                      m->ring);
    /* The notify ran under the future's lock; unwatching waits it out. */
    if (m->ring[m->cur].f)
        cf_future_unwatch(m->ring[m->cur].f, nd);
    return 0;
}

/* Reads the current unit's future once: 0, or FUT_ETIMEDOUT. */
static int unit_result(executor_map_t *m, struct map_unit *u)
{
    if (m->res_known)
        return 0;
    int rc =
        future_result(u->f, m->unordered ? 0 : map_time_left(m), &m->res, &m->res_len);
    if (rc == FUT_ETIMEDOUT)
        return rc;
    m->res_rc = rc;
    m->res_known = true;
    return 0;
}

int executor_map_next_at(executor_map_t *m, size_t *index, const void **data, size_t *len)
{
    if (!m)
        return FUT_EINVAL;
    future_unref(m->last);
    m->last = NULL;
    if (m->finished || m->yielded == m->n)
        return FUT_EOF;
    if (m->unordered && m->cur == NO_UNIT && pick_unit(m) == FUT_ETIMEDOUT)
        goto timed_out;
    assert(m->head < m->tail);
    struct map_unit *u = cur_unit(m);
    size_t item = u->first + m->in_unit;
    int rc = FUT_ENOMEM;
    const void *d = NULL;
    size_t dl = 0;
    if (u->f) {
        if (unit_result(m, u) == FUT_ETIMEDOUT)
            goto timed_out;
        rc = unit_answer(m, u, &d, &dl);
    }
    if (rc != 0)
        note_error(m, u, rc);
    if (index)
        *index = item;
    if (data)
        *data = d;
    if (len)
        *len = dl;
    m->yielded++;
    if (++m->in_unit == u->count)
        unit_done(m);
    return rc;
timed_out:
    /* Python: the remaining calls are cancelled; the iterator is over. */
    map_cancel_rest(m);
    m->finished = true;
    return FUT_ETIMEDOUT;
}

int executor_map_next(executor_map_t *m, const void **data, size_t *len)
{
    return executor_map_next_at(m, NULL, data, len);
}

const future_error_t *executor_map_error(const executor_map_t *m)
{
    return m ? m->err : NULL;
}

void executor_map_free(executor_map_t *m)
{
    if (!m)
        return;
    future_unref(m->last);
    map_cancel_rest(m);
    if (m->unordered)
        cf_waiter_destroy(&m->w);
    future_unref(m->err_f);
    free(m->ring);
    free(m->free_slots);
    free(m->owned);
    cf_executor_unref(m->ex);
    free(m);
}
