/*
 * prime_factor: "Big Prime multiprocessing", the course's multi_pool.py:
 * the prime factors of 64 random integers in [40M, 80M), found by slow
 * trial division, mapped over a process pool.
 *
 *   def prime_factor(value, level=0):
 *       factors = []
 *       if level:
 *           print('    ' * level, 'prime_factor(', value, ', ', level, ') ',
 *                 os.getpid(), sep='')
 *       for divisor in range(2, value - 1):
 *           quotient, remainder = divmod(value, divisor)
 *           if not remainder:
 *               factors.extend(prime_factor(divisor, level + 1))
 *               factors.extend(prime_factor(quotient, level + 1))
 *               break
 *       else:
 *           factors = [value]
 *       return factors
 *
 *   pool = Pool()
 *   to_factor = [random.randint(40_000_000, 80_000_000) for _ in range(64)]
 *   print(to_factor)
 *   results = pool.map(prime_factor, to_factor)
 *   for value, factors in zip(to_factor, results):
 *       print("The factors of {} are {}".format(value, factors))
 *
 * Pool() is process_pool_executor_new(NULL): one worker per CPU. The list
 * a worker returns travels back as bytes (an array of uint32), where
 * Python pickles it. stdout carries the course's lines; stderr says how
 * long the map took, and with --serial how long the same work takes in
 * one thread: the speedup is close to the number of CPUs.
 *
 * Usage: prime_factor [-n COUNT] [-s SEED] [-e process|thread] [--serial]
 */
#include "course.h"

#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_FACTORS 32 /* a value below 2^32 has at most 31 prime factors */

struct factors {
    size_t n;
    uint32_t f[MAX_FACTORS];
};

static bool chatty = true; /* print the recursive calls, as the course does */

static void prime_factor(uint32_t value, int level, struct factors *out)
{
    if (level && chatty) {
        printf("%*sprime_factor(%u, %d) %ld\n", 4 * level, "", value, level,
               (long)getpid());
        fflush(stdout); /* one write per line: workers share the terminal */
    }
    for (uint32_t divisor = 2; divisor + 1 < value; divisor++) {
        if (value % divisor == 0) {
            prime_factor(divisor, level + 1, out);
            prime_factor(value / divisor, level + 1, out);
            return;
        }
    }
    out->f[out->n++] = value; /* for ... else: factors = [value] */
}

static void prime_factor_task(task_t *t)
{
    size_t len;
    const uint32_t *value = task_arg(t, &len);
    if (len != sizeof(*value)) {
        task_raise(t, EINVAL, "prime_factor wants one uint32");
        return;
    }
    struct factors out = {0};
    prime_factor(*value, 0, &out);
    task_return_copy(t, out.f, out.n * sizeof(out.f[0])); /* the pickled list */
}

/* Python's str(list), "[1, 2, 3]", into @out (@cap bytes). */
static char *format_list(char *out, size_t cap, const uint32_t *v, size_t n)
{
    size_t at = (size_t)snprintf(out, cap, "[");
    for (size_t i = 0; i < n && at < cap; i++)
        at += (size_t)snprintf(out + at, cap - at, i ? ", %u" : "%u", v[i]);
    if (at < cap)
        snprintf(out + at, cap - at, "]");
    return out;
}

#define USAGE "prime_factor [-n COUNT] [-s SEED] [-e process|thread] [--serial]"

int main(int argc, char **argv)
{
    const char *kind = course_have_process_pool() ? "process" : "thread";
    long long count = 64, seed = (long long)time(NULL);
    bool serial = false;
    static const struct option longopts[] = {
        {"serial", no_argument, NULL, 'S'}, COURSE_HELP_OPTION, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "n:s:e:h", longopts, NULL)) != -1) {
        bool ok = true;
        switch (opt) {
        case 'n':
            ok = course_number(optarg, 1, 100000, "-n", &count);
            break;
        case 's':
            ok = course_number(optarg, LONG_MIN, LONG_MAX, "-s", &seed);
            break;
        case 'e':
            kind = optarg;
            ok = course_kind(kind, false);
            break;
        case 'S':
            serial = true;
            break;
        case 'h':
            return course_usage(USAGE, 0);
        default:
            ok = false;
        }
        if (!ok)
            return course_usage(USAGE, 2);
    }
    if (optind != argc) {
        fprintf(stderr, "unexpected argument '%s'\n", argv[optind]);
        return course_usage(USAGE, 2);
    }

    /* Every exit from here on goes through "out", which frees all four. */
    int rc = 1;
    char *line = NULL;
    uint32_t *to_factor = malloc((size_t)count * sizeof(*to_factor));
    const void **args = malloc((size_t)count * sizeof(*args));
    size_t *lens = malloc((size_t)count * sizeof(*lens));
    if (!to_factor || !args || !lens) {
        perror("malloc");
        goto out;
    }
    srand48(seed);
    for (long i = 0; i < count; i++) {
        to_factor[i] = 40000000 + (uint32_t)(lrand48() % 40000000);
        args[i] = &to_factor[i];
        lens[i] = sizeof(to_factor[i]);
    }
    size_t cap = 16 * (size_t)count + 16;
    line = malloc(cap);
    if (!line) {
        perror("malloc");
        goto out;
    }
    printf("%s\n",
           format_list(line, cap, to_factor, (size_t)count)); /* print(to_factor) */

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    executor_t *pool = course_executor(kind, cpus > 0 ? (int)cpus : 1, NULL); /* Pool() */
    if (!pool)
        goto out;
    double t0 = course_now();
    executor_map_t *results =
        executor_map(pool, prime_factor_task, args, lens, (size_t)count, NULL);
    if (!results) {
        perror("executor_map");
        executor_free(pool);
        goto out;
    }
    rc = 0;
    for (long i = 0; i < count; i++) {
        const void *data;
        size_t len;
        int r = executor_map_next(results, &data, &len);
        if (r != 0) {
            fprintf(stderr, "prime_factor(%u): %s\n", to_factor[i], future_strerror(r));
            rc = 1;
            continue;
        }
        /* One printf and a flush per line: the workers print lines too. */
        char list[16 * MAX_FACTORS];
        uint32_t factors[MAX_FACTORS];
        size_t nf =
            len / sizeof(uint32_t) < MAX_FACTORS ? len / sizeof(uint32_t) : MAX_FACTORS;
        memcpy(factors, data, nf * sizeof(uint32_t));
        printf("The factors of %u are %s\n", to_factor[i],
               format_list(list, sizeof(list), factors, nf));
        fflush(stdout);
    }
    double took = course_now() - t0;
    executor_map_free(results);
    executor_stats_t st;
    executor_stats(pool, &st);
    executor_free(pool);
    fflush(stdout);
    fprintf(stderr, "map of %lld values on a %s pool of %zu workers: %.2f s\n", count,
            kind, st.workers, took);

    if (serial) {
        chatty = false;
        t0 = course_now();
        for (long i = 0; i < count; i++) {
            struct factors out = {0};
            prime_factor(to_factor[i], 0, &out);
        }
        double alone = course_now() - t0;
        fprintf(stderr, "the same in one thread: %.2f s (speedup %.2f)\n", alone,
                alone / took);
    }
out:
    free(line);
    free(to_factor);
    free(args);
    free(lens);
    return rc;
}
