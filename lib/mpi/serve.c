/*
 * serve.c: mpi_pool_serve, the first call in an MPI program's main, and the
 * worker rank's side of the protocol (internal.h has the big picture).
 *
 * DESIGN
 * Which process is a worker is known before MPI_Init: a spawned copy has
 * CF_MPI_MARKER among its arguments (the master put it there), a world
 * rank other than 0 has its rank in the launcher's environment
 * (OMPI_COMM_WORLD_RANK, PMIX_RANK or PMI_RANK). A worker makes its local
 * process pool first, so that pool's fork server is forked before MPI
 * exists, then initializes MPI, answers the master's HELLO (the module
 * tables of taskid.c, checked on both sides) and serves (relay.c) until
 * STOP.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../process/pump.h"
#include "../process/wire.h"
#include "internal.h"
#include "util.h"

/* Seconds every world rank gets to join at start-up, and to answer the
   handshake: CFUTURES_MPI_START_LIMIT, default 60 (start_limit). */
#define HELLO_LIMIT 60.0

static struct {
    bool called, served, we_init, world, stopped;
    bool lazy; /* started alone: MPI waits for the first pool (cf_mpi_start) */
    int rc;    /* the first call's outcome: any later call returns it */
    _Atomic bool lost;
    MPI_Comm comm; /* world mode: the dup of MPI_COMM_WORLD */
    struct cf_mpi_peer *peers;
    bool *gone; /* e_mu: world mode, peers[i] was lost by an executor */
    int npeers;
    struct cf_mpi_modtab mods;
    char **argv;
    pthread_mutex_t start_mu; /* cf_mpi_start */
    int start_rc;             /* its outcome, once `lazy` is false again */
    pthread_mutex_t e_mu;
    unsigned char e_used[CF_MPI_MAX_E + 1];
} g = {.e_mu = PTHREAD_MUTEX_INITIALIZER, .start_mu = PTHREAD_MUTEX_INITIALIZER};

bool cf_mpi_world_mode(void)
{
    return g.world;
}

/*
 * World mode, e_mu held: takes the BROKEN notes of ranks whose local pool
 * broke (relay.c), each marking its rank gone. Only here are they
 * received, so a probe and its receive cannot be split by another thread.
 */
static void take_broken_notes(void)
{
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (!g.peers || g.stopped ||
            MPI_Iprobe(MPI_ANY_SOURCE, CF_MPI_TAG(0, CF_MPI_K_BROKEN), g.comm, &flag,
                       &st) != MPI_SUCCESS ||
            !flag ||
            MPI_Recv(NULL, 0, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, g.comm,
                     MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return;
        if (st.MPI_SOURCE >= 1 && st.MPI_SOURCE <= g.npeers)
            g.gone[st.MPI_SOURCE - 1] = true;
    }
}

int cf_mpi_world_peers(struct cf_mpi_peer *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&g.e_mu);
    take_broken_notes();
    for (int i = 0; i < g.npeers; i++) {
        if (g.gone[i])
            continue;
        if (out && n < max)
            out[n] = g.peers[i];
        n++;
    }
    pthread_mutex_unlock(&g.e_mu);
    return n;
}

void cf_mpi_world_lose(int dest)
{
    pthread_mutex_lock(&g.e_mu);
    if (dest >= 1 && dest <= g.npeers)
        g.gone[dest - 1] = true;
    pthread_mutex_unlock(&g.e_mu);
}

bool cf_mpi_ready(void)
{
    if (!g.served && !g.called) /* a failed one said why already */
        fprintf(stderr, "cfutures: mpi_pool_serve(&argc, &argv) must come first in "
                        "main, before mpi_pool_executor_new\n");
    return g.served;
}

const struct cf_mpi_modtab *cf_mpi_modules(void)
{
    return &g.mods;
}

char *const *cf_mpi_saved_argv(void)
{
    return g.argv;
}

void cf_mpi_note_loss(void)
{
    atomic_store(&g.lost, true);
}

bool cf_mpi_lost(void)
{
    return atomic_load(&g.lost);
}

/* A free executor number (tags), 1 ... CF_MPI_MAX_E, or 0 if none. */
int cf_mpi_next_e(void)
{
    int e = 0;
    pthread_mutex_lock(&g.e_mu);
    for (int i = 1; i <= CF_MPI_MAX_E && !e; i++)
        if (!g.e_used[i]) {
            g.e_used[i] = 1;
            e = i;
        }
    pthread_mutex_unlock(&g.e_mu);
    return e;
}

void cf_mpi_release_e(int e)
{
    pthread_mutex_lock(&g.e_mu);
    if (e > 0 && e <= CF_MPI_MAX_E)
        g.e_used[e] = 0;
    pthread_mutex_unlock(&g.e_mu);
}

void cf_mpi_nap(int64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000),
                          .tv_nsec = (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

/*
 * The environment's @name in [@lo, @hi], as strtod reads it whole (@whole:
 * strtol's decimal integers only). Unset or empty: @dflt. Anything else is
 * ignored as well, with one line on stderr that names it (libgomp's way
 * with OMP_NUM_THREADS), so a typo is seen and never fails a pool.
 */
static double env_number(const char *name, double lo, double hi, double dflt, bool whole)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    errno = 0;
    double v = whole ? (double)strtol(s, &end, 10) : strtod(s, &end);
    if (!*end && end != s && errno == 0 && v >= lo && v <= hi)
        return v;
    fprintf(stderr,
            "cfutures: %s=%s is not %s from %g to %g: ignored, the default used\n", name,
            s, whole ? "a whole number" : "a number", lo, hi);
    return dflt;
}

int cf_mpi_env_int(const char *name, long lo, long hi, int dflt)
{
    return (int)env_number(name, (double)lo, (double)hi, dflt, true);
}

double cf_mpi_env_secs(const char *name, double lo, double dflt)
{
    return env_number(name, lo, 86400, dflt, false);
}

static double start_limit(void)
{
    return cf_mpi_env_secs("CFUTURES_MPI_START_LIMIT", 0.1, HELLO_LIMIT);
}

/*
 * MPI_Comm_dup of MPI_COMM_WORLD into *@comm, which every rank must join: a
 * rank that never calls mpi_pool_serve (another program under the same
 * mpiexec, or one stuck before it) would hold the others in it for ever. So
 * it waits @limit seconds at most (MPI_Comm_idup, MPI_Test). 0, or
 * FUT_ETIMEDOUT or FUT_ESYS, said on stderr for @who; after a time-out the
 * duplicate stays pending, so MPI is not finalized at exit (a loss).
 */
static int dup_world(MPI_Comm *comm, double limit, const char *who)
{
    MPI_Comm dup;
    MPI_Request req;
    *comm = MPI_COMM_NULL;
    int64_t end = cf_now_ns() + (int64_t)(limit * 1e9), nap = 1000;
    bool ok = MPI_Comm_idup(MPI_COMM_WORLD, &dup, &req) == MPI_SUCCESS;
    for (int done = 0; ok && cf_now_ns() < end; nap = CF_MIN(nap * 2, 1000000)) {
        ok = MPI_Test(&req, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS;
        if (ok && done) {
            *comm = dup;
            return 0;
        }
        cf_mpi_nap(nap);
    }
    if (!ok) {
        fprintf(stderr, "cfutures %s: MPI_Comm_idup of the world failed\n", who);
        return FUT_ESYS;
    }
    fprintf(stderr,
            "cfutures %s: not every rank of the job joined in %g s: each must run a "
            "program that calls mpi_pool_serve first (CFUTURES_MPI_START_LIMIT)\n",
            who, limit);
    cf_mpi_note_loss();
    return FUT_ETIMEDOUT;
}

/* The local pool's size per rank: CFUTURES_MPI_PROCS, else 1. */
static int local_procs(void)
{
    return cf_mpi_env_int("CFUTURES_MPI_PROCS", 1, 4096, 1);
}

/* The worker's half of HELLO: match the master's modules, answer. */
static int worker_hello(struct cf_mpi_rank *r)
{
    MPI_Status st;
    int n = 0;
    if (MPI_Probe(r->master, CF_MPI_TAG(0, CF_MPI_K_HELLO), r->comm, &st) != MPI_SUCCESS)
        return FUT_ESYS;
    MPI_Get_count(&st, MPI_BYTE, &n);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (!b)
        return FUT_ENOMEM;
    MPI_Recv(b, n, MPI_BYTE, r->master, st.MPI_TAG, r->comm, MPI_STATUS_IGNORE);
    struct cf_mpi_hello h = {.pid = (int32_t)getpid(), .procs = r->procs};
    gethostname(h.host, sizeof(h.host) - 1);
    cf_mpi_modtab_load(&r->mods);
    h.status = cf_mpi_modtab_match(&r->mods, b, (size_t)n, r->map, &r->nmap, h.why,
                                   sizeof(h.why));
    free(b);
    r->ok = h.status == 0;
    if (!r->ok)
        fprintf(stderr, "cfutures mpi worker on %s: %s\n", h.host, h.why);
    MPI_Send(&h, (int)sizeof(h), MPI_BYTE, r->master, CF_MPI_TAG(0, CF_MPI_K_HELLO),
             r->comm);
    return h.status;
}

/*
 * A spawned worker's start-up watchdog: Open MPI 4.1 can leave a spawned
 * process in MPI_Init for ever (spawn.c), and a master that gave up on it
 * never sends the handshake. Past CF_MPI_START_LIMIT seconds it exits.
 */
struct watchdog {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done, started;
};

static void *watchdog_main(void *arg)
{
    struct watchdog *w = arg;
    struct timespec ts;
    cf_ns_to_timespec(cf_now_ns() + CF_MPI_START_LIMIT * 1000000000LL, &ts);
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT && !w->done) {
            fprintf(stderr,
                    "cfutures mpi worker: not through MPI_Init and the handshake "
                    "in %d s: exiting\n",
                    CF_MPI_START_LIMIT);
            _exit(EXIT_FAILURE);
        }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void watchdog_arm(struct watchdog *w)
{
    cf_cond_init_monotonic(&w->cv);
    pthread_mutex_init(&w->mu, NULL);
    w->done = false;
    w->started = cf_start_thread(&w->thread, watchdog_main, w) == 0;
}

static void watchdog_disarm(struct watchdog *w)
{
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started)
        pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

/* MPI up and the handshake done (a spawned worker under its watchdog). 0 or a code. */
static int worker_start(struct cf_mpi_rank *r, int *argc, char ***argv, bool spawned)
{
    struct watchdog w;
    if (spawned)
        watchdog_arm(&w);
    int prov = 0, rc = FUT_ESYS, init = 0;
    MPI_Initialized(&init); /* by the caller: it finalizes MPI too */
    r->we_init = !init;
    if (init) {
        MPI_Query_thread(&prov);
    } else if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &prov) != MPI_SUCCESS) {
        r->comm = MPI_COMM_NULL;
        r->mpi_up = false;
        goto out;
    }
    r->mpi_up = true;
    if (spawned) {
        MPI_Comm_get_parent(&r->comm);
    } else if ((rc = dup_world(&r->comm, start_limit(), "mpi worker")) < 0) {
        r->teardown = false; /* the duplicate is pending: no MPI_Finalize */
        goto out;
    }
    rc = FUT_ESYS;
    if (prov < MPI_THREAD_MULTIPLE || r->comm == MPI_COMM_NULL) {
        fprintf(stderr, "cfutures mpi worker: %s\n",
                prov < MPI_THREAD_MULTIPLE ? "this MPI lacks MPI_THREAD_MULTIPLE"
                                           : "no parent communicator");
        goto out;
    }
    MPI_Comm_set_errhandler(r->comm, MPI_ERRORS_RETURN);
    rc = worker_hello(r);
    r->serving = true; /* also after a failed check: the master sends STOP */
out:
    if (spawned)
        watchdog_disarm(&w);
    return rc;
}

/* A worker rank from start to end. Returns 1, or a negative code. */
static int serve_worker(int *argc, char ***argv, bool spawned)
{
    struct cf_mpi_rank r = {
        .master = 0, .teardown = true, .world = !spawned, .procs = local_procs()};
    cf_cond_init_monotonic(&r.cv);
    pthread_mutex_init(&r.mu, NULL);
    r.local = cf_pp_new(&(executor_options_t){.max_workers = r.procs}, CF_MPI_RESULT_MAX);
    if (!r.local)
        return -errno;
    int rc = worker_start(&r, argc, argv, spawned);
    if (r.serving)
        cf_mpi_relay(&r);
    executor_free(r.local); /* its last answers are queued by now */
    if (r.teardown && r.serving)
        cf_mpi_relay_flush(&r);
    cf_buf_free(&r.out);
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.cv);
    if (!r.mpi_up || !r.teardown)
        return rc < 0 ? rc : 1; /* a rank was lost: Open MPI 4.1 may hang in teardown */
    if (r.serving && spawned)   /* the master waits for this, then disconnects */
        MPI_Send(NULL, 0, MPI_BYTE, r.master, CF_MPI_TAG(0, CF_MPI_K_BYE), r.comm);
    if (r.comm != MPI_COMM_NULL)
        spawned ? MPI_Comm_disconnect(&r.comm) : MPI_Comm_free(&r.comm);
    if (r.we_init)
        MPI_Finalize();
    return rc < 0 ? rc : 1;
}

/* Removes CF_MPI_MARKER[=token] from the arguments; true if it was there. */
static bool take_marker(int *argc, char ***argv)
{
    char **v = *argv;
    for (int i = 1; i < *argc; i++) {
        size_t n = strlen(CF_MPI_MARKER); /* the marker, or marker=token (spawn.c) */
        if (v[i] && strncmp(v[i], CF_MPI_MARKER, n) == 0 &&
            (v[i][n] == '\0' || v[i][n] == '=')) {
            memmove(&v[i], &v[i + 1], (size_t)(*argc - i) * sizeof(*v));
            (*argc)--;
            return true;
        }
    }
    return false;
}

/* This process's world rank as its launcher gives it, or -1 if it was started alone. */
static int launcher_rank(void)
{
    const char *names[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *s = getenv(names[i]);
        if (s && *s)
            return atoi(s);
    }
    return -1;
}

/*
 * The master's half of HELLO with @peer: sends our module table (each
 * module's build-id: the worker compares them with its own) and waits up
 * to @limit seconds for its verdict. 0, or FUT_EBROKEN / FUT_ETIMEDOUT /
 * FUT_ESYS with @why.
 */
int cf_mpi_handshake(struct cf_mpi_peer *peer, double limit, char *why, size_t why_len)
{
    unsigned char out[CF_MPI_MODTAB_BYTES(CF_MPI_MAX_MODULES)];
    size_t n = cf_mpi_modtab_encode(&g.mods, out);
    if (MPI_Send(out, (int)n, MPI_BYTE, peer->dest, CF_MPI_TAG(0, CF_MPI_K_HELLO),
                 peer->comm) != MPI_SUCCESS) {
        snprintf(why, why_len, "could not send the handshake to worker rank %d",
                 peer->dest);
        return FUT_ESYS;
    }
    int64_t end = cf_deadline_after(limit);
    int flag = 0;
    while (!flag) {
        if (MPI_Iprobe(peer->dest, CF_MPI_TAG(0, CF_MPI_K_HELLO), peer->comm, &flag,
                       MPI_STATUS_IGNORE) != MPI_SUCCESS ||
            (!flag && cf_now_ns() > end)) {
            snprintf(why, why_len,
                     "worker rank %d did not answer the handshake in %.0f s", peer->dest,
                     limit);
            return FUT_ETIMEDOUT;
        }
        if (!flag)
            cf_mpi_nap(100 * 1000);
    }
    struct cf_mpi_hello h;
    memset(&h, 0, sizeof(h));
    MPI_Status st;
    int got = 0;
    if (MPI_Recv(&h, (int)sizeof(h), MPI_BYTE, peer->dest, CF_MPI_TAG(0, CF_MPI_K_HELLO),
                 peer->comm, &st) != MPI_SUCCESS ||
        MPI_Get_count(&st, MPI_BYTE, &got) != MPI_SUCCESS || got != (int)sizeof(h)) {
        snprintf(why, why_len,
                 "worker rank %d answered the handshake with %d bytes, not %zu (another "
                 "build of cfutures?)",
                 peer->dest, got, sizeof(h));
        return FUT_EBROKEN;
    }
    h.host[sizeof(h.host) - 1] = '\0';
    h.why[sizeof(h.why) - 1] = '\0';
    peer->pid = h.pid;
    peer->procs = h.procs > 0 ? h.procs : 1;
    snprintf(peer->host, sizeof(peer->host), "%s", h.host);
    if (h.status != 0) {
        snprintf(why, why_len, "worker rank %d (pid %d on %s): %s", peer->dest, h.pid,
                 h.host, h.why);
        return FUT_EBROKEN;
    }
    return 0;
}

/*
 * Sends STOP (e = 0) to @peer: its one byte says whether to tear MPI down
 * (0 after a rank was lost). Blocking only when @wait.
 */
void cf_mpi_send_stop(const struct cf_mpi_peer *peer, bool teardown, bool wait)
{
    static const unsigned char yes = 1, no = 0;
    const unsigned char *b = teardown ? &yes : &no;
    MPI_Request rq;
    int tag = CF_MPI_TAG(0, CF_MPI_K_STOP);
    if (wait)
        MPI_Send(b, 1, MPI_BYTE, peer->dest, tag, peer->comm);
    else if (MPI_Isend(b, 1, MPI_BYTE, peer->dest, tag, peer->comm, &rq) == MPI_SUCCESS)
        MPI_Request_free(&rq);
}

/*
 * World ranks stop, and the world's dup is freed unless a rank was lost.
 * Once: at MPI_Finalize (the caller's, or master_exit's), or at exit if MPI
 * is never finalized; the ranks must stop before MPI_Finalize, which waits
 * for every rank of the world.
 */
static void master_stop(void)
{
    if (g.stopped)
        return;
    pthread_mutex_lock(&g.e_mu);
    take_broken_notes(); /* none is left unreceived in the dup at its free */
    g.stopped = true;
    pthread_mutex_unlock(&g.e_mu);
    for (int i = 0; i < g.npeers; i++)
        cf_mpi_send_stop(&g.peers[i], !atomic_load(&g.lost), false);
    if (atomic_load(&g.lost))
        return; /* Open MPI 4.1 may hang in teardown after a rank death */
    if (g.world)
        MPI_Comm_free(&g.comm);
    pthread_mutex_lock(&g.e_mu);
    free(g.peers);
    free(g.gone);
    g.peers = NULL;
    g.gone = NULL;
    g.npeers = 0;
    pthread_mutex_unlock(&g.e_mu);
}

/* MPI_Finalize deletes MPI_COMM_SELF's attributes first (MPI 3.1, 8.7.1). */
static int at_finalize(MPI_Comm comm, int key, void *val, void *extra)
{
    (void)comm, (void)key, (void)val, (void)extra;
    master_stop();
    return MPI_SUCCESS;
}

/* At the master's exit: MPI finalized (if ours) unless a rank was lost. */
static void master_exit(void)
{
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin)
        return; /* by the caller: at_finalize ran */
    master_stop();
    if (!atomic_load(&g.lost) && g.we_init)
        MPI_Finalize();
}

/* World mode at rank 0: the world's other ranks become the workers. */
static int master_world(int size)
{
    double limit = start_limit();
    int rc = dup_world(&g.comm, limit, "mpi_pool_serve");
    if (rc < 0)
        return rc;
    MPI_Comm_set_errhandler(g.comm, MPI_ERRORS_RETURN);
    g.peers = calloc((size_t)size - 1, sizeof(*g.peers));
    g.gone = calloc((size_t)size - 1, sizeof(*g.gone));
    if (!g.peers || !g.gone)
        return FUT_ENOMEM;
    g.npeers = size - 1;
    g.world = true;
    int bad = 0;
    for (int i = 0; i < g.npeers; i++) {
        char why[512];
        g.peers[i] = (struct cf_mpi_peer){.comm = g.comm, .dest = i + 1};
        rc = cf_mpi_handshake(&g.peers[i], limit, why, sizeof(why));
        if (rc < 0) {
            fprintf(stderr, "cfutures mpi_pool_serve: %s\n", why);
            bad = bad ? bad : rc;
        }
    }
    return bad;
}

/*
 * MPI up for the master (with @argc, @argv from mpi_pool_serve, or NULL for
 * a lazy start by @who): initialized unless the caller did it, then
 * finalized at exit (master_exit, registered only now, after MPI_Init's own
 * handlers, as before the lazy start; at_finalize). 0 or FUT_ESYS, said on
 * stderr.
 */
static int master_mpi_up(int *argc, char ***argv, const char *who)
{
    int init = 0, prov = 0;
    MPI_Initialized(&init);
    if (init) {
        MPI_Query_thread(&prov);
    } else if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &prov) != MPI_SUCCESS) {
        fprintf(stderr, "cfutures %s: MPI_Init_thread failed\n", who);
        return FUT_ESYS;
    }
    g.we_init = !init;
    if (prov < MPI_THREAD_MULTIPLE) {
        fprintf(stderr, "cfutures %s: this MPI lacks MPI_THREAD_MULTIPLE\n", who);
        return FUT_ESYS;
    }
    atexit(master_exit);
    int key;
    if (MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, at_finalize, &key, NULL) ==
        MPI_SUCCESS)
        MPI_Comm_set_attr(MPI_COMM_SELF, key, NULL);
    return 0;
}

/*
 * The master (rank 0, or a program started alone). Started alone, MPI
 * waits for the first pool (cf_mpi_start): a program that ends before it,
 * on a usage error say, never starts MPI. Open MPI 4.1's singleton can
 * crash in MPI_Finalize soon after MPI_Init: it unloads its PMIx component
 * while the event of MPI_Init's model declaration may still be queued for
 * its progress thread, which then runs unmapped code (SIGSEGV at exit,
 * seen in CI on a starved machine). Rank 0 of a launched job starts MPI now
 * and checks the other ranks' build-ids.
 */
static int serve_master(int *argc, char ***argv)
{
    int init = 0, size = 1;
    cf_mpi_modtab_load(&g.mods); /* before MPI: a refusal leaves nothing to end */
    if (g.mods.n == 0) {
        fprintf(stderr, "cfutures mpi_pool_serve: the executable has no build-id\n");
        return FUT_EINVAL;
    }
    MPI_Initialized(&init);
    g.argv = *argv;
    if (!init && launcher_rank() < 0) { /* started alone */
        /* A spawned rank that dies must not make Open MPI abort the other
           spawned ranks' jobs (it does by default). Set now: no thread yet. */
        setenv("OMPI_MCA_orte_abort_on_non_zero_status", "0", 0);
        g.lazy = g.served = true;
        return 0;
    }
    int rc = master_mpi_up(argc, argv, "mpi_pool_serve");
    if (rc < 0)
        return rc;
    g.served = true;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    rc = size > 1 ? master_world(size) : 0;
    if (rc < 0)
        g.served = false; /* the ranks get STOP at exit */
    return rc;
}

int cf_mpi_start(void)
{
    pthread_mutex_lock(&g.start_mu);
    if (g.lazy) {
        g.start_rc = master_mpi_up(NULL, NULL, "mpi_pool_executor_new");
        g.lazy = false;
    }
    int rc = g.start_rc;
    pthread_mutex_unlock(&g.start_mu);
    return rc;
}

/*
 * Once per process: a later call returns the first one's outcome at once
 * (a master's 0, a worker's 1, or a failure's code). Trying again could
 * only go wrong: MPI cannot be initialized twice nor used after
 * MPI_Finalize, a world master's MPI_Comm_dup would wait for ever for
 * ranks that already answered, and a spawned copy, its marker taken out,
 * would take itself for a master.
 */
int mpi_pool_serve(int *argc, char ***argv)
{
    if (!argc || !argv || !*argv || *argc < 1)
        return FUT_EINVAL;
    if (g.called) {
        if (g.rc < 0)
            fprintf(stderr,
                    "cfutures mpi_pool_serve: called again after it failed (%d): it "
                    "is not tried again\n",
                    g.rc);
        return g.rc;
    }
    g.called = true;
    bool spawned = take_marker(argc, argv);
    if (spawned || launcher_rank() > 0) /* a world rank other than 0 */
        g.rc = serve_worker(argc, argv, spawned);
    else
        g.rc = serve_master(argc, argv);
    return g.rc;
}
