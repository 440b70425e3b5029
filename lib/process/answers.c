/*
 * answers.c: what workers send back: reading their pipes, validating each
 * frame (a malformed one kills the worker: protocol_error), collecting
 * answers left in the shared records (harvest), and completing futures. Also
 * cf_pp_chunk_next, which reads a map chunk's answers back for map.c. The
 * overview is in internal.h.
 *
 * Runs on the manager thread, except cf_pp_chunk_next (any thread, pure).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocks.h"
#include "internal.h"

void cf_pp_fail(struct process_pool *p, struct pp_work *w, int status, int exit_code,
                int sig, const char *msg)
{
    future_t *f = cf_work_future(&w->base);
    if (w->started) {
        if (!w->expired) {
            cf_executor_finished(&p->base, true);
            cf_future_fail(f, status, 0, exit_code, sig, msg);
        }
    } else if (cf_future_fail(f, status, 0, exit_code, sig, msg) == 0) {
        cf_executor_dropped(&p->base);
    }
    cf_pp_work_drop(&w->base);
}

/*
 * Completes one item with a result (@kind 0) or an error message (1). The
 * counters move first, so a caller woken by the future sees them updated
 * (only the manager completes these futures: the outcome is known here).
 */
static void complete_one(struct process_pool *p, struct pp_work *w, uint32_t kind,
                         int32_t code, const unsigned char *data, size_t len)
{
    future_t *f = cf_work_future(&w->base);
    if (w->expired) {
        cf_pp_work_drop(&w->base); /* failed and counted when its deadline passed */
        return;
    }
    char *msg = NULL;
    void *copy = NULL;
    if (kind == 1) {
        msg = malloc(len + 1);
        if (msg) {
            if (len)
                memcpy(msg, data, len);
            msg[len] = '\0';
        }
    } else if (len > CF_INLINE_MAX) {
        copy = cf_block_dup(data, len);
    }
    cf_executor_finished(&p->base, kind == 1 || (len > CF_INLINE_MAX && !copy));
    if (kind == 1) {
        cf_future_fail(f, FUT_ETASK, code, -1, 0,
                       msg ? msg : "(no memory for the error message)");
        free(msg);
    } else if (len == 0) {
        cf_future_set_result(f, NULL, 0, NULL); /* an empty result has no data */
    } else if (len <= CF_INLINE_MAX) {
        cf_future_set_result_inline(f, data, len);
    } else if (copy) {
        cf_future_set_result(f, copy, len, cf_block_free);
    } else {
        cf_future_fail(f, FUT_ENOMEM, 0, -1, 0, "no memory for the task's result");
    }
    cf_pp_work_drop(&w->base);
}

/* A whole answer frame for cell @i of @pr. */
static void complete(struct process_pool *p, struct pp_proc *pr, int i,
                     const struct cf_wire_hdr *h, const unsigned char *payload)
{
    struct pp_work *w = pr->cell[i];
    cf_pp_mark_started(p, pr, w);
    cf_pp_cell_release(p, pr, i);
    if (h->type == CF_WIRE_RESULTS) {
        /* A map chunk as one task: its result is the answers, read by chunk_next. */
        complete_one(p, w, 0, 0, payload, (size_t)h->len);
        return;
    }
    if (h->flags & CF_WIRE_F_EXPIRED) {
        if (!w->expired) {
            cf_executor_finished(&p->base, true);
            cf_work_expire(&w->base);
        }
        cf_pp_work_drop(&w->base);
    } else if (h->type == CF_WIRE_ERROR) {
        int32_t code;
        const char *msg;
        size_t mlen;
        cf_wire_get_error(payload, h->len, &code, &msg, &mlen);
        complete_one(p, w, 1, code, (const unsigned char *)msg, mlen);
    } else {
        complete_one(p, w, 0, 0, payload, (size_t)h->len);
    }
}

/* True if a RESULTS payload holds exactly @n well-formed answers. */
static bool results_ok(const struct cf_wire_hdr *h, const unsigned char *payload,
                       uint32_t n)
{
    uint64_t count, off = CF_WIRE_RESULTS_FIXED;
    if (cf_wire_get_count(payload, h->len, &count) != 0 || count != n)
        return false;
    for (uint64_t j = 0; j < count; j++) {
        uint32_t kind;
        int32_t code;
        const void *data;
        size_t len;
        if (cf_wire_next_answer(payload, h->len, &off, &kind, &code, &data, &len) != 0)
            return false;
    }
    return off == h->len;
}

/* A frame from @pr is wrong: kill the worker, remember why. */
static void protocol_error(struct pp_proc *pr, const char *what)
{
    if (!pr->why[0])
        snprintf(pr->why, sizeof(pr->why), "malformed frame from the worker: %s", what);
    pr->eof = true; /* read no more from it */
    cf_pp_signal(pr, SIGKILL);
}

/*
 * @pr's last words (DEADLOCK-03, LOKY-22): a task frame failed its checks,
 * and it exits 1 (worker.c). Its message goes into the messages of the
 * tasks its death fails (cf_pp_finalize).
 */
static void rejected(struct pp_proc *pr, const unsigned char *payload, uint64_t len)
{
    int32_t code;
    const char *msg;
    size_t mlen;
    cf_wire_get_error(payload, len, &code, &msg, &mlen);
    snprintf(pr->why, sizeof(pr->why), "%.*s", (int)CF_MIN(mlen, sizeof(pr->why)), msg);
    if (!pr->why[0])
        snprintf(pr->why, sizeof(pr->why), "bad task frame");
    pr->rejected = true;
    pr->eof = true; /* read no more from it */
}

/*
 * Completes each task of @pr whose answer waits in its shared record (worker.h):
 * on a NOTE frame, and once the worker is gone.
 */
bool cf_pp_harvest(struct process_pool *p, struct pp_proc *pr)
{
    bool any = false;
    for (int i = cf_pp_next_cell(pr->used, 0); i < DEPTH;
         i = cf_pp_next_cell(pr->used, i + 1)) {
        struct pp_work *w = pr->cell[i];
        if (w->chunk_n)
            continue;
        size_t idx = cell_index(pr, i);
        if (!cf_pp_cell_claimed(p, pr, i) ||
            atomic_load_explicit(&p->answers[idx].tag, memory_order_acquire) !=
                CF_ANSWER_TAG(p->gens[idx]))
            continue;
        unsigned char data[CF_ANSWER_INLINE];
        size_t len = p->answers[idx].len;
        if (len > CF_ANSWER_INLINE) {
            /* The worker that ran it wrote this (maybe another seat's): that
               one is killed, and its death fails the task; the others' go on. */
            struct pp_proc *runner = cf_pp_cell_runner_proc(p, pr, i);
            protocol_error(runner ? runner : pr, "an answer record longer than its room");
            continue;
        }
        memcpy(data, p->answers[idx].data, len);
        cf_pp_mark_started(p, pr, w);
        cf_pp_cell_release(p, pr, i);
        complete_one(p, w, 0, 0, data, len);
        any = true;
    }
    return any;
}

/*
 * Harvests every seat's cells: a worker leaves answers in the records of
 * whichever seat's cells it took from the shared queue.
 */
bool cf_pp_harvest_all(struct process_pool *p)
{
    bool any = false;
    for (int s = 0; s < p->nseats; s++)
        if (p->seats[s] && p->seats[s]->ncells > 0)
            any |= cf_pp_harvest(p, p->seats[s]);
    return any;
}

/* A worker's initializer failed: the pool cannot run anything (Python's behaviour). */
static void init_failed(struct process_pool *p, const unsigned char *payload,
                        uint64_t len)
{
    int32_t code;
    const char *msg;
    size_t mlen;
    cf_wire_get_error(payload, len, &code, &msg, &mlen);
    char m[CF_WIRE_MAX_MSG + 64];
    snprintf(m, sizeof(m), "a worker initializer failed: %.*s", (int)mlen, msg);
    cf_pp_break(p, m);
}

/*
 * The seat holding the cell an answer frame @h from @pr is for, once checked:
 * the frame names a task @pr claimed (cell, generation, its own claim; the
 * cell may be another seat's, taken from the shared queue) and has the shape
 * of that task's answer. The cell within the seat in *cell; NULL after a
 * protocol error.
 */
static struct pp_proc *answer_cell(struct process_pool *p, struct pp_proc *pr,
                                   const struct cf_wire_hdr *h,
                                   const unsigned char *payload, int *cell)
{
    size_t idx = CF_TASK_ID_CELL(h->id);
    struct pp_proc *o = idx < (size_t)p->nseats * DEPTH ? p->seats[idx / DEPTH] : NULL;
    int i = (int)(idx % DEPTH);
    if (!o || !o->cell[i] || CF_TASK_ID_GEN(h->id) != p->gens[idx] ||
        (h->id & 0xffffffffu) > CF_CELL_GEN_MASK ||
        cf_pp_cell_runner(p, o, i) != pr->seat) {
        protocol_error(pr, "an answer for a task it does not hold");
        return NULL;
    }
    uint32_t n = o->cell[i]->chunk_n;
    if ((h->type == CF_WIRE_RESULTS) != (n > 0) ||
        (h->type == CF_WIRE_RESULTS && !results_ok(h, payload, n))) {
        protocol_error(pr, "an answer that does not match its task");
        return NULL;
    }
    *cell = i;
    return o;
}

/* Handles one whole frame from @pr. False: read no more of its input now. */
static bool handle_frame(struct process_pool *p, struct pp_proc *pr,
                         const struct cf_wire_hdr *h, const unsigned char *payload)
{
    if (h->type == CF_WIRE_INITFAIL) {
        init_failed(p, payload, h->len);
        return false;
    }
    if (h->type == CF_WIRE_REJECT) {
        rejected(pr, payload, h->len);
        return false;
    }
    if (h->type == CF_WIRE_NOTE) {
        if (h->id != 0) {
            protocol_error(pr, "a NOTE frame naming a task");
            return false;
        }
        cf_pp_harvest_all(p); /* its answers may be for any seat's cells */
        return true;
    }
    int i;
    struct pp_proc *o = answer_cell(p, pr, h, payload, &i);
    if (!o)
        return false;
    complete(p, o, i, h, payload);
    return true;
}

/* Handles every whole frame in @pr's input buffer. */
static void parse_input(struct process_pool *p, struct pp_proc *pr)
{
    struct cf_buf *b = &pr->in;
    while (!pr->why[0]) {
        size_t avail = b->len - b->off;
        struct cf_wire_hdr h;
        int rc = cf_wire_get_hdr(b->p + b->off, avail, &h);
        if (rc == CF_WIRE_NEED_MORE)
            return;
        if (rc != CF_WIRE_OK) {
            protocol_error(pr, cf_wire_strerror(rc));
            return;
        }
        if (h.type == CF_WIRE_TASK || h.type == CF_WIRE_CHUNK ||
            h.type == CF_WIRE_FAILED) {
            protocol_error(pr, "a task or MPI frame from a worker");
            return;
        }
        size_t need = CF_WIRE_HDR + (size_t)h.len;
        if (avail < need)
            return;
        const unsigned char *payload = b->p + b->off + CF_WIRE_HDR;
        cf_buf_consume(b, need); /* the bytes stay where they are until the next read */
        if (!handle_frame(p, pr, &h, payload))
            return;
    }
}

/* Reads what @pr wrote; @drain: until EAGAIN (it is dead). */
void cf_pp_read(struct process_pool *p, struct pp_proc *pr, bool drain)
{
    for (int rounds = 0; drain || rounds < 8; rounds++) {
        if (pr->from_fd < 0 || (pr->eof && pr->why[0]))
            return;
        struct cf_buf *b = &pr->in;
        size_t want = READ_BYTES;
        struct cf_wire_hdr h;
        if (cf_wire_get_hdr(b->p + b->off, b->len - b->off, &h) == CF_WIRE_OK) {
            size_t need = CF_WIRE_HDR + (size_t)h.len, have = b->len - b->off;
            if (need > have)
                want = CF_MAX(want, CF_MIN(need - have, (size_t)READ_AHEAD));
        }
        if (!cf_buf_reserve(b, want)) {
            protocol_error(pr, "no memory for its frame");
            return;
        }
        ssize_t n = read(pr->from_fd, b->p + b->len, b->cap - b->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return; /* EAGAIN (or an error: its EXITED report decides) */
        if (n == 0) {
            pr->eof = true;
            return;
        }
        b->len += (size_t)n;
        parse_input(p, pr);
    }
}

/*
 * The next answer in a chunk's result (a RESULTS payload, checked by
 * results_ok when it came in). *cursor 0 is the first answer.
 */
int cf_pp_chunk_next(const void *res, size_t res_len, size_t *cursor, const void **data,
                     size_t *len)
{
    uint64_t off = *cursor ? *cursor : CF_WIRE_RESULTS_FIXED;
    uint32_t kind;
    int32_t code;
    /* Past the last answer; a bad one cannot happen (results_ok checked each). */
    if (off >= res_len ||
        cf_wire_next_answer(res, res_len, &off, &kind, &code, data, len) != CF_WIRE_OK) {
        *data = NULL;
        *len = 0;
        return FUT_EOF;
    }
    *cursor = (size_t)off;
    if (kind == 0)
        return 0;
    *data = NULL; /* the error message is not the item's result */
    *len = 0;
    return FUT_ETASK;
}
