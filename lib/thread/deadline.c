/*
 * deadline.c: the thread pool's deadline watcher. A task with its own time
 * limit (submit_options_t.timeout) registers its worker here when it starts;
 * one watcher thread per pool (started on first need) fails the future with
 * FUT_EDEADLINE the moment the limit passes, so task_should_stop() turns
 * true at the same time, and whatever the task returns later is dropped. A
 * thread cannot be killed. The watcher runs the callbacks of the futures it
 * fails; it, or a worker, may be the last thread of a pool freed from
 * inside (cf_tp_self_free), and it is joined last (cf_tp_join, with the
 * workers). The rest of the pool is in pool.c.
 *
 * Locks, in order: `dl_mu` (watch list), then the pool `lock`:
 * cf_tp_watch_start counts the watcher thread it starts under both.
 */
#include "config.h"

#include <pthread.h>
#include <time.h>

#include "internal.h"

/*
 * The last thread of a pool whose executor_free came from inside it: join
 * the others (they have all left their loops), then drop the owner's reference.
 */
void cf_tp_self_free(struct thread_pool *p)
{
    pthread_t self = pthread_self();
    for (struct tp_worker *w = p->workers; w; w = w->next)
        if (!pthread_equal(w->thread, self))
            pthread_join(w->thread, NULL);
    if (p->dl_started && !pthread_equal(p->dl_thread, self))
        pthread_join(p->dl_thread, NULL);
    cf_executor_self_free(&p->base);
}

static void *watcher_main(void *arg)
{
    struct thread_pool *p = arg;
    cf_executor_bind_thread(&p->base);
    pthread_mutex_lock(&p->dl_mu);
    while (!p->dl_stop) {
        int64_t now = cf_now_ns(), next = CF_NO_DEADLINE;
        struct tp_worker *due = NULL;
        for (struct tp_worker *w = p->watched; w; w = w->dl_next) {
            if (!w->watched)
                continue;
            if (w->deadline <= now) {
                due = w;
                break;
            }
            next = CF_MIN(next, w->deadline);
        }
        if (due) {
            future_t *f = future_ref(due->watched);
            due->watched = NULL; /* fail it once */
            pthread_mutex_unlock(&p->dl_mu);
            atomic_fetch_add(&p->calling, 1); /* its callbacks run here */
            cf_future_expire(f);
            atomic_fetch_sub(&p->calling, 1);
            future_unref(f);
            pthread_mutex_lock(&p->dl_mu);
            continue;
        }
        if (next == CF_NO_DEADLINE) {
            pthread_cond_wait(&p->dl_cv, &p->dl_mu);
        } else {
            struct timespec ts;
            cf_ns_to_timespec(next, &ts);
            pthread_cond_timedwait(&p->dl_cv, &p->dl_mu, &ts);
        }
    }
    pthread_mutex_unlock(&p->dl_mu);
    cf_lock(&p->lock);
    bool last = --p->nalive == 0 && cf_executor_free_later(&p->base);
    cf_unlock(&p->lock);
    if (last)
        cf_tp_self_free(p);
    return NULL;
}

void cf_tp_watch_start(struct thread_pool *p, struct tp_worker *me, future_t *f,
                       int64_t deadline)
{
    pthread_mutex_lock(&p->dl_mu);
    if (!p->dl_started && !p->dl_stop) {
        cf_lock(&p->lock);
        p->nalive++;
        cf_unlock(&p->lock);
        if (cf_start_thread(&p->dl_thread, watcher_main, p) == 0) {
            p->dl_started = true;
        } else {
            /* Without a watcher the limit still holds when the task returns. */
            cf_lock(&p->lock);
            p->nalive--;
            cf_unlock(&p->lock);
        }
    }
    if (!me->listed) {
        me->listed = true;
        me->dl_next = p->watched;
        p->watched = me;
    }
    me->watched = f;
    me->deadline = deadline;
    pthread_cond_signal(&p->dl_cv);
    pthread_mutex_unlock(&p->dl_mu);
}

void cf_tp_watch_leave(struct thread_pool *p, struct tp_worker *me)
{
    pthread_mutex_lock(&p->dl_mu);
    if (me->listed) {
        struct tp_worker **at = &p->watched;
        while (*at && *at != me)
            at = &(*at)->dl_next;
        if (*at)
            *at = me->dl_next;
        me->listed = false;
        me->watched = NULL;
    }
    pthread_mutex_unlock(&p->dl_mu);
}

void cf_tp_watch_stop(struct thread_pool *p, struct tp_worker *me)
{
    pthread_mutex_lock(&p->dl_mu);
    me->watched = NULL;
    pthread_mutex_unlock(&p->dl_mu);
}

bool cf_tp_watch_quit(struct thread_pool *p)
{
    pthread_mutex_lock(&p->dl_mu);
    p->dl_stop = true; /* the watcher leaves; limits still hold at return */
    bool started = p->dl_started;
    pthread_cond_signal(&p->dl_cv);
    pthread_mutex_unlock(&p->dl_mu);
    return started;
}

/* ---------------------------------------------------------- the end */

/* Joins every worker, also one started after the stop (callbacks_begin), by
   one not joined yet, at the list's head: rounds until the head stays. */
void cf_tp_join(executor_t *ex)
{
    struct thread_pool *p = tp_of(ex);
    struct tp_worker *done = NULL; /* this one and those after it are joined */
    for (;;) {
        cf_lock(&p->lock);
        struct tp_worker *head = p->workers;
        cf_unlock(&p->lock);
        if (head == done)
            break;
        for (struct tp_worker *w = head; w != done; w = w->next)
            pthread_join(w->thread, NULL);
        done = head;
    }
    if (cf_tp_watch_quit(p))
        pthread_join(p->dl_thread, NULL);
}

/*
 * Past @deadline, only a worker in its initializer, or a worker or the
 * watcher in a done-callback (user code: it may block for ever), makes it
 * give up: the other workers are on their way out (shutdown woke them).
 * Workers that leave wake it (gone_all); a callback that ends does not, so
 * while one runs it looks again every CF_JOIN_SLICE_NS.
 */
bool cf_tp_join_until(executor_t *ex, int64_t deadline)
{
    struct thread_pool *p = tp_of(ex);
    for (;;) {
        uint32_t seen = atomic_load(&p->gone_all);
        cf_lock(&p->lock);
        bool none = p->nworkers_alive == 0;
        cf_unlock(&p->lock);
        bool calling = atomic_load(&p->calling) > 0;
        if (none && !calling)
            return true;
        int64_t now = cf_now_ns();
        if (now >= deadline && (calling || atomic_load(&p->initializing) > 0))
            return false;
        int64_t until = now + CF_JOIN_SLICE_NS;
        if (now < deadline && (!calling || deadline < until))
            until = deadline;
        cf_futex_wait_until(&p->gone_all, seen, until);
    }
}
