/*
 * seats.c: the process pool's workers as processes: forking one into a free
 * seat (through the fork server), signalling it, the idle count, and the
 * fork server's SPAWNED/EXITED reports, which end in cf_pp_finalize
 * (manager.c). The overview is in internal.h.
 *
 * Runs on the manager thread only.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/*
 * Keeps executor_stats' idle count exact at every change: a worker is idle
 * when it runs, has not exited, runs no task and was sent none it has not
 * started. A queued task may run on another seat's worker than the one it
 * was sent to (worker.h): what a worker runs is counted by its claims
 * (nrun), not by its cells. Called after each change of those, before any
 * future is completed, so that a caller woken by a result sees the worker
 * idle already.
 */
void cf_pp_idle_update(struct process_pool *p, struct pp_proc *pr)
{
    cf_count_flag(&pr->idle_counted,
                  pr->spawned && !pr->exited && pr->nrun == 0 && pr->nunstarted == 0,
                  &p->nidle);
}

void cf_pp_signal(struct pp_proc *pr, int sig)
{
    pr->killed = true;
    if (pr->exited)
        return;
    if (pr->spawned && pr->pid > 0)
        kill(pr->pid, sig); /* a zombie until we answer its EXITED: the pid is its */
    else
        pr->kill_sig = sig;
}

void cf_pp_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/*
 * The new worker in @seat takes over the cells the last one there left
 * (cf_pp_seat_free): queued tasks it did not start, and tasks other
 * workers run; they keep their place in the shared queue.
 */
static void adopt_cells(struct pp_proc *pr, struct pp_proc *old)
{
    assert(old->finalized && old->npiped == 0 && old->nrun == 0);
    memcpy(pr->cell, old->cell, sizeof(pr->cell));
    pr->used = old->used;
    pr->limited = old->limited;
    pr->ncells = old->ncells;
    pr->nunstarted = old->nunstarted;
    cf_buf_free(&old->in);
    cf_buf_free(&old->out);
    free(old); /* counted out of nworkers when it was finalized */
}

/* Starts a worker in @seat. NULL if that failed (the pool may be broken). */
struct pp_proc *cf_pp_spawn(struct process_pool *p, int seat)
{
    int tp[2] = {-1, -1}, rp[2] = {-1, -1};
    struct pp_proc *pr = calloc(1, sizeof(*pr));
    /* Room for frames up front: a wake-up (dispatch.c) never needs memory. */
    if (!pr || !cf_buf_reserve(&pr->out, 4096)) {
        errno = ENOMEM;
        goto fail;
    }
    if (pipe2(tp, O_CLOEXEC) < 0 || pipe2(rp, O_CLOEXEC) < 0)
        goto fail;
    fcntl(tp[1], F_SETFL, O_NONBLOCK);
    fcntl(rp[0], F_SETFL, O_NONBLOCK);
    fcntl(tp[1], F_SETPIPE_SZ, 1 << 20); /* best effort: a deeper pipe */
    fcntl(rp[0], F_SETPIPE_SZ, 1 << 20);
    pr->seat = seat;
    pr->spawn_gen = ++p->spawn_gen;
    /* A new worker: not asleep, not leaving, no piped frame counted, its
       initializer (if any) not run (pp_join_until). */
    atomic_store(&p->seatw[seat].flags, p->wcfg.initializer ? CF_SEAT_INIT : 0);
    atomic_store(&p->seatw[seat].bound, 0);
    atomic_store(&p->seatw[seat].running, 0);
    if (cf_forkserver_spawn(p->fs_sock, seat, pr->spawn_gen, tp[0], rp[1]) < 0) {
        /* The server is gone, or its socket failed: never used again. Shut, the
           socket reads EOF at the next poll, where cf_pp_read_fs handles the loss
           (a live server kills its workers and exits on that EOF). */
        shutdown(p->fs_sock, SHUT_RDWR);
        p->fs_gone = true;
        atomic_fetch_and(&p->seatw[seat].flags, ~CF_SEAT_INIT); /* none started */
        goto fail;
    }
    close(tp[0]);
    close(rp[1]);
    pr->to_fd = tp[1];
    pr->from_fd = rp[0];
    pr->budget = p->wcfg.max_tasks > 0 ? p->wcfg.max_tasks : INT_MAX;
    if (p->seats[seat])
        adopt_cells(pr, p->seats[seat]);
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
    if (pr)
        cf_buf_free(&pr->out);
    free(pr);
    errno = err;
    return NULL;
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
                cf_pp_idle_update(p, pr);
                cf_pp_finalize(p, pr);
                return;
            }
            pr->pid = m->pid;
            p->respawn_every = 0;
            cf_pp_idle_update(p, pr);
            if (pr->kill_sig)
                kill(pr->pid, pr->kill_sig);
            return;
        }
        if (m->op == CF_FS_EXITED && pr->spawned && !pr->exited && pr->pid == m->pid) {
            pr->exited = true;
            pr->status = m->status;
            cf_pp_idle_update(p, pr);
            cf_pp_finalize(p, pr);
            return;
        }
    }
}

/*
 * The fork server is gone (EOF or an error on its socket). Its workers die
 * with it (PDEATHSIG), and no exit report will come. What they answered
 * counts (internal.h): read first. Then each is marked exited, since its
 * pid is no longer held for us (a zombie of the server's) and must not be
 * signalled, and the pool breaks.
 */
static void fs_lost(struct process_pool *p)
{
    p->fs_lost = p->fs_gone = true;
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (pr && pr->from_fd >= 0 && !pr->eof)
            cf_pp_read(p, pr, true);
    }
    cf_pp_harvest_all(p);
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (pr) {
            pr->exited = true;
            pr->status = SIGKILL; /* a wait status: killed by SIGKILL */
        }
    }
    cf_pp_break(p, "the process pool's fork server is gone");
    for (int s = 0; s < p->nseats; s++) {
        struct pp_proc *pr = p->seats[s];
        if (pr && !pr->finalized) {
            cf_pp_idle_update(p, pr);
            cf_pp_finalize(p, pr);
        }
    }
}

void cf_pp_read_fs(struct process_pool *p)
{
    struct cf_fs_msg m;
    int rc;
    while ((rc = cf_forkserver_recv(p->fs_sock, &m)) == 1) {
        fs_message(p, &m);
        /* The worker is marked exited: nothing signals its pid from now on. */
        if (m.op == CF_FS_EXITED)
            cf_forkserver_reap(p->fs_sock, m.pid);
    }
    if (rc < 0 && !p->fs_lost)
        fs_lost(p);
}
