"""mpi4py.futures' MPIPoolExecutor on the MPI pool's workloads (bench/mpi.sh).

    python3 mpi4py_bench.py tput N     # submit N tiny tasks, collect in order
    python3 mpi4py_bench.py rtt ITERS  # submit one, wait, repeat: p50/p99 in us

Spawns 2 workers (max_workers=2), as bench/mpi_bench does. Debian's
python3-mpi4py (/usr/bin/python3).
"""
import sys
import time

from mpi4py.futures import MPIPoolExecutor


def add1(x):
    return x + 1


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    with MPIPoolExecutor(max_workers=2) as ex:
        ex.submit(add1, 0).result()
        if mode == "tput":
            t0 = time.perf_counter()
            fs = [ex.submit(add1, i) for i in range(n)]
            for i, f in enumerate(fs):
                assert f.result() == i + 1
            print("tput %.0f" % (n / (time.perf_counter() - t0)))
        else:
            us = []
            for i in range(n):
                t0 = time.perf_counter()
                ex.submit(add1, i).result()
                us.append((time.perf_counter() - t0) * 1e6)
            us.sort()
            print("rtt p50 %.1f p99 %.1f" % (us[n // 2], us[n * 99 // 100]))


if __name__ == "__main__":
    main()
