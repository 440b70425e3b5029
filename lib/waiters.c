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
 * Duplicates are dropped on entry with a pointer set (open addressing, sized
 * 2n), so each future is watched, counted and yielded once.
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

/* ---------------------------------------------------------- dedupe */

/*
 * Copies the distinct futures of fs into out (input order kept) and, when
 * @pos is not NULL, the position in @fs of each one's first copy; returns how
 * many, or -1 when out of memory. Fails on a NULL entry with -2.
 */
static long unique_futures(future_t *const *fs, size_t n, future_t **out, size_t *pos)
{
    size_t m = 0;
    if (n <= 8) {
        for (size_t i = 0; i < n; i++) {
            if (!fs[i])
                return -2;
            size_t j = 0;
            while (j < m && out[j] != fs[i])
                j++;
            if (j == m) {
                if (pos)
                    pos[m] = i;
                out[m++] = fs[i];
            }
        }
        return (long)m;
    }
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    future_t **set = calloc(cap, sizeof(*set));
    if (!set)
        return -1;
    for (size_t i = 0; i < n; i++) {
        future_t *f = fs[i];
        if (!f) {
            free(set);
            return -2;
        }
        size_t h = (size_t)(((uintptr_t)f >> 4) * 0x9E3779B97F4A7C15ull) & (cap - 1);
        while (set[h] && set[h] != f)
            h = (h + 1) & (cap - 1);
        if (!set[h]) {
            set[h] = f;
            if (pos)
                pos[m] = i;
            out[m++] = f;
        }
    }
    free(set);
    return (long)m;
}

/* ---------------------------------------------------------- watching */

/* What watch_all() found done already. */
struct watch_start {
    struct cf_wnode *done_head, *done_tail; /* in input order, via ready_next */
    size_t done, failed;
};

/*
 * Points one node per future of @fs[0, m) at @w and watches it (with @ref,
 * taking a reference to each first). Futures done already are not watched:
 * they are chained and counted in @ws.
 */
static void watch_all(struct cf_waiter *w, future_t *const *fs, size_t m,
                      struct cf_wnode *nodes, bool ref, struct watch_start *ws)
{
    *ws = (struct watch_start){0};
    for (size_t i = 0; i < m; i++) {
        struct cf_wnode *nd = &nodes[i];
        if (ref)
            future_ref(fs[i]); /* in the same pass: one walk over n futures */
        nd->waiter = w;
        nd->f = fs[i];
        nd->yielded = false;
        nd->ready_next = NULL;
        if (cf_future_watch(fs[i], nd))
            continue;
        if (ws->done_tail)
            ws->done_tail->ready_next = nd;
        else
            ws->done_head = nd;
        ws->done_tail = nd;
        ws->done++;
        ws->failed += cf_future_failed(fs[i]);
    }
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
    size_t *pos;            /* nodes[i]'s future is fs[pos[i]] (its first copy) */
    size_t n;               /* distinct futures */
    size_t left;            /* not yet yielded */
    int64_t deadline;
    bool finished; /* after FUT_ETIMEDOUT: only FUT_EOF */
};

as_completed_t *as_completed_new(future_t *const *fs, size_t n, double timeout)
{
    if ((!fs && n > 0) || !cf_timeout_valid(timeout) ||
        n > SIZE_MAX / sizeof(struct cf_wnode))
        return cf_fail_null(FUT_EINVAL);
    as_completed_t *it = calloc(1, sizeof(*it));
    future_t **uniq = n ? malloc(n * sizeof(*uniq)) : NULL;
    struct cf_wnode *nodes = n ? malloc(n * sizeof(*nodes)) : NULL;
    size_t *pos = n ? malloc(n * sizeof(*pos)) : NULL;
    long m = -1;
    if (it && n == 0)
        m = 0;
    else if (it && uniq && nodes && pos)
        m = unique_futures(fs, n, uniq, pos);
    if (m < 0 || !it) {
        free(it);
        free(uniq);
        free(nodes);
        free(pos);
        return cf_fail_null(m == -2 ? FUT_EINVAL : FUT_ENOMEM);
    }
    cf_waiter_init(&it->w);
    it->nodes = nodes;
    it->pos = pos;
    it->n = it->left = (size_t)m;
    it->deadline = cf_deadline_after(timeout);
    /* A reference each, the iterator's until yielded; done ones go first. */
    struct watch_start ws;
    watch_all(&it->w, uniq, (size_t)m, nodes, true, &ws);
    free(uniq);
    if (ws.done_head) {
        pthread_mutex_lock(&it->w.mu);
        cf_waiter_push_front(&it->w, ws.done_head, ws.done_tail);
        pthread_mutex_unlock(&it->w.mu);
    }
    return it;
}

int as_completed_next(as_completed_t *it, future_t **out)
{
    return as_completed_next_at(it, out, NULL);
}

int as_completed_next_at(as_completed_t *it, future_t **out, size_t *index)
{
    if (!it || !out)
        return FUT_EINVAL;
    if (it->finished || it->left == 0)
        return FUT_EOF;
    pthread_mutex_lock(&it->w.mu);
    struct cf_wnode *nd;
    while (!(nd = cf_waiter_pop(&it->w))) {
        if (!cf_waiter_sleep(&it->w, it->deadline)) {
            pthread_mutex_unlock(&it->w.mu);
            it->finished = true;
            return FUT_ETIMEDOUT;
        }
    }
    pthread_mutex_unlock(&it->w.mu);
    nd->yielded = true;
    it->left--;
    *out = nd->f; /* the iterator's reference goes to the caller */
    if (index)
        *index = it->pos[nd - it->nodes];
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
    free(it->nodes);
    free(it->pos);
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
static void split_done(future_t *const *fs, size_t m, future_t **done, size_t *n_done,
                       future_t **not_done, size_t *n_not_done)
{
    for (size_t i = 0; i < m; i++) {
        bool is_done = future_done(fs[i]);
        future_t **list = is_done ? done : not_done;
        size_t *count = is_done ? n_done : n_not_done;
        if (list)
            list[*count] = fs[i];
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
           (!done || n_done) && (!not_done || n_not_done) &&
           n <= SIZE_MAX / sizeof(struct cf_wnode);
}

int futures_wait(future_t *const *fs, size_t n, double timeout, futures_wait_mode mode,
                 future_t **done, size_t *n_done, future_t **not_done, size_t *n_not_done)
{
    if (!wait_args_ok(fs, n, timeout, mode, done, n_done, not_done, n_not_done))
        return FUT_EINVAL;
    if (n_done)
        *n_done = 0;
    if (n_not_done)
        *n_not_done = 0;
    if (n == 0)
        return 0;
    future_t *small_u[16];
    struct cf_wnode small_n[16];
    future_t **uniq = n <= 16 ? small_u : malloc(n * sizeof(*uniq));
    struct cf_wnode *nodes = n <= 16 ? small_n : malloc(n * sizeof(*nodes));
    long m = uniq && nodes ? unique_futures(fs, n, uniq, NULL) : -1;
    int rc = m == -2 ? FUT_EINVAL : FUT_ENOMEM;
    if (m >= 0) {
        int64_t deadline = cf_deadline_after(timeout);
        struct cf_waiter w;
        struct watch_start ws;
        cf_waiter_init(&w);
        watch_all(&w, uniq, (size_t)m, nodes, false, &ws);
        rc = wait_until_met(&w, mode, &ws, (size_t)m, deadline);
        unwatch_all(nodes, (size_t)m);
        cf_waiter_destroy(&w);
        split_done(uniq, (size_t)m, done, n_done, not_done, n_not_done);
    }
    if (uniq != small_u)
        free(uniq);
    if (nodes != small_n)
        free(nodes);
    return rc;
}
