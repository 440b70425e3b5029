#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double timeout_multiplier(double most)
{
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    double k = m ? atof(m) : 1;
    return k < 1 ? 1 : k > most ? most : k;
}

void sleep_s(double secs)
{
    double end = now_s() + secs;
    for (double left = secs; left > 0; left = end - now_s()) {
        struct timespec ts = {.tv_sec = (time_t)left,
                              .tv_nsec = (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

struct hang_guard {
    double secs;
    char msg[160]; /* written whole with write(2): no stdio lock a hung thread may hold */
    int len;
};

static void *hang_guard_main(void *arg)
{
    struct hang_guard *g = arg;
    sleep_s(g->secs);
    ssize_t n = write(STDERR_FILENO, g->msg, (size_t)g->len);
    (void)n;
    _exit(124);
}

void hang_guard(double secs, const char *who)
{
    static struct hang_guard g; /* the thread reads it for ever */
    static atomic_bool started;
    if (atomic_exchange(&started, true))
        return; /* one a process: the first call's limit holds */
    g.secs = secs * timeout_multiplier(3);
    g.len = snprintf(g.msg, sizeof(g.msg),
                     "%.60s[%d]: still running after %.0f s (a hang?): ended by its guard\n",
                     who, (int)getpid(), g.secs);
    if (g.len < 0 || g.len >= (int)sizeof(g.msg))
        g.len = (int)strlen(g.msg);
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, hang_guard_main, &g) != 0) {
        fprintf(stderr, "%s: no hang guard (pthread_create failed)\n", who);
        abort();
    }
    pthread_attr_destroy(&a);
}

void gate_init(gate_t *g)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    g->open = false;
    g->waiting = 0;
}

void gate_destroy(gate_t *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

void gate_open(gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void abs_after(double s, struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    long long ns = (long long)(s * 1e9) + ts->tv_nsec;
    ts->tv_sec += (time_t)(ns / 1000000000LL);
    ts->tv_nsec = (long)(ns % 1000000000LL);
}

bool gate_wait(gate_t *g, double timeout)
{
    struct timespec ts;
    abs_after(timeout, &ts);
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    pthread_cond_broadcast(&g->cv);
    int rc = 0;
    while (!g->open && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    bool open = g->open;
    g->waiting--;
    pthread_mutex_unlock(&g->mu);
    return open;
}

bool gate_wait_for_waiters(gate_t *g, int n)
{
    struct timespec ts;
    abs_after(T_LONG, &ts);
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    while (g->waiting < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    bool ok = g->waiting >= n;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

void t_add1(task_t *t)
{
    size_t len;
    const int64_t *v = task_arg(t, &len);
    task_return_i64(t, *v + 1);
}

void t_echo(task_t *t)
{
    size_t len;
    const void *p = task_arg(t, &len);
    task_return_copy(t, p, len);
}

void t_nothing(task_t *t)
{
    (void)t;
}

void t_raise(task_t *t)
{
    const int *code = task_arg(t, NULL);
    task_raise(t, *code, "boom %d", *code);
}

void t_wait_gate(task_t *t)
{
    gate_t *g = (gate_t *)task_arg(t, NULL);
    gate_wait(g, T_LONG);
    task_return_i64(t, 1);
}

void t_until_stop(task_t *t)
{
    double end = now_s() + T_LONG;
    while (!task_should_stop(t) && now_s() < end)
        sched_yield();
    task_return_i64(t, 7);
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int count_threads(void)
{
    return count_dir("/proc/self/task");
}

int count_fds(void)
{
    return count_dir("/proc/self/fd") - 1; /* the DIR's own fd */
}

bool wait_threads(int n)
{
    double end = now_s() + T_LONG;
    while (count_threads() > n) {
        if (now_s() > end)
            return false;
        usleep(1000);
    }
    return true;
}

bool no_children(void)
{
    errno = 0;
    return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

int wait_child(pid_t pid, double timeout)
{
    double end = now_s() + timeout;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        if (now_s() > end) {
            kill(pid, SIGKILL); /* leave no hung child behind */
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(1000);
    }
}

bool process_gone(pid_t pid)
{
    return kill(pid, 0) == -1 && errno == ESRCH;
}

bool eventually(bool (*pred)(void *), void *arg, double timeout)
{
    double end = now_s() + timeout;
    while (!pred(arg)) {
        if (now_s() > end)
            return false;
        usleep(200);
    }
    return true;
}

pid_t self_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/*
 * Reads the stat file @path (/proc/PID/stat, /proc/self/task/TID/stat) into
 * @buf: what follows the name (" S PPID ..."), or NULL if it cannot be read.
 */
static const char *stat_fields(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    size_t n = fread(buf, 1, cap - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    return p && p[1] == ' ' && p[2] ? p + 1 : NULL;
}

static char tid_state(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    const char *f = stat_fields(path, buf, sizeof(buf));
    return f ? f[1] : '?';
}

char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    const char *f = stat_fields(path, buf, sizeof(buf));
    return f ? f[1] : 0;
}

pid_t proc_parent(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    const char *f = stat_fields(path, buf, sizeof(buf));
    int ppid = -1;
    return f && sscanf(f, " %*c %d", &ppid) == 1 ? (pid_t)ppid : -1;
}

bool wait_tid_sleeping(pid_t tid, double timeout)
{
    double end = now_s() + timeout;
    for (;;) {
        char s = tid_state(tid);
        if (s == 'S' || s == 'D')
            return true;
        if (now_s() > end)
            return false;
        usleep(200);
    }
}

static void *noop_thread(void *arg)
{
    *(pid_t *)arg = (pid_t)syscall(SYS_gettid);
    return NULL;
}

/*
 * Starts and joins one thread, so a sanitizer's own helper thread (TSan
 * starts one at the first pthread_create) already exists; then waits until
 * the joined thread has left /proc/self/task (join returns a moment before).
 */
void warm_up_threads(void)
{
    pthread_t t;
    pid_t tid = 0;
    if (pthread_create(&t, NULL, noop_thread, &tid) != 0)
        return;
    pthread_join(t, NULL);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
    double end = now_s() + T_LONG;
    while (access(path, F_OK) == 0 && now_s() < end)
        usleep(100);
}

int thread_baseline(void)
{
    warm_up_threads();
    return count_threads();
}

/* ---------------------------------------------------------- executor kinds */

const struct ex_kind ex_kinds[N_EX_KINDS] = {
#ifdef CF_TEST_MPI_KIND
    {"mpi", mpi_pool_executor_new},
#else
    {"thread", thread_pool_executor_new},
    {"process", process_pool_executor_new},
#endif
};

int run_suite(bool fork)
{
    SRunner *sr = srunner_create(make_suite());
    if (!fork)
        srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int kind_workers(int k, int asked)
{
    const char *world = getenv("OMPI_COMM_WORLD_SIZE");
    int ranks = world ? atoi(world) - 1 : 0; /* rank 0 is the master */
    if (strcmp(ex_kinds[k].name, "mpi") == 0 && ranks > 0 && ranks < asked)
        return ranks;
    return asked;
}

void expect_i64_results(future_t **fs, size_t n, int64_t offset)
{
    for (size_t i = 0; i < n; i++) {
        int64_t v = -1;
        ck_assert_int_eq(future_result_i64(fs[i], T_LONG, &v), 0);
        ck_assert_int_eq(v, (int64_t)i + offset);
        future_unref(fs[i]);
    }
}

unsigned char *bytes_pattern(size_t n, unsigned seed)
{
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed + i * 7);
    return b;
}

void expect_bytes(future_t *f, const unsigned char *want, size_t len)
{
    const void *data = NULL;
    size_t got = 0;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(future_result(f, T_LONG, &data, &got), 0);
    ck_assert_uint_eq(got, len);
    ck_assert(memcmp(data, want, len) == 0);
}

executor_t *kind_new(int k, executor_options_t o)
{
    executor_t *ex = ex_kinds[k].make(&o);
    ck_assert_msg(ex != NULL, "%s: executor_new failed: errno %d", ex_kinds[k].name, errno);
    return ex;
}

TCase *new_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return tc;
}
