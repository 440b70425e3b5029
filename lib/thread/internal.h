/*
 * internal.h: the thread pool's structs, shared by the files of lib/thread/
 * and by nothing else:
 *
 *   pool.c      the executor face and the workers: queue, wake protocol,
 *               submit, resize, shutdown, join (its DESIGN comment)
 *   queue.c     the queue, the inbox (the inline half is below) and the
 *               wake decision
 *   deadline.c  the watcher thread that fails a task past its own limit
 */
#ifndef CF_THREAD_INTERNAL_H
#define CF_THREAD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "executor.h"
#include "util.h"

struct tp_worker {
    struct tp_worker *next;   /* pool->workers: pool lock */
    struct thread_pool *pool; /* immutable */
    pthread_t thread;         /* immutable once started */
    size_t index;             /* immutable: the _N of its name */
    int64_t popped;           /* when it popped its current task: its own */
    bool gone;                /* it left in a shrink (executor_set_max_workers): lock */
    /* dl_mu */
    struct tp_worker *dl_next; /* pool->watched */
    bool listed;               /* in pool->watched (until the worker leaves) */
    future_t *watched;         /* its running task, when that has a limit */
    int64_t deadline;
};

struct thread_pool {
    struct executor base;
    /*
     * The inbox: a lock-free stack (linked through cf_work.next) that a
     * submit pushes on without the lock when every worker is started and
     * none is parked; a worker moves it into `queue` under the lock (pool.c
     * DESIGN). Alone on its cache line: only submitters write it often.
     */
    _Alignas(64) _Atomic(struct cf_work *) inbox;
    /* Read by every submit, written rarely: a line of their own. */
    _Alignas(64) _Atomic size_t sleeping; /* workers parked: written under lock */
    _Atomic bool stopping;                /* shutdown called: written under lock */
    _Atomic bool full;                    /* nworkers_alive >= max: written under lock */
    /* The workers' side. */
    _Alignas(64) cf_lock_t lock;
    struct cf_work_fifo queue; /* lock */
    _Atomic size_t qlen;       /* its length; written under lock, read by spinners */
    _Atomic uint32_t wake_seq; /* eventcount: parked workers wait on it */
    /* Changed by workers outside the lock: off the lock's line. */
    _Alignas(64) _Atomic size_t idle; /* workers free for a task */
    _Atomic size_t spinning;          /* workers spinning for work */
    _Alignas(64) size_t nthreads;     /* workers started: lock */
    size_t max;                /* workers allowed now (max_workers, resized): lock */
    size_t nalive;             /* workers + watcher not yet exited: lock */
    size_t nworkers_alive;     /* workers not yet exited: lock */
    _Atomic uint32_t gone_all; /* bumped when nworkers_alive falls to 0 (a futex) */
    _Atomic size_t initializing; /* workers in the initializer */
    _Atomic size_t calling;      /* threads running done-callbacks (cf_tp_join_until) */
    size_t busy;               /* workers between a pop and their next take: lock */
    _Atomic size_t wakes;      /* wake-ups sent, not yet taken: written under lock */
    bool watchman;             /* a parked worker is the watchman: lock */
    bool watch_timed;          /* ... and parked with a time limit: lock */
    bool skipped;              /* a submit counted on a busy worker since
                                  the watchman parked: lock */
    int64_t last_back;         /* when a worker last came back from a task: lock */
    int64_t last_len;          /* how long that task ran: lock */
    size_t handovers;          /* watchman duties passed to a woken worker: lock */
    struct tp_worker *workers; /* every worker started: lock */
    unsigned id;               /* immutable: for default thread names */
    size_t max_spinners;       /* immutable: workers that may spin at once */
    /* deadlines */
    pthread_mutex_t dl_mu;
    pthread_cond_t dl_cv;      /* CLOCK_MONOTONIC */
    struct tp_worker *watched; /* workers running a task with a limit: dl_mu */
    bool dl_started, dl_stop;  /* dl_mu */
    pthread_t dl_thread;       /* immutable once dl_started */
};

static inline struct thread_pool *tp_of(executor_t *ex)
{
    return (struct thread_pool *)ex;
}

/* Records whether another worker may start (called with the lock held). */
static inline void cf_tp_note_full(struct thread_pool *p)
{
    atomic_store(&p->full,
                 p->nworkers_alive >= p->max); /* before a drain: see tp_submit */
}

/*
 * The inbox once shutdown or a broken pool closed it (cf_tp_close_inbox): a
 * push finds it and is refused, so a task is accepted exactly when its push
 * lands before the close.
 */
#define CF_TP_INBOX_CLOSED ((struct cf_work *)(uintptr_t)1)

/* True if a submit left work in the inbox (sequentially consistent: see submit). */
static inline bool cf_tp_inbox_busy(struct thread_pool *p)
{
    struct cf_work *head = atomic_load(&p->inbox);
    return head && head != CF_TP_INBOX_CLOSED;
}

/* Pushes @w on the inbox, without the lock; false if the inbox is closed. */
static inline bool cf_tp_inbox_push(struct thread_pool *p, struct cf_work *w)
{
    struct cf_work *head = atomic_load_explicit(&p->inbox, memory_order_relaxed);
    do {
        if (head == CF_TP_INBOX_CLOSED)
            return false;
        w->next = head;
    } while (!atomic_compare_exchange_weak_explicit(
        &p->inbox, &head, w, memory_order_seq_cst, memory_order_relaxed));
    return true;
}

/* True if work waits in the queue or the inbox (called with the lock held). */
static inline bool cf_tp_work_waits(struct thread_pool *p)
{
    return p->queue.head || cf_tp_inbox_busy(p);
}

/* queue.c: the queue, the inbox and the worker list, all called with the lock held. */
void cf_tp_drain_inbox(struct thread_pool *p);
/* Closes the inbox for good, moving what it held into the queue. */
void cf_tp_close_inbox(struct thread_pool *p);
void cf_tp_push(struct thread_pool *p, struct cf_work *w);
bool cf_tp_unqueue(struct thread_pool *p, struct cf_work *w);
struct cf_work *cf_tp_pop(struct thread_pool *p);
struct cf_work_fifo cf_tp_detach(struct thread_pool *p);
/* True if a parked worker must be woken for @qlen queued tasks (it counts
   the wake-up: the caller wakes one after unlocking); @own: the submit came
   from one of the pool's workers. */
bool cf_tp_wake_needed(struct thread_pool *p, size_t qlen, bool own);
/* Unlinks the workers that left in a shrink; the caller joins and frees them. */
struct tp_worker *cf_tp_unlink_gone_locked(struct thread_pool *p);

/* pool.c: the last thread of a pool freed from inside it frees it. */
void cf_tp_self_free(struct thread_pool *p);
/* ops->join: every worker, then the watcher. */
void cf_tp_join(executor_t *ex);
/* ops->join_until: until no worker is left (gone_all) and the watcher runs no
   callback; false if @deadline passed while a worker was in its initializer,
   or a worker or the watcher in a done-callback. */
bool cf_tp_join_until(executor_t *ex, int64_t deadline);

/* deadline.c */
void cf_tp_watch_start(struct thread_pool *p, struct tp_worker *me, future_t *f,
                       int64_t deadline);
void cf_tp_watch_stop(struct thread_pool *p, struct tp_worker *me);
/* Worker @me leaves the pool: off the watch list (it may be freed next). */
void cf_tp_watch_leave(struct thread_pool *p, struct tp_worker *me);
/* Tells the watcher to leave; true if it was started (then join it). */
bool cf_tp_watch_quit(struct thread_pool *p);

#endif /* CF_THREAD_INTERNAL_H */
