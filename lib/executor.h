/*
 * executor.h: the executor interface. Each executor kind fills one const
 * table of operations; submit, submit_with, map, shutdown, free and stats are
 * written once in executor.c and shared by every kind.
 *
 * A submitted task is a cf_work allocated in the same block as its future
 * (cf_future_alloc(sizeof(struct cf_work))). The future starts with two
 * references: the caller's, and the executor's, which the executor drops once
 * it is done with the work item.
 */
#ifndef CF_EXECUTOR_H
#define CF_EXECUTOR_H

#include <cfutures.h>

#include <math.h>
#include <stddef.h>
#include <pthread.h>

#include "future.h"

struct cf_work {
    struct cf_work *next; /* the executor's queue link: the executor's lock */
    executor_t *ex;       /* immutable */
    task_fn fn;           /* immutable */
    const void *arg;      /* borrowed from the submitter; a kind that copies it at
                             submit points it at its copy then (immutable after) */
    size_t arg_len;       /* immutable */
    int64_t limit_ns;     /* the task's own running-time limit, 0 for none */
};
/* With the future's 72 bytes, 120: one 128-byte block (blocks.h; W5). */
_Static_assert(sizeof(struct cf_work) <= 48, "a pending task must fit a 128-byte chunk");

static inline future_t *cf_work_future(struct cf_work *w)
{
    return cf_future_from_extra(w);
}

/*
 * The task's priority (submit_options_t.priority; immutable once queued,
 * 0 unless set): kept in the future's word (future.h), which costs no byte.
 */
static inline int cf_work_priority(const struct cf_work *w)
{
    return *cf_future_word((void *)w);
}

static inline void cf_work_set_priority(struct cf_work *w, int priority)
{
    *cf_future_word(w) = priority;
}

/* A FIFO of work items linked through cf_work.next; its owner's lock guards it. */
struct cf_work_fifo {
    struct cf_work *head, *tail;
};

static inline void cf_fifo_push(struct cf_work_fifo *q, struct cf_work *w)
{
    w->next = NULL;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
}

static inline void cf_fifo_push_front(struct cf_work_fifo *q, struct cf_work *w)
{
    w->next = q->head;
    q->head = w;
    if (!q->tail)
        q->tail = w;
}

static inline struct cf_work *cf_fifo_pop(struct cf_work_fifo *q)
{
    struct cf_work *w = q->head;
    if (w) {
        q->head = w->next;
        if (!q->head)
            q->tail = NULL;
        w->next = NULL;
    }
    return w;
}

/*
 * Queues @w in priority order: after every item of its priority or higher,
 * before the first lower one. An item no higher than the tail (all of them
 * while nobody uses priorities) is appended in O(1); else a scan from the
 * head.
 */
static inline void cf_fifo_push_prio(struct cf_work_fifo *q, struct cf_work *w)
{
    if (!q->tail || cf_work_priority(q->tail) >= cf_work_priority(w)) {
        cf_fifo_push(q, w);
        return;
    }
    if (cf_work_priority(q->head) < cf_work_priority(w)) {
        cf_fifo_push_front(q, w);
        return;
    }
    struct cf_work *at = q->head; /* the last item of priority >= w's */
    while (cf_work_priority(at->next) >= cf_work_priority(w))
        at = at->next; /* stops before the tail, which is lower */
    w->next = at->next;
    at->next = w;
}

/* Empties @q and returns what it held. */
static inline struct cf_work_fifo cf_fifo_take(struct cf_work_fifo *q)
{
    struct cf_work_fifo out = *q;
    q->head = q->tail = NULL;
    return out;
}

/* Appends everything in @src to @dst and empties @src. */
static inline void cf_fifo_splice(struct cf_work_fifo *dst, struct cf_work_fifo *src)
{
    if (!src->head)
        return;
    if (dst->tail)
        dst->tail->next = src->head;
    else
        dst->head = src->head;
    dst->tail = src->tail;
    src->head = src->tail = NULL;
}

/*
 * Moves everything in @src (in priority order) into @dst (in priority
 * order), keeping the order: a splice unless @src holds an item higher
 * than @dst's tail.
 */
static inline void cf_fifo_merge_prio(struct cf_work_fifo *dst, struct cf_work_fifo *src)
{
    if (!dst->tail || !src->head ||
        cf_work_priority(dst->tail) >= cf_work_priority(src->head)) {
        cf_fifo_splice(dst, src);
        return;
    }
    struct cf_work *w;
    while ((w = cf_fifo_pop(src)))
        cf_fifo_push_prio(dst, w);
}

/* join_until's look, past its deadline, at whether an initializer still runs. */
#define CF_JOIN_SLICE_NS (10 * (int64_t)1000000)

struct cf_executor_ops {
    /* Bytes of the kind's work item (starts with struct cf_work); 0: cf_work. */
    size_t work_size;
    /*
     * True: the kind's own thread (cf_executor_bind_thread: a process or MPI
     * pool's manager, where every done-callback runs) is the one that makes
     * room in max_queue, so a blocking submit there is let in over the bound
     * rather than waiting for itself (queue_enter).
     */
    bool own_thread_makes_room;
    /*
     * The longest argument the kind copies (0: no limit, it borrows): a
     * longer one is FUT_EINVAL at the call (cf_executor_arg_fits), before
     * the executor's state, a bounded queue or a delay is looked at.
     */
    size_t arg_max;
    /*
     * Queues @w. No executor.c lock is held. Returns 0, or a code
     * (FUT_ESHUTDOWN, FUT_EBROKEN, FUT_ESYS, FUT_ENOMEM): then the executor
     * kept nothing and executor.c undoes the submit.
     */
    int (*submit)(executor_t *ex, struct cf_work *w);
    /*
     * Optional: as submit, but the submitter keeps w->arg's bytes alive and
     * unchanged until the future is done (submit_options_t.borrow_arg), so
     * the kind need not copy them. NULL: submit is called.
     */
    int (*submit_borrowed)(executor_t *ex, struct cf_work *w);
    /*
     * Optional. future_cancel on @w's pending future calls it under the
     * future's lock before cancelling: true lets the cancel go on, false means
     * the task has started already (future_cancel then returns false). It may
     * only touch atomics. @stop: a started task is asked to stop (false:
     * cf_future_revoke, which leaves it alone).
     */
    bool (*try_cancel)(executor_t *ex, struct cf_work *w, bool stop);
    /*
     * Optional: queues a map chunk of @n items (args[j], lens[j]; @lens may
     * be NULL: length 0) as ONE work item @w (w->fn is the map's function;
     * w->arg is unused). The items are copied before it returns. The
     * future's result is the kind's own encoding of the @n answers, read
     * back with chunk_next. Returns 0 or a code, as submit.
     */
    int (*submit_chunk)(executor_t *ex, struct cf_work *w, const void *const *args,
                        const size_t *lens, size_t n);
    /*
     * With submit_chunk: how many of the @n items (lens[j]; NULL: all 0),
     * from the first, one chunk can carry (1 to @n), so that a chunk is
     * never refused for its size and a map knows its units ahead.
     */
    size_t (*chunk_fit)(const size_t *lens, size_t n);
    /*
     * With submit_chunk: the next item's answer in a chunk's result @res
     * (@res_len bytes), starting at *@cursor (0 for the first item), which it
     * advances. Returns 0 with the item's result in *@data, *@len (aligned as
     * malloc's, living as long as @res), FUT_ETASK if the item raised (the
     * data is NULL, 0), FUT_EOF past the last item.
     */
    int (*chunk_next)(const void *res, size_t res_len, size_t *cursor, const void **data,
                      size_t *len);
    /*
     * Optional. future_cancel was called on @w's running future (under the
     * future's lock; only atomics): pass the stop request on to wherever the
     * task runs, for task_should_stop.
     */
    void (*request_stop)(executor_t *ex, struct cf_work *w);
    /*
     * Stops taking work (later submits fail FUT_ESHUTDOWN); with
     * @cancel_futures cancels every queued work item
     * (cf_executor_cancel_fifo). Workers exit once the queue is empty. May be
     * called more than once.
     */
    void (*shutdown)(executor_t *ex, bool cancel_futures);
    /*
     * Optional (process pools): signals every worker with @sig (SIGKILL
     * follows for one that survives it), failing their started tasks
     * FUT_EWORKER once they died; tasks not started fail FUT_EBROKEN and the
     * executor is broken if @brk, else they are cancelled. Returns once the
     * signals went out (at once from one of @ex's own threads). 0.
     */
    int (*kill_workers)(executor_t *ex, int sig, bool brk);
    /* Waits until every worker has exited. Called once, never from a worker. */
    void (*join)(executor_t *ex);
    /*
     * Optional: after shutdown, once no task is left, waits until every
     * worker has exited (join then returns at once): true. False if
     * @deadline passed while a worker was still in its initializer (then
     * it may never exit); workers merely on their way out are waited for
     * past it (CF_JOIN_SLICE_NS at a time). A kind without it is joined
     * without a limit (executor_shutdown_timed).
     */
    bool (*join_until)(executor_t *ex, int64_t deadline);
    /*
     * Optional. executor_free was called from one of @ex's own threads
     * (cf_executor_free_later() is true from now on): the kind lets its
     * threads go, and its last thread calls cf_executor_self_free().
     */
    void (*free_later)(executor_t *ex);
    /* Frees the kind's own memory (after join). */
    void (*destroy)(executor_t *ex);
    /* Fills workers and idle. */
    void (*stats)(executor_t *ex, executor_stats_t *out);
    /*
     * Optional: executor_set_max_workers (@n >= 1, checked). Returns 0, or
     * FUT_EINVAL with nothing changed (@n beyond what the kind can reach).
     */
    int (*set_max_workers)(executor_t *ex, int n);
};

/*
 * An executor's counters, striped: each thread adds to the stripe of its own
 * (a cache line), so workers and submitters do not pass one line between
 * them on every task; a reader sums the stripes (executor.c).
 */
#define CF_STRIPES 8
struct cf_counts {
    _Alignas(64) _Atomic size_t entered; /* queued, and left: dequeued */
    _Atomic size_t left;
    _Atomic size_t started, done; /* running = started - done */
    _Atomic size_t completed, failed;
};

/*
 * The part every executor kind starts with. Counters are atomics so that
 * executor_stats never takes a pool lock.
 */
struct executor {
    const struct cf_executor_ops *ops; /* immutable */
    executor_options_t opts;           /* immutable; prefix points at name_prefix */
    char name_prefix[16];              /* immutable: thread names, truncated */
    _Atomic int refs;                  /* the owner's, plus one per live map */
    _Atomic bool shut;                 /* executor_shutdown called */
    /* executor_shutdown_timed ran out of time: no more waits for user code */
    _Atomic bool timed_out;
    _Atomic bool broken;      /* every submit fails FUT_EBROKEN */
    struct cf_counts *counts; /* CF_STRIPES of them, owned (executor.c) */
    pthread_mutex_t mu;       /* bounded queue, join */
    pthread_cond_t space_cv;  /* a queue slot freed (max_queue) */
    pthread_cond_t join_cv;   /* the join finished */
    bool joining, joined;     /* mu */
    _Atomic bool free_later;  /* executor_free came from its own thread */
    struct cf_timed *timed;   /* mu: delayed tasks not yet due, live schedules */
    int firing;               /* mu: timer callbacks submitting now (fire_begin) */
    pthread_cond_t fired_cv;  /* firing fell to 0 */
    pthread_cond_t idle_cv;   /* CLOCK_MONOTONIC: after shutdown, queued and running
                                 both fell to 0 (cf_executor_wait_idle) */
#ifdef CF_TEST_HOOKS
    /*
     * Tests' barrier (cf_test_settled): submits whose ops->submit returned,
     * and, for a kind with a manager thread (test_managed), how many of them
     * the manager had taken in at the start of its last finished pass. The
     * process pool sets test_managed; the MPI pool does not (no test of it
     * waits on the order of its manager's intake).
     */
    _Atomic size_t test_pushed, test_settled;
    bool test_managed; /* immutable after creation */
#endif
};

#ifdef CF_TEST_HOOKS
size_t cf_test_settled(executor_t *ex);
#endif

/* The sum of one counter (its offset in struct cf_counts) over the stripes. */
static inline size_t cf_counts_sum(executor_t *ex, size_t off)
{
    size_t sum = 0;
    for (int i = 0; i < CF_STRIPES; i++)
        sum += atomic_load((_Atomic size_t *)((char *)&ex->counts[i] + off));
    return sum;
}

#ifdef CF_TEST_HOOKS
extern void (*cf_test_stats_hook)(void); /* between a count's two sums */
#endif

/*
 * @in - @out (offsets in struct cf_counts): a value the count held while
 * this ran. @out is summed before @in (never below the truth) and again
 * after; each stripe only grows, so equal sums mean no item left while @in
 * was summed, and the difference lies between the counts at the start and
 * the end of that sum. A reader preempted between the sums while items
 * streamed through would give more than was ever there (queued over
 * max_queue, more running than threads): it sums again (a bounded number
 * of times: under a storm of items the last difference stands).
 */
static inline size_t cf_count_between(executor_t *ex, size_t in_off, size_t out_off)
{
    size_t out = cf_counts_sum(ex, out_off);
    for (int tries = 0;; tries++) {
        CF_TEST_HOOK(cf_test_stats_hook);
        size_t in = cf_counts_sum(ex, in_off), again = cf_counts_sum(ex, out_off);
        if (again == out || tries == 16)
            return in - out;
        out = again;
    }
}

/* Submitted, not started (entered - left); started, not finished. */
static inline size_t cf_count_queued(executor_t *ex)
{
    return cf_count_between(ex, offsetof(struct cf_counts, entered),
                            offsetof(struct cf_counts, left));
}

static inline size_t cf_count_running(executor_t *ex)
{
    return cf_count_between(ex, offsetof(struct cf_counts, started),
                            offsetof(struct cf_counts, done));
}

/*
 * A future whose work waits for a time (a delayed task, a schedule): the
 * executor keeps a list of them so that executor_shutdown can cancel them.
 * Embedded in the owner's memory; the owner keeps @f alive while linked.
 */
struct cf_timed {
    struct cf_timed *prev, *next; /* the executor's mu */
    future_t *f;                  /* immutable */
    bool linked;                  /* the executor's mu */
};

/*
 * Links @n (n->f set). Returns 0, or FUT_ESHUTDOWN (not linked) once
 * executor_shutdown was called: it cancels every linked future (a
 * reference taken under the lock, future_cancel without it).
 */
static inline int cf_executor_track(executor_t *ex, struct cf_timed *n)
{
    pthread_mutex_lock(&ex->mu);
    bool shut = atomic_load(&ex->shut);
    if (!shut) {
        n->prev = NULL;
        n->next = ex->timed;
        if (ex->timed)
            ex->timed->prev = n;
        ex->timed = n;
        n->linked = true;
    }
    pthread_mutex_unlock(&ex->mu);
    return shut ? FUT_ESHUTDOWN : 0;
}

/* Unlinks @n (linked; the executor's mu held). */
static inline void cf_untrack_locked(executor_t *ex, struct cf_timed *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        ex->timed = n->next;
    if (n->next)
        n->next->prev = n->prev;
    n->linked = false;
}

/* Unlinks @n if it is linked (a no-op after shutdown took it). */
static inline void cf_executor_untrack(executor_t *ex, struct cf_timed *n)
{
    pthread_mutex_lock(&ex->mu);
    if (n->linked)
        cf_untrack_locked(ex, n);
    pthread_mutex_unlock(&ex->mu);
}

/*
 * The timer fires @n: true (then cf_executor_fire_end must follow) unless
 * executor_shutdown was called (it cancels @n) or took @n already.
 * @take unlinks @n. Shutdown waits for every fire begun to end, so what a
 * fire submits or fails is settled before executor_shutdown returns.
 */
extern _Thread_local const executor_t *cf_firing_for; /* executor.c */

static inline bool cf_executor_fire_begin(executor_t *ex, struct cf_timed *n, bool take)
{
    pthread_mutex_lock(&ex->mu);
    bool ok = n->linked && !atomic_load(&ex->shut);
    if (ok) {
        if (take)
            cf_untrack_locked(ex, n);
        ex->firing++;
        cf_firing_for = ex; /* its callbacks may shut @ex down: not wait for us */
    }
    pthread_mutex_unlock(&ex->mu);
    return ok;
}

static inline void cf_executor_fire_end(executor_t *ex)
{
    cf_firing_for = NULL;
    pthread_mutex_lock(&ex->mu);
    if (--ex->firing == 0)
        pthread_cond_broadcast(&ex->fired_cv);
    pthread_mutex_unlock(&ex->mu);
}

/*
 * After executor_shutdown: waits until nothing is queued or running, or
 * @deadline (CLOCK_MONOTONIC ns) passes. 0 or FUT_ETIMEDOUT.
 */
int cf_executor_wait_idle(executor_t *ex, int64_t deadline);
/* Joins the workers once (executor_shutdown(wait) does the same). */
void cf_executor_join(executor_t *ex);

/* Fills the common part; copies options. Returns 0 or FUT_EINVAL. */
int cf_executor_init(executor_t *ex, const struct cf_executor_ops *ops,
                     const executor_options_t *o, int default_workers);
/* Called by a worker when it starts a work item (after set_running == 1). */
void cf_executor_started(executor_t *ex);
/* Called by a worker when a started item finished; @failed from cf_task_settle
   (or cf_task_complete), or the kind's own outcome for work it ran elsewhere. */
void cf_executor_finished(executor_t *ex, bool failed);
/* A queued item failed without starting (broken pool). */
void cf_executor_dropped(executor_t *ex);
/* Marks the executor broken; done before any future fails FUT_EBROKEN. */
void cf_executor_mark_broken(executor_t *ex);
/* Takes a reference (a live map holds one). */
void cf_executor_ref(executor_t *ex);
/* Drops a reference; the last frees the executor (ops->destroy). */
void cf_executor_unref(executor_t *ex);
/* Releases the common part's resources (called by ops->destroy). */
void cf_executor_deinit(executor_t *ex);

/*
 * The arguments of a submit are valid: a function, an argument unless its
 * length is 0, and options (NULL, or finite times >= 0). Checked first by
 * every submit, so bad input is FUT_EINVAL whatever the executor's state.
 */
static inline bool cf_submit_args_ok(task_fn fn, const void *arg, size_t arg_len,
                                     const submit_options_t *so)
{
    return fn && (!arg_len || arg) &&
           (!so || (isfinite(so->timeout) && so->timeout >= 0 && isfinite(so->delay) &&
                    so->delay >= 0));
}

/* @arg_len is within the kind's maximum (ops->arg_max). */
static inline bool cf_executor_arg_fits(const executor_t *ex, size_t arg_len)
{
    return !ex->ops->arg_max || arg_len <= ex->ops->arg_max;
}

/*
 * executor_submit_with without a delay, its arguments checked by the
 * caller (schedule.c's executor_submit_with; executor_submit).
 */
future_t *cf_executor_submit_with(executor_t *ex, task_fn fn, const void *arg,
                                  size_t arg_len, const submit_options_t *so);

/*
 * Submits a map chunk of @n items as ONE task (ops->submit_chunk, which the
 * kind must have): its future's result holds the items' answers
 * (ops->chunk_next). As executor_submit: the future, or NULL with errno.
 */
future_t *cf_executor_submit_chunk(executor_t *ex, task_fn fn, const void *const *args,
                                   const size_t *lens, size_t n);

/*
 * Thread ownership, for executor_free and shutdown(wait) from inside a pool.
 * A kind's thread calls cf_executor_bind_thread(ex) when it starts (NULL
 * when it leaves); executor.c then knows a call comes from @ex's own thread.
 */
void cf_executor_bind_thread(executor_t *ex);
bool cf_executor_on_own_thread(const executor_t *ex);
/* executor_free came from one of @ex's own threads (read by its last thread). */
bool cf_executor_free_later(const executor_t *ex);
/*
 * Called by the last thread of a pool freed from inside (after it joined the
 * others): detaches itself, unbinds, drops the owner's reference (which may
 * free @ex: touch nothing of it afterwards).
 */
void cf_executor_self_free(executor_t *ex);

/*
 * Empties @q, failing each item's future with @status and @why
 * (FUT_EBROKEN: counted as dropped) or, for FUT_ECANCELLED, cancelling it
 * (future_cancel counts it out of `queued`). Then @release(w) hands the item
 * back to its kind, which drops the executor's reference to the future;
 * NULL: just that reference.
 */
void cf_executor_drain_fifo(executor_t *ex, struct cf_work_fifo *q, int status,
                            const char *why, void (*release)(struct cf_work *w));

/*
 * Prepared work (future_then): the work item and its future are made now,
 * the task is submitted later with cf_executor_submit_prepared, or never.
 * The future is the one the caller gets back; until the submit it is an
 * ordinary pending future (future_cancel cancels it outright), from the
 * submit on it is an ordinary submitted task (cancelled as any queued one,
 * running, finished by the pool). @tail bytes after the work item belong to
 * the caller (cf_work_tail; aligned for pointers and doubles).
 * The future has one reference (the caller's). The prepared item uses @ex's
 * memory: the caller holds a reference to @ex (cf_executor_ref) until the
 * future is done and a cancel's hooks have returned (a done-callback that
 * drops it comes after them: future.h). NULL when out of memory.
 */
struct cf_work *cf_executor_prepare(executor_t *ex, task_fn fn, double limit,
                                    size_t tail);
void *cf_work_tail(struct cf_work *w);
/*
 * Submits a prepared item with its argument. Returns 0 (the pool has it);
 * FUT_ECANCELLED if its future was cancelled before (nothing submitted);
 * or the submit's code (FUT_ESHUTDOWN, FUT_EBROKEN, FUT_EFULL, FUT_ENOMEM,
 * FUT_ESYS): nothing was submitted and the caller fails the future. Blocks
 * as a submit does with max_queue unless @nonblocking. @borrowed: the
 * caller keeps @arg alive until the future is done (ops->submit_borrowed).
 */
int cf_executor_submit_prepared(struct cf_work *w, const void *arg, size_t arg_len,
                                bool nonblocking, bool borrowed);

/*
 * A task whose argument carries another task_fn: future_then's step carries
 * the user's function at the argument's start (compose.c). A pool whose
 * tasks run in another program image (the MPI pool) must rewrite that
 * pointer both ways, as it does the task's own function. Returns true, and
 * the offset of the task_fn in the argument in @off, if @fn is such a task
 * and its argument of @arg_len bytes holds one.
 */
bool cf_task_carries_fn(task_fn fn, size_t arg_len, size_t *off);

/*
 * Fails @w's future FUT_EDEADLINE with the one message every kind uses.
 * Returns as cf_future_fail (0, or FUT_ESTATE if it was done already).
 */
int cf_work_expire(struct cf_work *w);

#endif /* CF_EXECUTOR_H */
