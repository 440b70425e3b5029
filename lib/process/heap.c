/*
 * heap.c: the process pool's argument heap, memory shared with every worker
 * (mapped before the fork server is forked) where the manager puts the
 * argument of a queued task too big for its cell's slot, or a map chunk's
 * items (worker.h, "The shared queue").
 *
 * Blocks are powers of two from HEAP_MIN to HEAP_MAX bytes, carved from the
 * bottom of the mapping and kept on a free list per size once freed (a pool
 * that sent big arguments once will again). A size with no free block and
 * no room left splits a free block of a larger size in halves, so a burst
 * of big arguments does not leave the small ones without a block for good;
 * halves are never merged again, but once every block is free the heap
 * starts over empty (top 0, no list). The lists live in the manager's own
 * memory, not in the shared mapping, so nothing a task writes there can
 * mislead the allocator. Pages are mapped by the kernel when first written.
 *
 * Runs on the manager thread only (cf_heap_init and cf_heap_destroy: the
 * pool's creation and destruction).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "heap.h"

int cf_heap_init(struct cf_heap *h, size_t bytes)
{
    *h = (struct cf_heap){0};
    void *m =
        mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    h->base = m;
    h->bytes = bytes;
    return 0;
}

void cf_heap_destroy(struct cf_heap *h)
{
    if (h->base)
        munmap(h->base, h->bytes);
    for (int k = 0; k < CF_HEAP_CLASSES; k++)
        free(h->fl[k].off);
    *h = (struct cf_heap){0};
}

/* The size class of @len bytes (block CF_HEAP_MIN << k), or -1 if too big. */
static int class_of(size_t len)
{
    for (int k = 0; k < CF_HEAP_CLASSES; k++)
        if (len <= ((size_t)CF_HEAP_MIN << k))
            return k;
    return -1;
}

/* Where a new block of class @k would be carved (aligned to its size); false if no room.
 */
static bool room_at_top(const struct cf_heap *h, int k, size_t *at)
{
    size_t size = (size_t)CF_HEAP_MIN << k;
    *at = (h->top + size - 1) & ~(size - 1);
    return *at <= h->bytes && size <= h->bytes - *at;
}

/* The smallest class above @k with a free block, or -1. */
static int larger_free(const struct cf_heap *h, int k)
{
    for (int j = k + 1; j < CF_HEAP_CLASSES; j++)
        if (h->fl[j].n > 0)
            return j;
    return -1;
}

/* True if cf_heap_alloc would give a block for @len bytes now. */
bool cf_heap_fits(const struct cf_heap *h, size_t len)
{
    int k = class_of(len);
    size_t at;
    return h->base && k >= 0 &&
           (h->fl[k].n > 0 || room_at_top(h, k, &at) || larger_free(h, k) >= 0);
}

/* Keeps the free block @off on list @l; false (the block is lost) without memory. */
static bool list_push(struct cf_heap_list *l, uint32_t off)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        uint32_t *p = realloc(l->off, cap * sizeof(*p));
        if (!p)
            return false;
        l->off = p;
        l->cap = cap;
    }
    l->off[l->n++] = off;
    return true;
}

/* A free block of class @k, carved or split from a larger one; false if none. */
static bool take(struct cf_heap *h, int k, uint32_t *off)
{
    if (h->fl[k].n > 0) {
        *off = h->fl[k].off[--h->fl[k].n];
        return true;
    }
    size_t at;
    if (room_at_top(h, k, &at)) {
        h->top = at + ((size_t)CF_HEAP_MIN << k);
        *off = (uint32_t)at;
        return true;
    }
    int j = larger_free(h, k);
    if (j < 0)
        return false;
    *off = h->fl[j].off[--h->fl[j].n];
    /* Its upper halves, largest first, become free blocks of classes j-1 .. k
       (a half a list has no memory for is lost: nothing breaks). */
    for (int i = j - 1; i >= k; i--)
        list_push(&h->fl[i], *off + (uint32_t)((size_t)CF_HEAP_MIN << i));
    return true;
}

int cf_heap_alloc(struct cf_heap *h, size_t len, uint32_t *off)
{
    int k = class_of(len);
    if (!h->base || k < 0 || !take(h, k, off))
        return 0;
    h->used++;
    return k + 1;
}

void cf_heap_free(struct cf_heap *h, int cls, uint32_t off)
{
    if (--h->used == 0) {
        /* Nothing is handed out: start over, every block merged again. */
        h->top = 0;
        for (int k = 0; k < CF_HEAP_CLASSES; k++)
            h->fl[k].n = 0;
        return;
    }
    list_push(&h->fl[cls - 1], off); /* without memory the block is lost */
}
