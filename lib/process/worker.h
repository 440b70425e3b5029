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
 * running task: task_should_stop), the rest is the cell's generation, bumped
 * each time the parent reuses the cell; a frame names the generation it was
 * sent with, so a stale frame can never claim a later task.
 */
enum {
    CF_CELL_FREE = 0,
    CF_CELL_SENT = 1,      /* parent: frame written, may still be revoked */
    CF_CELL_CLAIMED = 2,   /* worker: started it (CAS from SENT) */
    CF_CELL_CANCELLED = 3, /* parent or a canceller: revoked (CAS from SENT) */
};
#define CF_CELL_STOP 4u
#define CF_CELL_WORD(gen, state) (((uint32_t)(gen) << 3) | (uint32_t)(state))
#define CF_CELL_BASE(w) ((w) & ~CF_CELL_STOP)
#define CF_CELL_GEN_MASK 0x1fffffffu

/* A task frame's id: its cell within the worker's seat, and the generation. */
#define CF_TASK_ID(cell, gen) (((uint64_t)(cell) << 32) | (uint64_t)(gen))
#define CF_TASK_ID_CELL(id) ((uint32_t)((id) >> 32))
#define CF_TASK_ID_GEN(id) ((uint32_t)(id)&CF_CELL_GEN_MASK)

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
    int depth;                     /* cells per seat */
    task_fn initializer;           /* may be NULL */
    const void *initarg;           /* the creator's bytes, as they were at the fork */
    size_t initarg_len;
    int max_tasks; /* 0: unlimited */
};

/*
 * The worker: runs the initializer, then reads task frames from @in_fd,
 * claims, runs and answers each on @out_fd, until EOF or max_tasks. Never
 * returns (_exit).
 */
void cf_worker_main(const struct cf_worker_cfg *cfg, int seat, int in_fd, int out_fd)
    __attribute__((noreturn));

#endif /* CF_WORKER_H */
