/*
 * dispatch.c: where the manager's pending tasks go: pick (an idle worker, a
 * new one, or the least loaded), steal (a worker that ran dry takes back
 * tasks sent to a busy one and not started there), preempt (a task takes
 * back the lower-priority ones sent ahead), retire (the workers past a
 * shrink), and writing the batched frames. The claim handshake of a send
 * is in claims.c; the overview in internal.h.
 *
 * Runs on the manager thread only.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Writes @pr's pending frames until the pipe is full. */
void cf_pp_write(struct pp_proc *pr)
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
                cf_pp_close_fd(&pr->to_fd);
            }
            return;
        }
        cf_buf_consume(b, (size_t)n);
    }
}

/*
 * Puts @w, taken back from a worker, on the pending list where its priority
 * and submit order place it: usually the head (older than everything
 * pending), so this is O(1) but for a long list of higher priorities.
 */
void cf_pp_requeue(struct process_pool *p, struct pp_work *w)
{
    struct cf_work *cw = &w->base, **at = &p->pend.head;
    while (*at && (cf_work_priority(*at) > cf_work_priority(cw) ||
                   (cf_work_priority(*at) == cf_work_priority(cw) &&
                    work_of(*at)->order < w->order))) {
        at = &(*at)->next;
    }
    cw->next = *at;
    *at = cw;
    if (!cw->next)
        p->pend.tail = cw;
}

/* Takes back unstarted cell @i of @pr (true), unless its worker claimed it. */
static bool revoke_cell(struct process_pool *p, struct pp_proc *pr, int i)
{
    struct pp_work *w = pr->cell[i];
    if (!w || w->started || !cf_pp_cell_revoke(p, pr, i))
        return false;
    cf_pp_cell_release(p, pr, i);
    cf_pp_refund(pr, w);
    if (w->queued)
        cf_pp_requeue(p, w);
    else
        cf_pp_requeue_first(p, w); /* a piped one: steal, retire, preempt */
    return true;
}

/* True if @a is to start before @b: a higher priority, or older within one. */
static bool goes_first(const struct pp_work *a, const struct pp_work *b)
{
    int pa = cf_work_priority(&a->base), pb = cf_work_priority(&b->base);
    return pa > pb || (pa == pb && a->order < b->order);
}

/*
 * cf_pp_requeue for @w taken back unstarted from a worker's pipe, or the
 * suspect of a death: the queued tasks still waiting that @w is to start
 * before come back with it, to be sent again after it. Left in the shared
 * queue they kept their place there, ahead of the one @w gets when sent
 * again (a piped task's stamp, worker.h), and a worker took them first: a
 * big task sent ahead to the only worker, which died, started after the
 * tasks queued behind it.
 */
void cf_pp_requeue_first(struct process_pool *p, struct pp_work *w)
{
    cf_pp_requeue(p, w);
    if (!p->ring || cancelling(w))
        return;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *o = p->seats[s];
        for (int i = 0; o && o->nunstarted > 0 && i < DEPTH; i++)
            if (o->cell[i] && o->cell[i]->queued && goes_first(w, o->cell[i]))
                revoke_cell(p, o, i);
    }
}

/* The head of the pending list takes back the lower-priority tasks sent ahead. */
static void preempt(struct process_pool *p)
{
    int top = cf_work_priority(p->pend.head);
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        for (int i = 0; pr && pr->nunstarted > 0 && i < DEPTH; i++)
            if (pr->cell[i] && cf_work_priority(&pr->cell[i]->base) < top)
                revoke_cell(p, pr, i);
    }
}

/* Sets or clears @bit in the shared word of @seat. */
static void seat_flag(struct process_pool *p, int seat, uint32_t bit, bool on)
{
    if (on)
        atomic_fetch_or(&p->seatw[seat].flags, bit);
    else
        atomic_fetch_and(&p->seatw[seat].flags, ~bit);
}

/* A NOTE frame down @pr's pipe (a wake-up); bytes already on their way
   wake it as well. An empty buffer has room (cf_pp_spawn reserved it; a
   buffer never shrinks). */
static void send_note(struct pp_proc *pr)
{
    if (pr->out.off == pr->out.len && cf_buf_reserve(&pr->out, CF_WIRE_HDR)) {
        cf_wire_put_hdr(pr->out.p + pr->out.len, CF_WIRE_NOTE, 0, 0);
        pr->out.len += CF_WIRE_HDR;
    }
}

/*
 * Workers in seats past `active` take no more queued tasks, give their piped
 * ones back (queued ones are left for the others to take) and, with none, go.
 * A seat that is active again takes queued tasks again: its worker is woken,
 * as one that ran dry while retired sleeps on its pipe without CF_SEAT_ASLEEP
 * (worker.c), and the tasks queued meanwhile would wake nobody.
 */
static void retire(struct process_pool *p, int active)
{
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (!pr || pr->closing)
            continue;
        if (s < active) {
            if (pr->quit) {
                seat_flag(p, s, CF_SEAT_QUIT, pr->quit = false);
                send_note(pr);
            }
            continue;
        }
        if (!pr->quit)
            seat_flag(p, s, CF_SEAT_QUIT, pr->quit = true);
        for (int i = 0; i < DEPTH && pr->nunstarted > 0; i++)
            if (pr->cell[i] && !pr->cell[i]->queued)
                revoke_cell(p, pr, i);
        if (pr->ncells == 0 && pr->out.off >= pr->out.len) {
            pr->closing = true; /* it exits on EOF; its seat frees then */
            cf_pp_close_fd(&pr->to_fd);
        }
    }
}

/* Marks the worker that runs the task in cell @i of @o, if one does (`runs`). */
static void mark_runner(struct process_pool *p, const struct pp_proc *o, int i)
{
    struct pp_proc *run = cf_pp_cell_runner_proc(p, o, i);
    if (run)
        run->runs = true;
}

/*
 * Whether a piped task may go now, and where. With the shared queue and
 * more than one worker, a piped task (over 1 MiB, or the heap full) is
 * never sent ahead to a busy worker, where it would wait while another
 * worker, once free, started a later task. It waits at the head of the
 * pending list (the tasks behind it too) until every queued task sent
 * before it is known to have started, so the free worker it goes to runs
 * it at once; then pick() looks only at workers that run nothing and hold
 * no piped task (`runs` marks those that run one). False: it waits. One
 * pass over the cells, only while a piped task heads the list.
 */
static bool piped_may_go(struct process_pool *p)
{
    for (int s = 0; s < p->nseats; s++)
        if (p->seats[s])
            p->seats[s]->runs = false;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *o = p->seats[s];
        for (int i = 0; o && o->ncells > 0 && i < DEPTH; i++) {
            const struct pp_work *w = o->cell[i];
            if (!w)
                continue;
            if (w->queued && !w->started)
                return false;
            mark_runner(p, o, i);
        }
    }
    return true;
}

/*
 * True if a piped task is not known to have started while its worker runs
 * nothing. With the shared queue and more than one worker, piped_may_go
 * sent it to a free worker, which starts it only once its whole frame is
 * read (a big argument takes milliseconds to seconds): a later task waits
 * in the pending list meanwhile, or another worker, once free, would start
 * it first. One sent ahead to a busy worker (the pool had one worker then)
 * holds nothing back: it may wait for a long task, and steal() takes it back.
 */
static bool piped_unstarted(struct process_pool *p)
{
    bool any = false;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (pr)
            pr->runs = false;
        any |= pr && pr->npiped > 0 && pr->nunstarted > 0;
    }
    if (!any)
        return false;
    for (int s = 0; s < p->nseats; s++)
        for (int i = 0; p->seats[s] && i < DEPTH; i++)
            if (p->seats[s]->cell[i] && p->seats[s]->cell[i]->started)
                mark_runner(p, p->seats[s], i);
    for (int s = 0; s < p->nseats; s++) {
        const struct pp_proc *pr = p->seats[s];
        for (int i = 0; pr && !pr->runs && pr->npiped > 0 && i < DEPTH; i++)
            if (pr->cell[i] && !pr->cell[i]->queued && !pr->cell[i]->started)
                return true;
    }
    return false;
}

/*
 * A fork failed (here, or in the fork server): no fork into a free seat for
 * a while (doubling), unless no worker is left; then, with work waiting,
 * nothing would ever run it and the pool breaks.
 */
void cf_pp_respawn_backoff(struct process_pool *p, const char *desc)
{
    p->respawn_every =
        CF_MIN(CF_MAX(2 * p->respawn_every, RESPAWN_MIN_NS), RESPAWN_MAX_NS);
    p->respawn_at = cf_now_ns() + p->respawn_every;
    bool waiting = p->pend.head != NULL;
    for (int s = 0; s < p->nseats && !waiting; s++)
        waiting = p->seats[s] && p->seats[s]->nunstarted > 0;
    if (!cf_pp_any_live(p) && waiting)
        cf_pp_break(p, desc);
}

/*
 * @next, or the end of a fork's back-off if sooner while tasks wait in the
 * pending list: pick() may have left them there for the fork, and nothing
 * else need wake the manager (a task only a free worker may take, over
 * 1 MiB, while the others run long tasks, waited for one to end).
 */
int64_t cf_pp_respawn_timer(const struct process_pool *p, int64_t now, int64_t next)
{
    if (!p->pend.head || p->fs_gone || p->respawn_at <= now ||
        atomic_load(&p->base.broken))
        return next;
    return CF_MIN(next, p->respawn_at);
}

/*
 * Forks a worker into @seat. NULL if that failed; then, if nothing else
 * could ever run the tasks, the pool breaks: at the next poll if the fork
 * server is gone (cf_pp_read_fs reads its workers' last answers first, and
 * the seats here are not freed under the caller), now if no worker is left;
 * else the fork is tried again after a back-off (cf_pp_respawn_timer).
 */
static struct pp_proc *spawn_into(struct process_pool *p, int seat)
{
    struct pp_proc *pr = cf_pp_spawn(p, seat);
    if (pr || p->fs_gone)
        return pr;
    char msg[160];
    snprintf(msg, sizeof(msg), "a worker could not be started: %s", strerror(errno));
    cf_pp_respawn_backoff(p, msg);
    return NULL;
}

/*
 * The worker the next item goes to, forking one if that is best; or NULL.
 * @strict: only a free worker (piped_may_go marked them) or a new one.
 */
static struct pp_proc *pick(struct process_pool *p, bool strict)
{
    struct pp_proc *best = NULL;
    int free_seat = -1, active = atomic_load_explicit(&p->active, memory_order_relaxed);
    for (int s = 0; s < active; s++) {
        struct pp_proc *pr = p->seats[s];
        if (cf_pp_seat_free(p, s)) {
            if (free_seat < 0)
                free_seat = s;
            continue;
        }
        if (!cf_pp_usable(pr) || pr->ncells >= DEPTH)
            continue;
        if (strict) {
            if (!pr->runs && pr->npiped == 0)
                return pr;
            continue;
        }
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
    if (free_seat >= 0 && !p->fs_gone &&
        (!cf_pp_any_live(p) || cf_now_ns() >= p->respawn_at)) {
        struct pp_proc *pr = spawn_into(p, free_seat);
        /* A worker forked into a seat whose cells are all taken (cf_pp_spawn
           adopts them) runs those first; the item goes elsewhere or waits. */
        if (pr && pr->ncells < DEPTH)
            return pr;
        if (atomic_load(&p->base.broken))
            return NULL;
    }
    return best;
}

/*
 * Takes back about half of the unstarted piped tasks sent to the busiest
 * worker (queued ones need no taking back: a free worker takes them).
 */
static void steal(struct process_pool *p)
{
    struct pp_proc *victim = NULL;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        /* Busy (something started there) or with more than one waiting. */
        bool busy = pr && pr->npiped > 0 && pr->nunstarted > 0 &&
                    (pr->ncells > pr->nunstarted || pr->nunstarted > 1);
        if (busy && (!victim || pr->npiped > victim->npiped))
            victim = pr;
    }
    if (!victim)
        return;
    int want = (CF_MIN(victim->nunstarted, victim->npiped) + 1) / 2;
    for (int i = DEPTH - 1; i >= 0 && want > 0; i--)
        if (victim->cell[i] && !victim->cell[i]->queued)
            want -= revoke_cell(p, victim, i);
}

/*
 * A queued task waits while every worker runs a task and a seat is free (the
 * pool grew, or a worker left): a new worker takes it, as pick would have
 * started one for it had the seat been free when it was sent. Also a task
 * queued in a seat past `active` (the pool shrank): its own worker takes no
 * queued task any more, so only the active seats' workers count.
 */
static void grow(struct process_pool *p, int active)
{
    int free_seat = -1, workers = 0, running = 0;
    bool waiting = false;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (s < active && cf_pp_seat_free(p, s))
            free_seat = free_seat < 0 ? s : free_seat;
        if (!pr)
            continue;
        workers += s < active && cf_pp_usable(pr);
        for (int i = cf_pp_next_cell(pr->used, 0); i < DEPTH;
             i = cf_pp_next_cell(pr->used, i + 1)) {
            int r = cf_pp_cell_runner(p, pr, i);
            running += r >= 0 && r < active && p->seats[r] && cf_pp_usable(p->seats[r]);
            waiting |= r < 0 && pr->cell[i]->queued;
        }
    }
    /* running counts tasks, not workers: one each while a worker runs one. */
    if (free_seat >= 0 && waiting && running >= workers)
        spawn_into(p, free_seat);
}

/*
 * Wakes a sleeping worker (CF_SEAT_ASLEEP, worker.h) for each task put in
 * the shared queue since the last call, with a NOTE frame in its pipe.
 * Workers that are awake find the queue themselves: a pool whose workers
 * never run dry writes nothing to their pipes.
 */
static void wake_sleepers(struct process_pool *p)
{
    unsigned n = p->queued_new;
    p->queued_new = 0;
    /* The queue's tail before the ASLEEP bits read below: pairs with the
       worker's bit, set before it looks at the queue. ring_append's stores
       are release; one seq_cst store of the same value (the manager is the
       only writer) orders the whole batch. Not a fence: TSan has none. */
    if (p->ring) /* else no entry was appended (nor counted) */
        atomic_store(&p->ring->tail,
                     atomic_load_explicit(&p->ring->tail, memory_order_relaxed));
    int first = p->wake_next;
    for (int k = 0; k < p->nseats && n > 0; k++) {
        int s = (first + k) % p->nseats;
        struct pp_proc *pr = p->seats[s];
        if (!pr || pr->quit || !cf_pp_usable(pr))
            continue;
        _Atomic uint32_t *f = &p->seatw[s].flags;
        uint32_t v = atomic_load(f);
        while ((v & CF_SEAT_ASLEEP) &&
               !atomic_compare_exchange_weak(f, &v, v & ~CF_SEAT_ASLEEP))
            ;
        if (!(v & CF_SEAT_ASLEEP))
            continue;
        send_note(pr);
        p->wake_next = (s + 1) % p->nseats;
        n--;
    }
}

/*
 * An idle worker, or a seat free to fork into (the pool grew, or a worker
 * left), takes over some tasks waiting behind a busy one. A worker with no
 * cells of its own may still run another seat's, so the free seat is looked
 * for whatever idle says: grow() decides on the runners.
 */
static void take_over(struct process_pool *p, int active)
{
    bool idle = false, seat = false;
    for (int s = 0; s < active; s++) {
        idle |= p->seats[s] && cf_pp_usable(p->seats[s]) && p->seats[s]->ncells == 0;
        seat |= cf_pp_seat_free(p, s);
    }
    bool fork_ok = seat && !p->fs_gone && cf_now_ns() >= p->respawn_at;
    if (idle || fork_ok)
        steal(p);
    if (fork_ok && p->ring)
        grow(p, active);
}

void cf_pp_dispatch(struct process_pool *p)
{
    if (atomic_load(&p->base.broken))
        return;
    int active = atomic_load_explicit(&p->active, memory_order_relaxed);
    if (active < p->nseats || p->quitting)
        retire(p, active);
    p->quitting = active < p->nseats;
    if (p->pend.head && atomic_load_explicit(&p->prio_seen, memory_order_relaxed))
        preempt(p);
    if (!p->pend.head)
        take_over(p, active);
    bool ordered = active > 1 && p->ring;
    bool barrier = ordered && p->pend.head && piped_unstarted(p);
    while (p->pend.head) {
        /* A full queue: its head waits for a worker; the scan timer comes back. */
        bool queueable = cf_pp_queueable(p, work_of(p->pend.head));
        if (queueable && !cf_pp_ring_room(p)) {
            take_over(p, active); /* the queued ones may have no worker left */
            break;
        }
        /* Behind a piped task not yet started: the scan comes back for it. */
        if (barrier)
            break;
        /* A piped task goes only to a free worker while there are several;
           with one it is sent ahead, and that worker keeps the order. */
        bool strict = !queueable && ordered;
        if (strict && !piped_may_go(p)) {
            /* The scan (queued tasks unstarted) or an answer comes back; the
               queued ones may have no worker left (each left on purpose). */
            take_over(p, active);
            break;
        }
        struct pp_proc *pr = pick(p, strict);
        /* None, or a big argument for a busy one (pick prefers an idle one)
           while the heap's blocks in flight are their share: an answer calls. */
        if (!pr || (queueable && cf_pp_heap_waits(p, pr, work_of(p->pend.head), active)))
            break;
        struct cf_work *cw = cf_fifo_pop(&p->pend);
        if (cancelling(work_of(cw))) {
            cf_pp_work_drop(cw); /* cancelled: future_cancel did the accounting */
            continue;
        }
        if (cf_pp_send(p, pr, cw)) {
            barrier = strict;
        } else {
            if (cancelling(work_of(cw))) {
                cf_pp_work_drop(cw);
                continue;
            }
            /*
             * No memory for its frame. Nothing would wake the manager to try
             * again, so this task fails now; the pool goes on.
             */
            cf_pp_fail(p, work_of(cw), FUT_ENOMEM, -1, 0,
                       "no memory for the task's frame");
        }
    }
    if (p->queued_new)
        wake_sleepers(p);
}
