# Samples: small programs that port the Python course's idioms.
noinst_PROGRAMS = samples/quickstart
samples_quickstart_SOURCES = samples/quickstart.c
samples_quickstart_LDADD = lib/libcfutures.la $(PTHREAD_LIBS)

# asyncio's add_reader in C: poll() on a completion queue's fd beside stdin.
noinst_PROGRAMS += samples/poll_loop
samples_poll_loop_SOURCES = samples/poll_loop.c
samples_poll_loop_LDADD = lib/libcfutures.la $(PTHREAD_LIBS)

# The course's parallel PDF downloader, on libcurl (built only when found);
# installed (the cfutures-tools package, with pdf_downloader(1)).
if HAVE_CURL
bin_PROGRAMS = samples/pdf_downloader/pdf_downloader
endif
samples_pdf_downloader_pdf_downloader_SOURCES = \
	samples/pdf_downloader/main.c \
	samples/pdf_downloader/fetch.c samples/pdf_downloader/fetch.h \
	samples/pdf_downloader/names.c samples/pdf_downloader/names.h \
	samples/pdf_downloader/record.c samples/pdf_downloader/record.h
samples_pdf_downloader_pdf_downloader_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
samples_pdf_downloader_pdf_downloader_LDADD = lib/libcfutures.la $(CURL_LIBS) \
	$(PTHREAD_LIBS) -lm

# The Python course's programs, ported one by one (samples/README.md lists
# them). samples/course/course.h holds the few helpers they share.
COURSE_SAMPLES = \
	samples/course/threads_basics samples/course/input_reader \
	samples/course/every_so_often samples/course/bank_account \
	samples/course/counter samples/course/much_cpu samples/course/mp_pool \
	samples/course/prime_factor samples/course/queue_rw \
	samples/course/asyncio_port samples/course/word_count
noinst_PROGRAMS += $(COURSE_SAMPLES)
COURSE_LDADD = lib/libcfutures.la $(PTHREAD_LIBS)
samples_course_threads_basics_SOURCES = samples/course/threads_basics.c samples/course/course.h
samples_course_threads_basics_LDADD = $(COURSE_LDADD)
samples_course_input_reader_SOURCES = samples/course/input_reader.c samples/course/course.h
samples_course_input_reader_LDADD = $(COURSE_LDADD)
samples_course_every_so_often_SOURCES = samples/course/every_so_often.c samples/course/course.h
samples_course_every_so_often_LDADD = $(COURSE_LDADD)
samples_course_bank_account_SOURCES = samples/course/bank_account.c samples/course/course.h
samples_course_bank_account_LDADD = $(COURSE_LDADD)
samples_course_counter_SOURCES = samples/course/counter.c samples/course/course.h
samples_course_counter_LDADD = $(COURSE_LDADD)
samples_course_much_cpu_SOURCES = samples/course/much_cpu.c samples/course/course.h
samples_course_much_cpu_LDADD = $(COURSE_LDADD)
samples_course_mp_pool_SOURCES = samples/course/mp_pool.c samples/course/course.h
samples_course_mp_pool_LDADD = $(COURSE_LDADD)
samples_course_prime_factor_SOURCES = samples/course/prime_factor.c samples/course/course.h
samples_course_prime_factor_LDADD = $(COURSE_LDADD)
samples_course_queue_rw_SOURCES = samples/course/queue_rw.c samples/course/course.h
samples_course_queue_rw_LDADD = $(COURSE_LDADD)
samples_course_asyncio_port_SOURCES = samples/course/asyncio_port.c samples/course/course.h
samples_course_asyncio_port_LDADD = $(COURSE_LDADD)
samples_course_word_count_SOURCES = samples/course/word_count.c samples/course/course.h
samples_course_word_count_LDADD = $(COURSE_LDADD)

# The network samples need libcurl; rest_users also jansson and SQLite, and
# thumbnail_maker libvips (each built only when configure found them).
if HAVE_CURL
noinst_PROGRAMS += samples/course/fetch_urls
if HAVE_JANSSON
noinst_PROGRAMS += samples/course/temp_getter
if HAVE_SQLITE
noinst_PROGRAMS += samples/course/rest_users
endif
endif
if HAVE_VIPS
noinst_PROGRAMS += samples/course/thumbnail_maker
endif
endif
samples_course_fetch_urls_SOURCES = samples/course/fetch_urls.c samples/course/course.h
samples_course_fetch_urls_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
samples_course_fetch_urls_LDADD = $(COURSE_LDADD) $(CURL_LIBS)
samples_course_temp_getter_SOURCES = samples/course/temp_getter.c samples/course/course.h
samples_course_temp_getter_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
samples_course_temp_getter_LDADD = $(COURSE_LDADD) $(CURL_LIBS) $(JANSSON_LIBS)
samples_course_rest_users_SOURCES = samples/course/rest_users.c samples/course/course.h
samples_course_rest_users_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS) \
	$(SQLITE_CFLAGS)
samples_course_rest_users_LDADD = $(COURSE_LDADD) $(CURL_LIBS) $(JANSSON_LIBS) \
	$(SQLITE_LIBS)
samples_course_thumbnail_maker_SOURCES = samples/course/thumbnail_maker.c \
	samples/course/course.h
samples_course_thumbnail_maker_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(VIPS_CFLAGS)
samples_course_thumbnail_maker_LDADD = $(COURSE_LDADD) $(CURL_LIBS) $(VIPS_LIBS)
EXTRA_DIST += samples/README.md PORTING.md

# The course's prime factorization across MPI ranks (issue 16; --with-mpi).
if HAVE_MPI
noinst_PROGRAMS += samples/mpi_primes
endif
samples_mpi_primes_SOURCES = samples/mpi_primes.c
samples_mpi_primes_LDADD = lib/libcfutures.la $(PTHREAD_LIBS)
