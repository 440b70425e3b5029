/*
 * timer.h: one timer thread for the whole process (future_within). Layer:
 * beside waiter, above util; it knows nothing of futures.
 */
#ifndef CF_TIMER_H
#define CF_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One timeout, embedded in its owner's memory. */
struct cf_timer {
    int64_t deadline;               /* CLOCK_MONOTONIC ns: the timer lock */
    void (*fn)(struct cf_timer *t); /* runs on the timer thread, no lock held */
    size_t slot;                    /* its index in the heap: the timer lock */
    bool armed;                     /* in the heap: the timer lock */
};

/*
 * Arms @t: @fn runs once, on the timer thread, at @deadline (at once if it
 * has passed). Starts the thread on first need. Returns 0; FUT_ENOMEM; or
 * FUT_ESYS (no thread could be started; errno kept).
 */
int cf_timer_add(struct cf_timer *t, int64_t deadline, void (*fn)(struct cf_timer *t));

/*
 * Disarms @t: true if it had not fired (fn will never run), false if fn
 * runs or ran (its owner then hears from fn).
 */
bool cf_timer_cancel(struct cf_timer *t);

#endif /* CF_TIMER_H */
