/*
 * pool.c: the MPI pool executor's master side (mpi4py.futures'
 * MPIPoolExecutor): creation (spawn or world ranks), the ops table and the
 * manager thread that makes every MPI call of this executor.
 *
 * DESIGN
 * Submit copies the argument, names the function (taskid.c; a function in
 * no module with a build-id fails the submit with FUT_EINVAL) and appends
 * the item to the submit FIFO under `mu`. The manager takes an item only
 * when a rank has room in its window (the least loaded rank first), marks
 * its future RUNNING (mpi4py's rule: a task sent is running; until then
 * future_cancel cancels it) and sends one TASK frame. future_cancel on a
 * sent task is forwarded (CANCEL): once the task started on its rank, the
 * rank cancels its own future of it, so the task is asked to stop, as on
 * a process pool. How many tasks a
 * rank gets ahead, and when it gives some back, is balance.c's. Answers
 * (RESULT or FAILED frames) name their cell and its generation, so several
 * tasks can be in flight per rank and a stale answer never completes a
 * later task.
 *
 * Heartbeat: a rank silent for ping_ns (PING_NS, or a quarter of the
 * limit if shorter) gets a PING, which its relay answers whatever its tasks
 * do. A rank silent for the heartbeat limit (CFUTURES_MPI_HEARTBEAT
 * seconds, default 10) and with a PING unanswered for the limit less
 * ping_ns is lost (a manager held up, by a long done-callback say, asks
 * before it judges: a rank is not lost for the manager's silence). Its
 * tasks fail FUT_EWORKER, nothing more is sent to it, and the pool goes on
 * with the others (broken, FUT_EBROKEN, once none is left). A rank whose
 * local process pool broke (its fork server killed, no fork possible)
 * refuses each task unrun: the task goes to another rank, and that rank
 * gets no more (answers.c), in world mode from later executors either
 * (cf_mpi_world_lose; a world rank also says BROKEN, relay.c), but is
 * stopped as usual. Open MPI 4.1
 * can hang in teardown after a rank death, so after a loss nothing is
 * disconnected and MPI is not finalized at exit (serve.c).
 *
 * Idling: after SPIN_NS without a message the manager naps on its
 * condition variable, doubling from 1 us to NAP_MAX_NS while tasks are out,
 * up to ping_ns / 2 when none are; a submit signals it.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../process/wire.h"
#include "executor.h"
#include "future.h"
#include "master.h"
#include "util.h"

#define SPIN_NS (100 * 1000LL)
#define NAP_MAX_NS (1000 * 1000LL)
#define PING_NS (500 * 1000000LL)
#define BATCH_BYTES (256 * 1024) /* a message of several TASK frames, past one */
#define NO_RANK_LEFT "every MPI worker rank was lost, or its process pool broke"

static inline struct mpi_pool *mp_of(executor_t *ex)
{
    return (struct mpi_pool *)ex;
}

void cf_mp_work_drop(struct cf_work *cw)
{
    struct mp_work *w = (struct mp_work *)cw;
    free(w->arg);
    w->arg = NULL;
    future_unref(cf_work_future(cw));
}

/*
 * A task carrying another task_fn in its argument (future_then's step):
 * that one is named by build-id and offset too, in the copy sent.
 */
static int carried_fn_encode(struct cf_work *cw)
{
    size_t off;
    if (!cf_task_carries_fn(cw->fn, cw->arg_len, &off))
        return 0;
    unsigned char *slot = (unsigned char *)cw->arg + off;
    task_fn inner;
    uint64_t desc;
    memcpy(&inner, slot, sizeof(inner));
    if (cf_mpi_fn_encode(cf_mpi_modules(), inner, &desc) < 0)
        return FUT_EINVAL;
    memcpy(slot, &desc, sizeof(desc));
    return 0;
}

static int mp_submit(executor_t *ex, struct cf_work *cw)
{
    struct mpi_pool *p = mp_of(ex);
    struct mp_work *w = (struct mp_work *)cw;
    w->arg = NULL;
    atomic_init(&w->stop_req, false);
    if ((cw->arg_len && !cw->arg) ||
        cw->arg_len > (size_t)INT_MAX - CF_WIRE_HDR - CF_WIRE_TASK_FIXED ||
        cf_mpi_fn_encode(cf_mpi_modules(), cw->fn, &w->desc) < 0)
        return FUT_EINVAL;
    if (cw->arg_len) {
        w->arg = malloc(cw->arg_len);
        if (!w->arg)
            return FUT_ENOMEM;
        memcpy(w->arg, cw->arg, cw->arg_len);
    }
    cw->arg = w->arg;
    if (carried_fn_encode(cw) < 0) {
        free(w->arg);
        w->arg = NULL;
        return FUT_EINVAL;
    }
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (p->stopping)
        rc = FUT_ESHUTDOWN;
    else if (atomic_load(&p->base.broken))
        rc = FUT_EBROKEN;
    else
        cf_fifo_push_prio(&p->sub, cw);
    if (rc == 0 && p->sleeping)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (rc < 0) {
        free(w->arg);
        w->arg = NULL;
    }
    return rc;
}

static void mp_shutdown(executor_t *ex, bool cancel_futures)
{
    struct mpi_pool *p = mp_of(ex);
    struct cf_work_fifo q = {0};
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    if (cancel_futures)
        q = cf_fifo_take(&p->sub);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    cf_executor_drain_fifo(ex, &q, FUT_ECANCELLED, NULL, cf_mp_work_drop);
}

static void mp_join(executor_t *ex)
{
    pthread_join(mp_of(ex)->manager, NULL);
}

static void mp_destroy(executor_t *ex)
{
    struct mpi_pool *p = mp_of(ex);
    for (int i = 0; p->ranks && i < p->nranks; i++)
        cf_buf_free(&p->ranks[i].out);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->ranks);
    free(p->peers);
    free(p->lost);
    cf_executor_deinit(ex);
    free(p);
}

/*
 * future_cancel on a sent (RUNNING) task, under its future's lock: the
 * manager tells its rank (balance.c, CANCEL), where the task is asked to
 * stop (task_should_stop) once it started there (relay.c).
 */
static void mp_request_stop(executor_t *ex, struct cf_work *cw)
{
    atomic_store(&((struct mp_work *)cw)->stop_req, true);
    atomic_store(&mp_of(ex)->stops, true);
}

static void mp_stats(executor_t *ex, executor_stats_t *out)
{
    struct mpi_pool *p = mp_of(ex);
    out->workers = atomic_load_explicit(&p->nworkers, memory_order_relaxed);
    out->idle =
        CF_MIN(atomic_load_explicit(&p->nidle, memory_order_relaxed), out->workers);
}

static const struct cf_executor_ops mpi_pool_ops = {
    .own_thread_makes_room = true,
    .work_size = sizeof(struct mp_work),
    .arg_max = (size_t)INT_MAX - CF_WIRE_HDR - CF_WIRE_TASK_FIXED,
    .submit = mp_submit,
    .shutdown = mp_shutdown,
    .join = mp_join,
    .destroy = mp_destroy,
    .stats = mp_stats,
    .request_stop = mp_request_stop,
};

/* ------------------------------------------------------------ manager */

/*
 * Keeps executor_stats' workers and idle counts exact at every change, as
 * a process pool does: a rank counts as a worker while it is usable, and
 * idle while it also holds no task. Called after each change of those
 * (cf_mp_cell_take, place_task, a rank lost or broken), before any future
 * is completed, so that a caller woken by a result, or a done-callback,
 * sees the rank idle already. Only the manager thread writes them.
 */
void cf_mp_count(struct mpi_pool *p, struct mp_rank *r)
{
    bool usable = cf_mp_usable(r);
    cf_count_flag(&r->counted, usable, &p->nworkers);
    cf_count_flag(&r->idle, usable && r->n == 0, &p->nidle);
}

/*
 * Rank @ri is about to get a task: an idle one no longer counts idle, before
 * the task counts running (cf_executor_started), so that executor_stats
 * taken after it saw the task running never shows the rank idle
 * (place_task, or cf_mp_count if it fails, makes the count exact again).
 */
static void rank_taking(struct mpi_pool *p, int ri)
{
    struct mp_rank *r = &p->ranks[ri];
    if (r->idle) {
        r->idle = false;
        atomic_fetch_sub_explicit(&p->nidle, 1, memory_order_relaxed);
    }
}

/* Takes cell @c of rank @ri back; returns its work item. */
struct mp_work *cf_mp_cell_take(struct mpi_pool *p, int ri, int c)
{
    struct mp_rank *r = &p->ranks[ri];
    struct mp_work *w = r->cell[c];
    r->cell[c] = NULL;
    r->n--;
    if (r->revoked[c]) {
        r->revoked[c] = false;
        r->nrevoked--;
    }
    cf_mp_count(p, r);
    return w;
}

/* Fails @cw, a task counted started, with @status and @msg; drops it. */
static void fail_started(struct mpi_pool *p, struct cf_work *cw, int status,
                         const char *msg)
{
    cf_executor_finished(&p->base, true);
    cf_future_fail(cf_work_future(cw), status, 0, -1, 0, msg);
    cf_mp_work_drop(cw);
}

/* Marks rank @ri lost and fails its tasks FUT_EWORKER with @why. */
void cf_mp_lose_rank(struct mpi_pool *p, int ri, const char *why)
{
    struct mp_rank *r = &p->ranks[ri];
    char msg[400];
    snprintf(msg, sizeof(msg), "MPI worker rank %d (pid %d on %s) lost: %s",
             r->peer->dest, r->peer->pid, r->peer->host, why);
    r->lost = true;
    p->any_lost = true;
    cf_mpi_note_loss();
    if (!p->spawn) /* later executors leave it out */
        cf_mpi_world_lose(r->peer->dest);
    cf_mp_count(p, r);
    for (int c = 0; c < DEPTH; c++) {
        if (!r->cell[c])
            continue;
        fail_started(p, &cf_mp_cell_take(p, ri, c)->base, FUT_EWORKER, msg);
    }
}

static bool receive(struct mpi_pool *p, int ri, int64_t now);
static void heartbeat(struct mpi_pool *p, int64_t now);

/*
 * Sends @n bytes at @b to rank @ri as @kind and waits for MPI to be done
 * with them. Meanwhile answers are received (the rank may be blocked
 * sending us a large answer) and the heartbeat runs: Open MPI never
 * completes a send to a dead rank, however small (its TCP transport retries
 * the connection), so a lost rank cannot block the manager. True if @b is
 * the caller's again; false if the rank was lost with the send pending (or
 * MPI failed): MPI may still read @b, so the caller must leave it alone.
 */
bool cf_mp_send(struct mpi_pool *p, int ri, const void *b, int n, int kind)
{
    struct mp_rank *r = &p->ranks[ri];
    MPI_Request rq;
    int done = 0;
    if (MPI_Isend(b, n, MPI_BYTE, r->peer->dest, CF_MPI_TAG(p->e, kind), r->peer->comm,
                  &rq) != MPI_SUCCESS) {
        cf_mp_lose_rank(p, ri, "an MPI send to it failed");
        return true;
    }
    for (;;) {
        if (MPI_Test(&rq, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            cf_mp_lose_rank(p, ri, "an MPI send to it failed");
            return false;
        }
        if (done)
            return true;
        int64_t now = cf_now_ns();
        for (int i = 0; i < p->nranks; i++)
            receive(p, i, now);
        heartbeat(p, now);
        if (r->lost) {
            MPI_Request_free(&rq);
            return false;
        }
        sched_yield();
    }
}

/* Sends rank @ri's batch of TASK frames as one message (cf_mp_send). */
static void flush_rank(struct mpi_pool *p, int ri)
{
    struct mp_rank *r = &p->ranks[ri];
    if (r->out.len == 0 || r->lost)
        return;
    if (cf_mp_send(p, ri, r->out.p, (int)r->out.len, CF_MPI_K_TASK))
        r->out.len = 0;
    else
        r->out = (struct cf_buf){0}; /* MPI's now */
}

/*
 * Puts @w in a free cell of rank @ri and appends its TASK frame to the
 * rank's batch. 0; FUT_ENOMEM (no memory for the frame) or FUT_EWORKER
 * (the rank was lost sending a full batch, before @w): @w was not placed.
 */
static int place_task(struct mpi_pool *p, int ri, struct mp_work *w)
{
    struct mp_rank *r = &p->ranks[ri];
    size_t len = CF_WIRE_TASK_FIXED + w->base.arg_len;
    if (r->out.len && r->out.len + CF_WIRE_HDR + len > BATCH_BYTES)
        flush_rank(p, ri); /* a full batch goes now */
    if (r->lost)
        return FUT_EWORKER;
    if (!cf_buf_reserve(&r->out, CF_WIRE_HDR + len))
        return FUT_ENOMEM;
    int c = 0;
    while (r->cell[c])
        c++;
    uint32_t gen = ++r->gen[c];
    unsigned char *b = r->out.p + r->out.len;
    cf_wire_put_hdr(b, CF_WIRE_TASK, cf_mp_cell_id(ri, c, gen), len);
    cf_wire_put_task(b + CF_WIRE_HDR, w->desc, w->base.limit_ns);
    if (w->base.arg_len)
        memcpy(b + CF_WIRE_HDR + CF_WIRE_TASK_FIXED, w->arg, w->base.arg_len);
    r->out.len += CF_WIRE_HDR + len;
    r->cell[c] = w;
    r->seq[c] = ++p->sends;
    w->stop_sent = false;
    if (atomic_load(&w->stop_req))
        atomic_store(&p->stops, true); /* cancelled, then given back: CANCEL it here */
    if (r->n++ == 0)
        r->mark = cf_now_ns();
    cf_mp_count(p, r);
    return 0;
}

bool cf_mp_has_work(struct mpi_pool *p)
{
    if (p->back.head)
        return true;
    pthread_mutex_lock(&p->mu);
    bool any = p->sub.head != NULL;
    pthread_mutex_unlock(&p->mu);
    return any;
}

/* Sends queued tasks while a rank has room, one message per rank. True if any. */
bool cf_mp_dispatch(struct mpi_pool *p)
{
    bool any = false;
    p->dispatching = true;
    int ri;
    while ((ri = cf_mp_pick(p)) >= 0) {
        struct cf_work *cw = cf_fifo_pop(&p->back); /* running already */
        bool fresh = !cw;
        if (fresh) {
            pthread_mutex_lock(&p->mu);
            cw = cf_fifo_pop(&p->sub);
            pthread_mutex_unlock(&p->mu);
            if (!cw)
                break;
            if (cf_future_set_running(cf_work_future(cw)) != 1) {
                cf_mp_work_drop(cw); /* cancelled while queued */
                continue;
            }
        }
        rank_taking(p, ri);
        if (fresh) /* after rank_taking: see there */
            cf_executor_started(&p->base);
        any = true;
        int rc = place_task(p, ri, (struct mp_work *)cw);
        if (rc < 0)
            cf_mp_count(p, &p->ranks[ri]); /* not placed: idle again, maybe */
        if (rc == FUT_EWORKER) /* lost sending the batch before it: to another rank */
            cf_fifo_push_front(&p->back, cw);
        else if (rc < 0)
            fail_started(p, cw, rc, "no memory for its frame");
    }
    for (ri = 0; ri < p->nranks; ri++)
        flush_rank(p, ri);
    p->dispatching = false;
    return any;
}

/*
 * Receives what rank @ri has sent this executor, come by @now. True if
 * anything came. Answers may send tasks (cf_mp_on_answers), so any rank may
 * be lost on return.
 */
static bool receive(struct mpi_pool *p, int ri, int64_t now)
{
    struct mp_rank *r = &p->ranks[ri];
    bool any = false;
    for (int kind = CF_MPI_K_ANSWER; kind <= CF_MPI_K_PONG && !r->lost; kind += 2) {
        int flag = 1, count = 0;
        MPI_Status st;
        while (flag && !r->lost) {
            int tag = CF_MPI_TAG(p->e, kind);
            if (MPI_Iprobe(r->peer->dest, tag, r->peer->comm, &flag, &st) !=
                MPI_SUCCESS) {
                cf_mp_lose_rank(p, ri, "MPI_Iprobe failed");
                break;
            }
            if (!flag)
                break;
            MPI_Get_count(&st, MPI_BYTE, &count);
            unsigned char *b = malloc(count > 0 ? (size_t)count : 1);
            if (!b || MPI_Recv(b, count, MPI_BYTE, r->peer->dest, tag, r->peer->comm,
                               MPI_STATUS_IGNORE) != MPI_SUCCESS) {
                free(b);
                cf_mp_lose_rank(p, ri, b ? "MPI_Recv failed" : "no memory for an answer");
                break;
            }
            r->heard = now;
            r->asked = 0;
            any = true;
            if (kind == CF_MPI_K_ANSWER) {
                cf_mp_on_answers(p, ri, b, (size_t)count, now);
                now = cf_now_ns(); /* its sends may have taken long */
            }
            free(b);
        }
    }
    return any;
}

/* PINGs silent ranks; loses those silent past the limit. */
static void heartbeat(struct mpi_pool *p, int64_t now)
{
    for (int i = 0; i < p->nranks; i++) {
        struct mp_rank *r = &p->ranks[i];
        if (r->lost)
            continue;
        if (now - r->heard > p->hb_limit && r->asked &&
            now - r->asked >= p->hb_limit - p->ping_ns) {
            char why[96];
            snprintf(why, sizeof(why), "no answer to the heartbeat for %g s",
                     (double)p->hb_limit / 1e9);
            cf_mp_lose_rank(p, i, why);
            continue;
        }
        if (now - r->heard > p->ping_ns && now - r->pinged > p->ping_ns) {
            MPI_Request rq;
            if (MPI_Isend(NULL, 0, MPI_BYTE, r->peer->dest,
                          CF_MPI_TAG(p->e, CF_MPI_K_PING), r->peer->comm,
                          &rq) == MPI_SUCCESS)
                MPI_Request_free(&rq);
            r->pinged = now;
            if (!r->asked)
                r->asked = now;
        }
    }
}

/* Fails the tasks given back and not sent again (no rank is left). */
static void fail_back(struct mpi_pool *p)
{
    struct cf_work *cw;
    while ((cw = cf_fifo_pop(&p->back)))
        fail_started(p, cw, FUT_EBROKEN, NO_RANK_LEFT);
}

/* No live rank is left: the pool is broken. */
static void break_pool(struct mpi_pool *p)
{
    cf_executor_mark_broken(&p->base);
    fail_back(p);
    pthread_mutex_lock(&p->mu);
    struct cf_work_fifo q = cf_fifo_take(&p->sub);
    pthread_mutex_unlock(&p->mu);
    cf_executor_drain_fifo(&p->base, &q, FUT_EBROKEN, NO_RANK_LEFT, cf_mp_work_drop);
}

/* Waits for work or an answer: @ns at most. True if the manager should leave. */
static bool idle_wait(struct mpi_pool *p, int64_t ns, int out)
{
    pthread_mutex_lock(&p->mu);
    bool sendable = p->sub.head && cf_mp_pick(p) >= 0; /* else a submit changes nothing */
    bool leave = p->stopping && !p->sub.head && out == 0;
    if (!sendable && !leave) {
        struct timespec ts;
        cf_ns_to_timespec(cf_now_ns() + ns, &ts);
        p->sleeping = true;
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        p->sleeping = false;
        leave = p->stopping && !p->sub.head && out == 0;
    }
    pthread_mutex_unlock(&p->mu);
    return leave;
}

static int tasks_out(const struct mpi_pool *p, bool *alive)
{
    int out = p->back.head != NULL; /* given back, to send again: one is enough */
    *alive = false;
    for (int i = 0; i < p->nranks; i++) {
        out += p->ranks[i].n;
        *alive |= cf_mp_usable(&p->ranks[i]);
    }
    return out;
}

/* Spawn mode: the ranks end (spawn.c; bounded, then SIGKILL). */
static void release_ranks(struct mpi_pool *p)
{
    if (!p->spawn)
        return;
    for (int i = 0; i < p->nranks; i++)
        p->lost[i] = p->ranks[i].lost;
    if (!cf_mpi_release(p->peers, p->lost, p->nranks, p->any_lost))
        p->any_lost = true;
}

static void *manager_main(void *arg)
{
    struct mpi_pool *p = arg;
    cf_executor_bind_thread(&p->base);
    int64_t spin_until = 0, nap = 1000;
    for (;;) {
        bool busy = cf_mp_dispatch(p);
        int64_t now = cf_now_ns();
        for (int i = 0; i < p->nranks; i++)
            busy |= receive(p, i, now);
        heartbeat(p, now);
        cf_mp_forward_stops(p);
        cf_mp_rebalance(p, now);
        bool alive;
        int out = tasks_out(p, &alive);
        if (!alive && !atomic_load(&p->base.broken))
            break_pool(p);
        else if (!alive)
            fail_back(p); /* given back after the break: nothing runs them */
        if (busy) {
            spin_until = now + SPIN_NS;
            nap = 1000;
            continue;
        }
        if (now < spin_until && out > 0) {
            sched_yield();
            continue;
        }
        if (idle_wait(p, out > 0 ? nap : p->ping_ns / 2, out))
            break;
        nap = CF_MIN(nap * 2, NAP_MAX_NS);
    }
    release_ranks(p);
    /* After a loss the number stays taken: a rank lost while alive (stopped,
       cut off) may still answer with it, and a later executor's ids would
       match those answers. */
    if (!p->spawn && !p->any_lost)
        cf_mpi_release_e(p->e);
    atomic_store(&p->nworkers, 0);
    atomic_store(&p->nidle, 0);
    if (cf_executor_free_later(&p->base))
        cf_executor_self_free(&p->base);
    else
        cf_executor_bind_thread(NULL);
    return NULL;
}

/* ------------------------------------------------------------ creation */

/* The heartbeat limit: CFUTURES_MPI_HEARTBEAT seconds, default 10. */
static int64_t heartbeat_limit(void)
{
    return (int64_t)(cf_mpi_env_secs("CFUTURES_MPI_HEARTBEAT", 0.1, 10.0) * 1e9);
}

/* The default worker count in spawn mode: CFUTURES_MPI_MAX_WORKERS, else cpus. */
static int default_workers(void)
{
    if (cf_mpi_world_mode())
        return CF_MAX(cf_mpi_world_peers(NULL, 0), 1);
    return cf_mpi_env_int("CFUTURES_MPI_MAX_WORKERS", 1, 4096, cf_cpu_count());
}

/* CFUTURES_MPI_AHEAD: tasks sent ahead of a rank's workers (balance.c), -1: by pace. */
static int fixed_ahead(void)
{
    return cf_mpi_env_int("CFUTURES_MPI_AHEAD", 0, DEPTH, -1);
}

/* The ranks of a new pool, spawned or the world's. 0 or a code. */
static int attach_ranks(struct mpi_pool *p)
{
    int npeers = cf_mpi_world_peers(NULL, 0);
    p->spawn = !cf_mpi_world_mode();
    p->nranks =
        p->spawn ? p->base.opts.max_workers : CF_MIN(p->base.opts.max_workers, npeers);
    if (p->nranks > 4096)
        return FUT_EINVAL;
    size_t n = (size_t)CF_MAX(p->nranks, 1);
    p->ranks = calloc(n, sizeof(*p->ranks));
    p->peers = calloc(n, sizeof(*p->peers));
    p->lost = calloc(n, sizeof(*p->lost));
    if (!p->ranks || !p->peers || !p->lost)
        return FUT_ENOMEM;
    for (int i = 0; i < p->nranks; i++)
        p->ranks[i].peer = &p->peers[i];
    if (!p->spawn) {
        /* the live ones now (another executor may have lost one since) */
        p->nranks = CF_MIN(p->nranks, cf_mpi_world_peers(p->peers, p->nranks));
        if (p->nranks == 0)
            return FUT_EBROKEN; /* every world rank was lost, or its pool broke */
        p->e = cf_mpi_next_e();
        return p->e ? 0 : FUT_EINVAL;
    }
    p->e = 1;
    return cf_mpi_spawn(p->peers, p->nranks);
}

executor_t *mpi_pool_executor_new(const executor_options_t *o)
{
    if (!cf_mpi_ready() || (o && (o->initializer || o->max_tasks_per_child ||
                                  o->on_worker_death != FUT_WORKER_RESPAWN)))
        return cf_fail_null(FUT_EINVAL);
    struct mpi_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return cf_fail_null(FUT_ENOMEM);
    int rc = cf_executor_init(&p->base, &mpi_pool_ops, o, default_workers());
    if (rc < 0) {
        free(p);
        return cf_fail_null(rc);
    }
    cf_cond_init_monotonic(&p->cv);
    pthread_mutex_init(&p->mu, NULL);
    p->hb_limit = heartbeat_limit();
    p->ping_ns = CF_MIN(PING_NS, p->hb_limit / 4);
    rc = cf_mpi_start(); /* MPI itself, in a program started alone; options checked */
    if (rc == 0)
        rc = attach_ranks(p);
    int64_t now = cf_now_ns();
    int ahead = fixed_ahead();
    for (int i = 0; rc == 0 && i < p->nranks; i++) {
        p->ranks[i].heard = p->ranks[i].pinged = now;
        p->ranks[i].ahead = ahead;
        cf_mp_set_window(&p->ranks[i]);
    }
    for (int i = 0; rc == 0 && i < p->nranks; i++)
        cf_mp_count(p, &p->ranks[i]);
    if (rc == 0) {
        rc = cf_start_thread(&p->manager, manager_main, p) == 0 ? 0 : FUT_ESYS;
        if (rc < 0) {
            p->stopping = true;
            release_ranks(p);
        }
    }
    if (rc < 0) {
        if (!p->spawn && p->e)
            cf_mpi_release_e(p->e);
        mp_destroy(&p->base);
        return cf_fail_null(rc);
    }
    return &p->base;
}
