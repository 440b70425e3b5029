/*
 * future.c: the only file that touches struct future.
 *
 * DESIGN
 * A future is a state word, a reference count, a 4-byte lock and the outcome.
 * The state word is read without the lock (future_done, the fast path of
 * future_result): it is stored with release order after the outcome is
 * written, and loaded with acquire order before the outcome is read.
 *
 * States (the low bits of `state`), and who moves them:
 *   PENDING -> RUNNING    set_running_or_notify_cancel (CAS, no lock)
 *   PENDING -> CANCELLED  future_cancel (CAS under the lock)
 *   PENDING|RUNNING -> FINISHED   set_result / set_exception / cf_future_fail
 *                                 (under the lock)
 * Flag bits: FAILED (finished with an error), STOP (cancel asked while
 * running), NOTIFIED (set_running_or_notify_cancel saw the cancel), RAN
 * (set with RUNNING, kept through completion: cf_future_ran).
 *
 * Completion, under the lock: write the outcome, publish the state, unlink
 * every waiter node and notify it (waiter.c), detach the callbacks. Then,
 * unlocked, run the callbacks in the order they were added, holding a
 * reference so that a callback may drop the caller's.
 *
 * Locks: the future's lock, then a waiter's mutex. Never two futures at once.
 * No user code runs under a lock.
 */
#include "config.h"

#include <assert.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blocks.h"
#include "error.h"
#include "future.h"

enum {
    S_PENDING = 0,
    S_RUNNING = 1,
    S_FINISHED = 2,
    S_CANCELLED = 3,
    S_MASK = 3,
    F_FAILED = 1u << 2,
    F_STOP = 1u << 3,
    F_NOTIFIED = 1u << 4,
    F_RAN = 1u << 5,
};

struct cb_node {
    struct cb_node *next;
    future_callback_fn fn;
    void *ud;
};

struct future {
    /* `lock` guards all but state, refs and word. data|err and hooks|free_fn are never
       needed at once, so a future and its work item fit a 128-byte chunk (W5). */
    union {
        int64_t i64;
        unsigned char b[CF_INLINE_MAX];
    } inl; /* small results live here; first, so that no padding precedes word */
    union {
        void *data;                /* the result: immutable once FINISHED */
        const future_error_t *err; /* when F_FAILED: immutable once FINISHED */
    };
    union {
        /* Until FINISHED: the creator's hooks, or NULL (immutable). */
        const struct cf_future_hooks *hooks;
        /* FINISHED without failure: frees data (written with the result). */
        void (*free_fn)(void *);
    };
    size_t len;
    struct cb_node *callbacks; /* newest first: lock */
    struct cf_wnode *waiters;  /* lock */
    _Atomic(void *) user_data; /* the caller's word: never read by the library */
    cf_lock_t lock;
    _Atomic uint32_t state; /* S_* | F_*: written under lock (but RUNNING) */
    _Atomic uint32_t refs;
    int32_t word; /* the creator's (cf_future_word): last, just before the extra bytes */
};

/* future_result's spin before it sleeps: pauses, then sched_yield() calls. */
#ifndef WAIT_SPIN_PURE
#define WAIT_SPIN_PURE 1000
#endif
#ifndef WAIT_SPIN_YIELDS
#define WAIT_SPIN_YIELDS 30
#endif

/* Set by cf_future_sleep_next_wait; the next wait_done of this thread clears it. */
static _Thread_local bool sleep_next_wait;

#ifdef CF_TEST_HOOKS
_Thread_local unsigned long cf_test_wait_yields; /* this thread's wait_done yields */
#define COUNT_YIELD() (cf_test_wait_yields++)
void (*cf_test_publish_hook)(void); /* between publish_locked's load and its CAS */
#else
#define COUNT_YIELD() ((void)0)
#endif

/* 8-byte aligned: a future and its work item fit one 128-byte block (blocks.h). */
#define EXTRA_OFFSET ((sizeof(struct future) + 7) & ~(size_t)7)
_Static_assert(EXTRA_OFFSET <= 72, "a pending task must fit a 128-byte block");
_Static_assert(offsetof(struct future, word) + 4 == EXTRA_OFFSET, "word before extra");

static inline uint32_t load_state(const future_t *f)
{
    return atomic_load_explicit(&((future_t *)f)->state, memory_order_acquire);
}

static inline bool state_done(uint32_t s)
{
    return (s & S_MASK) >= S_FINISHED;
}

/* ------------------------------------------------------------ lifetime */

future_t *cf_future_alloc(size_t extra, const struct cf_future_hooks *hooks)
{
    assert(!hooks || extra > 0);
    future_t *f = cf_block_alloc(extra ? EXTRA_OFFSET + extra : sizeof(*f));
    if (!f)
        return NULL;
    f->lock = (cf_lock_t)CF_LOCK_INIT;
    atomic_init(&f->state, S_PENDING);
    atomic_init(&f->refs, 1);
    f->hooks = hooks; /* free_fn is written over it only with a result */
    f->data = NULL;
    f->len = 0;
    f->callbacks = NULL;
    f->waiters = NULL;
    f->inl.i64 = 0;
    atomic_init(&f->user_data, NULL);
    f->word = 0;
    return f;
}

void *cf_future_extra(future_t *f)
{
    return (char *)f + EXTRA_OFFSET;
}

future_t *cf_future_from_extra(void *extra)
{
    return (future_t *)((char *)extra - EXTRA_OFFSET);
}

future_t *future_ref(future_t *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void future_unref(future_t *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (s & F_FAILED) {
        cf_error_free(f->err);
    } else if ((s & S_MASK) == S_FINISHED && f->free_fn && f->data) {
        f->free_fn(f->data);
    }
    /* Callbacks of a future that never completed are dropped unrun. */
    for (struct cb_node *c = f->callbacks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    cf_block_free(f);
}

/* ---------------------------------------------------------- queries */

bool future_cancelled(const future_t *f)
{
    return f && (load_state(f) & S_MASK) == S_CANCELLED;
}

bool future_running(const future_t *f)
{
    return f && (load_state(f) & S_MASK) == S_RUNNING;
}

bool future_done(const future_t *f)
{
    return f && state_done(load_state(f));
}

bool cf_future_failed(const future_t *f)
{
    uint32_t s = load_state(f);
    return (s & S_MASK) == S_FINISHED && (s & F_FAILED);
}

bool cf_future_ran(const future_t *f)
{
    return (load_state(f) & F_RAN) != 0;
}

bool cf_future_stop_requested(const future_t *f)
{
    return (atomic_load_explicit(&((future_t *)f)->state, memory_order_relaxed) &
            F_STOP) != 0;
}

/* ---------------------------------------------------------- completion */

/*
 * Publishes @new_state and the state's @keep flags (a CAS: set_running's RAN,
 * set without the lock, is kept), notifies the waiters, detaches the callbacks.
 * Called with the lock held; returns with it released and the detached
 * callbacks, to run with run_callbacks().
 */
static struct cb_node *publish_locked(future_t *f, uint32_t new_state, uint32_t keep)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    CF_TEST_HOOK(cf_test_publish_hook);
    while (!atomic_compare_exchange_weak_explicit(&f->state, &s, new_state | (s & keep),
                                                  memory_order_release,
                                                  memory_order_relaxed))
        ;
    struct cf_wnode *n = f->waiters;
    f->waiters = NULL;
    while (n) {
        struct cf_wnode *next = n->next;
        n->linked = false;
        cf_waiter_notify(n, (new_state & F_FAILED) != 0);
        n = next;
    }
    struct cb_node *c = f->callbacks;
    f->callbacks = NULL;
    cf_unlock(&f->lock);
    return c;
}

static _Thread_local const struct cf_callback_guard *cb_guard;

void cf_future_guard_callbacks(const struct cf_callback_guard *g)
{
    cb_guard = g;
}

/*
 * Runs detached callbacks in the order they were added; no lock held. The
 * caller holds a reference of its own: a callback may drop the caller's.
 */
static void run_callbacks_held(future_t *f, struct cb_node *c)
{
    const struct cf_callback_guard *g = c ? cb_guard : NULL;
    if (g) {
        cb_guard = NULL; /* nested runs are inside this one */
        g->before(g->ctx);
    }
    /* Newest first: reverse to run them in the order they were added. */
    struct cb_node *rev = NULL;
    while (c) {
        struct cb_node *next = c->next;
        c->next = rev;
        rev = c;
        c = next;
    }
    while (rev) {
        struct cb_node *next = rev->next;
        rev->fn(f, rev->ud);
        free(rev);
        rev = next;
    }
    if (g) {
        g->after(g->ctx);
        cb_guard = g;
    }
}

static void run_callbacks(future_t *f, struct cb_node *c)
{
    if (!c)
        return;
    future_ref(f);
    run_callbacks_held(f, c);
    future_unref(f);
}

/* Takes the lock if @f can still complete; false (unlocked) otherwise. */
static bool lock_completable(future_t *f)
{
    cf_lock(&f->lock);
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed) & S_MASK;
    if (s == S_PENDING || s == S_RUNNING)
        return true;
    cf_unlock(&f->lock);
    return false;
}

/*
 * True if an executor completes @f (made with hooks: a task's, a schedule's):
 * the promise-side calls refuse it, since the executor's own accounting
 * (its queue count, a worker's claim) would never hear of that outcome.
 */
static bool executor_owned(future_t *f)
{
    if (!lock_completable(f))
        return false;              /* done: the call says FUT_ESTATE */
    bool owned = f->hooks != NULL; /* immutable until done */
    cf_unlock(&f->lock);
    return owned;
}

int future_set_result(future_t *f, void *data, size_t len, void (*free_fn)(void *))
{
    if (f && executor_owned(f)) {
        if (free_fn && data)
            free_fn(data);
        return FUT_EINVAL;
    }
    return cf_future_set_result(f, data, len, free_fn);
}

int cf_future_set_result(future_t *f, void *data, size_t len, void (*free_fn)(void *))
{
    if (!f || (!data && len > 0)) {
        if (free_fn && data)
            free_fn(data);
        return FUT_EINVAL;
    }
    if (!lock_completable(f)) {
        if (free_fn && data)
            free_fn(data);
        return FUT_ESTATE;
    }
    f->data = data;
    f->len = len;
    f->free_fn = free_fn;
    run_callbacks(f, publish_locked(f, S_FINISHED, F_STOP | F_RAN));
    return 0;
}

int cf_future_set_result_inline(future_t *f, const void *bytes, size_t len)
{
    if (!lock_completable(f))
        return FUT_ESTATE;
    memcpy(f->inl.b, bytes, len);
    f->data = len ? f->inl.b : NULL; /* an empty result has no data */
    f->len = len;
    f->free_fn = NULL;
    run_callbacks(f, publish_locked(f, S_FINISHED, F_STOP | F_RAN));
    return 0;
}

int cf_future_fail(future_t *f, int status, int code, int exit_status, int sig,
                   const char *msg)
{
    if (!msg)
        msg = "";
    /* Build the error before locking: no allocation under the lock. */
    const future_error_t *e =
        cf_error_new(status, code, exit_status, sig, msg, strlen(msg));
    if (!lock_completable(f)) {
        cf_error_free(e);
        return FUT_ESTATE;
    }
    f->err = e;
    run_callbacks(f, publish_locked(f, S_FINISHED | F_FAILED, F_STOP | F_RAN));
    return 0;
}

int cf_future_expire(future_t *f)
{
    return cf_future_fail(f, FUT_EDEADLINE, 0, -1, 0, "the task's own time limit passed");
}

int cf_future_failv(future_t *f, int status, int code, const char *fmt, va_list ap)
{
    char small[256];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return cf_future_fail(f, status, code, -1, 0, CF_BAD_FORMAT_MSG);
    if ((size_t)n < sizeof(small))
        return cf_future_fail(f, status, code, -1, 0, small);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return cf_future_fail(f, status, code, -1, 0, small); /* truncated */
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    int rc = cf_future_fail(f, status, code, -1, 0, big);
    free(big);
    return rc;
}

int future_set_exception(future_t *f, int code, const char *fmt, ...)
{
    if (!f || !fmt || executor_owned(f))
        return FUT_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    int rc = cf_future_failv(f, FUT_ETASK, code, fmt, ap);
    va_end(ap);
    return rc;
}

/* future_cancel (@stop: a started task is asked to stop) and cf_future_revoke. */
static bool cancel(future_t *f, bool stop)
{
    if (!f)
        return false;
    cf_lock(&f->lock);
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    switch (s & S_MASK) {
    case S_CANCELLED:
        cf_unlock(&f->lock);
        return true;
    case S_RUNNING:
        /* Python says no; the task may still stop early (task_should_stop). */
        if (stop) {
            atomic_fetch_or_explicit(&f->state, F_STOP, memory_order_relaxed);
            if (f->hooks && f->hooks->stop)
                f->hooks->stop(cf_future_extra(f)); /* a process pool tells its worker */
        }
        cf_unlock(&f->lock);
        return false;
    case S_FINISHED:
        cf_unlock(&f->lock);
        return false;
    }
    /* An executor that sent the task ahead may find it started already. */
    if (f->hooks && f->hooks->try_cancel &&
        !f->hooks->try_cancel(cf_future_extra(f), stop)) {
        /* The executor passed the stop request on; the state stays PENDING. */
        cf_unlock(&f->lock);
        return false;
    }
    /* PENDING: a racing set_running CAS decides who wins. */
    if (!atomic_compare_exchange_strong_explicit(
            &f->state, &s, S_CANCELLED, memory_order_acq_rel, memory_order_relaxed)) {
        /* It started just now; once unlocked, its result may overwrite hooks. */
        const struct cf_future_hooks *h = f->hooks;
        if (stop) { /* as for a running one (an MPI pool forwards it) */
            atomic_fetch_or_explicit(&f->state, F_STOP, memory_order_relaxed);
            if (h && h->stop)
                h->stop(cf_future_extra(f));
        }
        cf_unlock(&f->lock);
        if (h && h->cancelled)
            h->cancelled(cf_future_extra(f), false);
        return false;
    }
    /* The executor's accounting goes first: a callback may free the executor. */
    future_ref(f);
    /* NOTIFIED kept: a notify may see CANCELLED between the CAS and here. */
    struct cb_node *c = publish_locked(f, S_CANCELLED, F_NOTIFIED);
    if (f->hooks && f->hooks->cancelled)
        f->hooks->cancelled(cf_future_extra(f), true);
    run_callbacks_held(f, c);
    future_unref(f);
    return true;
}

bool future_cancel(future_t *f)
{
    return cancel(f, true);
}

bool cf_future_revoke(future_t *f)
{
    return cancel(f, false);
}

int future_set_running_or_notify_cancel(future_t *f)
{
    if (!f || executor_owned(f))
        return FUT_EINVAL;
    return cf_future_set_running(f);
}

int cf_future_set_running(future_t *f)
{
    uint32_t s = S_PENDING;
    if (atomic_compare_exchange_strong_explicit(
            &f->state, &s, S_RUNNING | F_RAN, memory_order_acq_rel, memory_order_acquire))
        return 1;
    if ((s & S_MASK) == S_CANCELLED) {
        /* Waiters were told by future_cancel: only record that we saw it. */
        uint32_t old =
            atomic_fetch_or_explicit(&f->state, F_NOTIFIED, memory_order_acq_rel);
        return (old & F_NOTIFIED) ? FUT_ESTATE : 0;
    }
    return FUT_ESTATE;
}

/* ---------------------------------------------------------- callbacks */

void *cf_future_cb_alloc(void)
{
    return malloc(sizeof(struct cb_node));
}

void cf_future_add_done_callback_node(future_t *f, future_callback_fn cb, void *ud,
                                      void *node)
{
    struct cb_node *c = node;
    if (!state_done(load_state(f))) {
        c->fn = cb;
        c->ud = ud;
        cf_lock(&f->lock);
        if (!state_done(atomic_load_explicit(&f->state, memory_order_relaxed))) {
            c->next = f->callbacks;
            f->callbacks = c;
            cf_unlock(&f->lock);
            return;
        }
        cf_unlock(&f->lock);
    }
    free(c);
    cb(f, ud); /* done already: Python runs it at once, in the caller */
}

bool cf_future_take_callback_node(future_t *f, void *node)
{
    cf_lock(&f->lock);
    struct cb_node **p = &f->callbacks;
    while (*p && *p != node)
        p = &(*p)->next;
    bool found = *p != NULL;
    if (found)
        *p = (*p)->next;
    cf_unlock(&f->lock);
    return found;
}

int future_add_done_callback(future_t *f, future_callback_fn cb, void *ud)
{
    if (!f || !cb)
        return FUT_EINVAL;
    if (state_done(load_state(f))) {
        cb(f, ud);
        return 0;
    }
    void *c = cf_future_cb_alloc();
    if (!c)
        return FUT_ENOMEM;
    cf_future_add_done_callback_node(f, cb, ud, c);
    return 0;
}

/* ---------------------------------------------------------- watching */

bool cf_future_watch(future_t *f, struct cf_wnode *n)
{
    bool linked = n->linked = false;  /* not yet in a list: ours alone */
    if (!state_done(load_state(f))) { /* done is final: no lock to see that */
        cf_lock(&f->lock);
        if ((linked =
                 !state_done(atomic_load_explicit(&f->state, memory_order_relaxed)))) {
            n->f = f;
            n->prev = NULL;
            n->next = f->waiters;
            if (f->waiters)
                f->waiters->prev = n;
            f->waiters = n;
            n->linked = true; /* a notify may clear it once unlocked */
        }
        cf_unlock(&f->lock);
    }
    return linked;
}

void cf_future_unwatch(future_t *f, struct cf_wnode *n)
{
    cf_lock(&f->lock);
    if (n->linked) {
        if (n->prev)
            n->prev->next = n->next;
        else
            f->waiters = n->next;
        if (n->next)
            n->next->prev = n->prev;
        n->linked = false;
    }
    cf_unlock(&f->lock);
}

/* ---------------------------------------------------------- blocking waits */

/*
 * Waits until @f is done or @timeout passes. Spins briefly first: a result
 * that arrives within a few microseconds costs no sleep and no wake-up.
 */
static int wait_done(future_t *f, double timeout)
{
    bool may_yield = !sleep_next_wait; /* the hint is this wait's, whatever it does */
    sleep_next_wait = false;
    if (!cf_timeout_valid(timeout))
        return FUT_EINVAL;
    if (state_done(load_state(f)))
        return 0;
    if (timeout == 0)
        return FUT_ETIMEDOUT;
    int64_t deadline = cf_deadline_after(timeout);
    /*
     * Spin briefly before sleeping: results often come within microseconds.
     * Only while the task runs (its worker is on a CPU); while it is pending
     * a woken worker may wait for this very CPU, so yield on each turn
     * (unless this thread just woke a sleeping executor: then sleep).
     */
    for (int i = 0; i < WAIT_SPIN_PURE + WAIT_SPIN_YIELDS; i++) {
        if (i < WAIT_SPIN_PURE && (load_state(f) & S_MASK) == S_RUNNING)
            cf_cpu_relax();
        else if (!may_yield)
            break;
        else /* pending: straight to the yields (WAIT_SPIN_YIELDS at most) */
            sched_yield(), COUNT_YIELD(), i = CF_MAX(i, WAIT_SPIN_PURE);
        if (state_done(load_state(f)))
            return 0;
    }
    struct cf_waiter w;
    struct cf_wnode n = {.waiter = &w};
    cf_waiter_init(&w);
    int rc = 0;
    if (cf_future_watch(f, &n)) {
        pthread_mutex_lock(&w.mu);
        while (!w.ready_head)
            if (!cf_waiter_sleep(&w, deadline))
                break;
        pthread_mutex_unlock(&w.mu);
        /* Also waits out a notify in progress: it runs under f's lock. */
        cf_future_unwatch(f, &n);
        rc = state_done(load_state(f)) ? 0 : FUT_ETIMEDOUT;
    }
    cf_waiter_destroy(&w);
    return rc;
}

void cf_future_sleep_next_wait(void)
{
    sleep_next_wait = true;
}

/* The outcome of a done future: 0, FUT_ECANCELLED or the failure's status. */
static int outcome(const future_t *f)
{
    uint32_t s = load_state(f);
    if ((s & S_MASK) == S_CANCELLED)
        return FUT_ECANCELLED;
    if (s & F_FAILED)
        return f->err->status;
    return 0;
}

int future_result(future_t *f, double timeout, const void **data, size_t *len)
{
    if (!f)
        return FUT_EINVAL;
    int rc = wait_done(f, timeout);
    if (rc == 0)
        rc = outcome(f);
    if (rc == 0) {
        if (data)
            *data = f->data;
        if (len)
            *len = f->len;
    }
    return rc;
}

int future_exception(future_t *f, double timeout, const future_error_t **err)
{
    if (!f || !err)
        return FUT_EINVAL;
    int rc = wait_done(f, timeout);
    if (rc < 0)
        return rc;
    uint32_t s = load_state(f);
    if ((s & S_MASK) == S_CANCELLED)
        return FUT_ECANCELLED;
    *err = (s & F_FAILED) ? f->err : NULL;
    return 0;
}

/* ---------------------------------------------------------- user data */

/*
 * Release/acquire: a word set before the future is handed to another thread
 * (a callback, a waiter) is seen there with what it points to.
 */
void future_set_user_data(future_t *f, void *ud)
{
    if (f)
        atomic_store_explicit(&f->user_data, ud, memory_order_release);
}

void *future_user_data(const future_t *f)
{
    if (!f)
        return NULL;
    return atomic_load_explicit(&((future_t *)f)->user_data, memory_order_acquire);
}
