/*
 * process_pool.c: the process pool executor (Python's ProcessPoolExecutor).
 *
 * DESIGN
 * Pieces: a fork server (forkserver.c), forked in process_pool_executor_new
 * before this file starts any thread, forks the workers (worker.c); one
 * manager thread owns every pipe, in non-blocking mode under poll(); frames
 * are wire.c's.
 *
 * Submit appends the work item to a FIFO under the pool lock and wakes the
 * manager through an eventfd, written (non-blocking, after unlocking) only
 * when the manager is about to sleep or sleeping and no wake-up is pending.
 * Submit never waits for the manager.
 *
 * The manager moves submitted items to its own pending list and sends them
 * ahead to workers: an idle worker first, then a new worker (up to
 * max_workers), then the least loaded one, up to DEPTH items per worker.
 * Frames for one worker are batched in its output buffer and written in one
 * call. A worker that runs dry takes back ("steals") items sent to a busy one
 * and not started there.
 *
 * Claims: each worker seat has DEPTH cells; each cell has one word in memory
 * shared with every worker (worker.h). Sending sets the word SENT; the worker
 * CASes it to CLAIMED before running the task; a canceller (future_cancel,
 * through the executor's try_cancel hook) or the manager (steal, requeue after
 * a death) CASes it to CANCELLED. So a task sent ahead can still be cancelled
 * and never runs; "started" means CLAIMED. The manager notices claims by
 * looking at the words (each loop, and on a backing-off timer while some sent
 * task is not known to have started); that is when the future becomes
 * RUNNING and a task's own deadline starts.
 *
 * Answers: besides RESULT/ERROR frames, a worker leaves small plain results
 * in shared answer records beside the claim words and writes one NOTE frame
 * per batch (worker.c). The manager collects them (harvest) on a NOTE, in
 * every scan (a worker holds answers back while it runs a later task it had
 * buffered; the scan timer runs while any task is out, at most SCAN_MAX_NS
 * apart, so a held answer waits at most that), and from a dead worker before
 * failing its claimed cells, so those answers are never lost with it.
 *
 * future_cancel on a claimed task sets the word's STOP bit (request_stop,
 * or try_cancel finding it CLAIMED): task_should_stop() reads it in the
 * worker. A task that returns after its own deadline is answered with
 * CF_WIRE_F_EXPIRED and fails FUT_EDEADLINE, as in the thread pool.
 *
 * Map chunks (submit_chunk): a chunk is one task. Its items are encoded
 * into one argument, sent as one CHUNK frame and answered by one RESULTS
 * frame, which becomes the task's result; chunk_next reads it back item by
 * item. max_tasks_per_child counts a chunk by its items.
 *
 * Deaths: the fork server reports every exit. Once the manager has the
 * report it drains what the worker wrote (a whole answer counts), then each
 * cell of that worker: SENT goes back to the front of the pending list,
 * CLAIMED without an answer fails FUT_EWORKER (or FUT_EDEADLINE if its
 * deadline killed it), or with FUT_WORKER_BREAK_POOL breaks the pool. A
 * malformed frame kills the worker and names the frame error in the message.
 *
 * Deadlines: when a started task's limit passes, its future fails
 * FUT_EDEADLINE at once, the worker gets SIGTERM and, after KILL_GRACE_NS,
 * SIGKILL; a replacement is forked on demand.
 *
 * Threads: submitters and cancellers (any thread), the manager (all I/O, all
 * completions, so done-callbacks run there). Shutdown with cancel_futures
 * asks the manager to cancel what it holds and waits for its answer, unless
 * called from the manager itself.
 *
 * Locks: the pool `lock` (submit FIFO, stopping/exiting flags) is never held
 * while calling out. The manager's own state needs no lock. try_cancel runs
 * under the future's lock and only touches atomics.
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor.h"
#include "forkserver.h"
#include "util.h"
#include "wire.h"
#include "worker.h"

#define DEPTH 64                   /* cells (tasks sent ahead) per worker */
#define SEND_AHEAD_BYTES (1 << 20) /* a busy worker's unsent bytes cap */
#define KILL_GRACE_NS (200 * 1000000LL)
#define SCAN_MIN_NS (1000000LL)
#define SCAN_MAX_NS (4 * 1000000LL)
#define READ_BYTES (256 * 1024)
#define READ_AHEAD                                                                       \
    (4u << 20) /* a frame's buffer grows at most this far past its data                  \
                */
#define INLINE_ARG 32
/* A task whose workers die this often before it starts fails FUT_EWORKER. */
#define POISON_MAX 3
/* After a fork fails while other workers run: no new fork for this long (doubling). */
#define RESPAWN_MIN_NS (10 * 1000000LL)
#define RESPAWN_MAX_NS (1000 * 1000000LL)

struct pp_work {
    struct cf_work base;
    _Atomic uint64_t claim;  /* 0, or (claim word index + 1) << 32 | generation */
    _Atomic bool cancel_req; /* a canceller is cancelling it (try_cancel) */
    void *arg;               /* our copy of the argument (inl for small ones) */
    bool started;            /* manager: the future is RUNNING and counted */
    bool expired;            /* manager: failed by its deadline */
    int64_t deadline;        /* manager: when started with a limit */
    uint32_t chunk_n;        /* a map chunk (one task): items in its arg, or 0 */
    uint64_t seq;            /* manager: send order */
    unsigned poison;         /* manager: workers that died receiving it */
    unsigned char inl[INLINE_ARG];
};

struct pp_proc {
    int seat;           /* its cells: seat * DEPTH ... */
    uint32_t spawn_gen; /* matches the fork server's SPAWNED */
    pid_t pid;          /* 0 until SPAWNED */
    int to_fd, from_fd; /* -1 once closed */
    bool spawned;       /* SPAWNED arrived */
    bool exited;        /* EXITED arrived (status valid) */
    bool eof;           /* its result pipe reached EOF */
    bool closing;       /* we closed its task pipe: it should exit */
    bool killed;        /* we signalled it (deadline, garbage, broken pool) */
    int status;         /* wait status */
    int spawn_err;      /* fork failed with this errno */
    int kill_sig;       /* to send once the pid is known */
    int64_t kill_at;    /* SIGKILL at this time, or 0 */
    int budget;         /* tasks it may still be sent (max_tasks_per_child) */
    int ncells;         /* occupied cells */
    int nunstarted;     /* occupied, not yet known as started */
    struct pp_work *cell[DEPTH];
    bool idle_counted; /* counted in the pool's nidle */
    char why[160];     /* a protocol error, for the message */
    struct cf_buf out, in;
};

struct process_pool {
    struct executor base;
    /* submit side: lock */
    cf_lock_t lock;
    struct cf_work_fifo sub;
    bool exiting;          /* the manager is leaving: lock */
    _Atomic bool stopping; /* shutdown called (written under lock) */
    /* wake-ups */
    int wake_fd;               /* eventfd; immutable */
    _Atomic uint32_t kick;     /* bumped by anything the manager must see */
    _Atomic bool sleeping;     /* the manager is in (or entering) poll */
    _Atomic bool wake_pending; /* the eventfd was written and not yet read */
    _Atomic uint32_t cancel_req, cancel_done; /* shutdown(cancel_futures) hand-off */
    _Atomic uint32_t dekker; /* send_work and try_cancel order their claim/cancel here */
    _Atomic bool manager_done;
    /* immutable after _new */
    pthread_t manager;
    int nseats;
    _Atomic uint32_t *claims;
    struct cf_answer_rec *answers; /* in the same mapping, after the claim words */
    size_t claims_bytes;           /* the whole mapping */
    struct cf_worker_cfg wcfg;
    pid_t fs_pid;
    int fs_sock;
    /* stats */
    _Atomic size_t nworkers, nidle;
    /* manager only */
    struct pp_proc **seats;
    uint32_t *gens;           /* the last generation of each claim word */
    struct cf_work_fifo pend; /* submitted items the manager holds */
    uint32_t spawn_gen;
    uint64_t send_seq;
    bool fs_gone;
    bool broken_done; /* break_pool ran */
    int64_t scan_every;
    int64_t respawn_at;    /* no fork into a free seat before this, while others run */
    int64_t respawn_every; /* the next back-off after a failed fork, or 0 */
    struct pollfd *pfd;
    struct pp_proc **pproc;
};

static inline struct process_pool *pp_of(executor_t *ex)
{
    return (struct process_pool *)ex;
}

static inline struct pp_work *work_of(struct cf_work *w)
{
    return (struct pp_work *)w;
}

/* The tasks in @w as its worker counts them (max_tasks_per_child): a chunk's items. */
static inline int tasks_in(const struct pp_work *w)
{
    return w->chunk_n ? (int)w->chunk_n : 1;
}

/*
 * Keeps executor_stats' idle count exact at every change: a worker is idle
 * when it runs, has not exited, and holds no task. Called after each change
 * of those, before any future is completed, so that a caller woken by a
 * result sees the worker idle already.
 */
static void idle_update(struct process_pool *p, struct pp_proc *pr)
{
    bool idle = pr->spawned && !pr->exited && pr->ncells == 0;
    if (idle != pr->idle_counted) {
        pr->idle_counted = idle;
        if (idle)
            atomic_fetch_add_explicit(&p->nidle, 1, memory_order_relaxed);
        else
            atomic_fetch_sub_explicit(&p->nidle, 1, memory_order_relaxed);
    }
}

/* ---------------------------------------------------------- wake-ups */

static void kick(struct process_pool *p)
{
    atomic_fetch_add(&p->kick, 1);
    if (atomic_load(&p->sleeping) && !atomic_exchange(&p->wake_pending, true)) {
        uint64_t one = 1;
        ssize_t n;
        do
            n = write(p->wake_fd, &one, sizeof(one));
        while (n < 0 && errno == EINTR);
        /* EAGAIN: the counter is full, so it is signalled already. */
    }
}

/* ---------------------------------------------------------- work items */

/* The executor is done with @w: frees the copy and drops its reference. */
static void work_drop(struct cf_work *cw)
{
    struct pp_work *w = work_of(cw);
    if (w->arg != w->inl)
        free(w->arg);
    w->arg = NULL;
    future_unref(cf_work_future(cw));
}

/* Marks a claimed task started: its future becomes RUNNING and is counted. */
static void mark_started(struct process_pool *p, struct pp_proc *pr, struct pp_work *w)
{
    if (w->started)
        return;
    pr->nunstarted--;
    if (w->base.limit_ns)
        w->deadline = cf_now_ns() + w->base.limit_ns;
    w->started = true;
    if (future_set_running_or_notify_cancel(cf_work_future(&w->base)) == 1)
        cf_executor_started(&p->base);
}

static size_t word_index(const struct pp_proc *pr, int i)
{
    return (size_t)pr->seat * DEPTH + (size_t)i;
}

/* Frees cell @i of @pr; the work item is the caller's again. */
static struct pp_work *cell_release(struct process_pool *p, struct pp_proc *pr, int i)
{
    struct pp_work *w = pr->cell[i];
    atomic_store_explicit(&w->claim, 0, memory_order_release);
    pr->cell[i] = NULL;
    pr->ncells--;
    if (!w->started)
        pr->nunstarted--;
    idle_update(p, pr);
    return w;
}

/* Takes a sent, unstarted task back (CAS SENT -> CANCELLED): true if it was. */
static bool cell_revoke(struct process_pool *p, struct pp_proc *pr, int i)
{
    size_t idx = word_index(pr, i);
    uint32_t expect = CF_CELL_WORD(p->gens[idx], CF_CELL_SENT);
    return atomic_compare_exchange_strong(&p->claims[idx], &expect,
                                          CF_CELL_WORD(p->gens[idx], CF_CELL_CANCELLED));
}

/* ---------------------------------------------------------- workers */

static void signal_proc(struct pp_proc *pr, int sig)
{
    pr->killed = true;
    if (pr->exited)
        return;
    if (pr->spawned && pr->pid > 0)
        kill(pr->pid, sig); /* not reaped before we hear EXITED: the pid is its */
    else
        pr->kill_sig = sig;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static bool proc_usable(const struct pp_proc *pr)
{
    return pr && !pr->closing && !pr->killed && !pr->eof && !pr->exited &&
           pr->to_fd >= 0 && pr->budget > 0;
}

static void break_pool(struct process_pool *p, const char *why);

/* Starts a worker in @seat. NULL if that failed (the pool may be broken). */
static struct pp_proc *spawn(struct process_pool *p, int seat)
{
    int tp[2] = {-1, -1}, rp[2] = {-1, -1};
    struct pp_proc *pr = calloc(1, sizeof(*pr));
    if (!pr || pipe2(tp, O_CLOEXEC) < 0 || pipe2(rp, O_CLOEXEC) < 0)
        goto fail;
    fcntl(tp[1], F_SETFL, O_NONBLOCK);
    fcntl(rp[0], F_SETFL, O_NONBLOCK);
    fcntl(tp[1], F_SETPIPE_SZ, 1 << 20); /* best effort: a deeper pipe */
    fcntl(rp[0], F_SETPIPE_SZ, 1 << 20);
    pr->seat = seat;
    pr->spawn_gen = ++p->spawn_gen;
    if (cf_forkserver_spawn(p->fs_sock, seat, pr->spawn_gen, tp[0], rp[1]) < 0) {
        p->fs_gone = true;
        goto fail;
    }
    close(tp[0]);
    close(rp[1]);
    pr->to_fd = tp[1];
    pr->from_fd = rp[0];
    pr->budget = p->wcfg.max_tasks > 0 ? p->wcfg.max_tasks : INT_MAX;
    p->seats[seat] = pr;
    atomic_fetch_add(&p->nworkers, 1);
    return pr;
fail:;
    int err = pr ? errno : ENOMEM;
    for (int i = 0; i < 2; i++) {
        if (tp[i] >= 0)
            close(tp[i]);
        if (rp[i] >= 0)
            close(rp[i]);
    }
    free(pr);
    errno = err;
    return NULL;
}

/* ---------------------------------------------------------- completion */

static void fail_one(struct process_pool *p, struct pp_work *w, int status, int exit_code,
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
    work_drop(&w->base);
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
        work_drop(&w->base); /* failed and counted when its deadline passed */
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
        copy = malloc(len);
        if (copy)
            memcpy(copy, data, len);
    }
    cf_executor_finished(&p->base, kind == 1 || (len > CF_INLINE_MAX && !copy));
    if (kind == 1) {
        cf_future_fail(f, FUT_ETASK, code, -1, 0,
                       msg ? msg : "(no memory for the error message)");
        free(msg);
    } else if (len == 0) {
        future_set_result(f, NULL, 0, NULL); /* an empty result has no data */
    } else if (len <= CF_INLINE_MAX) {
        cf_future_set_result_inline(f, data, len);
    } else if (copy) {
        future_set_result(f, copy, len, free);
    } else {
        cf_future_fail(f, FUT_ENOMEM, 0, -1, 0, "no memory for the task's result");
    }
    work_drop(&w->base);
}

/* A whole answer frame for cell @i of @pr. */
static void complete(struct process_pool *p, struct pp_proc *pr, int i,
                     const struct cf_wire_hdr *h, const unsigned char *payload)
{
    struct pp_work *w = pr->cell[i];
    mark_started(p, pr, w);
    cell_release(p, pr, i);
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
        work_drop(&w->base);
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
    signal_proc(pr, SIGKILL);
}

/*
 * Completes each task of @pr whose answer waits in its shared record (worker.h):
 * on a NOTE frame, and once the worker is gone.
 */
static bool harvest(struct process_pool *p, struct pp_proc *pr)
{
    bool any = false;
    for (int i = 0; i < DEPTH; i++) {
        struct pp_work *w = pr->cell[i];
        if (!w || w->chunk_n)
            continue;
        size_t idx = word_index(pr, i);
        if (CF_CELL_BASE(atomic_load(&p->claims[idx])) !=
                CF_CELL_WORD(p->gens[idx], CF_CELL_CLAIMED) ||
            atomic_load_explicit(&p->answers[idx].tag, memory_order_acquire) !=
                CF_ANSWER_TAG(p->gens[idx]))
            continue;
        unsigned char data[CF_ANSWER_INLINE];
        size_t len = p->answers[idx].len;
        if (len > CF_ANSWER_INLINE) {
            protocol_error(pr, "an answer record longer than its room");
            return any;
        }
        memcpy(data, p->answers[idx].data, len);
        mark_started(p, pr, w);
        cell_release(p, pr, i);
        complete_one(p, w, 0, 0, data, len);
        any = true;
    }
    return any;
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
        if (h.type == CF_WIRE_TASK || h.type == CF_WIRE_CHUNK) {
            protocol_error(pr, "a task frame from a worker");
            return;
        }
        size_t need = CF_WIRE_HDR + (size_t)h.len;
        if (avail < need)
            return;
        const unsigned char *payload = b->p + b->off + CF_WIRE_HDR;
        cf_buf_consume(b, need); /* the bytes stay where they are until the next read */
        if (h.type == CF_WIRE_INITFAIL) {
            int32_t code;
            const char *msg;
            size_t mlen;
            cf_wire_get_error(payload, h.len, &code, &msg, &mlen);
            char m[CF_WIRE_MAX_MSG + 64];
            snprintf(m, sizeof(m), "a worker initializer failed: %.*s", (int)mlen, msg);
            break_pool(p, m);
            return;
        }
        if (h.type == CF_WIRE_NOTE) {
            if (h.id != 0) {
                protocol_error(pr, "a NOTE frame naming a task");
                return;
            }
            harvest(p, pr);
            continue;
        }
        uint32_t i = CF_TASK_ID_CELL(h.id);
        size_t idx = i < DEPTH ? word_index(pr, (int)i) : 0;
        if (i >= DEPTH || !pr->cell[i] || CF_TASK_ID_GEN(h.id) != p->gens[idx] ||
            (h.id & 0xffffffffu) > CF_CELL_GEN_MASK ||
            CF_CELL_BASE(atomic_load(&p->claims[idx])) !=
                CF_CELL_WORD(p->gens[idx], CF_CELL_CLAIMED)) {
            protocol_error(pr, "an answer for a task it does not hold");
            return;
        }
        uint32_t n = pr->cell[i]->chunk_n;
        if ((h.type == CF_WIRE_RESULTS) != (n > 0) ||
            (h.type == CF_WIRE_RESULTS && !results_ok(&h, payload, n))) {
            protocol_error(pr, "an answer that does not match its task");
            return;
        }
        complete(p, pr, (int)i, &h, payload);
    }
}

/* Reads what @pr wrote; @drain: until EAGAIN (it is dead). */
static void read_proc(struct process_pool *p, struct pp_proc *pr, bool drain)
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

/* Writes @pr's pending frames until the pipe is full. */
static void write_proc(struct pp_proc *pr)
{
    struct cf_buf *b = &pr->out;
    while (pr->to_fd >= 0 && b->off < b->len) {
        ssize_t n = write(pr->to_fd, b->p + b->off, b->len - b->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (errno == EPIPE) {
                /* Dead reader: its EXITED report will come. Drop the SIGPIPE. */
                sigset_t s;
                sigemptyset(&s);
                sigaddset(&s, SIGPIPE);
                struct timespec zero = {0, 0};
                sigtimedwait(&s, NULL, &zero);
                cf_buf_consume(b, b->len - b->off);
                close_fd(&pr->to_fd);
            }
            return;
        }
        cf_buf_consume(b, (size_t)n);
    }
}

/* ---------------------------------------------------------- dispatch */

static int free_cell(const struct pp_proc *pr)
{
    for (int i = 0; i < DEPTH; i++)
        if (!pr->cell[i])
            return i;
    return -1;
}

/* True if @x is being cancelled (try_cancel) or is done. */
static inline bool cancelling(const struct pp_work *x)
{
    return atomic_load_explicit(&x->cancel_req, memory_order_relaxed) ||
           future_done(cf_work_future((struct cf_work *)&x->base));
}

/*
 * Encodes @w's frame (@total bytes) at @o, then looks for a cancel (after
 * the caller's fence): false if it is being cancelled, and then the bytes
 * are not to be sent.
 */
static bool encode_work(unsigned char *o, const struct pp_work *w, uint64_t id,
                        size_t total)
{
    const struct cf_work *cw = &w->base;
    uint64_t fn = (uint64_t)(uintptr_t)cw->fn;
    size_t fixed;
    if (w->chunk_n) {
        /* A map chunk: its items are encoded already (submit_chunk). */
        fixed = CF_WIRE_CHUNK_FIXED;
        cf_wire_put_hdr(o, CF_WIRE_CHUNK, id, total - CF_WIRE_HDR);
        cf_wire_put_chunk(o + CF_WIRE_HDR, fn, cw->limit_ns, w->chunk_n);
    } else {
        fixed = CF_WIRE_TASK_FIXED;
        cf_wire_put_hdr(o, CF_WIRE_TASK, id, total - CF_WIRE_HDR);
        cf_wire_put_task(o + CF_WIRE_HDR, fn, cw->limit_ns);
    }
    if (cw->arg_len && w->arg) /* no argument: nothing to copy, and w->arg may be NULL */
        memcpy(o + CF_WIRE_HDR + fixed, w->arg, cw->arg_len);
    return !cancelling(w);
}

/*
 * Sends @cw to @pr (which has a free cell). False: it is being cancelled, or
 * there is no memory for its frame; it was not sent and is the caller's again.
 */
static bool send_work(struct process_pool *p, struct pp_proc *pr, struct cf_work *cw)
{
    struct pp_work *w = work_of(cw);
    int i = free_cell(pr);
    size_t idx = word_index(pr, i);
    uint32_t gen = (p->gens[idx] + 1) & CF_CELL_GEN_MASK;
    p->gens[idx] = gen;
    /* No answer left from an earlier use can match this generation after a wrap. */
    atomic_store_explicit(&p->answers[idx].tag, 0, memory_order_relaxed);
    atomic_store(&p->claims[idx], CF_CELL_WORD(gen, CF_CELL_SENT));
    /*
     * Publish the claim (try_cancel finds the cell through it); then, past a
     * read-modify-write of `dekker` that pairs with the one in try_cancel
     * (whichever comes second sees the other's stores), look for a cancel
     * while encoding.
     */
    uint64_t claim = ((uint64_t)(idx + 1) << 32) | gen;
    size_t total = CF_WIRE_HDR + (w->chunk_n ? CF_WIRE_CHUNK_FIXED : CF_WIRE_TASK_FIXED) +
                   w->base.arg_len;
    atomic_store_explicit(&w->claim, claim, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->dekker, 1, memory_order_acq_rel);
    if (!cf_buf_reserve(&pr->out, total) ||
        !encode_work(pr->out.p + pr->out.len, w, CF_TASK_ID(i, gen), total)) {
        uint32_t expect = CF_CELL_WORD(gen, CF_CELL_SENT);
        atomic_compare_exchange_strong(&p->claims[idx], &expect,
                                       CF_CELL_WORD(gen, CF_CELL_CANCELLED));
        atomic_store_explicit(&w->claim, 0, memory_order_release);
        return false;
    }
    w->seq = ++p->send_seq;
    pr->out.len += total;
    pr->cell[i] = w;
    pr->ncells++;
    pr->nunstarted++;
    idle_update(p, pr);
    pr->budget -= tasks_in(w);
    return true;
}

/* The worker the next item goes to, forking one if that is best; or NULL. */
static struct pp_proc *pick(struct process_pool *p)
{
    struct pp_proc *best = NULL;
    int free_seat = -1;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (!pr) {
            if (free_seat < 0)
                free_seat = s;
            continue;
        }
        if (!proc_usable(pr) || pr->ncells >= DEPTH)
            continue;
        if (pr->ncells == 0)
            return pr;
        if (pr->ncells > 0 && pr->out.len - pr->out.off > SEND_AHEAD_BYTES)
            continue;
        if (!best || pr->ncells < best->ncells)
            best = pr;
    }
    /*
     * A fork that failed (RLIMIT_NPROC, memory) is not retried at once while
     * other workers run: the items go to them meanwhile.
     */
    bool others = false;
    for (int s = 0; s < p->nseats && !others; s++)
        others = p->seats[s] != NULL;
    if (free_seat >= 0 && !p->fs_gone && (!others || cf_now_ns() >= p->respawn_at)) {
        struct pp_proc *pr = spawn(p, free_seat);
        if (pr)
            return pr;
        if (p->fs_gone) {
            break_pool(p, "the process pool's fork server is gone");
            return NULL;
        }
        bool any = false;
        for (int s = 0; s < p->nseats; s++)
            any |= p->seats[s] != NULL;
        if (!any) {
            /* No worker exists and none can be made: nothing would run. */
            char msg[160];
            snprintf(msg, sizeof(msg), "a worker could not be started: %s",
                     strerror(errno));
            break_pool(p, msg);
            return NULL;
        }
    }
    return best;
}

/* Takes back about half of the unstarted tasks sent to the busiest worker. */
static void steal(struct process_pool *p)
{
    struct pp_proc *victim = NULL;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        /* Busy (something started there) or with more than one waiting. */
        bool busy = pr && pr->nunstarted > 0 &&
                    (pr->ncells > pr->nunstarted || pr->nunstarted > 1);
        if (busy && (!victim || pr->nunstarted > victim->nunstarted))
            victim = pr;
    }
    if (!victim)
        return;
    int want = (victim->nunstarted + 1) / 2;
    for (int i = DEPTH - 1; i >= 0 && want > 0; i--) {
        struct pp_work *w = victim->cell[i];
        if (!w || w->started || !cell_revoke(p, victim, i))
            continue;
        cell_release(p, victim, i);
        victim->budget += tasks_in(w);
        cf_fifo_push_front(&p->pend, &w->base);
        want--;
    }
}

static void dispatch(struct process_pool *p)
{
    if (atomic_load(&p->base.broken))
        return;
    if (!p->pend.head) {
        bool idle = false;
        for (int s = 0; s < p->nseats && !idle; s++)
            idle = p->seats[s] && proc_usable(p->seats[s]) && p->seats[s]->ncells == 0;
        if (idle)
            steal(p);
    }
    while (p->pend.head) {
        struct pp_proc *pr = pick(p);
        if (!pr)
            return;
        struct cf_work *cw = cf_fifo_pop(&p->pend);
        if (cancelling(work_of(cw))) {
            work_drop(cw); /* cancelled: future_cancel did the accounting */
            continue;
        }
        if (!send_work(p, pr, cw)) {
            if (cancelling(work_of(cw))) {
                work_drop(cw);
                continue;
            }
            /*
             * No memory for its frame. Nothing would wake the manager to try
             * again, so this task fails now; the pool goes on.
             */
            fail_one(p, work_of(cw), FUT_ENOMEM, -1, 0, "no memory for the task's frame");
        }
    }
}

/* ---------------------------------------------------------- claims, deadlines */

/* Notices claims and cancels of sent items; returns true if anything changed. */
static bool scan(struct process_pool *p)
{
    bool changed = false;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (!pr)
            continue;
        /* A worker may hold answers back while it runs a later task. */
        if (pr->ncells > pr->nunstarted)
            changed |= harvest(p, pr);
        if (pr->nunstarted == 0)
            continue;
        for (int i = 0; i < DEPTH; i++) {
            struct pp_work *w = pr->cell[i];
            if (!w || w->started)
                continue;
            size_t idx = word_index(pr, i);
            uint32_t word = CF_CELL_BASE(atomic_load(&p->claims[idx]));
            if (word == CF_CELL_WORD(p->gens[idx], CF_CELL_CLAIMED)) {
                mark_started(p, pr, w);
                changed = true;
            } else if (word == CF_CELL_WORD(p->gens[idx], CF_CELL_CANCELLED)) {
                /* A canceller revoked it: dispatch drops it. */
                cell_release(p, pr, i);
                pr->budget += tasks_in(w);
                cf_fifo_push_front(&p->pend, &w->base);
                changed = true;
            }
        }
    }
    return changed;
}

/* Fails tasks past their deadline and kills their workers; next event time. */
static int64_t deadlines(struct process_pool *p, int64_t now)
{
    int64_t next = CF_NO_DEADLINE;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (!pr)
            continue;
        if (pr->kill_at) {
            if (now >= pr->kill_at) {
                signal_proc(pr, SIGKILL);
                pr->kill_at = 0;
            } else {
                next = CF_MIN(next, pr->kill_at);
            }
        }
        for (int i = 0; i < DEPTH; i++) {
            struct pp_work *w = pr->cell[i];
            if (!w || !w->started || !w->base.limit_ns || w->expired)
                continue;
            if (now < w->deadline) {
                next = CF_MIN(next, w->deadline);
                continue;
            }
            w->expired = true;
            cf_executor_finished(&p->base, true);
            cf_work_expire(&w->base);
            if (!pr->killed) {
                signal_proc(pr, SIGTERM);
                pr->kill_at = now + KILL_GRACE_NS;
                next = CF_MIN(next, pr->kill_at);
            }
        }
    }
    return next;
}

/* ---------------------------------------------------------- deaths */

static void describe_exit(const struct pp_proc *pr, char *out, size_t n, int *code,
                          int *sig)
{
    *code = -1;
    *sig = 0;
    if (pr->spawn_err) {
        snprintf(out, n, "a worker could not be started: %s", strerror(pr->spawn_err));
    } else if (WIFSIGNALED(pr->status)) {
        *sig = WTERMSIG(pr->status);
        snprintf(out, n, "worker pid %d was killed by signal %d (%s)", (int)pr->pid, *sig,
                 strsignal(*sig));
    } else {
        *code = WEXITSTATUS(pr->status);
        snprintf(out, n, "worker pid %d exited with code %d", (int)pr->pid, *code);
    }
}

/*
 * The cell a worker that died unexpectedly was most likely receiving: none
 * if it had started a task; else its oldest sent task. -1 for none.
 */
static int poison_suspect(struct process_pool *p, struct pp_proc *pr)
{
    int best = -1;
    for (int i = 0; i < DEPTH; i++) {
        if (!pr->cell[i])
            continue;
        size_t idx = word_index(pr, i);
        uint32_t word = CF_CELL_BASE(atomic_load(&p->claims[idx]));
        if (word == CF_CELL_WORD(p->gens[idx], CF_CELL_CLAIMED))
            return -1;
        if (word == CF_CELL_WORD(p->gens[idx], CF_CELL_SENT) &&
            (best < 0 || pr->cell[i]->seq < pr->cell[best]->seq))
            best = i;
    }
    return best;
}

/* @pr exited (or never started): settle each of its cells, free its seat. */
static void finalize(struct process_pool *p, struct pp_proc *pr)
{
    if (pr->from_fd >= 0 && !(pr->eof && pr->why[0]))
        read_proc(p, pr, true);
    harvest(p, pr); /* answers it left before it died count, NOTE or not */
    close_fd(&pr->from_fd);
    close_fd(&pr->to_fd);
    char msg[512], desc[256];
    int code, sig;
    describe_exit(pr, desc, sizeof(desc), &code, &sig);
    bool broke = false;
    bool expected = pr->closing || pr->killed || pr->budget <= 0;
    if (p->base.opts.on_worker_death == FUT_WORKER_BREAK_POOL) {
        /* Broken before any future fails FUT_EBROKEN (DESIGN). */
        bool lost = !expected;
        for (int i = 0; i < DEPTH; i++) {
            size_t idx = word_index(pr, i);
            lost |= pr->cell[i] && !pr->cell[i]->expired &&
                    CF_CELL_BASE(atomic_load(&p->claims[idx])) ==
                        CF_CELL_WORD(p->gens[idx], CF_CELL_CLAIMED);
        }
        if (lost)
            cf_executor_mark_broken(&p->base);
    }
    /* A worker that was never forked did not die of what it was sent. */
    int suspect = expected || pr->spawn_err ? -1 : poison_suspect(p, pr);
    for (int i = 0; i < DEPTH; i++) {
        if (!pr->cell[i])
            continue;
        if (i == suspect && ++pr->cell[i]->poison >= POISON_MAX &&
            cell_revoke(p, pr, i)) {
            /* Each worker it went to died before starting it: stop retrying. */
            snprintf(msg, sizeof(msg), "%s before starting the task (%u workers did)",
                     desc, pr->cell[i]->poison);
            fail_one(p, cell_release(p, pr, i), FUT_EWORKER, code, sig, msg);
            continue;
        }
        bool unclaimed = cell_revoke(p, pr, i);
        size_t idx = word_index(pr, i);
        bool claimed = CF_CELL_BASE(atomic_load(&p->claims[idx])) ==
                       CF_CELL_WORD(p->gens[idx], CF_CELL_CLAIMED);
        if (claimed)
            mark_started(p, pr, pr->cell[i]);
        struct pp_work *w = cell_release(p, pr, i);
        if (unclaimed) {
            cf_fifo_push_front(&p->pend,
                               &w->base); /* never started: another worker runs it */
        } else if (claimed) {
            snprintf(msg, sizeof(msg), "%s while running the task%s%s", desc,
                     pr->why[0] ? "; " : "", pr->why);
            if (p->base.opts.on_worker_death == FUT_WORKER_BREAK_POOL && !w->expired) {
                broke = true;
                fail_one(p, w, FUT_EBROKEN, code, sig, msg);
            } else {
                fail_one(p, w, FUT_EWORKER, code, sig, msg);
            }
        } else {
            cf_fifo_push_front(&p->pend,
                               &w->base); /* revoked by a canceller: dropped there */
        }
    }
    if (p->base.opts.on_worker_death == FUT_WORKER_BREAK_POOL && !expected)
        broke = true;
    p->seats[pr->seat] = NULL;
    atomic_fetch_sub(&p->nworkers, 1);
    bool spawn_failed = pr->spawn_err != 0;
    cf_buf_free(&pr->in);
    cf_buf_free(&pr->out);
    free(pr);
    if (broke) {
        snprintf(msg, sizeof(msg), "a process in the pool terminated abruptly: %s", desc);
        break_pool(p, msg);
    } else if (spawn_failed) {
        p->respawn_every =
            CF_MIN(CF_MAX(2 * p->respawn_every, RESPAWN_MIN_NS), RESPAWN_MAX_NS);
        p->respawn_at = cf_now_ns() + p->respawn_every;
        bool any = false;
        for (int s = 0; s < p->nseats; s++)
            any |= p->seats[s] != NULL;
        if (!any && p->pend.head)
            break_pool(p, desc);
    }
}

/* Fails everything with FUT_EBROKEN, kills every worker (Python's behaviour). */
static void break_pool(struct process_pool *p, const char *why)
{
    if (p->broken_done)
        return;
    p->broken_done = true;
    cf_executor_mark_broken(&p->base);
    cf_lock(&p->lock);
    struct cf_work_fifo q = cf_fifo_take(&p->sub);
    cf_unlock(&p->lock);
    cf_fifo_splice(&p->pend, &q);
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (!pr)
            continue;
        for (int i = 0; i < DEPTH; i++) {
            if (!pr->cell[i])
                continue;
            cell_revoke(p, pr, i);
            struct pp_work *w = cell_release(p, pr, i);
            if (w->started)
                fail_one(p, w, FUT_EBROKEN, -1, 0, why);
            else
                cf_fifo_push(&p->pend, &w->base);
        }
        signal_proc(pr, SIGKILL);
    }
    cf_executor_drain_fifo(&p->base, &p->pend, FUT_EBROKEN, why, work_drop);
}

static void fs_message(struct process_pool *p, const struct cf_fs_msg *m)
{
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (!pr)
            continue;
        if (m->op == CF_FS_SPAWNED && m->seat == s && m->gen == pr->spawn_gen) {
            pr->spawned = true;
            if (m->pid <= 0) {
                pr->spawn_err = m->err ? m->err : EAGAIN;
                pr->exited = true;
                idle_update(p, pr);
                finalize(p, pr);
                return;
            }
            pr->pid = m->pid;
            p->respawn_every = 0;
            idle_update(p, pr);
            if (pr->kill_sig)
                kill(pr->pid, pr->kill_sig);
            return;
        }
        if (m->op == CF_FS_EXITED && pr->spawned && pr->pid == m->pid) {
            pr->exited = true;
            pr->status = m->status;
            idle_update(p, pr);
            finalize(p, pr);
            return;
        }
    }
}

static void read_fs(struct process_pool *p)
{
    struct cf_fs_msg m;
    int rc;
    while ((rc = cf_forkserver_recv(p->fs_sock, &m)) == 1)
        fs_message(p, &m);
    if (rc < 0 && !p->fs_gone) {
        p->fs_gone = true;
        break_pool(p, "the process pool's fork server is gone");
        /* No exit report will come: its workers die with it (PDEATHSIG). */
        for (int s = 0; s < p->nseats; s++) {
            struct pp_proc *pr = p->seats[s];
            if (!pr)
                continue;
            pr->exited = true;
            pr->status = SIGKILL; /* a wait status: killed by SIGKILL */
            idle_update(p, pr);
            finalize(p, pr);
        }
    }
}

/* ---------------------------------------------------------- the loop */

/* Moves submitted items to the pending list; true if the manager may leave. */
static bool intake(struct process_pool *p, bool idle)
{
    cf_lock(&p->lock);
    struct cf_work_fifo q = cf_fifo_take(&p->sub);
    bool stop = atomic_load(&p->stopping) || atomic_load(&p->base.broken);
    bool leave = idle && !q.head && stop;
    if (leave)
        p->exiting = true;
    cf_unlock(&p->lock);
    if (q.head) {
        cf_fifo_splice(&p->pend, &q);
        if (atomic_load(&p->base.broken))
            cf_executor_drain_fifo(&p->base, &p->pend, FUT_EBROKEN,
                                   "the process pool is broken", work_drop);
    }
    return leave;
}

/* shutdown(cancel_futures): cancel everything not started. */
static void cancel_all(struct process_pool *p)
{
    uint32_t req = atomic_load(&p->cancel_req);
    if (req == atomic_load(&p->cancel_done))
        return;
    cf_executor_drain_fifo(&p->base, &p->pend, FUT_ECANCELLED, NULL, work_drop);
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        for (int i = 0; pr && i < DEPTH; i++)
            if (pr->cell[i] && !pr->cell[i]->started)
                future_cancel(cf_work_future(&pr->cell[i]->base));
    }
    scan(p);
    atomic_store(&p->cancel_done, req);
    cf_futex_wake(&p->cancel_done, INT_MAX);
}

static bool all_empty(struct process_pool *p)
{
    if (p->pend.head)
        return false;
    for (int s = 0; s < p->nseats; s++)
        if (p->seats[s] && p->seats[s]->ncells)
            return false;
    return true;
}

/* Polls every fd for up to @timeout_ns; handles what is ready. */
static void poll_once(struct process_pool *p, int64_t timeout_ns)
{
    int n = 0;
    p->pfd[n++] = (struct pollfd){.fd = p->wake_fd, .events = POLLIN};
    p->pfd[n++] = (struct pollfd){.fd = p->fs_gone ? -1 : p->fs_sock, .events = POLLIN};
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (!pr)
            continue;
        if (pr->from_fd >= 0 && !pr->eof) {
            p->pproc[n] = pr;
            p->pfd[n++] = (struct pollfd){.fd = pr->from_fd, .events = POLLIN};
        }
        if (pr->to_fd >= 0 && pr->out.len > pr->out.off) {
            p->pproc[n] = pr;
            p->pfd[n++] = (struct pollfd){.fd = pr->to_fd, .events = POLLOUT};
        }
    }
    int ms = timeout_ns == CF_NO_DEADLINE
                 ? -1
                 : (int)CF_MIN((timeout_ns + 999999) / 1000000, (int64_t)INT_MAX);
    int rc = poll(p->pfd, (nfds_t)n, ms);
    atomic_store(&p->sleeping, false);
    if (rc <= 0)
        return;
    if (p->pfd[0].revents) {
        uint64_t v;
        while (read(p->wake_fd, &v, sizeof(v)) > 0)
            ;
        atomic_store(&p->wake_pending, false);
    }
    for (int k = 2; k < n; k++) {
        if (!p->pfd[k].revents)
            continue;
        struct pp_proc *pr = p->pproc[k];
        if (p->pfd[k].events == POLLIN)
            read_proc(p, pr, false);
        else
            write_proc(pr);
    }
    if (p->pfd[1].revents)
        read_fs(p); /* last: it may free procs seen above */
}

static void *manager_main(void *arg)
{
    struct process_pool *p = arg;
    cf_executor_bind_thread(&p->base);
    p->scan_every = SCAN_MIN_NS;
    int64_t next_scan = 0;
    bool leaving = false;
    for (;;) {
        uint32_t k = atomic_load(&p->kick);
        bool idle = all_empty(p);
        if (!leaving && intake(p, idle))
            leaving = true;
        cancel_all(p);
        if (leaving) {
            for (int s = 0; s < p->nseats; s++)
                if (p->seats[s] && !p->seats[s]->closing) {
                    p->seats[s]->closing = true;
                    close_fd(&p->seats[s]->to_fd);
                }
            bool any = false;
            for (int s = 0; s < p->nseats; s++)
                any |= p->seats[s] != NULL;
            if (!any)
                break;
        }
        dispatch(p);
        for (int s = 0; s < p->nseats; s++)
            if (p->seats[s])
                write_proc(p->seats[s]);
        int64_t now = cf_now_ns();
        bool changed = scan(p); /* may put revoked tasks back on the pending list */
        if (changed)
            p->scan_every = SCAN_MIN_NS;
        int64_t next = deadlines(p, now);
        /* Scan while a task is out: for claims, and for answers held back. */
        bool out = false;
        for (int s = 0; s < p->nseats; s++)
            out |= p->seats[s] && p->seats[s]->ncells > 0;
        if (out) {
            if (now >= next_scan) {
                next_scan = now + p->scan_every;
                p->scan_every = CF_MIN(p->scan_every * 2, SCAN_MAX_NS);
            }
            next = CF_MIN(next, next_scan);
        } else {
            p->scan_every = SCAN_MIN_NS;
        }
        atomic_store(&p->sleeping, true);
        /* Work dropped above may have made a stopping pool idle: leave now. */
        bool may_leave = !leaving && all_empty(p) &&
                         (atomic_load(&p->stopping) || atomic_load(&p->base.broken));
        if (changed || may_leave || atomic_load(&p->kick) != k ||
            atomic_load(&p->cancel_req) != atomic_load(&p->cancel_done)) {
            atomic_store(&p->sleeping, false);
            poll_once(p, 0);
            continue;
        }
        poll_once(p, next == CF_NO_DEADLINE ? CF_NO_DEADLINE : CF_MAX(next - now, 0));
    }
    /* Every worker is gone: let the fork server go too. */
    close_fd(&p->fs_sock);
    while (waitpid(p->fs_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    atomic_store(&p->nidle, 0);
    atomic_store(&p->manager_done, true);
    atomic_fetch_add(&p->cancel_done, 1);
    cf_futex_wake(&p->cancel_done, INT_MAX);
    if (cf_executor_free_later(&p->base))
        cf_executor_self_free(&p->base); /* may free the pool */
    else
        cf_executor_bind_thread(NULL);
    return NULL;
}

/* ---------------------------------------------------------- ops */

/* Readies @cw for the queue: copies its argument. 0 or a code. */
static int work_prepare(struct cf_work *cw)
{
    struct pp_work *w = work_of(cw);
    atomic_init(&w->claim, 0);
    atomic_init(&w->cancel_req, false);
    w->started = w->expired = false;
    w->deadline = 0;
    w->chunk_n = 0;
    w->arg = NULL;
    w->seq = 0;
    w->poison = 0;
    if (cw->arg_len > CF_WIRE_MAX_PAYLOAD / 2 || (cw->arg_len && !cw->arg))
        return FUT_EINVAL;
    if (cw->arg_len <= INLINE_ARG) {
        w->arg = w->inl;
    } else {
        w->arg = malloc(cw->arg_len);
        if (!w->arg)
            return FUT_ENOMEM;
    }
    if (cw->arg_len)
        memcpy(w->arg, cw->arg, cw->arg_len);
    cw->arg = w->arg;
    return 0;
}

static void work_unprepare(struct cf_work *cw)
{
    struct pp_work *w = work_of(cw);
    if (w->arg != w->inl)
        free(w->arg);
    w->arg = NULL;
}

/* Appends @cw to the submit FIFO: 0 or a code. */
static int enqueue(struct process_pool *p, struct cf_work *cw)
{
    cf_lock(&p->lock);
    int rc = 0;
    if (atomic_load(&p->stopping) || p->exiting)
        rc = atomic_load(&p->base.broken) && !atomic_load(&p->stopping) ? FUT_EBROKEN
                                                                        : FUT_ESHUTDOWN;
    else if (atomic_load(&p->base.broken))
        rc = FUT_EBROKEN;
    if (rc == 0) {
        cf_fifo_push(&p->sub, cw);
    }
    cf_unlock(&p->lock);
    if (rc == 0)
        kick(p);
    return rc;
}

static int pp_submit(executor_t *ex, struct cf_work *cw)
{
    int rc = work_prepare(cw);
    if (rc < 0)
        return rc;
    rc = enqueue(pp_of(ex), cw);
    if (rc < 0)
        work_unprepare(cw);
    return rc;
}

/*
 * A map chunk as one task: the @n items args[j], lens[j] (NULL: all 0) are
 * encoded here into one CHUNK item block, the work item's argument, so that
 * a chunk costs one allocation, not one per item.
 */
static int pp_submit_chunk(executor_t *ex, struct cf_work *cw, const void *const *args,
                           const size_t *lens, size_t n)
{
    if (n == 0 || n > UINT32_MAX)
        return FUT_EINVAL;
    uint64_t total = 0;
    for (size_t j = 0; j < n; j++) {
        size_t len = lens ? lens[j] : 0;
        if (len && !args[j])
            return FUT_EINVAL;
        total += CF_WIRE_ITEM_HDR + (uint64_t)len;
        if (total > CF_WIRE_MAX_PAYLOAD / 2)
            return FUT_EINVAL;
    }
    cw->arg = NULL;
    cw->arg_len = 0;
    int rc = work_prepare(cw);
    if (rc < 0)
        return rc;
    unsigned char *blob = malloc((size_t)total), *o = blob;
    if (!blob)
        return FUT_ENOMEM;
    for (size_t j = 0; j < n; j++) {
        size_t len = lens ? lens[j] : 0;
        cf_wire_put_item(o, len);
        if (len)
            memcpy(o + CF_WIRE_ITEM_HDR, args[j], len);
        o += CF_WIRE_ITEM_HDR + len;
    }
    struct pp_work *w = work_of(cw);
    w->arg = blob;
    w->chunk_n = (uint32_t)n;
    cw->arg = blob;
    cw->arg_len = (size_t)total;
    rc = enqueue(pp_of(ex), cw);
    if (rc < 0)
        work_unprepare(cw); /* frees the block */
    return rc;
}

/*
 * The next answer in a chunk's result (a RESULTS payload, checked by
 * results_ok when it came in). *cursor 0 is the first answer.
 */
static int pp_chunk_next(const void *res, size_t res_len, size_t *cursor,
                         const void **data, size_t *len)
{
    uint64_t off = *cursor ? *cursor : CF_WIRE_RESULTS_FIXED;
    uint32_t kind;
    int32_t code;
    *data = NULL;
    *len = 0;
    if (off >= res_len)
        return FUT_EOF;
    if (cf_wire_next_answer(res, res_len, &off, &kind, &code, data, len) != 0)
        return FUT_EOF; /* cannot happen: results_ok checked every answer */
    *cursor = (size_t)off;
    if (kind != 0) {
        *data = NULL;
        *len = 0;
        return FUT_ETASK;
    }
    return 0;
}

/*
 * Called by future_cancel, under the future's lock, for a pending future:
 * true if the task has not started and now never will (the cancel goes on),
 * false if its worker claimed it already (it counts as running).
 */
static bool pp_try_cancel(executor_t *ex, struct cf_work *cw)
{
    struct process_pool *p = pp_of(ex);
    struct pp_work *w = work_of(cw);
    atomic_store(&w->cancel_req, true);
    atomic_fetch_add_explicit(&p->dekker, 1,
                              memory_order_acq_rel); /* pairs with send_work's */
    for (;;) {
        uint64_t c = atomic_load(&w->claim);
        if (c == 0)
            return true; /* not sent; the manager sees cancel_req before sending */
        size_t idx = (size_t)(c >> 32) - 1;
        uint32_t gen = (uint32_t)c;
        uint32_t expect = CF_CELL_WORD(gen, CF_CELL_SENT);
        if (atomic_compare_exchange_strong(&p->claims[idx], &expect,
                                           CF_CELL_WORD(gen, CF_CELL_CANCELLED))) {
            kick(p); /* the manager frees the cell */
            return true;
        }
        if (CF_CELL_BASE(expect) == CF_CELL_WORD(gen, CF_CELL_CLAIMED)) {
            /* Started: ask it to stop (task_should_stop), as for a running one. */
            uint32_t claimed = CF_CELL_WORD(gen, CF_CELL_CLAIMED);
            atomic_compare_exchange_strong(&p->claims[idx], &claimed,
                                           claimed | CF_CELL_STOP);
            atomic_store(&w->cancel_req, false);
            return false;
        }
        if (expect == CF_CELL_WORD(gen, CF_CELL_CANCELLED)) {
            /* Revoked (its chunk, or a requeue): the manager sees cancel_req. */
            kick(p);
            return true;
        }
        /* The manager is moving it (revoked, or the cell reused): look again. */
        cf_cpu_relax();
    }
}

/*
 * Called by future_cancel, under the future's lock, for a running future:
 * tells the worker (task_should_stop turns true there).
 */
static void pp_request_stop(executor_t *ex, struct cf_work *cw)
{
    struct process_pool *p = pp_of(ex);
    uint64_t c = atomic_load(&work_of(cw)->claim);
    if (c == 0)
        return; /* answered already */
    size_t idx = (size_t)(c >> 32) - 1;
    uint32_t claimed = CF_CELL_WORD((uint32_t)c, CF_CELL_CLAIMED);
    uint32_t expect = claimed;
    /* Only while this very claim holds the cell. */
    atomic_compare_exchange_strong(&p->claims[idx], &expect, claimed | CF_CELL_STOP);
}

static void pp_shutdown(executor_t *ex, bool cancel_futures)
{
    struct process_pool *p = pp_of(ex);
    cf_lock(&p->lock);
    atomic_store(&p->stopping, true);
    struct cf_work_fifo q = {0};
    if (cancel_futures)
        q = cf_fifo_take(&p->sub);
    cf_unlock(&p->lock);
    cf_executor_drain_fifo(ex, &q, FUT_ECANCELLED, NULL, work_drop);
    if (!cancel_futures) {
        kick(p);
        return;
    }
    uint32_t req = atomic_fetch_add(&p->cancel_req, 1) + 1;
    kick(p);
    if (cf_executor_on_own_thread(ex))
        return; /* a callback on the manager: it cancels when the callback returns */
    for (;;) {
        uint32_t done = atomic_load(&p->cancel_done);
        if ((int32_t)(done - req) >= 0 || atomic_load(&p->manager_done))
            break;
        cf_futex_wait(&p->cancel_done, done);
    }
}

static void pp_join(executor_t *ex)
{
    pthread_join(pp_of(ex)->manager, NULL);
}

static void pp_destroy(executor_t *ex)
{
    struct process_pool *p = pp_of(ex);
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    if (p->claims)
        munmap((void *)p->claims, p->claims_bytes);
    free(p->seats);
    free(p->gens);
    free(p->pfd);
    free(p->pproc);
    cf_executor_deinit(ex);
    free(p);
}

static void pp_stats(executor_t *ex, executor_stats_t *out)
{
    struct process_pool *p = pp_of(ex);
    out->workers = atomic_load_explicit(&p->nworkers, memory_order_relaxed);
    out->idle =
        CF_MIN(atomic_load_explicit(&p->nidle, memory_order_relaxed), out->workers);
}

static const struct cf_executor_ops process_pool_ops = {
    .work_size = sizeof(struct pp_work),
    .submit = pp_submit,
    .submit_chunk = pp_submit_chunk,
    .chunk_next = pp_chunk_next,
    .try_cancel = pp_try_cancel,
    .request_stop = pp_request_stop,
    .shutdown = pp_shutdown,
    .join = pp_join,
    .destroy = pp_destroy,
    .stats = pp_stats,
};

/* ---------------------------------------------------------- creation */

static void worker_entry(void *ud, int seat, int in_fd, int out_fd)
{
    struct process_pool *p = ud;
    cf_worker_main(&p->wcfg, seat, in_fd, out_fd);
}

/* Frees a pool whose manager never started. */
static void abandon(struct process_pool *p, bool inited)
{
    if (p->fs_sock >= 0) {
        close(p->fs_sock);
        while (waitpid(p->fs_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (inited) {
        pp_destroy(&p->base);
    } else {
        free(p);
    }
}

executor_t *process_pool_executor_new(const executor_options_t *o)
{
    struct process_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return cf_fail_null(FUT_ENOMEM);
    p->wake_fd = -1;
    p->fs_sock = -1;
    int rc = cf_executor_init(&p->base, &process_pool_ops, o, cf_cpu_count());
    if (rc < 0) {
        free(p);
        return cf_fail_null(rc);
    }
    if (p->base.opts.max_workers > 4096) {
        abandon(p, true);
        return cf_fail_null(FUT_EINVAL);
    }
    p->lock = (cf_lock_t)CF_LOCK_INIT;
    p->nseats = p->base.opts.max_workers;
    p->seats = calloc((size_t)p->nseats, sizeof(*p->seats));
    p->gens = calloc((size_t)p->nseats * DEPTH, sizeof(*p->gens));
    p->pfd = calloc(2 + 2 * (size_t)p->nseats, sizeof(*p->pfd));
    p->pproc = calloc(2 + 2 * (size_t)p->nseats, sizeof(*p->pproc));
    if (!p->seats || !p->gens || !p->pfd || !p->pproc) {
        abandon(p, true);
        return cf_fail_null(FUT_ENOMEM);
    }
    size_t words = (size_t)p->nseats * DEPTH * sizeof(uint32_t);
    size_t answers_at = (words + 63) & ~(size_t)63;
    p->claims_bytes =
        answers_at + (size_t)p->nseats * DEPTH * sizeof(struct cf_answer_rec);
    void *m = mmap(NULL, p->claims_bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        int err = errno;
        abandon(p, true);
        errno = err;
        return cf_fail_null(err == ENOMEM ? FUT_ENOMEM : FUT_ESYS);
    }
    p->claims = m;
    p->answers = (struct cf_answer_rec *)((unsigned char *)m + answers_at);
    p->wcfg = (struct cf_worker_cfg){
        .claims = p->claims,
        .answers = p->answers,
        .depth = DEPTH,
        .initializer = p->base.opts.initializer,
        .initarg = p->base.opts.initarg,
        .initarg_len = p->base.opts.initarg_len,
        .max_tasks = p->base.opts.max_tasks_per_child,
    };
    p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wake_fd < 0) {
        abandon(p, true);
        return cf_fail_null(FUT_ESYS);
    }
    /* Forked now, before this pool has any thread. */
    rc = cf_forkserver_start(worker_entry, p, p->nseats, &p->fs_pid, &p->fs_sock);
    if (rc < 0) {
        int err = errno;
        abandon(p, true);
        errno = err;
        return cf_fail_null(rc);
    }
    rc = cf_start_thread(&p->manager, manager_main, p);
    if (rc != 0) {
        abandon(p, true);
        errno = rc;
        return cf_fail_null(FUT_ESYS);
    }
    return &p->base;
}
