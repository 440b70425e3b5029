/*
 * worker.h: the loop a process pool's worker runs (in the forked process).
 */
#ifndef CF_WORKER_H
#define CF_WORKER_H

#include <cfutures.h>

#include <stdatomic.h>
#include <stdint.h>

/*
 * One claim word per task slot, in memory shared by the parent and every
 * worker (MAP_SHARED, mapped before the fork server is forked). The low two
 * bits are the state, bit 2 asks a claimed task to stop (future_cancel on a
 * running task: task_should_stop), the rest is the slot's generation, bumped
 * each time the parent reuses the slot; a frame names the generation it was
 * sent with, so a stale frame can never claim a later task.
 */
enum {
    CF_SLOT_FREE = 0,
    CF_SLOT_SENT = 1,      /* parent: frame written, may still be revoked */
    CF_SLOT_CLAIMED = 2,   /* worker: started it (CAS from SENT) */
    CF_SLOT_CANCELLED = 3, /* parent or a canceller: revoked (CAS from SENT) */
};
#define CF_SLOT_STOP 4u
#define CF_SLOT_STATE(w) ((w)&3u)
#define CF_SLOT_GEN(w) ((w) >> 3)
#define CF_SLOT_WORD(gen, state) (((uint32_t)(gen) << 3) | (uint32_t)(state))
#define CF_SLOT_BASE(w) ((w) & ~CF_SLOT_STOP)
#define CF_SLOT_GEN_MASK 0x1fffffffu

/* A task frame's id: its slot within the worker's seat, and the generation. */
#define CF_TASK_ID(slot, gen) (((uint64_t)(slot) << 32) | (uint64_t)(gen))
#define CF_TASK_ID_SLOT(id) ((uint32_t)((id) >> 32))
#define CF_TASK_ID_GEN(id) ((uint32_t)(id)&CF_SLOT_GEN_MASK)

/*
 * One answer record per task slot, beside the claim words (same index, also
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
    _Atomic uint32_t *claims; /* seats * depth words, shared */
    struct cf_answer_rec *answers; /* seats * depth records, shared */
    int depth;                /* slots per seat */
    task_fn initializer;      /* may be NULL */
    const void *initarg;      /* the creator's bytes, as they were at the fork */
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
