/*
 * naive_pool.h: the baselines bench_cfutures compares cfutures with.
 *
 * The "naive C pool" of /work/shared/perf-anchors.md, anchor (c): one FIFO of
 * malloc'd nodes under one mutex and one condvar, and a malloc'd future with
 * its own mutex and condvar. Every submit signals the queue's condvar; every
 * completion signals the future's. Nothing is batched and nothing spins.
 *
 * And the OS limits of anchor (e) that W2 is judged against: a condvar
 * ping-pong and a spin ping-pong between two threads.
 *
 * Bench-only code: errors that cannot happen in a benchmark run (a failed
 * malloc or pthread_create) abort the program.
 */
#ifndef NAIVE_POOL_H
#define NAIVE_POOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct naive_pool naive_pool_t;
typedef struct naive_future naive_future_t;

/* A task: computes an int64 from its argument, runs on a worker. */
typedef int64_t (*naive_task_fn)(const void *arg);

/* Starts @workers threads at once. */
naive_pool_t *naive_pool_new(int workers);

/* Waits for the queued tasks to run, stops the workers and frees the pool. */
void naive_pool_free(naive_pool_t *p);

/* Queues fn(arg); the caller owns the future (naive_future_free). */
naive_future_t *naive_pool_submit(naive_pool_t *p, naive_task_fn fn, const void *arg);

/* Blocks until @f is done and returns its result. */
int64_t naive_future_result(naive_future_t *f);

/* Frees a done future. */
void naive_future_free(naive_future_t *f);

/* Sizes of the two blocks a submit allocates (for the W5 report). */
size_t naive_future_size(void);
size_t naive_node_size(void);

/*
 * Round trips between the caller and a second thread, @warmup untimed ones
 * first, then @iters timed ones: lat_ns[i] receives round trip i in
 * nanoseconds. cond: mutex + two condvars, the waiter sleeps.
 * spin: one atomic word, both threads spin.
 */
void limit_cond_pingpong(int64_t *lat_ns, size_t iters, size_t warmup);
void limit_spin_pingpong(int64_t *lat_ns, size_t iters, size_t warmup);

#endif /* NAIVE_POOL_H */
