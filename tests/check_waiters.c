/*
 * check_waiters: as_completed_* and futures_wait (waiters.c).
 *
 * Covers every ASC-* and WAIT-* item of peer-behaviours.md (CPython
 * test_as_completed.py and test_wait.py), plus duplicates, n == 0, timeouts,
 * reference handling and large inputs.
 *
 * Divergence (DESIGN.md "Semantics pinned down"): in cfutures a cancelled
 * future counts as done for futures_wait and as_completed AT ONCE, because
 * future_cancel tells the waiters. CPython only counts CANCELLED_AND_NOTIFIED.
 * So where CPython's WAIT-02/WAIT-05 put a merely-cancelled future in
 * not_done, these tests expect it in done.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static int set_i64(future_t *f, int64_t v)
{
    int64_t *p = malloc(sizeof(*p));
    ck_assert_ptr_nonnull(p);
    *p = v;
    return future_set_result(f, p, sizeof(*p), count_free);
}

enum fx {
    FX_PENDING,
    FX_RUNNING,
    FX_CANCELLED,
    FX_CANCELLED_NOTIFIED,
    FX_EXCEPTION,
    FX_SUCCESS,
};

/* CPython's fixture futures (util.py). */
static future_t *make_fx(enum fx k)
{
    future_t *f = future_new();
    ck_assert_ptr_nonnull(f);
    switch (k) {
    case FX_PENDING:
        break;
    case FX_RUNNING:
        ck_assert_int_eq(future_set_running_or_notify_cancel(f), 1);
        break;
    case FX_CANCELLED:
        ck_assert(future_cancel(f));
        break;
    case FX_CANCELLED_NOTIFIED:
        ck_assert(future_cancel(f));
        ck_assert_int_eq(future_set_running_or_notify_cancel(f), 0);
        break;
    case FX_EXCEPTION:
        ck_assert_int_eq(future_set_exception(f, EIO, "io error"), 0);
        break;
    case FX_SUCCESS:
        ck_assert_int_eq(set_i64(f, 42), 0);
        break;
    }
    return f;
}

static void unref_all(future_t **fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        future_unref(fs[i]);
}

static bool contains(future_t *const *list, size_t n, const future_t *f)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == f)
            return true;
    return false;
}

/* Asserts that list[0..n) holds exactly want[0..nw), in that order. */
static void assert_list(future_t *const *list, size_t n, future_t *const *want, size_t nw)
{
    ck_assert_uint_eq(n, nw);
    for (size_t i = 0; i < nw; i++)
        ck_assert_msg(list[i] == want[i], "entry %zu differs", i);
}

/* Drains @it (up to @max yields), unrefs what it yields; returns the count. */
static size_t drain(as_completed_t *it, future_t **out, size_t max, int *last_rc)
{
    size_t n = 0;
    future_t *f;
    int rc;
    while ((rc = as_completed_next(it, &f)) == 0) {
        ck_assert_uint_lt(n, max);
        out[n++] = f;
        future_unref(f);
    }
    *last_rc = rc;
    return n;
}

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

/*
 * A helper thread that completes futures in a given order. Before each one
 * it waits until the main thread is (very likely) asleep in the call under
 * test, so the blocking path runs; correctness never depends on that.
 */
struct completer {
    future_t **fs;
    const int *order; /* indexes into fs */
    const int *fail;  /* nonzero: set_exception instead of a result */
    int n;
    pid_t main_tid;
    gate_t go;
};

static void *complete_in_order(void *p)
{
    struct completer *c = p;
    gate_wait(&c->go, T_LONG);
    for (int i = 0; i < c->n; i++) {
        wait_tid_sleeping(c->main_tid, 5.0);
        future_t *f = c->fs[c->order[i]];
        if (c->fail && c->fail[i])
            future_set_exception(f, 1, "fail %d", i);
        else
            set_i64(f, c->order[i]);
    }
    return NULL;
}

static pthread_t start_completer(struct completer *c, future_t **fs, const int *order,
                                 const int *fail, int n)
{
    *c = (struct completer){
        .fs = fs, .order = order, .fail = fail, .n = n, .main_tid = self_tid()};
    gate_init(&c->go);
    pthread_t t = spawn(complete_in_order, c);
    gate_open(&c->go);
    return t;
}

/* ------------------------------------------------------------ as_completed */

/*
 * ASC-01: with no timeout every future is yielded exactly once: futures done
 * already (cancelled-and-notified, failed, succeeded) and two executor
 * futures.
 */
START_TEST(test_waiters_as_completed_no_timeout)
{
    int before = count_threads();
    executor_t *ex = thread_pool_executor_new(&(executor_options_t){.max_workers = 2});
    ck_assert_ptr_nonnull(ex);
    int64_t a1 = 1, a2 = 2;
    future_t *fs[5] = {
        make_fx(FX_CANCELLED_NOTIFIED),
        make_fx(FX_EXCEPTION),
        make_fx(FX_SUCCESS),
        executor_submit(ex, t_add1, &a1, sizeof(a1)),
        executor_submit(ex, t_add1, &a2, sizeof(a2)),
    };
    ck_assert_ptr_nonnull(fs[3]);
    ck_assert_ptr_nonnull(fs[4]);
    as_completed_t *it = as_completed_new(fs, 5, FUT_FOREVER);
    ck_assert_ptr_nonnull(it);
    future_t *got[5];
    int rc;
    size_t n = drain(it, got, 5, &rc);
    ck_assert_int_eq(rc, FUT_EOF);
    ck_assert_uint_eq(n, 5);
    for (int i = 0; i < 5; i++)
        ck_assert(contains(got, n, fs[i]));
    ck_assert_int_eq(as_completed_next(it, &got[0]), FUT_EOF);
    as_completed_free(it);
    int64_t v;
    ck_assert_int_eq(future_result_i64(fs[3], 0, &v), 0);
    ck_assert_int_eq(v, 2);
    ck_assert_int_eq(future_result_i64(fs[4], 0, &v), 0);
    ck_assert_int_eq(v, 3);
    unref_all(fs, 5);
    executor_free(ex);
    ck_assert(wait_threads(before));
}
END_TEST

/*
 * ASC-02 (and ASC-05): with a timeout of 0 or 0.1 s, the done futures are
 * yielded first, then FUT_ETIMEDOUT; the unfinished ones never come; later
 * calls return FUT_EOF even once they complete.
 */
START_TEST(test_waiters_as_completed_times_out)
{
    double timeout = _i == 0 ? 0.0 : 0.1;
    future_t *fs[5] = {make_fx(FX_CANCELLED_NOTIFIED), make_fx(FX_PENDING),
                       make_fx(FX_EXCEPTION), make_fx(FX_RUNNING), make_fx(FX_SUCCESS)};
    double t0 = now_s();
    as_completed_t *it = as_completed_new(fs, 5, timeout);
    ck_assert_ptr_nonnull(it);
    future_t *got[5];
    int rc;
    size_t n = drain(it, got, 5, &rc);
    ck_assert_int_eq(rc, FUT_ETIMEDOUT);
    ck_assert(now_s() - t0 < 5.0);
    ck_assert_uint_eq(n, 3); /* "2 (of 5) futures unfinished" */
    ck_assert(contains(got, n, fs[0]));
    ck_assert(contains(got, n, fs[2]));
    ck_assert(contains(got, n, fs[4]));
    /* Finished: later calls return FUT_EOF, even once the rest completes. */
    ck_assert_int_eq(set_i64(fs[1], 1), 0);
    ck_assert_int_eq(set_i64(fs[3], 1), 0);
    future_t *f = NULL;
    ck_assert_int_eq(as_completed_next(it, &f), FUT_EOF);
    ck_assert_int_eq(as_completed_next(it, &f), FUT_EOF);
    ck_assert_ptr_null(f);
    as_completed_free(it);
    unref_all(fs, 5);
}
END_TEST

/* ASC-03: the same future three times is yielded once (pending and done). */
/* The docs' future_to_url[future]: as_completed_next_at gives the position */
START_TEST(test_waiters_as_completed_next_at)
{
    future_t *a = future_new(), *b = future_new(), *c = future_new();
    future_t *fs[] = {a, b, a, c};
    as_completed_t *it = as_completed_new(fs, 4, T_LONG);
    ck_assert_ptr_nonnull(it);
    future_set_result(c, NULL, 0, NULL);
    future_set_result(a, NULL, 0, NULL);
    future_t *out = NULL;
    size_t idx = 99;
    ck_assert_int_eq(as_completed_next_at(it, &out, &idx), 0);
    ck_assert(out == c);
    ck_assert_uint_eq(idx, 3);
    future_unref(out);
    ck_assert_int_eq(as_completed_next_at(it, &out, &idx), 0);
    ck_assert(out == a);
    ck_assert_uint_eq(idx, 0); /* a duplicate's first position */
    future_unref(out);
    future_set_result(b, NULL, 0, NULL);
    ck_assert_int_eq(as_completed_next_at(it, &out, NULL), 0);
    ck_assert(out == b);
    future_unref(out);
    ck_assert_int_eq(as_completed_next_at(it, &out, &idx), FUT_EOF);
    ck_assert_int_eq(as_completed_next_at(NULL, &out, &idx), FUT_EINVAL);
    ck_assert_int_eq(as_completed_next_at(it, NULL, &idx), FUT_EINVAL);
    as_completed_free(it);
    future_unref(a);
    future_unref(b);
    future_unref(c);
}
END_TEST

START_TEST(test_waiters_as_completed_duplicates_once)
{
    future_t *f = future_new();
    future_t *fs[3] = {f, f, f};
    as_completed_t *it = as_completed_new(fs, 3, FUT_FOREVER);
    ck_assert_ptr_nonnull(it);
    ck_assert_int_eq(set_i64(f, 1), 0);
    future_t *out = NULL;
    ck_assert_int_eq(as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, f);
    future_unref(out);
    ck_assert_int_eq(as_completed_next(it, &out), FUT_EOF);
    as_completed_free(it);

    /* Done already, and mixed with another future; more than 8 entries. */
    future_t *g = make_fx(FX_SUCCESS);
    future_t *many[12] = {f, g, f, g, f, g, f, g, f, g, f, g};
    it = as_completed_new(many, 12, 0);
    ck_assert_ptr_nonnull(it);
    future_t *got[12];
    int rc;
    ck_assert_uint_eq(drain(it, got, 12, &rc), 2);
    ck_assert_int_eq(rc, FUT_EOF);
    ck_assert(contains(got, 2, f) && contains(got, 2, g));
    as_completed_free(it);
    future_unref(f);
    future_unref(g);
}
END_TEST

/*
 * ASC-04, timeout-0 pass: 8 pending and 2 finished futures, the caller keeps
 * no reference of its own. Each yielded future is freed the moment the caller
 * unrefs it (its result's free_fn runs at once); the pending ones are freed
 * by as_completed_free.
 */
START_TEST(test_waiters_as_completed_yielded_reference_to_caller)
{
    future_t *fs[10];
    for (int i = 0; i < 10; i++)
        fs[i] = future_new();
    ck_assert_int_eq(set_i64(fs[3], 3), 0);
    ck_assert_int_eq(set_i64(fs[7], 7), 0);
    as_completed_t *it = as_completed_new(fs, 10, 0);
    ck_assert_ptr_nonnull(it);
    unref_all(fs, 10); /* the iterator now holds the only references */
    future_t *f;
    for (int k = 1; k <= 2; k++) {
        ck_assert_int_eq(as_completed_next(it, &f), 0);
        ck_assert(future_done(f));
        ck_assert_int_eq(atomic_load(&n_freed), k - 1);
        future_unref(f);
        ck_assert_int_eq(atomic_load(&n_freed), k); /* freed right away */
    }
    ck_assert_int_eq(as_completed_next(it, &f), FUT_ETIMEDOUT);
    as_completed_free(it); /* drops the 8 pending ones: LSan checks */
}
END_TEST

/*
 * ASC-04 (unbounded pass) and ASC-06: each future completes only after the
 * previous one was yielded; the iterator blocks until the next completion
 * and hands its reference to the caller.
 */
START_TEST(test_waiters_as_completed_yields_as_completed)
{
    int before = count_threads();
    enum { N = 6 };
    future_t *fs[N], *mine[N];
    for (int i = 0; i < N; i++) {
        fs[i] = future_new();
        mine[i] = future_ref(fs[i]); /* the completer thread's references */
    }
    as_completed_t *it = as_completed_new(fs, N, FUT_FOREVER);
    ck_assert_ptr_nonnull(it);
    for (int i = 0; i < N; i++)
        future_unref(fs[i]); /* the test's own: iterator + completer remain */

    static const int order[N] = {4, 0, 5, 2, 1, 3};
    for (int k = 0; k < N; k++) {
        struct completer c;
        /* One completion per helper: the next starts after this yield. */
        pthread_t t = start_completer(&c, mine, &order[k], NULL, 1);
        future_t *f = NULL;
        ck_assert_int_eq(as_completed_next(it, &f), 0);
        ck_assert_ptr_eq(f, mine[order[k]]);
        pthread_join(t, NULL);
        gate_destroy(&c.go);
        future_unref(mine[order[k]]); /* the completer's reference */
        ck_assert_int_eq(atomic_load(&n_freed), k);
        future_unref(f); /* the iterator's, handed over */
        ck_assert_int_eq(atomic_load(&n_freed), k + 1);
    }
    future_t *f;
    ck_assert_int_eq(as_completed_next(it, &f), FUT_EOF);
    as_completed_free(it);
    ck_assert(wait_threads(before));
}
END_TEST

/* Completions that arrive while the caller iterates come in completion order. */
START_TEST(test_waiters_as_completed_completion_order)
{
    int before = count_threads();
    enum { N = 5 };
    future_t *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = future_new();
    as_completed_t *it = as_completed_new(fs, N, T_LONG);
    ck_assert_ptr_nonnull(it);
    static const int order[N] = {2, 4, 1, 0, 3};
    struct completer c;
    pthread_t t = start_completer(&c, fs, order, NULL, N);
    for (int k = 0; k < N; k++) {
        future_t *f = NULL;
        ck_assert_int_eq(as_completed_next(it, &f), 0);
        ck_assert_ptr_eq(f, fs[order[k]]);
        future_unref(f);
    }
    future_t *f;
    ck_assert_int_eq(as_completed_next(it, &f), FUT_EOF);
    pthread_join(t, NULL);
    gate_destroy(&c.go);
    as_completed_free(it);
    unref_all(fs, N);
    ck_assert(wait_threads(before));
}
END_TEST

/* cfutures rule: a cancelled future is yielded at once (CPython waits for
 * CANCELLED_AND_NOTIFIED). */
START_TEST(test_waiters_as_completed_cancelled_counts_at_once)
{
    future_t *fs[3] = {make_fx(FX_CANCELLED), make_fx(FX_PENDING), make_fx(FX_RUNNING)};
    as_completed_t *it = as_completed_new(fs, 3, 0);
    ck_assert_ptr_nonnull(it);
    future_t *f;
    ck_assert_int_eq(as_completed_next(it, &f), 0);
    ck_assert_ptr_eq(f, fs[0]);
    future_unref(f);
    ck_assert_int_eq(as_completed_next(it, &f), FUT_ETIMEDOUT);
    as_completed_free(it);

    /* Cancelled after the iterator started: yielded without any notify. */
    it = as_completed_new(&fs[1], 2, FUT_FOREVER);
    ck_assert(future_cancel(fs[1]));
    ck_assert_int_eq(as_completed_next(it, &f), 0);
    ck_assert_ptr_eq(f, fs[1]);
    future_unref(f);
    as_completed_free(it);
    unref_all(fs, 3);
}
END_TEST

/* n == 0: exhausted at once, whatever the timeout. */
START_TEST(test_waiters_as_completed_empty)
{
    future_t *dummy = future_new();
    double ts[] = {FUT_FOREVER, 0, 1.0};
    for (int i = 0; i < 3; i++) {
        as_completed_t *it = as_completed_new(NULL, 0, ts[i]);
        ck_assert_ptr_nonnull(it);
        future_t *f = NULL;
        double t0 = now_s();
        ck_assert_int_eq(as_completed_next(it, &f), FUT_EOF);
        ck_assert_int_eq(as_completed_next(it, &f), FUT_EOF);
        ck_assert(now_s() - t0 < 5.0);
        as_completed_free(it);
        it = as_completed_new(&dummy, 0, ts[i]);
        ck_assert_ptr_nonnull(it);
        ck_assert_int_eq(as_completed_next(it, &f), FUT_EOF);
        as_completed_free(it);
    }
    future_unref(dummy);
}
END_TEST

/* A short timeout while blocked: FUT_ETIMEDOUT in well under 5 s, then EOF. */
START_TEST(test_waiters_as_completed_short_timeout)
{
    future_t *f = future_new();
    as_completed_t *it = as_completed_new(&f, 1, 0.05);
    future_t *out = NULL;
    double t0 = now_s();
    ck_assert_int_eq(as_completed_next(it, &out), FUT_ETIMEDOUT);
    double dt = now_s() - t0;
    ck_assert(dt >= 0.03); /* measured from as_completed_new */
    ck_assert(dt < 5.0);
    ck_assert_int_eq(as_completed_next(it, &out), FUT_EOF);
    as_completed_free(it);
    future_unref(f);
}
END_TEST

/* as_completed_free with futures not yielded (some ready, some pending) that
 * complete later: no use after free (ASan), no leak (LSan). */
START_TEST(test_waiters_as_completed_free_with_pending)
{
    enum { N = 20 };
    future_t *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = future_new();
    set_i64(fs[0], 0);
    as_completed_t *it = as_completed_new(fs, N, FUT_FOREVER);
    set_i64(fs[1], 1);
    set_i64(fs[2], 2);
    future_t *f;
    ck_assert_int_eq(as_completed_next(it, &f), 0); /* one yielded */
    future_unref(f);
    as_completed_free(it); /* fs[1..2] notified, not yielded; the rest pending */
    for (int i = 3; i < N; i++) {
        if (i % 2)
            ck_assert_int_eq(set_i64(fs[i], i), 0);
        else
            ck_assert(future_cancel(fs[i]));
    }
    unref_all(fs, N);
    ck_assert_int_eq(atomic_load(&n_freed), 3 + (N - 3) / 2 + ((N - 3) % 2));
}
END_TEST

/* ------------------------------------------------------------ futures_wait */

/* WAIT-01: wait([f, f], ALL_COMPLETED) gives done = {f}, not_done = {}. */
START_TEST(test_waiters_wait_duplicates)
{
    future_t *f = make_fx(FX_SUCCESS);
    future_t *fs[2] = {f, f};
    future_t *done[2], *not_done[2];
    size_t nd = 9, nn = 9;
    ck_assert_int_eq(
        futures_wait(fs, 2, FUT_FOREVER, FUTURES_ALL_COMPLETED, done, &nd, not_done, &nn),
        0);
    assert_list(done, nd, &f, 1);
    ck_assert_uint_eq(nn, 0);

    /* Pending duplicates: each appears once in not_done. */
    future_t *g = future_new();
    future_t *gs[20];
    for (int i = 0; i < 20; i++)
        gs[i] = i % 2 ? f : g;
    future_t *d20[20], *n20[20];
    ck_assert_int_eq(futures_wait(gs, 20, 0, FUTURES_ALL_COMPLETED, d20, &nd, n20, &nn),
                     FUT_ETIMEDOUT);
    assert_list(d20, nd, &f, 1);
    assert_list(n20, nn, &g, 1);
    future_unref(g);
    future_unref(f);
}
END_TEST

/*
 * WAIT-02, cfutures rule: FIRST_COMPLETED over [CANCELLED, f1, f2]. In
 * CPython the merely-cancelled future is not done for wait(), so wait()
 * blocks until f1 completes and puts CANCELLED in not_done. In cfutures
 * future_cancel notifies the waiters: CANCELLED is done at once, and the
 * call returns at once with done = {CANCELLED}.
 */
START_TEST(test_waiters_wait_first_completed)
{
    future_t *fs[3] = {make_fx(FX_CANCELLED), make_fx(FX_PENDING), make_fx(FX_PENDING)};
    future_t *done[3], *not_done[3];
    size_t nd, nn;
    double t0 = now_s();
    ck_assert_int_eq(futures_wait(fs, 3, FUT_FOREVER, FUTURES_FIRST_COMPLETED, done, &nd,
                                  not_done, &nn),
                     0);
    ck_assert(now_s() - t0 < 5.0);
    assert_list(done, nd, &fs[0], 1);
    assert_list(not_done, nn, &fs[1], 2);

    /* CPython's shape with the quick future f1 completed by another thread,
     * over [f1, f2]: done = {f1}, not_done = {f2}. */
    int before = count_threads();
    static const int order[1] = {0};
    struct completer c;
    pthread_t t = start_completer(&c, &fs[1], order, NULL, 1);
    ck_assert_int_eq(futures_wait(&fs[1], 2, T_LONG, FUTURES_FIRST_COMPLETED, done, &nd,
                                  not_done, &nn),
                     0);
    assert_list(done, nd, &fs[1], 1);
    assert_list(not_done, nn, &fs[2], 1);
    pthread_join(t, NULL);
    gate_destroy(&c.go);
    unref_all(fs, 3);
    ck_assert(wait_threads(before));
}
END_TEST

/* cfutures rule: a cancel while futures_wait is blocked wakes it. */
struct canceller {
    future_t *f;
    pid_t main_tid;
};

static void *cancel_when_main_sleeps(void *p)
{
    struct canceller *c = p;
    wait_tid_sleeping(c->main_tid, 5.0); /* a hint only */
    future_cancel(c->f);
    return NULL;
}

START_TEST(test_waiters_wait_woken_by_cancel)
{
    int before = count_threads();
    future_t *fs[2] = {make_fx(FX_PENDING), make_fx(FX_RUNNING)};
    struct canceller c = {fs[0], self_tid()};
    pthread_t t = spawn(cancel_when_main_sleeps, &c);
    future_t *done[2], *not_done[2];
    size_t nd, nn;
    ck_assert_int_eq(
        futures_wait(fs, 2, T_LONG, FUTURES_FIRST_COMPLETED, done, &nd, not_done, &nn),
        0);
    assert_list(done, nd, &fs[0], 1);
    assert_list(not_done, nn, &fs[1], 1);
    pthread_join(t, NULL);

    /* The same for a blocked as_completed_next. */
    future_t *g = future_new();
    future_t *gs[2] = {fs[1], g};
    as_completed_t *it = as_completed_new(gs, 2, T_LONG);
    ck_assert_ptr_nonnull(it);
    c.f = g;
    t = spawn(cancel_when_main_sleeps, &c);
    future_t *f = NULL;
    ck_assert_int_eq(as_completed_next(it, &f), 0);
    ck_assert_ptr_eq(f, g);
    ck_assert(future_cancelled(f));
    future_unref(f);
    pthread_join(t, NULL);
    as_completed_free(it);
    future_unref(g);
    unref_all(fs, 2);
    ck_assert(wait_threads(before));
}
END_TEST

/* WAIT-03: FIRST_COMPLETED with some futures already done returns at once. */
START_TEST(test_waiters_wait_first_completed_some_done)
{
    future_t *fs[3] = {make_fx(FX_CANCELLED_NOTIFIED), make_fx(FX_SUCCESS),
                       make_fx(FX_PENDING)};
    future_t *done[3], *not_done[3];
    size_t nd, nn;
    double t0 = now_s();
    ck_assert_int_eq(futures_wait(fs, 3, FUT_FOREVER, FUTURES_FIRST_COMPLETED, done, &nd,
                                  not_done, &nn),
                     0);
    ck_assert(now_s() - t0 < 5.0);
    assert_list(done, nd, fs, 2);
    assert_list(not_done, nn, &fs[2], 1);
    unref_all(fs, 3);
}
END_TEST

/* WAIT-04: FIRST_EXCEPTION waits past successes: f1 succeeds, f2 fails
 * after it, f3 stays blocked: done = {f1, f2}, not_done = {f3}. */
START_TEST(test_waiters_wait_first_exception)
{
    int before = count_threads();
    future_t *fs[3] = {future_new(), future_new(), future_new()};
    static const int order[2] = {0, 1};
    static const int fail[2] = {0, 1};
    struct completer c;
    pthread_t t = start_completer(&c, fs, order, fail, 2);
    future_t *done[3], *not_done[3];
    size_t nd, nn;
    ck_assert_int_eq(
        futures_wait(fs, 3, T_LONG, FUTURES_FIRST_EXCEPTION, done, &nd, not_done, &nn),
        0);
    assert_list(done, nd, fs, 2);
    assert_list(not_done, nn, &fs[2], 1);
    ck_assert_int_eq(future_result(fs[0], 0, NULL, NULL), 0);
    ck_assert_int_eq(future_result(fs[1], 0, NULL, NULL), FUT_ETASK);
    pthread_join(t, NULL);
    gate_destroy(&c.go);
    unref_all(fs, 3);
    ck_assert(wait_threads(before));
}
END_TEST

/*
 * WAIT-05, cfutures rule: FIRST_EXCEPTION over [SUCCESSFUL, CANCELLED,
 * CANCELLED_AND_NOTIFIED, f1 (fails), f2 (blocked)]. CPython: finished =
 * {SUCCESSFUL, CANCELLED_AND_NOTIFIED, f1}, pending = {CANCELLED, f2}. In
 * cfutures CANCELLED is done at once, so it is in done too. Cancellation is
 * not an exception: before f1 fails the condition is not met.
 */
START_TEST(test_waiters_wait_first_exception_some_done)
{
    int before = count_threads();
    future_t *fs[5] = {make_fx(FX_SUCCESS), make_fx(FX_CANCELLED),
                       make_fx(FX_CANCELLED_NOTIFIED), future_new(), future_new()};
    future_t *done[5], *not_done[5];
    size_t nd, nn;
    /* f1 not failed yet: cancellations do not satisfy FIRST_EXCEPTION. */
    ck_assert_int_eq(
        futures_wait(fs, 5, 0.05, FUTURES_FIRST_EXCEPTION, done, &nd, not_done, &nn),
        FUT_ETIMEDOUT);
    assert_list(done, nd, fs, 3);
    assert_list(not_done, nn, &fs[3], 2);

    static const int order[1] = {3};
    static const int fail[1] = {1};
    struct completer c;
    pthread_t t = start_completer(&c, fs, order, fail, 1);
    ck_assert_int_eq(
        futures_wait(fs, 5, T_LONG, FUTURES_FIRST_EXCEPTION, done, &nd, not_done, &nn),
        0);
    assert_list(done, nd, fs, 4);
    assert_list(not_done, nn, &fs[4], 1);
    pthread_join(t, NULL);
    gate_destroy(&c.go);
    unref_all(fs, 5);
    ck_assert(wait_threads(before));
}
END_TEST

/* FIRST_EXCEPTION where only cancellations and successes happen returns when
 * everything is done (a cancel is not an exception). */
START_TEST(test_waiters_wait_first_exception_none_fail)
{
    int before = count_threads();
    future_t *fs[3] = {make_fx(FX_CANCELLED), future_new(), future_new()};
    static const int order[2] = {2, 1};
    struct completer c;
    pthread_t t = start_completer(&c, fs, order, NULL, 2);
    future_t *done[3];
    size_t nd, nn = 9;
    ck_assert_int_eq(
        futures_wait(fs, 3, T_LONG, FUTURES_FIRST_EXCEPTION, done, &nd, NULL, &nn), 0);
    assert_list(done, nd, fs, 3);
    ck_assert_uint_eq(nn, 0);
    pthread_join(t, NULL);
    gate_destroy(&c.go);
    unref_all(fs, 3);
    ck_assert(wait_threads(before));
}
END_TEST

/* WAIT-06: FIRST_EXCEPTION with one future failed already returns at once. */
START_TEST(test_waiters_wait_first_exception_one_failed)
{
    future_t *fs[2] = {make_fx(FX_EXCEPTION), make_fx(FX_PENDING)};
    future_t *done[2], *not_done[2];
    size_t nd, nn;
    double t0 = now_s();
    ck_assert_int_eq(futures_wait(fs, 2, FUT_FOREVER, FUTURES_FIRST_EXCEPTION, done, &nd,
                                  not_done, &nn),
                     0);
    ck_assert(now_s() - t0 < 5.0);
    assert_list(done, nd, fs, 1);
    assert_list(not_done, nn, &fs[1], 1);
    unref_all(fs, 2);
}
END_TEST

/* WAIT-07: ALL_COMPLETED returns once every future is done, failed ones
 * included; not_done is empty. */
START_TEST(test_waiters_wait_all_completed)
{
    int before = count_threads();
    future_t *fs[6] = {
        make_fx(FX_SUCCESS),   make_fx(FX_EXCEPTION), make_fx(FX_CANCELLED_NOTIFIED),
        make_fx(FX_CANCELLED), future_new(),          make_fx(FX_RUNNING)};
    static const int order[2] = {5, 4};
    static const int fail[2] = {1, 0};
    struct completer c;
    pthread_t t = start_completer(&c, fs, order, fail, 2);
    future_t *done[6], *not_done[6];
    size_t nd, nn;
    ck_assert_int_eq(
        futures_wait(fs, 6, FUT_FOREVER, FUTURES_ALL_COMPLETED, done, &nd, not_done, &nn),
        0);
    assert_list(done, nd, fs, 6); /* input order */
    ck_assert_uint_eq(nn, 0);
    pthread_join(t, NULL);
    gate_destroy(&c.go);
    unref_all(fs, 6);
    ck_assert(wait_threads(before));
}
END_TEST

/* WAIT-08: a 0.05 s timeout with ALL_COMPLETED returns FUT_ETIMEDOUT and
 * still fills both lists (in input order). */
START_TEST(test_waiters_wait_timeout_fills_lists)
{
    future_t *fs[4] = {make_fx(FX_CANCELLED_NOTIFIED), make_fx(FX_EXCEPTION),
                       make_fx(FX_SUCCESS), make_fx(FX_PENDING)};
    future_t *done[4], *not_done[4];
    size_t nd = 99, nn = 99;
    double t0 = now_s();
    ck_assert_int_eq(
        futures_wait(fs, 4, 0.05, FUTURES_ALL_COMPLETED, done, &nd, not_done, &nn),
        FUT_ETIMEDOUT);
    double dt = now_s() - t0;
    ck_assert(dt >= 0.04);
    ck_assert(dt < 5.0);
    assert_list(done, nd, fs, 3);
    assert_list(not_done, nn, &fs[3], 1);

    /* Polls with timeout 0, in every mode that is not met. */
    future_t *pend[2] = {make_fx(FX_PENDING), make_fx(FX_RUNNING)};
    futures_wait_mode all[] = {FUTURES_FIRST_COMPLETED, FUTURES_FIRST_EXCEPTION,
                               FUTURES_ALL_COMPLETED};
    for (int m = 0; m < 3; m++) {
        t0 = now_s();
        ck_assert_int_eq(futures_wait(pend, 2, 0, all[m], done, &nd, not_done, &nn),
                         FUT_ETIMEDOUT);
        ck_assert(now_s() - t0 < 5.0);
        ck_assert_uint_eq(nd, 0);
        assert_list(not_done, nn, pend, 2);
    }
    unref_all(pend, 2);
    unref_all(fs, 4);
}
END_TEST

/* n == 0 returns 0 at once in every mode, even with FUT_FOREVER. */
START_TEST(test_waiters_wait_empty)
{
    futures_wait_mode all[] = {FUTURES_FIRST_COMPLETED, FUTURES_FIRST_EXCEPTION,
                               FUTURES_ALL_COMPLETED};
    future_t *dummy = future_new();
    for (int m = 0; m < 3; m++) {
        size_t nd = 9, nn = 9;
        future_t *d[1], *nd_[1];
        ck_assert_int_eq(futures_wait(NULL, 0, FUT_FOREVER, all[m], d, &nd, nd_, &nn), 0);
        ck_assert_uint_eq(nd, 0);
        ck_assert_uint_eq(nn, 0);
        ck_assert_int_eq(futures_wait(&dummy, 0, 0, all[m], NULL, NULL, NULL, NULL), 0);
    }
    future_unref(dummy);
}
END_TEST

/* The lists and their counts may be NULL; the return code still tells. */
START_TEST(test_waiters_wait_null_lists)
{
    future_t *fs[2] = {make_fx(FX_SUCCESS), make_fx(FX_PENDING)};
    ck_assert_int_eq(
        futures_wait(fs, 2, 0, FUTURES_ALL_COMPLETED, NULL, NULL, NULL, NULL),
        FUT_ETIMEDOUT);
    ck_assert_int_eq(
        futures_wait(fs, 2, 0, FUTURES_FIRST_COMPLETED, NULL, NULL, NULL, NULL), 0);
    size_t nd = 9, nn = 9;
    future_t *done[2];
    ck_assert_int_eq(futures_wait(fs, 2, 0, FUTURES_ALL_COMPLETED, done, &nd, NULL, &nn),
                     FUT_ETIMEDOUT);
    assert_list(done, nd, fs, 1);
    ck_assert_uint_eq(nn, 1);
    unref_all(fs, 2);
}
END_TEST

/* futures_wait takes no reference: the futures are freed by their owners'
 * unrefs right after it returns. */
START_TEST(test_waiters_wait_takes_no_reference)
{
    future_t *fs[3] = {make_fx(FX_SUCCESS), make_fx(FX_SUCCESS), make_fx(FX_PENDING)};
    future_t *done[3], *not_done[3];
    size_t nd, nn;
    ck_assert_int_eq(
        futures_wait(fs, 3, 0.01, FUTURES_ALL_COMPLETED, done, &nd, not_done, &nn),
        FUT_ETIMEDOUT);
    unref_all(fs, 3);
    ck_assert_int_eq(atomic_load(&n_freed), 2);
}
END_TEST

/* ------------------------------------------------------------ errors */

START_TEST(test_waiters_as_completed_bad_arguments)
{
    future_t *f = make_fx(FX_SUCCESS);
    future_t *with_null[2] = {f, NULL};
    double bad[] = {NAN, INFINITY, -INFINITY, -2.0, -0.5};

    errno = 0;
    ck_assert_ptr_null(as_completed_new(NULL, 2, FUT_FOREVER));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(as_completed_new(with_null, 2, FUT_FOREVER));
    ck_assert_int_eq(errno, EINVAL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        ck_assert_ptr_null(as_completed_new(&f, 1, bad[i]));
        ck_assert_int_eq(errno, EINVAL);
        errno = 0;
        ck_assert_ptr_null(as_completed_new(NULL, 0, bad[i]));
        ck_assert_int_eq(errno, EINVAL);
    }
    /* Many entries, the NULL one last (the hash-set path). */
    future_t *many[40];
    for (int i = 0; i < 39; i++)
        many[i] = f;
    many[39] = NULL;
    errno = 0;
    ck_assert_ptr_null(as_completed_new(many, 40, 0));
    ck_assert_int_eq(errno, EINVAL);

    future_t *out = NULL;
    ck_assert_int_eq(as_completed_next(NULL, &out), FUT_EINVAL);
    as_completed_t *it = as_completed_new(&f, 1, 0);
    ck_assert_int_eq(as_completed_next(it, NULL), FUT_EINVAL);
    /* The failed call changed nothing: the future is still to come. */
    ck_assert_int_eq(as_completed_next(it, &out), 0);
    ck_assert_ptr_eq(out, f);
    future_unref(out);
    as_completed_free(it);
    as_completed_free(NULL);

    /* Failed calls took no reference: the only unref frees the future. */
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 1);
}
END_TEST

START_TEST(test_waiters_wait_bad_arguments)
{
    future_t *f = make_fx(FX_SUCCESS);
    future_t *with_null[2] = {f, NULL};
    future_t *done[40], *not_done[40];
    size_t nd = 0, nn = 0;
    double bad[] = {NAN, INFINITY, -INFINITY, -2.0, -0.5};

    ck_assert_int_eq(
        futures_wait(NULL, 2, 0, FUTURES_ALL_COMPLETED, done, &nd, not_done, &nn),
        FUT_EINVAL);
    ck_assert_int_eq(
        futures_wait(with_null, 2, 0, FUTURES_ALL_COMPLETED, done, &nd, not_done, &nn),
        FUT_EINVAL);
    future_t *many[40];
    for (int i = 0; i < 39; i++)
        many[i] = f;
    many[39] = NULL;
    ck_assert_int_eq(
        futures_wait(many, 40, 0, FUTURES_ALL_COMPLETED, done, &nd, not_done, &nn),
        FUT_EINVAL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(
            futures_wait(&f, 1, bad[i], FUTURES_ALL_COMPLETED, done, &nd, not_done, &nn),
            FUT_EINVAL);
        ck_assert_int_eq(
            futures_wait(NULL, 0, bad[i], FUTURES_ALL_COMPLETED, NULL, NULL, NULL, NULL),
            FUT_EINVAL);
    }
    ck_assert_int_eq(
        futures_wait(&f, 1, 0, (futures_wait_mode)42, done, &nd, not_done, &nn),
        FUT_EINVAL);
    ck_assert_int_eq(
        futures_wait(&f, 1, 0, (futures_wait_mode)-1, done, &nd, not_done, &nn),
        FUT_EINVAL);
    /* A list without its count cannot be used. */
    ck_assert_int_eq(
        futures_wait(&f, 1, 0, FUTURES_ALL_COMPLETED, done, NULL, not_done, &nn),
        FUT_EINVAL);
    ck_assert_int_eq(
        futures_wait(&f, 1, 0, FUTURES_ALL_COMPLETED, done, &nd, not_done, NULL),
        FUT_EINVAL);
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 1);
}
END_TEST

/* ------------------------------------------------------------ limits */

/* Many duplicates of a few futures (the hash-set path), in both calls. */
START_TEST(test_waiters_many_duplicates)
{
    enum { N = 10000, K = 10 };
    future_t *distinct[K];
    for (int i = 0; i < K; i++)
        distinct[i] = make_fx(i % 2 ? FX_SUCCESS : FX_PENDING);
    future_t **fs = malloc(N * sizeof(*fs));
    for (int i = 0; i < N; i++)
        fs[i] = distinct[(i * 7) % K];
    future_t **done = malloc(N * sizeof(*done)), **not_done = malloc(N * sizeof(*done));
    size_t nd, nn;
    ck_assert_int_eq(
        futures_wait(fs, N, 0, FUTURES_ALL_COMPLETED, done, &nd, not_done, &nn),
        FUT_ETIMEDOUT);
    ck_assert_uint_eq(nd, K / 2);
    ck_assert_uint_eq(nn, K / 2);
    as_completed_t *it = as_completed_new(fs, N, FUT_FOREVER);
    ck_assert_ptr_nonnull(it);
    for (int i = 0; i < K; i += 2)
        ck_assert(future_cancel(distinct[i]));
    int rc;
    ck_assert_uint_eq(drain(it, done, N, &rc), K);
    ck_assert_int_eq(rc, FUT_EOF);
    as_completed_free(it);
    free(fs);
    free(done);
    free(not_done);
    unref_all(distinct, K);
}
END_TEST

/* Duplicates over a large array: each future once, at its first index. */
START_TEST(test_waiters_duplicates_first_index)
{
    enum { N = 50000, K = 3000 }; /* N * node size passes 2 MiB: the big path */
    future_t *distinct[K];
    for (int i = 0; i < K; i++)
        distinct[i] = make_fx(FX_SUCCESS);
    future_t **fs = malloc(N * sizeof(*fs));
    size_t first[K];
    for (int i = 0; i < K; i++)
        first[i] = SIZE_MAX;
    for (size_t i = 0; i < N; i++) {
        size_t k = (i * 7919) % K;
        fs[i] = distinct[k];
        if (first[k] == SIZE_MAX)
            first[k] = i;
    }
    as_completed_t *it = as_completed_new(fs, N, FUT_FOREVER);
    ck_assert_ptr_nonnull(it);
    unsigned char seen[K] = {0};
    future_t *f;
    size_t idx, got = 0;
    while (as_completed_next_at(it, &f, &idx) == 0) {
        ck_assert_uint_lt(idx, N);
        size_t k = (idx * 7919) % K;
        ck_assert_ptr_eq(f, distinct[k]);
        ck_assert_uint_eq(idx, first[k]);
        ck_assert(!seen[k]);
        seen[k] = 1;
        got++;
        future_unref(f);
    }
    ck_assert_uint_eq(got, K);
    as_completed_free(it);
    size_t nd = 0;
    ck_assert_int_eq(futures_wait(fs, N, 0, FUTURES_ALL_COMPLETED, NULL, &nd, NULL, NULL), 0);
    ck_assert_uint_eq(nd, K);
    free(fs);
    unref_all(distinct, K);
}
END_TEST

/* futures_wait over 100,000 futures, completed from 2 threads. */
struct range_completer {
    future_t **fs;
    size_t from, to, step;
    gate_t *go;
};

static void *complete_range(void *p)
{
    struct range_completer *r = p;
    gate_wait(r->go, T_LONG);
    for (size_t i = r->from; i < r->to; i += r->step) {
        if (i % 3 == 0)
            future_set_exception(r->fs[i], 1, "x");
        else if (i % 3 == 1)
            future_cancel(r->fs[i]);
        else
            future_set_result(r->fs[i], NULL, 0, NULL);
    }
    return NULL;
}

START_TEST(test_waiters_wait_large)
{
    enum { N = 100000 };
    int before = count_threads();
    future_t **fs = malloc(N * sizeof(*fs));
    for (size_t i = 0; i < N; i++)
        fs[i] = future_new();
    gate_t go;
    gate_init(&go);
    struct range_completer r[2] = {{fs, 0, N, 2, &go}, {fs, 1, N, 2, &go}};
    pthread_t t[2] = {spawn(complete_range, &r[0]), spawn(complete_range, &r[1])};
    gate_open(&go);
    size_t nd = 0, nn = 9;
    future_t **done = malloc(N * sizeof(*done));
    ck_assert_int_eq(
        futures_wait(fs, N, T_LONG, FUTURES_ALL_COMPLETED, done, &nd, NULL, &nn), 0);
    ck_assert_uint_eq(nd, N);
    ck_assert_uint_eq(nn, 0);
    size_t moved = 0; /* counted: a ck_assert each is a write to Check's parent */
    for (size_t i = 0; i < N; i++)
        moved += done[i] != fs[i];
    ck_assert_uint_eq(moved, 0);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    gate_destroy(&go);
    unref_all(fs, N);
    free(fs);
    free(done);
    ck_assert(wait_threads(before));
}
END_TEST

/* 100,000 futures completed from 2 threads while as_completed iterates:
 * each is yielded exactly once. */
START_TEST(test_waiters_as_completed_large)
{
    enum { N = 100000 };
    int before = count_threads();
    future_t **fs = malloc(N * sizeof(*fs));
    unsigned char *seen = calloc(N, 1);
    for (size_t i = 0; i < N; i++) {
        fs[i] = future_new();
        /* The index as the result: tells which future was yielded. */
        int64_t *v = malloc(sizeof(*v));
        *v = (int64_t)i;
        if (i % 1000 == 0) /* a few are done before the iterator starts */
            future_set_result(fs[i], v, sizeof(*v), count_free);
        else
            free(v);
    }
    as_completed_t *it = as_completed_new(fs, N, T_LONG * 2);
    ck_assert_ptr_nonnull(it);
    gate_t go;
    gate_init(&go);
    struct range_completer r[2] = {{fs, 0, N, 2, &go}, {fs, 1, N, 2, &go}};
    pthread_t t[2] = {spawn(complete_range, &r[0]), spawn(complete_range, &r[1])};
    gate_open(&go);
    size_t n = 0;
    future_t *f;
    int rc;
    /* Build a pointer -> index map by sorting a copy would be O(n log n);
     * use a linear probe table instead. */
    size_t cap = 1 << 18;
    struct slot {
        future_t *f;
        size_t i;
    } *tab = calloc(cap, sizeof(*tab));
    for (size_t i = 0; i < N; i++) {
        size_t h = ((uintptr_t)fs[i] >> 4) & (cap - 1);
        while (tab[h].f)
            h = (h + 1) & (cap - 1);
        tab[h].f = fs[i];
        tab[h].i = i;
    }
    while ((rc = as_completed_next(it, &f)) == 0) {
        size_t h = ((uintptr_t)f >> 4) & (cap - 1);
        while (tab[h].f && tab[h].f != f)
            h = (h + 1) & (cap - 1);
        /* Asserted only when wrong: a ck_assert each is a write to Check's parent. */
        if (tab[h].f != f)
            ck_abort_msg("a future that was not given");
        if (seen[tab[h].i] || !future_done(f))
            ck_abort_msg("future %zu yielded twice or not done", tab[h].i);
        seen[tab[h].i] = 1;
        future_unref(f);
        n++;
    }
    ck_assert_int_eq(rc, FUT_EOF);
    ck_assert_uint_eq(n, N);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    as_completed_free(it);
    gate_destroy(&go);
    unref_all(fs, N);
    ck_assert_int_eq(atomic_load(&n_freed), N / 1000);
    free(tab);
    free(seen);
    free(fs);
    ck_assert(wait_threads(before));
}
END_TEST

/* Resident memory of this process in KiB (/proc/self/statm). */
static long rss_kib(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* What as_completed_new over @fs[0, n) keeps resident (KiB); frees it. */
static long as_completed_kib(future_t *const *fs, size_t n)
{
    long before = rss_kib();
    as_completed_t *it = as_completed_new(fs, n, FUT_FOREVER);
    ck_assert_ptr_nonnull(it);
    long kept = rss_kib() - before;
    as_completed_free(it);
    return kept;
}

/*
 * The header's memory: one node per distinct future, nothing else
 * proportional to n. 50,000 futures given 20 times each kept a node per
 * entry resident (56 MB, 20 times what they take given once), as the dedupe
 * buckets in the nodes touched every page of an n-node array.
 */
START_TEST(test_waiters_as_completed_memory_per_distinct)
{
    enum { D = 50000, R = 20 };
    future_t **fs = malloc((size_t)D * R * sizeof(*fs));
    ck_assert_ptr_nonnull(fs);
    for (size_t i = 0; i < D; i++)
        fs[i] = future_new();
    for (size_t i = D; i < (size_t)D * R; i++)
        fs[i] = fs[i % D];
    long once = as_completed_kib(fs, D);
    long repeated = as_completed_kib(fs, (size_t)D * R);
    ck_assert_msg(repeated <= 2 * once + 8192,
                  "%d futures given %d times each kept %ld KiB; given once, %ld KiB", D,
                  R, repeated, once);
    unref_all(fs, D);
    free(fs);
}
END_TEST

/* ------------------------------------------------------------ concurrency */

/*
 * WAIT-09 (issue 14406): 100 futures released together by one gate, from
 * many threads, while futures_wait(ALL_COMPLETED) registers its waiters: it
 * returns, no wake-up is lost. Looped 50 times, on raw threads and on a
 * thread pool of 100 workers (CPython's test_pending_calls_race).
 */
struct releaser {
    future_t **fs;
    int from, n, step;
    gate_t *go;
};

static void *release_on_gate(void *p)
{
    struct releaser *r = p;
    gate_wait(r->go, T_LONG);
    for (int i = r->from; i < r->n; i += r->step)
        future_set_result(r->fs[i], NULL, 0, NULL);
    return NULL;
}

START_TEST(test_waiters_wait_pending_calls_race)
{
    enum { N = 100, THREADS = 10, ROUNDS = 50 };
    int before = count_threads();
    for (int round = 0; round < ROUNDS; round++) {
        future_t *fs[N];
        for (int i = 0; i < N; i++)
            fs[i] = future_new();
        gate_t go;
        gate_init(&go);
        struct releaser r[THREADS];
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++) {
            r[i] = (struct releaser){fs, i, N, THREADS, &go};
            t[i] = spawn(release_on_gate, &r[i]);
        }
        ck_assert(gate_wait_for_waiters(&go, THREADS));
        gate_open(&go);
        size_t nd = 0, nn = 9;
        future_t *done[N];
        ck_assert_int_eq(
            futures_wait(fs, N, T_LONG, FUTURES_ALL_COMPLETED, done, &nd, NULL, &nn), 0);
        ck_assert_uint_eq(nd, N);
        ck_assert_uint_eq(nn, 0);
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        gate_destroy(&go);
        unref_all(fs, N);
    }
    ck_assert(wait_threads(before));
}
END_TEST

START_TEST(test_waiters_wait_pending_calls_race_pool)
{
    enum { N = 100, ROUNDS = 50 };
    int before = count_threads();
    executor_t *ex = thread_pool_executor_new(&(executor_options_t){.max_workers = N});
    ck_assert_ptr_nonnull(ex);
    for (int round = 0; round < ROUNDS; round++) {
        gate_t go;
        gate_init(&go);
        future_t *fs[N];
        for (int i = 0; i < N; i++) {
            fs[i] = executor_submit(ex, t_wait_gate, &go, sizeof(go));
            ck_assert_ptr_nonnull(fs[i]);
        }
        gate_open(&go);
        size_t nd = 0, nn = 9;
        future_t *done[N];
        ck_assert_int_eq(
            futures_wait(fs, N, T_LONG, FUTURES_ALL_COMPLETED, done, &nd, NULL, &nn), 0);
        ck_assert_uint_eq(nd, N);
        ck_assert_uint_eq(nn, 0);
        for (int i = 0; i < N; i++) {
            int64_t v = 0;
            ck_assert_int_eq(future_result_i64(fs[i], 0, &v), 0);
            ck_assert_int_eq(v, 1);
        }
        unref_all(fs, N);
        /* Every task has returned from gate_wait before the gate goes:
         * a worker completes the future only after its task returned. */
        gate_destroy(&go);
    }
    executor_free(ex);
    ck_assert(wait_threads(before));
}
END_TEST

/* as_completed over executor futures released together: each once. */
START_TEST(test_waiters_as_completed_pool_race)
{
    enum { N = 50, ROUNDS = 20 };
    int before = count_threads();
    executor_t *ex = thread_pool_executor_new(&(executor_options_t){.max_workers = 8});
    ck_assert_ptr_nonnull(ex);
    for (int round = 0; round < ROUNDS; round++) {
        int64_t args[N];
        future_t *fs[N];
        for (int i = 0; i < N; i++) {
            args[i] = i;
            fs[i] = executor_submit(ex, t_add1, &args[i], sizeof(args[i]));
            ck_assert_ptr_nonnull(fs[i]);
        }
        as_completed_t *it = as_completed_new(fs, N, T_LONG);
        ck_assert_ptr_nonnull(it);
        bool seen[N] = {false};
        future_t *f;
        int rc, n = 0;
        while ((rc = as_completed_next(it, &f)) == 0) {
            int64_t v;
            ck_assert_int_eq(future_result_i64(f, 0, &v), 0);
            ck_assert(v >= 1 && v <= N);
            ck_assert(!seen[v - 1]);
            seen[v - 1] = true;
            future_unref(f);
            n++;
        }
        ck_assert_int_eq(rc, FUT_EOF);
        ck_assert_int_eq(n, N);
        as_completed_free(it);
        unref_all(fs, N);
    }
    executor_free(ex);
    ck_assert(wait_threads(before));
}
END_TEST

/* as_completed_free while other threads complete the futures: no use after
 * free, no lost or double unref (ASan, TSan). */
START_TEST(test_waiters_as_completed_free_races_completion)
{
    enum { N = 200, ROUNDS = 50 };
    int before = count_threads();
    for (int round = 0; round < ROUNDS; round++) {
        future_t *fs[N];
        for (int i = 0; i < N; i++)
            fs[i] = future_new();
        as_completed_t *it = as_completed_new(fs, N, FUT_FOREVER);
        gate_t go;
        gate_init(&go);
        struct range_completer r[2] = {{fs, 0, N, 2, &go}, {fs, 1, N, 2, &go}};
        pthread_t t[2] = {spawn(complete_range, &r[0]), spawn(complete_range, &r[1])};
        gate_open(&go);
        future_t *f;
        for (int k = 0; k < round % 5; k++) {
            ck_assert_int_eq(as_completed_next(it, &f), 0);
            future_unref(f);
        }
        as_completed_free(it);
        pthread_join(t[0], NULL);
        pthread_join(t[1], NULL);
        gate_destroy(&go);
        unref_all(fs, N);
    }
    ck_assert(wait_threads(before));
}
END_TEST

/* futures_wait FIRST_COMPLETED from several threads on the same futures,
 * woken by one completion. */
struct wait_arg {
    future_t **fs;
    int n;
    gate_t started;
    pid_t tid;
    int rc;
    size_t nd;
};

static void *wait_first(void *p)
{
    struct wait_arg *w = p;
    w->tid = self_tid();
    gate_open(&w->started);
    future_t *done[4];
    w->rc = futures_wait(w->fs, w->n, T_LONG, FUTURES_FIRST_COMPLETED, done, &w->nd, NULL,
                         NULL);
    return NULL;
}

START_TEST(test_waiters_wait_many_waiters)
{
    enum { W = 8 };
    int before = count_threads();
    future_t *fs[4] = {future_new(), future_new(), future_new(), future_new()};
    struct wait_arg w[W];
    pthread_t t[W];
    for (int i = 0; i < W; i++) {
        w[i] = (struct wait_arg){.fs = fs, .n = 4};
        gate_init(&w[i].started);
        t[i] = spawn(wait_first, &w[i]);
    }
    for (int i = 0; i < W; i++) {
        ck_assert(gate_wait(&w[i].started, T_LONG));
        wait_tid_sleeping(w[i].tid, 5.0);
    }
    ck_assert_int_eq(set_i64(fs[2], 2), 0);
    for (int i = 0; i < W; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(w[i].rc, 0);
        ck_assert_uint_ge(w[i].nd, 1);
        gate_destroy(&w[i].started);
    }
    unref_all(fs, 4);
    ck_assert(wait_threads(before));
}
END_TEST

/* ------------------------------------------------------------ suite */

Suite *make_suite(void)
{
    Suite *s = suite_create("waiters");

    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, reset_counters, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_waiters_as_completed_no_timeout);
    tcase_add_loop_test(tc, test_waiters_as_completed_times_out, 0, 2);
    tcase_add_test(tc, test_waiters_as_completed_duplicates_once);
    tcase_add_test(tc, test_waiters_as_completed_next_at);
    tcase_add_test(tc, test_waiters_as_completed_yielded_reference_to_caller);
    tcase_add_test(tc, test_waiters_as_completed_yields_as_completed);
    tcase_add_test(tc, test_waiters_as_completed_completion_order);
    tcase_add_test(tc, test_waiters_as_completed_cancelled_counts_at_once);
    tcase_add_test(tc, test_waiters_as_completed_empty);
    tcase_add_test(tc, test_waiters_as_completed_short_timeout);
    tcase_add_test(tc, test_waiters_as_completed_free_with_pending);
    tcase_add_test(tc, test_waiters_wait_duplicates);
    tcase_add_test(tc, test_waiters_wait_first_completed);
    tcase_add_test(tc, test_waiters_wait_woken_by_cancel);
    tcase_add_test(tc, test_waiters_wait_first_completed_some_done);
    tcase_add_test(tc, test_waiters_wait_first_exception);
    tcase_add_test(tc, test_waiters_wait_first_exception_some_done);
    tcase_add_test(tc, test_waiters_wait_first_exception_none_fail);
    tcase_add_test(tc, test_waiters_wait_first_exception_one_failed);
    tcase_add_test(tc, test_waiters_wait_all_completed);
    tcase_add_test(tc, test_waiters_wait_timeout_fills_lists);
    tcase_add_test(tc, test_waiters_wait_empty);
    tcase_add_test(tc, test_waiters_wait_null_lists);
    tcase_add_test(tc, test_waiters_wait_takes_no_reference);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, reset_counters, NULL);
    tcase_add_test(tc, test_waiters_as_completed_bad_arguments);
    tcase_add_test(tc, test_waiters_wait_bad_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_checked_fixture(tc, reset_counters, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_waiters_many_duplicates);
    tcase_add_test(tc, test_waiters_duplicates_first_index);
    tcase_add_test(tc, test_waiters_wait_large);
    tcase_add_test(tc, test_waiters_as_completed_large);
    tcase_add_test(tc, test_waiters_as_completed_memory_per_distinct);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_add_checked_fixture(tc, reset_counters, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_waiters_wait_pending_calls_race);
    tcase_add_test(tc, test_waiters_wait_pending_calls_race_pool);
    tcase_add_test(tc, test_waiters_as_completed_pool_race);
    tcase_add_test(tc, test_waiters_as_completed_free_races_completion);
    tcase_add_test(tc, test_waiters_wait_many_waiters);
    suite_add_tcase(s, tc);
    return s;
}
