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
 * Most tasks come through the shared queue instead (worker.h): the worker
 * claims the oldest queued task still SENT, whichever worker's cell it is
 * in, and reads it from the cell's slot (a bigger argument from the shared
 * heap, heap.c). A piped frame waits while queued
 * tasks older than it (its slot's stamp) are there. With nothing to run,
 * the worker sets its ASLEEP bit, looks at the queue once more and blocks
 * in read(); the parent wakes it with a NOTE frame.
 *
 * Answers: a plain result of up to CF_ANSWER_INLINE bytes from a task that
 * met its deadline goes into the cell's shared answer record (worker.h); a
 * NOTE frame tells the parent to collect such answers. A NOTE is written
 * before a task when no other complete frame is buffered behind it, after a
 * task that ran NOTE_NS or longer, after NOTE_MAX answers or NOTE_NS since
 * the first, and before blocking on read. So short tasks sent ahead cost one
 * write per batch, and an answer held back while a later task runs is found
 * by the parent's scan of started tasks (manager.c). Other answers
 * (errors, bigger results, expired tasks) are frames in an output buffer,
 * written before the next task is claimed; big results are written straight
 * from the task's memory.
 *
 * A map chunk is one CHUNK frame, claimed as one task; its answers go back
 * in one RESULTS frame, each padded to CF_WIRE_ALIGN (wire.h) so that the
 * parent hands every item out aligned as malloc's.
 *
 * Test hooks (faults the test suites provoke: dying or a SIGSEGV while
 * receiving a task, a task corrupted as it arrives, dying halfway through a
 * result frame, a task finding its own result pipe) are compiled only with
 * CF_TEST_HOOKS, into the tests' build of the library (Makefile.am:
 * lib/libcfutures-test.la); the installed library has none.
 *
 * Leaves with _exit(): 0 on EOF of the task pipe, after max_tasks_per_child
 * tasks, or after reporting an initializer failure; 1 on an I/O error, when
 * out of memory, or after a REJECT frame: a task frame failed its checks
 * (the task it names is claimed first, so it fails and never runs).
 *
 * What tasks print to stdout and stderr is flushed whenever the worker runs
 * dry (before its answers go out) and when it leaves with 0, as Python's
 * worker flushes sys.stdout at exit: _exit() flushes nothing, and stdout into
 * a pipe or file is fully buffered. The fork server dropped the parent's
 * unwritten stdio buffers (forkserver.c), so nothing printed before the
 * fork comes out twice. A reader gone (SIGPIPE) or a stream held by a
 * thread a task left costs the lines, never the worker (cf_wk_flush_std, wout.c).
 */
#include "config.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "task.h"
#include "util.h"
#include "wire.h"
#include "worker.h"
#include "wout.h"

#define IN_READ_MIN (64 * 1024)
#define WORKER_SPIN_NS 50000 /* looks for work this long before it sleeps */

#ifdef CF_TEST_HOOKS
/*
 * Test builds only, and only with CFUTURES_TEST_HOOKS set when the pool was
 * created: a task finds its own result pipe in CFUTURES_WORKER_RESULT_FD
 * (the garbage-frame tests). CFUTURES_TEST_WORKER_SPIN_MS stretches the
 * spin before a worker sleeps (a slow machine's round trips stay inside).
 */
static void hooks_init(struct wstate *w)
{
    const char *spin = getenv("CFUTURES_TEST_WORKER_SPIN_MS");
    w->spin_ns = spin ? atoll(spin) * 1000000LL : w->spin_ns;
    w->hooks = getenv("CFUTURES_TEST_HOOKS") != NULL;
    if (w->hooks) {
        char fd[16];
        snprintf(fd, sizeof(fd), "%d", w->out_fd);
        setenv("CFUTURES_WORKER_RESULT_FD", fd, 1);
    }
}

/* Test builds: true if the task's argument (@len bytes) starts with @mark. */
static bool marked(const struct wstate *w, const void *arg, size_t len, const char *mark)
{
    return w->hooks && len >= 14 && memcmp(arg, mark, 14) == 0;
}

/* Test builds (DEADLOCK-02, -04): a worker that dies while receiving this task. */
static void hook_received(const struct wstate *w, const void *arg, size_t len)
{
    if (marked(w, arg, len, "CF-FAULT-EXIT!"))
        _exit(1);
    if (marked(w, arg, len, "CF-FAULT-SEGV!"))
        raise(SIGSEGV);
}

/*
 * Test builds (DEADLOCK-03): a task marked CF-FAULT-BADF! is corrupted as it
 * arrives: a piped frame's magic (the frame at @f, @avail bytes of it read),
 * or a queued task's argument length in its slot @sl.
 */
static void hook_frame(const struct wstate *w, unsigned char *f, size_t avail)
{
    size_t at = CF_WIRE_HDR + CF_WIRE_TASK_FIXED;
    if (f && avail >= at && f[6] == CF_WIRE_TASK &&
        marked(w, f + at, avail - at, "CF-FAULT-BADF!"))
        f[0] ^= 0xff;
}

static void hook_slot(const struct wstate *w, struct cf_task_slot *sl)
{
    if (marked(w, sl->u.arg, CF_MIN(sl->arg_len, (uint32_t)CF_SLOT_ARG),
               "CF-FAULT-BADF!"))
        sl->arg_len = CF_SLOT_ARG + 1;
}

/*
 * Test builds: a result marked CF-FAULT-LAG!! makes the worker's next look
 * for work stall (hook_lag); one marked CF-FAULT-HALF! (DEADLOCK-08) has
 * half of its frame written, then the worker dies.
 */
static void hook_result(struct wstate *w, uint64_t id, const void *data, size_t len)
{
    if (marked(w, data, len, "CF-FAULT-LAG!!"))
        w->lag = true;
    if (!marked(w, data, len, "CF-FAULT-HALF!"))
        return;
    unsigned char hdr[CF_WIRE_HDR];
    cf_wire_put_hdr(hdr, CF_WIRE_RESULT, id, len);
    cf_wk_flush(w);
    cf_wk_write_all(w->out_fd, hdr, sizeof(hdr));
    cf_wk_write_all(w->out_fd, data, len / 2);
    _exit(1);
}
/*
 * Test builds: after a CF-FAULT-LAG!! result, the worker stalls between its
 * look at its pipe's count of frames and its look at the shared queue, as a
 * worker the scheduler preempts there: it sends its answers, then waits
 * (10 s at most) until a task is added to the shared queue.
 */
static void hook_lag(struct wstate *w)
{
    if (!w->lag || !w->cfg->ring)
        return;
    w->lag = false;
    cf_wk_note(w);
    cf_wk_flush(w);
    uint64_t tail = atomic_load(&w->cfg->ring->tail);
    for (int i = 0; i < 10000 && atomic_load(&w->cfg->ring->tail) == tail; i++)
        usleep(1000);
}
#else
/* The shipped library: no hook, not even an empty one (no name left behind). */
#define hook_lag(w) ((void)(w))
#define hooks_init(w) ((void)(w))
#define hook_received(w, arg, len) ((void)0)
#define hook_frame(w, f, avail) ((void)0)
#define hook_slot(w, sl) ((void)0)
#define hook_result(w, id, data, len) ((void)0)
#endif

/* In a child that a task (or the initializer) forked, not in the worker. */
static volatile sig_atomic_t forked_child;
static bool atfork_set; /* inherited by a worker of a pool a task made */

static void on_fork_child(void)
{
    forked_child = 1;
}

/*
 * A child that a task forked and that returned from the task function
 * leaves (status 0, what it printed written) rather than go on as a second
 * worker on the same pipes and seat, answering for the task.
 */
static void not_a_fork(void)
{
    if (forked_child)
        cf_wk_leave();
}

static void run_initializer(struct wstate *w)
{
    const struct cf_worker_cfg *c = w->cfg;
    if (!c->initializer)
        return;
    struct task t;
    /* The pointer itself, as in a thread pool, also with a length of 0 (the
       header's initarg): no copy, the memory as it was at the fork. */
    cf_task_init(&t, NULL, c->initarg, c->initarg_len, CF_NO_DEADLINE);
    c->initializer(&t);
    not_a_fork();
    atomic_fetch_and(&c->seatw[w->seat].flags, ~CF_SEAT_INIT);
    if (t.answer == CF_ANSWER_ERROR) {
        cf_wk_answer_error(w, CF_WIRE_INITFAIL, 0, 0, t.err_code,
                           t.err_msg ? t.err_msg : "(no message)");
        cf_wk_flush(w);
        cf_wk_leave();
    }
    cf_task_clear(&t);
}

/*
 * After a long task the parent hears of the next start at once
 * (future_running, the task's own deadline) instead of at its next scan: one
 * NOTE, which costs nothing next to the task that just ran.
 */
static void announce_start(struct wstate *w)
{
    if (w->announce) {
        w->announce = false;
        w->unnoted = 1; /* a NOTE even with no answer waiting: the parent looks */
        cf_wk_note(w);  /* at the claim words */
        cf_wk_flush(w);
    }
}

/*
 * The task just run returned. If the parent doomed it (its deadline's kill,
 * worker.h), its future has failed already: nothing is answered or claimed
 * any more, and the parent's SIGTERM or SIGKILL ends this worker.
 */
static void end_run(struct wstate *w)
{
    if (atomic_exchange(&w->cfg->seatw[w->seat].running, 0) != CF_RUN_DOOMED)
        return;
    cf_wk_flush(w); /* earlier answers, if any */
    for (;;)
        pause();
}

/*
 * Claims @cell of generation @gen (SENT -> CLAIMED by this seat): true if
 * won. The seat's `running` word (worker.h) names the task first: the claim's
 * CAS publishes it to a parent that sees the claim.
 */
static bool claim_cell(struct wstate *w, uint32_t cell, uint32_t gen)
{
    _Atomic uint64_t *run = &w->cfg->seatw[w->seat].running;
    uint32_t expect = CF_CELL_WORD(gen, CF_CELL_SENT);
    atomic_store_explicit(run, CF_RUN_WORD(cell, gen), memory_order_relaxed);
    if (!atomic_compare_exchange_strong(&w->cfg->claims[cell], &expect,
                                        CF_CELL_CLAIMED_BY(gen, w->seat))) {
        atomic_store_explicit(run, 0, memory_order_relaxed);
        return false;
    }
    w->word = &w->cfg->claims[cell];
    return true;
}

/* True if this worker now owns the task in @id (it may run it). */
static bool claim(struct wstate *w, uint64_t id)
{
    uint32_t cell = CF_TASK_ID_CELL(id);
    if (cell >= w->cfg->ncells || (id & 0xffffffffu) > CF_CELL_GEN_MASK)
        cf_wk_reject(w, 0, "a task id out of range");
    if (!claim_cell(w, cell, CF_TASK_ID_GEN(id)))
        return false;
    announce_start(w);
    return true;
}

/*
 * The task @id (from a frame whose header passed, or a queued task this
 * worker @claimed) failed its checks (@what): claimed, it fails with the
 * worker's death and never goes to another worker; never run.
 */
static _Noreturn void reject_task(struct wstate *w, uint64_t id, bool claimed,
                                  const char *what)
{
    uint32_t cell = CF_TASK_ID_CELL(id);
    if (!claimed && cell < w->cfg->ncells && (id & 0xffffffffu) <= CF_CELL_GEN_MASK)
        claimed = claim_cell(w, cell, CF_TASK_ID_GEN(id));
    cf_wk_reject(w, claimed ? id : 0, what);
}

/* True if the shared queue may be used: it exists and this seat is not leaving. */
static bool ring_on(const struct wstate *w)
{
    return w->cfg->ring &&
           !(atomic_load_explicit(&w->cfg->seatw[w->seat].flags, memory_order_relaxed) &
             CF_SEAT_QUIT);
}

/* True if the shared queue has entries past its head (maybe not SENT). */
static bool ring_nonempty(const struct wstate *w)
{
    const struct cf_ring *r = w->cfg->ring;
    return atomic_load(&r->tail) > atomic_load(&r->head);
}

/*
 * Claims the oldest task of the shared queue still SENT, if its position is
 * below @limit (the stamp of a piped task waiting here, which goes first
 * otherwise); its id in *id. Entries whose cells are no longer SENT (claimed,
 * revoked, reused) are passed over, and `head` moves past them, so it never
 * passes a task nobody started.
 */
static bool ring_take(struct wstate *w, uint64_t limit, uint64_t *id)
{
    struct cf_ring *r = w->cfg->ring;
    for (;;) {
        uint64_t h = atomic_load(&r->head);
        if (h >= limit || h >= atomic_load(&r->tail))
            return false;
        uint64_t e =
            atomic_load_explicit(&r->ent[h & w->cfg->ring_mask], memory_order_relaxed);
        if ((e >> CF_RING_TAG_SHIFT) != (h & CF_RING_TAG_MASK)) {
            cf_cpu_relax(); /* written for a later lap: head moved on */
            continue;
        }
        uint32_t cell = CF_RING_CELL(e), gen = CF_RING_GEN(e);
        if (cell >= w->cfg->ncells)
            cf_wk_reject(w, 0, "a queued task's cell out of range");
        if (atomic_load(&w->cfg->claims[cell]) == CF_CELL_WORD(gen, CF_CELL_SENT)) {
            if (w->cfg->slots[cell].where == CF_SLOT_INLINE) {
                hook_received(w, w->cfg->slots[cell].u.arg,
                              CF_MIN(w->cfg->slots[cell].arg_len, (uint32_t)CF_SLOT_ARG));
                hook_slot(w, &w->cfg->slots[cell]);
            }
            if (claim_cell(w, cell, gen)) {
                atomic_compare_exchange_strong(&r->head, &h, h + 1);
                *id = CF_TASK_ID(cell, gen);
                announce_start(w);
                return true;
            }
        }
        /* Taken, revoked or reused: pass it. */
        atomic_compare_exchange_strong(&r->head, &h, h + 1);
    }
}

static const void *aligned_arg(struct wstate *w, const void *arg, size_t len)
{
    if (!arg || len == 0 || ((uintptr_t)arg & 15) == 0)
        return arg; /* nothing to copy: the scratch buffer may not exist yet */
    if (w->scratch_cap < len) {
        free(w->scratch);
        w->scratch = malloc(len);
        if (!w->scratch)
            cf_wk_die();
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
    not_a_fork();
}

/*
 * A map chunk (a CHUNK payload of @len bytes): claimed as one (here unless
 * @claimed), its answers sent as one RESULTS frame.
 */
static void run_chunk(struct wstate *w, uint64_t id, const void *payload, uint64_t len,
                      bool claimed)
{
    uint64_t fn_bits, count, off = CF_WIRE_CHUNK_FIXED;
    int64_t limit_ns;
    const void *arg;
    size_t arg_len;
    int rc = cf_wire_get_chunk(payload, len, &fn_bits, &limit_ns, &count);
    for (uint64_t j = 0; rc == CF_WIRE_OK && j < count; j++)
        rc = cf_wire_next_item(payload, len, &off, &arg, &arg_len);
    if (rc != CF_WIRE_OK)
        reject_task(w, id, claimed, cf_wire_strerror(rc));
    if (!claimed && !claim(w, id))
        return;
    w->done += (int)CF_MIN(count, (uint64_t)INT_MAX / 2);
    int64_t started = cf_now_ns();
    task_fn fn = (task_fn)(uintptr_t)fn_bits;
    unsigned char fixed[CF_WIRE_RESULTS_FIXED];
    cf_buf_consume(&w->res, w->res.len - w->res.off);
    cf_wire_put_count(fixed, count);
    if (!cf_buf_add(&w->res, fixed, sizeof(fixed)))
        cf_wk_die();
    off = CF_WIRE_CHUNK_FIXED;
    for (uint64_t j = 0; j < count; j++) {
        cf_wire_next_item(payload, len, &off, &arg, &arg_len);
        struct task t;
        run_item(w, fn, arg, arg_len, limit_ns, &t);
        const char *m = t.answer != CF_ANSWER_ERROR ? NULL
                        : t.err_msg                 ? t.err_msg
                                                    : "(no memory for the error message)";
        size_t n = m ? CF_MIN(strlen(m), (size_t)CF_WIRE_MAX_MSG)
                   : t.answer == CF_ANSWER_RESULT ? t.len
                                                  : 0;
        /* This answer (result or message) and room for the rest, under the maximum. */
        uint64_t rest = (count - j) * (uint64_t)CF_WIRE_CHUNK_ANSWER_ROOM;
        if ((uint64_t)w->res.len + CF_WIRE_PAD(n) + rest > CF_WIRE_MAX_PAYLOAD) {
            m = "the chunk's results exceed the frame maximum";
            cf_wk_res_answer(w, 1, E2BIG, m, strlen(m));
        } else {
            cf_wk_res_answer(w, m != NULL, m ? t.err_code : 0, m ? m : t.data, n);
        }
        cf_task_clear(&t);
    }
    end_run(w);
    w->announce = cf_now_ns() - started >= NOTE_NS;
    cf_wk_answer(w, CF_WIRE_RESULTS, id, 0, NULL, 0, w->res.p + w->res.off,
                 w->res.len - w->res.off);
}

/* Runs the claimed task @id and answers it. */
static void run_claimed(struct wstate *w, uint64_t id, task_fn fn, int64_t limit_ns,
                        const void *arg, size_t arg_len)
{
    w->done++;
    struct task t;
    int64_t started = cf_now_ns();
    run_item(w, fn, arg, arg_len, limit_ns, &t);
    end_run(w);
    int64_t ended = cf_now_ns(); /* one read for the three uses: 50 ns each in a VM */
    w->announce = ended - started >= NOTE_NS;
    /* As in a thread: a task past its own deadline fails, whatever it answered. */
    uint32_t flags =
        t.deadline != CF_NO_DEADLINE && ended >= t.deadline ? CF_WIRE_F_EXPIRED : 0;
    switch (t.answer) {
    case CF_ANSWER_ERROR:
        cf_wk_answer_error(w, CF_WIRE_ERROR, id, flags, t.err_code,
                           t.err_msg ? t.err_msg : "(no memory for the error message)");
        break;
    case CF_ANSWER_RESULT:
        if (t.len > w->cfg->result_max) {
            /* Cannot be sent: an ordinary task error, the worker lives on. */
            char m[128];
            snprintf(m, sizeof(m),
                     "the task's result (%zu bytes) is over the pool's maximum of %llu",
                     t.len, (unsigned long long)w->cfg->result_max);
            cf_wk_answer_error(w, CF_WIRE_ERROR, id, flags, E2BIG, m);
            break;
        }
        hook_result(w, id, t.data, t.len);
        cf_wk_answer_result(w, id, flags, t.data, t.len, ended);
        break;
    default:
        cf_wk_answer_result(w, id, flags, NULL, 0, ended);
        break;
    }
    cf_task_clear(&t);
}

static void run_task(struct wstate *w, const struct cf_wire_hdr *h, const void *payload)
{
    uint64_t fn_bits;
    int64_t limit_ns;
    const void *arg;
    size_t arg_len;
    int rc = cf_wire_get_task(payload, h->len, &fn_bits, &limit_ns, &arg, &arg_len);
    if (rc != CF_WIRE_OK)
        reject_task(w, h->id, false, cf_wire_strerror(rc));
    hook_received(w, arg, arg_len);
    /* An unaligned argument is copied before the claim, not after: the
       claim is the start the parent orders later tasks by, and the task's
       first line should follow it closely (a big argument's copy takes
       milliseconds). */
    arg = aligned_arg(w, arg, arg_len);
    if (!claim(w, h->id))
        return; /* cancelled or revoked before it started: skip it */
    run_claimed(w, h->id, (task_fn)(uintptr_t)fn_bits, limit_ns, arg, arg_len);
}

/*
 * Runs the task claimed from the shared queue: its frame is in its cell's
 * slot, its argument there or in the heap.
 */
static void run_queued(struct wstate *w, uint64_t id)
{
    const struct cf_task_slot *sl = &w->cfg->slots[CF_TASK_ID_CELL(id)];
    size_t len = sl->arg_len;
    const unsigned char *arg = sl->u.arg;
    if (sl->where == CF_SLOT_INLINE) {
        if (len > CF_SLOT_ARG)
            reject_task(w, id, true, "a queued task's argument longer than its slot");
    } else {
        uint64_t off = sl->u.heap_off;
        if (!w->cfg->heap || off > w->cfg->heap_bytes || len > w->cfg->heap_bytes - off)
            reject_task(w, id, true, "a queued task's argument outside the shared heap");
        arg = w->cfg->heap + off;
    }
    if (sl->where == CF_SLOT_CHUNK)
        run_chunk(w, id, arg, len, true);
    else
        run_claimed(w, id, (task_fn)(uintptr_t)sl->fn, sl->limit_ns, len ? arg : NULL,
                    len);
}

/*
 * The next task frame buffered: true with its header in *h if it is whole;
 * else *need is the bytes it needs. The parent's NOTE frames (wake-ups) are
 * passed over.
 */
static bool next_frame(struct wstate *w, struct cf_wire_hdr *h, size_t *need)
{
    for (;;) {
        size_t avail = w->in.len - w->in.off;
        hook_frame(w, w->in.p + w->in.off, avail);
        int rc = cf_wire_get_hdr(w->in.p + w->in.off, avail, h);
        if (rc == CF_WIRE_NEED_MORE) {
            *need = CF_WIRE_HDR;
            return false;
        }
        if (rc != CF_WIRE_OK)
            cf_wk_reject(w, 0, cf_wire_strerror(rc)); /* whose frame: not known */
        if (h->type == CF_WIRE_NOTE) {
            w->in.off += CF_WIRE_HDR; /* a wake-up: nothing to run */
            continue;
        }
        if (h->type != CF_WIRE_TASK && h->type != CF_WIRE_CHUNK)
            cf_wk_reject(w, 0, "a frame of a type the parent never sends");
        *need = CF_WIRE_HDR + (size_t)h->len;
        return avail >= *need;
    }
}

/*
 * Hands earlier answers over before claiming another task: pipe answers
 * always (if this worker dies in the next task, only that one may be lost),
 * answers in shared records unless @more tasks wait (the parent sees such a
 * task as not started and so scans for them, manager.c).
 */
static void before_claim(struct wstate *w, bool more)
{
    if (!more)
        cf_wk_note(w);
    cf_wk_flush(w);
}

/* Runs the whole task frame @h at the front of the input buffer. */
static void run_piped(struct wstate *w, const struct cf_wire_hdr *h)
{
    /* The frame's bytes stay where they are until the next read. */
    const unsigned char *payload = w->in.p + w->in.off + CF_WIRE_HDR;
    w->in.off += CF_WIRE_HDR + (size_t)h->len;
    w->bound_seen++;
    struct cf_wire_hdr next;
    size_t need;
    before_claim(w, next_frame(w, &next, &need));
    if (h->type == CF_WIRE_CHUNK)
        run_chunk(w, h->id, payload, h->len, false);
    else
        run_task(w, h, payload);
}

/* Reads what the pipe has (blocking); exits on EOF. */
static void read_in(struct wstate *w, size_t need)
{
    size_t have = w->in.len - w->in.off;
    if (!cf_buf_reserve(&w->in, CF_MAX(need - CF_MIN(need, have), (size_t)IN_READ_MIN)))
        cf_wk_die();
    ssize_t n = read(w->in_fd, w->in.p + w->in.len, w->in.cap - w->in.len);
    if (n < 0 && errno == EINTR)
        return;
    if (n < 0)
        cf_wk_die();
    if (n == 0)
        cf_wk_leave();
    w->in.len += (size_t)n;
}

/*
 * Runs one task: the oldest of the shared queue, or the piped one at the
 * front of the buffer when no queued task is older. False if neither is
 * there; *need is then the bytes the next frame needs.
 */
static bool run_one(struct wstate *w, size_t *need)
{
    struct cf_wire_hdr h;
    /* The queue's end before the look at `bound`: a task queued after a piped
       one is taken only once that frame is counted (the parent counts it,
       then queues later tasks), never before it; later ones wait a turn. */
    uint64_t limit = w->cfg->ring ? atomic_load(&w->cfg->ring->tail) : 0, id;
    bool piped = next_frame(w, &h, need);
    /* A piped task is on its way (its frame is written or about to be): read
       it now, so that queued tasks never keep it waiting. */
    while (!piped && w->cfg->ring &&
           atomic_load(&w->cfg->seatw[w->seat].bound) != w->bound_seen) {
        cf_wk_note(w); /* as before any read that may wait */
        cf_wk_flush(w);
        read_in(w, *need);
        piped = next_frame(w, &h, need);
    }
    hook_lag(w);
    if (ring_on(w)) {
        if (piped) {
            if (CF_TASK_ID_CELL(h.id) >= w->cfg->ncells)
                cf_wk_reject(w, 0, "a task id out of range");
            limit = w->cfg->slots[CF_TASK_ID_CELL(h.id)].stamp;
        }
        struct cf_ring *r = w->cfg->ring;
        before_claim(w, atomic_load(&r->tail) - atomic_load(&r->head) > 1);
        if (ring_take(w, limit, &id)) {
            run_queued(w, id);
            return true;
        }
    }
    if (piped)
        run_piped(w, &h);
    return piped;
}

/*
 * Ran dry at w->dry: looks at the shared queue and at the count of frames on
 * their way down its pipe until WORKER_SPIN_NS after, yielding the CPU
 * between looks: in a burst or a quick round trip the next task comes within
 * microseconds, and a sleeping worker costs a NOTE and a wake-up. True if
 * work came (a task another worker took first keeps the window running).
 */
static bool spin_for_work(struct wstate *w)
{
    do {
        if (ring_nonempty(w) ||
            atomic_load(&w->cfg->seatw[w->seat].bound) != w->bound_seen)
            return true;
        sched_yield();
    } while (cf_now_ns() - w->dry < w->spin_ns && ring_on(w));
    return false;
}

/*
 * Nothing runnable: says it is asleep and blocks on its pipe, unless the
 * shared queue has work after all (the parent appends, then looks for
 * sleepers; the worker says it sleeps, then looks at the queue: one of the
 * two sees the other).
 */
static void sleep_on_pipe(struct wstate *w, size_t need)
{
    _Atomic uint32_t *flags = &w->cfg->seatw[w->seat].flags;
    bool ring = ring_on(w);
    w->dry = w->dry ? w->dry : cf_now_ns();
    if (ring && w->spin && spin_for_work(w))
        return;
    if (ring) {
        atomic_fetch_or(flags, CF_SEAT_ASLEEP);
        if (ring_nonempty(w)) {
            atomic_fetch_and(flags, ~CF_SEAT_ASLEEP);
            return;
        }
    }
    read_in(w, need);
    if (ring)
        atomic_fetch_and(flags, ~CF_SEAT_ASLEEP);
    /* Spins next time only after a wait as short as a spin (not W7's 2 ms). */
    w->spin = cf_now_ns() - w->dry < w->spin_ns;
    w->dry = 0;
}

void cf_worker_main(const struct cf_worker_cfg *cfg, int seat, int in_fd, int out_fd)
{
    struct wstate w = {.cfg = cfg, .seat = seat, .in_fd = in_fd, .out_fd = out_fd};
    w.spin_ns = WORKER_SPIN_NS;
    forked_child = 0; /* a worker of a pool made in a task's child is one */
    if (!atfork_set)
        atfork_set = pthread_atfork(NULL, NULL, on_fork_child) == 0;
    hooks_init(&w);
    run_initializer(&w);
    for (;;) {
        size_t need;
        bool ran = run_one(&w, &need);
        w.dry = ran ? 0 : w.dry;
        bool spent = cfg->max_tasks > 0 && w.done >= cfg->max_tasks;
        if (ran && !spent)
            continue;
        /* Leaving, or nothing runnable is left: hand the answers over first
           (the parent expects a spent worker's exit once all are answered). */
        cf_wk_flush_std();
        cf_wk_note(&w);
        cf_wk_flush(&w);
        if (spent)
            cf_wk_leave();
        sleep_on_pipe(&w, need);
    }
}
