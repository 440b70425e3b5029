/*
 * cqueue.h: what executor.c needs of a completion queue to join a future to
 * it at submit (submit_options_t.queue) without a failure after the submit.
 * Layer: above the future, below the executor.
 */
#ifndef CF_CQUEUE_H
#define CF_CQUEUE_H

#include <cfutures.h>

/* Memory for one completion_queue_add, taken before the submit. */
struct cf_cq_reservation {
    void *node; /* the queue's entry */
    void *cb;   /* the future's callback node */
};

/* 0, or FUT_ENOMEM (nothing reserved). */
int cf_cq_reserve(struct cf_cq_reservation *r);
/* Adds @f to @q with the reserved memory; cannot fail. */
void cf_cq_commit(completion_queue_t *q, future_t *f, struct cf_cq_reservation *r);
/* Gives the reserved memory back (the submit failed). */
void cf_cq_unreserve(struct cf_cq_reservation *r);

#endif /* CF_CQUEUE_H */
