/*
 * check_thread_pool: what only the thread pool does: lazy threads and their
 * count, thread names, the caller's argument pointer handed over as is,
 * deadlines on tasks that cannot be killed, fork from a pool's thread, and
 * executor_free / executor_shutdown called from the pool's own threads.
 * What every executor kind does is in check_executor.c.
 */
#define _GNU_SOURCE /* sched_getaffinity, pthread_getname_np */
#include "testutil.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * A forked child of a multi-threaded process has none of the other threads,
 * so LeakSanitizer would take what only they referenced for leaks. The child
 * sets this before it exits; LSan calls the hook at exit.
 */
static volatile int in_forked_child;
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
    return in_forked_child;
}

static executor_t *new_tp(executor_options_t o)
{
    executor_t *ex = thread_pool_executor_new(&o);
    ck_assert_msg(ex != NULL, "thread_pool_executor_new: errno %d", errno);
    return ex;
}

static executor_stats_t stats_of(executor_t *ex)
{
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    return st;
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
    ck_assert_msg(f != NULL, "executor_submit: errno %d", errno);
    return f;
}

static _Atomic int n_frees;

static void counting_free(void *p)
{
    atomic_fetch_add(&n_frees, 1);
    free(p);
}

/* Returns 8 malloc'd bytes freed by counting_free. */
static void t_counted_result(task_t *t)
{
    int64_t *p = malloc(sizeof(*p));
    *p = 5;
    task_return(t, p, sizeof(*p), counting_free);
}

static int cpus(void)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
    return CPU_COUNT(&set);
}

/* ================================================================= core */

/* Threads start lazily: none before the first submit */
START_TEST(test_thread_pool_lazy_threads)
{
    int base = thread_baseline();
    executor_t *ex = new_tp((executor_options_t){.max_workers = 4});
    ck_assert_int_eq(count_threads(), base);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.workers, 0);
    ck_assert_uint_eq(st.idle, 0);
    int64_t v = 1;
    future_t *f = submit_ok(ex, t_add1, &v, sizeof(v));
    ck_assert_int_eq(result_i64(f), 2);
    future_unref(f);
    ck_assert_int_eq(count_threads(), base + 1);
    st = stats_of(ex);
    ck_assert_uint_eq(st.workers, 1);
    executor_free(ex);
    ck_assert(wait_threads(base)); /* a joined thread leaves /proc a moment later */
    ck_assert_int_eq(count_threads(), base);
}
END_TEST

/* The thread pool hands the task the caller's pointer itself (no copy) */
struct ptr_seen {
    const void *p;
    size_t len;
};

static void t_report_arg(task_t *t)
{
    struct ptr_seen s;
    s.p = task_arg(t, &s.len);
    task_return_copy(t, &s, sizeof(s));
}

START_TEST(test_thread_pool_passes_pointer)
{
    executor_t *ex = new_tp((executor_options_t){0});
    int x = 3;
    size_t lens[] = {0, sizeof(x), 12345};
    for (int i = 0; i < 3; i++) {
        future_t *f = submit_ok(ex, t_report_arg, &x, lens[i]);
        const void *data;
        size_t len;
        ck_assert_int_eq(future_result(f, T_LONG, &data, &len), 0);
        ck_assert_uint_eq(len, sizeof(struct ptr_seen));
        struct ptr_seen s;
        memcpy(&s, data, sizeof(s));
        ck_assert_ptr_eq(s.p, &x);
        ck_assert_uint_eq(s.len, lens[i]);
        future_unref(f);
    }
    /* A NULL argument is passed as NULL. */
    future_t *f = submit_ok(ex, t_report_arg, NULL, 0);
    const void *data;
    ck_assert_int_eq(future_result(f, T_LONG, &data, NULL), 0);
    struct ptr_seen s;
    memcpy(&s, data, sizeof(s));
    ck_assert_ptr_null(s.p);
    future_unref(f);
    executor_free(ex);
}
END_TEST

/* TPE-03: three sequential submit-then-result calls use exactly one thread */
START_TEST(test_thread_pool_idle_thread_reuse)
{
    int base = thread_baseline();
    executor_t *ex = new_tp((executor_options_t){0});
    int64_t v = 1;
    for (int i = 0; i < 3; i++) {
        future_t *f = submit_ok(ex, t_add1, &v, sizeof(v));
        ck_assert_int_eq(result_i64(f), 2);
        future_unref(f);
    }
    ck_assert_int_eq(count_threads(), base + 1);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.workers, 1);
    ck_assert_uint_eq(st.idle, 1); /* idle again before the result was handed over */
    executor_free(ex);
    ck_assert(wait_threads(base)); /* a joined thread leaves /proc a moment later */
    ck_assert_int_eq(count_threads(), base);
}
END_TEST

/* EXE-05 [analog]: a dropped future's result is freed once the task is done */
START_TEST(test_thread_pool_no_stale_references)
{
    atomic_store(&n_frees, 0);
    executor_t *ex = new_tp((executor_options_t){.max_workers = 2});
    for (int i = 0; i < 10; i++)
        future_unref(submit_ok(ex, t_counted_result, NULL, 0));
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    ck_assert_int_eq(atomic_load(&n_frees), 10);
    executor_free(ex);
}
END_TEST

static bool frees_at_least(void *p)
{
    return atomic_load(&n_frees) >= *(int *)p;
}

/* MAP-17 [decide]: a map keeps only the item handed out last */
START_TEST(test_thread_pool_map_frees_yielded)
{
    atomic_store(&n_frees, 0);
    executor_t *ex = new_tp((executor_options_t){.max_workers = 2});
    const void *args[10] = {0};
    executor_map_t *m = executor_map(ex, t_counted_result, args, NULL, 10, NULL);
    ck_assert_ptr_nonnull(m);
    for (int k = 1; k <= 10; k++) {
        const void *data;
        size_t len;
        ck_assert_int_eq(executor_map_next(m, &data, &len), 0);
        ck_assert_uint_eq(len, 8);
        /* The worker may hold its own reference a moment longer. */
        int want = k - 1;
        ck_assert(eventually(frees_at_least, &want, T_LONG));
    }
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    int all = 10;
    ck_assert(eventually(frees_at_least, &all, T_LONG));
    executor_map_free(m);
    executor_free(ex);
}
END_TEST

/* MAP-18: without buffersize, map submits every item without iteration */
struct counter {
    _Atomic int runs;
};

static void t_count(task_t *t)
{
    struct counter *c = (struct counter *)task_arg(t, NULL);
    atomic_fetch_add(&c->runs, 1);
}

START_TEST(test_thread_pool_map_submits_eagerly)
{
    executor_t *ex = new_tp((executor_options_t){.max_workers = 3});
    struct counter c;
    atomic_init(&c.runs, 0);
    const void *args[10];
    for (int i = 0; i < 10; i++)
        args[i] = &c;
    executor_map_t *m = executor_map(ex, t_count, args, NULL, 10, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    ck_assert_int_eq(atomic_load(&c.runs), 10);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.completed, 10);
    executor_map_free(m);
    executor_free(ex);
}
END_TEST

/* ================================================================ names */

/* Waits for its gate, then returns the name of the thread it ran on. */
static void t_name_gated(task_t *t)
{
    gate_t *g = (gate_t *)task_arg(t, NULL);
    gate_wait(g, T_LONG);
    char name[32] = "";
    int rc = pthread_getname_np(pthread_self(), name, sizeof(name));
    if (rc != 0)
        task_raise(t, rc, "pthread_getname_np failed");
    else
        task_return_str(t, "%s", name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Runs @n gated tasks on @n threads at once and fills names[] (sorted,
 * malloc'd) with the names of the threads they ran on.
 */
static void names_of(executor_t *ex, int n, char **names)
{
    gate_t g;
    gate_init(&g);
    future_t *fs[8];
    for (int i = 0; i < n; i++)
        fs[i] = submit_ok(ex, t_name_gated, &g, 0);
    ck_assert(gate_wait_for_waiters(&g, n));
    gate_open(&g);
    for (int i = 0; i < n; i++) {
        const char *s = future_result_str(fs[i], T_LONG);
        ck_assert_msg(s != NULL, "no name: errno %d", errno);
        names[i] = strdup(s);
        future_unref(fs[i]);
    }
    qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
    executor_shutdown(ex, true, false);
    gate_destroy(&g);
}

/* SHUT-12: thread_name_prefix names threads prefix_0 .. prefix_N-1 */
START_TEST(test_thread_pool_thread_names)
{
    executor_t *ex = new_tp(
        (executor_options_t){.max_workers = 5, .thread_name_prefix = "SpecialPool"});
    char *names[5];
    names_of(ex, 5, names);
    for (int i = 0; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof(want), "SpecialPool_%d", i);
        ck_assert_str_eq(names[i], want);
        free(names[i]);
    }
    executor_free(ex);
}
END_TEST

/* The worker's thread id times 16 plus its scheduling policy. */
static void policy_of_worker(task_t *t)
{
    task_return_i64(t, (int64_t)syscall(SYS_gettid) * 16 + sched_getscheduler(0));
}

static void to_idle_policy(task_t *t)
{
    struct sched_param sp = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
        task_raise(t, 1, "pthread_setschedparam refused SCHED_IDLE");
}

/* Runs policy_of_worker on @ex; its policy, and the thread id in *@tid. */
static int run_policy_task(executor_t *ex, pid_t *tid)
{
    future_t *f = executor_submit(ex, policy_of_worker, NULL, 0);
    int64_t v = -1;
    ck_assert_int_eq(future_result_i64(f, 10.0, &v), 0);
    future_unref(f);
    *tid = (pid_t)(v / 16);
    return (int)(v % 16);
}

/* Polls thread @tid's policy until it is @want or 10 s passed; the last one seen. */
static int policy_becomes(pid_t tid, int want)
{
    int policy = -1;
    for (int i = 0; i < 10000 && (policy = sched_getscheduler(tid)) != want; i++)
        usleep(1000);
    return policy;
}

/*
 * A worker parks under SCHED_BATCH (a wake-up does not preempt the
 * submitter) and runs tasks under SCHED_OTHER; a policy the initializer
 * chose stays, parked or not.
 */
START_TEST(test_thread_pool_workers_batch_policy)
{
    struct sched_param sp = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp) != 0) {
        fprintf(stderr, "SCHED_BATCH refused here: the pool keeps SCHED_OTHER; skipped\n");
        return;
    }
    pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    executor_t *ex = new_tp((executor_options_t){.max_workers = 1});
    pid_t tid;
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(run_policy_task(ex, &tid), SCHED_OTHER);
        ck_assert_int_eq(policy_becomes(tid, SCHED_BATCH), SCHED_BATCH); /* parked */
    }
    executor_free(ex);

    ex = new_tp((executor_options_t){.max_workers = 1, .initializer = to_idle_policy});
    ck_assert_int_eq(run_policy_task(ex, &tid), SCHED_IDLE);
    usleep(100 * 1000); /* long past its spin: parked */
    ck_assert_int_eq(sched_getscheduler(tid), SCHED_IDLE);
    ck_assert_int_eq(run_policy_task(ex, &tid), SCHED_IDLE);
    executor_free(ex);
}
END_TEST

/* SHUT-12: a long prefix is cut to fit 15 characters; the _N suffix is kept */
START_TEST(test_thread_pool_thread_names_truncated)
{
    executor_t *ex = new_tp((executor_options_t){
        .max_workers = 2, .thread_name_prefix = "AVeryVeryLongThreadNamePrefix"});
    char *names[2];
    names_of(ex, 2, names);
    ck_assert_str_eq(names[0], "AVeryVeryLong_0");
    ck_assert_str_eq(names[1], "AVeryVeryLong_1");
    for (int i = 0; i < 2; i++) {
        ck_assert_uint_le(strlen(names[i]), 15);
        free(names[i]);
    }
    executor_free(ex);
}
END_TEST

/* Checks that @name is cfutures-<k>_<index> and returns k. */
static long default_name_pool(const char *name, int index)
{
    ck_assert_msg(strncmp(name, "cfutures-", 9) == 0, "default name %s", name);
    char *end;
    long k = strtol(name + 9, &end, 10);
    ck_assert_msg(end != name + 9, "no pool number in %s", name);
    char suffix[16];
    snprintf(suffix, sizeof(suffix), "_%d", index);
    ck_assert_str_eq(end, suffix);
    return k;
}

/* SHUT-13 [decide]: the default name is cfutures-<k>_<i>, unique per pool */
START_TEST(test_thread_pool_thread_names_default)
{
    executor_t *a = new_tp((executor_options_t){.max_workers = 2});
    executor_t *b = new_tp((executor_options_t){.max_workers = 1});
    char *na[2], *nb[1];
    names_of(a, 2, na);
    names_of(b, 1, nb);
    long ka = default_name_pool(na[0], 0);
    ck_assert_int_eq(default_name_pool(na[1], 1), ka);
    long kb = default_name_pool(nb[0], 0);
    ck_assert_int_ne(ka, kb);
    free(na[0]);
    free(na[1]);
    free(nb[0]);
    executor_free(a);
    executor_free(b);
}
END_TEST

/* =============================================================== limits */

/* TPE-01: the default is min(32, cpus + 4), cpus from sched_getaffinity */
START_TEST(test_thread_pool_default_max_workers)
{
    int want = cpus() + 4 < 32 ? cpus() + 4 : 32;
    int base = thread_baseline();
    executor_t *ex = new_tp((executor_options_t){0});
    gate_t g;
    gate_init(&g);
    future_t *fs[40];
    int n = want + 3;
    for (int i = 0; i < n; i++)
        fs[i] = submit_ok(ex, t_wait_gate, &g, 0);
    ck_assert(gate_wait_for_waiters(&g, want));
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.workers, (size_t)want);
    ck_assert_uint_eq(st.running, (size_t)want);
    ck_assert_uint_eq(st.queued, 3);
    ck_assert_int_eq(count_threads(), base + want);
    gate_open(&g);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(result_i64(fs[i]), 1);
        future_unref(fs[i]);
    }
    executor_free(ex);
    ck_assert(wait_threads(base)); /* a joined thread leaves /proc a moment later */
    ck_assert_int_eq(count_threads(), base);
    gate_destroy(&g);
}
END_TEST

/* TPE-02: 4 workers and 60 held tasks give exactly 4 threads */
START_TEST(test_thread_pool_saturation)
{
    int base = thread_baseline();
    executor_t *ex = new_tp((executor_options_t){.max_workers = 4});
    gate_t g;
    gate_init(&g);
    future_t *fs[60];
    for (int i = 0; i < 60; i++)
        fs[i] = submit_ok(ex, t_wait_gate, &g, 0);
    ck_assert(gate_wait_for_waiters(&g, 4));
    ck_assert_int_eq(count_threads(), base + 4);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.workers, 4);
    ck_assert_uint_eq(st.running, 4);
    ck_assert_uint_eq(st.queued, 56);
    gate_open(&g);
    for (int i = 0; i < 60; i++) {
        ck_assert_int_eq(result_i64(fs[i]), 1);
        future_unref(fs[i]);
    }
    ck_assert_int_eq(count_threads(), base + 4);
    executor_free(ex);
    ck_assert(wait_threads(base)); /* a joined thread leaves /proc a moment later */
    ck_assert_int_eq(count_threads(), base);
    gate_destroy(&g);
}
END_TEST

/*
 * TPE-02 (idle threads take work): with n - 1 workers held in tasks, a task
 * submitted next runs on the idle worker while they stay held. The idle one
 * may be spinning, parked untimed, or parked as the watchman that a submit
 * does not wake (lib/thread/pool.c): each path must start the task. Some
 * rounds pause first so that the idle worker has parked.
 */
START_TEST(test_thread_pool_idle_worker_takes_task_behind_busy)
{
    int base = thread_baseline();
    for (int n = 2; n <= 4; n += 2) {
        executor_t *ex = new_tp((executor_options_t){.max_workers = n});
        for (int round = 0; round < 60; round++) {
            gate_t hold;
            gate_init(&hold);
            future_t *held[4];
            for (int i = 0; i < n - 1; i++)
                held[i] = submit_ok(ex, t_wait_gate, &hold, 0);
            ck_assert(gate_wait_for_waiters(&hold, n - 1));
            if (round % 3 != 0) {
                struct timespec ts = {0, (round % 3) * 2000000L}; /* 2 or 4 ms */
                nanosleep(&ts, NULL);
            }
            int64_t x = round;
            future_t *f = submit_ok(ex, t_add1, &x, sizeof(x));
            ck_assert_int_eq(result_i64(f), round + 1);
            for (int i = 0; i < n - 1; i++)
                ck_assert(!future_done(held[i]));
            future_unref(f);
            gate_open(&hold);
            for (int i = 0; i < n - 1; i++) {
                ck_assert_int_eq(result_i64(held[i]), 1);
                future_unref(held[i]);
            }
            gate_destroy(&hold);
        }
        executor_free(ex);
    }
    ck_assert(wait_threads(base));
}
END_TEST

/* lib/thread/pool.c, test builds: the watchman's time limit (ns). */
extern int64_t cf_test_watch_ns;

/*
 * Submits @n (at most 8) tasks that wait on one gate; true if all @n were
 * waiting at once (each had a thread). Then opens the gate and checks that
 * each returned 1.
 */
static bool all_start_together(executor_t *ex, int n)
{
    ck_assert_int_le(n, 8);
    gate_t g;
    gate_init(&g);
    future_t *fs[8];
    for (int i = 0; i < n; i++)
        fs[i] = submit_ok(ex, t_wait_gate, &g, 0);
    bool all = gate_wait_for_waiters(&g, n);
    gate_open(&g);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(result_i64(fs[i]), 1);
        future_unref(fs[i]);
    }
    gate_destroy(&g);
    return all;
}

/*
 * Issue 14 (W7's mechanism): with 2 of 4 workers held in long tasks and 2
 * idle, a short task starts on an idle worker at once, whatever the held
 * ones do: no timer is in its path. The watchman's limit is stretched to
 * 60 s here, so a submit that counted on a held worker coming back (the
 * protocol before) would leave the task waiting past the 10 s below. The
 * pauses only let the idle workers park; no outcome depends on them.
 */
START_TEST(test_thread_pool_short_task_never_waits_for_timer)
{
    cf_test_watch_ns = 60 * 1000000000LL;
    executor_t *ex = new_tp((executor_options_t){.max_workers = 4});
    gate_t hold;
    gate_init(&hold);
    future_t *held[2];
    for (int i = 0; i < 2; i++)
        held[i] = submit_ok(ex, t_wait_gate, &hold, 0);
    ck_assert(gate_wait_for_waiters(&hold, 2));
    ck_assert(all_start_together(ex, 2)); /* four threads exist */
    for (int round = 0; round < 20; round++) {
        struct timespec ts = {0, 3000000L}; /* the idle workers park */
        nanosleep(&ts, NULL);
        int64_t x = round, v = -1;
        future_t *f = submit_ok(ex, t_add1, &x, sizeof(x));
        ck_assert_int_eq(future_result_i64(f, 10.0, &v), 0);
        ck_assert_int_eq(v, round + 1);
        future_unref(f);
        for (int i = 0; i < 2; i++)
            ck_assert(!future_done(held[i]));
    }
    gate_open(&hold);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(result_i64(held[i]), 1);
        future_unref(held[i]);
    }
    executor_free(ex);
    gate_destroy(&hold);
    cf_test_watch_ns = 1000000; /* back to the default, for CK_FORK=no runs */
}
END_TEST

/*
 * A burst of tasks that each block, submitted while one worker spins and
 * the others are parked: every task starts. The submits that count on the
 * spinner make no wake decision of their own (the inbox's fast path); the
 * worker that pops the first one with more left makes it for them, and so
 * on down the line. Without that, a task is left to the parked workers'
 * watchman, which parks without a limit unless a submit bet on a running
 * worker since (round 0 failed so). The watchman keeps its own 1 ms limit
 * here: such a bet (a tiny task just ran, so its worker may be back soon)
 * may leave one task to it by design, as in
 * test_thread_pool_idle_worker_takes_task_behind_busy. The burst needs a
 * spinner: it follows a task's result, whose worker then spins for about
 * 30 us; if it has already parked, the submits decide under the lock, and
 * the outcome is the same.
 */
START_TEST(test_thread_pool_burst_behind_spinner_all_start)
{
    cf_test_watch_ns = 1000000; /* the default (another test may stretch it) */
    executor_t *ex = new_tp((executor_options_t){.max_workers = 4});
    ck_assert(all_start_together(ex, 4)); /* four threads exist */
    for (int round = 0; round < 100; round++) {
        struct timespec ts = {0, 2000000L}; /* the workers park */
        nanosleep(&ts, NULL);
        int64_t x = round, v = -1;
        future_t *f = submit_ok(ex, t_add1, &x, sizeof(x));
        ck_assert_int_eq(future_result_i64(f, 10.0, &v), 0);
        future_unref(f);
        ck_assert_msg(all_start_together(ex, 3), "round %d: not every task started",
                      round);
    }
    executor_free(ex);
}
END_TEST

/* W11's shape: a task that submits a subtask to its own pool and waits. */
static executor_t *nest_ex;

static void t_nest(task_t *t)
{
    const int64_t *x = task_arg(t, NULL);
    future_t *f = executor_submit(nest_ex, t_add1, x, sizeof(*x));
    int64_t v = -1;
    int rc = f ? future_result_i64(f, 10.0, &v) : FUT_ENOMEM;
    future_unref(f);
    if (rc != 0)
        task_raise(t, ETIMEDOUT, "the subtask did not run within 10 s");
    else
        task_return_i64(t, v + 1);
}

/*
 * A subtask submitted by a running task starts on the idle worker at once,
 * even while tiny tasks flow (when a submit may count on a running worker
 * coming back: here that worker is the one waiting). The watchman's limit
 * is stretched to 60 s, so a subtask left to it fails the round.
 */
START_TEST(test_thread_pool_subtask_never_waits_for_timer)
{
    cf_test_watch_ns = 60 * 1000000000LL;
    nest_ex = new_tp((executor_options_t){.max_workers = 2});
    for (int64_t round = 0; round < 2000; round++) {
        int64_t v = -1;
        future_t *f = submit_ok(nest_ex, t_nest, &round, sizeof(round));
        ck_assert_int_eq(future_result_i64(f, 30.0, &v), 0);
        ck_assert_int_eq(v, round + 2);
        future_unref(f);
    }
    executor_free(nest_ex);
    nest_ex = NULL;
    cf_test_watch_ns = 1000000; /* back to the default, for CK_FORK=no runs */
}
END_TEST

/* What a done-callback that submits to the pool and waits saw. */
struct cb_nest {
    executor_t *ex;
    int rc;
    int64_t v;
    gate_t done;
};

static void cb_submit_and_wait(future_t *f, void *ud)
{
    (void)f;
    struct cb_nest *c = ud;
    int64_t x = 5;
    future_t *g = executor_submit(c->ex, t_add1, &x, sizeof(x));
    c->rc = g ? future_result_i64(g, 10.0, &c->v) : FUT_ENOMEM;
    future_unref(g);
    gate_open(&c->done);
}

/*
 * A done-callback, run on the worker that finished the task, submits to the
 * same pool and waits: a second thread starts for it (the worker counts
 * itself idle early, for resubmitting callers, but not while callbacks run
 * on it; before, the subtask waited for the very thread waiting on it).
 */
START_TEST(test_thread_pool_callback_submits_and_waits)
{
    executor_t *ex = new_tp((executor_options_t){.max_workers = 2});
    gate_t hold;
    gate_init(&hold);
    struct cb_nest c = {.ex = ex, .rc = -1};
    gate_init(&c.done);
    future_t *f = submit_ok(ex, t_wait_gate, &hold, 0);
    ck_assert(gate_wait_for_waiters(&hold, 1)); /* one thread, in the task */
    ck_assert_int_eq(future_add_done_callback(f, cb_submit_and_wait, &c), 0);
    gate_open(&hold);
    ck_assert(gate_wait(&c.done, 30.0));
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(c.v, 6);
    ck_assert_int_eq(result_i64(f), 1);
    future_unref(f);
    executor_free(ex);
    gate_destroy(&hold);
    gate_destroy(&c.done);
}
END_TEST

/* A done-callback that waits for a task another thread submits. */
struct cb_other {
    future_t *g;
    int rc;
    int64_t v;
    gate_t in_cb, submitted, done;
};

static void cb_wait_other(future_t *f, void *ud)
{
    (void)f;
    struct cb_other *c = ud;
    gate_open(&c->in_cb);
    c->rc = gate_wait(&c->submitted, 30.0) ? future_result_i64(c->g, 10.0, &c->v) : -1;
    gate_open(&c->done);
}

static void cb_other_init(struct cb_other *c)
{
    *c = (struct cb_other){.rc = -2};
    gate_init(&c->in_cb);
    gate_init(&c->submitted);
    gate_init(&c->done);
}

/* Waits for cb_wait_other, checks it saw 6, then frees it all, @f and @ex too. */
static void cb_other_finish(struct cb_other *c, future_t *f, executor_t *ex)
{
    ck_assert(gate_wait(&c->done, 60.0));
    ck_assert_int_eq(c->rc, 0);
    ck_assert_int_eq(c->v, 6);
    future_unref(c->g);
    future_unref(f);
    executor_free(ex);
    gate_destroy(&c->in_cb);
    gate_destroy(&c->submitted);
    gate_destroy(&c->done);
}

/*
 * While a worker runs done-callbacks it is not idle: a task submitted from
 * another thread then gets a thread of its own (Python releases the idle
 * semaphore after the callbacks). Before, the worker counted itself idle
 * from the task's end, the submit started no thread and woke nobody, and
 * the callback waited for the thread it ran on (FUT_ETIMEDOUT).
 */
START_TEST(test_thread_pool_callback_waits_for_other_submit)
{
    executor_t *ex = new_tp((executor_options_t){.max_workers = 2});
    gate_t hold;
    gate_init(&hold);
    struct cb_other c;
    cb_other_init(&c);
    future_t *f = submit_ok(ex, t_wait_gate, &hold, 0);
    ck_assert(gate_wait_for_waiters(&hold, 1)); /* one thread, in the task */
    ck_assert_int_eq(future_add_done_callback(f, cb_wait_other, &c), 0);
    gate_open(&hold);
    ck_assert(gate_wait(&c.in_cb, 30.0));
    int64_t x = 5;
    c.g = submit_ok(ex, t_add1, &x, sizeof(x));
    gate_open(&c.submitted);
    cb_other_finish(&c, f, ex);
    gate_destroy(&hold);
}
END_TEST

/* The worker held between counting itself idle and its callbacks (test hook). */
extern void (*cf_test_tp_idle_hook)(void);
static gate_t idle_reached, idle_release;

static void hold_idle_worker(void)
{
    cf_test_tp_idle_hook = NULL; /* once */
    gate_open(&idle_reached);
    gate_wait(&idle_release, 30.0);
}

/*
 * The narrow gap: a task submitted while the worker that just finished
 * counts itself idle (so no thread starts for it), then
 * executor_shutdown(wait=false), then that worker's done-callback waits for
 * the task. Queued tasks still run after shutdown, as in Python: the
 * callback's start now starts a thread for it. Before, no thread started
 * once the pool was stopping and the callback waited for ever (here:
 * FUT_ETIMEDOUT after 10 s), and so did executor_free.
 */
START_TEST(test_thread_pool_callback_waits_for_task_queued_before_shutdown)
{
    executor_t *ex = new_tp((executor_options_t){.max_workers = 2});
    gate_init(&idle_reached);
    gate_init(&idle_release);
    struct cb_other c;
    cb_other_init(&c);
    gate_open(&c.submitted); /* c.g is set before the callback can run */
    gate_t hold;
    gate_init(&hold);
    future_t *f = submit_ok(ex, t_wait_gate, &hold, 0);
    ck_assert(gate_wait_for_waiters(&hold, 1)); /* one thread, in the task */
    ck_assert_int_eq(future_add_done_callback(f, cb_wait_other, &c), 0);
    cf_test_tp_idle_hook = hold_idle_worker;
    gate_open(&hold);
    ck_assert(gate_wait(&idle_reached, 30.0)); /* the worker counts itself idle */
    int64_t x = 5;
    c.g = submit_ok(ex, t_add1, &x, sizeof(x)); /* no thread starts for it */
    executor_shutdown(ex, false, false);
    gate_open(&idle_release);
    cb_other_finish(&c, f, ex);
    gate_destroy(&hold);
    gate_destroy(&idle_reached);
    gate_destroy(&idle_release);
}
END_TEST

/* lib/executor.c, test builds: runs between the two sums of a count. */
extern void (*cf_test_stats_hook)(void);

/* What the stats hook does, at its @at-th call: tasks run and come in. */
static struct {
    executor_t *ex;
    int calls, at;
    gate_t *open;       /* opened at that call: the held task returns */
    future_t *wait[5];  /* ... and these are waited for */
    gate_t *hold;       /* then a task held here starts */
    future_t *more[5];  /* and 4 more are queued behind it ([4]: the held one) */
} sh_;

static void stats_churn(void)
{
    if (++sh_.calls != sh_.at)
        return;
    cf_test_stats_hook = NULL; /* the submits below count too */
    gate_open(sh_.open);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(result_i64(sh_.wait[i]), (i ? 2 : 1));
    if (!sh_.hold)
        return;
    sh_.more[4] = submit_ok(sh_.ex, t_wait_gate, sh_.hold, 0);
    ck_assert(gate_wait_for_waiters(sh_.hold, 1));
    static const int64_t one = 1; /* read after this returns */
    for (int i = 0; i < 4; i++)
        sh_.more[i] = submit_ok(sh_.ex, t_add1, &one, sizeof(one));
}

/*
 * executor_stats never reports a count that was never there, even when
 * its reader is held between the two sums a count is made of (the test
 * hook stands for a preemption while tasks stream through): with one
 * worker and max_queue 4, queued stays at most 4 and running at most 1.
 * Before, the reader gave queued 9 and running 5 here (under load, a
 * storm's poller saw 7 running on 2 threads and queued over max_queue).
 */
START_TEST(test_thread_pool_stats_never_over_report)
{
    executor_t *ex = new_tp((executor_options_t){.max_workers = 1, .max_queue = 4});
    gate_t g1, g2;
    gate_init(&g1);
    gate_init(&g2);
    memset(&sh_, 0, sizeof(sh_));
    sh_.ex = ex;
    sh_.wait[0] = submit_ok(ex, t_wait_gate, &g1, 0);
    ck_assert(gate_wait_for_waiters(&g1, 1));
    int64_t x = 1;
    for (int i = 1; i < 5; i++)
        sh_.wait[i] = submit_ok(ex, t_add1, &x, sizeof(x)); /* the queue is full */
    /* 1st call: the queued count's */
    sh_.at = 1, sh_.open = &g1, sh_.hold = &g2;
    cf_test_stats_hook = stats_churn;
    executor_stats_t st = stats_of(ex);
    ck_assert_msg(st.queued <= 4, "queued %zu over max_queue 4", st.queued);
    ck_assert_msg(st.running <= 1, "running %zu on 1 thread", st.running);
    for (int i = 0; i < 5; i++)
        future_unref(sh_.wait[i]);
    /* 2nd call: the running count's */
    memcpy(sh_.wait, sh_.more, sizeof(sh_.wait));
    sh_.wait[0] = sh_.more[4], sh_.wait[4] = sh_.more[0];
    sh_.calls = 0, sh_.at = 2, sh_.open = &g2, sh_.hold = NULL;
    cf_test_stats_hook = stats_churn;
    st = stats_of(ex);
    ck_assert_msg(st.queued <= 4, "queued %zu over max_queue 4", st.queued);
    ck_assert_msg(st.running <= 1, "running %zu on 1 thread", st.running);
    cf_test_stats_hook = NULL;
    for (int i = 0; i < 5; i++)
        future_unref(sh_.wait[i]);
    executor_free(ex);
    gate_destroy(&g1);
    gate_destroy(&g2);
}
END_TEST

/* SHUT-08: three held tasks give three threads; after shutdown none is left */
START_TEST(test_thread_pool_threads_terminate)
{
    int base = thread_baseline();
    executor_t *ex = new_tp((executor_options_t){.max_workers = 5});
    gate_t g;
    gate_init(&g);
    future_t *fs[3];
    for (int i = 0; i < 3; i++)
        fs[i] = submit_ok(ex, t_wait_gate, &g, 0);
    ck_assert(gate_wait_for_waiters(&g, 3));
    ck_assert_int_eq(count_threads(), base + 3);
    gate_open(&g);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    ck_assert(wait_threads(base)); /* a joined thread leaves /proc a moment later */
    ck_assert_int_eq(count_threads(), base);
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.workers, 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(result_i64(fs[i]), 1);
        future_unref(fs[i]);
    }
    executor_free(ex);
    gate_destroy(&g);
}
END_TEST

/*
 * A deadline fires while the task still runs: future_result gives
 * FUT_EDEADLINE before the task is released; the task then sees
 * task_should_stop(), and its late result is dropped (freed, not leaked).
 */
struct late {
    gate_t g;
    _Atomic bool saw_stop;
    gate_t finished;
};

static void t_late(task_t *t)
{
    struct late *l = (struct late *)task_arg(t, NULL);
    gate_wait(&l->g, T_LONG);
    atomic_store(&l->saw_stop, task_should_stop(t));
    int64_t *p = malloc(sizeof(*p));
    *p = 1;
    task_return(t, p, sizeof(*p), counting_free);
    gate_open(&l->finished);
}

static bool frees_is_one(void *arg)
{
    (void)arg;
    return atomic_load(&n_frees) == 1;
}

START_TEST(test_thread_pool_deadline_while_running)
{
    atomic_store(&n_frees, 0);
    executor_t *ex = new_tp((executor_options_t){.max_workers = 1});
    struct late l;
    gate_init(&l.g);
    gate_init(&l.finished);
    atomic_init(&l.saw_stop, false);
    double t0 = now_s();
    future_t *f =
        executor_submit_with(ex, t_late, &l, 0, &(submit_options_t){.timeout = 0.1});
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), FUT_EDEADLINE);
    ck_assert(now_s() - t0 < T_LONG / 2);
    ck_assert(!atomic_load(&l.saw_stop));
    executor_stats_t st = stats_of(ex);
    ck_assert_uint_eq(st.running, 1); /* the task still holds its thread */
    ck_assert_uint_eq(st.idle, 0);    /* (the header says so) */
    ck_assert(future_done(f));
    gate_open(&l.g);
    ck_assert(gate_wait(&l.finished, T_LONG));
    ck_assert(eventually(frees_is_one, NULL, T_LONG));
    ck_assert(atomic_load(&l.saw_stop));
    ck_assert_int_eq(future_result(f, 0, NULL, NULL), FUT_EDEADLINE);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    st = stats_of(ex);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.completed, 0);
    future_unref(f);
    executor_free(ex);
    gate_destroy(&l.g);
    gate_destroy(&l.finished);
}
END_TEST

/* ========================================================== concurrency */

static bool is_running(void *f)
{
    return future_running(f);
}

/* future_cancel on a running task returns false and makes task_should_stop() true */
START_TEST(test_thread_pool_cancel_running_requests_stop)
{
    executor_t *ex = new_tp((executor_options_t){.max_workers = 1});
    double t0 = now_s();
    future_t *f = submit_ok(ex, t_until_stop, NULL, 0);
    ck_assert(eventually(is_running, f, T_LONG));
    ck_assert(!future_cancel(f));
    ck_assert_int_eq(result_i64(f), 7);
    ck_assert(!future_cancelled(f));
    /* t_until_stop spins for T_LONG unless it was told to stop. */
    ck_assert(now_s() - t0 < T_LONG / 2);
    future_unref(f);
    executor_free(ex);
}
END_TEST

/* TPE-05: a task forks a child that calls exit(0): it exits 0, promptly */
static void t_fork_exit(task_t *t)
{
    pid_t pid = fork();
    if (pid == 0) {
        in_forked_child = 1;
        exit(0);
    }
    if (pid < 0) {
        task_raise(t, errno, "fork failed");
        return;
    }
    task_return_i64(t, wait_child(pid, T_LONG));
}

START_TEST(test_thread_pool_fork_from_task)
{
    int base = thread_baseline();
    executor_t *ex = new_tp((executor_options_t){.max_workers = 2});
    double t0 = now_s();
    future_t *f = submit_ok(ex, t_fork_exit, NULL, 0);
    int64_t status = result_i64(f);
    ck_assert_msg(status >= 0, "the child did not exit in time");
    ck_assert(WIFEXITED((int)status));
    ck_assert_int_eq(WEXITSTATUS((int)status), 0);
    ck_assert(now_s() - t0 < 10.0);
    future_unref(f);
    executor_free(ex);
    ck_assert(wait_threads(base)); /* a joined thread leaves /proc a moment later */
    ck_assert_int_eq(count_threads(), base);
}
END_TEST

/*
 * TPE-04 [analog]: fork from the main thread while the pool's threads are
 * busy resubmitting themselves; the child can use the library (a new pool)
 * and exits promptly: no library lock held across fork blocks it.
 */
struct busy {
    executor_t *ex;
    _Atomic bool stop;
    _Atomic int runs;
};

static void t_resubmit(task_t *t)
{
    struct busy *b = (struct busy *)task_arg(t, NULL);
    atomic_fetch_add(&b->runs, 1);
    if (!atomic_load(&b->stop))
        future_unref(executor_submit(b->ex, t_resubmit, b, 0));
}

static bool busy_started(void *p)
{
    struct busy *b = p;
    return atomic_load(&b->runs) > 100;
}

static int child_uses_library(void)
{
    /*
     * TSan dies if a multi-threaded fork's child starts a thread, and ASan's
     * allocator may be locked by a parent thread at the fork (its own locks,
     * not ours): under them the child only exits.
     */
    if (UNDER_TSAN || UNDER_ASAN)
        return 0;
    executor_t *ex = thread_pool_executor_new(NULL);
    if (!ex)
        return 1;
    int64_t v = 1, r = 0;
    future_t *f = executor_submit(ex, t_add1, &v, sizeof(v));
    int rc = f ? future_result_i64(f, T_LONG, &r) : -1;
    future_unref(f);
    executor_free(ex);
    return rc == 0 && r == 2 ? 0 : 2;
}

START_TEST(test_thread_pool_fork_while_busy)
{
    int base = thread_baseline();
    struct busy b;
    b.ex = new_tp((executor_options_t){.max_workers = 4});
    atomic_init(&b.stop, false);
    atomic_init(&b.runs, 0);
    for (int i = 0; i < 4; i++)
        future_unref(submit_ok(b.ex, t_resubmit, &b, 0));
    ck_assert(eventually(busy_started, &b, T_LONG));
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            in_forked_child = 1;
            exit(child_uses_library());
        }
        int status = wait_child(pid, T_LONG);
        ck_assert_msg(status >= 0, "child %d hung", i);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
    }
    atomic_store(&b.stop, true);
    executor_free(b.ex);
    ck_assert(wait_threads(base)); /* a joined thread leaves /proc a moment later */
    ck_assert_int_eq(count_threads(), base);
}
END_TEST

/* executor_shutdown(wait=true) from the pool's own task returns at once */
static void t_shutdown_self(task_t *t)
{
    executor_t *ex = (executor_t *)task_arg(t, NULL);
    task_return_i64(t, executor_shutdown(ex, true, false));
}

START_TEST(test_thread_pool_shutdown_from_own_task)
{
    int base = thread_baseline();
    executor_t *ex = new_tp((executor_options_t){.max_workers = 2});
    future_t *f = submit_ok(ex, t_shutdown_self, ex, 0);
    ck_assert_int_eq(result_i64(f), 0);
    future_unref(f);
    int64_t v = 1;
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, t_add1, &v, sizeof(v)));
    ck_assert_int_eq(errno, ESHUTDOWN);
    executor_free(ex);
    ck_assert(wait_threads(base)); /* a joined thread leaves /proc a moment later */
    ck_assert_int_eq(count_threads(), base);
}
END_TEST

/*
 * executor_free from one of the pool's own tasks: it shuts the pool down
 * without waiting; queued tasks still run; the pool frees itself when its last
 * thread exits (ASan/LSan check the memory, the thread count the threads).
 */
static void t_free_self(task_t *t)
{
    executor_t *ex = (executor_t *)task_arg(t, NULL);
    executor_free(ex);
    task_return_i64(t, 1);
}

START_TEST(test_thread_pool_free_from_own_task)
{
    for (int with_watcher = 0; with_watcher < 2; with_watcher++) {
        int base = thread_baseline();
        executor_t *ex = new_tp((executor_options_t){.max_workers = 1});
        if (with_watcher) {
            /* Start the deadline watcher thread too. */
            int64_t v0 = 1;
            future_t *d = executor_submit_with(ex, t_add1, &v0, sizeof(v0),
                                               &(submit_options_t){.timeout = T_LONG});
            ck_assert_ptr_nonnull(d);
            ck_assert_int_eq(result_i64(d), 2);
            future_unref(d);
        }
        gate_t g;
        gate_init(&g);
        future_t *hold = submit_ok(ex, t_wait_gate, &g, 0);
        future_t *f = submit_ok(ex, t_free_self, ex, 0);
        int64_t v[3] = {10, 20, 30};
        future_t *q[3];
        for (int i = 0; i < 3; i++)
            q[i] = submit_ok(ex, t_add1, &v[i], sizeof(v[i]));
        /* From here on the test must not touch ex: it may be gone. */
        gate_open(&g);
        ck_assert_int_eq(result_i64(hold), 1);
        ck_assert_int_eq(result_i64(f), 1);
        for (int i = 0; i < 3; i++) {
            ck_assert_int_eq(result_i64(q[i]), v[i] + 1);
            future_unref(q[i]);
        }
        future_unref(hold);
        future_unref(f);
        ck_assert(wait_threads(base));
        gate_destroy(&g);
    }
}
END_TEST

static bool one_worker(void *arg)
{
    executor_stats_t st;
    executor_stats(arg, &st);
    return st.workers == 1;
}

static bool pool_broken(void *arg)
{
    /* A broken pool refuses work: FUT_EBROKEN. */
    int64_t v = 0;
    future_t *f = executor_submit(arg, t_add1, &v, sizeof(v));
    if (f) {
        const future_error_t *e;
        future_exception(f, T_LONG, &e); /* done, however */
        future_unref(f);
        return false;
    }
    return errno == -FUT_EBROKEN || errno == FUT_EBROKEN;
}

/* Spins until its limit passes (task_should_stop), at most 10 s; returns 1. */
static void t_until_limit(task_t *t)
{
    double end = now_s() + 10;
    while (!task_should_stop(t) && now_s() < end)
        sched_yield();
    task_return_i64(t, 1);
}

/*
 * executor_free from a task while another task runs past its limit without
 * looking at task_should_stop: the limit still fails that task on time (the
 * watcher stays until no task can run). The watcher left at once, and the
 * future failed only when the task returned. Found by review.
 */
static _Atomic bool left_gate;

/* arg: a gate_t*; waits for it, then says so (left_gate), returns i64 1. */
static void t_wait_gate_mark(task_t *t)
{
    t_wait_gate(t);
    atomic_store(&left_gate, true);
}

static bool gate_left(void *arg)
{
    (void)arg;
    return atomic_load(&left_gate);
}

START_TEST(test_thread_pool_free_from_task_keeps_deadlines)
{
    int base = thread_baseline();
    executor_t *ex = new_tp((executor_options_t){.max_workers = 2});
    gate_t g;
    gate_init(&g);
    atomic_store(&left_gate, false);
    future_t *a = executor_submit_with(ex, t_wait_gate_mark, &g, 0,
                                       &(submit_options_t){.timeout = 0.3});
    ck_assert_ptr_nonnull(a);
    ck_assert(gate_wait_for_waiters(&g, 1));
    future_t *f = submit_ok(ex, t_free_self, ex, 0);
    /* From here on the test must not touch ex: it may be gone. */
    ck_assert_int_eq(result_i64(f), 1);
    const future_error_t *e = NULL;
    ck_assert_int_eq(future_exception(a, 5.0, &e), 0); /* not FUT_ETIMEDOUT */
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, FUT_EDEADLINE);
    gate_open(&g);
    ck_assert(eventually(gate_left, NULL, T_LONG)); /* the task is out of gate_wait */
    future_unref(a);
    future_unref(f);
    ck_assert(wait_threads(base));
    gate_destroy(&g);
}
END_TEST

/*
 * Workers that ran tasks with a limit leave in a shrink and are freed (the
 * next executor_set_max_workers joins them): the deadline watcher must not
 * walk them (ASan: heap use after free; a reused block could cut the list
 * or close it into a loop), and later limits still fire. Found by review.
 */
START_TEST(test_thread_pool_shrink_frees_watched_workers)
{
    executor_t *ex = new_tp((executor_options_t){.max_workers = 4});
    gate_t g;
    gate_init(&g);
    future_t *f[4];
    for (int i = 0; i < 4; i++) {
        f[i] = executor_submit_with(ex, t_wait_gate, &g, 0,
                                    &(submit_options_t){.timeout = T_LONG});
        ck_assert_ptr_nonnull(f[i]);
    }
    ck_assert(gate_wait_for_waiters(&g, 4)); /* four workers, each watched once */
    gate_open(&g);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(result_i64(f[i]), 1);
        future_unref(f[i]);
    }
    ck_assert_int_eq(executor_set_max_workers(ex, 1), 0); /* three leave */
    ck_assert(eventually(one_worker, ex, T_LONG));
    ck_assert_int_eq(executor_set_max_workers(ex, 1), 0); /* and are freed */
    for (int i = 0; i < 3; i++) {
        future_t *d = executor_submit_with(ex, t_until_limit, NULL, 0,
                                           &(submit_options_t){.timeout = 0.05});
        const future_error_t *e = NULL;
        ck_assert_int_eq(future_exception(d, T_LONG, &e), 0);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->status, FUT_EDEADLINE);
        future_unref(d);
    }
    executor_free(ex);
    gate_destroy(&g);
}
END_TEST

static void t_fail_second_init(task_t *t)
{
    static _Atomic int calls;
    if (atomic_fetch_add(&calls, 1) % 2 == 1)
        task_raise(t, 5, "the second initializer fails");
}

/*
 * A pool broken by a failed initializer: its other workers park after their
 * spin, as in any idle pool. They took the closed inbox's mark for work and
 * spun on the pool lock at full speed until shutdown. Found by review.
 */
START_TEST(test_thread_pool_broken_pool_workers_park)
{
    executor_t *ex =
        new_tp((executor_options_t){.max_workers = 2, .initializer = t_fail_second_init});
    /* a holds the first worker, so b needs a second, whose initializer fails. */
    gate_t g;
    gate_init(&g);
    future_t *a = executor_submit(ex, t_wait_gate, &g, 0);
    ck_assert_ptr_nonnull(a);
    ck_assert(gate_wait_for_waiters(&g, 1));
    int64_t v = 1;
    future_t *b = executor_submit(ex, t_add1, &v, sizeof(v));
    ck_assert_ptr_nonnull(b);
    ck_assert(eventually(pool_broken, ex, T_LONG));
    gate_open(&g);
    const future_error_t *e;
    future_exception(a, T_LONG, &e); /* done, however */
    future_exception(b, T_LONG, &e);
    /* Half a second of the process's CPU: parked workers take next to none. */
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    double t0 = now_s();
    while (now_s() - t0 < 0.5)
        usleep(50 * 1000);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu =
        (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    ck_assert_msg(cpu < 0.25, "%.3f s of CPU in 0.5 s of a broken, idle pool", cpu);
    future_unref(a);
    future_unref(b);
    executor_free(ex);
    gate_destroy(&g);
}
END_TEST

/* executor_free from a done-callback running on the pool's own thread */
struct freer {
    executor_t *ex;
    gate_t done;
};

static void cb_free(future_t *f, void *ud)
{
    (void)f;
    struct freer *fr = ud;
    executor_free(fr->ex);
    gate_open(&fr->done);
}

START_TEST(test_thread_pool_free_from_callback)
{
    int base = thread_baseline();
    struct freer fr;
    fr.ex = new_tp((executor_options_t){.max_workers = 2});
    gate_init(&fr.done);
    gate_t g;
    gate_init(&g);
    future_t *f = submit_ok(fr.ex, t_wait_gate, &g, 0);
    ck_assert_int_eq(future_add_done_callback(f, cb_free, &fr), 0);
    gate_open(&g); /* the worker completes f and runs cb_free */
    ck_assert(gate_wait(&fr.done, T_LONG));
    ck_assert_int_eq(result_i64(f), 1);
    future_unref(f);
    ck_assert(wait_threads(base));
    gate_destroy(&g);
    gate_destroy(&fr.done);
}
END_TEST

/* GEN-02: many pools created and freed leave no thread behind */
START_TEST(test_thread_pool_no_thread_left)
{
    int base = thread_baseline();
    for (int round = 0; round < 20; round++) {
        executor_t *ex = new_tp((executor_options_t){.max_workers = 3});
        int64_t v[6] = {0, 1, 2, 3, 4, 5};
        future_t *fs[6];
        for (int i = 0; i < 6; i++)
            fs[i] = submit_ok(ex, t_add1, &v[i], sizeof(v[i]));
        if (round % 2) {
            future_t *d = executor_submit_with(ex, t_add1, &v[0], sizeof(v[0]),
                                               &(submit_options_t){.timeout = 5});
            ck_assert_ptr_nonnull(d);
            future_unref(d);
        }
        executor_free(ex);
        for (int i = 0; i < 6; i++) {
            ck_assert(future_done(fs[i]));
            future_unref(fs[i]);
        }
        ck_assert(wait_threads(base)); /* a joined thread leaves /proc a moment later */
        ck_assert_int_eq(count_threads(), base);
    }
}
END_TEST

/*
 * submit_options_t.queue: the future counts in the queue from before its
 * task can end. A consumer who sees the task's effect while the submit
 * has not yet returned waits for the future; it found the queue empty
 * (FUT_EOF) when the future joined after the submit. A failed submit
 * gives its place back at once.
 */
extern void (*cf_test_submitted_hook)(void); /* lib/executor.c, test builds */

static gate_t cq_checked;
static _Atomic int cq_seen = 1;

static void cq_hold_submitter(void)
{
    ck_assert(gate_wait(&cq_checked, T_LONG)); /* the task looked first */
}

static void t_look_in_queue(task_t *t)
{
    completion_queue_t *q = *(completion_queue_t *const *)task_arg(t, NULL);
    future_t *got = NULL;
    atomic_store(&cq_seen, completion_queue_next(q, 0, &got));
    gate_open(&cq_checked);
    task_return_i64(t, 7);
}

START_TEST(test_thread_pool_queue_counts_future_before_submit_returns)
{
    int base = thread_baseline();
    gate_init(&cq_checked);
    completion_queue_t *q = completion_queue_new();
    ck_assert_ptr_nonnull(q);
    executor_t *ex = new_tp((executor_options_t){.max_workers = 1});
    cf_test_submitted_hook = cq_hold_submitter;
    future_t *f = executor_submit_with(ex, t_look_in_queue, &q, sizeof(q),
                                       &(submit_options_t){.queue = q});
    cf_test_submitted_hook = NULL;
    ck_assert_ptr_nonnull(f);
    int seen = atomic_load(&cq_seen);
    ck_assert_int_eq(seen, FUT_ETIMEDOUT); /* FUT_EOF before */
    future_t *got = NULL;
    ck_assert_int_eq(completion_queue_next(q, T_LONG, &got), 0);
    ck_assert_ptr_eq(got, f);
    ck_assert_int_eq(result_i64(got), 7);
    future_unref(got);
    future_unref(f);

    /* A submit that fails leaves nothing pending: FUT_EOF at once. */
    executor_shutdown(ex, true, false);
    errno = 0;
    ck_assert_ptr_null(executor_submit_with(ex, t_look_in_queue, &q, sizeof(q),
                                            &(submit_options_t){.queue = q}));
    ck_assert_int_eq(errno, -FUT_ESHUTDOWN);
    ck_assert_int_eq(completion_queue_next(q, T_LONG, &got), FUT_EOF);
    executor_free(ex);
    completion_queue_free(q);
    gate_destroy(&cq_checked);
    ck_assert(wait_threads(base));
}
END_TEST

/*
 * future_within whose source completes after its callback is added but
 * before its timer is armed: within_done could not disarm the timer, so
 * future_within does, and nothing holds the source (its result is freed as
 * soon as the caller's references go). The armed timer held it, and the
 * result, for the whole timeout (found by review).
 */
extern void (*cf_test_within_hook)(void); /* lib/compose.c, test builds */

static future_t *within_source; /* the promise the hook completes */

static void within_complete_now(void)
{
    int64_t *v = malloc(sizeof(*v));
    *v = 3;
    ck_assert_int_eq(future_set_result(within_source, v, sizeof(*v), counting_free), 0);
}

START_TEST(test_within_source_done_before_timer_armed)
{
    atomic_store(&n_frees, 0);
    future_t *p = within_source = future_new();
    cf_test_within_hook = within_complete_now;
    future_t *r = future_within(p, 3600, false);
    cf_test_within_hook = NULL;
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(result_i64(r), 3);
    future_unref(r);
    future_unref(p);
    int frees = atomic_load(&n_frees);
    ck_assert_int_eq(frees, 1); /* 0: a 3600 s timer held it */
}
END_TEST

/*
 * A worker that leaves in a shrink stops counting as idle in the same step:
 * a grow while it is still on its way out starts a thread for a task
 * queued behind a busy worker. It counted as idle until it reached its
 * thread's end, so the grow started none and the task waited for the busy
 * one (found by review; a test hook holds the leaving worker there).
 */
extern void (*cf_test_tp_leave_hook)(void); /* lib/thread/pool.c, test builds */

static gate_t leave_gate;
static _Atomic int leaving;

static void hold_leaving_worker(void)
{
    cf_test_tp_leave_hook = NULL; /* once */
    atomic_store(&leaving, 1);
    gate_wait(&leave_gate, 1.0); /* bounded: the grow joins this thread */
}

static bool worker_leaving(void *arg)
{
    (void)arg;
    return atomic_load(&leaving) == 1;
}

START_TEST(test_thread_pool_grow_while_worker_leaves_starts_thread)
{
    int base = thread_baseline();
    gate_t ga, gb;
    gate_init(&ga);
    gate_init(&gb);
    gate_init(&leave_gate);
    atomic_store(&leaving, 0);
    executor_t *ex = new_tp((executor_options_t){.max_workers = 2});
    future_t *a = submit_ok(ex, t_wait_gate, &ga, 0);
    future_t *b = submit_ok(ex, t_wait_gate, &gb, 0);
    ck_assert(gate_wait_for_waiters(&ga, 1));
    ck_assert(gate_wait_for_waiters(&gb, 1));
    ck_assert_int_eq(executor_set_max_workers(ex, 1), 0);
    cf_test_tp_leave_hook = hold_leaving_worker;
    gate_open(&ga); /* a's worker comes back, finds one too many, leaves */
    ck_assert(eventually(worker_leaving, NULL, T_LONG));
    int64_t v = 1;
    future_t *t = submit_ok(ex, t_add1, &v, sizeof(v)); /* queued: b is busy */
    ck_assert_int_eq(executor_set_max_workers(ex, 2), 0);
    int64_t r = 0;
    int rc = future_result_i64(t, 5.0, &r); /* b still runs: a new thread runs t */
    gate_open(&gb);
    gate_open(&leave_gate);
    ck_assert_int_eq(rc, 0); /* FUT_ETIMEDOUT before */
    ck_assert_int_eq(r, 2);
    ck_assert_int_eq(result_i64(a), 1);
    ck_assert_int_eq(result_i64(b), 1);
    future_unref(a);
    future_unref(b);
    future_unref(t);
    executor_free(ex);
    gate_destroy(&ga);
    gate_destroy(&gb);
    gate_destroy(&leave_gate);
    ck_assert(wait_threads(base));
}
END_TEST

/* ================================================================ suite */

/*
 * future_cancel on a queued task whose done-callback frees the executor:
 * the cancel's own bookkeeping must not touch the freed executor (ASan).
 */
struct cancel_free {
    executor_t *ex;
    gate_t *gate;
    int runs;
};

static void cb_open_and_free(future_t *f, void *ud)
{
    struct cancel_free *cf = ud;
    (void)f;
    cf->runs++;
    gate_open(cf->gate);
    executor_free(cf->ex); /* not one of the pool's threads: waits, then frees */
}

START_TEST(test_thread_pool_cancel_callback_frees_executor)
{
    int base = thread_baseline();
    gate_t g;
    gate_init(&g);
    executor_t *ex = new_tp((executor_options_t){.max_workers = 1});
    future_t *busy = submit_ok(ex, t_wait_gate, &g, 0);
    ck_assert(gate_wait_for_waiters(&g, 1));
    int64_t v = 1;
    future_t *queued = submit_ok(ex, t_add1, &v, sizeof(v));
    struct cancel_free cf = {ex, &g, 0};
    ck_assert_int_eq(future_add_done_callback(queued, cb_open_and_free, &cf), 0);
    ck_assert(future_cancel(queued));
    ck_assert_int_eq(cf.runs, 1);
    int64_t r = 0;
    ck_assert_int_eq(future_result_i64(busy, 0, &r), 0); /* free waited for it */
    ck_assert_int_eq(r, 1);
    ck_assert_int_eq(future_result(queued, 0, NULL, NULL), FUT_ECANCELLED);
    future_unref(busy);
    future_unref(queued);
    gate_destroy(&g);
    ck_assert(wait_threads(base));
}
END_TEST

/*
 * Two workers each run tasks with a limit, round after round: every worker
 * enters the deadline watcher's list once (a worker listed twice made a
 * cycle there, and the pool hung).
 */
static pthread_barrier_t limit_bar;

static void t_meet_with_limit(task_t *t)
{
    pthread_barrier_wait(&limit_bar);
    task_return_i64(t, 1);
}

START_TEST(test_thread_pool_deadline_rounds)
{
    int base = thread_baseline();
    pthread_barrier_init(&limit_bar, NULL, 2);
    executor_t *ex = new_tp((executor_options_t){.max_workers = 2});
    submit_options_t so = {.timeout = 60}; /* never due: the watcher only scans */
    for (int round = 0; round < 5; round++) {
        future_t *a = executor_submit_with(ex, t_meet_with_limit, NULL, 0, &so);
        future_t *b = executor_submit_with(ex, t_meet_with_limit, NULL, 0, &so);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(future_result(a, T_LONG, NULL, NULL), 0);
        ck_assert_int_eq(future_result(b, T_LONG, NULL, NULL), 0);
        future_unref(a);
        future_unref(b);
    }
    executor_free(ex);
    pthread_barrier_destroy(&limit_bar);
    ck_assert(wait_threads(base));
}
END_TEST

extern void (*cf_test_publish_hook)(void); /* lib/future.c, test builds */
int cf_future_set_running(future_t *f);    /* lib/future.c: the notify, without */
                                           /* the lock future_cancel holds here */
static future_t *notify_f;
static int notify_first = 99;

/* Runs in future_cancel between its CAS to CANCELLED and its publish. */
static void notify_in_cancel(void)
{
    if (notify_first == 99)
        notify_first = cf_future_set_running(notify_f);
}

/*
 * A notify that lands between future_cancel's CAS and its publish is kept:
 * the publish used to store the state without the NOTIFIED mark, so a
 * second notify returned 0 instead of FUT_ESTATE (Python's RuntimeError).
 */
START_TEST(test_future_cancel_keeps_notified)
{
    notify_f = future_new();
    ck_assert_ptr_nonnull(notify_f);
    cf_test_publish_hook = notify_in_cancel;
    ck_assert(future_cancel(notify_f));
    cf_test_publish_hook = NULL;
    ck_assert_int_eq(notify_first, 0);
    ck_assert_int_eq(future_set_running_or_notify_cancel(notify_f), FUT_ESTATE);
    future_unref(notify_f);
}
END_TEST

Suite *make_suite(void)
{
    Suite *s = suite_create("thread_pool");

    TCase *tc = new_tcase(s, "core");
    tcase_add_test(tc, test_thread_pool_lazy_threads);
    tcase_add_test(tc, test_thread_pool_passes_pointer);
    tcase_add_test(tc, test_thread_pool_idle_thread_reuse);
    tcase_add_test(tc, test_thread_pool_no_stale_references);
    tcase_add_test(tc, test_thread_pool_map_frees_yielded);
    tcase_add_test(tc, test_thread_pool_queue_counts_future_before_submit_returns);
    tcase_add_test(tc, test_within_source_done_before_timer_armed);
    tcase_add_test(tc, test_thread_pool_grow_while_worker_leaves_starts_thread);
    tcase_add_test(tc, test_thread_pool_map_submits_eagerly);
    tcase_add_test(tc, test_thread_pool_thread_names);
    tcase_add_test(tc, test_thread_pool_thread_names_truncated);
    tcase_add_test(tc, test_thread_pool_thread_names_default);
    tcase_add_test(tc, test_thread_pool_workers_batch_policy);
    tcase_add_test(tc, test_future_cancel_keeps_notified);

    tc = new_tcase(s, "limits");
    tcase_add_test(tc, test_thread_pool_default_max_workers);
    tcase_add_test(tc, test_thread_pool_saturation);
    tcase_add_test(tc, test_thread_pool_idle_worker_takes_task_behind_busy);
    tcase_add_test(tc, test_thread_pool_short_task_never_waits_for_timer);
    tcase_add_test(tc, test_thread_pool_burst_behind_spinner_all_start);
    tcase_add_test(tc, test_thread_pool_subtask_never_waits_for_timer);
    tcase_add_test(tc, test_thread_pool_callback_submits_and_waits);
    tcase_add_test(tc, test_thread_pool_callback_waits_for_other_submit);
    tcase_add_test(tc, test_thread_pool_callback_waits_for_task_queued_before_shutdown);
    tcase_add_test(tc, test_thread_pool_threads_terminate);
    tcase_add_test(tc, test_thread_pool_stats_never_over_report);
    tcase_add_test(tc, test_thread_pool_deadline_while_running);
    tcase_add_test(tc, test_thread_pool_deadline_rounds);

    tc = new_tcase(s, "concurrency");
    tcase_add_test(tc, test_thread_pool_cancel_running_requests_stop);
    tcase_add_test(tc, test_thread_pool_fork_from_task);
    tcase_add_test(tc, test_thread_pool_fork_while_busy);
    tcase_add_test(tc, test_thread_pool_shutdown_from_own_task);
    tcase_add_test(tc, test_thread_pool_free_from_own_task);
    tcase_add_test(tc, test_thread_pool_free_from_callback);
    tcase_add_test(tc, test_thread_pool_free_from_task_keeps_deadlines);
    tcase_add_test(tc, test_thread_pool_shrink_frees_watched_workers);
    tcase_add_test(tc, test_thread_pool_broken_pool_workers_park);
    tcase_add_test(tc, test_thread_pool_cancel_callback_frees_executor);
    tcase_add_test(tc, test_thread_pool_no_thread_left);
    return s;
}
