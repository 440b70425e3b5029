/*
 * answers.c: the MPI pool master's side of answers (pool.c's manager
 * thread calls cf_mp_on_answers for each message of them): each task's
 * cell freed, the task given back or its future completed, after the
 * ranks got their next tasks (cf_mp_on_answers says when).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "../process/wire.h"
#include "blocks.h"
#include "executor.h"
#include "future.h"
#include "master.h"

/* Completes a FAILED answer for @w. */
static void complete_failed(struct mpi_pool *p, struct mp_work *w,
                            const unsigned char *pl, uint64_t len)
{
    int32_t st[4];
    const char *m;
    size_t ml;
    char msg[CF_WIRE_MAX_MSG + 1];
    if (cf_wire_get_failed(pl, len, st, &m, &ml) != CF_WIRE_OK) {
        st[0] = FUT_EWORKER, st[1] = 0, st[2] = -1, st[3] = 0;
        m = "a malformed answer from the MPI worker";
        ml = strlen(m);
    }
    memcpy(msg, m, ml);
    msg[ml] = '\0';
    int status = st[0] < 0 ? st[0] : FUT_EWORKER;
    if (status == FUT_EBROKEN && st[1] == CF_MPI_NOT_RUN)
        st[1] = 0; /* no rank was left to run it (on_answer): ours, not the user's */
    cf_executor_finished(&p->base, true);
    cf_future_fail(cf_work_future(&w->base), status, st[1], st[2], st[3], msg);
}

/* A FAILED payload's status and code, or false if it is malformed. */
static bool failed_as(const unsigned char *pl, uint64_t len, int32_t status, int32_t code)
{
    int32_t st[4];
    const char *m;
    size_t ml;
    return cf_wire_get_failed(pl, len, st, &m, &ml) == CF_WIRE_OK && st[0] == status &&
           (status == FUT_ECANCELLED || st[1] == code);
}

/* True if a rank is left that tasks may be sent to. */
static bool any_usable(const struct mpi_pool *p)
{
    for (int i = 0; i < p->nranks; i++)
        if (cf_mp_usable(&p->ranks[i]))
            return true;
    return false;
}

/* An answer taken out of its cell, to complete once the refills went out. */
struct settled {
    struct mp_work *w;
    const unsigned char *pl; /* its payload, in the message */
    struct cf_wire_hdr h;
};

/*
 * One answer frame @b (@n bytes) from rank @ri: its cell is freed and @s
 * filled. False if it completes nothing: it gave a task back (now on the
 * `back` list) or was malformed (the rank is lost). A task refused unrun by
 * a rank whose local pool broke (CF_MPI_NOT_RUN) is given back too, and
 * that rank gets no more, from this executor nor (world mode) a later one;
 * with no other rank to run it, it fails FUT_EBROKEN (and pool.c breaks
 * the pool).
 */
static bool on_answer(struct mpi_pool *p, int ri, const unsigned char *b, size_t n,
                      struct settled *s)
{
    struct cf_wire_hdr h;
    int rc = cf_wire_get_hdr(b, n, &h);
    uint32_t slot = (uint32_t)(h.id & 0xffffffffu), gen = (uint32_t)(h.id >> 32);
    int c = (int)(slot % DEPTH);
    struct mp_rank *r = &p->ranks[ri];
    if (rc != CF_WIRE_OK || h.len != n - CF_WIRE_HDR ||
        (h.type != CF_WIRE_RESULT && h.type != CF_WIRE_FAILED) ||
        slot / DEPTH != (uint32_t)ri || !r->cell[c] || r->gen[c] != gen) {
        cf_mp_lose_rank(p, ri, "it sent a malformed or unexpected answer");
        return false;
    }
    const unsigned char *pl = b + CF_WIRE_HDR;
    bool back = false;
    if (h.type == CF_WIRE_FAILED && failed_as(pl, h.len, FUT_EBROKEN, CF_MPI_NOT_RUN)) {
        r->broken = true;
        if (!p->spawn) /* nor will later executors (a world rank: cf_mpi_world_peers) */
            cf_mpi_world_lose(r->peer->dest);
        cf_mp_count(p, r);
        back = any_usable(p);
    } else if (r->revoked[c] && h.type == CF_WIRE_FAILED) {
        back = failed_as(pl, h.len, FUT_ECANCELLED, 0);
    }
    if (back) {
        cf_fifo_push(&p->back, &cf_mp_cell_take(p, ri, c)->base);
        return false;
    }
    *s = (struct settled){.w = cf_mp_cell_take(p, ri, c), .pl = pl, .h = h};
    return true;
}

/* Completes @s's future with its answer. */
static void complete(struct mpi_pool *p, const struct settled *s)
{
    future_t *f = cf_work_future(&s->w->base);
    if (s->h.type == CF_WIRE_FAILED) {
        complete_failed(p, s->w, s->pl, s->h.len);
    } else if (s->h.len <= CF_INLINE_MAX) {
        cf_executor_finished(&p->base, false);
        cf_future_set_result_inline(f, s->pl, (size_t)s->h.len);
    } else {
        void *copy = cf_block_dup(s->pl, (size_t)s->h.len);
        cf_executor_finished(&p->base, !copy);
        if (copy) {
            cf_future_set_result(f, copy, (size_t)s->h.len, cf_block_free);
        } else {
            cf_future_fail(f, FUT_ENOMEM, 0, -1, 0, "no memory for the result");
        }
    }
    cf_mp_work_drop(&s->w->base);
}

/*
 * A message of answer frames @b (@n bytes) from rank @ri, come at @now.
 * With tasks sent ahead, the ranks get their next tasks (cf_mp_dispatch)
 * before any of these futures completes: a thread woken by a completion
 * may take this CPU, and the refill would wait for it (W4: up to 2.9 ms
 * with the tasks on both cores). Not so for answers that come while a
 * dispatch waits for a large send: that dispatch refills once it is done. With none
 * ahead (CFUTURES_MPI_AHEAD=0) a task stays pending until the answers
 * before it completed, as in a thread pool (a done-callback may still
 * cancel it).
 */
void cf_mp_on_answers(struct mpi_pool *p, int ri, const unsigned char *b, size_t n,
                      int64_t now)
{
    struct settled s[DEPTH]; /* a rank has DEPTH cells: a message answers as many */
    size_t off = 0;
    int k = 0;
    while (off < n && !p->ranks[ri].lost) {
        struct cf_wire_hdr h;
        if (cf_wire_get_hdr(b + off, n - off, &h) != CF_WIRE_OK ||
            h.len > n - off - CF_WIRE_HDR)
            break;
        if (k == DEPTH) /* more answers than cells: the one past is malformed */
            complete(p, &s[--k]);
        k += on_answer(p, ri, b + off, CF_WIRE_HDR + (size_t)h.len, &s[k]);
        off += CF_WIRE_HDR + (size_t)h.len;
    }
    if (off != n && !p->ranks[ri].lost)
        cf_mp_lose_rank(p, ri, "it sent a malformed message");
    else if (k)
        cf_mp_paced(&p->ranks[ri], k, now);
    if (k && p->ranks[ri].ahead != 0 && !p->dispatching && cf_mp_has_work(p))
        cf_mp_dispatch(p);
    for (int i = 0; i < k; i++)
        complete(p, &s[i]);
}
