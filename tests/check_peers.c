/*
 * check_peers: items of ../shared/peer-behaviours.md (what CPython's,
 * pebble's and loky's suites check) that a coverage audit found no test
 * guarding, though the library behaved as they ask: idle process reuse,
 * on-demand workers, recycling at shutdown and free, forced termination,
 * worker deaths by exit code and by an outside SIGTERM in both death modes,
 * a death mid-map and during shutdown, a deadline seen by a done-callback,
 * result bytes that look like frames, and a quiet stderr. Each test's
 * comment names its items; tests/README.md maps them.
 *
 * Process-pool tasks report through `shm`, a MAP_SHARED page mapped before
 * the pool (its fork server, and so every worker, shares it): gates and pids
 * go through it, never sleeps. Items that apply to both kinds loop over
 * ex_kinds; the others make a process pool. Every test ends with no fd, no
 * thread and no child left (end_check).
 */
#include "testutil.h"

#include "process/wire.h" /* the frame header's layout and constants (PEBBLE-05) */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPIDS 64

struct shm {
    _Atomic int gate;       /* gated tasks wait for it */
    _Atomic int started;    /* gated tasks that began */
    _Atomic int finished;   /* gated tasks that got past their gate */
    _Atomic int fs_pid;     /* the workers' parent: the fork server */
    _Atomic int pid[NPIDS]; /* the worker pid of task i */
    _Atomic int cb_calls;   /* deadline_cb runs */
    _Atomic int cb_status;  /* what deadline_cb saw */
};

static struct shm *shm;
static int base_fds, base_threads;

/* Maps the shared page and notes fds and threads; call before making a pool. */
static void begin(void)
{
    shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
               0);
    ck_assert_ptr_ne(shm, MAP_FAILED);
    memset(shm, 0, sizeof(*shm));
    base_fds = count_fds();
    base_threads = thread_baseline();
}

/* After executor_free: no fd, no thread, no child (zombie or not) left. */
static void end_check(void)
{
    ck_assert_int_eq(count_fds(), base_fds);
    ck_assert(wait_threads(base_threads));
    ck_assert(no_children());
    munmap(shm, sizeof(*shm));
}

static bool pid_gone(void *pid)
{
    return process_gone(*(pid_t *)pid);
}

/* The workers were the fork server's children: reaped there, or by init once it left. */
static void expect_gone(pid_t pid)
{
    ck_assert_int_gt(pid, 0);
    ck_assert_msg(eventually(pid_gone, &pid, T_LONG), "worker pid %d still exists",
                  (int)pid);
}

static bool started_at_least(void *n)
{
    return atomic_load(&shm->started) >= *(int *)n;
}

static void wait_started(int n)
{
    ck_assert(eventually(started_at_least, &n, T_LONG));
}

static void wait_broken(executor_t *ex)
{
    double end = now_s() + T_LONG;
    executor_stats_t st;
    do
        executor_stats(ex, &st);
    while (!st.broken && now_s() < end && usleep(200) == 0);
    ck_assert(st.broken);
}

static int64_t result_i64(future_t *f)
{
    int64_t v = -12345;
    ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
    return v;
}

/* Waits for @f to fail with @status; its error (borrowed from @f). */
static const future_error_t *failure(future_t *f, int status)
{
    const future_error_t *err = NULL;
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), status);
    ck_assert_int_eq(future_exception(f, 0, &err), 0);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, status);
    return err;
}

static void expect_submit_broken(executor_t *ex)
{
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, t_nothing, NULL, 0));
    ck_assert_int_eq(errno, -FUT_EBROKEN);
}

/* Processes whose parent is @parent (a /proc scan). */
static int children_of(pid_t parent)
{
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (isdigit((unsigned char)e->d_name[0]) &&
            proc_parent(atoi(e->d_name)) == parent)
            n++;
    closedir(d);
    return n;
}

/* ---------------------------------------------------------- tasks */

/* Waits (up to T_LONG) for shm->gate. */
static void wait_gate(void)
{
    double end = now_s() + T_LONG;
    while (!atomic_load(&shm->gate) && now_s() < end)
        usleep(100);
}

/* arg: an int index < NPIDS, or none (-1). Notes its worker's pid. */
static int note_pid(task_t *t)
{
    const int *i = task_arg(t, NULL);
    int idx = i ? *i : -1;
    if (idx >= 0 && idx < NPIDS)
        atomic_store(&shm->pid[idx], getpid());
    atomic_store(&shm->fs_pid, getppid());
    return idx;
}

/* Returns its worker's pid (noted at its index, if given). */
static void p_pid(task_t *t)
{
    note_pid(t);
    task_return_i64(t, getpid());
}

/* arg: an int i. Returns i * i (noting its pid at i). */
static void p_square(task_t *t)
{
    int i = note_pid(t);
    task_return_i64(t, (int64_t)i * i);
}

/* arg: an int index. Counts itself started, waits for the gate, returns the index. */
static void p_gated(task_t *t)
{
    int i = note_pid(t);
    atomic_fetch_add(&shm->started, 1);
    wait_gate();
    atomic_fetch_add(&shm->finished, 1);
    task_return_i64(t, i);
}

/* What p_after does once the test's thread @tid sleeps: return, or crash. */
struct after {
    int idx;
    pid_t tid;
    int crash; /* 0: return idx; else raise this signal */
};

/*
 * Counts itself started, waits for the gate, then (up to 10 s) for the test
 * thread @tid to be asleep in the kernel (state S): that thread opens the gate right
 * before it calls executor_shutdown or executor_free, and sleeps only in
 * there (it must wait for this task). So what follows happens while that
 * call waits, unless it never sleeps (then 10 s later: still after the gate).
 */
static void p_after(task_t *t)
{
    const struct after *a = task_arg(t, NULL);
    note_pid(t);
    atomic_fetch_add(&shm->started, 1);
    wait_gate();
    double end = now_s() + 10;
    for (char s = proc_state(a->tid); s != 'S' && s != 0 && now_s() < end;
         s = proc_state(a->tid))
        usleep(100);
    if (a->crash)
        raise(a->crash);
    task_return_i64(t, a->idx);
}

static void p_exit42(task_t *t)
{
    (void)t;
    exit(42);
}

static void p_exit1(task_t *t)
{
    (void)t;
    _exit(1);
}

static void p_segv(task_t *t)
{
    (void)t;
    raise(SIGSEGV);
}

static void p_init_fail(task_t *t)
{
    task_raise(t, 7, "init says no");
}

/* arg: an int i. Item 1 raises; item 2 waits for the gate; each other returns 1. */
static void p_good_fail_good(task_t *t)
{
    const int *i = task_arg(t, NULL);
    if (*i == 1) {
        task_raise(t, 1, "item 1 fails");
        return;
    }
    if (*i == 2)
        wait_gate();
    task_return_i64(t, 1);
}

enum { MAP_N = 8, MAP_DIES = 3 };

/* arg: an int i. MAP_DIES waits for the gate and kills its worker; others return i. */
static void p_map_item(task_t *t)
{
    const int *i = task_arg(t, NULL);
    if (*i == MAP_DIES) {
        wait_gate();
        raise(SIGKILL);
    }
    task_return_i64(t, *i);
}

/*
 * @n bytes of frames back to back, as a worker writes them on its pipe:
 * 32-byte headers (magic, version, type, flags, id, len; wire.h) of ERROR,
 * INITFAIL, NOTE and RESULT frames, each with its payload (an ERROR's is an
 * i32 code and a message); the last one cut at @n.
 */
static void lookalike(unsigned char *out, size_t n)
{
    static const char msg[] = "boom"; /* an ERROR frame of 40 bytes in all */
    static const uint16_t types[] = {CF_WIRE_ERROR, CF_WIRE_INITFAIL, CF_WIRE_NOTE,
                                     CF_WIRE_RESULT};
    unsigned char frame[CF_WIRE_HDR + CF_WIRE_ERROR_FIXED + sizeof(msg)];
    size_t off = 0;
    for (unsigned k = 0; off < n; k++) {
        uint16_t type = types[k % 4];
        uint64_t len = type == CF_WIRE_NOTE ? 0 : CF_WIRE_ERROR_FIXED + sizeof(msg) - 1;
        uint64_t id = type == CF_WIRE_NOTE || type == CF_WIRE_INITFAIL ? 0 : k + 1;
        memset(frame, 0, sizeof(frame));
        uint32_t magic = CF_WIRE_MAGIC;
        uint16_t version = CF_WIRE_VERSION;
        for (int b = 0; b < 4; b++)
            frame[b] = (unsigned char)(magic >> (8 * b));
        frame[4] = (unsigned char)version;
        frame[5] = (unsigned char)(version >> 8);
        frame[6] = (unsigned char)type;
        frame[7] = (unsigned char)(type >> 8);
        for (int b = 0; b < 8; b++) {
            frame[16 + b] = (unsigned char)(id >> (8 * b));
            frame[24 + b] = (unsigned char)(len >> (8 * b));
        }
        if (len) {
            frame[CF_WIRE_HDR] = 5; /* code 5, little-endian */
            memcpy(frame + CF_WIRE_HDR + CF_WIRE_ERROR_FIXED, msg, sizeof(msg) - 1);
        }
        size_t take = CF_WIRE_HDR + (size_t)len;
        if (take > n - off)
            take = n - off;
        memcpy(out + off, frame, take);
        off += take;
    }
}

/* arg: a uint64 size. Returns that many lookalike() bytes. */
static void p_lookalike(task_t *t)
{
    const uint64_t *n = task_arg(t, NULL);
    unsigned char *p = malloc(*n);
    if (!p) {
        task_raise(t, 1, "no memory");
        return;
    }
    lookalike(p, *n);
    task_return(t, p, *n, free);
}

/* ---------------------------------------------------------- idle reuse, on demand */

/*
 * PPE-06 (CPython test_idle_process_reuse_one): three sequential
 * submit-then-result calls on a 5-worker process pool run in one process
 * (the same pid), and, workers starting on demand (the header), the pool
 * has 1 worker after each.
 */
START_TEST(test_peers_idle_process_reuse_one)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 5});
    ck_assert_ptr_nonnull(ex);
    pid_t first = 0;
    for (int i = 0; i < 3; i++) {
        future_t *f = executor_submit(ex, p_pid, NULL, 0);
        ck_assert_ptr_nonnull(f);
        pid_t pid = (pid_t)result_i64(f);
        future_unref(f);
        if (i == 0)
            first = pid;
        ck_assert_int_eq(pid, first);
        executor_stats_t st;
        ck_assert_int_eq(executor_stats(ex, &st), 0);
        ck_assert_uint_eq(st.workers, 1);
    }
    executor_free(ex);
    expect_gone(first);
    end_check();
}
END_TEST

/*
 * PPE-07 (CPython test_idle_process_reuse_multiple): waited and unwaited
 * submits interleaved (W, U, W, U, W, U) on 5 workers use at most 3
 * processes: only a waited submit can find every started worker busy.
 */
START_TEST(test_peers_idle_process_reuse_multiple)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 5});
    ck_assert_ptr_nonnull(ex);
    int idx[6] = {0, 1, 2, 3, 4, 5};
    future_t *fs[6];
    for (int i = 0; i < 6; i++) {
        fs[i] = executor_submit(ex, p_pid, &idx[i], sizeof(int));
        ck_assert_ptr_nonnull(fs[i]);
        if (i % 2 == 0)
            result_i64(fs[i]);
    }
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_le(st.workers, 3);
    pid_t pids[6];
    int distinct = 0;
    for (int i = 0; i < 6; i++) {
        pids[i] = (pid_t)result_i64(fs[i]);
        future_unref(fs[i]);
        bool seen = false;
        for (int j = 0; j < i; j++)
            seen |= pids[j] == pids[i];
        distinct += !seen;
    }
    ck_assert_int_le(distinct, 3);
    executor_stats(ex, &st);
    ck_assert_uint_le(st.workers, 3);
    executor_free(ex);
    for (int i = 0; i < 6; i++)
        expect_gone(pids[i]);
    end_check();
}
END_TEST

static bool running_3(void *ex)
{
    executor_stats_t st;
    executor_stats(ex, &st);
    return st.running == 3;
}

/*
 * SHUT-15 (CPython test_processes_terminate, on-demand start): three tasks
 * blocked on a gate in a 5-worker pool give exactly 3 worker processes
 * (executor_stats, 3 distinct pids, 3 children of the fork server); after
 * shutdown(wait=true) the pool counts 0 workers and the 3 are gone.
 */
START_TEST(test_peers_processes_terminate)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 5});
    ck_assert_ptr_nonnull(ex);
    int idx[3] = {0, 1, 2};
    future_t *fs[3];
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(fs[i] = executor_submit(ex, p_gated, &idx[i], sizeof(int)));
    wait_started(3);
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.workers, 3);
    ck_assert(
        eventually(running_3, ex, T_LONG)); /* the manager sees starts a moment late */
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        pids[i] = atomic_load(&shm->pid[i]);
        for (int j = 0; j < i; j++)
            ck_assert_int_ne(pids[i], pids[j]);
    }
    ck_assert_int_eq(children_of(atomic_load(&shm->fs_pid)), 3);
    atomic_store(&shm->gate, 1);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.workers, 0);
    for (int i = 0; i < 3; i++) {
        int64_t v = -1;
        ck_assert_int_eq(future_result_i64(fs[i], 0, &v), 0); /* done: shutdown waited */
        ck_assert_int_eq(v, i);
        future_unref(fs[i]);
        expect_gone(pids[i]);
    }
    executor_free(ex);
    end_check();
}
END_TEST

/* ---------------------------------------------------------- recycling at shutdown */

/*
 * PPE-13 (CPython test_max_tasks_early_shutdown): 3 workers,
 * max_tasks_per_child 1, six tasks, then shutdown(wait=true) at once: every
 * result is i * i when it returns, each task in its own worker.
 */
START_TEST(test_peers_max_tasks_early_shutdown)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 3, .max_tasks_per_child = 1});
    ck_assert_ptr_nonnull(ex);
    int idx[6];
    future_t *fs[6];
    for (int i = 0; i < 6; i++) {
        idx[i] = i;
        ck_assert_ptr_nonnull(fs[i] =
                                  executor_submit(ex, p_square, &idx[i], sizeof(int)));
    }
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    for (int i = 0; i < 6; i++) {
        int64_t v = -1;
        ck_assert_int_eq(future_result_i64(fs[i], 0, &v), 0);
        ck_assert_int_eq(v, (int64_t)i * i);
        future_unref(fs[i]);
        for (int j = 0; j < i; j++)
            ck_assert_int_ne(atomic_load(&shm->pid[i]), atomic_load(&shm->pid[j]));
    }
    executor_free(ex);
    end_check();
}
END_TEST

/*
 * PPE-12 [diverges] (CPython gh-119592 drop_reference, gh-152967): C has
 * no garbage-collected executor; executor_free is shutdown(wait=true). One
 * worker, max_tasks_per_child 1: task 0 returns only once the test is inside
 * executor_free (p_after), so its worker leaves, and the three queued
 * tasks each need a new one, while free waits: free returns with every
 * queued task done with its result, each in its own process.
 */
START_TEST(test_peers_free_during_recycle)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 1, .max_tasks_per_child = 1});
    ck_assert_ptr_nonnull(ex);
    struct after a = {.idx = 0, .tid = self_tid(), .crash = 0};
    future_t *fs[4];
    ck_assert_ptr_nonnull(fs[0] = executor_submit(ex, p_after, &a, sizeof(a)));
    int idx[4] = {0, 1, 2, 3};
    for (int i = 1; i < 4; i++)
        ck_assert_ptr_nonnull(fs[i] =
                                  executor_submit(ex, p_square, &idx[i], sizeof(int)));
    wait_started(1);
    atomic_store(&shm->gate, 1);
    executor_free(ex);
    for (int i = 0; i < 4; i++) {
        int64_t v = -1;
        ck_assert_int_eq(future_result_i64(fs[i], 0, &v), 0);
        ck_assert_int_eq(v, i == 0 ? 0 : (int64_t)i * i);
        future_unref(fs[i]);
        for (int j = 0; j < i; j++)
            ck_assert_int_ne(atomic_load(&shm->pid[i]), atomic_load(&shm->pid[j]));
    }
    end_check();
}
END_TEST

/*
 * SHUT-19 (_i 0: 2 workers) and SHUT-20 (_i 1: 4 workers) (CPython
 * gh-132969): max_tasks_per_child 1, a map of good, failing, good (the last
 * held on a gate); the results are read until the first error (their sum
 * is 1), then shutdown(wait=false) returns; the last task still succeeds
 * (on a worker that may have to be forked after the shutdown), the map
 * ends, and executor_free returns.
 */
START_TEST(test_peers_shutdown_nowait_max_tasks)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = _i == 0 ? 2 : 4, .max_tasks_per_child = 1});
    ck_assert_ptr_nonnull(ex);
    int vals[3] = {0, 1, 2};
    const void *args[3] = {&vals[0], &vals[1], &vals[2]};
    size_t lens[3] = {sizeof(int), sizeof(int), sizeof(int)};
    executor_map_t *m = executor_map(ex, p_good_fail_good, args, lens, 3, NULL);
    ck_assert_ptr_nonnull(m);
    int64_t sum = 0;
    const void *data;
    size_t len;
    int rc;
    while ((rc = executor_map_next(m, &data, &len)) == 0) {
        int64_t v;
        ck_assert_uint_eq(len, sizeof(v));
        memcpy(&v, data, sizeof(v));
        sum += v;
    }
    ck_assert_int_eq(rc, FUT_ETASK);
    ck_assert_int_eq(sum, 1);
    ck_assert_int_eq(executor_shutdown(ex, false, false), 0);
    atomic_store(&shm->gate, 1);
    ck_assert_int_eq(executor_map_next(m, &data, &len), 0);
    int64_t v;
    ck_assert_uint_eq(len, sizeof(v));
    memcpy(&v, data, sizeof(v));
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(executor_map_next(m, &data, &len), FUT_EOF);
    executor_map_free(m);
    executor_free(ex);
    end_check();
}
END_TEST

/* ---------------------------------------------------------- terminate_workers */

/*
 * PPE-17, PPE-18 (CPython test_kill_workers, test_force_shutdown_workers,
 * test_force_shutdown_workers_invalid_op): a signal that is none (9999, -1)
 * is FUT_EINVAL and changes nothing; SIGKILL then stops the two running
 * tasks, which never get past their gate and fail FUT_EWORKER with signal
 * 9; the three queued fail FUT_EBROKEN at once; later submits fail
 * FUT_EBROKEN.
 */
START_TEST(test_peers_kill_workers)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    ck_assert_ptr_nonnull(ex);
    int idx[5] = {0, 1, 2, 3, 4};
    future_t *run[2], *queued[3];
    for (int i = 0; i < 2; i++)
        ck_assert_ptr_nonnull(run[i] =
                                  executor_submit(ex, p_gated, &idx[i], sizeof(int)));
    wait_started(2);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(
            queued[i] = executor_submit(ex, p_square, &idx[2 + i], sizeof(int)));
    ck_assert_int_eq(executor_terminate_workers(ex, 9999), FUT_EINVAL);
    ck_assert_int_eq(executor_terminate_workers(ex, -1), FUT_EINVAL);
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert(!st.broken);
    ck_assert(!future_done(run[0]) && !future_done(run[1]));
    ck_assert_int_eq(executor_terminate_workers(ex, SIGKILL), 0);
    for (int i = 0; i < 3; i++) {
        const future_error_t *e = NULL;
        ck_assert_int_eq(future_exception(queued[i], 0, &e), 0); /* failed at once */
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->status, FUT_EBROKEN);
        future_unref(queued[i]);
    }
    for (int i = 0; i < 2; i++) {
        const future_error_t *e = failure(run[i], FUT_EWORKER);
        ck_assert_int_eq(e->signal, SIGKILL);
        future_unref(run[i]);
    }
    ck_assert_int_eq(atomic_load(&shm->finished), 0);
    expect_submit_broken(ex);
    executor_stats(ex, &st);
    ck_assert(st.broken);
    executor_free(ex);
    end_check();
}
END_TEST

/*
 * PPE-19 (CPython test_force_shutdown_workers_dead_workers): on a
 * BREAK_POOL pool already broken by a worker's _exit(1), terminate with
 * SIGTERM, then a new such pool with SIGKILL, returns 0, and free returns.
 */
START_TEST(test_peers_terminate_broken_pool)
{
    begin();
    int sigs[2] = {SIGTERM, SIGKILL};
    for (int s = 0; s < 2; s++) {
        executor_t *ex = process_pool_executor_new(&(executor_options_t){
            .max_workers = 1, .on_worker_death = FUT_WORKER_BREAK_POOL});
        ck_assert_ptr_nonnull(ex);
        future_t *f = executor_submit(ex, p_exit1, NULL, 0);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(failure(f, FUT_EBROKEN)->exit_status, 1);
        future_unref(f);
        wait_broken(ex);
        ck_assert_int_eq(executor_terminate_workers(ex, sigs[s]), 0);
        executor_free(ex);
    }
    end_check();
}
END_TEST

/*
 * PPE-20 (CPython test_force_shutdown_workers_not_started_yet): terminate
 * (SIGTERM, then a new pool with SIGKILL) before any worker started
 * returns 0 and, as the header says, breaks the pool: no worker, later
 * submits fail FUT_EBROKEN; free returns.
 */
START_TEST(test_peers_terminate_not_started)
{
    begin();
    int sigs[2] = {SIGTERM, SIGKILL};
    for (int s = 0; s < 2; s++) {
        executor_t *ex =
            process_pool_executor_new(&(executor_options_t){.max_workers = 2});
        ck_assert_ptr_nonnull(ex);
        ck_assert_int_eq(executor_terminate_workers(ex, sigs[s]), 0);
        executor_stats_t st;
        executor_stats(ex, &st);
        ck_assert(st.broken);
        ck_assert_uint_eq(st.workers, 0);
        expect_submit_broken(ex);
        executor_free(ex);
    }
    end_check();
}
END_TEST

/* ---------------------------------------------------------- worker deaths */

static const fut_worker_death modes[2] = {FUT_WORKER_RESPAWN, FUT_WORKER_BREAK_POOL};

/*
 * BROKEN-03, BROKEN-06 (loky test_exited_child, CPython gh-139462), _i 0
 * RESPAWN, 1 BREAK_POOL: a task calls exit(42); its error has exit_status
 * 42, signal 0 and a message with "exited with code 42". RESPAWN: the next
 * task runs; BREAK_POOL: the error is FUT_EBROKEN and later submits fail so.
 */
START_TEST(test_peers_exit42)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 1, .on_worker_death = modes[_i]});
    ck_assert_ptr_nonnull(ex);
    future_t *f = executor_submit(ex, p_exit42, NULL, 0);
    ck_assert_ptr_nonnull(f);
    const future_error_t *e = failure(f, _i == 0 ? FUT_EWORKER : FUT_EBROKEN);
    ck_assert_int_eq(e->exit_status, 42);
    ck_assert_int_eq(e->signal, 0);
    ck_assert_msg(strstr(e->message, "exited with code 42") != NULL, "message: %s",
                  e->message);
    future_unref(f);
    if (_i == 0) {
        int i = 6;
        ck_assert_ptr_nonnull(f = executor_submit(ex, p_square, &i, sizeof(i)));
        ck_assert_int_eq(result_i64(f), 36);
        future_unref(f);
    } else {
        wait_broken(ex);
        expect_submit_broken(ex);
    }
    executor_free(ex);
    end_check();
}
END_TEST

/*
 * BROKEN-01, BROKEN-05 (CPython and loky test_killed_child), _i 0
 * RESPAWN, 1 BREAK_POOL: SIGTERM from outside to the worker of a running
 * task, another task queued behind it. The running task's error has
 * signal 15, exit_status -1 and "killed by signal 15" in its message.
 * RESPAWN: it is FUT_EWORKER, the queued task and a later one run.
 * BREAK_POOL: FUT_EBROKEN, the queued task too, later submits fail so.
 */
START_TEST(test_peers_sigterm_busy)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 1, .on_worker_death = modes[_i]});
    ck_assert_ptr_nonnull(ex);
    int idx[3] = {0, 1, 2};
    future_t *f = executor_submit(ex, p_gated, &idx[0], sizeof(int));
    future_t *g = executor_submit(ex, p_square, &idx[1], sizeof(int));
    ck_assert(f && g);
    wait_started(1);
    ck_assert_int_eq(kill(atomic_load(&shm->pid[0]), SIGTERM), 0);
    const future_error_t *e = failure(f, _i == 0 ? FUT_EWORKER : FUT_EBROKEN);
    ck_assert_int_eq(e->signal, SIGTERM);
    ck_assert_int_eq(e->exit_status, -1);
    ck_assert_msg(strstr(e->message, "killed by signal 15") != NULL, "message: %s",
                  e->message);
    if (_i == 0) {
        ck_assert_int_eq(result_i64(g), 1);
        future_t *h = executor_submit(ex, p_square, &idx[2], sizeof(int));
        ck_assert_ptr_nonnull(h);
        ck_assert_int_eq(result_i64(h), 4);
        future_unref(h);
        executor_stats_t st;
        executor_stats(ex, &st);
        ck_assert(!st.broken);
    } else {
        failure(g, FUT_EBROKEN);
        expect_submit_broken(ex);
    }
    future_unref(f);
    future_unref(g);
    ck_assert_int_eq(atomic_load(&shm->finished), 0);
    executor_free(ex);
    end_check();
}
END_TEST

/*
 * BROKEN-09 (pebble test_process_pool_map_broken_pool), _i 0 RESPAWN, 1
 * BREAK_POOL: a map of 8 items on one worker; once items 0-2 were read,
 * item 3 kills its worker (SIGKILL). BREAK_POOL: items 3-7 fail
 * FUT_EBROKEN, then FUT_EOF; the pool is broken. RESPAWN: only item 3
 * fails, FUT_EWORKER with signal 9; items 4-7 give their results, then
 * FUT_EOF. No call hangs.
 */
START_TEST(test_peers_death_mid_map)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 1, .on_worker_death = modes[_i]});
    ck_assert_ptr_nonnull(ex);
    int vals[MAP_N];
    const void *args[MAP_N];
    size_t lens[MAP_N];
    for (int i = 0; i < MAP_N; i++) {
        vals[i] = i;
        args[i] = &vals[i];
        lens[i] = sizeof(int);
    }
    executor_map_t *m = executor_map(ex, p_map_item, args, lens, MAP_N, NULL);
    ck_assert_ptr_nonnull(m);
    const void *data;
    size_t len;
    for (int i = 0; i < MAP_N; i++) {
        if (i == MAP_DIES)
            atomic_store(&shm->gate, 1);
        int rc = executor_map_next(m, &data, &len);
        if (i < MAP_DIES || (_i == 0 && i > MAP_DIES)) {
            ck_assert_msg(rc == 0, "item %d: %s", i, future_strerror(rc));
            int64_t v;
            ck_assert_uint_eq(len, sizeof(v));
            memcpy(&v, data, sizeof(v));
            ck_assert_int_eq(v, i);
        } else if (_i == 0) {
            ck_assert_int_eq(rc, FUT_EWORKER);
            ck_assert_int_eq(executor_map_error(m)->signal, SIGKILL);
        } else {
            ck_assert_msg(rc == FUT_EBROKEN, "item %d: %s", i, future_strerror(rc));
        }
    }
    ck_assert_int_eq(executor_map_next(m, &data, &len), FUT_EOF);
    executor_map_free(m);
    if (_i == 1)
        expect_submit_broken(ex);
    executor_free(ex);
    end_check();
}
END_TEST

/*
 * DEADLOCK-13 (CPython test_shutdown_deadlock), _i 0 RESPAWN, 1
 * BREAK_POOL: a task crashes (SIGSEGV) after shutdown(wait=true) was
 * called: the test opens the task's gate right before the call, and the
 * task crashes only once the test thread sleeps, which it does only inside
 * that call (p_after: the one ordering assumption is that shutdown's wait
 * sleeps in the kernel; if it never did, the crash would come 10 s after
 * the gate, still after the call began). Shutdown returns; the future fails
 * FUT_EWORKER with signal 11 (RESPAWN) or FUT_EBROKEN (BREAK_POOL).
 */
START_TEST(test_peers_crash_during_shutdown)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 2, .on_worker_death = modes[_i]});
    ck_assert_ptr_nonnull(ex);
    struct after a = {.idx = 0, .tid = self_tid(), .crash = SIGSEGV};
    future_t *f = executor_submit(ex, p_after, &a, sizeof(a));
    ck_assert_ptr_nonnull(f);
    wait_started(1);
    atomic_store(&shm->gate, 1);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    ck_assert(future_done(f));
    const future_error_t *e = failure(f, _i == 0 ? FUT_EWORKER : FUT_EBROKEN);
    ck_assert_int_eq(e->signal, SIGSEGV);
    future_unref(f);
    executor_free(ex);
    end_check();
}
END_TEST

/* ---------------------------------------------------------- both kinds */

static void deadline_cb(future_t *f, void *ud)
{
    (void)ud;
    const future_error_t *e = NULL;
    int rc = future_exception(f, 0, &e);
    atomic_store(&shm->cb_status, rc != 0 ? rc : e ? e->status : 0);
    atomic_fetch_add(&shm->cb_calls, 1);
}

static bool cb_ran(void *arg)
{
    (void)arg;
    return atomic_load(&shm->cb_calls) > 0;
}

/*
 * PEBBLE-11 (pebble test_process_pool_timeout_callback), over both kinds:
 * a done-callback added to a task that runs past its own 0.1 s limit runs
 * once, and sees FUT_EDEADLINE.
 */
START_TEST(test_peers_deadline_callback)
{
    begin();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    future_t *f = executor_submit_with(ex, t_until_stop, NULL, 0,
                                       &(submit_options_t){.timeout = 0.1});
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(future_add_done_callback(f, deadline_cb, NULL), 0);
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), FUT_EDEADLINE);
    ck_assert(eventually(cb_ran, NULL, T_LONG));
    ck_assert_int_eq(atomic_load(&shm->cb_status), FUT_EDEADLINE);
    future_unref(f);
    executor_free(ex);
    ck_assert_int_eq(atomic_load(&shm->cb_calls), 1);
    end_check();
}
END_TEST

/*
 * PEBBLE-05 [analog] (pebble test_process_pool_error_returned), over both
 * kinds: a result whose bytes are ERROR, INITFAIL, NOTE and RESULT frames
 * (wire.h's headers and payloads) is a plain result, byte for byte, at
 * sizes that fit a process pool's shared answer record (40: one whole ERROR
 * frame; 56) and that
 * travel in a frame (57, 4096, 2 MiB): nothing on the wire is in-band.
 */
START_TEST(test_peers_frame_lookalike_result)
{
    begin();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    static const uint64_t sizes[] = {CF_WIRE_HDR + CF_WIRE_ERROR_FIXED + 4, 56, 57, 4096,
                                     2u << 20};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        future_t *f = executor_submit(ex, p_lookalike, &sizes[s], sizeof(sizes[s]));
        ck_assert_ptr_nonnull(f);
        const void *data = NULL;
        size_t len = 0;
        ck_assert_int_eq(future_result(f, T_LONG, &data, &len), 0);
        ck_assert_uint_eq(len, sizes[s]);
        unsigned char *want = malloc(sizes[s]);
        ck_assert_ptr_nonnull(want);
        lookalike(want, sizes[s]);
        ck_assert_msg(memcmp(data, want, sizes[s]) == 0, "%zu bytes changed",
                      (size_t)len);
        free(want);
        future_unref(f);
    }
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.failed, 0);
    executor_free(ex);
    end_check();
}
END_TEST

/*
 * The failures of LOKY-30: a task error, a deadline, on a process pool a
 * segfault (RESPAWN) and a pool broken by one (BREAK_POOL), and a failing
 * initializer (a broken pool on both kinds).
 */
static void failures(int k)
{
    executor_t *ex = kind_new(k, (executor_options_t){.max_workers = 2});
    int code = 5;
    future_t *f = executor_submit(ex, t_raise, &code, sizeof(code));
    ck_assert_ptr_nonnull(f);
    failure(f, FUT_ETASK);
    future_unref(f);
    f = executor_submit_with(ex, t_until_stop, NULL, 0,
                             &(submit_options_t){.timeout = 0.05});
    ck_assert_ptr_nonnull(f);
    failure(f, FUT_EDEADLINE);
    future_unref(f);
    if (k == 1) {
        f = executor_submit(ex, p_segv, NULL, 0);
        ck_assert_ptr_nonnull(f);
        failure(f, FUT_EWORKER);
        future_unref(f);
    }
    executor_free(ex);

    ex = kind_new(k, (executor_options_t){.max_workers = 2, .initializer = p_init_fail});
    f = executor_submit(ex, t_nothing, NULL, 0);
    if (f) { /* or refused at once: the pool broke first */
        failure(f, FUT_EBROKEN);
        future_unref(f);
    }
    wait_broken(ex);
    expect_submit_broken(ex);
    executor_free(ex);

    if (k == 1) {
        ex = kind_new(k, (executor_options_t){.max_workers = 1,
                                              .on_worker_death = FUT_WORKER_BREAK_POOL});
        f = executor_submit(ex, p_segv, NULL, 0);
        ck_assert_ptr_nonnull(f);
        failure(f, FUT_EBROKEN);
        future_unref(f);
        expect_submit_broken(ex);
        executor_free(ex);
    }
}

/*
 * LOKY-30 [analog] (loky test_error_in_nested_call_keeps_resource_tracker_silent),
 * over both kinds: fd 2 points at a temporary file while the pools are
 * made (their fork server and workers inherit it), fail as failures()
 * says, and are freed: the file is empty.
 */
START_TEST(test_peers_quiet_stderr)
{
    begin();
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fileno(tmp), 2), 2);
    failures(_i);
    fflush(stderr);
    ck_assert_int_eq(dup2(saved, 2), 2);
    close(saved);
    struct stat sb;
    ck_assert_int_eq(fstat(fileno(tmp), &sb), 0);
    char head[256] = "";
    if (sb.st_size > 0) {
        rewind(tmp);
        size_t n = fread(head, 1, sizeof(head) - 1, tmp);
        head[n] = '\0';
    }
    fclose(tmp);
    ck_assert_msg(sb.st_size == 0, "%s: %lld bytes on stderr: %s", ex_kinds[_i].name,
                  (long long)sb.st_size, head);
    end_check();
}
END_TEST

Suite *make_suite(void)
{
    Suite *s = suite_create("peers");
    TCase *tc = new_tcase(s, "core");
    tcase_add_test(tc, test_peers_idle_process_reuse_one);
    tcase_add_test(tc, test_peers_idle_process_reuse_multiple);
    tcase_add_test(tc, test_peers_processes_terminate);
    tcase_add_loop_test(tc, test_peers_deadline_callback, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_peers_frame_lookalike_result, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_peers_quiet_stderr, 0, N_EX_KINDS);
    tc = new_tcase(s, "recycling");
    tcase_add_test(tc, test_peers_max_tasks_early_shutdown);
    tcase_add_test(tc, test_peers_free_during_recycle);
    tcase_add_loop_test(tc, test_peers_shutdown_nowait_max_tasks, 0, 2);
    tc = new_tcase(s, "terminate");
    tcase_add_test(tc, test_peers_kill_workers);
    tcase_add_test(tc, test_peers_terminate_broken_pool);
    tcase_add_test(tc, test_peers_terminate_not_started);
    tc = new_tcase(s, "deaths");
    tcase_add_loop_test(tc, test_peers_exit42, 0, 2);
    tcase_add_loop_test(tc, test_peers_sigterm_busy, 0, 2);
    tcase_add_loop_test(tc, test_peers_death_mid_map, 0, 2);
    tcase_add_loop_test(tc, test_peers_crash_during_shutdown, 0, 2);
    return s;
}
