/*
 * worker.h: the loop a process pool's worker runs (in the forked process).
 */
#ifndef CF_WORKER_H
#define CF_WORKER_H

#include <cfutures.h>

#include <stdatomic.h>
#include <stdint.h>

/*
 * One claim word per task cell, in memory shared by the parent and every
 * worker (MAP_SHARED, mapped before the fork server is forked). The low two
 * bits are the state, bit 2 asks a claimed task to stop (future_cancel on a
 * running task: task_should_stop), bits 3-14 name the seat of the worker that
 * claimed it (any worker may claim a cell of the shared queue, below), the
 * rest is the cell's generation, bumped each time the parent reuses the cell;
 * a frame or a queue entry names the generation it was sent with, so a stale
 * one can never claim a later task.
 */
enum {
    CF_CELL_FREE = 0,
    CF_CELL_SENT = 1,      /* parent: frame written, may still be revoked */
    CF_CELL_CLAIMED = 2,   /* worker: started it (CAS from SENT) */
    CF_CELL_CANCELLED = 3, /* parent or a canceller: revoked (CAS from SENT) */
};
#define CF_CELL_STOP 4u
#define CF_CELL_RUNNER_SHIFT 3
#define CF_CELL_RUNNER_MASK (0xfffu << CF_CELL_RUNNER_SHIFT)
#define CF_CELL_GEN_SHIFT 15
#define CF_CELL_GEN_MASK 0x1ffffu
#define CF_CELL_MAX_SEATS 4096
#define CF_CELL_WORD(gen, state)                                                         \
    (((uint32_t)(gen) << CF_CELL_GEN_SHIFT) | (uint32_t)(state))
/* The word of a cell claimed by the worker in @seat. */
#define CF_CELL_CLAIMED_BY(gen, seat)                                                    \
    (CF_CELL_WORD(gen, CF_CELL_CLAIMED) | ((uint32_t)(seat) << CF_CELL_RUNNER_SHIFT))
/* A word without its stop bit and claimer: compare with CF_CELL_WORD. */
#define CF_CELL_KEY(w) ((w) & ~(CF_CELL_STOP | CF_CELL_RUNNER_MASK))
#define CF_CELL_RUNNER(w) ((int)(((w)&CF_CELL_RUNNER_MASK) >> CF_CELL_RUNNER_SHIFT))

/* A task frame's id: its cell (index among all cells), and the generation. */
#define CF_TASK_ID(cell, gen) (((uint64_t)(cell) << 32) | (uint64_t)(gen))
#define CF_TASK_ID_CELL(id) ((uint32_t)((id) >> 32))
#define CF_TASK_ID_GEN(id) ((uint32_t)(id)&CF_CELL_GEN_MASK)

/*
 * The shared queue. A task whose argument fits in a cell's slot (and that is
 * not a map chunk) is not written to a worker's pipe: the parent writes it
 * into its cell's slot and appends the cell to one queue shared by every
 * worker, in send order. A free worker claims the oldest entry whose cell is
 * still SENT (CAS to CLAIMED with its seat), whichever seat the cell is in,
 * so a free worker always starts the oldest task not started (Python's
 * order), and no task waits behind a busy worker. `head` only moves past an
 * entry whose cell is no longer SENT; `tail` is the parent's alone. An
 * entry is (position tag, cell, generation): a reader that finds another
 * position's tag reads `head` again.
 *
 * A worker with nothing to do sets CF_SEAT_ASLEEP in its seat word and
 * blocks reading its pipe; the parent, having appended entries, clears the
 * bit of sleepers (CAS) and writes each a NOTE frame to wake it. A worker
 * whose seat word has CF_SEAT_QUIT (the pool shrank past it, or is closing)
 * takes no more queued tasks. A bigger argument, or a map chunk's items
 * (as a CHUNK frame's payload), goes into the argument heap (heap.c), also
 * shared, and the slot names where. Other tasks (over 1 MiB, the heap full)
 * still go in a frame to one worker's pipe; the slot then holds only
 * `stamp`, the queue's tail when it was sent, and the worker first takes
 * the queue's entries older than that.
 * `bound` counts the frames of that kind the parent has queued for the seat.
 */
#define CF_SLOT_ARG 96
enum { CF_SLOT_INLINE, CF_SLOT_HEAP, CF_SLOT_CHUNK };
struct cf_task_slot {
    uint64_t fn;
    int64_t limit_ns;
    uint64_t stamp;   /* a piped task: the queue's tail when it was sent */
    uint32_t arg_len; /* the argument's bytes, or a chunk's CHUNK payload's */
    uint32_t where;   /* CF_SLOT_INLINE: in arg; else at heap_off in the heap */
    union {
        unsigned char arg[CF_SLOT_ARG]; /* 16-byte aligned: slots are 128 bytes */
        uint64_t heap_off;
    } u;
};

#define CF_RING_TAG_SHIFT 35
#define CF_RING_TAG_MASK ((1ull << (64 - CF_RING_TAG_SHIFT)) - 1)
#define CF_RING_CELL_SHIFT 17 /* past the generation's 17 bits */
#define CF_RING_ENTRY(pos, cell, gen)                                                    \
    ((((uint64_t)(pos)&CF_RING_TAG_MASK) << CF_RING_TAG_SHIFT) |                         \
     ((uint64_t)(cell) << CF_RING_CELL_SHIFT) | (uint64_t)(gen))
/* An entry's cell (18 bits: 4096 seats of 64) and generation. */
#define CF_RING_CELL(e) ((uint32_t)((e) >> CF_RING_CELL_SHIFT) & 0x3ffffu)
#define CF_RING_GEN(e) ((uint32_t)(e)&CF_CELL_GEN_MASK)
struct cf_ring {
    _Atomic uint64_t head;
    char pad1[56];
    _Atomic uint64_t tail;
    char pad2[56];
    _Atomic uint64_t ent[]; /* mask + 1 entries */
};

#define CF_SEAT_ASLEEP 1u
#define CF_SEAT_QUIT 2u
#define CF_SEAT_INIT 4u /* set at spawn, cleared once the initializer returned */
/*
 * `running` is CF_RUN_WORD of the task this seat's worker runs, stored
 * before its claim and swapped for 0 when the task returns. A deadline's
 * kill first swaps it for CF_RUN_DOOMED (CAS): if the worker has already
 * returned from the task (and may run the next), the CAS fails and the
 * worker is left alone; if the CAS wins, the worker finds CF_RUN_DOOMED
 * when the task returns, answers nothing and waits for its signal.
 */
#define CF_RUN_WORD(cell, gen) (CF_TASK_ID(cell, gen) + 1)
#define CF_RUN_DOOMED UINT64_MAX
struct cf_seat_word {
    _Atomic uint32_t flags;
    _Atomic uint32_t bound; /* piped task frames queued for this seat */
    char pad[56];
    /* Its own cache line: the worker writes it twice a task, and the manager
       reads `flags` of every seat on each pass. */
    _Atomic uint64_t running; /* see above */
    char pad2[56];
};

/*
 * One answer record per task cell, beside the claim words (same index, also
 * shared). A worker leaves a small plain result here instead of writing a
 * RESULT frame, and writes one NOTE frame for a batch of them, so a pool of
 * tiny tasks makes one write per batch, not per task. The result lives in
 * shared memory from the moment the task returns: if the worker dies later
 * in the batch, the parent still finds it, and a dead worker still costs
 * only the task it was running.
 *
 * `tag` is CF_ANSWER_TAG(gen) once len and data are written (release); the
 * parent reads it with acquire and takes the answer only for the generation
 * it sent, so a record left from an earlier task never counts.
 */
#define CF_ANSWER_INLINE 56
#define CF_ANSWER_TAG(gen) (((uint32_t)(gen) << 1) | 1u)
struct cf_answer_rec {
    _Atomic uint32_t tag;
    uint32_t len; /* result bytes, at most CF_ANSWER_INLINE */
    unsigned char data[CF_ANSWER_INLINE];
};

/* What a worker needs, fixed when the pool is created (read after fork). */
struct cf_worker_cfg {
    _Atomic uint32_t *claims;      /* seats * depth words, shared */
    struct cf_answer_rec *answers; /* seats * depth records, shared */
    struct cf_task_slot *slots;    /* seats * depth slots, shared */
    struct cf_ring *ring;          /* the shared queue, or NULL (not used) */
    struct cf_seat_word *seatw;    /* one per seat, shared */
    const unsigned char *heap;     /* the argument heap (heap.c), or NULL */
    size_t heap_bytes;
    uint64_t ring_mask;
    uint32_t ncells;     /* seats * depth */
    task_fn initializer; /* may be NULL */
    const void *initarg; /* the creator's bytes, as they were at the fork */
    size_t initarg_len;
    int max_tasks;       /* 0: unlimited */
    uint64_t result_max; /* a task's result, at most (CF_WIRE_MAX_PAYLOAD or less) */
};

/*
 * The worker: runs the initializer, then reads task frames from @in_fd,
 * claims, runs and answers each on @out_fd, until EOF or max_tasks. Never
 * returns (_exit).
 */
void cf_worker_main(const struct cf_worker_cfg *cfg, int seat, int in_fd, int out_fd)
    __attribute__((noreturn));

#endif /* CF_WORKER_H */
