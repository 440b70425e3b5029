/*
 * relay.c: a worker rank's loop (serve.c starts and ends it): TASKs from
 * the master run in the rank's local process pool, and their answers go
 * back (internal.h has the big picture).
 *
 * DESIGN
 * The main thread receives: a TASK is submitted to the local pool, and the
 * future's done-callback (on the local pool's manager thread) queues the
 * answer for the main thread to send, several in one message. PING is
 * answered at once, whatever the tasks do, so the master can tell a busy
 * rank from a lost one. REVOKE gives back tasks not started, CANCEL asks
 * tasks to stop once they started (cancel_ids, stop_started). STOP ends the
 * loop; the local pool finishes what it holds first.
 *
 * The tasks in flight (submitted, not answered) are on a list under `mu`,
 * for REVOKE and CANCEL: the main thread adds, answer_cb removes.
 *
 * Idling: the loop probes, and after SPIN_NS without a message sleeps,
 * doubling from 1 us to NAP_MAX_NS, so an idle rank costs no core (a
 * blocking MPI receive would spin one).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../process/wire.h"
#include "executor.h"
#include "future.h"
#include "internal.h"
#include "util.h"

#define SPIN_NS (200 * 1000LL)
#define NAP_MAX_NS (1000 * 1000LL)
#define REVOKE_MAX                                                                       \
    64 /* ids in one REVOKE that are looked at: the master sends DEPTH at most */

/* A task in flight: what its answer's done-callback needs. */
struct answer_to {
    struct cf_mpi_rank *r;
    int e;
    uint64_t id;
    future_t *f;                     /* the local future */
    bool stop;                       /* r->mu: CANCEL came, stop_started not yet */
    struct answer_to *next, **pprev; /* r->inflight, under r->mu */
};

/*
 * Queues @n bytes of answer frames @b for executor @e, for the main thread
 * to send; wakes it if it sleeps. Sends them at once from this thread if
 * another executor's answers are queued (MPI_THREAD_MULTIPLE) or no memory.
 */
static void queue_answer(struct cf_mpi_rank *r, int e, const unsigned char *b, size_t n)
{
    pthread_mutex_lock(&r->mu);
    bool queued = (r->out.len == 0 || r->out_e == e) && cf_buf_reserve(&r->out, n);
    if (queued) {
        memcpy(r->out.p + r->out.len, b, n);
        r->out.len += n;
        r->out_e = e;
        if (r->sleeping)
            pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    if (!queued)
        MPI_Send(b, (int)n, MPI_BYTE, r->master, CF_MPI_TAG(e, CF_MPI_K_ANSWER), r->comm);
}

/* Sends what queue_answer queued (the main thread). */
void cf_mpi_relay_flush(struct cf_mpi_rank *r, struct cf_buf *spare)
{
    pthread_mutex_lock(&r->mu);
    struct cf_buf full = r->out;
    int e = r->out_e;
    if (full.len)
        r->out = *spare;
    pthread_mutex_unlock(&r->mu);
    if (!full.len)
        return;
    MPI_Send(full.p, (int)full.len, MPI_BYTE, r->master, CF_MPI_TAG(e, CF_MPI_K_ANSWER),
             r->comm);
    full.len = full.off = 0;
    *spare = full;
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
    if (!b)
        return; /* the master's heartbeat cannot see this: the task stays unanswered */
    if (rc == 0) {
        cf_wire_put_hdr(b, CF_WIRE_RESULT, to->id, len);
        if (len)
            memcpy(b + CF_WIRE_HDR, data, len);
    } else {
        cf_wire_put_hdr(b, CF_WIRE_FAILED, to->id, len);
        cf_wire_put_failed(b + CF_WIRE_HDR, err ? err->status : rc, err ? err->code : 0,
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
    pthread_mutex_lock(&r->mu); /* out of the tasks in flight */
    r->nstop -= to->stop;
    *to->pprev = to->next;
    if (to->next)
        to->next->pprev = to->pprev;
    pthread_mutex_unlock(&r->mu);
    send_answer(to, f);
    free(to);
    future_unref(f);
}

/* Answers task @id at once with a failure @status and @msg (never ran). */
static void refuse(struct cf_mpi_rank *r, int e, uint64_t id, int status, const char *msg)
{
    size_t mlen = strlen(msg);
    unsigned char b[CF_WIRE_HDR + CF_WIRE_FAILED_FIXED + 256];
    mlen = mlen > 256 ? 256 : mlen;
    cf_wire_put_hdr(b, CF_WIRE_FAILED, id, CF_WIRE_FAILED_FIXED + mlen);
    cf_wire_put_failed(b + CF_WIRE_HDR, status, 0, -1, 0);
    memcpy(b + CF_WIRE_HDR + CF_WIRE_FAILED_FIXED, msg, mlen);
    queue_answer(r, e, b, CF_WIRE_HDR + CF_WIRE_FAILED_FIXED + mlen);
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
        refuse(r, e, h.id, r->ok ? FUT_EINVAL : FUT_EBROKEN,
               r->ok ? "the task function is in no module this worker has loaded"
                     : "this worker failed its start-up check");
        return;
    }
    if (!carried_fn_decode(r, fn, (void *)arg, arg_len)) {
        refuse(r, e, h.id, FUT_EINVAL,
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
        refuse(r, e, h.id, why, "the worker rank could not queue it");
        return;
    }
    to->f = f;
    pthread_mutex_lock(&r->mu); /* in flight until answer_cb */
    to->next = r->inflight;
    to->pprev = &r->inflight;
    if (r->inflight)
        r->inflight->pprev = &to->next;
    r->inflight = to;
    pthread_mutex_unlock(&r->mu);
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
    size_t k = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t off = 0; off + 8 <= n && k < REVOKE_MAX; off += 8) {
        uint64_t id = cf_wire_get_u64(b + off);
        for (struct answer_to *to = r->inflight; to; to = to->next)
            if (to->e == e && to->id == id) {
                if (stop && !to->stop) {
                    to->stop = true; /* stop_started asks it */
                    r->nstop++;
                } else if (!stop) {
                    future_ref(to->f); /* answer_cb may run as soon as we unlock */
                    fs[k++] = to->f;
                }
                break;
            }
    }
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < k; i++) {
        cf_future_revoke(fs[i]);
        future_unref(fs[i]);
    }
}

/*
 * Asks each CANCELled task that started here to stop (future_cancel, so
 * task_should_stop turns true in it). One not started yet is left to
 * start: the master's future of it is RUNNING, so it must run (and see
 * that it should stop) rather than end cancelled. Called by the relay loop
 * while any is waiting.
 */
static void stop_started(struct cf_mpi_rank *r)
{
    future_t *fs[REVOKE_MAX];
    size_t k = 0;
    pthread_mutex_lock(&r->mu);
    for (struct answer_to *to = r->inflight; to && k < REVOKE_MAX; to = to->next)
        if (to->stop && (future_running(to->f) || future_done(to->f))) {
            to->stop = false;
            r->nstop--;
            future_ref(to->f);
            fs[k++] = to->f;
        }
    pthread_mutex_unlock(&r->mu);
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

/* Sleeps up to @ns, or until an answer is queued. */
static void idle(struct cf_mpi_rank *r, int64_t ns)
{
    pthread_mutex_lock(&r->mu);
    if (r->out.len == 0) {
        struct timespec ts;
        cf_ns_to_timespec(cf_now_ns() + ns, &ts);
        r->sleeping = true;
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        r->sleeping = false;
    }
    pthread_mutex_unlock(&r->mu);
}

/* The worker loop: until STOP or the master is unreachable. */
void cf_mpi_relay(struct cf_mpi_rank *r, struct cf_buf *spare)
{
    int64_t spin_until = cf_now_ns() + SPIN_NS, sleep_ns = 1000;
    for (;;) {
        int flag = 0, n = 0;
        MPI_Status st;
        cf_mpi_relay_flush(r, spare);
        if (atomic_load_explicit(&r->nstop, memory_order_relaxed))
            stop_started(r);
        if (MPI_Iprobe(r->master, MPI_ANY_TAG, r->comm, &flag, &st) != MPI_SUCCESS)
            return;
        if (!flag) {
            if (cf_now_ns() < spin_until) {
                sched_yield();
            } else {
                idle(r, sleep_ns);
                sleep_ns = sleep_ns * 2 > NAP_MAX_NS ? NAP_MAX_NS : sleep_ns * 2;
            }
            continue;
        }
        MPI_Get_count(&st, MPI_BYTE, &n);
        unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
        if (!b || MPI_Recv(b, n, MPI_BYTE, r->master, st.MPI_TAG, r->comm,
                           MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            free(b);
            return;
        }
        bool more = handle(r, &st, b, n);
        free(b);
        if (!more)
            return;
        spin_until = cf_now_ns() + SPIN_NS;
        sleep_ns = 1000;
    }
}
