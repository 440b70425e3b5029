/*
 * worker.c: the loop of a worker process.
 *
 * DESIGN
 * A worker is forked by the fork server and never exec'd: a task function
 * pointer in a frame means the same function here. It is single-threaded
 * (unless a task starts threads) and uses blocking I/O: the parent's manager
 * never blocks on its pipes, so a worker writing a large result while the
 * parent writes it a large argument cannot deadlock.
 *
 * Each task frame names a cell and a generation. Before running the task the
 * worker flips the cell's shared claim word from SENT to CLAIMED by CAS; if
 * the parent (or a future_cancel) flipped it to CANCELLED first, or the cell
 * was reused, the frame is skipped and nothing is answered. That claim is
 * what "started" means for cancellation and for worker deaths.
 *
 * Answers: a plain result of up to CF_ANSWER_INLINE bytes from a task that
 * met its deadline goes into the cell's shared answer record (worker.h); a
 * NOTE frame tells the parent to collect such answers. A NOTE is written
 * before a task when no other complete frame is buffered behind it, after a
 * task that ran NOTE_NS or longer, after NOTE_MAX answers or NOTE_NS since
 * the first, and before blocking on read. So short tasks sent ahead cost one
 * write per batch, and an answer held back while a later task runs is found
 * by the parent's scan of started tasks (process_pool.c). Other answers
 * (errors, bigger results, expired tasks) are frames in an output buffer,
 * written before the next task is claimed; big results are written straight
 * from the task's memory.
 *
 * Leaves with _exit(): 0 on EOF of the task pipe, after max_tasks_per_child
 * tasks, or after reporting an initializer failure; 1 on an I/O error.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "task.h"
#include "wire.h"
#include "worker.h"

/* Answers up to this size are copied into the output buffer. */
#define DIRECT_MIN (256 * 1024)
#define FLUSH_AT (64 * 1024)
#define IN_READ_MIN (64 * 1024)
/* Answers left in shared records are announced (a NOTE frame) after this
 * many, when this much time passed since the first, or before blocking. */
#define NOTE_MAX 32
#define NOTE_NS 20000

struct wbuf {
    unsigned char *p;
    size_t len, cap;
};

struct wstate {
    const struct cf_worker_cfg *cfg;
    int seat, in_fd, out_fd;
    struct wbuf in; /* unread bytes are [in_pos, in.len) */
    size_t in_pos;
    struct wbuf out;
    struct wbuf res; /* a chunk's answers, built before they are sent */
    void *scratch;   /* an aligned copy of a misaligned argument */
    size_t scratch_cap;
    int done;               /* tasks claimed */
    int unnoted;            /* answers in shared records not yet announced */
    int64_t first_unnoted;  /* when the first of them was left */
    _Atomic uint32_t *word; /* the claim word of the task being run */
    bool hooks;             /* CFUTURES_TEST_HOOKS was set */
};

static void die(void)
{
    _exit(1);
}

static void write_all(int fd, const void *p, size_t len)
{
    const unsigned char *b = p;
    while (len > 0) {
        ssize_t n = write(fd, b, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die();
        }
        b += n;
        len -= (size_t)n;
    }
}

static void reserve(struct wbuf *b, size_t more)
{
    if (b->cap - b->len >= more)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more)
        cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p)
        die();
    b->p = p;
    b->cap = cap;
}

static void append(struct wstate *w, const void *p, size_t len);

/* Queues a NOTE frame if answers were left in shared records since the last. */
static void note(struct wstate *w)
{
    if (!w->unnoted)
        return;
    unsigned char hdr[CF_WIRE_HDR];
    cf_wire_put_hdr(hdr, CF_WIRE_NOTE, 0, 0);
    append(w, hdr, sizeof(hdr));
    w->unnoted = 0;
}

static void flush(struct wstate *w)
{
    if (w->out.len)
        write_all(w->out_fd, w->out.p, w->out.len);
    w->out.len = 0;
}

static void append(struct wstate *w, const void *p, size_t len)
{
    reserve(&w->out, len);
    memcpy(w->out.p + w->out.len, p, len);
    w->out.len += len;
}

/* Queues one answer frame; a large payload is written straight out. */
static void answer(struct wstate *w, enum cf_wire_type type, uint64_t id, uint32_t flags,
                   const unsigned char *pre, size_t pre_len, const void *data, size_t len)
{
    unsigned char hdr[CF_WIRE_HDR];
    cf_wire_put_hdr(hdr, type, id, (uint64_t)pre_len + len);
    cf_wire_put_flags(hdr, flags);
    append(w, hdr, sizeof(hdr));
    if (pre_len)
        append(w, pre, pre_len);
    if (len >= DIRECT_MIN) {
        flush(w);
        write_all(w->out_fd, data, len);
    } else if (len) {
        append(w, data, len);
    }
    if (w->out.len >= FLUSH_AT)
        flush(w);
}

/* Test builds (DEADLOCK-08): writes half of a result frame, then dies. */
static void half_answer(struct wstate *w, uint64_t id, const void *data, size_t len)
{
    unsigned char hdr[CF_WIRE_HDR];
    cf_wire_put_hdr(hdr, CF_WIRE_RESULT, id, len);
    flush(w);
    write_all(w->out_fd, hdr, sizeof(hdr));
    write_all(w->out_fd, data, len / 2);
    _exit(1);
}

static void answer_error(struct wstate *w, enum cf_wire_type type, uint64_t id,
                         uint32_t flags, int code, const char *msg)
{
    unsigned char pre[CF_WIRE_ERROR_FIXED];
    cf_wire_put_error(pre, code);
    size_t n = msg ? strlen(msg) : 0;
    answer(w, type, id, flags, pre, sizeof(pre), msg, CF_MIN(n, (size_t)CF_WIRE_MAX_MSG));
}

static void run_initializer(struct wstate *w)
{
    const struct cf_worker_cfg *c = w->cfg;
    if (!c->initializer)
        return;
    struct task t;
    cf_task_init(&t, NULL, c->initarg_len ? c->initarg : NULL, c->initarg_len,
                 CF_NO_DEADLINE);
    c->initializer(&t);
    if (t.answer == CF_ANSWER_ERROR) {
        answer_error(w, CF_WIRE_INITFAIL, 0, 0, t.err_code,
                     t.err_msg ? t.err_msg : "(no message)");
        flush(w);
        _exit(0);
    }
    cf_task_clear(&t);
}

/* True if this worker now owns the task in @id (it may run it). */
static bool claim(struct wstate *w, uint64_t id)
{
    uint32_t cell = CF_TASK_ID_CELL(id);
    if (cell >= (uint32_t)w->cfg->depth || (id & 0xffffffffu) > CF_CELL_GEN_MASK)
        die(); /* the parent never sends this: something is badly wrong */
    _Atomic uint32_t *word = &w->cfg->claims[(size_t)w->seat * w->cfg->depth + cell];
    uint32_t expect = CF_CELL_WORD(CF_TASK_ID_GEN(id), CF_CELL_SENT);
    w->word = word;
    return atomic_compare_exchange_strong(
        word, &expect, CF_CELL_WORD(CF_TASK_ID_GEN(id), CF_CELL_CLAIMED));
}

static const void *aligned_arg(struct wstate *w, const void *arg, size_t len)
{
    if (!arg || ((uintptr_t)arg & 15) == 0)
        return arg;
    if (w->scratch_cap < len) {
        free(w->scratch);
        w->scratch = malloc(len);
        if (!w->scratch)
            die();
        w->scratch_cap = len;
    }
    memcpy(w->scratch, arg, len);
    return w->scratch;
}

/* Runs @fn on one argument; the answer is left in @t. */
static void run_item(struct wstate *w, task_fn fn, const void *arg, size_t arg_len,
                     int64_t limit_ns, struct task *t)
{
    int64_t deadline = limit_ns > 0 ? cf_now_ns() + limit_ns : CF_NO_DEADLINE;
    cf_task_init(t, NULL, aligned_arg(w, arg, arg_len), arg_len, deadline);
    t->stop_word = w->word;
    t->stop_bit = CF_CELL_STOP;
    fn(t);
}

static void res_append(struct wstate *w, const void *p, size_t len)
{
    reserve(&w->res, len);
    if (len)
        memcpy(w->res.p + w->res.len, p, len);
    w->res.len += len;
}

/* A map chunk: claimed as one, its answers sent as one RESULTS frame. */
static void run_chunk(struct wstate *w, const struct cf_wire_hdr *h, const void *payload)
{
    uint64_t fn_bits, count, off = CF_WIRE_CHUNK_FIXED;
    int64_t limit_ns;
    const void *arg;
    size_t arg_len;
    if (cf_wire_get_chunk(payload, h->len, &fn_bits, &limit_ns, &count) != 0)
        die();
    for (uint64_t j = 0; j < count; j++)
        if (cf_wire_next_item(payload, h->len, &off, &arg, &arg_len) != 0)
            die();
    if (!claim(w, h->id))
        return;
    w->done += (int)CF_MIN(count, (uint64_t)INT_MAX / 2);
    task_fn fn = (task_fn)(uintptr_t)fn_bits;
    unsigned char word[CF_WIRE_ANSWER_HDR];
    w->res.len = 0;
    cf_wire_put_count(word, count);
    res_append(w, word, CF_WIRE_RESULTS_FIXED);
    off = CF_WIRE_CHUNK_FIXED;
    for (uint64_t j = 0; j < count; j++) {
        cf_wire_next_item(payload, h->len, &off, &arg, &arg_len);
        struct task t;
        run_item(w, fn, arg, arg_len, limit_ns, &t);
        size_t rlen = t.answer == CF_ANSWER_RESULT ? t.len : 0;
        /* Keep the answer frame under the maximum, with room for the rest. */
        uint64_t rest = (count - j) * (uint64_t)(CF_WIRE_ANSWER_HDR + 64);
        bool too_big = (uint64_t)w->res.len + rlen + rest > CF_WIRE_MAX_PAYLOAD;
        if (t.answer == CF_ANSWER_ERROR || too_big) {
            const char *m = too_big     ? "the chunk's results exceed the frame maximum"
                            : t.err_msg ? t.err_msg
                                        : "(no memory for the error message)";
            size_t n = CF_MIN(strlen(m), (size_t)CF_WIRE_MAX_MSG);
            cf_wire_put_answer(word, 1, too_big ? E2BIG : t.err_code, n);
            res_append(w, word, sizeof(word));
            res_append(w, m, n);
        } else {
            cf_wire_put_answer(word, 0, 0, rlen);
            res_append(w, word, sizeof(word));
            res_append(w, t.data, rlen);
        }
        cf_task_clear(&t);
    }
    answer(w, CF_WIRE_RESULTS, h->id, 0, NULL, 0, w->res.p, w->res.len);
}

/*
 * Leaves a small plain result in the task's shared answer record. Only short
 * tasks' answers wait for a batch: one that ran NOTE_NS or more, a batch of
 * NOTE_MAX, or one whose first answer is NOTE_NS old is announced at once.
 */
static void answer_shared(struct wstate *w, uint64_t id, const void *data, size_t len,
                          int64_t started)
{
    struct cf_answer_rec *a =
        &w->cfg->answers[(size_t)w->seat * w->cfg->depth + CF_TASK_ID_CELL(id)];
    a->len = (uint32_t)len;
    if (len)
        memcpy(a->data, data, len);
    atomic_store_explicit(&a->tag, CF_ANSWER_TAG(CF_TASK_ID_GEN(id)),
                          memory_order_release);
    int64_t now = cf_now_ns();
    if (w->unnoted++ == 0)
        w->first_unnoted = now;
    if (w->unnoted >= NOTE_MAX || now - w->first_unnoted >= NOTE_NS ||
        now - started >= NOTE_NS) {
        note(w);
        flush(w);
    }
}

/* A plain result (@len bytes, 0 for none): in the shared record when it fits. */
static void answer_result(struct wstate *w, uint64_t id, uint32_t flags, const void *data,
                          size_t len, int64_t started)
{
    if (flags == 0 && len <= CF_ANSWER_INLINE)
        answer_shared(w, id, data, len, started);
    else
        answer(w, CF_WIRE_RESULT, id, flags, NULL, 0, data, len);
}

static void run_task(struct wstate *w, const struct cf_wire_hdr *h, const void *payload)
{
    uint64_t fn_bits;
    int64_t limit_ns;
    const void *arg;
    size_t arg_len;
    if (cf_wire_get_task(payload, h->len, &fn_bits, &limit_ns, &arg, &arg_len) != 0)
        die();
    /* Test builds: a worker that dies while receiving this task (DEADLOCK-02). */
    if (w->hooks && arg_len >= 14 && memcmp(arg, "CF-FAULT-EXIT!", 14) == 0)
        _exit(1);
    if (!claim(w, h->id))
        return; /* cancelled or revoked before it started: skip it */
    w->done++;
    struct task t;
    int64_t started = cf_now_ns();
    run_item(w, (task_fn)(uintptr_t)fn_bits, arg, arg_len, limit_ns, &t);
    /* As in a thread: a task past its own deadline fails, whatever it answered. */
    uint32_t flags =
        t.deadline != CF_NO_DEADLINE && cf_now_ns() >= t.deadline ? CF_WIRE_F_EXPIRED : 0;
    switch (t.answer) {
    case CF_ANSWER_ERROR:
        answer_error(w, CF_WIRE_ERROR, h->id, flags, t.err_code,
                     t.err_msg ? t.err_msg : "(no memory for the error message)");
        break;
    case CF_ANSWER_RESULT:
        if (t.len > CF_WIRE_MAX_PAYLOAD) {
            /* Cannot be sent: an ordinary task error, the worker lives on. */
            answer_error(w, CF_WIRE_ERROR, h->id, flags, E2BIG,
                         "the task's result is larger than the 4 GiB frame maximum");
            break;
        }
        if (w->hooks && t.len >= 14 && memcmp(t.data, "CF-FAULT-HALF!", 14) == 0)
            half_answer(w, h->id, t.data, t.len); /* test builds: dies mid-frame */
        answer_result(w, h->id, flags, t.data, t.len, started);
        break;
    default:
        answer_result(w, h->id, flags, NULL, 0, started);
        break;
    }
    cf_task_clear(&t);
}

/* Runs every complete frame buffered; returns the bytes the next one needs. */
static size_t run_buffered(struct wstate *w)
{
    for (;;) {
        size_t avail = w->in.len - w->in_pos;
        struct cf_wire_hdr h;
        int rc = cf_wire_get_hdr(w->in.p + w->in_pos, avail, &h);
        if (rc == CF_WIRE_NEED_MORE)
            return CF_WIRE_HDR;
        if (rc != CF_WIRE_OK || (h.type != CF_WIRE_TASK && h.type != CF_WIRE_CHUNK))
            die();
        size_t need = CF_WIRE_HDR + (size_t)h.len;
        if (avail < need)
            return need;
        w->in_pos += need;
        /*
         * Hand earlier pipe answers over before claiming another task: if
         * this worker dies in the next one, only that one may be lost.
         * Answers in shared records are safe already; they wait for a NOTE
         * only while another task is buffered behind this one, which the
         * parent sees as not started and so scans for (process_pool.c).
         */
        struct cf_wire_hdr next;
        size_t rest = w->in.len - w->in_pos;
        if (cf_wire_get_hdr(w->in.p + w->in_pos, rest, &next) != CF_WIRE_OK ||
            rest < CF_WIRE_HDR + next.len)
            note(w);
        flush(w);
        if (h.type == CF_WIRE_CHUNK)
            run_chunk(w, &h, w->in.p + w->in_pos - h.len);
        else
            run_task(w, &h, w->in.p + w->in_pos - h.len);
        if (w->cfg->max_tasks > 0 && w->done >= w->cfg->max_tasks) {
            note(w);
            flush(w);
            _exit(0);
        }
    }
}

void cf_worker_main(const struct cf_worker_cfg *cfg, int seat, int in_fd, int out_fd)
{
    struct wstate w = {.cfg = cfg, .seat = seat, .in_fd = in_fd, .out_fd = out_fd};
    w.hooks = getenv("CFUTURES_TEST_HOOKS") != NULL;
    if (w.hooks) {
        /* Test builds: a task may find its own result pipe (garbage tests). */
        char fd[16];
        snprintf(fd, sizeof(fd), "%d", out_fd);
        setenv("CFUTURES_WORKER_RESULT_FD", fd, 1);
    }
    run_initializer(&w);
    for (;;) {
        size_t need = run_buffered(&w);
        /* Nothing runnable is left: hand the answers over before blocking. */
        note(&w);
        flush(&w);
        if (w.in_pos > 0) {
            memmove(w.in.p, w.in.p + w.in_pos, w.in.len - w.in_pos);
            w.in.len -= w.in_pos;
            w.in_pos = 0;
        }
        reserve(&w.in, CF_MAX(need - CF_MIN(need, w.in.len), (size_t)IN_READ_MIN));
        ssize_t n = read(in_fd, w.in.p + w.in.len, w.in.cap - w.in.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die();
        if (n == 0)
            _exit(0);
        w.in.len += (size_t)n;
    }
}
