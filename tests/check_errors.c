/*
 * check_errors: every public function rejects NULL and out-of-range
 * arguments with FUT_EINVAL (or NULL + errno EINVAL), never a crash; NULL-safe
 * frees do nothing; predicates say false for NULL.
 *
 * One row per case in a static table. Each row's function makes what it
 * needs, makes the one bad call and returns what it got:
 *  - an int function's code;
 *  - for a function returning a pointer, -errno when it returned NULL (1 if
 *    it wrongly succeeded);
 *  - for a predicate, its value (0 expected);
 *  - 0 for a NULL-safe free that returned;
 * or ROW_BROKEN when the failed call changed something it should not have.
 * Timeouts under test are tried on futures that are done already, so a
 * wrongly accepted timeout shows up as 0 instead of a hang.
 */
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ROW_BROKEN 12345

struct row {
    const char *name;
    int (*call)(const struct row *r);
    double x; /* the timeout or mode under test, for rows that share a function */
    int want;
};

/* ---------------------------------------------------------- helpers */

static int n_frees;

static void counting_free(void *p)
{
    n_frees++;
    free(p);
}

static int ptr_code(const void *p)
{
    return p ? 1 : -errno;
}

/* A future that succeeded with an int64. */
static future_t *done_future(void)
{
    future_t *f = future_new();
    ck_assert_ptr_nonnull(f);
    int64_t *v = malloc(sizeof(*v));
    *v = 42;
    ck_assert_int_eq(future_set_result(f, v, sizeof(*v), free), 0);
    return f;
}

static executor_t *new_ex(void)
{
    executor_t *ex = thread_pool_executor_new(NULL);
    ck_assert_ptr_nonnull(ex);
    return ex;
}

/* Runs @body inside a task; its code is the row's result if the task could
 * still answer afterwards (the failed call left the task as it found it). */
struct in_task {
    int (*body)(task_t *t);
    int code;
    int after;
};

static void t_in_task(task_t *t)
{
    struct in_task *it = (struct in_task *)task_arg(t, NULL);
    it->code = it->body(t);
    it->after = task_return_i64(t, 9);
}

static int in_task(int (*body)(task_t *t))
{
    executor_t *ex = new_ex();
    struct in_task it = {body, 1, 1};
    future_t *f = executor_submit(ex, t_in_task, &it, 0);
    ck_assert_ptr_nonnull(f);
    int64_t v = 0;
    int rc = future_result_i64(f, T_LONG, &v);
    future_unref(f);
    executor_free(ex);
    return rc == 0 && v == 9 && it.after == 0 ? it.code : ROW_BROKEN;
}

/* Calls through a pointer: the format attribute does not reach a NULL format. */
static int (*volatile return_str_fn)(task_t *, const char *, ...) = task_return_str;

static void cb_noop(future_t *f, void *ud)
{
    (void)f;
    (void)ud;
}

/* ---------------------------------------------------------- version, names */

static int r_version(const struct row *r)
{
    (void)r;
    const char *v = cfutures_version();
    return v && strcmp(v, CFUTURES_VERSION) == 0 ? 0 : 1;
}

static int r_strerror_unknown(const struct row *r)
{
    const char *s = future_strerror((int)r->x);
    return s && strcmp(s, "unknown error") == 0 ? 0 : 1;
}

static int r_strerror_distinct(const struct row *r)
{
    (void)r;
    static const int codes[] = {0,           FUT_ETIMEDOUT, FUT_ECANCELLED, FUT_ESHUTDOWN,
                                FUT_EINVAL,  FUT_ENOMEM,    FUT_EFULL,      FUT_ETASK,
                                FUT_EBROKEN, FUT_EWORKER,   FUT_EDEADLINE,  FUT_ESTATE,
                                FUT_ESYS,    FUT_EOF};
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        const char *a = future_strerror(codes[i]);
        if (!a || strcmp(a, "unknown error") == 0)
            return 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(a, future_strerror(codes[j])) == 0)
                return 1;
    }
    return 0;
}

/* ---------------------------------------------------------- tasks */

static int r_task_arg_null(const struct row *r)
{
    (void)r;
    size_t len = 77;
    errno = 0;
    int rc = ptr_code(task_arg(NULL, &len));
    return len == 77 ? rc : ROW_BROKEN;
}

static int r_task_arg_null_len(const struct row *r)
{
    (void)r;
    errno = 0;
    return ptr_code(task_arg(NULL, NULL));
}

static int r_task_return_null_task(const struct row *r)
{
    (void)r;
    n_frees = 0;
    int rc = task_return(NULL, malloc(8), 8, counting_free);
    return n_frees == 1 ? rc : ROW_BROKEN; /* takes ownership on failure too */
}

static int r_task_return_null_all(const struct row *r)
{
    (void)r;
    return task_return(NULL, NULL, 0, NULL);
}

static int r_task_return_copy_null(const struct row *r)
{
    (void)r;
    int64_t v = 1;
    return task_return_copy(NULL, &v, sizeof(v));
}

static int r_task_return_str_null(const struct row *r)
{
    (void)r;
    return task_return_str(NULL, "%d", 1);
}

static int r_task_return_i64_null(const struct row *r)
{
    (void)r;
    return task_return_i64(NULL, 1);
}

static int r_task_raise_null(const struct row *r)
{
    (void)r;
    return task_raise(NULL, 1, "%s", "x");
}

static int r_task_should_stop_null(const struct row *r)
{
    (void)r;
    return task_should_stop(NULL);
}

static int b_return_null_data(task_t *t)
{
    return task_return(t, NULL, 5, NULL);
}

static int r_task_return_null_data(const struct row *r)
{
    (void)r;
    return in_task(b_return_null_data);
}

static int b_return_copy_null_data(task_t *t)
{
    return task_return_copy(t, NULL, 5);
}

static int r_task_return_copy_null_data(const struct row *r)
{
    (void)r;
    return in_task(b_return_copy_null_data);
}

static int b_return_str_null_fmt(task_t *t)
{
    return return_str_fn(t, NULL);
}

static int r_task_return_str_null_fmt(const struct row *r)
{
    (void)r;
    return in_task(b_return_str_null_fmt);
}

/* task_raise with a NULL format: FUT_EINVAL, and the task has not answered. */
static int (*volatile raise_fn)(task_t *, int, const char *, ...) = task_raise;

static int b_raise_null_fmt(task_t *t)
{
    return raise_fn(t, 1, NULL);
}

static int r_task_raise_null_fmt(const struct row *r)
{
    (void)r;
    return in_task(b_raise_null_fmt);
}

/* ---------------------------------------------------------- futures */

static int r_future_ref_null(const struct row *r)
{
    (void)r;
    return future_ref(NULL) == NULL ? 0 : 1;
}

static int r_future_unref_null(const struct row *r)
{
    (void)r;
    future_unref(NULL);
    return 0;
}

static int r_future_cancel_null(const struct row *r)
{
    (void)r;
    return future_cancel(NULL);
}

static int r_future_cancelled_null(const struct row *r)
{
    (void)r;
    return future_cancelled(NULL);
}

static int r_future_running_null(const struct row *r)
{
    (void)r;
    return future_running(NULL);
}

static int r_future_done_null(const struct row *r)
{
    (void)r;
    return future_done(NULL);
}

static int r_future_error_is_broken_null(const struct row *r)
{
    (void)r;
    return future_error_is_broken(NULL);
}

static int r_future_result_null(const struct row *r)
{
    (void)r;
    const void *d;
    size_t l;
    return future_result(NULL, 0, &d, &l);
}

static int r_future_result_timeout(const struct row *r)
{
    future_t *f = done_future();
    const void *d = NULL;
    size_t l = 99;
    int rc = future_result(f, r->x, &d, &l);
    if (rc != 0 && (d != NULL || l != 99))
        rc = ROW_BROKEN;
    future_unref(f);
    return rc;
}

static int r_future_result_i64_null(const struct row *r)
{
    (void)r;
    int64_t v;
    return future_result_i64(NULL, 0, &v);
}

static int r_future_result_i64_null_out(const struct row *r)
{
    (void)r;
    future_t *f = done_future();
    int rc = future_result_i64(f, 0, NULL);
    future_unref(f);
    return rc;
}

static int r_future_result_i64_timeout(const struct row *r)
{
    future_t *f = done_future();
    int64_t v = 0;
    int rc = future_result_i64(f, r->x, &v);
    future_unref(f);
    return rc;
}

static int r_future_result_str_null(const struct row *r)
{
    (void)r;
    errno = 0;
    return ptr_code(future_result_str(NULL, 0));
}

static int r_future_result_str_timeout(const struct row *r)
{
    future_t *f = future_new();
    char *s = strdup("text");
    ck_assert_int_eq(future_set_result(f, s, 5, free), 0);
    errno = 0;
    int rc = ptr_code(future_result_str(f, r->x));
    future_unref(f);
    return rc;
}

static int r_future_exception_null(const struct row *r)
{
    (void)r;
    const future_error_t *e;
    return future_exception(NULL, 0, &e);
}

static int r_future_exception_null_out(const struct row *r)
{
    (void)r;
    future_t *f = done_future();
    int rc = future_exception(f, 0, NULL);
    future_unref(f);
    return rc;
}

static int r_future_exception_timeout(const struct row *r)
{
    future_t *f = done_future();
    const future_error_t *e = NULL;
    int rc = future_exception(f, r->x, &e);
    future_unref(f);
    return rc;
}

static int r_future_add_done_callback_null(const struct row *r)
{
    (void)r;
    return future_add_done_callback(NULL, cb_noop, NULL);
}

static int r_future_add_done_callback_null_cb(const struct row *r)
{
    (void)r;
    future_t *f = future_new();
    int rc = future_add_done_callback(f, NULL, NULL);
    future_unref(f);
    return rc;
}

static int r_future_set_running_null(const struct row *r)
{
    (void)r;
    return future_set_running_or_notify_cancel(NULL);
}

static int r_future_set_result_null(const struct row *r)
{
    (void)r;
    n_frees = 0;
    int rc = future_set_result(NULL, malloc(8), 8, counting_free);
    return n_frees == 1 ? rc : ROW_BROKEN;
}

static int r_future_set_result_null_data(const struct row *r)
{
    (void)r;
    future_t *f = future_new();
    int rc = future_set_result(f, NULL, 5, NULL);
    if (future_done(f)) /* a failed call leaves the future pending */
        rc = ROW_BROKEN;
    future_unref(f);
    return rc;
}

/*
 * The promise-side calls on a pending future an executor owns (a delayed
 * task's: certain to stay pending): refused, the data freed, the future left
 * pending. Before, the executor's queue count never heard of the outcome
 * (max_queue full for good, shutdown(wait) hung).
 */
static int r_promise_on_task(const struct row *r)
{
    executor_t *ex = new_ex();
    future_t *f =
        executor_submit_with(ex, t_nothing, NULL, 0, &(submit_options_t){.delay = 3600});
    ck_assert_ptr_nonnull(f);
    n_frees = 0;
    int rc = r->x == 0   ? future_set_result(f, malloc(8), 8, counting_free)
             : r->x == 1 ? future_set_exception(f, 1, "%s", "x")
                         : future_set_running_or_notify_cancel(f);
    if ((r->x == 0 && n_frees != 1) || future_done(f) || future_running(f))
        rc = ROW_BROKEN;
    executor_free(ex); /* cancels the delayed task */
    if (!future_cancelled(f))
        rc = ROW_BROKEN;
    future_unref(f);
    return rc;
}

static int r_future_set_exception_null(const struct row *r)
{
    (void)r;
    return future_set_exception(NULL, 1, "%s", "x");
}

static int r_future_set_exception_null_fmt(const struct row *r)
{
    (void)r;
    int (*volatile set_exc)(future_t *, int, const char *, ...) = future_set_exception;
    future_t *f = future_new();
    int rc = set_exc(f, 1, NULL);
    if (future_done(f)) /* a failed call leaves the future pending */
        rc = ROW_BROKEN;
    future_unref(f);
    return rc;
}

/* ---------------------------------------------------------- executors */

static int r_new_opts(const struct row *r, executor_options_t o)
{
    (void)r;
    errno = 0;
    executor_t *ex = thread_pool_executor_new(&o);
    int rc = ptr_code(ex);
    executor_free(ex);
    return rc;
}

static int r_new_max_workers(const struct row *r)
{
    return r_new_opts(r, (executor_options_t){.max_workers = (int)r->x});
}

static int r_new_max_tasks(const struct row *r)
{
    return r_new_opts(r, (executor_options_t){.max_tasks_per_child = (int)r->x});
}

static int r_new_initarg_len(const struct row *r)
{
    return r_new_opts(r,
                      (executor_options_t){.initializer = t_nothing, .initarg_len = 4});
}

static int r_new_worker_death(const struct row *r)
{
    return r_new_opts(
        r, (executor_options_t){.on_worker_death = (fut_worker_death)(int)r->x});
}

static int r_submit_null_ex(const struct row *r)
{
    (void)r;
    int64_t v = 1;
    errno = 0;
    return ptr_code(executor_submit(NULL, t_add1, &v, sizeof(v)));
}

/* The failed call must leave the executor as it was: nothing queued. */
static int check_untouched(executor_t *ex, int rc)
{
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    if (st.queued || st.running || st.completed || st.failed || st.workers)
        rc = ROW_BROKEN;
    executor_free(ex);
    return rc;
}

static int r_submit_null_fn(const struct row *r)
{
    (void)r;
    executor_t *ex = new_ex();
    int64_t v = 1;
    errno = 0;
    return check_untouched(ex, ptr_code(executor_submit(ex, NULL, &v, sizeof(v))));
}

/* A length with no bytes: refused on a thread pool too (it passed NULL on). */
static int r_submit_null_arg(const struct row *r)
{
    executor_t *ex = new_ex();
    errno = 0;
    if (r->x == 0)
        return check_untouched(ex, ptr_code(executor_submit(ex, t_add1, NULL, 8)));
    return check_untouched(
        ex, ptr_code(executor_submit_with(ex, t_add1, NULL, 8, &(submit_options_t){0})));
}

static int r_submit_with_null_ex(const struct row *r)
{
    (void)r;
    int64_t v = 1;
    errno = 0;
    return ptr_code(
        executor_submit_with(NULL, t_add1, &v, sizeof(v), &(submit_options_t){0}));
}

static int r_submit_with_null_fn(const struct row *r)
{
    (void)r;
    executor_t *ex = new_ex();
    int64_t v = 1;
    errno = 0;
    return check_untouched(ex, ptr_code(executor_submit_with(ex, NULL, &v, sizeof(v),
                                                             &(submit_options_t){0})));
}

static int r_submit_with_timeout(const struct row *r)
{
    executor_t *ex = new_ex();
    int64_t v = 1;
    errno = 0;
    future_t *f = executor_submit_with(ex, t_add1, &v, sizeof(v),
                                       &(submit_options_t){.timeout = r->x});
    int rc = ptr_code(f);
    if (f) {
        future_result(f, T_LONG, NULL, NULL);
        future_unref(f);
        executor_free(ex);
        return rc;
    }
    return check_untouched(ex, rc);
}

static int r_map_null_ex(const struct row *r)
{
    (void)r;
    int64_t v = 1;
    const void *args[1] = {&v};
    errno = 0;
    return ptr_code(executor_map(NULL, t_add1, args, NULL, 1, NULL));
}

static int r_map_null_fn(const struct row *r)
{
    (void)r;
    executor_t *ex = new_ex();
    int64_t v = 1;
    const void *args[1] = {&v};
    errno = 0;
    return check_untouched(ex, ptr_code(executor_map(ex, NULL, args, NULL, 1, NULL)));
}

static int r_map_null_args(const struct row *r)
{
    (void)r;
    executor_t *ex = new_ex();
    errno = 0;
    return check_untouched(ex, ptr_code(executor_map(ex, t_add1, NULL, NULL, 3, NULL)));
}

/* So many items (unordered) that the iterator's slot stack would wrap size_t: ENOMEM. */
static int r_map_huge_unordered(const struct row *r)
{
    (void)r;
    executor_t *ex = new_ex();
    int64_t v = 1;
    const void *args[1] = {&v}; /* never read: nothing is allocated */
    errno = 0;
    return check_untouched(ex,
                           ptr_code(executor_map(ex, t_add1, args, NULL, SIZE_MAX / 8 + 3,
                                                 &(map_options_t){.unordered = true})));
}

/* An item with a length and no bytes: refused at once, not as a failed item later. */
static int r_map_null_item(const struct row *r)
{
    (void)r;
    executor_t *ex = new_ex();
    int64_t v = 1;
    const void *args[3] = {&v, NULL, &v};
    size_t lens[3] = {sizeof(v), sizeof(v), sizeof(v)};
    errno = 0;
    return check_untouched(ex, ptr_code(executor_map(ex, t_add1, args, lens, 3, NULL)));
}

static int r_map_timeout(const struct row *r)
{
    executor_t *ex = new_ex();
    int64_t v = 1;
    const void *args[1] = {&v};
    size_t lens[1] = {sizeof(v)};
    errno = 0;
    executor_map_t *m =
        executor_map(ex, t_add1, args, lens, 1, &(map_options_t){.timeout = r->x});
    int rc = ptr_code(m);
    if (m) {
        executor_map_free(m);
        executor_free(ex);
        return rc;
    }
    return check_untouched(ex, rc);
}

static int r_map_empty_ok(const struct row *r)
{
    (void)r;
    executor_t *ex = new_ex();
    executor_map_t *m = executor_map(ex, t_add1, NULL, NULL, 0, NULL);
    int rc = m && executor_map_next(m, NULL, NULL) == FUT_EOF ? 0 : 1;
    executor_map_free(m);
    executor_free(ex);
    return rc;
}

static int r_map_next_null(const struct row *r)
{
    (void)r;
    const void *d;
    size_t l;
    return executor_map_next(NULL, &d, &l);
}

static int r_map_free_null(const struct row *r)
{
    (void)r;
    executor_map_free(NULL);
    return 0;
}

static int r_shutdown_null(const struct row *r)
{
    return executor_shutdown(NULL, r->x != 0, false);
}

static int r_free_null(const struct row *r)
{
    (void)r;
    executor_free(NULL);
    return 0;
}

static int r_stats_null_ex(const struct row *r)
{
    (void)r;
    executor_stats_t st;
    return executor_stats(NULL, &st);
}

static int r_stats_null_out(const struct row *r)
{
    (void)r;
    executor_t *ex = new_ex();
    int rc = executor_stats(ex, NULL);
    executor_free(ex);
    return rc;
}

/* ---------------------------------------------------------- many futures */

/* @n futures, done ones; entry @hole (if < n) is NULL. */
static void make_fs(future_t **fs, size_t n, size_t hole)
{
    for (size_t i = 0; i < n; i++)
        fs[i] = i == hole ? NULL : done_future();
}

static void free_fs(future_t **fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        future_unref(fs[i]);
}

static int r_asc_null_fs(const struct row *r)
{
    (void)r;
    errno = 0;
    return ptr_code(as_completed_new(NULL, 2, FUT_FOREVER));
}

static int r_asc_null_entry(const struct row *r)
{
    size_t n = (size_t)r->x;
    future_t *fs[20] = {0};
    make_fs(fs, n, n / 2);
    errno = 0;
    as_completed_t *it = as_completed_new(fs, n, FUT_FOREVER);
    int rc = ptr_code(it);
    as_completed_free(it);
    free_fs(fs, n); /* LSan: a reference taken and kept would leak */
    return rc;
}

static int r_asc_timeout(const struct row *r)
{
    future_t *fs[2];
    make_fs(fs, 2, 2);
    errno = 0;
    as_completed_t *it = as_completed_new(fs, 2, r->x);
    int rc = ptr_code(it);
    as_completed_free(it);
    free_fs(fs, 2);
    return rc;
}

static int r_asc_empty_ok(const struct row *r)
{
    (void)r;
    as_completed_t *it = as_completed_new(NULL, 0, 0);
    future_t *out;
    int rc = it && as_completed_next(it, &out) == FUT_EOF ? 0 : 1;
    as_completed_free(it);
    return rc;
}

static int r_asc_next_null(const struct row *r)
{
    (void)r;
    future_t *out;
    return as_completed_next(NULL, &out);
}

static int r_asc_next_null_out(const struct row *r)
{
    (void)r;
    future_t *fs[1];
    make_fs(fs, 1, 1);
    as_completed_t *it = as_completed_new(fs, 1, FUT_FOREVER);
    ck_assert_ptr_nonnull(it);
    int rc = as_completed_next(it, NULL);
    future_t *out = NULL;
    /* The failed call yielded nothing: the future is still there. */
    if (as_completed_next(it, &out) != 0 || out != fs[0])
        rc = ROW_BROKEN;
    future_unref(out);
    as_completed_free(it);
    free_fs(fs, 1);
    return rc;
}

static int r_asc_free_null(const struct row *r)
{
    (void)r;
    as_completed_free(NULL);
    return 0;
}

static int r_wait_null_fs(const struct row *r)
{
    (void)r;
    size_t nd = 7;
    return futures_wait(NULL, 2, 0, FUTURES_ALL_COMPLETED, NULL, &nd, NULL, NULL);
}

static int r_wait_null_entry(const struct row *r)
{
    size_t n = (size_t)r->x;
    future_t *fs[20] = {0};
    make_fs(fs, n, n - 1);
    future_t *done[20];
    size_t nd = 0;
    int rc = futures_wait(fs, n, 0, FUTURES_ALL_COMPLETED, done, &nd, NULL, NULL);
    free_fs(fs, n);
    return rc;
}

static int r_wait_timeout(const struct row *r)
{
    future_t *fs[2];
    make_fs(fs, 2, 2);
    int rc = futures_wait(fs, 2, r->x, FUTURES_ALL_COMPLETED, NULL, NULL, NULL, NULL);
    free_fs(fs, 2);
    return rc;
}

static int r_wait_mode(const struct row *r)
{
    future_t *fs[2];
    make_fs(fs, 2, 2);
    int rc = futures_wait(fs, 2, 0, (futures_wait_mode)(int)r->x, NULL, NULL, NULL, NULL);
    free_fs(fs, 2);
    return rc;
}

static int r_wait_done_without_count(const struct row *r)
{
    (void)r;
    future_t *fs[2];
    make_fs(fs, 2, 2);
    future_t *done[2];
    int rc = futures_wait(fs, 2, 0, FUTURES_ALL_COMPLETED, done, NULL, NULL, NULL);
    free_fs(fs, 2);
    return rc;
}

static int r_wait_empty_ok(const struct row *r)
{
    (void)r;
    size_t nd = 7, nn = 7;
    int rc = futures_wait(NULL, 0, 0, (futures_wait_mode)(int)r->x, NULL, &nd, NULL, &nn);
    return rc == 0 && nd == 0 && nn == 0 ? 0 : 1;
}

/* ---------------------------------------------------------- huge arguments */

#define GIB ((size_t)1 << 30)

/*
 * @len bytes of address space that cost nothing: never-touched private
 * anonymous pages with no swap reserved. Reading them would map the zero
 * page; a correct library never reads a rejected argument at all.
 */
static void *huge_arg(size_t len)
{
    void *p =
        mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ck_assert_msg(p != MAP_FAILED, "mmap of %zu bytes: errno %d", len, errno);
    return p;
}

/* The row's arg_len: x bytes, or SIZE_MAX for x == -1. */
static size_t row_len(const struct row *r)
{
    return r->x < 0 ? SIZE_MAX : (size_t)r->x;
}

/* SIZE_MAX is checked without a mapping: the call must not read the bytes. */
static const void *row_arg(size_t len)
{
    static const char small[8];
    return len == SIZE_MAX ? small : huge_arg(len);
}

static void row_arg_free(const void *p, size_t len)
{
    if (len != SIZE_MAX)
        munmap((void *)p, len);
}

/*
 * The failed submit left the process pool as it was: nothing queued or run,
 * and a small task still gets its result; then executor_free leaves no fd
 * and no child (fork server, worker, zombie).
 */
static int pp_untouched(executor_t *ex, int rc, int fds0)
{
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    if (st.queued || st.running || st.completed || st.failed)
        rc = ROW_BROKEN;
    int64_t v = 1, got = 0;
    future_t *f = executor_submit(ex, t_add1, &v, sizeof(v));
    if (!f || future_result_i64(f, T_LONG, &got) != 0 || got != 2)
        rc = ROW_BROKEN;
    future_unref(f);
    executor_free(ex);
    if (count_fds() != fds0 || !no_children())
        rc = ROW_BROKEN;
    return rc;
}

static executor_t *new_pp(void)
{
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    ck_assert_ptr_nonnull(ex);
    return ex;
}

/* A process pool copies the argument: above CF_WIRE_MAX_PAYLOAD / 2 it refuses. */
static int r_pp_submit_huge(const struct row *r)
{
    int fds0 = count_fds();
    executor_t *ex = new_pp();
    size_t len = row_len(r);
    const void *arg = row_arg(len);
    errno = 0;
    future_t *f = executor_submit(ex, t_echo, arg, len);
    int rc = ptr_code(f);
    if (f) { /* wrongly taken: see what arrived, then fail the row */
        const void *data;
        size_t got = 0;
        future_result(f, T_LONG, &data, &got);
        future_unref(f);
        rc = got == len ? 1 : ROW_BROKEN;
    }
    row_arg_free(arg, len);
    return pp_untouched(ex, rc, fds0);
}

static int r_pp_submit_with_huge(const struct row *r)
{
    int fds0 = count_fds();
    executor_t *ex = new_pp();
    size_t len = row_len(r);
    const void *arg = row_arg(len);
    errno = 0;
    future_t *f =
        executor_submit_with(ex, t_echo, arg, len, &(submit_options_t){.timeout = 60});
    int rc = ptr_code(f);
    if (f) {
        future_result(f, T_LONG, NULL, NULL);
        future_unref(f);
    }
    row_arg_free(arg, len);
    return pp_untouched(ex, rc, fds0);
}

/*
 * The argument is checked against the kind's maximum first, whatever else
 * the call would do: a delayed task (x 0), a schedule (1) and a group's
 * delayed task (2) are refused at the call, not failed FUT_EINVAL when due;
 * a submit to a shut-down pool (3) gives FUT_EINVAL, not FUT_ESHUTDOWN.
 */
static int r_pp_later_huge(const struct row *r)
{
    int fds0 = count_fds();
    executor_t *ex = new_pp();
    size_t len = 3 * GIB;
    const void *arg = row_arg(len);
    task_group_t *g = r->x == 2 ? task_group_new(ex, NULL) : NULL;
    errno = 0;
    future_t *f = NULL;
    if (r->x == 0)
        f = executor_submit_with(ex, t_echo, arg, len,
                                 &(submit_options_t){.delay = 0.001});
    else if (r->x == 1)
        f = executor_schedule(ex, t_echo, arg, len,
                              &(schedule_options_t){.delay = 0.001});
    else if (r->x == 2)
        f = task_group_submit(g, t_echo, arg, len, &(submit_options_t){.delay = 0.001});
    int rc = ptr_code(f);
    if (f) { /* wrongly taken: it fails when due */
        const future_error_t *e = NULL;
        future_exception(f, T_LONG, &e);
        future_unref(f);
    }
    task_group_free(g);
    if (r->x == 3) {
        executor_t *shut = new_pp();
        ck_assert_int_eq(executor_shutdown(shut, true, false), 0);
        errno = 0;
        rc = ptr_code(executor_submit(shut, t_echo, arg, len));
        executor_free(shut);
    }
    row_arg_free(arg, len);
    return pp_untouched(ex, rc, fds0);
}

/*
 * A nonblocking submit of a 3 GiB argument to a process pool whose bounded
 * queue is full: FUT_EINVAL (the argument), not FUT_EFULL; a blocking one
 * waited for room before the argument was looked at.
 */
static int r_pp_full_queue_huge(const struct row *r)
{
    (void)r;
    int fds0 = count_fds();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 1, .max_queue = 1});
    ck_assert_ptr_nonnull(ex);
    future_t *busy = executor_submit(ex, t_until_stop, NULL, 0);
    ck_assert_ptr_nonnull(busy);
    double t0 = now_s();
    while (!future_running(busy) && now_s() - t0 < T_LONG)
        sleep_s(0.001);
    future_t *queued = executor_submit(ex, t_until_stop, NULL, 0);
    ck_assert_ptr_nonnull(queued);
    size_t len = 3 * GIB;
    const void *arg = row_arg(len);
    errno = 0;
    future_t *f = executor_submit_with(ex, t_echo, arg, len,
                                       &(submit_options_t){.nonblocking = true});
    int rc = ptr_code(f);
    future_unref(f);
    row_arg_free(arg, len);
    ck_assert_int_eq(executor_shutdown(ex, false, true), 0);
    future_cancel(busy);
    future_unref(busy);
    future_unref(queued);
    executor_free(ex);
    if (count_fds() != fds0 || !no_children())
        rc = ROW_BROKEN;
    return rc;
}

/*
 * A map whose middle item is 3 GiB (chunksize r->x): that item fails with
 * FUT_EINVAL, the items around it give their results, then FUT_EOF.
 */
static int r_pp_map_huge_item(const struct row *r)
{
    int fds0 = count_fds();
    executor_t *ex = new_pp();
    int64_t v = 1;
    const void *big = huge_arg(3 * GIB);
    const void *args[3] = {&v, big, &v};
    size_t lens[3] = {sizeof(v), 3 * GIB, sizeof(v)};
    map_options_t mo = {.chunksize = (size_t)r->x};
    executor_map_t *m = executor_map(ex, t_add1, args, lens, 3, &mo);
    ck_assert_ptr_nonnull(m);
    int codes[4];
    int64_t vals[3] = {0, 0, 0};
    for (int i = 0; i < 4; i++) {
        const void *data = NULL;
        size_t len = 0;
        codes[i] = executor_map_next(m, &data, &len);
        if (i < 3 && codes[i] == 0 && len == sizeof(int64_t))
            vals[i] = *(const int64_t *)data;
    }
    executor_map_free(m);
    munmap((void *)big, 3 * GIB);
    int rc = codes[1];
    if (codes[0] != 0 || vals[0] != 2 || codes[2] != 0 || vals[2] != 2 ||
        codes[3] != FUT_EOF)
        rc = ROW_BROKEN;
    executor_free(ex);
    if (count_fds() != fds0 || !no_children())
        rc = ROW_BROKEN;
    return rc;
}

/* Answers with its argument's length if task_arg gives back @want's pointer. */
static const void *volatile want_arg;

static void t_arg_len(task_t *t)
{
    size_t len = 0;
    const void *p = task_arg(t, &len);
    task_return_i64(t, p == want_arg ? (int64_t)len : -1);
}

/*
 * A thread pool borrows the argument (task_arg hands over the caller's
 * pointer): 3 GiB is carried as it is, nothing copied, nothing touched.
 */
static int r_tp_submit_huge(const struct row *r)
{
    executor_t *ex = new_ex();
    size_t len = row_len(r);
    const void *arg = huge_arg(len);
    want_arg = arg;
    future_t *f = executor_submit(ex, t_arg_len, arg, len);
    int64_t got = 0;
    int rc = f ? future_result_i64(f, T_LONG, &got) : -errno;
    future_unref(f);
    executor_free(ex);
    munmap((void *)arg, len);
    return rc == 0 && got != (int64_t)len ? ROW_BROKEN : rc;
}

/* ---------------------------------------------------------- the table */

#define BAD_TIMEOUTS(label, fn)                                                          \
    {label " NaN", fn, NAN, FUT_EINVAL}, {label " -0.5", fn, -0.5, FUT_EINVAL},          \
        {label " -2", fn, -2.0, FUT_EINVAL}, {label " +inf", fn, INFINITY, FUT_EINVAL},  \
    {                                                                                    \
        label " -inf", fn, -INFINITY, FUT_EINVAL                                         \
    }

static const struct row rows[] = {
    /* version and names */
    {"cfutures_version", r_version, 0, 0},
    {"future_strerror(12345)", r_strerror_unknown, 12345, 0},
    {"future_strerror(-99999)", r_strerror_unknown, -99999, 0},
    {"future_strerror distinct names", r_strerror_distinct, 0, 0},
    /* tasks */
    {"task_arg(NULL, &len)", r_task_arg_null, 0, FUT_EINVAL},
    {"task_arg(NULL, NULL)", r_task_arg_null_len, 0, FUT_EINVAL},
    {"task_return(NULL, data, ...) frees data", r_task_return_null_task, 0, FUT_EINVAL},
    {"task_return(NULL, NULL, 0, NULL)", r_task_return_null_all, 0, FUT_EINVAL},
    {"task_return_copy(NULL, ...)", r_task_return_copy_null, 0, FUT_EINVAL},
    {"task_return_str(NULL, ...)", r_task_return_str_null, 0, FUT_EINVAL},
    {"task_return_i64(NULL, 1)", r_task_return_i64_null, 0, FUT_EINVAL},
    {"task_raise(NULL, ...)", r_task_raise_null, 0, FUT_EINVAL},
    {"task_raise(t, 1, NULL)", r_task_raise_null_fmt, 0, FUT_EINVAL},
    {"task_should_stop(NULL) is false", r_task_should_stop_null, 0, 0},
    {"task_return(t, NULL, 5, NULL)", r_task_return_null_data, 0, FUT_EINVAL},
    {"task_return_copy(t, NULL, 5)", r_task_return_copy_null_data, 0, FUT_EINVAL},
    {"task_return_str(t, NULL)", r_task_return_str_null_fmt, 0, FUT_EINVAL},
    /* futures */
    {"future_ref(NULL)", r_future_ref_null, 0, 0},
    {"future_unref(NULL)", r_future_unref_null, 0, 0},
    {"future_cancel(NULL) is false", r_future_cancel_null, 0, 0},
    {"future_cancelled(NULL) is false", r_future_cancelled_null, 0, 0},
    {"future_running(NULL) is false", r_future_running_null, 0, 0},
    {"future_done(NULL) is false", r_future_done_null, 0, 0},
    {"future_error_is_broken(NULL) is false", r_future_error_is_broken_null, 0, 0},
    {"future_result(NULL, ...)", r_future_result_null, 0, FUT_EINVAL},
    BAD_TIMEOUTS("future_result timeout", r_future_result_timeout),
    {"future_result_i64(NULL, ...)", r_future_result_i64_null, 0, FUT_EINVAL},
    {"future_result_i64(f, 0, NULL)", r_future_result_i64_null_out, 0, FUT_EINVAL},
    BAD_TIMEOUTS("future_result_i64 timeout", r_future_result_i64_timeout),
    {"future_result_str(NULL, 0)", r_future_result_str_null, 0, FUT_EINVAL},
    BAD_TIMEOUTS("future_result_str timeout", r_future_result_str_timeout),
    {"future_exception(NULL, ...)", r_future_exception_null, 0, FUT_EINVAL},
    {"future_exception(f, 0, NULL)", r_future_exception_null_out, 0, FUT_EINVAL},
    BAD_TIMEOUTS("future_exception timeout", r_future_exception_timeout),
    {"future_add_done_callback(NULL, cb)", r_future_add_done_callback_null, 0,
     FUT_EINVAL},
    {"future_add_done_callback(f, NULL)", r_future_add_done_callback_null_cb, 0,
     FUT_EINVAL},
    {"future_set_running_or_notify_cancel(NULL)", r_future_set_running_null, 0,
     FUT_EINVAL},
    {"future_set_result(NULL, data, ...) frees data", r_future_set_result_null, 0,
     FUT_EINVAL},
    {"future_set_result(f, NULL, 5, NULL)", r_future_set_result_null_data, 0, FUT_EINVAL},
    {"future_set_exception(NULL, ...)", r_future_set_exception_null, 0, FUT_EINVAL},
    {"future_set_exception(f, 1, NULL)", r_future_set_exception_null_fmt, 0, FUT_EINVAL},
    {"future_set_result on a task's future", r_promise_on_task, 0, FUT_EINVAL},
    {"future_set_exception on a task's future", r_promise_on_task, 1, FUT_EINVAL},
    {"future_set_running_or_notify_cancel on a task's future", r_promise_on_task, 2,
     FUT_EINVAL},
    /* executors */
    {"max_workers -1", r_new_max_workers, -1, FUT_EINVAL},
    {"max_workers INT_MIN", r_new_max_workers, INT_MIN, FUT_EINVAL},
    {"max_tasks_per_child -1", r_new_max_tasks, -1, FUT_EINVAL},
    {"initarg_len without initarg", r_new_initarg_len, 0, FUT_EINVAL},
    {"on_worker_death 7", r_new_worker_death, 7, FUT_EINVAL},
    {"on_worker_death -1", r_new_worker_death, -1, FUT_EINVAL},
    {"executor_submit(NULL, ...)", r_submit_null_ex, 0, FUT_EINVAL},
    {"executor_submit(ex, NULL, ...)", r_submit_null_fn, 0, FUT_EINVAL},
    {"executor_submit(ex, fn, NULL, 8)", r_submit_null_arg, 0, FUT_EINVAL},
    {"executor_submit_with(ex, fn, NULL, 8, so)", r_submit_null_arg, 1, FUT_EINVAL},
    {"executor_submit_with(NULL, ...)", r_submit_with_null_ex, 0, FUT_EINVAL},
    {"executor_submit_with(ex, NULL, ...)", r_submit_with_null_fn, 0, FUT_EINVAL},
    BAD_TIMEOUTS("submit_options.timeout", r_submit_with_timeout),
    {"submit_options.timeout -1 (FUT_FOREVER)", r_submit_with_timeout, FUT_FOREVER,
     FUT_EINVAL},
    {"executor_map(NULL, ...)", r_map_null_ex, 0, FUT_EINVAL},
    {"executor_map(ex, NULL, ...)", r_map_null_fn, 0, FUT_EINVAL},
    {"executor_map(ex, fn, NULL, NULL, 3)", r_map_null_args, 0, FUT_EINVAL},
    {"executor_map with a NULL item of length 8", r_map_null_item, 0, FUT_EINVAL},
    {"executor_map of SIZE_MAX / 8 + 3 items, unordered", r_map_huge_unordered, 0,
     FUT_ENOMEM},
    BAD_TIMEOUTS("map_options.timeout", r_map_timeout),
    {"executor_map(ex, fn, NULL, NULL, 0) is valid", r_map_empty_ok, 0, 0},
    {"executor_map_next(NULL, ...)", r_map_next_null, 0, FUT_EINVAL},
    {"executor_map_free(NULL)", r_map_free_null, 0, 0},
    {"executor_shutdown(NULL, false)", r_shutdown_null, 0, FUT_EINVAL},
    {"executor_shutdown(NULL, true)", r_shutdown_null, 1, FUT_EINVAL},
    {"executor_free(NULL)", r_free_null, 0, 0},
    {"executor_stats(NULL, &st)", r_stats_null_ex, 0, FUT_EINVAL},
    {"executor_stats(ex, NULL)", r_stats_null_out, 0, FUT_EINVAL},
    /* huge arguments: process pools copy at most CF_WIRE_MAX_PAYLOAD / 2 (2 GiB) */
    {"process executor_submit arg_len 3 GiB", r_pp_submit_huge, 3.0 * GIB, FUT_EINVAL},
    {"process executor_submit arg_len 2 GiB + 1", r_pp_submit_huge, 2.0 * GIB + 1,
     FUT_EINVAL},
    {"process executor_submit arg_len SIZE_MAX", r_pp_submit_huge, -1, FUT_EINVAL},
    {"process executor_submit_with arg_len 3 GiB", r_pp_submit_with_huge, 3.0 * GIB,
     FUT_EINVAL},
    {"process executor_submit_with delay, arg_len 3 GiB", r_pp_later_huge, 0, FUT_EINVAL},
    {"process executor_schedule arg_len 3 GiB", r_pp_later_huge, 1, FUT_EINVAL},
    {"process task_group_submit delay, arg_len 3 GiB", r_pp_later_huge, 2, FUT_EINVAL},
    {"process executor_submit arg_len 3 GiB, shut down", r_pp_later_huge, 3, FUT_EINVAL},
    {"process nonblocking submit arg_len 3 GiB, queue full", r_pp_full_queue_huge, 0,
     FUT_EINVAL},
    {"process executor_map item of 3 GiB", r_pp_map_huge_item, 1, FUT_EINVAL},
    {"process executor_map item of 3 GiB, chunksize 3", r_pp_map_huge_item, 3,
     FUT_EINVAL},
    {"thread executor_submit arg_len 3 GiB is borrowed", r_tp_submit_huge, 3.0 * GIB, 0},
    /* many futures */
    {"as_completed_new(NULL, 2)", r_asc_null_fs, 0, FUT_EINVAL},
    {"as_completed_new NULL entry (3)", r_asc_null_entry, 3, FUT_EINVAL},
    {"as_completed_new NULL entry (12)", r_asc_null_entry, 12, FUT_EINVAL},
    BAD_TIMEOUTS("as_completed_new timeout", r_asc_timeout),
    {"as_completed_new(NULL, 0) is valid", r_asc_empty_ok, 0, 0},
    {"as_completed_next(NULL, &out)", r_asc_next_null, 0, FUT_EINVAL},
    {"as_completed_next(it, NULL)", r_asc_next_null_out, 0, FUT_EINVAL},
    {"as_completed_free(NULL)", r_asc_free_null, 0, 0},
    {"futures_wait(NULL, 2)", r_wait_null_fs, 0, FUT_EINVAL},
    {"futures_wait NULL entry (3)", r_wait_null_entry, 3, FUT_EINVAL},
    {"futures_wait NULL entry (20)", r_wait_null_entry, 20, FUT_EINVAL},
    BAD_TIMEOUTS("futures_wait timeout", r_wait_timeout),
    {"futures_wait mode 7", r_wait_mode, 7, FUT_EINVAL},
    {"futures_wait mode -1", r_wait_mode, -1, FUT_EINVAL},
    {"futures_wait done without n_done", r_wait_done_without_count, 0, FUT_EINVAL},
    {"futures_wait(NULL, 0, FIRST_COMPLETED) is valid", r_wait_empty_ok,
     FUTURES_FIRST_COMPLETED, 0},
    {"futures_wait(NULL, 0, FIRST_EXCEPTION) is valid", r_wait_empty_ok,
     FUTURES_FIRST_EXCEPTION, 0},
    {"futures_wait(NULL, 0, ALL_COMPLETED) is valid", r_wait_empty_ok,
     FUTURES_ALL_COMPLETED, 0},
};
#define N_ROWS ((int)(sizeof(rows) / sizeof(rows[0])))

/* Every public function: bad arguments give the exact code, never a crash */
START_TEST(test_errors_table)
{
    const struct row *r = &rows[_i];
    int got = r->call(r);
    ck_assert_msg(got == r->want, "%s: got %d (%s), want %d (%s)", r->name, got,
                  got == ROW_BROKEN ? "the failed call changed its objects"
                                    : future_strerror(got),
                  r->want, future_strerror(r->want));
}
END_TEST

/* The good timeouts are accepted: FUT_FOREVER and 0 on a done future */
START_TEST(test_errors_good_timeouts_accepted)
{
    future_t *f = done_future();
    double good[] = {FUT_FOREVER, 0.0, 1e-9, 1e9};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t v = 0;
        ck_assert_int_eq(future_result_i64(f, good[i], &v), 0);
        ck_assert_int_eq(v, 42);
        const future_error_t *e = (const future_error_t *)1;
        ck_assert_int_eq(future_exception(f, good[i], &e), 0);
        ck_assert_ptr_null(e);
        ck_assert_int_eq(
            futures_wait(&f, 1, good[i], FUTURES_ALL_COMPLETED, NULL, NULL, NULL, NULL),
            0);
        as_completed_t *it = as_completed_new(&f, 1, good[i]);
        ck_assert_ptr_nonnull(it);
        as_completed_free(it);
    }
    future_unref(f);
}
END_TEST

Suite *make_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_errors_table, 0, N_ROWS);
    tcase_add_test(tc, test_errors_good_timeouts_accepted);
    suite_add_tcase(s, tc);
    return s;
}
