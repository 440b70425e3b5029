/*
 * balance.c: how many tasks the MPI pool's master sends a rank ahead (its
 * window), and a rank giving back tasks it has not started, so that no
 * rank runs out of work while another holds tasks (pool.c's manager thread
 * calls all of these).
 *
 * DESIGN
 * The window: a rank gets tasks beyond one per worker of its local pool,
 * at least AHEAD_MIN, more when that few would not last COVER_NS at its
 * pace (the time per answer while it had tasks out, averaged), at most
 * DEPTH in all. Tiny tasks so fill DEPTH; longer ones keep a few queued,
 * which covers the round trip of an answer and the next task: on a
 * machine where the ranks share the cores with the tasks, each hop waits
 * for a core, 1-5 ms. With no window (DEPTH each) W4's 64 tasks of
 * 0.1-110 ms went 32 to each rank, and one rank finished 0.2 s before the
 * other.
 *
 * Giving back: a long task can still hold tasks behind it. Once nothing
 * is left to send and a rank has a local worker free, the rank with the
 * most tasks beyond its workers is asked for the younger half of them
 * (REVOKE) if it was silent for STUCK_NS or those tasks would take longer
 * than that at its pace. It cancels those its local pool has not started
 * (cf_future_revoke: a started one runs on, not asked to stop) and answers
 * each FAILED FUT_ECANCELLED; such an answer to a revoked cell puts the
 * task on the pool's `back` list, sent again before anything submitted.
 * One REVOKE at a time: none while an earlier one's cells are out, for up
 * to ASK_WAIT_NS (a task the rank had started meanwhile stays there, and
 * its cell stays marked until it is answered). A rank's load is counted
 * beyond its own workers, for sending too, so a rank of 8 processes and
 * one of 1 are filled alike.
 *
 * CFUTURES_MPI_AHEAD=N fixes the tasks ahead at N; 0 sends a rank only as
 * many tasks as it has local workers (as mpi4py.futures does), so a task
 * waits at the master, pending and cancellable, until a worker is free.
 *
 * W4 on 2 worker ranks, 2 cores (10 alternating runs each): 1.45 with no
 * window; 1.75 with a window of COVER_NS = 1 ms and giving back; 1.82 as
 * here; 1.60 giving back with no window.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../process/wire.h"
#include "master.h"

#define COVER_NS (5 * 1000000LL)     /* how long a rank's tasks ahead should last */
#define AHEAD_MIN 4                  /* tasks ahead of a rank's workers, at least */
#define STUCK_NS (1000 * 1000LL)     /* a rank that long silent may give back */
#define ASK_WAIT_NS (50 * 1000000LL) /* the next REVOKE, if one's cells are still out */

/* Rank @r's tasks beyond its local workers (negative: that many idle). */
static int beyond(const struct mp_rank *r)
{
    return r->n - r->nrevoked - r->peer->procs;
}

/* The least loaded live rank with room in its window, or -1. */
int cf_mp_pick(struct mpi_pool *p)
{
    int best = -1;
    for (int i = 0; i < p->nranks; i++) {
        const struct mp_rank *r = &p->ranks[i];
        if (cf_mp_usable(r) && r->n < r->win &&
            (best < 0 || beyond(r) < beyond(&p->ranks[best])))
            best = i;
    }
    return best;
}

/* Rank @r's window, from its pace. */
void cf_mp_set_window(struct mp_rank *r)
{
    int64_t ahead = r->ahead >= 0 ? r->ahead
                    : r->pace > 0 ? CF_MAX(COVER_NS / r->pace + 1, AHEAD_MIN)
                                  : AHEAD_MIN;
    r->win = (int)CF_MIN((int64_t)r->peer->procs + ahead, DEPTH);
}

/* @k answers came from rank @r at @now: its pace and window follow. */
void cf_mp_paced(struct mp_rank *r, int k, int64_t now)
{
    int64_t each = CF_MAX((now - r->mark) / k, 1);
    r->pace = r->pace ? r->pace + (each - r->pace) / 4 : each;
    r->mark = now;
    cf_mp_set_window(r);
}

/*
 * Sends rank @ri a REVOKE or CANCEL of @n ids (@b). Small, but not sent
 * blocking: a rank that died holding tasks is silent, so it is the one
 * asked to give them back, and a send to it never completes (cf_mp_send).
 */
static void send_ids(struct mpi_pool *p, int ri, int kind, const unsigned char *b, int n)
{
    if (!n || p->ranks[ri].lost)
        return;
    unsigned char *copy = malloc((size_t)n * 8); /* MPI's if the rank is lost meanwhile */
    if (!copy)
        return; /* advice only: the tasks run there, not asked to stop or given back */
    memcpy(copy, b, (size_t)n * 8);
    if (cf_mp_send(p, ri, copy, 8 * n, kind))
        free(copy);
}

/*
 * future_cancel on a sent task (pool.c's request_stop set its stop_req):
 * its rank is told (CANCEL), and asks the task to stop (task_should_stop)
 * once it started there (relay.c).
 */
void cf_mp_forward_stops(struct mpi_pool *p)
{
    if (!atomic_exchange(&p->stops, false))
        return;
    for (int i = 0; i < p->nranks; i++) {
        struct mp_rank *r = &p->ranks[i];
        unsigned char b[DEPTH * 8];
        int got = 0;
        for (int c = 0; c < DEPTH && !r->lost; c++) {
            struct mp_work *w = r->cell[c];
            if (w && !w->stop_sent && atomic_load(&w->stop_req)) {
                w->stop_sent = true;
                cf_wire_put_u64(b + 8 * got++, cf_mp_cell_id(i, c, r->gen[c]));
            }
        }
        send_ids(p, i, CF_MPI_K_CANCEL, b, got);
    }
}

/* Asks rank @ri for its @k youngest tasks not asked for yet, oldest first. */
static void ask_back(struct mpi_pool *p, int ri, int k)
{
    struct mp_rank *r = &p->ranks[ri];
    unsigned char b[DEPTH * 8];
    int cells[DEPTH], got = 0;
    while (got < k) {
        int y = -1;
        for (int c = 0; c < DEPTH; c++)
            if (r->cell[c] && !r->revoked[c] && !atomic_load(&r->cell[c]->stop_req) &&
                (y < 0 || r->seq[c] > r->seq[y]))
                y = c; /* a cancelled one only runs to stop: not worth moving */
        if (y < 0)
            break;
        r->revoked[y] = true;
        r->nrevoked++;
        cells[got++] = y;
    }
    for (int j = 0; j < got; j++) {
        int c = cells[got - 1 - j];
        cf_wire_put_u64(b + 8 * j, cf_mp_cell_id(ri, c, r->gen[c]));
    }
    send_ids(p, ri, CF_MPI_K_REVOKE, b, got);
}

/* True while an earlier REVOKE's cells are out, for at most ASK_WAIT_NS. */
static bool asking(const struct mpi_pool *p, int64_t now)
{
    if (now - p->asked_at > ASK_WAIT_NS)
        return false; /* a rank that started a task it was asked for keeps it */
    for (int i = 0; i < p->nranks; i++)
        if (!p->ranks[i].lost && p->ranks[i].nrevoked)
            return true;
    return false;
}

/* Giving back (DESIGN): a hungry rank, one silent with tasks to spare. */
void cf_mp_rebalance(struct mpi_pool *p, int64_t now)
{
    int hungry = -1, most = -1, excess = 0;
    if (asking(p, now))
        return;
    for (int i = 0; i < p->nranks; i++) {
        const struct mp_rank *r = &p->ranks[i];
        if (r->lost)
            continue;
        int extra = beyond(r);
        if (extra < 0 && !r->broken)
            hungry = i;
        else if (extra > excess &&
                 (now - r->mark > STUCK_NS || extra * r->pace > STUCK_NS))
            excess = extra, most = i;
    }
    if (hungry < 0 || most < 0 || cf_mp_has_work(p)) /* that goes to the hungry rank */
        return;
    p->asked_at = now;
    ask_back(p, most, (excess + 1) / 2);
}
