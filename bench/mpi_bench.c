/*
 * mpi_bench: the MPI pool's figures (issue 16), run by bench/mpi.sh.
 *
 *   mpi_bench tput N [WORKERS]   tiny tasks: submit N, then collect in order
 *   mpi_bench rtt ITERS [WORKERS] submit one tiny task, wait, repeat: p50/p99
 *   mpiexec -n 2 mpi_bench pingpong ITERS
 *                                raw MPI: 48 bytes there, 40 back, blocking
 *                                MPI_Send/MPI_Recv (the floor under rtt)
 * tput and rtt run in either mode: alone (WORKERS spawned) or under
 * `mpiexec -n WORKERS+1` (world mode). One line of output each:
 * "tput <tasks/s>" or "rtt p50 <us> p99 <us>".
 */
#include <cfutures.h>

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void add1(task_t *t)
{
    const int64_t *v = task_arg(t, NULL);
    task_return_i64(t, *v + 1);
}

static int tput(executor_t *ex, long n)
{
    future_t **f = malloc((size_t)n * sizeof(*f));
    if (!f)
        return 1;
    int64_t warm = 0, v;
    future_t *w = executor_submit(ex, add1, &warm, sizeof(warm));
    future_result_i64(w, FUT_FOREVER, &v);
    future_unref(w);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        int64_t x = i;
        f[i] = executor_submit(ex, add1, &x, sizeof(x));
    }
    for (long i = 0; i < n; i++) {
        if (future_result_i64(f[i], FUT_FOREVER, &v) != 0 || v != i + 1)
            return 1;
        future_unref(f[i]);
    }
    printf("tput %.0f\n", (double)n / (now_s() - t0));
    free(f);
    return 0;
}

static void report(double *us, long n)
{
    qsort(us, (size_t)n, sizeof(*us), cmp_double);
    printf("rtt p50 %.1f p99 %.1f\n", us[n / 2], us[n * 99 / 100]);
}

static int rtt(executor_t *ex, long n)
{
    double *us = malloc((size_t)n * sizeof(*us));
    if (!us)
        return 1;
    for (long i = -n / 10; i < n; i++) {
        int64_t x = i, v;
        double t0 = now_s();
        future_t *f = executor_submit(ex, add1, &x, sizeof(x));
        if (future_result_i64(f, FUT_FOREVER, &v) != 0)
            return 1;
        future_unref(f);
        if (i >= 0)
            us[i] = (now_s() - t0) * 1e6;
    }
    report(us, n);
    free(us);
    return 0;
}

/* Raw MPI between world ranks 0 and 1, no cfutures. */
static int pingpong(int argc, char **argv, long n)
{
    int prov, rank;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &prov);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    unsigned char task[48] = {0}, res[40] = {0};
    double *us = rank == 0 ? malloc((size_t)n * sizeof(*us)) : NULL;
    for (long i = -n / 10; i < n; i++) {
        if (rank == 0) {
            double t0 = now_s();
            MPI_Send(task, 48, MPI_BYTE, 1, 1, MPI_COMM_WORLD);
            MPI_Recv(res, 40, MPI_BYTE, 1, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if (i >= 0)
                us[i] = (now_s() - t0) * 1e6;
        } else if (rank == 1) {
            MPI_Recv(task, 48, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(res, 40, MPI_BYTE, 0, 2, MPI_COMM_WORLD);
        }
    }
    if (rank == 0)
        report(us, n);
    free(us);
    MPI_Finalize();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "pingpong") == 0)
        return pingpong(argc, argv, atol(argv[2]));
    int rc = mpi_pool_serve(&argc, &argv);
    if (rc != 0)
        return rc == 1 ? 0 : 1;
    if (argc < 3 || atol(argv[2]) < 1) {
        fprintf(stderr, "usage: mpi_bench tput|rtt N [WORKERS] | pingpong ITERS\n");
        return 2;
    }
    long n = atol(argv[2]);
    int workers = argc > 3 ? atoi(argv[3]) : 2;
    executor_t *ex = mpi_pool_executor_new(&(executor_options_t){.max_workers = workers});
    if (!ex) {
        perror("mpi_pool_executor_new");
        return 1;
    }
    rc = strcmp(argv[1], "tput") == 0 ? tput(ex, n) : rtt(ex, n);
    executor_free(ex);
    return rc;
}
