/*
 * heap.c: the process pool's argument heap, memory shared with every worker
 * (mapped before the fork server is forked) where the manager puts the
 * argument of a queued task too big for its cell's slot, or a map chunk's
 * items (worker.h, "The shared queue").
 *
 * Blocks are powers of two from HEAP_MIN to HEAP_MAX bytes, carved from the
 * bottom of the mapping and kept on a free list per size once freed (never
 * returned: a pool that sent big arguments once will again). The lists live
 * in the manager's own memory, not in the shared mapping, so nothing a task
 * writes there can mislead the allocator. Pages are mapped by the kernel
 * when first written.
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

/* True if cf_heap_alloc would give a block for @len bytes now. */
bool cf_heap_fits(const struct cf_heap *h, size_t len)
{
    int k = class_of(len);
    size_t at;
    return h->base && k >= 0 && (h->fl[k].n > 0 || room_at_top(h, k, &at));
}

int cf_heap_alloc(struct cf_heap *h, size_t len, uint32_t *off)
{
    int k = class_of(len);
    if (!h->base || k < 0)
        return 0;
    if (h->fl[k].n > 0) {
        *off = h->fl[k].off[--h->fl[k].n];
        return k + 1;
    }
    size_t at;
    if (!room_at_top(h, k, &at))
        return 0;
    h->top = at + ((size_t)CF_HEAP_MIN << k);
    *off = (uint32_t)at;
    return k + 1;
}

void cf_heap_free(struct cf_heap *h, int cls, uint32_t off)
{
    struct cf_heap_list *l = &h->fl[cls - 1];
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        uint32_t *p = realloc(l->off, cap * sizeof(*p));
        if (!p)
            return; /* no memory to keep it: the block is lost, nothing breaks */
        l->off = p;
        l->cap = cap;
    }
    l->off[l->n++] = off;
}
