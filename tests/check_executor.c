/*
 * check_executor: the conformance suite. Every test here is written once
 * against executor_t and runs over every executor kind (the `kinds` table,
 * chosen by Check's loop index _i), as libevent runs its regress binary once
 * per backend.
 *
 * Rules that keep the suite valid for kinds that copy arguments to another
 * process:
 *  - task arguments are real bytes (a pointer to data and its length), never
 *    bare pointer values, and tasks answer through their results;
 *  - tasks that must be held use "xgates": flags in MAP_SHARED memory mapped
 *    before the executor is created, so a forked worker sees them too;
 *  - counts of what ran come from executor_stats, read at deterministic
 *    points (after shutdown(wait), or while the tasks are held on xgates).
 * Done-callbacks always run in the caller's process, so they may use plain
 * gates and pointers.
 */
#include "testutil.h"


#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---------------------------------------------------------- xgates */

#define N_XGATES 64
#define N_XLOG 16 /* start log entries after the gates (x_logged) */
static _Atomic int *xgates_p; /* MAP_SHARED: survives fork */

/*
 * The xgates' page: anonymous and shared, so a forked worker sees it; or,
 * with CFUTURES_TEST_XGATES (tests/mpi_pool.sh, for the MPI kind), a file
 * that every rank of the job maps, its task processes when a task first
 * looks at a gate.
 */
static _Atomic int *xgates_get(void)
{
    if (xgates_p)
        return xgates_p;
    const char *path = getenv("CFUTURES_TEST_XGATES");
    int fd = path ? open(path, O_RDWR | O_CREAT, 0600) : -1;
    if (path && (fd < 0 || ftruncate(fd, 4096) != 0))
        abort(); /* gates the ranks do not share: every gated case would hang */
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                   MAP_SHARED | (fd < 0 ? MAP_ANONYMOUS : 0), fd, 0);
    if (fd >= 0)
        close(fd);
    if (p == MAP_FAILED)
        abort();
    xgates_p = p;
    return xgates_p;
}
#define xgates (xgates_get())

/* Maps (once) and closes every xgate. Call before creating the executor. */
static void xgates_reset(void)
{
    for (int i = 0; i < N_XGATES + 1 + N_XLOG; i++)
        atomic_store(&xgates[i], 0);
}

static void xgate_open(int i)
{
    atomic_store(&xgates[i], 1);
}

static bool xgate_is_open(void *i)
{
    return atomic_load(&xgates[(intptr_t)i]) != 0;
}

/* The argument of x_gated: which xgate to wait for and what to return. */
struct xarg {
    int32_t gate;
    int32_t pad; /* not 0: raised as the error code instead of returning */
    int64_t value;
};

/* Waits for its xgate (or task_should_stop), then returns value as i64 (or
   raises pad). */
static void x_gated(task_t *t)
{
    size_t len;
    const struct xarg *a = task_arg(t, &len);
    if (!a || len != sizeof(*a)) {
        task_raise(t, EINVAL, "x_gated: bad argument");
        return;
    }
    double end = now_s() + T_LONG;
    while (!atomic_load(&xgates[a->gate]) && !task_should_stop(t) && now_s() < end)
        usleep(100);
    if (a->pad)
        task_raise(t, a->pad, "gated raise");
    else
        task_return_i64(t, a->value);
}

/* ---------------------------------------------------------- canned tasks */

struct pow_arg {
    int64_t base, exp;
};

static void x_pow(task_t *t)
{
    const struct pow_arg *a = task_arg(t, NULL);
    int64_t r = 1;
    for (int64_t i = 0; i < a->exp; i++)
        r *= a->base;
    task_return_i64(t, r);
}

static void x_sq(task_t *t)
{
    const int64_t *v = task_arg(t, NULL);
    task_return_i64(t, *v * *v);
}

#define DIV_CODE 33
/* 100 / the argument; raises DIV_CODE for 0 (Python: ZeroDivisionError). */
static void x_div(task_t *t)
{
    const int64_t *v = task_arg(t, NULL);
    if (*v == 0)
        task_raise(t, DIV_CODE, "division by zero");
    else
        task_return_i64(t, 100 / *v);
}

static void x_str(task_t *t)
{
    const int64_t *v = task_arg(t, NULL);
    task_return_str(t, "%lld", (long long)*v);
}

/* The task's own TimeoutError: an ordinary task error (MAP-05). */
static void x_raise_timedout(task_t *t)
{
    task_raise(t, ETIMEDOUT, "the task timed out by itself");
}

/* A "falsy" error: code 0, empty message (EXE-06). */
static void x_raise_falsy(task_t *t)
{
    task_raise(t, 0, "%s", "");
}

static void x_abs(task_t *t)
{
    const int64_t *v = task_arg(t, NULL);
    task_return_i64(t, *v < 0 ? -*v : *v);
}

/* Initializers: state set per worker (thread or process). */
static _Thread_local char init_state[32];

static void x_init_set(task_t *t)
{
    size_t len;
    const char *s = task_arg(t, &len);
    if (len >= sizeof(init_state))
        len = sizeof(init_state) - 1;
    memcpy(init_state, s, len);
    init_state[len] = '\0';
}

static void x_init_read(task_t *t)
{
    task_return_str(t, "%s", init_state);
}

/* The initarg of test_executor_initializer_gets_pointer: only its address counts. */
static const char init_token[] = "token";

/* Records whether its argument is init_token itself, and its length. */
static void x_init_where(task_t *t)
{
    size_t len = 99;
    const void *p = task_arg(t, &len);
    const char *what = p == init_token ? "token" : p ? "other" : "null";
    snprintf(init_state, sizeof(init_state), "%s %zu", what, len);
}

/* Waits for the xgate named by its initarg, then fails (INIT-02). */
static void x_init_fail(task_t *t)
{
    const int32_t *g = task_arg(t, NULL);
    double end = now_s() + T_LONG;
    while (!atomic_load(&xgates[*g]) && now_s() < end)
        usleep(100);
    task_raise(t, 5, "error in initializer");
}

/* ---------------------------------------------------------- helpers */

static executor_stats_t stats_of(executor_t *ex)
{
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    return st;
}

struct want_st {
    executor_t *ex;
    long running, queued, completed; /* -1: any */
};

static bool stats_match(void *p)
{
    struct want_st *w = p;
    executor_stats_t st = stats_of(w->ex);
    return (w->running < 0 || st.running == (size_t)w->running) &&
           (w->queued < 0 || st.queued == (size_t)w->queued) &&
           (w->completed < 0 || st.completed == (size_t)w->completed);
}

/* Waits (T_LONG) until the executor shows these counts (-1: any). */
static void wait_stats(executor_t *ex, long running, long queued, long completed)
{
    struct want_st w = {ex, running, queued, completed};
    ck_assert_msg(eventually(stats_match, &w, T_LONG),
                  "stats never reached running=%ld queued=%ld completed=%ld", running,
                  queued, completed);
}

static int64_t result_i64(future_t *f)
{
    int64_t v = -1;
    int rc = future_result_i64(f, T_LONG, &v);
    ck_assert_msg(rc == 0, "future_result_i64: %s", future_strerror(rc));
    return v;
}

static future_t *submit_ok(executor_t *ex, task_fn fn, const void *arg, size_t len)
{
    future_t *f = executor_submit(ex, fn, arg, len);
    ck_assert_msg(f != NULL, "executor_submit failed: errno %d", errno);
    return f;
}

static future_t *submit_gated(executor_t *ex, struct xarg *a, int gate, int64_t value)
{
    a->gate = gate;
    a->pad = 0;
    a->value = value;
    return submit_ok(ex, x_gated, a, sizeof(*a));
}

static int64_t map_next_i64(executor_map_t *m)
{
    const void *data = NULL;
    size_t len = 0;
    int rc = executor_map_next(m, &data, &len);
    ck_assert_msg(rc == 0, "executor_map_next: %s", future_strerror(rc));
    ck_assert_uint_eq(len, sizeof(int64_t));
    int64_t v;
    memcpy(&v, data, sizeof(v));
    return v;
}

/* =================================================================== core */

/* EXE-01: submit(pow, 2, 8).result() == 256 */
START_TEST(test_executor_submit_result)
{
    executor_t *ex = kind_new(_i, (executor_options_t){0});
    struct pow_arg a = {2, 8};
    future_t *f = submit_ok(ex, x_pow, &a, sizeof(a));
    ck_assert_int_eq(result_i64(f), 256);
    ck_assert(future_done(f));
    ck_assert(!future_cancelled(f));
    future_unref(f);
    executor_free(ex);
}
END_TEST

/* EXE-02: no callable is TypeError; the argument bytes arrive unchanged */
START_TEST(test_executor_submit_args_unchanged)
{
    executor_t *ex = kind_new(_i, (executor_options_t){0});
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, NULL, NULL, 0));
    ck_assert_int_eq(errno, EINVAL);

    unsigned char buf[300];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 7 + 1);
    future_t *f = submit_ok(ex, t_echo, buf, sizeof(buf));
    const void *data;
    size_t len;
    ck_assert_int_eq(future_result(f, T_LONG, &data, &len), 0);
    ck_assert_uint_eq(len, sizeof(buf));
    ck_assert(memcmp(data, buf, sizeof(buf)) == 0);
    future_unref(f);

    /* Borrowed (submit_options_t.borrow_arg): the same bytes, on every kind. */
    unsigned char *big = bytes_pattern(100000, 5);
    const submit_options_t borrow = {.borrow_arg = true};
    future_t *fb[2] = {executor_submit_with(ex, t_echo, buf, sizeof(buf), &borrow),
                       executor_submit_with(ex, t_echo, big, 100000, &borrow)};
    for (int k = 0; k < 2; k++) {
        expect_bytes(fb[k], k ? big : buf, k ? 100000 : sizeof(buf));
        future_unref(fb[k]);
    }
    free(big);

    /* arg_len 0: an empty argument gives an empty echo. */
    f = submit_ok(ex, t_echo, NULL, 0);
    ck_assert_int_eq(future_result(f, T_LONG, &data, &len), 0);
    ck_assert_uint_eq(len, 0);
    future_unref(f);

    /* A task that answers nothing completes with an empty result. */
    f = submit_ok(ex, t_nothing, NULL, 0);
    data = buf;
    len = 99;
    ck_assert_int_eq(future_result(f, T_LONG, &data, &len), 0);
    ck_assert_ptr_null(data);
    ck_assert_uint_eq(len, 0);
    future_unref(f);
    executor_free(ex);
}
END_TEST

/* EXE-03 [diverges]: max_workers < 0 is EINVAL, 0 means default */
START_TEST(test_executor_max_workers_negative)
{
    errno = 0;
    ck_assert_ptr_null(ex_kinds[_i].make(&(executor_options_t){.max_workers = -1}));
    ck_assert_int_eq(errno, EINVAL);
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 0});
    int64_t v = 41;
    future_t *f = submit_ok(ex, t_add1, &v, sizeof(v));
    ck_assert_int_eq(result_i64(f), 42);
    future_unref(f);
    executor_free(ex);
    /* NULL options: defaults too. */
    ex = ex_kinds[_i].make(NULL);
    ck_assert_ptr_nonnull(ex);
    executor_free(ex);
}
END_TEST

/* EXE-04: map more items than workers, never iterate, shutdown returns */
START_TEST(test_executor_shutdown_with_unconsumed_map)
{
    int base = thread_baseline();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    int64_t vals[3] = {2, 2, 2};
    const void *args[3] = {&vals[0], &vals[1], &vals[2]};
    size_t lens[3] = {8, 8, 8};
    executor_map_t *m = executor_map(ex, x_str, args, lens, 3, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 3);
    executor_map_free(m);
    executor_free(ex);
    ck_assert(wait_threads(base));
}
END_TEST

/* EXE-05 [analog]: a future dropped at once: the task still runs, nothing leaks */
START_TEST(test_executor_no_stale_references)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    unsigned char big[4096];
    memset(big, 0xab, sizeof(big));
    for (int i = 0; i < 20; i++)
        future_unref(submit_ok(ex, t_echo, big, sizeof(big)));
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 20);
    ck_assert_uint_eq(st.failed, 0);
    executor_free(ex);
    /* LSan reports the result copies if the executor kept them. */
}
END_TEST

/* EXE-06 [dev]: a "falsy" error (code 0, empty message) still fails */
START_TEST(test_executor_falsy_error_propagates)
{
    executor_t *ex = kind_new(_i, (executor_options_t){0});
    future_t *f = submit_ok(ex, x_raise_falsy, NULL, 0);
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), FUT_ETASK);
    const future_error_t *err = NULL;
    ck_assert_int_eq(future_exception(f, 0, &err), 0);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, FUT_ETASK);
    ck_assert_int_eq(err->code, 0);
    ck_assert_str_eq(err->message, "");
    future_unref(f);
    executor_free(ex);
}
END_TEST

/* PEBBLE-04/32, DEADLOCK-07: a task error is the future's; the next task works */
START_TEST(test_executor_task_error_isolated)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    int code = 123;
    future_t *f = submit_ok(ex, t_raise, &code, sizeof(code));
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), FUT_ETASK);
    const future_error_t *err = NULL;
    ck_assert_int_eq(future_exception(f, 0, &err), 0);
    ck_assert_int_eq(err->code, 123);
    ck_assert_str_eq(err->message, "boom 123");
    ck_assert(!future_error_is_broken(err));
    future_unref(f);
    int64_t v = 1;
    f = submit_ok(ex, t_add1, &v, sizeof(v));
    ck_assert_int_eq(result_i64(f), 2);
    future_unref(f);
    executor_stats_t st = stats_of(ex);
    ck_assert(!st.broken);
    executor_free(ex);
}
END_TEST

/* PEBBLE-02: five futures on two workers */
START_TEST(test_executor_multiple_futures)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    int64_t vals[5] = {0, 0, 0, 0, 0};
    future_t *fs[5];
    for (int i = 0; i < 5; i++)
        fs[i] = submit_ok(ex, t_add1, &vals[i], sizeof(vals[i]));
    int64_t sum = 0;
    for (int i = 0; i < 5; i++) {
        sum += result_i64(fs[i]);
        future_unref(fs[i]);
    }
    ck_assert_int_eq(sum, 5);
    executor_free(ex);
}
END_TEST

/* =================================================================== map */

/* MAP-01: results in input order, with and without chunksize */
START_TEST(test_executor_map_in_order)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 3});
    struct pow_arg a[10];
    const void *args[10];
    size_t lens[10];
    for (int i = 0; i < 10; i++) {
        a[i] = (struct pow_arg){i, i};
        args[i] = &a[i];
        lens[i] = sizeof(a[i]);
    }
    size_t chunks[] = {0, 1, 3, 50};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        executor_map_t *m = executor_map(ex, x_pow, args, lens, 10,
                                         &(map_options_t){.chunksize = chunks[c]});
        ck_assert_ptr_nonnull(m);
        for (int i = 0; i < 10; i++) {
            int64_t want = 1;
            for (int j = 0; j < i; j++)
                want *= i;
            ck_assert_int_eq(map_next_i64(m), want);
        }
        ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
        ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
        executor_map_free(m);
    }
    executor_free(ex);
}
END_TEST

/* MAP-02, MAP-03 [decide: continue], PEBBLE-39: an error surfaces at its item */
START_TEST(test_executor_map_error_continues)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    int64_t d[4] = {2, 3, 0, 5};
    const void *args[4] = {&d[0], &d[1], &d[2], &d[3]};
    size_t lens[4] = {8, 8, 8, 8};
    size_t bufs[] = {0, 1, 2};
    for (size_t b = 0; b < 3; b++) {
        executor_map_t *m = executor_map(ex, x_div, args, lens, 4,
                                         &(map_options_t){.buffersize = bufs[b]});
        ck_assert_ptr_nonnull(m);
        ck_assert_int_eq(map_next_i64(m), 50);
        ck_assert_int_eq(map_next_i64(m), 33);
        ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_ETASK);
        ck_assert_int_eq(map_next_i64(m), 20);
        ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
        ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
        executor_map_free(m);
    }
    executor_free(ex);
}
END_TEST

/* MAP-05 [analog]: the task's own ETIMEDOUT is FUT_ETASK, not the map's timeout */
START_TEST(test_executor_map_task_timeout_is_task_error)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    const void *args[3] = {NULL, NULL, NULL};
    double timeouts[] = {0, T_LONG};
    for (int k = 0; k < 2; k++) {
        executor_map_t *m = executor_map(ex, x_raise_timedout, args, NULL, 3,
                                         &(map_options_t){.timeout = timeouts[k]});
        ck_assert_ptr_nonnull(m);
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_ETASK);
        ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
        executor_map_free(m);
    }
    future_t *f = submit_ok(ex, x_raise_timedout, NULL, 0);
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), FUT_ETASK);
    const future_error_t *err;
    ck_assert_int_eq(future_exception(f, 0, &err), 0);
    ck_assert_int_eq(err->code, ETIMEDOUT);
    future_unref(f);
    executor_free(ex);
}
END_TEST

/*
 * MAP-04: one deadline from the map call; items done in time are yielded,
 * then FUT_ETIMEDOUT; every item not started is cancelled and never runs;
 * later calls give FUT_EOF.
 */
START_TEST(test_executor_map_timeout)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    struct xarg a[4] = {{.gate = 1, .value = 10}, /* xgate 1 opens before the map */
                        {.gate = 0, .value = 11},
                        {.gate = 1, .value = 12},
                        {.gate = 1, .value = 13}};
    const void *args[4] = {&a[0], &a[1], &a[2], &a[3]};
    size_t lens[4] = {sizeof(a[0]), sizeof(a[1]), sizeof(a[2]), sizeof(a[3])};
    xgate_open(1);
    double t0 = now_s();
    executor_map_t *m =
        executor_map(ex, x_gated, args, lens, 4, &(map_options_t){.timeout = 0.5});
    ck_assert_ptr_nonnull(m);
    /* Item 0 done and item 1 held on the one worker: items 2, 3 queued. */
    wait_stats(ex, 1, 2, 1);
    ck_assert_int_eq(map_next_i64(m), 10);
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_ETIMEDOUT);
    double waited = now_s() - t0;
    ck_assert_msg(waited >= 0.45 && waited < T_LONG, "timed out after %.3f s", waited);
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.queued, 0); /* cancelled before next returned */
    xgate_open(0);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 2); /* items 0 and 1; 2 and 3 never ran */
    ck_assert_uint_eq(st.failed, 0);
    executor_map_free(m);
    executor_free(ex);
}
END_TEST

/* MAP-19, TPE-06: a timed-out map cancels its pending items; none starts */
START_TEST(test_executor_map_timeout_cancels_pending)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    struct xarg busy;
    future_t *first = submit_gated(ex, &busy, 0, 1);
    wait_stats(ex, 1, 0, 0);
    int64_t vals[2] = {2, 3};
    const void *args[2] = {&vals[0], &vals[1]};
    size_t lens[2] = {8, 8};
    executor_map_t *m =
        executor_map(ex, t_add1, args, lens, 2, &(map_options_t){.timeout = 0.01});
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_ETIMEDOUT);
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    executor_map_free(m);
    xgate_open(0);
    ck_assert_int_eq(result_i64(first), 1);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 1); /* only "first" ran */
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.queued, 0);
    future_unref(first);
    executor_free(ex);
}
END_TEST

/* MAP-06 [dev], PEBBLE-40: freeing a map mid-way cancels what has not started */
START_TEST(test_executor_map_free_cancels_pending)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    struct xarg a[5];
    const void *args[5];
    size_t lens[5];
    for (int i = 0; i < 5; i++) {
        a[i] = (struct xarg){.gate = i == 1 ? 0 : 1, .value = 100 + i};
        args[i] = &a[i];
        lens[i] = sizeof(a[i]);
    }
    xgate_open(1);
    executor_map_t *m = executor_map(ex, x_gated, args, lens, 5, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(map_next_i64(m), 100);
    wait_stats(ex, 1, 3, 1); /* item 1 held, 2..4 queued */
    executor_map_free(m);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.queued, 0);
    xgate_open(0);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 2); /* items 0 and 1 */
    ck_assert_uint_eq(st.failed, 0);
    executor_free(ex);
}
END_TEST

/* MAP-09 [dev]: buffersize 1, 2, 4, 8 over 4 items gives "0".."3" in order */
START_TEST(test_executor_map_buffersize_results)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    int64_t v[4] = {0, 1, 2, 3};
    const void *args[4] = {&v[0], &v[1], &v[2], &v[3]};
    size_t lens[4] = {8, 8, 8, 8};
    size_t bufs[] = {1, 2, 4, 8};
    for (size_t b = 0; b < 4; b++) {
        executor_map_t *m = executor_map(ex, x_str, args, lens, 4,
                                         &(map_options_t){.buffersize = bufs[b]});
        ck_assert_ptr_nonnull(m);
        for (int i = 0; i < 4; i++) {
            const void *data;
            size_t len;
            ck_assert_int_eq(executor_map_next(m, &data, &len), 0);
            char want[16];
            snprintf(want, sizeof(want), "%d", i);
            ck_assert_uint_eq(len, 2);
            ck_assert_str_eq(data, want);
        }
        ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
        executor_map_free(m);
    }
    executor_free(ex);
}
END_TEST

/* MAP-13 [dev], MAP-14, PEBBLE-35: empty input is over at once; one item works */
START_TEST(test_executor_map_empty_and_single)
{
    executor_t *ex = kind_new(_i, (executor_options_t){0});
    executor_map_t *m =
        executor_map(ex, t_add1, NULL, NULL, 0, &(map_options_t){.buffersize = 2});
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    executor_map_free(m);
    m = executor_map(ex, t_add1, NULL, NULL, 0, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    executor_map_free(m);
    int64_t v = 6;
    const void *args[1] = {&v};
    size_t lens[1] = {8};
    m = executor_map(ex, t_add1, args, lens, 1, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(map_next_i64(m), 7);
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    executor_map_free(m);
    executor_free(ex);
}
END_TEST

/* ================================================================= limits */

/* MAP-15 [dev]: buffersize B and no consumer: exactly B tasks run */
START_TEST(test_executor_map_buffersize_no_consumer)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 4});
    int64_t v[10];
    const void *args[10];
    size_t lens[10];
    for (int i = 0; i < 10; i++) {
        v[i] = i;
        args[i] = &v[i];
        lens[i] = 8;
    }
    executor_map_t *m =
        executor_map(ex, t_add1, args, lens, 10, &(map_options_t){.buffersize = 2});
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 2);
    ck_assert_uint_eq(st.failed, 0);
    executor_map_free(m);
    executor_free(ex);
}
END_TEST

/*
 * MAP-16: one worker, buffersize 3 over 10 items: exactly 3 in flight; each
 * result consumed submits exactly one more. SHUT-10: items not submitted by
 * the time of shutdown give FUT_ESHUTDOWN; the map goes on to its end.
 */
START_TEST(test_executor_map_buffersize_refill)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    struct xarg a[10];
    const void *args[10];
    size_t lens[10];
    for (int i = 0; i < 10; i++) {
        a[i] = (struct xarg){.gate = 0, .value = i};
        args[i] = &a[i];
        lens[i] = sizeof(a[i]);
    }
    executor_map_t *m =
        executor_map(ex, x_gated, args, lens, 10, &(map_options_t){.buffersize = 3});
    ck_assert_ptr_nonnull(m);
    wait_stats(ex, 1, 2, 0); /* item 0 held, 1 and 2 queued, nothing more */
    xgate_open(0);
    ck_assert_int_eq(map_next_i64(m), 0); /* submits item 3 */
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 4);
    ck_assert_uint_eq(st.failed, 0);
    for (int i = 1; i <= 3; i++)
        ck_assert_int_eq(map_next_i64(m), i);
    for (int i = 4; i < 10; i++)
        ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_ESHUTDOWN);
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    executor_map_free(m);
    executor_free(ex);
}
END_TEST

/* Per-task deadline (PEBBLE-10, PEBBLE-51): FUT_EDEADLINE; the task is told to stop */
START_TEST(test_executor_submit_deadline)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    double t0 = now_s();
    future_t *f = executor_submit_with(ex, t_until_stop, NULL, 0,
                                       &(submit_options_t){.timeout = 0.2});
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), FUT_EDEADLINE);
    double took = now_s() - t0;
    ck_assert_msg(took >= 0.15 && took < T_LONG / 2, "deadline after %.3f s", took);
    const future_error_t *err;
    ck_assert_int_eq(future_exception(f, 0, &err), 0);
    ck_assert_int_eq(err->status, FUT_EDEADLINE);
    ck_assert(!future_error_is_broken(err));
    future_unref(f);

    /* A task that finishes in time is unaffected. */
    int64_t v = 1;
    f = executor_submit_with(ex, t_add1, &v, sizeof(v),
                             &(submit_options_t){.timeout = T_LONG});
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(result_i64(f), 2);
    future_unref(f);

    /* t_until_stop spins for T_LONG unless task_should_stop() turned true. */
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    took = now_s() - t0;
    ck_assert_msg(took < T_LONG / 2, "the task did not stop: %.3f s", took);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.completed, 1);
    executor_free(ex);
}
END_TEST

/* A queued task never expires: its limit counts from when it starts */
START_TEST(test_executor_deadline_counts_from_start)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    struct xarg busy;
    future_t *hold = submit_gated(ex, &busy, 0, 5);
    wait_stats(ex, 1, 0, 0);
    int64_t v = 1;
    /* A limit no preemption of a loaded sanitizer run reaches (0.1 s did,
       under TSan at load 15: the started task expired). */
    future_t *f = executor_submit_with(ex, t_add1, &v, sizeof(v),
                                       &(submit_options_t){.timeout = 1.0});
    ck_assert_ptr_nonnull(f);
    /* Longer than its limit while it waits for the worker. */
    ck_assert_int_eq(future_result(f, 1.5, NULL, NULL), FUT_ETIMEDOUT);
    ck_assert(!future_done(f));
    xgate_open(0);
    ck_assert_int_eq(result_i64(hold), 5);
    ck_assert_int_eq(result_i64(f), 2);
    future_unref(hold);
    future_unref(f);
    executor_free(ex);
}
END_TEST

struct blocked_submit {
    executor_t *ex;
    int64_t v;
    future_t *f; /* OUT */
    int err;     /* OUT: errno when f is NULL */
    gate_t returned;
};

static void *blocked_submit_main(void *arg)
{
    struct blocked_submit *b = arg;
    errno = 0;
    b->f = executor_submit(b->ex, t_add1, &b->v, sizeof(b->v));
    b->err = b->f ? 0 : errno;
    gate_open(&b->returned);
    return NULL;
}

/* max_queue: full queue blocks submit or gives EAGAIN; a freed slot resumes it */
START_TEST(test_executor_max_queue)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1, .max_queue = 2});
    struct xarg busy;
    future_t *hold = submit_gated(ex, &busy, 0, 9);
    wait_stats(ex, 1, 0, 0); /* running tasks do not count */
    int64_t v[2] = {10, 20};
    future_t *q1 = submit_ok(ex, t_add1, &v[0], 8);
    future_t *q2 = submit_ok(ex, t_add1, &v[1], 8);
    errno = 0;
    ck_assert_ptr_null(executor_submit_with(ex, t_add1, &v[0], 8,
                                            &(submit_options_t){.nonblocking = true}));
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(-errno, FUT_EFULL);

    struct blocked_submit b = {.ex = ex, .v = 30};
    gate_init(&b.returned);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, blocked_submit_main, &b), 0);
    ck_assert(!gate_wait(&b.returned, 0.2)); /* still blocked */
    ck_assert(future_cancel(q1));            /* frees a slot */
    ck_assert(gate_wait(&b.returned, T_LONG));
    pthread_join(th, NULL);
    ck_assert_ptr_nonnull(b.f);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.queued, 2);

    xgate_open(0);
    ck_assert_int_eq(result_i64(hold), 9);
    ck_assert_int_eq(future_result(q1, 0, NULL, NULL), FUT_ECANCELLED);
    ck_assert_int_eq(result_i64(q2), 21);
    ck_assert_int_eq(result_i64(b.f), 31);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 3);
    ck_assert_uint_eq(st.queued, 0);
    future_unref(hold);
    future_unref(q1);
    future_unref(q2);
    future_unref(b.f);
    gate_destroy(&b.returned);
    executor_free(ex);
}
END_TEST

/* LOKY-21 [analog]: refused and cancelled submissions use no queue capacity */
START_TEST(test_executor_refused_submits_use_no_capacity)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1, .max_queue = 1});
    struct xarg busy;
    future_t *hold = submit_gated(ex, &busy, 0, 1);
    wait_stats(ex, 1, 0, 0);
    int64_t v = 1;
    for (int i = 0; i < 100; i++) {
        errno = 0;
        ck_assert_ptr_null(executor_submit(ex, NULL, &v, 8));
        ck_assert_int_eq(errno, EINVAL);
        errno = 0;
        ck_assert_ptr_null(
            executor_submit_with(ex, t_add1, &v, 8, &(submit_options_t){.timeout = NAN}));
        ck_assert_int_eq(errno, EINVAL);
        /* Submit and cancel at once: the slot comes back. */
        future_t *f = executor_submit_with(ex, t_add1, &v, 8,
                                           &(submit_options_t){.nonblocking = true});
        ck_assert_ptr_nonnull(f);
        ck_assert(future_cancel(f));
        future_unref(f);
    }
    future_t *good =
        executor_submit_with(ex, t_add1, &v, 8, &(submit_options_t){.nonblocking = true});
    ck_assert_ptr_nonnull(good);
    for (int i = 0; i < 100; i++) {
        errno = 0;
        ck_assert_ptr_null(executor_submit_with(
            ex, t_add1, &v, 8, &(submit_options_t){.nonblocking = true}));
        ck_assert_int_eq(errno, EAGAIN);
    }
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.queued, 1);
    xgate_open(0);
    ck_assert_int_eq(result_i64(hold), 1);
    ck_assert_int_eq(result_i64(good), 2);
    future_unref(hold);
    future_unref(good);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 2);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.queued, 0);
    executor_free(ex);
}
END_TEST

/* A submitter blocked on a full queue is woken by shutdown with ESHUTDOWN */
START_TEST(test_executor_max_queue_blocked_submit_shutdown)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1, .max_queue = 1});
    struct xarg busy;
    future_t *hold = submit_gated(ex, &busy, 0, 1);
    wait_stats(ex, 1, 0, 0);
    int64_t v = 1;
    future_t *q = submit_ok(ex, t_add1, &v, 8);
    struct blocked_submit b = {.ex = ex, .v = 2};
    gate_init(&b.returned);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, blocked_submit_main, &b), 0);
    ck_assert(!gate_wait(&b.returned, 0.1));
    ck_assert_int_eq(executor_shutdown(ex, false, false), 0);
    ck_assert(gate_wait(&b.returned, T_LONG));
    pthread_join(th, NULL);
    ck_assert_ptr_null(b.f);
    ck_assert_int_eq(b.err, ESHUTDOWN);
    xgate_open(0);
    ck_assert_int_eq(result_i64(q), 2);
    future_unref(hold);
    future_unref(q);
    gate_destroy(&b.returned);
    executor_free(ex);
}
END_TEST

/* max_queue bounds waiting tasks only: running ones do not count */
START_TEST(test_executor_max_queue_running_not_counted)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2, .max_queue = 1});
    struct xarg a[3];
    future_t *f0 = submit_gated(ex, &a[0], 0, 1);
    wait_stats(ex, 1, 0, 0);
    future_t *f1 = submit_gated(ex, &a[1], 0, 2);
    wait_stats(ex, 2, 0, 0);
    future_t *f2 = submit_gated(ex, &a[2], 0, 3);
    errno = 0;
    ck_assert_ptr_null(executor_submit_with(ex, x_gated, &a[2], sizeof(a[2]),
                                            &(submit_options_t){.nonblocking = true}));
    ck_assert_int_eq(errno, EAGAIN);
    xgate_open(0);
    ck_assert_int_eq(result_i64(f0) + result_i64(f1) + result_i64(f2), 6);
    future_unref(f0);
    future_unref(f1);
    future_unref(f2);
    executor_free(ex);
}
END_TEST

/* executor_stats at deterministic points; PEBBLE-20/22/24 [analog] */
START_TEST(test_executor_stats)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.running, 0);
    ck_assert_uint_eq(st.completed, 0);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert(!st.shutdown);
    ck_assert(!st.broken);

    struct xarg a[3];
    future_t *g[3];
    for (int i = 0; i < 3; i++)
        g[i] = submit_gated(ex, &a[i], 0, i);
    wait_stats(ex, 2, 1, 0);
    st = stats_of(ex);
    ck_assert_uint_eq(st.workers, 2);
    ck_assert_uint_eq(st.idle, 0);
    int code = 4;
    future_t *e = submit_ok(ex, t_raise, &code, sizeof(code));
    int64_t v = 1;
    future_t *c = submit_ok(ex, t_add1, &v, 8);
    st = stats_of(ex);
    ck_assert_uint_eq(st.queued, 3);
    ck_assert(future_cancel(c));
    st = stats_of(ex);
    ck_assert_uint_eq(st.queued, 2); /* cancelled ones are not counted */
    ck_assert_uint_eq(st.running, 2);

    xgate_open(0);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    st = stats_of(ex);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.running, 0);
    ck_assert_uint_eq(st.completed, 3);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.workers, 0);
    ck_assert_uint_eq(st.idle, 0);
    ck_assert(st.shutdown);
    ck_assert(!st.broken);
    for (int i = 0; i < 3; i++)
        future_unref(g[i]);
    future_unref(e);
    future_unref(c);
    executor_free(ex);
}
END_TEST

/* Holds whatever thread completes the future until the gate @ud opens. */
static void cb_hold(future_t *f, void *ud)
{
    (void)f;
    ck_assert(gate_wait(ud, T_LONG));
}

/*
 * A caller that saw a task's outcome sees the task counted out (not running;
 * completed or failed), also while the future's done-callbacks still run.
 * The thread pool counted it out only after them.
 */
START_TEST(test_executor_stats_count_before_outcome)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    struct xarg a[2] = {{.gate = 0, .value = 5}, {.gate = 1, .pad = 9}};
    future_t *f[2];
    gate_t hold[2];
    for (int i = 0; i < 2; i++) {
        gate_init(&hold[i]);
        f[i] = submit_ok(ex, x_gated, &a[i], sizeof(a[i]));
        ck_assert_int_eq(future_add_done_callback(f[i], cb_hold, &hold[i]), 0);
    }
    wait_stats(ex, 2, 0, 0); /* both counted started */
    xgate_open(0);
    ck_assert_int_eq(result_i64(f[0]), 5);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 1);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.running, 1);
    gate_open(&hold[0]);
    xgate_open(1);
    const future_error_t *err = NULL;
    ck_assert_int_eq(future_exception(f[1], T_LONG, &err), 0);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->code, 9);
    st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 1);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.running, 0);
    gate_open(&hold[1]);
    executor_free(ex);
    for (int i = 0; i < 2; i++) {
        future_unref(f[i]);
        gate_destroy(&hold[i]);
    }
}
END_TEST

/* ============================================================== shutdown */

/* SHUT-01: submit and map after shutdown fail with ESHUTDOWN */
START_TEST(test_executor_submit_after_shutdown)
{
    executor_t *ex = kind_new(_i, (executor_options_t){0});
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    int64_t v = 1;
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, t_add1, &v, 8));
    ck_assert_int_eq(errno, ESHUTDOWN);
    errno = 0;
    ck_assert_ptr_null(executor_submit_with(ex, t_add1, &v, 8, &(submit_options_t){0}));
    ck_assert_int_eq(errno, ESHUTDOWN);
    const void *args[1] = {&v};
    errno = 0;
    ck_assert_ptr_null(executor_map(ex, t_add1, args, NULL, 1, NULL));
    ck_assert_int_eq(errno, ESHUTDOWN);
    executor_stats_t st = stats_of(ex);
    ck_assert(st.shutdown);
    executor_free(ex);
}
END_TEST

/* SHUT-04: shutdown(wait) returns after every queued task; results available */
START_TEST(test_executor_shutdown_waits_for_all)
{
    int base = thread_baseline();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 5});
    int64_t v[50];
    future_t *fs[50];
    for (int i = 0; i < 50; i++) {
        v[i] = i;
        fs[i] = submit_ok(ex, t_add1, &v[i], 8);
    }
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    for (int i = 0; i < 50; i++) {
        int64_t r;
        ck_assert_int_eq(future_result_i64(fs[i], 0, &r), 0);
        ck_assert_int_eq(r, i + 1);
        future_unref(fs[i]);
    }
    executor_free(ex);
    ck_assert(wait_threads(base));
}
END_TEST

/* SHUT-05: shutdown(cancel_futures) cancels every queued task */
START_TEST(test_executor_shutdown_cancel_futures)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    struct xarg a[50];
    future_t *fs[50];
    for (int i = 0; i < 50; i++)
        fs[i] = submit_gated(ex, &a[i], 0, i);
    wait_stats(ex, 2, 48, 0);
    ck_assert_int_eq(executor_shutdown(ex, false, true), 0);
    int cancelled = 0;
    for (int i = 0; i < 50; i++)
        cancelled += future_cancelled(fs[i]);
    ck_assert_int_eq(cancelled, 48);
    xgate_open(0);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    int completed = 0;
    for (int i = 0; i < 50; i++) {
        ck_assert(future_done(fs[i]));
        if (!future_cancelled(fs[i])) {
            const future_error_t *err = NULL;
            ck_assert_int_eq(future_exception(fs[i], 0, &err), 0);
            ck_assert_ptr_null(err);
            completed++;
        }
        future_unref(fs[i]);
    }
    ck_assert_int_eq(completed, 2);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 2);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.queued, 0);
    executor_free(ex);
}
END_TEST

/* SHUT-05 (CPython's own form): one shutdown(wait, cancel_futures) call */
struct opener {
    executor_t *ex;
};

static bool queue_cancelled(void *p)
{
    executor_stats_t st;
    executor_stats(p, &st);
    return st.shutdown && st.queued == 0;
}

/* Opens xgate 0 once shutdown has cancelled the queue. */
static void *opener_main(void *arg)
{
    struct opener *o = arg;
    if (eventually(queue_cancelled, o->ex, T_LONG))
        xgate_open(0);
    return NULL;
}

START_TEST(test_executor_shutdown_wait_cancel_futures)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 5});
    int nw = kind_workers(_i, 5); /* an MPI pool under mpiexec -n 3: 2 */
    struct xarg a[50];
    future_t *fs[50];
    for (int i = 0; i < 50; i++)
        fs[i] = submit_gated(ex, &a[i], 0, i);
    wait_stats(ex, nw, 50 - nw, 0);
    struct opener o = {ex};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, opener_main, &o), 0);
    ck_assert_int_eq(executor_shutdown(ex, true, true), 0);
    pthread_join(th, NULL);
    int cancelled = 0, ok = 0;
    for (int i = 0; i < 50; i++) {
        ck_assert(future_done(fs[i]));
        if (future_cancelled(fs[i]))
            cancelled++;
        else if (future_result(fs[i], 0, NULL, NULL) == 0)
            ok++;
        future_unref(fs[i]);
    }
    ck_assert_int_gt(cancelled, 20);
    ck_assert_int_ge(ok, 1);
    ck_assert_int_eq(cancelled, 50 - nw);
    ck_assert_int_eq(ok, nw);
    executor_free(ex);
}
END_TEST

/* SHUT-07: a submit cancelled at once does not make shutdown(wait) hang */
START_TEST(test_executor_shutdown_after_cancelled_submit)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    int64_t v = 1;
    future_t *f = submit_ok(ex, t_add1, &v, 8);
    ck_assert_int_eq(result_i64(f), 2);
    future_unref(f);
    struct xarg busy;
    future_t *hold = submit_gated(ex, &busy, 0, 3);
    f = submit_ok(ex, t_add1, &v, 8);
    ck_assert(future_cancel(f));
    xgate_open(0);
    double t0 = now_s();
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    ck_assert(now_s() - t0 < 5.0);
    ck_assert(future_cancelled(f));
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 2);
    ck_assert_uint_eq(st.queued, 0);
    future_unref(f);
    future_unref(hold);

    /* Submit and cancel with nothing else queued (CPython's exact case). */
    executor_t *ex2 = kind_new(_i, (executor_options_t){.max_workers = 1});
    f = submit_ok(ex2, t_add1, &v, 8);
    ck_assert_int_eq(result_i64(f), 2);
    future_unref(f);
    f = submit_ok(ex2, t_add1, &v, 8);
    future_cancel(f);
    t0 = now_s();
    ck_assert_int_eq(executor_shutdown(ex2, true, false), 0);
    ck_assert(now_s() - t0 < 5.0);
    ck_assert(future_done(f));
    future_unref(f);
    executor_free(ex2);
    executor_free(ex);
}
END_TEST

/* Shutdown may be called more than once, with any arguments */
START_TEST(test_executor_shutdown_twice)
{
    executor_t *ex = kind_new(_i, (executor_options_t){0});
    int64_t v = 1;
    future_t *f = submit_ok(ex, t_add1, &v, 8);
    ck_assert_int_eq(executor_shutdown(ex, false, false), 0);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    ck_assert_int_eq(executor_shutdown(ex, true, true), 0);
    ck_assert_int_eq(executor_shutdown(ex, false, true), 0);
    ck_assert_int_eq(result_i64(f), 2);
    future_unref(f);
    executor_free(ex);
}
END_TEST

/* SHUT-09: free == shutdown(wait) + free: map results are right, no thread is left */
START_TEST(test_executor_free_waits)
{
    int base = thread_baseline();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 3});
    int64_t v[10];
    const void *args[10];
    size_t lens[10];
    for (int i = 0; i < 10; i++) {
        v[i] = i - 5;
        args[i] = &v[i];
        lens[i] = 8;
    }
    executor_map_t *m = executor_map(ex, x_abs, args, lens, 10, NULL);
    ck_assert_ptr_nonnull(m);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(map_next_i64(m), i < 5 ? 5 - i : i - 5);
    executor_map_free(m);
    executor_free(ex);
    ck_assert(wait_threads(base)); /* a joined thread leaves /proc a moment later */
    ck_assert_int_eq(count_threads(), base);
}
END_TEST

/* SHUT-10 [decide], LOKY-04: executor_free with a live map; the map keeps working */
START_TEST(test_executor_free_with_live_map)
{
    int base = thread_baseline();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    int64_t v[10];
    const void *args[10];
    size_t lens[10];
    for (int i = 0; i < 10; i++) {
        v[i] = i;
        args[i] = &v[i];
        lens[i] = 8;
    }
    executor_map_t *all = executor_map(ex, x_sq, args, lens, 10, NULL);
    executor_map_t *buf =
        executor_map(ex, x_sq, args, lens, 10, &(map_options_t){.buffersize = 2});
    ck_assert_ptr_nonnull(all);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(map_next_i64(buf), 0); /* submits item 2 */
    executor_free(ex);
    ck_assert(wait_threads(base));
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(map_next_i64(all), i * i);
    ck_assert_int_eq(executor_map_next(all, NULL, NULL), FUT_EOF);
    executor_map_free(all);
    ck_assert_int_eq(map_next_i64(buf), 1);
    ck_assert_int_eq(map_next_i64(buf), 4);
    for (int i = 3; i < 10; i++)
        ck_assert_int_eq(executor_map_next(buf, NULL, NULL), FUT_ESHUTDOWN);
    ck_assert_int_eq(executor_map_next(buf, NULL, NULL), FUT_EOF);
    executor_map_free(buf);
}
END_TEST

/* SHUT-11, LOKY-06: after shutdown(wait=false) every queued map item still runs */
START_TEST(test_executor_shutdown_no_wait)
{
    xgates_reset();
    int base = thread_baseline();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    struct xarg a[10];
    const void *args[10];
    size_t lens[10];
    for (int i = 0; i < 10; i++) {
        a[i] = (struct xarg){.gate = 0, .value = 3 * i};
        args[i] = &a[i];
        lens[i] = sizeof(a[i]);
    }
    executor_map_t *m = executor_map(ex, x_gated, args, lens, 10, NULL);
    ck_assert_ptr_nonnull(m);
    wait_stats(ex, 2, 8, 0);
    ck_assert_int_eq(executor_shutdown(ex, false, false), 0);
    int64_t v = 1;
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, t_add1, &v, 8));
    ck_assert_int_eq(errno, ESHUTDOWN);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.queued, 8); /* still pending, not cancelled */
    xgate_open(0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(map_next_i64(m), 3 * i);
    executor_map_free(m);
    executor_free(ex);
    ck_assert(wait_threads(base));
}
END_TEST

/* ============================================================ initializer */

/*
 * The initializer's argument is initarg itself on every kind, also when
 * initarg_len is 0 (an opaque pointer, as a thread pool's task takes one;
 * include/cfutures.h). A process pool gave NULL for a length of 0.
 */
START_TEST(test_executor_initializer_gets_pointer)
{
    for (size_t len = 0; len <= 1; len++) {
        executor_options_t o = {.max_workers = 1,
                                .initializer = x_init_where,
                                .initarg = init_token,
                                .initarg_len = len};
        executor_t *ex = kind_new(_i, o);
        future_t *r = submit_ok(ex, x_init_read, NULL, 0);
        const char *s = future_result_str(r, T_LONG);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s, len ? "token 1" : "token 0");
        future_unref(r);
        executor_free(ex);
    }
}
END_TEST

/* INIT-01, PEBBLE-18: each worker runs the initializer before its first task */
START_TEST(test_executor_initializer)
{
    xgates_reset();
    static const char word[] = "initialized";
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2,
                                                     .initializer = x_init_set,
                                                     .initarg = word,
                                                     .initarg_len = sizeof(word) - 1});
    /* Two held tasks make sure both workers start, then two readers. */
    struct xarg a[2];
    future_t *g0 = submit_gated(ex, &a[0], 0, 0);
    future_t *g1 = submit_gated(ex, &a[1], 0, 1);
    wait_stats(ex, 2, 0, 0);
    future_t *r[4];
    for (int i = 0; i < 4; i++)
        r[i] = submit_ok(ex, x_init_read, NULL, 0);
    xgate_open(0);
    for (int i = 0; i < 4; i++) {
        const char *s = future_result_str(r[i], T_LONG);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s, "initialized");
        future_unref(r[i]);
    }
    ck_assert_int_eq(result_i64(g0) + result_i64(g1), 1);
    future_unref(g0);
    future_unref(g1);
    executor_stats_t st = stats_of(ex);
    ck_assert(!st.broken);
    executor_free(ex);
}
END_TEST

/*
 * INIT-02, PEBBLE-19, BROKEN-04: an initializer that raises breaks the
 * executor: pending futures fail FUT_EBROKEN, later submits fail too.
 * INIT-03 [analog]: freeing the broken executor leaves no thread and no fd.
 */
START_TEST(test_executor_initializer_fails)
{
    xgates_reset();
    int base = thread_baseline();
    int fds = count_fds();
    static const int32_t gate = 0;
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2,
                                                     .initializer = x_init_fail,
                                                     .initarg = &gate,
                                                     .initarg_len = sizeof(gate)});
    int64_t v[5] = {0, 1, 2, 3, 4};
    future_t *fs[5];
    for (int i = 0; i < 5; i++)
        fs[i] = submit_ok(ex, t_add1, &v[i], 8);
    xgate_open(0);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(future_result(fs[i], T_LONG, NULL, NULL), FUT_EBROKEN);
        const future_error_t *err;
        ck_assert_int_eq(future_exception(fs[i], 0, &err), 0);
        ck_assert_int_eq(err->status, FUT_EBROKEN);
        ck_assert(future_error_is_broken(err));
        ck_assert_msg(strstr(err->message, "error in initializer") != NULL, "message: %s",
                      err->message);
        future_unref(fs[i]);
    }
    executor_stats_t st = stats_of(ex);
    ck_assert(st.broken);
    ck_assert(!st.shutdown);
    ck_assert_uint_eq(st.completed, 0);
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, t_add1, &v[0], 8));
    ck_assert_int_eq(errno, -FUT_EBROKEN);
    const void *args[1] = {&v[0]};
    errno = 0;
    ck_assert_ptr_null(executor_map(ex, t_add1, args, NULL, 1, NULL));
    ck_assert_int_eq(errno, -FUT_EBROKEN);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    st = stats_of(ex);
    ck_assert_uint_eq(st.failed, 5);
    ck_assert_uint_eq(st.queued, 0);
    executor_free(ex);
    ck_assert(wait_threads(base));
    ck_assert_int_eq(count_fds(), fds);
}
END_TEST

/* The broken flag is set before any future fails FUT_EBROKEN */
struct broken_seen {
    executor_t *ex;
    bool broken; /* executor_stats().broken inside the callback */
    gate_t ran;
};

static void cb_broken_seen(future_t *f, void *ud)
{
    (void)f;
    struct broken_seen *b = ud;
    executor_stats_t st;
    executor_stats(b->ex, &st);
    b->broken = st.broken;
    gate_open(&b->ran);
}

/* INIT-02 with max_queue: a submitter blocked on the full queue gets EBROKEN */
START_TEST(test_executor_initializer_fails_wakes_blocked_submit)
{
    xgates_reset();
    static const int32_t gate = 0;
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1,
                                                     .max_queue = 1,
                                                     .initializer = x_init_fail,
                                                     .initarg = &gate,
                                                     .initarg_len = sizeof(gate)});
    int64_t v = 1;
    future_t *f = submit_ok(ex, t_add1, &v, 8); /* queued: the worker is initializing */
    struct broken_seen seen = {.ex = ex, .broken = false};
    gate_init(&seen.ran);
    ck_assert_int_eq(future_add_done_callback(f, cb_broken_seen, &seen), 0);
    struct blocked_submit b = {.ex = ex, .v = 2};
    gate_init(&b.returned);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, blocked_submit_main, &b), 0);
    ck_assert(!gate_wait(&b.returned, 0.1));
    xgate_open(0);
    ck_assert(gate_wait(&b.returned, T_LONG));
    pthread_join(th, NULL);
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), FUT_EBROKEN);
    ck_assert(gate_wait(&seen.ran, T_LONG)); /* callbacks run after waiters wake */
    ck_assert(seen.broken);
    if (b.f) {
        /* It got in before the pool broke: then it failed like the others. */
        ck_assert_int_eq(future_result(b.f, T_LONG, NULL, NULL), FUT_EBROKEN);
        future_unref(b.f);
    } else {
        ck_assert_int_eq(b.err, -FUT_EBROKEN);
    }
    future_unref(f);
    executor_free(ex);
    gate_destroy(&b.returned);
    gate_destroy(&seen.ran);
}
END_TEST

/* ============================================================ callbacks */

struct stopper {
    executor_t *ex;
    int rc;
    gate_t done;
};

static void cb_shutdown(future_t *f, void *ud)
{
    (void)f;
    struct stopper *s = ud;
    s->rc = executor_shutdown(s->ex, false, true);
    gate_open(&s->done);
}

/* PEBBLE-25: executor_shutdown(ex, false, true) from a done-callback */
START_TEST(test_executor_shutdown_from_callback)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    struct stopper s = {.ex = ex, .rc = 1};
    gate_init(&s.done);
    struct xarg a;
    future_t *f = submit_gated(ex, &a, 0, 1);
    int64_t v[3] = {1, 2, 3};
    future_t *q[3];
    for (int i = 0; i < 3; i++)
        q[i] = submit_ok(ex, t_add1, &v[i], 8);
    ck_assert_int_eq(future_add_done_callback(f, cb_shutdown, &s), 0);
    xgate_open(0);
    ck_assert(gate_wait(&s.done, T_LONG));
    ck_assert_int_eq(s.rc, 0);
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, t_add1, &v[0], 8));
    ck_assert_int_eq(errno, ESHUTDOWN);
    executor_stats_t st = stats_of(ex);
    ck_assert(st.shutdown);
    ck_assert_int_eq(result_i64(f), 1);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert(future_done(q[i]));
        if (!future_cancelled(q[i]))
            ck_assert_int_eq(result_i64(q[i]), v[i] + 1);
        future_unref(q[i]);
    }
    future_unref(f);
    executor_free(ex);
    gate_destroy(&s.done);
}
END_TEST

/* LOKY-10: three callback chains that submit the next task from the callback */
struct chain {
    executor_t *ex;
    int depth, target;
    int64_t vals[128]; /* the argument of each link: alive until the test ends */
    int bad;
    gate_t done;
};

static void chain_cb(future_t *f, void *ud)
{
    struct chain *c = ud;
    int64_t r = -1;
    if (future_result_i64(f, 0, &r) != 0 || r != c->vals[c->depth] + 1)
        c->bad++;
    future_unref(f); /* the chain owned this link's reference */
    c->depth++;
    if (c->depth == c->target) {
        gate_open(&c->done);
        return;
    }
    c->vals[c->depth] = r;
    future_t *next = executor_submit(c->ex, t_add1, &c->vals[c->depth], 8);
    if (!next) {
        c->bad++;
        gate_open(&c->done);
        return;
    }
    if (future_add_done_callback(next, chain_cb, c) != 0)
        c->bad++;
}

START_TEST(test_executor_submit_from_callback_chains)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    static struct chain chains[3];
    int targets[3] = {100, 50, 60};
    for (int k = 0; k < 3; k++) {
        memset(&chains[k], 0, sizeof(chains[k]));
        chains[k].ex = ex;
        chains[k].target = targets[k];
        gate_init(&chains[k].done);
    }
    for (int k = 0; k < 3; k++) {
        future_t *f = submit_ok(ex, t_add1, &chains[k].vals[0], 8);
        ck_assert_int_eq(future_add_done_callback(f, chain_cb, &chains[k]), 0);
    }
    for (int k = 0; k < 3; k++) {
        ck_assert(gate_wait(&chains[k].done, T_LONG));
        ck_assert_int_eq(chains[k].bad, 0);
        ck_assert_int_eq(chains[k].depth, targets[k]);
        ck_assert_int_eq(chains[k].vals[targets[k] - 1], targets[k] - 1);
    }
    executor_free(ex);
    for (int k = 0; k < 3; k++)
        gate_destroy(&chains[k].done);
}
END_TEST

/* LOKY-18 [analog]: a slow callback that unrefs its future breaks nothing */
struct slow_cb {
    gate_t entered, release;
    int calls;
};

static void cb_slow(future_t *f, void *ud)
{
    struct slow_cb *s = ud;
    s->calls++;
    future_unref(f); /* the test handed its reference over */
    gate_open(&s->entered);
    gate_wait(&s->release, T_LONG);
}

START_TEST(test_executor_slow_callback)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    struct slow_cb s = {.calls = 0};
    gate_init(&s.entered);
    gate_init(&s.release);
    struct xarg a;
    future_t *f = submit_gated(ex, &a, 0, 1);
    ck_assert_int_eq(future_add_done_callback(f, cb_slow, &s), 0);
    xgate_open(0);
    ck_assert(gate_wait(&s.entered, T_LONG));
    int64_t v = 41;
    future_t *g = submit_ok(ex, t_add1, &v, 8);
    gate_open(&s.release);
    ck_assert_int_eq(result_i64(g), 42);
    future_unref(g);
    executor_stats_t st = stats_of(ex);
    ck_assert(!st.broken);
    executor_free(ex);
    ck_assert_int_eq(s.calls, 1);
    gate_destroy(&s.entered);
    gate_destroy(&s.release);
}
END_TEST

/* PEBBLE-31, FUT-04 [analog]: an odd callback does not stop the pool or the others */
struct odd_cb {
    _Atomic int first, second, third;
    gate_t done;
};

static void cb_third(future_t *f, void *ud)
{
    (void)f;
    struct odd_cb *o = ud;
    atomic_fetch_add(&o->third, 1);
}

static void cb_odd(future_t *f, void *ud)
{
    struct odd_cb *o = ud;
    atomic_fetch_add(&o->first, 1);
    future_add_done_callback(f, cb_third, o); /* done: runs at once, here */
    future_unref(f);                          /* drops the test's reference */
}

static void cb_second(future_t *f, void *ud)
{
    (void)f;
    struct odd_cb *o = ud;
    atomic_fetch_add(&o->second, 1);
    gate_open(&o->done);
}

START_TEST(test_executor_odd_callback)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    struct odd_cb o;
    atomic_init(&o.first, 0);
    atomic_init(&o.second, 0);
    atomic_init(&o.third, 0);
    gate_init(&o.done);
    struct xarg a;
    future_t *f = submit_gated(ex, &a, 0, 1);
    ck_assert_int_eq(future_add_done_callback(f, cb_odd, &o), 0);
    ck_assert_int_eq(future_add_done_callback(f, cb_second, &o), 0);
    xgate_open(0);
    ck_assert(gate_wait(&o.done, T_LONG));
    ck_assert_int_eq(atomic_load(&o.first), 1);
    ck_assert_int_eq(atomic_load(&o.second), 1);
    ck_assert_int_eq(atomic_load(&o.third), 1);
    int64_t v = 1;
    future_t *g = submit_ok(ex, t_add1, &v, 8);
    ck_assert_int_eq(result_i64(g), 2);
    future_unref(g);
    executor_free(ex);
    gate_destroy(&o.done);
}
END_TEST

/* ======================================================= many futures */

/* ASC-01/ASC-06 on executor futures: done ones first, then as they complete */
START_TEST(test_executor_as_completed)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    struct xarg a;
    int64_t v[2] = {1, 2};
    future_t *fs[3];
    fs[0] = submit_gated(ex, &a, 0, 7);
    fs[1] = submit_ok(ex, t_add1, &v[0], 8);
    fs[2] = submit_ok(ex, t_add1, &v[1], 8);
    result_i64(fs[1]);
    result_i64(fs[2]);
    as_completed_t *it = as_completed_new(fs, 3, FUT_FOREVER);
    ck_assert_ptr_nonnull(it);
    future_t *out;
    ck_assert_int_eq(as_completed_next(it, &out), 0);
    ck_assert(out == fs[1]);
    future_unref(out);
    ck_assert_int_eq(as_completed_next(it, &out), 0);
    ck_assert(out == fs[2]);
    future_unref(out);
    xgate_open(0);
    ck_assert_int_eq(as_completed_next(it, &out), 0);
    ck_assert(out == fs[0]);
    ck_assert_int_eq(result_i64(out), 7);
    future_unref(out);
    ck_assert_int_eq(as_completed_next(it, &out), FUT_EOF);
    as_completed_free(it);
    for (int i = 0; i < 3; i++)
        future_unref(fs[i]);
    executor_free(ex);
}
END_TEST

/* WAIT-02/WAIT-04 on executor futures */
START_TEST(test_executor_futures_wait)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    struct xarg a;
    int64_t v = 1;
    int code = 3;
    future_t *fs[3];
    fs[0] = submit_gated(ex, &a, 0, 7);
    fs[1] = submit_ok(ex, t_add1, &v, 8);
    future_t *done[3], *not_done[3];
    size_t nd, nn;
    ck_assert_int_eq(
        futures_wait(fs, 2, T_LONG, FUTURES_FIRST_COMPLETED, done, &nd, not_done, &nn),
        0);
    ck_assert_uint_eq(nd, 1);
    ck_assert(done[0] == fs[1]);
    ck_assert_uint_eq(nn, 1);
    ck_assert(not_done[0] == fs[0]);
    fs[2] = submit_ok(ex, t_raise, &code, sizeof(code));
    ck_assert_int_eq(
        futures_wait(fs, 3, T_LONG, FUTURES_FIRST_EXCEPTION, done, &nd, not_done, &nn),
        0);
    ck_assert_uint_eq(nd, 2);
    ck_assert_uint_eq(nn, 1);
    ck_assert(not_done[0] == fs[0]);
    ck_assert_int_eq(
        futures_wait(fs, 3, 0.05, FUTURES_ALL_COMPLETED, done, &nd, not_done, &nn),
        FUT_ETIMEDOUT);
    ck_assert_uint_eq(nd, 2);
    xgate_open(0);
    ck_assert_int_eq(
        futures_wait(fs, 3, T_LONG, FUTURES_ALL_COMPLETED, done, &nd, not_done, &nn), 0);
    ck_assert_uint_eq(nd, 3);
    ck_assert_uint_eq(nn, 0);
    for (int i = 0; i < 3; i++)
        future_unref(fs[i]);
    executor_free(ex);
}
END_TEST

/* WAIT-09: 100 futures released together; ALL_COMPLETED loses no wake-up */
START_TEST(test_executor_wait_release_together)
{
    xgates_reset(); /* mapped before a process pool forks */
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 4});
    struct xarg a[100];
    future_t *fs[100];
    for (int round = 0; round < 5; round++) {
        xgates_reset();
        for (int i = 0; i < 100; i++)
            fs[i] = submit_gated(ex, &a[i], 0, i);
        xgate_open(0);
        size_t nd = 0;
        future_t *done[100];
        ck_assert_int_eq(
            futures_wait(fs, 100, T_LONG, FUTURES_ALL_COMPLETED, done, &nd, NULL, NULL),
            0);
        ck_assert_uint_eq(nd, 100);
        for (int i = 0; i < 100; i++) {
            ck_assert_int_eq(result_i64(fs[i]), i);
            future_unref(fs[i]);
        }
    }
    executor_free(ex);
}
END_TEST

/* ============================================================ concurrency */

/* LOKY-09: ten threads share one executor: map, submit, cancel, map */
struct user {
    executor_t *ex;
    int id;
    int bad;
};

static void *user_main(void *arg)
{
    struct user *u = arg;
    int64_t v[40];
    const void *args[40];
    size_t lens[40];
    for (int i = 0; i < 40; i++) {
        v[i] = u->id * 100 + i;
        args[i] = &v[i];
        lens[i] = 8;
    }
    for (int pass = 0; pass < 2; pass++) {
        executor_map_t *m = executor_map(u->ex, x_sq, args, lens, 40,
                                         &(map_options_t){.timeout = T_LONG});
        if (!m) {
            u->bad++;
            return NULL;
        }
        for (int i = 0; i < 40; i++) {
            const void *data;
            size_t len;
            int64_t r;
            if (executor_map_next(m, &data, &len) != 0 || len != 8) {
                u->bad++;
                continue;
            }
            memcpy(&r, data, 8);
            if (r != v[i] * v[i])
                u->bad++;
        }
        executor_map_free(m);
        if (pass == 1)
            break;
        future_t *fs[20];
        for (int i = 0; i < 20; i++) {
            fs[i] = executor_submit(u->ex, t_add1, &v[i], 8);
            if (!fs[i])
                u->bad++;
        }
        for (int i = 0; i < 20; i += 2)
            if (fs[i])
                future_cancel(fs[i]);
        for (int i = 0; i < 20; i++) {
            if (!fs[i])
                continue;
            if (!future_cancelled(fs[i])) {
                int64_t r;
                if (future_result_i64(fs[i], T_LONG, &r) != 0 || r != v[i] + 1)
                    u->bad++;
            } else if (i % 2) {
                u->bad++; /* only the even ones were cancelled */
            }
            future_unref(fs[i]);
        }
    }
    return NULL;
}

START_TEST(test_executor_thread_safety)
{
    int base = thread_baseline();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 4});
    struct user u[10];
    pthread_t th[10];
    for (int i = 0; i < 10; i++) {
        u[i] = (struct user){.ex = ex, .id = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, user_main, &u[i]), 0);
    }
    for (int i = 0; i < 10; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(u[i].bad, 0);
    }
    executor_free(ex);
    ck_assert(wait_threads(base));
}
END_TEST

/* LOKY-27 [analog]: submit racing shutdown from another thread */
#define RACE_MAX 4000
struct racer {
    executor_t *ex;
    int64_t vals[RACE_MAX];
    future_t *fs[RACE_MAX];
    int nf, nnull, bad_errno;
    _Atomic int count;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < RACE_MAX; i++) {
        r->vals[i] = i;
        errno = 0;
        future_t *f = executor_submit(r->ex, t_add1, &r->vals[i], 8);
        if (!f) {
            if (errno != ESHUTDOWN)
                r->bad_errno++;
            if (++r->nnull == 10)
                break; /* later submits can only fail the same way */
            continue;
        }
        if (r->nnull)
            r->bad_errno++; /* a submit succeeded after one was refused */
        r->fs[r->nf++] = f;
        atomic_store(&r->count, r->nf);
    }
    return NULL;
}

static bool count_at_least_20(void *p)
{
    struct racer *r = p;
    return atomic_load(&r->count) >= 20;
}

START_TEST(test_executor_submit_races_shutdown)
{
    static struct racer r;
    for (int round = 0; round < 20; round++) {
        bool cancel = round % 2;
        memset(&r, 0, sizeof(r));
        r.ex = kind_new(_i, (executor_options_t){.max_workers = 2});
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, racer_main, &r), 0);
        ck_assert(eventually(count_at_least_20, &r, T_LONG));
        ck_assert_int_eq(executor_shutdown(r.ex, true, cancel), 0);
        pthread_join(th, NULL);
        ck_assert_int_eq(r.bad_errno, 0);
        for (int i = 0; i < r.nf; i++) {
            ck_assert_msg(future_done(r.fs[i]), "round %d: future %d pending", round, i);
            if (future_cancelled(r.fs[i])) {
                ck_assert(cancel);
            } else {
                int64_t v;
                ck_assert_int_eq(future_result_i64(r.fs[i], 0, &v), 0);
                ck_assert_int_eq(v, r.vals[i] + 1);
            }
            future_unref(r.fs[i]);
        }
        executor_stats_t st = stats_of(r.ex);
        ck_assert_uint_eq(st.queued, 0);
        ck_assert_uint_eq(st.running, 0);
        executor_free(r.ex);
    }
}
END_TEST

/* Shutdown from many threads at once: each returns 0, all work is done */
struct shutter {
    executor_t *ex;
    bool wait, cancel;
    int rc;
};

static void *shutter_main(void *arg)
{
    struct shutter *s = arg;
    s->rc = executor_shutdown(s->ex, s->wait, s->cancel);
    return NULL;
}

START_TEST(test_executor_shutdown_many_threads)
{
    xgates_reset();
    int base = thread_baseline();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    struct xarg a[6];
    future_t *fs[6];
    for (int i = 0; i < 6; i++)
        fs[i] = submit_gated(ex, &a[i], 0, i);
    struct shutter s[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        s[i] = (struct shutter){.ex = ex, .wait = i % 4 != 3, .cancel = i == 5, .rc = 1};
        ck_assert_int_eq(pthread_create(&th[i], NULL, shutter_main, &s[i]), 0);
    }
    xgate_open(0);
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(s[i].rc, 0);
    }
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    for (int i = 0; i < 6; i++) {
        ck_assert(future_done(fs[i]));
        if (!future_cancelled(fs[i]))
            ck_assert_int_eq(result_i64(fs[i]), i);
        future_unref(fs[i]);
    }
    executor_free(ex);
    ck_assert(wait_threads(base));
}
END_TEST

/* ========================================================== beyond Python */

/* x / 4 as a double: task_return_double on every kind */
static void x_quarter(task_t *t)
{
    const int64_t *v = task_arg(t, NULL);
    task_return_double(t, (double)*v / 4);
}

/*
 * PyMOTW's f.arg = i and the docs' future_to_url[future], each one call:
 * user data rides on the future, as_completed_next_at gives the position
 */
START_TEST(test_executor_user_data_next_at)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    int64_t v[4] = {1, 2, 3, 4};
    const char *names[4] = {"a", "b", "c", "d"};
    future_t *fs[5];
    for (int i = 0; i < 4; i++) {
        fs[i] = submit_ok(ex, x_quarter, &v[i], sizeof(v[i]));
        future_set_user_data(fs[i], (void *)names[i]);
    }
    fs[4] = fs[1]; /* a duplicate: yielded once, at its first position */
    as_completed_t *it = as_completed_new(fs, 5, T_LONG);
    ck_assert_ptr_nonnull(it);
    bool seen[4] = {false};
    future_t *out;
    size_t idx;
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(as_completed_next_at(it, &out, &idx), 0);
        ck_assert_uint_lt(idx, 4);
        ck_assert(out == fs[idx]);
        ck_assert(!seen[idx]);
        seen[idx] = true;
        ck_assert_ptr_eq(future_user_data(out), names[idx]);
        double d = 0;
        ck_assert_int_eq(future_result_double(out, 0, &d), 0);
        ck_assert(d == (double)v[idx] / 4);
        future_unref(out);
    }
    ck_assert_int_eq(as_completed_next_at(it, &out, &idx), FUT_EOF);
    as_completed_free(it);
    for (int i = 0; i < 4; i++)
        future_unref(fs[i]);
    executor_free(ex);
}
END_TEST

/* ---------------------------------------------------------- continuations */

/* The xgate that x_mark counts its runs in (shared with a process worker). */
#define MARK_GATE (N_XGATES - 1)

static void x_mark(task_t *t)
{
    atomic_fetch_add(&xgates[MARK_GATE], 1);
    task_return_i64(t, 5);
}

/* Recovery: status * 1000 + code of the previous error, or prev's i64 + 0. */
static void x_recover(task_t *t)
{
    const future_error_t *e = task_prev_error(t);
    if (e) {
        task_return_i64(t, (int64_t)e->status * 1000 + e->code);
        return;
    }
    const int64_t *v = task_arg(t, NULL);
    task_return_i64(t, *v);
}

/*
 * prev's result is an xgate index g: opens xgate g + 1 (it started), waits
 * for xgate g (or task_should_stop), returns 7.
 */
static void x_then_gated(task_t *t)
{
    const int64_t *g = task_arg(t, NULL);
    xgate_open((int)*g + 1);
    double end = now_s() + T_LONG;
    while (!atomic_load(&xgates[*g]) && !task_should_stop(t) && now_s() < end)
        usleep(100);
    task_return_i64(t, 7);
}

static void x_die(task_t *t)
{
    (void)t;
    raise(SIGKILL);
}

static future_t *then_ok(future_t *prev, executor_t *ex, task_fn fn, fut_then_when when)
{
    future_t *f = future_then(prev, ex, fn, &(then_options_t){.when = when});
    ck_assert_msg(f != NULL, "future_then: errno %d", errno);
    return f;
}

static void set_i64(future_t *p, int64_t v)
{
    int64_t *b = malloc(sizeof(*b));
    *b = v;
    ck_assert_int_eq(future_set_result(p, b, sizeof(*b), free), 0);
}

/* thenApply chains: on the executor, inline, on a promise, big results */
START_TEST(test_executor_then_chain)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    int64_t one = 1;
    future_t *f0 = submit_ok(ex, t_add1, &one, sizeof(one));
    future_t *f1 = then_ok(f0, ex, t_add1, FUT_THEN_ON_RESULT);
    future_t *f2 = then_ok(f1, NULL, t_add1, FUT_THEN_ON_RESULT);
    future_t *f3 = then_ok(f2, ex, t_add1, FUT_THEN_ON_RESULT);
    ck_assert_int_eq(result_i64(f3), 5);
    ck_assert_int_eq(result_i64(f1), 3);

    future_t *p = future_new();
    future_t *g = then_ok(p, ex, t_add1, FUT_THEN_ON_RESULT);
    set_i64(p, 10);
    ck_assert_int_eq(result_i64(g), 11);

    char big[300];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    future_t *e0 = submit_ok(ex, t_echo, big, sizeof(big));
    future_t *e1 = then_ok(e0, ex, t_echo, FUT_THEN_ON_RESULT);
    const void *data;
    size_t len;
    ck_assert_int_eq(future_result(e1, T_LONG, &data, &len), 0);
    ck_assert_uint_eq(len, sizeof(big));
    ck_assert(memcmp(data, big, len) == 0);
    future_t *us[] = {f0, f1, f2, f3, p, g, e0, e1};
    for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++)
        future_unref(us[i]);
    /* the executor freed while a continuation waits: it fails FUT_ESHUTDOWN */
    future_t *late = future_new();
    future_t *orphan = then_ok(late, ex, t_add1, FUT_THEN_ON_RESULT);
    executor_free(ex);
    set_i64(late, 1);
    ck_assert_int_eq(future_result(orphan, T_LONG, NULL, NULL), FUT_ESHUTDOWN);
    future_unref(orphan);
    future_unref(late);
}
END_TEST

/* exceptionally / handle: a failure flows down, recovery turns it into a result */
START_TEST(test_executor_then_failure_recovery)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    int64_t zero = 0, three = 3;
    int64_t want = (int64_t)FUT_ETASK * 1000 + DIV_CODE;
    future_t *f0 = submit_ok(ex, x_div, &zero, sizeof(zero));
    future_t *a = then_ok(f0, ex, t_add1, FUT_THEN_ON_RESULT);
    future_t *b = then_ok(a, ex, x_recover, FUT_THEN_ON_FAILURE);
    future_t *c = then_ok(b, ex, x_recover, FUT_THEN_ON_FAILURE); /* passes b's result on */
    future_t *d = then_ok(f0, ex, x_recover, FUT_THEN_ALWAYS);
    future_t *g0 = submit_ok(ex, x_sq, &three, sizeof(three));
    future_t *g1 = then_ok(g0, ex, x_recover, FUT_THEN_ALWAYS);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(a, T_LONG, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, FUT_ETASK);
    ck_assert_int_eq(e->code, DIV_CODE);
    ck_assert_str_eq(e->message, "division by zero");
    ck_assert_int_eq(result_i64(b), want);
    ck_assert_int_eq(result_i64(c), want);
    ck_assert_int_eq(result_i64(d), want);
    ck_assert_int_eq(result_i64(g1), 9);
    future_t *us[] = {f0, a, b, c, d, g0, g1};
    for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++)
        future_unref(us[i]);
    executor_free(ex);
}
END_TEST

/* cancel before fn starts (prev pending; queued behind a busy worker): fn never runs */
START_TEST(test_executor_then_cancel_before_start)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    struct xarg a0, a1;
    future_t *prev = submit_gated(ex, &a0, 0, 1);
    future_t *next = then_ok(prev, ex, x_mark, FUT_THEN_ON_RESULT);
    ck_assert(future_cancel(next));
    ck_assert(future_cancelled(next));
    xgate_open(0);
    ck_assert_int_eq(result_i64(prev), 1);

    future_t *blocker = submit_gated(ex, &a1, 1, 2);
    wait_stats(ex, 1, 0, -1);
    future_t *p = future_new();
    future_t *queued = then_ok(p, ex, x_mark, FUT_THEN_ON_RESULT);
    set_i64(p, 0);
    ck_assert(!future_done(queued));
    ck_assert(future_cancel(queued));
    xgate_open(1);
    ck_assert_int_eq(result_i64(blocker), 2);
    executor_shutdown(ex, true, false);
    ck_assert_int_eq(atomic_load(&xgates[MARK_GATE]), 0);
    ck_assert(future_cancelled(queued));
    future_t *us[] = {prev, next, blocker, p, queued};
    for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++)
        future_unref(us[i]);
    executor_free(ex);
}
END_TEST

/* cancel after fn started: false, and task_should_stop() turns true in fn */
START_TEST(test_executor_then_cancel_after_start)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    future_t *p = future_new();
    future_t *next = then_ok(p, ex, x_then_gated, FUT_THEN_ON_RESULT);
    set_i64(p, 3); /* fn waits for xgate 3 */
    ck_assert(eventually(xgate_is_open, (void *)(intptr_t)4, T_LONG)); /* it started */
    ck_assert(!future_cancel(next));
    ck_assert_int_eq(result_i64(next), 7); /* it stopped early: the gate is shut */
    ck_assert(!atomic_load(&xgates[3]));
    future_unref(next);
    future_unref(p);
    executor_free(ex);
}
END_TEST

/* a dying process worker: FUT_EWORKER flows down the chain, recovery sees it */
START_TEST(test_executor_then_worker_death)
{
    if (strcmp(ex_kinds[_i].name, "process") != 0)
        return; /* a thread cannot die alone */
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    future_t *f0 = submit_ok(ex, x_die, NULL, 0);
    future_t *a = then_ok(f0, ex, t_add1, FUT_THEN_ON_RESULT);
    future_t *b = then_ok(a, NULL, t_add1, FUT_THEN_ON_RESULT);
    future_t *c = then_ok(b, ex, x_recover, FUT_THEN_ON_FAILURE);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(b, T_LONG, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, FUT_EWORKER);
    ck_assert_int_eq(e->signal, SIGKILL);
    ck_assert_int_eq(result_i64(c), (int64_t)FUT_EWORKER * 1000);
    future_t *us[] = {f0, a, b, c};
    for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++)
        future_unref(us[i]);
    executor_free(ex);
}
END_TEST

/* allOf / anyOf over executor futures: failures, duplicates, cancellation */
START_TEST(test_executor_all_any)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 3});
    int64_t two = 2, zero = 0;
    struct xarg a0, a1;
    future_t *sq = submit_ok(ex, x_sq, &two, sizeof(two));
    future_t *div = submit_ok(ex, x_div, &zero, sizeof(zero));
    future_t *held = submit_gated(ex, &a0, 0, 5);
    future_t *fs[] = {held, sq, div, sq};
    future_t *all = futures_all(fs, 4, NULL);
    future_t *settled = futures_all(fs, 4, &(combine_options_t){.settle = true});
    future_t *any = futures_any(fs, 4, NULL);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(all, T_LONG, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->code, DIV_CODE);
    int64_t idx = -1;
    ck_assert_int_eq(future_result_i64(any, T_LONG, &idx), 0);
    ck_assert_int_eq(idx, 1); /* sq, at its first position */
    ck_assert(!future_done(settled));
    xgate_open(0);
    ck_assert_int_eq(future_result(settled, T_LONG, NULL, NULL), 0);

    /* cancel_rest: the held one is asked to stop once another succeeded */
    future_t *held2 = submit_gated(ex, &a1, 1, 6);
    future_t *gs[] = {held2, sq};
    future_t *any2 = futures_any(gs, 2, &(combine_options_t){.cancel_rest = true});
    ck_assert_int_eq(future_result_i64(any2, T_LONG, &idx), 0);
    ck_assert_int_eq(idx, 1);
    int64_t v = 0;
    int rc = future_result_i64(held2, T_LONG, &v); /* stopped early, or never started */
    ck_assert_msg((rc == 0 && v == 6) || rc == FUT_ECANCELLED, "%s", future_strerror(rc));
    ck_assert(future_cancelled(held2) || !atomic_load(&xgates[1]));

    /* a cancelled input cancels allOf; anyOf fails with the last error */
    future_t *p = future_new();
    future_t *hs[] = {sq, p};
    future_t *all2 = futures_all(hs, 2, NULL);
    future_cancel(p);
    ck_assert(future_cancelled(all2));
    future_t *ds[] = {div, div};
    future_t *any3 = futures_any(ds, 2, NULL);
    ck_assert_int_eq(future_exception(any3, T_LONG, &e), 0);
    ck_assert_int_eq(e->code, DIV_CODE);
    future_t *us[] = {sq, div, held, all, settled, any, held2, any2, p, all2, any3};
    for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++)
        future_unref(us[i]);
    executor_free(ex);
}
END_TEST

/* orTimeout / within: just before and just after the timeout, cancel_source */
static bool started_pred(void *f)
{
    return future_running(f) || future_done(f);
}

START_TEST(test_executor_within)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    int64_t three = 3;
    struct xarg a0, a1;
    future_t *quick = submit_ok(ex, x_sq, &three, sizeof(three));
    future_t *r1 = future_within(quick, T_LONG, false); /* done well before */
    ck_assert_int_eq(result_i64(r1), 9);

    future_t *late = submit_gated(ex, &a0, 0, 4);
    future_t *r2 = future_within(late, 0.05, false); /* done just after */
    ck_assert_int_eq(future_result(r2, T_LONG, NULL, NULL), FUT_ETIMEDOUT);
    xgate_open(0);
    ck_assert_int_eq(result_i64(late), 4);
    ck_assert_int_eq(future_result(r2, 0, NULL, NULL), FUT_ETIMEDOUT);

    future_t *stuck = submit_gated(ex, &a1, 1, 8);
    /* Started first: a queued one would be cancelled outright, not asked to stop. */
    ck_assert(eventually(started_pred, stuck, T_LONG));
    future_t *r3 = future_within(stuck, 0.05, true); /* cancel_source: asked to stop */
    ck_assert_int_eq(future_result(r3, T_LONG, NULL, NULL), FUT_ETIMEDOUT);
    ck_assert_int_eq(result_i64(stuck), 8); /* it stopped early */
    ck_assert(!atomic_load(&xgates[1]));

    /* done just before: f completes 0.1 s before the timeout; the timer that
     * fires after it changes nothing (under extreme load the timer may win:
     * then FUT_ETIMEDOUT, never both, and never a change later) */
    struct xarg a2;
    future_t *near = submit_gated(ex, &a2, 2, 5);
    future_t *r4 = future_within(near, 0.25, false);
    ck_assert_ptr_nonnull(r4);
    usleep(150000);
    xgate_open(2);
    ck_assert_int_eq(result_i64(near), 5);
    int64_t v4 = 0;
    int rc4 = future_result_i64(r4, T_LONG, &v4);
    ck_assert_msg(rc4 == 0 ? v4 == 5 : rc4 == FUT_ETIMEDOUT, "%s", future_strerror(rc4));
    usleep(200000); /* past the timeout */
    int64_t again = 0;
    ck_assert_int_eq(future_result_i64(r4, 0, &again), rc4);
    ck_assert_int_eq(again, v4);
    future_t *us[] = {quick, r1, late, r2, stuck, r3, near, r4};
    for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++)
        future_unref(us[i]);
    executor_free(ex);
}
END_TEST

/* A reader of the queue's fd: poll(), then completion_queue_next, until n came. */
struct cq_reader {
    completion_queue_t *q;
    int want, got;
    int64_t sum;
};

static void *cq_reader_main(void *arg)
{
    struct cq_reader *r = arg;
    double end = now_s() + T_LONG;
    while (r->got < r->want && now_s() < end) {
        struct pollfd p = {.fd = completion_queue_fd(r->q), .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        future_t *f;
        while (completion_queue_next(r->q, 0, &f) == 0) {
            int64_t v = 0;
            if (future_result_i64(f, 0, &v) == 0)
                r->sum += v;
            r->got++;
            future_unref(f);
        }
    }
    return NULL;
}

static void cb_join_queue(future_t *f, void *ud)
{
    ck_assert_int_eq(completion_queue_add(ud, f), 0);
}

/* asyncio add_reader: a queue fed at submit and from callbacks, read through its fd */
START_TEST(test_executor_completion_queue)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    completion_queue_t *q = completion_queue_new();
    ck_assert_ptr_nonnull(q);
    struct cq_reader r = {.q = q, .want = 8};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, cq_reader_main, &r), 0);
    int64_t v[8];
    future_t *fs[8];
    for (int i = 0; i < 8; i++) {
        v[i] = i;
        if (i % 2 == 0) {
            fs[i] = executor_submit_with(ex, t_add1, &v[i], sizeof(v[i]),
                                         &(submit_options_t){.queue = q});
            ck_assert_ptr_nonnull(fs[i]);
        } else {
            fs[i] = submit_ok(ex, t_add1, &v[i], sizeof(v[i]));
            ck_assert_int_eq(future_add_done_callback(fs[i], cb_join_queue, q), 0);
        }
    }
    pthread_join(th, NULL);
    ck_assert_int_eq(r.got, 8);
    ck_assert_int_eq(r.sum, 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8);
    future_t *f = NULL;
    ck_assert_int_eq(completion_queue_next(q, 0, &f), FUT_EOF);
    struct pollfd p = {.fd = completion_queue_fd(q), .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, 0), 0); /* nothing waits: not readable */

    /* a continuation joins at creation; a pending one times out */
    future_t *pr = future_new();
    future_t *t = future_then(pr, ex, t_add1,
                              &(then_options_t){.submit = {.queue = q}});
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(completion_queue_next(q, 0.01, &f), FUT_ETIMEDOUT);
    set_i64(pr, 41);
    ck_assert_int_eq(completion_queue_next(q, T_LONG, &f), 0);
    ck_assert(f == t);
    ck_assert_int_eq(result_i64(f), 42);
    future_unref(f);
    future_unref(t);
    future_unref(pr);
    for (int i = 0; i < 8; i++)
        future_unref(fs[i]);
    completion_queue_free(q);
    executor_free(ex);
}
END_TEST

/* executor_map_array over structs, unordered, chunked and buffered: as they complete */
START_TEST(test_executor_map_unordered)
{
    xgates_reset();
    bool process = strcmp(ex_kinds[_i].name, "process") == 0;
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    enum { N = 9 };
    struct xarg xs[N];
    for (int i = 0; i < N; i++)
        xs[i] = (struct xarg){.gate = i == 0 ? 0 : 1, .value = i * 10};
    xgate_open(1);
    executor_map_t *m = executor_map_array(
        ex, x_gated, xs, sizeof(xs[0]), N,
        &(map_options_t){.unordered = true, .chunksize = 2, .buffersize = 3});
    ck_assert_ptr_nonnull(m);
    size_t held = process ? 2 : 1; /* item 0's unit: a chunk of 2 on the process pool */
    bool seen[N] = {false};
    size_t idx;
    const void *data;
    size_t len;
    for (size_t k = 0; k < N - held; k++) {
        ck_assert_int_eq(executor_map_next_at(m, &idx, &data, &len), 0);
        ck_assert_uint_ge(idx, held);
        ck_assert_uint_lt(idx, N);
        ck_assert(!seen[idx]);
        seen[idx] = true;
        int64_t v;
        memcpy(&v, data, sizeof(v));
        ck_assert_int_eq(v, (int64_t)idx * 10);
    }
    xgate_open(0);
    for (size_t k = 0; k < held; k++) {
        ck_assert_int_eq(executor_map_next_at(m, &idx, &data, &len), 0);
        ck_assert_uint_eq(idx, k); /* a unit's items come in order */
    }
    ck_assert_int_eq(executor_map_next_at(m, &idx, &data, &len), FUT_EOF);
    executor_map_free(m);

    /* ordered maps say the index too; an array of structs on every kind */
    struct pow_arg ps[4] = {{2, 1}, {2, 2}, {3, 2}, {2, 10}};
    int64_t want[4] = {2, 4, 9, 1024};
    m = executor_map_array(ex, x_pow, ps, sizeof(ps[0]), 4, &(map_options_t){.chunksize = 3});
    ck_assert_ptr_nonnull(m);
    for (size_t k = 0; k < 4; k++) {
        ck_assert_int_eq(executor_map_next_at(m, &idx, &data, &len), 0);
        ck_assert_uint_eq(idx, k);
        int64_t v;
        memcpy(&v, data, sizeof(v));
        ck_assert_int_eq(v, want[k]);
    }
    executor_map_free(m);
    errno = 0;
    ck_assert_ptr_null(executor_map_array(ex, x_pow, NULL, 8, 2, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(executor_map_array(ex, x_pow, ps, 0, 2, NULL));
    executor_free(ex);
}
END_TEST

/*
 * unordered map with a timeout: what completed, then FUT_ETIMEDOUT, then
 * FUT_EOF. The worker is started first, and the timeout is generous: item 0
 * must finish inside it, and a process pool's first fork under TSan on a
 * loaded machine took longer than the 0.3 s it once had (a CI run failed so).
 */
START_TEST(test_executor_map_unordered_timeout)
{
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    struct xarg xs[4];
    for (int i = 0; i < 4; i++)
        xs[i] = (struct xarg){.gate = i == 1 ? 0 : 1, .value = i};
    xgate_open(1);
    future_t *warm = submit_ok(ex, x_gated, &xs[0], sizeof(xs[0]));
    ck_assert_int_eq(future_result(warm, T_LONG, NULL, NULL), 0);
    future_unref(warm);
    size_t before = stats_of(ex).completed;
    executor_map_t *m = executor_map_array(
        ex, x_gated, xs, sizeof(xs[0]), 4,
        &(map_options_t){.unordered = true, .timeout = 1.0, .buffersize = 2});
    ck_assert_ptr_nonnull(m);
    size_t idx = 99;
    ck_assert_int_eq(executor_map_next_at(m, &idx, NULL, NULL), 0);
    ck_assert_uint_eq(idx, 0);
    /* item 1 holds the only worker past the deadline */
    ck_assert_int_eq(executor_map_next_at(m, &idx, NULL, NULL), FUT_ETIMEDOUT);
    ck_assert_int_eq(executor_map_next_at(m, &idx, NULL, NULL), FUT_EOF);
    executor_map_free(m);
    executor_shutdown(ex, true, false);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_le(st.completed - before, 2); /* items 2 and 3 never ran (maybe 2) */
    executor_free(ex);
}
END_TEST

/* executor_map_error: why an item failed, not only that it did */
START_TEST(test_executor_map_error)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    int64_t v[3] = {1, 0, 4};
    const void *args[3] = {&v[0], &v[1], &v[2]};
    size_t lens[3] = {8, 8, 8};
    for (int unordered = 0; unordered < 2; unordered++) {
        executor_map_t *m =
            executor_map(ex, x_div, args, lens, 3, &(map_options_t){.unordered = unordered});
        ck_assert_ptr_nonnull(m);
        ck_assert_ptr_null(executor_map_error(m));
        int failed = 0;
        for (int k = 0; k < 3; k++) {
            size_t idx;
            int rc = executor_map_next_at(m, &idx, NULL, NULL);
            if (idx == 1) {
                ck_assert_int_eq(rc, FUT_ETASK);
                const future_error_t *e = executor_map_error(m);
                ck_assert_ptr_nonnull(e);
                ck_assert_int_eq(e->code, DIV_CODE);
                ck_assert_str_eq(e->message, "division by zero");
                failed++;
            } else {
                ck_assert_int_eq(rc, 0);
            }
        }
        ck_assert_int_eq(failed, 1);
        ck_assert_ptr_nonnull(executor_map_error(m)); /* still the last failure's */
        executor_map_free(m);
    }
    ck_assert_ptr_null(executor_map_error(NULL));
    executor_free(ex);
}
END_TEST

/* ------------------------------------------------------- start order */

/*
 * The start log: xgates[START_LOG] counts, the entries follow it, each the
 * task's value + 1 (0: its slot is taken and not yet written).
 */
#define START_LOG N_XGATES

/* Logs its value as started, then waits for its xgate unless gate < 0. */
static void x_logged(task_t *t)
{
    const struct xarg *a = task_arg(t, NULL);
    int at = atomic_fetch_add(&xgates[START_LOG], 1);
    if (at < N_XLOG)
        atomic_store(&xgates[START_LOG + 1 + at], (int)a->value + 1);
    double end = now_s() + T_LONG;
    while (a->gate >= 0 && !atomic_load(&xgates[a->gate]) && now_s() < end)
        usleep(100);
    task_return_i64(t, a->value);
}

/* True once @n starts are logged, entries written. */
static bool start_log_reaches(int n)
{
    double end = now_s() + T_LONG;
    for (;;) {
        bool all = atomic_load(&xgates[START_LOG]) >= n;
        for (int k = 0; all && k < n; k++)
            all = atomic_load(&xgates[START_LOG + 1 + k]) != 0;
        if (all || now_s() >= end)
            return all;
        usleep(100);
    }
}

/* The task that started @k-th (from 0), once start_log_reaches(k + 1). */
static int started_at(int k)
{
    return atomic_load(&xgates[START_LOG + 1 + k]) - 1;
}

/* A task's argument for the start-order runs: big enough to go down a pipe. */
#define ORDER_BIG ((1u << 20) + 64)
static struct {
    struct xarg x;
    char pad[ORDER_BIG - sizeof(struct xarg)];
} order_arg[6];

/*
 * One run of the start-order case on @ex (2 workers): task 1 returns at once,
 * tasks 0 and 2-5 wait for their gates; each argument @len bytes.
 */
static void start_order_run(executor_t *ex, const char *what, int run, size_t len)
{
    enum { N = 6 };
    xgates_reset();
    future_t *fs[N];
    for (int i = 0; i < N; i++) {
        order_arg[i].x = (struct xarg){.gate = i == 1 ? -1 : i, .value = i};
        ck_assert_ptr_nonnull(fs[i] = executor_submit(ex, x_logged, &order_arg[i], len));
    }
    /* 0 and 1 start together, then 1 frees its worker for 2: those three,
       logged in any order (a task logs a little after it started). */
    ck_assert(start_log_reaches(3));
    int seen = 0;
    for (int k = 0; k < 3; k++)
        seen |= 1 << started_at(k);
    ck_assert_msg(seen == 7,
                  "%s run %d (%zu bytes): the first three starts were not 0, 1, 2 (%#x)",
                  what, run, len, seen);
    /* Each gate frees one worker: the next task in line starts there. */
    int open[] = {0, 2, 3, 4, 5};
    for (int k = 0; k < 3; k++) {
        xgate_open(open[k]);
        ck_assert(start_log_reaches(4 + k));
        ck_assert_msg(started_at(3 + k) == 3 + k,
                      "%s run %d (%zu bytes): start %d was task %d", what, run, len,
                      3 + k, started_at(3 + k));
    }
    xgate_open(4);
    xgate_open(5);
    for (int i = 0; i < N; i++) {
        int64_t v = -1;
        ck_assert_int_eq(future_result_i64(fs[i], T_LONG, &v), 0);
        ck_assert_int_eq(v, i);
        future_unref(fs[i]);
    }
}

/*
 * Start order (issue 14): 2 workers, task 1 returns at once, tasks 0 and 2-5
 * wait for their gates. Whatever the pool sent ahead where, the tasks start
 * 0 1 2 3 4 5: no later task starts while an earlier one waits and a worker
 * is free (Python's order; a process pool once started 0 1 3 2 5 4, task 2
 * sent ahead to the busy worker). At each step both workers are held, so the
 * log is read at a deterministic point. 100 runs, the argument 16 bytes,
 * 4 KiB (a process pool's shared heap) or 1 MiB + 64 (down a worker's pipe)
 * in turn; then, on a process pool, 60 runs with max_tasks_per_child 7
 * (workers replaced during the runs, leaving queued tasks behind). The
 * piped runs started 0 1 3 2 ... before the process pool stopped sending
 * piped tasks ahead to busy workers, and the max_tasks_per_child runs did
 * while such pools sent every task down a pipe.
 */
/*
 * Runs of a case that repeats for the odds of catching a rare order: @full,
 * or @fewest with CFUTURES_TEST_SHORT set (not "0"), as .ci/run's sanitizer
 * runs set it: a sanitizer needs each path run, not the statistics.
 */
static int runs(int full, int fewest)
{
    const char *s = getenv("CFUTURES_TEST_SHORT");
    return s && *s && strcmp(s, "0") != 0 ? fewest : full;
}

START_TEST(test_executor_start_order_mixed_lengths)
{
    size_t lens[] = {sizeof(struct xarg), 4096, ORDER_BIG};
    xgates_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    /* short: 7 runs of each length */
    for (int run = 0; run < runs(100, 21); run++)
        start_order_run(ex, "plain", run, lens[run % 3]);
    executor_free(ex);
    if (strcmp(ex_kinds[_i].name, "process") != 0)
        return;
    ex = kind_new(_i, (executor_options_t){.max_workers = 2, .max_tasks_per_child = 7});
    /* short: 21 runs, 3 x 7 (the lengths repeat every 3 runs, a worker's
       life is 7 tasks) */
    for (int run = 0; run < runs(60, 21); run++)
        start_order_run(ex, "max_tasks_per_child", run, lens[run % 3]);
    executor_free(ex);
}
END_TEST

/* ================================================================ suite */

#ifdef CF_TEST_MPI_KIND
/*
 * Cases that do not apply to the MPI pool (check_executor_mpi): it takes no
 * initializer (FUT_EINVAL, see mpi_pool_executor_new). And, when it sends
 * tasks ahead (its default), a sent task is RUNNING, so cases that count
 * queued tasks, cancel them or bound them with max_queue, or see which
 * starts first, apply only with CFUTURES_MPI_AHEAD=0 (tests/mpi_pool.sh
 * runs the suite both ways).
 */
static const char *const no_initializer[] = {
    "test_executor_initializer",
    "test_executor_initializer_gets_pointer",
    "test_executor_initializer_fails",
    "test_executor_initializer_fails_wakes_blocked_submit",
};
static const char *const queue_cases[] = {
    "test_executor_map_timeout",
    "test_executor_map_timeout_cancels_pending",
    "test_executor_map_free_cancels_pending",
    "test_executor_map_unordered_timeout",
    "test_executor_map_buffersize_refill",
    "test_executor_shutdown_cancel_futures",
    "test_executor_shutdown_wait_cancel_futures",
    "test_executor_shutdown_no_wait",
    "test_executor_shutdown_after_cancelled_submit",
    "test_executor_then_cancel_before_start",
    "test_executor_max_queue",
    "test_executor_max_queue_running_not_counted",
    "test_executor_refused_submits_use_no_capacity",
    "test_executor_max_queue_blocked_submit_shutdown",
    "test_executor_stats",
    "test_executor_start_order_mixed_lengths",
};

#define N_NO_INIT (sizeof(no_initializer) / sizeof(*no_initializer))
#define N_QUEUE (sizeof(queue_cases) / sizeof(*queue_cases))
static size_t
    listed_seen; /* names of the lists met by applies(): all, or one was renamed */

static bool listed(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0) {
            listed_seen++;
            return true;
        }
    return false;
}

static bool applies(const char *name)
{
    /* As lib/mpi/pool.c reads it: digits only, 0 ... 64, else paced. */
    const char *ahead = getenv("CFUTURES_MPI_AHEAD");
    char *end = NULL;
    bool sends_ahead = !ahead || !*ahead || strtol(ahead, &end, 10) != 0 || *end != '\0';
    bool no_init = listed(name, no_initializer, N_NO_INIT);
    bool queue = listed(name, queue_cases, N_QUEUE);
    const char *why = NULL;
    if (no_init)
        why = "it takes no initializer";
    else if (sends_ahead && queue)
        why = "a task sent ahead is running (CFUTURES_MPI_AHEAD=0 runs it)";
    if (why)
        printf("%s: does not apply to the MPI pool: %s\n", name, why);
    return !why;
}
#else
static bool applies(const char *name)
{
    (void)name;
    return true;
}
#endif

/*
 * Whether case @name is run: it applies, and CFUTURES_TEST_ONLY (a case's
 * name, as "test_executor_stats"), if set, names it, for running one case
 * by hand.
 */
static bool selected(const char *name)
{
    const char *only = getenv("CFUTURES_TEST_ONLY");
    return applies(name) && (!only || !*only || strcmp(only, name) == 0);
}

/* Adds case @t, looped over the kinds, if selected (any Check version). */
#define kind_test(tc, t)                                                                 \
    do {                                                                                 \
        if (selected(#t))                                                                \
            tcase_add_loop_test(tc, t, 0, N_EX_KINDS);                                   \
    } while (0)

Suite *make_suite(void)
{
    Suite *s = suite_create("executor");

    TCase *tc = new_tcase(s, "core");
    kind_test(tc, test_executor_submit_result);
    kind_test(tc, test_executor_submit_args_unchanged);
    kind_test(tc, test_executor_shutdown_with_unconsumed_map);
    kind_test(tc, test_executor_no_stale_references);
    kind_test(tc, test_executor_falsy_error_propagates);
    kind_test(tc, test_executor_task_error_isolated);
    kind_test(tc, test_executor_multiple_futures);
    kind_test(tc, test_executor_map_in_order);
    kind_test(tc, test_executor_map_error_continues);
    kind_test(tc, test_executor_map_task_timeout_is_task_error);
    kind_test(tc, test_executor_map_timeout);
    kind_test(tc, test_executor_map_timeout_cancels_pending);
    kind_test(tc, test_executor_map_free_cancels_pending);
    kind_test(tc, test_executor_map_buffersize_results);
    kind_test(tc, test_executor_map_empty_and_single);
    kind_test(tc, test_executor_submit_after_shutdown);
    kind_test(tc, test_executor_shutdown_waits_for_all);
    kind_test(tc, test_executor_shutdown_cancel_futures);
    kind_test(tc, test_executor_shutdown_wait_cancel_futures);
    kind_test(tc, test_executor_shutdown_after_cancelled_submit);
    kind_test(tc, test_executor_shutdown_twice);
    kind_test(tc, test_executor_free_waits);
    kind_test(tc, test_executor_free_with_live_map);
    kind_test(tc, test_executor_shutdown_no_wait);
    kind_test(tc, test_executor_initializer);
    kind_test(tc, test_executor_initializer_gets_pointer);
    kind_test(tc, test_executor_as_completed);
    kind_test(tc, test_executor_futures_wait);

    tc = new_tcase(s, "compose");
    kind_test(tc, test_executor_user_data_next_at);
    kind_test(tc, test_executor_then_chain);
    kind_test(tc, test_executor_then_failure_recovery);
    kind_test(tc, test_executor_then_cancel_before_start);
    kind_test(tc, test_executor_then_cancel_after_start);
    kind_test(tc, test_executor_then_worker_death);
    kind_test(tc, test_executor_all_any);
    kind_test(tc, test_executor_within);
    kind_test(tc, test_executor_completion_queue);
    kind_test(tc, test_executor_map_unordered);
    kind_test(tc, test_executor_map_unordered_timeout);
    kind_test(tc, test_executor_map_error);

    tc = new_tcase(s, "errors");
    kind_test(tc, test_executor_max_workers_negative);
    kind_test(tc, test_executor_initializer_fails);
    kind_test(tc, test_executor_initializer_fails_wakes_blocked_submit);

    tc = new_tcase(s, "limits");
    kind_test(tc, test_executor_map_buffersize_no_consumer);
    kind_test(tc, test_executor_map_buffersize_refill);
    kind_test(tc, test_executor_submit_deadline);
    kind_test(tc, test_executor_deadline_counts_from_start);
    kind_test(tc, test_executor_max_queue);
    kind_test(tc, test_executor_refused_submits_use_no_capacity);
    kind_test(tc, test_executor_max_queue_blocked_submit_shutdown);
    kind_test(tc, test_executor_max_queue_running_not_counted);
    kind_test(tc, test_executor_stats);
    kind_test(tc, test_executor_stats_count_before_outcome);

    tc = new_tcase(s, "concurrency");
    kind_test(tc, test_executor_start_order_mixed_lengths);
    kind_test(tc, test_executor_shutdown_from_callback);
    kind_test(tc, test_executor_submit_from_callback_chains);
    kind_test(tc, test_executor_slow_callback);
    kind_test(tc, test_executor_odd_callback);
    kind_test(tc, test_executor_wait_release_together);
    kind_test(tc, test_executor_thread_safety);
    kind_test(tc, test_executor_submit_races_shutdown);
    kind_test(tc, test_executor_shutdown_many_threads);
#ifdef CF_TEST_MPI_KIND
    if (listed_seen != N_NO_INIT + N_QUEUE) {
        fprintf(stderr,
                "check_executor_mpi: a case named in applies()'s lists is gone\n");
        abort();
    }
#endif
    return s;
}
