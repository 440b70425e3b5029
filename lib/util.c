/*
 * util.c: the slow paths of cf_lock_t, time and deadline helpers, CPU count,
 * byte buffers, signal-free thread start.
 * No state of its own: nothing here needs fork handling.
 */
#include "config.h"

#include "util.h"

#include <cfutures.h>

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

void cf_futex_wake(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

#if defined(__SANITIZE_THREAD__)
#define CF_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CF_TSAN 1
#endif
#endif

/* EINTR, EAGAIN and ETIMEDOUT are fine: every caller re-checks in a loop. */
static void futex_wait(_Atomic uint32_t *addr, uint32_t expected,
                       const struct timespec *rel)
{
    long rc =
        syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, rel, NULL, 0);
#ifdef CF_TSAN
    /* TSan runs a signal's handler at the next call it intercepts, which a
       raw futex is not: a caller that loops on EINTR would run none. */
    if (rc < 0 && errno == EINTR) {
        sigset_t now;
        pthread_sigmask(SIG_BLOCK, NULL, &now);
        errno = EINTR;
    }
#else
    (void)rc;
#endif
}

void cf_futex_wait(_Atomic uint32_t *addr, uint32_t expected)
{
    futex_wait(addr, expected, NULL);
}

void cf_futex_wait_for(_Atomic uint32_t *addr, uint32_t expected, int64_t rel_ns)
{
    struct timespec ts;
    cf_ns_to_timespec(rel_ns, &ts);
    futex_wait(addr, expected, &ts);
}

bool cf_futex_wait_until(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline)
{
    if (deadline == CF_NO_DEADLINE) {
        cf_futex_wait(addr, expected);
        return true;
    }
    int64_t left = deadline - cf_now_ns();
    if (left <= 0)
        return false;
    cf_futex_wait_for(addr, expected, left);
    return true;
}

void cf_lock_slow(cf_lock_t *l)
{
    /* Spin a little first: critical sections here are a few dozen cycles. */
    for (int i = 0; i < 100; i++) {
        uint32_t c = 0;
        if (atomic_load_explicit(&l->v, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&l->v, &c, 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
        cf_cpu_relax();
    }
    /* Mark contended; whoever unlocks from 2 wakes one sleeper. */
    while (atomic_exchange_explicit(&l->v, 2, memory_order_acquire) != 0)
        cf_futex_wait(&l->v, 2);
}

int64_t cf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * CF_NS_PER_S + ts.tv_nsec;
}

bool cf_timeout_valid(double timeout)
{
    if (timeout == FUT_FOREVER)
        return true;
    return isfinite(timeout) && timeout >= 0.0;
}

int64_t cf_deadline_after(double timeout)
{
    if (timeout == FUT_FOREVER)
        return CF_NO_DEADLINE;
    int64_t now = cf_now_ns();
    double ns = timeout * (double)CF_NS_PER_S;
    if (ns >= (double)(CF_NO_DEADLINE - now))
        return CF_NO_DEADLINE;
    return now + (int64_t)ns;
}

void cf_ns_to_timespec(int64_t ns, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ns / CF_NS_PER_S);
    ts->tv_nsec = (long)(ns % CF_NS_PER_S);
}

void *cf_fail_null(int code)
{
    errno = -code;
    return NULL;
}

int cf_cpu_count(void)
{
#ifdef HAVE_SCHED_GETAFFINITY
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < INT_MAX ? (int)n : 1;
}

/* ---------------------------------------------------------- buffers */

bool cf_buf_reserve(struct cf_buf *b, size_t more)
{
    size_t max = b->max ? b->max : SIZE_MAX;
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->cap - b->len >= more)
        return true;
    if (b->off > 0) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= more)
            return true;
    }
    if (more > max - b->len)
        return false;
    size_t need = b->len + more;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap = cap > max / 2 ? max : cap * 2;
    unsigned char *n = realloc(b->p, cap);
    if (!n)
        return false;
    b->p = n;
    b->cap = cap;
    return true;
}

void cf_buf_consume(struct cf_buf *b, size_t n)
{
    assert(n <= b->len - b->off);
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

void cf_buf_free(struct cf_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = b->off = 0;
}

/* ---------------------------------------------------------- threads */

int cf_start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

bool cf_thread_is_other(void)
{
    int policy;
    struct sched_param sp;
    return pthread_getschedparam(pthread_self(), &policy, &sp) == 0 &&
           policy == SCHED_OTHER;
}

bool cf_thread_set_batch(bool batch)
{
#ifdef SCHED_BATCH
    struct sched_param sp = {0};
    return pthread_setschedparam(pthread_self(), batch ? SCHED_BATCH : SCHED_OTHER,
                                 &sp) == 0;
#else
    (void)batch;
    return false;
#endif
}

/* ---------------------------------------------------------- names */

/* Here, not in future.c: names of codes need no future. */

const char *future_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case FUT_ETIMEDOUT:
        return "FUT_ETIMEDOUT: timed out";
    case FUT_ECANCELLED:
        return "FUT_ECANCELLED: the future was cancelled";
    case FUT_ESHUTDOWN:
        return "FUT_ESHUTDOWN: cannot schedule new futures after shutdown";
    case FUT_EINVAL:
        return "FUT_EINVAL: invalid argument";
    case FUT_ENOMEM:
        return "FUT_ENOMEM: out of memory";
    case FUT_EFULL:
        return "FUT_EFULL: the executor's queue is full";
    case FUT_ETASK:
        return "FUT_ETASK: the task raised an error";
    case FUT_EBROKEN:
        return "FUT_EBROKEN: the executor is broken";
    case FUT_EWORKER:
        return "FUT_EWORKER: the worker process died while running the task";
    case FUT_EDEADLINE:
        return "FUT_EDEADLINE: the task's own time limit passed";
    case FUT_ESTATE:
        return "FUT_ESTATE: invalid state for this operation";
    case FUT_ESYS:
        return "FUT_ESYS: a system call failed";
    case FUT_EOF:
        return "FUT_EOF: the iterator is exhausted";
    }
    return "unknown error";
}

const char *cfutures_version(void)
{
    return CFUTURES_VERSION;
}

int cf_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

/* ---------------------------------------------------------- big arrays */

#define HUGE_SZ ((size_t)2 << 20)

void *cf_zalloc_big(size_t n, size_t size)
{
    if (size && n > (SIZE_MAX - 2 * HUGE_SZ) / size) { /* room to round and align */
        errno = ENOMEM;
        return NULL;
    }
    size_t len = n * size;
    if (len < HUGE_SZ)
        return calloc(n ? n : 1, size ? size : 1);
    size_t span = (len + HUGE_SZ - 1) / HUGE_SZ * HUGE_SZ;
    char *raw = mmap(NULL, span + HUGE_SZ, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    /* Trim to a 2 MiB-aligned span: [raw, p) and [p + span, end) go back. */
    char *p = (char *)(((uintptr_t)raw + HUGE_SZ - 1) & ~(uintptr_t)(HUGE_SZ - 1));
    if (p > raw)
        munmap(raw, (size_t)(p - raw));
    if (p + span < raw + span + HUGE_SZ)
        munmap(p + span, (size_t)(raw + span + HUGE_SZ - (p + span)));
#ifdef MADV_HUGEPAGE
    (void)madvise(p, span, MADV_HUGEPAGE); /* a hint: no THP, 4 KiB pages */
#endif
    return p;
}

void cf_zalloc_free(void *p, size_t n, size_t size)
{
    if (!p)
        return;
    size_t len = n * size;
    if (len < HUGE_SZ) {
        free(p);
        return;
    }
    munmap(p, (len + HUGE_SZ - 1) / HUGE_SZ * HUGE_SZ);
}

/*
 * Names the calling thread PREFIX_INDEX (@name_prefix: an executor's
 * thread_name_prefix; empty or NULL: cfutures-ID), cut to Linux's 15
 * characters with the _INDEX kept.
 */
void cf_name_thread(const char *name_prefix, unsigned id, size_t index)
{
#ifdef HAVE_PTHREAD_SETNAME_NP
    char prefix[32], suffix[24], name[16];
    if (name_prefix && name_prefix[0])
        snprintf(prefix, sizeof(prefix), "%s", name_prefix);
    else
        snprintf(prefix, sizeof(prefix), "cfutures-%u", id);
    snprintf(suffix, sizeof(suffix), "_%zu", index);
    size_t sl = CF_MIN(strlen(suffix), sizeof(name) - 1);
    size_t pl = CF_MIN(strlen(prefix), sizeof(name) - 1 - sl);
    memcpy(name, prefix, pl);
    memcpy(name + pl, suffix, sl);
    name[pl + sl] = '\0';
    pthread_setname_np(pthread_self(), name);
#else
    (void)name_prefix;
    (void)id;
    (void)index;
#endif
}
