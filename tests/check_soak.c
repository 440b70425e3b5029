/*
 * check_soak.c: the thread-pool soak (issue 8).
 *
 * Four threads share one pool for SOAK_SECONDS (2 by default; `make soak`
 * runs it longer). Each works in rounds of ROUND jobs: quick results,
 * raises, tasks with their own 1 ms limit that run until told to stop, and
 * jobs whose done-callback submits a child job. Right after submitting, a
 * thread cancels about one job in five. Every job counts its side effects
 * with atomics: task starts, task returns, callback runs. Once a round is
 * quiet (every task returned, every callback ran), each job must have
 * completed exactly once with the outcome its kind and its cancel allow:
 * a cancel that returned true means the task never ran; one that returned
 * false means it ran. None lost, none twice. Each round's futures also go
 * through as_completed, which must yield each of them exactly once. At the
 * end no thread is left.
 *
 * test_soak_thread_pool_endings (TCase `concurrency`): two submitters
 * while the pool is shut down, with or without cancel_futures, breaks or
 * is resized; every accepted task ran once or was cancelled or broken.
 *
 * The process-pool soak (TCase `process`): SOAK_TASKS tasks (20,000 by
 * default; `make soak` runs 100,000) on a 2-worker pool that respawns dead
 * workers, while a killer thread SIGKILLs busy workers at random moments.
 * Each task counts its run in a MAP_SHARED array made before the pool (so
 * the workers write where the test reads) and each future counts its
 * done-callback. Every future must complete exactly once (one callback),
 * with its own result after exactly one run, or FUT_EWORKER (SIGKILL) after
 * zero or one run (a worker killed after the count and before its answer);
 * no task runs twice. Afterwards no fd, thread, child, zombie or fork
 * server is left.
 */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define NTHREADS 4
#define ROUND 200 /* jobs per round per thread, children not counted */

enum kind { K_QUICK, K_RAISE, K_DEADLINE, K_SPAWN, K_CHILD };

struct round;

struct job {
    struct round *r;
    enum kind kind;
    int64_t id;
    future_t *f; /* the submitter's reference (children: the callback's) */
    bool cancel_tried, cancelled; /* future_cancel called; what it returned */
    _Atomic int starts;           /* the task began */
    _Atomic int returns;          /* the task function returned */
    _Atomic int cbs;              /* the done-callback ran */
    struct job *child;            /* K_SPAWN: its child's record */
    _Atomic(future_t *) child_f;
};

struct round {
    executor_t *ex;
    struct job jobs[2 * ROUND]; /* [ROUND, 2 * ROUND): children */
    _Atomic long cb_expected, cb_ran;
    _Atomic long started, returned;
};

struct totals {
    long jobs, children, results, raises, deadlines, cancelled, cancel_refused;
};

static void job_task(task_t *t)
{
    struct job *j = (struct job *)task_arg(t, NULL);
    atomic_fetch_add(&j->starts, 1);
    atomic_fetch_add(&j->r->started, 1);
    switch (j->kind) {
    case K_RAISE:
        task_raise(t, (int)(j->id % 1000) + 1, "job %lld", (long long)j->id);
        break;
    case K_DEADLINE:
        /* Runs until its own 1 ms limit passes, or a cancel asks it to stop. */
        while (!task_should_stop(t))
            nanosleep(&(struct timespec){0, 20000}, NULL);
        task_return_i64(t, -1);
        break;
    default:
        task_return_i64(t, j->id * 3);
        break;
    }
    atomic_fetch_add(&j->returns, 1);
    atomic_fetch_add(&j->r->returned, 1);
}

static void job_done(future_t *f, void *ud);

/* Submits @j with its callback; false if the submit failed. */
static bool job_submit(executor_t *ex, struct job *j)
{
    submit_options_t so = {.timeout = j->kind == K_DEADLINE ? 0.001 : 0};
    j->f = executor_submit_with(ex, job_task, j, sizeof(*j), &so);
    if (!j->f)
        return false;
    atomic_fetch_add(&j->r->cb_expected, 1);
    ck_assert_int_eq(future_add_done_callback(j->f, job_done, j), 0);
    return true;
}

static void job_done(future_t *f, void *ud)
{
    struct job *j = ud;
    (void)f;
    atomic_fetch_add(&j->cbs, 1);
    if (j->kind == K_SPAWN && atomic_load(&j->cbs) == 1 && !future_cancelled(f)) {
        /* A callback that submits: from the worker that completed @f. */
        if (job_submit(j->r->ex, j->child))
            atomic_store(&j->child_f, j->child->f);
    }
    atomic_fetch_add(&j->r->cb_ran, 1);
}

/* xorshift64: a fixed sequence per thread; only the timing varies. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static bool round_quiet(void *arg)
{
    struct round *r = arg;
    return atomic_load(&r->cb_ran) == atomic_load(&r->cb_expected) &&
           atomic_load(&r->returned) == atomic_load(&r->started);
}

/* Checks one job once its round is quiet; counts its outcome. */
static void check_job(struct job *j, struct totals *t)
{
    ck_assert_msg(atomic_load(&j->cbs) == 1, "job %lld: callback ran %d times",
                  (long long)j->id, atomic_load(&j->cbs));
    ck_assert_msg(atomic_load(&j->starts) <= 1, "job %lld ran twice", (long long)j->id);
    const future_error_t *err = NULL;
    int64_t v = 0;
    int rc = future_result_i64(j->f, 0, &v);
    if (j->cancelled) {
        ck_assert_int_eq(rc, FUT_ECANCELLED);
        ck_assert_msg(atomic_load(&j->starts) == 0, "job %lld ran after its cancel",
                      (long long)j->id);
        t->cancelled++;
        return;
    }
    ck_assert_msg(atomic_load(&j->starts) == 1, "job %lld never ran (rc %d)",
                  (long long)j->id, rc);
    t->cancel_refused += j->cancel_tried;
    switch (j->kind) {
    case K_RAISE:
        ck_assert_int_eq(rc, FUT_ETASK);
        ck_assert_int_eq(future_exception(j->f, 0, &err), 0);
        ck_assert_int_eq(err->code, (int)(j->id % 1000) + 1);
        t->raises++;
        break;
    case K_DEADLINE:
        /* A cancel while running stops it before its limit: it returns -1. */
        ck_assert_msg(rc == FUT_EDEADLINE || (j->cancel_tried && rc == 0 && v == -1),
                      "deadline job %lld: rc %d", (long long)j->id, rc);
        t->deadlines += rc == FUT_EDEADLINE;
        t->results += rc == 0;
        break;
    default:
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(v, j->id * 3);
        t->results++;
        break;
    }
}

/* The round's jobs through as_completed: each yielded exactly once. */
static void drain_as_completed(struct round *r)
{
    future_t *fs[ROUND];
    bool seen[ROUND] = {false};
    for (int i = 0; i < ROUND; i++)
        fs[i] = r->jobs[i].f;
    as_completed_t *it = as_completed_new(fs, ROUND, 3 * T_LONG);
    ck_assert_ptr_nonnull(it);
    future_t *f;
    int rc, n = 0;
    while ((rc = as_completed_next(it, &f)) == 0) {
        struct job *j = NULL;
        for (int i = 0; i < ROUND && !j; i++)
            if (fs[i] == f && !seen[i]) {
                seen[i] = true;
                j = &r->jobs[i];
            }
        ck_assert_msg(j != NULL, "as_completed yielded a future twice or a stranger");
        ck_assert(future_done(f));
        future_unref(f);
        n++;
    }
    ck_assert_int_eq(rc, FUT_EOF);
    ck_assert_int_eq(n, ROUND);
    as_completed_free(it);
}

struct soaker {
    executor_t *ex;
    double until;
    int index;
    struct totals t;
};

static void *soaker_main(void *arg)
{
    struct soaker *s = arg;
    uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(s->index + 1);
    int64_t next_id = (int64_t)s->index << 40;
    struct round *r = malloc(sizeof(*r));
    ck_assert_ptr_nonnull(r);
    while (now_s() < s->until) {
        memset(r, 0, sizeof(*r));
        r->ex = s->ex;
        for (int i = 0; i < ROUND; i++) {
            struct job *j = &r->jobs[i];
            uint64_t x = next_rand(&seed) % 100;
            j->r = r;
            j->id = next_id++;
            j->kind = x < 50 ? K_QUICK : x < 65 ? K_RAISE : x < 75 ? K_DEADLINE : K_SPAWN;
            if (j->kind == K_SPAWN) {
                j->child = &r->jobs[ROUND + i];
                j->child->r = r;
                j->child->id = next_id++;
                j->child->kind = K_CHILD;
            }
            ck_assert_msg(job_submit(s->ex, j), "submit failed: errno %d", errno);
            if (next_rand(&seed) % 5 == 0) {
                j->cancel_tried = true;
                j->cancelled = future_cancel(j->f);
            }
        }
        drain_as_completed(r);
        ck_assert_msg(eventually(round_quiet, r, T_LONG),
                      "a round never went quiet: %ld of %ld callbacks ran, %ld of %ld "
                      "started tasks returned",
                      atomic_load(&r->cb_ran), atomic_load(&r->cb_expected),
                      atomic_load(&r->returned), atomic_load(&r->started));
        for (int i = 0; i < ROUND; i++) {
            struct job *j = &r->jobs[i];
            check_job(j, &s->t);
            s->t.jobs++;
            if (j->kind == K_SPAWN) {
                future_t *cf = atomic_load(&j->child_f);
                ck_assert_msg(cf || j->cancelled, "job %lld: no child", (long long)j->id);
                if (cf) {
                    check_job(j->child, &s->t);
                    s->t.children++;
                    future_unref(cf);
                }
            }
            future_unref(j->f);
        }
    }
    free(r);
    return NULL;
}

START_TEST(test_soak_thread_pool)
{
    const char *env = getenv("SOAK_SECONDS");
    double secs = env && atof(env) > 0 ? atof(env) : 2.0;
    warm_up_threads();
    int threads0 = count_threads();
    executor_t *ex = thread_pool_executor_new(&(executor_options_t){.max_workers = 4});
    ck_assert_ptr_nonnull(ex);
    struct soaker s[NTHREADS];
    pthread_t th[NTHREADS];
    double until = now_s() + secs;
    for (int i = 0; i < NTHREADS; i++) {
        s[i] = (struct soaker){.ex = ex, .until = until, .index = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, soaker_main, &s[i]), 0);
    }
    struct totals t = {0};
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        t.jobs += s[i].t.jobs;
        t.children += s[i].t.children;
        t.results += s[i].t.results;
        t.raises += s[i].t.raises;
        t.deadlines += s[i].t.deadlines;
        t.cancelled += s[i].t.cancelled;
        t.cancel_refused += s[i].t.cancel_refused;
    }
    /* Workers count a task after its callbacks ran: join them before reading. */
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    executor_free(ex);
    ck_assert_msg(wait_threads(threads0), "a thread was left");
    long total = t.jobs + t.children;
    ck_assert_int_eq(t.results + t.raises + t.deadlines + t.cancelled, total);
    ck_assert_int_eq((long)(st.completed + st.failed), total - t.cancelled);
    printf("soak: %ld tasks in %.0f s from %d threads (%ld submitted by callbacks): "
           "%ld results, %ld raised, %ld past their deadline, %ld cancelled "
           "(+%ld cancels refused: already running); each completed exactly once\n",
           total, secs, NTHREADS, t.children, t.results, t.raises, t.deadlines,
           t.cancelled, t.cancel_refused);
    fflush(stdout);
}
END_TEST

/* ------------------------------------------------------ the process pool */

#define NBUSY 16 /* busy-worker slots: a task's pid sits at pid % NBUSY */

/* Shared with the workers: mapped before the pool is created. */
struct pshm {
    _Atomic int busy[NBUSY]; /* pids of workers inside a task, or 0 */
    _Atomic int ran[];       /* how often task i ran (reached its count) */
};

static struct pshm *pshm;

static long soak_tasks(void)
{
    const char *env = getenv("SOAK_TASKS");
    return env && atol(env) > 0 ? atol(env) : 20000;
}

static void t_ppid(task_t *t)
{
    task_return_i64(t, getppid());
}

/*
 * arg: an int32 index. Says it is busy, counts its run, then works 0 to
 * 40 us (by the index), so that kills land before and after the count.
 */
static void t_soak(task_t *t)
{
    const int32_t *i = task_arg(t, NULL);
    int me = (int)getpid();
    _Atomic int *busy = &pshm->busy[me % NBUSY];
    atomic_store(busy, me);
    atomic_fetch_add(&pshm->ran[*i], 1);
    double end = now_s() + (double)((uint32_t)*i * 2654435761u % 41) * 1e-6;
    while (now_s() < end)
        ;
    atomic_compare_exchange_strong(busy, &me, 0);
    task_return_i64(t, *i);
}

struct killer {
    pthread_t th;
    pid_t fs_pid;
    _Atomic bool stop;
    long kills;
};

/*
 * Every 0.1 to 1 ms (a pace, not a synchronisation), SIGKILLs a worker that
 * is inside a task, picked from a random slot on. The pid is checked to be
 * a child of the pool's fork server, so a pid reused meanwhile is spared.
 */
static void *killer_main(void *arg)
{
    struct killer *k = arg;
    uint64_t seed = 0x2545F4914F6CDD1Dull;
    while (!atomic_load(&k->stop)) {
        long us = 100 + (long)(next_rand(&seed) % 900);
        nanosleep(&(struct timespec){0, us * 1000}, NULL);
        int from = (int)(next_rand(&seed) % NBUSY);
        for (int j = 0; j < NBUSY; j++) {
            pid_t pid = atomic_load(&pshm->busy[(from + j) % NBUSY]);
            if (pid > 0 && proc_parent(pid) == k->fs_pid) {
                if (kill(pid, SIGKILL) == 0)
                    k->kills++;
                break;
            }
        }
    }
    return NULL;
}

static _Atomic int *cb_runs; /* done-callback runs per task (this process) */

static void cb_count(future_t *f, void *ud)
{
    (void)f;
    atomic_fetch_add(&cb_runs[(intptr_t)ud], 1);
}

/*
 * SOAK_TASKS process tasks under random SIGKILLs: each completes exactly
 * once, with its result (ran once) or FUT_EWORKER (ran at most once).
 * Python: ProcessPoolExecutor with workers killed (loky's respawn).
 */
START_TEST(test_soak_process_pool_kills)
{
    long n = soak_tasks();
    size_t shm_len = sizeof(struct pshm) + (size_t)n * sizeof(_Atomic int);
    pshm = mmap(NULL, shm_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(pshm, MAP_FAILED);
    cb_runs = calloc((size_t)n, sizeof(*cb_runs));
    int32_t *idx = malloc((size_t)n * sizeof(*idx));
    future_t **fs = malloc((size_t)n * sizeof(*fs));
    ck_assert(cb_runs && idx && fs);
    int fds0 = count_fds(), threads0 = thread_baseline();
    double t0 = now_s();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 2, .on_worker_death = FUT_WORKER_RESPAWN});
    ck_assert_ptr_nonnull(ex);
    future_t *pf = executor_submit(ex, t_ppid, NULL, 0);
    int64_t fs_pid = 0;
    ck_assert_int_eq(future_result_i64(pf, T_LONG, &fs_pid), 0);
    future_unref(pf);
    struct killer k = {.fs_pid = (pid_t)fs_pid};
    ck_assert_int_eq(pthread_create(&k.th, NULL, killer_main, &k), 0);
    for (long i = 0; i < n; i++) {
        idx[i] = (int32_t)i;
        fs[i] = executor_submit(ex, t_soak, &idx[i], sizeof(idx[i]));
        ck_assert_msg(fs[i] != NULL, "submit %ld: errno %d", i, errno);
        ck_assert_int_eq(future_add_done_callback(fs[i], cb_count, (void *)(intptr_t)i),
                         0);
    }
    long ok = 0, died = 0, died_after_count = 0;
    for (long i = 0; i < n; i++) {
        int64_t v = -1;
        int rc = future_result_i64(fs[i], T_LONG, &v);
        int ran = atomic_load(&pshm->ran[i]);
        if (rc == 0) {
            ck_assert_msg(v == i, "task %ld answered %lld", i, (long long)v);
            ck_assert_msg(ran == 1, "task %ld succeeded after %d runs", i, ran);
            ok++;
        } else {
            ck_assert_msg(rc == FUT_EWORKER, "task %ld: %s", i, future_strerror(rc));
            const future_error_t *err = NULL;
            ck_assert_int_eq(future_exception(fs[i], 0, &err), 0);
            ck_assert_msg(err && err->signal == SIGKILL, "task %ld: signal %d", i,
                          err ? err->signal : -1);
            ck_assert_msg(ran <= 1, "task %ld ran %d times", i, ran);
            died++;
            died_after_count += ran;
        }
    }
    atomic_store(&k.stop, true);
    pthread_join(k.th, NULL);
    ck_assert_int_eq(ok + died, n);
    ck_assert_msg(died <= k.kills, "%ld tasks died from %ld kills", died, k.kills);
    ck_assert_msg(k.kills > 0, "no worker was killed");
    /* Counted by the manager: read once it has left. */
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    ck_assert_uint_eq(st.completed, (size_t)ok + 1); /* + the t_ppid task */
    ck_assert_uint_eq(st.failed, (size_t)died);
    executor_free(ex);
    double secs = now_s() - t0;
    /* Every callback ran before the manager left: exactly once each. */
    for (long i = 0; i < n; i++) {
        ck_assert_msg(atomic_load(&cb_runs[i]) == 1, "task %ld: %d callbacks", i,
                      atomic_load(&cb_runs[i]));
        ck_assert_int_le(atomic_load(&pshm->ran[i]), 1);
        future_unref(fs[i]);
    }
    ck_assert_int_eq(count_fds(), fds0);
    ck_assert_msg(wait_threads(threads0), "a thread was left");
    ck_assert_msg(no_children(), "a child (or zombie) was left");
    ck_assert_msg(process_gone((pid_t)fs_pid), "the fork server %lld is still there",
                  (long long)fs_pid);
    printf("soak: %ld process tasks in %.1f s, 2 workers, %ld SIGKILLs: %ld results, "
           "%ld FUT_EWORKER (%ld of them after their count); none lost, none twice\n",
           n, secs, k.kills, ok, died, died_after_count);
    fflush(stdout);
    free(fs);
    free(idx);
    free(cb_runs);
    munmap(pshm, shm_len);
}
END_TEST

/*
 * The thread pool's endings under load (the inbox's close, issue 14): two
 * threads submit tiny tasks while the pool is shut down (with and without
 * cancel_futures), breaks (an initializer fails) or is resized. Each task
 * counts its runs. Afterwards every accepted task ran exactly once, or was
 * cancelled (cancel_futures) or failed FUT_EBROKEN (a broken pool) without
 * running; no submit from a thread succeeded after one of its submits was
 * refused; refusals say FUT_ESHUTDOWN or FUT_EBROKEN; the counters settle
 * to 0 and no thread is left. No outcome depends on the timing.
 */
#define END_TASKS 20000 /* at most, per submitter and round */

struct end_task {
    _Atomic int ran;
    future_t *f;
};

struct ender {
    executor_t *ex;
    _Atomic bool *stop;
    struct end_task *t; /* END_TASKS */
    int n, refusals, bad_errno, after_refusal;
};

static void end_count(task_t *t)
{
    struct end_task *e = (struct end_task *)task_arg(t, NULL); /* borrowed: the record */
    atomic_fetch_add(&e->ran, 1);
}

static void *ender_main(void *arg)
{
    struct ender *d = arg;
    for (int i = 0; i < END_TASKS && !atomic_load(d->stop) && d->refusals < 5; i++) {
        struct end_task *e = &d->t[i];
        e->f = executor_submit(d->ex, end_count, e, sizeof(*e));
        d->n = i + 1;
        if (!e->f) {
            d->refusals++;
            d->bad_errno += errno != -FUT_ESHUTDOWN && errno != -FUT_EBROKEN;
        } else if (d->refusals) {
            d->after_refusal++;
        }
    }
    return NULL;
}

static _Atomic int end_inits;

/* The second worker's initializer fails, after the first ones took tasks. */
static void end_init(task_t *t)
{
    if (atomic_fetch_add(&end_inits, 1) == 1) {
        usleep(2000);
        task_raise(t, 1, "this initializer fails");
    }
}

/* What the rounds saw: accepted tasks run, cancelled, broken; refusals. */
static long end_seen[4];

/* Checks one round's tasks (mode 1 may cancel, mode 2 may break). */
static void end_check_round(struct ender *d, int mode, int round)
{
    end_seen[3] += d->refusals;
    for (int i = 0; i < d->n; i++) {
        struct end_task *e = &d->t[i];
        if (!e->f)
            continue;
        int ran = atomic_load(&e->ran);
        int rc = future_result(e->f, 0, NULL, NULL);
        ck_assert_msg(ran <= 1, "round %d: a task ran %d times", round, ran);
        end_seen[ran == 1 ? 0 : rc == FUT_ECANCELLED ? 1 : 2]++;
        if (ran == 1)
            ck_assert_msg(rc == 0, "round %d: a task that ran failed %d", round, rc);
        else
            ck_assert_msg((mode == 1 && rc == FUT_ECANCELLED) ||
                              (mode == 2 && rc == FUT_EBROKEN),
                          "round %d (mode %d): an accepted task neither ran nor was "
                          "cancelled or broken: %d",
                          round, mode, rc);
        future_unref(e->f);
    }
    ck_assert_msg(d->after_refusal == 0, "round %d: a submit succeeded after a refusal",
                  round);
    ck_assert_int_eq(d->bad_errno, 0);
}

START_TEST(test_soak_thread_pool_endings)
{
    warm_up_threads();
    int threads0 = count_threads();
    struct end_task *tasks = calloc(2 * END_TASKS, sizeof(*tasks));
    ck_assert_ptr_nonnull(tasks);
    for (int round = 0; round < 40; round++) {
        int mode = round % 4; /* shutdown, shutdown + cancel, broken, resized */
        atomic_store(&end_inits, 0);
        executor_options_t o = {.max_workers = 3};
        if (mode == 2)
            o.initializer = end_init;
        executor_t *ex = thread_pool_executor_new(&o);
        ck_assert_ptr_nonnull(ex);
        memset(tasks, 0, 2 * END_TASKS * sizeof(*tasks));
        _Atomic bool stop = false;
        struct ender d[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            d[i] = (struct ender){.ex = ex, .stop = &stop, .t = tasks + i * END_TASKS};
            ck_assert_int_eq(pthread_create(&th[i], NULL, ender_main, &d[i]), 0);
        }
        usleep(200 + (unsigned)(round * 397 % 3000));
        if (mode == 3)
            for (int k = 0; k < 50; k++)
                ck_assert_int_eq(executor_set_max_workers(ex, 1 + (k * 7 + round) % 4),
                                 0);
        if (mode != 2)
            ck_assert_int_eq(executor_shutdown(ex, false, mode == 1), 0);
        else
            usleep(5000); /* the failing initializer breaks the pool meanwhile */
        atomic_store(&stop, true);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
        executor_stats_t st;
        ck_assert_int_eq(executor_stats(ex, &st), 0);
        ck_assert_msg(st.queued == 0 && st.running == 0,
                      "round %d: queued %zu running %zu", round, st.queued, st.running);
        for (int i = 0; i < 2; i++)
            end_check_round(&d[i], mode, round);
        executor_free(ex);
    }
    free(tasks);
    ck_assert_msg(wait_threads(threads0), "a thread was left");
    printf(
        "soak endings: 40 rounds, %ld tasks ran, %ld cancelled, %ld broken, %ld submits "
        "refused; each accepted task ran once or was cancelled or broken\n",
        end_seen[0], end_seen[1], end_seen[2], end_seen[3]);
}
END_TEST

Suite *make_suite(void)
{
    const char *env = getenv("SOAK_SECONDS");
    double secs = env && atof(env) > 0 ? atof(env) : 2.0;
    Suite *s = suite_create("soak");
    TCase *tc = tcase_create("concurrency");
    tcase_set_timeout(tc, secs + 120);
    tcase_add_test(tc, test_soak_thread_pool);
    tcase_add_test(tc, test_soak_thread_pool_endings);
    suite_add_tcase(s, tc);

    tc = tcase_create("process");
    tcase_set_timeout(tc, 120 + (double)soak_tasks() / 500);
    tcase_add_test(tc, test_soak_process_pool_kills);
    suite_add_tcase(s, tc);
    return s;
}
