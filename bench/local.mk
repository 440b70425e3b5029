# Benchmarks: built only by `make bench`, never by make check.
EXTRA_PROGRAMS = bench/bench_cfutures
bench_bench_cfutures_SOURCES = bench/bench_cfutures.c
bench_bench_cfutures_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_cfutures_LDADD = lib/libcfutures-core.la $(PTHREAD_LIBS) -lm

bench: bench/bench_cfutures$(EXEEXT)
	bench/bench_cfutures$(EXEEXT) $(BENCH_ARGS)

CLEANFILES += $(EXTRA_PROGRAMS)
EXTRA_DIST += bench/README.md
.PHONY: bench
