# Check programs, one per module, plus the conformance suite run over every
# executor kind. Each links testutil and check_main.
TEST_COMMON = tests/check_main.c tests/testutil.c tests/testutil.h
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
# Black-box suites link the installed library; white-box ones the core.
TEST_LIBS = lib/libcfutures.la $(CHECK_LIBS) $(PTHREAD_LIBS)
TEST_WHITEBOX_LIBS = lib/libcfutures-core.la $(CHECK_LIBS) $(PTHREAD_LIBS)
# Suites that provoke worker faults (CFUTURES_TEST_HOOKS), stretch the
# thread pool's watchman (cf_test_watch_ns) or wait until a pool has ordered
# what was submitted (cf_test_settled) link the library built with the test
# hooks (CF_TEST_HOOKS); the installed one has none.
TEST_HOOKS_LIBS = lib/libcfutures-test.la $(CHECK_LIBS) $(PTHREAD_LIBS)

check_PROGRAMS = \
	tests/check_future \
	tests/check_waiters \
	tests/check_task \
	tests/check_thread_pool \
	tests/check_executor \
	tests/check_process_pool \
	tests/check_wire \
	tests/check_blocks \
	tests/check_errors \
	tests/check_compose \
	tests/check_control \
	tests/check_peers

tests_check_future_SOURCES = tests/check_future.c $(TEST_COMMON)
tests_check_future_CFLAGS = $(TEST_CFLAGS)
tests_check_future_LDADD = $(TEST_LIBS)

tests_check_waiters_SOURCES = tests/check_waiters.c $(TEST_COMMON)
tests_check_waiters_CFLAGS = $(TEST_CFLAGS)
tests_check_waiters_LDADD = $(TEST_LIBS)

tests_check_task_SOURCES = tests/check_task.c $(TEST_COMMON)
tests_check_task_CFLAGS = $(TEST_CFLAGS)
tests_check_task_LDADD = $(TEST_LIBS)

tests_check_thread_pool_SOURCES = tests/check_thread_pool.c $(TEST_COMMON)
tests_check_thread_pool_CFLAGS = $(TEST_CFLAGS)
tests_check_thread_pool_LDADD = $(TEST_HOOKS_LIBS)

tests_check_executor_SOURCES = tests/check_executor.c $(TEST_COMMON)
tests_check_executor_CFLAGS = $(TEST_CFLAGS)
tests_check_executor_LDADD = $(TEST_LIBS)

tests_check_process_pool_SOURCES = tests/check_process_pool.c $(TEST_COMMON)
tests_check_process_pool_CFLAGS = $(TEST_CFLAGS)
tests_check_process_pool_LDADD = $(TEST_HOOKS_LIBS)

tests_check_wire_SOURCES = tests/check_wire.c $(TEST_COMMON)
tests_check_wire_CFLAGS = $(TEST_CFLAGS)
tests_check_wire_LDADD = $(TEST_WHITEBOX_LIBS)

tests_check_blocks_SOURCES = tests/check_blocks.c $(TEST_COMMON)
tests_check_blocks_CFLAGS = $(TEST_CFLAGS)
tests_check_blocks_LDADD = $(TEST_HOOKS_LIBS)

tests_check_errors_SOURCES = tests/check_errors.c $(TEST_COMMON)
tests_check_errors_CFLAGS = $(TEST_CFLAGS)
tests_check_errors_LDADD = $(TEST_LIBS)

tests_check_compose_SOURCES = tests/check_compose.c $(TEST_COMMON)
tests_check_compose_CFLAGS = $(TEST_CFLAGS)
tests_check_compose_LDADD = $(TEST_LIBS)

tests_check_control_SOURCES = tests/check_control.c $(TEST_COMMON)
tests_check_control_CFLAGS = $(TEST_CFLAGS)
tests_check_control_LDADD = $(TEST_HOOKS_LIBS)

tests_check_peers_SOURCES = tests/check_peers.c $(TEST_COMMON)
tests_check_peers_CFLAGS = $(TEST_CFLAGS)
tests_check_peers_LDADD = $(TEST_LIBS)

TESTS = $(check_PROGRAMS) tests/exports.sh tests/api-names.sh
TESTS_ENVIRONMENT = top_srcdir='$(top_srcdir)' top_builddir='$(top_builddir)'; export top_srcdir top_builddir;
EXTRA_DIST += tests/exports.sh tests/api-names.sh tests/README.md
TESTS += tests/poll_loop.sh
EXTRA_DIST += tests/poll_loop.sh

# lib/'s layers (no include back-edge), file and function lengths (issue 12).
TESTS += tests/check-layers.sh
EXTRA_DIST += tests/check-layers.sh

# pdf_downloader end to end, against nginx and tests/pdfdl_server.py on
# loopback (skips without libcurl, python3 or nginx), on each pool.
TESTS += tests/pdf_downloader.sh tests/pdf_downloader_process.sh
# Its names and records, white box (names.c parses with libcurl's URL API).
if HAVE_CURL
check_PROGRAMS += tests/check_pdfdl_names
endif
tests_check_pdfdl_names_SOURCES = tests/check_pdfdl_names.c $(TEST_COMMON) \
	samples/pdf_downloader/names.c samples/pdf_downloader/record.c
tests_check_pdfdl_names_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS)
tests_check_pdfdl_names_LDADD = $(TEST_LIBS) $(CURL_LIBS)
EXTRA_DIST += tests/pdf_downloader.sh tests/pdf_downloader_process.sh \
	tests/pdfdl_server.py scripts/nginx-serve.sh

# The course samples (samples/course), end to end: threads and asyncio,
# processes (on the process pool too when there is one), and the network
# ones against tests/course_server.py on loopback (skip without libcurl).
TESTS += tests/course_threads.sh tests/course_processes.sh tests/course_network.sh
EXTRA_DIST += tests/course_threads.sh tests/course_processes.sh \
	tests/course_network.sh tests/course_server.py tests/fixtures/weather.json \
	tests/wait-port.sh

# Fault injection (tests/faultsim.h, issue 8): the core library linked with
# the library's allocation and thread-start calls routed through faultsim.c.
FAULT_WRAPS = -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc \
	-Wl,--wrap=pthread_create -Wl,--wrap=fork -Wl,--wrap=pipe2 \
	-Wl,--wrap=socketpair -Wl,--wrap=poll
check_PROGRAMS += tests/check_faults
tests_check_faults_SOURCES = tests/check_faults.c tests/faultsim.c tests/faultsim.h \
	$(TEST_COMMON)
tests_check_faults_CFLAGS = $(TEST_CFLAGS)
tests_check_faults_LDFLAGS = $(FAULT_WRAPS)
tests_check_faults_LDADD = $(TEST_WHITEBOX_LIBS)

include tests/fuzz/local.mk

# The soaks (issue 8): the thread pool for SOAK_SECONDS (2) and SOAK_TASKS
# (20,000) process-pool tasks under random SIGKILLs in make check; make soak
# runs them with SOAK_SECONDS=300 and SOAK_TASKS=100000 unless told otherwise.
check_PROGRAMS += tests/check_soak
tests_check_soak_SOURCES = tests/check_soak.c $(TEST_COMMON)
tests_check_soak_CFLAGS = $(TEST_CFLAGS)
tests_check_soak_LDADD = $(TEST_LIBS)
SOAK_SECONDS = 300
SOAK_TASKS = 100000
soak: tests/check_soak$(EXEEXT)
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_TASKS=$(SOAK_TASKS) ./tests/check_soak$(EXEEXT)
.PHONY: soak

# The MPI pool (issue 16), only with ./configure --with-mpi: check_mpi_pool
# alone runs spawn mode; tests/mpi_pool.sh runs it under mpiexec (world
# mode) and against mpi_other (a rank with another build-id; built from
# Makefile.am, after samples/local.mk sets noinst_PROGRAMS).
if HAVE_MPI
check_PROGRAMS += tests/check_mpi_pool
TESTS += tests/mpi_pool.sh
endif
tests_check_mpi_pool_SOURCES = tests/check_mpi_pool.c tests/testutil.c tests/testutil.h
# MPI itself for --caller-init (a program that calls MPI_Init first)
tests_check_mpi_pool_CFLAGS = $(TEST_CFLAGS) $(MPI_CFLAGS)
tests_check_mpi_pool_LDADD = $(TEST_LIBS) $(MPI_LIBS)
# The conformance suite over the MPI pool (its one kind; world mode under
# mpiexec -n 3, by tests/mpi_pool.sh): built from Makefile.am.
tests_check_executor_mpi_SOURCES = tests/check_executor.c tests/check_main_mpi.c \
	tests/testutil.c tests/testutil.h
tests_check_executor_mpi_CFLAGS = $(TEST_CFLAGS) -DCF_TEST_MPI_KIND
tests_check_executor_mpi_LDADD = $(TEST_LIBS)
tests_mpi_other_SOURCES = tests/mpi_other.c
# MPI itself for --plain (an MPI program that never calls mpi_pool_serve)
tests_mpi_other_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
tests_mpi_other_LDADD = lib/libcfutures.la $(MPI_LIBS)
EXTRA_DIST += tests/mpi_pool.sh tests/tsan-openmpi.supp
TESTS_ENVIRONMENT += MPIEXEC='$(MPIEXEC)'; export MPIEXEC;
