/*
 * wout.h: a worker's state (worker.c) and how it answers (wout.c): its
 * output buffer of answer frames, the shared answer records and the NOTE
 * frames that announce them. Worker processes only.
 */
#ifndef CF_WOUT_H
#define CF_WOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"
#include "wire.h"
#include "worker.h"

/* Answers up to this size are copied into the output buffer. */
#define DIRECT_MIN (256 * 1024)
#define FLUSH_AT (64 * 1024)
/* Answers left in shared records are announced (a NOTE frame) after this
 * many, when this much time passed since the first, or before blocking. */
#define NOTE_MAX 32
#define NOTE_NS 20000

struct wstate {
    const struct cf_worker_cfg *cfg;
    int seat, in_fd, out_fd;
    struct cf_buf in;  /* task frames read and not yet run: [off, len) */
    struct cf_buf out; /* answer frames not yet written: [off, len) */
    struct cf_buf res; /* a chunk's answers, built before they are sent */
    void *scratch;     /* an aligned copy of a misaligned argument */
    size_t scratch_cap;
    int done;               /* tasks claimed */
    int unnoted;            /* answers in shared records not yet announced */
    int64_t first_unnoted;  /* when the first of them was left */
    _Atomic uint32_t *word; /* the claim word of the task being run */
    bool announce;       /* the last task ran NOTE_NS or more: announce the next claim */
    bool spin;           /* the last wait for work was short: spin before sleeping */
    int64_t spin_ns;     /* WORKER_SPIN_NS (a test build may stretch it) */
    int64_t dry;         /* since when it found nothing to run, or 0 */
    uint32_t bound_seen; /* piped task frames taken from the buffer */
#ifdef CF_TEST_HOOKS
    bool hooks; /* CFUTURES_TEST_HOOKS was set */
    bool lag;   /* hook_result saw CF-FAULT-LAG!!: hook_lag stalls the next look */
#endif
};

/* Exits the worker (code 1): an I/O error, no memory, or a parent gone wrong. */
void cf_wk_die(void) __attribute__((noreturn));
/*
 * Writes what tasks printed (stdout, stderr), unless a thread a task left
 * holds the stream; a reader gone costs the lines, not the worker.
 */
void cf_wk_flush_std(void);
/* Leaves cleanly (exit status 0): what the tasks printed goes out first. */
void cf_wk_leave(void) __attribute__((noreturn));
/*
 * A task frame (or a queued task's slot) failed its checks: tells the parent
 * why ("bad task frame: @what") in a REJECT frame naming @id (the task this
 * worker claimed, or 0), with the answers before it, and exits 1.
 */
void cf_wk_reject(struct wstate *w, uint64_t id, const char *what)
    __attribute__((noreturn));
/* Writes all of @p (blocking), or dies. */
void cf_wk_write_all(int fd, const void *p, size_t len);
/* Queues a NOTE frame if answers were left in shared records since the last. */
void cf_wk_note(struct wstate *w);
/* Writes the queued answer frames. */
void cf_wk_flush(struct wstate *w);
/* Queues one answer frame (@pre, then @data); a large @data is written straight out. */
void cf_wk_answer(struct wstate *w, enum cf_wire_type type, uint64_t id, uint32_t flags,
                  const unsigned char *pre, size_t pre_len, const void *data, size_t len);
void cf_wk_answer_error(struct wstate *w, enum cf_wire_type type, uint64_t id,
                        uint32_t flags, int code, const char *msg);
/* Appends one answer to a chunk's RESULTS payload (w->res). */
void cf_wk_res_answer(struct wstate *w, uint32_t kind, int32_t code, const void *data,
                      size_t len);
/*
 * A plain result (@len bytes, 0 for none) of the task @id that ended at
 * @ended (w->announce says whether it ran NOTE_NS or more): in its shared
 * answer record when it fits, else a RESULT frame.
 */
void cf_wk_answer_result(struct wstate *w, uint64_t id, uint32_t flags, const void *data,
                         size_t len, int64_t ended);

#endif /* CF_WOUT_H */
