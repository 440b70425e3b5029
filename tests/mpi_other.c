/*
 * mpi_other.c: a second MPI program for tests/mpi_pool.sh: as a rank
 * beside check_mpi_pool (another executable, so another build-id) it must
 * make the master's mpi_pool_serve fail at start-up; its own serve then
 * returns FUT_EBROKEN, the expected outcome (exit 0, so mpiexec's status
 * is the master's verdict).
 */
#include <cfutures.h>

int main(int argc, char **argv)
{
    int rc = mpi_pool_serve(&argc, &argv);
    return rc == 1 || rc == 0 || rc == FUT_EBROKEN ? 0 : 1;
}
