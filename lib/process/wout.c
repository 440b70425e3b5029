/*
 * wout.c: how a worker answers (wout.h). Frames wait in an output buffer,
 * written before the next task is claimed or once FLUSH_AT bytes wait; a
 * result of DIRECT_MIN bytes or more is written straight from the task's
 * memory. A small plain result goes into the task's shared answer record
 * instead, announced by one NOTE frame for a batch (worker.c's DESIGN).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#ifdef HAVE___FPENDING
#include <stdio_ext.h>
#endif
#include <string.h>
#include <unistd.h>

#include "wout.h"

/* True if @f may hold bytes not yet written (without taking its lock). */
static bool pending(FILE *f)
{
#ifdef HAVE___FPENDING
    return __fpending(f) > 0;
#else
    (void)f;
    return true;
#endif
}

/* Flushes @f unless a thread the task left behind holds its lock. */
static void flush_unless_held(FILE *f)
{
    if (!pending(f) || ftrylockfile(f) != 0)
        return;
    fflush(f);
    funlockfile(f);
}

/*
 * Writes what tasks printed. A reader of stdout that has gone (prog | head)
 * costs the lines, not the worker: SIGPIPE is held back and dropped, as in
 * Python, which ignores it. A stream another thread of a task holds is left
 * as it is rather than waited for.
 */
void cf_wk_flush_std(void)
{
    if (!pending(stdout) && !pending(stderr))
        return;
    sigset_t pipe_sig, old, now;
    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_sig, &old);
    flush_unless_held(stdout);
    flush_unless_held(stderr);
    if (!sigismember(&old, SIGPIPE) && sigpending(&now) == 0 &&
        sigismember(&now, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_sig, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Leaves cleanly: what the tasks printed goes out first. */
void cf_wk_leave(void)
{
    cf_wk_flush_std();
    _exit(0);
}

void cf_wk_die(void)
{
    _exit(1);
}

void cf_wk_reject(struct wstate *w, uint64_t id, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "bad task frame: %s", what);
    cf_wk_answer_error(w, CF_WIRE_REJECT, id, 0, EPROTO, msg);
    cf_wk_flush(w);
    cf_wk_die();
}

void cf_wk_write_all(int fd, const void *p, size_t len)
{
    const unsigned char *b = p;
    while (len > 0) {
        ssize_t n = write(fd, b, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cf_wk_die();
        }
        b += n;
        len -= (size_t)n;
    }
}

/* Out of memory, the worker dies (the parent sees the death). */
static void append(struct wstate *w, const void *p, size_t len)
{
    if (!cf_buf_add(&w->out, p, len))
        cf_wk_die();
}

/* Queues a NOTE frame if answers were left in shared records since the last. */
void cf_wk_note(struct wstate *w)
{
    if (!w->unnoted)
        return;
    unsigned char hdr[CF_WIRE_HDR];
    cf_wire_put_hdr(hdr, CF_WIRE_NOTE, 0, 0);
    append(w, hdr, sizeof(hdr));
    w->unnoted = 0;
}

void cf_wk_flush(struct wstate *w)
{
    size_t n = w->out.len - w->out.off;
    if (n) {
        cf_wk_write_all(w->out_fd, w->out.p + w->out.off, n);
        w->out.off = w->out.len = 0; /* all written: cf_buf_consume's reset, inline */
    }
}

/* Queues one answer frame; a large payload is written straight out. */
void cf_wk_answer(struct wstate *w, enum cf_wire_type type, uint64_t id, uint32_t flags,
                  const unsigned char *pre, size_t pre_len, const void *data, size_t len)
{
    unsigned char hdr[CF_WIRE_HDR];
    cf_wire_put_hdr(hdr, type, id, (uint64_t)pre_len + len);
    cf_wire_put_flags(hdr, flags);
    append(w, hdr, sizeof(hdr));
    if (pre_len)
        append(w, pre, pre_len);
    if (len >= DIRECT_MIN) {
        cf_wk_flush(w);
        cf_wk_write_all(w->out_fd, data, len);
    } else if (len) {
        append(w, data, len);
    }
    if (w->out.len - w->out.off >= FLUSH_AT)
        cf_wk_flush(w);
}

void cf_wk_answer_error(struct wstate *w, enum cf_wire_type type, uint64_t id,
                        uint32_t flags, int code, const char *msg)
{
    unsigned char pre[CF_WIRE_ERROR_FIXED];
    cf_wire_put_error(pre, code);
    size_t n = msg ? strlen(msg) : 0;
    cf_wk_answer(w, type, id, flags, pre, sizeof(pre), msg,
                 CF_MIN(n, (size_t)CF_WIRE_MAX_MSG));
}

/* Appends one answer to a chunk's RESULTS payload: no call while there is room. */
void cf_wk_res_answer(struct wstate *w, uint32_t kind, int32_t code, const void *data,
                      size_t len)
{
    struct cf_buf *b = &w->res;
    if (b->cap - b->len < CF_WIRE_ANSWER_ROOM(len) &&
        !cf_buf_reserve(b, CF_WIRE_ANSWER_ROOM(len)))
        cf_wk_die();
    b->len += cf_wire_put_padded_answer(b->p + b->len, kind, code, data, len);
}

/*
 * Leaves a small plain result in the task's shared answer record. Only short
 * tasks' answers wait for a batch: one that ran NOTE_NS or more, a batch of
 * NOTE_MAX, or one whose first answer is NOTE_NS old is announced at once.
 */
static void answer_shared(struct wstate *w, uint64_t id, const void *data, size_t len,
                          int64_t now)
{
    struct cf_answer_rec *a = &w->cfg->answers[CF_TASK_ID_CELL(id)];
    a->len = (uint32_t)len;
    if (len)
        memcpy(a->data, data, len);
    atomic_store_explicit(&a->tag, CF_ANSWER_TAG(CF_TASK_ID_GEN(id)),
                          memory_order_release);
    if (w->unnoted++ == 0)
        w->first_unnoted = now;
    if (w->unnoted >= NOTE_MAX || now - w->first_unnoted >= NOTE_NS || w->announce) {
        cf_wk_note(w);
        cf_wk_flush(w);
    }
}

/* A plain result (@len bytes, 0 for none): in the shared record when it fits. */
void cf_wk_answer_result(struct wstate *w, uint64_t id, uint32_t flags, const void *data,
                         size_t len, int64_t ended)
{
    if (flags == 0 && len <= CF_ANSWER_INLINE)
        answer_shared(w, id, data, len, ended);
    else
        cf_wk_answer(w, CF_WIRE_RESULT, id, flags, NULL, 0, data, len);
}
