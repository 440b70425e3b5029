# Benchmarks: built only by `make bench`, never by make or make check.
#   make bench            5 rounds of every workload (about 4-5 minutes)
#   make bench QUICK=1    1 round, smaller N (a smoke test, about 40 s)
#   make bench ROUNDS=3   any number of rounds
# The table goes to the terminal; everything generated goes to BENCH_OUT
# (bench/results/ in the source tree, git-ignored): RESULTS-generated.md,
# results.json (every run) and bench-chart.png. The committed bench/RESULTS.md
# changes only when a run is promoted on purpose (bench/promote.sh).
BENCH_OUT = $(srcdir)/bench/results
EXTRA_PROGRAMS = bench/bench_cfutures
bench_bench_cfutures_SOURCES = bench/bench_cfutures.c bench/naive_pool.c bench/naive_pool.h \
	bench/naive_process_pool.c bench/naive_process_pool.h
bench_bench_cfutures_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_cfutures_LDADD = lib/libcfutures-core.la $(PTHREAD_LIBS) -lm

# gnuplot-nox draws the chart; setup.sh installs it if it can, and the chart
# is skipped (with a note) if it is still absent.
bench: bench/bench_cfutures$(EXEEXT) $(BENCH_MPI)
	-bash $(srcdir)/scripts/setup.sh gnuplot-nox
	BENCH_BIN=bench/bench_cfutures$(EXEEXT) OUT='$(BENCH_OUT)' \
	CC_VERSION="`$(CC) --version | sed 1q`" \
	QUICK='$(QUICK)' ROUNDS='$(ROUNDS)' $(SHELL) $(srcdir)/bench/run.sh

CLEANFILES += $(EXTRA_PROGRAMS)
EXTRA_DIST += bench/README.md bench/run.sh bench/py_bench.py \
	bench/be_uv.c bench/be_tbb.cpp bench/go/main.go
.PHONY: bench
EXTRA_DIST += bench/pdf_downloader.sh bench/course_downloader.py bench/RESULTS.md \
	bench/promote.sh

# The MPI pool against mpi4py.futures and raw MPI (issue 16): part of make
# bench when configured --with-mpi, or alone with make bench-mpi.
bench_mpi_bench_SOURCES = bench/mpi_bench.c
bench_mpi_bench_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS) -O2
bench_mpi_bench_LDADD = lib/libcfutures.la $(MPI_LIBS) $(PTHREAD_LIBS)
BENCH_MPI =
if HAVE_MPI
EXTRA_PROGRAMS += bench/mpi_bench
BENCH_MPI += bench-mpi
endif
bench-mpi: bench/mpi_bench$(EXEEXT) samples/mpi_primes$(EXEEXT)
	MPIEXEC='$(MPIEXEC)' srcdir='$(srcdir)' $(SHELL) $(srcdir)/bench/mpi.sh
EXTRA_DIST += bench/mpi.sh bench/mpi4py_bench.py
.PHONY: bench-mpi
