# Samples: small programs that port the Python course's idioms.
noinst_PROGRAMS = samples/quickstart
samples_quickstart_SOURCES = samples/quickstart.c
samples_quickstart_LDADD = lib/libcfutures.la $(PTHREAD_LIBS)

# The course's parallel PDF downloader, on libcurl (built only when found).
if HAVE_CURL
noinst_PROGRAMS += samples/pdf_downloader/pdf_downloader
endif
samples_pdf_downloader_pdf_downloader_SOURCES = \
	samples/pdf_downloader/main.c \
	samples/pdf_downloader/fetch.c samples/pdf_downloader/fetch.h \
	samples/pdf_downloader/names.c samples/pdf_downloader/names.h \
	samples/pdf_downloader/record.c samples/pdf_downloader/record.h
samples_pdf_downloader_pdf_downloader_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
samples_pdf_downloader_pdf_downloader_LDADD = lib/libcfutures.la $(CURL_LIBS) \
	$(PTHREAD_LIBS) -lm
