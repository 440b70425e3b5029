/*
 * bench_cfutures: the workloads of /work/shared/perf-anchors.md, run against
 * cfutures' thread pool and, with --naive, against the naive C pool the
 * anchors were measured with (naive_pool.c).
 *
 *   bench_cfutures [--naive] w1 N WORKERS   tiny-task throughput
 *   bench_cfutures [--naive] w2 ITERS WORKERS   submit-and-wait round trip
 *   bench_cfutures [--naive] w5 N           memory per pending future
 *   bench_cfutures w6 N REPS                as_completed / wait over done futures
 *   bench_cfutures cond ITERS               condvar ping-pong (OS limit)
 *   bench_cfutures spin ITERS               spin ping-pong (OS limit)
 *
 * Each command prints one line of JSON (for bench/run.sh), then one line for
 * people. A wrong answer from any task aborts the run: a figure is only
 * printed for work that was done right.
 */
#include "config.h"

#include <cfutures.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "naive_pool.h"

#define W2_WARMUP 500
#define PINGPONG_WARMUP 500

/* ------------------------------------------------------------ helpers */

static _Noreturn void die(const char *fmt, ...) CF_PRINTF(1, 2);
static _Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_cfutures: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static _Noreturn void die_code(const char *what, int code)
{
    fprintf(stderr, "bench_cfutures: %s: %s\n", what, future_strerror(code));
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

/*
 * malloc, then touch every page so that no later figure pays its faults.
 * Not with zeros: the compiler may turn malloc + memset 0 into calloc, whose
 * fresh pages are never written.
 */
static void *xmalloc_touched(size_t n)
{
    void *p = xmalloc(n);
    memset(p, 0x5a, n);
    return p;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double cpu_seconds(bool user)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct timeval tv = user ? ru.ru_utime : ru.ru_stime;
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/*
 * Resident set size from /proc/self/statm, bytes. The kernel keeps this
 * count in per-CPU batches, so a reading can be off by some 100 KiB.
 */
static long rss_bytes(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!fp || fscanf(fp, "%ld %ld", &size, &resident) != 2)
        die("cannot read /proc/self/statm");
    fclose(fp);
    return resident * sysconf(_SC_PAGESIZE);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static int64_t percentile(const int64_t *sorted, size_t n, unsigned pct)
{
    size_t rank = (n * pct + 99) / 100;
    return sorted[rank ? rank - 1 : 0];
}

static size_t parse_count(const char *s, const char *what)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *s == '-' || *end != '\0' || v == 0 || v > (1ULL << 40))
        die("bad %s (a positive integer is needed)", what);
    return (size_t)v;
}

/* "1234567.8" -> "1,234,568" */
static const char *grouped(double v, char *buf, size_t size)
{
    char digits[32];
    snprintf(digits, sizeof(digits), "%.0f", v);
    size_t len = strlen(digits), o = 0;
    for (size_t i = 0; i < len && o + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

/* ------------------------------------------------- the tasks and gates */

/* A gate the W5 first task waits on; opened once the submits are measured. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered, open;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

static void gate_pass(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.entered = true;
    pthread_cond_broadcast(&gate.cv);
    while (!gate.open)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
}

static void gate_wait_entered(void)
{
    pthread_mutex_lock(&gate.mu);
    while (!gate.entered)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
}

static void gate_open(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.open = true;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

/*
 * The rendezvous that starts every worker before a clock starts: WORKERS
 * tasks that each wait (up to a second) until all of them run at once.
 */
static _Atomic int rv_arrived;
static int rv_target;

static void rendezvous_pass(void)
{
    atomic_fetch_add(&rv_arrived, 1);
    int64_t until = now_ns() + 1000000000;
    while (atomic_load(&rv_arrived) < rv_target && now_ns() < until)
        nanosleep(&(struct timespec){0, 50000}, NULL);
}

enum task_kind { TASK_ADD_ONE, TASK_GATE, TASK_RENDEZVOUS };

static void cf_add_one(task_t *t)
{
    const int64_t *a = task_arg(t, NULL);
    task_return_i64(t, *a + 1);
}

static void cf_gate(task_t *t)
{
    gate_pass();
    task_return_i64(t, 0);
}

static void cf_rendezvous(task_t *t)
{
    rendezvous_pass();
    task_return_i64(t, 0);
}

static int64_t naive_add_one(const void *arg)
{
    return *(const int64_t *)arg + 1;
}

static int64_t naive_gate(const void *arg)
{
    (void)arg;
    gate_pass();
    return 0;
}

static int64_t naive_rendezvous(const void *arg)
{
    (void)arg;
    rendezvous_pass();
    return 0;
}

/* ---------------------------------------------------------- backends */

/* W1, W2 and W5 run the same loop over either pool through this table. */
struct backend {
    const char *name;
    void *(*pool_new)(int workers);
    void (*pool_free)(void *pool);
    /* Submits a task of @kind reading @arg (8 bytes); never NULL. */
    void *(*submit)(void *pool, enum task_kind kind, const int64_t *arg);
    /* Waits for @fut, releases it and returns its int64 result. */
    int64_t (*collect)(void *fut);
};

static void *cf_pool_new(int workers)
{
    executor_t *ex = thread_pool_executor_new(&(executor_options_t){.max_workers = workers});
    if (!ex)
        die_code("thread_pool_executor_new", -errno);
    return ex;
}

static void cf_pool_free(void *pool)
{
    executor_free(pool);
}

static void *cf_submit(void *pool, enum task_kind kind, const int64_t *arg)
{
    static const task_fn fns[] = {cf_add_one, cf_gate, cf_rendezvous};
    future_t *f = executor_submit(pool, fns[kind], arg, sizeof(*arg));
    if (!f)
        die_code("executor_submit", -errno);
    return f;
}

static int64_t cf_collect(void *fut)
{
    int64_t v;
    int rc = future_result_i64(fut, FUT_FOREVER, &v);
    if (rc != 0)
        die_code("future_result_i64", rc);
    future_unref(fut);
    return v;
}

static void *nv_pool_new(int workers)
{
    return naive_pool_new(workers);
}

static void nv_pool_free(void *pool)
{
    naive_pool_free(pool);
}

static void *nv_submit(void *pool, enum task_kind kind, const int64_t *arg)
{
    static const naive_task_fn fns[] = {naive_add_one, naive_gate, naive_rendezvous};
    return naive_pool_submit(pool, fns[kind], arg);
}

static int64_t nv_collect(void *fut)
{
    int64_t v = naive_future_result(fut);
    naive_future_free(fut);
    return v;
}

static const struct backend cfutures_backend = {"cfutures", cf_pool_new, cf_pool_free,
                                                cf_submit, cf_collect};
static const struct backend naive_backend = {"naive", nv_pool_new, nv_pool_free, nv_submit,
                                             nv_collect};

/* Starts every worker (cfutures starts them lazily) and lets them go idle. */
static void start_workers(const struct backend *b, void *pool, int workers)
{
    static const int64_t zero = 0;
    void **fs = xmalloc((size_t)workers * sizeof(*fs));
    atomic_store(&rv_arrived, 0);
    rv_target = workers;
    for (int i = 0; i < workers; i++)
        fs[i] = b->submit(pool, TASK_RENDEZVOUS, &zero);
    for (int i = 0; i < workers; i++)
        b->collect(fs[i]);
    free(fs);
}

/* ---------------------------------------------------------------- W1 */

static int cmd_w1(const struct backend *b, size_t n, int workers)
{
    int64_t *args = xmalloc_touched(n * sizeof(*args));
    void **fs = xmalloc_touched(n * sizeof(*fs));
    for (size_t i = 0; i < n; i++)
        args[i] = (int64_t)i;
    void *pool = b->pool_new(workers);
    start_workers(b, pool, workers);

    double u0 = cpu_seconds(true), s0 = cpu_seconds(false);
    int64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        fs[i] = b->submit(pool, TASK_ADD_ONE, &args[i]);
    int64_t t1 = now_ns();
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t v = b->collect(fs[i]);
        if (v != (int64_t)i + 1)
            die("w1: a task returned a wrong value");
        sum += v;
    }
    int64_t t2 = now_ns();
    double user = cpu_seconds(true) - u0, sys = cpu_seconds(false) - s0;
    b->pool_free(pool);

    double secs = (double)(t2 - t0) / 1e9;
    double rate = (double)n / secs;
    double submit_share = (double)(t1 - t0) / (double)(t2 - t0);
    printf("{\"bench\":\"w1\",\"impl\":\"%s\",\"n\":%zu,\"workers\":%d,"
           "\"tasks_per_s\":%.0f,\"secs\":%.6f,\"submit_share\":%.4f,"
           "\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"checksum\":%lld}\n",
           b->name, n, workers, rate, secs, submit_share, user, sys, (long long)sum);
    char buf[32];
    printf("w1 %s: %zu tiny tasks, %d worker%s: %s tasks/s (%.1f ms; submit loop %.0f%%; "
           "cpu user %.3f s, sys %.3f s)\n",
           b->name, n, workers, workers == 1 ? "" : "s", grouped(rate, buf, sizeof(buf)),
           secs * 1e3, submit_share * 100, user, sys);
    free(fs);
    free(args);
    return 0;
}

/* ---------------------------------------------------------------- W2 */

static void print_latency(const char *bench, const char *impl, int workers, int64_t *lat,
                          size_t iters)
{
    qsort(lat, iters, sizeof(*lat), cmp_i64);
    double p50 = (double)percentile(lat, iters, 50) / 1e3;
    double p99 = (double)percentile(lat, iters, 99) / 1e3;
    double max = (double)lat[iters - 1] / 1e3;
    double mean = 0;
    for (size_t i = 0; i < iters; i++)
        mean += (double)lat[i];
    mean = mean / (double)iters / 1e3;
    printf("{\"bench\":\"%s\",\"impl\":\"%s\",\"iters\":%zu,\"workers\":%d,"
           "\"p50_us\":%.3f,\"p99_us\":%.3f,\"mean_us\":%.3f,\"max_us\":%.1f}\n",
           bench, impl, iters, workers, p50, p99, mean, max);
    char who[32] = "";
    if (workers)
        snprintf(who, sizeof(who), ", %d worker%s", workers, workers == 1 ? "" : "s");
    printf("%s %s: %zu round trips%s: p50 %.2f us, p99 %.2f us, mean %.2f us, max %.0f us\n",
           bench, impl, iters, who, p50, p99, mean, max);
}

static int cmd_w2(const struct backend *b, size_t iters, int workers)
{
    static const int64_t arg = 41;
    int64_t *lat = xmalloc_touched(iters * sizeof(*lat));
    void *pool = b->pool_new(workers);
    for (size_t i = 0; i < W2_WARMUP + iters; i++) {
        int64_t t0 = now_ns();
        void *f = b->submit(pool, TASK_ADD_ONE, &arg);
        int64_t v = b->collect(f);
        int64_t t1 = now_ns();
        if (v != 42)
            die("w2: a task returned a wrong value");
        if (i >= W2_WARMUP)
            lat[i - W2_WARMUP] = t1 - t0;
    }
    b->pool_free(pool);
    print_latency("w2", b->name, workers, lat, iters);
    free(lat);
    return 0;
}

/* ---------------------------------------------------------------- W5 */

static int cmd_w5(const struct backend *b, size_t n)
{
    static const int64_t arg = 1;
    void **fs = xmalloc_touched(n * sizeof(*fs));
    void *pool = b->pool_new(1);
    void *blocker = b->submit(pool, TASK_GATE, &arg);
    gate_wait_entered(); /* the one worker now sits in the first task */

    /*
     * Also read at the half way mark: the growth over the second half is the
     * marginal cost of a future, free of any fixed cost of the first submits
     * and of the counter's batching.
     */
    size_t half = n / 2;
    long rss0 = rss_bytes(), rss_half = rss0;
    int64_t t0 = now_ns();
    for (size_t i = 0; i < half; i++)
        fs[i] = b->submit(pool, TASK_ADD_ONE, &arg);
    if (half > 0)
        rss_half = rss_bytes();
    for (size_t i = half; i < n; i++)
        fs[i] = b->submit(pool, TASK_ADD_ONE, &arg);
    int64_t t1 = now_ns();
    long rss1 = rss_bytes();

    gate_open();
    b->collect(blocker);
    for (size_t i = 0; i < n; i++)
        if (b->collect(fs[i]) != 2)
            die("w5: a task returned a wrong value");
    b->pool_free(pool);
    free(fs);

    double per = (double)(rss1 - rss0) / (double)n;
    double marginal = (double)(rss1 - rss_half) / (double)(n - half);
    double secs = (double)(t1 - t0) / 1e9;
    printf("{\"bench\":\"w5\",\"impl\":\"%s\",\"n\":%zu,\"bytes_per_future\":%.2f,"
           "\"bytes_per_future_marginal\":%.2f,\"rss_growth\":%ld,\"submit_s\":%.4f}\n",
           b->name, n, per, marginal, rss1 - rss0, secs);
    char layout[96] = "";
    if (b == &naive_backend)
        snprintf(layout, sizeof(layout), "; future %zu B + queue node %zu B before malloc rounding",
                 naive_future_size(), naive_node_size());
    printf("w5 %s: %zu pending futures: %.2f bytes each (second half alone: %.2f; "
           "RSS +%.1f MiB; submit loop %.3f s%s)\n",
           b->name, n, per, marginal, (double)(rss1 - rss0) / 1048576.0, secs, layout);
    return 0;
}

/* ---------------------------------------------------------------- W6 */

static double median_ms(int64_t *ns, size_t n)
{
    qsort(ns, n, sizeof(*ns), cmp_i64);
    int64_t m = n % 2 ? ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2;
    return (double)m / 1e6;
}

static int cmd_w6(size_t n, size_t reps)
{
    int64_t *args = xmalloc_touched(n * sizeof(*args));
    future_t **fs = xmalloc_touched(n * sizeof(*fs));
    future_t **done = xmalloc_touched(n * sizeof(*done));
    int64_t *t_ac = xmalloc(reps * sizeof(*t_ac));
    int64_t *t_wait = xmalloc(reps * sizeof(*t_wait));
    int64_t *t_floor = xmalloc(reps * sizeof(*t_floor));

    /* n futures done by a real pool, as a caller would hold them. */
    executor_t *ex = cf_pool_new(2);
    for (size_t i = 0; i < n; i++) {
        args[i] = (int64_t)i;
        fs[i] = cf_submit(ex, TASK_ADD_ONE, &args[i]);
    }
    int rc = futures_wait(fs, n, FUT_FOREVER, FUTURES_ALL_COMPLETED, NULL, NULL, NULL, NULL);
    if (rc != 0)
        die_code("futures_wait", rc);

    for (size_t r = 0; r < reps; r++) {
        int64_t t0 = now_ns();
        as_completed_t *it = as_completed_new(fs, n, FUT_FOREVER);
        if (!it)
            die_code("as_completed_new", -errno);
        size_t yielded = 0;
        future_t *f;
        while ((rc = as_completed_next(it, &f)) == 0) {
            future_unref(f);
            yielded++;
        }
        as_completed_free(it);
        int64_t t1 = now_ns();
        if (rc != FUT_EOF)
            die_code("as_completed_next", rc);
        if (yielded != n)
            die("w6: as_completed yielded a wrong count");

        size_t n_done = 0;
        rc = futures_wait(fs, n, FUT_FOREVER, FUTURES_ALL_COMPLETED, done, &n_done, NULL, NULL);
        int64_t t2 = now_ns();
        if (rc != 0)
            die_code("futures_wait", rc);
        if (n_done != n)
            die("w6: futures_wait counted a wrong number done");

        size_t seen = 0;
        for (size_t i = 0; i < n; i++)
            seen += future_done(fs[i]);
        int64_t t3 = now_ns();
        if (seen != n)
            die("w6: a future is not done");

        t_ac[r] = t1 - t0;
        t_wait[r] = t2 - t1;
        t_floor[r] = t3 - t2;
    }
    double first = (double)t_ac[0] / 1e6;
    double ac = median_ms(t_ac, reps), wt = median_ms(t_wait, reps),
           fl = median_ms(t_floor, reps);

    for (size_t i = 0; i < n; i++)
        future_unref(fs[i]);
    executor_free(ex);
    printf("{\"bench\":\"w6\",\"impl\":\"cfutures\",\"n\":%zu,\"reps\":%zu,"
           "\"as_completed_ms\":%.4f,\"as_completed_first_ms\":%.4f,\"wait_ms\":%.4f,"
           "\"floor_ms\":%.4f}\n",
           n, reps, ac, first, wt, fl);
    printf("w6 cfutures: %zu done futures, median of %zu: as_completed %.3f ms (first %.3f), "
           "wait(ALL_COMPLETED) %.3f ms, future_done pass %.3f ms\n",
           n, reps, ac, first, wt, fl);
    free(t_floor);
    free(t_wait);
    free(t_ac);
    free(done);
    free(fs);
    free(args);
    return 0;
}

/* ------------------------------------------------------------ limits */

static int cmd_pingpong(const char *name, size_t iters)
{
    int64_t *lat = xmalloc_touched(iters * sizeof(*lat));
    if (strcmp(name, "cond") == 0)
        limit_cond_pingpong(lat, iters, PINGPONG_WARMUP);
    else
        limit_spin_pingpong(lat, iters, PINGPONG_WARMUP);
    print_latency(name, "limit", 0, lat, iters);
    free(lat);
    return 0;
}

/* -------------------------------------------------------------- main */

static _Noreturn void usage(void)
{
    fputs("usage: bench_cfutures [--naive] w1 N WORKERS\n"
          "       bench_cfutures [--naive] w2 ITERS WORKERS\n"
          "       bench_cfutures [--naive] w5 N\n"
          "       bench_cfutures w6 N REPS\n"
          "       bench_cfutures cond ITERS\n"
          "       bench_cfutures spin ITERS\n",
          stderr);
    exit(2);
}

static int parse_workers(const char *s)
{
    size_t w = parse_count(s, "WORKERS");
    if (w > 1024)
        die("WORKERS must be at most 1024");
    return (int)w;
}

int main(int argc, char **argv)
{
    const struct backend *b = &cfutures_backend;
    const char *pos[4] = {NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--naive") == 0)
            b = &naive_backend;
        else if (npos < 4)
            pos[npos++] = argv[i];
        else
            usage();
    }
    if (npos == 0)
        usage();
    const char *cmd = pos[0];
    bool pool_cmd = strcmp(cmd, "w1") == 0 || strcmp(cmd, "w2") == 0 || strcmp(cmd, "w5") == 0;
    if (!pool_cmd && b == &naive_backend)
        die("%s: --naive applies to w1, w2 and w5 only", cmd);
    int rc;
    if (strcmp(cmd, "w1") == 0 && npos == 3)
        rc = cmd_w1(b, parse_count(pos[1], "N"), parse_workers(pos[2]));
    else if (strcmp(cmd, "w2") == 0 && npos == 3)
        rc = cmd_w2(b, parse_count(pos[1], "ITERS"), parse_workers(pos[2]));
    else if (strcmp(cmd, "w5") == 0 && npos == 2)
        rc = cmd_w5(b, parse_count(pos[1], "N"));
    else if (strcmp(cmd, "w6") == 0 && npos == 3)
        rc = cmd_w6(parse_count(pos[1], "N"), parse_count(pos[2], "REPS"));
    else if ((strcmp(cmd, "cond") == 0 || strcmp(cmd, "spin") == 0) && npos == 2)
        rc = cmd_pingpong(cmd, parse_count(pos[1], "ITERS"));
    else
        usage();
    return rc;
}
