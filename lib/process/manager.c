/*
 * manager.c: the manager thread: its loop (intake, dispatch, write, scan,
 * deadlines, poll), the scan for claims, per-task deadlines, settling the
 * cells of a worker that died (cf_pp_finalize), and breaking the pool.
 * Dispatch is in dispatch.c, answers in answers.c, workers in seats.c; the
 * overview is in internal.h.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/*
 * Notices claims and cancels of sent items, then collects answers left in
 * shared records for started tasks (a worker holds them back while it runs
 * a task the manager has not seen start, which this scan is there to see);
 * returns true if anything changed.
 */
static bool scan(struct process_pool *p)
{
    bool changed = false;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        for (int i = pr ? cf_pp_next_cell(pr->used, 0) : DEPTH;
             i < DEPTH && pr->nunstarted > 0; i = cf_pp_next_cell(pr->used, i + 1)) {
            struct pp_work *w = pr->cell[i];
            if (w->started)
                continue;
            size_t idx = cell_index(pr, i);
            uint32_t word = CF_CELL_KEY(atomic_load(&p->claims[idx]));
            if (word == CF_CELL_WORD(p->gens[idx], CF_CELL_CLAIMED)) {
                cf_pp_mark_started(p, pr, w);
                changed = true;
            } else if (word == CF_CELL_WORD(p->gens[idx], CF_CELL_CANCELLED)) {
                /* A canceller revoked it: dispatch drops it. */
                cf_pp_cell_release(p, pr, i);
                cf_pp_refund(pr, w);
                cf_pp_requeue(p, w);
                changed = true;
            }
        }
    }
    /* Apart: a claim seen in a later seat shows answers left before it in an
       earlier seat's cells (the worker answers, then claims). */
    for (int s = 0; s < p->nseats; s++)
        if (p->seats[s] && p->seats[s]->ncells > p->seats[s]->nunstarted)
            changed |= cf_pp_harvest(p, p->seats[s]);
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
                cf_pp_signal(pr, SIGKILL);
                pr->kill_at = 0;
            } else {
                next = CF_MIN(next, pr->kill_at);
            }
        }
        for (int i = cf_pp_next_cell(pr->limited, 0); i < DEPTH; /* few, or none */
             i = cf_pp_next_cell(pr->limited, i + 1)) {
            struct pp_work *w = pr->cell[i];
            if (!w->started || w->expired)
                continue;
            if (now < w->deadline) {
                next = CF_MIN(next, w->deadline);
                continue;
            }
            /* The worker that runs it, which may be another seat's (the queue).
               One that has returned from it (cf_pp_doom fails) is left alone, and
               so is the task: its answer is due, and says if it was in time. So
               also when that worker is being killed (a terminate): the answer is
               in its pipe, or the task fails with the worker's death. */
            struct pp_proc *seated = cf_pp_cell_runner_proc(p, pr, i);
            struct pp_proc *run = seated ? seated : pr;
            if (seated && !cf_pp_doom(p, pr, i))
                continue;
            w->expired = true;
            cf_executor_finished(&p->base, true);
            cf_work_expire(&w->base);
            if (!run->killed) {
                cf_pp_signal(run, SIGTERM);
                run->kill_at = now + KILL_GRACE_NS;
                next = CF_MIN(next, run->kill_at);
            }
        }
    }
    return next;
}

/* How a worker ended, for the messages of the tasks it held. */
struct pp_exit {
    char desc[256]; /* "worker pid 12 was killed by signal 9 (Killed)" */
    int code, sig;  /* exit code or -1; signal or 0 */
    bool expected;  /* we told it to go (closed its pipe, killed it, budget spent) */
    bool breaks;    /* on_worker_death is FUT_WORKER_BREAK_POOL */
};

static void describe_exit(const struct process_pool *p, const struct pp_proc *pr,
                          struct pp_exit *e)
{
    e->code = -1;
    e->sig = 0;
    e->expected = pr->closing || pr->killed || pr->budget <= 0;
    e->breaks = p->base.opts.on_worker_death == FUT_WORKER_BREAK_POOL && !p->terminating;
    if (pr->spawn_err) {
        snprintf(e->desc, sizeof(e->desc), "a worker could not be started: %s",
                 strerror(pr->spawn_err));
    } else if (WIFSIGNALED(pr->status)) {
        e->sig = WTERMSIG(pr->status);
        snprintf(e->desc, sizeof(e->desc), "worker pid %d was killed by signal %d (%s)",
                 (int)pr->pid, e->sig, strsignal(e->sig));
    } else {
        e->code = WEXITSTATUS(pr->status);
        snprintf(e->desc, sizeof(e->desc), "worker pid %d exited with code %d",
                 (int)pr->pid, e->code);
    }
}

/*
 * True if the worker in @seat has claimed a task it has not answered (with
 * @unexpired, one whose deadline has not failed it already).
 */
static bool runs_any(struct process_pool *p, int seat, bool unexpired)
{
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *o = p->seats[s];
        for (int i = 0; o && o->ncells > 0 && i < DEPTH; i++)
            if (o->cell[i] && !(unexpired && o->cell[i]->expired) &&
                cf_pp_cell_runner(p, o, i) == seat)
                return true;
    }
    return false;
}

/*
 * The cell a worker that died unexpectedly was most likely receiving: none
 * if it had started a task; else its oldest sent task. -1 for none.
 */
static int poison_suspect(struct process_pool *p, struct pp_proc *pr)
{
    if (runs_any(p, pr->seat, false))
        return -1;
    int best = -1;
    for (int i = 0; i < DEPTH; i++) {
        if (!pr->cell[i])
            continue;
        size_t idx = cell_index(pr, i);
        uint32_t word = atomic_load(&p->claims[idx]);
        if (word == CF_CELL_WORD(p->gens[idx], CF_CELL_SENT) &&
            (best < 0 || pr->cell[i]->seq < pr->cell[best]->seq))
            best = i;
    }
    return best;
}

/* Reads what dead @pr left (a whole answer counts) and closes its pipes. */
static void drain_dead(struct process_pool *p, struct pp_proc *pr)
{
    if (pr->from_fd >= 0 && !(pr->eof && pr->why[0]))
        cf_pp_read(p, pr, true);
    cf_pp_harvest_all(p); /* answers it left before it died count, NOTE or not */
    cf_pp_close_fd(&pr->from_fd);
    cf_pp_close_fd(&pr->to_fd);
}

/*
 * FUT_WORKER_BREAK_POOL: a death we did not ask for, or one that took a
 * started task with it, marks the pool broken before any future fails
 * FUT_EBROKEN (DESIGN).
 */
static void mark_broken_if_lost(struct process_pool *p, struct pp_proc *pr,
                                const struct pp_exit *e)
{
    if (!e->breaks)
        return;
    if (!e->expected || runs_any(p, pr->seat, true))
        cf_executor_mark_broken(&p->base);
}

/*
 * Settles cell @i of @pr after the death of the worker in seat @dead: a task
 * nobody started goes back to the pending list (unless it is the suspect of
 * too many deaths, or of a death that breaks the pool), one it started
 * fails. True if that failure breaks the pool.
 */
static bool settle_cell(struct process_pool *p, struct pp_proc *pr, int i, int suspect,
                        const struct pp_exit *e, const struct pp_proc *dead)
{
    char msg[512];
    bool breaking = e->breaks && !e->expected; /* cf_pp_finalize breaks the pool */
    if (i == suspect && (++pr->cell[i]->poison >= POISON_MAX || breaking) &&
        cf_pp_cell_revoke(p, pr, i)) {
        /* Each worker it went to died before starting it: stop retrying. A
           death that breaks the pool fails it now, with the exit code or
           signal (DEADLOCK-04), not as one of the pending tasks. */
        char n[32] = "";
        if (!breaking)
            snprintf(n, sizeof(n), " (%u workers did)", (unsigned)pr->cell[i]->poison);
        snprintf(msg, sizeof(msg), "%s before starting the task%s%s%s", e->desc, n,
                 dead->why[0] ? "; " : "", dead->why);
        cf_pp_fail(p, cf_pp_cell_release(p, pr, i), breaking ? FUT_EBROKEN : FUT_EWORKER,
                   e->code, e->sig, msg);
        return false;
    }
    cf_pp_cell_revoke(p, pr, i); /* SENT -> CANCELLED: not claimed from now on */
    int runner = cf_pp_cell_runner(p, pr, i);
    if (runner >= 0 && runner != dead->seat)
        return false; /* another worker took it from the queue just now: it runs on */
    bool claimed = runner >= 0;
    if (claimed)
        cf_pp_mark_started(p, pr, pr->cell[i]);
    struct pp_work *w = cf_pp_cell_release(p, pr, i);
    if (!claimed) {
        /* Never started: another worker runs it (revoked by a canceller: dropped there).
         */
        cf_pp_requeue_first(p, w);
        return false;
    }
    snprintf(msg, sizeof(msg), "%s %s the task%s%s", e->desc,
             dead->rejected ? "after it rejected the frame of" : "while running",
             dead->why[0] ? "; " : "", dead->why);
    bool breaks = e->breaks && !w->expired;
    cf_pp_fail(p, w, breaks ? FUT_EBROKEN : FUT_EWORKER, e->code, e->sig, msg);
    return breaks;
}

/* Frees @pr's seat (finalized: no longer counted in nworkers). */
static void free_seat(struct process_pool *p, struct pp_proc *pr)
{
    assert(pr->finalized && pr->nrun == 0);
    p->seats[pr->seat] = NULL;
    cf_buf_free(&pr->in);
    cf_buf_free(&pr->out);
    free(pr);
}

static bool any_worker(const struct process_pool *p)
{
    bool any = false;
    for (int s = 0; s < p->nseats && !any; s++)
        any = p->seats[s] != NULL;
    return any;
}

/*
 * Settles the cells dead @pr leaves: its own (but those another worker
 * claimed from the queue and still runs) and those of other seats it
 * claimed. Its queued tasks stay where they are in the queue, for the other
 * workers and the worker forked into the seat next (cf_pp_spawn): sent
 * back to the pending list, they would queue again behind later tasks,
 * which would start first. All but the @suspect of a death we did not ask
 * for (poison_suspect), which goes back to count the deaths it may cause.
 * True if a failure breaks the pool.
 */
static bool settle_cells(struct process_pool *p, struct pp_proc *pr, int suspect,
                         const struct pp_exit *e)
{
    bool broke = false;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *o = p->seats[s];
        for (int i = 0; o && o->ncells > 0 && i < DEPTH; i++) {
            if (!o->cell[i])
                continue;
            int r = cf_pp_cell_runner(p, o, i);
            if (o == pr && r < 0 && o->cell[i]->queued && (e->expected || i != suspect))
                continue;
            if (r == pr->seat || (o == pr && r < 0))
                broke |= settle_cell(p, o, i, o == pr ? suspect : -1, e, pr);
        }
    }
    return broke;
}

/*
 * Frees the seats of workers that exited while others still ran tasks of
 * their cells (claimed from the queue), once those are answered.
 */
void cf_pp_reap(struct process_pool *p)
{
    for (int s = 0; s < p->nseats; s++)
        if (p->seats[s] && p->seats[s]->finalized && p->seats[s]->ncells == 0)
            free_seat(p, p->seats[s]);
}

/*
 * After a death: dispatch wakes a sleeping worker for each queued task not
 * started (up to one a seat). The dead worker may have been the one woken
 * for such a task, and its wake-up died with it: the others slept on (seen
 * under check_faults, a worker dying of a malloc failure after its wake-up).
 */
static void rewake(struct process_pool *p)
{
    unsigned n = 0;
    for (int s = 0; s < p->nseats && n < (unsigned)p->nseats; s++) {
        const struct pp_proc *o = p->seats[s];
        for (int i = 0; o && o->nunstarted > 0 && i < DEPTH; i++)
            n += o->cell[i] && o->cell[i]->queued && !o->cell[i]->started;
    }
    p->queued_new += CF_MIN(n, (unsigned)p->nseats);
}

/* @pr exited (or never started): settle each of its cells, free its seat. */
void cf_pp_finalize(struct process_pool *p, struct pp_proc *pr)
{
    /* Gone from the stats now, before any future completes here; its seat
       may stay a while (cf_pp_reap), for the tasks others run of its cells. */
    atomic_fetch_sub(&p->nworkers, 1);
    drain_dead(p, pr);
    struct pp_exit e;
    describe_exit(p, pr, &e);
    /* max_tasks_per_child: a worker counts its own tasks, and leaves after
       the last with code 0 and every task it claimed answered. */
    if (!e.expected && p->wcfg.max_tasks > 0 && e.code == 0 && !pr->spawn_err &&
        !runs_any(p, pr->seat, false))
        e.expected = true;
    mark_broken_if_lost(p, pr, &e);
    /* A worker that was never forked did not die of what it was sent. */
    int suspect = e.expected || pr->spawn_err ? -1 : poison_suspect(p, pr);
    bool broke = e.breaks && !e.expected;
    broke |= settle_cells(p, pr, suspect, &e);
    pr->finalized = true;
    if (p->seats[pr->seat] == pr) /* dead: no initializer runs there (pp_join_until) */
        atomic_fetch_and(&p->seatw[pr->seat].flags, ~CF_SEAT_INIT);
    rewake(p);
    bool spawn_failed = pr->spawn_err != 0;
    if (pr->ncells == 0)
        free_seat(p, pr); /* else cf_pp_reap frees it */
    if (broke) {
        char msg[512];
        snprintf(msg, sizeof(msg), "a process in the pool terminated abruptly: %s",
                 e.desc);
        cf_pp_break(p, msg);
    } else if (spawn_failed) {
        cf_pp_respawn_backoff(p, e.desc);
    }
}

/* Fails everything with FUT_EBROKEN, kills every worker (Python's behaviour). */
void cf_pp_break(struct process_pool *p, const char *why)
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
            cf_pp_cell_revoke(p, pr, i);      /* SENT -> CANCELLED: never claimed now */
            if (cf_pp_cell_claimed(p, pr, i)) /* claimed, not yet seen: it started */
                cf_pp_mark_started(p, pr, pr->cell[i]);
            struct pp_work *w = cf_pp_cell_release(p, pr, i);
            if (w->started)
                cf_pp_fail(p, w, FUT_EBROKEN, -1, 0, why);
            else
                cf_fifo_push(&p->pend, &w->base);
        }
        cf_pp_signal(pr, SIGKILL);
    }
    cf_executor_drain_fifo(&p->base, &p->pend, FUT_EBROKEN, why, cf_pp_work_drop);
}

/* Shutdown was asked for, or the pool broke and no pump needs the manager (pump.h). */
static bool may_stop(struct process_pool *p)
{
    return atomic_load(&p->stopping) ||
           (atomic_load(&p->base.broken) && !atomic_load(&p->pump));
}

/* Moves submitted items to the pending list; true if the manager may leave. */
static bool intake(struct process_pool *p, bool idle)
{
    cf_lock(&p->lock);
    struct cf_work_fifo q = cf_fifo_take(&p->sub);
    bool leave = idle && !q.head && may_stop(p);
    if (leave)
        p->exiting = true;
    cf_unlock(&p->lock);
    if (q.head) {
        cf_fifo_merge_prio(&p->pend, &q);
        if (atomic_load(&p->base.broken))
            cf_executor_drain_fifo(&p->base, &p->pend, FUT_EBROKEN,
                                   "the process pool is broken", cf_pp_work_drop);
    }
    return leave;
}

/* shutdown(cancel_futures): cancel everything not started. */
static void cancel_all(struct process_pool *p)
{
    uint32_t req = atomic_load(&p->cancel_req);
    if (req == atomic_load(&p->cancel_done))
        return;
    cf_executor_drain_fifo(&p->base, &p->pend, FUT_ECANCELLED, NULL, cf_pp_work_drop);
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        for (int i = 0; pr && i < DEPTH; i++) /* one claimed since is left to run */
            if (pr->cell[i] && !pr->cell[i]->started)
                cf_future_revoke(cf_work_future(&pr->cell[i]->base));
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

/* Polls every fd for up to @timeout_ns; handles what is ready. poll's result. */
static int poll_once(struct process_pool *p, int64_t timeout_ns)
{
    int n = 0;
    p->pfd[n++] = (struct pollfd){.fd = p->wake_fd, .events = POLLIN};
    p->pfd[n++] = (struct pollfd){.fd = p->fs_lost ? -1 : p->fs_sock, .events = POLLIN};
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
    int rc;
    if (atomic_load_explicit(&p->pump, memory_order_relaxed) && timeout_ns > 0 &&
        timeout_ns < 1000000) { /* a pump's nap under poll()'s millisecond */
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)timeout_ns};
        rc = ppoll(p->pfd, (nfds_t)n, &ts, NULL);
    } else {
        rc = poll(p->pfd, (nfds_t)n, ms);
    }
    atomic_store(&p->sleeping, false);
    if (rc <= 0)
        return rc;
    if (p->pfd[0].revents) {
        uint64_t v; /* one read takes the whole count (not EFD_SEMAPHORE) */
        while (read(p->wake_fd, &v, sizeof(v)) < 0 && errno == EINTR)
            ;
        atomic_store(&p->wake_pending, false);
    }
    for (int k = 2; k < n; k++) {
        if (!p->pfd[k].revents)
            continue;
        struct pp_proc *pr = p->pproc[k];
        if (p->pfd[k].events == POLLIN)
            cf_pp_read(p, pr, false);
        else
            cf_pp_write(pr);
    }
    if (p->pfd[1].revents)
        cf_pp_read_fs(p); /* last: it may free procs seen above */
    return rc;
}

/*
 * Leaving: closes every task pipe (a worker exits on EOF once its tasks are
 * done). True once every worker is gone.
 */
static bool close_seats(struct process_pool *p)
{
    for (int s = 0; s < p->nseats; s++)
        if (p->seats[s] && !p->seats[s]->closing) {
            p->seats[s]->closing = true;
            /* A worker looking for work (worker.c's spin) stops at once. */
            atomic_fetch_or(&p->seatw[s].flags, CF_SEAT_QUIT);
            cf_pp_close_fd(&p->seats[s]->to_fd);
        }
    return !any_worker(p);
}

static void write_all_seats(struct process_pool *p)
{
    for (int s = 0; s < p->nseats; s++)
        if (p->seats[s])
            cf_pp_write(p->seats[s]);
}

/*
 * The next scan time folded into @next: while a sent task is not known to
 * have started, scans back off from SCAN_MIN_NS to SCAN_MAX_NS. Answers held
 * back in shared records need no other reason: a worker holds them only
 * while a task is buffered behind the one it runs (worker.c), and that task
 * is not known to have started. So a pool whose workers all run long tasks
 * sleeps in poll() with no timeout.
 */
static int64_t scan_timer(struct process_pool *p, int64_t now, int64_t next,
                          int64_t *next_scan)
{
    bool out = false;
    for (int s = 0; s < p->nseats; s++)
        out |= p->seats[s] && p->seats[s]->nunstarted > 0;
    if (!out) {
        p->scan_every = SCAN_MIN_NS;
        return next;
    }
    if (now >= *next_scan) {
        *next_scan = now + p->scan_every;
        p->scan_every = CF_MIN(p->scan_every * 2, SCAN_MAX_NS);
    }
    return CF_MIN(next, *next_scan);
}

/*
 * True if the manager must go round again without sleeping: something
 * changed, a stopping pool went idle, a kick came since @k, or a cancel
 * request waits. Called with `sleeping` set, so a later kick writes the
 * eventfd.
 */
static bool must_loop(struct process_pool *p, bool changed, bool leaving, uint32_t k)
{
    /* Work dropped above may have made a stopping pool idle: leave now. */
    bool may_leave = !leaving && all_empty(p) && may_stop(p);
    /* A pump set after this pass looked (cf_pp_set_pump's kick was before @k). */
    bool new_pump = !p->pump_seen && atomic_load(&p->pump);
    return changed || may_leave || new_pump || atomic_load(&p->kick) != k ||
           atomic_load(&p->cancel_req) != atomic_load(&p->cancel_done) ||
           atomic_load(&p->kill_req) != atomic_load(&p->kill_done);
}

/*
 * Before it sleeps, a manager that an event woke looks again for up to
 * MANAGER_SPIN_NS: reads the answer records, polls without a timeout and
 * yields the CPU in turn (the worker it waits for may want this one). A
 * task's answer or the next submit that comes meanwhile costs no wake-up of
 * the manager: W2's round trip had two of them, 32-36 us each on this
 * machine kind. An answer left in a record is completed before the NOTE
 * that announces it comes (ppw2 p50, 8 alternating runs: median 5.1 ->
 * 4.0 us). True if something came (handled already, or a kick or request
 * to act on).
 */
static bool spin_poll(struct process_pool *p, bool leaving, uint32_t k)
{
    int64_t until = cf_now_ns() + MANAGER_SPIN_NS;
    do {
        if (cf_pp_harvest_all(p) || poll_once(p, 0) > 0 ||
            must_loop(p, false, leaving, k))
            return true;
        sched_yield();
    } while (cf_now_ns() < until);
    return false;
}

/* Every worker is gone: lets the fork server go, tells shutdown, maybe frees @p. */
static void manager_exit(struct process_pool *p)
{
    cf_pp_close_fd(&p->fs_sock);
    while (waitpid(p->fs_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    atomic_store(&p->nidle, 0);
    atomic_store(&p->manager_done, true);
    atomic_fetch_add(&p->cancel_done, 1);
    cf_futex_wake(&p->cancel_done, INT_MAX);
    /* A kill waiter between its check and its wait sees the word change. */
    atomic_fetch_add(&p->kill_done, 1);
    cf_futex_wake(&p->kill_done, INT_MAX); /* kill waiters see manager_done */
    if (cf_executor_free_later(&p->base))
        cf_executor_self_free(&p->base); /* may free the pool */
    else
        cf_executor_bind_thread(NULL);
}

/*
 * Sleeps in poll() until @next (CF_NO_DEADLINE: until an event), then
 * yields the CPU if a pump @spins (a worker may want this one). True if an
 * event woke it.
 */
static bool sleep_until(struct process_pool *p, int64_t now, int64_t next, bool spins)
{
    int64_t wait = next == CF_NO_DEADLINE ? CF_NO_DEADLINE : CF_MAX(next - now, 0);
    atomic_store_explicit(&p->napping, true, memory_order_relaxed);
    bool woken = poll_once(p, wait) > 0;
    atomic_store_explicit(&p->napping, false, memory_order_relaxed);
    if (spins)
        sched_yield();
    return woken;
}

/* Calls the pump (pump.h), if any: how long the manager may sleep. */
static int64_t run_pump(struct process_pool *p)
{
    cf_pp_pump_fn fn = atomic_load(&p->pump);
    p->pump_seen = fn != NULL;
    if (!fn)
        return CF_NO_DEADLINE;
    int64_t ns = fn(p->pump_ud);
    return ns < 0 ? 0 : ns;
}

void *cf_pp_manager_main(void *arg)
{
    struct process_pool *p = arg;
    cf_pp_manager_bind(p);
    p->scan_every = SCAN_MIN_NS;
    int64_t next_scan = 0;
    bool leaving = false, woken = true;
    for (;;) {
        int64_t pump_wait = run_pump(p); /* first: what it submits goes in this pass */
        uint32_t k = atomic_load(&p->kick);
#ifdef CF_TEST_HOOKS
        size_t pushed = atomic_load(&p->base.test_pushed); /* before intake's lock */
#endif
        bool idle = all_empty(p);
        if (!leaving && intake(p, idle))
            leaving = true;
        cancel_all(p);
        cf_pp_handle_kill(p);
        cf_pp_reap(p); /* before the exit check: a freed seat may be the last */
        if (leaving && close_seats(p))
            break;
        cf_pp_dispatch(p);
#ifdef CF_TEST_HOOKS
        atomic_store(&p->base.test_settled, pushed);
#endif
        write_all_seats(p);
        int64_t now = cf_now_ns();
        bool changed = scan(p); /* may put revoked tasks back on the pending list */
        if (changed)
            p->scan_every = SCAN_MIN_NS;
        int64_t next = scan_timer(p, now, deadlines(p, now), &next_scan);
        next = cf_pp_respawn_timer(p, now, next);
        if (pump_wait < next - now)
            next = now + pump_wait;
        atomic_store(&p->sleeping, true);
        bool again = must_loop(p, changed, leaving, k);
#ifdef CF_TEST_HOOKS
        /* A push counted after this pass read the count: settle it too. */
        again |= atomic_load(&p->base.test_pushed) != pushed;
#endif
        if (again) {
            atomic_store(&p->sleeping, false);
            poll_once(p, 0);
            continue;
        }
        /* A timer's wake-up does not spin, nor one after a spin that found nothing. */
        if (woken && pump_wait == CF_NO_DEADLINE) { /* a pump says when to spin */
            if (spin_poll(p, leaving, k))
                continue;                     /* and spins again before the next sleep */
            atomic_store(&p->sleeping, true); /* the spin's polls cleared it */
            if (must_loop(p, false, leaving, k)) {
                atomic_store(&p->sleeping, false);
                continue;
            }
        }
        woken = sleep_until(p, now, next, pump_wait == 0);
    }
    manager_exit(p);
    return NULL;
}
