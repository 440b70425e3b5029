/*
 * pool.c: the thread pool executor (Python's ThreadPoolExecutor); the
 * structs are in internal.h, the queue in queue.c, the deadline watcher in
 * deadline.c.
 *
 * DESIGN
 * One queue of work items (intrusive list through cf_work.next) under the
 * pool's 4-byte lock, in priority order (FIFO within a level: an append
 * while nobody uses priorities). Threads start lazily: a submit starts one
 * when the queue holds more items than there are idle workers, up to
 * max_workers.
 *
 * In front of it, the inbox: a lock-free stack. Once every worker is
 * started, a submit of priority 0 pushes its task there with one CAS, and
 * is done unless a worker is parked while none is coming (spinning, or
 * woken and on its way): then it takes the lock as every other submit does
 * (a submit from one of the pool's own threads always does). Shutdown and
 * a broken pool close the inbox. A worker moves the whole inbox into
 * the queue, oldest first, when the queue is empty or its head has a
 * priority below 0, so the order is the same as if every submit had queued
 * under the lock. A worker that pops while tasks are left and workers are
 * parked makes the wake decision (cf_tp_wake_needed) that the submits
 * which counted on it skipped. A stream of tiny tasks then passes no lock
 * between the submitter and the workers (W1: the lock, shared by both,
 * took a third of the submitter's time; at 4 workers, where some always
 * park, the submit's lock for the wake decision halved the rate).
 * tp_submit says why no wake-up and no task is lost.
 *
 * Resizing (executor_set_max_workers): growing starts threads at once for
 * the queued items; shrinking wakes every parked worker, and a worker that
 * looks for work while more workers are alive than allowed leaves instead
 * (a running task is never interrupted). A thread that left stays in the
 * worker list until the next resize or the join reaps it.
 *
 * A worker with nothing to do spins for a few microseconds watching `qlen`
 * (lock-free), then parks on the `wake_seq` futex (an eventcount). A submit
 * wakes a parked worker when the queue holds more items than there are
 * workers coming for them: those spinning and those woken and on their way.
 * A running worker is not counted, since its task may be long: a short task
 * submitted while others run long ones wakes an idle worker at once, with no
 * timer in its path (W7 in bench/RESULTS.md).
 *
 * One exception keeps a stream of tiny tasks from costing a wake-up each
 * (W1): while tiny tasks are flowing (a worker came back within FLOW_NS from
 * one that ran under FLOW_NS) and the queue holds one item more than the
 * workers coming, the running worker that is about to come back counts
 * too, provided a timed watchman covers the bet. The watchman is the first worker to
 * park; it parks with a limit (WATCH_NS) only if a submit made that bet since it last
 * parked, and untimed otherwise, so an idle pool and a pool whose workers all run long
 * tasks make no wake-ups at all (W8). A watchman that leaves its wait (woken or timed
 * out) answers for queued tasks until it pops one; if more are queued and workers are
 * parked, it wakes one to carry the duty on.
 *
 * A worker counts itself idle again before it completes a task's future, so
 * a caller that waits for a result and submits again finds it idle and no
 * second thread starts. While the future's done-callbacks run on it, it is
 * busy again (Python's idle semaphore is released after them): a callback
 * may wait for a task submitted from anywhere (callbacks_begin).
 *
 * Deadlines: see deadline.c.
 *
 * Threads: the submitters (any), the workers (run tasks and the callbacks of
 * futures they complete), the deadline watcher (runs the callbacks of futures
 * it fails). All of them block asynchronous signals.
 *
 * Locks, in order: `dl_mu` (deadline.c), then pool `lock` (queue, thread
 * list, counters). Nothing is taken while `lock` is held. No user code runs
 * under either.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "task.h"

static _Atomic unsigned pool_counter;

/*
 * This worker parks under SCHED_BATCH and runs tasks under SCHED_OTHER (its
 * policy after the initializer, unless that chose another one). Woken, a
 * SCHED_BATCH thread never preempts the running one: the worker that a
 * submit wakes waits for a free CPU (or the scheduler's next tick) instead
 * of taking the submitter's CPU, where it would often find the queue empty
 * and park again. W1, 200,000 tiny tasks on 2 CPUs: 1,000-2,700 of a run's
 * wake-ups found every worker parked before this, 20-50 after.
 */
static _Thread_local bool park_batch;

/* How long a worker with nothing to do spins before it parks. */
#define SPIN_NS 30000
/* The spin pauses, and yields the CPU once every this long. */
#ifndef SPIN_YIELD_NS
#define SPIN_YIELD_NS 5000
#endif

/* How long a timed watchman parks before it looks at the queue again. */
#define WATCH_NS 1000000

#ifdef CF_TEST_HOOKS
/* Tests stretch the watchman's limit to show that no task waits for it. */
int64_t cf_test_watch_ns = WATCH_NS;
#define WATCH_LIMIT_NS cf_test_watch_ns
/* Tests hold a worker between counting itself idle and its callbacks, and
   one that leaves in a shrink just after it counted itself out. */
void (*cf_test_tp_idle_hook)(void), (*cf_test_tp_leave_hook)(void);
#else
#define WATCH_LIMIT_NS WATCH_NS
#endif

/* ---------------------------------------------------------- the queue */

/* Wakes one parked worker (called after unlocking). */
static void wake_one(struct thread_pool *p)
{
    atomic_fetch_add_explicit(&p->wake_seq, 1, memory_order_release);
    cf_futex_wake(&p->wake_seq, 1);
}

static void wake_all(struct thread_pool *p)
{
    atomic_fetch_add_explicit(&p->wake_seq, 1, memory_order_release);
    cf_futex_wake(&p->wake_seq, INT_MAX);
}

/*
 * If work waits and a parked worker has no wake-up on its way, counts one
 * (the caller wakes it after unlocking). Called with the lock held.
 */
static bool wake_for_waiting_locked(struct thread_pool *p)
{
    if (!cf_tp_work_waits(p) || atomic_load(&p->sleeping) <= atomic_load(&p->wakes))
        return false;
    atomic_fetch_add(&p->wakes, 1);
    return true;
}

/*
 * Pops under the lock, first counting a worker back from its task (@back).
 * A @carrier that pops passes the watchman's duty on if tasks are left and
 * workers are parked. Sets *@stop when the pool is stopping.
 */
static struct cf_work *try_pop(struct thread_pool *p, struct tp_worker *me, bool *back,
                               bool *carrier, bool *stop)
{
    bool handover = false;
    int64_t now = cf_now_ns();
    cf_lock(&p->lock);
    *stop = atomic_load(&p->stopping); /* set with the inbox's close: see tp_submit */
    if (*back) {
        p->busy--;
        p->last_back = now;
        p->last_len = now - me->popped;
        *back = false;
    }
    if (p->nworkers_alive > p->max) {
        /* Too many after a shrink: leave, no longer idle (a grow counting it
           would start no thread), and wake one for what is queued. */
        me->gone = true;
        p->nworkers_alive--;
        atomic_fetch_sub_explicit(&p->idle, 1, memory_order_relaxed);
        cf_tp_note_full(p);
        handover = wake_for_waiting_locked(p);
        *stop = true;
        cf_unlock(&p->lock);
        CF_TEST_HOOK(cf_test_tp_leave_hook);
        if (handover)
            wake_one(p);
        return NULL;
    }
    struct cf_work *w = cf_tp_pop(p);
    if (w)
        me->popped = now;
    if (w && *carrier) {
        /* Tasks left behind may have counted on the watchman: pass that on. */
        *carrier = false;
        handover = wake_for_waiting_locked(p);
        if (handover)
            p->handovers++;
    }
    if (w && !handover && atomic_load(&p->sleeping) > atomic_load(&p->wakes)) {
        /* Tasks left behind may have counted on this worker: a submit that
           saw it coming made no decision (tp_submit), so make it here. */
        cf_tp_drain_inbox(p); /* for the exact count */
        size_t left = atomic_load_explicit(&p->qlen, memory_order_relaxed);
        handover = left && cf_tp_wake_needed(p, left, false);
    }
    cf_unlock(&p->lock);
    if (handover)
        wake_one(p);
    return w;
}

/*
 * Spins while work usually comes back (microseconds): true if work or a stop
 * showed up. At most max_spinners spin at once (CPUs - 1), so spinners never
 * crowd out the threads that submit; a watchman whose wait ran out
 * (@watched) does not spin.
 *
 * The spin pauses, with one sched_yield() every SPIN_YIELD_NS: a thread that
 * waits for this CPU (often a submitter sharing it) gets it within that, and
 * a spin that has its CPU to itself makes a few system calls, not one a turn
 * (W1 counts them: a yield on every turn made 2,000-19,000 a run of 200,000
 * tasks).
 */
static bool spin_for_work(struct thread_pool *p, bool watched)
{
    size_t spinners = atomic_fetch_add_explicit(&p->spinning, 1, memory_order_relaxed);
    int64_t start = cf_now_ns();
    int64_t until = start + (spinners < p->max_spinners && !watched ? SPIN_NS : 0);
    int64_t next_yield = start + SPIN_YIELD_NS;
    bool found = false;
    for (unsigned i = 1;; i++) {
        struct cf_work *in = atomic_load_explicit(&p->inbox, memory_order_relaxed);
        if (atomic_load_explicit(&p->qlen, memory_order_relaxed) > 0 ||
            (in && in != CF_TP_INBOX_CLOSED) || /* closed (a broken pool): no work */
            atomic_load_explicit(&p->stopping, memory_order_relaxed)) {
            found = true;
            break;
        }
        if ((i & 63) == 1) {
            int64_t now = cf_now_ns();
            if (now >= until)
                break;
            if (now >= next_yield) {
                sched_yield();
                next_yield = now + SPIN_YIELD_NS;
                continue;
            }
        }
        cf_cpu_relax();
    }
    atomic_fetch_sub(&p->spinning, 1); /* before park looks at the inbox: see tp_submit */
    return found;
}

/*
 * Parks on wake_seq, as the watchman if there is none (timed while some
 * worker is active). Sets *@carrier if it now answers for left tasks.
 * Returns true if it was a timed watchman whose wait ran out unwoken.
 */
static bool park(struct thread_pool *p, bool *carrier)
{
    /* A submit after our check bumps wake_seq, so no wake-up is lost. */
    uint32_t seq = atomic_load_explicit(&p->wake_seq, memory_order_acquire);
    cf_lock(&p->lock);
    /*
     * Counted as sleeping before the inbox is read: a submit that pushed
     * after this read sees the count and takes the lock to wake one.
     */
    atomic_fetch_add(&p->sleeping, 1);
    if (cf_tp_work_waits(p) || atomic_load_explicit(&p->stopping, memory_order_relaxed) ||
        p->nworkers_alive > p->max) {
        atomic_fetch_sub(&p->sleeping, 1);
        cf_unlock(&p->lock);
        return false;
    }
    bool watchman = !p->watchman, timed = false;
    *carrier = false; /* parked, it is the watchman or another one is */
    if (watchman) {
        /* A limit only while submits count on busy workers (see submit). */
        timed = p->skipped;
        p->skipped = false;
        p->watchman = true;
        p->watch_timed = timed;
    }
    cf_unlock(&p->lock);
    /* Parked under SCHED_BATCH: the submit that wakes it keeps its CPU. */
    bool batch = park_batch && cf_thread_set_batch(true);
    if (timed)
        cf_futex_wait_for(&p->wake_seq, seq, WATCH_LIMIT_NS);
    else
        cf_futex_wait(&p->wake_seq, seq);
    if (batch)
        cf_thread_set_batch(false);
    cf_lock(&p->lock);
    atomic_fetch_sub(&p->sleeping, 1);
    if (atomic_load(&p->wakes))
        atomic_fetch_sub(&p->wakes, 1);
    if (watchman) {
        p->watchman = p->watch_timed = false;
        *carrier = true;
    } else if (p->handovers) {
        p->handovers--;
        *carrier = true;
    }
    cf_unlock(&p->lock);
    return timed && atomic_load_explicit(&p->wake_seq, memory_order_relaxed) == seq;
}

/*
 * The next work item; NULL once the pool stops and the queue is empty.
 * @back: the worker comes back from a task it popped.
 */
static struct cf_work *take(struct thread_pool *p, struct tp_worker *me, bool back)
{
    bool watched = false; /* a watchman's wait ran out: park again without spinning */
    bool carrier = false; /* answers for tasks that submits left to the watchman */
    for (;;) {
        bool stop;
        struct cf_work *w = try_pop(p, me, &back, &carrier, &stop);
        if (w)
            return w;
        if (stop)
            return NULL;
        if (spin_for_work(p, watched))
            continue;
        watched = park(p, &carrier);
    }
}

/* The initializer failed: the pool is broken and every queued future fails. */
static void break_on_init(struct thread_pool *p, const char *why)
{
    cf_executor_mark_broken(&p->base);
    cf_lock(&p->lock);
    cf_tp_close_inbox(p); /* a later push is refused */
    struct cf_work_fifo q = cf_tp_detach(p);
    cf_unlock(&p->lock);
    cf_executor_drain_fifo(&p->base, &q, FUT_EBROKEN, why, NULL);
}

/* ---------------------------------------------------------- workers */

static bool run_initializer(struct thread_pool *p)
{
    const executor_options_t *o = &p->base.opts;
    if (!o->initializer)
        return true;
    struct task t;
    cf_task_init(&t, NULL, o->initarg, o->initarg_len, CF_NO_DEADLINE);
    atomic_fetch_add(&p->initializing, 1); /* cf_tp_join_until */
    o->initializer(&t);
    atomic_fetch_sub(&p->initializing, 1);
    if (t.answer != CF_ANSWER_ERROR) {
        cf_task_clear(&t);
        return true;
    }
    char msg[512];
    snprintf(msg, sizeof(msg), "a thread initializer failed: %s",
             t.err_msg ? t.err_msg : "(no message)");
    cf_task_clear(&t);
    break_on_init(p, msg);
    return false;
}

static int grow_or_wake_locked(struct thread_pool *p, bool own, bool *wake);

/* Done-callbacks are about to run on this worker, counted idle: busy again, it
   gets a thread or a wake-up now for a task queued meanwhile (one may wait for it). */
static void callbacks_begin(void *arg)
{
    struct thread_pool *p = arg;
    atomic_fetch_add(&p->calling, 1); /* not on its way out: cf_tp_join_until */
    atomic_fetch_sub(&p->idle, 1);    /* then the look at the queue: as submit_locked's */
    if (atomic_load(&p->qlen) == 0 && !cf_tp_inbox_busy(p))
        return; /* a later submit sees this worker busy */
    bool wake = false;
    cf_lock(&p->lock);
    cf_tp_drain_inbox(p);
    /* Also after shutdown: the queued tasks still run (tp_join joins a
       thread started now). No thread: the others run it. */
    if (!atomic_load(&p->base.broken))
        (void)grow_or_wake_locked(p, true, &wake);
    cf_unlock(&p->lock);
    if (wake)
        wake_one(p);
}

static void callbacks_end(void *arg)
{
    struct thread_pool *p = arg;
    atomic_fetch_add_explicit(&p->idle, 1, memory_order_relaxed);
    atomic_fetch_sub(&p->calling, 1);
}

static void run_task(struct thread_pool *p, struct tp_worker *me, struct cf_work *w)
{
    future_t *f = cf_work_future(w);
    if (cf_future_set_running(f) != 1) {
        /* Cancelled while queued: future_cancel did the accounting. */
        atomic_fetch_add_explicit(&p->idle, 1, memory_order_relaxed);
        future_unref(f);
        return;
    }
    cf_executor_started(&p->base);
    int64_t deadline = CF_NO_DEADLINE;
    if (w->limit_ns) {
        deadline = cf_now_ns() + w->limit_ns;
        cf_tp_watch_start(p, me, f, deadline);
    }
    struct task t;
    cf_task_init(&t, f, w->arg, w->arg_len, deadline);
    w->fn(&t);
    if (w->limit_ns)
        cf_tp_watch_stop(p, me);
    /* Counted out before the caller hears of it, as in the other kinds (the
       watcher let go: the outcome is the task's alone). */
    cf_executor_finished(&p->base, cf_task_settle(&t) != 0);
    /* Idle before the caller hears of it (a resubmit finds it): callbacks_begin. */
    atomic_fetch_add_explicit(&p->idle, 1, memory_order_relaxed);
    CF_TEST_HOOK(cf_test_tp_idle_hook);
    const struct cf_callback_guard guard = {callbacks_begin, callbacks_end, p};
    cf_future_guard_callbacks(&guard);
    cf_task_hand_over(&t);
    cf_future_guard_callbacks(NULL);
    future_unref(f);
}

static void *worker_main(void *arg)
{
    struct tp_worker *me = arg;
    struct thread_pool *p = me->pool;
    cf_executor_bind_thread(&p->base);
    cf_name_thread(p->base.name_prefix, p->id, me->index);
    if (run_initializer(p)) {
        park_batch = cf_thread_is_other(); /* not if the initializer chose a policy */
        atomic_fetch_add_explicit(&p->idle, 1, memory_order_relaxed);
        struct cf_work *w;
        for (bool back = false; (w = take(p, me, back)); back = true)
            run_task(p, me, w);
        if (!me->gone) /* one that left in a shrink counted itself out */
            atomic_fetch_sub_explicit(&p->idle, 1, memory_order_relaxed);
    }
    cf_tp_watch_leave(p, me); /* a worker that left in a shrink is freed */
    cf_lock(&p->lock);
    if (!me->gone) {
        p->nworkers_alive--;
        cf_tp_note_full(p);
    }
    if (p->nworkers_alive == 0) { /* cf_tp_join_until (a thread's end: rare) */
        atomic_fetch_add(&p->gone_all, 1);
        cf_futex_wake(&p->gone_all, INT_MAX);
    }
    /* Freed from inside: the watcher stays until no task can run any more. */
    bool quit = p->nworkers_alive == 0 && cf_executor_free_later(&p->base);
    bool last = --p->nalive == 0 && cf_executor_free_later(&p->base);
    cf_unlock(&p->lock);
    if (quit)
        cf_tp_watch_quit(p);
    if (last)
        cf_tp_self_free(p);
    return NULL;
}

/* Starts worker number nthreads; called with the lock held. 0 or errno. */
static int spawn_locked(struct thread_pool *p)
{
    struct tp_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return ENOMEM;
    w->pool = p;
    w->index = p->nthreads;
    int rc = cf_start_thread(&w->thread, worker_main, w);
    if (rc != 0) {
        free(w);
        return rc;
    }
    w->next = p->workers;
    p->workers = w;
    p->nthreads++;
    p->nalive++;
    p->nworkers_alive++;
    cf_tp_note_full(p);
    return 0;
}

/* ---------------------------------------------------------- ops */

/*
 * The submit that did not take the fast path, or that pushed on the inbox and
 * then saw a stop, a broken pool or a parked worker (@pushed): under the
 * lock, with the inbox moved into the queue first so the queue's length is
 * exact.
 */
static int submit_locked(struct thread_pool *p, struct cf_work *w, bool pushed)
{
    executor_t *ex = &p->base;
    bool own = cf_executor_on_own_thread(ex);
    cf_lock(&p->lock);
    cf_tp_drain_inbox(p);
    bool stopping = atomic_load_explicit(&p->stopping, memory_order_relaxed);
    if (stopping || atomic_load(&ex->broken)) {
        /* Pushed before the close: it is in, for the workers or the drain. */
        cf_unlock(&p->lock);
        return pushed ? 0 : stopping ? FUT_ESHUTDOWN : FUT_EBROKEN;
    }
    if (!pushed)
        cf_tp_push(p, w);
    bool wake = false;
    atomic_thread_fence(memory_order_seq_cst); /* the push, then the look at idle */
    int rc = grow_or_wake_locked(p, own, &wake);
    if (rc != 0 && p->nworkers_alive == 0) {
        /* No thread will ever run it: take it back. */
        cf_tp_unqueue(p, w);
        cf_unlock(&p->lock);
        errno = rc;
        return rc == ENOMEM ? FUT_ENOMEM : FUT_ESYS;
    }
    cf_unlock(&p->lock);
    if (wake)
        wake_one(p);
    return 0;
}

/* Under the lock, the queue exact: a new thread if more tasks are queued than
   workers idle and the pool may grow, else the wake-up decision (*@wake). 0 or errno. */
static int grow_or_wake_locked(struct thread_pool *p, bool own, bool *wake)
{
    size_t qlen = atomic_load_explicit(&p->qlen, memory_order_relaxed);
    size_t idle = atomic_load_explicit(&p->idle, memory_order_relaxed);
    if (qlen > idle && p->nworkers_alive < p->max)
        return spawn_locked(p);
    if (atomic_load_explicit(&p->sleeping, memory_order_relaxed) > atomic_load(&p->wakes))
        *wake = cf_tp_wake_needed(p, qlen, own);
    return 0;
}

/*
 * The fast path: once every worker is started, a task of priority 0 from a
 * thread that is not one of the pool's goes on the inbox without the lock,
 * and needs nothing more while no worker is parked, or one is coming for it.
 * Shutdown and a broken pool close the inbox under the lock that set their
 * flag (cf_tp_close_inbox): a push that lands before the close is accepted
 * and queued by it, one after is refused, and a worker that saw the flag
 * saw the inbox closed, so no task is lost and none comes after a refusal.
 * The push and the loads that follow are sequentially consistent, as are a
 * parking worker's count in `sleeping` and its look at the inbox (park), a
 * spinner's leaving `spinning` and a woken worker's leaving `wakes` and
 * their looks at the inbox after (try_pop or park), and a resize's store of
 * `full` and its drain (tp_set_max_workers): so either this submit sees the
 * parked worker with nobody coming or the room for a new worker, or the
 * other side sees the task. A worker coming for it that finds more tasks
 * left makes the wake decision for them (try_pop).
 */
static int tp_submit(executor_t *ex, struct cf_work *w)
{
    struct thread_pool *p = tp_of(ex);
    /* A task's own submit decides under the lock, as one that may wait (own). */
    if (cf_work_priority(w) != 0 ||
        !atomic_load_explicit(&p->full, memory_order_relaxed) ||
        cf_executor_on_own_thread(ex) || !cf_tp_inbox_push(p, w))
        return submit_locked(p, w, false); /* the inbox closed: refused there */
    if (!atomic_load(&p->full))
        return submit_locked(p, w, true);
    if (atomic_load(&p->sleeping) > 0 &&
        atomic_load(&p->spinning) + atomic_load(&p->wakes) == 0)
        return submit_locked(p, w, true); /* nobody is coming: decide on a wake-up */
    return 0;
}

static void tp_shutdown(executor_t *ex, bool cancel_futures)
{
    struct thread_pool *p = tp_of(ex);
    cf_lock(&p->lock);
    atomic_store(&p->stopping, true);
    cf_tp_close_inbox(p); /* a later push is refused; what came before is queued */
    struct cf_work_fifo q = {0};
    if (cancel_futures)
        q = cf_tp_detach(p);
    cf_unlock(&p->lock);
    wake_all(p);
    cf_executor_drain_fifo(ex, &q, FUT_ECANCELLED, NULL, NULL);
}

/*
 * The watcher stays while a task may run (their limits still fail them on
 * time): the last worker to leave tells it to go, or this call if none is
 * left (executor_free from a callback the watcher runs).
 */
static void tp_free_later(executor_t *ex)
{
    struct thread_pool *p = tp_of(ex);
    cf_lock(&p->lock);
    bool none = p->nworkers_alive == 0;
    cf_unlock(&p->lock);
    if (none)
        cf_tp_watch_quit(p);
}

static void tp_destroy(executor_t *ex)
{
    struct thread_pool *p = tp_of(ex);
    struct tp_worker *w = p->workers;
    while (w) {
        struct tp_worker *next = w->next;
        free(w);
        w = next;
    }
    pthread_cond_destroy(&p->dl_cv);
    pthread_mutex_destroy(&p->dl_mu);
    cf_executor_deinit(ex);
    free(p);
}

static void tp_stats(executor_t *ex, executor_stats_t *out)
{
    struct thread_pool *p = tp_of(ex);
    cf_lock(&p->lock);
    out->workers = p->nworkers_alive;
    cf_unlock(&p->lock);
    size_t idle = atomic_load_explicit(&p->idle, memory_order_relaxed);
    out->idle = CF_MIN(idle, out->workers);
}

static int tp_set_max_workers(executor_t *ex, int n)
{
    struct thread_pool *p = tp_of(ex);
    cf_lock(&p->lock);
    bool shrink = (size_t)n < p->max;
    p->max = (size_t)n;
    cf_tp_note_full(p);
    cf_tp_drain_inbox(p);
    /* Grow at once: a thread for each queued item no idle worker takes. */
    bool stopping = atomic_load_explicit(&p->stopping, memory_order_relaxed);
    size_t want = atomic_load_explicit(&p->qlen, memory_order_relaxed);
    size_t have = atomic_load_explicit(&p->idle, memory_order_relaxed);
    while (!stopping && want > have && p->nworkers_alive < p->max && spawn_locked(p) == 0)
        have++;
    struct tp_worker *gone = stopping ? NULL : cf_tp_unlink_gone_locked(p);
    cf_unlock(&p->lock);
    if (shrink)
        wake_all(p); /* parked workers look again, and the extra ones leave */
    while (gone) {
        struct tp_worker *next = gone->next;
        pthread_join(gone->thread, NULL);
        free(gone);
        gone = next;
    }
    return 0;
}

static const struct cf_executor_ops thread_pool_ops = {
    .submit = tp_submit,
    .shutdown = tp_shutdown,
    .join = cf_tp_join,
    .join_until = cf_tp_join_until,
    .free_later = tp_free_later,
    .destroy = tp_destroy,
    .stats = tp_stats,
    .set_max_workers = tp_set_max_workers,
};

executor_t *thread_pool_executor_new(const executor_options_t *o)
{
    struct thread_pool *p =
        aligned_alloc(64, sizeof(*p)); /* its cache lines (internal.h) */
    if (!p)
        return cf_fail_null(FUT_ENOMEM);
    memset(p, 0, sizeof(*p));
    int rc =
        cf_executor_init(&p->base, &thread_pool_ops, o, CF_MIN(32, cf_cpu_count() + 4));
    if (rc < 0) {
        free(p);
        return cf_fail_null(rc);
    }
    p->lock = (cf_lock_t)CF_LOCK_INIT;
    p->max = (size_t)p->base.opts.max_workers;
    p->id = atomic_fetch_add(&pool_counter, 1);
    p->max_spinners = (size_t)CF_MAX(1, cf_cpu_count() - 1);
    pthread_mutex_init(&p->dl_mu, NULL);
    cf_cond_init_monotonic(&p->dl_cv);
    return &p->base;
}
