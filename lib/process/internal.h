/*
 * internal.h: the process pool's structs, constants and internal functions,
 * shared by the files of lib/process/ and by nothing else (as libuv's
 * src/unix/internal.h).
 *
 * DESIGN
 * Pieces: a fork server (forkserver.c), forked in process_pool_executor_new
 * before the pool starts any thread, forks the workers (worker.c); one
 * manager thread owns every pipe, in non-blocking mode under poll(); frames
 * are wire.c's. The parent's side is split by concern:
 *
 *   pool.c      the executor face: submit, submit_chunk, shutdown, join,
 *               stats, create; the manager's wake-up (kick)
 *   claims.c    the cell words and both halves of the send/cancel
 *               handshake (send, try_cancel, request_stop)
 *   dispatch.c  which worker gets a task (pick), stealing, writing frames
 *   answers.c   reading, validating and completing answers; protocol
 *               errors; chunk_next
 *   manager.c   the manager loop, claim scan, deadlines, deaths (finalize),
 *               breaking the pool
 *   seats.c     spawning and signalling workers, the fork server's reports
 *   kill.c      killing every worker on purpose (terminate_workers,
 *               shutdown_timed)
 *
 * Submit appends the work item to a FIFO under the pool lock and wakes the
 * manager through an eventfd, written (non-blocking, after unlocking) only
 * when the manager is about to sleep or sleeping and no wake-up is pending.
 * Submit never waits for the manager.
 *
 * The manager moves submitted items to its own pending list and sends them
 * ahead to workers: an idle worker first, then a new worker (up to
 * max_workers), then the least loaded one, up to DEPTH items per worker.
 * Both lists are in priority order (FIFO within a level). Once a priority
 * other than 0 was used, a task that reaches the head of the pending list
 * takes back every task of lower priority sent ahead and not started
 * (revoke, as a steal), so no worker starts one while it waits. Resizing
 * lowers `active`: a worker in a seat at or past it gives its unstarted
 * tasks back and has its task pipe closed once it has none.
 * Frames for one worker are batched in its output buffer and written in one
 * call. A worker that runs dry takes back ("steals") piped items sent to a
 * busy one and not started there.
 *
 * The shared queue (worker.h): an item is not piped: its cell's slot gets the task (the
 * argument, or a chunk's CHUNK payload, in a heap.c block when over
 * CF_SLOT_ARG bytes; piped after all if it is over 1 MiB or the heap is
 * full: then only a worker that runs nothing gets it, once every queued
 * task before it has started, dispatch.c piped_may_go) and the queue an
 * entry, and any free worker claims the oldest entry still SENT. The cell
 * stays the picked worker's (its seat numbers the claim word, answer
 * record and slot), but the claim word names the worker that runs it (the
 * runner): answers come from the runner, a deadline kills the runner, the
 * runner's death fails it. A worker that dies while another runs a task
 * of its cells leaves its seat "finalized" until that task is answered
 * (cf_pp_reap frees it).
 * After appending, dispatch wakes one sleeping worker per entry (a NOTE
 * frame down its pipe); grow() forks into a free seat when queued tasks
 * wait and every worker runs one.
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
 * every scan (a worker holds answers back only while a task it had buffered
 * waits behind the one it runs; the scan timer runs while such a task is not
 * known to have started, at most SCAN_MAX_NS apart, so a held answer waits
 * at most that; with every sent task started the manager sleeps in poll()
 * without a timeout, after looking again for MANAGER_SPIN_NS if an event
 * woke it: manager.c's spin_poll), and from a dead worker before
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
 * A task that goes back so (or taken back by a steal, a shrink, a
 * preemption from a pipe) takes back with it the queued tasks it is to
 * start before (dispatch.c, cf_pp_requeue_first).
 * Queued SENT cells stay in the queue instead, so they keep their place
 * (but the poison suspect of a death we did not ask for: manager.c): the
 * seat stays "finalized" with them, and the next worker forked into it
 * adopts them (cf_pp_spawn).
 *
 * Deadlines: when a started task's limit passes, its future fails
 * FUT_EDEADLINE at once, the worker running it gets SIGTERM and, after KILL_GRACE_NS,
 * SIGKILL; a replacement is forked on demand. A worker that has returned from
 * the task by then is left alone (cf_pp_doom, the seat's `running` word in
 * worker.h): it may be running the next task already.
 *
 * Threads: submitters and cancellers (any thread), the manager (all I/O, all
 * completions, so done-callbacks run there). Shutdown with cancel_futures
 * asks the manager to cancel what it holds and waits for its answer, unless
 * called from the manager itself. Every function below that takes a pool
 * runs on the manager, except cf_pp_kick, cf_pp_try_cancel and
 * cf_pp_request_stop (any thread) and cf_pp_work_drop (either).
 *
 * A pump (pump.h; the MPI relay) is called first in each manager pass and
 * may bound the manager's sleep; while it does, the manager's own spin
 * (spin_poll) is left to it. A pool that breaks once a pump is set keeps
 * its manager until shutdown.
 *
 * Locks: the pool `lock` (submit FIFO, stopping/exiting flags) is never held
 * while calling out. The manager's own state needs no lock. try_cancel runs
 * under the future's lock and only touches atomics.
 */
#ifndef CF_PROCESS_INTERNAL_H
#define CF_PROCESS_INTERNAL_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "executor.h"
#include "forkserver.h"
#include "heap.h"
#include "pump.h"
#include "util.h"
#include "wire.h"
#include "worker.h"

#define DEPTH 64                   /* cells (tasks sent ahead) per worker */
#define SEND_AHEAD_BYTES (1 << 20) /* a busy worker's unsent bytes cap */
#define HEAP_AHEAD_BYTES (1 << 20) /* heap bytes in flight a worker (claims.c) */
#define KILL_GRACE_NS (200 * 1000000LL)
#define SCAN_MIN_NS (1000000LL)
#define SCAN_MAX_NS (1000000LL)   /* future_running within 1 ms of a start */
#define MANAGER_SPIN_NS (50000LL) /* looks again before it sleeps (manager.c) */
#define READ_BYTES (256 * 1024)   /* the least room a read of a worker's pipe gets */
/* A frame's buffer grows at most this far past its data. */
#define READ_AHEAD (4u << 20)
/* Arguments up to this size are copied into the work item (no block of their own). */
#define INLINE_ARG 24
/* A task whose workers die this often before it starts fails FUT_EWORKER. */
#define POISON_MAX 3
/* After a fork fails while other workers run: no new fork for this long (doubling). */
#define RESPAWN_MIN_NS (10 * 1000000LL)
#define RESPAWN_MAX_NS (1000 * 1000000LL)

struct pp_work {
    struct cf_work base;     /* base.arg: our copy of the argument (inl for small ones),
                                or the submitter's own bytes if `borrowed` */
    _Atomic uint64_t claim;  /* 0, or (claim word index + 1) << 32 | generation */
    int64_t deadline;        /* manager: when started with a limit */
    uint64_t seq;            /* manager: send order */
    uint64_t order;          /* submit order (lock): FIFO within a priority */
    uint32_t chunk_n;        /* a map chunk (one task): items in its arg, or 0 */
    uint32_t heap_off;       /* manager: where its argument's heap block is */
    _Atomic bool cancel_req; /* a canceller is cancelling it (try_cancel) */
    bool started;            /* manager: the future is RUNNING and counted */
    bool expired;            /* manager: failed by its deadline */
    bool queued;             /* manager: sent through the shared queue */
    uint8_t heap_cls;        /* manager: its argument's heap block class, or 0 */
    uint8_t poison;          /* manager: workers that died receiving it (<= POISON_MAX) */
    bool borrowed;           /* base.arg is the submitter's (borrow_arg): cf_pp_send */
    unsigned char inl[INLINE_ARG];
};
/* With the future's 72 bytes, 192: one block class (blocks.h), 48 bytes less
   first touched a pending task than the 240 of a looser layout (W3). */
_Static_assert(sizeof(struct pp_work) <= 120,
               "a process-pool task must fit a 192-byte block");

/* One worker process in a seat; the manager's alone. */
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
    int budget;         /* tasks it may still run (max_tasks_per_child; claims.c) */
    int ncells;         /* occupied cells */
    int nunstarted;     /* occupied, not yet known as started */
    int nrun;           /* started tasks it runs (any seat's cells), not settled */
    struct pp_work *cell[DEPTH];
    uint64_t used;     /* bit i: cell[i] is occupied (claims.c keeps it) */
    uint64_t limited;  /* bit i: and its task has a time limit */
    bool idle_counted; /* counted in the pool's nidle */
    bool finalized;    /* exited and settled; the seat waits for cells others run */
    bool quit;         /* CF_SEAT_QUIT is set in its seat word */
    int npiped;        /* occupied cells sent through its pipe */
    bool runs;         /* dispatch's scratch: it runs a task (piped_may_go) */
    bool rejected;     /* it sent REJECT (a bad task frame): `why` is its words */
    char why[160];     /* a protocol error, or its REJECT's words: for the message */
    struct cf_buf out, in;
};

struct process_pool {
    struct executor base;
    /* submit side: lock */
    cf_lock_t lock;
    struct cf_work_fifo sub;
    uint64_t sub_order;    /* submits so far: lock */
    bool exiting;          /* the manager is leaving: lock */
    _Atomic bool stopping; /* shutdown called (written under lock) */
    /* wake-ups */
    int wake_fd;               /* eventfd; immutable */
    _Atomic uint32_t kick;     /* bumped by anything the manager must see */
    _Atomic bool sleeping;     /* the manager is in (or entering) poll */
    _Atomic bool napping;      /* it is in a blocking poll, not a spin's (a hint) */
    _Atomic bool wake_pending; /* the eventfd was written and not yet read */
    _Atomic uint32_t cancel_req, cancel_done; /* shutdown(cancel_futures) hand-off */
    _Atomic uint32_t kill_req, kill_done;     /* cf_pp_kill_workers hand-off (kill.c) */
    int kill_sig;                             /* the signal asked for: lock */
    bool kill_break;                          /* and whether to break the pool: lock */
    /* cf_pp_send and try_cancel order their claim/cancel here: a line away
       from kick, which every submit bumps (the manager's read-modify-write
       of it for each send was half of cf_pp_send's time in W3, perf) */
    _Alignas(64) _Atomic uint32_t dekker;
    _Atomic bool manager_done;
    _Atomic bool calling; /* the manager runs done-callbacks (user code: kill.c) */
    struct cf_callback_guard cb_guard; /* the manager's (cf_pp_manager_bind) */
    _Atomic(cf_pp_pump_fn) pump;       /* set once (pump.h); pump_ud before it */
    void *pump_ud;
    bool pump_seen;         /* manager: the pass began with a pump */
    _Atomic bool prio_seen; /* a task with a priority other than 0 was submitted */
    _Atomic int active;     /* seats that may hold a worker (set_max_workers) */
    /* immutable after _new */
    pthread_t manager;
    int nseats;
    _Atomic uint32_t *claims;
    struct cf_answer_rec *answers; /* in the same mapping, after the claim words */
    struct cf_task_slot *slots;    /* then the task slots (worker.h) */
    struct cf_seat_word *seatw;    /* then one word per seat */
    struct cf_ring *ring;          /* then the shared queue; NULL: not used */
    struct cf_heap heap;           /* queued tasks' bigger arguments (heap.c) */
    uint64_t ring_mask;
    uint64_t ring_head_seen; /* manager: the queue's head, last read (it only grows) */
    size_t claims_bytes;     /* the whole mapping */
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
    unsigned queued_new; /* entries put in the shared queue since the last wake-ups */
    int wake_next;       /* the seat the next wake-up looks at first */
    bool quitting;       /* some seat was past `active` at the last dispatch */
    bool fs_gone;        /* no more forks: the server's socket failed or closed */
    bool fs_lost;        /* and that was handled (seats.c's fs_lost): no more polls */
    bool broken_done;    /* cf_pp_break ran */
    bool terminating;    /* workers were killed on purpose (kill.c) */
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

_Static_assert(DEPTH == 64, "a worker's cells are the bits of one uint64_t");

/*
 * The first occupied cell of @pr at @i or after (those of @mask, a subset of
 * pr->used), or DEPTH: `for (i = cf_pp_next_cell(m, 0); i < DEPTH; i =
 * cf_pp_next_cell(m, i + 1))` visits what `if (!pr->cell[i]) continue` did,
 * without reading the empty ones (this runs each pass, over up to 64 cells).
 */
static inline int cf_pp_next_cell(uint64_t mask, int i)
{
    uint64_t m = i < DEPTH ? mask & (~(uint64_t)0 << i) : 0;
    return m ? __builtin_ctzll(m) : DEPTH;
}

/* The tasks in @w as its worker counts them (max_tasks_per_child): a chunk's items. */
static inline int tasks_in(const struct pp_work *w)
{
    return w->chunk_n ? (int)w->chunk_n : 1;
}

/* The index of cell @i of @pr among the shared claim words, answers and slots. */
static inline size_t cell_index(const struct pp_proc *pr, int i)
{
    return (size_t)pr->seat * DEPTH + (size_t)i;
}

/* True if @x is being cancelled (try_cancel) or is done. */
static inline bool cancelling(const struct pp_work *x)
{
    return atomic_load_explicit(&x->cancel_req, memory_order_relaxed) ||
           future_done(cf_work_future((struct cf_work *)&x->base));
}

/* True if a worker may be forked into @seat: none there, or one that left cells. */
static inline bool cf_pp_seat_free(const struct process_pool *p, int seat)
{
    return !p->seats[seat] || p->seats[seat]->finalized;
}

/* True if some seat holds a worker that has not exited. */
static inline bool cf_pp_any_live(const struct process_pool *p)
{
    for (int s = 0; s < p->nseats; s++)
        if (!cf_pp_seat_free(p, s))
            return true;
    return false;
}

/* True if @pr may be sent tasks (inline: pick asks it of every seat, per send). */
static inline bool cf_pp_usable(const struct pp_proc *pr)
{
    return pr && !pr->closing && !pr->killed && !pr->eof && !pr->exited &&
           pr->to_fd >= 0 && pr->budget > 0;
}

/* pool.c */
/* True if it woke the manager from a blocking poll (cf_future_sleep_next_wait). */
bool cf_pp_kick(struct process_pool *p);
void cf_pp_work_drop(struct cf_work *cw);

/* claims.c */
int cf_pp_cell_runner(const struct process_pool *p, const struct pp_proc *pr, int i);
/* The worker in that seat (the one that runs the task), or NULL. */
struct pp_proc *cf_pp_cell_runner_proc(const struct process_pool *p,
                                       const struct pp_proc *pr, int i);
bool cf_pp_cell_claimed(const struct process_pool *p, const struct pp_proc *pr, int i);
bool cf_pp_doom(struct process_pool *p, const struct pp_proc *pr, int i);
bool cf_pp_queueable(const struct process_pool *p, const struct pp_work *w);
bool cf_pp_heap_waits(const struct process_pool *p, const struct pp_proc *pr,
                      const struct pp_work *w, int active);
bool cf_pp_ring_room(struct process_pool *p);
void cf_pp_mark_started(struct process_pool *p, struct pp_proc *pr, struct pp_work *w);
void cf_pp_refund(struct pp_proc *pr, const struct pp_work *w);
struct pp_work *cf_pp_cell_release(struct process_pool *p, struct pp_proc *pr, int i);
bool cf_pp_cell_revoke(struct process_pool *p, struct pp_proc *pr, int i);
bool cf_pp_send(struct process_pool *p, struct pp_proc *pr, struct cf_work *cw);
bool cf_pp_try_cancel(executor_t *ex, struct cf_work *cw, bool stop);
void cf_pp_request_stop(executor_t *ex, struct cf_work *cw);

/* dispatch.c */
void cf_pp_requeue(struct process_pool *p, struct pp_work *w);
void cf_pp_requeue_first(struct process_pool *p, struct pp_work *w);
void cf_pp_dispatch(struct process_pool *p);
void cf_pp_respawn_backoff(struct process_pool *p, const char *desc);
int64_t cf_pp_respawn_timer(const struct process_pool *p, int64_t now, int64_t next);
void cf_pp_write(struct pp_proc *pr);

/* answers.c */
void cf_pp_fail(struct process_pool *p, struct pp_work *w, int status, int exit_code,
                int sig, const char *msg);
bool cf_pp_harvest(struct process_pool *p, struct pp_proc *pr);
bool cf_pp_harvest_all(struct process_pool *p);
void cf_pp_read(struct process_pool *p, struct pp_proc *pr, bool drain);
int cf_pp_chunk_next(const void *res, size_t res_len, size_t *cursor, const void **data,
                     size_t *len);

/* manager.c */
void *cf_pp_manager_main(void *arg);
void cf_pp_finalize(struct process_pool *p, struct pp_proc *pr);
void cf_pp_reap(struct process_pool *p);
void cf_pp_break(struct process_pool *p, const char *why);

/* kill.c */
int cf_pp_kill_workers(executor_t *ex, int sig, bool brk);
/* On the manager thread, first: binds it to the pool and keeps `calling`
   while it runs done-callbacks. */
void cf_pp_manager_bind(struct process_pool *p);
/*
 * One wait of a caller for the manager to bump @word past @seen; true. Once
 * executor_shutdown_timed ran out of time: a slice at most, and false at
 * once if a done-callback holds the manager (the caller stops waiting).
 */
bool cf_pp_await(struct process_pool *p, _Atomic uint32_t *word, uint32_t seen);
void cf_pp_handle_kill(struct process_pool *p);

/* seats.c */
void cf_pp_idle_update(struct process_pool *p, struct pp_proc *pr);
void cf_pp_signal(struct pp_proc *pr, int sig);
void cf_pp_close_fd(int *fd);
struct pp_proc *cf_pp_spawn(struct process_pool *p, int seat);
void cf_pp_read_fs(struct process_pool *p);

#endif /* CF_PROCESS_INTERNAL_H */
