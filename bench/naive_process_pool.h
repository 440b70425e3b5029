/*
 * naive_process_pool: the baseline process pool of the W3 anchors. Workers
 * are forked up front, each with a task pipe and a result pipe; the caller's
 * thread drives them under poll(), keeping up to NPP_DEPTH tasks in flight
 * per worker and writing as many frames as fit in one write() (batched).
 * A frame is a 4-byte length and that many bytes; a worker answers its tasks
 * in order, so no task id travels.
 */
#ifndef NAIVE_PROCESS_POOL_H
#define NAIVE_PROCESS_POOL_H

#include <stddef.h>

#define NPP_DEPTH 32
#define NPP_MAX_RESULT (1u << 20)

/* Runs in a worker: writes at most NPP_MAX_RESULT bytes to @out, returns the count. */
typedef size_t (*npp_fn)(const void *arg, size_t len, void *out);
/* Runs in the caller for each result, in any order across items. */
typedef void (*npp_result_fn)(void *ud, size_t index, const void *data, size_t len);

typedef struct npp npp_t;

/* Forks @workers processes running @fn. NULL on failure (errno set). */
npp_t *npp_new(int workers, npp_fn fn);
/* Runs fn over args[i] (lens[i] bytes) for i < n; returns 0, or -1 if a worker failed. */
int npp_run(npp_t *p, const void *const *args, const size_t *lens, size_t n,
            npp_result_fn on_result, void *ud);
/* Closes the pipes and reaps the workers. */
void npp_free(npp_t *p);

#endif
