/*
 * mpi_primes: the course's "Big Prime multiprocessing" (multi_pool.py, see
 * samples/course/prime_factor.c for the process pool port) across MPI
 * ranks: the prime factors of 64 random integers in [40M, 80M), by slow
 * trial division, mapped over an MPI pool.
 *
 *   mpiexec -n 3 ./mpi_primes          world mode: ranks 1 and 2 factor
 *   ./mpi_primes -w 2                  spawn mode: 2 copies are spawned
 *
 * The one line the course's `if __name__ == '__main__':` becomes is the
 * first one of main: mpi_pool_serve, which returns 1 in a worker rank once
 * the master is done with it. stdout carries the course's lines (the
 * workers' "prime_factor(...)" lines come through mpiexec, with -q
 * they are left out); stderr says how long the map took, and with --serial
 * how long the same work takes in one thread of the master.
 *
 * Usage: mpi_primes [-n COUNT] [-s SEED] [-w WORKERS] [-q] [--serial]
 */
#include <cfutures.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_FACTORS 32 /* a value below 2^32 has at most 31 prime factors */

struct factors {
    size_t n;
    uint32_t f[MAX_FACTORS];
};

/* The task's argument: the value and whether to print the recursion. */
struct job {
    uint32_t value;
    uint32_t chatty;
};

static void prime_factor(uint32_t value, int level, bool chatty, struct factors *out)
{
    if (level && chatty) {
        printf("%*sprime_factor(%u, %d) %ld\n", 4 * level, "", value, level,
               (long)getpid());
        fflush(stdout);
    }
    for (uint32_t divisor = 2; divisor + 1 < value; divisor++) {
        if (value % divisor == 0) {
            prime_factor(divisor, level + 1, chatty, out);
            prime_factor(value / divisor, level + 1, chatty, out);
            return;
        }
    }
    out->f[out->n++] = value;
}

static void prime_factor_task(task_t *t)
{
    size_t len;
    const struct job *j = task_arg(t, &len);
    if (len != sizeof(*j)) {
        task_raise(t, 22, "prime_factor wants one struct job");
        return;
    }
    struct factors out = {0};
    prime_factor(j->value, 0, j->chatty != 0, &out);
    task_return_copy(t, out.f, out.n * sizeof(out.f[0]));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Python's str(list) of @n values, on stdout. */
static void print_list(const uint32_t *v, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++)
        printf(i ? ", %u" : "%u", v[i]);
    printf("]");
}

/* Maps the jobs over @pool and prints the course's lines. 0 or 1. */
static int factor_all(executor_t *pool, const struct job *jobs, long count)
{
    const void **args = malloc((size_t)count * sizeof(*args));
    size_t *lens = malloc((size_t)count * sizeof(*lens));
    executor_map_t *m = NULL;
    int rc = 1;
    if (args && lens) {
        for (long i = 0; i < count; i++) {
            args[i] = &jobs[i];
            lens[i] = sizeof(jobs[i]);
        }
        m = executor_map(pool, prime_factor_task, args, lens, (size_t)count, NULL);
    }
    for (long i = 0; m && i < count; i++) {
        const void *data;
        size_t len;
        int r = executor_map_next(m, &data, &len);
        if (r != 0) {
            fprintf(stderr, "prime_factor(%u): %s\n", jobs[i].value, future_strerror(r));
            continue;
        }
        uint32_t f[MAX_FACTORS];
        size_t nf =
            len / sizeof(uint32_t) < MAX_FACTORS ? len / sizeof(uint32_t) : MAX_FACTORS;
        memcpy(f, data, nf * sizeof(uint32_t));
        printf("The factors of %u are ", jobs[i].value);
        print_list(f, nf);
        printf("\n");
        rc = i + 1 == count ? 0 : rc;
    }
    if (!m)
        fprintf(stderr, "executor_map: %s\n", future_strerror(-errno));
    executor_map_free(m);
    free(args);
    free(lens);
    return rc;
}

/*
 * Option -@opt's value @s as a whole decimal number in [@lo, @hi], in *out;
 * false, saying so on stderr, for anything else ("5x", "", overflow).
 */
static bool parse_long(char opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s && !*end && errno == 0 && v >= lo && v <= hi) {
        *out = v;
        return true;
    }
    if (lo == LONG_MIN && hi == LONG_MAX)
        fprintf(stderr, "mpi_primes: -%c wants a whole number, not '%s'\n", opt, s);
    else
        fprintf(stderr,
                "mpi_primes: -%c wants a whole number from %ld to %ld, not '%s'\n", opt,
                lo, hi, s);
    return false;
}

int main(int argc, char **argv)
{
    int served = mpi_pool_serve(&argc, &argv); /* if __name__ == '__main__' */
    if (served != 0)
        return served == 1 ? 0 : 1;
    long count = 64, seed = (long)time(NULL), workers = 0;
    bool serial = false, chatty = true;
    static const struct option longopts[] = {{"serial", no_argument, NULL, 'S'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    bool help = false, bad = false;
    while ((opt = getopt_long(argc, argv, "n:s:w:qh", longopts, NULL)) != -1) {
        if (opt == 'n')
            bad |= !parse_long('n', optarg, 1, 100000, &count);
        else if (opt == 's')
            bad |= !parse_long('s', optarg, LONG_MIN, LONG_MAX, &seed);
        else if (opt == 'w')
            bad |= !parse_long('w', optarg, 0, 4096, &workers);
        else if (opt == 'q')
            chatty = false;
        else if (opt == 'S')
            serial = true;
        else if (opt == 'h')
            help = true;
        else
            bad = true;
    }
    if (optind != argc) {
        fprintf(stderr, "mpi_primes: unexpected argument '%s'\n", argv[optind]);
        bad = true;
    }
    if (help || bad) {
        fprintf(help && !bad ? stdout : stderr,
                "usage: mpi_primes [-n COUNT] [-s SEED] [-w WORKERS] [-q] [--serial]\n"
                "  -n COUNT    numbers to factor (1 to 100000, default 64)\n"
                "  -s SEED     their random seed (default: the time)\n"
                "  -w WORKERS  ranks to spawn when started alone (default: the cpus)\n"
                "  -q          quiet: no per-rank recursion lines\n"
                "  --serial    also time the same work in one thread (the speedup)\n"
                "world mode: mpiexec -n 3 mpi_primes (rank 0 the master, 2 workers)\n");
        return bad ? 2 : 0;
    }
    struct job *jobs = calloc((size_t)count, sizeof(*jobs));
    if (!jobs)
        return 1;
    srand48(seed);
    printf("[");
    for (long i = 0; i < count; i++) {
        jobs[i].value = 40000000 + (uint32_t)(lrand48() % 40000000);
        jobs[i].chatty = chatty;
        printf(i ? ", %u" : "%u", jobs[i].value);
    }
    printf("]\n");
    fflush(stdout);

    executor_t *pool =
        mpi_pool_executor_new(&(executor_options_t){.max_workers = (int)workers});
    if (!pool) {
        fprintf(stderr, "mpi_pool_executor_new: %s\n", future_strerror(-errno));
        free(jobs);
        return 1;
    }
    double t0 = now_s();
    int rc = factor_all(pool, jobs, count);
    double took = now_s() - t0;
    executor_stats_t st;
    executor_stats(pool, &st);
    executor_free(pool);
    fflush(stdout);
    fprintf(stderr, "map of %ld values on an MPI pool of %zu ranks: %.2f s\n", count,
            st.workers, took);
    if (serial) {
        t0 = now_s();
        for (long i = 0; i < count; i++) {
            struct factors out = {0};
            prime_factor(jobs[i].value, 0, false, &out);
        }
        double alone = now_s() - t0;
        fprintf(stderr, "the same in one thread: %.2f s (speedup %.2f)\n", alone,
                alone / took);
    }
    free(jobs);
    return rc;
}
