/*
 * internal.h: the MPI pool's pieces, shared by the files of lib/mpi/ only.
 * Built only with ./configure --with-mpi.
 *
 * DESIGN
 * A master process (rank 0 of `mpiexec -n N ./prog`, or a program started
 * on its own that spawns N copies of itself) sends tasks to worker ranks;
 * every worker rank is a relay: it owns a process pool (lib/process/, made
 * in mpi_pool_serve before MPI_Init, so its fork server never inherits MPI
 * state) and runs each task in a forked child there. A crashing task costs
 * that task (FUT_EWORKER from the local pool), never the rank.
 *
 *   taskid.c  naming a task_fn across processes: module build-id + offset
 *   serve.c   mpi_pool_serve: start-up of both modes, the handshake, the
 *             master's exit handler
 *   relay.c   the worker rank's relay, on its local pool's manager thread:
 *             tasks to that pool, answers back
 *   pool.c    mpi_pool_executor_new: the master's executor and its manager
 *             thread (all of its MPI calls), heartbeat, shutdown
 *   answers.c the master's side of answers (master.h: the master's
 *             structs, shared by pool.c, answers.c and balance.c)
 *   balance.c how many tasks a rank gets ahead, and giving them back
 *   spawn.c   spawn mode's ranks: spawning them (bounded, retried) and
 *             ending them (bounded, then SIGKILL)
 *
 * Messages: on a private communicator (a dup of MPI_COMM_WORLD in world
 * mode, one spawn intercommunicator per worker in spawn mode), as MPI_BYTE.
 * The tag says the executor (several may share the world ranks) and the
 * kind: TAG(e, kind). Tasks and answers are wire.c frames (TASK; RESULT or
 * FAILED); HELLO, PING, PONG, STOP, BYE and BROKEN are small fixed messages
 * on e = 0 (HELLO, STOP, BYE, BROKEN) or the executor's own e (PING, PONG);
 * REVOKE is a list of task ids (cf_wire_put_u64 each) on the executor's e.
 *
 * Threads: a worker rank's local pool's manager thread receives and sends
 * (relay.c); its main thread makes the MPI calls before and after that, so
 * a rank's calls never overlap, but the rank asks for MPI_THREAD_MULTIPLE
 * as the master does (the same program; several executors' manager
 * threads there). In the
 * master each executor's manager thread makes that executor's MPI calls;
 * the handshake and the exit handler run before and after them.
 */
#ifndef CF_MPI_INTERNAL_H
#define CF_MPI_INTERNAL_H

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cfutures.h>

#include "util.h"

#define CF_MPI_MARKER "--cfutures-mpi-worker" /* spawn.c adds =token: master pid.n */
#define CF_MPI_MAX_MODULES 64
#define CF_MPI_BUILD_ID_MAX 32
/* A descriptor: module index << CF_MPI_OFF_BITS | offset. */
#define CF_MPI_OFF_BITS 48
#define CF_MPI_TAG(e, kind) ((e)*16 + (kind))
#define CF_MPI_TAG_E(tag) ((tag) / 16)
#define CF_MPI_TAG_KIND(tag) ((tag) % 16)
#define CF_MPI_MAX_E 2000 /* executors at once in one world (tags stay under 32767) */

enum cf_mpi_kind {
    CF_MPI_K_TASK = 0,   /* master -> rank: a TASK frame */
    CF_MPI_K_ANSWER = 1, /* rank -> master: a RESULT or FAILED frame */
    CF_MPI_K_PING = 2,   /* master -> rank: are you there (empty) */
    CF_MPI_K_PONG = 3,   /* rank -> master: yes (empty) */
    CF_MPI_K_STOP = 4,   /* master -> rank, e = 0: finish and leave (1 byte: teardown) */
    CF_MPI_K_HELLO = 5,  /* both ways, e = 0: the module tables, then the verdict */
    CF_MPI_K_BYE = 6,    /* spawned rank -> master, e = 0: stopped, disconnecting now */
    CF_MPI_K_REVOKE =
        7, /* master -> rank: give these tasks back if not started (u64 ids) */
    CF_MPI_K_CANCEL = 8, /* master -> rank: future_cancel these tasks there (u64 ids) */
    CF_MPI_K_BROKEN = 9, /* world rank -> master, e = 0: my local pool broke (empty) */
};

/*
 * The `code` of a FAILED answer with status FUT_EBROKEN that a rank whose
 * local process pool broke sends for a task it never ran (relay.c): the
 * master sends the task to another rank and no more to this one
 * (answers.c), nor, in world mode, does any executor made after. It never
 * reaches a future (the code is then 0).
 */
#define CF_MPI_NOT_RUN 0x4e52 /* "NR" */
/* A task's result a worker rank sends back, at most (an MPI count is an int;
   half of INT32_MAX leaves the answer's header room): larger fails FUT_ETASK, E2BIG. */
#define CF_MPI_RESULT_MAX ((size_t)INT32_MAX / 2)

/* Seconds a spawned worker gets for MPI_Init and the handshake (then it exits). */
#define CF_MPI_START_LIMIT 150

/* One loaded ELF module with a GNU build-id. */
struct cf_mpi_module {
    uintptr_t base; /* dlpi_addr */
    uintptr_t span; /* the highest p_vaddr + p_memsz of its PT_LOADs */
    uint8_t id_len;
    unsigned char id[CF_MPI_BUILD_ID_MAX];
    char name[48]; /* for messages: its file name, "" for the executable */
};

/* The modules of this process, the executable first. */
struct cf_mpi_modtab {
    int n;
    struct cf_mpi_module m[CF_MPI_MAX_MODULES];
};

/* The bytes of an encoded table: u32 n, then n * (u8 len, 32 id bytes). */
#define CF_MPI_MODTAB_BYTES(n) (4 + (size_t)(n) * (1 + CF_MPI_BUILD_ID_MAX))

/* taskid.c */
void cf_mpi_modtab_load(struct cf_mpi_modtab *t);
int cf_mpi_fn_encode(const struct cf_mpi_modtab *t, task_fn fn, uint64_t *desc);
size_t cf_mpi_modtab_encode(const struct cf_mpi_modtab *t, unsigned char *out);
int cf_mpi_modtab_match(const struct cf_mpi_modtab *local, const unsigned char *buf,
                        size_t len, int *map, int *nmap, char *why, size_t why_len);
task_fn cf_mpi_fn_decode(const struct cf_mpi_modtab *local, const int *map, int nmap,
                         uint64_t desc);
void cf_mpi_hex(const unsigned char *id, size_t len, char *out, size_t out_len);

/* A worker rank as the master knows it (from the handshake). */
struct cf_mpi_peer {
    MPI_Comm comm; /* the world dup, or its own spawn intercommunicator */
    int dest;      /* its rank in comm (remote rank in an intercommunicator) */
    int pid;
    int procs; /* its local pool's workers (CFUTURES_MPI_PROCS there), from HELLO */
    char host[64];
    unsigned long long start; /* spawn mode, this host: pid's start time
                                 (/proc/PID/stat), so a reused pid is told apart; 0 */
};

/* The HELLO a worker rank answers with. */
struct cf_mpi_hello {
    int32_t status; /* 0, or a FUT_E* code: then why says what */
    int32_t pid;
    int32_t procs; /* the rank's local pool size */
    char host[64];
    char why[256];
};

/* A worker rank's state (serve.c makes it, relay.c serves with it). */
struct cf_mpi_rank {
    executor_t *local;
    int procs; /* its processes (CFUTURES_MPI_PROCS, read once) */
    MPI_Comm comm;
    int master;
    bool ok;       /* the handshake passed */
    bool mpi_up;   /* MPI_Init_thread succeeded, or the caller had initialized MPI */
    bool we_init;  /* we initialized MPI (else the caller finalizes it) */
    bool serving;  /* MPI is up and the master answered: serve until STOP */
    bool teardown; /* STOP said: disconnect and finalize (no rank was lost) */
    bool world;    /* a world rank (else spawned) */
    bool broke;    /* its local pool broke: said on stderr (world: BROKEN sent) */
    struct cf_mpi_modtab mods;
    int map[CF_MPI_MAX_MODULES];
    int nmap;
    /* the relay (relay.c): on the local pool's manager, then the main thread */
    struct cf_buf out; /* RESULT/FAILED frames, all for executor out_e */
    int out_e;
    struct answer_to *inflight; /* tasks submitted and not answered */
    int nstop;                  /* in flight, CANCELled, not asked to stop yet */
    int64_t spin_until, nap_ns; /* idling */
    bool done;                  /* STOP came, or MPI failed */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the main thread waits for finished */
    bool finished;     /* mu: done, as the main thread sees it */
};

/*
 * relay.c: serves TASKs, on the local pool's manager thread (else, if that
 * pool's manager left, on this one), until STOP or the master is
 * unreachable.
 */
void cf_mpi_relay(struct cf_mpi_rank *r);
/* Sends the queued answers now: true if there were any. */
bool cf_mpi_relay_flush(struct cf_mpi_rank *r);

/* serve.c: the master's view of how this process started. */
bool cf_mpi_world_mode(void);
/*
 * The world's ranks but 0 that no executor lost and whose local pool did
 * not break, copied to @out (up to @max; @out may be NULL); returns how
 * many there are. A rank lost once (silent past the heartbeat limit, say),
 * or whose local pool broke (it refused a task CF_MPI_NOT_RUN, or said so
 * with BROKEN, taken in here), is left out of every later executor.
 */
int cf_mpi_world_peers(struct cf_mpi_peer *out, int max);
/* World rank @dest was lost, or its local pool broke: later executors leave it out. */
void cf_mpi_world_lose(int dest);
/* mpi_pool_serve ran, master side (else says so on stderr if it was never called) */
bool cf_mpi_ready(void);
/*
 * The master's MPI, started at the first pool of a program started alone
 * (serve.c, serve_master), at once otherwise: 0, or FUT_ESYS (said on
 * stderr), the same every call after.
 */
int cf_mpi_start(void);
const struct cf_mpi_modtab *cf_mpi_modules(void);
char *const *cf_mpi_saved_argv(void);
void cf_mpi_note_loss(void); /* a rank was lost: skip MPI teardown at exit */
bool cf_mpi_lost(void);      /* cf_mpi_note_loss was called */
void cf_mpi_nap(int64_t ns); /* sleeps about @ns (nanosleep) */
/*
 * The environment's @name as a whole number in [@lo, @hi], or as seconds
 * from @lo to 86400; @dflt when unset, empty, or not that (then said on
 * stderr).
 */
int cf_mpi_env_int(const char *name, long lo, long hi, int dflt);
double cf_mpi_env_secs(const char *name, double lo, double dflt);
int cf_mpi_handshake(struct cf_mpi_peer *peer, double limit, char *why, size_t why_len);
void cf_mpi_send_stop(const struct cf_mpi_peer *peer, bool teardown, bool wait);
int cf_mpi_next_e(void);
void cf_mpi_release_e(int e);

/*
 * spawn.c: spawns @n workers into @peers, one job each. 0, or a code (then
 * none is left: those that started were ended).
 */
int cf_mpi_spawn(struct cf_mpi_peer *peers, int n);
/*
 * Ends spawned workers @peers[0..n): STOP to each not @lost, BYE awaited and
 * disconnected (only if not @any_lost), then every rank of this host waited
 * for and, past the limit, SIGKILLed. Never blocks for long; false if it
 * gave up on a rank (a loss: see spawn.c).
 */
bool cf_mpi_release(struct cf_mpi_peer *peers, const bool *lost, int n, bool any_lost);

#endif /* CF_MPI_INTERNAL_H */
