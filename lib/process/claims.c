/*
 * claims.c: the cell words the parent shares with its workers (worker.h) and
 * both halves of the send/cancel handshake: cf_pp_send publishes a task's
 * claim and then looks for a cancel, cf_pp_try_cancel marks the cancel and
 * then looks for the claim; a read-modify-write of the pool's `dekker` word
 * between the two steps on each side means whichever comes second sees the
 * other. The rest of the pool is described in internal.h.
 *
 * A borrowed argument (submit_options_t.borrow_arg) is the submitter's
 * memory, which it may free once the future is done, and a cancel makes a
 * task that was not sent done at once. So cf_pp_send reads such an argument
 * only inside a window that try_cancel waits out: it sets the task's claim
 * to CLAIM_READING, looks for a cancel past the dekker step (none: the
 * cancel comes second and waits), copies the bytes into the slot, the heap
 * or the frame, and only then publishes the real claim. Every argument is
 * copied before the claim; one of our own needs no window.
 *
 * Threads: cf_pp_try_cancel and cf_pp_request_stop run on any thread (under
 * the future's lock, atomics only); the rest on the manager.
 */
#include "config.h"

#include <assert.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A work item's claim while cf_pp_send reads its borrowed argument. */
#define CLAIM_READING UINT64_MAX

#ifdef CF_TEST_HOOKS
void (*cf_test_borrow_read_hook)(void); /* inside the read window, before the copy */
#endif

/* The seat of the worker that claimed (started) the cell of index @idx, or -1. */
static int runner_at(const struct process_pool *p, size_t idx)
{
    uint32_t word = atomic_load(&p->claims[idx]);
    return CF_CELL_KEY(word) == CF_CELL_WORD(p->gens[idx], CF_CELL_CLAIMED)
               ? CF_CELL_RUNNER(word)
               : -1;
}

/* The worker seated where the task in cell @idx was claimed (started), or NULL. */
static struct pp_proc *runner_proc(const struct process_pool *p, size_t idx)
{
    int r = runner_at(p, idx);
    return r >= 0 && r < p->nseats ? p->seats[r] : NULL;
}

/* The seat of the worker that claimed (started) cell @i of @pr, or -1. */
int cf_pp_cell_runner(const struct process_pool *p, const struct pp_proc *pr, int i)
{
    return runner_at(p, cell_index(pr, i));
}

struct pp_proc *cf_pp_cell_runner_proc(const struct process_pool *p,
                                       const struct pp_proc *pr, int i)
{
    return runner_proc(p, cell_index(pr, i));
}

/* True if a worker has claimed (started) the task in cell @i of @pr. */
bool cf_pp_cell_claimed(const struct process_pool *p, const struct pp_proc *pr, int i)
{
    return cf_pp_cell_runner(p, pr, i) >= 0;
}

/*
 * A deadline passed for the started task in cell @i of @pr: true if the
 * worker that claimed it still runs it, which it then never answers
 * (worker.h, `running`); the caller kills it. False if it has returned from
 * the task: it may run another already, and must not be killed for this one.
 */
bool cf_pp_doom(struct process_pool *p, const struct pp_proc *pr, int i)
{
    size_t idx = cell_index(pr, i);
    int r = runner_at(p, idx);
    uint64_t expect = CF_RUN_WORD(idx, p->gens[idx]);
    return r >= 0 && r < p->nseats &&
           atomic_compare_exchange_strong(&p->seatw[r].running, &expect, CF_RUN_DOOMED);
}

/*
 * max_tasks_per_child: a piped task counts for the worker it was sent to
 * (occupy), a queued one for the worker that claimed it, once seen. A
 * worker counts its own tasks and leaves after the last; this count only
 * keeps the manager from sending it more (cf_pp_usable).
 */
static void charge_runner(struct process_pool *p, const struct pp_work *w,
                          struct pp_proc *run)
{
    if (w->queued && p->wcfg.max_tasks && run && !run->finalized)
        run->budget -= tasks_in(w);
}

/*
 * Marks a claimed task started: its future becomes RUNNING and is counted,
 * and the worker that runs it is busy (which may not be @pr's: the queue).
 */
void cf_pp_mark_started(struct process_pool *p, struct pp_proc *pr, struct pp_work *w)
{
    if (w->started)
        return;
    uint64_t c = atomic_load_explicit(&w->claim, memory_order_relaxed);
    assert(c != CLAIM_READING); /* claimed: the window is long over */
    struct pp_proc *run = c ? runner_proc(p, (size_t)(c >> 32) - 1) : NULL;
    charge_runner(p, w, run);
    if (run) {
        run->nrun++;
        cf_pp_idle_update(p, run);
    }
    assert(pr->nunstarted > 0);
    pr->nunstarted--;
    cf_pp_idle_update(p, pr);
    if (w->base.limit_ns)
        w->deadline = cf_now_ns() + w->base.limit_ns;
    w->started = true;
    if (cf_future_set_running(cf_work_future(&w->base)) == 1)
        cf_executor_started(&p->base);
}

/* Frees the heap block that held @w's argument, if any. */
static void heap_release(struct process_pool *p, struct pp_work *w)
{
    if (w->heap_cls) {
        cf_heap_free(&p->heap, w->heap_cls, w->heap_off);
        w->heap_cls = 0;
    }
}

/* Frees cell @i of @pr; the work item is the caller's again. */
struct pp_work *cf_pp_cell_release(struct process_pool *p, struct pp_proc *pr, int i)
{
    struct pp_work *w = pr->cell[i];
    assert(w && pr->ncells > 0);
    /* A started task's word stays CLAIMED until the cell is reused. */
    assert(!w->started || cf_pp_cell_claimed(p, pr, i));
    struct pp_proc *run = w->started ? runner_proc(p, cell_index(pr, i)) : NULL;
    if (run) { /* the same worker as at the start: its death settles the cell */
        run->nrun--;
        assert(run->nrun >= 0);
        cf_pp_idle_update(p, run);
    }
    atomic_store_explicit(&w->claim, 0, memory_order_release);
    pr->cell[i] = NULL;
    assert(pr->used & ((uint64_t)1 << i));
    pr->used &= ~((uint64_t)1 << i);
    pr->limited &= ~((uint64_t)1 << i);
    pr->ncells--;
    if (!w->queued)
        pr->npiped--;
    heap_release(p, w);
    if (!w->started)
        pr->nunstarted--;
    assert(pr->nunstarted >= 0 && pr->nunstarted <= pr->ncells);
    cf_pp_idle_update(p, pr);
    return w;
}

/* Takes a sent, unstarted task back (CAS SENT -> CANCELLED): true if it was. */
bool cf_pp_cell_revoke(struct process_pool *p, struct pp_proc *pr, int i)
{
    size_t idx = cell_index(pr, i);
    uint32_t expect = CF_CELL_WORD(p->gens[idx], CF_CELL_SENT);
    return atomic_compare_exchange_strong(&p->claims[idx], &expect,
                                          CF_CELL_WORD(p->gens[idx], CF_CELL_CANCELLED));
}

static int free_cell(const struct pp_proc *pr)
{
    return ~pr->used ? __builtin_ctzll(~pr->used) : -1;
}

/* Encodes @w's frame (@total bytes) at @o. */
static void encode_work(unsigned char *o, const struct pp_work *w, uint64_t id,
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
    /* No argument: nothing to copy, and cw->arg may be NULL. */
    if (cw->arg_len && cw->arg)
        memcpy(o + CF_WIRE_HDR + fixed, cw->arg, cw->arg_len);
}

/* The bytes @w takes in the heap: its argument, or a chunk's CHUNK payload. */
static size_t heap_len(const struct pp_work *w)
{
    return w->chunk_n ? CF_WIRE_CHUNK_FIXED + w->base.arg_len : w->base.arg_len;
}

/* True if @w's argument fits in its cell's slot (no heap block). */
static bool in_slot(const struct pp_work *w)
{
    return !w->chunk_n && w->base.arg_len <= CF_SLOT_ARG;
}

/* True if @w goes through the shared queue (worker.h), not a pipe: its argument
   fits its slot, or the heap has a block for it now. */
bool cf_pp_queueable(const struct process_pool *p, const struct pp_work *w)
{
    return p->ring && (in_slot(w) || cf_heap_fits(&p->heap, heap_len(w)));
}

/*
 * True if @w, for @pr, should wait: no worker is idle (@pr has cells, and
 * none runs nothing with nothing unstarted in its seat: a worker whose seat
 * holds a task another worker took, after a shrink, is idle) and @w would
 * take a heap block past what busy workers may have in flight,
 * HEAP_AHEAD_BYTES a worker of @active, or two blocks of @w's size a worker
 * if more (one running, one next). The blocks in flight are then used again
 * as their tasks answer, memory the pool has touched: a burst of 64 KiB
 * arguments otherwise filled every cell's worth (8 MiB for two workers), a
 * page fault and a cleared page each 4 KiB, more than the copies cost
 * (bench/RESULTS.md, W3b). A cancelled @w does not wait: dispatch drops it.
 */
bool cf_pp_heap_waits(const struct process_pool *p, const struct pp_proc *pr,
                      const struct pp_work *w, int active)
{
    if (pr->ncells == 0 || atomic_load(&p->nidle) > 0 || cancelling(w) || in_slot(w))
        return false; /* an idle worker, a cancelled task, an argument in its slot */
    size_t len = heap_len(w), share = CF_MAX((size_t)HEAP_AHEAD_BYTES, 2 * len);
    return p->heap.inuse > 0 && p->heap.inuse + len > share * (size_t)CF_MAX(active, 1);
}

/*
 * True if the shared queue has room for one more entry. The manager moves
 * `head` past entries no longer SENT, as workers do, so that revoked tasks
 * (preempted, cancelled) do not fill it while every worker is busy.
 */
bool cf_pp_ring_room(struct process_pool *p)
{
    struct cf_ring *r = p->ring;
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - p->ring_head_seen <= p->ring_mask)
        return true; /* head only moves on: no need to read the workers' line */
    for (;;) {
        uint64_t h = atomic_load(&r->head);
        p->ring_head_seen = h;
        if (t - h <= p->ring_mask)
            return true;
        uint64_t e =
            atomic_load_explicit(&r->ent[h & p->ring_mask], memory_order_relaxed);
        size_t idx = CF_RING_CELL(e);
        uint32_t gen = CF_RING_GEN(e);
        if (atomic_load(&p->claims[idx]) == CF_CELL_WORD(gen, CF_CELL_SENT))
            return false; /* the oldest entry waits for a worker */
        atomic_compare_exchange_strong(&r->head, &h, h + 1);
    }
}

/*
 * Writes @w's task into the slot of cell @idx (the shared queue's frame),
 * its argument in the slot or in a heap block. False: no heap block free.
 */
static bool fill_slot(struct process_pool *p, size_t idx, struct pp_work *w)
{
    struct cf_task_slot *sl = &p->slots[idx];
    const struct cf_work *cw = &w->base;
    sl->fn = (uint64_t)(uintptr_t)cw->fn;
    sl->limit_ns = cw->limit_ns;
    if (in_slot(w)) {
        sl->where = CF_SLOT_INLINE;
        sl->arg_len = (uint32_t)cw->arg_len;
        if (cw->arg_len && cw->arg)
            memcpy(sl->u.arg, cw->arg, cw->arg_len);
        return true;
    }
    int cls = cf_heap_alloc(&p->heap, heap_len(w), &w->heap_off);
    if (!cls)
        return false;
    w->heap_cls = (uint8_t)cls;
    unsigned char *o = p->heap.base + w->heap_off;
    if (w->chunk_n) {
        cf_wire_put_chunk(o, (uint64_t)(uintptr_t)cw->fn, cw->limit_ns, w->chunk_n);
        o += CF_WIRE_CHUNK_FIXED;
    }
    if (cw->arg_len && cw->arg)
        memcpy(o, cw->arg, cw->arg_len);
    sl->where = w->chunk_n ? CF_SLOT_CHUNK : CF_SLOT_HEAP;
    sl->arg_len = (uint32_t)heap_len(w);
    sl->u.heap_off = w->heap_off;
    return true;
}

/* Appends cell @idx (generation @gen) to the shared queue (room checked). */
static void ring_append(struct process_pool *p, size_t idx, uint32_t gen)
{
    struct cf_ring *r = p->ring;
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    atomic_store_explicit(&r->ent[t & p->ring_mask], CF_RING_ENTRY(t, idx, gen),
                          memory_order_relaxed);
    /* Published to the workers (their acquire loads of tail). wake_sleepers'
       seq_cst store orders it before the look for sleepers. */
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    p->queued_new++;
}

/* The frame of @total bytes encoded at the end of @pr's output goes out. */
static void add_piped(struct process_pool *p, struct pp_proc *pr, size_t total)
{
    pr->out.len += total;
    pr->npiped++;
    if (p->ring) /* the worker reads its pipe before the queue's later tasks */
        atomic_fetch_add(&p->seatw[pr->seat].bound, 1);
}

/* Cell @i of @pr now holds @w, sent. */
static void occupy(struct process_pool *p, struct pp_proc *pr, int i, struct pp_work *w,
                   bool queued)
{
    w->seq = ++p->send_seq;
    w->queued = queued;
    assert(!pr->cell[i] && !(pr->used & ((uint64_t)1 << i)));
    pr->cell[i] = w;
    pr->used |= (uint64_t)1 << i;
    if (w->base.limit_ns)
        pr->limited |= (uint64_t)1 << i;
    pr->ncells++;
    pr->nunstarted++;
    cf_pp_idle_update(p, pr);
    if (!queued)
        pr->budget -= tasks_in(w);
}

/* Gives back what occupy charged @pr for @w, taken back unstarted. */
void cf_pp_refund(struct pp_proc *pr, const struct pp_work *w)
{
    if (!w->queued)
        pr->budget += tasks_in(w);
}

/* @pr's output has room for a frame of @total bytes (grown if need be). */
static bool frame_room(struct pp_proc *pr, size_t total)
{
    /* The reserve call only when the buffer lacks room: this runs per task. */
    return pr->out.cap - pr->out.len >= total || cf_buf_reserve(&pr->out, total);
}

/*
 * Opens the read window of @w's borrowed argument (top of file): a cancel
 * from here on waits for the real claim. False: it is being cancelled (the
 * window is shut again, and the argument must not be read).
 */
static bool open_read_window(struct process_pool *p, struct pp_work *w)
{
    atomic_store_explicit(&w->claim, CLAIM_READING, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->dekker, 1, memory_order_acq_rel);
    if (cancelling(w)) {
        atomic_store_explicit(&w->claim, 0, memory_order_release);
        return false;
    }
    CF_TEST_HOOK(cf_test_borrow_read_hook);
    return true;
}

/*
 * Sends @cw to @pr (which has a free cell): into the shared queue, or as a
 * frame in @pr's pipe. False: it is being cancelled, or there is no memory
 * for its frame; it was not sent and is the caller's again. The argument is
 * copied (into the slot, the heap or the frame) before the claim is
 * published: a borrowed one inside its window.
 */
bool cf_pp_send(struct process_pool *p, struct pp_proc *pr, struct cf_work *cw)
{
    struct pp_work *w = work_of(cw);
    int i = free_cell(pr);
    assert(i >= 0); /* pick chose a worker with a free cell */
    size_t idx = cell_index(pr, i);
    /* A cell is reused only once its last task was claimed or revoked. */
    assert(CF_CELL_KEY(atomic_load(&p->claims[idx])) !=
           CF_CELL_WORD(p->gens[idx], CF_CELL_SENT));
    size_t total = CF_WIRE_HDR + (w->chunk_n ? CF_WIRE_CHUNK_FIXED : CF_WIRE_TASK_FIXED) +
                   w->base.arg_len;
    bool queue = cf_pp_queueable(p, w);
    /* Before a borrowed argument's window, so that a cancel waits out no
       realloc: also for one bound for a slot, which goes by the pipe if its
       argument finds no room in the heap (then grown already: no realloc). */
    bool room = (queue && !w->borrowed) || frame_room(pr, total);
    if (w->borrowed && !open_read_window(p, w))
        return false;
    if (queue && !fill_slot(p, idx, w)) {
        queue = false;
        room = room && frame_room(pr, total);
    }
    room = room || queue; /* a slot needs no room in the pipe */
    if (p->ring)
        p->slots[idx].stamp = atomic_load_explicit(&p->ring->tail, memory_order_relaxed);
    uint32_t gen = (p->gens[idx] + 1) & CF_CELL_GEN_MASK;
    p->gens[idx] = gen;
    /* No answer left from an earlier use can match this generation after a wrap. */
    atomic_store_explicit(&p->answers[idx].tag, 0, memory_order_relaxed);
    if (!queue && room)
        encode_work(pr->out.p + pr->out.len, w, CF_TASK_ID(idx, gen), total);
    /* Release, not a fence per task: the dekker RMW below orders it for
       try_cancel, the queue's tail (or the pipe) for the workers. */
    atomic_store_explicit(&p->claims[idx], CF_CELL_WORD(gen, CF_CELL_SENT),
                          memory_order_release);
    /*
     * Publish the claim (try_cancel finds the cell through it; a borrowed
     * argument's window ends here); then, past a read-modify-write of
     * `dekker` that pairs with the one in try_cancel (whichever comes second
     * sees the other's stores), look for a cancel.
     */
    uint64_t claim = ((uint64_t)(idx + 1) << 32) | gen;
    atomic_store_explicit(&w->claim, claim, memory_order_release);
    atomic_fetch_add_explicit(&p->dekker, 1, memory_order_acq_rel);
    if (!room || cancelling(w)) {
        uint32_t expect = CF_CELL_WORD(gen, CF_CELL_SENT);
        atomic_compare_exchange_strong(&p->claims[idx], &expect,
                                       CF_CELL_WORD(gen, CF_CELL_CANCELLED));
        atomic_store_explicit(&w->claim, 0, memory_order_release);
        heap_release(p, w);
        return false;
    }
    if (queue)
        ring_append(p, idx, gen);
    else
        add_piped(p, pr, total);
    occupy(p, pr, i, w, queue);
    return true;
}

/* Sets the stop bit of cell @idx while its claim of generation @gen holds it. */
static void stop_claimed(struct process_pool *p, size_t idx, uint32_t gen)
{
    uint32_t word = atomic_load(&p->claims[idx]);
    /* Whichever worker claimed it; a reused cell is left alone. */
    while (CF_CELL_KEY(word) == CF_CELL_WORD(gen, CF_CELL_CLAIMED) &&
           !(word & CF_CELL_STOP) &&
           !atomic_compare_exchange_weak(&p->claims[idx], &word, word | CF_CELL_STOP))
        ;
}

/*
 * Called by future_cancel, under the future's lock, for a pending future:
 * true if the task has not started and now never will (the cancel goes on),
 * false if its worker claimed it already (it counts as running; with @stop
 * it is asked to stop).
 */
bool cf_pp_try_cancel(executor_t *ex, struct cf_work *cw, bool stop)
{
    struct process_pool *p = pp_of(ex);
    struct pp_work *w = work_of(cw);
    atomic_store(&w->cancel_req, true);
    /* Pairs with cf_pp_send's: whichever comes second sees the other's stores. */
    atomic_fetch_add_explicit(&p->dekker, 1, memory_order_acq_rel);
    for (unsigned spins = 0;; spins++) {
        uint64_t c = atomic_load(&w->claim);
        if (c == CLAIM_READING) {
            /* The manager copies its borrowed argument: microseconds, longer
               for one of many megabytes (the header says so). */
            if (spins < 64)
                cf_cpu_relax();
            else
                sched_yield();
            continue;
        }
        if (c == 0)
            return true; /* not sent; the manager sees cancel_req before sending */
        size_t idx = (size_t)(c >> 32) - 1;
        uint32_t gen = (uint32_t)c;
        assert(idx < (size_t)p->nseats * DEPTH);
        uint32_t expect = CF_CELL_WORD(gen, CF_CELL_SENT);
        if (atomic_compare_exchange_strong(&p->claims[idx], &expect,
                                           CF_CELL_WORD(gen, CF_CELL_CANCELLED))) {
            cf_pp_kick(p); /* the manager frees the cell */
            return true;
        }
        if (CF_CELL_KEY(expect) == CF_CELL_WORD(gen, CF_CELL_CLAIMED)) {
            /* Started: ask it to stop (task_should_stop), as for a running one. */
            if (stop)
                stop_claimed(p, idx, gen);
            atomic_store(&w->cancel_req, false);
            return false;
        }
        if (expect == CF_CELL_WORD(gen, CF_CELL_CANCELLED)) {
            /* Revoked (a steal, or a requeue): the manager sees cancel_req. */
            cf_pp_kick(p);
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
void cf_pp_request_stop(executor_t *ex, struct cf_work *cw)
{
    struct process_pool *p = pp_of(ex);
    uint64_t c = atomic_load(&work_of(cw)->claim);
    assert(c != CLAIM_READING); /* running: never sent again */
    if (c == 0)
        return; /* answered already */
    stop_claimed(p, (size_t)(c >> 32) - 1, (uint32_t)c);
}
