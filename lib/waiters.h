/*
 * waiters.h: a waiter is one thread blocked on one or more futures
 * (future_result, futures_wait, as_completed). Each watched future holds a
 * cf_wnode; completion moves the node onto the waiter's ready list.
 *
 * Lock order: a future's lock, then a waiter's mutex (notify runs under the
 * future's lock). Code holding a waiter's mutex never takes a future's lock.
 */
#ifndef CF_WAITERS_H
#define CF_WAITERS_H

#include <pthread.h>

#include "future.h"

struct cf_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;                        /* CLOCK_MONOTONIC */
    struct cf_wnode *ready_head, *ready_tail; /* notified, not taken: mu */
    size_t n_notified;                        /* notifications so far: mu */
    size_t n_failed;                          /* of those, failures: mu */
    bool sleeping;                            /* in cond wait: mu */
};

void cf_waiter_init(struct cf_waiter *w);
void cf_waiter_destroy(struct cf_waiter *w);
/* Called by future.c with the future's lock held. */
void cf_waiter_notify(struct cf_wnode *n);
/*
 * Sleeps on @w (its mutex held by the caller) until notified or @deadline;
 * returns false once the deadline has passed.
 */
bool cf_waiter_sleep(struct cf_waiter *w, int64_t deadline);

#endif /* CF_WAITERS_H */
