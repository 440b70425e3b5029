/*
 * compose.h: the "Composing futures" API of DESIGN.md while it is being
 * built. Every name here moves to include/cfutures.h in one commit, once the
 * whole set works (tests/api-names.sh checks all of them as soon as the
 * public header has future_then). Until then tests include this header.
 */
#ifndef CF_COMPOSE_H
#define CF_COMPOSE_H

#include <cfutures.h>

/* When future_then runs its function (zero: on a result). */
typedef enum {
    FUT_THEN_ON_RESULT = 0, /* Java thenApply, folly thenValue */
    FUT_THEN_ON_FAILURE,    /* Java exceptionally, folly thenError */
    FUT_THEN_ALWAYS         /* Java handle, folly thenTry */
} fut_then_when;

/* Options for future_then; zero means default. */
typedef struct then_options {
    fut_then_when when;      /* which outcome of prev runs fn */
    submit_options_t submit; /* with an executor: as executor_submit_with */
} then_options_t;

/* Options for futures_all and futures_any; zero means default. */
typedef struct combine_options {
    bool settle;      /* futures_all: wait for every future, succeed */
    bool cancel_rest; /* cancel the others once the outcome is known */
} combine_options_t;

CF_API completion_queue_t *completion_queue_new(void);
CF_API int completion_queue_add(completion_queue_t *q, future_t *f);
CF_API int completion_queue_next(completion_queue_t *q, double timeout, future_t **out);
CF_API int completion_queue_fd(const completion_queue_t *q);
CF_API void completion_queue_free(completion_queue_t *q);

CF_API future_t *future_then(future_t *prev, executor_t *ex, task_fn fn,
                             const then_options_t *o);
CF_API const future_error_t *task_prev_error(const task_t *t);
CF_API future_t *futures_all(future_t *const *fs, size_t n, const combine_options_t *o);
CF_API future_t *futures_any(future_t *const *fs, size_t n, const combine_options_t *o);
CF_API future_t *future_within(future_t *f, double timeout, bool cancel_source);

#endif /* CF_COMPOSE_H */
