/*
 * pool.c: the process pool executor's face (Python's ProcessPoolExecutor):
 * creation, the ops table (submit, submit_chunk, shutdown, join, stats,
 * destroy) and the manager's wake-up. Everything else lives beside it in
 * lib/process/; internal.h says where, and how the pieces work together.
 *
 * Threads: submitters and cancellers (any thread); the manager thread
 * (manager.c) does all I/O and completes every future.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blocks.h"
#include "internal.h"

bool cf_pp_kick(struct process_pool *p)
{
    atomic_fetch_add(&p->kick, 1);
    if (!atomic_load(&p->sleeping) || atomic_exchange(&p->wake_pending, true))
        return false;
    /* Read before the write: the woken manager may run, and clear it, first. */
    bool napped = atomic_load_explicit(&p->napping, memory_order_relaxed);
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(p->wake_fd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
    /* EAGAIN: the counter is full, so it is signalled already. */
    return napped;
}

/* Frees @w's copy of its argument, if it has one apart from inl. */
static void free_arg(struct pp_work *w)
{
    if (w->base.arg != w->inl && !w->borrowed)
        cf_block_free((void *)w->base.arg); /* ours since work_prepare: not const */
    w->base.arg = NULL;
}

/* The executor is done with @w: frees the copy and drops its reference. */
void cf_pp_work_drop(struct cf_work *cw)
{
    free_arg(work_of(cw));
    future_unref(cf_work_future(cw));
}

/*
 * Readies @cw for the queue: copies its argument, which cw->arg then points
 * to (inl or a block) instead of the submitter's, unless @borrow and it is
 * over INLINE_ARG bytes (submit_options_t.borrow_arg: cf_pp_send reads it
 * there). 0 or a code; on failure cw->arg is the submitter's still.
 */
static int work_prepare(struct cf_work *cw, bool borrow)
{
    struct pp_work *w = work_of(cw);
    atomic_init(&w->claim, 0);
    atomic_init(&w->cancel_req, false);
    w->started = w->expired = false;
    w->deadline = 0;
    w->chunk_n = 0;
    w->seq = 0;
    w->poison = 0;
    w->heap_cls = 0;
    w->borrowed = false;
    if (cw->arg_len > CF_WIRE_MAX_PAYLOAD / 2 || (cw->arg_len && !cw->arg))
        return FUT_EINVAL;
    if (borrow && cw->arg_len > INLINE_ARG) {
        w->borrowed = true;
        return 0;
    }
    unsigned char *copy = w->inl;
    if (cw->arg_len > INLINE_ARG && !(copy = cf_block_alloc(cw->arg_len)))
        return FUT_ENOMEM;
    if (cw->arg_len)
        memcpy(copy, cw->arg, cw->arg_len);
    cw->arg = copy;
    return 0;
}

static void work_unprepare(struct cf_work *cw)
{
    free_arg(work_of(cw));
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
        work_of(cw)->order = p->sub_order++;
        cf_fifo_push_prio(&p->sub, cw);
        if (cf_work_priority(cw) &&
            !atomic_load_explicit(&p->prio_seen, memory_order_relaxed))
            atomic_store(&p->prio_seen, true);
    }
    cf_unlock(&p->lock);
    if (rc == 0 && cf_pp_kick(p))
        cf_future_sleep_next_wait(); /* the manager, and a worker, need this CPU */
    return rc;
}

/* ops->submit (@borrow false) and ops->submit_borrowed. */
static int submit_work(executor_t *ex, struct cf_work *cw, bool borrow)
{
    int rc = work_prepare(cw, borrow);
    if (rc < 0)
        return rc;
    rc = enqueue(pp_of(ex), cw);
    if (rc < 0)
        work_unprepare(cw);
    return rc;
}

static int pp_submit(executor_t *ex, struct cf_work *cw)
{
    return submit_work(ex, cw, false);
}

static int pp_submit_borrowed(executor_t *ex, struct cf_work *cw)
{
    return submit_work(ex, cw, true);
}

/*
 * ops->chunk_fit: what pp_submit_chunk takes (the payload's bound, and no
 * more items than the answers' frame has room for: CF_WIRE_CHUNK_MAX_ITEMS).
 */
static size_t pp_chunk_fit(const size_t *lens, size_t n)
{
    uint64_t total = 0;
    size_t j = 0;
    for (; j < n && j < CF_WIRE_CHUNK_MAX_ITEMS; j++) {
        total += CF_WIRE_ITEM_HDR + (uint64_t)(lens ? lens[j] : 0);
        if (total > CF_WIRE_MAX_PAYLOAD / 2)
            break;
    }
    return j ? j : 1;
}

/*
 * A map chunk as one task: the @n items args[j], lens[j] (NULL: all 0) are
 * encoded here into one CHUNK item block, the work item's argument, so that
 * a chunk costs one allocation, not one per item.
 */
static int pp_submit_chunk(executor_t *ex, struct cf_work *cw, const void *const *args,
                           const size_t *lens, size_t n)
{
    if (n == 0 || n > CF_WIRE_CHUNK_MAX_ITEMS)
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
    int rc = work_prepare(cw, false);
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
    w->chunk_n = (uint32_t)n;
    cw->arg = blob;
    cw->arg_len = (size_t)total;
    rc = enqueue(pp_of(ex), cw);
    if (rc < 0)
        work_unprepare(cw); /* frees the block */
    return rc;
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
    cf_executor_drain_fifo(ex, &q, FUT_ECANCELLED, NULL, cf_pp_work_drop);
    if (!cancel_futures) {
        cf_pp_kick(p);
        return;
    }
    uint32_t req = atomic_fetch_add(&p->cancel_req, 1) + 1;
    cf_pp_kick(p);
    if (cf_executor_on_own_thread(ex))
        return; /* a callback on the manager: it cancels when the callback returns */
    for (;;) {
        uint32_t done = atomic_load(&p->cancel_done);
        if ((int32_t)(done - req) >= 0 || atomic_load(&p->manager_done) ||
            !cf_pp_await(p, &p->cancel_done, done))
            break;
    }
}

static void pp_join(executor_t *ex)
{
    pthread_join(pp_of(ex)->manager, NULL);
}

/* A worker is still in its initializer (a seat of one that died there too). */
static bool pp_initializing(struct process_pool *p)
{
    for (int s = 0; s < p->nseats; s++)
        if (atomic_load(&p->seatw[s].flags) & CF_SEAT_INIT)
            return true;
    return false;
}

/*
 * The manager says it is done once every worker and the fork server are
 * gone. Past @deadline only user code makes it give up: a worker in its
 * initializer (unless shutdown_timed killed them), or a done-callback on
 * the manager (kill.c); the workers are on their way out (they read the
 * end of their pipe).
 */
static bool pp_join_until(executor_t *ex, int64_t deadline)
{
    struct process_pool *p = pp_of(ex);
    for (;;) {
        uint32_t seen = atomic_load(&p->cancel_done); /* manager_exit bumps it */
        if (atomic_load(&p->manager_done))
            return true;
        if (!cf_futex_wait_until(&p->cancel_done, seen, deadline)) {
            if (atomic_load(&p->calling) ||
                (pp_initializing(p) && !atomic_load(&ex->timed_out)))
                return false;
            cf_futex_wait_for(&p->cancel_done, seen, CF_JOIN_SLICE_NS);
        }
    }
}

static void pp_destroy(executor_t *ex)
{
    struct process_pool *p = pp_of(ex);
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    if (p->claims)
        munmap((void *)p->claims, p->claims_bytes);
    cf_heap_destroy(&p->heap);
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

/* Seats past @n retire (dispatch.c); growing is bound by the seats mapped. */
static int pp_set_max_workers(executor_t *ex, int n)
{
    struct process_pool *p = pp_of(ex);
    if (n > p->nseats)
        return FUT_EINVAL;
    atomic_store(&p->active, n);
    cf_pp_kick(p);
    return 0;
}

static const struct cf_executor_ops process_pool_ops = {
    .own_thread_makes_room = true,
    .work_size = sizeof(struct pp_work),
    .arg_max = CF_WIRE_MAX_PAYLOAD / 2,
    .submit = pp_submit,
    .submit_borrowed = pp_submit_borrowed,
    .submit_chunk = pp_submit_chunk,
    .chunk_fit = pp_chunk_fit,
    .chunk_next = cf_pp_chunk_next,
    .try_cancel = cf_pp_try_cancel,
    .request_stop = cf_pp_request_stop,
    .shutdown = pp_shutdown,
    .kill_workers = cf_pp_kill_workers,
    .join = pp_join,
    .join_until = pp_join_until,
    .destroy = pp_destroy,
    .stats = pp_stats,
    .set_max_workers = pp_set_max_workers,
};

static void worker_entry(void *ud, int seat, int in_fd, int out_fd)
{
    struct process_pool *p = ud;
    cf_worker_main(&p->wcfg, seat, in_fd, out_fd);
}

/* Frees a pool whose manager never started (NULL: nothing to free). */
static void abandon(struct process_pool *p, bool inited)
{
    if (!p)
        return;
    if (p->fs_sock >= 0) {
        close(p->fs_sock);
        while (waitpid(p->fs_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (inited)
        pp_destroy(&p->base);
    else
        free(p);
}

/* The manager's tables: seats, claim generations, poll arrays. 0 or FUT_ENOMEM. */
static int alloc_tables(struct process_pool *p)
{
    p->seats = calloc((size_t)p->nseats, sizeof(*p->seats));
    p->gens = calloc((size_t)p->nseats * DEPTH, sizeof(*p->gens));
    p->pfd = calloc(2 + 2 * (size_t)p->nseats, sizeof(*p->pfd));
    p->pproc = calloc(2 + 2 * (size_t)p->nseats, sizeof(*p->pproc));
    return p->seats && p->gens && p->pfd && p->pproc ? 0 : FUT_ENOMEM;
}

/* @n rounded up to a multiple of 128 (a slot, two cache lines). */
static size_t round128(size_t n)
{
    return (n + 127) & ~(size_t)127;
}

/*
 * Maps what the parent shares with every worker (worker.h), mapped before
 * the fork server is forked: the claim words, the answer records, the task
 * slots, the seat words and the shared queue. 0, FUT_ENOMEM or FUT_ESYS.
 */
static int map_shared(struct process_pool *p)
{
    size_t cells = (size_t)p->nseats * DEPTH, ring = 64;
    while (ring < 2 * cells)
        ring *= 2;
    size_t answers_at = round128(cells * sizeof(uint32_t));
    size_t slots_at = round128(answers_at + cells * sizeof(struct cf_answer_rec));
    size_t seats_at = round128(slots_at + cells * sizeof(struct cf_task_slot));
    size_t ring_at = round128(seats_at + (size_t)p->nseats * sizeof(struct cf_seat_word));
    p->claims_bytes = ring_at + sizeof(struct cf_ring) + ring * sizeof(uint64_t);
    unsigned char *m = mmap(NULL, p->claims_bytes, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return errno == ENOMEM ? FUT_ENOMEM : FUT_ESYS;
    p->claims = (_Atomic uint32_t *)m;
    p->answers = (struct cf_answer_rec *)(m + answers_at);
    p->slots = (struct cf_task_slot *)(m + slots_at);
    p->seatw = (struct cf_seat_word *)(m + seats_at);
    p->ring = (struct cf_ring *)(m + ring_at);
    p->ring_mask = ring - 1;
    cf_heap_init(&p->heap, CF_HEAP_BYTES); /* none: big arguments go by pipe */
    return 0;
}

/* What each worker reads after the fork. */
static void fill_worker_cfg(struct process_pool *p, uint64_t result_max)
{
    p->wcfg = (struct cf_worker_cfg){
        .claims = p->claims,
        .answers = p->answers,
        .slots = p->slots,
        .ring = p->ring,
        .seatw = p->seatw,
        .heap = p->heap.base,
        .heap_bytes = p->heap.bytes,
        .ring_mask = p->ring_mask,
        .ncells = (uint32_t)((size_t)p->nseats * DEPTH),
        .initializer = p->base.opts.initializer,
        .initarg = p->base.opts.initarg,
        .initarg_len = p->base.opts.initarg_len,
        .max_tasks = p->base.opts.max_tasks_per_child,
        .result_max = CF_MIN(result_max, CF_WIRE_MAX_PAYLOAD),
    };
}

/* Everything after the common part, up to a running manager. 0 or a code. */
static int pool_start(struct process_pool *p, uint64_t result_max)
{
    if (p->base.opts.max_workers > CF_CELL_MAX_SEATS)
        return FUT_EINVAL;
    p->lock = (cf_lock_t)CF_LOCK_INIT;
    p->nseats = p->base.opts.max_workers;
    atomic_init(&p->active, p->nseats);
    int rc = alloc_tables(p);
    if (rc == 0)
        rc = map_shared(p);
    if (rc < 0)
        return rc;
    fill_worker_cfg(p, result_max);
    p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wake_fd < 0)
        return FUT_ESYS;
    /* Forked now, before this pool has any thread. */
    rc = cf_forkserver_start(worker_entry, p, p->nseats, &p->fs_pid, &p->fs_sock);
    if (rc < 0)
        return rc;
    return cf_start_thread(&p->manager, cf_pp_manager_main, p) == 0 ? 0 : FUT_ESYS;
}

int cf_pp_set_pump(executor_t *ex, cf_pp_pump_fn fn, void *ud)
{
    if (!ex || !fn || ex->ops != &process_pool_ops)
        return FUT_EINVAL;
    struct process_pool *p = pp_of(ex);
    cf_lock(&p->lock);
    int rc = atomic_load(&p->pump) ? FUT_EINVAL : p->exiting ? FUT_EBROKEN : 0;
    if (rc == 0) { /* under the lock intake decides to leave under */
        p->pump_ud = ud;
        atomic_store(&p->pump, fn); /* the manager reads it, then pump_ud */
    }
    cf_unlock(&p->lock);
    if (rc == 0)
        cf_pp_kick(p);
    return rc;
}

void cf_pp_pump_poke(executor_t *ex)
{
    if (ex && ex->ops == &process_pool_ops) /* else nothing to poke */
        atomic_fetch_add(&pp_of(ex)->kick, 1);
}

executor_t *cf_pp_new(const executor_options_t *o, uint64_t result_max)
{
    bool inited = false;
    int rc = FUT_ENOMEM;
    struct process_pool *p = calloc(1, sizeof(*p));
    if (!p)
        goto fail;
    p->wake_fd = -1;
    p->fs_sock = -1;
    rc = cf_executor_init(&p->base, &process_pool_ops, o, cf_cpu_count());
    if (rc < 0)
        goto fail;
    inited = true;
#ifdef CF_TEST_HOOKS
    p->base.test_managed = true; /* the manager orders what it takes in */
#endif
    rc = pool_start(p, result_max);
    if (rc < 0)
        goto fail;
    return &p->base;
fail:
    abandon(p, inited);
    return cf_fail_null(rc);
}

executor_t *process_pool_executor_new(const executor_options_t *o)
{
    return cf_pp_new(o, CF_WIRE_MAX_PAYLOAD);
}
