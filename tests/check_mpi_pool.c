/*
 * check_mpi_pool.c: the MPI pool (built with ./configure --with-mpi).
 *
 * One program, three ways (tests/mpi_pool.sh runs the last two):
 *   ./check_mpi_pool                 spawn mode: 2 spawned worker ranks
 *   mpiexec -n 3 ./check_mpi_pool    world mode: ranks 1 and 2 serve
 *   mpiexec -n 1 ./check_mpi_pool --expect-mismatch : -n 1 ./mpi_other
 *                                    a rank running another build fails
 *                                    mpi_pool_serve at start-up
 *   ... --expect-start-timeout beside ./mpi_other --plain, either rank:
 *                                    a rank that never calls mpi_pool_serve
 *                                    fails it with FUT_ETIMEDOUT
 * The suite runs without Check's fork: MPI, once initialized, cannot be
 * used in a forked child, and each spawn costs 0.2-0.5 s, so the cases
 * share one MPI session (and, in world mode, the same worker ranks).
 * main() sets the Open MPI environment for root in a container on
 * loopback (README.md, "MPI pool") unless the caller set it.
 */
#include "testutil.h"

#include <dirent.h>
#include <mpi.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NW 2 /* worker ranks */

static bool world; /* started by mpiexec -n 3 */
static bool killed_holding_only; /* --killed-holding: test_mpi_rank_killed_holding_tasks alone */
static bool silent_rank_only;    /* --silent-rank: test_mpi_world_silent_rank alone */
static bool broken_rank_only;    /* --broken-rank: test_mpi_world_broken_rank alone */
static double t_start; /* when main started */

/*
 * The suite runs without Check's fork, so Check prints only at the end: a
 * run killed midway (SIGKILL, a timeout) would leave no trace. Each test
 * therefore says on stderr when it starts, with the seconds since main.
 */
static void announce(const char *name)
{
    fprintf(stderr, "check_mpi_pool[%d] %6.1f s: %s\n", (int)getpid(), now_s() - t_start,
            name);
}

#define MPI_TEST(name)                                                                   \
    static void name##_body(void);                                                       \
    START_TEST(name)                                                                     \
    {                                                                                    \
        announce(#name);                                                                 \
        name##_body();                                                                   \
    }                                                                                    \
    END_TEST                                                                             \
    static void name##_body(void)

static executor_t *new_pool(void)
{
    executor_t *ex = mpi_pool_executor_new(&(executor_options_t){.max_workers = NW});
    ck_assert_msg(ex != NULL, "mpi_pool_executor_new: errno %d", errno);
    return ex;
}

static void t_sleep(task_t *t)
{
    const double *s = task_arg(t, NULL);
    sleep_s(*s);
    task_return_i64(t, 1);
}

static void t_segv(task_t *t)
{
    (void)t;
    raise(SIGSEGV);
}

static void t_abort(task_t *t)
{
    (void)t;
    abort();
}

static void t_exit3(task_t *t)
{
    (void)t;
    _exit(3);
}

static void t_pid(task_t *t)
{
    task_return_i64(t, getpid());
}

/*
 * Sends @sig to the worker rank a task runs under, then waits for ever: the
 * task runs in a local pool worker, whose parent is the rank's fork server,
 * whose parent is the rank.
 */
static void signal_own_rank(int sig)
{
    pid_t rank = proc_parent(proc_parent(getpid()));
    if (rank > 1)
        kill(rank, sig);
    pause();
}

/* Kills the worker rank it runs under. */
static void t_kill_rank(task_t *t)
{
    (void)t;
    signal_own_rank(SIGKILL);
}

MPI_TEST(test_mpi_submit_results)
{
    executor_t *ex = new_pool();
    enum { N = 300 };
    future_t *f[N];
    for (int64_t i = 0; i < N; i++) {
        f[i] = executor_submit(ex, t_add1, &i, sizeof(i));
        ck_assert_ptr_nonnull(f[i]);
    }
    expect_i64_results(f, N, 1);
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    ck_assert_uint_eq(st.workers, NW);
    ck_assert_uint_eq(st.completed, N);
    executor_free(ex);
}

MPI_TEST(test_mpi_big_payload)
{
    executor_t *ex = new_pool();
    size_t n = 3u << 20;
    unsigned char *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 7 + 3);
    future_t *f = executor_submit(ex, t_echo, b, n);
    const void *data;
    size_t len;
    ck_assert_int_eq(future_result(f, T_LONG, &data, &len), 0);
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(data, b, n) == 0);
    future_unref(f);
    free(b);
    executor_free(ex);
}

/* Answers an untouched (calloc) result of the argument's size in bytes. */
static void t_zeros(task_t *t)
{
    const int64_t *n = task_arg(t, NULL);
    void *p = calloc(1, (size_t)*n);
    if (!p || task_return(t, p, (size_t)*n, free) != 0)
        task_raise(t, ENOMEM, "no memory for %lld bytes", (long long)*n);
}

/*
 * A result over the MPI pool's 1 GiB (an MPI count is an int) fails
 * FUT_ETASK with E2BIG and a message that says so, as a process pool's
 * result over its limit does, in the task's process before it is sent, and
 * the rank goes on (before: FUT_EINVAL with an empty message, after the
 * whole result had come to the rank).
 */
MPI_TEST(test_mpi_result_too_big)
{
    executor_t *ex = new_pool();
    int64_t n = (int64_t)1 << 30;
    future_t *f = executor_submit(ex, t_zeros, &n, sizeof(n));
    ck_assert_ptr_nonnull(f);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), FUT_ETASK);
    ck_assert_int_eq(future_exception(f, 0, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->code, E2BIG);
    ck_assert_msg(strstr(e->message, "is over the pool's maximum of 1073741823"),
                  "message: %s", e->message);
    future_unref(f);
    n = 1000;
    f = executor_submit(ex, t_zeros, &n, sizeof(n));
    size_t len = 0;
    ck_assert_int_eq(future_result(f, T_LONG, NULL, &len), 0);
    ck_assert_uint_eq(len, 1000);
    future_unref(f);
    executor_free(ex);
}

/* Large tasks and large answers cross: neither side may block the other. */
MPI_TEST(test_mpi_big_both_ways)
{
    executor_t *ex = new_pool();
    enum { N = 24 };
    size_t n = 700u << 10;
    unsigned char *b = malloc(N * n);
    const void *args[N];
    size_t lens[N];
    for (size_t i = 0; i < N * n; i++)
        b[i] = (unsigned char)(i * 13 + i / n);
    for (int i = 0; i < N; i++) {
        args[i] = b + (size_t)i * n;
        lens[i] = n;
    }
    executor_map_t *m = executor_map(ex, t_echo, args, lens, N, NULL);
    ck_assert_ptr_nonnull(m);
    for (int i = 0; i < N; i++) {
        const void *d;
        size_t len;
        int rc = executor_map_next(m, &d, &len);
        const future_error_t *e = rc ? executor_map_error(m) : NULL;
        ck_assert_msg(rc == 0, "item %d: %d (%s)", i, rc, e ? e->message : "no error");
        ck_assert_uint_eq(len, n);
        ck_assert(memcmp(d, args[i], n) == 0);
    }
    executor_map_free(m);
    free(b);
    executor_free(ex);
}

MPI_TEST(test_mpi_task_error)
{
    executor_t *ex = new_pool();
    int code = 5;
    future_t *f = executor_submit(ex, t_raise, &code, sizeof(code));
    const future_error_t *e;
    ck_assert_int_eq(future_exception(f, T_LONG, &e), 0);
    ck_assert_int_eq(e->status, FUT_ETASK);
    ck_assert_int_eq(e->code, 5);
    ck_assert_str_eq(e->message, "boom 5");
    future_unref(f);
    executor_free(ex);
}

/* Each crash costs its task only; the ranks go on. */
MPI_TEST(test_mpi_task_crash)
{
    executor_t *ex = new_pool();
    task_fn fns[3] = {t_segv, t_abort, t_exit3};
    int sigs[3] = {SIGSEGV, SIGABRT, 0}, exits[3] = {-1, -1, 3};
    for (int i = 0; i < 3; i++) {
        future_t *f = executor_submit(ex, fns[i], NULL, 0);
        const future_error_t *e;
        ck_assert_int_eq(future_exception(f, T_LONG, &e), 0);
        ck_assert_int_eq(e->status, FUT_EWORKER);
        ck_assert_int_eq(e->signal, sigs[i]);
        if (exits[i] >= 0)
            ck_assert_int_eq(e->exit_status, exits[i]);
        future_unref(f);
    }
    for (int64_t i = 0; i < 2 * NW; i++) {
        future_t *f = executor_submit(ex, t_add1, &i, sizeof(i));
        int64_t v;
        ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
        ck_assert_int_eq(v, i + 1);
        future_unref(f);
    }
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.failed, 3);
    ck_assert_uint_eq(st.workers, NW);
    executor_free(ex);
}

MPI_TEST(test_mpi_deadline)
{
    executor_t *ex = new_pool();
    double s = 30;
    future_t *f = executor_submit_with(ex, t_sleep, &s, sizeof(s),
                                       &(submit_options_t){.timeout = 0.3});
    const future_error_t *e;
    ck_assert_int_eq(future_exception(f, T_LONG, &e), 0);
    ck_assert_int_eq(e->status, FUT_EDEADLINE);
    future_unref(f);
    executor_free(ex);
}

MPI_TEST(test_mpi_map)
{
    executor_t *ex = new_pool();
    enum { N = 64 };
    int64_t x[N];
    const void *args[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        x[i] = i;
        args[i] = &x[i];
        lens[i] = sizeof(x[i]);
    }
    for (int unordered = 0; unordered < 2; unordered++) {
        executor_map_t *m =
            executor_map(ex, t_add1, args, lens, N,
                         &(map_options_t){.unordered = unordered, .buffersize = 9});
        ck_assert_ptr_nonnull(m);
        int64_t sum = 0;
        bool seen[N] = {false};
        for (int i = 0; i < N; i++) {
            const void *d;
            size_t len, at;
            ck_assert_int_eq(executor_map_next_at(m, &at, &d, &len), 0);
            ck_assert_uint_eq(len, sizeof(int64_t));
            int64_t v;
            memcpy(&v, d, sizeof(v));
            ck_assert_int_eq(v, (int64_t)at + 1);
            if (!unordered)
                ck_assert_uint_eq(at, (size_t)i);
            ck_assert(!seen[at]);
            seen[at] = true;
            sum += v;
        }
        ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
        ck_assert_int_eq(sum, N * (N + 1) / 2);
        executor_map_free(m);
    }
    executor_free(ex);
}

static void count_cb(future_t *f, void *ud)
{
    (void)f;
    atomic_fetch_add((_Atomic int *)ud, 1);
}

MPI_TEST(test_mpi_waiting)
{
    executor_t *ex = new_pool();
    enum { N = 20 };
    future_t *f[N];
    _Atomic int calls = 0;
    for (int64_t i = 0; i < N; i++) {
        f[i] = executor_submit(ex, t_add1, &i, sizeof(i));
        ck_assert_int_eq(future_add_done_callback(f[i], count_cb, &calls), 0);
    }
    as_completed_t *it = as_completed_new(f, N, T_LONG);
    ck_assert_ptr_nonnull(it);
    int got = 0;
    future_t *d;
    while (as_completed_next(it, &d) == 0) {
        ck_assert(future_done(d));
        future_unref(d);
        got++;
    }
    as_completed_free(it);
    ck_assert_int_eq(got, N);
    size_t nd = 0, nn = 0;
    ck_assert_int_eq(
        futures_wait(f, N, T_LONG, FUTURES_ALL_COMPLETED, NULL, &nd, NULL, &nn), 0);
    ck_assert_uint_eq(nd, N);
    ck_assert_uint_eq(nn, 0);
    executor_free(ex); /* callbacks ran on the manager before the futures were done */
    ck_assert_int_eq(atomic_load(&calls), N);
    for (int i = 0; i < N; i++)
        future_unref(f[i]);
}

MPI_TEST(test_mpi_shutdown_cancel_futures)
{
    executor_t *ex = new_pool();
    enum { N = 200 };
    future_t *f[N];
    double s = 0.02;
    for (int i = 0; i < N; i++)
        f[i] = executor_submit(ex, t_sleep, &s, sizeof(s));
    ck_assert_int_eq(executor_shutdown(ex, true, true), 0);
    int cancelled = 0, ok = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(future_done(f[i]));
        if (future_cancelled(f[i]))
            cancelled++;
        else if (future_result(f[i], 0, NULL, NULL) == 0)
            ok++;
        future_unref(f[i]);
    }
    ck_assert_int_eq(cancelled + ok, N);
    ck_assert_int_ge(cancelled, N - 64 * NW); /* at most DEPTH = 64 per rank are sent */
    ck_assert_ptr_null(executor_submit(ex, t_add1, &s, sizeof(s)));
    ck_assert_int_eq(errno, ESHUTDOWN);
    executor_free(ex);
}

/* A gate across ranks: files in a directory of the test's (same host). */
struct fgate {
    char dir[64];
    int id;
};

static void fgate_path(const struct fgate *g, const char *what, char *out, size_t n)
{
    snprintf(out, n, "%s/%s.%d", g->dir, what, g->id);
}

static bool file_exists(void *path)
{
    return access(path, F_OK) == 0;
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
}

/* Creates DIR/started.ID, waits up to T_LONG for DIR/go.ID, returns its pid. */
static void t_file_gate(task_t *t)
{
    const struct fgate *g = task_arg(t, NULL);
    char path[192];
    fgate_path(g, "started", path, sizeof(path));
    FILE *f = fopen(path, "w");
    if (f)
        fclose(f);
    fgate_path(g, "go", path, sizeof(path));
    double end = now_s() + T_LONG;
    while (access(path, F_OK) != 0 && now_s() < end)
        usleep(1000);
    task_return_i64(t, getpid());
}

/*
 * A task sent ahead to a rank whose worker is blocked runs on a rank that
 * ran dry, while the first still blocks: the master asks for it back
 * (REVOKE) and the blocked rank gives back what it has not started. Each
 * rank blocks in one task; four quick tasks go two to each; then one rank
 * is freed, and all four must finish in its one local worker.
 */
MPI_TEST(test_mpi_idle_rank_takes_back_queued)
{
    char dir[] = "/tmp/check_mpi_pool.XXXXXX", path[192];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    executor_t *ex = new_pool();
    struct fgate g[2];
    future_t *b[2], *q[4];
    for (int i = 0; i < 2; i++) {
        g[i] = (struct fgate){.id = i};
        snprintf(g[i].dir, sizeof(g[i].dir), "%s", dir);
        b[i] = executor_submit(ex, t_file_gate, &g[i], sizeof(g[i]));
        ck_assert_ptr_nonnull(b[i]);
    }
    for (int i = 0; i < 2;
         i++) { /* each rank runs one: the pool sends to the least loaded */
        fgate_path(&g[i], "started", path, sizeof(path));
        ck_assert_msg(eventually(file_exists, path, T_LONG), "blocker %d did not start",
                      i);
    }
    for (int i = 0; i < 4; i++)
        ck_assert_ptr_nonnull(q[i] = executor_submit(ex, t_pid, NULL, 0));
    fgate_path(&g[1], "go", path, sizeof(path));
    touch(path);
    int64_t freed, pid;
    ck_assert_int_eq(future_result_i64(b[1], T_LONG, &freed), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(future_result_i64(q[i], T_LONG, &pid) == 0,
                      "quick task %d still waits behind the blocked rank", i);
        ck_assert_int_eq(pid, freed);
        future_unref(q[i]);
    }
    ck_assert(!future_done(b[0]));
    fgate_path(&g[0], "go", path, sizeof(path));
    touch(path);
    ck_assert_int_eq(future_result_i64(b[0], T_LONG, &pid), 0);
    ck_assert_int_ne(pid, freed);
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.completed, 6);
    ck_assert_uint_eq(st.failed, 0);
    for (int i = 0; i < 2; i++) {
        future_unref(b[i]);
        const char *what[2] = {"started", "go"};
        for (int k = 0; k < 2; k++) {
            fgate_path(&g[i], what[k], path, sizeof(path));
            unlink(path);
        }
    }
    ck_assert_int_eq(rmdir(dir), 0);
    executor_free(ex);
}

struct seen {
    executor_t *ex;
    executor_stats_t st;
    pthread_t thread; /* the callback's */
    _Atomic bool done;
};

/* A done-callback that takes executor_stats where the future completes. */
static void stats_cb(future_t *f, void *ud)
{
    (void)f;
    struct seen *s = ud;
    s->thread = pthread_self();
    executor_stats(s->ex, &s->st);
    atomic_store(&s->done, true);
}

static bool seen_done(void *arg)
{
    return atomic_load(&((struct seen *)arg)->done);
}

/*
 * executor_stats' idle count is exact when a future completes, as on a
 * process pool: the done-callback of a rank's only task (run by the
 * manager as it completes the future) sees that rank idle again. It was
 * recounted only at the manager's next pass, so the callback (and a
 * thread woken by the result) saw the rank busy.
 */
MPI_TEST(test_mpi_stats_idle_exact)
{
    char dir[] = "/tmp/check_mpi_pool.XXXXXX", path[192];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    executor_t *ex = new_pool();
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.workers, NW);
    ck_assert_uint_eq(st.idle, NW);
    struct fgate g = {.id = 0};
    snprintf(g.dir, sizeof(g.dir), "%s", dir);
    future_t *f = executor_submit(ex, t_file_gate, &g, sizeof(g));
    ck_assert_ptr_nonnull(f);
    fgate_path(&g, "started", path, sizeof(path));
    ck_assert(eventually(file_exists, path, T_LONG));
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.idle, NW - 1);
    ck_assert_uint_eq(st.running, 1);
    struct seen s = {.ex = ex};
    ck_assert_int_eq(future_add_done_callback(f, stats_cb, &s), 0);
    char go[192];
    fgate_path(&g, "go", go, sizeof(go));
    touch(go);
    int64_t pid;
    ck_assert_int_eq(future_result_i64(f, T_LONG, &pid), 0);
    bool done = eventually(seen_done, &s, T_LONG);
    future_unref(f);
    unlink(path);
    unlink(go);
    executor_free(ex); /* first: a failure below leaves no rank for later cases */
    ck_assert_int_eq(rmdir(dir), 0);
    ck_assert(done);
    ck_assert(!pthread_equal(s.thread, pthread_self())); /* the gate held it */
    ck_assert_uint_eq(s.st.running, 0);
    ck_assert_uint_eq(s.st.workers, NW);
    ck_assert_msg(s.st.idle == NW, "idle %zu of %d as the future completed", s.st.idle,
                  NW);
}

MPI_TEST(test_mpi_bad_arguments)
{
    ck_assert_int_eq(mpi_pool_serve(NULL, NULL), FUT_EINVAL);
    errno = 0;
    ck_assert_ptr_null(mpi_pool_executor_new(&(executor_options_t){.max_workers = -1}));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(
        mpi_pool_executor_new(&(executor_options_t){.initializer = t_nothing}));
    ck_assert_int_eq(errno, EINVAL);
    executor_t *ex = new_pool();
    ck_assert_ptr_null(executor_submit(ex, NULL, NULL, 0));
    /* a pointer into no loaded module cannot be named to another process */
    void *heap = malloc(64);
    task_fn nowhere;
    memcpy(&nowhere, &heap, sizeof(nowhere));
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, nowhere, NULL, 0));
    ck_assert_int_eq(errno, EINVAL);
    free(heap);
    executor_free(ex);
}

/*
 * Runs @argv[0] with the rest of @argv (its own session's output) and
 * returns its exit status, or -1 if it did not exit normally.
 */
static int run_wait(char *const argv[])
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * An executable without a GNU build-id (this one, its note removed by
 * objcopy) is refused by mpi_pool_serve with FUT_EINVAL (main() below
 * checks it with --expect-no-build-id), rather than taking a library's
 * build-id for the executable's and failing every submit later.
 */
MPI_TEST(test_mpi_no_build_id)
{
    if (world)
        return; /* the copy would take itself for a world rank */
    char self[4096], copy[] = "/tmp/check_mpi_pool.nobid.XXXXXX", cmd[8400];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    int fd = mkstemp(copy);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(cmd, sizeof(cmd),
             "objcopy --remove-section .note.gnu.build-id '%s' '%s' 2>/dev/null && "
             "chmod +x '%s'",
             self, copy, copy);
    if (system(cmd) != 0) {
        unlink(copy);
        fprintf(stderr, "test_mpi_no_build_id: no objcopy: skipped\n");
        return;
    }
    char flag[] = "--expect-no-build-id";
    char *args[] = {copy, flag, NULL};
    int rc = run_wait(args);
    unlink(copy);
    ck_assert_msg(rc == 0, "the copy without a build-id: exit %d (see its line above)",
                  rc);
}

/* Pids of other processes running this executable (the spawned ranks). */
static int others_alive(void)
{
    char self[4096], path[64], exe[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    DIR *d = opendir("/proc");
    int count = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        int pid = atoi(de->d_name);
        if (pid <= 0 || pid == getpid() || pid == getppid()) /* parent: --killed-holding's */
            continue;
        snprintf(path, sizeof(path), "/proc/%d/exe", pid);
        ssize_t m = readlink(path, exe, sizeof(exe) - 1);
        if (m > 0 && (exe[m] = '\0', strcmp(exe, self) == 0))
            count++;
    }
    if (d)
        closedir(d);
    return count;
}

static bool none_left(void *arg)
{
    (void)arg;
    return others_alive() == 0;
}

/*
 * Runs this program again with @flag alone (main() below reads it), checks
 * that it exited 0 and that none of its ranks is left.
 */
static void run_self(const char *flag)
{
    char self[4096], arg[64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    snprintf(arg, sizeof(arg), "%s", flag);
    char *args[] = {self, arg, NULL};
    int rc = run_wait(args);
    ck_assert_msg(rc == 0, "check_mpi_pool %s: exit %d (see its lines above)", flag, rc);
    ck_assert(eventually(none_left, NULL, T_LONG));
}

/*
 * A program that initializes MPI itself, before mpi_pool_serve, and
 * finalizes it before it returns (main() below, --caller-init): each
 * rank's mpi_pool_serve must not initialize MPI again, nor finalize it
 * (and in world mode the ranks must be stopped by the caller's
 * MPI_Finalize, which waits for them: tests/mpi_pool.sh runs that). Run
 * here alone: spawn mode.
 */
MPI_TEST(test_mpi_caller_init)
{
    if (world)
        return; /* the copy would take itself for a world rank */
    run_self("--caller-init");
}

/* Frees @ex once it counts @workers ranks, then checks that no process is left. */
static void free_with_workers(executor_t *ex, size_t workers)
{
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    ck_assert_uint_eq(st.workers, workers);
    executor_free(ex);
    ck_assert(eventually(none_left, NULL, T_LONG));
}

/* Spawn mode: executor_free leaves no rank, fork server or task process. */
MPI_TEST(test_mpi_free_leaves_nothing)
{
    if (world)
        return; /* world ranks serve until the master exits */
    executor_t *ex = new_pool();
    int64_t i = 1;
    future_t *f = executor_submit(ex, t_pid, &i, sizeof(i));
    int64_t pid;
    ck_assert_int_eq(future_result_i64(f, T_LONG, &pid), 0);
    ck_assert_int_gt(pid, 0);
    future_unref(f);
    ck_assert_int_gt(others_alive(), 0);
    executor_free(ex);
    ck_assert(eventually(none_left, NULL, T_LONG));
}

/* The file whose presence makes the next spawned copy of master @pid stall. */
static void stall_path(char *out, size_t n, long pid)
{
    snprintf(out, n, "/tmp/check_mpi_pool.stall.%ld", pid);
}

/*
 * Spawn mode: a copy that never gets through MPI_Init (main() below makes
 * it stall before mpi_pool_serve, as Open MPI 4.1 sometimes leaves one in
 * PMIx_Init) costs CFUTURES_MPI_SPAWN_LIMIT (5 s here): it is killed and
 * spawned again, and the pool comes up whole.
 */
MPI_TEST(test_mpi_spawn_stuck)
{
    if (world)
        return;
    char path[64];
    stall_path(path, sizeof(path), (long)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    double t0 = now_s();
    executor_t *ex = new_pool();
    ck_assert_double_ge(now_s() - t0, 5.0);
    ck_assert_int_ne(access(path, F_OK), 0); /* a copy took it and stalled */
    int64_t i = 41, v;
    future_t *fu = executor_submit(ex, t_add1, &i, sizeof(i));
    ck_assert_int_eq(future_result_i64(fu, T_LONG, &v), 0);
    ck_assert_int_eq(v, 42);
    future_unref(fu);
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.workers, NW);
    executor_free(ex);
    ck_assert(eventually(none_left, NULL, T_LONG)); /* the stalled copy too */
}

/*
 * Stops the worker rank it runs under (SIGSTOP; see signal_own_rank). No answer:
 * the rank could still relay one before the signal takes it.
 */
static void t_stop_rank(task_t *t)
{
    (void)t;
    signal_own_rank(SIGSTOP);
}

/* Sets CFUTURES_MPI_HEARTBEAT to @secs (a pool reads it when made); the old value in
 * @old. */
static void set_heartbeat(double secs, char *old, size_t n)
{
    const char *v = getenv("CFUTURES_MPI_HEARTBEAT");
    snprintf(old, n, "%s", v ? v : "");
    char buf[32];
    snprintf(buf, sizeof(buf), "%g", secs);
    setenv("CFUTURES_MPI_HEARTBEAT", buf, 1);
}

static void restore_heartbeat(const char *old)
{
    if (*old)
        setenv("CFUTURES_MPI_HEARTBEAT", old, 1);
    else
        unsetenv("CFUTURES_MPI_HEARTBEAT");
}

/*
 * The heartbeat limit for the two tests below: 0.45 s, times
 * CK_TIMEOUT_MULTIPLIER up to 4 (a sanitizer's slower ranks).
 */
static double short_limit(void)
{
    return 0.45 * timeout_multiplier(4);
}

struct held {
    double secs;
    pthread_t thread;  /* the callback's */
    _Atomic bool done; /* the callback returned */
};

static bool held_done(void *arg)
{
    return atomic_load(&((struct held *)arg)->done);
}

/* A done-callback that holds the thread completing the future (the manager). */
static void hold_cb(future_t *f, void *ud)
{
    (void)f;
    struct held *h = ud;
    h->thread = pthread_self();
    sleep_s(h->secs);
    atomic_store(&h->done, true);
}

/*
 * A heartbeat limit under the 0.5 s PING period loses no live rank: not one
 * whose task runs twice the limit, nor any while a done-callback holds the
 * manager thread twice the limit (it pings after, before judging). Both
 * were lost: a rank was judged by its silence alone.
 */
MPI_TEST(test_mpi_short_heartbeat)
{
    double limit = short_limit();
    char old[64];
    set_heartbeat(limit, old, sizeof(old));
    executor_t *ex = new_pool();
    restore_heartbeat(old);
    double secs = 2 * limit;
    future_t *f = executor_submit(ex, t_sleep, &secs, sizeof(secs));
    int64_t v;
    ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
    ck_assert_int_eq(v, 1);
    future_unref(f);
    struct held h = {.secs = 2 * limit};
    double brief = 0.2 * limit;
    f = executor_submit(ex, t_sleep, &brief, sizeof(brief));
    ck_assert_int_eq(future_add_done_callback(f, hold_cb, &h), 0);
    ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
    future_unref(f);
    ck_assert(eventually(held_done, &h, T_LONG)); /* the callback returned */
    ck_assert_msg(
        !pthread_equal(h.thread, pthread_self()),
        "the task ended before its callback was added: the manager was not held");
    for (int64_t i = 0; i < 2 * NW; i++) {
        f = executor_submit(ex, t_add1, &i, sizeof(i));
        ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
        ck_assert_int_eq(v, i + 1);
        future_unref(f);
    }
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.workers, NW);
    executor_free(ex);
}

/*
 * Kills the fork server of the worker rank it runs under (its parent), so
 * that the rank's local process pool breaks; its own process dies with the
 * fork server (PDEATHSIG).
 */
static void t_kill_forkserver(task_t *t)
{
    (void)t;
    kill(getppid(), SIGKILL);
    pause();
}

/* @k, a task that broke its rank's local pool, failed (and is released). */
static void expect_rank_broke(future_t *k)
{
    ck_assert_ptr_nonnull(k);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(k, T_LONG, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(e->status == FUT_EBROKEN || e->status == FUT_EWORKER, "%d %s",
                  e->status, e->message);
    ck_assert_int_eq(e->code, 0);
    future_unref(k);
}

/* Breaks the local pool of the rank the task lands on: the task fails. */
static void break_a_rank(executor_t *ex)
{
    expect_rank_broke(executor_submit(ex, t_kill_forkserver, NULL, 0));
}

/*
 * Spawn mode: a rank whose local process pool broke (a task killed its fork
 * server) runs nothing more, and every task still succeeds: each one sent
 * to that rank comes back unrun and runs on the other, and the broken rank
 * leaves executor_stats' workers. It refused each task FUT_EBROKEN and,
 * quick to answer, drew more of them.
 */
MPI_TEST(test_mpi_broken_rank_gives_tasks_back)
{
    if (world)
        return; /* the world ranks serve the other tests */
    executor_t *ex = new_pool();
    break_a_rank(ex);
    enum { N = 8 * NW };
    executor_stats_t st;
    double t0 = now_s();
    int rounds = 0;
    do { /* until the broken rank was sent a task (N at once: the first round) */
        future_t *f[N];
        for (int64_t i = 0; i < N; i++) {
            f[i] = executor_submit(ex, t_add1, &i, sizeof(i));
            ck_assert_ptr_nonnull(f[i]);
        }
        expect_i64_results(f, N, 1);
        executor_stats(ex, &st);
        rounds++;
    } while (st.workers == NW && now_s() - t0 < T_LONG);
    ck_assert_msg(st.workers == NW - 1, "workers %zu after %d rounds", st.workers,
                  rounds);
    executor_free(ex);
    ck_assert(eventually(none_left, NULL, T_LONG));
}

/* t_kill_forkserver after sleeping the double it is given. */
static void t_kill_forkserver_later(task_t *t)
{
    const double *s = task_arg(t, NULL);
    sleep_s(*s);
    t_kill_forkserver(t);
}

/*
 * Spawn mode: the tasks a rank held unstarted when its local pool broke
 * come back unrun and run on the other rank. K breaks its rank's pool after
 * a while, S keeps the other rank busy past that, and the tasks submitted
 * after them are sent ahead to both ranks (4 each), so some wait behind K
 * when it strikes. They failed FUT_EBROKEN before (the rank could not tell
 * them from started ones). The sleeps only make that likely: whatever the
 * timing, every task but K must succeed.
 */
MPI_TEST(test_mpi_broken_rank_gives_back_held_tasks)
{
    if (world)
        return;
    executor_t *ex = new_pool();
    double kill_after = 0.3, busy = 1.5;
    future_t *k =
        executor_submit(ex, t_kill_forkserver_later, &kill_after, sizeof(kill_after));
    future_t *s = executor_submit(ex, t_sleep, &busy, sizeof(busy));
    ck_assert_ptr_nonnull(s);
    enum { N = 8 };
    future_t *f[N];
    for (int64_t i = 0; i < N; i++) {
        f[i] = executor_submit(ex, t_add1, &i, sizeof(i));
        ck_assert_ptr_nonnull(f[i]);
    }
    expect_rank_broke(k);
    expect_i64_results(f, N, 1);
    int64_t v;
    ck_assert_int_eq(future_result_i64(s, T_LONG, &v), 0);
    future_unref(s);
    free_with_workers(ex, NW - 1);
}

/*
 * Spawn mode: with its only rank's local pool broken, the pool is broken:
 * a task sent there fails FUT_EBROKEN (not given back for ever), and then
 * submits are refused FUT_EBROKEN.
 */
MPI_TEST(test_mpi_every_rank_broken)
{
    if (world)
        return;
    executor_t *ex = mpi_pool_executor_new(&(executor_options_t){.max_workers = 1});
    ck_assert_ptr_nonnull(ex);
    break_a_rank(ex);
    int64_t one = 1;
    future_t *f;
    double t0 = now_s();
    while ((f = executor_submit(ex, t_add1, &one, sizeof(one))) != NULL) {
        const future_error_t *e = NULL;
        ck_assert_int_eq(future_exception(f, T_LONG, &e), 0);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->status, FUT_EBROKEN);
        ck_assert_int_eq(e->code, 0);
        future_unref(f);
        ck_assert_msg(now_s() - t0 < T_LONG, "the pool never broke");
    }
    ck_assert_int_eq(errno, -FUT_EBROKEN);
    free_with_workers(ex, 0);
}

/*
 * Spawn mode: a rank that stops (SIGSTOP) is lost at the heartbeat limit,
 * and executor_free does not wait for it (it waited 20 s for the lost rank
 * to exit): it is SIGKILLed, and nothing is left. One rank: with another
 * rank, Open MPI ends the whole spawned job when that one exits (after a
 * loss the ranks skip MPI_Finalize), the stopped rank with it.
 */
MPI_TEST(test_mpi_free_kills_lost_rank)
{
    if (world)
        return; /* a stopped world rank would hold up mpiexec */
    char old[64];
    set_heartbeat(2 * short_limit(), old, sizeof(old));
    executor_t *ex = mpi_pool_executor_new(&(executor_options_t){.max_workers = 1});
    restore_heartbeat(old);
    ck_assert_ptr_nonnull(ex);
    future_t *f = executor_submit(ex, t_stop_rank, NULL, 0);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(f, T_LONG, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, FUT_EWORKER);
    ck_assert_msg(strstr(e->message, "lost") != NULL, "%s", e->message);
    future_unref(f);
    double t0 = now_s();
    executor_free(ex);
    ck_assert_double_lt(now_s() - t0, 10.0);
    ck_assert(eventually(none_left, NULL, T_LONG));
}

/*
 * Spawn mode, last: a worker rank killed with SIGKILL fails only its own
 * task, within the heartbeat limit (CFUTURES_MPI_HEARTBEAT, 2 s here);
 * the other rank keeps serving, and executor_free does not hang.
 */
MPI_TEST(test_mpi_rank_killed)
{
    if (world)
        return; /* mpiexec ends the whole job when a rank dies */
    /*
     * This pool only: the other tests keep the default 10 s, since a rank
     * busy with large messages under TSan on 2 loaded vCPUs went 2 s
     * without answering a PING (test_mpi_big_both_ways, lost, in CI).
     */
    setenv("CFUTURES_MPI_HEARTBEAT", "2", 0);
    executor_t *ex = new_pool();
    future_t *k = executor_submit(ex, t_kill_rank, NULL, 0);
    const future_error_t *e;
    double t0 = now_s();
    ck_assert_int_eq(future_exception(k, T_LONG, &e), 0);
    ck_assert_int_eq(e->status, FUT_EWORKER);
    ck_assert_msg(strstr(e->message, "lost") != NULL, "%s", e->message);
    ck_assert_double_lt(now_s() - t0, T_LONG);
    future_unref(k);
    for (int64_t i = 0; i < 10; i++) {
        future_t *f = executor_submit(ex, t_add1, &i, sizeof(i));
        int64_t v;
        ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
        ck_assert_int_eq(v, i + 1);
        future_unref(f);
    }
    free_with_workers(ex, NW - 1);
}

static bool rank_gone(void *pid)
{
    return process_gone(*(int *)pid);
}

/*
 * Says its rank's pid in DIR/started.ID, waits up to T_LONG for DIR/go.ID
 * (@arg: a struct fgate), then kills the
 * worker rank it runs under.
 */
static void t_gate_kill_rank(task_t *t)
{
    const struct fgate *g = task_arg(t, NULL);
    char path[192];
    char tmp[192];
    fgate_path(g, "pid", tmp, sizeof(tmp));
    fgate_path(g, "started", path, sizeof(path));
    FILE *f = fopen(tmp, "w"); /* says the rank's pid, whole once renamed */
    if (f) {
        fprintf(f, "%d\n", (int)proc_parent(proc_parent(getpid())));
        fclose(f);
        rename(tmp, path);
    }
    fgate_path(g, "go", path, sizeof(path));
    double end = now_s() + T_LONG;
    while (access(path, F_OK) != 0 && now_s() < end)
        usleep(1000);
    signal_own_rank(SIGKILL);
}

/*
 * Spawn mode: a rank killed while it holds tasks sent ahead, once the other
 * rank ran dry. The master asks the silent rank for them back (REVOKE), as
 * it would a busy one; that message must not block the manager (Open MPI
 * never completes a send to a dead peer, however small), so the heartbeat
 * still judges the rank lost: its tasks fail FUT_EWORKER within the limit,
 * the other rank serves on, and executor_free returns.
 */
MPI_TEST(test_mpi_rank_killed_holding_tasks)
{
    if (world)
        return; /* mpiexec ends the whole job when a rank dies */
    char dir[] = "/tmp/check_mpi_pool.XXXXXX", path[192];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char old[64];
    set_heartbeat(2, old, sizeof(old));
    executor_t *ex = new_pool();
    restore_heartbeat(old);
    struct fgate g[2];
    for (int i = 0; i < 2; i++) {
        g[i] = (struct fgate){.id = i};
        snprintf(g[i].dir, sizeof(g[i].dir), "%s", dir);
    }
    /* one on each rank (the least loaded first): a killer and a blocker */
    future_t *k = executor_submit(ex, t_gate_kill_rank, &g[0], sizeof(g[0]));
    future_t *b = executor_submit(ex, t_file_gate, &g[1], sizeof(g[1]));
    for (int i = 0; i < 2; i++) {
        fgate_path(&g[i], "started", path, sizeof(path));
        ck_assert_msg(eventually(file_exists, path, T_LONG), "task %d did not start", i);
    }
    int rank = 0;
    fgate_path(&g[0], "started", path, sizeof(path));
    FILE *f = fopen(path, "r");
    ck_assert(f && fscanf(f, "%d", &rank) == 1 && rank > 1);
    fclose(f);
    future_t *q[4]; /* two held behind each */
    for (int i = 0; i < 4; i++)
        ck_assert_ptr_nonnull(q[i] = executor_submit(ex, t_pid, NULL, 0));
    fgate_path(&g[0], "go", path, sizeof(path));
    touch(path); /* the killer's rank dies, holding two */
    ck_assert(eventually(rank_gone, &rank, T_LONG));
    fgate_path(&g[1], "go", path, sizeof(path));
    double t0 = now_s();
    touch(path); /* the blocker's rank runs dry */
    const future_error_t *e;
    ck_assert_int_eq(future_exception(k, T_LONG, &e), 0);
    ck_assert_int_eq(e->status, FUT_EWORKER);
    ck_assert_msg(strstr(e->message, "lost") != NULL, "%s", e->message);
    ck_assert_double_lt(now_s() - t0, T_LONG);
    int64_t v;
    ck_assert_int_eq(future_result_i64(b, T_LONG, &v), 0);
    int lost = 0;
    for (int i = 0; i < 4; i++) {
        int rc = future_result_i64(q[i], T_LONG, &v);
        ck_assert_int_ne(rc, FUT_ETIMEDOUT);
        ck_assert(rc == 0 || rc == FUT_EWORKER);
        lost += rc != 0;
        future_unref(q[i]);
    }
    ck_assert_int_le(lost, 2);
    future_unref(k);
    future_unref(b);
    for (int i = 0; i < 2; i++) {
        const char *what[2] = {"started", "go"};
        for (int w = 0; w < 2; w++) {
            fgate_path(&g[i], what[w], path, sizeof(path));
            unlink(path);
        }
    }
    ck_assert_int_eq(rmdir(dir), 0);
    free_with_workers(ex, NW - 1);
}

/*
 * test_mpi_rank_killed_holding_tasks in a job of its own (this program with
 * --killed-holding): after a rank was SIGKILLed, Open MPI 4.1's next spawn
 * in the same job may never return (under ASan in CI: three spawns in a row
 * timed out), so only one such test can run in a job, and last
 * (test_mpi_rank_killed here).
 */
MPI_TEST(test_mpi_rank_killed_holding_tasks_alone)
{
    if (world)
        return; /* mpiexec ends the whole job when a rank dies */
    run_self("--killed-holding");
}

/*
 * Stops (SIGSTOP) the worker rank it runs under and returns once that rank
 * is stopped: the rank is silent, not gone (its answer waits in its pipe).
 */
static void t_silence_rank(task_t *t)
{
    pid_t rank = proc_parent(proc_parent(getpid()));
    if (rank > 1)
        kill(rank, SIGSTOP);
    double end = now_s() + T_LONG;
    while (proc_state(rank) != 'T' && now_s() < end)
        usleep(1000);
    task_return_i64(t, rank);
}

/* The worker rank it runs under. */
static void t_rank_pid(task_t *t)
{
    task_return_i64(t, proc_parent(proc_parent(getpid())));
}

/*
 * World mode, in a job of its own (tests/mpi_pool.sh, --silent-rank): a
 * rank that is alive but silent (stopped) is lost at the heartbeat limit,
 * and a pool made after the first was freed leaves it out: it was handed
 * to the new pool, whose tasks sent there waited for the new pool's own
 * heartbeat limit and failed. Resumed at the end, so that it takes the
 * master's STOP at exit (a stopped world rank would hold up mpiexec).
 */
MPI_TEST(test_mpi_world_silent_rank)
{
    if (!world)
        return;
    char old[64];
    set_heartbeat(2 * short_limit(), old, sizeof(old));
    executor_t *ex = new_pool();
    restore_heartbeat(old);
    future_t *f = executor_submit(ex, t_silence_rank, NULL, 0);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(f, T_LONG, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, FUT_EWORKER);
    const char *at = strstr(e->message, "(pid ");
    int pid = 0;
    ck_assert_msg(at && sscanf(at, "(pid %d", &pid) == 1 && pid > 1, "%s", e->message);
    future_unref(f);
    executor_free(ex);
    ex = new_pool();
    executor_stats_t st;
    executor_stats(ex, &st);
    /* silent for 1 s more: a task sent there would wait (10 s heartbeat) */
    enum { N = 4 * NW };
    future_t *q[N];
    for (int64_t i = 0; i < N; i++)
        ck_assert_ptr_nonnull(q[i] = executor_submit(ex, t_rank_pid, NULL, 0));
    int late = 0;
    for (int i = 0; i < N; i++) {
        int64_t rank = 0;
        late += future_result_i64(q[i], 1.0, &rank) != 0;
        ck_assert_int_ne(rank, pid);
    }
    kill(pid, SIGCONT);
    for (int i = 0; i < N; i++)
        future_unref(q[i]);
    executor_free(ex);
    ck_assert_msg(st.workers == NW - 1, "the new pool has %zu workers, the lost rank too",
                  st.workers);
    ck_assert_int_eq(late, 0);
}

/* The MPI world rank a task runs under (its environment: mpiexec's). */
static int64_t world_rank_of_task(void)
{
    const char *s = getenv("OMPI_COMM_WORLD_RANK");
    return s ? atoll(s) : -1;
}

static void t_world_rank(task_t *t)
{
    task_return_i64(t, world_rank_of_task());
}

/* On world rank 1: t_kill_forkserver. Elsewhere: returns its world rank. */
static void t_kill_forkserver_on_1(task_t *t)
{
    if (world_rank_of_task() == 1)
        t_kill_forkserver(t);
    t_world_rank(t);
}

/* Pools of @max_workers ranks made now: NULL with FUT_EBROKEN (none is left). */
static bool no_rank_left(void *arg)
{
    int max_workers = *(const int *)arg;
    executor_t *ex =
        mpi_pool_executor_new(&(executor_options_t){.max_workers = max_workers});
    if (!ex) {
        ck_assert_int_eq(errno, -FUT_EBROKEN);
        return true;
    }
    executor_free(ex);
    return false;
}

/*
 * World mode, in a job of its own (tests/mpi_pool.sh, --broken-rank): a
 * rank whose local process pool broke (its fork server killed) is left out
 * of every pool made after, as a lost rank is. It was handed to them: a
 * pool's workers counted it, and a pool of one rank got world rank 1, the
 * broken one, and failed every task FUT_EBROKEN while rank 2 was fine.
 * (The first pool learnt it from a task the rank refused unrun.) Then rank
 * 2 breaks too, in a pool freed at once (it never sent that rank another
 * task to learn it so): the rank tells the master itself, and a pool made
 * after finds no rank (FUT_EBROKEN), not one that fails each task. Nothing
 * is lost: every rank takes STOP and the job ends cleanly.
 */
MPI_TEST(test_mpi_world_broken_rank)
{
    if (!world)
        return;
    executor_t *ex = new_pool();
    double t0 = now_s();
    future_t *f;
    int64_t v = 0; /* until a task lands on rank 1 and breaks its pool */
    while ((f = executor_submit(ex, t_kill_forkserver_on_1, NULL, 0)) &&
           future_result_i64(f, T_LONG, &v) == 0) {
        ck_assert_int_eq(v, 2);
        future_unref(f);
        ck_assert_msg(now_s() - t0 < T_LONG, "no task reached world rank 1");
    }
    expect_rank_broke(f);
    /* until rank 1 refused a task (given back: it ran on rank 2) */
    executor_stats_t st;
    do {
        ck_assert_ptr_nonnull(f = executor_submit(ex, t_world_rank, NULL, 0));
        ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
        ck_assert_int_eq(v, 2);
        future_unref(f);
        executor_stats(ex, &st);
        ck_assert_msg(now_s() - t0 < T_LONG, "rank 1 was never sent a task");
    } while (st.workers == NW);
    executor_free(ex);
    /* A pool made now leaves rank 1 out: 1 worker, every task on rank 2. */
    for (int max_workers = NW; max_workers >= 1; max_workers--) {
        ex = mpi_pool_executor_new(&(executor_options_t){.max_workers = max_workers});
        ck_assert_ptr_nonnull(ex);
        executor_stats(ex, &st);
        enum { N = 4 * NW };
        future_t *q[N];
        for (int i = 0; i < N; i++)
            ck_assert_ptr_nonnull(q[i] = executor_submit(ex, t_world_rank, NULL, 0));
        for (int i = 0; i < N; i++) {
            v = 0;
            int rc = future_result_i64(q[i], T_LONG, &v);
            ck_assert_msg(rc == 0 && v == 2, "max_workers %d: task %d: %d, rank %lld",
                          max_workers, i, rc, (long long)v);
            future_unref(q[i]);
        }
        executor_free(ex);
        ck_assert_msg(st.workers == 1, "max_workers %d: %zu workers, the broken rank too",
                      max_workers, st.workers);
    }
    /* Rank 2 breaks in a pool freed as soon as the task failed. */
    ex = new_pool();
    expect_rank_broke(executor_submit(ex, t_kill_forkserver, NULL, 0));
    executor_free(ex);
    int max_workers = NW;
    ck_assert_msg(eventually(no_rank_left, &max_workers, T_LONG),
                  "pools are still made with rank 2, whose pool broke");
}

Suite *make_suite(void)
{
    Suite *s = suite_create("mpi_pool");
    TCase *tc = tcase_create("mpi_pool");
    tcase_set_timeout(tc, 120);
    if (killed_holding_only || silent_rank_only || broken_rank_only) {
        tcase_add_test(tc, killed_holding_only ? test_mpi_rank_killed_holding_tasks
                           : silent_rank_only  ? test_mpi_world_silent_rank
                                               : test_mpi_world_broken_rank);
        suite_add_tcase(s, tc);
        return s;
    }
    tcase_add_test(tc, test_mpi_submit_results);
    tcase_add_test(tc, test_mpi_big_payload);
    tcase_add_test(tc, test_mpi_result_too_big);
    tcase_add_test(tc, test_mpi_big_both_ways);
    tcase_add_test(tc, test_mpi_task_error);
    tcase_add_test(tc, test_mpi_task_crash);
    tcase_add_test(tc, test_mpi_deadline);
    tcase_add_test(tc, test_mpi_map);
    tcase_add_test(tc, test_mpi_waiting);
    tcase_add_test(tc, test_mpi_shutdown_cancel_futures);
    tcase_add_test(tc, test_mpi_idle_rank_takes_back_queued);
    tcase_add_test(tc, test_mpi_stats_idle_exact);
    tcase_add_test(tc, test_mpi_bad_arguments);
    tcase_add_test(tc, test_mpi_no_build_id);
    tcase_add_test(tc, test_mpi_caller_init);
    tcase_add_test(tc, test_mpi_free_leaves_nothing);
    tcase_add_test(tc, test_mpi_spawn_stuck);
    tcase_add_test(tc, test_mpi_short_heartbeat);
    tcase_add_test(tc, test_mpi_broken_rank_gives_tasks_back);
    tcase_add_test(tc, test_mpi_broken_rank_gives_back_held_tasks);
    tcase_add_test(tc, test_mpi_every_rank_broken);
    tcase_add_test(tc, test_mpi_rank_killed_holding_tasks_alone);
    tcase_add_test(tc, test_mpi_free_kills_lost_rank);
    tcase_add_test(tc, test_mpi_rank_killed);
    suite_add_tcase(s, tc);
    return s;
}

/* Open MPI as root, oversubscribed, on loopback only, unless already set. */
static void mpi_env(void)
{
    static const char *const kv[][2] = {
        {"OMPI_ALLOW_RUN_AS_ROOT", "1"},
        {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"},
        {"OMPI_MCA_rmaps_base_oversubscribe", "1"},
        {"OMPI_MCA_pml", "ob1"},
        {"OMPI_MCA_btl", "self,vader,tcp"},
        {"OMPI_MCA_btl_tcp_if_include", "lo"},
        {"OMPI_MCA_oob_tcp_if_include", "lo"},
        {"HWLOC_COMPONENTS", "-gl"},
        {"CFUTURES_MPI_SPAWN_LIMIT", "5"},
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        setenv(kv[i][0], kv[i][1], 0);
}

/*
 * --caller-init: MPI_Init_thread before mpi_pool_serve, MPI_Finalize after
 * executor_free, as an MPI program that has its own MPI work would do; one
 * task on a pool of every rank (world mode) or one spawned rank. 0 if it ran.
 */
static int caller_init_main(int argc, char **argv)
{
    int prov = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &prov);
    int rc = mpi_pool_serve(&argc, &argv);
    if (rc != 0) {
        MPI_Finalize();
        return rc == 1 ? EXIT_SUCCESS : EXIT_FAILURE;
    }
    /* A hang (in a spawn, or in MPI_Finalize) fails the run: outside Check's runner
       here, so SIGALRM kills with its own status. */
    alarm((unsigned)(120 * timeout_multiplier(3)));
    executor_t *ex = mpi_pool_executor_new(
        &(executor_options_t){.max_workers = getenv("OMPI_COMM_WORLD_SIZE") ? 0 : 1});
    int64_t x = 41, v = 0;
    future_t *f = ex ? executor_submit(ex, t_add1, &x, sizeof(x)) : NULL;
    rc = f ? future_result_i64(f, T_LONG, &v) : -1;
    future_unref(f);
    executor_free(ex);
    MPI_Finalize();
    fprintf(stderr, "check_mpi_pool --caller-init: result %d, %lld (want 0, 42)\n", rc,
            (long long)v);
    return rc == 0 && v == 42 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * A second mpi_pool_serve, after the first returned @first (1: a worker
 * done; negative: failed), returns the same at once: it ran MPI again (a
 * worker after MPI_Finalize aborted in MPI_Query_thread; a spawned copy,
 * its marker taken, took itself for a master), and a world master whose
 * handshake failed waited for ever in MPI_Comm_dup. True if it did so.
 */
static bool serve_again(int *argc, char ***argv, int first)
{
    alarm((unsigned)(60 * timeout_multiplier(3)));
    int rc = mpi_pool_serve(argc, argv);
    alarm(0);
    if (rc == first)
        return true;
    fprintf(stderr, "check_mpi_pool[%d]: mpi_pool_serve again returned %d, not %d\n",
            (int)getpid(), rc, first);
    return false;
}

int main(int argc, char **argv)
{
    /*
     * Started alone (spawn mode, by make check): a session of its own, so
     * that whatever Open MPI's runtime signals as this job's process group
     * when a rank dies can never reach make and the CI script around it.
     */
    if (!getenv("OMPI_COMM_WORLD_SIZE"))
        (void)setsid();
    mpi_env();
    /* a spawned copy (marker=master pid.n) told to stall: test_mpi_spawn_stuck */
    for (int i = 1; i < argc; i++) {
        long master = 0;
        char path[64];
        if (sscanf(argv[i], "--cfutures-mpi-worker=%ld.", &master) != 1)
            continue;
        stall_path(path, sizeof(path), master);
        if (unlink(path) == 0)
            for (;;)
                pause(); /* killed by the master */
    }
    if (argc > 1 && strcmp(argv[1], "--caller-init") == 0) /* test_mpi_caller_init */
        return caller_init_main(argc, argv);
    killed_holding_only = argc > 1 && strcmp(argv[1], "--killed-holding") == 0;
    silent_rank_only = argc > 1 && strcmp(argv[1], "--silent-rank") == 0;
    broken_rank_only = argc > 1 && strcmp(argv[1], "--broken-rank") == 0;
    bool expect_mismatch = argc > 1 && strcmp(argv[1], "--expect-mismatch") == 0;
    /* beside mpi_other --plain, as rank 0 or as a worker rank */
    bool expect_timeout = argc > 1 && strcmp(argv[1], "--expect-start-timeout") == 0;
    if (argc > 1 && strcmp(argv[1], "--expect-no-build-id") == 0) { /* test_mpi_no_build_id */
        int rc = mpi_pool_serve(&argc, &argv);
        fprintf(stderr, "check_mpi_pool: mpi_pool_serve returned %d (want %d)\n", rc,
                FUT_EINVAL);
        return rc == FUT_EINVAL && serve_again(&argc, &argv, rc) ? EXIT_SUCCESS
                                                                 : EXIT_FAILURE;
    }
    int rc = mpi_pool_serve(&argc, &argv);
    if (rc != 0 && !serve_again(&argc, &argv, rc))
        return EXIT_FAILURE;
    if (expect_mismatch || expect_timeout) {
        int want = expect_mismatch ? FUT_EBROKEN : FUT_ETIMEDOUT;
        fprintf(stderr, "check_mpi_pool: mpi_pool_serve returned %d (want %d)\n", rc, want);
        return rc == want ? EXIT_SUCCESS : EXIT_FAILURE;
    }
    if (rc != 0)
        return rc == 1 ? EXIT_SUCCESS : EXIT_FAILURE;
    /* A hang (here or in Open MPI's exit) fails the run instead of stalling make check
     * (the suite takes 60-130 s; under TSan on CI's loaded vCPUs, 300 and more). */
    t_start = now_s();
    hang_guard(300, "check_mpi_pool");
    const char *ws = getenv("OMPI_COMM_WORLD_SIZE");
    world = ws && atoi(ws) > 1;
    return run_suite(false);
}
