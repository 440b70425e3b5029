/*
 * check_process_pool: the process pool's own behaviour (black box): worker
 * deaths, deadlines, big payloads, recycling, initializers, garbage frames,
 * cancellation of tasks sent ahead, hygiene (no fd, zombie or orphan left).
 * Python idioms are named in each test's comment; peer-behaviours.md items
 * in tests/README.md.
 *
 * Workers are forked (through the fork server) from this test process when
 * the pool is created, so tasks here see `shm`, a MAP_SHARED page made before
 * the pool: it is how tasks and the test hand things over (gates, pids),
 * never sleeps.
 */
#include "testutil.h"

#include "process/heap.h" /* white-box: the shared argument heap */
#include "process/pump.h" /* white-box: the MPI relay's hook (lib/process) */
#include "process/wire.h" /* white-box: a chunk's RESULTS frame */
#include "executor.h"     /* white-box: the pool's chunk_fit */

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/futex.h>

#define NRAN 1000

struct shm {
    _Atomic int gate;      /* tasks wait for it */
    _Atomic int started;   /* tasks that began */
    _Atomic int pid;       /* the last task's worker pid */
    _Atomic int ran[NRAN]; /* how often task i ran */
    _Atomic int gates[8];  /* t_hold waits for one */
    _Atomic int go[64];    /* t_start_pos returns once go[its position] is set */
};

static struct shm *shm;
static int base_fds, base_threads;
static int init_value;

/* Maps the shared page and notes the fds; call before creating a pool. */
static void begin(void)
{
    signal(SIGPIPE, SIG_DFL); /* the library must not need SIGPIPE ignored */
    shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(shm, MAP_FAILED);
    base_fds = count_fds();
    base_threads = thread_baseline();
}

/* After executor_free: no fd, no thread, no child (zombie or not), the fork server gone. */
static void end_check(pid_t fs_pid)
{
    ck_assert_int_eq(count_fds(), base_fds);
    ck_assert(wait_threads(base_threads)); /* a joined thread leaves /proc a moment later */
    ck_assert_int_eq(count_threads(), base_threads);
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
    if (fs_pid > 0)
        ck_assert(kill(fs_pid, 0) == -1 && errno == ESRCH);
    munmap(shm, sizeof(*shm));
}

static void wait_gate(void)
{
    double end = now_s() + T_LONG;
    while (!atomic_load(&shm->gate) && now_s() < end)
        usleep(100);
}

static bool started_at_least(void *n)
{
    return atomic_load(&shm->started) >= *(int *)n;
}

static void wait_started(int n)
{
    ck_assert(eventually(started_at_least, &n, T_LONG));
}

/* Map arguments 0..n-1: vals[i] = i, args[i] = &vals[i], lens[i] = sizeof(int). */
static void int_args(int *vals, const void **args, size_t *lens, int n)
{
    for (int i = 0; i < n; i++) {
        vals[i] = i;
        args[i] = &vals[i];
        lens[i] = sizeof(int);
    }
}

/* ---------------------------------------------------------- tasks */

static void t_pid(task_t *t)
{
    task_return_i64(t, getpid());
}

static void t_ppid(task_t *t)
{
    task_return_i64(t, getppid());
}

/* arg: an int index. Counts itself started, waits for the gate, records the run. */
static void t_block(task_t *t)
{
    const int *i = task_arg(t, NULL);
    atomic_store(&shm->pid, getpid());
    atomic_fetch_add(&shm->started, 1);
    wait_gate();
    if (i && *i >= 0 && *i < NRAN)
        atomic_fetch_add(&shm->ran[*i], 1);
    task_return_i64(t, i ? *i : -1);
}

/* t_hold's argument: the gate it waits for, and whether it then aborts. */
/* The library built with the test hooks (executor.h). */
size_t cf_test_settled(executor_t *ex);

/* cf_test_settled(ex) >= n: submits the pool holds in place. */
struct settle_goal {
    executor_t *ex;
    size_t n;
};

static bool settle_reached(void *goal)
{
    const struct settle_goal *g = goal;
    return cf_test_settled(g->ex) >= g->n;
}

/* True once @ex holds @n submits in place, within T_LONG. */
static bool settles(executor_t *ex, size_t n)
{
    return eventually(settle_reached, &(struct settle_goal){ex, n}, T_LONG);
}

struct hold {
    int gate, abort_it, stubborn; /* stubborn: ignores task_should_stop */
};

/*
 * Notes its pid in ran[gate], counts itself started, waits for its gate,
 * then aborts or returns (t_hold returns its pid).
 */
static void hold_here(task_t *t)
{
    const struct hold *h = task_arg(t, NULL);
    atomic_store(&shm->ran[h->gate], getpid());
    atomic_fetch_add(&shm->started, 1);
    double end = now_s() + T_LONG;
    while (!atomic_load(&shm->gates[h->gate]) && (h->stubborn || !task_should_stop(t)) &&
           now_s() < end)
        usleep(100);
    if (h->abort_it)
        abort();
}

static void t_hold(task_t *t)
{
    hold_here(t);
    task_return_i64(t, getpid());
}

/* t_hold with its pid in 64 bytes: a frame, not the shared answer record. */
static void t_hold_wide(task_t *t)
{
    hold_here(t);
    int64_t wide[8] = {getpid()};
    task_return_copy(t, wide, sizeof(wide));
}

/* arg: an int index: records the run. */
static void t_mark(task_t *t)
{
    const int *i = task_arg(t, NULL);
    atomic_fetch_add(&shm->ran[*i], 1);
    task_return_i64(t, *i);
}

static void t_abort(task_t *t)
{
    abort();
}

static void t_segv(task_t *t)
{
    raise(SIGSEGV);
}

static void t_exit3(task_t *t)
{
    _exit(3);
}

static void t_exit0(task_t *t)
{
    exit(0);
}

static void t_forever(task_t *t)
{
    atomic_fetch_add(&shm->started, 1);
    wait_gate();
}

/* Counts itself started, then spins until task_should_stop(); returns 7. */
static void t_until_stop_mark(task_t *t)
{
    atomic_fetch_add(&shm->started, 1);
    double end = now_s() + T_LONG;
    while (!task_should_stop(t) && now_s() < end)
        ;
    task_return_i64(t, task_should_stop(t) ? 7 : -7);
}

static void t_ignore_term(task_t *t)
{
    signal(SIGTERM, SIG_IGN);
    atomic_fetch_add(&shm->started, 1);
    wait_gate();
}

/* arg: a uint64 size: returns that many pattern bytes. */
static void t_big(task_t *t)
{
    const uint64_t *n = task_arg(t, NULL);
    unsigned char *p = malloc(*n);
    if (!p) {
        task_raise(t, 1, "no memory");
        return;
    }
    for (uint64_t i = 0; i < *n; i++)
        p[i] = (unsigned char)(i * 7 + 3);
    task_return(t, p, *n, free);
}

/* Writes junk on its own result pipe, then waits to be killed for it. */
static void t_garbage(task_t *t)
{
    const char *fd = getenv("CFUTURES_WORKER_RESULT_FD");
    if (!fd) {
        task_raise(t, 1, "no test hook");
        return;
    }
    static const char junk[64] = "this is not a frame, not at all, no magic here......";
    ssize_t n = write(atoi(fd), junk, sizeof(junk));
    (void)n;
    wait_gate();
}

/* Writes a well-formed header that claims an absurd (2^63) payload. */
static void t_absurd_frame(task_t *t)
{
    const char *fd = getenv("CFUTURES_WORKER_RESULT_FD");
    if (!fd) {
        task_raise(t, 1, "no test hook");
        return;
    }
    unsigned char h[32] = {'C', 'F', 'W', 'P', 1, 0, 2, 0};
    h[31] = 0x80; /* len = 2^63, little-endian */
    ssize_t n = write(atoi(fd), h, sizeof(h));
    (void)n;
    wait_gate();
}

/* Writes a NOTE frame that names a task (a NOTE never does). */
static void t_bad_note(task_t *t)
{
    const char *fd = getenv("CFUTURES_WORKER_RESULT_FD");
    if (!fd) {
        task_raise(t, 1, "no test hook");
        return;
    }
    unsigned char h[32] = {'C', 'F', 'W', 'P', 1, 0, 7, 0};
    h[16] = 5; /* id 5 */
    ssize_t n = write(atoi(fd), h, sizeof(h));
    (void)n;
    wait_gate();
}

static void t_fork(task_t *t)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(5);
    int st = 0;
    waitpid(pid, &st, 0);
    task_return_i64(t, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/*
 * Forks a child that answers -1 and returns from the task function; the
 * worker waits for it (30 s at most, then kills it) and answers 42 if it
 * exited 0, else -2 (killed: it went on as a worker).
 */
static void t_fork_child_returns(task_t *t)
{
    pid_t pid = fork();
    if (pid == 0) {
        task_return_i64(t, -1);
        return;
    }
    int st = 0;
    for (int i = 0; i < 3000 && waitpid(pid, &st, WNOHANG) == 0; i++)
        usleep(10000);
    if (waitpid(pid, &st, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    task_return_i64(t, WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 42 : -2);
}

/* Returns the worker's open fds, and whether 0 reads /dev/null (EOF at once). */
static void t_fds(task_t *t)
{
    char c;
    int64_t eof = read(0, &c, 1) == 0;
    task_return_i64(t, (int64_t)count_fds() * 2 + eof);
}

/* Writes a byte to fds 3 and 4 (files its parent opened): bit i set if fd 3 + i gave EBADF. */
static void t_stray_writes(task_t *t)
{
    int64_t bad = 0;
    for (int i = 0; i < 2; i++)
        if (write(3 + i, "x", 1) < 0 && errno == EBADF)
            bad |= 1 << i;
    task_return_i64(t, bad);
}

/*
 * Writes a line to stdout and to stderr; returns bit i - 1 set if fd i (1, 2)
 * is not /dev/null (what a worker gets there when its parent had it closed).
 */
static void t_std_null(task_t *t)
{
    struct stat null, st;
    int64_t other = 0;
    printf("to stdout\n");
    fprintf(stderr, "to stderr, a line longer than a fork server message\n");
    fflush(stdout);
    for (int fd = 1; fd <= 2; fd++)
        if (stat("/dev/null", &null) != 0 || fstat(fd, &st) != 0 ||
            st.st_rdev != null.st_rdev || st.st_ino != null.st_ino)
            other |= 1 << (fd - 1);
    task_return_i64(t, other);
}

static void t_init_fail(task_t *t)
{
    task_raise(t, 7, "init says no");
}

static void t_init_ok(task_t *t)
{
    const int *v = task_arg(t, NULL);
    init_value = *v;
}

static void t_get_init(task_t *t)
{
    task_return_i64(t, init_value);
}

/* ---------------------------------------------------------- helpers */

static int64_t result_i64(future_t *f)
{
    int64_t v = -12345;
    ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
    return v;
}

/* Submits fn over @len zero bytes (a big argument: piped over 1 MiB). */
static future_t *submit_zeros(executor_t *ex, task_fn fn, size_t len)
{
    char *arg = calloc(1, len);
    ck_assert_ptr_nonnull(arg);
    future_t *f = executor_submit(ex, fn, arg, len);
    free(arg); /* copied at submit */
    ck_assert_ptr_nonnull(f);
    return f;
}

static pid_t fs_pid_of(executor_t *ex)
{
    future_t *f = executor_submit(ex, t_ppid, NULL, 0);
    ck_assert_ptr_nonnull(f);
    pid_t pid = (pid_t)result_i64(f);
    future_unref(f);
    return pid;
}

static const future_error_t *failure(future_t *f, int status)
{
    const future_error_t *err = NULL;
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), status);
    ck_assert_int_eq(future_exception(f, 0, &err), 0);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, status);
    return err;
}

/* ---------------------------------------------------------- core */

/*
 * The shared argument heap: a size with no free block and no room splits a
 * free larger block (a burst of 1 MiB arguments left every smaller task
 * piped for good), and once every block is free the heap starts over.
 */
START_TEST(test_process_pool_heap_splits_and_starts_over)
{
    struct cf_heap h;
    ck_assert_int_eq(cf_heap_init(&h, 2u << 20), 0);
    uint32_t a, b, small, mid;
    ck_assert_int_eq(cf_heap_alloc(&h, 1u << 20, &a), CF_HEAP_CLASSES);
    ck_assert_int_eq(cf_heap_alloc(&h, 1u << 20, &b), CF_HEAP_CLASSES);
    ck_assert(!cf_heap_fits(&h, 100)); /* full */
    cf_heap_free(&h, CF_HEAP_CLASSES, a);
    ck_assert(cf_heap_fits(&h, 100));
    ck_assert_int_eq(cf_heap_alloc(&h, 100, &small), 1);
    ck_assert_uint_eq(small, a);
    ck_assert_int_eq(cf_heap_alloc(&h, 512u << 10, &mid), CF_HEAP_CLASSES - 1);
    ck_assert_uint_eq(mid, a + (512u << 10)); /* the split's upper half */
    ck_assert(!cf_heap_fits(&h, 1u << 20));
    cf_heap_free(&h, 1, small);
    cf_heap_free(&h, CF_HEAP_CLASSES - 1, mid);
    ck_assert(cf_heap_fits(&h, 1u << 20)); /* the halves merged again, b in use */
    uint32_t again;
    ck_assert_int_eq(cf_heap_alloc(&h, 1u << 20, &again), CF_HEAP_CLASSES);
    ck_assert_uint_eq(again, a);
    cf_heap_free(&h, CF_HEAP_CLASSES, again);
    cf_heap_free(&h, CF_HEAP_CLASSES, b); /* all free: it starts over */
    ck_assert_int_eq(cf_heap_alloc(&h, 1u << 20, &a), CF_HEAP_CLASSES);
    ck_assert_int_eq(cf_heap_alloc(&h, 1u << 20, &b), CF_HEAP_CLASSES);
    ck_assert_uint_ne(a, b);
    cf_heap_destroy(&h);
}
END_TEST

/*
 * A freed block is used again before memory never touched: a size with no
 * free block of its own splits a free larger one (two freed 64 KiB
 * neighbours merged into 128 KiB) rather than carve at the top. Carving
 * came first before, and a burst of 64 KiB arguments wrote the whole 32 MiB
 * heap once, a page fault and a cleared page each 4 KiB (bench W3b).
 */
START_TEST(test_process_pool_heap_reuses_before_carving)
{
    enum { K64 = 64u << 10 };
    struct cf_heap h;
    ck_assert_int_eq(cf_heap_init(&h, 4u << 20), 0);
    uint32_t keep, a, x, y, z;
    ck_assert_int_eq(cf_heap_alloc(&h, 100, &keep), 1); /* never idle: no start-over */
    int cls = cf_heap_alloc(&h, K64, &a);
    ck_assert_int_gt(cls, 0);
    ck_assert_int_eq(cf_heap_alloc(&h, K64, &x), cls);
    ck_assert_int_eq(cf_heap_alloc(&h, K64, &y), cls);
    ck_assert_uint_eq(x, 2 * K64);
    ck_assert_uint_eq(y, 3 * K64);
    cf_heap_free(&h, cls, x);
    cf_heap_free(&h, cls, y); /* x and y merge into one 128 KiB block */
    ck_assert_int_eq(cf_heap_alloc(&h, K64, &z), cls);
    ck_assert_uint_eq(z, x); /* not 4 * K64, fresh at the top */
    ck_assert_int_eq(cf_heap_alloc(&h, K64, &z), cls);
    ck_assert_uint_eq(z, y); /* the split's other half */
    cf_heap_destroy(&h);
}
END_TEST

/* The resident KiB of this process's mapping of exactly @bytes, shared
   read-write (the pool's argument heap), from /proc/self/smaps; -1 if none. */
static long shared_rss_kib(size_t bytes)
{
    FILE *fp = fopen("/proc/self/smaps", "r");
    if (!fp)
        return -1;
    char line[512], perms[8];
    unsigned long lo, hi;
    bool in = false;
    long rss = -1;
    while (fgets(line, sizeof(line), fp)) {
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) {
            in = hi - lo == bytes && !strcmp(perms, "rw-s");
            continue;
        }
        long kib;
        if (in && sscanf(line, "Rss: %ld kB", &kib) == 1) {
            rss = kib;
            break;
        }
    }
    fclose(fp);
    return rss;
}

static void t_first_byte(task_t *t)
{
    const unsigned char *a = task_arg(t, NULL);
    task_return_i64(t, a[0]);
}

/*
 * A burst of 64 KiB arguments queued behind two busy workers takes heap
 * blocks for about 1 MiB a worker, not one for each of the 126 free cells
 * (8 MiB, each page written for the first time: a page fault and a cleared
 * page; bench W3b). The rest wait in the manager, and start as blocks come
 * back.
 */
START_TEST(test_process_pool_heap_burst_stays_small)
{
    enum { N = 200, LEN = 64 << 10 };
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    ck_assert_ptr_nonnull(ex);
    struct hold h[2] = {{.gate = 0}, {.gate = 1}};
    future_t *held[2];
    for (int i = 0; i < 2; i++)
        held[i] = executor_submit(ex, t_hold, &h[i], sizeof(h[i]));
    double end = now_s() + T_LONG;
    while (atomic_load(&shm->started) < 2 && now_s() < end)
        usleep(1000);
    ck_assert_int_eq(atomic_load(&shm->started), 2);
    long before = shared_rss_kib(CF_HEAP_BYTES);
    ck_assert_int_ge(before, 0);
    unsigned char *arg = malloc(LEN);
    ck_assert_ptr_nonnull(arg);
    future_t *burst[N];
    for (int i = 0; i < N; i++) {
        memset(arg, i, LEN);
        burst[i] = executor_submit(ex, t_first_byte, arg, LEN);
        ck_assert_ptr_nonnull(burst[i]);
    }
    ck_assert(settles(ex, N + 2)); /* the manager has sent what it will */
    long during = shared_rss_kib(CF_HEAP_BYTES);
    ck_assert_msg(during - before <= 3 * 1024, "the heap grew %ld KiB", during - before);
    for (int i = 0; i < 2; i++)
        atomic_store(&shm->gates[i], 1);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(result_i64(burst[i]), i & 0xff);
        future_unref(burst[i]);
    }
    for (int i = 0; i < 2; i++) {
        ck_assert_int_gt(result_i64(held[i]), 0);
        future_unref(held[i]);
    }
    free(arg);
    pid_t fs = fs_pid_of(ex);
    executor_free(ex);
    end_check(fs);
}
END_TEST

/*
 * The heap under a long mix of sizes, never idle (one small block is kept
 * throughout): blocks never overlap, stay inside the heap and aligned to
 * their size, and at the end, with only that block left, a 1 MiB block
 * fits again (freed blocks merge with their buddies). Without the merge
 * the small blocks split off the big ones broke them for good.
 */
START_TEST(test_process_pool_heap_mix_merges_back)
{
    enum { UNIT = CF_HEAP_MIN, BYTES = 4u << 20, UNITS = BYTES / UNIT, LIVE = 300 };
    struct cf_heap h;
    ck_assert_int_eq(cf_heap_init(&h, BYTES), 0);
    static unsigned char owner[UNITS]; /* 1: a live block covers this unit */
    memset(owner, 0, sizeof(owner));
    struct {
        uint32_t off;
        int cls;
    } live[LIVE];
    int n = 0;
    uint32_t seed = 12345;
    uint32_t keep;
    ck_assert_int_eq(cf_heap_alloc(&h, 100, &keep), 1);
    owner[keep / UNIT] = 1;
    for (int op = 0; op < 20000; op++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t r = seed >> 8;
        if (n > 0 && (n == LIVE || r % 3 == 0)) {
            int i = (int)(r / 3 % (uint32_t)n);
            size_t units = (size_t)CF_HEAP_MIN << (live[i].cls - 1);
            memset(owner + live[i].off / UNIT, 0, units / UNIT);
            cf_heap_free(&h, live[i].cls, live[i].off);
            live[i] = live[--n];
            continue;
        }
        /* mostly small, now and then up to 1 MiB */
        size_t len = r % 8 == 0 ? (size_t)1 + r % (1u << 20) : (size_t)1 + r % 4096;
        uint32_t off;
        bool fits = cf_heap_fits(&h, len);
        int cls = cf_heap_alloc(&h, len, &off);
        /* Asserted only when wrong: each ck_assert is a write to Check's
           parent (a million of them here, 3.5 s under TSan). */
        if ((cls != 0) != fits)
            ck_abort_msg("op %d: cf_heap_fits said %d for %zu bytes", op, fits, len);
        if (!cls)
            continue;
        size_t size = (size_t)CF_HEAP_MIN << (cls - 1);
        if (size < len || off % size || off + size > BYTES)
            ck_abort_msg("op %d: block %u+%zu for %zu bytes", op, (unsigned)off, size, len);
        for (size_t u = off / UNIT; u < (off + size) / UNIT; u++) {
            if (owner[u])
                ck_abort_msg("op %d: block %u+%zu overlaps a live one", op, (unsigned)off,
                             size);
            owner[u] = 1;
        }
        live[n].off = off;
        live[n++].cls = cls;
    }
    while (n > 0) {
        n--;
        cf_heap_free(&h, live[n].cls, live[n].off);
    }
    ck_assert(cf_heap_fits(&h, 1u << 20)); /* only `keep` is left */
    uint32_t big[3];
    for (int i = 0; i < 3; i++) /* 4 MiB, one 1 MiB part holds `keep` */
        ck_assert_int_eq(cf_heap_alloc(&h, 1u << 20, &big[i]), CF_HEAP_CLASSES);
    ck_assert(!cf_heap_fits(&h, 1u << 20));
    cf_heap_destroy(&h);
    /* What a block's alignment skips at the top merges too (review): 0..511
       is one free 512-byte block again once 0 and 128 are freed. */
    ck_assert_int_eq(cf_heap_init(&h, BYTES), 0);
    uint32_t s[3], mid;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(cf_heap_alloc(&h, 100, &s[i]), 1);
    cf_heap_free(&h, 1, s[2]);                         /* 256 */
    ck_assert_int_eq(cf_heap_alloc(&h, 512, &mid), 3); /* 512; 384 skipped */
    ck_assert_uint_eq(mid, 512);
    cf_heap_free(&h, 1, s[0]);
    cf_heap_free(&h, 1, s[1]);
    ck_assert_int_eq(cf_heap_alloc(&h, 512, &s[0]), 3);
    ck_assert_uint_eq(s[0], 0);
    cf_heap_destroy(&h);
}
END_TEST

/*
 * submit_options_t.borrow_arg: arguments of every path (copied anyway, in
 * a cell's slot, in the heap, piped) come back intact; the pool reads a
 * borrowed argument when it sends the task, not at submit (a piped one
 * waits for a free worker, so a change made meanwhile is what the task
 * gets); and a task cancelled at once may have its bytes freed when
 * future_cancel returns true (ASan: no read after the free).
 */
START_TEST(test_process_pool_borrowed_args)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    ck_assert_ptr_nonnull(ex);
    pid_t fs = fs_pid_of(ex);
    const submit_options_t so = {.borrow_arg = true};
    static const size_t sizes[] = {8, 64, 65536, 2u << 20}; /* copied, slot, heap, pipe */
    enum { N = 40 };
    unsigned char *bufs[N];
    future_t *fut[N];
    for (int i = 0; i < N; i++) {
        size_t len = sizes[i % 4];
        bufs[i] = bytes_pattern(len, (unsigned)i);
        fut[i] = executor_submit_with(ex, t_echo, bufs[i], len, &so);
        ck_assert_ptr_nonnull(fut[i]);
    }
    for (int i = 0; i < N; i++) {
        expect_bytes(fut[i], bufs[i], sizes[i % 4]);
        future_unref(fut[i]);
        free(bufs[i]);
    }
    /* Both workers held: a piped argument waits, unread, for a free one. */
    struct hold h[2] = {{.gate = 0}, {.gate = 1}};
    future_t *held[2];
    for (int i = 0; i < 2; i++)
        ck_assert_ptr_nonnull(held[i] = executor_submit(ex, t_hold, &h[i], sizeof(h[i])));
    wait_started(2);
    size_t big = 2u << 20;
    unsigned char *late = bytes_pattern(big, 1);
    future_t *f = executor_submit_with(ex, t_echo, late, big, &so);
    ck_assert_ptr_nonnull(f);
    memset(late, 0x5a, big); /* before any worker is free to take it */
    unsigned char *want = malloc(big);
    ck_assert_ptr_nonnull(want);
    memset(want, 0x5a, big);
    /* A submit after the change: the manager takes its lock after ours. */
    future_t *sync = executor_submit(ex, t_nothing, NULL, 0);
    ck_assert_ptr_nonnull(sync);
    atomic_store(&shm->gates[0], 1);
    atomic_store(&shm->gates[1], 1);
    expect_bytes(f, want, big);
    ck_assert_int_eq(future_result(sync, T_LONG, NULL, NULL), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(future_result(held[i], T_LONG, NULL, NULL), 0);
        future_unref(held[i]);
    }
    future_unref(sync);
    future_unref(f);
    free(late);
    free(want);
    /* Cancelled at once, freed at once; the rest come back intact. */
    int cancelled = 0;
    for (int i = 0; i < 300; i++) {
        size_t len = sizes[1 + i % 3];
        unsigned char *b = bytes_pattern(len, (unsigned)i);
        f = executor_submit_with(ex, t_echo, b, len, &so);
        ck_assert_ptr_nonnull(f);
        if (future_cancel(f)) {
            ck_assert(future_done(f));
            memset(b, 0, len);
            free(b);
            cancelled++;
        } else {
            expect_bytes(f, b, len);
            free(b);
        }
        future_unref(f);
    }
    ck_assert_int_gt(cancelled, 0);
    executor_free(ex);
    end_check(fs);
}
END_TEST

extern void (*cf_test_borrow_read_hook)(void); /* lib/process/claims.c, test builds */
static _Atomic int borrow_step; /* 1: the manager reads; 2: the cancel begins; 3: read over */

static void borrow_read_hook(void)
{
    if (atomic_load(&borrow_step) != 0)
        return; /* only the first borrowed send */
    atomic_store(&borrow_step, 1);
    double end = now_s() + T_LONG;
    while (atomic_load(&borrow_step) != 2 && now_s() < end)
        usleep(100);
    usleep(50000); /* the cancel, had it not waited, would have returned by now */
    atomic_store(&borrow_step, 3);
}

/*
 * A cancel that comes while the manager reads a borrowed argument waits for
 * the read to end, so that the caller may free the bytes once
 * future_cancel returns true (CLAIM_READING, lib/process/claims.c).
 */
START_TEST(test_process_pool_borrowed_cancel_waits_for_read)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    ck_assert_ptr_nonnull(ex);
    pid_t fs = fs_pid_of(ex);
    atomic_store(&borrow_step, 0);
    cf_test_borrow_read_hook = borrow_read_hook;
    size_t len = 65536;
    unsigned char *b = bytes_pattern(len, 3);
    future_t *f = executor_submit_with(ex, t_echo, b, len,
                                       &(submit_options_t){.borrow_arg = true});
    ck_assert_ptr_nonnull(f);
    double end = now_s() + T_LONG;
    while (atomic_load(&borrow_step) != 1 && now_s() < end)
        usleep(100);
    ck_assert_int_eq(atomic_load(&borrow_step), 1);
    atomic_store(&borrow_step, 2);
    bool cancelled = future_cancel(f);
    ck_assert_int_eq(atomic_load(&borrow_step), 3); /* the read was over */
    if (cancelled) {
        ck_assert_int_eq(future_result(f, 0, NULL, NULL), FUT_ECANCELLED);
    } else { /* the worker claimed it between the read and the cancel */
        expect_bytes(f, b, len);
    }
    cf_test_borrow_read_hook = NULL;
    free(b);
    future_unref(f);
    executor_free(ex);
    end_check(fs);
}
END_TEST

/* Python: ProcessPoolExecutor().submit(pow, 2, 8).result() */
START_TEST(test_process_pool_submit_results)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    ck_assert_ptr_nonnull(ex);
    pid_t fs = fs_pid_of(ex);
    future_t *fs_[100];
    int64_t args[100];
    for (int i = 0; i < 100; i++) {
        args[i] = i;
        fs_[i] = executor_submit(ex, t_add1, &args[i], sizeof(args[i]));
        ck_assert_ptr_nonnull(fs_[i]);
    }
    memset(args, 0xff, sizeof(args)); /* copied at submit: the pool must not care */
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(result_i64(fs_[i]), i + 1);
        future_unref(fs_[i]);
    }
    future_t *f = executor_submit(ex, t_echo, "hello", 6);
    ck_assert_str_eq(future_result_str(f, T_LONG), "hello");
    future_unref(f);
    f = executor_submit(ex, t_nothing, NULL, 0);
    size_t len = 99;
    ck_assert_int_eq(future_result(f, T_LONG, NULL, &len), 0);
    ck_assert_uint_eq(len, 0);
    future_unref(f);
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    ck_assert_uint_le(st.workers, 2);
    ck_assert_uint_eq(st.completed, 103);
    executor_free(ex);
    end_check(fs);
}
END_TEST

/* Python: a task raising RuntimeError(123) keeps its arguments (PPE-03). */
START_TEST(test_process_pool_task_error)
{
    begin();
    executor_t *ex = process_pool_executor_new(NULL);
    int code = 123;
    future_t *f = executor_submit(ex, t_raise, &code, sizeof(code));
    const future_error_t *err = failure(f, FUT_ETASK);
    ck_assert_int_eq(err->code, 123);
    ck_assert_str_eq(err->message, "boom 123");
    future_unref(f);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* Python: ProcessPoolExecutor(max_workers=-1) raises ValueError. */
START_TEST(test_process_pool_bad_options)
{
    errno = 0;
    ck_assert_ptr_null(process_pool_executor_new(&(executor_options_t){.max_workers = -1}));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(
        process_pool_executor_new(&(executor_options_t){.initarg_len = 4}));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(
        process_pool_executor_new(&(executor_options_t){.on_worker_death = 7}));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}
END_TEST

/* A worker holds fds 0-2 (stdin on /dev/null) and its own two pipes, nothing else. */
START_TEST(test_process_pool_worker_fds)
{
    begin();
    int extra = open("/dev/null", O_RDONLY); /* not close-on-exec: still not inherited */
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    future_t *f = executor_submit(ex, t_fds, NULL, 0);
    int64_t v = result_i64(f);
    ck_assert_int_eq(v / 2, 5);
    ck_assert_int_eq(v % 2, 1);
    future_unref(f);
    executor_free(ex);
    close(extra);
    end_check(0);
}
END_TEST

/*
 * A task that writes to what were its parent's fds 3 and 4 (two log files
 * opened before the pool) gets EBADF for both: the pool's own pipes are
 * elsewhere. At fd 4 the write went into the result pipe: lost bytes, and
 * the worker killed for garbage (its pid changed every task).
 */
START_TEST(test_process_pool_stray_fd_writes)
{
    begin();
    int a = open("/dev/null", O_WRONLY | O_CLOEXEC), b = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(b, 0);
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    int64_t pid = -1;
    for (int i = 0; i < 3; i++) {
        future_t *f = executor_submit(ex, t_stray_writes, NULL, 0);
        ck_assert_int_eq(result_i64(f), 3);
        future_unref(f);
        f = executor_submit(ex, t_pid, NULL, 0);
        int64_t p = result_i64(f);
        future_unref(f);
        ck_assert(pid < 0 || p == pid); /* the same worker throughout */
        pid = p;
    }
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_int_eq(st.failed, 0);
    executor_free(ex);
    close(a);
    close(b);
    end_check(0);
}
END_TEST

/*
 * Under a low RLIMIT_NOFILE (12: the pipes go on fds 3 and 4, pipes_fd) a
 * worker starts and holds fds 0-4. No worker started under a limit of 17
 * or less (it moved its pipes to fd 16 and up first, which did not exist):
 * every task failed "exited with code 1 before starting". Found by review.
 */
START_TEST(test_process_pool_low_fd_limit)
{
    begin();
    struct rlimit old, low;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 12;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    ck_assert_ptr_nonnull(ex);
    future_t *f = executor_submit(ex, t_fds, NULL, 0);
    int64_t v = -1;
    int rc = future_result_i64(f, T_LONG, &v);
    const future_error_t *err = NULL;
    if (rc != 0)
        future_exception(f, 0, &err);
    ck_assert_msg(rc == 0, "%d: %s", rc, err ? err->message : "");
    ck_assert_int_eq(v / 2, 5);
    ck_assert_int_eq(v % 2, 1);
    future_unref(f);
    executor_free(ex);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    end_check(0);
}
END_TEST

/*
 * A program that runs with fds 0-2 closed (a daemon) or 1 and 2: the pool's
 * own fds took those numbers (its eventfd, the fork server's socket), and the
 * fork server kept them as the workers' stdout and stderr. A task's line to
 * stderr went into the fork server's socket: "the process pool's fork server
 * is gone", every task failed. Now a close-on-exec fd there counts as closed
 * (an exec would have closed it): the workers get /dev/null. Found by review.
 */
START_TEST(test_process_pool_parent_std_fds_closed)
{
    begin();
    fflush(stdout);
    fflush(stderr);
    int saved[3];
    for (int i = 0; i < 3; i++) {
        saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 100);
        ck_assert_int_ge(saved[i], 0);
    }
    static const int closed[2] = {7, 6}; /* fds 0-2; then 1 and 2 */
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < 3; i++)
            if (closed[c] & (1 << i))
                close(i);
        executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
        ck_assert_ptr_nonnull(ex);
        int64_t pid = -1;
        for (int k = 0; k < 3; k++) {
            future_t *f = executor_submit(ex, t_std_null, NULL, 0);
            int64_t v = -1;
            int rc = future_result_i64(f, T_LONG, &v);
            const future_error_t *err = NULL;
            if (rc != 0)
                future_exception(f, 0, &err);
            ck_assert_msg(rc == 0, "fds %d closed: %d: %s", closed[c], rc,
                          err ? err->message : "");
            ck_assert_int_eq(v, 0);
            future_unref(f);
            f = executor_submit(ex, t_pid, NULL, 0);
            int64_t p = result_i64(f);
            future_unref(f);
            ck_assert(pid < 0 || p == pid); /* the same worker throughout */
            pid = p;
        }
        executor_free(ex);
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(dup2(saved[i], i), i);
    }
    for (int i = 0; i < 3; i++)
        close(saved[i]);
    end_check(0);
}
END_TEST

static void t_print(task_t *t)
{
    const int *i = task_arg(t, NULL);
    printf("task-line %d\n", *i);
    task_return_i64(t, *i);
}

/* Occurrences of @needle in @hay. */
static int count_in(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/*
 * A task's printf into a piped stdout (fully buffered) comes out once,
 * though workers leave with _exit(), as Python's worker flushes at exit; and
 * what the parent had not yet written before the fork comes out once, not
 * again from every worker.
 */
START_TEST(test_process_pool_task_stdout_flushed)
{
    begin();
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(pfd[1], STDOUT_FILENO), 0);
    close(pfd[1]);
    setvbuf(stdout, NULL, _IOFBF, BUFSIZ);
    printf("parent-pending\n"); /* in the buffer when the pool forks */
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    ck_assert_ptr_nonnull(ex);
    pid_t fs = fs_pid_of(ex);
    int args[6];
    future_t *f[6];
    for (int i = 0; i < 6; i++) {
        args[i] = i;
        f[i] = executor_submit(ex, t_print, &args[i], sizeof(args[i]));
        ck_assert_ptr_nonnull(f[i]);
    }
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(result_i64(f[i]), i);
        future_unref(f[i]);
    }
    executor_free(ex);
    fflush(stdout);
    ck_assert_int_ge(dup2(saved, STDOUT_FILENO), 0); /* the pipe's last writer */
    close(saved);
    char out[4096];
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        ck_assert_int_eq(poll(&p, 1, (int)(T_LONG * 1000)), 1);
        ssize_t n = read(pfd[0], out + got, sizeof(out) - 1 - got);
        ck_assert_int_ge(n, 0);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    out[got] = '\0';
    close(pfd[0]);
    ck_assert_int_eq(count_in(out, "parent-pending\n"), 1);
    for (int i = 0; i < 6; i++) {
        char line[32];
        snprintf(line, sizeof(line), "task-line %d\n", i);
        ck_assert_msg(count_in(out, line) == 1, "%s in [%s]", line, out);
    }
    end_check(fs);
}
END_TEST

/*
 * stdout is a pipe whose reader has gone (prog | head -1, this process
 * ignoring SIGPIPE): the worker's flush of a task's line costs the line,
 * not the worker. It died of SIGPIPE, and broke a FUT_WORKER_BREAK_POOL pool
 * at the first printing task. Found by review.
 */
START_TEST(test_process_pool_stdout_reader_gone)
{
    begin();
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    ck_assert_int_ge(dup2(pfd[1], STDOUT_FILENO), 0);
    close(pfd[1]);
    close(pfd[0]); /* no reader */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    executor_t *ex = process_pool_executor_new(&(executor_options_t){
        .max_workers = 1, .on_worker_death = FUT_WORKER_BREAK_POOL});
    ck_assert_ptr_nonnull(ex);
    for (int i = 0; i < 5; i++) {
        future_t *f = executor_submit(ex, t_print, &i, sizeof(i));
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(result_i64(f), i);
        future_unref(f);
    }
    executor_free(ex);
    fflush(stdout); /* EPIPE, ignored */
    clearerr(stdout);
    ck_assert_int_ge(dup2(saved, STDOUT_FILENO), 0);
    close(saved);
    signal(SIGPIPE, old);
    end_check(0);
}
END_TEST

static void *t_hold_stdout_thread(void *arg)
{
    (void)arg;
    flockfile(stdout);
    for (;;)
        pause();
    return NULL;
}

/* Prints a line, then leaves a thread behind that holds stdout's lock. */
static void t_print_then_hold_stdout(task_t *t)
{
    printf("held\n");
    pthread_t th;
    if (pthread_create(&th, NULL, t_hold_stdout_thread, NULL) == 0)
        pthread_detach(th);
    while (ftrylockfile(stdout) == 0) { /* until the thread has it */
        funlockfile(stdout);
        usleep(100);
    }
    task_return_i64(t, 1);
}

/*
 * A task leaves a thread holding stdout's lock: the worker's flush passes
 * the stream over instead of waiting for ever, so the next task runs and
 * executor_free returns (both hung). Found by review.
 */
START_TEST(test_process_pool_stdout_held_by_task_thread)
{
    if (UNDER_TSAN)
        return; /* TSan's _exit() flushes stdout itself, and waits for its lock */
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    ck_assert_ptr_nonnull(ex);
    future_t *f = executor_submit(ex, t_print_then_hold_stdout, NULL, 0);
    ck_assert_int_eq(result_i64(f), 1);
    future_unref(f);
    f = executor_submit(ex, t_pid, NULL, 0);
    result_i64(f);
    future_unref(f);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* A task that forks and waits for its own child works (no stray SIGCHLD use). */
START_TEST(test_process_pool_task_forks)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    future_t *f = executor_submit(ex, t_fork, NULL, 0);
    ck_assert_int_eq(result_i64(f), 5);
    future_unref(f);
    /* Python's idle reuse: the worker counts idle by the time its result is seen. */
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.workers, 1);
    ck_assert_uint_eq(st.idle, 1);
    ck_assert_uint_eq(st.running, 0);
    ck_assert_uint_eq(st.completed, 1);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * A child a task forked that returns from the task function leaves (exit
 * 0) and answers nothing; the worker's answer is the task's, and the worker
 * goes on alone (before: the child went on as a second worker on the same
 * pipes and seat, its -1 could be the task's result, and it never exited).
 */
START_TEST(test_process_pool_task_fork_child_returns)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    for (int round = 0; round < 3; round++) {
        future_t *f = executor_submit(ex, t_fork_child_returns, NULL, 0);
        ck_assert_int_eq(result_i64(f), 42);
        future_unref(f);
        for (int64_t i = 0; i < 20; i++) {
            f = executor_submit(ex, t_add1, &i, sizeof(i));
            ck_assert_int_eq(result_i64(f), i + 1);
            future_unref(f);
        }
    }
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.workers, 1);
    ck_assert_uint_eq(st.failed, 0);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* ---------------------------------------------------------- deaths */

static void death_case(task_fn fn, int exit_status, int sig)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    pid_t fs = fs_pid_of(ex);
    future_t *f = executor_submit(ex, fn, NULL, 0);
    const future_error_t *err = failure(f, FUT_EWORKER);
    ck_assert_int_eq(err->exit_status, exit_status);
    ck_assert_int_eq(err->signal, sig);
    ck_assert(strstr(err->message, "worker pid") != NULL);
    ck_assert(future_error_is_broken(err));
    future_unref(f);
    /* Respawn: the next task runs on a replacement. */
    int64_t v = 41;
    f = executor_submit(ex, t_add1, &v, sizeof(v));
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(result_i64(f), 42);
    future_unref(f);
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert(!st.broken);
    executor_free(ex);
    end_check(fs);
}

/* loky: TerminatedWorkerError "SIGABRT"; only the running task fails. */
START_TEST(test_process_pool_worker_abort)
{
    death_case(t_abort, -1, SIGABRT);
}
END_TEST

START_TEST(test_process_pool_worker_segv)
{
    death_case(t_segv, -1, SIGSEGV);
}
END_TEST

/* gh-139462: "terminated abruptly with exit code 3". */
START_TEST(test_process_pool_worker_exit3)
{
    death_case(t_exit3, 3, 0);
}
END_TEST

/* loky: exit(0) inside the task is a death, not an empty result. */
START_TEST(test_process_pool_worker_exit0)
{
    death_case(t_exit0, 0, 0);
}
END_TEST

/*
 * Python test_killed_child (RESPAWN): SIGKILL a busy worker from outside;
 * only its task fails; the tasks sent behind it run elsewhere, exactly once.
 */
START_TEST(test_process_pool_sigkill_busy)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    int idx[20];
    future_t *fs_[20];
    for (int i = 0; i < 20; i++) {
        idx[i] = i;
        fs_[i] = executor_submit(ex, i == 0 ? t_block : t_mark, &idx[i], sizeof(int));
    }
    wait_started(1);
    ck_assert_int_eq(kill(atomic_load(&shm->pid), SIGKILL), 0);
    const future_error_t *err = failure(fs_[0], FUT_EWORKER);
    ck_assert_int_eq(err->signal, SIGKILL);
    ck_assert_int_eq(err->exit_status, -1);
    for (int i = 1; i < 20; i++) {
        ck_assert_int_eq(result_i64(fs_[i]), i);
        ck_assert_int_eq(atomic_load(&shm->ran[i]), 1);
    }
    ck_assert_int_eq(atomic_load(&shm->ran[0]), 0);
    for (int i = 0; i < 20; i++)
        future_unref(fs_[i]);
    executor_free(ex);
    end_check(0);
}
END_TEST

static void t_kill_self(task_t *t)
{
    raise(SIGKILL);
}

/*
 * Small answers wait in shared records for a batch (worker.h): those of the
 * tasks a worker finished before it died still arrive, and only the task it
 * was running fails. Task 0 holds the worker so that the rest are buffered
 * behind one another; those after the one that dies go to a new worker.
 */
START_TEST(test_process_pool_answers_survive_death)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    enum { N = 10, K = 5 }; /* task K kills its worker, with tasks buffered behind it */
    int idx[N];
    future_t *fs_[N];
    for (int i = 0; i < N; i++) {
        idx[i] = i;
        fs_[i] = executor_submit(ex, i == 0 ? t_block : i == K ? t_kill_self : t_mark,
                                 &idx[i], sizeof(int));
        ck_assert_ptr_nonnull(fs_[i]);
    }
    wait_started(1);
    atomic_store(&shm->gate, 1);
    ck_assert_int_eq(result_i64(fs_[0]), 0);
    for (int i = 1; i < N; i++) {
        if (i == K)
            continue;
        ck_assert_int_eq(result_i64(fs_[i]), i); /* after K: run by a new worker */
        ck_assert_int_eq(atomic_load(&shm->ran[i]), 1);
    }
    const future_error_t *err = failure(fs_[K], FUT_EWORKER);
    ck_assert_int_eq(err->signal, SIGKILL);
    for (int i = 0; i < N; i++)
        future_unref(fs_[i]);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * A short task's answer may wait for a batch while tasks are buffered behind
 * it, but never for a long task that follows: here it arrives while the
 * next task is still held (the pool's scan finds it).
 */
START_TEST(test_process_pool_answer_not_held_behind_long_task)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    for (int round = 0; round < 5; round++) {
        atomic_store(&shm->gate, 0);
        atomic_store(&shm->started, 0);
        int idx[3] = {3 * round, 3 * round + 1, 3 * round + 2};
        future_t *a = executor_submit(ex, t_mark, &idx[0], sizeof(int));
        future_t *b = executor_submit(ex, t_block, &idx[1], sizeof(int));
        future_t *c = executor_submit(ex, t_mark, &idx[2], sizeof(int));
        ck_assert(a && b && c);
        ck_assert_int_eq(result_i64(a), idx[0]);
        ck_assert(!future_done(b));
        atomic_store(&shm->gate, 1);
        ck_assert_int_eq(result_i64(b), idx[1]);
        ck_assert_int_eq(result_i64(c), idx[2]);
        future_unref(a);
        future_unref(b);
        future_unref(c);
    }
    executor_free(ex);
    end_check(0);
}
END_TEST

static bool no_workers(void *ex)
{
    executor_stats_t st;
    executor_stats(ex, &st);
    return st.workers == 0;
}

/* An idle worker killed from outside: nothing fails, the next task runs. */
START_TEST(test_process_pool_sigkill_idle)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    future_t *f = executor_submit(ex, t_pid, NULL, 0);
    pid_t pid = (pid_t)result_i64(f);
    future_unref(f);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert(eventually(no_workers, ex, T_LONG));
    f = executor_submit(ex, t_pid, NULL, 0);
    ck_assert_int_ne(result_i64(f), pid);
    future_unref(f);
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.failed, 0);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* Waits (up to T_LONG) for @ex to report itself broken. */
static void wait_broken(executor_t *ex)
{
    double end = now_s() + T_LONG;
    executor_stats_t st;
    do
        executor_stats(ex, &st);
    while (!st.broken && now_s() < end && usleep(200) == 0);
    ck_assert(st.broken);
}

bool cf_future_revoke(future_t *f);    /* lib/future.h: an MPI rank giving a task back */
bool cf_future_ran(const future_t *f); /* lib/future.h: which ones it gives back */

int cf_future_set_running(future_t *f); /* lib/future.h */
int cf_future_fail(future_t *f, int status, int code, int exit_status, int sig,
                   const char *msg);

extern void (*cf_test_publish_hook)(void); /* lib/future.c, test builds */

/* set_running, from another thread, while a completion is between its load and CAS. */
static future_t *_Atomic ran_race_f;
static _Atomic int ran_race_step; /* 1: the completion is in its window; 2: set */

static void *ran_race_setter(void *arg)
{
    (void)arg;
    while (atomic_load(&ran_race_step) != 1)
        ;
    ck_assert_int_eq(cf_future_set_running(atomic_load(&ran_race_f)), 1);
    atomic_store(&ran_race_step, 2);
    return NULL;
}

static void ran_race_hook(void)
{
    atomic_store(&ran_race_step, 1);
    while (atomic_load(&ran_race_step) != 2)
        ;
}

/*
 * cf_future_ran is true for a future that set_running (which takes no
 * lock) took while a completion (under the lock) was publishing: the
 * completion keeps RAN with a CAS. Its plain store dropped it, and an MPI
 * rank would then give back a task that ran (found by review).
 */
START_TEST(test_future_ran_survives_racing_completion)
{
    future_t *f = future_new();
    atomic_store(&ran_race_f, f);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, ran_race_setter, NULL), 0);
    cf_test_publish_hook = ran_race_hook;
    ck_assert_int_eq(cf_future_fail(f, FUT_EBROKEN, 0, -1, 0, "race"), 0);
    cf_test_publish_hook = NULL;
    pthread_join(t, NULL);
    ck_assert(cf_future_ran(f));
    ck_assert_int_eq(future_result(f, 0, NULL, NULL), FUT_EBROKEN);
    future_unref(f);
}
END_TEST

/* Python's behaviour (BREAK_POOL): BrokenProcessPool everywhere, later submits too. */
START_TEST(test_process_pool_break_mode)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){
        .max_workers = 1, .on_worker_death = FUT_WORKER_BREAK_POOL});
    int idx[5] = {0, 1, 2, 3, 4};
    future_t *a = executor_submit(ex, t_block, &idx[0], sizeof(int));
    future_t *b = executor_submit(ex, t_mark, &idx[1], sizeof(int));
    wait_started(1);
    kill(atomic_load(&shm->pid), SIGKILL);
    failure(a, FUT_EBROKEN);
    failure(b, FUT_EBROKEN);
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, t_pid, NULL, 0));
    ck_assert_int_eq(errno, -FUT_EBROKEN);
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert(st.broken);
    ck_assert_int_eq(atomic_load(&shm->ran[1]), 0);
    ck_assert(cf_future_ran(a)); /* an MPI rank gives back only b (lib/mpi/relay.c) */
    ck_assert(!cf_future_ran(b));
    future_unref(a);
    future_unref(b);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* A BREAK_POOL pool of one worker, that worker killed while idle; waits until it broke.
 */
static executor_t *broken_idle_pool(void)
{
    executor_t *ex = process_pool_executor_new(&(executor_options_t){
        .max_workers = 1, .on_worker_death = FUT_WORKER_BREAK_POOL});
    future_t *f = executor_submit(ex, t_pid, NULL, 0);
    pid_t pid = (pid_t)result_i64(f);
    future_unref(f);
    kill(pid, SIGKILL);
    wait_broken(ex);
    return ex;
}

/* An idle worker's death breaks a BREAK_POOL pool too (Python). */
START_TEST(test_process_pool_break_mode_idle)
{
    begin();
    executor_free(broken_idle_pool());
    end_check(0);
}
END_TEST

/* ---------------------------------------------------------- pump (pump.h) */

/*
 * A pump that submits three tasks on its first call; it returns a 1 ms nap
 * each call, or, with `waits`, the wait of the first pair whose call count
 * is not yet passed.
 */
struct pump_state {
    executor_t *ex;
    _Atomic int calls;
    pthread_t thread;          /* the first call's */
    _Atomic bool other_thread; /* a later call ran elsewhere */
    future_t *f[3];
    _Atomic bool ready; /* f[] is set */
    /* f[0]'s done-callback: 0 not run yet, 1 ran on the pump's thread, 2 elsewhere */
    _Atomic int cb_thread;
    int64_t (*waits)[2]; /* {calls, wait} pairs ending in {0, 0}, or NULL */
};

static void pump_cb(future_t *f, void *ud)
{
    (void)f;
    struct pump_state *s = ud;
    atomic_store(&s->cb_thread, pthread_equal(s->thread, pthread_self()) ? 1 : 2);
}

static int64_t pump_fn(void *ud)
{
    struct pump_state *s = ud;
    if (atomic_fetch_add(&s->calls, 1) == 0) {
        s->thread = pthread_self();
        for (int i = 0; i < 3; i++)
            s->f[i] = executor_submit(s->ex, t_pid, NULL, 0);
        if (s->f[0])
            future_add_done_callback(s->f[0], pump_cb, s);
        atomic_store(&s->ready, true);
    } else if (!pthread_equal(s->thread, pthread_self())) {
        atomic_store(&s->other_thread, true);
    }
    int calls = atomic_load(&s->calls);
    for (int i = 0; s->waits && s->waits[i][0]; i++)
        if (calls <= s->waits[i][0])
            return s->waits[i][1];
    return 1000 * 1000;
}

static bool cb_ran(void *ud)
{
    return atomic_load(&((struct pump_state *)ud)->cb_thread) != 0;
}

static bool pump_ready(void *ud)
{
    return atomic_load(&((struct pump_state *)ud)->ready);
}

struct calls_at_least {
    struct pump_state *s;
    int n;
};

static bool pump_called(void *ud)
{
    struct calls_at_least *c = ud;
    return atomic_load(&c->s->calls) >= c->n;
}

/* Waits (up to T_LONG) for five more calls of an idle pool's pump (its naps bound the
 * sleep). */
static void pump_keeps_calling(struct pump_state *s)
{
    struct calls_at_least c = {s, atomic_load(&s->calls) + 5};
    ck_assert(eventually(pump_called, &c, T_LONG));
}

/* A pool of one worker (@mode on its death) with pump_fn set on it, its tasks submitted.
 */
static executor_t *pumped_pool(struct pump_state *s, int mode)
{
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 1, .on_worker_death = mode});
    *s = (struct pump_state){.ex = ex};
    ck_assert_int_eq(cf_pp_set_pump(ex, pump_fn, s), 0);
    ck_assert(eventually(pump_ready, s, T_LONG));
    return ex;
}

static void pumped_pool_free(executor_t *ex, struct pump_state *s)
{
    for (int i = 0; i < 3; i++)
        future_unref(s->f[i]);
    executor_free(ex);
}

/*
 * The pump runs on the manager (done-callbacks' thread), what it submits
 * runs, and its wait bounds the manager's sleep: an idle pool without a
 * pump sleeps in poll() with no timeout and would never call it again.
 */
START_TEST(test_process_pool_pump)
{
    begin();
    struct pump_state s;
    executor_t *ex = pumped_pool(&s, FUT_WORKER_RESPAWN);
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_nonnull(s.f[i]);
        ck_assert_int_gt(result_i64(s.f[i]), 0);
    }
    ck_assert(eventually(cb_ran, &s, T_LONG));
    ck_assert_int_eq(atomic_load(&s.cb_thread), 1);
    pump_keeps_calling(&s);
    ck_assert(!atomic_load(&s.other_thread));
    /* bad input */
    ck_assert_int_eq(cf_pp_set_pump(ex, pump_fn, &s), FUT_EINVAL); /* one pump */
    ck_assert_int_eq(cf_pp_set_pump(NULL, pump_fn, &s), FUT_EINVAL);
    ck_assert_int_eq(cf_pp_set_pump(ex, NULL, &s), FUT_EINVAL);
    executor_t *tp = thread_pool_executor_new(&(executor_options_t){.max_workers = 1});
    ck_assert_int_eq(cf_pp_set_pump(tp, pump_fn, &s), FUT_EINVAL);
    executor_free(tp);
    pumped_pool_free(ex, &s);
    end_check(0);
}
END_TEST

/*
 * Every kind of wait a pump may return keeps it called and its tasks
 * running: a negative one (taken as 0), 0 (spin: poll without waiting,
 * yield), a nap under a millisecond (ppoll), then 1 ms naps.
 */
START_TEST(test_process_pool_pump_waits)
{
    begin();
    static int64_t waits[][2] = {{20, -5}, {200, 0}, {400, 200 * 1000}, {0, 0}};
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    struct pump_state s = {.ex = ex, .waits = waits};
    ck_assert_int_eq(cf_pp_set_pump(ex, pump_fn, &s), 0);
    ck_assert(eventually(pump_ready, &s, T_LONG));
    struct calls_at_least c = {&s, 410};
    ck_assert(eventually(pump_called, &c, T_LONG));
    for (int i = 0; i < 3; i++)
        ck_assert_int_gt(result_i64(s.f[i]), 0);
    ck_assert(!atomic_load(&s.other_thread));
    pumped_pool_free(ex, &s);
    end_check(0);
}
END_TEST

/*
 * A pumped pool that breaks keeps its manager and so its pump (the MPI
 * relay still answers its master); submits fail FUT_EBROKEN.
 */
START_TEST(test_process_pool_pump_outlives_break)
{
    begin();
    struct pump_state s;
    executor_t *ex = pumped_pool(&s, FUT_WORKER_BREAK_POOL);
    kill((pid_t)result_i64(s.f[0]), SIGKILL);
    wait_broken(ex);
    pump_keeps_calling(&s);
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, t_pid, NULL, 0));
    ck_assert_int_eq(errno, -FUT_EBROKEN);
    pumped_pool_free(ex, &s);
    end_check(0);
}
END_TEST

/* A pool whose manager left (broken, no pump yet) refuses one: it would never run. */
START_TEST(test_process_pool_pump_after_break)
{
    begin();
    executor_t *ex = broken_idle_pool();
    ck_assert(wait_threads(base_threads)); /* the manager left */
    struct pump_state s = {.ex = ex};
    ck_assert_int_eq(cf_pp_set_pump(ex, pump_fn, &s), FUT_EBROKEN);
    ck_assert_int_eq(atomic_load(&s.calls), 0);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * A pool of @max_workers with the worker test hooks on (worker.c: a task
 * argument that starts with CF-FAULT- does what it names), in death mode
 * @death.
 */
static executor_t *hooked_new(int max_workers, fut_worker_death death)
{
    setenv("CFUTURES_TEST_HOOKS", "1", 1);
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = max_workers, .on_worker_death = death});
    unsetenv("CFUTURES_TEST_HOOKS");
    ck_assert_ptr_nonnull(ex);
    return ex;
}

/* A worker writes garbage on its result pipe: that worker fails, not the parent. */
START_TEST(test_process_pool_garbage_frame)
{
    begin();
    executor_t *ex = hooked_new(1, FUT_WORKER_RESPAWN);
    future_t *f = executor_submit(ex, t_garbage, NULL, 0);
    const future_error_t *err = failure(f, FUT_EWORKER);
    ck_assert_msg(strstr(err->message, "malformed frame") != NULL, "%s", err->message);
    future_unref(f);
    f = executor_submit(ex, t_absurd_frame, NULL, 0);
    err = failure(f, FUT_EWORKER);
    ck_assert_msg(strstr(err->message, "above the maximum") != NULL, "%s", err->message);
    future_unref(f);
    f = executor_submit(ex, t_bad_note, NULL, 0);
    err = failure(f, FUT_EWORKER);
    ck_assert_msg(strstr(err->message, "NOTE frame naming a task") != NULL, "%s", err->message);
    future_unref(f);
    int64_t v = 1;
    f = executor_submit(ex, t_add1, &v, sizeof(v));
    ck_assert_int_eq(result_i64(f), 2);
    future_unref(f);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* The fork server is killed: the pool breaks, nothing hangs, nothing leaks. */
START_TEST(test_process_pool_forkserver_killed)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    pid_t fs = fs_pid_of(ex);
    int idx = 0;
    future_t *f = executor_submit(ex, t_block, &idx, sizeof(idx));
    wait_started(1);
    ck_assert_int_eq(kill(fs, SIGKILL), 0);
    failure(f, FUT_EBROKEN);
    future_unref(f);
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, t_pid, NULL, 0));
    ck_assert_int_eq(errno, -FUT_EBROKEN);
    executor_free(ex);
    end_check(fs);
}
END_TEST

/* True if future_within's timer fires here: a promise nobody sets times out. */
static bool within_fires(void)
{
    future_t *p = future_new();
    future_t *w = future_within(p, 0.02, false);
    const future_error_t *err = NULL;
    bool ok = w && future_exception(w, T_LONG, &err) == 0 && err &&
              err->status == FUT_ETIMEDOUT;
    future_unref(w);
    future_set_result(p, NULL, 0, NULL); /* a promise dropped unset keeps the within */
    future_unref(p);
    return ok;
}

static void t_within_fires(task_t *t)
{
    task_return_i64(t, within_fires());
}

/*
 * The process's timer works in a forked child: in a process pool's worker
 * and in a plain fork(), after the parent's timer thread had started. The
 * child inherited "started" without the thread, so no timer fired there
 * (future_within, a delayed submit, a schedule: found by review).
 */
START_TEST(test_process_pool_timer_in_forked_child)
{
    if (UNDER_TSAN)
        return; /* TSan ends a child of a multi-threaded fork that starts a thread */
    ck_assert(within_fires()); /* the parent's timer thread runs, for good */
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    future_t *f = executor_submit(ex, t_within_fires, NULL, 0);
    ck_assert_int_eq(result_i64(f), 1);
    future_unref(f);
    executor_free(ex);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(within_fires() ? 0 : 1);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert(within_fires()); /* and still in the parent */
    end_check(0);
}
END_TEST

/* PPE-15: no worker can be started (out of fds): the pool breaks, nothing hangs. */
START_TEST(test_process_pool_worker_start_fails)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    struct rlimit old, low;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)count_fds() + 1; /* not enough for two pipes */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    future_t *f = executor_submit(ex, t_pid, NULL, 0);
    ck_assert_ptr_nonnull(f);
    const future_error_t *err = failure(f, FUT_EBROKEN);
    ck_assert_msg(strstr(err->message, "could not be started") != NULL, "%s", err->message);
    future_unref(f);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * DEADLOCK-02: a worker dies while receiving a task, before starting it. It
 * goes to another worker, but not forever: after a few deaths it fails.
 */
START_TEST(test_process_pool_death_before_start)
{
    begin();
    executor_t *ex = hooked_new(2, FUT_WORKER_RESPAWN);
    static const char poison[] = "CF-FAULT-EXIT!";
    future_t *f = executor_submit(ex, t_echo, poison, sizeof(poison));
    const future_error_t *err = failure(f, FUT_EWORKER);
    ck_assert_int_eq(err->exit_status, 1);
    ck_assert_msg(strstr(err->message, "before starting") != NULL, "%s", err->message);
    future_unref(f);
    /* DEADLOCK-08, PEBBLE-46: dies with its result frame half written. */
    static char half[100000] = "CF-FAULT-HALF!";
    f = executor_submit(ex, t_echo, half, sizeof(half));
    err = failure(f, FUT_EWORKER);
    ck_assert_int_eq(err->exit_status, 1);
    ck_assert_msg(strstr(err->message, "while running") != NULL, "%s", err->message);
    future_unref(f);
    int64_t v = 1;
    f = executor_submit(ex, t_add1, &v, sizeof(v));
    ck_assert_int_eq(result_i64(f), 2);
    future_unref(f);
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.failed, 2);
    ck_assert_uint_eq(st.queued, 0);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* arg: anything. Counts the run: a task whose frame was bad must never run. */
static void t_count_run(task_t *t)
{
    atomic_fetch_add(&shm->started, 1);
    task_return_i64(t, 1);
}

/*
 * A pool of 2 workers with the worker test hooks on (worker.c), in death
 * mode @breaks (FUT_WORKER_BREAK_POOL) or RESPAWN; the fork server's pid in
 * *fs.
 */
static executor_t *hooked_pool(bool breaks, pid_t *fs)
{
    executor_t *ex = hooked_new(2, breaks ? FUT_WORKER_BREAK_POOL : FUT_WORKER_RESPAWN);
    *fs = fs_pid_of(ex);
    return ex;
}

/*
 * Submits t_count_run over an argument that starts with the hook's @mark:
 * @piped, 2 MiB (a frame in a worker's pipe); else 32 bytes (the shared
 * queue: the task's slot).
 */
static future_t *submit_marked(executor_t *ex, const char *mark, bool piped)
{
    size_t len = piped ? (size_t)2 << 20 : 32;
    char *arg = calloc(1, len);
    ck_assert_ptr_nonnull(arg);
    memcpy(arg, mark, 14);
    future_t *f = executor_submit(ex, t_count_run, arg, len);
    free(arg);
    ck_assert_ptr_nonnull(f);
    return f;
}

/*
 * After @err, a worker's death: the task never ran; RESPAWN, the pool goes
 * on and the next task runs on a new worker (not the pid the message names);
 * BREAK_POOL, the pool is broken and refuses submits. Frees @ex.
 */
static void after_decode_death(executor_t *ex, const future_error_t *err, bool breaks,
                               pid_t fs)
{
    const char *at = strstr(err->message, "worker pid ");
    ck_assert_msg(at != NULL, "%s", err->message);
    pid_t dead = (pid_t)atoi(at + strlen("worker pid "));
    ck_assert_int_gt(dead, 0);
    ck_assert_int_eq(atomic_load(&shm->started), 0); /* nothing ran it */
    executor_stats_t st;
    if (breaks) {
        executor_stats(ex, &st); /* marked broken before any future failed */
        ck_assert(st.broken);
        errno = 0;
        ck_assert_ptr_null(executor_submit(ex, t_pid, NULL, 0));
        ck_assert_int_eq(errno, -FUT_EBROKEN);
    } else {
        future_t *f = executor_submit(ex, t_pid, NULL, 0);
        ck_assert_ptr_nonnull(f);
        pid_t pid = (pid_t)result_i64(f);
        ck_assert_int_ne(pid, dead);
        future_unref(f);
        /* After a later result: a task failed unstarted is counted just
           after its future fails (cf_pp_fail). */
        executor_stats(ex, &st);
        ck_assert(!st.broken);
        ck_assert_uint_eq(st.failed, 1);
    }
    executor_free(ex);
    end_check(fs);
}

/*
 * DEADLOCK-03 (CPython test_error_at_task_unpickle), LOKY-22 (loky
 * test_informative_error_when_fail_at_unpickle). _i bit 0: BREAK_POOL (else
 * RESPAWN); bit 1: piped (2 MiB, else queued in its slot). A test hook
 * corrupts the task as the worker receives it: a piped frame's magic (the
 * worker cannot tell whose frame it was: the parent's suspect, tried on 3
 * workers in RESPAWN), a queued task's length in its slot (the worker claims
 * that task, so it fails at once). The worker's checks reject it, it never
 * runs, the worker says why and exits 1: the future fails FUT_EWORKER /
 * FUT_EBROKEN with exit status 1 and the decoder's words in its message.
 */
START_TEST(test_process_pool_bad_task_frame)
{
    bool breaks = _i & 1, piped = _i & 2;
    begin();
    pid_t fs;
    executor_t *ex = hooked_pool(breaks, &fs);
    future_t *f = submit_marked(ex, "CF-FAULT-BADF!", piped);
    const future_error_t *err = failure(f, breaks ? FUT_EBROKEN : FUT_EWORKER);
    ck_assert_int_eq(err->exit_status, 1);
    ck_assert_int_eq(err->signal, 0);
    ck_assert_msg(strstr(err->message, "bad task frame: ") != NULL, "%s", err->message);
    const char *said = piped ? "bad frame magic" : "longer than its slot";
    ck_assert_msg(strstr(err->message, said) != NULL, "%s", err->message);
    if (piped && !breaks)
        ck_assert_msg(strstr(err->message, "(3 workers did)") != NULL, "%s", err->message);
    after_decode_death(ex, err, breaks, fs);
    future_unref(f);
}
END_TEST

/*
 * DEADLOCK-04 (CPython test_crash_at_task_unpickle): the worker gets SIGSEGV
 * while decoding a task (a test hook, before it claims the task), _i as in
 * bad_task_frame. RESPAWN: the task goes to another worker, which dies too;
 * after 3 it fails FUT_EWORKER. BREAK_POOL: the first death fails it
 * FUT_EBROKEN. Either way with signal SIGSEGV, and it never ran.
 */
START_TEST(test_process_pool_segv_decoding)
{
    bool breaks = _i & 1, piped = _i & 2;
    begin();
    pid_t fs;
    executor_t *ex = hooked_pool(breaks, &fs);
    future_t *f = submit_marked(ex, "CF-FAULT-SEGV!", piped);
    const future_error_t *err = failure(f, breaks ? FUT_EBROKEN : FUT_EWORKER);
    ck_assert_msg(err->signal == SIGSEGV, "%s", err->message);
    ck_assert_int_eq(err->exit_status, -1);
    ck_assert_msg(strstr(err->message, "killed by signal 11") != NULL, "%s", err->message);
    ck_assert_msg(strstr(err->message, "before starting") != NULL, "%s", err->message);
    after_decode_death(ex, err, breaks, fs);
    future_unref(f);
}
END_TEST

/* ---------------------------------------------------------- deadlines */

/* pebble: schedule(timeout=...) -> TimeoutError; the pool goes on. */
/* Thread ids of this process, up to @cap; returns how many. */
static int list_tids(int *tids, int cap)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < cap)
        if (e->d_name[0] != '.')
            tids[n++] = atoi(e->d_name);
    if (d)
        closedir(d);
    return n;
}

/*
 * Context switches so far of the threads of this process that are not in
 * @old (the threads before the pool: this one, a sanitizer's own).
 */
static long long new_threads_switches(const int *old, int nold)
{
    int tids[64];
    int n = list_tids(tids, 64);
    long long sum = 0, v;
    for (int i = 0; i < n; i++) {
        bool seen = false;
        for (int j = 0; j < nold; j++)
            seen |= tids[i] == old[j];
        if (seen)
            continue;
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/self/task/%d/status", tids[i]);
        FILE *fp = fopen(path, "r");
        while (fp && fgets(line, sizeof(line), fp))
            if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %lld", &v) == 1)
                sum += v;
        if (fp)
            fclose(fp);
    }
    return sum;
}

static bool both_running(void *arg)
{
    future_t **fs = arg;
    return future_running(fs[0]) && future_running(fs[1]);
}

/*
 * Issue 14 (W8's mechanism): once every sent task is known to have started,
 * the manager sleeps in poll() with no timeout: over 300 ms with both
 * workers held in long tasks it does not wake at all (before, its scan timer
 * woke it every 1-4 ms). The 300 ms is the window watched, not a wait for
 * an outcome.
 */
START_TEST(test_process_pool_manager_sleeps_while_tasks_run)
{
    begin();
    int old[64];
    int nold = list_tids(old, 64);
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    int a = 0, b = 1;
    future_t *fs[2] = {executor_submit(ex, t_block, &a, sizeof(a)),
                       executor_submit(ex, t_block, &b, sizeof(b))};
    ck_assert(fs[0] && fs[1]);
    wait_started(2);
    ck_assert(eventually(both_running, fs, T_LONG));
    struct timespec settle = {0, 20000000L}; /* the manager's last scan ends */
    nanosleep(&settle, NULL);
    long long before = new_threads_switches(old, nold);
    struct timespec window = {0, 300000000L};
    nanosleep(&window, NULL);
    long long woke = new_threads_switches(old, nold) - before;
    atomic_store(&shm->gate, 1);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(future_result(fs[i], T_LONG, NULL, NULL), 0);
        future_unref(fs[i]);
    }
    executor_free(ex);
    ck_assert_msg(woke <= 2, "the manager woke %lld times in 300 ms", woke);
    end_check(0);
}
END_TEST

/* Busy-waits @us microseconds (nanosleep is too coarse for the spin window). */
static void pause_us(int us)
{
    double end = now_s() + us * 1e-6;
    while (now_s() < end)
        ;
}

/*
 * Before it sleeps, the manager polls for a while (its spin, 50 us) with
 * its `sleeping` flag down, so submits meanwhile do not write its eventfd.
 * A submit just after a spin that found nothing must still wake it: 600
 * round trips, each submitted 0-150 us after the last answer, every one
 * done within 10 s (one that came while the flag stayed down would hang).
 */
START_TEST(test_process_pool_submit_after_manager_spin)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    ck_assert_ptr_nonnull(ex);
    for (int64_t round = 0; round < 600; round++) {
        int64_t v = -1;
        future_t *f = executor_submit(ex, t_add1, &round, sizeof(round));
        ck_assert_ptr_nonnull(f);
        ck_assert_msg(future_result_i64(f, 10.0, &v) == 0, "round %d timed out",
                      (int)round);
        ck_assert_int_eq(v, round + 1);
        future_unref(f);
        pause_us((int)(round * 37 % 151));
    }
    executor_free(ex);
    end_check(0);
}
END_TEST

/* arg: an int of milliseconds. Sleeps that long, returns 0. */
static void t_nap(task_t *t)
{
    const int *ms = task_arg(t, NULL);
    struct timespec d = {*ms / 1000, (long)(*ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
    task_return_i64(t, 0);
}

/* The threads that were there before the pool (new_threads_switches' @old). */
struct tids {
    const int *old;
    int nold;
};

/*
 * True if a thread not in @arg (struct tids: the pool's manager) is blocked
 * in poll() with no timeout (/proc/self/task/TID/syscall: number, fds,
 * nfds, timeout), twice 20 ms apart (a late report from the fork server
 * may wake it once more in between).
 */
static bool new_thread_in_endless_poll_once(const struct tids *t);
static bool new_thread_in_endless_poll(void *arg)
{
    struct timespec gap = {0, 20000000L};
    if (!new_thread_in_endless_poll_once(arg))
        return false;
    nanosleep(&gap, NULL);
    return new_thread_in_endless_poll_once(arg);
}

static bool new_thread_in_endless_poll_once(const struct tids *t)
{
    int tids[64];
    int n = list_tids(tids, 64);
    for (int i = 0; i < n; i++) {
        bool seen = false;
        for (int j = 0; j < t->nold; j++)
            seen |= tids[i] == t->old[j];
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tids[i]);
        FILE *f = seen ? NULL : fopen(path, "r");
        long nr = -1;
        unsigned long fds, nfds, timeout;
        bool ok = f && fscanf(f, "%ld %lx %lx %lx", &nr, &fds, &nfds, &timeout) == 4;
#ifdef SYS_poll
        ok = ok && ((nr == SYS_poll && (int)timeout == -1) ||
                    (nr == SYS_ppoll && timeout == 0));
#else /* arm64, riscv64: glibc's poll() is ppoll, no timeout a NULL timespec */
        ok = ok && nr == SYS_ppoll && timeout == 0;
#endif
        if (f)
            fclose(f);
        if (ok)
            return true;
    }
    return false;
}

extern _Thread_local unsigned long cf_test_wait_yields;

/*
 * Issue 14 (W7's mechanism): a submit that wakes the manager from a
 * blocking poll() makes this thread's next wait sleep at once, not yield:
 * a thread left runnable on this CPU sends the manager's wake-up of a
 * worker to the other CPU, idle and halted (50 us there on this machine
 * kind, against 5 us on this one). The wait on such a task makes no
 * sched_yield call; the wait after it yields as before (the hint is one
 * wait's). The 200 ms task keeps its future not done through any spin.
 */
START_TEST(test_process_pool_wait_after_waking_manager_sleeps)
{
    begin();
    int old[64];
    struct tids t = {old, list_tids(old, 64)};
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    ck_assert_ptr_nonnull(ex);
    /* A first task: its worker is forked and reported, so nothing but the
       submit below wakes the manager once it sleeps. */
    int ms = 1;
    future_t *f = executor_submit(ex, t_nap, &ms, sizeof(ms));
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), 0);
    future_unref(f);
    ck_assert(eventually(new_thread_in_endless_poll, &t, T_LONG));
    ms = 200;
    f = executor_submit(ex, t_nap, &ms, sizeof(ms));
    ck_assert_ptr_nonnull(f);
    cf_test_wait_yields = 0;
    ck_assert_int_eq(future_result(f, T_LONG, NULL, NULL), 0);
    ck_assert_msg(cf_test_wait_yields == 0, "the wait yielded %lu times",
                  cf_test_wait_yields);
    future_unref(f);
    future_t *g = future_new();
    ck_assert_int_eq(future_result(g, 0.01, NULL, NULL), FUT_ETIMEDOUT);
    ck_assert_msg(cf_test_wait_yields > 0, "the next wait did not yield");
    future_unref(g);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* The voluntary context switches so far of process @pid, or -1. */
static long long voluntary_switches(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "r");
    long long v = -1;
    while (fp && fgets(line, sizeof(line), fp))
        if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1)
            break;
    if (fp)
        fclose(fp);
    return v;
}

/*
 * Issue 14 (W2's and W3's mechanism): a worker whose last wait for work was
 * short looks for work for a while (yielding) before it sleeps, so quick
 * round trips find it awake and cost no NOTE and no wake-up. 300 round
 * trips on one worker make it block (its voluntary context switches) fewer
 * than 30 times; without the spin it blocks in read() once a round trip.
 * The spin is stretched to 5 s (CFUTURES_TEST_WORKER_SPIN_MS, test builds)
 * so that a slow machine's round trips stay inside it; executor_free still
 * returns within 2.5 s (the closing manager sets the seats' QUIT bit, which
 * ends a spin; before, the worker saw its pipe's end only after the spin).
 */
START_TEST(test_process_pool_worker_spins_between_round_trips)
{
    begin();
    setenv("CFUTURES_TEST_WORKER_SPIN_MS", "5000", 1);
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    unsetenv("CFUTURES_TEST_WORKER_SPIN_MS");
    ck_assert_ptr_nonnull(ex);
    int64_t pid = 0;
    future_t *f = executor_submit(ex, t_pid, NULL, 0);
    ck_assert_int_eq(future_result_i64(f, T_LONG, &pid), 0);
    future_unref(f);
    long long before = voluntary_switches((pid_t)pid);
    ck_assert(before >= 0);
    for (int64_t round = 0; round < 300; round++) {
        int64_t v = -1;
        f = executor_submit(ex, t_add1, &round, sizeof(round));
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(future_result_i64(f, T_LONG, &v), 0);
        ck_assert_int_eq(v, round + 1);
        future_unref(f);
    }
    long long slept = voluntary_switches((pid_t)pid) - before;
    double t0 = now_s();
    executor_free(ex);
    double freed = now_s() - t0;
    ck_assert_msg(slept < 30, "the worker blocked %lld times in 300 round trips", slept);
    ck_assert_msg(freed < 2.5, "executor_free took %.2f s", freed);
    end_check(0);
}
END_TEST

/* Counts itself started, waits for the gate, returns its pid. */
static void t_pid_gated(task_t *t)
{
    atomic_fetch_add(&shm->started, 1);
    wait_gate();
    task_return_i64(t, getpid());
}

#define NWAKE 3 /* workers in the wake-up case */

/* True if every pid of @arg (NWAKE) is blocked in read() (a sleeping worker). */
static bool all_in_read(void *arg)
{
    const pid_t *pids = arg;
    for (int i = 0; i < NWAKE; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pids[i]);
        FILE *f = fopen(path, "r");
        long nr = -1;
        bool ok = f && fscanf(f, "%ld", &nr) == 1 && nr == SYS_read;
        if (f)
            fclose(f);
        if (!ok)
            return false;
    }
    return true;
}

/* True if every pid of @arg (NWAKE) is stopped (state T in /proc/PID/stat). */
static bool all_stopped(void *arg)
{
    const pid_t *pids = arg;
    for (int i = 0; i < NWAKE; i++)
        if (proc_state(pids[i]) != 'T')
            return false;
    return true;
}

/* Bytes waiting in the pipes @pid holds but its stdio (each opened again
   through /proc). */
static int pipe_bytes(pid_t pid)
{
    char dir[64], path[384], link[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    int total = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (atoi(e->d_name) <= 2 || n < 5 || strncmp(link, "pipe:", 5) != 0)
            continue;
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        int avail = 0;
        if (fd >= 0 && ioctl(fd, FIONREAD, &avail) == 0)
            total += avail;
        if (fd >= 0)
            close(fd);
    }
    if (d)
        closedir(d);
    return total;
}

struct woken {
    pid_t pids[NWAKE];
    int which; /* the one whose pipe holds the wake-up */
};

static bool one_woken(void *arg)
{
    struct woken *w = arg;
    for (int i = 0; i < NWAKE; i++)
        if (pipe_bytes(w->pids[i]) > 0) {
            w->which = i;
            return true;
        }
    return false;
}

/*
 * A wake-up dies with the worker it was sent to: the task it was for still
 * runs. NWAKE workers sleep and are stopped; a task is queued; the worker
 * whose pipe holds the wake-up is killed before it reads it; the others go
 * on. One of them (or a new one) must run the task. 10 rounds. In a round
 * where the task sat in another worker's cell, the others slept on until
 * the manager woke a sleeper again after each death (a hang seen in
 * check_faults: a worker died of a malloc failure right after its wake-up).
 */
START_TEST(test_process_pool_wakeup_survives_woken_worker_death)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = NWAKE});
    ck_assert_ptr_nonnull(ex);
    for (int round = 0; round < 10; round++) {
        atomic_store(&shm->gate, 0);
        atomic_store(&shm->started, 0);
        future_t *h[NWAKE];
        for (int i = 0; i < NWAKE; i++)
            ck_assert_ptr_nonnull(h[i] = executor_submit(ex, t_pid_gated, NULL, 0));
        wait_started(NWAKE);
        atomic_store(&shm->gate, 1);
        struct woken w = {.which = -1};
        for (int i = 0; i < NWAKE; i++) {
            w.pids[i] = (pid_t)result_i64(h[i]);
            future_unref(h[i]);
            for (int j = 0; j < i; j++)
                ck_assert_int_ne(w.pids[i], w.pids[j]);
        }
        ck_assert(eventually(all_in_read, w.pids, T_LONG));
        for (int i = 0; i < NWAKE; i++)
            ck_assert_int_eq(kill(w.pids[i], SIGSTOP), 0);
        /* Stopped for sure: one still waking could take the wake-up in. */
        ck_assert(eventually(all_stopped, w.pids, T_LONG));
        future_t *f = executor_submit(ex, t_pid, NULL, 0);
        ck_assert_ptr_nonnull(f);
        ck_assert_msg(eventually(one_woken, &w, T_LONG), "round %d: no worker was woken",
                      round);
        ck_assert_int_eq(kill(w.pids[w.which], SIGKILL), 0);
        for (int i = 0; i < NWAKE; i++)
            if (i != w.which)
                ck_assert_int_eq(kill(w.pids[i], SIGCONT), 0);
        int64_t v = -1;
        int rc = future_result_i64(f, 10.0, &v);
        ck_assert_msg(rc == 0, "round %d: the task after the woken worker's death: %s", round,
                      future_strerror(rc));
        ck_assert_int_ne(v, w.pids[w.which]);
        future_unref(f);
    }
    pid_t fs = fs_pid_of(ex);
    executor_free(ex);
    end_check(fs);
}
END_TEST

START_TEST(test_process_pool_deadline)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    double t0 = now_s();
    future_t *f = executor_submit_with(ex, t_forever, NULL, 0,
                                       &(submit_options_t){.timeout = 0.2});
    int64_t v = 5;
    future_t *g = executor_submit(ex, t_add1, &v, sizeof(v));
    failure(f, FUT_EDEADLINE);
    ck_assert(now_s() - t0 < 10);
    ck_assert_int_eq(result_i64(g), 6);
    future_unref(f);
    future_unref(g);
    /* One that ignores SIGTERM gets SIGKILL. */
    f = executor_submit_with(ex, t_ignore_term, NULL, 0, &(submit_options_t){.timeout = 0.1});
    failure(f, FUT_EDEADLINE);
    future_unref(f);
    g = executor_submit(ex, t_add1, &v, sizeof(v));
    ck_assert_int_eq(result_i64(g), 6);
    future_unref(g);
    executor_free(ex);
    end_check(0);
}
END_TEST

static bool is_running(void *f)
{
    return future_running(f);
}

/* Frees @ex, then @g, and checks that nothing is left (@fs_pid: end_check's). */
static void free_gated(executor_t *ex, gate_t *g, pid_t fs_pid)
{
    executor_free(ex);
    gate_destroy(g);
    end_check(fs_pid);
}

/* A done-callback that holds the manager (the thread that runs it) up. */
struct holdup {
    gate_t gate;
    _Atomic bool in;
};

static void hold_manager(future_t *f, void *ud)
{
    (void)f;
    struct holdup *h = ud;
    atomic_store(&h->in, true);
    gate_wait(&h->gate, T_LONG);
}

static bool held(void *h)
{
    return atomic_load(&((struct holdup *)h)->in);
}

/* A done-callback that submits to its own pool, blocking (no options). */
struct resubmit {
    executor_t *ex;
    struct hold h; /* the new task's */
    future_t *f;   /* what the submit returned */
    int err;       /* its errno when NULL */
    _Atomic bool done;
};

static void submit_from_callback(future_t *f, void *ud)
{
    (void)f;
    struct resubmit *r = ud;
    r->f = executor_submit(r->ex, t_hold, &r->h, sizeof(r->h));
    r->err = r->f ? 0 : errno;
    atomic_store(&r->done, true);
}

static bool resubmitted(void *r)
{
    return atomic_load(&((struct resubmit *)r)->done);
}

/*
 * A done-callback runs on the manager, the one thread that makes room in
 * max_queue: its blocking submit to its own full pool is let in over the
 * bound, not left waiting for itself (it did: the manager never came back,
 * the pool hung, executor_free with it). The queued task stays queued
 * across its worker's death (the next worker adopts it): the queue is full
 * for certain when the callback runs.
 */
START_TEST(test_process_pool_callback_submit_to_full_queue)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 1, .max_queue = 1});
    struct hold h0 = {0, 1, 1}, h1 = {1, 0, 0}; /* a aborts once let go */
    future_t *a = executor_submit(ex, t_hold, &h0, sizeof(h0));
    wait_started(1);
    future_t *b = executor_submit(ex, t_hold, &h1, sizeof(h1)); /* fills the queue */
    ck_assert_ptr_nonnull(b);
    errno = 0;
    ck_assert_ptr_null(executor_submit_with(ex, t_hold, &h1, sizeof(h1),
                                            &(submit_options_t){.nonblocking = true}));
    ck_assert_int_eq(errno, EAGAIN);
    struct resubmit r = {.ex = ex, .h = {2, 0, 0}};
    ck_assert_int_eq(future_add_done_callback(a, submit_from_callback, &r), 0);
    atomic_store(&shm->gates[0], 1); /* a's worker aborts: a fails on the manager */
    failure(a, FUT_EWORKER);
    ck_assert_msg(eventually(resubmitted, &r, T_LONG),
                  "the callback's submit still waits for room");
    ck_assert_msg(r.f, "the callback's submit failed: %s", strerror(r.err));
    atomic_store(&shm->gates[1], 1);
    atomic_store(&shm->gates[2], 1);
    ck_assert_int_gt(result_i64(b), 0);
    ck_assert_int_gt(result_i64(r.f), 0);
    future_unref(a);
    future_unref(b);
    future_unref(r.f);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * A deadline the manager acts on only after the task returned (late: it
 * was held up) fails the task but kills nobody: the worker has moved on to
 * the next task, which runs on. Before cf_pp_doom that worker was killed
 * and the innocent task failed FUT_EWORKER.
 */
START_TEST(test_process_pool_late_deadline_spares_next_task)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    struct hold h[4] = {{0, 0, 1}, {1, 0, 1}, {2, 0, 1}, {3, 0, 1}}; /* a, x, b, c */
    double limit = timeout_multiplier(3); /* 1 s: a's deadline is long past the setup */
    future_t *a = executor_submit_with(ex, t_hold, &h[0], sizeof(h[0]),
                                       &(submit_options_t){.timeout = limit});
    future_t *x = executor_submit(ex, t_hold, &h[1], sizeof(h[1]));
    future_t *b = executor_submit(ex, t_hold, &h[2], sizeof(h[2]));
    future_t *c = executor_submit(ex, t_hold, &h[3], sizeof(h[3]));
    struct holdup hu = {.in = false};
    gate_init(&hu.gate);
    ck_assert_int_eq(future_add_done_callback(x, hold_manager, &hu), 0);
    ck_assert(eventually(is_running, a, T_LONG) && eventually(is_running, x, T_LONG));
    double due =
        now_s() + limit; /* both of a's deadlines (worker's, manager's) are before */
    ck_assert(settles(ex, 4)); /* b and c are sent */
    atomic_store(&shm->gates[1], 1); /* x returns: its callback holds the manager */
    ck_assert(eventually(held, &hu, T_LONG));
    ck_assert_msg(!future_done(a), "a's deadline passed before the manager was held");
    sleep_s(due - now_s() + 0.1);
    atomic_store(&shm->gates[0], 1); /* a returns, late; its worker takes the next task */
    wait_started(4);
    gate_open(&hu.gate); /* the manager sees a's deadline before its answer */
    failure(a, FUT_EDEADLINE);
    atomic_store(&shm->gates[2], 1);
    atomic_store(&shm->gates[3], 1);
    ck_assert_int_gt(result_i64(b), 0);
    ck_assert_int_gt(result_i64(c), 0);
    ck_assert_int_eq(result_i64(x), atomic_load(&shm->ran[1]));
    future_t *fs[] = {a, x, b, c};
    for (int i = 0; i < 4; i++)
        future_unref(fs[i]);
    free_gated(ex, &hu.gate, 0);
}
END_TEST

/* A pump that, once armed, holds the manager at the start of a pass. */
struct pass_hold {
    _Atomic bool armed, in;
    gate_t gate;
};

static int64_t pass_hold_pump(void *ud)
{
    struct pass_hold *h = ud;
    if (atomic_exchange(&h->armed, false)) {
        atomic_store(&h->in, true);
        gate_wait(&h->gate, T_LONG);
    }
    return 1000 * 1000; /* called again within 1 ms */
}

static bool pass_held(void *h)
{
    return atomic_load(&((struct pass_hold *)h)->in);
}

static void *terminate_with_sigterm(void *ex)
{
    return (void *)(intptr_t)executor_terminate_workers(ex, SIGTERM);
}

bool cf_test_kill_asked(executor_t *ex); /* lib/process/kill.c, test builds */

static bool kill_asked(void *ex)
{
    return cf_test_kill_asked(ex);
}

/*
 * A task that returned within its time limit keeps its result even when
 * the manager reaches its deadline before its answer: the manager, held at
 * the start of a pass while a returned and then past a's deadline, checks
 * deadlines before it reads answer frames (a's 64-byte result is one; a
 * small one in the shared record is read by the scan before). It failed
 * FUT_EDEADLINE (the worker had moved on, so none was killed, but the
 * answer was dropped). With @terminate, executor_terminate_workers is
 * asked meanwhile, so the same pass signals the worker (now running b)
 * before it looks at a's deadline: a still keeps its answer (it failed
 * FUT_EDEADLINE: a worker being killed was not asked whether it had
 * returned), and b fails FUT_EWORKER.
 */
static void late_deadline_case(bool terminate)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    struct pass_hold h = {.armed = false};
    gate_init(&h.gate);
    ck_assert_int_eq(cf_pp_set_pump(ex, pass_hold_pump, &h), 0);
    struct hold ha = {0, 0, 1}, hb = {1, 0, 1};
    double limit = timeout_multiplier(3); /* 1 s: long past the setup */
    double t0 = now_s();                  /* a's worker's deadline is after t0 + limit */
    future_t *a = executor_submit_with(ex, t_hold_wide, &ha, sizeof(ha),
                                       &(submit_options_t){.timeout = limit});
    future_t *b = executor_submit(ex, t_hold, &hb, sizeof(hb));
    ck_assert(eventually(is_running, a, T_LONG));
    double due = now_s() + limit;                 /* both of a's deadlines are before */
    ck_assert(settles(ex, 2)); /* b is sent to the worker */
    atomic_store(&h.armed, true);
    ck_assert(eventually(pass_held, &h, T_LONG));
    atomic_store(&shm->gates[0], 1); /* a returns; the worker takes b by itself */
    wait_started(2);
    ck_assert_msg(now_s() < t0 + limit, "the setup took longer than a's time limit");
    sleep_s(due - now_s() + 0.1);
    pthread_t killer;
    if (terminate) {
        ck_assert_int_eq(pthread_create(&killer, NULL, terminate_with_sigterm, ex), 0);
        ck_assert(eventually(kill_asked, ex, T_LONG));
    }
    gate_open(&h.gate); /* this pass looks at a's deadline, then reads its answer */
    const void *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(future_result(a, T_LONG, &data, &len), 0);
    ck_assert_uint_eq(len, 64);
    ck_assert_int_eq(*(const int64_t *)data, atomic_load(&shm->ran[0]));
    if (terminate) {
        void *rc = NULL;
        pthread_join(killer, &rc);
        ck_assert_int_eq((int)(intptr_t)rc, 0);
        ck_assert_int_eq(future_result(b, T_LONG, NULL, NULL), FUT_EWORKER);
    } else {
        atomic_store(&shm->gates[1], 1);
        ck_assert_int_eq(result_i64(b), atomic_load(&shm->ran[1]));
    }
    future_unref(a);
    future_unref(b);
    free_gated(ex, &h.gate, 0);
}

START_TEST(test_process_pool_late_deadline_keeps_answer_in_time)
{
    late_deadline_case(false);
}
END_TEST

START_TEST(test_process_pool_late_deadline_keeps_answer_while_terminating)
{
    late_deadline_case(true);
}
END_TEST

/* True once process *@pid exited: a zombie (not reaped yet), or gone. */
static bool exited_or_gone(void *pid)
{
    char st = proc_state(*(pid_t *)pid);
    return st == 0 || st == 'Z';
}

/*
 * The fork server dies while the manager is held (at the start of a pass,
 * by a pump), and the manager's first sign of it is a failed SPAWN for a
 * task no worker is free for: the pool breaks, and executor_free returns.
 * It hung for ever: the server's socket was no longer polled, so its
 * workers were never marked exited (found by review).
 */
START_TEST(test_process_pool_forkserver_gone_at_spawn)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 3});
    pid_t fs = fs_pid_of(ex);
    ck_assert_int_eq(executor_set_max_workers(ex, 2), 0);
    struct pass_hold h = {.armed = false};
    gate_init(&h.gate);
    ck_assert_int_eq(cf_pp_set_pump(ex, pass_hold_pump, &h), 0);
    static const struct hold hc = {0, 0, 1}, he = {1, 0, 1};
    future_t *c = executor_submit(ex, t_hold, &hc, sizeof(hc));
    future_t *e = executor_submit(ex, t_hold, &he, sizeof(he));
    wait_started(2); /* both workers busy */
    atomic_store(&h.armed, true);
    ck_assert(eventually(pass_held, &h, T_LONG));
    ck_assert_int_eq(kill(fs, SIGKILL), 0);
    ck_assert(eventually(exited_or_gone, &fs, T_LONG));
    ck_assert_int_eq(executor_set_max_workers(ex, 3), 0);
    future_t *b = executor_submit(ex, t_pid, NULL, 0); /* needs a fork into seat 2 */
    ck_assert_ptr_nonnull(b);
    gate_open(&h.gate); /* this pass takes b in and forks for it, before any poll */
    failure(b, FUT_EBROKEN);
    future_t *all[] = {b, c, e};
    for (int i = 0; i < 3; i++) {
        const future_error_t *err = NULL;
        ck_assert_int_eq(future_exception(all[i], T_LONG, &err), 0);
        ck_assert(future_error_is_broken(err)); /* c, e: their workers died with it */
        future_unref(all[i]);
    }
    free_gated(ex, &h.gate, fs);
}
END_TEST

/*
 * future_cancel on a started task returns false (Python) but task_should_stop
 * turns true inside the worker, before and after the parent saw it start.
 */
START_TEST(test_process_pool_cancel_running_stops)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    future_t *f = executor_submit(ex, t_until_stop_mark, NULL, 0);
    wait_started(1);
    ck_assert(!future_cancel(f)); /* maybe not yet RUNNING in the parent */
    ck_assert_int_eq(result_i64(f), 7);
    future_unref(f);
    f = executor_submit(ex, t_until_stop_mark, NULL, 0);
    ck_assert(eventually(is_running, f, T_LONG));
    ck_assert(!future_cancel(f));
    ck_assert_int_eq(result_i64(f), 7);
    future_unref(f);
    /* Both counted as started and completed exactly once. */
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.running, 0);
    ck_assert_uint_eq(st.completed, 2);
    /* A cooperative task past its own deadline fails FUT_EDEADLINE, whatever it returned. */
    f = executor_submit_with(ex, t_until_stop_mark, NULL, 0,
                             &(submit_options_t){.timeout = 0.05});
    failure(f, FUT_EDEADLINE);
    future_unref(f);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* Counts itself started, waits for the gate or task_should_stop: 1 if asked to stop. */
static void t_gate_or_stop(task_t *t)
{
    atomic_fetch_add(&shm->started, 1);
    double end = now_s() + T_LONG;
    while (!atomic_load(&shm->gate) && !task_should_stop(t) && now_s() < end)
        usleep(100);
    task_return_i64(t, task_should_stop(t) ? 1 : 0);
}

/*
 * cf_future_revoke cancels a task that has not started, as future_cancel,
 * but leaves a started one alone: task_should_stop stays false inside it,
 * whether or not the parent saw it start yet (round 0 may be either; round
 * 1 waits until it did).
 */
START_TEST(test_process_pool_revoke_leaves_started_alone)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    for (int round = 0; round < 2; round++) {
        atomic_store(&shm->gate, 0);
        future_t *a = executor_submit(ex, t_gate_or_stop, NULL, 0);
        int idx = round;
        future_t *b = executor_submit(ex, t_mark, &idx, sizeof(idx));
        wait_started(round + 1);
        if (round == 1)
            ck_assert(eventually(is_running, a, T_LONG));
        ck_assert(!cf_future_revoke(a));
        ck_assert(!future_cancelled(a));
        ck_assert(cf_future_revoke(b)); /* queued behind a on the one worker */
        ck_assert(future_cancelled(b));
        atomic_store(&shm->gate, 1);
        ck_assert_int_eq(result_i64(a), 0); /* not asked to stop */
        ck_assert_int_eq(atomic_load(&shm->ran[round]), 0);
        ck_assert(cf_future_ran(a) && !cf_future_ran(b));
        future_unref(a);
        future_unref(b);
    }
    executor_free(ex);
    end_check(0);
}
END_TEST

/* ---------------------------------------------------------- payloads */

/*
 * 16 MiB argument and 16 MiB result at once; then a 64 MiB result. The
 * waits scale with CK_TIMEOUT_MULTIPLIER: under TSan on a loaded machine
 * the 64 MiB went past 30 s once (CI).
 */
START_TEST(test_process_pool_big_payloads)
{
    begin();
    double limit = T_LONG * timeout_multiplier(10);
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    size_t n = 16u << 20;
    unsigned char *arg = malloc(n);
    for (size_t i = 0; i < n; i++)
        arg[i] = (unsigned char)(i * 13 + 1);
    future_t *fs_[4];
    for (int i = 0; i < 4; i++)
        fs_[i] = executor_submit(ex, t_echo, arg, n);
    for (int i = 0; i < 4; i++) {
        const void *data;
        size_t len;
        ck_assert_int_eq(future_result(fs_[i], limit, &data, &len), 0);
        ck_assert_uint_eq(len, n);
        ck_assert(memcmp(data, arg, n) == 0);
        future_unref(fs_[i]);
    }
    free(arg);
    uint64_t big = 64u << 20;
    future_t *f = executor_submit(ex, t_big, &big, sizeof(big));
    const unsigned char *data;
    size_t len;
    ck_assert_int_eq(future_result(f, limit, (const void **)&data, &len), 0);
    ck_assert_uint_eq(len, big);
    for (size_t i = 0; i < len; i += 4099)
        ck_assert_uint_eq(data[i], (unsigned char)(i * 7 + 3));
    future_unref(f);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * DEADLOCK-15 (gh-94777): a worker dies while the parent is writing it a big
 * frame: EPIPE, not SIGPIPE (left at SIG_DFL here), and the big task runs
 * on the replacement.
 */
START_TEST(test_process_pool_death_while_writing)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    size_t n = 16u << 20;
    unsigned char *arg = malloc(n);
    memset(arg, 0x5a, n);
    future_t *a = executor_submit(ex, t_abort, NULL, 0);
    future_t *b = executor_submit(ex, t_echo, arg, n);
    failure(a, FUT_EWORKER);
    const void *data;
    size_t len;
    ck_assert_int_eq(future_result(b, T_LONG, &data, &len), 0);
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(data, arg, n) == 0);
    future_unref(a);
    future_unref(b);
    free(arg);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* ---------------------------------------------------------- lifecycle */

/* Python test_max_tasks_per_child: the pid changes after every N tasks. */
START_TEST(test_process_pool_max_tasks_per_child)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 1, .max_tasks_per_child = 3});
    pid_t pids[9];
    for (int i = 0; i < 9; i++) {
        future_t *f = executor_submit(ex, t_pid, NULL, 0);
        pids[i] = (pid_t)result_i64(f);
        future_unref(f);
    }
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(pids[i], pids[i / 3 * 3]);
    ck_assert_int_ne(pids[0], pids[3]);
    ck_assert_int_ne(pids[3], pids[6]);
    /* gh-115634: a backlog across recycling completes. */
    int idx[8];
    future_t *fs_[8];
    for (int i = 0; i < 8; i++) {
        idx[i] = i;
        fs_[i] = executor_submit(ex, t_mark, &idx[i], sizeof(int));
    }
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(result_i64(fs_[i]), i);
        future_unref(fs_[i]);
    }
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * The pool shrinks from 2 workers to 1 while tasks wait in both workers'
 * seats of the shared queue, and every worker leaves after two tasks
 * (max_tasks_per_child 2): the tasks of the retired seat still run, and
 * executor_free returns. Before, only tasks queued in active seats made the
 * pool fork again: the last one waited for ever, and so did executor_free.
 * Found by review.
 */
START_TEST(test_process_pool_shrink_keeps_queued_tasks)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 2, .max_tasks_per_child = 2});
    struct hold h[2] = {{.gate = 0}, {.gate = 1}};
    future_t *held[2];
    for (int i = 0; i < 2; i++)
        held[i] = executor_submit(ex, t_hold, &h[i], sizeof(h[i]));
    /* Sent while the workers start: the tasks alternate between both seats. */
    enum { N = 6 };
    int idx[N];
    future_t *f[N];
    for (int i = 0; i < N; i++) {
        idx[i] = i;
        f[i] = executor_submit(ex, t_mark, &idx[i], sizeof(int));
        ck_assert_ptr_nonnull(f[i]);
    }
    wait_started(2);
    ck_assert_int_eq(executor_set_max_workers(ex, 1), 0);
    atomic_store(&shm->gates[0], 1);
    atomic_store(&shm->gates[1], 1);
    for (int i = 0; i < 2; i++) {
        result_i64(held[i]);
        future_unref(held[i]);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(result_i64(f[i]), i);
        future_unref(f[i]);
    }
    executor_free(ex);
    end_check(0); /* no child left: the fork server neither */
}
END_TEST

/* Holds a 2-worker pool's workers: *a on gate 0, then *b on gate 1 (t_hold). */
static void hold_both(executor_t *ex, future_t **a, future_t **b)
{
    static const struct hold ha = {.gate = 0}, hb = {.gate = 1};
    *a = executor_submit(ex, t_hold, &ha, sizeof(ha));
    wait_started(1);
    *b = executor_submit(ex, t_hold, &hb, sizeof(hb));
    wait_started(2);
}

/* True if the worker *@pid is blocked in read(): asleep on its pipe. */
static bool pid_in_read(void *pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/syscall", (int)*(pid_t *)pid);
    FILE *f = fopen(path, "r");
    long nr = -1;
    bool ok = f && fscanf(f, "%ld", &nr) == 1 && nr == SYS_read;
    if (f)
        fclose(f);
    return ok;
}

/*
 * A worker in a retired seat (a shrink) that runs dry takes no queued task
 * and sleeps on its pipe. A grow makes the seat active again, and must wake
 * it: the queued tasks are there already, no new one comes to wake it. It
 * slept on, and the tasks waited for the one other worker, held here (a
 * stress of random shrinks and grows hung for good once that one was gone
 * too). Found by review.
 */
START_TEST(test_process_pool_grow_wakes_retired_worker)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    future_t *a, *b;
    hold_both(ex, &a, &b); /* each worker runs one */
    /* Queued while both run: c in seat 0, d in seat 1 (the least loaded). */
    int idx[3] = {10, 11, 12};
    future_t *c = executor_submit(ex, t_mark, &idx[0], sizeof(int));
    future_t *d = executor_submit(ex, t_mark, &idx[1], sizeof(int));
    ck_assert(settles(ex, 4)); /* sent before the shrink */
    ck_assert_int_eq(executor_set_max_workers(ex, 1), 0);
    future_t *e = executor_submit(ex, t_mark, &idx[2], sizeof(int));
    ck_assert(settles(ex, 5)); /* seat 1 is retired */
    atomic_store(&shm->gates[1], 1);
    pid_t pid = (pid_t)result_i64(b); /* d keeps its worker: it sleeps */
    ck_assert(eventually(pid_in_read, &pid, T_LONG));
    ck_assert_int_eq(executor_set_max_workers(ex, 2), 0);
    /* The first worker still runs a. */
    ck_assert_int_eq(result_i64(c), 10);
    ck_assert_int_eq(result_i64(d), 11);
    ck_assert_int_eq(result_i64(e), 12);
    ck_assert(!future_done(a));
    atomic_store(&shm->gates[0], 1);
    result_i64(a);
    future_t *all[] = {a, b, c, d, e};
    for (int i = 0; i < 5; i++)
        future_unref(all[i]);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* The stats of @ex once its manager has seen @f start. */
/*
 * A pool of 2 whose first worker runs *a (held at gate 0) and whose second
 * runs *b (gate 1), though b was queued in the first worker's seat: both
 * were submitted while the pool had one worker, then it grew.
 */
static executor_t *held_across_seats(future_t **a, future_t **b)
{
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    ck_assert_ptr_nonnull(ex);
    ck_assert_int_eq(executor_set_max_workers(ex, 1), 0);
    static const struct hold ha = {.gate = 0}, hb = {.gate = 1};
    *a = executor_submit(ex, t_hold, &ha, sizeof(ha));
    *b = executor_submit(ex, t_hold, &hb, sizeof(hb));
    wait_started(1);
    ck_assert_int_eq(executor_set_max_workers(ex, 2), 0); /* a new worker takes b */
    wait_started(2);
    return ex;
}

static executor_stats_t stats_once_running(executor_t *ex, future_t *f)
{
    ck_assert(eventually(is_running, f, T_LONG));
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    return st;
}

/*
 * executor_stats' idle counts the workers that run nothing, whichever seat
 * the task they run was queued in. Both tasks here are queued in the first
 * worker's seat (the pool has one worker then); after a grow the second
 * worker takes b from the shared queue. The idle count went by the tasks
 * each seat holds: it said the second worker was idle while it ran b (and
 * would say the first was busy once a ended). Found by review.
 */
START_TEST(test_process_pool_idle_counts_runners)
{
    begin();
    future_t *a, *b;
    executor_t *ex = held_across_seats(&a, &b);
    executor_stats_t st = stats_once_running(ex, b);
    ck_assert_uint_eq(st.workers, 2);
    ck_assert_uint_eq(st.running, 2);
    ck_assert_uint_eq(st.idle, 0);
    atomic_store(&shm->gates[0], 1); /* a's worker runs nothing now */
    result_i64(a);
    st = stats_once_running(ex, b);
    ck_assert_uint_eq(st.running, 1);
    ck_assert_uint_eq(st.idle, 1);
    atomic_store(&shm->gates[1], 1);
    result_i64(b);
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    ck_assert_uint_eq(st.idle, 2);
    future_unref(a);
    future_unref(b);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * executor_stats' workers counts live workers: a worker that died is out of
 * it by the time the task it ran has failed, also while a task queued in
 * its seat runs on another worker (the seat waits for that task's answer).
 * As above, b is queued in the first worker's seat and runs on the second;
 * the first is killed. It was still counted until b's answer. Found by
 * review.
 */
START_TEST(test_process_pool_workers_count_live_ones)
{
    begin();
    future_t *a, *b;
    executor_t *ex = held_across_seats(&a, &b);
    ck_assert(eventually(is_running, b, T_LONG));
    ck_assert_int_eq(kill((pid_t)atomic_load(&shm->ran[0]), SIGKILL), 0);
    failure(a, FUT_EWORKER);
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    ck_assert_uint_eq(st.workers, 1);
    ck_assert_uint_eq(st.idle, 0);
    ck_assert_uint_eq(st.running, 1);
    atomic_store(&shm->gates[1], 1);
    result_i64(b);
    future_unref(a);
    future_unref(b);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* arg: an int index i: notes in ran[i] when it started (0, 1, ... among all). */
static void t_start_seq(task_t *t)
{
    const int *i = task_arg(t, NULL);
    atomic_store(&shm->ran[*i], atomic_fetch_add(&shm->started, 1));
    task_return_i64(t, *i);
}

/*
 * A worker killed (a death we did not ask for) while tasks wait queued in
 * its seat's cells: they keep their place in the shared queue, as after an
 * exit we asked for. They went back to the pending list and were queued
 * again behind later tasks, which then started first: here d before c.
 * Found by review (a stress with random SIGKILLs saw tasks start hundreds
 * of ms after later ones).
 */
START_TEST(test_process_pool_death_keeps_queued_order)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    future_t *a, *b;
    hold_both(ex, &a, &b); /* each worker runs one */
    /* Queued while both run, alternating: c, e in seat 0, d, f in seat 1. */
    enum { N = 4 };
    int idx[N];
    future_t *f[N];
    for (int i = 0; i < N; i++) {
        idx[i] = 10 + i;
        f[i] = executor_submit(ex, t_start_seq, &idx[i], sizeof(int));
    }
    ck_assert(settles(ex, 6));
    ck_assert_int_eq(kill((pid_t)atomic_load(&shm->ran[0]), SIGKILL), 0);
    failure(a, FUT_EWORKER);
    /* b still holds the other worker: the new one runs them, in order. */
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(result_i64(f[i]), 10 + i);
    ck_assert(!future_done(b));
    for (int i = 0; i < N; i++)
        ck_assert_msg(atomic_load(&shm->ran[10 + i]) == 2 + i, "task %d started %d-th", i,
                      atomic_load(&shm->ran[10 + i]));
    atomic_store(&shm->gates[1], 1);
    result_i64(b);
    future_unref(a);
    future_unref(b);
    for (int i = 0; i < N; i++)
        future_unref(f[i]);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * Sends b (task 10, just over the shared heap's largest block: piped, and
 * less than SEND_AHEAD_BYTES left unwritten, so c is sent too), then c
 * (task 11, to the shared queue) to a pool whose one task so far is the
 * only worker's. b's frame is written before c comes: else c would wait
 * for it in the pending list, behind b.
 */
static void send_big_then_small(executor_t *ex, future_t **b, future_t **c)
{
    size_t big = (1u << 20) + 64;
    int *arg = calloc(1, big);
    ck_assert_ptr_nonnull(arg);
    arg[0] = 10;
    *b = executor_submit(ex, t_start_seq, arg, big);
    free(arg);
    ck_assert(settles(ex, 2));
    int ic = 11;
    *c = executor_submit(ex, t_start_seq, &ic, sizeof(ic));
    ck_assert_ptr_nonnull(*b);
    ck_assert_ptr_nonnull(*c);
}

/* b and c of send_big_then_small ran, b first; drops them. */
static void big_started_first(future_t *b, future_t *c)
{
    ck_assert_int_eq(result_i64(b), 10);
    ck_assert_int_eq(result_i64(c), 11);
    ck_assert_msg(atomic_load(&shm->ran[10]) < atomic_load(&shm->ran[11]),
                  "c started %d-th, before b (%d-th)", atomic_load(&shm->ran[11]),
                  atomic_load(&shm->ran[10]));
    future_unref(b);
    future_unref(c);
}

/*
 * A big task (piped: over 1 MiB) sent ahead to the only worker, behind a
 * long task, keeps its place when that worker dies before starting it: a
 * task queued after it (shared queue) still starts after it. It went back
 * to the pending list and down the new worker's pipe behind the queue's
 * later entries, which kept their place: c started before b. Found by
 * review (a stress with random crashes on one worker).
 */
START_TEST(test_process_pool_death_keeps_big_task_order)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    struct hold h = {.gate = 0, .abort_it = 1};
    future_t *a = executor_submit(ex, t_hold, &h, sizeof(h));
    wait_started(1);
    future_t *b, *c;
    send_big_then_small(ex, &b, &c);
    ck_assert(settles(ex, 3)); /* b in the worker's pipe, c in the shared queue */
    atomic_store(&shm->gates[0], 1); /* a aborts: b and c wait for a new worker */
    failure(a, FUT_EWORKER);
    big_started_first(b, c);
    future_unref(a);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * The only worker looks at its pipe's count of frames (none coming), then is
 * held before it looks at the shared queue (the CF-FAULT-LAG!! test hook: a
 * preemption there), while b (too big for the shared heap: piped) and then
 * c (queued) are sent to it. b must start first. The worker took c at once:
 * the queue's later tasks were bounded only by a frame it had seen. Found
 * by review (one swap in 60 one-worker stress rounds).
 */
START_TEST(test_process_pool_preempted_worker_keeps_order)
{
    begin();
    executor_t *ex = hooked_new(1, FUT_WORKER_RESPAWN);
    static const char lag[] = "CF-FAULT-LAG!!";
    future_t *a = executor_submit(ex, t_echo, lag, sizeof(lag));
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(future_result(a, T_LONG, NULL, NULL), 0); /* the worker is held now */
    future_t *b, *c;
    send_big_then_small(ex, &b, &c);
    big_started_first(b, c);
    future_unref(a);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* arg: any bytes; returns their length. */
static void t_len(task_t *t)
{
    size_t len = 0;
    task_arg(t, &len);
    task_return_i64(t, (int64_t)len);
}

/*
 * Every worker leaves on purpose (max_tasks_per_child 1) while a queued
 * task waits in a seat and a task too big for the shared heap (2 MiB, so
 * piped) waits at the head of the pending list for it: the pool forks
 * workers again. It did not (grow ran only with nothing pending): both
 * tasks waited for ever. Found by review.
 */
START_TEST(test_process_pool_recycled_out_with_big_task_waiting)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 2, .max_tasks_per_child = 1});
    int ms = 50;
    future_t *q[3];
    for (int i = 0; i < 3; i++)
        q[i] = executor_submit(ex, t_nap, &ms, sizeof(ms));
    size_t big = 2u << 20;
    future_t *p = submit_zeros(ex, t_len, big);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(result_i64(q[i]), 0);
        future_unref(q[i]);
    }
    ck_assert_int_eq(result_i64(p), (int64_t)big);
    future_unref(p);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * max_tasks_per_child counts a map chunk sent as one task by its items, as
 * the worker does: a worker that leaves after its budget is an expected
 * exit, never a death (in FUT_WORKER_BREAK_POOL mode one would break the
 * pool). Found by review: the chunk used to count as one task.
 */
START_TEST(test_process_pool_max_tasks_per_child_chunks)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 1,
                              .max_tasks_per_child = 20,
                              .on_worker_death = FUT_WORKER_BREAK_POOL});
    enum { N = 400, C = 10 };
    int vals[N];
    const void *args[N];
    size_t lens[N];
    int_args(vals, args, lens, N);
    executor_map_t *m =
        executor_map(ex, t_mark, args, lens, N, &(map_options_t){.chunksize = C});
    ck_assert_ptr_nonnull(m);
    for (int i = 0; i < N; i++) {
        const void *d;
        size_t len;
        int rc = executor_map_next(m, &d, &len);
        ck_assert_msg(rc == 0, "item %d: %s", i, future_strerror(rc));
        int64_t v;
        memcpy(&v, d, 8);
        ck_assert_int_eq(v, i);
    }
    executor_map_free(m);
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    ck_assert(!st.broken);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* gh-119592: shutdown(wait=false) while recycling; the queued tasks still run. */
START_TEST(test_process_pool_shutdown_during_recycling)
{
    begin();
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 1, .max_tasks_per_child = 1});
    int idx[3] = {0, 1, 2};
    future_t *fs_[3];
    fs_[0] = executor_submit(ex, t_block, &idx[0], sizeof(int));
    fs_[1] = executor_submit(ex, t_mark, &idx[1], sizeof(int));
    fs_[2] = executor_submit(ex, t_mark, &idx[2], sizeof(int));
    wait_started(1);
    ck_assert_int_eq(executor_shutdown(ex, false, false), 0);
    atomic_store(&shm->gate, 1);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(result_i64(fs_[i]), i);
        future_unref(fs_[i]);
    }
    executor_free(ex);
    end_check(0);
}
END_TEST

/* Python test_init: initializer runs first; one that raises breaks the pool. */
START_TEST(test_process_pool_initializer)
{
    begin();
    int v = 42;
    executor_t *ex = process_pool_executor_new(&(executor_options_t){
        .max_workers = 2, .initializer = t_init_ok, .initarg = &v, .initarg_len = sizeof(v)});
    future_t *f = executor_submit(ex, t_get_init, NULL, 0);
    ck_assert_int_eq(result_i64(f), 42);
    future_unref(f);
    executor_free(ex);

    ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 2, .initializer = t_init_fail});
    f = executor_submit(ex, t_pid, NULL, 0);
    const future_error_t *err = failure(f, FUT_EBROKEN);
    ck_assert(strstr(err->message, "init says no") != NULL);
    future_unref(f);
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, t_pid, NULL, 0));
    ck_assert_int_eq(errno, -FUT_EBROKEN);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* An initializer that limits the worker's address space (a 3 GiB RLIMIT_AS). */
static void t_init_limit_as(task_t *t)
{
    struct rlimit r = {(rlim_t)3 << 30, (rlim_t)3 << 30};
    if (setrlimit(RLIMIT_AS, &r) != 0)
        task_raise(t, errno, "setrlimit");
}

/* Allocates and touches 64 MiB: 1, or fails ENOMEM. */
static void t_malloc_64m(task_t *t)
{
    size_t n = (size_t)64 << 20;
    char *p = malloc(n);
    if (!p) {
        task_raise(t, ENOMEM, "malloc of 64 MiB failed");
        return;
    }
    memset(p, 1, n);
    free(p);
    task_return_i64(t, 1);
}

/*
 * Python: resource.setrlimit(RLIMIT_AS, ...) in a worker's initializer, to
 * keep its tasks' memory in bounds. The workers must not carry the 4 GiB of
 * address space the parent set aside for its futures (blocks.c), which
 * counts against that limit: every malloc of a task then failed. The
 * parent's futures come first, so the range exists before the fork server.
 * Sanitizers' shadow memory takes terabytes of address space: not there.
 */
START_TEST(test_process_pool_initializer_limits_address_space)
{
    if (UNDER_ASAN || UNDER_TSAN)
        return; /* shadow memory does not fit a limited address space */
    begin();
    future_unref(future_new()); /* the parent's allocator is set up */
    executor_t *ex = process_pool_executor_new(
        &(executor_options_t){.max_workers = 1, .initializer = t_init_limit_as});
    future_t *f = executor_submit(ex, t_malloc_64m, NULL, 0);
    ck_assert_int_eq(result_i64(f), 1);
    future_unref(f);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* Tasks sent ahead but not started can be cancelled, and never run. */
START_TEST(test_process_pool_cancel_sent_ahead)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    int idx[10];
    future_t *fs_[10];
    for (int i = 0; i < 10; i++) {
        idx[i] = i;
        fs_[i] = executor_submit(ex, i == 0 ? t_block : t_mark, &idx[i], sizeof(int));
    }
    wait_started(1);
    ck_assert(!future_cancel(fs_[0])); /* started: Python says no */
    for (int i = 1; i < 10; i += 2)
        ck_assert(future_cancel(fs_[i]));
    atomic_store(&shm->gate, 1);
    for (int i = 0; i < 10; i++) {
        if (i % 2 == 1) {
            ck_assert(future_cancelled(fs_[i]));
        } else {
            ck_assert_int_eq(result_i64(fs_[i]), i);
        }
    }
    executor_free(ex);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(atomic_load(&shm->ran[i]), i % 2 == 0);
        future_unref(fs_[i]);
    }
    end_check(0);
}
END_TEST

/* An idle worker takes over a task queued behind a blocked one (no head-of-line wait). */
START_TEST(test_process_pool_idle_worker_steals)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    int idx[3] = {0, 1, 2};
    future_t *a = executor_submit(ex, t_block, &idx[0], sizeof(int));
    wait_started(1);
    future_t *b = executor_submit(ex, t_mark, &idx[1], sizeof(int));
    future_t *c = executor_submit(ex, t_mark, &idx[2], sizeof(int));
    /* Whatever worker b and c were sent to, both finish while a still blocks. */
    ck_assert_int_eq(result_i64(b), 1);
    ck_assert_int_eq(result_i64(c), 2);
    ck_assert(!future_done(a));
    atomic_store(&shm->gate, 1);
    ck_assert_int_eq(result_i64(a), 0);
    future_unref(a);
    future_unref(b);
    future_unref(c);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* queued_on_other, with @h3 as the third task's argument. */
static int64_t queued_on_other_h3(executor_t *ex, const struct hold *h0, future_t **f0,
                                  future_t **f3, const struct hold *h3,
                                  const submit_options_t *o3)
{
    static const struct hold h2 = {2, 0, 0};
    *f0 = executor_submit(ex, t_hold, h0, sizeof(*h0));
    wait_started(1);
    future_t *f2 = executor_submit(ex, t_hold, &h2, sizeof(h2)); /* a second worker */
    wait_started(2);
    *f3 = executor_submit_with(ex, t_hold, h3, sizeof(*h3), o3);
    atomic_store(&shm->gates[2], 1);
    int64_t pid = result_i64(f2);
    future_unref(f2);
    wait_started(3);
    return pid;
}

/*
 * Two workers, each holding a task; a third task is sent while both are
 * busy (to the first worker's cells: the least loaded, first). The second
 * worker, freed, takes it from the shared queue. Returns the pid of the
 * second worker; *f0 is the first worker's task (@h0), *f3 the third task.
 */
static int64_t queued_on_other(executor_t *ex, const struct hold *h0, future_t **f0,
                               future_t **f3, const submit_options_t *o3)
{
    static const struct hold h3 = {3, 0, 1};
    return queued_on_other_h3(ex, h0, f0, f3, &h3, o3);
}

/*
 * A task taken from the shared queue by another worker than the one whose
 * cell it is in outlives that worker: the first worker aborts while the
 * second runs the third task, which still answers; the pool goes on.
 */
START_TEST(test_process_pool_queued_task_outlives_its_seat)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    static const struct hold h0 = {0, 1, 0};
    future_t *f0, *f3;
    int64_t pid = queued_on_other(ex, &h0, &f0, &f3, NULL);
    atomic_store(&shm->gates[0], 1); /* the first worker aborts */
    failure(f0, FUT_EWORKER);
    ck_assert(!future_done(f3));
    atomic_store(&shm->gates[3], 1);
    ck_assert_int_eq(result_i64(f3), pid);
    for (int i = 0; i < 4; i++) { /* both seats work again */
        future_t *f = executor_submit(ex, t_pid, NULL, 0);
        ck_assert_int_gt(result_i64(f), 0);
        future_unref(f);
    }
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.failed, 1);
    future_unref(f0);
    future_unref(f3);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* True once the process *pid is gone (the fork server reaps its workers). */
static bool pid_gone(void *pid)
{
    return kill(*(int *)pid, 0) == -1 && errno == ESRCH;
}

/*
 * As above, but the pool is shut down while the first worker's seat waits
 * for the third task, and the third task's worker then dies too: the pool
 * still ends (the seat freed last once kept a leaving manager asleep).
 */
START_TEST(test_process_pool_queued_task_dies_at_shutdown)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    static const struct hold h0 = {0, 1, 0}, h3 = {3, 1, 1};
    future_t *f0, *f3;
    queued_on_other_h3(ex, &h0, &f0, &f3, &h3, NULL);
    atomic_store(&shm->gates[0], 1);
    failure(f0, FUT_EWORKER);
    ck_assert_int_eq(executor_shutdown(ex, false, false), 0);
    atomic_store(&shm->gates[3], 1);
    failure(f3, FUT_EWORKER);
    future_unref(f0);
    future_unref(f3);
    executor_free(ex); /* joins the manager */
    end_check(0);
}
END_TEST

/*
 * The deadline of a task another worker took from the shared queue kills
 * that worker, not the one whose cell it is in (which runs on).
 */
START_TEST(test_process_pool_queued_task_deadline_kills_its_runner)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    static const struct hold h0 = {0, 0, 0};
    future_t *f0, *f3;
    queued_on_other(ex, &h0, &f0, &f3, &(submit_options_t){.timeout = 0.3});
    failure(f3, FUT_EDEADLINE);
    int runner = atomic_load(&shm->ran[3]), owner = atomic_load(&shm->ran[0]);
    ck_assert_int_ne(runner, owner);
    ck_assert(eventually(pid_gone, &runner, T_LONG));
    ck_assert_int_eq(kill(owner, 0), 0);
    atomic_store(&shm->gates[0], 1);
    ck_assert_int_eq(result_i64(f0), owner); /* its worker was not killed */
    future_unref(f0);
    future_unref(f3);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * A crash storm: every task of 300 crashes its worker, so workers die while
 * others run tasks of their cells. Each task fails FUT_EWORKER, once; then
 * executor_free returns.
 */
START_TEST(test_process_pool_crash_storm)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    enum { N = 300 };
    future_t *fs_[N];
    for (int i = 0; i < N; i++)
        ck_assert_ptr_nonnull(fs_[i] = executor_submit(ex, t_abort, &i, sizeof(i)));
    for (int i = 0; i < N; i++) {
        failure(fs_[i], FUT_EWORKER);
        future_unref(fs_[i]);
    }
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.failed, N);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* 1,000 pending tasks: shutdown(wait=false, cancel_futures=true) returns at once. */
START_TEST(test_process_pool_shutdown_cancel_many)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    enum { N = 1000 };
    future_t **fs_ = calloc(N, sizeof(*fs_));
    int *idx = calloc(N, sizeof(int));
    for (int i = 0; i < N; i++) {
        idx[i] = i;
        fs_[i] = executor_submit(ex, t_block, &idx[i], sizeof(int));
    }
    wait_started(2);
    double t0 = now_s();
    ck_assert_int_eq(executor_shutdown(ex, false, true), 0);
    ck_assert(now_s() - t0 < 1.0);
    int cancelled = 0;
    for (int i = 0; i < N; i++)
        cancelled += future_cancelled(fs_[i]);
    ck_assert_int_eq(cancelled, N - 2);
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, t_pid, NULL, 0));
    ck_assert_int_eq(errno, ESHUTDOWN);
    atomic_store(&shm->gate, 1);
    executor_free(ex);
    int ran = 0;
    for (int i = 0; i < N; i++) {
        ran += atomic_load(&shm->ran[i]);
        if (!future_cancelled(fs_[i]))
            ck_assert_int_eq(result_i64(fs_[i]), i);
        future_unref(fs_[i]);
    }
    ck_assert_int_eq(ran, 2);
    free(fs_);
    free(idx);
    end_check(0);
}
END_TEST

static _Atomic bool spin_stop;

static void *spinner(void *arg)
{
    (void)arg;
    while (!atomic_load(&spin_stop))
        ;
    return NULL;
}

/* A pool created while 8 threads are busy works (the fork server's reason). */
START_TEST(test_process_pool_created_while_busy)
{
    begin();
    pthread_t th[8];
    atomic_store(&spin_stop, false);
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, spinner, NULL);
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    ck_assert_ptr_nonnull(ex);
    for (int64_t i = 0; i < 50; i++) {
        future_t *f = executor_submit(ex, t_add1, &i, sizeof(i));
        ck_assert_int_eq(result_i64(f), i + 1);
        future_unref(f);
    }
    executor_free(ex);
    atomic_store(&spin_stop, true);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    end_check(0);
}
END_TEST

/* A thread's start: a process pool of pm->workers in pm->ex (NULL: failed). */
struct pool_made {
    int workers;
    executor_t *ex;
};

static void *make_pool_of(void *arg)
{
    struct pool_made *pm = arg;
    pm->ex = process_pool_executor_new(&(executor_options_t){.max_workers = pm->workers});
    return NULL;
}

/* A pool made by a thread that then exits keeps working (PDEATHSIG is per thread). */
START_TEST(test_process_pool_creator_thread_exits)
{
    begin();
    struct pool_made pm = {1, NULL};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, make_pool_of, &pm), 0);
    pthread_join(th, NULL);
    executor_t *ex = pm.ex;
    ck_assert_ptr_nonnull(ex);
    for (int64_t i = 0; i < 3; i++) {
        future_t *f = executor_submit(ex, t_add1, &i, sizeof(i));
        ck_assert_int_eq(result_i64(f), i + 1);
        future_unref(f);
    }
    executor_free(ex);
    end_check(0);
}
END_TEST

/* Python test_map: map over the pool, with chunksize and a timeout. */
START_TEST(test_process_pool_map)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    enum { N = 500 };
    int64_t vals[N];
    const void *args[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        vals[i] = i;
        args[i] = &vals[i];
        lens[i] = sizeof(int64_t);
    }
    executor_map_t *m =
        executor_map(ex, t_add1, args, lens, N, &(map_options_t){.chunksize = 16});
    ck_assert_ptr_nonnull(m);
    for (int i = 0; i < N; i++) {
        const void *d;
        size_t len;
        ck_assert_int_eq(executor_map_next(m, &d, &len), 0);
        ck_assert_uint_eq(len, 8);
        int64_t v;
        memcpy(&v, d, 8);
        ck_assert_int_eq(v, i + 1);
    }
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    executor_map_free(m);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* arg: an int; raises for multiples of 7, else returns (pid << 20) | arg. */
static void t_pid_or_raise(task_t *t)
{
    const int *v = task_arg(t, NULL);
    if (*v % 7 == 0) {
        task_raise(t, *v, "seven %d", *v);
        return;
    }
    task_return_i64(t, ((int64_t)getpid() << 20) | *v);
}

/* multiprocessing Pool.map(chunksize): a chunk runs as one unit, in one worker. */
START_TEST(test_process_pool_map_chunks)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    enum { N = 1000, C = 10 };
    int vals[N];
    const void *args[N];
    size_t lens[N];
    int_args(vals, args, lens, N);
    for (size_t buffersize = 0; buffersize <= 25; buffersize += 25) {
        executor_map_t *m = executor_map(ex, t_pid_or_raise, args, lens, N,
                                         &(map_options_t){.chunksize = C,
                                                          .buffersize = buffersize});
        ck_assert_ptr_nonnull(m);
        int64_t pid = -1;
        for (int i = 0; i < N; i++) {
            if (i % C == 0)
                pid = -1; /* a new chunk */
            const void *d;
            size_t len;
            int rc = executor_map_next(m, &d, &len);
            if (i % 7 == 0) {
                ck_assert_int_eq(rc, FUT_ETASK);
                continue;
            }
            ck_assert_int_eq(rc, 0);
            int64_t v;
            memcpy(&v, d, 8);
            ck_assert_int_eq(v & 0xfffff, i);
            /* Items of one chunk share a worker. */
            if (pid >= 0)
                ck_assert_msg(v >> 20 == pid, "item %d bs %zu", i, buffersize);
            pid = v >> 20;
        }
        ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
        executor_map_free(m);
    }
    executor_free(ex);
    end_check(0);
}
END_TEST

/* arg: an int; raises (an odd-length message) for 1, else returns it as an int64. */
static void t_i64_or_raise_one(task_t *t)
{
    const int *v = task_arg(t, NULL);
    if (*v == 1) {
        task_raise(t, 1, "one");
        return;
    }
    task_return_i64(t, *v);
}

/*
 * Every item a chunk hands back is aligned as malloc's, also after an item
 * that raised (regression: UBSan "load of misaligned address ... for type
 * 'const int64_t'" for item 2 of {0, 1 raises, 2, 3} with chunksize 4).
 */
START_TEST(test_process_pool_map_chunk_results_aligned)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    enum { N = 4 };
    int vals[N];
    const void *args[N];
    size_t lens[N];
    int_args(vals, args, lens, N);
    executor_map_t *m =
        executor_map(ex, t_i64_or_raise_one, args, lens, N, &(map_options_t){.chunksize = 4});
    ck_assert_ptr_nonnull(m);
    for (int i = 0; i < N; i++) {
        const void *d = NULL;
        size_t len = 0;
        int rc = executor_map_next(m, &d, &len);
        if (i == 1) {
            ck_assert_int_eq(rc, FUT_ETASK);
            continue;
        }
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(len, sizeof(int64_t));
        ck_assert_msg(((uintptr_t)d % _Alignof(max_align_t)) == 0, "item %d at %p", i, d);
        ck_assert_int_eq(*(const int64_t *)d, i);
    }
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    executor_map_free(m);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * A map chunk holds no more items than its RESULTS frame can answer: the
 * worker keeps room for each item not yet answered (its E2BIG stand-in,
 * CF_WIRE_ANSWER_HDR + 64 bytes), so a chunk of more than (4 GiB - 16) / 80
 * items failed its first items with E2BIG (FUT_ETASK) though every result was
 * empty: 6,564,545 of a 55,000,000-item map with chunksize SIZE_MAX (96 s, so
 * this test asks chunk_fit, which sizes every chunk, instead of running one).
 */
START_TEST(test_process_pool_map_chunk_answers_fit)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    ck_assert_ptr_nonnull(ex);
    const uint64_t per_item = CF_WIRE_CHUNK_ANSWER_ROOM; /* E2BIG's: 16 + 48 bytes */
    size_t sizes[] = {1, 1000, 60000000, 300000000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t k = ex->ops->chunk_fit(NULL, sizes[i]); /* empty items: no bytes to bound */
        ck_assert_uint_ge(k, 1);
        ck_assert_uint_le(k, sizes[i]);
        ck_assert_msg(CF_WIRE_RESULTS_FIXED + (uint64_t)k * per_item <= CF_WIRE_MAX_PAYLOAD,
                      "a chunk of %zu items (of %zu): no room to answer each", k, sizes[i]);
    }
    ck_assert_uint_eq(ex->ops->chunk_fit(NULL, 1000), 1000);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * Python's ProcessPoolExecutor.map(chunksize): without buffersize each chunk
 * is one task. Results in order (errors too), executor_stats counts chunks,
 * and freeing the map while its first item runs cancels the chunks behind it.
 */
START_TEST(test_process_pool_map_chunk_is_one_task)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    enum { N = 101, C = 10 };
    int vals[N];
    const void *args[N];
    size_t lens[N];
    int_args(vals, args, lens, N);
    executor_map_t *m =
        executor_map(ex, t_pid_or_raise, args, lens, N, &(map_options_t){.chunksize = C});
    ck_assert_ptr_nonnull(m);
    for (int i = 0; i < N; i++) {
        const void *d;
        size_t len;
        int rc = executor_map_next(m, &d, &len);
        if (i % 7 == 0) {
            ck_assert_int_eq(rc, FUT_ETASK);
            continue;
        }
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(len, 8);
        int64_t v;
        memcpy(&v, d, 8);
        ck_assert_int_eq(v & 0xfffff, i);
    }
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    executor_map_free(m);
    executor_stats_t st;
    ck_assert_int_eq(executor_stats(ex, &st), 0);
    ck_assert_uint_eq(st.completed, 11); /* 10 chunks and item 100 (errors inside) */
    ck_assert_uint_eq(st.failed, 0);

    /* Freed while item 0 runs: its chunk ends, the chunks behind it never run. */
    atomic_store(&shm->gate, 0);
    atomic_store(&shm->started, 0);
    for (int i = 0; i < N; i++)
        atomic_store(&shm->ran[i], 0);
    m = executor_map(ex, t_block, args, lens, N, &(map_options_t){.chunksize = C});
    ck_assert_ptr_nonnull(m);
    wait_started(1);
    executor_map_free(m);
    atomic_store(&shm->gate, 1);
    ck_assert_int_eq(executor_shutdown(ex, true, false), 0);
    int ran = 0;
    for (int i = 0; i < N; i++)
        ran += atomic_load(&shm->ran[i]);
    ck_assert_int_eq(ran, C);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* Python map(timeout=): items not started are cancelled and never run, chunks too. */
START_TEST(test_process_pool_map_timeout_chunks)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    enum { N = 200 };
    int vals[N];
    const void *args[N];
    size_t lens[N];
    int_args(vals, args, lens, N);
    executor_map_t *m = executor_map(ex, t_block, args, lens, N,
                                     &(map_options_t){.chunksize = 8, .timeout = 0.3});
    ck_assert_ptr_nonnull(m);
    wait_started(1);
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_ETIMEDOUT);
    ck_assert_int_eq(executor_map_next(m, NULL, NULL), FUT_EOF);
    atomic_store(&shm->gate, 1);
    executor_map_free(m);
    executor_free(ex);
    int ran = 0;
    for (int i = 0; i < N; i++)
        ran += atomic_load(&shm->ran[i]);
    ck_assert_int_eq(ran, 8); /* only the chunk of item 0 had started */
    end_check(0);
}
END_TEST

/*
 * An unordered map freed with a unit in flight drops it (unwatches, cancels,
 * unrefs), also when the units do not number as first item / chunksize:
 * with chunksize SIZE_MAX that number's sum wrapped, no unit was dropped,
 * and the running chunk's completion wrote into the freed map (ASan: heap
 * use after free; a leaked future).
 */
START_TEST(test_process_pool_map_unordered_free_in_flight)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    enum { N = 3 };
    int vals[N];
    const void *args[N];
    size_t lens[N];
    int_args(vals, args, lens, N);
    executor_map_t *m =
        executor_map(ex, t_block, args, lens, N,
                     &(map_options_t){.chunksize = SIZE_MAX, .unordered = true});
    ck_assert_ptr_nonnull(m);
    wait_started(1);
    executor_map_free(m); /* the chunk runs: asked to stop, dropped */
    atomic_store(&shm->gate, 1);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * arg: any bytes; returns its start position (shm->started before it) once
 * shm->go[that position] is set.
 */
static void t_start_pos(task_t *t)
{
    int pos = atomic_fetch_add(&shm->started, 1);
    double end = now_s() + T_LONG;
    while ((pos >= (int)(sizeof(shm->go) / sizeof(shm->go[0])) ||
            !atomic_load(&shm->go[pos])) &&
           now_s() < end)
        usleep(100);
    task_return_i64(t, pos);
}

/*
 * More big arguments wait than the shared heap holds (32 MiB; 40 of 600
 * KiB, 1 MiB blocks): those that do not fit are piped, and only to a worker
 * that runs nothing, once the queued ones before them started (the header's
 * order). The heap was taken to fit whenever the size had a class: a task
 * then went down a busy worker's pipe and could start before earlier ones.
 * Found by review. Two workers: neighbours may swap (two starts at once).
 */
START_TEST(test_process_pool_heap_full_keeps_order)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    int ids[2] = {0, 1};
    future_t *blk[2];
    for (int i = 0; i < 2; i++)
        blk[i] = executor_submit(ex, t_block, &ids[i], sizeof(ids[i]));
    wait_started(2);
    enum { NB = 40 };
    size_t big = 600u << 10;
    char *arg = calloc(1, big);
    ck_assert_ptr_nonnull(arg);
    future_t *fb[NB];
    for (int i = 0; i < NB; i++)
        fb[i] = executor_submit(ex, t_start_pos, arg, big);
    free(arg);
    /* The first big task to start (position 2) holds its worker; the other
       worker runs the rest, one at a time, each once it has started: every
       task it takes must be the oldest waiting, none is left in the held
       worker's pipe. */
    atomic_store(&shm->gate, 1);
    bool all = true;
    for (int p = 3; p < 2 + NB && all; p++) {
        all = eventually(started_at_least, &(int){p + 1}, T_LONG);
        atomic_store(&shm->go[p], 1);
    }
    for (int p = 2; p < 2 + NB; p++)
        atomic_store(&shm->go[p], 1);
    int64_t pos[NB];
    for (int i = 0; i < NB; i++) {
        pos[i] = result_i64(fb[i]);
        future_unref(fb[i]);
    }
    for (int i = 0; i < 2; i++) {
        result_i64(blk[i]);
        future_unref(blk[i]);
    }
    ck_assert_msg(all, "a task waited behind the held worker while the other was free");
    for (int i = 0, prev = -1; i < NB; i++) {
        if (pos[i] == 2)
            continue; /* the held one */
        ck_assert_msg(pos[i] > prev, "task %d started at %lld, after a later task", i,
                      (long long)pos[i]);
        prev = (int)pos[i];
    }
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * A task with a big argument (piped: over 1 MiB) goes to the free worker,
 * which starts it only once its whole frame is read; a task submitted after
 * it waits meanwhile, or the other worker, freed, started it first (C
 * before B at 2, 64 and 256 MiB). Found by review.
 * What is checked: when C's first line runs, B has started (its future is
 * running or done). Not that B's first line came first: a worker preempted
 * between its claim (the start) and the task's first line lets C's come
 * first, as TSan on a loaded machine showed (CI).
 */
START_TEST(test_process_pool_big_task_starts_before_later_ones)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    struct hold h = {.gate = 0}, hc = {.gate = 1};
    future_t *a = executor_submit(ex, t_hold, &h, sizeof(h));
    wait_started(1);
    future_t *q = executor_submit(ex, t_pid, NULL, 0);
    result_i64(q); /* the second worker exists and is free */
    future_unref(q);
    size_t big = 32u << 20;
    future_t *b = submit_zeros(ex, t_pid, big);
    future_t *c = executor_submit(ex, t_hold, &hc, sizeof(hc));
    atomic_store(&shm->gates[0], 1); /* the first worker is free again */
    double end = now_s() + T_LONG;
    while (!atomic_load(&shm->ran[1]) && now_s() < end)
        sched_yield(); /* no sleep: B's frame may be read meanwhile */
    bool b_started = future_running(b) || future_done(b);
    ck_assert_msg(atomic_load(&shm->ran[1]) != 0, "C never started");
    ck_assert_msg(b_started, "C started while B waited for its frame");
    atomic_store(&shm->gates[1], 1);
    result_i64(b);
    result_i64(c);
    result_i64(a);
    future_unref(a);
    future_unref(b);
    future_unref(c);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * A big task sent ahead to the only worker, behind a long task, holds back
 * no later task once the pool grows: the new worker runs them. (A first
 * version of the rule above held every later task behind any piped task
 * not yet started.) The big task is sent before the pool grows in nearly
 * every run (50 ms); sent after, it goes to a free worker and the test
 * passes too.
 */
START_TEST(test_process_pool_big_task_behind_long_one_holds_nothing_back)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    ck_assert_int_eq(executor_set_max_workers(ex, 1), 0);
    struct hold h = {.gate = 0};
    future_t *a = executor_submit(ex, t_hold, &h, sizeof(h));
    wait_started(1);
    size_t big = 2u << 20;
    future_t *b = submit_zeros(ex, t_len, big);
    usleep(50000);
    ck_assert_int_eq(executor_set_max_workers(ex, 2), 0);
    future_t *c = executor_submit(ex, t_pid, NULL, 0);
    result_i64(c); /* while the long task still runs */
    ck_assert(!future_done(a));
    atomic_store(&shm->gates[0], 1);
    ck_assert_int_eq(result_i64(b), (int64_t)big);
    result_i64(a);
    future_unref(a);
    future_unref(b);
    future_unref(c);
    executor_free(ex);
    end_check(0);
}
END_TEST

/*
 * PPE-15's fork failure (out of fds), but with a worker left: it runs a
 * long task, and a task only a free worker may take (2 MiB, piped) waits
 * for the fork. Once fds are free again the fork is tried again after its
 * back-off. It was not: the task waited in the manager, with no timer,
 * until the long task ended (found by review).
 */
START_TEST(test_process_pool_failed_fork_tried_again)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    struct hold h = {.gate = 0};
    future_t *a = executor_submit(ex, t_hold, &h, sizeof(h));
    ck_assert(eventually(is_running, a, T_LONG)); /* the manager knows it started */
    struct rlimit old, low;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)count_fds() + 1; /* not enough for two pipes */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    size_t big = 2u << 20;
    future_t *b = submit_zeros(ex, t_len, big);
    ck_assert(settles(ex, 2)); /* the manager tried the fork for it, and failed */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    int64_t v = 0;
    ck_assert_int_eq(future_result_i64(b, 10 * timeout_multiplier(3), &v), 0);
    ck_assert_int_eq(v, (int64_t)big);
    ck_assert(!future_done(a)); /* b ran while a still did */
    atomic_store(&shm->gates[0], 1);
    ck_assert_int_gt(result_i64(a), 0);
    future_unref(a);
    future_unref(b);
    executor_free(ex);
    end_check(0);
}
END_TEST

static bool gone(void *pid)
{
    return proc_state(*(pid_t *)pid) == 0;
}

/*
 * A worker's pid is not reused while the manager may still signal it: the
 * fork server leaves a dead worker a zombie until the manager has read its
 * EXITED (and so marked it exited), then reaps it. Here the manager is held
 * while a worker dies: the zombie must still be there.
 */
START_TEST(test_process_pool_dead_worker_pid_held_until_read)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    struct hold hy = {0, 1, 1}, hx = {1, 0, 1}; /* y aborts at gate 0, x returns */
    future_t *y = executor_submit(ex, t_hold, &hy, sizeof(hy));
    future_t *x = executor_submit(ex, t_hold, &hx, sizeof(hx));
    wait_started(2);
    pid_t pid = atomic_load(&shm->ran[0]);
    struct holdup hu = {.in = false};
    gate_init(&hu.gate);
    ck_assert_int_eq(future_add_done_callback(x, hold_manager, &hu), 0);
    atomic_store(&shm->gates[1], 1);
    ck_assert(eventually(held, &hu, T_LONG));
    atomic_store(&shm->gates[0], 1); /* y's worker aborts */
    ck_assert(eventually(exited_or_gone, &pid, T_LONG));
    sleep_s(0.2); /* time for a fork server that reaps at once to do so */
    ck_assert_msg(proc_state(pid) == 'Z',
                  "the dead worker was reaped before the manager knew");
    gate_open(&hu.gate);
    ck_assert(eventually(gone, &pid, T_LONG)); /* read, then reaped */
    failure(y, FUT_EWORKER);
    ck_assert_int_gt(result_i64(x), 0);
    future_unref(x);
    future_unref(y);
    free_gated(ex, &hu.gate, 0);
}
END_TEST

/*
 * Hundreds of workers forked in one pass: the parent sends a SPAWN for
 * each before it reads an answer. The fork server used to block sending
 * answers while the parent blocked sending requests (the socket full both
 * ways, about 560 spawns here): both hung. Its answers now wait in a queue.
 */
/* Counts its start, then sleeps in FUTEX_WAIT (shared) until the gate opens. */
static void t_futex_gate(task_t *t)
{
    atomic_fetch_add(&shm->started, 1);
    double end = now_s() + T_LONG;
    while (!atomic_load(&shm->gate) && now_s() < end)
        syscall(SYS_futex, &shm->gate, FUTEX_WAIT, 0, &(struct timespec){1, 0}, NULL, 0);
    task_return_i64(t, 1);
}

START_TEST(test_process_pool_many_spawns_at_once)
{
    enum { NW = 900 };
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 3 * NW + 64) { /* the parent keeps 2 pipe ends a worker */
        rlim_t want = 3 * NW + 64;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
            printf("many_spawns_at_once: skipped, RLIMIT_NOFILE %llu < %llu\n",
                   (unsigned long long)rl.rlim_max, (unsigned long long)want);
            return;
        }
        rl.rlim_cur = want;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = NW});
    ck_assert_ptr_nonnull(ex);
    future_t *f[NW];
    for (int i = 0; i < NW; i++) {
        f[i] = executor_submit(ex, t_futex_gate, NULL, 0);
        ck_assert_ptr_nonnull(f[i]);
    }
    /* Every task runs at once: NW workers. Spawning them took over 30 s
       under ASan with the machine's load at 15 (a fork copies ASan's
       shadow mappings): a bound of its own, in a TCase of its own. */
    int want = NW;
    ck_assert(eventually(started_at_least, &want, 200.0));
    atomic_store(&shm->gate, 1);
    syscall(SYS_futex, &shm->gate, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    for (int i = 0; i < NW; i++) {
        ck_assert_int_eq(result_i64(f[i]), 1);
        future_unref(f[i]);
    }
    executor_free(ex);
    end_check(0);
}
END_TEST

/* arg: an int; aborts the worker on 25, else returns it. */
static void t_abort_on_25(task_t *t)
{
    const int *v = task_arg(t, NULL);
    if (*v == 25)
        abort();
    task_return_i64(t, *v);
}

/* A worker dying in a chunk fails that chunk's items (FUT_EWORKER), not the others. */
START_TEST(test_process_pool_map_chunk_death)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    enum { N = 60, C = 10 };
    int vals[N];
    const void *args[N];
    size_t lens[N];
    int_args(vals, args, lens, N);
    executor_map_t *m =
        executor_map(ex, t_abort_on_25, args, lens, N, &(map_options_t){.chunksize = C});
    ck_assert_ptr_nonnull(m);
    int died = 0;
    for (int i = 0; i < N; i++) {
        const void *d;
        size_t len;
        int rc = executor_map_next(m, &d, &len);
        /* Chunks [0, 10), [10, 20), [20, 30), ... */
        if (i >= 20 && i < 30) {
            ck_assert_int_eq(rc, FUT_EWORKER);
            died++;
        } else {
            ck_assert_msg(rc == 0, "item %d: %s", i, future_strerror(rc));
        }
    }
    ck_assert_int_eq(died, C);
    executor_map_free(m);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* PPE-05, LOKY-29: with many blocked tasks, exactly max_workers processes, all busy. */
START_TEST(test_process_pool_saturation)
{
    begin();
    enum { W = 16, N = 3 * W };
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = W});
    int idx[N];
    future_t *fs_[N];
    for (int i = 0; i < N; i++) {
        idx[i] = i;
        fs_[i] = executor_submit(ex, t_block, &idx[i], sizeof(int));
    }
    wait_started(W);
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.workers, W);
    ck_assert_int_eq(atomic_load(&shm->started), W);
    atomic_store(&shm->gate, 1);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(result_i64(fs_[i]), i);
        future_unref(fs_[i]);
    }
    executor_free(ex);
    end_check(0);
}
END_TEST

static void resubmit_cb(future_t *f, void *ud)
{
    executor_t *ex = ud;
    (void)f;
    int *left = &init_value;
    if (--*left > 0) {
        future_t *g = executor_submit(ex, t_pid, NULL, 0);
        if (g) {
            future_add_done_callback(g, resubmit_cb, ex);
            future_unref(g);
        }
    }
}

/* loky test_submit_from_callback: callbacks on the manager may submit. */
START_TEST(test_process_pool_submit_from_callback)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 2});
    init_value = 50;
    future_t *f = executor_submit(ex, t_pid, NULL, 0);
    future_add_done_callback(f, resubmit_cb, ex);
    future_unref(f);
    double end = now_s() + T_LONG;
    executor_stats_t st;
    do
        executor_stats(ex, &st);
    while (st.completed < 50 && now_s() < end && usleep(200) == 0);
    ck_assert_uint_eq(st.completed, 50);
    executor_free(ex);
    end_check(0);
}
END_TEST

/* True if @pid runs (a zombie counts as gone: its reaper may be slow). */
static bool alive(pid_t pid)
{
    char st = proc_state(pid);
    return st != 0 && st != 'Z' && st != 'X';
}

/*
 * True, with a line that says why, where pidfd_open(getpid(), 0) fails
 * ENOSYS or EPERM (Linux before 5.3, a seccomp filter): the fork server then
 * has no pidfd of its parent, only EOF on its socket and PR_SET_PDEATHSIG
 * from a pool the main thread made (forkserver.c), which @test goes beyond.
 */
static bool no_pidfd(const char *test)
{
    int fd = -1;
    errno = ENOSYS;
#ifdef SYS_pidfd_open /* the library's own test (forkserver.c) */
    fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
#endif
    if (fd >= 0) {
        close(fd);
        return false;
    }
    if (errno != ENOSYS && errno != EPERM)
        return false;
    printf("%s: skipped, no pidfd_open (%s)\n", test, strerror(errno));
    fflush(stdout);
    return true;
}

/*
 * A pipe and a fork for the parent-death tests: returns fork's pid, with
 * *@fd the pipe's write end in the child (0 returned), its read end in the
 * test.
 */
static pid_t fork_with_pipe(int *fd)
{
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    close(pfd[child == 0 ? 0 : 1]);
    *fd = pfd[child == 0 ? 1 : 0];
    return child;
}

/*
 * The child's side of the parent-death tests: a process pool of @workers
 * (made by a thread that then exits, if @on_thread) and the pids of its fork
 * server (a task's parent) and of a worker (a second task's own) in pids[0]
 * and pids[1], both tasks submitted before either is waited for. Exits 1
 * where any of it fails: the test then reads no pids.
 */
static executor_t *child_pool(int workers, bool on_thread, int32_t pids[2])
{
    struct pool_made pm = {workers, NULL};
    pthread_t th;
    if (!on_thread)
        make_pool_of(&pm);
    else if (pthread_create(&th, NULL, make_pool_of, &pm) != 0 ||
             pthread_join(th, NULL) != 0)
        _exit(1);
    if (!pm.ex)
        _exit(1);
    future_t *f[2] = {executor_submit(pm.ex, t_ppid, NULL, 0),
                      executor_submit(pm.ex, t_pid, NULL, 0)};
    for (int i = 0; i < 2; i++) {
        int64_t v;
        if (!f[i] || future_result_i64(f[i], T_LONG, &v) != 0)
            _exit(1);
        pids[i] = (int32_t)v;
        future_unref(f[i]);
    }
    return pm.ex;
}

/* The child writes the three pids to @fd and SIGKILLs itself, its pool alive. */
static _Noreturn void report_and_die(int fd, const int32_t pids[3])
{
    if (write(fd, pids, 3 * sizeof(*pids)) != 3 * sizeof(*pids))
        _exit(1);
    raise(SIGKILL);
    _exit(2);
}

/*
 * Reads from @fd the pids a child wrote before it SIGKILLed itself (fork
 * server, worker, one more) and reaps @child, which must have died so.
 */
static void killed_child_pids(int fd, pid_t child, int32_t pids[3])
{
    pids[0] = pids[1] = pids[2] = 0;
    ck_assert_int_eq(read(fd, pids, 3 * sizeof(*pids)), 3 * sizeof(*pids));
    close(fd);
    int st;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* True once the fork server pids[0] and the worker pids[1] are gone (10 s at most). */
static bool left_with_parent(const int32_t pids[3])
{
    double end = now_s() + 10.0;
    for (;;) {
        if (!alive(pids[0]) && !alive(pids[1]))
            return true;
        if (now_s() >= end)
            return false;
        usleep(1000);
    }
}

/*
 * loky test_sigkill_shutdown_leaks_workers: the parent is SIGKILLed; the fork
 * server and the workers exit (at once: 10 s allowed for a loaded machine).
 */
START_TEST(test_process_pool_parent_killed)
{
    int fd;
    int32_t pids[3] = {0};
    pid_t child = fork_with_pipe(&fd);
    if (child == 0) {
        child_pool(2, false, pids);
        report_and_die(fd, pids);
    }
    killed_child_pids(fd, child, pids);
    ck_assert_msg(left_with_parent(pids), "fork server %d or worker %d outlived its parent",
                  pids[0], pids[1]);
}
END_TEST

/*
 * As parent_killed, with the pool made on a thread (no PR_SET_PDEATHSIG for
 * the fork server: it fires when the creating thread exits) by a program
 * that forked a child that lives on without exec, holding a copy of every
 * fd, the fork server's socket too: the server saw no EOF, and it and the
 * workers lived as long as that child. Found by review. Only the parent's
 * pidfd tells the server then: skipped without pidfd_open.
 */
START_TEST(test_process_pool_parent_killed_fork_holds_fds)
{
    if (no_pidfd("parent_killed_fork_holds_fds"))
        return;
    int fd, hold[2];
    int32_t pids[3] = {0};
    ck_assert_int_eq(pipe(hold), 0);
    pid_t child = fork_with_pipe(&fd);
    if (child == 0) {
        close(hold[1]);
        child_pool(1, true, pids);
        pid_t g = fork(); /* lives on until the test closes hold[1] */
        if (g == 0) {
            char c;
            while (read(hold[0], &c, 1) < 0 && errno == EINTR)
                ;
            _exit(0);
        }
        if (g < 0)
            _exit(1);
        pids[2] = (int32_t)g;
        report_and_die(fd, pids);
    }
    close(hold[0]);
    killed_child_pids(fd, child, pids);
    bool gone = left_with_parent(pids);
    ck_assert(alive(pids[2])); /* the fork's child still holds the fds */
    close(hold[1]);
    ck_assert_msg(gone, "fork server %d or worker %d outlived its parent", pids[0], pids[1]);
}
END_TEST

/* main_exits: the child's pool and the pipe to the test. */
static executor_t *me_ex;
static int me_fd;

/*
 * Once the main thread has exited (its task a zombie, so the kernel has
 * done all it does at that thread's exit; not pthread_join: TSan cannot
 * join the main thread), runs a task and reports its
 * outcome and whether the fork server (@arg) is untouched: alive, and no
 * SIGKILL pending for it.
 */
static void *me_user(void *arg)
{
    pid_t server = (pid_t)(intptr_t)arg;
    int32_t out[2] = {-1, 0};
    double end = now_s() + T_LONG;
    while (proc_state(getpid()) != 'Z' && now_s() < end)
        usleep(1000);
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)server);
    FILE *st = fopen(path, "re");
    bool killed = !st;
    while (st && fgets(line, sizeof(line), st)) {
        unsigned long long mask;
        if ((sscanf(line, "SigPnd: %llx", &mask) == 1 ||
             sscanf(line, "ShdPnd: %llx", &mask) == 1) &&
            (mask & (1ull << (SIGKILL - 1))))
            killed = true;
    }
    if (st)
        fclose(st);
    int64_t v = -1;
    future_t *f = executor_submit(me_ex, t_ppid, NULL, 0);
    out[0] = f ? future_result_i64(f, T_LONG, &v) : -errno;
    out[1] = !killed && alive(server) && v == server;
    future_unref(f);
    executor_free(me_ex);
    if (write(me_fd, out, sizeof(out)) != sizeof(out))
        _exit(1);
    _exit(0);
}

/*
 * A pool made by the main thread, which then calls pthread_exit() while
 * another thread goes on using the pool: the process lives, and so must
 * its fork server. PR_SET_PDEATHSIG fires when the creating thread exits,
 * so the server, which asked for it when made on the main thread, was
 * SIGKILLed and the pool broke (FUT_EBROKEN). The server watches a pidfd
 * of the process now, and asks for PDEATHSIG only where it has none.
 */
START_TEST(test_process_pool_main_thread_exits)
{
    if (no_pidfd("main_thread_exits")) /* then PDEATHSIG: the server dies with it */
        return;
    int fd;
    pid_t child = fork_with_pipe(&fd);
    if (child == 0) {
        int32_t pids[2];
        me_fd = fd;
        me_ex = child_pool(1, false, pids);
        pthread_t th;
        if (pthread_create(&th, NULL, me_user, (void *)(intptr_t)pids[0]) != 0)
            _exit(1);
        pthread_exit(NULL);
    }
    int32_t out[2] = {-1, 0};
    ssize_t n = read(fd, out, sizeof(out));
    close(fd);
    int st;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_int_eq(n, sizeof(out));
    ck_assert_int_eq(out[0], 0);
    ck_assert_msg(out[1], "the fork server was killed when the main thread exited");
}
END_TEST

/* ---------------------------------------------------------- errors */

START_TEST(test_process_pool_submit_errors)
{
    begin();
    executor_t *ex = process_pool_executor_new(&(executor_options_t){.max_workers = 1});
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, NULL, NULL, 0));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(executor_submit(ex, t_pid, NULL, 5));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(executor_submit_with(ex, t_pid, NULL, 0,
                                            &(submit_options_t){.timeout = -1}));
    ck_assert_int_eq(errno, EINVAL);
    executor_stats_t st;
    executor_stats(ex, &st);
    ck_assert_uint_eq(st.queued, 0);
    executor_free(ex);
    end_check(0);
}
END_TEST

Suite *make_suite(void)
{
    Suite *s = suite_create("process_pool");
    TCase *tc = tcase_create("spawns");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_process_pool_many_spawns_at_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_process_pool_submit_results);
    tcase_add_test(tc, test_process_pool_borrowed_args);
    tcase_add_test(tc, test_process_pool_borrowed_cancel_waits_for_read);
    tcase_add_test(tc, test_process_pool_task_error);
    tcase_add_test(tc, test_process_pool_task_forks);
    tcase_add_test(tc, test_process_pool_task_fork_child_returns);
    tcase_add_test(tc, test_process_pool_creator_thread_exits);
    tcase_add_test(tc, test_process_pool_worker_fds);
    tcase_add_test(tc, test_process_pool_stray_fd_writes);
    tcase_add_test(tc, test_process_pool_low_fd_limit);
    tcase_add_test(tc, test_process_pool_parent_std_fds_closed);
    tcase_add_test(tc, test_process_pool_task_stdout_flushed);
    tcase_add_test(tc, test_process_pool_stdout_reader_gone);
    tcase_add_test(tc, test_process_pool_stdout_held_by_task_thread);
    tcase_add_test(tc, test_process_pool_map);
    tcase_add_test(tc, test_process_pool_map_chunks);
    tcase_add_test(tc, test_process_pool_map_chunk_is_one_task);
    tcase_add_test(tc, test_process_pool_map_chunk_results_aligned);
    tcase_add_test(tc, test_process_pool_map_timeout_chunks);
    tcase_add_test(tc, test_process_pool_map_unordered_free_in_flight);
    tcase_add_test(tc, test_process_pool_heap_full_keeps_order);
    tcase_add_test(tc, test_process_pool_heap_splits_and_starts_over);
    tcase_add_test(tc, test_process_pool_heap_reuses_before_carving);
    tcase_add_test(tc, test_process_pool_heap_burst_stays_small);
    tcase_add_test(tc, test_process_pool_heap_mix_merges_back);
    tcase_add_test(tc, test_process_pool_big_task_starts_before_later_ones);
    tcase_add_test(tc, test_process_pool_big_task_behind_long_one_holds_nothing_back);
    tcase_add_test(tc, test_process_pool_failed_fork_tried_again);
    tcase_add_test(tc, test_process_pool_dead_worker_pid_held_until_read);
    tcase_add_test(tc, test_process_pool_map_chunk_death);
    tcase_add_test(tc, test_process_pool_submit_from_callback);
    tcase_add_test(tc, test_process_pool_initializer);
    tcase_add_test(tc, test_process_pool_initializer_limits_address_space);
    tcase_add_test(tc, test_process_pool_max_tasks_per_child);
    tcase_add_test(tc, test_process_pool_shrink_keeps_queued_tasks);
    tcase_add_test(tc, test_process_pool_grow_wakes_retired_worker);
    tcase_add_test(tc, test_process_pool_idle_counts_runners);
    tcase_add_test(tc, test_process_pool_workers_count_live_ones);
    tcase_add_test(tc, test_process_pool_max_tasks_per_child_chunks);
    tcase_add_test(tc, test_process_pool_recycled_out_with_big_task_waiting);
    tcase_add_test(tc, test_process_pool_shutdown_during_recycling);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_process_pool_bad_options);
    tcase_add_test(tc, test_process_pool_submit_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("deaths");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_process_pool_worker_abort);
    tcase_add_test(tc, test_process_pool_worker_segv);
    tcase_add_test(tc, test_process_pool_worker_exit3);
    tcase_add_test(tc, test_process_pool_worker_exit0);
    tcase_add_test(tc, test_process_pool_sigkill_busy);
    tcase_add_test(tc, test_process_pool_answers_survive_death);
    tcase_add_test(tc, test_process_pool_answer_not_held_behind_long_task);
    tcase_add_test(tc, test_process_pool_sigkill_idle);
    tcase_add_test(tc, test_process_pool_break_mode);
    tcase_add_test(tc, test_future_ran_survives_racing_completion);
    tcase_add_test(tc, test_process_pool_break_mode_idle);
    tcase_add_test(tc, test_process_pool_garbage_frame);
    tcase_add_test(tc, test_process_pool_parent_killed);
    tcase_add_test(tc, test_process_pool_parent_killed_fork_holds_fds);
    tcase_add_test(tc, test_process_pool_main_thread_exits);
    tcase_add_test(tc, test_process_pool_forkserver_killed);
    tcase_add_test(tc, test_process_pool_timer_in_forked_child);
    tcase_add_test(tc, test_process_pool_forkserver_gone_at_spawn);
    tcase_add_test(tc, test_process_pool_worker_start_fails);
    tcase_add_test(tc, test_process_pool_death_before_start);
    tcase_add_loop_test(tc, test_process_pool_bad_task_frame, 0, 4);
    tcase_add_loop_test(tc, test_process_pool_segv_decoding, 0, 4);
    tcase_add_test(tc, test_process_pool_death_keeps_queued_order);
    tcase_add_test(tc, test_process_pool_death_keeps_big_task_order);
    tcase_add_test(tc, test_process_pool_preempted_worker_keeps_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("pump");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_process_pool_pump);
    tcase_add_test(tc, test_process_pool_pump_waits);
    tcase_add_test(tc, test_process_pool_pump_outlives_break);
    tcase_add_test(tc, test_process_pool_pump_after_break);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_process_pool_deadline);
    tcase_add_test(tc, test_process_pool_late_deadline_spares_next_task);
    tcase_add_test(tc, test_process_pool_callback_submit_to_full_queue);
    tcase_add_test(tc, test_process_pool_late_deadline_keeps_answer_in_time);
    tcase_add_test(tc, test_process_pool_late_deadline_keeps_answer_while_terminating);
    tcase_add_test(tc, test_process_pool_manager_sleeps_while_tasks_run);
    tcase_add_test(tc, test_process_pool_submit_after_manager_spin);
    tcase_add_test(tc, test_process_pool_wait_after_waking_manager_sleeps);
    tcase_add_test(tc, test_process_pool_worker_spins_between_round_trips);
    tcase_add_test(tc, test_process_pool_wakeup_survives_woken_worker_death);
    tcase_add_test(tc, test_process_pool_cancel_running_stops);
    tcase_add_test(tc, test_process_pool_revoke_leaves_started_alone);
    tcase_add_test(tc, test_process_pool_big_payloads);
    tcase_add_test(tc, test_process_pool_map_chunk_answers_fit);
    tcase_add_test(tc, test_process_pool_death_while_writing);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_process_pool_cancel_sent_ahead);
    tcase_add_test(tc, test_process_pool_idle_worker_steals);
    tcase_add_test(tc, test_process_pool_queued_task_outlives_its_seat);
    tcase_add_test(tc, test_process_pool_queued_task_deadline_kills_its_runner);
    tcase_add_test(tc, test_process_pool_queued_task_dies_at_shutdown);
    tcase_add_test(tc, test_process_pool_crash_storm);
    tcase_add_test(tc, test_process_pool_saturation);
    tcase_add_test(tc, test_process_pool_shutdown_cancel_many);
    tcase_add_test(tc, test_process_pool_created_while_busy);
    suite_add_tcase(s, tc);
    return s;
}
