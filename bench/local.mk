# Benchmarks: built only by `make bench`, never by make or make check.
#   make bench            5 rounds of every workload (about 1-2 minutes)
#   make bench QUICK=1    1 round, smaller N (a smoke test, about 15 s)
#   make bench ROUNDS=3   any number of rounds
# The table goes to the terminal, every run to bench/results.json.
EXTRA_PROGRAMS = bench/bench_cfutures
bench_bench_cfutures_SOURCES = bench/bench_cfutures.c bench/naive_pool.c bench/naive_pool.h \
	bench/naive_process_pool.c bench/naive_process_pool.h
bench_bench_cfutures_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_cfutures_LDADD = lib/libcfutures-core.la $(PTHREAD_LIBS) -lm

bench: bench/bench_cfutures$(EXEEXT)
	BENCH_BIN=bench/bench_cfutures$(EXEEXT) RESULTS=bench/results.json \
	QUICK='$(QUICK)' ROUNDS='$(ROUNDS)' $(SHELL) $(srcdir)/bench/run.sh

CLEANFILES += $(EXTRA_PROGRAMS)
DISTCLEANFILES = bench/results.json
EXTRA_DIST += bench/README.md bench/run.sh bench/py_bench.py
.PHONY: bench
EXTRA_DIST += bench/pdf_downloader.sh bench/course_downloader.py bench/RESULTS.md
