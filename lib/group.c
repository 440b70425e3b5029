/*
 * group.c: task groups, structured concurrency on one executor (DESIGN.md
 * "Controlling work"). Layer: above executor, beside compose and schedule.
 *
 * DESIGN
 * A group is a list of its members not yet done (a node per member, with a
 * reference to its future) and a count of members in flight, both under
 * the group's mutex. A member's done-callback unlinks its node, records the
 * first failure (a copy), and wakes task_group_wait once the count is 0.
 *
 * Cancelling is sticky: the thread that turns `cancelled` on does the work
 * (later submits fail ECANCELED; a later task_group_cancel waits until that
 * work is over, `walked`, unless its thread is walking a group itself: a
 * callback the walk runs would wait for itself, or two groups' walks for
 * each other; task_group_free waits unless it is this group's own walk,
 * as it frees what the walk uses). It walks
 * the list twice without holding the mutex over any future_cancel: first it
 * cancels every member not running, then it asks the running ones to stop,
 * so a worker freed by a stopping task cannot start a member meanwhile.
 * Both walks go from the newest member to the oldest: a member that starts
 * between the first walk's look and its cancel (which then asks it to
 * stop) frees its worker only for members cancelled already, since workers
 * start tasks oldest first. A walk takes the tail, moves it to the head
 * marked with the walk's number and stops at the first node marked so.
 *
 * A member joins the list before its task reaches the executor: its task
 * is prepared work (executor.h) until the submit, so a walk that finds it
 * then cancels it for good and the submit sends nothing (also one waiting
 * for room in max_queue). A cancel that returned has thus reached every
 * member whose submit was under way. A delayed member
 * (submit_options_t.delay) is submitted first and joins after (its queue,
 * submit_options_t.queue, gets it only then); if the group was cancelled
 * meanwhile it cancels its task and fails ECANCELED, as a submit after the
 * cancel. Its task reaches the executor only when the delay ends, so only a
 * delay shorter than that gap (a few instructions) could let it start first.
 *
 * Locks: `mu` only; never held while a future is cancelled or a callback
 * runs (a member's done-callback takes it, so neither may be done under it).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "util.h"

struct member {
    struct member *prev, *next; /* the group's mu */
    struct task_group *g;       /* immutable */
    future_t *f;                /* a reference until done */
    int walk;                   /* the last cancel walk that visited it: mu */
    bool joined;                /* in the list (member_join): mu */
};

struct task_group {
    executor_t *ex;         /* a reference (cf_executor_ref) */
    bool cancel_on_failure; /* immutable */
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* `live` fell to 0: mu */
    struct member *head, *tail; /* members not done: mu */
    size_t live;                /* submitted (or being submitted), not done: mu */
    bool cancelled;             /* mu */
    bool walked;                /* the cancel's walks are over (cv): mu */
    bool failed;                /* a member failed: mu */
    future_error_t first;       /* the first failure: mu */
    char *first_msg;            /* first.message when owned: mu */
};

static void link_tail(task_group_t *g, struct member *m)
{
    m->next = NULL;
    m->prev = g->tail;
    if (g->tail)
        g->tail->next = m;
    else
        g->head = m;
    g->tail = m;
}

static void link_head(task_group_t *g, struct member *m)
{
    m->prev = NULL;
    m->next = g->head;
    if (g->head)
        g->head->prev = m;
    else
        g->tail = m;
    g->head = m;
}

static void unlink_member(task_group_t *g, struct member *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        g->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        g->tail = m->prev;
}

/*
 * One walk over the members: @running false cancels those not running,
 * true asks every one left to stop (future_cancel either way).
 */
static void cancel_walk(task_group_t *g, int walk, bool running)
{
    for (;;) {
        pthread_mutex_lock(&g->mu);
        struct member *m = g->tail;
        if (!m || m->walk == walk) {
            pthread_mutex_unlock(&g->mu);
            return;
        }
        unlink_member(g, m);
        link_head(g, m);
        m->walk = walk;
        future_t *f = future_ref(m->f);
        pthread_mutex_unlock(&g->mu);
        if (running || !future_running(f))
            future_cancel(f);
        future_unref(f);
    }
}

/* The group whose members this thread is cancelling (cancel_members), or NULL. */
static _Thread_local const task_group_t *walking;

static void cancel_members(task_group_t *g)
{
    /* A member's callback may cancel another group: walks nest. */
    const task_group_t *outer = walking;
    walking = g;
    cancel_walk(g, 1, false);
    cancel_walk(g, 2, true);
    walking = outer;
    pthread_mutex_lock(&g->mu);
    g->walked = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Turns cancelled on; true if this call did (it then cancels the members). */
static bool mark_cancelled(task_group_t *g)
{
    bool was = g->cancelled;
    g->cancelled = true;
    return !was;
}

/* Keeps a copy of the first failure (mu held). */
static void record_failure(task_group_t *g, future_t *f)
{
    const future_error_t *e = NULL;
    if (g->failed || future_exception(f, 0, &e) != 0 || !e)
        return;
    g->failed = true;
    g->first = *e;
    g->first_msg = strdup(e->message);
    g->first.message = g->first_msg ? g->first_msg : "";
}

/* Counts a member out of `live` (mu held). */
static void leave_live(task_group_t *g)
{
    if (--g->live == 0)
        pthread_cond_broadcast(&g->cv);
}

/* A member is done. The group is not touched after the last unlock: once
 * `live` is 0, task_group_free may free it. */
static void member_done(future_t *f, void *ud)
{
    struct member *m = ud;
    task_group_t *g = m->g;
    bool cancel = false;
    pthread_mutex_lock(&g->mu);
    unlink_member(g, m);
    if (cf_future_failed(f)) {
        record_failure(g, f);
        cancel = g->cancel_on_failure && mark_cancelled(g);
    }
    pthread_mutex_unlock(&g->mu);
    if (cancel)
        cancel_members(g); /* this member still counts in `live` */
    future_unref(m->f);
    free(m);
    pthread_mutex_lock(&g->mu);
    leave_live(g);
    pthread_mutex_unlock(&g->mu);
}

task_group_t *task_group_new(executor_t *ex, const task_group_options_t *o)
{
    if (!ex)
        return cf_fail_null(FUT_EINVAL);
    task_group_t *g = calloc(1, sizeof(*g));
    if (!g)
        return cf_fail_null(FUT_ENOMEM);
    int rc = cf_cond_init_monotonic(&g->cv);
    if (rc != 0) {
        free(g);
        return cf_fail_null(FUT_ENOMEM);
    }
    pthread_mutex_init(&g->mu, NULL);
    g->ex = ex;
    g->cancel_on_failure = o && o->cancel_on_failure;
    cf_executor_ref(ex);
    return g;
}

/*
 * A member whose submit failed with @rc (FUT_ECANCELLED: the group was
 * cancelled) leaves, if it joined; no callback was added. As member_done:
 * the reference goes before `live` does (task_group_free may then go on).
 */
static future_t *member_failed(task_group_t *g, struct member *m, void *cb, int rc)
{
    future_t *f = m->f;
    future_cancel(f); /* prepared, never submitted: nobody else completes it */
    future_unref(f);  /* the caller's */
    pthread_mutex_lock(&g->mu);
    bool joined = m->joined;
    if (joined)
        unlink_member(g, m);
    pthread_mutex_unlock(&g->mu);
    future_unref(f); /* the member's */
    cf_future_cb_free(cb);
    free(m);
    if (joined) {
        pthread_mutex_lock(&g->mu);
        leave_live(g);
        pthread_mutex_unlock(&g->mu);
    }
    return cf_fail_null(rc);
}

/* Joins @m (its future set) to @g unless @g was cancelled: false then. */
static bool member_join(task_group_t *g, struct member *m)
{
    pthread_mutex_lock(&g->mu);
    bool ok = !g->cancelled;
    if (ok) {
        g->live++;
        link_tail(g, m);
        m->joined = true;
    }
    pthread_mutex_unlock(&g->mu);
    return ok;
}

#ifdef CF_TEST_HOOKS
void (*cf_test_group_join_hook)(void); /* a delayed member's submit went out, unjoined */
#endif

/*
 * A member with a delay: submitted, then joined (the group's DESIGN). Its
 * queue (so->queue) gets it only once it joined: a member the group
 * refuses fails ECANCELED, as any submit after a cancel, and is in no queue.
 */
static future_t *submit_delayed(task_group_t *g, struct member *m, void *cb, task_fn fn,
                                const void *arg, size_t len, const submit_options_t *so)
{
    completion_queue_t *q = so->queue;
    submit_options_t own = *so;
    own.queue = NULL;
    void *res = NULL;
    future_t *f = executor_submit_with(g->ex, fn, arg, len, &own);
    int rc = !f ? -errno : q && cf_queue_ops_of(q)->reserve(q, &res) < 0 ? FUT_ENOMEM : 0;
    if (rc == 0) {
        m->f = future_ref(f);
        CF_TEST_HOOK(cf_test_group_join_hook);
        if (!member_join(g, m)) {
            future_unref(f); /* the member's */
            rc = FUT_ECANCELLED;
        }
    }
    if (rc < 0) {
        if (res)
            cf_queue_ops_of(q)->unreserve(res);
        if (f) {
            future_cancel(f); /* a delayed task not yet due never reaches the executor */
            future_unref(f);
        }
        cf_future_cb_free(cb);
        free(m);
        return cf_fail_null(rc);
    }
    if (q)
        cf_queue_ops_of(q)->commit(q, f, res);
    cf_future_add_done_callback_node(f, member_done, m, cb);
    return f;
}

future_t *task_group_submit(task_group_t *g, task_fn fn, const void *arg, size_t len,
                            const submit_options_t *so)
{
    /* before the group's state */
    if (!g || !cf_submit_args_ok(fn, arg, len, so) || !cf_executor_arg_fits(g->ex, len))
        return cf_fail_null(FUT_EINVAL);
    submit_options_t def = {0};
    if (!so)
        so = &def;
    struct member *m = calloc(1, sizeof(*m));
    void *cb = m ? cf_future_cb_alloc() : NULL;
    if (!cb) {
        free(m);
        return cf_fail_null(FUT_ENOMEM);
    }
    m->g = g;
    pthread_mutex_lock(&g->mu);
    bool refused = g->cancelled;
    pthread_mutex_unlock(&g->mu);
    if (!refused && so->delay > 0)
        return submit_delayed(g, m, cb, fn, arg, len, so);
    /* executor_submit_with's order: a shut-down executor before memory. */
    int rc = refused                       ? FUT_ECANCELLED
             : atomic_load(&g->ex->shut)   ? FUT_ESHUTDOWN
             : atomic_load(&g->ex->broken) ? FUT_EBROKEN
                                           : 0;
    completion_queue_t *q = so->queue;
    void *res = NULL;
    struct cf_work *w = NULL;
    if (rc == 0 && (!q || cf_queue_ops_of(q)->reserve(q, &res) == 0))
        w = cf_executor_prepare(g->ex, fn, so->timeout, 0);
    if (!w) {
        if (res)
            cf_queue_ops_of(q)->unreserve(res);
        cf_future_cb_free(cb);
        free(m);
        return cf_fail_null(rc ? rc : FUT_ENOMEM);
    }
    cf_work_set_priority(w, so->priority);
    future_t *f = m->f = cf_work_future(w); /* the member's reference */
    future_ref(f);                          /* the caller's */
    rc = member_join(g, m)
             ? cf_executor_submit_prepared(w, arg, len, so->nonblocking, so->borrow_arg)
             : FUT_ECANCELLED;
    if (rc < 0) {
        if (q)
            cf_queue_ops_of(q)->unreserve(res);
        return member_failed(g, m, cb, rc);
    }
    if (q)
        cf_queue_ops_of(q)->commit(q, f, res);
    cf_future_add_done_callback_node(f, member_done, m, cb);
    return f;
}

/*
 * Cancels @g, or waits for another thread's walk to end: unless this thread
 * walks a group itself (@any_walk: any group; else only @g itself, as
 * task_group_free must, which frees what that walk uses).
 */
static void cancel_group(task_group_t *g, bool any_walk)
{
    pthread_mutex_lock(&g->mu);
    bool first = mark_cancelled(g);
    while (!first && !g->walked && (any_walk ? !walking : walking != g))
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    if (first)
        cancel_members(g);
}

int task_group_cancel(task_group_t *g)
{
    if (!g)
        return FUT_EINVAL;
    cancel_group(g, true);
    return 0;
}

int task_group_wait(task_group_t *g, double timeout, const future_error_t **first_error)
{
    if (!g || !cf_timeout_valid(timeout))
        return FUT_EINVAL;
    int64_t deadline = cf_deadline_after(timeout);
    int rc = 0;
    pthread_mutex_lock(&g->mu);
    while (g->live > 0) {
        if (deadline != CF_NO_DEADLINE && cf_now_ns() >= deadline) {
            rc = FUT_ETIMEDOUT;
            break;
        }
        if (deadline == CF_NO_DEADLINE) {
            pthread_cond_wait(&g->cv, &g->mu);
        } else {
            struct timespec ts;
            cf_ns_to_timespec(deadline, &ts);
            pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        }
    }
    if (first_error)
        *first_error = g->failed ? &g->first : NULL;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

void task_group_free(task_group_t *g)
{
    if (!g)
        return;
    cancel_group(g, false);
    task_group_wait(g, FUT_FOREVER, NULL);
    /* A member's callback may still hold the mutex after the last wake-up. */
    pthread_mutex_lock(&g->mu);
    pthread_mutex_unlock(&g->mu);
    cf_executor_unref(g->ex);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g->first_msg);
    free(g);
}
