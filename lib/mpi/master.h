/*
 * master.h: the MPI pool master's structs, shared by pool.c (the executor
 * and its manager thread), answers.c (what comes back) and balance.c (how
 * many tasks a rank gets ahead, and giving them back). Everything here is
 * the manager thread's unless a comment says `mu`.
 */
#ifndef CF_MPI_MASTER_H
#define CF_MPI_MASTER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "executor.h"
#include "internal.h"
#include "util.h"

#define DEPTH 64 /* tasks out per rank, at most */

struct mp_work {
    struct cf_work base;
    void *arg; /* our copy */
    uint64_t desc;
    _Atomic bool stop_req; /* future_cancel while it ran (mp_request_stop) */
    bool stop_sent;        /* manager: CANCEL sent for it */
};

struct mp_rank {
    struct cf_mpi_peer *peer; /* in mpi_pool.peers */
    bool lost;
    bool broken;  /* its local pool broke (CF_MPI_NOT_RUN): it gets no more tasks */
    int n;        /* tasks out */
    int win;      /* tasks out at most (balance.c), at most DEPTH */
    int ahead;    /* CFUTURES_MPI_AHEAD: fixed tasks ahead; -1: by pace */
    int64_t pace; /* ns per answer while it had tasks out (average); 0: none yet */
    int64_t mark; /* the last answer, or the first task sent after none was out */
    uint64_t seq[DEPTH]; /* when each cell's task was sent (the pool's count) */
    bool revoked[DEPTH]; /* REVOKE asked for it: a cancelled answer gives it back */
    int nrevoked;
    struct mp_work *cell[DEPTH];
    uint32_t gen[DEPTH];
    int64_t heard, pinged; /* the last message from it, the last PING to it */
    int64_t asked;         /* the first PING since heard, or 0 */
    struct cf_buf out;     /* TASK frames not sent yet (manager) */
    bool counted, idle;    /* in executor_stats' workers, idle (cf_mp_count) */
};

struct mpi_pool {
    struct executor base;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct cf_work_fifo sub;  /* mu */
    struct cf_work_fifo back; /* manager: given back by a rank, running: sent first */
    uint64_t sends;           /* manager: tasks sent */
    int64_t asked_at;         /* manager: the last REVOKE (balance.c) */
    bool stopping, sleeping;  /* mu */
    pthread_t manager;
    int e;      /* the tag's executor number */
    bool spawn; /* the ranks are ours (spawned), not the world's */
    int nranks;
    struct mp_rank *ranks;
    struct cf_mpi_peer *peers; /* nranks: spawned, or a copy of the world's */
    bool *lost;                /* nranks: for cf_mpi_release */
    int64_t hb_limit, ping_ns; /* the heartbeat limit; PING a rank silent this long */
    bool any_lost;             /* manager */
    bool dispatching;   /* manager: in cf_mp_dispatch (answers refill only outside it) */
    _Atomic bool stops; /* some sent task's stop_req is new (balance.c sends CANCEL) */
    _Atomic size_t nworkers, nidle;
};

/* The id of cell @c of rank @ri in generation @gen, as on the wire. */
static inline uint64_t cf_mp_cell_id(int ri, int c, uint32_t gen)
{
    return ((uint64_t)gen << 32) | (uint64_t)(ri * DEPTH + c);
}

/* A rank tasks may be sent to: not lost, its local pool not broken. */
static inline bool cf_mp_usable(const struct mp_rank *r)
{
    return !r->lost && !r->broken;
}

/* pool.c: executor_stats' counts follow rank @r's state (after each change). */
void cf_mp_count(struct mpi_pool *p, struct mp_rank *r);
/* pool.c: marks rank @ri lost and fails its tasks FUT_EWORKER with @why. */
void cf_mp_lose_rank(struct mpi_pool *p, int ri, const char *why);
/*
 * pool.c: sends @n bytes @b to rank @ri as @kind, receiving and judging the
 * heartbeat meanwhile. False if the rank was lost first: @b is MPI's then.
 */
bool cf_mp_send(struct mpi_pool *p, int ri, const void *b, int n, int kind);
/* pool.c: sends queued tasks while a rank has room. True if any. */
bool cf_mp_dispatch(struct mpi_pool *p);
/* pool.c: true if a task waits to be sent (given back, or submitted). */
bool cf_mp_has_work(struct mpi_pool *p);
/* pool.c: takes cell @c of rank @ri back; returns its work item. */
struct mp_work *cf_mp_cell_take(struct mpi_pool *p, int ri, int c);
/* pool.c: the executor is done with @cw: frees its copy, drops its future. */
void cf_mp_work_drop(struct cf_work *cw);

/* answers.c: a message of answer frames @b (@n bytes) from rank @ri, come at @now. */
void cf_mp_on_answers(struct mpi_pool *p, int ri, const unsigned char *b, size_t n,
                      int64_t now);

/* balance.c */
int cf_mp_pick(struct mpi_pool *p);                      /* a rank with room, or -1 */
void cf_mp_set_window(struct mp_rank *r);                /* from its pace */
void cf_mp_paced(struct mp_rank *r, int k, int64_t now); /* @k answers came at @now */
void cf_mp_rebalance(struct mpi_pool *p, int64_t now);   /* give back, if it helps */
void cf_mp_forward_stops(struct mpi_pool *p);            /* CANCEL, for stop_req */

#endif /* CF_MPI_MASTER_H */
