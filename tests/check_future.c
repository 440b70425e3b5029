/*
 * check_future: futures and the promise side (future.c).
 *
 * Covers every FUT-* item of peer-behaviours.md (CPython test_future.py),
 * plus refcounting, ownership of results on every path, callbacks, the
 * blocking waits, timeouts, errors and EXE-06. The fixture futures are
 * CPython's (util.py): PENDING, RUNNING, CANCELLED, CANCELLED_AND_NOTIFIED,
 * EXCEPTION and SUCCESSFUL, built with the promise side only.
 */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

/* ------------------------------------------------------------ helpers */

/* A free_fn that counts its calls (each test runs in its own process). */
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

static int64_t *new_i64(int64_t v)
{
    int64_t *p = malloc(sizeof(*p));
    ck_assert_ptr_nonnull(p);
    *p = v;
    return p;
}

/* Completes @f with a counted, malloc'd int64. */
static int set_i64(future_t *f, int64_t v)
{
    return future_set_result(f, new_i64(v), sizeof(int64_t), count_free);
}

enum fx {
    FX_PENDING,
    FX_RUNNING,
    FX_CANCELLED,          /* cancel() called, executor not told yet */
    FX_CANCELLED_NOTIFIED, /* ... and set_running_or_notify_cancel saw it */
    FX_EXCEPTION,          /* failed with code EIO, "io error 5" */
    FX_SUCCESS,            /* result 42 as an int64 */
    FX_COUNT
};

static const char *const fx_name[FX_COUNT] = {
    "PENDING", "RUNNING", "CANCELLED", "CANCELLED_AND_NOTIFIED", "EXCEPTION", "SUCCESS",
};

/* CPython's fixture futures (util.py), built as peer-behaviours.md says. */
static future_t *make_fx(enum fx k)
{
    future_t *f = future_new();
    ck_assert_ptr_nonnull(f);
    switch (k) {
    case FX_PENDING:
    case FX_COUNT:
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
        ck_assert_int_eq(future_set_exception(f, EIO, "io error %d", 5), 0);
        break;
    case FX_SUCCESS:
        ck_assert_int_eq(set_i64(f, 42), 0);
        break;
    }
    return f;
}

/* Callback bookkeeping: which callbacks ran, in what order, in which thread. */
#define MAX_CALLS 64
struct calls {
    atomic_int n;
    int order[MAX_CALLS];
    pthread_t thread[MAX_CALLS];
    /* what the callback saw */
    bool cancelled, done;
    int result_rc;
    int64_t value;
    int exc_rc;
    int exc_code;
    char exc_msg[64];
};

struct cb_arg {
    struct calls *c;
    int id;
};

static void record(future_t *f, void *ud)
{
    struct cb_arg *a = ud;
    struct calls *c = a->c;
    int i = atomic_fetch_add(&c->n, 1);
    if (i < MAX_CALLS) {
        c->order[i] = a->id;
        c->thread[i] = pthread_self();
    }
    c->cancelled = future_cancelled(f);
    c->done = future_done(f);
    c->value = -1;
    c->result_rc = future_result_i64(f, 0, &c->value);
    const future_error_t *e = NULL;
    c->exc_rc = future_exception(f, 0, &e);
    c->exc_code = e ? e->code : -1;
    snprintf(c->exc_msg, sizeof(c->exc_msg), "%s", e ? e->message : "(none)");
}

/* Runs @fn(arg) on a new thread. */
static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

/* ------------------------------------------------------------ FUT-01..08 */

/* FUT-01: Future.add_done_callback before set_result(5). */
START_TEST(test_future_callback_with_result)
{
    struct calls c = {0};
    struct cb_arg a = {&c, 1};
    future_t *f = future_new();
    ck_assert_int_eq(future_add_done_callback(f, record, &a), 0);
    ck_assert_int_eq(atomic_load(&c.n), 0);
    ck_assert_int_eq(set_i64(f, 5), 0);
    ck_assert_int_eq(atomic_load(&c.n), 1);
    ck_assert_int_eq(c.result_rc, 0);
    ck_assert_int_eq(c.value, 5);
    ck_assert(c.done);
    ck_assert(!c.cancelled);
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 1);
}
END_TEST

/* FUT-02: a callback sees the exception that was set (code and message). */
START_TEST(test_future_callback_with_exception)
{
    struct calls c = {0};
    struct cb_arg a = {&c, 1};
    future_t *f = future_new();
    ck_assert_int_eq(future_add_done_callback(f, record, &a), 0);
    ck_assert_int_eq(future_set_exception(f, 77, "%s", "test"), 0);
    ck_assert_int_eq(atomic_load(&c.n), 1);
    ck_assert_int_eq(c.result_rc, FUT_ETASK);
    ck_assert_int_eq(c.exc_rc, 0);
    ck_assert_int_eq(c.exc_code, 77);
    ck_assert_str_eq(c.exc_msg, "test");
    future_unref(f);
}
END_TEST

/* FUT-03: cancel() on a pending future runs its callbacks; cancelled() inside. */
START_TEST(test_future_callback_with_cancel)
{
    struct calls c = {0};
    struct cb_arg a = {&c, 1};
    future_t *f = future_new();
    ck_assert_int_eq(future_add_done_callback(f, record, &a), 0);
    ck_assert(future_cancel(f));
    ck_assert_int_eq(atomic_load(&c.n), 1);
    ck_assert(pthread_equal(c.thread[0], pthread_self()));
    ck_assert(c.cancelled);
    ck_assert(c.done);
    ck_assert_int_eq(c.result_rc, FUT_ECANCELLED);
    ck_assert_int_eq(c.exc_rc, FUT_ECANCELLED);
    future_unref(f);
}
END_TEST

/*
 * FUT-04 [analog]: Python's first callback raises; C's does odd things
 * instead (drops the caller's reference, adds another callback), and the
 * second callback still runs, exactly once.
 */
struct odd {
    struct calls *c;
    future_t *to_unref;
    struct cb_arg added;
    int add_rc;
};

static void odd_first(future_t *f, void *ud)
{
    struct odd *o = ud;
    struct cb_arg self = {o->c, 1};
    record(f, &self);
    future_unref(o->to_unref); /* the caller's last reference */
    o->add_rc = future_add_done_callback(f, record, &o->added);
}

START_TEST(test_future_callback_odd_does_not_disturb_others)
{
    struct calls c = {0};
    future_t *f = future_new();
    struct odd o = {.c = &c, .to_unref = f, .added = {&c, 3}};
    struct cb_arg second = {&c, 2};
    ck_assert_int_eq(future_add_done_callback(f, odd_first, &o), 0);
    ck_assert_int_eq(future_add_done_callback(f, record, &second), 0);
    /* The library holds its own reference while calling: the second callback
     * still sees a live future, and the future is freed afterwards. */
    ck_assert_int_eq(set_i64(f, 9), 0);
    ck_assert_int_eq(o.add_rc, 0);
    ck_assert_int_eq(atomic_load(&c.n), 3);
    ck_assert_int_eq(c.order[0], 1);
    ck_assert_int_eq(c.order[1], 3); /* added to a done future: ran at once */
    ck_assert_int_eq(c.order[2], 2);
    ck_assert_int_eq(c.value, 9);
    ck_assert_int_eq(atomic_load(&n_freed), 1); /* freed after the callbacks */
}
END_TEST

/* FUT-05: on a succeeded future the callback runs at once, in the caller. */
START_TEST(test_future_callback_already_successful)
{
    struct calls c = {0};
    struct cb_arg a = {&c, 1};
    future_t *f = make_fx(FX_SUCCESS);
    ck_assert_int_eq(future_add_done_callback(f, record, &a), 0);
    ck_assert_int_eq(atomic_load(&c.n), 1);
    ck_assert(pthread_equal(c.thread[0], pthread_self()));
    ck_assert_int_eq(c.result_rc, 0);
    ck_assert_int_eq(c.value, 42);
    future_unref(f);
}
END_TEST

/* FUT-06: the same for a failed future; it sees the exception. */
START_TEST(test_future_callback_already_failed)
{
    struct calls c = {0};
    struct cb_arg a = {&c, 1};
    future_t *f = make_fx(FX_EXCEPTION);
    ck_assert_int_eq(future_add_done_callback(f, record, &a), 0);
    ck_assert_int_eq(atomic_load(&c.n), 1);
    ck_assert(pthread_equal(c.thread[0], pthread_self()));
    ck_assert_int_eq(c.result_rc, FUT_ETASK);
    ck_assert_int_eq(c.exc_code, EIO);
    ck_assert_str_eq(c.exc_msg, "io error 5");
    future_unref(f);
}
END_TEST

/* FUT-07: the same for a cancelled future (both cancelled states). */
START_TEST(test_future_callback_already_cancelled)
{
    enum fx kinds[] = {FX_CANCELLED, FX_CANCELLED_NOTIFIED};
    for (size_t i = 0; i < 2; i++) {
        struct calls c = {0};
        struct cb_arg a = {&c, 1};
        future_t *f = make_fx(kinds[i]);
        ck_assert_int_eq(future_add_done_callback(f, record, &a), 0);
        ck_assert_int_eq(atomic_load(&c.n), 1);
        ck_assert(pthread_equal(c.thread[0], pthread_self()));
        ck_assert(c.cancelled);
        future_unref(f);
    }
}
END_TEST

/* FUT-08 [analog]: add_done_callback on a finished future returns 0 after the
 * callback ran (Python: add_done_callback does not raise). */
static void check_not_returned(future_t *f, void *ud)
{
    (void)f;
    *(int *)ud += 1;
}

START_TEST(test_future_add_callback_done_returns_0_after_running)
{
    enum fx kinds[] = {FX_SUCCESS, FX_EXCEPTION, FX_CANCELLED};
    for (size_t i = 0; i < 3; i++) {
        int ran = 0;
        future_t *f = make_fx(kinds[i]);
        ck_assert_int_eq(future_add_done_callback(f, check_not_returned, &ran), 0);
        ck_assert_int_eq(ran, 1);
        future_unref(f);
    }
}
END_TEST

/* FUT-10 [N/A, nearest check]: every code has a distinct, non-NULL name. */
START_TEST(test_future_strerror_names_every_code)
{
    static const struct {
        int code;
        const char *name;
    } codes[] = {
        {FUT_ETIMEDOUT, "FUT_ETIMEDOUT"},
        {FUT_ECANCELLED, "FUT_ECANCELLED"},
        {FUT_ESHUTDOWN, "FUT_ESHUTDOWN"},
        {FUT_EINVAL, "FUT_EINVAL"},
        {FUT_ENOMEM, "FUT_ENOMEM"},
        {FUT_EFULL, "FUT_EFULL"},
        {FUT_ETASK, "FUT_ETASK"},
        {FUT_EBROKEN, "FUT_EBROKEN"},
        {FUT_EWORKER, "FUT_EWORKER"},
        {FUT_EDEADLINE, "FUT_EDEADLINE"},
        {FUT_ESTATE, "FUT_ESTATE"},
        {FUT_ESYS, "FUT_ESYS"},
        {FUT_EOF, "FUT_EOF"},
    };
    const size_t n = sizeof(codes) / sizeof(codes[0]);
    const char *seen[sizeof(codes) / sizeof(codes[0]) + 2];
    for (size_t i = 0; i < n; i++) {
        const char *s = future_strerror(codes[i].code);
        ck_assert_ptr_nonnull(s);
        /* "FUT_ETIMEDOUT: timed out": the name, then a colon. */
        size_t l = strlen(codes[i].name);
        ck_assert_msg(strncmp(s, codes[i].name, l) == 0 && s[l] == ':',
                      "strerror(%d) = \"%s\"", codes[i].code, s);
        seen[i] = s;
    }
    seen[n] = future_strerror(0);
    seen[n + 1] = future_strerror(-424242);
    ck_assert_str_eq(seen[n], "success");
    ck_assert_str_eq(seen[n + 1], "unknown error");
    ck_assert_str_eq(future_strerror(12345), "unknown error");
    ck_assert_str_eq(future_strerror(-10000), "unknown error");
    for (size_t i = 0; i < n + 2; i++)
        for (size_t j = i + 1; j < n + 2; j++)
            ck_assert_str_ne(seen[i], seen[j]);
}
END_TEST

/* The codes with an errno twin are its negation; the others sit below -10000. */
START_TEST(test_future_codes_values)
{
    ck_assert_int_eq(FUT_ETIMEDOUT, -ETIMEDOUT);
    ck_assert_int_eq(FUT_ECANCELLED, -ECANCELED);
    ck_assert_int_eq(FUT_ESHUTDOWN, -ESHUTDOWN);
    ck_assert_int_eq(FUT_EINVAL, -EINVAL);
    ck_assert_int_eq(FUT_ENOMEM, -ENOMEM);
    ck_assert_int_eq(FUT_EFULL, -EAGAIN);
    int others[] = {FUT_ETASK,  FUT_EBROKEN, FUT_EWORKER, FUT_EDEADLINE,
                    FUT_ESTATE, FUT_ESYS,    FUT_EOF};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        ck_assert_int_lt(others[i], -10000);
    ck_assert_str_eq(cfutures_version(), CFUTURES_VERSION);
}
END_TEST

/* ------------------------------------------------------------ FUT-11..15 */

/* FUT-11: Future.cancel in each state, and the state afterwards. */
START_TEST(test_future_cancel_by_state)
{
    static const bool want[FX_COUNT] = {
        [FX_PENDING] = true,    [FX_RUNNING] = false,
        [FX_CANCELLED] = true,  [FX_CANCELLED_NOTIFIED] = true,
        [FX_EXCEPTION] = false, [FX_SUCCESS] = false,
    };
    for (int k = 0; k < FX_COUNT; k++) {
        future_t *f = make_fx((enum fx)k);
        bool was_running = future_running(f);
        ck_assert_msg(future_cancel(f) == want[k], "cancel(%s)", fx_name[k]);
        if (k == FX_PENDING) {
            ck_assert(future_cancelled(f));
        } else {
            /* unchanged */
            ck_assert(future_running(f) == was_running);
            ck_assert(future_cancelled(f) ==
                      (k == FX_CANCELLED || k == FX_CANCELLED_NOTIFIED));
        }
        if (k == FX_SUCCESS) {
            int64_t v = 0;
            ck_assert_int_eq(future_result_i64(f, 0, &v), 0);
            ck_assert_int_eq(v, 42);
        }
        if (k == FX_EXCEPTION)
            ck_assert_int_eq(future_result(f, 0, NULL, NULL), FUT_ETASK);
        future_unref(f);
    }
}
END_TEST

/* FUT-12: Future.cancelled. */
START_TEST(test_future_cancelled_by_state)
{
    for (int k = 0; k < FX_COUNT; k++) {
        future_t *f = make_fx((enum fx)k);
        ck_assert_msg(future_cancelled(f) ==
                          (k == FX_CANCELLED || k == FX_CANCELLED_NOTIFIED),
                      "cancelled(%s)", fx_name[k]);
        future_unref(f);
    }
}
END_TEST

/* FUT-13: Future.done. */
START_TEST(test_future_done_by_state)
{
    for (int k = 0; k < FX_COUNT; k++) {
        future_t *f = make_fx((enum fx)k);
        ck_assert_msg(future_done(f) == (k != FX_PENDING && k != FX_RUNNING), "done(%s)",
                      fx_name[k]);
        future_unref(f);
    }
}
END_TEST

/* FUT-14: Future.running. */
START_TEST(test_future_running_by_state)
{
    for (int k = 0; k < FX_COUNT; k++) {
        future_t *f = make_fx((enum fx)k);
        ck_assert_msg(future_running(f) == (k == FX_RUNNING), "running(%s)", fx_name[k]);
        future_unref(f);
    }
}
END_TEST

/* FUT-15: result(timeout=0) polls. */
START_TEST(test_future_result_poll_by_state)
{
    static const int want[FX_COUNT] = {
        [FX_PENDING] = FUT_ETIMEDOUT,    [FX_RUNNING] = FUT_ETIMEDOUT,
        [FX_CANCELLED] = FUT_ECANCELLED, [FX_CANCELLED_NOTIFIED] = FUT_ECANCELLED,
        [FX_EXCEPTION] = FUT_ETASK,      [FX_SUCCESS] = 0,
    };
    for (int k = 0; k < FX_COUNT; k++) {
        future_t *f = make_fx((enum fx)k);
        const void *data = NULL;
        size_t len = 99;
        double t0 = now_s();
        ck_assert_msg(future_result(f, 0, &data, &len) == want[k], "result(%s)",
                      fx_name[k]);
        ck_assert(now_s() - t0 < 5.0);
        if (k == FX_SUCCESS) {
            ck_assert_uint_eq(len, 8);
            int64_t v;
            memcpy(&v, data, 8);
            ck_assert_int_eq(v, 42);
        }
        int64_t v = 0;
        ck_assert_int_eq(future_result_i64(f, 0, &v), want[k]);
        future_unref(f);
    }
}
END_TEST

/* FUT-18: exception(timeout=0) polls. */
START_TEST(test_future_exception_poll_by_state)
{
    static const int want[FX_COUNT] = {
        [FX_PENDING] = FUT_ETIMEDOUT,
        [FX_RUNNING] = FUT_ETIMEDOUT,
        [FX_CANCELLED] = FUT_ECANCELLED,
        [FX_CANCELLED_NOTIFIED] = FUT_ECANCELLED,
        [FX_EXCEPTION] = 0,
        [FX_SUCCESS] = 0,
    };
    for (int k = 0; k < FX_COUNT; k++) {
        future_t *f = make_fx((enum fx)k);
        const future_error_t *e = (const future_error_t *)&e; /* not NULL */
        ck_assert_msg(future_exception(f, 0, &e) == want[k], "exception(%s)", fx_name[k]);
        if (k == FX_SUCCESS)
            ck_assert_ptr_null(e);
        if (k == FX_EXCEPTION) {
            ck_assert_ptr_nonnull(e);
            ck_assert_int_eq(e->status, FUT_ETASK);
            ck_assert_int_eq(e->code, EIO);
            ck_assert_str_eq(e->message, "io error 5");
            ck_assert(!future_error_is_broken(e));
        }
        future_unref(f);
    }
}
END_TEST

/* future_exception: the error is the future's own, the same on every call. */
START_TEST(test_future_exception_fields)
{
    future_t *f = future_new();
    ck_assert_int_eq(future_set_exception(f, -3, "code %d, %s", 7, "seven"), 0);
    const future_error_t *e1 = NULL, *e2 = NULL;
    ck_assert_int_eq(future_exception(f, FUT_FOREVER, &e1), 0);
    ck_assert_int_eq(future_exception(f, 1.0, &e2), 0);
    ck_assert_ptr_eq(e1, e2);
    ck_assert_int_eq(e1->status, FUT_ETASK);
    ck_assert_int_eq(e1->code, -3);
    ck_assert_str_eq(e1->message, "code 7, seven");
    ck_assert_int_eq(e1->signal, 0);
    ck_assert_int_eq(future_result(f, FUT_FOREVER, NULL, NULL), FUT_ETASK);
    future_unref(f);
}
END_TEST

/* EXE-06 [analog], promise side: a "falsy" error still fails the future. */
START_TEST(test_future_set_exception_zero_code_still_fails)
{
    future_t *f = future_new();
    ck_assert_int_eq(future_set_exception(f, 0, "%s", ""), 0);
    ck_assert(future_done(f));
    ck_assert(!future_cancelled(f));
    ck_assert_int_eq(future_result(f, 0, NULL, NULL), FUT_ETASK);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(f, 0, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, FUT_ETASK);
    ck_assert_int_eq(e->code, 0);
    ck_assert_ptr_nonnull(e->message);
    ck_assert_str_eq(e->message, "");
    future_unref(f);
}
END_TEST

/* EXE-06 [analog]: task_raise(t, 0, "") on an executor fails with FUT_ETASK. */
static void t_raise_falsy(task_t *t)
{
    task_raise(t, 0, "%s", "");
}

START_TEST(test_future_task_raise_zero_still_fails)
{
    int before = count_threads();
    executor_t *ex = thread_pool_executor_new(&(executor_options_t){.max_workers = 1});
    ck_assert_ptr_nonnull(ex);
    future_t *f = executor_submit(ex, t_raise_falsy, NULL, 0);
    ck_assert_ptr_nonnull(f);
    const void *data = NULL;
    ck_assert_int_eq(future_result(f, T_LONG, &data, NULL), FUT_ETASK);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(f, 0, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, FUT_ETASK);
    ck_assert_int_eq(e->code, 0);
    ck_assert_str_eq(e->message, "");
    future_unref(f);
    executor_free(ex);
    ck_assert(wait_threads(before));
}
END_TEST

/* FUT-20: a second set_result is FUT_ESTATE; the first result stays; the
 * second data is freed with its free_fn before the call returns. */
START_TEST(test_future_set_result_twice)
{
    future_t *f = future_new();
    ck_assert_int_eq(set_i64(f, 42), 0);
    ck_assert_int_eq(set_i64(f, 43), FUT_ESTATE);
    ck_assert_int_eq(atomic_load(&n_freed), 1); /* the rejected one */
    ck_assert(future_done(f));
    int64_t v = 0;
    ck_assert_int_eq(future_result_i64(f, 0, &v), 0);
    ck_assert_int_eq(v, 42);
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 2);
}
END_TEST

/*
 * A message vsnprintf cannot render (a wide string with no multibyte form
 * in the "C" locale: EILSEQ) still fails the future, and the message says
 * so (it was "", as if the caller had given an empty one).
 */
START_TEST(test_future_set_exception_unrenderable_format)
{
    static const wchar_t unrenderable[] = {0x100, 0};
    future_t *f = future_new();
    ck_assert_int_eq(future_set_exception(f, 5, "%ls", unrenderable), 0);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(f, 0, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, FUT_ETASK);
    ck_assert_int_eq(e->code, 5);
    ck_assert_str_eq(e->message, "(the error message could not be formatted)");
    future_unref(f);
}
END_TEST

/* FUT-21: a second set_exception is FUT_ESTATE; the first error stays. */
START_TEST(test_future_set_exception_twice)
{
    future_t *f = future_new();
    ck_assert_int_eq(future_set_exception(f, 1, "first"), 0);
    ck_assert_int_eq(future_set_exception(f, 2, "second"), FUT_ESTATE);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(f, 0, &e), 0);
    ck_assert_int_eq(e->code, 1);
    ck_assert_str_eq(e->message, "first");
    future_unref(f);
}
END_TEST

/* InvalidStateError across kinds: result after error, error after result,
 * and both on a cancelled future; ownership holds on each path. */
START_TEST(test_future_set_on_done_is_estate)
{
    future_t *f = make_fx(FX_EXCEPTION);
    ck_assert_int_eq(set_i64(f, 1), FUT_ESTATE);
    ck_assert_int_eq(atomic_load(&n_freed), 1);
    ck_assert_int_eq(future_result(f, 0, NULL, NULL), FUT_ETASK);
    future_unref(f);

    f = make_fx(FX_SUCCESS);
    ck_assert_int_eq(future_set_exception(f, 1, "late"), FUT_ESTATE);
    const future_error_t *e = (const future_error_t *)&e;
    ck_assert_int_eq(future_exception(f, 0, &e), 0);
    ck_assert_ptr_null(e);
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 2);

    enum fx cancelled[] = {FX_CANCELLED, FX_CANCELLED_NOTIFIED};
    for (int i = 0; i < 2; i++) {
        f = make_fx(cancelled[i]);
        ck_assert_int_eq(set_i64(f, 1), FUT_ESTATE);
        ck_assert_int_eq(future_set_exception(f, 1, "x"), FUT_ESTATE);
        ck_assert(future_cancelled(f));
        ck_assert_int_eq(future_result(f, 0, NULL, NULL), FUT_ECANCELLED);
        future_unref(f);
    }
    ck_assert_int_eq(atomic_load(&n_freed), 4);
}
END_TEST

/* set_running_or_notify_cancel: 1 / 0 / FUT_ESTATE per state. */
START_TEST(test_future_set_running_by_state)
{
    static const int want[FX_COUNT] = {
        [FX_PENDING] = 1,
        [FX_RUNNING] = FUT_ESTATE,
        [FX_CANCELLED] = 0,
        [FX_CANCELLED_NOTIFIED] = FUT_ESTATE, /* told once already */
        [FX_EXCEPTION] = FUT_ESTATE,
        [FX_SUCCESS] = FUT_ESTATE,
    };
    for (int k = 0; k < FX_COUNT; k++) {
        future_t *f = make_fx((enum fx)k);
        ck_assert_msg(future_set_running_or_notify_cancel(f) == want[k],
                      "set_running(%s)", fx_name[k]);
        ck_assert_int_eq(future_set_running_or_notify_cancel(f), FUT_ESTATE);
        if (k == FX_PENDING)
            ck_assert(future_running(f));
        future_unref(f);
    }
}
END_TEST

/* Notify-cancel tells no one twice: callbacks ran once, at cancel time. */
START_TEST(test_future_notify_cancel_tells_no_one_twice)
{
    struct calls c = {0};
    struct cb_arg a = {&c, 1};
    future_t *f = future_new();
    ck_assert_int_eq(future_add_done_callback(f, record, &a), 0);
    ck_assert(future_cancel(f));
    ck_assert_int_eq(atomic_load(&c.n), 1);
    ck_assert_int_eq(future_set_running_or_notify_cancel(f), 0);
    ck_assert(future_cancel(f));
    ck_assert_int_eq(future_set_running_or_notify_cancel(f), FUT_ESTATE);
    ck_assert_int_eq(atomic_load(&c.n), 1);
    future_unref(f);
}
END_TEST

/* RUNNING -> FINISHED by the promise side: result and error both work. */
START_TEST(test_future_running_then_complete)
{
    future_t *f = make_fx(FX_RUNNING);
    ck_assert_int_eq(set_i64(f, 11), 0);
    ck_assert(!future_running(f));
    ck_assert(future_done(f));
    int64_t v;
    ck_assert_int_eq(future_result_i64(f, 0, &v), 0);
    ck_assert_int_eq(v, 11);
    future_unref(f);

    f = make_fx(FX_RUNNING);
    ck_assert_int_eq(future_set_exception(f, 5, "r"), 0);
    ck_assert_int_eq(future_result(f, 0, NULL, NULL), FUT_ETASK);
    future_unref(f);
}
END_TEST

/* ------------------------------------------------------------ refcounting */

/* future_unref runs the result's free_fn exactly once, at the last unref. */
START_TEST(test_future_unref_frees_result_at_last_ref)
{
    future_t *f = future_new();
    ck_assert_ptr_eq(future_ref(f), f);
    ck_assert_ptr_eq(future_ref(f), f);
    ck_assert_int_eq(set_i64(f, 1), 0);
    future_unref(f);
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 0);
    int64_t v;
    ck_assert_int_eq(future_result_i64(f, 0, &v), 0); /* still alive */
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 1);
}
END_TEST

/* A result with no free_fn (static data) is handed back as the same pointer. */
START_TEST(test_future_set_result_static_data)
{
    static const char hello[] = "hello";
    future_t *f = future_new();
    ck_assert_int_eq(future_set_result(f, (void *)hello, sizeof(hello), NULL), 0);
    const void *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(future_result(f, 0, &data, &len), 0);
    ck_assert_ptr_eq(data, hello);
    ck_assert_uint_eq(len, sizeof(hello));
    ck_assert_str_eq(future_result_str(f, 0), "hello");
    future_unref(f);
}
END_TEST

/* An empty result (NULL, 0) is a success. */
START_TEST(test_future_set_result_empty)
{
    future_t *f = future_new();
    ck_assert_int_eq(future_set_result(f, NULL, 0, count_free), 0);
    const void *data = (const void *)&data;
    size_t len = 99;
    ck_assert_int_eq(future_result(f, 0, &data, &len), 0);
    ck_assert_ptr_null(data);
    ck_assert_uint_eq(len, 0);
    int64_t v;
    ck_assert_int_eq(future_result_i64(f, 0, &v), FUT_EINVAL);
    errno = 0;
    ck_assert_ptr_null(future_result_str(f, 0));
    ck_assert_int_eq(errno, EINVAL);
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 0);
}
END_TEST

/* A pending future with callbacks that is dropped: callbacks never run, and
 * nothing leaks (LSan). */
START_TEST(test_future_unref_pending_drops_callbacks)
{
    struct calls c = {0};
    struct cb_arg a = {&c, 1};
    future_t *f = future_new();
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(future_add_done_callback(f, record, &a), 0);
    future_unref(f);
    ck_assert_int_eq(atomic_load(&c.n), 0);
}
END_TEST

/* ------------------------------------------------------------ callbacks */

/* Callbacks run in the order added, each exactly once, never again. */
START_TEST(test_future_callbacks_in_order_once)
{
    struct calls c = {0};
    struct cb_arg a[10];
    future_t *f = future_new();
    for (int i = 0; i < 10; i++) {
        a[i] = (struct cb_arg){&c, i};
        ck_assert_int_eq(future_add_done_callback(f, record, &a[i]), 0);
    }
    ck_assert_int_eq(set_i64(f, 3), 0);
    ck_assert_int_eq(atomic_load(&c.n), 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(c.order[i], i);
        ck_assert(pthread_equal(c.thread[i], pthread_self()));
    }
    /* Later state calls run nothing again. */
    ck_assert_int_eq(set_i64(f, 4), FUT_ESTATE);
    ck_assert(!future_cancel(f));
    ck_assert_int_eq(future_set_exception(f, 1, "x"), FUT_ESTATE);
    ck_assert_int_eq(atomic_load(&c.n), 10);
    future_unref(f);
}
END_TEST

/* The same callback and ud added twice runs twice (Python keeps a list). */
START_TEST(test_future_callback_added_twice_runs_twice)
{
    int ran = 0;
    future_t *f = future_new();
    ck_assert_int_eq(future_add_done_callback(f, check_not_returned, &ran), 0);
    ck_assert_int_eq(future_add_done_callback(f, check_not_returned, &ran), 0);
    ck_assert(future_cancel(f));
    ck_assert_int_eq(ran, 2);
    future_unref(f);
}
END_TEST

/* A callback that drops the last reference, when it is the only callback and
 * the future is already done (runs in add_done_callback's caller). */
static void unref_cb(future_t *f, void *ud)
{
    (void)ud;
    future_unref(f);
}

START_TEST(test_future_callback_unrefs_done_future)
{
    future_t *f = future_new();
    ck_assert_int_eq(set_i64(f, 1), 0);
    ck_assert_int_eq(future_add_done_callback(f, unref_cb, NULL), 0);
    ck_assert_int_eq(atomic_load(&n_freed), 1); /* freed by the callback */
}
END_TEST

/* A callback that drops the caller's only reference while the future
 * completes: the library's own reference keeps it alive for the next
 * callback, and the future is freed once the callbacks are done. */
START_TEST(test_future_callback_unrefs_completing_future)
{
    struct calls c = {0};
    struct cb_arg after = {&c, 2};
    future_t *f = future_new();
    ck_assert_int_eq(future_add_done_callback(f, unref_cb, NULL), 0);
    ck_assert_int_eq(future_add_done_callback(f, record, &after), 0);
    ck_assert_int_eq(set_i64(f, 8), 0);
    /* f is gone now. */
    ck_assert_int_eq(atomic_load(&c.n), 1);
    ck_assert_int_eq(c.value, 8);
    ck_assert(c.done);
    ck_assert_int_eq(atomic_load(&n_freed), 1);
}
END_TEST

/* A callback that adds another callback to its own future: it runs at once,
 * nested, before add_done_callback returns; and one that adds a callback to
 * another, pending future: that one runs when the other completes. */
struct adder {
    struct calls *c;
    future_t *other;
    struct cb_arg nested, on_other;
    int rc_self, rc_other, n_after_add;
};

static void adder_cb(future_t *f, void *ud)
{
    struct adder *a = ud;
    a->rc_self = future_add_done_callback(f, record, &a->nested);
    a->n_after_add = atomic_load(&a->c->n);
    a->rc_other = future_add_done_callback(a->other, record, &a->on_other);
}

START_TEST(test_future_callback_adds_callback)
{
    struct calls c = {0};
    future_t *f = future_new(), *g = future_new();
    struct adder a = {.c = &c, .other = g, .nested = {&c, 1}, .on_other = {&c, 2}};
    ck_assert_int_eq(future_add_done_callback(f, adder_cb, &a), 0);
    ck_assert_int_eq(set_i64(f, 1), 0);
    ck_assert_int_eq(a.rc_self, 0);
    ck_assert_int_eq(a.rc_other, 0);
    ck_assert_int_eq(a.n_after_add, 1);
    ck_assert_int_eq(atomic_load(&c.n), 1);
    ck_assert_int_eq(set_i64(g, 2), 0);
    ck_assert_int_eq(atomic_load(&c.n), 2);
    ck_assert_int_eq(c.order[1], 2);
    ck_assert_int_eq(c.value, 2);
    future_unref(f);
    future_unref(g);
}
END_TEST

/* A callback that completes another future whose callback completes a third:
 * chains run, in the caller, without deadlock. */
static void chain_cb(future_t *f, void *ud)
{
    (void)f;
    set_i64((future_t *)ud, 1);
}

START_TEST(test_future_callback_chain)
{
    future_t *fs[5];
    for (int i = 0; i < 5; i++)
        fs[i] = future_new();
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(future_add_done_callback(fs[i], chain_cb, fs[i + 1]), 0);
    ck_assert(future_cancel(fs[0]));
    for (int i = 1; i < 5; i++)
        ck_assert_int_eq(future_result(fs[i], 0, NULL, NULL), 0);
    for (int i = 0; i < 5; i++)
        future_unref(fs[i]);
    ck_assert_int_eq(atomic_load(&n_freed), 4);
}
END_TEST

/* ------------------------------------------------------------ typed results */

/* future_result_i64 needs exactly 8 bytes. */
/* PyMOTW's `f.arg = i`: one word the caller owns, kept as given */
START_TEST(test_future_user_data)
{
    future_t *f = future_new();
    int x;
    ck_assert_ptr_null(future_user_data(f));
    future_set_user_data(f, &x);
    ck_assert_ptr_eq(future_user_data(f), &x);
    ck_assert_int_eq(future_set_result(f, NULL, 0, NULL), 0);
    ck_assert_ptr_eq(future_user_data(f), &x); /* completion leaves it alone */
    future_set_user_data(NULL, &x);            /* NULL-safe */
    ck_assert_ptr_null(future_user_data(NULL));
    future_unref(f);
}
END_TEST

/* fut.result() of a float: 8 bytes as a double, else FUT_EINVAL */
START_TEST(test_future_result_double)
{
    future_t *f = future_new();
    double *d = malloc(sizeof(*d));
    *d = 0.25;
    ck_assert_int_eq(future_set_result(f, d, sizeof(*d), free), 0);
    double v = 0;
    ck_assert_int_eq(future_result_double(f, 0, &v), 0);
    ck_assert(v == 0.25);
    ck_assert_int_eq(future_result_double(f, 0, NULL), FUT_EINVAL);
    ck_assert_int_eq(future_result_double(NULL, 0, &v), FUT_EINVAL);
    future_unref(f);
    f = future_new();
    ck_assert_int_eq(future_set_result(f, (void *)"abc", 4, NULL), 0);
    ck_assert_int_eq(future_result_double(f, 0, &v), FUT_EINVAL);
    future_unref(f);
}
END_TEST

START_TEST(test_future_result_i64_wrong_size)
{
    int32_t *small = malloc(sizeof(*small));
    *small = 5;
    future_t *f = future_new();
    ck_assert_int_eq(future_set_result(f, small, sizeof(*small), count_free), 0);
    int64_t v = 1234;
    ck_assert_int_eq(future_result_i64(f, 0, &v), FUT_EINVAL);
    ck_assert_int_eq(future_result(f, 0, NULL, NULL), 0); /* still a success */
    future_unref(f);

    char *big = calloc(1, 16);
    f = future_new();
    ck_assert_int_eq(future_set_result(f, big, 16, count_free), 0);
    ck_assert_int_eq(future_result_i64(f, 0, &v), FUT_EINVAL);
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 2);

    f = future_new();
    ck_assert_int_eq(future_set_result(f, new_i64(INT64_MIN), 8, count_free), 0);
    ck_assert_int_eq(future_result_i64(f, FUT_FOREVER, &v), 0);
    ck_assert(v == INT64_MIN);
    future_unref(f);
}
END_TEST

/* future_result_str reads NUL-terminated results and refuses the rest. */
START_TEST(test_future_result_str)
{
    future_t *f = future_new();
    ck_assert_int_eq(future_set_result(f, strdup("hello"), 6, count_free), 0);
    const char *s = future_result_str(f, 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "hello");
    ck_assert_ptr_eq(s, future_result_str(f, FUT_FOREVER)); /* borrowed */
    future_unref(f);

    /* Not NUL-terminated: EINVAL. */
    f = future_new();
    ck_assert_int_eq(future_set_result(f, strdup("abc"), 3, count_free), 0);
    errno = 0;
    ck_assert_ptr_null(future_result_str(f, 0));
    ck_assert_int_eq(errno, EINVAL);
    future_unref(f);

    /* Failure codes come through errno, positive. */
    struct {
        enum fx k;
        int err;
    } cases[] = {
        {FX_PENDING, ETIMEDOUT},
        {FX_CANCELLED, ECANCELED},
        {FX_EXCEPTION, -FUT_ETASK},
    };
    for (int i = 0; i < 3; i++) {
        f = make_fx(cases[i].k);
        errno = 0;
        ck_assert_ptr_null(future_result_str(f, 0));
        ck_assert_int_eq(errno, cases[i].err);
        future_unref(f);
    }
    ck_assert_int_eq(atomic_load(&n_freed), 2);
}
END_TEST

/* future_error_is_broken: FUT_EBROKEN and FUT_EWORKER only. */
START_TEST(test_future_error_is_broken)
{
    future_error_t e = {.message = ""};
    int yes[] = {FUT_EBROKEN, FUT_EWORKER};
    int no[] = {FUT_ETASK, FUT_EDEADLINE, FUT_ECANCELLED, FUT_ESYS, FUT_ESHUTDOWN, 0};
    for (size_t i = 0; i < 2; i++) {
        e.status = yes[i];
        ck_assert(future_error_is_broken(&e));
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        e.status = no[i];
        ck_assert(!future_error_is_broken(&e));
    }
    ck_assert(!future_error_is_broken(NULL));
}
END_TEST

/* ------------------------------------------------------------ timeouts */

/* A short timeout on a pending future returns FUT_ETIMEDOUT, after about the
 * timeout (never before: the clock is monotonic) and well within 5 s. */
START_TEST(test_future_result_short_timeout)
{
    future_t *f = future_new();
    double t0 = now_s();
    ck_assert_int_eq(future_result(f, 0.05, NULL, NULL), FUT_ETIMEDOUT);
    double dt = now_s() - t0;
    ck_assert(dt >= 0.04);
    ck_assert(dt < 5.0);
    const future_error_t *e;
    t0 = now_s();
    ck_assert_int_eq(future_exception(f, 0.05, &e), FUT_ETIMEDOUT);
    ck_assert(now_s() - t0 < 5.0);
    errno = 0;
    ck_assert_ptr_null(future_result_str(f, 0.01));
    ck_assert_int_eq(errno, ETIMEDOUT);
    int64_t v;
    ck_assert_int_eq(future_result_i64(f, 0.01, &v), FUT_ETIMEDOUT);
    ck_assert(!future_done(f)); /* a timed-out wait changes nothing */
    ck_assert(future_cancel(f));
    future_unref(f);
}
END_TEST

/* FUT_FOREVER and positive timeouts return at once on a done future. */
START_TEST(test_future_timeouts_on_done_future)
{
    future_t *f = make_fx(FX_SUCCESS);
    double ts[] = {0, FUT_FOREVER, 0.001, 1.0, 1e9, 1e300, DBL_MAX};
    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
        int64_t v = 0;
        ck_assert_int_eq(future_result_i64(f, ts[i], &v), 0);
        ck_assert_int_eq(v, 42);
        const future_error_t *e = (const future_error_t *)&e;
        ck_assert_int_eq(future_exception(f, ts[i], &e), 0);
        ck_assert_ptr_null(e);
    }
    future_unref(f);
}
END_TEST

/* NaN, infinities and negative values other than FUT_FOREVER: FUT_EINVAL,
 * on a pending future and on a done one (arguments are checked first). */
START_TEST(test_future_bad_timeouts)
{
    double bad[] = {NAN, -NAN, INFINITY, -INFINITY, -2.0, -0.5, -1e-9, -1.0000001};
    enum fx kinds[] = {FX_PENDING, FX_SUCCESS, FX_EXCEPTION, FX_CANCELLED};
    for (size_t k = 0; k < 4; k++) {
        future_t *f = make_fx(kinds[k]);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            const void *data = NULL;
            ck_assert_int_eq(future_result(f, bad[i], &data, NULL), FUT_EINVAL);
            int64_t v;
            ck_assert_int_eq(future_result_i64(f, bad[i], &v), FUT_EINVAL);
            errno = 0;
            ck_assert_ptr_null(future_result_str(f, bad[i]));
            ck_assert_int_eq(errno, EINVAL);
            const future_error_t *e;
            ck_assert_int_eq(future_exception(f, bad[i], &e), FUT_EINVAL);
        }
        ck_assert(future_done(f) == (kinds[k] != FX_PENDING));
        future_unref(f);
    }
}
END_TEST

/* ------------------------------------------------------------ errors */

static void never_cb(future_t *f, void *ud)
{
    (void)f;
    (void)ud;
    ck_abort_msg("callback must not run");
}

/* NULL to every future_* function: FUT_EINVAL, NULL+EINVAL, false or no-op. */
START_TEST(test_future_null_arguments)
{
    ck_assert_ptr_null(future_ref(NULL));
    future_unref(NULL);
    ck_assert(!future_cancel(NULL));
    ck_assert(!future_cancelled(NULL));
    ck_assert(!future_running(NULL));
    ck_assert(!future_done(NULL));
    const void *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(future_result(NULL, 0, &data, &len), FUT_EINVAL);
    ck_assert_int_eq(future_result(NULL, FUT_FOREVER, NULL, NULL), FUT_EINVAL);
    int64_t v;
    ck_assert_int_eq(future_result_i64(NULL, 0, &v), FUT_EINVAL);
    errno = 0;
    ck_assert_ptr_null(future_result_str(NULL, FUT_FOREVER));
    ck_assert_int_eq(errno, EINVAL);
    const future_error_t *e;
    ck_assert_int_eq(future_exception(NULL, 0, &e), FUT_EINVAL);
    ck_assert_int_eq(future_add_done_callback(NULL, never_cb, NULL), FUT_EINVAL);
    ck_assert_int_eq(future_set_running_or_notify_cancel(NULL), FUT_EINVAL);
    ck_assert_int_eq(future_set_exception(NULL, 1, "x"), FUT_EINVAL);
    ck_assert(!future_error_is_broken(NULL));
    ck_assert_ptr_nonnull(future_strerror(FUT_EINVAL));

    /* Takes ownership on the FUT_EINVAL path too. */
    ck_assert_int_eq(future_set_result(NULL, new_i64(1), 8, count_free), FUT_EINVAL);
    ck_assert_int_eq(atomic_load(&n_freed), 1);
}
END_TEST

/* Bad arguments on a live future: FUT_EINVAL, and the future is unchanged. */
START_TEST(test_future_bad_arguments_leave_future_unchanged)
{
    future_t *f = future_new();
    ck_assert_int_eq(future_result_i64(f, 0, NULL), FUT_EINVAL);
    ck_assert_int_eq(future_exception(f, 0, NULL), FUT_EINVAL);
    ck_assert_int_eq(future_add_done_callback(f, NULL, NULL), FUT_EINVAL);
    /* NULL data with a length: EINVAL, nothing to free, still pending. */
    ck_assert_int_eq(future_set_result(f, NULL, 4, count_free), FUT_EINVAL);
    ck_assert_int_eq(atomic_load(&n_freed), 0);
    ck_assert(!future_done(f));
    ck_assert(!future_running(f));
    ck_assert_int_eq(future_set_running_or_notify_cancel(f), 1);
    ck_assert_int_eq(set_i64(f, 2), 0);
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 1);

    /* On a done future too. */
    f = make_fx(FX_SUCCESS);
    ck_assert_int_eq(future_result_i64(f, 0, NULL), FUT_EINVAL);
    ck_assert_int_eq(future_exception(f, 0, NULL), FUT_EINVAL);
    ck_assert_int_eq(future_add_done_callback(f, NULL, NULL), FUT_EINVAL);
    int64_t v;
    ck_assert_int_eq(future_result_i64(f, 0, &v), 0);
    ck_assert_int_eq(v, 42);
    future_unref(f);
}
END_TEST

/* ------------------------------------------------------------ limits */

/* Messages longer than any internal buffer are kept whole. */
START_TEST(test_future_long_exception_message)
{
    size_t n = 100000;
    char *msg = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        msg[i] = (char)('a' + i % 26);
    msg[n] = '\0';
    future_t *f = future_new();
    ck_assert_int_eq(future_set_exception(f, 9, "%s!", msg), 0);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(f, 0, &e), 0);
    ck_assert_uint_eq(strlen(e->message), n + 1);
    ck_assert(strncmp(e->message, msg, n) == 0);
    ck_assert_int_eq(e->message[n], '!');
    free(msg);
    future_unref(f);

    /* Just around a 256-byte boundary. */
    for (int len = 250; len < 262; len++) {
        f = future_new();
        ck_assert_int_eq(future_set_exception(f, 1, "%*s", len, "x"), 0);
        ck_assert_int_eq(future_exception(f, 0, &e), 0);
        ck_assert_uint_eq(strlen(e->message), (size_t)len);
        future_unref(f);
    }
}
END_TEST

/* Callbacks that record their order (test_future_many_callbacks_order). */
static int seq_next;
static bool seq_ok = true;

static void seq_cb(future_t *f, void *ud)
{
    (void)f;
    if (*(int *)ud != seq_next++)
        seq_ok = false;
}

/* Many references and a large result: freed once, at the last unref. */
START_TEST(test_future_many_refs_large_result)
{
    enum { N = 10000 };
    int ran = 0;
    future_t *f = future_new();
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_eq(future_ref(f), f);
        ck_assert_int_eq(future_add_done_callback(f, check_not_returned, &ran), 0);
    }
    size_t big = (size_t)1 << 20;
    char *data = malloc(big);
    memset(data, 0x5a, big);
    ck_assert_int_eq(future_set_result(f, data, big, count_free), 0);
    ck_assert_int_eq(ran, N);
    const void *got = NULL;
    size_t len = 0;
    ck_assert_int_eq(future_result(f, 0, &got, &len), 0);
    ck_assert_ptr_eq(got, data); /* the promise side keeps the pointer given */
    ck_assert_uint_eq(len, big);
    for (int i = 0; i < N; i++)
        future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 0);
    future_unref(f);
    ck_assert_int_eq(atomic_load(&n_freed), 1);
}
END_TEST

START_TEST(test_future_many_callbacks_order)
{
    enum { N = 10000 };
    int *ids = malloc(N * sizeof(*ids));
    future_t *f = future_new();
    seq_next = 0;
    seq_ok = true;
    for (int i = 0; i < N; i++) {
        ids[i] = i;
        ck_assert_int_eq(future_add_done_callback(f, seq_cb, &ids[i]), 0);
    }
    ck_assert(future_cancel(f));
    ck_assert_int_eq(seq_next, N);
    ck_assert(seq_ok);
    free(ids);
    future_unref(f);
}
END_TEST

/* ------------------------------------------------------------ concurrency */

struct waiter_arg {
    future_t *f;
    double timeout;
    gate_t started;
    pid_t tid;
    int rc;
    int64_t value;
    const future_error_t *err;
    double elapsed;
};

static void waiter_init(struct waiter_arg *w, future_t *f, double timeout)
{
    memset(w, 0, sizeof(*w));
    w->f = f;
    w->timeout = timeout;
    gate_init(&w->started);
}

static void *result_waiter(void *p)
{
    struct waiter_arg *w = p;
    w->tid = self_tid();
    gate_open(&w->started);
    double t0 = now_s();
    w->rc = future_result_i64(w->f, w->timeout, &w->value);
    w->elapsed = now_s() - t0;
    return NULL;
}

static void *exception_waiter(void *p)
{
    struct waiter_arg *w = p;
    w->tid = self_tid();
    gate_open(&w->started);
    double t0 = now_s();
    w->rc = future_exception(w->f, w->timeout, &w->err);
    w->elapsed = now_s() - t0;
    return NULL;
}

/* Starts @fn on a thread and returns once it is (very likely) blocked. */
static pthread_t start_blocked(void *(*fn)(void *), struct waiter_arg *w)
{
    pthread_t t = spawn(fn, w);
    ck_assert(gate_wait(&w->started, T_LONG));
    wait_tid_sleeping(w->tid, 5.0); /* a hint only */
    return t;
}

/* FUT-16: result(timeout) blocks until another thread sets the result. */
START_TEST(test_future_result_woken_by_set_result)
{
    int before = count_threads();
    double timeouts[] = {T_LONG, FUT_FOREVER};
    for (int i = 0; i < 2; i++) {
        future_t *f = future_new();
        struct waiter_arg w;
        waiter_init(&w, f, timeouts[i]);
        pthread_t t = start_blocked(result_waiter, &w);
        ck_assert(!future_done(f));
        ck_assert_int_eq(set_i64(f, 42), 0);
        pthread_join(t, NULL);
        ck_assert_int_eq(w.rc, 0);
        ck_assert_int_eq(w.value, 42);
        ck_assert(w.elapsed < 5.0 + 5.0); /* generous: woken, not timed out */
        gate_destroy(&w.started);
        future_unref(f);
    }
    ck_assert(wait_threads(before));
}
END_TEST

/* FUT-17: a thread blocked in result(30 s) wakes with FUT_ECANCELLED. */
START_TEST(test_future_result_woken_by_cancel)
{
    int before = count_threads();
    future_t *f = future_new();
    struct waiter_arg w;
    waiter_init(&w, f, T_LONG);
    pthread_t t = start_blocked(result_waiter, &w);
    ck_assert(future_cancel(f));
    pthread_join(t, NULL);
    ck_assert_int_eq(w.rc, FUT_ECANCELLED);
    ck_assert(w.elapsed < T_LONG);
    gate_destroy(&w.started);
    future_unref(f);
    ck_assert(wait_threads(before));
}
END_TEST

/* FUT-19: a thread blocked in exception(30 s) wakes with the error. */
START_TEST(test_future_exception_woken_by_failure)
{
    int before = count_threads();
    future_t *f = future_new();
    struct waiter_arg w;
    waiter_init(&w, f, T_LONG);
    pthread_t t = start_blocked(exception_waiter, &w);
    ck_assert_int_eq(future_set_exception(f, 33, "late %s", "error"), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(w.rc, 0);
    ck_assert_ptr_nonnull(w.err);
    ck_assert_int_eq(w.err->code, 33);
    ck_assert_str_eq(w.err->message, "late error");
    ck_assert(w.elapsed < T_LONG);
    gate_destroy(&w.started);
    future_unref(f);
    ck_assert(wait_threads(before));
}
END_TEST

/* A huge finite timeout does not overflow the deadline: the wait still
 * blocks, and is woken. */
START_TEST(test_future_result_huge_timeout_woken)
{
    int before = count_threads();
    future_t *f = future_new();
    struct waiter_arg w;
    waiter_init(&w, f, 1e300);
    pthread_t t = start_blocked(result_waiter, &w);
    ck_assert(!future_done(f));
    ck_assert_int_eq(set_i64(f, 5), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(w.rc, 0);
    ck_assert_int_eq(w.value, 5);
    gate_destroy(&w.started);
    future_unref(f);
    ck_assert(wait_threads(before));
}
END_TEST

/* Many threads blocked on one future are all woken. */
START_TEST(test_future_many_waiters_all_woken)
{
    enum { N = 16 };
    int before = count_threads();
    future_t *f = future_new();
    struct waiter_arg w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        waiter_init(&w[i], f, i % 2 ? FUT_FOREVER : T_LONG);
        t[i] = spawn(i % 3 ? result_waiter : exception_waiter, &w[i]);
    }
    for (int i = 0; i < N; i++) {
        ck_assert(gate_wait(&w[i].started, T_LONG));
        wait_tid_sleeping(w[i].tid, 5.0);
    }
    ck_assert_int_eq(set_i64(f, 6), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(w[i].rc, 0);
        if (i % 3)
            ck_assert_int_eq(w[i].value, 6);
        else
            ck_assert_ptr_null(w[i].err);
        gate_destroy(&w[i].started);
    }
    future_unref(f);
    ck_assert(wait_threads(before));
}
END_TEST

/* A callback added to a pending future runs in the thread that completes it. */
struct completer {
    future_t *f;
    gate_t go;
    pthread_t self;
};

static void *complete_on_gate(void *p)
{
    struct completer *c = p;
    c->self = pthread_self();
    gate_wait(&c->go, T_LONG);
    set_i64(c->f, 1);
    return NULL;
}

START_TEST(test_future_callback_runs_in_completing_thread)
{
    int before = count_threads();
    struct calls c = {0};
    struct cb_arg a = {&c, 1};
    struct completer k = {.f = future_new()};
    gate_init(&k.go);
    ck_assert_int_eq(future_add_done_callback(k.f, record, &a), 0);
    pthread_t t = spawn(complete_on_gate, &k);
    gate_open(&k.go);
    pthread_join(t, NULL);
    ck_assert_int_eq(atomic_load(&c.n), 1);
    ck_assert(pthread_equal(c.thread[0], t));
    ck_assert(!pthread_equal(c.thread[0], pthread_self()));
    gate_destroy(&k.go);
    future_unref(k.f);
    ck_assert(wait_threads(before));
}
END_TEST

/*
 * Completion wakes the waiters first, then runs the callbacks, unlocked:
 * while a callback is blocked, a waiter in another thread has its result,
 * and other threads can still add callbacks (they run at once) and wait.
 */
struct slow_cb {
    gate_t entered, release;
    atomic_bool finished;
};

static void blocking_cb(future_t *f, void *ud)
{
    (void)f;
    struct slow_cb *c = ud;
    gate_open(&c->entered);
    gate_wait(&c->release, T_LONG);
    atomic_store(&c->finished, true);
}

static void *set_result_thread(void *p)
{
    set_i64((future_t *)p, 21);
    return NULL;
}

START_TEST(test_future_waiters_woken_before_callbacks)
{
    int before = count_threads();
    struct slow_cb c;
    gate_init(&c.entered);
    gate_init(&c.release);
    atomic_init(&c.finished, false);
    future_t *f = future_new();
    ck_assert_int_eq(future_add_done_callback(f, blocking_cb, &c), 0);
    struct waiter_arg w;
    waiter_init(&w, f, T_LONG);
    pthread_t tw = start_blocked(result_waiter, &w);
    pthread_t tc = spawn(set_result_thread, f);
    pthread_join(tw, NULL); /* woken although the callback still blocks */
    ck_assert_int_eq(w.rc, 0);
    ck_assert_int_eq(w.value, 21);
    ck_assert(gate_wait(&c.entered, T_LONG));
    ck_assert(!atomic_load(&c.finished));
    /* No lock is held while the callback runs. */
    int ran = 0;
    ck_assert_int_eq(future_add_done_callback(f, check_not_returned, &ran), 0);
    ck_assert_int_eq(ran, 1);
    future_t *fs[1] = {f};
    size_t nd = 0;
    future_t *done[1];
    ck_assert_int_eq(
        futures_wait(fs, 1, T_LONG, FUTURES_ALL_COMPLETED, done, &nd, NULL, NULL), 0);
    ck_assert_uint_eq(nd, 1);
    ck_assert(!atomic_load(&c.finished));
    gate_open(&c.release);
    pthread_join(tc, NULL);
    ck_assert(atomic_load(&c.finished));
    gate_destroy(&c.entered);
    gate_destroy(&c.release);
    gate_destroy(&w.started);
    future_unref(f);
    ck_assert(wait_threads(before));
}
END_TEST

/* FUT-22 [analog]: 4 threads take 1000 snapshots of each finished fixture;
 * every snapshot is identical (and TSan-clean). */
struct snap {
    bool done, cancelled, running;
    int rc;
    const void *data;
    size_t len;
    int exc_rc;
    const future_error_t *err;
};

static struct snap take_snap(future_t *f)
{
    struct snap s = {0};
    s.done = future_done(f);
    s.cancelled = future_cancelled(f);
    s.running = future_running(f);
    s.rc = future_result(f, 0, &s.data, &s.len);
    s.exc_rc = future_exception(f, 0, &s.err);
    if (s.exc_rc != 0)
        s.err = NULL;
    if (s.rc != 0) {
        s.data = NULL;
        s.len = 0;
    }
    return s;
}

static bool snap_eq(const struct snap *a, const struct snap *b)
{
    return a->done == b->done && a->cancelled == b->cancelled &&
           a->running == b->running && a->rc == b->rc && a->data == b->data &&
           a->len == b->len && a->exc_rc == b->exc_rc && a->err == b->err;
}

struct snapper {
    future_t **fs;
    struct snap *want;
    gate_t *go;
    int bad;
};

static void *snapshot_loop(void *p)
{
    struct snapper *s = p;
    gate_wait(s->go, T_LONG);
    for (int i = 0; i < 1000; i++)
        for (int k = 0; k < FX_COUNT; k++) {
            struct snap now = take_snap(s->fs[k]);
            if (!snap_eq(&now, &s->want[k]))
                s->bad++;
        }
    return NULL;
}

START_TEST(test_future_concurrent_snapshots)
{
    int before = count_threads();
    future_t *fs[FX_COUNT];
    struct snap want[FX_COUNT];
    for (int k = 0; k < FX_COUNT; k++) {
        fs[k] = make_fx((enum fx)k);
        want[k] = take_snap(fs[k]);
    }
    /* The table of test_get_snapshot. */
    ck_assert(!want[FX_PENDING].done && !want[FX_PENDING].cancelled);
    ck_assert(want[FX_SUCCESS].done && want[FX_SUCCESS].rc == 0 && !want[FX_SUCCESS].err);
    ck_assert(want[FX_EXCEPTION].done && want[FX_EXCEPTION].rc == FUT_ETASK &&
              want[FX_EXCEPTION].err);
    ck_assert(want[FX_CANCELLED].done && want[FX_CANCELLED].cancelled);
    gate_t go;
    gate_init(&go);
    struct snapper s[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (struct snapper){fs, want, &go, 0};
        t[i] = spawn(snapshot_loop, &s[i]);
    }
    gate_open(&go);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(s[i].bad, 0);
    }
    gate_destroy(&go);
    for (int k = 0; k < FX_COUNT; k++)
        future_unref(fs[k]);
    ck_assert(wait_threads(before));
}
END_TEST

/* Readers racing the completion: once a reader sees done, the outcome is
 * there and final (the state is published after the outcome). */
struct racer {
    future_t *f;
    gate_t *go;
    int bad;
};

static void *read_until_done(void *p)
{
    struct racer *r = p;
    gate_wait(r->go, T_LONG);
    double end = now_s() + T_LONG;
    while (!future_done(r->f) && now_s() < end)
        ;
    int64_t v = 0;
    if (future_result_i64(r->f, 0, &v) != 0 || v != 42)
        r->bad++;
    return NULL;
}

START_TEST(test_future_readers_race_completion)
{
    int before = count_threads();
    for (int round = 0; round < 50; round++) {
        future_t *f = future_new();
        gate_t go;
        gate_init(&go);
        struct racer r[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            r[i] = (struct racer){f, &go, 0};
            t[i] = spawn(read_until_done, &r[i]);
        }
        gate_open(&go);
        ck_assert_int_eq(set_i64(f, 42), 0);
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            ck_assert_int_eq(r[i].bad, 0);
        }
        gate_destroy(&go);
        future_unref(f);
    }
    ck_assert(wait_threads(before));
}
END_TEST

/* cancel racing set_running_or_notify_cancel: exactly one wins, and the
 * callbacks run exactly once whoever wins. */
struct duel {
    future_t *f;
    gate_t *go;
    int rc;
    bool cancelled;
};

static void *duel_start(void *p)
{
    struct duel *d = p;
    gate_wait(d->go, T_LONG);
    d->rc = future_set_running_or_notify_cancel(d->f);
    if (d->rc == 1)
        set_i64(d->f, 1);
    return NULL;
}

static void *duel_cancel(void *p)
{
    struct duel *d = p;
    gate_wait(d->go, T_LONG);
    d->cancelled = future_cancel(d->f);
    return NULL;
}

START_TEST(test_future_cancel_races_set_running)
{
    int before = count_threads();
    int wins[2] = {0, 0};
    for (int round = 0; round < 300; round++) {
        int ran = 0;
        future_t *f = future_new();
        ck_assert_int_eq(future_add_done_callback(f, check_not_returned, &ran), 0);
        gate_t go;
        gate_init(&go);
        struct duel d = {f, &go, 0, false};
        pthread_t a = spawn(duel_start, &d), b = spawn(duel_cancel, &d);
        gate_open(&go);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        ck_assert_msg((d.rc == 1) != d.cancelled, "rc %d cancelled %d", d.rc,
                      d.cancelled);
        ck_assert(d.rc == 1 || d.rc == 0);
        ck_assert(future_done(f));
        ck_assert_int_eq(ran, 1);
        ck_assert(future_cancelled(f) == d.cancelled);
        wins[d.cancelled]++;
        gate_destroy(&go);
        future_unref(f);
    }
    ck_assert_int_eq(wins[0] + wins[1], 300);
    ck_assert_int_eq(atomic_load(&n_freed), wins[0]);
    ck_assert(wait_threads(before));
}
END_TEST

/* Four threads set_result at once: exactly one wins, every losing result is
 * freed before its call returns, the winner's at the last unref. */
struct setter {
    future_t *f;
    gate_t *go;
    int id, rc;
};

static void *set_on_gate(void *p)
{
    struct setter *s = p;
    gate_wait(s->go, T_LONG);
    s->rc = set_i64(s->f, s->id);
    return NULL;
}

START_TEST(test_future_set_result_race)
{
    int before = count_threads();
    for (int round = 0; round < 100; round++) {
        atomic_store(&n_freed, 0);
        future_t *f = future_new();
        gate_t go;
        gate_init(&go);
        struct setter s[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            s[i] = (struct setter){f, &go, i, 99};
            t[i] = spawn(set_on_gate, &s[i]);
        }
        gate_open(&go);
        int winner = -1, n_ok = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            if (s[i].rc == 0) {
                n_ok++;
                winner = i;
            } else {
                ck_assert_int_eq(s[i].rc, FUT_ESTATE);
            }
        }
        ck_assert_int_eq(n_ok, 1);
        ck_assert_int_eq(atomic_load(&n_freed), 3);
        int64_t v;
        ck_assert_int_eq(future_result_i64(f, 0, &v), 0);
        ck_assert_int_eq(v, winner);
        gate_destroy(&go);
        future_unref(f);
        ck_assert_int_eq(atomic_load(&n_freed), 4);
    }
    ck_assert(wait_threads(before));
}
END_TEST

/* add_done_callback racing completion: the callback runs exactly once, either
 * in the completer or in the adder. */
struct add_race {
    future_t *f;
    gate_t *go;
    atomic_int ran;
};

static void count_cb(future_t *f, void *ud)
{
    (void)f;
    atomic_fetch_add(&((struct add_race *)ud)->ran, 1);
}

static void *add_on_gate(void *p)
{
    struct add_race *r = p;
    gate_wait(r->go, T_LONG);
    future_add_done_callback(r->f, count_cb, r);
    return NULL;
}

START_TEST(test_future_add_callback_races_completion)
{
    int before = count_threads();
    for (int round = 0; round < 300; round++) {
        gate_t go;
        gate_init(&go);
        struct add_race r = {future_new(), &go, 0};
        pthread_t t = spawn(add_on_gate, &r);
        gate_open(&go);
        if (round % 2)
            ck_assert(future_cancel(r.f));
        else
            ck_assert_int_eq(set_i64(r.f, 1), 0);
        pthread_join(t, NULL);
        ck_assert_int_eq(atomic_load(&r.ran), 1);
        gate_destroy(&go);
        future_unref(r.f);
    }
    ck_assert(wait_threads(before));
}
END_TEST

/*
 * Cancel of a running future returns false but records the request:
 * task_should_stop() turns true inside the task (DESIGN "Semantics pinned
 * down"). t_until_stop returns 7 once it sees the request.
 */
static void t_signal_then_until_stop(task_t *t)
{
    gate_t *started = (gate_t *)task_arg(t, NULL);
    gate_open(started);
    t_until_stop(t);
}

START_TEST(test_future_cancel_running_sets_stop_request)
{
    int before = count_threads();
    executor_t *ex = thread_pool_executor_new(&(executor_options_t){.max_workers = 1});
    ck_assert_ptr_nonnull(ex);
    gate_t started;
    gate_init(&started);
    future_t *f =
        executor_submit(ex, t_signal_then_until_stop, &started, sizeof(started));
    ck_assert_ptr_nonnull(f);
    ck_assert(gate_wait(&started, T_LONG));
    ck_assert(future_running(f));
    ck_assert(!future_cancel(f)); /* Python: a running future cannot be cancelled */
    ck_assert(!future_cancelled(f));
    int64_t v = 0;
    ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
    ck_assert_int_eq(v, 7); /* the task saw task_should_stop() */
    ck_assert(!future_cancelled(f));
    ck_assert(!future_cancel(f)); /* finished now */
    future_unref(f);
    executor_free(ex);
    gate_destroy(&started);
    ck_assert(wait_threads(before));
}
END_TEST

/* ------------------------------------------------------------ suite */

Suite *make_suite(void)
{
    Suite *s = suite_create("future");

    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, reset_counters, NULL);
    tcase_add_test(tc, test_future_callback_with_result);
    tcase_add_test(tc, test_future_callback_with_exception);
    tcase_add_test(tc, test_future_callback_with_cancel);
    tcase_add_test(tc, test_future_callback_odd_does_not_disturb_others);
    tcase_add_test(tc, test_future_callback_already_successful);
    tcase_add_test(tc, test_future_callback_already_failed);
    tcase_add_test(tc, test_future_callback_already_cancelled);
    tcase_add_test(tc, test_future_add_callback_done_returns_0_after_running);
    tcase_add_test(tc, test_future_strerror_names_every_code);
    tcase_add_test(tc, test_future_codes_values);
    tcase_add_test(tc, test_future_cancel_by_state);
    tcase_add_test(tc, test_future_cancelled_by_state);
    tcase_add_test(tc, test_future_done_by_state);
    tcase_add_test(tc, test_future_running_by_state);
    tcase_add_test(tc, test_future_result_poll_by_state);
    tcase_add_test(tc, test_future_exception_poll_by_state);
    tcase_add_test(tc, test_future_exception_fields);
    tcase_add_test(tc, test_future_set_exception_zero_code_still_fails);
    tcase_add_test(tc, test_future_set_result_twice);
    tcase_add_test(tc, test_future_set_exception_twice);
    tcase_add_test(tc, test_future_set_on_done_is_estate);
    tcase_add_test(tc, test_future_set_running_by_state);
    tcase_add_test(tc, test_future_notify_cancel_tells_no_one_twice);
    tcase_add_test(tc, test_future_running_then_complete);
    tcase_add_test(tc, test_future_unref_frees_result_at_last_ref);
    tcase_add_test(tc, test_future_set_result_static_data);
    tcase_add_test(tc, test_future_set_result_empty);
    tcase_add_test(tc, test_future_unref_pending_drops_callbacks);
    tcase_add_test(tc, test_future_callbacks_in_order_once);
    tcase_add_test(tc, test_future_callback_added_twice_runs_twice);
    tcase_add_test(tc, test_future_callback_unrefs_done_future);
    tcase_add_test(tc, test_future_callback_unrefs_completing_future);
    tcase_add_test(tc, test_future_callback_adds_callback);
    tcase_add_test(tc, test_future_callback_chain);
    tcase_add_test(tc, test_future_result_i64_wrong_size);
    tcase_add_test(tc, test_future_user_data);
    tcase_add_test(tc, test_future_result_double);
    tcase_add_test(tc, test_future_result_str);
    tcase_add_test(tc, test_future_error_is_broken);
    tcase_add_test(tc, test_future_result_short_timeout);
    tcase_add_test(tc, test_future_timeouts_on_done_future);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, reset_counters, NULL);
    tcase_add_test(tc, test_future_null_arguments);
    tcase_add_test(tc, test_future_bad_arguments_leave_future_unchanged);
    tcase_add_test(tc, test_future_bad_timeouts);
    tcase_add_test(tc, test_future_set_exception_unrenderable_format);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_checked_fixture(tc, reset_counters, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_future_long_exception_message);
    tcase_add_test(tc, test_future_many_refs_large_result);
    tcase_add_test(tc, test_future_many_callbacks_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_add_checked_fixture(tc, reset_counters, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_future_result_woken_by_set_result);
    tcase_add_test(tc, test_future_result_woken_by_cancel);
    tcase_add_test(tc, test_future_exception_woken_by_failure);
    tcase_add_test(tc, test_future_result_huge_timeout_woken);
    tcase_add_test(tc, test_future_many_waiters_all_woken);
    tcase_add_test(tc, test_future_callback_runs_in_completing_thread);
    tcase_add_test(tc, test_future_waiters_woken_before_callbacks);
    tcase_add_test(tc, test_future_concurrent_snapshots);
    tcase_add_test(tc, test_future_readers_race_completion);
    tcase_add_test(tc, test_future_cancel_races_set_running);
    tcase_add_test(tc, test_future_set_result_race);
    tcase_add_test(tc, test_future_add_callback_races_completion);
    tcase_add_test(tc, test_future_task_raise_zero_still_fails);
    tcase_add_test(tc, test_future_cancel_running_sets_stop_request);
    suite_add_tcase(s, tc);
    return s;
}
