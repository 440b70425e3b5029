/*
 * waiters.c: as_completed and futures_wait over many futures, on the
 * waiter primitive of waiter.c. Layer: above the future.
 *
 * DESIGN
 * One waiter per call (on the stack for futures_wait, in the iterator for
 * as_completed), one cf_wnode per watched future. A future done at the start
 * is never watched; every other one links the node into its own waiter list,
 * and its completion moves the node onto the waiter's ready list
 * (cf_waiter_notify, under the future's lock). Nothing polls or rescans: the
 * total work is O(n) for n futures.
 *
 * Duplicates are dropped on entry with a hash set, so each future is
 * watched, counted and yielded once. futures_wait keeps its buckets and
 * chains in fields of its n nodes (find_node), which it frees on return.
 * as_completed keeps its nodes, so its buckets are a temporary array of n
 * 32-bit heads instead: the distinct futures' nodes fill the start of its
 * n-node array and no page past them is touched, so it keeps one 56-byte
 * node per distinct future, however often each was given (with the
 * buckets in the nodes, every page of the n nodes was).
 *
 * Locks: a future's lock, then the waiter's mutex. Code holding the waiter's
 * mutex never takes a future's lock. Unwatching a node takes the future's
 * lock, so once every node is unwatched no notify can still be running and
 * the waiter may be freed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "future.h"

/* ---------------------------------------------------------- watching */

/* Largest n: node indices are 32 bits (plus one for "none"). */
#define MAX_FUTURES ((size_t)UINT32_MAX - 1)

/* What watch_all() found. */
struct watch_start {
    size_t m;                               /* distinct futures: nodes[0, m) */
    struct cf_wnode *done_head, *done_tail; /* in input order, via ready_next */
    size_t done, failed;
};

/* @f's bucket among @n. */
static uint32_t bucket_of(const future_t *f, size_t n)
{
    uint64_t h = ((uint64_t)(uintptr_t)f >> 4) * 0x9E3779B97F4A7C15ull >> 32;
    return (uint32_t)((h * n) >> 32); /* h in [0, 2^32): scaled to [0, n) */
}

/*
 * The node of @f among nodes[0, m), or NULL. Buckets and chains live in the
 * nodes themselves (zeroed beyond m), so deduping costs no memory but them.
 */
static struct cf_wnode *find_node(struct cf_wnode *nodes, size_t n, const future_t *f,
                                  uint32_t *bucket)
{
    *bucket = bucket_of(f, n);
    for (uint32_t j = nodes[*bucket].bucket; j; j = nodes[j - 1].chain)
        if (nodes[j - 1].f == f)
            return &nodes[j - 1];
    return NULL;
}

/*
 * Points @nd (its f set) at @w and watches its future (with @ref, taking a
 * reference first). A future done already is not watched: it is chained
 * and counted in @ws.
 */
static void watch_node(struct cf_waiter *w, struct cf_wnode *nd, bool ref,
                       struct watch_start *ws)
{
    nd->waiter = w;
    if (ref)
        future_ref(nd->f);
    if (cf_future_watch(nd->f, nd))
        return;
    if (ws->done_tail)
        ws->done_tail->ready_next = nd;
    else
        ws->done_head = nd;
    ws->done_tail = nd;
    ws->done++;
    ws->failed += cf_future_failed(nd->f);
}

/*
 * One pass over @fs[0, n) (no NULL in it): one node per distinct future in
 * zeroed @nodes (input order kept), watched as watch_node does. Python
 * dedupes with set(fs).
 */
static void watch_all(struct cf_waiter *w, future_t *const *fs, size_t n,
                      struct cf_wnode *nodes, struct watch_start *ws)
{
    *ws = (struct watch_start){0};
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        if (find_node(nodes, n, fs[i], &b))
            continue; /* a copy: watched and counted once */
        struct cf_wnode *nd = &nodes[ws->m];
        nd->chain = nodes[b].bucket;
        nodes[b].bucket = (uint32_t)++ws->m;
        nd->pos = (uint32_t)i;
        nd->f = fs[i];
        watch_node(w, nd, false, ws);
    }
}

/*
 * as_completed's nodes: one per distinct future of @fs[0, n) (n > 0, no
 * NULL), f and pos set, in input order, *@m of them at the start of an
 * n-node array (cf_zalloc_big: the pages past them are never touched). The
 * buckets are a temporary array of n 32-bit heads, the chains the nodes'
 * own field. NULL: no memory.
 */
static struct cf_wnode *distinct_nodes(future_t *const *fs, size_t n, size_t *m)
{
    uint32_t *heads = cf_zalloc_big(n, sizeof(*heads));
    struct cf_wnode *nodes = heads ? cf_zalloc_big(n, sizeof(*nodes)) : NULL;
    uint32_t k = 0; /* nodes so far: n fits (MAX_FUTURES) */
    for (size_t i = 0; nodes && i < n; i++) {
        uint32_t b = bucket_of(fs[i], n), j = heads[b];
        while (j && nodes[j - 1].f != fs[i])
            j = nodes[j - 1].chain;
        if (j)
            continue; /* a copy: yielded once */
        nodes[k].f = fs[i];
        nodes[k].pos = (uint32_t)i;
        nodes[k].chain = heads[b];
        heads[b] = ++k;
    }
    cf_zalloc_free(heads, n, sizeof(*heads));
    *m = k;
    return nodes;
}

/* False when @fs[0, n) holds a NULL. */
static bool no_null(future_t *const *fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return false;
    return true;
}

/* Unwatches every node: afterwards no notify for them is running. */
static void unwatch_all(struct cf_wnode *nodes, size_t m)
{
    for (size_t i = 0; i < m; i++)
        cf_future_unwatch(nodes[i].f, &nodes[i]);
}

/* ---------------------------------------------------------- as_completed */

struct as_completed {
    struct cf_waiter w;
    struct cf_wnode *nodes; /* one per distinct future; the iterator's owner */
    struct cf_wnode *taken; /* done, taken off the ready list, not yet yielded */
    size_t n;               /* distinct futures */
    size_t cap;             /* nodes allocated (the n given), nodes[0, n) used */
    size_t left;            /* not yet yielded */
    int64_t deadline;
    bool finished; /* after FUT_ETIMEDOUT: only FUT_EOF */
};

as_completed_t *as_completed_new(future_t *const *fs, size_t n, double timeout)
{
    if ((!fs && n > 0) || !cf_timeout_valid(timeout) || n > MAX_FUTURES ||
        !no_null(fs, n))
        return cf_fail_null(FUT_EINVAL);
    as_completed_t *it = calloc(1, sizeof(*it));
    size_t m = 0;
    struct cf_wnode *nodes = it && n ? distinct_nodes(fs, n, &m) : NULL;
    if (!it || (n && !nodes)) {
        free(it);
        return cf_fail_null(FUT_ENOMEM);
    }
    cf_waiter_init(&it->w);
    it->nodes = nodes;
    it->cap = n;
    it->deadline = cf_deadline_after(timeout);
    /* A reference each, the iterator's until yielded; done ones go first. */
    struct watch_start ws = {.m = m};
    for (size_t i = 0; i < m; i++)
        watch_node(&it->w, &nodes[i], true, &ws);
    it->n = it->left = m;
    it->taken = ws.done_head; /* only this thread knows of them yet */
    return it;
}

int as_completed_next(as_completed_t *it, future_t **out)
{
    return as_completed_next_at(it, out, NULL);
}

/* The next done node: from those taken, else the ready list (batched: one
 * lock per batch, not per future); NULL when @it->deadline passed. */
static struct cf_wnode *next_done(as_completed_t *it)
{
    if (!it->taken) {
        pthread_mutex_lock(&it->w.mu);
        while (!it->w.ready_head) {
            if (!cf_waiter_sleep(&it->w, it->deadline)) {
                pthread_mutex_unlock(&it->w.mu);
                return NULL;
            }
        }
        it->taken = it->w.ready_head;
        it->w.ready_head = it->w.ready_tail = NULL;
        pthread_mutex_unlock(&it->w.mu);
    }
    struct cf_wnode *nd = it->taken;
    it->taken = nd->ready_next;
    return nd;
}

int as_completed_next_at(as_completed_t *it, future_t **out, size_t *index)
{
    if (!it || !out)
        return FUT_EINVAL;
    if (it->finished || it->left == 0)
        return FUT_EOF;
    struct cf_wnode *nd = next_done(it);
    if (!nd) {
        it->finished = true;
        return FUT_ETIMEDOUT;
    }
    nd->yielded = true;
    it->left--;
    *out = nd->f; /* the iterator's reference goes to the caller */
    if (index)
        *index = nd->pos;
    return 0;
}

void as_completed_free(as_completed_t *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->n; i++) {
        struct cf_wnode *nd = &it->nodes[i];
        if (nd->yielded)
            continue;
        cf_future_unwatch(nd->f, nd);
        future_unref(nd->f);
    }
    cf_waiter_destroy(&it->w);
    cf_zalloc_free(it->nodes, it->cap, sizeof(*it->nodes));
    free(it);
}

/* ---------------------------------------------------------- futures_wait */

static bool wait_met(futures_wait_mode mode, size_t done, size_t failed, size_t total)
{
    switch (mode) {
    case FUTURES_FIRST_COMPLETED:
        return done > 0 || total == 0;
    case FUTURES_FIRST_EXCEPTION:
        return failed > 0 || done == total;
    case FUTURES_ALL_COMPLETED:
        break;
    }
    return done == total;
}

/* Sleeps on @w until @mode is met over @m futures or @deadline passes. */
static int wait_until_met(struct cf_waiter *w, futures_wait_mode mode,
                          const struct watch_start *ws, size_t m, int64_t deadline)
{
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    while (!wait_met(mode, ws->done + w->n_notified, ws->failed + w->n_failed, m)) {
        if (!cf_waiter_sleep(w, deadline)) {
            rc = FUT_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Fills the caller's done and not-done lists as the futures stand now. */
static void split_done(const struct cf_wnode *nodes, size_t m, future_t **done,
                       size_t *n_done, future_t **not_done, size_t *n_not_done)
{
    for (size_t i = 0; i < m; i++) {
        bool is_done = future_done(nodes[i].f);
        future_t **list = is_done ? done : not_done;
        size_t *count = is_done ? n_done : n_not_done;
        if (list)
            list[*count] = nodes[i].f;
        if (count)
            (*count)++;
    }
}

static bool wait_args_ok(future_t *const *fs, size_t n, double timeout,
                         futures_wait_mode mode, future_t **done, size_t *n_done,
                         future_t **not_done, size_t *n_not_done)
{
    return (fs || n == 0) && cf_timeout_valid(timeout) &&
           (mode == FUTURES_FIRST_COMPLETED || mode == FUTURES_FIRST_EXCEPTION ||
            mode == FUTURES_ALL_COMPLETED) &&
           (!done || n_done) && (!not_done || n_not_done) && n <= MAX_FUTURES &&
           no_null(fs, n);
}

int futures_wait(future_t *const *fs, size_t n, double timeout, futures_wait_mode mode,
                 future_t **done, size_t *n_done, future_t **not_done, size_t *n_not_done)
{
    if (!wait_args_ok(fs, n, timeout, mode, done, n_done, not_done, n_not_done))
        return FUT_EINVAL;
    struct cf_wnode small[16] = {0};
    struct cf_wnode *nodes = n <= 16 ? small : cf_zalloc_big(n, sizeof(*nodes));
    if (!nodes)
        return FUT_ENOMEM; /* the caller's counts as they were */
    if (n_done)
        *n_done = 0;
    if (n_not_done)
        *n_not_done = 0;
    if (n == 0)
        return 0;
    int64_t deadline = cf_deadline_after(timeout);
    struct cf_waiter w;
    struct watch_start ws;
    cf_waiter_init(&w);
    watch_all(&w, fs, n, nodes, &ws);
    int rc = wait_until_met(&w, mode, &ws, ws.m, deadline);
    unwatch_all(nodes, ws.m);
    cf_waiter_destroy(&w);
    split_done(nodes, ws.m, done, n_done, not_done, n_not_done);
    if (nodes != small)
        cf_zalloc_free(nodes, n, sizeof(*nodes));
    return rc;
}
