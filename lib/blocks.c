/*
 * blocks.c: task blocks and result copies from 2 MiB chunks, with per-thread caches
 * (blocks.h says why and what).
 *
 * Layout: one range of RANGE bytes of address space is reserved PROT_NONE at
 * the first use (no memory, no commit charge); chunks are made usable in
 * order, one class each (chunk_class), and carved a batch at a time. A
 * free block's first words link it into a list: `next` within a list,
 * `next_batch` and `n` in the first block of a batch on a class's stack.
 */
#include "config.h"

#include "blocks.h"
#include "util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

/* ASan and MSan: malloc, so that every future is a heap block to them
   (leaks, use after free; a reused block would look initialised to MSan).
   TSan runs the blocks: every hand-over goes through a cf_lock. */
#if defined(__SANITIZE_ADDRESS__)
#define MALLOC_ONLY 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define MALLOC_ONLY 1
#endif
#endif
#if UINTPTR_MAX <= 0xffffffffu
#define MALLOC_ONLY 1 /* 32-bit: no address space to set aside */
#endif

#ifdef CF_TEST_HOOKS
void (*cf_test_blocks_init_hook)(void); /* blocks.h; never called with MALLOC_ONLY */
#endif

#ifdef MALLOC_ONLY

void *cf_block_alloc(size_t size)
{
    return malloc(size ? size : 1);
}

void cf_block_free(void *p)
{
    free(p);
}

long cf_block_carved(void)
{
    return -1;
}

void cf_block_drop_reserve(void)
{
}

#else /* !MALLOC_ONLY */

#define CHUNK ((size_t)2 << 20)
#define RANGE ((size_t)4 << 30) /* 2,048 chunks: 33 million 128-byte blocks */
#define NCHUNKS (RANGE / CHUNK)
/* Class c < NSMALL holds c * 16 bytes (0 and 1 unused); the big classes
   after them hold 512 bytes to CF_BLOCK_BIG_MAX, powers of two. */
#define NSMALL (CF_BLOCK_MAX / 16 + 1)
#define BIG_MIN_SHIFT 9
#define BIG_MAX_SHIFT 16
_Static_assert((1 << BIG_MAX_SHIFT) == CF_BLOCK_BIG_MAX, "BIG_MAX_SHIFT");
#define NCLASS (NSMALL + BIG_MAX_SHIFT - BIG_MIN_SHIFT + 1)
#define BATCH 64
#define BIG_BATCH_BYTES ((size_t)256 << 10) /* a big class's batch: at most this */
#define MAP_STEP ((size_t)64 << 10)    /* mapped ahead of the carving, at most this */
#define FIRST_SPAN ((size_t)256 << 10) /* carved of a small class's first chunk */

struct free_block {
    struct free_block *next;
    struct free_block *next_batch; /* first block of a batch on a stack */
    uint32_t n;                    /* first block of a batch: its blocks */
};

struct class_state {
    cf_lock_t lock;
    struct free_block *batches; /* stack of batches */
    char *bump, *end;           /* what is left of the class's newest chunk */
    char *mapped;               /* populate() has mapped its chunk up to here */
    long carved;
};

enum { ST_UNKNOWN, ST_ON, ST_OFF };

static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Atomic int state;
static char *_Atomic base;          /* the reserved range, CHUNK-aligned, or NULL */
static _Atomic size_t span = RANGE; /* bytes from base that may hold blocks */
static char *raw_start;             /* the mapping base is aligned in */
static size_t chunks_used;          /* under range_lock */
static _Atomic bool no_more;        /* the range is used up, or mprotect failed: malloc */
static cf_lock_t range_lock = CF_LOCK_INIT;
static pthread_key_t exit_key;
static struct class_state classes[NCLASS];
static unsigned char chunk_class[NCHUNKS];

struct cache {
    struct free_block *head;
    uint32_t n;
};
static _Thread_local struct cache caches[NCLASS];
static _Thread_local unsigned char thread_state; /* 0 new, 1 flushed at exit, 2 exited */

/* The bytes of class @c's blocks. */
static size_t class_size(unsigned c)
{
    return c < NSMALL ? (size_t)c * 16 : (size_t)1 << (BIG_MIN_SHIFT + c - NSMALL);
}

/* The class of a request of @size bytes (at most CF_BLOCK_BIG_MAX). */
static unsigned class_of(size_t size)
{
    if (size <= CF_BLOCK_MAX)
        return size <= 32 ? 2 : (unsigned)((size + 15) / 16);
    unsigned shift = BIG_MIN_SHIFT;
    while (((size_t)1 << shift) < size)
        shift++;
    return NSMALL + shift - BIG_MIN_SHIFT;
}

/* Blocks a batch of class @c holds: BATCH, fewer for big blocks (a thread
   caches at most two batches a class). */
static uint32_t class_batch(unsigned c)
{
    return (uint32_t)CF_MAX((size_t)1,
                            CF_MIN((size_t)BATCH, BIG_BATCH_BYTES / class_size(c)));
}

/*
 * The fork handlers. They may be registered twice: a fork from another
 * thread while init() runs, after its pthread_atfork, leaves the child with
 * the handlers and pthread_once's init to run again (glibc restarts a once
 * a fork interrupted), which registers them once more. So they count: the
 * forking thread takes the locks in the first prepare handler and gives
 * them back in the last parent or child one (the child inherits the count).
 */
static _Thread_local unsigned fork_depth;

static void lock_all(void)
{
    if (fork_depth++ > 0)
        return;
    for (int c = 0; c < NCLASS; c++)
        cf_lock(&classes[c].lock);
    cf_lock(&range_lock);
}

static void unlock_all(void)
{
    if (--fork_depth > 0)
        return;
    cf_unlock(&range_lock);
    for (int c = NCLASS - 1; c >= 0; c--)
        cf_unlock(&classes[c].lock);
}

static void push_batch(unsigned c, struct free_block *first, uint32_t n)
{
    first->n = n;
    cf_lock(&classes[c].lock);
    first->next_batch = classes[c].batches;
    classes[c].batches = first;
    cf_unlock(&classes[c].lock);
}

/* pthread key destructor: the exiting thread's caches go to the stacks. */
static void thread_exit(void *unused)
{
    (void)unused;
    thread_state = 2;
    for (unsigned c = 0; c < NCLASS; c++) {
        if (caches[c].n)
            push_batch(c, caches[c].head, caches[c].n);
        caches[c].head = NULL;
        caches[c].n = 0;
    }
}

static void init(void)
{
    int st = ST_OFF;
    const char *env = getenv("CFUTURES_MALLOC");
    bool forced = env && strcmp(env, "0") == 0; /* blocks even under valgrind */
    if (env && *env && !forced)
        goto out;
#ifdef HAVE_VALGRIND_VALGRIND_H
    if (RUNNING_ON_VALGRIND && !forced)
        goto out; /* memcheck then sees each future as a heap block of its own */
#endif
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
        goto out; /* the reservation would count against the program's limit */
    char *raw = mmap(NULL, RANGE + CHUNK, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        goto out;
    if (pthread_key_create(&exit_key, thread_exit) != 0 ||
        pthread_atfork(lock_all, unlock_all, unlock_all) != 0) {
        munmap(raw, RANGE + CHUNK);
        goto out;
    }
#ifdef CF_TEST_HOOKS
    if (cf_test_blocks_init_hook)
        cf_test_blocks_init_hook(); /* a fork here: the handlers twice in the child */
#endif
    raw_start = raw;
    atomic_store_explicit(
        &base, (char *)(((uintptr_t)raw + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1)),
        memory_order_relaxed);
    st = ST_ON;
out:
    atomic_store_explicit(&state, st, memory_order_release);
}

static bool blocks_on(void)
{
    int st = atomic_load_explicit(&state, memory_order_acquire);
    if (st == ST_UNKNOWN) {
        pthread_once(&once, init);
        st = atomic_load_explicit(&state, memory_order_acquire);
    }
    return st == ST_ON;
}

/*
 * A class's chunks after its first, and every big class's (task arguments and
 * result copies), ask for a transparent huge page and are mapped whole when
 * taken: in a VM the first write to a 4 KiB page costs several microseconds
 * even once populate() has mapped it (the hypervisor maps it in turn: 5-17
 * us a page measured on a PVM guest, against 0.3 us a page with a huge
 * page), which made a 64 KiB result cost more to receive than to send, and
 * linking a fresh batch of futures 15% of W3's CPU (perf). A small class's
 * first chunk is 4 KiB pages mapped a step at a time, and only its first
 * FIRST_SPAN is carved (the rest is never touched), so that a program with a
 * few futures holds no 2 MiB a class (the downloader's peak RSS is compared
 * with curl's) and a burst pays for 64 pages of 4 KiB, not 512. A hint:
 * where THP is off, the pages come 4 KiB at a time.
 */
static void huge(char *chunk)
{
#ifdef MADV_HUGEPAGE
    int saved = errno;
    (void)madvise(chunk, CHUNK, MADV_HUGEPAGE);
    errno = saved;
#else
    (void)chunk;
#endif
}

/*
 * A new chunk for class @c (class lock held), or NULL: then, for good, the
 * range is used up or mprotect failed (RLIMIT_DATA, strict overcommit), and
 * malloc serves every new block without asking again. errno is kept.
 */
static char *take_chunk(unsigned c, bool whole)
{
    char *p = NULL;
    int saved = errno;
    cf_lock(&range_lock);
    if (chunks_used < NCHUNKS) {
        p = atomic_load_explicit(&base, memory_order_relaxed) + chunks_used * CHUNK;
        if (mprotect(p, CHUNK, PROT_READ | PROT_WRITE) == 0) {
            if (whole)
                huge(p);
            chunk_class[chunks_used++] = (unsigned char)c;
        } else {
            p = NULL;
        }
    }
    if (!p)
        atomic_store_explicit(&no_more, true, memory_order_relaxed);
    cf_unlock(&range_lock);
    errno = saved;
    return p;
}

/*
 * Maps [@from, @to) in one call (Linux 5.14): a whole chunk when it asked for
 * a huge page, else MAP_STEP at a time ahead of the carving, instead of one
 * page fault per 4 KiB as blocks are first written: in a VM each fault is a
 * trap that costs microseconds. Older kernels refuse it: then the pages come
 * as they are touched. (Huge pages once seemed to make 1M submits take 0.06
 * s or 0.35 s, run to run; both chunk kinds show that spread on the PVM
 * guest: the host backs guest memory on its first use.) errno is kept.
 */
static void populate(char *from, char *to)
{
#ifdef MADV_POPULATE_WRITE
    int saved = errno;
    (void)madvise(from, (size_t)(to - from), MADV_POPULATE_WRITE);
    errno = saved;
#else
    (void)from;
    (void)to;
#endif
}

/* Fills the empty cache of class @c: a batch from the stack, or new blocks. */
static bool refill(unsigned c)
{
    struct class_state *cs = &classes[c];
    size_t size = class_size(c);
    struct free_block *list;
    char *map_from = NULL, *map_to = NULL;
    uint32_t n;
    cf_lock(&cs->lock);
    if ((list = cs->batches) != NULL) {
        cs->batches = list->next_batch;
        n = list->n;
        cf_unlock(&cs->lock);
    } else {
        if ((size_t)(cs->end - cs->bump) < size) {
            bool whole = c >= NSMALL || cs->carved > 0;
            char *fresh = atomic_load_explicit(&no_more, memory_order_relaxed)
                              ? NULL
                              : take_chunk(c, whole);
            if (!fresh) {
                cf_unlock(&cs->lock);
                return false;
            }
            cs->bump = cs->mapped = fresh;
            cs->end = fresh + (whole ? CHUNK : FIRST_SPAN);
            if (whole) { /* one call for the chunk: a huge page */
                map_from = fresh;
                map_to = cs->mapped = cs->end;
            }
        }
        n = (uint32_t)CF_MIN((size_t)class_batch(c), (size_t)(cs->end - cs->bump) / size);
        list = (struct free_block *)cs->bump;
        cs->bump += n * size;
        cs->carved += n;
        if (cs->bump > cs->mapped) { /* up to the step boundary past the carving */
            map_from = cs->mapped;
            map_to = (char *)(((uintptr_t)cs->bump + MAP_STEP - 1) &
                              ~(uintptr_t)(MAP_STEP - 1));
            cs->mapped = map_to = CF_MIN(map_to, cs->end);
        }
        cf_unlock(&cs->lock);
        if (map_from)
            populate(map_from, map_to);
        /* Linked outside the lock, which others may need meanwhile. */
        for (uint32_t i = 0; i + 1 < n; i++)
            ((struct free_block *)((char *)list + i * size))->next =
                (struct free_block *)((char *)list + (i + 1) * size);
        ((struct free_block *)((char *)list + (n - 1) * size))->next = NULL;
    }
    caches[c].head = list;
    caches[c].n = n;
    return true;
}

/* Its caches go back at its exit; if that cannot be arranged, it keeps none. */
static void register_thread(void)
{
    thread_state = pthread_setspecific(exit_key, &thread_state) == 0 ? 1 : 2;
}

void *cf_block_alloc(size_t size)
{
    if (size > CF_BLOCK_BIG_MAX || !blocks_on() || thread_state == 2)
        return malloc(size ? size : 1);
    unsigned c = class_of(size);
    struct cache *k = &caches[c];
    if (!k->head) {
        if (thread_state == 0)
            register_thread();
        if (thread_state == 2 || !refill(c))
            return malloc(size ? size : 1);
    }
    struct free_block *b = k->head;
    k->head = b->next;
    k->n--;
    return b;
}

void cf_block_free(void *p)
{
    uintptr_t q = (uintptr_t)p,
              b0 = (uintptr_t)atomic_load_explicit(&base, memory_order_relaxed);
    if (!b0 || q - b0 >= atomic_load_explicit(&span, memory_order_relaxed)) {
        /* unsigned: below b0 wraps past the span */
        free(p);
        return;
    }
    unsigned c = chunk_class[(q - b0) / CHUNK];
    struct free_block *b = p;
    if (thread_state == 0)
        register_thread();
    if (thread_state == 2) { /* after its exit: straight to the stack */
        b->next = NULL;
        push_batch(c, b, 1);
        return;
    }
    struct cache *k = &caches[c];
    uint32_t batch = class_batch(c);
    b->next = k->head;
    k->head = b;
    if (++k->n < 2 * batch)
        return;
    /* Spill the oldest batch: keep the newest (warm) ones. */
    struct free_block *last = b;
    for (uint32_t i = 1; i < batch; i++)
        last = last->next;
    struct free_block *spill = last->next;
    last->next = NULL;
    k->n = batch;
    push_batch(c, spill, batch);
}

long cf_block_carved(void)
{
    if (!blocks_on())
        return -1;
    long n = 0;
    for (unsigned c = 0; c < NCLASS; c++) {
        cf_lock(&classes[c].lock);
        n += classes[c].carved;
        cf_unlock(&classes[c].lock);
    }
    return n;
}

/*
 * A fork server inherits the parent's range: its workers would hold 4 GiB of
 * address space they never carve (an initializer's RLIMIT_AS of 3 GiB then
 * failed every malloc of a task). The chunks in use stay (the inherited
 * blocks and caches live there); the rest, and the alignment slack, go.
 * Never initialised here: no range for the workers to set aside either.
 */
void cf_block_drop_reserve(void)
{
    if (atomic_load_explicit(&state, memory_order_acquire) != ST_ON) {
        atomic_store_explicit(&state, ST_OFF, memory_order_release);
        return;
    }
    cf_lock(&range_lock);
    atomic_store_explicit(&no_more, true, memory_order_relaxed);
    char *b = atomic_load_explicit(&base, memory_order_relaxed);
    size_t used = chunks_used * CHUNK;
    atomic_store_explicit(&span, used, memory_order_relaxed);
    char *raw_end = raw_start + RANGE + CHUNK;
    if (b > raw_start)
        munmap(raw_start, (size_t)(b - raw_start));
    munmap(b + used, (size_t)(raw_end - (b + used)));
    cf_unlock(&range_lock);
}

#endif /* MALLOC_ONLY */

void *cf_block_dup(const void *p, size_t len)
{
    void *copy = cf_block_alloc(len);
    if (copy && len)
        memcpy(copy, p, len);
    return copy;
}
