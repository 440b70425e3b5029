/*
 * blocks.h: the allocator of small fixed-size blocks that hold a future and
 * its work item (a task block: 128 bytes on a thread pool, 192 on a process
 * pool). Internal: nothing here is exported.
 *
 * Why not malloc: a burst of n pending tasks first touches n blocks of fresh
 * heap, one 4 KiB page fault per 32 tasks, and in a VM each fault costs
 * microseconds (bench/RESULTS.md, 2026-12-04: 13,090 faults for 200,000
 * process-pool tasks, 30% of the time). Blocks come instead from 2 MiB chunks
 * carved in one range of address space (4 GiB, PROT_NONE until used, so it
 * costs no memory) reserved at the first use, a class's first 256 KiB of
 * blocks mapped 64 KiB at a time in one call (MADV_POPULATE_WRITE) ahead of
 * the carving, its later chunks whole: no trap per page, and at most 64 KiB
 * mapped ahead while a class has one chunk.
 *
 * Sizes: 16-byte classes up to CF_BLOCK_MAX (futures and their work items),
 * then big classes, powers of two up to CF_BLOCK_BIG_MAX (task arguments and
 * result copies: a burst of 64 KiB results first touched 16 pages each of
 * fresh heap, the most of W3b's time in a VM). A big class's chunks, and a
 * small class's after its first, ask for a transparent huge page and are
 * mapped whole (blocks.c's huge() says why); a big class's batches hold at
 * most 256 KiB. Larger requests go to malloc,
 * and so does every request once the range is used up or a chunk cannot be
 * made usable, and always on 32-bit targets, under an RLIMIT_AS limit, in
 * ASan and MSan builds of the library, with CFUTURES_MALLOC=1 in the
 * environment, and under valgrind when the library was built with valgrind's
 * header (memcheck then tracks each future: leaks, use after free;
 * CFUTURES_MALLOC=0 keeps the blocks there, for callgrind of the real path).
 * cf_block_free tells the two apart by address, so callers need not.
 *
 * Threads: each thread keeps a cache of free blocks per class (at most
 * 2 * BATCH); it refills and spills a batch at a time from and to the class's
 * shared stack, under a lock, so alloc and free are a pop and a push
 * almost always. A thread's cache goes back to the shared stacks when the
 * thread exits (a pool's workers keep theirs while the pool lives).
 *
 * Memory is kept for reuse, never returned to the system: a process holds
 * the sum over the classes it used of each one's peak (at least one 2 MiB
 * chunk each), plus what the threads cache. A forked child shares the
 * chunks copy-on-write, like the rest of the heap; the process pool's fork
 * server keeps only the chunks in use and gives back the rest of the range
 * (cf_block_drop_reserve), so that its workers carry no 4 GiB of address
 * space into an RLIMIT_AS they set.
 */
#ifndef CF_BLOCKS_H
#define CF_BLOCKS_H

#include <stddef.h>

#define CF_BLOCK_MAX 256            /* the small classes: 16-byte steps */
#define CF_BLOCK_BIG_MAX (64 << 10) /* the big classes: powers of two from 512 */

/* @size bytes, aligned as malloc's, uninitialised; NULL (errno ENOMEM) on failure. */
void *cf_block_alloc(size_t size);
/* Frees a block of cf_block_alloc or cf_block_dup (or NULL). */
void cf_block_free(void *p);
/* A block holding a copy of @len bytes at @p, or NULL (errno ENOMEM). */
void *cf_block_dup(const void *p, size_t len);
/* Blocks carved from chunks so far (tests: reuse), or -1 while malloc serves all. */
long cf_block_carved(void);
/*
 * In a forked child that carves no more chunks (the process pool's fork
 * server, and so its workers): gives back the range set aside and not used
 * yet (up to 4 GiB of address space that an RLIMIT_AS the child or its
 * workers set would count), keeping the chunks in use; new blocks then come
 * from malloc. Single-threaded callers only.
 */
void cf_block_drop_reserve(void);

#ifdef CF_TEST_HOOKS
/* Tests: called in the allocator's first use, after its fork handlers are set. */
extern void (*cf_test_blocks_init_hook)(void);
#endif

#endif /* CF_BLOCKS_H */
