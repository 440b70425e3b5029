/*
 * waiter.c: the waiter primitive (waiter.h): a mutex, a CLOCK_MONOTONIC
 * condition variable and a FIFO of notified nodes. future.c notifies it;
 * future_result, futures_wait and as_completed sleep on it.
 */
#include "config.h"

#include <time.h>

#include "util.h"
#include "waiter.h"

void cf_waiter_init(struct cf_waiter *w)
{
    pthread_mutex_init(&w->mu, NULL);
    cf_cond_init_monotonic(&w->cv);
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

void cf_waiter_notify(struct cf_wnode *n, bool failed)
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
    if (failed)
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

struct cf_wnode *cf_waiter_pop(struct cf_waiter *w)
{
    struct cf_wnode *n = w->ready_head;
    if (n) {
        w->ready_head = n->ready_next;
        if (!w->ready_head)
            w->ready_tail = NULL;
    }
    return n;
}
