/*
 * relay.c: a worker rank's relay (serve.c starts and ends it): TASKs from
 * the master run in the rank's local process pool, and their answers go
 * back (internal.h has the big picture).
 *
 * DESIGN
 * The relay is the local pool's pump (lib/process/pump.h): it runs on that
 * pool's manager thread, once per manager pass, so a task received goes to
 * a worker in the same pass (no wake-up of another thread) and an answer
 * completed in a pass leaves in the next call (done-callbacks run on the
 * manager; each pokes the manager so that it calls the relay again before
 * it sleeps), several in one message. A turn: send the queued answers, ask
 * CANCELled started tasks to stop, then receive what has come. PING is
 * answered in the turn it is received in, whatever the tasks do (a manager
 * pass never waits for a task), so the master can tell a busy rank from a
 * lost one. REVOKE gives back tasks not started, CANCEL asks
 * tasks to stop once they started (cancel_ids, stop_started). STOP ends the
 * relay: the rank's main thread, which waited, frees the local pool (it
 * finishes what it holds first) and sends what is left.
 *
 * Everything here runs on the manager thread, until the main thread takes
 * over after STOP, once the manager is gone (executor_free joined it): the
 * rank's state needs no lock but the one around `finished`. If the local
 * pool broke before the relay could be set on it (its manager left), the
 * main thread runs the turns itself. Once the local pool is broken, every
 * task is refused unrun (CF_MPI_NOT_RUN): the master runs it elsewhere and
 * sends this rank no more. So is every task the local pool held when it
 * broke and never started (its local future failed FUT_EBROKEN without
 * running: cf_future_ran); one that started fails FUT_EBROKEN, as it may
 * have done part of its work. A world rank also tells the master at once
 * (say_broken), so no executor made after is handed it. The pool is not
 * made again: its fork server would be forked from a process with MPI up
 * (registered memory, MPI's threads), which serve.c forks it before to
 * avoid; with nothing to run here, the rank only answers until STOP.
 *
 * Idling: for SPIN_NS after the last message or answer the manager spins
 * (probes and yields), then naps doubling from 1 us to NAP_MAX_NS, so an
 * idle rank costs no core (a blocking MPI receive would spin one). A
 * worker's answer wakes the manager from a nap as it would without a pump.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../process/pump.h"
#include "../process/wire.h"
#include "executor.h"
#include "future.h"
#include "internal.h"
#include "util.h"

#define SPIN_NS (200 * 1000LL)
#define NAP_MAX_NS (1000 * 1000LL)
#define RECV_MAX 16                     /* messages received in one turn */
#define ANSWER_BATCH_BYTES (256 * 1024) /* answers in one message, past one */
#define REVOKE_MAX                                                                       \
    64 /* ids in one REVOKE that are looked at: the master sends DEPTH at most */

/* A task in flight: what its answer's done-callback needs. */
struct answer_to {
    struct cf_mpi_rank *r;
    int e;
    uint64_t id;
    future_t *f;                     /* the local future */
    bool stop;                       /* CANCEL came, stop_started not yet */
    struct answer_to *next, **pprev; /* r->inflight */
};

/* Sends what queue_answer queued: true if there was any. */
bool cf_mpi_relay_flush(struct cf_mpi_rank *r)
{
    if (!r->out.len)
        return false;
    MPI_Send(r->out.p, (int)r->out.len, MPI_BYTE, r->master,
             CF_MPI_TAG(r->out_e, CF_MPI_K_ANSWER), r->comm);
    r->out.len = r->out.off = 0;
    return true;
}

/*
 * Queues @n bytes of answer frames @b for executor @e, for the next turn to
 * send in one message. Another executor's queued answers go first, and so
 * do queued answers that @b would take past ANSWER_BATCH_BYTES (a message's
 * count is an int: big results go one a message); after STOP (the main
 * thread sends what is queued) and without memory, @b goes at once.
 */
static void queue_answer(struct cf_mpi_rank *r, int e, const unsigned char *b, size_t n)
{
    if (r->out.len && (r->out_e != e || r->out.len + n > ANSWER_BATCH_BYTES) && !r->done)
        cf_mpi_relay_flush(r);
    if ((r->out.len == 0 || (r->out_e == e && r->out.len + n <= ANSWER_BATCH_BYTES)) &&
        cf_buf_reserve(&r->out, n)) {
        memcpy(r->out.p + r->out.len, b, n);
        r->out.len += n;
        r->out_e = e;
        return;
    }
    MPI_Send(b, (int)n, MPI_BYTE, r->master, CF_MPI_TAG(e, CF_MPI_K_ANSWER), r->comm);
}

/* Answers task @id at once with a failure @status, @code and @msg (never ran). */
static void refuse(struct cf_mpi_rank *r, int e, uint64_t id, int status, int code,
                   const char *msg)
{
    size_t mlen = strlen(msg);
    unsigned char b[CF_WIRE_HDR + CF_WIRE_FAILED_FIXED + 256];
    mlen = mlen > 256 ? 256 : mlen;
    cf_wire_put_hdr(b, CF_WIRE_FAILED, id, CF_WIRE_FAILED_FIXED + mlen);
    cf_wire_put_failed(b + CF_WIRE_HDR, status, code, -1, 0);
    memcpy(b + CF_WIRE_HDR + CF_WIRE_FAILED_FIXED, msg, mlen);
    queue_answer(r, e, b, CF_WIRE_HDR + CF_WIRE_FAILED_FIXED + mlen);
}

/* Queues @f's outcome as a RESULT or FAILED frame. */
static void send_answer(const struct answer_to *to, future_t *f)
{
    const void *data;
    size_t len;
    const future_error_t *err = NULL;
    int rc = future_result(f, 0, &data, &len);
    if (rc == 0 && len > (size_t)INT32_MAX / 2)
        rc = FUT_EINVAL; /* a message's count is an int */
    size_t mlen = 0;
    if (rc != 0) {
        future_exception(f, 0, &err);
        mlen = err ? strlen(err->message) : 0;
        mlen = mlen > CF_WIRE_MAX_MSG ? CF_WIRE_MAX_MSG : mlen;
        len = CF_WIRE_FAILED_FIXED + mlen;
    }
    unsigned char *b = malloc(CF_WIRE_HDR + len);
    if (!b) { /* a short answer instead, from the stack */
        refuse(to->r, to->e, to->id, FUT_ENOMEM, 0,
               "no memory on the worker rank for the task's answer");
        return;
    }
    if (rc == 0) {
        cf_wire_put_hdr(b, CF_WIRE_RESULT, to->id, len);
        if (len)
            memcpy(b + CF_WIRE_HDR, data, len);
    } else {
        int code = err ? err->code : 0;
        if (rc == FUT_EBROKEN && !cf_future_ran(f))
            code = CF_MPI_NOT_RUN; /* held when the local pool broke: run it elsewhere */
        cf_wire_put_hdr(b, CF_WIRE_FAILED, to->id, len);
        cf_wire_put_failed(b + CF_WIRE_HDR, err ? err->status : rc, code,
                           err ? err->exit_status : -1, err ? err->signal : 0);
        if (mlen)
            memcpy(b + CF_WIRE_HDR + CF_WIRE_FAILED_FIXED, err->message, mlen);
    }
    queue_answer(to->r, to->e, b, CF_WIRE_HDR + len);
    free(b);
}

/* The local future's done-callback (the local pool's manager thread). */
static void answer_cb(future_t *f, void *ud)
{
    struct answer_to *to = ud;
    struct cf_mpi_rank *r = to->r;
    r->nstop -= to->stop; /* out of the tasks in flight */
    *to->pprev = to->next;
    if (to->next)
        to->next->pprev = to->pprev;
    send_answer(to, f);
    /* Completed late in a pass (a deadline, say): sent before the manager sleeps. */
    cf_pp_pump_poke(r->local);
    free(to);
    future_unref(f);
}

/*
 * A task carrying another task_fn in its argument @arg (future_then's
 * step): the master sent that one's name (pool.c), made a local pointer
 * here, in the received bytes. False if it names nothing loaded here.
 */
static bool carried_fn_decode(const struct cf_mpi_rank *r, task_fn fn, unsigned char *arg,
                              size_t arg_len)
{
    size_t off;
    if (!cf_task_carries_fn(fn, arg_len, &off))
        return true;
    uint64_t desc;
    memcpy(&desc, arg + off, sizeof(desc));
    task_fn inner = cf_mpi_fn_decode(&r->mods, r->map, r->nmap, desc);
    if (!inner)
        return false;
    memcpy(arg + off, &inner, sizeof(inner));
    return true;
}

/* One TASK frame @b (@n bytes) for executor @e: checked, then run locally. */
static void run_task(struct cf_mpi_rank *r, int e, unsigned char *b, size_t n)
{
    struct cf_wire_hdr h;
    uint64_t desc;
    int64_t limit;
    const void *arg;
    size_t arg_len;
    if (cf_wire_get_hdr(b, n, &h) != CF_WIRE_OK || h.type != CF_WIRE_TASK ||
        h.len != n - CF_WIRE_HDR ||
        cf_wire_get_task(b + CF_WIRE_HDR, h.len, &desc, &limit, &arg, &arg_len) != 0) {
        fprintf(stderr, "cfutures mpi worker: malformed task frame ignored\n");
        return;
    }
    task_fn fn = r->ok ? cf_mpi_fn_decode(&r->mods, r->map, r->nmap, desc) : NULL;
    if (!fn) {
        refuse(r, e, h.id, r->ok ? FUT_EINVAL : FUT_EBROKEN, 0,
               r->ok ? "the task function is in no module this worker has loaded"
                     : "this worker failed its start-up check");
        return;
    }
    if (!carried_fn_decode(r, fn, (void *)arg, arg_len)) {
        refuse(r, e, h.id, FUT_EINVAL, 0,
               "the continuation's function (future_then) is in no module this worker "
               "has loaded");
        return;
    }
    struct answer_to *to = malloc(sizeof(*to));
    void *node = cf_future_cb_alloc(); /* so that the callback is surely added */
    future_t *f = NULL;
    if (to && node) {
        *to = (struct answer_to){.r = r, .e = e, .id = h.id};
        f = executor_submit_with(r->local, fn, arg_len ? arg : NULL, arg_len,
                                 &(submit_options_t){.timeout = (double)limit / 1e9});
    }
    if (!f) {
        int why = to && node ? -errno : FUT_ENOMEM;
        free(to);
        cf_future_cb_free(node);
        if (why == FUT_EBROKEN) /* for another rank to run: see CF_MPI_NOT_RUN */
            refuse(r, e, h.id, why, CF_MPI_NOT_RUN,
                   "the worker rank's process pool is broken (its fork server is gone, "
                   "or no worker could be started)");
        else
            refuse(r, e, h.id, why, 0, "the worker rank could not queue it");
        return;
    }
    to->f = f;
    to->next = r->inflight; /* in flight until answer_cb */
    to->pprev = &r->inflight;
    if (r->inflight)
        r->inflight->pprev = &to->next;
    r->inflight = to;
    cf_future_add_done_callback_node(f, answer_cb, to, node);
}

/*
 * REVOKE (@stop false): the master wants tasks @b (@n bytes of ids) of
 * executor @e back for an idle rank. Each not started here is cancelled in
 * the local pool (cf_future_revoke: a started one is left alone, not asked
 * to stop), and its done-callback answers FAILED FUT_ECANCELLED, which the
 * master takes as the task given back. CANCEL (@stop): future_cancel was
 * called on them in the master; here too, so a started one is asked to
 * stop. An id no longer in flight was answered already.
 */
static void cancel_ids(struct cf_mpi_rank *r, int e, const unsigned char *b, size_t n,
                       bool stop)
{
    future_t *fs[REVOKE_MAX];
    size_t k = 0; /* gathered first: answer_cb, run by a revoke, edits the list */
    for (size_t off = 0; off + 8 <= n && k < REVOKE_MAX; off += 8) {
        uint64_t id = cf_wire_get_u64(b + off);
        for (struct answer_to *to = r->inflight; to; to = to->next)
            if (to->e == e && to->id == id) {
                if (stop && !to->stop) {
                    to->stop = true; /* stop_started asks it */
                    r->nstop++;
                } else if (!stop) {
                    future_ref(to->f); /* answer_cb unrefs it in the revoke */
                    fs[k++] = to->f;
                }
                break;
            }
    }
    for (size_t i = 0; i < k; i++) {
        cf_future_revoke(fs[i]);
        future_unref(fs[i]);
    }
}

/*
 * Asks each CANCELled task that started here to stop (future_cancel, so
 * task_should_stop turns true in it). One not started yet is left to
 * start: the master's future of it is RUNNING, so it must run (and see
 * that it should stop) rather than end cancelled. Called by each turn
 * while any is waiting.
 */
static void stop_started(struct cf_mpi_rank *r)
{
    future_t *fs[REVOKE_MAX];
    size_t k = 0; /* gathered first: future_cancel may run answer_cb */
    for (struct answer_to *to = r->inflight; to && k < REVOKE_MAX; to = to->next)
        if (to->stop && (future_running(to->f) || future_done(to->f))) {
            to->stop = false;
            r->nstop--;
            future_ref(to->f);
            fs[k++] = to->f;
        }
    for (size_t i = 0; i < k; i++) {
        future_cancel(fs[i]);
        future_unref(fs[i]);
    }
}

/* A message of TASK frames. */
static void run_tasks(struct cf_mpi_rank *r, int e, unsigned char *b, size_t n)
{
    size_t off = 0;
    while (off < n) {
        struct cf_wire_hdr h;
        if (cf_wire_get_hdr(b + off, n - off, &h) != CF_WIRE_OK ||
            h.len > n - off - CF_WIRE_HDR) {
            fprintf(stderr, "cfutures mpi worker: malformed task message ignored\n");
            return;
        }
        run_task(r, e, b + off, CF_WIRE_HDR + (size_t)h.len);
        off += CF_WIRE_HDR + (size_t)h.len;
    }
}

/* Handles one message; false on STOP. */
static bool handle(struct cf_mpi_rank *r, const MPI_Status *st, unsigned char *b, int n)
{
    int e = CF_MPI_TAG_E(st->MPI_TAG);
    switch (CF_MPI_TAG_KIND(st->MPI_TAG)) {
    case CF_MPI_K_TASK:
        run_tasks(r, e, b, (size_t)n);
        return true;
    case CF_MPI_K_REVOKE:
    case CF_MPI_K_CANCEL:
        cancel_ids(r, e, b, (size_t)n, CF_MPI_TAG_KIND(st->MPI_TAG) == CF_MPI_K_CANCEL);
        return true;
    case CF_MPI_K_PING:
        MPI_Send(NULL, 0, MPI_BYTE, r->master, CF_MPI_TAG(e, CF_MPI_K_PONG), r->comm);
        return true;
    case CF_MPI_K_STOP:
        if (e == 0)
            r->teardown = n < 1 || b[0] != 0;
        return e != 0;
    default:
        return true;
    }
}

/* The relay is done (STOP, or MPI failed): tells the waiting main thread. */
static void finish(struct cf_mpi_rank *r)
{
    r->done = true;
    pthread_mutex_lock(&r->mu);
    r->finished = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Receives and handles up to RECV_MAX messages: true if any came. */
static bool receive(struct cf_mpi_rank *r)
{
    for (int i = 0; i < RECV_MAX; i++) {
        int flag = 0, n = 0;
        MPI_Status st;
        if (MPI_Iprobe(r->master, MPI_ANY_TAG, r->comm, &flag, &st) != MPI_SUCCESS) {
            finish(r);
            return i > 0;
        }
        if (!flag)
            return i > 0;
        MPI_Get_count(&st, MPI_BYTE, &n);
        unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
        if (!b || MPI_Recv(b, n, MPI_BYTE, r->master, st.MPI_TAG, r->comm,
                           MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            free(b);
            finish(r);
            return true;
        }
        bool more = handle(r, &st, b, n);
        free(b);
        if (!more) {
            finish(r);
            return true;
        }
    }
    return true;
}

/*
 * Once the local pool is broken: says so on stderr and, a world rank, tells
 * the master (BROKEN, e = 0), so that executors made after leave this rank
 * out even if none sends it a task to refuse first (serve.c takes it). A
 * spawned rank does not: its one executor learns from the refusals, and
 * an unreceived message could hold up the disconnect.
 */
static void say_broken(struct cf_mpi_rank *r)
{
    if (r->broke || !atomic_load(&r->local->broken))
        return;
    r->broke = true;
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    fprintf(stderr,
            "cfutures mpi worker (pid %d on %s): its process pool broke (its fork "
            "server is gone, or no process can be forked): it runs no more tasks\n",
            (int)getpid(), host);
    if (r->world)
        MPI_Send(NULL, 0, MPI_BYTE, r->master, CF_MPI_TAG(0, CF_MPI_K_BROKEN), r->comm);
}

/* One turn, on the local pool's manager (pump.h): how long it may sleep. */
static int64_t relay_turn(void *ud)
{
    struct cf_mpi_rank *r = ud;
    if (r->done)
        return CF_NO_DEADLINE;
    say_broken(r);
    bool busy = cf_mpi_relay_flush(r);
    if (r->nstop)
        stop_started(r);
    busy |= receive(r);
    if (r->done)
        return CF_NO_DEADLINE;
    int64_t now = cf_now_ns();
    if (busy) {
        r->spin_until = now + SPIN_NS;
        r->nap_ns = 1000;
    }
    if (now < r->spin_until)
        return 0;
    int64_t nap = r->nap_ns;
    r->nap_ns = CF_MIN(nap * 2, NAP_MAX_NS);
    return nap;
}

void cf_mpi_relay(struct cf_mpi_rank *r)
{
    r->spin_until = cf_now_ns() + SPIN_NS;
    r->nap_ns = 1000;
    if (cf_pp_set_pump(r->local, relay_turn, r) < 0) {
        /* FUT_EBROKEN: no manager to run on, and no task can run either */
        while (!r->done) {
            int64_t ns = relay_turn(r);
            if (ns == 0)
                sched_yield();
            else if (!r->done)
                cf_mpi_nap(ns);
        }
        return;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->finished)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}
