/*
 * check_task: the task_* functions a task function calls (task.c), run
 * inside task functions on a thread pool.
 *
 * Each task records what its task_* calls returned into a struct probe the
 * test passes as its argument; the test reads it once the future is done
 * (the worker completes the future after the task function returned).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* ------------------------------------------------------------ helpers */

static atomic_int n_freed;

static void count_free(void *p)
{
    atomic_fetch_add(&n_freed, 1);
    free(p);
}

/*
 * A checked fixture (runs in the test's own process): counters start at 0
 * even with CK_FORK=no, and a sanitizer's helper thread exists before the
 * test counts threads. It creates no executor.
 */
static void reset_counters(void)
{
    atomic_store(&n_freed, 0);
    warm_up_threads();
}

static void *counted_copy(const void *src, size_t len)
{
    void *p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);
    memcpy(p, src, len);
    return p;
}

/* What a probing task saw. */
struct probe {
    const void *arg; /* task_arg's answer */
    size_t len;
    int rc[4];       /* return codes of its task_* calls */
    int freed_after; /* n_freed right after a rejected answer */
    bool stop_before, stop_after;
    void *returned; /* the pointer it handed to task_return */
    gate_t started; /* opened once the task runs */
    gate_t go;      /* the test opens it to let the task go on */
};

static void probe_init(struct probe *p)
{
    memset(p, 0, sizeof(*p));
    gate_init(&p->started);
    gate_init(&p->go);
}

static void probe_destroy(struct probe *p)
{
    gate_destroy(&p->started);
    gate_destroy(&p->go);
}

/* Every test that starts a pool checks that no thread is left. */
struct pool {
    executor_t *ex;
    int threads_before;
};

static struct pool pool_new(int workers)
{
    struct pool p = {NULL, count_threads()};
    p.ex = thread_pool_executor_new(&(executor_options_t){.max_workers = workers});
    ck_assert_ptr_nonnull(p.ex);
    return p;
}

static void pool_free(struct pool *p)
{
    executor_free(p->ex);
    ck_assert(wait_threads(p->threads_before));
}

/* Submits @fn(@arg, @len) and waits for it; returns the future. */
static future_t *run(struct pool *p, task_fn fn, const void *arg, size_t len)
{
    future_t *f = executor_submit(p->ex, fn, arg, len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ne(future_result(f, T_LONG, NULL, NULL), FUT_ETIMEDOUT);
    return f;
}

/* ------------------------------------------------------------ task_arg */

/* The probe is a field of a larger struct: the task records task_arg. */
static void t_record_arg(task_t *t)
{
    size_t len = 12345;
    const void *a = task_arg(t, &len);
    struct probe *p = *(struct probe *const *)a; /* the arg holds a probe pointer */
    p->arg = a;
    p->len = len;
    /* len may be NULL. */
    p->rc[0] = task_arg(t, NULL) == a ? 0 : -1;
}

/* A thread pool hands over the caller's pointer itself, with its length. */
START_TEST(test_task_arg_is_callers_pointer)
{
    struct pool pl = pool_new(2);
    struct probe pr;
    probe_init(&pr);
    struct {
        struct probe *p;
        char payload[100];
    } arg = {&pr, "payload"};
    future_t *f = run(&pl, t_record_arg, &arg, sizeof(arg));
    ck_assert_int_eq(future_result(f, 0, NULL, NULL), 0);
    ck_assert_ptr_eq(pr.arg, &arg);
    ck_assert_uint_eq(pr.len, sizeof(arg));
    ck_assert_int_eq(pr.rc[0], 0);
    future_unref(f);

    /* arg_len 0 with a real pointer: an opaque pointer, passed as is. */
    f = run(&pl, t_record_arg, &arg, 0);
    ck_assert_ptr_eq(pr.arg, &arg);
    ck_assert_uint_eq(pr.len, 0);
    future_unref(f);
    pool_free(&pl);
    probe_destroy(&pr);
}
END_TEST

static const void *seen_arg = (const void *)1;
static size_t seen_len = 99;

static void t_record_null_arg(task_t *t)
{
    seen_arg = task_arg(t, &seen_len);
    task_return_i64(t, seen_arg == NULL && seen_len == 0);
}

/* NULL argument, length 0: the task sees NULL and 0 (and it is no error). */
START_TEST(test_task_arg_null_and_empty)
{
    struct pool pl = pool_new(1);
    future_t *f = run(&pl, t_record_null_arg, NULL, 0);
    int64_t v = 0;
    ck_assert_int_eq(future_result_i64(f, 0, &v), 0);
    ck_assert_int_eq(v, 1);
    future_unref(f);
    pool_free(&pl);
}
END_TEST

/* ------------------------------------------------------------ task_return */

static void t_return_counted(task_t *t)
{
    struct probe *p = (struct probe *)task_arg(t, NULL);
    p->returned = counted_copy("0123456789abcdef", 16);
    p->rc[0] = task_return(t, p->returned, 16, count_free);
}

/* task_return takes ownership: the data is handed over as is (thread pool),
 * and free_fn runs once, when the future's last reference goes. */
START_TEST(test_task_return_takes_ownership)
{
    struct pool pl = pool_new(1);
    struct probe pr;
    probe_init(&pr);
    future_t *f = run(&pl, t_return_counted, &pr, sizeof(pr));
    ck_assert_int_eq(pr.rc[0], 0);
    const void *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(future_result(f, 0, &data, &len), 0);
    ck_assert_ptr_eq(data, pr.returned);
    ck_assert_uint_eq(len, 16);
    ck_assert(memcmp(data, "0123456789abcdef", 16) == 0);
    pool_free(&pl); /* the workers dropped their references */
    ck_assert_int_eq(atomic_load(&n_freed), 0);
    future_t *again = future_ref(f);
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 0);
    future_unref(again);
    ck_assert_int_eq(atomic_load(&n_freed), 1);
    probe_destroy(&pr);
}
END_TEST

/* A second answer is FUT_ESTATE and frees the data passed (task_return). */
static void t_return_twice(task_t *t)
{
    struct probe *p = (struct probe *)task_arg(t, NULL);
    p->rc[0] = task_return(t, counted_copy("first", 6), 6, count_free);
    p->rc[1] = task_return(t, counted_copy("second", 7), 7, count_free);
    p->freed_after = atomic_load(&n_freed);
    p->rc[2] = task_return_copy(t, "third", 6);
    p->rc[3] = task_raise(t, 1, "late");
}

START_TEST(test_task_return_twice_is_estate)
{
    struct pool pl = pool_new(1);
    struct probe pr;
    probe_init(&pr);
    future_t *f = run(&pl, t_return_twice, &pr, sizeof(pr));
    ck_assert_int_eq(pr.rc[0], 0);
    ck_assert_int_eq(pr.rc[1], FUT_ESTATE);
    ck_assert_int_eq(pr.freed_after, 1); /* freed before task_return returned */
    ck_assert_int_eq(pr.rc[2], FUT_ESTATE);
    ck_assert_int_eq(pr.rc[3], FUT_ESTATE);
    ck_assert_str_eq(future_result_str(f, 0), "first");
    pool_free(&pl);
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 2);
    probe_destroy(&pr);
}
END_TEST

/* After task_raise, every other answer is FUT_ESTATE (task_return frees its
 * data) and the future keeps the error. */
static void t_raise_then_return(task_t *t)
{
    struct probe *p = (struct probe *)task_arg(t, NULL);
    p->rc[0] = task_raise(t, 5, "first %s", "error");
    p->rc[1] = task_return(t, counted_copy("x", 2), 2, count_free);
    p->freed_after = atomic_load(&n_freed);
    p->rc[2] = task_return_str(t, "%d", 1);
    p->rc[3] = task_raise(t, 6, "second");
}

START_TEST(test_task_raise_then_return_is_estate)
{
    struct pool pl = pool_new(1);
    struct probe pr;
    probe_init(&pr);
    future_t *f = run(&pl, t_raise_then_return, &pr, sizeof(pr));
    ck_assert_int_eq(pr.rc[0], 0);
    ck_assert_int_eq(pr.rc[1], FUT_ESTATE);
    ck_assert_int_eq(pr.freed_after, 1);
    ck_assert_int_eq(pr.rc[2], FUT_ESTATE);
    ck_assert_int_eq(pr.rc[3], FUT_ESTATE);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(f, 0, &e), 0);
    ck_assert_int_eq(e->code, 5);
    ck_assert_str_eq(e->message, "first error");
    future_unref(f);
    pool_free(&pl);
    probe_destroy(&pr);
}
END_TEST

/* task_return_i64 then task_return_i64 again: FUT_ESTATE, first kept. */
static void t_i64_twice(task_t *t)
{
    struct probe *p = (struct probe *)task_arg(t, NULL);
    p->rc[0] = task_return_i64(t, 10);
    p->rc[1] = task_return_i64(t, 20);
    p->rc[2] = task_return_str(t, "no");
}

START_TEST(test_task_return_i64_twice_is_estate)
{
    struct pool pl = pool_new(1);
    struct probe pr;
    probe_init(&pr);
    future_t *f = run(&pl, t_i64_twice, &pr, sizeof(pr));
    ck_assert_int_eq(pr.rc[0], 0);
    ck_assert_int_eq(pr.rc[1], FUT_ESTATE);
    ck_assert_int_eq(pr.rc[2], FUT_ESTATE);
    int64_t v = 0;
    ck_assert_int_eq(future_result_i64(f, 0, &v), 0);
    ck_assert_int_eq(v, 10);
    future_unref(f);
    pool_free(&pl);
    probe_destroy(&pr);
}
END_TEST

/* task_return with static data (free_fn NULL) hands back the pointer itself;
 * (NULL, 0) is an empty result. */
static const char static_result[] = "static result";

static void t_return_static(task_t *t)
{
    if (task_arg(t, NULL))
        task_return(t, (void *)static_result, sizeof(static_result), NULL);
    else
        task_return(t, NULL, 0, count_free);
}

START_TEST(test_task_return_static_and_empty)
{
    struct pool pl = pool_new(1);
    int yes = 1;
    future_t *f = run(&pl, t_return_static, &yes, sizeof(yes));
    const void *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(future_result(f, 0, &data, &len), 0);
    ck_assert_ptr_eq(data, static_result);
    ck_assert_uint_eq(len, sizeof(static_result));
    ck_assert_str_eq(future_result_str(f, 0), "static result");
    future_unref(f);

    f = run(&pl, t_return_static, NULL, 0);
    len = 99;
    ck_assert_int_eq(future_result(f, 0, NULL, &len), 0);
    ck_assert_uint_eq(len, 0);
    future_unref(f);
    pool_free(&pl);
    ck_assert_int_eq(atomic_load(&n_freed), 0);
}
END_TEST

/* ------------------------------------------------------------ copies */

/* task_return_copy: a private copy of any size (small results fit inside the
 * future; large ones are allocated). t_echo copies its argument. */
START_TEST(test_task_return_copy_sizes)
{
    struct pool pl = pool_new(2);
    size_t sizes[] = {1, 7, 8, 9, 16, 1000, (size_t)1 << 20};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        unsigned char *src = malloc(n);
        for (size_t i = 0; i < n; i++)
            src[i] = (unsigned char)(i * 31 + k);
        future_t *f = run(&pl, t_echo, src, n);
        const void *data = NULL;
        size_t len = 0;
        ck_assert_int_eq(future_result(f, 0, &data, &len), 0);
        ck_assert_uint_eq(len, n);
        ck_assert_ptr_ne(data, src); /* a copy */
        ck_assert(memcmp(data, src, n) == 0);
        memset(src, 0, n); /* the copy does not depend on the source */
        ck_assert_int_eq(future_result(f, 0, &data, &len), 0);
        ck_assert_int_eq(((const unsigned char *)data)[n - 1],
                         (unsigned char)((n - 1) * 31 + k));
        free(src);
        future_unref(f);
    }
    /* Zero bytes: an empty result. */
    char dummy = 'x';
    future_t *f = run(&pl, t_echo, &dummy, 0);
    size_t len = 99;
    ck_assert_int_eq(future_result(f, 0, NULL, &len), 0);
    ck_assert_uint_eq(len, 0);
    future_unref(f);
    pool_free(&pl);
}
END_TEST

/* task_return_copy with NULL data and a length is FUT_EINVAL; with length 0
 * it is an empty result. */
static void t_copy_null(task_t *t)
{
    struct probe *p = (struct probe *)task_arg(t, NULL);
    p->rc[0] = task_return_copy(t, NULL, 4);
    p->rc[1] = task_return(t, NULL, 4, count_free);
    p->rc[2] = task_return_copy(t, NULL, 0);
}

START_TEST(test_task_return_copy_null)
{
    struct pool pl = pool_new(1);
    struct probe pr;
    probe_init(&pr);
    future_t *f = run(&pl, t_copy_null, &pr, sizeof(pr));
    ck_assert_int_eq(pr.rc[0], FUT_EINVAL);
    ck_assert_int_eq(pr.rc[1], FUT_EINVAL);
    ck_assert_int_eq(pr.rc[2], 0); /* the failed calls did not answer */
    size_t len = 99;
    ck_assert_int_eq(future_result(f, 0, NULL, &len), 0);
    ck_assert_uint_eq(len, 0);
    future_unref(f);
    pool_free(&pl);
    probe_destroy(&pr);
}
END_TEST

/* task_return_str: printf-formatted, NUL included; future_result_str reads it. */
static void t_str(task_t *t)
{
    const int *n = task_arg(t, NULL);
    task_return_str(t, "n=%d %s %05.1f", *n, "abc", 2.5);
}

START_TEST(test_task_return_str)
{
    struct pool pl = pool_new(1);
    int n = 42;
    future_t *f = run(&pl, t_str, &n, sizeof(n));
    const char *s = future_result_str(f, 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "n=42 abc 002.5");
    size_t len = 0;
    ck_assert_int_eq(future_result(f, 0, NULL, &len), 0);
    ck_assert_uint_eq(len, strlen("n=42 abc 002.5") + 1);
    future_unref(f);
    pool_free(&pl);
}
END_TEST

/* An empty string is a one-byte result that reads as "". */
static void t_empty_str(task_t *t)
{
    task_return_str(t, "%s", "");
}

START_TEST(test_task_return_str_empty)
{
    struct pool pl = pool_new(1);
    future_t *f = run(&pl, t_empty_str, NULL, 0);
    const char *s = future_result_str(f, 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "");
    size_t len = 0;
    ck_assert_int_eq(future_result(f, 0, NULL, &len), 0);
    ck_assert_uint_eq(len, 1);
    future_unref(f);
    pool_free(&pl);
}
END_TEST

/* task_return_i64: 8 bytes, native order, any value. */
static void t_i64(task_t *t)
{
    const int64_t *v = task_arg(t, NULL);
    task_return_i64(t, *v);
}

START_TEST(test_task_return_i64_values)
{
    struct pool pl = pool_new(1);
    int64_t vals[] = {0, 1, -1, INT64_MAX, INT64_MIN, 0x0102030405060708LL};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        future_t *f = run(&pl, t_i64, &vals[i], sizeof(vals[i]));
        int64_t v = 0;
        ck_assert_int_eq(future_result_i64(f, 0, &v), 0);
        ck_assert(v == vals[i]);
        const void *data;
        size_t len;
        ck_assert_int_eq(future_result(f, 0, &data, &len), 0);
        ck_assert_uint_eq(len, 8);
        ck_assert(memcmp(data, &vals[i], 8) == 0);
        future_unref(f);
    }
    pool_free(&pl);
}
END_TEST

/* ------------------------------------------------------------ task_raise */

/* task_raise: FUT_ETASK with the code and the formatted message (t_raise
 * raises *arg with "boom %d"). */
START_TEST(test_task_raise_code_and_message)
{
    struct pool pl = pool_new(1);
    int codes[] = {42, -7, ETIMEDOUT};
    for (size_t i = 0; i < 3; i++) {
        future_t *f = run(&pl, t_raise, &codes[i], sizeof(codes[i]));
        ck_assert_int_eq(future_result(f, 0, NULL, NULL), FUT_ETASK);
        const future_error_t *e = NULL;
        ck_assert_int_eq(future_exception(f, 0, &e), 0);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->status, FUT_ETASK);
        ck_assert_int_eq(e->code, codes[i]);
        char want[32];
        snprintf(want, sizeof(want), "boom %d", codes[i]);
        ck_assert_str_eq(e->message, want);
        ck_assert(!future_error_is_broken(e));
        future_unref(f);
    }
    pool_free(&pl);
}
END_TEST

/* MAP-05 flavour: a task raising ETIMEDOUT is a task error, not a timeout. */
START_TEST(test_task_raise_etimedout_is_task_error)
{
    struct pool pl = pool_new(1);
    int code = ETIMEDOUT;
    future_t *f = run(&pl, t_raise, &code, sizeof(code));
    ck_assert_int_eq(future_result(f, FUT_FOREVER, NULL, NULL), FUT_ETASK);
    future_unref(f);
    pool_free(&pl);
}
END_TEST

/* A long message (beyond any small buffer) is kept whole. */
static void t_raise_long(task_t *t)
{
    const char *s = task_arg(t, NULL);
    task_raise(t, 3, "<%s>", s);
}

START_TEST(test_task_raise_long_message)
{
    struct pool pl = pool_new(1);
    size_t n = 50000;
    char *s = malloc(n + 1);
    memset(s, 'q', n);
    s[n] = '\0';
    future_t *f = run(&pl, t_raise_long, s, n + 1);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(f, 0, &e), 0);
    ck_assert_uint_eq(strlen(e->message), n + 2);
    ck_assert_int_eq(e->message[0], '<');
    ck_assert_int_eq(e->message[n + 1], '>');
    ck_assert_int_eq(e->message[n / 2], 'q');
    future_unref(f);
    free(s);
    pool_free(&pl);
}
END_TEST

/* A task that answers nothing completes with an empty result (NULL, 0). */
START_TEST(test_task_returns_nothing_is_empty_result)
{
    struct pool pl = pool_new(1);
    future_t *f = run(&pl, t_nothing, NULL, 0);
    const void *data = (const void *)&data;
    size_t len = 99;
    ck_assert_int_eq(future_result(f, 0, &data, &len), 0);
    ck_assert_ptr_null(data);
    ck_assert_uint_eq(len, 0);
    const future_error_t *e = (const future_error_t *)&e;
    ck_assert_int_eq(future_exception(f, 0, &e), 0);
    ck_assert_ptr_null(e);
    int64_t v;
    ck_assert_int_eq(future_result_i64(f, 0, &v), FUT_EINVAL);
    errno = 0;
    ck_assert_ptr_null(future_result_str(f, 0));
    ck_assert_int_eq(errno, EINVAL);
    future_unref(f);
    pool_free(&pl);
}
END_TEST

/* ------------------------------------------------------------ should_stop */

/* False for an ordinary task, with or without a (generous) limit. */
static void t_record_stop(task_t *t)
{
    struct probe *p = (struct probe *)task_arg(t, NULL);
    p->stop_before = task_should_stop(t);
    task_return_i64(t, 1);
    p->stop_after = task_should_stop(t);
}

START_TEST(test_task_should_stop_false_normally)
{
    struct pool pl = pool_new(1);
    struct probe pr;
    probe_init(&pr);
    future_t *f = run(&pl, t_record_stop, &pr, sizeof(pr));
    ck_assert(!pr.stop_before);
    ck_assert(!pr.stop_after);
    ck_assert_int_eq(future_result(f, 0, NULL, NULL), 0);
    future_unref(f);

    pr.stop_before = pr.stop_after = true;
    f = executor_submit_with(pl.ex, t_record_stop, &pr, sizeof(pr),
                             &(submit_options_t){.timeout = T_LONG * 10});
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), 0);
    ck_assert(!pr.stop_before);
    ck_assert(!pr.stop_after);
    future_unref(f);
    pool_free(&pl);
    probe_destroy(&pr);
}
END_TEST

/*
 * True once the task's own deadline passed (submit_options_t.timeout): the
 * task spins until task_should_stop() and records that it saw it; the
 * future fails with FUT_EDEADLINE whatever the task returned.
 */
static void t_until_stop_probe(task_t *t)
{
    struct probe *p = (struct probe *)task_arg(t, NULL);
    p->stop_before = task_should_stop(t);
    gate_open(&p->started);
    double end = now_s() + T_LONG;
    while (!task_should_stop(t) && now_s() < end)
        gate_wait(&p->go, 0.001);
    p->stop_after = task_should_stop(t);
    task_return_i64(t, 7);
}

START_TEST(test_task_should_stop_after_deadline)
{
    struct pool pl = pool_new(1);
    struct probe pr;
    probe_init(&pr);
    double t0 = now_s();
    /* Long enough that the task's first look comes before it under load
       (0.05 s did not, under TSan at load 15). */
    future_t *f = executor_submit_with(pl.ex, t_until_stop_probe, &pr, sizeof(pr),
                                       &(submit_options_t){.timeout = 0.5});
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), FUT_EDEADLINE);
    ck_assert(now_s() - t0 < T_LONG);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(f, 0, &e), 0);
    ck_assert_int_eq(e->status, FUT_EDEADLINE);
    pool_free(&pl); /* the task has returned */
    ck_assert(!pr.stop_before);
    ck_assert(pr.stop_after);
    ck_assert_int_eq(future_result(f, 0, NULL, NULL), FUT_EDEADLINE); /* 7 dropped */
    future_unref(f);
    probe_destroy(&pr);
}
END_TEST

/* True after future_cancel on the task's running future (cooperative
 * cancellation): cancel returns false, the task stops early, its answer is
 * the future's result. */
START_TEST(test_task_should_stop_after_cancel)
{
    struct pool pl = pool_new(1);
    struct probe pr;
    probe_init(&pr);
    future_t *f = executor_submit(pl.ex, t_until_stop_probe, &pr, sizeof(pr));
    ck_assert_ptr_nonnull(f);
    ck_assert(gate_wait(&pr.started, T_LONG));
    ck_assert(future_running(f));
    ck_assert(!future_cancel(f));
    int64_t v = 0;
    ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
    ck_assert_int_eq(v, 7);
    ck_assert(!future_cancelled(f));
    pool_free(&pl);
    ck_assert(!pr.stop_before);
    ck_assert(pr.stop_after);
    future_unref(f);
    probe_destroy(&pr);
}
END_TEST

/* A deadline that has passed before the task looks (the smallest positive
 * timeout): task_should_stop() is true at once. */
START_TEST(test_task_should_stop_tiny_deadline)
{
    struct pool pl = pool_new(1);
    struct probe pr;
    probe_init(&pr);
    future_t *f = executor_submit_with(pl.ex, t_until_stop_probe, &pr, sizeof(pr),
                                       &(submit_options_t){.timeout = 1e-9});
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), FUT_EDEADLINE);
    pool_free(&pl);
    ck_assert(pr.stop_after);
    future_unref(f);
    probe_destroy(&pr);
}
END_TEST

/* ------------------------------------------------------------ errors */

/* NULL task to every task_* function: FUT_EINVAL (task_return frees its
 * data), NULL + EINVAL for task_arg, false for task_should_stop. */
START_TEST(test_task_null_task)
{
    size_t len = 77;
    errno = 0;
    ck_assert_ptr_null(task_arg(NULL, &len));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(task_arg(NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(task_return(NULL, counted_copy("abc", 4), 4, count_free),
                     FUT_EINVAL);
    ck_assert_int_eq(atomic_load(&n_freed), 1);
    ck_assert_int_eq(task_return(NULL, NULL, 0, NULL), FUT_EINVAL);
    ck_assert_int_eq(task_return_copy(NULL, "abc", 4), FUT_EINVAL);
    ck_assert_int_eq(task_return_str(NULL, "%d", 1), FUT_EINVAL);
    ck_assert_int_eq(task_return_i64(NULL, 1), FUT_EINVAL);
    ck_assert_int_eq(task_raise(NULL, 1, "%s", "x"), FUT_EINVAL);
    ck_assert(!task_should_stop(NULL));
}
END_TEST

/* A NULL format for task_return_str is FUT_EINVAL, and the task can still
 * answer afterwards. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-security"
#pragma GCC diagnostic ignored "-Wformat"
static void t_str_null_fmt(task_t *t)
{
    struct probe *p = (struct probe *)task_arg(t, NULL);
    const char *volatile fmt = NULL;
    p->rc[0] = task_return_str(t, fmt);
    p->rc[1] = task_return_i64(t, 3);
}
#pragma GCC diagnostic pop

START_TEST(test_task_return_str_null_format)
{
    struct pool pl = pool_new(1);
    struct probe pr;
    probe_init(&pr);
    future_t *f = run(&pl, t_str_null_fmt, &pr, sizeof(pr));
    ck_assert_int_eq(pr.rc[0], FUT_EINVAL);
    ck_assert_int_eq(pr.rc[1], 0);
    int64_t v = 0;
    ck_assert_int_eq(future_result_i64(f, 0, &v), 0);
    ck_assert_int_eq(v, 3);
    future_unref(f);
    pool_free(&pl);
    probe_destroy(&pr);
}
END_TEST

/*
 * A format vsnprintf cannot render (a wide string with no multibyte form in
 * the "C" locale: EILSEQ): task_return_str is FUT_EINVAL, not FUT_ENOMEM,
 * and the task has not answered; task_raise still fails the task, with a
 * message that says so rather than "(no memory for the error message)".
 */
static const wchar_t unrenderable[] = {0x100, 0};

static void t_unrenderable(task_t *t)
{
    struct probe *p = *(struct probe *const *)task_arg(t, NULL);
    p->rc[0] = task_return_str(t, "%ls", unrenderable);
    p->rc[1] = task_raise(t, 5, "%ls", unrenderable);
}

START_TEST(test_task_unrenderable_format)
{
    struct pool pl = pool_new(1);
    struct probe pr;
    probe_init(&pr);
    struct probe *pp = &pr;
    future_t *f = run(&pl, t_unrenderable, &pp, sizeof(pp));
    ck_assert_int_eq(pr.rc[0], FUT_EINVAL);
    ck_assert_int_eq(pr.rc[1], 0);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(f, 0, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, FUT_ETASK);
    ck_assert_int_eq(e->code, 5);
    ck_assert_str_eq(e->message, "(the error message could not be formatted)");
    future_unref(f);
    pool_free(&pl);
    probe_destroy(&pr);
}
END_TEST

/* Bad submit_options_t.timeout values are refused before anything runs. */
START_TEST(test_task_bad_deadline_refused)
{
    struct pool pl = pool_new(1);
    double bad[] = {-1.0, -0.5, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        ck_assert_ptr_null(executor_submit_with(pl.ex, t_nothing, NULL, 0,
                                                &(submit_options_t){.timeout = bad[i]}));
        ck_assert_int_eq(errno, EINVAL);
    }
    pool_free(&pl);
}
END_TEST

/* ------------------------------------------------------------ concurrency */

/* Many tasks returning counted, malloc'd results on 4 workers: every result
 * is freed exactly once, when its future's last reference goes. */
static void t_counted_i64(task_t *t)
{
    const int64_t *v = task_arg(t, NULL);
    task_return(t, counted_copy(v, sizeof(*v)), sizeof(*v), count_free);
}

START_TEST(test_task_many_counted_results)
{
    enum { N = 2000 };
    struct pool pl = pool_new(4);
    int64_t *args = malloc(N * sizeof(*args));
    future_t **fs = malloc(N * sizeof(*fs));
    for (int i = 0; i < N; i++) {
        args[i] = i;
        fs[i] = executor_submit(pl.ex, t_counted_i64, &args[i], sizeof(args[i]));
        ck_assert_ptr_nonnull(fs[i]);
    }
    for (int i = 0; i < N; i++) {
        int64_t v = -1;
        ck_assert_int_eq(future_result_i64(fs[i], T_LONG, &v), 0);
        ck_assert_int_eq(v, i);
    }
    /* Unref half while the pool lives, half after. */
    for (int i = 0; i < N; i += 2)
        future_unref(fs[i]);
    pool_free(&pl);
    ck_assert_int_eq(atomic_load(&n_freed), N / 2);
    for (int i = 1; i < N; i += 2)
        future_unref(fs[i]);
    ck_assert_int_eq(atomic_load(&n_freed), N);
    free(fs);
    free(args);
}
END_TEST

/* A future dropped by the caller before its task runs (EXE-05 flavour): the
 * result is freed once the task has run, exactly once. */
static void t_gate_then_counted(task_t *t)
{
    struct probe *p = (struct probe *)task_arg(t, NULL);
    gate_open(&p->started);
    gate_wait(&p->go, T_LONG);
    task_return(t, counted_copy("r", 2), 2, count_free);
}

START_TEST(test_task_result_freed_when_caller_dropped_future)
{
    struct pool pl = pool_new(1);
    struct probe pr;
    probe_init(&pr);
    future_t *f = executor_submit(pl.ex, t_gate_then_counted, &pr, sizeof(pr));
    ck_assert_ptr_nonnull(f);
    ck_assert(gate_wait(&pr.started, T_LONG));
    future_unref(f); /* only the executor holds it now */
    gate_open(&pr.go);
    pool_free(&pl); /* waits for the task; the worker drops the last ref */
    ck_assert_int_eq(atomic_load(&n_freed), 1);
    probe_destroy(&pr);
}
END_TEST

/* Every worker's task_should_stop is its own: cancelling one running task
 * does not stop its neighbours. */
START_TEST(test_task_should_stop_is_per_task)
{
    struct pool pl = pool_new(2);
    struct probe a, b;
    probe_init(&a);
    probe_init(&b);
    future_t *fa = executor_submit(pl.ex, t_until_stop_probe, &a, sizeof(a));
    future_t *fb = executor_submit(pl.ex, t_until_stop_probe, &b, sizeof(b));
    ck_assert(gate_wait(&a.started, T_LONG));
    ck_assert(gate_wait(&b.started, T_LONG));
    ck_assert(!future_cancel(fa));
    int64_t v = 0;
    ck_assert_int_eq(future_result_i64(fa, T_LONG, &v), 0);
    ck_assert_int_eq(v, 7);
    ck_assert(a.stop_after);
    ck_assert(!future_done(fb)); /* still spinning: nobody asked it to stop */
    ck_assert(!future_cancel(fb));
    ck_assert_int_eq(future_result_i64(fb, T_LONG, &v), 0);
    ck_assert(b.stop_after);
    future_unref(fa);
    future_unref(fb);
    pool_free(&pl);
    probe_destroy(&a);
    probe_destroy(&b);
}
END_TEST

/* ------------------------------------------------------------ suite */

Suite *make_suite(void)
{
    Suite *s = suite_create("task");

    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, reset_counters, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_task_arg_is_callers_pointer);
    tcase_add_test(tc, test_task_arg_null_and_empty);
    tcase_add_test(tc, test_task_return_takes_ownership);
    tcase_add_test(tc, test_task_return_twice_is_estate);
    tcase_add_test(tc, test_task_raise_then_return_is_estate);
    tcase_add_test(tc, test_task_return_i64_twice_is_estate);
    tcase_add_test(tc, test_task_return_static_and_empty);
    tcase_add_test(tc, test_task_return_copy_sizes);
    tcase_add_test(tc, test_task_return_copy_null);
    tcase_add_test(tc, test_task_return_str);
    tcase_add_test(tc, test_task_return_str_empty);
    tcase_add_test(tc, test_task_return_i64_values);
    tcase_add_test(tc, test_task_raise_code_and_message);
    tcase_add_test(tc, test_task_raise_etimedout_is_task_error);
    tcase_add_test(tc, test_task_returns_nothing_is_empty_result);
    tcase_add_test(tc, test_task_should_stop_false_normally);
    tcase_add_test(tc, test_task_should_stop_after_deadline);
    tcase_add_test(tc, test_task_should_stop_after_cancel);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, reset_counters, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_task_null_task);
    tcase_add_test(tc, test_task_return_str_null_format);
    tcase_add_test(tc, test_task_unrenderable_format);
    tcase_add_test(tc, test_task_bad_deadline_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_checked_fixture(tc, reset_counters, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_task_raise_long_message);
    tcase_add_test(tc, test_task_should_stop_tiny_deadline);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_add_checked_fixture(tc, reset_counters, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_task_many_counted_results);
    tcase_add_test(tc, test_task_result_freed_when_caller_dropped_future);
    tcase_add_test(tc, test_task_should_stop_is_per_task);
    suite_add_tcase(s, tc);
    return s;
}
