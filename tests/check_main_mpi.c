/*
 * check_main_mpi.c: check_executor's main for the MPI kind
 * (check_executor_mpi; tests/mpi_pool.sh runs it under mpiexec -n 3, world
 * mode). Ranks other than 0 serve tasks and return from mpi_pool_serve.
 * Without Check's fork: MPI, once initialized, cannot be used in a forked
 * child, so the cases run one after another in this process.
 */
#include "testutil.h"

#include <stdlib.h>

int main(int argc, char **argv)
{
    int served = mpi_pool_serve(&argc, &argv);
    if (served != 0)
        return served == 1 ? EXIT_SUCCESS : EXIT_FAILURE;
    /* A hang fails the run (tests/mpi_pool.sh's timeout is 60 s longer). */
    hang_guard(540, "check_executor_mpi");
    return run_suite(false);
}
