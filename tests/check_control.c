/*
 * check_control: controlling work beyond Python (DESIGN.md "Controlling
 * work"): delayed tasks and schedules, task groups, forceful stop,
 * priorities and resizing, over every executor kind (the
 * `kinds` table, as check_executor.c). Tasks report through a record in
 * MAP_SHARED memory mapped before the executor exists, so a forked worker
 * writes where the test reads; times are CLOCK_MONOTONIC, the same clock in
 * every process.
 */
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------- shared record */

#define MAX_RUNS 256
#define N_GATES 8

struct shared {
    _Atomic int runs;    /* runs started */
    _Atomic int inrun;   /* runs in progress */
    _Atomic int overlap; /* set if two runs ever overlapped */
    _Atomic int gates[N_GATES];
    _Atomic int started[N_GATES]; /* a gated run is waiting on that gate */
    _Atomic int norder;           /* x_label runs so far */
    _Atomic int inits;            /* x_init_dies_later runs */
    int order[MAX_RUNS];          /* their labels, in start order */
    _Atomic int conc, conc_max;   /* x_label runs in progress, and the most */
    int64_t start[MAX_RUNS], end[MAX_RUNS];
};
static struct shared *sh;

static void shared_reset(void)
{
    if (!sh) {
        void *p = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        ck_assert(p != MAP_FAILED);
        sh = p;
    }
    memset(sh, 0, sizeof(*sh));
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* What a stamped run does: sleep_ms, or wait for gate (-1: none); fail if raise. */
struct stamp_arg {
    int32_t sleep_ms;
    int32_t gate;
    int32_t raise_at; /* raise on this run index (-1: never) */
    int32_t pad;
};

/* Records its start and end, flags overlap, returns its run index. */
static void x_stamp(task_t *t)
{
    const struct stamp_arg *a = task_arg(t, NULL);
    int i = atomic_fetch_add(&sh->runs, 1);
    if (i < MAX_RUNS)
        sh->start[i] = mono_ns();
    if (atomic_fetch_add(&sh->inrun, 1) != 0)
        atomic_store(&sh->overlap, 1);
    if (a->sleep_ms > 0)
        usleep((useconds_t)a->sleep_ms * 1000);
    if (a->gate >= 0) {
        atomic_store(&sh->started[a->gate], 1);
        double end = now_s() + T_LONG;
        while (!atomic_load(&sh->gates[a->gate]) && !task_should_stop(t) && now_s() < end)
            usleep(200);
    }
    if (i < MAX_RUNS)
        sh->end[i] = mono_ns();
    atomic_fetch_sub(&sh->inrun, 1);
    if (i == a->raise_at)
        task_raise(t, 42, "run %d failed", i);
    else
        task_return_i64(t, i);
}

static const struct stamp_arg plain = {0, -1, -1, 0};

static bool gate_started(void *arg)
{
    return atomic_load(&sh->started[*(int *)arg]) != 0;
}

/* ---------------------------------------------------------- delay */

START_TEST(test_delay_never_early)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    enum { N = 10 };
    future_t *fs[N];
    int64_t due[N];
    for (int i = 0; i < N; i++) {
        double d = 0.01 + 0.005 * i;
        due[i] = mono_ns() + (int64_t)(d * 1e9);
        fs[i] = executor_submit_with(ex, x_stamp, &plain, sizeof(plain),
                                     &(submit_options_t){.delay = d});
        ck_assert_ptr_nonnull(fs[i]);
    }
    for (int i = 0; i < N; i++) {
        int64_t idx = -1;
        ck_assert_int_eq(future_result_i64(fs[i], T_LONG, &idx), 0);
        ck_assert(idx >= 0 && idx < N);
        ck_assert_msg(sh->start[idx] >= due[i], "%s: task %d started %lld ns early",
                      ex_kinds[_i].name, i, (long long)(due[i] - sh->start[idx]));
        future_unref(fs[i]);
    }
    executor_free(ex);
    ck_assert(no_children());
}
END_TEST

START_TEST(test_delay_cancel_before_due)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    future_t *f = executor_submit_with(ex, x_stamp, &plain, sizeof(plain),
                                       &(submit_options_t){.delay = 3600});
    ck_assert_ptr_nonnull(f);
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.queued, 0); /* not queued until due */
    ck_assert(!future_done(f));
    ck_assert(future_cancel(f));
    ck_assert(future_cancelled(f));
    future_unref(f);
    /* Bad delays. */
    errno = 0;
    ck_assert_ptr_null(executor_submit_with(ex, x_stamp, &plain, sizeof(plain),
                                            &(submit_options_t){.delay = -1}));
    ck_assert_int_eq(errno, EINVAL);
    executor_free(ex);
    ck_assert_int_eq(atomic_load(&sh->runs), 0);
    ck_assert(no_children());
}
END_TEST

START_TEST(test_delay_shutdown_cancels)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    future_t *f = executor_submit_with(ex, x_stamp, &plain, sizeof(plain),
                                       &(submit_options_t){.delay = 3600});
    future_t *g = executor_submit_with(ex, x_stamp, &plain, sizeof(plain),
                                       &(submit_options_t){.delay = 0});
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    ck_assert(future_cancelled(f)); /* not yet due: cancelled */
    int64_t v = -1;
    ck_assert_int_eq(future_result_i64(g, 0, &v), 0); /* no delay: ran */
    errno = 0;
    ck_assert_ptr_null(executor_submit_with(ex, x_stamp, &plain, sizeof(plain),
                                            &(submit_options_t){.delay = 1}));
    ck_assert_int_eq(errno, ESHUTDOWN);
    future_unref(f);
    future_unref(g);
    executor_free(ex);
    ck_assert_int_eq(atomic_load(&sh->runs), 1);
}
END_TEST

START_TEST(test_delay_joins_queue)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    completion_queue_t *q = completion_queue_new();
    ck_assert_ptr_nonnull(q);
    future_t *f = executor_submit_with(ex, x_stamp, &plain, sizeof(plain),
                                       &(submit_options_t){.delay = 0.01, .queue = q});
    ck_assert_ptr_nonnull(f);
    future_t *got = NULL;
    ck_assert_int_eq(completion_queue_next(q, T_LONG, &got), 0);
    ck_assert_ptr_eq(got, f);
    future_unref(got);
    future_unref(f);
    completion_queue_free(q);
    executor_free(ex);
}
END_TEST

/* ---------------------------------------------------------- schedule */

START_TEST(test_schedule_fixed_rate)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    const double period = 0.01;
    int64_t t0 = mono_ns();
    future_t *f = executor_schedule(ex, x_stamp, &plain, sizeof(plain),
                                    &(schedule_options_t){.period = period, .max_runs = 100});
    ck_assert_ptr_nonnull(f);
    int64_t last = -1;
    ck_assert_int_eq(future_result_i64(f, T_LONG, &last), 0);
    ck_assert_int_eq(last, 99); /* the last run's outcome */
    ck_assert_int_eq(atomic_load(&sh->runs), 100);
    ck_assert_int_eq(atomic_load(&sh->overlap), 0);
    for (int k = 0; k < 100; k++) {
        ck_assert_msg(sh->start[k] >= t0 + (int64_t)(k * period * 1e9),
                      "%s: run %d started before its time", ex_kinds[_i].name, k);
        if (k > 0)
            ck_assert(sh->start[k] >= sh->end[k - 1]); /* no overlap */
    }
    future_unref(f);
    executor_free(ex);
    ck_assert_int_eq(atomic_load(&sh->runs), 100); /* none after the end */
    ck_assert(no_children());
}
END_TEST

START_TEST(test_schedule_fixed_delay)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    struct stamp_arg slow = {10, -1, -1, 0};
    future_t *f = executor_schedule(
        ex, x_stamp, &slow, sizeof(slow),
        &(schedule_options_t){.delay = 0.005, .period = 0.005, .fixed_delay = true,
                              .max_runs = 10});
    ck_assert_ptr_nonnull(f);
    int64_t last = -1;
    ck_assert_int_eq(future_result_i64(f, T_LONG, &last), 0);
    ck_assert_int_eq(last, 9);
    for (int k = 1; k < 10; k++)
        ck_assert_msg(sh->start[k] >= sh->end[k - 1] + 5000000,
                      "%s: run %d started %lld ns after the previous end", ex_kinds[_i].name,
                      k, (long long)(sh->start[k] - sh->end[k - 1]));
    future_unref(f);
    executor_free(ex);
}
END_TEST

START_TEST(test_schedule_overrun_skips)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    struct stamp_arg slow = {25, -1, -1, 0}; /* 2.5 periods */
    int64_t t0 = mono_ns();
    future_t *f = executor_schedule(ex, x_stamp, &slow, sizeof(slow),
                                    &(schedule_options_t){.period = 0.01, .max_runs = 4});
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(future_result_i64(f, T_LONG, &(int64_t){0}), 0);
    ck_assert_int_eq(atomic_load(&sh->overlap), 0);
    for (int k = 1; k < 4; k++) {
        /* Each run waits for the previous and starts on the 10 ms grid. */
        ck_assert(sh->start[k] >= sh->end[k - 1]);
        ck_assert(sh->start[k] >= t0 + 30000000LL * k);
    }
    future_unref(f);
    executor_free(ex);
}
END_TEST

/*
 * One worker: a marker task submitted after a run ended is done only after
 * that run's done-callback ran (thread pool: the worker ran it first; process
 * pool: the manager completes answers in order), so the schedule is between
 * runs for sure.
 */
static void between_runs(executor_t *ex)
{
    future_t *m = executor_submit(ex, t_nothing, NULL, 0);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(future_result(m, T_LONG, NULL, NULL), 0);
    future_unref(m);
}

START_TEST(test_schedule_cancel_between_runs)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    future_t *f = executor_schedule(ex, x_stamp, &plain, sizeof(plain),
                                    &(schedule_options_t){.period = 3600});
    ck_assert_ptr_nonnull(f);
    double end = now_s() + T_LONG;
    while (atomic_load(&sh->runs) < 1 && now_s() < end)
        usleep(200);
    ck_assert_int_eq(atomic_load(&sh->runs), 1);
    between_runs(ex);
    ck_assert(future_cancel(f));
    ck_assert(future_cancelled(f));
    future_unref(f);
    executor_free(ex);
    ck_assert_int_eq(atomic_load(&sh->runs), 1);
}
END_TEST

START_TEST(test_schedule_cancel_during_run)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    struct stamp_arg gated = {0, 0, -1, 0};
    future_t *f = executor_schedule(ex, x_stamp, &gated, sizeof(gated),
                                    &(schedule_options_t){.period = 0.001});
    ck_assert_ptr_nonnull(f);
    int g = 0;
    ck_assert(eventually(gate_started, &g, T_LONG));
    ck_assert(!future_cancel(f)); /* a run is in progress */
    ck_assert(!future_done(f));
    atomic_store(&sh->gates[0], 1);
    int64_t v = -1;
    ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0); /* that run's outcome */
    ck_assert_int_eq(v, 0);
    executor_free(ex);
    ck_assert_int_eq(atomic_load(&sh->runs), 1); /* no further run */
    future_unref(f);
}
END_TEST

START_TEST(test_schedule_errors)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    /* A failed run without stop_on_error goes on; with it, ends the schedule. */
    struct stamp_arg r1 = {0, -1, 1, 0};
    future_t *f = executor_schedule(ex, x_stamp, &r1, sizeof(r1),
                                    &(schedule_options_t){.period = 0.001, .max_runs = 3});
    int64_t v = -1;
    ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
    ck_assert_int_eq(v, 2);
    future_unref(f);
    atomic_store(&sh->runs, 0);
    f = executor_schedule(ex, x_stamp, &r1, sizeof(r1),
                          &(schedule_options_t){.period = 0.001, .stop_on_error = true});
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(f, T_LONG, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, FUT_ETASK);
    ck_assert_int_eq(e->code, 42);
    ck_assert_str_eq(e->message, "run 1 failed");
    future_unref(f);
    /* Period 0: one run after the delay. */
    f = executor_schedule(ex, x_stamp, &plain, sizeof(plain),
                          &(schedule_options_t){.delay = 0.001});
    ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
    future_unref(f);
    /* Arguments. */
    schedule_options_t ok = {.period = 1};
    ck_assert_ptr_null(executor_schedule(NULL, x_stamp, NULL, 0, &ok));
    ck_assert_ptr_null(executor_schedule(ex, NULL, NULL, 0, &ok));
    ck_assert_ptr_null(executor_schedule(ex, x_stamp, NULL, 0, NULL));
    ck_assert_ptr_null(
        executor_schedule(ex, x_stamp, NULL, 0, &(schedule_options_t){.period = -1}));
    ck_assert_ptr_null(
        executor_schedule(ex, x_stamp, NULL, 0, &(schedule_options_t){.delay = 1.0 / 0.0}));
    errno = 0;
    ck_assert_ptr_null(
        executor_schedule(ex, x_stamp, NULL, 0, &(schedule_options_t){.max_runs = 2}));
    ck_assert_int_eq(errno, EINVAL);
    executor_free(ex);
}
END_TEST

START_TEST(test_schedule_shutdown_ends_it)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    future_t *f = executor_schedule(ex, x_stamp, &plain, sizeof(plain),
                                    &(schedule_options_t){.delay = 3600, .period = 1});
    future_t *g = executor_schedule(ex, x_stamp, &plain, sizeof(plain),
                                    &(schedule_options_t){.period = 3600});
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(g);
    executor_free(ex); /* never waits an hour */
    ck_assert(future_cancelled(f));
    ck_assert(future_done(g)); /* cancelled, or the outcome of its run */
    errno = 0;
    future_unref(f);
    future_unref(g);
    ck_assert(no_children());
}
END_TEST

/*
 * Its executor freed from a done-callback of a refused timed future (on the
 * timer thread, unless the future was done when the callback was added): the
 * gated run is let go first, so the free's wait ends either way.
 */
static _Atomic int freed_on_done;

static void free_on_done(future_t *f, void *ud)
{
    (void)f;
    atomic_store(&sh->gates[0], 1);
    executor_free(ud);
    atomic_store(&freed_on_done, 1);
}

static bool freed(void *arg)
{
    (void)arg;
    return atomic_load(&freed_on_done) != 0;
}

START_TEST(test_timed_refused_when_full)
{
    shared_reset();
    atomic_store(&freed_on_done, 0);
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1, .max_queue = 1});
    struct stamp_arg gated = {0, 0, -1, 0};
    future_t *run = executor_submit(ex, x_stamp, &gated, sizeof(gated));
    ck_assert_ptr_nonnull(run);
    int g = 0;
    ck_assert(eventually(gate_started, &g, T_LONG));
    future_t *queued = executor_submit(ex, x_stamp, &plain, sizeof(plain));
    ck_assert_ptr_nonnull(queued); /* the queue is full now */
    /* Due, they are refused (the timer never blocks): FUT_EFULL. */
    future_t *d = executor_submit_with(ex, x_stamp, &plain, sizeof(plain),
                                       &(submit_options_t){.delay = 0.001});
    future_t *s = executor_schedule(ex, x_stamp, &plain, sizeof(plain),
                                    &(schedule_options_t){.delay = 0.05, .period = 0.001});
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(future_add_done_callback(s, free_on_done, ex), 0);
    ck_assert_int_eq(future_result(d, T_LONG, NULL, NULL), FUT_EFULL);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(s, T_LONG, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, FUT_EFULL);
    /* The callback's executor_free ran the queued tasks to their end. */
    ck_assert(eventually(freed, NULL, T_LONG));
    ck_assert_int_eq(future_result(run, T_LONG, NULL, NULL), 0);
    ck_assert_int_eq(future_result(queued, T_LONG, NULL, NULL), 0);
    ck_assert_int_eq(atomic_load(&sh->runs), 2);
    future_unref(run);
    future_unref(queued);
    future_unref(d);
    future_unref(s);
    ck_assert(no_children());
}
END_TEST

/* ---------------------------------------------------------- task groups */

static bool runs_at_least(void *arg)
{
    return atomic_load(&sh->runs) >= *(int *)arg;
}

START_TEST(test_group_wait_all)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    task_group_t *g = task_group_new(ex, NULL);
    ck_assert_ptr_nonnull(g);
    future_t *fs[10];
    for (int i = 0; i < 10; i++) {
        fs[i] = task_group_submit(g, x_stamp, &plain, sizeof(plain), NULL);
        ck_assert_ptr_nonnull(fs[i]);
    }
    const future_error_t *e = (const future_error_t *)1;
    ck_assert_int_eq(task_group_wait(g, T_LONG, &e), 0);
    ck_assert_ptr_null(e); /* none failed */
    for (int i = 0; i < 10; i++) {
        ck_assert(future_done(fs[i]) && !future_cancelled(fs[i]));
        future_unref(fs[i]);
    }
    ck_assert_int_eq(atomic_load(&sh->runs), 10);
    task_group_free(g);
    executor_free(ex);
    ck_assert(no_children());
}
END_TEST

START_TEST(test_group_cancel_queued_running_finished)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    task_group_t *g = task_group_new(ex, NULL);
    future_t *done = task_group_submit(g, x_stamp, &plain, sizeof(plain), NULL);
    ck_assert_int_eq(future_result(done, T_LONG, NULL, NULL), 0);
    struct stamp_arg gated = {0, 0, -1, 0};
    future_t *run = task_group_submit(g, x_stamp, &gated, sizeof(gated), NULL);
    int gi = 0;
    ck_assert(eventually(gate_started, &gi, T_LONG));
    future_t *q[4];
    for (int i = 0; i < 4; i++)
        q[i] = task_group_submit(g, x_stamp, &plain, sizeof(plain), NULL);
    ck_assert_int_eq(task_group_cancel(g), 0);
    const future_error_t *e = NULL;
    ck_assert_int_eq(task_group_wait(g, T_LONG, &e), 0);
    ck_assert_ptr_null(e);
    /* The running task was asked to stop and ended with its result; the
       queued ones were cancelled before it stopped, so none ever ran. */
    int64_t v = -1;
    ck_assert_int_eq(future_result_i64(run, 0, &v), 0);
    ck_assert_int_eq(v, 1);
    for (int i = 0; i < 4; i++) {
        ck_assert(future_cancelled(q[i]));
        future_unref(q[i]);
    }
    errno = 0;
    ck_assert_ptr_null(task_group_submit(g, x_stamp, &plain, sizeof(plain), NULL));
    ck_assert_int_eq(errno, ECANCELED);
    ck_assert_int_eq(task_group_cancel(g), 0); /* again: nothing to do */
    task_group_free(g);
    executor_free(ex);
    ck_assert_int_eq(atomic_load(&sh->runs), 2);
    future_unref(done);
    future_unref(run);
}
END_TEST

START_TEST(test_group_cancel_on_failure)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    task_group_t *g = task_group_new(ex, &(task_group_options_t){.cancel_on_failure = true});
    struct stamp_arg gated = {0, 0, 1, 0}; /* run 1 (the second) fails */
    struct stamp_arg held = {0, 1, -1, 0}; /* gate 1 never opens: stops */
    future_t *first = task_group_submit(g, x_stamp, &gated, sizeof(gated), NULL);
    int gi = 0;
    ck_assert(eventually(gate_started, &gi, T_LONG));
    future_t *bad = task_group_submit(g, x_stamp, &gated, sizeof(gated), NULL);
    future_t *rest[4];
    for (int i = 0; i < 4; i++)
        rest[i] = task_group_submit(g, x_stamp, &held, sizeof(held), NULL);
    atomic_store(&sh->gates[0], 1);
    const future_error_t *e = NULL;
    ck_assert_int_eq(task_group_wait(g, T_LONG, &e), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, FUT_ETASK);
    ck_assert_int_eq(e->code, 42);
    ck_assert_str_eq(e->message, "run 1 failed");
    ck_assert_int_eq(future_result(first, 0, NULL, NULL), 0);
    ck_assert_int_eq(future_result(bad, 0, NULL, NULL), FUT_ETASK);
    /* The rest stopped: cancelled, or (a task a process worker had already
       started when the failure was heard) asked to stop. */
    for (int i = 0; i < 4; i++) {
        ck_assert(future_done(rest[i]));
        if (_i == 0)
            ck_assert(future_cancelled(rest[i]));
        future_unref(rest[i]);
    }
    errno = 0;
    ck_assert_ptr_null(task_group_submit(g, x_stamp, &plain, sizeof(plain), NULL));
    ck_assert_int_eq(errno, ECANCELED);
    task_group_free(g);
    executor_free(ex);
    future_unref(first);
    future_unref(bad);
}
END_TEST

START_TEST(test_group_free_cancels_and_waits)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    task_group_t *g = task_group_new(ex, NULL);
    struct stamp_arg gated = {0, 0, -1, 0};
    future_t *fs[6];
    for (int i = 0; i < 6; i++)
        fs[i] = task_group_submit(g, x_stamp, &gated, sizeof(gated), NULL);
    int two = 2;
    ck_assert(eventually(runs_at_least, &two, T_LONG));
    /* A timeout while tasks run. */
    ck_assert_int_eq(task_group_wait(g, 0.01, NULL), FUT_ETIMEDOUT);
    task_group_free(g); /* cancels the queued, stops the running, waits */
    for (int i = 0; i < 6; i++) {
        ck_assert(future_done(fs[i]));
        future_unref(fs[i]);
    }
    executor_stats_t st; /* (a task's counters move after its callbacks) */
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.queued, 0);
    executor_free(ex);
    ck_assert(no_children());
}
END_TEST

/*
 * task_group_cancel while a task_group_submit is under way: the executor
 * has the task (a test hook runs just after the pool took it), the cancel
 * runs from the hook and returns, then the busy worker is freed. The task
 * must have been cancelled by that cancel, not start after it returned (it
 * did when the member joined the group only after the submit).
 */
extern void (*cf_test_submitted_hook)(void); /* lib/executor.c, test builds */
static executor_t *hook_ex;
static task_group_t *hook_group;

static void cancel_group_in_submit(void)
{
    cf_test_submitted_hook = NULL;
    ck_assert_int_eq(task_group_cancel(hook_group), 0);
    atomic_store(&sh->gates[0], 1); /* the worker is free from now on */
    /* One worker, oldest task first: a task left queued runs before this one. */
    future_t *after = executor_submit(hook_ex, x_stamp, &plain, sizeof(plain));
    ck_assert_int_eq(future_result(after, T_LONG, NULL, NULL), 0);
    future_unref(after);
}

START_TEST(test_group_cancel_during_submit)
{
    shared_reset();
    executor_t *ex = hook_ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    struct stamp_arg gated = {0, 0, -1, 0};
    future_t *busy = executor_submit(ex, x_stamp, &gated, sizeof(gated));
    int gi = 0;
    ck_assert(eventually(gate_started, &gi, T_LONG));
    task_group_t *g = hook_group = task_group_new(ex, NULL);
    cf_test_submitted_hook = cancel_group_in_submit;
    future_t *f = task_group_submit(g, x_stamp, &plain, sizeof(plain), NULL);
    ck_assert_ptr_null(cf_test_submitted_hook); /* the hook ran */
    ck_assert_ptr_nonnull(f);
    ck_assert_msg(future_cancelled(f), "%s: the member outlived the group's cancel",
                  ex_kinds[_i].name);
    ck_assert_int_eq(atomic_load(&sh->runs), 2); /* busy and the hook's task only */
    ck_assert_int_eq(task_group_wait(g, T_LONG, NULL), 0);
    future_unref(f);
    ck_assert_int_eq(future_result(busy, T_LONG, NULL, NULL), 0);
    future_unref(busy);
    task_group_free(g);
    executor_free(ex);
    ck_assert(no_children());
}
END_TEST

/* A member whose submit waits for room in a full max_queue. */
static void *submit_member(void *arg)
{
    errno = 0;
    future_t *f = task_group_submit(arg, x_stamp, &plain, sizeof(plain), NULL);
    return f ? (void *)f : (void *)(intptr_t)errno;
}

static bool group_busy(void *g)
{
    return task_group_wait(g, 0, NULL) == FUT_ETIMEDOUT;
}

/*
 * task_group_cancel reaches a member whose submit waits for room in
 * max_queue: the submit returns ECANCELED at once and the group is done,
 * while the queue is still full (it waited until a slot freed before).
 */
START_TEST(test_group_cancel_blocked_submit)
{
    shared_reset();
    atomic_store(&freed_on_done, 0);
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1, .max_queue = 1});
    struct stamp_arg gated = {0, 0, -1, 0};
    future_t *busy = executor_submit(ex, x_stamp, &gated, sizeof(gated));
    ck_assert(eventually(gate_started, &(int){0}, T_LONG));
    future_t *filler = executor_submit(ex, x_stamp, &plain, sizeof(plain));
    ck_assert_ptr_nonnull(filler);
    task_group_t *g = task_group_new(ex, NULL);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, submit_member, g), 0);
    ck_assert(eventually(group_busy, g, T_LONG)); /* it joined; its submit waits */
    ck_assert_int_eq(task_group_cancel(g), 0);
    ck_assert_int_eq(task_group_wait(g, T_LONG, NULL), 0);
    void *r;
    pthread_join(t, &r);
    ck_assert_int_eq((intptr_t)r, ECANCELED);
    ck_assert(!future_done(filler)); /* the queue was full all along */
    atomic_store(&sh->gates[0], 1);
    ck_assert_int_eq(future_result(filler, T_LONG, NULL, NULL), 0);
    ck_assert_int_eq(future_result(busy, T_LONG, NULL, NULL), 0);
    future_unref(filler);
    future_unref(busy);
    task_group_free(g);
    executor_free(ex);
    ck_assert_int_eq(atomic_load(&sh->runs), 2);
    ck_assert(no_children());
}
END_TEST

/* A member's done-callback that cancels its group again, then holds its thread. */
struct walk_hold {
    task_group_t *g;
    gate_t gate;
    _Atomic bool in;
    int rc; /* its own task_group_cancel's */
};

static void cancel_again_and_hold(future_t *f, void *ud)
{
    (void)f;
    struct walk_hold *w = ud;
    w->rc = task_group_cancel(w->g); /* the walk's own thread: returns at once */
    atomic_store(&w->in, true);
    gate_wait(&w->gate, T_LONG);
}

static bool walk_held(void *w)
{
    return atomic_load(&((struct walk_hold *)w)->in);
}

/* A second task_group_cancel, on its own thread: was @c cancelled when it returned? */
struct second_cancel {
    task_group_t *g;
    future_t *c;
    int rc;
    bool c_cancelled;
};

static void *cancel_second(void *arg)
{
    struct second_cancel *sc = arg;
    sc->rc = task_group_cancel(sc->g);
    sc->c_cancelled = future_cancelled(sc->c);
    return NULL;
}

/*
 * A task_group_cancel that comes while a failure's cancel (cancel_on_failure)
 * is still walking the members returns only once that walk is over, so
 * every member not started is cancelled by then. It returned at once (the
 * group was cancelled already), with a queued member still to be
 * cancelled: here the walk is held in the newest member's done-callback,
 * which cancels the group again on the walk's own thread (that call
 * returns at once, as it must not wait for itself).
 */
START_TEST(test_group_second_cancel_waits_for_walk)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    task_group_t *g = task_group_new(ex, &(task_group_options_t){.cancel_on_failure = true});
    struct stamp_arg bad_arg = {0, 0, 0, 0}; /* run 0 fails once gate 0 opens */
    struct stamp_arg held = {0, 1, -1, 0};   /* gate 1 never opens: stops */
    future_t *bad = task_group_submit(g, x_stamp, &bad_arg, sizeof(bad_arg), NULL);
    ck_assert(eventually(gate_started, &(int){0}, T_LONG));
    future_t *x = task_group_submit(g, x_stamp, &held, sizeof(held), NULL); /* next */
    future_t *c = task_group_submit(g, x_stamp, &plain, sizeof(plain), NULL);
    future_t *b = task_group_submit(g, x_stamp, &plain, sizeof(plain), NULL); /* newest */
    struct walk_hold w = {.g = g};
    gate_init(&w.gate);
    ck_assert_int_eq(future_add_done_callback(b, cancel_again_and_hold, &w), 0);
    atomic_store(&sh->gates[0], 1); /* bad fails: its walk cancels b first */
    ck_assert(eventually(walk_held, &w, T_LONG));
    ck_assert_int_eq(w.rc, 0);
    struct second_cancel sc = {.g = g, .c = c};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, cancel_second, &sc), 0);
    sleep_s(0.1); /* time for a second cancel that does not wait to return */
    gate_open(&w.gate);
    pthread_join(t, NULL);
    ck_assert_int_eq(sc.rc, 0);
    ck_assert_msg(sc.c_cancelled, "task_group_cancel returned before its members were");
    ck_assert_int_eq(task_group_wait(g, T_LONG, NULL), 0);
    ck_assert_int_eq(future_result(bad, 0, NULL, NULL), FUT_ETASK);
    ck_assert(future_cancelled(b));
    ck_assert(future_done(x));
    future_t *fs[] = {bad, x, c, b};
    for (int i = 0; i < 4; i++)
        future_unref(fs[i]);
    task_group_free(g);
    executor_free(ex);
    gate_destroy(&w.gate);
    ck_assert(no_children());
}
END_TEST

/*
 * A delayed member (submit_options_t.delay) is submitted before it joins
 * the group. A task_group_cancel in that gap (a test hook runs there) makes
 * the submit fail ECANCELED, as one after the cancel, and the member is in
 * no queue: it came back as a cancelled future, and in its queue. A member
 * that joined is cancelled with the group, not due yet, and is in its queue.
 */
extern void (*cf_test_group_join_hook)(void); /* lib/group.c, test builds */

static void cancel_group_before_join(void)
{
    cf_test_group_join_hook = NULL;
    ck_assert_int_eq(task_group_cancel(hook_group), 0);
}

START_TEST(test_group_cancel_before_delayed_join)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    completion_queue_t *q = completion_queue_new();
    ck_assert_ptr_nonnull(q);
    submit_options_t so = {.delay = 3600, .queue = q};
    task_group_t *g = hook_group = task_group_new(ex, NULL);
    future_t *joined = task_group_submit(g, x_stamp, &plain, sizeof(plain), &so);
    ck_assert_ptr_nonnull(joined);
    cf_test_group_join_hook = cancel_group_before_join;
    errno = 0;
    future_t *f = task_group_submit(g, x_stamp, &plain, sizeof(plain), &so);
    int e = errno;
    ck_assert_ptr_null(cf_test_group_join_hook); /* the hook ran */
    ck_assert_msg(!f, "%s: a member the group refused came back (%s)", ex_kinds[_i].name,
                  f && future_cancelled(f) ? "cancelled" : "not cancelled");
    ck_assert_int_eq(e, ECANCELED);
    ck_assert_int_eq(task_group_wait(g, T_LONG, NULL), 0);
    ck_assert(future_cancelled(joined)); /* by the cancel, before it was due */
    future_t *got = NULL;
    ck_assert_int_eq(completion_queue_next(q, T_LONG, &got), 0);
    ck_assert_ptr_eq(got, joined); /* the refused member never joined the queue */
    future_unref(got);
    ck_assert_int_eq(completion_queue_next(q, 0, &got), FUT_EOF);
    future_unref(joined);
    task_group_free(g);
    completion_queue_free(q);
    executor_free(ex);
    ck_assert_int_eq(atomic_load(&sh->runs), 0);
    ck_assert(no_children());
}
END_TEST

START_TEST(test_group_args)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    errno = 0;
    ck_assert_ptr_null(task_group_new(NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    task_group_t *g = task_group_new(ex, NULL);
    ck_assert_ptr_null(task_group_submit(NULL, x_stamp, NULL, 0, NULL));
    ck_assert_ptr_null(task_group_submit(g, NULL, NULL, 0, NULL));
    ck_assert_int_eq(task_group_cancel(NULL), FUT_EINVAL);
    ck_assert_int_eq(task_group_wait(NULL, 0, NULL), FUT_EINVAL);
    ck_assert_int_eq(task_group_wait(g, -2, NULL), FUT_EINVAL);
    ck_assert_int_eq(task_group_wait(g, 0, NULL), 0); /* empty: done */
    task_group_free(NULL);
    /* Bad arguments are FUT_EINVAL on a cancelled group too (ECANCELED before). */
    task_group_t *gc = task_group_new(ex, NULL);
    ck_assert_int_eq(task_group_cancel(gc), 0);
    submit_options_t neg = {.timeout = -3};
    errno = 0;
    ck_assert_ptr_null(task_group_submit(gc, x_stamp, NULL, 5, NULL));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(task_group_submit(gc, x_stamp, &plain, sizeof(plain), &neg));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(task_group_submit(gc, x_stamp, &plain, sizeof(plain), NULL));
    ck_assert_int_eq(errno, ECANCELED);
    task_group_free(gc);
    /* The executor goes first: the group's submits fail, free still works. */
    executor_free(ex);
    errno = 0;
    ck_assert_ptr_null(task_group_submit(g, x_stamp, &plain, sizeof(plain), NULL));
    ck_assert_int_eq(errno, ESHUTDOWN);
    task_group_free(g);
}
END_TEST

/*
 * submit_options_t.borrow_arg through a delay (the pool reads the bytes when
 * the task is due) and through a group: the task gets the caller's bytes.
 */
START_TEST(test_borrowed_delayed_and_grouped)
{
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    enum { LEN = 70000 };
    unsigned char *b = bytes_pattern(LEN, 3);
    task_group_t *g = task_group_new(ex, NULL);
    ck_assert_ptr_nonnull(g);
    future_t *fs[3] = {
        executor_submit_with(ex, t_echo, b, LEN,
                             &(submit_options_t){.borrow_arg = true, .delay = 0.01}),
        task_group_submit(g, t_echo, b, LEN, &(submit_options_t){.borrow_arg = true}),
        task_group_submit(g, t_echo, b, LEN,
                          &(submit_options_t){.borrow_arg = true, .delay = 0.01}),
    };
    for (int k = 0; k < 3; k++) {
        expect_bytes(fs[k], b, LEN);
        future_unref(fs[k]);
    }
    ck_assert_int_eq(task_group_wait(g, T_LONG, NULL), 0);
    task_group_free(g);
    free(b);
    executor_free(ex);
    ck_assert(no_children());
}
END_TEST

/* ---------------------------------------------------------- forceful stop */

/* Ignores task_should_stop: waits for gate *arg (up to T_LONG), returns 3. */
static void x_stuck(task_t *t)
{
    const int32_t *g = task_arg(t, NULL);
    atomic_fetch_add(&sh->runs, 1);
    atomic_store(&sh->started[*g], 1);
    double end = now_s() + T_LONG;
    while (!atomic_load(&sh->gates[*g]) && now_s() < end)
        usleep(200);
    task_return_i64(t, 3);
}

/* An initializer that waits on gate 1. */
static void x_init_gated(task_t *t)
{
    (void)t;
    atomic_store(&sh->started[1], 1);
    double end = now_s() + T_LONG;
    while (!atomic_load(&sh->gates[1]) && now_s() < end)
        usleep(200);
}

START_TEST(test_shutdown_timed_in_time)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    future_t *fs[5];
    for (int i = 0; i < 5; i++)
        fs[i] = executor_submit(ex, x_stamp, &plain, sizeof(plain));
    ck_assert_int_eq(executor_shutdown_timed(ex, T_LONG, false), 0);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(future_result(fs[i], 0, NULL, NULL), 0);
        future_unref(fs[i]);
    }
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.workers, 0); /* joined */
    ck_assert(no_children());
    ck_assert_int_eq(executor_shutdown_timed(ex, 0, false), 0); /* again */
    executor_free(ex);
    ck_assert_int_eq(executor_shutdown_timed(NULL, 1, false), FUT_EINVAL);
}
END_TEST

/*
 * Every task done, the workers idle (one with an initializer that
 * returned): a zero timeout is in time too. The workers are on their way
 * out, not stuck, so the call waits for them and returns 0 (it returned
 * FUT_ETIMEDOUT, and a process pool killed them, when any live worker
 * counted as stuck).
 */
static bool none_running(void *ex)
{
    executor_stats_t st;
    executor_stats(ex, &st);
    return st.running == 0 && st.queued == 0;
}

START_TEST(test_shutdown_timed_idle_zero)
{
    for (int round = 0; round < 10; round++) {
        shared_reset();
        executor_options_t o = {.max_workers = 2};
        if (round % 2)
            o.initializer = x_init_gated, sh->gates[1] = 1;
        executor_t *ex = kind_new(_i, o);
        future_t *f = executor_submit(ex, x_stamp, &plain, sizeof(plain));
        ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), 0);
        future_unref(f);
        /* A thread pool counts the task out just after its result is out. */
        ck_assert(eventually(none_running, ex, T_LONG));
        ck_assert_int_eq(executor_shutdown_timed(ex, 0, round % 4 < 2), 0);
        executor_stats_t st;
        executor_stats(ex, &st);
        ck_assert_uint_eq(st.workers, 0);
        ck_assert(no_children());
        executor_free(ex);
    }
}
END_TEST

/* An initializer whose worker dies in it, but the first one's. */
static void x_init_dies_later(task_t *t)
{
    (void)t;
    if (atomic_fetch_add(&sh->inits, 1) > 0)
        _exit(3);
}

/*
 * A process worker that died in its initializer is not one still in it: a
 * zero timeout on the idle pool afterwards returns 0 (it timed out, and
 * killed the live worker, while the dead one's seat still said "in its
 * initializer").
 */
START_TEST(test_shutdown_timed_after_initializer_death)
{
    shared_reset();
    executor_t *ex = kind_new(
        1, (executor_options_t){.max_workers = 2, .initializer = x_init_dies_later});
    struct stamp_arg gated = {0, 0, -1, 0};
    future_t *a = executor_submit(ex, x_stamp, &gated, sizeof(gated));
    ck_assert(eventually(gate_started, &(int){0}, T_LONG));
    future_t *b = executor_submit(ex, x_stamp, &plain, sizeof(plain)); /* a 2nd worker */
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(b, T_LONG, &e), 0);
    ck_assert(e && e->status == FUT_EWORKER && e->exit_status == 3);
    atomic_store(&sh->gates[0], 1);
    ck_assert_int_eq(future_result(a, T_LONG, NULL, NULL), 0);
    ck_assert(eventually(none_running, ex, T_LONG));
    ck_assert_int_eq(executor_shutdown_timed(ex, 0, false), 0);
    future_unref(a);
    future_unref(b);
    executor_free(ex);
    ck_assert(no_children());
}
END_TEST

START_TEST(test_shutdown_timed_stuck_task)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    int32_t g = 0;
    future_t *stuck = executor_submit(ex, x_stuck, &g, sizeof(g));
    ck_assert(eventually(gate_started, &(int){0}, T_LONG));
    future_t *queued[3];
    for (int i = 0; i < 3; i++)
        queued[i] = executor_submit(ex, x_stamp, &plain, sizeof(plain));
    ck_assert_int_eq(executor_shutdown_timed(ex, -3, false), FUT_EINVAL);
    ck_assert_int_eq(executor_shutdown_timed(ex, 0.05, false), FUT_ETIMEDOUT);
    for (int i = 0; i < 3; i++) {
        ck_assert(future_cancelled(queued[i])); /* not started: cancelled */
        future_unref(queued[i]);
    }
    if (_i == 1) {
        /* Killed, and failed before the call returned. */
        const future_error_t *e = NULL;
        ck_assert_int_eq(future_exception(stuck, 0, &e), 0);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->status, FUT_EWORKER);
        ck_assert(e->signal == SIGTERM || e->signal == SIGKILL);
        ck_assert(no_children());
    } else {
        /* A thread cannot be killed: it goes on; executor_free joins it. */
        ck_assert(!future_done(stuck));
        atomic_store(&sh->gates[0], 1);
    }
    executor_free(ex);
    if (_i == 0) {
        int64_t v = 0;
        ck_assert_int_eq(future_result_i64(stuck, 0, &v), 0);
        ck_assert_int_eq(v, 3);
    }
    ck_assert_int_eq(atomic_load(&sh->runs), 1);
    future_unref(stuck);
}
END_TEST

/*
 * A worker stuck in its initializer, its one task cancelled by
 * cancel_futures: no task is left, but the worker is, so the call times
 * out (and a process pool kills it) instead of waiting for the initializer
 * (it returned 0 once the initializer did, however long that took).
 */
START_TEST(test_shutdown_timed_stuck_initializer)
{
    shared_reset();
    executor_t *ex = kind_new(
        _i, (executor_options_t){.max_workers = 1, .initializer = x_init_gated});
    future_t *f = executor_submit(ex, x_stamp, &plain, sizeof(plain));
    ck_assert(eventually(gate_started, &(int){1}, T_LONG));
    ck_assert_int_eq(executor_shutdown_timed(ex, 0.05, true), FUT_ETIMEDOUT);
    ck_assert(future_cancelled(f));
    if (_i == 1)
        ck_assert(no_children()); /* killed before the call returned */
    atomic_store(&sh->gates[1], 1);
    executor_free(ex);
    ck_assert_int_eq(atomic_load(&sh->runs), 0);
    future_unref(f);
}
END_TEST

/* A done-callback that holds its thread until gate 2 opens (5 s at most). */
static void cb_hold(future_t *f, void *ud)
{
    (void)f;
    (void)ud;
    atomic_store(&sh->started[2], 1);
    double end = now_s() + 5.0;
    while (!atomic_load(&sh->gates[2]) && now_s() < end)
        usleep(200);
}

/*
 * Every task has ended, but a done-callback still runs on a thread pool's
 * worker (round 0) or deadline watcher (round 1, the future of a task past
 * its limit), or on a process pool's manager (both rounds): the callback is
 * user code, so the call times out instead of waiting for it. The thread
 * pool waited, and returned 0, once the count of running tasks fell before
 * the callbacks ran; the process pool waited for the callback, then for the
 * kill it asked of the manager and for the manager's exit (a blocked
 * callback held either for ever).
 */
START_TEST(test_shutdown_timed_callback_holds_thread)
{
    for (int round = 0; round < 2; round++) {
        shared_reset();
        executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
        struct stamp_arg first = {0, 3, -1, 0}, gated = {0, 0, -1, 0};
        future_t *a = executor_submit(ex, x_stamp, &first, sizeof(first));
        submit_options_t so = {.timeout = round ? 0.01 : 0};
        future_t *f = executor_submit_with(ex, x_stamp, &gated, sizeof(gated), &so);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(future_add_done_callback(f, cb_hold, NULL), 0);
        atomic_store(&sh->gates[3], 1); /* f starts once the callback is on it */
        if (round == 0)
            atomic_store(&sh->gates[0], 1); /* round 1: the limit stops it */
        ck_assert(eventually(gate_started, &(int){2}, T_LONG));
        ck_assert(eventually(none_running, ex, T_LONG)); /* the task returned */
        double t0 = now_s();
        ck_assert_int_eq(executor_shutdown_timed(ex, 0.05, false), FUT_ETIMEDOUT);
        ck_assert_msg(now_s() - t0 < 4.0, "round %d: waited for the callback", round);
        atomic_store(&sh->gates[2], 1);
        executor_free(ex);
        ck_assert_int_eq(future_result(a, 0, NULL, NULL), 0);
        ck_assert_int_eq(future_result(f, 0, NULL, NULL), round ? FUT_EDEADLINE : 0);
        future_unref(a);
        future_unref(f);
    }
}
END_TEST

START_TEST(test_terminate_workers)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 2});
    if (_i == 0) {
        ck_assert_int_eq(executor_terminate_workers(ex, SIGTERM), FUT_EINVAL);
        ck_assert_int_eq(executor_terminate_workers(NULL, SIGTERM), FUT_EINVAL);
        executor_free(ex);
        return;
    }
    ck_assert_int_eq(executor_terminate_workers(ex, 0), FUT_EINVAL);
    int32_t g0 = 0, g1 = 1;
    future_t *run[2] = {executor_submit(ex, x_stuck, &g0, sizeof(g0)),
                        executor_submit(ex, x_stuck, &g1, sizeof(g1))};
    ck_assert(eventually(gate_started, &(int){0}, T_LONG));
    ck_assert(eventually(gate_started, &(int){1}, T_LONG));
    future_t *queued[4];
    for (int i = 0; i < 4; i++)
        queued[i] = executor_submit(ex, x_stamp, &plain, sizeof(plain));
    ck_assert_int_eq(executor_terminate_workers(ex, SIGTERM), 0);
    for (int i = 0; i < 4; i++) { /* failed at once */
        const future_error_t *e = NULL;
        ck_assert_int_eq(future_exception(queued[i], 0, &e), 0);
        ck_assert_int_eq(e->status, FUT_EBROKEN);
        future_unref(queued[i]);
    }
    for (int i = 0; i < 2; i++) {
        const future_error_t *e = NULL;
        ck_assert_int_eq(future_exception(run[i], T_LONG, &e), 0);
        ck_assert_int_eq(e->status, FUT_EWORKER);
        ck_assert_int_eq(e->signal, SIGTERM);
        future_unref(run[i]);
    }
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert(st.broken);
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, x_stamp, &plain, sizeof(plain)));
    ck_assert_int_eq(errno, -FUT_EBROKEN);
    executor_free(ex);
    ck_assert(no_children());
    ck_assert_int_eq(atomic_load(&sh->runs), 2);
}
END_TEST

/* ---------------------------------------------------------- priorities, resizing */

/* Records its label (i64 argument) in start order; counts runs at once. */
static void x_label(task_t *t)
{
    const int64_t *label = task_arg(t, NULL);
    int c = atomic_fetch_add(&sh->conc, 1) + 1;
    for (int m = atomic_load(&sh->conc_max); c > m;)
        if (atomic_compare_exchange_weak(&sh->conc_max, &m, c))
            break;
    int i = atomic_fetch_add(&sh->norder, 1);
    if (i < MAX_RUNS)
        sh->order[i] = (int)*label;
    usleep(1000); /* long enough for a second worker to overlap, if one ran */
    atomic_fetch_sub(&sh->conc, 1);
    task_return_i64(t, *label);
}

/* The library built with the test hooks (executor.h). */
size_t cf_test_settled(executor_t *ex);

/* An executor and a count it should reach (eventually's argument). */
struct stats_want {
    executor_t *ex;
    size_t n;
};

static bool settled_reached(void *arg)
{
    struct stats_want *w = arg;
    return cf_test_settled(w->ex) >= w->n;
}

/*
 * Waits until @ex has its first @n submits in priority order: in a thread
 * pool's queue once the submit returned, in a process pool once its manager
 * took them in (and took back the lower ones sent ahead). Until then a
 * worker may rightly start a task sent ahead of a later, higher one.
 */
static void settle(executor_t *ex, size_t n)
{
    ck_assert(eventually(settled_reached, &(struct stats_want){ex, n}, T_LONG));
}

/* Runs a gated x_stamp on gate @g and waits until it has started. */
static future_t *start_gated(executor_t *ex, int g)
{
    static struct stamp_arg gated[N_GATES];
    gated[g] = (struct stamp_arg){0, g, -1, 0};
    future_t *f = executor_submit(ex, x_stamp, &gated[g], sizeof(gated[g]));
    ck_assert_ptr_nonnull(f);
    ck_assert(eventually(gate_started, &g, T_LONG));
    return f;
}

static void open_gate(int g)
{
    atomic_store(&sh->gates[g], 1);
}

static bool workers_reached(void *arg)
{
    struct stats_want *w = arg;
    executor_stats_t st;
    executor_stats(w->ex, &st);
    return st.workers == w->n;
}

static bool workers_are(executor_t *ex, size_t n)
{
    return eventually(workers_reached, &(struct stats_want){ex, n}, T_LONG);
}

/*
 * With the one worker of a @kind pool held, submits @n tasks with priorities
 * @prio (labels are submit positions) and checks they start in the order
 * @want. @pause: a pause between submits, not needed for the outcome, which
 * holds either way: it lets a process pool send the earlier (lower) tasks
 * ahead to its worker first, so the later ones must take them back (preempt).
 */
static void check_priority_starts(int kind, const int *prio, const int *want, int n,
                                  bool pause)
{
    enum { MAX = 16 };
    ck_assert_int_le(n, MAX);
    shared_reset();
    executor_t *ex = kind_new(kind, (executor_options_t){.max_workers = 1});
    future_t *blocker = start_gated(ex, 0);
    int64_t labels[MAX];
    future_t *fs[MAX];
    for (int i = 0; i < n; i++) {
        labels[i] = i;
        submit_options_t so = {.priority = prio[i]};
        fs[i] = executor_submit_with(ex, x_label, &labels[i], sizeof(labels[i]), &so);
        ck_assert_ptr_nonnull(fs[i]);
        if (pause)
            usleep(2000);
    }
    settle(ex, 1 + (size_t)n);
    open_gate(0);
    expect_i64_results(fs, n, 0);
    ck_assert_int_eq(atomic_load(&sh->norder), n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(sh->order[i] == want[i], "%s: start %d was task %d, not %d",
                      ex_kinds[kind].name, i, sh->order[i], want[i]);
    ck_assert_int_eq(future_result(blocker, T_LONG, NULL, NULL), 0);
    future_unref(blocker);
    executor_free(ex);
}

START_TEST(test_priority_order)
{
    static const int prio[] = {0, 3, 1, 3, 2, -1, 0, 2, INT_MIN, INT_MAX};
    static const int want[] = {9, 1, 3, 4, 7, 2, 0, 6, 5, 8};
    check_priority_starts(_i, prio, want, 10, true);
}
END_TEST

/*
 * A task of the default priority submitted after one of a lower priority
 * starts first. On the thread pool the first queues under the lock and the
 * second goes on the inbox (every worker started, none parked): the worker
 * must look at the inbox before it pops a lower head.
 */
START_TEST(test_priority_default_after_lower)
{
    static const int prio[] = {-1, 0};
    static const int want[] = {1, 0};
    check_priority_starts(_i, prio, want, 2, false);
}
END_TEST

/* A delayed task and a continuation take their priority when they queue. */
START_TEST(test_priority_delayed_and_then)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 1});
    future_t *blocker = start_gated(ex, 0);
    int64_t labels[3] = {0, 1, 2};
    future_t *low = executor_submit(ex, x_label, &labels[0], sizeof(labels[0]));
    future_t *delayed = executor_submit_with(ex, x_label, &labels[1], sizeof(labels[1]),
                                             &(submit_options_t){.delay = 0.001,
                                                                 .priority = 5});
    future_t *done = future_new();
    then_options_t to = {.when = FUT_THEN_ALWAYS, .submit = {.priority = 9}};
    future_t *then = future_then(done, ex, x_label, &to);
    ck_assert_ptr_nonnull(low);
    ck_assert_ptr_nonnull(delayed);
    ck_assert_ptr_nonnull(then);
    /* The continuation's argument is prev's result: label 2. */
    ck_assert_int_eq(future_set_result(done, &labels[2], sizeof(labels[2]), NULL), 0);
    /* All three queued behind the blocker, in order. */
    settle(ex, 4);
    open_gate(0);
    ck_assert_int_eq(future_result(low, T_LONG, NULL, NULL), 0);
    ck_assert_int_eq(future_result(delayed, T_LONG, NULL, NULL), 0);
    ck_assert_int_eq(future_result(then, T_LONG, NULL, NULL), 0);
    ck_assert_int_eq(sh->order[0], 2);
    ck_assert_int_eq(sh->order[1], 1);
    ck_assert_int_eq(sh->order[2], 0);
    future_unref(low);
    future_unref(delayed);
    future_unref(then);
    future_unref(done);
    future_unref(blocker);
    executor_free(ex);
}
END_TEST

START_TEST(test_resize_up_and_down)
{
    shared_reset();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 4});
    ck_assert_int_eq(executor_set_max_workers(ex, 1), 0);
    future_t *g[3];
    g[0] = start_gated(ex, 0);
    g[1] = executor_submit(ex, x_stamp, &(struct stamp_arg){0, 1, -1, 0},
                           sizeof(struct stamp_arg));
    /* One worker, busy: the second task waits until the pool grows. */
    ck_assert(workers_are(ex, 1));
    ck_assert_int_eq(atomic_load(&sh->started[1]), 0);
    ck_assert_int_eq(executor_set_max_workers(ex, 3), 0);
    int g1 = 1;
    ck_assert(eventually(gate_started, &g1, T_LONG));
    g[2] = start_gated(ex, 2);
    ck_assert(workers_are(ex, 3));
    /* Shrink while three run: none is interrupted, and what is submitted
       now never runs on more than one worker at a time. */
    ck_assert_int_eq(executor_set_max_workers(ex, 1), 0);
    enum { N = 12 };
    int64_t labels[N];
    future_t *fs[N];
    for (int i = 0; i < N; i++) {
        labels[i] = i;
        fs[i] = executor_submit(ex, x_label, &labels[i], sizeof(labels[i]));
        ck_assert_ptr_nonnull(fs[i]);
    }
    for (int i = 0; i < 3; i++)
        open_gate(i);
    for (int i = 0; i < 3; i++) {
        int64_t v = -1;
        ck_assert_int_eq(future_result_i64(g[i], T_LONG, &v), 0);
        future_unref(g[i]);
    }
    expect_i64_results(fs, N, 0);
    ck_assert_int_eq(atomic_load(&sh->conc_max), 1);
    ck_assert(workers_are(ex, 1));
    /* Bad sizes change nothing. */
    ck_assert_int_eq(executor_set_max_workers(ex, 0), FUT_EINVAL);
    ck_assert_int_eq(executor_set_max_workers(ex, -3), FUT_EINVAL);
    ck_assert_int_eq(executor_set_max_workers(NULL, 2), FUT_EINVAL);
    if (strcmp(ex_kinds[_i].name, "process") == 0)
        ck_assert_int_eq(executor_set_max_workers(ex, 5), FUT_EINVAL);
    else
        ck_assert_int_eq(executor_set_max_workers(ex, 64), 0);
    executor_free(ex);
    ck_assert(no_children());
}
END_TEST

/* Sizes change while tasks stream through: every task runs once. */
START_TEST(test_resize_under_load)
{
    shared_reset();
    int before = count_fds();
    executor_t *ex = kind_new(_i, (executor_options_t){.max_workers = 4});
    enum { N = 400 };
    static int64_t args[N];
    future_t *fs[N];
    for (int i = 0; i < N; i++) {
        args[i] = i;
        fs[i] = executor_submit(ex, t_add1, &args[i], sizeof(args[i]));
        ck_assert_ptr_nonnull(fs[i]);
        if (i % 25 == 0)
            ck_assert_int_eq(executor_set_max_workers(ex, 1 + (i / 25) % 4), 0);
    }
    expect_i64_results(fs, N, 1);
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.completed, N);
    executor_free(ex);
    ck_assert(no_children());
    ck_assert_int_eq(count_fds(), before);
}
END_TEST

Suite *make_suite(void)
{
    Suite *s = suite_create("control");
    TCase *tc = new_tcase(s, "delay");
    tcase_add_loop_test(tc, test_delay_never_early, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_delay_cancel_before_due, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_delay_shutdown_cancels, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_delay_joins_queue, 0, N_EX_KINDS);
    tc = new_tcase(s, "schedule");
    tcase_add_loop_test(tc, test_schedule_fixed_rate, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_schedule_fixed_delay, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_schedule_overrun_skips, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_schedule_cancel_between_runs, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_schedule_cancel_during_run, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_schedule_errors, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_schedule_shutdown_ends_it, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_timed_refused_when_full, 0, N_EX_KINDS);
    tc = new_tcase(s, "group");
    tcase_add_loop_test(tc, test_group_wait_all, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_group_cancel_queued_running_finished, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_group_cancel_on_failure, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_group_second_cancel_waits_for_walk, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_group_free_cancels_and_waits, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_group_cancel_during_submit, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_group_cancel_blocked_submit, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_group_cancel_before_delayed_join, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_group_args, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_borrowed_delayed_and_grouped, 0, N_EX_KINDS);
    tc = new_tcase(s, "stop");
    tcase_add_loop_test(tc, test_shutdown_timed_in_time, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_shutdown_timed_idle_zero, 0, N_EX_KINDS);
    tcase_add_test(tc, test_shutdown_timed_after_initializer_death);
    tcase_add_loop_test(tc, test_shutdown_timed_stuck_task, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_shutdown_timed_stuck_initializer, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_shutdown_timed_callback_holds_thread, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_terminate_workers, 0, N_EX_KINDS);
    tc = new_tcase(s, "priority");
    tcase_add_loop_test(tc, test_priority_order, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_priority_default_after_lower, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_priority_delayed_and_then, 0, N_EX_KINDS);
    tc = new_tcase(s, "resize");
    tcase_add_loop_test(tc, test_resize_up_and_down, 0, N_EX_KINDS);
    tcase_add_loop_test(tc, test_resize_under_load, 0, N_EX_KINDS);
    return s;
}
