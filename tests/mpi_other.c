/*
 * mpi_other.c: a second MPI program for tests/mpi_pool.sh: as a rank
 * beside check_mpi_pool (another executable, so another build-id) it must
 * make the master's mpi_pool_serve fail at start-up; its own serve then
 * returns FUT_EBROKEN, the expected outcome (exit 0, so mpiexec's status
 * is the master's verdict). With --plain it is an MPI program that never
 * calls mpi_pool_serve: it initializes MPI and waits (up to 120 s, the job
 * ends it first), so that the cfutures ranks' start-up times out.
 */
#include <cfutures.h>
#include <mpi.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--plain") == 0) {
        MPI_Init(&argc, &argv);
        sleep(120);
        MPI_Finalize();
        return 0;
    }
    int rc = mpi_pool_serve(&argc, &argv);
    return rc == 1 || rc == 0 || rc == FUT_EBROKEN ? 0 : 1;
}
