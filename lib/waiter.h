/*
 * waiter.h: the waiter primitive. A waiter is one thread blocked on one or
 * more futures (future_result, futures_wait, as_completed in waiters.c).
 * Each watched future holds one cf_wnode; completion moves the node onto the
 * waiter's ready list with cf_waiter_notify(). This layer sits below the
 * future: it never looks inside one (the future says whether it failed).
 *
 * Lock order: a future's lock, then a waiter's mutex (notify runs under the
 * future's lock). Code holding a waiter's mutex never takes a future's lock.
 */
#ifndef CF_WAITER_H
#define CF_WAITER_H

#include <cfutures.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cf_waiter;

/*
 * One waiter watching one future. The future links it into its waiter list
 * (future.c); completion unlinks it and calls cf_waiter_notify() while
 * holding the future's lock, so once cf_future_unwatch() returned no notify
 * for that node is in progress.
 */
struct cf_wnode {
    struct cf_wnode *next, *prev; /* the future's waiter list: future's lock */
    struct cf_waiter *waiter;     /* immutable once watched */
    future_t *f;                  /* immutable once watched */
    struct cf_wnode *ready_next;  /* the waiter's ready list: waiter's lock */
    bool linked;                  /* in the future's list: future's lock */
    bool yielded;                 /* as_completed: handed out; its owner only */
    /* waiters.c's own, in what would be padding (the node stays 56 bytes): */
    uint32_t pos;    /* the future's first index in the caller's array */
    uint32_t bucket; /* dedupe: 1 + first node of the bucket this index heads */
    uint32_t chain;  /* dedupe: 1 + next node of the same bucket */
};

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
/*
 * @n's future completed (@failed: with an error, not cancelled). Called by
 * future.c with the future's lock held.
 */
void cf_waiter_notify(struct cf_wnode *n, bool failed);
/*
 * Sleeps on @w (its mutex held by the caller) until notified or @deadline;
 * returns false once the deadline has passed.
 */
bool cf_waiter_sleep(struct cf_waiter *w, int64_t deadline);
/* Takes the oldest notified node, or NULL (mutex held). */
struct cf_wnode *cf_waiter_pop(struct cf_waiter *w);

#endif /* CF_WAITER_H */
