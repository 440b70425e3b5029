/*
 * waiters.c: as_completed and futures_wait over many futures.
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

#include "waiters.h"

/* ---------------------------------------------------------- the waiter */

void cf_waiter_init(struct cf_waiter *w)
{
    pthread_condattr_t ca;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->ready_head = w->ready_tail = NULL;
    w->n_notified = 0;
    w->n_failed = 0;
    w->sleeping = false;
}

void cf_waiter_destroy(struct cf_waiter *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

void cf_waiter_notify(struct cf_wnode *n)
{
    struct cf_waiter *w = n->waiter;
    pthread_mutex_lock(&w->mu);
    n->ready_next = NULL;
    if (w->ready_tail)
        w->ready_tail->ready_next = n;
    else
        w->ready_head = n;
    w->ready_tail = n;
    w->n_notified++;
    if (cf_future_failed(n->f))
        w->n_failed++;
    if (w->sleeping)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

bool cf_waiter_sleep(struct cf_waiter *w, int64_t deadline)
{
    if (deadline != CF_NO_DEADLINE && cf_now_ns() >= deadline)
        return false;
    w->sleeping = true;
    if (deadline == CF_NO_DEADLINE) {
        pthread_cond_wait(&w->cv, &w->mu);
    } else {
        struct timespec ts;
        cf_ns_to_timespec(deadline, &ts);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    w->sleeping = false;
    return true;
}

static struct cf_wnode *pop_ready(struct cf_waiter *w)
{
    struct cf_wnode *n = w->ready_head;
    if (n) {
        w->ready_head = n->ready_next;
        if (!w->ready_head)
            w->ready_tail = NULL;
    }
    return n;
}

/* ---------------------------------------------------------- dedupe */

/*
 * Copies the distinct futures of fs into out (input order kept); returns how
 * many, or -1 when out of memory. Fails on a NULL entry with -2.
 */
static long unique_futures(future_t *const *fs, size_t n, future_t **out)
{
    size_t m = 0;
    if (n <= 8) {
        for (size_t i = 0; i < n; i++) {
            if (!fs[i])
                return -2;
            size_t j = 0;
            while (j < m && out[j] != fs[i])
                j++;
            if (j == m)
                out[m++] = fs[i];
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
            out[m++] = f;
        }
    }
    free(set);
    return (long)m;
}

/* ---------------------------------------------------------- as_completed */

struct as_completed {
    struct cf_waiter w;
    struct cf_wnode *nodes; /* one per distinct future; the iterator's owner */
    size_t n;               /* distinct futures */
    size_t left;            /* not yet yielded */
    int64_t deadline;
    bool finished;          /* after FUT_ETIMEDOUT: only FUT_EOF */
};

as_completed_t *as_completed_new(future_t *const *fs, size_t n, double timeout)
{
    if ((!fs && n > 0) || !cf_timeout_valid(timeout) || n > SIZE_MAX / sizeof(struct cf_wnode))
        return cf_fail_null(FUT_EINVAL);
    as_completed_t *it = calloc(1, sizeof(*it));
    future_t **uniq = n ? malloc(n * sizeof(*uniq)) : NULL;
    struct cf_wnode *nodes = n ? malloc(n * sizeof(*nodes)) : NULL;
    if (!it || (n && (!uniq || !nodes))) {
        free(it);
        free(uniq);
        free(nodes);
        return cf_fail_null(FUT_ENOMEM);
    }
    long m = unique_futures(fs, n, uniq);
    if (m < 0) {
        free(it);
        free(uniq);
        free(nodes);
        return cf_fail_null(m == -2 ? FUT_EINVAL : FUT_ENOMEM);
    }
    cf_waiter_init(&it->w);
    it->nodes = nodes;
    it->n = it->left = (size_t)m;
    it->deadline = cf_deadline_after(timeout);

    /* Futures done already go first, in input order, through a private list. */
    struct cf_wnode *done_head = NULL, *done_last = NULL;
    for (size_t i = 0; i < (size_t)m; i++) {
        struct cf_wnode *nd = &nodes[i];
        nd->waiter = &it->w;
        nd->f = future_ref(uniq[i]);
        nd->yielded = false;
        nd->ready_next = NULL;
        if (!cf_future_watch(uniq[i], nd)) {
            if (done_last)
                done_last->ready_next = nd;
            else
                done_head = nd;
            done_last = nd;
        }
    }
    free(uniq);
    if (done_head) {
        pthread_mutex_lock(&it->w.mu);
        done_last->ready_next = it->w.ready_head;
        if (!it->w.ready_head)
            it->w.ready_tail = done_last;
        it->w.ready_head = done_head;
        pthread_mutex_unlock(&it->w.mu);
    }
    return it;
}

int as_completed_next(as_completed_t *it, future_t **out)
{
    if (!it || !out)
        return FUT_EINVAL;
    if (it->finished || it->left == 0)
        return FUT_EOF;
    pthread_mutex_lock(&it->w.mu);
    struct cf_wnode *nd;
    while (!(nd = pop_ready(&it->w))) {
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

int futures_wait(future_t *const *fs, size_t n, double timeout, futures_wait_mode mode,
                 future_t **done, size_t *n_done, future_t **not_done, size_t *n_not_done)
{
    if ((!fs && n > 0) || !cf_timeout_valid(timeout) ||
        (mode != FUTURES_FIRST_COMPLETED && mode != FUTURES_FIRST_EXCEPTION &&
         mode != FUTURES_ALL_COMPLETED) ||
        (done && !n_done) || (not_done && !n_not_done) ||
        n > SIZE_MAX / sizeof(struct cf_wnode))
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
    int rc = FUT_ENOMEM;
    if (!uniq || !nodes)
        goto out;
    long m = unique_futures(fs, n, uniq);
    if (m < 0) {
        rc = m == -2 ? FUT_EINVAL : FUT_ENOMEM;
        goto out;
    }
    int64_t deadline = cf_deadline_after(timeout);
    struct cf_waiter w;
    cf_waiter_init(&w);
    size_t done0 = 0, failed0 = 0;
    for (size_t i = 0; i < (size_t)m; i++) {
        nodes[i].waiter = &w;
        nodes[i].f = uniq[i];
        if (!cf_future_watch(uniq[i], &nodes[i])) {
            done0++;
            failed0 += cf_future_failed(uniq[i]);
        }
    }
    rc = 0;
    pthread_mutex_lock(&w.mu);
    while (!wait_met(mode, done0 + w.n_notified, failed0 + w.n_failed, (size_t)m)) {
        if (!cf_waiter_sleep(&w, deadline)) {
            rc = FUT_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&w.mu);
    for (size_t i = 0; i < (size_t)m; i++)
        cf_future_unwatch(uniq[i], &nodes[i]);
    cf_waiter_destroy(&w);
    /* The lists as they stand now, in input order. */
    for (size_t i = 0; i < (size_t)m; i++) {
        bool is_done = future_done(uniq[i]);
        future_t **list = is_done ? done : not_done;
        size_t *count = is_done ? n_done : n_not_done;
        if (list)
            list[*count] = uniq[i];
        if (count)
            (*count)++;
    }
out:
    if (uniq != small_u)
        free(uniq);
    if (nodes != small_n)
        free(nodes);
    return rc;
}
