/*
 * heap.c: the process pool's argument heap, memory shared with every worker
 * (mapped before the fork server is forked) where the manager puts the
 * argument of a queued task too big for its cell's slot, or a map chunk's
 * items (worker.h, "The shared queue").
 *
 * A buddy allocator. Blocks are powers of two from CF_HEAP_MIN to 1 MiB,
 * each aligned to its size, and kept per size once freed (a pool that sent
 * big arguments once will again). A size with no free block splits a free
 * block of a larger size in halves (so a burst of big arguments does not
 * leave the small ones without a block), and only when there is none either
 * is a new block carved from the bottom of the mapping (`top`; what a
 * block's alignment skips there becomes free blocks of smaller sizes): memory
 * used before is taken before memory never touched, whose first write costs
 * a page fault and a cleared page (a burst of 64 KiB arguments touched the
 * whole 32 MiB once when carving came first, four times what its tasks in
 * flight used: bench/RESULTS.md, W3b). A freed block whose buddy (the other
 * half of the block it was split from: off ^ size) is free merges with it,
 * and so on up, so small arguments do not break the big blocks for good in
 * a pool that is never idle. Once every block is free the heap starts over
 * empty.
 *
 * Per size, a bitmap says which blocks are free (the truth) and a stack
 * lists them for taking. A merge clears the buddy's bit and leaves its
 * entry on the stack: taking skips entries whose bit is clear, and a stack
 * grown past twice its free blocks is compacted. All of this lives in the
 * manager's own memory, not in the shared mapping, so nothing a task writes
 * there can mislead the allocator. Pages are mapped by the kernel when
 * first written.
 *
 * Runs on the manager thread only (cf_heap_init and cf_heap_destroy: the
 * pool's creation and destruction).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "heap.h"

#define SIZE(k) ((size_t)CF_HEAP_MIN << (k))

int cf_heap_init(struct cf_heap *h, size_t bytes)
{
    *h = (struct cf_heap){0};
    if (bytes > UINT32_MAX) /* offsets are 32-bit */
        return -1;
    for (int k = 0; k < CF_HEAP_CLASSES; k++) {
        size_t blocks = bytes / SIZE(k);
        h->fl[k].free = calloc(blocks / 64 + 1, sizeof(uint64_t));
        if (!h->fl[k].free) {
            cf_heap_destroy(h);
            return -1;
        }
    }
    void *m =
        mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        cf_heap_destroy(h);
        return -1;
    }
    h->base = m;
    h->bytes = bytes;
    return 0;
}

void cf_heap_destroy(struct cf_heap *h)
{
    if (h->base)
        munmap(h->base, h->bytes);
    for (int k = 0; k < CF_HEAP_CLASSES; k++) {
        free(h->fl[k].off);
        free(h->fl[k].free);
    }
    *h = (struct cf_heap){0};
}

/* The size class of @len bytes (block CF_HEAP_MIN << k), or -1 if too big. */
static int class_of(size_t len)
{
    for (int k = 0; k < CF_HEAP_CLASSES; k++)
        if (len <= SIZE(k))
            return k;
    return -1;
}

/* Whether the block of class @k at @off is free (on its list). */
static bool is_free(const struct cf_heap *h, int k, uint32_t off)
{
    size_t i = off / SIZE(k);
    return (h->fl[k].free[i / 64] >> (i % 64)) & 1;
}

static void set_free(struct cf_heap *h, int k, uint32_t off, bool on)
{
    size_t i = off / SIZE(k);
    uint64_t bit = (uint64_t)1 << (i % 64);
    if (on) {
        h->fl[k].free[i / 64] |= bit;
        h->fl[k].nfree++;
    } else {
        h->fl[k].free[i / 64] &= ~bit;
        h->fl[k].nfree--;
    }
}

/* Where a new block of class @k would be carved (aligned to its size); false if no room.
 */
static bool room_at_top(const struct cf_heap *h, int k, size_t *at)
{
    size_t size = SIZE(k);
    *at = (h->top + size - 1) & ~(size - 1);
    return *at <= h->bytes && size <= h->bytes - *at;
}

/* The smallest class above @k with a free block, or -1. */
static int larger_free(const struct cf_heap *h, int k)
{
    for (int j = k + 1; j < CF_HEAP_CLASSES; j++)
        if (h->fl[j].nfree > 0)
            return j;
    return -1;
}

/* True if cf_heap_alloc would give a block for @len bytes now. */
bool cf_heap_fits(const struct cf_heap *h, size_t len)
{
    int k = class_of(len);
    size_t at;
    return h->base && k >= 0 &&
           (h->fl[k].nfree > 0 || room_at_top(h, k, &at) || larger_free(h, k) >= 0);
}

/* Drops the entries of list @k whose block is no longer free. */
static void compact(struct cf_heap *h, int k)
{
    struct cf_heap_list *l = &h->fl[k];
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        if (is_free(h, k, l->off[i]))
            l->off[n++] = l->off[i];
    l->n = n;
}

/* Frees block @off of class @k onto its list; without memory for the entry
   it is lost (nothing breaks: it never counts as free). */
static void put(struct cf_heap *h, int k, uint32_t off)
{
    struct cf_heap_list *l = &h->fl[k];
    if (l->n == l->cap && l->n > 2 * l->nfree + 16)
        compact(h, k);
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        uint32_t *p = realloc(l->off, cap * sizeof(*p));
        if (!p)
            return;
        l->off = p;
        l->cap = cap;
    }
    l->off[l->n++] = off;
    set_free(h, k, off, true);
}

/* Takes a free block of class @k off its list (one is: nfree > 0). */
static uint32_t pop(struct cf_heap *h, int k)
{
    struct cf_heap_list *l = &h->fl[k];
    for (;;) {
        uint32_t off = l->off[--l->n];
        if (is_free(h, k, off)) { /* else merged or taken since: skip it */
            set_free(h, k, off, false);
            return off;
        }
    }
}

/* Frees block @off of class @k, merged with its free buddy, and so on up
   to the largest class. */
static void release(struct cf_heap *h, int k, uint32_t off)
{
    while (k + 1 < CF_HEAP_CLASSES) {
        uint32_t buddy = off ^ (uint32_t)SIZE(k);
        if ((size_t)buddy + SIZE(k) > h->top || !is_free(h, k, buddy))
            break;
        set_free(h, k, buddy, false); /* its stale entry is skipped later */
        off &= ~(uint32_t)SIZE(k);
        k++;
    }
    put(h, k, off);
}

/* Frees the bytes from top to @at (a block's alignment skipped them) as
   blocks of their own, each aligned to its size, merged as freed blocks. */
static void free_gap(struct cf_heap *h, size_t at)
{
    while (h->top < at) {
        int c = 0;
        while (c + 1 < CF_HEAP_CLASSES && h->top % SIZE(c + 1) == 0 &&
               h->top + SIZE(c + 1) <= at)
            c++;
        uint32_t off = (uint32_t)h->top;
        h->top += SIZE(c);
        release(h, c, off);
    }
}

/* A free block of class @k, else one split from a larger free block, else one
   carved at the top (heap.c's head); false if none. */
static bool take(struct cf_heap *h, int k, uint32_t *off)
{
    if (k < 0 || k >= CF_HEAP_CLASSES)
        return false; /* class_of's range: said for the static analyzer */
    if (h->fl[k].nfree > 0) {
        *off = pop(h, k);
        return true;
    }
    int j = larger_free(h, k);
    if (j >= 0) {
        *off = pop(h, j);
        /* Its upper halves, largest first, become free blocks of classes j-1 .. k. */
        for (int i = j - 1; i >= k; i--)
            put(h, i, *off + (uint32_t)SIZE(i));
        return true;
    }
    size_t at;
    if (!room_at_top(h, k, &at))
        return false;
    free_gap(h, at);
    h->top = at + SIZE(k);
    *off = (uint32_t)at;
    return true;
}

int cf_heap_alloc(struct cf_heap *h, size_t len, uint32_t *off)
{
    int k = class_of(len);
    if (!h->base || k < 0 || !take(h, k, off))
        return 0;
    h->used++;
    h->inuse += SIZE(k);
    return k + 1;
}

/* Nothing is handed out: start over, every block merged again. */
static void start_over(struct cf_heap *h)
{
    h->top = 0;
    for (int k = 0; k < CF_HEAP_CLASSES; k++) {
        struct cf_heap_list *l = &h->fl[k];
        for (size_t i = 0; i < l->n; i++) /* every set bit has an entry */
            if (is_free(h, k, l->off[i]))
                set_free(h, k, l->off[i], false);
        l->n = 0;
    }
}

void cf_heap_free(struct cf_heap *h, int cls, uint32_t off)
{
    h->inuse -= SIZE(cls - 1);
    if (--h->used == 0) {
        start_over(h);
        return;
    }
    release(h, cls - 1, off);
}
