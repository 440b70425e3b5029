/*
 * task.h: the task_t a task function sees, and how an executor runs one.
 * A task_t lives on the stack of whoever runs the task (a pool thread, a
 * worker process); it is never shared between threads.
 */
#ifndef CF_TASK_H
#define CF_TASK_H

#include <cfutures.h>

#include "future.h"

enum cf_answer { CF_ANSWER_NONE, CF_ANSWER_RESULT, CF_ANSWER_ERROR };

struct task {
    future_t *f; /* the task's future; NULL for an initializer or in a worker process */
    const void *arg; /* borrowed from the submitter */
    size_t arg_len;
    int64_t deadline;               /* absolute CLOCK_MONOTONIC ns, or CF_NO_DEADLINE */
    const future_error_t *prev_err; /* a continuation's prev failed (task_prev_error) */
    /* In a worker process: stop asked when (*stop_word & stop_bit); else NULL. */
    _Atomic uint32_t *stop_word;
    uint32_t stop_bit;
    enum cf_answer answer;
    /* CF_ANSWER_RESULT */
    void *data; /* owned: free_fn(data) unless handed to the future */
    size_t len;
    void (*free_fn)(void *);
    unsigned char inl[CF_INLINE_MAX]; /* small results, when data == inl */
    /* CF_ANSWER_ERROR */
    int err_code;
    char *err_msg; /* malloc'd; NULL when out of memory */
    bool expired;  /* cf_task_settle found the deadline passed */
};

void cf_task_init(struct task *t, future_t *f, const void *arg, size_t arg_len,
                  int64_t deadline);

/*
 * Hands the task's answer to its future: the result, its error (FUT_ETASK),
 * or FUT_EDEADLINE when the deadline passed, whatever the task answered.
 * Returns 0 if the future now holds a result, 1 if it failed (here or
 * earlier, e.g. by a deadline watcher), and frees what the future did not take.
 * The same as cf_task_settle, then cf_task_hand_over.
 */
int cf_task_complete(struct task *t);

/*
 * The first half of cf_task_complete, for an executor that counts the task
 * out before anyone can hear of its outcome: fixes that outcome (a deadline
 * passed now makes it FUT_EDEADLINE, and a later look at the clock changes
 * nothing) and returns 1 if the future will fail (or failed already: a
 * deadline watcher), 0 if it will hold a result. Call it once nothing else
 * can complete the future.
 */
int cf_task_settle(struct task *t);
/* The second half: hands the settled outcome to the future. */
void cf_task_hand_over(struct task *t);

/* Frees the answer (for an initializer, or after a worker serialized it). */
void cf_task_clear(struct task *t);

#endif /* CF_TASK_H */
