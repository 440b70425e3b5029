/*
 * timer.c: the process's one timer thread (timer.h). Layer: above util.
 *
 * DESIGN
 * A binary min-heap of armed timers by deadline, one mutex and one
 * CLOCK_MONOTONIC condition variable. The thread sleeps until the earliest
 * deadline (or for ever on an empty heap, or until a new earliest timer
 * signals it), pops every timer due, and runs each one's fn with the lock
 * released. It never polls. It starts on the first cf_timer_add and lives
 * until the process exits (it holds no resource but its stack); it blocks
 * every signal, as all library threads do.
 *
 * Locks: `mu` only; no lock is held while a timer's fn runs, so fn may arm
 * or cancel timers and complete futures.
 *
 * fork(): the thread is not copied, so a child starts with no timer armed
 * (those armed before stay the parent's: each is marked unarmed in the
 * child) and starts its own thread on its first cf_timer_add. `mu` is held
 * across the fork (pthread_atfork), so the heap is whole in the child. A
 * process pool's workers are such children: before, a parent that had used
 * a timer left every worker with a timer that never fired.
 */
#include "config.h"

#include <cfutures.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "timer.h"
#include "util.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;         /* CLOCK_MONOTONIC; set up with the thread */
static struct cf_timer **heap;    /* mu */
static size_t heap_len, heap_cap; /* mu */
static bool started;              /* the thread runs: mu */
static bool sleeping;             /* the thread waits on cv: mu */
static bool atfork_set;           /* fork_* are registered: mu */

static void fork_prepare(void)
{
    pthread_mutex_lock(&mu);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&mu);
}

/* In the child, whose only thread is the one that forked (which holds mu). */
static void fork_child(void)
{
    for (size_t i = 0; i < heap_len; i++)
        heap[i]->armed = false; /* the parent's: cf_timer_cancel finds it unarmed */
    heap_len = 0;
    started = sleeping = false;
    pthread_mutex_unlock(&mu);
}

static void heap_set(size_t i, struct cf_timer *t)
{
    heap[i] = t;
    t->slot = i;
}

static void sift_up(size_t i)
{
    struct cf_timer *t = heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (heap[parent]->deadline <= t->deadline)
            break;
        heap_set(i, heap[parent]);
        i = parent;
    }
    heap_set(i, t);
}

static void sift_down(size_t i)
{
    struct cf_timer *t = heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= heap_len)
            break;
        if (c + 1 < heap_len && heap[c + 1]->deadline < heap[c]->deadline)
            c++;
        if (t->deadline <= heap[c]->deadline)
            break;
        heap_set(i, heap[c]);
        i = c;
    }
    heap_set(i, t);
}

/* Takes @t out of the heap (mu held). */
static void heap_remove(struct cf_timer *t)
{
    size_t i = t->slot;
    t->armed = false;
    struct cf_timer *last = heap[--heap_len];
    if (last == t)
        return;
    heap_set(i, last);
    sift_down(i);
    sift_up(last->slot);
}

static void *timer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        if (heap_len == 0) {
            sleeping = true;
            pthread_cond_wait(&cv, &mu);
            sleeping = false;
            continue;
        }
        struct cf_timer *t = heap[0];
        if (t->deadline > cf_now_ns()) {
            struct timespec ts;
            cf_ns_to_timespec(t->deadline, &ts);
            sleeping = true;
            pthread_cond_timedwait(&cv, &mu, &ts);
            sleeping = false;
            continue;
        }
        heap_remove(t);
        pthread_mutex_unlock(&mu);
        t->fn(t); /* may free t: touch nothing of it afterwards */
        pthread_mutex_lock(&mu);
    }
    return NULL;
}

/* Starts the thread (mu held): 0 or FUT_ESYS. */
static int start_locked(void)
{
    if (!atfork_set) {
        int rc = pthread_atfork(fork_prepare, fork_parent, fork_child);
        if (rc != 0) {
            errno = rc;
            return FUT_ESYS;
        }
        atfork_set = true;
    }
    cf_cond_init_monotonic(&cv);
    pthread_t th;
    int rc = cf_start_thread(&th, timer_main, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&cv);
        errno = rc;
        return FUT_ESYS;
    }
    pthread_detach(th);
    started = true;
    return 0;
}

int cf_timer_add(struct cf_timer *t, int64_t deadline, void (*fn)(struct cf_timer *t))
{
    int rc = 0;
    pthread_mutex_lock(&mu);
    if (heap_len == heap_cap) {
        size_t cap = heap_cap ? 2 * heap_cap : 64;
        struct cf_timer **h = realloc(heap, cap * sizeof(*h));
        if (!h) {
            rc = FUT_ENOMEM;
            goto out;
        }
        heap = h;
        heap_cap = cap;
    }
    if (!started) {
        rc = start_locked();
        if (rc < 0)
            goto out;
    }
    t->deadline = deadline;
    t->fn = fn;
    t->armed = true;
    heap_set(heap_len++, t);
    sift_up(heap_len - 1);
    /* Only a new earliest deadline changes how long the thread sleeps. */
    if (heap[0] == t && sleeping)
        pthread_cond_signal(&cv);
out:
    pthread_mutex_unlock(&mu);
    return rc;
}

bool cf_timer_cancel(struct cf_timer *t)
{
    pthread_mutex_lock(&mu);
    bool was = t->armed;
    if (was)
        heap_remove(t);
    pthread_mutex_unlock(&mu);
    return was;
}
