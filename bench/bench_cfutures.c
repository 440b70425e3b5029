/*
 * bench_cfutures: the workloads of /work/shared/perf-anchors.md, run against
 * cfutures' thread pool and, with --naive, against the naive C pool the
 * anchors were measured with (naive_pool.c).
 *
 *   bench_cfutures [--naive] w1 N WORKERS   tiny-task throughput
 *   bench_cfutures [--naive] w2 ITERS WORKERS   submit-and-wait round trip
 *   bench_cfutures [--naive] w5 N           memory per pending future
 *   bench_cfutures [--naive] w7 SAMPLES     start latency behind long tasks
 *   bench_cfutures [--naive] w11 ITERS      a task waits for a subtask it submitted
 *   bench_cfutures w8 thread|process idle|busy|timers SECONDS
 *                                           context switches/s of a resting pool
 *   bench_cfutures w12 thread|process       how late delayed tasks and a 10 ms
 *                                           fixed-rate schedule start
 *   bench_cfutures w13 SAMPLES              a process-pool task that waited in a
 *                                           pipe: future_running and deadline lag
 *   bench_cfutures w6 N REPS                as_completed / wait over done futures
 *   bench_cfutures w9 N                     a future_then chain of N steps (2-worker
 *                                           pool, and inline) vs N submit+result
 *   bench_cfutures w10 N                    futures_all / futures_any over N tasks
 *                                           vs N submits + N results
 *   bench_cfutures cqwake ITERS             completion queue fd round trip vs a raw
 *                                           eventfd ping-pong (p50)
 *   bench_cfutures cond ITERS               condvar ping-pong (OS limit)
 *   bench_cfutures spin ITERS               spin ping-pong (OS limit)
 *
 * Process pool (cfutures' process pool, the naive C process pool of
 * naive_process_pool.c, and the pipe limits they are measured against):
 *   bench_cfutures ppw3 N WORKERS            tiny tasks through submit
 *   bench_cfutures ppw3map N WORKERS CHUNK   tiny tasks through chunked executor_map
 *   bench_cfutures ppw3b N WORKERS SIZE [PASSES [copy|borrow]]
 *                                           SIZE-byte argument echoed back (PASSES
 *                                           on one pool: the later ones too; borrow:
 *                                           submit_options_t.borrow_arg)
 *   bench_cfutures ppw2 ITERS WORKERS        submit-and-wait round trip
 *   bench_cfutures ppw7 SAMPLES              start latency behind long tasks
 *   bench_cfutures npw3 N WORKERS            naive process pool, tiny tasks
 *   bench_cfutures npw3b N WORKERS SIZE      naive process pool, SIZE-byte echo
 *   bench_cfutures pipe ITERS                1-byte pipe ping-pong, 2 processes
 *   bench_cfutures pipew7 SAMPLES            one byte wakes a sleeping process,
 *                                            W7's 2 ms apart: write -> its first line
 *   bench_cfutures echo N SIZE               SIZE-byte pipe echo, 2 processes
 *   bench_cfutures stalls SECONDS            the machine alone: a spinning thread's
 *                                            gaps, a bare 2 ms sleep's lateness
 *   bench_cfutures w4 serial|thread|process WORKERS PAIRS
 *                                            64 factorizations: serial vs pool
 *
 * Each command prints one line of JSON (for bench/run.sh), then one line for
 * people. A wrong answer from any task aborts the run: a figure is only
 * printed for work that was done right.
 */
#include "config.h"

#include <cfutures.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "naive_pool.h"
#include "naive_process_pool.h"

#include <sys/wait.h>

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

/* Minor page faults of this process so far (every thread; not its children). */
static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/*
 * CPU seconds used so far by this process and by its children and their
 * descendants that were waited for: a pool's CPU, workers included, once it
 * has been freed.
 */
static double cpu_all(void)
{
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    const struct timeval *tv[] = {&self.ru_utime, &self.ru_stime, &kids.ru_utime,
                                  &kids.ru_stime};
    double s = 0;
    for (size_t i = 0; i < 4; i++)
        s += (double)tv[i]->tv_sec + (double)tv[i]->tv_usec / 1e6;
    return s;
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

enum task_kind { TASK_ADD_ONE, TASK_GATE, TASK_RENDEZVOUS, TASK_STAMP, TASK_SLEEP, TASK_NEST };

/* W11: the pool a nesting task submits its subtask to, and through what. */
static void *nest_pool;
static const struct backend *nest_backend;
static int64_t nest_run(const int64_t *arg);

/* Sleeps @ns nanoseconds (a long task that leaves its CPU free). */
static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

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

/* W7: the time the task started (CLOCK_MONOTONIC is the same in every process). */
static void cf_stamp(task_t *t)
{
    task_return_i64(t, now_ns());
}

static void cf_sleep(task_t *t)
{
    const int64_t *ns = task_arg(t, NULL);
    sleep_ns(*ns);
    task_return_i64(t, 0);
}

/* W11: submits add_one(*arg) to its own pool and waits for it. */
static void cf_nest(task_t *t)
{
    task_return_i64(t, nest_run(task_arg(t, NULL)));
}

static int64_t naive_nest(const void *arg)
{
    return nest_run(arg);
}

static int64_t naive_stamp(const void *arg)
{
    (void)arg;
    return now_ns();
}

static int64_t naive_sleep(const void *arg)
{
    sleep_ns(*(const int64_t *)arg);
    return 0;
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
    static const task_fn fns[] = {cf_add_one, cf_gate, cf_rendezvous, cf_stamp, cf_sleep,
                                  cf_nest};
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
    static const naive_task_fn fns[] = {naive_add_one, naive_gate, naive_rendezvous, naive_stamp,
                                        naive_sleep,   naive_nest};
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
    long f0 = minor_faults();
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
    double faults = (double)(minor_faults() - f0) / (double)n;
    b->pool_free(pool);

    double secs = (double)(t2 - t0) / 1e9;
    double rate = (double)n / secs;
    double submit_share = (double)(t1 - t0) / (double)(t2 - t0);
    printf("{\"bench\":\"w1\",\"impl\":\"%s\",\"n\":%zu,\"workers\":%d,"
           "\"tasks_per_s\":%.0f,\"secs\":%.6f,\"submit_share\":%.4f,"
           "\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"faults_per_task\":%.5f,"
           "\"checksum\":%lld}\n",
           b->name, n, workers, rate, secs, submit_share, user, sys, faults, (long long)sum);
    char buf[32];
    printf("w1 %s: %zu tiny tasks, %d worker%s: %s tasks/s (%.1f ms; submit loop %.0f%%; "
           "cpu user %.3f s, sys %.3f s; %.4f page faults a task)\n",
           b->name, n, workers, workers == 1 ? "" : "s", grouped(rate, buf, sizeof(buf)),
           secs * 1e3, submit_share * 100, user, sys, faults);
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

/* ---------------------------------------------------------------- W7 */

#define W7_WORKERS 4
#define W7_LONG 2
#define W7_PERIOD_NS 2000000

/*
 * Start latency behind long tasks: W7_WORKERS workers, W7_LONG of them
 * sleeping in long tasks, a short task every W7_PERIOD_NS; the figure is
 * submit -> the task's first line. @submit and @collect are the backend's
 * (or the process pool's, through cf_submit/cf_collect).
 */
static void w7_run(void *pool, void *(*submit)(void *, enum task_kind, const int64_t *),
                   int64_t (*collect)(void *), int64_t *lat, size_t samples)
{
    static int64_t long_ns;
    long_ns = (int64_t)samples * W7_PERIOD_NS + 500000000;
    void *longs[W7_LONG];
    for (int i = 0; i < W7_LONG; i++)
        longs[i] = submit(pool, TASK_SLEEP, &long_ns);
    sleep_ns(50000000); /* the long tasks start; the others go idle */
    static const int64_t zero = 0;
    int64_t next = now_ns();
    for (size_t i = 0; i < samples; i++) {
        int64_t t0 = now_ns();
        int64_t started = collect(submit(pool, TASK_STAMP, &zero));
        lat[i] = started - t0;
        next += W7_PERIOD_NS;
        int64_t left = next - now_ns();
        if (left > 0)
            sleep_ns(left);
    }
    for (int i = 0; i < W7_LONG; i++)
        collect(longs[i]);
}

static int cmd_w7(const struct backend *b, size_t samples)
{
    int64_t *lat = xmalloc_touched(samples * sizeof(*lat));
    void *pool = b->pool_new(W7_WORKERS);
    start_workers(b, pool, W7_WORKERS);
    w7_run(pool, b->submit, b->collect, lat, samples);
    b->pool_free(pool);
    print_latency("w7", b->name, W7_WORKERS, lat, samples);
    free(lat);
    return 0;
}

/* ---------------------------------------------------------------- W11 */

static int64_t nest_run(const int64_t *arg)
{
    return nest_backend->collect(nest_backend->submit(nest_pool, TASK_ADD_ONE, arg));
}

/*
 * W11: a task that submits a subtask to its own pool (2 workers, one idle)
 * and waits for it; one at a time, submit -> outer result. The subtask
 * must wake the idle worker at once: no timer in the path.
 */
static int cmd_w11(const struct backend *b, size_t iters)
{
    static const int64_t arg = 41;
    int64_t *lat = xmalloc_touched(iters * sizeof(*lat));
    nest_backend = b;
    nest_pool = b->pool_new(2);
    start_workers(b, nest_pool, 2);
    for (size_t i = 0; i < W2_WARMUP + iters; i++) {
        int64_t t0 = now_ns();
        int64_t v = b->collect(b->submit(nest_pool, TASK_NEST, &arg));
        int64_t t1 = now_ns();
        if (v != 42)
            die("w11: a task returned a wrong value");
        if (i >= W2_WARMUP)
            lat[i - W2_WARMUP] = t1 - t0;
    }
    b->pool_free(nest_pool);
    print_latency("w11", b->name, 2, lat, iters);
    free(lat);
    return 0;
}

/* ---------------------------------------------------------------- W8 */

static executor_t *pp_new(int workers);

/* Parent pid of @pid from /proc/PID/stat, or -1. */
static long ppid_of(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')'); /* the name may hold spaces */
    long ppid;
    char state;
    return rp && sscanf(rp + 1, " %c %ld", &state, &ppid) == 2 ? ppid : -1;
}

/* Context switches (voluntary + not) in one /proc status file. */
static long long ctxt_in(const char *status_path)
{
    char line[256];
    long long sum = 0, v;
    FILE *fp = fopen(status_path, "r");
    while (fp && fgets(line, sizeof(line), fp))
        if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1 ||
            sscanf(line, "nonvoluntary_ctxt_switches: %lld", &v) == 1)
            sum += v;
    if (fp)
        fclose(fp);
    return sum;
}

/* Context switches (voluntary + not) of every thread of @pid. */
static long long ctxt_of(long pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    long long sum = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sp[320];
        snprintf(sp, sizeof(sp), "/proc/%ld/task/%s/status", pid, e->d_name);
        sum += ctxt_in(sp);
    }
    if (d)
        closedir(d);
    return sum;
}

/* Context switches of this process and all its descendants (fork server, workers). */
static long long tree_ctxt(void)
{
    long tree[256];
    int n = 0;
    tree[n++] = (long)getpid();
    DIR *d = opendir("/proc");
    if (!d)
        die("cannot read /proc");
    for (bool grew = true; grew && n < 256;) {
        grew = false;
        rewinddir(d);
        struct dirent *e;
        while ((e = readdir(d)) && n < 256) {
            long pid = strtol(e->d_name, NULL, 10), pp;
            if (pid <= 0 || (pp = ppid_of(pid)) < 0)
                continue;
            bool in = false, parent_in = false;
            for (int i = 0; i < n; i++) {
                in |= tree[i] == pid;
                parent_in |= tree[i] == pp;
            }
            if (!in && parent_in) {
                tree[n++] = pid;
                grew = true;
            }
        }
    }
    closedir(d);
    long long sum = 0;
    for (int i = 0; i < n; i++)
        sum += ctxt_of(tree[i]);
    return sum;
}

enum { W8_TIMERS = 10000 };

/*
 * Wake-ups of a pool at rest: context switches per second of the whole
 * process tree over @seconds, with every worker idle ("idle"), every worker
 * asleep in a long task ("busy"), or idle with W8_TIMERS delayed tasks
 * pending, none due before the end ("timers": the one timer thread sleeps).
 */
static int cmd_w8(const char *kind, const char *state, size_t seconds)
{
    bool process = strcmp(kind, "process") == 0, busy = strcmp(state, "busy") == 0;
    bool timers = strcmp(state, "timers") == 0;
    if ((!process && strcmp(kind, "thread") != 0) ||
        (!busy && !timers && strcmp(state, "idle") != 0))
        die("w8: thread|process idle|busy|timers SECONDS");
    void *pool = process ? (void *)pp_new(W7_WORKERS) : cf_pool_new(W7_WORKERS);
    if (!process)
        start_workers(&cfutures_backend, pool, W7_WORKERS);
    static int64_t long_ns, one = 1;
    long_ns = (int64_t)seconds * 1000000000 + 1000000000;
    void *longs[W7_WORKERS];
    for (int i = 0; busy && i < W7_WORKERS; i++)
        longs[i] = cf_submit(pool, TASK_SLEEP, &long_ns);
    static future_t *delayed[W8_TIMERS];
    for (int i = 0; timers && i < W8_TIMERS; i++) {
        /* Due at different times, all of them after the measurement. */
        submit_options_t so = {.delay = (double)seconds + 60.0 + i * 1e-3};
        delayed[i] = executor_submit_with(pool, cf_add_one, &one, sizeof(one), &so);
        if (!delayed[i])
            die_code("executor_submit_with", -errno);
    }
    sleep_ns(200000000); /* settle: spinners park, the long tasks start */
    /* The measuring thread's own sleep is not the pool's. */
    long long c0 = tree_ctxt() - ctxt_in("/proc/thread-self/status");
    int64_t t0 = now_ns();
    sleep_ns((int64_t)seconds * 1000000000);
    long long c1 = tree_ctxt() - ctxt_in("/proc/thread-self/status");
    double per_s = (double)(c1 - c0) / ((double)(now_ns() - t0) / 1e9);
    for (int i = 0; busy && i < W7_WORKERS; i++)
        cf_collect(longs[i]);
    for (int i = 0; timers && i < W8_TIMERS; i++) {
        if (!future_cancel(delayed[i]))
            die("w8: a delayed task was not cancellable");
        future_unref(delayed[i]);
    }
    executor_free(pool);
    printf("{\"bench\":\"w8\",\"impl\":\"cfutures-%s\",\"state\":\"%s\",\"workers\":%d,"
           "\"switches_per_s\":%.2f}\n",
           kind, state, W7_WORKERS, per_s);
    printf("w8 cfutures %s pool, %d workers %s: %.1f context switches/s (process tree)\n", kind,
           W7_WORKERS,
           busy     ? "asleep in long tasks"
           : timers ? "idle, 10000 delayed tasks pending"
                    : "idle",
           per_s);
    return 0;
}

/* ---------------------------------------------------------------- W12 */

/*
 * Timers (issue 15): how late delayed tasks and a fixed-rate schedule start.
 * Each run writes its start time into memory shared with the workers (a
 * process pool's fork server inherits the mapping).
 */
enum { W12_DELAYED = 200, W12_RUNS = 100 };

struct w12_shared {
    _Atomic int n;
    int64_t start[W12_DELAYED + W12_RUNS];
};

static struct w12_shared *w12;

static void cf_w12_stamp(task_t *t)
{
    int i = atomic_fetch_add(&w12->n, 1);
    if (i < W12_DELAYED + W12_RUNS)
        w12->start[i] = now_ns();
    task_return_i64(t, now_ns());
}

static int cmd_w12(const char *kind)
{
    bool process = strcmp(kind, "process") == 0;
    if (!process && strcmp(kind, "thread") != 0)
        die("w12: thread|process");
    w12 = mmap(NULL, sizeof(*w12), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w12 == MAP_FAILED)
        die("w12: mmap");
    void *pool = process ? (void *)pp_new(2) : cf_pool_new(2);
    if (!process)
        start_workers(&cfutures_backend, pool, 2);
    /*
     * Delayed tasks, one due every 2 ms (none waits for a worker): start -
     * due, the due time taken just before each submit (the 200 submits take
     * about 0.3 ms, which a due time taken before them all would count).
     */
    static int64_t late[W12_DELAYED];
    future_t *fs[W12_DELAYED];
    int64_t t0 = now_ns();
    for (int i = 0; i < W12_DELAYED; i++) {
        double d = 0.002 * (i + 1) - (double)(now_ns() - t0) / 1e9; /* due t0 + 2 ms (i + 1) */
        d = d > 0 ? d : 0; /* a stalled submit loop: due at once */
        late[i] = now_ns() + (int64_t)(d * 1e9); /* due no earlier than this */
        fs[i] = executor_submit_with(pool, cf_w12_stamp, NULL, 0, &(submit_options_t){.delay = d});
        if (!fs[i])
            die_code("executor_submit_with", -errno);
    }
    int early = 0;
    for (int i = 0; i < W12_DELAYED; i++) {
        int64_t started = cf_collect(fs[i]);
        late[i] = started - late[i];
        early += late[i] < 0;
    }
    qsort(late, W12_DELAYED, sizeof(late[0]), cmp_i64);
    /* A 10 ms fixed-rate schedule of W12_RUNS runs: drift of the last start. */
    atomic_store(&w12->n, 0);
    const double period = 0.01;
    int64_t s0 = now_ns();
    future_t *sched = executor_schedule(pool, cf_w12_stamp, NULL, 0,
                                        &(schedule_options_t){.period = period,
                                                              .max_runs = W12_RUNS});
    if (!sched)
        die_code("executor_schedule", -errno);
    cf_collect(sched);
    if (atomic_load(&w12->n) != W12_RUNS)
        die("w12: the schedule ran a wrong number of times");
    int64_t worst = 0;
    for (int k = 0; k < W12_RUNS; k++) {
        int64_t off = w12->start[k] - (s0 + (int64_t)(k * period * 1e9));
        if (off < 0)
            die("w12: a scheduled run started early");
        worst = off > worst ? off : worst;
    }
    double drift = (double)(w12->start[W12_RUNS - 1] - w12->start[0] -
                            (int64_t)((W12_RUNS - 1) * period * 1e9)) / 1e6;
    executor_free(pool);
    munmap(w12, sizeof(*w12));
    double p50 = (double)percentile(late, W12_DELAYED, 50) / 1e3;
    double p99 = (double)percentile(late, W12_DELAYED, 99) / 1e3;
    printf("{\"bench\":\"w12\",\"impl\":\"cfutures-%s\",\"late_p50_us\":%.1f,"
           "\"late_p99_us\":%.1f,\"early\":%d,\"drift_ms\":%.3f,\"worst_run_late_ms\":%.3f}\n",
           kind, p50, p99, early, drift, (double)worst / 1e6);
    printf("w12 cfutures %s pool: %d delayed tasks start late by p50 %.0f us, p99 %.0f us "
           "(%d early); a 10 ms fixed-rate schedule drifts %.3f ms over %d runs (worst run "
           "%.3f ms late)\n",
           kind, W12_DELAYED, p50, p99, early, drift, W12_RUNS, (double)worst / 1e6);
    return early ? 1 : 0;
}

/* ---------------------------------------------------------------- W13 */

/*
 * W13 (issue 14): how soon the parent knows about a process-pool task that
 * waited in a worker's pipe behind another one. One worker; each sample
 * sends a 5 ms task, then, sent ahead behind it, one that stamps its start
 * in shared memory and then waits past its own 10 ms limit. The parent
 * polls the second future about every 20 us: how long after the stamp
 * future_running() turned true, and how long after start + 10 ms the future
 * failed FUT_EDEADLINE (the worker is then killed and a new one forked).
 */
enum { W13_LIMIT_NS = 10 * 1000 * 1000, W13_FIRST_NS = 5 * 1000 * 1000 };

static _Atomic int64_t *w13_start;

static void cf_w13_busy(task_t *t)
{
    sleep_ns(W13_FIRST_NS);
    task_return_i64(t, 0);
}

static void cf_w13_stamp_hang(task_t *t)
{
    atomic_store(w13_start, now_ns());
    while (!task_should_stop(t))
        sleep_ns(1000 * 1000);
    task_return_i64(t, 0);
}

static int cmd_w13(size_t samples)
{
    w13_start = mmap(NULL, sizeof(*w13_start), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w13_start == MAP_FAILED)
        die("w13: mmap");
    /*
     * The observer naps 20 us between looks, with 1 ns of timer slack, not
     * 50 us: so a nap took 22 us at p50 on a PVM guest, not 74 us. (Spinning
     * instead, with or without sched_yield, made the worst lag several times
     * longer there: the spinner held a CPU the manager wanted.)
     */
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    executor_t *ex = pp_new(1);
    int64_t *run_lag = xmalloc_touched(samples * sizeof(*run_lag));
    int64_t *dl_lag = xmalloc_touched(samples * sizeof(*dl_lag));
    for (size_t i = 0; i < samples; i++) {
        atomic_store(w13_start, 0);
        future_t *a = executor_submit(ex, cf_w13_busy, NULL, 0);
        future_t *b = executor_submit_with(ex, cf_w13_stamp_hang, NULL, 0,
                                           &(submit_options_t){.timeout = W13_LIMIT_NS / 1e9});
        if (!a || !b)
            die_code("executor_submit", -errno);
        int64_t running_at = 0, done_at = 0;
        while (!done_at) {
            int64_t now = now_ns();
            if (!running_at && future_running(b))
                running_at = now;
            if (future_done(b))
                done_at = now;
            sleep_ns(20 * 1000);
        }
        /* Seen done first (a nap overslept the whole run): the lag counts to
           then, an upper bound. Not a failure of the pool's. */
        running_at = running_at ? running_at : done_at;
        int64_t started = atomic_load(w13_start);
        if (!started || future_result(b, 0, NULL, NULL) != FUT_EDEADLINE)
            die("w13: the task did not start, or did not fail by its deadline");
        run_lag[i] = running_at - started;
        dl_lag[i] = done_at - (started + W13_LIMIT_NS);
        cf_collect(a);
        future_unref(b);
    }
    executor_free(ex);
    munmap((void *)w13_start, sizeof(*w13_start));
    qsort(run_lag, samples, sizeof(*run_lag), cmp_i64);
    qsort(dl_lag, samples, sizeof(*dl_lag), cmp_i64);
    double r50 = (double)percentile(run_lag, samples, 50) / 1e3;
    double rmax = (double)run_lag[samples - 1] / 1e3;
    double d50 = (double)percentile(dl_lag, samples, 50) / 1e3;
    double dmax = (double)dl_lag[samples - 1] / 1e3;
    printf("{\"bench\":\"w13\",\"impl\":\"cfutures-process\",\"samples\":%zu,"
           "\"running_p50_us\":%.1f,\"running_max_us\":%.1f,\"deadline_p50_us\":%.1f,"
           "\"deadline_max_us\":%.1f}\n",
           samples, r50, rmax, d50, dmax);
    printf("w13 cfutures process pool, a task that waited in a worker's pipe (%zu samples): "
           "future_running() %.0f us after its start (p50; max %.0f us), its 10 ms deadline "
           "failed it %.0f us late (p50; max %.0f us)\n",
           samples, r50, rmax, d50, dmax);
    free(run_lag);
    free(dl_lag);
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
    if (reps == 0) /* parse_count refuses 0; said here for the analyzer too */
        die("w6: REPS must be positive");
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

/* ------------------------------------------------------------ W9, W10 */

/* A chain of @n steps from a promise holding 0; checks the end is n. */
static int64_t chain_ns(executor_t *ex, size_t n)
{
    int64_t t0 = now_ns();
    future_t *p = future_new(), *f = future_ref(p);
    for (size_t i = 0; i < n; i++) {
        future_t *g = future_then(f, ex, cf_add_one, NULL);
        if (!g)
            die_code("future_then", -errno);
        future_unref(f);
        f = g;
    }
    int64_t *zero = xmalloc(sizeof(*zero));
    *zero = 0;
    future_set_result(p, zero, sizeof(*zero), free);
    int64_t v = -1;
    int rc = future_result_i64(f, FUT_FOREVER, &v);
    int64_t t1 = now_ns();
    if (rc != 0 || v != (int64_t)n)
        die("w9: the chain ended at %lld", (long long)v);
    future_unref(f);
    future_unref(p);
    return t1 - t0;
}

static int cmd_w9(size_t n)
{
    executor_t *ex = cf_pool_new(2);
    /* The same number of plain steps: submit, wait, submit the answer again. */
    int64_t t0 = now_ns(), v = 0;
    for (size_t i = 0; i < n; i++) {
        future_t *f = cf_submit(ex, TASK_ADD_ONE, &v);
        v = cf_collect(f);
    }
    int64_t plain = now_ns() - t0;
    if (v != (int64_t)n)
        die("w9: plain steps ended at %lld", (long long)v);
    int64_t pool = chain_ns(ex, n), inl = chain_ns(NULL, n);
    executor_free(ex);
    printf("{\"bench\":\"w9\",\"impl\":\"cfutures\",\"n\":%zu,\"chain_ms\":%.4f,"
           "\"inline_ms\":%.4f,\"plain_ms\":%.4f}\n",
           n, (double)pool / 1e6, (double)inl / 1e6, (double)plain / 1e6);
    printf("w9 cfutures: %zu future_then steps on a 2-worker pool %.2f ms, inline %.2f ms; "
           "%zu plain submit+result steps %.2f ms\n",
           n, (double)pool / 1e6, (double)inl / 1e6, n, (double)plain / 1e6);
    return 0;
}

/* @n tasks on @ex, then all of them, one futures_all, or one futures_any. */
static int64_t w10_round(executor_t *ex, future_t **fs, int64_t *args, size_t n, int how)
{
    int64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        fs[i] = cf_submit(ex, TASK_ADD_ONE, &args[i]);
    if (how == 0) {
        for (size_t i = 0; i < n; i++)
            if (cf_collect(fs[i]) != args[i] + 1)
                die("w10: a wrong answer");
    } else {
        future_t *c = how == 1 ? futures_all(fs, n, NULL) : futures_any(fs, n, NULL);
        if (!c)
            die_code("futures_all/any", -errno);
        int rc = future_result(c, FUT_FOREVER, NULL, NULL);
        if (rc != 0)
            die_code("futures_all/any result", rc);
        future_unref(c);
        for (size_t i = 0; i < n; i++)
            future_unref(fs[i]);
    }
    return now_ns() - t0; /* futures_any's losers may still run: shutdown waits */
}

static int cmd_w10(size_t n)
{
    executor_t *ex = cf_pool_new(2);
    future_t **fs = xmalloc_touched(n * sizeof(*fs));
    int64_t *args = xmalloc_touched(n * sizeof(*args));
    for (size_t i = 0; i < n; i++)
        args[i] = (int64_t)i;
    int64_t plain = w10_round(ex, fs, args, n, 0);
    int64_t all = w10_round(ex, fs, args, n, 1);
    int64_t any = w10_round(ex, fs, args, n, 2);
    executor_shutdown(ex, true, false); /* any's losers finish here */
    executor_free(ex);
    free(args);
    free(fs);
    printf("{\"bench\":\"w10\",\"impl\":\"cfutures\",\"n\":%zu,\"all_ms\":%.4f,"
           "\"any_ms\":%.4f,\"plain_ms\":%.4f}\n",
           n, (double)all / 1e6, (double)any / 1e6, (double)plain / 1e6);
    printf("w10 cfutures: %zu tasks + futures_all %.2f ms, + futures_any %.2f ms; "
           "%zu submits + results %.2f ms\n",
           n, (double)all / 1e6, (double)any / 1e6, n, (double)plain / 1e6);
    return 0;
}

/* ------------------------------------------------------------ cq wake-up */

/*
 * The raw and the queue round trips alternate in blocks of CQ_BLOCK on the
 * same two threads, so both see the same CPUs and the same machine state
 * (a raw run in a thread pair of its own was 9 us in some runs and 22 us in
 * others, as the scheduler placed the pair).
 */
enum { CQ_BLOCK = 100 };

static int cq_efd[2];
static completion_queue_t *cq_q;
static size_t cq_iters;

static void efd_wait(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    uint64_t v;
    while (poll(&p, 1, -1) < 0)
        ;
    if (read(fd, &v, sizeof(v)) != sizeof(v))
        die("cqwake: eventfd read");
}

static void efd_post(int fd)
{
    uint64_t one = 1;
    if (write(fd, &one, sizeof(one)) != sizeof(one))
        die("cqwake: eventfd write");
}

static bool cq_turn(size_t i)
{
    return (i / CQ_BLOCK) % 2 == 1;
}

/* Answers each round trip: raw (eventfd in) or queue (its fd, then next). */
static void *cq_peer(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < 2 * cq_iters; i++) {
        if (!cq_turn(i)) {
            efd_wait(cq_efd[0]);
        } else {
            struct pollfd p = {.fd = completion_queue_fd(cq_q), .events = POLLIN};
            while (poll(&p, 1, -1) < 0)
                ;
            future_t *f;
            if (completion_queue_next(cq_q, 0, &f) != 0)
                die("cqwake: the fd was readable with nothing ready");
            future_unref(f);
        }
        efd_post(cq_efd[1]);
    }
    return NULL;
}

static int cmd_cqwake(size_t iters)
{
    iters = (iters + CQ_BLOCK - 1) / CQ_BLOCK * CQ_BLOCK;
    int64_t *raw = xmalloc(iters * sizeof(*raw)), *cq = xmalloc(iters * sizeof(*cq));
    future_t **ps = xmalloc(iters * sizeof(*ps));
    cq_iters = iters;
    cq_efd[0] = eventfd(0, EFD_CLOEXEC);
    cq_efd[1] = eventfd(0, EFD_CLOEXEC);
    cq_q = completion_queue_new();
    for (size_t i = 0; i < iters; i++) {
        ps[i] = future_new();
        if (!cq_q || !ps[i] || completion_queue_add(cq_q, ps[i]) != 0)
            die("cqwake: no memory");
    }
    pthread_t th;
    pthread_create(&th, NULL, cq_peer, NULL);
    size_t nr = 0, nq = 0;
    for (size_t i = 0; i < 2 * iters; i++) {
        int64_t t0 = now_ns();
        if (!cq_turn(i))
            efd_post(cq_efd[0]);
        else
            future_set_result(ps[nq], NULL, 0, NULL);
        efd_wait(cq_efd[1]);
        int64_t dt = now_ns() - t0;
        if (!cq_turn(i))
            raw[nr++] = dt;
        else
            cq[nq++] = dt;
    }
    pthread_join(th, NULL);
    qsort(raw, iters, sizeof(*raw), cmp_i64);
    qsort(cq, iters, sizeof(*cq), cmp_i64);
    double raw50 = (double)percentile(raw, iters, 50) / 1e3;
    double cq50 = (double)percentile(cq, iters, 50) / 1e3;
    for (size_t i = 0; i < iters; i++)
        future_unref(ps[i]);
    completion_queue_free(cq_q);
    close(cq_efd[0]);
    close(cq_efd[1]);
    free(ps);
    free(raw);
    free(cq);
    printf("{\"bench\":\"cqwake\",\"impl\":\"cfutures\",\"iters\":%zu,\"p50_us\":%.3f,"
           "\"raw_p50_us\":%.3f}\n",
           iters, cq50, raw50);
    printf("cqwake: completion queue fd round trip p50 %.2f us; raw eventfd ping-pong p50 "
           "%.2f us (alternating blocks of %d on one thread pair)\n",
           cq50, raw50, CQ_BLOCK);
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

static int parse_workers(const char *s)
{
    size_t w = parse_count(s, "WORKERS");
    if (w > 1024)
        die("WORKERS must be at most 1024");
    return (int)w;
}

/* ------------------------------------------------------ process pools */

/* cfutures' process pool with every worker started and warm. */
static executor_t *pp_new(int workers)
{
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = workers});
    if (!ex)
        die_code("process_pool_executor_new", -errno);
    /* Workers start on demand: a few rounds of tiny tasks start them all. */
    static const int64_t zero = 0;
    size_t n = (size_t)workers * 8;
    future_t **fs = xmalloc(n * sizeof(*fs));
    for (size_t i = 0; i < n; i++)
        fs[i] = cf_submit(ex, TASK_ADD_ONE, &zero);
    for (size_t i = 0; i < n; i++)
        if (cf_collect(fs[i]) != 1)
            die("warm-up: a task returned a wrong value");
    free(fs);
    return ex;
}

static void pp_cycle(int workers)
{
    executor_free(pp_new(workers));
}

static size_t np_add_one(const void *arg, size_t len, void *out);

static void npp_cycle(int workers)
{
    npp_t *p = npp_new(workers, np_add_one);
    if (!p)
        die("npp_new failed");
    npp_free(p); /* waits for its workers */
}

/*
 * The CPU of a pool's own cycle (made, warmed, freed: the forks, the warm-up
 * tasks, the teardown), to leave out of a run's: the median of 3 cycles,
 * after one not counted (the first pays what any first use does: symbol
 * binding, the first mappings).
 */
static double pool_cycle_cpu(void (*cycle)(int), int workers)
{
    double c[3];
    cycle(workers);
    for (int i = 0; i < 3; i++) {
        double c0 = cpu_all();
        cycle(workers);
        c[i] = cpu_all() - c0;
    }
    double lo = fmin(c[0], fmin(c[1], c[2])), hi = fmax(c[0], fmax(c[1], c[2]));
    return c[0] + c[1] + c[2] - lo - hi;
}

/* A run's CPU less its pool's cycle: -1 (and a word) if that leaves nothing. */
static double run_cpu(const char *bench, double total, double cycle)
{
    if (total > cycle)
        return total - cycle;
    fprintf(stderr,
            "%s: the run's CPU (%.6f s) is within its pool's own cycle's (%.6f s): "
            "no CPU a task\n",
            bench, total, cycle);
    return -1;
}

/*
 * @faults: this process's page faults in the run (minor_faults), or -1;
 * @cpu: the CPU seconds of the run, every process of the pool's (cpu_all),
 * or -1.
 */
static void print_rate(const char *bench, const char *impl, size_t n, int workers,
                       size_t size, double secs, long faults, double cpu)
{
    double rate = (double)n / secs;
    double mbps = size ? (double)n * (double)size * 2 / secs / 1e6 : 0;
    printf("{\"bench\":\"%s\",\"impl\":\"%s\",\"n\":%zu,\"workers\":%d,\"size\":%zu,"
           "\"tasks_per_s\":%.0f,\"mb_per_s\":%.1f,\"secs\":%.6f",
           bench, impl, n, workers, size, rate, mbps, secs);
    if (faults >= 0)
        printf(",\"faults_per_task\":%.5f", (double)faults / (double)n);
    if (cpu >= 0)
        printf(",\"cpu_ns_per_task\":%.1f", cpu * 1e9 / (double)n);
    printf("}\n");
    char buf[32];
    printf("%s %s: %zu tasks, %d worker%s%s: %s tasks/s", bench, impl, n, workers,
           workers == 1 ? "" : "s", size ? ", echo" : "", grouped(rate, buf, sizeof(buf)));
    if (size)
        printf(", %.0f MB/s both ways (%zu B each way)", mbps, size);
    printf(" (%.1f ms", secs * 1e3);
    if (faults >= 0)
        printf("; %.4f page faults a task", (double)faults / (double)n);
    if (cpu >= 0)
        printf("; %.0f ns of CPU a task, all processes", cpu * 1e9 / (double)n);
    printf(")\n");
}

static int cmd_ppw3(size_t n, int workers)
{
    int64_t *args = xmalloc_touched(n * sizeof(*args));
    future_t **fs = xmalloc_touched(n * sizeof(*fs));
    for (size_t i = 0; i < n; i++)
        args[i] = (int64_t)i;
    double cycle = pool_cycle_cpu(pp_cycle, workers), c0 = cpu_all();
    executor_t *ex = pp_new(workers);
    long f0 = minor_faults();
    int64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        fs[i] = cf_submit(ex, TASK_ADD_ONE, &args[i]);
    for (size_t i = 0; i < n; i++)
        if (cf_collect(fs[i]) != (int64_t)i + 1)
            die("ppw3: a task returned a wrong value");
    int64_t t1 = now_ns();
    long faults = minor_faults() - f0;
    executor_free(ex); /* waits for the fork server, which waited for the workers */
    print_rate("ppw3", "cfutures", n, workers, 0, (double)(t1 - t0) / 1e9, faults,
               run_cpu("ppw3", cpu_all() - c0, cycle));
    free(fs);
    free(args);
    return 0;
}

static int cmd_ppw3map(size_t n, int workers, size_t chunk)
{
    int64_t *vals = xmalloc_touched(n * sizeof(*vals));
    const void **args = xmalloc_touched(n * sizeof(*args));
    size_t *lens = xmalloc_touched(n * sizeof(*lens));
    for (size_t i = 0; i < n; i++) {
        vals[i] = (int64_t)i;
        args[i] = &vals[i];
        lens[i] = sizeof(vals[i]);
    }
    executor_t *ex = pp_new(workers);
    int64_t t0 = now_ns();
    executor_map_t *m = executor_map(ex, cf_add_one, args, lens, n,
                                     &(map_options_t){.chunksize = chunk});
    if (!m)
        die_code("executor_map", -errno);
    for (size_t i = 0; i < n; i++) {
        const void *data;
        size_t len;
        int64_t v;
        int rc = executor_map_next(m, &data, &len);
        if (rc != 0)
            die_code("executor_map_next", rc);
        if (len != sizeof(v))
            die("ppw3map: a result of a wrong size");
        memcpy(&v, data, sizeof(v));
        if (v != (int64_t)i + 1)
            die("ppw3map: a task returned a wrong value");
    }
    executor_map_free(m);
    int64_t t1 = now_ns();
    executor_free(ex);
    print_rate("ppw3map", "cfutures", n, workers, 0, (double)(t1 - t0) / 1e9, -1, -1);
    free(lens);
    free(args);
    free(vals);
    return 0;
}

static void cf_echo(task_t *t)
{
    size_t len;
    const void *a = task_arg(t, &len);
    task_return_copy(t, a, len);
}

/* A SIZE-byte argument whose first 8 bytes are its index: echoes are checked. */
static unsigned char *echo_args(size_t n, size_t size)
{
    unsigned char *buf = xmalloc_touched(n * size);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = i;
        memcpy(buf + i * size, &v, sizeof(v));
    }
    return buf;
}

static void check_echo(const void *data, size_t len, size_t size, size_t i)
{
    uint64_t v;
    if (len != size)
        die("echo: a result of a wrong size");
    memcpy(&v, data, sizeof(v));
    if (v != i)
        die("echo: a wrong result");
}

/*
 * One pass of ppw3b on @ex: @n echoes of @size bytes, submitted, then each
 * result checked. Nanoseconds.
 */
static int64_t ppw3b_pass(executor_t *ex, const unsigned char *buf, future_t **fs, size_t n,
                         size_t size, bool borrow)
{
    const submit_options_t so = {.borrow_arg = borrow};
    int64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        fs[i] = executor_submit_with(ex, cf_echo, buf + i * size, size, &so);
        if (!fs[i])
            die_code("executor_submit", -errno);
    }
    for (size_t i = 0; i < n; i++) {
        const void *data;
        size_t len;
        int rc = future_result(fs[i], FUT_FOREVER, &data, &len);
        if (rc != 0)
            die_code("future_result", rc);
        check_echo(data, len, size, i);
        future_unref(fs[i]);
    }
    return now_ns() - t0;
}

/*
 * ppw3b, its first pass on a fresh pool (impl "cfutures"); with @passes 2 or
 * more, also the median of the later passes on the same pool
 * ("cfutures-warm"; of an even count, the slower middle one). A first pass
 * copies every argument at submit (the API copies; the naive pool writes
 * from the caller's buffer) into memory the process never used: 131 MB for
 * 2,000 of 64 KiB. On a VM guest whose free
 * memory is handed back to the host (free page reporting), that first
 * touch costs up to 30 times what it costs in memory the host still backs
 * (bench/RESULTS.md, session 34), and the first pass shows it; a later
 * pass reuses the copies' blocks. With @borrow (submit_options_t.borrow_arg,
 * impls "cfutures-borrow" and "cfutures-borrow-warm") the pool copies
 * nothing at submit, as the naive pool and Python: it reads each argument
 * from the caller's buffer as it sends the task.
 */
static int cmd_ppw3b(size_t n, int workers, size_t size, size_t passes, bool borrow)
{
    if (size < 8)
        die("SIZE must be at least 8");
    if (passes > 100) /* parse_count refused 0 */
        die("PASSES must be 1 to 100");
    unsigned char *buf = echo_args(n, size);
    future_t **fs = xmalloc_touched(n * sizeof(*fs));
    int64_t *later = xmalloc(passes * sizeof(*later));
    executor_t *ex = pp_new(workers);
    int64_t first = ppw3b_pass(ex, buf, fs, n, size, borrow);
    for (size_t p = 1; p < passes; p++)
        later[p - 1] = ppw3b_pass(ex, buf, fs, n, size, borrow);
    executor_free(ex);
    print_rate("ppw3b", borrow ? "cfutures-borrow" : "cfutures", n, workers, size,
               (double)first / 1e9, -1, -1);
    if (passes > 1) {
        qsort(later, passes - 1, sizeof(*later), cmp_i64);
        print_rate("ppw3b", borrow ? "cfutures-borrow-warm" : "cfutures-warm", n, workers,
                   size,
                   (double)later[(passes - 1) / 2] / 1e9, -1, -1);
    }
    free(later);
    free(fs);
    free(buf);
    return 0;
}

static int cmd_ppw7(size_t samples)
{
    int64_t *lat = xmalloc_touched(samples * sizeof(*lat));
    executor_t *ex = pp_new(W7_WORKERS);
    w7_run(ex, cf_submit, cf_collect, lat, samples);
    executor_free(ex);
    print_latency("ppw7", "cfutures", W7_WORKERS, lat, samples);
    free(lat);
    return 0;
}

static int cmd_ppw2(size_t iters, int workers)
{
    static const int64_t arg = 41;
    int64_t *lat = xmalloc_touched(iters * sizeof(*lat));
    executor_t *ex = pp_new(workers);
    for (size_t i = 0; i < W2_WARMUP + iters; i++) {
        int64_t t0 = now_ns();
        int64_t v = cf_collect(cf_submit(ex, TASK_ADD_ONE, &arg));
        int64_t t1 = now_ns();
        if (v != 42)
            die("ppw2: a task returned a wrong value");
        if (i >= W2_WARMUP)
            lat[i - W2_WARMUP] = t1 - t0;
    }
    executor_free(ex);
    print_latency("ppw2", "cfutures", workers, lat, iters);
    free(lat);
    return 0;
}

/* The naive process pool's tasks. */
static size_t np_add_one(const void *arg, size_t len, void *out)
{
    int64_t v;
    if (len != sizeof(v))
        return 0;
    memcpy(&v, arg, sizeof(v));
    v++;
    memcpy(out, &v, sizeof(v));
    return sizeof(v);
}

static size_t np_echo(const void *arg, size_t len, void *out)
{
    memcpy(out, arg, len);
    return len;
}

struct np_check {
    size_t size, seen;
};

static void np_add_one_result(void *ud, size_t i, const void *data, size_t len)
{
    struct np_check *c = ud;
    int64_t v;
    if (len != sizeof(v))
        die("npw3: a result of a wrong size");
    memcpy(&v, data, sizeof(v));
    if (v != (int64_t)i + 1)
        die("npw3: a task returned a wrong value");
    c->seen++;
}

static void np_echo_result(void *ud, size_t i, const void *data, size_t len)
{
    struct np_check *c = ud;
    check_echo(data, len, c->size, i);
    c->seen++;
}

static void np_warm(npp_t *p, int workers)
{
    size_t n = (size_t)workers * 2;
    unsigned char *buf = echo_args(n, sizeof(int64_t));
    const void **args = xmalloc(n * sizeof(*args));
    size_t *lens = xmalloc(n * sizeof(*lens));
    for (size_t i = 0; i < n; i++) {
        args[i] = buf + i * sizeof(int64_t);
        lens[i] = sizeof(int64_t);
    }
    if (npp_run(p, args, lens, n, np_echo_result, &(struct np_check){.size = sizeof(int64_t)}) !=
        0)
        die("naive process pool: warm-up failed");
    free(lens);
    free(args);
    free(buf);
}

static int cmd_npw3(size_t n, int workers, size_t size)
{
    if (size && size < 8)
        die("SIZE must be at least 8");
    size_t each = size ? size : sizeof(int64_t);
    unsigned char *buf = echo_args(n, each);
    const void **args = xmalloc_touched(n * sizeof(*args));
    size_t *lens = xmalloc_touched(n * sizeof(*lens));
    for (size_t i = 0; i < n; i++) {
        args[i] = buf + i * each;
        lens[i] = each;
    }
    double cycle = size ? 0 : pool_cycle_cpu(npp_cycle, workers), c0 = cpu_all();
    npp_t *p = npp_new(workers, size ? np_echo : np_add_one);
    if (!p)
        die("npp_new failed");
    if (size)
        np_warm(p, workers);
    struct np_check c = {.size = size};
    long f0 = minor_faults();
    int64_t t0 = now_ns();
    if (npp_run(p, args, lens, n, size ? np_echo_result : np_add_one_result, &c) != 0)
        die("naive process pool: a worker failed");
    int64_t t1 = now_ns();
    long faults = minor_faults() - f0;
    if (c.seen != n)
        die("naive process pool: a wrong count of results");
    npp_free(p); /* waits for the workers */
    print_rate(size ? "npw3b" : "npw3", "naive", n, workers, size,
               (double)(t1 - t0) / 1e9, size ? -1 : faults,
               size ? -1 : run_cpu("npw3", cpu_all() - c0, cycle));
    free(lens);
    free(args);
    free(buf);
    return 0;
}

/* ------------------------------------------------------- pipe limits */

static void xwrite(int fd, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            die("write: %s", strerror(errno));
        c += k;
        n -= (size_t)k;
    }
}

/* Reads exactly @n bytes; false at end of file. */
static bool xread(int fd, void *p, size_t n)
{
    unsigned char *c = p;
    while (n > 0) {
        ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            die("read: %s", strerror(errno));
        if (k == 0)
            return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

/*
 * A child that echoes @size-byte messages from to_child[0] to from_child[1];
 * with @size 0 it answers each byte with its CLOCK_MONOTONIC time as it read
 * it (8 bytes).
 */
static pid_t echo_child(int to_child[2], int from_child[2], size_t size)
{
    if (pipe(to_child) != 0 || pipe(from_child) != 0)
        die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(to_child[1]);
        close(from_child[0]);
        unsigned char *b = malloc(size ? size : 1);
        if (!b)
            _exit(3);
        if (size) { /* the echo, as it always was: the limits' path */
            while (xread(to_child[0], b, size))
                xwrite(from_child[1], b, size);
        } else {
            while (xread(to_child[0], b, 1)) {
                int64_t t = now_ns();
                xwrite(from_child[1], &t, sizeof(t));
            }
        }
        _exit(0);
    }
    close(to_child[0]);
    close(from_child[1]);
    return pid;
}

static void echo_child_end(pid_t pid, int to_child[2], int from_child[2])
{
    close(to_child[1]);
    close(from_child[0]);
    waitpid(pid, NULL, 0);
}

static int cmd_pipe(size_t iters)
{
    int tc[2], fc[2];
    int64_t *lat = xmalloc_touched(iters * sizeof(*lat));
    pid_t pid = echo_child(tc, fc, 1);
    unsigned char b = 'x';
    for (size_t i = 0; i < PINGPONG_WARMUP + iters; i++) {
        int64_t t0 = now_ns();
        xwrite(tc[1], &b, 1);
        if (!xread(fc[0], &b, 1))
            die("pipe: the child left");
        int64_t t1 = now_ns();
        if (i >= PINGPONG_WARMUP)
            lat[i - PINGPONG_WARMUP] = t1 - t0;
    }
    echo_child_end(pid, tc, fc);
    print_latency("pipe", "limit", 0, lat, iters);
    free(lat);
    return 0;
}

/*
 * W7's conditions for the pipe alone: a child sleeping in read() is woken
 * by one byte every W7_PERIOD_NS (so the CPUs go idle in between, as in
 * W7), and the figure is the write -> the child's first line after its
 * read (a stamp it sends back), one way: what a process pool's task start
 * behind 2 ms of quiet costs at the least, one wake-up, no manager.
 */
static int cmd_pipew7(size_t samples)
{
    int tc[2], fc[2];
    int64_t *lat = xmalloc_touched(samples * sizeof(*lat));
    pid_t pid = echo_child(tc, fc, 0); /* answers with its stamp */
    unsigned char b = 'x';
    int64_t next = now_ns();
    for (size_t i = 0; i < PINGPONG_WARMUP / 10 + samples; i++) {
        next += W7_PERIOD_NS;
        int64_t left = next - now_ns();
        if (left > 0)
            sleep_ns(left);
        int64_t t0 = now_ns(), t1;
        xwrite(tc[1], &b, 1);
        if (!xread(fc[0], &t1, sizeof(t1)))
            die("pipew7: the child left");
        if (i >= PINGPONG_WARMUP / 10)
            lat[i - PINGPONG_WARMUP / 10] = t1 - t0;
    }
    echo_child_end(pid, tc, fc);
    print_latency("pipew7", "limit", 0, lat, samples);
    free(lat);
    return 0;
}

/*
 * The machine's own lateness, no pool involved: context for the worst-case
 * rows (W7 p99, W12, W13). For SECONDS a thread reads the clock in a loop
 * and counts the gaps over 1 ms (the CPU was taken from it: the host, an
 * interrupt, another thread); then W12_DELAYED sleeps of 2 ms to an absolute
 * time (clock_nanosleep, the default 50 us timer slack, as a pool's timer
 * waits) say how late a bare sleep wakes.
 */
static int cmd_stalls(size_t seconds)
{
    int64_t end = now_ns() + (int64_t)seconds * 1000000000LL, prev = now_ns(), worst = 0;
    long gaps = 0;
    for (int64_t t = prev; t < end; prev = t) {
        t = now_ns();
        gaps += t - prev > 1000000;
        worst = t - prev > worst ? t - prev : worst;
    }
    static int64_t late[W12_DELAYED];
    for (int i = 0; i < W12_DELAYED; i++) {
        int64_t due = now_ns() + 2000000;
        struct timespec ts = {.tv_sec = due / 1000000000LL,
                              .tv_nsec = due % 1000000000LL};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        late[i] = now_ns() - due;
    }
    qsort(late, W12_DELAYED, sizeof(late[0]), cmp_i64);
    double p50 = (double)percentile(late, W12_DELAYED, 50) / 1e3;
    double p99 = (double)percentile(late, W12_DELAYED, 99) / 1e3;
    double per_s = (double)gaps / (double)seconds;
    printf("{\"bench\":\"stalls\",\"impl\":\"limit\",\"gaps_1ms_per_s\":%.1f,"
           "\"gap_max_us\":%.1f,\"sleep_p50_us\":%.1f,\"sleep_p99_us\":%.1f}\n",
           per_s, (double)worst / 1e3, p50, p99);
    printf(
        "stalls limit: a spinning thread lost its CPU for over 1 ms %.1f times a second "
        "(longest %.0f us); a bare 2 ms sleep woke late by p50 %.0f us, p99 %.0f us\n",
        per_s, (double)worst / 1e3, p50, p99);
    return 0;
}

static int cmd_echo(size_t n, size_t size)
{
    int tc[2], fc[2];
    unsigned char *b = xmalloc_touched(size);
    pid_t pid = echo_child(tc, fc, size);
    for (size_t i = 0; i < 16; i++) { /* warm the child's buffer */
        xwrite(tc[1], b, size);
        xread(fc[0], b, size);
    }
    int64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        xwrite(tc[1], b, size);
        if (!xread(fc[0], b, size))
            die("echo: the child left");
    }
    int64_t t1 = now_ns();
    echo_child_end(pid, tc, fc);
    print_rate("echo", "limit", n, 1, size, (double)(t1 - t0) / 1e9, -1, -1);
    free(b);
    return 0;
}

/* ---------------------------------------------------------------- W4 */

#define W4_COUNT 64
#define W4_SEED 20240601u
#define W4_LOW 40000000u

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/*
 * The course's prime_factor: try every divisor from 2 to value - 2, recurse
 * on the divisor and the quotient at the first hit. Returns the sum of the
 * prime factors (with multiplicity): the checksum.
 */
static uint64_t factor_sum(uint64_t v)
{
    for (uint64_t d = 2; d + 1 < v; d++)
        if (v % d == 0)
            return factor_sum(d) + factor_sum(v / d);
    return v;
}

static void cf_factor(task_t *t)
{
    uint64_t v;
    memcpy(&v, task_arg(t, NULL), sizeof(v));
    task_return_i64(t, (int64_t)factor_sum(v));
}

static uint64_t w4_pool_pass(executor_t *ex, const uint64_t *vals)
{
    future_t *fs[W4_COUNT];
    for (size_t i = 0; i < W4_COUNT; i++) {
        fs[i] = executor_submit(ex, cf_factor, &vals[i], sizeof(vals[i]));
        if (!fs[i])
            die_code("executor_submit", -errno);
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < W4_COUNT; i++)
        sum += (uint64_t)cf_collect(fs[i]);
    return sum;
}

static int cmd_w4(const char *impl, int workers, size_t pairs)
{
    uint64_t vals[W4_COUNT], st = W4_SEED;
    for (size_t i = 0; i < W4_COUNT; i++)
        vals[i] = W4_LOW + splitmix64(&st) % W4_LOW;
    executor_t *ex = NULL;
    if (strcmp(impl, "process") == 0)
        ex = pp_new(workers);
    else if (strcmp(impl, "thread") == 0)
        ex = cf_pool_new(workers);
    else if (strcmp(impl, "serial") != 0)
        die("w4: serial, thread or process");
    double *ratio = xmalloc(pairs * sizeof(*ratio));
    double *ser = xmalloc(pairs * sizeof(*ser));
    double *par = xmalloc(pairs * sizeof(*par));
    uint64_t checksum = 0;
    for (size_t p = 0; p < pairs; p++) {
        int64_t t0 = now_ns();
        uint64_t s = 0;
        for (size_t i = 0; i < W4_COUNT; i++)
            s += factor_sum(vals[i]);
        int64_t t1 = now_ns();
        uint64_t q = ex ? w4_pool_pass(ex, vals) : s;
        int64_t t2 = now_ns();
        if (q != s)
            die("w4: the pool's checksum differs from the serial one");
        checksum = s;
        ser[p] = (double)(t1 - t0) / 1e9;
        par[p] = ex ? (double)(t2 - t1) / 1e9 : ser[p];
        ratio[p] = ser[p] / par[p];
    }
    executor_free(ex);
    /* The median pair, by speedup. */
    size_t *idx = xmalloc(pairs * sizeof(*idx));
    for (size_t i = 0; i < pairs; i++)
        idx[i] = i;
    for (size_t i = 1; i < pairs; i++)
        for (size_t j = i; j > 0 && ratio[idx[j - 1]] > ratio[idx[j]]; j--) {
            size_t tmp = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = tmp;
        }
    size_t m = idx[pairs / 2];
    printf("{\"bench\":\"w4\",\"impl\":\"%s\",\"workers\":%d,\"pairs\":%zu,\"speedup\":%.4f,"
           "\"serial_s\":%.4f,\"pool_s\":%.4f,\"checksum\":%llu}\n",
           impl, workers, pairs, ratio[m], ser[m], par[m], (unsigned long long)checksum);
    printf("w4 %s: 64 factorizations, %d workers, median of %zu pairs: serial %.3f s, pool "
           "%.3f s, speedup %.2f (checksum %llu)\n",
           impl, workers, pairs, ser[m], par[m], ratio[m], (unsigned long long)checksum);
    free(idx);
    free(par);
    free(ser);
    free(ratio);
    return 0;
}

/* Process-pool and pipe commands; -1 if @cmd is none of them. */
static int process_cmds(int argc, char **argv)
{
    const char *cmd = argv[1];
#define ARGS(k) (argc == (k) + 2)
#define CNT(i, what) parse_count(argv[(i) + 1], what)
    if (strcmp(cmd, "ppw3") == 0 && ARGS(2))
        return cmd_ppw3(CNT(1, "N"), parse_workers(argv[3]));
    if (strcmp(cmd, "ppw3map") == 0 && ARGS(3))
        return cmd_ppw3map(CNT(1, "N"), parse_workers(argv[3]), CNT(3, "CHUNK"));
    if (strcmp(cmd, "ppw3b") == 0 && (ARGS(3) || ARGS(4) || ARGS(5))) {
        bool borrow = ARGS(5) && strcmp(argv[6], "borrow") == 0;
        if (ARGS(5) && !borrow && strcmp(argv[6], "copy") != 0)
            die("ppw3b's MODE is copy or borrow");
        return cmd_ppw3b(CNT(1, "N"), parse_workers(argv[3]), CNT(3, "SIZE"),
                         ARGS(4) || ARGS(5) ? CNT(4, "PASSES") : 1, borrow);
    }
    if (strcmp(cmd, "ppw2") == 0 && ARGS(2))
        return cmd_ppw2(CNT(1, "ITERS"), parse_workers(argv[3]));
    if (strcmp(cmd, "npw3") == 0 && ARGS(2))
        return cmd_npw3(CNT(1, "N"), parse_workers(argv[3]), 0);
    if (strcmp(cmd, "npw3b") == 0 && ARGS(3))
        return cmd_npw3(CNT(1, "N"), parse_workers(argv[3]), CNT(3, "SIZE"));
    if (strcmp(cmd, "pipe") == 0 && ARGS(1))
        return cmd_pipe(CNT(1, "ITERS"));
    if (strcmp(cmd, "stalls") == 0 && ARGS(1))
        return cmd_stalls(CNT(1, "SECONDS"));
    if (strcmp(cmd, "pipew7") == 0 && ARGS(1))
        return cmd_pipew7(CNT(1, "SAMPLES"));
    if (strcmp(cmd, "echo") == 0 && ARGS(2))
        return cmd_echo(CNT(1, "N"), CNT(2, "SIZE"));
    if (strcmp(cmd, "ppw7") == 0 && ARGS(1))
        return cmd_ppw7(CNT(1, "SAMPLES"));
    if (strcmp(cmd, "w8") == 0 && ARGS(3))
        return cmd_w8(argv[2], argv[3], CNT(3, "SECONDS"));
    if (strcmp(cmd, "w12") == 0 && ARGS(1))
        return cmd_w12(argv[2]);
    if (strcmp(cmd, "w13") == 0 && ARGS(1))
        return cmd_w13(CNT(1, "SAMPLES"));
    if (strcmp(cmd, "w4") == 0 && ARGS(3))
        return cmd_w4(argv[2], parse_workers(argv[3]), CNT(3, "PAIRS"));
#undef CNT
#undef ARGS
    return -1;
}

/* -------------------------------------------------------------- main */

static _Noreturn void usage(void)
{
    fputs("usage: bench_cfutures [--naive] w1 N WORKERS\n"
          "       bench_cfutures [--naive] w2 ITERS WORKERS\n"
          "       bench_cfutures [--naive] w5 N\n"
          "       bench_cfutures [--naive] w7 SAMPLES\n"
          "       bench_cfutures [--naive] w11 ITERS\n"
          "       bench_cfutures ppw7 SAMPLES\n"
          "       bench_cfutures w8 thread|process idle|busy|timers SECONDS\n"
          "       bench_cfutures w12 thread|process\n"
          "       bench_cfutures w13 SAMPLES\n"
          "       bench_cfutures w6 N REPS\n"
          "       bench_cfutures cond ITERS\n"
          "       bench_cfutures spin ITERS\n"
          "       bench_cfutures ppw3|npw3 N WORKERS\n"
          "       bench_cfutures ppw3map N WORKERS CHUNK\n"
          "       bench_cfutures ppw3b N WORKERS SIZE [PASSES [copy|borrow]]\n"
          "       bench_cfutures npw3b N WORKERS SIZE\n"
          "       bench_cfutures ppw2 ITERS WORKERS\n"
          "       bench_cfutures pipe ITERS\n"
          "       bench_cfutures pipew7 SAMPLES\n"
          "       bench_cfutures stalls SECONDS\n"
          "       bench_cfutures echo N SIZE\n"
          "       bench_cfutures w4 serial|thread|process WORKERS PAIRS\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc >= 2) {
        int prc = process_cmds(argc, argv);
        if (prc >= 0)
            return prc;
    }
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
    bool pool_cmd = strcmp(cmd, "w1") == 0 || strcmp(cmd, "w2") == 0 || strcmp(cmd, "w5") == 0 ||
                    strcmp(cmd, "w7") == 0 || strcmp(cmd, "w11") == 0;
    if (!pool_cmd && b == &naive_backend)
        die("%s: --naive applies to w1, w2, w5, w7 and w11 only", cmd);
    int rc;
    if (strcmp(cmd, "w1") == 0 && npos == 3)
        rc = cmd_w1(b, parse_count(pos[1], "N"), parse_workers(pos[2]));
    else if (strcmp(cmd, "w2") == 0 && npos == 3)
        rc = cmd_w2(b, parse_count(pos[1], "ITERS"), parse_workers(pos[2]));
    else if (strcmp(cmd, "w7") == 0 && npos == 2)
        rc = cmd_w7(b, parse_count(pos[1], "SAMPLES"));
    else if (strcmp(cmd, "w11") == 0 && npos == 2)
        rc = cmd_w11(b, parse_count(pos[1], "ITERS"));
    else if (strcmp(cmd, "w5") == 0 && npos == 2)
        rc = cmd_w5(b, parse_count(pos[1], "N"));
    else if (strcmp(cmd, "w6") == 0 && npos == 3)
        rc = cmd_w6(parse_count(pos[1], "N"), parse_count(pos[2], "REPS"));
    else if (strcmp(cmd, "w9") == 0 && npos == 2)
        rc = cmd_w9(parse_count(pos[1], "N"));
    else if (strcmp(cmd, "w10") == 0 && npos == 2)
        rc = cmd_w10(parse_count(pos[1], "N"));
    else if (strcmp(cmd, "cqwake") == 0 && npos == 2)
        rc = cmd_cqwake(parse_count(pos[1], "ITERS"));
    else if ((strcmp(cmd, "cond") == 0 || strcmp(cmd, "spin") == 0) && npos == 2)
        rc = cmd_pingpong(cmd, parse_count(pos[1], "ITERS"));
    else
        usage();
    return rc;
}
