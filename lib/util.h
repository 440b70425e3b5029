/*
 * util.h: small shared pieces: a 4-byte lock, monotonic time and deadlines,
 * error helpers, CPU count. Internal: nothing here is exported.
 *
 * cf_lock_t is Drepper's three-state futex mutex ("Futexes Are Tricky"):
 * 0 free, 1 locked, 2 locked with sleepers. Lock is one CAS when free;
 * contended, it spins briefly, then sleeps in the kernel. It takes 4 bytes, so
 * every future can have its own (pthread_mutex_t would take 40). Acquire and
 * release orders make it a proper lock for TSan too.
 */
#ifndef CF_UTIL_H
#define CF_UTIL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    _Atomic uint32_t v; /* 0 free, 1 locked, 2 locked and contended */
} cf_lock_t;

#define CF_LOCK_INIT                                                                     \
    {                                                                                    \
        0                                                                                \
    }

void cf_lock_slow(cf_lock_t *l);
/* Names the calling thread PREFIX_INDEX (util.c); an executor's workers. */
void cf_name_thread(const char *name_prefix, unsigned id, size_t index);
void cf_futex_wake(_Atomic uint32_t *addr, int n);
void cf_futex_wait(_Atomic uint32_t *addr, uint32_t expected);
/* As cf_futex_wait, giving up after @rel_ns nanoseconds. */
void cf_futex_wait_for(_Atomic uint32_t *addr, uint32_t expected, int64_t rel_ns);
/* As cf_futex_wait until @deadline (cf_now_ns; CF_NO_DEADLINE: none); false,
   without waiting, once it has passed. */
bool cf_futex_wait_until(_Atomic uint32_t *addr, uint32_t expected, int64_t deadline);

static inline void cf_lock(cf_lock_t *l)
{
    uint32_t c = 0;
    if (atomic_compare_exchange_strong_explicit(&l->v, &c, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return;
    cf_lock_slow(l);
}

static inline void cf_unlock(cf_lock_t *l)
{
    if (atomic_exchange_explicit(&l->v, 0, memory_order_release) == 2)
        cf_futex_wake(&l->v, 1);
}

static inline void cf_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/*
 * Keeps counter @n equal to the number of items whose @counted flag is set:
 * sets the flag to @now and moves @n by one if it changed. The caller
 * serializes changes of the flag; readers of @n see each move at once.
 */
static inline void cf_count_flag(bool *counted, bool now, _Atomic size_t *n)
{
    if (now == *counted)
        return;
    *counted = now;
    if (now)
        atomic_fetch_add_explicit(n, 1, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(n, 1, memory_order_relaxed);
}

#define CF_NS_PER_S 1000000000LL
#define CF_NO_DEADLINE INT64_MAX

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t cf_now_ns(void);

/* True for FUT_FOREVER, 0 and finite positive values. */
bool cf_timeout_valid(double timeout);

/*
 * An absolute CLOCK_MONOTONIC deadline from a validated timeout:
 * CF_NO_DEADLINE for FUT_FOREVER, now for 0.
 */
int64_t cf_deadline_after(double timeout);

/* Fills a timespec for pthread_cond_timedwait on a CLOCK_MONOTONIC condvar. */
struct timespec;
void cf_ns_to_timespec(int64_t ns, struct timespec *ts);

/* Sets errno to the positive value of @code and returns NULL. */
void *cf_fail_null(int code);

/* CPUs this process may run on (sched_getaffinity), at least 1. */
int cf_cpu_count(void);

/*
 * A growable byte buffer with a hard maximum (curl's dynbuf): bytes
 * [off, len) are live. Zero-initialised plus .max is an empty buffer.
 */
struct cf_buf {
    unsigned char *p;
    size_t len, cap, off;
    size_t max; /* the buffer never grows past this many bytes (0: SIZE_MAX) */
};

/*
 * Makes room for @more bytes after len: moves the live bytes to the front
 * when that is enough, else grows (doubling, from 4 KiB). False if that
 * would pass max or malloc failed; the buffer is unchanged then.
 */
bool cf_buf_reserve(struct cf_buf *b, size_t more);
/* Appends @len bytes (inline while there is room). False as cf_buf_reserve. */
static inline bool cf_buf_add(struct cf_buf *b, const void *p, size_t len)
{
    if (len == 0)
        return true;
    if (b->cap - b->len < len && !cf_buf_reserve(b, len))
        return false;
    memcpy(b->p + b->len, p, len);
    b->len += len;
    return true;
}
/* Marks @n live bytes consumed; an emptied buffer restarts at offset 0. */
void cf_buf_consume(struct cf_buf *b, size_t n);
/* Frees the memory; the buffer is empty and reusable (max kept). */
void cf_buf_free(struct cf_buf *b);

/*
 * pthread_create with every asynchronous signal blocked in the new thread
 * (a library's threads must not take a program's signals). 0 or an errno.
 */
#include <pthread.h>
int cf_start_thread(pthread_t *t, void *(*fn)(void *), void *arg);
/* True if the calling thread runs under SCHED_OTHER (the default policy). */
bool cf_thread_is_other(void);
/*
 * Puts the calling thread under SCHED_BATCH (@batch) or back under
 * SCHED_OTHER; false if refused, or not on Linux. SCHED_BATCH has the same
 * share of the CPU, but waking such a thread never preempts the running one.
 */
bool cf_thread_set_batch(bool batch);
/* pthread_cond_init with CLOCK_MONOTONIC (cf_now_ns's clock, for timed waits). */
int cf_cond_init_monotonic(pthread_cond_t *cv);

/*
 * Zeroed memory for @n items of @size bytes, to be touched once soon after
 * (as_completed's nodes): small sizes come from calloc; from 2 MiB on, an
 * anonymous mapping aligned to 2 MiB that asks for transparent huge pages,
 * so first touching it costs a few page faults rather than one per 4 KiB
 * (each is several microseconds in a VM). NULL with errno on failure. Free
 * with cf_zalloc_free(p, n, size).
 */
void *cf_zalloc_big(size_t n, size_t size);
void cf_zalloc_free(void *p, size_t n, size_t size);

#define CF_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CF_MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * Calls test hook @h (a `void (*)(void)` that tests set), if set. Test
 * builds only (CF_TEST_HOOKS, where the file defines @h); elsewhere
 * nothing, and @h need not exist.
 */
#ifdef CF_TEST_HOOKS
#define CF_TEST_HOOK(h) ((h) ? (h)() : (void)0)
#else
#define CF_TEST_HOOK(h) ((void)0)
#endif

#endif /* CF_UTIL_H */
