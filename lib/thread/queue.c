/*
 * queue.c: the thread pool's queue (under the pool's lock), the inbox a
 * submit pushes on without it, and the decision to wake a parked worker for
 * queued tasks (pool.c DESIGN), and the worker list's shrink; the inline
 * half is in internal.h.
 */
#include "config.h"

#include <stddef.h>

#include "internal.h"

/*
 * Tasks are flowing when a worker came back from one this recently: a submit
 * then counts one running worker as coming back for the next task.
 */
#define FLOW_NS 50000

/* Moves the queue's length, read by spinners without the lock, by @d. */
static void qlen_add(struct thread_pool *p, ptrdiff_t d)
{
    atomic_store_explicit(
        &p->qlen, atomic_load_explicit(&p->qlen, memory_order_relaxed) + (size_t)d,
        memory_order_relaxed);
}

/*
 * Moves the stack @w (newest first) into the queue, oldest first. Its items
 * have priority 0 and came after every queued one: they go after the queued
 * items of priority 0 and higher, before any lower one.
 */
static void splice_stack(struct thread_pool *p, struct cf_work *w)
{
    if (!w)
        return;
    struct cf_work_fifo chain = {NULL, w};
    size_t n = 0;
    while (w) { /* reverse it */
        struct cf_work *next = w->next;
        w->next = chain.head;
        chain.head = w;
        w = next;
        n++;
    }
    struct cf_work_fifo *q = &p->queue;
    if (!q->tail || cf_work_priority(q->tail) >= 0) {
        cf_fifo_splice(q, &chain);
    } else if (cf_work_priority(q->head) < 0) {
        chain.tail->next = q->head;
        q->head = chain.head;
    } else {
        struct cf_work *at = q->head; /* the last item of priority >= 0 */
        while (cf_work_priority(at->next) >= 0)
            at = at->next;
        chain.tail->next = at->next;
        at->next = chain.head;
    }
    qlen_add(p, (ptrdiff_t)n);
}

/* Moves the inbox into the queue (called with the lock held). */
void cf_tp_drain_inbox(struct thread_pool *p)
{
    /* Only a lock holder closes it, so it is still open at the exchange. */
    if (cf_tp_inbox_busy(p))
        splice_stack(p, atomic_exchange(&p->inbox, NULL));
}

/* Called with the lock held, right after `stopping` or the broken flag is set. */
void cf_tp_close_inbox(struct thread_pool *p)
{
    struct cf_work *w = atomic_exchange(&p->inbox, CF_TP_INBOX_CLOSED);
    if (w != CF_TP_INBOX_CLOSED)
        splice_stack(p, w); /* pushed before the close: accepted */
}

/* Queues @w in priority order (called with the lock held). */
void cf_tp_push(struct thread_pool *p, struct cf_work *w)
{
    cf_fifo_push_prio(&p->queue, w);
    qlen_add(p, 1);
}

/* Takes @w out of the queue if it is there (called with the lock held). */
bool cf_tp_unqueue(struct thread_pool *p, struct cf_work *w)
{
    for (struct cf_work **at = &p->queue.head, *prev = NULL; *at;
         prev = *at, at = &(*at)->next) {
        if (*at != w)
            continue;
        *at = w->next;
        if (p->queue.tail == w)
            p->queue.tail = prev;
        w->next = NULL;
        qlen_add(p, -1);
        return true;
    }
    return false;
}

/*
 * Pops the head for a worker, which stops counting as idle in the same
 * critical section: a submit that sees the shorter queue also sees one idle
 * worker fewer, and starts a thread if it must. Called with the lock held.
 */
struct cf_work *cf_tp_pop(struct thread_pool *p)
{
    if (!p->queue.head || cf_work_priority(p->queue.head) < 0)
        cf_tp_drain_inbox(p); /* its items come before this head */
    struct cf_work *w = cf_fifo_pop(&p->queue);
    if (w) {
        qlen_add(p, -1);
        atomic_fetch_sub_explicit(&p->idle, 1, memory_order_relaxed);
        p->busy++;
    }
    return w;
}

/* Takes every queued item out; called with the lock held. */
struct cf_work_fifo cf_tp_detach(struct thread_pool *p)
{
    cf_tp_drain_inbox(p);
    atomic_store_explicit(&p->qlen, 0, memory_order_relaxed);
    return cf_fifo_take(&p->queue);
}

/*
 * A task was queued, making @qlen, and some worker is parked: wake one
 * unless enough workers are coming for the queue already (called with the
 * lock held; true: the caller wakes one after unlocking).
 *
 * Spinning workers and those woken already are coming. A running worker is
 * not, since its task may run for long, except that while tiny tasks are
 * flowing (a worker came back within FLOW_NS from one that ran under
 * FLOW_NS) one of them counts: a fast
 * stream of tiny tasks then costs no wake-up per task. Such a submit marks
 * the pool `skipped`, which makes the watchman park with a time limit, so
 * even a task whose worker then ran long waits at most WATCH_NS (pool.c); a watchman
 * parked without a limit is woken to take it. A submit from one of the
 * pool's own workers (@own: a task submitting a subtask, which it may then
 * wait for) never counts on a running worker: that one may be itself.
 */
bool cf_tp_wake_needed(struct thread_pool *p, size_t qlen, bool own)
{
    size_t coming =
        atomic_load_explicit(&p->spinning, memory_order_relaxed) + atomic_load(&p->wakes);
    if (qlen <= coming)
        return false;
    bool flowing = !own && p->busy > 0 && qlen == coming + 1 && p->watchman &&
                   p->watch_timed && p->last_len < FLOW_NS &&
                   cf_now_ns() - p->last_back < FLOW_NS;
    if (flowing) {
        p->skipped = true;
        return false;
    }
    if (p->busy > 0 && qlen == coming + 1)
        p->skipped = true; /* the worker woken parks as a timed watchman */
    atomic_fetch_add(&p->wakes, 1);
    return true;
}

/* Unlinks the workers that left in a shrink; the caller joins and frees them. */
struct tp_worker *cf_tp_unlink_gone_locked(struct thread_pool *p)
{
    struct tp_worker *gone = NULL, **at = &p->workers;
    while (*at) {
        struct tp_worker *w = *at;
        if (w->gone) {
            *at = w->next;
            w->next = gone;
            gone = w;
        } else {
            at = &w->next;
        }
    }
    return gone;
}
