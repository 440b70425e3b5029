/*
 * cqueue.c: completion_queue_t, futures handed back as they complete, with
 * an eventfd that is readable while a completed future waits in the queue
 * (for poll/epoll/libuv/GLib loops). Layer: above the future, below the
 * executor (executor.c joins a future to a queue at submit).
 *
 * DESIGN
 * Each added future gets a done-callback (its memory reserved before the
 * future is committed to the queue, so a submit with .queue cannot fail
 * after the task went out). The reservation already counts in `pending`,
 * so a consumer never finds a submitted future missing (FUT_EOF) while its
 * submit is still returning. The callback moves the future's entry onto
 * the ready FIFO. `ready` and the eventfd's counter change together under
 * `mu`: the callback writes 1 when ready goes 0 -> 1, completion_queue_next
 * reads the counter back to 0 when ready goes 1 -> 0. So the fd is
 * readable exactly while ready > 0, however many futures complete.
 *
 * Lifetime: the owner's reference plus one per callback not yet run, so a
 * future completing after completion_queue_free finds the queue still
 * there (and drops its entry). The eventfd is closed by
 * completion_queue_free itself (cq_done, once `freed`, never touches it).
 *
 * Locks: `mu` only, taken in callbacks (never under a future's lock: future.c
 * runs callbacks unlocked). No user code runs under it.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "future.h"
#include "util.h"

struct cq_node {
    struct cq_node *next; /* the ready FIFO: mu */
    future_t *f;          /* a reference, handed to the caller by _next */
    completion_queue_t *q;
    void *cb; /* reserved: the future's callback node */
};

struct completion_queue {
    struct cf_queue_head head; /* first: executor.c joins futures through it */
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* CLOCK_MONOTONIC: a future became ready */
    int efd;                      /* EFD_NONBLOCK | EFD_CLOEXEC; -1 once freed: mu */
    struct cq_node *first, *last; /* done, not yet handed back: mu */
    size_t ready;                 /* entries in the FIFO: mu */
    size_t pending;               /* added, not yet done: mu */
    size_t sleepers;              /* threads in completion_queue_next's wait: mu */
    bool freed;                   /* completion_queue_free was called: mu */
    _Atomic size_t refs;          /* the owner's, plus one per callback to run */
};

static const struct cf_queue_ops cq_ops;

completion_queue_t *completion_queue_new(void)
{
    completion_queue_t *q = calloc(1, sizeof(*q));
    if (!q)
        return cf_fail_null(FUT_ENOMEM);
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) {
        int e = errno;
        free(q);
        errno = e == ENOMEM ? ENOMEM : -FUT_ESYS;
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    cf_cond_init_monotonic(&q->cv);
    atomic_init(&q->refs, 1);
    q->head.ops = &cq_ops;
    return q;
}

static void cq_unref(completion_queue_t *q)
{
    if (atomic_fetch_sub(&q->refs, 1) != 1)
        return;
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static void efd_set(int fd)
{
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(fd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
}

static void efd_clear(int fd)
{
    uint64_t v;
    ssize_t n;
    do
        n = read(fd, &v, sizeof(v));
    while (n < 0 && errno == EINTR);
}

/* A future of the queue is done: its entry joins the ready FIFO. */
static void cq_done(future_t *f, void *ud)
{
    (void)f;
    struct cq_node *n = ud;
    completion_queue_t *q = n->q;
    pthread_mutex_lock(&q->mu);
    q->pending--;
    if (q->freed) {
        pthread_mutex_unlock(&q->mu);
        future_unref(n->f);
        free(n);
        cq_unref(q);
        return;
    }
    n->next = NULL;
    if (q->last)
        q->last->next = n;
    else
        q->first = n;
    q->last = n;
    if (q->ready++ == 0)
        efd_set(q->efd);
    /* The last pending one: every sleeper but the one that takes it ends FUT_EOF. */
    if (q->sleepers && q->pending == 0)
        pthread_cond_broadcast(&q->cv);
    else if (q->sleepers)
        pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    cq_unref(q);
}

/*
 * Reserves an entry of @q: its memory, and a place in `pending`, so that a
 * consumer who sees the task's effects before the submit returns waits for
 * the future rather than finding the queue empty (FUT_EOF).
 */
static int cq_reserve(completion_queue_t *q, void **res)
{
    struct cq_node *n = malloc(sizeof(*n));
    void *cb = n ? cf_future_cb_alloc() : NULL;
    if (!cb) {
        free(n);
        return FUT_ENOMEM;
    }
    n->cb = cb;
    n->q = q;
    atomic_fetch_add(&q->refs, 1); /* cq_done's, or cq_unreserve's */
    pthread_mutex_lock(&q->mu);
    q->pending++;
    pthread_mutex_unlock(&q->mu);
    *res = n;
    return 0;
}

/* The submit failed: the entry leaves `pending`, waking sleepers it kept. */
static void cq_unreserve(void *res)
{
    struct cq_node *n = res;
    completion_queue_t *q = n->q;
    pthread_mutex_lock(&q->mu);
    if (--q->pending == 0 && q->sleepers)
        pthread_cond_broadcast(&q->cv); /* nothing left to wait for: FUT_EOF */
    pthread_mutex_unlock(&q->mu);
    cf_future_cb_free(n->cb);
    free(n);
    cq_unref(q);
}

static void cq_commit(completion_queue_t *q, future_t *f, void *res)
{
    struct cq_node *n = res;
    (void)q;
    n->f = future_ref(f);
    cf_future_add_done_callback_node(f, cq_done, n, n->cb);
}

static const struct cf_queue_ops cq_ops = {
    .reserve = cq_reserve,
    .commit = cq_commit,
    .unreserve = cq_unreserve,
};

int completion_queue_add(completion_queue_t *q, future_t *f)
{
    if (!q || !f)
        return FUT_EINVAL;
    void *res;
    int rc = cq_reserve(q, &res);
    if (rc < 0)
        return rc;
    cq_commit(q, f, res);
    return 0;
}

int completion_queue_next(completion_queue_t *q, double timeout, future_t **out)
{
    if (!q || !out || !cf_timeout_valid(timeout))
        return FUT_EINVAL;
    int64_t deadline = cf_deadline_after(timeout);
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    while (!q->first) {
        if (q->pending == 0) {
            rc = FUT_EOF;
            goto out;
        }
        if (deadline != CF_NO_DEADLINE && cf_now_ns() >= deadline) {
            rc = FUT_ETIMEDOUT;
            goto out;
        }
        q->sleepers++;
        if (deadline == CF_NO_DEADLINE) {
            pthread_cond_wait(&q->cv, &q->mu);
        } else {
            struct timespec ts;
            cf_ns_to_timespec(deadline, &ts);
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        }
        q->sleepers--;
    }
    struct cq_node *n = q->first;
    q->first = n->next;
    if (!q->first)
        q->last = NULL;
    if (--q->ready == 0)
        efd_clear(q->efd);
    *out = n->f; /* the queue's reference goes to the caller */
    free(n);
out:
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int completion_queue_fd(const completion_queue_t *q)
{
    return q ? q->efd : FUT_EINVAL;
}

void completion_queue_free(completion_queue_t *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->freed = true;
    struct cq_node *n = q->first;
    q->first = q->last = NULL;
    q->ready = 0;
    /* Closed now, not with the memory: a future that never completes keeps
       only that (its entry and the queue's struct) until it does. */
    close(q->efd);
    q->efd = -1;
    pthread_mutex_unlock(&q->mu);
    while (n) {
        struct cq_node *next = n->next;
        future_unref(n->f);
        free(n);
        n = next;
    }
    cq_unref(q);
}
