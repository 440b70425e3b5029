/*
 * heap.h: the process pool's shared argument heap (heap.c).
 */
#ifndef CF_PROCESS_HEAP_H
#define CF_PROCESS_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CF_HEAP_MIN 128
#define CF_HEAP_CLASSES 14 /* blocks of 128 B .. 1 MiB */
#define CF_HEAP_BYTES (32u << 20)

/* A class's free blocks: `free` says which are free; `off` lists them, and
   may also hold blocks no longer free (merged, taken): heap.c. */
struct cf_heap_list {
    uint32_t *off;
    size_t n, cap;
    uint64_t *free; /* one bit a block of this class: set while free */
    size_t nfree;   /* bits set */
};

struct cf_heap {
    unsigned char *base; /* NULL: no heap (the mapping failed) */
    size_t bytes, top;
    size_t used;  /* blocks handed out and not freed */
    size_t inuse; /* their bytes */
    struct cf_heap_list fl[CF_HEAP_CLASSES];
};

/* Maps @bytes shared with children forked later. 0, or -1 (no heap). */
int cf_heap_init(struct cf_heap *h, size_t bytes);
void cf_heap_destroy(struct cf_heap *h);
/* True if a block of @len bytes can be had now (cf_heap_alloc would give one). */
bool cf_heap_fits(const struct cf_heap *h, size_t len);
/* A block of at least @len bytes at *off: its class (>= 1), or 0 if none is free. */
int cf_heap_alloc(struct cf_heap *h, size_t len, uint32_t *off);
void cf_heap_free(struct cf_heap *h, int cls, uint32_t off);

#endif /* CF_PROCESS_HEAP_H */
