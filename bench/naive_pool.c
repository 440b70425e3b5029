/*
 * naive_pool.c: the naive C thread pool and the ping-pong limits (see
 * naive_pool.h). Written the obvious way on purpose: it is the baseline.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "naive_pool.h"

/* 40 + 48 + 8 + 8 + 8 + 4 (+4) = 120 bytes: a 128-byte malloc chunk. */
struct naive_future {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    naive_task_fn fn;
    const void *arg;
    int64_t result;
    int done; /* mu */
};

/* 16 bytes: malloc's smallest chunk, 32 bytes. */
struct naive_node {
    struct naive_node *next;
    naive_future_t *f;
};

struct naive_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;               /* work queued, or stop */
    struct naive_node *head, *tail;  /* mu */
    bool stop;                       /* mu */
    int nthreads;
    pthread_t *threads;
};

static void die(const char *what)
{
    fprintf(stderr, "naive_pool: %s failed\n", what);
    abort();
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        die("malloc");
    return p;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------ the pool */

static void *worker_main(void *arg)
{
    naive_pool_t *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        struct naive_node *n = p->head;
        if (!n) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        p->head = n->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);

        naive_future_t *f = n->f;
        free(n);
        int64_t r = f->fn(f->arg);
        pthread_mutex_lock(&f->mu);
        f->result = r;
        f->done = 1;
        pthread_cond_signal(&f->cv);
        pthread_mutex_unlock(&f->mu);
    }
}

naive_pool_t *naive_pool_new(int workers)
{
    naive_pool_t *p = xmalloc(sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->head = p->tail = NULL;
    p->stop = false;
    p->nthreads = workers;
    p->threads = xmalloc((size_t)workers * sizeof(*p->threads));
    for (int i = 0; i < workers; i++)
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0)
            die("pthread_create");
    return p;
}

void naive_pool_free(naive_pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

naive_future_t *naive_pool_submit(naive_pool_t *p, naive_task_fn fn, const void *arg)
{
    naive_future_t *f = xmalloc(sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->fn = fn;
    f->arg = arg;
    f->result = 0;
    f->done = 0;
    struct naive_node *n = xmalloc(sizeof(*n));
    n->next = NULL;
    n->f = f;

    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = n;
    else
        p->head = n;
    p->tail = n;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return f;
}

int64_t naive_future_result(naive_future_t *f)
{
    pthread_mutex_lock(&f->mu);
    while (!f->done)
        pthread_cond_wait(&f->cv, &f->mu);
    int64_t r = f->result;
    pthread_mutex_unlock(&f->mu);
    return r;
}

void naive_future_free(naive_future_t *f)
{
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

size_t naive_future_size(void)
{
    return sizeof(struct naive_future);
}

size_t naive_node_size(void)
{
    return sizeof(struct naive_node);
}

/* ---------------------------------------------------- condvar ping-pong */

struct cond_pp {
    pthread_mutex_t mu;
    pthread_cond_t to_pong, to_ping;
    int turn; /* 0: the pinger's, 1: the ponger's, -1: stop */
};

static void *cond_ponger(void *arg)
{
    struct cond_pp *pp = arg;
    pthread_mutex_lock(&pp->mu);
    for (;;) {
        while (pp->turn == 0)
            pthread_cond_wait(&pp->to_pong, &pp->mu);
        if (pp->turn < 0)
            break;
        pp->turn = 0;
        pthread_cond_signal(&pp->to_ping);
    }
    pthread_mutex_unlock(&pp->mu);
    return NULL;
}

void limit_cond_pingpong(int64_t *lat_ns, size_t iters, size_t warmup)
{
    struct cond_pp pp = {.turn = 0};
    pthread_mutex_init(&pp.mu, NULL);
    pthread_cond_init(&pp.to_pong, NULL);
    pthread_cond_init(&pp.to_ping, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, cond_ponger, &pp) != 0)
        die("pthread_create");
    for (size_t i = 0; i < warmup + iters; i++) {
        int64_t t0 = now_ns();
        pthread_mutex_lock(&pp.mu);
        pp.turn = 1;
        pthread_cond_signal(&pp.to_pong);
        while (pp.turn != 0)
            pthread_cond_wait(&pp.to_ping, &pp.mu);
        pthread_mutex_unlock(&pp.mu);
        int64_t t1 = now_ns();
        if (i >= warmup)
            lat_ns[i - warmup] = t1 - t0;
    }
    pthread_mutex_lock(&pp.mu);
    pp.turn = -1;
    pthread_cond_signal(&pp.to_pong);
    pthread_mutex_unlock(&pp.mu);
    pthread_join(t, NULL);
    pthread_cond_destroy(&pp.to_ping);
    pthread_cond_destroy(&pp.to_pong);
    pthread_mutex_destroy(&pp.mu);
}

/* ------------------------------------------------------- spin ping-pong */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

enum { SPIN_IDLE = 0, SPIN_PING = 1, SPIN_STOP = 2 };

static void *spin_ponger(void *arg)
{
    _Atomic int *word = arg;
    for (;;) {
        int v;
        while ((v = atomic_load_explicit(word, memory_order_acquire)) == SPIN_IDLE)
            cpu_relax();
        if (v == SPIN_STOP)
            return NULL;
        atomic_store_explicit(word, SPIN_IDLE, memory_order_release);
    }
}

void limit_spin_pingpong(int64_t *lat_ns, size_t iters, size_t warmup)
{
    _Atomic int word = SPIN_IDLE;
    pthread_t t;
    if (pthread_create(&t, NULL, spin_ponger, &word) != 0)
        die("pthread_create");
    for (size_t i = 0; i < warmup + iters; i++) {
        int64_t t0 = now_ns();
        atomic_store_explicit(&word, SPIN_PING, memory_order_release);
        while (atomic_load_explicit(&word, memory_order_acquire) != SPIN_IDLE)
            cpu_relax();
        int64_t t1 = now_ns();
        if (i >= warmup)
            lat_ns[i - warmup] = t1 - t0;
    }
    atomic_store_explicit(&word, SPIN_STOP, memory_order_release);
    pthread_join(t, NULL);
}
