/*
 * spawn.c: spawn mode's worker ranks, started and ended by the master
 * (internal.h has the big picture; pool.c calls these).
 *
 * DESIGN
 * Open MPI 4.1 with Debian 12's external PMIx 4.2 sometimes never finishes
 * a spawn: now and then, mostly under load, the new process stays in
 * PMIx_Init (inside MPI_Init) and the master in MPI_Comm_spawn (waiting in
 * PMIx_Lookup for the child to connect) with every thread of orted idle;
 * openpmix/openpmix#2735 reports the same intermittent spawn hang for Open
 * MPI 4.1 with any external PMIx 4. Nothing here can make that spawn
 * finish (pmix_base_exchange_timeout does not bound it, nor does killing
 * the stuck process: both tried), so every wait is bounded and a failed
 * attempt is retried:
 *   - MPI_Comm_spawn runs on a thread of its own; after spawn_limit() seconds
 *     the caller gives up on it (that thread stays blocked in Open MPI, which
 *     goes on spawning meanwhile: measured) and SIGKILLs the new process,
 *     found by the token in its arguments (CF_MPI_MARKER=pid.n);
 *   - the new copy then has SPAWN_HELLO_LIMIT seconds to answer HELLO (it
 *     is killed the same way if it does not);
 *   - a spawned worker not through MPI_Init and the handshake in
 *     CF_MPI_START_LIMIT seconds exits by itself (serve.c's watchdog);
 *   - spawn_one tries SPAWN_TRIES times; a failed attempt leaves a job (and
 *     maybe a thread) inside Open MPI, so MPI is not finalized at exit
 *     (cf_mpi_note_loss), as after a lost rank.
 *
 * Ending (executor_free): each live rank gets STOP, finishes, answers BYE
 * and disconnects. The master waits for the BYEs up to RELEASE_LIMIT
 * seconds and disconnects those that came; a rank that did not answer, or
 * one lost before, is waited for to exit and then SIGKILLed (its fork
 * server and task processes die with it: PR_SET_PDEATHSIG). Such a rank is
 * a loss: nothing more is disconnected and MPI is not finalized at exit.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

#define SPAWN_TRIES 3
#define SPAWN_HELLO_LIMIT 60.0 /* seconds the new copy then has to answer HELLO */
#define RELEASE_LIMIT 20.0     /* seconds for the ranks to say BYE, then to exit */

/*
 * One MPI_Comm_spawn, made on a thread of its own so that its wait is
 * bounded: a spawn that never returns is abandoned there (Open MPI goes on
 * spawning meanwhile; measured), and its process killed by its token.
 * Shared by the two threads; the last one out frees it.
 */
struct spawn_call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;       /* mu */
    bool done;      /* mu: MPI_Comm_spawn returned */
    bool abandoned; /* mu: the caller gave up waiting */
    int rc, err;
    MPI_Comm comm;
    char cmd[4096];
    char **args; /* args[marker_at] is our own marker=token string */
    int marker_at;
};

static void call_unref(struct spawn_call *c)
{
    pthread_mutex_lock(&c->mu);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->args[c->marker_at]);
    free(c->args);
    free(c);
}

static void *spawn_main(void *arg)
{
    struct spawn_call *c = arg;
    MPI_Comm comm = MPI_COMM_NULL;
    int err = MPI_SUCCESS;
    int rc =
        MPI_Comm_spawn(c->cmd, c->args, 1, MPI_INFO_NULL, 0, MPI_COMM_SELF, &comm, &err);
    pthread_mutex_lock(&c->mu);
    c->rc = rc;
    c->err = err;
    c->comm = comm;
    c->done = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    call_unref(c); /* a late copy of an abandoned call is killed by its token */
    return NULL;
}

/* SIGKILLs the processes whose arguments hold @token (a spawn given up on). */
static void kill_token(const char *token)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[64], buf[8192];
        int pid = atoi(de->d_name);
        snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
        FILE *f = pid > 0 && pid != getpid() ? fopen(path, "r") : NULL;
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        for (size_t at = 0; at < n; at += strlen(buf + at) + 1) {
            if (strcmp(buf + at, token) == 0) {
                kill(pid, SIGKILL);
                break;
            }
        }
    }
    if (d)
        closedir(d);
}

/* Seconds MPI_Comm_spawn may take: CFUTURES_MPI_SPAWN_LIMIT, default 30. */
static double spawn_limit(void)
{
    return cf_mpi_env_secs("CFUTURES_MPI_SPAWN_LIMIT", 0.1, 30.0);
}

/*
 * Two executors made at once: MPI_Comm_spawn on MPI_COMM_SELF, a collective
 * call, must not run in two threads at once (MPI 3.1, 12.4.2). Taken while
 * a spawn runs, not across the handshake after it. A flag and a nap, not a
 * mutex: spawns are rare, and TSan's deadlock detector, which counts the
 * locks a thread holds (at most 64), already counts Open MPI's on this one.
 */
static atomic_flag spawning = ATOMIC_FLAG_INIT;

/* Starts MPI_Comm_spawn of @c on its thread and waits spawn_limit() for it. 0 or a code.
 */
static int spawn_call_run(struct spawn_call *c, MPI_Comm *comm)
{
    pthread_t t;
    c->refs = 2;
    while (atomic_flag_test_and_set(&spawning))
        cf_mpi_nap(1000000LL);
    if (cf_start_thread(&t, spawn_main, c) != 0) {
        atomic_flag_clear(&spawning);
        c->refs = 1;
        return FUT_ESYS;
    }
    pthread_detach(t);
    struct timespec ts;
    double limit = spawn_limit();
    cf_ns_to_timespec(cf_deadline_after(limit), &ts);
    pthread_mutex_lock(&c->mu);
    while (!c->done && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT)
        ;
    c->abandoned = !c->done;
    bool ok = c->done && c->rc == MPI_SUCCESS && c->err == MPI_SUCCESS;
    *comm = ok ? c->comm : MPI_COMM_NULL;
    pthread_mutex_unlock(&c->mu);
    atomic_flag_clear(&spawning); /* an abandoned spawn runs on beside the next */
    if (c->abandoned) {
        fprintf(stderr,
                "cfutures mpi_pool_executor_new: MPI_Comm_spawn did not return in "
                "%.0f s (Open MPI 4.1 with PMIx 4: openpmix#2735)\n",
                limit);
        kill_token(c->args[c->marker_at]);
        return FUT_ETIMEDOUT;
    }
    return ok ? 0 : FUT_ESYS;
}

/* @pid's start time in clock ticks since boot (/proc/PID/stat field 22), 0 if gone. */
static unsigned long long proc_start(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    for (int field = 2; p && field < 22; field++) /* p: the end of field 2, then */
        p = strchr(p + 1, ' ');                   /* the space before field + 1 */
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

static bool on_this_host(const struct cf_mpi_peer *peer);

/* One attempt at spawning worker @peer (its own MPI job) and checking it. */
static int spawn_once(struct cf_mpi_peer *peer, const char *cmd, char **args, int at)
{
    static _Atomic unsigned seq;
    struct spawn_call *c = calloc(1, sizeof(*c));
    int n = 0;
    while (args[n])
        n++;
    char **own = c ? calloc((size_t)n + 1, sizeof(*own)) : NULL;
    char *token = own ? malloc(strlen(CF_MPI_MARKER) + 32) : NULL;
    if (!token) {
        free(own);
        free(c);
        return FUT_ENOMEM;
    }
    sprintf(token, "%s=%d.%u", CF_MPI_MARKER, (int)getpid(), atomic_fetch_add(&seq, 1));
    memcpy(own, args, (size_t)n * sizeof(*own));
    own[at] = token;
    *c = (struct spawn_call){.args = own, .marker_at = at, .comm = MPI_COMM_NULL};
    snprintf(c->cmd, sizeof(c->cmd), "%s", cmd);
    cf_cond_init_monotonic(&c->cv);
    pthread_mutex_init(&c->mu, NULL);
    peer->dest = 0;
    peer->pid = 0;
    peer->start = 0;
    int rc = spawn_call_run(c, &peer->comm);
    if (rc == 0) {
        MPI_Comm_set_errhandler(peer->comm, MPI_ERRORS_RETURN);
        char why[512];
        rc = cf_mpi_handshake(peer, SPAWN_HELLO_LIMIT, why, sizeof(why));
        if (rc < 0)
            fprintf(stderr, "cfutures mpi_pool_executor_new: %s\n", why);
        else if (on_this_host(peer)) /* it just answered: the pid is its own */
            peer->start = proc_start(peer->pid);
        if (rc == FUT_ETIMEDOUT)
            kill_token(token);
    } else if (rc == FUT_ESYS) {
        fprintf(stderr,
                "cfutures mpi_pool_executor_new: MPI_Comm_spawn of %s failed "
                "(root in a container: see README, MPI pool)\n",
                cmd);
    }
    call_unref(c);
    return rc;
}

/*
 * Spawns worker @peer, up to SPAWN_TRIES times while MPI_Comm_spawn fails
 * or the new copy does not answer. 0 or a code; on failure @peer holds no
 * communicator.
 */
static int spawn_one(struct cf_mpi_peer *peer, const char *cmd, char **args, int at)
{
    int rc = FUT_ESYS;
    for (int t = 0; t < SPAWN_TRIES; t++) {
        rc = spawn_once(peer, cmd, args, at);
        if (rc == 0)
            return 0;
        cf_mpi_note_loss(); /* a job Open MPI may not tear down */
        if (peer->comm != MPI_COMM_NULL) {
            if (rc == FUT_EBROKEN) /* it answered: a clean goodbye */
                cf_mpi_send_stop(peer, false, false);
            peer->comm = MPI_COMM_NULL; /* never disconnected: see DESIGN */
        }
        if (rc == FUT_EBROKEN || rc == FUT_ENOMEM)
            return rc; /* trying again cannot help */
        fprintf(stderr, "cfutures mpi_pool_executor_new: %s\n",
                t + 1 < SPAWN_TRIES ? "spawning again" : "giving up");
    }
    return rc;
}

/* The arguments of a spawned copy: ours, then the marker (at *@at). NULL: no memory. */
static char **worker_args(int *at)
{
    char *const *av = cf_mpi_saved_argv();
    size_t na = 0;
    while (av && av[na])
        na++;
    char **args = calloc(na + 2, sizeof(*args));
    if (!args)
        return NULL;
    for (size_t i = 1; i < na; i++)
        args[i - 1] = av[i];
    *at = na ? (int)na - 1 : 0;
    args[*at] = (char *)CF_MPI_MARKER;
    return args;
}

int cf_mpi_spawn(struct cf_mpi_peer *peers, int n)
{
    char cmd[4096];
    ssize_t len = readlink("/proc/self/exe", cmd, sizeof(cmd) - 1);
    int at = 0;
    char **args = len > 0 ? worker_args(&at) : NULL;
    if (!args)
        return len <= 0 ? FUT_ESYS : FUT_ENOMEM;
    cmd[len] = '\0';
    MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
    int rc = 0, i;
    for (i = 0; i < n && rc == 0; i++)
        rc = spawn_one(&peers[i], cmd, args, at);
    free(args);
    if (rc == 0)
        return 0;
    bool *lost = calloc((size_t)i, sizeof(*lost));
    if (lost) /* those that started; the failed one holds no communicator */
        cf_mpi_release(peers, lost, i, cf_mpi_lost());
    else
        cf_mpi_note_loss();
    free(lost);
    return rc;
}

/* True if @pid runs this executable (a spawned copy of ours, not a reused pid). */
static bool is_our_copy(int pid)
{
    char path[64], self[4096], exe[4096];
    ssize_t a = readlink("/proc/self/exe", self, sizeof(self) - 1);
    snprintf(path, sizeof(path), "/proc/%d/exe", pid);
    ssize_t b = readlink(path, exe, sizeof(exe) - 1);
    if (a <= 0 || b <= 0)
        return false;
    self[a] = exe[b] = '\0';
    return strcmp(self, exe) == 0;
}

/* True if @peer runs on this host, so that its pid is ours to watch and kill. */
static bool on_this_host(const struct cf_mpi_peer *peer)
{
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    return peer->pid > 0 && strcmp(host, peer->host) == 0;
}

/*
 * True if @peer's process on this host is still our copy (not gone, not a
 * zombie): its executable, and its start time, since every fork server and
 * task process of this program runs the same executable and may have been
 * given a dead rank's pid.
 */
static bool still_ours(const struct cf_mpi_peer *peer)
{
    return kill(peer->pid, 0) == 0 && is_our_copy(peer->pid) &&
           (!peer->start || proc_start(peer->pid) == peer->start);
}

/*
 * SIGKILLs each @lost rank of this host (sent no STOP: nothing to wait
 * for), waits until @end for the others to exit, then SIGKILLs what is
 * left and waits up to 5 s more for it to vanish.
 */
static void end_processes(const struct cf_mpi_peer *peers, const bool *lost, int n,
                          int64_t end)
{
    for (int i = 0; i < n; i++) {
        if (lost[i] && on_this_host(&peers[i]) && still_ours(&peers[i])) {
            fprintf(stderr, "cfutures mpi pool: worker rank pid %d was lost: killed\n",
                    peers[i].pid);
            kill(peers[i].pid, SIGKILL);
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            if (!on_this_host(&peers[i]))
                continue;
            while (still_ours(&peers[i]) && cf_now_ns() < end)
                cf_mpi_nap(10 * 1000000LL);
            if (pass == 0 && still_ours(&peers[i])) {
                fprintf(stderr,
                        "cfutures mpi pool: worker rank pid %d did not end: killed\n",
                        peers[i].pid);
                kill(peers[i].pid, SIGKILL);
            }
        }
        end = cf_deadline_after(5.0);
    }
}

/* Waits until @end for a BYE from @peer; true if it came. */
static bool wait_bye(const struct cf_mpi_peer *peer, int64_t end)
{
    int flag = 0, tag = CF_MPI_TAG(0, CF_MPI_K_BYE);
    while (!flag && cf_now_ns() < end) {
        if (MPI_Iprobe(peer->dest, tag, peer->comm, &flag, MPI_STATUS_IGNORE) !=
            MPI_SUCCESS)
            return false;
        if (!flag)
            cf_mpi_nap(1000000LL);
    }
    if (flag)
        MPI_Recv(NULL, 0, MPI_BYTE, peer->dest, tag, peer->comm, MPI_STATUS_IGNORE);
    return flag != 0;
}

bool cf_mpi_release(struct cf_mpi_peer *peers, const bool *lost, int n, bool any_lost)
{
    bool teardown = !any_lost;
    for (int i = 0; i < n; i++)
        if (!lost[i] && peers[i].comm != MPI_COMM_NULL)
            cf_mpi_send_stop(&peers[i], teardown, false);
    int64_t end = cf_deadline_after(RELEASE_LIMIT);
    for (int i = 0; i < n && teardown; i++) {
        if (lost[i] || peers[i].comm == MPI_COMM_NULL)
            continue;
        if (wait_bye(&peers[i], end)) {
            MPI_Comm_disconnect(&peers[i].comm);
            continue;
        }
        fprintf(stderr, "cfutures mpi pool: worker rank pid %d did not say goodbye\n",
                peers[i].pid);
        teardown = false; /* see DESIGN */
        cf_mpi_note_loss();
    }
    end_processes(peers, lost, n, end);
    return teardown;
}
